"""AdEMAMix (Pagliardini et al., 2024, arXiv:2409.03137) and its simplified
form (Morwani et al., 2025, arXiv:2502.02431), optax.contrib's
``scale_by_ademamix`` and ``scale_by_simplified_ademamix``.

AdEMAMix, with ``c = 1 - b`` rounded from float64 and the reciprocal bias
corrections made on the host (as ``kernels.adam``)::

    m1 = c1 * g   + b1 * m1                      fast EMA
    m2 = c3 * g   + b3 * m2                      slow EMA (no bias correction)
    nu = c2 * g*g + b2 * nu
    u  = (m1 * inv_bc1 + alpha * m2) / (sqrt(nu * inv_bc2 + eps_root) + eps)

Simplified AdEMAMix (optax's order of operations: ``lerp`` for n)::

    m  = g + b1 * m                              a sum, not an average
    n  = g*g + b2 * (n - g*g)
    u  = (m + alpha * g) / (sqrt(n * inv_bc2 + eps_root) + eps)
"""
import math

from numba import prange

from ._jit import cpu_kernel, cuda, cuda_kernel, rule
from .apply import finish


@rule
def ademamix_rule(g, m1, m2, nu, hp):
    """One element of scale_by_ademamix. Returns (u, m1, m2, nu).

    hp = (c1, b1, c3, b3, c2, b2, inv_bc1, inv_bc2, alpha, eps, eps_root), of
    the result dtype (the moments are promoted to it before the kernel).
    """
    c1, b1, c3, b3, c2, b2, inv_bc1, inv_bc2, alpha, eps, eps_root = hp
    m1 = c1 * g + b1 * m1
    m2 = c3 * g + b3 * m2
    nu = c2 * (g * g) + b2 * nu
    u = (m1 * inv_bc1 + alpha * m2) / (math.sqrt(nu * inv_bc2 + eps_root) + eps)
    return u, m1, m2, nu


@cpu_kernel
def ademamix_cpu(g, m1, m2, nu, dst, hp, post, fused):
    """AdEMAMix over flat arrays.

    In place: m1, m2 and nu are overwritten with the new moments; dst
    receives u, or, when ``fused``, holds the params and receives the new
    params (see apply.finish). All arrays 1-D, contiguous, length n, distinct.
    """
    for i in prange(g.shape[0]):
        u, a, b, v = ademamix_rule(g[i], m1[i], m2[i], nu[i], hp)
        m1[i] = a
        m2[i] = b
        nu[i] = v
        dst[i] = finish(u, dst[i], post, fused)


@cuda_kernel
def ademamix_cuda(g, m1, m2, nu, dst, hp, post, fused):
    for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
        u, a, b, v = ademamix_rule(g[i], m1[i], m2[i], nu[i], hp)
        m1[i] = a
        m2[i] = b
        nu[i] = v
        dst[i] = finish(u, dst[i], post, fused)


@rule
def simplified_ademamix_rule(g, m, n, hp):
    """One element of scale_by_simplified_ademamix. Returns (u, m, n).

    hp = (b1, b2, inv_bc2, alpha, eps, eps_root), of the leaf dtype.
    """
    b1, b2, inv_bc2, alpha, eps, eps_root = hp
    m = g + b1 * m
    gg = g * g
    n = gg + b2 * (n - gg)
    u = (m + alpha * g) / (math.sqrt(n * inv_bc2 + eps_root) + eps)
    return u, m, n


@cpu_kernel
def simplified_ademamix_cpu(g, m, n, dst, hp, post, fused):
    """Simplified AdEMAMix over flat arrays (in place, as ``ademamix_cpu``)."""
    for i in prange(g.shape[0]):
        u, a, v = simplified_ademamix_rule(g[i], m[i], n[i], hp)
        m[i] = a
        n[i] = v
        dst[i] = finish(u, dst[i], post, fused)


@cuda_kernel
def simplified_ademamix_cuda(g, m, n, dst, hp, post, fused):
    for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
        u, a, v = simplified_ademamix_rule(g[i], m[i], n[i], hp)
        m[i] = a
        n[i] = v
        dst[i] = finish(u, dst[i], post, fused)
