"""ADOPT (Taniguchi et al., 2024, arXiv:2411.02853), optax.contrib's
``scale_by_adopt``.

With ``c = 1 - b`` rounded from float64, and at the first step (count 0)
``b1 = 1, b2 = 0`` (optax's ``jnp.where(count > 0, b, ...)``)::

    x   = g / max(sqrt(nu), eps)          nu: the *previous* second moment
    x   = clip(x, -clip_value, clip_value)            (use_clipping)
    nu  = c2 * g*g + b2 * nu
    mu  = c1 * x + b1 * mu
    u   = mu                                          (plain)
    u   = c1 * x + b1 * mu                            (nesterov, with the new mu)
"""
import math

from numba import prange

from ._jit import cpu_kernel, cuda, cuda_kernel, rule
from .apply import finish


@rule
def adopt_rule(g, mu, nu, hp, clipping, nesterov):
    """One element of scale_by_adopt. Returns (u, mu, nu).

    hp = (c2, b2, eps, clip, c1, b1_mu, b1): all of the result dtype but
    ``b1_mu``, b1 in mu's dtype (``b1 * mu`` rounds in mu's dtype, as JAX's
    weakly typed ``b1`` does).
    """
    c2, b2, eps, clip, c1, b1_mu, b1 = hp
    d = math.sqrt(nu)
    if d < eps:                      # jnp.maximum: NaN passes through
        d = eps
    x = g / d
    if clipping:                     # jnp.clip = min(max(x, -c), c)
        if x < -clip:
            x = -clip
        if x > clip:
            x = clip
    nu = c2 * (g * g) + b2 * nu
    mu = c1 * x + b1_mu * mu
    if nesterov:
        return c1 * x + b1 * mu, mu, nu
    return mu, mu, nu


@cpu_kernel
def adopt_cpu(g, mu, nu, dst, hp, clipping, nesterov, post, fused):
    """ADOPT over flat arrays.

    In place: mu (mu_dtype) and nu are overwritten with the new moments; dst
    receives u, or, when ``fused``, holds the params and receives the new
    params (see apply.finish). All arrays 1-D, contiguous, length n, distinct.
    """
    for i in prange(g.shape[0]):
        u, m, v = adopt_rule(g[i], mu[i], nu[i], hp, clipping, nesterov)
        mu[i] = m
        nu[i] = v
        dst[i] = finish(u, dst[i], post, fused)


@cuda_kernel
def adopt_cuda(g, mu, nu, dst, hp, clipping, nesterov, post, fused):
    for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
        u, m, v = adopt_rule(g[i], mu[i], nu[i], hp, clipping, nesterov)
        mu[i] = m
        nu[i] = v
        dst[i] = finish(u, dst[i], post, fused)
