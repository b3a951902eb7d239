"""Deterministic dense linear algebra: NumPy's calling conventions, the same
bits on every CPU.

``np.dot``, ``@``, ``np.vdot``, ``np.linalg.norm``, ``np.linalg.solve`` and
``scipy.linalg``'s factorizations call OpenBLAS/LAPACK, which picks its
kernels at run time for the CPU (``OPENBLAS_CORETYPE``): each adds in its own
order, so npopt's solvers would take other iterates (and, on a chaotic
problem, another number of iterations) on another machine. npopt's own
arithmetic uses these functions instead; the loops are in
``npopt.kernels.dense`` (fixed order of operations, see there).

Conventions follow NumPy: ``dot(a, b)`` is ``np.dot`` for arrays of at most
two dimensions (and an N-D ``a`` with a 1-D ``b``); the result dtype is
``np.result_type(a, b)`` (integers and booleans are computed in float64).
Factorizations raise ``np.linalg.LinAlgError`` where NumPy/SciPy do.
"""
import numpy as np

from .kernels import dense as _k

_INEXACT = (np.dtype(np.float32), np.dtype(np.float64),
            np.dtype(np.complex64), np.dtype(np.complex128))


def _dtype(*arrays):
    dt = np.result_type(*arrays)
    if dt not in _INEXACT:
        dt = np.result_type(dt, np.float64) if dt.kind in "fc" else np.dtype(np.float64)
        if dt not in _INEXACT:          # float16, longdouble: compute in float64/complex128
            dt = np.dtype(np.complex128 if dt.kind == "c" else np.float64)
    return dt


def _c(x, dt):
    return np.ascontiguousarray(x, dtype=dt)


def dot(a, b):
    """``np.dot(a, b)`` (and ``a @ b``) with a fixed summation order.

    Complex products are four real ones, ``(ar br - ai bi) + i (ar bi + ai br)``:
    a complex multiply-add leaves the compiler a choice of which product to
    fuse, real ones do not."""
    if _plain_vectors(a, b):                    # the common case, without the checks
        return a.dtype.type(_k.dot(a, b))
    a = np.asarray(a)
    b = np.asarray(b)
    dt = _dtype(a, b)
    if a.ndim == 0 or b.ndim == 0:
        return (a * b).astype(dt, copy=False)[()]
    if dt.kind == "c":
        rt = np.float32 if dt == np.complex64 else np.float64
        ar, ai = np.real(a).astype(rt), np.imag(a).astype(rt)
        br, bi = np.real(b).astype(rt), np.imag(b).astype(rt)
        re = np.asarray(_real_dot(ar, br) - _real_dot(ai, bi))
        im = np.asarray(_real_dot(ar, bi) + _real_dot(ai, br))
        out = np.empty(re.shape, dt)
        out.real, out.imag = re, im
        return out[()]
    return _real_dot(a, b, dt)


def _real_dot(a, b, dt=None):
    """``dot`` of real (or integer) arrays, computed in ``dt``."""
    a = np.asarray(a)
    b = np.asarray(b)
    dt = _dtype(a, b) if dt is None else dt
    if a.ndim == 0 or b.ndim == 0:
        return (a * b).astype(dt, copy=False)[()]
    if b.ndim == 1:
        if a.shape[-1] != b.shape[0]:
            raise ValueError(f"dot: shapes {a.shape} and {b.shape} not aligned")
        if a.ndim == 1:
            return dt.type(_k.dot(_c(a, dt), _c(b, dt)))
        if a.ndim == 2 and a.dtype == dt and a.T.flags.c_contiguous:
            # a transposed matrix (X.T @ r): sweep the rows of X; vecmat adds in
            # the same lanes as matvec, so the layout does not change the bits
            out = np.empty(a.shape[0], dt)
            _k.vecmat(_c(b, dt), a.T, out)
            return out
        A = _c(a, dt).reshape(-1, b.shape[0])
        out = np.empty(A.shape[0], dt)
        _k.matvec(A, _c(b, dt), out)
        return out.reshape(a.shape[:-1])
    if b.ndim == 2 and a.ndim <= 2:
        if a.shape[-1] != b.shape[0]:
            raise ValueError(f"dot: shapes {a.shape} and {b.shape} not aligned")
        if a.ndim == 1:
            out = np.empty(b.shape[1], dt)
            if b.dtype == dt and b.T.flags.c_contiguous and not b.flags.c_contiguous:
                _k.matvec(b.T, _c(a, dt), out)          # same lanes, no copy
            else:
                _k.vecmat(_c(a, dt), _c(b, dt), out)
            return out
        out = np.empty((a.shape[0], b.shape[1]), dt)
        _k.matmat(_c(a, dt), _c(b, dt), out)
        return out
    raise ValueError(f"dot: supports arrays of at most 2 dimensions (and N-D @ 1-D), "
                     f"got shapes {a.shape} and {b.shape}")


matmul = dot


def _plain_vectors(a, b):
    """Two C-contiguous 1-D float32 or float64 arrays of one dtype and length."""
    return (type(a) is np.ndarray and type(b) is np.ndarray and a.ndim == 1 and b.ndim == 1
            and a.dtype == b.dtype and a.dtype in _REAL and a.shape == b.shape
            and a.flags.c_contiguous and b.flags.c_contiguous)


_REAL = (np.dtype(np.float32), np.dtype(np.float64))


def vdot(a, b):
    """``np.vdot(a, b)``: ``sum conj(a) * b`` over the flattened arrays."""
    if _plain_vectors(a, b):
        return a.dtype.type(_k.dot(a, b))
    a = np.asarray(a)
    b = np.asarray(b)
    if a.size != b.size:
        raise ValueError(f"vdot: sizes {a.size} and {b.size} differ")
    dt = _dtype(a, b)
    a = a.reshape(-1)
    if dt.kind == "c":
        return dot(np.conj(a), b.reshape(-1))
    return dt.type(_k.dot(_c(a, dt), _c(b, dt).reshape(-1)))


def sqnorm(x):
    """``sum |x|^2`` over all elements, in x's real dtype."""
    x = np.asarray(x)
    dt = _dtype(x)
    v = _c(x, dt).reshape(-1)
    if dt.kind == "c":
        v = v.view(np.float32 if dt == np.complex64 else np.float64)
    return v.dtype.type(_k.dot(v, v))


def norm(x, ord=None):  # noqa: A002 (numpy's name)
    """``np.linalg.norm(x)`` for the 2-norm of a vector or the Frobenius norm
    of a matrix (``ord`` None, 2 for vectors, 'fro'); ``ord`` 1 or inf for
    matrices and vectors are sums and maxima NumPy computes exactly the same
    everywhere, so they are passed to it."""
    x = np.asarray(x)
    if ord is None or ord == "fro" or (ord == 2 and x.ndim == 1):
        return np.sqrt(sqnorm(x))
    if ord == 2:
        raise ValueError("norm: the matrix 2-norm (an SVD) is not available here")
    return np.linalg.norm(x, ord)          # cpu-ok: sums of |x| and maxima, no BLAS


# ---------------------------------------------------------------------------
# Factorizations and solves.

def _square(name, A):
    A = np.asarray(A)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"{name}: expected a square 2-D matrix, got shape {A.shape}")
    return A


def _rhs(b, dt):
    b = np.array(b, dtype=dt, order="C", copy=True)
    return b, (b.reshape(-1, 1) if b.ndim == 1 else b)


def lu_factor(A):
    """``(lu, piv, k)``: LU with partial pivoting of a copy of A (LAPACK
    getrf's storage, 0-based pivots); ``k`` is the first exactly zero pivot,
    -1 if none."""
    A = _square("lu_factor", A)
    lu = np.array(A, dtype=_dtype(A), order="C", copy=True)
    piv = np.empty(lu.shape[0], np.int64)
    k = _k.lu_factor(lu, piv)
    return lu, piv, k


def lu_solve(lu, piv, b):
    """Solve ``A x = b`` from ``lu_factor``'s output (b: (n,) or (n, r))."""
    x, x2 = _rhs(b, _dtype(lu, b))
    _k.lu_solve(_c(lu, x.dtype), piv, x2)
    return x


def solve(A, b):
    """``np.linalg.solve(A, b)``: LU with partial pivoting; LinAlgError on an
    exactly zero pivot, as NumPy."""
    lu, piv, k = lu_factor(A)
    if k >= 0:
        raise np.linalg.LinAlgError("Singular matrix")
    return lu_solve(lu, piv, b)


def inv(A):
    """``np.linalg.inv(A)``: the LU solve of the identity."""
    A = _square("inv", A)
    return solve(A, np.eye(A.shape[0], dtype=_dtype(A)))


def cholesky(A, lower=True):
    """The Cholesky factor of a Hermitian positive definite A from its
    ``lower`` (or upper) triangle: L with ``A = L L^H`` (``lower=True``), or
    U with ``A = U^H U``. LinAlgError when A is not positive definite."""
    A = _square("cholesky", A)
    dt = _dtype(A)
    L = np.array(np.tril(A) if lower else np.triu(A).conj().T, dtype=dt, order="C")
    k = _k.cholesky(L)
    if k >= 0:
        raise np.linalg.LinAlgError(
            f"Matrix is not positive definite: leading minor of order {k + 1}")
    return L if lower else np.ascontiguousarray(L.conj().T)


def solve_triangular(T, b, lower=False, trans=False, unit_diagonal=False):
    """``scipy.linalg.solve_triangular``: ``T x = b`` (``trans``: ``T^H x = b``
    for complex T, ``T^T x = b`` for real), T triangular (only the named
    triangle is read)."""
    T = _square("solve_triangular", T)
    dt = _dtype(T, b)
    if trans:
        T = T.conj().T if dt.kind == "c" else T.T
        lower = not lower
    if not unit_diagonal and not np.all(np.diagonal(T)):
        k = int(np.flatnonzero(np.diagonal(T) == 0)[0])
        raise np.linalg.LinAlgError(
            f"singular matrix: resolution failed at diagonal {k}")   # scipy's message
    x, x2 = _rhs(b, dt)
    _k.solve_triangular(_c(T, dt), x2, bool(lower), bool(unit_diagonal))
    return x


def cho_solve(L, b):
    """Solve ``A x = b`` given A's lower Cholesky factor L (``A = L L^H``)."""
    y = solve_triangular(L, b, lower=True)
    return solve_triangular(L, y, lower=True, trans=True)


def qr(A, mode="full"):
    """``scipy.linalg.qr(A, mode)`` for mode 'full' or 'economic' (Householder,
    LAPACK's sign convention: ``R[k, k] = -sign(Re a) ||a||`` at each step)."""
    A = np.asarray(A)
    if A.ndim != 2:
        raise ValueError(f"qr: expected a 2-D matrix, got shape {A.shape}")
    if mode not in ("full", "economic"):
        raise ValueError(f"qr: mode must be 'full' or 'economic', got {mode!r}")
    dt = _dtype(A)
    m, n = A.shape
    a = np.array(A, dtype=dt, order="C", copy=True)
    tau = np.zeros(min(m, n), dt)
    _k.householder_qr(a, tau)
    k = m if mode == "full" else min(m, n)
    q = np.empty((m, k), dt)
    _k.householder_q(a, tau, q)
    r = np.triu(a[:k, :])
    return q, r


def lu_solve_h(lu, piv, b):
    """Solve ``A^H x = b`` (``A^T x = b`` for real A) from ``lu_factor``'s
    output: ``A^H = U^H L^H P``, so ``U^H w = b``, ``L^H v = w``, and the
    row swaps undone in reverse order."""
    w = solve_triangular(lu, b, lower=False, trans=True)
    v = solve_triangular(lu, w, lower=True, trans=True, unit_diagonal=True)
    for k in range(lu.shape[0] - 1, -1, -1):
        p = piv[k]
        if p != k:
            v[[k, p]] = v[[p, k]]
    return v


def inv_norm1_estimate(solve, solve_h, n, dtype):
    """An estimate of ``||A^-1||_1`` from solves with A and A^H (Hager 1984;
    Higham, ACM TOMS 14, 1988, the algorithm of LAPACK's ``*lacn2``): at most
    5 pairs of solves, O(n^2) each, instead of the inverse. A lower bound,
    rarely off by more than a factor 3; with npopt's solves, the same on
    every CPU."""
    dtype = np.dtype(dtype)
    x = np.full(n, 1.0 / n, dtype)
    est = 0.0
    for it in range(5):
        y = solve(x)
        new = float(np.sum(np.abs(y)))
        if not np.isfinite(new):
            return np.inf
        if it > 0 and new <= est:
            break
        est = new
        with np.errstate(invalid="ignore", divide="ignore"):
            if dtype.kind == "c":
                s = np.where(y == 0, 1, y / np.where(y == 0, 1, np.abs(y))).astype(dtype)
            else:
                s = np.where(y >= 0, 1.0, -1.0).astype(dtype)
        z = solve_h(s)
        j = int(np.argmax(np.abs(z)))
        if it > 0 and np.abs(z[j]) <= np.real(vdot(z, x)):
            break
        x = np.zeros(n, dtype)
        x[j] = 1
    # Higham's extra test vector, against the worst cases of the iteration
    alt = np.array([(-1.0) ** i * (1 + i / max(n - 1, 1)) for i in range(n)], dtype)
    return max(est, 2 * float(np.sum(np.abs(solve(alt)))) / (3 * n))


EXACT_RCOND_MAX = 128


def rcond1(A, lu=None, piv=None):
    """The reciprocal 1-norm condition number ``1 / (||A||_1 ||A^-1||_1)``:
    exact up to ``EXACT_RCOND_MAX`` rows, above that with ``||A^-1||_1``
    estimated as LAPACK's ``gecon`` does (``inv_norm1_estimate``), from
    npopt's solves. 0 when singular."""
    A = _square("rcond1", A)
    n = A.shape[0]
    if n == 0:
        return np.inf
    if lu is None:
        lu, piv, k = lu_factor(A)
        if k >= 0:
            return 0.0
    if n <= EXACT_RCOND_MAX:     # one solve with the identity costs less than the iteration
        inorm = float(np.max(np.sum(np.abs(lu_solve(lu, piv, np.eye(n, dtype=lu.dtype))),
                                    axis=0)))
    else:
        inorm = inv_norm1_estimate(lambda b: lu_solve(lu, piv, b),
                                   lambda b: lu_solve_h(lu, piv, b), n, lu.dtype)
    anorm = float(np.max(np.sum(np.abs(A), axis=0)))
    if not (np.isfinite(inorm) and anorm > 0 and inorm > 0):
        return 0.0
    return 1.0 / (anorm * inorm)


def tri_rcond1(R, lower=False):
    """``rcond1`` of a triangular matrix (LAPACK ``trcon``), estimated."""
    R = _square("tri_rcond1", R)
    n = R.shape[0]
    if n == 0:
        return np.inf
    if not np.all(np.diagonal(R)):
        return 0.0
    T = np.tril(R) if lower else np.triu(R)
    inorm = inv_norm1_estimate(lambda b: solve_triangular(T, b, lower=lower),
                               lambda b: solve_triangular(T, b, lower=lower, trans=True),
                               n, _dtype(R))
    anorm = float(np.max(np.sum(np.abs(T), axis=0)))
    if not (np.isfinite(inorm) and anorm > 0 and inorm > 0):
        return 0.0
    return 1.0 / (anorm * inorm)


def svd(A):
    """``(U, s, V)`` of a real (m, n) matrix by one-sided Jacobi on ``A^T``:
    ``s`` (k,), k = min(m, n), the singular values in decreasing order (stable
    for ties), ``U`` (m, k) and ``V`` (n, n) with orthonormal columns,
    ``A = U diag(s) V[:, :k]^T``; ``V[:, r:]`` (r the numerical rank) is an
    orthonormal basis of A's null space (completed by Householder QR). Not
    LAPACK's signs, nor its basis of repeated singular values: the same on
    every CPU."""
    A = np.asarray(A)
    if A.ndim != 2 or A.dtype.kind == "c":
        raise ValueError(f"svd: expected a real 2-D matrix, got {A.dtype} {A.shape}")
    dt = _dtype(A)
    m, n = A.shape
    if m == 0 or n == 0:
        return np.zeros((m, 0), dt), np.zeros(0, dt), np.eye(n, dtype=dt)
    transpose = m < n                  # Jacobi on the side with fewer columns
    w = np.array(A.T if transpose else A, dtype=dt, order="C", copy=True)
    k = w.shape[1]
    v = np.empty((k, k), dt)
    if _k.jacobi_svd(w, v, 80) > 80:
        raise np.linalg.LinAlgError("svd: one-sided Jacobi did not converge in 80 sweeps")
    s = np.sqrt(np.sum(w * w, axis=0))
    order = np.argsort(-s, kind="stable")
    s, w, v = s[order], w[:, order], v[:, order]
    with np.errstate(invalid="ignore", divide="ignore"):
        left = np.where(s > 0, w / np.where(s > 0, s, 1), 0)    # unit columns of W
    if not transpose:                  # A V = W: U = W / s, V is v
        return left, s, v
    # A^T v = W: A = v diag(s) left^T, so U = v and A's right vectors are
    # ``left`` (n, m), completed to a basis of R^n past the rank
    r = int(np.sum(s > s[0] * max(m, n) * np.finfo(dt).eps))
    q, _ = qr(left[:, :r], mode="full") if r else (np.eye(n, dtype=dt), None)
    V = np.concatenate([left[:, :r], q[:, r:]], axis=1) if r else q
    return v, s, V


def lstsq(A, b, rcond=None):
    """The minimum-norm least-squares solution of ``A x = b`` (``np.linalg.lstsq``
    with ``rcond=None``: singular values below ``eps max(m, n) s_max`` count
    as zero), and the rank."""
    A = np.asarray(A)
    U, s, V = svd(A)
    if rcond is None:
        rcond = np.finfo(s.dtype).eps * max(A.shape)
    r = int(np.sum(s > rcond * s[0])) if s.size else 0
    coef = dot(U[:, :r].T, b) / s[:r]
    return dot(V[:, :r], coef), r


def nnls(E, f, maxiter=None):
    """``min ||E u - f|| s.t. u >= 0`` (Lawson & Hanson 1974, Algorithm 23.10,
    as ``scipy.optimize.nnls``), with npopt's least squares on the passive
    set. Returns ``(u, ||E u - f||)``."""
    E = np.asarray(E, np.float64)
    f = np.asarray(f, np.float64)
    m, n = E.shape
    maxiter = 3 * n if maxiter is None else maxiter
    u = np.zeros(n)
    passive = np.zeros(n, bool)
    tol = 10 * np.finfo(np.float64).eps * np.max(np.abs(E), initial=0.0) * max(m, n)
    w = dot(E.T, f - dot(E, u))
    it = 0
    while not passive.all() and np.any(w[~passive] > tol) and it < maxiter:
        j = np.flatnonzero(~passive)[np.argmax(w[~passive])]
        passive[j] = True
        while True:
            it += 1
            z = np.zeros(n)
            idx = np.flatnonzero(passive)
            z[idx] = lstsq(E[:, idx], f)[0]
            if np.all(z[idx] > 0) or it >= maxiter:
                u = z
                break
            neg = idx[z[idx] <= 0]
            alpha = np.min(u[neg] / (u[neg] - z[neg]))
            u = u + alpha * (z - u)
            passive &= ~((u <= tol) & passive)
            u[~passive] = 0
        w = dot(E.T, f - dot(E, u))
    return u, float(norm(dot(E, u) - f))
