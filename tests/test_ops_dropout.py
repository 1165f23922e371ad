import numpy as np
import pytest

from scratchdl import Dropout, gradcheck


def test_dropout_statistics():
    op = Dropout(0.8, rng=np.random.default_rng(0))
    x = np.ones((400, 500), dtype=np.float32)
    out = op.forward(x)
    assert out.dtype == np.float32
    kept = out != 0
    assert abs(kept.mean() - 0.8) < 0.005  # 200k draws: std of the mean is ~0.0009
    np.testing.assert_allclose(out[kept], 1 / 0.8, rtol=1e-6)
    assert abs(out.mean() - 1.0) < 0.01  # inverted dropout keeps the expectation


def test_dropout_is_identity_at_inference(rng):
    op = Dropout(0.5, rng=np.random.default_rng(0))
    x = rng.standard_normal((10, 10))
    assert op.forward(x, inference=True) is x
    g = rng.standard_normal((10, 10))
    assert op.backward(g) is g


def test_dropout_gradient_uses_the_same_mask(rng):
    op = Dropout(0.6, rng=np.random.default_rng(1))
    x = rng.standard_normal((6, 5))
    out = op.forward(x)
    g = rng.standard_normal((6, 5))
    np.testing.assert_array_equal(op.backward(g) == 0, out == 0)
    assert gradcheck.check_operation(Dropout(0.6, rng=np.random.default_rng(1)), x) < 1e-7


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5])
def test_dropout_rejects_bad_keep_prob(bad):
    with pytest.raises(ValueError, match=f"Received: keep_prob={bad}"):
        Dropout(bad)
