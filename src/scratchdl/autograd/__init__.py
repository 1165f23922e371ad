"""Define-by-run automatic differentiation: the second route to every gradient.

    from scratchdl import autograd
    a = autograd.Tensor(3.0, requires_grad=True)
    (da,) = autograd.grad(4 * a * a, [a])          # 24.0
    (d2a,) = autograd.grad(da, [a])                # needs create_graph=True on the first call

`Tensor` records the operations applied to it; `grad` and `Tensor.backward` walk the graph
backwards; ``create_graph=True`` records the backward pass too, for higher derivatives.
`TensorOperation` turns a forward pass written with Tensors into an `Operation` whose
backward comes from autograd, and `reference.tensor_forward` restates every built-in
operation with Tensors, so `gradcheck.check_autograd` can compare the two routes.

The functions live here, as ``autograd.exp``, ``autograd.log``, … (not at the package's top
level, where names like ``log`` and ``grad`` would shadow others).
"""

from scratchdl.autograd import functions
from scratchdl.autograd.functions import *  # noqa: F403 - their __all__ is the list
from scratchdl.autograd.operation import TensorOperation
from scratchdl.autograd.tensor import Tensor, as_tensor, grad, is_grad_enabled, no_grad

__all__ = [
    "Tensor",
    "TensorOperation",
    "as_tensor",
    "grad",
    "is_grad_enabled",
    "no_grad",
    *functions.__all__,
]
