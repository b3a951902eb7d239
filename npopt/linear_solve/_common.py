"""What every linear solver shares: what a solve reports (``LinearSolveInfo``,
``LinearSolveWarning``, ``LinearSolveError`` and the ``check=`` policy), the
input checks, the operator adapter (a matvec, a matrix, a ridge; products
counted), and the vector arithmetic and reporting of the Krylov solvers.
"""
import numbers
import warnings
from typing import NamedTuple

import numpy as np

from .. import _dense
from .._checks import _describe, check_bool, check_number
from .._flat import FlatSpace
from ..tree import (tree_add, tree_add_scalar_mul, tree_leaves, tree_map, tree_scalar_mul,
                    tree_structure, tree_sub, tree_vdot, tree_vdot_real)


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
        b_space = FlatSpace(b)
        x_space = b_space if x_like is None else FlatSpace(x_like)
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
# The Krylov solvers' vector arithmetic, setup and report (CG, BiCGSTAB, GMRES).
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
