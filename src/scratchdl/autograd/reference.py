"""Every built-in operation written again with Tensors: the second route to each gradient.

`tensor_forward(op, x, params, inference)` computes what `op.forward` computed, from its
input and parameters as Tensors, so autograd can differentiate it; `gradcheck.check_autograd`
compares that with the operation's hand-written backward. Randomness and carried state are
taken from the operation as its last forward left them (the dropout mask, a recurrent
layer's initial state), so both routes differentiate the same function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from scratchdl import ops
from scratchdl.autograd import functions as F
from scratchdl.autograd.operation import TensorOperation
from scratchdl.autograd.tensor import Tensor, getitem, matmul, reshape, transpose
from scratchdl.core import Operation
from scratchdl.ops.conv import resolve_padding

__all__ = ["tensor_forward"]

Rule = Callable[[Any, Tensor, list[Tensor], bool], Tensor]


def _dropout(op: ops.Dropout, x: Tensor, params: list[Tensor], inference: bool) -> Tensor:
    if op.mask is not None:
        return x * op.mask
    if op._scale is not None:
        return x * op._scale
    return x


def _windows(
    x: Tensor, kernel: tuple[int, int], stride: int, pad: tuple[int, int, int, int], fill: float
) -> list[list[Tensor]]:
    """windows[i][j] = the (N, C, Ho, Wo) values at kernel offset (i, j), by strided slices."""
    top, bottom, left, right = pad
    if any(pad):
        x = F.pad(x, [(0, 0), (0, 0), (top, bottom), (left, right)], value=fill)
    kh, kw = kernel
    ho = (x.shape[2] - kh) // stride + 1
    wo = (x.shape[3] - kw) // stride + 1
    return [
        [
            getitem(x, (slice(None), slice(None), slice(i, i + stride * ho, stride), slice(j, j + stride * wo, stride)))
            for j in range(kw)
        ]
        for i in range(kh)
    ]  # fmt: skip


def _pool(
    op: ops.MaxPool2D | ops.AvgPool2D, x: Tensor, params: list[Tensor], inference: bool
) -> Tensor:
    pad = resolve_padding(op.padding, op.kernel_size, op.stride, x.shape[2:])
    fill = -np.inf if isinstance(op, ops.MaxPool2D) else 0.0
    rows = _windows(x, op.kernel_size, op.stride, pad, fill)
    stacked = F.stack([w for row in rows for w in row], axis=-1)
    return stacked.max(axis=-1) if isinstance(op, ops.MaxPool2D) else stacked.mean(axis=-1)


def _conv(op: ops.Conv2DOperation, x: Tensor, params: list[Tensor], inference: bool) -> Tensor:
    (filters,) = params
    f, c, kh, kw = filters.shape
    pad = resolve_padding(op.padding, (kh, kw), op.stride, x.shape[2:])
    out = None
    for i, row in enumerate(_windows(x, (kh, kw), op.stride, pad, 0.0)):
        for j, window in enumerate(row):
            n, _, ho, wo = window.shape
            cols = reshape(transpose(window, (0, 2, 3, 1)), (n * ho * wo, c))
            term = matmul(cols, transpose(getitem(filters, (slice(None), slice(None), i, j))))
            out = term if out is None else out + term
    return transpose(reshape(out, (n, ho, wo, f)), (0, 3, 1, 2))


def _batch_norm(op: ops.BatchNormOp, x: Tensor, params: list[Tensor], inference: bool) -> Tensor:
    gamma, beta = params
    shape = (1, -1) if x.ndim == 2 else (1, -1, 1, 1)
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    if inference:
        mean, var = op.running_mean.reshape(shape), op.running_var.reshape(shape)
        centred = x - mean
    else:
        mean = x.mean(axis=axes, keepdims=True)
        centred = x - mean
        var = (centred * centred).mean(axis=axes, keepdims=True)
    normalized = centred / (var + op.eps) ** 0.5
    return normalized * reshape(gamma, shape) + reshape(beta, shape)


def _initial(op: Any) -> list[np.ndarray]:
    """The state the operation's last forward started from."""
    if isinstance(op, ops.LSTMOperation):
        return [op._h0, op._cs[:, 0]]
    return [op._h0]


def _recurrent(op: Any, x: Tensor, params: list[Tensor], inference: bool) -> Tensor:
    w_x, w_h, b = params[:3]
    H = op.hidden
    state = [Tensor(s) for s in _initial(op)]
    hs = []
    for t in range(x.shape[1]):
        x_t = getitem(x, (slice(None), t))
        if isinstance(op, ops.RNNOperation):
            h = F.tanh(matmul(x_t, w_x) + b + matmul(state[0], w_h))
            state = [h]
        elif isinstance(op, ops.LSTMOperation):
            h, c = state
            a = matmul(x_t, w_x) + b + matmul(h, w_h)
            i, f = F.sigmoid(a[:, :H]), F.sigmoid(a[:, H : 2 * H])
            g, o = F.tanh(a[:, 2 * H : 3 * H]), F.sigmoid(a[:, 3 * H :])
            c = f * c + i * g
            state = [o * F.tanh(c), c]
        else:  # GRU, as torch.nn.GRU
            h = state[0]
            xp = matmul(x_t, w_x) + b
            hh = matmul(h, w_h) + params[3]
            r = F.sigmoid(xp[:, :H] + hh[:, :H])
            z = F.sigmoid(xp[:, H : 2 * H] + hh[:, H : 2 * H])
            n = F.tanh(xp[:, 2 * H :] + r * hh[:, 2 * H :])
            state = [(1 - z) * n + z * h]
        hs.append(state[0])
    return F.stack(hs, axis=1) if op.return_sequences else hs[-1]


RULES: dict[type, Rule] = {
    ops.Linear: lambda op, x, p, inf: x,
    ops.Sigmoid: lambda op, x, p, inf: F.sigmoid(x),
    ops.Tanh: lambda op, x, p, inf: F.tanh(x),
    ops.ReLU: lambda op, x, p, inf: F.relu(x),
    ops.LeakyReLU: lambda op, x, p, inf: F.leaky_relu(x, op.alpha),
    ops.Softmax: lambda op, x, p, inf: F.softmax(x, axis=-1),
    ops.WeightMultiply: lambda op, x, p, inf: matmul(x, p[0]),
    ops.BiasAdd: lambda op, x, p, inf: x + p[0],
    ops.ChannelBias: lambda op, x, p, inf: x + p[0],
    ops.Dropout: _dropout,
    ops.Flatten: lambda op, x, p, inf: reshape(x, (x.shape[0], -1)),
    ops.GlobalAvgPool2D: lambda op, x, p, inf: x.mean(axis=(2, 3)),
    ops.MaxPool2D: _pool,
    ops.AvgPool2D: _pool,
    ops.Conv2DOperation: _conv,
    ops.BatchNormOp: _batch_norm,
    ops.EmbeddingLookup: lambda op, x, p, inf: getitem(p[0], x.data.astype(np.int64)),
    ops.RNNOperation: _recurrent,
    ops.LSTMOperation: _recurrent,
    ops.GRUOperation: _recurrent,
}


def tensor_forward(op: Operation, x: Tensor, params: list[Tensor], inference: bool) -> Tensor:
    """`op`'s forward pass on Tensors (`params` in the order of `op.params`)."""
    if isinstance(op, TensorOperation):
        return op.compute(x, *params)
    for cls in type(op).__mro__:
        rule = RULES.get(cls)
        if rule is not None:
            return rule(op, x, params, inference)
    raise TypeError(
        f"tensor_forward: no Tensor version of {type(op).__name__}; write the operation as a "
        "TensorOperation to get one"
    )
