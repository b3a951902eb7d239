r"""Linear system solvers: ``jaxopt.linear_solve`` with NumPy.

Every solver finds :math:`x` with :math:`(A + \text{ridge}\, I)\, x = b`
from a *matvec*, the product :math:`v \mapsto A v`, so :math:`A` need never be
formed; this is what implicit differentiation needs (``npopt.implicit_diff``
solves with :math:`A = \partial_1 F`). Same names, argument names, order and
defaults as jaxopt 0.8.5 (``jaxopt/_src/linear_solve.py``,
``_src/iterative_refinement.py``):

===========================  ==========================================  ============
function                     method                                      operator
===========================  ==========================================  ============
``solve_cg``                 conjugate gradient (Hestenes & Stiefel)     SPD
``solve_normal_cg``          CG on :math:`A^H A x = A^H b`               any, also non-square
``solve_gmres``              restarted GMRES (Saad & Schultz)            any square
``solve_bicgstab``           BiCGSTAB (van der Vorst)                    any square
``solve_lu``                 dense LU with partial pivoting              any square
``solve_cholesky``           dense Cholesky                              SPD
``solve_qr``                 dense Householder QR                        any square
``solve_inv``                dense inverse, then :math:`A^{-1} b`        any square
``solve_iterative_refinement``  :math:`x \leftarrow x + \text{solve}(b - A x)`  any square
===========================  ==========================================  ============

**Operators and right-hand sides.** ``b`` is a pytree of float32/float64
(or complex) arrays, and ``matvec`` maps a pytree shaped like the solution
to one shaped like ``b``. Instead of a callable, ``matvec`` may be a dense
2-D array (or any object with ``shape`` and ``@``: a ``scipy.sparse``
matrix, a ``scipy.sparse.linalg.LinearOperator``) acting on the *ravelled*
vector (``npopt.tree.ravel`` order). The solution has ``b``'s structure and
leaf dtypes (float32 in, float32 out). ``ridge`` adds :math:`\text{ridge}
\cdot v` to every product, as jaxopt's ``_make_ridge_matvec``.

* CG and BiCGSTAB run on pytrees with tree arithmetic, as ``jax.scipy``
  does. GMRES keeps its Krylov basis as a ``(restart + 1, n)`` matrix of
  ravelled vectors (jax pads every leaf with a trailing Krylov axis instead;
  the arithmetic is the same).
* The dense solvers materialise :math:`A` column by column on the ravelled
  space, :math:`A e_j` for the unit vectors :math:`e_j` (jaxopt does it with
  ``jax.jacfwd``; both cost :math:`n` products), then call LAPACK through
  NumPy/SciPy.

The stopping rules, iteration order and defaults are those of
``jax.scipy.sparse.linalg`` (jax 0.10.2 here), which jaxopt calls: stop when
:math:`\|r\| \le \max(\text{tol}\,\|b\|, \text{atol})`; ``tol=1e-5``,
``atol=0``, ``maxiter=None`` meaning :math:`10 n`; GMRES restarts every
``restart=20`` steps (``maxiter`` counts restarts) with
``solve_method='batched'``. Two departures, both where jax returns wrong
numbers silently: GMRES treats residual norms below :math:`\epsilon\|Mb\|`
as zero where jax uses an absolute :math:`\epsilon` (so jax returns ``x0``
for any :math:`\|b\| < 2.2\cdot 10^{-16}`), and the complex normal
equations and QR use :math:`A^H` where jaxopt transposes without
conjugating. Beyond jaxopt, the dense solvers accept any pytree ``b`` and
complex dtypes, and BiCGSTAB skips the product that jax computes and
discards on its early exit.

**What npopt adds: no silent failure.** jaxopt returns whatever the last
iterate was. npopt returns the same solution, but

* every solver takes ``return_info=False``; with ``True`` it returns
  ``(x, info)``, a ``LinearSolveInfo`` (``converged``, ``iter_num``,
  ``residual_norm`` :math:`= \|b - (A + \text{ridge}\,I)\, x\|`, ``tol``,
  ``num_matvec_eval``, ``status``);
* the iterative solvers take ``check='warn'``: when the stopping test is not
  met (``maxiter`` reached, a BiCGSTAB breakdown, NaN), ``'warn'`` emits a
  ``LinearSolveWarning`` with the residual, ``'raise'`` raises a
  ``LinearSolveError`` (a ``numpy.linalg.LinAlgError``) carrying the same
  ``info`` as ``err.info``, ``'ignore'`` is jaxopt's behaviour. Pass
  ``check='ignore'`` for deliberately truncated solves (a few CG steps in a
  Newton-CG method);
* the dense solvers raise ``LinearSolveError`` when the matrix is singular to
  working precision (an exactly zero pivot, or LAPACK's O(n^2) estimate of
  the reciprocal condition number below eps, where jax returns ``inf``/
  ``nan`` or digits that mean nothing) or, for ``solve_cholesky``, not
  positive definite (jax returns ``nan``). They have no ``check``: they
  either solve or raise.

Nothing here keeps state between calls (no module-level "last info"), so the
solvers are safe to call from several threads.

References:
  Hestenes & Stiefel, "Methods of conjugate gradients for solving linear
  systems", J. Res. NBS 49 (1952).
  Saad & Schultz, "GMRES: a generalized minimal residual algorithm for
  solving nonsymmetric linear systems", SIAM J. Sci. Stat. Comput. 7 (1986).
  van der Vorst, "Bi-CGSTAB: a fast and smoothly converging variant of Bi-CG
  for the solution of nonsymmetric linear systems", SIAM J. Sci. Stat.
  Comput. 13 (1992).
  Wilkinson, "Rounding Errors in Algebraic Processes", Prentice Hall (1963)
  (iterative refinement); Golub & Van Loan, "Matrix Computations", 4th ed.
"""
import functools
import inspect
import numbers
import warnings
from typing import NamedTuple

import numpy as np

from . import _dense
from ._checks import _describe, check_bool, check_number
from .tree import (ravel, tree_add, tree_add_scalar_mul, tree_leaves, tree_map,
                   tree_scalar_mul, tree_structure, tree_sub, tree_vdot, tree_vdot_real)

__all__ = [
    "solve_lu", "solve_cholesky", "solve_qr", "solve_inv", "solve_cg",
    "solve_normal_cg", "solve_gmres", "solve_bicgstab",
    "solve_iterative_refinement",
    "LinearSolveInfo", "LinearSolveWarning", "LinearSolveError",
]


# ---------------------------------------------------------------------------
# What a solve reports.
# ---------------------------------------------------------------------------

class LinearSolveInfo(NamedTuple):
    """How a linear solve went (returned with ``return_info=True``).

    Attributes:
      converged: the method's own stopping test was met (dense solvers: always
        True, they raise otherwise). CG and BiCGSTAB test their recursively
        updated residual, which in ill-conditioned problems can drift from the
        true one given in ``residual_norm``.
      iter_num: iterations done: CG/BiCGSTAB steps, GMRES restarts (the unit
        of its ``maxiter``), refinement steps; 0 for the dense solvers.
      residual_norm: :math:`\\|b - (A + \\text{ridge}\\,I)\\,x\\|_2` of the
        returned ``x``, recomputed with one extra product (not counted in
        ``num_matvec_eval``). For ``solve_normal_cg`` it is the residual of the
        normal equations :math:`(A^H A + \\text{ridge}\\,I) x = A^H b`.
      tol: the absolute threshold of the stopping test,
        :math:`\\max(\\text{tol}\\,\\|b\\|, \\text{atol})` (refinement: ``tol``;
        dense solvers: NaN, they have none).
      num_matvec_eval: products with the operator made by the method
        (``solve_normal_cg``: products with :math:`A^H A`; dense solvers: the
        :math:`n` products that materialise :math:`A`, 0 for a dense array;
        refinement: all products, the inner solves' included).
      status: ``'converged'``, ``'maxiter'``, ``'breakdown'`` (BiCGSTAB:
        :math:`\\rho`, :math:`\\alpha` or :math:`\\omega` became 0) or
        ``'not finite'`` (NaN/inf appeared).
    """
    converged: bool
    iter_num: int
    residual_norm: float
    tol: float
    num_matvec_eval: int
    status: str


class LinearSolveWarning(RuntimeWarning):
    """An iterative linear solve stopped before its tolerance was met."""


class LinearSolveError(np.linalg.LinAlgError):
    """A linear solve failed; ``err.info`` is its ``LinearSolveInfo`` (or None).

    A subclass of ``numpy.linalg.LinAlgError`` (itself a ``ValueError``).
    """

    def __init__(self, message, info=None):
        super().__init__(message)
        self.info = info


_CHECKS = ("warn", "raise", "ignore")

_HINTS = {
    "solve_cg": "CG needs a symmetric positive definite operator; raise maxiter, add "
                "ridge=, or use solve_gmres / solve_bicgstab / solve_lu",
    "solve_normal_cg": "A^H A is singular or badly conditioned (its condition number is "
                       "that of A squared); raise maxiter, add ridge=, or use solve_gmres",
    "solve_gmres": "the operator may be singular or badly conditioned; raise maxiter or "
                   "restart, add ridge=, or use solve_lu",
    "solve_bicgstab": "the operator may be singular or badly conditioned; raise maxiter, "
                      "add ridge=, or use solve_gmres / solve_lu",
    "solve_iterative_refinement": "the inner solve may not reduce the residual; raise "
                                  "maxiter, or pass a more accurate solve=",
}


# (what an iteration is, the residual, the threshold) in failure messages
_WORDS = {
    None: ("iterations", "||b - A x||", "max(tol*||b||, atol)"),
    "solve_gmres": ("restarts", "||b - A x||", "max(tol*||b||, atol)"),
    "solve_normal_cg": ("iterations", "||A^H b - A^H A x||", "max(tol*||A^H b||, atol)"),
    "solve_iterative_refinement": ("refinement steps", "||b - A x||", "tol"),
}


def _finish(name, x, info, check, return_info):
    """Apply the ``check`` policy, then return ``x`` or ``(x, info)``."""
    if not info.converged and check != "ignore":
        steps, residual, threshold = _WORDS.get(name, _WORDS[None])
        msg = (f"npopt.linear_solve.{name}: not converged (status {info.status!r}) after "
               f"{info.iter_num} {steps}: {residual} = {info.residual_norm:.3e} > "
               f"{info.tol:.3e} ({threshold}); {_HINTS[name]}")
        if check == "raise":
            raise LinearSolveError(msg, info)
        warnings.warn(msg, LinearSolveWarning, stacklevel=3)
    return (x, info) if return_info else x


# ---------------------------------------------------------------------------
# Input checks and the operator adapter.
# ---------------------------------------------------------------------------

def _as_rhs(b, name="b"):
    """``b`` with every leaf a float/complex ndarray (Python numbers become 0-d)."""
    leaves = tree_leaves(b)
    if not leaves:
        raise ValueError(f"{name}: expected a pytree with at least one array leaf, got "
                         f"{_describe(b)}")
    if type(b) is not np.ndarray:
        b = tree_map(np.asarray, b)
        leaves = tree_leaves(b)
    for leaf in leaves:
        if leaf.dtype.kind not in "fc":
            raise TypeError(f"{name}: expected floating-point (or complex) leaves, got a "
                            f"leaf of dtype {leaf.dtype}")
    return b


def _shapes(tree):
    return [np.shape(x) for x in tree_leaves(tree)]


def _same_layout(tree, like):
    return tree_structure(tree) == tree_structure(like) and _shapes(tree) == _shapes(like)


def _check_init(init, like, what="b"):
    """``init`` (or None) must have ``like``'s structure and leaf shapes."""
    if init is None:
        return None
    init = _as_rhs(init, "init")
    if not _same_layout(init, like):
        raise ValueError(
            f"init: expected the structure and leaf shapes of {what} "
            f"({tree_structure(like)}, shapes {_shapes(like)}), got "
            f"{tree_structure(init)}, shapes {_shapes(init)}")
    return init


def _check_maxiter(maxiter, allow_none=True):
    if maxiter is None and allow_none:
        return None
    if isinstance(maxiter, (bool, np.bool_)) or not isinstance(maxiter, numbers.Integral) \
            or maxiter < 0:
        raise ValueError(f"maxiter: expected {'None or ' if allow_none else ''}an integer "
                         f">= 0, got {_describe(maxiter)}")
    return int(maxiter)


def _check_common(tol, atol, maxiter, check, return_info):
    check_number("tol", tol, low=0.0)
    check_number("atol", atol, low=0.0)
    _check_maxiter(maxiter)
    if not isinstance(check, str) or check not in _CHECKS:
        raise ValueError(f"check: expected 'warn', 'raise' or 'ignore', got "
                         f"{_describe(check)}")
    check_bool("return_info", return_info)


def _check_ridge(ridge):
    return check_number("ridge", ridge, allow_none=True)


class _Flat:
    """The ravelled coordinates of pytrees shaped like ``like``.

    ``flat(tree)`` is the 1-D vector (``npopt.tree.ravel`` order, promoted
    dtype) and ``tree(vec)`` rebuilds the pytree with ``like``'s leaf dtypes.
    A bare ndarray is only reshaped (no copy).
    """

    def __init__(self, like):
        if type(like) is np.ndarray:
            shape, dtype = like.shape, like.dtype
            self.size, self.dtype = like.size, dtype
            self.flat = lambda t: np.reshape(t, -1)
            self.tree = lambda v: np.reshape(v, shape).astype(dtype, copy=False)
        else:
            vec, unravel = ravel(like)
            self.size, self.dtype = vec.size, vec.dtype
            self.flat = lambda t: ravel(t)[0]
            self.tree = unravel


def _is_matrix(op):
    return isinstance(op, np.ndarray) or (hasattr(op, "shape") and hasattr(op, "__matmul__"))


def _matrix_matvec(op, name, x_space, b_space):
    """The tree matvec of a 2-D array/operator acting on ravelled vectors."""
    shape = tuple(getattr(op, "shape", ()))
    if len(shape) != 2 or shape != (b_space.size, x_space.size):
        want = (f"({b_space.size}, {x_space.size})" if b_space is not x_space
                else f"({b_space.size}, {b_space.size}), with {b_space.size} the size of b")
        raise ValueError(f"{name}: expected a callable or a 2-D matrix of shape {want}, got "
                         f"{type(op).__name__} of shape {shape}")
    if isinstance(op, np.ndarray):
        return lambda v: b_space.tree(_dense.dot(op, x_space.flat(v)))
    return lambda v: b_space.tree(op @ x_space.flat(v))   # cpu-ok: sparse/LinearOperator


class _Operator:
    """A user's ``matvec`` made safe: the first output is checked against
    ``like`` (structure, leaf shapes), outputs are cast to ``like``'s leaf
    dtypes when they differ, products are counted, and ``ridge * v`` is
    added as in jaxopt's ``_make_ridge_matvec``."""

    __slots__ = ("fun", "like", "name", "ridge", "hint", "count", "_cast", "_checked")

    def __init__(self, fun, like, name, ridge=None, hint=""):
        self.fun, self.like, self.name, self.ridge, self.hint = fun, like, name, ridge, hint
        self.count = 0
        self._cast = False
        self._checked = False

    def _first(self, out):
        if not _same_layout(out, self.like):
            raise ValueError(
                f"{self.name}: expected an output with the structure and leaf shapes of b "
                f"({tree_structure(self.like)}, shapes {_shapes(self.like)}), got "
                f"{tree_structure(out)}, shapes {_shapes(out)}{self.hint}")
        out_dtypes = [np.result_type(x) for x in tree_leaves(out)]
        self._cast = out_dtypes != [x.dtype for x in tree_leaves(self.like)]
        self._checked = True

    def __call__(self, v):
        out = self.fun(v)
        self.count += 1
        if not self._checked:
            self._first(out)
        if self._cast:
            out = tree_map(lambda o, t: np.asarray(o).astype(t.dtype, copy=False), out,
                           self.like)
        if self.ridge is not None:
            out = tree_add_scalar_mul(out, self.ridge, v)
        return out


def _operator(matvec, b, ridge=None, name="matvec", x_like=None):
    """The checked tree matvec of a callable or a matrix; ``x_like`` is the
    input space (default: b's)."""
    if _is_matrix(matvec):
        b_space = _Flat(b)
        x_space = b_space if x_like is None else _Flat(x_like)
        fun = _matrix_matvec(matvec, name, x_space, b_space)
    elif callable(matvec):
        fun = matvec
    else:
        raise TypeError(f"{name}: expected a callable v -> A v, or a 2-D matrix, got "
                        f"{type(matvec).__name__}")
    return _Operator(fun, b, name, ridge)


def _preconditioner(M, b):
    """None (the identity) or a checked tree callable."""
    if M is None:
        return None
    return _operator(M, b, name="M")


def _cast_like(x, like):
    """``x`` with ``like``'s leaf dtypes (jax keeps them through its loops)."""
    return tree_map(lambda xi, bi: np.asarray(xi).astype(bi.dtype, copy=False), x, like)


def _residual_norm(A, x, b):
    """``||b - A x||`` with one product that ``num_matvec_eval`` does not count."""
    count = A.count
    with np.errstate(all="ignore"):
        r = tree_sub(b, A(x))
        norm = float(np.sqrt(tree_vdot_real(r, r)))
    A.count = count
    return norm


def _size(tree):
    return sum(np.size(x) for x in tree_leaves(tree))


def _zeros_like(tree):
    return tree_map(np.zeros_like, tree)


def _copy(tree):
    """A fresh copy (the caller's ``init`` is never returned as the solution)."""
    return tree_map(np.array, tree)


# ---------------------------------------------------------------------------
# Dense solvers: materialise A, then LAPACK.
# ---------------------------------------------------------------------------

def _materialize(matvec, b, ridge):
    """``(A, b_vec, space, n_products)``: A as an (n, n) array on b's ravelled space.

    Column j is ``flat(matvec(tree(e_j)))`` (jaxopt: ``jax.jacfwd(matvec)``);
    a dense ``matvec`` is used as it is. ``ridge`` is added to the diagonal,
    which is exactly what adding ``ridge * e_j`` to each column does.
    """
    space = _Flat(b)
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


# ---------------------------------------------------------------------------
# Conjugate gradient (jax.scipy.sparse.linalg._cg_solve).
# ---------------------------------------------------------------------------

def _result_dtype(tree):
    return np.result_type(*tree_leaves(tree))


class _VectorOps(NamedTuple):
    """The vector arithmetic of CG and BiCGSTAB: ``axpy(x, a, y) = x + a y``,
    ``add``, ``sub``, ``scale(a, x) = a x``, ``vdot(x, y) = x^H y`` and its
    real part ``vdot_real``, leaf by leaf and summed in leaf order on pytrees
    (jax's ``_add``/``_sub``/``_mul``/``_vdot_tree``/``_vdot_real_tree``), or
    directly on a bare ndarray (the same arithmetic without the pytree walk,
    which dominates small solves)."""
    axpy: object
    add: object
    sub: object
    scale: object
    vdot: object
    vdot_real: object


_TREE_OPS = _VectorOps(tree_add_scalar_mul, tree_add, tree_sub, tree_scalar_mul, tree_vdot,
                       tree_vdot_real)
_ARRAY_OPS = _VectorOps(lambda x, a, y: x + a * y, np.add, np.subtract, lambda a, x: a * x,
                        _dense.vdot, lambda x, y: np.real(_dense.vdot(x, y)))


def _vector_ops(b):
    return _ARRAY_OPS if type(b) is np.ndarray else _TREE_OPS


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


def _iterative_info(A, x, b, k, converged, status, threshold, need_residual):
    res = _residual_norm(A, x, b) if need_residual else float("nan")
    if status is None:
        status = "converged" if converged else "maxiter"
    if not converged and status == "maxiter" and not np.isfinite(res):
        status = "not finite"
    return LinearSolveInfo(bool(converged), int(k), res, float(threshold), A.count, status)


def _krylov_setup(matvec, b, ridge, init, tol, atol, maxiter, M, check, return_info):
    """Checks and adapters shared by CG and BiCGSTAB."""
    b = _as_rhs(b)
    _check_ridge(ridge)
    _check_common(tol, atol, maxiter, check, return_info)
    init = _check_init(init, b)
    A = _operator(matvec, b, ridge)
    M = _preconditioner(M, b)
    x0 = _zeros_like(b) if init is None else _copy(init)
    if maxiter is None:
        maxiter = 10 * _size(b)               # copied from scipy, as jax
    return b, A, M, x0, maxiter


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
    b_space, x_space = _Flat(b), _Flat(x_like)
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
        x_space, b_space = _Flat(x_like), _Flat(b)
        cols = [b_space.flat(A(x_space.tree(e)))
                for e in np.eye(x_space.size, dtype=x_space.dtype)]
        A.count = 0
        matvec = np.stack(cols, axis=1)
    return _dense_adjoint(matvec, b, x_like)


_NONSQUARE_HINT = ("; the initialization `init` of solve_normal_cg is compulsory when "
                   "`matvec` is nonsquare. It should have the same pytree structure as a "
                   "solution. Typically, a pytree filled with zeros should work.")


# ---------------------------------------------------------------------------
# BiCGSTAB (jax.scipy.sparse.linalg._bicgstab_solve).
# ---------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------
# GMRES (jax.scipy.sparse.linalg.gmres), on ravelled vectors.
# ---------------------------------------------------------------------------

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
    space = _Flat(b)
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


# ---------------------------------------------------------------------------
# Iterative refinement (jaxopt/_src/iterative_refinement.py).
# ---------------------------------------------------------------------------

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
