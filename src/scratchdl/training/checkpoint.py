"""Checkpoints: a trainer's whole `state_dict()` in one safetensors file.

A checkpoint is a model file (`scratchdl.io.modelfile`: the architecture and the network's
arrays ``layers.<i>.<name>``, so `scratchdl.load` opens it as a model) plus the rest of
`Trainer.state_dict()` — the optimizer's state by parameter name, the loop's position and
shuffling generator, the history and every callback's state — flattened by
`scratchdl.io.state` into tensors (``optimizer.state.layers.1.weights.velocity``) and one
JSON entry, ``checkpoint``. Writes are atomic, so a crash while saving leaves the previous
checkpoint intact.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from scratchdl.io.modelfile import model_bytes
from scratchdl.io.registry import describe
from scratchdl.io.safetensors import ModelFormatError
from scratchdl.io.state import atomic_write, flatten, to_json, unflatten
from scratchdl.network import NeuralNetwork
from scratchdl.saving import build, network_from_file

__all__ = ["CHECKPOINT_VERSION", "read_checkpoint", "write_checkpoint"]

CHECKPOINT_VERSION = 2


def write_checkpoint(
    path: str | os.PathLike,
    net: NeuralNetwork,
    state: dict[str, Any],
    metadata: dict[str, str] | None = None,
) -> None:
    """Write a trainer's `state` (with ``state["network"]`` the network's) to `path`;
    `metadata` as for `NeuralNetwork.save` (``user.<key>``: a checkpoint can then carry the
    preprocessing that a model file carries)."""
    _, net_tree = flatten(state["network"])  # the arrays are the model file's own tensors
    tensors, rest = flatten({k: v for k, v in state.items() if k != "network"})
    tree = {"network": net_tree, **rest}
    entry = to_json({"version": CHECKPOINT_VERSION, "state": tree})
    user = {f"user.{k}": str(v) for k, v in (metadata or {}).items()}
    atomic_write(
        path,
        model_bytes(net, extra_tensors=tensors, extra_metadata={"checkpoint": entry, **user}),
    )


def read_checkpoint(path: str | os.PathLike, net: NeuralNetwork) -> dict[str, Any]:
    """The trainer state saved at `path`, checked against `net` (which is built from the
    checkpoint's architecture if it is not built yet). Raises `ModelFormatError`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    saved_net, tensors, metadata = network_from_file(path)
    try:
        entry = json.loads(metadata["checkpoint"])
    except (KeyError, json.JSONDecodeError) as err:
        raise ModelFormatError(
            f"{path}: not a checkpoint (no readable 'checkpoint' entry: {err}); a model file "
            "can be loaded with scratchdl.load but not resumed"
        ) from None
    version = entry.get("version") if isinstance(entry, dict) else None
    if version != CHECKPOINT_VERSION:
        raise ModelFormatError(
            f"{path}: checkpoint version {version!r} cannot be resumed by this scratchdl "
            f"(which writes version {CHECKPOINT_VERSION}; version 1 was written by scratchdl "
            "0.1.0 before state dicts). It still opens as a model with scratchdl.load"
        )
    if net.dtype != saved_net.dtype:
        raise ModelFormatError(
            f"{path}: checkpoint is {saved_net.dtype}, this network is {net.dtype}"
        )
    saved_arch = describe(saved_net)
    if not net.built:
        build(net, tuple(saved_arch["input_shape"]), tensors, path)
    _compare_layers(path, describe(net)["layers"], saved_arch["layers"])
    shapes = {k: v.shape for k, v in net.arrays().items()}
    saved_shapes = {k: v.shape for k, v in saved_net.arrays().items()}
    if shapes != saved_shapes:
        diff = sorted(
            k for k in shapes.keys() | saved_shapes.keys() if shapes.get(k) != saved_shapes.get(k)
        )
        raise ModelFormatError(
            f"{path}: the checkpoint's arrays differ from this network's: {diff[0]} is "
            f"{saved_shapes.get(diff[0])} there and {shapes.get(diff[0])} here"
        )
    state = unflatten(entry.get("state"), tensors, str(path))
    if not isinstance(state, dict) or not {"network", "optimizer", "loop"} <= set(state):
        raise ModelFormatError(f"{path}: the checkpoint's state is incomplete")
    return state


def _compare_layers(path: Path, mine: list[Any], saved: list[Any]) -> None:
    if len(mine) != len(saved):
        raise ModelFormatError(
            f"{path}: the checkpoint's network has {len(saved)} layers, this one {len(mine)}"
        )
    for i, (a, b) in enumerate(zip(mine, saved, strict=True), start=1):
        if a != b:
            raise ModelFormatError(
                f"{path}: layer {i} differs: the checkpoint has {json.dumps(b)}, "
                f"this network {json.dumps(a)}"
            )
