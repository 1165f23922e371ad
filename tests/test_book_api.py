"""The book's own code runs on scratchdl with `lincoln` renamed (issue 12): its module paths,
its signatures (positional order included), its trainer's messages."""

import io

import numpy as np
import pytest

from scratchdl import (
    Conv2D,
    Dense,
    EarlyStopping,
    Linear,
    MeanSquaredError,
    NeuralNetwork,
    ShapeError,
    SoftmaxCrossEntropy,
    Tanh,
    Trainer,
)


def test_the_books_module_paths_import():
    from scratchdl import activations, layers, losses, network, optimizers, train  # noqa: F401
    from scratchdl.activations import Linear, ReLU, Sigmoid, Tanh  # noqa: F401
    from scratchdl.base import Operation, ParamOperation  # noqa: F401
    from scratchdl.layers import Conv2D, Dense  # noqa: F401
    from scratchdl.losses import MeanSquaredError, SoftmaxCrossEntropy  # noqa: F401
    from scratchdl.network import NeuralNetwork  # noqa: F401
    from scratchdl.optimizers import SGD, Optimizer, SGDMomentum  # noqa: F401
    from scratchdl.train import Trainer as BookTrainer
    from scratchdl.utils import mnist  # noqa: F401
    from scratchdl.utils.np_utils import assert_same_shape, permute_data, softmax  # noqa: F401

    assert BookTrainer is Trainer


def test_np_utils_checks_raise_errors_not_asserts():
    from scratchdl.utils import np_utils

    with pytest.raises(ShapeError, match=r"first's shape is \(2,\) and the second's is \(3,\)"):
        np_utils.assert_same_shape(np.zeros(2), np.zeros(3))
    with pytest.raises(ShapeError, match="expected to have 2 dimensions, instead has 1"):
        np_utils.assert_dim(np.zeros(3), 2)
    np.testing.assert_allclose(np_utils.softmax(np.array([[1000.0, 1000.0]]), axis=1), [[0.5, 0.5]])
    assert np_utils.to_2d(np.arange(3)).shape == (3, 1)
    assert np_utils.to_2d(np.arange(3), "row").shape == (1, 3)
    np.random.seed(3)  # noqa: NPY002 - the book's global stream, as its helper uses it
    a = np_utils.permute_data(np.arange(5), np.arange(5))
    np.random.seed(3)  # noqa: NPY002
    b = np_utils.permute_data(np.arange(5), np.arange(5))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[0], a[1])


def test_sgd_momentum_takes_the_books_positional_order():
    from scratchdl.optimizers import SGDMomentum

    optim = SGDMomentum(0.15, 0.05, "linear", 0.8)
    assert (optim.base_lr, optim.final_lr, optim.momentum) == (0.15, 0.05, 0.8)
    optim.set_epoch(4, 5)
    assert optim.lr == pytest.approx(0.05)
    with pytest.raises(ValueError, match=r"final_lr=0.9 has no effect without decay_type"):
        SGDMomentum(0.1, 0.9)  # the old order: momentum read as final_lr would be silent
    with pytest.raises(
        TypeError, match=r"nesterov must be True or False\. Received: nesterov='linear'"
    ):
        SGDMomentum(0.1, momentum=0.9, nesterov="linear")


def test_dense_takes_the_books_positional_order_and_conv_in():
    layer = Dense(10, Tanh(), False, 0.8, "glorot")
    assert (layer.dropout, layer.weight_init, layer.conv_in) == (0.8, "glorot", False)
    with pytest.raises(TypeError, match="conv_in must be True or False"):
        Dense(10, Tanh(), "glorot")


def test_conv2d_takes_the_books_keywords_and_default_init():
    layer = Conv2D(out_channels=16, param_size=5, dropout=0.8, weight_init="normal", flatten=True, activation=Tanh())  # fmt: skip
    assert layer.kernel_size == (5, 5) and layer.weight_init == "normal"


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: MeanSquaredError(normalize="yes"), "normalize must be True or False"),
        (lambda: Conv2D(2, 3, flatten=1), "flatten must be True or False"),
        (lambda: SoftmaxCrossEntropy(eps=2), r"eps must be a number in \(0, 0.5\)"),
    ],
)
def test_flags_and_numbers_of_the_wrong_kind_are_refused(make, match):
    with pytest.raises((TypeError, ValueError), match=match):
        make()


def test_softmax_cross_entropy_accepts_the_books_eps_and_is_unchanged_by_it(rng):
    z, t = rng.standard_normal((5, 3)), rng.integers(0, 3, 5)
    assert SoftmaxCrossEntropy(eps=1e-9).forward(z, t) == SoftmaxCrossEntropy().forward(z, t)


def test_network_seed_defaults_to_one_as_in_the_book(rng):
    x = rng.standard_normal((2, 3))
    nets = [NeuralNetwork([Dense(4)], MeanSquaredError()) for _ in range(2)]
    for net in nets:
        net.forward(x)
    assert nets[0].seed == 1
    np.testing.assert_array_equal(nets[0].layers[0].params[0], nets[1].layers[0].params[0])


def test_forward_loss_and_train_batch_with_inference(rng):
    net = NeuralNetwork([Dense(2, Linear())], MeanSquaredError(), seed=2)
    x, y = rng.standard_normal((3, 4)), rng.standard_normal((3, 2))
    loss = net.forward_loss(x, y)
    assert loss == pytest.approx(float(((net.forward(x) - y) ** 2).sum() / 3))
    assert net.train_batch(x, y, inference=True) == loss


@pytest.mark.parametrize(
    ("name", "value"),
    [("restart", "yes"), ("early_stopping", None), ("conv_testing", 1), ("single_output", "no")],
)
def test_fit_flags_must_be_booleans(rng, name, value):
    net = NeuralNetwork([Dense(1, Linear())], MeanSquaredError())
    with pytest.raises(TypeError, match=f"Trainer.fit: {name} must be True or False"):
        Trainer(net, __import__("scratchdl").SGD(0.01)).fit(
            rng.standard_normal((4, 2)), rng.standard_normal((4, 1)), verbose=0, **{name: value}
        )


class FakeNet:
    def named_params(self):
        return {"layers.1.weights": np.zeros(1)}


class FakeTrainer:
    net = FakeNet()
    stop_training = False


def test_early_stopping_prints_the_books_messages_with_the_restored_epoch():
    out = io.StringIO()
    stopper = EarlyStopping(patience=0, verbose=1, stream=out)
    stopper.trainer = FakeTrainer()
    for epoch, loss in ((9, 27.8681), (19, 25.0874), (29, 26.0)):
        stopper.on_epoch_end(epoch, {"loss": 30.0, "val_loss": loss})
    assert out.getvalue().splitlines() == [
        "Validation loss after 10 epochs is 27.868",
        "Validation loss after 20 epochs is 25.087",
        "Loss increased after epoch 30, final loss was 25.087, using the model from epoch 20",
    ]
    assert stopper.trainer.stop_training


def test_fit_at_verbose_one_prints_the_books_validation_messages(rng, capsys):
    X = rng.standard_normal((40, 3))
    y = X @ np.ones((3, 1))
    net = NeuralNetwork([Dense(1, Linear())], MeanSquaredError(), seed=20190501)
    Trainer(net, __import__("scratchdl").SGD(0.01)).fit(X, y, X, y, epochs=20, eval_every=10, seed=20190501)  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Validation loss after 10 epochs is ")
    assert lines[1].startswith("Validation loss after 20 epochs is ")


def test_conv_testing_prints_batch_losses_and_validation_accuracy(rng, capsys):
    X = rng.standard_normal((1212, 1, 4, 4))
    labels = (X[:, 0, 0, 0] > 0).astype(int)
    one_hot = np.eye(2)[labels]
    net = NeuralNetwork([Conv2D(2, 3, activation=Tanh(), flatten=True), Dense(2, Linear())], SoftmaxCrossEntropy(), seed=0)  # fmt: skip
    Trainer(net, __import__("scratchdl").SGD(0.1)).fit(
        X, one_hot, X[:100], one_hot[:100], epochs=1, eval_every=1, batch_size=12, conv_testing=True, verbose=0
    )  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    batch_lines = [line for line in lines if line.startswith("batch ")]
    assert [line.split()[1] for line in batch_lines] == [str(i) for i in range(0, 101, 10)]
    assert next(line for line in lines if line.startswith("Validation accuracy")).startswith(
        "Validation accuracy after 100 batches is "
    )
    with pytest.raises(ValueError, match="conv_testing=True needs validation data"):
        Trainer(net, __import__("scratchdl").SGD(0.1)).fit(X, one_hot, conv_testing=True, verbose=0)


def test_unflattened_images_into_a_dense_network_name_the_fix(rng):
    net = NeuralNetwork([Dense(89, Tanh()), Dense(10, Linear())], SoftmaxCrossEntropy())
    with pytest.raises(
        ShapeError, match=r"layer 1 \(Dense\).*received \(5, 28, 28\); flatten the examples first"
    ):
        net.forward(rng.standard_normal((5, 28, 28)))
    # a Dense layer after a convolution that was not flattened
    conv = NeuralNetwork([Conv2D(2, 3), Dense(10, Linear())], SoftmaxCrossEntropy())
    with pytest.raises(ShapeError, match=r"Conv2D\(\.\.\., flatten=True\)"):
        conv.forward(rng.standard_normal((2, 1, 5, 5)))


def test_the_loss_hints_at_flattening(rng):
    with pytest.raises(ShapeError, match="did you mean to flatten the input"):
        SoftmaxCrossEntropy().forward(rng.standard_normal((5, 28, 10)), np.zeros(5, int))
