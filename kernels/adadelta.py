"""Adadelta (Zeiler, 2012, arXiv:1212.5701), optax's ``scale_by_adadelta``.

With ``c = 1 - rho`` rounded once from float64::

    e_g = c * g*g + rho * e_g
    u   = sqrt(e_x + eps) * (1 / sqrt(e_g + eps)) * g      (e_x of the last step)
    e_x = c * u*u + rho * e_x

Jitted XLA rewrites optax's ``sqrt(a) / sqrt(b) * g`` into
``sqrt(a) * rsqrt(b) * g``; its rsqrt is within 2 ulp of ``1 / sqrt``, so
this rule matches optax to a few ulp, not bitwise. The EMAs contract as
``fma(c, g*g, rho * e)``, as XLA's do.

``decay_first`` serves optax's ``adadelta`` alias, whose weight decay comes
*before* the preconditioner (L2-coupled: ``g + wd * p``): when fused, the
kernel then adds ``post[1] * p`` to g before the rule and finishes with
``p + post[0] * u``, instead of apply.finish's ``p + post[0] * (u + post[1] * p)``.
"""
import math

from numba import prange

from ._jit import cpu_kernel, cuda, cuda_kernel, rule
from .apply import finish


@rule
def adadelta_rule(g, e_g, e_x, hp):
    """One element. hp = (c, rho, eps, one), of g's dtype. Returns (u, e_g, e_x)."""
    c, rho, eps, one = hp
    e_g = c * (g * g) + rho * e_g
    u = (math.sqrt(e_x + eps) * (one / math.sqrt(e_g + eps))) * g
    e_x = c * (u * u) + rho * e_x
    return u, e_g, e_x


@rule
def adadelta_element(g, e_g, e_x, p, hp, decay_first, post, fused):
    """Returns (dst value, e_g, e_x) for one element (see the module docstring)."""
    if fused and decay_first:
        wd = post[1]
        if wd != 0:
            g = g + wd * p
        u, e_g, e_x = adadelta_rule(g, e_g, e_x, hp)
        return p + post[0] * u, e_g, e_x
    u, e_g, e_x = adadelta_rule(g, e_g, e_x, hp)
    return finish(u, p, post, fused), e_g, e_x


@cpu_kernel
def adadelta_cpu(g, e_g, e_x, dst, hp, decay_first, post, fused):
    """Adadelta over flat arrays.

    In place: e_g and e_x are overwritten with the new averages; dst
    receives u, or, when ``fused``, holds the params and receives the new
    params. All arrays 1-D, contiguous, length n, one dtype, and distinct.
    """
    for i in prange(g.shape[0]):
        d, a, b = adadelta_element(g[i], e_g[i], e_x[i], dst[i], hp, decay_first, post, fused)
        e_g[i] = a
        e_x[i] = b
        dst[i] = d


@cuda_kernel
def adadelta_cuda(g, e_g, e_x, dst, hp, decay_first, post, fused):
    for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
        d, a, b = adadelta_element(g[i], e_g[i], e_x[i], dst[i], hp, decay_first, post, fused)
        e_g[i] = a
        e_x[i] = b
        dst[i] = d
