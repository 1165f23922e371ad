"""Layers: lists of operations that own their parameters."""

from scratchdl.layers.base import Layer, OperationLayer
from scratchdl.layers.conv import BatchNorm, Conv2D
from scratchdl.layers.dense import Dense
from scratchdl.layers.recurrent import GRU, LSTM, RNN, Embedding

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "BatchNorm",
    "Conv2D",
    "Dense",
    "Embedding",
    "Layer",
    "OperationLayer",
]
