"""Ready-made training recipes for the `scratchdl train` command.

A preset names a dataset, how to prepare it (the statistics are stored in the model file,
so `scratchdl evaluate` and `predict` apply the same transform), a model, an optimizer
and the `fit` settings.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scratchdl import datasets as ds
from scratchdl.data import Standardizer, train_test_split
from scratchdl.layers import LSTM, Conv2D, Dense, Embedding
from scratchdl.losses import MeanSquaredError, SoftmaxCrossEntropy
from scratchdl.network import NeuralNetwork
from scratchdl.ops import Linear, ReLU, Sigmoid, Tanh
from scratchdl.optim import SGD, Adam, AdamW, CosineDecay, Optimizer, SGDMomentum, Warmup

__all__ = [
    "DATASETS",
    "PRESETS",
    "Prepared",
    "Preset",
    "apply_preprocessing",
    "prepare",
    "split_raw",
]


@dataclass
class Prepared:
    """A dataset split and the preprocessing that produced it."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    preprocessing: dict[str, Any]
    task: str  # "classification" or "regression"


def apply_preprocessing(X: np.ndarray, preprocessing: dict[str, Any]) -> np.ndarray:
    """Flatten (if recorded) and standardise raw examples as the model was trained."""
    X = np.asarray(X, dtype=np.float64)
    if preprocessing.get("flatten"):
        X = X.reshape(X.shape[0], -1)
    elif preprocessing.get("channels_first"):  # (N, H, W) images -> (N, 1, H, W) for Conv2D
        X = X.reshape(X.shape[0], 1, *X.shape[1:])
    mean = np.asarray(preprocessing.get("mean", 0.0), dtype=np.float64)
    std = np.asarray(preprocessing.get("std", 1.0), dtype=np.float64)
    if mean.ndim == 1 and X.shape[1:] != mean.shape:
        raise ValueError(
            f"input examples have shape {X.shape[1:]}, the model was trained on examples of shape {mean.shape}"
        )
    return ((X - mean) / std).astype(np.float32)


def split_raw(
    name: str, data_dir: str | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """(X_train, y_train, X_test, y_test, task) before preprocessing."""
    if name == "boston":
        X, y = ds.load_boston(data_dir)
        X_train, X_test, y_train, y_test = train_test_split(
            X, y.reshape(-1, 1), test_size=0.3, seed=80718
        )
        return X_train, y_train, X_test, y_test, "regression"
    if name in ("mnist", "fashion-mnist"):
        loader = ds.load_mnist if name == "mnist" else ds.load_fashion_mnist
        X_train, y_train, X_test, y_test = loader(data_dir)
        return X_train, y_train.astype(np.int64), X_test, y_test.astype(np.int64), "classification"
    if name == "tinyshakespeare":
        from scratchdl.text import CharVocab, windows

        text = ds.load_text("tinyshakespeare", data_dir)
        ids = CharVocab(text).encode(text)
        split = int(len(ids) * 0.9)  # the first 90% for training, the rest for validation
        X_train, y_train = windows(ids[:split], 100)
        X_test, y_test = windows(ids[split:], 100)
        return X_train, y_train, X_test, y_test, "language-model"
    if name == "digits":
        X, y = ds.load_digits()
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, seed=0)
        return X_train, y_train, X_test, y_test, "classification"
    raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")


DATASETS = {
    "boston": "Boston housing (regression, 13 features)",
    "mnist": "MNIST digits, 28x28",
    "fashion-mnist": "Fashion-MNIST, 28x28",
    "digits": "scikit-learn's bundled 8x8 digits (no download)",
    "tinyshakespeare": "tiny-shakespeare as windows of 100 character ids (language model)",
}


def prepare(name: str, data_dir: str | None = None, images: bool = False) -> Prepared:
    """Load dataset `name` and standardise it with statistics from its training split.

    ``images=True`` keeps 28x28 images as (N, 1, 28, 28) for convolutional models."""
    X_train, y_train, X_test, y_test, task = split_raw(name, data_dir)
    if name == "boston":
        scaler = Standardizer().fit(X_train)
        prep = {"flatten": False, "mean": scaler.mean_[0].tolist(), "std": scaler.std_[0].tolist()}
    elif name == "digits":
        prep = {"flatten": False, "mean": 0.0, "std": 16.0}
    elif name == "tinyshakespeare":
        prep = {"flatten": False, "mean": 0.0, "std": 1.0}  # character ids pass through
    else:
        flat = X_train.reshape(len(X_train), -1)
        prep = {
            "flatten": not images,
            "channels_first": images,
            "mean": float(flat.mean()),
            "std": float(flat.std()),
        }
    prep["example_shape"] = list(X_train.shape[1:])
    return Prepared(
        apply_preprocessing(X_train, prep),
        y_train,
        apply_preprocessing(X_test, prep),
        y_test,
        prep,
        task,
    )


@dataclass
class Preset:
    """A recipe: `build(seed, lr)` returns the network and optimizer; `lr` None means the default."""

    name: str
    description: str
    dataset: str
    build: Callable[[int, float | None], tuple[NeuralNetwork, Optimizer]]
    epochs: int
    batch_size: int
    eval_every: int = 1
    fit_options: dict[str, Any] = field(default_factory=dict)
    images: bool = False  # feed (N, 1, 28, 28) images rather than flat rows

    def metadata(self, prepared: Prepared) -> dict[str, str]:
        return {
            "preset": self.name,
            "dataset": self.dataset,
            "task": prepared.task,
            "preprocessing": json.dumps(prepared.preprocessing),
        }


def _lr(lr: float | None, default: float) -> float:
    return default if lr is None else lr


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            "boston-linear",
            "the book's chapter-3 linear regression: 13 -> 1, SGD 0.01",
            "boston",
            lambda seed, lr: (
                NeuralNetwork([Dense(1, Linear())], MeanSquaredError(), seed=seed),
                SGD(_lr(lr, 0.01)),
            ),
            epochs=50,
            batch_size=32,
            eval_every=10,
            fit_options={"early_stopping": False},
        ),
        Preset(
            "boston-mlp",
            "the book's chapter-3 deep model: 13 -> 13 -> 13 -> 1 sigmoid, SGD 0.01",
            "boston",
            lambda seed, lr: (
                NeuralNetwork(
                    [Dense(13, Sigmoid()), Dense(13, Sigmoid()), Dense(1, Linear())],
                    MeanSquaredError(),
                    seed=seed,
                ),
                SGD(_lr(lr, 0.01)),
            ),
            epochs=50,
            batch_size=32,
            eval_every=10,
            fit_options={"early_stopping": False},
        ),
        Preset(
            "mnist-mlp",
            "the book's chapter-4 model: 784 -> 89 tanh -> 10, glorot, momentum 0.9, lr 0.2 -> 0.05",
            "mnist",
            lambda seed, lr: (
                NeuralNetwork(
                    [
                        Dense(89, Tanh(), weight_init="glorot"),
                        Dense(10, Linear(), weight_init="glorot"),
                    ],
                    SoftmaxCrossEntropy(),
                    seed=seed,
                ),
                SGDMomentum(_lr(lr, 0.2), momentum=0.9, final_lr=0.05, decay_type="exponential"),
            ),
            epochs=50,
            batch_size=60,
            eval_every=10,
        ),
        Preset(
            "mnist-cnn",
            "the book's chapter-5 CNN: Conv2D(16, 5x5, tanh, dropout 0.8) -> Dense(10), momentum 0.9",
            "mnist",
            lambda seed, lr: (
                NeuralNetwork(
                    [
                        Conv2D(
                            16,
                            5,
                            activation=Tanh(),
                            weight_init="glorot",
                            dropout=0.8,
                            flatten=True,
                        ),
                        Dense(10, Linear(), weight_init="glorot"),
                    ],
                    SoftmaxCrossEntropy(),
                    seed=seed,
                ),
                SGDMomentum(_lr(lr, 0.1), momentum=0.9),
            ),
            epochs=1,
            batch_size=60,
            eval_every=1,
            fit_options={"early_stopping": False},
            images=True,
        ),
        Preset(
            "mnist-best",
            "modern MLP: 784 -> 1024 -> 512 -> 10 ReLU, He init, dropout, AdamW, warm-up + cosine",
            "mnist",
            lambda seed, lr: (
                NeuralNetwork(
                    [
                        Dense(1024, ReLU(), weight_init="he", dropout=0.8),
                        Dense(512, ReLU(), weight_init="he", dropout=0.8),
                        Dense(10, Linear(), weight_init="glorot"),
                    ],
                    SoftmaxCrossEntropy(),
                    seed=seed,
                ),
                AdamW(_lr(lr, 1e-3), weight_decay=1e-4, schedule=Warmup(1, CosineDecay(1e-5))),
            ),
            epochs=20,
            batch_size=128,
            eval_every=5,
            fit_options={"early_stopping": False},
        ),
        Preset(
            "char-rnn",
            "character language model: Embedding(65, 64) -> LSTM(256) -> Dense(65) per step, Adam, clip 5",
            "tinyshakespeare",
            lambda seed, lr: (
                NeuralNetwork(
                    [Embedding(65, 64), LSTM(256, return_sequences=True), Dense(65, Linear())],
                    SoftmaxCrossEntropy(),
                    seed=seed,
                ),
                Adam(_lr(lr, 2e-3), clip_norm=5.0),
            ),
            epochs=5,
            batch_size=32,
            eval_every=1,
            fit_options={"early_stopping": False},
        ),
        Preset(
            "digits",
            "the demo: 64 -> 64 ReLU -> 10 on scikit-learn's 8x8 digits, Adam",
            "digits",
            lambda seed, lr: (
                NeuralNetwork(
                    [
                        Dense(64, ReLU(), weight_init="he"),
                        Dense(10, Linear(), weight_init="glorot"),
                    ],
                    SoftmaxCrossEntropy(),
                    seed=seed,
                ),
                Adam(_lr(lr, 0.003)),
            ),
            epochs=30,
            batch_size=32,
            eval_every=5,
            fit_options={"early_stopping": False},
        ),
    ]
}
