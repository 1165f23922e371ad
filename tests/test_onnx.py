"""ONNX export, checked in onnxruntime (issue 17)."""

import numpy as np
import pytest

from scratchdl import (
    GRU,
    LSTM,
    RNN,
    SGD,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Embedding,
    GlobalAvgPool2D,
    LeakyReLU,
    Linear,
    MaxPool2D,
    MeanSquaredError,
    NeuralNetwork,
    ReLU,
    Sigmoid,
    Softmax,
    SoftmaxCrossEntropy,
    Tanh,
    export_onnx,
)
from scratchdl.cli import main
from scratchdl.presets import PRESETS

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def run_onnx(path, x, ids=False):
    session = ort.InferenceSession(str(path))
    return session.run(None, {"input": x.astype(np.int64 if ids else np.float32)})[0]


def assert_same(net, x, tmp_path, name="m"):
    path = export_onnx(net, tmp_path / f"{name}.onnx")
    onnx.checker.check_model(onnx.load(str(path)))
    ids = isinstance(net.layers[0], Embedding)
    expected = net.predict(x)
    got = run_onnx(path, x, ids)
    assert got.shape == expected.shape
    scale = max(1.0, float(np.max(np.abs(expected))))
    assert float(np.max(np.abs(got - expected))) / scale < 1e-5


def trained(net, x, y, steps=3):
    """A few steps, so batch-norm statistics and weights are not their initial values."""
    optim = SGD(0.01)
    optim.net = net
    for _ in range(steps):
        net.train_batch(x, y)
        optim.step()
    return net


MODELS = [
    ("dense", lambda: [Dense(8, Tanh(), dropout=0.8), Dense(4, LeakyReLU(0.1)), Dropout(0.7, inverted=False), Dense(3, Softmax())], (6,)),
    ("sigmoid", lambda: [Dense(5, Sigmoid(), weight_init="glorot"), BatchNorm(momentum=0.5), Dense(3, ReLU())], (4,)),
    ("conv", lambda: [Conv2D(4, 3, stride=2, activation=ReLU()), BatchNorm(), MaxPool2D(2), Conv2D(3, (2, 3), padding="valid"), AvgPool2D(2, stride=1, padding=1), GlobalAvgPool2D(), Dense(3, Linear())], (2, 13, 12)),
    ("conv_flat", lambda: [Conv2D(4, 5, activation=Tanh(), dropout=0.8, flatten=True), Dense(3, Linear())], (1, 8, 8)),
    ("even_same", lambda: [Conv2D(2, 4, stride=3, padding="same"), MaxPool2D(3, stride=2, padding=1), GlobalAvgPool2D()], (1, 10, 9)),
]  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "layers", "shape"), MODELS, ids=[m[0] for m in MODELS])
def test_random_models_give_predict_outputs_in_onnxruntime(
    tmp_path, name, layers, shape, dtype, rng
):
    net = NeuralNetwork(layers(), MeanSquaredError(), seed=1, dtype=dtype)
    x = rng.standard_normal((8, *shape))
    y = net.forward(x, inference=True) * 0.0 + rng.standard_normal(
        net.forward(x, inference=True).shape
    )
    trained(net, x, y)
    assert_same(net, rng.standard_normal((5, *shape)), tmp_path, name)  # another batch size


@pytest.mark.parametrize(
    "layers",
    [
        lambda: [Embedding(7, 5), LSTM(6, return_sequences=True), GRU(4, return_sequences=True), RNN(3), Dense(2, Linear())],
        lambda: [Embedding(7, 5), RNN(4, return_sequences=True), LSTM(3), Dense(2, Linear())],
        lambda: [Embedding(7, 5), GRU(6, return_sequences=True), Dense(7, Linear())],
    ],
)  # fmt: skip
def test_recurrent_models_give_predict_outputs(tmp_path, layers, rng):
    net = NeuralNetwork(layers(), SoftmaxCrossEntropy(), seed=2)
    ids = rng.integers(0, 7, (6, 9))
    out = net.forward(ids)
    trained(net, ids, rng.integers(0, out.shape[-1], out.shape[:-1]))
    assert_same(net, rng.integers(0, 7, (3, 9)), tmp_path)


INPUTS = {"boston": (13,), "mnist": (784,), "digits": (64,), "tinyshakespeare": (100,)}


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_cli_preset_exports(tmp_path, preset, rng):
    recipe = PRESETS[preset]
    net, _ = recipe.build(0, None)
    shape = (1, 28, 28) if recipe.images else INPUTS[recipe.dataset]
    x = (
        rng.integers(0, 65, (3, *shape))
        if recipe.dataset == "tinyshakespeare"
        else rng.standard_normal((3, *shape))
    )
    net.forward(x[:1], inference=True)
    assert_same(net, x, tmp_path, preset)


@pytest.mark.parametrize("make", ["modern_model", "ch7_model"])
def test_the_readme_chapter_5_models_export(tmp_path, make, rng):
    from tests.integration.test_ch03_boston import load_example

    example = load_example("ch05_mnist_cnn")
    net = (example.modern_model(0, 1) if make == "modern_model" else example.ch7_model(0))[0]
    x = rng.standard_normal((4, 1, 28, 28))
    trained(net, x, rng.integers(0, 10, 4), steps=2)
    assert_same(net, rng.standard_normal((3, 1, 28, 28)), tmp_path, make)


def test_an_operation_without_an_onnx_form_is_named(tmp_path):
    from scratchdl.autograd import TensorOperation

    class Swish(TensorOperation):
        def compute(self, x):
            return x

    class SwishLayer(Dense):
        def _setup_layer(self, input_):
            super()._setup_layer(input_)
            self.operations[2] = Swish()

    net = NeuralNetwork([Dense(3), SwishLayer(2)], MeanSquaredError())
    net.forward(np.zeros((1, 4)))
    with pytest.raises(
        ValueError, match=r"layer 2 \(SwishLayer\) uses Swish, which has no ONNX form"
    ):
        export_onnx(net, tmp_path / "x.onnx")
    with pytest.raises(ValueError, match="not built yet"):
        export_onnx(NeuralNetwork([Dense(2)], MeanSquaredError()), tmp_path / "y.onnx")


def test_the_command_exports_a_model_file_with_its_metadata(tmp_path, capsys):
    net = NeuralNetwork([Dense(4, Tanh()), Dense(3, Linear())], SoftmaxCrossEntropy(), seed=0)
    net.forward(np.zeros((1, 5)))
    net.save(
        tmp_path / "m.safetensors",
        metadata={"task": "classification", "preprocessing": '{"mean": 0.5}'},
    )
    assert main(["export", str(tmp_path / "m.safetensors"), str(tmp_path / "m.onnx")]) == 0
    out = capsys.readouterr().out
    assert "ONNX opset 17" in out and "input:  input, float32, shape (batch, 5)" in out
    props = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert props["preprocessing"] == '{"mean": 0.5}' and props["classes"] == "3"
    assert main(["export", str(tmp_path / "missing.safetensors"), str(tmp_path / "x.onnx")]) == 2
