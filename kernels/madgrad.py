"""MADGRAD (Defazio & Jelassi, 2021, arXiv:2101.11075), optax.contrib's
``scale_by_madgrad``: momentumized dual averaging with a cube-root
denominator, as an update relative to the params::

    G     = G + lamb * g*g            lamb = (lr + eps) * sqrt(k + 1), host
    s     = s + lamb * g
    z     = x0 - s / (cbrt(G) + eps)
    u     = fma(c, z, m * p) - p      c = 1 - m (m: momentum), rounded from float64

``cbrt`` is ``cube_root``: the C library's ``cbrt``/``cbrtf`` on the CPU,
which is what XLA calls (bit for bit: ``u = x_new - p`` cancels, and an ulp
of ``z`` shows in float32 updates), libdevice's ``__nv_cbrt(f)`` on the GPU;
``fma`` is an explicit fused multiply-add (libm's ``fma(f)``, CUDA's
``fma``), the contraction XLA makes: LLVM contracted ``m * p`` instead, and
a quarter of the float32 first updates differed.
"""
from numba import prange
from numba import types as nbtypes
from numba.extending import overload

from ._jit import cpu_kernel, cuda, cuda_kernel, cuda_variant, rule

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
def cube_root(x):
    """The real cube root of x, in x's dtype (libm's, as XLA's CPU backend)."""
    return libm_cbrt(x)


@cuda_variant(cube_root)
def cube_root_gpu(x):
    return cuda.cbrt(x)


@rule
def madgrad_rule(g, gsq, s, x0, p, hp):
    """One element of scale_by_madgrad. Returns (u, gsq, s).

    hp = (lamb, eps, c, m), of the leaf dtype.
    """
    lamb, eps, c, m = hp
    gsq = gsq + lamb * (g * g)
    s = s + lamb * g
    z = x0 - s / (cube_root(gsq) + eps)
    return fused_multiply_add(c, z, m * p) - p, gsq, s


@cpu_kernel
def madgrad_cpu(g, gsq, s, x0, p, dst, hp):
    """MADGRAD over flat arrays.

    In place: gsq and s are overwritten with the new sums, dst receives the
    update; g, x0, p are read. All arrays 1-D, contiguous, length n, of one
    dtype; dst distinct from the others.
    """
    for i in prange(g.shape[0]):
        u, a, b = madgrad_rule(g[i], gsq[i], s[i], x0[i], p[i], hp)
        gsq[i] = a
        s[i] = b
        dst[i] = u


@cuda_kernel
def madgrad_cuda(g, gsq, s, x0, p, dst, hp):
    for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
        u, a, b = madgrad_rule(g[i], gsq[i], s[i], x0[i], p[i], hp)
        gsq[i] = a
        s[i] = b
        dst[i] = u
