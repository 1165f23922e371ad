"""The two building blocks of every model: `Operation` and `ParamOperation`.

An operation is one mathematical step. `forward` stores its input and output;
`backward` receives the gradient of the loss with respect to the output and returns
the gradient with respect to the input. Both check shapes, so a subclass writes only
the math in `_output`, `_input_grad` and (for parameters) `_param_grad`.

`_output` may be written with or without the `inference` argument: the book's chapter-3
classes write ``def _output(self)``; the check is made once per class, when it is defined.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import numpy as np

from scratchdl import backend

__all__ = [
    "Operation",
    "ParamOperation",
    "ShapeError",
    "check_array",
    "check_flag",
    "default_name",
    "shape_error",
]


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


def check_flag(owner: str, name: str, value: Any) -> bool:
    """`value` as a bool, if it is one: True, False (or a NumPy bool). Anything else — a
    string, a number, None — raises `TypeError` naming the argument, so that a value meant
    for another parameter (the book's positional order) never passes as a flag."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: {name} must be True or False. Received: {name}={value!r}")
    return bool(value)


def check_array(where: str, value: Any) -> np.ndarray:
    """`value` as an array of real numbers with no NaN or inf, or an error naming `where`,
    what is wrong and where the first bad value is. For data at the public boundary (once
    per call, never per batch)."""
    if not isinstance(value, np.ndarray) and backend.is_array(value):
        return _check_device_array(where, value)
    array = np.asarray(value)
    kind = array.dtype.kind
    if kind == "c":
        raise TypeError(
            f"{where} is complex ({array.dtype}); scratchdl trains on real numbers and will not "
            "drop the imaginary part silently. Pass X.real or np.abs(X) if that is what you mean"
        )
    if kind not in "biuf":
        raise TypeError(
            f"{where} must hold numbers, received dtype {array.dtype} "
            f"(first value {array.flat[0]!r})"
            if array.size
            else f"{where} must hold numbers"
        )
    if kind == "f" and array.size and not _all_finite(array):
        bad = np.argwhere(~np.isfinite(array))[0]
        value = array[tuple(bad)]
        raise ValueError(
            f"{where} contains {value} at index {tuple(int(i) for i in bad)}; remove or impute "
            "missing and infinite values before training (scratchdl does not skip them)"
        )
    return array


def _check_device_array(where: str, value: Any) -> Any:
    """`check_array` for an array of another library: real numbers, all finite."""
    xp = backend.namespace(value)
    if not (xp.isdtype(value.dtype, "real floating") or xp.isdtype(value.dtype, "integral")):
        raise TypeError(f"{where} must hold real numbers, received dtype {value.dtype}")
    if xp.isdtype(value.dtype, "real floating") and not bool(xp.all(xp.isfinite(value))):
        raise ValueError(
            f"{where} contains NaN or inf; remove or impute missing and infinite values "
            "before training (scratchdl does not skip them)"
        )
    return value


def _all_finite(array: np.ndarray) -> bool:
    """Whether no element is NaN or inf. A sum is finite exactly when every term is, barring
    overflow (then the exact test decides): half the time of ``isfinite().all()``, and no
    array-sized temporary."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(array)):
            return True
    return bool(np.isfinite(array).all())


def default_name(cls: type) -> str:
    """``WeightMultiply`` -> ``weight_multiply``: the name a parameter gets from the class of
    the operation that holds it, when the operation does not name it."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", cls.__name__).lower()


def takes_argument(cls: type, method: str) -> bool:
    """Whether ``cls.<method>`` accepts an argument besides ``self`` (decided once per class)."""
    try:
        parameters = list(inspect.signature(getattr(cls, method)).parameters.values())
    except (TypeError, ValueError):
        return True
    return len(parameters) > 1 or any(
        p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters
    )


class RecordsArguments:
    """Records the arguments an object was constructed with, so that `get_config` can
    rebuild it without a subclass writing one (model files store them as JSON).

    Only the arguments given are recorded; defaults are left to the class. An object made
    by `copy.copy` keeps the record of the original.
    """

    _init_args: dict[str, Any]

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        obj = super().__new__(cls)
        obj._init_args = _bind(cls, args, kwargs)
        return obj

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this object: the ones it was given."""
        return dict(getattr(self, "_init_args", {}))


def _bind(cls: type, args: tuple, kwargs: dict) -> dict[str, Any]:
    if not args and not kwargs:
        return {}
    try:
        bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
    except (TypeError, ValueError):
        return {}  # the constructor raises its own error for these arguments
    recorded: dict[str, Any] = {}
    for name, value in list(bound.arguments.items())[1:]:  # skip self
        kind = bound.signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            recorded.update(value)
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            recorded[f"*{name}"] = list(value)
        else:
            recorded[name] = value
    return recorded


class Operation(RecordsArguments):
    """One step of a network: `forward` computes, `backward` back-propagates.

    Subclasses implement `_output(inference)` (or `_output()`, as the book writes it) and
    `_input_grad(output_grad)`. An operation that owns trainable arrays lists them in
    `params` and their gradients in `param_grads` (same order, same shapes); the optimizer
    updates them in place. `param_names` names them (model files, checkpoints and optimizer
    state use the names); without it they are named after the class (`default_name`).
    `state_names` names attributes holding arrays that are saved but never trained
    (batch-norm running statistics).
    """

    input_: np.ndarray
    output: np.ndarray
    input_grad: np.ndarray | None
    #: Names of `params`, in order; None: derived from the class name.
    param_names: tuple[str, ...] | None = None
    #: Attributes holding arrays that are saved but not trained.
    state_names: tuple[str, ...] = ()
    _output_takes_inference = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "_output" in vars(cls):
            cls._output_takes_inference = takes_argument(cls, "_output")

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
        self.output = self._output(inference) if self._output_takes_inference else self._output()
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

    def named_params(self) -> list[tuple[str, np.ndarray]]:
        """``(name, array)`` for each of `params`: `param_names`, or the class's name
        (numbered when there are several)."""
        params = self.params
        names = self.param_names
        if names is None:
            base = default_name(type(self))
            names = (
                (base,) if len(params) == 1 else tuple(f"{base}_{i}" for i in range(len(params)))
            )
        if len(names) != len(params):
            raise TypeError(
                f"{self.name}: param_names has {len(names)} names for {len(params)} parameters"
            )
        return list(zip(names, params, strict=True))

    def named_state(self) -> dict[str, np.ndarray]:
        """The arrays named by `state_names` (saved, never trained)."""
        return {name: getattr(self, name) for name in self.state_names}

    def _compute_param_grads(self, output_grad: np.ndarray) -> None:
        """Hook for operations with parameters; called by `backward` before `_input_grad`."""

    def _convert_arrays(self, convert: Any) -> None:
        """Replace every array this operation holds (parameters, state, gradients and what
        the last forward cached) by ``convert(array)``: how `NeuralNetwork.to` moves it to
        another array library or device. Arrays in lists, tuples and dicts are found too;
        an operation keeping arrays elsewhere overrides this."""
        for key, value in list(vars(self).items()):
            if key != "_init_args":  # the recorded constructor arguments stay as given
                vars(self)[key] = backend.convert_tree(value, convert)

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

    def get_config(self) -> dict[str, Any]:
        return {}  # the array comes from the layer that owns the operation

    def _compute_param_grads(self, output_grad: np.ndarray) -> None:
        self.param_grad = self._param_grad(output_grad)
        if self.param_grad.shape != self.param.shape:
            raise shape_error(self.name, "param_grad", self.param.shape, self.param_grad.shape)

    def _param_grad(self, output_grad: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{self.name} must implement _param_grad")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(param shape={self.param.shape})"
