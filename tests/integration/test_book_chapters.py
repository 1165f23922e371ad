"""The book's chapter 3, 4 and 5 notebook cells, spelled as the book spells them, with
``lincoln`` replaced by ``scratchdl`` (issue 12). Each runs on a slice of the real data so
the suite stays fast; the full runs are the examples' job."""

import numpy as np
import pytest

from tests.conftest import require_data

pytestmark = pytest.mark.slow


def test_chapter_3_cells(capsys):
    require_data("boston", "boston.csv")
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    from scratchdl import SGD, Dense, Linear, MeanSquaredError, NeuralNetwork, Sigmoid, Trainer
    from scratchdl.datasets import load_boston  # the shim for scikit-learn's removed loader

    data, target = load_boston()
    s = StandardScaler()
    data = s.fit_transform(data)
    X_train, X_test, y_train, y_test = train_test_split(
        data, target, test_size=0.3, random_state=80718
    )
    y_train, y_test = y_train.reshape(-1, 1), y_test.reshape(-1, 1)

    def mae(y_true, y_pred):
        return np.mean(np.abs(y_true - y_pred))

    nn = NeuralNetwork(
        layers=[Dense(neurons=13, activation=Sigmoid()), Dense(neurons=1, activation=Linear())],
        loss=MeanSquaredError(),
        seed=20190501,
    )
    trainer = Trainer(nn, SGD(lr=0.01))
    trainer.fit(X_train, y_train, X_test, y_test, epochs=50, eval_every=10, seed=20190501)
    preds = nn.forward(X_test).reshape(-1, 1)
    out = capsys.readouterr().out
    assert "Validation loss after 10 epochs is " in out
    assert mae(preds, y_test) < 3.5  # the book prints 2.60


@pytest.fixture(scope="module")
def book_mnist():
    require_data("mnist", "train-images-idx3-ubyte.gz")
    from scratchdl.utils import mnist

    X_train, y_train, X_test, y_test = mnist.load()
    assert X_train.shape == (60000, 784) and X_train.dtype == np.uint8 and y_train.dtype == np.uint8
    X_train, y_train, X_test, y_test = X_train[:6060], y_train[:6060], X_test[:2000], y_test[:2000]
    # the notebook's cells, as written
    num_labels = len(y_train)
    train_labels = np.zeros((num_labels, 10))
    for i in range(num_labels):
        train_labels[i][y_train[i]] = 1
    num_labels = len(y_test)
    test_labels = np.zeros((num_labels, 10))
    for i in range(num_labels):
        test_labels[i][y_test[i]] = 1
    X_train, X_test = X_train - np.mean(X_train), X_test - np.mean(X_train)
    X_train, X_test = X_train / np.std(X_train), X_test / np.std(X_train)
    return X_train, y_train, X_test, y_test, train_labels, test_labels


def accuracy(model, test_set, y_test, **kwargs):
    return (
        np.equal(np.argmax(model.forward(test_set, **kwargs), axis=1), y_test).sum()
        * 100.0
        / test_set.shape[0]
    )


def test_chapter_4_cells(book_mnist, capsys):
    from scratchdl import activations, layers, losses, network, optimizers, train

    X_train, _y_train, X_test, y_test, train_labels, test_labels = book_mnist
    RANDOM_SEED = 190119
    model = network.NeuralNetwork(
        layers=[
            layers.Dense(neurons=89, activation=activations.Sigmoid(), weight_init="glorot"),
            layers.Dense(neurons=10, activation=activations.Linear(), weight_init="glorot"),
        ],
        loss=losses.SoftmaxCrossEntropy(),
        seed=RANDOM_SEED,
    )
    optimizer = optimizers.SGDMomentum(0.2, momentum=0.9, final_lr=0.05, decay_type="exponential")
    trainer = train.Trainer(model, optimizer)
    trainer.fit(X_train, train_labels, X_test, test_labels, epochs=4, eval_every=2, seed=RANDOM_SEED, batch_size=60)  # fmt: skip
    assert "Validation loss after 2 epochs is " in capsys.readouterr().out
    assert accuracy(model, X_test, y_test) > 88  # 6,000 rows, 4 epochs


def test_chapter_5_cells(book_mnist, capsys):
    from scratchdl.activations import Linear, Tanh
    from scratchdl.layers import Conv2D, Dense
    from scratchdl.losses import SoftmaxCrossEntropy
    from scratchdl.network import NeuralNetwork
    from scratchdl.optimizers import SGDMomentum
    from scratchdl.train import Trainer

    X_train, _y_train, X_test, y_test, train_labels, test_labels = book_mnist
    X_train_conv, X_test_conv = X_train.reshape(-1, 1, 28, 28), X_test.reshape(-1, 1, 28, 28)
    model = NeuralNetwork(
        layers=[
            Conv2D(out_channels=16, param_size=5, dropout=0.8, weight_init="glorot", flatten=True, activation=Tanh()),
            Dense(neurons=10, activation=Linear()),
        ],
        loss=SoftmaxCrossEntropy(),
        seed=20190402,
    )  # fmt: skip
    trainer = Trainer(model, SGDMomentum(lr=0.1, momentum=0.9))
    trainer.fit(X_train_conv, train_labels, X_test_conv, test_labels, epochs=1, eval_every=1,
                seed=20190402, batch_size=60, conv_testing=True)  # fmt: skip
    out = capsys.readouterr().out
    assert "batch 90 loss " in out and "Validation accuracy after 100 batches is " in out
    assert "Validation loss after 1 epochs is " in out
    assert (
        accuracy(model, X_test_conv, y_test, inference=True) > 75
    )  # 101 batches only (83.75% here)
