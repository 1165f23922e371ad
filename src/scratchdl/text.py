"""Character-level text helpers: a fixed vocabulary, training windows, and sampling."""

from __future__ import annotations

import numpy as np

from scratchdl.layers.recurrent import _RecurrentLayer
from scratchdl.network import NeuralNetwork
from scratchdl.ops.activations import softmax

__all__ = ["CharVocab", "generate", "windows"]


class CharVocab:
    """The sorted set of characters of a text, so ids are the same on every run."""

    def __init__(self, text: str) -> None:
        if not text:
            raise ValueError("CharVocab: the text is empty")
        self.chars = sorted(set(text))
        self.index = {ch: i for i, ch in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        unknown = sorted(set(text) - set(self.index))
        if unknown:
            raise ValueError(f"CharVocab: characters not in the vocabulary: {''.join(unknown)!r}")
        return np.array([self.index[ch] for ch in text], dtype=np.int64)

    def decode(self, ids: np.ndarray) -> str:
        return "".join(self.chars[int(i)] for i in ids)


def windows(ids: np.ndarray, length: int, step: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets): windows of `length` ids and the same windows shifted by one."""
    step = step or length
    starts = np.arange(0, len(ids) - length - 1, step)
    offsets = starts[:, None] + np.arange(length)
    return ids[offsets], ids[offsets + 1]


def generate(
    net: NeuralNetwork,
    vocab: CharVocab,
    prompt: str,
    length: int = 300,
    temperature: float = 1.0,
    seed: int = 0,
) -> str:
    """Sample `length` characters after `prompt` from a character model.

    The network maps (batch, time) ids to (batch, time, vocab) logits. Its recurrent layers
    are switched to stateful for the duration, so each new character costs one time step;
    their previous settings and state are restored afterwards.
    """
    if temperature <= 0:
        raise ValueError(f"generate: temperature must be > 0. Received: temperature={temperature}")
    if not prompt:
        raise ValueError("generate: the prompt must have at least one character")
    rng = np.random.default_rng(seed)
    recurrent = [layer for layer in net.layers if isinstance(layer, _RecurrentLayer)]
    ids = vocab.encode(prompt)
    if not net.built:
        net.forward(ids[None, :1], inference=True)
    saved = [(layer.operations[0].stateful, layer.operations[0].carried) for layer in recurrent]
    try:
        for layer in recurrent:
            layer.operations[0].stateful = True
            layer.operations[0].carried = None
        logits = net.forward(ids[None], inference=True)[0, -1]
        out = []
        for _ in range(length):
            probs = softmax((logits / temperature)[None].astype(np.float64))[0]
            nxt = int(rng.choice(len(probs), p=probs))
            out.append(nxt)
            logits = net.forward(np.array([[nxt]]), inference=True)[0, -1]
    finally:
        for layer, (stateful, carried) in zip(recurrent, saved, strict=True):
            layer.operations[0].stateful = stateful
            layer.operations[0].carried = carried
    return prompt + vocab.decode(np.array(out))
