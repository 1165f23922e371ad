"""Differentiable functions of tensors: nonlinearities, softmax, joining and padding.

Each function computes with NumPy and records a backward rule written with Tensor
operations, so its gradients can be differentiated again.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from scratchdl.autograd.tensor import Tensor, as_tensor, getitem, log, matmul

__all__ = [
    "concatenate",
    "exp",
    "leaky_relu",
    "log",
    "log_softmax",
    "matmul",
    "pad",
    "relu",
    "sigmoid",
    "softmax",
    "stack",
    "tanh",
]


def exp(x: Any) -> Tensor:
    """e ** x, element-wise."""
    x = as_tensor(x)
    out = Tensor._make(np.exp(x.data), "exp", (x,), lambda g: (g * out,))
    return out


def tanh(x: Any) -> Tensor:
    """Hyperbolic tangent; d/dx = 1 - tanh²."""
    x = as_tensor(x)
    out = Tensor._make(np.tanh(x.data), "tanh", (x,), lambda g: (g * (1 - out * out),))
    return out


def sigmoid(x: Any) -> Tensor:
    """1 / (1 + e^-x), computed without overflow; d/dx = s·(1 - s)."""
    x = as_tensor(x)
    data = x.data
    e = np.exp(-np.abs(data))
    value = np.where(data >= 0, 1 / (1 + e), e / (1 + e))
    out = Tensor._make(value, "sigmoid", (x,), lambda g: (g * out * (1 - out),))
    return out


def relu(x: Any) -> Tensor:
    """max(x, 0); the gradient passes where x > 0."""
    x = as_tensor(x)
    mask = (x.data > 0).astype(x.dtype)
    return Tensor._make(x.data * mask, "relu", (x,), lambda g: (g * mask,))


def leaky_relu(x: Any, alpha: float = 0.01) -> Tensor:
    """x where x > 0, else alpha·x."""
    x = as_tensor(x)
    slope = np.where(x.data > 0, 1.0, alpha).astype(x.dtype)
    return Tensor._make(x.data * slope, "leaky_relu", (x,), lambda g: (g * slope,))


def softmax(x: Any, axis: int = -1) -> Tensor:
    """exp(x) / Σ exp(x) along `axis`, shifted by the maximum so it never overflows."""
    x = as_tensor(x)
    shifted = x.data - x.data.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    value = e / e.sum(axis=axis, keepdims=True)

    def backward(g: Tensor) -> tuple[Tensor]:
        return (out * (g - (g * out).sum(axis=axis, keepdims=True)),)

    out = Tensor._make(value, "softmax", (x,), backward, info=f"axis={axis}")
    return out


def log_softmax(x: Any, axis: int = -1) -> Tensor:
    """x - log Σ exp(x) along `axis` (log-sum-exp, no overflow); the log-probabilities."""
    x = as_tensor(x)
    m = x.data.max(axis=axis, keepdims=True)
    value = x.data - m - np.log(np.exp(x.data - m).sum(axis=axis, keepdims=True))

    def backward(g: Tensor) -> tuple[Tensor]:
        return (g - exp(out) * g.sum(axis=axis, keepdims=True),)

    out = Tensor._make(value, "log_softmax", (x,), backward, info=f"axis={axis}")
    return out


def stack(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Tensors of one shape joined along a new `axis`."""
    items = [as_tensor(t) for t in tensors]
    value = np.stack([t.data for t in items], axis=axis)

    def backward(g: Tensor) -> tuple[Tensor, ...]:
        index = [slice(None)] * g.ndim
        parts = []
        for i in range(len(items)):
            index[axis] = i
            parts.append(getitem(g, tuple(index)))
        return tuple(parts)

    return Tensor._make(value, "stack", items, backward, info=f"{len(items)} tensors")


def concatenate(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Tensors joined along an existing `axis`."""
    items = [as_tensor(t) for t in tensors]
    value = np.concatenate([t.data for t in items], axis=axis)
    bounds = np.cumsum([0] + [t.shape[axis] for t in items])

    def backward(g: Tensor) -> tuple[Tensor, ...]:
        index = [slice(None)] * g.ndim
        parts = []
        for start, stop in itertools.pairwise(bounds):
            index[axis] = slice(int(start), int(stop))
            parts.append(getitem(g, tuple(index)))
        return tuple(parts)

    return Tensor._make(value, "concatenate", items, backward)


def pad(x: Any, widths: Sequence[tuple[int, int]], value: float = 0.0) -> Tensor:
    """`x` with `widths[i] = (before, after)` entries of `value` added along axis i."""
    x = as_tensor(x)
    widths = [tuple(int(v) for v in w) for w in widths]
    inner = tuple(slice(b, b + n) for (b, _), n in zip(widths, x.shape, strict=True))
    return Tensor._make(
        np.pad(x.data, widths, constant_values=value), "pad", (x,),
        lambda g: (getitem(g, inner),),
    )  # fmt: skip
