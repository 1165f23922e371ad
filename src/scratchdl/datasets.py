"""``scratchdl.datasets``: the dataset loaders (an alias of `scratchdl.data.datasets`)."""

from scratchdl.data.datasets import (
    BOSTON_FEATURES,
    DataFileError,
    DownloadError,
    cache_dir,
    find_file,
    load_boston,
    load_diabetes,
    load_digits,
    load_fashion_mnist,
    load_mnist,
    load_text,
    read_idx,
)

__all__ = [
    "BOSTON_FEATURES",
    "DataFileError",
    "DownloadError",
    "cache_dir",
    "find_file",
    "load_boston",
    "load_diabetes",
    "load_digits",
    "load_fashion_mnist",
    "load_mnist",
    "load_text",
    "read_idx",
]
