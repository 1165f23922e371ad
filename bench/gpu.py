"""Benchmark for a machine with a GPU: scratchdl on CuPy against PyTorch on CUDA.

Models: the book's chapter-5 CNN and the modern small CNN of `bench/cnn.py` (one epoch of
MNIST, batch 60 / 64, float32, through `Trainer.fit`, which moves each batch from the
host), and the LSTM of `bench/lstm.py` (forward + backward of one batch, 25 and 100 steps,
hidden 256). PyTorch runs the same models and loops on CUDA, also moving each batch from
the host; both are synchronised before the clock stops.

    python bench/gpu.py [--repeats 3] [--rows 60000]
    python bench/gpu.py --backend array_api_strict --rows 600   # a dry run on the CPU

Prints the median seconds (configurations interleaved) and scratchdl/PyTorch ratios from
the same run. Without CuPy or without a GPU it says so and exits with status 1, having
measured nothing. ``--backend array_api_strict`` runs the scratchdl side on
`array_api_strict` arrays (on the CPU, so its times mean nothing): it checks that the
script and the models work without a GPU.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
from _timing import interleaved, machine
from cnn import MODELS, load, torch_epoch_on
from lstm import BATCH, HIDDEN, VOCAB

from scratchdl import LSTM, MeanSquaredError, NeuralNetwork, Trainer


def backend(name: str) -> tuple[Any, Any, Callable[[], None]]:
    """(array library, device, synchronise) for `name`, or exit with the reason."""
    if name == "array_api_strict":
        import array_api_strict

        return array_api_strict, array_api_strict.Device("device1"), lambda: None
    try:
        import cupy
    except ImportError:
        sys.exit(
            "bench/gpu.py: CuPy is not installed (pip install 'scratchdl[gpu]'); nothing measured"
        )
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CuPy imports without a driver; using it raises
        sys.exit(f"bench/gpu.py: CuPy cannot reach a GPU ({err}); nothing measured")
    if count < 1:
        sys.exit("bench/gpu.py: no GPU found; nothing measured")
    return cupy, None, cupy.cuda.Device().synchronize


def torch_cuda() -> Any:
    """torch, if it is installed and sees a CUDA device; else None."""
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def scratchdl_cnn(name: str, xp: Any, device: Any, sync: Callable[[], None]) -> Callable:
    make, optimizer, batch = MODELS[name]

    def run(X: np.ndarray, y: np.ndarray) -> float:
        net = make().to(xp, device)
        trainer = Trainer(net, optimizer())
        loss = trainer.fit(X, y, epochs=1, batch_size=batch, verbose=0).history["loss"][0]
        sync()
        return loss

    return run


def torch_cnn(name: str, torch: Any) -> Callable:
    def run(X: np.ndarray, y: np.ndarray) -> float:
        total = torch_epoch_on(torch, name, X, y, "cuda")
        torch.cuda.synchronize()
        return total

    return run


def scratchdl_lstm(x: np.ndarray, xp: Any, device: Any, sync: Callable[[], None]) -> Callable:
    net = NeuralNetwork([LSTM(HIDDEN, return_sequences=True)], MeanSquaredError(), seed=0)
    net.to(xp, device)
    xd = xp.asarray(x, device=device)
    layer = net.layers[0]
    net.forward(xd)
    grad = np.random.default_rng(1).standard_normal((BATCH, x.shape[1], HIDDEN))
    grad_d = xp.asarray(grad.astype(np.float32), device=device)

    def run() -> None:
        layer.forward(xd)
        layer.backward(grad_d, need_input_grad=False)  # as torch: the data needs none
        sync()

    return run


def torch_lstm(x: np.ndarray, torch: Any) -> Callable:
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(VOCAB, HIDDEN, batch_first=True).to("cuda")
    xt = torch.from_numpy(x).to("cuda")
    grad = np.random.default_rng(1).standard_normal((BATCH, x.shape[1], HIDDEN))
    grad_t = torch.from_numpy(grad.astype(np.float32)).to("cuda")

    def run() -> None:
        out, _ = lstm(xt)
        out.backward(grad_t)
        torch.cuda.synchronize()

    return run


def report(title: str, med: dict[str, float], times: dict[str, list[float]]) -> None:
    print(title)
    for name, seconds in med.items():
        spread = f"[{min(times[name]):.3f}-{max(times[name]):.3f}]"
        print(f"  {name:<24} {seconds:8.3f} s  {spread}")
    if "scratchdl" in med and "torch" in med:
        print(f"  scratchdl / torch: {med['scratchdl'] / med['torch']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=60000)
    parser.add_argument("--backend", choices=["cupy", "array_api_strict"], default="cupy")
    args = parser.parse_args()
    xp, device, sync = backend(args.backend)
    torch = torch_cuda() if args.backend == "cupy" else None
    print(machine())
    if args.backend == "cupy":
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        print(f"GPU: {props['name'].decode()} | CuPy {cupy.__version__}")
        if torch is None:
            print("PyTorch with CUDA not found: scratchdl's times only, no ratios")
        else:
            print(f"PyTorch {torch.__version__} (CUDA {torch.version.cuda})")
    else:
        print("dry run on array_api_strict (the CPU): the times are not speed figures")
    X, y, source = load(args.rows)
    for name in ("book", "modern"):
        configs: dict[str, Callable[[], object]] = {
            "scratchdl": lambda name=name: scratchdl_cnn(name, xp, device, sync)(X, y)
        }
        if torch is not None:
            configs["torch"] = lambda name=name: torch_cnn(name, torch)(X, y)
        scratchdl_cnn(name, xp, device, sync)(X[:256], y[:256])  # warm-up: kernel compiles
        med, times = interleaved(configs, args.repeats)
        report(f"\n{name} CNN, one epoch of {len(X)} images ({source}), float32", med, times)
    for steps in (25, 100):
        ids = np.random.default_rng(0).integers(0, VOCAB, (BATCH, steps))
        x = np.eye(VOCAB, dtype=np.float32)[ids]
        configs = {"scratchdl": scratchdl_lstm(x, xp, device, sync)}
        if torch is not None:
            configs["torch"] = torch_lstm(x, torch)
        for fn in configs.values():
            fn()  # warm-up
        med, times = interleaved(configs, args.repeats)
        report(
            f"\nLSTM forward + backward, batch {BATCH}, {steps} steps, hidden {HIDDEN}", med, times
        )


if __name__ == "__main__":
    main()
