"""Per-leaf scaling (the second pass of trust-ratio rules: lamb, lars, ...).

The per-leaf norms come from ``reduce.chunk_sumsq_*``; the host turns them
into one factor per segment; this kernel multiplies each segment by its
factor::

    out[i] = factors[s] * u[i]   for i in segment s
"""
from numba import prange

from ._jit import cpu_kernel, cuda, cuda_kernel


@cpu_kernel
def scale_segments_cpu(u, segments, factors, out):
    """u, out: 1-D (length n); segments: int64 (k, 2) of (start, stop); factors: (k,)."""
    for s in range(segments.shape[0]):
        f = factors[s]
        for i in prange(segments[s, 0], segments[s, 1]):
            out[i] = f * u[i]


@cuda_kernel
def scale_segments_cuda(u, segments, factors, out):
    # one pass over all elements; each finds its segment by bisection
    for i in range(cuda.grid(1), u.shape[0], cuda.gridsize(1)):
        lo = 0
        hi = segments.shape[0] - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if segments[mid, 0] <= i:
                lo = mid
            else:
                hi = mid - 1
        out[i] = factors[lo] * u[i]


@cpu_kernel
def scale_segments_apply_cpu(u, segments, factors, p, neg_lr):
    """The last pass of a fused trust-ratio step, in place on p:
    ``p[i] = p[i] + neg_lr * (factors[s] * u[i])`` for i in segment s
    (optax: scale_by_trust_ratio, then the learning rate, then apply_updates)."""
    for s in range(segments.shape[0]):
        f = factors[s]
        for i in prange(segments[s, 0], segments[s, 1]):
            p[i] = p[i] + neg_lr * (f * u[i])


@cuda_kernel
def scale_segments_apply_cuda(u, segments, factors, p, neg_lr):
    for i in range(cuda.grid(1), u.shape[0], cuda.gridsize(1)):
        lo = 0
        hi = segments.shape[0] - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if segments[mid, 0] <= i:
                lo = mid
            else:
                hi = mid - 1
        p[i] = p[i] + neg_lr * (factors[lo] * u[i])
