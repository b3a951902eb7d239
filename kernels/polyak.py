"""The fused step of polyak_sgd (Loizou et al., 2021, arXiv:2002.10542).

``polyak_sgd = chain(sgd(scaling), scale_by_polyak(...))`` computes
``u = s * g`` (s = -scaling), the global ``||u||^2``, a scalar step, then
``p + step * u``. Fused, that is two passes over the gradient:

1. ``scaled_chunk_sumsq``: per fixed chunk, ``sum (s*g)^2`` serially, with the
   same chunks and order as ``reduce.chunk_sumsq`` applied to ``u`` (so the
   update path and the fused step get the same norm, bit for bit);
2. ``polyak_apply``: ``p <- p + step * (s * g)``.

The step itself (``min(gap / (||u||^2 + eps), max_learning_rate)``, or 0) is
a scalar computed on the host (npopt.transforms.polyak).
"""
from numba import prange

from ._jit import cpu_kernel, cuda, cuda_kernel, rule


@cpu_kernel
def scaled_chunk_sumsq_cpu(g, chunks, s, zero, out):
    """out[k, 0] = sum over chunk k of (s * g[i])**2, serially, in g's dtype.

    g: 1-D; chunks: int64 (k, 3) of (start, stop, segment); s, zero: scalars
    of g's dtype; out: (k, 1)."""
    for k in prange(chunks.shape[0]):
        acc = zero
        for i in range(chunks[k, 0], chunks[k, 1]):
            u = s * g[i]
            acc += u * u
        out[k, 0] = acc


@cuda_kernel
def scaled_chunk_sumsq_cuda(g, chunks, s, zero, out):
    for k in range(cuda.grid(1), chunks.shape[0], cuda.gridsize(1)):
        acc = zero
        for i in range(chunks[k, 0], chunks[k, 1]):
            u = s * g[i]
            acc += u * u
        out[k, 0] = acc


@rule
def polyak_rule(g, p, s, step):
    """One element of the fused step: p + step * (s * g)."""
    u = s * g
    return p + step * u


@cpu_kernel
def polyak_apply_cpu(g, p, s, step):
    """In place: p[i] <- p[i] + step * (s * g[i]). g, p: 1-D, same length and dtype."""
    for i in prange(g.shape[0]):
        p[i] = polyak_rule(g[i], p[i], s, step)


@cuda_kernel
def polyak_apply_cuda(g, p, s, step):
    for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
        p[i] = polyak_rule(g[i], p[i], s, step)
