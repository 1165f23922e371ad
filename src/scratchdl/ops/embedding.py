"""`EmbeddingLookup`: integer ids to learned vectors."""

from __future__ import annotations

import numpy as np

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
        vocab = self.param.shape[0]
        if not np.issubdtype(ids.dtype, np.integer):
            as_int = ids.astype(np.int64)
            if not np.array_equal(as_int, ids):
                raise ValueError(
                    f"{self.name}: token ids must be whole numbers, received {ids.dtype} with fractions"
                )
            ids = as_int
        if ids.size and (ids.min() < 0 or ids.max() >= vocab):
            raise ValueError(
                f"{self.name}: token ids must be in [0, {vocab}), received ids from {ids.min()} to {ids.max()}"
            )
        self._ids = ids
        return self.param[ids]

    def _param_grad(self, output_grad: np.ndarray) -> np.ndarray:
        dim = self.param.shape[1]
        grad = np.zeros_like(self.param)
        np.add.at(grad, self._ids.reshape(-1), output_grad.reshape(-1, dim))
        return grad

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        return np.zeros(self.input_.shape, dtype=output_grad.dtype)
