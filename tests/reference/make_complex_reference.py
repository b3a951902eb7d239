"""Regenerate data/optax/complex.npz: optax 0.2.8 trajectories on COMPLEX
params (complex_problem.py), replayed by tests/test_complex_reference.py.

Needs jax and optax (0.2.8); the test that reads the file does not.

    python tests/reference/make_complex_reference.py

For every case of complex_problem.CASES and every dtype in (complex64,
complex128), with ``jax_enable_x64`` on: ``opt = eval(expr)`` with
``ox = optax``, then ``complex_problem.STEPS`` (50) steps of jitted
``opt.update`` and ``optax.apply_updates``, the gradients computed in NumPy
from the current params (complex_problem.grads).  Stored, for each case and
dtype (the key prefix is ``{case}/{dtype}/``):

    params        dtype (C, 36)  raveled params after k steps, k in CHECKPOINTS
    updates_1     (36,)          the first step's updates (raveled)
    state_{i}     leaf i of the final state (jax.tree_util.tree_leaves
                  order), its own dtype and shape

and ``meta`` (0-d str, JSON): steps, checkpoints, dtypes, versions, jit,
x64, params_leaves (key path and shape) and ``cases[case]`` = {expr, and per
dtype: state (a list of {path, dtype, shape, imag_zero} for the state leaves,
``imag_zero``: a complex leaf's imaginary part is exactly 0 everywhere),
updates_dtype, loss0, loss_final}.

Prints one line per case (losses per dtype, the complex64/complex128
disagreement of the final params) and warns (exit status 1) when a case's
loss does not decrease, its params are non-finite or complex64 and
complex128 disagree by more than 1e-5 (relative to max |p|).
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
import complex_problem as cp  # noqa: E402

OUT = os.path.join(HERE, "data", "optax", "complex.npz")
ILL_CONDITIONED = 1e-5


def to_numpy(tree):
    return jax.tree_util.tree_map(np.asarray, tree)


def run_case(name, dtype):
    params0, consts = cp.make_problem(dtype)
    opt = cp.build(name, optax)
    params = jax.tree_util.tree_map(jnp.asarray, params0)
    state = opt.init(params)
    update = jax.jit(opt.update)
    apply = jax.jit(optax.apply_updates)
    snaps, updates_1 = [], None
    for t in range(cp.STEPS):
        g = cp.grads(to_numpy(params), consts, t)
        updates, state = update(jax.tree_util.tree_map(jnp.asarray, g), state, params)
        params = apply(params, updates)
        if t == 0:
            updates_1 = cp.ravel(to_numpy(updates))
        if t + 1 in cp.CHECKPOINTS:
            snaps.append(cp.ravel(to_numpy(params)))
    final = to_numpy(params)
    assert cp.ravel(final).dtype == np.dtype(dtype), (name, dtype, cp.ravel(final).dtype)
    pre = f"{name}/{dtype}/"
    arrays = {pre + "params": np.stack(snaps), pre + "updates_1": updates_1}
    state_meta = []
    for i, (path, leaf) in enumerate(jax.tree_util.tree_flatten_with_path(state)[0]):
        a = np.asarray(leaf)
        arrays[pre + f"state_{i}"] = a
        state_meta.append(dict(path=jax.tree_util.keystr(path), dtype=str(a.dtype), shape=list(a.shape),
                               imag_zero=bool(a.dtype.kind == "c" and np.all(a.imag == 0))))
    info = dict(state=state_meta, updates_dtype=str(updates_1.dtype),
                loss0=cp.loss(params0, consts), loss_final=cp.loss(final, consts))
    return arrays, info


def main():
    arrays, warnings = {}, []
    meta = dict(
        steps=cp.STEPS, checkpoints=list(cp.CHECKPOINTS), dtypes=list(cp.COMPLEX_DTYPES),
        versions=dict(optax=optax.__version__, jax=jax.__version__, numpy=np.__version__),
        jit=True, x64=True,
        params_leaves=[dict(path=f"['{k}']", shape=list(cp.SHAPES[k])) for k in cp.KEYS],
        cases={})
    for name in cp.CASES:
        t0 = time.time()
        cmeta = dict(expr=cp.CASES[name])
        for dtype in cp.COMPLEX_DTYPES:
            a, info = run_case(name, dtype)
            arrays.update(a)
            cmeta[dtype] = info
            final = a[f"{name}/{dtype}/params"][-1]
            if not np.all(np.isfinite(final)):
                warnings.append(f"{name} [{dtype}]: non-finite final params")
            if not info["loss_final"] < info["loss0"]:
                warnings.append(f"{name} [{dtype}]: loss {info['loss0']:.4g} -> {info['loss_final']:.4g}")
        p64 = arrays[f"{name}/complex64/params"][-1].astype(np.complex128)
        p128 = arrays[f"{name}/complex128/params"][-1]
        rel = float(np.max(np.abs(p64 - p128)) / np.max(np.abs(p128)))
        if not rel <= ILL_CONDITIONED:
            warnings.append(f"{name}: complex64 and complex128 final params differ by {rel:.1e}")
        meta["cases"][name] = cmeta
        c = cmeta["complex128"]
        print(f"{name:24s} loss0 {c['loss0']:.5g}  final c64 {cmeta['complex64']['loss_final']:.5g}  "
              f"c128 {c['loss_final']:.5g}  c64~c128 {rel:.1e}  "
              f"state {[(s['path'], s['dtype']) for s in c['state']]}  ({time.time() - t0:.1f}s)",
              flush=True)
    arrays["meta"] = np.array(json.dumps(meta))
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(f"{OUT}: {os.path.getsize(OUT) / 1024:.1f} KiB, {len(cp.CASES)} cases")
    for w in warnings:
        print("WARNING:", w)
    return 1 if warnings else 0


if __name__ == "__main__":
    sys.exit(main())
