"""Small objectives as numba functions, for compiled and batched solves
(``npopt.vmap``, the compiled driver), the tests and ``benchmarks/bench_batch.py``.

Each returns ``(value, grad)`` (use ``value_and_grad=True``); the ``*_into``
forms write the gradient (or the map's value) into a buffer and are what
CUDA lanes take, and are compiled for the GPU from the same source.
Products are plain loops, so the numbers are the same on every CPU.
"""
import math

import numpy as np
from numba import njit

_OPTS = dict(cache=True, nogil=True, error_model="numpy")


@njit(**_OPTS)
def ridge_into(w, g, X, y, lam):
    """``0.5 ||X w - y||^2 / m + 0.5 lam ||w||^2``, its gradient written into g
    (the form CUDA lanes take: a device function cannot allocate);
    X: (m, n), y: (m,), lam: a scalar."""
    m, n = X.shape
    for j in range(n):
        g[j] = lam * w[j]
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
    return 0.5 * value / m + 0.5 * lam * reg


@njit(**_OPTS)
def ridge(w, X, y, lam):
    """``ridge_into`` returning ``(value, grad)``."""
    g = lam * w
    return ridge_into(w, g, X, y, lam), g


@njit(**_OPTS)
def logistic_into(w, g, X, y, lam):
    """Mean logistic loss of labels y in {0, 1} with scores ``X w``, plus
    ``0.5 lam ||w||^2``; its gradient written into g."""
    m, n = X.shape
    for j in range(n):
        g[j] = lam * w[j]
    value = 0.0
    for i in range(m):
        z = 0.0
        for j in range(n):
            z += X[i, j] * w[j]
        # log(1 + exp(z)) - y z, stably; d/dz = sigmoid(z) - y
        if z > 0:
            e = math.exp(-z)
            value += z + math.log1p(e) - y[i] * z
            s = 1.0 / (1.0 + e)
        else:
            e = math.exp(z)
            value += math.log1p(e) - y[i] * z
            s = e / (1.0 + e)
        c = (s - y[i]) / m
        for j in range(n):
            g[j] += c * X[i, j]
    reg = 0.0
    for j in range(n):
        reg += w[j] * w[j]
    return value / m + 0.5 * lam * reg


@njit(**_OPTS)
def logistic(w, X, y, lam):
    """``logistic_into`` returning ``(value, grad)``."""
    g = lam * w
    return logistic_into(w, g, X, y, lam), g


@njit(**_OPTS)
def rosenbrock_into(x, g):
    """The n-dimensional Rosenbrock function; its gradient written into g."""
    n = x.shape[0]
    for i in range(n):
        g[i] = 0.0
    value = 0.0
    for i in range(n - 1):
        a = x[i + 1] - x[i] * x[i]
        b = 1.0 - x[i]
        value += 100.0 * a * a + b * b
        g[i] += -400.0 * x[i] * a - 2.0 * b
        g[i + 1] += 200.0 * a
    return value


@njit(**_OPTS)
def rosenbrock(x):
    """``rosenbrock_into`` returning ``(value, grad)``."""
    g = np.zeros_like(x)
    return rosenbrock_into(x, g), g


@njit(**_OPTS)
def kepler_into(E, out, M, e):
    """Kepler's equation ``E = M + e sin E`` as a fixed-point map (a
    contraction for eccentricities e < 1): writes ``M + e sin E`` into out."""
    for j in range(E.shape[0]):
        out[j] = M[j] + e * math.sin(E[j])


@njit(**_OPTS)
def double_exponential_into(p, r, t, y):
    """Residuals of the curve ``p0 exp(-p1 t) + p2 exp(-p3 t)`` against y,
    written into r (len(t),)."""
    for i in range(t.shape[0]):
        r[i] = p[0] * math.exp(-p[1] * t[i]) + p[2] * math.exp(-p[3] * t[i]) - y[i]


@njit(**_OPTS)
def double_exponential(p, t, y):
    """``double_exponential_into`` returning the residuals."""
    r = np.empty(t.shape[0])
    double_exponential_into(p, r, t, y)
    return r


@njit(**_OPTS)
def double_exponential_jac_into(p, J, t, y):
    """The Jacobian (len(t), 4) of ``double_exponential``, written into J."""
    for i in range(t.shape[0]):
        e1 = math.exp(-p[1] * t[i])
        e3 = math.exp(-p[3] * t[i])
        J[i, 0] = e1
        J[i, 1] = -p[0] * t[i] * e1
        J[i, 2] = e3
        J[i, 3] = -p[2] * t[i] * e3


@njit(**_OPTS)
def double_exponential_jac(p, t, y):
    """``double_exponential_jac_into`` returning the Jacobian."""
    J = np.empty((t.shape[0], 4))
    double_exponential_jac_into(p, J, t, y)
    return J
