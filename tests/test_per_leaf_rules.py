"""The per-leaf rules: fromage, lars, novograd, polyak_sgd, sm3.

* against plain-NumPy oracles written from the papers' formulas (float64);
* properties: sm3's per-axis accumulators (shapes, running maxima, any
  rank), novograd's per-leaf scalar second moment, Polyak's step cap and
  its float64-eps threshold, fromage's norm control;
* the fused ``step`` against ``update`` + ``apply_updates``, in place;
* CUDA kernels (numba's simulator here) against the CPU kernels;
* bad input: a clear error naming the argument, nothing touched.

The optax trajectories themselves are replayed by test_alias_reference.py
(cases in reference/cases_per_leaf.py).
"""
import numpy as np
import pytest

import npopt
from conftest import rel_err
from npopt._target import is_device_array
from npopt.tree import tree_leaves, tree_map

DTYPES = [np.float32, np.float64]


def _problem(dtype, scalar=True, seed=0, steps=4):
    """Params with a 1-D, a 2-D and a 3-D leaf (and a scalar), and gradients."""
    rng = np.random.default_rng(seed)
    params = {"a": rng.standard_normal(7), "b": rng.standard_normal((3, 4)),
              "c": rng.standard_normal((2, 3, 2))}
    if scalar:
        params["s"] = np.float64(rng.standard_normal())
    params = tree_map(lambda x: np.asarray(x, dtype), params)
    grads = [tree_map(lambda p: np.asarray(rng.standard_normal(np.shape(p)), dtype), params)
             for _ in range(steps)]
    return params, grads


def _run(opt, params, grads, path, values=None):
    # step consumes its params (it may update them in place): work on a copy
    params = tree_map(lambda x: x.copy() if isinstance(x, np.ndarray) else x, params)
    state = opt.init(params)
    for t, g in enumerate(grads):
        kw = {} if values is None else {"value": values[t]}
        if path == "update":
            u, state = opt.update(g, state, params, **kw)
            params = npopt.apply_updates(params, u)
        else:
            params, state = opt.step(params, g, state, **kw)
    return params, state


def _snapshot(*trees):
    return [np.array(x, copy=True) for t in trees for x in tree_leaves(t)]


def _unchanged(before, *trees):
    after = [np.asarray(x) for t in trees for x in tree_leaves(t)]
    return all(np.array_equal(a, b) for a, b in zip(before, after))


def _close(a, b, tol=1e-12):
    for x, y in zip(tree_leaves(a), tree_leaves(b)):
        assert rel_err(x, y) <= tol, rel_err(x, y)


# ---------------------------------------------------------------------------
# oracles (float64, one formula per line)
# ---------------------------------------------------------------------------

def naive_novograd(params, grads, lr, b1=0.9, b2=0.25, eps=1e-6, eps_root=0.0, wd=0.0):
    p = {k: np.array(v, np.float64) for k, v in params.items()}
    mu = {k: np.zeros_like(v) for k, v in p.items()}
    nu = {k: 0.0 for k in p}
    for t, g in enumerate(grads):
        for k in p:
            n2 = float(np.sum(np.asarray(g[k], np.float64) ** 2))
            nu[k] = n2 if t == 0 else b2 * nu[k] + (1 - b2) * n2
            step = g[k] / (np.sqrt(nu[k] + eps_root) + eps) + wd * p[k]
            mu[k] = step if t == 0 else b1 * mu[k] + step
            p[k] = p[k] - lr * mu[k]
    return p, nu


def naive_sm3(params, grads, lr, b1=0.9, eps=1e-8):
    p = {k: np.array(v, np.float64) for k, v in params.items()}
    acc = {k: [np.zeros(d) for d in v.shape] for k, v in p.items()}
    nu = {k: np.zeros_like(v) for k, v in p.items()}
    for g in grads:
        for k in p:
            nd = p[k].ndim
            bound = np.full(p[k].shape, np.inf)
            for a in range(nd):      # min over the axes' accumulators
                shape = [1] * nd
                shape[a] = p[k].shape[a]
                bound = np.minimum(bound, acc[k][a].reshape(shape))
            s = g[k] ** 2 + bound
            u = np.where(s > 0, g[k] / np.sqrt(s + eps), 0.0)
            nu[k] = (1 - b1) * u + b1 * nu[k]
            acc[k] = [s.max(axis=tuple(i for i in range(nd) if i != a)) if nd > 1 else s
                      for a in range(nd)]
            p[k] = p[k] - lr * nu[k]
    return p, acc


def naive_fromage(params, grads, lr, min_norm=1e-6):
    m = 1 / np.sqrt(1 + lr ** 2)
    p = {k: np.array(v, np.float64) for k, v in params.items()}
    for g in grads:
        for k in p:
            pn = max(np.linalg.norm(p[k]), min_norm)
            gn = max(np.linalg.norm(g[k]), min_norm)
            p[k] = m * (p[k] - lr * pn / gn * g[k])
    return p


def naive_lars(params, grads, lr, wd, tc, momentum, nesterov):
    p = {k: np.array(v, np.float64) for k, v in params.items()}
    tr = {k: np.zeros_like(v) for k, v in p.items()}
    for g in grads:
        for k in p:
            d = g[k] + wd * p[k]
            u = -lr * tc * np.linalg.norm(p[k]) / np.linalg.norm(d) * d
            tr[k] = u + momentum * tr[k]
            p[k] = p[k] + (u + momentum * tr[k] if nesterov else tr[k])
    return p


def naive_polyak(params, grads, values, max_lr, scaling, f_min, eps, variant):
    p = {k: np.array(v, np.float64) for k, v in params.items()}
    for g, f in zip(grads, values):
        sq = sum(float(np.sum((scaling * g[k]) ** 2)) for k in sorted(p))
        gap = f - f_min if variant == "sps" else max(f - f_min, 0.0)
        step = 0.0 if sq + eps <= np.finfo(float).eps else min(gap / (sq + eps), max_lr)
        for k in p:
            p[k] = p[k] - step * scaling * g[k]
    return p


# ---------------------------------------------------------------------------
# against the oracles, both paths
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["update", "step"])
def test_novograd_matches_the_formula(path):
    params, grads = _problem(np.float64)
    got, state = _run(npopt.novograd(0.1, b1=0.8, weight_decay=0.01, eps_root=1e-3), params,
                      grads, path)
    want, nu = naive_novograd(params, grads, 0.1, b1=0.8, wd=0.01, eps_root=1e-3)
    _close(got, want)
    # the second moment: one 0-d array per leaf, of the leaf's dtype
    for k, v in state[0].nu.items():
        assert np.shape(v) == () and v.dtype == np.float64
        assert rel_err(v, nu[k]) <= 1e-12


@pytest.mark.parametrize("path", ["update", "step"])
def test_sm3_matches_the_formula_at_any_rank(path):
    params, grads = _problem(np.float64, scalar=False)
    params["d"] = np.linspace(-1, 1, 2 * 3 * 2 * 2).reshape(2, 3, 2, 2)
    grads = [dict(g, d=np.cos(np.arange(24.0) * (t + 1)).reshape(2, 3, 2, 2))
             for t, g in enumerate(grads)]
    got, state = _run(npopt.sm3(0.1, momentum=0.5), params, grads, path)
    want, acc = naive_sm3(params, grads, 0.1, b1=0.5)
    _close(got, want)
    for k, lists in state[0].mu.items():
        assert [a.shape for a in lists] == [(d,) for d in params[k].shape]
        for a, b in zip(lists, acc[k]):
            assert rel_err(a, b) <= 1e-14


@pytest.mark.parametrize("path", ["update", "step"])
def test_fromage_matches_the_formula(path):
    params, grads = _problem(np.float64)
    got, _ = _run(npopt.fromage(0.05, min_norm=0.3), params, grads, path)
    _close(got, naive_fromage(params, grads, 0.05, min_norm=0.3))


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("path", ["update", "step"])
def test_lars_matches_the_formula(path, nesterov):
    params, grads = _problem(np.float64)
    opt = npopt.lars(0.5, weight_decay=0.01, trust_coefficient=0.02, momentum=0.8,
                     nesterov=nesterov)
    got, _ = _run(opt, params, grads, path)
    _close(got, naive_lars(params, grads, 0.5, 0.01, 0.02, 0.8, nesterov))


@pytest.mark.parametrize("variant", ["sps", "sps+"])
@pytest.mark.parametrize("path", ["update", "step"])
def test_polyak_sgd_matches_the_formula(path, variant):
    params, grads = _problem(np.float64)
    values = [3.0, 0.5, -1.0, 2.0]
    opt = npopt.polyak_sgd(max_learning_rate=0.2, scaling=0.7, f_min=0.25, eps=0.01,
                           variant=variant)
    got, _ = _run(opt, params, grads, path, values)
    _close(got, naive_polyak(params, grads, values, 0.2, 0.7, 0.25, 0.01, variant))


# ---------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------

def test_sm3_state_structure():
    params = {"v": np.zeros(5, np.float32), "m": np.zeros((2, 3), np.float32)}
    state = npopt.sm3(0.1).init(params)
    assert isinstance(state[0], npopt.ScaleBySM3State)
    assert [a.shape for a in state[0].mu["m"]] == [(2,), (3,)]
    assert [a.shape for a in state[0].mu["v"]] == [(5,)]
    assert all(a.dtype == np.float32 for a in tree_leaves(state[0].mu))
    assert state[0].nu["m"].shape == (2, 3)


def test_sm3_accumulators_are_running_maxima_of_sums():
    """With b2 = 1, a row/column accumulator is the max over its slice of
    g^2 + min(accumulators): constant gradients make it t * g^2 exactly."""
    params = {"m": np.zeros((2, 3))}
    g = {"m": np.array([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5]])}
    opt = npopt.sm3(0.0)
    state = opt.init(params)
    for t in range(1, 4):
        _, state = opt.update(g, state, params)
        rows, cols = state[0].mu["m"]
        np.testing.assert_array_equal(rows, t * np.array([9.0, 0.25]))
        np.testing.assert_array_equal(cols, t * np.array([1.0, 4.0, 9.0]))


def test_sm3_zero_gradient_gives_zero_update():
    params = {"m": np.ones((2, 3))}
    u, _ = npopt.sm3(0.1).update({"m": np.zeros((2, 3))}, npopt.sm3(0.1).init(params), params)
    np.testing.assert_array_equal(u["m"], 0.0)


def test_novograd_first_step_is_the_normalised_gradient():
    params = {"w": np.array([1.0, 1.0])}
    opt = npopt.novograd(1.0, eps=0.0)
    u, state = opt.update({"w": np.array([3.0, 4.0])}, opt.init(params), params)
    np.testing.assert_allclose(u["w"], [-0.6, -0.8], rtol=1e-15)
    assert float(state[0].nu["w"]) == 25.0
    assert int(state[0].count) == 1


def test_novograd_mu_dtype():
    params, grads = _problem(np.float64, steps=3)
    opt = npopt.chain(npopt.scale_by_novograd(mu_dtype=np.float32), npopt.scale(-0.1))
    state = opt.init(params)
    assert all(x.dtype == np.float32 for x in tree_leaves(state[0].mu))
    assert all(x.dtype == np.float64 for x in tree_leaves(state[0].nu))
    u, state = opt.update(grads[0], state, params)
    assert all(x.dtype == np.float32 for x in tree_leaves(u))
    p1, _ = opt.step(params, grads[0], opt.init(params))      # unfused fallback
    _close(p1, npopt.apply_updates(params, u), 0)
    want, _ = naive_novograd(params, grads[:1], 0.1, eps=1e-8)
    _close(p1, want, 1e-6)


def test_polyak_step_is_capped():
    params = {"w": np.ones(3)}
    opt = npopt.polyak_sgd(max_learning_rate=0.1)
    u, _ = opt.update({"w": np.ones(3)}, opt.init(params), params, value=1e6)
    np.testing.assert_array_equal(u["w"], -0.1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_polyak_threshold_is_float64_eps_at_every_dtype(dtype):
    """optax compares ||g||^2 + eps with jnp.finfo(float).eps (2.2e-16), also
    for float32: a float32 gradient of norm^2 1e-18 gives no step, 1e-14 does."""
    params = {"w": np.zeros(1, dtype)}
    for g, moves in ((1e-9, False), (1e-7, True)):
        for path in ("update", "step"):
            opt = npopt.polyak_sgd()
            p, _ = _run(opt, params, [{"w": np.full(1, g, dtype)}], path, values=[1e-20])
            assert (p["w"][0] != 0) == moves, (g, path)
            assert p["w"].dtype == dtype


def test_polyak_sps_plus_stops_below_f_min():
    params = {"w": np.ones(2)}
    g = {"w": np.ones(2)}
    for variant, moves in (("sps", True), ("sps+", False)):
        opt = npopt.polyak_sgd(f_min=1.0, variant=variant)
        u, _ = opt.update(g, opt.init(params), params, value=0.5)
        assert bool(np.any(u["w"] != 0)) == moves
        if moves:   # sps goes uphill when value < f_min, as optax
            assert np.all(u["w"] > 0)


def test_fromage_shrinks_to_keep_the_norm():
    """Each fromage step is p <- m (p - lr r g) with m = 1/sqrt(1 + lr^2):
    for g orthogonal to p the norm is kept exactly."""
    p = {"w": np.array([3.0, 4.0])}
    opt = npopt.fromage(0.5)
    new, _ = opt.step(p, {"w": np.array([-4.0, 3.0])}, opt.init(p))
    np.testing.assert_allclose(np.linalg.norm(new["w"]), 5.0, rtol=1e-15)


def test_lars_masks_tree_and_callable():
    """A leaf outside trust_ratio_mask gets plain momentum SGD; one outside
    weight_decay_mask no decay."""
    params, grads = _problem(np.float64, steps=1)
    tr_mask = lambda p: {k: k != "a" for k in p}               # noqa: E731
    wd_mask = {"a": False, "b": True, "c": True, "s": False}
    opt = npopt.lars(0.1, weight_decay=0.5, weight_decay_mask=wd_mask,
                     trust_ratio_mask=tr_mask)
    state = opt.init(params)
    assert isinstance(state[0], npopt.MaskedState) and isinstance(state[1], npopt.MaskedState)
    u, _ = opt.update(grads[0], state, params)
    np.testing.assert_allclose(u["a"], -0.1 * grads[0]["a"], rtol=1e-15)
    d = grads[0]["b"] + 0.5 * params["b"]
    want = -0.1 * 0.001 * np.linalg.norm(params["b"]) / np.linalg.norm(d) * d
    np.testing.assert_allclose(u["b"], want, rtol=1e-14)


# ---------------------------------------------------------------------------
# fused step: same numbers as update, in place, inputs unmutated by update
# ---------------------------------------------------------------------------

RULES = {
    "fromage": (lambda: npopt.fromage(0.05), True),
    "fromage_sched": (lambda: npopt.fromage(lambda c: 0.05 / (1.0 + c)), True),
    "lars": (lambda: npopt.lars(0.5, weight_decay=0.01, nesterov=True), True),
    "novograd": (lambda: npopt.novograd(0.05, weight_decay=0.01), True),
    "novograd_sched": (lambda: npopt.novograd(lambda c: 0.05 / (1.0 + c)), True),
    "novograd_decay": (lambda: npopt.chain(npopt.scale_by_novograd(),
                                           npopt.add_decayed_weights(0.1, {"a": True, "b": False,
                                                                           "c": True, "s": False}),
                                           npopt.scale(-0.05)), True),
    "polyak": (lambda: npopt.polyak_sgd(max_learning_rate=0.5, scaling=0.8), True),
    "polyak_sched": (lambda: npopt.polyak_sgd(scaling=lambda c: 1.0 / (1.0 + c),
                                              variant="sps+", f_min=0.1), True),
    "sm3": (lambda: npopt.sm3(0.05), False),
    "sm3_b2": (lambda: npopt.chain(npopt.scale_by_sm3(b1=0.5, b2=0.9),
                                   npopt.add_decayed_weights(0.1, {"a": False, "b": True,
                                                                   "c": True}),
                                   npopt.scale(-0.05)), False),
}
VALUES = [4.0, 3.0, 2.5, 1.0]


def _needs_value(rule):
    return rule.startswith("polyak")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rule", sorted(RULES))
def test_step_matches_update(rule, dtype):
    make, scalar = RULES[rule]
    params, grads = _problem(dtype, scalar=scalar)
    values = VALUES if _needs_value(rule) else None
    before = [np.array(x, copy=True) for x in tree_leaves((params, grads))]
    p_u, s_u = _run(make(), params, grads, "update", values)
    # update + apply_updates did not modify their inputs
    for a, b in zip(before, tree_leaves((params, grads))):
        np.testing.assert_array_equal(a, b)
    p_s, s_s = _run(make(), params, grads, "step", values)
    tol = 1e-6 if dtype == np.float32 else 1e-14      # the last add's FMA
    _close(p_s, p_u, tol)
    for a, b in zip(tree_leaves(s_s), tree_leaves(s_u)):
        assert np.asarray(a).dtype == np.asarray(b).dtype
        assert rel_err(a, b) <= 10 * tol


def _float_leaves(tree):
    return [x for x in tree_leaves(tree) if np.asarray(x).dtype.kind == "f"]


@pytest.mark.parametrize("rule", ["novograd", "sm3"])
def test_fused_step_works_in_place(rule):
    """After the first step the params and the state's buffers are reused:
    the per-leaf scalars (novograd's nu) and the per-axis accumulators
    (sm3's mu) too."""
    make, scalar = RULES[rule]
    params, grads = _problem(np.float64, scalar=scalar)
    opt = make()
    params, state = opt.step(params, grads[0], opt.init(params))   # params now views
    p_leaves, s_leaves = tree_leaves(params), _float_leaves(state)
    snapshot = _snapshot(params, state)
    params2, state2 = opt.step(params, grads[1], state)
    assert all(a is b for a, b in zip(tree_leaves(params2), p_leaves))
    # the same memory (the new state's leaves are new views of it: step
    # consumes the state it is given, see tests/test_step_safety.py)
    assert all(np.shares_memory(a, b) for a, b in zip(_float_leaves(state2), s_leaves))
    assert not _unchanged(snapshot, params2, state2)     # written in place


@pytest.mark.parametrize("rule", ["novograd_decay", "polyak", "sm3"])
def test_parallel_kernels_give_the_serial_numbers(rule, monkeypatch):
    """Per-leaf sums over fixed chunks and exact maxima: the threaded CPU
    kernels reproduce the serial ones bit for bit."""
    from npopt.kernels import _jit
    make, scalar = RULES[rule]
    params, grads = _problem(np.float32, scalar=scalar)
    values = VALUES if _needs_value(rule) else None
    out = []
    for threshold in (1 << 62, 1):
        monkeypatch.setattr(_jit, "PARALLEL_THRESHOLD", threshold)
        out.append(_run(make(), params, grads, "step", values))
    for a, b in zip(tree_leaves(out[0]), tree_leaves(out[1])):
        np.testing.assert_array_equal(a, b)


def test_mixed_dtype_tree():
    """A float32 and a float64 leaf make two groups, each computed in its own
    dtype: the float64 leaf of a per-leaf rule is exactly that of an
    all-float64 run."""
    rng = np.random.default_rng(3)
    params = {"a": rng.standard_normal(6).astype(np.float32), "b": rng.standard_normal((2, 3))}
    grads = [tree_map(lambda p: rng.standard_normal(p.shape).astype(p.dtype), params)
             for _ in range(3)]
    as64 = lambda t: tree_map(lambda x: x.astype(np.float64), t)   # noqa: E731
    for make in (lambda: npopt.novograd(0.1), lambda: npopt.sm3(0.1), lambda: npopt.fromage(0.1),
                 lambda: npopt.lars(1.0)):
        for path in ("update", "step"):
            p, _ = _run(make(), params, grads, path)
            ref, _ = _run(make(), as64(params), [as64(g) for g in grads], path)
            assert p["a"].dtype == np.float32 and p["b"].dtype == np.float64
            assert rel_err(p["b"], ref["b"]) <= 1e-15
            assert rel_err(p["a"], ref["a"]) <= 1e-5
    # polyak's norm is global: float32 + float64 sums promote to float64
    for path in ("update", "step"):
        p, _ = _run(npopt.polyak_sgd(), params, grads, path, VALUES)
        assert p["a"].dtype == np.float32 and p["b"].dtype == np.float64


# ---------------------------------------------------------------------------
# CUDA (simulator) against the CPU kernels
# ---------------------------------------------------------------------------

# a few ulps after a few steps (the targets contract FMAs differently)
ULPS = {np.dtype(np.float32): 2e-6, np.dtype(np.float64): 1e-14}


@pytest.mark.parametrize("path", ["update", "step"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rule", sorted(RULES))
def test_cuda_matches_cpu(rule, dtype, path, monkeypatch):
    cuda = pytest.importorskip("numba.cuda", reason="numba-cuda not installed")
    from npopt import _target
    from npopt.kernels import _jit
    monkeypatch.setattr(_jit, "BLOCK_SIZE", 16)   # the simulator runs a thread per CUDA thread
    launch = _target.Device.launch

    def no_host_arrays(cpu, kernel, *args):
        # a NumPy array handed to a CUDA kernel would be copied over silently
        # (the simulator would not notice): every array must live on the device
        assert not any(isinstance(a, np.ndarray) and a.ndim > 0 for a in args), kernel
        return launch(cpu, kernel, *args)
    monkeypatch.setattr(_target.Device, "launch", staticmethod(no_host_arrays))
    make, scalar = RULES[rule]
    params, grads = _problem(dtype, scalar=scalar, steps=3)
    values = VALUES if _needs_value(rule) else None
    cpu_p, cpu_s = _run(make(), params, grads, path, values)
    to_dev = lambda t: tree_map(lambda x: cuda.to_device(np.asarray(x)), t)   # noqa: E731
    dev_p, dev_s = _run(make(), to_dev(params), [to_dev(g) for g in grads], path, values)
    for leaf in tree_leaves(dev_s):
        if np.ndim(leaf) > 0 or hasattr(leaf, "copy_to_host"):
            assert is_device_array(leaf), type(leaf)
    to_host = lambda t: tree_map(                                              # noqa: E731
        lambda x: x.copy_to_host() if hasattr(x, "copy_to_host") else np.asarray(x), t)
    tol = ULPS[np.dtype(dtype)]
    for a, b in zip(tree_leaves(to_host(dev_p)), tree_leaves(cpu_p)):
        assert a.dtype == b.dtype
        assert rel_err(a, b) <= tol, rel_err(a, b)
    for a, b in zip(tree_leaves(to_host(dev_s)), tree_leaves(cpu_s)):
        assert rel_err(np.asarray(a), np.asarray(b)) <= 10 * tol


def test_sm3_cuda_kernel_with_a_tiny_grid(monkeypatch):
    """Many elements per thread (grid-stride) and contended atomic maxima."""
    cuda = pytest.importorskip("numba.cuda", reason="numba-cuda not installed")
    from npopt.kernels import _jit
    monkeypatch.setattr(_jit, "BLOCK_SIZE", 3)
    monkeypatch.setattr(_jit, "MAX_BLOCKS", 2)
    params, grads = _problem(np.float64, scalar=False, steps=2)
    cpu_p, cpu_s = _run(npopt.sm3(0.1), params, grads, "step")
    to_dev = lambda t: tree_map(lambda x: cuda.to_device(np.asarray(x)), t)   # noqa: E731
    dev_p, dev_s = _run(npopt.sm3(0.1), to_dev(params), [to_dev(g) for g in grads], "step")
    for a, b in zip(tree_leaves((dev_p, dev_s)), tree_leaves((cpu_p, cpu_s))):
        assert rel_err(a.copy_to_host(), b) <= 1e-14


@pytest.mark.parametrize("rule", ["novograd", "sm3"])
def test_device_step_is_zero_copy_in_steady_state(rule):
    """On the device too, the per-leaf scalars and per-axis accumulators of
    the state are views of one buffer, reused step after step."""
    cuda = pytest.importorskip("numba.cuda", reason="numba-cuda not installed")
    from npopt._target import device_ptr
    make, scalar = RULES[rule]
    params, grads = _problem(np.float32, scalar=scalar)
    to_dev = lambda t: tree_map(lambda x: cuda.to_device(np.asarray(x)), t)   # noqa: E731
    opt = make()
    p, s = opt.step(to_dev(params), to_dev(grads[0]), opt.init(to_dev(params)))
    ptrs = [device_ptr(x) for x in tree_leaves((p, s)) if is_device_array(x)]
    for g in grads[1:]:
        p, s = opt.step(p, to_dev(g), s)
        assert [device_ptr(x) for x in tree_leaves((p, s)) if is_device_array(x)] == ptrs


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["update", "step"])
def test_polyak_without_value(path):
    params, grads = _problem(np.float64)
    opt = npopt.polyak_sgd()
    state = opt.init(params)
    before = _snapshot(params, state)
    with pytest.raises(TypeError, match="^value: scale_by_polyak needs the objective value"):
        if path == "update":
            opt.update(grads[0], state, params)
        else:
            opt.step(params, grads[0], state)
    assert _unchanged(before, params, state)
    with pytest.raises(TypeError, match="^value: expected the objective value as a real scalar"):
        opt.update(grads[0], state, params, value=np.ones(2))


@pytest.mark.parametrize("make,exc,match", [
    (lambda: npopt.polyak_sgd(variant="SPS"), ValueError, "^variant: expected 'sps' or 'sps\\+'"),
    (lambda: npopt.scale_by_polyak(variant="sps_max"), ValueError, "^variant: expected"),
    (lambda: npopt.polyak_sgd(max_learning_rate=-1.0), ValueError, "^max_learning_rate: expected"),
    (lambda: npopt.polyak_sgd(scaling=-1.0), ValueError, "^scaling: expected"),
    (lambda: npopt.sm3(lambda c: 0.1), TypeError, "^learning_rate: expected a number"),
    (lambda: npopt.sm3(0.1, momentum=1.5), ValueError, "^momentum: expected"),
    (lambda: npopt.scale_by_sm3(b2=-0.5), ValueError, "^b2: expected"),
    (lambda: npopt.novograd(0.1, b2=2.0), ValueError, "^b2: expected"),
    (lambda: npopt.novograd(0.1, eps=-1.0), ValueError, "^eps: expected"),
    (lambda: npopt.scale_by_novograd(mu_dtype=np.int32), TypeError, "^mu_dtype: expected"),
    (lambda: npopt.fromage(-0.1), ValueError, "^learning_rate: expected"),
    (lambda: npopt.fromage(0.1, min_norm=-1.0), ValueError, "^min_norm: expected"),
    (lambda: npopt.lars(0.1, nesterov="yes"), TypeError, "^nesterov: expected True or False"),
])
def test_bad_hyperparameters(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_sm3_rejects_scalar_leaves():
    params = {"w": np.ones(3), "s": np.float64(1.0)}
    with pytest.raises(ValueError, match=r"^params: leaf 0 is a scalar; scale_by_sm3"):
        npopt.sm3(0.1).init(params)


@pytest.mark.parametrize("make", [lambda: npopt.novograd(0.1), lambda: npopt.sm3(0.1)])
@pytest.mark.parametrize("path", ["update", "step"])
def test_bad_state_or_grads_leave_everything_untouched(make, path):
    params, grads = _problem(np.float32, scalar=False)
    opt = make()
    state = opt.init(params)
    other = npopt.adam(0.1).init(params)
    bad_grads = dict(grads[0], b=np.ones((4, 3), np.float32))
    before = _snapshot(params, state, grads[0])
    name = "updates" if path == "update" else "grads"
    for g, s, exc, match in ((bad_grads, state, ValueError, f"^{name}: leaf 1 has shape"),
                             (grads[0], other, TypeError, "state")):
        with pytest.raises(exc, match=match):
            if path == "update":
                opt.update(g, s, params)
            else:
                opt.step(params, g, s)
        assert _unchanged(before, params, state, grads[0])


def test_novograd_needs_params():
    params, grads = _problem(np.float64)
    opt = npopt.novograd(0.1)
    with pytest.raises(ValueError, match="^params: this transformation needs the current params"):
        opt.update(grads[0], opt.init(params))


def test_novograd_bad_nu_state():
    params, grads = _problem(np.float64)
    opt = npopt.scale_by_novograd()
    state = opt.init(params)
    bad = state._replace(nu=tree_map(lambda x: np.zeros(2), state.nu))
    with pytest.raises(ValueError, match="^state.nu: leaf 0 must be a 0-d array"):
        opt.update(grads[0], bad, params)
