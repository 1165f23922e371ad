"""Datasets: loaders that read the official files (verified by sha256) and download them.

The one home of the loaders; `scratchdl.data` (datasets and preprocessing) and the top level
re-export them.
"""

from scratchdl.datasets import loaders
from scratchdl.datasets.loaders import *  # noqa: F403 - their __all__ is the public list

__all__ = list(loaders.__all__)
