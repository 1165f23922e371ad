"""Dropout: inverted (the default) or in the original paper's and the book's form."""

from __future__ import annotations

import numpy as np

from scratchdl.backend import host_dtype, like
from scratchdl.core import Operation, check_flag


class Dropout(Operation):
    """Keeps each value with probability `keep_prob` during training.

    `keep_prob` follows the book: ``Dropout(0.8)`` keeps 80% of the values. Two forms give
    the same expected output; they differ in where the scaling happens:

    - ``inverted=True`` (the default, as in PyTorch and Keras): kept values are scaled by
      1 / keep_prob in training, and the operation is the identity at inference.
    - ``inverted=False`` (Srivastava et al. 2014, and the book's code): training multiplies
      by the 0/1 mask only, and inference multiplies by keep_prob. With SGD this trains the
      weights that follow the dropout with an effective learning rate keep_prob² times the
      inverted form's, so the book's dropout experiments need it to be reproduced exactly.

    Masks come from `rng`, which a layer (and so the network) hands down; a stand-alone
    operation makes its own unseeded generator. The mask is stored in the input's dtype,
    so a float32 model stays float32.
    """

    def __init__(
        self, keep_prob: float = 0.8, inverted: bool = True, rng: np.random.Generator | None = None
    ) -> None:
        keep_prob = float(keep_prob)
        if not 0.0 < keep_prob <= 1.0:
            raise ValueError(
                f"Dropout: keep_prob must be in (0, 1] (the fraction of values kept). "
                f"Received: keep_prob={keep_prob}"
            )
        self.keep_prob = keep_prob
        self.inverted = check_flag("Dropout", "inverted", inverted)
        self.rng = rng
        self.mask: np.ndarray | None = None
        self._scale: float | None = None  # the inference-time factor of the book's form

    def _output(self, inference: bool) -> np.ndarray:
        x = self.input_
        self.mask, self._scale = None, None
        if self.keep_prob == 1.0 or (inference and self.inverted):
            return x
        if inference:
            self._scale = self.keep_prob
            return x * self.keep_prob
        if self.rng is None:
            self.rng = np.random.default_rng()
        dtype = host_dtype(x.dtype)
        if not np.issubdtype(dtype, np.floating):
            dtype = np.dtype(np.float64)
        # floor(u + keep_prob) is 1 with probability keep_prob for u uniform in [0, 1);
        # in-place passes over one buffer give the (scaled) mask. It is drawn on the host
        # from the network's generator on every backend, so one seed gives one model.
        mask = self.rng.random(tuple(x.shape), dtype=dtype)
        mask += dtype.type(self.keep_prob)
        np.floor(mask, out=mask)
        if self.inverted:
            mask *= dtype.type(1.0 / self.keep_prob)
        self.mask = mask if isinstance(x, np.ndarray) else like(mask, x)
        return x * self.mask

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        if self.mask is not None:
            return output_grad * self.mask
        if self._scale is not None:
            return output_grad * self._scale
        return output_grad

    def get_config(self) -> dict:
        return {"keep_prob": self.keep_prob, "inverted": self.inverted}

    def __repr__(self) -> str:
        extra = "" if self.inverted else ", inverted=False"
        return f"Dropout(keep_prob={self.keep_prob}{extra})"


def layer_dropout(owner: str, dropout: float | Dropout) -> Dropout:
    """The dropout settings a layer's ``dropout=`` argument asks for, validated.

    `dropout` is a keep probability (1.0: none; inverted dropout) or a `Dropout` whose
    `keep_prob` and `inverted` are used. The layer makes its own operation from them
    when it is set up, with the network's generator, so the one given is never shared.
    """
    if isinstance(dropout, Dropout):
        return Dropout(dropout.keep_prob, inverted=dropout.inverted)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float, np.integer, np.floating)):
        raise TypeError(
            f"{owner}: dropout must be a keep probability in (0, 1] or a Dropout. "
            f"Received: dropout={dropout!r}"
        )
    if not 0.0 < float(dropout) <= 1.0:
        raise ValueError(
            f"{owner}: dropout is the probability of keeping a unit and must be in (0, 1]. "
            f"Received: dropout={dropout}"
        )
    return Dropout(dropout)


def dropout_argument(keep_prob: float, inverted: bool) -> float | Dropout:
    """The ``dropout=`` value that rebuilds a layer's settings: the plain keep probability
    for inverted dropout (as older model files have it), else a `Dropout`."""
    return keep_prob if inverted else Dropout(keep_prob, inverted=False)
