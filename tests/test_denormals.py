"""Subnormal floats are flushed to zero while a Trainer trains, and only then."""

from __future__ import annotations

import platform
import sys
import threading

import numpy as np
import pytest

from scratchdl import (
    SGD,
    Callback,
    Dense,
    Linear,
    MeanSquaredError,
    NeuralNetwork,
    Trainer,
    flush_denormals,
)
from scratchdl.training import denormals

X86_LINUX = sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64")
needs_support = pytest.mark.skipif(
    not denormals.supported(), reason="flushing is supported on x86-64 Linux only"
)


def flushes() -> bool:
    """A float32 product that underflows to a subnormal under IEEE rules is zero."""
    return bool(np.float32(2e-38) * np.float32(0.25) == 0)


def test_supported_where_it_should_be():
    assert denormals.supported() == X86_LINUX


def test_ieee_arithmetic_outside_the_block():
    assert not flushes()
    assert np.float32(2e-38) * np.float32(0.25) == np.float32(5e-39)


@needs_support
def test_the_block_flushes_results_and_inputs_and_restores_after():
    subnormal = np.array([0x00400000], dtype=np.uint32).view(np.float32)
    with flush_denormals() as on:
        assert on is True
        assert flushes()
        assert (subnormal * np.float32(1.0))[0] == 0  # read as zero (DAZ)
        big = np.full(1000, 2e-38, np.float32)
        assert not (big * np.float32(0.25)).any()  # vectorised loops too
    assert not flushes()
    assert (subnormal * np.float32(1.0))[0] == subnormal[0]


@needs_support
def test_nesting_and_exceptions_restore_the_modes():
    with flush_denormals():
        with flush_denormals() as inner:
            assert inner and flushes()
        assert flushes()  # the inner block restored the outer one's modes
        with flush_denormals(False) as off:
            assert off is False and flushes()  # False leaves the modes alone
    assert not flushes()
    with pytest.raises(RuntimeError), flush_denormals():
        raise RuntimeError("inside")
    assert not flushes()


@needs_support
def test_the_modes_belong_to_the_calling_thread():
    """A thread that already runs (as BLAS's workers do) keeps its own modes; a thread
    started inside the block inherits them (POSIX)."""
    go, seen = threading.Event(), []

    def work() -> None:
        go.wait()
        seen.append(flushes())

    before = threading.Thread(target=work)
    before.start()
    with flush_denormals():
        go.set()
        before.join()
        during = threading.Thread(target=lambda: seen.append(flushes()))
        during.start()
        during.join()
    assert seen == [False, True]


class Probe(Callback):
    def __init__(self) -> None:
        self.seen: list[bool] = []

    def on_batch_end(self, batch, logs=None):
        self.seen.append(flushes())


def small_run(**kwargs):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3)).astype(np.float32)
    y = X @ np.ones((3, 1), np.float32)
    net = NeuralNetwork([Dense(1, Linear())], MeanSquaredError(), seed=0)
    trainer = Trainer(net, SGD(0.01), **kwargs)
    probe = Probe()
    trainer.fit(X, y, epochs=1, batch_size=20, callbacks=[probe], verbose=0)
    return trainer, probe, X, y


@needs_support
def test_fit_flushes_by_default_and_restores_after():
    trainer, probe, X, y = small_run()
    assert trainer.flush_denormals is True
    assert probe.seen == [True, True]
    assert not flushes()
    seen = []
    original = trainer.net.predict

    def predict(*args, **kwargs):
        seen.append(flushes())
        return original(*args, **kwargs)

    trainer.net.predict = predict
    trainer.evaluate(X, y)
    assert seen == [True] and not flushes()


def test_fit_with_flushing_off_keeps_ieee_arithmetic():
    _, probe, _, _ = small_run(flush_denormals=False)
    assert probe.seen == [False, False]


def test_flush_denormals_setting_is_checked():
    net = NeuralNetwork([Dense(1, Linear())], MeanSquaredError(), seed=0)
    with pytest.raises(TypeError, match="flush_denormals"):
        Trainer(net, SGD(0.01), flush_denormals="yes")
