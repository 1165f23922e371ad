"""Model files: the architecture as JSON and the network's state dict as tensors, in one
safetensors file.

    net.save("model.safetensors")
    net = scratchdl.load("model.safetensors")

The JSON (in the file's ``__metadata__``) names every layer, operation and loss by its
registered name (`scratchdl.io.registry`). Tensors are the network's `state_dict()`:
``layers.<i>.<name>`` (``layers.1.weights``, ``layers.2.running_mean``). This module writes
and reads files; building a network from one is `scratchdl.saving`'s job.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from scratchdl._version import __version__
from scratchdl.backend import to_numpy
from scratchdl.io.registry import describe
from scratchdl.io.safetensors import ModelFormatError, read, write_bytes
from scratchdl.io.state import atomic_write

__all__ = ["FORMAT", "FORMAT_VERSION", "check_finite", "model_bytes", "read_model", "save"]

FORMAT = "scratchdl-model"
FORMAT_VERSION = 1


def model_bytes(net: Any, extra_tensors: dict[str, np.ndarray] | None = None,
                extra_metadata: dict[str, str] | None = None) -> bytes:  # fmt: skip
    """The file for a built network: architecture, arrays, and any extra tensors/metadata."""
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "scratchdl_version": __version__,
        "architecture": json.dumps(describe(net)),
        **(extra_metadata or {}),
    }
    arrays = {name: to_numpy(array) for name, array in net.arrays().items()}  # any backend
    return write_bytes({**arrays, **(extra_tensors or {})}, metadata)


def save(net: Any, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> None:
    """Write `net` to `path` (atomically): architecture, dtype, seed and arrays.

    `metadata` adds string entries of your own (e.g. preprocessing statistics) under
    ``user.<key>``; `scratchdl.load_with_metadata` gives them back."""
    user = {f"user.{k}": str(v) for k, v in (metadata or {}).items()}
    atomic_write(path, model_bytes(net, extra_metadata=user))


def read_model(
    path: str | os.PathLike,
) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, str]]:
    """``(architecture, tensors, metadata)`` of a model (or checkpoint) file, with the
    architecture's top-level fields checked. Raises `ModelFormatError`."""
    path = Path(path)
    tensors, metadata = read(path)
    if metadata.get("format") != FORMAT:
        raise ModelFormatError(
            f"{path}: not a scratchdl model file (format {metadata.get('format')!r})"
        )
    if metadata.get("format_version") != str(FORMAT_VERSION):
        raise ModelFormatError(
            f"{path}: format version {metadata.get('format_version')!r} is not supported "
            f"(this is version {FORMAT_VERSION}, scratchdl {__version__}; the file was written by "
            f"scratchdl {metadata.get('scratchdl_version', '?')})"
        )
    try:
        arch = json.loads(metadata["architecture"])
    except (KeyError, json.JSONDecodeError, RecursionError) as err:
        raise ModelFormatError(f"{path}: architecture is missing or not JSON ({err})") from None
    if not isinstance(arch, dict) or not isinstance(arch.get("layers"), list) or not arch["layers"]:
        raise ModelFormatError(f"{path}: architecture must have a non-empty 'layers' list")
    dtype, seed, input_shape = arch.get("dtype"), arch.get("seed"), arch.get("input_shape")
    if dtype not in ("float32", "float64"):
        raise ModelFormatError(f"{path}: dtype must be float32 or float64, found {dtype!r}")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise ModelFormatError(
            f"{path}: seed must be a non-negative integer or null, found {seed!r}"
        )
    if (
        not isinstance(input_shape, list)
        or not 1 <= len(input_shape) <= 8
        or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 < d < 2**31 for d in input_shape
        )
        or math.prod(input_shape) >= 2**40
    ):
        raise ModelFormatError(
            f"{path}: input_shape must be a list of positive integers, found {input_shape!r}"
        )
    return arch, tensors, metadata


def check_finite(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """`ModelFormatError` naming the first array of a file that holds NaN or inf."""
    for key, value in arrays.items():
        if not np.all(np.isfinite(value)):
            raise ModelFormatError(f"{path}: {key} contains non-finite values (NaN or inf)")
