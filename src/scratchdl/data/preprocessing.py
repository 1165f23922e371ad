"""Preprocessing: standardisation, one-hot encoding, seeded splits and batches."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from scratchdl.core import ShapeError

__all__ = ["Standardizer", "batches", "one_hot", "train_test_split"]


class Standardizer:
    """Scale features to mean 0 and standard deviation 1, with statistics from `fit`.

    Fit it on the training set and apply the same transform to the test set. Features
    with zero spread are only centred. ``axis=None`` uses one mean and one standard
    deviation for the whole array (the book's choice for MNIST pixels).
    """

    def __init__(self, axis: int | None = 0) -> None:
        self.axis = axis
        self.mean_: np.ndarray | None = None
        self.std_: np.ndarray | None = None

    def fit(self, X: np.ndarray) -> Standardizer:
        X = np.asarray(X, dtype=np.float64)
        self.mean_ = X.mean(axis=self.axis, keepdims=self.axis is not None)
        std = X.std(axis=self.axis, keepdims=self.axis is not None)
        self.std_ = np.where(std > 0, std, 1.0)
        return self

    def transform(self, X: np.ndarray, dtype: type | np.dtype = np.float32) -> np.ndarray:
        if self.mean_ is None or self.std_ is None:
            raise RuntimeError("Standardizer: call fit() before transform()")
        X = np.asarray(X)
        if self.axis is not None and X.shape[1:] != self.mean_.shape[1:]:
            raise ShapeError(
                f"Standardizer: fitted on examples of shape {self.mean_.shape[1:]}, received {X.shape[1:]}"
            )
        return ((X - self.mean_) / self.std_).astype(dtype)

    def fit_transform(self, X: np.ndarray, dtype: type | np.dtype = np.float32) -> np.ndarray:
        return self.fit(X).transform(X, dtype)


def one_hot(
    labels: np.ndarray, num_classes: int | None = None, dtype: type | np.dtype = np.float32
) -> np.ndarray:
    """Rows of zeros with a one at each integer label."""
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"one_hot: labels must be integers. Received dtype {labels.dtype}")
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"one_hot: labels must be in [0, {num_classes}). Received: min {labels.min()}, max {labels.max()}"
        )
    out = np.zeros((*labels.shape, num_classes), dtype=dtype)
    np.put_along_axis(out, labels[..., None], 1, axis=-1)
    return out


def train_test_split(
    X: np.ndarray, y: np.ndarray, test_size: float = 0.3, seed: int | None = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(X_train, X_test, y_train, y_test)`` from one seeded permutation of the rows."""
    X, y = np.asarray(X), np.asarray(y)
    if X.shape[0] != y.shape[0]:
        raise ShapeError(
            f"train_test_split: X and y must have as many rows; received {X.shape} and {y.shape}"
        )
    if not 0 < test_size < 1:
        raise ValueError(
            f"train_test_split: test_size must be in (0, 1). Received: test_size={test_size}"
        )
    n = X.shape[0]
    n_test = round(n * test_size)
    if n_test == 0 or n_test == n:
        raise ValueError(
            f"train_test_split: test_size={test_size} of {n} rows leaves an empty split"
        )
    order = np.random.default_rng(seed).permutation(n)
    test, train = order[:n_test], order[n_test:]
    return X[train], X[test], y[train], y[test]


def batches(
    X: np.ndarray,
    y: np.ndarray,
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(X_batch, y_batch)``; the last batch may be smaller."""
    if batch_size < 1:
        raise ValueError(f"batches: batch_size must be >= 1. Received: batch_size={batch_size}")
    n = X.shape[0]
    if y.shape[0] != n:
        raise ShapeError(
            f"batches: X and y must have as many rows; received {X.shape} and {y.shape}"
        )
    order = np.random.default_rng(seed).permutation(n) if shuffle else None
    for start in range(0, n, batch_size):
        if order is None:
            yield X[start : start + batch_size], y[start : start + batch_size]
        else:
            idx = order[start : start + batch_size]
            yield X[idx], y[idx]
