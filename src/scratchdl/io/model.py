"""Model files: the architecture as JSON and the parameters as tensors, in one safetensors file.

    net.save("model.safetensors")
    net = scratchdl.load("model.safetensors")

The JSON (in the file's ``__metadata__``) names every layer, operation and loss by its class
name, which must be on an explicit allow-list (`register`); a name with a module path, or
one that is not registered, is refused. Arguments are plain JSON values. Tensors are named
``layers.<i>.<param name>`` (``layers.1.weights``). Loading checks the architecture and
compares every tensor's shape with what the architecture needs *before* building anything,
so a forged file cannot make it allocate more than the file holds. Every problem raises
`ModelFormatError`.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

import scratchdl
from scratchdl.core import Operation
from scratchdl.io.safetensors import ModelFormatError, read, write_bytes
from scratchdl.layers.base import Layer
from scratchdl.losses import Loss
from scratchdl.network import NeuralNetwork

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "ModelFormatError",
    "atomic_write",
    "load",
    "load_weights",
    "register",
    "save",
]

FORMAT = "scratchdl-model"
FORMAT_VERSION = 1

_REGISTRY: dict[str, dict[str, type]] = {"layer": {}, "operation": {}, "loss": {}}
_BUILTINS_REGISTERED = False


def register(cls: type) -> type:
    """Allow `cls` (a Layer, Operation or Loss subclass) in model files. Usable as a decorator."""
    if issubclass(cls, Layer):
        kind = "layer"
    elif issubclass(cls, Operation):
        kind = "operation"
    elif issubclass(cls, Loss):
        kind = "loss"
    else:
        raise TypeError(f"register: expected a Layer, Operation or Loss class. Received: {cls!r}")
    _REGISTRY[kind][cls.__name__] = cls
    return cls


def _register_builtins() -> None:
    global _BUILTINS_REGISTERED
    if _BUILTINS_REGISTERED:
        return
    _BUILTINS_REGISTERED = True
    from scratchdl import layers, losses, ops

    for name in layers.__all__:
        if name != "Layer":
            register(getattr(layers, name))
    for cls in (losses.MeanSquaredError, losses.SoftmaxCrossEntropy):
        register(cls)
    for name in ops.__all__:
        if name not in ops.LAYER_INTERNAL:  # made by layers, never by name
            register(getattr(ops, name))


def _to_spec(obj: Any) -> Any:
    """A JSON-able description {"type", "args"} of a layer, operation or loss."""
    if isinstance(obj, (Layer, Operation, Loss)):
        return {
            "type": type(obj).__name__,
            "args": {k: _to_spec(v) for k, v in obj.get_config().items()},
        }
    if isinstance(obj, (bool, int, float, str)) or obj is None:
        return obj
    if isinstance(obj, (list, tuple)):
        return [_to_spec(v) for v in obj]
    raise TypeError(f"cannot save a value of type {type(obj).__name__} in a model file: {obj!r}")


def _from_spec(spec: Any, kind: str, where: str) -> Any:
    if not isinstance(spec, dict) or set(spec) != {"type", "args"}:
        raise ModelFormatError(
            f"{where}: expected {{'type': ..., 'args': {{...}}}}, found {str(spec)[:80]!r}"
        )
    name, args = spec["type"], spec["args"]
    if not isinstance(name, str) or not isinstance(args, dict):
        raise ModelFormatError(f"{where}: 'type' must be a string and 'args' an object")
    allowed = _REGISTRY[kind]
    if name not in allowed:
        reason = (
            "a module path is never accepted"
            if "." in name or ":" in name
            else f"allowed: {sorted(allowed)}"
        )
        raise ModelFormatError(f"{where}: unknown {kind} type {name!r} ({reason})")
    kwargs = {}
    for key, value in args.items():
        if isinstance(value, dict):
            if kind != "layer":  # only a layer holds specs (its activation); nothing nests deeper
                raise ModelFormatError(
                    f"{where}: argument {key!r} of a {kind} cannot be another object"
                )
            value = _from_spec(value, "operation", f"{where}.{key}")
        elif (
            isinstance(value, list)
            and len(value) <= 8
            and all(isinstance(v, (bool, int, float)) for v in value)
        ):
            value = list(value)
        elif not (isinstance(value, (bool, int, float, str)) or value is None):
            raise ModelFormatError(
                f"{where}: argument {key!r} has an unsupported value {str(value)[:80]!r}"
            )
        kwargs[str(key)] = value
    try:
        return allowed[name](**kwargs)
    except (TypeError, ValueError) as err:
        raise ModelFormatError(f"{where}: cannot build {name} from {args}: {err}") from None


def describe(net: NeuralNetwork) -> dict[str, Any]:
    """The architecture of a built network as a JSON-able dict."""
    if not net.built:
        raise ValueError("save: the network is not built yet; run a forward pass (or fit) first")
    return {
        "layers": [_to_spec(layer) for layer in net.layers],
        "loss": _to_spec(net.loss),
        "dtype": net.dtype.name,
        "seed": net.seed,
        "input_shape": list(net.layers[0].input_shape),
    }


def _layer_arrays(layer: Layer) -> dict[str, np.ndarray]:
    """A built layer's parameters and saved state, by name."""
    return {**dict(zip(layer.param_names, layer.params, strict=True)), **layer.state_arrays()}


def tensors_of(net: NeuralNetwork) -> dict[str, np.ndarray]:
    """The parameters (and state such as batch-norm statistics) of a built network,
    named ``layers.<i>.<name>``."""
    return {
        f"layers.{layer.index}.{name}": array
        for layer in net.layers
        for name, array in _layer_arrays(layer).items()
    }


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, flush and fsync it, then rename it
    over `path`. A failure leaves any previous file untouched and no temporary file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def model_bytes(net: NeuralNetwork, extra_tensors: dict[str, np.ndarray] | None = None,
                extra_metadata: dict[str, str] | None = None) -> bytes:  # fmt: skip
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "scratchdl_version": scratchdl.__version__,
        "architecture": json.dumps(describe(net)),
        **(extra_metadata or {}),
    }
    return write_bytes({**tensors_of(net), **(extra_tensors or {})}, metadata)


def save(
    net: NeuralNetwork, path: str | os.PathLike, metadata: dict[str, str] | None = None
) -> None:
    """Write `net` to `path` (atomically): architecture, dtype, seed and parameters.

    `metadata` adds string entries of your own (e.g. preprocessing statistics) under
    ``user.<key>``; `load_with_metadata` gives them back."""
    user = {f"user.{k}": str(v) for k, v in (metadata or {}).items()}
    atomic_write(path, model_bytes(net, extra_metadata=user))


def _metadata_architecture(path: Path, metadata: dict[str, str]) -> dict[str, Any]:
    if metadata.get("format") != FORMAT:
        raise ModelFormatError(
            f"{path}: not a scratchdl model file (format {metadata.get('format')!r})"
        )
    if metadata.get("format_version") != str(FORMAT_VERSION):
        raise ModelFormatError(
            f"{path}: format version {metadata.get('format_version')!r} is not supported (this is version {FORMAT_VERSION})"
        )
    try:
        arch = json.loads(metadata["architecture"])
    except (KeyError, json.JSONDecodeError, RecursionError) as err:
        raise ModelFormatError(f"{path}: architecture is missing or not JSON ({err})") from None
    if not isinstance(arch, dict) or not isinstance(arch.get("layers"), list) or not arch["layers"]:
        raise ModelFormatError(f"{path}: architecture must have a non-empty 'layers' list")
    return arch


def _expected_tensors(
    net: NeuralNetwork, input_shape: tuple[int, ...]
) -> dict[str, tuple[int, ...]]:
    """What a network of this architecture needs, per tensor name, computed without allocating."""
    expected: dict[str, tuple[int, ...]] = {}
    shape = input_shape
    for layer in net.layers:
        for name, param_shape in {**layer.param_shapes(shape), **layer.state_shapes(shape)}.items():
            expected[f"layers.{layer.index}.{name}"] = tuple(int(d) for d in param_shape)
        shape = layer.compute_output_shape(shape)
    return expected


def _check_tensors(path: Path, net: NeuralNetwork, expected: dict[str, tuple[int, ...]],
                   tensors: dict[str, np.ndarray], check_finite: bool) -> None:  # fmt: skip
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    if missing or unexpected:
        raise ModelFormatError(
            f"{path}: parameters do not match the model: missing {missing or 'none'}, unexpected {unexpected or 'none'}"
        )
    for key, shape in expected.items():
        array = tensors[key]
        _, index, name = key.split(".", 2)
        label = f"layer {index} ({type(net.layers[int(index) - 1]).__name__}) {name}"
        if array.shape != shape:
            raise ModelFormatError(
                f"{path}: {label}: file has {array.shape}, model expects {shape}"
            )
        if array.dtype != net.dtype:
            raise ModelFormatError(
                f"{path}: {label}: file has dtype {array.dtype}, model expects {net.dtype}"
            )
        if check_finite and not np.all(np.isfinite(array)):
            raise ModelFormatError(f"{path}: {label}: contains non-finite values (NaN or inf)")


def _build(net: NeuralNetwork, input_shape: tuple[int, ...]) -> None:
    """Set every layer up for `input_shape` without allocating an input batch.

    Setting up draws the same initial weights as the original network did, so afterwards
    the generator is where a freshly built network's would be; the weights are then
    overwritten with the file's."""
    dummy = np.broadcast_to(np.zeros((), dtype=net.dtype), (1, *input_shape))
    net.forward(dummy, inference=True)


def _assign(net: NeuralNetwork, tensors: dict[str, np.ndarray]) -> None:
    for layer in net.layers:
        for name, array in _layer_arrays(layer).items():
            array[...] = tensors[f"layers.{layer.index}.{name}"]


def network_from_file(
    path: str | os.PathLike, check_finite: bool = False
) -> tuple[NeuralNetwork, dict, dict]:
    """``(net, tensors, metadata)``: the network built from a model or checkpoint file, with
    its parameters loaded; `tensors` and `metadata` are the whole file's."""
    path = Path(path)
    _register_builtins()
    tensors, metadata = read(path)
    arch = _metadata_architecture(path, metadata)
    layers = [
        _from_spec(spec, "layer", f"{path}: layer {i}") for i, spec in enumerate(arch["layers"], 1)
    ]
    loss = _from_spec(arch.get("loss"), "loss", f"{path}: loss")
    dtype, seed, input_shape = arch.get("dtype"), arch.get("seed"), arch.get("input_shape")
    if dtype not in ("float32", "float64"):
        raise ModelFormatError(f"{path}: dtype must be float32 or float64, found {dtype!r}")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise ModelFormatError(
            f"{path}: seed must be a non-negative integer or null, found {seed!r}"
        )
    if (
        not isinstance(input_shape, list)
        or not 1 <= len(input_shape) <= 8
        or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 < d < 2**31 for d in input_shape
        )
        or math.prod(input_shape) >= 2**40
    ):
        raise ModelFormatError(
            f"{path}: input_shape must be a list of positive integers, found {input_shape!r}"
        )
    try:
        net = NeuralNetwork(layers, loss, seed=seed, dtype=dtype)
        expected = _expected_tensors(net, tuple(input_shape))
    except (TypeError, ValueError) as err:
        raise ModelFormatError(f"{path}: the architecture is inconsistent: {err}") from None
    model_tensors = {k: v for k, v in tensors.items() if k.startswith("layers.")}
    _check_tensors(path, net, expected, model_tensors, check_finite)
    try:
        _build(net, tuple(input_shape))
    except (TypeError, ValueError) as err:
        raise ModelFormatError(f"{path}: the architecture cannot be built: {err}") from None
    _assign(net, tensors)
    return net, tensors, metadata


def load(path: str | os.PathLike, check_finite: bool = False) -> NeuralNetwork:
    """The network saved at `path`. ``check_finite=True`` also rejects NaN and inf values.

    Raises `ModelFormatError` for any problem with the file, and `FileNotFoundError`
    when there is no file.
    """
    if not Path(path).exists():
        raise FileNotFoundError(f"no model file at {path}")
    return network_from_file(path, check_finite)[0]


def load_with_metadata(
    path: str | os.PathLike, check_finite: bool = False
) -> tuple[NeuralNetwork, dict[str, str]]:
    """``(net, user_metadata)``: as `load`, plus the entries given to `save(metadata=...)`."""
    if not Path(path).exists():
        raise FileNotFoundError(f"no model file at {path}")
    net, _, metadata = network_from_file(path, check_finite)
    return net, {k.removeprefix("user."): v for k, v in metadata.items() if k.startswith("user.")}


def load_weights(net: NeuralNetwork, path: str | os.PathLike, check_finite: bool = False) -> None:
    """Copy the parameters saved at `path` into the built network `net` (same architecture)."""
    path = Path(path)
    if not net.built:
        raise ValueError("load_weights: build the network first (run a forward pass)")
    tensors, _ = read(path)
    expected = {k: v.shape for k, v in tensors_of(net).items()}
    model_tensors = {k: v for k, v in tensors.items() if k.startswith("layers.")}
    _check_tensors(path, net, expected, model_tensors, check_finite)
    _assign(net, model_tensors)
