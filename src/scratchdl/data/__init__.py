"""Datasets and preprocessing."""

from scratchdl.data.datasets import DataFileError, load_boston, load_mnist, read_idx
from scratchdl.data.preprocessing import Standardizer, batches, one_hot, train_test_split

__all__ = [
    "DataFileError",
    "Standardizer",
    "batches",
    "load_boston",
    "load_mnist",
    "one_hot",
    "read_idx",
    "train_test_split",
]
