"""Chapter 3 of the book: Boston housing with scratchdl, over many seeds.

The book's protocol: standardise all 13 features, hold out 30% of the rows for testing
(here by a seeded permutation), train with SGD(lr=0.01) for 50 epochs with batches of 32,
evaluating every 10 epochs. The book printed one run per model; a single run depends on
its random initialisation, so this script reports the median and range over several
seeds, next to the book's figures, and adds a modern model on the same split.

    python examples/ch03_boston.py [--seeds 9] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable

import numpy as np

from scratchdl import (
    SGD,
    Adam,
    CosineDecay,
    Dense,
    EarlyStopping,
    Linear,
    MeanSquaredError,
    NeuralNetwork,
    Sigmoid,
    Tanh,
    Trainer,
    mae,
    rmse,
)
from scratchdl.data import Standardizer, load_boston, train_test_split

SPLIT_SEED = 80718  # the book's random_state for the split (our permutation, not sklearn's)
BOOK = {"linear": (3.52, 5.01), "one hidden layer": (2.60, 4.03), "two hidden layers": (2.45, 3.83)}


def boston_split(data_dir: str | None = None) -> tuple[np.ndarray, ...]:
    X, y = load_boston(data_dir)
    X = Standardizer().fit_transform(X, dtype=np.float64)  # the book scales all rows together
    X_train, X_test, y_train, y_test = train_test_split(
        X, y.reshape(-1, 1), test_size=0.3, seed=SPLIT_SEED
    )
    return X_train, X_test, y_train, y_test


def book_model(name: str, seed: int) -> tuple[NeuralNetwork, Trainer, dict]:
    layers = {
        "linear": [Dense(1, Linear())],
        "one hidden layer": [Dense(13, Sigmoid()), Dense(1, Linear())],
        "two hidden layers": [Dense(13, Sigmoid()), Dense(13, Sigmoid()), Dense(1, Linear())],
    }[name]
    net = NeuralNetwork(layers, MeanSquaredError(), seed=seed)
    trainer = Trainer(net, SGD(lr=0.01))
    return net, trainer, {"epochs": 50, "eval_every": 10, "batch_size": 32}


def modern_model(seed: int) -> tuple[NeuralNetwork, Trainer, dict]:
    """Wider tanh layers with glorot init, Adam with a cosine schedule and weight decay,
    and early stopping that keeps the best weights."""
    net = NeuralNetwork(
        [
            Dense(64, Tanh(), weight_init="glorot"),
            Dense(32, Tanh(), weight_init="glorot"),
            Dense(1, Linear(), weight_init="glorot"),
        ],
        MeanSquaredError(),
        seed=seed,
    )
    trainer = Trainer(net, Adam(lr=0.003, schedule=CosineDecay(1e-4), weight_decay=1e-4))
    return (
        net,
        trainer,
        {
            "epochs": 300,
            "eval_every": 5,
            "batch_size": 16,
            "callbacks": [EarlyStopping(patience=8)],
        },
    )


def score(
    make: Callable[[int], tuple], seed: int, split: tuple[np.ndarray, ...]
) -> tuple[float, float]:
    X_train, X_test, y_train, y_test = split
    net, trainer, fit_args = make(seed)
    # The book's chapter-3 Trainer only reports the validation loss (early stopping comes in
    # chapter 4); the modern model brings its own EarlyStopping callback.
    trainer.fit(
        X_train, y_train, X_test, y_test, seed=seed, verbose=0, early_stopping=False, **fit_args
    )
    prediction = net.predict(X_test)
    return mae(y_test, prediction), rmse(y_test, prediction)


def run(seeds: int = 9, data_dir: str | None = None) -> dict[str, list[tuple[float, float]]]:
    """{model name: [(MAE, RMSE) for each seed]}."""
    split = boston_split(data_dir)
    results = {}
    for name in BOOK:
        results[name] = [
            score(lambda s, n=name: book_model(n, s), seed, split) for seed in range(seeds)
        ]
    results["modern"] = [score(modern_model, seed, split) for seed in range(seeds)]
    return results


def summarise(
    values: list[tuple[float, float]],
) -> tuple[float, float, tuple[float, float], tuple[float, float]]:
    maes, rmses = [v[0] for v in values], [v[1] for v in values]
    return (
        statistics.median(maes),
        statistics.median(rmses),
        (min(maes), max(maes)),
        (min(rmses), max(rmses)),
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=9)
    parser.add_argument("--data-dir", default=None, help="folder holding boston.csv")
    args = parser.parse_args()
    results = run(args.seeds, args.data_dir)
    print(f"Boston housing, test MAE / RMSE, median [range] over {args.seeds} seeds")
    print(f"{'model':<18} {'book MAE':>8} {'book RMSE':>9}   {'our MAE':<22} {'our RMSE':<22}")
    for name, values in results.items():
        med_mae, med_rmse, r_mae, r_rmse = summarise(values)
        book = BOOK.get(name, ("-", "-"))
        print(
            f"{name:<18} {book[0]!s:>8} {book[1]!s:>9}   "
            f"{med_mae:.2f} [{r_mae[0]:.2f}, {r_mae[1]:.2f}]{'':<6} {med_rmse:.2f} [{r_rmse[0]:.2f}, {r_rmse[1]:.2f}]"
        )


if __name__ == "__main__":
    main()
