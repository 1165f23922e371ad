"""The direct convolution kernels (scratchdl[fast]): stride-1 convolutions with few filters
computed without an im2col matrix.

They sum in another order than im2col + BLAS, so each case compares outputs and both
gradients with the loops of `test_ops_conv` in float64 (to 1e-10) and with the im2col path
in float32 (to rounding), checks the gradients by central differences, and checks which
path ran. A run with numba's bounds checking on shows that no shape reads past an array.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from scratchdl import Conv2D, Conv2DOperation, backend, gradcheck
from scratchdl.ops.conv import resolve_padding
from tests.test_ops_conv import naive_conv, naive_conv_grads

pytest.importorskip("numba")


@pytest.fixture(autouse=True)
def kernels_on(fast_off):
    """These tests are about the kernels: on, whatever SCRATCHDL_FAST says."""
    fast_off(True)


SHAPES = [  # (filters, channels, kernel, padding, image)
    (7, 14, (5, 5), "same", (9, 8)),  # the book's chapter-7 second convolution, smaller
    (2, 3, (3, 3), "same", (6, 7)),
    (3, 1, (5, 5), "valid", (9, 9)),  # an odd filter count: the last filter alone
    (1, 2, (2, 3), (1, 2), (5, 6)),  # one filter, paired with itself; a 2×3 kernel
    (4, 2, (4, 4), "same", (7, 5)),  # the generic loop over taps; uneven "same" padding
    (5, 3, (1, 1), 0, (4, 4)),  # the generic loop, one tap
    (15, 2, (3, 3), 2, (3, 4)),  # the largest filter count that takes the kernels
]


def _run(op: Conv2DOperation, x: np.ndarray, g_seed: int) -> tuple[np.ndarray, ...]:
    out = op.forward(x)
    g = np.random.default_rng(g_seed).standard_normal(out.shape).astype(x.dtype)
    return out, g, op.backward(g), op.param_grad


@pytest.mark.parametrize(("filters", "channels", "kernel", "padding", "image"), SHAPES)
def test_direct_convolution_equals_the_loops(filters, channels, kernel, padding, image, rng):
    x = rng.standard_normal((3, channels, *image))
    w = rng.standard_normal((filters, channels, *kernel))
    op = Conv2DOperation(w.copy(), 1, padding)
    out, g, dx, dw = _run(op, x, 1)
    assert op._cols is None, "the direct kernels did not run"
    pad = resolve_padding(padding, kernel, 1, image)
    np.testing.assert_allclose(out, naive_conv(x, w, 1, pad), rtol=1e-10, atol=1e-10)
    ref_dx, ref_dw = naive_conv_grads(x, w, g, 1, pad)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dw, ref_dw, rtol=1e-10, atol=1e-10)
    assert out.flags.c_contiguous and dx.flags.c_contiguous and dw.flags.c_contiguous


@pytest.mark.parametrize(("filters", "channels", "kernel", "padding", "image"), SHAPES[:4])
def test_direct_convolution_in_float32_agrees_with_im2col(
    filters, channels, kernel, padding, image, monkeypatch, rng
):
    """On a channel-major input (a pooled convolution's output) as well."""
    x = rng.standard_normal((channels, 4, *image)).astype(np.float32).transpose(1, 0, 2, 3)
    w = rng.standard_normal((filters, channels, *kernel)).astype(np.float32)
    direct = _run(Conv2DOperation(w.copy(), 1, padding), x, 2)
    monkeypatch.setattr(backend, "DIRECT_CONV_MAX_FILTERS", 0)
    im2col = Conv2DOperation(w.copy(), 1, padding)
    reference = _run(im2col, x, 2)
    assert im2col._cols is not None
    for got, want in zip(direct, reference, strict=True):
        assert got.dtype == np.float32
        scale = float(np.abs(want).max())
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-6 * scale)


@pytest.mark.parametrize(("filters", "channels", "kernel", "padding", "image"), SHAPES[:5])
def test_direct_convolution_is_gradient_checked(filters, channels, kernel, padding, image, rng):
    op = Conv2DOperation(rng.standard_normal((filters, channels, *kernel)), 1, padding)
    assert gradcheck.check_operation(op, rng.standard_normal((2, channels, *image))) < 1e-7
    assert op._cols is None


def test_which_convolutions_take_the_direct_kernels(fast_off, rng):
    x = rng.standard_normal((2, 2, 8, 8))
    cases = {  # (filters, stride, kernels on) -> direct
        (backend.DIRECT_CONV_MAX_FILTERS, 1, True): True,
        (backend.DIRECT_CONV_MAX_FILTERS + 1, 1, True): False,
        (4, 2, True): False,
        (4, 1, False): False,
    }
    for (filters, stride, on), direct in cases.items():
        fast_off(on)
        op = Conv2DOperation(rng.standard_normal((filters, 2, 3, 3)), stride, "same")
        op.forward(x)
        assert (op._cols is None) is direct, (filters, stride, on)
    fast_off(True)
    ints = Conv2DOperation(np.ones((2, 2, 3, 3), dtype=np.int64), 1, "same")
    ints.forward(np.ones((1, 2, 4, 4), dtype=np.int64))
    assert ints._cols is not None  # integers keep the NumPy path


def test_kernels_turned_off_between_forward_and_backward(fast_off, rng):
    """The backward pass then rebuilds the im2col matrix from the padded input it kept."""
    x, w = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 3))
    op = Conv2DOperation(w.copy(), 1, "same")
    fast_off(True)
    out = op.forward(x)
    assert op._cols is None
    fast_off(False)
    g = rng.standard_normal(out.shape)
    dx = op.backward(g)
    ref_dx, ref_dw = naive_conv_grads(x, w, g, 1, (1, 1, 1, 1))
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(op.param_grad, ref_dw, rtol=1e-10, atol=1e-10)


def test_nan_and_infinity_reach_the_outputs_they_touch(rng):
    x = rng.standard_normal((1, 2, 7, 7))
    x[0, 0, 3, 3] = np.nan
    x[0, 1, 0, 6] = np.inf
    op = Conv2DOperation(np.abs(rng.standard_normal((3, 2, 3, 3))) + 0.1, 1, "same")
    out = op.forward(x)
    assert op._cols is None
    expected = naive_conv(np.nan_to_num(x, nan=1e300, posinf=1e300), op.param, 1, (1,) * 4)
    np.testing.assert_array_equal(~np.isfinite(out), np.abs(expected) > 1e200)


def test_a_layer_trains_with_the_direct_kernels(rng):
    """Conv2D layers (bias, activation, flatten) wire the direct path as the im2col one."""
    from scratchdl import Dense, NeuralNetwork, SoftmaxCrossEntropy

    net = NeuralNetwork(
        [Conv2D(6, 5, activation="tanh", flatten=True), Dense(3, "linear")],
        SoftmaxCrossEntropy(),
        seed=0,
        dtype=np.float64,
    )
    X, y = rng.standard_normal((4, 1, 6, 6)), np.array([0, 1, 2, 1])
    assert gradcheck.check_network(net, X, y) < 1e-7
    assert net.layers[0].operations[0]._cols is None


BOUNDS = """
import numpy as np
from scratchdl import Conv2DOperation
rng = np.random.default_rng(0)
for f, c, k, padding, image in {shapes!r}:
    for dtype in (np.float32, np.float64):
        op = Conv2DOperation(rng.standard_normal((f, c, *k)).astype(dtype), 1, padding)
        out = op.forward(rng.standard_normal((2, c, *image)).astype(dtype))
        assert op._cols is None
        op.backward(rng.standard_normal(out.shape).astype(dtype))
print("ok")
"""


def test_no_shape_reads_past_an_array(tmp_path):
    """numba does not check bounds by default: a wrong length would read other memory
    silently. With NUMBA_BOUNDSCHECK=1 (and a fresh cache, so the kernels compile with the
    checks) every index is checked and an out-of-bounds one raises IndexError."""
    env = {**os.environ, "NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": str(tmp_path)}
    env["SCRATCHDL_FAST"] = "1"
    result = subprocess.run(
        [sys.executable, "-c", BOUNDS.format(shapes=SHAPES)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
