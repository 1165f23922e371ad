"""Downloading, against a local HTTP server on 127.0.0.1 (no test reaches the internet)."""

import gzip
import hashlib
import http.server
import struct
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest

from scratchdl.datasets import loaders as datasets
from scratchdl.datasets.download import DownloadError, _NoDowngrade, download
from scratchdl.datasets.loaders import RemoteFile, find_file, load_mnist


class Server:
    """Serves `files` (path -> bytes); '/truncated/...' promises more bytes than it sends."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.hits: dict[str, int] = {}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path.startswith("/truncated/"):
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.delenv("SCRATCHDL_DATA", raising=False)
    monkeypatch.delenv("SCRATCHDL_OFFLINE", raising=False)  # these tests download from 127.0.0.1
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


GOOD = b"the real file\n" * 100
SHA = hashlib.sha256(GOOD).hexdigest()


def test_download_caches_and_does_not_fetch_twice(server, isolated):
    server.files["/a/data.bin"] = GOOD
    remote = RemoteFile("toy", "data.bin", SHA, (f"{server.url}/a/data.bin",))
    path = find_file(remote)
    assert path == isolated / "cache" / "scratchdl" / "toy" / "data.bin"
    assert path.read_bytes() == GOOD
    assert find_file(remote) == path
    assert server.hits == {"/a/data.bin": 1}
    assert [p.name for p in path.parent.iterdir()] == ["data.bin"]  # no temporary files left


def test_corrupt_mirror_is_rejected_and_the_next_one_used(server, isolated):
    server.files["/bad/data.bin"] = GOOD[:-1] + b"X"
    server.files["/good/data.bin"] = GOOD
    remote = RemoteFile(
        "toy", "data.bin", SHA, (f"{server.url}/bad/data.bin", f"{server.url}/good/data.bin")
    )
    path = find_file(remote, data_dir=isolated / "mine")
    assert path == isolated / "mine" / "data.bin" and path.read_bytes() == GOOD
    assert server.hits == {"/bad/data.bin": 1, "/good/data.bin": 1}


def test_interrupted_transfer_leaves_no_file(server, isolated):
    server.files["/truncated/data.bin"] = GOOD
    remote = RemoteFile(
        "toy", "data.bin", SHA, (f"{server.url}/truncated/data.bin", f"{server.url}/missing.bin")
    )
    with pytest.raises(DownloadError) as info:
        find_file(remote, data_dir=isolated / "mine")
    assert not (isolated / "mine" / "data.bin").exists()
    assert list((isolated / "mine").iterdir()) == []  # no .part file either
    message = str(info.value)
    assert f"{server.url}/truncated/data.bin" in message and f"{server.url}/missing.bin" in message
    assert "404" in message
    assert "looked in" in message


def test_download_false_never_touches_the_network(server, isolated):
    server.files["/a/data.bin"] = GOOD
    remote = RemoteFile("toy", "data.bin", SHA, (f"{server.url}/a/data.bin",))
    with pytest.raises(FileNotFoundError, match="not found"):
        find_file(remote, download=False)
    assert server.hits == {}


def test_offline_environment_variable_never_touches_the_network(server, isolated, monkeypatch):
    server.files["/a/data.bin"] = GOOD
    remote = RemoteFile("toy", "data.bin", SHA, (f"{server.url}/a/data.bin",))
    monkeypatch.setenv("SCRATCHDL_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="SCRATCHDL_OFFLINE"):
        find_file(remote)
    assert server.hits == {}
    monkeypatch.setenv("SCRATCHDL_OFFLINE", "0")
    assert find_file(remote).read_bytes() == GOOD


def test_plain_http_is_refused_except_on_loopback(tmp_path):
    with pytest.raises(DownloadError, match="only https URLs are allowed"):
        download(["http://example.invalid/data.bin"], tmp_path / "data.bin", SHA)
    with pytest.raises(DownloadError, match="only https"):
        download(["ftp://example.invalid/data.bin"], tmp_path / "data.bin", SHA)


def test_redirect_from_https_to_http_is_refused():
    handler = _NoDowngrade()
    request = urllib.request.Request("https://example.invalid/data.bin")
    with pytest.raises(urllib.error.URLError, match="refused redirect from https"):
        handler.redirect_request(request, None, 302, "Found", {}, "http://example.invalid/data.bin")


def test_converted_download(server, isolated):
    """Boston is published by scikit-learn with a count line and quoted names."""
    stored = b"A,B\n1,2\n"
    published = b'2,2\n"A","B"\n1,2\n'
    server.files["/boston.csv"] = published
    remote = RemoteFile(
        "toy", "b.csv", hashlib.sha256(stored).hexdigest(), (f"{server.url}/boston.csv",),
        source_sha256=hashlib.sha256(published).hexdigest(), convert="sklearn_boston",
    )  # fmt: skip
    assert find_file(remote).read_bytes() == stored


def idx(array):
    return gzip.compress(
        struct.pack(">HBB", 0, 8, array.ndim)
        + struct.pack(f">{array.ndim}I", *array.shape)
        + array.tobytes()
    )


def test_load_mnist_downloads_every_file(server, isolated, monkeypatch):
    files = {}
    for key, name in datasets.IDX_NAMES.items():
        n = 60000 if key.startswith("train") else 10000
        shape = (n, 28, 28) if key.endswith("images") else (n,)
        content = idx(np.full(shape, 3, dtype=np.uint8))
        server.files[f"/mnist/{name}"] = content
        files[key] = RemoteFile(
            "mnist", name, hashlib.sha256(content).hexdigest(), (f"{server.url}/mnist/{name}",)
        )
    monkeypatch.setattr(datasets, "MNIST_FILES", files)
    X_train, _, _, y_test = load_mnist()
    assert X_train.shape == (60000, 28, 28) and y_test.shape == (10000,)
    assert len(server.hits) == 4
    load_mnist()
    assert sum(server.hits.values()) == 4
