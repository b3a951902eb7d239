"""Prodigy (Mishchenko & Defazio, 2023), optax.contrib.prodigy: two passes.

Pass 1 (``prodigy_accumulate``), per fixed chunk (deterministic sums, see
reduce.py), with ``d`` = estim_lr and ``c`` = dlr (or d with
safeguard_warmup)::

    num += g * (x0 - x)                       (-> numerator_acum)
    dg   = d * g
    m    = b1 * m + (1 - b1) * dg
    v    = b2 * v + (1 - b2) * dg * dg
    s    = b3 * s + c * dg / d0
    den += |s|                                (-> the denominator)

Pass 2 (``prodigy_apply``), with the new estimate d' from the host::

    u = (-wd * dlr) * x - dlr * m / (sqrt(v) + d' * eps)

written to ``dst``, or ``x + u`` into ``dst`` (holding x) when fused.
"""
import math

from numba import prange

from ._jit import cpu_kernel, cuda, cuda_kernel, rule


@rule
def prodigy_moments(g, x, x0, m, v, s, hp):
    """Returns (g * (x0 - x), m, v, s). hp = (d, b1, c1, b2, c2, b3, c, d0)."""
    d, b1, c1, b2, c2, b3, c, d0 = hp
    dg = d * g
    m = b1 * m + c1 * dg
    v = b2 * v + c2 * dg * dg
    s = b3 * s + c * dg / d0
    return g * (x0 - x), m, v, s


@cpu_kernel
def prodigy_accumulate_cpu(g, x, x0, m, v, s, chunks, hp, zero, out):
    """In place on m, v, s; out[k] = (sum g*(x0-x), sum |s_new|) over chunk k."""
    for k in prange(chunks.shape[0]):
        acc_n = zero
        acc_d = zero
        for i in range(chunks[k, 0], chunks[k, 1]):
            n, a, b, c = prodigy_moments(g[i], x[i], x0[i], m[i], v[i], s[i], hp)
            m[i] = a
            v[i] = b
            s[i] = c
            acc_n += n
            acc_d += abs(c)
        out[k, 0] = acc_n
        out[k, 1] = acc_d


@cuda_kernel
def prodigy_accumulate_cuda(g, x, x0, m, v, s, chunks, hp, zero, out):
    for k in range(cuda.grid(1), chunks.shape[0], cuda.gridsize(1)):
        acc_n = zero
        acc_d = zero
        for i in range(chunks[k, 0], chunks[k, 1]):
            n, a, b, c = prodigy_moments(g[i], x[i], x0[i], m[i], v[i], s[i], hp)
            m[i] = a
            v[i] = b
            s[i] = c
            acc_n += n
            acc_d += abs(c)
        out[k, 0] = acc_n
        out[k, 1] = acc_d


@rule
def prodigy_update(m, v, x, hp):
    """u = wd_dlr * x - dlr * m / (sqrt(v) + eps_d). hp = (wd_dlr, dlr, eps_d)."""
    wd_dlr, dlr, eps_d = hp
    return wd_dlr * x - dlr * m / (math.sqrt(v) + eps_d)


@cpu_kernel
def prodigy_apply_cpu(m, v, x, dst, hp, fused):
    """dst <- u, or x + u when fused (then x is dst)."""
    for i in prange(m.shape[0]):
        u = prodigy_update(m[i], v[i], x[i], hp)
        dst[i] = x[i] + u if fused else u


@cuda_kernel
def prodigy_apply_cuda(m, v, x, dst, hp, fused):
    for i in range(cuda.grid(1), m.shape[0], cuda.gridsize(1)):
        u = prodigy_update(m[i], v[i], x[i], hp)
        dst[i] = x[i] + u if fused else u
