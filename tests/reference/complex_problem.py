"""The complex-params test problem shared by make_complex_reference.py and
tests/test_complex_reference.py (pure NumPy: the tests import it without JAX).

params = {'b': (5,), 'w': (6, 5), 'z': ()}, complex64 or complex128 leaves
(36 numbers: small enough to store every element at every checkpoint of
every case in one file of < 300 kB).

The gradient is the descent direction of the separable quadratic
``0.5 sum d |p - target|^2`` plus noise (what optax's alias_test passes to
``update``: the conjugate of ``jax.grad``),

    g = d * (p - target) + s_t * noise,

``d`` real in [0.5, 2], ``target`` and ``noise`` complex, ``s_t = 0.1 cos(0.3 t)``
in float64 cast to the params' real dtype.  It is written out on the real
and imaginary parts in the real dtype (the same bits as NumPy's complex
arithmetic here, as ``d`` and ``s_t`` are real, but without NumPy's SIMD
complex multiply, which fuses with FMA on some CPUs), and ``cos`` is the C
library's (``math.cos``), so the gradients are the same on every machine.
"""
import math

import numpy as np

STEPS = 50
CHECKPOINTS = (1, 2, 10, 50)
SHAPES = {"b": (5,), "w": (6, 5), "z": ()}
KEYS = tuple(sorted(SHAPES))          # JAX's leaf order for a dict
COMPLEX_DTYPES = ("complex64", "complex128")
SEED = 20261207

# name -> optax expression over ``ox`` (optax in the generator, npopt in the
# tests), evaluated as eval(expr, {"ox": module, "np": numpy}).  The aliases
# optax supports on complex params (those its alias_test does not skip), a
# few settings each, and complex-aware building blocks (global-norm clipping,
# decoupled weight decay, ema / trace, a schedule).
CASES = {
    "adabelief": "ox.adabelief(1e-2)",
    "adafactor": "ox.adafactor(5e-3)",
    # factored second moments (the 6 x 5 leaf is factored when
    # min_dim_size_to_factor <= 5).  Not with momentum: optax keeps
    # adafactor's momentum in float32 (dtype_momentum), which drops the
    # imaginary part of the complex ema between steps.
    "adafactor_factored": "ox.adafactor(1e-2, min_dim_size_to_factor=4)",
    "adagrad": "ox.adagrad(0.1)",
    "adam": "ox.adam(1e-2)",
    "adam_nesterov_epsroot": "ox.adam(1e-2, b1=0.8, b2=0.99, eps_root=1e-8, nesterov=True)",
    "adamax": "ox.adamax(1e-2)",
    "adamaxw": "ox.adamaxw(1e-2, weight_decay=0.05)",
    "adamw": "ox.adamw(1e-2, weight_decay=0.1)",
    "adamw_mask": "ox.adamw(1e-2, weight_decay=0.1, mask={'b': False, 'w': True, 'z': True})",
    "amsgrad": "ox.amsgrad(1e-2)",
    "lamb": "ox.lamb(1e-2)",
    "lars": "ox.lars(0.5, weight_decay=1e-3)",
    "nadam": "ox.nadam(1e-2)",
    "nadamw": "ox.nadamw(1e-2, weight_decay=0.05)",
    "novograd": "ox.novograd(1e-2)",
    "optimistic_adam_v2": "ox.optimistic_adam_v2(1e-2)",
    "radam": "ox.radam(1e-2)",
    "rmsprop": "ox.rmsprop(1e-2, eps=1e-4)",
    "rmsprop_momentum": "ox.rmsprop(1e-2, momentum=0.9, eps=1e-4)",
    "rmsprop_centered": "ox.rmsprop(1e-2, centered=True, initial_scale=1.0, eps=1e-4)",
    "sgd": "ox.sgd(0.05)",
    "sgd_momentum": "ox.sgd(0.05, momentum=0.9)",
    "sgd_nesterov": "ox.sgd(0.05, momentum=0.9, nesterov=True)",
    "yogi": "ox.yogi(1e-2)",
    # optax's alias_test skips these two on complex params, but their blocks
    # (trust ratio of real norms, weight decay; a linear recursion) are
    # defined for them
    "fromage": "ox.fromage(5e-3)",
    "optimistic_gd": "ox.optimistic_gradient_descent(2e-3, alpha=0.7, beta=0.1)",
    "chain_clip_adam": "ox.chain(ox.clip_by_global_norm(1.0), ox.adam(1e-2))",
    "ema_debias": "ox.chain(ox.ema(0.9), ox.scale_by_learning_rate(0.05))",
    "trace_cosine": "ox.chain(ox.trace(0.9), ox.scale_by_learning_rate("
                    "ox.cosine_decay_schedule(0.05, STEPS, alpha=0.1)))",
}


def build(name, module):
    """The optimizer of case ``name`` from ``module`` (optax or npopt)."""
    return eval(CASES[name], {"ox": module, "np": np, "STEPS": STEPS})


def real_dtype(dtype):
    return np.finfo(np.dtype(dtype)).dtype


def _complex(re, im, dtype):
    z = np.empty(np.shape(re), np.dtype(dtype))
    z.real = re
    z.imag = im
    return z


def make_problem(dtype):
    """Returns (params0, consts) for a complex dtype; consts = dict of
    pytrees target (complex), d (real dtype), noise (complex)."""
    dtype = np.dtype(dtype)
    assert dtype.kind == "c", dtype
    rd = real_dtype(dtype)
    rng = np.random.default_rng(SEED)
    out = {n: {} for n in ("params", "target", "d", "noise")}
    for k in KEYS:
        s = SHAPES[k]
        out["params"][k] = _complex(rng.standard_normal(s), rng.standard_normal(s), dtype)
        out["target"][k] = _complex(rng.standard_normal(s), rng.standard_normal(s), dtype)
        out["d"][k] = np.asarray(rng.uniform(0.5, 2.0, s), rd)
        out["noise"][k] = _complex(rng.standard_normal(s), rng.standard_normal(s), dtype)
    return out["params"], {"target": out["target"], "d": out["d"], "noise": out["noise"]}


def scale(t, dtype):
    """s_t = 0.1 cos(0.3 t), computed in float64, in the real dtype of ``dtype``."""
    return real_dtype(dtype).type(0.1 * math.cos(0.3 * t))


def grads(params, consts, t):
    """The gradient (descent direction) at step t (t = 0 for the first
    update), in the params' complex dtype."""
    out = {}
    for k in KEYS:
        p = np.asarray(params[k])
        rd = real_dtype(p.dtype)
        s = scale(t, p.dtype)
        tg, d, nz = consts["target"][k], consts["d"][k], consts["noise"][k]
        re = np.asarray(d * (p.real - tg.real) + s * nz.real, rd)
        im = np.asarray(d * (p.imag - tg.imag) + s * nz.imag, rd)
        out[k] = _complex(re, im, p.dtype)
    return out


def loss(params, consts):
    """0.5 * sum d |p - target|^2 in float64."""
    total = 0.0
    for k in KEYS:
        p = np.asarray(params[k])
        tg = consts["target"][k]
        d = np.asarray(consts["d"][k], np.float64)
        dr = np.asarray(p.real, np.float64) - np.asarray(tg.real, np.float64)
        di = np.asarray(p.imag, np.float64) - np.asarray(tg.imag, np.float64)
        total += float(0.5 * np.sum(d * (dr * dr + di * di)))
    return total


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
