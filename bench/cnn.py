"""Benchmark: one epoch of the book's chapter-5 CNN on MNIST, against PyTorch when installed.

Models (``--model``): ``book``, Conv2D(16, 5x5, "same", tanh, glorot, dropout 0.8, flatten) ->
Dense(10), softmax cross-entropy, SGDMomentum(0.1, momentum=0.9), batch 60; ``modern``, the
small CNN users train: conv 3x3 16 ReLU, max-pool 2, conv 3x3 32 ReLU, max-pool 2, dense 128
ReLU, dense 10, Adam 1e-3, batch 64; ``ch7``, the book's chapter-7 network (its PyTorch
chapter): conv 1→14 5x5 tanh, conv 14→7 5x5 tanh, dense 32 tanh, dropout 0.8 after each,
dense 10, SGDMomentum(0.01, momentum=0.9), batch 60. float32, 60,000 images unless
``--rows``.

    python bench/cnn.py [--model book|modern|ch7] [--repeats 3] [--rows 60000] [--busy]

Prints the median seconds per epoch (configurations interleaved), with 1 and 2 BLAS
threads and with ``Trainer(threads=2)`` (two parts of each batch in two threads, one BLAS
thread each), PyTorch's time for the same model and loop, each library with its default
treatment of subnormal floats (scratchdl flushes them, PyTorch does not) and, on one
thread, with the other's, the GEMM floor (the epoch's matrix
products timed alone) with the GFLOP/s achieved and the ratio to it, a forward/backward
split per operation, for the book's model the time of one dropout mask (compiled, the NumPy
reference, and the uniform draw per element of earlier releases), and the peak memory of
one epoch (tracemalloc, which sees NumPy's arrays). ``--busy`` times the epochs beside
another process that keeps one core busy, and prints only them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
from _timing import (
    busy_core,
    direct_convolutions,
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

from scratchdl import (
    Adam,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Linear,
    MaxPool2D,
    NeuralNetwork,
    ReLU,
    SGDMomentum,
    SoftmaxCrossEntropy,
    Tanh,
    Trainer,
    backend,
)

BATCH = 60


def load(rows: int) -> tuple[np.ndarray, np.ndarray, str]:
    try:
        from scratchdl.datasets import load_mnist

        X, y, _, _ = load_mnist(download=False)
        X = X.astype(np.float32)
        X = ((X - X.mean()) / X.std()).reshape(-1, 1, 28, 28)
        source = "MNIST"
    except (FileNotFoundError, ValueError):
        rng = np.random.default_rng(0)
        X = rng.standard_normal((60000, 1, 28, 28)).astype(np.float32)
        y = rng.integers(0, 10, 60000)
        source = "random images (MNIST not found)"
    return np.ascontiguousarray(X[:rows]), y[:rows].astype(np.int64), source


def book_cnn(seed: int = 0) -> NeuralNetwork:
    return NeuralNetwork(
        [
            Conv2D(16, 5, activation=Tanh(), weight_init="glorot", dropout=0.8, flatten=True),
            Dense(10, Linear(), weight_init="glorot"),
        ],
        SoftmaxCrossEntropy(),
        seed=seed,
    )


def modern_cnn(seed: int = 0) -> NeuralNetwork:
    """The small CNN users train: conv 3×3 16 ReLU, max-pool 2, conv 3×3 32 ReLU, max-pool 2,
    dense 128 ReLU, dense 10 (Adam, batch 64)."""
    return NeuralNetwork(
        [
            Conv2D(16, 3, activation=ReLU(), weight_init="he"), MaxPool2D(2),
            Conv2D(32, 3, activation=ReLU(), weight_init="he"), MaxPool2D(2), Flatten(),
            Dense(128, ReLU(), weight_init="he"), Dense(10, Linear(), weight_init="glorot"),
        ],
        SoftmaxCrossEntropy(),
        seed=seed,
    )  # fmt: skip


def ch7_cnn(seed: int = 0) -> NeuralNetwork:
    """The book's chapter-7 network (written there in PyTorch): conv 1→14 5×5 tanh, conv
    14→7 5×5 tanh, dense 32 tanh, dropout 0.8 after each, dense 10 (SGD 0.01 with momentum
    0.9, batch 60), as `examples/ch05_mnist_cnn.py` rebuilds it."""
    return NeuralNetwork(
        [
            Conv2D(14, 5, activation=Tanh(), weight_init="glorot", dropout=0.8),
            Conv2D(7, 5, activation=Tanh(), weight_init="glorot", dropout=0.8, flatten=True),
            Dense(32, Tanh(), weight_init="glorot", dropout=0.8),
            Dense(10, Linear(), weight_init="glorot"),
        ],
        SoftmaxCrossEntropy(),
        seed=seed,
    )


MODELS = {"book": (book_cnn, lambda: SGDMomentum(0.1, momentum=0.9), 60),
          "modern": (modern_cnn, lambda: Adam(1e-3), 64),
          "ch7": (ch7_cnn, lambda: SGDMomentum(0.01, momentum=0.9), 60)}  # fmt: skip
MODEL = "book"
PARTS = "scratchdl fit, threads=2 [1t each]"


def scratchdl_epoch(
    threads: int, flush: bool = True, parts: int = 1
) -> Callable[[np.ndarray, np.ndarray], float]:
    """One epoch through `Trainer.fit` with `threads` BLAS threads, or with the batch split
    over `parts` threads (``Trainer(threads=parts)``, one BLAS thread each)."""

    def run(X: np.ndarray, y: np.ndarray) -> float:
        make, optimizer, batch = MODELS[MODEL]
        trainer = Trainer(
            make(), optimizer(), blas_threads=threads, flush_denormals=flush, threads=parts
        )
        return trainer.fit(X, y, epochs=1, batch_size=batch, verbose=0).history["loss"][0]

    return run


def torch_model(torch: object, name: str, device: str = "cpu") -> tuple:
    """(model, optimizer): `name`'s CNN written in PyTorch (seeded), on `device`."""
    torch.manual_seed(0)  # type: ignore[attr-defined]
    nn = torch.nn  # type: ignore[attr-defined]
    if name == "modern":
        model = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
        ).to(device)  # fmt: skip
        return model, torch.optim.Adam(model.parameters(), lr=1e-3)  # type: ignore[attr-defined]
    if name == "ch7":  # the book's own PyTorch code: padding k // 2, dropout after tanh
        model = nn.Sequential(
            nn.Conv2d(1, 14, 5, padding=2), nn.Tanh(), nn.Dropout(0.2),
            nn.Conv2d(14, 7, 5, padding=2), nn.Tanh(), nn.Flatten(), nn.Dropout(0.2),
            nn.Linear(7 * 28 * 28, 32), nn.Tanh(), nn.Dropout(0.2), nn.Linear(32, 10),
        ).to(device)  # fmt: skip
        return model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)  # type: ignore[attr-defined]
    model = nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2), nn.Tanh(), nn.Dropout(0.2), nn.Flatten(),
        nn.Linear(16 * 28 * 28, 10),
    ).to(device)  # fmt: skip
    return model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)  # type: ignore[attr-defined]


def torch_epoch(
    threads: int, flush: bool = False
) -> Callable[[np.ndarray, np.ndarray], float] | None:
    try:
        import torch
    except ImportError:
        return None

    def run(X: np.ndarray, y: np.ndarray) -> float:
        torch.set_num_threads(threads)
        torch.set_flush_denormal(flush)
        try:
            return torch_epoch_on(torch, MODEL, X, y, "cpu")
        finally:
            torch.set_flush_denormal(False)

    return run


def torch_epoch_on(torch: Any, name: str, X: np.ndarray, y: np.ndarray, device: str) -> float:
    """One epoch of `name`'s CNN in PyTorch on `device`, moving each batch from the host
    (as `Trainer.fit` does); returns the summed batch losses."""
    model, optim = torch_model(torch, name, device)
    batch = MODELS[name][2]
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    order = torch.from_numpy(np.random.default_rng(1).permutation(len(X)))
    total = 0.0
    for start in range(0, len(X), batch):
        idx = order[start : start + batch]
        optim.zero_grad(set_to_none=True)
        loss = loss_fn(model(Xt[idx].to(device)), yt[idx].to(device))
        loss.backward()
        optim.step()
        total += loss.item()
    return total


def compile_kernels() -> str:
    """Say whether the compiled kernels (scratchdl[fast]) are in use, and what their first
    use cost in this process (compiling, or loading numba's disk cache)."""
    from scratchdl import backend

    if backend.fast_kernels() is None:
        return "compiled kernels: off (numba not installed, or SCRATCHDL_FAST=0)"
    import numba

    start = time.perf_counter()
    for dtype in (np.float32, np.float64):
        pool = MaxPool2D(2)
        pool.backward(pool.forward(np.zeros((1, 1, 2, 2), dtype)))
    return (
        f"compiled kernels: numba {numba.__version__}, first use {time.perf_counter() - start:.2f} s "
        "(compiling, or numba's disk cache), not in the times below"
    )


def gemm_floor(X: np.ndarray, y: np.ndarray, threads: int) -> tuple[float, float, str, float]:
    """(seconds, GFLOP) of one epoch's matrix products alone: the products of one full
    batch, timed alone, times the number of batches (the last, partial, as a fraction);
    the line comparing them with the same products in PyTorch (and naming the direct
    convolutions, which make none); and the epoch's GFLOP with theirs."""
    make, _, batch = MODELS[MODEL]
    net = make()
    net.train_batch(X[:batch], y[:batch])
    gemms = step_gemms(net.layers)
    scale = len(X) / batch
    floor = time_gemms(gemms, threads) * scale
    line = torch_gemm_line(gemms, threads, floor, scale=scale)
    direct = direct_convolutions(net.layers)
    if direct:
        line += (
            f"\n  [{threads}t] not in the floor (no matrix product; their "
            f"{sum(fl for _, fl in direct) * scale / 1e9:.0f} GFLOP are in Trainer.fit's "
            "GFLOP/s): the direct kernels' " + ", ".join(name for name, _ in direct)
        )
    total = (gemm_flops(gemms) + sum(fl for _, fl in direct)) * scale / 1e9
    return floor, gemm_flops(gemms) * scale / 1e9, line, total


def dropout_lines(repeats: int) -> list[str]:
    """One dropout mask over the book CNN's (60, 16, 28, 28) activations, 50 passes per
    timed run: the compiled pass forward and backward, the NumPy reference, and the
    uniform draw per element that releases before the counter-based masks made."""
    x = np.random.default_rng(0).standard_normal((60, 16, 28, 28)).astype(np.float32)
    draw = np.random.default_rng(1)

    def uniform() -> None:  # the earlier releases' mask: rng.random, then in-place passes
        mask = draw.random(x.shape, dtype=np.float32)
        mask += np.float32(0.8)
        np.floor(mask, out=mask)
        mask *= np.float32(1 / 0.8)
        _ = x * mask

    op, after_compiled = (Dropout(0.8, rng=np.random.default_rng(seed)) for seed in (2, 3))

    def forward(fast: bool) -> Callable[[], None]:
        def run() -> None:
            backend.set_fast(fast)
            op.forward(x)

        return run

    def backward() -> None:  # after a compiled forward the mask is drawn again from its keys
        backend.set_fast(True)
        after_compiled.backward(x)

    configs = {"uniform draw per element (earlier releases)": uniform,
               "NumPy reference forward": forward(False)}  # fmt: skip
    if backend.fast_kernels() is not None:
        after_compiled.forward(x)  # keeps only the mask's keys
        configs["compiled forward"] = forward(True)
        configs["compiled backward"] = backward
    fifty = {name: (lambda fn=fn: [fn() for _ in range(50)]) for name, fn in configs.items()}
    with threadpool_limits(1, user_api="blas"):
        med, times = interleaved(fifty, repeats)
    backend.set_fast(os.environ.get("SCRATCHDL_FAST", "1") != "0")
    return [
        f"  {name:<44} {med[name] / 50 * 1e3:6.2f} ms  [{min(times[name]) / 50 * 1e3:.2f}-{max(times[name]) / 50 * 1e3:.2f}]"
        for name in configs
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", choices=sorted(MODELS), default="book",
                        help="book: the book's chapter-5 CNN; modern: conv-pool-conv-pool-dense, "
                             "Adam; ch7: the book's chapter-7 network")  # fmt: skip
    parser.add_argument("--rows", type=int, default=60000)
    parser.add_argument("--busy", action="store_true",
                        help="time the epochs beside a process that keeps one core busy")  # fmt: skip
    args = parser.parse_args()
    global MODEL
    MODEL = args.model
    X, y, source = load(args.rows)
    kernels = compile_kernels()

    configs: dict[str, Callable] = {}
    for threads in (1, 2):
        configs[f"scratchdl Trainer.fit [{threads}t]"] = scratchdl_epoch(threads)
        run_torch = torch_epoch(threads)
        if run_torch is not None:
            configs[f"torch [{threads}t]"] = run_torch
    configs[PARTS] = scratchdl_epoch(1, parts=2)
    # the defaults swapped: scratchdl with IEEE subnormals, PyTorch flushing them
    configs["scratchdl, flush_denormals=False [1t]"] = scratchdl_epoch(1, flush=False)
    run_torch = torch_epoch(1, flush=True)
    if run_torch is not None:
        configs["torch, set_flush_denormal(True) [1t]"] = run_torch
    with busy_core() if args.busy else contextlib.nullcontext():
        med, times = interleaved(
            {name: (lambda fn=fn: fn(X, y)) for name, fn in configs.items()}, args.repeats
        )
    print(machine())
    print(kernels)
    beside = ", beside a process that keeps one core busy" if args.busy else ""
    print(
        f"{args.model} CNN, one epoch of {len(X)} images ({source}), batch {MODELS[args.model][2]}, float32, median of {args.repeats}{beside}\n"
    )
    for name, seconds in med.items():
        print(f"  {name:<40} {seconds:7.2f} s  [{min(times[name]):.2f}-{max(times[name]):.2f}]")
    ours = min(med["scratchdl Trainer.fit [1t]"], med["scratchdl Trainer.fit [2t]"], med[PARTS])
    one = med["scratchdl Trainer.fit [1t]"]
    print(
        f"\n  scratchdl 2 BLAS threads / 1 thread: {med['scratchdl Trainer.fit [2t]'] / one:.2f}; "
        f"threads=2 / 1 thread: {med[PARTS] / one:.2f}"
    )
    if "torch [1t]" in med:
        best_torch = min(med["torch [1t]"], med["torch [2t]"])
        target = {"book": " (target <= 0.7)", "modern": " (target <= 1.0)"}.get(MODEL, "")
        print(f"  best scratchdl / best torch: {ours / best_torch:.2f}  {target}")
    if args.busy:
        return

    print("\nthe GEMM floor (the epoch's matrix products alone, same shapes and layouts):")
    for threads in (1, 2):
        floor, gflop, torch_line, total = gemm_floor(X, y, threads)
        fit = med[f"scratchdl Trainer.fit [{threads}t]"]
        print(
            f"  [{threads}t] {floor:6.2f} s for {gflop:.0f} GFLOP ({gflop / floor:5.1f} GFLOP/s); "
            f"Trainer.fit achieves {total / fit:5.1f} GFLOP/s, {fit / floor:.2f}x the floor"
        )
        print(torch_line)
        if threads == 2:
            print(
                f"  threads=2 (1 BLAS thread each) achieves {total / med[PARTS]:5.1f} GFLOP/s, "
                f"{med[PARTS] / floor:.2f}x the [2t] floor"
            )

    with threadpool_limits(1, user_api="blas"):
        start = time.perf_counter()
        split = per_operation_split(lambda: scratchdl_epoch(1)(X, y))
        whole = time.perf_counter() - start
    print("\nper operation, 1 thread (forward / backward seconds):")
    print_split(split, whole=whole)

    if MODEL == "book":
        print(
            f"\none dropout mask of 752,640 values, 1 thread, median of {args.repeats} runs of 50:"
        )
        print("\n".join(dropout_lines(args.repeats)))

    tracemalloc.start()
    scratchdl_epoch(1)(X, y)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"\npeak memory allocated during one epoch (tracemalloc, beyond the {X.nbytes / 2**20:.0f} MiB dataset): {peak / 2**20:.0f} MiB"
    )


if __name__ == "__main__":
    main()
