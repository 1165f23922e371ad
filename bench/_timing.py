"""Shared by the benchmarks: interleaved timing and a line describing the machine."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from threadpoolctl import threadpool_info


def interleaved(
    configs: dict[str, Callable[[], object]], repeats: int, warmup: float = 0.3
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Run every configuration once per round, `repeats` rounds, so that machine noise spreads
    over all of them; returns (median seconds, all seconds) per configuration.

    Before each timed run the same configuration runs untimed for at least `warmup`
    seconds (once at least). Without that a run starts while the previous configuration's
    threads still spin (OpenBLAS threads busy-wait for about 0.1 s after their work, OpenMP
    threads too) and pays for it: measured here, a PyTorch LSTM pass that takes 8 ms after
    itself took 106 ms right after a two-thread NumPy run, and 21 ms after one warm-up run
    of its own. A training loop runs after itself."""
    times: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(repeats):
        for name, fn in configs.items():
            start = time.perf_counter()
            while True:
                fn()
                if time.perf_counter() - start >= warmup:
                    break
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}, times


@contextlib.contextmanager
def busy_core() -> Iterator[None]:
    """Within the block, another process keeps one core busy (a Python loop), as any other
    program on a reader's laptop would."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)  # let it start
        yield
    finally:
        spinner.kill()
        spinner.wait()


def machine() -> str:
    """Date, CPU, cores, NumPy, its BLAS and the kernels that BLAS chose, with a warning line
    when the environment pins OpenBLAS's kernels.

    OpenBLAS picks its kernels for the CPU at load time unless ``OPENBLAS_CORETYPE`` names
    them. Some machines set it (with ``OPENBLAS_L2_SIZE``) for older OpenBLAS builds that
    fail on their processor; pinned to Haswell on an AVX-512 CPU, NumPy's matrix products
    took 1.3-1.5x as long over each benchmark's own products here (1.9x for one
    1000x1000 product). To benchmark what a current NumPy does on the CPU,
    unset both for the one command: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python
    bench/mlp.py``."""
    libraries = [p for p in threadpool_info() if p["user_api"] == "blas"]
    # NumPy's own, when another library (PyTorch's, SciPy's) has loaded one too
    libraries = [p for p in libraries if "numpy" in p.get("filepath", "")] or libraries
    blas = ", ".join(
        f"{p['internal_api']} {p['version']}, {p.get('architecture') or '?'} kernels"
        for p in libraries
    )
    line = f"{time.strftime('%Y-%m-%d')} | {platform.machine()}{cpu_name()}, {os.cpu_count()} cores | numpy {np.__version__} ({blas})"
    pinned = {
        k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ
    }
    if pinned:
        settings = " ".join(f"{k}={v}" for k, v in pinned.items())
        line += (
            f"\nnote: the environment sets {settings}, so OpenBLAS runs the kernels named "
            "above, not the ones it picks for this CPU (see bench/_timing.py: machine)"
        )
    return line


def cpu_name() -> str:
    """`` <model name> (family F, model M)`` from /proc/cpuinfo, or "" where there is none:
    the machines here change between days (one day's figures were half the next day's),
    so each run says which processor it ran on."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            fields = dict(
                line.split(":", 1) for line in f.read().split("\n\n")[0].splitlines() if ":" in line
            )
    except OSError:
        return ""
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    name = fields.get("model name", "")
    if not name:
        return ""
    return f" {name} (family {fields.get('cpu family', '?')}, model {fields.get('model', '?')})"


# --- the GEMM floor: the matrix products of a training step, timed alone -------------------


def step_gemms(layers: list) -> list[tuple[tuple[int, int], tuple[int, int], bool, bool, Any]]:
    """The matrix products one training step makes, read off `layers` after a forward and
    backward pass: ``(a shape, b shape, a transposed, b transposed, dtype)`` for each, with
    the logical shapes of ``a @ b`` and the layouts the operations use (a transposed
    operand is the transpose of a contiguous array, as ``x.T @ g`` is). An operation whose input gradient was not computed
    (the first of a network) contributes no input-gradient product."""
    from scratchdl import ops

    gemms = []
    for layer in layers:
        for op in layer.operations:
            need_dx = getattr(op, "input_grad", None) is not None
            if isinstance(op, ops.WeightMultiply):
                k, n = op.param.shape
                m = int(np.prod(op.input_.shape[:-1]))
                dt = op.param.dtype
                gemms += [((m, k), (k, n), False, False, dt), ((k, m), (m, n), True, False, dt)]
                if need_dx:
                    gemms.append(((m, n), (n, k), False, True, dt))
            elif isinstance(op, ops.Conv2DOperation) and op._cols is None:
                continue  # the direct kernels: no matrix product (see `direct_convolutions`)
            elif isinstance(op, ops.Conv2DOperation):
                f = op.param.shape[0]
                ckk, npix = op._cols.shape
                dt = op.param.dtype
                gemms.append(((f, ckk), (ckk, npix), False, False, dt))
                if ckk > f:  # d filters as (cols grad2dᵀ)ᵀ, as the operation computes it
                    gemms.append(((ckk, npix), (npix, f), False, True, dt))
                else:
                    gemms.append(((f, npix), (npix, ckk), False, True, dt))
                if need_dx:
                    gemms.append(((ckk, f), (f, npix), True, False, dt))
            elif isinstance(op, (ops.RNNOperation, ops.LSTMOperation, ops.GRUOperation)):
                b, t, feat = op.input_.shape
                hidden, gh = op.weights[1].shape
                dt = op.weights[0].dtype
                gemms.append(((b * t, feat), (feat, gh), False, False, dt))  # x W_x
                gemms += [((b, hidden), (hidden, gh), False, False, dt)] * t  # h W_h per step
                gemms += [((hidden, gh), (gh, b), False, True, dt)] * t  # d(h) as W_h dᵀ
                gemms += [((hidden, b * t), (b * t, gh), True, False, dt),  # d W_h
                          ((feat, b * t), (b * t, gh), True, False, dt)]  # d W_x  # fmt: skip
                if need_dx:
                    gemms.append(((b * t, gh), (gh, feat), False, True, dt))
    return gemms


def direct_convolutions(layers: list) -> list[tuple[str, float]]:
    """The convolutions that ran through the direct kernels (``backend.conv2d_direct``) in
    the last step, each with its floating-point operations in that step (forward, filter
    gradient and, when computed, input gradient): they make no matrix product, so the GEMM
    floor leaves them out."""
    from scratchdl import ops

    found = []
    for layer in layers:
        for op in layer.operations:
            if isinstance(op, ops.Conv2DOperation) and op._cols is None:
                f, c, kh, kw = op.param.shape
                n, _, ho, wo = op.output.shape
                passes = 3 if getattr(op, "input_grad", None) is not None else 2
                found.append((repr(op), passes * 2.0 * n * f * c * kh * kw * ho * wo))
    return found


def gemm_flops(gemms: list) -> float:
    """Floating-point operations of `gemms` (2·m·n·k each)."""
    return sum(2.0 * a[0] * a[1] * b[1] for a, b, *_ in gemms)  # logical shapes (m, k) (k, n)


def time_gemms(gemms: list, threads: int, repeats: int = 5, library: str = "numpy") -> float:
    """Median seconds to run `gemms` once each, alone, with `threads` BLAS threads, on
    random arrays of the same shapes, layouts and dtypes. ``library="torch"`` times the
    same products with ``torch`` tensors (PyTorch's BLAS: MKL on x86 wheels), to tell a
    slower matrix library from slower work around it; it raises ImportError without torch."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    pairs = []
    for a, b, ta, tb, dt in gemms:
        x = rng.random(a, dtype=np.float32).astype(dt)
        y = rng.random(b, dtype=np.float32).astype(dt)
        pairs.append(
            (np.ascontiguousarray(x.T).T if ta else x, np.ascontiguousarray(y.T).T if tb else y)
        )
    if library == "torch":
        import torch

        torch.set_num_threads(threads)
        pairs = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in pairs]
    times = []
    with threadpool_limits(threads, user_api="blas"):
        start = time.perf_counter()
        while time.perf_counter() - start < 0.3:  # warm-up, as `interleaved` does
            for x, y in pairs:
                x @ y
        for _ in range(repeats):
            start = time.perf_counter()
            for x, y in pairs:
                x @ y
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def torch_gemm_line(
    gemms: list, threads: int, ours: float, repeats: int = 5, scale: float = 1.0, unit: str = "s"
) -> str:
    """The same products timed in PyTorch beside `ours` (our floor, in seconds, for
    `gemms` times `scale`), or a line saying that torch is not installed."""
    try:
        theirs = time_gemms(gemms, threads, repeats, library="torch") * scale
    except ImportError:
        return "  (the same products in PyTorch: torch is not installed)"
    factor = 1000 if unit == "ms" else 1
    return (
        f"  [{threads}t] the same products in PyTorch take {theirs * factor:.3f} {unit}: "
        f"NumPy's BLAS takes {ours / theirs:.2f}x as long"
    )


def per_operation_split(run: Callable[[], object]) -> dict[str, list[float]]:
    """Seconds in each operation class's forward and backward while `run()` runs."""
    from collections import defaultdict

    from scratchdl import Operation

    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    forward, backward = Operation.forward, Operation.backward

    def timed_forward(self, input_, inference=False):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        out = forward(self, input_, inference)
        totals[type(self).__name__][0] += time.perf_counter() - start
        return out

    def timed_backward(self, output_grad, need_input_grad=True):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        out = backward(self, output_grad, need_input_grad)
        totals[type(self).__name__][1] += time.perf_counter() - start
        return out

    Operation.forward, Operation.backward = timed_forward, timed_backward  # type: ignore[method-assign]
    try:
        run()
    finally:
        Operation.forward, Operation.backward = forward, backward  # type: ignore[method-assign]
    return dict(totals)


def print_split(
    split: dict[str, list[float]], unit: float = 1.0, label: str = "s", whole: float | None = None
) -> None:
    """The split as a table, largest share first; with `whole` (the seconds of the run it
    was measured in), also how much of the run the operations were."""
    total = sum(f + b for f, b in split.values()) or 1.0
    for name, (f, b) in sorted(split.items(), key=lambda kv: -sum(kv[1])):
        share = 100 * (f + b) / total
        print(f"  {name:<18} {f * unit:7.3f} / {b * unit:7.3f} {label}   {share:4.1f}%")
    if whole:
        print(
            f"  operations: {total * unit:.3f} {label} of the run's {whole * unit:.3f} {label} "
            "(the rest: the loss, the optimizer, the loop)"
        )
