"""Learning-rate schedules: the learning rate for each epoch of a run.

A schedule is called as ``schedule(base_lr, epoch, epochs)`` with a 0-based `epoch`
and returns the learning rate for that epoch. The `Trainer` sets ``optimizer.lr`` from
it at the start of every epoch, so any schedule works with any optimizer.
"""

from __future__ import annotations

import math

__all__ = [
    "Constant",
    "CosineDecay",
    "ExponentialDecay",
    "LinearDecay",
    "Schedule",
    "StepDecay",
    "Warmup",
]


class Schedule:
    """Base class: subclasses implement `__call__(base_lr, epoch, epochs)`.

    `depends_on_epochs` says whether the rate at an epoch depends on how many epochs the
    run has (a decay planned to end at the last epoch does; a constant rate does not): a
    resumed run that changes `epochs` would re-plan such a schedule mid-run, so it is
    refused unless the run is extended on purpose."""

    depends_on_epochs = True

    def __call__(self, base_lr: float, epoch: int, epochs: int) -> float:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class Constant(Schedule):
    """The base learning rate at every epoch."""

    depends_on_epochs = False

    def __call__(self, base_lr: float, epoch: int, epochs: int) -> float:
        return float(base_lr)


def _check_final_lr(name: str, final_lr: float) -> float:
    final_lr = float(final_lr)
    if not final_lr >= 0:
        raise ValueError(f"{name}: final_lr must be >= 0. Received: final_lr={final_lr}")
    return final_lr


class LinearDecay(Schedule):
    """From `base_lr` at the first epoch to `final_lr` at the last, in equal steps (the book's
    ``decay_type="linear"``)."""

    def __init__(self, final_lr: float) -> None:
        self.final_lr = _check_final_lr("LinearDecay", final_lr)

    def __call__(self, base_lr: float, epoch: int, epochs: int) -> float:
        if epochs <= 1:
            return float(base_lr)
        return base_lr - (base_lr - self.final_lr) * epoch / (epochs - 1)


class ExponentialDecay(Schedule):
    """From `base_lr` to `final_lr` by a constant factor per epoch (the book's
    ``decay_type="exponential"``)."""

    def __init__(self, final_lr: float) -> None:
        self.final_lr = _check_final_lr("ExponentialDecay", final_lr)
        if self.final_lr == 0:
            raise ValueError("ExponentialDecay: final_lr must be > 0. Received: final_lr=0.0")

    def __call__(self, base_lr: float, epoch: int, epochs: int) -> float:
        if epochs <= 1:
            return float(base_lr)
        return base_lr * (self.final_lr / base_lr) ** (epoch / (epochs - 1))


class StepDecay(Schedule):
    """Multiply the learning rate by `gamma` every `step_size` epochs."""

    depends_on_epochs = False

    def __init__(self, step_size: int, gamma: float = 0.1) -> None:
        if int(step_size) != step_size or step_size < 1:
            raise ValueError(
                f"StepDecay: step_size must be a positive integer. Received: step_size={step_size}"
            )
        if not 0 < gamma <= 1:
            raise ValueError(f"StepDecay: gamma must be in (0, 1]. Received: gamma={gamma}")
        self.step_size = int(step_size)
        self.gamma = float(gamma)

    def __call__(self, base_lr: float, epoch: int, epochs: int) -> float:
        return base_lr * self.gamma ** (epoch // self.step_size)


class CosineDecay(Schedule):
    """Half a cosine from `base_lr` at the first epoch to `final_lr` at the last."""

    def __init__(self, final_lr: float = 0.0) -> None:
        self.final_lr = _check_final_lr("CosineDecay", final_lr)

    def __call__(self, base_lr: float, epoch: int, epochs: int) -> float:
        if epochs <= 1:
            return float(base_lr)
        progress = epoch / (epochs - 1)
        return self.final_lr + 0.5 * (base_lr - self.final_lr) * (1 + math.cos(math.pi * progress))


class Warmup(Schedule):
    """Rise linearly over `warmup_epochs` (base_lr·1/k, 2/k, …, 1), then follow `after`
    over the remaining epochs."""

    def __init__(self, warmup_epochs: int, after: Schedule | None = None) -> None:
        if int(warmup_epochs) != warmup_epochs or warmup_epochs < 1:
            raise ValueError(
                f"Warmup: warmup_epochs must be a positive integer. Received: warmup_epochs={warmup_epochs}"
            )
        self.warmup_epochs = int(warmup_epochs)
        self.after = after if after is not None else Constant()
        self.depends_on_epochs = self.after.depends_on_epochs

    def __call__(self, base_lr: float, epoch: int, epochs: int) -> float:
        if epoch < self.warmup_epochs:
            return base_lr * (epoch + 1) / self.warmup_epochs
        remaining = max(epochs - self.warmup_epochs, 1)
        return self.after(base_lr, epoch - self.warmup_epochs, remaining)


DECAY_TYPES = {"linear": LinearDecay, "exponential": ExponentialDecay}
