"""Generate tests/reference/data/schedules.npz from optax 0.2.8.

Regenerate (needs the ``reference`` extra: ``pip install -e .[reference]``,
i.e. jax and optax==0.2.8)::

    python tests/reference/make_schedules.py

Each configuration in ``CONFIGS`` is built with optax, jitted, and called
with ``jnp.int32(c)`` for ``c = 0 .. N_COUNTS - 1`` with ``jax_enable_x64``
on -- the way optax's transforms call a schedule.  The npz holds

* ``configs``: a JSON string, a list of ``{"name", "fn", "kwargs", "dtype",
  "weak_type", "transcendental"}``.  ``kwargs`` is JSON: a dict
  ``boundaries_and_scales`` is written ``{"__pairs__": [[step, scale], ...]}``
  (JSON keys would be strings) and a nested schedule (``join_schedules``'s
  ``schedules``) is ``{"__schedule__": {"fn": ..., "kwargs": ...}}``, so the
  tests can rebuild each schedule with npopt without JAX.  ``transcendental``
  lists the non-IEEE-exact functions optax evaluates (``"cos32"``, ``"cos64"``,
  ``"pow32"``, ``"pow64"``); ``dtype``/``weak_type`` are those of optax's
  jitted output.
* ``values_<i>``: optax's values at counts ``0 .. N_COUNTS - 1`` for config
  ``i``, in optax's output dtype.
"""
import json
import os
import sys

import numpy as np

N_COUNTS = 301
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "schedules.npz")


def _pairs(d):
    return {"__pairs__": [[int(k), v] for k, v in d.items()]}


def _s(fn, **kwargs):
    return {"__schedule__": {"fn": fn, "kwargs": kwargs}}


# (name, schedule function, kwargs, transcendental functions optax evaluates)
CONFIGS = [
    ("constant", "constant_schedule", dict(value=0.1), []),
    ("constant_small", "constant_schedule", dict(value=3e-4), []),
    ("poly_int_power_begin", "polynomial_schedule",
     dict(init_value=1.0, end_value=0.01, power=2, transition_steps=100, transition_begin=5), []),
    ("poly_float_power", "polynomial_schedule",
     dict(init_value=1e-2, end_value=1e-4, power=2.0, transition_steps=80, transition_begin=5),
     ["pow32"]),
    ("poly_power3", "polynomial_schedule",
     dict(init_value=0.3, end_value=0.0, power=3, transition_steps=37), []),
    ("poly_power_half", "polynomial_schedule",
     dict(init_value=0.5, end_value=0.1, power=0.5, transition_steps=64), ["pow32"]),
    ("poly_no_steps", "polynomial_schedule",
     dict(init_value=0.25, end_value=0.0, power=1, transition_steps=0), []),
    ("poly_negative_begin", "polynomial_schedule",
     dict(init_value=0.2, end_value=0.02, power=1, transition_steps=120, transition_begin=-3), []),
    ("linear", "linear_schedule", dict(init_value=1e-2, end_value=1e-3, transition_steps=50), []),
    ("linear_begin", "linear_schedule",
     dict(init_value=0.0, end_value=0.7, transition_steps=33, transition_begin=10), []),
    ("piecewise_constant", "piecewise_constant_schedule",
     dict(init_value=0.1, boundaries_and_scales=_pairs({30: 0.5, 60: 0.2})), []),
    ("piecewise_constant_edges", "piecewise_constant_schedule",
     dict(init_value=1.0,
          boundaries_and_scales=_pairs({0: 0.3, 100: 0.1, 101: 10.0, 250: 0.0})), []),
    ("piecewise_constant_none", "piecewise_constant_schedule", dict(init_value=0.05), []),
    ("exp_decay", "exponential_decay",
     dict(init_value=0.05, transition_steps=10, decay_rate=0.9), ["pow32"]),
    ("exp_decay_staircase_end", "exponential_decay",
     dict(init_value=0.05, transition_steps=7, decay_rate=0.5, transition_begin=20,
          staircase=True, end_value=1e-3), ["pow32"]),
    ("exp_growth_end", "exponential_decay",
     dict(init_value=0.01, transition_steps=13, decay_rate=1.05, end_value=0.02), ["pow32"]),
    ("exp_decay_underflow", "exponential_decay",
     dict(init_value=0.1, transition_steps=2, decay_rate=0.5), ["pow32"]),
    ("exp_decay_no_steps", "exponential_decay",
     dict(init_value=0.1, transition_steps=0, decay_rate=0.5), []),
    ("exp_decay_zero_rate", "exponential_decay",
     dict(init_value=0.1, transition_steps=10, decay_rate=0.0), []),
    ("cosine", "cosine_decay_schedule", dict(init_value=1e-2, decay_steps=100, alpha=0.1),
     ["cos64"]),
    ("cosine_exponent_float", "cosine_decay_schedule",
     dict(init_value=1.0, decay_steps=250, alpha=0.0, exponent=2.0), ["cos64", "pow64"]),
    ("cosine_exponent_int", "cosine_decay_schedule",
     dict(init_value=0.3, decay_steps=77, alpha=0.05, exponent=2), ["cos64"]),
    ("cosine_one_step", "cosine_decay_schedule", dict(init_value=0.5, decay_steps=1), ["cos64"]),
    ("warmup_constant", "warmup_constant_schedule",
     dict(init_value=0.0, peak_value=0.1, warmup_steps=20), []),
    ("warmup_cosine", "warmup_cosine_decay_schedule",
     dict(init_value=0.0, peak_value=1e-2, warmup_steps=10, decay_steps=100, end_value=1e-4),
     ["cos64"]),
    ("warmup_cosine_exponent", "warmup_cosine_decay_schedule",
     dict(init_value=1e-4, peak_value=3e-3, warmup_steps=25, decay_steps=200, end_value=0.0,
          exponent=1.5), ["cos64", "pow64"]),
    ("warmup_cosine_zero_peak", "warmup_cosine_decay_schedule",
     dict(init_value=0.0, peak_value=0.0, warmup_steps=5, decay_steps=50), ["cos64"]),
    ("warmup_exp", "warmup_exponential_decay_schedule",
     dict(init_value=0.0, peak_value=1e-2, warmup_steps=10, transition_steps=20, decay_rate=0.5),
     ["pow32"]),
    ("warmup_exp_all_options", "warmup_exponential_decay_schedule",
     dict(init_value=1e-3, peak_value=0.1, warmup_steps=15, transition_steps=9, decay_rate=0.8,
          transition_begin=12, staircase=True, end_value=5e-3), ["pow32"]),
    ("interp_linear", "piecewise_interpolate_schedule",
     dict(interpolate_type="linear", init_value=1.0,
          boundaries_and_scales=_pairs({4: 0.1, 8: 0.01})), []),
    ("interp_cosine", "piecewise_interpolate_schedule",
     dict(interpolate_type="cosine", init_value=2.0,
          boundaries_and_scales=_pairs({50: 0.5, 120: 0.1, 121: 3.0, 200: 0.2})), ["cos32"]),
    ("interp_linear_none", "piecewise_interpolate_schedule",
     dict(interpolate_type="linear", init_value=0.3), []),
    ("interp_cosine_zero_bound", "piecewise_interpolate_schedule",
     dict(interpolate_type="cosine", init_value=0.3,
          boundaries_and_scales=_pairs({0: 2.0, 77: 0.25})), ["cos32"]),
    ("linear_onecycle", "linear_onecycle_schedule", dict(transition_steps=100, peak_value=0.1),
     []),
    ("linear_onecycle_custom", "linear_onecycle_schedule",
     dict(transition_steps=250, peak_value=1e-3, pct_start=0.25, pct_final=0.9,
          div_factor=10.0, final_div_factor=100.0), []),
    ("cosine_onecycle", "cosine_onecycle_schedule", dict(transition_steps=100, peak_value=0.1),
     ["cos32"]),
    ("cosine_onecycle_custom", "cosine_onecycle_schedule",
     dict(transition_steps=280, peak_value=2e-3, pct_start=0.2, div_factor=5.0,
          final_div_factor=50.0), ["cos32"]),
    ("join_const_linear_cosine", "join_schedules",
     dict(schedules=[_s("constant_schedule", value=0.1),
                     _s("linear_schedule", init_value=0.1, end_value=0.0, transition_steps=100),
                     _s("cosine_decay_schedule", init_value=0.05, decay_steps=60)],
          boundaries=[50, 150]), ["cos64"]),
    ("join_weak_strong_f64", "join_schedules",
     dict(schedules=[_s("cosine_decay_schedule", init_value=1.0, decay_steps=40),
                     _s("piecewise_constant_schedule", init_value=0.5,
                        boundaries_and_scales=_pairs({10: 0.5})),
                     _s("piecewise_interpolate_schedule", interpolate_type="linear",
                        init_value=0.2, boundaries_and_scales=_pairs({30: 0.1}))],
          boundaries=[40, 100]), ["cos64"]),
    ("join_f64_f32_f64_chain", "join_schedules",
     dict(schedules=[_s("cosine_decay_schedule", init_value=0.7, decay_steps=30),
                     _s("linear_schedule", init_value=0.3, end_value=0.1, transition_steps=30),
                     _s("piecewise_interpolate_schedule", interpolate_type="linear",
                        init_value=0.1, boundaries_and_scales=_pairs({100: 0.3}))],
          boundaries=[30, 60]), ["cos64"]),
    ("join_unsorted_boundaries", "join_schedules",
     dict(schedules=[_s("linear_schedule", init_value=1.0, end_value=0.0, transition_steps=200),
                     _s("exponential_decay", init_value=0.5, transition_steps=10,
                        decay_rate=0.8),
                     _s("constant_schedule", value=0.01)],
          boundaries=[100, 50]), ["pow32"]),
    ("sgdr", "sgdr_schedule",
     dict(cosine_kwargs=[
         dict(init_value=0.0, peak_value=1.0, warmup_steps=5, decay_steps=50),
         dict(init_value=0.1, peak_value=0.5, warmup_steps=10, decay_steps=100, end_value=0.01),
         dict(init_value=0.0, peak_value=0.2, warmup_steps=0, decay_steps=80, exponent=2.0)]),
     ["cos64", "pow64"]),
]


def decode(module, obj):
    """JSON kwargs -> Python objects (``module``: optax.schedules or npopt.schedules)."""
    if isinstance(obj, dict):
        if "__pairs__" in obj:
            return {int(k): v for k, v in obj["__pairs__"]}
        if "__schedule__" in obj:
            return build(module, obj["__schedule__"]["fn"], obj["__schedule__"]["kwargs"])
        return {k: decode(module, v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode(module, v) for v in obj]
    return obj


def build(module, fn, kwargs):
    return getattr(module, fn)(**decode(module, kwargs))


def main():
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import optax
    assert optax.__version__ == "0.2.8", optax.__version__
    import optax.schedules as S

    meta, arrays = [], {}
    for i, (name, fn, kwargs, trans) in enumerate(CONFIGS):
        sched = jax.jit(build(S, fn, kwargs))
        outs = [sched(jnp.int32(c)) for c in range(N_COUNTS)]
        dtypes = {str(o.dtype) for o in outs}
        assert len(dtypes) == 1, (name, dtypes)
        weak = bool(outs[0].weak_type)
        vals = np.array([np.asarray(o) for o in outs])
        arrays[f"values_{i}"] = vals
        meta.append(dict(name=name, fn=fn, kwargs=kwargs, dtype=str(vals.dtype),
                         weak_type=weak, transcendental=trans))
        print(f"{name:28s} {vals.dtype} weak={weak}")
    arrays["configs"] = np.array(json.dumps(meta))
    arrays["versions"] = np.array(json.dumps(
        dict(jax=jax.__version__, optax=optax.__version__, numpy=np.__version__,
             platform=sys.platform, backend=jax.default_backend())))
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
