"""Networks from model files: `load`, `load_with_metadata`, `network_from_file`.

`scratchdl.io` reads and writes files; this module builds the network a file describes.
It resolves every class through the registry (`scratchdl.io.register`), builds each layer
on a batch of zero examples of the saved input shape (so setting up allocates only the
parameters, never an input or an activation), with a generator that refuses to draw more
values for a layer than the file holds for it — a forged architecture cannot make loading
allocate memory — and then copies the file's arrays in, checked by name, shape and dtype.
Every problem with the file raises `ModelFormatError`. (A registered class of your own
that draws from NumPy's global generator, as the book's layers do, is outside that guard:
register only classes you trust with files you do not.)
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from scratchdl.io import modelfile
from scratchdl.io.modelfile import read_model
from scratchdl.io.registry import from_spec
from scratchdl.io.safetensors import ModelFormatError
from scratchdl.network import NeuralNetwork

__all__ = ["load", "load_with_metadata"]

#: Values a layer may allocate beyond what the file holds for it (small operations' buffers).
SLACK = 4096


class _BudgetGenerator(np.random.Generator):
    """A generator on the network's bit generator (so it draws the same stream) that
    refuses draws, and `Layer._reserve` allocations, beyond `budget` values."""

    def __init__(self, bit_generator: Any, where: str, budget: int) -> None:
        super().__init__(bit_generator)
        self.where, self.budget, self.used = where, budget, 0

    def reserve(self, count: Any) -> None:
        self.used += int(count)
        if self.budget is not None and self.used > self.budget:
            raise ModelFormatError(
                f"{self.where}: the architecture needs at least {self.used:,} values for this "
                f"layer, but the file holds {self.budget - SLACK:,}"
            )

    def _size(self, size: Any) -> Any:
        if size is not None:
            dims = (size,) if isinstance(size, (int, np.integer)) else tuple(size)
            self.reserve(math.prod(int(d) for d in dims))
        return size

    def standard_normal(self, size: Any = None, *args: Any, **kwargs: Any) -> Any:
        return super().standard_normal(self._size(size), *args, **kwargs)

    def normal(self, loc: Any = 0.0, scale: Any = 1.0, size: Any = None) -> Any:
        return super().normal(loc, scale, self._size(size))

    def uniform(self, low: Any = 0.0, high: Any = 1.0, size: Any = None) -> Any:
        return super().uniform(low, high, self._size(size))

    def random(self, size: Any = None, *args: Any, **kwargs: Any) -> Any:
        return super().random(self._size(size), *args, **kwargs)


def build(
    net: NeuralNetwork, input_shape: tuple[int, ...], tensors: dict, path: str | os.PathLike
) -> None:
    """Set every layer up on zero examples of `input_shape`, each with a budget of the
    values the file holds for it. The draws are the ones the original network made, so the
    generator ends where a freshly built network's would."""
    x = net._as_input(np.zeros((0, *input_shape), dtype=net.dtype))  # on the net's backend
    for layer in net.layers:
        prefix = f"layers.{layer.index}."
        held = sum(v.size for k, v in tensors.items() if k.startswith(prefix))
        guard = _BudgetGenerator(net.rng.bit_generator, f"{path}: {layer.name}", held + SLACK)
        layer.rng = guard
        try:
            x = layer.forward(x, inference=True)
        finally:
            guard.budget = None
            layer.rng = net.rng
            for op in layer.operations:
                if getattr(op, "rng", None) is guard:
                    op.rng = net.rng


def network_from_file(
    path: str | os.PathLike, check_finite: bool = False
) -> tuple[NeuralNetwork, dict[str, np.ndarray], dict[str, str]]:
    """``(net, tensors, metadata)``: the network built from a model or checkpoint file, with
    its arrays loaded; `tensors` and `metadata` are the whole file's."""
    path = Path(path)
    arch, tensors, metadata = read_model(path)
    layers = [
        from_spec(spec, "layer", f"{path}: layer {i}") for i, spec in enumerate(arch["layers"], 1)
    ]
    loss = from_spec(arch.get("loss"), "loss", f"{path}: loss")
    try:
        net = NeuralNetwork(layers, loss, seed=arch.get("seed"), dtype=arch["dtype"])
    except (TypeError, ValueError) as err:
        raise ModelFormatError(f"{path}: the architecture is inconsistent: {err}") from None
    arrays = {k: v for k, v in tensors.items() if k.startswith("layers.")}
    try:
        build(net, tuple(arch["input_shape"]), arrays, path)
    except ModelFormatError:
        raise
    except (TypeError, ValueError, KeyError) as err:
        raise ModelFormatError(f"{path}: the architecture cannot be built: {err}") from None
    if check_finite:
        modelfile.check_finite(path, arrays)
    try:
        net.load_state_dict(arrays)
    except (KeyError, TypeError, ValueError) as err:
        raise ModelFormatError(f"{path}: the arrays do not fit the architecture: {err}") from None
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
