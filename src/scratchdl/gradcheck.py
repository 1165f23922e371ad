"""Numerical gradient checks: compare back-propagation with central differences.

Each check runs in float64, perturbs every element of the input and of every parameter
by ±eps and ±2·eps, and compares the five-point central difference
(-f(x+2e) + 8f(x+e) - 8f(x-e) + f(x-2e)) / 12e with the analytic gradient, where f
is the sum of the output times a random output gradient (so every output element
matters with a different weight), or the loss itself for losses and networks.

Each returns a `GradCheckResult`: a float, the largest relative error over all
elements, that also names the tensor and index where it occurred::

    from scratchdl import gradcheck, Tanh
    assert gradcheck.check_operation(Tanh(), x) < 1e-7

Relative error of one element: ``|a - n| / max(|a|, |n|, 1e-3·s, 1e-6·S)``, where s is the
largest numeric gradient in the same tensor and S the largest in any tensor checked; the
floor keeps elements whose gradient is (almost) zero from dividing rounding noise (about
1e-12 here) by nothing.

Random operations (dropout) are checked with their masks fixed: the state of every
generator the object uses is restored before each evaluation, and so is any state a
forward pass changes (`Operation.snapshot`: a stateful RNN's carried state).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from scratchdl.autograd.reference import tensor_forward
from scratchdl.autograd.tensor import Tensor, grad
from scratchdl.core import Operation
from scratchdl.layers.base import Layer
from scratchdl.losses import Loss
from scratchdl.network import NeuralNetwork

__all__ = [
    "GradCheckResult",
    "check_autograd",
    "check_layer",
    "check_loss",
    "check_network",
    "check_operation",
]


class GradCheckResult(float):
    """The largest relative error (a float), with `tensor`, `index`, `analytic` and
    `numeric` describing the element where it occurred, and `errors` per tensor."""

    tensor: str
    index: tuple[int, ...]
    analytic: float
    numeric: float
    errors: dict[str, float]

    def __new__(
        cls,
        error: float,
        tensor: str = "",
        index: tuple[int, ...] = (),
        analytic: float = 0.0,
        numeric: float = 0.0,
        errors: dict[str, float] | None = None,
    ) -> GradCheckResult:
        result = super().__new__(cls, error)
        result.tensor, result.index = tensor, index
        result.analytic, result.numeric = analytic, numeric
        result.errors = dict(errors or {})
        return result

    def __repr__(self) -> str:
        return (
            f"GradCheckResult(max_rel_error={float(self):.3g}, worst: {self.tensor}{list(self.index)} "
            f"analytic={self.analytic:.9g} numeric={self.numeric:.9g}, per tensor: "
            + ", ".join(f"{k}={v:.2g}" for k, v in self.errors.items())
            + ")"
        )


def check_operation(
    op: Operation,
    x: np.ndarray,
    output_grad: np.ndarray | None = None,
    eps: float = 1e-4,
    inference: bool = False,
    seed: int = 0,
    check_input: bool = True,
) -> GradCheckResult:
    """Check `op`'s input gradient and parameter gradients at input `x`.

    ``check_input=False`` skips the input (for inputs that are not differentiable, such as
    the token ids of an embedding)."""
    x = _float64("check_operation", x)
    return _check_step(op, [op], x, output_grad, eps, inference, seed, check_input)


def check_layer(
    layer: Layer,
    x: np.ndarray,
    output_grad: np.ndarray | None = None,
    eps: float = 1e-4,
    inference: bool = False,
    seed: int = 0,
    check_input: bool = True,
) -> GradCheckResult:
    """Check a layer's input gradient and `param_grads` at input `x` (float64).

    ``check_input=False`` skips the input, as for `check_operation`.

    A layer that is not set up yet is set up from `x`, so its parameters are float64.
    """
    x = _float64("check_layer", x)
    if layer.first:
        layer.forward(x, inference=True)
    return _check_step(
        layer, [layer, *layer.operations], x, output_grad, eps, inference, seed, check_input
    )


def _check_step(
    step: Operation | Layer,
    stateful: list[object],
    x: np.ndarray,
    output_grad: np.ndarray | None,
    eps: float,
    inference: bool,
    seed: int,
    check_input: bool,
) -> GradCheckResult:
    """The check shared by operations and layers: f(x, params) = sum(forward(x) * g)."""
    _require_float64_params(
        f"check_{'layer' if isinstance(step, Layer) else 'operation'}", step.params
    )
    restore = _rewinder(stateful)
    restore()
    out = step.forward(x, inference)
    rng = np.random.default_rng(seed)
    g = (
        rng.standard_normal(out.shape)
        if output_grad is None
        else np.asarray(output_grad, np.float64)
    )

    def f() -> float:
        restore()
        return float(np.sum(step.forward(x, inference) * g))

    restore()
    step.forward(x, inference)
    analytic = {"input": step.backward(g).copy()}
    analytic.update({f"param[{i}]": grad.copy() for i, grad in enumerate(step.param_grads)})
    arrays = {"input": x} | {f"param[{i}]": p for i, p in enumerate(step.params)}
    return _compare(f, arrays, analytic, eps, check_input)


def check_loss(
    loss: Loss, prediction: np.ndarray, target: np.ndarray, eps: float = 1e-4
) -> GradCheckResult:
    """Check that `loss.backward()` is the derivative of the value `loss.forward` returns."""
    prediction = _float64("check_loss", prediction)

    def f() -> float:
        return loss.forward(prediction, target)

    f()
    analytic = {"prediction": loss.backward().copy()}
    return _compare(f, {"prediction": prediction}, analytic, eps)


def check_network(
    net: NeuralNetwork,
    x: np.ndarray,
    y: np.ndarray,
    eps: float = 1e-4,
    inference: bool = False,
    check_input: bool = True,
) -> GradCheckResult:
    """Check the gradient of the network's loss with respect to its input and every parameter.

    The network must have ``dtype=np.float64``.
    """
    if net.dtype != np.float64:
        raise ValueError(
            f"check_network: the network must be float64 for a meaningful check. Received: dtype={net.dtype}"
        )
    x = _float64("check_network", x)
    if not net.built:
        net.forward(x, inference=True)
    generators = [net, *net.layers, *(op for layer in net.layers for op in layer.operations)]
    restore = _rewinder(generators)

    def f() -> float:
        restore()
        return net.loss.forward(net.forward(x, inference), y)

    f()
    analytic = {"input": net.backward(net.loss.backward()).copy()}
    params = list(net.params())
    analytic.update({f"param[{i}]": g.copy() for i, g in enumerate(net.param_grads())})
    arrays = {"input": x} | {f"param[{i}]": p for i, p in enumerate(params)}
    return _compare(f, arrays, analytic, eps, check_input)


def check_autograd(
    op: Operation,
    x: np.ndarray,
    output_grad: np.ndarray | None = None,
    inference: bool = False,
    seed: int = 0,
    check_input: bool = True,
) -> GradCheckResult:
    """Compare `op`'s hand-written backward with autograd's on its Tensor version
    (`scratchdl.autograd.reference`), in float64: the largest relative error over the input
    gradient, every parameter gradient and the forward value itself (``"output"``).

    The two routes differentiate the same function: the Tensor version takes the dropout
    mask and initial state the operation's forward just used. No finite differences are
    involved, so the agreement is to rounding (about 1e-15 relative), not to 1e-7.
    """
    x = _float64("check_autograd", x)
    _require_float64_params("check_autograd", op.params)
    restore = _rewinder([op])
    restore()
    before = op.snapshot()
    out = op.forward(x, inference)
    g = (
        np.random.default_rng(seed).standard_normal(out.shape)
        if output_grad is None
        else np.asarray(output_grad, np.float64)
    )
    analytic = {"input": op.backward(g).copy()}
    analytic.update({f"param[{i}]": p.copy() for i, p in enumerate(op.param_grads)})
    after = op.snapshot()
    op.restore(before)  # batch-norm statistics as the forward saw them
    xt = Tensor(x, requires_grad=True)
    params = [Tensor(p, requires_grad=True) for p in op.params]
    out_t = tensor_forward(op, xt, params, inference)
    op.restore(after)
    found = grad(out_t, [xt, *params], grad_output=g, allow_unused=True)
    reference = {
        "output": out_t.data,
        "input": np.zeros_like(x) if found[0] is None else found[0].data,
    }
    reference.update(
        {
            f"param[{i}]": np.zeros_like(p) if f is None else f.data
            for i, (p, f) in enumerate(zip(op.params, found[1:], strict=True))
        }
    )
    analytic["output"] = out
    if not check_input:
        del analytic["input"], reference["input"]
    return _relative_errors(analytic, reference)


def _relative_errors(
    analytic: dict[str, np.ndarray], reference: dict[str, np.ndarray]
) -> GradCheckResult:
    """The worst relative error between two sets of named arrays (the floor as `_compare`)."""
    overall = max((float(np.max(np.abs(r), initial=0.0)) for r in reference.values()), default=0.0)
    worst = GradCheckResult(0.0)
    errors: dict[str, float] = {}
    for name, ref in reference.items():
        a = np.asarray(analytic[name], dtype=np.float64)
        if a.shape != ref.shape:
            raise ValueError(f"gradcheck: {name} has shape {a.shape}, expected {ref.shape}")
        if ref.size == 0:
            continue
        floor = max(1e-3 * float(np.max(np.abs(ref), initial=0.0)), 1e-6 * overall, 1e-300)
        rel = np.abs(a - ref) / np.maximum(np.maximum(np.abs(a), np.abs(ref)), floor)
        index = np.unravel_index(int(np.argmax(rel)), rel.shape)
        errors[name] = float(rel[index])
        if errors[name] >= worst or not np.isfinite(errors[name]):
            worst = GradCheckResult(errors[name], name, tuple(int(i) for i in index),
                                    float(a[index]), float(ref[index]))  # fmt: skip
    worst.errors = errors
    return worst


def _compare(
    f: Callable[[], float],
    arrays: dict[str, np.ndarray],
    analytic: dict[str, np.ndarray],
    eps: float,
    check_input: bool = True,
) -> GradCheckResult:
    numerics = {
        name: _numeric_gradient(f, array, eps)
        for name, array in arrays.items()
        if name != "input" or check_input
    }
    overall = max((float(np.max(np.abs(n), initial=0.0)) for n in numerics.values()), default=0.0)
    worst = GradCheckResult(0.0)
    errors: dict[str, float] = {}
    for name, numeric in numerics.items():
        a = analytic[name]
        if a.shape != numeric.shape:
            raise ValueError(
                f"gradcheck: analytic gradient of {name} has shape {a.shape}, expected {numeric.shape}"
            )
        floor = max(1e-3 * float(np.max(np.abs(numeric), initial=0.0)), 1e-6 * overall, 1e-12)
        rel = np.abs(a - numeric) / np.maximum(np.maximum(np.abs(a), np.abs(numeric)), floor)
        if rel.size == 0:
            continue
        index = np.unravel_index(int(np.argmax(rel)), rel.shape)
        errors[name] = float(rel[index])
        if errors[name] >= worst or not np.isfinite(errors[name]):
            worst = GradCheckResult(
                errors[name],
                name,
                tuple(int(i) for i in index),
                float(a[index]),
                float(numeric[index]),
            )
    worst.errors = errors
    return worst


def _numeric_gradient(f: Callable[[], float], array: np.ndarray, eps: float) -> np.ndarray:
    """Five-point central differences: error O(eps⁴) from truncation, O(1e-16/eps) from rounding."""
    grad = np.zeros(array.shape, dtype=np.float64)
    for index in np.ndindex(array.shape):
        original = array[index]
        values = []
        for step in (2.0, 1.0, -1.0, -2.0):
            array[index] = original + step * eps
            values.append(f())
        array[index] = original
        f2, f1, m1, m2 = values
        grad[index] = (-f2 + 8.0 * f1 - 8.0 * m1 + m2) / (12.0 * eps)
    return grad


def _float64(where: str, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{where}: input must be a floating array. Received dtype {x.dtype}")
    return x.astype(np.float64, copy=True)


def _require_float64_params(where: str, params: list[np.ndarray]) -> None:
    for i, p in enumerate(params):
        if p.dtype != np.float64:
            raise ValueError(
                f"{where}: parameter {i} is {p.dtype}; gradient checks need float64 parameters"
            )


def _rewinder(objects: list[object]) -> Callable[[], None]:
    """A function that puts every generator the objects use, and every operation's
    forward-changed state (`Operation.snapshot`), back as they are now."""
    states: dict[int, tuple[np.random.Generator, dict]] = {}
    snapshots: list[tuple[Operation, object]] = []
    for obj in objects:
        gen = getattr(obj, "rng", None)
        if isinstance(gen, np.random.Generator):
            states[id(gen)] = (gen, gen.bit_generator.state)
        if isinstance(obj, Operation):
            snapshots.append((obj, obj.snapshot()))

    def restore() -> None:
        for gen, state in states.values():
            gen.bit_generator.state = state
        for op, snap in snapshots:
            op.restore(snap)

    return restore
