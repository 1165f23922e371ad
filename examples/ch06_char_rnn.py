"""Chapter 6 of the book: a character-level language model that writes Shakespeare-like text.

Reads `$SCRATCHDL_DATA/text/tinyshakespeare.txt` (or the book's own `shakespeare.txt` with
--text shakespeare), with a vocabulary sorted so ids are the same on every run, the first
90% for training and the last 10% for validation. Reports losses in nats per character
and prints a sample.

    python examples/ch06_char_rnn.py [--minutes 25] [--cell lstm|gru|rnn] [--hidden 256]
    python examples/ch06_char_rnn.py --book rnn     # the book's RNN 256 with SGD, seq 25
    python examples/ch06_char_rnn.py --book lstm    # the book's LSTM 256 with AdaGrad, seq 25

(The book feeds one-hot vectors; --book uses a learned embedding as wide as the vocabulary.)
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from scratchdl import (
    GRU,
    LSTM,
    RNN,
    SGD,
    AdaGrad,
    Adam,
    Callback,
    Dense,
    Embedding,
    Linear,
    NeuralNetwork,
    SoftmaxCrossEntropy,
    Trainer,
)
from scratchdl.datasets import load_text
from scratchdl.text import CharVocab, generate, windows

CELLS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}


class TimeLimit(Callback):
    """Stop after the epoch during which `minutes` ran out."""

    def __init__(self, minutes: float) -> None:
        self.seconds = minutes * 60

    def on_train_begin(self, logs):
        self.start = time.perf_counter()

    def on_batch_end(self, batch, logs):
        if time.perf_counter() - self.start > self.seconds:
            self.trainer.stop_training = True


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--text", default="tinyshakespeare", choices=["tinyshakespeare", "shakespeare"]
    )
    parser.add_argument("--cell", default="lstm", choices=sorted(CELLS))
    parser.add_argument("--book", choices=["rnn", "lstm"], help="the book's configuration instead")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--embed", type=int, default=64)
    parser.add_argument("--seq", type=int, default=100)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--minutes", type=float, default=25.0)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--save", default=None, help="write the trained model here")
    args = parser.parse_args()

    text = load_text(args.text, args.data_dir)
    vocab = CharVocab(text)
    ids = vocab.encode(text)
    split = int(len(ids) * 0.9)
    if (
        args.book
    ):  # the book's chapter-6 runs: hidden 256, sequences of 25, a vocabulary-wide embedding
        args.seq, args.embed = 25, len(vocab)
        cell = RNN if args.book == "rnn" else LSTM
        optimizer = (
            SGD(0.001, clip_norm=5.0) if args.book == "rnn" else AdaGrad(0.01, clip_norm=5.0)
        )
    else:
        cell = CELLS[args.cell]
        optimizer = Adam(args.lr, clip_norm=5.0)
    X_train, y_train = windows(ids[:split], args.seq)
    X_val, y_val = windows(ids[split:], args.seq)
    net = NeuralNetwork(
        [
            Embedding(len(vocab), args.embed),
            cell(args.hidden, return_sequences=True),
            Dense(len(vocab), Linear()),
        ],
        SoftmaxCrossEntropy(),
        seed=args.seed,
    )
    print(f"{args.text}: {len(text):,} characters, vocabulary of {len(vocab)} (sorted), "
          f"{len(X_train):,} training and {len(X_val):,} validation sequences of {args.seq}")  # fmt: skip
    print(f"unigram baseline: {unigram_loss(ids[:split], ids[split:], len(vocab)):.3f} nats/char")
    trainer = Trainer(net, optimizer)
    start = time.perf_counter()
    history = trainer.fit(X_train, y_train, X_val, y_val, epochs=args.epochs, eval_every=1, batch_size=args.batch,
                          seed=args.seed, early_stopping=False, callbacks=[TimeLimit(args.minutes)], verbose=2)  # fmt: skip
    minutes = (time.perf_counter() - start) / 60
    val = history.history["val_loss"]
    print(
        f"\nbest validation loss {min(val):.3f} nats/char (last {val[-1]:.3f}) after {len(history.epoch)} epochs, {minutes:.1f} min"
    )
    print(
        "\nsample (temperature 0.8):\n"
        + generate(net, vocab, "ROMEO:\n", 300, temperature=0.8, seed=args.seed)
    )
    if args.save:
        net.save(args.save)


def unigram_loss(train: np.ndarray, val: np.ndarray, vocab_size: int) -> float:
    counts = np.bincount(train, minlength=vocab_size) + 1.0
    return float(-np.mean(np.log(counts[val] / counts.sum())))


if __name__ == "__main__":
    main()
