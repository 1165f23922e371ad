"""Flushing subnormal floats to zero while a network trains.

A subnormal (denormal) float is one smaller in magnitude than the smallest normal number
(1.2e-38 in float32). Many x86 processors compute with them in microcode, tens of times
more slowly, and training makes them: a tanh that saturates multiplies a small gradient by
1 - tanh², and the product drops below 1.2e-38. Measured here (2026-12-02, one thread): in
the book's chapter-5 CNN after one epoch, 22% of the nonzero gradients reaching the
convolution were subnormal, its filter-gradient product took 5.9 ms instead of 1.3 ms, and
the whole epoch took 14.0 s with IEEE arithmetic against 7.0 s with subnormals flushed
(`bench/cnn.py`, one run, both in it). The cost depends on the processor: on a later
machine (AMD EPYC, family 26) the same epoch took 4.97 s against 4.53 s.
A value that small lies far below the rounding step of any weight of useful size, and the
accuracies measured with flushing stayed within the seed ranges of IEEE runs (README,
chapter 5); it does change later bits of a run, as any change in rounding does.
TensorFlow's CPU kernels run with subnormals flushed as well; PyTorch offers
`torch.set_flush_denormal`, off by default.

`flush_denormals` sets the processor's flush-to-zero and denormals-are-zero modes (FTZ and
DAZ in the MXCSR register) for the calling thread within a block, and restores the previous
modes after it. `Trainer` does so during `fit` and `evaluate` unless
``flush_denormals=False``. The modes belong to a thread (a thread started inside the block
inherits them): the work NumPy, the compiled kernels and a one-thread BLAS do on the
calling thread is flushed; BLAS worker threads, started when NumPy loaded, keep their own
modes (the default `blas_threads="auto"` uses none below 513 rows).

Supported on x86-64 Linux, where the C library's `fegetenv`/`fesetenv` carry the MXCSR
register; elsewhere `supported()` is False and the setting does nothing. The modes are
checked after they are set (a float32 product that must underflow), and left alone if the
check fails.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import platform
import sys
from collections.abc import Iterator

import numpy as np

__all__ = ["current_modes", "flush_denormals", "modes", "supported"]

#: MXCSR bits: denormals-are-zero (inputs) and flush-to-zero (results).
_DAZ, _FTZ = 0x0040, 0x8000


class _FenvT(ctypes.Structure):
    """The C library's ``fenv_t`` on x86-64 Linux (glibc and musl): the x87 environment
    as ``fnstenv`` stores it (28 bytes), then the MXCSR register."""

    _fields_ = [("x87", ctypes.c_uint16 * 14), ("mxcsr", ctypes.c_uint32)]


_state: dict[str, object] = {}


def _libm() -> ctypes.CDLL | None:
    if "libm" not in _state:
        lib = None
        if sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64"):
            name = ctypes.util.find_library("m")
            try:
                lib = ctypes.CDLL(name or "libm.so.6")
                lib.fegetenv.argtypes = lib.fesetenv.argtypes = [ctypes.POINTER(_FenvT)]
            except (OSError, AttributeError):
                lib = None
        _state["libm"] = lib
    return _state["libm"]  # type: ignore[return-value]


def _get_mxcsr(lib: ctypes.CDLL) -> int | None:
    env = _FenvT()
    return None if lib.fegetenv(ctypes.byref(env)) != 0 else int(env.mxcsr)


def _set_mxcsr_bits(lib: ctypes.CDLL, bits: int) -> bool:
    """Set the DAZ and FTZ bits of this thread's MXCSR to those of `bits`."""
    env = _FenvT()
    if lib.fegetenv(ctypes.byref(env)) != 0:
        return False
    env.mxcsr = (env.mxcsr & ~(_DAZ | _FTZ)) | (bits & (_DAZ | _FTZ))
    return lib.fesetenv(ctypes.byref(env)) == 0


def _flushes() -> bool:
    """Whether float32 arithmetic on this thread flushes subnormal results (FTZ) and reads
    subnormal inputs (DAZ) as zero."""
    result = np.float32(2e-38) * np.float32(0.25)  # 5e-39: subnormal under IEEE rules
    subnormal = np.array([0x00400000], dtype=np.uint32).view(np.float32)  # set by its bits
    return bool(result == 0) and bool((subnormal * np.float32(1.0))[0] == 0)


def supported() -> bool:
    """Whether `flush_denormals` can set the modes on this platform (checked once)."""
    if "supported" not in _state:
        ok = False
        lib = _libm()
        if lib is not None:
            old = _get_mxcsr(lib)
            if old is not None and _set_mxcsr_bits(lib, _DAZ | _FTZ):
                ok = _flushes()
                _set_mxcsr_bits(lib, old)
        _state["supported"] = ok
    return bool(_state["supported"])


@contextlib.contextmanager
def flush_denormals(enabled: bool = True) -> Iterator[bool]:
    """Within the block, this thread flushes subnormal floats to zero (inputs and results);
    after it, the previous modes come back, also after an exception. ``enabled=False``
    leaves the modes as they are. Yields whether this block turned the modes on (False
    with ``enabled=False`` or where not `supported()`)."""
    lib = _libm() if enabled and supported() else None
    if lib is None:
        yield False
        return
    old = _get_mxcsr(lib)
    if old is None or not _set_mxcsr_bits(lib, _DAZ | _FTZ):
        yield False
        return
    try:
        yield True
    finally:
        _set_mxcsr_bits(lib, old)


def current_modes() -> int | None:
    """The calling thread's flush modes (its DAZ and FTZ bits), for `modes` to give another
    thread; None where the modes cannot be read (then `modes` does nothing)."""
    lib = _libm() if supported() else None
    if lib is None:
        return None
    bits = _get_mxcsr(lib)
    return None if bits is None else bits & (_DAZ | _FTZ)


@contextlib.contextmanager
def modes(bits: int | None) -> Iterator[None]:
    """Within the block, this thread flushes subnormals as the thread that called
    `current_modes` did (a worker thread computing part of a batch for it); the previous
    modes come back after it. None leaves the modes alone."""
    lib = _libm() if bits is not None else None
    old = None if lib is None else _get_mxcsr(lib)
    if lib is None or old is None or (old & (_DAZ | _FTZ)) == bits:
        yield
        return
    _set_mxcsr_bits(lib, bits)  # type: ignore[arg-type]
    try:
        yield
    finally:
        _set_mxcsr_bits(lib, old)
