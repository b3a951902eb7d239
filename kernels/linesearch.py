"""The scalar arithmetic of optax's line searches (``npopt.transforms.linesearch``):
the Armijo, decrease and curvature violations, and the zoom's cubic and
quadratic interpolation (Nocedal & Wright, Algorithm 3.6; scipy's
``_cubicmin``/``_quadmin``).

Written as rules so that LLVM contracts a*b + c into fma(a, b, c) exactly
where XLA (also LLVM) does in optax's jitted line searches: evaluated with
NumPy scalars (no contraction), the interpolated step sizes equalled XLA's
in only 43 % (cubic) and 75 % (quadratic) of random cases; these rules equal
them in all (tests/test_lbfgs.py::test_interpolation_matches_xla).
Constants arrive cast to the dtype of the operand they meet (optax's weakly
typed Python floats). The trial points and dot products of those searches
are ``lbfgs.py``'s (``trial_*``, ``dot_*``, ``cast_*``).
"""
import numpy as np

from ._jit import rule


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
