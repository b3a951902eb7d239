"""The 16-bit-params test problem shared by make_narrow_reference.py and
tests/test_narrow_reference.py (pure NumPy + ml_dtypes: the tests import it
without JAX).

params = {'b': (5,), 'w': (6, 5), 'z': ()} in float16 or bfloat16
(``ml_dtypes.bfloat16``, JAX's), 36 numbers; and float32 params for the
cases whose *state* is 16-bit (adam's ``mu_dtype``, sgd's
``accumulator_dtype``).

The gradient is the descent direction of the separable quadratic
``0.5 sum d (p - target)^2`` plus noise,

    g = d * (p - target) + s_t * noise,

computed in NumPy in float32 (``p`` widened exactly to float32; ``d`` in
[0.5, 2], ``target`` and ``noise`` float32; ``s_t = 0.1 cos(0.3 t)`` in
float64 by the C library's ``math.cos``, then rounded to float32), then
rounded once to the params' dtype, so that optax and npopt are fed the same
16-bit gradients bit for bit on every machine (float32 multiply and add are
correctly rounded; no FMA in separate NumPy ufuncs).
"""
import math

import ml_dtypes
import numpy as np

STEPS = 50
CHECKPOINTS = (1, 2, 10, 50)
SHAPES = {"b": (5,), "w": (6, 5), "z": ()}
KEYS = tuple(sorted(SHAPES))          # JAX's leaf order for a dict
NARROW_DTYPES = ("float16", "bfloat16")
SEED = 20261207

bfloat16 = ml_dtypes.bfloat16


def np_dtype(name):
    """numpy dtype of a dtype key ("float16", "bfloat16", "float32")."""
    return np.dtype(bfloat16) if name == "bfloat16" else np.dtype(name)


# name -> (optax expression over ``ox``, evaluated with ox = optax in the
# generator and ox = npopt in the tests; the params dtypes it runs on).
# The elementwise aliases npopt supports on 16-bit params, learning rates
# from optax's alias_test (1e-2 .. 1e-1), and the 16-bit states of float32
# params.
N = NARROW_DTYPES
CASES = {
    "adabelief": ("ox.adabelief(1e-2)", N),
    "adadelta": ("ox.adadelta(0.1)", N),
    "adagrad": ("ox.adagrad(0.1)", N),
    "adam": ("ox.adam(1e-1)", N),
    "adam_nesterov": ("ox.adam(1e-2, b1=0.8, b2=0.99, nesterov=True)", N),
    "adamax": ("ox.adamax(1e-1)", N),
    "adamaxw": ("ox.adamaxw(1e-1, weight_decay=0.05)", N),
    "adamw": ("ox.adamw(1e-1, weight_decay=0.1)", N),
    "adan": ("ox.adan(1e-1)", N),
    "amsgrad": ("ox.amsgrad(1e-1)", N),
    "lion": ("ox.lion(1e-2, weight_decay=1e-4)", N),
    "nadam": ("ox.nadam(1e-2)", N),
    "nadamw": ("ox.nadamw(1e-2, weight_decay=0.05)", N),
    "radam": ("ox.radam(5e-2)", N),
    "rmsprop": ("ox.rmsprop(1e-2)", N),
    "rmsprop_momentum": ("ox.rmsprop(1e-2, momentum=0.9)", N),
    "rmsprop_centered": ("ox.rmsprop(1e-2, centered=True, initial_scale=1.0)", N),
    "rprop": ("ox.rprop(1e-1)", N),
    "sgd": ("ox.sgd(0.05)", N),
    "sgd_momentum": ("ox.sgd(0.05, momentum=0.9)", N),
    "sgd_nesterov": ("ox.sgd(0.05, momentum=0.9, nesterov=True)", N),
    "sign_sgd": ("ox.sign_sgd(1e-1)", N),
    "signum": ("ox.signum(1e-2)", N),
    "yogi": ("ox.yogi(1e-1)", N),
    "adamw_mask": ("ox.adamw(1e-2, weight_decay=0.1, mask={'b': False, 'w': True, 'z': True})", N),
    "ema_debias": ("ox.chain(ox.ema(0.9), ox.scale_by_learning_rate(0.05))", N),
    "trace_cosine": ("ox.chain(ox.trace(0.9), ox.scale_by_learning_rate("
                     "ox.cosine_decay_schedule(0.05, STEPS, alpha=0.1)))", N),
    "chain_adam_wd_cosine": ("ox.chain(ox.scale_by_adam(), ox.add_decayed_weights(1e-2), "
                             "ox.scale_by_learning_rate(ox.cosine_decay_schedule(1e-2, STEPS)))", N),
    "adam_mu_bf16": ("ox.adam(1e-2, mu_dtype=bfloat16)", ("float32",)),
    "sgd_momentum_acc_bf16": ("ox.sgd(1e-2, momentum=0.9, accumulator_dtype=bfloat16)", ("float32",)),
}


def build(name, module):
    """The optimizer of case ``name`` from ``module`` (optax or npopt)."""
    return eval(CASES[name][0], {"ox": module, "np": np, "STEPS": STEPS, "bfloat16": bfloat16})


def dtypes_of(name):
    return CASES[name][1]


def make_problem(dtype):
    """Returns (params0, consts) for a dtype key; consts = dict of float32
    pytrees target, d, noise. params0 = standard normal draws rounded once
    from float64 to the params' dtype."""
    dt = np_dtype(dtype)
    rng = np.random.default_rng(SEED)
    out = {n: {} for n in ("params", "target", "d", "noise")}
    for k in KEYS:
        s = SHAPES[k]
        out["params"][k] = np.asarray(rng.standard_normal(s), np.float64).astype(dt)
        out["target"][k] = np.asarray(rng.standard_normal(s), np.float32)
        out["d"][k] = np.asarray(rng.uniform(0.5, 2.0, s), np.float32)
        out["noise"][k] = np.asarray(rng.standard_normal(s), np.float32)
    return out["params"], {"target": out["target"], "d": out["d"], "noise": out["noise"]}


def scale(t):
    """s_t = 0.1 cos(0.3 t), computed in float64, rounded to float32."""
    return np.float32(0.1 * math.cos(0.3 * t))


def grads(params, consts, t):
    """The gradient at step t (t = 0 for the first update): computed in
    float32, then rounded once to the params' dtype."""
    out = {}
    s = scale(t)
    for k in KEYS:
        p = np.asarray(params[k])
        p32 = p.astype(np.float32)
        g = consts["d"][k] * (p32 - consts["target"][k]) + s * consts["noise"][k]
        out[k] = np.asarray(np.asarray(g, np.float32).astype(p.dtype))
    return out


def loss(params, consts):
    """0.5 * sum d (p - target)^2 in float64."""
    total = 0.0
    for k in KEYS:
        p = np.asarray(params[k]).astype(np.float64)
        d = np.asarray(consts["d"][k], np.float64)
        r = p - np.asarray(consts["target"][k], np.float64)
        total += float(0.5 * np.sum(d * r * r))
    return total


def to_stored(a):
    """An array as np.savez can store it: bfloat16 as its uint16 bits
    (np.load reads ml_dtypes' bfloat16 back as raw void); the dtype goes
    into meta."""
    a = np.asarray(a)
    return a.view(np.uint16) if a.dtype == np.dtype(bfloat16) else a


def from_stored(a, dtype):
    """The inverse of ``to_stored``, ``dtype`` the name recorded in meta."""
    a = np.asarray(a)
    if dtype == "bfloat16":
        assert a.dtype == np.uint16, a.dtype
        return a.view(bfloat16)
    assert a.dtype == np.dtype(dtype), (a.dtype, dtype)
    return a


def _bits(dtype):
    return {2: np.uint16, 4: np.uint32, 8: np.uint64}[np.dtype(dtype).itemsize]


def pack_steps(a):
    """(STEPS, n) params rows -> their bit patterns, each row minus the one
    before (modulo 2^bits, row 0 kept): consecutive steps share most of
    their bits, so the differences compress (lossless; ``unpack_steps``)."""
    a = np.asarray(a)
    b = a.view(_bits(a.dtype))
    out = b.copy()
    out[1:] = b[1:] - b[:-1]          # unsigned: wraps modulo 2^bits
    return out


def unpack_steps(a, dtype):
    """The inverse of ``pack_steps``: the rows in ``dtype`` (a name from meta)."""
    a = np.asarray(a)
    dt = np_dtype(dtype)
    assert a.dtype == _bits(dt), (a.dtype, dtype)
    return np.cumsum(a, axis=0, dtype=a.dtype).view(dt)


def ravel(tree):
    """The leaves in JAX order (sorted keys), raveled and concatenated."""
    return np.concatenate([np.ravel(np.asarray(tree[k])) for k in KEYS])


def segments():
    """[(key, (start, stop))] of each leaf in ``ravel``'s output."""
    out, off = [], 0
    for k in KEYS:
        n = int(np.prod(SHAPES[k], dtype=np.int64))
        out.append((k, (off, off + n)))
        off += n
    return out
