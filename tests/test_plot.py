import json

import numpy as np
import pytest

from scratchdl import SGD, Dense, Linear, NeuralNetwork, SoftmaxCrossEntropy, Tanh, Trainer, plot

pytest.importorskip("matplotlib")


def image_size(path):
    """(width, height) of a PNG, read from its header."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 16))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    net = NeuralNetwork([Dense(8, Tanh()), Dense(3, Linear())], SoftmaxCrossEntropy(), seed=0)
    history = Trainer(net, SGD(0.1), metrics=["accuracy"]).fit(
        X, y, X, y, epochs=6, eval_every=2, verbose=0
    )
    return net, history, X, y


def test_history_plot(tmp_path, trained):
    _, history, _, _ = trained
    fig = plot.history(history, tmp_path / "h.png")
    assert image_size(tmp_path / "h.png") == (1100, 400)
    loss_ax, metric_ax = fig.axes
    assert loss_ax.get_xlabel() == "epoch" and loss_ax.get_ylabel() == "loss"
    assert [line.get_label() for line in loss_ax.get_lines()] == [
        "training loss",
        "validation loss",
    ]
    np.testing.assert_allclose(loss_ax.get_lines()[1].get_xdata(), [2, 4, 6])
    assert [line.get_label() for line in metric_ax.get_lines()] == ["accuracy"]


def test_confusion_matrix(tmp_path, trained):
    net, _, X, y = trained
    fig = plot.confusion_matrix(y, net.predict(X), tmp_path / "c.png")
    width, height = image_size(tmp_path / "c.png")
    assert width > 200 and height > 200
    ax = fig.axes[0]
    counts = ax.images[0].get_array()
    assert counts.sum() == len(y) and counts.shape == (3, 3)
    assert "accuracy" in ax.get_title()


def test_weights_plot(tmp_path, trained):
    net, _, _, _ = trained
    fig = plot.weights(net, tmp_path / "w.png")
    assert image_size(tmp_path / "w.png")[0] > 300
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 8 and shown[0].images[0].get_array().shape == (4, 4)
    with pytest.raises(ValueError, match="not a square image"):
        plot.weights(np.zeros((10, 3)))


def test_history_from_json_like_object(tmp_path, trained):
    _, history, _, _ = trained
    data = json.loads(
        json.dumps({"epoch": history.epoch, "val_epoch": history.val_epoch, **history.history})
    )

    class Loaded:
        epoch = data.pop("epoch")
        val_epoch = data.pop("val_epoch")
        history = data

    plot.history(Loaded(), tmp_path / "again.png")
    assert (tmp_path / "again.png").stat().st_size > 5000
