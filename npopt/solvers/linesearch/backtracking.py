"""Backtracking line search (Armijo, Goldstein, Wolfe or strong Wolfe
conditions): ``BacktrackingLineSearch``.
"""
import dataclasses
from typing import Any, Callable, NamedTuple, Optional, Union

import numpy as np

from .. import base
from ._common import (LineSearchStep, _Common, _EVAL, _nan_to_inf, _real_dtype, axpy, neg_conj,
                      slope)


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

    Errors (NaN counts as +inf), with ``phi`` as in ``npopt.solvers.linesearch``:

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
