r"""Quadratic programming: jaxopt 0.8.5's QP solvers with NumPy.

All of them minimise a convex quadratic :math:`\tfrac12 x^\top Q x + c^\top x`
(``Q`` positive semidefinite) under linear constraints, with jaxopt's calling
conventions: ``params_obj = (params_Q, c)``, ``params_eq = (params_A, b)``,
``params_ineq = (G, h)`` or ``(l, u)``, and solutions as
``KKTSolution(primal, dual_eq, dual_ineq)``.

* ``EqualityConstrainedQP``: ``Ax = b`` only; one linear solve of the KKT
  system :math:`\begin{bmatrix}Q & A^\top\\ A & 0\end{bmatrix}
  \begin{bmatrix}x\\ y\end{bmatrix} = \begin{bmatrix}-c\\ b\end{bmatrix}`
  (GMRES by default), optionally regularised into a quasi-definite system
  and corrected by iterative refinement (Vanderbei 1995).
* ``BoxCDQP``: ``l <= x <= u``; cyclic coordinate descent, each coordinate
  minimised exactly and clipped: :math:`x_i \leftarrow
  \mathrm{clip}(x_i - (Qx + c)_i / Q_{ii}, l_i, u_i)`.
* ``IterativeRefinement``: ``Ax = b`` by :math:`x \leftarrow x +
  \mathrm{solve}(\bar A, b - Ax)` (Wilkinson 1963).
* ``BoxOSQP``: ``Ax = z, l <= z <= u``; OSQP's ADMM (Stellato et al. 2020)
  with over-relaxation, adaptive step :math:`\rho`, and primal/dual
  infeasibility certificates reported in ``state.status``.
* ``OSQP``: ``Ax = b, Gx <= h``, rewritten as a BoxOSQP problem.

Operators: ``params_Q``/``params_A`` are matrices (or pytrees of matrices
matching the primal's structure, leaf by leaf) unless ``matvec_Q(params_Q,
x)`` / ``matvec_A(params_A, x)`` are given. jaxopt transposes a matvec with
``jax.vjp``; npopt has no autodiff, so the transpose of a matvec is formed
once per problem from ``n`` products with the unit vectors (the operator's
dense matrix, cached for the ``params`` object of the current ``run``).
``fun(x, params_obj)`` (a quadratic given as a function) is supported with
``Qx = grad f(x) - grad f(0)`` by central finite differences, exact for a
quadratic up to rounding (about 1e-11 relative in float64): slow, prefer
``matvec_Q``.

Implicit differentiation (``solver.jacobian``/``jvp``/``vjp``) uses each
solver's ``optimality_fun`` (the KKT conditions, as jaxopt's
``make_kkt_optimality_fun``: stationarity, primal feasibility,
complementary slackness), whose derivatives default to finite differences
(exact up to rounding: the KKT map is bilinear).

References:
  Stellato, Banjac, Goulart, Bemporad & Boyd, "OSQP: an operator splitting
  solver for quadratic programs", Math. Prog. Comp., 2020.
  Boyd, Parikh, Chu, Peleato & Eckstein, "Distributed optimization and
  statistical learning via the alternating direction method of
  multipliers", 2010.
  Vanderbei, "Symmetric quasidefinite matrices", SIAM J. Optim., 1995.
  Wilkinson, "Rounding Errors in Algebraic Processes", 1963.

Layout (jaxopt's file names): ``eq_qp`` (EqualityConstrainedQP), ``cd_qp``
(BoxCDQP), ``osqp`` (BoxOSQP, OSQP), ``iterative_refinement``; ``_common``
holds the linear operators and checks they share.
"""
from ._common import (DenseLinearOperator, FunctionalLinearOperator, KKTSolution,
                      extract_Qc_from_obj)
from .iterative_refinement import IterativeRefinement, IterativeRefinementState
from .eq_qp import EqualityConstrainedQP
from .cd_qp import BoxCDQP, BoxCDQPState
from .osqp import BoxOSQP, BoxOSQPState, OSQP, OSQPState

__all__ = [
    "KKTSolution", "DenseLinearOperator", "FunctionalLinearOperator", "extract_Qc_from_obj",
    "IterativeRefinement", "IterativeRefinementState", "EqualityConstrainedQP",
    "BoxCDQP", "BoxCDQPState", "BoxOSQP", "BoxOSQPState", "OSQP", "OSQPState",
]
