"""Data-parallel training over threads (`Trainer(threads=N)`, `scratchdl.training.replicas`):
the parts of a batch give the whole batch's gradient, runs repeat bit for bit, dropout and
batch norm get per-part streams and averaged statistics, and errors name what is wrong."""

import copy
import itertools
import sys
import threading
import time
from typing import ClassVar

import numpy as np
import pytest

from scratchdl import (
    Adam,
    BatchNorm,
    Conv2D,
    Dense,
    Flatten,
    Layer,
    Linear,
    MaxPool2D,
    MeanSquaredError,
    NeuralNetwork,
    Operation,
    ParamOperation,
    ReLU,
    SGDMomentum,
    SoftmaxCrossEntropy,
    Tanh,
    Trainer,
)
from scratchdl.training import denormals
from scratchdl.training.replicas import ThreadReplicas, split


def conv_net(dropout=1.0, batch_norm=False, seed=3):
    layers = [Conv2D(4, 3, activation=ReLU(), dropout=dropout), MaxPool2D(2)]
    if batch_norm:
        layers.append(BatchNorm())
    layers += [Flatten(), Dense(6, Tanh()), Dense(3, Linear())]
    return NeuralNetwork(layers, SoftmaxCrossEntropy(), seed=seed, dtype=np.float64)


def images(rng, n=20):
    X = rng.standard_normal((n, 2, 6, 6))
    return X, rng.integers(0, 3, n)


@pytest.mark.parametrize(("n", "parts", "sizes"), [
    (10, 2, [5, 5]), (7, 2, [4, 3]), (7, 3, [3, 2, 2]), (1, 2, [1, 0]), (3, 4, [1, 1, 1, 0]),
])  # fmt: skip
def test_split_covers_the_rows_in_order_with_the_longer_parts_first(n, parts, sizes):
    slices = split(n, parts)
    assert [s.stop - s.start for s in slices] == sizes
    assert slices[0].start == 0 and slices[-1].stop == n
    assert all(a.stop == b.start for a, b in itertools.pairwise(slices))


class Scale(ParamOperation):
    """A parameter operation written as the book writes them: x · w, element by element."""

    def _output(self, inference=False):
        return self.input_ * self.param

    def _input_grad(self, output_grad):
        return output_grad * self.param

    def _param_grad(self, output_grad):
        return (output_grad * self.input_).sum(axis=0)


class BookScale(Layer):
    """A layer written the book's way: `_setup_layer` makes its operations."""

    def _setup_layer(self, input_):
        self.operations = [Scale(self.rng.standard_normal(input_.shape[1:]))]


def book_style_net():
    return NeuralNetwork(
        [BookScale(1), Dense(5, Tanh()), Dense(2, Linear())],
        MeanSquaredError(), seed=4, dtype=np.float64,
    )  # fmt: skip


@pytest.mark.parametrize("rows", [20, 7, 1])
@pytest.mark.parametrize("count", [2, 3])
@pytest.mark.parametrize("make", ["conv", "book"])
def test_the_parts_give_the_whole_batch_gradient_and_loss(rng, rows, count, make):
    if make == "conv":
        net = conv_net()
        X, y = images(rng, rows)
    else:
        net = book_style_net()
        X, y = rng.standard_normal((rows, 4)), rng.standard_normal((rows, 2))
    net.forward(X[:1], inference=True)
    whole = copy.deepcopy(net)
    expected_loss = whole.train_batch(X, y)
    replicas = ThreadReplicas(net, count)
    loss = replicas.train_batch(X, y)
    replicas.close()
    assert loss == pytest.approx(expected_loss, rel=1e-13)
    grads = list(net.param_grads())
    assert len(grads) == len(list(whole.param_grads())) > 0
    for got, expected in zip(grads, whole.param_grads(), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


def test_replicas_share_the_parameters_and_are_made_again_after_a_reset(rng):
    net = conv_net()
    X, y = images(rng)
    replicas = ThreadReplicas(net, 2)
    replicas.train_batch(X, y)
    (replica,) = replicas.replicas
    assert all(a is b for a, b in zip(net.params(), replica.params(), strict=True))
    assert not any(a is b for a, b in zip(net.param_grads(), replica.param_grads(), strict=True))
    assert replica.rng is not net.rng and replica.layers[0].rng is replica.rng
    net.reset()  # new parameter arrays at the next forward: the replica must follow
    replicas.train_batch(X, y)
    assert replicas.replicas[0] is not replica
    assert all(a is b for a, b in zip(net.params(), replicas.replicas[0].params(), strict=True))
    replicas.close()


def fit(net, X, y, threads, optim=None, **kwargs):
    trainer = Trainer(net, optim or Adam(0.01), threads=threads)
    history = trainer.fit(X, y, epochs=2, batch_size=8, verbose=0, **kwargs)
    return trainer, history


def test_two_threads_train_the_one_thread_model_without_dropout(rng):
    X, y = images(rng, 30)
    one, two = conv_net(), conv_net()
    fit(one, X, y, 1, SGDMomentum(0.1, momentum=0.9))
    _, history = fit(two, X, y, 2, SGDMomentum(0.1, momentum=0.9))
    assert len(history.history["loss"]) == 2
    for a, b in zip(one.params(), two.params(), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_a_seed_gives_one_run_with_threads_bit_for_bit(rng, batch_norm):
    X, y = images(rng, 30)
    runs = []
    for _ in range(2):
        net = conv_net(dropout=0.7, batch_norm=batch_norm)
        fit(net, X, y, 2)
        runs.append([a.copy() for a in net.arrays().values()])
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)
    # and a second fit of the same trainer (restart=True) repeats it too
    net = conv_net(dropout=0.7, batch_norm=batch_norm)
    trainer, _ = fit(net, X, y, 2)
    trainer.fit(X, y, epochs=2, batch_size=8, verbose=0)
    for a, b in zip(runs[0], net.arrays().values(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_each_part_draws_its_own_dropout_masks(rng):
    net = conv_net(dropout=0.5)
    x, y = images(rng, 1)
    X, Y = np.repeat(x, 8, axis=0), np.repeat(y, 8)  # eight copies of one image
    replicas = ThreadReplicas(net, 2)
    replicas.train_batch(X, Y)
    mine = net.layers[0].output
    theirs = replicas.replicas[0].layers[0].output
    assert mine.shape == theirs.shape == (4, 4, 6, 6)
    # one generator copied into both parts would give the rows of both the same masks
    assert not np.array_equal(mine[0] == 0, theirs[0] == 0)
    assert not np.array_equal(mine == 0, theirs == 0)
    replicas.close()


def test_batch_norm_statistics_are_the_average_of_the_parts(rng):
    net = conv_net(batch_norm=True)
    X, y = images(rng, 16)
    net.forward(X[:1], inference=True)
    bn = net.layers[2]
    first, second = copy.deepcopy(net), copy.deepcopy(net)
    replicas = ThreadReplicas(net, 2)
    for step in range(2):
        if step == 1:  # state changed outside the step (a loaded checkpoint): parts start from it
            for array in bn.named_state().values():
                array += 0.25
            for copy_ in (first, second):
                copy_.load_state_dict(net.state_dict())
        first.train_batch(X[:8], y[:8])
        second.train_batch(X[8:], y[8:])
        replicas.train_batch(X, y)
        for name, array in bn.named_state().items():
            average = (
                first.layers[2].named_state()[name] + second.layers[2].named_state()[name]
            ) / 2
            np.testing.assert_allclose(array, average, rtol=1e-13, err_msg=name)
            for copy_ in (first, second):  # the next step starts from the averaged state
                copy_.layers[2].named_state()[name][...] = array
    replicas.close()


class FailOn(Operation):
    """Raises when it sees the value 99, sleeps when it sees 77 (a layer that fails mid-step,
    and one that is slow), and counts the forward passes that ended."""

    ended = 0

    def _output(self, inference=False):
        if (self.input_ == 99).any():
            raise RuntimeError("FailOn: saw 99")
        if (self.input_ == 77).any():
            time.sleep(0.3)
        FailOn.ended += 1
        return self.input_

    def _input_grad(self, output_grad):
        return output_grad


@pytest.mark.parametrize("bad_row", [1, 6])  # in the network's own part, and in the replica's
def test_an_error_in_any_part_is_raised_after_every_part_has_ended(rng, bad_row):
    net = NeuralNetwork([FailOn(), Dense(3, Linear())], MeanSquaredError(), dtype=np.float64)
    X, y = rng.standard_normal((8, 2)), rng.standard_normal((8, 3))
    X[bad_row, 0] = 99
    X[7 - bad_row, 0] = 77  # the other part is slow: the error must wait for it
    net.forward(X[2:3], inference=True)
    replicas = ThreadReplicas(net, 2)
    FailOn.ended = 0
    with pytest.raises(RuntimeError, match="FailOn: saw 99"):
        replicas.train_batch(X, y)
    assert FailOn.ended == 1
    X[bad_row, 0] = X[7 - bad_row, 0] = 0  # the replicas still work after it
    replicas.train_batch(X, y)
    replicas.close()


class RecordModes(Operation):
    """Records, per thread, whether subnormal floats are flushed where its forward runs."""

    seen: ClassVar[dict[str, bool]] = {}

    def _output(self, inference=False):
        RecordModes.seen[threading.current_thread().name] = denormals._flushes()
        return self.input_

    def _input_grad(self, output_grad):
        return output_grad


@pytest.mark.skipif(not denormals.supported(), reason="flush modes not settable here")
@pytest.mark.parametrize("flush", [True, False])
def test_every_part_flushes_subnormals_as_the_calling_thread_does(rng, flush):
    net = NeuralNetwork([RecordModes(), Dense(2, Linear())], MeanSquaredError())
    X, y = rng.standard_normal((16, 2)), rng.standard_normal((16, 2))
    replicas = ThreadReplicas(net, 2)
    with denormals.flush_denormals(not flush):  # the worker thread starts in the other mode
        replicas.train_batch(X, y)
    RecordModes.seen = {}
    with denormals.flush_denormals(flush):
        replicas.train_batch(X, y)
    assert len(RecordModes.seen) == 2 and set(RecordModes.seen.values()) == {flush}
    replicas.close()
    # and through Trainer(flush_denormals=...)
    RecordModes.seen = {}
    Trainer(net, Adam(), threads=2, flush_denormals=flush).fit(
        X, y, epochs=1, batch_size=8, verbose=0
    )
    assert any(name.startswith("scratchdl-part") for name in RecordModes.seen)
    assert len(RecordModes.seen) == 2 and set(RecordModes.seen.values()) == {flush}


def test_fit_ends_its_worker_threads(rng):
    X, y = images(rng)
    before = set(threading.enumerate())
    trainer, _ = fit(conv_net(), X, y, 3)
    assert trainer.replicas._pool is None
    assert set(threading.enumerate()) <= before


@pytest.mark.parametrize("threads", [0, -1, 1.5, "2", True, None])
def test_threads_must_be_a_positive_integer(threads):
    with pytest.raises(
        ValueError, match=f"threads must be a positive integer. Received: threads={threads!r}"
    ):
        Trainer(conv_net(), Adam(), threads=threads)


def test_threads_refuse_more_blas_threads_and_other_array_libraries(rng):
    with pytest.raises(
        ValueError,
        match="threads=2 computes each part of a batch with one BLAS thread; blas_threads=2",
    ):
        Trainer(conv_net(), Adam(), threads=2, blas_threads=2)
    Trainer(conv_net(), Adam(), threads=2, blas_threads=1)  # fine, and so are "auto" and None
    xp = pytest.importorskip("array_api_strict")
    net = conv_net()
    X, y = images(rng)
    net.forward(X[:1], inference=True)
    net.to(xp, xp.Device("device1"))
    with pytest.raises(ValueError, match="threads=2 trains NumPy networks; this network was moved"):
        Trainer(net, Adam(), threads=2).fit(X, y, epochs=1, verbose=0)


def test_threads_need_threadpoolctl(monkeypatch):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import then raises ImportError
    with pytest.raises(
        ImportError, match=r"threads=2 needs threadpoolctl .* pip install 'scratchdl\[train\]'"
    ):
        Trainer(conv_net(), Adam(), threads=2)
    Trainer(conv_net(), Adam(), threads=1)  # one thread needs nothing


@pytest.mark.parametrize("how", ["stateful", "initial_state"])
def test_recurrent_layers_that_carry_a_state_per_row_are_refused(rng, how):
    from scratchdl import LSTM

    lstm = LSTM(4, return_sequences=True, stateful=how == "stateful")
    net = NeuralNetwork([lstm], MeanSquaredError(), dtype=np.float64)
    X, y = rng.standard_normal((6, 3, 2)), rng.standard_normal((6, 3, 4))
    if how == "initial_state":
        lstm.initial_state = (np.zeros((6, 4)), np.zeros((6, 4)))
    with pytest.raises(
        ValueError, match=r"layer 1 \(LSTM\(4, return_sequences=True.*train it with threads=1"
    ):
        Trainer(net, Adam(), threads=2).fit(X, y, epochs=1, batch_size=6, verbose=0)
    plain = NeuralNetwork([LSTM(4, return_sequences=True)], MeanSquaredError(), dtype=np.float64)
    Trainer(plain, Adam(), threads=2).fit(X, y, epochs=1, batch_size=6, verbose=0)


def test_evaluate_splits_its_rows_over_the_threads(rng):
    X, y = images(rng, 30)
    net = conv_net(dropout=0.7, batch_norm=True)
    trainer, _ = fit(net, X, y, 2)
    RecordModes.seen = {}
    spy = NeuralNetwork([RecordModes()], MeanSquaredError())  # a witness of the threads
    spy_trainer = Trainer(spy, Adam(), threads=2)
    spy_trainer.evaluate(X[:, 0, 0, :3], X[:, 0, 0, :3])
    assert any(name.startswith("scratchdl-part") for name in RecordModes.seen)
    scores = trainer.evaluate(X, y)
    one = Trainer(net, Adam()).evaluate(X, y)  # the same network, one thread
    assert scores["loss"] == pytest.approx(one["loss"], rel=1e-12)
    # the rows come back in order, each as one thread predicts it
    np.testing.assert_allclose(trainer.replicas.predict(X, 7), net.predict(X), rtol=1e-12)
    trainer.replicas.close()
    spy_trainer.replicas.close()
