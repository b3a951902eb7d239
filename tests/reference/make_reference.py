"""Regenerate the optax reference trajectories in data/optax/<case>.npz.

Needs jax, optax (0.2.8) and numpy; the tests that read the files do not.

    python tests/reference/make_reference.py              # all cases
    python tests/reference/make_reference.py adam_default lamb_sched

For every case of cases.CASES and every dtype in (float32, float64) this runs
``problem.STEPS`` jitted optax steps on the shared test problem (problem.py,
gradients computed in NumPy) with ``jax_enable_x64`` on, and stores

    sample_idx                     int64 (S,)  indices into the raveled params
    {dtype}/params_sampled         (C, S)      raveled params at sample_idx after
                                               k steps, k in problem.CHECKPOINTS
    {dtype}/updates_1_sampled      (S,)        first step's updates at sample_idx
    {dtype}/state_{i}              leaf i of the final optimizer state
                                               (jax.tree_util.tree_leaves order,
                                               original dtype: int32/bool/float);
                                               leaves of > 4096 elements: 512
                                               samples of the raveled leaf, at
    {dtype}/state_{i}_idx                      (see storage.py)
    meta                           0-d str     JSON, see below

``meta`` has case, expr, nan_steps, steps, checkpoints, dtypes, versions,
jit, x64, n_params, sample_size, params_leaves (key path + shape) and, per
dtype, ``state``: a list of {path, dtype, shape} for the state leaves
(``jax.tree_util.keystr`` paths), ``updates_dtype``, ``loss0``, ``loss_final``.
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
import cases as cases_mod  # noqa: E402
import problem  # noqa: E402
import storage  # noqa: E402

try:
    from importlib.metadata import version as _dist_version
    JAXOPT_VERSION = _dist_version("jaxopt")
except Exception:  # pragma: no cover - jaxopt is optional for this script
    JAXOPT_VERSION = None

OUT_DIR = os.path.join(HERE, "data", "optax")
DTYPES = ("float32", "float64")
N_W_SAMPLES = 512
DIVERGED = 1e6
ILL_CONDITIONED = 1e-5  # max |p32 - p64| / max |p64| above this: warn


def sample_indices():
    """All indices of the small leaves (b, extra) + 512 sorted indices of 'w'."""
    params0, _ = problem.make_problem(np.float64)
    leaves = problem.flatten(params0)  # b, extra[0], extra[1], w
    n_small = sum(x.size for x in leaves[:-1])
    n_w = leaves[-1].size
    rng = np.random.default_rng(0)
    w_idx = np.sort(rng.choice(n_w, size=N_W_SAMPLES, replace=False))
    return np.concatenate([np.arange(n_small), n_small + w_idx]).astype(np.int64)


def params_leaf_info():
    params0, _ = problem.make_problem(np.float64)
    flat, _ = jax.tree_util.tree_flatten_with_path(params0)
    return [dict(path=jax.tree_util.keystr(p), shape=list(np.shape(x))) for p, x in flat]


def to_numpy(tree):
    return jax.tree_util.tree_map(np.asarray, tree)


def run_case(name, case, dtype, sample_idx):
    expr = case["expr"]
    nan_steps = tuple(case.get("nan_steps", ()))
    params0, consts = problem.make_problem(np.dtype(dtype))
    opt = eval(expr, {"ox": optax, "np": np})
    params = jax.tree_util.tree_map(jnp.asarray, params0)
    state = opt.init(params)
    update = jax.jit(opt.update)
    apply = jax.jit(optax.apply_updates)

    with_value = bool(case.get("value", False))
    sampled = []
    updates_1 = None
    for t in range(problem.STEPS):
        g = problem.grads(to_numpy(params), consts, t, nan_steps)
        g = jax.tree_util.tree_map(jnp.asarray, g)
        kw = {"value": jnp.asarray(problem.loss(to_numpy(params), consts))} if with_value else {}
        updates, state = update(g, state, params, **kw)
        params = apply(params, updates)
        if t == 0:
            updates_1 = problem.ravel(to_numpy(updates))[sample_idx]
        if t + 1 in problem.CHECKPOINTS:
            sampled.append(problem.ravel(to_numpy(params))[sample_idx])

    final = to_numpy(params)
    flat_final = problem.ravel(final)
    assert flat_final.dtype == np.dtype(dtype), (name, dtype, flat_final.dtype)

    state_flat, _ = jax.tree_util.tree_flatten_with_path(state)
    arrays = {
        f"{dtype}/params_100": flat_final,
        f"{dtype}/params_sampled": np.stack(sampled),
        f"{dtype}/updates_1_sampled": updates_1,
    }
    state_meta = []
    for i, (path, leaf) in enumerate(state_flat):
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)   # add_noise's rng_key -> uint32 (2,)
        a = np.asarray(leaf)
        arrays[f"{dtype}/state_{i}"] = a
        state_meta.append(dict(path=jax.tree_util.keystr(path), dtype=str(a.dtype), shape=list(a.shape)))

    info = dict(
        state=state_meta,
        updates_dtype=str(updates_1.dtype),
        loss0=problem.loss(params0, consts),
        loss_final=problem.loss(final, consts),
    )
    problems = []
    if not np.all(np.isfinite(flat_final)):
        problems.append(f"{int(np.sum(~np.isfinite(flat_final)))} non-finite final params")
    elif np.max(np.abs(flat_final)) > DIVERGED:
        problems.append(f"diverged: max |p| = {np.max(np.abs(flat_final)):.3g}")
    return arrays, info, problems


def main(argv):
    names = argv or list(cases_mod.CASES)
    unknown = [n for n in names if n not in cases_mod.CASES]
    if unknown:
        raise SystemExit(f"unknown case(s): {unknown}")
    os.makedirs(OUT_DIR, exist_ok=True)
    sample_idx = sample_indices()
    leaf_info = params_leaf_info()
    warnings = []
    for name in names:
        case = cases_mod.CASES[name]
        t0 = time.time()
        arrays = {"sample_idx": sample_idx}
        meta = dict(
            case=name,
            expr=case["expr"],
            nan_steps=list(case.get("nan_steps", ())),
            value=bool(case.get("value", False)),
            steps=problem.STEPS,
            checkpoints=list(problem.CHECKPOINTS),
            dtypes=list(DTYPES),
            versions=dict(optax=optax.__version__, jax=jax.__version__, jaxopt=JAXOPT_VERSION,
                          numpy=np.__version__),
            jit=True,
            x64=True,
            n_params=int(sum(int(np.prod(x["shape"])) for x in leaf_info)),
            params_leaves=leaf_info,
            sample_size=int(sample_idx.size),
        )
        losses = []
        for dtype in DTYPES:
            a, info, problems = run_case(name, case, dtype, sample_idx)
            arrays.update(a)
            meta[dtype] = info
            losses.append(info["loss_final"])
            for p in problems:
                warnings.append(f"{name} [{dtype}]: {p}")
        # conditioning indicator: f32 vs f64 final params, relative to max |p|
        p32 = arrays["float32/params_100"].astype(np.float64)
        p64 = arrays["float64/params_100"]
        with np.errstate(invalid="ignore"):
            rel = float(np.max(np.abs(p32 - p64)) / np.max(np.abs(p64)))
        if not rel <= ILL_CONDITIONED:
            warnings.append(f"{name}: float32 and float64 final params differ by {rel:.1e} (relative to "
                            f"max |p|): the trajectory amplifies rounding, pick better-conditioned settings")
        arrays = storage.shrink(arrays)
        arrays["meta"] = np.array(json.dumps(meta))
        path = os.path.join(OUT_DIR, f"{name}.npz")
        np.savez_compressed(path, **arrays)
        size = os.path.getsize(path)
        print(f"{name:30s} loss0 {meta['float64']['loss0']:.6g}  final f32 {losses[0]:.6g}  "
              f"f64 {losses[1]:.6g}  f32~f64 {rel:.1e}  {size / 1024:.0f} KiB  ({time.time() - t0:.1f}s)",
              flush=True)
    total = sum(os.path.getsize(os.path.join(OUT_DIR, f)) for f in os.listdir(OUT_DIR) if f.endswith(".npz"))
    print(f"total data/optax: {total / 2**20:.2f} MiB")
    for w in warnings:
        print("WARNING:", w)
    return 1 if warnings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
