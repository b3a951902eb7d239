"""MADGRAD (Defazio & Jelassi, 2021, arXiv:2101.11075), optax.contrib's
``scale_by_madgrad``: momentumized dual averaging with a cube-root
denominator, as an update relative to the params::

    g     = g + wd * p                (the alias's add_decayed_weights, fused step)
    G     = G + lamb * g*g            lamb = (lr + eps) * sqrt(k + 1), host
    s     = s + lamb * g
    z     = x0 - s / (cbrt(G) + eps)
    u     = fma(c, z, m * p) - p      c = 1 - m (m: momentum), rounded from float64

``cbrt`` is ``cube_root``: the C library's ``cbrt``/``cbrtf`` on the CPU,
which is what XLA calls (bit for bit: ``u = x_new - p`` cancels, and an ulp
of ``z`` shows in float32 updates), on the GPU pow and a Newton step (see
``libm.cube_root_gpu``: within an ulp or two of libm's);
``fma`` is an explicit fused multiply-add (libm's ``fma(f)``, CUDA's
``fma``), the contraction XLA makes: LLVM contracted ``m * p`` instead, and
a quarter of the float32 first updates differed.
"""
from numba import prange

from ._jit import cpu_kernel, cuda, cuda_kernel, rule
from .libm import cube_root, fused_multiply_add


@rule
def madgrad_rule(g, gsq, s, x0, p, hp):
    """One element of scale_by_madgrad. Returns (u, gsq, s).

    hp = (lamb, eps, c, m, third, wd), of the leaf dtype (third = 1/3; wd:
    the weight decay of a fused step, 0 in ``update``).
    """
    lamb, eps, c, m, third, wd = hp
    if wd != 0:
        g = g + wd * p
    gsq = gsq + lamb * (g * g)
    s = s + lamb * g
    z = x0 - s / (cube_root(gsq, third) + eps)
    return fused_multiply_add(c, z, m * p) - p, gsq, s


@cpu_kernel
def madgrad_cpu(g, gsq, s, x0, p, dst, hp, fused):
    """MADGRAD over flat arrays.

    In place: gsq and s are overwritten with the new sums; dst receives the
    update u or, when ``fused``, ``p + u`` (apply_updates; dst may then be
    p itself); g, x0, p are read. All arrays 1-D, contiguous, length n, of
    one dtype.
    """
    for i in prange(g.shape[0]):
        pi = p[i]
        u, a, b = madgrad_rule(g[i], gsq[i], s[i], x0[i], pi, hp)
        gsq[i] = a
        s[i] = b
        dst[i] = pi + u if fused else u


@cuda_kernel
def madgrad_cuda(g, gsq, s, x0, p, dst, hp, fused):
    for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
        pi = p[i]
        u, a, b = madgrad_rule(g[i], gsq[i], s[i], x0[i], pi, hp)
        gsq[i] = a
        s[i] = b
        dst[i] = pi + u if fused else u
