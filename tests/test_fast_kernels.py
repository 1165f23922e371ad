"""The compiled kernels (scratchdl[fast], numba) give the bits of the NumPy code they replace.

The NumPy code stays the reference: each case runs with the kernels off and on and
compares outputs and gradients exactly, ties, NaN, infinities, odd sizes and strided
inputs included, and the kernel path is gradient-checked on its own.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from scratchdl import MaxPool2D, backend, gradcheck

pytest.importorskip("numba")


def both(x: np.ndarray, g_seed: int, switch) -> tuple[list, list]:
    results = []
    for on in (False, True):
        switch(on)
        op = MaxPool2D(2)
        out = op.forward(x)
        g = np.random.default_rng(g_seed).standard_normal(out.shape).astype(x.dtype)
        results.append((out, op.backward(g), op._which is not None))
    assert not results[0][2] and results[1][2], "the kernel path was not taken"
    return results[0][:2], results[1][:2]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(2, 3, 6, 6), (2, 3, 7, 5), (1, 1, 2, 2), (3, 2, 9, 8)])
def test_max_pool_kernel_equals_numpy_ties_included(shape, dtype, fast_off, rng):
    x = np.maximum(rng.standard_normal(shape), 0).astype(dtype)  # many tied zeros
    x[..., :2, :2] = 0.5  # a whole tied window
    (ref_out, ref_grad), (out, grad) = both(x, 1, fast_off)
    assert out.dtype == ref_out.dtype == dtype
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(grad, ref_grad)


def test_max_pool_kernel_nan_and_infinities_as_numpy(fast_off, rng):
    x = rng.standard_normal((2, 2, 6, 6))
    x[0, 0, 0, 1] = np.nan  # a NaN window: NaN out, no gradient
    x[0, 1, 2:4, 2:4] = [[np.inf, -np.inf], [1.0, np.inf]]  # +inf meets -inf: not NaN
    x[1, 0, 4:6, 0:2] = -np.inf
    (ref_out, ref_grad), (out, grad) = both(x, 2, fast_off)
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(grad, ref_grad)
    assert np.isnan(out[0, 0, 0, 0]) and not grad[0, 0, :2, :2].any()


def test_max_pool_kernel_on_a_strided_input(fast_off, rng):
    """A convolution's output is a transposed view; the kernel reads it as it is."""
    x = rng.standard_normal((3, 4, 8, 6)).transpose(1, 0, 2, 3)
    assert not x.flags.c_contiguous
    (ref_out, ref_grad), (out, grad) = both(x, 3, fast_off)
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(grad, ref_grad)


def test_max_pool_kernel_is_gradient_checked(fast_off, rng):
    fast_off(True)
    op = MaxPool2D(2)
    x = rng.permutation(2 * 2 * 6 * 6).reshape(2, 2, 6, 6) * 0.1  # distinct values
    assert gradcheck.check_operation(op, x) < 1e-8
    assert op._which is not None


def test_other_pools_and_arrays_keep_the_numpy_path(fast_off, rng):
    fast_off(True)
    for op in (MaxPool2D(3), MaxPool2D(2, stride=1)):
        op.forward(rng.standard_normal((1, 1, 6, 6)))
        assert op._which is None
    ints = MaxPool2D(2)
    ints.forward(np.arange(16).reshape(1, 1, 4, 4))
    assert ints._which is None


def test_the_kernels_can_be_turned_off():
    code = "from scratchdl import backend; print(backend.fast_kernels() is None)"
    env = {**os.environ, "SCRATCHDL_FAST": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "True", out.stderr
    env["SCRATCHDL_FAST"] = "1"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel", [(3, 3), (2, 3), (5, 5), (1, 1)])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("pad", [(0, 0, 0, 0), (1, 1, 1, 1), (0, 1, 2, 0), (2, 2, 2, 2)])
def test_im2col_and_col2im_kernels_equal_numpy(kernel, stride, pad, dtype, fast_off, rng):
    x = rng.standard_normal((3, 2, 7, 8)).astype(dtype)
    if x.shape[2] + pad[0] + pad[1] < kernel[0] or x.shape[3] + pad[2] + pad[3] < kernel[1]:
        pytest.skip("kernel larger than the padded image")
    results = []
    for on in (False, True):
        fast_off(on)
        cols, ho, wo = backend.im2col(x, kernel, stride, pad)
        g = np.random.default_rng(5).standard_normal(cols.shape).astype(dtype)
        back = backend.col2im(g, x.shape, kernel, stride, pad, (ho, wo))
        results.append((cols, ho, wo, back))
    (ref_cols, ref_ho, ref_wo, ref_back), (cols, ho, wo, back) = results
    assert (ho, wo) == (ref_ho, ref_wo)
    assert cols.dtype == back.dtype == dtype
    np.testing.assert_array_equal(cols, ref_cols)
    np.testing.assert_array_equal(back, ref_back)


def test_convolution_with_the_kernels_equals_numpy_on_a_strided_input(fast_off, rng):
    from scratchdl.ops import Conv2DOperation

    x = rng.standard_normal((4, 3, 9, 9)).transpose(1, 0, 2, 3)  # (3, 4, 9, 9), strided
    filters = rng.standard_normal((5, 4, 3, 3))
    runs = []
    for on in (False, True):
        fast_off(on)
        op = Conv2DOperation(filters.copy(), stride=2, padding="same")
        out = op.forward(x)
        g = np.random.default_rng(6).standard_normal(out.shape)
        runs.append((out, op.backward(g), op.param_grad))
    for ref, got in zip(*runs, strict=True):
        np.testing.assert_array_equal(got, ref)


def test_convolution_kernels_are_gradient_checked(fast_off, rng):
    from scratchdl.ops import Conv2DOperation

    fast_off(True)
    op = Conv2DOperation(rng.standard_normal((3, 2, 3, 3)), stride=2, padding=(1, 2))
    assert gradcheck.check_operation(op, rng.standard_normal((2, 2, 7, 6))) < 1e-7


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["c", "transposed", "mixed", "sliced", "2d", "5d"])
def test_tanh_backward_kernel_equals_numpy(layout, dtype, fast_off, rng):
    from scratchdl import Tanh

    x = rng.standard_normal((4, 3, 5, 6)).astype(dtype) * 3
    g = rng.standard_normal((4, 3, 5, 6)).astype(dtype)
    if layout == "5d":
        x, g = x.reshape(2, 2, 3, 5, 6), g.reshape(2, 2, 3, 5, 6)
    elif layout == "transposed":  # a convolution's output: both in one transposed layout
        x, g = x.transpose(1, 0, 2, 3), g.transpose(1, 0, 2, 3).copy(order="K")
    elif layout == "mixed":  # a transposed activation, a C-order gradient (the book's CNN)
        x = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    elif layout == "sliced":  # gaps between rows
        x, g = x[:, :, :, ::2], g[:, :, :, ::2]
    elif layout == "2d":
        x, g = x.reshape(12, 30), g.reshape(12, 30)
    grads = []
    for on in (False, True):
        fast_off(on)
        op = Tanh()
        op.forward(x)
        grads.append(op.backward(g))
    assert grads[1].dtype == dtype
    np.testing.assert_array_equal(grads[1], grads[0])
    fused = backend.tanh_backward(g, np.tanh(x))
    assert (fused is None) == (layout == "5d")  # more than four axes: NumPy


def test_tanh_kernel_path_is_gradient_checked(fast_off, rng):
    from scratchdl import Tanh

    fast_off(True)
    assert gradcheck.check_operation(Tanh(), rng.standard_normal((3, 7))) < 1e-8


def recurrent_pass(cls, x, grad, on, switch, state=None, **kwargs):
    """Output, input gradient and parameter gradients of one forward + backward through a
    fresh `cls` layer (LSTM or GRU) of 5 units, with the kernels on or off."""
    switch(on)
    layer = cls(5, **kwargs)
    layer.rng = np.random.default_rng(0)
    layer.initial_state = state
    out = layer.forward(x)
    dx = layer.backward(grad)
    return [out, dx, *layer.operations[0].param_grads]


def lstm_pass(x, grad, on, switch, **kwargs):
    from scratchdl import LSTM

    return recurrent_pass(LSTM, x, grad, on, switch, **kwargs)


def gru_pass(x, grad, on, switch, **kwargs):
    from scratchdl import GRU

    return recurrent_pass(GRU, x, grad, on, switch, **kwargs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_recurrent_kernels_equal_numpy(kind, dtype, return_sequences, fast_off, rng, monkeypatch):
    x = rng.standard_normal((3, 4, 6)).astype(dtype)
    grad = rng.standard_normal((3, 4, 5) if return_sequences else (3, 5)).astype(dtype)
    run = lstm_pass if kind == "lstm" else gru_pass
    taken = []  # (kernel name, whether it applies) for each query
    kernel_for = backend.kernel_for
    monkeypatch.setattr(backend, "kernel_for",
                        lambda name, *a: taken.append((name, kernel_for(name, *a) is not None))
                        or kernel_for(name, *a))  # fmt: skip
    names = [f"{kind}_gates_in", f"{kind}_backward_step"]
    ref = run(x, grad, False, fast_off, return_sequences=return_sequences)
    assert taken == [(name, False) for name in names]
    taken.clear()
    fast = run(x, grad, True, fast_off, return_sequences=return_sequences)
    assert taken == [(name, True) for name in names]
    for a, b in zip(fast, ref, strict=True):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_recurrent_kernels_saturated_gates_nan_and_initial_state_as_numpy(
    kind, dtype, fast_off, rng
):
    """Pre-activations far beyond the sigmoid's clipping bound, a NaN in one row, and an
    initial state in float64 (cast to the layer's dtype)."""
    x = (rng.standard_normal((3, 4, 6)) * 400).astype(dtype)
    x[2, 1, 3] = np.nan
    grad = rng.standard_normal((3, 4, 5)).astype(dtype)
    state = tuple(rng.standard_normal((3, 5)) for _ in range(2 if kind == "lstm" else 1))
    run = lstm_pass if kind == "lstm" else gru_pass
    with np.errstate(invalid="ignore"):
        ref = run(x, grad, False, fast_off, state=state, return_sequences=True)
        fast = run(x, grad, True, fast_off, state=state, return_sequences=True)
    assert np.isnan(ref[0][2, 1:]).all() and np.isfinite(ref[0][:2]).all()
    for a, b in zip(fast, ref, strict=True):
        np.testing.assert_array_equal(a, b)


def test_lstm_backward_kernel_with_an_initial_state_and_mixed_dtypes(fast_off, rng):
    """An initial state goes through both paths alike; a float64 gradient into a float32
    layer takes the NumPy loop (the kernel computes in one dtype) and gives its bits."""
    from scratchdl import LSTM

    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    state = (rng.standard_normal((2, 5)), rng.standard_normal((2, 5)))
    for grad in (rng.standard_normal((2, 3, 5)).astype(np.float32), rng.standard_normal((2, 3, 5))):
        results = []
        for on in (False, True):
            fast_off(on)
            layer = LSTM(5, return_sequences=True)
            layer.rng = np.random.default_rng(1)
            layer.initial_state = state
            layer.forward(x)
            results.append([layer.backward(grad), *layer.operations[0].param_grads])
        for a, b in zip(*results, strict=True):
            np.testing.assert_array_equal(a, b)
    op = layer.operations[0]
    assert backend.kernel_for("lstm_backward_step", grad, op._acts) is None
    assert backend.kernel_for("lstm_backward_step", grad.astype(np.float32), op._acts) is not None


def test_lstm_kernel_path_is_gradient_checked(fast_off, rng):
    from scratchdl.ops import LSTMOperation

    fast_off(True)
    weights = [rng.standard_normal(s) * 0.5 for s in [(3, 8), (2, 8), (1, 8)]]
    op = LSTMOperation(weights, return_sequences=True)
    assert gradcheck.check_operation(op, rng.standard_normal((2, 4, 3))) < 1e-7


def channel_major(x: np.ndarray) -> np.ndarray:
    """`x` with the memory of a convolution's output: (N, C, H, W) over (C, N, H, W) memory."""
    return np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)


def test_max_pool_kernel_keeps_a_channel_major_input_channel_major(fast_off, rng):
    """The kernel walks a channel-major input in memory order and writes its output in
    that order, so the next im2col reads it in order too; values and gradients are the
    NumPy path's, whatever the gradient's layout."""
    x = channel_major(rng.standard_normal((3, 4, 8, 6)))
    (ref_out, ref_grad), (out, grad) = both(x, 3, fast_off)
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(grad, ref_grad)
    assert out.transpose(1, 0, 2, 3).flags.c_contiguous
    assert grad.strides == x.strides  # the input's layout, as np.zeros_like(x)
    fast_off(True)
    op = MaxPool2D(2)
    op.forward(x)
    g = rng.standard_normal(op.output.shape)
    for layout in (g, channel_major(g), g[:, ::-1]):
        np.testing.assert_array_equal(
            op.backward(np.ascontiguousarray(layout)), op.backward(layout)
        )
    c_order = MaxPool2D(2)
    assert c_order.forward(np.ascontiguousarray(x)).flags.c_contiguous


@pytest.mark.parametrize("pad", [(0, 0, 0, 0), (1, 1, 1, 1)])
def test_im2col_kernel_on_a_channel_major_input_equals_numpy(pad, fast_off, rng):
    x = channel_major(rng.standard_normal((3, 4, 7, 8)).astype(np.float32))
    results = []
    for on in (False, True):
        fast_off(on)
        results.append(backend.im2col(x, (3, 3), 1, pad))
    np.testing.assert_array_equal(results[1][0], results[0][0])
    assert results[1][1:] == results[0][1:]


def relu_values(dtype, rng) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and gradients with NaN, ±inf, ±0 and negative gradients where x <= 0."""
    x = rng.standard_normal((4, 3, 5, 6)).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    x.flat[:6] = [np.nan, np.inf, -np.inf, 0.0, -0.0, -1.0]
    g.flat[:8] = [1.0, 2.0, -3.0, -4.0, np.inf, -np.inf, np.nan, -0.0]
    return x, g


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["c", "channel_major", "mixed", "sliced", "2d", "5d"])
def test_relu_kernels_equal_numpy_bit_for_bit(layout, dtype, fast_off, rng):
    from scratchdl import ReLU

    x, g = relu_values(dtype, rng)
    if layout == "channel_major":  # a convolution's output and the gradient reaching it
        x, g = channel_major(x), channel_major(g)
    elif layout == "mixed":  # layouts differ: the backward pass takes the NumPy code
        x = channel_major(x)
    elif layout == "sliced":  # gaps between elements: NumPy
        x, g = x[:, :, :, ::2], g[:, :, :, ::2]
    elif layout == "2d":
        x, g = x.reshape(12, 30), g.reshape(12, 30)
    elif layout == "5d":
        x, g = x.reshape(2, 2, 3, 5, 6), g.reshape(2, 2, 3, 5, 6)
    runs = []
    for on in (False, True):
        fast_off(on)
        op = ReLU()
        with np.errstate(invalid="ignore"):  # inf · 0 in NumPy's expression
            runs.append((op.forward(x), op.backward(g)))
    for got, ref in zip(runs[1], runs[0], strict=True):
        assert got.dtype == dtype and got.shape == ref.shape
        np.testing.assert_array_equal(got.view(f"u{got.itemsize}"), ref.view(f"u{ref.itemsize}"))
    assert runs[1][0].strides == runs[0][0].strides  # the input's layout either way
    dense = layout != "sliced"
    assert (backend.relu(x) is not None) == dense
    with np.errstate(invalid="ignore"):
        assert (backend.relu_backward(g, x) is not None) == (dense and layout != "mixed")


def test_relu_keeps_the_numpy_path_for_integers_and_mixed_dtypes(fast_off, rng):
    fast_off(True)
    ints = np.arange(-3, 3)
    assert backend.relu(ints) is None
    assert backend.relu_backward(rng.standard_normal(6), ints.astype(np.float32)) is None
    from scratchdl import ReLU

    op = ReLU()
    np.testing.assert_array_equal(op.forward(ints), np.maximum(ints, 0))


def test_relu_kernel_path_is_gradient_checked(fast_off, rng):
    from scratchdl import ReLU
    from tests.conftest import away_from_zero

    fast_off(True)
    x = channel_major(away_from_zero(rng.standard_normal((2, 3, 4, 5))))
    assert backend.relu(x) is not None
    assert gradcheck.check_operation(ReLU(), x) < 1e-8


def optimizer_run(fast, dtype, switch, steps=25, **kwargs):
    """`steps` optimizer updates of a small network from fixed gradients (zeros, huge and tiny
    values among them), with the kernels on or off; returns parameters and moments."""
    from scratchdl import Dense, Linear, MeanSquaredError, NeuralNetwork

    switch(fast)
    net = NeuralNetwork([Dense(7, Linear()), Dense(3, Linear())], MeanSquaredError(),
                        seed=2, dtype=dtype)  # fmt: skip
    net.forward(np.zeros((1, 5), dtype=dtype), inference=True)
    optim = kwargs.pop("optim")
    optim.net = net
    rng = np.random.default_rng(9)
    for step in range(steps):
        for layer in net.layers:
            for op in layer.operations:
                if hasattr(op, "param"):
                    g = rng.standard_normal(op.param.shape) * 10.0 ** rng.integers(-30, 4)
                    g[rng.random(g.shape) < 0.2] = 0
                    if step == steps - 3:  # NaN and inf go where NumPy takes them
                        g.flat[:2] = np.nan, np.inf
                    op.param_grad = g.astype(dtype)
            layer._param_grads()
        with np.errstate(invalid="ignore"):  # NumPy warns about inf - inf; the kernel does not
            optim.step()
    return [p.copy() for p in net.params()] + [
        a.copy() for state in optim.state.values() for a in state.values()
    ]


OPTIMIZERS = {  # kind: (the backend wrapper of its kernel, the optimizer)
    "adam": ("adam_update", lambda: _optim("Adam", 0.01, beta1=0.8, beta2=0.99)),
    "adam-l2": ("adam_update", lambda: _optim("Adam", 0.01, beta2=0.99, weight_decay=0.05)),
    "adamw": ("adam_update", lambda: _optim("AdamW", 0.01, weight_decay=0.1)),
    "momentum": ("momentum_update", lambda: _optim("SGDMomentum", 0.03, momentum=0.8)),
    "nesterov": ("momentum_update", lambda: _optim("SGDMomentum", 0.03, nesterov=True)),
    "momentum-l2": ("momentum_update", lambda: _optim("SGDMomentum", 0.03, weight_decay=0.05)),
}


def _optim(name, *args, **kwargs):
    import scratchdl

    return getattr(scratchdl, name)(*args, **kwargs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", list(OPTIMIZERS))
def test_optimizer_kernels_equal_numpy_bit_for_bit(dtype, kind, fast_off, monkeypatch):
    wrapper, make = OPTIMIZERS[kind]
    taken = []  # what each call of the kernel's wrapper returned: whether it ran
    real = getattr(backend, wrapper)
    monkeypatch.setattr(backend, wrapper, lambda *a: taken.append(real(*a)) or taken[-1])
    reference = optimizer_run(False, dtype, fast_off, optim=make())
    assert taken and not any(taken)  # kernels off: the NumPy passes ran
    taken.clear()
    compiled = optimizer_run(True, dtype, fast_off, optim=make())
    assert taken and all(taken)
    for a, b in zip(reference, compiled, strict=True):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_array_equal(b, a)


def test_momentum_kernel_leaves_mixed_layouts_to_numpy(fast_off, rng):
    fast_off(True)
    param = rng.standard_normal((4, 3)).astype(np.float32)
    velocity = np.zeros_like(param)
    grad = np.asfortranarray(rng.standard_normal((4, 3)).astype(np.float32))
    assert not backend.momentum_update(param, grad, velocity, 0.1, 0.9, False)
    assert not velocity.any()  # nothing changed
    assert not backend.momentum_update(param, grad.astype(np.float64), velocity, 0.1, 0.9, False)
    assert backend.momentum_update(param, np.ascontiguousarray(grad), velocity, 0.1, 0.9, False)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pairwise_sum_has_numpys_bits(dtype, fast_off, rng):
    """The softmax's row sums and the loss's total are NumPy's `sum`: pairwise, in blocks."""
    fast_off(True)
    sums = backend.fast_kernels().pairwise_sum
    for n in [*range(1, 140), 255, 256, 257, 1000, 4097, 100_003]:
        x = (rng.standard_normal(n) * 10.0 ** rng.integers(-4, 5, n)).astype(dtype)
        assert sums(x, 0, n) == x.sum(), n
        if n > 3:
            assert sums(x, 2, n - 3) == x[2:-1].sum(), n


def softmax_ce_both(z, labels, switch, monkeypatch):
    """(loss, softmax, gradient) with the kernels off, then on (asserting they ran)."""
    from scratchdl import SoftmaxCrossEntropy

    taken = []  # for each call of the kernels' wrappers, whether they ran

    def recorded(real):
        def call(*args):
            result = real(*args)
            taken.append(result is not None)
            return result

        return call

    for name in ("softmax_cross_entropy", "softmax_cross_entropy_grad"):
        monkeypatch.setattr(backend, name, recorded(getattr(backend, name)))
    results = []
    for on in (False, True):
        switch(on)
        taken.clear()
        loss = SoftmaxCrossEntropy()
        with np.errstate(all="ignore"):
            value = loss.forward(z, labels)
            grad = loss.backward()
        assert taken == ([True, True] if on else [False, False])
        results.append((value, loss._softmax, grad))
    return results


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(60, 10), (1, 1), (7, 2), (5, 129), (3, 1000), (4, 3, 17)])
def test_softmax_cross_entropy_kernels_equal_numpy(dtype, shape, fast_off, monkeypatch, rng):
    z = (rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 3)).astype(dtype)
    z.reshape(-1, shape[-1])[0, 0] = 80.0  # the shifted logits reach the exp floor
    labels = rng.integers(0, shape[-1], shape[:-1]).astype(np.int32)  # not intp: converted
    (ref_value, ref_softmax, ref_grad), (value, softmax, grad) = softmax_ce_both(
        z, labels, fast_off, monkeypatch
    )
    assert value == ref_value
    assert softmax.dtype == grad.dtype == dtype and grad.shape == shape
    np.testing.assert_array_equal(softmax, ref_softmax)
    np.testing.assert_array_equal(grad, ref_grad)


def test_softmax_cross_entropy_kernels_nan_and_infinities_as_numpy(fast_off, monkeypatch, rng):
    z = rng.standard_normal((5, 6)).astype(np.float32)
    z[1, 3] = np.nan  # a NaN row: NaN softmax, NaN loss
    z[2, 0] = np.inf  # +inf: inf - inf is NaN in its row
    z[3, :] = -np.inf
    z[4, 2] = -np.inf  # one -inf logit: a zero probability, no NaN
    labels = np.array([0, 1, 2, 3, 4])
    for target in (labels, np.eye(6)[labels]):  # labels, and the same as one-hot rows
        (ref_value, ref_softmax, ref_grad), (value, softmax, grad) = softmax_ce_both(
            z, target, fast_off, monkeypatch
        )
        assert np.isnan(value) and np.isnan(ref_value)
        np.testing.assert_array_equal(softmax, ref_softmax)
        np.testing.assert_array_equal(grad, ref_grad)
        assert np.isfinite(grad[4]).all() and np.isnan(grad[1]).all()
    # a strided input (a transposed view) gives the same bits too
    z = np.asfortranarray(rng.standard_normal((8, 4)))
    (ref_value, ref_softmax, ref_grad), (value, softmax, grad) = softmax_ce_both(
        z, rng.integers(0, 4, 8), fast_off, monkeypatch
    )
    assert value == ref_value
    np.testing.assert_array_equal(grad, ref_grad)


def test_softmax_cross_entropy_kernel_path_is_gradient_checked(fast_off, rng):
    from scratchdl import SoftmaxCrossEntropy

    fast_off(True)
    z = rng.standard_normal((6, 5))
    labels = rng.integers(0, 5, 6)
    assert backend.softmax_cross_entropy(z, labels.astype(np.intp), -700.0) is not None
    assert gradcheck.check_loss(SoftmaxCrossEntropy(), z, labels) < 1e-7


def test_gru_float64_gradient_into_float32_layer_takes_numpy_loop(fast_off, rng):
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    grad = rng.standard_normal((2, 3, 5))  # float64: the kernel computes in one dtype
    ref = gru_pass(x, grad, False, fast_off, return_sequences=True)
    fast = gru_pass(x, grad, True, fast_off, return_sequences=True)
    for a, b in zip(fast, ref, strict=True):
        np.testing.assert_array_equal(a, b)


def test_gru_kernel_path_is_gradient_checked(fast_off, rng):
    from scratchdl.ops import GRUOperation

    fast_off(True)
    weights = [rng.standard_normal(s) * 0.5 for s in [(3, 6), (2, 6), (1, 6), (1, 6)]]
    op = GRUOperation(weights, return_sequences=True)
    x = rng.standard_normal((2, 4, 3))
    assert backend.kernel_for("gru_gates_in", x, *weights) is not None
    assert gradcheck.check_operation(op, x) < 1e-7


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(60, 10), (1, 1), (7, 2), (5, 129), (3, 1000), (4, 3, 17)])
@pytest.mark.parametrize("soft", [False, True])
def test_softmax_cross_entropy_kernels_with_probability_rows(
    dtype, shape, soft, fast_off, monkeypatch, rng
):
    """One-hot rows (the book's targets) and soft labels take the kernels too."""
    z = (rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 3)).astype(dtype)
    if soft:
        target = rng.random(shape)
        target /= target.sum(axis=-1, keepdims=True)
    else:
        target = np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])]
    (ref_value, ref_softmax, ref_grad), (value, softmax, grad) = softmax_ce_both(
        z, target, fast_off, monkeypatch
    )
    assert value == ref_value
    assert grad.dtype == dtype and grad.shape == shape
    np.testing.assert_array_equal(softmax, ref_softmax)
    np.testing.assert_array_equal(grad, ref_grad)


def test_softmax_cross_entropy_kernel_one_hot_path_is_gradient_checked(fast_off, rng):
    from scratchdl import SoftmaxCrossEntropy

    fast_off(True)
    z = rng.standard_normal((6, 5))
    target = np.eye(5)[rng.integers(0, 5, 6)]
    assert backend.softmax_cross_entropy(z, target, -700.0) is not None
    assert gradcheck.check_loss(SoftmaxCrossEntropy(), z, target) < 1e-7


BOUNDS = """
import numpy as np
from scratchdl import GRU, LSTM, SGDMomentum, SoftmaxCrossEntropy, backend
from scratchdl.layers import Dense
from scratchdl import Linear, NeuralNetwork
assert backend.fast_kernels() is not None
rng = np.random.default_rng(0)
for dtype in (np.float32, np.float64):
    for shape in [(1, 1), (3, 7), (5, 129), (2, 3, 300)]:
        z = rng.standard_normal(shape).astype(dtype)
        labels = rng.integers(0, shape[-1], shape[:-1])
        for target in (labels, np.eye(shape[-1])[labels]):
            loss = SoftmaxCrossEntropy()
            loss.forward(z, target)
            loss.backward()
    for layer in (LSTM(5, return_sequences=True), GRU(4, return_sequences=True)):
        x = rng.standard_normal((3, 6, 2)).astype(dtype)
        out = layer.forward(x)
        layer.backward(rng.standard_normal(out.shape).astype(dtype))
    net = NeuralNetwork([Dense(3, Linear())], SoftmaxCrossEntropy(), dtype=dtype)
    optim = SGDMomentum(0.1, nesterov=True)
    optim.net = net
    net.train_batch(rng.standard_normal((4, 2)).astype(dtype), np.array([0, 1, 2, 0]))
    optim.step()
print("ok")
"""


def test_new_kernels_read_and_write_within_their_arrays(tmp_path):
    """The loss, momentum and recurrent kernels compiled with numba's bounds checks (a
    fresh cache): an index past an array would raise IndexError instead of reading other
    memory."""
    env = {**os.environ, "NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": str(tmp_path)}
    env["SCRATCHDL_FAST"] = "1"
    result = subprocess.run(
        [sys.executable, "-c", BOUNDS], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
