"""Run by tests/test_checkpoint.py in a fresh process: train, optionally resuming, save params.

python tests/resume_run.py OUT.npz DTYPE EPOCHS [--checkpoint PATH] [--resume PATH]
                           [--every N] [--stop-after-batches K] [--threads T]
"""

import argparse
import sys

import numpy as np

from scratchdl import (
    Adam,
    Callback,
    Dense,
    EarlyStopping,
    Linear,
    ModelCheckpoint,
    NeuralNetwork,
    SGDMomentum,
    SoftmaxCrossEntropy,
    Tanh,
    Trainer,
)


class Crash(Exception):
    pass


class StopAfter(Callback):
    """Simulates a crash after `k` batches in total."""

    def __init__(self, k):
        self.k = k
        self.seen = 0

    def on_batch_end(self, batch, logs):
        self.seen += 1
        if self.seen == self.k:
            raise Crash


def build(dtype, optimizer):
    net = NeuralNetwork(
        [
            Dense(12, Tanh(), weight_init="glorot", dropout=0.8),
            Dense(3, Linear(), weight_init="glorot"),
        ],
        SoftmaxCrossEntropy(),
        seed=7,
        dtype=dtype,
    )
    optim = (
        SGDMomentum(0.1, momentum=0.9, final_lr=0.02, decay_type="linear")
        if optimizer == "momentum"
        else Adam(0.01)
    )
    return net, optim


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("dtype")
    parser.add_argument("epochs", type=int)
    parser.add_argument("--optimizer", default="momentum")
    parser.add_argument("--checkpoint")
    parser.add_argument("--resume")
    parser.add_argument("--every", type=int)
    parser.add_argument("--stop-after-batches", type=int)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((90, 5))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    net, optim = build(np.dtype(args.dtype), args.optimizer)
    callbacks = [EarlyStopping(patience=10)]
    if args.checkpoint:
        callbacks.append(ModelCheckpoint(args.checkpoint, every_n_batches=args.every))
    if args.stop_after_batches:
        callbacks.append(StopAfter(args.stop_after_batches))
    trainer = Trainer(net, optim, threads=args.threads)
    try:
        history = trainer.fit(X[:60], y[:60], X[60:], y[60:], epochs=args.epochs, eval_every=1, batch_size=8,
                              seed=3, verbose=0, callbacks=callbacks, resume_from=args.resume)  # fmt: skip
    except Crash:
        sys.exit(3)
    np.savez(args.out, *[p for p in net.params()], loss=np.array(history.history["loss"]),
             val=np.array(history.history["val_loss"]), rng=np.array(net.rng.random()))  # fmt: skip


if __name__ == "__main__":
    main()
