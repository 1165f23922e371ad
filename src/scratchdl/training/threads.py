"""How many BLAS threads the training loop uses.

``"auto"`` (the default) uses one BLAS thread for batches of at most 512 rows and leaves
BLAS alone above that (evaluation runs in batches of 1000). Measured on the 2-core
machines here (2026-12-02, OpenBLAS 0.3.31, float32), with the machine quiet and beside
one busy core (another program spinning):

- a (rows x 784) @ (784 x 256) product, two threads' time / one thread's: 0.83, 0.58,
  0.55, 0.47 at 60, 256, 1000 and 4096 rows when quiet, but 2.03, 1.26, 0.81 and 0.55
  beside the busy core: at training sizes OpenBLAS's threads wait for each other;
- one epoch of the book's MNIST MLP (batch 60) through `Trainer.fit`: one thread 0.61 s
  quiet and 0.58-0.61 s busy; two threads 0.69-0.71 s quiet and 1.65-2.13 s busy;
- the modern small CNN (batch 64, 3,000 images): one thread 1.50 s quiet and 1.45-1.50 s
  busy; two threads 1.31-1.33 s quiet and 2.82-2.84 s busy.

One thread costs the CNN 13% on a quiet machine and saves it a factor of two beside any
other busy program, as on a reader's laptop; pass ``blas_threads=2`` (or None) to use more.
The rule is fixed, not timed at run time, because BLAS results can differ in the last bit
between thread counts and the same seed must give the same result. Thread control needs
the optional `threadpoolctl` package; without it every setting behaves like None.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

#: Batches at most this large train with one BLAS thread under ``"auto"``.
AUTO_SINGLE_THREAD_MAX_BATCH = 512


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


#: the BLAS thread count outside the outermost `limit` block, and how deep the blocks are
_outside: dict[str, int | None] = {"count": None, "depth": 0}


@contextlib.contextmanager
def limit(setting: int | str | None, batch_size: int) -> Iterator[None]:
    """Within the block, BLAS uses the number of threads `choose` gives. "Leave BLAS alone"
    (None) inside another block means the count from before the outermost block: evaluation
    in batches of 1000 inside `fit` gets the BLAS threads that `fit`'s one-thread training
    steps do not use (the modern CNN's 10,000 test images: 0.71 s with two threads, 1.16 s
    with one, measured on 2026-12-03)."""
    count = choose(setting, batch_size)
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        yield
        return
    if _outside["depth"] == 0:
        counts = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
        _outside["count"] = max(counts) if counts else None
    elif count is None:
        count = _outside["count"]
    _outside["depth"] += 1
    try:
        if count is None:
            yield
        else:
            with threadpool_limits(limits=count, user_api="blas"):
                yield
    finally:
        _outside["depth"] -= 1
