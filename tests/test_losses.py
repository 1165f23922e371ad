import warnings

import numpy as np
import pytest

from scratchdl import MeanSquaredError, ShapeError, SoftmaxCrossEntropy, gradcheck


def test_mse_value_matches_the_seed(rng):
    p, t = rng.standard_normal((5, 2)), rng.standard_normal((5, 2))
    assert MeanSquaredError().forward(p, t) == pytest.approx(np.sum((p - t) ** 2) / 5, rel=1e-12)


@pytest.mark.parametrize("normalize", [False, True])
def test_mse_gradient_matches_its_value(normalize, rng):
    p = rng.uniform(0.1, 1.0, (5, 4))  # positive rows, as sigmoid outputs
    t = np.eye(4)[rng.integers(0, 4, 5)]
    assert gradcheck.check_loss(MeanSquaredError(normalize=normalize), p, t) < 1e-7


def test_mse_accepts_1d_target_for_column_prediction(rng):
    p, t = rng.standard_normal((6, 1)), rng.standard_normal(6)
    assert MeanSquaredError().forward(p, t) == pytest.approx(np.sum((p[:, 0] - t) ** 2) / 6)


def test_mse_shape_error(rng):
    with pytest.raises(
        ShapeError,
        match=r"MeanSquaredError: target must have the prediction's shape \(5, 2\), received \(5, 3\)",
    ):
        MeanSquaredError().forward(rng.standard_normal((5, 2)), rng.standard_normal((5, 3)))


def test_cross_entropy_value_matches_formula(rng):
    z = rng.standard_normal((6, 4))
    labels = rng.integers(0, 4, 6)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    expected = -np.mean(np.log(p[np.arange(6), labels]))
    loss = SoftmaxCrossEntropy()
    assert loss.forward(z, labels) == pytest.approx(expected, rel=1e-12)
    assert loss.forward(z, np.eye(4)[labels]) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("kind", ["labels", "one_hot", "soft", "sequence"])
def test_cross_entropy_gradient_matches_its_value(kind, rng):
    z = rng.standard_normal((5, 4)) * 3
    if kind == "labels":
        t = rng.integers(0, 4, 5)
    elif kind == "one_hot":
        t = np.eye(4)[rng.integers(0, 4, 5)]
    elif kind == "soft":
        t = rng.dirichlet(np.ones(4), 5)
    else:
        z = rng.standard_normal((2, 3, 4))
        t = rng.integers(0, 4, (2, 3))
    assert gradcheck.check_loss(SoftmaxCrossEntropy(), z, t) < 1e-7


def test_label_and_one_hot_gradients_agree(rng):
    z = rng.standard_normal((5, 3))
    labels = rng.integers(0, 3, 5)
    a, b = SoftmaxCrossEntropy(), SoftmaxCrossEntropy()
    a.forward(z, labels)
    b.forward(z, np.eye(3)[labels])
    np.testing.assert_allclose(a.backward(), b.backward(), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_is_stable_for_huge_logits(dtype):
    z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0]], dtype=dtype)
    loss = SoftmaxCrossEntropy()
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        right = loss.forward(z, np.array([0, 1]))
        grad = loss.backward()
        wrong = loss.forward(z, np.array([1, 0]))
    assert right == 0.0
    assert wrong == pytest.approx(2e4, rel=1e-6)
    assert np.all(np.isfinite(grad)) and grad.dtype == dtype


def test_cross_entropy_label_out_of_range(rng):
    with pytest.raises(
        ValueError, match=r"class labels must be in \[0, 3\). Received: label 3 at index \(1,\)"
    ):
        SoftmaxCrossEntropy().forward(rng.standard_normal((3, 3)), np.array([0, 3, 1]))
    with pytest.raises(ValueError, match="label -1"):
        SoftmaxCrossEntropy().forward(rng.standard_normal((3, 3)), np.array([0, -1, 1]))


def test_cross_entropy_target_shape_error(rng):
    with pytest.raises(
        ShapeError,
        match=r"class labels of shape \(3,\) or one-hot rows of shape \(3, 4\), received \(2,\)",
    ):
        SoftmaxCrossEntropy().forward(rng.standard_normal((3, 4)), np.array([0, 1]))


def test_cross_entropy_accepts_whole_float_labels_and_rejects_fractions(rng):
    z = rng.standard_normal((3, 4))
    assert SoftmaxCrossEntropy().forward(z, np.array([0.0, 2.0, 3.0])) == pytest.approx(
        SoftmaxCrossEntropy().forward(z, np.array([0, 2, 3]))
    )
    with pytest.raises(ValueError, match="whole numbers"):
        SoftmaxCrossEntropy().forward(z, np.array([0.5, 2.0, 3.0]))


def test_loss_backward_before_forward():
    with pytest.raises(RuntimeError, match="MeanSquaredError: backward"):
        MeanSquaredError().backward()


@pytest.mark.parametrize(
    ("loss", "target"),
    [(MeanSquaredError(), np.zeros((0, 2))), (SoftmaxCrossEntropy(), np.zeros(0, dtype=int))],
)
def test_an_empty_batch_is_refused_by_name_not_divided_by_zero(loss, target):
    with pytest.raises(ShapeError, match=r"must have at least one row .* received shape \(0, 2\)"):
        loss.forward(np.zeros((0, 2)), target)
