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


def test_book_dropout_masks_without_scaling_and_scales_at_inference(rng):
    op = Dropout(0.8, inverted=False, rng=np.random.default_rng(0))
    x = np.ones((400, 500), dtype=np.float32)
    out = op.forward(x)
    assert out.dtype == np.float32
    kept = out != 0
    assert abs(kept.mean() - 0.8) < 0.005
    np.testing.assert_array_equal(out[kept], 1.0)  # kept values are not rescaled
    g = rng.standard_normal(x.shape).astype(np.float32)
    np.testing.assert_array_equal(op.backward(g), g * kept)
    x = rng.standard_normal((10, 10))
    np.testing.assert_allclose(op.forward(x, inference=True), 0.8 * x)
    np.testing.assert_allclose(op.backward(g[:10, :10]), 0.8 * g[:10, :10])


@pytest.mark.parametrize("inference", [False, True])
def test_book_dropout_gradients(rng, inference):
    x = rng.standard_normal((6, 5))
    op = Dropout(0.6, inverted=False, rng=np.random.default_rng(1))
    assert gradcheck.check_operation(op, x, inference=inference) < 1e-7


def test_book_dropout_has_the_inverted_forms_expectation_at_inference(rng):
    x = rng.standard_normal((3, 4))
    book = Dropout(0.7, inverted=False, rng=np.random.default_rng(1))
    inverted = Dropout(
        0.7, rng=np.random.default_rng(2)
    )  # seeded: a statistical test must not flake
    train_means = [
        np.mean([op.forward(x).copy() for _ in range(4000)], axis=0) for op in (book, inverted)
    ]
    # in training the inverted form is 1 / keep_prob times the book's form, on average
    np.testing.assert_allclose(train_means[1] * 0.7, train_means[0], atol=0.05)
    np.testing.assert_allclose(train_means[0], book.forward(x, inference=True), atol=0.05)
    np.testing.assert_allclose(train_means[1], inverted.forward(x, inference=True), atol=0.07)


def test_dropout_rejects_a_non_boolean_inverted():
    with pytest.raises(TypeError, match="Received: inverted='no'"):
        Dropout(0.5, inverted="no")
