"""Data: preprocessing (`Standardizer`, `one_hot`, `train_test_split`, `batches`), plus the
dataset loaders of `scratchdl.datasets`, re-exported so that one import serves both."""

from scratchdl.data.preprocessing import Standardizer, batches, one_hot, train_test_split
from scratchdl.datasets import *  # noqa: F403 - the loaders live in scratchdl.datasets
from scratchdl.datasets import __all__ as _datasets_all

__all__ = ["Standardizer", "batches", "one_hot", "train_test_split", *_datasets_all]
