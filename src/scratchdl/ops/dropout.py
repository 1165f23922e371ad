"""Dropout: inverted (the default) or in the original paper's and the book's form."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from scratchdl import backend
from scratchdl.backend import device_of, dtype_of, host_dtype, namespace
from scratchdl.core import Operation, check_flag

_LOW = 0xFFFFFFFF
_CHUNK = 32768  # elements per pass of the NumPy code: its buffers stay in the L2 cache


def draw_keys(rng: np.random.Generator, size: int) -> tuple[tuple[int, int], ...]:
    """The keys of one dropout mask of `size` elements: for each block of
    `backend.DROPOUT_BLOCK` elements an odd multiplier and an offset below 2³², drawn from
    `rng` as ``rng.integers(0, 2**32, (blocks, 2))`` whatever the mask's size. Plain
    integers, so they stay on the host when a network moves to a device."""
    blocks = max(1, -(-size // backend.DROPOUT_BLOCK))
    keys = rng.integers(0, 2**32, size=(blocks, 2), dtype=np.uint64)
    return tuple((a | 1, b) for a, b in keys.tolist())


def keep_threshold(keep_prob: float) -> int:
    """The 32-bit threshold below which a hash keeps its element: keep_prob·2³², rounded
    (so P(kept) is keep_prob to within 2.4e-10)."""
    return min(round(keep_prob * 2**32), _LOW)


def dropout_mask(
    size: int, keys: tuple[tuple[int, int], ...], threshold: int, scale: float, dtype: Any
) -> np.ndarray:
    """The flat dropout mask of `size` elements in `dtype`: `scale` where element i is kept,
    0 elsewhere. Element i of block k is kept when ``hash(a·i + b mod 2³²) < threshold``,
    with (a, b) = ``keys[k]`` and `hash` a 32-bit integer finaliser (xor-shift 16, multiply
    by 0x7feb352d, xor-shift 15, multiply by 0x846ca68b, xor-shift 16). It is the NumPy
    reference of the compiled kernel (`backend.dropout`), which gives the same bits."""
    dtype = np.dtype(dtype)
    out = np.empty(size, dtype=dtype)
    step = min(_CHUNK, max(size, 1))
    ramp = np.arange(step, dtype=np.uint32)
    h, t = np.empty(step, np.uint32), np.empty(step, np.uint32)
    kept = np.empty(step, dtype=bool)
    scale, limit = dtype.type(scale), np.uint32(threshold)
    for block, (a, b) in enumerate(keys):
        start = block * backend.DROPOUT_BLOCK
        stop = min(size, start + backend.DROPOUT_BLOCK)
        steps = np.multiply(ramp, np.uint32(a), dtype=np.uint32)  # a·i for i in one chunk
        for first in range(start, stop, step):
            m = min(step, stop - first)
            x, y = h[:m], t[:m]
            np.add(steps[:m], np.uint32(((first - start) * a + b) & _LOW), out=x)
            np.right_shift(x, 16, out=y)
            x ^= y
            x *= np.uint32(0x7FEB352D)
            np.right_shift(x, 15, out=y)
            x ^= y
            x *= np.uint32(0x846CA68B)
            np.right_shift(x, 16, out=y)
            x ^= y
            np.less(x, limit, out=kept[:m])
            np.multiply(kept[:m], scale, out=out[first : first + m])
    return out


def _times_mod_2_32(x: Any, c: int) -> Any:
    """``x·c mod 2³²`` for int64 `x` in [0, 2³²) and `c` below 2³², exactly: the 16-bit
    halves of `c` keep every product below 2⁴⁸."""
    high = ((x * (c >> 16)) & 0xFFFF) << 16
    return (high + x * (c & 0xFFFF)) & _LOW


def device_mask(
    ref: Any, keys: tuple[tuple[int, int], ...], threshold: int, scale: float, dtype: Any
) -> Any:
    """`dropout_mask` computed in the array library and on the device of `ref` (an array of
    the mask's shape), in int64 arithmetic, which every array library has and which is
    exact, so the mask has the same bits as the NumPy one and never visits the host."""
    xp, device, size = namespace(ref), device_of(ref), math.prod(ref.shape)
    parts = []
    for block, (a, b) in enumerate(keys):
        start = block * backend.DROPOUT_BLOCK
        h = xp.arange(
            min(size, start + backend.DROPOUT_BLOCK) - start, dtype=xp.int64, device=device
        )
        h = (_times_mod_2_32(h, a) + b) & _LOW
        h = h ^ (h >> 16)
        h = _times_mod_2_32(h, 0x7FEB352D)
        h = h ^ (h >> 15)
        h = _times_mod_2_32(h, 0x846CA68B)
        parts.append((h ^ (h >> 16)) < threshold)
    kept = parts[0] if len(parts) == 1 else xp.concat(parts)
    mask = xp.astype(kept, dtype_of(xp, dtype)) * float(scale)
    return xp.reshape(mask, tuple(ref.shape))


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
    operation makes its own unseeded generator. Each mask costs two integer draws from it
    (per 2³² elements): element i is kept when a 32-bit hash of a·i + b is below
    keep_prob·2³² (`dropout_mask`), with (a, b) drawn for the mask. With
    ``scratchdl[fast]`` one compiled pass draws and applies the mask, forward and backward
    (the same bits); without it the NumPy code computes the mask in the input's dtype,
    so a float32 model stays float32. On another array library the mask is computed on
    the input's device (`device_mask`, the same bits).
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
        self._mask: Any = None
        # the last training pass's mask, as its keys (`draw_keys`)
        self._keys: tuple[tuple[int, int], ...] | None = None
        self._scale: float | None = None  # the inference-time factor of the book's form

    @property
    def mask(self) -> Any:
        """The last training pass's mask, in the input's namespace, shape and dtype (`scale`
        where kept, 0 elsewhere), or None after an inference pass. The compiled path keeps
        only its keys; the mask is computed from them when asked for."""
        if self._mask is None and self._keys is not None:
            x = self.input_
            settings = self._mask_settings(x)
            if isinstance(x, np.ndarray):
                mask = dropout_mask(x.size, self._keys, *settings)
                self._mask = mask.reshape(x.shape)
            else:  # computed where the input lives: no host round trip
                self._mask = device_mask(x, self._keys, *settings)
        return self._mask

    def _mask_settings(self, x: Any) -> tuple[int, float, np.dtype]:
        """(threshold, kept values' factor, dtype) of the mask for input `x`."""
        dtype = host_dtype(x.dtype)
        if not np.issubdtype(dtype, np.floating):
            dtype = np.dtype(np.float64)
        scale = dtype.type(1.0 / self.keep_prob) if self.inverted else dtype.type(1.0)
        return keep_threshold(self.keep_prob), scale, dtype

    def _output(self, inference: bool) -> np.ndarray:
        x = self.input_
        self._mask, self._keys, self._scale = None, None, None
        if self.keep_prob == 1.0 or (inference and self.inverted):
            return x
        if inference:
            self._scale = self.keep_prob
            return x * self.keep_prob
        if self.rng is None:
            self.rng = np.random.default_rng()
        # The keys are drawn on the host from the network's generator on every backend, and
        # the mask is computed from them in exact integer arithmetic (on the input's device),
        # so one seed gives one model on every backend, with and without the kernels.
        self._keys = draw_keys(self.rng, math.prod(x.shape))
        threshold, scale, _ = self._mask_settings(x)
        out = backend.dropout(x, self._keys, threshold, scale)
        if out is not None:
            return out
        return x * self.mask

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        if self._keys is not None:
            if self._mask is None:  # the compiled path: the mask again, from its keys
                threshold, scale, _ = self._mask_settings(self.input_)
                grad = backend.dropout(output_grad, self._keys, threshold, scale)
                if grad is not None:
                    return grad
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
