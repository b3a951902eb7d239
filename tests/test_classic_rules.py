"""The 'classic' family: optimistic gradient (descent, Adam v1/v2), rprop,
adadelta.

* each kernel on the CUDA simulator against the CPU kernel, and the aliases
  on device arrays (state kept on the device), both paths;
* the rules against naive NumPy versions written from the formulas, and the
  optax quirks they reproduce (rprop's lagged update, adadelta's uphill
  default, optimistic_adam's deprecation);
* the fused ``step`` against ``update`` + ``apply_updates``, in place;
* bad input: clear errors, nothing touched.

The optax trajectories themselves are replayed by test_alias_reference.py
(cases in reference/cases_classic.py).
"""
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import npopt
from conftest import DTYPES, rel_err
from npopt._target import is_device_array
from npopt.kernels import adadelta as kadadelta
from npopt.kernels import optimistic as kopt
from npopt.kernels import rprop as krprop
from npopt.tree import tree_leaves, tree_map

MASK = {"a": False, "b": True}


def _optimistic_adam(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return npopt.optimistic_adam(*args, **kwargs)


ALIASES = {
    "ogd": lambda: npopt.optimistic_gradient_descent(0.05, alpha=0.7, beta=0.4),
    "ogd_sched": lambda: npopt.optimistic_gradient_descent(lambda c: 0.05 / (1.0 + c)),
    "optimistic_adam": lambda: _optimistic_adam(0.01, 0.03),
    "optimistic_adam_v2": lambda: npopt.optimistic_adam_v2(0.01, alpha=0.5, beta=0.8,
                                                           nesterov=False),
    "rprop": lambda: npopt.rprop(0.05, eta_minus=0.4, max_step_size=0.3),
    "adadelta": lambda: npopt.adadelta(),
    "adadelta_wd_mask": lambda: npopt.adadelta(0.5, weight_decay=0.1, weight_decay_mask=MASK),
    "adadelta_sched": lambda: npopt.adadelta(lambda c: 1.0 / (1.0 + c), weight_decay=0.01),
    # no fused form: step falls back to update + apply_updates
    "adadelta_wd_sched": lambda: npopt.adadelta(0.5, weight_decay=lambda c: 0.1 / (1.0 + c)),
    "optimistic_adam_v2_mu32": lambda: npopt.optimistic_adam_v2(0.01, mu_dtype=np.float32),
}
# fused step vs update + apply_updates after 5 steps: a few ulps (the fused
# kernel contracts p + (-lr) * u into one FMA)
STEP_TOL = {np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-14}
FUSED = tuple(k for k in ALIASES if k not in ("adadelta_wd_sched", "optimistic_adam_v2_mu32"))


def _problem(dtype, steps=5, seed=1):
    rng = np.random.default_rng(seed)
    params = {"a": rng.standard_normal(7).astype(dtype),
              "b": rng.standard_normal((3, 4)).astype(dtype)}
    grads = [tree_map(lambda p: rng.standard_normal(p.shape).astype(dtype), params)
             for _ in range(steps)]
    # some repeated signs, so that rprop grows its steps too
    grads[2] = tree_map(lambda g: 0.5 * g, grads[1])
    return params, grads


# ---------------------------------------------------------------------------
# naive references, straight from the formulas (float64)
# ---------------------------------------------------------------------------

def naive_optimistic(gs, alpha, beta):
    out, prev = [], None
    for g in gs:
        prev = g if prev is None else prev
        out.append((alpha + beta) * g - beta * prev)
        prev = g
    return out


def naive_rprop(gs, lr, eta_minus, eta_plus, lo, hi):
    step, prev, out = np.full_like(gs[0], lr), np.zeros_like(gs[0]), []
    for g in gs:
        s = g * prev
        step = np.where(s == 0, step, np.clip(step * np.where(s > 0, eta_plus, eta_minus), lo, hi))
        new_prev = np.where(s < 0, 0.0, step * np.sign(g))
        out.append(np.where(s < 0, 0.0, prev))     # optax: the OLD prev
        prev = new_prev
    return out


def naive_adadelta(gs, rho, eps):
    e_g, e_x, out = np.zeros_like(gs[0]), np.zeros_like(gs[0]), []
    for g in gs:
        e_g = rho * e_g + (1 - rho) * g ** 2
        u = np.sqrt(e_x + eps) / np.sqrt(e_g + eps) * g
        e_x = rho * e_x + (1 - rho) * u ** 2
        out.append(u)
    return out


def _updates(tx, gs, params=None):
    p = np.zeros_like(gs[0]) if params is None else params
    state, out = tx.init(p), []
    for g in gs:
        u, state = tx.update(g, state, p)
        out.append(u)
    return out, state


def _gs(n=50, steps=8, seed=3):
    rng = np.random.default_rng(seed)
    gs = [rng.standard_normal(n) for _ in range(steps)]
    gs[3] = np.abs(gs[2]) * np.sign(gs[2]) * 2.0
    gs[4] = np.where(np.arange(n) % 5 == 0, 0.0, gs[4])   # exact zeros: s == 0
    return gs


def test_optimistic_matches_formula():
    gs = _gs()
    got, state = _updates(npopt.scale_by_optimistic_gradient(alpha=0.7, beta=0.45), gs)
    for a, b in zip(got, naive_optimistic(gs, 0.7, 0.45)):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-15)
    # the first update is alpha * g (g_prev := g), then the state holds the last g
    np.testing.assert_allclose(got[0], 0.7 * gs[0], rtol=1e-15)
    assert state.is_initial_step.dtype == np.bool_ and not state.is_initial_step
    np.testing.assert_array_equal(state.previous_gradient, gs[-1])


def test_rprop_matches_formula_and_lags_one_step():
    gs = _gs()
    args = (0.1, 0.5, 1.2, 1e-3, 0.25)
    got, state = _updates(npopt.scale_by_rprop(*args), gs)
    for a, b in zip(got, naive_rprop(gs, *args)):
        np.testing.assert_array_equal(a, b)
    assert np.all(got[0] == 0)                    # optax's quirk: the first update is 0
    assert np.all((state.step_sizes >= 1e-3) & (state.step_sizes <= 0.25))


def test_rprop_constant_gradient_sequence():
    """optax: 0, 0.1, 0.12, ... for g = 1 and learning_rate 0.1 (catalog Part 4)."""
    opt = npopt.rprop(0.1)
    p = np.zeros(1)
    state = opt.init(p)
    steps = []
    for _ in range(4):
        u, state = opt.update(np.ones(1), state, p)
        steps.append(float(u[0]))
    np.testing.assert_allclose(steps, [0.0, -0.1, -0.12, -0.144], rtol=1e-15)


def test_rprop_sign_change_skips_and_resets():
    tx = npopt.scale_by_rprop(0.1)
    p = np.zeros(2)
    s = tx.init(p)
    _, s = tx.update(np.array([1.0, 1.0]), s, p)
    u, s = tx.update(np.array([-1.0, 1.0]), s, p)       # element 0 flips sign
    assert u[0] == 0 and s.prev_updates[0] == 0 and s.step_sizes[0] == 0.05
    assert u[1] == 0.1 and s.step_sizes[1] == pytest.approx(0.12)


def test_adadelta_matches_formula():
    gs = _gs()
    got, state = _updates(npopt.scale_by_adadelta(rho=0.8, eps=1e-4), gs)
    for a, b in zip(got, naive_adadelta(gs, 0.8, 1e-4)):
        np.testing.assert_allclose(a, b, rtol=1e-13)
    assert set(state._fields) == {"e_g", "e_x"}


def test_adadelta_default_points_uphill():
    """optax's quirk: learning_rate=None chains identity(): +0.00316 for g = +1."""
    u, _ = npopt.adadelta().update(np.ones(3), npopt.adadelta().init(np.zeros(3)), np.zeros(3))
    np.testing.assert_allclose(u, np.sqrt(1e-6) / np.sqrt(0.1 + 1e-6), rtol=1e-14)
    assert np.all(u > 0)
    d, _ = npopt.adadelta(1.0).update(np.ones(3), npopt.adadelta(1.0).init(np.zeros(3)),
                                      np.zeros(3))
    np.testing.assert_array_equal(d, -u)


@pytest.mark.parametrize("path", ["update", "step"])
def test_adadelta_weight_decay_comes_before_the_preconditioner(path):
    params, grads = _problem(np.float64)
    wd = 0.3
    opt = npopt.adadelta(0.5, weight_decay=wd, weight_decay_mask=MASK)
    ref = npopt.adadelta(0.5)
    p, s = params, opt.init(params)
    q, r = params, ref.init(params)
    for g in grads:
        g_l2 = {"a": g["a"], "b": g["b"] + wd * q["b"]}    # L2 on the masked-in leaf only
        if path == "update":
            u, s = opt.update(g, s, p)
            p = npopt.apply_updates(p, u)
        else:
            p, s = opt.step({k: v.copy() for k, v in p.items()}, g, s)
        u, r = ref.update(g_l2, r, q)
        q = npopt.apply_updates(q, u)
    for k in params:
        assert rel_err(p[k], q[k]) <= 1e-14, k


def test_optimistic_adam_is_v2_with_alpha_lr_and_beta_optimism():
    params, grads = _problem(np.float64)
    with pytest.warns(DeprecationWarning, match="optimistic_adam_v2"):
        v1 = npopt.optimistic_adam(0.01, optimism=0.03, b1=0.8)
    v2 = npopt.optimistic_adam_v2(1.0, alpha=0.01, beta=0.03, b1=0.8)
    s1, s2 = v1.init(params), v2.init(params)
    for g in grads:
        u1, s1 = v1.update(g, s1, params)
        u2, s2 = v2.update(g, s2, params)
        for k in params:
            np.testing.assert_array_equal(u1[k], u2[k])
    # optimism=None defaults to the learning rate
    assert len(_optimistic_adam(0.01).init(params)) == 3


def test_optimistic_adam_refuses_schedules():
    with pytest.warns(DeprecationWarning):
        with pytest.raises(ValueError, match="does not support learning rate schedules"):
            npopt.optimistic_adam(lambda c: 0.01)


def test_state_structures_follow_optax():
    p = {"a": np.zeros(3)}
    s = npopt.optimistic_gradient_descent(0.1).init(p)
    assert type(s[0]).__name__ == "ScaleByOptimisticGradientState"
    assert s[0]._fields == ("is_initial_step", "previous_gradient")
    assert isinstance(s[1], npopt.EmptyState)
    s = _optimistic_adam(0.1).init(p)
    assert [type(x).__name__ for x in s] == ["ScaleByAdamState",
                                              "ScaleByOptimisticGradientState", "EmptyState"]
    s = npopt.rprop(0.1).init(p)
    assert s[0]._fields == ("step_sizes", "prev_updates")
    np.testing.assert_array_equal(s[0].step_sizes["a"], 0.1)
    s = npopt.adadelta(weight_decay_mask={"a": True}).init(p)
    assert [type(x).__name__ for x in s] == ["MaskedState", "ScaleByAdaDeltaState", "EmptyState"]


# ---------------------------------------------------------------------------
# the fused step
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(ALIASES))
def test_step_matches_update_and_works_in_place(name, dtype):
    params, grads = _problem(dtype)
    opt = ALIASES[name]()
    assert (opt.fused_step is not None) == (name in FUSED), name
    p, s = params, opt.init(params)
    q = tree_map(np.copy, params)
    r = opt.init(q)
    for t, g in enumerate(grads):
        g_copy = tree_map(np.copy, g)
        u, s = opt.update(g, s, p)
        p = npopt.apply_updates(p, u)
        q_before = q
        q, r = opt.step(q, g, r)
        if t > 0 and name in FUSED:   # the first step gathers the leaves, then in place
            assert q is q_before
        for k in g:                                # grads are not modified
            np.testing.assert_array_equal(g[k], g_copy[k])
    for a, b in zip(tree_leaves(p), tree_leaves(q)):
        assert a.dtype == b.dtype == np.dtype(dtype)
        assert rel_err(b, a) <= STEP_TOL[np.dtype(dtype)]
    for a, b in zip(tree_leaves(s), tree_leaves(r)):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype
        if a.dtype.kind == "b":
            assert a == b
        else:
            assert rel_err(b, a) <= 10 * STEP_TOL[np.dtype(dtype)]


@pytest.mark.parametrize("name", sorted(ALIASES))
def test_update_does_not_modify_its_inputs(name):
    params, grads = _problem(np.float64)
    opt = ALIASES[name]()
    state = opt.init(params)
    for g in grads[:2]:
        _, state = opt.update(g, state, params)
    before = [np.array(x, copy=True) for x in tree_leaves((params, grads[2], state))]
    opt.update(grads[2], state, params)
    for a, b in zip(before, tree_leaves((params, grads[2], state))):
        np.testing.assert_array_equal(a, np.asarray(b))


def test_float32_stays_float32():
    for name in ("ogd", "optimistic_adam", "rprop", "adadelta_wd_mask"):
        opt = ALIASES[name]()
        p = {"a": np.linspace(-1, 1, 11).astype(np.float32), "b": np.ones(2, np.float32)}
        s = opt.init(p)
        p, s = opt.step(p, tree_map(lambda x: x + 1, p), s)
        assert all(x.dtype == np.float32 for x in tree_leaves((p, s)) if np.ndim(x))
    for k, hp_pos in ((kopt.optimistic_cpu, 3), (krprop.rprop_cpu, 4),
                      (kadadelta.adadelta_cpu, 4)):
        sigs = [sig for sig in k.serial.signatures if str(sig[0].dtype) == "float32"]
        assert sigs, k.__name__
        for sig in sigs:
            assert all(str(t) == "float32" for t in sig[hp_pos]), sig


@given(st.lists(st.floats(-10, 10, allow_subnormal=False), min_size=1, max_size=12),
       st.floats(1e-4, 1.0), st.floats(0.1, 0.9), st.floats(1.05, 2.0))
def test_rprop_step_sizes_stay_within_bounds(gs, lr, eta_minus, eta_plus):
    lo, hi = 1e-3, 1.5
    tx = npopt.scale_by_rprop(lr, eta_minus, eta_plus, lo, hi)
    p = np.zeros(1)
    s = tx.init(p)
    for g in gs:
        u, s = tx.update(np.array([g]), s, p)
        step = s.step_sizes[0]
        assert step == lr or lo <= step <= hi      # untouched until a sign is compared
        assert abs(s.prev_updates[0]) in (0.0, step)
        assert abs(u[0]) <= max(lr, hi)


@given(st.floats(0.0, 0.99), st.floats(1e-8, 1e-2), st.floats(-100, 100))
def test_adadelta_first_step_size(rho, eps, g):
    """|u_1| = sqrt(eps) / sqrt((1-rho) g^2 + eps) |g| < sqrt(eps / (1 - rho))."""
    tx = npopt.scale_by_adadelta(rho, eps)
    u, _ = tx.update(np.array([g]), tx.init(np.zeros(1)), np.zeros(1))
    want = np.sqrt(eps) / np.sqrt((1 - rho) * g * g + eps) * g
    assert u[0] == pytest.approx(want, rel=1e-14, abs=1e-300)
    assert abs(u[0]) <= np.sqrt(eps / (1 - rho)) * (1 + 1e-12)


# ---------------------------------------------------------------------------
# CUDA (simulator) against the CPU kernels
# ---------------------------------------------------------------------------

cuda = pytest.importorskip("numba.cuda", reason="numba-cuda (the 'cuda' extra) not installed")
# a few ulps (the targets contract differently)
ULPS = {np.dtype(np.float32): 2e-6, np.dtype(np.float64): 1e-14}


def _kernel_inputs(dtype, n=300, seed=5):
    rng = np.random.default_rng(seed)
    g = rng.standard_normal(n).astype(dtype)
    g[::7] = 0
    prev = rng.standard_normal(n).astype(dtype)
    prev[::5] = 0
    return rng, g, prev


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel", ["optimistic", "optimistic_adam", "rprop", "adadelta",
                                    "adadelta_decay_first"])
def test_cuda_kernels_match_cpu(kernel, dtype, fused):
    rng, g, prev = _kernel_inputs(dtype)
    dt = np.dtype(dtype).type
    dst = rng.standard_normal(g.size).astype(dtype)
    post = (dt(-0.1), dt(0.05)) if fused else (dt(0), dt(0))
    if kernel == "optimistic":
        pair = (kopt.optimistic_cpu, kopt.optimistic_cuda)
        bufs = [g, prev, dst]
        static = ((dt(1.6), dt(0.8)), True)
    elif kernel == "optimistic_adam":
        pair = (kopt.optimistic_adam_cpu, kopt.optimistic_adam_cuda)
        mu = (0.1 * rng.standard_normal(g.size)).astype(dtype)
        nu = rng.uniform(0, 1, g.size).astype(dtype)
        hp_adam = tuple(dt(x) for x in (0.1, 0.9, 0.001, 0.999, 1 / 0.19, 1 / 0.271, 1 / 0.002,
                                        1e-8, 0.0, 0.9))
        bufs = [g, mu, nu, prev, dst]
        static = (hp_adam, True, (dt(0.04), dt(0.03)), False)
    elif kernel == "rprop":
        pair = (krprop.rprop_cpu, krprop.rprop_cuda)
        step = rng.uniform(1e-3, 0.1, g.size).astype(dtype)
        bufs = [g, step, prev, dst]
        static = (tuple(dt(x) for x in (0.5, 1.2, 1e-3, 0.08, 1, 0)),)
    else:
        pair = (kadadelta.adadelta_cpu, kadadelta.adadelta_cuda)
        e_g = rng.uniform(0, 1, g.size).astype(dtype)
        e_x = rng.uniform(0, 1e-2, g.size).astype(dtype)
        bufs = [g, e_g, e_x, dst]
        static = (tuple(dt(x) for x in (0.1, 0.9, 1e-6, 1)), kernel == "adadelta_decay_first")
    host = [b.copy() for b in bufs]
    pair[0](*host, *static, post, fused)
    dev = [cuda.to_device(b) for b in bufs]
    pair[1](g.size, *dev, *static, post, fused)
    for h, d in zip(host[1:], dev[1:]):          # every buffer the kernel writes
        assert rel_err(d.copy_to_host(), h) <= ULPS[np.dtype(dtype)]


def _to_device(tree):
    return tree_map(cuda.to_device, tree)


def _to_host(tree):
    return tree_map(lambda x: x.copy_to_host() if hasattr(x, "copy_to_host") else x, tree)


@pytest.mark.parametrize("path", ["update", "step"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(ALIASES))
def test_cuda_aliases_match_cpu(name, dtype, path):
    params, grads = _problem(dtype, steps=4)
    opt = ALIASES[name]()
    cpu_p, cpu_s = params, opt.init(params)
    dev_p = _to_device(params)
    dev_s = opt.init(dev_p)
    for g in grads:
        if path == "update":
            u, cpu_s = opt.update(g, cpu_s, cpu_p)
            cpu_p = npopt.apply_updates(cpu_p, u)
            du, dev_s = opt.update(_to_device(g), dev_s, dev_p)
            dev_p = npopt.apply_updates(dev_p, du)
        else:
            cpu_p, cpu_s = opt.step(cpu_p, g, cpu_s)
            dev_p, dev_s = opt.step(dev_p, _to_device(g), dev_s)
    for leaf in tree_leaves(dev_s):                # the state stayed on the device
        if np.ndim(leaf) > 0:
            assert is_device_array(leaf), type(leaf)
    for a, b in zip(tree_leaves(_to_host(dev_p)), tree_leaves(cpu_p)):
        assert a.dtype == b.dtype
        assert rel_err(a, b) <= ULPS[np.dtype(dtype)]
    for a, b in zip(tree_leaves(_to_host(dev_s)), tree_leaves(cpu_s)):
        assert rel_err(np.asarray(a), np.asarray(b)) <= 10 * ULPS[np.dtype(dtype)]


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("make, err, match", [
    (lambda: npopt.rprop(-0.1), ValueError, "learning_rate: expected a finite number >= 0"),
    (lambda: npopt.rprop(lambda c: 0.1), ValueError, "learning_rate: expected a finite number"),
    (lambda: npopt.rprop(0.1, eta_minus=float("nan")), ValueError, "eta_minus"),
    (lambda: npopt.rprop(0.1, eta_plus=-1.0), ValueError, "eta_plus"),
    (lambda: npopt.rprop(0.1, min_step_size=-1e-6), ValueError, "min_step_size"),
    (lambda: npopt.rprop(0.1, min_step_size=1.0, max_step_size=0.5), ValueError,
     "max_step_size: expected a finite number >= 1.0"),
    (lambda: npopt.adadelta(rho=1.5), ValueError, "rho: expected a finite number >= 0.0"),
    (lambda: npopt.adadelta(eps=-1.0), ValueError, "eps: expected a finite number >= 0.0"),
    (lambda: npopt.adadelta(-1.0), ValueError, "learning_rate: expected a finite number >= 0"),
    (lambda: npopt.adadelta(0.1, weight_decay="x"), ValueError, "weight_decay"),
    (lambda: npopt.optimistic_gradient_descent(-0.1), ValueError, "learning_rate"),
    (lambda: npopt.optimistic_gradient_descent(0.1, alpha=lambda c: 1.0), ValueError,
     "alpha: expected a finite number"),
    (lambda: npopt.optimistic_gradient_descent(0.1, beta=float("inf")), ValueError, "beta"),
    (lambda: npopt.optimistic_adam_v2(0.1, b1=1.0), ValueError, "b1"),
    (lambda: npopt.optimistic_adam_v2(0.1, mu_dtype=np.int32), TypeError, "mu_dtype"),
])
def test_bad_hyperparameters(make, err, match):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(err, match=match):
            make()


@pytest.mark.parametrize("name", sorted(ALIASES))
@pytest.mark.parametrize("path", ["update", "step"])
def test_bad_state_and_grads_touch_nothing(name, path):
    params, grads = _problem(np.float64)
    opt = ALIASES[name]()
    state = opt.init(params)
    _, state = opt.update(grads[0], state, params)
    snapshot = [np.array(x, copy=True) for x in tree_leaves((params, state))]

    def call(g, s):
        if path == "update":
            return opt.update(g, s, params)
        return opt.step(params, g, s)

    with pytest.raises(ValueError, match=r"leaf \d has shape"):
        call({"a": grads[1]["a"], "b": np.zeros((4, 3))}, state)
    with pytest.raises(TypeError, match="state: expected"):
        call(grads[1], npopt.adam(0.1).init(params))       # another optimizer's state
    trace = npopt.sgd(0.1, momentum=0.9).init(params)[0]
    for k, sk in enumerate(state):                          # right length, a wrong element
        if type(sk).__name__.startswith("ScaleBy"):
            wrong = state[:k] + (trace,) + state[k + 1:]
            with pytest.raises(TypeError, match="state: expected"):
                call(grads[1], wrong)
    for a, b in zip(snapshot, tree_leaves((params, state))):
        np.testing.assert_array_equal(a, np.asarray(b))


def test_is_initial_step_must_be_a_boolean_scalar():
    opt = npopt.optimistic_gradient_descent(0.1)
    p = np.zeros(3)
    s = opt.init(p)
    bad = (s[0]._replace(is_initial_step=np.array([True, False])), s[1])
    with pytest.raises(TypeError, match="state.is_initial_step: expected a boolean scalar"):
        opt.update(np.ones(3), bad, p)
    with pytest.raises(TypeError, match="state.is_initial_step"):
        opt.step(p, np.ones(3), bad)
    np.testing.assert_array_equal(p, 0)


def test_rprop_sign_change_skips_two_updates():
    """The lag makes the step after a sign change 0 as well (optax 0.2.8)."""
    opt = npopt.rprop(0.1)
    p = np.zeros(1)
    s = opt.init(p)
    out = []
    for g in (1.0, 1.0, -1.0, -1.0, -1.0):
        u, s = opt.update(np.array([g]), s, p)
        out.append(float(u[0]))
    np.testing.assert_allclose(out, [0.0, -0.1, 0.0, 0.0, 0.06], rtol=1e-15)
