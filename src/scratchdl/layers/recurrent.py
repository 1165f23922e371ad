"""Recurrent layers (`RNN`, `LSTM`, `GRU`) and `Embedding`."""

from __future__ import annotations

import numpy as np

from scratchdl.core import ShapeError, check_flag
from scratchdl.layers.base import Layer
from scratchdl.ops.embedding import EmbeddingLookup
from scratchdl.ops.recurrent import GRUOperation, LSTMOperation, RNNOperation, _Recurrent


class _RecurrentLayer(Layer):
    """Shared set-up. Weights are drawn uniformly from ±1/√hidden, as PyTorch does; the
    LSTM's forget-gate bias starts at 1 so that early training keeps its memory."""

    operation_class: type[_Recurrent] = RNNOperation

    def __init__(
        self, hidden_size: int, return_sequences: bool = False, stateful: bool = False
    ) -> None:
        super().__init__(hidden_size)
        self.return_sequences = check_flag(
            type(self).__name__, "return_sequences", return_sequences
        )
        self.stateful = check_flag(type(self).__name__, "stateful", stateful)
        self.initial_state: tuple[np.ndarray, ...] | None = None

    @property
    def hidden_size(self) -> int:
        return self.neurons  # type: ignore[return-value]

    def _setup_layer(self, input_: np.ndarray) -> None:
        if input_.ndim != 3:
            raise ShapeError(
                f"{self.name}: input must have shape (batch, time, features), received {input_.shape}"
            )
        dtype = self._float_dtype(input_)
        bound = 1.0 / np.sqrt(self.hidden_size)
        f, h, g = input_.shape[2], self.hidden_size, self.operation_class.gates
        shapes = [(f, g * h), (h, g * h), (1, g * h)]
        if self.operation_class is GRUOperation:
            shapes.append((1, g * h))
        weights = [self.rng.uniform(-bound, bound, shape).astype(dtype) for shape in shapes]
        if self.operation_class is LSTMOperation:
            h = self.hidden_size
            weights[2][:, h : 2 * h] = 1.0
        op = self.operation_class(weights, self.return_sequences, self.stateful)
        op.initial_state = self.initial_state
        self.operations = [op]

    def forward(self, input_: np.ndarray, inference: bool = False) -> np.ndarray:
        if self.operations:
            self.operations[0].initial_state = self.initial_state
        return super().forward(input_, inference)

    def reset_state(self) -> None:
        """Forget the state a stateful layer carries from batch to batch."""
        if self.operations:
            self.operations[0].reset_state()

    def __repr__(self) -> str:
        extra = ", return_sequences=True" if self.return_sequences else ""
        extra += ", stateful=True" if self.stateful else ""
        return f"{type(self).__name__}({self.hidden_size}{extra})"


class RNN(_RecurrentLayer):
    """Elman RNN: h_t = tanh(x_t W_x + h_{t-1} W_h + b). See `scratchdl.ops.recurrent`.

    `initial_state` may be set to an array (batch, hidden); None means zeros.
    """

    operation_class = RNNOperation


class LSTM(_RecurrentLayer):
    """Long short-term memory, gate columns i, f, g, o as PyTorch. See `scratchdl.ops.recurrent`.

    `initial_state` may be set to a pair (h0, c0) of (batch, hidden) arrays; None means zeros.
    """

    operation_class = LSTMOperation


class GRU(_RecurrentLayer):
    """Gated recurrent unit (Cho et al. 2014) exactly as torch.nn.GRU, columns r, z, n.
    See `scratchdl.ops.recurrent`."""

    operation_class = GRUOperation


class Embedding(Layer):
    """Integer ids (batch, time) -> vectors (batch, time, dim), a learned table drawn
    from N(0, 1) as PyTorch does."""

    def __init__(self, vocab_size: int, dim: int) -> None:
        super().__init__(dim)
        if (
            isinstance(vocab_size, bool)
            or not isinstance(vocab_size, (int, np.integer))
            or vocab_size < 1
        ):
            raise ValueError(
                f"Embedding: vocab_size must be a positive integer. Received: vocab_size={vocab_size!r}"
            )
        self.vocab_size = int(vocab_size)

    @property
    def dim(self) -> int:
        return self.neurons  # type: ignore[return-value]

    def _setup_layer(self, input_: np.ndarray) -> None:
        dtype = self._float_dtype(input_)
        self.operations = [
            EmbeddingLookup(self.rng.standard_normal((self.vocab_size, self.dim)).astype(dtype))
        ]

    def __repr__(self) -> str:
        return f"Embedding({self.vocab_size}, {self.dim})"
