"""Shared by the benchmarks: interleaved timing and a line describing the machine."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_info


def interleaved(
    configs: dict[str, Callable[[], object]], repeats: int
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Run every configuration once per round, `repeats` rounds, so that machine noise spreads
    over all of them; returns (median seconds, all seconds) per configuration."""
    times: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(repeats):
        for name, fn in configs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}, times


def machine() -> str:
    """Date, CPU, cores, NumPy and its BLAS."""
    blas = ", ".join(
        f"{p['internal_api']} {p['version']}" for p in threadpool_info() if p["user_api"] == "blas"
    )
    return f"{time.strftime('%Y-%m-%d')} | {platform.machine()}, {os.cpu_count()} cores | numpy {np.__version__} ({blas})"
