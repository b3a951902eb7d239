"""The test problem shared by the reference generator and the tests.

Both sides build the same params pytree and compute gradients with the same
NumPy code (never with JAX), so a stored optax trajectory can be replayed by
npopt without JAX installed.

params = {'b': (160,), 'extra': [(3, 5), ()], 'w': (128, 160)}

The gradient is that of a separable noisy quadratic,
``g = d * (p - target) + s_t * noise``, evaluated leaf by leaf in the
params' dtype, with ``s_t = 0.1 * cos(0.3 t)`` computed in float64 and cast.
"""
import numpy as np

STEPS = 100
CHECKPOINTS = (1, 2, 10, 100)
SHAPES = {"b": (160,), "extra": [(3, 5), ()], "w": (128, 160)}


def _build(shapes, rng, dtype, scale, shift):
    if isinstance(shapes, dict):
        return {k: _build(shapes[k], rng, dtype, scale, shift) for k in sorted(shapes)}
    if isinstance(shapes, list):
        return [_build(s, rng, dtype, scale, shift) for s in shapes]
    return (shift + scale * rng.standard_normal(shapes)).astype(dtype)


def make_problem(dtype):
    """Returns (params0, consts), consts = dict of pytrees target, d, noise."""
    rng = np.random.default_rng(20261124)
    params0 = _build(SHAPES, rng, dtype, 1.0, 0.0)
    target = _build(SHAPES, rng, dtype, 1.0, 0.0)
    d = _build(SHAPES, rng, dtype, 0.0, 0.0)
    d = _map(lambda x: np.asarray(rng.uniform(0.5, 2.0, x.shape), dtype), d)
    noise = _build(SHAPES, rng, dtype, 1.0, 0.0)
    return params0, {"target": target, "d": d, "noise": noise}


def _map(f, *trees):
    t = trees[0]
    if isinstance(t, dict):
        return {k: _map(f, *[x[k] for x in trees]) for k in t}
    if isinstance(t, (list, tuple)):
        return type(t)(_map(f, *xs) for xs in zip(*trees))
    return f(*trees)


def grads(params, consts, t, nan_steps=()):
    """Gradient at step t (t = 0 for the first update), in params' dtype.

    At the steps listed in ``nan_steps`` the first element of leaf 'b' is NaN
    (for apply_if_finite / zero_nans cases).
    """
    def one(p, target, d, noise):
        p = np.asarray(p)
        s = p.dtype.type(0.1 * np.cos(0.3 * t))
        return (d * (p - target) + s * noise).astype(p.dtype)
    g = _map(one, params, consts["target"], consts["d"], consts["noise"])
    if t in nan_steps:
        g["b"] = g["b"].copy()
        g["b"][0] = np.nan
    return g


def loss(params, consts):
    """0.5 * sum d (p - target)^2 in float64 (for polyak-type rules)."""
    leaves = []
    _map(lambda p, tg, d: leaves.append(float(0.5 * np.sum(np.float64(d) * (np.float64(p) - tg) ** 2))),
         params, consts["target"], consts["d"])
    return sum(leaves)


def flatten(tree):
    """Leaves in JAX order (dict keys sorted), as a list of arrays."""
    out = []
    _map(lambda x: out.append(np.asarray(x)), tree)
    return out


def ravel(tree):
    return np.concatenate([np.ravel(x) for x in flatten(tree)])
