r"""BFGS with a dense inverse-Hessian approximation (jaxopt 0.8.5's ``BFGS``).

Over the ravelled params, ``d = -H g``, a step along ``d`` (line search, zoom
by default, or a fixed step), then the BFGS update (Nocedal & Wright (6.17))

.. math::
    H_{k+1} = (I - \rho s y^\top) H_k (I - \rho y s^\top) + \rho s s^\top,
    \qquad s = x_{k+1} - x_k,\ y = g_{k+1} - g_k,\ \rho = 1 / \langle y, s\rangle,

kept as ``H_k`` when ``rho`` is not finite (``<y, s> = 0``). ``H_0 = I``. The
stopping criterion is ``||grad||_2 <= tol``. BFGS stores n^2 numbers: use
LBFGS for large problems.

The update is computed in O(n^2) as the expanded product (with
``u = H y``, ``v = H^T y``)

.. math::
    H_{k+1} = H_k - \rho (s v^\top + u s^\top) + (\rho^2 \langle y, u\rangle + \rho) s s^\top,

not as jaxopt's two n x n matrix products (O(n^3)): the same matrix, rounded
differently.

Reference:
  J. Nocedal and S. Wright, Numerical Optimization, 2nd edition, Algorithm
  6.1 (p. 140).
"""
import dataclasses
from typing import Any, Callable, NamedTuple, Optional, Union

import numpy as np

from .. import _dense
from .. import tree as T
from .._flat import flat_of
from . import base
from . import linesearch as ls_mod
from .lbfgs import check_solver_knobs, evaluate, make_funs_and_linesearch

_EVAL = np.int32


class BfgsState(NamedTuple):
    """jaxopt's BfgsState."""
    iter_num: int
    value: float
    grad: Any
    stepsize: float
    error: float
    H: np.ndarray
    aux: Optional[Any] = None
    num_fun_eval: int = 0
    num_grad_eval: int = 0
    num_linesearch_iter: int = 0


def bfgs_update(H, s, y):
    """The BFGS inverse-Hessian update (see the module docstring); H unchanged
    (a copy) when ``1 / <y, s>`` is not finite."""
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        rho = np.reciprocal(_dense.dot(y, s))
        if not np.isfinite(rho):
            return H.copy()
        u = _dense.dot(H, y)
        v = _dense.dot(y, H)
        new_H = H - rho * (np.outer(s, v) + np.outer(u, s))
        new_H += (rho * rho * _dense.dot(y, u) + rho) * np.outer(s, s)
    return new_H


@dataclasses.dataclass(eq=False)
class BFGS(base.IterativeSolver):
    """BFGS (see the module docstring).

    Attributes:
      fun, value_and_grad, has_aux, grad: the objective (``npopt.solvers.base``).
      maxiter (500), tol (1e-3).
      stepsize: <= 0 (default): the line search; a number or a callable
        ``stepsize(iter_num)``: a fixed step.
      linesearch: 'zoom' (default), 'backtracking', 'hager-zhang' or an instance.
      linesearch_init: 'increase' (default), 'max' or 'current' (see LBFGS).
      condition, decrease_factor: deprecated (warning, ignored).
      maxls (30), increase_factor (1.5), max_stepsize (1.0), min_stepsize (1e-6).
      implicit_diff, implicit_diff_solve, jit, unroll: accepted for compatibility.
      verbose: 1 prints each iteration, 2 the line search's too.
    """
    fun: Callable
    value_and_grad: Union[bool, Callable] = False
    has_aux: bool = False
    maxiter: int = 500
    tol: float = 1e-3
    stepsize: Union[float, Callable] = 0.0
    linesearch: Any = "zoom"
    linesearch_init: str = "increase"
    condition: Any = None
    maxls: int = 30
    decrease_factor: Any = None
    increase_factor: float = 1.5
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
        self._fun_with_aux, self._value_and_grad_with_aux, self.linesearch_solver = \
            make_funs_and_linesearch(self)

    def init_state(self, init_params, *args, **kwargs):
        """The initial BfgsState (``H = I``)."""
        dtype = base.dtype_of(init_params)
        value, aux, grad = evaluate(self._value_and_grad_with_aux, init_params, args, kwargs)
        n = sum(np.size(x) for x in T.tree_leaves(init_params))
        return BfgsState(iter_num=np.asarray(0), value=value, grad=grad,
                         stepsize=np.asarray(self.max_stepsize, dtype),
                         error=np.asarray(np.inf, dtype), H=np.eye(n, dtype=dtype), aux=aux,
                         num_fun_eval=np.asarray(1, _EVAL), num_grad_eval=np.asarray(1, _EVAL),
                         num_linesearch_iter=np.asarray(0, _EVAL))

    def update(self, params, state, *args, **kwargs):
        """One BFGS iteration. Returns OptStep."""
        dtype = base.dtype_of(params)
        value, grad = state.value, state.grad
        g = flat_of(grad).astype(dtype, copy=False)
        _, unravel = T.ravel(params)
        descent_direction = unravel(-_dense.dot(state.H, g))

        if not callable(self.stepsize) and self.stepsize <= 0:
            init = ls_mod.init_stepsize(self.linesearch_init, self.max_stepsize,
                                        self.min_stepsize, self.increase_factor, state.stepsize)
            new_stepsize, ls_state = self.linesearch_solver.run(
                init, params, value, grad, descent_direction, args,
                kwargs)
            new_params, new_value = ls_state.params, ls_state.value
            new_grad, new_aux = ls_state.grad, ls_state.aux
            num_ls = state.num_linesearch_iter + ls_state.iter_num
            num_grad = state.num_grad_eval + ls_state.num_grad_eval
            num_fun = state.num_fun_eval + ls_state.num_fun_eval
        else:
            new_stepsize = self.stepsize(state.iter_num) if callable(self.stepsize) \
                else self.stepsize
            new_params = ls_mod.axpy(params, new_stepsize, descent_direction)
            new_value, new_aux, new_grad = evaluate(self._value_and_grad_with_aux, new_params,
                                                    args, kwargs)
            num_grad = state.num_grad_eval + 1
            num_fun = state.num_fun_eval + 1
            num_ls = state.num_linesearch_iter

        s = flat_of(new_params) - flat_of(params)
        y = flat_of(new_grad) - g
        new_H = bfgs_update(np.asarray(state.H), s.astype(dtype, copy=False),
                            y.astype(dtype, copy=False))
        error = T.tree_l2_norm(new_grad)
        # the step in the params' dtype (as LBFGS and NonlinearCG keep it; a
        # Python float step, 'max' or backtracking's first trial, stayed float64)
        new_state = BfgsState(iter_num=state.iter_num + 1, value=new_value, grad=new_grad,
                              stepsize=np.asarray(new_stepsize, dtype),
                              error=np.asarray(error, dtype), H=new_H, aux=new_aux,
                              num_grad_eval=np.asarray(num_grad, _EVAL),
                              num_fun_eval=np.asarray(num_fun, _EVAL),
                              num_linesearch_iter=np.asarray(num_ls, _EVAL))
        if self.verbose:
            self.log_info(new_state, "Gradient Norm",
                          {"Objective Value": new_value, "Stepsize": new_stepsize,
                           "Number Linesearch Iterations":
                               int(new_state.num_linesearch_iter - state.num_linesearch_iter)})
        return base.OptStep(new_params, new_state)

    def optimality_fun(self, params, *args, **kwargs):
        """The gradient of ``fun`` (zero at a stationary point)."""
        return self._value_and_grad_with_aux(params, *args, **kwargs)[1]
