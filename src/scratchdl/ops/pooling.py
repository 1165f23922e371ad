"""Pooling over NCHW arrays: max, average, and global average."""

from __future__ import annotations

import numpy as np

from scratchdl.core import Operation, ShapeError
from scratchdl.ops.conv import pair, resolve_padding, scatter_windows, windows


class _Pool(Operation):
    """Shared set-up for the windowed pools: kernel, stride (default: the kernel), padding."""

    def __init__(
        self,
        kernel_size: int | tuple[int, int] = 2,
        stride: int | None = None,
        padding: int | str = 0,
    ) -> None:
        self.kernel_size = pair(type(self).__name__, "kernel_size", kernel_size)
        if stride is not None and (
            not isinstance(stride, (int, np.integer)) or isinstance(stride, bool) or stride < 1
        ):
            raise ValueError(
                f"{type(self).__name__}: stride must be a positive int. Received: stride={stride!r}"
            )
        self.stride = self.kernel_size[0] if stride is None else int(stride)
        resolve_padding(padding, self.kernel_size, self.stride, (1, 1))  # validates
        self.padding = padding

    def _windows(self, fill: float) -> np.ndarray:
        x = self.input_
        if x.ndim != 4:
            raise ShapeError(
                f"{self.name}: input must have shape (batch, channels, height, width), received {x.shape}"
            )
        self._pad = resolve_padding(self.padding, self.kernel_size, self.stride, x.shape[2:])
        top, bottom, left, right = self._pad
        kh, kw = self.kernel_size
        if x.shape[2] + top + bottom < kh or x.shape[3] + left + right < kw:
            raise ShapeError(
                f"{self.name}: kernel {kh}x{kw} is larger than the padded image, input {x.shape}"
            )
        return windows(x, self.kernel_size, self.stride, self._pad, fill)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding!r})"


class MaxPool2D(_Pool):
    """The largest value of each window. The gradient goes to one arg-max per window
    (the first, in row-major order, when several values tie)."""

    def _output(self, inference: bool) -> np.ndarray:
        view = self._windows(-np.inf)
        n, c, ho, wo, kh, kw = view.shape
        flat = view.reshape(n, c, ho, wo, kh * kw)
        self._argmax = flat.argmax(axis=-1)
        return np.take_along_axis(flat, self._argmax[..., None], axis=-1)[..., 0]

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        kh, kw = self.kernel_size
        one_hot = self._argmax[..., None] == np.arange(kh * kw)
        grad_windows = (one_hot * output_grad[..., None]).reshape(*output_grad.shape, kh, kw)
        return scatter_windows(
            grad_windows.astype(output_grad.dtype, copy=False),
            self.input_.shape,
            self.stride,
            self._pad,
        )


class AvgPool2D(_Pool):
    """The mean of each window (padding counts as zeros in the mean)."""

    def _output(self, inference: bool) -> np.ndarray:
        return self._windows(0.0).mean(axis=(-2, -1))

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        kh, kw = self.kernel_size
        share = output_grad * output_grad.dtype.type(1.0 / (kh * kw))
        grad_windows = np.broadcast_to(share[..., None, None], (*output_grad.shape, kh, kw))
        return scatter_windows(grad_windows, self.input_.shape, self.stride, self._pad)


class GlobalAvgPool2D(Operation):
    """(N, C, H, W) -> (N, C): the mean of each channel."""

    def _output(self, inference: bool) -> np.ndarray:
        if self.input_.ndim != 4:
            raise ShapeError(
                f"{self.name}: input must have shape (batch, channels, height, width), received {self.input_.shape}"
            )
        return self.input_.mean(axis=(2, 3))

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        h, w = self.input_.shape[2:]
        share = output_grad * output_grad.dtype.type(1.0 / (h * w))
        return np.broadcast_to(share[:, :, None, None], self.input_.shape).copy()
