"""Checkpoints: everything a run needs to continue bit for bit, in one safetensors file.

A checkpoint is a model file (`scratchdl.io.model`) plus:

* tensors ``optimizer.<i>.<name>`` — the optimizer's state for parameter i (momenta, Adam
  moments), and ``callback.<k>.<name>`` — callback state such as early stopping's best weights;
* metadata ``checkpoint`` (JSON) — where the run is (the next epoch and batch, the loss summed
  so far in that epoch), the trainer's shuffling generator as it was at the start of that
  epoch, the network's generator now, the optimizer's step count and learning rate, the
  history so far, and each callback's small state.

`Trainer.fit(..., resume_from=path)` reads it back; `ModelCheckpoint` writes it during
training. Writes are atomic, so a crash while saving leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scratchdl.io.model import (
    ModelFormatError,
    _assign,
    _check_tensors,
    _expected_tensors,
    atomic_write,
    describe,
    model_bytes,
    network_from_file,
)

if TYPE_CHECKING:
    from scratchdl.training.trainer import Trainer

CHECKPOINT_VERSION = 1


@dataclass
class Position:
    """Where a run stands: the next batch to train is `batch` of epoch `epoch` (0-based)."""

    epoch: int
    batch: int
    loss_sum: float
    epoch_rng_state: dict[str, Any]


def checkpoint_bytes(trainer: Trainer, position: Position) -> bytes:
    net, optim = trainer.net, trainer.optim
    tensors: dict[str, np.ndarray] = {}
    for i, param in enumerate(net.params()):
        for name, value in optim.state_for_saving(param).items():
            tensors[f"optimizer.{i}.{name}"] = value
    callbacks_json = []
    for k, callback in enumerate(trainer.callbacks):
        small, arrays = callback.get_state()
        callbacks_json.append({"type": type(callback).__name__, "state": small})
        for name, value in arrays.items():
            tensors[f"callback.{k}.{name}"] = value
    history = trainer.history
    state = {
        "version": CHECKPOINT_VERSION,
        "epoch": position.epoch,
        "batch": position.batch,
        "loss_sum": position.loss_sum,
        "epochs": trainer.epochs,
        "trainer_rng": position.epoch_rng_state,
        "network_rng": net.rng.bit_generator.state,
        "optimizer": {"type": type(optim).__name__, "iterations": optim.iterations, "lr": optim.lr},
        "history": {
            "epoch": history.epoch,
            "val_epoch": history.val_epoch,
            "logs": history.history,
        },
        "callbacks": callbacks_json,
    }
    return model_bytes(net, extra_tensors=tensors, extra_metadata={"checkpoint": json.dumps(state)})


def save_checkpoint(trainer: Trainer, path: str | os.PathLike, position: Position) -> None:
    """Write the trainer's whole state at `position` to `path`, atomically."""
    atomic_write(path, checkpoint_bytes(trainer, position))


def _rng_state(path: Path, state: Any, what: str) -> dict[str, Any]:
    if not isinstance(state, dict) or state.get("bit_generator") != "PCG64":
        raise ModelFormatError(f"{path}: {what} generator state is missing or not PCG64")
    return state


def restore_checkpoint(trainer: Trainer, path: str | os.PathLike) -> Position:
    """Load `path` into `trainer` (network, optimizer, generators, history, callbacks) and
    return where to continue. The network must have the checkpoint's architecture."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    saved_net, tensors, metadata = network_from_file(path)
    try:
        state = json.loads(metadata["checkpoint"])
    except (KeyError, json.JSONDecodeError) as err:
        raise ModelFormatError(
            f"{path}: not a checkpoint (no readable 'checkpoint' entry: {err})"
        ) from None
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise ModelFormatError(f"{path}: unsupported checkpoint version")
    net, optim = trainer.net, trainer.optim
    saved_arch = describe(saved_net)
    if net.built and describe(net)["layers"] != saved_arch["layers"]:
        raise ModelFormatError(f"{path}: the checkpoint's layers differ from this network's")
    if net.dtype != saved_net.dtype:
        raise ModelFormatError(
            f"{path}: checkpoint is {saved_net.dtype}, this network is {net.dtype}"
        )
    if not net.built:
        expected = _expected_tensors(net, tuple(saved_arch["input_shape"]))
        _check_tensors(
            path,
            net,
            expected,
            {k: v for k, v in tensors.items() if k.startswith("layers.")},
            False,
        )
        dummy = np.broadcast_to(np.zeros((), dtype=net.dtype), (1, *saved_arch["input_shape"]))
        net.forward(dummy, inference=True)
    _assign(net, tensors)

    opt_state = state.get("optimizer", {})
    if opt_state.get("type") != type(optim).__name__:
        raise ModelFormatError(
            f"{path}: checkpoint was trained with {opt_state.get('type')}, this trainer uses {type(optim).__name__}"
        )
    optim.reset()
    optim.iterations = int(opt_state.get("iterations", 0))
    for i, param in enumerate(net.params()):
        prefix = f"optimizer.{i}."
        arrays = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        for name, value in arrays.items():
            if value.shape != param.shape or value.dtype != param.dtype:
                raise ModelFormatError(
                    f"{path}: optimizer state {prefix}{name} does not fit parameter {i}"
                )
        optim.load_state(param, arrays)

    try:
        net.rng.bit_generator.state = _rng_state(path, state.get("network_rng"), "network")
    except (TypeError, ValueError, KeyError) as err:
        raise ModelFormatError(f"{path}: invalid network generator state ({err})") from None
    hist = state.get("history", {})
    trainer.history.epoch = list(hist.get("epoch", []))
    trainer.history.val_epoch = list(hist.get("val_epoch", []))
    trainer.history.history = {k: list(v) for k, v in hist.get("logs", {}).items()}

    saved_callbacks = state.get("callbacks", [])
    for k, callback in enumerate(trainer.callbacks):
        for entry_k, entry in enumerate(saved_callbacks):
            if entry_k == k and entry.get("type") == type(callback).__name__:
                prefix = f"callback.{k}."
                arrays = {
                    key[len(prefix) :]: v for key, v in tensors.items() if key.startswith(prefix)
                }
                callback.set_state(entry.get("state", {}), arrays)
    return Position(
        epoch=int(state["epoch"]),
        batch=int(state["batch"]),
        loss_sum=float(state["loss_sum"]),
        epoch_rng_state=_rng_state(path, state.get("trainer_rng"), "trainer"),
    )
