"""Operations: the mathematical steps that layers wire together."""

from scratchdl.ops.activations import LeakyReLU, Linear, ReLU, Sigmoid, Softmax, Tanh
from scratchdl.ops.conv import ChannelBias, Conv2DOperation
from scratchdl.ops.dense import BiasAdd, WeightMultiply
from scratchdl.ops.dropout import Dropout
from scratchdl.ops.embedding import EmbeddingLookup
from scratchdl.ops.normalization import BatchNormOp
from scratchdl.ops.pooling import AvgPool2D, GlobalAvgPool2D, MaxPool2D
from scratchdl.ops.recurrent import GRUOperation, LSTMOperation, RNNOperation
from scratchdl.ops.reshape import Flatten

__all__ = [
    "AvgPool2D",
    "BatchNormOp",
    "BiasAdd",
    "ChannelBias",
    "Conv2DOperation",
    "Dropout",
    "EmbeddingLookup",
    "Flatten",
    "GRUOperation",
    "GlobalAvgPool2D",
    "LSTMOperation",
    "LeakyReLU",
    "Linear",
    "MaxPool2D",
    "RNNOperation",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "WeightMultiply",
]

#: Operations that layers create from their own parameters; model files never name them.
LAYER_INTERNAL = (
    "WeightMultiply",
    "BiasAdd",
    "Conv2DOperation",
    "ChannelBias",
    "BatchNormOp",
    "EmbeddingLookup",
    "RNNOperation",
    "LSTMOperation",
    "GRUOperation",
)
