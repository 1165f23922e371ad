"""The seed notes' and the book's chapter-3 classes, written as printed, on our base classes.

`_output(self)` without `inference`, `super().__init__()` in every constructor, a `Dense`
whose `_setup_layer` seeds NumPy's global generator from `self.seed` and fills `self.params`
and `self.operations` — and nothing else: no names, no get_config, no param_shapes. Such a
layer must train, save, load, checkpoint and resume bit for bit.
"""

import numpy as np
import pytest
from numpy import ndarray

import scratchdl
from scratchdl import SGD, Layer, Loss, ModelCheckpoint, Operation, ParamOperation, Trainer
from scratchdl import NeuralNetwork as ScratchNetwork
from scratchdl.data import Standardizer, train_test_split
from scratchdl.datasets import load_boston
from scratchdl.io import register
from tests.conftest import require_data


# ---- the book's chapter-3 classes, as printed (docstrings shortened) ----
class WeightMultiply(ParamOperation):
    def __init__(self, W: ndarray):
        super().__init__(W)

    def _output(self) -> ndarray:
        return np.dot(self.input_, self.param)

    def _input_grad(self, output_grad: ndarray) -> ndarray:
        return np.dot(output_grad, np.transpose(self.param, (1, 0)))

    def _param_grad(self, output_grad: ndarray) -> ndarray:
        return np.dot(np.transpose(self.input_, (1, 0)), output_grad)


class BiasAdd(ParamOperation):
    def __init__(self, B: ndarray):
        super().__init__(B)

    def _output(self) -> ndarray:
        return self.input_ + self.param

    def _input_grad(self, output_grad: ndarray) -> ndarray:
        return np.ones_like(self.input_) * output_grad

    def _param_grad(self, output_grad: ndarray) -> ndarray:
        param_grad = np.ones_like(self.param) * output_grad
        return np.sum(param_grad, axis=0).reshape(1, param_grad.shape[1])


class Sigmoid(Operation):
    def __init__(self) -> None:
        super().__init__()

    def _output(self) -> ndarray:
        return 1.0 / (1.0 + np.exp(-1.0 * self.input_))

    def _input_grad(self, output_grad: ndarray) -> ndarray:
        sigmoid_backward = self.output * (1.0 - self.output)
        input_grad = sigmoid_backward * output_grad
        return input_grad


class Linear(Operation):
    def __init__(self) -> None:
        super().__init__()

    def _output(self) -> ndarray:
        return self.input_

    def _input_grad(self, output_grad: ndarray) -> ndarray:
        return output_grad


class Dense(Layer):
    def __init__(self, neurons: int, activation: Operation = Sigmoid()):  # noqa: B008 - the book's
        super().__init__(neurons)
        self.activation = activation

    def _setup_layer(self, input_: ndarray) -> None:
        if self.seed:
            np.random.seed(self.seed)  # noqa: NPY002 - the book's code
        self.params = []
        self.params.append(np.random.randn(input_.shape[1], self.neurons))  # noqa: NPY002
        self.params.append(np.random.randn(1, self.neurons))  # noqa: NPY002
        self.operations = [
            WeightMultiply(self.params[0]),
            BiasAdd(self.params[1]),
            self.activation,
        ]
        return None


class MeanSquaredError(Loss):
    def __init__(self) -> None:
        super().__init__()

    def _output(self) -> float:
        loss = np.sum(np.power(self.prediction - self.target, 2)) / self.prediction.shape[0]
        return loss

    def _input_grad(self) -> ndarray:
        return 2.0 * (self.prediction - self.target) / self.prediction.shape[0]


# The seed's names clash with scratchdl's own classes, so they are registered under others.
for cls in (WeightMultiply, BiasAdd, Sigmoid, Linear, Dense, MeanSquaredError):
    register(cls, name=f"Book{cls.__name__}")


def book_network(dtype=np.float64, seed=20190501) -> ScratchNetwork:
    return ScratchNetwork(
        layers=[Dense(neurons=13, activation=Sigmoid()), Dense(neurons=1, activation=Linear())],
        loss=MeanSquaredError(),
        seed=seed,
        dtype=dtype,
    )


@pytest.fixture(scope="module")
def boston():
    require_data("boston", "boston.csv")
    X, y = load_boston()
    X_train, X_test, y_train, y_test = train_test_split(
        X, y.reshape(-1, 1), test_size=0.3, seed=80718
    )
    scaler = Standardizer().fit(X_train)
    return scaler.transform(X_train), y_train, scaler.transform(X_test), y_test


def test_book_classes_are_gradient_checked():
    net = book_network()
    x = np.random.default_rng(0).standard_normal((5, 13))
    net.forward(x)
    for layer in net.layers:
        assert scratchdl.gradcheck.check_layer(layer, layer.input_) < 1e-7
    names = list(net.named_params())
    assert names == ["layers.1.weight_multiply", "layers.1.bias_add", "layers.2.weight_multiply", "layers.2.bias_add"]  # fmt: skip


def test_the_layer_seed_is_the_networks_as_the_book_sets_it():
    net = book_network(seed=7)
    assert [layer.seed for layer in net.layers] == [7, 7]


def test_book_classes_train_on_boston_and_beat_the_mean(boston):
    X_train, y_train, X_test, y_test = boston
    net = book_network()
    trainer = Trainer(net, SGD(lr=0.01))
    trainer.fit(
        X_train, y_train, X_test, y_test, epochs=50, eval_every=10, seed=20190501, verbose=0
    )
    prediction = net.forward(X_test)
    mae = float(np.mean(np.abs(prediction - y_test)))
    assert mae < 0.5 * float(np.mean(np.abs(y_test - y_test.mean())))  # far better than the mean
    assert mae < 3.5  # the book prints 2.60 for this model


def test_book_classes_save_and_load(boston, tmp_path):
    X_train, y_train, X_test, _ = boston
    net = book_network()
    Trainer(net, SGD(lr=0.01)).fit(X_train, y_train, epochs=3, seed=1, verbose=0)
    net.save(tmp_path / "book.safetensors")
    loaded = scratchdl.load(tmp_path / "book.safetensors")
    assert [type(layer) for layer in loaded.layers] == [Dense, Dense]
    assert type(loaded.layers[1].activation) is Linear
    np.testing.assert_array_equal(loaded.predict(X_test), net.predict(X_test))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_book_classes_checkpoint_and_resume_bit_for_bit(boston, tmp_path, dtype):
    X_train, y_train, X_test, y_test = boston
    path = tmp_path / "ckpt.safetensors"

    def fit(epochs, **kwargs):
        net = book_network(dtype)
        Trainer(net, SGD(lr=0.01)).fit(X_train, y_train, X_test, y_test, epochs=epochs,
                                       eval_every=2, seed=3, verbose=0, early_stopping=False,
                                       **kwargs)  # fmt: skip
        return net

    straight = fit(4)
    fit(2, callbacks=[ModelCheckpoint(str(path), every_n_batches=5)])
    resumed = fit(
        4, callbacks=[ModelCheckpoint(str(path), every_n_batches=5)], resume_from=str(path)
    )
    for a, b in zip(straight.params(), resumed.params(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_an_unregistered_class_names_the_fix(tmp_path):
    class Custom(Linear):
        pass

    net = ScratchNetwork([Dense(2, activation=Custom())], MeanSquaredError(), seed=1)
    net.forward(np.zeros((1, 3)))
    with pytest.raises(
        ValueError, match=r"Custom is not registered.*scratchdl.io.register\(Custom\)"
    ):
        net.save(tmp_path / "m.safetensors")


def test_a_taken_name_is_refused_with_a_suggestion():
    class Dense(Layer):  # another class called Dense
        def _setup_layer(self, input_):
            self.operations = []

    with pytest.raises(
        ValueError, match=r"name 'Dense' is taken by scratchdl\.layers\.dense\.Dense"
    ):
        register(Dense)


def test_a_layer_that_forgets_operations_gets_a_clear_error():
    class Broken(Layer):
        def __init__(self):
            pass  # no super().__init__()

        def _setup_layer(self, input_):
            self.operations = []

    net = ScratchNetwork([Broken()], MeanSquaredError())
    with pytest.raises(TypeError, match=r"Layer.__init__ was not called; call super\(\).__init__"):
        net.forward(np.zeros((1, 2)))

    class NotOps(Layer):
        def _setup_layer(self, input_):
            self.operations = [np.tanh]

    with pytest.raises(TypeError, match=r"must set self\.operations to a list of Operation"):
        ScratchNetwork([NotOps()], MeanSquaredError()).forward(np.zeros((1, 2)))
