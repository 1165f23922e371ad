import numpy as np
import pytest

from scratchdl import (
    SGD,
    AdaGrad,
    Adam,
    AdamW,
    CosineDecay,
    Dense,
    ExponentialDecay,
    LinearDecay,
    MeanSquaredError,
    NeuralNetwork,
    RMSProp,
    SGDMomentum,
    StepDecay,
    Warmup,
)


class FakeNet:
    """One parameter with gradients we choose, to compare updates with formulas."""

    def __init__(self, param, grads):
        self.param = np.array(param, dtype=np.float64)
        self.grads = [np.array(g, dtype=np.float64) for g in grads]
        self.grad = None

    def params(self):
        yield self.param

    def param_grads(self):
        yield self.grad


def run(optimizer, grads, p0=(1.0, -2.0)):
    net = FakeNet(p0, grads)
    optimizer.net = net
    history = []
    for g in net.grads:
        net.grad = g.copy()
        optimizer.step()
        history.append(net.param.copy())
    return history


GRADS = [(0.5, -1.0), (0.25, 2.0), (-1.0, 0.5)]


def test_sgd():
    p = np.array([1.0, -2.0])
    for got, g in zip(run(SGD(0.1), GRADS), GRADS, strict=True):
        p = p - 0.1 * np.array(g)
        np.testing.assert_allclose(got, p, rtol=1e-15)


def test_sgd_momentum_book_form():
    p, v = np.array([1.0, -2.0]), np.zeros(2)
    for got, g in zip(run(SGDMomentum(0.1, momentum=0.9), GRADS), GRADS, strict=True):
        v = 0.9 * v + 0.1 * np.array(g)
        p = p - v
        np.testing.assert_allclose(got, p, rtol=1e-15)


def test_sgd_momentum_nesterov():
    p, v = np.array([1.0, -2.0]), np.zeros(2)
    for got, g in zip(
        run(SGDMomentum(0.1, momentum=0.9, nesterov=True), GRADS), GRADS, strict=True
    ):
        g = np.array(g)
        v = 0.9 * v + 0.1 * g
        p = p - (0.9 * v + 0.1 * g)
        np.testing.assert_allclose(got, p, rtol=1e-15)


def test_adagrad():
    p, s = np.array([1.0, -2.0]), np.zeros(2)
    for got, g in zip(run(AdaGrad(0.1, eps=1e-7), GRADS), GRADS, strict=True):
        g = np.array(g)
        s = s + g * g
        p = p - 0.1 * g / (np.sqrt(s) + 1e-7)
        np.testing.assert_allclose(got, p, rtol=1e-14)


def test_rmsprop():
    p, s = np.array([1.0, -2.0]), np.zeros(2)
    for got, g in zip(run(RMSProp(0.01, rho=0.9, eps=1e-7), GRADS), GRADS, strict=True):
        g = np.array(g)
        s = 0.9 * s + 0.1 * g * g
        p = p - 0.01 * g / (np.sqrt(s) + 1e-7)
        np.testing.assert_allclose(got, p, rtol=1e-14)


def adam_reference(grads, lr, b1, b2, eps, decoupled=0.0, l2=0.0):
    p, m, v = np.array([1.0, -2.0]), np.zeros(2), np.zeros(2)
    out = []
    for t, g in enumerate(grads, start=1):
        g = np.array(g) + l2 * p
        p = p - lr * decoupled * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(p)
    return out


def test_adam_with_bias_correction():
    got = run(Adam(0.01, beta1=0.9, beta2=0.999, eps=1e-8), GRADS)
    for a, b in zip(got, adam_reference(GRADS, 0.01, 0.9, 0.999, 1e-8), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13)
    # the first step of Adam moves every coordinate by lr (bias correction at work)
    np.testing.assert_allclose(np.abs(got[0] - [1.0, -2.0]), 0.01, rtol=1e-6)


def test_adam_l2_and_adamw_decoupled():
    got = run(Adam(0.01, weight_decay=0.1), GRADS)
    for a, b in zip(got, adam_reference(GRADS, 0.01, 0.9, 0.999, 1e-8, l2=0.1), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13)
    got = run(AdamW(0.01, weight_decay=0.1), GRADS)
    for a, b in zip(got, adam_reference(GRADS, 0.01, 0.9, 0.999, 1e-8, decoupled=0.1), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13)


def test_sgd_weight_decay():
    got = run(SGD(0.1, weight_decay=0.5), GRADS[:1])
    np.testing.assert_allclose(
        got[0], np.array([1.0, -2.0]) - 0.1 * (np.array(GRADS[0]) + 0.5 * np.array([1.0, -2.0]))
    )


def test_clip_value_and_clip_norm():
    got = run(SGD(1.0, clip_value=0.3), [(0.5, -0.1)])
    np.testing.assert_allclose(got[0], [1.0 - 0.3, -2.0 + 0.1])
    got = run(SGD(1.0, clip_norm=1.0), [(3.0, 4.0)])  # norm 5 -> scaled to 1
    np.testing.assert_allclose(got[0], [1.0 - 0.6, -2.0 - 0.8])
    got = run(SGD(1.0, clip_norm=10.0), [(3.0, 4.0)])  # under the limit: unchanged
    np.testing.assert_allclose(got[0], [1.0 - 3.0, -2.0 - 4.0])


def test_updates_are_in_place_and_keep_float32(rng):
    net = NeuralNetwork([Dense(3)], MeanSquaredError(), seed=0)
    for optimizer in (SGD(0.1), SGDMomentum(0.1), AdaGrad(), RMSProp(), Adam(), AdamW()):
        optimizer.net = net
        net.train_batch(rng.standard_normal((4, 2)), rng.standard_normal((4, 3)))
        before = list(net.params())
        copies = [p.copy() for p in before]
        optimizer.step()
        after = list(net.params())
        assert all(a is b for a, b in zip(before, after, strict=True))
        assert all(p.dtype == np.float32 for p in after)
        assert any(not np.array_equal(a, b) for a, b in zip(copies, after, strict=True))
        for state in optimizer.state.values():
            assert all(v.dtype == np.float32 for v in state.values())


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: SGD(-1), "Received: lr=-1"),
        (lambda: SGD(0), "Received: lr=0"),
        (lambda: SGDMomentum(0.1, momentum=1.5), "Received: momentum=1.5"),
        (lambda: Adam(beta1=1.0), "Received: beta1=1"),
        (lambda: SGD(0.1, decay_type="cosine"), "Received: decay_type='cosine'"),
        (lambda: SGD(0.1, clip_norm=0), "Received: clip_norm=0"),
        (lambda: SGD(0.1, weight_decay=-1), "Received: weight_decay=-1"),
        (lambda: ExponentialDecay(0), "final_lr must be > 0"),
        (lambda: StepDecay(0), "Received: step_size=0"),
    ],
)
def test_invalid_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_step_without_network_is_a_clear_error():
    with pytest.raises(RuntimeError, match="no network attached"):
        SGD(0.1).step()


def lrs(optimizer, epochs):
    out = []
    for epoch in range(epochs):
        optimizer.set_epoch(epoch, epochs)
        out.append(optimizer.lr)
    return out


def test_book_linear_decay():
    np.testing.assert_allclose(
        lrs(SGDMomentum(0.15, final_lr=0.05, decay_type="linear"), 5),
        [0.15, 0.125, 0.1, 0.075, 0.05],
    )


def test_book_exponential_decay():
    got = lrs(SGD(0.2, final_lr=0.05, decay_type="exponential"), 3)
    np.testing.assert_allclose(got, [0.2, 0.1, 0.05])


def test_other_schedules():
    np.testing.assert_allclose(lrs(SGD(1.0, schedule=StepDecay(2, 0.5)), 5), [1, 1, 0.5, 0.5, 0.25])
    np.testing.assert_allclose(
        lrs(SGD(1.0, schedule=CosineDecay(0.0)), 3), [1.0, 0.5, 0.0], atol=1e-15
    )
    np.testing.assert_allclose(
        lrs(SGD(1.0, schedule=Warmup(2, LinearDecay(0.0))), 5),
        [0.5, 1.0, 1.0, 0.5, 0.0],
        atol=1e-15,
    )
