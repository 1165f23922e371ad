"""Array namespaces: NumPy by default, any array-API library (CuPy on a GPU) when asked.

Operations are written once against the array API standard: they take the namespace of
their input (``xp = namespace(x)``) and call ``xp.matmul``, ``xp.tanh``, ``xp.sum``. For
NumPy arrays that namespace is `numpy` itself (NumPy 2 implements the standard), so the
default path costs one type check. This module holds the few pieces the standard lacks,
each with a NumPy fast path and a generic path:

- moving arrays between the host and a device (`to_numpy`, `to_device`, `like`, `assign`);
- the windows of a convolution or pooling (`windows`, `im2col`), strided views in NumPy and
  ``kh·kw`` strided slices elsewhere;
- scatter-add of rows, for an embedding's gradient (`scatter_add_rows`): ``np.add.at`` in
  NumPy, ``cupyx.scatter_add`` in CuPy, ``index_add_`` in PyTorch, a one-hot product (in
  chunks of bounded memory) elsewhere;
- random numbers: initial weights are drawn on the host from the network's NumPy generator
  and then moved, and a dropout mask's two keys are drawn there (the mask is computed from
  them on the device in exact integer arithmetic), so one seed gives the same model on
  every backend.

`array-api-compat` is imported only when a non-NumPy array is first seen.

Compiled kernels (``pip install 'scratchdl[fast]'``, numba) replace a few chains of NumPy
passes on NumPy arrays, each tested against the NumPy code it replaces, which stays the
reference: `fast_kernels` says whether they are in use (``SCRATCHDL_FAST=0`` or
`set_fast` turns them off). They compile on first use and are cached on disk.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "assign",
    "col2im",
    "copy",
    "fast_kernels",
    "host_dtype",
    "im2col",
    "is_array",
    "is_numpy",
    "like",
    "namespace",
    "pad_images",
    "resolve",
    "scatter_add_rows",
    "set_fast",
    "to_device",
    "to_numpy",
    "window_slices",
    "windows",
]

Padding = tuple[int, int, int, int]  # top, bottom, left, right


def _compat() -> Any:
    try:
        import array_api_compat
    except ImportError as err:  # pragma: no cover - it is a dependency
        raise ImportError(
            "scratchdl needs array-api-compat for arrays other than NumPy's: "
            "pip install array-api-compat"
        ) from err
    return array_api_compat


def is_numpy(x: Any) -> bool:
    """Whether `x` is a NumPy array or scalar (the default backend)."""
    return isinstance(x, (np.ndarray, np.generic))


def is_array(x: Any) -> bool:
    """Whether `x` is an array of NumPy or of any array-API library."""
    if isinstance(x, np.ndarray):
        return True
    if isinstance(x, (np.generic, int, float, complex, bool, str, bytes, type(None))):
        return False
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        return False
    return bool(_compat().is_array_api_obj(x))


def namespace(x: Any) -> Any:
    """The array namespace of `x`: `numpy` for NumPy arrays (and anything that is not an
    array), else the library's standard namespace (through array-api-compat)."""
    if isinstance(x, np.ndarray) or not hasattr(x, "shape"):
        return np
    return _compat().array_namespace(x)


def resolve(xp: Any) -> Any:
    """The namespace that arrays of library `xp` (a module: `numpy`, `cupy`,
    `array_api_strict`, a compat namespace, …) compute with."""
    if xp is np or getattr(xp, "__name__", "") in ("numpy", "array_api_compat.numpy"):
        return np
    if not callable(getattr(xp, "asarray", None)):
        raise TypeError(
            f"expected an array library such as numpy, cupy or array_api_strict, received {xp!r}"
        )
    return namespace(xp.asarray([0.0]))


def device_of(x: Any) -> Any:
    """The device `x` lives on (``"cpu"`` for NumPy)."""
    if isinstance(x, np.ndarray):
        return "cpu"
    return _compat().device(x)


def to_numpy(x: Any) -> Any:
    """A NumPy copy of an array from any backend (NumPy arrays are returned as they are);
    anything that is not an array is returned unchanged."""
    if isinstance(x, (np.ndarray, np.generic)) or not hasattr(x, "shape"):
        return x
    compat = _compat()
    if compat.is_cupy_array(x):
        return x.get()
    if compat.is_torch_array(x):
        return x.detach().cpu().numpy()
    module = type(x).__module__.split(".")[0]
    if module == "array_api_strict":
        strict = sys.modules["array_api_strict"]
        return np.asarray(x.to_device(strict.Device("CPU_DEVICE")))
    return np.asarray(compat.to_device(x, "cpu"))


def to_device(x: Any, xp: Any, device: Any = None, dtype: Any = None) -> Any:
    """Host array `x` in namespace `xp` on `device`, with `dtype` (a NumPy dtype) if given."""
    if dtype is not None:
        x = np.asarray(x).astype(dtype, copy=False)
    if xp is np:
        return np.asarray(x)
    return xp.asarray(np.ascontiguousarray(x), device=device)


def like(x: Any, ref: Any) -> Any:
    """`x` in the namespace and on the device of `ref` (unchanged when it is there)."""
    if isinstance(ref, np.ndarray):
        return to_numpy(x)
    xp = namespace(ref)
    if is_numpy(x) or not hasattr(x, "shape"):
        return xp.asarray(np.asarray(x), device=device_of(ref))
    if namespace(x) is xp and device_of(x) == device_of(ref):
        return x
    return xp.asarray(to_numpy(x), device=device_of(ref))


def assign(dest: Any, value: Any) -> None:
    """``dest[...] = value`` in place, moving `value` to `dest`'s backend first."""
    dest[...] = like(value, dest)


def copy(x: Any) -> Any:
    """A copy of array `x`, in its own namespace."""
    if isinstance(x, np.ndarray):
        return x.copy()
    return namespace(x).asarray(x, copy=True)


def host_dtype(dtype: Any) -> np.dtype:
    """The NumPy dtype of the same name as `dtype` (of any array library)."""
    try:
        return np.dtype(dtype)
    except TypeError:
        name = getattr(dtype, "name", None) or str(dtype).rsplit(".", 1)[-1]
        return np.dtype(name)


def dtype_of(xp: Any, dtype: Any) -> Any:
    """The dtype of namespace `xp` named like NumPy dtype `dtype`."""
    if xp is np:
        return np.dtype(dtype)
    return getattr(xp, np.dtype(dtype).name)


def host_stand_in(x: Any) -> np.ndarray:
    """A read-only NumPy array of `x`'s shape and dtype that allocates nothing: what a
    layer's `_setup_layer` reads (shape, dtype) when its real input lives on a device."""
    return np.broadcast_to(np.zeros((), dtype=host_dtype(x.dtype)), tuple(x.shape))


def convert_tree(value: Any, convert: Callable[[Any], Any]) -> Any:
    """`value` with every array in it (alone, or in lists, tuples and dicts) replaced by
    ``convert(array)``; other objects are returned as they are."""
    if isinstance(value, np.ndarray) or (hasattr(value, "shape") and is_array(value)):
        return convert(value)
    if isinstance(value, list):
        return [convert_tree(v, convert) for v in value]
    if isinstance(value, tuple):
        return tuple(convert_tree(v, convert) for v in value)
    if isinstance(value, dict):
        return {k: convert_tree(v, convert) for k, v in value.items()}
    return value


def converter(xp: Any, device: Any = None) -> Callable[[Any], Any]:
    """A function that moves an array to namespace `xp` on `device` (to the host for NumPy)."""
    if xp is np:
        return to_numpy

    def convert(x: Any) -> Any:
        if not is_numpy(x) and namespace(x) is xp and (device is None or device_of(x) == device):
            return x
        return xp.asarray(np.ascontiguousarray(to_numpy(x)), device=device)

    return convert


# --- windows: convolution and pooling ------------------------------------------------------


def pad_images(x: Any, pad: Padding, fill: float = 0.0) -> Any:
    """(N, C, H, W) `x` padded with `fill`: (top, bottom, left, right) rows and columns."""
    top, bottom, left, right = pad
    if not any(pad):
        return x
    if isinstance(x, np.ndarray):
        return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=fill)
    xp = namespace(x)
    n, c, h, w = x.shape
    padded = xp.full(
        (n, c, h + top + bottom, w + left + right), fill, dtype=x.dtype, device=device_of(x)
    )
    padded[:, :, top : top + h, left : left + w] = x
    return padded


def window_slices(x: Any, kernel: tuple[int, int], stride: int) -> tuple[list[Any], int, int]:
    """The kh·kw strided slices (N, C, Ho, Wo) of padded `x`, one per kernel offset."""
    kh, kw = kernel
    ho = (x.shape[2] - kh) // stride + 1
    wo = (x.shape[3] - kw) // stride + 1
    slices = [
        x[:, :, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride]
        for i in range(kh)
        for j in range(kw)
    ]
    return slices, ho, wo


def windows(x: Any, kernel: tuple[int, int], stride: int, pad: Padding, fill: float = 0.0) -> Any:
    """The (N, C, Ho, Wo, kh, kw) windows of padded input `x`: a strided view in NumPy,
    a stack of kh·kw strided slices elsewhere."""
    x = pad_images(x, pad, fill)
    if isinstance(x, np.ndarray):
        view = np.lib.stride_tricks.sliding_window_view(x, kernel, axis=(2, 3))
        return view[:, :, ::stride, ::stride]
    xp = namespace(x)
    slices, ho, wo = window_slices(x, kernel, stride)
    n, c = x.shape[:2]
    return xp.reshape(xp.stack(slices, axis=-1), (n, c, ho, wo, *kernel))


def im2col(x: Any, kernel: tuple[int, int], stride: int, pad: Padding) -> tuple[Any, int, int]:
    """The channels-major im2col matrix of `x`, (C·kh·kw, N·Ho·Wo), and (Ho, Wo).

    Row (c, i, j) holds offset (i, j) of channel c for every output pixel of every image."""
    n, c = x.shape[:2]
    kh, kw = kernel
    compiled = kernel_for("im2col", x)
    if compiled is not None:  # scratchdl[fast]: one compiled pass, the same matrix
        top, bottom, left, right = pad
        ho = (x.shape[2] + top + bottom - kh) // stride + 1
        wo = (x.shape[3] + left + right - kw) // stride + 1
        cols = np.empty((c * kh * kw, n, ho, wo), dtype=x.dtype)
        # the planes in memory order: a (C, N, H, W)-ordered input (a pooled convolution
        # output) read through its (N, C) view took 1.5x as long (measured)
        order = _planes_in_memory_order(x)
        compiled(x.transpose(order), kh, kw, stride, top, left, order[0] == 1, cols)
        return cols.reshape(c * kh * kw, n * ho * wo), ho, wo
    if isinstance(x, np.ndarray):
        view = windows(x, kernel, stride, pad)
        ho, wo = view.shape[2:4]
        # (C, kh, kw, N, Ho, Wo) -> (C*kh*kw, N*Ho*Wo): the one copy of the input
        return view.transpose(1, 4, 5, 0, 2, 3).reshape(c * kh * kw, n * ho * wo), ho, wo
    xp = namespace(x)
    slices, ho, wo = window_slices(pad_images(x, pad, 0.0), kernel, stride)
    stacked = xp.stack([xp.permute_dims(s, (1, 0, 2, 3)) for s in slices], axis=1)
    return xp.reshape(stacked, (c * kh * kw, n * ho * wo)), ho, wo


def col2im(
    grad_cols: Any,
    input_shape: tuple[int, ...],
    kernel: tuple[int, int],
    stride: int,
    pad: Padding,
    out_size: tuple[int, int],
) -> Any:
    """The adjoint of `im2col`: (C·kh·kw, N·Ho·Wo) gradients back to an (N, C, H, W) input
    gradient, adding each window's share at its place (kh·kw strided additions, or one
    compiled pass with ``scratchdl[fast]``, with the same bits)."""
    xp = namespace(grad_cols)
    n, c, h, w = input_shape
    kh, kw = kernel
    ho, wo = out_size
    top, bottom, left, right = pad
    shape = (c, n, h + top + bottom, w + left + right)
    compiled = kernel_for("col2im", grad_cols)
    if compiled is not None:
        padded = np.zeros(shape, dtype=grad_cols.dtype)
        cols = np.ascontiguousarray(grad_cols).reshape(c * kh * kw, n, ho, wo)
        compiled(cols, kh, kw, stride, padded)
    else:
        grad_windows = xp.reshape(grad_cols, (c, kh, kw, n, ho, wo))
        padded = xp.zeros(shape, dtype=grad_cols.dtype, device=device_of(grad_cols))
        for i in range(kh):
            for j in range(kw):
                rows = slice(i, i + stride * (ho - 1) + 1, stride)
                cols_ = slice(j, j + stride * (wo - 1) + 1, stride)
                padded[:, :, rows, cols_] += grad_windows[:, i, j, ...]
    return xp.permute_dims(padded[:, :, top : top + h, left : left + w], (1, 0, 2, 3))


def scatter_windows(
    grad_windows: Any, input_shape: tuple[int, ...], stride: int, pad: Padding
) -> Any:
    """The adjoint of `windows`: add each window's gradient back at its place in the input.

    `grad_windows` is (N, C, Ho, Wo, kh, kw); one vectorised addition per kernel offset."""
    xp = namespace(grad_windows)
    n, c, h, w = input_shape
    top, bottom, left, right = pad
    _, _, ho, wo, kh, kw = grad_windows.shape
    padded = xp.zeros(
        (n, c, h + top + bottom, w + left + right),
        dtype=grad_windows.dtype,
        device=device_of(grad_windows),
    )
    for i in range(kh):
        for j in range(kw):
            rows = slice(i, i + stride * (ho - 1) + 1, stride)
            cols = slice(j, j + stride * (wo - 1) + 1, stride)
            padded[:, :, rows, cols] += grad_windows[:, :, :, :, i, j]
    return padded[:, :, top : top + h, left : left + w]


# --- scatter-add ------------------------------------------------------------------------------


#: The largest one-hot matrix `scatter_add_rows` builds at once on a generic backend.
ONE_HOT_ENTRIES = 2**24


def scatter_add_rows(shape: tuple[int, int], ids: Any, values: Any) -> Any:
    """A (rows, dim) array of zeros with ``values[k]`` added to row ``ids[k]`` for each k
    (rows used several times get the sum). `ids` is 1-D, `values` is (len(ids), dim)."""
    if isinstance(values, np.ndarray):
        out = np.zeros(shape, dtype=values.dtype)
        np.add.at(out, ids, values)
        return out
    compat = _compat()
    xp = namespace(values)
    if compat.is_cupy_array(values):
        import cupyx  # type: ignore[import-not-found]

        out = xp.zeros(shape, dtype=values.dtype, device=device_of(values))
        cupyx.scatter_add(out, ids, values)
        return out
    if compat.is_torch_array(values):
        out = xp.zeros(shape, dtype=values.dtype, device=device_of(values))
        return out.index_add_(0, ids, values)
    # a one-hot product, in chunks of ids whose one-hot matrix stays under ONE_HOT_ENTRIES
    classes = xp.arange(shape[0], dtype=ids.dtype, device=device_of(ids))
    step = max(1, ONE_HOT_ENTRIES // max(shape[0], 1))
    out = xp.zeros(shape, dtype=values.dtype, device=device_of(values))
    for start in range(0, ids.shape[0], step):
        stop = min(start + step, ids.shape[0])
        one_hot = xp.astype(ids[start:stop, None] == classes, values.dtype)
        out += xp.matrix_transpose(one_hot) @ values[start:stop, ...]
    return out


# --- compiled kernels (scratchdl[fast]) -------------------------------------------------------

_fast: dict[str, Any] = {}


def set_fast(enabled: bool) -> None:
    """Use the compiled kernels when numba is installed (True, the default unless
    ``SCRATCHDL_FAST=0``), or only the NumPy code (False)."""
    _fast["enabled"] = bool(enabled)


def fast_kernels() -> Any:
    """The compiled kernels module, or None: numba not installed, or turned off."""
    enabled = _fast.get("enabled")
    if enabled is None:
        enabled = _fast["enabled"] = os.environ.get("SCRATCHDL_FAST", "1") != "0"
    if not enabled:
        return None
    if "module" not in _fast:
        try:
            from scratchdl import _kernels
        except ImportError:  # numba is not installed: the NumPy code runs
            _kernels = None  # type: ignore[assignment]
        _fast["module"] = _kernels
    return _fast["module"]


def kernel_for(name: str, *arrays: Any) -> Callable[..., None] | None:
    """The compiled kernel `name` when the kernels are on and `arrays` are NumPy arrays of
    one floating dtype (the kernels compute in it), else None (then the NumPy code runs)."""
    first = arrays[0]
    if type(first) is not np.ndarray or first.dtype not in _FLOATS:
        return None
    dtype = first.dtype
    for a in arrays:  # a loop, not any(...): this runs before every kernel call
        if type(a) is not np.ndarray or a.dtype != dtype:
            return None
    kernels = fast_kernels()
    return None if kernels is None else getattr(kernels, name)


def _planes_in_memory_order(x: np.ndarray) -> tuple[int, int, int, int]:
    """The axis order that puts the first two axes of 4-D `x` in memory order, outer
    first: (1, 0, 2, 3) when its channels are outer (the (C, N, H, W) memory a convolution
    writes), else (0, 1, 2, 3). A kernel that loops over the planes of the permuted views
    then walks memory forwards; looping over (N, C) on channel-major memory took 3.7x as
    long for a 2×2 max-pool (measured). Each order is its own inverse."""
    return (1, 0, 2, 3) if abs(x.strides[1]) > abs(x.strides[0]) else (0, 1, 2, 3)


def _flat_views(*arrays: np.ndarray) -> list[np.ndarray] | None:
    """1-D views of `arrays` over their memory, in one element order, when they have one
    shape, one dtype and one dense layout (any permutation of the axes); None otherwise."""
    first = arrays[0]
    shape, dtype = first.shape, first.dtype
    for a in arrays:  # the common case first, in a plain loop: this runs before every call
        if not a.flags.c_contiguous or a.shape != shape or a.dtype != dtype:
            break
    else:
        return [a.ravel() for a in arrays]
    order = sorted(range(first.ndim), key=lambda k: -abs(first.strides[k]))
    views = []
    for a in arrays:
        if a.shape != first.shape or a.strides != first.strides or a.dtype != first.dtype:
            return None
        dense = a.transpose(order)
        if not dense.flags.c_contiguous:
            return None
        views.append(dense.reshape(-1))
    return views


def max_pool_2x2(x: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(max over the 2×2 tiles, offset of each tile's first maximum) of a floating NumPy
    (N, C, H, W) array through the compiled kernel, or None when it does not apply. Both
    come back in `x`'s plane order: channel-major memory stays channel-major, which the
    next convolution's im2col also reads in order."""
    compiled = kernel_for("max_pool_2x2", x)
    if compiled is None:
        return None
    order = _planes_in_memory_order(x)
    n, c, h, w = x.shape
    shape = (n, c, h // 2, w // 2)
    planes = tuple(shape[k] for k in order)
    out = np.empty(planes, dtype=x.dtype)
    which = np.empty(planes, dtype=np.uint8)
    compiled(x.transpose(order), out, which)
    return out.transpose(order), which.transpose(order)


def max_pool_2x2_backward(grad: np.ndarray, which: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The input gradient of `max_pool_2x2` of `x`: each tile's gradient at its winner, in
    `x`'s memory layout (as ``np.zeros_like(x)``), so that the next backward pass reads
    both its arrays in one order. `grad` may have any layout."""
    out = np.empty_like(x, dtype=grad.dtype)
    order = _planes_in_memory_order(out)
    fast_kernels().max_pool_2x2_backward(
        grad.transpose(order), which.transpose(order), out.transpose(order)
    )
    return out


def adam_update(
    param: np.ndarray,
    grad: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    betas: tuple[float, float],
    inv_sqrt_correction2: float,
    eps: float,
    step: float,
) -> bool:
    """One Adam update of `param`, `m` and `v` in place by the compiled one-pass kernel (the
    bits of the NumPy passes in `Adam._update_rule`); False, changing nothing, when the
    kernels are off or do not apply (then the NumPy code runs). The modern small CNN's
    update of 207,000 float32 parameters took 0.30 ms a step in NumPy's thirteen passes and
    0.10 ms in the kernel (`Adam.step`, one thread, medians of 300)."""
    compiled = kernel_for("adam_update", param, grad, m, v)
    if compiled is None or param.size == 0:
        return False
    flat = _flat_views(param, grad, m, v)
    if flat is None:
        return False
    beta1, beta2 = betas
    cast = param.dtype.type
    compiled(*flat, cast(beta1), cast(1 - beta1), cast(beta2), cast(1 - beta2),
             cast(inv_sqrt_correction2), cast(eps), cast(step))  # fmt: skip
    return True


def momentum_update(
    param: np.ndarray,
    grad: np.ndarray,
    velocity: np.ndarray,
    lr: float,
    momentum: float,
    nesterov: bool,
) -> bool:
    """One SGD-with-momentum update of `param` and `velocity` in place by the compiled
    one-pass kernel (the bits of the NumPy passes in `SGDMomentum._update_rule`); False,
    changing nothing, when the kernels are off or do not apply (then the NumPy code runs).
    The book's MLP's four arrays took 21-27 µs a step this way (the kernel itself 12-15,
    the rest these checks and four calls) against 24-30 µs for NumPy's four passes and the
    temporary they need (measured alone, one thread)."""
    compiled = kernel_for("momentum_update", param, grad, velocity)
    if compiled is None or param.size == 0:
        return False
    flat = _flat_views(param, grad, velocity)
    if flat is None:
        return False
    cast = param.dtype.type
    compiled(*flat, cast(lr), cast(momentum), bool(nesterov))
    return True


def softmax_cross_entropy(
    z: np.ndarray, target: np.ndarray, floor: float
) -> tuple[np.ndarray, float] | None:
    """The softmax of the (rows, classes) logits `z` and the summed cross-entropy of its
    rows, as `SoftmaxCrossEntropy._output` computes them with NumPy, the same bits: two
    compiled passes around NumPy's own `exp` and `log` (numba's are not vectorised here
    and round differently). `target` is either class labels (rows,) of `np.intp` in
    [0, classes), or probability rows of `z`'s shape and dtype (one-hot, as the book
    passes them); the loss has checked it, this does not. `floor` (negative) bounds the
    shifted logits from below. None when the kernels are off or do not apply."""
    compiled = kernel_for("softmax_shift", z)
    if compiled is None or z.ndim != 2 or z.size == 0 or not _fits_softmax(z, target):
        return None
    kernels = fast_kernels()
    rows = z.shape[0]
    dtype = z.dtype.type
    exp = np.empty(z.shape, dtype=z.dtype)
    maxes = np.empty(rows, dtype=z.dtype)
    compiled(z, dtype(floor), exp, maxes)
    np.exp(exp, out=exp)
    sums = np.empty(rows, dtype=z.dtype)
    labels = target.ndim == 1
    picked = np.empty(rows if labels else 0, dtype=z.dtype)
    kernels.softmax_normalise(exp, z, maxes, target if labels else _NO_LABELS, sums, picked)
    np.log(sums, out=sums)
    if labels:
        first = kernels.pairwise_sum(sums, 0, rows)
        second = kernels.pairwise_sum(picked, 0, rows)
    else:
        first, second = kernels.softmax_target_sums(target, z, maxes, sums)
    return exp, float(first) - float(second)  # as NumPy: each sum in the dtype, then float64


def softmax_cross_entropy_grad(
    softmax: np.ndarray, target: np.ndarray, scale: float
) -> np.ndarray | None:
    """``(softmax - target) * scale`` for (rows, classes) `softmax` in one compiled pass,
    `target` as for `softmax_cross_entropy` (labels stand for one-hot rows), with the bits
    of `SoftmaxCrossEntropy._input_grad`'s NumPy code; None when the kernels are off or do
    not apply."""
    compiled = kernel_for("softmax_cross_entropy_grad", softmax)
    if compiled is None or softmax.ndim != 2 or not _fits_softmax(softmax, target):
        return None
    out = np.empty(softmax.shape, dtype=softmax.dtype)
    dtype = softmax.dtype.type
    if target.ndim == 1:
        compiled(softmax, target, dtype(1), dtype(scale), out)
    else:
        fast_kernels().softmax_minus_target(softmax, target, dtype(scale), out)
    return out


_NO_LABELS = np.empty(0, dtype=np.intp)


def _fits_softmax(z: np.ndarray, target: np.ndarray) -> bool:
    """Whether `target` is labels (rows,) of `np.intp` or probability rows like `z`."""
    if type(target) is not np.ndarray:
        return False
    if target.ndim == 1:
        return target.dtype == np.intp and target.shape[0] == z.shape[0]
    return target.shape == z.shape and target.dtype == z.dtype


def relu(x: np.ndarray) -> np.ndarray | None:
    """``np.maximum(x, 0)`` in one compiled pass (the same bits), in `x`'s layout, for a
    dense floating NumPy array; None when the kernels are off or do not apply."""
    compiled = kernel_for("relu", x)
    if compiled is None or x.size == 0:
        return None
    out = np.empty_like(x)
    flat = _flat_views(x, out)
    if flat is None:
        return None
    compiled(flat[0], x.dtype.type(0), flat[1])
    return out


def relu_backward(grad: np.ndarray, x: np.ndarray) -> np.ndarray | None:
    """``grad * (x > 0)`` in one compiled pass (the same bits), for dense floating NumPy
    arrays of one shape, dtype and layout; None when the kernels are off or do not apply."""
    compiled = kernel_for("relu_backward", grad, x)
    if compiled is None or x.size == 0:
        return None
    out = np.empty_like(x)
    flat = _flat_views(grad, x, out)
    if flat is None:
        return None
    one, zero = x.dtype.type(1), x.dtype.type(0)
    compiled(flat[0], flat[1], one, zero, flat[2])
    return out


def tanh_backward(grad: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """``grad * (1 - y * y)`` in one compiled pass (the same bits), in `y`'s memory layout,
    for floating NumPy arrays of one shape and dtype and at most four axes in any layouts;
    None when the kernels are off or do not apply (then the NumPy expression runs)."""
    compiled = kernel_for("tanh_backward", grad, y)
    if compiled is None or grad.shape != y.shape or grad.ndim > 4 or grad.size == 0:
        return None
    out = np.empty_like(y)
    lead = (None,) * (4 - grad.ndim)  # views with leading axes of length 1
    compiled(grad[lead], y[lead], grad.dtype.type(1), out[lead])
    return out


#: A stride-1 convolution with at most this many filters takes the direct kernels
#: (`conv2d_direct`); with more, im2col and one BLAS product are faster (measured below).
DIRECT_CONV_MAX_FILTERS = 15


def conv2d_direct(
    x: np.ndarray, filters: np.ndarray, stride: int, pad: Padding
) -> tuple[np.ndarray, np.ndarray, int] | None:
    """A stride-1 convolution of (N, C, H, W) `x` by the compiled direct kernel, without
    an im2col matrix: (the C-contiguous (N, F, Ho, Wo) output, the padded input flattened
    to (N, C, Hp·Wp) for the backward pass, the padded width Wp). None when it does not
    apply: the kernels off, not NumPy floats of one dtype, a stride other than 1, or more
    than `DIRECT_CONV_MAX_FILTERS` filters.

    With few filters im2col's matrix costs more than the product: the book's chapter-7
    network's second convolution (14 -> 7 channels, 5×5, a (60, 14, 28, 28) batch) wrote
    a 66 MB matrix and took 15.0 ms forward and 22.4 ms backward that way, against 2.6 and
    4.4 ms direct (one thread, measured). With 16 filters neither won everywhere: the
    direct loops took 0.56-0.91x im2col's time on one thread but 0.69-1.24x with two BLAS
    threads, which im2col's product uses and these loops do not (1, 8 and 16 channels
    in; one channel in is the first layer of the book's CNN and of the modern one); with
    32 filters (16 -> 32, 3×3) im2col took 0.78x and 0.65x their time. So 16 filters
    and more keep im2col. The result agrees with im2col's to rounding, not bit for bit
    (another order of summation)."""
    compiled = kernel_for("conv_rows", x, filters)
    if compiled is None or stride != 1 or filters.shape[0] > DIRECT_CONV_MAX_FILTERS:
        return None
    n, c, h, w = x.shape
    f, _, kh, kw = filters.shape
    top, bottom, left, right = pad
    hp, wp = h + top + bottom, w + left + right
    padded = np.zeros((n, c, hp, wp), dtype=x.dtype)
    padded[:, :, top : top + h, left : left + w] = x
    flat = padded.reshape(n, c, hp * wp)
    out = np.empty((n, f, hp - kh + 1, wp - kw + 1), dtype=x.dtype)
    compiled(flat, 0, np.ascontiguousarray(filters), wp, 0, out)
    return out, flat, wp


def conv2d_direct_filter_grad(
    grad: np.ndarray, flat: np.ndarray, wp: int, filter_shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """The filter gradient of `conv2d_direct` from the (N, F, Ho, Wo) output gradient, and
    that gradient laid out for `conv2d_direct_input_grad`: flattened rows of width `wp`,
    zero in the dropped columns, after (kh-1)·wp + kw-1 zeros (so that the input gradient
    is the same kernel's convolution of it with the flipped filters)."""
    n, f, ho, wo = grad.shape
    _, _, kh, kw = filter_shape
    lead = (kh - 1) * wp + kw - 1
    # room for every read `conv2d_direct_input_grad` makes past the last row
    total = lead + ho * wp + (kh - 1) * wp + kw
    wide = np.zeros((n, f, total), dtype=grad.dtype)
    rows = wide[:, :, lead : lead + ho * wp].reshape(n, f, ho, wp)
    rows[:, :, :, :wo] = grad
    out = np.empty(filter_shape, dtype=grad.dtype)
    length = (ho - 1) * wp + wo
    fast_kernels().conv_filter_grad(wide, lead, length, flat, wp, grad.dtype.type(0), out)
    return out, wide


def conv2d_direct_input_grad(
    wide: np.ndarray, wp: int, filters: np.ndarray, input_shape: tuple[int, ...], pad: Padding
) -> np.ndarray:
    """The (N, C, H, W) input gradient of `conv2d_direct`, from the output gradient as
    `conv2d_direct_filter_grad` lays it out: the direct kernel again, with the filters
    flipped and their channel axes swapped (a convolution's adjoint)."""
    top, _, left, _ = pad
    flipped = np.ascontiguousarray(filters.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
    out = np.empty(input_shape, dtype=wide.dtype)
    fast_kernels().conv_rows(wide, top * wp, flipped, wp, left, out)
    return out


#: Elements per counter block of a dropout mask: element i is hashed from its index in its
#: block, with the block's own keys, so no two elements of one mask share a hash input.
DROPOUT_BLOCK = 2**32


def dropout(
    values: np.ndarray, keys: tuple[tuple[int, int], ...], threshold: int, scale: float
) -> np.ndarray | None:
    """`values` times the dropout mask of `keys` (`ops.dropout.dropout_mask`: `scale` where
    an element is kept, 0 elsewhere) in one compiled pass per block of elements, drawing
    the mask as it goes; the same bits as ``values * dropout_mask(...)``, in C order. None
    when the kernels are off or do not apply (then the NumPy code runs)."""
    compiled = kernel_for("dropout", values)
    if compiled is None:
        return None
    flat = np.ascontiguousarray(values).reshape(-1)
    out = np.empty(values.shape, dtype=values.dtype)
    target, scale = out.reshape(-1), values.dtype.type(scale)
    for block, (multiplier, offset) in enumerate(keys):
        part = slice(block * DROPOUT_BLOCK, (block + 1) * DROPOUT_BLOCK)
        compiled(flat[part], multiplier, offset, threshold, scale, target[part])
    return out


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
