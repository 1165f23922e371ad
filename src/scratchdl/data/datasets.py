"""Datasets read from their official files, each verified by its sha256.

A file is looked for, in order, in:

1. the `data_dir` argument (the folder that holds the file itself);
2. ``$SCRATCHDL_DATA/<dataset>/`` when the environment variable is set;
3. the per-user cache, ``$XDG_CACHE_HOME/scratchdl/<dataset>/`` (``~/.cache/scratchdl``;
   ``%LOCALAPPDATA%\\scratchdl`` on Windows).

The first place that has the file is used; its sha256 must equal the official one or
`DataFileError` is raised (nothing falls through to another copy). A file found nowhere
raises `FileNotFoundError` naming every place looked in.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "BOSTON_FEATURES",
    "DataFileError",
    "cache_dir",
    "find_file",
    "load_boston",
    "load_mnist",
    "read_idx",
    "sha256_of",
]


class DataFileError(ValueError):
    """A data file exists but is not what it should be (wrong hash, truncated, malformed)."""


@dataclass(frozen=True)
class RemoteFile:
    """A dataset file: its name, official sha256, and the dataset folder it lives in."""

    dataset: str
    name: str
    sha256: str


MNIST_FILES = {
    "train_images": RemoteFile(
        "mnist",
        "train-images-idx3-ubyte.gz",
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    ),
    "train_labels": RemoteFile(
        "mnist",
        "train-labels-idx1-ubyte.gz",
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    ),
    "test_images": RemoteFile(
        "mnist",
        "t10k-images-idx3-ubyte.gz",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    ),
    "test_labels": RemoteFile(
        "mnist",
        "t10k-labels-idx1-ubyte.gz",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    ),
}

BOSTON_FILE = RemoteFile(
    "boston", "boston.csv", "79ac716620024011b03c0c44d2bf99069b8173649181926d9109c25475a3804c"
)
BOSTON_FEATURES = (
    "CRIM", "ZN", "INDUS", "CHAS", "NOX", "RM", "AGE", "DIS", "RAD", "TAX", "PTRATIO", "B", "LSTAT",
)  # fmt: skip


def cache_dir() -> Path:
    """The per-user cache folder for datasets."""
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "scratchdl"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "scratchdl"


def candidate_dirs(
    dataset: str, data_dir: str | os.PathLike | None = None
) -> list[tuple[str, Path]]:
    """The folders searched for `dataset`'s files, in order, each with a label."""
    places: list[tuple[str, Path]] = []
    if data_dir is not None:
        places.append(("data_dir", Path(data_dir)))
    env = os.environ.get("SCRATCHDL_DATA")
    if env:
        places.append(("$SCRATCHDL_DATA", Path(env) / dataset))
    places.append(("user cache", cache_dir() / dataset))
    return places


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def find_file(remote: RemoteFile, data_dir: str | os.PathLike | None = None) -> Path:
    """The verified path of `remote`, from the first folder that has it."""
    places = candidate_dirs(remote.dataset, data_dir)
    for _, folder in places:
        path = folder / remote.name
        if path.is_file():
            actual = sha256_of(path)
            if actual != remote.sha256:
                raise DataFileError(
                    f"{path}: sha256 is {actual}, expected the official {remote.sha256}. "
                    "The file is corrupt, truncated or a different version; delete or replace it."
                )
            return path
    looked = "; ".join(f"{label}: {folder / remote.name}" for label, folder in places)
    raise FileNotFoundError(
        f"{remote.dataset} file {remote.name} not found. Looked in {looked}. "
        f"Pass data_dir=..., or set SCRATCHDL_DATA to a folder with a {remote.dataset}/ subfolder."
    )


IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse an IDX file (gzip-compressed or not) strictly.

    Checks the magic number (two zero bytes, a known type code, 1 to 4 dimensions) and
    that the data is exactly as long as the dimensions say; raises `DataFileError`
    otherwise.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise DataFileError(f"{path}: not a readable gzip file ({err})") from None
    if len(raw) < 4:
        raise DataFileError(f"{path}: {len(raw)} bytes is too short for an IDX header")
    zero, type_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or type_code not in IDX_DTYPES or not 1 <= ndim <= 4:
        raise DataFileError(
            f"{path}: bad IDX magic number {raw[:4].hex()} (expected 0000 + type 08..0e + 1..4 dims)"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFileError(f"{path}: truncated IDX header ({len(raw)} bytes, need {header})")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(IDX_DTYPES[type_code])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataFileError(
            f"{path}: IDX dimensions {dims} need {expected} data bytes, file has {len(raw) - header}"
        )
    return (
        np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))
    )


def load_mnist(
    data_dir: str | os.PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST as ``(X_train, y_train, X_test, y_test)``: uint8 images (n, 28, 28), uint8 labels.

    Reads the four official IDX gzip files (see the module docstring for where), verifies
    their sha256 and their shapes (60,000 and 10,000 images of 28x28).
    """
    arrays = {}
    for key, remote in MNIST_FILES.items():
        arrays[key] = read_idx(find_file(remote, data_dir))
    for split, n in (("train", 60000), ("test", 10000)):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.shape != (n, 28, 28) or labels.shape != (n,) or images.dtype != np.uint8:
            raise DataFileError(
                f"MNIST {split}: expected {n} uint8 images of 28x28 and {n} labels, "
                f"received {images.shape} {images.dtype} and {labels.shape}"
            )
    return (
        arrays["train_images"],
        arrays["train_labels"],
        arrays["test_images"],
        arrays["test_labels"],
    )


def load_boston(data_dir: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The Boston housing data as ``(X, y)``: 506 rows of 13 features, and MEDV (506,).

    Reads ``boston.csv`` (a header row, then comma-separated numbers). The column ``B``
    encodes the proportion of Black residents by town, the reason scikit-learn removed
    this dataset; it is kept only to reproduce the book's chapters 2 and 3.
    """
    path = find_file(BOSTON_FILE, data_dir)
    with open(path, encoding="ascii") as f:
        header = f.readline().strip().split(",")
        if tuple(header) != (*BOSTON_FEATURES, "MEDV"):
            raise DataFileError(f"{path}: unexpected header {header}")
        table = np.loadtxt(f, delimiter=",", dtype=np.float64, ndmin=2)
    if table.shape != (506, 14):
        raise DataFileError(f"{path}: expected 506 rows of 14 columns, received {table.shape}")
    return table[:, :13], table[:, 13]
