"""Iterative refinement (``jaxopt/_src/iterative_refinement.py``; Wilkinson
1963): ``solve_iterative_refinement``.
"""
import functools
import inspect

import numpy as np

from ..tree import tree_add, tree_sub, tree_vdot_real
from ._common import (LinearSolveInfo, _Operator, _as_rhs, _cast_like, _check_common, _check_init,
                      _check_maxiter, _copy, _finish, _operator, _residual_norm, _zeros_like)
from .gmres import solve_gmres


def _quiet(solve):
    """``solve`` with ``check='ignore'`` when it takes ``check`` and the caller
    did not set it: inner solves may be inexact, refinement corrects them."""
    if isinstance(solve, functools.partial) and "check" in solve.keywords:
        return solve
    try:
        params = inspect.signature(solve).parameters
    except (TypeError, ValueError):
        return solve
    return functools.partial(solve, check="ignore") if "check" in params else solve


def solve_iterative_refinement(matvec, b, init=None, maxiter=10, tol=1e-7,
                               solve=solve_gmres, *, matvec_A_bar=None, verbose=False,
                               implicit_diff_solve=None, jit=True, unroll="auto",
                               return_info=False, check="warn"):
    """Solves ``A x = b`` using iterative refinement.

    jaxopt's ``IterativeRefinement(...).run``: starting from
    :math:`x_0` = ``init`` (zeros if None) and :math:`r_0 = b`, repeat

    .. math::

        \\delta = \\text{solve}(\\bar A, r_{t-1}),\\quad x_t = x_{t-1} + \\delta,\\quad
        r_t = b - A x_t,

    at least once and then while :math:`\\|r_t\\| >` ``tol`` (absolute), at
    most ``maxiter`` times (``maxiter=0`` returns :math:`x_0`).
    :math:`\\bar A` approximates :math:`A` (default :math:`\\bar A = A`); the
    inner solve may be inaccurate (low precision, few iterations): each step
    corrects it with the true residual (Wilkinson 1963; Moler 1967).

    .. warning:: Reproduced from jaxopt: the first residual is :math:`b`, not
       :math:`b - A x_0`, and the first inner solve is warm-started at
       ``init`` (later ones at 0). With a nonzero ``init`` the first step
       therefore gives :math:`x_0 + A^{-1} b`, and the second corrects it.

    Args:
      matvec: product between ``A`` and a vector, or ``A`` as a 2-D array.
      b: pytree.
      init: optional initialization (see the warning).
      maxiter: maximum number of refinement steps (default: 10).
      tol: absolute tolerance on :math:`\\|b - Ax\\|` (default: 1e-7).
      solve: the inner solver ``solve(matvec, b, init=...)`` (default:
        ``solve_gmres``; npopt's solvers are called with ``check='ignore'``
        unless the partial sets it).
      matvec_A_bar: optional :math:`\\bar A`, jaxopt's
        ``matvec_A_bar(A_bar, x)`` called with ``A_bar=None`` as
        ``solve_iterative_refinement`` passes no parameters.
      verbose: print the residual norm at every step.
      implicit_diff_solve, jit, unroll: accepted for jaxopt compatibility and
        ignored (npopt has no autodiff or tracing).
      return_info: also return a ``LinearSolveInfo`` (``num_matvec_eval``
        counts the inner solves' products with ``A`` as well).
      check: ``'warn'``, ``'raise'`` or ``'ignore'``: what to do when
        :math:`\\|b - Ax\\| >` ``tol`` after ``maxiter`` steps.

    Returns:
      Pytree with the same structure as ``b`` (and ``info``).
    """
    del implicit_diff_solve, jit, unroll
    b = _as_rhs(b)
    maxiter = _check_maxiter(maxiter, allow_none=False)
    _check_common(tol, 0.0, maxiter, check, return_info)
    if not callable(solve):
        raise TypeError(f"solve: expected a linear solver solve(matvec, b, init=...), got "
                        f"{type(solve).__name__}")
    if matvec_A_bar is not None and not callable(matvec_A_bar):
        raise TypeError(f"matvec_A_bar: expected None or a callable (A_bar, x) -> A_bar x, "
                        f"got {type(matvec_A_bar).__name__}")
    init = _check_init(init, b)
    A = _operator(matvec, b)
    A_bar = A if matvec_A_bar is None else _Operator(
        functools.partial(matvec_A_bar, None), b, "matvec_A_bar")
    inner = _quiet(solve)
    params = _zeros_like(b) if init is None else _copy(init)
    target, warm = b, params
    error, k = float("inf"), 0
    while k < maxiter and (k == 0 or error > tol):
        delta = inner(A_bar, target, init=warm)
        params = _cast_like(tree_add(params, delta), b)
        target = tree_sub(b, A(params))
        error = float(np.sqrt(tree_vdot_real(target, target)))
        warm = _zeros_like(b)
        k += 1
        if verbose:
            print(f"INFO: npopt.IterativeRefinement: Iter: {k} Residual Norm (stopping "
                  f"criterion): {error}", flush=True)
    converged = error <= tol
    if k == 0 and (return_info or check != "ignore"):
        error = _residual_norm(A, params, b)
        converged = error <= tol
    status = "converged" if converged else ("maxiter" if np.isfinite(error) else "not finite")
    count = A.count + (A_bar.count if A_bar is not A else 0)
    info = LinearSolveInfo(bool(converged), k, error, float(tol), count, status)
    return _finish("solve_iterative_refinement", params, info, check, return_info)
