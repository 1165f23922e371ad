"""Plots of training (needs matplotlib: ``pip install 'scratchdl[plot]'``).

Every function returns a matplotlib `Figure` and, given `path`, also saves it as an image;
`graph` (an autograd graph or a network's layers) draws SVG in pure Python and needs no
matplotlib and no graphviz.
Figures are drawn with the Agg canvas directly, never through pyplot, so they work on a
machine with no display and leave no global state behind.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from scratchdl.core import ShapeError
from scratchdl.graph_svg import graph

__all__ = ["confusion_matrix", "graph", "history", "weights"]


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "scratchdl.plot needs matplotlib: `pip install 'scratchdl[plot]'` or `pip install matplotlib`"
        ) from None
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | os.PathLike | None) -> Any:
    if path is not None:
        fig.savefig(path)
    return fig


def history(hist: Any, path: str | os.PathLike | None = None, title: str = "training") -> Any:
    """Loss curves (training per epoch, validation per evaluation) and, when recorded,
    each validation metric, from a `History` (or its ``.history`` dict with ``epoch``)."""
    logs = hist.history
    epochs = np.asarray(hist.epoch) + 1
    val_epochs = np.asarray(hist.val_epoch) + 1
    metrics = [k for k in logs if k.startswith("val_") and k != "val_loss"]
    fig = _figure(5.5 * (1 + bool(metrics)), 4)
    axes = fig.subplots(1, 1 + bool(metrics), squeeze=False)[0]
    ax = axes[0]
    if "loss" in logs:
        ax.plot(epochs, logs["loss"], label="training loss")
    if "val_loss" in logs:
        ax.plot(val_epochs, logs["val_loss"], marker="o", label="validation loss")
    ax.set(xlabel="epoch", ylabel="loss", title=f"{title}: loss")
    ax.grid(alpha=0.3)
    ax.legend()
    if metrics:
        ax = axes[1]
        for key in metrics:
            ax.plot(val_epochs, logs[key], marker="o", label=key.removeprefix("val_"))
        ax.set(xlabel="epoch", ylabel="validation metric", title=f"{title}: validation metrics")
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, path)


def confusion_matrix(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    path: str | os.PathLike | None = None,
    labels: Sequence[str] | None = None,
    title: str = "confusion matrix",
) -> Any:
    """Counts of (true class, predicted class). `y_pred` may be labels or class scores."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_pred.ndim == 2:
        y_pred = y_pred.argmax(axis=1)
    if y_true.ndim == 2:
        y_true = y_true.argmax(axis=1)
    if y_true.shape != y_pred.shape:
        raise ShapeError(
            f"confusion_matrix: y_true {y_true.shape} and y_pred {y_pred.shape} differ"
        )
    n = int(max(y_true.max(), y_pred.max())) + 1 if labels is None else len(labels)
    counts = np.bincount(
        y_true.astype(np.int64) * n + y_pred.astype(np.int64), minlength=n * n
    ).reshape(n, n)
    names = [str(i) for i in range(n)] if labels is None else list(labels)
    fig = _figure(1.2 + 0.55 * n, 0.8 + 0.5 * n)
    ax = fig.subplots()
    image = ax.imshow(counts, cmap="Blues")
    threshold = counts.max() / 2
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if counts[i, j] > threshold else "black")  # fmt: skip
    ax.set(xticks=range(n), yticks=range(n), xticklabels=names, yticklabels=names,
           xlabel="predicted", ylabel="true", title=f"{title} (accuracy {np.trace(counts) / counts.sum():.2%})")  # fmt: skip
    fig.colorbar(image, ax=ax, shrink=0.8)
    return _save(fig, path)


def weights(
    source: Any,
    path: str | os.PathLike | None = None,
    image_shape: tuple[int, int] | None = None,
    max_units: int = 32,
) -> Any:
    """The first layer's weights as images, one per unit (28x28 for MNIST, 8x8 for digits).

    `source` is a network (its first parameter is used) or a (features, units) array.
    `image_shape` defaults to the square whose area is the number of features.
    """
    W = np.asarray(next(source.params()) if hasattr(source, "params") else source, dtype=np.float64)
    if W.ndim != 2:
        raise ShapeError(f"weights: expected a (features, units) matrix, received {W.shape}")
    features, units = W.shape
    if image_shape is None:
        side = round(features**0.5)
        if side * side != features:
            raise ShapeError(
                f"weights: {features} features are not a square image; pass image_shape=(h, w)"
            )
        image_shape = (side, side)
    if image_shape[0] * image_shape[1] != features:
        raise ShapeError(f"weights: image_shape {image_shape} does not hold {features} features")
    shown = min(units, max_units)
    cols = min(8, shown)
    rows = -(-shown // cols)
    fig = _figure(1.3 * cols, 1.3 * rows + 0.4)
    axes = fig.subplots(rows, cols, squeeze=False)
    limit = np.abs(W[:, :shown]).max() or 1.0
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if k < shown:
            ax.imshow(W[:, k].reshape(image_shape), cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.set_title(f"unit {k}", fontsize=7)
    fig.suptitle(f"first-layer weights ({shown} of {units} units; red +, blue -)")
    return _save(fig, path)
