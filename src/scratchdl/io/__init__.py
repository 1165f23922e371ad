"""Model files (safetensors + JSON architecture) and checkpoints; nothing is ever unpickled."""

from scratchdl.io.model import (
    ModelFormatError,
    atomic_write,
    load,
    load_weights,
    load_with_metadata,
    register,
    save,
)

__all__ = [
    "ModelFormatError",
    "atomic_write",
    "load",
    "load_weights",
    "load_with_metadata",
    "register",
    "save",
]
