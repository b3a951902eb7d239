"""Restarted GMRES (``jax.scipy.sparse.linalg.gmres``; Saad & Schultz 1986),
on ravelled vectors: ``solve_gmres``.
"""
import numbers

import numpy as np

from .. import _dense
from .._checks import _describe
from .._flat import FlatSpace
from ._common import (_as_rhs, _check_common, _check_init, _check_ridge, _finish,
                      _iterative_info, _operator, _preconditioner)


def _vnorm(v):
    return np.sqrt(np.real(_dense.vdot(v, v)))


def _safe_normalize(v, thresh, keep_nan=False):
    """``(v / ||v||, ||v||)``, or ``(0, 0)`` when ``||v|| <= thresh``.

    jax also maps a NaN norm to 0; ``keep_nan=True`` (used for the residuals
    that the stopping test sees) keeps it NaN, so that a NaN residual is not
    mistaken for convergence. The iterates are the same either way.
    """
    norm = _vnorm(v)
    if norm > thresh:
        return v / norm.astype(v.dtype), norm
    return np.zeros_like(v), (norm if keep_nan and np.isnan(norm) else norm.dtype.type(0))


def _arnoldi_step(k, A, M, V, H, eps):
    """Arnoldi step k: ``V[k+1]`` = the unit part of ``M A V[k]`` orthogonal to
    ``V[:k+1]``, ``H[k]`` = its coefficients on ``V`` (``H[k, k+1]`` its norm).
    Returns True on breakdown (an invariant subspace: the new norm is 0).

    jax's ``_iterative_classical_gram_schmidt(max_iterations=2)`` stops after
    one pass (its loop runs while ``k < max_iterations - 1``), so this is a
    single classical Gram-Schmidt projection :math:`h = V^H v`,
    :math:`v \\leftarrow v - V^T h`. Vectors below :math:`\\epsilon\\,
    \\|M A V_k\\|` count as zero.
    """
    v = A(V[k]) if M is None else M(A(V[k]))
    _, v_norm_0 = _safe_normalize(v, eps)
    h = _dense.dot(V.conj() if np.iscomplexobj(V) else V, v)
    v = v - _dense.dot(V.T, h)
    unit_v, v_norm_1 = _safe_normalize(v, eps * v_norm_0)
    V[k + 1] = unit_v
    h[k + 1] = v_norm_1
    H[k] = h
    return v_norm_1 == 0


def _givens_rotation(a, b):
    """``(cs, sn)`` with ``[[conj(cs), -conj(sn)], [sn, cs]] @ [a, b] = [*, 0]``."""
    if b == 0:
        return np.ones((), a.dtype)[()], np.zeros((), a.dtype)[()]
    if abs(a) < abs(b):
        t = -a / b
        r = (1 / np.sqrt(1 + abs(t) ** 2)).astype(t.dtype)
        return r * t, r
    t = -b / a
    r = (1 / np.sqrt(1 + abs(t) ** 2)).astype(t.dtype)
    return r, r * t


def _rotate(h, i, cs, sn):
    x1, y1 = h[i], h[i + 1]
    h[i] = np.conj(cs) * x1 - np.conj(sn) * y1
    h[i + 1] = sn * x1 + cs * y1


def _gmres_incremental(A, M, b, x0, unit_residual, residual_norm, ptol, restart, eps,
                       zero):
    """One restart; the Hessenberg matrix is QR-factored by Givens rotations as
    it grows, which gives the residual :math:`|\\beta_{k+1}|` for free and
    stops the restart as soon as it is below ``ptol`` (Saad 2003, Prop. 6.9)."""
    n, dtype = b.shape[0], b.dtype
    V = np.zeros((restart + 1, n), dtype)
    V[0] = unit_residual
    R = np.eye(restart, restart + 1, dtype=dtype)
    givens = np.zeros((restart, 2), dtype)
    beta = np.zeros(restart + 1, dtype)
    beta[0] = residual_norm
    k, err = 0, residual_norm
    while k < restart and err > ptol:
        _arnoldi_step(k, A, M, V, R, eps)
        row = R[k]
        for i in range(k):
            _rotate(row, i, givens[i, 0], givens[i, 1])
        givens[k] = _givens_rotation(row[k], row[k + 1])
        _rotate(row, k, givens[k, 0], givens[k, 1])
        _rotate(beta, k, givens[k, 0], givens[k, 1])
        err = abs(beta[k + 1])
        k += 1
    try:
        y = _dense.solve_triangular(R[:, :-1].T, beta[:-1], lower=False)
    except np.linalg.LinAlgError:
        y = np.full(restart, np.nan, dtype)
    return _gmres_update(A, M, b, x0, V, y, zero)


def _gmres_batched(A, M, b, x0, unit_residual, residual_norm, ptol, restart, eps, zero):
    """One restart: ``restart`` Arnoldi steps (fewer on breakdown), then the
    least-squares problem :math:`\\min_y \\|\\beta e_1 - H^T y\\|` by its normal
    equations (Cholesky), as jax's ``_lstsq``. No early exit inside a restart."""
    n, dtype = b.shape[0], b.dtype
    V = np.zeros((restart + 1, n), dtype)
    V[0] = unit_residual
    H = np.eye(restart, restart + 1, dtype=dtype)
    k, breakdown = 0, False
    while k < restart and not breakdown:
        breakdown = _arnoldi_step(k, A, M, V, H, eps)
        k += 1
    beta = np.zeros(restart + 1, dtype)
    beta[0] = residual_norm
    a = H.T
    try:
        L = _dense.cholesky(_dense.dot(a.conj().T, a), lower=False).conj().T
        y = _dense.cho_solve(L, _dense.dot(a.conj().T, beta))
    except np.linalg.LinAlgError:
        y = np.full(restart, np.nan, dtype)
    return _gmres_update(A, M, b, x0, V, y, zero)


def _gmres_update(A, M, b, x0, V, y, zero):
    x = x0 + _dense.dot(V[:-1].T, y)
    residual = b - A(x)
    if M is not None:
        residual = M(residual)
    unit_residual, residual_norm = _safe_normalize(residual, zero, keep_nan=True)
    return x, unit_residual, residual_norm


def _gmres(A, M, b, x0, tol, atol, restart, maxiter, restart_fn):
    """Restarted GMRES on 1-D vectors (``jax.scipy.sparse.linalg._gmres_solve``).

    Each restart builds the Krylov space :math:`\\mathcal K_m(MA, r)` of the
    current (preconditioned) residual with Arnoldi and moves ``x`` to the
    minimiser of the residual over it. Between restarts it stops when
    :math:`\\|M(b - Ax)\\| \\le \\text{atol}' = \\max(\\text{tol}\\,\\|b\\|,
    \\text{atol})`; inside one (incremental mode) when the estimated residual
    is below :math:`\\text{ptol} = \\|Mb\\| \\min(1, \\text{atol}'/\\|b\\|)`.

    A residual norm below :math:`\\epsilon \\|Mb\\|` counts as zero.

    .. warning:: jax compares residual norms with an *absolute*
       :math:`\\epsilon` (2.2e-16 in float64), so for any
       :math:`\\|b\\| < \\epsilon` it returns ``x0`` and reports success;
       npopt measures them relative to :math:`\\|Mb\\|` (:math:`\\epsilon`
       when :math:`b = 0`, as jax). The iterates are the same whenever
       :math:`\\text{tol}\\,\\|b\\| > \\epsilon`.

    Returns ``(x, k, residual_norm, atol')``.
    """
    eps = np.finfo(b.dtype).eps
    real = np.finfo(b.dtype).dtype.type
    b_norm = _vnorm(b)
    atol = max(real(tol) * b_norm, real(atol))
    Mb_norm = b_norm if M is None else _vnorm(M(b))
    ptol = Mb_norm * np.minimum(real(1), atol / b_norm)
    zero = eps * Mb_norm if Mb_norm > 0 else eps       # residual norms below: zero
    residual = b - A(x0)
    if M is not None:
        residual = M(residual)
    unit_residual, residual_norm = _safe_normalize(residual, zero, keep_nan=True)
    x, k = x0, 0
    while k < maxiter and residual_norm > atol:
        x, unit_residual, residual_norm = restart_fn(A, M, b, x, unit_residual,
                                                     residual_norm, ptol, restart, eps,
                                                     zero)
        k += 1
    return x, k, float(residual_norm), float(atol)


def solve_gmres(matvec, b, ridge=None, init=None, tol=1e-5, *, atol=0.0, restart=20,
                maxiter=None, M=None, solve_method="batched", return_info=False,
                check="warn"):
    """Solves ``A x = b`` using gmres.

    Restarted GMRES for a general square ``A``, as
    ``jax.scipy.sparse.linalg.gmres`` (see ``_gmres``), on the ravelled
    vectors of ``b``.

    Args:
      matvec: product between ``A`` and a vector, or ``A`` as a 2-D array.
      b: pytree.
      ridge: optional ridge regularization.
      init: optional initialization to be used by gmres.
      tol: relative tolerance (jaxopt passes 1e-5 explicitly).
      atol: absolute tolerance.
      restart: size of the Krylov space built between restarts (capped at
        ``size(b)``).
      maxiter: maximum number of restarts (None: ``10 * size(b)``).
      M: optional preconditioner (left-preconditioned: the residual tested is
        :math:`\\|M(b - Ax)\\|`).
      solve_method: ``'batched'`` (jax's default: ``restart`` Arnoldi steps,
        then a least-squares solve) or ``'incremental'`` (Givens QR as it
        goes, stopping early inside a restart).
      return_info: also return a ``LinearSolveInfo`` (``iter_num``: restarts).
      check: ``'warn'``, ``'raise'`` or ``'ignore'`` (see the module docstring).

    Returns:
      pytree with same structure as ``b`` (and ``info``).
    """
    b = _as_rhs(b)
    _check_ridge(ridge)
    _check_common(tol, atol, maxiter, check, return_info)
    if isinstance(restart, (bool, np.bool_)) or not isinstance(restart, numbers.Integral) \
            or restart < 1:
        raise ValueError(f"restart: expected an integer >= 1, got {_describe(restart)}")
    restart_fn = {"batched": _gmres_batched, "incremental": _gmres_incremental}.get(
        solve_method if isinstance(solve_method, str) else None)
    if restart_fn is None:
        raise ValueError(f"solve_method: expected 'incremental' or 'batched', got "
                         f"{_describe(solve_method)}")
    init = _check_init(init, b)
    A = _operator(matvec, b, ridge)
    M_tree = _preconditioner(M, b)
    space = FlatSpace(b)
    dtype = space.dtype

    def A_flat(v):
        return space.flat(A(space.tree(v))).astype(dtype, copy=False)

    M_flat = None if M_tree is None else (
        lambda v: space.flat(M_tree(space.tree(v))).astype(dtype, copy=False))
    size = space.size
    if maxiter is None:
        maxiter = 10 * size
    b_vec = space.flat(b)
    x0 = np.zeros(size, dtype) if init is None else space.flat(init).astype(dtype)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        x_vec, k, res, atol_ = _gmres(A_flat, M_flat, b_vec, x0, tol, atol,
                                      min(restart, size), maxiter, restart_fn)
    x = space.tree(x_vec)
    converged = res <= atol_
    status = None if np.isfinite(res) else "not finite"
    need = return_info or (not converged and check != "ignore")
    info = _iterative_info(A, x, b, k, converged, status, atol_, need)
    return _finish("solve_gmres", x, info, check, return_info)
