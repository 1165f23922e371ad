"""Inverted dropout."""

from __future__ import annotations

import numpy as np

from scratchdl.core import Operation


class Dropout(Operation):
    """Keeps each value with probability `keep_prob` and scales it by 1 / keep_prob.

    `keep_prob` follows the book: ``Dropout(0.8)`` keeps 80% of the values. At inference
    the operation is the identity. Masks come from `rng`, which a layer (and so the
    network) hands down; a stand-alone operation makes its own unseeded generator.
    The mask is stored in the input's dtype, so a float32 model stays float32.
    """

    def __init__(self, keep_prob: float = 0.8, rng: np.random.Generator | None = None) -> None:
        keep_prob = float(keep_prob)
        if not 0.0 < keep_prob <= 1.0:
            raise ValueError(
                f"Dropout: keep_prob must be in (0, 1] (the fraction of values kept). "
                f"Received: keep_prob={keep_prob}"
            )
        self.keep_prob = keep_prob
        self.rng = rng
        self.mask: np.ndarray | None = None

    def _output(self, inference: bool) -> np.ndarray:
        x = self.input_
        if inference or self.keep_prob == 1.0:
            self.mask = None
            return x
        if self.rng is None:
            self.rng = np.random.default_rng()
        dtype = np.dtype(x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64)
        # floor(u + keep_prob) is 1 with probability keep_prob for u uniform in [0, 1);
        # three in-place passes over one buffer give the scaled mask.
        mask = self.rng.random(x.shape, dtype=dtype)
        mask += dtype.type(self.keep_prob)
        np.floor(mask, out=mask)
        mask *= dtype.type(1.0 / self.keep_prob)
        self.mask = mask
        return x * mask

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        if self.mask is None:
            return output_grad
        return output_grad * self.mask

    def get_config(self) -> dict:
        return {"keep_prob": self.keep_prob}

    def __repr__(self) -> str:
        return f"Dropout(keep_prob={self.keep_prob})"
