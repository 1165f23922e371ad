import numpy as np
import pytest

from scratchdl import ShapeError
from scratchdl.data import Standardizer, batches, one_hot, train_test_split


def test_standardizer_fits_on_train_and_applies_to_test(rng):
    train = rng.normal(5, 3, (1000, 4))
    test = rng.normal(5, 3, (200, 4))
    s = Standardizer().fit(train)
    z = s.transform(train)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-5)
    np.testing.assert_allclose(
        s.transform(test, dtype=np.float64), (test - train.mean(0)) / train.std(0)
    )


def test_standardizer_global_and_constant_columns():
    X = np.array([[0.0, 7.0], [2.0, 7.0]])
    np.testing.assert_allclose(Standardizer().fit_transform(X), [[-1, 0], [1, 0]])
    g = Standardizer(axis=None).fit(X)
    assert g.mean_ == X.mean() and g.std_ == X.std()
    with pytest.raises(ShapeError, match="fitted on examples of shape"):
        Standardizer().fit(X).transform(np.zeros((2, 3)))
    with pytest.raises(RuntimeError, match="call fit"):
        Standardizer().transform(X)


def test_one_hot():
    np.testing.assert_array_equal(one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    assert one_hot(np.array([[1, 0]]), 2).shape == (1, 2, 2)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        one_hot(np.array([3]), 3)
    with pytest.raises(ValueError, match="must be integers"):
        one_hot(np.array([0.5]))


def test_train_test_split_is_seeded_and_disjoint():
    X = np.arange(20).reshape(10, 2)
    y = np.arange(10)
    a = train_test_split(X, y, test_size=0.3, seed=1)
    b = train_test_split(X, y, test_size=0.3, seed=1)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    X_train, _, y_train, y_test = a
    assert len(y_test) == 3 and len(y_train) == 7
    assert sorted(np.concatenate([y_train, y_test]).tolist()) == list(range(10))
    np.testing.assert_array_equal(X_train[:, 0] // 2, y_train)
    with pytest.raises(ValueError, match=r"Received: test_size=1\.5"):
        train_test_split(X, y, test_size=1.5)


def test_batches():
    X, y = np.arange(10).reshape(5, 2), np.arange(5)
    sizes = [len(b[1]) for b in batches(X, y, batch_size=2)]
    assert sizes == [2, 2, 1]
    seen = np.concatenate([b[1] for b in batches(X, y, 2, shuffle=True, seed=0)])
    assert sorted(seen.tolist()) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="Received: batch_size=0"):
        next(batches(X, y, 0))
