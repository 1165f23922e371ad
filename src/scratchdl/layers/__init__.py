"""Layers: lists of operations that own their parameters."""

from scratchdl.layers.base import Layer, OperationLayer
from scratchdl.layers.dense import Dense

__all__ = ["Dense", "Layer", "OperationLayer"]
