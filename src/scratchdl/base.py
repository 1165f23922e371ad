"""The book's module path ``lincoln.base``: `Operation` and `ParamOperation`.

Their home is `scratchdl.core`; this module exists for the book's import paths.
"""

from scratchdl.core import Operation, ParamOperation

__all__ = ["Operation", "ParamOperation"]
