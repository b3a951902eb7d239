"""MoMo and MoMo-Adam (Schaipp et al., 2023), optax.contrib.momo / momo_adam.

Pass 1, per fixed chunk (deterministic sums, see reduce.py), updates the
moments and sums what the Polyak-type step needs::

    momo:       m = b * m + (1 - b) * g
                sums (g * x, m * m, m * x)
    momo_adam:  m = b1 * m + (1 - b1) * g;  v = b2 * v + (1 - b2) * g * g
                q = eps + sqrt(v / bc2)
                sums (g * x, m * (m / q), m * x)

Pass 2, with the step ``tau`` and ``c = -(a * wd) / (1 + a * wd)`` from the
host::

    momo:       u = c * x - tau * m
    momo_adam:  u = c * x - tau * m / q

written to ``dst``, or ``x + u`` into ``dst`` (holding x) when fused.
"""
import math

from numba import prange

from ._jit import cpu_kernel, cuda, cuda_kernel, rule


@rule
def momo_moment(g, x, m, hp):
    """Returns (m_new, g * x, m_new * m_new, m_new * x). hp = (b, 1 - b)."""
    b, c = hp
    m = b * m + c * g
    return m, g * x, m * m, m * x


@cpu_kernel
def momo_accumulate_cpu(g, x, m, chunks, hp, zero, out):
    """In place on m; out[k] = (sum g x, sum m^2, sum m x) over chunk k."""
    for k in prange(chunks.shape[0]):
        a0 = zero
        a1 = zero
        a2 = zero
        for i in range(chunks[k, 0], chunks[k, 1]):
            mi, s0, s1, s2 = momo_moment(g[i], x[i], m[i], hp)
            m[i] = mi
            a0 += s0
            a1 += s1
            a2 += s2
        out[k, 0] = a0
        out[k, 1] = a1
        out[k, 2] = a2


@cuda_kernel
def momo_accumulate_cuda(g, x, m, chunks, hp, zero, out):
    for k in range(cuda.grid(1), chunks.shape[0], cuda.gridsize(1)):
        a0 = zero
        a1 = zero
        a2 = zero
        for i in range(chunks[k, 0], chunks[k, 1]):
            mi, s0, s1, s2 = momo_moment(g[i], x[i], m[i], hp)
            m[i] = mi
            a0 += s0
            a1 += s1
            a2 += s2
        out[k, 0] = a0
        out[k, 1] = a1
        out[k, 2] = a2


@rule
def momo_update(m, x, c, tau):
    return c * x - tau * m


@cpu_kernel
def momo_apply_cpu(m, x, dst, c, tau, fused):
    for i in prange(m.shape[0]):
        u = momo_update(m[i], x[i], c, tau)
        dst[i] = x[i] + u if fused else u


@cuda_kernel
def momo_apply_cuda(m, x, dst, c, tau, fused):
    for i in range(cuda.grid(1), m.shape[0], cuda.gridsize(1)):
        u = momo_update(m[i], x[i], c, tau)
        dst[i] = x[i] + u if fused else u


@rule
def momo_adam_precond(v, eps, bc2):
    return eps + math.sqrt(v / bc2)


@rule
def momo_adam_moments(g, x, m, v, hp):
    """Returns (m, v, g * x, m * (m / q), m * x). hp = (b1, 1-b1, b2, 1-b2, eps, bc2)."""
    b1, c1, b2, c2, eps, bc2 = hp
    m = b1 * m + c1 * g
    v = b2 * v + c2 * g * g
    q = momo_adam_precond(v, eps, bc2)
    return m, v, g * x, m * (m / q), m * x


@cpu_kernel
def momo_adam_accumulate_cpu(g, x, m, v, chunks, hp, zero, out):
    """In place on m, v; out[k] = (sum g x, sum m^2 / q, sum m x) over chunk k."""
    for k in prange(chunks.shape[0]):
        a0 = zero
        a1 = zero
        a2 = zero
        for i in range(chunks[k, 0], chunks[k, 1]):
            mi, vi, s0, s1, s2 = momo_adam_moments(g[i], x[i], m[i], v[i], hp)
            m[i] = mi
            v[i] = vi
            a0 += s0
            a1 += s1
            a2 += s2
        out[k, 0] = a0
        out[k, 1] = a1
        out[k, 2] = a2


@cuda_kernel
def momo_adam_accumulate_cuda(g, x, m, v, chunks, hp, zero, out):
    for k in range(cuda.grid(1), chunks.shape[0], cuda.gridsize(1)):
        a0 = zero
        a1 = zero
        a2 = zero
        for i in range(chunks[k, 0], chunks[k, 1]):
            mi, vi, s0, s1, s2 = momo_adam_moments(g[i], x[i], m[i], v[i], hp)
            m[i] = mi
            v[i] = vi
            a0 += s0
            a1 += s1
            a2 += s2
        out[k, 0] = a0
        out[k, 1] = a1
        out[k, 2] = a2


@rule
def momo_adam_update(m, v, x, hp):
    """u = c * x - tau * m / q. hp = (c, tau, eps, bc2)."""
    c, tau, eps, bc2 = hp
    return c * x - tau * m / momo_adam_precond(v, eps, bc2)


@cpu_kernel
def momo_adam_apply_cpu(m, v, x, dst, hp, fused):
    for i in prange(m.shape[0]):
        u = momo_adam_update(m[i], v[i], x[i], hp)
        dst[i] = x[i] + u if fused else u


@cuda_kernel
def momo_adam_apply_cuda(m, v, x, dst, hp, fused):
    for i in range(cuda.grid(1), m.shape[0], cuda.gridsize(1)):
        u = momo_adam_update(m[i], v[i], x[i], hp)
        dst[i] = x[i] + u if fused else u
