"""Reading and writing the safetensors format, with no dependency and no trust in the file.

Layout: an 8-byte little-endian header length N, N bytes of JSON, then the tensor bytes.
The JSON maps tensor names to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets
into the byte buffer after the header) and may hold ``"__metadata__"``, a str -> str map.
Files written here are readable by the `safetensors` package (and so by PyTorch).

`read` validates everything before it allocates anything: the header length against the
file size and a cap, the JSON's structure, every dtype, shape and offset (in Python
integers, so a forged 100000 x 100000 shape cannot overflow), and that the tensors tile
the buffer exactly. Any problem raises `ModelFormatError`, and nothing in the file is ever
executed.
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["HEADER_CAP", "ModelFormatError", "read", "write_bytes"]

#: The largest JSON header accepted (a model's architecture and tensor table).
HEADER_CAP = 16 * 1024 * 1024

DTYPES = {
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "I64": np.dtype("<i8"),
    "U8": np.dtype("u1"),
}
CODES = {dtype: code for code, dtype in DTYPES.items()}


class ModelFormatError(ValueError):
    """A model or checkpoint file is corrupt, truncated, hostile or does not fit the model."""


def write_bytes(tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> bytes:
    """The safetensors encoding of `tensors` (stored little-endian, C order)."""
    header: dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    chunks = []
    offset = 0
    for name, array in tensors.items():
        dtype = np.dtype(array.dtype).newbyteorder("<") if array.dtype.itemsize > 1 else array.dtype
        if dtype not in CODES:
            raise TypeError(f"safetensors: tensor {name!r} has unsupported dtype {array.dtype}")
        data = np.ascontiguousarray(array, dtype=dtype).tobytes()
        header[name] = {
            "dtype": CODES[dtype],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)  # align the data to 8 bytes, as the reference writer does
    return struct.pack("<Q", len(encoded)) + encoded + b"".join(chunks)


def read(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """``(tensors, metadata)`` from a safetensors file, validated (see the module docstring)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise ModelFormatError(
                    f"{path}: {size} bytes is too short for a safetensors file (not a model file?)"
                )
            (header_len,) = struct.unpack("<Q", head)
            if header_len > HEADER_CAP:
                raise ModelFormatError(
                    f"{path}: header length {header_len} exceeds the cap of {HEADER_CAP} bytes (not a model file?)"
                )
            if header_len > size - 8:
                raise ModelFormatError(
                    f"{path}: header length {header_len} is beyond the end of the {size}-byte file (truncated?)"
                )
            header_bytes = f.read(header_len)
            specs, metadata = _parse_header(path, header_bytes)
            buffer_len = size - 8 - header_len
            _check_layout(path, specs, buffer_len)
            buffer = f.read(buffer_len)
    except OSError as err:
        raise ModelFormatError(f"{path}: cannot read ({err.strerror or err})") from None
    if len(buffer) != buffer_len:
        raise ModelFormatError(f"{path}: file changed while reading")
    tensors = {}
    for name, (dtype, shape, begin, _) in specs.items():
        array = np.frombuffer(buffer, dtype=dtype, count=math.prod(shape), offset=begin).reshape(
            shape
        )
        tensors[name] = array.astype(dtype.newbyteorder("="), copy=True)
    return tensors, metadata


def _parse_header(
    path: Path, raw: bytes
) -> tuple[dict[str, tuple[np.dtype, tuple[int, ...], int, int]], dict[str, str]]:
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ModelFormatError(f"{path}: header is not valid JSON ({err})") from None
    if not isinstance(header, dict):
        raise ModelFormatError(
            f"{path}: header must be a JSON object, found {type(header).__name__}"
        )
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise ModelFormatError(f"{path}: __metadata__ must map strings to strings")
    specs = {}
    for name, spec in header.items():
        if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data_offsets"}:
            raise ModelFormatError(
                f"{path}: tensor {name!r} must have exactly dtype, shape and data_offsets"
            )
        dtype = DTYPES.get(spec["dtype"]) if isinstance(spec["dtype"], str) else None
        if dtype is None:
            raise ModelFormatError(
                f"{path}: tensor {name!r} has unsupported dtype {spec['dtype']!r} (expected one of {sorted(DTYPES)})"
            )
        shape, offsets = spec["shape"], spec["data_offsets"]
        if not isinstance(shape, list) or len(shape) > 8 or not all(_is_count(d) for d in shape):
            raise ModelFormatError(f"{path}: tensor {name!r} has an invalid shape {shape!r}")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(_is_count(o) for o in offsets)
        ):
            raise ModelFormatError(f"{path}: tensor {name!r} has invalid data_offsets {offsets!r}")
        specs[name] = (dtype, tuple(shape), offsets[0], offsets[1])
    return specs, metadata


def _check_layout(
    path: Path, specs: dict[str, tuple[np.dtype, tuple[int, ...], int, int]], buffer_len: int
) -> None:
    """Every tensor's byte range matches its shape, and the ranges tile the buffer exactly."""
    expected_start = 0
    for name, (dtype, shape, begin, end) in sorted(
        specs.items(), key=lambda item: (item[1][2], item[1][3])
    ):
        nbytes = math.prod(shape) * dtype.itemsize  # Python ints: no overflow for forged shapes
        if end - begin != nbytes:
            raise ModelFormatError(
                f"{path}: tensor {name!r} declares shape {shape} ({nbytes} bytes) but data_offsets "
                f"[{begin}, {end}] hold {end - begin} bytes"
            )
        if begin != expected_start:
            raise ModelFormatError(
                f"{path}: tensor {name!r} starts at byte {begin}, expected {expected_start} (overlapping or gapped data)"
            )
        expected_start = end
    if expected_start != buffer_len:
        raise ModelFormatError(
            f"{path}: tensors cover {expected_start} bytes but the file holds {buffer_len} after the header (truncated or padded?)"
        )


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**62
