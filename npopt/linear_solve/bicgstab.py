"""BiCGSTAB (``jax.scipy.sparse.linalg.bicgstab``; van der Vorst 1992):
``solve_bicgstab``.
"""
import numpy as np

from ._common import (_cast_like, _finish, _iterative_info, _krylov_setup, _result_dtype,
                      _vector_ops)


def _bicgstab(A, b, x0, tol, atol, maxiter, M):
    """Preconditioned BiCGSTAB as ``jax.scipy.sparse.linalg.bicgstab``
    (van der Vorst 1992; the "preconditioned BiCGSTAB" of Wikipedia):

    .. math::

        \\rho_k = \\hat r^H r,\\ \\beta = \\frac{\\rho_k}{\\rho_{k-1}}\\frac{\\alpha}{\\omega},\\
        p = r + \\beta (p - \\omega q),\\ q = A M p,\\
        \\alpha = \\frac{\\rho_k}{\\hat r^H q},\\ s = r - \\alpha q,\\
        t = A M s,\\ \\omega = \\frac{t^H s}{t^H t},\\
        x \\mathrel{+}= \\alpha M p + \\omega M s,\\ r = s - \\omega t,

    with :math:`\\hat r = r_0` and :math:`\\rho = \\alpha = \\omega = 1` at
    the start. When :math:`\\|s\\|^2` is already below the threshold the
    step ends with :math:`x \\mathrel{+}= \\alpha M p`, :math:`r = s` (jax
    computes :math:`t` anyway and discards it; npopt skips that product).
    It stops on convergence, at ``maxiter``, or on a breakdown
    (:math:`\\rho_k`, :math:`\\alpha` or :math:`\\omega` exactly 0).

    Returns ``(x, k, rs, atol2, breakdown)``.
    """
    axpy, add, sub, scale, vdot, vdot_real = _vector_ops(b)
    bs = vdot_real(b, b)
    atol2 = max(tol ** 2 * bs, atol ** 2)
    dtype = _result_dtype(b)
    one = dtype.type(1)
    x = x0
    r = sub(b, A(x0))
    rhat = p = q = r
    rho = alpha = omega = one
    k, breakdown = 0, False
    rs = vdot_real(r, r)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        while rs > atol2 and k < maxiter and not breakdown:
            rho_new = vdot(rhat, r)
            beta = rho_new / rho * alpha / omega
            p = axpy(r, beta, axpy(p, -omega, q))
            phat = p if M is None else M(p)
            q = A(phat)
            alpha = rho_new / vdot(rhat, q)
            s = axpy(r, -alpha, q)
            if vdot_real(s, s) < atol2:            # jax's exit_early
                x = axpy(x, alpha, phat)
                r = s
                breakdown = alpha == 0
            else:
                shat = s if M is None else M(s)
                t = A(shat)
                omega = vdot(t, s) / vdot(t, t)
                x = add(x, axpy(scale(alpha, phat), omega, shat))
                r = axpy(s, -omega, t)
                breakdown = omega == 0 or alpha == 0
            breakdown = bool(breakdown or rho_new == 0)
            rho = rho_new
            k += 1
            rs = vdot_real(r, r)
    return x, k, float(rs), float(atol2), breakdown


def solve_bicgstab(matvec, b, ridge=None, init=None, *, tol=1e-5, atol=0.0,
                   maxiter=None, M=None, return_info=False, check="warn"):
    """Solves ``A x = b`` using bicgstab.

    BiCGSTAB for a general square ``A`` (two products per iteration), as
    ``jax.scipy.sparse.linalg.bicgstab`` (see ``_bicgstab``). It stops when
    :math:`\\|r\\| \\le \\max(\\text{tol}\\,\\|b\\|, \\text{atol})`, after
    ``maxiter`` iterations, or on a breakdown.

    Args:
      matvec: product between ``A`` and a vector, or ``A`` as a 2-D array.
      b: pytree.
      ridge: optional ridge regularization.
      init: optional initialization to be used by bicgstab.
      tol, atol, maxiter, M: as ``solve_cg`` (jax's defaults).
      return_info: also return a ``LinearSolveInfo``.
      check: ``'warn'``, ``'raise'`` or ``'ignore'`` (see the module docstring).

    Returns:
      pytree with same structure as ``b`` (and ``info``).
    """
    b, A, M, x0, maxiter = _krylov_setup(matvec, b, ridge, init, tol, atol, maxiter, M,
                                         check, return_info)
    x, k, rs, atol2, breakdown = _bicgstab(A, b, x0, tol, atol, maxiter, M)
    x = _cast_like(x, b)
    converged = rs <= atol2
    status = None
    if not converged:
        status = "not finite" if not np.isfinite(rs) else ("breakdown" if breakdown else None)
    need = return_info or (not converged and check != "ignore")
    info = _iterative_info(A, x, b, k, converged, status, np.sqrt(atol2), need)
    return _finish("solve_bicgstab", x, info, check, return_info)
