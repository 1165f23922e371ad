"""Graph pictures in pure Python SVG (issue 15)."""

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from scratchdl import (
    Conv2D,
    Dense,
    Linear,
    MaxPool2D,
    NeuralNetwork,
    ReLU,
    SoftmaxCrossEntropy,
    autograd,
    plot,
)
from scratchdl.autograd import Tensor

SVG = "{http://www.w3.org/2000/svg}"


def boxes(svg: str):
    root = ET.fromstring(svg)
    return [
        [t.text for t in g.findall(f"{SVG}text")] for g in root.findall(f"{SVG}g")
    ], root.findall(f"{SVG}line")


def test_an_autograd_graph_is_drawn_with_every_operation_and_edge(rng, tmp_path):
    w = Tensor(rng.standard_normal((4, 3)), requires_grad=True, name="W")
    x = Tensor(rng.standard_normal((5, 4)), name="x")
    loss = autograd.tanh(x @ w).sum()
    picture = plot.graph(loss, tmp_path / "g.svg")
    labels, edges = boxes(picture.svg)
    titles = [label[0] for label in labels]
    assert titles == ["x", "W", "matmul ((5, 4) @ (4, 3))", "tanh", "sum (axis=None)"]
    assert [label[1] for label in labels] == ["5×4", "4×3", "5×3", "5×3", "scalar"]
    assert len(edges) == 4  # x→matmul, W→matmul, matmul→tanh, tanh→sum
    assert (tmp_path / "g.svg").read_text() == picture.svg == picture._repr_svg_()


def test_a_network_is_drawn_layer_by_layer_with_shapes_and_counts():
    net = NeuralNetwork(
        [
            Conv2D(4, 3, activation=ReLU()),
            MaxPool2D(2),
            Conv2D(2, 3, flatten=True),
            Dense(10, Linear()),
        ],
        SoftmaxCrossEntropy(),
    )
    net.summary(input_shape=(1, 8, 8))
    labels, edges = boxes(plot.graph(net).svg)
    assert [label[0] for label in labels] == [
        "input", "1 Conv2D · ReLU", "2 MaxPool2D", "3 Conv2D · Linear", "4 Dense · Linear",
        "SoftmaxCrossEntropy()",
    ]  # fmt: skip
    assert labels[1][1] == "batch×4×8×8, 40 params" and labels[4][1] == "batch×10, 330 params"
    assert len(edges) == 5


def test_graph_refuses_what_it_cannot_draw(rng):
    with pytest.raises(TypeError, match="expected an autograd Tensor or a NeuralNetwork"):
        plot.graph(np.zeros(3))
    with pytest.raises(ValueError, match="not made by any operation"):
        plot.graph(Tensor(1.0, requires_grad=True))
    y = Tensor(1.0, requires_grad=True)
    for _ in range(500):
        y = y * 1.0
    with pytest.raises(ValueError, match="unreadable"):
        plot.graph(y)


def test_labels_are_escaped(rng):
    w = Tensor(1.0, requires_grad=True, name="<w & b>")
    ET.fromstring(plot.graph(w * 2.0).svg)  # well-formed despite the name
