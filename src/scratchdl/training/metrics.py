"""Metrics, called as ``metric(y_true, y_pred) -> float`` (scikit-learn's argument order)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from scratchdl.core import ShapeError

__all__ = ["METRICS", "accuracy", "get_metric", "mae", "r2", "rmse"]


def _pair(name: str, y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.ndim == 1 and y_pred.shape == (y_true.shape[0], 1):
        y_true = y_true.reshape(-1, 1)
    if y_true.shape != y_pred.shape:
        raise ShapeError(
            f"{name}: y_true and y_pred must have one shape, received {y_true.shape} and {y_pred.shape}"
        )
    return y_true, y_pred


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error."""
    y_true, y_pred = _pair("mae", y_true, y_pred)
    return float(np.mean(np.abs(y_true - y_pred)))


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Root mean squared error."""
    y_true, y_pred = _pair("rmse", y_true, y_pred)
    return float(np.sqrt(np.mean((y_true - y_pred) ** 2)))


def r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Coefficient of determination, 1 - SS_res / SS_tot (pooled over all outputs)."""
    y_true, y_pred = _pair("r2", y_true, y_pred)
    ss_res = np.sum((y_true - y_pred) ** 2)
    ss_tot = np.sum((y_true - y_true.mean(axis=0)) ** 2)
    return float(1.0 - ss_res / ss_tot) if ss_tot > 0 else float("nan")


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of examples whose highest-scoring class is the true one.

    `y_pred` holds scores (logits or probabilities) with classes on the last axis;
    `y_true` holds class labels or one-hot rows.
    """
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true)
    if y_true.shape == y_pred.shape and y_pred.ndim >= 2:
        y_true = y_true.argmax(axis=-1)
    if y_true.shape != y_pred.shape[:-1]:
        raise ShapeError(
            f"accuracy: y_true must be labels of shape {y_pred.shape[:-1]} or one-hot rows of "
            f"shape {y_pred.shape}, received {y_true.shape}"
        )
    return float(np.mean(y_pred.argmax(axis=-1) == y_true))


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": accuracy,
    "mae": mae,
    "rmse": rmse,
    "r2": r2,
}


def get_metric(spec: str | Callable) -> tuple[str, Callable[[np.ndarray, np.ndarray], float]]:
    """(name, function) for a metric name or a callable ``f(y_true, y_pred)``."""
    if callable(spec):
        return getattr(spec, "__name__", "metric"), spec
    if isinstance(spec, str) and spec in METRICS:
        return spec, METRICS[spec]
    raise ValueError(f"metric must be a callable or one of {sorted(METRICS)}. Received: {spec!r}")
