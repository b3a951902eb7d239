"""``BoxCDQP`` (jaxopt/_src/cd_qp.py): box-constrained QP by cyclic coordinate
descent, each coordinate minimised exactly and clipped.
"""
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Optional, Union

import numpy as np

from ... import _dense
from .. import base
from ._common import _check_finite


class BoxCDQPState(NamedTuple):
    """jaxopt's BoxCDQPState."""
    iter_num: int
    error: float


@dataclass(eq=False)
class BoxCDQP(base.IterativeSolver):
    r"""Coordinate descent for box-constrained QPs.

    Minimises :math:`\tfrac12 x^\top Q x + c^\top x` s.t. :math:`l \le x \le
    u` (dense ``Q``). One ``update`` is a sweep over the coordinates in order,
    each minimised exactly then clipped:

    .. math::

        x_i \leftarrow \mathrm{clip}\big(x_i - (Q_i x + c_i)/Q_{ii},\ l_i,\ u_i\big)

    When :math:`Q_{ii} = 0` the coordinate's objective is linear: npopt
    moves it to the bound its gradient points away from (jaxopt leaves it
    where it is, and reports ``error = 0`` at a point that is not a minimum);
    an infinite bound there means the QP is unbounded below: ValueError.
    ``state.error`` is :math:`\sum_i |\Delta x_i|` over the sweep.

    ``Q`` must be positive semidefinite (the method minimises convex
    quadratics; on a concave direction the exact coordinate step goes to a
    maximum): ``run`` checks it once (a Cholesky factorization of
    :math:`(Q + Q^\top)/2 + \delta I`, :math:`\delta = 10\, n\, \epsilon
    \max|Q|`), ``update`` checks that the diagonal is not negative, and
    both raise ValueError naming ``params_obj`` otherwise; NaN in the data
    raises too.

    ``run(init_params, params_obj=(Q, c), params_ineq=(l, u))``.
    """
    maxiter: int = 500
    tol: float = 1e-4
    verbose: Union[bool, int] = False
    implicit_diff: bool = True
    implicit_diff_solve: Optional[Callable] = None
    jit: bool = True
    unroll: Any = "auto"
    optimality_jvp: Optional[Callable] = None   # see npopt.implicit_diff
    optimality_vjp: Optional[Callable] = None

    def init_state(self, init_params, params_obj=None, params_ineq=None):
        return BoxCDQPState(iter_num=np.asarray(0), error=np.asarray(np.inf))

    @staticmethod
    def _check(params, params_obj, params_ineq):
        Q, c = params_obj
        l, u = params_ineq
        Q = np.asarray(Q)
        n = np.shape(params)[0] if np.ndim(params) == 1 else None
        if n is None or Q.shape != (n, n):
            raise ValueError(f"params_obj: expected Q of shape (n, n) for params of shape "
                             f"(n,), got Q {Q.shape} and params {np.shape(params)}")
        if np.any(np.asarray(l) > np.asarray(u)):
            raise ValueError("params_ineq: expected l <= u, got l > u in some coordinates")
        _check_finite("params_obj", (Q, c))
        _check_finite("params_ineq", (l, u), allow_inf=True)
        diag = np.diagonal(Q)
        if np.any(diag < 0):
            i = int(np.flatnonzero(diag < 0)[0])
            raise ValueError(
                f"params_obj: Q must be positive semidefinite, got Q[{i}, {i}] = {diag[i]:g} "
                f"< 0; BoxCDQP minimises convex quadratics (on a concave coordinate its "
                f"exact step goes to a maximum)")
        return Q, np.asarray(c), np.asarray(l), np.asarray(u)

    @staticmethod
    def _check_psd(Q):
        """ValueError unless ``(Q + Q^T)/2`` is positive semidefinite (to a
        relative ``10 n eps``)."""
        Q = np.asarray(Q)
        if Q.size == 0:
            return
        dtype = np.result_type(Q, np.float32)
        S = 0.5 * (Q + Q.T).astype(dtype)
        scale = float(np.max(np.abs(S)))
        if scale == 0:
            return
        delta = 10 * S.shape[0] * float(np.finfo(dtype).eps) * scale
        try:
            _dense.cholesky(S + delta * np.eye(S.shape[0], dtype=dtype))
        except np.linalg.LinAlgError:
            raise ValueError(
                "params_obj: Q must be positive semidefinite, got a Q with a negative "
                "eigenvalue (its Cholesky factorization fails); BoxCDQP minimises convex "
                "quadratics: on a non-convex Q coordinate descent stops at a point that is "
                "not a minimum") from None

    def run(self, init_params, params_obj, params_ineq):
        """Solves the QP from ``init_params`` (checks that Q is positive
        semidefinite first)."""
        self._check(init_params, params_obj, params_ineq)
        self._check_psd(params_obj[0])
        return super().run(init_params, params_obj, params_ineq)

    def update(self, params, state, params_obj, params_ineq):
        """One sweep of coordinate descent."""
        Q, c, l, u = self._check(params, params_obj, params_ineq)
        base.dtype_of(params, "params")
        x = np.array(params, copy=True)
        error = 0.0
        for i in range(x.shape[0]):
            g_i = _dense.dot(Q[i], x) + c[i]
            h_i = Q[i, i]
            if h_i == 0:
                # a linear coordinate: its minimum is at a bound (jaxopt: no step)
                x_i = x[i] if g_i == 0 else (l[i] if g_i > 0 else u[i])
                if not np.isfinite(x_i):
                    raise ValueError(
                        f"params_obj: the QP is unbounded below along coordinate {i} (Q[{i}, "
                        f"{i}] = 0, a nonzero gradient {g_i:g}, and no bound on that side)")
            else:
                x_i = min(max(x[i] - g_i / h_i, l[i]), u[i])
            error += abs(x_i - x[i])
            x[i] = x_i
        state = BoxCDQPState(iter_num=state.iter_num + 1, error=np.asarray(error, x.dtype))
        self.log_info(state)
        return base.OptStep(x, state)

    def optimality_fun(self, sol, params_obj, params_ineq):
        """``clip(x - (Qx + c), l, u) - x``: zero at the solution."""
        Q, c = params_obj
        l, u = params_ineq
        grad = _dense.dot(Q, sol) + c
        return np.clip(sol - grad, l, u) - sol
