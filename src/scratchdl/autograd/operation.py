"""`TensorOperation`: an `Operation` defined by its forward pass alone.

Write `compute(x, *params)` with Tensor operations; `forward` records the graph, and
`backward` asks autograd for d(loss)/d(input) and d(loss)/d(param) — so the operation's
`_input_grad` and `_param_grad` are never written by hand. It is an `Operation` like any
other: put it in a layer's `operations`, gradient-check it, save the layer that owns it::

    class Swish(TensorOperation):
        def compute(self, x):
            return x * autograd.sigmoid(x)

    class Scale(TensorOperation):          # one parameter, trained like any other
        def compute(self, x, w):
            return x * w

    Scale(np.ones((1, 5)))
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scratchdl.autograd.tensor import Tensor, grad
from scratchdl.core import Operation

__all__ = ["TensorOperation"]


class TensorOperation(Operation):
    """An operation whose backward pass comes from autograd.

    Args:
        *params: the trainable arrays, passed to `compute` as Tensors after the input, in
            this order; `params` and `param_grads` expose them to layers and optimizers.

    `self.inference` tells `compute` whether this is a prediction-time pass.
    """

    def __init__(self, *params: np.ndarray) -> None:
        for i, p in enumerate(params):
            if not isinstance(p, np.ndarray):
                raise TypeError(
                    f"{type(self).__name__}: parameter {i} must be a numpy array, received {type(p).__name__}"
                )
        self._params = list(params)
        self._grads: list[np.ndarray] | None = None
        self.inference = False

    @property
    def params(self) -> list[np.ndarray]:
        return self._params

    @property
    def param_grads(self) -> list[np.ndarray]:
        return [] if self._grads is None else self._grads

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("*params", None)  # arrays come from the layer, not from the model file
        return config

    def compute(self, x: Tensor, *params: Tensor) -> Tensor:
        """The forward pass, written with Tensor operations."""
        raise NotImplementedError(f"{self.name} must implement compute(x, *params)")

    def _output(self, inference: bool) -> np.ndarray:
        self.inference = inference
        x = Tensor(self.input_, requires_grad=np.issubdtype(self.input_.dtype, np.floating))
        params = [Tensor(p, requires_grad=True) for p in self._params]
        out = self.compute(x, *params)
        if not isinstance(out, Tensor):
            raise TypeError(
                f"{self.name}: compute must return a Tensor, received {type(out).__name__}"
            )
        self._graph = (x, params, out)
        return out.data

    def _compute_param_grads(self, output_grad: np.ndarray) -> None:
        x, params, out = self._graph
        wanted = [t for t in (x, *params) if t.requires_grad]
        if out.requires_grad:
            found = grad(out, wanted, grad_output=output_grad, allow_unused=True)
        else:  # the output depends on nothing trainable
            found = [None] * len(wanted)
        by_id = {id(t): g for t, g in zip(wanted, found, strict=True)}

        def array(t: Tensor, like: np.ndarray) -> np.ndarray:
            g = by_id.get(id(t))
            return np.zeros_like(like) if g is None else g.data.astype(like.dtype, copy=False)

        self._dx = (
            array(x, self.input_)
            if x.requires_grad
            else np.zeros_like(output_grad, shape=self.input_.shape)
        )
        self._grads = [array(t, p) for t, p in zip(params, self._params, strict=True)]

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        return self._dx

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
