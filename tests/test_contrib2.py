"""optax.contrib's learning-rate-free / global-scalar rules (dog, dowg,
scale_by_distance_over_gradients, prodigy, dadapt_adamw, mechanize, momo,
momo_adam, reduce_on_plateau).

Their 100-step optax trajectories are replayed by test_alias_reference.py
(tests/reference/cases_contrib2.py). Here:

* the defaults' first 10 optax steps (tests/reference/data/contrib2/, made
  by make_contrib2_reference.py), both paths and dtypes;
* a plain NumPy transcription of each paper's rule (the oracle), a few
  steps in float64, against both paths;
* the CUDA kernels (the simulator, or a GPU) against the CPU;
* properties: ``step`` = ``update`` + ``apply_updates``, state dtypes
  (optax's lowest params dtype) for random trees, mixed-dtype trees;
* bad input: errors naming the argument, raised before anything is written.
"""
import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import npopt
from conftest import TOL, rel_err
from npopt.tree import tree_leaves, tree_map
from reference import problem

C = npopt.contrib
DATA = os.path.join(os.path.dirname(__file__), "reference", "data", "contrib2")
SHORT = {
    "dog_default": lambda: C.dog(),
    "dowg_default": lambda: C.dowg(),
    "prodigy_default": lambda: C.prodigy(),
    "dadapt_adamw_default": lambda: C.dadapt_adamw(),
    "mechanize_adam_default": lambda: C.mechanize(npopt.adam(1e-2)),
    "distance_over_gradients_default": lambda: npopt.chain(
        npopt.scale_by_distance_over_gradients(), npopt.scale_by_learning_rate(1.0)),
}


# ---------------------------------------------------------------------------
# the defaults' first 10 optax steps
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["update", "step"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", sorted(SHORT))
def test_defaults_match_optax_over_10_steps(case, dtype, path):
    z = np.load(os.path.join(DATA, case + ".npz"))
    meta = json.loads(str(z["meta"]))
    dt = np.dtype(dtype)
    opt = SHORT[case]()
    params, consts = problem.make_problem(dt)
    state = opt.init(params)
    snaps = {}
    for t in range(meta["steps"]):
        g = problem.grads(params, consts, t)
        if path == "update":
            u, state = opt.update(g, state, params)
            params = npopt.apply_updates(params, u)
        else:
            params, state = opt.step(params, g, state)
        if t + 1 in meta["checkpoints"]:
            snaps[t + 1] = problem.ravel(params).copy()
    idx = z["sample_idx"]
    for k, row in zip(meta["checkpoints"], z[f"{dtype}/params_sampled"]):
        # the first steps move the params by ~1e-6: float32 is compared to
        # the params' size (the rounding of p + u), float64 to 1e-10
        err = rel_err(snaps[k][idx], row)
        assert err <= TOL[dt], (k, err)
    spec = meta[dtype]["state"]
    leaves = tree_leaves(state)
    assert [np.asarray(x).dtype.name for x in leaves] == [s["dtype"] for s in spec]


# ---------------------------------------------------------------------------
# the papers' formulas, in plain NumPy (float64, on the flattened params)
# ---------------------------------------------------------------------------

def _toy():
    rng = np.random.default_rng(7)
    params = {"a": rng.standard_normal(5), "b": rng.standard_normal((2, 3))}
    target = tree_map(lambda x: rng.standard_normal(x.shape), params)
    d = tree_map(lambda x: rng.uniform(0.5, 2.0, x.shape), params)
    return params, target, d


def _flat(tree):
    return np.concatenate([np.ravel(x) for x in tree_leaves(tree)])


def _grad(params, target, d, t):
    return tree_map(lambda p, tg, dd: dd * (p - tg) + 0.05 * np.cos(t) * tg, params, target, d)


def _loss(params, target, d):
    return float(sum(0.5 * np.sum(dd * (p - tg) ** 2) for p, tg, dd in
                     zip(tree_leaves(params), tree_leaves(target), tree_leaves(d))))


def _run_both(opt, steps, with_value=False):
    """The flat params after each step, by update + apply_updates and by step."""
    out = {}
    for path in ("update", "step"):
        params, target, d = _toy()
        params = tree_map(np.copy, params)
        state = opt.init(params)
        traj = []
        for t in range(steps):
            g = _grad(params, target, d, t)
            kw = {"value": _loss(params, target, d)} if with_value else {}
            if path == "update":
                u, state = opt.update(g, state, params, **kw)
                params = npopt.apply_updates(params, u)
            else:
                params, state = opt.step(params, g, state, **kw)
            traj.append(_flat(params))
        out[path] = traj
    return out


def _oracle_run(rule, steps, with_value=False):
    params, target, d = _toy()
    x = _flat(params)
    tg, dd = _flat(target), _flat(d)
    mem = {}
    traj = []
    for t in range(steps):
        g = dd * (x - tg) + 0.05 * np.cos(t) * tg
        f = float(np.sum(0.5 * dd * (x - tg) ** 2)) if with_value else None
        x = x + rule(mem, t, x, g, f)
        traj.append(x.copy())
    return traj


def _vdot(a, b):
    return float(np.sum(a * b))


def oracle_dog(mem, t, x, g, f, r_eps=1e-6, eps=1e-8):
    # Ivgi et al. (2023), Algorithm 1 with r_eps = 1e-6 (1 + ||x0||)
    if t == 0:
        mem.update(x0=x.copy(), rbar=r_eps * (1 + np.sqrt(_vdot(x, x))), G=0.0)
    mem["rbar"] = max(mem["rbar"], np.sqrt(_vdot(x - mem["x0"], x - mem["x0"])))
    mem["G"] += _vdot(g, g)
    return -mem["rbar"] / np.sqrt(mem["G"] + eps) * g


def oracle_dowg(mem, t, x, g, f, eps=1e-4):
    # Khaled et al. (2023), Algorithm 1 (DoWG), r_eps^2 = eps
    if t == 0:
        mem.update(x0=x.copy(), r2=eps, v=0.0)
    mem["r2"] = max(mem["r2"], _vdot(x - mem["x0"], x - mem["x0"]))
    mem["v"] += mem["r2"] * _vdot(g, g)
    return -mem["r2"] / (np.sqrt(mem["v"]) + eps) * g


def oracle_prodigy(mem, t, x, g, f, b1=0.9, b2=0.999, eps=1e-8, d0=1e-6, lr=1.0):
    # Mishchenko & Defazio (2023), Algorithm 4 (Adam version), as optax orders it
    b3 = b2 ** 0.5
    if t == 0:
        mem.update(x0=x.copy(), m=0 * x, v=0 * x, s=0 * x, d=d0, r=0.0)
    k = t + 1
    d = mem["d"]
    dlr = d * lr * np.sqrt(1 - b2 ** k) / (1 - b1 ** k)
    mem["m"] = b1 * mem["m"] + (1 - b1) * d * g
    mem["v"] = b2 * mem["v"] + (1 - b2) * (d * g) ** 2
    mem["s"] = b3 * mem["s"] + dlr * d * g / d0
    mem["r"] = b3 * mem["r"] + (d / d0) * dlr * _vdot(g, mem["x0"] - x)
    mem["d"] = max(d, mem["r"] / np.sum(np.abs(mem["s"])))
    return -dlr * mem["m"] / (np.sqrt(mem["v"]) + mem["d"] * eps)


def oracle_dadapt(mem, t, x, g, f, b1=0.9, b2=0.999, eps=1e-8, d0=1e-6, lr=1.0):
    # Defazio & Mishchenko (2023), Algorithm 4 (D-Adapted Adam)
    r = b2 ** 0.5
    if t == 0:
        mem.update(m=0 * x, v=0 * x, s=0 * x, d=d0, a=0.0)
    k = t + 1
    dlr = mem["d"] * lr * np.sqrt(1 - b2 ** k) / (1 - b1 ** k)
    n = _vdot(g, mem["s"] / (np.sqrt(mem["v"]) + eps))
    mem["m"] = b1 * mem["m"] + (1 - b1) * dlr * g
    mem["v"] = b2 * mem["v"] + (1 - b2) * g * g
    mem["s"] = r * mem["s"] + (1 - r) * dlr * g
    mem["a"] = r * mem["a"] + (1 - r) * dlr * n
    mem["d"] = max(mem["d"], mem["a"] / ((1 - r) * np.sum(np.abs(mem["s"]))))
    return -mem["m"] / (np.sqrt(mem["v"]) + eps)


def oracle_mechanic(mem, t, x, g, f, lr=0.1, wd=1e-2, eps=1e-8, s_init=1e-6, n=6):
    # Cutkosky et al. (2023), Algorithm 1, around SGD (base update -lr g)
    beta = np.array([1 - 0.1 ** i for i in range(1, n + 1)])
    if t == 0:
        mem.update(x0=x.copy(), r=np.zeros(n), m=np.zeros(n), v=np.zeros(n),
                   s=np.full(n, s_init))
    S = np.sum(mem["s"])
    gt = g + wd * S * np.sqrt(_vdot(g, g)) / (np.sqrt(_vdot(x, x)) + eps) * x
    delta = (mem["x0"] - x) / (S + eps)
    h = _vdot(gt, delta)
    m_old = mem["m"]
    mem["m"] = np.maximum(beta * m_old, abs(h) + eps)
    mem["v"] = beta ** 2 * mem["v"] + h * h
    mem["r"] = beta * mem["r"] + np.clip(h, -m_old, m_old) * mem["s"]
    mem["s"] = (s_init / n * mem["m"] + np.maximum(0, mem["r"])) / (np.sqrt(mem["v"]) + eps)
    new_x = mem["x0"] - np.sum(mem["s"]) * (delta + lr * g)
    return new_x - x


def oracle_momo(mem, t, x, g, f, alpha=1.0, beta=0.9, lb=0.0, wd=0.0):
    # Schaipp et al. (2023), Algorithm 1 (MoMo), with optax's beta_0 = 0
    bt = 0.0 if t == 0 else beta
    if t == 0:
        mem.update(d=0 * x, fbar=0.0, gamma=0.0)
    mem["fbar"] = bt * mem["fbar"] + (1 - bt) * f
    mem["d"] = bt * mem["d"] + (1 - bt) * g
    mem["gamma"] = bt * mem["gamma"] + (1 - bt) * _vdot(g, x)
    nd = _vdot(mem["d"], mem["d"])
    h = max((1 + alpha * wd) * (mem["fbar"] - lb - mem["gamma"]) + _vdot(mem["d"], x), 0)
    tau = min(alpha, h / nd)
    return -(alpha * wd) / (1 + alpha * wd) * x - tau * mem["d"]


def oracle_momo_adam(mem, t, x, g, f, alpha=1e-2, b1=0.9, b2=0.999, eps=1e-8, lb=0.0):
    # Schaipp et al. (2023), Algorithm 3 (MoMo-Adam), no weight decay
    if t == 0:
        mem.update(d=0 * x, v=0 * x, fbar=0.0, gamma=0.0)
    k = t + 1
    mem["fbar"] = b1 * mem["fbar"] + (1 - b1) * f
    mem["d"] = b1 * mem["d"] + (1 - b1) * g
    mem["v"] = b2 * mem["v"] + (1 - b2) * g * g
    q = eps + np.sqrt(mem["v"] / (1 - b2 ** k))
    mem["gamma"] = b1 * mem["gamma"] + (1 - b1) * _vdot(g, x)
    bc1 = 1 - b1 ** k
    nd = _vdot(mem["d"], mem["d"] / q)
    h = max(mem["fbar"] - bc1 * lb - mem["gamma"] + _vdot(mem["d"], x), 0)
    tau = min(alpha / bc1, h / nd)
    return -tau * mem["d"] / q


ORACLES = {
    "dog": (lambda: C.dog(), oracle_dog, False),
    "dowg": (lambda: C.dowg(), oracle_dowg, False),
    "prodigy": (lambda: C.prodigy(), oracle_prodigy, False),
    "dadapt_adamw": (lambda: C.dadapt_adamw(), oracle_dadapt, False),
    "mechanize_sgd": (lambda: C.mechanize(npopt.sgd(0.1)), oracle_mechanic, False),
    "momo": (lambda: C.momo(), oracle_momo, True),
    "momo_adam": (lambda: C.momo_adam(), oracle_momo_adam, True),
}


@pytest.mark.parametrize("name", sorted(ORACLES))
def test_matches_the_papers_formula(name):
    make, rule, with_value = ORACLES[name]
    want = _oracle_run(rule, 6, with_value)
    got = _run_both(make(), 6, with_value)
    for path, traj in got.items():
        for k, (a, b) in enumerate(zip(traj, want)):
            assert rel_err(a, b) <= 1e-11, (path, k, rel_err(a, b))
    # the steps are not trivial: the params moved
    assert rel_err(want[-1], _flat(_toy()[0])) > 1e-6


def test_layerwise_dog_is_dog_per_leaf():
    """scale_by_distance_over_gradients: DoG's formula on each leaf alone
    (Ivgi et al., 2023, "layer-wise DoG"), the initial params kept in float32."""
    opt = npopt.chain(npopt.scale_by_distance_over_gradients(reps_rel=1e-3, global_scale=2.0),
                      npopt.scale_by_learning_rate(0.5))
    got = _run_both(opt, 5)
    params, target, d = _toy()
    mems = {k: {} for k in params}
    x = {k: v.copy() for k, v in params.items()}
    for t in range(5):
        g = _grad(x, target, d, t)
        for k in x:
            m = mems[k]
            if t == 0:
                m.update(x0=x[k].astype(np.float32).astype(np.float64),
                         r=1e-3 * (1 + np.sqrt(np.sum(x[k] ** 2))), G=0.0)
            m["r"] = max(m["r"], np.sqrt(np.sum((x[k] - m["x0"]) ** 2)))
            m["G"] += np.sum(g[k] ** 2)
            x[k] = x[k] - 0.5 * 2.0 * m["r"] / np.sqrt(m["G"] + 1e-8) * g[k]
        for path in got:
            assert rel_err(got[path][t], _flat(x)) <= 1e-12, (path, t)


def test_reduce_on_plateau_follows_its_definition():
    """Scale, patience, cooldown and min_scale over a made-up series of values."""
    values = [10, 9, 9.5, 9.4, 9.3, 9.2, 9.1, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5]
    opt = C.reduce_on_plateau(factor=0.5, patience=2, rtol=0.05, atol=0.0, cooldown=1,
                              min_scale=0.2)
    g = np.ones(3)
    state = opt.init(g)
    best, plateau, cool, scale, seen = np.inf, 0, 0, 1.0, []
    for v in values:
        u, state = opt.update(g, state, value=v)
        if v < (1 - 0.05) * best:
            best, curr = v, 0
        else:
            curr = plateau + 1
        if cool > 0:
            plateau, cool = 0, cool - 1
        else:
            hit = curr == 2
            plateau = 0 if hit else curr
            scale = max(scale * 0.5 if hit else scale, 0.2)
            cool = 1 if hit else 0
        seen.append(scale)
        np.testing.assert_array_equal(u, scale * g)
        assert float(state.scale) == scale and int(state.plateau_count) == plateau
    assert min(seen) == 0.2 and len(set(seen)) >= 3


def test_reduce_on_plateau_accumulates_values():
    opt = C.reduce_on_plateau(patience=1, accumulation_size=3)
    state = opt.init(np.zeros(2))
    for v in (1.0, 2.0):
        _, state = opt.update(np.ones(2), state, value=v)
    assert int(state.count) == 2 and float(state.avg_value) == 1.5
    _, state = opt.update(np.ones(2), state, value=3.0)
    assert int(state.count) == 0 and float(state.best_value) == 2.0


# ---------------------------------------------------------------------------
# CUDA (simulator or GPU) against the CPU
# ---------------------------------------------------------------------------

CUDA_RULES = {
    "dog": (lambda: C.dog(), False),
    "dowg": (lambda: C.dowg(weight_decay=1e-3), False),
    "layerwise_dog": (lambda: npopt.chain(npopt.scale_by_distance_over_gradients(reps_rel=1e-3),
                                          npopt.scale(-1.0)), False),
    "layerwise_dog_f64": (lambda: npopt.chain(npopt.scale_by_distance_over_gradients(
        reps_rel=1e-3, param_dtype=np.float64), npopt.scale(-1.0)), False),
    "prodigy": (lambda: C.prodigy(estim_lr0=1e-3), False),
    "dadapt_adamw": (lambda: C.dadapt_adamw(estim_lr0=1e-3, weight_decay=1e-3), False),
    "mechanize": (lambda: C.mechanize(npopt.sgd(0.1), s_init=1e-2), False),
    "momo": (lambda: C.momo(adapt_lower_bound=True, weight_decay=1e-2), True),
    "momo_adam": (lambda: C.momo_adam(adapt_lower_bound=True, weight_decay=1e-2), True),
    "reduce_on_plateau": (lambda: npopt.chain(npopt.sgd(0.1), C.reduce_on_plateau(patience=1)),
                          True),
}
ULPS = {np.dtype(np.float32): 2e-6, np.dtype(np.float64): 1e-13}


CUDA_CASES = [(r, dt) for r in sorted(CUDA_RULES) for dt in (np.float32, np.float64)
              if not (r == "layerwise_dog" and dt == np.float64)    # see the test below
              and not (r == "layerwise_dog_f64" and dt == np.float32)]


def test_cuda_layerwise_dog_refuses_to_convert_dtypes():
    """float64 params with the default param_dtype (float32) would need a
    conversion on the device: refused, naming param_dtype."""
    cuda = pytest.importorskip("numba.cuda")
    opt = npopt.scale_by_distance_over_gradients()
    with pytest.raises(TypeError, match="param_dtype"):
        opt.init({"a": cuda.to_device(np.ones(3))})


@pytest.mark.parametrize("path", ["update", "step"])
@pytest.mark.parametrize("rule, dtype", CUDA_CASES)
def test_cuda_matches_cpu(rule, dtype, path):
    cuda = pytest.importorskip("numba.cuda")
    from npopt._target import is_device_array
    make, with_value = CUDA_RULES[rule]
    opt = make()
    params, target, d = _toy()
    params = tree_map(lambda x: x.astype(dtype), params)
    cpu_p, cpu_s = params, opt.init(params)
    dev_p = tree_map(cuda.to_device, params)
    dev_s = opt.init(dev_p)
    host = lambda t: tree_map(lambda x: x.copy_to_host() if hasattr(x, "copy_to_host") else x, t)
    for t in range(4):
        g = tree_map(lambda x: x.astype(dtype), _grad(host(cpu_p), target, d, t))
        kw = {"value": _loss(host(cpu_p), target, d)} if with_value else {}
        dg = tree_map(cuda.to_device, g)
        if path == "update":
            u, cpu_s = opt.update(g, cpu_s, cpu_p, **kw)
            cpu_p = npopt.apply_updates(cpu_p, u)
            du, dev_s = opt.update(dg, dev_s, dev_p, **kw)
            dev_p = npopt.apply_updates(dev_p, du)
        else:
            cpu_p, cpu_s = opt.step(cpu_p, g, cpu_s, **kw)
            dev_p, dev_s = opt.step(dev_p, dg, dev_s, **kw)
    for leaf in tree_leaves(dev_p):
        assert is_device_array(leaf)
    for a, b in zip(tree_leaves(host(dev_p)), tree_leaves(cpu_p)):
        assert a.dtype == b.dtype and rel_err(a, b) <= ULPS[np.dtype(dtype)], rel_err(a, b)
    for a, b in zip(tree_leaves(host(dev_s)), tree_leaves(cpu_s)):
        assert rel_err(np.asarray(a), np.asarray(b)) <= 10 * ULPS[np.dtype(dtype)]


# ---------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------

FUSED = {
    "prodigy": (lambda: C.prodigy(estim_lr0=1e-2), False),
    "dadapt_adamw": (lambda: C.dadapt_adamw(estim_lr0=1e-2, weight_decay=1e-2), False),
    "momo": (lambda: C.momo(weight_decay=1e-2), True),
    "momo_adam": (lambda: C.momo_adam(weight_decay=1e-2), True),
}
SHAPES = st.lists(st.sampled_from([(), (1,), (3,), (4, 5), (0,), (2, 3, 2)]), min_size=1,
                  max_size=3)


@settings(max_examples=20)
@given(shapes=SHAPES, dtype=st.sampled_from([np.float32, np.float64]),
       rule=st.sampled_from(sorted(FUSED)), seed=st.integers(0, 2 ** 16))
def test_fused_step_equals_update_and_state_dtypes(shapes, dtype, rule, seed):
    rng = np.random.default_rng(seed)
    params = {f"p{i}": rng.standard_normal(s).astype(dtype) for i, s in enumerate(shapes)}
    make, with_value = FUSED[rule]
    opt = make()
    assert opt.fused_step is not None
    p1, s1 = params, opt.init(params)
    p2, s2 = tree_map(np.copy, params), opt.init(params)
    for t in range(3):
        g = tree_map(lambda x: (x + rng.standard_normal(x.shape)).astype(dtype), p1)
        kw = {"value": 1.0 + t} if with_value else {}
        u, s1 = opt.update(g, s1, p1, **kw)
        p1 = npopt.apply_updates(p1, u)
        p2, s2 = opt.step(p2, g, s2, **kw)
    for a, b in zip(tree_leaves(p1), tree_leaves(p2)):
        assert a.shape == b.shape and a.dtype == b.dtype == np.dtype(dtype)
        assert rel_err(b, a) <= 4 * np.finfo(dtype).eps, rel_err(b, a)
    for a, b in zip(tree_leaves(s1), tree_leaves(s2)):
        assert np.asarray(a).dtype == np.asarray(b).dtype
        assert np.asarray(a).dtype in (np.dtype(dtype), np.dtype(np.int32))


@pytest.mark.parametrize("make", [
    lambda: C.prodigy(), lambda: C.dadapt_adamw(), lambda: C.dog(), lambda: C.dowg(),
    lambda: C.momo(), lambda: C.momo_adam(), lambda: C.mechanize(npopt.sgd(0.1)),
    lambda: C.reduce_on_plateau()])
def test_mixed_dtype_trees_take_the_lowest_dtype_for_scalars(make):
    """init's scalars have the lowest params dtype (optax.tree.dtype(params,
    'lowest')); a step then promotes as jnp does (float32 and float64 leaves'
    sums add in float64), and the updates keep the params' shapes."""
    params = {"a": np.ones(3, np.float64), "b": np.full(2, 0.5, np.float32)}
    opt = make()
    state = opt.init(params)
    if isinstance(state, C.ReduceLROnPlateauState):
        assert np.asarray(state.scale).dtype == np.float32
        assert np.asarray(state.best_value).dtype == np.float64
    else:
        scalars = [x for x in tree_leaves(state)
                   if np.ndim(x) <= 1 and np.size(x) <= 6 and np.asarray(x).dtype.kind == "f"
                   and not (isinstance(x, np.ndarray) and x.base is not None)]
        assert scalars and all(np.asarray(x).dtype == np.float32 for x in scalars), scalars
    grads = tree_map(lambda x: 0.1 * x, params)
    u, state = opt.update(grads, state, params, value=2.0)
    for k in params:
        assert np.asarray(u[k]).shape == params[k].shape
        assert np.all(np.isfinite(u[k]))


def test_deterministic_sums_do_not_depend_on_threads(monkeypatch):
    """The chunked reductions give the same bits serially and in parallel."""
    import npopt.kernels._jit as jit
    rng = np.random.default_rng(3)
    params = {"w": rng.standard_normal(3 * 4096 + 17), "b": rng.standard_normal(5000)}
    grads = tree_map(lambda x: rng.standard_normal(x.shape), params)
    out = []
    for threshold in (1 << 30, 1):
        monkeypatch.setattr(jit, "PARALLEL_THRESHOLD", threshold)
        opt = C.prodigy(estim_lr0=1e-2)
        u, s = opt.update(grads, opt.init(params), params)
        out.append((_flat(u), float(s.estim_lr), float(s.numerator_weighted)))
    assert np.array_equal(out[0][0], out[1][0]) and out[0][1:] == out[1][1:]


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("make, exc, match", [
    (lambda: C.dog(init_step=("sideways", 1e-6)), ValueError, "init_step"),
    (lambda: C.dog(init_step=("distance", -1.0)), ValueError, r"init_step\[1\]"),
    (lambda: C.dog(eps=float("nan")), ValueError, "eps"),
    (lambda: C.dog(learning_rate=-1.0), ValueError, "learning_rate"),
    (lambda: C.dowg(init_estim_sq_dist=-1.0), ValueError, "init_estim_sq_dist"),
    (lambda: C.prodigy(betas=(1.5, 0.999)), ValueError, r"betas\[0\]"),
    (lambda: C.prodigy(betas=0.9), ValueError, "betas"),
    (lambda: C.prodigy(estim_lr0=0.0), ValueError, "estim_lr0"),
    (lambda: C.prodigy(safeguard_warmup="yes"), TypeError, "safeguard_warmup"),
    (lambda: C.dadapt_adamw(betas=(0.9, 1.0)), ValueError, r"betas\[1\]"),
    (lambda: C.mechanize(3), TypeError, "base_optimizer"),
    (lambda: C.mechanize(npopt.sgd(0.1), num_betas=0), ValueError, "num_betas"),
    (lambda: C.momo(beta=2.0), ValueError, "beta"),
    (lambda: C.momo_adam(weight_decay=-1.0), ValueError, "weight_decay"),
    (lambda: C.momo(adapt_lower_bound=1), TypeError, "adapt_lower_bound"),
    (lambda: C.reduce_on_plateau(factor=1.0), ValueError, "factor"),
    (lambda: C.reduce_on_plateau(rtol=0.0, atol=0.0), ValueError, "rtol, atol"),
    (lambda: C.reduce_on_plateau(rtol=2.0), ValueError, "rtol"),
    (lambda: C.reduce_on_plateau(patience=1.5), ValueError, "patience"),
    (lambda: npopt.scale_by_distance_over_gradients(param_dtype=np.int32), TypeError,
     "param_dtype"),
])
def test_bad_arguments_are_named(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


@pytest.mark.parametrize("make", [lambda: C.momo(), lambda: C.momo_adam(),
                                  lambda: C.reduce_on_plateau()])
def test_missing_value_is_named_and_nothing_is_written(make):
    opt = make()
    params = {"a": np.ones(3)}
    state = opt.init(params)
    before = [np.array(x, copy=True) for x in tree_leaves(state)]
    with pytest.raises(TypeError, match="value"):
        opt.update(params, state, params)
    with pytest.raises(TypeError, match="value"):
        opt.step(params, params, state)
    with pytest.raises(TypeError, match="value"):
        opt.update(params, state, params, value="high")
    for a, b in zip(tree_leaves(state), before):
        np.testing.assert_array_equal(a, b)
    # the state was not consumed by the failed step
    opt.update(params, state, params, value=1.0)


@pytest.mark.parametrize("make", [lambda: C.prodigy(), lambda: C.dadapt_adamw(),
                                  lambda: C.dog(), lambda: C.mechanize(npopt.sgd(0.1)),
                                  lambda: npopt.scale_by_distance_over_gradients()])
def test_missing_params_and_foreign_state(make):
    opt = make()
    params = {"a": np.ones(3)}
    state = opt.init(params)
    with pytest.raises(ValueError, match="params"):
        opt.update(params, state)
    other = npopt.adam(0.1).init(params)
    with pytest.raises((TypeError, ValueError), match="state"):
        opt.update(params, other, params)


def test_schedule_value_must_be_finite_and_nothing_is_written():
    opt = C.prodigy(lambda count: float("nan"))
    params = {"a": np.ones(3)}
    state = opt.init(params)
    p = np.array(params["a"])
    with pytest.raises(ValueError, match="learning_rate"):
        opt.step(params, params, state)
    np.testing.assert_array_equal(params["a"], p)
    opt2 = C.prodigy()
    opt2.update(params, state, params)     # the state is still usable


def test_wrong_shapes_are_named():
    opt = C.dadapt_adamw()
    params = {"a": np.ones(3)}
    state = opt.init(params)
    with pytest.raises(ValueError, match="updates"):
        opt.update({"a": np.ones(4)}, state, params)
    with pytest.raises(ValueError, match="state.exp_avg"):
        opt.update(params, state._replace(exp_avg={"a": np.ones(2)}), params)


# ---------------------------------------------------------------------------
# optax's names, signatures and state fields (optax 0.2.8, catalog §2.11)
# ---------------------------------------------------------------------------

SIGNATURES = {
    "dog": "(learning_rate=1.0, init_step=('heuristic', 1e-06), eps=1e-08, weight_decay=None, "
           "mask=None)",
    "dowg": "(learning_rate=1.0, init_estim_sq_dist=None, eps=0.0001, weight_decay=None, "
            "mask=None)",
    "prodigy": "(learning_rate=1.0, betas=(0.9, 0.999), beta3=None, eps=1e-08, estim_lr0=1e-06, "
               "estim_lr_coef=1.0, weight_decay=0.0, safeguard_warmup=False)",
    "dadapt_adamw": "(learning_rate=1.0, betas=(0.9, 0.999), eps=1e-08, estim_lr0=1e-06, "
                    "weight_decay=0.0)",
    "mechanize": "(base_optimizer, weight_decay=0.01, eps=1e-08, s_init=1e-06, num_betas=6)",
    "momo": "(learning_rate=1.0, beta=0.9, lower_bound=0.0, weight_decay=0.0, "
            "adapt_lower_bound=False)",
    "momo_adam": "(learning_rate=0.01, b1=0.9, b2=0.999, eps=1e-08, lower_bound=0.0, "
                 "weight_decay=0.0, adapt_lower_bound=False)",
    "reduce_on_plateau": "(factor=0.1, patience=10, rtol=0.0001, atol=0.0, cooldown=0, "
                         "accumulation_size=1, min_scale=0.0)",
}
FIELDS = {
    "DAdaptAdamWState": "exp_avg exp_avg_sq grad_sum estim_lr numerator_weighted count",
    "DoGState": "is_init_step init_params max_dist sum_sq_norm_grads",
    "DoWGState": "init_params weighted_sq_norm_grads estim_sq_dist",
    "MechanicState": "base_optimizer_state count r m v s x0",
    "MomoState": "exp_avg barf gamma lb count",
    "MomoAdamState": "exp_avg exp_avg_sq barf gamma lb count",
    "ProdigyState": "exp_avg exp_avg_sq grad_sum params0 estim_lr numerator_weighted count",
    "ReduceLROnPlateauState": "scale best_value plateau_count cooldown_count count avg_value",
}


@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_optax_signature(name):
    import inspect
    assert str(inspect.signature(getattr(C, name))) == SIGNATURES[name]


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_optax_state_fields(name):
    assert getattr(C, name)._fields == tuple(FIELDS[name].split())


def test_scale_by_distance_over_gradients_is_top_level():
    import inspect
    assert str(inspect.signature(npopt.scale_by_distance_over_gradients)) == (
        "(reps_rel=1e-06, eps=1e-08, param_dtype=<class 'numpy.float32'>, global_scale=1.0)")
    state = npopt.scale_by_distance_over_gradients().init({"a": np.ones(3), "b": np.ones(())})
    assert type(state)._fields == ("max_dist", "grad_sum_of_squares", "init_params")
    assert state.grad_sum_of_squares["a"].shape == (1,)
    assert state.grad_sum_of_squares["a"].dtype == np.float64
    assert state.init_params["a"].dtype == np.float32      # param_dtype, as optax
