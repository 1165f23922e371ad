"""Datasets read from their official files, each verified by its sha256.

A file is looked for, in order, in:

1. the `data_dir` argument (the folder that holds the file itself);
2. ``$SCRATCHDL_DATA/<dataset>/`` when the environment variable is set;
3. the per-user cache, ``$XDG_CACHE_HOME/scratchdl/<dataset>/`` (``~/.cache/scratchdl``;
   ``%LOCALAPPDATA%\\scratchdl`` on Windows).

The first place that has the file is used; its sha256 must equal the official one or
`DataFileError` is raised (nothing falls through to another copy). A file found nowhere
is downloaded from the official mirrors into `data_dir` (or the user cache), verified,
and only then put in place (`scratchdl.datasets.download`); with ``download=False`` it raises
`FileNotFoundError` naming every place looked in, and when every mirror fails
`DownloadError` lists each URL and why.

`load_digits` and `load_diabetes` wrap the copies bundled with scikit-learn (the
``demo`` extra), so they need no download at all.
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

from scratchdl.datasets.download import DownloadError
from scratchdl.datasets.download import download as fetch

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


class DataFileError(ValueError):
    """A data file exists but is not what it should be (wrong hash, truncated, malformed)."""


@dataclass(frozen=True)
class RemoteFile:
    """A dataset file: its name, official sha256, the dataset folder it lives in, and the
    mirrors it can be downloaded from (tried in order).

    `convert`, when set, names a conversion from the published file (whose sha256 is
    `source_sha256`) to the stored one, as for Boston, published by scikit-learn with an
    extra first line and quoted column names.
    """

    dataset: str
    name: str
    sha256: str
    urls: tuple[str, ...] = ()
    source_sha256: str | None = None
    convert: str | None = None


MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
FASHION_MIRRORS = (
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)
IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


def _idx_files(
    dataset: str, mirrors: tuple[str, ...], sums: dict[str, str]
) -> dict[str, RemoteFile]:
    return {
        key: RemoteFile(dataset, name, sums[key], tuple(base + name for base in mirrors))
        for key, name in IDX_NAMES.items()
    }


MNIST_FILES = _idx_files(
    "mnist",
    MNIST_MIRRORS,
    {
        "train_images": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train_labels": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "test_images": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "test_labels": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
)
FASHION_MNIST_FILES = _idx_files(
    "fashion-mnist",
    FASHION_MIRRORS,
    {
        "train_images": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train_labels": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "test_images": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "test_labels": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
)

BOSTON_FILE = RemoteFile(
    "boston",
    "boston.csv",
    "79ac716620024011b03c0c44d2bf99069b8173649181926d9109c25475a3804c",
    (
        "https://raw.githubusercontent.com/scikit-learn/scikit-learn/1.1.3/sklearn/datasets/data/boston_house_prices.csv",
    ),
    source_sha256="d98212636026544fc9b9c0f372e5f819872e6fa6fa757ab025efdda22180f2d6",
    convert="sklearn_boston",
)
BOSTON_FEATURES = (
    "CRIM", "ZN", "INDUS", "CHAS", "NOX", "RM", "AGE", "DIS", "RAD", "TAX", "PTRATIO", "B", "LSTAT",
)  # fmt: skip
TEXT_FILES = {
    "tinyshakespeare": RemoteFile(
        "text",
        "tinyshakespeare.txt",
        "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        (
            "https://raw.githubusercontent.com/karpathy/char-rnn/6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e/data/tinyshakespeare/input.txt",
        ),
    ),
    "shakespeare": RemoteFile(
        "text",
        "shakespeare.txt",
        "c879e55c5e318b9d978064e246306e01d60be15a50f64d9438daeaeacbc119e8",
        (
            "https://raw.githubusercontent.com/SethHWeidman/DLFS_code/f4ec4de43049ef990d0f4ddece81223cef3a0e91/06_rnns/input.txt",
        ),
    ),
}


def _sklearn_boston(raw: bytes) -> bytes:
    """scikit-learn's boston_house_prices.csv → boston.csv: drop the first line (row and
    column counts) and the quotes around the column names."""
    lines = raw.decode("ascii").replace("\r\n", "\n").split("\n")
    lines = lines[1:]
    lines[0] = lines[0].replace('"', "")
    return "\n".join(lines).encode("ascii")


CONVERTERS = {"sklearn_boston": _sklearn_boston}


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


def find_file(
    remote: RemoteFile, data_dir: str | os.PathLike | None = None, download: bool = True
) -> Path:
    """The verified path of `remote`, from the first folder that has it.

    When no folder has it and `download` is true, the file is downloaded from its mirrors
    into `data_dir` (or the user cache when `data_dir` is None). `download=False`, or the
    environment variable ``SCRATCHDL_OFFLINE=1``, never touches the network.
    """
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
    if download and os.environ.get("SCRATCHDL_OFFLINE", "") not in ("", "0"):
        download = False
    if download and remote.urls:
        target = (
            Path(data_dir) if data_dir is not None else cache_dir() / remote.dataset
        ) / remote.name
        convert = CONVERTERS[remote.convert] if remote.convert else None
        try:
            return fetch(
                remote.urls,
                target,
                remote.sha256,
                transform=convert,
                source_sha256=remote.source_sha256,
            )
        except DownloadError as err:
            raise DownloadError(
                remote.name, [("(local)", f"not found; looked in {looked}"), *err.attempts]
            ) from None
    raise FileNotFoundError(
        f"{remote.dataset} file {remote.name} not found. Looked in {looked}. "
        f"Pass data_dir=..., or set SCRATCHDL_DATA to a folder with a {remote.dataset}/ subfolder"
        + (
            "."
            if not remote.urls
            else ", or allow downloading (download=True, SCRATCHDL_OFFLINE unset)."
        )
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


def _load_idx_set(
    title: str, files: dict[str, RemoteFile], data_dir: str | os.PathLike | None, download: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    arrays = {key: read_idx(find_file(remote, data_dir, download)) for key, remote in files.items()}
    for split, n in (("train", 60000), ("test", 10000)):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.shape != (n, 28, 28) or labels.shape != (n,) or images.dtype != np.uint8:
            raise DataFileError(
                f"{title} {split}: expected {n} uint8 images of 28x28 and {n} labels, "
                f"received {images.shape} {images.dtype} and {labels.shape}"
            )
        if labels.max() > 9:
            raise DataFileError(f"{title} {split}: labels must be 0-9, found {labels.max()}")
    return (
        arrays["train_images"],
        arrays["train_labels"],
        arrays["test_images"],
        arrays["test_labels"],
    )


def load_mnist(
    data_dir: str | os.PathLike | None = None, download: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST as ``(X_train, y_train, X_test, y_test)``: uint8 images (n, 28, 28), uint8 labels.

    Reads the four official IDX gzip files (see the module docstring for where; missing
    files are downloaded unless ``download=False``), verifies their sha256 and their shapes
    (60,000 and 10,000 images of 28x28).
    """
    return _load_idx_set("MNIST", MNIST_FILES, data_dir, download)


def load_fashion_mnist(
    data_dir: str | os.PathLike | None = None, download: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fashion-MNIST, in the same format and with the same file names as MNIST, from the
    ``fashion-mnist`` dataset folder."""
    return _load_idx_set("Fashion-MNIST", FASHION_MNIST_FILES, data_dir, download)


def load_text(
    name: str = "tinyshakespeare", data_dir: str | os.PathLike | None = None, download: bool = True
) -> str:
    """A text corpus as one string: ``"tinyshakespeare"`` (Karpathy's, 1.1 MB) or
    ``"shakespeare"`` (the book's chapter-6 ``input.txt``, 100 kB)."""
    if name not in TEXT_FILES:
        raise ValueError(f"load_text: name must be one of {sorted(TEXT_FILES)}. Received: {name!r}")
    path = find_file(TEXT_FILES[name], data_dir, download)
    return path.read_text(encoding="ascii")


def load_boston(
    data_dir: str | os.PathLike | None = None, download: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The Boston housing data as ``(X, y)``: 506 rows of 13 features, and MEDV (506,).

    Reads ``boston.csv`` (a header row, then comma-separated numbers). The column ``B``
    encodes the proportion of Black residents by town, the reason scikit-learn removed
    this dataset; it is kept only to reproduce the book's chapters 2 and 3.
    """
    path = find_file(BOSTON_FILE, data_dir, download)
    with open(path, encoding="ascii") as f:
        header = f.readline().strip().split(",")
        if tuple(header) != (*BOSTON_FEATURES, "MEDV"):
            raise DataFileError(f"{path}: unexpected header {header}")
        table = np.loadtxt(f, delimiter=",", dtype=np.float64, ndmin=2)
    if table.shape != (506, 14):
        raise DataFileError(f"{path}: expected 506 rows of 14 columns, received {table.shape}")
    return table[:, :13], table[:, 13]


def _sklearn(loader: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn import datasets as sk
    except ImportError:
        raise ImportError(
            f"{loader} reads the copy bundled with scikit-learn; install it with "
            "`pip install 'scratchdl[demo]'` or `pip install scikit-learn`"
        ) from None
    X, y = getattr(sk, loader)(return_X_y=True)
    return np.asarray(X), np.asarray(y)


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits: X (1797, 64) with values 0-16, y (1797,) in 0-9."""
    return _sklearn("load_digits")


def load_diabetes() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled diabetes regression data: X (442, 10), y (442,)."""
    return _sklearn("load_diabetes")
