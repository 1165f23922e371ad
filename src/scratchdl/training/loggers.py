"""Logging callbacks: `CSVLogger` (one row per epoch) and `TensorBoard` (event files).

Both write on rank 0 only under distributed training, and both continue the files of a
resumed run rather than starting them again.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import numpy as np

from scratchdl.training.callbacks import Callback, Logs

__all__ = ["CSVLogger", "TensorBoard"]


def _writer(trainer: Any) -> bool:
    return getattr(trainer, "rank", 0) == 0


class CSVLogger(Callback):
    """Append one row per epoch to a CSV file: ``epoch`` (1-based), ``loss``, ``lr`` and
    ``val_loss`` / ``val_<metric>`` (empty in epochs without an evaluation).

    A new run writes the file afresh with a header; a resumed run (``fit(resume_from=...)``)
    appends to it, so the file holds the whole run once. `separator` is the CSV delimiter.
    """

    def __init__(self, path: str | os.PathLike, separator: str = ",") -> None:
        self.path = Path(path)
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"CSVLogger: separator must be one character. Received: {separator!r}")
        self.separator = separator
        self._columns: list[str] | None = None

    def on_train_begin(self, logs: Logs) -> None:
        self._columns = None
        if not self.path.parent.is_dir():
            raise FileNotFoundError(f"CSVLogger: the folder {self.path.parent} does not exist")

    def _start(self, epoch: int) -> None:
        trainer = self.trainer
        columns = ["epoch", "loss", "lr"]
        if getattr(trainer, "validation", None) is not None:
            columns += ["val_loss", *(f"val_{name}" for name, _ in trainer.metrics)]
        self._columns = columns
        resumed = epoch > 0 and self.path.exists()
        if not resumed:
            with self.path.open("w", newline="") as f:
                csv.writer(f, delimiter=self.separator).writerow(columns)

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        if not _writer(self.trainer):
            return
        if self._columns is None:
            self._start(epoch)
        values = {"epoch": epoch + 1, "lr": self.trainer.optim.lr, **logs}
        row = ["" if values.get(c) is None else repr(float(values[c])) if c != "epoch" else values[c]
               for c in self._columns]  # fmt: skip
        with self.path.open("a", newline="") as f:
            csv.writer(f, delimiter=self.separator).writerow(row)

    def __repr__(self) -> str:
        return f"CSVLogger({str(self.path)!r})"


class TensorBoard(Callback):
    """Write TensorBoard event files to `log_dir`: every epoch's ``loss``, ``val_*`` and
    learning rate as scalars (tag ``epoch/<name>``, step = the 1-based epoch), every
    `batch_every` batches the batch loss (``batch/loss``, step = batches so far), and with
    ``histograms=True`` each parameter's values by name (``weights/layers.1.weights``).

    Uses tensorboardX (``pip install 'scratchdl[tensorboard]'``); open the folder with
    ``tensorboard --logdir LOG_DIR``.
    """

    def __init__(
        self, log_dir: str | os.PathLike, histograms: bool = False, batch_every: int | None = None
    ) -> None:
        try:
            import tensorboardX  # noqa: F401
        except ImportError:
            raise ImportError(
                "TensorBoard needs tensorboardX: pip install 'scratchdl[tensorboard]'"
            ) from None
        if batch_every is not None and (
            isinstance(batch_every, bool) or not isinstance(batch_every, int) or batch_every < 1
        ):
            raise ValueError(
                f"TensorBoard: batch_every must be a positive integer or None. Received: {batch_every!r}"
            )
        self.log_dir = Path(log_dir)
        self.histograms = bool(histograms)
        self.batch_every = batch_every
        self._writer: Any = None

    def on_train_begin(self, logs: Logs) -> None:
        if not _writer(self.trainer):
            return
        from tensorboardX import SummaryWriter

        self._writer = SummaryWriter(str(self.log_dir))

    def on_batch_end(self, batch: int, logs: Logs) -> None:
        if self._writer is None or not self.batch_every or (batch + 1) % self.batch_every:
            return
        trainer = self.trainer
        batches = -(-trainer.n_train // trainer.batch_size)
        self._writer.add_scalar(
            "batch/loss", float(logs["loss"]), trainer.epoch * batches + batch + 1
        )

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        if self._writer is None:
            return
        step = epoch + 1
        for key, value in logs.items():
            self._writer.add_scalar(f"epoch/{key}", float(value), step)
        self._writer.add_scalar("epoch/lr", float(self.trainer.optim.lr), step)
        if self.histograms:
            for name, array in self.trainer.net.named_params().items():
                self._writer.add_histogram(f"weights/{name}", np.asarray(array, np.float64), step)
        self._writer.flush()

    def on_train_end(self, logs: Logs) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __repr__(self) -> str:
        return f"TensorBoard({str(self.log_dir)!r})"
