"""Reference data for optax.lookahead and optax.microbatching
(data/optax/wrappers2.npz), replayed by tests/test_wrappers2.py.

    /work/refenv/bin/python tests/reference/make_wrappers2_reference.py

Lookahead (cases in wrappers2_problem.LOOKAHEAD_CASES): ``problem.STEPS``
jitted steps on problem.py's params as ``LookaheadParams.init_synced``, the
gradient at ``params.fast``; stored per case and dtype: the fast and slow
params at problem.CHECKPOINTS (at make_reference's sample indices), the
first updates (fast and slow), and the final state's leaves (sampled as
storage.py does, with their keystr paths, dtypes and shapes in ``meta``).

Microbatching (wrappers2_problem.microbatch_cases): the leaves of each
case's result, both dtypes.
"""
import json
import os
import sys

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_reference  # noqa: E402
import problem  # noqa: E402
import storage  # noqa: E402
import wrappers2_problem as wp  # noqa: E402

OUT = os.path.join(HERE, "data", "optax", "wrappers2.npz")
DTYPES = ("float32", "float64")


def to_numpy(tree):
    return jax.tree_util.tree_map(np.asarray, tree)


def run_lookahead(name, expr, dtype, idx, arrays, meta):
    params0, consts = problem.make_problem(np.dtype(dtype))
    opt = wp.build(expr, optax)
    params = optax.LookaheadParams.init_synced(jax.tree_util.tree_map(jnp.asarray, params0))
    state = opt.init(params)
    update = jax.jit(opt.update)
    apply = jax.jit(optax.apply_updates)
    fast, slow = [], []
    for t in range(problem.STEPS):
        g = jax.tree_util.tree_map(jnp.asarray, problem.grads(to_numpy(params.fast), consts, t))
        updates, state = update(g, state, params)
        params = apply(params, updates)
        if t == 0:
            arrays[f"{name}/{dtype}/updates_1_fast"] = problem.ravel(to_numpy(updates.fast))[idx]
            arrays[f"{name}/{dtype}/updates_1_slow"] = problem.ravel(to_numpy(updates.slow))[idx]
        if t + 1 in problem.CHECKPOINTS:
            fast.append(problem.ravel(to_numpy(params.fast))[idx])
            slow.append(problem.ravel(to_numpy(params.slow))[idx])
    arrays[f"{name}/{dtype}/fast"] = np.stack(fast)
    arrays[f"{name}/{dtype}/slow"] = np.stack(slow)
    assert arrays[f"{name}/{dtype}/fast"].dtype == np.dtype(dtype)
    state_meta = []
    for i, (path, leaf) in enumerate(jax.tree_util.tree_flatten_with_path(state)[0]):
        a = np.asarray(leaf)
        arrays[f"{name}/{dtype}/state_{i}"] = a
        state_meta.append(dict(path=jax.tree_util.keystr(path), dtype=str(a.dtype),
                               shape=list(a.shape)))
    meta.setdefault(name, {"expr": expr})[dtype] = dict(
        state=state_meta, loss_final_fast=problem.loss(to_numpy(params.fast), consts),
        loss_final_slow=problem.loss(to_numpy(params.slow), consts))
    return problem.loss(to_numpy(params.slow), consts)


def shrink(arrays):
    out = {}
    for key, a in arrays.items():
        last = key.rsplit("/", 1)[-1]
        if last.startswith("state_") and last[6:].isdigit() and np.size(a) > storage.BIG:
            ix = storage.state_sample_indices(np.size(a))
            out[key] = np.asarray(a).reshape(-1)[ix]
            out[key + "_idx"] = ix
        else:
            out[key] = a
    return out


def _signature(f):
    import inspect
    out = []
    for p in inspect.signature(f).parameters.values():
        d = None if p.default is inspect.Parameter.empty else repr(p.default)
        out.append([p.name, p.kind.name, d])
    return out


def api_meta():
    """optax's state classes (fields) and functions (parameters: name, kind,
    default repr) of this family."""
    mb = optax.microbatching
    states = {n: list(getattr(optax, n)._fields) for n in wp.STATE_CLASSES}
    funcs = {n: _signature(getattr(optax, n)) for n in wp.FUNCTIONS}
    funcs.update({f"microbatching.{n}": _signature(getattr(mb, n)) for n in wp.MB_FUNCTIONS})
    funcs["tree.map_params"] = _signature(optax.tree.map_params)
    funcs["transforms.ConditionFn.__call__"] = _signature(optax.transforms.ConditionFn.__call__)
    funcs["LookaheadParams.init_synced"] = _signature(optax.LookaheadParams.init_synced)
    return dict(states=states, functions=funcs,
                accumulation_types=[t.name for t in mb.AccumulationType],
                accumulator_fields=[f.name for f in __import__("dataclasses").fields(
                    mb.Accumulator)])


def tree_map_params_meta():
    """For each optimizer of wp.TREE_MAP_PARAMS_CASES: the state's leaves
    (keystr paths) after tree_map_params marks the params-like leaves 'P' (or
    'M' for a MaskedNode, made a leaf by is_leaf) + the label (the leaf's
    shape) passed in ``rest``, the other leaves 'N'."""
    out = {}
    params0, _ = problem.make_problem(np.float64)
    params = jax.tree_util.tree_map(jnp.asarray, params0)
    def masked_node(v):
        return isinstance(v, optax.MaskedNode)

    def mark(p, lab):                  # 'M' for a masked-out leaf (is_leaf), 'P' otherwise
        return ("M" if masked_node(p) else "P") + lab

    for name, expr in wp.TREE_MAP_PARAMS_CASES.items():
        opt = wp.build(expr, optax)
        state = opt.init(params)
        labels = jax.tree_util.tree_map(lambda x: f"L{np.shape(x)}", params0)
        marked = optax.tree_map_params(opt, mark, state, labels, is_leaf=masked_node,
                                       transform_non_params=lambda x: "N")
        flat = jax.tree_util.tree_flatten_with_path(marked)[0]
        out[name] = [[jax.tree_util.keystr(p), v] for p, v in flat]
    return out


def main():
    idx = make_reference.sample_indices()
    arrays = {"sample_idx": idx}
    meta = dict(versions=dict(optax=optax.__version__, jax=jax.__version__,
                              numpy=np.__version__),
                steps=problem.STEPS, checkpoints=list(problem.CHECKPOINTS), x64=True, jit=True,
                lookahead={}, microbatch={})
    for name, expr in wp.LOOKAHEAD_CASES.items():
        losses = [run_lookahead(name, expr, dt, idx, arrays, meta["lookahead"]) for dt in DTYPES]
        a32 = arrays[f"{name}/float32/slow"][-1].astype(np.float64)
        a64 = arrays[f"{name}/float64/slow"][-1]
        rel = float(np.max(np.abs(a32 - a64)) / np.max(np.abs(a64)))
        print(f"{name:30s} final slow loss f32 {losses[0]:.6g} f64 {losses[1]:.6g}  "
              f"f32~f64 {rel:.1e}")
        assert rel < 1e-5, name
    for dtype in DTYPES:
        data = {k: jnp.asarray(v) for k, v in wp.batch_data(np.dtype(dtype)).items()}
        for name, fn in wp.microbatch_cases(optax, jnp).items():
            out = jax.jit(fn)(data)
            leaves = jax.tree_util.tree_flatten_with_path(out)[0]
            meta["microbatch"].setdefault(name, {})[dtype] = [
                dict(path=jax.tree_util.keystr(p), dtype=str(np.asarray(x).dtype),
                     shape=list(np.shape(x))) for p, x in leaves]
            for i, (_, x) in enumerate(leaves):
                arrays[f"{name}/{dtype}/out_{i}"] = np.asarray(x)
    meta["api"] = api_meta()
    meta["tree_map_params"] = tree_map_params_meta()
    arrays = shrink(arrays)
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez_compressed(OUT, **arrays)
    print(f"{OUT}: {os.path.getsize(OUT) / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
