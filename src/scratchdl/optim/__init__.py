"""Optimizers and learning-rate schedules."""

from scratchdl.optim.optimizers import SGD, AdaGrad, Adam, AdamW, Optimizer, RMSProp, SGDMomentum
from scratchdl.optim.schedules import (
    Constant,
    CosineDecay,
    ExponentialDecay,
    LinearDecay,
    Schedule,
    StepDecay,
    Warmup,
)

__all__ = [
    "SGD",
    "AdaGrad",
    "Adam",
    "AdamW",
    "Constant",
    "CosineDecay",
    "ExponentialDecay",
    "LinearDecay",
    "Optimizer",
    "RMSProp",
    "SGDMomentum",
    "Schedule",
    "StepDecay",
    "Warmup",
]
