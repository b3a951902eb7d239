"""Conjugate gradient (``jax.scipy.sparse.linalg.cg``; Hestenes & Stiefel
1952): ``solve_cg``, and ``solve_normal_cg`` (CG on the normal equations).
"""
import numpy as np

from .. import _dense
from .._flat import FlatSpace
from ._common import (_Operator, _as_rhs, _cast_like, _check_common, _check_ridge, _copy,
                      _finish, _is_matrix, _iterative_info, _krylov_setup, _operator,
                      _preconditioner, _result_dtype, _size, _vector_ops, _zeros_like)


def _cg(A, b, x0, tol, atol, maxiter, M):
    """Preconditioned CG, as ``jax.scipy.sparse.linalg.cg`` (Golub & Van Loan,
    Algorithm 11.5.1); ``A``/``M`` are tree callables, M None the identity.

    .. math::

        \\alpha_k = \\frac{\\gamma_k}{p_k^H A p_k},\\quad
        x_{k+1} = x_k + \\alpha_k p_k,\\quad r_{k+1} = r_k - \\alpha_k A p_k,\\quad
        z_{k+1} = M r_{k+1},\\quad \\gamma_{k+1} = \\Re\\, r_{k+1}^H z_{k+1},\\quad
        p_{k+1} = z_{k+1} + \\frac{\\gamma_{k+1}}{\\gamma_k} p_k,

    from :math:`r_0 = b - A x_0`, :math:`p_0 = z_0 = M r_0`, while
    :math:`\\|r\\|^2 > \\max(\\text{tol}^2 \\|b\\|^2, \\text{atol}^2)` (without
    ``M`` the test uses :math:`\\gamma = \\|r\\|^2`) and :math:`k <` maxiter.

    Returns ``(x, k, rs, atol2)``.
    """
    axpy, _, sub, _, _, vdot_real = _vector_ops(b)
    bs = vdot_real(b, b)
    atol2 = max(tol ** 2 * bs, atol ** 2)
    x = x0
    r = sub(b, A(x0))
    z = r if M is None else M(r)
    p = z
    dtype = _result_dtype(p)
    gamma = dtype.type(vdot_real(r, z))
    rs = np.real(gamma) if M is None else vdot_real(r, r)
    k = 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        while rs > atol2 and k < maxiter:
            Ap = A(p)
            alpha = gamma / dtype.type(vdot_real(p, Ap))
            x = axpy(x, alpha, p)
            r = axpy(r, -alpha, Ap)
            z = r if M is None else M(r)
            gamma_new = dtype.type(vdot_real(r, z))
            beta = gamma_new / gamma
            p = axpy(z, beta, p)
            gamma = gamma_new
            rs = np.real(gamma) if M is None else vdot_real(r, r)
            k += 1
    return x, k, float(rs), float(atol2)


def _cg_solve(A, b, x0, tol, atol, maxiter, M, check, return_info):
    x, k, rs, atol2 = _cg(A, b, x0, tol, atol, maxiter, M)
    x = _cast_like(x, b)
    converged = rs <= atol2
    need = return_info or (not converged and check != "ignore")
    status = None if np.isfinite(rs) else "not finite"
    info = _iterative_info(A, x, b, k, converged, status, np.sqrt(atol2), need)
    return x, info


def solve_cg(matvec, b, ridge=None, init=None, *, tol=1e-5, atol=0.0, maxiter=None,
             M=None, return_info=False, check="warn"):
    """Solves ``A x = b`` using conjugate gradient.

    It assumes that ``A`` is a Hermitian, positive definite matrix. The
    iteration is ``jax.scipy.sparse.linalg.cg``'s (see ``_cg``): it stops when
    :math:`\\|r_k\\| \\le \\max(\\text{tol}\\,\\|b\\|, \\text{atol})` (the
    recursively updated residual) or after ``maxiter`` steps.

    Args:
      matvec: product between ``A`` and a vector (pytree to pytree), or ``A``
        as a 2-D array on the ravelled space.
      b: pytree.
      ridge: optional ridge regularization.
      init: optional initialization to be used by conjugate gradient.
      tol, atol: relative and absolute tolerances (jax's defaults).
      maxiter: maximum number of iterations (None: ``10 * size(b)``).
      M: optional preconditioner (approximates :math:`A^{-1}`; callable or
        matrix), as jax's ``M``.
      return_info: also return a ``LinearSolveInfo``.
      check: ``'warn'``, ``'raise'`` or ``'ignore'``: what to do when the
        tolerance is not met (npopt; see the module docstring).

    Returns:
      pytree with same structure as ``b`` (and ``info``).
    """
    b, A, M, x0, maxiter = _krylov_setup(matvec, b, ridge, init, tol, atol, maxiter, M,
                                         check, return_info)
    x, info = _cg_solve(A, b, x0, tol, atol, maxiter, M, check, return_info)
    return _finish("solve_cg", x, info, check, return_info)


def _dense_adjoint(matrix, b, x_like):
    """``y -> A^H y`` for a matrix (ndarray, scipy.sparse, LinearOperator)."""
    b_space, x_space = FlatSpace(b), FlatSpace(x_like)
    mat_h = matrix.adjoint() if hasattr(matrix, "adjoint") else matrix.conj().T
    if isinstance(mat_h, np.ndarray):
        return lambda y: x_space.tree(_dense.dot(mat_h, b_space.flat(y)))
    return lambda y: x_space.tree(mat_h @ b_space.flat(y))   # cpu-ok: sparse/LinearOperator


def solve_normal_cg(matvec, b, ridge=None, init=None, *, rmatvec=None, tol=1e-5,
                    atol=0.0, maxiter=None, M=None, return_info=False, check="warn"):
    """Solves the normal equation ``A^T A x = A^T b`` using conjugate gradient.

    This can be used to solve Ax=b using conjugate gradient when A is not
    hermitian, positive definite, and gives the least-squares solution when
    ``A`` is not square. CG (``solve_cg``'s iteration and tolerances) runs on
    the operator :math:`v \\mapsto A^H (A v) + \\text{ridge}\\, v` with
    right-hand side :math:`A^H b`; ``ridge`` regularizes the *normal*
    operator, as in jaxopt.

    jaxopt gets :math:`A^H` from autodiff (``jax.linear_transpose``). Without
    autodiff npopt takes it, in this order, from ``rmatvec``, from the
    matrix when ``matvec`` is one, or else by materialising :math:`A`
    (``size(x)`` products with unit vectors, once per call): pass
    ``rmatvec`` for large problems.

    Args:
      matvec: product between ``A`` and a vector (pytree shaped like the
        solution to pytree shaped like ``b``), or ``A`` as an ``(m, n)``
        array on the ravelled spaces.
      b: pytree.
      ridge: optional ridge regularization.
      init: optional initialization to be used by normal conjugate gradient.
        Compulsory when ``A`` is not square: it gives the solution's
        structure (a pytree of zeros works).
      rmatvec: npopt: the adjoint product :math:`y \\mapsto A^H y`
        (:math:`A^T y` for real ``A``), pytree shaped like ``b`` to pytree
        shaped like the solution.
      tol, atol, maxiter, M: as ``solve_cg``, for the normal equations
        (the threshold is relative to :math:`\\|A^H b\\|`).
      return_info: also return a ``LinearSolveInfo`` (of the normal equations).
      check: ``'warn'``, ``'raise'`` or ``'ignore'`` (see the module docstring).

    Returns:
      pytree with same structure as ``init`` (``b`` when None), and ``info``.

    .. warning:: for complex ``A`` jaxopt transposes without conjugating,
       which does not give the normal equations; npopt uses :math:`A^H`.
    """
    b = _as_rhs(b)
    _check_ridge(ridge)
    _check_common(tol, atol, maxiter, check, return_info)
    if rmatvec is not None and not callable(rmatvec):
        raise TypeError(f"rmatvec: expected None or a callable y -> A^H y, got "
                        f"{type(rmatvec).__name__}")
    x_like = b if init is None else _as_rhs(init, "init")
    A = _rectangular_operator(matvec, b, x_like, square=init is None)
    At = _Operator(_adjoint(matvec, A, rmatvec, b, x_like), x_like, "rmatvec")

    def normal_matvec(x):
        return At(A(x))

    N = _Operator(normal_matvec, x_like, "matvec", ridge)
    Ab = At(b)
    x0 = _zeros_like(x_like) if init is None else _copy(init)
    if maxiter is None:
        maxiter = 10 * _size(Ab)
    x, info = _cg_solve(N, Ab, x0, tol, atol, maxiter, _preconditioner(M, x_like), check,
                        return_info)
    return _finish("solve_normal_cg", x, info, check, return_info)


def _rectangular_operator(matvec, b, x_like, square):
    """``A`` from the solution's space to b's. Without ``init`` (``square``)
    the solution is shaped like ``b``: jaxopt finds out from
    ``jax.linear_transpose``, npopt by trying ``A`` on a b-shaped input."""
    if _is_matrix(matvec):
        shape = tuple(getattr(matvec, "shape", ()))
        if square and shape != (_size(b),) * 2:
            raise ValueError(f"matvec: expected a square matrix when init is None, got "
                             f"shape {shape}{_NONSQUARE_HINT}")
        return _operator(matvec, b, x_like=x_like)
    if not callable(matvec):
        raise TypeError(f"matvec: expected a callable v -> A v, or a 2-D matrix, got "
                        f"{type(matvec).__name__}")
    A = _Operator(matvec, b, "matvec", hint=_NONSQUARE_HINT if square else "")
    if square:
        try:
            A(_zeros_like(b))
        except (ValueError, TypeError, IndexError) as err:
            if _NONSQUARE_HINT in str(err):
                raise
            raise ValueError(f"matvec: failed on an input shaped like b "
                             f"({type(err).__name__}: {err}){_NONSQUARE_HINT}") from err
        A.count = 0
    return A


def _adjoint(matvec, A, rmatvec, b, x_like):
    """``y -> A^H y``: ``rmatvec``, else the matrix's adjoint, else that of the
    matrix materialised column by column (``size(x)`` products with ``A``)."""
    if rmatvec is not None:
        return rmatvec
    if not _is_matrix(matvec):
        x_space, b_space = FlatSpace(x_like), FlatSpace(b)
        cols = [b_space.flat(A(x_space.tree(e)))
                for e in np.eye(x_space.size, dtype=x_space.dtype)]
        A.count = 0
        matvec = np.stack(cols, axis=1)
    return _dense_adjoint(matvec, b, x_like)


_NONSQUARE_HINT = ("; the initialization `init` of solve_normal_cg is compulsory when "
                   "`matvec` is nonsquare. It should have the same pytree structure as a "
                   "solution. Typically, a pytree filled with zeros should work.")
