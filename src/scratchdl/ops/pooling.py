"""Pooling over NCHW arrays: max, average, and global average."""

from __future__ import annotations

import numpy as np

from scratchdl.backend import (
    device_of,
    max_pool_2x2,
    max_pool_2x2_backward,
    namespace,
    pad_images,
    scatter_windows,
    window_slices,
    windows,
)
from scratchdl.core import Operation, ShapeError
from scratchdl.ops.conv import pair, resolve_padding


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
        self._check()
        return windows(self.input_, self.kernel_size, self.stride, self._pad, fill)

    def _check(self) -> None:
        """Raise for an input that is not (N, C, H, W) or smaller than the kernel; set
        `_pad` for it."""
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

    def _tiles(self) -> bool:
        """Whether the windows tile the input: stride = kernel, square, and no padding (rows
        and columns left over at the far edges are dropped, as the general path drops them)."""
        x = self.input_
        if x.ndim != 4:
            self._check()  # raises the shape error
        kh, kw = self.kernel_size
        self._pad = resolve_padding(self.padding, self.kernel_size, self.stride, x.shape[2:])
        return (
            kh == kw == self.stride and not any(self._pad) and x.shape[2] >= kh and x.shape[3] >= kw
        )

    def _offsets(self) -> list[tuple[int, int]]:
        kh, kw = self.kernel_size
        return [(i, j) for i in range(kh) for j in range(kw)]

    def _target(self, x: np.ndarray, i: int, j: int) -> tuple[slice, ...]:
        """The index of `x` that holds offset (i, j) of every window (fast path)."""
        kh, kw = self.kernel_size
        ho, wo = x.shape[2] // kh, x.shape[3] // kw
        return (slice(None), slice(None), slice(i, ho * kh, kh), slice(j, wo * kw, kw))

    def _slices(self, x: np.ndarray) -> list[np.ndarray]:
        return [x[self._target(x, i, j)] for i, j in self._offsets()]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding!r})"


class MaxPool2D(_Pool):
    """The largest value of each window. The gradient goes to one arg-max per window
    (the first, in row-major order, when several values tie).

    Windows that do not overlap and need no padding (stride = kernel, the usual 2×2) take a
    fast path: the maximum of kh·kw strided slices, and a backward pass that writes each
    slice's share in place — no window copies, no one-hot scatter. Both paths give the same
    values and gradients, ties included. With ``scratchdl[fast]`` (numba), 2×2 tiles of
    NumPy arrays go through one compiled loop each way (`scratchdl.backend.max_pool_2x2`),
    which gives the same bits again."""

    def _output(self, inference: bool) -> np.ndarray:
        xp = namespace(self.input_)
        self._which = None
        if self._tiles():
            if self.kernel_size == (2, 2):
                compiled = max_pool_2x2(self.input_)  # scratchdl[fast]; None without it
                if compiled is not None:
                    out, self._which = compiled
                    self._argmax = None
                    return out
            slices = self._slices(self.input_)
            self._argmax = None
            if xp is not np:
                out = slices[0]
                for other in slices[1:]:
                    out = xp.maximum(out, other)
                return out
            out = slices[0].copy()
            for other in slices[1:]:
                np.maximum(out, other, out=out)
            return out
        view = self._windows(-np.inf)
        n, c, ho, wo, kh, kw = view.shape
        flat = xp.reshape(view, (n, c, ho, wo, kh * kw))
        self._argmax = xp.argmax(flat, axis=-1)
        return xp.take_along_axis(flat, self._argmax[..., None], axis=-1)[..., 0]

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        xp = namespace(output_grad)
        kh, kw = self.kernel_size
        if self._which is not None and isinstance(output_grad, np.ndarray):  # compiled 2×2
            return max_pool_2x2_backward(output_grad, self._which, self.input_)
        if self._argmax is None:  # the fast path: the first slice equal to the maximum wins
            grad = xp.zeros_like(self.input_, dtype=output_grad.dtype)
            taken = xp.zeros(output_grad.shape, dtype=xp.bool, device=device_of(output_grad))
            for (i, j), value in zip(self._offsets(), self._slices(self.input_), strict=True):
                winner = value == self.output
                winner &= ~taken
                taken |= winner
                if xp is np:
                    grad[self._target(grad, i, j)] = output_grad * winner
                else:
                    grad[self._target(grad, i, j)] = xp.where(winner, output_grad, 0.0)
            return grad
        offsets = xp.arange(kh * kw, dtype=self._argmax.dtype, device=device_of(output_grad))
        one_hot = self._argmax[..., None] == offsets
        grad_windows = xp.where(one_hot, output_grad[..., None], 0.0)
        return scatter_windows(
            xp.reshape(grad_windows, (*output_grad.shape, kh, kw)),
            self.input_.shape,
            self.stride,
            self._pad,
        )


class AvgPool2D(_Pool):
    """The mean of each window (padding counts as zeros in the mean)."""

    def _output(self, inference: bool) -> np.ndarray:
        xp = namespace(self.input_)
        if self._tiles():  # non-overlapping windows without padding: strided slices
            slices = self._slices(self.input_)
        else:  # the kh·kw offsets of every window, over the zero-padded input
            self._check()
            padded = pad_images(self.input_, self._pad, 0.0)
            slices = window_slices(padded, self.kernel_size, self.stride)[0]
        # the same sum, in the same order, on every backend
        if xp is np:
            out = slices[0].astype(np.result_type(slices[0], np.float32), copy=True)
        else:
            out = xp.asarray(slices[0], copy=True)
        for other in slices[1:]:
            out += other
        out *= 1.0 / len(slices)
        return out

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        xp = namespace(output_grad)
        kh, kw = self.kernel_size
        share = output_grad * (1.0 / (kh * kw))
        if self._tiles():
            grad = xp.zeros_like(self.input_, dtype=output_grad.dtype)
            for i, j in self._offsets():
                grad[self._target(grad, i, j)] = share
            return grad
        grad_windows = xp.broadcast_to(share[..., None, None], (*output_grad.shape, kh, kw))
        return scatter_windows(grad_windows, self.input_.shape, self.stride, self._pad)


class GlobalAvgPool2D(Operation):
    """(N, C, H, W) -> (N, C): the mean of each channel."""

    def _output(self, inference: bool) -> np.ndarray:
        if self.input_.ndim != 4:
            raise ShapeError(
                f"{self.name}: input must have shape (batch, channels, height, width), received {self.input_.shape}"
            )
        return namespace(self.input_).mean(self.input_, axis=(2, 3))

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        xp = namespace(output_grad)
        h, w = self.input_.shape[2:]
        share = output_grad * (1.0 / (h * w))
        return xp.asarray(xp.broadcast_to(share[:, :, None, None], self.input_.shape), copy=True)
