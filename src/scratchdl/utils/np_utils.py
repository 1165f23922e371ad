"""The book's ``lincoln.utils.np_utils``: small NumPy helpers, with the same names.

The checks raise `ShapeError` (a `ValueError`) instead of using ``assert``, which
``python -O`` removes.
"""

from __future__ import annotations

import numpy as np

from scratchdl.core import ShapeError

__all__ = [
    "assert_dim",
    "assert_same_shape",
    "normalize",
    "permute_data",
    "softmax",
    "to_2d",
    "unnormalize",
]


def to_2d(a: np.ndarray, type: str = "col") -> np.ndarray:
    """A 1-D array as a column (``type="col"``) or a row (``"row"``)."""
    a = np.asarray(a)
    if a.ndim != 1:
        raise ShapeError(f"to_2d: input must be 1-dimensional, received shape {a.shape}")
    if type == "col":
        return a.reshape(-1, 1)
    if type == "row":
        return a.reshape(1, -1)
    raise ValueError(f"to_2d: type must be 'col' or 'row'. Received: type={type!r}")


def normalize(a: np.ndarray) -> np.ndarray:
    """[a, 1 - a] side by side (the book's two-class form of a one-column output)."""
    return np.concatenate([a, 1 - a], axis=1)


def unnormalize(a: np.ndarray) -> np.ndarray:
    """The first row of `a`, with its axis kept, as the book's function returns it."""
    return a[np.newaxis, 0]


def permute_data(
    X: np.ndarray, y: np.ndarray, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """X and y shuffled by one permutation. With no `rng` this draws from NumPy's global
    generator, as the book's code does (so ``np.random.seed`` makes it repeatable);
    scratchdl itself never uses that generator."""
    if len(X) != len(y):
        raise ShapeError(
            f"permute_data: X and y must have the same number of rows, received {len(X)} and {len(y)}"
        )
    perm = np.random.permutation(len(X)) if rng is None else rng.permutation(len(X))  # noqa: NPY002
    return X[perm], y[perm]


def assert_same_shape(output: np.ndarray, output_grad: np.ndarray) -> None:
    """Raise `ShapeError` unless the two arrays have the same shape."""
    if output.shape != output_grad.shape:
        raise ShapeError(
            "Two arrays should have the same shape; instead, the first's shape is "
            f"{tuple(output.shape)} and the second's is {tuple(output_grad.shape)}"
        )


def assert_dim(t: np.ndarray, dim: int) -> None:
    """Raise `ShapeError` unless `t` has `dim` dimensions."""
    if t.ndim != dim:
        raise ShapeError(f"Array expected to have {dim} dimensions, instead has {t.ndim}")


def softmax(x: np.ndarray, axis: int | None = None) -> np.ndarray:
    """exp(x - logsumexp(x)) along `axis` (all elements when None), without overflow."""
    x = np.asarray(x, dtype=np.result_type(x, np.float32))
    shifted = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)
