"""npopt.schedules against optax 0.2.8 (reference data, no JAX needed).

tests/reference/data/schedules.npz holds optax's values for every
configuration of tests/reference/make_schedules.py at int32 counts 0..300,
at every count within 5 of each boundary and end, and at a few large counts
up to the int32 maximum, computed under ``jax.jit`` with ``jax_enable_x64``
(the way optax's transforms call a schedule) and un-jitted.  npopt must
return the same dtype and the same bits as jitted optax, except where jitted
optax ends a polynomial transition on NaN or on a negative value from
non-negative end points (``fixed``): there npopt returns the exact end
value, as un-jitted optax does (npopt's documented policy); NumPy
hyper-parameters are evaluated op by op, like un-jitted optax.

Where optax's program uses only ``+ - * /``, ``floor``, integer powers,
min/max/select and FMA contraction (which npopt reproduces exactly with
integer arithmetic), equality is bitwise on every platform.  Where it calls
libm (``cos``, ``cosf``, ``pow``, ``powf``, ``exp2f``) npopt calls the same
libm functions; on the reference platform (Linux/glibc, x86-64) that was
measured bit-identical too: 0 differing values over the 42 stored
configurations and over ~800 random configurations compared live against
optax.  Elsewhere libm may differ by up to 1 ulp of the function's result,
which the tolerance below allows (a 1-ulp float32 ``cosf`` difference shows
up as ~1e-7 relative in the float64 result of a cosine interpolation).
"""
import json
import logging
import os
import sys

import numpy as np
import pytest

import npopt.schedules as S

DATA = os.path.join(os.path.dirname(__file__), "reference", "data", "schedules.npz")
_REF = np.load(DATA)
CONFIGS = json.loads(str(_REF["configs"]))
# Same libm as the platform the data was made on -> demand bitwise equality.
REFERENCE_PLATFORM = sys.platform.startswith("linux") and S._LIBM is not None


def _decode(obj):
    if isinstance(obj, dict):
        if "__pairs__" in obj:
            return {int(k): v for k, v in obj["__pairs__"]}
        if "__np__" in obj:
            dtype, value = obj["__np__"]
            return np.dtype(dtype).type(value)
        if "__schedule__" in obj:
            return _build(obj["__schedule__"]["fn"], obj["__schedule__"]["kwargs"])
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    return obj


def _build(fn, kwargs):
    return getattr(S, fn)(**_decode(kwargs))


def _expected(i):
    """(counts, expected values, exact): jitted optax's values but the exact
    end value (= un-jitted optax) where jitted optax's is NaN or wrongly
    negative, and un-jitted optax's values for NumPy hyper-parameters."""
    cfg = CONFIGS[i]
    counts = _REF[f"counts_{i}"]
    jit, eager, fixed = _REF[f"values_{i}"], _REF[f"eager_{i}"], _REF[f"fixed_{i}"]
    if cfg["numpy_hyperparams"]:
        return counts, eager, False
    return counts, np.where(fixed, eager, jit), True


def _assert_same(name, got, ref, counts, trans, exact):
    if exact and (not trans or REFERENCE_PLATFORM):
        # bitwise (compare the bytes: also catches -0.0 vs 0.0)
        mism = np.nonzero((got != ref) | (np.signbit(got) != np.signbit(ref)))[0]
        assert got.tobytes() == ref.tobytes(), (
            f"{name}: counts {counts[mism[:10]].tolist()} differ: "
            f"{got[mism[:5]].tolist()} vs optax {ref[mism[:5]].tolist()}")
    else:
        # libm differs from the reference platform's (allow 1 ulp of the
        # transcendental's own precision: float32 for cos32/pow32, float64
        # otherwise), or the op-by-op evaluation of NumPy hyper-parameters
        # (within 2 ulps of un-jitted optax), relative to the magnitude.
        eps = 2.0 ** -23 if ("cos32" in trans or "pow32" in trans
                             or ref.dtype == np.float32) else 2.0 ** -52
        scale = float(np.max(np.abs(ref))) or 1.0
        np.testing.assert_allclose(got, ref, rtol=0, atol=4 * eps * scale, err_msg=name)


@pytest.mark.parametrize("i", range(len(CONFIGS)), ids=[c["name"] for c in CONFIGS])
def test_matches_optax_reference(i):
    cfg = CONFIGS[i]
    counts, ref, exact = _expected(i)
    sched = _build(cfg["fn"], cfg["kwargs"])
    got = np.array([sched(int(c)) for c in counts])
    assert str(got.dtype) == cfg["dtype"] == str(ref.dtype)
    assert sched._npopt_jtype[1] == cfg["weak_type"]
    _assert_same(cfg["name"], got, ref, counts, cfg["transcendental"], exact)
    # an array of counts (as optax's jnp code takes): the same values, same shape
    grid = np.asarray(counts, np.int32)[:24].reshape(2, 3, 4)
    on_grid = sched(grid)
    assert on_grid.shape == (2, 3, 4) and on_grid.dtype == got.dtype
    assert on_grid.ravel().tobytes() == got[:24].tobytes()


# the configurations with a polynomial transition of Python numbers that ends
# inside the sampled counts
_ENDING = [i for i, c in enumerate(CONFIGS)
           if _REF[f"at_end_{i}"].any() and not c["numpy_hyperparams"]]


@pytest.mark.parametrize("i", _ENDING, ids=[CONFIGS[i]["name"] for i in _ENDING])
def test_end_of_transition(i):
    """At the end of a polynomial transition npopt keeps jitted optax's FMA
    residue, but where it makes the value NaN (fractional power) or
    negative from non-negative end points it returns the formula's value,
    the end value (= un-jitted optax): linear_schedule(1., 0., 3)(3) is 0.0,
    not -2.98e-8; polynomial_schedule(1., 0., 0.5, 3)(3) is 0.0, not NaN."""
    cfg = CONFIGS[i]
    end, fixed = _REF[f"at_end_{i}"], _REF[f"fixed_{i}"]
    sched = _build(cfg["fn"], cfg["kwargs"])
    counts = _REF[f"counts_{i}"][end]
    got = np.array([sched(int(c)) for c in counts])
    assert np.all(got == got[-1]) and np.all(np.isfinite(got))   # constant from the end on
    jit, eager = _REF[f"values_{i}"][end], _REF[f"eager_{i}"][end]
    want = np.where(fixed[end], eager, jit)
    assert got.tobytes() == want.tobytes()
    if fixed[end].any():
        assert got[-1] == eager[-1] and got[-1] >= 0


def test_issue_end_values():
    assert S.linear_schedule(1, 0, 99)(99) == np.float32(9.313226e-10)     # optax's (jitted)
    assert S.linear_schedule(1.0, 0.0, 3)(3) == 0.0                         # optax: -2.98e-8
    assert S.polynomial_schedule(1.0, 0.0, 0.5, 3)(3) == 0.0                # optax: NaN
    assert S.polynomial_schedule(1e-3, 0.0, 1.5, 2616, 5)(2621) == 0.0      # optax: NaN
    assert S.polynomial_schedule(0.3, 0.0, 3, 37)(37) == 0.0                # optax: -6.6e-24
    assert S.polynomial_schedule(0.5, 0.1, 0, 7)(7) == np.float32(0.5)      # 0 ** 0 = 1
    for T in (3, 7, 1000, 3000):
        for c in (T, T + 1, 10 ** 6):
            assert S.linear_schedule(0.5, 0.0, T)(c) >= 0


def _maybe_hypothesis():
    try:
        import hypothesis  # noqa: F401
        return True
    except ImportError:
        return False


if _maybe_hypothesis():
    from hypothesis import given, settings, strategies as st

    @settings(max_examples=200, deadline=None)
    @given(init=st.floats(0, 10), end=st.one_of(st.just(0.0), st.floats(1e-30, 10)),
           power=st.sampled_from([0.5, 1, 1.5, 2, 3, 2.0, 1.0]),
           steps=st.integers(1, 2 ** 26), begin=st.integers(0, 1000),
           frac=st.floats(0, 1.2))
    def test_polynomial_never_negative_or_nan(init, end, power, steps, begin, frac):
        """With non-negative end points, no count gives a negative, NaN or
        infinite value, the value is constant from the end on, and it is
        the end value up to jitted optax's FMA residue."""
        f = S.polynomial_schedule(init, end, power, steps, begin)
        c = min(begin + int(frac * steps), 2 ** 31 - 1)
        for cc in {c, max(begin + steps - 1, 0), begin + steps, begin + steps + 1}:
            v = f(cc)
            assert np.isfinite(v) and v >= 0, (cc, v)
        v_end = f(begin + steps)
        assert v_end == f(begin + steps + 10)
        resid = abs(init - end) * (2.0 ** -20 if power in (1, 2, 3, 1.0, 2.0) else 2e-3)
        assert abs(float(v_end) - float(np.float32(end))) <= resid + 1e-7 * end


# --------------------------------------------------------------------------
# count types
# --------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: S.linear_schedule(1e-2, 1e-3, 50),
    lambda: S.cosine_decay_schedule(1e-2, 100, alpha=0.1),
    lambda: S.warmup_cosine_decay_schedule(0.0, 1e-2, 10, 100, end_value=1e-4),
    lambda: S.cosine_onecycle_schedule(100, 0.1),
    lambda: S.exponential_decay(0.05, 10, 0.9),
])
def test_count_types_agree(make):
    f = make()
    for c in (0, 7, 55, 150):
        want = f(c)
        for cc in (np.int32(c), np.int64(c), np.array(c, dtype=np.int32), np.uint8(c)):
            got = f(cc)
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes()


def test_count_must_be_an_int32_integer():
    f = S.linear_schedule(1.0, 0.0, 10)
    with pytest.raises(TypeError, match="count"):
        f(1.5)
    with pytest.raises(TypeError, match="count"):
        f(np.float32(3))
    with pytest.raises(ValueError, match="count"):
        f(2 ** 31)
    with pytest.raises(TypeError, match="array of counts must be of integers"):
        f(np.arange(3.0))
    with pytest.raises(ValueError, match="int32"):
        f(np.array([0, 2 ** 31]))
    assert f(np.zeros((0, 2), np.int64)).shape == (0, 2)


# --------------------------------------------------------------------------
# dtypes (jax_enable_x64, Python-float hyper-parameters) and the consumer cast
# --------------------------------------------------------------------------
@pytest.mark.parametrize("sched,dtype", [
    (S.constant_schedule(0.1), np.float64),
    (S.polynomial_schedule(1.0, 0.0, 2, 10), np.float32),
    (S.linear_schedule(1.0, 0.0, 10), np.float32),
    (S.warmup_constant_schedule(0.0, 1.0, 10), np.float32),
    (S.piecewise_constant_schedule(0.1, {5: 0.5}), np.float64),
    (S.exponential_decay(0.1, 10, 0.5), np.float32),
    (S.cosine_decay_schedule(0.1, 10), np.float64),
    (S.warmup_cosine_decay_schedule(0.0, 0.1, 5, 20), np.float32),
    (S.warmup_exponential_decay_schedule(0.0, 0.1, 5, 20, 0.5), np.float32),
    (S.piecewise_interpolate_schedule("linear", 0.1, {5: 0.5}), np.float64),
    (S.piecewise_interpolate_schedule("cosine", 0.1, {5: 0.5}), np.float64),
    (S.linear_onecycle_schedule(100, 0.1), np.float64),
    (S.cosine_onecycle_schedule(100, 0.1), np.float64),
    (S.sgdr_schedule([dict(init_value=0.0, peak_value=1.0, warmup_steps=2,
                           decay_steps=10)]), np.float32),
])
def test_result_dtype(sched, dtype):
    for c in (0, 3, 50):
        assert type(sched(c)) is np.dtype(dtype).type


def test_float32_schedule_widens_exactly_for_float64_leaves():
    # optax: jnp.array(schedule(count), dtype=float64) widens the float32 value.
    v = S.linear_schedule(1e-2, 1e-3, 50)(0)
    assert v == np.float32(0.01)
    assert np.asarray(v, dtype=np.float64) == np.float64(np.float32(0.01)) != 0.01


# --------------------------------------------------------------------------
# properties
# --------------------------------------------------------------------------
def test_cosine_decay_monotone_and_endpoints():
    f = S.cosine_decay_schedule(0.3, 77, alpha=0.05)
    v = np.array([f(c) for c in range(120)])
    assert np.all(np.diff(v) <= 0)
    assert v[0] == 0.3
    assert np.all(v[77:] == v[77]) and abs(v[77] - 0.3 * 0.05) < 1e-15


def test_join_switches_at_boundary():
    a = S.constant_schedule(1.0)
    b = S.linear_schedule(0.5, 0.0, 10)
    j = S.join_schedules([a, b], [20])
    assert j(19) == np.float32(1.0)
    assert j(20) == b(0) and j(25) == b(5) and j(40) == b(20)
    assert j(20).dtype == np.float32    # weak float64 joined with float32


def test_join_accepts_plain_callables():
    j = S.join_schedules([lambda c: 0.25, S.linear_schedule(0.5, 0.0, 10)], [3])
    assert j(0) == np.float32(0.25) and j(0).dtype == np.float32
    assert j(3) == np.float32(0.5)


def test_piecewise_constant_applies_scale_at_boundary():
    f = S.piecewise_constant_schedule(1.0, {10: 0.5, 20: 0.1})
    assert f(9) == 1.0
    assert f(10) == 0.5
    assert f(19) == 0.5
    assert f(20) == 0.5 * 0.1


def test_piecewise_interpolate_hits_values_at_boundaries():
    f = S.piecewise_interpolate_schedule("linear", 1.0, {4: 0.1, 8: 0.01})
    assert f(0) == 1.0 and f(4) == 0.1 and f(8) == 0.1 * 0.01 and f(100) == 0.1 * 0.01


def test_exponential_staircase_is_constant_within_stairs():
    f = S.exponential_decay(0.1, 7, 0.5, staircase=True)
    v = np.array([f(c) for c in range(70)])
    for k in range(10):
        assert np.all(v[7 * k:7 * k + 7] == v[7 * k])
    assert v[7] == np.float32(0.05)


def test_warmup_cosine_peak_and_end():
    f = S.warmup_cosine_decay_schedule(0.0, 1e-2, 10, 100, end_value=1e-4)
    assert f(0) == 0.0
    assert f(10) == np.float32(1e-2)
    assert abs(f(100) - np.float32(1e-4)) <= np.spacing(np.float32(1e-4))
    assert f(1000) == f(100)


def test_sgdr_restarts():
    kw = dict(init_value=0.0, peak_value=1.0, warmup_steps=0, decay_steps=20)
    f = S.sgdr_schedule([kw, kw])
    assert f(0) == f(20) == np.float32(1.0)
    assert f(19) == f(39) < 0.01


def test_degenerate_constant_schedules(caplog):
    with caplog.at_level(logging.INFO, logger="npopt.schedules"):
        f = S.polynomial_schedule(0.25, 0.0, 1, transition_steps=0)
    assert f(100) == 0.25 and f(100).dtype == np.float64
    assert "transition_steps" in caplog.text
    assert S.exponential_decay(0.1, 10, 0.0)(50) == 0.1
    g = S.polynomial_schedule(1.0, 0.0, 1, 10, transition_begin=-5)
    assert g(5) == S.linear_schedule(1.0, 0.0, 10)(5)


# --------------------------------------------------------------------------
# errors (optax raises the same exception types)
# --------------------------------------------------------------------------
def test_errors():
    with pytest.raises(ValueError, match="decay_steps"):
        S.cosine_decay_schedule(0.1, 0)
    with pytest.raises(ValueError, match="decay_steps"):
        S.cosine_decay_schedule(0.1, -3)
    with pytest.raises(ValueError, match="decay_steps.*warmup_steps"):
        S.warmup_cosine_decay_schedule(0.0, 0.1, warmup_steps=10, decay_steps=10)
    with pytest.raises(ValueError, match="non-negative scale"):
        S.piecewise_constant_schedule(0.1, {10: -0.5})
    with pytest.raises(ValueError, match="non-negative scale"):
        S.piecewise_interpolate_schedule("linear", 0.1, {10: -0.5})
    with pytest.raises(ValueError, match="interpolate_type"):
        S.piecewise_interpolate_schedule("quadratic", 0.1)
    with pytest.raises(ValueError, match="transition_steps"):
        S.linear_onecycle_schedule(0, 0.1)
    with pytest.raises(ValueError, match="transition_steps"):
        S.cosine_onecycle_schedule(-1, 0.1)
    with pytest.raises(ValueError, match="schedules"):
        S.join_schedules([], [])
    with pytest.raises(ValueError, match="cosine_kwargs"):
        S.sgdr_schedule([])


def test_signatures_match_optax_catalog():
    import inspect
    want = {
        "constant_schedule": "(value)",
        "cosine_decay_schedule": "(init_value, decay_steps, alpha=0.0, exponent=1.0)",
        "cosine_onecycle_schedule": "(transition_steps, peak_value, pct_start=0.3, "
                                    "div_factor=25.0, final_div_factor=10000.0)",
        "exponential_decay": "(init_value, transition_steps, decay_rate, transition_begin=0, "
                             "staircase=False, end_value=None)",
        "join_schedules": "(schedules, boundaries)",
        "linear_onecycle_schedule": "(transition_steps, peak_value, pct_start=0.3, "
                                    "pct_final=0.85, div_factor=25.0, "
                                    "final_div_factor=10000.0)",
        "linear_schedule": "(init_value, end_value, transition_steps, transition_begin=0)",
        "piecewise_constant_schedule": "(init_value, boundaries_and_scales=None)",
        "piecewise_interpolate_schedule": "(interpolate_type, init_value, "
                                          "boundaries_and_scales=None)",
        "polynomial_schedule": "(init_value, end_value, power, transition_steps, "
                               "transition_begin=0)",
        "sgdr_schedule": "(cosine_kwargs)",
        "warmup_constant_schedule": "(init_value, peak_value, warmup_steps)",
        "warmup_cosine_decay_schedule": "(init_value, peak_value, warmup_steps, decay_steps, "
                                        "end_value=0.0, exponent=1.0)",
        "warmup_exponential_decay_schedule": "(init_value, peak_value, warmup_steps, "
                                             "transition_steps, decay_rate, "
                                             "transition_begin=0, staircase=False, "
                                             "end_value=None)",
    }
    for name, sig in want.items():
        params = inspect.signature(getattr(S, name)).parameters.values()
        got = "(" + ", ".join(p.name if p.default is inspect.Parameter.empty
                              else f"{p.name}={p.default!r}" for p in params) + ")"
        assert got == sig, name
