"""Momentum: optax's ``trace`` (heavy-ball, PyTorch convention, no damping)::

    t = g + decay * t
    u = t                      (plain)
    u = g + decay * t          (nesterov, with the new t)

The first step gives ``u = g`` (the trace starts at zero). Plain SGD without
momentum is ``kernels.apply.step_cpu``.
"""
from numba import prange

from ._jit import cpu_kernel, cuda, cuda_kernel, rule
from .apply import finish


@rule
def trace_rule(g, t, hp, nesterov):
    """One element of trace. hp = (decay,). Returns (u, t)."""
    decay = hp[0]
    t = g + decay * t
    if nesterov:
        return g + decay * t, t
    return t, t


@cpu_kernel
def trace_cpu(g, t, dst, hp, nesterov, post, fused):
    """In place: t <- new trace; dst <- u (or, when fused, params -> new params)."""
    for i in prange(g.shape[0]):
        u, tt = trace_rule(g[i], t[i], hp, nesterov)
        t[i] = tt
        dst[i] = finish(u, dst[i], post, fused)


@cuda_kernel
def trace_cuda(g, t, dst, hp, nesterov, post, fused):
    for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
        u, tt = trace_rule(g[i], t[i], hp, nesterov)
        t[i] = tt
        dst[i] = finish(u, dst[i], post, fused)
