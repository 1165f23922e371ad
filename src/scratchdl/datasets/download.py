"""Download a file from a list of mirrors, verified by sha256, written atomically.

Only https URLs are fetched (plain http is allowed for loopback addresses, which the tests
use), and a redirect from https to http is refused. Each mirror is tried in order: the
bytes go to a temporary file in the destination folder, the sha256 is checked, and only
then is the file renamed into place. A failed or corrupt transfer deletes the temporary
file and moves on to the next mirror; when every mirror fails, `DownloadError` lists each
URL and why it failed.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["DownloadError", "download"]

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
CHUNK = 1 << 16


class DownloadError(OSError):
    """Every mirror failed. `attempts` holds (url, reason) pairs."""

    def __init__(self, name: str, attempts: list[tuple[str, str]]) -> None:
        self.attempts = attempts
        lines = "; ".join(f"{url}: {reason}" for url, reason in attempts)
        super().__init__(f"could not download {name}: {lines}")


def _allowed(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS)


class _NoDowngrade(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        if urlsplit(req.full_url).scheme == "https" and not urlsplit(newurl).scheme == "https":
            raise urllib.error.URLError(f"refused redirect from https to {newurl}")
        if not _allowed(newurl):
            raise urllib.error.URLError(f"refused redirect to {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_NoDowngrade)


def download(
    urls: Sequence[str],
    destination: Path,
    sha256: str,
    timeout: float = 60.0,
    transform: Callable[[bytes], bytes] | None = None,
    source_sha256: str | None = None,
) -> Path:
    """Fetch the first mirror whose bytes hash to `sha256` and save them at `destination`.

    `transform`, when given, turns the downloaded bytes (which must hash to
    `source_sha256`) into the file to store (which must hash to `sha256`); it is how a
    file published in another layout is converted.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    attempts: list[tuple[str, str]] = []
    for url in urls:
        if not _allowed(url):
            attempts.append((url, "not fetched: only https URLs are allowed"))
            continue
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{destination.name}.", suffix=".part", dir=destination.parent
        )
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                digest = _fetch(url, out, timeout)
                expected = source_sha256 if transform is not None else sha256
                if digest != expected:
                    raise ValueError(f"sha256 {digest} does not match the official {expected}")
            if transform is not None:
                data = transform(tmp.read_bytes())
                actual = hashlib.sha256(data).hexdigest()
                if actual != sha256:
                    raise ValueError(f"converted file has sha256 {actual}, expected {sha256}")
                tmp.write_bytes(data)
            os.replace(tmp, destination)
            return destination
        except (OSError, ValueError, http.client.HTTPException) as err:
            attempts.append((url, str(err) or type(err).__name__))
        finally:
            tmp.unlink(missing_ok=True)
    raise DownloadError(destination.name, attempts)


def _fetch(url: str, out, timeout: float) -> str:  # type: ignore[no-untyped-def]
    """Stream `url` into `out`; return the sha256. Raises on HTTP errors and short reads."""
    digest = hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": "scratchdl"})
    with _OPENER.open(request, timeout=timeout) as response:
        expected_length = response.headers.get("Content-Length")
        received = 0
        while chunk := response.read(CHUNK):
            out.write(chunk)
            digest.update(chunk)
            received += len(chunk)
        if expected_length is not None and received != int(expected_length):
            raise OSError(f"transfer interrupted after {received} of {expected_length} bytes")
    return digest.hexdigest()
