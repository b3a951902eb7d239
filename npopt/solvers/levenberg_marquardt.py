r"""Levenberg-Marquardt for nonlinear least squares (jaxopt 0.8.5's
``LevenbergMarquardt``).

It minimises :math:`F(x) = \tfrac12\|r(x)\|^2` (``r = residual_fun(x, *args,
**kwargs)``) with damped Gauss-Newton steps (Madsen & Nielsen, algorithm
6.18): with :math:`J` the Jacobian and :math:`g = J^\top r`,

.. math::

    (J^\top J + \mu I)\, v = g, \qquad h = -v, \qquad
    \rho = \frac{F(x) - F(x + h)}{\tfrac12 h^\top (\mu h - g)} .

The step is taken when :math:`\rho > 0` and the damping decreases,
:math:`\mu \leftarrow \mu \max(\tfrac13, 1 - (2\rho - 1)^3)`,
:math:`\nu \leftarrow 2`; otherwise :math:`x` stays and
:math:`\mu \leftarrow \min(\mu\nu, 2^{32})`,
:math:`\nu \leftarrow \min(2\nu, 2^{32})`. Initially
:math:`\mu_0 = \text{damping\_parameter} \cdot \max_j (J^\top J)_{jj}`,
:math:`\nu = 2`.

``geodesic=True`` adds half the geodesic acceleration (Transtrum & Sethna
2012): :math:`a = (J^\top J + \mu I)^{-1} J^\top r''[v, v]`, the step is
:math:`-(v + a/2)`, accepted only if also :math:`\|a\|/\|v\| \le 0.75`
(``contribution_ratio_threshold``).

The linear solve (``solver``):

* ``materialize_jac=False`` (default): products with :math:`J^\top J`
  only; a callable ``solver(matvec, b, ridge=mu, init=state.delta)``
  (default ``npopt.linear_solve.solve_cg``; jaxopt's quirk: ``init`` is the
  previous step ``-v``), or ``'cholesky'``/``'lu'``/``'inv'``, which form
  :math:`J^\top J` from ``n`` products (a ``UserWarning`` says so, as jaxopt).
  ``'qr'`` needs ``materialize_jac=True``.
* ``materialize_jac=True``: the dense :math:`J`, :math:`J^\top`,
  :math:`J^\top J` are kept in the state. ``'lu'``, ``'inv'``, ``'qr'``
  (of the augmented :math:`[J; \sqrt\mu I]`, which avoids squaring the
  condition number), and Cholesky for ``'cholesky'`` *and for a callable
  solver* (jaxopt ignores the callable there).

The damped system is an inner system: it is solved as jaxopt solves it,
without a condition check and without raising (``npopt.linear_solve``'s
dense solvers would raise on a system singular to working precision, which
happens here in float32 on badly scaled problems: jaxopt just uses what the
factorization gives). A factorization that breaks down (an exactly zero
pivot, a matrix that is not positive definite in floating point) gives a NaN
step, as jax's NaN/inf, and so does a non-finite damping factor or
gradient; a step that is not finite is rejected by the gain-ratio test
without evaluating ``residual_fun`` there, and the damping grows. npopt's
iterative solvers passed as ``solver`` run with ``check='ignore'`` (no
warning when an inner solve stops short, as in jaxopt). The one exception:
a breakdown with a damping factor of exactly 0 (``damping_parameter=0``, or
a Jacobian that is zero at ``init_params``) raises
``npopt.linear_solve.LinearSolveError``, since ``mu = 0`` can never grow and
LM would never move (jaxopt returns NaN params there).

``stop_criterion``: ``'grad-l2-norm'``, stop when :math:`\|g\|_2 \le`
``tol``; ``'madsen-nielsen'``, stop when :math:`\|g\|_\infty \le` ``gtol`` or
:math:`\|h\|_2 \le \text{xtol}(\|x\|_2 - \text{xtol})` (jaxopt's code; its
docstring says ``+ xtol``).

The Jacobian comes from ``jac_fun`` (dense ``(m, n)`` on the ravelled
params), ``jvp_fun``/``vjp_fun``, or central finite differences: see
``npopt.solvers.gauss_newton``. Second derivatives (``geodesic``) are
central differences of ``jac_fun``/``jvp_fun`` (or second differences of
``residual_fun``): about :math:`\epsilon^{2/3}` (:math:`\epsilon^{1/2}`)
relative error, which only perturbs the acceleration term.

Without ``jac_fun``/``jvp_fun``/``vjp_fun`` the Jacobian, and for
``geodesic`` the second derivatives, are central finite differences of
``residual_fun``, in float64 for float32 params when ``residual_fun``
computes in float64 on float64 input (``npopt.solvers.gauss_newton``): float32
differences of a badly scaled problem (jaxopt's scaled Meyer) are too
inaccurate for LM to converge. A ``FiniteDifferenceWarning`` says once per
instance that this is the slow path.

Departures from jaxopt: params may be any pytree (solved on the ravelled
vector; jaxopt needs a 1-D array); jaxopt blends the accepted and rejected
branches as ``ok * a + (1 - ok) * b``, which turns a rejected step whose
residuals overflowed into NaN params; npopt selects the branch (the same
numbers whenever both are finite) and evaluates the Jacobian only for
accepted steps. ``contribution_ratio_threshold`` is a class attribute, as
in jaxopt.

References:
  K. Madsen & H. B. Nielsen, "Introduction to Optimization and Data
  Fitting", DTU 2010, §6.3 (pp. 120-122).
  M. K. Transtrum & J. P. Sethna, "Improvements to the Levenberg-Marquardt
  algorithm for nonlinear least-squares minimization", arXiv:1201.5885.
"""
import warnings
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Optional, Union

import numpy as np

from .. import _dense
from .. import linear_solve
from .. import tree as T
from .._checks import check_number
from . import base
from .gauss_newton import _Residuals

_DENSE = ("cholesky", "lu", "qr", "inv")


class LevenbergMarquardtState(NamedTuple):
    """jaxopt's LevenbergMarquardtState."""
    iter_num: int
    damping_factor: float
    increase_factor: float
    residual: Any
    value: Any
    delta: Any
    error: float
    gradient: Any
    jac: Any
    jt: Any
    jtj: Any
    hess_res: Any
    aux: Optional[Any] = None


@dataclass(eq=False)
class LevenbergMarquardt(base.IterativeSolver):
    """Levenberg-Marquardt nonlinear least-squares solver (module docstring).

    Attributes:
      residual_fun: ``residual_fun(x, *args, **kwargs)`` -> array of residuals
        (``(residuals, aux)`` with ``has_aux``).
      maxiter: maximum number of iterations (30).
      damping_parameter: :math:`\\mu_0 / \\max_j (J^\\top J)_{jj}` (1e-6).
      stop_criterion: ``'grad-l2-norm'`` (uses tol) or ``'madsen-nielsen'``
        (uses xtol, gtol).
      tol, xtol, gtol: tolerances (1e-3 each).
      solver: a callable ``solver(matvec, b, ridge=, init=)`` (default
        ``npopt.linear_solve.solve_cg``; it sees ravelled vectors), or
        ``'cholesky'``, ``'lu'``, ``'qr'``, ``'inv'``.
      geodesic: add the geodesic acceleration.
      verbose: print one line per iteration.
      jac_fun: ``jac_fun(x, *args, **kwargs)``, the dense Jacobian ``(m, n)``.
      materialize_jac: keep dense J, J^T, J^T J (and dense solves).
      implicit_diff, implicit_diff_solve: see ``npopt.implicit_diff``.
      has_aux: ``residual_fun`` returns ``(residuals, aux)``.
      jit, unroll: accepted for compatibility; nothing is compiled.
      jvp_fun, vjp_fun: matrix-free Jacobian products (npopt; see
        ``npopt.solvers.gauss_newton``).
      optimality_jvp, optimality_vjp: exact derivatives of ``optimality_fun``
        for implicit differentiation.
    """
    residual_fun: Callable
    maxiter: int = 30
    damping_parameter: float = 1e-6
    stop_criterion: str = "grad-l2-norm"
    tol: float = 1e-3
    xtol: float = 1e-3
    gtol: float = 1e-3
    solver: Union[str, Callable] = linear_solve.solve_cg
    geodesic: bool = False
    contribution_ratio_threshold = 0.75         # a class attribute, as in jaxopt
    verbose: Union[bool, int] = False
    jac_fun: Optional[Callable] = None
    materialize_jac: bool = False
    implicit_diff: bool = True
    implicit_diff_solve: Optional[Callable] = None
    has_aux: bool = False
    jit: bool = True
    unroll: Any = "auto"
    jvp_fun: Optional[Callable] = None
    vjp_fun: Optional[Callable] = None
    optimality_jvp: Optional[Callable] = None   # see npopt.implicit_diff
    optimality_vjp: Optional[Callable] = None

    implicit_diff_symmetric = True      # optimality_fun is the gradient J^T r
    damping_factor_max = float(2 ** 32)
    increase_factor_max = float(2 ** 32)

    def __post_init__(self):
        super().__post_init__()
        for name in ("damping_parameter", "xtol", "gtol"):
            check_number(name, getattr(self, name), low=0)
        if self.stop_criterion not in ("grad-l2-norm", "madsen-nielsen"):
            raise ValueError(f"stop_criterion: expected 'grad-l2-norm' or 'madsen-nielsen', "
                             f"got {self.stop_criterion!r}")
        if callable(self.solver):
            self._solver_fn = self.solver
        elif isinstance(self.solver, str) and self.solver in _DENSE:
            self._solver_fn = getattr(linear_solve, "solve_" + self.solver)
        else:
            raise ValueError(f"solver: expected a callable or one of {_DENSE}, got "
                             f"{self.solver!r}")
        if not self.materialize_jac:
            if self.solver == "qr":
                raise ValueError(
                    "solver: 'qr' factorizes the augmented Jacobian instead of solving the "
                    "normal equation, which needs materialize_jac=True")
            if isinstance(self.solver, str):
                warnings.warn(
                    f"The linear solver {self.solver} that requires materialization of J^T.J "
                    "matrix is used with materialize_jac=False, which may cause a "
                    "computational overhead. Consider using either a matrix-free iterative "
                    "solver such as cg or bicg or using materialize_jac=True.", UserWarning,
                    stacklevel=3)
        self._res = _Residuals(self.residual_fun, self.has_aux, self.jac_fun, self.jvp_fun,
                               self.vjp_fun, owner=type(self).__name__)
        if callable(self.solver):
            self._solver_fn = linear_solve._quiet(self.solver)   # an inner solve: no warning

    # -- the linearisation at x --------------------------------------------
    def _at(self, x, unravel, r, args, kwargs):
        """``(gradient, jac, jt, jtj, hess_res)`` at the ravelled ``x``."""
        if self.materialize_jac:
            jac = self._res.dense_jacobian(x, unravel, r, args, kwargs)
            jt = jac.T
            jtj = _dense.dot(jt, jac)
            gradient = _dense.dot(jt, r.ravel())
            hess_res = (self._res.hessians(x, unravel, r, args, kwargs)
                        if self.geodesic else None)
            return gradient, jac, jt, jtj, hess_res
        lin = self._res.linearize(x, unravel, r, args, kwargs)
        return lin.vjp(r.ravel()), None, None, None, None

    def init_state(self, init_params, *args, **kwargs):
        """The state at ``init_params``: mu_0 = damping_parameter * max diag(J^T J)."""
        base.dtype_of(init_params)
        self._res.reset()
        r, aux = self._res(init_params, args, kwargs)
        x, unravel = T.ravel(init_params)
        gradient, jac, jt, jtj, hess_res = self._at(x, unravel, r, args, kwargs)
        if self.materialize_jac:
            diag = np.diag(jtj)
        else:
            diag = self._res.linearize(x, unravel, r, args, kwargs).jtj_diag(x.size, x.dtype)
        damping_factor = self.damping_parameter * np.max(diag, initial=0)
        return LevenbergMarquardtState(
            iter_num=np.asarray(0), damping_factor=damping_factor, increase_factor=2,
            error=_dense.norm(gradient), residual=r, value=0.5 * np.sum(np.square(r)),
            delta=unravel(np.zeros_like(x)), gradient=unravel(gradient), jac=jac, jt=jt,
            jtj=jtj, hess_res=hess_res, aux=aux)

    # -- the step -------------------------------------------------------------
    def _dense_step(self, state, n, g, r):
        """``(velocity, acceleration)`` from the dense J (materialize_jac=True)."""
        mu = state.damping_factor
        if not (np.isfinite(mu) and np.all(np.isfinite(g))):
            nan = np.full(n, np.nan, g.dtype)
            return nan, (nan if self.geodesic else None)
        if self.solver == "qr":
            aug_jac = np.vstack([state.jac, np.sqrt(mu) * np.identity(n)])
            aug_res = np.hstack([r, np.zeros(n)])
            q, rr = _dense.qr(aug_jac, mode="economic")
            if _singular_triangular(rr):
                velocity = np.full(n, np.nan, g.dtype)
            else:
                velocity = _dense.solve_triangular(rr, _dense.dot(q.T, aug_res))
        else:
            jtj_corr = state.jtj + mu * np.identity(n)
            kind = self.solver if self.solver in ("lu", "inv") else "cholesky"
            velocity = _inner_solve(kind, jtj_corr, g, cast=True)
        if not self.geodesic:
            return velocity, None
        with np.errstate(all="ignore"):
            rpp = _dense.dot(_dense.dot(state.hess_res, velocity), velocity)
            if not np.all(np.isfinite(velocity)):
                acceleration = np.full(n, np.nan, g.dtype)
            elif self.solver == "qr":
                acceleration = _dense.solve_triangular(
                    rr, _dense.dot(q.T, np.hstack([rpp, np.zeros(n)])))
            elif self.solver == "lu":
                acceleration = _dense.dot(_inner_solve("lu", jtj_corr, state.jt), rpp)
            elif self.solver == "inv":
                acceleration = _dense.dot(_inner_solve("inv_matrix", jtj_corr, state.jt), rpp)
            else:
                acceleration = _dense.dot(_inner_solve("cholesky_lower", jtj_corr, state.jt),
                                          rpp)
        return velocity, acceleration

    def _matrix_free_solve(self, lin, b, mu, init=None):
        """``(J^T J + mu I)^{-1} b``: the callable ``solver``, or the dense
        factorization of ``J^T J + mu I`` formed from ``n`` products (jaxopt's
        string solvers with ``materialize_jac=False``), without raising."""
        if not (np.isfinite(mu) and np.all(np.isfinite(b))):
            return np.full(b.shape, np.nan, b.dtype)
        if callable(self.solver):
            kw = {} if init is None else {"init": init}
            return np.asarray(self._solver_fn(lin.jtj, b, ridge=mu, **kw))
        A = linear_solve._materialize(lin.jtj, b, mu)[0]
        return _inner_solve(self.solver, A, b, cast=True)

    def _matrix_free_step(self, state, x, unravel, g, r, args, kwargs):
        """``(velocity, acceleration)`` from products with J^T J."""
        lin = self._res.linearize(x, unravel, r, args, kwargs)
        mu = state.damping_factor
        init = T.ravel(state.delta)[0] if callable(self.solver) else None
        velocity = self._matrix_free_solve(lin, g, mu, init)
        if not self.geodesic:
            return velocity, None
        if not np.all(np.isfinite(velocity)):
            return velocity, np.full_like(velocity, np.nan)
        rpp = self._res.second_directional(x, unravel, r, velocity, args, kwargs)
        acceleration = self._matrix_free_solve(lin, lin.vjp(rpp), mu)
        return velocity, acceleration

    def update(self, params, state, *args, **kwargs):
        """One LM iteration: solve for the step, accept or reject it by the
        gain ratio, update the damping. Returns OptStep."""
        x, unravel = T.ravel(params)
        r = np.asarray(state.residual)
        g = T.ravel(state.gradient)[0]
        loss_curr = state.value
        if self.materialize_jac:
            velocity, acceleration = self._dense_step(state, x.size, g, r.ravel())
        else:
            velocity, acceleration = self._matrix_free_step(state, x, unravel, g, r, args, kwargs)
        if state.damping_factor == 0 and np.all(np.isfinite(g)) \
                and not np.all(np.isfinite(velocity)):
            raise linear_solve.LinearSolveError(
                "npopt.LevenbergMarquardt: the damped system J^T J + mu I is singular with a "
                "damping factor mu = 0 (damping_parameter=0, or a Jacobian that is zero at "
                "init_params), and LM can only grow mu by multiplying it: it would never move. "
                "Use damping_parameter > 0")
        # the params' dtype throughout, as jaxopt (a float64 J^T J + mu I must not
        # turn float32 iterates into float64 ones)
        velocity = np.asarray(velocity).astype(x.dtype, copy=False)
        delta = velocity
        if self.geodesic:
            acceleration = np.asarray(acceleration).astype(x.dtype, copy=False)
            delta = delta + 0.5 * acceleration
            with np.errstate(divide="ignore", invalid="ignore"):
                contribution_ratio_diff = (_dense.norm(acceleration) / _dense.norm(velocity)
                                           - self.contribution_ratio_threshold)
        else:
            contribution_ratio_diff = 0.0
        delta = -delta

        updated = x + delta
        mu, nu = state.damping_factor, state.increase_factor
        if np.all(np.isfinite(delta)):
            r_next, aux_next = self._res(unravel(updated), args, kwargs, r.shape)
            with np.errstate(all="ignore"):
                gain_ratio_denom = _dense.dot(0.5 * delta, mu * delta - g)
                loss_next = 0.5 * np.sum(np.square(r_next))
                gain_ratio = (loss_curr - loss_next) / gain_ratio_denom
        else:       # a failed inner solve: rejected (jaxopt: NaN gain ratio), no evaluation
            r_next = aux_next = None
            gain_ratio = np.nan

        if gain_ratio > 0.0 and contribution_ratio_diff <= 0.0:
            x, residual, aux = updated, r_next, aux_next
            gradient, jac, jt, jtj, hess_res = self._at(x, unravel, residual, args, kwargs)
            with np.errstate(all="ignore"):
                damping_factor = mu * max(1 / 3, 1 - (2 * gain_ratio - 1) ** 3)
            increase_factor = 2.0
        else:
            residual, aux, gradient = r, state.aux, g
            jac, jt, jtj, hess_res = state.jac, state.jt, state.jtj, state.hess_res
            damping_factor = min(mu * nu, self.damping_factor_max)
            increase_factor = min(2 * nu, self.increase_factor_max)

        new_value = 0.5 * np.sum(np.square(residual))
        state = LevenbergMarquardtState(
            iter_num=state.iter_num + 1, damping_factor=damping_factor,
            increase_factor=increase_factor, error=_dense.norm(gradient), residual=residual,
            value=new_value, delta=unravel(delta), gradient=unravel(gradient), jac=jac, jt=jt,
            jtj=jtj, hess_res=hess_res, aux=aux)
        self.log_info(state, "Gradient Norm", {"Objective Value": new_value,
                                               "Damping Factor": damping_factor})
        return base.OptStep(unravel(x), state)

    # -- the loop -------------------------------------------------------------
    def _cond_fun(self, params, state):
        if self.stop_criterion == "madsen-nielsen":
            mul_term = self.xtol * (T.tree_l2_norm(params) - self.xtol)
            return bool(T.tree_inf_norm(state.gradient) > self.gtol
                        and T.tree_l2_norm(state.delta) > mul_term)
        return bool(state.error > self.tol)

    def run(self, init_params, *args, **kwargs):
        """``init_state``, one ``update``, then updates while the stopping
        criterion is not met, at most ``maxiter`` in all. Returns OptStep. On
        the compiled state machine (``npopt.solvers.engine``) where it applies
        (materialize_jac=True with the Cholesky solve, float64): the same
        numbers."""
        from . import engine
        out = engine.try_run(self, init_params, args, kwargs)
        if out is not None:
            return out
        state = self.init_state(init_params, *args, **kwargs)
        if self.maxiter == 0:
            return base.OptStep(init_params, state)
        params, state = self.update(init_params, state, *args, **kwargs)
        for _ in range(self.maxiter - 1):
            if not self._cond_fun(params, state):
                break
            params, state = self.update(params, state, *args, **kwargs)
        self._warn_if_not_finite(state)
        return base.OptStep(params, state)

    def optimality_fun(self, params, *args, **kwargs):
        """The gradient ``J^T r`` of ``0.5 ||r||^2``: zero at a stationary point."""
        r, _ = self._res(params, args, kwargs)
        x, unravel = T.ravel(params)
        return unravel(self._res.linearize(x, unravel, r, args, kwargs).vjp(r.ravel()))


def _singular_triangular(rr):
    """R of the augmented Jacobian cannot be solved with (jax: inf/NaN)."""
    return not np.all(np.isfinite(rr)) or not np.all(np.diagonal(rr))


def _nan_like(b):
    return np.full(np.shape(b), np.nan, np.result_type(b, np.float32))


def _inner_solve(kind, A, b, cast=False):
    """``A^{-1} b`` for LM's damped system, the factorizations npopt's
    ``linear_solve`` uses (the same bits) but without its condition check:
    a breakdown gives NaN (jax gives NaN/inf), never an exception.

    ``kind``: 'cholesky' (``A = U^T U`` from the upper triangle, as
    ``solve_cholesky`` and ``jax.scipy.linalg.solve(assume_a='pos')``),
    'cholesky_lower' (from the lower triangle), 'lu', 'inv' (``inv(A) @ b``),
    'inv_matrix' (``inv(A) @ b`` for a matrix ``b``). ``cast``: the solution
    in ``b``'s dtype (as ``npopt.linear_solve``'s solvers return it)."""
    x = _inner_solve_raw(kind, A, b)
    return x.astype(np.result_type(b), copy=False) if cast else x


def _inner_solve_raw(kind, A, b):
    with np.errstate(all="ignore"):
        if not np.all(np.isfinite(A)):
            return _nan_like(b)
        if kind in ("cholesky", "cholesky_lower"):
            try:
                if kind == "cholesky":
                    L = _dense.cholesky(A, lower=False).conj().T
                else:
                    L = _dense.cholesky(A)
            except np.linalg.LinAlgError:       # not positive definite: jax gives NaN
                return _nan_like(b)
            return _dense.cho_solve(L, b)
        lu, piv, k = _dense.lu_factor(A)
        if k >= 0:                              # an exactly zero pivot: jax gives inf/NaN
            return _nan_like(b)
        if kind == "lu":
            return _dense.lu_solve(lu, piv, b)
        inv = _dense.lu_solve(lu, piv, np.eye(A.shape[0], dtype=lu.dtype))
        return _dense.dot(inv, b)
