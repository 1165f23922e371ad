"""`NeuralNetwork`: layers plus a loss, with one random generator for the whole model."""

from __future__ import annotations

import importlib
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from scratchdl import backend
from scratchdl.core import Operation, ShapeError, check_array
from scratchdl.io import modelfile
from scratchdl.io.safetensors import ModelFormatError, read
from scratchdl.layers.base import Layer, OperationLayer, check_names, check_state
from scratchdl.losses import Loss

__all__ = ["NeuralNetwork"]

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class NeuralNetwork:
    """A sequence of layers trained against a loss.

    Args:
        layers: `Layer` objects (a bare `Operation` such as `Dropout(0.8)` is wrapped in
            an `OperationLayer`). Each layer is set up from the first batch it sees.
        loss: the `Loss` that `train_batch` minimises.
        seed: seeds the network's `np.random.Generator`, which draws every initial
            weight and dropout mask. The same seed gives the same network, bit for bit.
            The default is 1, as in the book; None draws fresh entropy (recorded, so
            `reset()` still repeats the start). Each layer also gets it as ``layer.seed``,
            as the book's network sets it.
        dtype: float32 (the default, fast) or float64; inputs are converted to it.
    """

    def __init__(
        self,
        layers: Sequence[Layer | Operation],
        loss: Loss,
        seed: int | None = 1,
        dtype: type | np.dtype | str = np.float32,
    ) -> None:
        if isinstance(layers, (Layer, Operation, str)) or not isinstance(layers, Sequence):
            raise TypeError(
                f"NeuralNetwork: layers must be a list of layers. Received: {type(layers).__name__}"
            )
        if len(layers) == 0:
            raise ValueError("NeuralNetwork: layers must not be empty. Received: []")
        wrapped: list[Layer] = []
        for i, layer in enumerate(layers, start=1):
            if isinstance(layer, Operation):
                layer = OperationLayer(layer)
            if not isinstance(layer, Layer):
                raise TypeError(
                    f"NeuralNetwork: layer {i} must be a Layer or an Operation, "
                    f"received {type(layer).__name__}"
                )
            if any(layer is other for other in wrapped):
                raise ValueError(
                    f"NeuralNetwork: layer {i} ({layer!r}) appears twice in the list; "
                    "create a separate layer object for each position"
                )
            wrapped.append(layer)
        if not isinstance(loss, Loss):
            raise TypeError(
                f"NeuralNetwork: loss must be a Loss such as MeanSquaredError(). "
                f"Received: {type(loss).__name__}"
            )
        if np.dtype(dtype) not in FLOAT_DTYPES:
            raise ValueError(
                f"NeuralNetwork: dtype must be float32 or float64. Received: dtype={dtype}"
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(
                f"NeuralNetwork: seed must be an integer or None. Received: seed={seed!r}"
            )
        if seed is not None and seed < 0:
            raise ValueError(f"NeuralNetwork: seed must be >= 0. Received: seed={seed}")
        for i, layer in enumerate(wrapped, start=1):
            kinds = {p.dtype for p in getattr(layer, "params", [])}
            if kinds and kinds != {np.dtype(dtype)}:
                raise TypeError(
                    f"NeuralNetwork: layer {i} ({layer!r}) was already built with "
                    f"{sorted(str(k) for k in kinds)} parameters, this network is {np.dtype(dtype)}; "
                    "a model file could not be loaded back. Use a new layer, or the same dtype"
                )

        self.layers = wrapped
        self.loss = loss
        self.dtype = np.dtype(dtype)
        #: the array namespace and device the network computes in (`to`)
        self.xp: Any = np
        self.device: Any = None
        #: optimizers attached to this network (`Optimizer.net`), whose state `to` moves;
        #: weak, so that an optimizer no longer used is not kept alive by the network
        self._optimizers: weakref.WeakSet[Any] = weakref.WeakSet()
        self.seed = seed
        # An unseeded network still records its entropy, so reset() can repeat its start.
        self._seed_sequence = np.random.SeedSequence(seed)
        self.rng = np.random.default_rng(self._seed_sequence)
        self._initial_rng_state = self.rng.bit_generator.state
        for index, layer in enumerate(self.layers, start=1):
            layer.index = index
            layer.rng = self.rng
            layer.seed = seed

    def to(self, xp: Any, device: Any = None) -> NeuralNetwork:
        """Move the network to array library `xp` (``numpy``, ``cupy``, ``array_api_strict``,
        or any library that array-api-compat knows) on `device`, and return it.

        Everything moves: parameters, untrained state (batch-norm statistics), what the
        last batch left cached, and the state of every optimizer attached to the network
        (its momenta), so training continues where it was. The network then computes in
        `xp`: `forward` and `predict` take host NumPy arrays or arrays of `xp` and return
        arrays of `xp` (`scratchdl.to_numpy` copies one to the host), and `Trainer.fit`
        moves each batch. ``net.to(numpy)`` brings it back. Model files and checkpoints are
        written from any backend and always load onto NumPy; move the loaded network.
        Random numbers (initial weights, the keys of dropout masks) are drawn on the host
        from the network's generator, so a seed gives the same model on every backend.
        """
        try:
            xp = backend.resolve(xp)
        except TypeError as err:
            raise TypeError(f"NeuralNetwork.to: {err}") from None
        if xp is np and device not in (None, "cpu"):
            raise ValueError(f"NeuralNetwork.to: NumPy arrays live on the CPU, received {device!r}")
        convert = backend.converter(xp, device)
        for layer in self.layers:
            layer._convert_arrays(convert)
        for key, value in list(vars(self.loss).items()):
            vars(self.loss)[key] = backend.convert_tree(value, convert)
        for optimizer in list(self._optimizers):
            if optimizer.net is self:
                optimizer._convert_arrays(convert)
        self.xp, self.device = xp, (None if xp is np else device)
        return self

    def __getstate__(self) -> dict[str, Any]:
        """For `copy.deepcopy` and pickling: the array library by name (a module cannot be
        copied); attached optimizers are not part of a copy."""
        state = dict(vars(self))
        state["xp"] = getattr(self.xp, "__name__", "numpy")
        state["_optimizers"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        name = state.pop("xp", "numpy")
        state.pop("_optimizers", None)
        vars(self).update(state)
        self.xp = np if name == "numpy" else backend.resolve(importlib.import_module(name))
        self._optimizers = weakref.WeakSet()

    def forward(self, x_batch: np.ndarray, inference: bool = False) -> np.ndarray:
        """Pass a batch through every layer; `inference=True` turns dropout off."""
        x = self._as_input(x_batch)
        for layer in self.layers:
            x = layer.forward(x, inference)
        return x

    def backward(self, loss_grad: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        """Back-propagate `loss_grad` through the layers; returns d(loss)/d(input).

        ``need_input_grad=False`` skips the gradient with respect to the data (returns None).
        """
        grad = loss_grad
        first = self.layers[0]
        for layer in reversed(self.layers):
            grad = layer.backward(grad, need_input_grad or layer is not first)
        return grad

    def forward_loss(
        self, x_batch: np.ndarray, y_batch: np.ndarray, inference: bool = False
    ) -> float:
        """The loss of the network's output for `x_batch` against `y_batch` (the book's
        method): a forward pass and the loss, nothing backward."""
        return self.loss.forward(self.forward(x_batch, inference), y_batch)

    def train_batch(
        self, x_batch: np.ndarray, y_batch: np.ndarray, inference: bool = False
    ) -> float:
        """Forward, loss and backward on one batch; returns the loss. Does not update.

        The gradient with respect to the data is not computed (nothing uses it).
        `inference=True` (the book's argument) runs the forward pass in inference mode.
        """
        prediction = self.forward(x_batch, inference)
        loss = self.loss.forward(prediction, y_batch)
        self.backward(self.loss.backward(), need_input_grad=False)
        return loss

    def predict(self, X: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """The network's output for `X` in inference mode, in batches if asked.

        `X` must be real numbers without NaN or inf (`ValueError` / `TypeError` naming the
        first bad value otherwise)."""
        X = self._as_input(check_array("NeuralNetwork.predict: X", X))
        if batch_size is None or batch_size >= X.shape[0]:
            return self.forward(X, inference=True)
        parts = [
            self.forward(X[start : min(start + batch_size, X.shape[0]), ...], inference=True)
            for start in range(0, X.shape[0], batch_size)
        ]
        return self.xp.concat(parts) if self.xp is not np else np.concatenate(parts)

    def params(self) -> Iterator[np.ndarray]:
        """Every trainable array, layer by layer (empty until the first forward)."""
        for layer in self.layers:
            yield from layer.params

    def param_grads(self) -> Iterator[np.ndarray]:
        """The gradients of `params()`, in the same order, after `backward`."""
        for layer in self.layers:
            yield from layer.param_grads

    @property
    def built(self) -> bool:
        """True once every layer has been set up by a forward pass."""
        return not any(layer.first for layer in self.layers)

    def reset(self) -> None:
        """Return to the state just after construction: the generator rewinds to its
        seeded start and every layer is set up afresh on the next forward, so the
        initial weights are the same as the first time."""
        self.rng.bit_generator.state = self._initial_rng_state
        for layer in self.layers:
            layer.reset()

    def named_params(self) -> dict[str, np.ndarray]:
        """Every trainable array by name, ``layers.<i>.<name>`` (``layers.1.weights``)."""
        return {
            f"layers.{layer.index}.{name}": array
            for layer in self.layers
            for name, array in layer.named_params().items()
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """The parameters and the saved, untrained state (batch-norm statistics) by name:
        what a model file stores. The network's own arrays, not copies."""
        return {
            f"layers.{layer.index}.{name}": array
            for layer in self.layers
            for name, array in layer.state_dict().items()
        }

    def state_dict(self) -> dict[str, Any]:
        """`arrays()` plus ``"rng"``, the state of the network's generator (which draws the
        dropout masks). Arrays are the network's own; copy them to keep a snapshot."""
        return {**self.arrays(), "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Copy a `state_dict()` into this built network of the same architecture.

        Names, shapes and dtypes must match exactly (`KeyError`, `ShapeError`, `TypeError`
        naming what differs); ``"rng"`` is optional. Nothing is changed unless all match."""
        if not self.built:
            raise RuntimeError(
                "NeuralNetwork.load_state_dict: build the network first (a forward pass, or "
                "summary(input_shape=...))"
            )
        arrays = {k: v for k, v in state.items() if k != "rng"}
        own = self.arrays()
        check_names("NeuralNetwork.load_state_dict", own, arrays)
        for layer in self.layers:
            prefix = f"layers.{layer.index}."
            check_state(layer.name, *(
                {k[len(prefix) :]: v for k, v in d.items() if k.startswith(prefix)}
                for d in (own, arrays)
            ))  # fmt: skip
        for key, array in own.items():
            backend.assign(array, arrays[key])
        if "rng" in state:
            self.rng.bit_generator.state = state["rng"]

    def save(self, path: str, metadata: dict[str, str] | None = None) -> None:
        """Write the architecture and `arrays()` to `path` (a safetensors file), atomically.

        Read it back with `scratchdl.load(path)`. `metadata`: extra strings to store."""
        modelfile.save(self, path, metadata)

    def load_weights(self, path: str, check_finite: bool = False) -> None:
        """Copy the arrays saved at `path` into this built network of the same architecture.

        Raises `ModelFormatError` naming what differs (and, with ``check_finite=True``, for
        NaN or inf values); the network is unchanged then."""
        if not self.built:
            raise ValueError("load_weights: build the network first (run a forward pass)")
        tensors, _ = read(path)
        arrays = {k: v for k, v in tensors.items() if k.startswith("layers.")}
        if check_finite:
            modelfile.check_finite(path, arrays)
        try:
            self.load_state_dict(arrays)
        except (KeyError, ValueError, TypeError) as err:
            raise ModelFormatError(f"{path}: {str(err).strip(chr(39))}") from None

    def count_params(self) -> int:
        """Number of trainable values."""
        return int(sum(p.size for p in self.params()))

    def summary(self, input_shape: tuple[int, ...] | None = None) -> str:
        """A table of layers, output shapes and parameter counts.

        Before the first forward the shapes are unknown; give `input_shape` (without the
        batch axis) to build the network with one zero example in inference mode, which
        draws the same initial weights that training would.
        """
        if input_shape is not None and not self.built:
            self.forward(np.zeros((1, *input_shape), dtype=self.dtype), inference=True)
        rows = [("layer", "output shape", "params"), *self._summary_rows()]
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        lines = [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}" for a, b, c in rows]
        rule = "-" * len(lines[0])
        total = f"total trainable parameters: {self.count_params():,}"
        if not self.built:
            total += " (not built yet: call forward, or summary(input_shape=...))"
        extra = f"loss: {self.loss!r}, dtype: {self.dtype.name}, seed: {self.seed}"
        return "\n".join([lines[0], rule, *lines[1:], rule, total, extra])

    def _summary_rows(self) -> list[tuple[str, str, str]]:
        rows = []
        for layer in self.layers:
            shape = "?" if layer.output_shape is None else str((None, *layer.output_shape))
            count = sum(p.size for p in layer.params)
            rows.append((f"{layer.index} {layer!r}", shape, f"{count:,}"))
        return rows

    def _repr_html_(self) -> str:
        """The summary as an HTML table, for Jupyter."""
        from html import escape

        body = "".join(
            f"<tr><td style='text-align:left'>{escape(a)}</td><td>{escape(b)}</td>"
            f"<td style='text-align:right'>{escape(c)}</td></tr>"
            for a, b, c in self._summary_rows()
        )
        built = "" if self.built else " (not built yet)"
        return (
            "<table><thead><tr><th>layer</th><th>output shape</th><th>params</th></tr></thead>"
            f"<tbody>{body}</tbody></table><p>total trainable parameters: "
            f"{self.count_params():,}{built}; loss: {escape(repr(self.loss))}, dtype: "
            f"{self.dtype.name}, seed: {self.seed}</p>"
        )

    def _as_input(self, x: np.ndarray) -> np.ndarray:
        if self.xp is not np:
            return self._as_device_input(x)
        x = backend.to_numpy(x)
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":  # a dtype check only: cheap enough for every batch
            raise TypeError(
                f"NeuralNetwork: input must hold real numbers, received dtype {x.dtype}"
                + (
                    "; pass X.real if the imaginary part is meant to go"
                    if x.dtype.kind == "c"
                    else ""
                )
            )
        if x.ndim < 2:
            raise ShapeError(
                f"NeuralNetwork: input must have a batch axis, e.g. shape (batch, features); "
                f"received {x.shape}"
            )
        return x.astype(self.dtype, copy=False)

    def _as_device_input(self, x: Any) -> Any:
        """`x` (host NumPy, or already the network's) as the network's array of its dtype."""
        xp = self.xp
        if backend.is_numpy(x) or not hasattr(x, "shape"):
            host = np.asarray(x)
            if host.dtype.kind not in "biuf":
                raise TypeError(
                    f"NeuralNetwork: input must hold real numbers, received dtype {host.dtype}"
                )
            x = backend.to_device(host, xp, self.device, self.dtype)
        else:
            x = backend.converter(xp, self.device)(x)
            if not (xp.isdtype(x.dtype, "real floating") or xp.isdtype(x.dtype, "integral")):
                raise TypeError(
                    f"NeuralNetwork: input must hold real numbers, received dtype {x.dtype}"
                )
            x = xp.astype(x, backend.dtype_of(xp, self.dtype), copy=False)
        if x.ndim < 2:
            raise ShapeError(
                f"NeuralNetwork: input must have a batch axis, e.g. shape (batch, features); "
                f"received {tuple(x.shape)}"
            )
        return x

    def __repr__(self) -> str:
        inner = ",\n".join(f"    {layer!r}" for layer in self.layers)
        return (
            f"NeuralNetwork(layers=[\n{inner}\n  ], loss={self.loss!r}, "
            f"seed={self.seed}, dtype={self.dtype.name})"
        )
