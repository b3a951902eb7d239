"""The C library's scalar functions by symbol, for rules that must round
as XLA's CPU backend does (it calls libm's ``cbrt``/``cbrtf`` and contracts
``a * b + c * d`` into ``fma(a, b, c * d)``), each with its CUDA variant
(CUDA's ``fma``; a cube root from pow and a Newton step).

Where a rule's update is a difference of nearby numbers (``x_new - p`` in
madgrad and schedule_free), an ulp of either shows in float32 updates, so
these are not details.
"""
import math

from numba import types as nbtypes
from numba.extending import overload

from ._jit import cuda, cuda_variant, rule

# The C library's functions by symbol (no address is baked into cached code).
# numba's own np.cbrt computes float32 through float64 cbrt, which rounds
# differently from cbrtf (11% of float32 inputs), so call cbrtf directly.
_cbrt64 = nbtypes.ExternalFunction("cbrt", nbtypes.float64(nbtypes.float64))
_cbrt32 = nbtypes.ExternalFunction("cbrtf", nbtypes.float32(nbtypes.float32))
_fma64 = nbtypes.ExternalFunction("fma", nbtypes.float64(nbtypes.float64, nbtypes.float64,
                                                         nbtypes.float64))
_fma32 = nbtypes.ExternalFunction("fmaf", nbtypes.float32(nbtypes.float32, nbtypes.float32,
                                                          nbtypes.float32))


def libm_cbrt(x):
    """libm's ``cbrt`` (float64) or ``cbrtf`` (float32) of a real x. As
    Python (numba disabled): ``x ** (1/3)`` for x >= 0, an ulp or so off."""
    return x ** (1.0 / 3.0) if x >= 0 else -((-x) ** (1.0 / 3.0))


@overload(libm_cbrt)
def _libm_cbrt_impl(x):
    if x == nbtypes.float32:
        return lambda x: _cbrt32(x)
    return lambda x: _cbrt64(x)


def libm_fma(a, b, c):
    """libm's ``fma``/``fmaf``: a * b + c rounded once. As Python (numba
    disabled): rounded twice."""
    return a * b + c


@overload(libm_fma)
def _libm_fma_impl(a, b, c):
    if a == nbtypes.float32 and b == nbtypes.float32 and c == nbtypes.float32:
        return lambda a, b, c: _fma32(a, b, c)
    return lambda a, b, c: _fma64(a, b, c)


@rule
def fused_multiply_add(a, b, c):
    """a * b + c with one rounding, where XLA contracts and LLVM would pick
    the other product (``c * z + m * p``: XLA fuses ``c * z``)."""
    return libm_fma(a, b, c)


@cuda_variant(fused_multiply_add)
def fused_multiply_add_gpu(a, b, c):
    return cuda.fma(a, b, c)


@rule
def cube_root(x, third):
    """The real cube root of x, in x's dtype: libm's, as XLA's CPU backend
    (``third``, 1/3 in x's dtype, is for the GPU variant)."""
    return libm_cbrt(x)


@cuda_variant(cube_root)
def cube_root_gpu(x, third):
    """libdevice's cbrt seeds with ``lg2.approx`` (an instruction the PTX
    check refuses), so: ``x ** third`` (libdevice's precise pow, 2-3 ulps
    off: 1/3 is rounded) and one Newton step, all in x's dtype (0, inf and
    NaN pass through)."""
    y = x ** third
    if y > 0 and y * y * y < math.inf:
        y = y - (y * y * y - x) / ((y + y + y) * y)
    return y
