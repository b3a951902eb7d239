"""Complex and 16-bit params: what the reference tests do not cover.

The numbers against optax are in tests/test_complex_reference.py (complex64,
complex128) and tests/test_narrow_reference.py (float16, bfloat16). Here:
the CUDA kernels on complex buffers (the simulator; a GPU unchanged), the
refusals (a clear TypeError before anything is written), the fallback of
the fused step, and the "computed in float32, rounded once" definition.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import npopt
from npopt.tree import tree_leaves

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)
F16 = np.dtype(np.float16)


def _complex(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)


# -- complex on the CUDA kernels -------------------------------------------------

COMPLEX_RULES = {
    "adam": lambda: npopt.adam(1e-2),
    "amsgrad": lambda: npopt.amsgrad(1e-2),
    "yogi": lambda: npopt.yogi(1e-2),
    "rmsprop_centered": lambda: npopt.rmsprop(1e-2, centered=True, momentum=0.5),
    "adagrad": lambda: npopt.adagrad(0.1),
    "sgd_nesterov": lambda: npopt.sgd(1e-2, momentum=0.9, nesterov=True),
    "lamb": lambda: npopt.lamb(1e-2, weight_decay=1e-2),
    "novograd": lambda: npopt.novograd(1e-2),
    "adafactor": lambda: npopt.adafactor(1e-2, min_dim_size_to_factor=2),
    "clip_adam": lambda: npopt.chain(npopt.clip_by_global_norm(0.5), npopt.adam(1e-2)),
}


@pytest.mark.parametrize("name", sorted(COMPLEX_RULES))
def test_complex_params_on_cuda_match_the_host(name):
    cuda = pytest.importorskip("numba.cuda")
    p0 = {"w": _complex((4, 3), np.complex64), "b": _complex((3,), np.complex64, 1)}
    opt = COMPLEX_RULES[name]()

    def run(put, get):
        p = {k: put(v.copy()) for k, v in p0.items()}
        state = opt.init(p)
        for t in range(4):
            g = {k: put((get(v) - (1 + 1j)).astype(np.complex64)) for k, v in p.items()}
            u, state = opt.update(g, state, p)
            p = npopt.apply_updates(p, u)
        return {k: get(v) for k, v in p.items()}, state

    host, _ = run(lambda x: x, lambda x: x)
    dev, state = run(cuda.to_device, lambda x: x.copy_to_host())
    for k in host:
        assert dev[k].dtype == np.complex64
        # the simulator does not contract FMAs: a few ulps
        assert np.max(np.abs(dev[k] - host[k])) <= 1e-5 * np.max(np.abs(host[k]))
    assert all(npopt._target.is_device_array(x) or np.ndim(x) == 0
               for x in tree_leaves(state))


# -- refusals -----------------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda: npopt.lion(1e-2), lambda: npopt.sm3(1.0),
                                  lambda: npopt.sign_sgd(0.1), lambda: npopt.clip(1.0)])
def test_rules_without_complex_semantics_refuse_complex_params(make):
    p = _complex(3, np.complex128)
    with pytest.raises(TypeError, match="complex128.*not supported by this rule"):
        opt = make()
        opt.update(p, opt.init(p), p)


def test_a_real_momentum_dtype_for_complex_params_is_refused():
    # optax's adafactor keeps its momentum in float32 and drops the imaginary part
    p = _complex(4, np.complex64)
    with pytest.raises(TypeError, match="imaginary part would be dropped"):
        npopt.adafactor(1e-2, momentum=0.9).init(p)
    opt = npopt.adafactor(1e-2, momentum=0.9, dtype_momentum=None)   # complex momentum
    u, s = opt.update(p, opt.init(p), p)
    emas = [x for x in s if isinstance(x, npopt.EmaState)]
    assert u.dtype == np.complex64 and emas[0].ema.dtype == np.complex64


@pytest.mark.parametrize("dtype", [F16, BF16])
def test_16_bit_params_in_sm3(dtype):
    # sm3 (per-axis accumulators, 2-D leaves): through float32 too
    p = np.full((3, 4), 0.5, dtype)
    opt = npopt.sm3(1.0)
    u, s = opt.update(p, opt.init(p), p)
    assert u.dtype == dtype and {x.dtype for x in tree_leaves(s)} == {dtype}


def test_16_bit_cuda_arrays_are_refused():
    cuda = pytest.importorskip("numba.cuda")
    p = cuda.to_device(np.ones(3, np.float16))
    with pytest.raises(TypeError, match="float16/bfloat16 CUDA device arrays"):
        npopt.adam(1e-2).init(p)


def test_moment_dtypes_accept_16_bit_floats_only_where_implemented():
    assert npopt.adam(0.1, mu_dtype="bfloat16") is not None
    assert npopt.sgd(0.1, momentum=0.9, accumulator_dtype=np.float16) is not None
    with pytest.raises(TypeError, match=r"mu_dtype: expected None, float32 or float64"):
        npopt.scale_by_novograd(mu_dtype=np.float16)
    with pytest.raises(TypeError, match=r"float16 or bfloat16, got"):
        npopt.adam(0.1, mu_dtype=np.complex64)


# -- the fused step -------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.complex64, F16, BF16])
def test_step_on_complex_and_16_bit_params(dtype):
    # the fused kernels, in place (as for float params), within a few ulps of
    # update + apply_updates: the fused epilogue rounds p + (-lr) u once
    # (complex: an FMA; 16 bits: in float32, where update rounds u, -lr u
    # and their sum to 16 bits)
    rng = np.random.default_rng(3)
    p0 = _complex(7, dtype) if dtype == np.complex64 else rng.standard_normal(7).astype(dtype)
    eps = {np.dtype(np.complex64): 2.0 ** -24, F16: 2.0 ** -11, BF16: 2.0 ** -8}[np.dtype(dtype)]
    opt = npopt.adamw(1e-2, weight_decay=0.1)
    p_step, s_step = p0.copy(), opt.init(p0)
    p_upd, s_upd = p0.copy(), opt.init(p0)
    for t in range(5):
        g = (p_step * 0.5 + 0.25).astype(dtype)
        given = p_step
        p_step, s_step = opt.step(p_step, g, s_step)
        assert p_step is given and p_step.dtype == np.dtype(dtype)     # in place
        u, s_upd = opt.update(g, s_upd, p_upd)
        p_upd = npopt.apply_updates(p_upd, u)
        a, b = (np.asarray(x).astype(np.complex128) for x in (p_step, p_upd))
        assert np.max(np.abs(a - b)) <= 8 * eps * np.max(np.abs(b))
        p_upd = p_step.copy()      # each step from the same params
    for a, b in zip(tree_leaves(s_step), tree_leaves(s_upd)):
        assert np.asarray(a).dtype == np.asarray(b).dtype


def test_complex_step_refused_before_anything_is_written():
    # lion has no complex semantics: the fused step falls back to update,
    # which refuses, and the params are untouched
    p = _complex(5, np.complex64)
    before = p.copy()
    opt = npopt.lion(1e-2)
    with pytest.raises(TypeError, match="complex"):
        opt.step(p, p, opt.init(p.real.copy()))
    np.testing.assert_array_equal(p, before)


# -- 16 bits: computed in float32, rounded once per stored result ---------------------

@settings(max_examples=30, deadline=None)
@given(dtype=st.sampled_from([F16, BF16]), n=st.integers(1, 40), steps=st.integers(1, 6),
       decay=st.floats(0.0, 0.99), seed=st.integers(0, 2**31 - 1))
def test_16_bit_momentum_is_float32_arithmetic_rounded_once(dtype, n, steps, decay, seed):
    # trace: t <- g + decay * t (stored in 16 bits), u = t; the update is the
    # float32 result rounded once to the 16-bit dtype, with decay rounded to
    # it first (a weakly typed constant meeting a 16-bit array in JAX)
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(n).astype(dtype)
    opt = npopt.trace(decay)
    state = opt.init(p)
    t = np.zeros(n, dtype)
    d = np.float32(dtype.type(decay))
    for _ in range(steps):
        g = rng.standard_normal(n).astype(dtype)
        u, state = opt.update(g, state, p)
        ref = (g.astype(np.float32) + d * t.astype(np.float32)).astype(dtype)
        assert u.dtype == dtype and state.trace.dtype == dtype
        np.testing.assert_array_equal(u.view(np.uint16), ref.view(np.uint16))
        np.testing.assert_array_equal(state.trace.view(np.uint16), ref.view(np.uint16))
        t = ref


# optax 0.2.8 under jit, x64, on float32 zeros: p + u after two updates with
# grads of ones (the second depends on b1 / the momentum rounded to the
# state's 16-bit dtype, and on the state rounded once per step)
# (Not adam with a float16 mu: XLA on the CPU rounds float16 arithmetic after
# every operation, b1 * mu included, giving -0.09998201; npopt computes in
# float32 and rounds once, as XLA on the CPU does for bfloat16: -0.0999833.)
OPTAX_MOMENT_DTYPES = {
    ("adam", "bfloat16"): -0.09996394,
    ("sgd", "float16"): -0.18999024, ("sgd", "bfloat16"): -0.18984376,
}
# the same, grads of 0.7 (optax 0.2.8, jit, x64)
OPTAX_MOMENT_DTYPES_07 = {
    ("amsgrad", "float16"): -0.09999118745326996, ("amsgrad", "bfloat16"): -0.0997990146279335,
    ("lion", "float16"): -0.10000000149011612, ("lion", "bfloat16"): -0.10000000149011612,
    ("ema", "float16"): -0.013298827223479748, ("ema", "bfloat16"): -0.013273268938064575,
    ("ema_debias", "float16"): -0.06999383121728897,
    ("ema_debias", "bfloat16"): -0.06985931098461151,
}
MAKE_07 = {
    "amsgrad": lambda dt: npopt.amsgrad(0.1, mu_dtype=dt),
    "lion": lambda dt: npopt.lion(0.1, mu_dtype=dt),
    "ema": lambda dt: npopt.chain(npopt.ema(0.9, debias=False, accumulator_dtype=dt),
                                  npopt.scale(-0.1)),
    "ema_debias": lambda dt: npopt.chain(npopt.ema(0.9, accumulator_dtype=dt), npopt.scale(-0.1)),
}


@pytest.mark.parametrize("rule,dtype", sorted(OPTAX_MOMENT_DTYPES_07))
def test_more_16_bit_moment_dtypes_match_optax(rule, dtype):
    dt = np.dtype(dtype)
    p = np.zeros(3, np.float32)
    opt = MAKE_07[rule](dt)
    want = np.float32(OPTAX_MOMENT_DTYPES_07[rule, dtype])
    for path in ("update", "step"):
        s = opt.init(p)
        assert tree_leaves(s)[1].dtype == dt          # the moment, after the count
        for _ in range(2):
            if path == "update":
                u, s = opt.update(np.full(3, 0.7, np.float32), s, p)
                q = p + u
            else:
                q, s = opt.step(p.copy(), np.full(3, 0.7, np.float32), s)
        assert tree_leaves(s)[1].dtype == dt
        # bfloat16: bit for bit; float16: XLA's CPU rounds decay * moment to
        # float16, npopt does not (see above): 8.6e-5 relative, < 1/10 ulp
        tol = 0 if dtype == "bfloat16" else 2.0 ** -13
        np.testing.assert_allclose(q, np.full(3, want), rtol=tol, atol=0)


@pytest.mark.parametrize("rule,dtype", sorted(OPTAX_MOMENT_DTYPES))
def test_16_bit_moment_dtypes_match_optax(rule, dtype):
    dt = np.dtype(dtype)
    p = np.zeros(3, np.float32)
    opt = (npopt.adam(0.1, mu_dtype=dt) if rule == "adam"
           else npopt.sgd(0.1, momentum=0.9, accumulator_dtype=dt))
    for path in ("update", "step"):
        s = opt.init(p)
        assert tree_leaves(s)[1 if rule == "adam" else 0].dtype == dt
        q = p.copy()
        for _ in range(2):
            if path == "update":
                u, s = opt.update(np.ones(3, np.float32), s, p)
                assert u.dtype == np.float32
                q = p + u
            else:
                q, s = opt.step(p.copy(), np.ones(3, np.float32), s)
        assert tree_leaves(s)[1 if rule == "adam" else 0].dtype == dt
        np.testing.assert_array_equal(q, np.full(3, OPTAX_MOMENT_DTYPES[rule, dtype],
                                                 np.float32))


def test_inject_hyperparams_on_16_bit_params():
    # optax makes the hyperparameters arrays of the params' dtype: on float16
    # that works; on bfloat16 b2 = 0.999 rounds to 1.0 and optax's adam
    # returns NaN updates, npopt says why instead
    p = np.ones(3, F16)
    opt = npopt.inject_hyperparams(npopt.adam)(1e-2)
    s = opt.init(p)
    assert s.hyperparams["b1"].dtype == F16
    u, s = opt.update(p, s, p)
    assert u.dtype == F16 and np.all(np.isfinite(u.astype(np.float32)))
    p = np.ones(3, BF16)
    opt = npopt.inject_hyperparams(npopt.adam)(1e-2)
    with pytest.raises(ValueError, match=r"b2: expected a finite number >= 0.0 and < 1.0, "
                                         r"got 1.0 \(bfloat16\)"):
        opt.init(p)


@pytest.mark.parametrize("dtype", [F16, BF16])
@pytest.mark.parametrize("make", [npopt.centralize, npopt.normalize_by_update_norm,
                                  npopt.keep_params_nonnegative])
def test_tree_transforms_keep_16_bit_leaves(make, dtype):
    # computed through float32 (npopt.numerics), the updates in the leaves' dtype
    p = (np.arange(6).reshape(2, 3) - 2).astype(dtype)
    opt = make()
    u, _ = opt.update(p, opt.init(p), p)
    assert u.dtype == dtype
    ref, _ = opt.update(p.astype(np.float32), opt.init(p.astype(np.float32)),
                        p.astype(np.float32))
    np.testing.assert_allclose(u.astype(np.float32), ref, rtol=2 ** -7, atol=0)


# -- the 16-bit conversions (kernels/narrow.py) ----------------------------------------

@pytest.mark.parametrize("dtype", [F16, BF16])
def test_16_bit_conversions_are_numpys_bit_for_bit(dtype):
    from npopt._flat._layout import as_dtype
    from npopt._target import Host
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2 ** 32, 1 << 20, dtype=np.uint64).astype(np.uint32)
    # and every 37th float32 around float16's subnormals, both signs
    sweep = np.arange(0x33000000 - 4096, 0x38800000 + 4096, 37, dtype=np.uint32)
    bits = np.concatenate([bits, sweep, sweep | np.uint32(0x80000000),
                           np.array([0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000,
                                     0x477fefff, 0x477ff000, 0x3f800000], np.uint32)])
    x = bits.view(np.float32)
    with np.errstate(all="ignore"):
        ref = x.astype(dtype)
    got = as_dtype(Host, x, dtype)
    assert got.dtype == dtype
    nan = np.isnan(x)
    np.testing.assert_array_equal(got.view(np.uint16)[~nan], ref.view(np.uint16)[~nan])
    assert np.all(np.isnan(got[nan].astype(np.float32)))     # NaNs stay NaN (payloads may differ)
    every = np.arange(1 << 16, dtype=np.uint16).view(dtype)  # and back: all 65536 values
    with np.errstate(all="ignore"):
        ref32 = every.astype(np.float32)
    got32 = as_dtype(Host, every, np.dtype(np.float32))
    ok = ~np.isnan(ref32)
    np.testing.assert_array_equal(got32.view(np.uint32)[ok], ref32.view(np.uint32)[ok])
    assert np.all(np.isnan(got32[~ok]))


# -- 16 bits in the rules that are not elementwise (npopt._narrow) ----------------------

def _perleaf_reference():
    import json
    import os
    path = os.path.join(os.path.dirname(__file__), "reference", "data", "optax",
                        "narrow_perleaf.json")
    with open(path) as f:
        return json.load(f)


PERLEAF = _perleaf_reference()


@pytest.mark.parametrize("path", ["update", "step"])
@pytest.mark.parametrize("key", sorted(PERLEAF["results"]))
def test_16_bit_params_in_the_other_rules_match_optax(key, path):
    # lamb, lars, novograd, adafactor, ... run through float32, each result
    # rounded once to 16 bits (optax: every operation): after 4 steps the
    # params are within 4 ulps of optax's, the state has optax's dtypes
    case, dtype = key.split("/")
    dt = np.dtype(dtype)
    eps = {"float16": 2.0 ** -10, "bfloat16": 2.0 ** -7}[dtype]
    rng = np.random.default_rng(0)
    p = {"w": rng.standard_normal((4, 5)).astype(dt), "b": rng.standard_normal(5).astype(dt)}
    opt = eval(PERLEAF["cases"][case], {"ox": npopt})
    s = opt.init(p)
    for _ in range(PERLEAF["steps"]):
        g = {k: (v.astype(np.float32) - 1).astype(dt) for k, v in p.items()}
        if path == "update":
            u, s = opt.update(g, s, p)
            assert all(u[k].dtype == dt for k in u)
            p = npopt.apply_updates(p, u)
        else:
            p, s = opt.step(p, g, s)
    want = PERLEAF["results"][key]
    assert [str(np.asarray(x).dtype) for x in tree_leaves(s)] == want["state_dtypes"]
    for k, ref in want["params"].items():
        got = p[k].astype(np.float32)
        assert p[k].dtype == dt
        ref = np.asarray(ref, np.float32)
        assert np.max(np.abs(got - ref)) <= 4 * eps * np.max(np.abs(ref)), k


def test_16_bit_state_dtypes_follow_the_params():
    # the state made through float32 / float64: what follows the params gets
    # their 16-bit dtype; counts and fixed dtypes keep theirs
    p = {"w": np.ones((3, 4), BF16), "b": np.ones(4, BF16)}
    s = npopt.novograd(1e-2).init(p)
    assert s[0].count.dtype == np.int32
    assert {x.dtype for x in tree_leaves(s[0].mu)} == {BF16}
    assert {np.asarray(x).dtype for x in tree_leaves(s[0].nu)} == {BF16}
    with pytest.raises(TypeError, match="float16 and bfloat16 leaves together"):
        npopt.novograd(1e-2).init({"a": np.ones(2, F16), "b": np.ones(2, BF16)})


# optax 0.2.8 (jit, x64): adafactor(1e-2, momentum=0.9, dtype_momentum=...) on
# float32 params of 0.5, three updates with grads linspace(-1, 1, 20)
OPTAX_ADAFACTOR_16_BIT_MOMENTUM = {"float16": (0.5028056502342224, 0.49719443917274475),
                                   "bfloat16": (0.5028023719787598, 0.4971976578235626)}


@pytest.mark.parametrize("path", ["update", "step"])
@pytest.mark.parametrize("dtype", sorted(OPTAX_ADAFACTOR_16_BIT_MOMENTUM))
def test_adafactor_16_bit_momentum_matches_optax(dtype, path):
    p = {"w": np.full((4, 5), 0.5, np.float32)}
    opt = npopt.adafactor(1e-2, momentum=0.9, dtype_momentum=np.dtype(dtype))
    s = opt.init(p)
    g = {"w": np.linspace(-1, 1, 20, dtype=np.float32).reshape(4, 5)}
    for _ in range(3):
        if path == "update":
            u, s = opt.update(g, s, p)
            p = npopt.apply_updates(p, u)
        else:
            p, s = opt.step(p, g, s)
    assert tree_leaves(s)[-1].dtype == np.dtype(dtype)
    hi, lo = OPTAX_ADAFACTOR_16_BIT_MOMENTUM[dtype]
    want = np.where(np.arange(20) < 10, np.float32(hi), np.float32(lo)).reshape(4, 5)
    # float16: XLA's CPU rounds decay * momentum to float16, npopt does not:
    # 2.4e-7 on the params, 1/10 of a float16 ulp of the 2.8e-3 they moved
    np.testing.assert_allclose(p["w"], want, rtol=2e-7, atol=4e-7 if dtype == "float16" else 0)
