"""CvxpyQP: quadratic programs solved by CVXPY (jaxopt 0.8.5's CvxpyQP).

.. math::
    \\min_x \\tfrac12 x^T Q x + c^T x \\quad\\text{s.t.}\\quad A x = b,\\; G x \\le h

``run(init_params, params_obj=(Q, c), params_eq=(A, b) or None,
params_ineq=(G, h) or None)`` returns ``OptStep(KKTSolution(primal,
dual_eq, dual_ineq), None)``; ``init_params`` is ignored (no warm start).
Needs the optional ``cvxpy`` package: without it, ``run`` raises an
ImportError saying so. Infeasible or unbounded problems raise ValueError,
as jaxopt does. ``optimality_fun`` is the KKT residual (stationarity,
primal feasibility of the equalities, complementary slackness), so
``jacobian`` / ``jvp`` / ``vjp`` of the solution work as on every solver.
"""
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from . import base

_NO_CVXPY = ("CvxpyQP needs the optional package cvxpy (pip install cvxpy); it is not "
             "installed. npopt's other QP paths do not need it.")


def _check_params(params_obj, params_eq=None, params_ineq=None):
    if params_obj is None:
        raise ValueError("params_obj: expected a tuple (Q, c), got None")
    Q, c = (np.asarray(a) for a in params_obj)
    if Q.ndim != 2 or Q.shape[0] != Q.shape[1]:
        raise ValueError(f"params_obj: expected a square matrix Q, got shape {Q.shape}")
    if c.shape != (Q.shape[1],):
        raise ValueError(f"params_obj: expected c of shape ({Q.shape[1]},), got {c.shape}")
    for name, p, letters in (("params_eq", params_eq, "A, b"), ("params_ineq", params_ineq, "G, h")):
        if p is None:
            continue
        M, v = (np.asarray(a) for a in p)
        if M.ndim != 2 or M.shape[1] != Q.shape[1] or v.shape != (M.shape[0],):
            raise ValueError(f"{name}: expected ({letters}) with {letters[0]} of shape (m, "
                             f"{Q.shape[1]}) and {letters[3]} of shape (m,), got {M.shape} and "
                             f"{v.shape}")


def qp_kkt_optimality_fun(params, params_obj, params_eq=None, params_ineq=None):
    """The KKT residual of the QP at ``params = KKTSolution(x, y, z)``::

        (Q x + c + A^T y + G^T z,  A x - b,  z * (G x - h))

    (jaxopt's ``make_kkt_optimality_fun`` for this objective); None parts
    stay None."""
    x, y, z = params
    Q, c = params_obj
    stat = Q @ x + c
    eq = ineq = None
    if params_eq is not None:
        A, b = params_eq
        stat = stat + A.T @ y
        eq = A @ x - b
    if params_ineq is not None:
        G, h = params_ineq
        stat = stat + G.T @ z
        ineq = z * (G @ x - h)
    return base.KKTSolution(stat, eq, ineq)


@dataclass(eq=False)
class CvxpyQP:
    """Wraps CVXPY's QP solvers (see the module docstring).

    Attributes:
      solver: the CVXPY solver name ('OSQP', 'ECOS', 'SCS', 'CLARABEL', ...).
      implicit_diff_solve: the linear solver of ``jacobian``/``jvp``/``vjp``.
    """
    solver: str = "OSQP"
    implicit_diff_solve: Optional[Callable] = None
    optimality_jvp: Optional[Callable] = None   # see npopt.implicit_diff
    optimality_vjp: Optional[Callable] = None

    # derivatives of the solution by the implicit function theorem
    jacobian = base.IterativeSolver.jacobian
    jvp = base.IterativeSolver.jvp
    vjp = base.IterativeSolver.vjp
    _implicit_function = base.IterativeSolver._implicit_function
    attribute_names = base.IterativeSolver.attribute_names
    attribute_values = base.IterativeSolver.attribute_values

    def run(self, init_params, params_obj, params_eq=None, params_ineq=None):
        """Solves the QP; ``init_params`` is ignored. Returns OptStep(KKTSolution, None)."""
        del init_params
        _check_params(params_obj, params_eq, params_ineq)
        try:
            import cvxpy as cp
        except ImportError:
            raise ImportError(_NO_CVXPY) from None
        Q, c = (np.asarray(a, float) for a in params_obj)
        x = cp.Variable(c.shape[0])
        constraints = []
        if params_eq is not None:
            A, b = (np.asarray(a, float) for a in params_eq)
            constraints.append(A @ x == b)
        if params_ineq is not None:
            G, h = (np.asarray(a, float) for a in params_ineq)
            constraints.append(G @ x <= h)
        pb = cp.Problem(cp.Minimize(0.5 * cp.quad_form(x, cp.psd_wrap(Q)) + c @ x), constraints)
        pb.solve(solver=self.solver)
        if pb.status in ("infeasible", "unbounded"):
            raise ValueError(f"The problem is {pb.status}.")
        dual_eq = None if params_eq is None else np.asarray(pb.constraints[0].dual_value)
        dual_ineq = None if params_ineq is None else np.asarray(pb.constraints[-1].dual_value)
        return base.OptStep(base.KKTSolution(np.asarray(x.value), dual_eq, dual_ineq), None)

    def optimality_fun(self, params, params_obj, params_eq=None, params_ineq=None):
        """The KKT residual (see ``qp_kkt_optimality_fun``)."""
        return qp_kkt_optimality_fun(params, params_obj, params_eq, params_ineq)

    def l2_optimality_error(self, params, params_obj, params_eq=None, params_ineq=None):
        """The L2 norm of the KKT residual."""
        from .. import tree as T
        return T.tree_l2_norm(self.optimality_fun(params, params_obj, params_eq, params_ineq))
