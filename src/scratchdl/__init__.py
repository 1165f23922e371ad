"""scratchdl: the design of "Deep Learning from Scratch" (Seth Weidman), exact and fast.

    Operation ─┬─ ParamOperation    one mathematical step
    Layer                           a list of operations, set up from the first input
    NeuralNetwork(layers, loss)     forward, backward, train_batch, params, param_grads
    Loss                            forward(prediction, target) -> float, backward()
    Optimizer                       step() updates every parameter in place
    Trainer(net, optim).fit(...)    batches, shuffling, evaluation, callbacks

Everything public is importable from here, e.g.
``from scratchdl import Dense, Tanh, NeuralNetwork, SGDMomentum, Trainer``.
"""

from scratchdl import gradcheck
from scratchdl.core import Operation, ParamOperation, ShapeError
from scratchdl.io import ModelFormatError, load
from scratchdl.layers import (
    GRU,
    LSTM,
    RNN,
    BatchNorm,
    Conv2D,
    Dense,
    Embedding,
    Layer,
    OperationLayer,
)
from scratchdl.losses import Loss, MeanSquaredError, SoftmaxCrossEntropy
from scratchdl.network import NeuralNetwork
from scratchdl.ops import (
    AvgPool2D,
    BatchNormOp,
    BiasAdd,
    ChannelBias,
    Conv2DOperation,
    Dropout,
    EmbeddingLookup,
    Flatten,
    GlobalAvgPool2D,
    GRUOperation,
    LeakyReLU,
    Linear,
    LSTMOperation,
    MaxPool2D,
    ReLU,
    RNNOperation,
    Sigmoid,
    Softmax,
    Tanh,
    WeightMultiply,
)
from scratchdl.optim import (
    SGD,
    AdaGrad,
    Adam,
    AdamW,
    Constant,
    CosineDecay,
    ExponentialDecay,
    LinearDecay,
    Optimizer,
    RMSProp,
    Schedule,
    SGDMomentum,
    StepDecay,
    Warmup,
)
from scratchdl.training import (
    Callback,
    EarlyStopping,
    History,
    ModelCheckpoint,
    ProgressBar,
    TerminateOnNaN,
    Trainer,
    TrainingDiverged,
    accuracy,
    mae,
    r2,
    rmse,
)

__version__ = "0.1.0"

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "SGD",
    "AdaGrad",
    "Adam",
    "AdamW",
    "AvgPool2D",
    "BatchNorm",
    "BatchNormOp",
    "BiasAdd",
    "Callback",
    "ChannelBias",
    "Constant",
    "Conv2D",
    "Conv2DOperation",
    "CosineDecay",
    "Dense",
    "Dropout",
    "EarlyStopping",
    "Embedding",
    "EmbeddingLookup",
    "ExponentialDecay",
    "Flatten",
    "GRUOperation",
    "GlobalAvgPool2D",
    "History",
    "LSTMOperation",
    "Layer",
    "LeakyReLU",
    "Linear",
    "LinearDecay",
    "Loss",
    "MaxPool2D",
    "MeanSquaredError",
    "ModelCheckpoint",
    "ModelFormatError",
    "NeuralNetwork",
    "Operation",
    "OperationLayer",
    "Optimizer",
    "ParamOperation",
    "ProgressBar",
    "RMSProp",
    "RNNOperation",
    "ReLU",
    "SGDMomentum",
    "Schedule",
    "ShapeError",
    "Sigmoid",
    "Softmax",
    "SoftmaxCrossEntropy",
    "StepDecay",
    "Tanh",
    "TerminateOnNaN",
    "Trainer",
    "TrainingDiverged",
    "Warmup",
    "WeightMultiply",
    "__version__",
    "accuracy",
    "gradcheck",
    "load",
    "mae",
    "r2",
    "rmse",
]
