r"""Line searches (jaxopt 0.8.5): backtracking, zoom (strong Wolfe) and
Hager-Zhang (approximate Wolfe), usable on their own and inside LBFGS, BFGS
and NonlinearCG.

Each searches a step ``t`` along a direction ``d`` from ``x``, with
``phi(t) = f(x + t d)`` and ``phi'(t) = <grad f(x + t d), d>`` (the real part
of the complex inner product, ``tree_vdot_real(conj(g), d)``):

* sufficient decrease (Armijo), Nocedal & Wright (3.6a):
  ``phi(t) <= phi(0) + c1 t phi'(0)``;
* curvature (Wolfe, (3.6b)): ``phi'(t) >= c2 phi'(0)``; strong Wolfe (3.7b):
  ``|phi'(t)| <= c2 |phi'(0)|``;
* Goldstein (3.11): ``phi(t) >= phi(0) + (1 - c1) t phi'(0)``;
* approximate Wolfe (Hager & Zhang 2005, eq. (23)):
  ``(2 c1 - 1) phi'(0) >= phi'(t) >= c2 phi'(0)``, used only where
  ``phi(t) <= phi(0) + eps_k`` (``eps_k = 1e-6 |phi(0)|`` in Hager-Zhang,
  ``c3 |phi(0)|`` in zoom): close to a minimum the Armijo test compares
  values equal to rounding and can no longer be met.

The API is jaxopt's: ``run(init_stepsize, params, value=None, grad=None,
descent_direction=None, fun_args=[], fun_kwargs={}) -> LineSearchStep(stepsize,
state)``, ``init_state`` and ``update`` with the same arguments (``update``
takes the current ``stepsize`` and ``state`` first). ``state.params``,
``state.value``, ``state.grad`` and ``state.aux`` hold the accepted point;
``state.done`` / ``state.failed`` say how the search ended, and
``num_fun_eval`` / ``num_grad_eval`` count the evaluations npopt made: calls of
``fun`` for a value (a ``(value, grad)`` call counts one of each; with finite
differences a gradient costs ``2n`` more calls of ``fun``, counted in
``num_grad_eval`` as one gradient). That is jaxopt's count wherever npopt
evaluates what jaxopt evaluates (every backtracking and zoom search on its
own); it is lower where jaxopt evaluates and discards: Hager-Zhang's second
secant and its bracket's last expansion, and the zoom search's evaluation of
``fun`` again for the aux, which jaxopt makes inside LBFGS, BFGS, NonlinearCG
and LBFGSB although their ``fun`` has no aux (npopt skips that call). npopt
follows the true count, so that ``num_fun_eval`` is what a counting wrapper
around ``fun`` sees.

.. warning:: npopt addition: called directly (not from a solver), the line
   searches raise ``ValueError`` when ``descent_direction`` goes uphill
   (``<grad, descent_direction> > 0``), before any evaluation along it.
   jaxopt runs the search anyway and reports ``failed`` (zoom prints a
   diagnostic when verbose). Inside LBFGS/BFGS/NonlinearCG, npopt does what
   jaxopt does: the search runs and may fail. A zero slope (a stationary
   point, or a direction orthogonal to the gradient) and a NaN slope are let
   through, as in jaxopt.

References:
  J. Nocedal and S. Wright, Numerical Optimization, 2nd edition, 2006,
  Algorithms 3.5 and 3.6 (zoom).
  W. Hager and H. Zhang, A new conjugate gradient method with guaranteed
  descent and an efficient line search, SIAM J. Optim. 16(1), 2005; Algorithm
  851: CG_DESCENT, ACM TOMS 32(1), 2006.
"""
import dataclasses
from typing import Any, Callable, NamedTuple, Optional, Union

import numpy as np

from .. import _dense
from .. import tree as T
from ..kernels import lbfgs_solver as K
from . import base

_EVAL = np.int32   # jaxopt's NUM_EVAL_DTYPE


class LineSearchStep(NamedTuple):
    """jaxopt's ``base.LineSearchStep``: what ``run`` and ``update`` return."""
    stepsize: Any
    state: Any


# --------------------------------------------------------------------------
# Vector helpers on pytrees (numba axpy for array leaves).

def _real_dtype(params, name="params"):
    """The real dtype of a params tree whose leaves share one float/complex dtype
    (jaxopt's ``get_real_dtype(tree_single_dtype(params))``). Integer and
    boolean leaves are refused (jaxopt's gradients refuse them too)."""
    return np.finfo(base.dtype_of(params, name, allow_complex=True)).dtype


def _axpy_leaf(x, t, d):
    x = np.asarray(x)
    d = np.asarray(d)
    if x.ndim and x.dtype == d.dtype and x.dtype.kind in "fc" \
            and x.flags.c_contiguous and d.flags.c_contiguous:
        out = np.empty_like(x)
        K.axpy_cpu(x.reshape(-1), np.finfo(x.dtype).dtype.type(t), d.reshape(-1),
                   out.reshape(-1))
        return out
    return x + t * d


def axpy(x, t, d):
    """``x + t * d`` leaf by leaf (jaxopt's ``tree_add_scalar_mul``), one fused
    multiply-add per element as jitted XLA computes it."""
    if type(x) is np.ndarray:
        return _axpy_leaf(x, t, d)
    return T.tree_map(lambda a, b: _axpy_leaf(a, t, b), x, d)


def slope(grad, d):
    """``Re <conj(grad), d> = Re sum_i grad_i d_i`` over all leaves, added in leaf
    order (jaxopt's ``tree_vdot_real(tree_conj(grad), d)``)."""
    if type(grad) is np.ndarray and type(d) is np.ndarray:
        return _dense.dot(grad.reshape(-1), d.reshape(-1)).real
    lg = T.tree_leaves(grad)
    ld = T.tree_structure(grad).flatten_up_to(d, "descent_direction")
    total = None
    for a, b in zip(lg, ld):
        v = _dense.dot(np.ravel(a), np.ravel(b)).real
        total = v if total is None else total + v
    return total


def neg_conj(grad):
    """``-conj(grad)``: the steepest descent direction."""
    return T.tree_map(lambda g: -np.conj(g) if np.iscomplexobj(g) else -np.asarray(g), grad)


def _nan_to_inf(x):
    return np.inf if np.isnan(x) else x


# --------------------------------------------------------------------------
# Shared machinery of the three line searches.

class _Common:
    """Setup, evaluation and the run loop (jaxopt's ``IterativeLineSearch``).

    ``_check_descent`` is True for user-facing instances; the solvers turn it
    off on theirs (see the module docstring)."""

    _check_descent = True
    _aux_is_none = False      # set by solvers whose fun has no aux (skips a call)

    def _setup(self):
        base.IterativeSolver.__post_init__(self)
        if not callable(self.fun):
            raise TypeError(f"fun: expected a callable, got {type(self.fun).__name__}")
        for name in ("c1", "c2"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float, np.number)) and 0 < v < 1):
                raise ValueError(f"{name}: expected a number in (0, 1), got {v!r}")
        self._fun_with_aux, self._value_and_grad_with_aux = base.make_value_and_grad(
            self.fun, self.value_and_grad, self.has_aux, self.grad, owner=type(self).__name__)

    def _evaluate(self, params, fun_args, fun_kwargs):
        """(value, aux, grad) at params, checked."""
        return base.evaluate(self._value_and_grad_with_aux, params, fun_args, fun_kwargs)

    def _value_only(self, params, fun_args, fun_kwargs):
        value, aux = self._fun_with_aux(params, *fun_args, **fun_kwargs)
        return base.check_value(value), aux

    def _check_direction(self, grad, descent_direction):
        if not self._check_descent or descent_direction is None:
            return
        base.check_grad_structure(descent_direction, grad, "descent_direction")
        s = slope(grad, descent_direction)
        if s > 0:
            raise ValueError(
                "descent_direction: expected a descent direction "
                f"(<grad, descent_direction> < 0), got <grad, descent_direction> = {s:.6g}; "
                "pass -grad (or None, its default) or a direction that decreases fun")

    def _cond(self, state):
        return bool(state.error > self.tol)

    def run(self, init_stepsize, params, value=None, grad=None, descent_direction=None,
            fun_args=[], fun_kwargs={}):
        """Runs the line search: ``init_state``, one ``update``, then updates
        while the search goes on, ``maxiter`` updates at most (jaxopt's loop).

        Returns:
          LineSearchStep(stepsize, state); ``state.params`` is the accepted point.
        """
        fun_args, fun_kwargs = tuple(fun_args), dict(fun_kwargs)
        state = self.init_state(init_stepsize, params, value, grad, descent_direction,
                                fun_args, fun_kwargs)
        if self.maxiter == 0:
            return LineSearchStep(init_stepsize, state)
        step = self.update(init_stepsize, state, params, value, grad, descent_direction,
                           fun_args, fun_kwargs)
        for _ in range(self.maxiter - 1):
            if not self._cond(step.state):
                break
            step = self.update(step.stepsize, step.state, params, value, grad,
                               descent_direction, fun_args, fun_kwargs)
        return step

    def optimality_fun(self, params, *args, **kwargs):
        """Not defined for a line search (jaxopt's neither)."""
        raise NotImplementedError("a line search has no optimality function")


# --------------------------------------------------------------------------
# Backtracking.

class BacktrackingLineSearchState(NamedTuple):
    """jaxopt's BacktrackingLineSearchState."""
    iter_num: int
    params: Any
    value: float
    grad: Any
    value_init: float
    grad_init: Any
    error: float
    done: bool
    failed: bool
    num_fun_eval: int
    num_grad_eval: int
    aux: Optional[Any] = None


_CONDITIONS = ("armijo", "goldstein", "strong-wolfe", "wolfe")


@dataclasses.dataclass(eq=False)
class BacktrackingLineSearch(_Common, base.IterativeSolver):
    r"""Backtracking line search: ``t <- decrease_factor * t`` from
    ``min(init_stepsize, max_stepsize)`` until the condition's error is
    ``<= tol``, at most ``maxiter`` trials.

    Errors (NaN counts as +inf), with ``phi`` as in the module docstring:

    .. math::
        e_1 &= \max(\phi(t) - \phi(0) - c_1 t \phi'(0), 0) \quad\text{(armijo)}\\
        e_{sw} &= \max(e_1, |\phi'(t)| - c_2|\phi'(0)|) \quad\text{(strong-wolfe)}\\
        e_{w} &= \max(e_1, c_2\phi'(0) - \phi'(t)) \quad\text{(wolfe)}\\
        e_{g} &= \max(e_1, \phi(0) + (1-c_1) t \phi'(0) - \phi(t)) \quad\text{(goldstein)}

    Armijo and Goldstein need no gradient during the search: it is computed
    once at the accepted (or last) point, and counted.

    Attributes:
      fun, value_and_grad, has_aux, grad: the objective (see
        ``npopt.solvers.base``).
      maxiter: trials at most (30); tol: accepted error (0).
      condition: 'strong-wolfe' (default), 'wolfe', 'armijo' or 'goldstein'.
      c1, c2: the Armijo and curvature constants (1e-4, 0.9).
      decrease_factor: the step's shrink factor (0.8).
      max_stepsize: the first trial is at most this (1.0).
      verbose, jit, unroll: as jaxopt (jit/unroll accepted, unused).
    """
    fun: Callable
    value_and_grad: Union[bool, Callable] = False
    has_aux: bool = False
    maxiter: int = 30
    tol: float = 0.0
    condition: str = "strong-wolfe"
    c1: float = 1e-4
    c2: float = 0.9
    decrease_factor: float = 0.8
    max_stepsize: float = 1.0
    verbose: Union[bool, int] = False
    jit: Any = "auto"
    unroll: Any = "auto"
    grad: Optional[Callable] = None

    def __post_init__(self):
        self._setup()
        if self.condition not in _CONDITIONS:
            raise ValueError(f"condition: expected one of {_CONDITIONS}, got {self.condition!r}")
        if not 0 < self.decrease_factor < 1:
            raise ValueError(f"decrease_factor: expected a number in (0, 1), "
                             f"got {self.decrease_factor!r}")

    def init_state(self, init_stepsize, params, value=None, grad=None, descent_direction=None,
                   fun_args=[], fun_kwargs={}):
        """The initial state (evaluates fun at params when value or grad is None)."""
        _real_dtype(params)
        num = _EVAL(0)
        if value is None or grad is None:
            value, _, grad = self._evaluate(params, fun_args, fun_kwargs)
            num = _EVAL(1)
        self._check_direction(grad, descent_direction)
        return BacktrackingLineSearchState(
            iter_num=np.asarray(0), params=params, value=value, grad=grad,
            value_init=value, grad_init=grad, aux=None, error=np.asarray(np.inf),
            done=np.asarray(False), failed=np.asarray(False),
            num_fun_eval=np.asarray(num), num_grad_eval=np.asarray(num))

    def update(self, stepsize, state, params, value=None, grad=None, descent_direction=None,
               fun_args=[], fun_kwargs={}):
        """One trial at ``min(stepsize, max_stepsize)``; returns the next trial step
        (the same step once done or failed) and the state."""
        stepsize = np.minimum(self.max_stepsize, stepsize)
        num_fun_eval, num_grad_eval = state.num_fun_eval, state.num_grad_eval
        value, grad = state.value_init, state.grad_init
        if descent_direction is None:
            descent_direction = neg_conj(grad)
        slope0 = slope(grad, descent_direction)
        if self._check_descent and slope0 > 0:
            self._check_direction(grad, descent_direction)
        new_params = axpy(params, stepsize, descent_direction)
        num_fun_eval = num_fun_eval + 1
        c1, c2 = self.c1, self.c2
        if self.condition in ("armijo", "goldstein"):
            new_value, new_aux = self._value_only(new_params, fun_args, fun_kwargs)
            new_grad, new_slope = grad, slope0
        else:
            new_value, new_aux, new_grad = self._evaluate(new_params, fun_args, fun_kwargs)
            new_slope = slope(new_grad, descent_direction)
            num_grad_eval = num_grad_eval + 1
        with np.errstate(invalid="ignore", over="ignore"):
            diff1 = new_value - (value + c1 * stepsize * slope0)
            error1 = np.maximum(_nan_to_inf(diff1), 0.0)
            error = error1
            if self.condition == "strong-wolfe":
                diff2 = np.abs(new_slope) - c2 * np.abs(slope0)
                error = np.maximum(error1, np.maximum(_nan_to_inf(diff2), 0.0))
            elif self.condition == "wolfe":
                diff2 = c2 * slope0 - new_slope
                error = np.maximum(error1, np.maximum(_nan_to_inf(diff2), 0.0))
            elif self.condition == "goldstein":
                diff2 = value + (1 - c1) * stepsize * slope0 - new_value
                error = np.maximum(error1, np.maximum(_nan_to_inf(diff2), 0.0))
        done = bool(state.done) or bool(error <= self.tol)
        failed = bool(state.failed) or (int(state.iter_num) + 1 == self.maxiter and not done)
        new_stepsize = stepsize if (done or failed) else stepsize * self.decrease_factor
        if self.condition in ("armijo", "goldstein") and (done or failed):
            # the gradient at the final point (counted as a value and a gradient)
            _, _, new_grad = self._evaluate(new_params, fun_args, fun_kwargs)
            num_grad_eval = num_grad_eval + 1
            num_fun_eval = num_fun_eval + 1
        new_state = state._replace(
            iter_num=state.iter_num + 1, params=new_params, value=new_value, grad=new_grad,
            aux=new_aux, done=np.asarray(done), error=error, failed=np.asarray(failed),
            num_fun_eval=np.asarray(num_fun_eval, _EVAL),
            num_grad_eval=np.asarray(num_grad_eval, _EVAL))
        if self.verbose:
            info = {"Stepsize": stepsize, "Objective Value": new_value}
            if self.condition != "armijo":
                name = "Minimum Decrease & Curvature Errors"
                info["Decrease Error"] = error1
            else:
                name = "Decrease Error"
            self.log_info(new_state, name, info)
        return LineSearchStep(new_stepsize, new_state)


# --------------------------------------------------------------------------
# Zoom.

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
                self._failure_diagnostic(stepsize, state)
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

    def _failure_diagnostic(self, stepsize, state):
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


# --------------------------------------------------------------------------
# Hager-Zhang.

class HagerZhangLineSearchState(NamedTuple):
    """jaxopt's HagerZhangLineSearchState."""
    iter_num: int
    done: bool
    low: float
    high: float
    value: float
    error: float
    params: Any
    grad: Any
    failed: bool
    aux: Optional[Any] = None
    num_fun_eval: int = 0
    num_grad_eval: int = 0


@dataclasses.dataclass(eq=False)
class HagerZhangLineSearch(_Common, base.IterativeSolver):
    r"""Hager-Zhang line search (CG_DESCENT's): bracketing, then secant^2 steps,
    until the Wolfe or the approximate Wolfe conditions hold:

    .. math::
        \min\Big(\max\big(\phi(t) - \phi(0) - c_1 t\phi'(0),\ c_2\phi'(0) - \phi'(t)\big),\;
        \max\big(\phi'(t) - (2c_1 - 1)\phi'(0),\ c_2\phi'(0) - \phi'(t),\
        \phi(t) - \phi(0) - \epsilon_k\big)\Big) \le tol

    with ``eps_k = 1e-6 |phi(0)|`` (``approximate_wolfe_threshold``, a class
    attribute as in jaxopt). ``init_state`` brackets a minimum from the
    step 1 (``init_stepsize`` is ignored, as in jaxopt), expanding by
    ``expansion_factor``; each ``update`` runs secant^2 on ``[low, high]``
    and bisects when the interval shrank by less than ``shrinkage_factor``,
    then evaluates the better end.

    .. warning:: jaxopt's quirks, kept: the bisection inside the ``update``
       subroutine halves the interval it started from; when the search was
       already done at ``init_state``, the first ``update`` returns the
       ``stepsize`` it was given while ``state.params`` is at the best end of
       the bracket. Evaluations that jaxopt computes only to discard are
       skipped and not counted (``num_fun_eval`` is the true count, lower
       than jaxopt's). npopt's additions: a NaN error or a non-finite value
       at the accepted point sets ``failed`` (jaxopt sets neither ``done``
       nor ``failed``), and a search that is ``done`` has not ``failed``.

    Attributes:
      fun, value_and_grad, has_aux, grad: the objective.
      maxiter (30), tol (0).
      c1, c2: 0.1 and 0.9.
      expansion_factor: bracketing growth (5.0).
      shrinkage_factor: bisect when an interval shrinks less (0.66).
      max_stepsize: unused (as in jaxopt).
      verbose, jit, unroll: as jaxopt.
    """
    fun: Callable
    value_and_grad: Union[bool, Callable] = False
    has_aux: bool = False
    maxiter: int = 30
    tol: float = 0.0
    c1: float = 0.1
    c2: float = 0.9
    expansion_factor: float = 5.0
    shrinkage_factor: float = 0.66
    max_stepsize: float = 1.0
    verbose: Union[bool, int] = False
    jit: Any = "auto"
    unroll: Any = "auto"
    grad: Optional[Callable] = None

    approximate_wolfe_threshold = 1e-6   # a class attribute in jaxopt too

    def __post_init__(self):
        self._setup()
        if not self.expansion_factor > 1:
            raise ValueError(f"expansion_factor: expected a number > 1, "
                             f"got {self.expansion_factor!r}")
        if not 0 < self.shrinkage_factor < 1:
            raise ValueError(f"shrinkage_factor: expected a number in (0, 1), "
                             f"got {self.shrinkage_factor!r}")

    def _on_line(self, x, c, d, args, kwargs, count):
        """(phi(c), phi'(c)); ``count[0]`` counts the evaluations."""
        value, _, grad = self._evaluate(axpy(x, c, d), args, kwargs)
        count[0] += 1
        return value, slope(grad, d)

    def _wolfe_error(self, c, value_c, slope_c, value_init, grad_init, threshold, d):
        slope0 = slope(grad_init, d)
        armijo = value_c - (value_init + self.c1 * c * slope0)
        armijo_error = np.maximum(armijo, 0.0)
        curvature = self.c2 * slope0 - slope_c
        wolfe_error = np.maximum(armijo_error, curvature)
        approx = slope_c - (2 * self.c1 - 1.0) * slope0
        approx_error = np.maximum(np.maximum(approx, 0.0), curvature)
        approx_error = np.maximum(approx_error, value_c - threshold)
        return np.minimum(wolfe_error, approx_error)

    def _update(self, x, low, high, middle, threshold, d, args, kwargs, count):
        """The 'update' subroutine (U0-U3): a smaller bracket from ``middle``.
        Returns (failed, low, high)."""
        value_m, slope_m = self._on_line(x, middle, d, args, kwargs, count)
        done = middle >= high or middle <= low
        failed = bool(np.isnan(value_m) or np.isnan(slope_m))
        while middle < high and middle > low and not done and not failed:
            # U1: phi'(middle) >= 0 -> [low, middle]
            update_right = slope_m >= 0.0
            new_high = middle if update_right else high
            done = update_right
            # U2: phi(middle) <= phi(0) + eps_k -> [middle, high]
            update_left = value_m <= threshold
            new_low = middle if (not done and update_left) else low
            done = done or update_left
            # U3: else bisect (jaxopt halves the previous [low, high])
            if not done:
                new_high = middle
            done = done or bool(np.isneginf(value_m))
            if not done:
                middle = (low + high) / 2.0
                value_m, slope_m = self._on_line(x, middle, d, args, kwargs, count)
                failed = failed or bool(np.isnan(value_m) or np.isnan(slope_m))
            low, high = new_low, new_high
        return failed, low, high

    def _secant(self, x, low, high, d, args, kwargs, count):
        _, dlow = self._on_line(x, low, d, args, kwargs, count)
        _, dhigh = self._on_line(x, high, d, args, kwargs, count)
        return (low * dhigh - high * dlow) / (dhigh - dlow)

    def _secant2(self, x, low, high, threshold, d, args, kwargs, count):
        """secant^2 (S1-S4)."""
        c = self._secant(x, low, high, d, args, kwargs, count)
        failed, new_low, new_high = self._update(x, low, high, c, threshold, d, args, kwargs,
                                                 count)
        on_left = c == new_low
        on_right = c == new_high
        if on_left:        # jaxopt computes both secants (and counts them); npopt one
            c = self._secant(x, low, new_low, d, args, kwargs, count)
        elif on_right:
            c = self._secant(x, high, new_high, d, args, kwargs, count)
        if on_left or on_right:
            failed, new_low, new_high = self._update(x, new_low, new_high, c, threshold, d,
                                                     args, kwargs, count)
        return failed, new_low, new_high

    def _bracket(self, x, c, threshold, d, args, kwargs, count):
        """The initial bracket (B0-B3): expand from c until phi' >= 0 or phi
        rises above phi(0) + eps_k."""
        value_m, slope_m = self._on_line(x, c, d, args, kwargs, count)
        failed = bool(np.isnan(value_m) or np.isnan(slope_m))
        done = bool(np.isneginf(value_m))
        zero = np.asarray(c).dtype.type(0.0)
        low, middle, high, best_middle = zero, c, c, zero
        while not done and not failed:
            # B1
            update_right = slope_m >= 0.0
            if update_right:
                high, low = middle, best_middle
            done = update_right
            # B2
            reupdate = not done and value_m > threshold
            if reupdate:
                new_failed, low, high = self._update(x, zero, middle, middle / 2.0,
                                                     threshold, d, args, kwargs, count)
                failed = failed or new_failed
            done = done or reupdate
            if not done and value_m <= threshold:
                best_middle = middle
            # B3: expand (jaxopt evaluates fun even when done, and counts it)
            if not done:
                middle = self.expansion_factor * middle
                value_m, slope_m = self._on_line(x, middle, d, args, kwargs, count)
            failed = failed or bool(np.isnan(value_m) or np.isnan(slope_m))
        return failed, low, high

    def init_state(self, init_stepsize, params, value=None, grad=None, descent_direction=None,
                   fun_args=[], fun_kwargs={}):
        """Brackets an acceptable step and checks its better end."""
        del init_stepsize
        _real_dtype(params)
        count = [0]
        if value is None or grad is None:
            value, _, grad = self._evaluate(params, fun_args, fun_kwargs)
            count[0] += 1
        self._check_direction(grad, descent_direction)
        if descent_direction is None:
            descent_direction = neg_conj(grad)
        d = descent_direction
        threshold = value + self.approximate_wolfe_threshold * np.abs(value)
        with np.errstate(all="ignore"):
            one = np.asarray(value).dtype.type(1.0)
            failed, low, high = self._bracket(params, one, threshold, d, fun_args, fun_kwargs,
                                              count)
            value_low, slope_low = self._on_line(params, low, d, fun_args, fun_kwargs, count)
            value_high, slope_high = self._on_line(params, high, d, fun_args, fun_kwargs,
                                                   count)
            better_low = value_low < value_high
            best = low if better_low else high
            slope_best = slope_low if better_low else slope_high
            value_best = np.minimum(value_low, value_high)
            error = self._wolfe_error(best, value_best, slope_best, value, grad, threshold, d)
        num = count[0]
        done = bool(error <= self.tol)
        # npopt: a NaN error (NaN values or slopes at the bracket's ends) is a
        # failure, not a search that goes on (jaxopt reports neither)
        failed = (bool(failed) or bool(np.isnan(error))) and not done
        return HagerZhangLineSearchState(
            iter_num=np.asarray(0), low=low, high=high, error=error,
            done=np.asarray(done), value=value, aux=None, params=params,
            grad=grad, failed=np.asarray(failed),
            num_fun_eval=np.asarray(num, _EVAL), num_grad_eval=np.asarray(num, _EVAL))

    def update(self, stepsize, state, params, value=None, grad=None, descent_direction=None,
               fun_args=[], fun_kwargs={}):
        """One secant^2 step (plus a bisection if the bracket shrank too little)."""
        count = [0]
        if value is None or grad is None:
            value, _, grad = self._evaluate(params, fun_args, fun_kwargs)
            count[0] += 1
        self._check_direction(grad, descent_direction)
        if descent_direction is None:
            descent_direction = neg_conj(grad)
        d = descent_direction
        threshold = value + self.approximate_wolfe_threshold * np.abs(value)
        with np.errstate(all="ignore"):
            failed, new_low, new_high = self._secant2(params, state.low, state.high,
                                                      threshold, d, fun_args, fun_kwargs, count)
            failed = bool(state.failed) or failed
            if state.done:
                new_low, new_high = state.low, state.high
            if not state.done and (new_high - new_low) > (self.shrinkage_factor
                                                          * (state.high - state.low)):
                c = (new_low + new_high) / 2.0
                failed, new_low, new_high = self._update(params, new_low, new_high, c,
                                                         threshold, d, fun_args, fun_kwargs,
                                                         count)
            value_low, slope_low = self._on_line(params, new_low, d, fun_args, fun_kwargs,
                                                 count)
            value_high, slope_high = self._on_line(params, new_high, d, fun_args, fun_kwargs,
                                                   count)
            better_low = value_low < value_high
            best = new_low if better_low else new_high
            slope_best = slope_low if better_low else slope_high
            value_best = np.minimum(value_low, value_high)
            new_stepsize = stepsize if state.done else best
            new_params = axpy(params, best, d)
            new_value, new_aux, new_grad = self._evaluate(new_params, fun_args, fun_kwargs)
            count[0] += 1
            num = count[0]
            if state.done:
                error = state.error
            else:
                error = self._wolfe_error(best, value_best, slope_best, value, grad, threshold, d)
        done = (bool(state.done) or bool(error <= self.tol)) and bool(np.isfinite(new_value))
        failed = failed or (int(state.iter_num) + 1 == self.maxiter and not done)
        # npopt: NaN (an error, or the value at the accepted point) is a failure
        # and ends the search; a search that is done has not failed
        failed = (failed or bool(np.isnan(error)) or not bool(np.isfinite(new_value))) \
            and not done
        new_state = HagerZhangLineSearchState(
            iter_num=state.iter_num + 1, value=new_value, grad=new_grad, aux=new_aux,
            params=new_params, low=new_low, high=new_high, error=error,
            done=np.asarray(done), failed=np.asarray(failed),
            num_fun_eval=np.asarray(state.num_fun_eval + num, _EVAL),
            num_grad_eval=np.asarray(state.num_grad_eval + num, _EVAL))
        if self.verbose:
            self.log_info(new_state, "Minimum Decrease & Curvature Errors",
                          {"Stepsize": new_stepsize, "Objective Value": new_value})
        return LineSearchStep(new_stepsize, new_state)


# --------------------------------------------------------------------------
# What the solvers share (jaxopt's linesearch_util).

_LINESEARCHES = {"backtracking": BacktrackingLineSearch, "zoom": ZoomLineSearch,
                 "hager-zhang": HagerZhangLineSearch}
_LINESEARCH_TYPES = tuple(_LINESEARCHES.values())


def check_linesearch(linesearch):
    """A line search name, or an instance of one of the three classes."""
    if isinstance(linesearch, _LINESEARCH_TYPES):
        return linesearch
    if linesearch not in _LINESEARCHES:
        raise ValueError(f"linesearch: expected one of {tuple(_LINESEARCHES)} or a line search "
                         f"instance, got {linesearch!r}")
    return linesearch


def setup_linesearch(linesearch, fun, value_and_grad, has_aux, maxlsiter, max_stepsize,
                     verbose, aux_is_none=False):
    """The line search a solver runs (jaxopt's ``_setup_linesearch``): built
    from its name with the solver's ``maxls`` and ``max_stepsize`` (unused by
    Hager-Zhang), or a copy of the given instance. Solver-owned line searches
    do not raise on non-descent directions (they fail as in jaxopt)."""
    check_linesearch(linesearch)
    if isinstance(linesearch, _LINESEARCH_TYPES):
        ls = dataclasses.replace(linesearch)
    else:
        kw = dict(fun=fun, value_and_grad=value_and_grad, has_aux=has_aux, maxiter=maxlsiter,
                  verbose=verbose)
        if linesearch != "hager-zhang":
            kw["max_stepsize"] = max_stepsize
        ls = _LINESEARCHES[linesearch](**kw)
        ls._aux_is_none = aux_is_none
    ls._check_descent = False
    return ls


_STRATEGIES = ("max", "current", "increase")


def check_linesearch_init(strategy):
    if strategy not in _STRATEGIES:
        raise ValueError(f"linesearch_init: expected one of {_STRATEGIES}, got {strategy!r}")
    return strategy


def init_stepsize(strategy, max_stepsize, min_stepsize, increase_factor, stepsize):
    """The first trial step of a solver's line search (jaxopt's ``_init_stepsize``):
    'max': max_stepsize; 'current': the last accepted step; 'increase': the
    last step times increase_factor, or max_stepsize once it fell to
    min_stepsize."""
    if strategy == "max":
        return max_stepsize
    if strategy == "current":
        return stepsize
    return max_stepsize if stepsize <= min_stepsize else stepsize * increase_factor
