"""Mechanic (Cutkosky, Defazio & Mehta, 2023), optax.contrib.mechanize.

With ``c = wd * sum(s) * ||g|| / (||x|| + eps)`` and ``den = sum(s) + eps``
(host scalars, the norms from reduce.chunk_sumsq), pass 1 (``mechanic_h``)
sums, per fixed chunk (deterministic, see reduce.py)::

    h += (g + c * x) * ((x0 - x) / den)

and, with ``S = sum(s_new)`` and the base optimizer's update ``nu``, pass 2
(``mechanic_apply``) writes::

    u = (x0 - S * ((x0 - x) / den - nu)) - x
"""
from numba import prange

from ._jit import cpu_kernel, cuda, cuda_kernel, rule


@rule
def mechanic_h_term(g, x, x0, c, den):
    return (g + c * x) * ((x0 - x) / den)


@cpu_kernel
def mechanic_h_cpu(g, x, x0, chunks, c, den, zero, out):
    """out[k, 0] = sum over chunk k of (g + c x) (x0 - x) / den, serially."""
    for k in prange(chunks.shape[0]):
        acc = zero
        for i in range(chunks[k, 0], chunks[k, 1]):
            acc += mechanic_h_term(g[i], x[i], x0[i], c, den)
        out[k, 0] = acc


@cuda_kernel
def mechanic_h_cuda(g, x, x0, chunks, c, den, zero, out):
    for k in range(cuda.grid(1), chunks.shape[0], cuda.gridsize(1)):
        acc = zero
        for i in range(chunks[k, 0], chunks[k, 1]):
            acc += mechanic_h_term(g[i], x[i], x0[i], c, den)
        out[k, 0] = acc


@rule
def mechanic_update(x, x0, nu, den, total):
    return (x0 - total * ((x0 - x) / den - nu)) - x


@cpu_kernel
def mechanic_apply_cpu(x, x0, nu, dst, den, total):
    """dst <- the update (new params minus params)."""
    for i in prange(x.shape[0]):
        dst[i] = mechanic_update(x[i], x0[i], nu[i], den, total)


@cuda_kernel
def mechanic_apply_cuda(x, x0, nu, dst, den, total):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        dst[i] = mechanic_update(x[i], x0[i], nu[i], den, total)
