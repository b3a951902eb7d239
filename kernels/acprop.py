"""ACProp (Zhuang et al., 2021, arXiv:2110.05454), optax.contrib's
``scale_by_acprop``: AdaBelief's centred second moment, used one step late
(the denominator does not see the current gradient).

With ``c = 1 - b`` rounded from float64 and ``inv_bc = 1 / (1 - b2**k)`` of
the previous count k (made on the host)::

    nu^  = 1 if k == 0 else nu * inv_bc            nu: the previous moment
    mu'  = c1 * g + b1 * mu
    nu'  = (c2 * (g - mu)**2 + b2 * nu) + eps_root   mu: the previous moment
    u    = g / (sqrt(nu^) + eps)
"""
import math

from numba import prange

from ._jit import cpu_kernel, cuda, cuda_kernel, rule
from .apply import finish


@rule
def acprop_rule(g, mu, nu, hp):
    """One element of scale_by_acprop. Returns (u, mu, nu).

    hp = (c1, b1, c2, b2, inv_bc, eps, eps_root, one, initial), of the leaf
    dtype; ``initial`` is nonzero at the first step (count 0), where ``nu^``
    is 1 (``jnp.where``: whatever ``nu`` holds).
    """
    c1, b1, c2, b2, inv_bc, eps, eps_root, one, initial = hp
    nu_hat = one if initial != 0 else nu * inv_bc
    e = g - mu
    mu = c1 * g + b1 * mu
    nu = (c2 * (e * e) + b2 * nu) + eps_root
    return g / (math.sqrt(nu_hat) + eps), mu, nu


@cpu_kernel
def acprop_cpu(g, mu, nu, dst, hp, post, fused):
    """ACProp over flat arrays.

    In place: mu and nu are overwritten with the new moments; dst receives
    u, or, when ``fused``, holds the params and receives the new params (see
    apply.finish). All arrays 1-D, contiguous, length n, distinct.
    """
    for i in prange(g.shape[0]):
        u, m, v = acprop_rule(g[i], mu[i], nu[i], hp)
        mu[i] = m
        nu[i] = v
        dst[i] = finish(u, dst[i], post, fused)


@cuda_kernel
def acprop_cuda(g, mu, nu, dst, hp, post, fused):
    for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
        u, m, v = acprop_rule(g[i], mu[i], nu[i], hp)
        mu[i] = m
        nu[i] = v
        dst[i] = finish(u, dst[i], post, fused)
