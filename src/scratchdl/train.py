"""The book's module path ``lincoln.train``: the `Trainer`.

Its home is `scratchdl.training`; this module exists for the book's import paths.
"""

from scratchdl.training.trainer import Trainer

__all__ = ["Trainer"]
