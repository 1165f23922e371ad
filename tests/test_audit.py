"""The audit: bad inputs and faults, as careless and unlucky users produce them (issue 19).

One row a case. Each says what must happen: the right result, or an error of the right type
whose message names what was wrong. The rows are built in groups — constructors, data given
to fit/evaluate/predict, shapes met by layers, files, the command line — and every one runs.
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import scratchdl as sd
from scratchdl.cli import main

Row = tuple[str, Callable[[], object], type[BaseException] | None, str]


def rows_for(
    name: str, make: Callable[..., object], cases: list[tuple], error: type, match: str
) -> list[Row]:
    """One row per bad argument set: ``make(*args, **kwargs)`` must raise `error` ~ `match`."""
    out = []
    for case in cases:
        args, kwargs = (case, {}) if not isinstance(case[-1], dict) else (case[:-1], case[-1])
        out.append(
            (f"{name}{args}{kwargs or ''}", lambda a=args, k=kwargs: make(*a, **k), error, match)
        )
    return out


NUMBER_CASES = [0, -1, 2.5, "10", True, math.nan, math.inf]

CONSTRUCTORS: list[Row] = [
    *rows_for("Dense", sd.Dense, [(v,) for v in NUMBER_CASES], (ValueError, TypeError), "neurons must be a positive integer"),
    *rows_for("Dense", sd.Dense, [(4, "nope"), (4, 3)], ValueError, "activation must be an Operation or one of"),
    *rows_for("Dense", sd.Dense, [(4, {"weight_init": "xavier"})], ValueError, "weight_init must be one of"),
    *rows_for("Dense", sd.Dense, [(4, {"dropout": v}) for v in (0, 1.5, -0.1)], ValueError, "probability of keeping"),
    *rows_for("Dense", sd.Dense, [(4, {"dropout": v}) for v in ("0.8", True, None)], TypeError, "dropout must be a keep probability"),
    *rows_for("Dense", sd.Dense, [(4, None, "yes")], TypeError, "conv_in must be True or False"),
    *rows_for("Conv2D", sd.Conv2D, [(0, 3), (-2, 3), (2.5, 3)], ValueError, "neurons must be a positive integer"),
    *rows_for("Conv2D", sd.Conv2D, [(2, 0), (2, (3,)), (2, "3"), (2, (0, 3))], ValueError, "kernel_size must be a positive int or a pair"),
    *rows_for("Conv2D", sd.Conv2D, [(2, 3, 0), (2, 3, 1.5), (2, 3, True), (2, 3, -1)], ValueError, "stride must be a positive integer"),
    *rows_for("Conv2D", sd.Conv2D, [(2, 3, {"padding": v}) for v in ("full", -1, (1, 2, 3))], ValueError, "padding must be 'same', 'valid'"),
    *rows_for("Conv2D", sd.Conv2D, [(2, 3, {"bias": "no"}), (2, 3, {"flatten": 1})], TypeError, "must be True or False"),
    *rows_for("Conv2D", sd.Conv2D, [(2, 3, {"weight_init": "x"})], ValueError, "weight_init must be one of"),
    *rows_for("Conv2D", sd.Conv2D, [(2,), (2, {"kernel_size": 3, "param_size": 5})], ValueError, "kernel_size"),
    *rows_for("MaxPool2D", sd.MaxPool2D, [(0,), (-1,), ("2",)], ValueError, "kernel_size must be a positive int"),
    *rows_for("AvgPool2D", sd.AvgPool2D, [(2, 0), (2, -1), (2, 1.5)], ValueError, "stride must be a positive int"),
    *rows_for("AvgPool2D", sd.AvgPool2D, [(2, None, "x"), (2, None, -2)], ValueError, "padding must be"),
    *rows_for("Dropout", sd.Dropout, [(0,), (1.1,), (-0.5,)], ValueError, "keep_prob must be in"),
    *rows_for("Dropout", sd.Dropout, [(0.5, "no"), (0.5, 1)], TypeError, "inverted must be True or False"),
    *rows_for("LeakyReLU", sd.LeakyReLU, [(-0.1,), (1.0,)], ValueError, "alpha must be in"),
    *rows_for("BatchNorm", sd.BatchNorm, [(1.0,), (-0.1,)], ValueError, "momentum must be in"),
    *rows_for("BatchNorm", sd.BatchNorm, [(0.9, 0), (0.9, -1)], ValueError, "eps must be > 0"),
    *[row for cls in (sd.RNN, sd.LSTM, sd.GRU) for row in rows_for(cls.__name__, cls, [(0,), (-1,), (1.5,)], ValueError, "must be a positive integer")],
    *[row for cls in (sd.RNN, sd.LSTM, sd.GRU) for row in rows_for(cls.__name__, cls, [(4, "yes"), (4, False, 1)], TypeError, "must be True or False")],
    *rows_for("Embedding", sd.Embedding, [(0, 3), (-3, 3), ("5", 3)], ValueError, "vocab_size must be a positive integer"),
    *rows_for("Embedding", sd.Embedding, [(5, 0)], ValueError, "neurons must be a positive integer"),
    *rows_for("MeanSquaredError", sd.MeanSquaredError, [("yes",), (1,)], TypeError, "normalize must be True or False"),
    *rows_for("SoftmaxCrossEntropy", sd.SoftmaxCrossEntropy, [(0,), (1,), ("x",), (True,)], ValueError, "eps must be a number in"),
    *[
        row
        for cls in (sd.SGD, sd.SGDMomentum, sd.AdaGrad, sd.RMSProp, sd.Adam, sd.AdamW)
        for row in [
            *rows_for(cls.__name__, cls, [(0,), (-1,), (math.inf,), (math.nan,)], ValueError, "lr must be > 0"),
            *rows_for(cls.__name__, cls, [("0.1",), (True,), (None,)], TypeError, "lr must be a number"),
            *rows_for(cls.__name__, cls, [(0.1, {"weight_decay": -1})], ValueError, "weight_decay must be >= 0"),
            *rows_for(cls.__name__, cls, [(0.1, {"clip_norm": 0}), (0.1, {"clip_value": -1})], ValueError, "must be > 0"),
            *rows_for(cls.__name__, cls, [(0.1, {"schedule": "cosine"})], TypeError, "schedule must be a Schedule"),
        ]
    ],
    *rows_for("SGDMomentum", sd.SGDMomentum, [(0.1, {"momentum": 1.0}), (0.1, {"momentum": -0.1})], ValueError, "momentum must be >= 0"),
    *rows_for("SGDMomentum", sd.SGDMomentum, [(0.1, 0.9)], ValueError, "final_lr=0.9 has no effect without decay_type"),
    *rows_for("SGD", sd.SGD, [(0.1, 0.01, "cosine")], ValueError, "decay_type must be one of"),
    *rows_for("SGD", sd.SGD, [(0.1, 0.01, 3)], TypeError, "decay_type must be"),
    *rows_for("Adam", sd.Adam, [(0.01, 1.0), (0.01, 0.9, -1.0)], ValueError, "must be >= 0"),
    *rows_for("Adam", sd.Adam, [(0.01, {"eps": 0})], ValueError, "eps must be > 0"),
    *rows_for("SGD", sd.SGD, [(0.1, {"param_groups": [{"lr": 1}]})], TypeError, "must be a dict with 'params'"),
    *rows_for("LinearDecay", sd.LinearDecay, [(-1,)], ValueError, "final_lr must be >= 0"),
    *rows_for("ExponentialDecay", sd.ExponentialDecay, [(0,)], ValueError, "final_lr must be > 0"),
    *rows_for("StepDecay", sd.StepDecay, [(0,), (1.5,), (2, {"gamma": 0})], ValueError, "must be"),
    *rows_for("Warmup", sd.Warmup, [(0,), (1.5,)], ValueError, "warmup_epochs must be a positive integer"),
    *rows_for("EarlyStopping", sd.EarlyStopping, [({"patience": -1},), ({"patience": 1.5},)], ValueError, "patience must be an integer >= 0"),
    *rows_for("EarlyStopping", sd.EarlyStopping, [({"min_delta": -1},)], ValueError, "min_delta must be >= 0"),
    *rows_for("EarlyStopping", sd.EarlyStopping, [({"mode": "best"},)], ValueError, "mode must be 'auto', 'min' or 'max'"),
    *rows_for("EarlyStopping", sd.EarlyStopping, [({"restore_best": "yes"},)], TypeError, "restore_best must be True or False"),
    *rows_for("ModelCheckpoint", sd.ModelCheckpoint, [("c.st", {"every_n_batches": 0})], ValueError, "every_n_batches must be a positive integer"),
    *rows_for("ModelCheckpoint", sd.ModelCheckpoint, [("c-{epoc}.st",), ("c-{}.st",)], ValueError, "is not a valid template"),
    *rows_for("ModelCheckpoint", sd.ModelCheckpoint, [("c.st", {"save_best_only": "y"})], TypeError, "save_best_only must be True or False"),
    *rows_for("NeuralNetwork", sd.NeuralNetwork, [(sd.Dense(2), sd.MeanSquaredError()), ("dense", sd.MeanSquaredError())], TypeError, "layers must be a list of layers"),
    *rows_for("NeuralNetwork", sd.NeuralNetwork, [([], sd.MeanSquaredError())], ValueError, "layers must not be empty"),
    *rows_for("NeuralNetwork", sd.NeuralNetwork, [([sd.Dense(2)], "mse"), ([sd.Dense(2)], None)], TypeError, "loss must be a Loss"),
    *rows_for("NeuralNetwork", sd.NeuralNetwork, [([sd.Dense(2)], sd.MeanSquaredError(), 1, "float16")], ValueError, "dtype must be float32 or float64"),
    *rows_for("NeuralNetwork", sd.NeuralNetwork, [([sd.Dense(2)], sd.MeanSquaredError(), "1"), ([sd.Dense(2)], sd.MeanSquaredError(), 1.5)], TypeError, "seed must be an integer or None"),
    *rows_for("NeuralNetwork", sd.NeuralNetwork, [([sd.Dense(2)], sd.MeanSquaredError(), -1)], ValueError, "seed must be >= 0"),
    *rows_for("NeuralNetwork", sd.NeuralNetwork, [([3], sd.MeanSquaredError())], TypeError, "must be a Layer or an Operation"),
]  # fmt: skip


def test_a_layer_with_star_args_is_refused_when_saved_not_when_loaded(tmp_path):
    from scratchdl.io import register

    class Stars(sd.Dense):
        def __init__(self, *sizes):
            super().__init__(sizes[0])

    register(Stars)
    model = sd.NeuralNetwork([Stars(3)], sd.MeanSquaredError())
    model.forward(np.zeros((1, 2)))
    with pytest.raises(ValueError, match=r"takes \*sizes, which a model file cannot record"):
        model.save(tmp_path / "m.safetensors")


def test_a_layer_in_a_list_twice_is_refused():
    layer = sd.Dense(3)
    with pytest.raises(ValueError, match="appears twice in the list"):
        sd.NeuralNetwork([layer, layer], sd.MeanSquaredError())


def net(dtype=np.float32, out=3, loss=None):
    return sd.NeuralNetwork(
        [sd.Dense(4, "tanh"), sd.Dense(out, sd.Linear())],
        loss or sd.SoftmaxCrossEntropy(),
        seed=0,
        dtype=dtype,
    )


RNG = np.random.default_rng(0)
X = RNG.standard_normal((20, 5))
LABELS = RNG.integers(0, 3, 20)


def fit(X_train=X, y_train=LABELS, *, model=None, optim=None, **kwargs):
    kwargs.setdefault("verbose", 0)
    kwargs.setdefault("epochs", 1)
    network = model or net()
    return sd.Trainer(network, optim or sd.SGD(0.1)).fit(X_train, y_train, **kwargs)


def with_value(array, index, value, dtype=None):
    out = np.array(array, dtype=dtype or np.result_type(array, float))
    out[index] = value
    return out


DATA: list[Row] = [
    ("fit X 1-D", lambda: fit(X[:, 0]), sd.ShapeError, "X_train must have shape"),
    ("fit rows differ", lambda: fit(X, LABELS[:10]), sd.ShapeError, "same number of examples"),
    ("fit empty", lambda: fit(X[:0], LABELS[:0]), ValueError, "X_train is empty"),
    ("fit NaN in X_train", lambda: fit(with_value(X, (3, 1), np.nan)), ValueError, r"X_train contains nan at index \(3, 1\)"),
    ("fit inf in X_train", lambda: fit(with_value(X, (0, 0), np.inf)), ValueError, "X_train contains inf"),
    ("fit NaN in X_test", lambda: fit(X_test=with_value(X, (5, 2), np.nan), y_test=LABELS), ValueError, r"X_test contains nan at index \(5, 2\)"),
    ("fit -inf in X_test", lambda: fit(X_test=with_value(X, (1, 1), -np.inf), y_test=LABELS), ValueError, "X_test contains -inf"),
    ("fit complex X", lambda: fit(X + 1j), TypeError, "X_train is complex"),
    ("fit string X", lambda: fit(X.astype(str)), TypeError, "X_train must hold numbers"),
    ("fit object X", lambda: fit(np.array([[1, None]] * 20, dtype=object)), TypeError, "must hold numbers"),
    ("fit NaN in y", lambda: fit(X, with_value(RNG.standard_normal((20, 3)), (2, 0), np.nan), model=net(loss=sd.MeanSquaredError())), ValueError, "y_train contains nan"),
    ("fit negative label", lambda: fit(X, with_value(LABELS, 4, -1, int)), ValueError, "class labels must be >= 0"),
    ("fit label too large", lambda: fit(X, with_value(LABELS, 4, 7, int)), ValueError, r"class labels must be in \[0, 3\)"),
    ("fit fractional labels", lambda: fit(X, LABELS + 0.5), ValueError, "probability rows"),
    ("fit one-hot rows not summing to 1", lambda: fit(X, np.full((20, 3), 0.5)), ValueError, "must sum to 1; row 0 sums to 1.5"),
    ("fit negative probability", lambda: fit(X, np.tile([1.5, -0.5, 0.0], (20, 1))), ValueError, "cannot be negative"),
    ("fit complex y", lambda: fit(X, LABELS + 0j), TypeError, "y_train is complex"),
    ("fit X_test alone", lambda: fit(X_test=X), ValueError, "give both X_test and y_test"),
    ("fit y_test alone", lambda: fit(y_test=LABELS), ValueError, "give both X_test and y_test"),
    *[(f"fit epochs={v!r}", lambda v=v: fit(epochs=v), ValueError, "epochs must be a positive integer") for v in (0, -1, 2.5, "3", True)],
    *[(f"fit batch_size={v!r}", lambda v=v: fit(batch_size=v), ValueError, "batch_size must be a positive integer") for v in (0, -8, 1.5)],
    *[(f"fit eval_every={v!r}", lambda v=v: fit(eval_every=v), ValueError, "eval_every must be a positive integer") for v in (0, None)],
    *[(f"fit verbose={v!r}", lambda v=v: fit(verbose=v), ValueError, "verbose must be 0, 1 or 2") for v in (-1, "1", True)],
    *[(f"fit {k}={v!r}", lambda k=k, v=v: fit(**{k: v}), TypeError, f"{k} must be True or False") for k in ("restart", "early_stopping", "terminate_on_nan", "single_output", "conv_testing", "extend") for v in ("yes", 1)],
    ("fit conv_testing without validation", lambda: fit(conv_testing=True), ValueError, "conv_testing=True needs validation data"),
    ("fit extend without resume", lambda: fit(extend=True), ValueError, "extend=True continues a checkpoint"),
    ("fit resume from a missing file", lambda: fit(resume_from="/nonexistent/c.safetensors"), FileNotFoundError, "no checkpoint at /nonexistent"),
    ("fit a non-callback", lambda: fit(callbacks=[print]), TypeError, "callbacks must be Callback objects"),
    ("fit EarlyStopping monitor typo", lambda: fit(X_test=X, y_test=LABELS, callbacks=[sd.EarlyStopping(monitor="val_los")]), ValueError, r"monitor='val_los' is not among the logged values \['loss', 'val_loss'\]"),
    ("fit EarlyStopping val monitor without validation", lambda: fit(callbacks=[sd.EarlyStopping()]), ValueError, "needs validation data"),
    ("fit ModelCheckpoint monitor typo", lambda: fit(X_test=X, y_test=LABELS, callbacks=[sd.ModelCheckpoint("/tmp/x-{epoch}.st", monitor="val_acc", save_best_only=True)]), ValueError, "monitor='val_acc' is not among"),
    ("fit EarlyStopping on training loss works", lambda: fit(callbacks=[sd.EarlyStopping(monitor="loss")]), None, ""),
    ("fit one optimizer for two networks", lambda: [sd.Trainer(net(), o) for o in [sd.SGD(0.1)] * 2], ValueError, "already attached to another network"),
    ("Trainer net of the wrong type", lambda: sd.Trainer("net", sd.SGD(0.1)), TypeError, "net must be a NeuralNetwork"),
    ("Trainer optim of the wrong type", lambda: sd.Trainer(net(), "sgd"), TypeError, "optim must be an Optimizer"),
    ("Trainer unknown metric", lambda: sd.Trainer(net(), sd.SGD(0.1), metrics=["f1"]), ValueError, "f1"),
    ("Trainer distributed='yes'", lambda: sd.Trainer(net(), sd.SGD(0.1), distributed="yes"), TypeError, "distributed must be True or False"),
    ("predict NaN", lambda: net().predict(with_value(X, (0, 0), np.nan)), ValueError, "NeuralNetwork.predict: X contains nan"),
    ("predict complex", lambda: net().predict(X + 0j), TypeError, "is complex"),
    ("predict 1-D", lambda: net().predict(X[0]), sd.ShapeError, "must have a batch axis"),
    ("predict strings", lambda: net().predict(X.astype(str)), TypeError, "must hold numbers"),
    ("forward complex", lambda: net().forward(X + 1j), TypeError, "real numbers"),
    ("evaluate NaN", lambda: sd.Trainer(net(), sd.SGD(0.1)).evaluate(with_value(X, (2, 2), np.nan), LABELS), ValueError, "X contains nan"),
    ("evaluate labels out of range", lambda: sd.Trainer(net(), sd.SGD(0.1)).evaluate(X, LABELS + 3), ValueError, r"class labels must be in \[0, 3\)"),
    ("predict works", lambda: net().predict(X).shape == (20, 3) or 1 / 0, None, ""),
    ("fit on integer X works", lambda: fit(RNG.integers(0, 5, (20, 5))), None, ""),
    ("fit on bool X works", lambda: fit(RNG.random((20, 5)) > 0.5), None, ""),
    ("fit on one-hot targets works", lambda: fit(X, np.eye(3)[LABELS]), None, ""),
    ("fit on soft targets works", lambda: fit(X, np.full((20, 3), 1 / 3)), None, ""),
]  # fmt: skip


def forward(layers, x, loss=None):
    return sd.NeuralNetwork(layers, loss or sd.MeanSquaredError(), seed=0).forward(x)


SHAPES: list[Row] = [
    ("Dense on unflattened images", lambda: forward([sd.Dense(3)], np.zeros((2, 28, 28))), sd.ShapeError, "flatten the examples first"),
    ("Dense on rank 4", lambda: forward([sd.Conv2D(2, 3), sd.Dense(3)], np.zeros((2, 1, 5, 5))), sd.ShapeError, r"Conv2D\(\.\.\., flatten=True\)"),
    ("Dense on rank 1", lambda: sd.Dense(3).forward(np.zeros(4)), sd.ShapeError, r"input must have shape \(batch, features\)"),
    ("Dense after a recurrent layer works", lambda: forward([sd.Embedding(5, 3), sd.LSTM(4, return_sequences=True), sd.Dense(2)], np.zeros((2, 6))), None, ""),
    ("Dense with the wrong features later", lambda: [n := sd.NeuralNetwork([sd.Dense(3)], sd.MeanSquaredError()), n.forward(np.zeros((2, 4))), n.forward(np.zeros((2, 5)))], sd.ShapeError, r"layer 1 \(Dense\).*received \(2, 5\)"),
    ("Conv2D on rank 2", lambda: forward([sd.Conv2D(2, 3)], np.zeros((2, 9))), sd.ShapeError, r"\(batch, channels, height, width\)"),
    ("Conv2D on channels-last images", lambda: forward([sd.Conv2D(2, 3)], np.zeros((2, 28, 28, 1))), sd.ShapeError, "looks channels-last"),
    ("Conv2D kernel larger than image", lambda: forward([sd.Conv2D(2, 7, padding="valid")], np.zeros((2, 1, 5, 5))), sd.ShapeError, "larger than the padded image"),
    ("Conv2D with other channels later", lambda: [n := sd.NeuralNetwork([sd.Conv2D(2, 3)], sd.MeanSquaredError()), n.forward(np.zeros((1, 1, 5, 5))), n.forward(np.zeros((1, 3, 5, 5)))], sd.ShapeError, "input must have 1 channels"),
    ("MaxPool2D on rank 2", lambda: forward([sd.MaxPool2D(2)], np.zeros((2, 9))), sd.ShapeError, r"\(batch, channels, height, width\)"),
    ("GlobalAvgPool2D on rank 3", lambda: forward([sd.GlobalAvgPool2D()], np.zeros((2, 3, 4))), sd.ShapeError, "input must have shape"),
    ("BatchNorm on rank 3", lambda: forward([sd.BatchNorm()], np.zeros((2, 3, 4))), sd.ShapeError, "input must have shape"),
    ("LSTM on rank 2", lambda: forward([sd.LSTM(3)], np.zeros((2, 5))), sd.ShapeError, r"\(batch, time, features\)"),
    ("GRU with no time steps", lambda: forward([sd.GRU(3)], np.zeros((2, 0, 4))), sd.ShapeError, "at least one time step"),
    ("Embedding id out of range", lambda: forward([sd.Embedding(5, 3)], np.array([[1, 7]])), ValueError, r"token ids must be in \[0, 5\)"),
    ("Embedding fractional ids", lambda: forward([sd.Embedding(5, 3)], np.array([[1.5, 2]])), ValueError, "whole numbers"),
    ("loss target shape", lambda: sd.MeanSquaredError().forward(np.zeros((3, 2)), np.zeros((3, 3))), sd.ShapeError, "target must have the prediction's shape"),
    ("cross-entropy with an extra axis", lambda: sd.SoftmaxCrossEntropy().forward(np.zeros((5, 28, 10)), np.zeros(5, int)), sd.ShapeError, "did you mean to flatten"),
    ("cross-entropy on 1-D prediction", lambda: sd.SoftmaxCrossEntropy().forward(np.zeros(5), np.zeros(5, int)), sd.ShapeError, r"prediction must have shape \(batch, classes\)"),
    ("backward before forward", lambda: sd.Tanh().backward(np.zeros((2, 2))), RuntimeError, "backward\\(\\) called before forward\\(\\)"),
    ("output_grad of the wrong shape", lambda: [op := sd.Tanh(), op.forward(np.zeros((2, 2))), op.backward(np.zeros((2, 3)))], sd.ShapeError, "output_grad must have shape"),
    ("a layer built in float32 into a float64 network", lambda: [layer := sd.Dense(2), sd.NeuralNetwork([layer], sd.MeanSquaredError()).forward(np.zeros((1, 3))), sd.NeuralNetwork([layer], sd.MeanSquaredError(), dtype=np.float64)], TypeError, "was already built with"),
    ("step before backward", lambda: [o := sd.SGD(0.1), setattr(o, "net", (n := net())), n.forward(X), o.step()], RuntimeError, "call net.train_batch"),
    ("step with no network", lambda: sd.SGD(0.1).step(), RuntimeError, "no network attached"),
    ("summary before building", lambda: "not built yet" in net().summary() or 1 / 0, None, ""),
]  # fmt: skip


def saved_model(tmp_path: Path, name="m.safetensors", metadata=None) -> Path:
    model = net()
    model.forward(X[:1])
    path = tmp_path / name
    model.save(path, metadata=metadata)
    return path


def file_rows(tmp_path: Path) -> list[Row]:
    good = saved_model(tmp_path)
    data = good.read_bytes()
    (tmp_path / "empty.st").write_bytes(b"")
    (tmp_path / "truncated.st").write_bytes(data[: len(data) // 2])
    (tmp_path / "pickle.st").write_bytes(b"\x80\x04\x95" + b"\x00" * 40)
    (tmp_path / "text.st").write_text("hello")
    header = data[8 : 8 + int.from_bytes(data[:8], "little")]
    meta = json.loads(header)
    meta["__metadata__"]["format_version"] = "99"
    forged = json.dumps(meta).encode()
    (tmp_path / "future.st").write_bytes(
        len(forged).to_bytes(8, "little") + forged + data[8 + len(header) :]
    )
    readonly = saved_model(tmp_path, "readonly.st")
    readonly.chmod(0o444)
    (tmp_path / "folder.st").mkdir()
    other = sd.NeuralNetwork(
        [sd.Dense(5, "tanh"), sd.Dense(3, sd.Linear())], sd.SoftmaxCrossEntropy()
    )
    other.forward(X[:1])

    def build_unbuilt_and_save():
        sd.NeuralNetwork([sd.Dense(2)], sd.MeanSquaredError()).save(tmp_path / "u.st")

    return [
        (
            "load a missing file",
            lambda: sd.load(tmp_path / "missing.st"),
            FileNotFoundError,
            "no model file",
        ),
        (
            "load an empty file",
            lambda: sd.load(tmp_path / "empty.st"),
            sd.ModelFormatError,
            "too short",
        ),
        (
            "load a truncated file",
            lambda: sd.load(tmp_path / "truncated.st"),
            sd.ModelFormatError,
            "",
        ),
        ("load a renamed pickle", lambda: sd.load(tmp_path / "pickle.st"), sd.ModelFormatError, ""),
        ("load a text file", lambda: sd.load(tmp_path / "text.st"), sd.ModelFormatError, ""),
        (
            "load a folder",
            lambda: sd.load(tmp_path / "folder.st"),
            (sd.ModelFormatError, IsADirectoryError),
            "",
        ),
        (
            "load a file from the future",
            lambda: sd.load(tmp_path / "future.st"),
            sd.ModelFormatError,
            "format version '99' is not supported",
        ),
        (
            "save into a missing folder",
            lambda: (
                net(out=3).save(tmp_path / "no" / "m.st")
                if net().forward(X[:1]) is None
                else saved_model(tmp_path / "no")
            ),
            FileNotFoundError,
            "the folder .*no does not exist",
        ),
        (
            "save over a read-only file",
            lambda: saved_model(tmp_path, "readonly.st"),
            PermissionError,
            "is read-only; it was not replaced",
        ),
        (
            "save over a folder",
            lambda: saved_model(tmp_path, "folder.st"),
            IsADirectoryError,
            "it is a folder",
        ),
        ("save an unbuilt network", build_unbuilt_and_save, ValueError, "not built yet"),
        (
            "load_weights of another shape",
            lambda: other.load_weights(good),
            sd.ModelFormatError,
            r"layer 1 \(Dense\): weights: received shape",
        ),
        (
            "load_weights into an unbuilt network",
            lambda: net().load_weights(good),
            ValueError,
            "build the network first",
        ),
        ("load a good file works", lambda: sd.load(good), None, ""),
    ]


def test_saving_keeps_the_mode_follows_symlinks_and_removes_stale_temporaries(tmp_path):
    path = saved_model(tmp_path)
    path.chmod(0o640)
    saved_model(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    link = tmp_path / "link.safetensors"
    link.symlink_to(path)
    saved_model(tmp_path, "link.safetensors")
    assert link.is_symlink() and sd.load(link) is not None
    stale = tmp_path / f".{path.name}.abc123.tmp"
    stale.write_bytes(b"left by a killed writer")
    old = stale.stat().st_mtime - 7200
    os.utime(stale, (old, old))
    fresh = tmp_path / f".{path.name}.def456.tmp"
    fresh.write_bytes(b"another writer, still running")
    saved_model(tmp_path)
    assert not stale.exists() and fresh.exists()
    new = saved_model(tmp_path, "new.safetensors")
    assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~_umask()


def _umask():
    current = os.umask(0)
    os.umask(current)
    return current


def cli_rows(tmp_path: Path) -> list[Row]:
    model = saved_model(tmp_path, "plain.safetensors")
    good = saved_model(
        tmp_path,
        "prep.safetensors",
        metadata={"task": "classification", "preprocessing": json.dumps({"example_shape": [5]})},
    )
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "bad.npy", X[:, :3])
    np.save(tmp_path / "complex.npy", X + 1j)
    (tmp_path / "notnpy.npy").write_text("no")
    (tmp_path / "afile").write_text("")
    (tmp_path / "corrupt.safetensors").write_bytes(b"\x00" * 64)

    def cli(*args):
        return lambda: main([str(a) for a in args])

    return [
        ("train an unknown preset", cli("train", "mnist-xl"), "exit2", "unknown preset 'mnist-xl'"),
        *[
            (
                f"train --epochs {v}",
                cli("train", "digits", "--epochs", v),
                "exit2",
                "--epochs must be a positive integer",
            )
            for v in (0, -1)
        ],
        (
            "train --batch-size 0",
            cli("train", "digits", "--batch-size", 0),
            "exit2",
            "--batch-size must be a positive integer",
        ),
        *[
            (
                f"train --lr {v}",
                cli("train", "digits", "--lr", v),
                "exit2",
                "--lr must be a positive, finite number",
            )
            for v in (0, -1, "inf", "nan")
        ],
        ("train --seed -1", cli("train", "digits", "--seed", -1), "exit2", "--seed must be >= 0"),
        (
            "train --out FILE",
            cli("train", "digits", "--out", tmp_path / "afile"),
            "exit2",
            "is a file; give a folder",
        ),
        (
            "train --data-dir missing",
            cli("train", "boston-mlp", "--data-dir", tmp_path / "none"),
            "exit2",
            "is not a folder",
        ),
        (
            "train --resume missing",
            cli("train", "digits", "--resume", tmp_path / "none.st", "--out", tmp_path / "o"),
            "exit2",
            "no such checkpoint file",
        ),
        (
            "train --extend without --resume",
            cli("train", "digits", "--extend"),
            "exit2",
            "--extend continues a run",
        ),
        ("train --epochs x", cli("train", "digits", "--epochs", "x"), "exit2", "invalid int value"),
        (
            "evaluate a missing model",
            cli("evaluate", tmp_path / "none.st", "--data", "digits"),
            "exit2",
            "does not exist",
        ),
        (
            "evaluate a corrupt model",
            cli("evaluate", tmp_path / "corrupt.safetensors", "--data", "digits"),
            "exit2",
            "corrupt.safetensors",
        ),
        (
            "evaluate an unknown dataset",
            cli("evaluate", good, "--data", "cifar"),
            "exit2",
            "unknown dataset 'cifar'",
        ),
        (
            "evaluate a model without preprocessing",
            cli("evaluate", model, "--data", "digits"),
            "exit2",
            "records no preprocessing",
        ),
        (
            "evaluate on the wrong dataset",
            cli("evaluate", good, "--data", "digits"),
            "exit2",
            r"the model takes examples of shape \(5,\)",
        ),
        (
            "predict a missing input",
            cli("predict", good, tmp_path / "none.npy"),
            "exit2",
            "does not exist",
        ),
        (
            "predict a non-npy input",
            cli("predict", good, tmp_path / "notnpy.npy"),
            "exit2",
            "cannot be read as .npy|not a numeric",
        ),
        (
            "predict the wrong shape",
            cli("predict", good, tmp_path / "bad.npy"),
            "exit2",
            r"has shape \(20, 3\)",
        ),
        (
            "predict complex input",
            cli("predict", good, tmp_path / "complex.npy"),
            "exit2",
            "is complex|real numbers",
        ),
        (
            "predict without preprocessing",
            cli("predict", model, tmp_path / "x.npy"),
            "exit2",
            "records no preprocessing",
        ),
        ("predict --raw works", cli("predict", model, tmp_path / "x.npy", "--raw"), "exit0", ""),
        ("predict works", cli("predict", good, tmp_path / "x.npy"), "exit0", "class"),
        (
            "export a missing model",
            cli("export", tmp_path / "none.st", tmp_path / "x.onnx"),
            "exit2",
            "does not exist",
        ),
        ("an unknown command", cli("fly"), "exit2", "invalid choice"),
        ("no command", cli(), "exit2", "required"),
        ("info works", cli("info"), "exit0", "scratchdl"),
    ]


def check(thunk, error, match):
    if error is None:
        thunk()
        return
    with pytest.raises(error, match=match or None):
        thunk()


@pytest.mark.parametrize(
    ("case", "thunk", "error", "match"),
    CONSTRUCTORS + DATA + SHAPES,
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_api(case, thunk, error, match):
    check(thunk, error, match)


FILE_CASES = 14
CLI_CASES = 30


@pytest.mark.parametrize("i", range(FILE_CASES))
def test_files(tmp_path, i):
    rows = file_rows(tmp_path)
    assert len(rows) == FILE_CASES
    _, thunk, error, match = rows[i]
    check(thunk, error, match)


@pytest.mark.parametrize("i", range(CLI_CASES))
def test_cli(tmp_path, capsys, i):
    rows = cli_rows(tmp_path)
    assert len(rows) == CLI_CASES
    case, thunk, expect, match = rows[i]
    try:
        code = thunk()
    except SystemExit as exit:  # argparse's own errors
        code = exit.code
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert code == (2 if expect == "exit2" else 0), (case, text)
    assert "Traceback" not in text, case
    if match:
        import re

        assert re.search(match, text), (case, text)


def test_the_audit_has_at_least_two_hundred_rows():
    assert len(CONSTRUCTORS) + len(DATA) + len(SHAPES) + FILE_CASES + CLI_CASES >= 200


def test_huge_finite_data_is_accepted_without_a_warning():
    """The finiteness check sums first; a sum that overflows must fall back to the exact
    test, not refuse finite data (nor warn about the overflow)."""
    import warnings

    from scratchdl.core import check_array

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_array("X", np.full((4, 3), 3e38, np.float32))
    with pytest.raises(ValueError, match=r"X contains nan at index \(2, 1\)"):
        check_array("X", with_value(np.full((4, 3), 3e38, np.float32), (2, 1), np.nan))
