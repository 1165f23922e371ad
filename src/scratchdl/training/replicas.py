"""Data-parallel training over threads on one machine: ``Trainer(net, optim, threads=2)``.

Each training batch is cut into `threads` contiguous parts (the first parts get the extra
rows when it does not divide), and every part runs forward, loss and backward at the same
time in its own thread: the first through the network itself, on the calling thread, the
others through replicas. A replica is a copy of the network that shares the network's
parameter arrays, so the optimizer's step, made in place on the network's parameters, is
every replica's step too; it has its own caches, gradients, generator and batch-norm
statistics. After the parts, the network holds the gradient of the whole batch's mean loss
(each part's gradient weighted by its share of the rows), so the optimizer, clipping,
weight decay and callbacks see what one thread gives, to rounding.

Why threads, not BLAS threads: in a small network much of a step is not matrix products
(pooling, activations, biases, im2col), and that runs on one core whatever BLAS does. Two
parts in two threads, each multiplying with one BLAS thread, keep both cores busy with all
of it. NumPy, BLAS and the compiled kernels release the GIL; the Python between them holds
it, which is why a second thread gives less than twice the speed. Measured on two cores
(`bench/cnn.py`, `bench/mlp.py`, 2026-12-03): an epoch took 0.63x the one-thread time for
the book's chapter-7 network, 0.69-0.75x for a small modern CNN and 0.80x for the book's
CNN, but 2.0x for the book's MLP, whose steps (a quarter of a millisecond) are too short
to hand half to another thread. Beside another busy program, every step waits for the
part that shares a core with it (see the README's speed section).

What a seed gives, with `threads` > 1 (the same `threads` setting gives the same run, bit
for bit, also after resuming from a checkpoint):

- each part's dropout masks come from its own generator: before every step the network's
  generator draws one seed per replica (the network's own part keeps drawing from it);
- a batch-norm layer normalises each part by the part's own statistics, and its running
  statistics are averaged over the parts after every step (as `distributed=True` does over
  processes), so the network keeps one set;
- without dropout and batch norm the result is one thread's to rounding: the parts' sums
  are added in another order.

Recurrent layers with ``stateful=True`` or an `initial_state` are refused: their state
belongs to the rows of the whole batch. The loss must be a mean over the rows of a batch
(both of scratchdl's are), as for `distributed=True`: the parts' losses and gradients are
weighted by their rows. Every layer of scratchdl works in a replica. A custom layer must
keep its per-batch values on ``self`` (as the book's do), not in module globals, and must
not replace its parameter arrays during a step; one that draws from NumPy's global
generator (``np.random``) while training gets its numbers in whatever order the threads
ask, so its runs do not repeat (scratchdl's layers draw from the network's generator,
``self.rng``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from scratchdl.training import denormals

__all__ = ["ThreadReplicas", "split"]


def split(n: int, parts: int) -> list[slice]:
    """The row ranges of `parts` contiguous parts of `n` rows, the first ones a row longer
    when `parts` does not divide `n` (empty ones last when `n` < `parts`)."""
    bounds = [-(-k * n // parts) for k in range(parts + 1)]
    return [slice(bounds[k], bounds[k + 1]) for k in range(parts)]


def _in_modes(modes: int | None, work: Callable[..., Any], *args: Any) -> Any:
    with denormals.modes(modes):
        return work(*args)


class ThreadReplicas:
    """Forward, loss and backward of one batch, split over `count` threads (see the module).

    `train_batch(x, y)` leaves the batch's gradients in the network's `param_grads` and
    returns the batch's mean loss, as `NeuralNetwork.train_batch` does. The replicas are
    made at the first batch and made again whenever the network's parameter arrays, layers
    or loss are other objects (after `net.reset()`, which `fit` calls). `close()` ends the
    worker threads; the next batch starts them again.
    """

    def __init__(self, net: Any, count: int) -> None:
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 2:
            raise ValueError(f"ThreadReplicas: count must be an integer >= 2. Received: {count!r}")
        self.net = net
        self.count = int(count)
        self.replicas: list[Any] = []
        self._made_from: tuple[Any, ...] = ()
        self._pool: ThreadPoolExecutor | None = None

    def _identity(self) -> tuple[Any, ...]:
        net = self.net
        return (net.loss, *net.layers, *net.params())

    def _current(self) -> bool:
        now = self._identity()
        return len(now) == len(self._made_from) and all(
            a is b for a, b in zip(now, self._made_from, strict=True)
        )

    def _make_replicas(self, x: np.ndarray) -> None:
        net = self.net
        if not net.built:  # set up (draw the initial weights) as a first batch would
            net.forward(x[:1], inference=True)
        shared = {id(p): p for p in net.params()}
        self.replicas = [copy.deepcopy(net, memo=dict(shared)) for _ in range(self.count - 1)]
        self._made_from = self._identity()

    def _states(self, net: Any) -> list[np.ndarray]:
        return [a for layer in net.layers for a in layer.named_state().values()]

    def _prepare(self, x: np.ndarray) -> None:
        """Check the network, (re)make the replicas if needed, and give them the network's
        untrained state (batch-norm statistics), which may have changed since the last step
        (a loaded checkpoint, an early-stopping restore)."""
        net = self.net
        if net.xp is not np:
            raise ValueError(
                f"Trainer: threads={self.count} trains NumPy networks; this network was moved "
                "with net.to(...). Call net.to(numpy) first, or use threads=1"
            )
        for layer in net.layers:
            if (
                getattr(layer, "stateful", False)
                or getattr(layer, "initial_state", None) is not None
            ):
                raise ValueError(
                    f"Trainer: threads={self.count} splits every batch by rows, and layer "
                    f"{layer.index} ({layer!r}) carries a state for every row of the whole batch "
                    "(stateful=True or an initial_state); train it with threads=1"
                )
        if not self._current():
            self._make_replicas(x)
        own_state = self._states(net)
        for replica in self.replicas:
            for mine, theirs in zip(own_state, self._states(replica), strict=True):
                theirs[...] = mine

    def _in_parts(self, n: int, work: Callable[[Any, slice], Any]) -> list[tuple[Any, slice, Any]]:
        """``work(network, rows)`` for every non-empty part of `n` rows: the first part by the
        network on this thread, the others by the replicas in the pool, with this thread's
        flush modes. Returns (network or replica, rows, result) for each, in row order; an
        error in any part is raised after every part has ended."""
        parts = split(n, self.count)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.count - 1, thread_name_prefix="scratchdl-part")
        modes = denormals.current_modes()
        running = [
            (replica, rows, self._pool.submit(_in_modes, modes, work, replica, rows))
            for replica, rows in zip(self.replicas, parts[1:], strict=True)
            if rows.stop > rows.start
        ]
        failure: BaseException | None = None
        try:
            done = [(self.net, parts[0], work(self.net, parts[0]))]
        except BaseException as err:  # wait for the other parts before raising
            failure, done = err, []
        for replica, rows, job in running:
            err = job.exception()
            if err is not None:
                failure = failure or err
            else:
                done.append((replica, rows, job.result()))
        if failure is not None:
            raise failure
        return done

    def train_batch(self, x: np.ndarray, y: np.ndarray) -> float:
        n = x.shape[0]
        if n == 0:  # nothing to split: the network says what it says of an empty batch
            return self.net.train_batch(x, y)
        self._prepare(x)
        net = self.net
        # every replica's generator restarts from a seed the network's generator draws, so
        # the network's generator state alone (which checkpoints keep) fixes every mask
        seeds = net.rng.integers(0, 2**63, size=self.count - 1)
        for replica, seed in zip(self.replicas, seeds, strict=True):
            replica.rng.bit_generator.state = type(net.rng.bit_generator)(int(seed)).state
        done = self._in_parts(n, lambda model, rows: model.train_batch(x[rows], y[rows]))
        (_, rows, loss), others = done[0], done[1:]
        share = (rows.stop - rows.start) / n
        loss *= share
        grads = list(net.param_grads())
        if others:
            for g in grads:
                g *= share
        for replica, rows, part_loss in others:
            share = (rows.stop - rows.start) / n
            loss += part_loss * share
            for g, theirs in zip(grads, replica.param_grads(), strict=True):
                theirs *= share
                g += theirs
        own_state = self._states(net)
        if others and own_state:  # the parts' running statistics, averaged
            theirs_all = [self._states(replica) for replica, _, _ in others]
            for i, mine in enumerate(own_state):
                if np.issubdtype(mine.dtype, np.floating):
                    for theirs in theirs_all:
                        mine += theirs[i]
                    mine *= 1.0 / (len(others) + 1)
        return float(loss)

    def predict(self, X: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """`NeuralNetwork.predict` with the rows of `X` split over the threads (each part
        in batches of `batch_size`); the parts' outputs in row order."""
        if X.shape[0] < self.count:
            return self.net.predict(X, batch_size=batch_size)
        self._prepare(X)
        done = self._in_parts(
            X.shape[0], lambda model, rows: model.predict(X[rows], batch_size=batch_size)
        )
        return np.concatenate([out for _, _, out in done])

    def close(self) -> None:
        """End the worker threads (they start again at the next batch)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
