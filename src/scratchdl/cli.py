"""The `scratchdl` command (also ``python -m scratchdl``).

    scratchdl demo                        train on scikit-learn's 8x8 digits, no download
    scratchdl train PRESET [options]      train a preset; writes the model, history and a plot
    scratchdl evaluate MODEL --data NAME  loss and metrics of a saved model on a test set
    scratchdl predict MODEL INPUT.npy     predictions for the examples in a .npy file
    scratchdl export MODEL OUT.onnx       the model as ONNX (the onnx extra)
    scratchdl info                        versions, BLAS, threads, data folders, datasets present

Mistakes in the input (a missing path, a corrupt file, an unknown preset, a negative epoch
count) exit with status 2 and one line saying what is wrong; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

import scratchdl
from scratchdl.core import ShapeError, check_array
from scratchdl.datasets import DataFileError, DownloadError
from scratchdl.distributed import DistributedError
from scratchdl.io import ModelFormatError
from scratchdl.presets import DATASETS, PRESETS, Prepared, apply_preprocessing, prepare, split_raw
from scratchdl.saving import load_with_metadata
from scratchdl.training import ModelCheckpoint, Trainer


class UsageError(Exception):
    """A problem with the user's input: printed as one line, exit status 2."""


def _positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise UsageError(f"{name} must be a positive integer, received {value}")


def _plot_curve(history: Any, path: Path, title: str) -> Path | None:
    try:
        from scratchdl import plot

        plot.history(history, path, title=title)
    except ImportError:
        return None
    return path


def _check_data_dir(data_dir: str | None) -> None:
    if data_dir is not None and not Path(data_dir).is_dir():
        raise UsageError(f"--data-dir {data_dir} is not a folder")


def _train(preset_name: str, epochs: int | None, batch_size: int | None, lr: float | None, seed: int,
           data_dir: str | None, out: Path, verbose: int, resume: str | None = None,
           distributed: bool = False, extend: bool = False, threads: int = 1) -> None:  # fmt: skip
    if preset_name not in PRESETS:
        raise UsageError(f"unknown preset {preset_name!r}; choose one of: {', '.join(PRESETS)}")
    _positive("--epochs", epochs)
    _positive("--batch-size", batch_size)
    _positive("--threads", threads)
    if lr is not None and not (lr > 0 and np.isfinite(lr)):
        raise UsageError(f"--lr must be a positive, finite number, received {lr}")
    if seed < 0:
        raise UsageError(f"--seed must be >= 0, received {seed}")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder (it is created if missing)")
    if extend and resume is None:
        raise UsageError("--extend continues a run: give --resume CHECKPOINT too")
    _check_data_dir(data_dir)
    preset = PRESETS[preset_name]
    data: Prepared = prepare(preset.dataset, data_dir, images=preset.images)
    net, optimizer = preset.build(seed, lr)
    metrics = ["mae", "rmse"] if data.task == "regression" else ["accuracy"]
    trainer = Trainer(net, optimizer, metrics=metrics, distributed=distributed, threads=threads)
    say = print if trainer.rank == 0 else _quiet  # under mpiexec, rank 0 talks and writes
    epochs = epochs or preset.epochs
    if resume is not None and not Path(resume).is_file():
        raise UsageError(f"--resume {resume}: no such checkpoint file")
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = ModelCheckpoint(
        str(out / f"{preset.name}-checkpoint.safetensors"), metadata=preset.metadata(data)
    )
    say(f"{preset.name}: {preset.description}")
    say(f"{preset.dataset}: {len(data.X_train):,} training and {len(data.X_test):,} test examples")
    start = time.perf_counter()
    history = trainer.fit(
        data.X_train, data.y_train, data.X_test, data.y_test, epochs=epochs,
        eval_every=min(preset.eval_every, epochs), batch_size=batch_size or preset.batch_size,
        seed=seed, verbose=verbose, callbacks=[checkpoint], resume_from=resume, extend=extend,
        **preset.fit_options,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    scores = trainer.evaluate(data.X_test, data.y_test)
    model_path = out / f"{preset.name}.safetensors"
    history_path = out / f"{preset.name}-history.json"
    curve = None
    if trainer.rank == 0:
        net.save(model_path, metadata=preset.metadata(data))
        history_path.write_text(
            json.dumps({"epoch": history.epoch, "val_epoch": history.val_epoch, **history.history})
        )
        curve = _plot_curve(history, out / f"{preset.name}-curve.png", preset.name)
    shown = ", ".join(
        f"{k} {v:.2%}" if k == "accuracy" else f"{k} {v:.4f}" for k, v in scores.items()
    )
    say(f"test {shown} after {len(history.epoch)} epochs in {seconds:.1f} s")
    say(f"model:   {model_path}")
    say(f"history: {history_path}")
    say(f"checkpoint (for --resume): {checkpoint.path}")
    say(
        f"curve:   {curve}"
        if curve
        else "curve:   not drawn (install matplotlib: pip install 'scratchdl[plot]')"
    )


def _quiet(*args: Any, **kwargs: Any) -> None:
    """`print` on ranks other than 0."""


def cmd_demo(args: argparse.Namespace) -> None:
    # Without scikit-learn, load_digits raises an ImportError saying what to install.
    _train("digits", args.epochs, None, None, args.seed, None, Path(args.out), verbose=1)


def cmd_train(args: argparse.Namespace) -> None:
    _train(
        args.preset,
        args.epochs,
        args.batch_size,
        args.lr,
        args.seed,
        args.data_dir,
        Path(args.out),
        args.verbose,
        args.resume,
        args.distributed,
        args.extend,
        args.threads,
    )


def _load(path: str) -> tuple[scratchdl.NeuralNetwork, dict[str, str]]:
    if not Path(path).is_file():
        raise UsageError(f"model file {path} does not exist")
    net, metadata = load_with_metadata(path)
    return net, metadata


def _preprocessing(
    metadata: dict[str, str], path: str = "the model file", raw: bool = False
) -> dict[str, Any]:
    if "preprocessing" not in metadata and not raw:
        raise UsageError(
            f"{path} records no preprocessing (it was not written by `scratchdl train`), so "
            "raw data cannot be prepared as it was in training; pass --raw to feed the data "
            "unchanged"
        )
    try:
        prep = json.loads(metadata.get("preprocessing", "{}"))
    except json.JSONDecodeError:
        raise ModelFormatError("the model file's preprocessing entry is not JSON") from None
    if not isinstance(prep, dict):
        raise ModelFormatError("the model file's preprocessing entry must be an object")
    return prep


def cmd_evaluate(args: argparse.Namespace) -> None:
    net, metadata = _load(args.model)
    if args.data not in DATASETS:
        raise UsageError(f"unknown dataset {args.data!r}; choose one of: {', '.join(DATASETS)}")
    _check_data_dir(args.data_dir)
    _, _, X_test, y_test, task = split_raw(args.data, args.data_dir)
    prep = _preprocessing(metadata, args.model, args.raw)
    expected = tuple(prep.get("example_shape", net.layers[0].input_shape))
    if X_test.shape[1:] != expected:
        trained_on = metadata.get("dataset", "the dataset it was trained on")
        raise UsageError(
            f"the model takes examples of shape {expected} but the {args.data} test set has {X_test.shape[1:]}; "
            f"evaluate it on {trained_on}"
        )
    X = apply_preprocessing(X_test, prep)
    metrics = ["mae", "rmse"] if task == "regression" else ["accuracy"]
    scores = Trainer(net, scratchdl.SGD(0.1), metrics=metrics).evaluate(X, y_test)
    shown = ", ".join(
        f"{k} {v:.2%}" if k == "accuracy" else f"{k} {v:.4f}" for k, v in scores.items()
    )
    print(f"{args.model} on the {args.data} test set ({len(X):,} examples): {shown}")


def cmd_predict(args: argparse.Namespace) -> None:
    net, metadata = _load(args.model)
    path = Path(args.input)
    if not path.is_file():
        raise UsageError(f"input file {path} does not exist")
    try:
        X = np.load(path, allow_pickle=False)
    except ValueError as err:
        raise UsageError(f"{path} is not a numeric .npy array ({err})") from None
    except OSError as err:
        raise UsageError(f"{path} cannot be read as .npy ({err})") from None
    if not isinstance(X, np.ndarray) or not np.issubdtype(X.dtype, np.number):
        raise UsageError(f"{path} does not hold a numeric array")
    try:
        check_array(str(path), X)
    except (TypeError, ValueError) as err:
        raise UsageError(str(err)) from None
    prep = _preprocessing(metadata, args.model, args.raw)
    example = tuple(prep.get("example_shape", net.layers[0].input_shape))
    if X.shape == example:
        X = X[None]
    elif X.shape[1:] != example:
        raise UsageError(
            f"{path} has shape {X.shape}; the model takes one example of shape {example} or a batch (n, {', '.join(map(str, example))})"
        )
    prediction = net.predict(apply_preprocessing(X, prep))
    classify = metadata.get("task") in ("classification", "language-model")
    result = prediction.argmax(axis=-1) if classify else prediction
    for i, row in enumerate(result[: args.show]):
        print(
            f"{i}: class {row}"
            if classify
            else f"{i}: " + " ".join(f"{v:.4f}" for v in np.ravel(row))
        )
    if len(result) > args.show:
        print(f"... {len(result) - args.show} more")
    if args.out:
        np.save(args.out, result)
        print(f"predictions saved to {args.out}")


def cmd_export(args: argparse.Namespace) -> None:
    from scratchdl.onnx_export import OPSET, export_onnx

    net, metadata = _load(args.model)
    classes = net.layers[-1].output_shape[-1] if net.layers[-1].output_shape else None
    extra = (
        {**metadata, "classes": str(classes)} if metadata.get("task") != "regression" else metadata
    )
    try:
        path = export_onnx(net, args.out, metadata=extra)
    except ValueError as err:
        raise UsageError(str(err)) from None
    first = net.layers[0].input_shape
    kind = "int64 ids" if type(net.layers[0]).__name__ == "Embedding" else "float32"
    print(f"{path}: ONNX opset {OPSET}")
    print(f"  input:  input, {kind}, shape (batch, {', '.join(map(str, first))})")
    print(
        f"  output: output, float32, shape (batch, {', '.join(map(str, net.layers[-1].output_shape))})"
    )
    if metadata.get("preprocessing"):
        print("  metadata: the model file's preprocessing, task and dataset (apply the "
              "preprocessing to raw inputs first)")  # fmt: skip


def cmd_info(args: argparse.Namespace) -> None:
    from scratchdl.datasets.loaders import (
        BOSTON_FILE,
        FASHION_MNIST_FILES,
        MNIST_FILES,
        TEXT_FILES,
        candidate_dirs,
    )

    print(
        f"scratchdl {scratchdl.__version__}, numpy {np.__version__}, Python {platform.python_version()}, {platform.platform()}"
    )
    try:
        from threadpoolctl import threadpool_info

        for pool in threadpool_info():
            print(
                f"BLAS: {pool.get('internal_api')} {pool.get('version')} ({pool.get('architecture')}), {pool.get('num_threads')} threads"
            )
    except ImportError:
        print("BLAS: install threadpoolctl to see the BLAS library and its threads")
    pinned = [
        f"{k}={os.environ[k]}" for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ
    ]
    if pinned:
        print(
            f"  the environment sets {' '.join(pinned)}: OpenBLAS runs those kernels, not the ones "
            "it picks for this CPU (on an AVX-512 machine pinned to Haswell, NumPy's products "
            "took 1.3-1.5x as long; see the README's Speed section)"
        )
    from scratchdl import backend

    kernels = backend.fast_kernels()
    if kernels is not None:
        import numba

        print(f"compiled kernels (scratchdl[fast]): on, numba {numba.__version__}")
    elif os.environ.get("SCRATCHDL_FAST", "1") == "0":
        print("compiled kernels (scratchdl[fast]): off (SCRATCHDL_FAST=0)")
    else:
        print("compiled kernels (scratchdl[fast]): off (numba is not installed)")
    print(f"CPU cores: {os.cpu_count()}")
    print(f"SCRATCHDL_DATA={os.environ.get('SCRATCHDL_DATA', '(not set)')}")
    groups = {
        "mnist": list(MNIST_FILES.values()),
        "fashion-mnist": list(FASHION_MNIST_FILES.values()),
        "boston": [BOSTON_FILE],
        "text": list(TEXT_FILES.values()),
    }
    for name, files in groups.items():
        for label, folder in candidate_dirs(name):
            present = sum((folder / f.name).is_file() for f in files)
            print(f"  {name:<14} {label:<16} {folder}: {present}/{len(files)} files")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="scratchdl", description="Deep learning from scratch, on NumPy.")
    parser.add_argument("--version", action="version", version=f"scratchdl {scratchdl.__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    demo = sub.add_parser(
        "demo", parents=[common], help="train on scikit-learn's 8x8 digits (no download)"
    )
    demo.add_argument("--epochs", type=int, default=None)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default="scratchdl-out", help="folder for the model and the plot")
    demo.set_defaults(func=cmd_demo)

    train = sub.add_parser("train", parents=[common], help="train a preset",
                           description="presets: " + "; ".join(f"{p.name}: {p.description}" for p in PRESETS.values()))  # fmt: skip
    train.add_argument("preset", help=", ".join(PRESETS))
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--lr", type=float)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--data-dir", help="folder holding the dataset's files")
    train.add_argument(
        "--out", default="scratchdl-out", help="folder for the model, history and plot"
    )
    train.add_argument("--verbose", type=int, default=1)
    train.add_argument(
        "--resume", help="continue from a checkpoint written by an earlier run (same options)"
    )
    train.add_argument(
        "--extend",
        action="store_true",
        help="with --resume: train --epochs more epochs, with the schedule planned afresh",
    )
    train.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel over MPI: run as `mpiexec -n N scratchdl train ... --distributed`",
    )
    train.add_argument(
        "--threads",
        type=int,
        default=1,
        help="split every batch over this many threads (data-parallel; faster for CNNs)",
    )
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser(
        "evaluate", parents=[common], help="score a saved model on a test set"
    )
    evaluate.add_argument("model")
    evaluate.add_argument("--data", required=True, help=", ".join(DATASETS))
    evaluate.add_argument("--data-dir")
    evaluate.add_argument("--raw", action="store_true", help="feed the data without preprocessing")
    evaluate.set_defaults(func=cmd_evaluate)

    predict = sub.add_parser(
        "predict", parents=[common], help="predict the examples in a .npy file"
    )
    predict.add_argument("model")
    predict.add_argument("input", help="a .npy array of raw examples (one example or a batch)")
    predict.add_argument("--out", help="save the predictions to this .npy file")
    predict.add_argument("--show", type=int, default=10, help="how many predictions to print")
    predict.add_argument("--raw", action="store_true", help="feed the input without preprocessing")
    predict.set_defaults(func=cmd_predict)

    export = sub.add_parser("export", parents=[common], help="write a model file as ONNX")
    export.add_argument("model", help="a .safetensors model file")
    export.add_argument("out", help="the .onnx file to write")
    export.set_defaults(func=cmd_export)

    info = sub.add_parser("info", parents=[common], help="versions, BLAS, data folders")
    info.set_defaults(func=cmd_info)
    return parser


USER_ERRORS = (
    UsageError,
    DistributedError,
    FileNotFoundError,
    DataFileError,
    DownloadError,
    ModelFormatError,
    ShapeError,
    ImportError,
)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except USER_ERRORS as err:
        if args.debug:
            raise
        message = str(err).replace("\n", " ")
        print(f"scratchdl {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"scratchdl {args.command}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError) as err:  # the library refused an input
        if args.debug:
            raise
        message = str(err).replace("\n", " ")
        print(f"scratchdl {args.command}: error: {message}", file=sys.stderr)
        return 2
    except Exception as err:
        if args.debug:
            raise
        print(
            f"scratchdl {args.command}: internal error: {type(err).__name__}: {err} "
            "(run again with --debug for the traceback, and please report it)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
