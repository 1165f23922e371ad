"""The allow-list of classes a model file may name, and the JSON specs that name them.

A layer, operation or loss is described as ``{"type": <registered name>, "args": {...}}``,
its arguments from `get_config()` (by default the arguments it was constructed with).
Loading builds objects only from registered names: a name with a module path, or one that
is not registered, is refused, so a file can never make scratchdl import or run anything.
scratchdl's own classes are registered under their class names; your own classes need
`register(cls)` (with ``name=`` when the class name is taken, e.g. your own ``Dense``).
"""

from __future__ import annotations

from typing import Any

from scratchdl import layers, losses, ops
from scratchdl.core import Operation
from scratchdl.io.safetensors import ModelFormatError
from scratchdl.layers.base import Layer
from scratchdl.losses import Loss

__all__ = ["describe", "from_spec", "register", "registered_name", "to_spec"]

KINDS = {"layer": Layer, "operation": Operation, "loss": Loss}
_BY_NAME: dict[str, dict[str, type]] = {kind: {} for kind in KINDS}
_NAMES: dict[type, str] = {}


def _kind(cls: Any) -> str:
    for kind, base in KINDS.items():
        if isinstance(cls, type) and issubclass(cls, base):
            return kind
    raise TypeError(f"register: expected a Layer, Operation or Loss class. Received: {cls!r}")


def register(cls: type, name: str | None = None) -> type:
    """Allow `cls` (a Layer, Operation or Loss subclass) in model files, under `name`
    (default: the class name). Usable as a decorator, ``@register``.

    A name already taken by another class raises `ValueError` (pass another `name`), except
    by a class of the same module and qualified name (a notebook cell run again)."""
    kind = _kind(cls)
    name = cls.__name__ if name is None else name
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(
            f"register: name must be a Python identifier (no dots). Received: name={name!r}"
        )
    taken = _BY_NAME[kind].get(name)
    same = taken is not None and (taken.__module__, taken.__qualname__) == (
        cls.__module__,
        cls.__qualname__,
    )
    if taken is not None and taken is not cls and not same:
        raise ValueError(
            f"register: the {kind} name {name!r} is taken by {taken.__module__}.{taken.__qualname__}; "
            f"register {cls.__qualname__} under another name, e.g. register({cls.__name__}, name='My{name}')"
        )
    if taken is not None and taken is not cls:
        _NAMES.pop(taken, None)
    _BY_NAME[kind][name] = cls
    _NAMES[cls] = name
    return cls


def registered_name(obj: Any) -> str:
    """The name `obj`'s class is registered under; `ValueError` saying how to register it."""
    cls = type(obj)
    name = _NAMES.get(cls)
    if name is None:
        raise ValueError(
            f"{cls.__qualname__} is not registered for model files; call "
            f"scratchdl.io.register({cls.__name__}) once (with name='...' if scratchdl already "
            f"has a class called {cls.__name__!r})"
        )
    return name


def to_spec(obj: Any, where: str = "model") -> Any:
    """A JSON-able description of a layer, operation or loss (or a plain value)."""
    if isinstance(obj, (Layer, Operation, Loss)):
        name = registered_name(obj)
        try:
            config = obj.get_config()
        except NotImplementedError as err:
            raise ValueError(f"{where}: {err}") from None
        starred = [k for k in config if k.startswith("*")]
        if starred:
            raise ValueError(
                f"{where}: {type(obj).__name__} takes *{starred[0][1:]}, which a model file "
                "cannot record by name; give the class a get_config() returning keyword arguments"
            )
        return {"type": name, "args": {k: to_spec(v, f"{where}.{k}") for k, v in config.items()}}
    if isinstance(obj, (bool, int, float, str)) or obj is None:
        return obj
    if isinstance(obj, (list, tuple)):
        return [to_spec(v, where) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "shape", None) == ():  # a NumPy scalar
        return to_spec(obj.item(), where)
    raise ValueError(
        f"{where}: a value of type {type(obj).__name__} cannot be saved in a model file "
        f"({obj!r:.60}); constructor arguments must be numbers, strings, lists or operations, "
        "or the class must define get_config()"
    )


def from_spec(spec: Any, kind: str, where: str) -> Any:
    """Build the object `spec` describes, from registered classes only."""
    if not isinstance(spec, dict) or set(spec) != {"type", "args"}:
        raise ModelFormatError(
            f"{where}: expected {{'type': ..., 'args': {{...}}}}, found {str(spec)[:80]!r}"
        )
    name, args = spec["type"], spec["args"]
    if not isinstance(name, str) or not isinstance(args, dict):
        raise ModelFormatError(f"{where}: 'type' must be a string and 'args' an object")
    allowed = _BY_NAME[kind]
    if name not in allowed:
        reason = (
            "a module path is never accepted"
            if "." in name or ":" in name
            else f"allowed: {sorted(allowed)}; register your own classes with scratchdl.io.register"
        )
        raise ModelFormatError(f"{where}: unknown {kind} type {name!r} ({reason})")
    kwargs = {}
    for key, value in args.items():
        if isinstance(value, dict):
            if kind != "layer":  # only a layer holds specs (its activation); nothing nests deeper
                raise ModelFormatError(
                    f"{where}: argument {key!r} of a {kind} cannot be another object"
                )
            value = from_spec(value, "operation", f"{where}.{key}")
        elif (
            isinstance(value, list)
            and len(value) <= 8
            and all(isinstance(v, (bool, int, float, str)) for v in value)
        ):
            value = list(value)
        elif not (isinstance(value, (bool, int, float, str)) or value is None):
            raise ModelFormatError(
                f"{where}: argument {key!r} has an unsupported value {str(value)[:80]!r}"
            )
        if not isinstance(key, str) or not key.isidentifier():
            raise ModelFormatError(f"{where}: argument name {str(key)[:40]!r} is not valid")
        kwargs[key] = value
    try:
        return allowed[name](**kwargs)
    except (TypeError, ValueError) as err:
        raise ModelFormatError(f"{where}: cannot build {name} from {args}: {err}") from None


def describe(net: Any) -> dict[str, Any]:
    """The architecture of a built network as a JSON-able dict."""
    if not net.built:
        raise ValueError("save: the network is not built yet; run a forward pass (or fit) first")
    return {
        "layers": [to_spec(layer, layer.name) for layer in net.layers],
        "loss": to_spec(net.loss, "loss"),
        "dtype": net.dtype.name,
        "seed": net.seed,
        "input_shape": list(net.layers[0].input_shape),
    }


def _register_builtins() -> None:
    for name in layers.__all__:
        if name != "Layer":
            register(getattr(layers, name))
    for name in losses.__all__:
        if name != "Loss":
            register(getattr(losses, name))
    for name in ops.__all__:
        if name not in ops.LAYER_INTERNAL:  # made by layers, never by name
            register(getattr(ops, name))


_register_builtins()
