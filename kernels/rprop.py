"""Rprop (Riedmiller & Braun, 1993), optax's ``scale_by_rprop``, element by
element::

    s     = g * prev
    step  = step                                          if s == 0
          = clip(step * (eta_plus if s > 0 else eta_minus),
                 min_step_size, max_step_size)            otherwise
    prev' = 0 if s < 0 else step * sign(g)
    u     = 0 if s < 0 else prev          <- the OLD prev (optax's quirk)

``prev`` holds the previous step's signed step, not the previous gradient.
The update emitted is the previous step's value, so it lags one step and
the first update is 0 (optax 0.2.8; PR google-deepmind/optax#1725 proposes
the fix). ``sign`` is XLA's: +-1, the signed zero itself for +-0, NaN for
NaN; ``clip`` is ``min(max(x, lo), hi)``.
"""
from numba import prange

from ._jit import cpu_kernel, cuda, cuda_kernel, rule
from .apply import finish


@rule
def rprop_rule(g, step, prev, hp):
    """One element. hp = (eta_minus, eta_plus, min_step, max_step, one, zero),
    of g's dtype. Returns (u, step, prev)."""
    eta_minus, eta_plus, lo, hi, one, zero = hp
    s = g * prev
    if not s == 0:
        x = step * (eta_plus if s > 0 else eta_minus)
        x = lo if x < lo else x
        step = hi if x > hi else x
    if s < 0:
        return zero, step, zero
    sign = one if g > 0 else (-one if g < 0 else g)
    return prev, step, step * sign


@cpu_kernel
def rprop_cpu(g, step, prev, dst, hp, post, fused):
    """Rprop over flat arrays.

    In place: step (per-element step sizes) and prev (the signed steps) are
    overwritten with their new values; dst receives u, or, when ``fused``,
    holds the params and receives the new params (see apply.finish). All
    arrays 1-D, contiguous, length n, one dtype, and distinct.
    """
    for i in prange(g.shape[0]):
        u, s, p = rprop_rule(g[i], step[i], prev[i], hp)
        step[i] = s
        prev[i] = p
        dst[i] = finish(u, dst[i], post, fused)


@cuda_kernel
def rprop_cuda(g, step, prev, dst, hp, post, fused):
    for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
        u, s, p = rprop_rule(g[i], step[i], prev[i], hp)
        step[i] = s
        prev[i] = p
        dst[i] = finish(u, dst[i], post, fused)
