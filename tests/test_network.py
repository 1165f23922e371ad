import numpy as np
import pytest

from scratchdl import (
    Dense,
    Dropout,
    Linear,
    MeanSquaredError,
    NeuralNetwork,
    ShapeError,
    Sigmoid,
    SoftmaxCrossEntropy,
    Tanh,
    gradcheck,
)


def make_net(dtype=np.float64, seed=0, dropout=1.0):
    return NeuralNetwork(
        [
            Dense(6, Tanh(), weight_init="glorot", dropout=dropout),
            Dense(5, Sigmoid()),
            Dense(3, Linear()),
        ],
        SoftmaxCrossEntropy(),
        seed=seed,
        dtype=dtype,
    )


def test_network_gradients(rng):
    x = rng.standard_normal((7, 4))
    y = rng.integers(0, 3, 7)
    assert gradcheck.check_network(make_net(), x, y) < 1e-6


def test_network_gradients_with_dropout_layer(rng):
    net = NeuralNetwork(
        [Dense(6, Tanh()), Dropout(0.7), Dense(2, Linear())],
        MeanSquaredError(),
        seed=2,
        dtype=np.float64,
    )
    x, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    assert gradcheck.check_network(net, x, y) < 1e-6
    out = net.forward(x)
    assert np.count_nonzero(net.layers[1].operations[0].mask == 0) > 0
    assert out.shape == (5, 2)


def test_gradcheck_reports_which_tensor_is_wrong(rng):
    net = make_net()
    x, y = rng.standard_normal((4, 4)), rng.integers(0, 3, 4)
    net.forward(x)
    bias_op = net.layers[1].operations[1]
    bias_op._param_grad = lambda g: 2 * g.sum(axis=0, keepdims=True)  # a wrong gradient
    result = gradcheck.check_network(net, x, y)
    assert result > 0.3
    assert result.tensor == "param[3]"  # layer 2's bias is the fourth parameter
    assert "param[3]" in repr(result)


def test_same_seed_same_training_bit_for_bit(rng):
    x = rng.standard_normal((16, 4)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    results = []
    for _ in range(2):
        net = make_net(np.float32, seed=11, dropout=0.8)
        losses = [net.train_batch(x, y) for _ in range(3)]
        results.append(
            (losses, [p.copy() for p in net.params()], [g.copy() for g in net.param_grads()])
        )
    assert results[0][0] == results[1][0]
    for a, b in zip(results[0][1] + results[0][2], results[1][1] + results[1][2], strict=True):
        np.testing.assert_array_equal(a, b)


def test_different_seeds_differ():
    a, b = make_net(seed=1), make_net(seed=2)
    x = np.zeros((1, 4))
    a.forward(x), b.forward(x)
    assert not np.array_equal(next(a.params()), next(b.params()))


def test_global_numpy_rng_untouched():
    np.random.seed(99)  # noqa: NPY002 - the legacy global generator is what we watch
    expected = np.random.random()  # noqa: NPY002
    np.random.seed(99)  # noqa: NPY002
    net = make_net(seed=3, dropout=0.5)
    net.train_batch(np.ones((4, 4)), np.array([0, 1, 2, 0]))
    assert np.random.random() == expected  # noqa: NPY002


def test_float32_agrees_with_float64(rng):
    x = rng.standard_normal((8, 4))
    y = rng.integers(0, 3, 8)
    n32, n64 = make_net(np.float32, seed=5), make_net(np.float64, seed=5)
    l32, l64 = n32.train_batch(x, y), n64.train_batch(x, y)
    assert l32 == pytest.approx(l64, rel=1e-5)
    for g32, g64 in zip(n32.param_grads(), n64.param_grads(), strict=True):
        assert g32.dtype == np.float32
        np.testing.assert_allclose(g32, g64, rtol=1e-5, atol=1e-5 * np.abs(g64).max())


def test_float32_network_never_upcasts(rng):
    net = make_net(np.float32)
    out = net.forward(rng.standard_normal((3, 4)))  # float64 input is converted
    assert out.dtype == np.float32
    net.loss.forward(out, np.array([0, 1, 2]))
    grad = net.backward(net.loss.backward())
    assert grad.dtype == np.float32
    assert all(p.dtype == np.float32 for p in net.params())
    assert all(g.dtype == np.float32 for g in net.param_grads())


def test_predict_is_inference_mode(rng):
    net = make_net(seed=0, dropout=0.5)
    x = rng.standard_normal((5, 4))
    a, b = net.predict(x), net.predict(x)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(net.predict(x, batch_size=2), a, rtol=1e-12)
    assert not np.allclose(net.forward(x), a)  # training mode drops units


def test_reset_reproduces_the_initial_weights():
    net = make_net(seed=4)
    net.forward(np.zeros((1, 4)))
    first = [p.copy() for p in net.params()]
    net.train_batch(np.ones((2, 4)), np.array([0, 1]))
    net.reset()
    assert net.count_params() == 0 and not net.built
    net.forward(np.zeros((1, 4)))
    for a, b in zip(first, net.params(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_summary_and_repr():
    net = make_net(np.float32, seed=1)
    text = net.summary()
    assert "not built" in text
    text = net.summary(input_shape=(4,))
    assert "(None, 6)" in text and "(None, 3)" in text
    assert f"{4 * 6 + 6 + 6 * 5 + 5 + 5 * 3 + 3}" in text
    assert "Dense(neurons=6, activation=Tanh()" in repr(net)


def test_network_argument_errors():
    with pytest.raises(ValueError, match="layers must not be empty"):
        NeuralNetwork([], MeanSquaredError())
    with pytest.raises(TypeError, match="loss must be a Loss"):
        NeuralNetwork([Dense(1)], "mse")
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        NeuralNetwork([Dense(1)], MeanSquaredError(), dtype=np.int32)
    layer = Dense(2)
    with pytest.raises(ValueError, match="appears twice"):
        NeuralNetwork([layer, layer], MeanSquaredError())
    with pytest.raises(ShapeError, match="must have a batch axis"):
        make_net().forward(np.zeros(4))


def test_train_batch_skips_only_the_data_gradient(rng):
    net = make_net()
    x, y = rng.standard_normal((4, 4)), rng.integers(0, 3, 4)
    net.train_batch(x, y)
    assert net.layers[0].operations[0].input_grad is None  # x @ W's gradient w.r.t. x
    assert net.layers[0].operations[1].input_grad is not None
    assert len(list(net.param_grads())) == 6
    grads = [g.copy() for g in net.param_grads()]
    net.forward(x)
    net.loss.forward(net.layers[-1].output, y)
    assert net.backward(net.loss.backward()).shape == x.shape  # the book's backward returns it
    for a, b in zip(grads, net.param_grads(), strict=True):
        np.testing.assert_array_equal(a, b)
