"""L-BFGS and the line searches: optax reference trajectories, line-search
properties, CUDA (simulator) vs CPU kernels, bad input.

The reference (tests/reference/data/lbfgs, made by make_lbfgs_reference.py)
holds jitted optax 0.2.8 (x64) runs on lbfgs_problem.py's objective. Each
case is replayed here through ``update`` + ``apply_updates`` and through
``step``, for the ``K`` steps stored per dtype, and compared: params at
checkpoints and after K steps, the first update, the value passed at every
step, the line search's step count at every step (iteration agreement), its
learning rates and the final state.

Why K steps, not always 100: L-BFGS amplifies rounding, and XLA's summation
order inside a dot product cannot be reproduced, so two correct
implementations drift apart. The generator measures the drift on optax
itself (the same run with optax's ``tree.vdot``/``tree.norm`` summing in
another order) and keeps the steps, up to convergence and at most 100,
where the two optax runs agree to half the tolerance. At float64 that is
60-100 steps (to convergence: the drift stays below 1e-11). At float32 the
drift passes 5e-6 within 4 steps (memory_size=3, gamma = 1: unscaled first
steps), 17 (zoom with 'keep': each step size is interpolated from the
previous one) or 31 (sgd + zoom), and never before convergence for the
defaults (33 steps), backtracking (42) and the scheduled learning rate
(30). npopt's float32 trajectories drift from optax's by the same amounts
(they stayed within 1e-5 of it until convergence in several cases, but not
in all).
"""
import json
import os
import re
import warnings

import numpy as np
import pytest

import npopt
from conftest import TOL, rel_err
from npopt.kernels import lbfgs as klbfgs
from npopt.kernels import linesearch as kls
from npopt.tree import tree_flatten, tree_leaves, tree_map
from reference import lbfgs_problem as lp

DATA = os.path.join(os.path.dirname(__file__), "reference", "data", "lbfgs")
CASES = sorted(f[:-4] for f in os.listdir(DATA)
               if f.endswith(".npz") and f != "interpolation.npz")


def _load(case):
    z = np.load(os.path.join(DATA, case + ".npz"))
    return z, json.loads(str(z["meta"]))


def replay(meta, dtype, steps, path, spelling="value_and_grad_fn"):
    """Runs the case's optimizer for ``steps`` steps; returns a record."""
    opt = eval(meta["expr"], {"ox": npopt, "np": np})
    params, consts = lp.make_problem(dtype)
    fg = lambda p: lp.value_and_grad(p, consts)  # noqa: E731
    if spelling == "value_and_grad_fn":
        fns = dict(value_and_grad_fn=fg)
    else:
        fns = dict(value_fn=lambda p: lp.value(p, consts), grad_fn=lambda p: lp.grad(p, consts))
    vg = npopt.value_and_grad_from_state(fg)
    state = opt.init(params)
    rec = dict(values=[], learning_rate=[], num_linesearch_steps=[], snaps={})
    for t in range(steps):
        value, grad = fg(params) if meta["fresh"] else vg(params, state=state)
        if path == "update":
            updates, state = opt.update(grad, state, params, value=value, grad=grad, **fns)
            if t == 0:
                rec["first"] = lp.ravel(updates)
            params = npopt.apply_updates(params, updates)
        else:
            before = lp.ravel(params)
            params, state = opt.step(params, grad, state, value=value, grad=grad, **fns)
            if t == 0:
                rec["first"] = lp.ravel(params) - before
        rec["values"].append(float(value))
        info = getattr(state[-1], "info", None)
        rec["learning_rate"].append(float(state[-1].learning_rate) if info else np.nan)
        rec["num_linesearch_steps"].append(int(info.num_linesearch_steps) if info else 0)
        rec["snaps"][t + 1] = lp.ravel(params).copy()
    rec["params"], rec["state"] = params, state
    return rec


def _leaf_segments():
    out, off = [], 0
    for x in lp.flatten(lp.make_problem(np.float64)[0]):
        out.append((off, off + x.size))
        off += x.size
    return out


PARAMS = [(c, d, p) for c in CASES for d in _load(c)[1]["dtypes"] for p in ("update", "step")]


@pytest.mark.parametrize("case,dtype,path", PARAMS)
def test_matches_optax(case, dtype, path):
    z, meta = _load(case)
    dt = np.dtype(dtype)
    tol = TOL[dt]
    k = int(z[f"{dtype}/K"])
    rec = replay(meta, dt, k, path)
    final = lp.ravel(rec["params"])
    assert final.dtype == dt
    # params after K steps, leaf by leaf, and at the checkpoints (sampled)
    ref = z[f"{dtype}/params_final"]
    for a, b in _leaf_segments():
        assert rel_err(final[a:b], ref[a:b]) <= tol, (a, rel_err(final[a:b], ref[a:b]))
    idx = z["sample_idx"]
    for c, row in zip(z[f"{dtype}/checkpoints"], z[f"{dtype}/params_sampled"]):
        assert rel_err(rec["snaps"][int(c)][idx], row) <= tol, (c, rel_err(rec["snaps"][c][idx], row))
    first_tol = tol if path == "update" else 1e3 * tol   # step: p1 - p0, to the params' rounding
    assert rel_err(rec["first"][idx], z[f"{dtype}/updates_1_sampled"]) <= first_tol
    # iteration agreement: the same number of line-search steps at every step
    np.testing.assert_array_equal(rec["num_linesearch_steps"], z[f"{dtype}/num_linesearch_steps"])
    # the step sizes, while the line search still decides on values well
    # above their rounding (f > 1e-6 f0; beyond, the step sizes only scale
    # steps below the params' rounding, which the params comparison covers)
    lr_ref, vals = z[f"{dtype}/learning_rate"], z[f"{dtype}/values"]
    live = np.isfinite(lr_ref) & (vals > 1e-6 * vals[0])
    np.testing.assert_allclose(np.asarray(rec["learning_rate"])[live], lr_ref[live],
                               rtol=1e3 * tol, atol=0)
    # the value at every step, relative to the initial value
    assert np.max(np.abs(np.asarray(rec["values"]) - vals)) <= tol * abs(vals[0])
    _check_state(z, meta, dtype, rec["state"], tol)


def _field(path):
    """The state field a leaf belongs to: "[0].diff_params_memory['w']" ->
    "diff_params_memory"."""
    return re.findall(r"\.([A-Za-z_]+)", path)[-1]


def _check_state(z, meta, dtype, state, tol):
    """Same leaves, order, dtypes and shapes as optax's state; values to
    10 tol, each on the scale of what it measures. Near convergence the
    memories (differences of consecutive params and gradients), the last
    gradient and the weights 1/<s, y> are small differences of large
    numbers: their error is the params' (or gradients') rounding, so they
    are compared on the scale of the params, of the initial gradient, of
    the initial value, and (weights, as <s, y>) of ||p|| ||g0||."""
    params0, consts = lp.make_problem(np.dtype(dtype))
    f0, g0 = lp.value_and_grad(params0, consts)
    p_final = z[f"{dtype}/params_final"]
    p_scale, g_scale = float(np.max(np.abs(p_final))), float(np.max(np.abs(lp.ravel(g0))))
    scales = dict(params=p_scale, diff_params_memory=p_scale, updates=g_scale,
                  diff_updates_memory=g_scale, grad=g_scale, value=abs(float(f0)),
                  decrease_error=abs(float(f0)), curvature_error=abs(float(f0)))
    sy_scale = float(np.linalg.norm(p_final) * np.linalg.norm(lp.ravel(g0)))
    vals = z[f"{dtype}/values"]
    leaves = tree_leaves(state)
    spec = meta[dtype]["state"]
    assert len(leaves) == len(spec), [s["path"] for s in spec]
    for i, (leaf, s) in enumerate(zip(leaves, spec)):
        leaf = np.asarray(leaf)
        assert leaf.dtype == np.dtype(s["dtype"]), (s["path"], leaf.dtype, s["dtype"])
        assert leaf.shape == tuple(s["shape"]), s["path"]
        want = z[f"{dtype}/state_{i}"]
        got = leaf.reshape(-1)[z[f"{dtype}/state_idx_{i}"]] if f"{dtype}/state_idx_{i}" in z \
            else leaf
        field = _field(s["path"])
        if leaf.dtype.kind in "biu":
            np.testing.assert_array_equal(got, want, err_msg=s["path"])
        elif field == "weights_memory":     # rho = 1/<s, y>: compare <s, y>
            np.testing.assert_array_equal(got == 0, want == 0)
            with np.errstate(divide="ignore"):
                sy, sy_ref = 1 / got[got != 0], 1 / want[want != 0]
            assert np.max(np.abs(sy - sy_ref), initial=0) <= 10 * tol * sy_scale, s["path"]
        elif field == "learning_rate":      # as the per-step ones, while decisive
            if vals[-1] > 1e-6 * vals[0]:
                assert abs(float(got) - float(want)) <= 1e3 * tol * abs(float(want)), s["path"]
        else:
            scale = max(scales.get(field, 0.0), float(np.max(np.abs(want), initial=0)))
            err = float(np.max(np.abs(np.asarray(got, np.float64) - want), initial=0))
            assert err <= 10 * tol * scale, (s["path"], err, scale)


def test_interpolation_matches_xla():
    """The zoom's interpolation rules round as jitted optax (XLA contracts
    a*b + c into an fma; the rules are written so that LLVM does the same)."""
    z = np.load(os.path.join(DATA, "interpolation.npz"))
    for vdt in ("float64", "float32"):
        for (a, b, c), (fa, fpa, fb, fc), want_c, want_q in zip(
                z[f"{vdt}/ends"], z[f"{vdt}/values"], z[f"{vdt}/cubic"], z[f"{vdt}/quad"]):
            got_c = kls.cubicmin_rule(a, fa, fpa, b, fb, c, fc)
            got_q = kls.quadmin_rule(a, fa, fpa, b, fb)
            assert got_q == want_q, (vdt, got_q, want_q)
            assert got_c == want_c or (np.isnan(got_c) and np.isnan(want_c)), (vdt, got_c,
                                                                              want_c)


def test_zoom_point_float32_matches_xla():
    """For float32 params the zoom's bounds are weakly typed float64 in
    optax's loop carry: the quadratic interpolation runs in float32, the
    cubic's right-hand side too, and the trial step is chosen as jitted
    optax chooses it (4000 random brackets, bit for bit)."""
    from npopt.transforms.linesearch import zoom_point
    z = np.load(os.path.join(DATA, "interpolation.npz"))
    for (lo, hi, cr), (vl, sl, vh, vc), want, rule in zip(
            z["zoom32/bounds"], z["zoom32/values"], z["zoom32/middle"], z["zoom32/rule"]):
        got, got_rule = zoom_point(lo, vl, sl, hi, vh, cr, vc)
        assert type(got) is np.float64 or isinstance(got, float)
        assert (got == want or (np.isnan(got) and np.isnan(want))) and got_rule == rule, (
            (lo, hi, cr), (vl, sl, vh, vc), got, want, got_rule, rule)


@pytest.mark.parametrize("strategy,first_trial", [("one", np.float32), ("keep", np.float32)])
def test_float32_trial_dtypes(strategy, first_trial):
    """optax (x64) evaluates the interval phase's trials of float32 params in
    float32 (``'one'``'s initial guess is a weak ``jnp.asarray(1.0)``) and the
    zoom phase's in float64; recorded from optax 0.2.8 on sgd_zoom: float32
    (value at params), float32 (step 1.0), float64 (zoom)."""
    params, fg = _small_problem(np.float32)
    seen = []

    def rec(p):
        seen.append(tree_leaves(p)[0].dtype.type)
        return fg(p)
    opt = npopt.chain(npopt.sgd(1.0), npopt.scale_by_zoom_linesearch(
        max_linesearch_steps=15, curv_rtol=0.5, approx_dec_rtol=None,
        initial_guess_strategy=strategy))
    state = opt.init(params)
    value, grad = fg(params)
    opt.update(grad, state, params, value=value, grad=grad, value_and_grad_fn=rec)
    assert seen[0] is first_trial
    assert len(seen) >= 2 and seen[1] is np.float64   # the zoom phase (a bracket at step 1)
    lr = opt.update(grad, state, params, value=value, grad=grad, value_and_grad_fn=fg)[1][1]
    assert type(lr.learning_rate) is np.float32


def test_spellings_agree():
    """value_fn + grad_fn gives bit for bit what value_and_grad_fn gives."""
    z, meta = _load("lbfgs_default")
    a = replay(meta, np.dtype(np.float64), 6, "update")
    b = replay(meta, np.dtype(np.float64), 6, "update", spelling="value_fn")
    np.testing.assert_array_equal(lp.ravel(a["params"]), lp.ravel(b["params"]))
    assert a["num_linesearch_steps"] == b["num_linesearch_steps"]


# ---------------------------------------------------------------------------
# Line-search properties (independent of optax)
# ---------------------------------------------------------------------------

def _small_problem(dtype=np.float64):
    """A smooth convex function of a small pytree: sum of softplus(A x - y)
    plus a ridge, with its gradient."""
    rng = np.random.default_rng(3)
    A = rng.standard_normal((30, 12)).astype(dtype)
    y = rng.standard_normal(30).astype(dtype)

    def unpack(p):
        return np.concatenate([p["u"].ravel(), p["v"].ravel()])

    def fg(p):
        x = unpack(p)
        z = A @ x - y
        sp = np.logaddexp(0, z)
        value = np.sum(sp) + 0.05 * np.sum(x * x)
        g = A.T @ np.exp(z - sp) + 0.1 * x
        return value.astype(dtype), {"u": g[:4].reshape(2, 2).astype(dtype),
                                     "v": g[4:].astype(dtype)}

    params = {"u": rng.standard_normal((2, 2)).astype(dtype),
              "v": rng.standard_normal(8).astype(dtype)}
    return params, fg


def _vdot(a, b):
    return float(sum(np.vdot(x, y) for x, y in zip(tree_leaves(a), tree_leaves(b))))


@pytest.mark.parametrize("direction", ["lbfgs", "sgd"])
def test_zoom_accepts_strong_wolfe_steps(direction):
    c1, c2 = 1e-4, 0.9
    params, fg = _small_problem()
    pre = (npopt.chain(npopt.scale_by_lbfgs(), npopt.scale(-1.0)) if direction == "lbfgs"
           else npopt.sgd(0.5))
    ls = npopt.scale_by_zoom_linesearch(max_linesearch_steps=30, slope_rtol=c1, curv_rtol=c2,
                                        approx_dec_rtol=None)
    s_pre, s_ls = pre.init(params), ls.init(params)
    for _ in range(15):
        value, grad = fg(params)
        d, s_pre = pre.update(grad, s_pre, params)
        u, s_ls = ls.update(d, s_ls, params, value=value, grad=grad, value_and_grad_fn=fg)
        lr = float(s_ls.learning_rate)
        np.testing.assert_allclose(lp_ravel(u), lr * lp_ravel(d), rtol=1e-15)
        assert s_ls.info.decrease_error == 0 and s_ls.info.curvature_error == 0
        slope = _vdot(grad, d)
        assert slope < 0
        new = npopt.apply_updates(params, u)
        new_value, new_grad = fg(new)
        assert new_value <= value + c1 * lr * slope + 1e-12 * abs(value)        # Armijo
        assert abs(_vdot(new_grad, d)) <= c2 * abs(slope) * (1 + 1e-9)           # curvature
        # the state holds f and its gradient at the accepted point
        np.testing.assert_allclose(float(s_ls.value), new_value, rtol=1e-12)
        params = new


def lp_ravel(tree):
    return np.concatenate([np.ravel(x) for x in tree_leaves(tree)])


def test_backtracking_accepts_armijo_steps():
    c1 = 1e-4
    params, fg = _small_problem()
    pre = npopt.chain(npopt.scale_by_lbfgs(memory_size=3), npopt.scale(-1.0))
    ls = npopt.scale_by_backtracking_linesearch(max_backtracking_steps=30, slope_rtol=c1,
                                                store_grad=True)
    s_pre, s_ls = pre.init(params), ls.init(params)
    for _ in range(15):
        value, grad = fg(params)
        d, s_pre = pre.update(grad, s_pre, params)
        u, s_ls = ls.update(d, s_ls, params, value=value, grad=grad,
                            value_fn=lambda p: fg(p)[0], grad_fn=lambda p: fg(p)[1])
        lr = float(s_ls.learning_rate)
        assert 0 < lr <= 1.0 and s_ls.info.decrease_error == 0
        new = npopt.apply_updates(params, u)
        new_value, new_grad = fg(new)
        assert new_value <= value + c1 * lr * _vdot(grad, d) + 1e-12 * abs(value)
        np.testing.assert_allclose(lp_ravel(s_ls.grad), lp_ravel(new_grad), rtol=1e-12,
                                   atol=1e-14)
        params = new


def test_lbfgs_converges_and_reuses_state():
    """The docstring's loop: value_and_grad_from_state evaluates f only at the
    first step; the default lbfgs reaches the minimum."""
    params, fg = _small_problem()
    calls = []

    def counted(p):
        calls.append(1)
        return fg(p)

    opt = npopt.lbfgs()
    state = opt.init(params)
    vg = npopt.value_and_grad_from_state(counted)
    trials = 0
    for _ in range(30):
        value, grad = vg(params, state=state)
        updates, state = opt.update(grad, state, params, value=value, grad=grad,
                                    value_and_grad_fn=counted)
        params = npopt.apply_updates(params, updates)
        trials += int(state[-1].info.num_linesearch_steps)
    assert np.sqrt(_vdot(fg(params)[1], fg(params)[1])) < 1e-8
    # one evaluation per trial point of the line search, plus the first one
    assert len(calls) == 1 + trials


def test_failed_search_reports(capsys):
    """An uphill direction: the zoom search fails, says so, and reports it."""
    params, fg = _small_problem()
    ls = npopt.scale_by_zoom_linesearch(max_linesearch_steps=5, verbose=True)
    state = ls.init(params)
    value, grad = fg(params)
    u, state = ls.update(grad, state, params, value=value, grad=grad, value_and_grad_fn=fg)
    out = capsys.readouterr().out
    assert state.info.decrease_error > 0
    assert "not a descent direction" in out
    assert int(state.info.num_linesearch_steps) == 5


def test_finite_differences_fallback():
    """Without a gradient function the line search differentiates value_fn
    numerically (warned); the steps match the exact-gradient ones closely."""
    params, fg = _small_problem()
    value_fn = lambda p: fg(p)[0]  # noqa: E731
    runs = []
    for kw in (dict(value_and_grad_fn=fg), dict(value_fn=value_fn)):
        opt = npopt.lbfgs()
        state, p = opt.init(params), params
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            for _ in range(3):
                value, grad = fg(p)
                u, state = opt.update(grad, state, p, value=value, grad=grad, **kw)
                p = npopt.apply_updates(p, u)
        runs.append((lp_ravel(p), [str(x.message) for x in w]))
    assert not runs[0][1] and any("finite differences" in m for m in runs[1][1])
    assert rel_err(runs[1][0], runs[0][0]) < 1e-6


def test_extra_kwargs_reach_value_fn():
    """As optax: keyword arguments of update that value_fn accepts are passed."""
    params, fg = _small_problem()
    seen = []

    def f(p, scale):
        seen.append(scale)
        v, g = fg(p)
        return scale * v, tree_map(lambda x: scale * x, g)

    opt = npopt.lbfgs()
    state = opt.init(params)
    value, grad = f(params, 2.0)
    opt.update(grad, state, params, value=value, grad=grad, value_and_grad_fn=f, scale=2.0)
    assert seen and all(s == 2.0 for s in seen)


def test_step_matches_update_in_place():
    params, fg = _small_problem()
    opt = npopt.lbfgs(memory_size=4)
    s1 = opt.init(params)
    s2 = opt.init(tree_map(np.copy, params))
    p1, p2 = params, tree_map(np.copy, params)
    for _ in range(8):
        v, g = fg(p1)
        u, s1 = opt.update(g, s1, p1, value=v, grad=g, value_and_grad_fn=fg)
        p1 = npopt.apply_updates(p1, u)
        v, g = fg(p2)
        p2, s2 = opt.step(p2, g, s2, value=v, grad=g, value_and_grad_fn=fg)
    np.testing.assert_array_equal(lp_ravel(p1), lp_ravel(p2))
    for a, b in zip(tree_leaves(s1), tree_leaves(s2)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_user_chain_of_lbfgs_shape_takes_the_lbfgs_step():
    # chain(scale_by_lbfgs, a rate, a line search) built by hand: the lbfgs
    # plan's fused step (``_fusion.named_plan``), same numbers as update
    from npopt.transforms import _fusion
    params, fg = _small_problem()
    txs = [npopt.scale_by_lbfgs(memory_size=3), npopt.scale_by_learning_rate(0.5),
           npopt.scale_by_backtracking_linesearch(max_backtracking_steps=10)]
    assert _fusion.named_plan(txs) == ("lbfgs", None)
    opt = npopt.chain(*txs)
    assert opt.fused_step.__qualname__.startswith("lbfgs_step")
    s1 = opt.init(params)
    s2 = opt.init(tree_map(np.copy, params))
    p1, p2 = params, tree_map(np.copy, params)
    for _ in range(6):
        v, g = fg(p1)
        u, s1 = opt.update(g, s1, p1, value=v, grad=g, value_and_grad_fn=fg)
        p1 = npopt.apply_updates(p1, u)
        v, g = fg(p2)
        p2, s2 = opt.step(p2, g, s2, value=v, grad=g, value_and_grad_fn=fg)
    np.testing.assert_array_equal(lp_ravel(p1), lp_ravel(p2))
    for a, b in zip(tree_leaves(s1), tree_leaves(s2)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_update_does_not_mutate_inputs():
    params, fg = _small_problem()
    opt = npopt.lbfgs()
    state = opt.init(params)
    for _ in range(3):
        v, g = fg(params)
        _, state = opt.update(g, state, params, value=v, grad=g, value_and_grad_fn=fg)
        params = npopt.apply_updates(params, _)
    before = [np.copy(x) for x in tree_leaves((params, state))]
    v, g = fg(params)
    opt.update(g, state, params, value=v, grad=g, value_and_grad_fn=fg)
    for a, b in zip(before, tree_leaves((params, state))):
        np.testing.assert_array_equal(a, np.asarray(b))


# ---------------------------------------------------------------------------
# Kernels: CUDA (simulator) against CPU
# ---------------------------------------------------------------------------

def _cuda():
    return pytest.importorskip("numba.cuda", reason="numba-cuda (the 'cuda' extra) not installed")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_cuda_matches_cpu(dtype):
    cu = _cuda()
    from npopt.transforms.lbfgs import chunk_table
    from npopt._flat import Group
    rng = np.random.default_rng(5)
    m, sizes = 3, (5, 9000, 1)
    offs = np.concatenate([[0], np.cumsum(sizes)])
    grp = Group(np.dtype(dtype), (0, 1, 2), tuple(int(o) for o in offs), tuple((s,) for s in sizes),
                int(offs[-1]))
    n = grp.size
    chunks = chunk_table(grp, m)
    vec = lambda: rng.standard_normal(n).astype(dtype)  # noqa: E731
    p, p_old, u, u_old = vec(), vec(), vec(), vec()
    dw = rng.standard_normal(m * n).astype(dtype)
    du = rng.standard_normal(m * n).astype(dtype)
    z, acc = dtype(0), np.float64(0)
    ulps = 4 * np.finfo(dtype).eps

    def both(cpu, gpu, *args):
        """Runs the CPU and CUDA kernels on copies; returns (cpu, cuda) arrays."""
        host = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        dev = [cu.to_device(a.copy()) if isinstance(a, np.ndarray) else a for a in args]
        cpu(*host)
        gpu(dev[0].shape[0], *dev)
        return host, [d.copy_to_host() if hasattr(d, "copy_to_host") else d for d in dev]

    h, d = both(klbfgs.pair_cpu, klbfgs.pair_cuda, p, chunks, p_old, u, u_old, dw, du, 1, True,
                z, acc, np.empty(n, dtype), np.empty(n, dtype), np.empty(n, dtype),
                np.empty((len(chunks), 4)))
    for i in (5, 6, 11, 12, 13):
        np.testing.assert_array_equal(h[i], d[i])
    assert rel_err(d[14], h[14]) <= ulps
    h, d = both(klbfgs.two_loop_segments_cpu, klbfgs.two_loop_segments_cuda, vec(), chunks, np.float64(-0.3), dw, 2,
                dtype(0.7), du, 0, acc, np.empty(len(chunks)))
    assert rel_err(d[0], h[0]) <= ulps and rel_err(d[9], h[9]) <= ulps
    h, d = both(klbfgs.trial_cpu, klbfgs.trial_cuda, p, u, np.float64(0.37), np.empty(n))
    assert rel_err(d[3], h[3]) <= 1e-15
    h, d = both(klbfgs.dot_cpu, klbfgs.dot_cuda, p, chunks, u, acc, np.empty(len(chunks)))
    assert rel_err(d[4], h[4]) <= ulps
    h, d = both(klbfgs.cast_cpu, klbfgs.cast_cuda, rng.standard_normal(n), np.empty(n, dtype))
    np.testing.assert_array_equal(d[1], h[1])


@pytest.mark.parametrize("path", ["update", "step"])
def test_lbfgs_on_device_matches_host(path):
    """End to end on (simulated) CUDA arrays: the state stays on the device
    (except weights_memory, the host's scalars) and the steps match."""
    cu = _cuda()
    from npopt._target import is_device_array
    params, fg = _small_problem()

    def fg_dev(p):
        v, g = fg(tree_map(lambda x: x.copy_to_host(), p))
        return v, tree_map(cu.to_device, g)

    opt = npopt.lbfgs(memory_size=3)
    hp, hs = params, opt.init(params)
    dp = tree_map(cu.to_device, params)
    ds = opt.init(dp)
    for _ in range(4):
        v, g = fg(hp)
        dv, dg = fg_dev(dp)
        if path == "update":
            u, hs = opt.update(g, hs, hp, value=v, grad=g, value_and_grad_fn=fg)
            hp = npopt.apply_updates(hp, u)
            du, ds = opt.update(dg, ds, dp, value=dv, grad=dg, value_and_grad_fn=fg_dev)
            dp = npopt.apply_updates(dp, du)
        else:
            hp, hs = opt.step(hp, g, hs, value=v, grad=g, value_and_grad_fn=fg)
            dp, ds = opt.step(dp, dg, ds, value=dv, grad=dg, value_and_grad_fn=fg_dev)
    flat, _ = tree_flatten(ds)
    for leaf in flat:
        if np.ndim(leaf) > 0 and leaf is not ds[0].weights_memory:
            assert is_device_array(leaf), type(leaf)
    got = lp_ravel(tree_map(lambda x: x.copy_to_host(), dp))
    assert rel_err(got, lp_ravel(hp)) <= 1e-12


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------

def _one_step_args():
    params, fg = _small_problem()
    value, grad = fg(params)
    return params, fg, value, grad


@pytest.mark.parametrize("missing,match", [
    ("value", "value: expected the objective's value"),
    ("grad", "grad: expected the objective's gradient"),
    ("fn", "value_fn: expected the objective"),
])
@pytest.mark.parametrize("path", ["update", "step"])
def test_missing_arguments(missing, match, path):
    params, fg, value, grad = _one_step_args()
    opt = npopt.lbfgs()
    state = opt.init(params)
    kw = dict(value=value, grad=grad, value_and_grad_fn=fg)
    kw.pop("value_and_grad_fn" if missing == "fn" else missing)
    before = [np.copy(x) for x in tree_leaves((params, state))]
    with pytest.raises(TypeError, match=match):
        if path == "update":
            opt.update(grad, state, params, **kw)
        else:
            opt.step(params, grad, state, **kw)
    for a, b in zip(before, tree_leaves((params, state))):   # nothing touched
        np.testing.assert_array_equal(a, np.asarray(b))


def test_unconsumed_kwargs_and_bad_functions():
    params, fg, value, grad = _one_step_args()
    for ls in (npopt.scale_by_zoom_linesearch(5), npopt.scale_by_backtracking_linesearch(5)):
        state = ls.init(params)
        with pytest.raises(TypeError, match=r"not consumed by `value_fn`: \['data'\]"):
            ls.update(grad, state, params, value=value, grad=grad, value_and_grad_fn=fg,
                      data=1)
        with pytest.raises(TypeError, match="grad_fn: expected a callable"):
            ls.update(grad, state, params, value=value, grad=grad, value_fn=fg, grad_fn=3)
        with pytest.raises(TypeError, match="expected a ScaleBy"):
            ls.update(grad, npopt.adam(0.1).init(params), params, value=value, grad=grad,
                      value_and_grad_fn=fg)
        with pytest.raises(ValueError, match="params"):
            ls.update(grad, state, None, value=value, grad=grad, value_and_grad_fn=fg)
    opt = npopt.scale_by_lbfgs()
    with pytest.raises(TypeError, match="ScaleByLBFGSState"):
        opt.update(grad, npopt.adam(0.1).init(params), params)
    with pytest.raises(ValueError, match="params"):
        opt.update(grad, opt.init(params), None)
    with pytest.raises(TypeError, match="value_and_grad_fn: expected a real scalar"):
        ls = npopt.scale_by_zoom_linesearch(5)
        ls.update(grad, ls.init(params), params, value=value, grad=grad,
                  value_and_grad_fn=lambda p: (np.ones(3), fg(p)[1]))


@pytest.mark.parametrize("build,match", [
    (lambda: npopt.scale_by_lbfgs(memory_size=0), "memory_size: expected an integer >= 1"),
    (lambda: npopt.lbfgs(memory_size=2.5), "memory_size"),
    (lambda: npopt.lbfgs(scale_init_precond="yes"), "scale_init_precond"),
    (lambda: npopt.lbfgs(learning_rate=-1.0), "learning_rate"),
    (lambda: npopt.scale_by_zoom_linesearch(-1), "max_linesearch_steps"),
    (lambda: npopt.scale_by_zoom_linesearch(5, initial_guess_strategy="two"),
     "initial_guess_strategy"),
    (lambda: npopt.scale_by_zoom_linesearch(5, max_learning_rate=0.0), "max_learning_rate"),
    (lambda: npopt.scale_by_zoom_linesearch(5, curv_rtol=-1), "curv_rtol"),
    (lambda: npopt.scale_by_backtracking_linesearch(5, decrease_factor=0.0), "decrease_factor"),
    (lambda: npopt.scale_by_backtracking_linesearch(5, atol=np.nan), "atol"),
    (lambda: npopt.value_and_grad_from_state(3), "value_and_grad_fn"),
])
def test_bad_constructor_arguments(build, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build()


def test_value_and_grad_from_state_errors():
    params, fg, value, grad = _one_step_args()
    vg = npopt.value_and_grad_from_state(fg)
    with pytest.raises(ValueError, match="Value or gradient not found"):
        vg(params, state=npopt.adam(0.1).init(params))
    opt = npopt.chain(npopt.sgd(1.0), npopt.scale_by_backtracking_linesearch(5))
    with pytest.raises(ValueError, match="Value or gradient not found"):
        vg(params, state=opt.init(params))       # store_grad=False keeps no grad
    # the first call (value = inf) evaluates the function
    opt = npopt.lbfgs()
    v, g = vg(params, state=opt.init(params))
    assert v == value


def test_mixed_dtypes_keep_their_dtypes():
    """float32 and float64 leaves together: each keeps its dtype; the result
    is close to the all-float64 run."""
    params, fg = _small_problem()

    def fg_mixed(p):
        v, g = fg(tree_map(lambda x: x.astype(np.float64), p))
        return v, {"u": g["u"].astype(np.float32), "v": g["v"]}

    mixed = {"u": params["u"].astype(np.float32), "v": params["v"]}
    ref = {"u": mixed["u"].astype(np.float64), "v": params["v"]}
    out = []
    for p, f in ((mixed, fg_mixed), (ref, fg)):
        opt = npopt.lbfgs()
        state = opt.init(p)
        for _ in range(5):
            v, g = f(p)
            u, state = opt.update(g, state, p, value=v, grad=g, value_and_grad_fn=f)
            p = npopt.apply_updates(p, u)
        out.append(p)
    assert out[0]["u"].dtype == np.float32 and out[0]["v"].dtype == np.float64
    assert rel_err(lp_ravel(out[0]), lp_ravel(out[1])) < 1e-5
