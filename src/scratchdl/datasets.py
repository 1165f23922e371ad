"""``scratchdl.datasets``: the dataset loaders (an alias of `scratchdl.data.datasets`)."""

from scratchdl.data.datasets import (
    BOSTON_FEATURES,
    DataFileError,
    cache_dir,
    find_file,
    load_boston,
    load_mnist,
    read_idx,
)

__all__ = [
    "BOSTON_FEATURES",
    "DataFileError",
    "cache_dir",
    "find_file",
    "load_boston",
    "load_mnist",
    "read_idx",
]
