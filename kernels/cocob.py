"""COCOB-Backprop (Orabona & Tommasi, 2017, arXiv:1705.07795, Algorithm 2),
optax.contrib's ``scale_by_cocob``: coin betting, one bettor per element,
as an update relative to the params (c: the incoming gradient; in the
alias's fused step ``c = lr * (g + wd * p)``, its first two blocks)::

    L  = max(L, |c|)                 largest gradient seen
    G  = G + |c|                     sum of |gradients|
    R  = max(R - c * (p - p0), 0)    reward
    C  = C - c                       sum of negative gradients
    u  = -p + (p0 + C / (L * max(G + L, alpha * L)) * (L + R))

``max`` is ``jnp.maximum``'s: NaN if either operand is NaN.
"""
from numba import prange

from ._jit import cpu_kernel, cuda, cuda_kernel, rule


@rule
def nan_max(a, b):
    """jnp.maximum of two scalars: NaN if either is NaN."""
    if a > b or a != a:
        return a
    return b


@rule
def cocob_rule(c, p, p0, C, L, G, R, hp):
    """One element of scale_by_cocob. Returns (u, C, L, G, R).

    hp = (alpha, zero), of the leaf dtype.
    """
    alpha, zero = hp
    a = abs(c)
    L = nan_max(L, a)
    G = G + a
    R = nan_max(R - c * (p - p0), zero)
    C = C - c
    return -p + (p0 + C / (L * nan_max(G + L, alpha * L)) * (L + R)), C, L, G, R


@rule
def cocob_input(g, p, pre, fused):
    """The gradient cocob sees: g, or in a fused step ``lr * (g + wd * p)``
    (add_decayed_weights, then scale_by_learning_rate(flip_sign=False));
    pre = (lr, wd) of the leaf dtype."""
    if not fused:
        return g
    lr, wd = pre
    if wd != 0:
        g = g + wd * p
    return lr * g


@cpu_kernel
def cocob_cpu(c, p, p0, C, L, G, R, dst, hp, pre, fused):
    """COCOB over flat arrays.

    In place: C (cumulative_gradients), L (scale), G (subgradients) and R
    (reward) are overwritten; dst receives the update or, when ``fused``,
    ``p + u`` (apply_updates; dst may then be p itself); c (the gradients,
    see ``cocob_input``), p and p0 (init_particles) are read. All arrays 1-D,
    contiguous, length n, of one dtype.
    """
    for i in prange(c.shape[0]):
        pi = p[i]
        ci = cocob_input(c[i], pi, pre, fused)
        u, C[i], L[i], G[i], R[i] = cocob_rule(ci, pi, p0[i], C[i], L[i], G[i], R[i], hp)
        dst[i] = pi + u if fused else u


@cuda_kernel
def cocob_cuda(c, p, p0, C, L, G, R, dst, hp, pre, fused):
    for i in range(cuda.grid(1), c.shape[0], cuda.gridsize(1)):
        pi = p[i]
        ci = cocob_input(c[i], pi, pre, fused)
        u, C[i], L[i], G[i], R[i] = cocob_rule(ci, pi, p0[i], C[i], L[i], G[i], R[i], hp)
        dst[i] = pi + u if fused else u
