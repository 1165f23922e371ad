"""Datasets: loaders that read the official files (verified by sha256) and download them.

The one home of the loaders; `scratchdl.data` (datasets and preprocessing) and the top level
re-export them.
"""

from scratchdl.datasets.download import DownloadError
from scratchdl.datasets.loaders import (
    BOSTON_FEATURES,
    DataFileError,
    cache_dir,
    find_file,
    load_boston,
    load_diabetes,
    load_digits,
    load_fashion_mnist,
    load_mnist,
    load_text,
    read_idx,
    sha256_of,
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
    "sha256_of",
]
