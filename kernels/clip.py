"""Clipping: elementwise clip, and scaling by per-segment factors.

* ``clip``: ``u -> min(max(u, lo), hi)`` (optax.clip; a NaN stays NaN, as
  ``jnp.clip`` keeps it).
* ``segment_div_mul``: ``u -> (u / d[s]) * m[s]`` for the element's segment
  ``s``: ``(u / ||u||) * max_norm`` for the global norm (one factor for every
  segment) and ``u / max(1, rms/threshold)`` per leaf (``m = 1``, exact).

The host computes the factors from per-leaf sums of squares
(``reduce.chunk_sumsq``, in the leaf dtype, as optax does) and passes them as arrays of the buffer's dtype.
"""
from numba import prange

from ._jit import cpu_kernel, cuda, cuda_kernel, rule
from .complex import div_real


@rule
def clip_rule(u, lo, hi):
    """One element of optax.clip: max then min, NaN propagated."""
    if u < lo:
        return lo
    if u > hi:
        return hi
    return u


@cpu_kernel
def clip_cpu(u, out, lo, hi):
    """out = clip(u, lo, hi). u, out: 1-D contiguous, same dtype; lo, hi: scalars of it."""
    for i in prange(u.shape[0]):
        out[i] = clip_rule(u[i], lo, hi)


@cuda_kernel
def clip_cuda(u, out, lo, hi):
    for i in range(cuda.grid(1), u.shape[0], cuda.gridsize(1)):
        out[i] = clip_rule(u[i], lo, hi)


@rule
def div_mul_rule(u, d, m):
    """(u / d) * m: optax's ``(t / g_norm) * max_norm`` (m = 1 for block RMS)."""
    return div_real(u, d) * m


@cpu_kernel
def segment_div_mul_cpu(u, out, chunks, offsets, d, m):
    """out[i] = (u[i] / d[s]) * m[s] for i in chunk k of segment s = chunks[k, 2].

    chunks: int64 (k, 3) table covering u; offsets: int64 segment offsets
    (segments + 1 entries; used by the CUDA kernel); u, out: 1-D contiguous,
    same dtype; d, m: 1-D arrays of u's dtype, one entry per segment.
    """
    for k in prange(chunks.shape[0]):
        s = chunks[k, 2]
        ds = d[s]
        ms = m[s]
        for i in range(chunks[k, 0], chunks[k, 1]):
            out[i] = div_mul_rule(u[i], ds, ms)


@cuda_kernel
def segment_div_mul_cuda(u, out, chunks, offsets, d, m):
    """Grid-stride over elements; the segment is found by binary search in
    ``offsets`` (``chunks`` is unused here)."""
    nseg = offsets.shape[0] - 1
    for i in range(cuda.grid(1), u.shape[0], cuda.gridsize(1)):
        lo = 0
        hi = nseg - 1
        while lo < hi:               # last segment whose start <= i
            mid = (lo + hi + 1) // 2
            if offsets[mid] <= i:
                lo = mid
            else:
                hi = mid - 1
        while offsets[lo + 1] <= i:  # skip empty segments
            lo += 1
        out[i] = div_mul_rule(u[i], d[lo], m[lo])
