import numpy as np
import pytest

from scratchdl import BiasAdd, ShapeError, WeightMultiply, gradcheck


@pytest.mark.parametrize("shape", [(4, 3), (2, 5, 3)])
def test_weight_multiply_gradients(shape, rng):
    op = WeightMultiply(rng.standard_normal((3, 6)))
    assert gradcheck.check_operation(op, rng.standard_normal(shape)) < 1e-7


@pytest.mark.parametrize("shape", [(4, 6), (2, 5, 6)])
def test_bias_add_gradients(shape, rng):
    op = BiasAdd(rng.standard_normal((1, 6)))
    assert gradcheck.check_operation(op, rng.standard_normal(shape)) < 1e-7


def test_weight_multiply_value_and_param_grad(rng):
    w = rng.standard_normal((3, 2))
    x = rng.standard_normal((4, 3))
    op = WeightMultiply(w)
    np.testing.assert_allclose(op.forward(x), x @ w)
    g = rng.standard_normal((4, 2))
    np.testing.assert_allclose(op.backward(g), g @ w.T)
    np.testing.assert_allclose(op.param_grad, x.T @ g)


def test_weight_multiply_shape_error(rng):
    op = WeightMultiply(rng.standard_normal((4, 2)))
    with pytest.raises(
        ShapeError,
        match=r"WeightMultiply: input must have shape \(batch, \.\.\., 4\), received \(3, 5\)",
    ):
        op.forward(rng.standard_normal((3, 5)))


def test_bias_must_be_a_row():
    with pytest.raises(ShapeError, match=r"bias must have shape \(1, features\), received \(3,\)"):
        BiasAdd(np.zeros(3))


def test_dense_ops_keep_float32(rng):
    x = rng.standard_normal((4, 3)).astype(np.float32)
    w = WeightMultiply(rng.standard_normal((3, 2)).astype(np.float32))
    b = BiasAdd(np.zeros((1, 2), np.float32))
    out = b.forward(w.forward(x))
    assert out.dtype == np.float32
    g = np.ones_like(out)
    assert w.backward(b.backward(g)).dtype == np.float32
    assert w.param_grad.dtype == np.float32 and b.param_grad.dtype == np.float32
