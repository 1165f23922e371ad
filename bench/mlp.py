"""Benchmark: one epoch of the book's MNIST MLP (784 → 89 tanh → 10, softmax cross-entropy,
batch 60, float32), timed in one run against a hand-written NumPy loop and, when torch is
installed, against PyTorch.

    python bench/mlp.py [--repeats 7] [--rows 60000]

Rows printed (median seconds per epoch over the repeats, configurations interleaved so
that machine noise spreads over all of them):

    numpy loop, SGD                 the same matrix work written out by hand
    scratchdl train_batch, SGD      net.train_batch + optimizer.step in a plain loop
    scratchdl train_batch, momentum the same with SGDMomentum (the raw loop of the next row)
    scratchdl Trainer.fit, momentum the whole fit path: shuffling, callbacks, progress bar
    torch, momentum                 the same model and loop in PyTorch (if installed)

each with 1 and 2 BLAS threads (threadpoolctl), and `Trainer.fit` with ``threads=2`` (each
batch split over two threads, one BLAS thread each); the hand-written loops run inside
`flush_denormals()` as `Trainer.fit` runs (PyTorch keeps its default, IEEE arithmetic),
and the ratios the issues ask for; then
the GEMM floor (the epoch's matrix products timed alone, same shapes and layouts) with the
ratio of each loop to it, and a forward/backward split per operation.
Uses MNIST from $SCRATCHDL_DATA when present, random pixels otherwise (same shapes).
"""

from __future__ import annotations

import argparse
import io
import time
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

from scratchdl import (
    SGD,
    Dense,
    Linear,
    NeuralNetwork,
    ProgressBar,
    SGDMomentum,
    SoftmaxCrossEntropy,
    Tanh,
    Trainer,
    flush_denormals,
)

BATCH = 60
LR = 0.1


def load_data(rows: int) -> tuple[np.ndarray, np.ndarray, str]:
    try:
        from scratchdl.datasets import load_mnist

        X, y, _, _ = load_mnist()
        X = X.reshape(len(X), -1).astype(np.float32)
        X = (X - X.mean()) / X.std()
        source = "MNIST"
    except (FileNotFoundError, ValueError):
        rng = np.random.default_rng(0)
        X = rng.standard_normal((60000, 784)).astype(np.float32)
        y = rng.integers(0, 10, 60000)
        source = "random data (MNIST not found)"
    return X[:rows], y[:rows].astype(np.int64), source


def init_params(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    std1, std2 = np.sqrt(2 / (784 + 89)), np.sqrt(2 / (89 + 10))
    return [
        (rng.standard_normal((784, 89)) * std1).astype(np.float32),
        (rng.standard_normal((1, 89)) * std1).astype(np.float32),
        (rng.standard_normal((89, 10)) * std2).astype(np.float32),
        (rng.standard_normal((1, 10)) * std2).astype(np.float32),
    ]


def numpy_epoch(X: np.ndarray, y: np.ndarray, order: np.ndarray) -> float:
    """The reference: forward, loss, backward and SGD written out with NumPy."""
    W1, b1, W2, b2 = init_params()
    total = 0.0
    for start in range(0, len(X), BATCH):
        idx = order[start : start + BATCH]
        x, t = X[idx], y[idx]
        m = len(idx)
        h = np.tanh(x @ W1 + b1)
        z = h @ W2 + b2
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        s = e.sum(axis=1, keepdims=True)
        p = e / s
        total += float(-np.sum(z[np.arange(m), t] - np.log(s[:, 0]))) / m
        g = p
        g[np.arange(m), t] -= 1
        g *= np.float32(1 / m)
        gW2, gb2 = h.T @ g, g.sum(axis=0, keepdims=True)
        gz = (g @ W2.T) * (1 - h * h)
        gW1, gb1 = x.T @ gz, gz.sum(axis=0, keepdims=True)
        W1 -= LR * gW1
        b1 -= LR * gb1
        W2 -= LR * gW2
        b2 -= LR * gb2
    return total


def make_net() -> NeuralNetwork:
    return NeuralNetwork(
        [Dense(89, Tanh(), weight_init="glorot"), Dense(10, Linear(), weight_init="glorot")],
        SoftmaxCrossEntropy(),
        seed=0,
    )


def scratchdl_loop(momentum: bool) -> Callable[[np.ndarray, np.ndarray, np.ndarray], float]:
    def run(X: np.ndarray, y: np.ndarray, order: np.ndarray) -> float:
        net = make_net()
        optim = SGDMomentum(LR, momentum=0.9) if momentum else SGD(LR)
        optim.net = net
        total = 0.0
        for start in range(0, len(X), BATCH):
            idx = order[start : start + BATCH]
            total += net.train_batch(X[idx], y[idx])
            optim.step()
        return total

    return run


PARTS = "scratchdl Trainer.fit, momentum, threads=2"


def scratchdl_fit(
    threads: int, parts: int = 1
) -> Callable[[np.ndarray, np.ndarray, np.ndarray], float]:
    """`Trainer.fit` with `threads` BLAS threads, or each batch split over `parts` threads."""

    def run(X: np.ndarray, y: np.ndarray, order: np.ndarray) -> float:
        net = make_net()
        trainer = Trainer(net, SGDMomentum(LR, momentum=0.9), blas_threads=threads, threads=parts)
        bar = ProgressBar(verbose=1, stream=io.StringIO(), bar=True)  # a real tqdm bar, not shown
        history = trainer.fit(X, y, epochs=1, batch_size=BATCH, callbacks=[bar], verbose=1)
        return history.history["loss"][0]

    return run


def torch_epoch(threads: int) -> Callable[[np.ndarray, np.ndarray, np.ndarray], float] | None:
    try:
        import torch
    except ImportError:
        return None

    def run(X: np.ndarray, y: np.ndarray, order: np.ndarray) -> float:
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Linear(784, 89), torch.nn.Tanh(), torch.nn.Linear(89, 10)
        )
        optim = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
        loss_fn = torch.nn.CrossEntropyLoss()
        Xt, yt, ot = torch.from_numpy(X), torch.from_numpy(y), torch.from_numpy(order)
        total = 0.0
        for start in range(0, len(X), BATCH):
            idx = ot[start : start + BATCH]
            optim.zero_grad(set_to_none=True)
            loss = loss_fn(model(Xt[idx]), yt[idx])
            loss.backward()
            optim.step()
            total += loss.item()
        return total

    return run


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--rows", type=int, default=60000)
    args = parser.parse_args()
    X, y, source = load_data(args.rows)
    order = np.random.default_rng(1).permutation(len(X))

    configs: dict[str, tuple[Callable, int, bool]] = {}
    for threads in (1, 2):
        configs[f"numpy loop, SGD [{threads}t]"] = (numpy_epoch, threads, True)
        configs[f"scratchdl train_batch, SGD [{threads}t]"] = (scratchdl_loop(False), threads, True)
        configs[f"scratchdl train_batch, momentum [{threads}t]"] = (
            scratchdl_loop(True),
            threads,
            True,
        )
        configs[f"scratchdl Trainer.fit, momentum [{threads}t]"] = (
            scratchdl_fit(threads),
            threads,
            False,
        )
        run_torch = torch_epoch(threads)
        if run_torch is not None:
            configs[f"torch, momentum [{threads}t]"] = (run_torch, threads, False)
    configs[PARTS] = (scratchdl_fit(1, parts=2), 1, False)

    def timed(fn: Callable, threads: int, limit: bool) -> Callable[[], object]:
        if not limit:
            return lambda: fn(X, y, order)

        def run() -> object:  # the hand-written loops, with the threads and modes fit uses
            with threadpool_limits(threads, user_api="blas"), flush_denormals():
                return fn(X, y, order)

        return run

    med, times = interleaved(
        {name: timed(*config) for name, config in configs.items()}, args.repeats
    )
    print(machine())
    print(
        f"one epoch of {len(X)} rows ({source}), batch {BATCH}, float32, median of {args.repeats} runs\n"
    )
    for name, seconds in med.items():
        spread = f"[{min(times[name]):.3f}-{max(times[name]):.3f}]"
        print(f"  {name:<42} {seconds:7.3f} s  {spread}")
    print()
    for t in (1, 2):
        print(f"{t} BLAS thread(s):")
        print(
            f"  scratchdl train_batch / numpy loop (SGD)      {med[f'scratchdl train_batch, SGD [{t}t]'] / med[f'numpy loop, SGD [{t}t]']:.3f}   target <= 1.2"
        )
        print(
            f"  Trainer.fit / raw train_batch loop (momentum) {med[f'scratchdl Trainer.fit, momentum [{t}t]'] / med[f'scratchdl train_batch, momentum [{t}t]']:.3f}   target <= 1.05"
        )
        if f"torch, momentum [{t}t]" in med:
            print(
                f"  Trainer.fit / torch (momentum)                {med[f'scratchdl Trainer.fit, momentum [{t}t]'] / med[f'torch, momentum [{t}t]']:.3f}   target <= 0.8"
            )
    print(
        "\nthreads: Trainer.fit 2 threads / 1 thread "
        f"{med['scratchdl Trainer.fit, momentum [2t]'] / med['scratchdl Trainer.fit, momentum [1t]']:.2f} "
        "(blas_threads='auto' uses 1 thread at batch 60); "
        f"threads=2 / 1 thread {med[PARTS] / med['scratchdl Trainer.fit, momentum [1t]']:.2f}"
    )
    if "torch, momentum [1t]" in med:
        best_torch = min(med["torch, momentum [1t]"], med["torch, momentum [2t]"])
        best_ours = min(
            med["scratchdl Trainer.fit, momentum [1t]"], med["scratchdl Trainer.fit, momentum [2t]"]
        )
        print(f"best scratchdl Trainer.fit / best torch: {best_ours / best_torch:.3f}")

    net = make_net()
    net.train_batch(X[:BATCH], y[:BATCH])
    gemms = step_gemms(net.layers)
    scale = len(X) / BATCH
    gflop = gemm_flops(gemms) * scale / 1e9
    print("\nthe GEMM floor (the epoch's matrix products alone, same shapes and layouts):")
    for t in (1, 2):
        floor = time_gemms(gemms, t, repeats=51) * scale
        fit = med[f"scratchdl Trainer.fit, momentum [{t}t]"]
        loop = med[f"numpy loop, SGD [{t}t]"]
        print(
            f"  [{t}t] {floor:6.3f} s for {gflop:.1f} GFLOP ({gflop / floor:5.1f} GFLOP/s); "
            f"Trainer.fit {fit / floor:.2f}x the floor (target <= 2.5), "
            f"the NumPy loop {loop / floor:.2f}x"
        )
        print(torch_gemm_line(gemms, t, floor, repeats=51, scale=scale))

    with threadpool_limits(1, user_api="blas"):
        start = time.perf_counter()
        split = per_operation_split(lambda: scratchdl_fit(1)(X, y, order))
        whole = time.perf_counter() - start
    print("\nper operation, 1 thread (forward / backward seconds):")
    print_split(split, whole=whole)


if __name__ == "__main__":
    main()
