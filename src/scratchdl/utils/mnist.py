"""The book's ``lincoln.utils.mnist``: ``X_train, y_train, X_test, y_test = mnist.load()``.

The book's version downloaded the files over plain http and read them back from a pickle.
This one reads the official IDX files, found and verified by sha256 as
`scratchdl.datasets.load_mnist` does (the ``data_dir`` argument, ``$SCRATCHDL_DATA/mnist/``,
then the user cache; downloaded from the official https mirrors when missing), and never
unpickles anything. It returns the book's layout: uint8 images as (n, 784) rows and uint8
labels.
"""

from __future__ import annotations

import os

import numpy as np

from scratchdl.datasets.loaders import load_mnist

__all__ = ["init", "load"]


def load(
    data_dir: str | os.PathLike | None = None, download: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(X_train, y_train, X_test, y_test)``: 60,000 and 10,000 images of 784 uint8 pixels,
    and their labels 0-9 (uint8), as the book's `mnist.load()` returns them."""
    X_train, y_train, X_test, y_test = load_mnist(data_dir, download)
    return X_train.reshape(len(X_train), -1), y_train, X_test.reshape(len(X_test), -1), y_test


def init(data_dir: str | os.PathLike | None = None) -> None:
    """The book's one-time set-up (download, then pickle): here it only makes sure the four
    files are present and verified, downloading what is missing. No pickle is written."""
    load(data_dir, download=True)
    print("MNIST files found and verified; mnist.load() reads them (no pickle needed).")
