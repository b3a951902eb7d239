"""Dense solvers: materialise ``A`` (``n`` products with unit vectors), then
factor it with a fixed order of operations (``npopt._dense``):
``solve_lu``, ``solve_cholesky``, ``solve_qr``, ``solve_inv``. Each raises
``LinearSolveError`` when ``A`` is singular to working precision.
"""
import warnings

import numpy as np

from .. import _dense
from .._checks import check_bool
from .._flat import FlatSpace
from ._common import (LinearSolveError, LinearSolveInfo, LinearSolveWarning, _Operator,
                      _as_rhs, _check_ridge, _is_matrix, _matrix_matvec)


def _materialize(matvec, b, ridge):
    """``(A, b_vec, space, n_products)``: A as an (n, n) array on b's ravelled space.

    Column j is ``flat(matvec(tree(e_j)))`` (jaxopt: ``jax.jacfwd(matvec)``);
    a dense ``matvec`` is used as it is. ``ridge`` is added to the diagonal,
    which is exactly what adding ``ridge * e_j`` to each column does.
    """
    space = FlatSpace(b)
    n = space.size
    if _is_matrix(matvec):
        _matrix_matvec(matvec, "matvec", space, space)          # shape check
        if hasattr(matvec, "toarray"):                           # scipy.sparse
            A = matvec.toarray()
        elif isinstance(matvec, np.ndarray):
            A = matvec
        else:                                                    # LinearOperator
            A = matvec @ np.eye(n, dtype=space.dtype)            # cpu-ok: the user's operator
        A = np.array(A, dtype=np.result_type(A, space.dtype))    # a copy: ridge is added
        products = 0
    elif callable(matvec):
        op = _Operator(matvec, b, "matvec")
        A = np.empty((n, n), dtype=space.dtype)
        e = np.zeros(n, dtype=space.dtype)
        for j in range(n):
            e[j] = 1
            A[:, j] = space.flat(op(space.tree(e)))
            e[j] = 0
        products = n
    else:
        raise TypeError(f"matvec: expected a callable v -> A v, or a 2-D matrix, got "
                        f"{type(matvec).__name__}")
    if ridge is not None:
        A[np.diag_indices(n)] += ridge
    return A, space.flat(b).astype(A.dtype, copy=False), space, products


def _singular(name, detail):
    return LinearSolveError(
        f"npopt.linear_solve.{name}: the matrix A (+ ridge I) is singular ({detail}); "
        f"jax would return inf/nan or meaningless numbers here. Add ridge= or use "
        f"solve_normal_cg for a least-squares solution")


def _check_rcond(name, rcond, dtype):
    """Raise when the estimated reciprocal condition number (LAPACK ``*con``,
    1-norm) is below eps: the solution would have no correct digit."""
    eps = np.finfo(dtype).eps
    if not rcond >= eps:
        raise _singular(name, f"to working precision: estimated reciprocal condition "
                              f"number {rcond:.1e} < eps = {eps:.1e}")


def _direct(name, factor_solve, matvec, b, ridge, return_info):
    """The frame shared by the dense solvers."""
    b = _as_rhs(b)
    _check_ridge(ridge)
    check_bool("return_info", return_info)
    A, b_vec, space, products = _materialize(matvec, b, ridge)
    if type(b) is np.ndarray and b.ndim == 0:
        # jaxopt's scalar branch: b / A, an error for A == 0.
        a = A[0, 0]
        if name == "solve_cholesky" and not a > 0:
            raise _not_pd(a)
        if a == 0:
            raise _singular(name, "A == 0 for a scalar b")
        x_vec = b_vec / a
    else:
        x_vec = factor_solve(A, b_vec)
    x = space.tree(x_vec)
    if not return_info:
        return x
    with np.errstate(all="ignore"):
        res = float(_dense.norm(_dense.dot(A, x_vec) - b_vec))
    return x, LinearSolveInfo(True, 0, res, float("nan"), products, "converged")


def _lu_factor(name, A):
    """LU with partial pivoting (LAPACK ``getrf``'s algorithm, in
    ``npopt._dense``) plus the condition check."""
    lu, piv, k = _dense.lu_factor(A)
    if k >= 0:
        raise _singular(name, f"LU found an exactly zero pivot U[{k}, {k}]")
    _check_rcond(name, _dense.rcond1(A, lu, piv), A.dtype)
    return lu, piv


def _lu(A, b):
    # getrf + getrs is LAPACK gesv, what numpy.linalg.solve calls.
    lu, piv = _lu_factor("solve_lu", A)
    return _dense.lu_solve(lu, piv, b)


def solve_lu(matvec, b, ridge=None, *, return_info=False):
    """Solves ``A x = b`` by LU decomposition with partial pivoting.

    It materialises ``A`` (``n`` products with unit vectors), then calls
    LAPACK ``getrf``/``getrs`` (``gesv``, what ``numpy.linalg.solve`` calls;
    jaxopt: ``jax.numpy.linalg.solve``): :math:`PA = LU`,
    :math:`x = U^{-1} L^{-1} P b`.

    Args:
      matvec: product between ``A`` and a vector (a pytree shaped like ``b``),
        or ``A`` itself as a 2-D array on the ravelled space.
      b: pytree (jaxopt: an array of at most 2 dimensions; npopt: any pytree,
        solved on its ravelled vector).
      ridge: optional ridge regularization (solves ``(A + ridge I) x = b``).
      return_info: also return a ``LinearSolveInfo`` (see the module docstring).

    Returns:
      pytree with same structure as ``b`` (and ``info``).

    Raises:
      LinearSolveError: ``A`` is singular to working precision: an exactly
        zero pivot, or LAPACK's estimate of the reciprocal condition number
        (``gecon``, 1-norm) below the dtype's eps (jax returns inf/nan or
        digits that mean nothing).
    """
    return _direct("solve_lu", _lu, matvec, b, ridge, return_info)


def _not_pd(detail):
    return LinearSolveError(
        f"npopt.linear_solve.solve_cholesky: the matrix A (+ ridge I) is not positive "
        f"definite ({detail}); jax would return nan here. solve_cholesky needs a symmetric "
        f"positive definite operator: add ridge= or use solve_lu / solve_gmres")


def _cholesky(A, b):
    scale = np.max(np.abs(A))
    asym = np.max(np.abs(A - A.conj().T)) if scale > 0 else 0.0
    if asym > np.sqrt(np.finfo(A.dtype).eps) * scale:
        warnings.warn(
            f"npopt.linear_solve.solve_cholesky: A is not symmetric (max |A - A^H| / "
            f"max |A| = {asym / scale:.1e}); only its upper triangle is used, as in "
            f"jaxopt/jax.scipy", LinearSolveWarning, stacklevel=4)
    # A = U^H U from the upper triangle, as LAPACK potrf(lower=0) does for
    # jax.scipy.linalg.solve(assume_a='pos'); npopt._dense, not LAPACK, so
    # that the bits do not depend on the CPU.
    try:
        L = _dense.cholesky(A, lower=False).conj().T        # A = U^H U, L = U^H
    except np.linalg.LinAlgError as e:
        raise _not_pd(str(e).replace("Matrix is not positive definite: ", "its ")
                      + " is not positive") from None
    _check_rcond("solve_cholesky", _cholesky_rcond(A, L), A.dtype)
    return _dense.cho_solve(L, b)


def _cholesky_rcond(A, L):
    """rcond1 of the Hermitian matrix factored (A's upper triangle, mirrored),
    ``||A^-1||_1`` estimated from Cholesky solves as LAPACK's ``pocon``."""
    n = L.shape[0]
    herm = np.triu(A) + np.triu(A, 1).conj().T
    anorm = float(np.max(np.sum(np.abs(herm), axis=0), initial=0.0))
    solve = lambda v: _dense.cho_solve(L, v)                  # noqa: E731 (A^H = A)
    inorm = _dense.inv_norm1_estimate(solve, solve, n, L.dtype)
    return 1.0 / (anorm * inorm) if anorm > 0 and 0 < inorm < np.inf else 0.0


def solve_cholesky(matvec, b, ridge=None, *, return_info=False):
    """Solves ``A x = b``, using Cholesky decomposition.

    It materialises ``A``, factors :math:`A = U^H U` from its upper triangle
    (LAPACK ``potrf`` via ``scipy.linalg.cho_factor(lower=False)``, as
    ``jax.scipy.linalg.solve(..., assume_a='pos')`` does) and solves
    :math:`U^H y = b`, :math:`U x = y`.

    Args:
      matvec: product between positive definite matrix ``A`` and a vector, or
        ``A`` as a 2-D array on the ravelled space.
      b: pytree.
      ridge: optional ridge regularization.
      return_info: also return a ``LinearSolveInfo``.

    Returns:
      pytree with same structure as ``b`` (and ``info``).

    Raises:
      LinearSolveError: ``A`` (+ ridge) is not positive definite (jax returns
        nan; jaxopt's scalar branch returns ``b / A`` for any nonzero ``A``),
        or singular to working precision (``pocon`` estimate below eps).

    A ``LinearSolveWarning`` says when ``A`` is not symmetric (relative
    asymmetry above :math:`\\sqrt{\\epsilon}`): only the upper triangle is used.

    .. note:: jaxopt materialises ``A`` in the default float dtype, so a
       float32 ``b`` comes back float64 under x64; npopt keeps ``b``'s dtype.
    """
    return _direct("solve_cholesky", _cholesky, matvec, b, ridge, return_info)


def _qr(A, b):
    q, r = _dense.qr(A)
    if not np.all(np.diagonal(r)):
        raise _singular("solve_qr", "R has an exact zero on its diagonal")
    _check_rcond("solve_qr", _dense.tri_rcond1(r), A.dtype)
    return _dense.solve_triangular(r, _dense.dot(q.conj().T, b))


def solve_qr(matvec, b, ridge=None, *, return_info=False):
    """Solves ``A x = b``, using QR factorization.

    It materialises ``A``, factors :math:`A = QR` (Householder, LAPACK
    ``geqrf``/``orgqr`` via ``scipy.linalg.qr``, full mode as jaxopt) and
    solves the triangular system :math:`R x = Q^H b`.

    Args:
      matvec: product between matrix ``A`` and a vector, or ``A`` as a 2-D
        array on the ravelled space.
      b: RHS pytree (jaxopt: at most 1-D).
      ridge: optional ridge regularization.
      return_info: also return a ``LinearSolveInfo``.

    Returns:
      pytree with same structure as ``b`` (and ``info``). (jaxopt's docstring
      says "a tuple containing Q and R"; it returns the solution.)

    Raises:
      LinearSolveError: ``A`` is singular to working precision (an exact zero
        on the diagonal of ``R``, or ``trcon``'s reciprocal condition number
        estimate of ``R``, that of ``A``, below eps).

    .. warning:: jaxopt computes :math:`Q^T b`, which is wrong for complex
       ``A``; npopt uses :math:`Q^H b` (the same for real ``A``).
    """
    return _direct("solve_qr", _qr, matvec, b, ridge, return_info)


def _inv(A, b):
    # numpy.linalg.inv is gesv(A, I): getrf, then getrs on the identity.
    lu, piv = _lu_factor("solve_inv", A)
    inv = _dense.lu_solve(lu, piv, np.eye(A.shape[0], dtype=A.dtype))
    return _dense.dot(inv, b)


def solve_inv(matvec, b, ridge=None, *, return_info=False):
    """Solves ``A x = b``, using matrix inversion: :math:`x = A^{-1} b`.

    It materialises ``A`` and forms :math:`A^{-1}` (LU, then the identity
    solved for, as ``numpy.linalg.inv``).
    Inverting is less accurate and slower than ``solve_lu``; it is here for
    jaxopt compatibility.

    Args:
      matvec: product between ``A`` and a vector, or ``A`` as a 2-D array.
      b: pytree (jaxopt: at most 1-D).
      ridge: optional ridge regularization.
      return_info: also return a ``LinearSolveInfo``.

    Returns:
      pytree with same structure as ``b`` (and ``info``).

    Raises:
      LinearSolveError: ``A`` is singular to working precision (as ``solve_lu``).
    """
    return _direct("solve_inv", _inv, matvec, b, ridge, return_info)
