"""The small problem of make_contrib3_reference.py (pure NumPy: the tests
import it without JAX).

params = {'a': (4, 3), 'b': (5,)}. Two gradient sources:

* ``grads(params, t)``: the gradient of the separable quadratic
  ``0.5 sum d (p - target)^2`` plus ``s_t * noise`` (s_t = 0.1 cos(0.3 t)),
  in the params' dtype; its Hessian is ``diag(d)`` (``hvp``), so Hutchinson's
  ``v * (H v) = d`` for any signs v;
* ``per_example_grads(params, t)``: B = 6 examples, ``w_b (p - x_b)`` with a
  leading batch axis (DP-SGD's input), weights spread so that some examples
  are clipped and some are not.
"""
import numpy as np

SHAPES = {"a": (4, 3), "b": (5,)}
STEPS = 40
BATCH = 6


def _tree(rng, dtype, f):
    return {k: np.asarray(f(rng, SHAPES[k]), dtype) for k in sorted(SHAPES)}


def make(dtype):
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(7)
    params0 = _tree(rng, dtype, lambda r, s: r.standard_normal(s))
    target = _tree(rng, dtype, lambda r, s: r.standard_normal(s))
    d = _tree(rng, dtype, lambda r, s: r.uniform(0.5, 2.0, s))
    noise = _tree(rng, dtype, lambda r, s: r.standard_normal(s))
    xs = _tree(rng, dtype, lambda r, s: r.standard_normal((BATCH,) + s))
    w = np.asarray(rng.uniform(0.05, 1.0, BATCH), dtype)
    return params0, dict(target=target, d=d, noise=noise, xs=xs, w=w)


def grads(params, c, t):
    out = {}
    for k in sorted(SHAPES):
        p = np.asarray(params[k])
        s = p.dtype.type(0.1 * np.cos(0.3 * t))
        out[k] = (c["d"][k] * (p - c["target"][k]) + s * c["noise"][k]).astype(p.dtype)
    return out


def per_example_grads(params, c, t):
    out = {}
    for k in sorted(SHAPES):
        p = np.asarray(params[k])
        w = c["w"].reshape((-1,) + (1,) * p.ndim)
        out[k] = (w * (p[None] - c["xs"][k])).astype(p.dtype)
    return out


def hvp(params, v, c):
    return {k: c["d"][k] * np.asarray(v[k]) for k in sorted(SHAPES)}


def ravel(tree):
    return np.concatenate([np.asarray(tree[k]).reshape(-1) for k in sorted(SHAPES)])


def make_complex(dtype):
    """A complex leaf 'a' (complex64 for float32, complex128 for float64)
    beside the real 'b', for split_real_and_imaginary."""
    params0, c = make(dtype)
    ct = np.result_type(np.dtype(dtype), np.complex64)
    rng = np.random.default_rng(11)
    params0 = dict(params0, a=(params0["a"] + 1j * rng.standard_normal((4, 3))).astype(ct))
    c = dict(c, target=dict(c["target"],
                            a=(c["target"]["a"] - 1j * rng.standard_normal((4, 3))).astype(ct)))
    return params0, c


def ravel_complex(tree):
    """Real and imaginary parts side by side (float view), then 'b'."""
    a = np.asarray(tree["a"])
    return np.concatenate([np.stack([a.real, a.imag], -1).reshape(-1),
                           np.asarray(tree["b"]).reshape(-1)])
