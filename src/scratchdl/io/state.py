"""State dicts to files and back: arrays become safetensors tensors, the rest JSON.

A state dict (`NeuralNetwork.state_dict()`, `Optimizer.state_dict()`, `Trainer.state_dict()`,
a callback's) is a tree of dicts and lists whose leaves are NumPy arrays or JSON values.
`flatten` stores each array as a tensor named by its path (``optimizer.state.layers.1.weights.m``)
and leaves ``{"__tensor__": name}`` in its place in the JSON tree; `unflatten` puts the
tensors back. `atomic_write` writes any file so that a crash leaves the old one intact.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from scratchdl import backend
from scratchdl.io.safetensors import ModelFormatError

__all__ = ["TENSOR", "atomic_write", "flatten", "unflatten"]

#: The key that marks a tensor reference in the JSON tree.
TENSOR = "__tensor__"


def flatten(state: Any, prefix: str = "") -> tuple[dict[str, np.ndarray], Any]:
    """``(tensors, tree)``: every array of `state` by its dotted path, and the JSON tree."""
    tensors: dict[str, np.ndarray] = {}

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, np.ndarray) or backend.is_array(value):
            tensors[path] = backend.to_numpy(value)  # from any backend, to the host
            return {TENSOR: path}
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise TypeError(f"state keys must be strings; {path or 'state'} has {key!r}")
                out[key] = walk(item, f"{path}.{key}" if path else key)
            return out
        if isinstance(value, (list, tuple)):
            return [walk(item, f"{path}.{i}" if path else str(i)) for i, item in enumerate(value)]
        if isinstance(value, np.generic):
            return value.item()
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise TypeError(
            f"state value at {path or 'state'} has type {type(value).__name__}; "
            "a state dict holds arrays, numbers, strings, lists and dicts"
        )

    return tensors, walk(state, prefix)


def unflatten(tree: Any, tensors: dict[str, np.ndarray], where: str = "file") -> Any:
    """The state `flatten` produced: `tree` with its tensor references replaced."""

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {TENSOR}:
                name = value[TENSOR]
                if not isinstance(name, str) or name not in tensors:
                    raise ModelFormatError(
                        f"{where}: refers to a tensor {str(name)[:80]!r} it lacks"
                    )
                return tensors[name]
            return {key: walk(item) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    return walk(tree)


def to_json(tree: Any) -> str:
    """`tree` as JSON text (`flatten` output); floats keep every bit (repr round-trips)."""
    return json.dumps(tree, allow_nan=True)


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, flush and fsync it, then rename it
    over `path`. A failure leaves any previous file untouched and no temporary file.

    A read-only `path` is refused (`PermissionError`), not replaced; an existing file keeps
    its permission bits; a symbolic link is followed, so the file it points to is written;
    temporary files left by a writer that was killed are removed; errors name `path`."""
    path = Path(path)
    if path.is_symlink():
        path = path.resolve()
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write {path}: the folder {folder} does not exist")
    mode = None
    if path.exists():
        if path.is_dir():
            raise IsADirectoryError(f"cannot write {path}: it is a folder")
        mode = path.stat().st_mode & 0o7777
        if not mode & 0o222 or not os.access(path, os.W_OK):  # read-only, even for root
            raise PermissionError(f"{path} is read-only; it was not replaced")
    _remove_stale_temporaries(folder, path.name)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as err:
        raise OSError(err.errno, f"cannot write {path}: {err.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


#: A temporary file older than this (seconds) is a killed writer's, not a running one's.
STALE_AFTER = 3600.0


def _remove_stale_temporaries(folder: Path, name: str) -> None:
    import time

    now = time.time()
    for leftover in folder.glob(f".{name}.*.tmp"):
        try:
            if now - leftover.stat().st_mtime > STALE_AFTER:
                leftover.unlink()
        except OSError:
            pass  # another process removed or holds it; not ours to fight over
