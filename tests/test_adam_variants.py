"""amsgrad, adamax(w), adabelief, yogi, radam and adan beyond the optax replay
(tests/test_alias_reference.py, cases_adam_variants.py):

* every kernel against a plain-NumPy version of its rule written from the
  formulas (float64, hypothesis over hyperparameters and gradients);
* properties that hold whatever the reference says (AMSGrad's max never
  decreases, AdaMax's eps inside the max, AdaBelief's accumulating eps_root,
  Yogi's additive step, RAdam's momentum-only warm-up, Adan's first step);
* CUDA kernels (simulator, or a GPU with NUMBA_ENABLE_CUDASIM=0) against the
  CPU kernels, state kept on the device;
* ``step`` of every alias is the fused kernel pass, in place;
* optax's signatures, defaults and state classes; bad hyperparameters.
"""
import inspect

import numpy as np
import pytest
from hypothesis import given, strategies as st

import npopt
from conftest import rel_err
from npopt.transforms.adam_variants import radam_rectification
from npopt.tree import tree_leaves, tree_map

MASK = {"a": False, "b": True}


def _problem(dtype, steps=8, seed=1):
    rng = np.random.default_rng(seed)
    params = {"a": rng.standard_normal(7).astype(dtype),
              "b": rng.standard_normal((3, 4)).astype(dtype)}
    grads = [tree_map(lambda p: rng.standard_normal(p.shape).astype(dtype), params)
             for _ in range(steps)]
    return params, grads


# ---------------------------------------------------------------------------
# naive rules, straight from the formulas (float64, divisions as written)
# ---------------------------------------------------------------------------

def _bc(x, b, t):
    return x / (1 - b ** t)


def _nesterov_or_plain(mu, g, b1, t, nesterov):
    if nesterov:
        return b1 * _bc(mu, b1, t + 1) + (1 - b1) * _bc(g, b1, t)
    return _bc(mu, b1, t)


def naive_amsgrad(s, g, t, b1, b2, eps, eps_root, bias_correction_mu=True,
                  bias_correction_nu=True):
    mu = b1 * s["mu"] + (1 - b1) * g
    nu = b2 * s["nu"] + (1 - b2) * g ** 2
    mu_hat = _bc(mu, b1, t) if bias_correction_mu else mu
    nu_eff = _bc(nu, b2, t) if bias_correction_nu else nu
    nu_max = np.maximum(s["nu_max"], nu_eff)
    return mu_hat / (np.sqrt(nu_max + eps_root) + eps), dict(mu=mu, nu=nu, nu_max=nu_max)


def naive_adamax(s, g, t, b1, b2, eps):
    mu = b1 * s["mu"] + (1 - b1) * g
    nu = np.maximum(np.abs(g) + eps, b2 * s["nu"])
    return _bc(mu, b1, t) / nu, dict(mu=mu, nu=nu)


def naive_belief(s, g, t, b1, b2, eps, eps_root, nesterov=False):
    mu = b1 * s["mu"] + (1 - b1) * g
    nu = b2 * s["nu"] + (1 - b2) * (g - mu) ** 2 + eps_root
    mu_hat = _nesterov_or_plain(mu, g, b1, t, nesterov)
    return mu_hat / (np.sqrt(_bc(nu, b2, t)) + eps), dict(mu=mu, nu=nu)


def naive_yogi(s, g, t, b1, b2, eps, eps_root, initial_accumulator_value=1e-6):
    mu = b1 * s["mu"] + (1 - b1) * g
    nu = s["nu"] - (1 - b2) * np.sign(s["nu"] - g ** 2) * g ** 2
    return _bc(mu, b1, t) / (np.sqrt(_bc(nu, b2, t) + eps_root) + eps), dict(mu=mu, nu=nu)


def naive_radam(s, g, t, b1, b2, eps, eps_root, threshold, nesterov=False):
    mu = b1 * s["mu"] + (1 - b1) * g
    nu = b2 * s["nu"] + (1 - b2) * g ** 2
    rho_inf = 2 / (1 - b2) - 1
    rho = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
    mu_hat = _nesterov_or_plain(mu, g, b1, t, nesterov)
    if rho >= threshold:
        r = np.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
        u = r * mu_hat / (np.sqrt(_bc(nu, b2, t) + eps_root) + eps)
    else:
        u = mu_hat
    return u, dict(mu=mu, nu=nu)


def naive_adan(s, g, t, b1, b2, b3, eps, eps_root):
    d = np.zeros_like(g) if t == 1 else g - s["g"]
    m = b1 * s["m"] + (1 - b1) * g
    v = b2 * s["v"] + (1 - b2) * d
    n = b3 * s["n"] + (1 - b3) * (g + (1 - b2) * d) ** 2
    u = (_bc(m, b1, t) + (1 - b2) * _bc(v, b2, t)) / (np.sqrt(_bc(n, b3, t) + eps_root) + eps)
    return u, dict(m=m, v=v, n=n, g=g)


def _fields(state):
    return {f: np.asarray(getattr(state, f), np.float64) for f in state._fields
            if f not in ("count", "t")}


decay = st.floats(0.0, 0.999)
small = st.sampled_from([0.0, 1e-12, 1e-8, 1e-4, 1e-2])
seed = st.integers(0, 2 ** 31 - 1)


def _check_against_naive(tx, naive, kw, seed, steps=7, scale=1.0):
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(40)
    state = tx.init(p)
    ref = _fields(state)
    for t in range(1, steps + 1):
        g = scale * rng.standard_normal(40)
        u, state = tx.update(g, state, p)
        u_ref, ref = naive(ref, g, t, **kw)
        assert rel_err(u, u_ref) <= 1e-11, (t, rel_err(u, u_ref))
        for f, want in ref.items():
            assert rel_err(getattr(state, f), want) <= 1e-11, (t, f)
    counter = state.t if hasattr(state, "t") else state.count
    assert counter.dtype == np.int32 and int(counter) == steps


@given(b1=decay, b2=decay, eps=small, eps_root=small, bcm=st.booleans(), bcn=st.booleans(),
       seed=seed)
def test_amsgrad_matches_formula(b1, b2, eps, eps_root, bcm, bcn, seed):
    kw = dict(b1=b1, b2=b2, eps=eps + 1e-6, eps_root=eps_root, bias_correction_mu=bcm,
              bias_correction_nu=bcn)
    _check_against_naive(npopt.scale_by_amsgrad(**kw), naive_amsgrad, kw, seed)


@given(b1=decay, b2=st.one_of(decay, st.just(1.0)), eps=small, seed=seed)
def test_adamax_matches_formula(b1, b2, eps, seed):
    kw = dict(b1=b1, b2=b2, eps=eps)
    _check_against_naive(npopt.scale_by_adamax(**kw), naive_adamax, kw, seed)


# b1 in (0, 0.1) is left out: g - mu = b1 (g - mu_old) then cancels to a
# relative error of ~eps/b1, which the division by sqrt(s) carries into u.
@given(b1=st.one_of(st.just(0.0), st.floats(0.1, 0.999)), b2=decay, eps=small, eps_root=small,
       nesterov=st.booleans(), seed=seed)
def test_belief_matches_formula(b1, b2, eps, eps_root, nesterov, seed):
    kw = dict(b1=b1, b2=b2, eps=eps + 1e-6, eps_root=eps_root, nesterov=nesterov)
    _check_against_naive(npopt.scale_by_belief(**kw), naive_belief, kw, seed)


@given(b1=decay, b2=decay, eps=small, eps_root=small, init=st.sampled_from([0.0, 1e-6, 0.5]),
       seed=seed)
def test_yogi_matches_formula(b1, b2, eps, eps_root, init, seed):
    kw = dict(b1=b1, b2=b2, eps=eps + 1e-6, eps_root=eps_root, initial_accumulator_value=init)
    _check_against_naive(npopt.scale_by_yogi(**kw), naive_yogi, kw, seed)


@given(b1=decay, b2=st.floats(0.5, 0.999), eps=small, eps_root=small,
       threshold=st.sampled_from([4.0, 5.0, 8.0]), nesterov=st.booleans(), seed=seed)
def test_radam_matches_formula(b1, b2, eps, eps_root, threshold, nesterov, seed):
    kw = dict(b1=b1, b2=b2, eps=eps + 1e-6, eps_root=eps_root, threshold=threshold,
              nesterov=nesterov)
    _check_against_naive(npopt.scale_by_radam(**kw), naive_radam, kw, seed, steps=12)


@given(b1=decay, b2=decay, b3=decay, eps=small, eps_root=small, seed=seed)
def test_adan_matches_formula(b1, b2, b3, eps, eps_root, seed):
    kw = dict(b1=b1, b2=b2, b3=b3, eps=eps + 1e-6, eps_root=eps_root)
    _check_against_naive(npopt.scale_by_adan(**kw), naive_adan, kw, seed)


# ---------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------

def _run(tx, grads, p=None):
    p = np.zeros_like(grads[0]) if p is None else p
    state, out = tx.init(p), []
    for g in grads:
        u, state = tx.update(g, state, p)
        out.append((u, state))
    return out


@given(seed=seed, scale=st.floats(1e-3, 1e3))
def test_amsgrad_max_never_decreases(seed, scale):
    rng = np.random.default_rng(seed)
    grads = [scale * rng.standard_normal(30) * rng.uniform(0, 2) for _ in range(10)]
    prev = np.zeros(30)
    for u, s in _run(npopt.scale_by_amsgrad(), grads):
        assert np.all(s.nu_max >= prev)
        # the denominator uses the max, so the step is no larger than Adam's
        assert np.all(np.abs(u) <= np.abs(s.mu / (1 - 0.9 ** int(s.count)))
                      / (np.sqrt(s.nu / (1 - 0.999 ** int(s.count))) + 1e-8) * (1 + 1e-12))
        prev = s.nu_max


@given(seed=seed, eps=st.sampled_from([1e-8, 1e-3, 1.0]))
def test_adamax_eps_is_inside_the_max(seed, eps):
    rng = np.random.default_rng(seed)
    grads = [rng.standard_normal(30) for _ in range(5)] + [np.zeros(30)]
    prev = np.zeros(30)
    for (u, s), g in zip(_run(npopt.scale_by_adamax(b2=0.5, eps=eps), grads), grads):
        assert np.all(s.nu >= np.abs(g) + eps)         # eps is stored in nu ...
        assert np.all(s.nu >= 0.5 * prev)
        prev = s.nu
    # ... so a zero gradient from a zero state gives 0 / eps, not 0 / 0
    u, s = _run(npopt.scale_by_adamax(eps=eps), [np.zeros(3)])[0]
    assert np.all(u == 0) and np.all(s.nu == eps)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_belief_eps_root_accumulates_in_the_state(dtype):
    """optax adds eps_root to the stored nu every step: with zero gradients
    nu_t = eps_root * (1 - b2**t) / (1 - b2), a geometric sum."""
    b2, eps_root, steps = 0.9, 1e-3, 20
    out = _run(npopt.scale_by_belief(b2=b2, eps_root=eps_root), [np.zeros(4, dtype)] * steps)
    nu = out[-1][1].nu
    assert nu.dtype == dtype
    want = eps_root * (1 - b2 ** steps) / (1 - b2)
    np.testing.assert_allclose(nu, want, rtol=1e-5 if dtype == np.float32 else 1e-13)


@given(seed=seed)
def test_yogi_second_moment_moves_by_c2_g2_and_stays_positive(seed):
    rng = np.random.default_rng(seed)
    grads = [rng.standard_normal(30) * 10 ** rng.uniform(-3, 2) for _ in range(10)]
    prev = np.full(30, 1e-6)                           # initial_accumulator_value
    for (u, s), g in zip(_run(npopt.scale_by_yogi(b2=0.9), grads), grads):
        step = np.abs(s.nu - prev)
        np.testing.assert_allclose(step, 0.1 * g * g, rtol=1e-6, atol=1e-15 * np.max(prev))
        assert np.all(s.nu > 0)
        prev = s.nu


def test_yogi_moments_start_at_the_initial_accumulator_value():
    s = npopt.yogi(0.1).init({"w": np.zeros(3)})[0]
    assert np.all(s.mu["w"] == 1e-6) and np.all(s.nu["w"] == 1e-6)
    s = npopt.scale_by_yogi(initial_accumulator_value=0.25).init(np.zeros(2, np.float32))
    assert s.nu.dtype == np.float32 and np.all(s.nu == np.float32(0.25))


def test_radam_rectification():
    rho_inf = 2 / (1 - 0.999) - 1
    rs = []
    for t in range(1, 2000):
        rect, r = radam_rectification(0.999, 5.0, t)
        rho = rho_inf - 2 * t * 0.999 ** t / (1 - 0.999 ** t)
        assert rect == (rho >= 5.0)
        if rect:
            assert 0.0 < r <= 1.0
            rs.append(r)
    assert rs == sorted(rs) and rs[-1] > 0.8         # increasing towards 1
    assert [radam_rectification(0.999, 5.0, t)[0] for t in range(1, 8)] == \
        [False] * 5 + [True] * 2                     # 5 momentum-only steps
    # threshold < 4 admits rho_t in (2, 4): a negative radicand, NaN as in optax
    assert np.isnan(radam_rectification(0.999, 2.5, 3)[1])       # rho_3 = 2.999


def test_radam_warmup_steps_are_bias_corrected_momentum():
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(10) for _ in range(6)]
    out = _run(npopt.scale_by_radam(), grads)
    for t, (u, s) in enumerate(out[:5], 1):
        np.testing.assert_allclose(u, s.mu / (1 - 0.9 ** t), rtol=1e-15)
    u, s = out[5]
    assert not np.allclose(u, s.mu / (1 - 0.9 ** 6))


def test_adan_first_step_and_constant_gradient():
    g = np.array([1.0, -2.0, 0.5])
    out = _run(npopt.scale_by_adan(), [g] * 5)
    for u, s in out:
        assert np.all(s.v == 0)                      # no gradient difference, ever
        np.testing.assert_array_equal(s.g, g)        # the previous gradient is stored
        np.testing.assert_allclose(u, np.sign(g), rtol=1e-7)   # m^ / sqrt(n^) = sign(g)
    assert [int(s.t) for _, s in out] == [1, 2, 3, 4, 5]


ALIASES = {
    "amsgrad": lambda: npopt.amsgrad(0.05),
    "amsgrad_paper": lambda: npopt.amsgrad(0.05, eps_root=1e-8, bias_correction_mu=False,
                                           bias_correction_nu=False),
    "amsgrad_mu_f32": lambda: npopt.amsgrad(0.05, mu_dtype=np.float32),
    "adamax": lambda: npopt.adamax(0.05),
    "adamaxw_mask": lambda: npopt.adamaxw(0.05, weight_decay=0.1, mask=MASK),
    "adabelief": lambda: npopt.adabelief(0.05, eps=1e-8),
    "adabelief_nesterov": lambda: npopt.adabelief(lambda c: 0.05 / (1 + c), eps=1e-8,
                                                  nesterov=True),
    "yogi": lambda: npopt.yogi(0.05),
    # b2=0.9: rho_t reaches 5 at t = 6, so 8 steps cover both branches
    "radam": lambda: npopt.radam(0.05, b2=0.9),
    "radam_nesterov": lambda: npopt.radam(0.05, b2=0.9, nesterov=True),
    "adan": lambda: npopt.adan(0.05),
    "adan_wd_mask": lambda: npopt.adan(0.05, weight_decay=0.1, mask=MASK),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(ALIASES))
def test_step_is_fused_in_place_and_matches_update(name, dtype):
    """``step`` is the chain's fused kernel pass (not update + apply_updates):
    after the first call it writes the params and moments in place; it
    computes what update + apply_updates computes (to the ulp FMA
    contraction of ``p + (-lr) * u`` makes)."""
    opt = ALIASES[name]()
    assert opt.fused_step is not None, name
    params, grads = _problem(dtype)
    p_ref, s_ref = params, opt.init(params)
    p, s = params, opt.init(params)
    before = [np.array(x, copy=True) for x in tree_leaves((params, grads))]
    for k, g in enumerate(grads):
        u, s_ref = opt.update(g, s_ref, p_ref)
        p_ref = npopt.apply_updates(p_ref, u)
        p_new, s_new = opt.step(p, g, s)
        if k > 0:   # steady state: the same buffers, updated in place
            for a, b in zip(tree_leaves((p, s)), tree_leaves((p_new, s_new))):
                if np.ndim(a) > 0:
                    assert np.shares_memory(a, b)
        p, s = p_new, s_new
    assert all(np.array_equal(a, b) for a, b in
               zip(before[len(tree_leaves(params)):], tree_leaves(grads)))
    tol = 1e-5 if dtype == np.float32 else 1e-13
    for a, b in zip(tree_leaves((p, s)), tree_leaves((p_ref, s_ref))):
        assert np.asarray(a).dtype == np.asarray(b).dtype
        assert rel_err(a, b) <= tol


def test_update_does_not_touch_its_inputs():
    for name, make in ALIASES.items():
        opt = make()
        params, grads = _problem(np.float64, steps=2)
        state = opt.init(params)
        _, state = opt.update(grads[0], state, params)
        before = [np.array(x, copy=True) for x in tree_leaves((params, grads[1], state))]
        opt.update(grads[1], state, params)
        after = tree_leaves((params, grads[1], state))
        assert all(np.array_equal(a, b) for a, b in zip(before, after)), name


def test_weight_decay_schedule_falls_back_to_update_and_apply():
    opt = npopt.adamaxw(0.05, weight_decay=lambda c: 0.1 / (1 + c))
    assert opt.fused_step is None     # add_decayed_weights with a schedule has a count
    params, grads = _problem(np.float64, steps=3)
    p, s = params, opt.init(params)
    for g in grads:
        p, s = opt.step(p, g, s)
    assert int(s[1].count) == 3


# ---------------------------------------------------------------------------
# CUDA kernels (simulator unless NUMBA_ENABLE_CUDASIM=0) against the CPU
# ---------------------------------------------------------------------------

ULPS = {np.dtype(np.float32): 4e-6, np.dtype(np.float64): 1e-13}


@pytest.mark.parametrize("path", ["update", "step"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(ALIASES))
def test_cuda_matches_cpu(name, dtype, path):
    cuda = pytest.importorskip("numba.cuda", reason="numba-cuda (the 'cuda' extra) not installed")
    from npopt._target import is_device_array
    params, grads = _problem(dtype)
    opt = ALIASES[name]()
    cpu_p, cpu_s = params, opt.init(params)
    dev_p = tree_map(cuda.to_device, params)
    dev_s = opt.init(dev_p)
    for g in grads:
        dg = tree_map(cuda.to_device, g)
        if path == "update":
            u, cpu_s = opt.update(g, cpu_s, cpu_p)
            cpu_p = npopt.apply_updates(cpu_p, u)
            du, dev_s = opt.update(dg, dev_s, dev_p)
            dev_p = npopt.apply_updates(dev_p, du)
        else:
            cpu_p, cpu_s = opt.step(cpu_p, g, cpu_s)
            dev_p, dev_s = opt.step(dev_p, dg, dev_s)
    for leaf in tree_leaves(dev_s):
        if np.ndim(leaf) > 0:
            assert is_device_array(leaf), type(leaf)

    def host(tree):
        return tree_map(lambda x: x.copy_to_host() if hasattr(x, "copy_to_host") else x, tree)
    for a, b in zip(tree_leaves(host(dev_p)), tree_leaves(cpu_p)):
        assert a.dtype == b.dtype
        assert rel_err(a, b) <= ULPS[np.dtype(dtype)], rel_err(a, b)
    for a, b in zip(tree_leaves(host(dev_s)), tree_leaves(cpu_s)):
        assert np.asarray(a).dtype == np.asarray(b).dtype
        assert rel_err(np.asarray(a), np.asarray(b)) <= 10 * ULPS[np.dtype(dtype)]


# ---------------------------------------------------------------------------
# optax's names, signatures, defaults and states
# ---------------------------------------------------------------------------

SIGNATURES = {
    "adabelief": "(learning_rate, b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16, *, nesterov=False)",
    "adamax": "(learning_rate, b1=0.9, b2=0.999, eps=1e-08)",
    "adamaxw": "(learning_rate, b1=0.9, b2=0.999, eps=1e-08, weight_decay=0.0001, mask=None)",
    "adan": "(learning_rate, b1=0.98, b2=0.92, b3=0.99, eps=1e-08, eps_root=1e-08, "
            "weight_decay=0.0, mask=None)",
    "amsgrad": "(learning_rate, b1=0.9, b2=0.999, eps=1e-08, eps_root=0.0, mu_dtype=None, "
               "bias_correction_mu=True, bias_correction_nu=True)",
    "radam": "(learning_rate, b1=0.9, b2=0.999, eps=1e-08, eps_root=0.0, threshold=5.0, *, "
             "nesterov=False)",
    "yogi": "(learning_rate, b1=0.9, b2=0.999, eps=0.001)",
    "scale_by_adamax": "(b1=0.9, b2=0.999, eps=1e-08)",
    "scale_by_adan": "(b1=0.98, b2=0.92, b3=0.99, eps=1e-08, eps_root=0.0)",
    "scale_by_amsgrad": "(b1=0.9, b2=0.999, eps=1e-08, eps_root=0.0, mu_dtype=None, "
                        "bias_correction_mu=True, bias_correction_nu=True)",
    "scale_by_belief": "(b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16, *, nesterov=False)",
    "scale_by_radam": "(b1=0.9, b2=0.999, eps=1e-08, eps_root=0.0, threshold=5.0, *, "
                      "nesterov=False)",
    "scale_by_yogi": "(b1=0.9, b2=0.999, eps=0.001, eps_root=0.0, "
                     "initial_accumulator_value=1e-06)",
}


@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_optax_signatures(name):
    assert str(inspect.signature(getattr(npopt, name))) == SIGNATURES[name]


def test_state_structures():
    p = {"a": np.zeros(2), "b": np.zeros(3)}
    s = npopt.amsgrad(0.1).init(p)
    assert type(s[0]).__name__ == "ScaleByAmsgradState"
    assert s[0]._fields == ("count", "mu", "nu", "nu_max")
    assert type(s[1]).__name__ == "EmptyState"
    s = npopt.adan(0.1).init(p)
    assert type(s[0]) is npopt.ScaleByAdanState
    assert s[0]._fields == ("m", "v", "n", "g", "t") and s[0].t.dtype == np.int32
    assert len(s) == 3
    assert type(npopt.adabelief(0.1).init(p)[0]) is npopt.ScaleByBeliefState
    for alias in (npopt.adamax, npopt.yogi, npopt.radam):
        assert type(alias(0.1).init(p)[0]) is npopt.ScaleByAdamState
    s = npopt.adamaxw(0.1, mask=MASK).init(p)
    assert type(s[1]).__name__ == "MaskedState"
    s = npopt.amsgrad(0.1, mu_dtype=np.float32).init(p)
    assert s[0].mu["a"].dtype == np.float32 and s[0].nu["a"].dtype == np.float64


def test_adan_alias_and_block_eps_root_defaults_differ():
    p, grads = _problem(np.float64, steps=3)
    a = npopt.adan(0.1)
    b = npopt.chain(npopt.scale_by_adan(eps_root=1e-8), npopt.add_decayed_weights(0.0),
                    npopt.scale_by_learning_rate(0.1))
    c = npopt.chain(npopt.scale_by_adan(), npopt.scale_by_learning_rate(0.1))
    sa, sb, sc = a.init(p), b.init(p), c.init(p)
    for g in grads:
        ua, sa = a.update(g, sa, p)
        ub, sb = b.update(g, sb, p)
        uc, sc = c.update(g, sc, p)
    assert all(np.array_equal(x, y) for x, y in zip(tree_leaves(ua), tree_leaves(ub)))
    assert not all(np.array_equal(x, y) for x, y in zip(tree_leaves(ua), tree_leaves(uc)))


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("make,arg", [
    (lambda: npopt.amsgrad(0.1, b1=1.0), "b1"),
    (lambda: npopt.amsgrad(0.1, b2=1.0), "b2"),
    (lambda: npopt.amsgrad(0.1, eps_root=-1e-8), "eps_root"),
    (lambda: npopt.adamax(0.1, b1=-0.1), "b1"),
    (lambda: npopt.adamax(0.1, b2=1.01), "b2"),
    (lambda: npopt.adamax(0.1, eps=float("nan")), "eps"),
    (lambda: npopt.adamaxw(0.1, weight_decay=float("inf")), "weight_decay"),
    (lambda: npopt.adabelief(0.1, b2=1.0), "b2"),
    (lambda: npopt.adabelief(0.1, eps_root=-1.0), "eps_root"),
    (lambda: npopt.yogi(0.1, eps=-1e-3), "eps"),
    (lambda: npopt.scale_by_yogi(initial_accumulator_value=-1.0), "initial_accumulator_value"),
    (lambda: npopt.radam(0.1, threshold=float("inf")), "threshold"),
    (lambda: npopt.radam(0.1, b2=1.0), "b2"),
    (lambda: npopt.adan(0.1, b3=1.0), "b3"),
    (lambda: npopt.adan(0.1, eps_root=-1.0), "eps_root"),
    (lambda: npopt.adan(-0.1), "learning_rate"),
])
def test_bad_hyperparameters_name_the_argument(make, arg):
    with pytest.raises(ValueError, match=f"^{arg}: expected"):
        make()


def test_amsgrad_without_bias_correction_accepts_unit_decays():
    npopt.amsgrad(0.1, b1=1.0, bias_correction_mu=False)
    npopt.amsgrad(0.1, b2=1.0, bias_correction_nu=False)
    npopt.adamax(0.1, b2=1.0)


def test_bad_flags_and_dtypes():
    with pytest.raises(TypeError, match="bias_correction_mu: expected True or False"):
        npopt.amsgrad(0.1, bias_correction_mu="yes")
    with pytest.raises(TypeError, match="mu_dtype: expected None, float32, float64, float16 "
                                        "or bfloat16"):
        npopt.amsgrad(0.1, mu_dtype=np.int32)
    for alias in (npopt.adabelief, npopt.radam):
        with pytest.raises(TypeError, match="nesterov: expected True or False"):
            alias(0.1, nesterov=1)


@pytest.mark.parametrize("path", ["update", "step"])
def test_state_from_another_optimizer_leaves_everything_untouched(path):
    params, grads = _problem(np.float32, steps=1)
    for opt, other, cls in [(npopt.adan(0.1), npopt.adam(0.1), "ScaleByAdanState"),
                            (npopt.amsgrad(0.1), npopt.adam(0.1), "ScaleByAmsgradState"),
                            (npopt.adabelief(0.1), npopt.yogi(0.1), "ScaleByBeliefState"),
                            (npopt.radam(0.1), npopt.adan(0.1), "ScaleByAdamState")]:
        state = other.init(params)
        if len(state) != len(opt.init(params)):
            state = (state[0],) + opt.init(params)[1:]
        before = [np.array(x, copy=True) for x in tree_leaves((params, state))]
        with pytest.raises(TypeError, match=f"state: expected a {cls}"):
            if path == "update":
                opt.update(grads[0], state, params)
            else:
                opt.step(params, grads[0], state)
        after = tree_leaves((params, state))
        assert all(np.array_equal(a, b) for a, b in zip(before, after))


def test_mismatched_grads_are_refused_before_any_write():
    params, grads = _problem(np.float32, steps=1)
    opt = npopt.adan(0.1)
    state = opt.init(params)
    # float64 grads of float32 params are promoted as optax does (see
    # tests/test_step_safety.py); complex ones are refused
    bad = {"a": grads[0]["a"], "b": grads[0]["b"].astype(np.complex64)}
    before = [np.array(x, copy=True) for x in tree_leaves((params, state))]
    for path in ("update", "step"):
        with pytest.raises(TypeError, match="complex"):
            if path == "update":
                opt.update(bad, state, params)
            else:
                opt.step(params, bad, state)
    assert all(np.array_equal(a, b) for a, b in zip(before, tree_leaves((params, state))))
