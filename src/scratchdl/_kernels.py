"""Compiled kernels (numba), used through `scratchdl.backend` when ``scratchdl[fast]`` is
installed. Each replaces a chain of NumPy passes by one loop, and gives the bits of the
NumPy code it replaces (tests compare them), except the direct convolution at the end,
which replaces im2col and a BLAS product and agrees with them to rounding.
Single-threaded on purpose: a parallel loop beside a busy core waits for it, as BLAS
threads do (see `training/threads.py`), and splitting the direct convolution over two
threads gained nothing inside a training loop with two BLAS threads (measured).

Only `backend` imports this module, and only when numba imports.
"""

from __future__ import annotations

import numba
import numpy as np

#: `max_pool_2x2` marks a window holding NaN with this: its output is NaN, its gradient 0.
NO_WINNER = 255


@numba.njit(cache=True, nogil=True)
def max_pool_2x2(x: np.ndarray, out: np.ndarray, which: np.ndarray) -> None:  # pragma: no cover
    """Max over the 2×2 tiles of (N, C, H, W) `x` into `out`, and in `which` the offset
    (0-3, row-major) of the first maximum of each tile, as the NumPy path picks it."""
    n, c = x.shape[:2]
    ho, wo = out.shape[2:]
    for p in range(n * c):
        i, j = p // c, p % c
        plane, target, index = x[i, j], out[i, j], which[i, j]
        for r in range(ho):
            top, bottom = plane[2 * r], plane[2 * r + 1]
            for s in range(wo):
                a, b, d, e = top[2 * s], top[2 * s + 1], bottom[2 * s], bottom[2 * s + 1]
                best, k = a, 0
                if b > best:
                    best, k = b, 1
                if d > best:
                    best, k = d, 2
                if e > best:
                    best, k = e, 3
                total = a + b + d + e  # NaN if a value is NaN (or +inf meets -inf)
                if total != total and (a != a or b != b or d != d or e != e):
                    best, k = np.nan, NO_WINNER  # as np.maximum: NaN, and no winner
                target[r, s] = best
                index[r, s] = k


@numba.njit(cache=True, nogil=True)
def max_pool_2x2_backward(
    grad: np.ndarray, which: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover
    """Write each tile's gradient to its winner in (N, C, H, W) `out`, zeros elsewhere
    (rows and columns beyond the last whole tile too)."""
    n, c = out.shape[:2]
    h, w = out.shape[2:]
    ho, wo = grad.shape[2:]
    for p in range(n * c):
        i, j = p // c, p % c
        g, index, plane = grad[i, j], which[i, j], out[i, j]
        for r in range(ho):
            top, bottom = plane[2 * r], plane[2 * r + 1]
            grow, krow = g[r], index[r]
            for s in range(wo):
                v, k = grow[s], krow[s]
                top[2 * s] = v if k == 0 else 0.0
                top[2 * s + 1] = v if k == 1 else 0.0
                bottom[2 * s] = v if k == 2 else 0.0
                bottom[2 * s + 1] = v if k == 3 else 0.0
            for s in range(2 * wo, w):
                top[s] = 0.0
                bottom[s] = 0.0
        for r in range(2 * ho, h):
            plane[r, :] = 0.0


@numba.njit(cache=True, nogil=True)
def relu(x: np.ndarray, zero: float, out: np.ndarray) -> None:  # pragma: no cover
    """``out = np.maximum(x, 0)`` over 1-D arrays, the same bits (NaN stays NaN, -0 gives
    +0); `zero` is 0 in their dtype."""
    for i in range(x.size):
        v = x[i]
        out[i] = zero if v <= zero else v


@numba.njit(cache=True, nogil=True)
def relu_backward(
    grad: np.ndarray, x: np.ndarray, one: float, zero: float, out: np.ndarray
) -> None:  # pragma: no cover
    """``out = grad * (x > 0)`` over 1-D arrays, the same bits (a negative gradient where x
    <= 0 gives -0, an infinite one NaN); `one` and `zero` are in their dtype."""
    for i in range(x.size):
        out[i] = grad[i] * (one if x[i] > zero else zero)


@numba.njit(cache=True, nogil=True)
def im2col(
    x: np.ndarray,
    kh: int,
    kw: int,
    stride: int,
    top: int,
    left: int,
    channels_first: bool,
    out: np.ndarray,
) -> None:  # pragma: no cover
    """The channels-major im2col matrix of (N, C, H, W) `x` — or of (C, N, H, W) `x` when
    `channels_first` — zero-padded by `top` rows and `left` columns (and as many at the far
    edges as the output needs) into `out`, the (C·kh·kw, N, Ho, Wo) im2col matrix: row
    (c, i, j) holds offset (i, j) of channel c for every output pixel of every image."""
    h, w = x.shape[2], x.shape[3]
    c, n = (x.shape[0], x.shape[1]) if channels_first else (x.shape[1], x.shape[0])
    ho, wo = out.shape[2], out.shape[3]
    for ch in range(c):
        for i in range(kh):
            for j in range(kw):
                row = out[(ch * kh + i) * kw + j]
                for b in range(n):
                    plane = x[ch, b] if channels_first else x[b, ch]
                    target = row[b]
                    for r in range(ho):
                        y = i + r * stride - top
                        line = target[r]
                        if y < 0 or y >= h:
                            line[:] = 0.0
                            continue
                        source = plane[y]
                        for s in range(wo):
                            col = j + s * stride - left
                            line[s] = source[col] if 0 <= col < w else 0.0


@numba.njit(cache=True, nogil=True)
def col2im(
    cols: np.ndarray, kh: int, kw: int, stride: int, out: np.ndarray
) -> None:  # pragma: no cover
    """The adjoint of `im2col`, from (C·kh·kw, N, Ho, Wo) `cols` into the zeroed, padded
    (C, N, Hp, Wp) `out`: each column
    entry is added at its place; every element sums its terms in kernel-offset order (i, j),
    as the NumPy loop of strided additions does, so the bits are the same.

    Stride 1 has a loop of its own (`_col2im_unit_stride`): with the step known, the
    compiler vectorises the additions (a (64, 16, 14, 14) input's 3×3 gradient took
    0.32 ms against 1.07 ms with the general loop, measured)."""
    if stride == 1:
        _col2im_unit_stride(cols, kh, kw, out)
        return
    c, n = out.shape[:2]
    ho, wo = cols.shape[2], cols.shape[3]
    for ch in range(c):
        for i in range(kh):
            for j in range(kw):
                row = cols[(ch * kh + i) * kw + j]
                for b in range(n):
                    source, plane = row[b], out[ch, b]
                    for r in range(ho):
                        line, target = source[r], plane[i + r * stride]
                        for s in range(wo):
                            target[j + s * stride] += line[s]


@numba.njit(cache=True, nogil=True)
def _col2im_unit_stride(
    cols: np.ndarray, kh: int, kw: int, out: np.ndarray
) -> None:  # pragma: no cover
    """`col2im` for stride 1, in the same order (so the same bits)."""
    c, n = out.shape[:2]
    ho, wo = cols.shape[2], cols.shape[3]
    for ch in range(c):
        for i in range(kh):
            for j in range(kw):
                row = cols[(ch * kh + i) * kw + j]
                for b in range(n):
                    source, plane = row[b], out[ch, b]
                    for r in range(ho):
                        line, target = source[r], plane[i + r]
                        for s in range(wo):
                            target[j + s] += line[s]


@numba.njit(cache=True, nogil=True)
def tanh_backward(
    grad: np.ndarray, y: np.ndarray, one: float, out: np.ndarray
) -> None:  # pragma: no cover
    """``out = grad * (one - y * y)`` over 4-D arrays of any layouts, in their dtype (`one`
    is 1 in it), as NumPy's three passes compute it."""
    a, b, c, d = grad.shape
    for i in range(a):
        for j in range(b):
            for k in range(c):
                g, v, o = grad[i, j, k], y[i, j, k], out[i, j, k]
                for m in range(d):
                    o[m] = g[m] * (one - v[m] * v[m])


@numba.njit(cache=True, nogil=True)
def lstm_gates_in(
    a: np.ndarray, proj: np.ndarray, t: int, limit: float, sig: np.ndarray, g: np.ndarray
) -> None:  # pragma: no cover
    """The first half of step `t`'s gate arithmetic in an LSTM, before NumPy's exp and
    tanh: the (B, 4H) recurrent product `a` plus the step's input projection ``proj[:, t]``
    ((B, T, 4H) `proj`), its i, f, o columns clipped to ±`limit` and negated into (B, 3H)
    `sig` (the argument of the sigmoid's exp), its g columns into (B, H) `g` (tanh's).
    One simple loop per block of columns over contiguous rows, which the compiler
    vectorises (one loop over all 4H with a branch took 36 µs a step, measured)."""
    batch, four = a.shape
    hidden = four // 4
    for b in range(batch):
        ab, pb, sb, gb = a[b], proj[b, t], sig[b], g[b]
        for k in range(2 * hidden):  # i, f
            v = ab[k] + pb[k]
            v = -limit if v < -limit else v
            v = limit if v > limit else v
            sb[k] = -v
        for k in range(hidden):
            gb[k] = ab[2 * hidden + k] + pb[2 * hidden + k]
        for k in range(hidden):  # o
            v = ab[3 * hidden + k] + pb[3 * hidden + k]
            v = -limit if v < -limit else v
            v = limit if v > limit else v
            sb[2 * hidden + k] = -v


# error_model="numpy": IEEE division (no ZeroDivisionError check), which vectorises
@numba.njit(cache=True, nogil=True, error_model="numpy")
def lstm_gates_out(
    sig: np.ndarray, g: np.ndarray, cs: np.ndarray, t: int, one: float, acts: np.ndarray
) -> None:  # pragma: no cover
    """The second half, after NumPy's exp of `sig` and tanh of `g`: the sigmoids
    1/(exp + 1) of i, f, o, the four activations into ``acts[:, t]`` ((B, T, 4H), columns
    i, f, g, o) and the new cell state f·c + i·g, from ``cs[:, t]`` into ``cs[:, t + 1]``
    ((B, T + 1, H)), each product and sum rounded in the arrays' dtype (`one` is 1 in
    it) in the order of `LSTMOperation._numpy_steps`."""
    batch, hidden = g.shape
    for b in range(batch):
        sb, ab, gb, cb, nb = sig[b], acts[b, t], g[b], cs[b, t], cs[b, t + 1]
        for k in range(2 * hidden):  # i, f
            ab[k] = one / (sb[k] + one)
        for k in range(hidden):
            ab[2 * hidden + k] = gb[k]
        for k in range(hidden):  # o
            ab[3 * hidden + k] = one / (sb[2 * hidden + k] + one)
        for k in range(hidden):
            nb[k] = ab[hidden + k] * cb[k] + ab[k] * gb[k]


@numba.njit(cache=True, nogil=True)
def gru_gates_in(
    hh: np.ndarray,
    b_h: np.ndarray,
    proj: np.ndarray,
    t: int,
    limit: float,
    sig: np.ndarray,
    hn: np.ndarray,
) -> None:  # pragma: no cover
    """The first part of step `t` of a GRU, after ``hh = h W_h``: adds the bias `b_h`
    (1, 3H) to the (B, 3H) `hh` in place, writes ``-clip(proj[:, t, :2H] + hh[:, :2H])``
    into (B, 2H) `sig` (the r and z sigmoids' exp argument) and ``hh[:, 2H:]`` into
    ``hn[:, t]`` ((B, T, H)), in the order of `GRUOperation._output`'s NumPy lines."""
    batch, three = hh.shape
    hidden = three // 3
    bias = b_h[0]
    for b in range(batch):
        row, pb, sb, nb = hh[b], proj[b, t], sig[b], hn[b, t]
        for k in range(three):
            row[k] = row[k] + bias[k]
        for k in range(2 * hidden):
            v = pb[k] + row[k]
            v = -limit if v < -limit else v
            v = limit if v > limit else v
            sb[k] = -v
        for k in range(hidden):
            nb[k] = row[2 * hidden + k]


# error_model="numpy": IEEE division (no ZeroDivisionError check), which vectorises
@numba.njit(cache=True, nogil=True, error_model="numpy")
def gru_gates_mid(
    sig: np.ndarray,
    proj: np.ndarray,
    hn: np.ndarray,
    t: int,
    one: float,
    gates: np.ndarray,
    n_pre: np.ndarray,
) -> None:  # pragma: no cover
    """After NumPy's exp of `sig`: the sigmoids r and z, 1/(exp + 1), into
    ``gates[:, t, :2H]`` ((B, T, 3H)), and tanh's argument
    ``proj[:, t, 2H:] + r · hn[:, t]`` into (B, H) `n_pre`."""
    batch, hidden = n_pre.shape
    for b in range(batch):
        sb, gb, pb, nb, out = sig[b], gates[b, t], proj[b, t], hn[b, t], n_pre[b]
        for k in range(2 * hidden):
            gb[k] = one / (sb[k] + one)
        for k in range(hidden):
            out[k] = pb[2 * hidden + k] + gb[k] * nb[k]


@numba.njit(cache=True, nogil=True)
def gru_gates_out(
    n: np.ndarray, gates: np.ndarray, t: int, h: np.ndarray, one: float, hs: np.ndarray
) -> None:  # pragma: no cover
    """After NumPy's tanh: n into ``gates[:, t, 2H:]`` and the new state
    ``(1 - z)·n + z·h`` into ``hs[:, t]`` ((B, T, H)), from the previous state `h`."""
    batch, hidden = n.shape
    for b in range(batch):
        nb, gb, hb, out = n[b], gates[b, t], h[b], hs[b, t]
        for k in range(hidden):
            gb[2 * hidden + k] = nb[k]
        for k in range(hidden):
            z = gb[hidden + k]
            out[k] = (one - z) * nb[k] + z * hb[k]


@numba.njit(cache=True, nogil=True)
def gru_backward_step(
    dout: np.ndarray,
    gates: np.ndarray,
    hn: np.ndarray,
    h_prev: np.ndarray,
    t: int,
    dh_next: np.ndarray,
    one: float,
    dproj: np.ndarray,
    dhh: np.ndarray,
    carry: np.ndarray,
) -> None:  # pragma: no cover
    """Step `t` of the GRU's backward pass through its gates, in the order of the NumPy
    loop in `GRUOperation._compute_param_grads` (the same bits): from ``dout[:, t]``,
    `dh_next`, the gates r, z, n ``gates[:, t]``, ``hn[:, t]`` and ``h_prev[:, t]``, the
    gradients of the input-side pre-activations into ``dproj[:, t]``, of ``h W_h + b_h``
    into ``dhh[:, t]``, and the part of the gradient reaching the previous h that does
    not go through W_h, dh·z, into (B, H) `carry`."""
    batch, hidden = carry.shape
    for b in range(batch):
        g, do, dn_in, hp, hnb = gates[b, t], dout[b, t], dh_next[b], h_prev[b, t], hn[b, t]
        r, z, n = g[:hidden], g[hidden : 2 * hidden], g[2 * hidden :]
        dp, dq, dh = dproj[b, t], dhh[b, t], carry[b]
        dr, dz, dn = dp[:hidden], dp[hidden : 2 * hidden], dp[2 * hidden :]
        # one loop per result, each writing one array, over contiguous rows: the compiler
        # vectorises these (one loop writing all took 20 µs a step, these 5, measured);
        # dh lives in `carry` until the last loop turns it into dh·z
        for k in range(hidden):
            dh[k] = do[k] + dn_in[k]
        for k in range(hidden):
            dn[k] = dh[k] * (one - z[k]) * (one - n[k] * n[k])
        for k in range(hidden):
            dz[k] = dh[k] * (hp[k] - n[k]) * z[k] * (one - z[k])
        for k in range(hidden):
            dr[k] = dn[k] * hnb[k] * r[k] * (one - r[k])
        for k in range(2 * hidden):
            dq[k] = dp[k]
        for k in range(hidden):
            dq[2 * hidden + k] = dn[k] * r[k]
        for k in range(hidden):
            dh[k] = dh[k] * z[k]


@numba.njit(cache=True, nogil=True)
def lstm_backward_step(
    dout: np.ndarray,
    acts: np.ndarray,
    tanh_cs: np.ndarray,
    cs: np.ndarray,
    t: int,
    dh_next: np.ndarray,
    dc_next: np.ndarray,
    one: float,
    dproj: np.ndarray,
) -> None:  # pragma: no cover
    """Step `t` of the LSTM's backward pass through its gates: from ``dout[:, t]`` (the
    step's output gradient, (B, T, H) `dout`), `dh_next` (the gradient reaching h from the
    next step), `dc_next` (the same for c), the gate activations i, f, g, o ``acts[:, t]``
    ((B, T, 4H)), ``tanh_cs[:, t]`` and the previous c ``cs[:, t]``, the gradient of the
    gates' pre-activations into ``dproj[:, t]`` ((B, T, 4H)) and the gradient reaching the
    previous c into `dc_next`. The products run in the order of the NumPy loop in
    `LSTMOperation._compute_param_grads`, in the arrays' dtype (`one` is 1 in it), so the
    bits are the same. One loop per gate over contiguous rows, which the compiler
    vectorises: one loop over all four took 18 µs a step against 6 (measured)."""
    batch, hidden = dh_next.shape
    for b in range(batch):
        a, d, tc, dcn = acts[b, t], dproj[b, t], tanh_cs[b, t], dc_next[b]
        i, f, g, o = a[:hidden], a[hidden : 2 * hidden], a[2 * hidden : 3 * hidden], a[3 * hidden :]
        do, dh_in, c_prev = dout[b, t], dh_next[b], cs[b, t]
        for k in range(hidden):
            dh = do[k] + dh_in[k]
            d[3 * hidden + k] = dh * tc[k] * o[k] * (one - o[k])
            dcn[k] = dcn[k] + dh * o[k] * (one - tc[k] * tc[k])  # dc, in place
        for k in range(hidden):
            d[k] = dcn[k] * g[k] * i[k] * (one - i[k])
        for k in range(hidden):
            d[hidden + k] = dcn[k] * c_prev[k] * f[k] * (one - f[k])
        for k in range(hidden):
            d[2 * hidden + k] = dcn[k] * i[k] * (one - g[k] * g[k])
        for k in range(hidden):
            dcn[k] = dcn[k] * f[k]


@numba.njit(cache=True, nogil=True)
def dropout(
    values: np.ndarray, multiplier: int, offset: int, threshold: int, scale: float, out: np.ndarray
) -> None:  # pragma: no cover
    """``out[i] = values[i] * (scale if kept(i) else 0)`` over 1-D arrays, where element i
    is kept when the 32-bit hash of ``multiplier·i + offset`` is below `threshold`: the
    mask `ops.dropout.dropout_mask` computes (same bits), drawn and applied in one pass."""
    low = numba.uint64(0xFFFFFFFF)
    a, b, t = numba.uint64(multiplier), numba.uint64(offset), numba.uint64(threshold)
    zero = scale * 0
    for i in range(values.size):
        h = (numba.uint64(i) * a + b) & low
        h ^= h >> numba.uint64(16)
        h = (h * numba.uint64(0x7FEB352D)) & low
        h ^= h >> numba.uint64(15)
        h = (h * numba.uint64(0x846CA68B)) & low
        h ^= h >> numba.uint64(16)
        out[i] = values[i] * (scale if h < t else zero)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def momentum_update(
    param: np.ndarray,
    grad: np.ndarray,
    velocity: np.ndarray,
    lr: float,
    momentum: float,
    nesterov: bool,
) -> None:  # pragma: no cover
    """One SGD-with-momentum update over 1-D arrays in one pass, with the bits of the NumPy
    passes in `SGDMomentum._update_rule` (each product and sum rounded in the arrays'
    dtype, in the same order, no fused multiply-add; the scalars are in that dtype):
    s = lr·g; v = v·μ + s; p -= v, or with `nesterov` p -= s + μ·v."""
    if nesterov:
        for i in range(param.size):
            step = lr * grad[i]
            v = velocity[i] * momentum + step
            velocity[i] = v
            param[i] -= step + momentum * v
    else:
        for i in range(param.size):
            v = velocity[i] * momentum + lr * grad[i]
            velocity[i] = v
            param[i] -= v


@numba.njit(cache=True, nogil=True)
def _block_sum(a: np.ndarray, start: int, n: int):  # type: ignore[no-untyped-def]  # pragma: no cover
    """NumPy's sum of a run of at most 128 elements: under 8 one after another, else eight
    accumulators, combined as ((0+1)+(2+3))+((4+5)+(6+7)), then the rest one by one."""
    if n < 8:
        total = a[start]
        for i in range(1, n):
            total += a[start + i]
        return total
    r0, r1, r2, r3 = a[start], a[start + 1], a[start + 2], a[start + 3]
    r4, r5, r6, r7 = a[start + 4], a[start + 5], a[start + 6], a[start + 7]
    i = 8
    end = n - n % 8
    while i < end:
        j = start + i
        r0 += a[j]
        r1 += a[j + 1]
        r2 += a[j + 2]
        r3 += a[j + 3]
        r4 += a[j + 4]
        r5 += a[j + 5]
        r6 += a[j + 6]
        r7 += a[j + 7]
        i += 8
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        total += a[start + i]
        i += 1
    return total


@numba.njit(cache=True, nogil=True)
def pairwise_sum(a: np.ndarray, start: int, n: int):  # type: ignore[no-untyped-def]  # pragma: no cover
    """The sum of the 1-D run ``a[start : start + n]`` (n >= 1) in the order of NumPy's
    ``np.add.reduce`` over a contiguous run, in `a`'s dtype, so the bits are NumPy's
    (tested against it): a run longer than 128 is the sum of its two halves, split at a
    multiple of 8, each summed the same way; shorter runs are `_block_sum`. The recursion
    is walked with an explicit stack (numba's compiled recursion crashed when cached)."""
    if n <= 128:
        return _block_sum(a, start, n)
    starts = np.empty(64, dtype=np.int64)  # the nodes from the root down to the current
    sizes = np.empty(64, dtype=np.int64)
    lefts = np.empty(64, dtype=a.dtype)  # a node's left half's sum, once known
    waiting = np.zeros(64, dtype=np.bool_)  # whether that left sum is known
    top = 0
    starts[0], sizes[0] = start, n
    value = a[start]
    have = False  # whether `value` is the finished sum of node `top`'s current child
    while True:
        half = sizes[top] // 2
        half -= half % 8
        if have:
            if not waiting[top]:  # the left half is done: keep it, go right
                lefts[top], waiting[top], have = value, True, False
                right, size = starts[top] + half, sizes[top] - half
                if size <= 128:
                    value, have = _block_sum(a, right, size), True
                else:
                    top += 1
                    starts[top], sizes[top], waiting[top] = right, size, False
            else:  # both halves done
                value = lefts[top] + value
                if top == 0:
                    return value
                top -= 1
        elif half <= 128:
            value, have = _block_sum(a, starts[top], half), True
        else:
            top += 1
            starts[top], sizes[top], waiting[top] = starts[top - 1], half, False


@numba.njit(cache=True, nogil=True)
def softmax_shift(
    z: np.ndarray, floor: float, shifted: np.ndarray, maxes: np.ndarray
) -> None:  # pragma: no cover
    """Per row of (rows, classes) `z`: its maximum into `maxes` and ``max(z - maximum,
    floor)`` into `shifted` (NaN kept, as ``np.maximum``), the argument of the softmax's
    exp. A row holding NaN may get another maximum than ``np.max``'s NaN, but its softmax
    and loss are NaN either way (the NaN reaches every element through the row's sum)."""
    rows, classes = z.shape
    for r in range(rows):
        m = z[r, 0]
        for k in range(1, classes):
            if z[r, k] > m:
                m = z[r, k]
        maxes[r] = m
        for k in range(classes):
            s = z[r, k] - m
            shifted[r, k] = floor if s < floor else s


@numba.njit(cache=True, nogil=True, error_model="numpy")
def softmax_normalise(
    exp: np.ndarray,
    z: np.ndarray,
    maxes: np.ndarray,
    labels: np.ndarray,
    sums: np.ndarray,
    picked: np.ndarray,
) -> None:  # pragma: no cover
    """Per row of the (rows, classes) C-contiguous `exp`: its sum into `sums` (NumPy's
    order), the row divided by it in place (the softmax), and ``z - max`` at the row's
    label into `picked` (the log-softmax's shifted logit)."""
    rows, classes = exp.shape
    flat = exp.reshape(-1)
    pick = labels.shape[0] == rows  # probability rows instead: no labels to pick
    for r in range(rows):
        total = pairwise_sum(flat, r * classes, classes)
        sums[r] = total
        for k in range(classes):
            exp[r, k] = exp[r, k] / total
        if pick:
            picked[r] = z[r, labels[r]] - maxes[r]


@numba.njit(cache=True, nogil=True)
def softmax_target_sums(target, z, maxes, lse):  # type: ignore[no-untyped-def]  # pragma: no cover
    """For probability-row targets (rows, classes): the sums over every element of
    ``target · log_sum_exp`` and of ``target · (z - max)``, each in NumPy's pairwise order
    over the flattened products, as `SoftmaxCrossEntropy._output` sums them."""
    rows, classes = target.shape
    products = np.empty(rows * classes, dtype=target.dtype)
    for r in range(rows):
        for k in range(classes):
            products[r * classes + k] = target[r, k] * lse[r]
    first = pairwise_sum(products, 0, rows * classes)
    for r in range(rows):
        for k in range(classes):
            products[r * classes + k] = target[r, k] * (z[r, k] - maxes[r])
    return first, pairwise_sum(products, 0, rows * classes)


@numba.njit(cache=True, nogil=True)
def softmax_minus_target(
    softmax: np.ndarray, target: np.ndarray, scale: float, out: np.ndarray
) -> None:  # pragma: no cover
    """``(softmax - target) · scale`` over (rows, classes), in the dtype, as NumPy's copy,
    subtraction and product compute it."""
    rows, classes = softmax.shape
    for r in range(rows):
        for k in range(classes):
            out[r, k] = (softmax[r, k] - target[r, k]) * scale


@numba.njit(cache=True, nogil=True)
def softmax_cross_entropy_grad(
    softmax: np.ndarray, labels: np.ndarray, one: float, scale: float, out: np.ndarray
) -> None:  # pragma: no cover
    """``(softmax - onehot(labels)) · scale`` over (rows, classes), in the dtype (`one` is
    1 and `scale` is 1/rows in it), as NumPy's copy, subtraction and product compute it."""
    rows, classes = softmax.shape
    for r in range(rows):
        label = labels[r]
        for k in range(classes):
            s = softmax[r, k]
            if k == label:
                s = s - one
            out[r, k] = s * scale


# --- direct convolution (stride 1) ------------------------------------------------------------
#
# A padded image plane, flattened, holds pixel (y, x) at y·wp + x (wp: the padded width).
# Output pixel (y, s) of a stride-1 convolution then reads input position q + i·wp + j for
# kernel offset (i, j), with q = y·wp + s: every kernel offset is one shift of the whole
# flattened plane, and one output plane is a sum of long contiguous multiply-adds, which the
# compiler vectorises. The columns s >= wo of each row are computed and dropped (wp / wo
# times the work of the output itself). No im2col matrix is written, which is what makes
# this faster when there are few filters (see `backend.conv2d_direct`). These kernels sum
# in another order than im2col + BLAS do, so their results agree with the NumPy path to
# rounding, not bit for bit; the same inputs give the same bits every time.

_CONTRACT = {"contract"}  # fused multiply-adds; no other rewriting of the arithmetic


@numba.njit(cache=True, nogil=True, fastmath=_CONTRACT)
def conv_rows(
    x: np.ndarray, start: int, w: np.ndarray, wp: int, col0: int, out: np.ndarray
) -> None:  # pragma: no cover
    """``out[n, f, y, s] = Σ_c Σ_i Σ_j w[f, c, i, j] · x[n, c, start + y·wp + col0 + s +
    i·wp + j]`` for C-contiguous (N, C, P) `x` (flattened padded planes of row width `wp`),
    (F, C, kh, kw) `w` and (N, F, rows, cols) `out`. Two filters share each pass over the
    input, and kernel rows of 3 or 5 taps are one loop each (both measured: 2.6x and 1.5x
    faster than one tap per pass)."""
    n_, c_ = x.shape[0], x.shape[1]
    f_, _, kh, kw = w.shape
    rows, cols = out.shape[2], out.shape[3]
    length = (rows - 1) * wp + col0 + cols
    # fresh accumulators, which the compiler knows share no memory with `x`
    a = np.empty(length, out.dtype)
    b = np.empty(length, out.dtype)
    for n in range(n_):
        for f in range(0, f_, 2):
            g = min(f + 1, f_ - 1)  # the pair's second filter (f again when F is odd)
            a[:] = 0
            b[:] = 0
            for c in range(c_):
                plane = x[n, c]
                for i in range(kh):
                    src = plane[start + i * wp : start + i * wp + length + kw - 1]
                    if kw == 3:
                        v0, v1, v2 = w[f, c, i, 0], w[f, c, i, 1], w[f, c, i, 2]
                        u0, u1, u2 = w[g, c, i, 0], w[g, c, i, 1], w[g, c, i, 2]
                        for q in range(length):
                            s0, s1, s2 = src[q], src[q + 1], src[q + 2]
                            a[q] += v0 * s0 + v1 * s1 + v2 * s2
                            b[q] += u0 * s0 + u1 * s1 + u2 * s2
                    elif kw == 5:
                        v0, v1, v2 = w[f, c, i, 0], w[f, c, i, 1], w[f, c, i, 2]
                        v3, v4 = w[f, c, i, 3], w[f, c, i, 4]
                        u0, u1, u2 = w[g, c, i, 0], w[g, c, i, 1], w[g, c, i, 2]
                        u3, u4 = w[g, c, i, 3], w[g, c, i, 4]
                        for q in range(length):
                            s0, s1, s2, s3, s4 = (
                                src[q],
                                src[q + 1],
                                src[q + 2],
                                src[q + 3],
                                src[q + 4],
                            )
                            a[q] += v0 * s0 + v1 * s1 + v2 * s2 + v3 * s3 + v4 * s4
                            b[q] += u0 * s0 + u1 * s1 + u2 * s2 + u3 * s3 + u4 * s4
                    else:
                        for j in range(kw):
                            v, u = w[f, c, i, j], w[g, c, i, j]
                            for q in range(length):
                                s = src[q + j]
                                a[q] += v * s
                                b[q] += u * s
            for y in range(rows):
                first = y * wp + col0
                out[n, f, y, :] = a[first : first + cols]
                out[n, g, y, :] = b[first : first + cols]


@numba.njit(cache=True, nogil=True, fastmath={"contract", "reassoc"})
def conv_filter_grad(
    grad: np.ndarray,
    start: int,
    length: int,
    x: np.ndarray,
    wp: int,
    zero: float,
    out: np.ndarray,
) -> None:  # pragma: no cover
    """``out[f, c, i, j] = Σ_n Σ_q grad[n, f, start + q] · x[n, c, q + i·wp + j]`` over q <
    `length`, for C-contiguous (N, F, P') `grad` (the output gradient on the padded row
    width from `start` on, zero in the dropped columns) and (N, C, P) `x`; `zero` is 0 in
    their dtype. Each sum over q is vectorised ("reassoc": the compiler may reorder it, the
    same way every time); two filters share each pass over the input, and a kernel row of
    3 or 5 taps is one pass (1.6x faster than one filter per pass, measured)."""
    n_, f_ = grad.shape[0], grad.shape[1]
    c_, kh, kw = out.shape[1], out.shape[2], out.shape[3]
    out[:] = zero
    for n in range(n_):
        for f in range(0, f_, 2):
            e = min(f + 1, f_ - 1)  # the pair's second filter (f again when F is odd)
            ga = grad[n, f, start : start + length]
            gb = grad[n, e, start : start + length]
            for c in range(c_):
                plane = x[n, c]
                for i in range(kh):
                    src = plane[i * wp : i * wp + length + kw - 1]
                    if kw == 3:
                        t0 = t1 = t2 = u0 = u1 = u2 = zero
                        for q in range(length):
                            a, b = ga[q], gb[q]
                            s0, s1, s2 = src[q], src[q + 1], src[q + 2]
                            t0 += a * s0
                            t1 += a * s1
                            t2 += a * s2
                            u0 += b * s0
                            u1 += b * s1
                            u2 += b * s2
                        sums_a, sums_b = (t0, t1, t2), (u0, u1, u2)
                        for j in range(3):
                            out[f, c, i, j] += sums_a[j]
                            if e != f:
                                out[e, c, i, j] += sums_b[j]
                    elif kw == 5:
                        t0 = t1 = t2 = t3 = t4 = u0 = u1 = u2 = u3 = u4 = zero
                        for q in range(length):
                            a, b = ga[q], gb[q]
                            s0, s1, s2 = src[q], src[q + 1], src[q + 2]
                            s3, s4 = src[q + 3], src[q + 4]
                            t0 += a * s0
                            t1 += a * s1
                            t2 += a * s2
                            t3 += a * s3
                            t4 += a * s4
                            u0 += b * s0
                            u1 += b * s1
                            u2 += b * s2
                            u3 += b * s3
                            u4 += b * s4
                        sums_a, sums_b = (t0, t1, t2, t3, t4), (u0, u1, u2, u3, u4)
                        for j in range(5):
                            out[f, c, i, j] += sums_a[j]
                            if e != f:
                                out[e, c, i, j] += sums_b[j]
                    else:
                        for j in range(kw):
                            t = u = zero
                            for q in range(length):
                                s = src[q + j]
                                t += ga[q] * s
                                u += gb[q] * s
                            out[f, c, i, j] += t
                            if e != f:
                                out[e, c, i, j] += u


# error_model="numpy": IEEE division (no ZeroDivisionError check), which vectorises
@numba.njit(cache=True, nogil=True, error_model="numpy")
def adam_update(
    param: np.ndarray,
    grad: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    beta1: float,
    one_minus_beta1: float,
    beta2: float,
    one_minus_beta2: float,
    inv_sqrt_correction2: float,
    eps: float,
    step: float,
) -> None:  # pragma: no cover
    """One Adam update over 1-D arrays in one pass, with the bits of the NumPy passes in
    `Adam._update_rule` (each product and sum rounded in the arrays' dtype, in the same
    order, no fused multiply-add): m = β1·m + (1-β1)·g; v = β2·v + ((1-β2)·g)·g;
    p -= (step·m) / (√v · 1/√(1-β2^t) + eps), with step = lr / (1-β1^t). The scalars are
    in the arrays' dtype."""
    for i in range(param.size):
        g = grad[i]
        mi = m[i] * beta1 + one_minus_beta1 * g
        vi = v[i] * beta2 + (one_minus_beta2 * g) * g
        m[i] = mi
        v[i] = vi
        param[i] -= (step * mi) / (np.sqrt(vi) * inv_sqrt_correction2 + eps)
