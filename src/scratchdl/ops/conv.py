"""2-D convolution over NCHW arrays, as im2col (a strided view) and one matrix multiply.

Forward: the padded input's k×k windows are taken as a strided view
(`sliding_window_view`; kh·kw strided slices for other array libraries), copied once into a (C·kh·kw, N·Ho·Wo) matrix, and multiplied by
the (F, C·kh·kw) filter matrix. Backward: the filter gradient is one more product with
that matrix; the input gradient multiplies the output gradient by the filters and adds the
kh·kw slices back into place with one strided, vectorised addition per kernel offset
(`backend.col2im`: no `np.add.at`, no loop over examples or pixels). With
``scratchdl[fast]`` both copies are one compiled pass each, with the same bits, and a
stride-1 convolution with few filters skips im2col altogether: compiled direct kernels
(`backend.conv2d_direct`) compute it from the padded input, to rounding of the same values.
"""

from __future__ import annotations

import numpy as np

from scratchdl.backend import (
    col2im,
    conv2d_direct,
    conv2d_direct_filter_grad,
    conv2d_direct_input_grad,
    fast_kernels,
    im2col,
    namespace,
    scatter_windows,
    windows,
)
from scratchdl.core import ParamOperation, ShapeError

__all__ = [
    "ChannelBias",
    "Conv2DOperation",
    "conv_output_size",
    "pair",
    "resolve_padding",
    "scatter_windows",
    "windows",
]

Padding = tuple[int, int, int, int]  # top, bottom, left, right


def pair(owner: str, name: str, value: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """(a, b) from a positive int or a pair of them; `owner` and `name` go into the error."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1:
        return (int(value), int(value))
    if (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, int) and v >= 1 for v in value)
    ):
        return (value[0], value[1])
    raise ValueError(
        f"{owner}: {name} must be a positive int or a pair of them. Received: {name}={value!r}"
    )


def resolve_padding(
    padding: str | int | tuple, kernel: tuple[int, int], stride: int, size: tuple[int, int]
) -> Padding:
    """(top, bottom, left, right) for ``"valid"``, ``"same"`` (output = ceil(input / stride);
    an odd total puts the extra row or column at the bottom or right), an int or a pair."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        pads = []
        for k, n in zip(kernel, size, strict=True):
            out = -(-n // stride)
            total = max((out - 1) * stride + k - n, 0)
            pads += [total // 2, total - total // 2]
        return (pads[0], pads[1], pads[2], pads[3])
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool) and padding >= 0:
        return (int(padding),) * 4
    if (
        isinstance(padding, (tuple, list))
        and len(padding) == 2
        and all(isinstance(p, int) and p >= 0 for p in padding)
    ):
        return (padding[0], padding[0], padding[1], padding[1])
    raise ValueError(
        f"padding must be 'same', 'valid', a non-negative int or (rows, cols). Received: padding={padding!r}"
    )


def conv_output_size(size: int, kernel: int, stride: int, pad_before: int, pad_after: int) -> int:
    """Output length along one axis: floor((size + pads - kernel) / stride) + 1."""
    return (size + pad_before + pad_after - kernel) // stride + 1


class Conv2DOperation(ParamOperation):
    """Cross-correlation of (N, C, H, W) inputs with a (F, C, kh, kw) filter bank.

    The im2col matrix is built "channels-major", (C·kh·kw, N·Ho·Wo): for each channel and
    kernel offset its row is a run of whole output images, which the strided window view
    delivers with unit stride along the image rows, and which the backward pass can add
    back into the input with unit stride too.
    """

    param_names = ("filters",)

    def __init__(
        self, param: np.ndarray, stride: int = 1, padding: str | int | tuple = "same"
    ) -> None:
        if param.ndim != 4:
            raise ShapeError(
                f"Conv2DOperation: filters must have shape (out, in, kh, kw), received {param.shape}"
            )
        super().__init__(param)
        self.stride = int(stride)
        self.padding = padding

    def _output(self, inference: bool) -> np.ndarray:
        x = self.input_
        f, c, kh, kw = self.param.shape
        if x.ndim != 4:
            raise ShapeError(
                f"{self.name}: input must have shape (batch, channels, height, width), received {x.shape}"
            )
        if x.shape[1] != c:
            raise ShapeError(
                f"{self.name}: input must have {c} channels (shape (batch, {c}, H, W)), received {x.shape}"
            )
        self._pad = resolve_padding(self.padding, (kh, kw), self.stride, x.shape[2:])
        top, bottom, left, right = self._pad
        if x.shape[2] + top + bottom < kh or x.shape[3] + left + right < kw:
            raise ShapeError(
                f"{self.name}: kernel {kh}x{kw} is larger than the padded image "
                f"{x.shape[2] + top + bottom}x{x.shape[3] + left + right} (input {x.shape})"
            )
        direct = conv2d_direct(x, self.param, self.stride, self._pad)  # scratchdl[fast]
        if direct is not None:
            out, self._padded, self._wp = direct
            self._cols = None
            return out
        xp = namespace(x)
        n = x.shape[0]
        self._padded = None
        self._cols, ho, wo = im2col(x, (kh, kw), self.stride, self._pad)
        out = xp.reshape(self.param, (f, -1)) @ self._cols  # (F, N*Ho*Wo)
        return xp.permute_dims(xp.reshape(out, (f, n, ho, wo)), (1, 0, 2, 3))

    def _param_grad(self, output_grad: np.ndarray) -> np.ndarray:
        xp = namespace(output_grad)
        f, _, kh, kw = self.param.shape
        if self._cols is None:  # the direct kernels ran forward
            if isinstance(self._padded, np.ndarray) and fast_kernels() is not None:
                grad, self._wide = conv2d_direct_filter_grad(
                    output_grad, self._padded, self._wp, self.param.shape
                )
                return grad
            # the network moved to another library since, or the kernels were turned
            # off: im2col of the padded input, and on as below
            n, c = self._padded.shape[:2]
            padded = xp.reshape(self._padded, (n, c, -1, self._wp))
            self._cols = im2col(padded, (kh, kw), 1, (0, 0, 0, 0))[0]
        # (F, N*Ho*Wo)
        self._grad2d = xp.reshape(xp.permute_dims(output_grad, (1, 0, 2, 3)), (f, -1))
        if self._cols.shape[0] > f:
            # the same product with the longer side as its rows: (C·kh·kw, F), transposed.
            # OpenBLAS took 0.57-0.80x the time of grad2d @ colsᵀ for such shapes (3x3
            # and 5x5 kernels, 1 or 2 threads), and the same time or more when C·kh·kw <= F
            grad = xp.matrix_transpose(self._cols @ xp.matrix_transpose(self._grad2d))
            if isinstance(grad, np.ndarray):  # a small copy, so that optimizers see C order
                grad = np.ascontiguousarray(grad)
        else:
            grad = self._grad2d @ xp.matrix_transpose(self._cols)
        return xp.reshape(grad, self.param.shape)

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        if self._cols is None:  # the direct kernels ran forward and backward
            wide, self._wide = self._wide, None
            return conv2d_direct_input_grad(
                wide, self._wp, self.param, self.input_.shape, self._pad
            )
        xp = namespace(output_grad)
        f, _, kh, kw = self.param.shape
        ho, wo = output_grad.shape[2:]
        grad_cols = xp.reshape(self.param, (f, -1)).T @ self._grad2d  # (C*kh*kw, N*Ho*Wo)
        return col2im(grad_cols, self.input_.shape, (kh, kw), self.stride, self._pad, (ho, wo))

    def __repr__(self) -> str:
        f, c, kh, kw = self.param.shape
        return (
            f"Conv2DOperation({c}->{f}, {kh}x{kw}, stride={self.stride}, padding={self.padding!r})"
        )


class ChannelBias(ParamOperation):
    """Adds one bias per channel to (N, C, H, W) inputs; the parameter has shape (1, C, 1, 1)."""

    param_names = ("bias",)

    def _output(self, inference: bool) -> np.ndarray:
        if self.input_.ndim != 4 or self.input_.shape[1] != self.param.shape[1]:
            raise ShapeError(
                f"{self.name}: input must have shape (batch, {self.param.shape[1]}, H, W), received {self.input_.shape}"
            )
        return self.input_ + self.param

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        return output_grad

    def _param_grad(self, output_grad: np.ndarray) -> np.ndarray:
        return namespace(output_grad).sum(output_grad, axis=(0, 2, 3), keepdims=True)


def fan_in_out(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a (F, C, kh, kw) filter bank."""
    f, c, kh, kw = shape
    return c * kh * kw, f * kh * kw
