"""Files: safetensors reading and writing, state dicts to files, the model-file registry.

Nothing is ever unpickled. Building a network from a file is `scratchdl.load`
(`scratchdl.saving`); this package only serialises what it is given.
"""

from scratchdl.io.modelfile import read_model
from scratchdl.io.registry import register
from scratchdl.io.safetensors import ModelFormatError
from scratchdl.io.state import atomic_write

__all__ = ["ModelFormatError", "atomic_write", "read_model", "register"]
