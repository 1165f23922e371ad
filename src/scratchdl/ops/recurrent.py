"""Recurrent operations over (batch, time, features) inputs, with back-propagation through time.

Each operation projects the inputs of every time step with one matrix multiply, loops over
the time steps for the recurrent part (the only Python loop), caches what each step needs,
and runs the time loop backwards in `backward`. Gate layouts follow PyTorch:

RNN   h_t = tanh(x_t W_x + h_{t-1} W_h + b)
LSTM  [i f g o] = x_t W_x + h_{t-1} W_h + b      (columns in that order, H each)
      i, f, o = σ(·);  g = tanh(·);  c_t = f ⊙ c_{t-1} + i ⊙ g;  h_t = o ⊙ tanh(c_t)
GRU   [r z n] columns (Cho et al. 2014, as torch.nn.GRU):
      r = σ(x W_xr + b_xr + h W_hr + b_hr);   z = σ(x W_xz + b_xz + h W_hz + b_hz)
      n = tanh(x W_xn + b_xn + r ⊙ (h W_hn + b_hn));   h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}

The output is every h_t, (batch, time, hidden), or with ``return_sequences=False`` the last,
(batch, hidden). The initial state is `initial_state` (zeros when None). With
``stateful=True`` the final state of one forward becomes the initial state of the next
(as a constant: back-propagation stops at the batch boundary); a batch of another size
starts again from zeros.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from scratchdl import backend
from scratchdl.backend import copy, device_of, like, namespace
from scratchdl.core import Operation, ShapeError
from scratchdl.ops.activations import _exp_limit, sigmoid

__all__ = ["GRUOperation", "LSTMOperation", "RNNOperation"]


class _Recurrent(Operation):
    """Shared parts: parameters, input checks, initial and carried state."""

    gates = 1
    carried_names: tuple[str, ...] = ("h",)
    param_names = ("weights_input", "weights_hidden", "bias")

    def __init__(
        self, weights: list[np.ndarray], return_sequences: bool = False, stateful: bool = False
    ) -> None:
        self.weights = weights
        self.return_sequences = bool(return_sequences)
        self.stateful = bool(stateful)
        self.initial_state: tuple[np.ndarray, ...] | None = None
        self.carried: tuple[np.ndarray, ...] | None = None
        self._grads: list[np.ndarray] | None = None

    @property
    def hidden(self) -> int:
        return self.weights[1].shape[0]

    @property
    def params(self) -> list[np.ndarray]:
        return self.weights

    @property
    def param_grads(self) -> list[np.ndarray]:
        return [] if self._grads is None else self._grads

    def reset_state(self) -> None:
        """Forget the carried state (stateful layers start the next batch from zeros)."""
        self.carried = None

    def snapshot(self) -> object:
        return self.carried

    def restore(self, snapshot: object) -> None:
        self.carried = snapshot  # type: ignore[assignment]

    def _start(self, batch: int, dtype: np.dtype) -> tuple[np.ndarray, ...]:
        x = self.input_
        xp = namespace(x)
        features = self.weights[0].shape[0]
        if x.ndim != 3 or x.shape[2] != features:
            raise ShapeError(
                f"{self.name}: input must have shape (batch, time, {features}), received {x.shape}"
            )
        if x.shape[1] == 0:
            raise ShapeError(
                f"{self.name}: input must have at least one time step, received {x.shape}"
            )
        h = self.hidden
        for source in (self.carried if self.stateful else None, self.initial_state):
            if source is not None:
                if all(s.shape == (batch, h) for s in source):
                    return tuple(xp.astype(like(s, x), dtype, copy=False) for s in source)
                if source is self.initial_state:
                    raise ShapeError(
                        f"{self.name}: initial_state must be {len(self.carried_names)} array(s) of shape ({batch}, {h}), "
                        f"received {[s.shape for s in source]}"
                    )
        return tuple(
            xp.zeros((batch, h), dtype=dtype, device=device_of(x)) for _ in self.carried_names
        )

    def _project(self) -> np.ndarray:
        """x_t W_x + b for every step at once: (batch, time, gates·hidden)."""
        x = self.input_
        xp = namespace(x)
        b, t, f = x.shape
        proj = xp.reshape(x, (b * t, f)) @ self.weights[0] + self.weights[2]
        return xp.reshape(proj, (b, t, self.weights[0].shape[1]))

    def _finish(self, hs: np.ndarray, final: tuple[np.ndarray, ...]) -> np.ndarray:
        if self.stateful:
            self.carried = tuple(copy(s) for s in final)
        return hs if self.return_sequences else hs[:, -1, :]

    def _output_grad_per_step(self, output_grad: np.ndarray) -> np.ndarray:
        if self.return_sequences:
            return output_grad
        xp = namespace(output_grad)
        b, t = self.input_.shape[:2]
        full = xp.zeros((b, t, self.hidden), dtype=output_grad.dtype, device=device_of(output_grad))
        full[:, -1, :] = output_grad
        return full

    def _input_side_grads(self, dproj: np.ndarray) -> None:
        """Gradients of W_x and b from d(projection), one product each; d(input) waits for
        `_input_grad`, which the first layer of a network is not asked for."""
        x = self.input_
        xp = namespace(x)
        b, t, f = x.shape
        d2 = xp.reshape(dproj, (b * t, -1))
        self._dWx = xp.reshape(x, (b * t, f)).T @ d2
        self._db = xp.sum(d2, axis=0, keepdims=True)
        self._dproj = d2

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        dproj, self._dproj = self._dproj, None
        return namespace(dproj).reshape(dproj @ self.weights[0].T, self.input_.shape)

    def _back_through_hidden_weights(self) -> Callable[[np.ndarray], np.ndarray]:
        """``d ↦ d W_hᵀ`` for the per-step gradients `d` (batch, gates·hidden) of the backward
        passes. For NumPy it computes (W_h dᵀ)ᵀ into one buffer (the returned view is valid
        until the next call), which needs no transposed copy of W_h: with OpenBLAS's
        SkylakeX kernels, one thread, (256, 4·256) by (4·256, 32) took 0.83x the time of
        (32, 4·256) by (4·256, 256) on a contiguous W_hᵀ (0.80x for the GRU's 3·256 and
        0.83x for the RNN's 256; with the Haswell kernels the LSTM's shapes took the same
        time either way), and the LSTM's backward pass 0.90x; multiplying by the
        transposed view itself took 1.6x (measured; timed alone again on 2026-12-04, the
        LSTM's took 0.95-1.04x on one thread and 0.91-0.94x on two). The same turn for the
        forward product, (W_hᵀ hᵀ)ᵀ, is faster alone (0.5-0.85x with a contiguous W_hᵀ, one
        or two threads) but not in the loop, so the forward keeps h W_h: the gate pass
        then reads the product transposed (18 µs a step instead of 3.5) and W_hᵀ must
        be copied each pass (0.11 ms with a tiled kernel); the LSTM's 25-step forward
        took 0.88x the time on one thread but 1.4x on two, 100 steps 1.05x and 1.0x
        (2026-12-04, alternating runs, kernels on)."""
        w_h = self.weights[1]
        if not isinstance(w_h, np.ndarray):
            return lambda d: d @ w_h.T
        buffer = np.empty((self.hidden, 0), dtype=w_h.dtype)

        def back(d: np.ndarray) -> np.ndarray:
            nonlocal buffer
            dtype = np.result_type(w_h, d)
            if buffer.shape[1] != d.shape[0] or buffer.dtype != dtype:
                buffer = np.empty((self.hidden, d.shape[0]), dtype=dtype)
            np.matmul(w_h, d.T, out=buffer)
            return buffer.T

        return back


class RNNOperation(_Recurrent):
    """Elman RNN with tanh; weights [W_x (F, H), W_h (H, H), b (1, H)]."""

    def _output(self, inference: bool) -> np.ndarray:
        x = self.input_
        xp, device = namespace(x), device_of(x)
        batch, steps = x.shape[:2]
        (h,) = self._start(batch, x.dtype)
        proj = self._project()
        hs = xp.empty((batch, steps, self.hidden), dtype=x.dtype, device=device)
        self._h0 = h
        w_h = self.weights[1]
        for t in range(steps):
            h = xp.tanh(proj[:, t, :] + h @ w_h)
            hs[:, t, :] = h
        self._hs = hs
        return self._finish(hs, (h,))

    def _compute_param_grads(self, output_grad: np.ndarray) -> None:
        dout = self._output_grad_per_step(output_grad)
        hs, back = self._hs, self._back_through_hidden_weights()
        xp = namespace(hs)
        steps = hs.shape[1]
        dproj = xp.empty_like(hs)
        dh_next = xp.zeros_like(hs[:, 0, :])
        for t in reversed(range(steps)):
            da = (dout[:, t, :] + dh_next) * (1 - hs[:, t, :] * hs[:, t, :])
            dproj[:, t, :] = da
            dh_next = back(da)
        h_prev = xp.concat([self._h0[:, None, :], hs[:, :-1, :]], axis=1)
        H = self.hidden
        dWh = xp.reshape(h_prev, (-1, H)).T @ xp.reshape(dproj, (-1, H))
        self._input_side_grads(dproj)
        self._grads = [self._dWx, dWh, self._db]


class LSTMOperation(_Recurrent):
    """LSTM; weights [W_x (F, 4H), W_h (H, 4H), b (1, 4H)], gate columns i, f, g, o."""

    gates = 4
    carried_names = ("h", "c")

    def _output(self, inference: bool) -> np.ndarray:
        x = self.input_
        xp, device = namespace(x), device_of(x)
        batch, steps = x.shape[:2]
        h, c = self._start(batch, x.dtype)
        proj = self._project()
        H = self.hidden
        w_h = self.weights[1]
        # i, f, g, o after their nonlinearity
        acts = xp.empty((batch, steps, 4 * H), dtype=x.dtype, device=device)
        cs = xp.empty((batch, steps + 1, H), dtype=x.dtype, device=device)
        hs = xp.empty((batch, steps, H), dtype=x.dtype, device=device)
        tanh_cs = xp.empty((batch, steps, H), dtype=x.dtype, device=device)
        cs[:, 0, :] = c
        self._h0 = h
        if isinstance(x, np.ndarray) and all(isinstance(w, np.ndarray) for w in self.weights):
            h, c = self._numpy_steps(proj, h, acts, cs, hs, tanh_cs)
        else:
            for t in range(steps):
                a = proj[:, t, :] + h @ w_h
                acts[:, t, : 2 * H] = sigmoid(a[:, : 2 * H])
                acts[:, t, 2 * H : 3 * H] = xp.tanh(a[:, 2 * H : 3 * H])
                acts[:, t, 3 * H :] = sigmoid(a[:, 3 * H :])
                act = acts[:, t, :]
                c = act[:, H : 2 * H] * c + act[:, :H] * act[:, 2 * H : 3 * H]
                cs[:, t + 1, :] = c
                tanh_c = xp.tanh(c)
                tanh_cs[:, t, :] = tanh_c
                h = act[:, 3 * H :] * tanh_c
                hs[:, t, :] = h
        self._acts, self._cs, self._hs, self._tanh_cs = acts, cs, hs, tanh_cs
        return self._finish(hs, (h, c))

    def _numpy_steps(
        self,
        proj: np.ndarray,
        h: np.ndarray,
        acts: np.ndarray,
        cs: np.ndarray,
        hs: np.ndarray,
        tanh_cs: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The time loop of `_output` for NumPy arrays: the same operations in the same
        order (so the same bits), each writing into its place in the caches with ``out=``
        instead of through temporaries. Returns the final (h, c).

        With scratchdl[fast], the gate arithmetic runs in two compiled passes around
        NumPy's own exp and tanh (numba's are not vectorised here and round differently):
        7 calls a step instead of 14, the same operations in the same order, so the same
        bits (tested); measured in the README's Speed section."""
        H, w_h = self.hidden, self.weights[1]
        batch, steps = hs.shape[:2]
        a = np.empty((batch, 4 * H), dtype=hs.dtype)
        c = cs[:, 0, :]
        if backend.kernel_for("lstm_gates_in", a, proj, w_h, h) is not None:
            kernels = backend.fast_kernels()
            dtype = hs.dtype.type
            limit, one = dtype(_exp_limit(hs.dtype)), dtype(1)
            sig = np.empty((batch, 3 * H), dtype=hs.dtype)  # i, f, o: -clip(a), then exp
            g = np.empty((batch, H), dtype=hs.dtype)
            for t in range(steps):
                np.matmul(h, w_h, out=a)
                kernels.lstm_gates_in(a, proj, t, limit, sig, g)
                np.exp(sig, out=sig)
                np.tanh(g, out=g)
                kernels.lstm_gates_out(sig, g, cs, t, one, acts)
                c = cs[:, t + 1, :]
                np.tanh(c, out=tanh_cs[:, t, :])
                h = np.multiply(acts[:, t, 3 * H :], tanh_cs[:, t, :], out=hs[:, t, :])
            return h, c
        act = np.empty_like(a)  # this step's activations, contiguous, then copied to `acts`
        ig = np.empty((batch, H), dtype=hs.dtype)
        for t in range(steps):
            np.matmul(h, w_h, out=a)
            a += proj[:, t, :]
            # σ over the whole row, then tanh over g's block: in-place passes over a
            # contiguous array cost half what they cost over the strided `acts[:, t, :]`
            # (measured), and i, f, o get the same bits as σ over their own blocks
            sigmoid(a, out=act)
            np.tanh(a[:, 2 * H : 3 * H], out=act[:, 2 * H : 3 * H])
            acts[:, t, :] = act
            c_new = cs[:, t + 1, :]
            np.multiply(act[:, H : 2 * H], c, out=c_new)
            np.multiply(act[:, :H], act[:, 2 * H : 3 * H], out=ig)
            c_new += ig
            c = c_new
            np.tanh(c, out=tanh_cs[:, t, :])
            h = np.multiply(act[:, 3 * H :], tanh_cs[:, t, :], out=hs[:, t, :])
        return h, c

    def _compute_param_grads(self, output_grad: np.ndarray) -> None:
        dout = self._output_grad_per_step(output_grad)
        acts, cs, hs, tanh_cs = self._acts, self._cs, self._hs, self._tanh_cs
        H = self.hidden
        xp = namespace(hs)
        steps = hs.shape[1]
        dproj = xp.empty_like(acts)
        dh_next = xp.zeros_like(hs[:, 0, :])
        dc_next = xp.zeros_like(hs[:, 0, :])
        back = self._back_through_hidden_weights()
        kernel = backend.kernel_for("lstm_backward_step", dout, acts, cs, tanh_cs, self.weights[1])
        if kernel is not None:  # scratchdl[fast]: the gate arithmetic compiled, per step
            for t in reversed(range(steps)):
                kernel(dout, acts, tanh_cs, cs, t, dh_next, dc_next, acts.dtype.type(1), dproj)
                dh_next = back(dproj[:, t, :])
        else:
            for t in reversed(range(steps)):
                i, f, g, o = (acts[:, t, k * H : (k + 1) * H] for k in range(4))
                dh = dout[:, t, :] + dh_next
                tc = tanh_cs[:, t, :]
                dc = dc_next + dh * o * (1 - tc * tc)
                dproj[:, t, :H] = dc * g * i * (1 - i)
                dproj[:, t, H : 2 * H] = dc * cs[:, t, :] * f * (1 - f)
                dproj[:, t, 2 * H : 3 * H] = dc * i * (1 - g * g)
                dproj[:, t, 3 * H :] = dh * tc * o * (1 - o)
                dc_next = dc * f
                dh_next = back(dproj[:, t, :])
        h_prev = xp.concat([self._h0[:, None, :], hs[:, :-1, :]], axis=1)
        dWh = xp.reshape(h_prev, (-1, H)).T @ xp.reshape(dproj, (-1, 4 * H))
        self._input_side_grads(dproj)
        self._grads = [self._dWx, dWh, self._db]


class GRUOperation(_Recurrent):
    """GRU; weights [W_x (F, 3H), W_h (H, 3H), b_x (1, 3H), b_h (1, 3H)], columns r, z, n."""

    gates = 3
    param_names = ("weights_input", "weights_hidden", "bias", "bias_hidden")

    def _output(self, inference: bool) -> np.ndarray:
        x = self.input_
        xp, device = namespace(x), device_of(x)
        batch, steps = x.shape[:2]
        (h,) = self._start(batch, x.dtype)
        proj = self._project()
        H = self.hidden
        w_h, b_h = self.weights[1], self.weights[3]
        # r, z, n after their nonlinearity
        gates = xp.empty((batch, steps, 3 * H), dtype=x.dtype, device=device)
        hn = xp.empty((batch, steps, H), dtype=x.dtype, device=device)  # h W_hn + b_hn
        hs = xp.empty((batch, steps, H), dtype=x.dtype, device=device)
        self._h0 = h
        self._gates, self._hn, self._hs = gates, hn, hs
        if backend.kernel_for("gru_gates_in", proj, w_h, b_h, h) is not None:
            # scratchdl[fast]: 6 calls a step instead of about 14, the same bits
            return self._finish(hs, (self._compiled_steps(proj, h),))
        for t in range(steps):
            hh = h @ w_h + b_h
            rz = sigmoid(proj[:, t, : 2 * H] + hh[:, : 2 * H])
            r, z = rz[:, :H], rz[:, H:]
            n = xp.tanh(proj[:, t, 2 * H :] + r * hh[:, 2 * H :])
            h = (1 - z) * n + z * h
            gates[:, t, : 2 * H] = rz
            gates[:, t, 2 * H :] = n
            hn[:, t, :] = hh[:, 2 * H :]
            hs[:, t, :] = h
        return self._finish(hs, (h,))

    def _compiled_steps(self, proj: np.ndarray, h: np.ndarray) -> np.ndarray:
        """The time loop of `_output` with the gate arithmetic in three compiled passes
        around NumPy's own exp and tanh (numba's are not vectorised here and round
        differently): the same operations in the same order, so the same bits (tested).
        Fills the caches and returns the last h."""
        kernels = backend.fast_kernels()
        H, w_h, b_h = self.hidden, self.weights[1], self.weights[3]
        gates, hn, hs = self._gates, self._hn, self._hs
        batch, steps = hs.shape[:2]
        dtype = hs.dtype.type
        limit, one = dtype(_exp_limit(hs.dtype)), dtype(1)
        hh = np.empty((batch, 3 * H), dtype=hs.dtype)
        sig = np.empty((batch, 2 * H), dtype=hs.dtype)  # r, z: -clip(·), then its exp
        n = np.empty((batch, H), dtype=hs.dtype)
        for t in range(steps):
            np.matmul(h, w_h, out=hh)
            kernels.gru_gates_in(hh, b_h, proj, t, limit, sig, hn)
            np.exp(sig, out=sig)
            kernels.gru_gates_mid(sig, proj, hn, t, one, gates, n)
            np.tanh(n, out=n)
            kernels.gru_gates_out(n, gates, t, h, one, hs)
            h = hs[:, t, :]
        return h

    def _compute_param_grads(self, output_grad: np.ndarray) -> None:
        dout = self._output_grad_per_step(output_grad)
        gates, hn, hs = self._gates, self._hn, self._hs
        H, back = self.hidden, self._back_through_hidden_weights()
        xp = namespace(hs)
        steps = hs.shape[1]
        h_prev = xp.concat([self._h0[:, None, :], hs[:, :-1, :]], axis=1)
        dproj = xp.empty_like(gates)  # d(x W_x + b_x)
        dhh = xp.empty_like(gates)  # d(h W_h + b_h)
        dh_next = xp.zeros_like(hs[:, 0, :])
        kernel = backend.kernel_for("gru_backward_step", dout, gates, hn, h_prev, self.weights[1])
        if kernel is not None:  # scratchdl[fast]: the gate arithmetic compiled, per step
            carry = np.empty_like(dh_next)
            one = gates.dtype.type(1)
            for t in reversed(range(steps)):
                kernel(dout, gates, hn, h_prev, t, dh_next, one, dproj, dhh, carry)
                dh_next = carry + back(dhh[:, t, :])
        else:
            for t in reversed(range(steps)):
                r, z, n = gates[:, t, :H], gates[:, t, H : 2 * H], gates[:, t, 2 * H :]
                dh = dout[:, t, :] + dh_next
                dn = dh * (1 - z) * (1 - n * n)
                dz = dh * (h_prev[:, t, :] - n) * z * (1 - z)
                dr = dn * hn[:, t, :] * r * (1 - r)
                dproj[:, t, :H], dproj[:, t, H : 2 * H], dproj[:, t, 2 * H :] = dr, dz, dn
                dhh[:, t, :H], dhh[:, t, H : 2 * H], dhh[:, t, 2 * H :] = dr, dz, dn * r
                dh_next = dh * z + back(dhh[:, t, :])
        d2 = xp.reshape(dhh, (-1, 3 * H))
        dWh = xp.reshape(h_prev, (-1, H)).T @ d2
        dbh = xp.sum(d2, axis=0, keepdims=True)
        self._input_side_grads(dproj)
        self._grads = [self._dWx, dWh, self._db, dbh]
