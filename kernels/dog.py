"""DoG / DoWG (Ivgi et al., 2023; Khaled et al., 2023) and optax's
``scale_by_distance_over_gradients`` (layer-wise DoG): the reduction pass.

The step size is a global (or per-leaf) scalar made from two sums::

    sum (x0 - x)^2      (distance travelled from the initial params)
    sum g^2             (reduce.chunk_sumsq_*)

``diff_sumsq`` gives the first per chunk (fixed chunks, summed left to
right: deterministic, see reduce.py); x and x0 may have different dtypes
(``param_dtype``), the sum is kept in the dtype of ``zero`` (their
promotion, as jnp's ``x - y``). The second pass, ``u = eta * g``, is
``apply.scale_*`` (one scalar) or ``trust_ratio.scale_segments_*`` (one
scalar per leaf).
"""
from numba import prange

from ._jit import cpu_kernel, cuda, cuda_kernel, rule


@rule
def sq_diff(x0, x):
    d = x0 - x
    return d * d


@cpu_kernel
def diff_sumsq_cpu(x, x0, chunks, zero, out):
    """out[k, 0] = sum over chunk k of (x0[i] - x[i])**2, serially, from ``zero``."""
    for k in prange(chunks.shape[0]):
        acc = zero
        for i in range(chunks[k, 0], chunks[k, 1]):
            acc += sq_diff(x0[i], x[i])
        out[k, 0] = acc


@cuda_kernel
def diff_sumsq_cuda(x, x0, chunks, zero, out):
    for k in range(cuda.grid(1), chunks.shape[0], cuda.gridsize(1)):
        acc = zero
        for i in range(chunks[k, 0], chunks[k, 1]):
            acc += sq_diff(x0[i], x[i])
        out[k, 0] = acc
