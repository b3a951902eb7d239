r"""The solvers as reverse-communication state machines over flat arrays:
L-BFGS, BFGS and nonlinear CG (with their line searches), and proximal
gradient (ISTA/FISTA, which GradientDescent and ProjectedGradient are).

One run of jaxopt 0.8.5's ``LBFGS``, ``BFGS`` or ``NonlinearCG`` (the three
share their skeleton: a direction, jaxopt's zoom, backtracking or Hager-Zhang
line search along it or a fixed step, then the update of what the direction is made
from; ``ip[P_KIND]`` says which) is written once here, as ``advance``: a numba
function that moves the run forward until it needs the objective at a new
point, writes that point into ``vec[XT]`` and returns the request (the
classic L-BFGS-B ``task`` protocol)::

    task = advance(...)                  # START: asks for f, grad at x0
    while task != DONE:
        fs[TRIAL], vec[GT] = f(vec[XT]), grad f(vec[XT])    # the caller
        task = advance(...)

Everything the run remembers lives in plain arrays, so a batch of runs is
the same arrays with a leading lane axis, and every caller drives the same
code: the Python driver (``npopt.solvers.engine``) calls the user's Python
function between two calls of ``advance``; the compiled drivers below call
a numba function, one lane or many (``prange``) without returning to
Python; the vectorised driver evaluates all lanes that asked in one call.
A lane's numbers therefore never depend on the driver or on other lanes.

Per lane (``n`` params, ``m`` history pairs, ``nch = ceil(n / CHUNK)``):

* ``vec`` (NV, n): ``X`` params, ``G`` gradient, ``D`` direction, ``XT`` the
  point asked for, ``GT`` the gradient there (written by the caller), and
  for BFGS and CG four scratch rows (``VS``, ``VY``, ``VU``, ``VV``);
* ``hist``: L-BFGS: (2, m, n), the ring buffers ``s`` and ``y``; BFGS:
  (1, n, n), the inverse Hessian ``H``; CG: (1, 1, n), the conjugate
  direction;
* ``fs`` (NF + 2m,): real scalars (``F_*``), then ``rho`` (m) and the
  two-loop's ``alpha`` scratch (m);
* ``st`` (NI,): integer scalars (``I_*``: phase, counters, flags, status);
* ``part`` (nch, 2): scratch for the chunked dot products;

and shared by all lanes: ``hp`` (real hyperparameters, ``H_*``, in the
params' dtype so that float32 runs round as NumPy's float32 scalars do),
``ip`` (integer ones, ``P_*``) and ``seg`` (the pytree's leaf offsets:
slopes and norms are summed leaf by leaf, as jaxopt's tree functions do).

The arithmetic is the Python solver's, operation for operation: the vector
kernels are ``lbfgs``'s (FMA-contracted axpy, chunked dot products,
the two-loop recursion) and ``dense.dot_z`` (slopes); the scalar logic is
compiled *without* FMA contraction, because NumPy's scalar arithmetic (the
Python solvers') rounds every product; and the gradient norm is NumPy's
pairwise sum (``np.sum``), reproduced in ``_pairwise``.
"""
import math

import numpy as np
from numba.core import types as nbtypes
from numba.extending import overload

from ._jit import CHUNK, cuda, cuda_variant, machine
from .dense import (cholesky, dot_z, lu_factor, lu_solve, matmat, matvec, solve_triangular,
                    vecmat)
from .lbfgs import axpy_cpu, history_update_cpu, two_loop_cpu
from .projection import box_rule, non_negative_rule
from .prox import relu_shift_rule, soft_threshold_rule

_axpy = axpy_cpu.serial
_two_loop = two_loop_cpu.serial
_history_update = history_update_cpu.serial

# vec rows
X, G, D, XT, GT, VS, VY, VU, VV = 0, 1, 2, 3, 4, 5, 6, 7, 8
NV = 5          # L-BFGS; BFGS and CG use NV_SCRATCH rows
NV_SCRATCH = 9

# fs: real scalars
(F_VALUE, F_STEP, F_ERROR, F_GAMMA, F_TRIAL, F_T, F_V0, F_S0, F_PREV_T, F_PREV_V, F_PREV_S,
 F_LOW, F_VLOW, F_SLOW, F_HIGH, F_VHIGH, F_SHIGH, F_CREF, F_VCREF, F_SAFE, F_DEC_ERR,
 F_CURV_ERR, F_LS_ERR, F_LM_MU, F_LM_NU) = range(25)
NF = 25
# (the proximal-gradient machine reuses some: F_STEP its stepsize, F_T the
# trial step, F_V0 the value at y; FISTA's t is a float64 kept in st, below)

# st: integer scalars
(I_TASK, I_PHASE, I_ITER, I_RUN_ITERS, I_LS_ITER, I_NFUN, I_NGRAD, I_NLS, I_FAILED,
 I_INTERVAL, I_LS_DONE, I_LS_FAILED, I_STATUS, I_START, I_LS_NFUN, I_LS_NGRAD,
 I_PG_T, I_SIGN, I_PROX_A, I_PROX_B) = range(20)
NI = 20     # st[I_PG_T], viewed as float64: FISTA's t (a Python float in jaxopt,
            # so float64 whatever the params' dtype); st[I_PROX_A], st[I_PROX_B]
            # likewise: a compiled prox's scalar hyperparameters (Python floats)

# hp: real hyperparameters (params' dtype)
(H_TOL, H_C1, H_C2, H_C3, H_APPROX, H_1MC1, H_RTC, H_RTQ, H_ITHR, H_LSINC, H_LSTOL, H_LSMAX,
 H_MAXSTEP, H_MINSTEP, H_INC, H_FIXED, H_DEC, H_BTMAX, H_ZERO, H_ONE, H_TWO,
 H_THREE, H_EPS, H_PG_EPS, H_HALF, H_SMALL, H_DAMP, H_THIRD, H_MAXF, H_BETA,
 H_RIDGE, H_CG_TOL2) = range(32)
NH = 32      # H_ZERO ... H_THREE: 0, 1, 2, 3 in the params' dtype (numba would
             # promote ``x + 1`` of a float32 x to float64; NumPy does not)

# ip: integer hyperparameters
(P_MAXITER, P_M, P_LS, P_COND, P_MAXLS, P_INIT, P_STOP_LS_FAIL, P_USE_GAMMA, P_KIND,
 P_CG_METHOD, P_ACCEL, P_HAS_PROX, P_CHECK_BRACKET, P_M_RES, P_FREQ, P_LM_CG,
 P_PROX_OP) = range(17)
NP = 17

# the prox and projection operators the compiled drivers apply themselves
# (ip[P_PROX_OP]; npopt.prox / npopt.projection with scalar hyperparameters)
PROX_PYTHON, PROX_LASSO, PROX_NN_LASSO, PROX_NON_NEGATIVE, PROX_BOX = range(5)

(KIND_LBFGS, KIND_BFGS, KIND_CG, KIND_PG, KIND_FP, KIND_BISECT, KIND_LM,
 KIND_ANDERSON, KIND_BOXCDQP, KIND_GN) = range(10)
CG_POLAK_RIBIERE, CG_FLETCHER_REEVES, CG_HESTENES_STIEFEL = 0, 1, 2

LS_ZOOM, LS_BACKTRACKING, LS_FIXED = 0, 1, 2
COND_ARMIJO, COND_GOLDSTEIN, COND_STRONG_WOLFE, COND_WOLFE = 0, 1, 2, 3
INIT_INCREASE, INIT_MAX, INIT_CURRENT = 0, 1, 2

# tasks (what advance asks for; CONTINUE: internal, no evaluation needed;
# PROX: vec[XT] <- prox(vec[XT], hyperparams, fs[F_T]), in place; MAP:
# vec[XT] <- T(vec[XT]), the fixed-point map)
# RESID: the residuals at vec[XT] into the lane's residual slot (lm_slots);
# JAC: the dense Jacobian at vec[XT] into its Jacobian slot
(TASK_CONTINUE, TASK_DONE, TASK_EVAL, TASK_VALUE, TASK_PROX, TASK_MAP, TASK_RESID,
 TASK_JAC) = -1, 0, 1, 2, 3, 4, 5, 6
# phases (what advance does on its next step); BEGIN and ACCEPT need no
# evaluation: advance goes on at once
(PH_START, PH_INIT, PH_LS, PH_SAFE, PH_BT_GRAD, PH_FIXED, PH_DONE, PH_BEGIN,
 PH_ACCEPT, PH_PG_GRAD, PH_PG_PROX, PH_PG_VALUE, PH_BS_LOW, PH_BS_HIGH, PH_LM_INIT_R,
 PH_LM_INIT_J, PH_LM_TRIAL, PH_LM_ACCEPT_J) = range(18)

# per-lane outcome (I_STATUS)
(RUNNING, CONVERGED, MAXITER, LINESEARCH_FAILED, NONFINITE, NO_SIGN_CHANGE,
 UNBOUNDED) = -1, 0, 1, 2, 3, 4, 5


# --------------------------------------------------------------------------
# Scalar and reduction helpers (NumPy's semantics).

@machine
def _copy(dst, src):
    """dst[:] = src, element by element (a slice assignment needs numba's
    runtime on the GPU)."""
    for i in range(dst.shape[0]):
        dst[i] = src[i]


@machine
def _pow(a, b):
    """np.power of two scalars (the C library's pow, as NumPy's)."""
    return np.power(a, b)   # cpu-ok: a scalar, C's pow as in NumPy


@cuda_variant(_pow)
def _pow_cuda(a, b):
    # CUDA's pow (libdevice, within 2 ulp): LM's damping update is the one
    # place where a GPU lane may round differently from the CPU
    return a ** b


@machine
def _maximum(a, b):
    """np.maximum: NaN if either is NaN."""
    if a != a:
        return a
    if b != b:
        return b
    return a if a >= b else b


@machine
def _minimum(a, b):
    """np.minimum: NaN if either is NaN."""
    if a != a:
        return a
    if b != b:
        return b
    return a if a <= b else b


@machine
def _nan_to_inf(x):
    return np.inf if x != x else x


@machine
def _block_sq(a, lo, n, zero):
    """NumPy's pairwise sum of squares on a block of at most 128 elements: 8
    accumulators (sequential below 8 elements), the rest added in order."""
    if n < 8:
        acc = zero
        for i in range(lo, lo + n):
            acc += a[i] * a[i]
        return acc
    r0 = a[lo] * a[lo]
    r1 = a[lo + 1] * a[lo + 1]
    r2 = a[lo + 2] * a[lo + 2]
    r3 = a[lo + 3] * a[lo + 3]
    r4 = a[lo + 4] * a[lo + 4]
    r5 = a[lo + 5] * a[lo + 5]
    r6 = a[lo + 6] * a[lo + 6]
    r7 = a[lo + 7] * a[lo + 7]
    m = n - n % 8
    for i in range(lo + 8, lo + m, 8):
        r0 += a[i] * a[i]
        r1 += a[i + 1] * a[i + 1]
        r2 += a[i + 2] * a[i + 2]
        r3 += a[i + 3] * a[i + 3]
        r4 += a[i + 4] * a[i + 4]
        r5 += a[i + 5] * a[i + 5]
        r6 += a[i + 6] * a[i + 6]
        r7 += a[i + 7] * a[i + 7]
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for i in range(lo + m, lo + n):
        res += a[i] * a[i]
    return res


@machine
def _pairwise_sq(a, lo, n, zero):
    """``np.sum(np.square(a[lo:lo + n]))`` in NumPy's pairwise order: blocks of
    at most 128 elements (``_block_sq``), longer ranges split in two halves
    at a multiple of 8 and added, ``left + right``. The squares are rounded
    before they are added (no contraction here). The recursion is unrolled
    into an explicit stack (numba's cache does not keep recursive functions;
    the GPU has none): ``_pairwise_stack``."""
    if n <= 128:
        return _block_sq(a, lo, n, zero)
    return _pairwise_stack(a, lo, n, zero, np.empty(64, np.int64), np.empty(64, np.int64),
                           np.empty(64, np.int64), np.empty(64, a.dtype))


@cuda_variant(_pairwise_sq)
def _pairwise_sq_cuda(a, lo, n, zero):
    if n <= 128:
        return _block_sq(a, lo, n, zero)
    return _pairwise_stack(a, lo, n, zero, cuda.local.array(64, np.int64),
                           cuda.local.array(64, np.int64), cuda.local.array(64, np.int64),
                           cuda.local.array(64, a.dtype))


@machine
def _pairwise_stack(a, lo, n, zero, los, ns, stage, vals):
    """``_pairwise_sq`` of more than 128 elements, its stacks given (64
    entries: deeper than any array)."""
    sp = 0
    nv = 0
    los[0], ns[0], stage[0] = lo, n, 0
    sp = 1
    while sp > 0:
        top = sp - 1
        l, k = los[top], ns[top]
        if k <= 128:
            vals[nv] = _block_sq(a, l, k, zero)
            nv += 1
            sp -= 1
            continue
        k2 = k // 2
        k2 -= k2 % 8
        if stage[top] == 0:
            stage[top] = 1
            los[sp], ns[sp], stage[sp] = l, k2, 0
            sp += 1
        elif stage[top] == 1:
            stage[top] = 2
            los[sp], ns[sp], stage[sp] = l + k2, k - k2, 0
            sp += 1
        else:
            vals[nv - 2] = vals[nv - 2] + vals[nv - 1]
            nv -= 1
            sp -= 1
    return vals[0]


@machine
def l2_norm(g, seg, zero):
    """jaxopt's ``tree_l2_norm``: per leaf ``np.sum(g**2)``, leaves added in
    order, then the square root."""
    total = _pairwise_sq(g, seg[0], seg[1] - seg[0], zero)
    for k in range(1, seg.shape[0] - 1):
        total = total + _pairwise_sq(g, seg[k], seg[k + 1] - seg[k], zero)
    return math.sqrt(total)


@machine
def slope(g, d, seg, zero):
    """``<g, d>`` per leaf (``dense.dot_z``'s order), leaves added in order."""
    total = dot_z(g[seg[0]:seg[1]], d[seg[0]:seg[1]], zero)
    for k in range(1, seg.shape[0] - 1):
        total = total + dot_z(g[seg[k]:seg[k + 1]], d[seg[k]:seg[k + 1]], zero)
    return total


@machine
def _cubicmin(a, fa, fpa, b, fb, c, fc, three):
    """Critical point of the cubic through (a, fa), (b, fb), (c, fc) with slope
    fpa at a (scipy's ``_cubicmin``; NaN if none); as the Python solver."""
    C = fpa
    db = b - a
    dc = c - a
    dbc = db * dc
    denom = dbc * dbc * (db - dc)
    v0 = fb - fa - C * db
    v1 = fc - fa - C * dc
    db2 = db * db
    dc2 = dc * dc
    A = (dc2 * v0 + -db2 * v1) / denom
    B = (-(dc * dc2) * v0 + db * db2 * v1) / denom
    radical = B * B - three * A * C
    return a + (-B + math.sqrt(radical)) / (three * A)


@machine
def _quadmin(a, fa, fpa, b, fb, two):
    D = fa
    C = fpa
    db = b - a
    B = (fb - D - C * db) / (db * db)
    return a - C / (two * B)


# --------------------------------------------------------------------------
# The machine.

@machine
def _request(vec, t, st, task, phase):
    """Ask for the objective at x + t d."""
    _axpy(vec[X], t, vec[D], vec[XT])
    st[I_PHASE] = phase
    st[I_TASK] = task
    return task


@machine
def _begin_iteration(vec, hist, fs, st, hp, ip, seg, part):
    """The L-BFGS direction and the first trial of the line search."""
    zero = hp[H_ZERO]
    n = vec.shape[1]
    g = vec[G]
    d = vec[D]
    if ip[P_KIND] == KIND_LBFGS:        # d = -H g by the two-loop recursion
        m = ip[P_M]
        for i in range(n):
            d[i] = -g[i]
        start = st[I_ITER] % m if m > 0 else 0
        st[I_START] = start
        if m > 0:
            _two_loop(d, hist[0], hist[1], fs[NF:NF + m], fs[F_GAMMA], start, zero,
                      fs[NF + m:NF + 2 * m], part[:, 0])
    elif ip[P_KIND] == KIND_BFGS:       # d = -(H g)
        matvec(hist[0], g, d)
        for i in range(n):
            d[i] = -d[i]
    elif ip[P_LS] == LS_BACKTRACKING:   # CG: jaxopt's backtracking gets no direction
        for i in range(n):
            d[i] = -g[i]
    else:                               # CG: the conjugate direction
        _copy(d, hist[0, 0])
    kind = ip[P_LS]
    if kind == LS_FIXED:
        fs[F_T] = hp[H_FIXED]
        return _request(vec, fs[F_T], st, TASK_EVAL, PH_FIXED)
    # the first trial step (jaxopt's _init_stepsize)
    strategy = ip[P_INIT]
    if strategy == INIT_MAX:
        t0 = hp[H_MAXSTEP]
    elif strategy == INIT_CURRENT:
        t0 = fs[F_STEP]
    elif fs[F_STEP] <= hp[H_MINSTEP]:
        t0 = hp[H_MAXSTEP]
    else:
        t0 = fs[F_STEP] * hp[H_INC]
    value = fs[F_VALUE]
    s0 = slope(g, d, seg, zero)
    fs[F_V0] = value
    fs[F_S0] = s0
    st[I_LS_ITER] = 0
    st[I_LS_DONE] = 0
    st[I_LS_FAILED] = 0
    st[I_LS_NFUN] = 0
    st[I_LS_NGRAD] = 0
    fs[F_LS_ERR] = np.inf
    if kind == LS_ZOOM:
        fs[F_PREV_T] = zero
        fs[F_PREV_V] = value
        fs[F_PREV_S] = s0
        fs[F_LOW] = zero
        fs[F_VLOW] = value
        fs[F_SLOW] = s0
        fs[F_HIGH] = zero
        fs[F_VHIGH] = value
        fs[F_SHIGH] = s0
        fs[F_CREF] = zero
        fs[F_VCREF] = value
        fs[F_SAFE] = zero
        fs[F_DEC_ERR] = np.inf
        fs[F_CURV_ERR] = np.inf
        st[I_INTERVAL] = 0
    if kind == LS_HAGER_ZHANG:        # its init_state evaluates even with maxls == 0
        return _hz_begin(vec, fs, st, hp, t0)
    if ip[P_MAXLS] == 0:              # jaxopt's run returns before any trial
        _copy(vec[XT], vec[X])
        _copy(vec[GT], vec[G])
        fs[F_TRIAL] = value
        return _accept(fs, st, t0, 0)
    if kind == LS_ZOOM:
        return _zoom_trial(vec, fs, st, hp, t0)
    return _backtracking_trial(vec, fs, st, hp, ip, t0)


@machine
def _accept(fs, st, stepsize, failed):
    """The line search ended: accept vec[XT] on the next step."""
    fs[F_T] = stepsize
    st[I_LS_FAILED] = failed
    st[I_PHASE] = PH_ACCEPT
    return TASK_CONTINUE


@machine
def _zoom_trial(vec, fs, st, hp, t0):
    """The next trial of the zoom search: while searching the interval
    (Nocedal & Wright Algorithm 3.5) the step grows; inside it (Algorithm 3.6)
    the safeguarded cubic, quadratic or bisection point."""
    if st[I_INTERVAL] == 0:
        if st[I_LS_ITER] == 0:
            t = t0
        else:
            t = hp[H_LSINC] * fs[F_PREV_T]
        t = _minimum(t, hp[H_LSMAX])
    else:
        low, high = fs[F_LOW], fs[F_HIGH]
        delta = abs(high - low)
        left = _minimum(high, low)
        right = _maximum(high, low)
        cubic_chk = hp[H_RTC] * delta
        quad_chk = hp[H_RTQ] * delta
        middle_cubic = _cubicmin(low, fs[F_VLOW], fs[F_SLOW], high, fs[F_VHIGH], fs[F_CREF],
                                 fs[F_VCREF], hp[H_THREE])
        if left + cubic_chk < middle_cubic and middle_cubic < right - cubic_chk:
            t = middle_cubic
        else:
            middle_quad = _quadmin(low, fs[F_VLOW], fs[F_SLOW], high, fs[F_VHIGH], hp[H_TWO])
            if left + quad_chk < middle_quad and middle_quad < right - quad_chk:
                t = middle_quad
            else:
                t = (low + high) / hp[H_TWO]
    fs[F_T] = t
    return _request(vec, t, st, TASK_EVAL, PH_LS)


@machine
def _zoom_errors(fs, hp, t, value_step, slope_step):
    value_init, slope_init = fs[F_V0], fs[F_S0]
    exact = value_step - value_init - hp[H_C1] * t * slope_init
    approx = slope_step - hp[H_APPROX] * slope_init
    delta_values = value_step - value_init - hp[H_C3] * abs(value_init)
    zero = hp[H_ZERO]
    decrease = _minimum(_maximum(approx, delta_values), exact)
    decrease = _nan_to_inf(_maximum(decrease, zero))
    curvature = abs(slope_step) - hp[H_C2] * abs(slope_init)
    curvature = _nan_to_inf(_maximum(curvature, zero))
    return decrease, curvature, _maximum(decrease, curvature)


@machine
def _zoom_arrived(vec, hist, fs, st, hp, ip, seg, part):
    """The value and gradient at the zoom trial ``fs[F_T]`` arrived."""
    zero = hp[H_ZERO]
    t = fs[F_T]
    value_step = fs[F_TRIAL]
    slope_step = slope(vec[GT], vec[D], seg, zero)
    it = st[I_LS_ITER]
    tol = hp[H_LSTOL]
    dec, curv, err = _zoom_errors(fs, hp, t, value_step, slope_step)
    fs[F_DEC_ERR] = dec
    fs[F_CURV_ERR] = curv
    fs[F_LS_ERR] = err
    st[I_LS_NFUN] += 1
    st[I_LS_NGRAD] += 1
    if st[I_INTERVAL] == 0:
        # Algorithm 3.5
        max_reached = t >= hp[H_LSMAX]
        if dec <= tol:
            fs[F_SAFE] = t
        set_high = (dec > zero) or (value_step >= fs[F_PREV_V] and it > 0)
        set_low = (slope_step >= zero) and not set_high
        if set_low:
            fs[F_HIGH] = fs[F_PREV_T]
            fs[F_VHIGH] = fs[F_PREV_V]
            fs[F_SHIGH] = fs[F_PREV_S]
            fs[F_LOW] = t
            fs[F_VLOW] = value_step
            fs[F_SLOW] = slope_step
        else:
            fs[F_LOW] = fs[F_PREV_T]
            fs[F_VLOW] = fs[F_PREV_V]
            fs[F_SLOW] = fs[F_PREV_S]
            fs[F_HIGH] = t
            fs[F_VHIGH] = value_step
            fs[F_SHIGH] = slope_step
        interval_found = set_high or set_low or err <= tol
        done = (err <= tol) or (max_reached and not interval_found)
        failed = (it + 1 >= ip[P_MAXLS]) and not done
        fs[F_PREV_T] = t
        fs[F_PREV_V] = value_step
        fs[F_PREV_S] = slope_step
        fs[F_CREF] = fs[F_LOW]
        fs[F_VCREF] = fs[F_VLOW]
        st[I_INTERVAL] = 1 if interval_found else 0
    else:
        # Algorithm 3.6
        low, value_low, slope_low = fs[F_LOW], fs[F_VLOW], fs[F_SLOW]
        high, value_high, slope_high = fs[F_HIGH], fs[F_VHIGH], fs[F_SHIGH]
        too_small = abs(high - low) <= hp[H_ITHR]
        safe = t if dec <= tol else fs[F_SAFE]
        safe = _maximum(safe, fs[F_SAFE])
        fs[F_SAFE] = safe
        done = err <= tol
        set_high_to_middle = (dec > zero) or (value_step >= value_low)
        set_high_to_low = (slope_step * (high - low) >= zero) and not set_high_to_middle
        if set_high_to_middle:
            fs[F_HIGH] = t
            fs[F_VHIGH] = value_step
            fs[F_SHIGH] = slope_step
        if set_high_to_low:
            fs[F_HIGH] = low
            fs[F_VHIGH] = value_low
            fs[F_SHIGH] = slope_low
        if not set_high_to_middle:
            fs[F_LOW] = t
            fs[F_VLOW] = value_step
            fs[F_SLOW] = slope_step
        if set_high_to_middle or set_high_to_low:
            fs[F_CREF] = high
            fs[F_VCREF] = value_high
        else:
            fs[F_CREF] = low
            fs[F_VCREF] = value_low
        presumably_failed = (it + 1 >= ip[P_MAXLS]) or (too_small and safe > zero)
        failed = presumably_failed and not done
    st[I_LS_ITER] = it + 1
    if done:
        return _accept(fs, st, t, 0)
    if failed:
        # the safe step if any (or if the trial left the domain), else the trial
        safe = fs[F_SAFE]
        final = safe if (safe > zero or math.isinf(dec)) else t
        fs[F_T] = final
        st[I_LS_NFUN] += 1
        st[I_LS_NGRAD] += 1
        return _request(vec, final, st, TASK_EVAL, PH_SAFE)
    return _zoom_trial(vec, fs, st, hp, t)


@machine
def _backtracking_trial(vec, fs, st, hp, ip, t):
    t = _minimum(hp[H_BTMAX], t)
    fs[F_T] = t
    cond = ip[P_COND]
    task = TASK_VALUE if (cond == COND_ARMIJO or cond == COND_GOLDSTEIN) else TASK_EVAL
    return _request(vec, t, st, task, PH_LS)


@machine
def _backtracking_arrived(vec, hist, fs, st, hp, ip, seg, part):
    """The objective at the backtracking trial ``fs[F_T]`` arrived."""
    zero = hp[H_ZERO]
    t = fs[F_T]
    cond = ip[P_COND]
    value, slope0 = fs[F_V0], fs[F_S0]
    new_value = fs[F_TRIAL]
    st[I_LS_NFUN] += 1
    if cond == COND_ARMIJO or cond == COND_GOLDSTEIN:
        new_slope = slope0
    else:
        new_slope = slope(vec[GT], vec[D], seg, zero)
        st[I_LS_NGRAD] += 1
    c1 = hp[H_C1]
    diff1 = new_value - (value + c1 * t * slope0)
    error1 = _maximum(_nan_to_inf(diff1), zero)
    error = error1
    if cond == COND_STRONG_WOLFE:
        diff2 = abs(new_slope) - hp[H_C2] * abs(slope0)
        error = _maximum(error1, _maximum(_nan_to_inf(diff2), zero))
    elif cond == COND_WOLFE:
        diff2 = hp[H_C2] * slope0 - new_slope
        error = _maximum(error1, _maximum(_nan_to_inf(diff2), zero))
    elif cond == COND_GOLDSTEIN:
        diff2 = value + hp[H_1MC1] * t * slope0 - new_value
        error = _maximum(error1, _maximum(_nan_to_inf(diff2), zero))
    fs[F_LS_ERR] = error
    it = st[I_LS_ITER]
    done = error <= hp[H_LSTOL]
    failed = (it + 1 == ip[P_MAXLS]) and not done
    st[I_LS_ITER] = it + 1
    if done or failed:
        st[I_LS_FAILED] = 1 if failed else 0
        if cond == COND_ARMIJO or cond == COND_GOLDSTEIN:
            # the gradient at the final point (a value and a gradient)
            st[I_PHASE] = PH_BT_GRAD
            st[I_TASK] = TASK_EVAL
            return TASK_EVAL
        return _accept(fs, st, t, st[I_LS_FAILED])
    return _backtracking_trial(vec, fs, st, hp, ip, t * hp[H_DEC])


# --------------------------------------------------------------------------
# Hager-Zhang (jaxopt's HagerZhangLineSearch, as npopt.solvers.linesearch
# runs it inside LBFGS, BFGS and NonlinearCG: ``init_state`` brackets from
# the step 1 and checks the bracket's better end; then ``update`` (secant^2,
# a bisection if the bracket shrank too little, the better end, the value
# and gradient at the best step) while ``error > tol``, ``maxls`` updates at
# most). The Python search's nested loops are a small call stack here: each
# evaluation is a request, and the phase says what its result is for. The
# update subroutine (U0-U3) returns to ``st[I_HZ_RET]``; a secant's two
# points are asked for one after the other. As the Python search, the
# search evaluates what jaxopt evaluates and keeps, and counts every call.

LS_HAGER_ZHANG = 3

# what the evaluation that arrives is for
(PH_HZ_BRACKET, PH_HZ_UPD, PH_HZ_SEC_A, PH_HZ_SEC_B, PH_HZ_ILOW, PH_HZ_IHIGH, PH_HZ_LOW,
 PH_HZ_HIGH, PH_HZ_FINAL) = range(40, 49)
PH_HZ_FIRST, PH_HZ_LAST = 40, 48

# where the update subroutine returns: bracketing (B2), secant^2's first and
# second update, the bisection of ``update``
HZ_RET_BRACKET, HZ_RET_SECANT1, HZ_RET_SECANT2, HZ_RET_BISECT = 0, 1, 2, 3

# the search's scalars, in the slots zoom uses (a search is one or the other)
F_HZ_THR = F_PREV_T      # phi(0) + eps_k, eps_k = approximate_wolfe_threshold |phi(0)|
F_HZ_INIT = F_PREV_V     # the step the search was called with (returned when done at init)
F_HZ_ULOW = F_PREV_S     # the update subroutine's [low, high]
F_HZ_UHIGH = F_VLOW
F_HZ_A = F_SLOW          # a secant's points and the slope at the first
F_HZ_B = F_SHIGH
F_HZ_DA = F_VHIGH
F_HZ_C = F_CREF          # secant^2: its first secant point
F_HZ_NLOW = F_VCREF      # secant^2: the bracket after its first update
F_HZ_NHIGH = F_SAFE
F_HZ_VL = F_DEC_ERR      # the value and slope at the bracket's low end
F_HZ_SL = F_CURV_ERR
F_HZ_BEST = F_LM_MU      # bracketing: the last trial with phi <= phi(0) + eps_k
# (F_LOW, F_HIGH: the search's bracket; F_LS_ERR its error; I_LS_DONE,
# I_LS_FAILED its done and failed; I_LS_ITER its updates)
I_HZ_RET = I_INTERVAL    # where the update subroutine returns
I_HZ_STAGE = I_SIGN      # bracketing: 0 before its first trial; secant^2: which secant
I_HZ_FAILED = I_PG_T     # the init's or the update's ``failed`` so far
H_HZ_EPS = H_C3          # approximate_wolfe_threshold (1e-6)
H_HZ_EXPAND = H_LSINC    # expansion_factor
H_HZ_SHRINK = H_RTC      # shrinkage_factor


@machine
def _hz_ask(vec, fs, st, t, phase):
    """Ask for phi(t), phi'(t) (value and gradient at x + t d)."""
    fs[F_T] = t
    return _request(vec, t, st, TASK_EVAL, phase)


@machine
def _hz_begin(vec, fs, st, hp, t0):
    """``init_state``: the threshold, then the bracket from the step 1 (B0)."""
    value = fs[F_V0]
    fs[F_HZ_THR] = value + hp[H_HZ_EPS] * abs(value)
    fs[F_HZ_INIT] = t0
    fs[F_HZ_BEST] = hp[H_ZERO]
    st[I_HZ_STAGE] = 0
    return _hz_ask(vec, fs, st, hp[H_ONE], PH_HZ_BRACKET)


@machine
def _hz_wolfe_error(fs, hp, c, value_c, slope_c):
    """min(Wolfe error, approximate Wolfe error) at c (the Python search's
    ``_wolfe_error``)."""
    value_init, slope0 = fs[F_V0], fs[F_S0]
    zero = hp[H_ZERO]
    armijo = value_c - (value_init + hp[H_C1] * c * slope0)
    armijo_error = _maximum(armijo, zero)
    curvature = hp[H_C2] * slope0 - slope_c
    wolfe_error = _maximum(armijo_error, curvature)
    approx = slope_c - hp[H_APPROX] * slope0
    approx_error = _maximum(_maximum(approx, zero), curvature)
    approx_error = _maximum(approx_error, value_c - fs[F_HZ_THR])
    return _minimum(wolfe_error, approx_error)


@machine
def _hz_sub(vec, fs, st, low, high, middle, ret):
    """The update subroutine on [low, high] from ``middle`` (evaluated first,
    whether inside or not); returns to ``ret``."""
    fs[F_HZ_ULOW] = low
    fs[F_HZ_UHIGH] = high
    st[I_HZ_RET] = ret
    return _hz_ask(vec, fs, st, middle, PH_HZ_UPD)


@machine
def _hz_secant(vec, fs, st, a, b):
    """The secant point of phi' between a and b: phi'(a), then phi'(b)."""
    fs[F_HZ_A] = a
    fs[F_HZ_B] = b
    return _hz_ask(vec, fs, st, a, PH_HZ_SEC_A)


@machine
def _hz_ends(vec, fs, st, failed, low, high, phase):
    """The bracket [low, high] is final: phi at its low end, then its high
    end (``phase``: PH_HZ_ILOW in init_state, PH_HZ_LOW in an update)."""
    fs[F_LOW] = low
    fs[F_HIGH] = high
    st[I_HZ_FAILED] = 1 if failed else 0
    return _hz_ask(vec, fs, st, low, phase)


@machine
def _hz_after_secant2(vec, fs, st, hp, failed, new_low, new_high):
    """``update`` after secant^2: the bracket kept when done at init, a
    bisection when it shrank by less than shrinkage_factor (its ``failed``
    replaces the one so far, as in jaxopt), then its ends."""
    failed = st[I_LS_FAILED] != 0 or failed
    if st[I_LS_DONE] != 0:
        new_low, new_high = fs[F_LOW], fs[F_HIGH]
    elif (new_high - new_low) > hp[H_HZ_SHRINK] * (fs[F_HIGH] - fs[F_LOW]):
        return _hz_sub(vec, fs, st, new_low, new_high, (new_low + new_high) / hp[H_TWO],
                       HZ_RET_BISECT)
    return _hz_ends(vec, fs, st, failed, new_low, new_high, PH_HZ_LOW)


@machine
def _hz_sub_return(vec, fs, st, hp, failed, low, high):
    """The update subroutine ended with (failed, low, high): back to its caller."""
    ret = st[I_HZ_RET]
    if ret == HZ_RET_BRACKET:
        return _hz_ends(vec, fs, st, failed, low, high, PH_HZ_ILOW)
    if ret == HZ_RET_SECANT1:
        # S2-S4: a second secant when the first point became an end
        c = fs[F_HZ_C]
        fs[F_HZ_NLOW] = low
        fs[F_HZ_NHIGH] = high
        st[I_HZ_STAGE] = 1
        if c == low:
            return _hz_secant(vec, fs, st, fs[F_LOW], low)
        if c == high:
            return _hz_secant(vec, fs, st, fs[F_HIGH], high)
        return _hz_after_secant2(vec, fs, st, hp, failed, low, high)
    if ret == HZ_RET_SECANT2:
        return _hz_after_secant2(vec, fs, st, hp, failed, low, high)
    return _hz_ends(vec, fs, st, failed, low, high, PH_HZ_LOW)     # after the bisection


@machine
def _hz_arrived(vec, fs, st, hp, ip, seg):
    """phi(t), phi'(t) at the Hager-Zhang trial ``fs[F_T]`` arrived."""
    zero = hp[H_ZERO]
    phase = st[I_PHASE]
    t = fs[F_T]
    v = fs[F_TRIAL]
    s = slope(vec[GT], vec[D], seg, zero)
    st[I_LS_NFUN] += 1
    st[I_LS_NGRAD] += 1
    if phase == PH_HZ_BRACKET:
        # B0-B3: expand from 1 until phi' >= 0 or phi > phi(0) + eps_k
        failed = math.isnan(v) or math.isnan(s)
        first = st[I_HZ_STAGE] == 0
        st[I_HZ_STAGE] = 1
        if failed or (first and v == -np.inf):
            return _hz_ends(vec, fs, st, failed, zero, hp[H_ONE], PH_HZ_ILOW)
        if s >= zero:                                            # B1
            return _hz_ends(vec, fs, st, False, fs[F_HZ_BEST], t, PH_HZ_ILOW)
        if v > fs[F_HZ_THR]:                                     # B2
            return _hz_sub(vec, fs, st, zero, t, t / hp[H_TWO], HZ_RET_BRACKET)
        if v <= fs[F_HZ_THR]:
            fs[F_HZ_BEST] = t
        return _hz_ask(vec, fs, st, hp[H_HZ_EXPAND] * t, PH_HZ_BRACKET)   # B3
    if phase == PH_HZ_UPD:
        # U1-U3 (jaxopt's bisection halves the [low, high] it started from)
        low, high = fs[F_HZ_ULOW], fs[F_HZ_UHIGH]
        failed = math.isnan(v) or math.isnan(s)
        if t < high and t > low and not failed:
            update_right = s >= zero
            new_high = t if update_right else high
            done = update_right
            update_left = v <= fs[F_HZ_THR]
            new_low = t if (not done and update_left) else low
            done = done or update_left
            if not done:
                new_high = t
            done = done or v == -np.inf
            fs[F_HZ_ULOW] = new_low
            fs[F_HZ_UHIGH] = new_high
            if not done:
                return _hz_ask(vec, fs, st, (low + high) / hp[H_TWO], PH_HZ_UPD)
            low, high = new_low, new_high
        return _hz_sub_return(vec, fs, st, hp, failed, low, high)
    if phase == PH_HZ_SEC_A:
        fs[F_HZ_DA] = s
        return _hz_ask(vec, fs, st, fs[F_HZ_B], PH_HZ_SEC_B)
    if phase == PH_HZ_SEC_B:
        a, b, da = fs[F_HZ_A], fs[F_HZ_B], fs[F_HZ_DA]
        c = (a * s - b * da) / (s - da)
        if st[I_HZ_STAGE] == 0:
            fs[F_HZ_C] = c
            return _hz_sub(vec, fs, st, fs[F_LOW], fs[F_HIGH], c, HZ_RET_SECANT1)
        return _hz_sub(vec, fs, st, fs[F_HZ_NLOW], fs[F_HZ_NHIGH], c, HZ_RET_SECANT2)
    if phase == PH_HZ_ILOW or phase == PH_HZ_LOW:
        fs[F_HZ_VL] = v
        fs[F_HZ_SL] = s
        return _hz_ask(vec, fs, st, fs[F_HIGH], phase + 1)       # the high end
    if phase == PH_HZ_IHIGH or phase == PH_HZ_HIGH:
        value_low, slope_low = fs[F_HZ_VL], fs[F_HZ_SL]
        better_low = value_low < v
        best = fs[F_LOW] if better_low else fs[F_HIGH]
        slope_best = slope_low if better_low else s
        value_best = _minimum(value_low, v)
        if phase == PH_HZ_IHIGH:                                 # init_state's end
            error = _hz_wolfe_error(fs, hp, best, value_best, slope_best)
            fs[F_LS_ERR] = error
            done = error <= hp[H_LSTOL]
            failed = (st[I_HZ_FAILED] != 0 or math.isnan(error)) and not done
            st[I_LS_DONE] = 1 if done else 0
            st[I_LS_FAILED] = 1 if failed else 0
            if ip[P_MAXLS] == 0:          # jaxopt's run returns the initial state
                _copy(vec[XT], vec[X])
                _copy(vec[GT], vec[G])
                fs[F_TRIAL] = fs[F_VALUE]
                return _accept(fs, st, fs[F_HZ_INIT], st[I_LS_FAILED])
            st[I_HZ_STAGE] = 0
            return _hz_secant(vec, fs, st, fs[F_LOW], fs[F_HIGH])
        if st[I_LS_DONE] == 0:           # else the error stays the init's
            fs[F_LS_ERR] = _hz_wolfe_error(fs, hp, best, value_best, slope_best)
        return _hz_ask(vec, fs, st, best, PH_HZ_FINAL)
    # PH_HZ_FINAL: the update's point; accept it, or update again while
    # error > tol (maxls updates at most)
    error = fs[F_LS_ERR]
    tol = hp[H_LSTOL]
    was_done = st[I_LS_DONE] != 0
    finite = math.isfinite(v)
    done = (was_done or error <= tol) and finite
    it = st[I_LS_ITER] + 1
    failed = st[I_HZ_FAILED] != 0 or (it == ip[P_MAXLS] and not done)
    # npopt: NaN (the error, or the value here) fails and ends the search
    failed = (failed or math.isnan(error) or not finite) and not done
    st[I_LS_ITER] = it
    st[I_LS_DONE] = 1 if done else 0
    st[I_LS_FAILED] = 1 if failed else 0
    if it < ip[P_MAXLS] and error > tol:
        st[I_HZ_STAGE] = 0
        return _hz_secant(vec, fs, st, fs[F_LOW], fs[F_HIGH])
    return _accept(fs, st, fs[F_HZ_INIT] if was_done else t, st[I_LS_FAILED])


@machine
def _bfgs_update(vec, H, hp, seg):
    """H <- the BFGS update with s = x_new - x, y = g_new - g (Nocedal &
    Wright (6.17)), as ``npopt.solvers.bfgs.bfgs_update`` computes it:
    ``H - rho (s v' + u s') + (rho^2 <y, u> + rho) s s'`` with ``u = H y``,
    ``v = y' H``, ``rho = 1 / <y, s>``; unchanged when rho is not finite."""
    n = vec.shape[1]
    s, y, u, v = vec[VS], vec[VY], vec[VU], vec[VV]
    for i in range(n):
        s[i] = vec[XT, i] - vec[X, i]
        y[i] = vec[GT, i] - vec[G, i]
    rho = hp[H_ONE] / dot_z(y, s, hp[H_ZERO])
    if not math.isfinite(rho):
        return
    matvec(H, y, u)
    vecmat(y, H, v)
    c = rho * rho * dot_z(y, u, hp[H_ZERO]) + rho
    for i in range(n):
        for j in range(n):
            h = H[i, j] - rho * (s[i] * v[j] + u[i] * s[j])
            H[i, j] = h + c * (s[i] * s[j])


@machine
def _cg_update(vec, cg, hp, ip, seg):
    """The next conjugate direction ``-g_new + beta cg`` (jaxopt's
    ``NonlinearCG``; beta clipped at 0, denominators at least 1e-6)."""
    n = vec.shape[1]
    zero, eps = hp[H_ZERO], hp[H_EPS]
    g, gt, diff, neg = vec[G], vec[GT], vec[VS], vec[VY]
    method = ip[P_CG_METHOD]
    for i in range(n):
        diff[i] = gt[i] - g[i]
    if method == CG_POLAK_RIBIERE:
        gtg = slope(g, g, seg, zero)
        gtg = gtg if gtg >= eps else eps
        beta = slope(diff, gt, seg, zero) / gtg
    elif method == CG_FLETCHER_REEVES:
        gtg = slope(g, g, seg, zero)
        gtg = gtg if gtg >= eps else eps
        beta = slope(gt, gt, seg, zero) / gtg
    else:
        dtg = slope(diff, cg, seg, zero)
        dtg = dtg if dtg >= eps else eps
        beta = slope(diff, gt, seg, zero) / dtg
    beta = _maximum(beta, zero)
    for i in range(n):
        neg[i] = -gt[i]
    _axpy(neg, beta, cg, cg)


@machine
def _finish_iteration(vec, hist, fs, st, hp, ip, seg, part, stepsize, failed):
    """Accept the point in vec[XT] (value fs[F_TRIAL], gradient vec[GT]):
    store the curvature pair, move, count, and stop or go on to the next
    iteration (phase BEGIN)."""
    zero = hp[H_ZERO]
    m = ip[P_M]
    one = hp[H_ONE]
    gamma = one
    if ip[P_KIND] == KIND_BFGS:
        _bfgs_update(vec, hist[0], hp, seg)
    elif ip[P_KIND] == KIND_CG:
        fs[F_ERROR] = l2_norm(vec[G], seg, zero)     # jaxopt's CG: the norm of the old gradient
        _cg_update(vec, hist[0, 0], hp, ip, seg)
    elif m > 0:
        start = st[I_START]
        _history_update(vec[XT], vec[X], vec[GT], vec[G], hist[0, start], hist[1, start], zero,
                        part)
        sy = zero
        yy = zero
        for k in range(part.shape[0]):
            sy += part[k, 0]
        for k in range(part.shape[0]):
            yy += part[k, 1]
        fs[NF + start] = zero if sy == zero else one / sy
        if ip[P_USE_GAMMA] != 0:
            gamma = sy / yy if yy > zero else one
    fs[F_GAMMA] = gamma
    _copy(vec[X], vec[XT])
    _copy(vec[G], vec[GT])
    fs[F_VALUE] = fs[F_TRIAL]
    fs[F_STEP] = stepsize
    if ip[P_KIND] != KIND_CG:
        fs[F_ERROR] = l2_norm(vec[G], seg, zero)
    st[I_ITER] += 1
    st[I_RUN_ITERS] += 1
    st[I_FAILED] = failed
    st[I_NFUN] += st[I_LS_NFUN]
    st[I_NGRAD] += st[I_LS_NGRAD]
    st[I_NLS] += st[I_LS_ITER]
    err = fs[F_ERROR]
    stop_ls = ip[P_STOP_LS_FAIL] != 0 and failed != 0
    if st[I_RUN_ITERS] < ip[P_MAXITER] and err > hp[H_TOL] and not stop_ls:
        st[I_PHASE] = PH_BEGIN
        return TASK_CONTINUE
    return _stop(fs, st, hp, ip)


@machine
def _next_or_stop(fs, st, hp, ip):
    """An iteration is done: count it; go on (phase BEGIN) while the run has
    iterations left and ``error > tol``, else stop."""
    st[I_ITER] += 1
    st[I_RUN_ITERS] += 1
    if st[I_RUN_ITERS] < ip[P_MAXITER] and fs[F_ERROR] > hp[H_TOL]:
        st[I_PHASE] = PH_BEGIN
        return TASK_CONTINUE
    return _stop(fs, st, hp, ip)


@machine
def _stop(fs, st, hp, ip):
    err = fs[F_ERROR]
    if err <= hp[H_TOL]:
        status = CONVERGED
    elif not (math.isfinite(err) and math.isfinite(fs[F_VALUE])):
        status = NONFINITE
    elif ip[P_STOP_LS_FAIL] != 0 and st[I_FAILED] != 0:
        status = LINESEARCH_FAILED
    else:
        status = MAXITER
    st[I_STATUS] = status
    st[I_PHASE] = PH_DONE
    st[I_TASK] = TASK_DONE
    return TASK_DONE


# --------------------------------------------------------------------------
# Proximal gradient (jaxopt's ProximalGradient: ISTA, or FISTA with
# acceleration; GradientDescent and ProjectedGradient are the same machine).
#
#   y: vec[D] (the extrapolated point; x itself without acceleration)
#   an iteration: f, grad at y (EVAL); next_x = prox(y - s grad, s) (PROX,
#   skipped without prox); with the line search, f(next_x) (VALUE) until
#     s (f(next_x) - f(y)) <= s <grad, next_x - y> + ||next_x - y||^2 / 2 + eps
#   or maxls shrinks s <- decrease_factor s; then the step, t and y.
# Products and sums as NumPy computes them (no FMA): ``y + (-s) * grad``.

@machine
def _pg_t(st):
    return st.view(np.float64)[I_PG_T]


@machine
def _pg_set_t(st, t):
    st.view(np.float64)[I_PG_T] = t


@machine
def _pg_begin(vec, fs, st):
    """Ask for f and its gradient at y."""
    _copy(vec[XT], vec[D])
    st[I_PHASE] = PH_PG_GRAD
    st[I_TASK] = TASK_EVAL
    return TASK_EVAL


@machine
def _pg_trial(vec, fs, st, ip, s):
    """next_x = y - s grad (into vec[XT]), then its prox (a request)."""
    n = vec.shape[1]
    ms = -s
    for i in range(n):
        vec[XT, i] = vec[D, i] + ms * vec[G, i]
    fs[F_T] = s
    if ip[P_HAS_PROX] != 0:
        st[I_PHASE] = PH_PG_PROX
        st[I_TASK] = TASK_PROX
        return TASK_PROX
    st[I_PHASE] = PH_PG_PROX
    return TASK_CONTINUE


@machine
def _pg_after_prox(vec, fs, st, hp, ip, seg):
    """next_x is in vec[XT]: test it (line search) or accept it."""
    if ip[P_LS] == LS_FIXED or st[I_LS_ITER] >= ip[P_MAXLS]:
        return _pg_accept(vec, fs, st, hp, ip, seg)
    st[I_PHASE] = PH_PG_VALUE
    st[I_TASK] = TASK_VALUE
    return TASK_VALUE


@machine
def _pg_value_arrived(vec, fs, st, hp, ip, seg):
    """f(next_x) arrived: sufficient decrease, or shrink the step."""
    zero = hp[H_ZERO]
    n = vec.shape[1]
    diff = vec[VS]
    for i in range(n):
        diff[i] = vec[XT, i] - vec[D, i]
    sqdist = _sqnorm(diff, seg, zero)
    s = fs[F_T]
    decrease = s * (fs[F_TRIAL] - fs[F_V0])
    condition = s * slope(diff, vec[G], seg, zero) + hp[H_HALF] * sqdist
    st[I_LS_ITER] += 1
    if not decrease > condition + hp[H_PG_EPS]:
        return _pg_accept(vec, fs, st, hp, ip, seg)
    return _pg_trial(vec, fs, st, ip, s * hp[H_DEC])


@machine
def _sqnorm(g, seg, zero):
    """``tree_l2_norm(g, squared=True)``: per leaf np.sum(g**2), in leaf order."""
    total = _pairwise_sq(g, seg[0], seg[1] - seg[0], zero)
    for k in range(1, seg.shape[0] - 1):
        total = total + _pairwise_sq(g, seg[k], seg[k + 1] - seg[k], zero)
    return total


@machine
def _pg_accept(vec, fs, st, hp, ip, seg):
    """next_x (vec[XT]) accepted: the next stepsize, FISTA's t and y, the
    error ``||next_x - x|| / next_stepsize``; stop or go on."""
    zero = hp[H_ZERO]
    n = vec.shape[1]
    s = fs[F_T]
    if ip[P_LS] == LS_FIXED:
        next_s = s
    elif s <= hp[H_SMALL]:           # the step collapsed: restart at 1
        next_s = hp[H_ONE]
    else:
        next_s = s / hp[H_DEC]
    diff = vec[VS]
    for i in range(n):
        diff[i] = vec[XT, i] - vec[X, i]
    fs[F_ERROR] = l2_norm(diff, seg, zero) / next_s
    if ip[P_ACCEL] != 0:
        t = _pg_t(st)
        next_t = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * (t * t)))
        coef = _cast(fs, (t - 1.0) / next_t)      # a Python float meeting the params' dtype
        for i in range(n):
            vec[D, i] = vec[XT, i] + coef * diff[i]
        _pg_set_t(st, next_t)
    else:
        _copy(vec[D], vec[XT])
    _copy(vec[X], vec[XT])
    fs[F_STEP] = next_s
    st[I_NLS] += st[I_LS_ITER]
    return _next_or_stop(fs, st, hp, ip)


@machine
def _cast(fs, x):
    """x (a float64) rounded to the dtype of fs."""
    out = np.empty(1, fs.dtype)
    out[0] = x
    return out[0]


@cuda_variant(_cast)
def _cast_cuda(fs, x):
    out = cuda.local.array(1, fs.dtype)
    out[0] = x
    return out[0]


@machine
def _pg_step(vec, hist, fs, st, hp, ip, seg, part):
    phase = st[I_PHASE]
    if phase == PH_START:
        _copy(vec[D], vec[X])
        _pg_set_t(st, 1.0)
        st[I_RUN_ITERS] = 0
        fs[F_ERROR] = np.inf
        if ip[P_MAXITER] == 0:
            return _stop(fs, st, hp, ip)
        return _pg_begin(vec, fs, st)
    if phase == PH_BEGIN:
        return _pg_begin(vec, fs, st)
    if phase == PH_PG_GRAD:              # f and grad at y arrived
        fs[F_V0] = fs[F_TRIAL]
        fs[F_VALUE] = fs[F_TRIAL]
        _copy(vec[G], vec[GT])
        st[I_NFUN] += 1
        st[I_NGRAD] += 1
        st[I_LS_ITER] = 0
        s = hp[H_FIXED] if ip[P_LS] == LS_FIXED else fs[F_STEP]
        return _pg_trial(vec, fs, st, ip, s)
    if phase == PH_PG_PROX:
        return _pg_after_prox(vec, fs, st, hp, ip, seg)
    if phase == PH_PG_VALUE:
        st[I_NFUN] += 1
        return _pg_value_arrived(vec, fs, st, hp, ip, seg)
    return TASK_DONE


# --------------------------------------------------------------------------
# Fixed-point iteration (jaxopt's FixedPointIteration): x <- T(x) until
# ||T(x) - x|| <= tol.

@machine
def _fp_step(vec, fs, st, hp, ip, seg):
    phase = st[I_PHASE]
    if phase == PH_START:
        st[I_RUN_ITERS] = 0
        fs[F_ERROR] = np.inf
        if ip[P_MAXITER] == 0:
            return _stop(fs, st, hp, ip)
        phase = PH_BEGIN
    if phase == PH_BEGIN:
        _copy(vec[XT], vec[X])
        st[I_PHASE] = PH_ACCEPT
        st[I_TASK] = TASK_MAP
        return TASK_MAP
    if phase == PH_ACCEPT:               # T(x) arrived in vec[XT]
        n = vec.shape[1]
        diff = vec[GT]                   # scratch
        for i in range(n):
            diff[i] = vec[XT, i] - vec[X, i]
        fs[F_ERROR] = l2_norm(diff, seg, hp[H_ZERO])
        _copy(vec[X], vec[XT])
        st[I_NFUN] += 1                  # (fs[F_VALUE] stays 0: the status reads the error)
        return _next_or_stop(fs, st, hp, ip)
    return TASK_DONE


# --------------------------------------------------------------------------
# Bisection (jaxopt's Bisection): f at lower and upper (the sign), then
# x = (low + high) / 2, error = |f(x)|, high <- x if sign f(x) > 0 else low <- x.
# The bracket is fs[F_LOW], fs[F_HIGH] (set by the engine); n = 1.

@machine
def _bisect_step(vec, fs, st, hp, ip):
    phase = st[I_PHASE]
    if phase == PH_START:
        vec[XT, 0] = fs[F_LOW]
        st[I_PHASE] = PH_BS_LOW
        st[I_TASK] = TASK_VALUE
        return TASK_VALUE
    if phase == PH_BS_LOW:
        fs[F_VLOW] = fs[F_TRIAL]
        vec[XT, 0] = fs[F_HIGH]
        st[I_PHASE] = PH_BS_HIGH
        return TASK_VALUE
    if phase == PH_BS_HIGH:
        fs[F_VHIGH] = fs[F_TRIAL]
        lv, uv, zero = fs[F_VLOW], fs[F_VHIGH], hp[H_ZERO]
        if lv < zero and uv >= zero:
            st[I_SIGN] = 1
        elif lv > zero and uv <= zero:
            st[I_SIGN] = -1
        else:
            st[I_SIGN] = 0
        st[I_NFUN] = 2
        st[I_RUN_ITERS] = 0
        fs[F_VALUE] = np.inf
        fs[F_ERROR] = np.inf
        if st[I_SIGN] == 0 and ip[P_CHECK_BRACKET] != 0:
            st[I_STATUS] = NO_SIGN_CHANGE
            st[I_PHASE] = PH_DONE
            st[I_TASK] = TASK_DONE
            return TASK_DONE
        if ip[P_MAXITER] == 0:
            return _stop(fs, st, hp, ip)
        phase = PH_BEGIN
    if phase == PH_BEGIN:
        vec[XT, 0] = hp[H_HALF] * (fs[F_HIGH] + fs[F_LOW])
        st[I_PHASE] = PH_ACCEPT
        st[I_TASK] = TASK_VALUE
        return TASK_VALUE
    if phase == PH_ACCEPT:                 # f at the midpoint arrived
        x = vec[XT, 0]
        value = fs[F_TRIAL]
        fs[F_VALUE] = value
        fs[F_ERROR] = math.sqrt(value * value)
        if st[I_SIGN] * value > hp[H_ZERO]:
            fs[F_HIGH] = x
        else:
            fs[F_LOW] = x
        vec[X, 0] = x
        st[I_NFUN] += 1
        return _next_or_stop(fs, st, hp, ip)
    return TASK_DONE


# --------------------------------------------------------------------------
# Levenberg-Marquardt (jaxopt's LevenbergMarquardt with materialize_jac=True
# and the Cholesky solve of (J'J + mu I) v = J'r; stop on ||J'r|| <= tol).
# Per lane, hist[0, 0] holds (lm_slots): r (m), the requested residuals (m),
# J (m, n, written by the driver), J' (n, m), J'J (n, n) and two (n, n)
# factor workspaces. vec: X x, G the gradient J'r, D the last step delta,
# XT the point asked for, VS/VU/VV scratch.

def lm_slots(m, n):
    """Offsets (r, r_new, J, Jt, JtJ, F, Ft, end) in a lane's LM buffer."""
    r = 0
    rn = r + m
    J = rn + m
    Jt = J + m * n
    JtJ = Jt + n * m
    F = JtJ + n * n
    Ft = F + n * n
    return r, rn, J, Jt, JtJ, F, Ft, Ft + n * n


_lm_slots = machine(lm_slots)


@machine
def _lm_linearize(vec, buf, m, n):
    """J', J'J = J' J and the gradient J' r from J and r (npopt's dense
    products: the same lanes as ``_dense.dot``)."""
    r0, rn, j0, jt0, jtj0, f0, ft0, end = _lm_slots(m, n)
    J = buf[j0:j0 + m * n].reshape((m, n))
    Jt = buf[jt0:jt0 + n * m].reshape((n, m))
    for i in range(n):
        for k in range(m):
            Jt[i, k] = J[k, i]
    matmat(Jt, J, buf[jtj0:jtj0 + n * n].reshape((n, n)))
    vecmat(buf[r0:r0 + m], J, vec[G])


@machine
def _column_sq(buf, j0, m, n, j, zero):
    """``np.sum(J * J, axis=0)[j]`` as NumPy adds it: row after row, or
    pairwise when J has one column (then the column is contiguous)."""
    if n == 1:
        return _pairwise_sq(buf, j0, m, zero)
    acc = buf[j0 + j] * buf[j0 + j]
    for k in range(1, m):
        acc = acc + buf[j0 + k * n + j] * buf[j0 + k * n + j]
    return acc


@machine
def _lm_solve(vec, buf, fs, hp, ip, m, n):
    """vec[VV] = (J'J + mu I)^{-1} J'r by Cholesky (jaxopt's 'cholesky' with
    materialize_jac=True); NaN where it breaks down, as jax gives."""
    r0, rn, j0, jt0, jtj0, f0, ft0, end = _lm_slots(m, n)
    mu = fs[F_LM_MU]
    zero = hp[H_ZERO]
    v = vec[VV]
    ok = math.isfinite(mu)
    for i in range(n):
        ok = ok and math.isfinite(vec[G, i])
    if ip[P_LM_CG] != 0:                  # matrix-free: npopt's solve_cg, from the last step
        if ok:
            J = buf[j0:j0 + m * n].reshape((m, n))
            _cg_normal(vec, J, buf[rn:rn + m], hp, mu, True, True)
        else:
            for i in range(n):
                v[i] = np.nan
        return
    if ok:
        JtJ = buf[jtj0:jtj0 + n * n].reshape((n, n))
        F = buf[f0:f0 + n * n].reshape((n, n))
        for i in range(n):                       # the upper triangle of J'J + mu I, transposed
            for j in range(n):
                a = JtJ[j, i] + (mu if i == j else mu * 0.0)
                ok = ok and math.isfinite(a)
                F[i, j] = a if j <= i else zero
        for i in range(n):                       # (the lower triangle, read from the upper)
            for j in range(i + 1, n):
                ok = ok and math.isfinite(JtJ[i, j] + mu * 0.0)
    if ok:
        ok = cholesky(F) < 0
    if not ok:
        for i in range(n):
            v[i] = np.nan
        return
    Ft = buf[ft0:ft0 + n * n].reshape((n, n))
    for i in range(n):
        for j in range(n):
            Ft[i, j] = F[j, i]
    b = v.reshape((n, 1))
    for i in range(n):
        v[i] = vec[G, i]
    solve_triangular(F, b, True, False)
    solve_triangular(Ft, b, False, False)


@machine
def _lm_step(vec, hist, fs, st, hp, ip, seg):
    phase = st[I_PHASE]
    m = ip[P_M_RES]
    n = vec.shape[1]
    buf = hist[0, 0]
    r0, rn, j0, jt0, jtj0, f0, ft0, end = _lm_slots(m, n)
    zero = hp[H_ZERO]
    if phase == PH_START:
        _copy(vec[XT], vec[X])
        st[I_PHASE] = PH_LM_INIT_R
        st[I_TASK] = TASK_RESID
        return TASK_RESID
    if phase == PH_LM_INIT_R:                # r(x0) arrived: J(x0) next
        _copy(buf[r0:r0 + m], buf[rn:rn + m])
        fs[F_VALUE] = hp[H_HALF] * _pairwise_sq(buf, r0, m, zero)
        _copy(vec[XT], vec[X])
        st[I_PHASE] = PH_LM_INIT_J
        st[I_TASK] = TASK_JAC
        return TASK_JAC
    if phase == PH_LM_INIT_J:
        _lm_linearize(vec, buf, m, n)
        dmax = zero                          # np.max(diag(J'J), initial=0)
        for i in range(n):
            d = buf[jtj0 + i * n + i] if ip[P_LM_CG] == 0 else _column_sq(buf, j0, m, n, i,
                                                                           zero)
            if d > dmax or d != d:
                dmax = d
        fs[F_LM_MU] = hp[H_DAMP] * dmax
        fs[F_LM_NU] = hp[H_TWO]
        fs[F_ERROR] = math.sqrt(dot_z(vec[G], vec[G], zero))
        vec[D, :] = zero
        st[I_RUN_ITERS] = 0
        if ip[P_MAXITER] == 0:
            return _stop(fs, st, hp, ip)
        phase = PH_BEGIN
    if phase == PH_BEGIN:                    # the damped Gauss-Newton step
        _lm_solve(vec, buf, fs, hp, ip, m, n)
        finite = True
        for i in range(n):
            vec[D, i] = -vec[VV, i]
            vec[XT, i] = vec[X, i] + vec[D, i]
            finite = finite and math.isfinite(vec[D, i])
        if finite:
            st[I_PHASE] = PH_LM_TRIAL
            st[I_TASK] = TASK_RESID
            return TASK_RESID
        return _lm_reject(vec, fs, st, hp, ip, m, n)
    if phase == PH_LM_TRIAL:                 # r(x + delta) arrived: the gain ratio
        mu = fs[F_LM_MU]
        for i in range(n):
            vec[VS, i] = hp[H_HALF] * vec[D, i]
            vec[VU, i] = mu * vec[D, i] - vec[G, i]
        denom = dot_z(vec[VS], vec[VU], zero)
        loss_next = hp[H_HALF] * _pairwise_sq(buf, rn, m, zero)
        gain = (fs[F_VALUE] - loss_next) / denom
        if gain > zero:
            fs[F_VALUE] = loss_next
            # (numba calls the C library's pow, as NumPy's scalar ** does)
            c = hp[H_ONE] - _pow(hp[H_TWO] * gain - hp[H_ONE], hp[H_THREE])
            fs[F_LM_MU] = mu * (c if c > hp[H_THIRD] else hp[H_THIRD])
            fs[F_LM_NU] = hp[H_TWO]
            _copy(vec[X], vec[XT])
            _copy(buf[r0:r0 + m], buf[rn:rn + m])
            st[I_PHASE] = PH_LM_ACCEPT_J
            st[I_TASK] = TASK_JAC
            return TASK_JAC
        return _lm_reject(vec, fs, st, hp, ip, m, n)
    if phase == PH_LM_ACCEPT_J:
        _lm_linearize(vec, buf, m, n)
        return _lm_finish(vec, fs, st, hp, ip)
    return TASK_DONE


@machine
def _lm_reject(vec, fs, st, hp, ip, m, n):
    """The step is rejected: x stays, the damping grows."""
    mu, nu = fs[F_LM_MU], fs[F_LM_NU]
    mn = mu * nu
    fs[F_LM_MU] = hp[H_MAXF] if hp[H_MAXF] < mn else mn
    nn = hp[H_TWO] * nu
    fs[F_LM_NU] = hp[H_MAXF] if hp[H_MAXF] < nn else nn
    return _lm_finish(vec, fs, st, hp, ip)


@machine
def _lm_finish(vec, fs, st, hp, ip):
    """The error ||J'r|| of the (new or kept) point; stop or go on."""
    fs[F_ERROR] = math.sqrt(dot_z(vec[G], vec[G], hp[H_ZERO]))
    return _next_or_stop(fs, st, hp, ip)


# --------------------------------------------------------------------------
# Anderson acceleration (jaxopt's AndersonAcceleration, float64): a ring
# buffer of m points x_i (hist[0]) and residuals r_i = T(x_i) - x_i
# (hist[1]), their Gram matrix G; once the buffer is full, one iteration in
# mixing_frequency extrapolates x_ext = sum a_i x_i + beta sum a_i r_i with
# the weights of the KKT system [[0, 1'], [1, G + ridge I]] [nu; a] = [1; 0]
# (LU with partial pivoting; NaN weights on an exactly zero pivot). fs holds
# G (m x m), the KKT matrix ((m+1) x (m+1)) and its right-hand side after NF;
# st holds the pivots after NI.

@machine
def _anderson_step(vec, hist, fs, st, hp, ip, seg):
    phase = st[I_PHASE]
    m = ip[P_M]
    n = vec.shape[1]
    g0 = NF
    h0 = g0 + m * m
    c0 = h0 + (m + 1) * (m + 1)
    G = fs[g0:h0].reshape((m, m))
    if phase == PH_START:                # jaxopt's init_state calls T once (for aux)
        _copy(vec[XT], vec[X])
        st[I_PHASE] = PH_INIT
        st[I_TASK] = TASK_MAP
        return TASK_MAP
    if phase == PH_INIT:
        for i in range(m):
            _copy(hist[0, i], vec[X])
        st[I_NFUN] = 1
        st[I_RUN_ITERS] = 0
        fs[F_ERROR] = np.inf
        if ip[P_MAXITER] == 0:
            return _stop(fs, st, hp, ip)
        phase = PH_BEGIN
    if phase == PH_BEGIN:
        k = st[I_ITER]
        if k % ip[P_FREQ] == 0 and k >= m:
            H = fs[h0:c0].reshape((m + 1, m + 1))
            c = fs[c0:c0 + m + 1]
            H[0, 0] = hp[H_ZERO]
            for i in range(m):
                H[0, i + 1] = hp[H_ONE]
                H[i + 1, 0] = hp[H_ONE]
                for j in range(m):
                    H[i + 1, j + 1] = G[i, j] + (hp[H_RIDGE] if i == j else hp[H_RIDGE] * 0.0)
            for i in range(m + 1):
                c[i] = hp[H_ZERO]
            c[0] = hp[H_ONE]
            piv = st[NI:NI + m + 1]
            if lu_factor(H, piv) >= 0:
                for i in range(m + 1):
                    c[i] = np.nan
            else:
                lu_solve(H, piv, c.reshape((m + 1, 1)))
            alpha = c[1:]
            vecmat(alpha, hist[0], vec[VS])         # sum a_i x_i
            vecmat(alpha, hist[1], vec[VU])         # sum a_i r_i
            for i in range(n):
                vec[XT, i] = vec[VS, i] + hp[H_BETA] * vec[VU, i]
        else:
            _copy(vec[XT], vec[X])
        _copy(vec[D], vec[XT])                         # x_ext, kept for the residual
        st[I_PHASE] = PH_ACCEPT
        st[I_TASK] = TASK_MAP
        return TASK_MAP
    if phase == PH_ACCEPT:                          # T(x_ext) arrived in vec[XT]
        pos = st[I_ITER] % m
        r = hist[1, pos]
        for i in range(n):
            r[i] = vec[XT, i] - vec[D, i]
        _copy(hist[0, pos], vec[D])
        zero = hp[H_ZERO]
        for i in range(m):                          # <r_i, r>, leaf by leaf
            G[pos, i] = slope(hist[1, i], r, seg, zero)
        for i in range(m):
            G[i, pos] = G[pos, i]
        fs[F_ERROR] = math.sqrt(G[pos, pos])
        _copy(vec[X], vec[XT])
        st[I_NFUN] += 1
        return _next_or_stop(fs, st, hp, ip)
    return TASK_DONE


# --------------------------------------------------------------------------
# BoxCDQP (jaxopt's, float64): coordinate descent on 1/2 x'Qx + c'x,
# l <= x <= u. No requests: the data are in hist[0] (rows 0..n-1: Q, then
# c, l, u) and a run goes from start to end in one call.

@machine
def _boxcd_run(vec, hist, fs, st, hp, ip):
    n = vec.shape[1]
    data = hist[0]
    x = vec[X]
    zero = hp[H_ZERO]
    st[I_RUN_ITERS] = 0
    fs[F_ERROR] = np.inf
    if ip[P_MAXITER] == 0:
        return _stop(fs, st, hp, ip)
    while True:
        error = 0.0
        for i in range(n):
            g = dot_z(data[i], x, zero) + data[n, i]
            h = data[i, i]
            if h == 0:                   # a linear coordinate: its minimum is at a bound
                if g == 0:
                    xi = x[i]
                elif g > 0:
                    xi = data[n + 1, i]
                else:
                    xi = data[n + 2, i]
                if not math.isfinite(xi):
                    st[I_START] = i      # the unbounded coordinate (for the error)
                    st[I_STATUS] = UNBOUNDED
                    st[I_PHASE] = PH_DONE
                    st[I_TASK] = TASK_DONE
                    return TASK_DONE
            else:
                xi = x[i] - g / h
                lo, hi = data[n + 1, i], data[n + 2, i]
                if lo > xi:              # Python's max(xi, lo), then min(., hi)
                    xi = lo
                if hi < xi:
                    xi = hi
            error += abs(xi - x[i])
            x[i] = xi
        fs[F_ERROR] = error
        fs[F_VALUE] = zero
        st[I_ITER] += 1
        st[I_RUN_ITERS] += 1
        if not (st[I_RUN_ITERS] < ip[P_MAXITER] and fs[F_ERROR] > hp[H_TOL]):
            return _stop(fs, st, hp, ip)


# --------------------------------------------------------------------------
# Gauss-Newton (jaxopt's GaussNewton, float64, with a dense Jacobian): at x,
# the residuals r and J (requests), then the step d solving J'J d = J'r by
# npopt's solve_cg (jax's CG: x0 = 0, tol 1e-5 relative, 10 n steps at most;
# NumPy's x + a y, no FMA), x <- x - d, error ||d||. The buffer is LM's
# (lm_slots); its second residual slot is CG's m-vector scratch once r is in.

@machine
def _jtj(J, v, tmp, out):
    """out = J'(J v) (the dense products of npopt's _Linearization)."""
    matvec(J, v, tmp)
    vecmat(tmp, J, out)


@machine
def _cg_normal(vec, J, tmp, hp, ridge, has_ridge, from_delta):
    """vec[VV] = solve_cg(v -> J'J v [+ ridge v], vec[G], init) with jax's
    iteration (x0 = vec[D] when ``from_delta``, else 0; tol 1e-5 relative,
    10 n steps at most), NumPy's ``x + a y`` (no FMA) as npopt's solve_cg."""
    n = vec.shape[1]
    zero = hp[H_ZERO]
    b, x, r, p, Ap = vec[G], vec[VV], vec[VS], vec[VU], vec[GT]
    bs = dot_z(b, b, zero)
    a2 = hp[H_CG_TOL2] * bs
    atol2 = a2 if not (zero > a2) else zero        # Python's max(tol**2 * bs, 0.0)
    for i in range(n):
        x[i] = vec[D, i] if from_delta else zero
    _jtj(J, x, tmp, Ap)
    if has_ridge:
        for i in range(n):
            Ap[i] = Ap[i] + ridge * x[i]
    for i in range(n):
        r[i] = b[i] - Ap[i]
        p[i] = r[i]
    gamma = dot_z(r, r, zero)
    rs = gamma
    k = 0
    maxiter = 10 * n
    while rs > atol2 and k < maxiter:
        _jtj(J, p, tmp, Ap)
        if has_ridge:
            for i in range(n):
                Ap[i] = Ap[i] + ridge * p[i]
        alpha = gamma / dot_z(p, Ap, zero)
        malpha = -alpha
        for i in range(n):
            x[i] = x[i] + alpha * p[i]
            r[i] = r[i] + malpha * Ap[i]
        gamma_new = dot_z(r, r, zero)
        beta = gamma_new / gamma
        for i in range(n):
            p[i] = r[i] + beta * p[i]
        gamma = gamma_new
        rs = gamma
        k += 1


@machine
def _gn_step(vec, hist, fs, st, hp, ip):
    phase = st[I_PHASE]
    m = ip[P_M_RES]
    n = vec.shape[1]
    buf = hist[0, 0]
    r0, rn, j0, jt0, jtj0, f0, ft0, end = _lm_slots(m, n)
    zero = hp[H_ZERO]
    if phase == PH_START or phase == PH_BEGIN:
        if phase == PH_START:
            st[I_RUN_ITERS] = 0
            fs[F_ERROR] = np.inf
        _copy(vec[XT], vec[X])
        st[I_PHASE] = PH_LM_INIT_R
        st[I_TASK] = TASK_RESID
        return TASK_RESID
    if phase == PH_LM_INIT_R:                # r(x) arrived: J(x) next
        _copy(buf[r0:r0 + m], buf[rn:rn + m])
        _copy(vec[XT], vec[X])
        st[I_PHASE] = PH_LM_INIT_J
        st[I_TASK] = TASK_JAC
        return TASK_JAC
    if phase == PH_LM_INIT_J:                # J(x) arrived: the step
        J = buf[j0:j0 + m * n].reshape((m, n))
        vecmat(buf[r0:r0 + m], J, vec[G])
        fs[F_VALUE] = hp[H_HALF] * _pairwise_sq(buf, r0, m, zero)
        finite = True
        for i in range(n):
            finite = finite and math.isfinite(vec[G, i])
        if finite:
            _cg_normal(vec, J, buf[rn:rn + m], hp, zero, False, False)
        else:
            for i in range(n):
                vec[VV, i] = np.nan
        finite = True
        for i in range(n):
            vec[D, i] = vec[VV, i]
            finite = finite and math.isfinite(vec[D, i])
        fs[F_ERROR] = math.sqrt(dot_z(vec[D], vec[D], zero)) if finite else np.nan
        for i in range(n):
            vec[X, i] = vec[X, i] - vec[D, i]
        return _next_or_stop(fs, st, hp, ip)
    return TASK_DONE


@machine
def _step(vec, hist, fs, st, hp, ip, seg, part):
    """One transition, by phase; returns a task or TASK_CONTINUE."""
    phase = st[I_PHASE]
    if phase == PH_START:
        _copy(vec[XT], vec[X])
        st[I_PHASE] = PH_INIT
        st[I_TASK] = TASK_EVAL
        return TASK_EVAL
    if phase == PH_INIT:
        fs[F_VALUE] = fs[F_TRIAL]
        _copy(vec[G], vec[GT])
        st[I_NFUN] = 1
        st[I_NGRAD] = 1
        st[I_NLS] = 0
        st[I_FAILED] = 0
        st[I_RUN_ITERS] = 0
        fs[F_ERROR] = np.inf
        if ip[P_KIND] == KIND_CG:
            for i in range(vec.shape[1]):
                hist[0, 0, i] = -vec[G, i]
        if ip[P_MAXITER] == 0:
            return _stop(fs, st, hp, ip)
        st[I_PHASE] = PH_BEGIN
        return TASK_CONTINUE
    if phase == PH_BEGIN:
        return _begin_iteration(vec, hist, fs, st, hp, ip, seg, part)
    if phase == PH_LS:
        if ip[P_LS] == LS_ZOOM:
            return _zoom_arrived(vec, hist, fs, st, hp, ip, seg, part)
        return _backtracking_arrived(vec, hist, fs, st, hp, ip, seg, part)
    if phase >= PH_HZ_FIRST and phase <= PH_HZ_LAST:
        return _hz_arrived(vec, fs, st, hp, ip, seg)
    if phase == PH_SAFE:
        return _accept(fs, st, fs[F_T], 1)
    if phase == PH_BT_GRAD:
        st[I_LS_NFUN] += 1
        st[I_LS_NGRAD] += 1
        return _accept(fs, st, fs[F_T], st[I_LS_FAILED])
    if phase == PH_FIXED:
        st[I_LS_NFUN] = 1
        st[I_LS_NGRAD] = 1
        st[I_LS_ITER] = 0
        return _accept(fs, st, fs[F_T], 0)
    if phase == PH_ACCEPT:
        return _finish_iteration(vec, hist, fs, st, hp, ip, seg, part, fs[F_T],
                                 st[I_LS_FAILED])
    return TASK_DONE


@machine
def advance_gn(vec, hist, fs, st, hp, ip, seg, part):
    """``advance`` of GaussNewton."""
    task = _gn_step(vec, hist, fs, st, hp, ip)
    while task == TASK_CONTINUE:
        task = _gn_step(vec, hist, fs, st, hp, ip)
    return task


@machine
def advance_boxcd(vec, hist, fs, st, hp, ip, seg, part):
    """``advance`` of BoxCDQP (the whole run at once: no requests)."""
    if st[I_PHASE] == PH_DONE:
        return TASK_DONE
    return _boxcd_run(vec, hist, fs, st, hp, ip)


@machine
def advance_anderson(vec, hist, fs, st, hp, ip, seg, part):
    """``advance`` of AndersonAcceleration."""
    task = _anderson_step(vec, hist, fs, st, hp, ip, seg)
    while task == TASK_CONTINUE:
        task = _anderson_step(vec, hist, fs, st, hp, ip, seg)
    return task


@machine
def advance_lm(vec, hist, fs, st, hp, ip, seg, part):
    """``advance`` of LevenbergMarquardt."""
    task = _lm_step(vec, hist, fs, st, hp, ip, seg)
    while task == TASK_CONTINUE:
        task = _lm_step(vec, hist, fs, st, hp, ip, seg)
    return task


@machine
def advance_bisect(vec, hist, fs, st, hp, ip, seg, part):
    """``advance`` of Bisection."""
    task = _bisect_step(vec, fs, st, hp, ip)
    while task == TASK_CONTINUE:
        task = _bisect_step(vec, fs, st, hp, ip)
    return task


@machine
def advance_fp(vec, hist, fs, st, hp, ip, seg, part):
    """``advance`` of FixedPointIteration."""
    task = _fp_step(vec, fs, st, hp, ip, seg)
    while task == TASK_CONTINUE:
        task = _fp_step(vec, fs, st, hp, ip, seg)
    return task


@machine
def advance_pg(vec, hist, fs, st, hp, ip, seg, part):
    """``advance`` of the proximal-gradient family."""
    task = _pg_step(vec, hist, fs, st, hp, ip, seg, part)
    while task == TASK_CONTINUE:
        task = _pg_step(vec, hist, fs, st, hp, ip, seg, part)
    return task


@machine
def advance_qn(vec, hist, fs, st, hp, ip, seg, part):
    """``advance`` of LBFGS, BFGS and NonlinearCG."""
    task = _step(vec, hist, fs, st, hp, ip, seg, part)
    while task == TASK_CONTINUE:
        task = _step(vec, hist, fs, st, hp, ip, seg, part)
    return task


@machine
def advance(vec, hist, fs, st, hp, ip, seg, part):
    """Move one lane forward to its next request (see the module docstring).
    Returns the task: TASK_EVAL (value and gradient at vec[XT] into
    fs[F_TRIAL], vec[GT]), TASK_VALUE (the value suffices) or TASK_DONE.
    (The CUDA lanes call their kind's ``advance_*`` directly: one kind per
    kernel.)"""
    kind = ip[P_KIND]
    if kind == KIND_GN:
        return advance_gn(vec, hist, fs, st, hp, ip, seg, part)
    if kind == KIND_BOXCDQP:
        return advance_boxcd(vec, hist, fs, st, hp, ip, seg, part)
    if kind == KIND_ANDERSON:
        return advance_anderson(vec, hist, fs, st, hp, ip, seg, part)
    if kind == KIND_LM:
        return advance_lm(vec, hist, fs, st, hp, ip, seg, part)
    if kind == KIND_BISECT:
        return advance_bisect(vec, hist, fs, st, hp, ip, seg, part)
    if kind == KIND_FP:
        return advance_fp(vec, hist, fs, st, hp, ip, seg, part)
    if kind == KIND_PG:
        return advance_pg(vec, hist, fs, st, hp, ip, seg, part)
    return advance_qn(vec, hist, fs, st, hp, ip, seg, part)


ADVANCE = {KIND_LBFGS: advance_qn, KIND_BFGS: advance_qn, KIND_CG: advance_qn,
           KIND_PG: advance_pg, KIND_FP: advance_fp, KIND_BISECT: advance_bisect,
           KIND_LM: advance_lm, KIND_ANDERSON: advance_anderson, KIND_BOXCDQP: advance_boxcd,
           KIND_GN: advance_gn}


@machine
def advance_lanes(lanes, tasks, vec, hist, fs, st, hp, ip, seg, part):
    """``advance`` for each lane in ``lanes``; tasks[k] = the request of lane
    lanes[k]. Returns the number of lanes still running."""
    running = 0
    for k in range(lanes.shape[0]):
        i = lanes[k]
        tasks[k] = advance(vec[i], hist[i], fs[i], st[i], hp, ip, seg, part[i])
        if tasks[k] != TASK_DONE:
            running += 1
    return running


@machine
def apply_prox(vec, fs, st, ip):
    """The PROX request, in the compiled drivers, for the operators they know
    (``ip[P_PROX_OP]``): ``vec[XT] <- prox(vec[XT], hyperparams, fs[F_T])``
    with npopt.prox's / npopt.projection's own rules and roundings: prox_lasso
    (``t = dtype(l1reg) * dtype(scaling)``), prox_non_negative_lasso (``t =
    dtype(l1reg * scaling)``, a Python float product), projection_non_negative,
    projection_box (scalar bounds cast to the dtype). The hyperparameters are
    Python floats, kept as float64 in st[I_PROX_A], st[I_PROX_B]."""
    x = vec[XT]
    op = ip[P_PROX_OP]
    h = st.view(np.float64)
    zero = _cast(fs, 0.0)
    if op == PROX_LASSO:
        t = _cast(fs, h[I_PROX_A]) * fs[F_T]
        for i in range(x.shape[0]):
            x[i] = soft_threshold_rule(x[i], t, zero)
    elif op == PROX_NN_LASSO:
        t = _cast(fs, h[I_PROX_A] * np.float64(fs[F_T]))
        for i in range(x.shape[0]):
            x[i] = relu_shift_rule(x[i], t, zero)
    elif op == PROX_NON_NEGATIVE:
        for i in range(x.shape[0]):
            x[i] = non_negative_rule(x[i], zero)
    elif op == PROX_BOX:
        lo = _cast(fs, h[I_PROX_A])
        hi = _cast(fs, h[I_PROX_B])
        for i in range(x.shape[0]):
            x[i] = box_rule(x[i], lo, hi)


# --------------------------------------------------------------------------
# Compiled drivers: the objective is a numba function (a first-class
# function argument, so these compile once per signature and are cached).

def lane_args(args, i):
    """The arguments of lane i: ``a[i]`` for a batched argument, ``a[0]`` for a
    shared one (passed wrapped in a 1-tuple)."""


@overload(lane_args)
def _lane_args_impl(args, i):
    parts = []
    for k, ty in enumerate(args.types):
        parts.append(f"args[{k}][0]" if isinstance(ty, nbtypes.BaseTuple) else f"args[{k}][i]")
    src = "def impl(args, i):\n    return (" + "".join(p + ", " for p in parts) + ")\n"
    ns = {}
    exec(src, ns)
    return ns["impl"]


def _evaluate(fun, gfun, x, args, g, want_grad):
    """The objective at x: its value, and its gradient written into g."""


def _writes_into(f, args):
    """f(x, out, *args): the output written into a buffer (CUDA's form)."""
    return len(f.signature.args) == len(args.types) + 2


@overload(_evaluate)
def _evaluate_impl(fun, gfun, x, args, g, want_grad):
    returns = getattr(getattr(fun, "signature", None), "return_type", None)
    if _writes_into(fun, args) and isinstance(returns, nbtypes.NoneType):
        def impl(fun, gfun, x, args, g, want_grad):    # a map: fun(x, out, *args)
            fun(x, g, *args)
            _copy(x, g)
            return x[0] - x[0]
    elif _writes_into(fun, args):                # fun(x, g, *args) -> value
        if isinstance(gfun, nbtypes.NoneType):
            def impl(fun, gfun, x, args, g, want_grad):
                return fun(x, g, *args)
        else:                                    # a value-only fun of this form: no
            raise TypeError("npopt: fun(x, g, *args) writes its gradient; grad is "
                            "not used with it (value_and_grad=True)")
    elif not isinstance(gfun, nbtypes.NoneType) and _writes_into(gfun, args):
        def impl(fun, gfun, x, args, g, want_grad):    # fun -> value, gfun(x, g, *args)
            value = fun(x, *args)
            if want_grad:
                gfun(x, g, *args)
            return value
    elif isinstance(returns, nbtypes.Array):       # a map: x <- fun(x, *args)
        def impl(fun, gfun, x, args, g, want_grad):
            x[:] = fun(x, *args)
            return x[0] - x[0]
    elif isinstance(gfun, nbtypes.NoneType):     # fun(x, *args) -> (value, grad)
        def impl(fun, gfun, x, args, g, want_grad):
            value, grad = fun(x, *args)
            g[:] = grad
            return value
    else:                                        # fun -> value, gfun -> grad
        def impl(fun, gfun, x, args, g, want_grad):
            value = fun(x, *args)
            if want_grad:
                g[:] = gfun(x, *args)
            return value
    return impl


def _lm_request(fun, gfun, x, args, hist, m, jac):
    """LM's requests: the residuals ``fun(x, *args)`` or the Jacobian
    ``gfun(x, *args)`` (m, n) into the lane's buffer ``hist[0, 0]``."""


@overload(_lm_request)
def _lm_request_impl(fun, gfun, x, args, hist, m, jac):
    if isinstance(gfun, nbtypes.NoneType) or _writes_into(gfun, args):   # not LM's: never asked
        def impl(fun, gfun, x, args, hist, m, jac):
            pass
    else:
        def impl(fun, gfun, x, args, hist, m, jac):
            buf = hist[0, 0]
            n = x.shape[0]
            r0, rn, j0, jt0, jtj0, f0, ft0, end = _lm_slots(m, n)
            if jac:
                buf[j0:j0 + m * n] = gfun(x, *args).ravel()
            else:
                buf[rn:rn + m] = fun(x, *args)
    return impl


@machine
def drive(fun, gfun, args, vec, hist, fs, st, hp, ip, seg, part, budget):
    """Runs one lane with a numba objective, ``budget`` evaluations at most
    (then returns; call again to resume): ``fun(x, *args) -> (value, grad)``
    with ``gfun=None``, else ``fun(x, *args) -> value`` and ``gfun(x, *args)
    -> grad``. Returns the last task (TASK_DONE once the run ended)."""
    evals = 0
    task = advance(vec, hist, fs, st, hp, ip, seg, part)
    while task != TASK_DONE:
        if task == TASK_RESID or task == TASK_JAC:
            _lm_request(fun, gfun, vec[XT], args, hist, ip[P_M_RES], task == TASK_JAC)
        elif task == TASK_PROX:
            apply_prox(vec, fs, st, ip)
        else:
            value = _evaluate(fun, gfun, vec[XT], args, vec[GT], task == TASK_EVAL)
            if task != TASK_MAP:
                fs[F_TRIAL] = value
        evals += 1
        if evals >= budget:
            return task
        task = advance(vec, hist, fs, st, hp, ip, seg, part)
    return task


@machine
def drive_lanes(fun, gfun, args, lanes, vec, hist, fs, st, hp, ip, seg, part, budget):
    """Runs the lanes ``lanes`` one after the other (each to its end or
    ``budget`` evaluations), lane arguments by ``lane_args``; returns how
    many ended. ``nogil``: the engine runs chunks of lanes on several
    threads at once (a lane's numbers do not depend on which)."""
    done = 0
    for k in range(lanes.shape[0]):
        i = lanes[k]
        task = drive(fun, gfun, lane_args(args, i), vec[i], hist[i], fs[i], st[i], hp, ip, seg,
                     part[i], budget)
        if task == TASK_DONE:
            done += 1
    return done
