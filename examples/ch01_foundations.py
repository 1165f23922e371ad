"""Chapter 1 of the book: derivatives, checked numerically, and the chain rule.

python examples/ch01_foundations.py
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Array_Function = Callable[[np.ndarray], np.ndarray]


def deriv(func: Array_Function, x: np.ndarray, delta: float = 1e-5) -> np.ndarray:
    """The book's numerical derivative: a central difference."""
    return (func(x + delta) - func(x - delta)) / (2 * delta)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def square(x: np.ndarray) -> np.ndarray:
    return x * x


def chain_deriv_2(f1: Array_Function, f2: Array_Function, x: np.ndarray) -> np.ndarray:
    """d/dx f2(f1(x)) = f2'(f1(x)) * f1'(x), by the chain rule."""
    return deriv(f2, f1(x)) * deriv(f1, x)


def chain_deriv_3(
    f1: Array_Function, f2: Array_Function, f3: Array_Function, x: np.ndarray
) -> np.ndarray:
    """d/dx f3(f2(f1(x))) = f3'(f2(f1(x))) * f2'(f1(x)) * f1'(x)."""
    f1_x = f1(x)
    return deriv(f3, f2(f1_x)) * deriv(f2, f1_x) * deriv(f1, x)


def main() -> None:
    x = np.linspace(-3, 3, 13)
    # a numerical derivative against the analytic one: d/dx sigmoid = s(1 - s)
    numeric = deriv(sigmoid, x)
    analytic = sigmoid(x) * (1 - sigmoid(x))
    print(
        f"sigmoid' numeric vs analytic: max abs difference {np.max(np.abs(numeric - analytic)):.2e}"
    )

    # the chain rule against differentiating the composition directly
    composed = deriv(lambda v: sigmoid(square(v)), x)
    chained = chain_deriv_2(square, sigmoid, x)
    exact = sigmoid(x * x) * (1 - sigmoid(x * x)) * 2 * x
    print(
        f"chain rule, 2 functions: vs composition {np.max(np.abs(composed - chained)):.2e}, vs exact {np.max(np.abs(chained - exact)):.2e}"
    )

    relu = lambda v: np.maximum(v, 0.2 * v)  # noqa: E731 - a leaky ReLU, smooth away from 0
    chained3 = chain_deriv_3(relu, square, sigmoid, x + 0.1)
    composed3 = deriv(lambda v: sigmoid(square(relu(v))), x + 0.1)
    print(f"chain rule, 3 functions: vs composition {np.max(np.abs(composed3 - chained3)):.2e}")

    # a function of two inputs: f(x, W) = sigmoid(x @ W) summed; dL/dx = (s(1-s)) @ W.T
    rng = np.random.default_rng(0)
    X, W = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    S = sigmoid(X @ W)
    analytic_dx = (S * (1 - S)) @ W.T
    numeric_dx = np.zeros_like(X)
    for idx in np.ndindex(X.shape):
        Xp, Xm = X.copy(), X.copy()
        Xp[idx] += 1e-5
        Xm[idx] -= 1e-5
        numeric_dx[idx] = (sigmoid(Xp @ W).sum() - sigmoid(Xm @ W).sum()) / 2e-5
    print(
        f"matrix chain rule dL/dX: max abs difference {np.max(np.abs(analytic_dx - numeric_dx)):.2e}"
    )


if __name__ == "__main__":
    main()
