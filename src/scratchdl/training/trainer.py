"""`Trainer`: the training loop — batches, shuffling, evaluation, callbacks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from scratchdl.core import ShapeError
from scratchdl.network import NeuralNetwork
from scratchdl.optim.optimizers import Optimizer
from scratchdl.training import threads
from scratchdl.training.callbacks import (
    Callback,
    EarlyStopping,
    History,
    ModelCheckpoint,
    ProgressBar,
    TerminateOnNaN,
    TrainingDiverged,
)
from scratchdl.training.checkpoint import Position, restore_checkpoint, save_checkpoint
from scratchdl.training.metrics import get_metric

__all__ = ["Trainer"]


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(
            f"Trainer.fit: {name} must be a positive integer. Received: {name}={value!r}"
        )
    return int(value)


class Trainer:
    """Trains a `NeuralNetwork` with an `Optimizer`, as in the book.

    Args:
        net: the network.
        optim: the optimizer; the trainer attaches the network to it.
        metrics: names (``"accuracy"``, ``"mae"``, ``"rmse"``, ``"r2"``) or functions
            ``f(y_true, y_pred)``, computed on the validation data at every evaluation.
        blas_threads: BLAS threads during `fit` and `evaluate`: ``"auto"`` (the default)
            uses one thread for batches of at most 8 rows and leaves BLAS alone otherwise
            (see `scratchdl.training.threads`), an integer sets it, None leaves BLAS alone.
            Needs threadpoolctl; without it the setting is ignored.
    """

    def __init__(
        self,
        net: NeuralNetwork,
        optim: Optimizer,
        metrics: Sequence[str | Callable] | None = None,
        blas_threads: int | str | None = "auto",
    ) -> None:
        if not isinstance(net, NeuralNetwork):
            raise TypeError(f"Trainer: net must be a NeuralNetwork. Received: {type(net).__name__}")
        if not isinstance(optim, Optimizer):
            raise TypeError(
                f"Trainer: optim must be an Optimizer. Received: {type(optim).__name__}"
            )
        if isinstance(metrics, str):
            metrics = [metrics]
        self.net = net
        self.optim = optim
        self.optim.net = net
        self.metrics = [get_metric(m) for m in (metrics or [])]
        self.blas_threads = threads.check_setting(blas_threads)
        self.stop_training = False
        self.history: History | None = None
        self.callbacks: list[Callback] = []
        self.epoch = 0
        self.epochs = 0
        self.n_train = 0

    def fit(
        self,
        X_train: np.ndarray,
        y_train: np.ndarray,
        X_test: np.ndarray | None = None,
        y_test: np.ndarray | None = None,
        epochs: int = 100,
        eval_every: int = 10,
        batch_size: int = 32,
        seed: int = 1,
        restart: bool = True,
        early_stopping: bool = True,
        callbacks: Sequence[Callback] | None = None,
        verbose: int = 1,
        terminate_on_nan: bool = True,
        resume_from: str | None = None,
    ) -> History:
        """Train for `epochs` epochs and return the `History`.

        Every epoch the training data is shuffled with a generator seeded from `seed`,
        then cut into batches of `batch_size` (the last one may be smaller). The
        validation data (`X_test`, `y_test`, as the book names them) is scored every
        `eval_every` epochs and after the last epoch. `restart=True` sets the network
        up afresh from its seed and clears the optimizer's state, so two calls train
        the same way. `early_stopping=True` (the book's default) adds
        ``EarlyStopping(patience=0, restore_best=True)`` when there is validation data.
        `verbose=0` prints nothing.

        `resume_from` names a checkpoint (see `ModelCheckpoint`) written by a run with the
        same data, `epochs`, `batch_size`, `seed` and callbacks: training continues from
        the epoch and batch where it was saved, with the saved parameters, optimizer state,
        generators and history, and ends with the same parameters, bit for bit, as a run
        that was never interrupted. `restart` is ignored when resuming.
        """
        epochs = _positive_int("epochs", epochs)
        eval_every = _positive_int("eval_every", eval_every)
        batch_size = _positive_int("batch_size", batch_size)
        X_train, y_train = self._check_data("X_train", "y_train", X_train, y_train)
        has_val = X_test is not None or y_test is not None
        if has_val:
            if X_test is None or y_test is None:
                raise ValueError("Trainer.fit: give both X_test and y_test, or neither")
            X_test, y_test = self._check_data("X_test", "y_test", X_test, y_test)

        callbacks = list(callbacks or [])
        if early_stopping and has_val and not any(isinstance(c, EarlyStopping) for c in callbacks):
            callbacks.append(EarlyStopping(patience=0, restore_best=True))
        if terminate_on_nan and not any(isinstance(c, TerminateOnNaN) for c in callbacks):
            callbacks.insert(0, TerminateOnNaN())
        if verbose and not any(isinstance(c, ProgressBar) for c in callbacks):
            callbacks.append(ProgressBar(verbose))
        # checkpoints last, so what they save includes every other callback's update
        callbacks.sort(key=lambda c: isinstance(c, ModelCheckpoint))
        self.history = History()
        self.callbacks = [self.history, *callbacks]

        self.stop_training = False
        self.epochs = epochs
        self.n_train = X_train.shape[0]
        self._rng = np.random.default_rng(seed)
        for callback in self.callbacks:
            callback.trainer = self
        if resume_from is None and restart:
            self.net.reset()
            self.optim.reset()

        n = self.n_train
        with threads.limit(self.blas_threads, batch_size):
            for callback in self.callbacks:
                callback.on_train_begin({})
            start = Position(0, 0, 0.0, self._rng.bit_generator.state)
            if resume_from is not None:
                start = restore_checkpoint(self, resume_from)
                self._rng.bit_generator.state = start.epoch_rng_state
            try:
                for epoch in range(start.epoch, epochs):
                    self.epoch = epoch
                    self._epoch_rng_state = self._rng.bit_generator.state
                    self.optim.set_epoch(epoch, epochs)
                    for callback in self.callbacks:
                        callback.on_epoch_begin(epoch, {})
                    order = self._rng.permutation(n)
                    first = start.batch if epoch == start.epoch else 0
                    self._loss_sum = start.loss_sum if epoch == start.epoch else 0.0
                    for batch in range(first, -(-n // batch_size)):
                        idx = order[batch * batch_size : (batch + 1) * batch_size]
                        logs: dict[str, Any] = {"size": idx.shape[0]}
                        for callback in self.callbacks:
                            callback.on_batch_begin(batch, logs)
                        logs["loss"] = self.net.train_batch(X_train[idx], y_train[idx])
                        for callback in self.callbacks:
                            callback.on_before_optimizer_step(batch, logs)
                        self.optim.step()
                        self._loss_sum += logs["loss"] * idx.shape[0]
                        for callback in self.callbacks:
                            callback.on_batch_end(batch, logs)
                    epoch_logs: dict[str, Any] = {"loss": self._loss_sum / n}
                    if has_val and ((epoch + 1) % eval_every == 0 or epoch + 1 == epochs):
                        scores = self.evaluate(X_test, y_test)
                        epoch_logs.update({f"val_{k}": v for k, v in scores.items()})
                    for callback in self.callbacks:
                        callback.on_epoch_end(epoch, epoch_logs)
                    if self.stop_training:
                        break
            except TrainingDiverged:
                for callback in self.callbacks:
                    if isinstance(callback, ProgressBar):
                        callback.on_train_end({})
                raise
            for callback in self.callbacks:
                callback.on_train_end({})
        return self.history

    def position_after_batch(self, batch: int) -> Position:
        """Where training stands once `batch` of the current epoch has been applied."""
        return Position(self.epoch, batch + 1, self._loss_sum, self._epoch_rng_state)

    def position_after_epoch(self) -> Position:
        """Where training stands at the end of the current epoch."""
        return Position(self.epoch + 1, 0, 0.0, self._rng.bit_generator.state)

    def save_checkpoint(self, path: str) -> None:
        """Write a checkpoint of a finished `fit` (resuming from it continues after its last epoch)."""
        if self.history is None:
            raise RuntimeError("Trainer.save_checkpoint: call fit() first")
        save_checkpoint(self, path, self.position_after_epoch())

    def evaluate(
        self, X: np.ndarray, y: np.ndarray, batch_size: int | None = 1000
    ) -> dict[str, float]:
        """The loss and the trainer's metrics on (X, y), in inference mode."""
        X, y = self._check_data("X", "y", X, y)
        with threads.limit(self.blas_threads, batch_size or X.shape[0]):
            prediction = self.net.predict(X, batch_size=batch_size)
        scores = {"loss": self.net.loss.forward(prediction, y)}
        for name, metric in self.metrics:
            scores[name] = float(metric(y, prediction))
        return scores

    def _check_data(
        self, x_name: str, y_name: str, X: Any, y: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        X = np.asarray(X)
        y = np.asarray(y)
        if X.ndim < 2:
            raise ShapeError(
                f"Trainer: {x_name} must have shape (examples, features, ...), received {X.shape}"
            )
        if y.ndim < 1 or y.shape[0] != X.shape[0]:
            raise ShapeError(
                f"Trainer: {x_name} and {y_name} must have the same number of examples; "
                f"received {X.shape} and {y.shape}"
            )
        if X.shape[0] == 0:
            raise ValueError(f"Trainer: {x_name} is empty. Received shape {X.shape}")
        X = X.astype(self.net.dtype, copy=False)
        if np.issubdtype(y.dtype, np.floating):
            y = y.astype(self.net.dtype, copy=False)
        return X, y

    def __repr__(self) -> str:
        return f"Trainer(net={type(self.net).__name__}, optim={self.optim!r})"
