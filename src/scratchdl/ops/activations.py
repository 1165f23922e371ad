"""Element-wise activations and softmax. Each keeps its input's dtype."""

from __future__ import annotations

import copy
import functools
from typing import Any

import numpy as np

from scratchdl.backend import host_dtype, namespace, relu, relu_backward, tanh_backward
from scratchdl.core import Operation


class Linear(Operation):
    """The identity: output equals input."""

    def _output(self, inference: bool) -> np.ndarray:
        return self.input_

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        return output_grad


class Sigmoid(Operation):
    """Logistic function 1 / (1 + exp(-x)), without overflow for any finite input.

    The input is clipped to the range where exp stays finite and normal in its dtype
    (about ±67 for float32); beyond it the result is 0 or 1 to the dtype's precision.
    """

    def _output(self, inference: bool) -> np.ndarray:
        return sigmoid(self.input_)

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        s = self.output
        return output_grad * s * (1 - s)


class Tanh(Operation):
    """Hyperbolic tangent, element-wise."""

    def _output(self, inference: bool) -> np.ndarray:
        return namespace(self.input_).tanh(self.input_)

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        fused = tanh_backward(output_grad, self.output)  # scratchdl[fast]; None without it
        if fused is not None:
            return fused
        return output_grad * (1 - self.output * self.output)


class ReLU(Operation):
    """max(x, 0). The gradient passes where the input is positive.

    With ``scratchdl[fast]`` each direction is one compiled pass over NumPy arrays
    (`scratchdl.backend.relu`), with the same bits: 0.28 ms against 0.07 ms forward over
    a (64, 16, 28, 28) float32 batch, 0.21 against 0.09 ms backward (measured)."""

    def _output(self, inference: bool) -> np.ndarray:
        compiled = relu(self.input_)  # scratchdl[fast]; None without it
        if compiled is not None:
            return compiled
        return namespace(self.input_).maximum(self.input_, 0.0)

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        compiled = relu_backward(output_grad, self.input_)
        if compiled is not None:
            return compiled
        if isinstance(output_grad, np.ndarray):
            return output_grad * (self.input_ > 0)
        return namespace(output_grad).where(self.input_ > 0, output_grad, 0.0)


class LeakyReLU(Operation):
    """x where x > 0, else alpha * x."""

    def __init__(self, alpha: float = 0.01) -> None:
        if not 0 <= alpha < 1:
            raise ValueError(f"LeakyReLU: alpha must be in [0, 1). Received: alpha={alpha}")
        self.alpha = float(alpha)

    def _output(self, inference: bool) -> np.ndarray:
        x = self.input_
        return namespace(x).where(x > 0, x, self.alpha * x)

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        xp = namespace(output_grad)
        return xp.where(self.input_ > 0, output_grad, self.alpha * output_grad)

    def __repr__(self) -> str:
        return f"LeakyReLU(alpha={self.alpha})"


class Softmax(Operation):
    """Softmax over the last axis, computed stably by subtracting the row maximum.

    As the last operation before `SoftmaxCrossEntropy` it is not needed: that loss takes
    logits. Use it when a model should output probabilities.
    """

    def _output(self, inference: bool) -> np.ndarray:
        return softmax(self.input_)

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        s = self.output
        xp = namespace(s)
        return s * (output_grad - xp.sum(output_grad * s, axis=-1, keepdims=True))


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """1 / (1 + exp(-x)) in x's dtype, with x clipped so that exp neither overflows nor
    underflows (see `Sigmoid`). A NumPy `out` (of x's shape and dtype) receives the result
    and is returned; other arrays ignore it."""
    limit = _exp_limit(x.dtype)
    if not isinstance(x, np.ndarray):
        xp = namespace(x)
        return 1.0 / (1.0 + xp.exp(-xp.clip(x, -limit, limit)))
    out = np.clip(x, -limit, limit, out=out)
    np.negative(out, out=out)
    np.exp(out, out=out)
    out += 1
    return np.reciprocal(out, out=out)


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis of `x`, in `x`'s dtype, with no overflow or underflow."""
    if not isinstance(x, np.ndarray):
        xp = namespace(x)
        out = xp.exp(xp.maximum(x - xp.max(x, axis=-1, keepdims=True), -_exp_limit(x.dtype)))
        return out / xp.sum(out, axis=-1, keepdims=True)
    out = x - x.max(axis=-1, keepdims=True)
    np.maximum(out, -_exp_limit(out.dtype), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=-1, keepdims=True)
    return out


def _exp_limit(dtype: Any) -> float:
    """`_exp_limit_of` for the dtype of any array library (cached by its NumPy twin, since
    array_api_strict dtypes warn when compared with NumPy's)."""
    return _exp_limit_of(dtype if isinstance(dtype, np.dtype) else host_dtype(dtype))


@functools.cache
def _exp_limit_of(dtype: np.dtype) -> float:
    """A bound on |x| that keeps exp(-|x|) normal in `dtype`, with room to spare.

    The margin (a factor e^20 above the smallest normal number) lets the result be
    multiplied by small gradients without underflow; about 67 for float32.
    """
    info = np.finfo(dtype if np.issubdtype(dtype, np.floating) else np.float64)
    return -float(np.log(info.tiny)) - 20.0


ACTIVATIONS: dict[str, type[Operation]] = {
    "linear": Linear,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "softmax": Softmax,
}


def get_activation(spec: Operation | str | None, default: type[Operation] = Sigmoid) -> Operation:
    """A fresh activation operation from an instance, a name, or None (the default).

    An instance is copied, so one object passed to two layers never shares state.
    """
    if spec is None:
        return default()
    if isinstance(spec, Operation):
        return copy.copy(spec)
    if isinstance(spec, str) and spec.lower() in ACTIVATIONS:
        return ACTIVATIONS[spec.lower()]()
    raise ValueError(
        f"activation must be an Operation or one of {sorted(ACTIVATIONS)}. Received: {spec!r}"
    )
