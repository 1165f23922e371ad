"""Every built-in layer, operation, loss and optimizer passes the public contract checks."""

import numpy as np
import pytest

from scratchdl import (
    GRU,
    LSTM,
    RNN,
    SGD,
    AdaGrad,
    Adam,
    AdamW,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    CosineDecay,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    GlobalAvgPool2D,
    LeakyReLU,
    Linear,
    MaxPool2D,
    MeanSquaredError,
    ReLU,
    RMSProp,
    SGDMomentum,
    Sigmoid,
    Softmax,
    SoftmaxCrossEntropy,
    Tanh,
    testing,
)
from tests.conftest import away_from_zero

RNG = np.random.default_rng(7)
SPREAD = (RNG.permutation(2 * 2 * 4 * 4).reshape(2, 2, 4, 4) * 0.1 - 1.6)[None].repeat(3, 0)[
    :, 0
]  # distinct values, so no max-pool window has a tie

LAYERS = [
    (lambda: Dense(4, "tanh"), (5,), None, True),
    (lambda: Dense(3, Sigmoid(), weight_init="glorot", dropout=0.8), (4,), None, True),
    (lambda: Dense(3, Tanh(), dropout=Dropout(0.7, inverted=False)), (4,), None, True),
    (lambda: Conv2D(2, 3, activation=Tanh()), (2, 5, 5), None, True),
    (lambda: Conv2D(2, (2, 3), stride=2, padding="valid", dropout=0.8, flatten=True), (1, 6, 5), None, True),
    (lambda: BatchNorm(momentum=0.5), (4,), RNG.standard_normal((8, 4)), True),
    (lambda: BatchNorm(), (2, 3, 3), RNG.standard_normal((8, 2, 3, 3)), True),
    (lambda: RNN(3), (4, 2), None, True),
    (lambda: LSTM(3, return_sequences=True), (4, 2), None, True),
    (lambda: GRU(3), (3, 2), None, True),
    (lambda: Embedding(5, 3), (4,), RNG.integers(0, 5, (3, 4)), False),
]  # fmt: skip

OPERATIONS = [
    (Sigmoid, (4,), None),
    (Tanh, (4,), None),
    (ReLU, (4,), away_from_zero(RNG.standard_normal((3, 4)))),
    (lambda: LeakyReLU(0.1), (4,), away_from_zero(RNG.standard_normal((3, 4)))),
    (Linear, (4,), None),
    (Softmax, (4,), None),
    (lambda: Dropout(0.7), (6,), None),
    (lambda: Dropout(0.7, inverted=False), (6,), None),
    (Flatten, (2, 3, 3), None),
    (lambda: MaxPool2D(2), (2, 4, 4), SPREAD),
    (lambda: AvgPool2D(2, stride=1, padding=1), (2, 4, 4), None),
    (GlobalAvgPool2D, (2, 3, 3), None),
]


@pytest.mark.parametrize(("make", "shape", "x", "check_input"), LAYERS)
def test_every_layer_passes_the_contract(make, shape, x, check_input):
    testing.check_layer_contract(make, shape, x=x, check_input=check_input)


@pytest.mark.parametrize(("make", "shape", "x"), OPERATIONS)
def test_every_operation_passes_the_contract(make, shape, x):
    testing.check_layer_contract(make, shape, x=x)


@pytest.mark.parametrize(
    ("make", "prediction", "target"),
    [
        (MeanSquaredError, RNG.standard_normal((4, 3)), RNG.standard_normal((4, 3))),
        (lambda: MeanSquaredError(normalize=True), RNG.uniform(0.5, 2, (4, 3)), np.eye(3)[[0, 1, 2, 0]]),
        (SoftmaxCrossEntropy, RNG.standard_normal((4, 3)), np.array([0, 2, 1, 2])),
        (SoftmaxCrossEntropy, RNG.standard_normal((4, 3)), np.eye(3)[[1, 0, 2, 2]]),
    ],
)  # fmt: skip
def test_every_loss_passes_the_contract(make, prediction, target):
    testing.check_loss_contract(make, prediction, target)


@pytest.mark.parametrize(
    "make",
    [
        lambda: SGD(0.1),
        lambda: SGD(0.1, final_lr=0.01, decay_type="exponential", weight_decay=0.1),
        lambda: SGDMomentum(0.1, momentum=0.9),
        lambda: SGDMomentum(0.1, momentum=0.8, nesterov=True, clip_norm=0.5),
        lambda: AdaGrad(0.1, clip_value=0.1),
        lambda: RMSProp(0.01),
        lambda: Adam(0.01, weight_decay=0.01, schedule=CosineDecay(1e-4)),
        lambda: AdamW(0.01),
        lambda: SGD(0.1, param_groups=[{"params": "layers.1.*", "lr": 0.01, "weight_decay": 0.5}]),
    ],
)
def test_every_optimizer_passes_the_contract(make):
    testing.check_optimizer_contract(make)


class ForgetsState(Adam):
    """Breaks the contract: its state_dict carries no moments."""

    def state_dict(self):
        return {**super().state_dict(), "state": {}}


class DoesNotUpdate(SGD):
    def _update_rule(self, param, grad, state):
        pass


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ForgetsState(0.01), "does not continue the run"),
        (lambda: DoesNotUpdate(0.1), "did not change any parameter"),
    ],
)
def test_the_optimizer_contract_catches_broken_optimizers(make, message):
    with pytest.raises(testing.ContractError, match=message):
        testing.check_optimizer_contract(make)


class WrongGradient(Tanh):
    def _input_grad(self, output_grad):
        return output_grad * (1 - self.output)  # not the derivative


def test_the_layer_contract_catches_a_wrong_gradient():
    from scratchdl.io import register

    register(WrongGradient)
    with pytest.raises(testing.ContractError, match="gradient check failed"):
        testing.check_layer_contract(WrongGradient, (4,))
