"""How many BLAS threads the training loop uses.

Measured on the 2-core machines here (2026-11-28, OpenBLAS 0.3.31, float32, one
(batch x 784) @ (784 x 89) product plus its weight gradient): two threads took 1.13x,
0.97x and 1.28x the time of one at batches of 1, 4 and 8, but only 0.58x-0.83x at
batches of 16 to 128. So ``"auto"`` uses one thread for batches of at most 8 rows and
leaves BLAS alone otherwise. (An earlier measurement, reported in the issue that asked for
this rule, found one thread faster at batch 60; `bench/mlp.py` times both, so rerun it
before changing this rule.)
The rule is fixed, not timed at run time, because BLAS results can differ in the last bit
between thread counts and the same seed must give the same result. Thread control needs
the optional `threadpoolctl` package; without it every setting behaves like None.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

#: Batches at most this large train with one BLAS thread under ``"auto"``.
AUTO_SINGLE_THREAD_MAX_BATCH = 8


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
