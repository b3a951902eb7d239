"""D-Adaptation AdamW (Defazio & Mishchenko, 2023), optax.contrib.dadapt_adamw:
two passes.

Pass 1 (``dadapt_accumulate``), per fixed chunk (deterministic sums, see
reduce.py), with ``c`` = dlr, ``r = sqrt(b2)``::

    num += g * (s / (sqrt(v) + eps))          (old s, v; -> numerator_acum)
    m    = b1 * m + ((1 - b1) * dlr) * g
    v    = b2 * v + (1 - b2) * g * g
    s    = r * s + ((1 - r) * dlr) * g
    l1  += |s|                                (-> grad_sum_l1)

Pass 2 (``dadapt_apply``)::

    u = (-wd * dlr) * x - m / (sqrt(v) + eps)
"""
import math

from numba import prange

from ._jit import cpu_kernel, cuda, cuda_kernel, rule


@rule
def dadapt_moments(g, m, v, s, hp):
    """Returns (g * s / (sqrt(v) + eps), m, v, s). hp = (eps, b1, c1, b2, c2, r, cr)."""
    eps, b1, c1, b2, c2, r, cr = hp
    n = g * (s / (math.sqrt(v) + eps))
    m = b1 * m + c1 * g
    v = b2 * v + c2 * g * g
    s = r * s + cr * g
    return n, m, v, s


@cpu_kernel
def dadapt_accumulate_cpu(g, m, v, s, chunks, hp, zero, out):
    """In place on m, v, s; out[k] = (sum g*s/(sqrt(v)+eps), sum |s_new|) over chunk k."""
    for k in prange(chunks.shape[0]):
        acc_n = zero
        acc_d = zero
        for i in range(chunks[k, 0], chunks[k, 1]):
            n, a, b, c = dadapt_moments(g[i], m[i], v[i], s[i], hp)
            m[i] = a
            v[i] = b
            s[i] = c
            acc_n += n
            acc_d += abs(c)
        out[k, 0] = acc_n
        out[k, 1] = acc_d


@cuda_kernel
def dadapt_accumulate_cuda(g, m, v, s, chunks, hp, zero, out):
    for k in range(cuda.grid(1), chunks.shape[0], cuda.gridsize(1)):
        acc_n = zero
        acc_d = zero
        for i in range(chunks[k, 0], chunks[k, 1]):
            n, a, b, c = dadapt_moments(g[i], m[i], v[i], s[i], hp)
            m[i] = a
            v[i] = b
            s[i] = c
            acc_n += n
            acc_d += abs(c)
        out[k, 0] = acc_n
        out[k, 1] = acc_d


@rule
def dadapt_update(m, v, x, hp):
    """u = wd_dlr * x - m / (sqrt(v) + eps). hp = (wd_dlr, eps)."""
    wd_dlr, eps = hp
    return wd_dlr * x - m / (math.sqrt(v) + eps)


@cpu_kernel
def dadapt_apply_cpu(m, v, x, dst, hp, fused):
    """dst <- u, or x + u when fused (then x is dst)."""
    for i in prange(m.shape[0]):
        u = dadapt_update(m[i], v[i], x[i], hp)
        dst[i] = x[i] + u if fused else u


@cuda_kernel
def dadapt_apply_cuda(m, v, x, dst, hp, fused):
    for i in range(cuda.grid(1), m.shape[0], cuda.gridsize(1)):
        u = dadapt_update(m[i], v[i], x[i], hp)
        dst[i] = x[i] + u if fused else u
