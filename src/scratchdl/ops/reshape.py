"""Reshaping operations."""

from __future__ import annotations

import math

import numpy as np

from scratchdl.backend import namespace
from scratchdl.core import Operation, ShapeError


class Flatten(Operation):
    """(N, d1, d2, ...) -> (N, d1·d2·...); a view when the input is contiguous."""

    def _output(self, inference: bool) -> np.ndarray:
        if self.input_.ndim < 2:
            raise ShapeError(
                f"{self.name}: input must have a batch axis and at least one more, received {self.input_.shape}"
            )
        x = self.input_
        return namespace(x).reshape(x, (x.shape[0], math.prod(x.shape[1:])))

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        return namespace(output_grad).reshape(output_grad, self.input_.shape)
