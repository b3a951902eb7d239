"""Small objectives as numba functions, for compiled and batched solves
(``npopt.vmap``, the compiled driver), the tests and ``benchmarks/bench_batch.py``.

Each returns ``(value, grad)`` (use ``value_and_grad=True``). Products are
plain loops, so the numbers are the same on every CPU.
"""
import numpy as np
from numba import njit

_OPTS = dict(cache=True, nogil=True, error_model="numpy")


@njit(**_OPTS)
def ridge(w, X, y, lam):
    """``0.5 ||X w - y||^2 / m + 0.5 lam ||w||^2`` and its gradient;
    X: (m, n), y: (m,), lam: a scalar."""
    m, n = X.shape
    g = lam * w
    value = 0.0
    for i in range(m):
        r = -y[i]
        for j in range(n):
            r += X[i, j] * w[j]
        value += r * r
        r /= m
        for j in range(n):
            g[j] += r * X[i, j]
    reg = 0.0
    for j in range(n):
        reg += w[j] * w[j]
    return 0.5 * value / m + 0.5 * lam * reg, g


@njit(**_OPTS)
def logistic(w, X, y, lam):
    """Mean logistic loss of labels y in {0, 1} with scores ``X w``, plus
    ``0.5 lam ||w||^2``, and its gradient."""
    m, n = X.shape
    g = lam * w
    value = 0.0
    for i in range(m):
        z = 0.0
        for j in range(n):
            z += X[i, j] * w[j]
        # log(1 + exp(z)) - y z, stably; d/dz = sigmoid(z) - y
        if z > 0:
            e = np.exp(-z)          # cpu-ok: numba calls the C library (scalar)
            value += z + np.log1p(e) - y[i] * z      # cpu-ok: as above
            s = 1.0 / (1.0 + e)
        else:
            e = np.exp(z)           # cpu-ok: numba calls the C library (scalar)
            value += np.log1p(e) - y[i] * z          # cpu-ok: as above
            s = e / (1.0 + e)
        c = (s - y[i]) / m
        for j in range(n):
            g[j] += c * X[i, j]
    reg = 0.0
    for j in range(n):
        reg += w[j] * w[j]
    return value / m + 0.5 * lam * reg, g


@njit(**_OPTS)
def rosenbrock(x):
    """The n-dimensional Rosenbrock function and its gradient."""
    n = x.shape[0]
    g = np.zeros_like(x)
    value = 0.0
    for i in range(n - 1):
        a = x[i + 1] - x[i] * x[i]
        b = 1.0 - x[i]
        value += 100.0 * a * a + b * b
        g[i] += -400.0 * x[i] * a - 2.0 * b
        g[i + 1] += 200.0 * a
    return value, g


@njit(**_OPTS)
def double_exponential(p, t, y):
    """Residuals of the curve ``p0 exp(-p1 t) + p2 exp(-p3 t)`` against y."""
    r = np.empty(t.shape[0])
    for i in range(t.shape[0]):
        r[i] = (p[0] * np.exp(-p[1] * t[i])           # cpu-ok: numba calls the C library
                + p[2] * np.exp(-p[3] * t[i]) - y[i])  # cpu-ok: as above
    return r


@njit(**_OPTS)
def double_exponential_jac(p, t, y):
    """The Jacobian (len(t), 4) of ``double_exponential``."""
    J = np.empty((t.shape[0], 4))
    for i in range(t.shape[0]):
        e1 = np.exp(-p[1] * t[i])                    # cpu-ok: numba calls the C library
        e3 = np.exp(-p[3] * t[i])                    # cpu-ok: as above
        J[i, 0] = e1
        J[i, 1] = -p[0] * t[i] * e1
        J[i, 2] = e3
        J[i, 3] = -p[2] * t[i] * e3
    return J
