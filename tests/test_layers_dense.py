import numpy as np
import pytest

from scratchdl import (
    Dense,
    Dropout,
    Linear,
    MeanSquaredError,
    NeuralNetwork,
    ReLU,
    ShapeError,
    Sigmoid,
    Tanh,
    gradcheck,
)


@pytest.mark.parametrize("activation", [None, Tanh(), ReLU(), "linear", "leaky_relu"])
@pytest.mark.parametrize("weight_init", ["standard", "glorot", "he"])
def test_dense_gradients(activation, weight_init, rng):
    layer = Dense(4, activation=activation, weight_init=weight_init)
    layer.rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 3))
    assert gradcheck.check_layer(layer, x) < 1e-6


def test_dense_gradients_with_dropout_and_3d_input(rng):
    layer = Dense(4, activation=Tanh(), dropout=0.7)
    layer.rng = np.random.default_rng(3)
    assert gradcheck.check_layer(layer, rng.standard_normal((2, 5, 3))) < 1e-6


def test_default_activation_is_a_fresh_sigmoid_per_layer():
    a, b = Dense(3), Dense(3)
    assert isinstance(a.activation, Sigmoid) and isinstance(b.activation, Sigmoid)
    assert a.activation is not b.activation


def test_one_activation_object_passed_twice_is_not_shared(rng):
    act = Linear()
    net = NeuralNetwork(
        [Dense(4, act), Dense(1, act)], MeanSquaredError(), seed=0, dtype=np.float64
    )
    assert net.layers[0].activation is not net.layers[1].activation
    assert (
        gradcheck.check_network(net, rng.standard_normal((6, 3)), rng.standard_normal((6, 1)))
        < 1e-6
    )


def test_two_default_layers_train_together(rng):
    """The book's shared default `activation=Sigmoid()` broke backward for stacked layers."""
    net = NeuralNetwork(
        [Dense(5), Dense(5), Dense(1)], MeanSquaredError(), seed=1, dtype=np.float64
    )
    assert (
        gradcheck.check_network(net, rng.standard_normal((8, 4)), rng.standard_normal((8, 1)))
        < 1e-6
    )


def test_same_shaped_layers_start_different():
    net = NeuralNetwork([Dense(6), Dense(6), Dense(6)], MeanSquaredError(), seed=7)
    net.forward(np.zeros((1, 6)))
    w = [layer.params[0] for layer in net.layers]
    assert not np.array_equal(w[0], w[1]) and not np.array_equal(w[1], w[2])


@pytest.mark.parametrize(
    ("weight_init", "std"),
    [("standard", 1.0), ("glorot", np.sqrt(2 / 500)), ("he", np.sqrt(2 / 300))],
)
def test_weight_init_scale(weight_init, std):
    layer = Dense(200, weight_init=weight_init)
    layer.rng = np.random.default_rng(0)
    layer.forward(np.zeros((1, 300), np.float32))  # a stand-alone layer follows its input dtype
    w = layer.params[0]
    assert w.shape == (300, 200) and w.dtype == np.float32
    assert abs(w.std() / std - 1) < 0.01  # 60,000 draws


def test_dense_shape_error_names_layer_and_shapes():
    net = NeuralNetwork([Dense(3), Dense(2)], MeanSquaredError(), seed=0)
    net.forward(np.zeros((2, 4)))
    with pytest.raises(ShapeError) as info:
        net.forward(np.zeros((10, 5)))
    message = str(info.value)
    assert "layer 1 (Dense)" in message
    assert "(batch, ..., 4)" in message and "(10, 5)" in message


def test_dense_rejects_bad_arguments():
    with pytest.raises(ValueError, match="Received: neurons=0"):
        Dense(0)
    with pytest.raises(ValueError, match="Received: weight_init='xavier'"):
        Dense(3, weight_init="xavier")
    with pytest.raises(ValueError, match="Received: 'swish'"):
        Dense(3, activation="swish")
    with pytest.raises(ValueError, match=r"Dense: dropout .* Received: dropout=0.0"):
        Dense(3, dropout=0.0)
    with pytest.raises(TypeError, match=r"Dense: dropout .* Received: dropout='0.8'"):
        Dense(3, dropout="0.8")


def test_dense_takes_the_books_dropout(rng):
    given = Dropout(0.5, inverted=False)
    layer = Dense(4, Linear(), dropout=given)
    layer.rng = np.random.default_rng(0)  # seeded masks: some kept, some dropped
    assert repr(layer) == (
        "Dense(neurons=4, activation=Linear(), dropout=Dropout(keep_prob=0.5, inverted=False))"
    )
    x = rng.standard_normal((3, 2))
    at_inference = layer.forward(x, inference=True)
    dropout = layer.operations[-1]
    assert dropout is not given and not dropout.inverted
    affine = x @ layer.params[0] + layer.params[1]
    np.testing.assert_allclose(at_inference, 0.5 * affine)  # scaled by keep_prob
    training = layer.forward(x)
    kept = training != 0
    np.testing.assert_allclose(training[kept], affine[kept])  # kept values are not rescaled
    assert 0 < kept.sum() < kept.size
    assert gradcheck.check_layer(layer, x) < 1e-7


def test_dense_backward_checks_output_grad_shape(rng):
    layer = Dense(3)
    layer.forward(rng.standard_normal((4, 2)))
    with pytest.raises(
        ShapeError, match=r"Dense: output_grad must have shape \(4, 3\), received \(4, 2\)"
    ):
        layer.backward(np.ones((4, 2)))


def test_params_are_the_operations_arrays(rng):
    layer = Dense(3)
    layer.forward(rng.standard_normal((4, 2)).astype(np.float32))
    assert layer.params[0] is layer.operations[0].param
    assert layer.params[1] is layer.operations[1].param
    layer.backward(np.ones((4, 3), np.float32))
    assert [g.shape for g in layer.param_grads] == [(2, 3), (1, 3)]
