"""Contract checks for your own layers, operations, losses and optimizers.

Like Keras' ``run_layer_test`` or chainer's ``FunctionTestCase``: one call checks that a
part does everything the rest of scratchdl relies on, and raises `ContractError` (an
`AssertionError`, so test runners report it as a failure) saying what broke::

    from scratchdl import testing
    testing.check_layer_contract(lambda: MyLayer(8), input_shape=(5,))
    testing.check_optimizer_contract(lambda: MyOptimizer(lr=0.1))

A layer (or a bare operation, which a network wraps in a layer) is built on a shape, run
forward and backward (shapes checked), gradient-checked in float64 with `scratchdl.gradcheck`,
its state dict round-tripped, saved and loaded (predictions equal bit for bit), and trained
through a checkpoint and a resume (parameters equal bit for bit to an uninterrupted run).
Your classes must be registered (`scratchdl.io.register`) to be saved.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from scratchdl import gradcheck
from scratchdl.core import Operation
from scratchdl.io.registry import from_spec, to_spec
from scratchdl.layers.base import Layer
from scratchdl.layers.dense import Dense
from scratchdl.losses import Loss, MeanSquaredError
from scratchdl.network import NeuralNetwork
from scratchdl.ops.activations import Linear
from scratchdl.optim.optimizers import SGD, Optimizer
from scratchdl.saving import load
from scratchdl.training.callbacks import Callback, ModelCheckpoint
from scratchdl.training.trainer import Trainer

__all__ = [
    "ContractError",
    "check_layer_contract",
    "check_loss_contract",
    "check_optimizer_contract",
]


class ContractError(AssertionError):
    """A part does not do what scratchdl relies on; the message says what."""


def _fail(where: str, message: str) -> None:
    raise ContractError(f"{where}: {message}")


def _copy_state(state: Any) -> Any:
    return copy.deepcopy(state)


def check_layer_contract(
    make: Callable[[], Layer | Operation],
    input_shape: tuple[int, ...],
    x: np.ndarray | None = None,
    batch: int = 3,
    tolerance: float = 1e-6,
    check_input: bool = True,
    seed: int = 0,
) -> None:
    """Check a layer (or operation) built by `make()` on inputs of `input_shape`.

    `x` replaces the standard-normal input (e.g. token ids for an embedding, values away
    from a kink); ``check_input=False`` skips the input gradient (ids are not differentiable).
    """
    where = "check_layer_contract"
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, *input_shape)) if x is None else np.asarray(x)

    def network() -> NeuralNetwork:
        return NeuralNetwork([make()], MeanSquaredError(), seed=seed, dtype=np.float64)

    net = network()
    layer = net.layers[0]
    where = f"check_layer_contract({layer!r})"
    out = net.forward(x)
    if layer.output_shape != out.shape[1:] or layer.input_shape != x.shape[1:]:
        _fail(
            where,
            f"recorded shapes {layer.input_shape} -> {layer.output_shape}, ran {x.shape} -> {out.shape}",
        )
    named = layer.named_params()
    if [id(a) for a in named.values()] != [id(p) for p in layer.params]:
        _fail(where, "named_params() must hold the arrays of params, in the same order")
    grad = layer.backward(rng.standard_normal(out.shape))
    if grad.shape != x.shape:
        _fail(where, f"input gradient has shape {grad.shape}, the input {x.shape}")
    if [g.shape for g in layer.param_grads] != [p.shape for p in layer.params]:
        _fail(where, "param_grads must match params in number and shape")

    error = gradcheck.check_layer(layer, x.astype(np.float64), check_input=check_input)
    if not error < tolerance:
        _fail(where, f"gradient check failed: {error!r}")

    # state dict: a copy loaded into a perturbed network gives the same predictions
    y = rng.standard_normal(out.shape)
    before = net.predict(x)
    saved = _copy_state(net.state_dict())
    for array in net.arrays().values():
        array += 1.0
    net.load_state_dict(saved)
    if not np.array_equal(net.predict(x), before):
        _fail(where, "load_state_dict(state_dict()) does not restore the predictions")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.safetensors"
        net.save(path)
        loaded = load(path)
        if not np.array_equal(loaded.predict(x), before) or repr(loaded) != repr(net):
            _fail(where, "a saved and loaded network predicts differently or has another repr")
        _check_resume(where, network, lambda: SGD(0.01), x, y, Path(tmp))


def _check_resume(
    where: str,
    make_net: Callable[[], NeuralNetwork],
    make_optimizer: Callable[[], Optimizer],
    x: np.ndarray,
    y: np.ndarray,
    tmp: Path,
) -> None:
    """Two epochs straight equal a run planned over two, stopped after the first with a
    checkpoint, and resumed in a fresh trainer."""

    def fit(epochs: int, **kwargs: Any) -> NeuralNetwork:
        net = make_net()
        Trainer(net, make_optimizer()).fit(
            x, y, epochs=epochs, batch_size=2, verbose=0, early_stopping=False, **kwargs
        )
        return net

    straight = fit(2)
    checkpoint = tmp / "checkpoint.safetensors"
    fit(2, callbacks=[ModelCheckpoint(str(checkpoint)), _StopAfterFirstEpoch()])  # interrupted
    resumed = fit(2, callbacks=[ModelCheckpoint(str(checkpoint))], resume_from=str(checkpoint))
    for (name, a), b in zip(straight.arrays().items(), resumed.arrays().values(), strict=True):
        if not np.array_equal(a, b):
            _fail(where, f"resuming from a checkpoint does not give the same {name}")


class _StopAfterFirstEpoch(Callback):
    """Ends a run planned over more epochs after its first (its checkpoint is written)."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        self.trainer.stop_training = True


def check_loss_contract(
    make: Callable[[], Loss],
    prediction: np.ndarray,
    target: np.ndarray,
    tolerance: float = 1e-6,
) -> None:
    """Check a loss: its gradient is the derivative of its value (float64), it survives a
    model file, and a network trained with it resumes bit for bit."""
    loss = make()
    where = f"check_loss_contract({loss!r})"
    error = gradcheck.check_loss(loss, prediction, target)
    if not error < tolerance:
        _fail(where, f"gradient check failed: {error!r}")
    rebuilt = from_spec(to_spec(loss), "loss", where)
    value = make().forward(np.asarray(prediction, np.float64), target)
    if rebuilt.forward(np.asarray(prediction, np.float64), target) != value:
        _fail(where, "the loss rebuilt from its saved arguments gives another value")
    prediction = np.asarray(prediction, np.float64)
    features = prediction.shape[-1]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((*prediction.shape[:-1], 4))

    def network() -> NeuralNetwork:
        return NeuralNetwork([Dense(features, Linear())], make(), seed=0, dtype=np.float64)

    with tempfile.TemporaryDirectory() as tmp:
        _check_resume(where, network, lambda: SGD(0.01), x, np.asarray(target), Path(tmp))


def check_optimizer_contract(make: Callable[[], Optimizer], steps: int = 3) -> None:
    """Check an optimizer: it changes the parameters in place, keeps their dtype (float32
    stays float32), its `state_dict()` continues a run bit for bit in a new optimizer, and
    training resumes from a checkpoint bit for bit."""
    where = f"check_optimizer_contract({make()!r})"
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3))
    y = rng.standard_normal((8, 2))

    def network() -> NeuralNetwork:
        return NeuralNetwork([Dense(4, "tanh"), Dense(2, Linear())], MeanSquaredError(), seed=0)

    def train(net: NeuralNetwork, optimizer: Optimizer, n: int) -> None:
        optimizer.net = net
        for _ in range(n):
            net.train_batch(x, y)
            optimizer.step()

    net, optimizer = network(), make()
    net.forward(x)
    before = list(net.params())
    copies = [p.copy() for p in before]
    train(net, optimizer, steps)
    after = list(net.params())
    if not all(a is b for a, b in zip(before, after, strict=True)):
        _fail(where, "step() must update the parameter arrays in place")
    if any(p.dtype != np.float32 for p in after):
        _fail(where, "a float32 network must stay float32")
    if all(np.array_equal(a, b) for a, b in zip(copies, after, strict=True)):
        _fail(where, "step() did not change any parameter")

    # the state dict continues the run exactly, in another optimizer and network
    twin = network()
    twin.forward(x)
    twin.load_state_dict(_copy_state(net.state_dict()))
    other = make()
    other.net = twin
    other.load_state_dict(_copy_state(optimizer.state_dict()))
    train(net, optimizer, steps)
    train(twin, other, steps)
    for (name, a), b in zip(net.named_params().items(), twin.named_params().values(), strict=True):
        if not np.array_equal(a, b):
            _fail(where, f"load_state_dict(state_dict()) does not continue the run ({name})")
    with tempfile.TemporaryDirectory() as tmp:
        _check_resume(where, network, make, x, y, Path(tmp))
