"""Pictures of computation graphs as SVG, in pure Python (no graphviz binary needed).

`graph(obj)` draws an autograd `Tensor`'s graph (each operation a box with its name and
output shape, leaves in another colour) or a `NeuralNetwork`'s layers (each with its output
shape and parameter count), top to bottom. The result shows itself in Jupyter
(`_repr_svg_`) and `save(path)` writes the file. Nodes are placed in rows by their longest
distance from an input, and in each row in the order they were first reached.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from scratchdl.autograd.tensor import Tensor, _topological
from scratchdl.network import NeuralNetwork

__all__ = ["GraphPicture", "graph"]

#: More nodes than this make an unreadable picture; `graph` refuses them.
MAX_NODES = 400
BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 190, 46, 26, 34, 16
COLOURS = {"leaf": "#dbeafe", "param": "#fde68a", "op": "#f3f4f6", "out": "#bbf7d0"}


@dataclass
class _Node:
    key: int
    title: str
    detail: str
    kind: str
    inputs: list[int] = field(default_factory=list)
    full: str = ""  # the whole description, shown when the mouse is over the box


@dataclass
class GraphPicture:
    """An SVG picture: `svg` is the text; it renders itself in Jupyter."""

    svg: str

    def _repr_svg_(self) -> str:
        return self.svg

    def save(self, path: str | os.PathLike) -> Path:
        """Write the SVG to `path` and return it."""
        path = Path(path)
        path.write_text(self.svg, encoding="utf-8")
        return path


def _tensor_nodes(root: Tensor) -> list[_Node]:
    order = _topological(root)
    if len(order) > MAX_NODES:
        raise ValueError(
            f"graph: the graph has {len(order)} tensors; a picture of more than {MAX_NODES} "
            "is unreadable. Draw a smaller piece of it"
        )
    nodes = []
    for t in order:
        shape = "scalar" if t.ndim == 0 else "×".join(map(str, t.shape))
        if t.node is None:
            kind = "param" if t.requires_grad else "leaf"
            title = t.name or ("parameter" if t.requires_grad else "input")
            nodes.append(_Node(id(t), title, shape, kind))
        else:
            info = f" ({t.node.info})" if t.node.info else ""
            kind = "out" if t is root else "op"
            inputs = [id(i) for i in t.node.inputs if i.requires_grad or i.node is None]
            nodes.append(_Node(id(t), t.node.name + info, shape, kind, inputs))
    known = {n.key for n in nodes}
    for n in nodes:
        n.inputs = [k for k in n.inputs if k in known]
    # constants (inputs that need no gradient) are not walked by the sort; add them
    extra = []
    for t in order:
        if t.node is not None:
            for i in t.node.inputs:
                if i.size == 1 and not i.name:
                    continue  # a plain number (a divisor, a constant term) needs no box
                if id(i) not in known and len(known) + len(extra) < MAX_NODES:
                    shape = "scalar" if i.ndim == 0 else "×".join(map(str, i.shape))
                    extra.append(_Node(id(i), i.name or "constant", shape, "leaf"))
                    known.add(id(i))
                    next(n for n in nodes if n.key == id(t)).inputs.append(id(i))
    return extra + nodes


def _network_nodes(net: NeuralNetwork) -> list[_Node]:
    first = net.layers[0].input_shape
    shape = "?" if first is None else "×".join(map(str, ("batch", *first)))
    nodes = [_Node(0, "input", shape, "leaf")]
    for layer in net.layers:
        out = (
            "?"
            if layer.output_shape is None
            else "×".join(map(str, ("batch", *layer.output_shape)))
        )
        count = sum(p.size for p in layer.params)
        detail = f"{out}, {count:,} params" if count else out
        node = _Node(
            layer.index or 0, f"{layer.index} {_layer_title(layer)}", detail, "op", [nodes[-1].key]
        )
        node.full = f"{layer.index} {layer!r}"
        nodes.append(node)
    nodes.append(_Node(-1, repr(net.loss), "loss", "out", [nodes[-1].key]))
    return nodes


def _layer_title(layer: Any) -> str:
    """A layer's class and its activation, e.g. ``Conv2D · ReLU`` (the repr is the tooltip)."""
    name = type(layer).__name__
    if name == "OperationLayer":
        return type(layer.operation).__name__
    activation = getattr(layer, "activation", None)
    return f"{name} · {type(activation).__name__}" if activation is not None else name


def _layout(nodes: list[_Node]) -> dict[int, tuple[int, int]]:
    depth: dict[int, int] = {}
    for n in nodes:  # inputs come before the nodes that use them
        depth[n.key] = 1 + max((depth[k] for k in n.inputs if k in depth), default=-1)
    consumers: dict[int, list[int]] = {}
    for n in nodes:
        for k in n.inputs:
            consumers.setdefault(k, []).append(depth[n.key])
    for n in nodes:  # an input sits just above the first operation that uses it
        if not n.inputs and n.key in consumers:
            depth[n.key] = max(min(consumers[n.key]) - 1, 0)
    rows: dict[int, list[int]] = {}
    for n in nodes:
        rows.setdefault(depth[n.key], []).append(n.key)
    return {key: (col, row) for row, keys in rows.items() for col, key in enumerate(keys)}


def _fit(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _svg(nodes: list[_Node], title: str) -> str:
    places = _layout(nodes)
    columns = max(c for c, _ in places.values()) + 1
    rows = max(r for _, r in places.values()) + 1
    width = max(2 * MARGIN + columns * BOX_W + (columns - 1) * GAP_X, 2 * MARGIN + 8 * len(title))
    height = 2 * MARGIN + 24 + rows * BOX_H + (rows - 1) * GAP_Y

    def centre(key: int) -> tuple[float, float]:
        col, row = places[key]
        return (
            MARGIN + col * (BOX_W + GAP_X) + BOX_W / 2,
            MARGIN + 24 + row * (BOX_H + GAP_Y) + BOX_H / 2,
        )

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#4b5563"/></marker></defs>',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{MARGIN}" y="{MARGIN + 12}" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    for n in nodes:
        x2, y2 = centre(n.key)
        for k in n.inputs:
            x1, y1 = centre(k)
            parts.append(
                f'<line x1="{x1:.1f}" y1="{y1 + BOX_H / 2:.1f}" x2="{x2:.1f}" y2="{y2 - BOX_H / 2 - 2:.1f}" '
                'stroke="#4b5563" stroke-width="1.3" marker-end="url(#arrow)"/>'
            )
    for n in nodes:
        x, y = centre(n.key)
        parts.append(
            f"<g><title>{escape(n.full or n.title)}: {escape(n.detail)}</title>"
            f'<rect x="{x - BOX_W / 2:.1f}" y="{y - BOX_H / 2:.1f}" width="{BOX_W}" height="{BOX_H}" '
            f'rx="7" fill="{COLOURS[n.kind]}" stroke="#374151" stroke-width="1"/>'
            f'<text x="{x:.1f}" y="{y - 4:.1f}" font-size="12" text-anchor="middle">{escape(_fit(n.title))}</text>'
            f'<text x="{x:.1f}" y="{y + 13:.1f}" font-size="11" fill="#374151" text-anchor="middle">'
            f"{escape(_fit(n.detail, 34))}</text></g>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


def graph(
    obj: Any, path: str | os.PathLike | None = None, title: str | None = None
) -> GraphPicture:
    """A picture of an autograd `Tensor`'s graph, or of a `NeuralNetwork`'s layers.

    Returns a `GraphPicture` (shown inline in Jupyter); with `path`, also writes the SVG."""
    if isinstance(obj, Tensor):
        if obj.node is None:
            raise ValueError("graph: this tensor was not made by any operation; nothing to draw")
        nodes = _tensor_nodes(obj)
        default = f"autograd graph: {len(nodes)} tensors"
    elif isinstance(obj, NeuralNetwork):
        nodes = _network_nodes(obj)
        default = f"network: {len(obj.layers)} layers, {obj.count_params():,} parameters"
    else:
        raise TypeError(
            f"graph: expected an autograd Tensor or a NeuralNetwork. Received: {type(obj).__name__}"
        )
    picture = GraphPicture(_svg(nodes, title or default))
    if path is not None:
        picture.save(path)
    return picture
