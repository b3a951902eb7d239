r"""optax's linear-algebra helpers: ``power_iteration``,
``matrix_inverse_pth_root`` and ``nnls``.

Every product is ``npopt._dense.dot`` (a fixed order of operations, the
same bits on every CPU, where optax calls XLA's matmul at
``Precision.HIGHEST``); norms and inner products are deterministic sums
too (``npopt.tree``, ``npopt.numerics``). ``precision`` is accepted for
optax's signature and ignored (NumPy computes in the arrays' dtype).

Where npopt differs on purpose:

* ``power_iteration`` draws its random start (when no ``v0`` is given for a
  matrix) from a NumPy ``Generator``: ``key`` may be None (seed 0, as
  optax's ``PRNGKey(0)``), an int seed or a ``np.random.Generator``. JAX's
  threefry stream is not reproduced, so the start differs from optax's;
  the converged eigenpair agrees to the tolerance (the eigenvector up to
  its sign).
* ``matrix_inverse_pth_root`` calls that ``power_iteration`` for its ridge
  (``ridge_epsilon * max(λ_max, 1e-16)``): λ_max agrees with optax's to
  about the square of ``error_tolerance`` relative, far below the ridge's
  effect.
"""
import enum
import math
import numbers

import numpy as np

from . import _checks, _dense, _math
from . import numerics as _num
from .tree import tree_leaves, tree_map, tree_vdot

__all__ = ["Precision", "matrix_inverse_pth_root", "nnls", "power_iteration"]


class Precision(enum.Enum):
    """``jax.lax.Precision``'s names, for optax's ``precision=`` defaults.
    NumPy has one precision (the arrays' dtype): every value is accepted and
    ignored."""
    DEFAULT = 0
    HIGH = 1
    HIGHEST = 2

    def __repr__(self):
        return f"Precision.{self.name}"


def _tree_norm(x):
    return np.sqrt(_num.tree_sumsq(tree_leaves(x)))


def _normalize_tree(x):
    s = 1.0 / _tree_norm(x)
    return tree_map(lambda a: s * a, x)


def _generator(key):
    if key is None:
        return np.random.default_rng(0)
    if isinstance(key, np.random.Generator):
        return key
    if isinstance(key, (numbers.Integral, np.integer)) and not isinstance(key, bool):
        return np.random.default_rng(int(key))
    raise TypeError(f"key: expected None, an int seed or a numpy.random.Generator, got "
                    f"{type(key).__name__} (JAX PRNG keys are not used by npopt)")


def power_iteration(matrix, *, v0=None, num_iters=100, error_tolerance=1e-6,
                    precision=Precision.HIGHEST, key=None):
    r"""The dominant eigenvalue and its eigenvector, by power iteration.

    .. math::

        v_0 \leftarrow v_0/\|v_0\|,\; z = A v_0;\quad
        v \leftarrow z/\|z\|,\; z \leftarrow A v,\; \lambda \leftarrow \langle v, z\rangle
        \quad\text{while } |\|z - \lambda v\| / \lambda| \ge \text{tol}
        \text{ and fewer than num\_iters steps}

    Args:
      matrix: a square (n, n) array, or a callable computing a
        matrix-vector product on trees shaped like ``v0``.
      v0: the start; required with a callable. None with an array: uniform
        in [-1, 1) from ``key`` (see the module docstring).
      num_iters: the largest number of iterations.
      error_tolerance: stop when the relative residual is below it.
      precision: accepted for optax's signature; ignored.
      key: None (seed 0), an int seed or a ``np.random.Generator`` for the
        random ``v0``; optax takes a JAX PRNG key here.

    Returns:
      ``(eigenvalue, eigenvector)``; the eigenvector normalized, shaped
      like ``v0``.
    """
    del precision
    num_iters = _checks.check_number("num_iters", num_iters, low=0)
    error_tolerance = _checks.check_number("error_tolerance", error_tolerance)
    if callable(matrix):
        mvp = matrix
        if v0 is None:
            raise ValueError("v0: must be provided when `matrix` is a callable")
    else:
        matrix = np.asarray(matrix)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"matrix: expected a square 2-D array or a callable, got shape "
                             f"{matrix.shape}")
        matrix = _num._inexact(matrix, "matrix")
        mvp = lambda v: _dense.dot(matrix, v)  # noqa: E731
        if v0 is None:
            rng = _generator(key)
            v0 = rng.uniform(-1.0, 1.0, size=matrix.shape[-1:]).astype(matrix.dtype)
        elif np.shape(v0) != matrix.shape[-1:]:
            raise ValueError(f"v0: expected a vector of shape {matrix.shape[-1:]}, got "
                             f"{np.shape(v0)}")
    v = _normalize_tree(v0)
    z = mvp(v)
    eig = None
    it = 0
    while it < num_iters:
        if eig is not None:
            residual = tree_map(lambda a, b: a - eig * b, z, v)
            with np.errstate(divide="ignore", invalid="ignore"):
                converged = np.abs(_tree_norm(residual) / eig) < error_tolerance
            if converged:
                break
        v = _normalize_tree(z)
        z = mvp(v)
        eig = tree_vdot(v, z)
        it += 1
    if eig is None:                    # num_iters == 0: optax's initial 0.0
        eig = np.asarray(0.0, np.result_type(*tree_leaves(v)))[()]
    return eig, _normalize_tree(z)


def _max_abs_diff_identity(m):
    d = np.abs(m - np.eye(m.shape[0], dtype=np.float32))
    return np.max(d)


def matrix_inverse_pth_root(matrix, p, num_iters=100, ridge_epsilon=1e-6,
                            error_tolerance=1e-6, precision=Precision.HIGHEST):
    r"""``matrix^(-1/p)`` of a symmetric PSD matrix, by the coupled Newton
    iteration (Higham, *Functions of Matrices*, 2008, eq. 7.18):

    .. math::

        A = M + \text{ridge}\cdot\lambda_{\max} I,\quad z = \frac{1+p}{2\|A\|_F},\quad
        M_0 = zA,\; H_0 = z^{1/p} I;\qquad
        M_i' = (1-\alpha) I + \alpha M_i,\; M_{i+1} = (M_i')^{p} M_i,\;
        H_{i+1} = H_i M_i',\quad \alpha = -1/p

    until ``max|M - I| <= error_tolerance``, ``num_iters`` steps, or the
    error grows by more than 1.2x (then the previous H is returned).

    optax's roundings are kept: ``alpha`` and the identity are float32
    (so ``1 - alpha`` rounds in float32), and ``(M_i')^p`` is an unrolled
    power 1, 2, 4 or 8 chosen by ``round(log2(p))`` -- for a ``p`` that is
    not a power of two (3, 5, ...) optax raises ``M_i'`` to the nearest such
    power, and so does npopt (the result is then not the p-th root).

    Args:
      matrix: a symmetric positive semi-definite (n, n) array.
      p: the exponent, a positive integer (1, 2, 4 or 8 for an exact root).
      num_iters: the largest number of Newton iterations.
      ridge_epsilon: the ridge, relative to the largest eigenvalue.
      error_tolerance: stop when ``max|M - I|`` is at most this.
      precision: accepted for optax's signature; ignored.

    Returns:
      ``(matrix^(-1/p), error)``: the root in matrix's dtype and the final
      ``max|M - I|`` (the int 0 for a 1x1 matrix, as in optax).
    """
    del precision
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(f"matrix: expected a non-empty square 2-D array, got shape "
                         f"{matrix.shape}")
    matrix = _num._inexact(matrix, "matrix")
    if matrix.dtype.kind == "c":
        raise TypeError("matrix: expected a real symmetric matrix, got complex")
    p = _checks.check_number("p", p, low=0.0, low_open=True)
    num_iters = _checks.check_number("num_iters", num_iters, low=0)
    ridge_epsilon = _checks.check_number("ridge_epsilon", ridge_epsilon, low=0.0)
    error_tolerance = _checks.check_number("error_tolerance", error_tolerance)
    n = matrix.shape[0]
    alpha = np.float32(-1.0 / p)
    identity = np.eye(n, dtype=np.float32)
    max_ev, _ = power_iteration(matrix, num_iters=100, error_tolerance=1e-6)
    ridge = ridge_epsilon * np.maximum(max_ev, 1e-16)

    if n == 1:
        return _math.power(matrix + ridge, alpha), 0

    exponent = min(max(int(np.round(math.log2(p))), 0), 3)

    def mat_power(m):
        for _ in range(exponent):
            m = _dense.dot(m, m)
        return m

    damped = matrix + ridge * identity
    z = (1 + p) / (2 * np.sqrt(_num.row_sumsq(damped.reshape(1, -1))[0]))
    mat_m = damped * z
    error = _max_abs_diff_identity(mat_m)
    mat_h = identity * _math.power(z, z.dtype.type(1.0 / p))
    old_mat_h = mat_h
    run_step = True
    one_minus_alpha = np.float32(1) - alpha
    i = 0
    while i < num_iters and error > error_tolerance and run_step:
        mat_m_i = one_minus_alpha * identity + alpha * mat_m
        new_mat_m = _dense.dot(mat_power(mat_m_i), mat_m)
        new_mat_h = _dense.dot(mat_h, mat_m_i)
        new_error = _max_abs_diff_identity(new_mat_m)
        i, run_step = i + 1, bool(new_error < error * 1.2)
        mat_m, old_mat_h, mat_h, error = new_mat_m, mat_h, new_mat_h, new_error
    error = _max_abs_diff_identity(mat_m)
    conv = np.asarray(run_step, old_mat_h.dtype)
    result = conv * mat_h + (1 - conv) * old_mat_h
    return np.asarray(result, matrix.dtype), error


def nnls(A, b, iters, unroll=1, L=None):  # noqa: N803 (optax's names)
    r"""Non-negative least squares, :math:`\min_{x \ge 0} \|A x - b\|_2`, by
    ``iters`` steps of Polyak's fast projected gradient (2015):

    .. math::

        Q = A^T A,\; q = A^T b;\quad
        c' = \tfrac{1 + \sqrt{1 + 4c^2}}{2},\; s = \tfrac{c - 1}{c'},\;
        x' = \max\big(0,\, p - (Q p - q)/L\big),\; p' = x' + s (x' - x)

    from :math:`x = p = 0, c = 0`, with :math:`L = \min(\|Q\|_F, \|Q\|_1)`
    (an upper bound of the spectral radius) unless given.

    Args:
      A: an (M, N) matrix.
      b: an (M,) vector or an (M, K) matrix.
      iters: the number of iterations.
      unroll: accepted for optax's signature (``lax.scan``'s unroll); ignored.
      L: an upper bound of the spectral radius of ``A^T A``, or None.

    Returns:
      The (N,) or (N, K) solution after ``iters`` iterations.

    References:
      Roman A. Polyak, `Projected gradient method for non-negative least
      square <http://www.ams.org/books/conm/636/>`_, 2015.
    """
    del unroll
    A, b = np.asarray(A), np.asarray(b)
    if A.ndim != 2:
        raise ValueError(f"A: expected a 2-D matrix, got shape {A.shape}")
    if b.ndim not in (1, 2) or b.shape[0] != A.shape[0]:
        raise ValueError(f"b: expected shape ({A.shape[0]},) or ({A.shape[0]}, K) to match "
                         f"A {A.shape}, got {b.shape}")
    if not isinstance(iters, (numbers.Integral, np.integer)) or isinstance(iters, bool) \
            or iters < 0:
        raise ValueError(f"iters: expected an int >= 0, got {iters!r}")
    A, b = _num._inexact(A, "A"), _num._inexact(b, "b")
    Q = _dense.dot(A.T, A)
    q = _dense.dot(A.T, b)
    if L is None:
        fro = np.sqrt(_num.row_sumsq(Q.reshape(1, -1))[0])
        one = np.max(_num.row_sum(np.abs(Q).T)) if Q.size else 0
        L = np.minimum(fro, one)
    else:
        L = _checks.check_number("L", L, low=0.0)
        if not isinstance(L, np.ndarray):      # a Python/NumPy scalar: weak, as in JAX
            L = Q.dtype.type(L)
    L = np.asarray(L)
    L = np.where(L == 0, L.dtype.type(1), L)[()]
    x = np.zeros(A.shape[-1:] + b.shape[1:], b.dtype)
    p = x
    c = 0.0
    for _ in range(int(iters)):
        cn = (1 + math.sqrt(1 + 4 * c ** 2)) / 2
        s = (c - 1) / cn
        xn = np.clip(p - (_dense.dot(Q, p) - q) / L, 0, None)
        pn = xn + xn.dtype.type(s) * (xn - x)
        x, p, c = xn, pn, cn
    return x
