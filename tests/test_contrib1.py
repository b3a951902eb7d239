"""npopt.contrib's elementwise rules (adopt, ademamix, simplified_ademamix,
madgrad, acprop, cocob, schedule_free).

The optax trajectories are replayed by test_alias_reference.py (cases in
reference/cases_contrib1.py). Here: optax's signatures and state fields,
each rule against a plain NumPy transcription of its paper's algorithm,
the CUDA kernels (simulator, or a GPU with NUMBA_ENABLE_CUDASIM=0) against
the CPU, the GPU's own cube root against libm's, the fused step against
update + apply_updates, dtypes and trees (hypothesis), and bad input.
"""
import inspect
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from numba import njit

import npopt
from conftest import rel_err
from npopt import contrib
from npopt.kernels import _jit, libm
from npopt.tree import tree_leaves, tree_map

C = contrib

# ---------------------------------------------------------------------------
# optax 0.2.8's signatures and state fields (catalog §2.11)
# ---------------------------------------------------------------------------

SIGNATURES = {
    "acprop": "(learning_rate, b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16, weight_decay=0.0, "
              "mask=None)",
    "scale_by_acprop": "(b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16)",
    "ademamix": "(learning_rate, b1=0.9, b2=0.999, b3=0.9999, alpha=5.0, eps=1e-08, "
                "eps_root=0.0, mu_dtype=None, weight_decay=0.0, mask=None)",
    "scale_by_ademamix": "(b1=0.9, b2=0.999, b3=0.9999, alpha=6.0, eps=1e-08, eps_root=0.0, "
                         "mu_dtype=None)",
    "simplified_ademamix": "(learning_rate, b1=0.99, b2=0.95, alpha=0.0, eps=1e-08, "
                           "eps_root=0.0, weight_decay=0.0, mask=None)",
    "scale_by_simplified_ademamix": "(b1=0.99, b2=0.95, alpha=0.0, eps=1e-08, eps_root=0.0)",
    "adopt": "(learning_rate, b1=0.9, b2=0.9999, eps=1e-06, mu_dtype=None, *, nesterov=False, "
             "use_clipping=True, clip_value_fn=CLIP)",
    "scale_by_adopt": "(b1=0.9, b2=0.9999, eps=1e-06, mu_dtype=None, *, nesterov=False, "
                      "use_clipping=True, clip_value_fn=CLIP)",
    "cocob": "(learning_rate=1.0, alpha=100.0, eps=1e-08, weight_decay=0.0, mask=None)",
    "scale_by_cocob": "(alpha=100.0, eps=1e-08)",
    "madgrad": "(learning_rate, momentum=0.9, weight_decay=0.0, eps=1e-06)",
    "scale_by_madgrad": "(learning_rate, momentum=0.9, eps=1e-06)",
    "schedule_free": "(base_optimizer, learning_rate, b1=0.9, weight_lr_power=2.0, "
                     "state_dtype=None)",
    "schedule_free_adamw": "(learning_rate=0.0025, warmup_steps=None, b1=0.9, b2=0.999, "
                           "eps=1e-08, weight_decay=0.0, weight_lr_power=2.0, state_dtype=None)",
    "schedule_free_eval_params": "(state, params)",
    "schedule_free_sgd": "(learning_rate=1.0, warmup_steps=None, b1=0.9, weight_decay=None, "
                         "weight_lr_power=2.0, state_dtype=None)",
}

STATES = {
    "ScaleByAdemamixState": ("count", "count_m2", "m1", "m2", "nu"),
    "ScaleBySimplifiedAdEMAMixState": ("t", "m", "n"),
    "MadgradState": ("count", "grad_sum_sq", "s", "x0"),
    "COCOBState": ("init_particles", "cumulative_gradients", "scale", "subgradients", "reward"),
    "ScheduleFreeState": ("b1", "weight_sum", "step_count", "max_lr", "base_optimizer_state",
                          "z"),
}


@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_signature_is_optax(name):
    sig = inspect.signature(getattr(C, name))
    text = str(sig)
    if "clip_value_fn" in sig.parameters:
        fn = sig.parameters["clip_value_fn"].default
        assert fn(16) == 2.0 and fn(81.0) == 3.0          # optax's lambda x: x**0.25
        text = text[:text.index("clip_value_fn=")] + "clip_value_fn=CLIP)"
    assert text == SIGNATURES[name]


@pytest.mark.parametrize("name", sorted(STATES))
def test_state_fields_are_optax(name):
    assert getattr(C, name)._fields == STATES[name]


def test_init_states_have_optax_dtypes():
    p = {"a": np.ones(3, np.float32), "b": np.ones((2, 2), np.float32)}
    s = C.scale_by_ademamix().init(p)
    assert s.count.dtype == s.count_m2.dtype == np.int32
    assert all(x.dtype == np.float32 for x in tree_leaves((s.m1, s.m2, s.nu)))
    s = C.scale_by_ademamix(mu_dtype=np.float64).init(p)
    assert all(x.dtype == np.float64 for x in tree_leaves((s.m1, s.m2, s.nu)))
    s = C.scale_by_simplified_ademamix().init(p)
    assert s.t.dtype == np.int32 and int(s.t) == 0
    s = C.scale_by_adopt(mu_dtype=np.float64).init(p)
    assert type(s) is npopt.ScaleByAdamState and s.mu["a"].dtype == np.float64
    assert s.nu["a"].dtype == np.float32
    assert type(C.scale_by_acprop().init(p)) is npopt.ScaleByBeliefState
    s = C.scale_by_cocob(eps=0.25).init(p)
    assert np.all(s.scale["a"] == np.float32(0.25)) and s.init_particles["a"] is not p["a"]
    s = C.scale_by_madgrad(0.1).init(p)
    assert s.x0["b"] is not p["b"] and np.array_equal(s.x0["b"], p["b"])
    s = C.schedule_free_sgd(state_dtype=np.float64).init(p)
    assert s.b1.dtype == s.weight_sum.dtype == s.max_lr.dtype == np.float32
    assert s.step_count.dtype == np.int32 and int(s.step_count) == 1
    assert s.z["a"].dtype == np.float64
    assert type(s.base_optimizer_state) is type(npopt.sgd(1.0).init(p))


# ---------------------------------------------------------------------------
# The papers' algorithms, transcribed in plain NumPy (float64)
# ---------------------------------------------------------------------------

def adopt_paper(g_seq, p, lr, b1, b2, eps, clip=lambda k: k ** 0.25):
    """Taniguchi et al. 2024, Algorithm 2 (ADOPT with clipping); optax's
    step 0 initialises v and leaves the params (m_0 = 0)."""
    m, v, out = np.zeros_like(p), None, []
    for k, g in enumerate(g_seq):
        if v is None:
            v = g * g
        else:
            m = b1 * m + (1 - b1) * np.clip(g / np.maximum(np.sqrt(v), eps), -clip(k), clip(k))
            v = b2 * v + (1 - b2) * g * g
        p = p - lr * m
        out.append(p)
    return out


def ademamix_paper(g_seq, p, lr, b1, b2, b3, alpha, eps, wd):
    """Pagliardini et al. 2024, Algorithm 1 (no warm-up schedulers)."""
    m1, m2, nu, out = 0 * p, 0 * p, 0 * p, []
    for t, g in enumerate(g_seq, 1):
        m1 = b1 * m1 + (1 - b1) * g
        m2 = b3 * m2 + (1 - b3) * g
        nu = b2 * nu + (1 - b2) * g * g
        m1h, nuh = m1 / (1 - b1 ** t), nu / (1 - b2 ** t)
        p = p - lr * ((m1h + alpha * m2) / (np.sqrt(nuh) + eps) + wd * p)
        out.append(p)
    return out


def simplified_ademamix_paper(g_seq, p, lr, b1, b2, alpha, eps):
    """Morwani et al. 2025: m = b1 m + g; Adam's bias-corrected RMS."""
    m, n, out = 0 * p, 0 * p, []
    for t, g in enumerate(g_seq, 1):
        m = b1 * m + g
        n = b2 * n + (1 - b2) * g * g
        p = p - lr * (m + alpha * g) / (np.sqrt(n / (1 - b2 ** t)) + eps)
        out.append(p)
    return out


def madgrad_paper(g_seq, p, lr, momentum, eps):
    """Defazio & Jelassi 2021, Algorithm 1, with optax's lr + eps and
    c_{k+1} = 1 - momentum; optax's lambda is a float32 number (JAX's sqrt
    of the int32 count is float32), 7e-11 from the float64 one."""
    x0, s, nu, out = p.copy(), 0 * p, 0 * p, []
    for k, g in enumerate(g_seq):
        lam = float(np.float32(lr + eps) * np.float32(math.sqrt(k + 1)))
        s = s + lam * g
        nu = nu + lam * g * g
        z = x0 - s / (np.cbrt(nu) + eps)   # cpu-ok: test oracle
        p = (1 - momentum) * z + momentum * p
        out.append(p)
    return out


def acprop_paper(g_seq, p, lr, b1, b2, eps, eps_root):
    """Zhuang et al. 2021, ACProp: the step uses s_{t-1} (1 at the first)."""
    m, s, out = 0 * p, 0 * p, []
    for t, g in enumerate(g_seq, 1):
        shat = np.ones_like(p) if t == 1 else s / (1 - b2 ** (t - 1))
        p = p - lr * g / (np.sqrt(shat) + eps)
        s = b2 * s + (1 - b2) * (g - m) ** 2 + eps_root
        m = b1 * m + (1 - b1) * g
        out.append(p)
    return out


def cocob_paper(g_seq, p, alpha, eps):
    """Orabona & Tommasi 2017, Algorithm 2 (COCOB-Backprop), L_0 = eps."""
    p0, L, G, R, theta, out = p.copy(), eps + 0 * p, 0 * p, 0 * p, 0 * p, []
    for g in g_seq:
        L = np.maximum(L, np.abs(g))
        G = G + np.abs(g)
        R = np.maximum(R - g * (p - p0), 0)
        theta = theta - g
        p = p0 + theta / (L * np.maximum(G + L, alpha * L)) * (L + R)
        out.append(p)
    return out


def schedule_free_sgd_paper(g_seq, p, lr, b1, power):
    """Defazio et al. 2024, Algorithm 1 (SGD, no warm-up): returns the y
    (gradient points) and x (averages) sequences."""
    z, x, wsum, ys, xs = p.copy(), p.copy(), 0.0, [], []
    for g in g_seq:
        z = z - lr * g
        w = lr ** power
        wsum += w
        c = w / wsum
        x = (1 - c) * x + c * z
        y = (1 - b1) * z + b1 * x
        ys.append(y)
        xs.append(x)
    return ys, xs


def _quadratic(n=6, steps=12, seed=3):
    """A separable quadratic's gradient at p, with noise, and the start."""
    rng = np.random.default_rng(seed)
    d, target = rng.uniform(0.5, 2.0, n), rng.standard_normal(n)
    noise = rng.standard_normal((steps, n)) * 0.1
    return (lambda p, k: d * (p - target) + noise[k]), rng.standard_normal(n), target


def _run(opt, p, grad, steps):
    """npopt's update path; the gradients seen (for the oracle to replay)."""
    s, gs, ps = opt.init(p), [], []
    for k in range(steps):
        g = grad(p, k)
        gs.append(g)
        u, s = opt.update(g, s, p)
        p = npopt.apply_updates(p, u)
        ps.append(p)
    return gs, ps, s


ORACLES = {
    "adopt": (lambda: C.adopt(0.05, b1=0.8, b2=0.99, eps=1e-6),
              lambda gs, p: adopt_paper(gs, p, 0.05, 0.8, 0.99, 1e-6)),
    "adopt_noclip": (lambda: C.adopt(0.05, b1=0.8, b2=0.99, eps=1e-3, use_clipping=False),
                     lambda gs, p: adopt_paper(gs, p, 0.05, 0.8, 0.99, 1e-3,
                                               clip=lambda k: np.inf)),
    "ademamix": (lambda: C.ademamix(0.05, b3=0.95, alpha=2.0, weight_decay=0.1),
                 lambda gs, p: ademamix_paper(gs, p, 0.05, 0.9, 0.999, 0.95, 2.0, 1e-8, 0.1)),
    "simplified_ademamix": (
        lambda: C.simplified_ademamix(0.01, b1=0.9, alpha=1.5, eps=1e-6),
        lambda gs, p: simplified_ademamix_paper(gs, p, 0.01, 0.9, 0.95, 1.5, 1e-6)),
    "madgrad": (lambda: C.madgrad(0.1, momentum=0.7),
                lambda gs, p: madgrad_paper(gs, p, 0.1, 0.7, 1e-6)),
    "acprop": (lambda: C.acprop(0.05, b1=0.8, b2=0.99, eps=1e-8, eps_root=1e-8),
               lambda gs, p: acprop_paper(gs, p, 0.05, 0.8, 0.99, 1e-8, 1e-8)),
    "cocob": (lambda: C.cocob(alpha=10.0, eps=1e-4),
              lambda gs, p: cocob_paper(gs, p, 10.0, 1e-4)),
    "schedule_free_sgd": (lambda: C.schedule_free_sgd(0.3, b1=0.8, weight_lr_power=1.5),
                          lambda gs, p: schedule_free_sgd_paper(gs, p, 0.3, 0.8, 1.5)[0]),
}


@pytest.mark.parametrize("rule", sorted(ORACLES))
def test_matches_the_papers_algorithm(rule):
    make, paper = ORACLES[rule]
    grad, p, _ = _quadratic()
    gs, ps, _ = _run(make(), p, grad, 12)
    for k, (a, b) in enumerate(zip(ps, paper(gs, p))):
        # the same algorithm in another order of operations (optax's
        # differences around a current iterate, bias corrections by reciprocals)
        assert rel_err(a, b) <= 1e-12, (k, rel_err(a, b))


def test_schedule_free_eval_params_are_the_papers_average():
    grad, p, _ = _quadratic()
    opt = C.schedule_free_sgd(0.3, b1=0.8, weight_lr_power=1.5)
    gs, ps, s = _run(opt, p, grad, 12)
    _, xs = schedule_free_sgd_paper(gs, p, 0.3, 0.8, 1.5)
    assert rel_err(C.schedule_free_eval_params(s, ps[-1]), xs[-1]) <= 1e-12
    with pytest.raises(ValueError, match="ScheduleFreeState"):
        C.schedule_free_eval_params(npopt.EmptyState(), p)


@pytest.mark.parametrize("make", [
    lambda: C.adopt(0.1), lambda: C.ademamix(0.1),
    lambda: C.simplified_ademamix(1e-3, b1=0.9),
    lambda: C.madgrad(0.1), lambda: C.acprop(0.05, eps=1e-8, eps_root=1e-8),
    lambda: C.cocob(), lambda: C.schedule_free_sgd(0.5), lambda: C.schedule_free_adamw(0.1)],
    ids=["adopt", "ademamix", "simplified_ademamix", "madgrad", "acprop", "cocob", "sf_sgd",
         "sf_adamw"])
def test_finds_the_minimum_of_a_quadratic(make):
    rng = np.random.default_rng(0)
    d, target = rng.uniform(0.5, 2.0, 8), rng.standard_normal(8)
    opt, p = make(), np.zeros(8)
    s = opt.init(p)
    for _ in range(400):
        p, s = opt.step(p, d * (p - target), s)
    if isinstance(s, C.ScheduleFreeState):
        p = C.schedule_free_eval_params(s, p)
    assert np.max(np.abs(p - target)) < 0.05, np.max(np.abs(p - target))


# ---------------------------------------------------------------------------
# The fused step, dtypes, trees
# ---------------------------------------------------------------------------

RULES = {
    "adopt": lambda: C.adopt(0.05, nesterov=True),
    "adopt_mu32": lambda: C.adopt(0.05, mu_dtype=np.float32),
    "ademamix": lambda: C.ademamix(0.05, weight_decay=0.1, mask={"a": False, "b": True}),
    "ademamix_sched": lambda: C.ademamix(lambda c: 0.05 / (1.0 + c), b3=lambda c: 0.9,
                                         alpha=lambda c: 0.5 * c),
    "simplified_ademamix": lambda: C.simplified_ademamix(0.01, alpha=2.0),
    "madgrad": lambda: C.madgrad(0.05, weight_decay=0.01),
    "acprop": lambda: C.acprop(0.05, eps=1e-8),
    "cocob": lambda: C.cocob(0.5, weight_decay=0.01),
    "schedule_free_sgd": lambda: C.schedule_free_sgd(0.1, warmup_steps=2),
    "schedule_free_adamw": lambda: C.schedule_free_adamw(0.05, state_dtype=np.float64),
}


def _problem(dtype, steps=4, seed=1):
    rng = np.random.default_rng(seed)
    params = {"a": rng.standard_normal(7).astype(dtype),
              "b": rng.standard_normal((3, 4)).astype(dtype)}
    grads = [tree_map(lambda p: rng.standard_normal(p.shape).astype(dtype), params)
             for _ in range(steps)]
    return params, grads


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rule", sorted(RULES))
def test_step_equals_update_and_apply(rule, dtype):
    params, grads = _problem(dtype)
    opt = RULES[rule]()
    p1, s1 = params, opt.init(params)
    p2, s2 = tree_map(np.copy, params), opt.init(tree_map(np.copy, params))
    for g in grads:
        u, s1 = opt.update(g, s1, p1)
        p1 = npopt.apply_updates(p1, u)
        p2, s2 = opt.step(p2, g, s2)
    tol = 1e-6 if dtype == np.float32 else 1e-14     # one FMA apart (p + lr * u)
    for a, b in zip(tree_leaves(p1), tree_leaves(p2)):
        assert a.dtype == b.dtype == dtype
        assert rel_err(b, a) <= tol
    for a, b in zip(tree_leaves(s1), tree_leaves(s2)):
        assert np.asarray(a).dtype == np.asarray(b).dtype
        assert rel_err(b, a) <= 10 * tol


# for any tree: no mask (made for _problem's), z in the params' dtype
TREE_RULES = dict(RULES, ademamix=lambda: C.ademamix(0.05, weight_decay=0.1),
                  schedule_free_adamw=lambda: C.schedule_free_adamw(0.05))


@pytest.mark.parametrize("make, other", [
    (lambda: C.madgrad(0.05, weight_decay=0.01), "MadgradState"),
    (lambda: C.cocob(0.5, weight_decay=0.01), "COCOBState"),
    (lambda: C.schedule_free_adamw(0.05, weight_decay=0.01), "ScheduleFreeState")],
    ids=["madgrad", "cocob", "schedule_free"])
def test_fused_step_of_rules_reading_params_is_in_place_and_safe(make, other):
    rng = np.random.default_rng(5)
    p0 = rng.standard_normal(50)
    g = rng.standard_normal(50)
    opt = make()
    want, ws = opt.update(g, opt.init(p0), p0)
    want = npopt.apply_updates(p0, want)
    p = p0.copy()
    s = opt.init(p)
    out, s2 = opt.step(p, g, s)
    assert out is p and np.array_equal(out, want)             # the params' own buffer
    for a, b in zip(tree_leaves(s2), tree_leaves(ws)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="consumed"):         # the state was donated
        opt.step(p, g, s)
    # grads overlapping the params: the numbers of a copy
    p = p0.copy()
    out, _ = opt.step(p, p, opt.init(p))
    w2, _ = opt.update(p0, opt.init(p0), p0)
    np.testing.assert_array_equal(out, npopt.apply_updates(p0, w2))
    # read-only params, a state from elsewhere: errors, nothing written
    ro = p0.copy()
    ro.flags.writeable = False
    s = opt.init(p0)
    before = tree_map(np.copy, s)
    with pytest.raises(ValueError, match="read-only"):
        opt.step(ro, g, s)
    bad = tuple(s[:-1]) + (npopt.sgd(0.1).init(p0),)
    with pytest.raises(TypeError, match=other):
        opt.step(p0.copy(), g, bad)
    for a, b in zip(tree_leaves(before), tree_leaves(s)):
        np.testing.assert_array_equal(a, b)


@settings(max_examples=15, deadline=None)
@given(st.sampled_from(sorted(TREE_RULES)),
       st.lists(st.tuples(st.sampled_from([(), (1,), (3,), (2, 3)]),
                          st.sampled_from([np.float32, np.float64])), min_size=1, max_size=3),
       st.integers(0, 2**31 - 1))
def test_updates_keep_the_tree_and_the_dtypes(rule, leaves, seed):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(dt) for s, dt in leaves]
    grads = [rng.standard_normal(s).astype(dt) for s, dt in leaves]
    opt = TREE_RULES[rule]()
    state = opt.init(params)
    before = tree_map(np.copy, (params, grads, state))
    u, s = opt.update(grads, state, params)
    assert [np.asarray(x).dtype for x in u] == [np.dtype(dt) for _, dt in leaves]
    assert [np.shape(x) for x in u] == [s_ for s_, _ in leaves]
    assert all(np.all(np.isfinite(x)) for x in u)
    # inputs not modified; the new state has the structure of the old one
    for a, b in zip(tree_leaves(before), tree_leaves((params, grads, state))):
        np.testing.assert_array_equal(a, b)
    assert type(s) is type(state)
    assert [np.shape(x) for x in tree_leaves(s)] == [np.shape(x) for x in tree_leaves(state)]
    u2, _ = opt.update(grads, s, npopt.apply_updates(params, u))
    assert all(np.all(np.isfinite(x)) for x in u2)


# ---------------------------------------------------------------------------
# CUDA (the simulator by default; a GPU with NUMBA_ENABLE_CUDASIM=0)
# ---------------------------------------------------------------------------

ULPS = {np.dtype(np.float32): 2e-6, np.dtype(np.float64): 1e-14}


@pytest.mark.parametrize("path", ["update", "step"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rule", sorted(RULES))
def test_cuda_matches_cpu(rule, dtype, path):
    cuda = pytest.importorskip("numba.cuda", reason="numba-cuda not installed")
    from npopt._target import is_device_array

    def dev(tree):
        return tree_map(cuda.to_device, tree)

    def host(tree):
        return tree_map(lambda x: x.copy_to_host() if hasattr(x, "copy_to_host") else x, tree)

    params, grads = _problem(dtype, steps=3)
    # npopt does not convert dtypes on a device: z in the params' dtype there
    opt = C.schedule_free_adamw(0.05) if rule == "schedule_free_adamw" else RULES[rule]()
    cpu_p, cpu_s = params, opt.init(params)
    dev_p = dev(params)
    dev_s = opt.init(dev_p)
    for g in grads:
        if path == "update":
            u, cpu_s = opt.update(g, cpu_s, cpu_p)
            cpu_p = npopt.apply_updates(cpu_p, u)
            du, dev_s = opt.update(dev(g), dev_s, dev_p)
            dev_p = npopt.apply_updates(dev_p, du)
        else:
            cpu_p, cpu_s = opt.step(cpu_p, g, cpu_s)
            dev_p, dev_s = opt.step(dev_p, dev(g), dev_s)
    for leaf in tree_leaves(dev_s):
        if np.ndim(leaf) > 0:
            assert is_device_array(leaf), type(leaf)
    # madgrad's GPU cube root is within ~1 ulp of libm's, and u = x_new - p
    # cancels: compare the params, not the updates
    for a, b in zip(tree_leaves(host(dev_p)), tree_leaves(cpu_p)):
        assert a.dtype == b.dtype
        assert rel_err(a, b) <= ULPS[np.dtype(dtype)], rel_err(a, b)
    for a, b in zip(tree_leaves(host(dev_s)), tree_leaves(cpu_s)):
        assert rel_err(np.asarray(a), np.asarray(b)) <= 10 * ULPS[np.dtype(dtype)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_cube_root_is_within_a_few_ulps_of_libm(dtype):
    """The GPU's cube root (pow and a Newton step, kernels/libm.py), compiled
    here with the CPU policy, against libm's cbrt(f) (the CPU rule): 1 ulp
    in float32, 3 in float64 (the Newton step's own roundings, ~1.2 ulp of
    the true root, and glibc's cbrt, up to 1 ulp: cbrt(27) is 3 + 1 ulp)."""
    gpu = njit(**_jit.CPU_OPTIONS)(_jit.CUDA_VARIANTS[libm.cube_root.py_func])
    rng = np.random.default_rng(7)
    x = (np.abs(rng.standard_normal(20000)) * 10.0 ** rng.integers(-30, 30, 20000)).astype(dtype)
    x = np.concatenate([x, np.array([0.0, 1.0, 8.0, 27.0, np.inf], dtype)])
    third = dtype(1 / 3)
    cpu = np.array([libm.cube_root(v, third) for v in x], dtype)
    got = np.array([gpu(v, third) for v in x], dtype)
    fin = np.isfinite(cpu)
    ulps = np.abs(got[fin].astype(np.float64) - cpu[fin]) / np.spacing(np.abs(cpu[fin]))
    assert np.max(ulps) <= (1.0 if dtype == np.float32 else 3.0), np.max(ulps)
    assert got[-1] == np.inf and got[-5] == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_libm_fma_rounds_once(dtype):
    a, b, c = dtype(1 + 2.0 ** -20), dtype(1 - 2.0 ** -20), dtype(-1)
    assert libm.fused_multiply_add(a, b, c) == dtype(-(2.0 ** -40))
    assert a * b + c != libm.fused_multiply_add(a, b, c) or dtype == np.float64


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("make, match", [
    (lambda: C.adopt(0.1, b1=1.5), "b1: expected"),
    (lambda: C.adopt(0.1, mu_dtype=np.int32), "mu_dtype: expected"),
    (lambda: C.adopt(0.1, clip_value_fn=2.0), "clip_value_fn: expected a callable"),
    (lambda: C.adopt(0.1, nesterov=1), "nesterov: expected True or False"),
    (lambda: C.adopt(-0.1), "learning_rate: expected"),
    (lambda: C.ademamix(0.1, b3=1.5), "b3: expected"),
    (lambda: C.ademamix(0.1, alpha=float("nan")), "alpha: expected"),
    (lambda: C.simplified_ademamix(0.1, b2=1.0), "b2: expected"),
    (lambda: C.madgrad(0.1, momentum=-0.1), "momentum: expected"),
    (lambda: C.madgrad("fast"), "learning_rate: expected"),
    (lambda: C.acprop(0.1, eps_root=-1.0), "eps_root: expected"),
    (lambda: C.cocob(alpha=float("inf")), "alpha: expected"),
    (lambda: C.schedule_free(npopt.sgd(0.1), 0.1, b1=0.0), "b1: expected"),
    (lambda: C.schedule_free(lambda g: g, 0.1), "base_optimizer: expected"),
    (lambda: C.schedule_free_adamw(state_dtype=np.int64), "state_dtype: expected"),
])
def test_bad_hyperparameters_name_the_argument(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def _untouched(opt, match, *, params=None, grads=None, state=None, mutate=None, exc=ValueError):
    p = params if params is not None else {"a": np.ones(3), "b": np.zeros(2)}
    s = state if state is not None else opt.init(p)
    if mutate is not None:
        s = mutate(s)
    g = grads if grads is not None else tree_map(lambda x: np.full_like(x, 0.5), p)
    before = tree_map(np.copy, (p, s))
    with pytest.raises(exc, match=match):
        opt.update(g, s, p)
    with pytest.raises(exc, match=match):
        opt.step(p, g, s)
    for a, b in zip(tree_leaves(before), tree_leaves((p, s))):
        np.testing.assert_array_equal(a, b)


def test_bad_schedule_values_raise_before_any_buffer_is_written():
    _untouched(C.ademamix(0.1, b3=lambda c: float("nan")), "b3: the schedule returned")
    _untouched(C.ademamix(0.1, alpha=lambda c: np.ones(2)), "alpha: the schedule returned")
    _untouched(C.simplified_ademamix(0.1, alpha=lambda c: float("inf")), "alpha: the schedule")
    _untouched(C.madgrad(lambda c: -1.0), "learning_rate: the schedule returned")
    _untouched(C.adopt(0.1, clip_value_fn=lambda c: float("nan")), "clip_value_fn: returned")
    _untouched(C.schedule_free(npopt.sgd(0.1), lambda c: float("nan")),
               "learning_rate: the schedule returned")


def test_rules_that_need_params_say_so():
    p = {"a": np.ones(3)}
    g = {"a": np.ones(3)}
    for opt in (C.scale_by_madgrad(0.1), C.scale_by_cocob(), C.schedule_free_sgd()):
        with pytest.raises(ValueError, match="params"):
            opt.update(g, opt.init(p), None)


def test_state_from_another_optimizer_is_refused():
    p = {"a": np.ones(3), "b": np.zeros(2)}
    for opt, other in ((C.ademamix(0.1), npopt.adam(0.1)),
                       (C.simplified_ademamix(0.1), C.ademamix(0.1)),
                       (C.madgrad(0.1), npopt.sgd(0.1)),
                       (C.cocob(), C.madgrad(0.1)),
                       (C.schedule_free_sgd(), npopt.sgd(0.1))):
        _untouched(opt, "state|expected", params=p, state=other.init(p),
                   exc=(TypeError, ValueError))


def test_ademamix_schedules_see_count_m2():
    p = {"a": np.linspace(-1, 1, 5), "b": np.ones(2)}
    g = tree_map(lambda x: 0.5 - x, p)
    sched = C.scale_by_ademamix(b3=lambda c: 0.95 if c == 5 else 0.5, alpha=lambda c: 2.0 * c)
    const = C.scale_by_ademamix(b3=0.95, alpha=10.0)
    s = sched.init(p)._replace(count_m2=np.int32(5))
    u, s1 = sched.update(g, s, p)
    want, _ = const.update(g, const.init(p), p)
    for a, b in zip(tree_leaves(u), tree_leaves(want)):
        np.testing.assert_array_equal(a, b)
    assert (int(s1.count), int(s1.count_m2)) == (1, 6)
    opt = npopt.chain(sched, npopt.scale(-0.1))
    p2, s2 = opt.step(tree_map(np.copy, p), g, (sched.init(p)._replace(count_m2=np.int32(5)),
                                                 npopt.EmptyState()))
    for a, b in zip(tree_leaves(p2), tree_leaves(npopt.apply_updates(p, tree_map(
            lambda x: -0.1 * x, want)))):
        assert rel_err(a, b) <= 1e-15
    assert (int(s2[0].count), int(s2[0].count_m2)) == (1, 6)


def test_grads_of_another_dtype_are_refused_where_optax_would_promote():
    # madgrad, cocob and schedule_free read params and grads in one dtype
    p = {"a": np.ones(3, np.float32), "b": np.zeros(2, np.float32)}
    g = {"a": np.ones(3), "b": np.zeros(2)}
    for opt in (C.madgrad(0.1), C.cocob(), C.schedule_free_sgd(0.1)):
        _untouched(opt, "updates: leaf 0 has dtype float64, expected float32", params=p, grads=g,
                   exc=TypeError)


def test_mismatched_trees_and_shapes_raise():
    p = {"a": np.ones(3), "b": np.zeros(2)}
    for opt in (C.adopt(0.1), C.madgrad(0.1), C.cocob(), C.schedule_free_sgd(0.1)):
        _untouched(opt, "updates|grads|leaf", params=p, grads={"a": np.ones(3)})
        _untouched(opt, "shape", params=p, grads={"a": np.ones(4), "b": np.zeros(2)})
