"""Benchmark: data-parallel training over MPI against one process.

    python bench/distributed.py [--batches 100] [--repeats 3]

For the book's CNN (batch 60) and the modern MLP (the `mnist-best` preset, batch 128),
trains `--batches` batches of MNIST (random pixels when MNIST is not found) in three ways,
alternating, median of `--repeats`:

    1 process, 2 BLAS threads          the plain Trainer
    1 process, threads=2               Trainer(threads=2): each half of every batch in a
                                       thread of one process, one BLAS thread each
    mpiexec -n 1, 1 BLAS thread        Trainer(distributed=True) on one rank
    mpiexec -n 2, 1 BLAS thread each   two ranks, each half of every batch

and prints examples per second, the speed-up of 2 ranks over the best single process,
the share of a step spent in the gradient Allreduce, and the bytes it sends per step.
Each process first sends one batch through a copy of its network, untimed and reported
apart: that loads the compiled kernels (numba's import and disk cache), which would
otherwise be a third of a 100-batch run.
Needs mpi4py and mpiexec (``pip install 'scratchdl[mpi]'``).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def data(model: str, rows: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        from scratchdl.datasets import load_mnist

        X, y, _, _ = load_mnist()
        X = ((X - X.mean()) / X.std()).astype(np.float32)
    except (FileNotFoundError, ValueError):
        rng = np.random.default_rng(0)
        X = rng.standard_normal((60000, 28, 28)).astype(np.float32)
        y = rng.integers(0, 10, 60000)
    X = X[:rows].reshape(rows, 1, 28, 28) if model == "cnn" else X[:rows].reshape(rows, -1)
    return X, y[:rows].astype(np.int64)


def build(model: str):
    from scratchdl import (
        Conv2D,
        Dense,
        Linear,
        NeuralNetwork,
        SGDMomentum,
        SoftmaxCrossEntropy,
        Tanh,
    )
    from scratchdl.presets import PRESETS

    if model == "mlp":
        return PRESETS["mnist-best"].build(0, None), 128
    net = NeuralNetwork(
        [Conv2D(16, 5, activation=Tanh(), weight_init="glorot", dropout=0.8, flatten=True),
         Dense(10, Linear(), weight_init="glorot")],
        SoftmaxCrossEntropy(), seed=0,
    )  # fmt: skip
    return (net, SGDMomentum(0.1, momentum=0.9)), 60


def worker(model: str, batches: int, distributed: bool, parts: int = 1) -> None:
    """One timed run (inside mpiexec when distributed); rank 0 prints a JSON line."""
    from scratchdl import Trainer

    (net, optim), batch = build(model)
    X, y = data(model, batches * batch)
    # One batch through a copy first: each process loads the compiled kernels (numba's
    # import and disk cache, about 0.35 s) here, outside the timed run, and reports it.
    start = time.perf_counter()
    copy.deepcopy(net).train_batch(X[:batch], y[:batch])
    warmup = time.perf_counter() - start
    trainer = Trainer(net, optim, distributed=distributed, blas_threads=None, threads=parts)
    spent = [0.0]
    if distributed:
        comm = trainer.dist.comm
        real = comm.allreduce_sum

        def timed(buffer):
            start = time.perf_counter()
            out = real(buffer)
            spent[0] += time.perf_counter() - start
            return out

        comm.allreduce_sum = timed
    start = time.perf_counter()
    trainer.fit(X, y, epochs=1, batch_size=batch, verbose=0, early_stopping=False)
    seconds = time.perf_counter() - start
    if trainer.rank == 0:
        params = sum(p.size for p in net.params())
        print(json.dumps({"seconds": seconds, "allreduce": spent[0], "rows": len(X), "warmup": warmup,
                          "bytes": net.dtype.itemsize * (params + 2), "batches": batches}))  # fmt: skip


def bn_accuracy_worker(seed: int) -> None:
    """Train a CNN with batch norm on 6,000 MNIST images (3 epochs, global batch 64) and
    print its accuracy on 2,000 test images: the cost of per-rank batch statistics."""
    from scratchdl import (
        Adam,
        BatchNorm,
        Conv2D,
        Dense,
        Flatten,
        Linear,
        MaxPool2D,
        NeuralNetwork,
        ReLU,
        SoftmaxCrossEntropy,
        Trainer,
    )
    from scratchdl.datasets import load_mnist

    X, y, Xt, yt = load_mnist()
    mean, std = X.mean(), X.std()
    X = ((X[:6000] - mean) / std).reshape(-1, 1, 28, 28).astype(np.float32)
    Xt = ((Xt[:2000] - mean) / std).reshape(-1, 1, 28, 28).astype(np.float32)
    net = NeuralNetwork(
        [Conv2D(8, 3, bias=False, weight_init="he"), BatchNorm(), ReLU(), MaxPool2D(2),
         Conv2D(16, 3, bias=False, weight_init="he"), BatchNorm(), ReLU(), MaxPool2D(2),
         Flatten(), Dense(10, Linear(), weight_init="glorot")],
        SoftmaxCrossEntropy(), seed=seed,
    )  # fmt: skip
    trainer = Trainer(net, Adam(2e-3), metrics=["accuracy"], distributed=True, blas_threads=None)
    history = trainer.fit(
        X, y[:6000].astype(np.int64), epochs=3, batch_size=64, seed=seed, verbose=0
    )
    scores = trainer.evaluate(Xt, yt[:2000].astype(np.int64))
    if trainer.rank == 0:
        print(json.dumps({"accuracy": scores["accuracy"], "loss": history.history["loss"]}))


def launch(model: str, batches: int, ranks: int | None, threads: int, parts: int = 1) -> dict:
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        model,
        "--batches",
        str(batches),
        "--parts",
        str(parts),
    ]
    if ranks is not None:
        mpiexec = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or "mpiexec"
        command = [mpiexec, "-n", str(ranks), *command, "--distributed"]
    result = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=1800, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", choices=["cnn", "mlp", "bn"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bn-accuracy", action="store_true",
                        help="instead: accuracy of a batch-norm CNN on 1 and 2 ranks")  # fmt: skip
    parser.add_argument("--distributed", action="store_true")
    parser.add_argument("--parts", type=int, default=1, help="Trainer(threads=...) in a worker")
    args = parser.parse_args()
    if args.worker == "bn":
        bn_accuracy_worker(args.seed)
        return
    if args.worker:
        worker(args.worker, args.batches, args.distributed, args.parts)
        return
    if args.bn_accuracy:
        for seed in range(args.repeats):
            found = {}
            for ranks in (1, 2):
                command = [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--worker",
                    "bn",
                    "--seed",
                    str(seed),
                ]
                mpiexec = (
                    shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or "mpiexec"
                )
                env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
                out = subprocess.run([mpiexec, "-n", str(ranks), *command], capture_output=True,
                                     text=True, env=env, timeout=1800, check=True)  # fmt: skip
                found[ranks] = json.loads(out.stdout.strip().splitlines()[-1])["accuracy"]
            print(
                f"seed {seed}: batch-norm CNN accuracy, 1 rank {found[1]:.2%}, 2 ranks {found[2]:.2%}"
            )
        return
    from _timing import machine

    print(machine())
    print(f"{args.batches} batches per run, median of {args.repeats} runs, alternating\n")
    configs = {  # (ranks or None for no mpiexec, BLAS threads, Trainer(threads=...))
        "1 process, 2 threads": (None, 2, 1),
        "1 process, threads=2": (None, 1, 2),
        "1 rank, 1 thread": (1, 1, 1),
        "2 ranks, 1 thread each": (2, 1, 1),
    }
    for model, title in (
        ("cnn", "book CNN, batch 60"),
        ("mlp", "modern MLP (mnist-best), batch 128"),
    ):
        runs: dict[str, list[dict]] = {name: [] for name in configs}
        for _ in range(args.repeats):
            for name, (ranks, threads, parts) in configs.items():
                runs[name].append(launch(model, args.batches, ranks, threads, parts))
        print(title)
        speed = {}
        for name, rs in runs.items():
            seconds = statistics.median(r["seconds"] for r in rs)
            speed[name] = rs[0]["rows"] / seconds
            share = statistics.median(r["allreduce"] / r["seconds"] for r in rs)
            extra = f", Allreduce {share:.1%} of the time" if configs[name][0] else ""
            print(f"  {name:<24} {seconds:6.2f} s  {speed[name]:9,.0f} examples/s{extra}")
        warmup = statistics.median(r["warmup"] for rs in runs.values() for r in rs)
        print(
            f"  first batch of each process, untimed (loads the compiled kernels): {warmup:.2f} s"
        )
        best_single = max(speed["1 process, 2 threads"], speed["1 rank, 1 thread"])
        print(f"  2 ranks / best single process without threads=2: "
              f"{speed['2 ranks, 1 thread each'] / best_single:.2f}x; "
              f"threads=2 / the same: {speed['1 process, threads=2'] / best_single:.2f}x; "
              f"{runs['2 ranks, 1 thread each'][0]['bytes']:,} bytes reduced per step\n")  # fmt: skip


if __name__ == "__main__":
    main()
