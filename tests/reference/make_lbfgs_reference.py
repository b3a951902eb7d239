"""Regenerate the optax L-BFGS / line-search reference trajectories in
data/lbfgs/<case>.npz.

Needs jax and optax 0.2.8; the tests that read the files (tests/test_lbfgs.py)
do not.

    python tests/reference/make_lbfgs_reference.py              # all cases
    python tests/reference/make_lbfgs_reference.py lbfgs_default

The objective is lbfgs_problem.py's (a zero-minimum, non-separable, smooth
convex function of problem.py's params pytree). optax differentiates its
``value_fn`` with JAX, so the NumPy ``value_and_grad`` is wrapped as a JAX
function by ``jax.pure_callback`` with a custom VJP: optax's line searches
then see the very values and gradients npopt's will see (bit for bit, for
bit-identical params) and any difference between the two comes from the
optimizer. The generator also checks the NumPy formulas against
``lbfgs_problem.value_jax`` and JAX's autodiff.

For every case and dtype, with ``jax_enable_x64`` on, as optax's docstring
example does (one jitted ``update`` and one jitted ``apply_updates`` call per
step)::

    value, grad = value_and_grad_from_state(f)(params, state=state)
    updates, state = update(grad, state, params, value=value, grad=grad, value_fn=f)
    params = apply_updates(params, updates)

(cases with ``fresh=True`` use ``jax.value_and_grad(f)(params)``: their
state keeps no value/grad to reuse).

How many steps are stored (``K``, per dtype)
--------------------------------------------
L-BFGS amplifies rounding: the trajectories of two correct implementations
whose dot products round differently (XLA's summation order cannot be
reproduced) drift apart, by a factor that grows with the number of steps
and depends on the case (line searches that interpolate, fixed step sizes,
float32). The generator measures that drift on optax itself: it reruns each
case with optax's ``tree.vdot`` and ``tree.norm`` summing in another order
(per leaf, the products reduced in reversed order by XLA's reduce instead
of its dot; the leaves added from the last): the same arithmetic except for
the order of the sums, which is exactly how npopt's sums differ from XLA's.
It stores the steps up to the last one where the two optax runs still
agree to ``AGREE[dtype]`` (half the test tolerance) and before
the gradient norm falls below ``GTOL[dtype]`` times its initial value
(convergence: beyond it the line search decides on rounding noise). At
most ``STEPS`` = 100. The measured drift is stored (``divergence``) and
printed.

What an npz holds (keys prefixed by the dtype, except sample_idx and meta)
-------------------------------------------------------------------------
``sample_idx`` (S,) indices into the raveled params (all of b and extra, 256
of w); ``K``; ``values`` (K,) the value passed to step t; per step of the
line search (zeros without one) ``learning_rate``, ``num_linesearch_steps``,
``decrease_error``, ``curvature_error`` (NaN where the search has none);
``checkpoints`` (C,) and ``params_sampled`` (C, S): params after k steps;
``params_final`` (N,) all params after K steps; ``updates_1_sampled`` (S,);
``state_{i}`` leaf i of the state after K steps (``jax.tree_util`` order),
whole if it has at most 1000 elements, else at the indices ``state_idx_{i}``
of its raveled form; ``divergence`` (STEPS,) the other-summation run's disagreement;
``meta`` (JSON): case, expr, fresh, K, convergence step, thresholds,
versions, per-dtype state spec (path, dtype, shape).

``interpolation.npz`` (written when no case is named, or alone with
``python make_lbfgs_reference.py interpolation``) holds random inputs of
the zoom's cubic and quadratic interpolations and jitted optax's outputs,
and (``zoom32/...``) the zoom's next trial point for float32 params with the
bounds weakly typed as in optax's loop (see ``zoom_point_table``).
"""
import json
import os
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lbfgs_problem as lp  # noqa: E402

OUT_DIR = os.path.join(HERE, "data", "lbfgs")
DTYPES = ("float32", "float64")
STEPS = 100
CHECKPOINTS = (1, 2, 5, 10, 20, 30, 50, 75, 100)
AGREE = {"float32": 5e-6, "float64": 5e-11}
GTOL = {"float32": 1e-5, "float64": 1e-10}
N_W_SAMPLES = 256
STATE_SAMPLES = 256
WHOLE_STATE_LEAF = 1000

# Settings: the defaults, memory size and scale_init_precond, a learning rate
# (schedule) without line search, backtracking, zoom with 'keep' and a step
# cap, and the two line searches alone after sgd (the zoom without the
# approximate decrease, backtracking with store_grad).
CASES = {
    "lbfgs_default": dict(expr="ox.lbfgs()"),
    "lbfgs_mem3_noscale": dict(expr="ox.lbfgs(memory_size=3, scale_init_precond=False)"),
    "lbfgs_sched_no_linesearch": dict(
        expr="ox.lbfgs(learning_rate=ox.schedules.linear_schedule(0.5, 1.0, 10), "
             "linesearch=None)", fresh=True),
    "lbfgs_backtracking": dict(
        expr="ox.lbfgs(memory_size=5, linesearch=ox.scale_by_backtracking_linesearch("
             "max_backtracking_steps=15, decrease_factor=0.5))", fresh=True),
    "lbfgs_zoom_keep": dict(
        expr="ox.lbfgs(memory_size=5, linesearch=ox.scale_by_zoom_linesearch("
             "max_linesearch_steps=15, max_learning_rate=0.8, initial_guess_strategy='keep'))"),
    "sgd_zoom": dict(
        expr="ox.chain(ox.sgd(learning_rate=1.0), ox.scale_by_zoom_linesearch("
             "max_linesearch_steps=15, curv_rtol=0.5, approx_dec_rtol=None, "
             "initial_guess_strategy='one'))"),
    # optax 0.2.8 cannot run this one at float32 under x64: store_grad's
    # jax.linear_transpose(...)(1.0) gets a float64 cotangent for a float32
    # output (TypeError). float64 only.
    "sgd_backtracking_store_grad": dict(
        expr="ox.chain(ox.sgd(learning_rate=1.0), ox.scale_by_backtracking_linesearch("
             "max_backtracking_steps=15, store_grad=True))", dtypes=("float64",)),
}


def jax_objective(consts):
    """lbfgs_problem.value_and_grad as a JAX function of the params (value only,
    with the NumPy gradient as its VJP)."""
    def np_vg(p):
        v, g = lp.value_and_grad(jax.tree_util.tree_map(np.asarray, p), consts)
        return np.asarray(v), g

    def shapes(p):
        dt = jax.tree_util.tree_leaves(p)[0].dtype
        return (jax.ShapeDtypeStruct((), dt),
                jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, dt), p))

    @jax.custom_vjp
    def f(p):
        return jax.pure_callback(lambda q: np_vg(q)[0], shapes(p)[0], p)

    def fwd(p):
        return jax.pure_callback(np_vg, shapes(p), p)

    def bwd(g, ct):
        return (jax.tree_util.tree_map(lambda x: ct * x, g),)

    f.defvjp(fwd, bwd)
    return f


def check_problem(dtype):
    """The NumPy objective against value_jax and JAX's autodiff."""
    params, consts = lp.make_problem(dtype)
    v, g = lp.value_and_grad(params, consts)
    jp = jax.tree_util.tree_map(jnp.asarray, params)
    jv, jg = jax.value_and_grad(lambda p: lp.value_jax(p, consts))(jp)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert abs(float(v) - float(jv)) <= tol * abs(float(jv)), (v, jv)
    for a, b in zip(lp.flatten(g), lp.flatten(jax.tree_util.tree_map(np.asarray, jg))):
        assert np.max(np.abs(a - b)) <= tol * max(np.max(np.abs(b)), 1.0), dtype


def sample_indices():
    params0, _ = lp.make_problem(np.float64)
    leaves = lp.flatten(params0)
    n_small = sum(x.size for x in leaves[:-1])
    rng = np.random.default_rng(0)
    w_idx = np.sort(rng.choice(leaves[-1].size, size=N_W_SAMPLES, replace=False))
    return np.concatenate([np.arange(n_small), n_small + w_idx]).astype(np.int64)


def gnorm(g):
    return float(np.sqrt(sum(np.sum(np.asarray(x, np.float64) ** 2) for x in lp.flatten(g))))


def leafwise_rel(a, b):
    """max over leaves of max|a - b| / max|b| (raveled params)."""
    out, off = 0.0, 0
    for x in lp.flatten(lp.make_problem(np.float64)[0]):
        n = x.size
        ref = np.abs(b[off:off + n]).max()
        out = max(out, float(np.abs(a[off:off + n] - b[off:off + n]).max() / max(ref, 1e-300)))
        off += n
    return out


def _alt_vdot(x, y):
    """optax.tree.vdot summed another way: per leaf, products reduced in
    reversed order (XLA's reduce, not its dot), leaves added from the last."""
    vdots = [jnp.sum((a * b).reshape(-1)[::-1])
             for a, b in zip(jax.tree_util.tree_leaves(x), jax.tree_util.tree_leaves(y))]
    total = 0
    for v in vdots[::-1]:
        total = total + v
    return total


def _alt_norm(tree, ord=None, squared=False):  # noqa: A002
    sq = _alt_vdot(tree, tree)
    return sq if squared else jnp.sqrt(sq)


class other_summation:
    """Context: optax's tree.vdot / tree.norm (used by scale_by_lbfgs and the
    line searches) sum in another order."""

    def __enter__(self):
        self.saved = optax.tree.vdot, optax.tree.norm
        optax.tree.vdot, optax.tree.norm = _alt_vdot, _alt_norm

    def __exit__(self, *exc):
        optax.tree.vdot, optax.tree.norm = self.saved


def run(case, dtype, alt=False, steps=STEPS, keep=None):
    """Runs ``steps`` steps; returns per-step records (and the state after
    ``keep`` steps). ``alt``: the same run with sums in another order."""
    if alt:
        with other_summation():
            return run(case, dtype, False, steps, keep)
    params, consts = lp.make_problem(dtype)
    f = jax_objective(consts)
    opt = eval(case["expr"], {"ox": optax, "np": np})
    params = jax.tree_util.tree_map(jnp.asarray, params)
    state = opt.init(params)
    if case.get("fresh"):
        vg = jax.jit(jax.value_and_grad(f))
        value_and_grad = lambda p, s: vg(p)  # noqa: E731
    else:
        vgs = jax.jit(lambda p, s: optax.value_and_grad_from_state(f)(p, state=s))
        value_and_grad = vgs
    update = jax.jit(lambda g, s, p, v: opt.update(g, s, p, value=v, grad=g, value_fn=f))
    apply = jax.jit(optax.apply_updates)
    rec = dict(values=[], gnorm=[], learning_rate=[], num_linesearch_steps=[],
               decrease_error=[], curvature_error=[], params=[])
    for t in range(steps):
        value, grad = value_and_grad(params, state)
        updates, state = update(grad, state, params, value)
        params = apply(params, updates)
        rec["values"].append(float(value))
        rec["gnorm"].append(gnorm(jax.tree_util.tree_map(np.asarray, grad)))
        ls = state[-1]
        info = getattr(ls, "info", None)
        rec["learning_rate"].append(float(ls.learning_rate) if info is not None else np.nan)
        rec["num_linesearch_steps"].append(int(info.num_linesearch_steps) if info else 0)
        rec["decrease_error"].append(float(info.decrease_error) if info else np.nan)
        rec["curvature_error"].append(float(getattr(info, "curvature_error", np.nan))
                                      if info else np.nan)
        flat = lp.ravel(jax.tree_util.tree_map(np.asarray, params))
        rec["params"].append(flat)
        if t == 0:
            rec["updates_1"] = lp.ravel(jax.tree_util.tree_map(np.asarray, updates))
        if keep is not None and t + 1 == keep:
            rec["state"] = jax.tree_util.tree_flatten_with_path(state)[0]
    return rec


def horizon(ref, pert, dtype):
    """(K, divergence, convergence step): K is the last step before
    convergence at which ``pert`` (the run summing another way) still agrees
    with ``ref`` to AGREE[dtype], at most STEPS."""
    div = np.array([leafwise_rel(a, b) for a, b in zip(pert["params"], ref["params"])])
    g0 = ref["gnorm"][0]
    conv = next((t for t, g in enumerate(ref["gnorm"]) if g <= GTOL[dtype] * g0), STEPS)
    bad = np.nonzero(div > AGREE[dtype])[0]
    k = min(conv, int(bad[0]) if bad.size else STEPS, STEPS)
    return k, div, conv


def interpolation_table(n=3000):
    """Inputs and jitted optax outputs of the zoom's cubic and quadratic
    interpolations (``linesearch._cubicmin``/``_quadmin``): the bracket ends
    in float64, the values and slopes in float64 or, as in float32 runs,
    float32. For tests/test_lbfgs.py::test_interpolation_matches_xla."""
    from optax._src import linesearch as ols
    cubic, quad = jax.jit(ols._cubicmin), jax.jit(ols._quadmin)
    rng = np.random.default_rng(4)
    out = {}
    for vdt in ("float64", "float32"):
        ends = np.stack([rng.uniform(0, 1, n), rng.uniform(0.5, 4, n), rng.uniform(0.1, 4, n)], 1)
        vals = np.stack([rng.uniform(0, 10, n), -rng.uniform(0.1, 5, n), rng.uniform(0, 10, n),
                         rng.uniform(0, 10, n)], 1).astype(vdt)
        c = [float(cubic(a, fa, fpa, b, fb, cc, fc)) for (a, b, cc), (fa, fpa, fb, fc) in
             zip(ends, [tuple(jnp.asarray(x) for x in row) for row in vals])]
        q = [float(quad(a, fa, fpa, b, fb)) for (a, b, _), (fa, fpa, fb, _) in
             zip(ends, [tuple(jnp.asarray(x) for x in row) for row in vals])]
        out[f"{vdt}/ends"], out[f"{vdt}/values"] = ends, vals
        out[f"{vdt}/cubic"], out[f"{vdt}/quad"] = np.asarray(c), np.asarray(q)
    out.update(zoom_point_table())
    np.savez_compressed(os.path.join(OUT_DIR, "interpolation.npz"), **out)


def zoom_point_table(n=4000):
    """The zoom's next trial point as jitted optax computes it inside its
    ``while_loop`` for float32 params: the bounds ``low, high, cubic_ref``
    are *weakly typed* float64 there (``jnp.asarray(0.0)`` in the loop
    carry), so they are passed as Python floats (weak under ``jax.jit``); the
    values and slopes are float32. The candidates and the choice among them
    are ``_zoom_into_interval``'s lines (optax 0.2.8). Keys ``zoom32/...``:
    ``bounds`` (n, 3) low, high, cubic_ref; ``values`` (n, 4) float32
    value_low, slope_low, value_high, value_cubic_ref; ``middle`` (n,)
    float64 and ``rule`` (n,) 0 cubic, 1 quadratic, 2 bisection."""
    from optax._src import linesearch as ols

    def middle_fn(low, value_low, slope_low, high, value_high, cubic_ref, value_cubic_ref):
        delta = jnp.abs(high - low)
        left = jnp.minimum(high, low)
        right = jnp.maximum(high, low)
        cubic_chk = 0.2 * delta
        quad_chk = 0.1 * delta
        mc = ols._cubicmin(low, value_low, slope_low, high, value_high, cubic_ref,
                           value_cubic_ref)
        use_cubic = (mc > left + cubic_chk) & (mc < right - cubic_chk)
        mq = ols._quadmin(low, value_low, slope_low, high, value_high)
        use_quad = (~use_cubic) & (mq > left + quad_chk) & (mq < right - quad_chk)
        mb = (low + high) / 2.0
        use_bisection = (~use_cubic) & (~use_quad)
        middle = jnp.where(use_cubic, mc, cubic_ref)
        middle = jnp.where(use_quad, mq, middle)
        middle = jnp.where(use_bisection, mb, middle)
        rule = jnp.where(use_cubic, 0, jnp.where(use_quad, 1, 2))
        return middle, rule

    fn = jax.jit(middle_fn)
    rng = np.random.default_rng(5)
    bounds = np.stack([rng.uniform(0, 1, n), rng.uniform(0.5, 4, n), rng.uniform(0.1, 4, n)], 1)
    # half of the bounds float32-representable (set by the interval search)
    bounds[: n // 2] = bounds[: n // 2].astype(np.float32)
    vals = np.stack([rng.uniform(0, 10, n), -rng.uniform(0.1, 5, n), rng.uniform(0, 10, n),
                     rng.uniform(0, 10, n)], 1).astype(np.float32)
    mids, rules = [], []
    for (lo, hi, cr), (vl, sl, vh, vc) in zip(bounds, vals):
        m, r = fn(float(lo), jnp.float32(vl), jnp.float32(sl), float(hi), jnp.float32(vh),
                  float(cr), jnp.float32(vc))
        assert m.dtype == jnp.float64, m.dtype
        mids.append(float(m))
        rules.append(int(r))
    return {"zoom32/bounds": bounds, "zoom32/values": vals,
            "zoom32/middle": np.asarray(mids), "zoom32/rule": np.asarray(rules, np.int64)}


def main(argv):
    if argv == ["interpolation"]:
        os.makedirs(OUT_DIR, exist_ok=True)
        interpolation_table()
        return 0
    names = argv or list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        raise SystemExit(f"unknown case(s): {unknown}")
    for dt in (np.float32, np.float64):
        check_problem(dt)
    os.makedirs(OUT_DIR, exist_ok=True)
    if not argv:
        interpolation_table()
    sidx = sample_indices()
    for name in names:
        case = CASES[name]
        t0 = time.time()
        arrays = {"sample_idx": sidx}
        meta = dict(case=name, expr=case["expr"], fresh=bool(case.get("fresh", False)),
                    dtypes=list(case.get("dtypes", DTYPES)), max_steps=STEPS, agree=AGREE,
                    gtol=GTOL, jit=True, x64=True,
                    versions=dict(optax=optax.__version__, jax=jax.__version__,
                                  numpy=np.__version__))
        line = []
        for dtype in case.get("dtypes", DTYPES):
            ref = run(case, np.dtype(dtype))
            pert = run(case, np.dtype(dtype), alt=True)
            k, div, conv = horizon(ref, pert, dtype)
            if k == 0:
                raise SystemExit(f"{name} [{dtype}]: no step is reproducible")
            state = run(case, np.dtype(dtype), steps=k, keep=k)["state"]
            p = f"{dtype}/"
            arrays[p + "K"] = np.int64(k)
            for key in ("values", "learning_rate", "decrease_error", "curvature_error"):
                arrays[p + key] = np.asarray(ref[key][:k], np.float64)
            arrays[p + "num_linesearch_steps"] = np.asarray(ref["num_linesearch_steps"][:k],
                                                            np.int64)
            cps = [c for c in CHECKPOINTS if c <= k] + ([k] if k not in CHECKPOINTS else [])
            arrays[p + "checkpoints"] = np.asarray(cps, np.int64)
            arrays[p + "params_sampled"] = np.stack([ref["params"][c - 1][sidx] for c in cps])
            arrays[p + "params_final"] = ref["params"][k - 1]
            arrays[p + "updates_1_sampled"] = ref["updates_1"][sidx]
            arrays[p + "divergence"] = div
            spec = []
            rng = np.random.default_rng(2)
            for i, (path, leaf) in enumerate(state):
                a = np.asarray(leaf)
                spec.append(dict(path=jax.tree_util.keystr(path), dtype=str(a.dtype),
                                 shape=list(a.shape)))
                if a.size <= WHOLE_STATE_LEAF:
                    arrays[p + f"state_{i}"] = a
                else:
                    idx = np.sort(rng.choice(a.size, STATE_SAMPLES, replace=False))
                    arrays[p + f"state_idx_{i}"] = idx.astype(np.int64)
                    arrays[p + f"state_{i}"] = a.reshape(-1)[idx]
            meta[dtype] = dict(K=k, convergence_step=conv, state=spec,
                               value0=ref["values"][0], value_K=ref["values"][k - 1])
            line.append(f"{dtype}: K={k:3d} (converged {conv:3d}, divergence at K "
                        f"{div[k - 1]:.1e}, at 100 {div[-1]:.1e}) f {ref['values'][0]:.3g} -> "
                        f"{ref['values'][k - 1]:.3g}")
        arrays["meta"] = np.array(json.dumps(meta))
        path = os.path.join(OUT_DIR, f"{name}.npz")
        np.savez_compressed(path, **arrays)
        print(f"{name:28s} {os.path.getsize(path) / 1024:4.0f} KiB {time.time() - t0:5.1f}s  "
              + "  ".join(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
