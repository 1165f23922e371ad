"""Batch normalisation (Ioffe & Szegedy 2015) for (N, C) and (N, C, H, W) inputs."""

from __future__ import annotations

import math

import numpy as np

from scratchdl.backend import copy, namespace
from scratchdl.core import Operation, ShapeError


class BatchNormOp(Operation):
    """y = gamma · (x - mean) / sqrt(var + eps) + beta, per channel (axis 1).

    In training the mean and (biased) variance are the batch's, over every axis but the
    channel axis, and the running statistics move towards them:
    running = momentum · running + (1 - momentum) · batch (the variance with Bessel's
    correction). At inference the running statistics are used. `gamma` and `beta` are
    the trainable parameters; `running_mean` and `running_var` are state that optimizers
    never touch but model files and checkpoints keep.
    """

    param_names = ("gamma", "beta")
    state_names = ("running_mean", "running_var")

    def __init__(self, gamma: np.ndarray, beta: np.ndarray, running_mean: np.ndarray, running_var: np.ndarray,
                 momentum: float = 0.9, eps: float = 1e-5) -> None:  # fmt: skip
        self.gamma, self.beta = gamma, beta
        self.running_mean, self.running_var = running_mean, running_var
        self.momentum = float(momentum)
        self.eps = float(eps)

    @property
    def params(self) -> list[np.ndarray]:
        return [self.gamma, self.beta]

    @property
    def param_grads(self) -> list[np.ndarray]:
        grads = getattr(self, "_grads", None)
        return [] if grads is None else list(grads)

    def _axes(self) -> tuple[int, ...]:
        x = self.input_
        c = self.gamma.shape[1]
        if x.ndim not in (2, 4) or x.shape[1] != c:
            raise ShapeError(
                f"{self.name}: input must have shape (batch, {c}) or (batch, {c}, H, W), received {x.shape}"
            )
        return (0,) if x.ndim == 2 else (0, 2, 3)

    def _shape(self, x: np.ndarray) -> tuple[int, ...]:
        return (1, -1) if x.ndim == 2 else (1, -1, 1, 1)

    def _output(self, inference: bool) -> np.ndarray:
        x = self.input_
        xp = namespace(x)
        axes = self._axes()
        shape = self._shape(x)
        gamma, beta = xp.reshape(self.gamma, shape), xp.reshape(self.beta, shape)
        if inference:
            self._training = False
            self._inv_std = 1 / xp.sqrt(xp.reshape(self.running_var, shape) + self.eps)
            self._normalized = (x - xp.reshape(self.running_mean, shape)) * self._inv_std
            return self._normalized * gamma + beta
        self._training = True
        mean = xp.mean(x, axis=axes, keepdims=True)
        centred = x - mean
        var = xp.mean(centred * centred, axis=axes, keepdims=True)
        self._inv_std = 1 / xp.sqrt(var + self.eps)
        self._normalized = centred * self._inv_std
        count = math.prod(x.shape) // x.shape[1]
        m = self.momentum
        self.running_mean *= m
        self.running_mean += (1 - m) * xp.reshape(mean, self.running_mean.shape)
        self.running_var *= m
        self.running_var += (
            (1 - m) * xp.reshape(var, self.running_var.shape) * (count / max(count - 1, 1))
        )
        return self._normalized * gamma + beta

    def _compute_param_grads(self, output_grad: np.ndarray) -> None:
        xp = namespace(output_grad)
        axes = self._axes()
        self._grads = (
            xp.reshape(xp.sum(output_grad * self._normalized, axis=axes), self.gamma.shape),
            xp.reshape(xp.sum(output_grad, axis=axes), self.beta.shape),
        )

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        xp = namespace(output_grad)
        g = output_grad * xp.reshape(self.gamma, self._shape(self.input_))
        if not self._training:
            return g * self._inv_std
        axes = self._axes()
        xhat = self._normalized
        mean_g = xp.mean(g, axis=axes, keepdims=True)
        mean_gx = xp.mean(g * xhat, axis=axes, keepdims=True)
        return (g - mean_g - xhat * mean_gx) * self._inv_std

    def snapshot(self) -> object:
        return copy(self.running_mean), copy(self.running_var)

    def restore(self, snapshot: object) -> None:
        mean, var = snapshot  # type: ignore[misc]
        self.running_mean[...] = mean
        self.running_var[...] = var
