"""Data-parallel training over MPI: the same `Trainer` loop on N processes.

``Trainer(net, optim, distributed=True)`` under ``mpiexec -n N python script.py``:

- every rank checks that all ranks run the same thing (data, settings, seed, architecture)
  and raises the same `ValueError` naming what differs otherwise;
- rank 0's initial parameters are broadcast to all;
- every global batch of `batch_size` rows (the same shuffle on every rank) is split into N
  contiguous parts; each rank runs forward and backward on its part;
- the gradients, weighted by each part's rows, are summed by one Allreduce of one packed
  buffer (with the loss and a status flag in it), before the optimizer step — so clipping,
  weight decay and optimizer state see the global gradient, and every rank takes the same
  step (N ranks give the model one process gives, to rounding);
- validation predictions are split the same way and gathered, so evaluation, early stopping,
  NaN termination and checkpoint decisions are identical on every rank;
- only rank 0 prints and writes files; dropout masks come from per-rank streams (rank 0
  keeps the network's own; as the network is built before the first batch, one rank equals
  a plain run exactly for models without dropout); batch-norm layers normalise
  by their rank's part and their running statistics are averaged over ranks after every
  step, so all ranks hold one model;
- a rank that fails inside a step tells the others through the status flag, and every rank
  raises `DistributedError`; a failure anywhere else aborts the MPI job (``MPI.Abort``), so
  no rank waits forever.

Losses must be means over the rows of a batch (both of scratchdl's are). mpi4py and an MPI
library are the optional extra ``scratchdl[mpi]`` (``pip install mpi4py mpich``).
"""

from __future__ import annotations

import hashlib
import json
import sys
import traceback
from typing import Any

import numpy as np

from scratchdl.io.registry import describe

__all__ = ["Communicator", "DataParallel", "DistributedError"]


class DistributedError(RuntimeError):
    """Another rank failed, or the ranks disagree; the message says which and why."""

    raised_on_every_rank = True


class Communicator:
    """The few collectives data-parallel training needs, over `mpi4py`'s COMM_WORLD."""

    def __init__(self, comm: Any = None) -> None:
        if comm is None:
            try:
                from mpi4py import MPI
            except ImportError:
                raise ImportError(
                    "distributed training needs mpi4py and an MPI library: "
                    "pip install 'scratchdl[mpi]' (or pip install mpi4py mpich), then run "
                    "mpiexec -n 2 python your_script.py"
                ) from None
            comm = MPI.COMM_WORLD
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        if self.size > 1:
            _abort_on_uncaught_exceptions(self)

    def allreduce_sum(self, buffer: np.ndarray) -> np.ndarray:
        from mpi4py import MPI

        out = np.empty_like(buffer)
        self.comm.Allreduce(buffer, out, op=MPI.SUM)
        return out

    def broadcast(self, array: np.ndarray) -> None:
        """Overwrite `array` in place with rank 0's."""
        self.comm.Bcast(array, root=0)

    def allgather_json(self, value: Any) -> list[Any]:
        """Every rank's `value` (JSON text, never pickled objects), in rank order."""
        text = json.dumps(value, sort_keys=True).encode()
        sizes = self.comm.allgather(len(text))
        out = np.empty(sum(sizes), dtype=np.uint8)
        self.comm.Allgatherv(np.frombuffer(text, dtype=np.uint8), [out, sizes])
        pieces, start = [], 0
        for n in sizes:
            pieces.append(json.loads(out[start : start + n].tobytes()))
            start += n
        return pieces

    def allgather_rows(self, part: np.ndarray, total_shape: tuple[int, ...]) -> np.ndarray:
        """The row blocks of every rank, concatenated in rank order (same trailing shape)."""
        counts = self.comm.allgather(part.shape[0])
        row = int(np.prod(total_shape[1:]))
        out = np.empty((sum(counts), *total_shape[1:]), dtype=part.dtype)
        self.comm.Allgatherv(np.ascontiguousarray(part), [out, [c * row for c in counts]])
        return out

    def abort(self, code: int = 1) -> None:
        self.comm.Abort(code)


def raised_everywhere(err: BaseException) -> bool:
    """Whether every rank raises this error too, so no abort is needed: errors that say so
    with ``raised_on_every_rank`` — a disagreement found before training, a failure reported
    through a step's status flag, a diverged loss (`TrainingDiverged`: the loss is reduced,
    so every rank sees it)."""
    return bool(getattr(err, "raised_on_every_rank", False))


def _abort_on_uncaught_exceptions(comm: Communicator) -> None:
    """An exception that ends one rank's script (before, after or outside `fit`) would leave
    the other ranks waiting in a collective forever: print it and abort the MPI job, as
    ``python -m mpi4py`` does."""
    previous = sys.excepthook
    if getattr(previous, "scratchdl_abort", False):
        return

    def hook(kind: type, value: BaseException, tb: Any) -> None:
        previous(kind, value, tb)
        if raised_everywhere(value):
            return  # every rank raises it and ends by itself
        print(f"scratchdl: rank {comm.rank} of {comm.size} ended with an exception; "
              "aborting all ranks", file=sys.stderr, flush=True)  # fmt: skip
        comm.abort(1)

    hook.scratchdl_abort = True  # type: ignore[attr-defined]
    sys.excepthook = hook


def data_hash(*arrays: np.ndarray) -> str:
    """A short hash of arrays' shapes, dtypes and bytes (the same data gives the same text)."""
    digest = hashlib.blake2b(digest_size=12)
    for array in arrays:
        digest.update(str((array.shape, array.dtype.str)).encode())
        digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()


def fingerprint(trainer: Any, X: np.ndarray, y: np.ndarray, settings: dict[str, Any]) -> dict:
    """What must be the same on every rank: the data (a hash of its bytes), the settings,
    the seeds and the architecture."""
    net = trainer.net
    return {
        "data": data_hash(X, y),
        "settings": settings,
        "network seed": net.seed,
        "architecture": json.dumps(describe(net)["layers"]) if net.built else "unbuilt",
        "optimizer": type(trainer.optim).__name__,
    }


class DataParallel:
    """The distributed half of a `Trainer`: what happens at its three collective points."""

    def __init__(self, comm: Communicator | None = None) -> None:
        self.comm = comm or Communicator()
        self.rank, self.size = self.comm.rank, self.comm.size

    # ---- set-up, once per fit ----
    def check_agreement(self, trainer: Any, X: np.ndarray, y: np.ndarray, settings: dict) -> None:
        prints = self.comm.allgather_json(fingerprint(trainer, X, y, settings))
        for key in prints[0]:
            values = [p[key] for p in prints]
            if any(v != values[0] for v in values[1:]):
                differing = [r for r, v in enumerate(values) if v != values[0]]
                raise DistributedError(
                    f"distributed training: the ranks disagree on {key}: rank 0 has "
                    f"{str(values[0])[:120]}, rank {differing[0]} has {str(values[differing[0]])[:120]}; "
                    "every rank must run the same script on the same data with the same seed"
                )

    def start(self, trainer: Any, X: np.ndarray) -> None:
        """Build the network, give every rank rank 0's parameters, and give each rank its
        own dropout stream (rank 0 keeps the network's)."""
        net = trainer.net
        if not net.built:
            net.forward(X[:1], inference=True)
        for array in net.arrays().values():
            self.comm.broadcast(array)
        if self.rank:
            net.rng.bit_generator.state = net.rng.bit_generator.jumped(self.rank).state

    # ---- the training step ----
    def part(self, n: int) -> slice:
        """The rows of a batch of `n` that this rank trains on."""
        bounds = np.linspace(0, n, self.size + 1).round().astype(int)
        return slice(int(bounds[self.rank]), int(bounds[self.rank + 1]))

    def train_step(self, trainer: Any, x_batch: np.ndarray, y_batch: np.ndarray) -> float:
        net, n = trainer.net, x_batch.shape[0]
        rows = self.part(n)
        x, y = x_batch[rows], y_batch[rows]
        mine = x.shape[0]
        if mine == 0:  # fewer rows than ranks: train on one row, with weight 0
            x, y = x_batch[:1], y_batch[:1]
        status = 0.0
        try:
            loss = trainer.train_batch(x, y)  # split over threads too, if asked
        except Exception as err:  # reported to every rank, then re-raised here
            print(f"scratchdl: rank {self.rank} failed in a training step: "
                  f"{type(err).__name__}: {err}", file=sys.stderr, flush=True)  # fmt: skip
            status, loss = 1.0, 0.0
            failure: Exception | None = err
        else:
            failure = None
        grads = list(net.param_grads())
        size = sum(p.size for p in net.params())
        # the parameters' own precision: a float32 model sends half the bytes
        buffer = np.zeros(size + 2, dtype=net.dtype)
        if failure is None and mine:
            offset = 0
            for g in grads:
                buffer[offset : offset + g.size] = g.ravel()
                offset += g.size
            buffer[:size] *= mine
            buffer[size] = loss * mine
        buffer[size + 1] = status * (self.rank + 1) if status else 0.0
        total = self.comm.allreduce_sum(buffer) if self.size > 1 else buffer
        if total[size + 1]:
            if failure is not None:
                failure.raised_on_every_rank = True  # the others raise DistributedError
                raise failure
            raise DistributedError(
                f"distributed training: rank {self.rank} stops because another rank failed "
                "during this training step (that rank printed its error)"
            )
        offset = 0
        for g in grads:
            g[...] = (total[offset : offset + g.size] / n).reshape(g.shape)
            offset += g.size
        logs = trainer._batch_logs
        logs["loss"] = float(total[size] / n)
        trainer.callbacks.on_before_optimizer_step(trainer.batch, logs)
        trainer.optim.step()
        self.average_state(net)
        return logs["loss"]

    def average_state(self, net: Any) -> None:
        """Average the untrained state (batch-norm running statistics) over ranks."""
        state = [a for layer in net.layers for a in layer.named_state().values() if a.size]
        if not state or self.size == 1:
            return
        buffer = np.concatenate([a.ravel().astype(np.float64) for a in state])
        total = self.comm.allreduce_sum(buffer) / self.size
        offset = 0
        for a in state:
            a[...] = total[offset : offset + a.size].reshape(a.shape)
            offset += a.size

    # ---- evaluation ----
    def predict(self, net: Any, X: np.ndarray, batch_size: int | None) -> np.ndarray:
        """Every rank predicts its part of `X`; the parts are gathered on every rank."""
        rows = self.part(X.shape[0])
        mine = net.predict(X[rows], batch_size=batch_size) if rows.stop > rows.start else None
        if mine is None:
            probe = net.predict(X[:1])
            mine = probe[:0]
        return self.comm.allgather_rows(mine, (X.shape[0], *mine.shape[1:]))

    def abort_on(self, err: BaseException) -> None:
        """An error escaped the loop on this rank outside a step: say so, then end the MPI
        job, so that no other rank waits forever in a collective."""
        print(
            f"scratchdl: rank {self.rank} of {self.size} failed; aborting all ranks:",
            file=sys.stderr,
        )
        traceback.print_exception(err, file=sys.stderr)
        sys.stderr.flush()
        self.comm.abort(1)
