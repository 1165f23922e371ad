"""`Layer`: a list of operations, set up lazily from the first input it sees."""

from __future__ import annotations

import copy

import numpy as np

from scratchdl.core import Operation, ShapeError, shape_error


class Layer:
    """A list of operations run in order, with the parameters they own.

    Subclasses implement `_setup_layer(input_)`, which creates the parameters (drawing
    random numbers from `self.rng`, in the input's floating dtype) and fills
    `self.operations`. `forward` calls it once, on the first input; `reset()` makes the
    next `forward` set the layer up afresh.

    `params` and `param_grads` are lists of the operations' arrays, in operation order;
    the arrays are the operations' own, so updating them in place trains the layer.
    """

    def __init__(self, neurons: int | None = None) -> None:
        if neurons is not None and (
            isinstance(neurons, bool) or int(neurons) != neurons or neurons < 1
        ):
            raise ValueError(
                f"{type(self).__name__}: neurons must be a positive integer. Received: neurons={neurons!r}"
            )
        self.neurons = None if neurons is None else int(neurons)
        self.first = True
        self.params: list[np.ndarray] = []
        self.param_grads: list[np.ndarray] = []
        self.operations: list[Operation] = []
        self.rng: np.random.Generator | None = None
        self.index: int | None = None
        self.input_shape: tuple[int, ...] | None = None
        self.output_shape: tuple[int, ...] | None = None

    @property
    def name(self) -> str:
        """How errors refer to this layer: ``layer 2 (Dense)`` inside a network."""
        cls = type(self).__name__
        return cls if self.index is None else f"layer {self.index} ({cls})"

    def forward(self, input_: np.ndarray, inference: bool = False) -> np.ndarray:
        """Run the operations on `input_`, setting the layer up on the first call."""
        if not isinstance(input_, np.ndarray):
            raise TypeError(
                f"{self.name}: input must be a numpy array, received {type(input_).__name__}"
            )
        if self.first:
            if self.rng is None:
                self.rng = np.random.default_rng()
            self._setup_layer(input_)
            self.first = False
            self._params()
            self.input_shape = input_.shape[1:]
        self.input_ = input_
        try:
            for operation in self.operations:
                input_ = operation.forward(input_, inference)
        except ShapeError as err:
            raise ShapeError(f"{self.name}: {err}") from None
        self.output = input_
        self.output_shape = input_.shape[1:]
        return self.output

    def backward(self, output_grad: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        """Back-propagate through the operations in reverse; collect `param_grads`.

        Returns d(loss)/d(input), or None with ``need_input_grad=False`` (then the first
        operation skips computing it).
        """
        output = getattr(self, "output", None)
        if output is None:
            raise RuntimeError(f"{self.name}: backward() called before forward()")
        if output_grad.shape != output.shape:
            raise shape_error(self.name, "output_grad", output.shape, output_grad.shape)
        last = len(self.operations) - 1
        for i, operation in enumerate(reversed(self.operations)):
            output_grad = operation.backward(output_grad, need_input_grad or i < last)
        self._param_grads()
        return output_grad

    def reset(self) -> None:
        """Forget the parameters: the next `forward` sets the layer up again."""
        self.first = True
        self.params = []
        self.param_grads = []
        self.operations = []

    def _setup_layer(self, input_: np.ndarray) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _setup_layer")

    def get_config(self) -> dict:
        """Constructor arguments that rebuild this layer (for model files)."""
        raise NotImplementedError(f"{type(self).__name__} must implement get_config to be saved")

    def param_shapes(self, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        """Names and shapes of the parameters for examples of `input_shape` (no batch axis),
        in `params` order, computed without allocating anything."""
        return {}

    def state_shapes(self, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        """Names and shapes of state that is saved but not trained (batch-norm statistics)."""
        return {}

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The arrays behind `state_shapes`, updated in place by the layer."""
        return {}

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The output shape (no batch axis) for examples of `input_shape`.

        The default runs the layer's operations on a zero-size batch (no real work), which
        suits parameterless operations; layers with parameters compute it directly."""
        dummy = np.zeros((0, *input_shape), dtype=np.float32)
        for op in self._shape_probe_operations():
            dummy = op.forward(dummy, inference=True)
        return tuple(dummy.shape[1:])

    def _shape_probe_operations(self) -> list[Operation]:
        return self.operations

    @property
    def param_names(self) -> list[str]:
        """Names of `params`, in order (as model files store them)."""
        if self.input_shape is None:
            return []
        return list(self.param_shapes(self.input_shape))

    def _params(self) -> None:
        self.params = [p for op in self.operations for p in op.params]

    def _param_grads(self) -> None:
        self.param_grads = [g for op in self.operations for g in op.param_grads]

    def _float_dtype(self, input_: np.ndarray) -> np.dtype:
        """The dtype for new parameters: the input's if floating, else float32."""
        if np.issubdtype(input_.dtype, np.floating):
            return input_.dtype
        return np.dtype(np.float32)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(neurons={self.neurons})"


class OperationLayer(Layer):
    """Wraps an operation without parameters (an activation, `Dropout`) as a layer.

    `NeuralNetwork` wraps any bare `Operation` in its layer list this way, so
    ``[Dense(89, Tanh()), Dropout(0.8), Dense(10, Linear())]`` works.
    """

    def __init__(self, operation: Operation) -> None:
        if not isinstance(operation, Operation):
            raise TypeError(
                f"OperationLayer: expected an Operation, received {type(operation).__name__}"
            )
        super().__init__()
        self.operation = copy.copy(operation)

    def _shape_probe_operations(self) -> list[Operation]:
        return [copy.copy(self.operation)]

    def _setup_layer(self, input_: np.ndarray) -> None:
        op = copy.copy(self.operation)
        if hasattr(op, "rng"):
            op.rng = self.rng
        self.operations = [op]

    def get_config(self) -> dict:
        return {"operation": self.operation}

    def __repr__(self) -> str:
        return repr(self.operation)
