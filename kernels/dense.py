"""Dense linear algebra with a fixed order of operations: the same bits on
every CPU.

NumPy's ``np.dot``, ``@``, ``np.vdot``, ``np.linalg.norm`` and LAPACK's
factorizations run in OpenBLAS kernels chosen at run time for the CPU
(Haswell, SkylakeX, Zen, ...): each kernel adds in its own order, so the same
solver gives iterates that differ in the last bits from machine to machine,
and a chaotic trajectory (a line search on Rosenbrock) takes another number
of iterations. Everything here is written as plain loops compiled by numba,
whose order is fixed by the source:

* **Inner products** use ``LANES = 8`` partial sums: lane ``l`` accumulates
  the products of indices ``i = l (mod 8)`` in increasing ``i`` (one fused
  multiply-add each, as the CPU policy contracts ``s + x*y``), and the lanes
  are combined as ``((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))``.
  Every product below (matrix-vector, vector-matrix, matrix-matrix) uses
  exactly this order, so ``(A @ x)[i] == dot(A[i], x)`` and
  ``(A @ B)[i, j] == dot(A[i], B[:, j])`` bit for bit, whatever the memory
  layout.
* **Factorizations** (LU with partial pivoting, Cholesky, Householder QR,
  triangular solves) are the textbook right-looking loops (Golub & Van Loan,
  Matrix Computations, 4th ed., Algorithms 3.4.1, 4.2.1, 5.2.1), with every
  inner sum in the order above.

Results are as accurate as LAPACK's (same algorithms, other rounding); they
are not bit-identical to NumPy's on any given machine, and are not meant to
be: they are identical to themselves on every machine. The loops vectorise
across independent outputs, never across a sum, so SIMD width does not
matter either.
"""
import math

import numpy as np
from numba import njit

from ._jit import CPU_OPTIONS, cuda, cuda_variant

LANES = 8


@njit(**CPU_OPTIONS)
def _combine(s0, s1, s2, s3, s4, s5, s6, s7):
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


@njit(**CPU_OPTIONS)
def zero_of(x):
    """A zero of x's dtype (numba cannot call ``x.dtype.type(0)``)."""
    return np.zeros(1, x.dtype)[0]


@cuda_variant(zero_of)
def _zero_of_cuda(x):
    z = cuda.local.array(1, x.dtype)
    z[0] = 0
    return z[0]


@njit(**CPU_OPTIONS)
def dot(x, y):
    """``sum_i x[i] * y[i]`` of two 1-D arrays of one dtype, in the lane order."""
    return dot_z(x, y, zero_of(x))


@njit(**CPU_OPTIONS)
def dot_z(x, y, z):
    """``dot`` with the accumulators' zero ``z`` given (no allocation)."""
    n = x.shape[0]
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = z
    m = n - n % LANES
    for i in range(0, m, LANES):
        s0 += x[i] * y[i]
        s1 += x[i + 1] * y[i + 1]
        s2 += x[i + 2] * y[i + 2]
        s3 += x[i + 3] * y[i + 3]
        s4 += x[i + 4] * y[i + 4]
        s5 += x[i + 5] * y[i + 5]
        s6 += x[i + 6] * y[i + 6]
        s7 += x[i + 7] * y[i + 7]
    r = n - m
    if r > 0:
        s0 += x[m] * y[m]
    if r > 1:
        s1 += x[m + 1] * y[m + 1]
    if r > 2:
        s2 += x[m + 2] * y[m + 2]
    if r > 3:
        s3 += x[m + 3] * y[m + 3]
    if r > 4:
        s4 += x[m + 4] * y[m + 4]
    if r > 5:
        s5 += x[m + 5] * y[m + 5]
    if r > 6:
        s6 += x[m + 6] * y[m + 6]
    return _combine(s0, s1, s2, s3, s4, s5, s6, s7)


@njit(**CPU_OPTIONS)
def matvec(A, x, out):
    """``out[i] = dot(A[i, :], x)`` for a C-contiguous (m, n) ``A``."""
    z = zero_of(out)
    for i in range(A.shape[0]):
        out[i] = dot_z(A[i], x, z)


@njit(**CPU_OPTIONS)
def _lane_rows(acc, out):
    """out[:] = the lane combination of acc[0..7, :] (one output per column)."""
    for j in range(out.shape[0]):
        out[j] = _combine(acc[0, j], acc[1, j], acc[2, j], acc[3, j],
                          acc[4, j], acc[5, j], acc[6, j], acc[7, j])


@njit(**CPU_OPTIONS)
def vecmat(x, A, out):
    """``out[j] = dot(x, A[:, j])`` for a C-contiguous (m, n) ``A``: the rows
    of A are swept once, each added into the lane of its row index."""
    m, n = A.shape
    acc = np.zeros((LANES, n), out.dtype)
    for i in range(m):
        xi = x[i]
        a = acc[i % LANES]
        Ai = A[i]
        for j in range(n):
            a[j] += xi * Ai[j]
    _lane_rows(acc, out)


@cuda_variant(vecmat)
def _vecmat_cuda(x, A, out):
    # no scratch on the GPU: column by column, the same lane sums in the
    # same order (row i into lane i % LANES, as dot_z adds x[i] * A[i, j])
    z = zero_of(out)
    for j in range(out.shape[0]):
        out[j] = dot_z(x, A[:, j], z)


@njit(**CPU_OPTIONS)
def matmat(A, B, out):
    """``out[i, j] = dot(A[i, :], B[:, j])`` for C-contiguous A (m, k), B (k, n)."""
    m, k = A.shape
    n = B.shape[1]
    acc = np.zeros((LANES, n), out.dtype)
    for i in range(m):
        acc[:] = 0
        Ai = A[i]
        for p in range(k):
            a = acc[p % LANES]
            aip = Ai[p]
            Bp = B[p]
            for j in range(n):
                a[j] += aip * Bp[j]
        _lane_rows(acc, out[i])


@cuda_variant(matmat)
def _matmat_cuda(A, B, out):
    # as _vecmat_cuda: out[i, j] = dot_z(A[i], B[:, j]), the CPU loop's order
    z = zero_of(out)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = dot_z(A[i], B[:, j], z)


# ---------------------------------------------------------------------------
# Factorizations. Inner sums of the triangular solves and of Cholesky use
# ``dot`` on contiguous slices; the eliminations are rank-one updates, one
# rounding per element and step.

@njit(**CPU_OPTIONS)
def lu_factor(a, piv):
    """In-place LU with partial pivoting (``P A = L U``, unit lower L).

    ``piv[k]`` is the row swapped with row k at step k (LAPACK's getrf
    convention, 0-based). Returns the index of the first exactly zero pivot,
    or -1 when the matrix is nonsingular to working precision."""
    n = a.shape[0]
    singular = -1
    for k in range(n):
        p = k
        best = abs(a[k, k])
        for i in range(k + 1, n):
            v = abs(a[i, k])
            if v > best:            # first maximum, as LAPACK's i?amax
                best = v
                p = i
        piv[k] = p
        if p != k:
            for j in range(n):
                t = a[k, j]
                a[k, j] = a[p, j]
                a[p, j] = t
        akk = a[k, k]
        if akk == 0:
            if singular < 0:
                singular = k
            continue
        for i in range(k + 1, n):
            l = a[i, k] / akk
            a[i, k] = l
            for j in range(k + 1, n):
                a[i, j] -= l * a[k, j]
    return singular


@njit(**CPU_OPTIONS)
def lu_solve(lu, piv, b):
    """Solve ``A x = b`` in place in ``b`` (shape (n, r)) from ``lu_factor``."""
    n = lu.shape[0]
    for k in range(n):
        p = piv[k]
        if p != k:
            for j in range(b.shape[1]):
                t = b[k, j]
                b[k, j] = b[p, j]
                b[p, j] = t
    # forward: L y = b (unit diagonal), column by column of b
    for i in range(n):
        for k in range(i):
            lik = lu[i, k]
            for j in range(b.shape[1]):
                b[i, j] -= lik * b[k, j]
    for i in range(n - 1, -1, -1):
        for k in range(i + 1, n):
            uik = lu[i, k]
            for j in range(b.shape[1]):
                b[i, j] -= uik * b[k, j]
        uii = lu[i, i]
        for j in range(b.shape[1]):
            b[i, j] /= uii


@njit(**CPU_OPTIONS)
def cholesky(a):
    """In place: the lower Cholesky factor L of ``A = L L^H`` in a's lower
    triangle (upper triangle zeroed). Returns -1, or the index of the first
    non-positive pivot (A not positive definite)."""
    n = a.shape[0]
    for j in range(n):
        for k in range(j + 1, n):
            a[j, k] = 0
        cj = np.conj(a[j, :j])
        d = a[j, j].real - dot(a[j, :j], cj).real
        if not d > 0:
            return j
        d = np.sqrt(d)
        a[j, j] = d
        for i in range(j + 1, n):
            a[i, j] = (a[i, j] - dot(a[i, :j], cj)) / d
    return -1


@cuda_variant(cholesky)
def _cholesky_cuda(a):
    # real matrices only on the GPU (conj would allocate): the same sums
    n = a.shape[0]
    for j in range(n):
        for k in range(j + 1, n):
            a[j, k] = 0
        d = a[j, j] - dot(a[j, :j], a[j, :j])
        if not d > 0:
            return j
        d = math.sqrt(d)
        a[j, j] = d
        for i in range(j + 1, n):
            a[i, j] = (a[i, j] - dot(a[i, :j], a[j, :j])) / d
    return -1


@njit(**CPU_OPTIONS)
def solve_triangular(t, b, lower, unit):
    """Solve ``T x = b`` in place in ``b`` (shape (n, r)) for a triangular T
    (only its ``lower`` or upper triangle is read)."""
    n = t.shape[0]
    r = b.shape[1]
    if lower:
        for i in range(n):
            for k in range(i):
                tik = t[i, k]
                for j in range(r):
                    b[i, j] -= tik * b[k, j]
            if not unit:
                for j in range(r):
                    b[i, j] /= t[i, i]
    else:
        for i in range(n - 1, -1, -1):
            for k in range(i + 1, n):
                tik = t[i, k]
                for j in range(r):
                    b[i, j] -= tik * b[k, j]
            if not unit:
                for j in range(r):
                    b[i, j] /= t[i, i]


@njit(**CPU_OPTIONS)
def _reflect(a, k, t, c, j):
    """``c[k:, j] -= t v (v^H c[k:, j])`` for the reflector ``v = (1, a[k+1:, k])``
    stored below the diagonal of ``a`` (``t = conj(tau_k)`` applies ``H_k^H``,
    ``t = tau_k`` applies ``H_k``)."""
    w = c[k, j]
    for i in range(k + 1, c.shape[0]):
        w += np.conj(a[i, k]) * c[i, j]
    w *= t
    c[k, j] -= w
    for i in range(k + 1, c.shape[0]):
        c[i, j] -= a[i, k] * w


@njit(**CPU_OPTIONS)
def householder_qr(a, tau):
    """In place Householder QR of an (m, n) matrix (LAPACK geqrf's convention,
    real or complex): R in the upper triangle, the reflectors ``v_k`` (with
    implicit ``v_k[k] = 1``) below it and their scales in ``tau``:
    ``H_k = I - tau_k v_k v_k^H``, ``A = H_0 H_1 ... R``,
    ``beta = -sign(Re alpha) ||(alpha, x)||``."""
    m, n = a.shape
    for k in range(min(m, n)):
        alpha = a[k, k]
        x = a[k + 1:, k].copy()
        xnorm2 = dot(np.conj(x), x).real
        if xnorm2 == 0 and alpha.imag == 0:
            tau[k] = 0
            continue
        beta = np.sqrt(alpha.real * alpha.real + alpha.imag * alpha.imag + xnorm2)
        if alpha.real >= 0:
            beta = -beta
        tau[k] = (beta - alpha) / beta
        scale = 1 / (alpha - beta)
        for i in range(k + 1, m):
            a[i, k] *= scale
        a[k, k] = beta
        # H_k^H on the trailing columns
        ct = np.conj(tau[k])
        for j in range(k + 1, n):
            _reflect(a, k, ct, a, j)


@njit(**CPU_OPTIONS)
def householder_q(a, tau, q):
    """The first ``q.shape[1]`` columns of ``Q = H_0 H_1 ... H_{k-1}`` from
    ``householder_qr``'s output (LAPACK orgqr/ungqr)."""
    m = q.shape[0]
    q[:] = 0
    for j in range(q.shape[1]):
        if j < m:
            q[j, j] = 1
    for k in range(tau.shape[0] - 1, -1, -1):
        for j in range(q.shape[1]):
            _reflect(a, k, tau[k], q, j)


@njit(**CPU_OPTIONS)
def jacobi_svd(w, v, max_sweeps):
    """One-sided Jacobi SVD (Hestenes 1958; Demmel & Veselic 1992) of the real
    (m, n) ``w``, in place: plane rotations of column pairs, in cyclic order,
    until every pair is orthogonal to ``eps * ||w_i|| ||w_j||``. On return
    ``W = A V`` has orthogonal columns (their norms are the singular values)
    and ``v`` (n, n, initialised to the identity here) is orthogonal, so
    ``A = W V^T``. Returns the number of sweeps (max_sweeps + 1: no
    convergence)."""
    m, n = w.shape
    v[:] = 0
    for j in range(n):
        v[j, j] = 1
    eps = np.finfo(w.dtype).eps
    total = 0.0
    for k in range(m):
        for j in range(n):
            total += w[k, j] * w[k, j]
    tiny = eps * eps * total         # columns below this are numerically zero
    for sweep in range(max_sweeps):
        rotated = False
        for i in range(n - 1):
            for j in range(i + 1, n):
                a = 0.0
                b = 0.0
                g = 0.0
                for k in range(m):
                    a += w[k, i] * w[k, i]
                    b += w[k, j] * w[k, j]
                    g += w[k, i] * w[k, j]
                if g == 0 or abs(g) <= eps * np.sqrt(a * b) or min(a, b) <= tiny:
                    continue
                rotated = True
                zeta = (b - a) / (2 * g)
                t = (1.0 if zeta >= 0 else -1.0) / (abs(zeta) + np.sqrt(1 + zeta * zeta))
                c = 1 / np.sqrt(1 + t * t)
                s = c * t
                for k in range(m):
                    wi = w[k, i]
                    wj = w[k, j]
                    w[k, i] = c * wi - s * wj
                    w[k, j] = s * wi + c * wj
                for k in range(n):
                    vi = v[k, i]
                    vj = v[k, j]
                    v[k, i] = c * vi - s * vj
                    v[k, j] = s * vi + c * vj
        if not rotated:
            return sweep + 1
    return max_sweeps + 1
