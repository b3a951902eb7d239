"""signSGD: optax's ``scale_by_sign``::

    u = sign(g)

``sign`` is jnp.sign's: -1, +1, and zeros (with their sign) and NaN passed
through unchanged (``sign_of``, also lion's, see lion.py).
"""
from numba import prange

from ._jit import cpu_kernel, cuda, cuda_kernel, rule
from .apply import finish


@rule
def sign_of(x, one):
    """jnp.sign(x): +-1, or x itself for +-0 and NaN. ``one``: 1 in x's dtype."""
    if x > 0:
        return one
    if x < 0:
        return -one
    return x


@rule
def sign_rule(g, hp):
    """One element of scale_by_sign. hp = (one,) of g's dtype. Returns (u,)."""
    return sign_of(g, hp[0])


@cpu_kernel
def sign_cpu(g, dst, hp, post, fused):
    """dst <- sign(g), or, when ``fused``, params in dst -> new params
    (apply.finish). g, dst: 1-D, contiguous, same length and dtype, distinct."""
    for i in prange(g.shape[0]):
        dst[i] = finish(sign_rule(g[i], hp), dst[i], post, fused)


@cuda_kernel
def sign_cuda(g, dst, hp, post, fused):
    for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
        dst[i] = finish(sign_rule(g[i], hp), dst[i], post, fused)
