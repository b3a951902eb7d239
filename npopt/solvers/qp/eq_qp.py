"""``EqualityConstrainedQP`` (jaxopt/_src/eq_qp.py): one linear solve of the
KKT system, optionally regularised and refined (Vanderbei 1995).
"""
import functools
import math
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from ... import linear_solve
from ... import tree as T
from .. import base
from ._common import (KKTSolution, _FD_MESSAGE, _OperatorFactory, _check_finite, _check_matvec,
                      _fun_matvec_Q, _stationarity_Q, extract_Qc_from_obj)
from .iterative_refinement import IterativeRefinement


@dataclass(eq=False)
class EqualityConstrainedQP(base.IterativeSolver):
    r"""Quadratic programming with equality constraints only.

    Solves :math:`\min \tfrac12 x^\top Q x + c^\top x` s.t. :math:`Ax = b`
    through its KKT system, one call of ``solve`` (GMRES by default, with
    ``tol`` and ``maxiter``)::

        [[Q  A^T]  [x     [-c
         [A  0  ]]  y]  =   b]

    With ``refine_regularization = delta > 0`` the system solved is the
    quasi-definite :math:`[[Q + \delta I, A^\top], [A, -\delta I]]`, never
    singular even with redundant constraints, and ``IterativeRefinement``
    (``refine_maxiter`` steps) removes the error this introduces.

    A solve that stops short warns: ``solve``'s own ``LinearSolveWarning``
    (npopt's solvers check by default), or, with refinement, a
    ``LinearSolveWarning`` when the KKT residual is above ``tol`` (absolute
    and relative to the right-hand side) after ``refine_maxiter`` steps (jaxopt
    returns silently, and its state is None). NaN in ``params_obj`` or
    ``params_eq`` raises ValueError naming the argument.

    ``run(init_params=None, params_obj=(Q, c), params_eq=(A, b))`` returns
    ``OptStep(KKTSolution(x, y, None), None)``; ``init_params`` (a
    KKTSolution) warm-starts the solve. ``matvec_Q(params_Q, x)``,
    ``matvec_A(params_A, x)`` replace the dense products; ``fun(x,
    params_obj)`` replaces ``(Q, c)`` by a quadratic function (see the module
    docstring).
    """
    matvec_Q: Optional[Callable] = None
    matvec_A: Optional[Callable] = None
    fun: Optional[Callable] = None
    solve: Callable = linear_solve.solve_gmres
    refine_regularization: float = 0.0
    refine_maxiter: int = 10
    maxiter: int = 1000
    tol: float = 1e-5
    implicit_diff_solve: Optional[Callable] = None
    jit: bool = True
    optimality_jvp: Optional[Callable] = None   # see npopt.implicit_diff
    optimality_vjp: Optional[Callable] = None

    def __post_init__(self):
        super().__post_init__()
        _check_matvec("matvec_Q", self.matvec_Q)
        _check_matvec("matvec_A", self.matvec_A)
        if self.fun is not None and self.matvec_Q is not None:
            raise ValueError("fun: incompatible with matvec_Q (give one of them)")
        if self.fun is not None and not callable(self.fun):
            raise TypeError(f"fun: expected None or a callable, got {type(self.fun).__name__}")
        if not callable(self.solve):
            raise TypeError(f"solve: expected a callable, got {type(self.solve).__name__}")
        r = self.refine_regularization
        if not (isinstance(r, (int, float, np.number)) and math.isfinite(r) and r >= 0):
            raise ValueError(f"refine_regularization: expected a finite number >= 0, got {r!r}")
        self._fd = base.FiniteDifferences(type(self).__name__, message=_FD_MESSAGE)
        self._op_Q = _OperatorFactory(_fun_matvec_Q(self.fun, self._fd) if self.fun is not None
                                      else self.matvec_Q)
        self._op_A = _OperatorFactory(self.matvec_A)

    def _refined_solve(self, matvec, b, init, maxiter, tol):
        ridge = self.refine_regularization

        def matvec_regularized_qp(_, x):
            primal, dual_eq = x
            top, bottom = matvec(x)
            return (T.tree_add_scalar_mul(top, ridge, primal),
                    T.tree_add_scalar_mul(bottom, -ridge, dual_eq))

        solver = IterativeRefinement(
            matvec_A=lambda _, x: matvec(x), matvec_A_bar=matvec_regularized_qp,
            solve=functools.partial(self.solve, maxiter=maxiter, tol=tol),
            maxiter=self.refine_maxiter, tol=tol)
        sol, state = solver.run(init, None, b)
        # npopt: the state is not returned (jaxopt's None), so say it when the
        # refinement stopped short, by neither the absolute nor a relative tol
        error, scale = float(state.error), float(T.tree_l2_norm(b))
        if not (error <= tol or error <= tol * scale):
            base.warn(f"npopt.EqualityConstrainedQP: the regularised KKT system was not solved "
                      f"to tol = {tol:g} after refine_maxiter = {self.refine_maxiter} refinement "
                      f"steps: ||KKT residual|| = {error:.3e} (||rhs|| = {scale:.3e}); the "
                      f"returned solution is inaccurate (raise refine_maxiter or maxiter, or "
                      f"lower refine_regularization)", linear_solve.LinearSolveWarning)
        return sol

    def run(self, init_params=None, params_obj=None, params_eq=None):
        """Solves the QP; returns ``OptStep(KKTSolution(x, y, None), None)``."""
        if params_obj is None or params_eq is None:
            raise ValueError("params_obj, params_eq: expected (Q, c) and (A, b), got None")
        _check_finite("params_obj", params_obj)
        _check_finite("params_eq", params_eq)
        self._op_Q.reset()
        self._op_A.reset()
        primal0 = None if init_params is None else init_params.primal
        params_Q, c = extract_Qc_from_obj(primal0, params_obj, self.fun)
        params_A, b = params_eq
        Q, A = self._op_Q(params_Q), self._op_A(params_A)

        def matvec(u):
            primal_u, dual_u = u
            mv_A, rmv_A = A.matvec_and_rmatvec(primal_u, dual_u)
            return T.tree_add(Q(primal_u), rmv_A), mv_A

        target = (T.tree_negative(c), b)
        init = None if init_params is None else (init_params.primal, init_params.dual_eq)
        if self.refine_regularization == 0.0:
            primal, dual_eq = self.solve(matvec, target, init=init, tol=self.tol,
                                         maxiter=self.maxiter)
        else:
            primal, dual_eq = self._refined_solve(matvec, target, init, tol=self.tol,
                                                  maxiter=self.maxiter)
        return base.OptStep(KKTSolution(primal, dual_eq, None), None)

    def init_state(self, *args, **kwargs):
        return None

    def optimality_fun(self, params, params_obj, params_eq):
        """KKT residuals ``(Qx + c + A^T y, Ax - b, None)``."""
        x, y = params.primal, params.dual_eq
        params_Q, c = extract_Qc_from_obj(x, params_obj, self.fun)
        Q, A = self._op_Q(params_Q), self._op_A(params_eq[0])
        stationarity = T.tree_add(_stationarity_Q(Q, x), c)
        Ax, ATy = A.matvec_and_rmatvec(x, y)
        return KKTSolution(T.tree_add(stationarity, ATy), T.tree_sub(Ax, params_eq[1]), None)
