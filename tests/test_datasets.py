import gzip
import hashlib
import struct

import numpy as np
import pytest

from scratchdl.datasets import loaders as datasets
from scratchdl.datasets.loaders import (
    DataFileError,
    RemoteFile,
    find_file,
    load_boston,
    load_mnist,
    read_idx,
)
from tests.conftest import require_data


def idx_bytes(array: np.ndarray) -> bytes:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}
    header = struct.pack(">HBB", 0, codes[array.dtype], array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    return header + array.tobytes()


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No SCRATCHDL_DATA, and a cache folder inside tmp_path."""
    monkeypatch.delenv("SCRATCHDL_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def put(folder, name, content: bytes):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(content)
    return RemoteFile("toy", name, hashlib.sha256(content).hexdigest())


def test_lookup_order_data_dir_then_env_then_cache(isolated, monkeypatch):
    cache = isolated / "cache" / "scratchdl" / "toy"
    env = isolated / "env"
    explicit = isolated / "explicit"
    remote = put(cache, "f.bin", b"same bytes")
    put(env / "toy", "f.bin", b"same bytes")
    put(explicit, "f.bin", b"same bytes")
    assert find_file(remote) == cache / "f.bin"
    monkeypatch.setenv("SCRATCHDL_DATA", str(env))
    assert find_file(remote) == env / "toy" / "f.bin"
    assert find_file(remote, data_dir=explicit) == explicit / "f.bin"


def test_missing_file_lists_every_place(isolated, monkeypatch):
    monkeypatch.setenv("SCRATCHDL_DATA", str(isolated / "env"))
    remote = RemoteFile("toy", "nothing.bin", "0" * 64)
    with pytest.raises(FileNotFoundError) as info:
        find_file(remote, data_dir=isolated / "mine")
    message = str(info.value)
    for place in (isolated / "mine" / "nothing.bin", isolated / "env" / "toy" / "nothing.bin",
                  isolated / "cache" / "scratchdl" / "toy" / "nothing.bin"):  # fmt: skip
        assert str(place) in message


def test_wrong_hash_is_rejected_not_skipped(isolated):
    remote = put(isolated / "a", "f.bin", b"good")
    (isolated / "a" / "f.bin").write_bytes(b"evil")
    with pytest.raises(DataFileError, match=r"sha256 is .* expected the official"):
        find_file(remote, data_dir=isolated / "a")


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trip(tmp_path, compress):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = idx_bytes(images)
    path = tmp_path / "x.idx"
    path.write_bytes(gzip.compress(raw) if compress else raw)
    np.testing.assert_array_equal(read_idx(path), images)
    ints = np.array([1, -2, 300], dtype=">i4")
    path.write_bytes(idx_bytes(ints))
    np.testing.assert_array_equal(read_idx(path), [1, -2, 300])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda raw: raw[:-1], "need 24 data bytes, file has 23"),
        (lambda raw: raw + b"\0", "need 24 data bytes, file has 25"),
        (lambda raw: raw[:10], "truncated IDX header"),
        (lambda raw: raw[:3], "too short"),
        (lambda raw: b"\x01" + raw[1:], "bad IDX magic"),
        (lambda raw: raw[:2] + b"\x07" + raw[3:], "bad IDX magic"),
        (lambda raw: gzip.compress(raw)[:-8], "not a readable gzip file"),
        (lambda raw: b"\x1f\x8b" + b"garbage" * 5, "not a readable gzip file"),
    ],
)
def test_read_idx_rejects_bad_files(tmp_path, mutate, message):
    raw = idx_bytes(np.zeros((2, 3, 4), dtype=np.uint8))
    path = tmp_path / "bad.idx"
    path.write_bytes(mutate(raw))
    with pytest.raises(DataFileError, match=message):
        read_idx(path)


def test_load_mnist_checks_shapes_of_verified_files(isolated, monkeypatch):
    """Files whose hash matches but whose contents are not MNIST's shapes are rejected."""
    folder = isolated / "fake"
    fakes = {}
    for key, remote in datasets.MNIST_FILES.items():
        n = 5
        array = np.zeros((n, 28, 28) if "images" in key else (n,), dtype=np.uint8)
        content = gzip.compress(idx_bytes(array))
        fakes[key] = put(folder, remote.name, content)
    monkeypatch.setattr(datasets, "MNIST_FILES", fakes)
    with pytest.raises(DataFileError, match="expected 60000 uint8 images of 28x28"):
        load_mnist(folder)


def test_load_mnist_real_files():
    base = require_data("mnist", "train-images-idx3-ubyte.gz")
    X_train, y_train, X_test, y_test = load_mnist(base / "mnist")
    assert X_train.shape == (60000, 28, 28) and X_test.shape == (10000, 28, 28)
    assert X_train.dtype == np.uint8 and y_train.dtype == np.uint8
    assert list(y_train[:10]) == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert list(y_test[:10]) == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert abs(X_train.mean() / 255 - 0.1307) < 1e-4


def test_load_boston_real_file():
    base = require_data("boston", "boston.csv")
    X, y = load_boston(base / "boston")
    assert X.shape == (506, 13) and y.shape == (506,)
    assert X[0, 0] == 0.00632 and abs(y.mean() - 22.532806) < 1e-6
