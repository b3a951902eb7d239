"""Regenerate data/optax/narrow.npz: optax 0.2.8 trajectories on float16 and
bfloat16 params, and on float32 params with a 16-bit state (adam's
``mu_dtype``, sgd's ``accumulator_dtype``) (narrow_problem.py), replayed by
tests/test_narrow_reference.py.

Needs jax and optax (0.2.8); the test that reads the file does not.

    python tests/reference/make_narrow_reference.py

For every case of narrow_problem.CASES and each of its params dtypes, with
``jax_enable_x64`` on: ``opt = eval(expr)`` with ``ox = optax``, then
``narrow_problem.STEPS`` (50) steps of jitted ``opt.update`` and
``optax.apply_updates``, the gradients computed in NumPy (float32, rounded
once to the params' dtype) from the current params (narrow_problem.grads).
Stored, for each case and dtype (the key prefix is ``{case}/{dtype}/``):

    params        dtype (STEPS, 36)  raveled params after every step (row
                  k - 1: after k steps): the checkpoints of the free-running
                  replay, and the params (hence gradients) that the test's
                  teacher-forced replay feeds npopt at every step; stored
                  as bit patterns, each row minus the previous one
                  (narrow_problem.pack_steps / unpack_steps: lossless, and
                  it compresses)
    updates_1     (36,)          the first step's updates (raveled)
    state_{i}     leaf i of the final state (jax.tree_util.tree_leaves
                  order), its own dtype and shape

bfloat16 arrays are stored as their uint16 bits (np.load cannot give
ml_dtypes' bfloat16 back), the dtype in meta: narrow_problem.from_stored.

``rounding/{dtype}/trace`` and ``rounding/{dtype}/nu``: optax.trace(0.9)'s
trace and optax.scale_by_rms(0.999)'s nu after 50 updates with the same
gradient (the first gradient's 'w' leaf), which show how optax's XLA
rounds 16-bit arithmetic (after every operation);
and ``meta`` (0-d str, JSON): steps, checkpoints, versions, jit, x64,
params_leaves (key path and shape) and ``cases[case]`` = {expr, dtypes, and
per dtype: state (a list of {path, dtype, shape} for the state leaves),
updates_dtype, params_dtype, loss0, loss_final}.

Prints one line per case and warns (exit status 1) when a case's loss does
not decrease or its params are non-finite.
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
import narrow_problem as nb  # noqa: E402

OUT = os.path.join(HERE, "data", "optax", "narrow.npz")


def to_numpy(tree):
    return jax.tree_util.tree_map(np.asarray, tree)


def run_case(name, dtype):
    params0, consts = nb.make_problem(dtype)
    opt = nb.build(name, optax)
    params = jax.tree_util.tree_map(jnp.asarray, params0)
    state = opt.init(params)
    update = jax.jit(opt.update)
    apply = jax.jit(optax.apply_updates)
    snaps, updates_1 = [], None
    for t in range(nb.STEPS):
        g = nb.grads(to_numpy(params), consts, t)
        updates, state = update(jax.tree_util.tree_map(jnp.asarray, g), state, params)
        params = apply(params, updates)
        if t == 0:
            updates_1 = nb.ravel(to_numpy(updates))
        snaps.append(nb.ravel(to_numpy(params)))
    final = to_numpy(params)
    pre = f"{name}/{dtype}/"
    arrays = {pre + "params": nb.pack_steps(np.stack(snaps)), pre + "updates_1": nb.to_stored(updates_1)}
    state_meta = []
    for i, (path, leaf) in enumerate(jax.tree_util.tree_flatten_with_path(state)[0]):
        a = np.asarray(leaf)
        arrays[pre + f"state_{i}"] = nb.to_stored(a)
        state_meta.append(dict(path=jax.tree_util.keystr(path), dtype=str(a.dtype), shape=list(a.shape)))
    info = dict(state=state_meta, updates_dtype=str(updates_1.dtype), params_dtype=str(nb.ravel(final).dtype),
                loss0=nb.loss(params0, consts), loss_final=nb.loss(final, consts))
    return arrays, info, snaps


def main():
    arrays, warnings, snaps_of = {}, [], {}
    meta = dict(
        steps=nb.STEPS, checkpoints=list(nb.CHECKPOINTS),
        versions=dict(optax=optax.__version__, jax=jax.__version__, numpy=np.__version__),
        jit=True, x64=True,
        params_leaves=[dict(path=f"['{k}']", shape=list(nb.SHAPES[k])) for k in nb.KEYS],
        cases={})
    for name in nb.CASES:
        t0 = time.time()
        cmeta = dict(expr=nb.CASES[name][0], dtypes=list(nb.dtypes_of(name)))
        for dtype in nb.dtypes_of(name):
            a, info, snaps_of[name, dtype] = run_case(name, dtype)
            arrays.update(a)
            cmeta[dtype] = info
            rows = nb.unpack_steps(a[f"{name}/{dtype}/params"], info["params_dtype"])
            assert np.array_equal(rows.view(np.uint8), np.stack(snaps_of[name, dtype]).view(np.uint8))
            final = rows[-1].astype(np.float64)
            if not np.all(np.isfinite(final)):
                warnings.append(f"{name} [{dtype}]: non-finite final params")
            if not info["loss_final"] < info["loss0"]:
                warnings.append(f"{name} [{dtype}]: loss {info['loss0']:.4g} -> {info['loss_final']:.4g}")
        meta["cases"][name] = cmeta
        line = "  ".join(f"{d}: {cmeta[d]['loss0']:.4g} -> {cmeta[d]['loss_final']:.4g}"
                         for d in nb.dtypes_of(name))
        d0 = nb.dtypes_of(name)[0]
        print(f"{name:24s} {line}  state {[(s['path'], s['dtype']) for s in cmeta[d0]['state']]}  "
              f"({time.time() - t0:.1f}s)", flush=True)
    # optax's 16-bit arithmetic on its own: trace(0.9) and scale_by_rms(0.999)
    # 50 times on one constant gradient (the first gradient's 'w' leaf)
    for dtype in nb.NARROW_DTYPES:
        params0, consts = nb.make_problem(dtype)
        g = jnp.asarray(nb.grads(params0, consts, 0)["w"])
        for field, opt in (("trace", optax.trace(0.9)), ("nu", optax.scale_by_rms(0.999))):
            state, update = opt.init(g), jax.jit(opt.update)
            for _ in range(nb.STEPS):
                _, state = update(g, state, g)
            arrays[f"rounding/{dtype}/{field}"] = nb.to_stored(np.asarray(getattr(state, field)))
    arrays["meta"] = np.array(json.dumps(meta))
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(f"{OUT}: {os.path.getsize(OUT) / 1024:.1f} KiB, {len(nb.CASES)} cases")
    for w in warnings:
        print("WARNING:", w)
    return 1 if warnings else 0


if __name__ == "__main__":
    sys.exit(main())
