r"""Isotonic regression: ``jaxopt.isotonic`` for NumPy.

``isotonic_l2_pav(y, y_min, y_max, increasing)`` solves

.. math::  \operatorname{argmin}_{v_1 \le v_2 \le \dots \le v_n} \|v - y\|_2^2

(``increasing=True``; ``>=`` otherwise), the Euclidean projection of ``y``
onto the monotone cone, by the pool-adjacent-violators algorithm (Ayer,
Brunk, Ewing, Reid & Silverman 1955; Best & Chakravarti 1990) in O(n): the
numba kernel ``npopt.kernels.isotonic.pav_row`` is jaxopt's
``_isotonic_l2_pav_numba`` (which jaxopt itself runs on the host with numba).
The result is then clipped to ``[y_min, y_max]``, as jaxopt does.

Blondel, Teboul, Berthet & Djolonga, "Fast differentiable sorting and
ranking", ICML 2020, use this projection for soft sorting and ranking.
"""
import numbers

import numpy as np

from ._checks import _describe, check_bool
from ._target import is_device_array
from .kernels import isotonic as _k

__all__ = ["isotonic_l2_pav"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _bound(name, v):
    ok = isinstance(v, (numbers.Real, np.floating, np.integer)) and not isinstance(v, bool)
    ok = ok or (isinstance(v, np.ndarray) and v.ndim == 0 and v.dtype.kind in "fiu")
    if not ok or np.isnan(float(v)):
        raise ValueError(f"{name}: expected a number (inf allowed), got {_describe(v)}")
    return float(v)


def isotonic_l2_pav(y, y_min=-np.inf, y_max=np.inf, increasing=True):
    r"""Solves an isotonic regression problem using PAV.

    Args:
      y: input to isotonic regression, a 1-D array (float32 or float64). An
        array with more dimensions is solved row by row along its last axis
        (what ``jax.vmap`` of the jaxopt function gives). A CUDA array is solved
        on the device (one thread per row).
      y_min: lower bound on the lowest predicted value (a number, default -inf).
      y_max: upper bound on the highest predicted value (a number >= y_min,
        default inf).
      increasing: order of the constraints. If True, solves
        ``argmin_{v_1 <= ... <= v_n} ||v - y||^2``; if False,
        ``argmin_{v_1 >= ... >= v_n} ||v - y||^2``.

    Returns:
      The solution, an array of the shape and dtype of ``y``. As in jaxopt,
      the pooled means are computed in float64 and rounded to ``y``'s dtype.
    """
    increasing = check_bool("increasing", increasing)
    lo = _bound("y_min", y_min)
    hi = _bound("y_max", y_max)
    if lo > hi:
        raise ValueError(f"y_min, y_max: expected y_min <= y_max, got {lo!r} > {hi!r}")
    device = is_device_array(y)
    if not device:
        if isinstance(y, numbers.Real) or np.ndim(y) == 0:
            raise ValueError(f"y: expected a 1-D array, got {_describe(y)}")
        y = np.asarray(y)
    if np.dtype(y.dtype) not in _FLOATS:
        raise TypeError(f"y: expected a float32 or float64 array, got dtype {y.dtype}")
    if y.ndim < 1:
        raise ValueError(f"y: expected a 1-D array, got {_describe(y)}")
    dt = np.dtype(y.dtype)
    sign = dt.type(-1 if increasing else 1)
    lo, hi = dt.type(lo), dt.type(hi)
    shape = tuple(y.shape)         # (a simulated CUDA array's shape takes no negative index)
    n = shape[-1]
    m = int(np.prod(shape[:-1], dtype=np.int64))
    if device:
        from .kernels._jit import cuda
        if not y.is_c_contiguous():
            raise ValueError("y: expected a C-contiguous CUDA array")
        out = cuda.device_array(shape, dt)
        if y.size:
            y2, o2 = y.reshape(m, n), out.reshape(m, n)
            sol = cuda.device_array((m, n), np.float64)
            sums = cuda.device_array((m, n), np.float64)
            c = cuda.device_array((m, n), np.float64)
            target = cuda.device_array((m, n), np.int64)
            _k.pav_cuda(m, y2, o2, sol, sums, c, target, sign, lo, hi)
        return out
    y2 = np.ascontiguousarray(y).reshape(m, n)
    out = np.empty_like(y2)
    if y.size:
        sol = np.empty((m, n))
        sums = np.empty((m, n))
        c = np.empty((m, n))
        target = np.empty((m, n), np.int64)
        _k.pav_cpu(y2, out, sol, sums, c, target, sign, lo, hi)
    return out.reshape(y.shape)
