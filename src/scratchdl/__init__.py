"""scratchdl: the design of "Deep Learning from Scratch" (Seth Weidman), exact and fast.

    Operation ─┬─ ParamOperation    one mathematical step
    Layer                           a list of operations, set up from the first input
    NeuralNetwork(layers, loss)     forward, backward, train_batch, params, param_grads
    Loss                            forward(prediction, target) -> float, backward()
    Optimizer                       step() updates every parameter in place
    Trainer(net, optim).fit(...)    batches, shuffling, evaluation, callbacks

Everything public is importable from here, e.g.
``from scratchdl import Dense, Tanh, NeuralNetwork, SGDMomentum, Trainer``: this module's
``__all__`` is the union of its subpackages' (`ops`, `layers`, `losses`, `network`, `optim`,
`training`, `data`, `datasets`, `io`, `saving`), plus the modules `gradcheck` and
`autograd` (with `Tensor` and `TensorOperation`), `backend` (with `to_numpy`: arrays of a
network moved with `NeuralNetwork.to`, copied to the host) and `__version__`.
"""

from scratchdl import (
    autograd as autograd,
)
from scratchdl import (
    backend as backend,
)
from scratchdl import (
    core,
    data,
    datasets,
    io,
    layers,
    losses,
    network,
    ops,
    optim,
    saving,
    training,
)
from scratchdl import (
    gradcheck as gradcheck,
)
from scratchdl._version import __version__ as __version__
from scratchdl.autograd import Tensor as Tensor
from scratchdl.autograd import TensorOperation as TensorOperation
from scratchdl.backend import to_numpy as to_numpy
from scratchdl.core import *  # noqa: F403
from scratchdl.data import *  # noqa: F403
from scratchdl.io import *  # noqa: F403
from scratchdl.layers import *  # noqa: F403
from scratchdl.losses import *  # noqa: F403
from scratchdl.network import *  # noqa: F403
from scratchdl.onnx_export import export_onnx as export_onnx
from scratchdl.ops import *  # noqa: F403
from scratchdl.optim import *  # noqa: F403
from scratchdl.saving import *  # noqa: F403
from scratchdl.training import *  # noqa: F403

#: The modules whose public names this package re-exports.
SUBPACKAGES = (core, ops, layers, losses, network, optim, training, data, datasets, io, saving)

# autograd is a namespace (its functions, `log`, `exp`, `grad`, would shadow other names);
# only its two classes are at the top level.
__all__ = sorted(
    {name for module in SUBPACKAGES for name in module.__all__}
    | {"Tensor", "TensorOperation", "autograd", "backend", "export_onnx", "gradcheck"}
    | {"to_numpy", "__version__"}
)
