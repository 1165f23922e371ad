"""Convolutional layers: `Conv2D` and `BatchNorm`."""

from __future__ import annotations

import numpy as np

from scratchdl.core import Operation, ShapeError, check_flag
from scratchdl.layers.base import Layer
from scratchdl.layers.dense import WEIGHT_INITS, init_std
from scratchdl.ops.activations import Linear, get_activation
from scratchdl.ops.conv import ChannelBias, Conv2DOperation, conv_output_size, pair, resolve_padding
from scratchdl.ops.dropout import Dropout, dropout_argument, layer_dropout
from scratchdl.ops.normalization import BatchNormOp
from scratchdl.ops.reshape import Flatten


class Conv2D(Layer):
    """A 2-D convolution over (batch, channels, height, width) inputs, then bias,
    activation, optional dropout and optional flattening, as the book's Conv2D layer.

    Args:
        out_channels: number of filters.
        kernel_size: an int (square) or (kh, kw); odd or even. ``param_size`` is the book's
            name for it and is accepted as an alias.
        stride: the step between windows.
        padding: ``"same"`` (output = ceil(input / stride)), ``"valid"``, an int or (rows, cols).
        bias: add one bias per filter.
        activation: an `Operation` or a name; default `Linear`, as in the book.
        weight_init: ``"standard"`` N(0, 1), ``"glorot"`` or ``"he"``, with fans
            in_channels·kh·kw and out_channels·kh·kw.
        dropout: probability of keeping a value (1.0: none), as in the book, or a `Dropout`
            (``Dropout(0.8, inverted=False)`` for the book's form).
        flatten: reshape the output to (batch, features), for a following `Dense`.
    """

    def __init__(
        self,
        out_channels: int | None = None,
        kernel_size: int | tuple[int, int] | None = None,
        stride: int = 1,
        padding: str | int | tuple[int, int] = "same",
        bias: bool = True,
        activation: Operation | str | None = None,
        weight_init: str = "standard",
        dropout: float | Dropout = 1.0,
        flatten: bool = False,
        param_size: int | tuple[int, int] | None = None,
    ) -> None:
        if kernel_size is None:
            kernel_size = param_size
        elif param_size is not None and pair("Conv2D", "kernel_size", param_size) != pair(
            "Conv2D", "kernel_size", kernel_size
        ):
            raise ValueError(
                f"Conv2D: give kernel_size or param_size, not both. Received: {kernel_size}, {param_size}"
            )
        if kernel_size is None:
            raise ValueError(
                "Conv2D: kernel_size (or the book's param_size) is required. Received: None"
            )
        super().__init__(out_channels)
        if out_channels is None:
            raise ValueError("Conv2D: out_channels is required. Received: None")
        self.kernel_size = pair("Conv2D", "kernel_size", kernel_size)
        if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
            raise ValueError(
                f"Conv2D: stride must be a positive integer. Received: stride={stride!r}"
            )
        self.stride = int(stride)
        resolve_padding(padding, self.kernel_size, self.stride, (1, 1))  # validates the spelling
        self.padding = list(padding) if isinstance(padding, tuple) else padding
        if weight_init not in WEIGHT_INITS:
            raise ValueError(
                f"Conv2D: weight_init must be one of {WEIGHT_INITS}. Received: weight_init={weight_init!r}"
            )
        self.bias = check_flag("Conv2D", "bias", bias)
        self.activation = get_activation(activation, default=Linear)
        self.weight_init = weight_init
        settings = layer_dropout("Conv2D", dropout)
        self.dropout = settings.keep_prob
        self.dropout_inverted = settings.inverted
        self.flatten = check_flag("Conv2D", "flatten", flatten)

    @property
    def out_channels(self) -> int:
        return self.neurons  # type: ignore[return-value]

    def _check(self, input_shape: tuple[int, ...]) -> tuple[int, int, int]:
        if len(input_shape) != 3:
            raise ShapeError(
                f"{self.name}: input must have shape (batch, channels, height, width), received (batch, {', '.join(map(str, input_shape))})"
            )
        return input_shape  # type: ignore[return-value]

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        _, h, w = self._check(input_shape)
        top, bottom, left, right = resolve_padding(
            self.padding, self.kernel_size, self.stride, (h, w)
        )
        ho = conv_output_size(h, self.kernel_size[0], self.stride, top, bottom)
        wo = conv_output_size(w, self.kernel_size[1], self.stride, left, right)
        if ho < 1 or wo < 1:
            raise ShapeError(
                f"{self.name}: kernel {self.kernel_size} is larger than the padded image for input {input_shape}"
            )
        shape = (self.out_channels, ho, wo)
        return (int(np.prod(shape)),) if self.flatten else shape

    def _setup_layer(self, input_: np.ndarray) -> None:
        if input_.ndim != 4:
            raise ShapeError(
                f"{self.name}: input must have shape (batch, channels, height, width), received {input_.shape}"
            )
        _, c, h, w = input_.shape
        if self.index == 1 and w in (1, 3, 4) and c > 4 and c == h:
            raise ShapeError(
                f"{self.name}: input {input_.shape} looks channels-last (batch, height, width, "
                f"channels); Conv2D takes (batch, channels, height, width): pass "
                "X.transpose(0, 3, 1, 2)"
            )
        self.compute_output_shape(input_.shape[1:])  # kernel-size check, with the layer's name
        dtype = self._float_dtype(input_)
        f, c, (kh, kw) = self.out_channels, input_.shape[1], self.kernel_size
        std = init_std(self.weight_init, c * kh * kw, f * kh * kw)
        filters = (self.rng.standard_normal((f, c, kh, kw)) * std).astype(dtype)
        self.operations = [Conv2DOperation(filters, self.stride, self.padding)]
        if self.bias:
            bias = self.rng.standard_normal((1, f, 1, 1)) * std
            self.operations.append(ChannelBias(bias.astype(dtype)))
        self.operations.append(self.activation)
        if self.dropout < 1.0:
            self.operations.append(Dropout(self.dropout, self.dropout_inverted, rng=self.rng))
        if self.flatten:
            self.operations.append(Flatten())

    def __repr__(self) -> str:
        extra = f", stride={self.stride}" if self.stride != 1 else ""
        extra += f", padding={self.padding!r}" if self.padding != "same" else ""
        extra += f", weight_init={self.weight_init!r}" if self.weight_init != "standard" else ""
        extra += (
            f", dropout={dropout_argument(self.dropout, self.dropout_inverted)!r}"
            if self.dropout < 1
            else ""
        )
        extra += ", flatten=True" if self.flatten else ""
        return f"Conv2D({self.out_channels}, kernel_size={self.kernel_size}, activation={self.activation!r}{extra})"


class BatchNorm(Layer):
    """Batch normalisation over the channel axis of (N, C) or (N, C, H, W) inputs.

    `gamma` starts at 1 and `beta` at 0; running statistics (mean 0, variance 1 at first)
    are used at inference and saved in model files, never changed by optimizers.
    `momentum` weighs the old running value: running = momentum·running + (1-momentum)·batch.
    """

    def __init__(self, momentum: float = 0.9, eps: float = 1e-5) -> None:
        super().__init__()
        if not 0 <= momentum < 1:
            raise ValueError(
                f"BatchNorm: momentum must be in [0, 1). Received: momentum={momentum}"
            )
        if not eps > 0:
            raise ValueError(f"BatchNorm: eps must be > 0. Received: eps={eps}")
        self.momentum = float(momentum)
        self.eps = float(eps)

    def _channels(self, input_shape: tuple[int, ...]) -> int:
        if len(input_shape) not in (1, 3):
            raise ShapeError(
                f"{self.name}: input must have shape (batch, channels) or (batch, channels, H, W), "
                f"received (batch, {', '.join(map(str, input_shape))})"
            )
        return input_shape[0]

    def _setup_layer(self, input_: np.ndarray) -> None:
        c = self._channels(input_.shape[1:])
        dtype = self._float_dtype(input_)
        self._reserve(4 * c)
        self.operations = [
            BatchNormOp(
                np.ones((1, c), dtype),
                np.zeros((1, c), dtype),
                np.zeros(c, dtype),
                np.ones(c, dtype),
                self.momentum,
                self.eps,
            )
        ]

    def __repr__(self) -> str:
        return f"BatchNorm(momentum={self.momentum}, eps={self.eps})"
