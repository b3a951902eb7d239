"""The compilation policy of every npopt kernel, in one place.

* CPU: ``numba.njit(cache=True, nogil=True, error_model='numpy',
  fastmath={'contract'})``. ``error_model='numpy'`` lets loops vectorise (the
  default 'python' model was 4-11x slower); the only fast-math flag is FMA
  contraction, which jitted XLA and the CUDA compiler apply as well, so the
  three targets round alike. Nothing else (no reassociation, no
  finite-math assumptions): exact numerics are the point of npopt.
* Every loop is compiled twice from the same source: serially, and with
  ``parallel=True`` (its ``prange`` becomes a thread pool) for arrays of at
  least ``PARALLEL_THRESHOLD`` elements. Thread start-up costs microseconds,
  so small arrays stay serial. Set ``NPOPT_PARALLEL_THRESHOLD`` (or
  ``npopt.kernels._jit.PARALLEL_THRESHOLD``) to tune it; a huge value forces
  serial kernels.
* CUDA: ``numba.cuda.jit(cache=True)`` without signatures, so nothing is
  compiled before an array lives on a device. Kernels call the same scalar
  ``rule`` functions as the CPU loops. ``numba.cuda`` is optional (the
  ``cuda`` extra): without it, ``cuda`` below is None and CUDA kernels raise
  when launched.
* Compilation is lazy and per dtype: float32 and float64 are the only
  specialisations that occur.
"""
import os
import types

from numba import njit

try:  # the CUDA target is optional (pip install npopt[cuda])
    from numba import cuda
except ImportError:  # pragma: no cover - depends on the installation
    cuda = None

FASTMATH = frozenset({"contract"})
CPU_OPTIONS = dict(cache=True, nogil=True, error_model="numpy", fastmath=set(FASTMATH))
PARALLEL_THRESHOLD = int(os.environ.get("NPOPT_PARALLEL_THRESHOLD", 1 << 17))
BLOCK_SIZE = 256          # CUDA threads per block
MAX_BLOCKS = 1024         # CUDA grid cap; kernels use grid-stride loops
CHUNK = 4096              # reduction chunk: partial sums over fixed chunks, combined in order


def rule(fn):
    """A scalar update rule: called per element by CPU loops and CUDA kernels."""
    return njit(**CPU_OPTIONS)(fn)


def _renamed(fn, suffix):
    # numba names its cache files after the function's qualified name, so the
    # parallel compilation of a loop needs its own name to get its own file.
    clone = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + suffix,
                               fn.__defaults__, fn.__closure__)
    clone.__qualname__ = fn.__qualname__ + suffix
    clone.__module__ = fn.__module__
    clone.__doc__ = fn.__doc__
    return clone


class CpuKernel:
    """A CPU loop over flat arrays, serial below PARALLEL_THRESHOLD elements.

    The first argument's length decides: ``kernel(x, ...)``.
    """

    def __init__(self, fn):
        self.py_func = fn
        self.serial = njit(**CPU_OPTIONS)(fn)
        self.parallel = njit(parallel=True, **CPU_OPTIONS)(_renamed(fn, "__parallel"))
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__

    def __call__(self, *args):
        if args[0].shape[0] >= PARALLEL_THRESHOLD:
            return self.parallel(*args)
        return self.serial(*args)


def cpu_kernel(fn):
    """Decorator: compile a flat-array loop for the CPU (see CpuKernel)."""
    return CpuKernel(fn)


class CudaKernel:
    """A CUDA kernel launched over ``n`` elements with a grid-stride loop."""

    def __init__(self, fn):
        self.py_func = fn
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__
        self._kernel = None

    def __call__(self, n, *args):
        if self._kernel is None:
            if cuda is None:
                raise RuntimeError(
                    "npopt: a CUDA array was given but numba's CUDA target is not "
                    "installed; pip install 'npopt[cuda]' (numba-cuda)")
            self._kernel = cuda.jit(cache=True)(self.py_func)
        blocks = max(1, min(MAX_BLOCKS, (n + BLOCK_SIZE - 1) // BLOCK_SIZE))
        self._kernel[blocks, BLOCK_SIZE](*args)


def cuda_kernel(fn):
    """Decorator: a CUDA kernel (compiled at its first launch)."""
    return CudaKernel(fn)
