"""Euclidean projections that act element by element or row by row.

* ``non_negative``: ``p = max(x, 0)`` (jaxopt's ``jax.nn.relu``; NaN stays NaN).
* ``box``: ``p = min(max(x, lower), upper)`` (``jnp.clip``), with scalar bounds
  (``box_cpu``) or one bound per element (``box_array_cpu``). The hypercube
  and the l-infinity ball are boxes.
* ``simplex_rows``: every row of a 2-D array projected onto the simplex
  ``{p >= 0, sum(p) = value}`` by sorting (Held, Wolfe & Crowder 1974;
  Duchi, Shalev-Shwartz, Singer & Chandra, ICML 2008, Fig. 1), in the order of
  operations of jaxopt's ``_projection_unit_simplex`` applied to ``x / value``::

      z = x / value;  u = sort(z) descending;  S_k = u_1 + ... + u_k
      rho = #{k : 1/k + (u_k - S_k / k) > 0}
      p = value * max(1/rho + (z - S_rho / rho), 0)

  CPU only: a sort per row is not a good CUDA kernel.

The host validates, allocates and casts the scalars (``zero``, bounds,
``value``) to the array's dtype; kernels only loop.
"""
import numpy as np
from numba import prange

from ._jit import cpu_kernel, cuda, cuda_kernel, rule


# --- non-negative orthant ---------------------------------------------------

@rule
def non_negative_rule(x, zero):
    """max(x, 0); NaN propagates (as jax.nn.relu)."""
    if x < zero:
        return zero
    return x


@cpu_kernel
def non_negative_cpu(x, out, zero):
    """out = max(x, 0). x, out: 1-D contiguous, same dtype; zero: 0 of that dtype."""
    for i in prange(x.shape[0]):
        out[i] = non_negative_rule(x[i], zero)


@cuda_kernel
def non_negative_cuda(x, out, zero):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        out[i] = non_negative_rule(x[i], zero)


# --- boxes ------------------------------------------------------------------

@rule
def box_rule(x, lo, hi):
    """jnp.clip(x, lo, hi) = min(max(x, lo), hi); NaN propagates."""
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


@cpu_kernel
def box_cpu(x, out, lo, hi):
    """out = clip(x, lo, hi) with scalar bounds of x's dtype (lo <= hi)."""
    for i in prange(x.shape[0]):
        out[i] = box_rule(x[i], lo, hi)


@cuda_kernel
def box_cuda(x, out, lo, hi):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        out[i] = box_rule(x[i], lo, hi)


@cpu_kernel
def box_array_cpu(x, out, lo, hi):
    """out[i] = clip(x[i], lo[i], hi[i]); all four 1-D contiguous, same dtype and length."""
    for i in prange(x.shape[0]):
        out[i] = box_rule(x[i], lo[i], hi[i])


@cuda_kernel
def box_array_cuda(x, out, lo, hi):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        out[i] = box_rule(x[i], lo[i], hi[i])


# --- simplex, row by row (CPU) ----------------------------------------------

@rule
def simplex_row(x, out, value, one, zero):
    """Project one row ``x`` onto {p >= 0, sum p = value}; writes ``out``.

    ``value``, ``one``, ``zero``: scalars of x's dtype, ``value > 0``.
    """
    n = x.shape[0]
    z = x / value
    u = np.sort(z)[::-1]
    cumsum = np.empty_like(u)
    acc = zero
    for k in range(n):
        acc = acc + u[k]
        cumsum[k] = acc
    # counts are kept as floats of x's dtype: an int would promote float32
    rho = zero
    ind = zero
    for k in range(n):
        ind = ind + one
        if one / ind + (u[k] - cumsum[k] / ind) > zero:
            rho = rho + one
    theta = cumsum[int(rho) - 1] / rho
    inv = one / rho
    for i in range(n):
        v = inv + (z[i] - theta)
        if v < zero:
            v = zero
        out[i] = value * v


@cpu_kernel
def simplex_rows_cpu(x, out, value, one, zero):
    """Each row of x (m, n), C-contiguous, projected onto the value-simplex into out."""
    for r in prange(x.shape[0]):
        simplex_row(x[r], out[r], value, one, zero)
