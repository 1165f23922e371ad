"""Benchmark: forward + backward of one LSTM batch (batch 32, hidden 256, vocab 65, one-hot
inputs as the book's chapter 6 feeds them), float32, against torch.nn.LSTM when installed.

    python bench/lstm.py [--repeats 7]

For sequences of 25 and 100 steps, prints the median seconds of one forward + backward
pass through the LSTM layer alone (configurations interleaved, each timed run after 0.3 s
of untimed runs of its own; no input gradient, as for PyTorch's), with 1 and 2 BLAS threads,
the ratio to PyTorch's best, the GEMM floor (the pass's matrix products timed alone, same
shapes and layouts) and the time split between forward and backward.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
from _timing import (
    gemm_flops,
    interleaved,
    machine,
    per_operation_split,
    print_split,
    step_gemms,
    time_gemms,
    torch_gemm_line,
)
from threadpoolctl import threadpool_limits

from scratchdl import LSTM

BATCH, HIDDEN, VOCAB = 32, 256, 65


def ours(x: np.ndarray) -> Callable[[], None]:
    layer = LSTM(HIDDEN, return_sequences=True)
    layer.rng = np.random.default_rng(0)
    layer.forward(x)
    grad = np.random.default_rng(1).standard_normal((BATCH, x.shape[1], HIDDEN)).astype(np.float32)

    def run() -> None:
        layer.forward(x)
        layer.backward(grad, need_input_grad=False)  # as torch: the data needs no gradient

    return run


def theirs(x: np.ndarray, threads: int) -> Callable[[], None] | None:
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(VOCAB, HIDDEN, batch_first=True)
    xt = torch.from_numpy(x)
    grad = torch.from_numpy(
        np.random.default_rng(1).standard_normal((BATCH, x.shape[1], HIDDEN)).astype(np.float32)
    )

    def run() -> None:
        torch.set_num_threads(threads)
        out, _ = lstm(xt)
        out.backward(grad)

    return run


def limited(fn: Callable[[], None], threads: int | None) -> Callable[[], None]:
    """`fn` under a BLAS thread limit (None: torch sets its own threads)."""
    if threads is None:
        return fn

    def run() -> None:
        with threadpool_limits(threads, user_api="blas"):
            fn()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(machine())
    print(
        f"LSTM forward + backward, batch {BATCH}, hidden {HIDDEN}, {VOCAB} one-hot inputs, float32, median of {args.repeats}\n"
    )
    for steps in (25, 100):
        ids = np.random.default_rng(0).integers(0, VOCAB, (BATCH, steps))
        x = np.eye(VOCAB, dtype=np.float32)[ids]
        configs: dict[str, tuple[Callable[[], None], int | None]] = {}
        for threads in (1, 2):
            configs[f"scratchdl [{threads}t]"] = (ours(x), threads)
            run = theirs(x, threads)
            if run is not None:
                configs[f"torch [{threads}t]"] = (run, None)
        med, _ = interleaved(
            {name: limited(fn, threads) for name, (fn, threads) in configs.items()}, args.repeats
        )
        print(f"sequence length {steps}:")
        for name, seconds in med.items():
            print(f"  {name:<16} {seconds * 1000:8.1f} ms")
        best_ours = min(v for k, v in med.items() if k.startswith("scratchdl"))
        torch_times = [v for k, v in med.items() if k.startswith("torch")]
        if torch_times:
            print(
                f"  best scratchdl / best torch: {best_ours / min(torch_times):.2f}   (target <= 1.0)"
            )
        layer = LSTM(HIDDEN, return_sequences=True)
        layer.rng = np.random.default_rng(0)
        layer.forward(x)
        layer.backward(np.ones((BATCH, steps, HIDDEN), np.float32), need_input_grad=False)
        gemms = step_gemms([layer])
        gflop = gemm_flops(gemms) / 1e9
        for t in (1, 2):
            floor = time_gemms(gemms, t, repeats=max(args.repeats, 5))
            ours_t = med[f"scratchdl [{t}t]"]
            print(
                f"  GEMM floor [{t}t] {floor * 1000:6.1f} ms for {gflop:.2f} GFLOP "
                f"({gflop / floor:5.1f} GFLOP/s): scratchdl {ours_t / floor:.2f}x the floor"
            )
            print(torch_gemm_line(gemms, t, floor, repeats=max(args.repeats, 5), unit="ms"))
        run = ours(x)
        with threadpool_limits(1, user_api="blas"):
            split = per_operation_split(run)
        print("  per operation, 1 thread (forward / backward ms):")
        print_split(split, 1000, "ms")


if __name__ == "__main__":
    main()
