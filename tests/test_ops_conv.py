import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchdl import (
    AvgPool2D,
    BatchNorm,
    ChannelBias,
    Conv2D,
    Conv2DOperation,
    Dense,
    Flatten,
    GlobalAvgPool2D,
    Linear,
    MaxPool2D,
    NeuralNetwork,
    ShapeError,
    SoftmaxCrossEntropy,
    backend,
    gradcheck,
)
from scratchdl.ops.conv import resolve_padding


def naive_conv(x, w, stride, pad):
    """Reference: cross-correlation written as loops, for clarity, not speed."""
    top, bottom, left, right = pad
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    n, _, hp, wp = xp.shape
    f, _, kh, kw = w.shape
    ho, wo = (hp - kh) // stride + 1, (wp - kw) // stride + 1
    out = np.zeros((n, f, ho, wo))
    for b in range(n):
        for k in range(f):
            for i in range(ho):
                for j in range(wo):
                    window = xp[b, :, i * stride : i * stride + kh, j * stride : j * stride + kw]
                    out[b, k, i, j] = np.sum(window * w[k])
    return out


def naive_conv_grads(x, w, g, stride, pad):
    """Reference gradients of sum(conv(x, w) * g), as loops."""
    top, bottom, left, right = pad
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    f, _, kh, kw = w.shape
    for b in range(g.shape[0]):
        for k in range(f):
            for i in range(g.shape[2]):
                for j in range(g.shape[3]):
                    rows = slice(i * stride, i * stride + kh)
                    cols = slice(j * stride, j * stride + kw)
                    dxp[b, :, rows, cols] += g[b, k, i, j] * w[k]
                    dw[k] += g[b, k, i, j] * xp[b, :, rows, cols]
    return dxp[:, :, top : top + x.shape[2], left : left + x.shape[3]], dw


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 3), c=st.integers(1, 3), f=st.integers(1, 3),
    h=st.integers(3, 8), w=st.integers(3, 8), kh=st.integers(1, 4), kw=st.integers(1, 4),
    stride=st.integers(1, 3), padding=st.sampled_from(["same", "valid", 0, 1, 2]), seed=st.integers(0, 2**16),
)  # fmt: skip
def test_fast_convolution_matches_naive_loops(n, c, f, h, w, kh, kw, stride, padding, seed):
    pad = resolve_padding(padding, (kh, kw), stride, (h, w))
    if h + pad[0] + pad[1] < kh or w + pad[2] + pad[3] < kw:
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w))
    filters = rng.standard_normal((f, c, kh, kw))
    op = Conv2DOperation(filters.copy(), stride, padding)
    out = op.forward(x)
    np.testing.assert_allclose(out, naive_conv(x, filters, stride, pad), rtol=1e-10, atol=1e-10)
    g = rng.standard_normal(out.shape)
    dx = op.backward(g)
    ref_dx, ref_dw = naive_conv_grads(x, filters, g, stride, pad)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(op.param_grad, ref_dw, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    ("kernel", "stride", "padding"),
    [
        (3, 1, "same"),
        (5, 1, "same"),
        (2, 1, "same"),
        (4, 2, "same"),
        (3, 2, "valid"),
        ((2, 3), 1, 1),
        (3, 3, 2),
    ],
)
@pytest.mark.parametrize("im2col_only", [False, True])
def test_conv_operation_gradients(kernel, stride, padding, im2col_only, monkeypatch, rng):
    """Both paths: with scratchdl[fast], stride 1 and 3 filters take the direct kernels
    unless they are limited to 0 filters; im2col runs everywhere else."""
    if im2col_only:
        monkeypatch.setattr(backend, "DIRECT_CONV_MAX_FILTERS", 0)
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    op = Conv2DOperation(rng.standard_normal((3, 2, kh, kw)), stride, padding)
    assert gradcheck.check_operation(op, rng.standard_normal((2, 2, 7, 6))) < 1e-6
    if im2col_only:
        assert op._cols is not None


def test_channel_bias_gradients(rng):
    assert (
        gradcheck.check_operation(
            ChannelBias(rng.standard_normal((1, 3, 1, 1))), rng.standard_normal((2, 3, 4, 5))
        )
        < 1e-7
    )


@pytest.mark.parametrize("layer", [
    lambda: Conv2D(3, 3, activation="tanh"),
    lambda: Conv2D(2, (2, 3), stride=2, padding="valid", activation="relu", weight_init="he"),
    lambda: Conv2D(4, 4, padding=1, activation="sigmoid", weight_init="glorot", dropout=0.7, flatten=True),
    lambda: Conv2D(2, param_size=5, bias=False),
])  # fmt: skip
def test_conv_layer_gradients(layer, rng):
    conv = layer()
    conv.rng = np.random.default_rng(0)
    assert gradcheck.check_layer(conv, rng.standard_normal((2, 3, 8, 7))) < 1e-6


@pytest.mark.parametrize("op", [MaxPool2D(2), MaxPool2D(3, stride=2, padding=1), AvgPool2D(2), AvgPool2D(3, stride=1, padding=1), GlobalAvgPool2D(), Flatten()])  # fmt: skip
def test_pooling_and_flatten_gradients(op, rng):
    x = rng.permutation(2 * 3 * 6 * 5).reshape(2, 3, 6, 5) / 10.0  # distinct values: no ties
    assert gradcheck.check_operation(op, x) < 1e-7


def test_max_pool_routes_ties_to_one_argmax():
    x = np.ones((1, 1, 2, 4))
    op = MaxPool2D(2)
    np.testing.assert_array_equal(op.forward(x), [[[[1.0, 1.0]]]])
    grad = op.backward(np.array([[[[3.0, 5.0]]]]))
    np.testing.assert_array_equal(grad, [[[[3.0, 0.0, 5.0, 0.0], [0.0, 0.0, 0.0, 0.0]]]])


def test_pool_values():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(MaxPool2D(2).forward(x), [[[[5, 7], [13, 15]]]])
    np.testing.assert_array_equal(AvgPool2D(2).forward(x), [[[[2.5, 4.5], [10.5, 12.5]]]])
    np.testing.assert_array_equal(GlobalAvgPool2D().forward(x), [[7.5]])


@pytest.mark.parametrize("shape", [(6, 4), (5, 3, 4, 2)])
def test_batch_norm_gradients_in_training(shape, rng):
    layer = BatchNorm()
    layer.forward(rng.standard_normal(shape))
    layer.params[0][...] = rng.uniform(0.5, 2, layer.params[0].shape)
    layer.params[1][...] = rng.standard_normal(layer.params[1].shape)
    assert gradcheck.check_layer(layer, rng.standard_normal(shape) * 2 + 1) < 1e-6
    assert gradcheck.check_layer(layer, rng.standard_normal(shape), inference=True) < 1e-6


def test_batch_norm_train_and_inference(rng):
    layer = BatchNorm(momentum=0.5)
    x = rng.normal(3.0, 2.0, (500, 4))
    out = layer.forward(x)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=0), 1, atol=1e-4)
    state = layer.named_state()
    np.testing.assert_allclose(state["running_mean"], 0.5 * x.mean(axis=0))
    np.testing.assert_allclose(state["running_var"], 0.5 + 0.5 * x.var(axis=0, ddof=1))
    for _ in range(40):
        layer.forward(x)
    np.testing.assert_allclose(state["running_mean"], x.mean(axis=0), rtol=1e-9)
    single = layer.forward(x[:1], inference=True)  # inference uses the running statistics
    np.testing.assert_allclose(
        single, (x[:1] - x.mean(0)) / np.sqrt(x.var(0, ddof=1) + 1e-5), rtol=1e-6
    )
    assert np.array_equal(state["running_mean"], layer.named_state()["running_mean"])


def test_batch_norm_state_is_not_trained(rng):
    net = NeuralNetwork([Dense(4), BatchNorm(), Dense(2, Linear())], SoftmaxCrossEntropy(), seed=0)
    net.train_batch(rng.standard_normal((8, 3)), rng.integers(0, 2, 8))
    params = list(net.params())
    assert len(params) == 6
    state = net.layers[1].named_state()["running_mean"]
    assert all(p is not state for p in params)


@pytest.mark.parametrize(
    ("h", "w", "k", "stride", "padding", "expected"),
    [(28, 28, 5, 1, "same", (28, 28)), (28, 28, 5, 1, "valid", (24, 24)), (7, 6, 3, 2, "same", (4, 3)),
     (7, 6, 2, 1, "same", (7, 6)), (10, 10, 3, 3, 1, (4, 4)), (5, 9, (2, 4), 2, "valid", (2, 3))],
)  # fmt: skip
def test_output_shape_formulas(h, w, k, stride, padding, expected, rng):
    conv = Conv2D(2, k, stride=stride, padding=padding)
    out = conv.forward(rng.standard_normal((1, 3, h, w)))
    assert out.shape == (1, 2, *expected)
    assert conv.compute_output_shape((3, h, w)) == (2, *expected)


def test_conv_shape_errors(rng):
    net = NeuralNetwork(
        [Conv2D(4, 3), Conv2D(2, 3, flatten=True), Dense(2)], SoftmaxCrossEntropy(), seed=0
    )
    net.forward(np.zeros((1, 3, 8, 8)))
    with pytest.raises(
        ShapeError, match=r"layer 1 \(Conv2D\).*input must have 3 channels.*received \(2, 1, 8, 8\)"
    ):
        net.forward(np.zeros((2, 1, 8, 8)))
    with pytest.raises(
        ShapeError,
        match=r"layer 1 \(Conv2D\).*\(batch, channels, height, width\), received \(2, 64\)",
    ):
        net.forward(np.zeros((2, 64)))
    with pytest.raises(
        ShapeError, match=r"Conv2D.*kernel \(5, 5\) is larger than the padded image"
    ):
        Conv2D(2, 5, padding="valid").forward(np.zeros((1, 1, 3, 3)))
    with pytest.raises(
        ShapeError, match=r"MaxPool2D: input must have shape \(batch, channels, height, width\)"
    ):
        MaxPool2D(2).forward(np.zeros((2, 4)))


def test_conv_argument_errors():
    with pytest.raises(ValueError, match=r"kernel_size .* is required"):
        Conv2D(3)
    with pytest.raises(ValueError, match="Received: padding='full'"):
        Conv2D(3, 3, padding="full")
    with pytest.raises(ValueError, match="Received: stride=0"):
        Conv2D(3, 3, stride=0)
    with pytest.raises(ValueError, match="Received: kernel_size=0"):
        MaxPool2D(0)


def test_cnn_network_gradients(rng):
    net = NeuralNetwork(
        [Conv2D(3, 3, activation="tanh"), BatchNorm(), MaxPool2D(2), Conv2D(2, 2, activation="relu", flatten=True),
         Dense(3, Linear())],
        SoftmaxCrossEntropy(), seed=1, dtype=np.float64,
    )  # fmt: skip
    assert (
        gradcheck.check_network(net, rng.standard_normal((3, 2, 6, 6)), np.array([0, 2, 1])) < 1e-6
    )


def test_cnn_float32_stays_float32(rng):
    net = NeuralNetwork([Conv2D(3, 3, activation="tanh", dropout=0.8), MaxPool2D(2), BatchNorm(), Conv2D(2, 2, flatten=True), Dense(3)],
                        SoftmaxCrossEntropy(), seed=1)  # fmt: skip
    net.train_batch(rng.standard_normal((4, 1, 8, 8)), np.array([0, 1, 2, 0]))
    assert all(p.dtype == np.float32 for p in net.params())
    assert all(g.dtype == np.float32 for g in net.param_grads())


@pytest.mark.parametrize(
    ("filters", "channels"),
    [(16, 1), (2, 3)],  # C·kh·kw = 9 <= F = 16: grad2d @ colsᵀ; 27 > 2: (cols grad2dᵀ)ᵀ
)
def test_both_orientations_of_the_filter_gradient_product(filters, channels, monkeypatch, rng):
    """The filter gradient is computed as one product or its transpose, by shape; each
    must match the loops and the central differences. (im2col only: with scratchdl[fast]
    the 2-filter case would otherwise take the direct kernels.)"""
    monkeypatch.setattr(backend, "DIRECT_CONV_MAX_FILTERS", 0)
    w = rng.standard_normal((filters, channels, 3, 3))
    x = rng.standard_normal((2, channels, 5, 6))
    op = Conv2DOperation(w.copy(), 1, "same")
    g = rng.standard_normal(op.forward(x).shape)
    op.backward(g)
    _, ref_dw = naive_conv_grads(x, w, g, 1, (1, 1, 1, 1))
    np.testing.assert_allclose(op.param_grad, ref_dw, rtol=1e-10, atol=1e-10)
    assert op.param_grad.flags.c_contiguous
    assert op._cols is not None  # the im2col path ran
    assert gradcheck.check_operation(op, x) < 1e-7
