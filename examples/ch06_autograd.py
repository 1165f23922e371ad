"""Chapter 6 of the book: automatic differentiation, done right, and a second derivative put
to work.

1. The book builds autograd by hand (`NumberWithGrad`): each number passes its gradient on
   as soon as it receives one, and passes on all it has gathered so far. A number used
   twice therefore sends its first share twice. Restated below as `BookNumber`, it gets
   d(4a²)/da at a = 3 wrong when 4a² is written (2a)·(2a): 36, where the answer is 24.
   `scratchdl.autograd` sorts the graph first and sends each gradient once, after all of
   it has arrived.

2. A second derivative, used for something real: the curvature of a network's loss along
   the gradient, gᵀHg, by a Hessian-vector product (double backward). It gives the step
   size that minimises the loss's quadratic model along the gradient, lr* = gᵀg / gᵀHg.
   The script checks Hg against a difference of gradients, then compares lr* with a line
   search on the true loss.

    python examples/ch06_autograd.py
"""

from __future__ import annotations

import numpy as np

from scratchdl import autograd
from scratchdl.autograd import Tensor, grad


class BookNumber:
    """The book's scheme, restated: on every call, add the incoming gradient and pass the
    whole running total to the inputs at once (before the other uses have reported)."""

    def __init__(self, value: float, inputs: tuple = (), op: str = "") -> None:
        self.value, self.inputs, self.op, self.grad = value, inputs, op, 0.0

    def __add__(self, other: BookNumber) -> BookNumber:
        return BookNumber(self.value + other.value, (self, other), "add")

    def __mul__(self, other: BookNumber | float) -> BookNumber:
        other = other if isinstance(other, BookNumber) else BookNumber(other)
        return BookNumber(self.value * other.value, (self, other), "mul")

    def backward(self, incoming: float = 1.0) -> None:
        self.grad += incoming
        if self.op == "add":
            for x in self.inputs:
                x.backward(self.grad)
        elif self.op == "mul":
            a, b = self.inputs
            a.backward(b.value * self.grad)
            b.backward(a.value * self.grad)


def part_1() -> None:
    print("1. d(4a²)/da at a = 3, with 4a² written as (2a)·(2a); the answer is 8a = 24")
    a = BookNumber(3.0)
    b = a * 2.0
    (b * b).backward()
    print(
        f"   the book's scheme:  {a.grad:g}   (b = 2a is used twice; its first share is sent twice)"
    )
    t = Tensor(3.0, requires_grad=True)
    u = t * 2.0
    (dt,) = grad(u * u, [t])
    print(f"   scratchdl.autograd: {dt.item():g}")


def part_2(seed: int = 0) -> None:
    print("2. the curvature of a network's loss along its gradient, by double backward")
    rng = np.random.default_rng(seed)
    n, d, h, k = 200, 4, 16, 3
    X = rng.standard_normal((n, d))
    labels = (X[:, 0] > 0).astype(int) + (X[:, 1] > X[:, 2]).astype(int)
    shapes = [(d, h), (1, h), (h, k), (1, k)]
    theta = [rng.standard_normal(s) * 0.5 for s in shapes]

    def loss_of(params: list[Tensor]) -> Tensor:
        w1, b1, w2, b2 = params
        logits = autograd.tanh(Tensor(X) @ w1 + b1) @ w2 + b2
        return -autograd.log_softmax(logits)[np.arange(n), labels].mean()

    def loss_value(arrays: list[np.ndarray]) -> float:
        with autograd.no_grad():
            return loss_of([Tensor(a) for a in arrays]).item()

    params = [Tensor(a, requires_grad=True) for a in theta]
    grads = grad(loss_of(params), params, create_graph=True)
    g = [x.data for x in grads]
    # H·g: differentiate g·v with v held constant, where v = g
    gv = sum(((x * v).sum() for x, v in zip(grads, g, strict=True)), Tensor(0.0))
    hg = [x.data for x in grad(gv, params)]

    eps = 1e-5

    def gradient(arrays: list[np.ndarray]) -> list[np.ndarray]:
        ps = [Tensor(a, requires_grad=True) for a in arrays]
        return [x.data for x in grad(loss_of(ps), ps)]

    plus = gradient([t + eps * v for t, v in zip(theta, g, strict=True)])
    minus = gradient([t - eps * v for t, v in zip(theta, g, strict=True)])
    numeric = [(p - m) / (2 * eps) for p, m in zip(plus, minus, strict=True)]
    error = max(
        float(np.max(np.abs(a - b)) / np.max(np.abs(b))) for a, b in zip(hg, numeric, strict=True)
    )
    gg = sum(float(np.sum(x * x)) for x in g)
    ghg = sum(float(np.sum(x * y)) for x, y in zip(g, hg, strict=True))
    print(f"   H·g against a difference of gradients: largest relative difference {error:.1e}")
    print(f"   loss {loss_value(theta):.4f}; |g|² = {gg:.4f}; curvature gᵀHg = {ghg:.4f}")
    best_lr = gg / ghg
    print(f"   step that minimises the quadratic model along -g: lr* = gᵀg / gᵀHg = {best_lr:.3f}")
    grid = np.linspace(0.05, 3 * best_lr, 120)
    losses = [loss_value([t - lr * v for t, v in zip(theta, g, strict=True)]) for lr in grid]
    best = int(np.argmin(losses))
    print(f"   a line search on the true loss finds its minimum at lr = {grid[best]:.3f} "
          f"(loss {losses[best]:.4f}); at lr* the loss is "
          f"{loss_value([t - best_lr * v for t, v in zip(theta, g, strict=True)]):.4f}")  # fmt: skip


if __name__ == "__main__":
    part_1()
    part_2()
