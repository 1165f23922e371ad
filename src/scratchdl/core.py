"""The two building blocks of every model: `Operation` and `ParamOperation`.

An operation is one mathematical step. `forward` stores its input and output;
`backward` receives the gradient of the loss with respect to the output and returns
the gradient with respect to the input. Both check shapes, so a subclass writes only
the math in `_output`, `_input_grad` and (for parameters) `_param_grad`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Operation", "ParamOperation", "ShapeError", "shape_error"]


class ShapeError(ValueError):
    """An array does not have the shape an operation, layer or loss expects."""


def shape_error(where: str, what: str, expected: tuple, received: tuple) -> ShapeError:
    """The `ShapeError` for `what` in `where`: expected one shape, received another.

    Callers compare shapes themselves (``if a.shape != b.shape: raise shape_error(...)``),
    so the message is only built on the error path.
    """
    return ShapeError(
        f"{where}: {what} must have shape {tuple(expected)}, received {tuple(received)}"
    )


class Operation:
    """One step of a network: `forward` computes, `backward` back-propagates.

    Subclasses implement `_output(inference)` and `_input_grad(output_grad)`. An operation
    that owns trainable arrays lists them in `params` and their gradients in
    `param_grads` (same order, same shapes); the optimizer updates them in place.
    """

    input_: np.ndarray
    output: np.ndarray
    input_grad: np.ndarray | None

    @property
    def name(self) -> str:
        """How errors refer to this operation."""
        return type(self).__name__

    def forward(self, input_: np.ndarray, inference: bool = False) -> np.ndarray:
        """Compute and store the output for `input_`.

        `inference=True` asks for the prediction-time behaviour (dropout off, batch
        statistics frozen); plain math operations ignore it.
        """
        self.input_ = input_
        self.output = self._output(inference)
        return self.output

    def backward(self, output_grad: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        """Return d(loss)/d(input) given d(loss)/d(output), after checking both shapes.

        With ``need_input_grad=False`` only the parameter gradients are computed and None
        is returned: the network asks this of its first operation, whose input is the
        data (for the first `Dense` layer that saves a third of its matrix work).
        """
        output = getattr(self, "output", None)
        if output is None:
            raise RuntimeError(f"{self.name}: backward() called before forward()")
        if output_grad.shape != output.shape:
            raise shape_error(self.name, "output_grad", output.shape, output_grad.shape)
        self._compute_param_grads(output_grad)
        if not need_input_grad:
            self.input_grad = None
            return None
        self.input_grad = self._input_grad(output_grad)
        if self.input_grad.shape != self.input_.shape:
            raise shape_error(self.name, "input_grad", self.input_.shape, self.input_grad.shape)
        return self.input_grad

    @property
    def params(self) -> list[np.ndarray]:
        """Trainable arrays of this operation (none by default)."""
        return []

    @property
    def param_grads(self) -> list[np.ndarray]:
        """Gradients of `params`, valid after `backward` (none by default)."""
        return []

    def _compute_param_grads(self, output_grad: np.ndarray) -> None:
        """Hook for operations with parameters; called by `backward` before `_input_grad`."""

    def get_config(self) -> dict:
        """Constructor arguments that rebuild this operation (for model files)."""
        return {}

    def snapshot(self) -> object:
        """State that a forward pass changes besides its outputs (a recurrent layer's carried
        state, batch-norm statistics), so that `gradcheck` can rewind it; None if there is none."""
        return None

    def restore(self, snapshot: object) -> None:
        """Put back what `snapshot` returned."""

    def _output(self, inference: bool) -> np.ndarray:
        raise NotImplementedError(f"{self.name} must implement _output")

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{self.name} must implement _input_grad")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ParamOperation(Operation):
    """An operation with one trainable array, `param`, and its gradient `param_grad`.

    Operations with several arrays (a recurrent cell's weights) override `params`
    and `param_grads` instead; optimizers only ever see those two lists.
    """

    def __init__(self, param: np.ndarray) -> None:
        self.param = param

    @property
    def params(self) -> list[np.ndarray]:
        return [self.param]

    @property
    def param_grads(self) -> list[np.ndarray]:
        grad = getattr(self, "param_grad", None)
        return [] if grad is None else [grad]

    def _compute_param_grads(self, output_grad: np.ndarray) -> None:
        self.param_grad = self._param_grad(output_grad)
        if self.param_grad.shape != self.param.shape:
            raise shape_error(self.name, "param_grad", self.param.shape, self.param_grad.shape)

    def _param_grad(self, output_grad: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{self.name} must implement _param_grad")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(param shape={self.param.shape})"
