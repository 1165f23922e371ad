"""How many BLAS threads the training loop uses.

Small matrix products (a batch of 60 through a layer of 89 units) finish before a second
BLAS thread is worth waking: on the 2-core machines here one thread ran the book's MNIST
MLP about 1.4x faster than two (see bench/mlp.py). ``"auto"`` therefore uses one thread
when the batch is small and leaves BLAS alone otherwise. Thread control needs the optional
`threadpoolctl` package; without it every setting behaves like None.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

#: Batches at most this large train with one BLAS thread under ``"auto"``.
AUTO_SINGLE_THREAD_MAX_BATCH = 256


def check_setting(setting: int | str | None) -> int | str | None:
    """Validate a `blas_threads` setting: ``"auto"``, a positive int, or None."""
    if setting is None or setting == "auto":
        return setting
    if isinstance(setting, bool) or not isinstance(setting, (int, np.integer)) or setting < 1:
        raise ValueError(
            f"blas_threads must be 'auto', a positive integer or None. Received: blas_threads={setting!r}"
        )
    return int(setting)


def choose(setting: int | str | None, batch_size: int) -> int | None:
    """The thread count to impose for `batch_size`, or None to leave BLAS alone."""
    if setting == "auto":
        return 1 if batch_size <= AUTO_SINGLE_THREAD_MAX_BATCH else None
    return setting  # type: ignore[return-value]


@contextlib.contextmanager
def limit(setting: int | str | None, batch_size: int) -> Iterator[None]:
    """Within the block, BLAS uses the number of threads `choose` gives."""
    count = choose(setting, batch_size)
    if count is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=count, user_api="blas"):
        yield
