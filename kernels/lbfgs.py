"""L-BFGS and line searches on flat buffers: memory update, two-loop
recursion, trial points and dot products.

Every loop that reduces (a dot product, a squared norm) runs over the chunk
table made by the host (``npopt.transforms.lbfgs.chunk_table``): an int64
array of shape (k, 5) with one row per chunk of at most ``CHUNK`` elements
of one leaf::

    (start, stop, segment, base, n)

``[start, stop)`` indexes the flat vector (params, updates, the direction
``v``); ``segment`` is the leaf; ``base, n`` locate the leaf in a *memory*
buffer, the ring buffer of ``m`` stacked leaves (``(m,) + leaf.shape`` each,
laid end to end as ``Layout`` lays out any tree): element ``i`` of slot
``j`` is ``mem[i + base + j * n]``. Each chunk is summed serially into
``partial[k]`` (accumulated in the dtype of ``zero``); the host adds the
chunk sums of a leaf in order, then the leaves in leaf order, so the result
depends neither on the number of threads nor on the CUDA grid (see
kernels/reduce.py).

The first argument of every CPU kernel is a full-length vector, so that
``cpu_kernel`` picks the parallel build (a ``prange`` over chunks) for large
problems.

Dtypes: vectors and memory share the leaf dtype, except where a scalar is
float64 for float32 leaves (``a`` below, the trial step ``s``): the
arithmetic is then done in float64 and rounded once when stored, which is
what optax computes under ``jax_enable_x64`` (float64 scalars promote).
"""
import numpy as np
from numba import prange

from ._jit import cpu_kernel, cuda, cuda_kernel, rule


@rule
def axpy_rule(v, a, x):
    """``v + a x``; jitted XLA contracts it into ``fma(a, x, v)``, as LLVM does
    here under the ``contract`` flag."""
    return v + a * x


@rule
def acc_rule(x, y, zero):
    """``x * y`` in the dtype of ``zero`` (the accumulator's: float64 for
    float32 data, where the product of two float32 numbers is exact)."""
    return (zero + x) * y


# ---------------------------------------------------------------------------
# 1. The new curvature pair (s_k, y_k) = (p - p_old, u - u_old)
# ---------------------------------------------------------------------------

@cpu_kernel
def pair_cpu(p, chunks, p_old, u, u_old, dw, du, slot, keep, zero, acc,
             p_keep, u_keep, v, partial):
    """Writes slot ``slot`` of the memories and copies the step's inputs.

    p, p_old, u, u_old, p_keep, u_keep, v: 1-D (n,) of the leaf dtype;
    dw, du: memories (m * n,); chunks: int64 (k, 5); slot: int; keep: bool
    (False at the first step, when the pair is zero as in optax); zero: 0
    of the leaf dtype; partial: (k, 4) of the leaf dtype receives per chunk
    ``[<dq, dp>, <dq, dq>, <u, u>, <dp, u>]`` with ``dp = p - p_old``,
    ``dq = u - u_old`` (zeros when not keep).

    ``p_keep``/``u_keep`` (the state's new params/updates) may be ``p_old``/
    ``u_old`` themselves (in-place step): each element is read before it is
    written. ``v`` receives a copy of ``u``: the two-loop recursion's start.
    """
    for k in prange(chunks.shape[0]):
        lo, hi = chunks[k, 0], chunks[k, 1]
        j = chunks[k, 3] + slot * chunks[k, 4]
        s_qp = acc
        s_qq = acc
        s_uu = acc
        s_pu = acc
        for i in range(lo, hi):
            pi = p[i]
            ui = u[i]
            dp = zero
            dq = zero
            if keep:
                dp = pi - p_old[i]
                dq = ui - u_old[i]
            dw[i + j] = dp
            du[i + j] = dq
            s_qp += acc_rule(dq, dp, acc)
            s_qq += acc_rule(dq, dq, acc)
            s_uu += acc_rule(ui, ui, acc)
            s_pu += acc_rule(dp, ui, acc)
            p_keep[i] = pi
            u_keep[i] = ui
            v[i] = ui
        partial[k, 0] = s_qp
        partial[k, 1] = s_qq
        partial[k, 2] = s_uu
        partial[k, 3] = s_pu


@cuda_kernel
def pair_cuda(p, chunks, p_old, u, u_old, dw, du, slot, keep, zero, acc,
               p_keep, u_keep, v, partial):
    for k in range(cuda.grid(1), chunks.shape[0], cuda.gridsize(1)):
        lo, hi = chunks[k, 0], chunks[k, 1]
        j = chunks[k, 3] + slot * chunks[k, 4]
        s_qp = acc
        s_qq = acc
        s_uu = acc
        s_pu = acc
        for i in range(lo, hi):
            pi = p[i]
            ui = u[i]
            dp = zero
            dq = zero
            if keep:
                dp = pi - p_old[i]
                dq = ui - u_old[i]
            dw[i + j] = dp
            du[i + j] = dq
            s_qp += acc_rule(dq, dp, acc)
            s_qq += acc_rule(dq, dq, acc)
            s_uu += acc_rule(ui, ui, acc)
            s_pu += acc_rule(dp, ui, acc)
            p_keep[i] = pi
            u_keep[i] = ui
            v[i] = ui
        partial[k, 0] = s_qp
        partial[k, 1] = s_qq
        partial[k, 2] = s_uu
        partial[k, 3] = s_pu


# ---------------------------------------------------------------------------
# 2. One pass of the two-loop recursion
# ---------------------------------------------------------------------------

@cpu_kernel
def two_loop_cpu(v, chunks, a, x, xslot, g, y, yslot, zero, partial):
    """``v <- g * (v + a * x[xslot])``, then ``partial[k] = <y[yslot], v>``.

    One pass of Nocedal & Wright's Algorithm 7.4 fused with the dot product
    the next pass needs. v: 1-D (n,) leaf dtype, overwritten; x, y: memories
    (m * n,); a: the axpy coefficient (float64 for float32 leaves: the sum is
    rounded once when stored); g: scale of the leaf dtype (1 except at the
    end of the first loop, where it is the initial Hessian scale gamma);
    ``xslot < 0`` skips the axpy and ``yslot < 0`` the dot product;
    partial: (k,) of the leaf dtype.
    """
    for k in prange(chunks.shape[0]):
        lo, hi = chunks[k, 0], chunks[k, 1]
        jx = chunks[k, 3] + xslot * chunks[k, 4]
        jy = chunks[k, 3] + yslot * chunks[k, 4]
        s = zero
        for i in range(lo, hi):
            if xslot >= 0:
                v[i] = axpy_rule(v[i], a, x[i + jx])
            v[i] = g * v[i]
            if yslot >= 0:
                s += acc_rule(y[i + jy], v[i], zero)
        partial[k] = s


@cuda_kernel
def two_loop_cuda(v, chunks, a, x, xslot, g, y, yslot, zero, partial):
    for k in range(cuda.grid(1), chunks.shape[0], cuda.gridsize(1)):
        lo, hi = chunks[k, 0], chunks[k, 1]
        jx = chunks[k, 3] + xslot * chunks[k, 4]
        jy = chunks[k, 3] + yslot * chunks[k, 4]
        s = zero
        for i in range(lo, hi):
            if xslot >= 0:
                v[i] = axpy_rule(v[i], a, x[i + jx])
            v[i] = g * v[i]
            if yslot >= 0:
                s += acc_rule(y[i + jy], v[i], zero)
        partial[k] = s


# ---------------------------------------------------------------------------
# 3. Line searches: trial points, slopes, casts
# ---------------------------------------------------------------------------

@cpu_kernel
def trial_cpu(p, u, s, out):
    """``out = p + s * u`` (a point on the search line); out's dtype may be
    wider than p's (float64 trial points of float32 params)."""
    for i in prange(p.shape[0]):
        out[i] = axpy_rule(p[i], s, u[i])


@cuda_kernel
def trial_cuda(p, u, s, out):
    for i in range(cuda.grid(1), p.shape[0], cuda.gridsize(1)):
        out[i] = axpy_rule(p[i], s, u[i])


@cpu_kernel
def dot_cpu(x, chunks, y, zero, partial):
    """``partial[k] = sum x[i] * y[i]`` over chunk k, accumulated in zero's
    dtype (the promoted dtype of x and y)."""
    for k in prange(chunks.shape[0]):
        s = zero
        for i in range(chunks[k, 0], chunks[k, 1]):
            s += acc_rule(x[i], y[i], zero)
        partial[k] = s


@cuda_kernel
def dot_cuda(x, chunks, y, zero, partial):
    for k in range(cuda.grid(1), chunks.shape[0], cuda.gridsize(1)):
        s = zero
        for i in range(chunks[k, 0], chunks[k, 1]):
            s += acc_rule(x[i], y[i], zero)
        partial[k] = s


@cpu_kernel
def cast_cpu(src, dst):
    """``dst[i] = src[i]`` rounded to dst's dtype."""
    for i in prange(src.shape[0]):
        dst[i] = src[i]


@cuda_kernel
def cast_cuda(src, dst):
    for i in range(cuda.grid(1), src.shape[0], cuda.gridsize(1)):
        dst[i] = src[i]


# ---------------------------------------------------------------------------
# 4. The scalar arithmetic of the line searches
#
# Written as rules so that LLVM contracts a*b + c into fma(a, b, c) exactly
# where XLA (also LLVM) does in optax's jitted line searches: evaluated with
# NumPy scalars (no contraction), the interpolated step sizes equalled
# XLA's in only 43 % (cubic) and 75 % (quadratic) of random cases; these
# rules equal them in all (tests/test_lbfgs.py::test_interpolation_matches_xla).
# Constants arrive cast to the dtype of the operand they meet (optax's
# weakly typed Python floats).
# ---------------------------------------------------------------------------

@rule
def nan_max(a, b):
    """jnp.maximum: NaN if either is NaN."""
    if a != a or a > b:
        return a
    return b


@rule
def nan_min(a, b):
    """jnp.minimum: NaN if either is NaN."""
    if a != a or a < b:
        return a
    return b


@rule
def floor_error(err):
    """max(err, 0), NaN -> inf (optax's treatment of criterion violations)."""
    if err != err:
        return np.inf
    return nan_max(err, 0.0)


@rule
def decrease_error_rule(stepsize, value_step, slope_step, value_init, slope_init,
                        slope_rtol, approx_slope, approx_dec_rtol, approx):
    """Violation of the sufficient decrease (Armijo, N&W eq. 3.7a), or, when
    ``approx``, the smaller of it and Hager & Zhang's approximate decrease
    (eq. 23, used only when the value is within approx_dec_rtol |f(w)| of
    f(w)); >= 0, inf for NaN. approx_slope = 2 slope_rtol - 1."""
    err = value_step - value_init - slope_rtol * stepsize * slope_init
    if approx:
        a_err = slope_step - approx_slope * slope_init
        delta = value_step - value_init - approx_dec_rtol * abs(value_init)
        err = nan_min(nan_max(a_err, delta), err)
    return floor_error(err)


@rule
def curvature_error_rule(slope_step, slope_init, curv_rtol):
    """Violation of the strong Wolfe curvature condition (N&W eq. 3.7b); >= 0,
    inf for NaN."""
    return floor_error(abs(slope_step) - curv_rtol * abs(slope_init))


@rule
def armijo_error_rule(stepsize, slope, value, new_value, one_plus_rtol, slope_rtol):
    """Backtracking's criterion ``f(w + eta u) - (1 + rtol) f(w) - eta c <u, g>``
    (NaN -> inf), floored at 0."""
    return floor_error(new_value - one_plus_rtol * value - stepsize * slope_rtol * slope)


@rule
def quadmin_rule(a, fa, fpa, b, fb):
    """Minimizer of the quadratic through (a, fa), (b, fb) with slope fpa at a."""
    D = fa
    C = fpa
    db = b - a
    B = (fb - D - C * db) / (db * db)
    return a - C / (2.0 * B)


@rule
def cubicmin_rule(a, fa, fpa, b, fb, c, fc):
    """Minimizer of the cubic through (a, fa), (b, fb), (c, fc) with slope fpa
    at a (scipy's _cubicmin; NaN if none). The 2x2 solve is XLA's: the dot
    product accumulated from 0 with fmas, then times 1/denom."""
    C = fpa
    db = b - a
    dc = c - a
    t = db * dc
    denom = t * t * (db - dc)
    d00 = dc * dc
    d01 = -(db * db)
    d10 = -(dc * dc * dc)
    d11 = db * db * db
    v0 = fb - fa - C * db
    v1 = fc - fa - C * dc
    r = 1.0 / denom
    A = (0.0 + d00 * v0 + d01 * v1) * r
    B = (0.0 + d10 * v0 + d11 * v1) * r
    radical = B * B - 3.0 * A * C
    return a + (-B + np.sqrt(radical)) / (3.0 * A)


@rule
def zoom_point_rule(low, value_low, slope_low, high, value_high, cubic_ref, value_cubic_ref):
    """The next trial of the zoom (N&W Algorithm 3.6): the cubic minimizer if it
    lies in the interval's inner 60 %, else the quadratic's if in the inner
    80 %, else the midpoint. Returns (middle, 0 cubic / 1 quadratic / 2 midpoint)."""
    delta = abs(high - low)
    left = min(high, low)
    right = max(high, low)
    cubic_chk = 0.2 * delta
    quad_chk = 0.1 * delta
    mc = cubicmin_rule(low, value_low, slope_low, high, value_high, cubic_ref, value_cubic_ref)
    if (mc > left + cubic_chk) and (mc < right - cubic_chk):
        return mc, 0
    mq = quadmin_rule(low, value_low, slope_low, high, value_high)
    if (mq > left + quad_chk) and (mq < right - quad_chk):
        return mq, 1
    return (low + high) / 2.0, 2
