"""CPU-independent NumPy arithmetic for the test problems: their objectives,
gradients, Jacobians and data give the same bits on every machine.

Why: ``@``, ``np.dot``, ``np.linalg.*`` (and ``np.linalg.norm`` of a vector:
a BLAS dot) call OpenBLAS/LAPACK, which picks its kernels for the CPU at run
time (``OPENBLAS_CORETYPE``), each adding in its own order; and NumPy
dispatches ``exp``, ``log``, ``log1p``, ``expm1``, ``power`` (also ``x ** 3``:
only the exponents -1, 0, 0.5, 1 and 2 have fast paths), ``arctan``,
``sinh``, ``cbrt``... to SIMD versions (AVX2, AVX-512) whose last bits differ.
A test problem computed with them takes other values on another machine, and
a solver on a chaotic problem another number of iterations: the stored
jaxopt/optax counts would then hold on some machines only.

What is used here instead:

* elementwise ``+ - * /`` and ``np.sqrt``: one IEEE rounding each, the same
  everywhere (complex products are written out in real arithmetic: NumPy's
  SIMD complex multiply fuses with FMA where the CPU has it);
* ``np.sum`` / ``np.mean``: NumPy's pairwise summation (contiguous axis) or
  its sequential accumulation (other axes), plain C in a fixed order;
* the C library's scalar functions (``math.exp`` ...) for the transcendental
  ones: one code path whatever NumPy's SIMD targets (the C library itself has
  FMA-specialised variants, chosen alike on every CPU with FMA: x86-64-v3
  and later).

Checked by running the tests with OPENBLAS_CORETYPE=Prescott|Haswell and
NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR" (an AVX2 machine)
on an AVX-512 machine: the same bits. Pure NumPy (no npopt): the reference
generators import it in their JAX environment.
"""
import math

import numpy as np


# ---- products ---------------------------------------------------------------

def _mul(a, b):
    """a * b elementwise (broadcasting); complex operands in real arithmetic."""
    if np.iscomplexobj(a) or np.iscomplexobj(b):
        a, b = np.asarray(a), np.asarray(b)
        ar, ai, br, bi = a.real, a.imag, b.real, b.imag
        return (ar * br - ai * bi) + 1j * (ar * bi + ai * br)
    return a * b


def mv(A, x):
    """``A @ x`` for a matrix (or stack of rows) ``A`` and a vector ``x``."""
    return np.sum(_mul(A, x), axis=-1)


def rmv(A, r):
    """``A.T @ r`` (no conjugation) for a matrix ``A`` and a vector ``r``."""
    return np.sum(_mul(A, np.asarray(r)[:, None]), axis=0)


def vdot(a, b):
    """``a @ b`` for vectors (no conjugation, unlike ``np.vdot``)."""
    return np.sum(_mul(a, b))


def mm(A, B):
    """``A @ B`` for matrices: ``sum_k A[:, k] B[k, :]``, added in order of k."""
    A, B = np.asarray(A), np.asarray(B)
    if A.shape[1] != B.shape[0]:
        raise ValueError(f"mm: shapes {A.shape} and {B.shape} not aligned")
    out = _mul(A[:, :1], B[:1])
    for k in range(1, A.shape[1]):
        out = out + _mul(A[:, k:k + 1], B[k:k + 1])
    return out


def norm(x):
    """The Euclidean norm of a real array (``np.linalg.norm`` of a vector)."""
    x = np.ravel(x)
    return np.sqrt(np.sum(x * x))


# ---- the C library's elementary functions -------------------------------------

def _libm(fn):
    f = np.frompyfunc(fn, 1, 1)

    def g(x):
        x = np.asarray(x)
        dt = x.dtype if x.dtype in (np.float32, np.float64) else np.dtype(np.float64)
        out = np.asarray(f(x), dtype=dt)
        return out[()] if out.ndim == 0 else out
    g.__name__ = fn.__name__
    g.__doc__ = f"``np.{fn.__name__}`` through ``math.{fn.__name__}`` (one libm call per element)."
    return g


exp = _libm(math.exp)
log = _libm(math.log)
log1p = _libm(math.log1p)
tanh = _libm(math.tanh)
cos = _libm(math.cos)


# ---- dense linear algebra for the data (small matrices) ------------------------

def solve(A, B):
    """``np.linalg.solve(A, B)``: Gaussian elimination with partial pivoting
    (LAPACK getrf's pivot choice), real or complex, ``B`` a vector or matrix."""
    A = np.array(A, dtype=np.result_type(A, B, np.float64))
    B = np.array(B, dtype=A.dtype)
    vec = B.ndim == 1
    if vec:
        B = B[:, None]
    n = A.shape[0]
    for j in range(n):
        p = j + int(np.argmax(np.abs(A[j:, j].real) + np.abs(A[j:, j].imag)))
        if A[p, j] == 0:
            raise np.linalg.LinAlgError("Singular matrix")
        if p != j:
            A[[j, p]] = A[[p, j]]
            B[[j, p]] = B[[p, j]]
        f = A[j + 1:, j] / A[j, j]
        A[j + 1:, j:] -= _mul(f[:, None], A[j:j + 1, j:])
        B[j + 1:] -= _mul(f[:, None], B[j:j + 1])
    X = np.empty_like(B)
    for j in range(n - 1, -1, -1):
        X[j] = (B[j] - np.sum(_mul(A[j, j + 1:, None], X[j + 1:]), axis=0)) / A[j, j]
    return X[:, 0] if vec else X


def inv(A):
    """``np.linalg.inv(A)``."""
    return solve(A, np.eye(A.shape[0], dtype=np.result_type(A, np.float64)))


def qr(A):
    """``np.linalg.qr(A)`` (reduced, real): Householder reflections with
    LAPACK's sign convention (``R[j, j] = -sign(A[j, j]) * ||A[j:, j]||``), so
    Q and R are NumPy's up to rounding."""
    R = np.array(A, dtype=np.float64)
    m, n = R.shape
    k = min(m, n)
    vs = []
    for j in range(k):
        x = R[j:, j]
        alpha = x[0]
        xnorm = norm(x[1:])
        if xnorm == 0.0:
            vs.append(None)
            continue
        beta = -math.copysign(math.hypot(alpha, xnorm), alpha)
        v = x.copy()
        v[0] = alpha - beta
        v = v / v[0]
        tau = (beta - alpha) / beta
        R[j:, j:] -= tau * v[:, None] * rmv(R[j:, j:], v)[None, :]
        R[j + 1:, j] = 0.0
        vs.append((v, tau))
    Q = np.eye(m, k)
    for j in range(k - 1, -1, -1):
        if vs[j] is None:
            continue
        v, tau = vs[j]
        Q[j:, :] -= tau * v[:, None] * rmv(Q[j:, :], v)[None, :]
    return Q, np.triu(R[:k])


def spectral_norm(A, iters=500):
    """``np.linalg.norm(A, 2)``: the largest singular value, by power
    iteration on ``A^T A`` (to the last bits for a random matrix)."""
    A = np.asarray(A, dtype=np.float64)
    v = np.ones(A.shape[1]) / math.sqrt(A.shape[1])
    s = 0.0
    for _ in range(iters):
        w = rmv(A, mv(A, v))
        s_new = norm(w)
        v = w / s_new
        if s_new == s:
            break
        s = s_new
    return float(norm(mv(A, v)))
