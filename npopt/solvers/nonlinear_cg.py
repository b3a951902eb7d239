r"""Nonlinear conjugate gradient (jaxopt 0.8.5's ``NonlinearCG``).

From ``d_0 = -conj(g_0)``, each iteration takes a line-search step along
``d_k`` (zoom by default), then

.. math::
    d_{k+1} = -\overline{g_{k+1}} + \beta_{k+1} d_k,\qquad \beta_{k+1} = \max(\beta, 0)

with (all inner products real parts, denominators floored at ``eps = 1e-6``,
a constant, not the dtype's epsilon):

* 'polak-ribiere' (default): ``beta = <g_{k+1} - g_k, g_{k+1}> / max(<g_k, g_k>, eps)``
* 'fletcher-reeves': ``beta = <g_{k+1}, g_{k+1}> / max(<g_k, g_k>, eps)``
* 'hestenes-stiefel': ``beta = <g_{k+1} - g_k, g_{k+1}> / max(<g_{k+1} - g_k, d_k>, eps)``

Clipping beta at 0 (PR+, Gilbert & Nocedal 1992) restarts along the steepest
descent direction.

.. warning:: jaxopt's quirks, kept: ``state.error`` is the gradient norm at
   the params *before* the step (one iteration behind); with
   ``linesearch='backtracking'`` the line search gets no direction and so
   steps along ``-grad`` (the conjugate direction is computed but unused).

References:
  J. Nocedal and S. Wright, Numerical Optimization, 2nd edition, Algorithm
  5.4 (p. 121) and Section 5.2.
  L. Sorber, M. van Barel and L. de Lathauwer, Unconstrained optimization of
  real functions in complex variables, SIAM J. Optim. 22(3), 2012.
"""
import dataclasses
from typing import Any, Callable, NamedTuple, Optional, Union

import numpy as np

from .. import tree as T
from . import base
from . import linesearch as ls_mod
from .lbfgs import check_solver_knobs, evaluate, make_funs_and_linesearch

_EVAL = np.int32
_METHODS = ("polak-ribiere", "fletcher-reeves", "hestenes-stiefel")
_EPS = 1e-6


class NonlinearCGState(NamedTuple):
    """jaxopt's NonlinearCGState."""
    iter_num: int
    stepsize: float
    error: float
    value: float
    grad: Any
    descent_direction: Any
    aux: Optional[Any] = None
    num_fun_eval: int = 0
    num_grad_eval: int = 0
    num_linesearch_iter: int = 0


def _vdot_real(x, y):
    """Re <x, y> = Re sum conj(x_i) y_i, leaf by leaf, added in leaf order."""
    return T.tree_vdot_real(x, y)


def cg_beta(method, grad, new_grad, descent_direction):
    """beta_{k+1} of the module docstring (clipped at 0)."""
    with np.errstate(invalid="ignore", over="ignore"):
        if method == "polak-ribiere":
            gtg = _vdot_real(grad, grad)
            gtg = gtg if gtg >= _EPS else _EPS
            beta = ls_mod.slope(T.tree_sub(new_grad, grad), T.tree_conj(new_grad)) / gtg
        elif method == "fletcher-reeves":
            gtg = _vdot_real(grad, grad)
            gtg = gtg if gtg >= _EPS else _EPS
            beta = _vdot_real(new_grad, new_grad) / gtg
        else:
            diff = T.tree_sub(new_grad, grad)
            dtg = ls_mod.slope(diff, descent_direction)
            dtg = dtg if dtg >= _EPS else _EPS
            beta = ls_mod.slope(diff, T.tree_conj(new_grad)) / dtg
        return np.maximum(beta, 0.0)


@dataclasses.dataclass(eq=False)
class NonlinearCG(base.IterativeSolver):
    """Nonlinear conjugate gradient (see the module docstring).

    Attributes:
      fun, value_and_grad, has_aux, grad: the objective (``npopt.solvers.base``).
      maxiter (100), tol (1e-3).
      method: 'polak-ribiere' (default), 'fletcher-reeves' or 'hestenes-stiefel'.
      linesearch: 'zoom' (default), 'backtracking', 'hager-zhang' or an instance.
      linesearch_init: 'increase' (default), 'max' or 'current' (see LBFGS).
      condition, decrease_factor: deprecated (warning, ignored).
      maxls (30), increase_factor (1.2), max_stepsize (1.0), min_stepsize (1e-6).
      implicit_diff, implicit_diff_solve, jit, unroll: accepted for compatibility.
      verbose: 1 prints each iteration, 2 the line search's too.
    """
    fun: Callable
    value_and_grad: Union[bool, Callable] = False
    has_aux: bool = False
    maxiter: int = 100
    tol: float = 1e-3
    method: str = "polak-ribiere"
    linesearch: Any = "zoom"
    linesearch_init: str = "increase"
    condition: Any = None
    maxls: int = 30
    decrease_factor: Any = None
    increase_factor: float = 1.2
    max_stepsize: float = 1.0
    min_stepsize: float = 1e-6
    implicit_diff: bool = True
    implicit_diff_solve: Optional[Callable] = None
    jit: bool = True
    unroll: Any = "auto"
    verbose: Union[bool, int] = False
    grad: Optional[Callable] = None
    optimality_jvp: Optional[Callable] = None   # see npopt.implicit_diff
    optimality_vjp: Optional[Callable] = None

    def __post_init__(self):
        super().__post_init__()
        check_solver_knobs(self)
        if self.method not in _METHODS:
            raise ValueError(f"method: expected one of {_METHODS}, got {self.method!r}")
        self._fun_with_aux, self._value_and_grad_with_aux, self.linesearch_solver = \
            make_funs_and_linesearch(self)

    def init_state(self, init_params, *args, **kwargs):
        """The initial NonlinearCGState (``descent_direction = -conj(grad)``)."""
        realdtype = ls_mod._real_dtype(init_params, "init_params")
        value, aux, grad = evaluate(self._value_and_grad_with_aux, init_params, args, kwargs)
        return NonlinearCGState(iter_num=np.asarray(0),
                                stepsize=np.asarray(self.max_stepsize, realdtype),
                                error=np.asarray(np.inf, realdtype), value=value, grad=grad,
                                descent_direction=ls_mod.neg_conj(grad), aux=aux,
                                num_fun_eval=np.asarray(1, _EVAL),
                                num_grad_eval=np.asarray(1, _EVAL),
                                num_linesearch_iter=np.asarray(0, _EVAL))

    def update(self, params, state, *args, **kwargs):
        """One nonlinear CG iteration. Returns OptStep."""
        value, grad = state.value, state.grad
        descent_direction = state.descent_direction
        ls_direction = None if self.linesearch == "backtracking" else descent_direction
        init = ls_mod.init_stepsize(self.linesearch_init, self.max_stepsize, self.min_stepsize,
                                    self.increase_factor, state.stepsize)
        new_stepsize, ls_state = self.linesearch_solver.run(
            init, params, value, grad, ls_direction, args, kwargs)
        new_params, new_value = ls_state.params, ls_state.value
        new_grad, new_aux = ls_state.grad, ls_state.aux

        beta = cg_beta(self.method, grad, new_grad, descent_direction)
        new_descent_direction = ls_mod.axpy(ls_mod.neg_conj(new_grad), beta, descent_direction)
        error = T.tree_l2_norm(grad)
        realdtype = np.asarray(state.error).dtype
        new_state = NonlinearCGState(
            iter_num=state.iter_num + 1, stepsize=np.asarray(new_stepsize, realdtype),
            error=np.asarray(error, realdtype), value=new_value, grad=new_grad,
            descent_direction=new_descent_direction, aux=new_aux,
            num_fun_eval=np.asarray(state.num_fun_eval + ls_state.num_fun_eval, _EVAL),
            num_grad_eval=np.asarray(state.num_grad_eval + ls_state.num_grad_eval, _EVAL),
            num_linesearch_iter=np.asarray(state.num_linesearch_iter + ls_state.iter_num,
                                           _EVAL))
        if self.verbose:
            self.log_info(new_state, "Gradient Norm",
                          {"Objective Value": new_value, "Stepsize": new_stepsize,
                           "Number Linesearch Iterations":
                               int(new_state.num_linesearch_iter - state.num_linesearch_iter)})
        return base.OptStep(new_params, new_state)

    def optimality_fun(self, params, *args, **kwargs):
        """The gradient of ``fun`` (zero at a stationary point)."""
        return self._value_and_grad_with_aux(params, *args, **kwargs)[1]
