"""Callbacks: objects whose hooks the `Trainer` calls during `fit`.

Hooks, in the order they run (epochs and batches are 0-based, as in Keras):

    on_train_begin(logs)
      on_epoch_begin(epoch, logs)
        on_batch_begin(batch, logs)
        on_before_optimizer_step(batch, logs)   after backward, logs["loss"] is the batch loss
        on_batch_end(batch, logs)               after the parameters were updated
      on_epoch_end(epoch, logs)                 logs: loss, and val_loss / val_<metric> when evaluated
    on_train_end(logs)

Before `on_train_begin` the trainer sets `callback.trainer`; `callback.trainer.net` is the
network and setting `callback.trainer.stop_training = True` ends training after the epoch.
`on_train_end` runs whatever happens — after the last epoch, an early stop, a diverged loss,
an exception or Ctrl-C; ``logs["error"]`` holds the exception when there was one.

A callback with state that a resumed run needs implements `state_dict()` and
`load_state_dict()`; checkpoints store what it returns.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import numpy as np

from scratchdl.backend import assign, copy, to_numpy
from scratchdl.core import check_flag

__all__ = [
    "BookConvTesting",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "History",
    "ProgressBar",
    "TerminateOnNaN",
    "TrainingDiverged",
]

Logs = dict[str, Any]


class TrainingDiverged(FloatingPointError):
    """Training produced a non-finite loss. `history` holds what was recorded until then.

    In distributed training the loss is the reduced one, so every rank raises it together."""

    raised_on_every_rank = True

    def __init__(self, message: str, history: History | None = None) -> None:
        super().__init__(message)
        self.history = history


class Callback:
    """Base class with empty hooks; override the ones you need."""

    trainer: Any = None

    def on_train_begin(self, logs: Logs) -> None: ...
    def on_train_end(self, logs: Logs) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: Logs) -> None: ...
    def on_epoch_end(self, epoch: int, logs: Logs) -> None: ...
    def on_batch_begin(self, batch: int, logs: Logs) -> None: ...
    def on_before_optimizer_step(self, batch: int, logs: Logs) -> None: ...
    def on_batch_end(self, batch: int, logs: Logs) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint must keep of this callback: JSON values and arrays (none by default)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned (called after `on_train_begin` on resume)."""


class CallbackList:
    """The callbacks of one `fit`, called in order: ``callbacks.on_epoch_end(epoch, logs)``."""

    def __init__(self, callbacks: list[Callback]) -> None:
        self.callbacks = list(callbacks)

    def __iter__(self) -> Any:
        return iter(self.callbacks)

    def __len__(self) -> int:
        return len(self.callbacks)

    def set_trainer(self, trainer: Any) -> None:
        for callback in self.callbacks:
            callback.trainer = trainer

    def on_train_begin(self, logs: Logs) -> None:
        for callback in self.callbacks:
            callback.on_train_begin(logs)

    def on_train_end(self, logs: Logs) -> None:
        """Every callback's `on_train_end`, even when one of them raises (the first error
        is raised after all have run)."""
        error: BaseException | None = None
        for callback in self.callbacks:
            try:
                callback.on_train_end(logs)
            except Exception as err:
                error = error or err
        if error is not None:
            raise error

    def on_epoch_begin(self, epoch: int, logs: Logs) -> None:
        for callback in self.callbacks:
            callback.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        for callback in self.callbacks:
            callback.on_epoch_end(epoch, logs)

    def on_batch_begin(self, batch: int, logs: Logs) -> None:
        for callback in self.callbacks:
            callback.on_batch_begin(batch, logs)

    def on_before_optimizer_step(self, batch: int, logs: Logs) -> None:
        for callback in self.callbacks:
            callback.on_before_optimizer_step(batch, logs)

    def on_batch_end(self, batch: int, logs: Logs) -> None:
        for callback in self.callbacks:
            callback.on_batch_end(batch, logs)

    def state_dict(self) -> list[dict[str, Any]]:
        return [{"type": type(c).__name__, "state": c.state_dict()} for c in self.callbacks]

    def load_state_dict(self, saved: list[Any]) -> None:
        """Give each callback the state saved by the callback at the same place and of the
        same type."""
        for callback, entry in zip(self.callbacks, saved, strict=False):
            if isinstance(entry, dict) and entry.get("type") == type(callback).__name__:
                callback.load_state_dict(entry.get("state", {}))


class History(Callback):
    """What `fit` returns: per-epoch logs.

    ``history.history["loss"]`` has the mean training loss of every epoch, aligned with
    ``history.epoch``; ``history.history["val_loss"]`` and ``["val_<metric>"]`` have one
    value per evaluation, aligned with ``history.val_epoch`` (evaluations happen every
    `eval_every` epochs). Epoch numbers are 0-based.
    """

    def __init__(self) -> None:
        self.epoch: list[int] = []
        self.val_epoch: list[int] = []
        self.history: dict[str, list[float]] = {}

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        self.epoch.append(epoch)
        if any(key.startswith("val_") for key in logs):
            self.val_epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": list(self.epoch),
            "val_epoch": list(self.val_epoch),
            "history": self.history,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = [int(e) for e in state.get("epoch", [])]
        self.val_epoch = [int(e) for e in state.get("val_epoch", [])]
        self.history = {
            str(k): [float(v) for v in vs] for k, vs in state.get("history", {}).items()
        }

    def _repr_html_(self) -> str:
        """The logs as an HTML table (an epoch a row), for Jupyter."""
        keys = list(self.history)
        val = {e: i for i, e in enumerate(self.val_epoch)}
        rows = []
        for i, epoch in enumerate(self.epoch):
            cells = []
            for key in keys:
                values = self.history[key]
                index = val.get(epoch) if key.startswith("val_") else i
                cells.append(
                    "" if index is None or index >= len(values) else f"{values[index]:.4f}"
                )
            rows.append(
                f"<tr><td>{epoch + 1}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
            )
        head = "".join(f"<th>{k}</th>" for k in keys)
        return f"<table><thead><tr><th>epoch</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"

    def plot(self, path: str | None = None, title: str = "training") -> Any:
        """The training curves as a matplotlib figure (`scratchdl.plot.history`)."""
        from scratchdl import plot

        return plot.history(self, path, title=title)

    def __repr__(self) -> str:
        keys = ", ".join(f"{k}: {len(v)}" for k, v in self.history.items())
        return f"History(epochs={len(self.epoch)}, {keys})"


def _check_monitor(owner: str, monitor: str, trainer: Any, logs: Logs | None) -> None:
    """Raise when `monitor` can never be logged: it names validation scores but `fit` has no
    validation data (at the start), or it is missing from the logs of an evaluation."""
    if logs is None:
        if monitor.startswith("val_") and getattr(trainer, "validation", True) is None:
            raise ValueError(
                f"{owner}: monitor={monitor!r} needs validation data; pass X_test and y_test "
                "to fit, or monitor 'loss'"
            )
        return
    evaluated = any(key.startswith("val_") for key in logs)
    if (evaluated or not monitor.startswith("val_")) and monitor not in logs:
        raise ValueError(
            f"{owner}: monitor={monitor!r} is not among the logged values "
            f"{sorted(k for k in logs if k != 'size')}; check its spelling (the metrics are "
            "named val_<metric>, e.g. val_accuracy)"
        )


def _mode_for(monitor: str, mode: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max'. Received: mode={mode!r}")
    if mode != "auto":
        return mode
    return "max" if any(word in monitor for word in ("acc", "r2")) else "min"


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved for `patience` evaluations; restore the best.

    An improvement is a value better than the best so far by more than `min_delta`.
    With ``restore_best=True`` the parameters that gave the best value are copied (the
    arrays, not the network) when it is reached and written back into the network at
    the end of training, whether training stopped early or ran all its epochs.
    ``Trainer.fit(early_stopping=True)``, the book's option, is
    ``EarlyStopping(patience=0)``: stop at the first evaluation that is not better.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 0,
        min_delta: float = 0.0,
        restore_best: bool = True,
        mode: str = "auto",
        verbose: int = 0,
        stream: Any = None,
    ) -> None:
        if int(patience) != patience or patience < 0:
            raise ValueError(
                f"EarlyStopping: patience must be an integer >= 0. Received: patience={patience}"
            )
        if not min_delta >= 0:
            raise ValueError(
                f"EarlyStopping: min_delta must be >= 0. Received: min_delta={min_delta}"
            )
        self.monitor = monitor
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.restore_best = check_flag("EarlyStopping", "restore_best", restore_best)
        self.mode = _mode_for(monitor, mode)
        self.verbose = int(verbose)
        self.stream = stream
        self._reset()

    def _say(self, message: str) -> None:
        if self.verbose:
            print(message, file=self.stream if self.stream is not None else sys.stdout)

    def _name(self) -> str:
        return self.monitor.removeprefix("val_")

    def _reset(self) -> None:
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.best_params: dict[str, np.ndarray] | None = None
        self.wait = 0
        self.stopped_epoch: int | None = None

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_train_begin(self, logs: Logs) -> None:
        self._reset()
        _check_monitor("EarlyStopping", self.monitor, self.trainer, None)

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        _check_monitor("EarlyStopping", self.monitor, self.trainer, logs)
        if self.monitor not in logs:
            return
        value = float(logs[self.monitor])
        if math.isfinite(value) and self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                self.best_params = {
                    name: copy(p) for name, p in self.trainer.net.named_params().items()
                }
            self._say(f"Validation {self._name()} after {epoch + 1} epochs is {value:.3f}")
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            self.trainer.stop_training = True
            kept = (
                self.best_epoch + 1
                if self.restore_best and self.best_epoch is not None
                else epoch + 1
            )
            worse = "increased" if self.mode == "min" else "decreased"
            name = self._name()
            first = (
                f"{name[:1].upper()}{name[1:]}"
                if self.monitor == "val_loss"
                else f"Validation {name}"
            )
            self._say(
                f"{first} {worse} after epoch {epoch + 1}, final {name} was {self.best:.3f}, "
                f"using the model from epoch {kept}"
            )

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "best_params": self.best_params,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state.get("best")
        self.best_epoch = state.get("best_epoch")
        self.wait = int(state.get("wait", 0))
        best = state.get("best_params")
        self.best_params = None if best is None else {k: copy(v) for k, v in best.items()}

    def on_train_end(self, logs: Logs) -> None:
        if self.restore_best and self.best_params is not None:
            for name, param in self.trainer.net.named_params().items():
                assign(param, self.best_params[name])

    def __repr__(self) -> str:
        return (
            f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, "
            f"min_delta={self.min_delta:g}, restore_best={self.restore_best})"
        )


class TerminateOnNaN(Callback):
    """Raise `TrainingDiverged` when a batch's loss is not finite.

    It checks before the optimizer step, so that batch's gradients are never applied and
    the network keeps the parameters that the last finite step produced.
    """

    def on_before_optimizer_step(self, batch: int, logs: Logs) -> None:
        loss = logs["loss"]
        if not math.isfinite(loss):
            epoch = self.trainer.epoch
            raise TrainingDiverged(
                f"training loss is {loss} at epoch {epoch + 1}, batch {batch + 1}; stopped before "
                "applying that batch, so the network keeps its last parameters. Try a lower "
                "learning rate, gradient clipping (clip_norm=...) or standardised inputs.",
                history=self.trainer.history,
            )


class ProgressBar(Callback):
    """A tqdm bar per epoch (loss and examples per second) on a terminal or in Jupyter
    (`tqdm.auto`: a notebook bar there); otherwise, and after every evaluation, a one-line
    summary. ``verbose=2`` prints a line every epoch.
    ``bar=True`` forces the bar (when tqdm is installed), ``bar=False`` turns it off."""

    def __init__(self, verbose: int = 1, stream: Any = None, bar: bool | None = None) -> None:
        self.verbose = int(verbose)
        self.stream = stream if stream is not None else sys.stderr
        self.bar = bar  # None: a bar when the stream is a terminal and tqdm is installed
        self._bar: Any = None
        self.use_bar = False

    def on_train_begin(self, logs: Logs) -> None:
        wanted = self.bar
        if wanted is None:
            wanted = bool(self.verbose) and (
                getattr(self.stream, "isatty", lambda: False)() or _in_notebook()
            )
        self.use_bar = False
        if wanted:
            try:
                import tqdm  # noqa: F401
            except ImportError:
                pass
            else:
                self.use_bar = True

    def on_epoch_begin(self, epoch: int, logs: Logs) -> None:
        self._start = time.perf_counter()
        if self.use_bar:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=self.trainer.n_train,
                desc=f"epoch {epoch + 1}/{self.trainer.epochs}",
                unit="ex",
                unit_scale=True,
                leave=False,
                file=self.stream,
                dynamic_ncols=True,
            )

    def on_batch_end(self, batch: int, logs: Logs) -> None:
        if self._bar is not None:
            self._bar.update(logs["size"])
            if batch % 25 == 0:
                self._bar.set_postfix(loss=f"{self.trainer.epoch_loss:.4f}", refresh=False)

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        evaluated = any(key.startswith("val_") for key in logs)
        if self.verbose >= 2 or (self.verbose and evaluated):
            seconds = time.perf_counter() - self._start
            parts = [f"{k} {v:.4f}" for k, v in logs.items()]
            print(
                f"epoch {epoch + 1}/{self.trainer.epochs}: "
                + ", ".join(parts)
                + f" ({seconds:.1f} s, {self.trainer.seen / max(seconds, 1e-9):,.0f} ex/s)",
                file=self.stream,
            )

    def on_train_end(self, logs: Logs) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class BookConvTesting(Callback):
    """What the book's ``fit(..., conv_testing=True)`` prints: every `every` batches the
    loss on that batch in inference mode (``batch 10 loss 0.52…``), and every `validate_every`
    batches the accuracy on the validation data (``Validation accuracy after 100 batches is
    91.85%``). For watching a slow convolutional epoch; `Trainer.fit` adds it."""

    def __init__(self, every: int = 10, validate_every: int = 100, stream: Any = None) -> None:
        self.every, self.validate_every, self.stream = int(every), int(validate_every), stream

    def on_batch_end(self, batch: int, logs: Logs) -> None:
        trainer = self.trainer
        out = self.stream if self.stream is not None else sys.stdout
        if batch % self.every == 0:
            x, y = trainer.batch_data
            loss = trainer.net.loss.forward(trainer.net.forward(x, inference=True), y)
            print("batch", batch, "loss", loss, file=out)
        if batch % self.validate_every == 0 and batch > 0 and trainer.validation is not None:
            X_test, y_test = trainer.validation
            prediction = to_numpy(trainer.net.predict(X_test, batch_size=1000))
            labels = y_test if y_test.ndim == prediction.ndim - 1 else y_test.argmax(axis=-1)
            accuracy = float(np.mean(prediction.argmax(axis=-1) == labels)) * 100
            print(f"Validation accuracy after {batch} batches is {accuracy:.2f}%", file=out)


def _in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (where tqdm.auto draws a notebook bar)."""
    shell = sys.modules.get("IPython")
    get = getattr(shell, "get_ipython", None)
    return get is not None and type(get()).__name__ == "ZMQInteractiveShell"


class ModelCheckpoint(Callback):
    """Write a checkpoint (model, optimizer, generators, history; see
    `scratchdl.training.checkpoint`) during training, atomically.

    Args:
        path: the file; ``{epoch}`` in it is replaced by the 1-based epoch number.
        monitor: the logged value that decides what is best (with ``save_best_only``).
        save_best_only: write only when `monitor` improves (evaluation epochs only).
        every_n_batches: also write every n batches inside an epoch (a run killed mid-epoch
            resumes from the last one).
        metadata: strings stored with the checkpoint, as `NeuralNetwork.save` stores them
            (the CLI stores the preprocessing, so a checkpoint evaluates like a model file).

    The trainer runs checkpoint callbacks after all others at the end of an epoch, so the
    saved state includes every callback's update for that epoch.
    """

    def __init__(
        self,
        path: str,
        monitor: str = "val_loss",
        save_best_only: bool = False,
        mode: str = "auto",
        every_n_batches: int | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        if every_n_batches is not None and (
            int(every_n_batches) != every_n_batches or every_n_batches < 1
        ):
            raise ValueError(
                f"ModelCheckpoint: every_n_batches must be a positive integer. Received: {every_n_batches}"
            )
        self.path = str(path)
        try:
            self.path.format(epoch=1)
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(
                f"ModelCheckpoint: path {self.path!r} is not a valid template: the only field "
                f"is {{epoch}} (error: {err!r})"
            ) from None
        self.monitor = monitor
        self.save_best_only = check_flag("ModelCheckpoint", "save_best_only", save_best_only)
        self.mode = _mode_for(monitor, mode)
        self.every_n_batches = every_n_batches
        self.metadata = dict(metadata or {})
        self.best: float | None = None
        self.saved: list[str] = []

    def _better(self, value: float) -> bool:
        if self.best is None:
            return True
        return value < self.best if self.mode == "min" else value > self.best

    def _write(self, epoch: int) -> None:
        path = self.path.format(epoch=epoch + 1)
        self.trainer.save_checkpoint(path, self.metadata)
        self.saved.append(path)

    def on_batch_end(self, batch: int, logs: Logs) -> None:
        if self.every_n_batches and (batch + 1) % self.every_n_batches == 0:
            self._write(self.trainer.epoch)

    def on_train_begin(self, logs: Logs) -> None:
        if self.save_best_only:
            _check_monitor("ModelCheckpoint", self.monitor, self.trainer, None)

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        if self.save_best_only:
            _check_monitor("ModelCheckpoint", self.monitor, self.trainer, logs)
            if self.monitor not in logs or not math.isfinite(float(logs[self.monitor])):
                return
            if not self._better(float(logs[self.monitor])):
                return
            self.best = float(logs[self.monitor])
        self._write(epoch)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state.get("best")
