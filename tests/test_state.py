"""Named parameters and state dicts: network, optimizer, trainer, callbacks (issue 11)."""

import copy
import json
import tracemalloc

import numpy as np
import pytest

import scratchdl
from scratchdl import (
    SGD,
    Adam,
    BatchNorm,
    Callback,
    Conv2D,
    Dense,
    Dropout,
    EarlyStopping,
    Flatten,
    Linear,
    MeanSquaredError,
    ModelCheckpoint,
    ModelFormatError,
    NeuralNetwork,
    Optimizer,
    ProgressBar,
    ShapeError,
    SoftmaxCrossEntropy,
    StepDecay,
    Tanh,
    TerminateOnNaN,
    Trainer,
    TrainingDiverged,
    testing,
)
from scratchdl.io.safetensors import read, write_bytes


def data(rng, n=32):
    X = rng.standard_normal((n, 3))
    return X, X @ np.array([[1.0], [-2.0], [0.5]])


def small_net(seed=0, dtype=np.float32):
    return NeuralNetwork([Dense(4, Tanh()), Dense(1, Linear())], MeanSquaredError(), seed=seed, dtype=dtype)  # fmt: skip


def test_parameters_are_named_once_from_their_operations(rng):
    net = NeuralNetwork(
        [Conv2D(2, 3, activation=Tanh()), BatchNorm(), Flatten(), Dense(3, Linear()), Dropout(0.5)],
        SoftmaxCrossEntropy(),
        seed=0,
    )
    net.forward(rng.standard_normal((2, 1, 4, 4)))
    assert list(net.named_params()) == [
        "layers.1.filters",
        "layers.1.bias",
        "layers.2.gamma",
        "layers.2.beta",
        "layers.4.weights",
        "layers.4.bias",
    ]
    names = list(net.named_params())
    assert list(net.arrays()) == [
        *names[:4],
        "layers.2.running_mean",
        "layers.2.running_var",
        *names[4:],
    ]
    assert [id(a) for a in net.named_params().values()] == [id(p) for p in net.params()]
    assert set(net.state_dict()) == {*net.arrays(), "rng"}


def test_network_state_dict_round_trip_restores_predictions_and_dropout_stream(rng):
    net = NeuralNetwork(
        [Dense(5, Tanh(), dropout=0.7), Dense(2, Linear())], MeanSquaredError(), seed=1
    )
    x = rng.standard_normal((4, 3))
    net.forward(x)
    saved = copy.deepcopy(net.state_dict())
    expected = net.forward(x)  # a training forward: draws a dropout mask
    for array in net.arrays().values():
        array *= 3
    net.load_state_dict(saved)
    np.testing.assert_array_equal(net.forward(x), expected)


def test_load_state_dict_names_what_differs_and_changes_nothing(rng):
    net = small_net()
    net.forward(rng.standard_normal((2, 3)))
    good = copy.deepcopy(net.state_dict())
    before = copy.deepcopy(net.arrays())
    bad = dict(good, **{"layers.2.bias": np.zeros((1, 2), np.float32)})
    with pytest.raises(
        ShapeError,
        match=r"layer 2 \(Dense\): bias: received shape \(1, 2\), the model has \(1, 1\)",
    ):
        net.load_state_dict(bad)
    with pytest.raises(TypeError, match=r"layer 1 \(Dense\): weights: received dtype float64"):
        net.load_state_dict(
            dict(good, **{"layers.1.weights": good["layers.1.weights"].astype(np.float64)})
        )
    missing = {k: v for k, v in good.items() if k != "layers.1.bias"}
    with pytest.raises(KeyError, match=r"missing \['layers.1.bias'\]"):
        net.load_state_dict(missing)
    with pytest.raises(KeyError, match=r"unexpected \['layers.9.x'\]"):
        net.load_state_dict(dict(good, **{"layers.9.x": np.zeros(1)}))
    for key, value in net.arrays().items():
        np.testing.assert_array_equal(value, before[key])
    with pytest.raises(RuntimeError, match="build the network first"):
        small_net().load_state_dict(good)


def test_optimizer_state_is_keyed_by_parameter_name(rng):
    net = small_net()
    X, y = data(rng)
    optimizer = Adam(0.01)
    Trainer(net, optimizer).fit(X, y, epochs=1, batch_size=8, verbose=0)
    state = optimizer.state_dict()
    assert sorted(state["state"]) == sorted(net.named_params())
    assert set(state["state"]["layers.1.weights"]) == {"m", "v"}
    assert state["iterations"] == 4 and state["type"] == "Adam"


class PlainSGD(Optimizer):
    """A user optimizer that writes only its update rule."""

    def _update_rule(self, param, grad, state):
        param -= self.lr * grad


class ShortNames(Optimizer):
    """A rule whose arguments have names of its own."""

    def _update_rule(self, p, g, s):
        p -= self.lr * g


class BookStyle(Optimizer):
    """The book's lincoln writes its rules with keyword arguments."""

    def _update_rule(self, **kwargs):
        kwargs["param"] -= self.lr * kwargs["grad"]


class Momentum(Optimizer):
    """A user optimizer with state: declared once, created by the base class."""

    state_names = ("velocity",)

    def _update_rule(self, param, grad, state):
        state["velocity"] *= 0.5
        state["velocity"] += grad
        param -= self.lr * state["velocity"]


def step_once(optimizer, rng, **net_kwargs):
    net = small_net(**net_kwargs)
    x, y = rng.standard_normal((4, 3)), rng.standard_normal((4, 1))
    net.train_batch(x, y)
    optimizer.net = net
    before = {k: v.copy() for k, v in net.named_params().items()}
    grads = dict(zip(net.named_params(), [g.copy() for g in net.param_grads()], strict=True))
    optimizer.step()
    return before, grads, net.named_params()


def test_a_user_optimizer_honours_weight_decay(rng):
    before, grads, after = step_once(PlainSGD(0.1, weight_decay=0.5), np.random.default_rng(0))
    for name, p in after.items():
        expected = before[name] - np.float32(0.1) * (grads[name] + np.float32(0.5) * before[name])
        np.testing.assert_allclose(p, expected, rtol=1e-6)


def test_a_user_optimizer_honours_clipping(rng):
    before, grads, after = step_once(PlainSGD(0.1, clip_norm=1e-3), np.random.default_rng(0))
    norm = np.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads.values()))
    assert norm > 1e-3
    for name, p in after.items():
        np.testing.assert_allclose(p, before[name] - 0.1 * grads[name] * (1e-3 / norm), rtol=1e-5)


def test_a_user_optimizer_honours_schedules(rng):
    X, y = data(rng)
    optimizer = PlainSGD(0.1, schedule=StepDecay(1, gamma=0.5))
    lrs = []

    class Record(Callback):
        def on_epoch_begin(self, epoch, logs):
            lrs.append(self.trainer.optim.lr)

    Trainer(small_net(), optimizer).fit(
        X, y, epochs=3, batch_size=8, verbose=0, callbacks=[Record()]
    )
    assert lrs == [0.1, 0.05, 0.025]


@pytest.mark.parametrize(
    "make",
    [
        lambda: PlainSGD(0.05, weight_decay=0.01),
        lambda: Momentum(0.05),
        lambda: ShortNames(0.05),
        lambda: BookStyle(0.05, clip_norm=1.0),
    ],
)
def test_a_user_optimizer_passes_the_contract_and_checkpoints(make):
    testing.check_optimizer_contract(make)


def test_param_groups_set_learning_rate_and_weight_decay_per_group():
    rng = np.random.default_rng(0)
    net = small_net()
    net.train_batch(rng.standard_normal((4, 3)), rng.standard_normal((4, 1)))
    groups = [
        {"params": [net.layers[1]], "lr": 0.0},
        {"params": "layers.1.bias", "weight_decay": 1.0},
    ]
    optimizer = SGD(0.1, param_groups=groups)
    optimizer.net = net
    before = {k: v.copy() for k, v in net.named_params().items()}
    grads = dict(zip(net.named_params(), [g.copy() for g in net.param_grads()], strict=True))
    optimizer.step()
    after, lr = net.named_params(), np.float32(0.1)
    np.testing.assert_array_equal(after["layers.2.weights"], before["layers.2.weights"])  # lr 0
    np.testing.assert_array_equal(after["layers.2.bias"], before["layers.2.bias"])
    np.testing.assert_allclose(after["layers.1.weights"], before["layers.1.weights"] - lr * grads["layers.1.weights"], rtol=1e-6)  # fmt: skip
    np.testing.assert_allclose(after["layers.1.bias"], before["layers.1.bias"] - lr * (grads["layers.1.bias"] + before["layers.1.bias"]), rtol=1e-6)  # fmt: skip
    # a layer object selects only itself, not the layer at the same place in another network
    other = small_net()
    other.train_batch(rng.standard_normal((4, 3)), rng.standard_normal((4, 1)))
    optimizer.net = other
    frozen = other.layers[1].params[0].copy()
    optimizer.step()
    assert not np.array_equal(other.layers[1].params[0], frozen)


@pytest.mark.parametrize(
    ("groups", "error", "match"),
    [
        ([{"lr": 0.1}], TypeError, "must be a dict with 'params'"),
        ([{"params": "layers.*", "momentum": 0.9}], ValueError, r"unknown keys \['momentum'\]"),
        ([{"params": [3]}], TypeError, "name patterns or layers"),
        ([{"params": "layers.*", "lr": -1}], ValueError, "lr must be >= 0"),
    ],
)
def test_bad_param_groups_are_refused(groups, error, match):
    with pytest.raises(error, match=match):
        SGD(0.1, param_groups=groups)


class Events(Callback):
    def __init__(self):
        self.ended = None

    def on_train_end(self, logs):
        self.ended = logs


def test_a_diverging_fit_calls_on_train_end_on_every_callback(rng):
    X, y = data(rng)
    callbacks = [Events(), Events(), EarlyStopping(monitor="loss", patience=5), ProgressBar(0)]
    with pytest.raises(TrainingDiverged), np.errstate(all="ignore"):
        Trainer(small_net(), SGD(1e6)).fit(X * 1e3, y * 1e3, epochs=20, batch_size=8, verbose=0, callbacks=callbacks)  # fmt: skip
    for callback in callbacks[:2]:
        assert isinstance(callback.ended["error"], TrainingDiverged)


def test_an_exception_in_a_callback_still_ends_every_callback(rng):
    class Boom(Callback):
        def on_batch_end(self, batch, logs):
            raise KeyboardInterrupt

    events = Events()
    with pytest.raises(KeyboardInterrupt):
        Trainer(small_net(), SGD(0.01)).fit(*data(rng), epochs=2, verbose=0, callbacks=[Boom(), events])  # fmt: skip
    assert isinstance(events.ended["error"], KeyboardInterrupt)


def test_train_step_can_be_overridden(rng):
    calls = []

    class Counting(Trainer):
        def train_step(self, x_batch, y_batch):
            calls.append(len(x_batch))
            return super().train_step(x_batch, y_batch)

    Counting(small_net(), SGD(0.01)).fit(*data(rng, 20), epochs=2, batch_size=8, verbose=0)
    assert calls == [8, 8, 4, 8, 8, 4]


def test_the_loss_is_summed_once_and_history_logs_the_epoch_mean(rng):
    X, y = data(rng, 20)
    losses = []

    class Record(Callback):
        def on_batch_end(self, batch, logs):
            losses.append((logs["loss"], logs["size"]))

    history = Trainer(small_net(), SGD(0.01)).fit(X, y, epochs=1, batch_size=8, verbose=0, callbacks=[Record()])  # fmt: skip
    assert history.history["loss"][0] == pytest.approx(
        sum(loss * n for loss, n in losses) / 20, rel=1e-12
    )


def test_trainer_state_dict_holds_every_part(rng):
    X, y = data(rng)
    trainer = Trainer(small_net(), Adam(0.01))
    trainer.fit(X, y, X, y, epochs=2, eval_every=1, batch_size=8, verbose=0)
    state = trainer.state_dict()
    assert set(state) == {"network", "optimizer", "loop", "callbacks"}
    assert state["loop"]["epoch"] == 2 and state["loop"]["batch"] == 0
    assert [c["type"] for c in state["callbacks"]] == ["History", "TerminateOnNaN", "EarlyStopping"]
    best = state["callbacks"][2]["state"]["best_params"]
    assert sorted(best) == sorted(trainer.net.named_params())


def test_a_checkpoint_stores_optimizer_state_by_name(rng, tmp_path):
    X, y = data(rng)
    path = tmp_path / "c.safetensors"
    Trainer(small_net(), Adam(0.01)).fit(X, y, epochs=1, batch_size=8, verbose=0, callbacks=[ModelCheckpoint(str(path))])  # fmt: skip
    tensors, metadata = read(path)
    assert "optimizer.state.layers.1.weights.m" in tensors
    assert json.loads(metadata["checkpoint"])["version"] == 2
    assert isinstance(scratchdl.load(path), NeuralNetwork)  # a checkpoint opens as a model


def test_a_version_1_checkpoint_says_which_version_wrote_it(rng, tmp_path):
    X, y = data(rng)
    path = tmp_path / "c.safetensors"
    Trainer(small_net(), SGD(0.01)).fit(X, y, epochs=1, verbose=0, callbacks=[ModelCheckpoint(str(path))])  # fmt: skip
    tensors, metadata = read(path)
    metadata["checkpoint"] = json.dumps({"version": 1, "epoch": 1})
    path.write_bytes(write_bytes(tensors, metadata))
    with pytest.raises(ModelFormatError, match=r"version 1 was written by scratchdl 0\.1\.0"):
        Trainer(small_net(), SGD(0.01)).fit(X, y, epochs=2, verbose=0, resume_from=str(path))


def test_resume_with_other_batch_size_or_seed_is_refused(rng, tmp_path):
    X, y = data(rng)
    path = tmp_path / "c.safetensors"
    Trainer(small_net(), SGD(0.01)).fit(X, y, epochs=1, batch_size=8, verbose=0, callbacks=[ModelCheckpoint(str(path))])  # fmt: skip
    with pytest.raises(ModelFormatError, match="batch_size=8, this one has batch_size=4"):
        Trainer(small_net(), SGD(0.01)).fit(X, y, epochs=2, batch_size=4, verbose=0, resume_from=str(path))  # fmt: skip
    with pytest.raises(ModelFormatError, match="seed=1, this one has seed=2"):
        Trainer(small_net(), SGD(0.01)).fit(X, y, epochs=2, batch_size=8, seed=2, verbose=0, resume_from=str(path))  # fmt: skip
    with pytest.raises(ModelFormatError, match="trained on other data"):
        Trainer(small_net(), SGD(0.01)).fit(X + 1, y, epochs=2, batch_size=8, verbose=0, resume_from=str(path))  # fmt: skip
    with pytest.raises(ModelFormatError, match="n_train=32, this one has n_train=16"):
        Trainer(small_net(), SGD(0.01)).fit(X[:16], y[:16], epochs=2, batch_size=8, verbose=0, resume_from=str(path))  # fmt: skip


@pytest.mark.parametrize(
    ("layers", "input_shape"),
    [
        ([BatchNorm()], [2**30]),  # a forged channel count
        ([Conv2D(10**5, 3)], [1, 8, 8]),  # forged filters
        ([Dense(3, Linear())], [2**30]),  # forged input features
    ],
)
def test_forged_architectures_are_refused_before_allocating(tmp_path, layers, input_shape, rng):
    good = NeuralNetwork([Dense(3, Linear())], MeanSquaredError(), seed=0)
    good.forward(rng.standard_normal((1, 4)))
    good.save(tmp_path / "good.safetensors")
    tensors, metadata = read(tmp_path / "good.safetensors")
    arch = json.loads(metadata["architecture"])
    forged = NeuralNetwork(layers, MeanSquaredError())
    arch["layers"] = [scratchdl.io.registry.to_spec(layer) for layer in forged.layers]
    arch["input_shape"] = input_shape
    metadata["architecture"] = json.dumps(arch)
    path = tmp_path / "forged.safetensors"
    path.write_bytes(write_bytes(tensors, metadata))
    tracemalloc.start()
    with pytest.raises(ModelFormatError, match="the architecture needs at least"):
        scratchdl.load(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 50 * 1024 * 1024


def test_terminate_on_nan_is_first_and_history_first_of_all(rng, tmp_path):
    trainer = Trainer(small_net(), SGD(0.01))
    trainer.fit(*data(rng), epochs=1, verbose=0, callbacks=[ModelCheckpoint(str(tmp_path / "c-{epoch}"), monitor="loss", save_best_only=True)])  # fmt: skip
    kinds = [type(c) for c in trainer.callbacks]
    assert kinds[:2] == [scratchdl.History, TerminateOnNaN] and kinds[-1] is ModelCheckpoint
