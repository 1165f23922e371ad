import numpy as np
import pytest

from scratchdl import SGD, Callback, Dense, MeanSquaredError, NeuralNetwork, Trainer
from scratchdl.training import threads

threadpoolctl = pytest.importorskip("threadpoolctl")


def blas_threads_now() -> int:
    return min(p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas")


def test_auto_rule():
    assert threads.choose("auto", 8) == 1
    assert threads.choose("auto", 60) == 1  # training batches: robust beside a busy core
    assert threads.choose("auto", 512) == 1
    assert threads.choose("auto", 1000) is None
    assert threads.choose(3, 60) == 3
    assert threads.choose(None, 1) is None


@pytest.mark.parametrize("bad", [0, -2, "many", 1.5, True])
def test_bad_settings(bad):
    with pytest.raises(ValueError, match="blas_threads must be"):
        threads.check_setting(bad)


def test_fit_applies_and_restores_the_thread_count(rng):
    seen = []

    class Watch(Callback):
        def on_batch_begin(self, batch, logs):
            seen.append(blas_threads_now())

    before = blas_threads_now()
    net = NeuralNetwork([Dense(2)], MeanSquaredError(), seed=0)
    X, y = rng.standard_normal((20, 3)), rng.standard_normal((20, 2))
    Trainer(net, SGD(0.1), blas_threads=1).fit(
        X, y, epochs=1, batch_size=10, callbacks=[Watch()], verbose=0
    )
    assert seen == [1, 1]
    assert blas_threads_now() == before
    seen.clear()
    Trainer(net, SGD(0.1), blas_threads=None).fit(
        X, y, epochs=1, batch_size=10, callbacks=[Watch()], verbose=0
    )
    assert seen == [before, before]
    np.testing.assert_equal(blas_threads_now(), before)


def test_evaluation_inside_fit_gets_the_blas_threads_training_leaves_alone(rng):
    """With "auto", training batches of 10 rows run on one BLAS thread and evaluation in
    batches of 1000 leaves BLAS alone: inside `fit` that must mean the count from before
    `fit`, not the training steps' one thread."""
    from scratchdl import Linear, Operation

    seen = {True: set(), False: set()}

    class Record(Operation):
        def _output(self, inference=False):
            seen[bool(inference)].add(blas_threads_now())
            return self.input_

        def _input_grad(self, output_grad):
            return output_grad

    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads_now()
        if before < 2:
            pytest.skip("one BLAS thread here: nothing to tell apart")
        net = NeuralNetwork([Dense(3, Linear()), Record()], MeanSquaredError(), seed=0)
        X, y = rng.standard_normal((30, 4)), rng.standard_normal((30, 3))
        Trainer(net, SGD(0.1)).fit(X, y, X, y, epochs=2, eval_every=1, batch_size=10, verbose=0)
        assert blas_threads_now() == before
    assert seen[False] == {1}  # the training steps
    assert seen[True] == {before}  # the evaluations, in batches of 1000
