import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

# No test reaches the internet: dataset loaders must not download. The download tests
# serve files on 127.0.0.1 and lift this for themselves.
os.environ["SCRATCHDL_OFFLINE"] = "1"

# A clone beside the shared data folder uses it without SCRATCHDL_DATA being set (the
# README's test command): tell the loaders too, not only `data_dir`, since the book's
# loaders (`mnist.load()`, `load_boston()`) take no folder argument.
_SHARED = REPO.parent / "shared" / "data"
if not os.environ.get("SCRATCHDL_DATA") and _SHARED.is_dir():
    os.environ["SCRATCHDL_DATA"] = str(_SHARED.resolve())


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture
def fast_off():
    """A switch for the compiled kernels (``fast_off(False)`` runs the NumPy reference),
    restored to the environment's setting after the test."""
    from scratchdl import backend

    yield backend.set_fast
    backend.set_fast(os.environ.get("SCRATCHDL_FAST", "1") != "0")


def away_from_zero(x: np.ndarray, margin: float = 0.05) -> np.ndarray:
    """Push values within `margin` of 0 out to ±margin, keeping their sign (avoid kinks)."""
    x = x.copy()
    small = np.abs(x) < margin
    x[small] = np.where(x[small] >= 0, margin, -margin)
    return x


def data_dir() -> Path | None:
    """The shared data folder named by SCRATCHDL_DATA (set above for a clone beside
    ../shared/data), if it exists."""
    value = os.environ.get("SCRATCHDL_DATA")
    if value and Path(value).is_dir():
        return Path(value).resolve()
    return None


def require_data(*parts: str) -> Path:
    """The shared data folder if it holds `parts` (e.g. "mnist", "train-images-idx3-ubyte.gz");
    otherwise skip the test, or fail it when SCRATCHDL_REQUIRE_DATA is set (as in CI)."""
    base = data_dir()
    if base is None or not base.joinpath(*parts).exists():
        if os.environ.get("SCRATCHDL_REQUIRE_DATA"):
            pytest.fail(
                f"SCRATCHDL_REQUIRE_DATA is set but {'/'.join(parts)} is missing from SCRATCHDL_DATA"
            )
        pytest.skip(f"{'/'.join(parts)} not available: set SCRATCHDL_DATA")
    return base
