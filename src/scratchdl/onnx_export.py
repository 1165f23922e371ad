"""ONNX export: a network trained here, runnable anywhere ONNX runs.

    scratchdl.export_onnx(net, "model.onnx")
    scratchdl export MODEL.safetensors MODEL.onnx        # with the model file's metadata

Every built-in layer and operation maps to standard ONNX operators (opset 17): `Dense`
to MatMul + Add, `Conv2D` to Conv (its padding resolved for the saved input size), the
pools to MaxPool / AveragePool / GlobalAveragePool, `BatchNorm` to its inference-time
scale and shift, `Embedding` to Gather, `RNN` / `LSTM` / `GRU` to ONNX's RNN / LSTM / GRU
(gates reordered to ONNX's i-o-f-c and z-r-h; the GRU with ``linear_before_reset=1``, as
PyTorch's and ours), inverted dropout to nothing and the book's dropout to its scaling.
The batch axis is dynamic; the graph computes in float32. The output is what
`net.predict` returns (logits for a softmax cross-entropy model). A layer without an ONNX
form raises `ValueError` naming it. Needs the ``onnx`` extra (``pip install
'scratchdl[onnx]'``); onnxruntime runs the result.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from scratchdl import ops
from scratchdl.layers.base import Layer
from scratchdl.network import NeuralNetwork
from scratchdl.ops.conv import resolve_padding

__all__ = ["OPSET", "export_onnx"]

OPSET = 17


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ImportError(
            "export_onnx needs the onnx package: pip install 'scratchdl[onnx]' (onnx and onnxruntime)"
        ) from None
    return onnx


class _Graph:
    """Nodes and weights being added, with fresh names."""

    def __init__(self, onnx: Any) -> None:
        self.onnx, self.nodes, self.weights, self.count = onnx, [], [], 0

    def name(self, base: str) -> str:
        self.count += 1
        return f"{base}_{self.count}"

    def weight(self, base: str, array: np.ndarray, dtype: Any = np.float32) -> str:
        name = self.name(base)
        self.weights.append(
            self.onnx.numpy_helper.from_array(np.ascontiguousarray(array, dtype=dtype), name)
        )
        return name

    def node(self, op: str, inputs: list[str], outputs: int = 1, **attrs: Any) -> list[str]:
        names = [self.name(op.lower()) for _ in range(outputs)]
        self.nodes.append(
            self.onnx.helper.make_node(op, inputs, names, name=self.name(op), **attrs)
        )
        return names

    def one(self, op: str, inputs: list[str], **attrs: Any) -> str:
        return self.node(op, inputs, 1, **attrs)[0]


Emit = Callable[[_Graph, Any, str, tuple[int, ...]], str]


def _elementwise(onnx_op: str, **attrs: Any) -> Emit:
    return lambda g, op, x, shape: g.one(onnx_op, [x], **attrs)


def _dropout(g: _Graph, op: ops.Dropout, x: str, shape: tuple[int, ...]) -> str:
    if op.inverted or op.keep_prob == 1.0:
        return x  # the identity at inference
    return g.one("Mul", [x, g.weight("keep_prob", np.array(op.keep_prob))])


def _conv(g: _Graph, op: ops.Conv2DOperation, x: str, shape: tuple[int, ...]) -> str:
    _, _, kh, kw = op.param.shape
    top, bottom, left, right = resolve_padding(op.padding, (kh, kw), op.stride, shape[1:])
    return g.one("Conv", [x, g.weight("filters", op.param)], kernel_shape=[kh, kw],
                 strides=[op.stride] * 2, pads=[top, left, bottom, right])  # fmt: skip


def _pool(g: _Graph, op: ops.MaxPool2D | ops.AvgPool2D, x: str, shape: tuple[int, ...]) -> str:
    top, bottom, left, right = resolve_padding(op.padding, op.kernel_size, op.stride, shape[1:])
    attrs: dict[str, Any] = {"kernel_shape": list(op.kernel_size), "strides": [op.stride] * 2,
                             "pads": [top, left, bottom, right]}  # fmt: skip
    if isinstance(op, ops.AvgPool2D):
        attrs["count_include_pad"] = 1  # padding counts as zeros in the mean, as ours
    return g.one("MaxPool" if isinstance(op, ops.MaxPool2D) else "AveragePool", [x], **attrs)


def _batch_norm(g: _Graph, op: ops.BatchNormOp, x: str, shape: tuple[int, ...]) -> str:
    scale = op.gamma.reshape(-1) / np.sqrt(op.running_var.astype(np.float64) + op.eps)
    shift = op.beta.reshape(-1) - op.running_mean * scale
    view = (1, -1) if len(shape) == 1 else (1, -1, 1, 1)
    scaled = g.one("Mul", [x, g.weight("bn_scale", scale.reshape(view))])
    return g.one("Add", [scaled, g.weight("bn_shift", shift.reshape(view))])


def _global_pool(g: _Graph, op: ops.GlobalAvgPool2D, x: str, shape: tuple[int, ...]) -> str:
    return g.one("Flatten", [g.one("GlobalAveragePool", [x])], axis=1)


#: ONNX's gate order, as indices into ours (LSTM: ours i f g o, ONNX i o f c; GRU: ours r z n,
#: ONNX z r h).
GATE_ORDER = {ops.LSTMOperation: [0, 3, 1, 2], ops.GRUOperation: [1, 0, 2], ops.RNNOperation: [0]}


def _recurrent(g: _Graph, op: Any, x: str, shape: tuple[int, ...]) -> str:
    H, order = op.hidden, GATE_ORDER[type(op)]

    def reorder(a: np.ndarray) -> np.ndarray:  # gate blocks along the last axis
        return np.concatenate([a[..., k * H : (k + 1) * H] for k in order], axis=-1)

    w = reorder(op.weights[0]).T[None]  # (1, gates*H, features)
    r = reorder(op.weights[1]).T[None]  # (1, gates*H, H)
    recurrent_bias = (
        op.weights[3] if isinstance(op, ops.GRUOperation) else np.zeros_like(op.weights[2])
    )
    b = np.concatenate([reorder(op.weights[2]), reorder(recurrent_bias)], axis=-1)  # (1, 2*gates*H)
    onnx_op = {ops.RNNOperation: "RNN", ops.LSTMOperation: "LSTM", ops.GRUOperation: "GRU"}[
        type(op)
    ]
    attrs: dict[str, Any] = {"hidden_size": H}
    if isinstance(op, ops.GRUOperation):
        attrs["linear_before_reset"] = 1
    if isinstance(op, ops.RNNOperation):
        attrs["activations"] = ["Tanh"]
    time_major = g.one("Transpose", [x], perm=[1, 0, 2])
    inputs = [time_major, g.weight("W", w), g.weight("R", r), g.weight("B", b)]
    y, y_h = g.node(onnx_op, inputs, outputs=2, **attrs)[:2]
    if op.return_sequences:  # Y: (time, 1, batch, H) -> (batch, time, H)
        squeezed = g.one("Squeeze", [y, g.weight("axis", np.array([1]), np.int64)])
        return g.one("Transpose", [squeezed], perm=[1, 0, 2])
    return g.one("Squeeze", [y_h, g.weight("axis", np.array([0]), np.int64)])  # (batch, H)


RULES: dict[type, Emit] = {
    ops.WeightMultiply: lambda g, op, x, s: g.one("MatMul", [x, g.weight("weights", op.param)]),
    ops.BiasAdd: lambda g, op, x, s: g.one("Add", [x, g.weight("bias", op.param)]),
    ops.ChannelBias: lambda g, op, x, s: g.one("Add", [x, g.weight("bias", op.param)]),
    ops.Linear: lambda g, op, x, s: x,
    ops.Sigmoid: _elementwise("Sigmoid"),
    ops.Tanh: _elementwise("Tanh"),
    ops.ReLU: _elementwise("Relu"),
    ops.Softmax: _elementwise("Softmax", axis=-1),
    ops.LeakyReLU: lambda g, op, x, s: g.one("LeakyRelu", [x], alpha=op.alpha),
    ops.Dropout: _dropout,
    ops.Flatten: lambda g, op, x, s: g.one("Flatten", [x], axis=1),
    ops.Conv2DOperation: _conv,
    ops.MaxPool2D: _pool,
    ops.AvgPool2D: _pool,
    ops.GlobalAvgPool2D: _global_pool,
    ops.BatchNormOp: _batch_norm,
    ops.EmbeddingLookup: lambda g, op, x, s: g.one(
        "Gather", [g.weight("table", op.param), x], axis=0
    ),
    ops.RNNOperation: _recurrent,
    ops.LSTMOperation: _recurrent,
    ops.GRUOperation: _recurrent,
}


def _rule(layer: Layer, op: Any) -> Emit:
    rule = RULES.get(type(op))
    if rule is None:
        raise ValueError(
            f"export_onnx: {layer.name} uses {type(op).__name__}, which has no ONNX form; "
            f"exportable operations: {', '.join(sorted(c.__name__ for c in RULES))}"
        )
    return rule


def to_onnx(net: NeuralNetwork, metadata: dict[str, str] | None = None) -> Any:
    """The ONNX `ModelProto` of a built network (see the module docstring)."""
    onnx = _onnx()
    if not net.built:
        raise ValueError(
            "export_onnx: the network is not built yet; run a forward pass (or fit) first"
        )
    if getattr(net, "xp", np) is not np:  # a network on a device: export its host copy
        xp, device = net.xp, net.device
        net.to(np)
        try:
            return to_onnx(net, metadata)
        finally:
            net.to(xp, device)
    graph = _Graph(onnx)
    ids = isinstance(net.layers[0].operations[0], ops.EmbeddingLookup)
    first = net.layers[0].input_shape
    elem = onnx.TensorProto.INT64 if ids else onnx.TensorProto.FLOAT
    inputs = [onnx.helper.make_tensor_value_info("input", elem, ["batch", *first])]
    x, shape = "input", tuple(first)
    for layer in net.layers:
        for op in layer.operations:
            rule = _rule(layer, op)
            probe = op.forward(np.zeros((0, *shape), dtype=net.dtype), inference=True)
            x, shape = rule(graph, op, x, shape), tuple(probe.shape[1:])
    graph.nodes.append(onnx.helper.make_node("Identity", [x], ["output"], name="output"))
    outputs = [
        onnx.helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, ["batch", *shape])
    ]
    body = onnx.helper.make_graph(graph.nodes, "scratchdl", inputs, outputs, graph.weights)
    model = onnx.helper.make_model(body, opset_imports=[onnx.helper.make_opsetid("", OPSET)],
                                   producer_name="scratchdl")  # fmt: skip
    model.ir_version = min(model.ir_version, 8)  # readable by older runtimes too
    entries = {
        "architecture": json.dumps([repr(layer) for layer in net.layers]),
        **(metadata or {}),
    }
    for key, value in entries.items():
        model.metadata_props.add(key=str(key), value=str(value))
    onnx.checker.check_model(model)
    return model


def export_onnx(
    net: NeuralNetwork, path: str | os.PathLike, metadata: dict[str, str] | None = None
) -> Path:
    """Write `net` as an ONNX model to `path` (checked with `onnx.checker`) and return the
    path. `metadata` (e.g. the preprocessing a model file records) goes into the model's
    metadata properties."""
    from scratchdl.io.state import atomic_write

    model = to_onnx(net, metadata)
    atomic_write(path, model.SerializeToString())
    return Path(path)
