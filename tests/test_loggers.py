"""CSVLogger and TensorBoard (issue 16)."""

import csv

import numpy as np
import pytest

from scratchdl import (
    SGD,
    CSVLogger,
    Dense,
    Linear,
    MeanSquaredError,
    ModelCheckpoint,
    NeuralNetwork,
    Tanh,
    TensorBoard,
    Trainer,
)


def data(rng):
    X = rng.standard_normal((32, 3))
    return X, X @ np.array([[1.0], [-2.0], [0.5]])


def trainer():
    net = NeuralNetwork([Dense(4, Tanh()), Dense(1, Linear())], MeanSquaredError(), seed=1)
    return Trainer(net, SGD(0.05, final_lr=0.01, decay_type="linear"), metrics=["mae"])


def rows(path):
    with path.open() as f:
        return list(csv.reader(f))


def test_csv_logger_writes_a_row_per_epoch(tmp_path, rng):
    X, y = data(rng)
    path = tmp_path / "log.csv"
    history = trainer().fit(X, y, X, y, epochs=4, eval_every=2, batch_size=8, verbose=0,
                            early_stopping=False, callbacks=[CSVLogger(path)])  # fmt: skip
    table = rows(path)
    assert table[0] == ["epoch", "loss", "lr", "val_loss", "val_mae"]
    assert [r[0] for r in table[1:]] == ["1", "2", "3", "4"]
    assert [float(r[1]) for r in table[1:]] == history.history["loss"]
    assert table[1][3] == "" and float(table[2][3]) == history.history["val_loss"][0]
    assert float(table[1][2]) == pytest.approx(0.05) and float(table[4][2]) == pytest.approx(0.01)


def test_csv_logger_appends_when_a_run_is_resumed(tmp_path, rng):
    X, y = data(rng)
    path, ckpt = tmp_path / "log.csv", tmp_path / "c.safetensors"

    class Stop(ModelCheckpoint):
        def on_epoch_end(self, epoch, logs):
            super().on_epoch_end(epoch, logs)
            if epoch == 1:
                self.trainer.stop_training = True

    trainer().fit(
        X, y, epochs=4, batch_size=8, verbose=0, callbacks=[CSVLogger(path), Stop(str(ckpt))]
    )
    assert len(rows(path)) == 3
    trainer().fit(
        X, y, epochs=4, batch_size=8, verbose=0, callbacks=[CSVLogger(path)], resume_from=str(ckpt)
    )
    table = rows(path)
    assert [r[0] for r in table] == ["epoch", "1", "2", "3", "4"]
    straight = tmp_path / "straight.csv"
    trainer().fit(X, y, epochs=4, batch_size=8, verbose=0, callbacks=[CSVLogger(straight)])
    assert rows(straight) == table  # the resumed file is the uninterrupted one


def test_csv_logger_checks_its_arguments(tmp_path, rng):
    with pytest.raises(ValueError, match="separator must be one character"):
        CSVLogger(tmp_path / "x.csv", separator=";;")
    X, y = data(rng)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        trainer().fit(X, y, epochs=1, verbose=0, callbacks=[CSVLogger(tmp_path / "no" / "x.csv")])


def test_tensorboard_writes_scalars_and_histograms_that_tensorboard_reads(tmp_path, rng):
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    X, y = data(rng)
    history = trainer().fit(X, y, X, y, epochs=3, eval_every=1, batch_size=8, verbose=0, early_stopping=False,
                            callbacks=[TensorBoard(tmp_path / "tb", histograms=True, batch_every=2)])  # fmt: skip
    events = accumulator.EventAccumulator(
        str(tmp_path / "tb"), size_guidance={"scalars": 0, "histograms": 0}
    )
    events.Reload()
    tags = events.Tags()
    assert {"epoch/loss", "epoch/val_loss", "epoch/val_mae", "epoch/lr", "batch/loss"} <= set(
        tags["scalars"]
    )
    assert "weights/layers.1.weights" in tags["histograms"]
    losses = events.Scalars("epoch/loss")
    assert [e.step for e in losses] == [1, 2, 3]
    np.testing.assert_allclose([e.value for e in losses], history.history["loss"], rtol=1e-6)
    assert [e.step for e in events.Scalars("batch/loss")] == [2, 4, 6, 8, 10, 12]
    with pytest.raises(ValueError, match="batch_every must be a positive integer"):
        TensorBoard(tmp_path, batch_every=0)
