"""`Layer`: a list of operations, set up lazily from the first input it sees."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from scratchdl import backend
from scratchdl.core import Operation, RecordsArguments, ShapeError, shape_error


class Layer(RecordsArguments):
    """A list of operations run in order, with the parameters they own.

    Subclasses implement `_setup_layer(input_)`, which creates the parameters (drawing
    random numbers from `self.rng`, in the input's floating dtype) and fills
    `self.operations` (and, as the book writes it, `self.params`). `forward` calls it once,
    on the first input; `reset()` makes the next `forward` set the layer up afresh.

    `params` and `param_grads` are lists of the operations' arrays, in operation order;
    the arrays are the operations' own, so updating them in place trains the layer.
    Every parameter has a name, taken from its operation (`Operation.named_params`:
    ``weights``, ``bias``, …); `named_params()` and `state_dict()` give them by name, and
    model files, checkpoints and optimizer state use those names.

    Inside a `NeuralNetwork`, `seed` is the network's seed (as the book sets it) and `rng`
    the network's generator; a layer written as the book writes it may call
    ``np.random.seed(self.seed)``, but scratchdl's own layers only ever draw from `rng`.
    A layer whose constructor takes plain values (numbers, strings, lists, operations) is
    saved and loaded without writing `get_config`: the arguments it was given are recorded.
    """

    def __init__(self, neurons: int | None = None) -> None:
        if neurons is not None and (
            isinstance(neurons, bool)
            or not isinstance(neurons, (int, float, np.integer, np.floating))
            or not np.isfinite(neurons)
            or int(neurons) != neurons
            or neurons < 1
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
        self.seed: int | None = None
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
        if not isinstance(input_, np.ndarray) and not backend.is_array(input_):
            raise TypeError(
                f"{self.name}: input must be an array (NumPy, or the network's array library), "
                f"received {type(input_).__name__}"
            )
        if self.__dict__.get("first", True):
            self._setup(input_)
        self.input_ = input_
        operation = None
        try:
            for operation in self.operations:
                input_ = operation.forward(input_, inference)
        except ShapeError as err:
            raise ShapeError(f"{self.name}: {err}") from None
        except (TypeError, RuntimeError) as err:
            if isinstance(self.input_, np.ndarray) or operation is None:
                raise
            library = getattr(backend.namespace(self.input_), "__name__", "these")
            raise TypeError(
                f"{self.name}: {operation.name} failed on {library} arrays: "
                f"{str(err).rstrip('.')}. An operation written with NumPy functions (np.tanh) runs on NumPy "
                "arrays only; to run it on other array libraries write it with "
                "xp = scratchdl.backend.namespace(x) and xp.tanh"
            ) from err
        self.output = input_
        self.output_shape = input_.shape[1:]
        return self.output

    def _setup(self, input_: np.ndarray) -> None:
        if "operations" not in self.__dict__:
            raise TypeError(
                f"{type(self).__name__}: Layer.__init__ was not called; "
                "call super().__init__(neurons) in your __init__"
            )
        if self.rng is None:
            self.rng = np.random.default_rng()
        on_host = isinstance(input_, np.ndarray)
        # Parameters are made on the host, from the network's generator, whatever the
        # backend (so one seed gives one model everywhere), then moved to the input's.
        self._setup_layer(input_ if on_host else backend.host_stand_in(input_))
        if not isinstance(self.operations, list) or not all(
            isinstance(op, Operation) for op in self.operations
        ):
            raise TypeError(
                f"{self.name}: _setup_layer must set self.operations to a list of Operation "
                f"objects (scratchdl.Operation subclasses). Received: {self.operations!r}"
            )
        self.first = False
        if not on_host:
            self._convert_arrays(
                backend.converter(backend.namespace(input_), backend.device_of(input_))
            )
        self._params()
        self.named_params()  # names must be unambiguous: fail at setup, not at save time
        self.input_shape = tuple(input_.shape[1:])

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

    def named_params(self) -> dict[str, np.ndarray]:
        """The trainable arrays by name (empty until the layer is set up).

        Names come from the operations (`Operation.named_params`); a name used by two
        operations of the layer gets a suffix, ``bias_2``, in operation order.
        """
        named: dict[str, np.ndarray] = {}
        for op in self.operations:
            for name, array in op.named_params():
                key, n = name, 1
                while key in named:
                    n += 1
                    key = f"{name}_{n}"
                named[key] = array
        return named

    def named_state(self) -> dict[str, np.ndarray]:
        """Arrays that are saved but never trained (batch-norm running statistics), by name."""
        named: dict[str, np.ndarray] = {}
        for op in self.operations:
            for name, array in op.named_state().items():
                if name in named:
                    raise TypeError(f"{self.name}: two operations hold state named {name!r}")
                named[name] = array
        return named

    @property
    def param_names(self) -> list[str]:
        """Names of `params`, in order (as model files store them)."""
        return list(self.named_params())

    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameters and saved state by name: the layer's arrays themselves, not copies."""
        return {**self.named_params(), **self.named_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Copy arrays saved by `state_dict` into this set-up layer, checking names, shapes
        and dtypes; raises `KeyError`, `ShapeError` or `TypeError` naming what differs."""
        own = self.state_dict()
        check_state(self.name, own, state)
        for key, array in own.items():
            backend.assign(array, state[key])

    def _convert_arrays(self, convert: Any) -> None:
        """Replace every array of this layer and its operations by ``convert(array)``
        (`NeuralNetwork.to`); `params` and `param_grads` then list the new arrays."""
        for op in self.operations:
            op._convert_arrays(convert)
        for key in ("input_", "output"):
            if key in self.__dict__:
                self.__dict__[key] = backend.convert_tree(self.__dict__[key], convert)
        self._params()
        self._param_grads()

    def _params(self) -> None:
        self.params = [p for op in self.operations for p in op.params]

    def _param_grads(self) -> None:
        self.param_grads = [g for op in self.operations for g in op.param_grads]

    def _reserve(self, count: int) -> None:
        """Say that set-up is about to allocate `count` values other than random draws.

        When a model file is loaded the generator is a guard that refuses to draw (or let
        a layer allocate) more values than the file holds for the layer, so a forged
        architecture cannot make loading allocate memory; otherwise this does nothing."""
        reserve = getattr(self.rng, "reserve", None)
        if reserve is not None:
            reserve(count)

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

    def _setup_layer(self, input_: np.ndarray) -> None:
        op = copy.copy(self.operation)
        if hasattr(op, "rng"):
            op.rng = self.rng
        self.operations = [op]

    def get_config(self) -> dict:
        return {"operation": self.operation}

    def __repr__(self) -> str:
        return repr(self.operation)


def check_names(where: str, own: dict[str, Any], given: dict[str, Any]) -> None:
    """`KeyError` naming the missing and unexpected names when the two sets differ."""
    missing = sorted(set(own) - set(given))
    unexpected = sorted(set(given) - set(own))
    if missing or unexpected:
        raise KeyError(
            f"{where}: names do not match: missing {missing or 'none'}, "
            f"unexpected {unexpected or 'none'}"
        )


def check_state(where: str, own: dict[str, np.ndarray], given: dict[str, Any]) -> None:
    """Raise, before anything is copied, when the arrays `given` do not fit `own` exactly:
    `KeyError` for missing or unexpected names, `ShapeError` or `TypeError` for an array."""
    check_names(where, own, given)
    for key, array in own.items():
        value = given[key]
        shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
        if shape != array.shape:
            raise ShapeError(f"{where}: {key}: received shape {shape}, the model has {array.shape}")
        if dtype is None or backend.host_dtype(dtype) != backend.host_dtype(array.dtype):
            raise TypeError(f"{where}: {key}: received dtype {dtype}, the model has {array.dtype}")
