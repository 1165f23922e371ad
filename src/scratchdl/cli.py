"""The `scratchdl` command.

scratchdl demo     train a small network on scikit-learn's bundled 8x8 digits
scratchdl info     versions, BLAS, threads, data folders and which datasets are present
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Sequence

import numpy as np

import scratchdl


class UsageError(Exception):
    """A problem with the user's input: printed as one line, exit status 2."""


def cmd_demo(args: argparse.Namespace) -> None:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise UsageError(
            "the demo trains on scikit-learn's bundled digits; install it with "
            "`pip install 'scratchdl[demo]'` (or `pip install scikit-learn`)"
        ) from None
    from scratchdl import Adam, Dense, Linear, NeuralNetwork, ReLU, SoftmaxCrossEntropy, Trainer
    from scratchdl.data import train_test_split

    if args.epochs < 1:
        raise UsageError(f"--epochs must be a positive integer, received {args.epochs}")
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, seed=args.seed)
    net = NeuralNetwork(
        [Dense(64, ReLU(), weight_init="he"), Dense(10, Linear(), weight_init="glorot")],
        SoftmaxCrossEntropy(),
        seed=args.seed,
    )
    print(
        f"digits: {len(X_train)} training and {len(X_test)} test images of 8x8 pixels, 10 classes"
    )
    print(net.summary(input_shape=(64,)))
    trainer = Trainer(net, Adam(lr=0.003), metrics=["accuracy"])
    start = time.perf_counter()
    trainer.fit(
        X_train,
        y_train,
        X_test,
        y_test,
        epochs=args.epochs,
        eval_every=5,
        batch_size=32,
        seed=args.seed,
        early_stopping=False,
        verbose=1,
    )
    seconds = time.perf_counter() - start
    scores = trainer.evaluate(X_test, y_test)
    print(
        f"test accuracy {scores['accuracy']:.2%} (loss {scores['loss']:.4f}) after {args.epochs} epochs in {seconds:.1f} s"
    )


def cmd_info(args: argparse.Namespace) -> None:
    from scratchdl.data.datasets import BOSTON_FILE, MNIST_FILES, candidate_dirs

    print(
        f"scratchdl {scratchdl.__version__}, numpy {np.__version__}, Python {platform.python_version()} on {platform.platform()}"
    )
    try:
        from threadpoolctl import threadpool_info

        for pool in threadpool_info():
            print(
                f"BLAS: {pool.get('internal_api')} {pool.get('version')} ({pool.get('architecture')}), threads {pool.get('num_threads')}"
            )
    except ImportError:
        print("BLAS: install threadpoolctl to see the BLAS library and its threads")
    print(f"SCRATCHDL_DATA={os.environ.get('SCRATCHDL_DATA', '(not set)')}")
    for name, files in (("mnist", list(MNIST_FILES.values())), ("boston", [BOSTON_FILE])):
        for label, folder in candidate_dirs(name):
            present = sum((folder / f.name).is_file() for f in files)
            print(f"  {name:<7} {label:<16} {folder}: {present}/{len(files)} files")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scratchdl", description="Deep learning from scratch, on NumPy."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train on scikit-learn's 8x8 digits (no download)")
    demo.add_argument("--epochs", type=int, default=30)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=cmd_demo)
    info = sub.add_parser("info", help="versions, BLAS, data folders")
    info.set_defaults(func=cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (UsageError, FileNotFoundError, ValueError) as err:
        if args.debug:
            raise
        print(f"scratchdl {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
