import numpy as np
import pytest

from scratchdl import LSTM, Dense, Embedding, Linear, NeuralNetwork, SoftmaxCrossEntropy
from scratchdl.text import CharVocab, generate, windows


def test_vocab_is_sorted_and_round_trips():
    vocab = CharVocab("hello world")
    assert vocab.chars == sorted(set("hello world")) and len(vocab) == 8
    np.testing.assert_array_equal(vocab.encode("old"), [vocab.index[c] for c in "old"])
    assert vocab.decode(vocab.encode("hello")) == "hello"
    with pytest.raises(ValueError, match="not in the vocabulary: 'z'"):
        vocab.encode("hz")


def test_windows_are_shifted_by_one():
    ids = np.arange(20)
    X, Y = windows(ids, 5)
    assert X.shape == Y.shape == (3, 5)
    np.testing.assert_array_equal(Y, X + 1)


def test_generate_is_seeded_and_restores_the_layers():
    vocab = CharVocab("abcde ")
    net = NeuralNetwork(
        [Embedding(6, 4), LSTM(8, return_sequences=True), Dense(6, Linear())],
        SoftmaxCrossEntropy(),
        seed=0,
    )
    a = generate(net, vocab, "ab", 20, temperature=0.8, seed=3)
    b = generate(net, vocab, "ab", 20, temperature=0.8, seed=3)
    assert a == b and a.startswith("ab") and len(a) == 22 and set(a) <= set("abcde ")
    lstm = net.layers[1].operations[0]
    assert lstm.stateful is False and lstm.carried is None
    # one character at a time with carried state equals running the whole text at once
    ids = vocab.encode(a[:-1])
    whole = net.predict(ids[None])[0, -1]
    lstm.stateful = True
    for i in ids:
        step = net.predict(np.array([[i]]))[0, -1]
    lstm.stateful, lstm.carried = False, None
    np.testing.assert_allclose(step, whole, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        generate(net, vocab, "a", 5, temperature=0)
