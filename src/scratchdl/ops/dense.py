"""The two operations of a fully connected layer: ``x @ W`` and ``+ b``.

Both accept inputs with any number of leading axes (``(batch, features)`` or
``(batch, time, features)``); the last axis is the feature axis.
"""

from __future__ import annotations

import numpy as np

from scratchdl.backend import namespace
from scratchdl.core import ParamOperation, ShapeError


class WeightMultiply(ParamOperation):
    """Matrix product with a weight matrix ``W`` of shape (in_features, out_features)."""

    param_names = ("weights",)

    def _output(self, inference: bool) -> np.ndarray:
        x = self.input_
        if x.ndim < 2 or x.shape[-1] != self.param.shape[0]:
            raise ShapeError(
                f"{self.name}: input must have shape (batch, ..., {self.param.shape[0]}), "
                f"received {x.shape}"
            )
        return x @ self.param

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        return output_grad @ self.param.T

    def _param_grad(self, output_grad: np.ndarray) -> np.ndarray:
        n_in, n_out = self.param.shape
        if isinstance(output_grad, np.ndarray):  # methods: a third of np.reshape's overhead
            return self.input_.reshape(-1, n_in).T @ output_grad.reshape(-1, n_out)
        xp = namespace(output_grad)
        return xp.reshape(self.input_, (-1, n_in)).T @ xp.reshape(output_grad, (-1, n_out))


class BiasAdd(ParamOperation):
    """Adds a bias row ``b`` of shape (1, features) to every example (and time step)."""

    param_names = ("bias",)

    def __init__(self, param: np.ndarray) -> None:
        if param.ndim != 2 or param.shape[0] != 1:
            raise ShapeError(f"BiasAdd: bias must have shape (1, features), received {param.shape}")
        super().__init__(param)

    def _output(self, inference: bool) -> np.ndarray:
        if self.input_.shape[-1] != self.param.shape[1]:
            raise ShapeError(
                f"{self.name}: input must have shape (batch, ..., {self.param.shape[1]}), "
                f"received {self.input_.shape}"
            )
        return self.input_ + self.param

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        return output_grad

    def _param_grad(self, output_grad: np.ndarray) -> np.ndarray:
        features = self.param.shape[1]
        if isinstance(output_grad, np.ndarray):  # methods: cheaper than np.sum per batch
            return output_grad.reshape(-1, features).sum(axis=0, keepdims=True)
        xp = namespace(output_grad)
        return xp.sum(xp.reshape(output_grad, (-1, features)), axis=0, keepdims=True)
