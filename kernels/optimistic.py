"""Optimistic gradient (Popov 1980; Daskalakis et al. 2017; Mokhtari et al.
2019), optax's ``scale_by_optimistic_gradient``::

    u      = (alpha + beta) * g - beta * g_prev
    g_prev = g                      (stored for the next step)

with ``g_prev := g`` on the first step (optax issue #1082), so the first
update is ``alpha * g``. ``alpha + beta`` is summed on the host in float64
and rounded once (optax's Python-float hyperparameters); XLA contracts the
left-most product, ``fma(alpha + beta, g, -round(beta * g_prev))``, and so
does LLVM for the expression as written below.

``optimistic_adam_cpu`` runs Adam's rule (``kernels.adam.adam_rule``) and
then this one in the same pass: optax's ``optimistic_adam(_v2)`` chain
``scale_by_adam -> scale_by_optimistic_gradient -> learning rate`` fused.
"""
from numba import prange

from ._jit import cpu_kernel, cuda, cuda_kernel, rule
from .adam import adam_rule
from .apply import finish


@rule
def optimistic_rule(g, prev, hp, initial):
    """One element. hp = (alpha_plus_beta, beta), of g's dtype. Returns u."""
    ab, beta = hp
    if initial:
        prev = g
    return ab * g - beta * prev


@cpu_kernel
def optimistic_cpu(g, prev, dst, hp, initial, post, fused):
    """Optimistic gradient over flat arrays.

    In place: prev (the previous gradient) is overwritten with g; dst
    receives u, or, when ``fused``, holds the params and receives the new
    params (see apply.finish). ``initial`` (bool): this is the first step.
    All arrays 1-D, contiguous, length n, one dtype, and distinct.
    """
    for i in prange(g.shape[0]):
        gi = g[i]
        u = optimistic_rule(gi, prev[i], hp, initial)
        prev[i] = gi
        dst[i] = finish(u, dst[i], post, fused)


@cuda_kernel
def optimistic_cuda(g, prev, dst, hp, initial, post, fused):
    for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
        gi = g[i]
        u = optimistic_rule(gi, prev[i], hp, initial)
        prev[i] = gi
        dst[i] = finish(u, dst[i], post, fused)


@cpu_kernel
def optimistic_adam_cpu(g, mu, nu, prev, dst, hp_adam, nesterov, hp, initial, post, fused):
    """Adam's direction r, then the optimistic step on r, in one pass.

    mu, nu: Adam's moments (hp_adam, nesterov: see adam.adam_rule); prev
    receives r (the input of the optimistic step, as optax stores it); hp,
    initial: see optimistic_rule. In place, like optimistic_cpu.
    """
    for i in prange(g.shape[0]):
        r, m, v = adam_rule(g[i], mu[i], nu[i], hp_adam, nesterov)
        u = optimistic_rule(r, prev[i], hp, initial)
        mu[i] = m
        nu[i] = v
        prev[i] = r
        dst[i] = finish(u, dst[i], post, fused)


@cuda_kernel
def optimistic_adam_cuda(g, mu, nu, prev, dst, hp_adam, nesterov, hp, initial, post, fused):
    for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
        r, m, v = adam_rule(g[i], mu[i], nu[i], hp_adam, nesterov)
        u = optimistic_rule(r, prev[i], hp, initial)
        mu[i] = m
        nu[i] = v
        prev[i] = r
        dst[i] = finish(u, dst[i], post, fused)
