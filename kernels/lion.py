"""Lion (Chen et al., 2023), optax's ``scale_by_lion``, with ``c = 1 - b``
rounded from float64::

    x  = c1 * g + b1 * mu
    u  = sign(x)                            mode 0, 'hard'
    u  = tanh(smooth_beta * x)              mode 1, 'smooth'
    u  = x if |x| < 1 else sign(x)          mode 2, 'refined'
    mu = c2 * g + b2 * mu                   (after u: mu_{t-1} enters x)

``sign`` is jnp.sign's (``sign.sign_of``): -1, +1, and zeros (with their
sign) and NaN passed through unchanged.
"""
import math

from numba import prange

from ._jit import cpu_kernel, cuda, cuda_kernel, rule
from .apply import finish
from .sign import sign_of

HARD, SMOOTH, REFINED = 0, 1, 2   # lion modes


@rule
def lion_rule(g, mu, hp, mode):
    """One element of scale_by_lion. Returns (u, mu).

    hp = (c1, b1, c2, b2, smooth_beta, one): c1, c2, smooth_beta and one of
    the result dtype (the wider of g's and mu's), b1 and b2 of mu's dtype
    (``b * mu`` is computed in mu's dtype, as JAX does with a weakly typed
    Python float).
    """
    c1, b1, c2, b2, smooth_beta, one = hp
    x = c1 * g + b1 * mu
    if mode == HARD:
        u = sign_of(x, one)
    elif mode == SMOOTH:
        u = math.tanh(smooth_beta * x)
    elif abs(x) < one:
        u = x
    else:
        u = sign_of(x, one)
    return u, c2 * g + b2 * mu


@cpu_kernel
def lion_cpu(g, mu, dst, hp, mode, post, fused):
    """Lion over flat arrays.

    In place: mu (1-D, contiguous, mu_dtype) is overwritten with the new
    momentum; dst (g's dtype) receives u or, when ``fused``, holds the params
    and receives the new params (see apply.finish). ``mode``: HARD, SMOOTH
    or REFINED.
    """
    for i in prange(g.shape[0]):
        u, m = lion_rule(g[i], mu[i], hp, mode)
        mu[i] = m
        dst[i] = finish(u, dst[i], post, fused)


@cuda_kernel
def lion_cuda(g, mu, dst, hp, mode, post, fused):
    for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
        u, m = lion_rule(g[i], mu[i], hp, mode)
        mu[i] = m
        dst[i] = finish(u, dst[i], post, fused)
