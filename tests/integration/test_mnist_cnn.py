"""A CI-sized MNIST CNN: 6,000 training images, two epochs, a small conv/batch-norm/pool net."""

import pytest

from scratchdl import (
    Adam,
    BatchNorm,
    Conv2D,
    Dense,
    Flatten,
    Linear,
    MaxPool2D,
    NeuralNetwork,
    SoftmaxCrossEntropy,
    Trainer,
)
from scratchdl.data import Standardizer
from scratchdl.datasets import load_mnist
from tests.conftest import require_data

pytestmark = pytest.mark.slow


def test_small_cnn_learns_mnist():
    base = require_data("mnist", "train-images-idx3-ubyte.gz")
    X, y, X_test, y_test = load_mnist(base / "mnist")
    scaler = Standardizer(axis=None).fit(X[:6000])
    X_train = scaler.transform(X[:6000]).reshape(-1, 1, 28, 28)
    X_test = scaler.transform(X_test[:2000]).reshape(-1, 1, 28, 28)
    net = NeuralNetwork(
        [Conv2D(8, 3, activation="relu", weight_init="he"), BatchNorm(), MaxPool2D(2),
         Conv2D(16, 3, activation="relu", weight_init="he"), MaxPool2D(2), Flatten(),
         Dense(10, Linear(), weight_init="glorot")],
        SoftmaxCrossEntropy(), seed=0,
    )  # fmt: skip
    trainer = Trainer(net, Adam(2e-3), metrics=["accuracy"])
    history = trainer.fit(X_train, y[:6000], epochs=2, batch_size=64, seed=0, verbose=0)
    assert history.history["loss"][1] < history.history["loss"][0]
    # measured 2026-11-28: 92.1% for seed 0 (92.1-94.0% over seeds 0-2); chance is 10%
    assert trainer.evaluate(X_test, y_test[:2000])["accuracy"] > 0.88
