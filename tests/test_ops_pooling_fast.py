"""The non-overlapping pooling fast path gives the general path's values and gradients."""

import numpy as np
import pytest

from scratchdl import AvgPool2D, MaxPool2D, gradcheck


def general(op):
    op._tiles = lambda: False  # force the general windows path
    return op


@pytest.mark.parametrize("shape", [(2, 3, 6, 6), (2, 3, 7, 5), (1, 1, 2, 2), (3, 2, 9, 9)])
@pytest.mark.parametrize("kernel", [2, 3])
def test_max_pool_fast_path_equals_the_general_one_ties_included(shape, kernel, rng):
    if shape[2] < kernel or shape[3] < kernel:
        pytest.skip("image smaller than the kernel")
    x = np.maximum(rng.standard_normal(shape), 0).astype(np.float32)  # many tied zeros
    x[..., :kernel, :kernel] = 0.5  # a whole tied window
    fast, slow = MaxPool2D(kernel), general(MaxPool2D(kernel))
    g = rng.standard_normal(fast.forward(x).shape).astype(np.float32)
    assert fast._tiles()
    np.testing.assert_array_equal(fast.forward(x), slow.forward(x))
    fast.forward(x)
    np.testing.assert_array_equal(fast.backward(g), slow.backward(g))


@pytest.mark.parametrize("shape", [(2, 3, 6, 6), (2, 3, 7, 5)])
def test_avg_pool_fast_path_equals_the_general_one(shape, rng):
    x = rng.standard_normal(shape)
    fast, slow = AvgPool2D(2), general(AvgPool2D(2))
    g = rng.standard_normal(fast.forward(x).shape)
    np.testing.assert_allclose(fast.forward(x), slow.forward(x), rtol=1e-14, atol=1e-15)
    fast.forward(x)
    np.testing.assert_allclose(fast.backward(g), slow.backward(g), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("op", [MaxPool2D(2), AvgPool2D(2), MaxPool2D(3)])
def test_the_fast_path_is_gradient_checked_both_ways(op, rng):
    x = rng.permutation(2 * 2 * 6 * 6).reshape(2, 2, 6, 6) * 0.1  # distinct values
    assert op._tiles.__self__ is op and gradcheck.check_operation(op, x) < 1e-8
    assert gradcheck.check_autograd(op, x) < 1e-12


@pytest.mark.parametrize(
    ("op", "fast"),
    [(MaxPool2D(2), True), (MaxPool2D(2, stride=1), False), (MaxPool2D(2, padding=1), False),
     (AvgPool2D((2, 3), stride=2), False), (AvgPool2D(3), True)],
)  # fmt: skip
def test_the_fast_path_is_taken_only_where_windows_tile(op, fast, rng):
    op.forward(rng.standard_normal((1, 1, 6, 6)))
    assert op._tiles() is fast
