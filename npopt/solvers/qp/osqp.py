"""``BoxOSQP`` and ``OSQP`` (jaxopt/_src/osqp.py): OSQP's ADMM (Stellato et al.
2020) on ``Ax = z, l <= z <= u``, and ``Ax = b, Gx <= h`` rewritten as such a
problem.
"""
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Optional, Union

import numpy as np

from ... import _dense, linear_solve
from ... import tree as T
from .. import base
from ._common import (DenseLinearOperator, KKTSolution, _FD_MESSAGE, _OperatorFactory,
                      _check_finite, _check_matvec, _fun_matvec_Q, _stationarity_Q,
                      extract_Qc_from_obj)


class BoxOSQPState(NamedTuple):
    """jaxopt's BoxOSQPState."""
    iter_num: int
    error: float
    status: int
    primal_residuals: Any
    dual_residuals: Any
    rho_bar: Any
    solver_state: Any


def _projection_box(x, box):
    lower, upper = box
    return T.tree_map(lambda xi, li, ui: np.clip(np.asarray(xi), li, ui), x, lower, upper)


def _relu(x):
    return np.maximum(x, 0)


class _OSQPIndirectSolver:
    """``(Q + sigma I + rho A^T A) x = b`` by warm-started CG (optionally
    Jacobi-preconditioned), with ``atol = 0.15 sqrt(|r_p|_inf |r_d|_inf)``."""

    def __init__(self, make_Q, make_A, tol, jacobi_preconditioner=False):
        self.make_Q, self.make_A = make_Q, make_A
        self.tol, self.jacobi = tol, jacobi_preconditioner

    def init_state(self, init_params, params_Q, params_A, sigma, rho_bar):
        precond = None
        if self.jacobi:
            Q, A = self.make_Q(params_Q), self.make_A(params_A)
            if not isinstance(Q, DenseLinearOperator) or not isinstance(A, DenseLinearOperator):
                raise ValueError("eq_qp_solve: Jacobi preconditioning ('cg+jacobi') is only "
                                 "available for pytrees of matrices, not matvecs")
            precond = (Q.diag(), A.columns_l2_norms(squared=True))
        return init_params, (params_Q, params_A, sigma, rho_bar), precond

    def update_stepsize(self, solver_state, rho_bar):
        prev, (params_Q, params_A, sigma, _), precond = solver_state
        return prev, (params_Q, params_A, sigma, rho_bar), precond

    def run(self, b, osqp_state):
        prev, (params_Q, params_A, sigma, rho_bar), precond = osqp_state.solver_state
        Q, A = self.make_Q(params_Q), self.make_A(params_A)
        with np.errstate(all="ignore"):
            atol = 0.15 * np.sqrt(T.tree_inf_norm(osqp_state.primal_residuals)
                                  * T.tree_inf_norm(osqp_state.dual_residuals))
        if not np.isfinite(atol):       # diverged iterates: the error turns NaN and run stops
            atol = 0.0

        def matvec(v):
            Qv = T.tree_add_scalar_mul(Q(v), sigma, v)
            return T.tree_add_scalar_mul(Qv, rho_bar, A.normal_matvec(v))

        M = None
        if precond is not None:
            d = T.tree_add(T.tree_add_scalar_mul(precond[0], rho_bar, precond[1]),
                           T.tree_map(lambda _: sigma, precond[0]))
            inv = T.tree_map(lambda m: 1 / m, d)
            M = lambda v: T.tree_mul(inv, v)    # noqa: E731
        with np.errstate(all="ignore"):
            sol = linear_solve.solve_cg(matvec, b, init=prev, M=M, maxiter=None,
                                        atol=float(atol), tol=self.tol, check="ignore")
        return sol, (sol, (params_Q, params_A, sigma, rho_bar), precond)


class _OSQPLUSolver:
    """The same system by a dense LU factorisation, refactored when rho changes."""

    @staticmethod
    def _factor(params_Q, params_A, sigma, rho_bar):
        def lu(Q, A):
            Q, A = np.asarray(Q), np.asarray(A)
            return _dense.lu_factor(Q + sigma * np.eye(len(Q)) + rho_bar * _dense.dot(A.T, A))
        return T.tree_map(lu, params_Q, params_A, is_leaf=lambda x: isinstance(x, np.ndarray))

    def init_state(self, init_params, params_Q, params_A, sigma, rho_bar):
        return (params_Q, params_A, sigma), self._factor(params_Q, params_A, sigma, rho_bar)

    def update_stepsize(self, solver_state, rho_bar):
        (params_Q, params_A, sigma), _ = solver_state
        return (params_Q, params_A, sigma), self._factor(params_Q, params_A, sigma, rho_bar)

    def run(self, b, osqp_state):
        _, factors = osqp_state.solver_state
        sol = T.tree_map(lambda bi, f: _dense.lu_solve(f[0], f[1], bi), b,
                         factors)
        return sol, osqp_state.solver_state


@dataclass(eq=False)
class BoxOSQP(base.IterativeSolver):
    r"""OSQP (ADMM) for :math:`\min \tfrac12 x^\top Qx + c^\top x` s.t.
    :math:`Ax = z,\ l \le z \le u` (``l = u`` for equalities, ``np.inf``
    bounds for one-sided constraints).

    One ``update`` (Stellato et al. 2020, Algorithm 1, with
    :math:`\alpha` = ``momentum``, :math:`\rho` = ``rho_bar``):

    .. math::

        (Q + \sigma I + \rho A^\top A)\,\tilde x &= \sigma x - c - A^\top(y - \rho z),
        \quad \tilde z = A \tilde x\\
        x^+ &= x + \alpha(\tilde x - x)\\
        z^+ &= \Pi_{[l, u]}\big(z + \alpha(\tilde z - z) + y / \rho\big)\\
        y^+ &= y + \rho\big(z + \alpha(\tilde z - z) - z^+\big)

    the linear system by warm-started CG (``eq_qp_solve='cg'``, tolerance
    ``1e-7 tol``), Jacobi-preconditioned CG (``'cg+jacobi'``) or LU
    (``'lu'``). Every ``stepsize_updates_frequency`` iterations
    :math:`\rho \leftarrow \mathrm{clip}(\rho \sqrt{(\|r_p\|_\infty/\|Ax\|_\infty)
    / (\|r_d\|_\infty / \max(\|Qx\|_\infty, \|A^\top y\|_\infty, \|c\|_\infty) +
    \epsilon)}, \rho_{min}, \rho_{max})`; every ``termination_check_frequency``
    iterations ``error`` = :math:`\max(\|Ax - z\|_\infty, \|Qx + c + A^\top
    y\|_\infty)` and ``status`` becomes ``SOLVED`` below ``tol``.

    With ``check_primal_dual_infeasability`` (``'auto'``, the default: True;
    jaxopt's ``'auto'`` means ``not jit`` and so is off by default, but npopt
    compiles nothing and an infeasible problem would otherwise run its 4000
    iterations and end ``UNSOLVED`` without a word) the iterate differences
    are tested as infeasibility certificates, while the stopping criterion is
    not met:
    :math:`\delta y` with :math:`\|A^\top\delta y\|_\infty \le \epsilon_p
    \|\delta y\|_\infty` and :math:`u^\top\delta y_+ + l^\top\delta y_- \le
    \epsilon_p\|\delta y\|_\infty` proves the primal infeasible
    (``PRIMAL_INFEASIBLE``); :math:`\delta x` with :math:`\|Q\delta x\|`,
    :math:`c^\top\delta x` small and :math:`A\delta x` in the recession cone
    of the box proves the dual infeasible (``DUAL_INFEASIBLE``). Either sets
    ``error = 0`` (the loop stops) and ``state.status``, and ``run`` warns
    (RuntimeWarning) that the returned point is no solution; with
    ``jit=False`` ``update`` raises ValueError instead, as jaxopt. Unlike
    jaxopt, a zero step (:math:`\delta y = 0`, resp. :math:`\delta x = 0`)
    certifies nothing (jaxopt's ``0 <= 0`` reports a feasible problem whose
    ``y`` stays 0 over the first check ``PRIMAL_INFEASIBLE``), and a
    ``SOLVED`` check is not overridden.

    NaN in ``params_obj``, ``params_eq`` or ``params_ineq`` (infinite bounds
    are fine) raises ValueError naming the argument.

    ``run(init_params=None, params_obj=(Q, c), params_eq=A, params_ineq=(l, u))``
    returns ``KKTSolution(primal=(x, z), dual_eq=y, dual_ineq=(mu, phi))``
    with :math:`\mu = y_+`, :math:`\phi = (-y)_+`.
    """
    matvec_Q: Optional[Callable] = None
    matvec_A: Optional[Callable] = None
    fun: Optional[Callable] = None
    check_primal_dual_infeasability: Any = "auto"
    sigma: float = 1e-6
    momentum: float = 1.6
    eq_qp_solve: str = "cg"
    rho_start: float = 0.1
    rho_min: float = 1e-6
    rho_max: float = 1e6
    stepsize_updates_frequency: int = 10
    primal_infeasible_tol: float = 1e-3
    dual_infeasible_tol: float = 1e-3
    maxiter: int = 4000
    tol: float = 1e-3
    termination_check_frequency: int = 5
    verbose: Union[bool, int] = False
    implicit_diff: bool = True
    implicit_diff_solve: Optional[Callable] = None
    jit: bool = True
    unroll: Any = "auto"
    optimality_jvp: Optional[Callable] = None   # see npopt.implicit_diff
    optimality_vjp: Optional[Callable] = None

    UNSOLVED = 0            # stopping criterion not reached yet
    SOLVED = 1              # feasible solution within tol
    DUAL_INFEASIBLE = 2     # dual infeasible (primal infeasible or unbounded)
    PRIMAL_INFEASIBLE = 3   # primal infeasible

    def __post_init__(self):
        super().__post_init__()
        _check_matvec("matvec_Q", self.matvec_Q)
        _check_matvec("matvec_A", self.matvec_A)
        if self.fun is not None and self.matvec_Q is not None:
            raise ValueError("fun: incompatible with matvec_Q (give one of them)")
        if not 0 < self.momentum < 2:
            raise ValueError(f"momentum: expected a number in (0, 2), got {self.momentum!r}")
        if not (self.sigma >= 0 and 0 < self.rho_min <= self.rho_start <= self.rho_max):
            raise ValueError(f"rho_min, rho_start, rho_max, sigma: expected sigma >= 0 and "
                             f"0 < rho_min <= rho_start <= rho_max, got {self.sigma!r}, "
                             f"{self.rho_min!r}, {self.rho_start!r}, {self.rho_max!r}")
        for name in ("stepsize_updates_frequency", "termination_check_frequency"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name}: expected a positive integer, got {v!r}")
        self._fd = base.FiniteDifferences(type(self).__name__, message=_FD_MESSAGE)
        self._op_Q = _OperatorFactory(_fun_matvec_Q(self.fun, self._fd) if self.fun is not None
                                      else self.matvec_Q)
        self._op_A = _OperatorFactory(self.matvec_A)
        kind = self.eq_qp_solve.lower() if isinstance(self.eq_qp_solve, str) else None
        if kind == "cg":
            self._eq_qp_solve_impl = _OSQPIndirectSolver(self._op_Q, self._op_A, 1e-7 * self.tol)
        elif kind == "cg+jacobi":
            self._eq_qp_solve_impl = _OSQPIndirectSolver(self._op_Q, self._op_A, 1e-7 * self.tol,
                                                         jacobi_preconditioner=True)
        elif kind == "lu":
            self._eq_qp_solve_impl = _OSQPLUSolver()
        else:
            raise ValueError(f"eq_qp_solve: expected 'cg', 'cg+jacobi' or 'lu', got "
                             f"{self.eq_qp_solve!r}")
        # npopt has no jit: 'auto' turns the detection on (jaxopt: not jit)
        self._check_infeasible = (True if self.check_primal_dual_infeasability == "auto"
                                  else bool(self.check_primal_dual_infeasability))

    # -- init ------------------------------------------------------------
    def init_params(self, init_x, params_obj, params_eq, params_ineq):
        """The default KKTSolution: ``x = init_x`` (zeros like ``c``),
        ``z = clip(Ax, l, u)``, zero duals."""
        if init_x is None:
            if self.fun is not None:
                raise ValueError("init_x: must be provided when fun is not None")
            init_x = T.tree_zeros_like(params_obj[1])
        init_z = _projection_box(self._op_A(params_eq)(init_x), params_ineq)
        init_y = T.tree_zeros_like(init_z)
        return KKTSolution((init_x, init_z), init_y, (init_y, init_y))

    def init_state(self, init_params, params_obj, params_eq, params_ineq):
        x, z = init_params.primal
        y = init_params.dual_eq
        params_Q, c = extract_Qc_from_obj(x, params_obj, self.fun)
        Q, A = self._op_Q(params_Q), self._op_A(params_eq)
        primal_res, dual_res = self._compute_residuals(Q, c, A, x, z, y)
        solver_state = self._eq_qp_solve_impl.init_state(x, params_Q, params_eq, self.sigma,
                                                         self.rho_start)
        return BoxOSQPState(iter_num=0, error=np.inf, status=BoxOSQP.UNSOLVED,
                            primal_residuals=primal_res, dual_residuals=dual_res,
                            rho_bar=self.rho_start, solver_state=solver_state)

    # -- pieces ----------------------------------------------------------
    @staticmethod
    def _get_full_KKT_solution(primal, y):
        """``mu = y_+`` (with ``mu = y`` at 0), ``phi = (-y)_+``."""
        mu = T.tree_map(lambda yi: np.where(yi >= 0, yi, 0), y)
        phi = T.tree_map(lambda yi: _relu(-yi), y)
        return KKTSolution(primal=primal, dual_eq=y, dual_ineq=(mu, phi))

    @staticmethod
    def _compute_residuals(Q, c, A, x, z, y):
        Ax, ATy = A.matvec_and_rmatvec(x, y)
        return T.tree_sub(Ax, z), T.tree_add(T.tree_add(Q(x), c), ATy)

    def _update_stepsize(self, rho_bar, solver_state, primal_res, dual_res, Q, c, A, x, y):
        Ax, ATy = A.matvec_and_rmatvec(x, y)
        with np.errstate(divide="ignore", invalid="ignore"):
            primal_coef = T.tree_inf_norm(primal_res) / T.tree_inf_norm(Ax)
            max_inf = max(T.tree_inf_norm(Q(x)), max(T.tree_inf_norm(ATy), T.tree_inf_norm(c)))
            dual_coef = T.tree_inf_norm(dual_res) / max_inf
            eps = np.finfo(np.result_type(dual_coef, np.float32)).eps
            coef = np.sqrt(primal_coef / (dual_coef + eps))
        rho_bar = float(np.clip(rho_bar * coef, self.rho_min, self.rho_max))
        return rho_bar, self._eq_qp_solve_impl.update_stepsize(solver_state, rho_bar)

    def _compute_error(self, primal_res, dual_res):
        criterion = max(T.tree_inf_norm(primal_res), T.tree_inf_norm(dual_res))
        return criterion, (BoxOSQP.SOLVED if criterion <= self.tol else BoxOSQP.UNSOLVED)

    def _check_dual_infeasability(self, error, status, delta_x, Q, c, Adx, l, u):
        criterion = self.dual_infeasible_tol * T.tree_inf_norm(delta_x)
        certif_Q = T.tree_inf_norm(Q(delta_x))
        certif_c = T.tree_vdot(c, delta_x)
        ok_l = T.tree_map(lambda adx, li: bool(np.all(np.where(li == -np.inf, -np.inf,
                                                               -criterion) <= adx)), Adx, l)
        ok_u = T.tree_map(lambda adx, ui: bool(np.all(adx <= np.where(ui == np.inf, np.inf,
                                                                      criterion))), Adx, u)
        certif_A = all(T.tree_leaves(ok_l)) and all(T.tree_leaves(ok_u))
        # npopt: a zero step certifies nothing (jaxopt's 0 <= 0 does)
        if criterion > 0 and certif_Q <= criterion and certif_c <= criterion and certif_A:
            return 0.0, BoxOSQP.DUAL_INFEASIBLE
        return error, status

    def _check_primal_infeasability(self, error, status, delta_y, ATdy, l, u):
        criterion = self.primal_infeasible_tol * T.tree_inf_norm(delta_y)
        certif_A = T.tree_inf_norm(ATdy)
        bounded_l = T.tree_map(lambda li: np.where(li == -np.inf, 0.0, li), l)
        bounded_u = T.tree_map(lambda ui: np.where(ui == np.inf, 0.0, ui), u)
        dy_plus = T.tree_map(_relu, delta_y)
        dy_minus = T.tree_map(lambda d: -_relu(-d), delta_y)
        certif_lu = T.tree_vdot(bounded_l, dy_minus) + T.tree_vdot(bounded_u, dy_plus)
        if criterion > 0 and certif_A <= criterion and certif_lu <= criterion:
            return 0.0, BoxOSQP.PRIMAL_INFEASIBLE
        return error, status

    def _check_termination_conditions(self, primal_res, dual_res, old, new, Q, c, A, l, u):
        error, status = self._compute_error(primal_res, dual_res)
        if self._check_infeasible and status != BoxOSQP.SOLVED:
            delta_x = T.tree_sub(new.primal[0], old.primal[0])
            delta_y = T.tree_sub(new.dual_eq, old.dual_eq)
            Adx, ATdy = A.matvec_and_rmatvec(delta_x, delta_y)
            error, status = self._check_dual_infeasability(error, status, delta_x, Q, c, Adx,
                                                           l, u)
            error, status = self._check_primal_infeasability(error, status, delta_y, ATdy, l, u)
        return error, status

    def _admm_step(self, params, Q, c, A, box, rho_bar, state):
        x, z = params.primal
        y = params.dual_eq
        # line 3: (x_bar, z_bar) from the KKT system of the augmented Lagrangian
        bxq = T.tree_sub(T.tree_scalar_mul(self.sigma, x), c)
        byz = T.tree_add_scalar_mul(y, -rho_bar, z)
        b = T.tree_sub(bxq, A.rmatvec(bxq, byz))
        x_bar, solver_state = self._eq_qp_solve_impl.run(b, state)
        z_bar = A(x_bar)                                                      # line 4
        x_next = T.tree_add(x, T.tree_scalar_mul(self.momentum, T.tree_sub(x_bar, x)))  # 5
        z_momentum = T.tree_add(z, T.tree_scalar_mul(self.momentum, T.tree_sub(z_bar, z)))
        z_free = T.tree_add(z_momentum, T.tree_scalar_mul(1 / rho_bar, y))
        z_next = _projection_box(z_free, box)                                 # line 6
        y_next = T.tree_add(y, T.tree_scalar_mul(rho_bar, T.tree_sub(z_momentum, z_next)))  # 7
        return (x_next, z_next), y_next, solver_state

    # -- one iteration ---------------------------------------------------
    def update(self, params, state, params_obj, params_eq, params_ineq):
        """One ADMM iteration (plus the periodic step-size update and
        termination check)."""
        params_Q, c = extract_Qc_from_obj(params.primal[0], params_obj, self.fun)
        Q, A = self._op_Q(params_Q), self._op_A(params_eq)
        l, u = params_ineq
        rho_bar = state.rho_bar
        if int(self.verbose) >= 2:
            print(f"rho_bar: {rho_bar}")
        (x, z), y, solver_state = self._admm_step(params, Q, c, A, (l, u), rho_bar, state)
        if int(self.verbose) >= 3:
            print(f"x: {x} z: {z} y: {y}")
        primal_res, dual_res = self._compute_residuals(Q, c, A, x, z, y)
        if state.iter_num % self.stepsize_updates_frequency == 0:
            rho_bar, solver_state = self._update_stepsize(rho_bar, solver_state, primal_res,
                                                          dual_res, Q, c, A, x, y)
        sol = BoxOSQP._get_full_KKT_solution((x, z), y)
        if state.iter_num % self.termination_check_frequency == 0:
            error, status = self._check_termination_conditions(primal_res, dual_res, params,
                                                               sol, Q, c, A, l, u)
        else:
            error, status = state.error, state.status
        if not self.jit:
            if status == BoxOSQP.PRIMAL_INFEASIBLE:
                raise ValueError("Primal infeasible.")
            if status == BoxOSQP.DUAL_INFEASIBLE:
                raise ValueError("Dual infeasible.")
        state = BoxOSQPState(iter_num=state.iter_num + 1, error=error, status=status,
                             primal_residuals=primal_res, dual_residuals=dual_res,
                             rho_bar=rho_bar, solver_state=solver_state)
        self.log_info(state)
        return base.OptStep(sol, state)

    def run(self, init_params=None, params_obj=None, params_eq=None, params_ineq=None):
        """Solves the QP from ``init_params`` (None: ``init_params(None, ...)``)."""
        if params_obj is None or params_ineq is None:
            raise ValueError("params_obj, params_ineq: expected (Q, c) and (l, u), got None")
        _check_finite("params_obj", params_obj)
        _check_finite("params_eq", params_eq)
        _check_finite("params_ineq", params_ineq, allow_inf=True)
        for lo, hi in zip(T.tree_leaves(params_ineq[0]), T.tree_leaves(params_ineq[1])):
            if np.any(np.asarray(lo) > np.asarray(hi)):
                raise ValueError("params_ineq: expected l <= u, got l > u in some coordinates")
        self._op_Q.reset()
        self._op_A.reset()
        if init_params is None:
            init_params = self.init_params(None, params_obj, params_eq, params_ineq)
        out = super().run(init_params, params_obj, params_eq, params_ineq)
        _warn_infeasible(self.__dict__.get("_warn_name", type(self).__name__), out.state.status)
        return out

    # -- optimality ------------------------------------------------------
    def optimality_fun(self, params, params_obj, params_eq, params_ineq):
        """KKT residuals of the Lagrangian :math:`\\tfrac12 x^\\top Qx + c^\\top x +
        y^\\top(Ax - z) + \\mu^\\top(z - u) + \\phi^\\top(l - z)`: stationarity
        in ``(x, z)``, ``Ax - z``, and ``(mu (z - u), phi (l - z))`` (terms
        of infinite bounds set to zero)."""
        (x, z), y, (mu, phi) = params
        params_Q, c = extract_Qc_from_obj(x, params_obj, self.fun)
        Q, A = self._op_Q(params_Q), self._op_A(params_eq)
        l, u = params_ineq
        u_fin = T.tree_map(lambda ui: ui != np.inf, u)
        l_fin = T.tree_map(lambda li: li != -np.inf, l)
        Ax, ATy = A.matvec_and_rmatvec(x, y)
        grad_x = T.tree_add(T.tree_add(_stationarity_Q(Q, x), c), ATy)
        grad_z = T.tree_map(lambda yi, m, p, uf, lf: -yi + np.where(uf, m, 0) - np.where(lf, p, 0),
                            y, mu, phi, u_fin, l_fin)
        upper = T.tree_map(lambda uf, zi, ui: np.where(uf, zi - ui, 0), u_fin, z, u)
        lower = T.tree_map(lambda lf, li, zi: np.where(lf, li - zi, 0), l_fin, l, z)
        return KKTSolution((grad_x, grad_z), T.tree_sub(Ax, z),
                           (T.tree_mul(upper, mu), T.tree_mul(lower, phi)))


def _warn_infeasible(name, status):
    if status == BoxOSQP.PRIMAL_INFEASIBLE:
        base.warn(f"npopt.{name}: the problem is primal infeasible (state.status = "
                  f"{BoxOSQP.PRIMAL_INFEASIBLE}, PRIMAL_INFEASIBLE: no point satisfies the "
                  f"constraints); the returned point is not a solution")
    elif status == BoxOSQP.DUAL_INFEASIBLE:
        base.warn(f"npopt.{name}: the problem is dual infeasible (state.status = "
                  f"{BoxOSQP.DUAL_INFEASIBLE}, DUAL_INFEASIBLE: the objective is unbounded "
                  f"below on the feasible set, or the constraints are infeasible); the "
                  f"returned point is not a solution")


# --------------------------------------------------------------------------
# OSQP.

class OSQPState(NamedTuple):
    """jaxopt's OSQPState."""
    iter_num: int
    error: float
    status: int


class _OSQPToBoxOSQP:
    """``Ax = b, Gx <= h`` as ``[A; G] x = z``, ``[b; -inf] <= z <= [b; h]``."""

    @staticmethod
    def transform_matvec(matvec_A, matvec_G):
        if matvec_A is None and matvec_G is None:
            return None

        def matvec_A_box(params, x):
            params_A, params_G = params
            out = []
            if matvec_A is not None:
                out.append(matvec_A(params_A, x))
            elif params_A is not None:
                out.append(DenseLinearOperator(params_A)(x))
            if matvec_G is not None:
                out.append(matvec_G(params_G, x))
            elif params_G is not None:
                out.append(DenseLinearOperator(params_G)(x))
            return out
        return matvec_A_box

    @staticmethod
    def _concat(trees):
        return T.tree_map(lambda *leaves: np.concatenate(leaves, axis=0), *trees)

    @staticmethod
    def transform(matvec_A_box, make_A_box, params, params_obj, params_eq, params_ineq):
        if params_eq is None and params_ineq is None:
            raise ValueError("params_eq, params_ineq: expected at least one of them, got None "
                             "for both (an unconstrained QP is a linear system: use "
                             "npopt.linear_solve.solve_cg)")
        eq_size = ineq_neg_size = None
        A = G = None
        l, u, y = [], [], []
        if params_eq is not None:
            A, b = params_eq
            l.append(b)
            u.append(b)
            eq_size = T.tree_map(lambda bi: np.shape(bi)[0], b)
            if params is not None:
                y.append(params.dual_eq)
        if params_ineq is not None:
            G, h = params_ineq
            l.append(T.tree_map(lambda hi: np.full(np.shape(hi), -np.inf,
                                                   np.result_type(hi, np.float32)), h))
            u.append(h)
            ineq_neg_size = T.tree_map(lambda hi: -np.shape(hi)[0], h)
            if params is not None:
                y.append(params.dual_ineq)
        A_box = [None if A is None else T.tree_map(np.asarray, A),
                 None if G is None else T.tree_map(np.asarray, G)]
        if matvec_A_box is None:
            A_box = [a for a in A_box if a is not None]
            A_box = _OSQPToBoxOSQP._concat(A_box)
            l = _OSQPToBoxOSQP._concat(l)
            u = _OSQPToBoxOSQP._concat(u)
        if params is not None:
            x = params.primal
            z = make_A_box(A_box)(x)
            if matvec_A_box is None:
                y = _OSQPToBoxOSQP._concat(y)
            params = BoxOSQP._get_full_KKT_solution((x, z), y)
        hyper = dict(params_obj=params_obj, params_eq=A_box, params_ineq=(l, u))
        return params, hyper, (eq_size, ineq_neg_size)

    @staticmethod
    def _split(tree, sizes):
        if sizes is None:
            return None
        return T.tree_map(lambda leaf, s: leaf[:s] if s > 0 else leaf[s:], tree, sizes)

    @staticmethod
    def inverse_transform(matvec_A_box, sizes, kkt):
        (x, _), dual_eq, (mu, _) = kkt
        eq_size, ineq_neg_size = sizes
        if matvec_A_box is not None:
            dual_eq, mu = dual_eq[0], mu[-1]
        return KKTSolution(x, _OSQPToBoxOSQP._split(dual_eq, eq_size),
                           _OSQPToBoxOSQP._split(mu, ineq_neg_size))


class OSQP(base.IterativeSolver):
    r"""OSQP for general QPs: :math:`\min \tfrac12 x^\top Qx + c^\top x` s.t.
    :math:`Ax = b,\ Gx \le h`, solved as the ``BoxOSQP`` problem
    :math:`[A; G]\,x = z`, :math:`[b; -\infty] \le z \le [b; h]`.

    Keyword-only constructor: ``matvec_Q``, ``matvec_A``, ``matvec_G``,
    ``fun``, and every other ``BoxOSQP`` field (``tol``, ``maxiter``,
    ``eq_qp_solve``, ``check_primal_dual_infeasability``, ...) with its
    defaults; ``implicit_diff`` is always True.

    ``run(init_params=None, params_obj=(Q, c), params_eq=(A, b) or None,
    params_ineq=(G, h) or None)`` returns ``OptStep(KKTSolution(x, y_eq,
    y_ineq), OSQPState(iter_num, error, status))``; ``status`` is one of
    ``BoxOSQP.UNSOLVED, SOLVED, DUAL_INFEASIBLE, PRIMAL_INFEASIBLE``.
    """
    implicit_diff = True

    def __init__(self, *, matvec_Q=None, matvec_A=None, matvec_G=None, fun=None,
                 optimality_jvp=None, optimality_vjp=None, **kwargs):
        if fun is not None and matvec_Q is not None:
            raise ValueError("fun: incompatible with matvec_Q (give one of them)")
        _check_matvec("matvec_G", matvec_G)
        kwargs.pop("implicit_diff", None)
        self.matvec_A_box = _OSQPToBoxOSQP.transform_matvec(matvec_A, matvec_G)
        self.matvec_Q, self.matvec_A, self.matvec_G, self.fun = matvec_Q, matvec_A, matvec_G, fun
        self.optimality_jvp, self.optimality_vjp = optimality_jvp, optimality_vjp
        self._box_osqp = BoxOSQP(matvec_Q=matvec_Q, matvec_A=self.matvec_A_box, fun=fun,
                                 implicit_diff=True, **kwargs)
        self._box_osqp._warn_name = "OSQP"
        self._box_osqp._fd.owner = "OSQP"
        self.maxiter, self.tol = self._box_osqp.maxiter, self._box_osqp.tol
        self.verbose = self._box_osqp.verbose
        self.implicit_diff_solve = self._box_osqp.implicit_diff_solve
        self._op_A_box = _OperatorFactory(self.matvec_A_box)
        self._op_G = _OperatorFactory(matvec_G)
        self._op_Aeq = _OperatorFactory(matvec_A)

    def _transform(self, params, params_obj, params_eq, params_ineq):
        return _OSQPToBoxOSQP.transform(self.matvec_A_box, self._op_A_box, params, params_obj,
                                        params_eq, params_ineq)

    def init_params(self, init_x, params_obj, params_eq, params_ineq):
        """The default KKTSolution (BoxOSQP's, mapped back)."""
        _, hyper, sizes = self._transform(None, params_obj, params_eq, params_ineq)
        box = self._box_osqp.init_params(init_x, **hyper)
        return _OSQPToBoxOSQP.inverse_transform(self.matvec_A_box, sizes, box)

    def run(self, init_params=None, params_obj=None, params_eq=None, params_ineq=None):
        """Solves the QP; see the class docstring."""
        if params_obj is None:
            raise ValueError("params_obj: expected (Q, c), got None")
        _check_finite("params_obj", params_obj)
        _check_finite("params_eq", params_eq)
        _check_finite("params_ineq", params_ineq, allow_inf=True)
        self._op_A_box.reset()
        if init_params is None:
            init_params = self.init_params(None, params_obj, params_eq, params_ineq)
        init_params, hyper, sizes = self._transform(init_params, params_obj, params_eq,
                                                    params_ineq)
        sol, st = self._box_osqp.run(init_params, **hyper)
        sol = _OSQPToBoxOSQP.inverse_transform(self.matvec_A_box, sizes, sol)
        return base.OptStep(sol, OSQPState(iter_num=st.iter_num, error=st.error,
                                           status=st.status))

    def init_state(self, *args, **kwargs):
        raise NotImplementedError("OSQP: use run (or BoxOSQP for init_state/update)")

    def update(self, *args, **kwargs):
        raise NotImplementedError("OSQP: use run (or BoxOSQP for init_state/update)")

    def optimality_fun(self, params, params_obj, params_eq=None, params_ineq=None):
        """KKT residuals of the original problem: ``(Qx + c + A^T y + G^T lam,
        Ax - b, lam * (Gx - h))`` (None for absent constraints)."""
        x, y, lam = params
        params_Q, c = extract_Qc_from_obj(x, params_obj, self.fun)
        Q = self._box_osqp._op_Q(params_Q)
        stat = T.tree_add(_stationarity_Q(Q, x), c)
        feas = slack = None
        if params_eq is not None:
            A = self._op_Aeq(params_eq[0])
            Ax, ATy = A.matvec_and_rmatvec(x, y)
            stat, feas = T.tree_add(stat, ATy), T.tree_sub(Ax, params_eq[1])
        if params_ineq is not None:
            G = self._op_G(params_ineq[0])
            Gx, GTl = G.matvec_and_rmatvec(x, lam)
            stat, slack = T.tree_add(stat, GTl), T.tree_mul(T.tree_sub(Gx, params_ineq[1]), lam)
        return KKTSolution(stat, feas, slack)

    def l2_optimality_error(self, params, params_obj, params_eq=None, params_ineq=None):
        return T.tree_l2_norm(self.optimality_fun(params, params_obj, params_eq, params_ineq))

    def attribute_names(self):
        return ("matvec_Q", "matvec_A", "matvec_G", "fun") + tuple(
            n for n in self._box_osqp.attribute_names()
            if n not in ("matvec_Q", "matvec_A", "fun"))

    def attribute_values(self):
        return tuple(getattr(self, n, None) if n in ("matvec_Q", "matvec_A", "matvec_G", "fun")
                     else getattr(self._box_osqp, n) for n in self.attribute_names())
