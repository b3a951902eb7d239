"""Zoom line search for the strong Wolfe conditions (Nocedal & Wright,
Algorithms 3.5 and 3.6): ``ZoomLineSearch``.
"""
import dataclasses
from typing import Any, Callable, NamedTuple, Optional, Union

import numpy as np

from .. import base
from ._common import (LineSearchStep, _Common, _EVAL, _nan_to_inf, _real_dtype, axpy, neg_conj,
                      slope)


_PRE = "WARNING: npopt.ZoomLineSearch: "
FLAG_NAN_INF_VALUES = _PRE + "NaN or Inf values encountered in function values."
FLAG_INTERVAL_NOT_FOUND = (_PRE + "No interval satisfying curvature condition."
                           "Consider increasing maximal possible stepsize of the linesearch.")
FLAG_INTERVAL_TOO_SMALL = _PRE + "Length of searched interval has been reduced below threshold."
FLAG_CURVATURE_COND_NOT_SATSIFIED = (_PRE + "Returning stepsize with sufficient decrease "
                                     "but curvature condition not satisfied.")
FLAG_NO_STEPSIZE_FOUND = (_PRE + "Linesearch failed, no stepsize satisfying sufficient "
                          "decrease found.")
FLAG_NOT_A_DESCENT_DIRECTION = (_PRE + "The linesearch failed because the provided direction "
                                "is not a descent direction. ")


def _cubicmin(a, fa, fpa, b, fb, c, fc):
    """The critical point of the cubic through (a, fa), (b, fb), (c, fc) with
    slope fpa at a (scipy.optimize._linesearch); NaN if there is none."""
    C = fpa
    db = b - a
    dc = c - a
    # integer powers as products, as jax's lax.integer_pow computes them
    # (x ** 3 = x * (x * x)); pow() would round otherwise on some CPUs
    dbc = db * dc
    denom = dbc * dbc * (db - dc)
    v0 = fb - fa - C * db
    v1 = fc - fa - C * dc
    db2, dc2 = db * db, dc * dc
    A = (dc2 * v0 + -db2 * v1) / denom
    B = (-(dc * dc2) * v0 + db * db2 * v1) / denom
    radical = B * B - 3.0 * A * C
    return a + (-B + np.sqrt(radical)) / (3.0 * A)


def _quadmin(a, fa, fpa, b, fb):
    """The critical point of the quadratic through (a, fa), (b, fb) with slope
    fpa at a (scipy.optimize._linesearch)."""
    D = fa
    C = fpa
    db = b - a
    B = (fb - D - C * db) / (db * db)
    return a - C / (2.0 * B)


class ZoomLineSearchState(NamedTuple):
    """jaxopt's ZoomLineSearchState."""
    iter_num: int
    params: Any
    value: float
    grad: Any
    value_init: float
    slope_init: float
    descent_direction: Any
    num_fun_eval: int
    num_grad_eval: int
    decrease_error: float
    curvature_error: float
    error: float
    done: bool
    failed: bool
    interval_found: bool
    prev_stepsize: float
    prev_value_step: float
    prev_slope_step: float
    low: float
    value_low: float
    slope_low: float
    high: float
    value_high: float
    slope_high: float
    cubic_ref: float
    value_cubic_ref: float
    safe_stepsize: float
    aux: Optional[Any] = None


@dataclasses.dataclass(eq=False)
class ZoomLineSearch(_Common, base.IterativeSolver):
    r"""Line search for the strong Wolfe conditions (Nocedal & Wright,
    Algorithms 3.5 and 3.6), with Hager-Zhang's approximate Wolfe test near a
    minimum.

    The search first grows the step (``t <- increase_factor * t`` from
    ``init_stepsize``, capped at ``max_stepsize``) until an interval
    ``[low, high]`` is known to contain an acceptable step, then shrinks it
    by safeguarded interpolation: the cubic through ``low``, ``high`` and the
    previous end, else the quadratic through ``low`` and ``high``, else
    bisection. A step is accepted when

    .. math::
        \min\big(\phi(t) - \phi(0) - c_1 t \phi'(0),\;
        \max(\phi'(t) - (2c_1 - 1)\phi'(0),\ \phi(t) - \phi(0) - c_3|\phi(0)|)\big) \le tol
        \quad\text{and}\quad |\phi'(t)| - c_2|\phi'(0)| \le tol.

    The largest step seen with sufficient decrease (``safe_stepsize``) is the
    fallback when the search fails (``maxiter`` reached, or the interval
    shrank below ``interval_threshold``); failing that, the last trial.

    Attributes:
      fun, value_and_grad, has_aux, grad: the objective.
      c1, c2, c3: sufficient decrease (1e-4), curvature (0.9) and
        approximate-decrease (1e-6) constants.
      rel_tol_cubic, rel_tol_quad: an interpolated point is used only if it is
        inside the interval by this fraction of its length (0.2, 0.1).
      interval_threshold: below this interval length, a step with
        sufficient decrease is taken (1e-6).
      increase_factor: growth of the step while searching the interval (2).
      tol (0), maxiter (30).
      max_stepsize: the largest trial (None: ``2**maxiter``; the solvers pass
        theirs, 1.0 by default).
      verbose, jit, unroll: as jaxopt.
    """
    fun: Callable
    value_and_grad: Union[bool, Callable] = False
    has_aux: bool = False
    c1: float = 1e-4
    c2: float = 0.9
    c3: float = 1e-6
    rel_tol_cubic: float = 0.2
    rel_tol_quad: float = 0.1
    interval_threshold: float = 1e-6
    increase_factor: float = 2.0
    tol: float = 0.0
    maxiter: int = 30
    max_stepsize: Optional[float] = None
    verbose: Union[bool, int] = False
    jit: Any = "auto"
    unroll: Any = "auto"
    grad: Optional[Callable] = None

    def __post_init__(self):
        self._setup()
        if self.increase_factor <= 1:
            raise ValueError(f"increase_factor: expected a number > 1, "
                             f"got {self.increase_factor!r}")
        if self.max_stepsize is not None and not self.max_stepsize >= 0:
            raise ValueError(f"max_stepsize: expected None or a number > 0, "
                             f"got {self.max_stepsize!r}")

    @property
    def _max_step(self):
        # jaxopt replaces a falsy max_stepsize by 2**maxiter in __post_init__
        return self.max_stepsize if self.max_stepsize else float(2 ** self.maxiter)

    def _cond(self, state):
        # stop on done or failed, not on the error: the maximal step may be
        # reached, or the interval may shrink too much, with error > tol
        return not (bool(state.done) or bool(state.failed))

    # -- errors ------------------------------------------------------------
    def _value_and_slope_on_line(self, params, stepsize, descent_direction, args, kwargs):
        step = axpy(params, stepsize, descent_direction)
        value, aux, grad = self._evaluate(step, args, kwargs)
        return value, slope(grad, descent_direction), step, grad, aux

    def _errors(self, stepsize, value_step, slope_step, state):
        """(decrease error, curvature error, error), each >= 0, NaN -> inf."""
        value_init, slope_init = state.value_init, state.slope_init
        c1 = self.c1
        exact = value_step - value_init - c1 * stepsize * slope_init
        approx = slope_step - (2 * c1 - 1.0) * slope_init
        delta_values = value_step - value_init - self.c3 * np.abs(value_init)
        decrease = np.minimum(np.maximum(approx, delta_values), exact)
        decrease = _nan_to_inf(np.maximum(decrease, 0.0))
        curvature = np.abs(slope_step) - self.c2 * np.abs(slope_init)
        curvature = _nan_to_inf(np.maximum(curvature, 0.0))
        return decrease, curvature, np.maximum(decrease, curvature)

    # -- Algorithm 3.5: the interval -----------------------------------------
    def _search_interval(self, init_stepsize, state, args, kwargs):
        it = int(state.iter_num)
        max_step = self._max_step
        new_stepsize = init_stepsize if it == 0 else self.increase_factor * state.prev_stepsize
        new_stepsize = np.minimum(new_stepsize, max_step)
        max_stepsize_reached = new_stepsize >= max_step

        new_value, new_slope, new_step, new_grad, new_aux = self._value_and_slope_on_line(
            state.params, new_stepsize, state.descent_direction, args, kwargs)
        if self.verbose and not np.isfinite(new_value):
            print(FLAG_NAN_INF_VALUES)
        decrease_error, curvature_error, new_error = self._errors(
            new_stepsize, new_value, new_slope, state)

        # keep the step if it has at least sufficient decrease (fallback)
        new_safe = new_stepsize if decrease_error <= self.tol else state.safe_stepsize

        set_high_to_new = (decrease_error > 0.0) or (new_value >= state.prev_value_step and it > 0)
        set_low_to_new = (new_slope >= 0.0) and not set_high_to_new
        prev = (state.prev_stepsize, state.prev_value_step, state.prev_slope_step)
        new = (new_stepsize, new_value, new_slope)
        (low, value_low, slope_low), (high, value_high, slope_high) = \
            (new, prev) if set_low_to_new else (prev, new)

        interval_found = set_high_to_new or set_low_to_new or new_error <= self.tol
        # done: an acceptable step, or the largest step is reached without an
        # interval (it has sufficient decrease; a larger one would be needed
        # for the curvature condition)
        done = bool(new_error <= self.tol) or (bool(max_stepsize_reached) and not interval_found)
        if done:
            params, value, grad, aux = new_step, new_value, new_grad, new_aux
        else:
            params, value, grad, aux = state.params, state.value_init, state.grad, state.aux
        if self.verbose and max_stepsize_reached and not interval_found:
            print(FLAG_INTERVAL_NOT_FOUND + "\n" + FLAG_CURVATURE_COND_NOT_SATSIFIED)
        failed = it + 1 >= self.maxiter and not done
        new_state = state._replace(
            iter_num=state.iter_num + 1, params=params, value=value, grad=grad, aux=aux,
            decrease_error=decrease_error, curvature_error=curvature_error, error=new_error,
            done=np.asarray(done), failed=np.asarray(failed),
            interval_found=np.asarray(bool(interval_found)),
            prev_stepsize=new_stepsize, prev_value_step=new_value, prev_slope_step=new_slope,
            low=low, value_low=value_low, slope_low=slope_low,
            high=high, value_high=value_high, slope_high=slope_high,
            cubic_ref=low, value_cubic_ref=value_low, safe_stepsize=new_safe)
        return new_stepsize, new_state

    # -- Algorithm 3.6: zoom ---------------------------------------------------
    def _zoom_into_interval(self, stepsize, state, args, kwargs):
        dtype = np.asarray(stepsize).dtype
        it = int(state.iter_num)
        low, value_low, slope_low = state.low, state.value_low, state.slope_low
        high, value_high, slope_high = state.high, state.value_high, state.slope_high
        cubic_ref, value_cubic_ref = state.cubic_ref, state.value_cubic_ref

        delta = np.abs(high - low)
        left = np.minimum(high, low)
        right = np.maximum(high, low)
        cubic_chk = self.rel_tol_cubic * delta
        quad_chk = self.rel_tol_quad * delta
        too_small_int = delta <= self.interval_threshold
        if self.verbose and too_small_int:
            print(FLAG_INTERVAL_TOO_SMALL)

        middle_cubic = _cubicmin(low, value_low, slope_low, high, value_high, cubic_ref,
                                 value_cubic_ref)
        use_cubic = left + cubic_chk < middle_cubic < right - cubic_chk
        middle_quad = _quadmin(low, value_low, slope_low, high, value_high)
        use_quad = not use_cubic and left + quad_chk < middle_quad < right - quad_chk
        if use_cubic:
            middle = middle_cubic
        elif use_quad:
            middle = middle_quad
        else:
            middle = (low + high) / 2.0
        middle = dtype.type(middle)

        value_middle, slope_middle, step, grad_step, aux_step = self._value_and_slope_on_line(
            state.params, middle, state.descent_direction, args, kwargs)
        if self.verbose and not np.isfinite(value_middle):
            print(FLAG_NAN_INF_VALUES)
        decrease_error, curvature_error, new_error = self._errors(
            middle, value_middle, slope_middle, state)

        # the largest step with sufficient decrease seen so far
        new_safe = middle if decrease_error <= self.tol else state.safe_stepsize
        new_safe = np.maximum(new_safe, state.safe_stepsize)

        done = bool(new_error <= self.tol)
        if done:
            params, value, grad, aux = step, value_middle, grad_step, aux_step
        else:
            params, value, grad, aux = state.params, state.value_init, state.grad, state.aux

        # otherwise shrink the interval
        set_high_to_middle = (decrease_error > 0.0) or (value_middle >= value_low)
        set_high_to_low = (slope_middle * (high - low) >= 0.0) and not set_high_to_middle
        set_low_to_middle = not set_high_to_middle
        mid = (middle, value_middle, slope_middle)
        new_high = mid if set_high_to_middle else (high, value_high, slope_high)
        if set_high_to_low:
            new_high = (low, value_low, slope_low)
        new_low = mid if set_low_to_middle else (low, value_low, slope_low)
        # the cubic's third point: the end that was just replaced
        if set_high_to_middle or set_high_to_low:
            new_cubic_ref, new_value_cubic_ref = high, value_high
        else:
            new_cubic_ref, new_value_cubic_ref = low, value_low

        # stop when the interval is tiny and a step with sufficient decrease
        # is known (else go on: steep functions need tiny steps)
        presumably_failed = it + 1 >= self.maxiter or (too_small_int and new_safe > 0.0)
        failed = bool(presumably_failed) and not done
        new_state = state._replace(
            iter_num=state.iter_num + 1, params=params, value=value, grad=grad, aux=aux,
            decrease_error=decrease_error, curvature_error=curvature_error, error=new_error,
            done=np.asarray(done), failed=np.asarray(failed),
            low=new_low[0], value_low=new_low[1], slope_low=new_low[2],
            high=new_high[0], value_high=new_high[1], slope_high=new_high[2],
            cubic_ref=new_cubic_ref, value_cubic_ref=new_value_cubic_ref,
            safe_stepsize=new_safe)
        return middle, new_state

    def _make_safe_step(self, stepsize, state, args, kwargs):
        """After a failure: the safe step if there is one (or if the last trial
        left the domain), else the last trial; fun is evaluated there."""
        safe = state.safe_stepsize
        outside_domain = np.isinf(state.decrease_error)
        final_stepsize = safe if (safe > 0.0 or outside_domain) else stepsize
        if self.verbose:
            if safe > 0.0:
                print(FLAG_CURVATURE_COND_NOT_SATSIFIED)
            else:
                self.failure_diagnostic(stepsize, state)
        step = axpy(state.params, final_stepsize, state.descent_direction)
        value, aux, grad = self._evaluate(step, args, kwargs)
        return final_stepsize, state._replace(params=step, value=value, grad=grad, aux=aux)

    # -- API -------------------------------------------------------------------
    def init_state(self, init_stepsize, params, value=None, grad=None, descent_direction=None,
                   fun_args=[], fun_kwargs={}):
        """The initial state: value, gradient, direction (``-conj(grad)`` by
        default) and the slope along it."""
        realdtype = _real_dtype(params)
        num = 0
        aux = None
        if value is None or grad is None:
            value, aux, grad = self._evaluate(params, fun_args, fun_kwargs)
            num += 1
        num_grad = num
        if aux is None and self.has_aux and not self._aux_is_none:
            # fun again for the aux (jaxopt does it with a gradient, and also
            # inside its solvers, whose fun has no aux: npopt skips that call)
            aux = self._value_only(params, fun_args, fun_kwargs)[1]
            num += 1
        self._check_direction(grad, descent_direction)
        if descent_direction is None:
            descent_direction = neg_conj(grad)
        slope0 = slope(grad, descent_direction)
        zero = realdtype.type(0.0)
        return ZoomLineSearchState(
            iter_num=np.asarray(0), params=params, value=value, grad=grad, aux=aux,
            value_init=value, slope_init=slope0, descent_direction=descent_direction,
            decrease_error=np.asarray(np.inf), curvature_error=np.asarray(np.inf),
            error=np.asarray(np.inf), done=np.asarray(False), failed=np.asarray(False),
            interval_found=np.asarray(False),
            prev_stepsize=zero, prev_value_step=value, prev_slope_step=slope0,
            low=zero, value_low=value, slope_low=slope0,
            high=zero, value_high=value, slope_high=slope0,
            cubic_ref=zero, value_cubic_ref=value, safe_stepsize=zero,
            num_fun_eval=np.asarray(num, _EVAL), num_grad_eval=np.asarray(num_grad, _EVAL))

    def update(self, stepsize, state, params=None, value=None, grad=None,
               descent_direction=None, fun_args=[], fun_kwargs={}):
        """One trial: while searching the interval (Algorithm 3.5) or zooming
        into it (Algorithm 3.6). params, value, grad and descent_direction are
        those recorded by ``init_state`` (the arguments are ignored)."""
        realdtype = np.finfo(np.asarray(state.safe_stepsize).dtype).dtype
        init_stepsize = realdtype.type(stepsize)
        with np.errstate(all="ignore"):
            if state.interval_found:
                new_stepsize, new_state = self._zoom_into_interval(
                    init_stepsize, state, fun_args, fun_kwargs)
            else:
                new_stepsize, new_state = self._search_interval(
                    init_stepsize, state, fun_args, fun_kwargs)
            extra = 1 + int(bool(new_state.failed))
            if new_state.failed:
                new_stepsize, new_state = self._make_safe_step(
                    new_stepsize, new_state, fun_args, fun_kwargs)
        new_state = new_state._replace(
            num_fun_eval=np.asarray(new_state.num_fun_eval + extra, _EVAL),
            num_grad_eval=np.asarray(new_state.num_grad_eval + extra, _EVAL))
        if self.verbose:
            self._log(new_state, new_stepsize)
        return LineSearchStep(new_stepsize, new_state)

    def _log(self, state, stepsize):
        self.log_info(state, "Minimum Decrease & Curvature Errors",
                      {"Stepsize": stepsize, "Decrease Error": state.decrease_error,
                       "Curvature Error": state.curvature_error})

    def failure_diagnostic(self, stepsize, state):
        print(FLAG_NO_STEPSIZE_FOUND)
        self._log(state, stepsize)
        slope_init = state.slope_init
        is_descent = slope_init < 0.0
        if not is_descent:
            print(FLAG_NOT_A_DESCENT_DIRECTION
                  + f"The slope (={slope_init}) at stepsize=0 should be negative")
        else:
            print(_PRE + "Consider augmenting the maximal number of linesearch iterations.")
            eps = np.finfo(np.asarray(stepsize).dtype).eps
            if stepsize < eps:
                print(_PRE + f"Computed stepsize (={stepsize}) is below machine precision "
                      f"(={eps}), consider computing in float64.")
            if np.abs(slope_init) > 1e16:
                print(_PRE + f"Very large absolute slope at stepsize=0. "
                      f"(|slope|={np.abs(slope_init)}). The objective is badly conditioned. "
                      "Consider reparameterizing objective (e.g., normalizing parameters) "
                      "or finding a better guess for the initial parameters for the solver.")
        if np.isinf(state.decrease_error):
            print(_PRE + "Cannot even make a step without getting Inf or Nan. "
                  "The linesearch won't make a step and the optimizer is stuck.")
        else:
            print(_PRE + "Making an unsafe step, not decreasing enough the objective. "
                  "Convergence of the solver is compromised as it does not reduce values.")
