"""Optimizers: `step()` updates every parameter of `self.net` in place.

The `Trainer` attaches the network (``optimizer.net = net``), as in the book. Each
optimizer's state (momenta, squared-gradient averages) is kept per parameter array and
created with the array's dtype, so a float32 model is updated in float32.
"""

from __future__ import annotations

import math

import numpy as np

from scratchdl.optim.schedules import DECAY_TYPES, Constant, Schedule

__all__ = ["SGD", "AdaGrad", "Adam", "AdamW", "Optimizer", "RMSProp", "SGDMomentum"]


def _check(
    cls: str, name: str, value: float, low: float, high: float = math.inf, *, low_open: bool = False
) -> float:
    """Validate a hyper-parameter: low <= value < high (or low < value with low_open)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{cls}: {name} must be a number. Received: {name}={value!r}") from None
    ok = (value > low if low_open else value >= low) and value < high and math.isfinite(value)
    if not ok:
        bound = f"> {low}" if low_open else f">= {low}"
        if high != math.inf:
            bound += f" and < {high}"
        raise ValueError(f"{cls}: {name} must be {bound}. Received: {name}={value:g}")
    return value


class Optimizer:
    """Base class. Subclasses implement `_update_rule(param, grad, state)`.

    Args:
        lr: the learning rate (the schedule's base rate).
        final_lr, decay_type: the book's per-epoch decay, ``"linear"`` or ``"exponential"``
            from `lr` to `final_lr`; a shorthand for ``schedule=LinearDecay(final_lr)``.
        schedule: any `Schedule`; the `Trainer` sets `lr` from it at every epoch.
        weight_decay: L2 penalty added to the gradient (`AdamW` decouples it instead).
        clip_norm: rescale all gradients together when their global L2 norm exceeds this.
        clip_value: clip every gradient element to [-clip_value, clip_value].
    """

    def __init__(
        self,
        lr: float = 0.01,
        final_lr: float = 0.0,
        decay_type: str | None = None,
        schedule: Schedule | None = None,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
        clip_value: float | None = None,
    ) -> None:
        cls = type(self).__name__
        self.base_lr = _check(cls, "lr", lr, 0.0, low_open=True)
        self.lr = self.base_lr
        self.final_lr = float(final_lr)
        self.decay_type = decay_type
        if decay_type is not None:
            if decay_type not in DECAY_TYPES:
                raise ValueError(
                    f"{cls}: decay_type must be one of {sorted(DECAY_TYPES)} or None. "
                    f"Received: decay_type={decay_type!r}"
                )
            if schedule is not None:
                raise ValueError(f"{cls}: give decay_type or schedule, not both")
            schedule = DECAY_TYPES[decay_type](final_lr)
        if schedule is not None and not isinstance(schedule, Schedule):
            raise TypeError(
                f"{cls}: schedule must be a Schedule. Received: {type(schedule).__name__}"
            )
        self.schedule = schedule if schedule is not None else Constant()
        self.weight_decay = _check(cls, "weight_decay", weight_decay, 0.0)
        self.clip_norm = (
            None if clip_norm is None else _check(cls, "clip_norm", clip_norm, 0.0, low_open=True)
        )
        self.clip_value = (
            None
            if clip_value is None
            else _check(cls, "clip_value", clip_value, 0.0, low_open=True)
        )
        self.net = None
        self.iterations = 0
        self.state: dict[int, tuple[np.ndarray, dict[str, np.ndarray]]] = {}

    def set_epoch(self, epoch: int, epochs: int) -> None:
        """Set `lr` for a 0-based `epoch` of `epochs` from the schedule."""
        self.lr = float(self.schedule(self.base_lr, epoch, epochs))

    def step(self) -> None:
        """Update every parameter of `self.net` in place from its gradient."""
        if self.net is None:
            raise RuntimeError(
                f"{type(self).__name__}: no network attached; pass it to Trainer(net, optimizer) "
                "or set optimizer.net = net"
            )
        params = list(self.net.params())
        grads = list(self.net.param_grads())
        if len(grads) != len(params):
            raise RuntimeError(
                f"{type(self).__name__}: the network has {len(params)} parameters but "
                f"{len(grads)} gradients; call net.train_batch (or backward) before step()"
            )
        if self.clip_value is not None:
            for grad in grads:
                np.clip(grad, -self.clip_value, self.clip_value, out=grad)
        if self.clip_norm is not None:
            total = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
            if total > self.clip_norm:
                scale = self.clip_norm / total
                for grad in grads:
                    grad *= scale
        self.iterations += 1
        for param, grad in zip(params, grads, strict=True):
            self._update_rule(param, grad, self._state_for(param))

    def reset(self) -> None:
        """Forget all state (momenta, step count) and return to the base learning rate."""
        self.state.clear()
        self.iterations = 0
        self.lr = self.base_lr

    def state_for_saving(self, param: np.ndarray) -> dict[str, np.ndarray]:
        """This optimizer's state arrays for `param` (empty before its first step)."""
        entry = self.state.get(id(param))
        return dict(entry[1]) if entry is not None and entry[0] is param else {}

    def load_state(self, param: np.ndarray, arrays: dict[str, np.ndarray]) -> None:
        """Set the state for `param` from saved arrays (copied into arrays of its dtype)."""
        state = self._state_for(param)
        state.clear()
        state.update({name: np.array(value, dtype=param.dtype) for name, value in arrays.items()})

    def _state_for(self, param: np.ndarray) -> dict[str, np.ndarray]:
        entry = self.state.get(id(param))
        if entry is None or entry[0] is not param:
            entry = (param, {})
            self.state[id(param)] = entry
        return entry[1]

    def _l2(self, param: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """The gradient with the L2 penalty added (a new array only when there is one)."""
        return grad + self.weight_decay * param if self.weight_decay else grad

    def _update_rule(
        self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray]
    ) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.base_lr:g})"


class SGD(Optimizer):
    """Plain stochastic gradient descent: p -= lr · g."""

    def _update_rule(
        self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray]
    ) -> None:
        param -= self.lr * self._l2(param, grad)


class SGDMomentum(Optimizer):
    """SGD with momentum in the book's form: v = μ·v + lr·g; p -= v.

    With ``nesterov=True`` the step looks ahead: p -= μ·v + lr·g (with the new v).
    """

    def __init__(
        self, lr: float = 0.01, momentum: float = 0.9, nesterov: bool = False, **kwargs
    ) -> None:
        super().__init__(lr, **kwargs)
        self.momentum = _check(type(self).__name__, "momentum", momentum, 0.0, 1.0)
        self.nesterov = bool(nesterov)

    def _update_rule(
        self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray]
    ) -> None:
        grad = self._l2(param, grad)
        velocity = state.get("velocity")
        if velocity is None:
            velocity = state["velocity"] = np.zeros_like(param)
        step = self.lr * grad
        velocity *= self.momentum
        velocity += step
        if self.nesterov:
            step += self.momentum * velocity
            param -= step
        else:
            param -= velocity

    def __repr__(self) -> str:
        return f"SGDMomentum(lr={self.base_lr:g}, momentum={self.momentum:g}, nesterov={self.nesterov})"


class AdaGrad(Optimizer):
    """Per-element rates from the sum of squared gradients: s += g²; p -= lr·g / (√s + eps)."""

    def __init__(self, lr: float = 0.01, eps: float = 1e-7, **kwargs) -> None:
        super().__init__(lr, **kwargs)
        self.eps = _check(type(self).__name__, "eps", eps, 0.0, low_open=True)

    def _update_rule(
        self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray]
    ) -> None:
        grad = self._l2(param, grad)
        sum_sq = state.get("sum_squares")
        if sum_sq is None:
            sum_sq = state["sum_squares"] = np.zeros_like(param)
        sum_sq += grad * grad
        denom = np.sqrt(sum_sq)
        denom += self.eps
        param -= self.lr * grad / denom


class RMSProp(Optimizer):
    """s = ρ·s + (1-ρ)·g²; p -= lr·g / (√s + eps)."""

    def __init__(self, lr: float = 0.001, rho: float = 0.9, eps: float = 1e-7, **kwargs) -> None:
        super().__init__(lr, **kwargs)
        self.rho = _check(type(self).__name__, "rho", rho, 0.0, 1.0)
        self.eps = _check(type(self).__name__, "eps", eps, 0.0, low_open=True)

    def _update_rule(
        self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray]
    ) -> None:
        grad = self._l2(param, grad)
        avg_sq = state.get("avg_squares")
        if avg_sq is None:
            avg_sq = state["avg_squares"] = np.zeros_like(param)
        avg_sq *= self.rho
        avg_sq += (1 - self.rho) * grad * grad
        denom = np.sqrt(avg_sq)
        denom += self.eps
        param -= self.lr * grad / denom


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction:

    m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²;  t = step count
    p -= lr · (m / (1-β1^t)) / (√(v / (1-β2^t)) + eps)

    `weight_decay` adds an L2 penalty to the gradient; `AdamW` decouples it.
    """

    def __init__(
        self,
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        **kwargs,
    ) -> None:
        super().__init__(lr, **kwargs)
        cls = type(self).__name__
        self.beta1 = _check(cls, "beta1", beta1, 0.0, 1.0)
        self.beta2 = _check(cls, "beta2", beta2, 0.0, 1.0)
        self.eps = _check(cls, "eps", eps, 0.0, low_open=True)

    def _update_rule(
        self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray]
    ) -> None:
        grad = self._gradient(param, grad)
        m = state.get("m")
        if m is None:
            m = state["m"] = np.zeros_like(param)
            state["v"] = np.zeros_like(param)
        v = state["v"]
        m *= self.beta1
        m += (1 - self.beta1) * grad
        v *= self.beta2
        v += (1 - self.beta2) * grad * grad
        t = self.iterations
        correction1 = 1 - self.beta1**t
        correction2 = 1 - self.beta2**t
        denom = np.sqrt(v)
        denom *= 1 / math.sqrt(correction2)
        denom += self.eps
        param -= (self.lr / correction1) * m / denom

    def _gradient(self, param: np.ndarray, grad: np.ndarray) -> np.ndarray:
        return self._l2(param, grad)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.base_lr:g}, beta1={self.beta1:g}, beta2={self.beta2:g})"


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019): p -= lr·wd·p, then Adam."""

    def __init__(self, lr: float = 0.001, weight_decay: float = 0.01, **kwargs) -> None:
        super().__init__(lr, weight_decay=weight_decay, **kwargs)

    def _gradient(self, param: np.ndarray, grad: np.ndarray) -> np.ndarray:
        if self.weight_decay:
            param -= (self.lr * self.weight_decay) * param
        return grad
