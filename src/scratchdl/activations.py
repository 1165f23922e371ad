"""The book's module path ``lincoln.activations``: the activation operations.

Their home is `scratchdl.ops.activations`; this module exists so that a notebook written for
the book runs with ``lincoln`` replaced by ``scratchdl``.
"""

from scratchdl.ops.activations import LeakyReLU, Linear, ReLU, Sigmoid, Softmax, Tanh

__all__ = ["LeakyReLU", "Linear", "ReLU", "Sigmoid", "Softmax", "Tanh"]
