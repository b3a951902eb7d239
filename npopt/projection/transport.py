"""Transport polytopes (Blondel, Seguy & Rolet 2018): ``projection_transport``,
``kl_projection_transport``, ``projection_birkhoff``,
``kl_projection_birkhoff``, by Newton's method on the semi-dual (or a
solver from ``make_solver``).
"""
import numbers
import warnings

import numpy as np

from .. import _dense, _math
from .._checks import _describe, check_bool, check_number
from .._target import is_device_array
from ._args import _pair, _real_array, _vector
from .simplex import _simplex


def _logsumexp_cols(X):
    m = np.max(X, axis=0)
    m = np.where(np.isfinite(m), m, 0.0)
    return m + _math.log(np.sum(_math.exp(X - m), axis=0))


def _semi_dual(kind, alpha, C, a, b):
    """Semi-dual objective (Blondel et al. 2018, eq. 10), its gradient and the plan.

    F(alpha) = sum_j b_j max_Omega(alpha - C[:, j]) - <alpha, a>, with
    l2:  max(x) = <x, p> - b_j/2 ||p||^2,  p = proj_simplex(x / b_j)
    kl:  max(x) = logsumexp(x) - log b_j
    and plan P[:, j] = b_j * grad max(alpha - C[:, j]); grad F = P 1 - a.
    """
    X = alpha[:, None] - C
    if kind == "l2":
        Q = _simplex(np.ascontiguousarray((X / b).T), 1.0).T      # columns p_j
        vals = np.sum(X * Q, axis=0) - 0.5 * b * np.sum(Q * Q, axis=0)
    else:
        lse = _logsumexp_cols(X)
        Q = _math.exp(X - lse)
        vals = lse - _math.log(b)
    P = Q * b
    F = _dense.dot(b, vals) - _dense.dot(alpha, a)
    return F, P.sum(axis=1) - a, P, Q


def _semi_dual_hessian(kind, P, Q, b):
    """A generalised Hessian of F: sum_j d(P[:, j])/d alpha.

    l2: diag(s_j) - s_j s_j^T / |s_j| with s_j the support of column j (the
    Jacobian of the simplex projection); kl: b_j (diag(q_j) - q_j q_j^T).
    """
    if kind == "l2":
        S = (P > 0).astype(np.float64)
        cnt = np.maximum(S.sum(axis=0), 1.0)
        return np.diag(S.sum(axis=1)) - _dense.dot(S / cnt, S.T)
    return np.diag(P.sum(axis=1)) - _dense.dot(P, Q.T)


def _newton_transport(kind, C, a, b, tol, maxiter):
    """Minimise the semi-dual by a regularised (semismooth) Newton method.

    Step ``d = -(H + mu I)^{-1} g`` (``mu = min(1, ||g||_inf)``, Li & Fukushima
    style; ``d`` kept orthogonal to the all-ones direction along which ``F`` is
    constant), Armijo backtracking. For the l2 problem ``F`` is piecewise
    quadratic and Newton's method lands on the exact solution once the
    supports are found; for KL it converges quadratically. Stops when
    ``max_i |(P 1 - a)_i| <= tol * max(a)`` (the column sums are exact by
    construction).
    """
    m = C.shape[0]
    alpha = np.zeros(m)
    F, g, P, Q = _semi_dual(kind, alpha, C, a, b)
    target = tol * np.max(a)
    converged = False
    for _ in range(maxiter):
        gc = g - g.mean()
        gn = np.max(np.abs(gc))
        if gn <= target:
            converged = True
            break
        H = _semi_dual_hessian(kind, P, Q, b)
        mu = min(1.0, gn)
        d = _dense.solve(H + mu * np.eye(m), -gc)
        d -= d.mean()
        slope = _dense.dot(g, d)
        if not slope < 0:
            d, slope = -gc, -_dense.dot(gc, gc)
        t = 1.0
        slack = 64 * np.finfo(np.float64).eps * (1.0 + abs(F))
        while True:
            Fn, gn_, Pn, Qn = _semi_dual(kind, alpha + t * d, C, a, b)
            if Fn <= F + 1e-4 * t * slope + slack or t < 1e-12:
                break
            t *= 0.5
        if t < 1e-12:
            break
        alpha = alpha + t * d
        F, g, P, Q = Fn, gn_, Pn, Qn
    else:
        gc = g - g.mean()
        converged = np.max(np.abs(gc)) <= target
    if not converged:
        gc = g - g.mean()
        if np.max(np.abs(gc)) > max(target, 1e-8 * np.max(a)):
            warnings.warn(f"npopt.projection: the transport projection did not converge "
                          f"(marginal error {np.max(np.abs(gc)):.3g})", RuntimeWarning,
                          stacklevel=3)
    return P


class _Objective:
    """The dual objective handed to ``make_solver``: ``fun(params, cost_matrix,
    marginals_a, marginals_b)`` returns the value (as in jaxopt);
    ``fun.value_and_grad`` returns ``(value, grad)`` and ``fun.grad`` the
    gradient, for solvers built with ``value_and_grad=True`` or ``grad=``."""

    def __init__(self, kind, dual):
        self.kind, self.dual = kind, dual

    def value_and_grad(self, params, cost_matrix, marginals_a, marginals_b):
        C = np.asarray(cost_matrix, np.float64)
        a = np.asarray(marginals_a, np.float64)
        b = np.asarray(marginals_b, np.float64)
        if not self.dual:
            F, g, _, _ = _semi_dual(self.kind, np.asarray(params, np.float64), C, a, b)
            return F, g
        alpha, beta = (np.asarray(p, np.float64) for p in params)
        P = _dual_plan(self.kind, alpha, beta, C)
        if self.kind == "l2":
            F = 0.5 * np.sum(P * P) - _dense.dot(alpha, a) - _dense.dot(beta, b)
        else:
            F = np.sum(P) - _dense.dot(alpha, a) - _dense.dot(beta, b)
        return F, (P.sum(axis=1) - a, P.sum(axis=0) - b)

    def __call__(self, params, cost_matrix, marginals_a, marginals_b):
        return self.value_and_grad(params, cost_matrix, marginals_a, marginals_b)[0]

    def grad(self, params, cost_matrix, marginals_a, marginals_b):
        return self.value_and_grad(params, cost_matrix, marginals_a, marginals_b)[1]


def _dual_plan(kind, alpha, beta, C):
    """Plan of the dual (eq. 7): relu(alpha_i + beta_j - C_ij) (l2) or
    exp(alpha_i + beta_j - C_ij - 1) (kl)."""
    D = alpha[:, None] + beta[None, :] - C
    return np.maximum(D, 0.0) if kind == "l2" else _math.exp(D - 1.0)


def _transport(kind, sim_matrix, marginals, make_solver, use_semi_dual, tol, maxiter):
    check_bool("use_semi_dual", use_semi_dual)
    tol = float(check_number("tol", tol, low=0.0, low_open=True))
    if not isinstance(maxiter, (numbers.Integral, np.integer)) or maxiter < 1:
        raise ValueError(f"maxiter: expected an integer >= 1, got {_describe(maxiter)}")
    S = _vector("sim_matrix", sim_matrix, min_ndim=2)
    if S.ndim != 2:
        raise ValueError(f"sim_matrix: expected a matrix (2-D array), got {_describe(S)}")
    if not np.all(np.isfinite(S)):
        raise ValueError("sim_matrix: expected finite values")
    ma, mb = _pair("marginals", marginals, "(marginals_a, marginals_b)")
    ab, eps = [], 0.0
    for nm, v, size in (("marginals[0] (marginals_a)", ma, S.shape[0]),
                        ("marginals[1] (marginals_b)", mb, S.shape[1])):
        v = _real_array(nm, v)
        if is_device_array(v):
            raise TypeError(f"{nm}: expected a host (NumPy) array, got a CUDA array")
        if v.ndim != 1 or v.shape[0] != size:
            raise ValueError(f"{nm}: expected a vector of length {size} (sim_matrix has shape "
                             f"{S.shape}), got shape {v.shape}")
        eps = max(eps, np.finfo(v.dtype).eps if v.dtype.kind == "f" else 0.0)
        v = v.astype(np.float64)
        if not (np.all(np.isfinite(v)) and np.all(v > 0)):
            raise ValueError(f"{nm}: expected finite positive entries")
        ab.append(v)
    a, b = ab
    # equal sums, up to the rounding of the marginals' own dtype
    if abs(a.sum() - b.sum()) > max(1e-9, 10 * (a.size + b.size) * eps) * max(a.sum(), b.sum()):
        raise ValueError(f"marginals: expected sum(marginals_a) == sum(marginals_b) (otherwise "
                         f"no plan exists), got {a.sum()!r} and {b.sum()!r}")
    C = -S.astype(np.float64)
    if make_solver is None:
        P = _newton_transport(kind, C, a, b, tol, int(maxiter))
    else:
        solver = make_solver(_Objective(kind, dual=not use_semi_dual))
        if use_semi_dual:
            alpha = np.asarray(solver.run(np.zeros(S.shape[0]), cost_matrix=C, marginals_a=a,
                                          marginals_b=b).params, np.float64)
            _, _, P, _ = _semi_dual(kind, alpha, C, a, b)
        else:
            alpha, beta = solver.run((np.zeros(S.shape[0]), np.zeros(S.shape[1])),
                                     cost_matrix=C, marginals_a=a, marginals_b=b).params
            P = _dual_plan(kind, np.asarray(alpha, np.float64), np.asarray(beta, np.float64), C)
    return P.astype(S.dtype)


_TRANSPORT_DOC = r"""

    Args:
      sim_matrix: similarity matrix ``S = -C``, shape (size_a, size_b).
      marginals: a tuple ``(marginals_a, marginals_b)`` of positive vectors of
        shapes (size_a,) and (size_b,) with equal sums: the plan's row sums are
        ``marginals_a`` and its column sums ``marginals_b``.
      make_solver: ``make_solver(fun)`` returning a solver whose
        ``run(init_params, cost_matrix=, marginals_a=, marginals_b=)`` minimises
        ``fun`` (jaxopt's default is ``LBFGS(fun=fun, tol=1e-3, maxiter=500,
        linesearch="zoom")``). ``fun`` returns the value; ``fun.value_and_grad``
        and ``fun.grad`` give the exact gradient (for
        ``LBFGS(fun=fun.value_and_grad, value_and_grad=True, ...)``). None (the
        default): npopt's Newton method to ``tol``.
      use_semi_dual: minimise the semi-dual (eq. 10 of Blondel et al.; params
        ``alpha``) or the dual (eq. 7; params ``(alpha, beta)``). The plan is the
        same; with ``make_solver=None`` the semi-dual is always used.
      tol: npopt extension: the default solver stops when the row sums match
        ``marginals_a`` to ``tol * max(marginals_a)``.
      maxiter: npopt extension: Newton iterations at most.
    Returns:
      plan: transportation matrix, shape (size_a, size_b), dtype of ``sim_matrix``.
    """


def projection_transport(sim_matrix, marginals, make_solver=None, use_semi_dual=True, *,
                         tol=1e-12, maxiter=200):
    return _transport("l2", sim_matrix, marginals, make_solver, use_semi_dual, tol, maxiter)


projection_transport.__doc__ = r"""Projection onto the transportation polytope:

    ``argmin_{P >= 0} ||P - S||^2  s.t.  P 1 = a, P^T 1 = b``, equivalently
    ``argmin <P, C> + 1/2 ||P||^2`` with ``C = -S`` (Blondel, Seguy & Rolet,
    "Smooth and sparse optimal transport", AISTATS 2018).

    npopt minimises the same semi-dual as jaxopt,
    ``F(alpha) = sum_j b_j max_j(alpha - C[:, j]) - <alpha, a>`` with
    ``max_j(x) = max_{p in simplex} <x, p> - b_j/2 ||p||^2`` attained at
    ``p = proj_simplex(x / b_j)``, whose gradient is ``P 1 - a`` for the plan
    ``P[:, j] = b_j p_j``; by a semismooth Newton method (generalised Hessian
    from the simplex projection's Jacobian), to machine precision. jaxopt's
    default LBFGS stops at tol 1e-3, so its plans differ from this exact one
    at about that level (and its zoom line search can stall on this only
    once-differentiable objective: row sums off by 0.15 on one 5 x 4 test
    problem).
    """ + _TRANSPORT_DOC


def kl_projection_transport(sim_matrix, marginals, make_solver=None, use_semi_dual=True, *,
                            tol=1e-12, maxiter=200):
    return _transport("kl", sim_matrix, marginals, make_solver, use_semi_dual, tol, maxiter)


kl_projection_transport.__doc__ = r"""Kullback-Leibler projection onto the transportation polytope:

    ``argmin_{P > 0} KL(P, exp(S))  s.t.  P 1 = a, P^T 1 = b``, equivalently
    ``argmin <P, C> + <P, log P>`` with ``C = -S``: the entropy-regularised
    optimal transport plan ``P = diag(u) exp(S) diag(v)`` that Sinkhorn's
    algorithm computes (Cuturi, "Sinkhorn distances", NeurIPS 2013).

    npopt minimises jaxopt's semi-dual
    ``F(alpha) = sum_j b_j (logsumexp(alpha - C[:, j]) - log b_j) - <alpha, a>``
    (Blondel et al. 2018, eq. 10) by Newton's method (Hessian
    ``sum_j b_j (diag(q_j) - q_j q_j^T)``, ``q_j = softmax(alpha - C[:, j])``),
    quadratically convergent where Sinkhorn is linear; the plan is
    ``P[:, j] = b_j q_j``. jaxopt's default LBFGS stops at tol 1e-3.
    """ + _TRANSPORT_DOC


def _square(sim_matrix):
    S = _vector("sim_matrix", sim_matrix, min_ndim=2)
    if S.ndim != 2 or S.shape[0] != S.shape[1]:
        raise ValueError(f"sim_matrix: expected a square matrix, got shape {S.shape}")
    return S, (np.ones(S.shape[0]), np.ones(S.shape[1]))


def projection_birkhoff(sim_matrix, make_solver=None, use_semi_dual=True, *, tol=1e-12,
                        maxiter=200):
    r"""Projection onto the Birkhoff polytope (doubly stochastic matrices):
    :func:`projection_transport` with all-ones marginals.

    Args:
      sim_matrix: similarity matrix, shape (size, size).
      make_solver, use_semi_dual, tol, maxiter: as in :func:`projection_transport`.
    Returns:
      P: doubly-stochastic matrix, shape (size, size).
    """
    S, marg = _square(sim_matrix)
    return _transport("l2", S, marg, make_solver, use_semi_dual, tol, maxiter)


def kl_projection_birkhoff(sim_matrix, make_solver=None, use_semi_dual=True, *, tol=1e-12,
                           maxiter=200):
    r"""Kullback-Leibler projection onto the Birkhoff polytope (Sinkhorn's
    doubly stochastic scaling of ``exp(S)``): :func:`kl_projection_transport`
    with all-ones marginals.

    Args:
      sim_matrix: similarity matrix, shape (size, size).
      make_solver, use_semi_dual, tol, maxiter: as in :func:`kl_projection_transport`.
    Returns:
      P: doubly-stochastic matrix, shape (size, size).
    """
    S, marg = _square(sim_matrix)
    return _transport("kl", S, marg, make_solver, use_semi_dual, tol, maxiter)
