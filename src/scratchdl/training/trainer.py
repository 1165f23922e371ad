"""`Trainer`: the training loop — batches, shuffling, evaluation, callbacks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from scratchdl.backend import to_numpy
from scratchdl.core import ShapeError, check_array, check_flag
from scratchdl.distributed import DataParallel, data_hash, raised_everywhere
from scratchdl.io.safetensors import ModelFormatError
from scratchdl.network import NeuralNetwork
from scratchdl.optim.optimizers import Optimizer
from scratchdl.training import denormals
from scratchdl.training import threads as blas
from scratchdl.training.callbacks import (
    BookConvTesting,
    Callback,
    CallbackList,
    EarlyStopping,
    History,
    ModelCheckpoint,
    ProgressBar,
    TerminateOnNaN,
)
from scratchdl.training.checkpoint import read_checkpoint, write_checkpoint
from scratchdl.training.metrics import get_metric
from scratchdl.training.replicas import ThreadReplicas

__all__ = ["Trainer"]


def _positive_int(name: str, value: Any, where: str = "Trainer.fit") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{where}: {name} must be a positive integer. Received: {name}={value!r}")
    return int(value)


class Trainer:
    """Trains a `NeuralNetwork` with an `Optimizer`, as in the book.

    Args:
        net: the network.
        optim: the optimizer; the trainer attaches the network to it.
        metrics: names (``"accuracy"``, ``"mae"``, ``"rmse"``, ``"r2"``) or functions
            ``f(y_true, y_pred)``, computed on the validation data at every evaluation.
        blas_threads: BLAS threads during `fit` and `evaluate`: ``"auto"`` (the default)
            uses one thread for batches of at most 512 rows (robust beside a busy core)
            and leaves BLAS alone for larger ones
            (see `scratchdl.training.threads`), an integer sets it, None leaves BLAS alone.
            Needs threadpoolctl; without it the setting is ignored.
        flush_denormals: flush subnormal floats to zero during `fit` and `evaluate` (the
            default; x86-64 Linux, elsewhere no effect): training makes them, and many x86
            processors compute with them tens of times more slowly (the book's CNN epoch:
            14.0 s with IEEE arithmetic, 7.0 s flushed; 4.97 s and 4.53 s on an AMD EPYC
            of family 26). False leaves the arithmetic alone. See
            `scratchdl.training.denormals`.
        distributed: data-parallel training over MPI (run under ``mpiexec -n N``; see
            `scratchdl.distributed`): each global batch is split across the ranks and the
            gradients summed before every step, so N ranks train the model one would. Only
            rank 0 prints and writes checkpoints; `evaluate` must then be called on every rank.
        threads: split every training batch into this many parts, computed at the same
            time in as many threads, each multiplying with one BLAS thread (data-parallel
            training on one machine; see `scratchdl.training.replicas`). 1 (the default)
            computes the batch on the calling thread. On two cores, 2 took 0.63-0.80x the
            one-thread time of the book's CNNs and a small modern one, but 2.0x for the
            book's MLP, whose steps are too short; beside another busy program every step
            waits for the part that shares its core. The same setting gives the same run;
            with dropout or batch norm, 2 gives another run than 1 (per-part masks and
            statistics). `evaluate` splits its rows over the threads too. Needs
            threadpoolctl (``scratchdl[train]``); `blas_threads` may then be "auto", 1 or
            None.

    The loop (`fit`) calls `train_step` for every batch; override it for a custom step.
    `state_dict()` holds everything a run needs to continue bit for bit (network, optimizer,
    position, shuffling generator, history, callbacks), given the same `blas_threads` and
    `flush_denormals` settings; checkpoints store it.
    """

    def __init__(
        self,
        net: NeuralNetwork,
        optim: Optimizer,
        metrics: Sequence[str | Callable] | None = None,
        blas_threads: int | str | None = "auto",
        distributed: bool = False,
        flush_denormals: bool = True,
        threads: int = 1,
    ) -> None:
        if not isinstance(net, NeuralNetwork):
            raise TypeError(f"Trainer: net must be a NeuralNetwork. Received: {type(net).__name__}")
        if not isinstance(optim, Optimizer):
            raise TypeError(
                f"Trainer: optim must be an Optimizer. Received: {type(optim).__name__}"
            )
        if isinstance(metrics, str):
            metrics = [metrics]
        attached = getattr(optim, "net", None)
        if attached is not None and attached is not net:
            raise ValueError(
                f"Trainer: this {type(optim).__name__} is already attached to another network "
                "(by another Trainer), and would stop training it; give each network its own "
                "optimizer"
            )
        self.net = net
        self.optim = optim
        self.optim.net = net
        self.metrics = [get_metric(m) for m in (metrics or [])]
        self.blas_threads = blas.check_setting(blas_threads)
        self.flush_denormals = check_flag("Trainer", "flush_denormals", flush_denormals)
        threads = _positive_int("threads", threads, where="Trainer")
        if threads > 1 and isinstance(self.blas_threads, int) and self.blas_threads > 1:
            raise ValueError(
                f"Trainer: threads={threads} computes each part of a batch with one BLAS "
                f"thread; blas_threads={self.blas_threads} asks for more. Pass "
                "blas_threads='auto' (or 1), or threads=1"
            )
        if threads > 1:
            try:
                import threadpoolctl  # noqa: F401
            except ImportError:
                raise ImportError(
                    f"Trainer: threads={threads} needs threadpoolctl to give each part one "
                    "BLAS thread (without it the parts' BLAS threads fight for the cores): "
                    "pip install 'scratchdl[train]' (or pip install threadpoolctl)"
                ) from None
        self.threads = threads
        #: the replicas of the network that compute the other parts of a batch, or None
        self.replicas = ThreadReplicas(net, self.threads) if self.threads > 1 else None
        #: the MPI side of data-parallel training (`scratchdl.distributed`), or None
        self.dist = DataParallel() if check_flag("Trainer", "distributed", distributed) else None
        self.rank = self.dist.rank if self.dist else 0
        self.world_size = self.dist.size if self.dist else 1
        self.stop_training = False
        self.history: History | None = None
        self.callbacks = CallbackList([])
        self.epoch = 0
        self.batch = 0
        self.epochs = 0
        self.batch_size = 0
        self.seed: int | None = None
        self.n_train = 0
        #: the current batch (x, y) and the validation data, for callbacks that need them
        self.batch_data: tuple[np.ndarray, np.ndarray] | None = None
        self.validation: tuple[np.ndarray, np.ndarray] | None = None
        # the loop's position: the next batch is `batch` of `epoch`; the loss of this epoch
        # so far is `loss_sum` over `seen` examples (the one place it is accumulated)
        self._next = (0, 0)
        self.loss_sum = 0.0
        self.seen = 0
        self._extend = False
        self._plan_start = 0  # the epoch the learning-rate plan starts at (extended runs)
        self._data: tuple[np.ndarray, np.ndarray] | None = None
        self._data_hash: str | None = None
        self._rng = np.random.default_rng(1)
        self._epoch_rng_state: dict[str, Any] = self._rng.bit_generator.state

    @property
    def epoch_loss(self) -> float:
        """The mean training loss of the current epoch so far."""
        return self.loss_sum / max(self.seen, 1)

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
        single_output: bool = False,
        restart: bool = True,
        early_stopping: bool = True,
        conv_testing: bool = False,
        callbacks: Sequence[Callback] | None = None,
        verbose: int = 1,
        terminate_on_nan: bool = True,
        resume_from: str | None = None,
        extend: bool = False,
    ) -> History:
        """Train for `epochs` epochs and return the `History`.

        Every epoch the training data is shuffled with a generator seeded from `seed`,
        then cut into batches of `batch_size` (the last one may be smaller). The
        validation data (`X_test`, `y_test`, as the book names them) is scored every
        `eval_every` epochs and after the last epoch. `restart=True` sets the network
        up afresh from its seed and clears the optimizer's state, so two calls train
        the same way. `early_stopping=True` (the book's default) adds
        ``EarlyStopping(patience=0, restore_best=True)`` when there is validation data, which
        at ``verbose=1`` prints the book's messages ("Validation loss after 10 epochs is
        27.868", "Loss increased after epoch 30, final loss was 25.087, using the model from
        epoch 20" — the epoch whose weights it restores). `conv_testing=True` prints what
        the book's does: the batch loss every 10 batches and the validation accuracy every
        100 (`BookConvTesting`). `single_output` is accepted for the book's signature and
        does nothing, as there. `verbose=0` prints nothing. The positional order of the
        arguments is the book's.

        `resume_from` names a checkpoint (see `ModelCheckpoint`) written by a run with the
        same data, `batch_size`, `seed` and callbacks: training continues from the epoch and
        batch where it was saved, with the saved parameters, optimizer state, generators and
        history, and ends with the same parameters, bit for bit, as a run that was never
        interrupted (on the same machine, with the same BLAS thread count). `restart` is
        ignored when resuming. A checkpoint from a run planned over other `epochs` is
        refused when the learning-rate schedule depends on them (it would be re-planned
        mid-run), and so is one that has done more epochs than asked for.

        ``extend=True`` (with `resume_from`, a checkpoint at the end of an epoch) trains
        `epochs` more epochs from where that run stopped, with the schedule planned afresh
        over them: the explicit way to give a finished run more epochs.
        """
        for name, flag in (("single_output", single_output), ("restart", restart),
                           ("early_stopping", early_stopping), ("conv_testing", conv_testing),
                           ("terminate_on_nan", terminate_on_nan), ("extend", extend)):  # fmt: skip
            check_flag("Trainer.fit", name, flag)
        if isinstance(verbose, bool) or not isinstance(verbose, (int, np.integer)) or verbose < 0:
            raise ValueError(
                f"Trainer.fit: verbose must be 0, 1 or 2. Received: verbose={verbose!r}"
            )
        epochs = _positive_int("epochs", epochs)
        if extend and resume_from is None:
            raise ValueError("Trainer.fit: extend=True continues a checkpoint; give resume_from")
        self._extend = extend
        self._plan_start = 0
        eval_every = _positive_int("eval_every", eval_every)
        batch_size = _positive_int("batch_size", batch_size)
        X_train, y_train = self._check_data("X_train", "y_train", X_train, y_train)
        has_val = X_test is not None or y_test is not None
        if has_val:
            if X_test is None or y_test is None:
                raise ValueError("Trainer.fit: give both X_test and y_test, or neither")
            X_test, y_test = self._check_data("X_test", "y_test", X_test, y_test)
        elif conv_testing:
            raise ValueError(
                "Trainer.fit: conv_testing=True needs validation data (X_test, y_test)"
            )
        self.validation = (X_test, y_test) if has_val else None
        if self.dist is not None and getattr(self.net, "xp", np) is not np:
            raise ValueError(
                "Trainer: distributed=True trains NumPy networks (the gradients go through MPI "
                "on the host); this network was moved with net.to(...). Call net.to(numpy) "
                "first, or train on one device"
            )
        if self.dist is not None:
            settings = {"epochs": epochs, "eval_every": eval_every, "batch_size": batch_size,
                        "seed": seed, "restart": restart, "resume": resume_from is not None,
                        "validation": None if X_test is None else list(X_test.shape)}  # fmt: skip
            self.dist.check_agreement(self, X_train, y_train, settings)
            if self.rank:  # only rank 0 talks
                verbose, conv_testing = 0, False

        self.history = History()
        self.callbacks = CallbackList(
            [self.history, *self._default_callbacks(callbacks, has_val, early_stopping,
                                                    terminate_on_nan, verbose, conv_testing)]
        )  # fmt: skip
        self.stop_training = False
        self.epochs, self.batch_size, self.seed = epochs, batch_size, seed
        self.n_train = X_train.shape[0]
        self._data = (X_train, y_train)  # hashed only when a checkpoint needs it
        self._data_hash = None
        self._rng = np.random.default_rng(seed)
        self._at(0, 0, self._rng.bit_generator.state)
        self.callbacks.set_trainer(self)
        if resume_from is None and restart:
            self.net.reset()
            self.optim.reset()

        with (
            blas.limit(1 if self.threads > 1 else self.blas_threads, batch_size),
            denormals.flush_denormals(self.flush_denormals),
        ):
            self.callbacks.on_train_begin({})
            end_logs: dict[str, Any] = {}
            try:
                if resume_from is not None:
                    self._resume(resume_from)
                if self.dist is not None:
                    self.dist.start(self, X_train)
                start_epoch, start_batch = self._next
                for epoch in range(start_epoch, self.epochs):
                    self._run_epoch(epoch, start_batch if epoch == start_epoch else 0,
                                    X_train, y_train)  # fmt: skip
                    epoch_logs: dict[str, Any] = {"loss": self.epoch_loss}
                    if has_val and ((epoch + 1) % eval_every == 0 or epoch + 1 == self.epochs):
                        scores = self.evaluate(X_test, y_test)
                        epoch_logs.update({f"val_{k}": v for k, v in scores.items()})
                    self._at(epoch + 1, 0, self._rng.bit_generator.state)
                    self.callbacks.on_epoch_end(epoch, epoch_logs)
                    if self.stop_training:
                        break
            except BaseException as err:
                end_logs["error"] = err
                if self.dist is not None and not raised_everywhere(err):
                    self.dist.abort_on(err)
                raise
            finally:
                if self.replicas is not None:
                    self.replicas.close()
                self.callbacks.on_train_end(end_logs)
        return self.history

    def _default_callbacks(self, callbacks: Sequence[Callback] | None, has_val: bool,
                           early_stopping: bool, terminate_on_nan: bool,
                           verbose: int, conv_testing: bool) -> list[Callback]:  # fmt: skip
        """The user's callbacks plus the ones `fit`'s flags ask for, checkpoints last (so
        what they save includes every other callback's update)."""
        callbacks = list(callbacks or [])
        for callback in callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(
                    f"Trainer.fit: callbacks must be Callback objects. Received: {callback!r}"
                )
        if early_stopping and has_val and not any(isinstance(c, EarlyStopping) for c in callbacks):
            callbacks.append(EarlyStopping(patience=0, restore_best=True, verbose=verbose))
        if conv_testing:
            callbacks.append(BookConvTesting())
        if terminate_on_nan and not any(isinstance(c, TerminateOnNaN) for c in callbacks):
            callbacks.insert(0, TerminateOnNaN())
        if verbose and not any(isinstance(c, ProgressBar) for c in callbacks):
            callbacks.append(ProgressBar(verbose))
        callbacks.sort(key=lambda c: isinstance(c, ModelCheckpoint))
        return callbacks

    def _run_epoch(self, epoch: int, first_batch: int, X: np.ndarray, y: np.ndarray) -> None:
        """The batches of one epoch, from `first_batch` (0 unless resuming mid-epoch)."""
        self.epoch = epoch
        epoch_state = self._rng.bit_generator.state
        if first_batch == 0:
            self._at(epoch, 0, epoch_state)
            self.loss_sum, self.seen = 0.0, 0
        self.optim.set_epoch(epoch - self._plan_start, self.epochs - self._plan_start)
        self.callbacks.on_epoch_begin(epoch, {})
        order = self._rng.permutation(self.n_train)
        size = self.batch_size
        for batch in range(first_batch, -(-self.n_train // size)):
            idx = order[batch * size : (batch + 1) * size]
            self.batch = batch
            self._batch_logs: dict[str, Any] = {"size": idx.shape[0]}
            self.batch_data = (X[idx], y[idx])
            self.callbacks.on_batch_begin(batch, self._batch_logs)
            loss = self.train_step(*self.batch_data)
            self.loss_sum += loss * idx.shape[0]
            self.seen += idx.shape[0]
            self._next = (epoch, batch + 1)
            self.callbacks.on_batch_end(batch, self._batch_logs)

    def train_step(self, x_batch: np.ndarray, y_batch: np.ndarray) -> float:
        """One step on a batch: forward, loss and backward (`net.train_batch`), the
        callbacks' `on_before_optimizer_step`, then `optim.step()`. Returns the batch loss.

        Override it for a custom step; ``self._batch_logs`` are the logs callbacks see.
        With ``distributed=True`` the gradient Allreduce happens here, between the two."""
        if self.dist is not None:
            return self.dist.train_step(self, x_batch, y_batch)
        logs = self._batch_logs
        logs["loss"] = self.train_batch(x_batch, y_batch)
        self.callbacks.on_before_optimizer_step(self.batch, logs)
        self.optim.step()
        return logs["loss"]

    def train_batch(self, x_batch: np.ndarray, y_batch: np.ndarray) -> float:
        """Forward, loss and backward on one batch (`NeuralNetwork.train_batch`), split
        over `threads` threads when it is more than 1; leaves the batch's gradients in the
        network's `param_grads` and returns the batch's mean loss. Does not update."""
        if self.replicas is not None:
            return self.replicas.train_batch(x_batch, y_batch)
        return self.net.train_batch(x_batch, y_batch)

    def _at(self, epoch: int, batch: int, epoch_rng_state: dict[str, Any]) -> None:
        """Move the position to `batch` of `epoch`, whose shuffle starts from that state."""
        self._next = (epoch, batch)
        self._epoch_rng_state = epoch_rng_state

    def state_dict(self) -> dict[str, Any]:
        """Everything a run needs to continue from where it is now: the network's and the
        optimizer's state dicts, the loop's position (the next epoch and batch, the loss so
        far in that epoch, the shuffling generator as it was at the epoch's start, the fit
        settings) and every callback's state (including the `History`)."""
        epoch, batch = self._next
        return {
            "network": self.net.state_dict(),
            "optimizer": self.optim.state_dict(),
            "loop": {
                "epoch": epoch,
                "batch": batch,
                "loss_sum": self.loss_sum,
                "seen": self.seen,
                "epochs": self.epochs,
                "plan_start": self._plan_start,
                "batch_size": self.batch_size,
                "seed": self.seed,
                "n_train": self.n_train,
                "data": self._hash_of_data(),
                "rng": self._epoch_rng_state,
            },
            "callbacks": self.callbacks.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a `state_dict()` into this trainer (inside `fit`, after the callbacks'
        `on_train_begin`); refuses a state from a run with other data, batch size or seed."""
        loop = state["loop"]
        for key, mine in (("n_train", self.n_train), ("batch_size", self.batch_size),
                          ("seed", self.seed)):  # fmt: skip
            if loop.get(key) != mine:
                raise ValueError(
                    f"Trainer: cannot resume: the checkpoint's run had {key}={loop.get(key)!r}, "
                    f"this one has {key}={mine!r}; resume with the same data and settings"
                )
        if loop.get("data") not in (None, self._hash_of_data()):
            raise ValueError(
                "Trainer: cannot resume: the checkpoint was trained on other data (same size, "
                "other values or order); resume with the data the run started with"
            )
        done, planned = int(loop["epoch"]), int(loop.get("epochs", self.epochs))
        if self._extend:
            if int(loop["batch"]):
                raise ValueError(
                    "Trainer: extend=True needs a checkpoint written at the end of an epoch; "
                    f"this one stopped at batch {loop['batch']} of epoch {done + 1}: resume it "
                    "first, then extend"
                )
            self._plan_start, self.epochs = done, done + self.epochs
        else:
            self._plan_start = int(loop.get("plan_start", 0))
        if not self._extend and done > self.epochs:
            raise ValueError(
                f"Trainer: cannot resume: the checkpoint has done {done} epochs, and this "
                f"fit asks for epochs={self.epochs} in all; to train more, resume with "
                f"epochs={planned} or pass extend=True"
            )
        elif not self._extend and planned != self.epochs and self._schedule_depends_on_epochs():
            raise ValueError(
                f"Trainer: cannot resume: the learning rate ({self.optim.schedule!r}) was "
                f"planned over epochs={planned}; resuming with epochs={self.epochs} would "
                f"re-plan it mid-run. Resume with epochs={planned}, or pass extend=True to "
                f"train {self.epochs} more epochs with a new schedule"
            )
        self.net.load_state_dict(state["network"])
        self.optim.load_state_dict(state["optimizer"])
        self.callbacks.load_state_dict(state.get("callbacks", []))
        self._rng.bit_generator.state = loop["rng"]
        self._next = (int(loop["epoch"]), int(loop["batch"]))
        self._epoch_rng_state = loop["rng"]
        self.loss_sum, self.seen = float(loop["loss_sum"]), int(loop["seen"])

    def _hash_of_data(self) -> str | None:
        if self._data_hash is None and self._data is not None:
            self._data_hash = data_hash(*self._data)
        return self._data_hash

    def _schedule_depends_on_epochs(self) -> bool:
        return bool(getattr(self.optim.schedule, "depends_on_epochs", True))

    def _resume(self, path: str) -> None:
        state = read_checkpoint(path, self.net)
        try:
            self.load_state_dict(state)
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFormatError(f"{path}: {str(err).strip(chr(34) + chr(39))}") from None

    def save_checkpoint(self, path: str, metadata: dict[str, str] | None = None) -> None:
        """Write `state_dict()` to `path` (atomically): resuming from it with
        ``fit(..., resume_from=path)`` continues from where training is now."""
        if self.history is None:
            raise RuntimeError("Trainer.save_checkpoint: call fit() first")
        if self.rank == 0:  # every rank holds the same state; one writes it
            write_checkpoint(path, self.net, self.state_dict(), metadata)

    def evaluate(
        self, X: np.ndarray, y: np.ndarray, batch_size: int | None = 1000
    ) -> dict[str, float]:
        """The loss and the trainer's metrics on (X, y), in inference mode (with
        ``threads > 1``, the rows split over the threads, one BLAS thread each)."""
        X, y = self._check_data("X", "y", X, y)
        with (
            blas.limit(1 if self.threads > 1 else self.blas_threads, batch_size or X.shape[0]),
            denormals.flush_denormals(self.flush_denormals),
        ):
            if self.dist is not None:
                prediction = self.dist.predict(self.net, X, batch_size)
            elif self.replicas is not None:  # the rows split over the threads
                prediction = self.replicas.predict(X, batch_size)
            else:
                prediction = self.net.predict(X, batch_size=batch_size)
        prediction = to_numpy(prediction)  # the loss and metrics of a device model, on the host
        scores = {"loss": self.net.loss.forward(prediction, y)}
        for name, metric in self.metrics:
            scores[name] = float(metric(y, prediction))
        return scores

    def _check_data(
        self, x_name: str, y_name: str, X: Any, y: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        # training data lives on the host (each batch is moved to the network's backend);
        # arrays of another library are copied here once
        X = check_array(f"Trainer: {x_name}", to_numpy(X))
        y = check_array(f"Trainer: {y_name}", to_numpy(y))
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
        self.net.loss.check_target(y, f"Trainer: {y_name}")
        return X, y

    def __repr__(self) -> str:
        return f"Trainer(net={type(self.net).__name__}, optim={self.optim!r})"
