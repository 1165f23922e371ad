"""`Dense`: the fully connected layer, x @ W + b followed by an activation."""

from __future__ import annotations

import numpy as np

from scratchdl.core import Operation, ShapeError, check_flag
from scratchdl.layers.base import Layer
from scratchdl.ops.activations import get_activation
from scratchdl.ops.dense import BiasAdd, WeightMultiply
from scratchdl.ops.dropout import Dropout, dropout_argument, layer_dropout

WEIGHT_INITS = ("standard", "glorot", "he", "normal")


def init_std(weight_init: str, fan_in: int, fan_out: int) -> float:
    """Standard deviation of the normal distribution a weight is drawn from.

    ``"standard"`` is N(0, 1), as the book's default (``"normal"``, the default of the book's
    `Conv2D`, is the same); ``"glorot"`` uses variance
    2 / (fan_in + fan_out) (Glorot & Bengio 2010, as the book describes it);
    ``"he"`` uses variance 2 / fan_in (He et al. 2015), suited to ReLU.
    """
    if weight_init in ("standard", "normal"):
        return 1.0
    if weight_init == "glorot":
        return float(np.sqrt(2.0 / (fan_in + fan_out)))
    if weight_init == "he":
        return float(np.sqrt(2.0 / fan_in))
    raise ValueError(
        f"weight_init must be one of {WEIGHT_INITS}. Received: weight_init={weight_init!r}"
    )


class Dense(Layer):
    """A fully connected layer: ``activation(x @ W + b)``, then optional dropout.

    Args:
        neurons: number of outputs.
        activation: an `Operation` (copied, so never shared between layers), a name such as
            ``"tanh"``, or None for a fresh `Sigmoid`, the book's default.
        conv_in: the book's flag for a layer after a convolution; accepted for its signature,
            and without effect, as in the book (flatten with ``Conv2D(..., flatten=True)``).
        dropout: the probability of *keeping* a unit, as in the book (1.0: no dropout), or a
            `Dropout` (e.g. ``Dropout(0.8, inverted=False)``, the book's form).
        weight_init: ``"standard"``, ``"glorot"`` or ``"he"`` (see `init_std`). The bias is
            drawn from the same distribution, as in the book.

    The positional order is the book's. The input is (batch, features); after a recurrent
    or embedding layer it may be (batch, time, features), transformed at every time step
    with the same weights. A rank-3 input to the first layer of a network (unflattened
    images), or a rank-4 one anywhere, is refused with a `ShapeError` saying how to flatten.
    """

    def __init__(
        self,
        neurons: int,
        activation: Operation | str | None = None,
        conv_in: bool = False,
        dropout: float | Dropout = 1.0,
        weight_init: str = "standard",
    ) -> None:
        super().__init__(neurons)
        self.conv_in = check_flag("Dense", "conv_in", conv_in)
        if weight_init not in WEIGHT_INITS:
            raise ValueError(
                f"Dense: weight_init must be one of {WEIGHT_INITS}. Received: weight_init={weight_init!r}"
            )
        self.activation = get_activation(activation)
        self.weight_init = weight_init
        settings = layer_dropout("Dense", dropout)
        self.dropout = settings.keep_prob
        self.dropout_inverted = settings.inverted

    def _setup_layer(self, input_: np.ndarray) -> None:
        if input_.ndim > 3 or (input_.ndim == 3 and self.index == 1):
            raise ShapeError(
                f"{self.name}: input must have shape (batch, features), received {input_.shape}; "
                "flatten the examples first (X.reshape(len(X), -1)), or put Flatten() before "
                "this layer (Conv2D(..., flatten=True) after a convolution). A Dense layer "
                "takes (batch, time, features) only after a recurrent or embedding layer"
            )
        if input_.ndim < 2:
            raise ShapeError(
                f"{self.name}: input must have shape (batch, features), received {input_.shape}"
            )
        num_in = input_.shape[-1]
        dtype = self._float_dtype(input_)
        std = init_std(self.weight_init, num_in, self.neurons)
        weights = (self.rng.standard_normal((num_in, self.neurons)) * std).astype(dtype)
        bias = (self.rng.standard_normal((1, self.neurons)) * std).astype(dtype)
        self.operations = [WeightMultiply(weights), BiasAdd(bias), self.activation]
        if self.dropout < 1.0:
            self.operations.append(Dropout(self.dropout, self.dropout_inverted, rng=self.rng))

    def __repr__(self) -> str:
        extra = "" if self.weight_init == "standard" else f", weight_init={self.weight_init!r}"
        if self.dropout < 1.0:
            extra += f", dropout={dropout_argument(self.dropout, self.dropout_inverted)!r}"
        return f"Dense(neurons={self.neurons}, activation={self.activation!r}{extra})"
