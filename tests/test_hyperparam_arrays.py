"""Hyperparameters given as 0-d arrays (as optax accepts jnp scalars).

JAX treats a 0-d array like a NumPy scalar of its dtype (strongly typed);
so does npopt: every alias built with 0-d arrays gives, on both paths and
both dtypes, bit for bit what it gives with NumPy scalars of the same values
(whose numbers against optax the reference tests check).
"""
import inspect
import warnings

import numpy as np
import pytest

import npopt

ALIASES = ["adabelief", "adadelta", "adafactor", "adagrad", "adam", "adamax", "adamaxw",
           "adamw", "adan", "amsgrad", "fromage", "lamb", "lars", "lion", "nadam", "nadamw",
           "noisy_sgd", "novograd", "optimistic_adam", "optimistic_adam_v2",
           "optimistic_gradient_descent", "radam", "rmsprop", "rprop", "sgd", "sign_sgd",
           "signum", "sm3", "yogi",
           # optax.contrib's (those driven by grads alone)
           "contrib.acprop", "contrib.adopt", "contrib.ademamix", "contrib.simplified_ademamix",
           "contrib.madgrad", "contrib.cocob", "contrib.schedule_free_adamw",
           "contrib.schedule_free_sgd", "contrib.prodigy", "contrib.dadapt_adamw",
           "contrib.dog", "contrib.dowg", "contrib.muon", "contrib.galore",
           "contrib.momo", "contrib.momo_adam"]


def _build(name, number):
    """The alias with every float hyperparameter that has a non-zero default
    (and the learning rate) given as ``number(value)``."""
    f = npopt
    for part in name.split("."):
        f = getattr(f, part)
    params = inspect.signature(f).parameters
    kw = {k: number(p.default) for k, p in params.items()
          if isinstance(p.default, float) and p.default != 0.0}
    if "learning_rate" in params:
        kw["learning_rate"] = number(0.01)
    if name == "noisy_sgd":
        kw["key"] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f(**kw)


def _run(opt, path, dtype):
    rng = np.random.default_rng(0)
    p = {"w": rng.standard_normal((4, 3)).astype(dtype), "b": rng.standard_normal(3).astype(dtype)}
    state = opt.init(p)
    for t in range(4):
        g = {k: np.cos(t + 2 * v).astype(dtype) for k, v in p.items()}
        kw = {"value": np.float64(1.0 / (t + 1))}       # momo's loss (ignored by the rest)
        if path == "update":
            u, state = opt.update(g, state, p, **kw)
            p = npopt.apply_updates(p, u)
        else:
            p, state = opt.step(p, g, state, **kw)
    return p


@pytest.mark.parametrize("name", ALIASES)
def test_zero_d_arrays_are_numpy_scalars(name):
    for dtype in (np.float64, np.float32):
        for path in ("update", "step"):
            want = _run(_build(name, np.float64), path, dtype)
            got = _run(_build(name, np.asarray), path, dtype)
            for k in want:
                assert got[k].dtype == want[k].dtype == dtype
                assert got[k].tobytes() == want[k].tobytes(), (name, path, dtype, k)


def test_zero_d_array_checked_as_a_number():
    with pytest.raises(ValueError, match="b1: expected a finite number"):
        npopt.adam(1e-3, b1=np.asarray(1.5))
    with pytest.raises(ValueError, match="b1: expected a finite number"):
        npopt.adam(1e-3, b1=np.ones(2))          # not 0-d
