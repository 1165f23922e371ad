"""Operations: the mathematical steps that layers wire together."""

from scratchdl.ops.activations import LeakyReLU, Linear, ReLU, Sigmoid, Softmax, Tanh
from scratchdl.ops.dense import BiasAdd, WeightMultiply
from scratchdl.ops.dropout import Dropout

__all__ = [
    "BiasAdd",
    "Dropout",
    "LeakyReLU",
    "Linear",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "WeightMultiply",
]
