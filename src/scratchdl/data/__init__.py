"""Datasets and preprocessing."""

from scratchdl.data.datasets import (
    DataFileError,
    DownloadError,
    load_boston,
    load_diabetes,
    load_digits,
    load_fashion_mnist,
    load_mnist,
    load_text,
    read_idx,
)
from scratchdl.data.preprocessing import Standardizer, batches, one_hot, train_test_split

__all__ = [
    "DataFileError",
    "DownloadError",
    "Standardizer",
    "batches",
    "load_boston",
    "load_diabetes",
    "load_digits",
    "load_fashion_mnist",
    "load_mnist",
    "load_text",
    "one_hot",
    "read_idx",
    "train_test_split",
]
