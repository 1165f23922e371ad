"""Run by tests/test_distributed.py, under mpiexec or alone: train a dense or a conv network
in float64 with Trainer(distributed=...), and let rank 0 save the parameters and history.

python tests/distributed_run.py OUT.npz MODEL [--plain] [--fail-rank R] [--fail-callback-rank R]
                                [--other-seed-on-rank R] [--other-data-on-rank R] [--threads T]
"""

import argparse
import sys

import numpy as np

from scratchdl import (
    Adam,
    BatchNorm,
    Callback,
    Conv2D,
    CSVLogger,
    Dense,
    Flatten,
    Linear,
    MeanSquaredError,
    NeuralNetwork,
    SGDMomentum,
    SoftmaxCrossEntropy,
    Tanh,
    Trainer,
)


def build(model):
    if model == "bn":
        net = NeuralNetwork(
            [Conv2D(3, 3, activation=Tanh()), BatchNorm(), Flatten(), Dense(2, Linear())],
            MeanSquaredError(), seed=5, dtype=np.float64,
        )  # fmt: skip
        return net, Adam(0.01)
    if model == "dense":
        net = NeuralNetwork(
            [Dense(8, Tanh()), Dense(3, Linear())], SoftmaxCrossEntropy(), seed=5, dtype=np.float64
        )
        return net, SGDMomentum(0.1, momentum=0.9, weight_decay=1e-3, clip_norm=2.0)
    net = NeuralNetwork(
        [Conv2D(3, 3, activation=Tanh(), flatten=True), Dense(2, Linear())],
        MeanSquaredError(),
        seed=5,
        dtype=np.float64,
    )
    return net, Adam(0.01)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("model", choices=["dense", "conv", "bn"])
    parser.add_argument("--every-rank", action="store_true", help="each rank saves OUT.<rank>.npz")
    parser.add_argument("--csv", help="a CSVLogger file (written by rank 0 only)")
    parser.add_argument("--plain", action="store_true", help="no distributed=True (the reference)")
    parser.add_argument("--fail-rank", type=int)
    parser.add_argument("--fail-callback-rank", type=int)
    parser.add_argument("--other-seed-on-rank", type=int)
    parser.add_argument("--other-data-on-rank", type=int)
    parser.add_argument("--threads", type=int, default=1, help="Trainer(threads=...) on each rank")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    if args.model == "bn":
        X = rng.standard_normal((66, 1, 5, 5))
        y = np.stack([X[:, 0, 2, 2], X[:, 0].mean(axis=(1, 2))], axis=1)
    elif args.model == "dense":
        X = rng.standard_normal((70, 4))
        y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    else:
        X = rng.standard_normal((66, 1, 5, 5))
        y = np.stack([X[:, 0, 2, 2], X[:, 0].mean(axis=(1, 2))], axis=1)
    net, optim = build(args.model)
    trainer = Trainer(net, optim, distributed=not args.plain, threads=args.threads)
    seed = 3
    if args.other_seed_on_rank is not None and trainer.rank == args.other_seed_on_rank:
        seed = 4
    callbacks = []
    if args.fail_rank is not None and trainer.rank == args.fail_rank:
        real = net.train_batch
        calls = []

        def failing(x, y):  # the fifth step fails on this rank only
            calls.append(1)
            if len(calls) == 5:
                raise RuntimeError("injected failure")
            return real(x, y)

        net.train_batch = failing
    if args.fail_callback_rank is not None and trainer.rank == args.fail_callback_rank:

        class Boom(Callback):
            def on_epoch_end(self, epoch, logs):
                raise RuntimeError("injected callback failure")

        callbacks.append(Boom())
    if args.csv:
        callbacks.append(CSVLogger(args.csv))
    if args.other_data_on_rank is not None and trainer.rank == args.other_data_on_rank:
        X = X + 1.0
    history = trainer.fit(X[:50], y[:50], X[50:], y[50:], epochs=3, eval_every=1, batch_size=16,
                          seed=seed, verbose=0, early_stopping=False, callbacks=callbacks)  # fmt: skip
    if args.every_rank:
        np.savez(f"{args.out}.{trainer.rank}.npz", *net.arrays().values())
    elif trainer.rank == 0:
        np.savez(args.out, *net.params(), loss=np.array(history.history["loss"]),
                 val=np.array(history.history["val_loss"]))  # fmt: skip
    print(f"rank {trainer.rank} of {trainer.world_size} done", file=sys.stderr)


if __name__ == "__main__":
    main()
