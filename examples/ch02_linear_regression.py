"""Chapter 2 of the book: linear regression and a 13 → 13 → 1 network as plain functions.

Everything is written out with NumPy, as the book's chapter 2 does, before chapter 3
packs it into classes. Same protocol as the book: batches of 23, lr 0.001, the gradient
of the batch's squared errors, summed over the batch.

    python examples/ch02_linear_regression.py [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ch03_boston import boston_split


def init_weights(rng: np.random.Generator, n_in: int, hidden: int | None) -> dict[str, np.ndarray]:
    if hidden is None:
        return {"W": rng.standard_normal((n_in, 1)), "B": rng.standard_normal((1, 1))}
    return {
        "W1": rng.standard_normal((n_in, hidden)),
        "B1": rng.standard_normal((1, hidden)),
        "W2": rng.standard_normal((hidden, 1)),
        "B2": rng.standard_normal((1, 1)),
    }


def forward(X: np.ndarray, w: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    if "W" in w:
        return {"X": X, "P": X @ w["W"] + w["B"]}
    M1 = X @ w["W1"] + w["B1"]
    O1 = 1 / (1 + np.exp(-M1))
    return {"X": X, "O1": O1, "P": O1 @ w["W2"] + w["B2"]}


def gradients(
    info: dict[str, np.ndarray], y: np.ndarray, w: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    dP = -2 * (y - info["P"])  # d(sum of squared errors)/dP, as in the book
    if "W" in w:
        return {"W": info["X"].T @ dP, "B": dP.sum(axis=0, keepdims=True)}
    dO1 = dP @ w["W2"].T
    dM1 = dO1 * info["O1"] * (1 - info["O1"])
    return {
        "W2": info["O1"].T @ dP,
        "B2": dP.sum(axis=0, keepdims=True),
        "W1": info["X"].T @ dM1,
        "B1": dM1.sum(axis=0, keepdims=True),
    }


def train(X, y, hidden, n_iter, lr=0.001, batch_size=23, seed=180708) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    w = init_weights(rng, X.shape[1], hidden)
    start, order = X.shape[0], None
    for _ in range(n_iter):
        if start >= X.shape[0]:
            order, start = rng.permutation(X.shape[0]), 0
        idx = order[start : start + batch_size]
        start += batch_size
        info = forward(X[idx], w)
        for key, grad in gradients(info, y[idx], w).items():
            w[key] -= lr * grad
    return w


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    X_train, X_test, y_train, y_test = boston_split(args.data_dir)
    for name, hidden, n_iter, book in (
        ("linear regression", None, 1000, (3.5644, 5.0497)),
        ("13 -> 13 -> 1 network", 13, 10000, (2.5951, 3.8851)),
    ):
        maes, rmses = [], []
        for seed in range(9):
            w = train(X_train, y_train, hidden, n_iter, seed=seed)
            error = forward(X_test, w)["P"] - y_test
            maes.append(np.mean(np.abs(error)))
            rmses.append(np.sqrt(np.mean(error**2)))
        print(
            f"{name:<22} book MAE {book[0]:.4f} RMSE {book[1]:.4f} | ours, median of 9 seeds: "
            f"MAE {np.median(maes):.4f} RMSE {np.median(rmses):.4f}"
        )


if __name__ == "__main__":
    main()
