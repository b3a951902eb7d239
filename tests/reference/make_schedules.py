"""Generate tests/reference/data/schedules.npz from optax 0.2.8.

Regenerate (needs the ``reference`` extra: ``pip install -e .[reference]``,
i.e. jax and optax==0.2.8)::

    python tests/reference/make_schedules.py

Each configuration in ``CONFIGS`` is built with optax and called with
``jnp.int32(c)`` with ``jax_enable_x64`` on, jitted (the way optax's
transforms call a schedule) and not jitted (optax's jnp program op by op),
at ``c = 0 .. N_COUNTS - 1`` and, densely, at every count within ``EDGE``
of each boundary and end of the schedule (``boundaries``), plus a few large
counts up to the int32 maximum.  The npz holds

* ``configs``: a JSON string, a list of ``{"name", "fn", "kwargs", "dtype",
  "weak_type", "transcendental", "numpy_hyperparams"}``.  ``kwargs`` is
  JSON: a dict ``boundaries_and_scales`` is written ``{"__pairs__": [[step,
  scale], ...]}`` (JSON keys would be strings), a nested schedule
  (``join_schedules``'s ``schedules``) is ``{"__schedule__": {"fn": ...,
  "kwargs": ...}}`` and a NumPy scalar ``{"__np__": [dtype, value]}``, so
  the tests can rebuild each schedule with npopt without JAX.
  ``transcendental`` lists the non-IEEE-exact functions optax evaluates
  (``"cos32"``, ``"cos64"``, ``"pow32"``, ``"pow64"``); ``dtype``/
  ``weak_type`` are those of optax's jitted output; ``numpy_hyperparams``:
  some hyper-parameters are NumPy scalars (npopt evaluates those op by op,
  as un-jitted optax).
* ``counts_<i>`` (int64): the counts of config ``i``.
* ``values_<i>``: jitted optax's values there, in optax's output dtype.
* ``eager_<i>``: un-jitted optax's values there.
* ``at_end_<i>`` (bool): the counts at or after the end of a polynomial
  transition (``polynomial_schedule``, ``linear_schedule``,
  ``warmup_constant_schedule``, alone or as the active part of a join),
  where optax's formula is exactly its end value and jitted optax keeps an
  FMA residue instead.
* ``fixed_<i>`` (bool): the counts where npopt does not return jitted
  optax's value (npopt's documented policy, see ``npopt.schedules``): at
  the end of a transition whose jitted value is NaN, or negative while the
  transition's end points are not; npopt returns the exact end value there
  (= ``eager``).
"""
import json
import os
import sys

import numpy as np

N_COUNTS = 301
EDGE = 5
LARGE_COUNTS = (1000, 10_000, 1_000_000, 2 ** 31 - 1)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "schedules.npz")


def _pairs(d):
    return {"__pairs__": [[int(k), v] for k, v in d.items()]}


def _s(fn, **kwargs):
    return {"__schedule__": {"fn": fn, "kwargs": kwargs}}


def _np(dtype, value):
    return {"__np__": [dtype, value]}


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
    # -- the end of a transition (jitted optax: FMA residue, of either sign,
    #    NaN under a fractional power), long schedules, every boundary --
    ("linear_int_1_0_99", "linear_schedule",
     dict(init_value=1, end_value=0, transition_steps=99), []),
    ("linear_1_0_3_negative_residue", "linear_schedule",
     dict(init_value=1.0, end_value=0.0, transition_steps=3), []),
    ("linear_long", "linear_schedule",
     dict(init_value=3e-4, end_value=0.0, transition_steps=100_000, transition_begin=1000), []),
    ("linear_increasing", "linear_schedule",
     dict(init_value=0.0, end_value=0.7, transition_steps=1000), []),
    ("poly_half_nan_at_end", "polynomial_schedule",
     dict(init_value=1.0, end_value=0.0, power=0.5, transition_steps=3), ["pow32"]),
    ("poly_1p5_long", "polynomial_schedule",
     dict(init_value=1e-3, end_value=1e-5, power=1.5, transition_steps=2616,
          transition_begin=5), ["pow32"]),
    ("poly_power0", "polynomial_schedule",
     dict(init_value=0.5, end_value=0.1, power=0, transition_steps=7), []),
    ("warmup_constant_long", "warmup_constant_schedule",
     dict(init_value=1e-6, peak_value=3e-4, warmup_steps=4000), []),
    ("cosine_long", "cosine_decay_schedule", dict(init_value=1e-3, decay_steps=100_000),
     ["cos64"]),
    ("warmup_cosine_long", "warmup_cosine_decay_schedule",
     dict(init_value=0.0, peak_value=1e-3, warmup_steps=2000, decay_steps=100_000,
          end_value=1e-5), ["cos64"]),
    ("warmup_cosine_issue", "warmup_cosine_decay_schedule",
     dict(init_value=0.0, peak_value=1.0, warmup_steps=10, decay_steps=100), ["cos64"]),
    ("warmup_cosine_no_warmup_exp", "warmup_cosine_decay_schedule",
     dict(init_value=0.0, peak_value=0.1, warmup_steps=0, decay_steps=777, exponent=0.5),
     ["cos64", "pow64"]),
    ("exp_decay_long_end", "exponential_decay",
     dict(init_value=0.1, transition_steps=1000, decay_rate=0.5, transition_begin=500,
          end_value=1e-4), ["pow32"]),
    ("cosine_onecycle_long", "cosine_onecycle_schedule",
     dict(transition_steps=50_000, peak_value=1e-3), ["cos32"]),
    ("linear_onecycle_long", "linear_onecycle_schedule",
     dict(transition_steps=50_000, peak_value=1e-3), []),
    ("join_linear_past_end", "join_schedules",
     dict(schedules=[_s("linear_schedule", init_value=0.5, end_value=0.0, transition_steps=30),
                     _s("constant_schedule", value=0.01)],
          boundaries=[100]), []),
    ("sgdr_long", "sgdr_schedule",
     dict(cosine_kwargs=[
         dict(init_value=0.0, peak_value=1e-3, warmup_steps=100, decay_steps=5000),
         dict(init_value=0.0, peak_value=5e-4, warmup_steps=100, decay_steps=5000,
              end_value=1e-6)]), ["cos64"]),
    # -- NumPy-scalar hyper-parameters (strong dtypes in JAX) --
    ("np64_linear", "linear_schedule",
     dict(init_value=_np("float64", 0.05), end_value=_np("float64", 0.6),
          transition_steps=17), []),
    ("np32_linear", "linear_schedule",
     dict(init_value=_np("float32", 0.05), end_value=_np("float32", 0.6),
          transition_steps=17), []),
    ("np64_warmup_cosine", "warmup_cosine_decay_schedule",
     dict(init_value=_np("float64", 0.0), peak_value=_np("float64", 1e-3), warmup_steps=50,
          decay_steps=1000, end_value=_np("float64", 1e-5)), ["cos64"]),
    ("np32_warmup_cosine", "warmup_cosine_decay_schedule",
     dict(init_value=_np("float32", 0.0), peak_value=_np("float32", 1e-3), warmup_steps=50,
          decay_steps=1000, end_value=_np("float32", 1e-5)), ["cos64"]),
    ("np64_exp_decay", "exponential_decay",
     dict(init_value=_np("float64", 0.01), transition_steps=37,
          decay_rate=_np("float64", 0.8)), ["pow64"]),
    ("np_int_steps_cosine", "cosine_decay_schedule",
     dict(init_value=1.0, decay_steps=_np("int64", 100)), ["cos64"]),
]


def decode(module, obj):
    """JSON kwargs -> Python objects (``module``: optax.schedules or npopt.schedules)."""
    if isinstance(obj, dict):
        if "__pairs__" in obj:
            return {int(k): v for k, v in obj["__pairs__"]}
        if "__np__" in obj:
            dtype, value = obj["__np__"]
            return np.dtype(dtype).type(value)
        if "__schedule__" in obj:
            return build(module, obj["__schedule__"]["fn"], obj["__schedule__"]["kwargs"])
        return {k: decode(module, v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode(module, v) for v in obj]
    return obj


def build(module, fn, kwargs):
    return getattr(module, fn)(**decode(module, kwargs))


def _has_numpy(obj):
    if isinstance(obj, dict):
        return "__np__" in obj or any(_has_numpy(v) for v in obj.values())
    if isinstance(obj, list):
        return any(_has_numpy(v) for v in obj)
    return False


def _int(x):
    return int(decode(None, x))


def boundaries(fn, kwargs):
    """The counts where the schedule changes regime: ends of transitions,
    warmups, decays, boundaries of joins and piecewise schedules."""
    kw = {k: (decode(None, v) if k not in ("schedules", "cosine_kwargs") else v)
          for k, v in kwargs.items()}
    if fn in ("polynomial_schedule", "linear_schedule"):
        b = max(_int(kw.get("transition_begin", 0)), 0)
        return [b, b + _int(kw["transition_steps"])]
    if fn == "warmup_constant_schedule":
        return [_int(kw["warmup_steps"])]
    if fn == "exponential_decay":
        b, t = max(_int(kw.get("transition_begin", 0)), 0), _int(kw["transition_steps"])
        return [b, b + t, b + 10 * t]
    if fn == "cosine_decay_schedule":
        return [_int(kw["decay_steps"])]
    if fn == "warmup_cosine_decay_schedule":
        return [_int(kw["warmup_steps"]), _int(kw["decay_steps"])]
    if fn == "warmup_exponential_decay_schedule":
        w, b, t = _int(kw["warmup_steps"]), _int(kw.get("transition_begin", 0)), \
            _int(kw["transition_steps"])
        return [w, w + b, w + b + t]
    if fn in ("piecewise_constant_schedule", "piecewise_interpolate_schedule"):
        return sorted(kw.get("boundaries_and_scales") or {})
    if fn == "linear_onecycle_schedule":
        t = _int(kw["transition_steps"])
        return [int(kw.get("pct_start", 0.3) * t), int(kw.get("pct_final", 0.85) * t), t]
    if fn == "cosine_onecycle_schedule":
        t = _int(kw["transition_steps"])
        return [int(kw.get("pct_start", 0.3) * t), t]
    if fn == "join_schedules":
        out = list(kwargs["boundaries"])
        starts = [0] + list(kwargs["boundaries"])
        for start, sub in zip(starts, kwargs["schedules"]):
            out += [start + b for b in boundaries(sub["__schedule__"]["fn"],
                                                  sub["__schedule__"]["kwargs"])]
        return out
    if fn == "sgdr_schedule":
        out, step = [], 0
        for ck in kwargs["cosine_kwargs"]:
            out += [step + b for b in boundaries("warmup_cosine_decay_schedule", ck)]
            step += ck["decay_steps"]
        return out
    return []


def counts_of(fn, kwargs):
    cs = set(range(N_COUNTS)) | set(LARGE_COUNTS)
    for b in boundaries(fn, kwargs):
        cs |= set(range(max(b - EDGE, 0), b + EDGE + 1))
    return np.array(sorted(c for c in cs if 0 <= c <= 2 ** 31 - 1), np.int64)


def at_end(fn, kwargs, count):
    """``(init, end)`` of the polynomial transition that is the active part
    of the schedule when ``count`` is at or after its end, else None."""
    if fn in ("polynomial_schedule", "linear_schedule", "warmup_constant_schedule"):
        kw = {k: decode(None, v) for k, v in kwargs.items()}
        steps = kw.get("transition_steps", kw.get("warmup_steps"))
        if int(steps) <= 0:
            return None
        begin = max(int(kw.get("transition_begin", 0)), 0)
        if count < begin + int(steps):
            return None
        return kw["init_value"], kw.get("end_value", kw.get("peak_value"))
    if fn == "join_schedules":
        active, start = kwargs["schedules"][0], 0
        for b, sub in zip(kwargs["boundaries"], kwargs["schedules"][1:]):
            if count >= b:
                active, start = sub, b
        return at_end(active["__schedule__"]["fn"], active["__schedule__"]["kwargs"],
                      count - start)
    return None


def main():
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import optax
    assert optax.__version__ == "0.2.8", optax.__version__
    import optax.schedules as S

    meta, arrays = [], {}
    for i, (name, fn, kwargs, trans) in enumerate(CONFIGS):
        eager = build(S, fn, kwargs)
        sched = jax.jit(eager)
        counts = counts_of(fn, kwargs)
        outs = [sched(jnp.int32(c)) for c in counts]
        dtypes = {str(o.dtype) for o in outs}
        assert len(dtypes) == 1, (name, dtypes)
        weak = bool(outs[0].weak_type)
        vals = np.array([np.asarray(o) for o in outs])
        eag = np.array([np.asarray(eager(jnp.int32(c))) for c in counts])
        assert eag.dtype == vals.dtype, (name, eag.dtype, vals.dtype)
        ends = [at_end(fn, kwargs, int(c)) for c in counts]
        end = np.array([e is not None for e in ends], bool)
        with np.errstate(invalid="ignore"):
            fixed = np.array([e is not None and (bool(np.isnan(v)) or (
                v < 0 and float(e[0]) >= 0 and float(e[1]) >= 0)) for e, v in zip(ends, vals)],
                bool)
        arrays[f"counts_{i}"] = counts
        arrays[f"values_{i}"] = vals
        arrays[f"eager_{i}"] = eag
        arrays[f"at_end_{i}"] = end
        arrays[f"fixed_{i}"] = fixed
        meta.append(dict(name=name, fn=fn, kwargs=kwargs, dtype=str(vals.dtype),
                         weak_type=weak, transcendental=trans,
                         numpy_hyperparams=_has_numpy(kwargs)))
        resid = vals[end] != eag[end]
        print(f"{name:30s} {vals.dtype} weak={weak} counts={counts.size:4d} "
              f"end residues={int(resid.sum())} negative={int((vals < 0).sum())} "
              f"nan={int(np.isnan(vals).sum())} fixed={int(fixed.sum())}")
    arrays["configs"] = np.array(json.dumps(meta))
    arrays["versions"] = np.array(json.dumps(
        dict(jax=jax.__version__, optax=optax.__version__, numpy=np.__version__,
             platform=sys.platform, backend=jax.default_backend())))
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
