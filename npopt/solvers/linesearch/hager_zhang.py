"""Hager-Zhang line search for the approximate Wolfe conditions (Hager &
Zhang 2005; CG_DESCENT, 2006): ``HagerZhangLineSearch``.
"""
import dataclasses
from typing import Any, Callable, NamedTuple, Optional, Union

import numpy as np

from .. import base
from ._common import LineSearchStep, _Common, _EVAL, _real_dtype, axpy, neg_conj, slope


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
