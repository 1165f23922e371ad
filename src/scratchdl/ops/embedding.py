"""`EmbeddingLookup`: integer ids to learned vectors."""

from __future__ import annotations

import math

import numpy as np

from scratchdl.backend import device_of, namespace, scatter_add_rows
from scratchdl.core import ParamOperation, ShapeError


class EmbeddingLookup(ParamOperation):
    """Rows of a (vocab_size, dim) table for integer ids of any shape: (...) -> (..., dim).

    The ids may arrive as floats (a network converts its input to its dtype); they must be
    whole numbers in [0, vocab_size). The gradient of a row used several times is the sum
    of its uses. There is no gradient with respect to the ids (zeros are returned).
    """

    param_names = ("table",)

    def __init__(self, param: np.ndarray) -> None:
        if param.ndim != 2:
            raise ShapeError(
                f"EmbeddingLookup: the table must have shape (vocab_size, dim), received {param.shape}"
            )
        super().__init__(param)

    def _output(self, inference: bool) -> np.ndarray:
        ids = self.input_
        xp = namespace(ids)
        vocab = self.param.shape[0]
        if not xp.isdtype(ids.dtype, "integral"):
            as_int = xp.astype(ids, xp.int64)
            if not bool(xp.all(xp.astype(as_int, ids.dtype) == ids)):
                raise ValueError(
                    f"{self.name}: token ids must be whole numbers, received {ids.dtype} with fractions"
                )
            ids = as_int
        if math.prod(ids.shape):
            low, high = int(xp.min(ids)), int(xp.max(ids))
            if low < 0 or high >= vocab:
                raise ValueError(
                    f"{self.name}: token ids must be in [0, {vocab}), received ids from {low} to {high}"
                )
        self._ids = ids
        if xp is np:
            return self.param[ids]
        rows = xp.take(self.param, xp.reshape(ids, (-1,)), axis=0)
        return xp.reshape(rows, (*ids.shape, self.param.shape[1]))

    def _param_grad(self, output_grad: np.ndarray) -> np.ndarray:
        xp = namespace(output_grad)
        dim = self.param.shape[1]
        ids = xp.reshape(self._ids, (-1,))
        return scatter_add_rows(self.param.shape, ids, xp.reshape(output_grad, (-1, dim)))

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        xp = namespace(output_grad)
        return xp.zeros(self.input_.shape, dtype=output_grad.dtype, device=device_of(output_grad))
