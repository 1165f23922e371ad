import warnings

import numpy as np
import pytest

from scratchdl import LeakyReLU, Linear, Operation, ReLU, Sigmoid, Softmax, Tanh, gradcheck
from tests.conftest import away_from_zero

ACTIVATIONS = [Sigmoid, Tanh, ReLU, LeakyReLU, Linear, Softmax]


@pytest.mark.parametrize("cls", ACTIVATIONS)
def test_activation_gradients(cls, rng):
    x = away_from_zero(rng.standard_normal((5, 7)) * 2)
    assert (x > 0).any() and (x < 0).any()
    assert gradcheck.check_operation(cls(), x) < 1e-7


@pytest.mark.parametrize("cls", ACTIVATIONS)
def test_activation_gradients_3d(cls, rng):
    x = away_from_zero(rng.standard_normal((2, 3, 4)))
    assert gradcheck.check_operation(cls(), x) < 1e-7


@pytest.mark.parametrize(
    ("cls", "formula"),
    [
        (Sigmoid, lambda x: 1 / (1 + np.exp(-x))),
        (Tanh, np.tanh),
        (ReLU, lambda x: np.maximum(x, 0)),
        (LeakyReLU, lambda x: np.where(x > 0, x, 0.01 * x)),
        (Linear, lambda x: x),
        (Softmax, lambda x: np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)),
    ],
)
def test_activation_values(cls, formula, rng):
    x = rng.standard_normal((4, 6))
    np.testing.assert_allclose(cls().forward(x), formula(x), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("cls", ACTIVATIONS)
def test_activation_keeps_float32(cls, rng):
    x = rng.standard_normal((4, 6)).astype(np.float32)
    op = cls()
    assert op.forward(x).dtype == np.float32
    assert op.backward(np.ones((4, 6), np.float32)).dtype == np.float32


class BookReLU(Operation):
    """The book's ReLU: clips, then masks with output >= 0, which is always true."""

    def _output(self, inference):
        return np.clip(self.input_, 0, None)

    def _input_grad(self, output_grad):
        return output_grad * (self.output >= 0)


def test_gradcheck_catches_the_books_relu_mask(rng):
    x = away_from_zero(rng.standard_normal((5, 7)))
    result = gradcheck.check_operation(BookReLU(), x)
    assert result > 0.5
    assert result.tensor == "input"
    assert x[result.index] < 0  # the wrong gradient is where the input is negative


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_into_a_strided_out_gives_the_same_bits(dtype, rng):
    from scratchdl.ops.activations import sigmoid

    x = (rng.standard_normal((4, 6)) * 30).astype(dtype)
    out = np.full((4, 3, 6), np.nan, dtype=dtype)
    result = sigmoid(x, out=out[:, 1, :])
    assert np.shares_memory(result, out)
    np.testing.assert_array_equal(out[:, 1, :], sigmoid(x))
    assert np.isnan(out[:, 0, :]).all() and np.isnan(out[:, 2, :]).all()
    assert sigmoid(x).dtype == dtype


def test_sigmoid_is_stable_at_extremes():
    for dtype in (np.float32, np.float64):
        x = np.array([[-1000.0, -100.0, 0.0, 100.0, 1000.0]], dtype=dtype)
        with np.errstate(all="raise"), warnings.catch_warnings():
            warnings.simplefilter("error")
            op = Sigmoid()
            out = op.forward(x)
            grad = op.backward(np.ones_like(x))
        assert np.all(np.isfinite(out)) and np.all(np.isfinite(grad))
        assert out[0, 0] < 1e-25 and out[0, -1] == 1.0 and out[0, 2] == 0.5


def test_softmax_is_stable_and_sums_to_one():
    x = np.array([[1e4, -1e4, 0.0], [5.0, 5.0, 5.0]], dtype=np.float32)
    with np.errstate(all="raise"):
        out = Softmax().forward(x)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(out[1], 1 / 3, rtol=1e-6)


def test_leaky_relu_rejects_bad_alpha():
    with pytest.raises(ValueError, match=r"Received: alpha=1\.5"):
        LeakyReLU(alpha=1.5)
