"""Define-by-run automatic differentiation: `Tensor`, the graph, `grad` and `backward`.

Every operation on a `Tensor` that requires a gradient records a `Node`: the function that
made it, its inputs, and what its backward needs. `grad(y, xs)` walks the graph from `y` in
reverse topological order — an iterative sort, so a chain of any length works — and adds up
each input's gradient over every use of it (a node used twice counts twice, once per use).

The backward rules are themselves written with Tensor operations. Under
``create_graph=False`` they run with recording off, so they cost no more than plain array
code; under ``create_graph=True`` they are recorded too, and the gradients they return can
be differentiated again (second and third derivatives, Hessian-vector products).

`Tensor.backward()` adds into the ``.grad`` of every leaf that requires a gradient (as
PyTorch does; `zero_grad` clears it). Nothing is stored on intermediate nodes, so calling it
twice adds the same gradient twice.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

__all__ = ["Node", "Tensor", "as_tensor", "grad", "is_grad_enabled", "no_grad"]

_state = threading.local()


def is_grad_enabled() -> bool:
    """Whether operations on tensors are being recorded (off inside `no_grad`)."""
    return getattr(_state, "enabled", True)


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Within this block, operations on tensors build no graph."""
    previous = is_grad_enabled()
    _state.enabled = False
    try:
        yield
    finally:
        _state.enabled = previous


@contextlib.contextmanager
def _recording(enabled: bool) -> Iterator[None]:
    previous = is_grad_enabled()
    _state.enabled = enabled
    try:
        yield
    finally:
        _state.enabled = previous


BackwardFn = Callable[["Tensor"], Sequence["Tensor | None"]]


class Node:
    """How a tensor was made: the function's name, its inputs, and the rule that maps the
    gradient of the output to the gradients of the inputs (None for an input that needs
    none). `info` is a short description for graph pictures (an axis, a shape)."""

    __slots__ = ("backward", "info", "inputs", "name")

    def __init__(
        self, name: str, inputs: Sequence[Tensor], backward: BackwardFn, info: str = ""
    ) -> None:
        self.name = name
        self.inputs = tuple(inputs)
        self.backward = backward
        self.info = info


class Tensor:
    """An array with an optional gradient.

    ``Tensor(data, requires_grad=True)`` makes a leaf whose gradient `grad` and `backward`
    compute. Arithmetic (``+ - * / ** @``, unary minus), indexing and slicing, `reshape`,
    `transpose` (``.T``), `sum`, `mean` and `max` with ``axis`` and ``keepdims`` return new
    tensors that remember how they were made; NumPy-style broadcasting works, and each
    input's gradient is summed back to its own shape. `data` is the array (float64 unless
    the array given was another floating type).
    """

    __array_priority__ = 1000  # `ndarray + Tensor` gives a Tensor
    __slots__ = ("data", "grad", "name", "node", "requires_grad")

    def __init__(self, data: Any, requires_grad: bool = False, name: str = "") -> None:
        if isinstance(data, Tensor):
            data = data.data
        array = np.asarray(data)
        if not np.issubdtype(array.dtype, np.floating):
            array = array.astype(np.float64)
        self.data: np.ndarray = array
        if not isinstance(requires_grad, (bool, np.bool_)):
            raise TypeError(
                f"Tensor: requires_grad must be True or False. Received: {requires_grad!r}"
            )
        self.requires_grad = bool(requires_grad)
        self.grad: Tensor | None = None
        self.node: Node | None = None
        self.name = name

    # ---- the graph ----
    @classmethod
    def _make(
        cls, data: np.ndarray, name: str, inputs: Sequence[Tensor], backward: BackwardFn,
        info: str = "",
    ) -> Tensor:  # fmt: skip
        out = cls(data)
        if is_grad_enabled() and any(t.requires_grad for t in inputs):
            out.requires_grad = True
            out.node = Node(name, inputs, backward, info)
        return out

    @property
    def is_leaf(self) -> bool:
        return self.node is None

    def detach(self) -> Tensor:
        """The same data, cut from the graph."""
        return Tensor(self.data)

    def zero_grad(self) -> None:
        """Forget the gradient `backward` added up."""
        self.grad = None

    def backward(self, grad_output: Any = None, create_graph: bool = False) -> None:
        """Add d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires a gradient.
        `self` must be a single value unless `grad_output` (its shape) is given."""
        leaves = [t for t in _topological(self) if t.is_leaf and t.requires_grad]
        grads = _backprop(self, leaves, grad_output, create_graph, allow_unused=True)
        for leaf, g in zip(leaves, grads, strict=True):
            if g is None:
                continue
            leaf.grad = (
                g
                if leaf.grad is None
                else (leaf.grad + g if create_graph else Tensor(leaf.grad.data + g.data))
            )

    # ---- array-like ----
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def T(self) -> Tensor:
        return self.transpose()

    def item(self) -> float:
        return self.data.item()

    def numpy(self) -> np.ndarray:
        return self.data

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        extra = ", requires_grad=True" if self.requires_grad else ""
        how = f", made by {self.node.name}" if self.node is not None else ""
        return f"Tensor({np.array2string(self.data, precision=6, threshold=20)}{extra}{how})"

    # ---- operators (the functions below) ----
    def __add__(self, other: Any) -> Tensor:
        return add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return mul(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return mul(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return div(other, self)

    def __pow__(self, other: Any) -> Tensor:
        return power(self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return power(other, self)

    def __matmul__(self, other: Any) -> Tensor:
        return matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return matmul(other, self)

    def __neg__(self) -> Tensor:
        return neg(self)

    def __pos__(self) -> Tensor:
        return self

    def __getitem__(self, index: Any) -> Tensor:
        return getitem(self, index)

    def reshape(self, *shape: Any) -> Tensor:
        return reshape(self, shape[0] if len(shape) == 1 else shape)

    def transpose(self, *axes: Any) -> Tensor:
        return transpose(self, axes[0] if len(axes) == 1 else (axes or None))

    def sum(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return sum(self, axis, keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return mean(self, axis, keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return max(self, axis, keepdims)

    def log(self) -> Tensor:
        return log(self)

    # comparisons give plain boolean arrays (they have no gradient)
    def __gt__(self, other: Any) -> np.ndarray:
        return self.data > _data(other)

    def __lt__(self, other: Any) -> np.ndarray:
        return self.data < _data(other)

    def __ge__(self, other: Any) -> np.ndarray:
        return self.data >= _data(other)

    def __le__(self, other: Any) -> np.ndarray:
        return self.data <= _data(other)

    __hash__ = object.__hash__


def _data(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


def as_tensor(x: Any) -> Tensor:
    """`x` if it is a Tensor, else a constant Tensor holding it."""
    return x if isinstance(x, Tensor) else Tensor(x)


def _topological(root: Tensor) -> list[Tensor]:
    """Every tensor `root` depends on (itself last), inputs before outputs, found without
    recursion (so a chain of 100,000 operations is fine)."""
    order: list[Tensor] = []
    seen: set[int] = {id(root)}
    stack: list[tuple[Tensor, int]] = [(root, 0)]
    while stack:
        tensor, i = stack.pop()
        inputs = tensor.node.inputs if tensor.node is not None else ()
        if i < len(inputs):
            stack.append((tensor, i + 1))
            child = inputs[i]
            if id(child) not in seen and child.requires_grad:
                seen.add(id(child))
                stack.append((child, 0))
        else:
            order.append(tensor)
    return order


def _backprop(
    y: Tensor,
    xs: Sequence[Tensor],
    grad_output: Any,
    create_graph: bool,
    allow_unused: bool,
) -> list[Tensor | None]:
    if not y.requires_grad:
        raise ValueError("grad: the output does not depend on any tensor with requires_grad=True")
    if grad_output is None:
        if y.size != 1:
            raise ValueError(
                f"grad: the output has shape {y.shape}; give grad_output of that shape, or "
                "reduce it to a single value (e.g. y.sum())"
            )
        seed = Tensor(np.ones_like(y.data))
    else:
        seed = as_tensor(grad_output)
        if seed.shape != y.shape:
            raise ValueError(
                f"grad: grad_output must have the output's shape {y.shape}, received {seed.shape}"
            )
    wanted = {id(x) for x in xs}
    grads: dict[int, Tensor] = {id(y): seed}
    with _recording(create_graph):
        for tensor in reversed(_topological(y)):
            g = grads.get(id(tensor))
            if g is None or tensor.node is None:
                continue
            if id(tensor) not in wanted:
                del grads[id(tensor)]  # intermediate gradients are not kept
            for child, child_grad in zip(tensor.node.inputs, tensor.node.backward(g), strict=True):
                if child_grad is None or not child.requires_grad:
                    continue
                previous = grads.get(id(child))
                grads[id(child)] = child_grad if previous is None else previous + child_grad
    result: list[Tensor | None] = []
    for x in xs:
        g = grads.get(id(x))
        if g is None and not allow_unused:
            raise ValueError(
                "grad: one of the inputs is not used to compute the output "
                "(pass allow_unused=True to get None for it)"
            )
        result.append(g)
    return result


def grad(
    output: Tensor,
    inputs: Tensor | Sequence[Tensor],
    grad_output: Any = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> list[Tensor | None]:
    """The gradients of `output` with respect to each of `inputs`, as a list of Tensors.

    `output` must be a single value unless `grad_output` (d(loss)/d(output), of its shape)
    is given. With ``create_graph=True`` the gradients are themselves recorded, so they can
    be differentiated again. Nothing is written into ``.grad``. An input the output does
    not depend on raises `ValueError`, or gives None with ``allow_unused=True``.
    """
    if isinstance(inputs, Tensor):
        inputs = [inputs]
    for x in inputs:
        if not isinstance(x, Tensor):
            raise TypeError(f"grad: inputs must be Tensors. Received: {type(x).__name__}")
        if not x.requires_grad:
            raise ValueError("grad: every input must have requires_grad=True")
    return _backprop(output, list(inputs), grad_output, create_graph, allow_unused)


# ---- the operations a Tensor's operators and methods use ----


def _unbroadcast(g: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Sum `g` over the axes broadcasting added or stretched, back to `shape`."""
    if g.shape == shape:
        return g
    extra = g.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        i + extra for i, n in enumerate(shape) if n == 1 and g.shape[i + extra] != 1
    )
    out = sum(g, axes, keepdims=True) if axes else g
    return reshape(out, shape)


def add(a: Any, b: Any) -> Tensor:
    """a + b, broadcasting."""
    a, b = as_tensor(a), as_tensor(b)
    return Tensor._make(
        a.data + b.data,
        "add",
        (a, b),
        lambda g: (_unbroadcast(g, a.shape), _unbroadcast(g, b.shape)),
    )


def sub(a: Any, b: Any) -> Tensor:
    """a - b, broadcasting."""
    a, b = as_tensor(a), as_tensor(b)
    return Tensor._make(
        a.data - b.data,
        "sub",
        (a, b),
        lambda g: (_unbroadcast(g, a.shape), _unbroadcast(-g, b.shape)),
    )


def mul(a: Any, b: Any) -> Tensor:
    """a * b, element-wise, broadcasting."""
    a, b = as_tensor(a), as_tensor(b)
    return Tensor._make(
        a.data * b.data, "mul", (a, b),
        lambda g: (_unbroadcast(g * b, a.shape), _unbroadcast(g * a, b.shape)),
    )  # fmt: skip


def div(a: Any, b: Any) -> Tensor:
    """a / b, element-wise, broadcasting."""
    a, b = as_tensor(a), as_tensor(b)
    return Tensor._make(
        a.data / b.data, "div", (a, b),
        lambda g: (_unbroadcast(g / b, a.shape), _unbroadcast(-g * a / (b * b), b.shape)),
    )  # fmt: skip


def neg(a: Any) -> Tensor:
    """-a."""
    a = as_tensor(a)
    return Tensor._make(-a.data, "neg", (a,), lambda g: (-g,))


def power(a: Any, b: Any) -> Tensor:
    """a ** b. A constant exponent gives b·a^(b-1); a tensor exponent also a^b·log(a)."""
    a, b = as_tensor(a), as_tensor(b)
    out = Tensor._make(a.data**b.data, "pow", (a, b), lambda g: _power_backward(g, a, b, out))
    return out


def _power_backward(g: Tensor, a: Tensor, b: Tensor, out: Tensor) -> tuple:
    ga = _unbroadcast(g * b * a ** (b - 1), a.shape) if a.requires_grad else None
    gb = _unbroadcast(g * out * log(a), b.shape) if b.requires_grad else None
    return ga, gb


def log(a: Any) -> Tensor:
    """Natural logarithm, element-wise."""
    a = as_tensor(a)
    return Tensor._make(np.log(a.data), "log", (a,), lambda g: (g / a,))


def matmul(a: Any, b: Any) -> Tensor:
    """a @ b for 2-D (or batched N-D) tensors; leading batch axes broadcast."""
    a, b = as_tensor(a), as_tensor(b)
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError(
            f"matmul: both operands need at least 2 dimensions, received {a.shape} and {b.shape}"
        )
    return Tensor._make(
        a.data @ b.data, "matmul", (a, b),
        lambda g: (_unbroadcast(g @ swapaxes(b), a.shape), _unbroadcast(swapaxes(a) @ g, b.shape)),
        info=f"{a.shape} @ {b.shape}",
    )  # fmt: skip


def swapaxes(a: Tensor) -> Tensor:
    """`a` with its last two axes swapped."""
    axes = list(range(a.ndim))
    axes[-1], axes[-2] = axes[-2], axes[-1]
    return transpose(a, tuple(axes))


def reshape(a: Any, shape: Any) -> Tensor:
    """`a` with another shape (same number of elements)."""
    a = as_tensor(a)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    return Tensor._make(
        a.data.reshape(shape), "reshape", (a,), lambda g: (reshape(g, a.shape),), info=str(shape)
    )


def transpose(a: Any, axes: Any = None) -> Tensor:
    """`a` with its axes permuted (reversed when `axes` is None)."""
    a = as_tensor(a)
    order = tuple(range(a.ndim))[::-1] if axes is None else tuple(axes)
    inverse = tuple(np.argsort(order))
    return Tensor._make(
        np.transpose(a.data, order), "transpose", (a,), lambda g: (transpose(g, inverse),)
    )


def getitem(a: Any, index: Any) -> Tensor:
    """a[index]: basic and integer-array indexing; the gradient of an element used several
    times (repeated indices) is the sum over its uses."""
    a = as_tensor(a)
    if isinstance(index, Tensor):
        index = index.data
    return Tensor._make(a.data[index], "getitem", (a,), lambda g: (_scatter(g, a.shape, index),))


def _scatter(g: Tensor, shape: tuple[int, ...], index: Any) -> Tensor:
    """The adjoint of a[index]: g added into zeros of `shape` at `index`, as a Tensor."""
    return Tensor._make(
        _scatter_array(g.data, shape, index), "scatter", (g,), lambda h: (getitem(h, index),)
    )


def _scatter_array(g: np.ndarray, shape: tuple[int, ...], index: Any) -> np.ndarray:
    out = np.zeros(shape, dtype=g.dtype)
    np.add.at(out, index, g)
    return out


def _axes(axis: Any, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return tuple(int(x) % ndim for x in axes)


def _expand(g: Tensor, shape: tuple[int, ...], axes: tuple[int, ...], keepdims: bool) -> Tensor:
    """A reduction's gradient `g` broadcast back to the input's `shape`."""
    if not keepdims:
        kept = list(g.shape)
        for ax in sorted(axes):
            kept.insert(ax, 1)
        g = reshape(g, tuple(kept))
    return broadcast_to(g, shape)


def broadcast_to(a: Any, shape: tuple[int, ...]) -> Tensor:
    """`a` repeated along axes of length 1 (and new leading axes) to `shape`."""
    a = as_tensor(a)
    return Tensor._make(
        np.broadcast_to(a.data, shape).copy(),
        "broadcast",
        (a,),
        lambda g: (_unbroadcast(g, a.shape),),
    )


def sum(a: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """The sum over `axis` (all axes when None)."""
    a = as_tensor(a)
    axes = _axes(axis, a.ndim)
    return Tensor._make(
        np.sum(a.data, axis=axes, keepdims=keepdims), "sum", (a,),
        lambda g: (_expand(g, a.shape, axes, keepdims),), info=f"axis={axis}",
    )  # fmt: skip


def mean(a: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """The mean over `axis` (all axes when None)."""
    a = as_tensor(a)
    axes = _axes(axis, a.ndim)
    count = int(np.prod([a.shape[i] for i in axes])) if axes else 1
    return sum(a, axis, keepdims) / count


def max(a: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """The largest value over `axis`. The gradient is shared equally by the elements that
    tie for the maximum (the subgradient that keeps ``max`` symmetric)."""
    a = as_tensor(a)
    axes = _axes(axis, a.ndim)
    out_data = np.max(a.data, axis=axes, keepdims=True)
    mask = (a.data == out_data).astype(a.dtype)
    mask /= mask.sum(axis=axes, keepdims=True)
    result = out_data if keepdims else np.squeeze(out_data, axis=axes)
    return Tensor._make(
        result, "max", (a,), lambda g: (_expand(g, a.shape, axes, keepdims) * mask,),
        info=f"axis={axis}",
    )  # fmt: skip
