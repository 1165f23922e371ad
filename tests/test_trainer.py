import numpy as np
import pytest

from scratchdl import (
    SGD,
    Callback,
    Dense,
    EarlyStopping,
    Linear,
    MeanSquaredError,
    NeuralNetwork,
    SGDMomentum,
    SoftmaxCrossEntropy,
    Tanh,
    TerminateOnNaN,
    Trainer,
    TrainingDiverged,
)


def regression_data(rng, n=60):
    X = rng.standard_normal((n, 3))
    y = X @ np.array([[1.0], [-2.0], [0.5]]) + 0.1 * rng.standard_normal((n, 1))
    return X, y


def make_net(seed=0, dtype=np.float32):
    return NeuralNetwork(
        [Dense(8, Tanh(), weight_init="glorot"), Dense(1, Linear())],
        MeanSquaredError(),
        seed=seed,
        dtype=dtype,
    )


class BatchRecorder(Callback):
    def __init__(self):
        self.sizes = []
        self.events = []

    def on_train_begin(self, logs):
        self.events.append("train_begin")

    def on_epoch_begin(self, epoch, logs):
        self.events.append(f"epoch_begin {epoch}")

    def on_batch_begin(self, batch, logs):
        self.sizes.append(logs["size"])

    def on_epoch_end(self, epoch, logs):
        self.events.append(f"epoch_end {epoch} {sorted(logs)}")

    def on_train_end(self, logs):
        self.events.append("train_end")


def test_batches_cover_the_data_with_a_partial_last_batch(rng):
    X, y = regression_data(rng, 70)
    recorder = BatchRecorder()
    Trainer(make_net(), SGD(0.01)).fit(
        X, y, epochs=2, batch_size=32, callbacks=[recorder], verbose=0
    )
    assert recorder.sizes == [32, 32, 6, 32, 32, 6]


def test_batch_larger_than_data_gives_one_batch(rng):
    X, y = regression_data(rng, 20)
    recorder = BatchRecorder()
    Trainer(make_net(), SGD(0.01)).fit(
        X, y, epochs=3, batch_size=1000, callbacks=[recorder], verbose=0
    )
    assert recorder.sizes == [20, 20, 20]


def test_hooks_run_in_order_and_history_records(rng):
    X, y = regression_data(rng)
    recorder = BatchRecorder()
    trainer = Trainer(make_net(), SGD(0.01), metrics=["mae", "rmse"])
    history = trainer.fit(
        X[:40],
        y[:40],
        X[40:],
        y[40:],
        epochs=4,
        eval_every=2,
        batch_size=8,
        callbacks=[recorder],
        verbose=0,
        early_stopping=False,
    )
    assert recorder.events[0] == "train_begin" and recorder.events[-1] == "train_end"
    assert recorder.events[1:3] == ["epoch_begin 0", "epoch_end 0 ['loss']"]
    assert recorder.events[4] == "epoch_end 1 ['loss', 'val_loss', 'val_mae', 'val_rmse']"
    assert history.epoch == [0, 1, 2, 3] and history.val_epoch == [1, 3]
    assert len(history.history["loss"]) == 4 and len(history.history["val_loss"]) == 2
    assert history.history["val_loss"][-1] == pytest.approx(
        trainer.evaluate(X[40:], y[40:])["loss"], rel=1e-6
    )
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_evaluates_after_the_last_epoch_too(rng):
    X, y = regression_data(rng)
    history = Trainer(make_net(), SGD(0.01)).fit(X, y, X, y, epochs=5, eval_every=10, verbose=0)
    assert history.val_epoch == [4]


def test_fit_is_deterministic_and_restart_repeats_it(rng):
    X, y = regression_data(rng)
    runs = []
    for _ in range(2):
        net = make_net(seed=3)
        trainer = Trainer(net, SGDMomentum(0.05, momentum=0.9))
        h1 = trainer.fit(X, y, epochs=3, batch_size=7, seed=5, verbose=0)
        first = [p.copy() for p in net.params()]
        h2 = trainer.fit(X, y, epochs=3, batch_size=7, seed=5, verbose=0)  # restart=True
        assert h1.history == h2.history
        for a, b in zip(first, net.params(), strict=True):
            np.testing.assert_array_equal(a, b)
        runs.append(first)
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)


def test_shuffle_seed_changes_training(rng):
    X, y = regression_data(rng)
    params = []
    for seed in (1, 2):
        net = make_net(seed=3)
        Trainer(net, SGD(0.05)).fit(X, y, epochs=2, batch_size=7, seed=seed, verbose=0)
        params.append(next(net.params()).copy())
    assert not np.array_equal(*params)


def test_restart_false_continues(rng):
    X, y = regression_data(rng)
    net = make_net(seed=3)
    trainer = Trainer(net, SGD(0.05))
    trainer.fit(X, y, epochs=2, batch_size=7, verbose=0)
    before = next(net.params()).copy()
    trainer.fit(X, y, epochs=1, batch_size=7, verbose=0, restart=False)
    assert next(net.params()) is not None and not np.array_equal(before, next(net.params()))


class RecordVal(Callback):
    """Keeps a copy of the parameters at every evaluation."""

    def __init__(self):
        self.snapshots = {}

    def on_epoch_end(self, epoch, logs):
        if "val_loss" in logs:
            self.snapshots[epoch] = [p.copy() for p in self.trainer.net.params()]


def test_early_stopping_restores_exactly_the_best_weights(rng):
    """The book rolled back one evaluation too far and then scored the discarded model."""
    X, y = regression_data(rng, 80)
    y_val = y[60:] + rng.standard_normal((20, 1)) * 3  # noisy validation: the loss goes up and down
    net = make_net(seed=1)
    snap = RecordVal()
    stopper = EarlyStopping(patience=3)
    trainer = Trainer(net, SGD(0.2))
    history = trainer.fit(
        X[:60],
        y[:60],
        X[60:],
        y_val,
        epochs=60,
        eval_every=1,
        batch_size=4,
        callbacks=[stopper, snap],
        verbose=0,
    )
    val = history.history["val_loss"]
    best = int(np.argmin(val))
    assert best < len(val) - 1, "the test needs a run whose last evaluation is not the best"
    assert stopper.best == val[best] and stopper.best_epoch == history.val_epoch[best]
    assert trainer.evaluate(X[60:], y_val)["loss"] == val[best]  # exactly, not approximately
    for a, b in zip(net.params(), snap.snapshots[history.val_epoch[best]], strict=True):
        np.testing.assert_array_equal(a, b)


def test_book_early_stopping_stops_at_first_worse_evaluation(rng):
    X, y = regression_data(rng, 80)
    y_val = y[60:] + rng.standard_normal((20, 1)) * 3
    history = Trainer(make_net(seed=1), SGD(0.2)).fit(
        X[:60],
        y[:60],
        X[60:],
        y_val,
        epochs=200,
        eval_every=1,
        batch_size=4,
        verbose=0,
        early_stopping=True,
    )
    val = history.history["val_loss"]
    assert len(val) < 200
    assert all(val[i + 1] < val[i] for i in range(len(val) - 2))  # improving until the last
    assert val[-1] >= val[-2]


def test_nan_stops_at_that_batch_and_keeps_last_finite_params(rng):
    X, y = regression_data(rng, 40)

    class Poison(Callback):
        def on_batch_begin(self, batch, logs):
            if self.trainer.epoch == 1 and batch == 2:
                X_bad = self.trainer.net.layers[0].params[0]
                self.saved = [p.copy() for p in self.trainer.net.params()]
                X_bad[0, 0] = np.nan  # the next forward produces a NaN loss

    poison = Poison()
    net = make_net()
    with pytest.raises(TrainingDiverged, match=r"training loss is nan at epoch 2, batch 3") as info:
        Trainer(net, SGD(0.01)).fit(X, y, epochs=5, batch_size=8, callbacks=[poison], verbose=0)
    assert len(info.value.history.history["loss"]) == 1
    after = list(net.params())
    # nothing was applied after the NaN: only the poisoned element differs
    assert np.isnan(after[0][0, 0])
    after[0][0, 0] = poison.saved[0][0, 0]
    for a, b in zip(after, poison.saved, strict=True):
        np.testing.assert_array_equal(a, b)


def test_diverging_learning_rate_is_reported(rng):
    X, y = regression_data(rng, 40)
    with pytest.raises(TrainingDiverged, match="epoch"), np.errstate(all="ignore"):
        Trainer(make_net(), SGD(1e6)).fit(X * 1e3, y * 1e3, epochs=20, batch_size=8, verbose=0)


def test_terminate_on_nan_is_on_by_default_and_can_be_disabled(rng):
    X, y = regression_data(rng, 40)
    with np.errstate(all="ignore"):
        history = Trainer(make_net(), SGD(1e6)).fit(
            X * 1e3, y * 1e3, epochs=3, batch_size=8, verbose=0, terminate_on_nan=False
        )
    assert not np.isfinite(history.history["loss"][-1])
    assert TerminateOnNaN().on_before_optimizer_step is not None


def test_classification_with_accuracy(rng):
    X = rng.standard_normal((300, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)  # XOR-like, needs the hidden layer
    net = NeuralNetwork(
        [Dense(16, Tanh(), weight_init="glorot"), Dense(2, Linear(), weight_init="glorot")],
        SoftmaxCrossEntropy(),
        seed=0,
    )
    trainer = Trainer(net, SGDMomentum(0.1, momentum=0.9), metrics=["accuracy"])
    trainer.fit(
        X[:200], y[:200], X[200:], y[200:], epochs=60, eval_every=10, batch_size=16, verbose=0
    )
    assert trainer.evaluate(X[200:], y[200:])["accuracy"] > 0.9


def test_verbose_prints_a_line_per_evaluation(rng, capsys):
    X, y = regression_data(rng)
    Trainer(make_net(), SGD(0.01)).fit(X, y, X, y, epochs=4, eval_every=2, verbose=1)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[0].startswith("epoch 2/4: loss") and "val_loss" in err[0]
    Trainer(make_net(), SGD(0.01)).fit(X, y, X, y, epochs=4, eval_every=2, verbose=0)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": -1}, "Received: epochs=-1"),
        ({"epochs": 0}, "Received: epochs=0"),
        ({"batch_size": 0}, "Received: batch_size=0"),
        ({"eval_every": 1.5}, "Received: eval_every=1.5"),
    ],
)
def test_fit_argument_errors(kwargs, message, rng):
    X, y = regression_data(rng)
    with pytest.raises(ValueError, match=message):
        Trainer(make_net(), SGD(0.01)).fit(X, y, verbose=0, **kwargs)


def test_fit_data_errors(rng):
    X, y = regression_data(rng)
    trainer = Trainer(make_net(), SGD(0.01))
    with pytest.raises(
        ValueError, match=r"same number of examples; received \(60, 3\) and \(59, 1\)"
    ):
        trainer.fit(X, y[:-1], verbose=0)
    with pytest.raises(ValueError, match="give both X_test and y_test"):
        trainer.fit(X, y, X, verbose=0)
    with pytest.raises(TypeError, match="optim must be an Optimizer"):
        Trainer(make_net(), "sgd")
