r"""The L-BFGS test problem: a smooth, strongly convex, non-separable
objective with minimum 0.

Shared by the reference generator (make_lbfgs_reference.py) and the tests
(test_lbfgs.py). The params pytree has problem.py's structure::

    params = {'b': (160,), 'extra': [(3, 5), ()], 'w': (128, 160)}

and the objective couples everything (problem.py's separable quadratic is
too easy for a quasi-Newton method). With ``n = 192`` samples of ``d = 128``
features and ``k = 160`` outputs, a planted solution ``p* = (w*, b*, e*,
s*)`` (``e = extra[0]``, ``s = extra[1]``), the residuals ``r = X w + b -
(X w* + b*)`` and the pseudo-Huber function
``h(x) = sqrt(1 + x^2) - 1 = x^2 / (1 + sqrt(1 + x^2))`` (quadratic near 0,
linear far away, so the curvature varies along the path):

.. math::

    f(p) = \frac1n \sum_{ij} h(r_{ij}) + \frac\lambda2 \|w - w^*\|^2
         + \frac12 \|e - e^* + c (s - s^*)\|^2
         + \frac12 (\bar b - \bar b^* + s - s^*)^2 + h(2 (s - s^*))

(``b-bar`` the mean of ``b``). Its minimum is ``f(p*) = 0`` at the unique
minimizer ``p*``. The zero minimum keeps the line search well determined
up to convergence: every term is computed to its own relative precision
(``h`` in the cancellation-free form above), so the rounding of the values
shrinks with the decreases the line search compares. (On a problem with a
nonzero minimum the decreases sink below the rounding of the value near
convergence; the zoom line search's interpolations, hence the trajectories
of any two implementations, then diverge.)

``value_and_grad`` (NumPy) is the one both sides use: the generator hands it
to optax through ``jax.pure_callback`` with a custom VJP (see
make_lbfgs_reference.py), so optax and npopt see bit-identical objective
values and gradients for bit-identical params, and any disagreement comes
from the optimizer alone. The products are ``fixed_order.mm`` (no BLAS:
the same bits on every CPU). ``value_jax`` is the same objective in
jax.numpy; the generator checks the NumPy formulas (value and gradient)
against it and JAX's autodiff.

Every function works in the dtype of the params it is given (float32 or
float64); the constants are stored in the problem's dtype and promote as
NumPy and JAX promote (float32 constants meeting float64 trial params give
float64).
"""
import numpy as np

try:
    from . import fixed_order as fo        # imported as reference.lbfgs_problem
except ImportError:                        # as a top-level module (the generator)
    import fixed_order as fo

N, D, K = 192, 128, 160
LAM = 0.1           # ridge on w - w*
W_PERT = 1.0        # initial distance of w from w*
DELTA = 1.0         # pseudo-Huber scale


def make_problem(dtype):
    """(params0, consts) in ``dtype``; consts = dict(X, zs, ws, bbar, es, ss, c)."""
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(20260307)
    X = rng.standard_normal((N, D)) / np.sqrt(D)
    ws = rng.standard_normal((D, K))
    bs = 0.5 * rng.standard_normal(K)
    es = rng.standard_normal((3, 5))
    ss = 0.8
    c = 0.5 * rng.standard_normal((3, 5))
    params0 = {
        "b": bs + rng.standard_normal(K),
        "extra": [es + rng.standard_normal((3, 5)), np.asarray(ss - 1.5)],
        "w": ws + W_PERT * rng.standard_normal((D, K)),
    }
    cast = lambda x: np.asarray(x, dtype)  # noqa: E731
    X, ws, bs, es, c = cast(X), cast(ws), cast(bs), cast(es), cast(c)
    consts = {"X": X, "zs": fo.mm(X, ws) + bs, "ws": ws, "bbar": np.mean(bs), "es": es,
              "ss": dtype.type(ss), "c": c}
    params0 = {"b": cast(params0["b"]), "extra": [cast(x) for x in params0["extra"]],
               "w": cast(params0["w"])}
    return params0, consts


def _h(x):
    """Pseudo-Huber d^2 (sqrt(1 + (x/d)^2) - 1) = x^2 / (1 + sqrt(1 + (x/d)^2)),
    without cancellation; and its derivative."""
    one = x.dtype.type(1)
    y = x * x.dtype.type(1.0 / DELTA)
    root = np.sqrt(one + y * y)
    return x * x / (one + root), x / root


def value_and_grad(params, consts):
    """(f(params), grad f(params)) in NumPy, in the params' (promoted) dtype."""
    w, b = params["w"], params["b"]
    e, s = params["extra"]
    X, c = consts["X"], consts["c"]
    r1 = (fo.mm(X, w) + b) - consts["zs"]
    h1, d1 = _h(r1)
    dt = h1.dtype.type
    dw = w - consts["ws"]
    ds = s - consts["ss"]
    r2 = (e - consts["es"]) + c * ds
    r3 = (np.mean(b) - consts["bbar"]) + ds
    h4, d4 = _h(np.asarray(dt(2) * ds))
    value = dt(np.sum(h1) / dt(N) + dt(0.5 * LAM) * np.sum(dw * dw)
               + dt(0.5) * (np.sum(r2 * r2) + r3 * r3) + h4)

    q = d1 / dt(N)
    gw = fo.mm(X.T, q) + dt(LAM) * dw
    gb = np.sum(q, axis=0) + r3 / dt(K)
    ge = r2
    gs = np.sum(r2 * c) + r3 + dt(2) * d4
    grad = {"b": gb.astype(dt), "extra": [ge.astype(dt), np.asarray(gs, dt)],
            "w": gw.astype(dt)}
    return value, grad


def value(params, consts):
    """f(params) (NumPy)."""
    return value_and_grad(params, consts)[0]


def grad(params, consts):
    """grad f(params) (NumPy)."""
    return value_and_grad(params, consts)[1]


def value_jax(params, consts):
    """The same objective in jax.numpy (for the generator's cross-check)."""
    import jax.numpy as jnp

    def h(x):
        y = x * (1.0 / DELTA)
        return x * x / (1.0 + jnp.sqrt(1.0 + y * y))
    w, b = params["w"], params["b"]
    e, s = params["extra"]
    X, c = consts["X"], consts["c"]
    r1 = (X @ w + b) - consts["zs"]
    dw = w - consts["ws"]
    ds = s - consts["ss"]
    r2 = (e - consts["es"]) + c * ds
    r3 = (jnp.mean(b) - consts["bbar"]) + ds
    return (jnp.sum(h(r1)) / N + 0.5 * LAM * jnp.sum(dw * dw)
            + 0.5 * (jnp.sum(r2 * r2) + r3 * r3) + h(2.0 * ds))


def flatten(tree):
    """Leaves in JAX order (dict keys sorted): b, extra[0], extra[1], w."""
    return [np.asarray(tree["b"]), np.asarray(tree["extra"][0]),
            np.asarray(tree["extra"][1]), np.asarray(tree["w"])]


def ravel(tree):
    return np.concatenate([np.ravel(x) for x in flatten(tree)])
