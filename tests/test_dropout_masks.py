"""Dropout masks from a counter-based hash: the formula, its statistics, and the compiled
kernel (scratchdl[fast]) giving the NumPy reference's bits forward and backward."""

from __future__ import annotations

import numpy as np
import pytest

from scratchdl import Dropout, backend, gradcheck
from scratchdl.ops import dropout as dropout_module
from scratchdl.ops.dropout import draw_keys, dropout_mask, keep_threshold


def scalar_hash(i: int, a: int, b: int) -> int:
    """The documented hash, one Python integer at a time (the independent reference)."""
    low = 0xFFFFFFFF
    h = (a * i + b) & low
    h ^= h >> 16
    h = (h * 0x7FEB352D) & low
    h ^= h >> 15
    h = (h * 0x846CA68B) & low
    return h ^ (h >> 16)


def test_mask_is_the_documented_hash_across_chunks():
    keys = ((2654435761, 12345),)
    size = 70_000  # past two of the NumPy code's 32768-element chunks
    mask = dropout_mask(size, keys, keep_threshold(0.7), 2.0, np.float32)
    for i in [0, 1, 2, 32767, 32768, 32769, 65535, 65536, 69_999, *range(100, 160)]:
        kept = scalar_hash(i, *keys[0]) < keep_threshold(0.7)
        assert mask[i] == (2.0 if kept else 0.0), i


def test_each_mask_costs_two_draws_whatever_its_size():
    rng, twin = np.random.default_rng(4), np.random.default_rng(4)
    op = Dropout(0.8, rng=rng)
    op.forward(np.ones((50, 40)))
    op.forward(np.ones(3))
    twin.integers(0, 2**32, size=(1, 2), dtype=np.uint64)
    twin.integers(0, 2**32, size=(1, 2), dtype=np.uint64)
    assert rng.bit_generator.state == twin.bit_generator.state
    assert all(a % 2 == 1 for a, _ in draw_keys(np.random.default_rng(0), 10**10))


def test_keep_threshold_is_keep_prob_of_the_32_bit_range():
    assert keep_threshold(0.5) == 2**31
    assert keep_threshold(1.0) == 2**32 - 1  # never past the largest 32-bit hash
    assert abs(keep_threshold(0.8) / 2**32 - 0.8) < 2.4e-10


@pytest.mark.parametrize("keep_prob", [0.1, 0.5, 0.8, 0.95])
def test_masks_are_bernoulli_and_independent(keep_prob):
    """Kept fraction, and no correlation between neighbours (along rows, columns and
    channels of an image batch) or between consecutive masks: each z-score is below 5,
    for a fixed seed (the statistics of 2^20 draws, so a failure is a real defect)."""
    op = Dropout(keep_prob, inverted=False, rng=np.random.default_rng(11))
    shape = (64, 16, 32, 32)  # 2^20 values
    first = op.forward(np.ones(shape)).reshape(-1)
    second = op.forward(np.ones(shape)).reshape(-1)
    n, sd = first.size, np.sqrt(keep_prob * (1 - keep_prob))
    assert abs(first.mean() - keep_prob) / (sd / np.sqrt(n)) < 5
    z = (first - keep_prob) / sd
    for lag in (1, 2, 31, 32, 1024, 16 * 1024):  # neighbours, rows, channels, images
        assert abs(np.mean(z[:-lag] * z[lag:])) * np.sqrt(n - lag) < 5, lag
    assert abs(np.mean(z * (second - keep_prob) / sd)) * np.sqrt(n) < 5


def test_one_seed_one_mask_and_new_masks_each_pass():
    x = np.ones((20, 30))
    a, b = Dropout(0.5, rng=np.random.default_rng(3)), Dropout(0.5, rng=np.random.default_rng(3))
    first = a.forward(x)
    np.testing.assert_array_equal(first, b.forward(x))
    assert not np.array_equal(first, a.forward(x))


def _run(fast_off, on: bool, x: np.ndarray, g: np.ndarray, **kwargs) -> tuple:
    fast_off(on)
    op = Dropout(rng=np.random.default_rng(5), **kwargs)
    out = op.forward(x)
    took_kernel = op._mask is None
    grad = op.backward(g)
    return out, grad, took_kernel, op


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("inverted", [True, False])
def test_kernel_gives_the_reference_bits(fast_off, dtype, inverted, rng):
    pytest.importorskip("numba")
    x = rng.standard_normal((7, 3, 11, 13)).astype(dtype)
    x[0, 0, 0, :4] = [np.nan, np.inf, -np.inf, -0.0]  # x·0 keeps NaN and signs, as NumPy's
    g = rng.standard_normal(x.shape).astype(dtype)
    kwargs = {"keep_prob": 0.7, "inverted": inverted}
    ref_out, ref_grad, ref_kernel, _ = _run(fast_off, False, x, g, **kwargs)
    out, grad, kernel, op = _run(fast_off, True, x, g, **kwargs)
    assert kernel and not ref_kernel, "the kernel path was not taken (or taken with it off)"
    assert out.dtype == grad.dtype == dtype
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(grad, ref_grad)
    assert out.tobytes() == ref_out.tobytes()  # signed zeros and NaN too
    np.testing.assert_array_equal(op.mask, (ref_out != 0) * op.mask.max())  # asked for later


def test_kernel_on_a_strided_input_and_gradient(fast_off, rng):
    pytest.importorskip("numba")
    x = rng.standard_normal((12, 10)).astype(np.float32).T  # Fortran order
    g = rng.standard_normal((20, 12)).astype(np.float32)[::2]  # every other row
    results = [_run(fast_off, on, x, g, keep_prob=0.6)[:2] for on in (False, True)]
    for ref, got in zip(*results, strict=True):
        np.testing.assert_array_equal(got, ref)


def test_masks_of_several_counter_blocks(fast_off, monkeypatch, rng):
    """Masks longer than one counter block (2^32 elements) hash each block with its own
    keys: checked with the block made small."""
    pytest.importorskip("numba")
    monkeypatch.setattr(backend, "DROPOUT_BLOCK", 1000)
    assert len(draw_keys(np.random.default_rng(0), 2500)) == 3
    x = rng.standard_normal((5, 500))
    ref_out, ref_grad, _, ref_op = _run(fast_off, False, x, x, keep_prob=0.5)
    out, grad, _, op = _run(fast_off, True, x, x, keep_prob=0.5)
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(grad, ref_grad)
    mask = ref_op.mask.reshape(-1)
    assert not np.array_equal(mask[:1000], mask[1000:2000])  # not one block repeated
    (a, b), i = op._keys[1], 7
    assert mask[1000 + i] == (2.0 if scalar_hash(i, a, b) < 2**31 else 0.0)


@pytest.mark.parametrize("fast", [False, True])
def test_dropout_gradient_checks_on_both_paths(fast_off, fast, rng):
    fast_off(fast)
    x = rng.standard_normal((4, 3, 5, 5))
    for inverted in (True, False):
        op = Dropout(0.6, inverted=inverted, rng=np.random.default_rng(2))
        assert gradcheck.check_operation(op, x) < 1e-7


def test_an_integer_input_gets_a_float64_mask(fast_off):
    for fast in (False, True):
        fast_off(fast)
        out = Dropout(0.5, rng=np.random.default_rng(0)).forward(np.arange(1, 101))
        assert out.dtype == np.float64 and set(np.unique(out / np.arange(1, 101))) <= {0, 2}


@pytest.mark.parametrize("library", ["array_api_strict", "torch"])
def test_device_masks_have_the_numpy_bits_without_a_host_copy(library, rng, monkeypatch):
    """On another array library the mask is computed on the input's device in int64
    arithmetic: array_api_strict's "device1" refuses any silent copy to NumPy, as CuPy
    does, and the outputs and gradients equal NumPy's bit for bit."""
    lib = pytest.importorskip(library)
    x = rng.standard_normal((3, 4, 5, 6)).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    if library == "array_api_strict":
        as_lib = lambda a: lib.asarray(a, device=lib.Device("device1"))  # noqa: E731
    else:
        as_lib = lib.asarray
    for inverted in (True, False):
        ref = Dropout(0.7, inverted=inverted, rng=np.random.default_rng(8))
        op = Dropout(0.7, inverted=inverted, rng=np.random.default_rng(8))
        want_out, want_grad = ref.forward(x), ref.backward(g)
        with monkeypatch.context() as patch:  # the host's mask code must not run
            patch.setattr(dropout_module, "dropout_mask", None)
            out, grad = op.forward(as_lib(x)), op.backward(as_lib(g))
        assert type(out) is type(as_lib(x)) and type(op.mask) is type(out)
        np.testing.assert_array_equal(backend.to_numpy(out), want_out)
        np.testing.assert_array_equal(backend.to_numpy(grad), want_grad)
