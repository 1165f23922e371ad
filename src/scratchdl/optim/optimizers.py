"""Optimizers: `step()` updates every parameter of `self.net` in place.

The `Trainer` attaches the network (``optimizer.net = net``), as in the book. Each
optimizer's state (momenta, squared-gradient averages) is kept per parameter, by the
parameter's name, and created with the parameter's dtype, so a float32 model is updated in
float32. A new optimizer is a subclass with `state_names` and `_update_rule`; the base
class does clipping, weight decay, schedules, parameter groups and state.
"""

from __future__ import annotations

import fnmatch
import inspect
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from scratchdl import backend
from scratchdl.backend import assign, namespace
from scratchdl.core import RecordsArguments, check_flag, shape_error
from scratchdl.layers.base import Layer
from scratchdl.optim.schedules import DECAY_TYPES, Constant, Schedule

__all__ = ["SGD", "AdaGrad", "Adam", "AdamW", "Optimizer", "RMSProp", "SGDMomentum"]


def _check(
    cls: str, name: str, value: float, low: float, high: float = math.inf, *, low_open: bool = False
) -> float:
    """Validate a hyper-parameter: low <= value < high (or low < value with low_open)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"{cls}: {name} must be a number. Received: {name}={value!r}")
    value = float(value)
    ok = (value > low if low_open else value >= low) and value < high and math.isfinite(value)
    if not ok:
        bound = f"> {low}" if low_open else f">= {low}"
        if high != math.inf:
            bound += f" and < {high}"
        raise ValueError(f"{cls}: {name} must be {bound}. Received: {name}={value:g}")
    return value


class Optimizer(RecordsArguments):
    """Base class: it does the work every optimizer shares, so a subclass writes only its
    update rule, `_update_rule(param, grad, state)`, updating `param` in place.

    Before the rule runs, the base class clips the gradients (`clip_value`, then the global
    L2 norm `clip_norm`), adds the L2 penalty ``weight_decay · param`` to the gradient (or,
    for a class with ``decoupled_weight_decay = True`` such as `AdamW`, shrinks the parameter
    by ``lr · weight_decay`` first), sets `self.lr` to the scheduled learning rate of the
    parameter's group, and creates the arrays named in the class's `state_names` as zeros
    shaped and typed like the parameter. State is kept by parameter name
    (``layers.1.weights``), so `state_dict()` and checkpoints carry it by name.

    Args:
        lr: the learning rate (the schedule's base rate).
        final_lr, decay_type: the book's per-epoch decay, ``"linear"`` or ``"exponential"``
            from `lr` to `final_lr`; a shorthand for ``schedule=LinearDecay(final_lr)``.
        schedule: any `Schedule`; the `Trainer` sets `lr` from it at every epoch.
        weight_decay: L2 penalty added to the gradient (`AdamW` decouples it instead).
        clip_norm: rescale all gradients together when their global L2 norm exceeds this.
        clip_value: clip every gradient element to [-clip_value, clip_value].
        param_groups: settings for some parameters, as PyTorch's parameter groups: a list of
            dicts with ``"params"`` (a name pattern such as ``"layers.2.*"``, a `Layer`, or a
            list of them) and any of ``"lr"`` and ``"weight_decay"``. The first group that
            matches a parameter applies; the schedule scales a group's `lr` as the base one.
    """

    #: Per-parameter arrays the update rule needs, created as zeros like the parameter.
    state_names: tuple[str, ...] = ()
    #: True for optimizers whose weight decay shrinks the parameter instead of adding
    #: to the gradient (AdamW).
    decoupled_weight_decay = False
    _rule_by_keyword = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        rule = vars(cls).get("_update_rule")
        if rule is not None:  # the book's `_update_rule(self, **kwargs)` takes keywords
            parameters = inspect.signature(rule).parameters.values()
            cls._rule_by_keyword = any(p.kind is p.VAR_KEYWORD for p in parameters) or {
                "param",
                "grad",
                "state",
            } <= {p.name for p in parameters}

    def __init__(
        self,
        lr: float = 0.01,
        final_lr: float = 0.0,
        decay_type: str | None = None,
        schedule: Schedule | None = None,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
        clip_value: float | None = None,
        param_groups: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        cls = type(self).__name__
        self.base_lr = _check(cls, "lr", lr, 0.0, low_open=True)
        self.lr = self.base_lr
        self.final_lr = _check(cls, "final_lr", final_lr, 0.0)
        if decay_type is not None and not isinstance(decay_type, str):
            raise TypeError(
                f"{cls}: decay_type must be 'linear', 'exponential' or None. "
                f"Received: decay_type={decay_type!r}"
            )
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
        elif self.final_lr:
            raise ValueError(
                f"{cls}: final_lr={final_lr:g} has no effect without decay_type='linear' or "
                "'exponential'. Received: decay_type=None"
            )
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
        self.param_groups = [_check_group(cls, i, g) for i, g in enumerate(param_groups or [])]
        self._net: Any = None
        self.iterations = 0
        self.epoch: int | None = None
        self.epochs: int | None = None
        #: per-parameter state arrays, by parameter name
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self._owner: dict[str, np.ndarray] = {}  # the array each state entry belongs to
        self._names: list[str] = []
        self._cached: list[np.ndarray] = []

    @property
    def net(self) -> Any:
        """The network whose parameters `step` updates (the `Trainer` sets it)."""
        return self.__dict__.get("_net")

    @net.setter
    def net(self, net: Any) -> None:
        self._net = net
        attached = getattr(net, "_optimizers", None)
        if attached is not None:
            attached.add(self)  # so that net.to(...) moves this optimizer's state too

    def _convert_arrays(self, convert: Any) -> None:
        """Replace every state array by ``convert(array)`` and follow the network's
        parameters to their new arrays (`NeuralNetwork.to`), keeping momenta and counts."""
        for entries in self.state.values():
            for key, value in entries.items():
                entries[key] = convert(value)
        named = dict(self.net.named_params()) if hasattr(self.net, "named_params") else {}
        for name in list(self._owner):
            if name in named:
                self._owner[name] = named[name]
        self._names, self._cached = [], []

    def set_epoch(self, epoch: int, epochs: int) -> None:
        """Set `lr` for a 0-based `epoch` of `epochs` from the schedule."""
        self.epoch, self.epochs = epoch, epochs
        self.lr = self._scheduled(self.base_lr)

    def _scheduled(self, base_lr: float) -> float:
        if self.epoch is None or self.epochs is None:
            return float(base_lr)
        return float(self.schedule(base_lr, self.epoch, self.epochs))

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
        names = self._param_names(params)
        if self.clip_value is not None:
            for grad in grads:
                if isinstance(grad, np.ndarray):
                    np.clip(grad, -self.clip_value, self.clip_value, out=grad)
                else:
                    grad[...] = namespace(grad).clip(grad, -self.clip_value, self.clip_value)
        if self.clip_norm is not None:
            total = math.sqrt(sum(_squared_norm(g) for g in grads))
            if total > self.clip_norm:
                scale = self.clip_norm / total
                for grad in grads:
                    grad *= scale
        self.iterations += 1
        default_lr = self.lr
        try:
            for name, param, grad in zip(names, params, grads, strict=True):
                lr, weight_decay = self._settings(name, default_lr)
                self.lr = lr
                if weight_decay:
                    if self.decoupled_weight_decay:
                        param -= (lr * weight_decay) * param
                    else:
                        grad = grad + weight_decay * param
                state = self._state_for(name, param)
                if self._rule_by_keyword:
                    self._update_rule(param=param, grad=grad, state=state)
                else:  # a rule with names of its own: (p, g, s)
                    self._update_rule(param, grad, state)
        finally:
            self.lr = default_lr

    def _param_names(self, params: list[np.ndarray]) -> list[str]:
        """The names of the network's parameters (cached while the arrays stay the same)."""
        if len(params) == len(self._cached) and all(
            a is b for a, b in zip(params, self._cached, strict=True)
        ):
            return self._names
        named = getattr(self.net, "named_params", None)
        if named is not None:
            pairs = list(named().items())
            if [id(p) for _, p in pairs] != [id(p) for p in params]:
                raise RuntimeError(
                    f"{type(self).__name__}: net.named_params() and net.params() disagree"
                )
            names = [name for name, _ in pairs]
        else:  # a network of the reader's own, without names
            names = [f"params.{i}" for i in range(len(params))]
        self._names, self._cached = names, params
        return names

    def _settings(self, name: str, default_lr: float) -> tuple[float, float]:
        """(learning rate, weight decay) for the parameter called `name`."""
        for group in self.param_groups:
            if _matches(group["params"], name, getattr(self.net, "layers", ())):
                lr = default_lr if "lr" not in group else self._scheduled(group["lr"])
                return lr, group.get("weight_decay", self.weight_decay)
        return default_lr, self.weight_decay

    def reset(self) -> None:
        """Forget all state (momenta, step count) and return to the base learning rate."""
        self.state.clear()
        self._owner.clear()
        self.iterations = 0
        self.epoch = self.epochs = None
        self.lr = self.base_lr

    def _state_for(self, name: str, param: np.ndarray) -> dict[str, np.ndarray]:
        state = self.state.get(name)
        if state is None or self._owner.get(name) is not param:
            state = {key: namespace(param).zeros_like(param) for key in self.state_names}
            self.state[name] = state
            self._owner[name] = param
        return state

    def state_dict(self) -> dict[str, Any]:
        """Step count, current learning rate and the per-parameter arrays, by parameter name
        (the optimizer's own arrays; copy them to keep a snapshot)."""
        return {
            "type": type(self).__name__,
            "iterations": self.iterations,
            "lr": self.lr,
            "epoch": self.epoch,
            "epochs": self.epochs,
            "state": {name: dict(arrays) for name, arrays in self.state.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a `state_dict()` for the attached network's parameters (names, shapes and
        dtypes must fit; `ValueError`, `KeyError` or `ShapeError` otherwise)."""
        cls = type(self).__name__
        if state.get("type") != cls:
            raise ValueError(
                f"{cls}.load_state_dict: the state was saved by {state.get('type')}, "
                f"this optimizer is {cls}"
            )
        if self.net is None:
            raise RuntimeError(f"{cls}.load_state_dict: attach a network first")
        params = list(self.net.params())
        by_name = dict(zip(self._param_names(params), params, strict=True))
        arrays = state.get("state", {})
        for name, entries in arrays.items():
            if name not in by_name:
                raise KeyError(f"{cls}.load_state_dict: the network has no parameter {name!r}")
            for key, value in entries.items():
                if key not in self.state_names:
                    raise KeyError(f"{cls}.load_state_dict: {name}: unknown state {key!r}")
                if value.shape != by_name[name].shape:
                    raise shape_error(
                        f"{cls}.load_state_dict", f"{name}.{key}", by_name[name].shape, value.shape
                    )
        self.reset()
        self.iterations = int(state.get("iterations", 0))
        self.lr = float(state.get("lr", self.base_lr))
        self.epoch, self.epochs = state.get("epoch"), state.get("epochs")
        for name, entries in arrays.items():
            own = self._state_for(name, by_name[name])
            for key, value in entries.items():
                assign(own[key], value)

    def _update_rule(
        self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray]
    ) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _update_rule")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.base_lr:g})"


def _squared_norm(grad: Any) -> float:
    """The sum of squares of `grad`, as a Python float."""
    if isinstance(grad, np.ndarray):
        return float(np.vdot(grad, grad))
    return float(namespace(grad).sum(grad * grad))


def _check_group(cls: str, index: int, group: Any) -> dict[str, Any]:
    if not isinstance(group, dict) or "params" not in group:
        raise TypeError(
            f"{cls}: param_groups[{index}] must be a dict with 'params'. Received: {group!r}"
        )
    unknown = set(group) - {"params", "lr", "weight_decay"}
    if unknown:
        raise ValueError(
            f"{cls}: param_groups[{index}] has unknown keys {sorted(unknown)}; "
            "allowed: params, lr, weight_decay"
        )
    selectors = group["params"]
    if isinstance(selectors, (str, Layer)):
        selectors = [selectors]
    if not all(isinstance(s, (str, Layer)) for s in selectors):
        raise TypeError(
            f"{cls}: param_groups[{index}]['params'] must hold name patterns or layers. "
            f"Received: {group['params']!r}"
        )
    checked: dict[str, Any] = {"params": list(selectors)}
    if "lr" in group:
        checked["lr"] = _check(cls, "lr", group["lr"], 0.0)  # 0 freezes the group
    if "weight_decay" in group:
        checked["weight_decay"] = _check(cls, "weight_decay", group["weight_decay"], 0.0)
    return checked


def _matches(selectors: list[str | Layer], name: str, layers: Sequence[Any]) -> bool:
    """Whether the parameter `name` (``layers.<i>.<x>``) is chosen by a name pattern, or
    belongs to one of the selected layer objects."""
    for selector in selectors:
        if isinstance(selector, Layer):
            index = selector.index
            if (
                index is not None
                and 0 < index <= len(layers)
                and layers[index - 1] is selector
                and name.startswith(f"layers.{index}.")
            ):
                return True
        elif fnmatch.fnmatchcase(name, selector):
            return True
    return False


class SGD(Optimizer):
    """Plain stochastic gradient descent: p -= lr · g."""

    def _update_rule(
        self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray]
    ) -> None:
        param -= self.lr * grad


class SGDMomentum(Optimizer):
    """SGD with momentum in the book's form: v = μ·v + lr·g; p -= v.

    The positional order is the book's: ``SGDMomentum(lr, final_lr, decay_type, momentum)``.
    With ``nesterov=True`` the step looks ahead: p -= μ·v + lr·g (with the new v).
    """

    state_names = ("velocity",)

    def __init__(
        self,
        lr: float = 0.01,
        final_lr: float = 0.0,
        decay_type: str | None = None,
        momentum: float = 0.9,
        nesterov: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(lr, final_lr, decay_type, **kwargs)
        cls = type(self).__name__
        self.momentum = _check(cls, "momentum", momentum, 0.0, 1.0)
        self.nesterov = check_flag(cls, "nesterov", nesterov)

    def _update_rule(
        self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray]
    ) -> None:
        velocity = state["velocity"]
        if backend.momentum_update(param, grad, velocity, self.lr, self.momentum, self.nesterov):
            return  # one compiled pass, the same bits as the NumPy passes below
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

    state_names = ("sum_squares",)

    def __init__(self, lr: float = 0.01, eps: float = 1e-7, **kwargs: Any) -> None:
        super().__init__(lr, **kwargs)
        self.eps = _check(type(self).__name__, "eps", eps, 0.0, low_open=True)

    def _update_rule(
        self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray]
    ) -> None:
        sum_sq = state["sum_squares"]
        sum_sq += grad * grad
        denom = namespace(sum_sq).sqrt(sum_sq)
        denom += self.eps
        param -= self.lr * grad / denom


class RMSProp(Optimizer):
    """s = ρ·s + (1-ρ)·g²; p -= lr·g / (√s + eps)."""

    state_names = ("avg_squares",)

    def __init__(
        self, lr: float = 0.001, rho: float = 0.9, eps: float = 1e-7, **kwargs: Any
    ) -> None:
        super().__init__(lr, **kwargs)
        self.rho = _check(type(self).__name__, "rho", rho, 0.0, 1.0)
        self.eps = _check(type(self).__name__, "eps", eps, 0.0, low_open=True)

    def _update_rule(
        self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray]
    ) -> None:
        avg_sq = state["avg_squares"]
        avg_sq *= self.rho
        avg_sq += (1 - self.rho) * grad * grad
        denom = namespace(avg_sq).sqrt(avg_sq)
        denom += self.eps
        param -= self.lr * grad / denom


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction:

    m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²;  t = step count
    p -= lr · (m / (1-β1^t)) / (√(v / (1-β2^t)) + eps)

    `weight_decay` adds an L2 penalty to the gradient; `AdamW` decouples it.
    """

    state_names = ("m", "v")

    def __init__(
        self,
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        **kwargs: Any,
    ) -> None:
        super().__init__(lr, **kwargs)
        cls = type(self).__name__
        self.beta1 = _check(cls, "beta1", beta1, 0.0, 1.0)
        self.beta2 = _check(cls, "beta2", beta2, 0.0, 1.0)
        self.eps = _check(cls, "eps", eps, 0.0, low_open=True)

    def _update_rule(
        self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray]
    ) -> None:
        m, v = state["m"], state["v"]
        t = self.iterations
        correction1 = 1 - self.beta1**t
        correction2 = 1 - self.beta2**t
        if backend.adam_update(
            param,
            grad,
            m,
            v,
            (self.beta1, self.beta2),
            1 / math.sqrt(correction2),
            self.eps,
            self.lr / correction1,
        ):
            return  # one compiled pass, the same bits as the NumPy passes below  # fmt: skip
        m *= self.beta1
        m += (1 - self.beta1) * grad
        v *= self.beta2
        v += (1 - self.beta2) * grad * grad
        denom = namespace(v).sqrt(v)
        denom *= 1 / math.sqrt(correction2)
        denom += self.eps
        param -= (self.lr / correction1) * m / denom

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.base_lr:g}, beta1={self.beta1:g}, beta2={self.beta2:g})"


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019): p -= lr·wd·p, then Adam."""

    decoupled_weight_decay = True

    def __init__(self, lr: float = 0.001, weight_decay: float = 0.01, **kwargs: Any) -> None:
        super().__init__(lr, weight_decay=weight_decay, **kwargs)
