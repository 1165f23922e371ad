"""Autograd: define-by-run tensors, higher-order gradients, and the second route to every
gradient of the built-in operations (issue 15)."""

import numpy as np
import pytest

from scratchdl import (
    GRU,
    LSTM,
    RNN,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Embedding,
    EmbeddingLookup,
    Flatten,
    GlobalAvgPool2D,
    LeakyReLU,
    Linear,
    MaxPool2D,
    MeanSquaredError,
    NeuralNetwork,
    ReLU,
    Sigmoid,
    Softmax,
    SoftmaxCrossEntropy,
    Tanh,
    autograd,
    gradcheck,
    testing,
)
from scratchdl.autograd import Tensor, TensorOperation, grad
from scratchdl.io import register


def test_a_node_used_twice_is_counted_once_per_use():
    a = Tensor(3.0, requires_grad=True)
    (da,) = grad(4 * a * a, [a])
    assert da.item() == 24.0  # the book's NumberWithGrad gives 36


@pytest.mark.parametrize("x0", [-1.3, 0.2, 0.7, 2.1])
def test_second_and_third_derivatives_of_tanh_match_the_formulas(x0):
    x = Tensor(x0, requires_grad=True)
    (d1,) = grad(autograd.tanh(x), [x], create_graph=True)
    (d2,) = grad(d1, [x], create_graph=True)
    (d3,) = grad(d2, [x])
    t = np.tanh(x0)
    assert abs(d1.item() - (1 - t * t)) < 1e-10
    assert abs(d2.item() - (-2 * t * (1 - t * t))) < 1e-10
    assert abs(d3.item() - (-2 * (1 - t * t) ** 2 + 4 * t * t * (1 - t * t))) < 1e-10


def test_a_hundred_thousand_operation_chain_back_propagates():
    x = Tensor(1.0, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0 + 0.0  # two nodes a step, 200,000 in all
    (dx,) = grad(y, [x])
    assert dx.item() == 1.0


def test_backward_accumulates_and_gives_the_same_answer_every_time(rng):
    w = Tensor(rng.standard_normal((3, 2)), requires_grad=True)
    x = Tensor(rng.standard_normal((4, 3)))
    loss = autograd.tanh(x @ w).sum()
    loss.backward()
    first = w.grad.data.copy()
    loss.backward()  # intermediate gradients are not kept, so nothing is counted twice
    np.testing.assert_allclose(w.grad.data, 2 * first, rtol=1e-15)
    w.zero_grad()
    loss.backward()
    np.testing.assert_array_equal(w.grad.data, first)
    (again,) = grad(loss, [w])
    np.testing.assert_array_equal(again.data, first)


@pytest.mark.parametrize(
    ("f", "shapes"),
    [
        (lambda a, b: a + b, [(3, 1), (1, 4)]),
        (lambda a, b: a - b, [(2, 3), (3,)]),
        (lambda a, b: a * b, [(2, 3), (1, 3)]),
        (lambda a, b: a / b, [(2, 3), (2, 1)]),
        (lambda a, b: a**b, [(2, 3), (2, 3)]),
        (lambda a, b: a @ b, [(2, 3), (3, 4)]),
        (lambda a, b: (a @ b).sum(axis=0), [(5, 2, 3), (3, 4)]),
        (lambda a: -(a**3), [(2, 3)]),
        (lambda a: a[1:, ::2], [(3, 4)]),
        (lambda a: a[np.array([0, 2, 0])], [(3, 4)]),
        (lambda a: a.reshape(4, 3).T, [(2, 6)]),
        (lambda a: a.transpose(2, 0, 1), [(2, 3, 4)]),
        (lambda a: a.sum(axis=1, keepdims=True), [(2, 3)]),
        (lambda a: a.mean(axis=(0, 2)), [(2, 3, 4)]),
        (lambda a: a.max(axis=-1), [(3, 5)]),
        (lambda a: autograd.exp(a), [(2, 3)]),
        (lambda a: autograd.log(a), [(2, 3)]),
        (lambda a: autograd.sigmoid(a), [(2, 3)]),
        (lambda a: autograd.relu(a), [(2, 3)]),
        (lambda a: autograd.softmax(a, axis=0), [(3, 4)]),
        (lambda a: autograd.log_softmax(a), [(3, 4)]),
        (lambda a, b: autograd.stack([a, b], axis=1), [(2, 3), (2, 3)]),
        (lambda a, b: autograd.concatenate([a, b], axis=1), [(2, 3), (2, 1)]),
        (lambda a: autograd.pad(a, [(1, 0), (2, 1)]), [(2, 3)]),
    ],
)
def test_every_function_matches_central_differences(f, shapes, rng):
    arrays = [rng.uniform(0.5, 1.5, s) * rng.choice([-1, 1], s) for s in shapes]
    if {"log", "div"} & set(f.__code__.co_names) or "**" in _source(f):
        arrays[0] = np.abs(arrays[0])  # log and powers of a negative base are not real
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    out = f(*tensors)
    g = rng.standard_normal(out.shape)
    analytic = grad(out, tensors, grad_output=g)
    for k, a in enumerate(arrays):
        numeric = np.zeros_like(a)
        for index in np.ndindex(a.shape):
            old = a[index]
            values = []
            for step in (1e-6, -1e-6):
                a[index] = old + step
                values.append(float(np.sum(f(*[Tensor(b) for b in arrays]).data * g)))
            a[index] = old
            numeric[index] = (values[0] - values[1]) / 2e-6
        np.testing.assert_allclose(analytic[k].data, numeric, rtol=1e-5, atol=1e-7)


def _source(f):
    import inspect

    return inspect.getsource(f)


def test_second_derivatives_of_compositions_match_differences(rng):
    """A Hessian-vector product by double backward equals the difference of gradients."""
    w0 = rng.standard_normal((3, 2))
    x = Tensor(rng.standard_normal((5, 3)))
    v = rng.standard_normal((3, 2))

    def loss(w):
        return (autograd.log_softmax(autograd.tanh(x @ w)) * x[:, :2]).sum()

    w = Tensor(w0, requires_grad=True)
    (g,) = grad(loss(w), [w], create_graph=True)
    (hv,) = grad((g * v).sum(), [w])

    def gradient(at):
        t = Tensor(at, requires_grad=True)
        return grad(loss(t), [t])[0].data

    eps = 1e-5
    numeric = (gradient(w0 + eps * v) - gradient(w0 - eps * v)) / (2 * eps)
    np.testing.assert_allclose(hv.data, numeric, rtol=1e-6, atol=1e-9)


def test_no_grad_records_nothing():
    a = Tensor(2.0, requires_grad=True)
    with autograd.no_grad():
        b = a * a
    assert not b.requires_grad and b.node is None
    assert autograd.is_grad_enabled()


def test_errors_say_what_to_do():
    a = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"output has shape \(2,\); give grad_output"):
        grad(a * 2, [a])
    b = Tensor(1.0, requires_grad=True)
    with pytest.raises(ValueError, match="not used to compute the output"):
        grad((a * 2).sum(), [a, b])
    assert grad((a * 2).sum(), [a, b], allow_unused=True)[1] is None
    with pytest.raises(ValueError, match="requires_grad=True"):
        grad((a * 2).sum(), [Tensor(1.0)])
    with pytest.raises(ValueError, match="does not depend"):
        grad(Tensor(1.0) * 2, [a])
    with pytest.raises(TypeError, match="requires_grad must be True or False"):
        Tensor(1.0, requires_grad="yes")


def test_a_network_written_with_tensors_has_the_networks_gradients(rng):
    net = NeuralNetwork(
        [Dense(6, Tanh()), Dense(3, Linear())], SoftmaxCrossEntropy(), seed=4, dtype=np.float64
    )
    x, labels = rng.standard_normal((8, 5)), rng.integers(0, 3, 8)
    net.train_batch(x, labels)
    w1, b1, w2, b2 = (Tensor(p.copy(), requires_grad=True) for p in net.params())
    logits = autograd.tanh(Tensor(x) @ w1 + b1) @ w2 + b2
    loss = -autograd.log_softmax(logits)[np.arange(8), labels].mean()
    assert abs(loss.item() - net.loss.forward(net.forward(x), labels)) < 1e-12
    for ours, theirs in zip(grad(loss, [w1, b1, w2, b2]), net.param_grads(), strict=True):
        np.testing.assert_allclose(ours.data, theirs, rtol=1e-10, atol=1e-14)


LAYERS = [
    (Dense(4, "tanh", dropout=0.8), (3, 5)),
    (Dense(4, LeakyReLU(0.1)), (3, 5)),
    (Dense(4, Sigmoid(), dropout=Dropout(0.7, inverted=False)), (3, 5)),
    (Conv2D(3, 3, stride=2, activation=ReLU(), dropout=0.7, flatten=True), (2, 2, 5, 6)),
    (Conv2D(2, (2, 3), padding=1), (2, 1, 4, 4)),
    (BatchNorm(), (6, 3)),
    (BatchNorm(), (4, 2, 3, 3)),
    (RNN(3, return_sequences=True), (2, 4, 3)),
    (LSTM(3), (2, 4, 3)),
    (GRU(3, return_sequences=True), (2, 4, 3)),
]


@pytest.mark.parametrize("inference", [False, True])
@pytest.mark.parametrize(("layer", "shape"), LAYERS, ids=lambda v: repr(v)[:30])
def test_every_built_in_operation_agrees_with_its_autograd_version(layer, shape, inference, rng):
    net = NeuralNetwork([layer], MeanSquaredError(), seed=0, dtype=np.float64)
    x = rng.standard_normal(shape)
    net.forward(x)
    for op in layer.operations:
        assert gradcheck.check_autograd(op, x, inference=inference) < 1e-12, op
        x = op.forward(x, inference)


@pytest.mark.parametrize(
    ("op", "shape"),
    [
        (MaxPool2D(2), (2, 2, 4, 4)),
        (MaxPool2D(3, stride=2, padding=1), (2, 2, 5, 5)),
        (AvgPool2D(2, stride=1, padding=1), (2, 2, 4, 4)),
        (GlobalAvgPool2D(), (2, 2, 3, 3)),
        (Softmax(), (3, 4)),
        (Flatten(), (2, 3, 2)),
    ],
)
def test_every_built_in_pooling_and_reshaping_agrees_with_autograd(op, shape, rng):
    assert gradcheck.check_autograd(op, rng.standard_normal(shape)) < 1e-12


def test_the_embedding_agrees_with_autograd(rng):
    layer = Embedding(5, 3)
    NeuralNetwork([layer], MeanSquaredError(), seed=0, dtype=np.float64).forward(np.zeros((1, 4)))
    ids = rng.integers(0, 5, (2, 4)).astype(float)
    assert gradcheck.check_autograd(layer.operations[0], ids, check_input=False) < 1e-12
    assert isinstance(layer.operations[0], EmbeddingLookup)


def test_check_autograd_catches_a_wrong_backward(rng):
    class WrongTanh(Tanh):
        def _input_grad(self, output_grad):
            return output_grad * (1 - self.output)

    assert gradcheck.check_autograd(WrongTanh(), rng.standard_normal((3, 4))) > 0.1


class Swish(TensorOperation):
    def compute(self, x):
        return x * autograd.sigmoid(x)


class Scale(TensorOperation):
    param_names = ("scale",)

    def compute(self, x, w):
        return x * w


class SwishDense(Dense):
    """A Dense layer whose activation is a TensorOperation, scaled by a learned vector."""

    def _setup_layer(self, input_):
        super()._setup_layer(input_)
        self.operations[2:3] = [Swish(), Scale(np.ones((1, self.neurons), input_.dtype))]


register(Swish)
register(SwishDense)


def test_a_tensor_operation_gets_its_backward_from_autograd(rng):
    x = rng.standard_normal((4, 5))
    assert gradcheck.check_operation(Swish(), x) < 1e-8
    assert gradcheck.check_operation(Scale(rng.standard_normal((1, 5))), x) < 1e-8
    assert gradcheck.check_autograd(Swish(), x) == 0.0


def test_a_layer_with_tensor_operations_passes_the_contract():
    testing.check_layer_contract(lambda: SwishDense(3), (4,))
    layer = SwishDense(3)
    NeuralNetwork([layer], MeanSquaredError(), dtype=np.float64).forward(np.zeros((1, 4)))
    assert list(layer.named_params()) == ["weights", "bias", "scale"]
