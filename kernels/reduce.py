"""Deterministic reductions over the segments (leaves) of a flat buffer.

Each segment is cut into fixed chunks of ``CHUNK`` elements; each chunk is
summed serially, left to right, and the chunk sums are added in index order.
The result therefore depends neither on the number of threads nor on the CUDA
grid, and CPU and CUDA agree. (XLA reduces in its own order, so agreement
with optax is to rounding, not bitwise.)

``chunks`` is an int64 array of shape (k, 3): (start, stop, segment) per
chunk, made on the host by ``chunk_table``.
"""
import numpy as np
from numba import njit, prange

from ._jit import CHUNK, CPU_OPTIONS, cpu_kernel, cuda, cuda_kernel
from .complex import abs2


def chunk_table(segments):
    """(start, stop, segment) for fixed-size chunks of each (start, stop) segment."""
    rows = []
    for s, (a, b) in enumerate(segments):
        for c in range(int(a), int(b), CHUNK):
            rows.append((c, min(c + CHUNK, int(b)), s))
    return np.asarray(rows, np.int64).reshape(-1, 3)


@cpu_kernel
def chunk_sumsq_cpu(x, y, chunks, zero, out):
    """out[k, 0] = sum |x|^2 and out[k, 1] = sum |y|^2 over chunk k, serially,
    accumulated in the dtype of ``zero`` (x's real dtype, as XLA does).

    x comes first so that its length picks the serial or parallel loop (and
    the CUDA grid); threads beyond the chunk count do nothing. Pass y = x for
    a single array (column 1 is then a copy of column 0)."""
    for k in prange(chunks.shape[0]):
        a, b = chunks[k, 0], chunks[k, 1]
        sx = zero
        sy = zero
        for i in range(a, b):
            sx += abs2(x[i])
            sy += abs2(y[i])
        out[k, 0] = sx
        out[k, 1] = sy


@cuda_kernel
def chunk_sumsq_cuda(x, y, chunks, zero, out):
    for k in range(cuda.grid(1), chunks.shape[0], cuda.gridsize(1)):
        a, b = chunks[k, 0], chunks[k, 1]
        sx = zero
        sy = zero
        for i in range(a, b):
            sx += abs2(x[i])
            sy += abs2(y[i])
        out[k, 0] = sx
        out[k, 1] = sy


@njit(**CPU_OPTIONS)
def combine_chunks(chunks, partial, totals):
    """totals[segment] += partial[chunk], serially in chunk order."""
    totals[:] = 0
    for k in range(chunks.shape[0]):
        for j in range(partial.shape[1]):
            totals[chunks[k, 2], j] += partial[k, j]
