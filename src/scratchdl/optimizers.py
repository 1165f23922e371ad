"""The book's module path ``lincoln.optimizers``: the optimizers.

Their home is `scratchdl.optim`; this module exists for the book's import paths. The
book's ``SGDMomentum(lr, final_lr, decay_type, momentum)`` positional order is kept.
"""

from scratchdl.optim.optimizers import SGD, AdaGrad, Adam, AdamW, Optimizer, RMSProp, SGDMomentum

__all__ = ["SGD", "AdaGrad", "Adam", "AdamW", "Optimizer", "RMSProp", "SGDMomentum"]
