"""Exponential moving average: optax's ``ema`` (signum, adafactor momentum).

With ``t = count + 1`` and ``c = 1 - decay`` rounded from float64 (optax's
Python-float hyperparameters)::

    e = c * g + decay * e
    u = e * (1 / (1 - decay**t))       (debias=True)
    u = e                              (debias=False)

Unlike ``trace`` (``t = g + decay * t``) the gradient is damped by
``1 - decay``. The accumulator may be stored in another dtype than ``g``
(``accumulator_dtype``): ``decay * e`` is then computed in the accumulator's
dtype and the sum in the wider of the two, as JAX promotes them; ``u`` is the
unrounded sum, the state keeps it rounded to the accumulator's dtype.
"""
from numba import prange

from ._jit import cpu_kernel, cuda, cuda_kernel, rule
from .apply import finish


@rule
def ema_rule(g, e, hp, debias):
    """One element of ema. Returns (u, e).

    hp = (c, decay, inv_bc): c and inv_bc of the result dtype (the wider of
    g's and the accumulator's), decay of the accumulator's dtype.
    """
    c, decay, inv_bc = hp
    e = c * g + decay * e
    if debias:
        return e * inv_bc, e
    return e, e


@cpu_kernel
def ema_cpu(g, e, dst, hp, debias, post, fused):
    """EMA over flat arrays.

    In place: e (1-D, contiguous, the accumulator dtype) is overwritten with
    the new average; dst (g's dtype) receives u or, when ``fused``, holds the
    params and receives the new params (see apply.finish). g, e, dst have the
    same length and are distinct arrays.
    """
    for i in prange(g.shape[0]):
        u, m = ema_rule(g[i], e[i], hp, debias)
        e[i] = m
        dst[i] = finish(u, dst[i], post, fused)


@cuda_kernel
def ema_cuda(g, e, dst, hp, debias, post, fused):
    for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
        u, m = ema_rule(g[i], e[i], hp, debias)
        e[i] = m
        dst[i] = finish(u, dst[i], post, fused)
