"""Generate tests/reference/data/optax/aggregating.npz from optax 0.2.8's
``optax.experimental.aggregating``.

Regenerate (needs jax and optax==0.2.8)::

    python tests/reference/make_aggregating_reference.py

With ``jax_enable_x64`` on, for every case in ``CASES`` and dtype in
(float32, float64): ``opt = eval(expr)`` with ``ag`` = optax's
``aggregating`` module and ``ox`` = optax, ``state = opt.init(params)``,
then ``STEPS`` times ``updates, state = opt.update(grads(t), state,
params)``, op by op (not jitted: jitting changes no number here beyond
rounding, see the printed ``jit/eager`` column, but turns Python-int
outputs into arrays). ``grads(t)`` lays out ``inputs[t]`` (``BATCH``
per-element rows of the 8 params' numbers) as the case's ``layout`` says
(``grads`` below; the tests call it too); the params stay fixed.

The npz holds, per ``{case}/{dtype}``:

* ``updates_{i}``: leaf ``i`` of the updates (leaf order of JAX, as
  npopt's), stacked over the steps;
* ``state_{i}``: leaf ``i`` of the final state;
* ``updates_struct``, ``init_struct``, ``state_struct``: ``describe`` of the
  last updates, the initial and the final state (types, field names, dtypes
  and shapes of every node);
* ``unbiased_{i}`` (cases with ``unbiased=True``): the leaves of
  ``get_unbiased_mean_and_variance_ema(state)`` (mean leaves, then variance
  leaves) after each step, NaN where ``unbiased_valid`` (per step) is False
  (count 0: no update reached the EMA yet);

plus ``inputs`` and ``params`` (float64) and ``meta``.
"""
import os

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "optax",
                   "aggregating.npz")
STEPS = 9
BATCH = 4
DTYPES = ("float32", "float64")

# expressions evaluated with ag = the aggregating module and ox = optax (here)
# or npopt (in the tests); layout: how the per-element gradients are laid out
CASES = {
    "avg_acc3_adam": dict(
        expr="ag.process(ox.identity(), ag.average_incrementally_updates(0, 3), "
             "ox.adam(1e-2))", layout="axis0"),
    "avg_acc1_momentum": dict(
        expr="ag.process(ox.identity(), ag.average_incrementally_updates(0, 1), "
             "ox.sgd(0.1, momentum=0.9))", layout="axis0"),
    "avg_tuple_acc2_adam": dict(
        expr="ag.process(ox.identity(), ag.average_incrementally_updates((0, 1), 2), "
             "ox.adam(1e-2))", layout="tuple01"),
    "acc_none3_adam": dict(
        expr="ag.process(ox.identity(), ag.average_incrementally_updates(None, 3), "
             "ox.adam(1e-2))", layout="mean"),
    "accumulate3": dict(expr="ag.accumulate_avg_updates(3)", layout="mean"),
    "average_axis1": dict(expr="ag.average_per_element_updates(1)", layout="axis1"),
    "clip_average_adam": dict(
        expr="ag.process(ox.clip(1.0), ag.average_per_element_updates(0), ox.adam(1e-2))",
        layout="axis0"),
    "sum_sq_acc1": dict(expr="ag.get_per_element_mean_and_sum_sq_diff_grads(0, 1)",
                        layout="axis0"),
    "sum_sq_acc3": dict(expr="ag.get_per_element_mean_and_sum_sq_diff_grads(0, 3)",
                        layout="axis0"),
    "sum_sq_tuple_acc3": dict(
        expr="ag.get_per_element_mean_and_sum_sq_diff_grads((0, 1), 3)", layout="tuple01"),
    "mean_var_acc1": dict(expr="ag.add_mean_variance_to_opt(ox.adam(1e-2))",
                          layout="axis0", unbiased=True),
    "mean_var_acc3": dict(expr="ag.add_mean_variance_to_opt(ox.adam(1e-2), 0.9, 0, 3)",
                          layout="axis0", unbiased=True),
    "mean_var_tuple_acc2": dict(
        expr="ag.add_mean_variance_to_opt(ox.sgd(0.1), 0.8, (0, 1), 2)", layout="tuple01",
        unbiased=True),
    "mean_var_last_acc2": dict(
        expr="ag.add_mean_variance_to_opt(ox.adam(1e-2), 0.5, -1, 2)", layout="last",
        unbiased=True),
}


def make_inputs():
    """(STEPS, BATCH, 8) per-element numbers and the 8 params, float64."""
    rng = np.random.default_rng(20260)
    inputs = 0.3 + rng.standard_normal((STEPS, BATCH, 8))
    params = rng.standard_normal(8)
    return inputs, params


def params_tree(params, dtype):
    p = np.asarray(params, dtype)
    return {"b": p[:2].copy(), "w": p[2:].reshape(3, 2).copy()}


def grads(rows, layout, dtype):
    """One step's per-element gradients: ``rows`` (BATCH, 8) laid out as
    ``layout`` says: 'axis0' (BATCH, *shape), 'tuple01' (2, BATCH // 2,
    *shape), 'axis1' (shape[0], BATCH, *shape[1:]), 'last' (*shape, BATCH),
    'mean' (the first row only, params-shaped)."""
    rows = np.asarray(rows, dtype)
    n = rows.shape[0]
    tree = {"b": rows[:, :2].copy(), "w": rows[:, 2:].reshape(n, 3, 2).copy()}
    if layout == "axis0":
        return tree
    if layout == "tuple01":
        return {k: v.reshape((2, n // 2) + v.shape[1:]) for k, v in tree.items()}
    if layout == "axis1":
        return {k: np.ascontiguousarray(np.moveaxis(v, 0, 1)) for k, v in tree.items()}
    if layout == "last":
        return {k: np.ascontiguousarray(np.moveaxis(v, 0, -1)) for k, v in tree.items()}
    if layout == "mean":
        return {k: v[0].copy() for k, v in tree.items()}
    raise ValueError(layout)


def describe(tree):
    """Types, field names, dtypes and shapes of a tree, as a string (the same
    for JAX and NumPy leaves; Python scalars by their type)."""
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return (f"{type(tree).__name__}(" + ", ".join(
            f"{f}={describe(getattr(tree, f))}" for f in tree._fields) + ")")
    if isinstance(tree, tuple):
        return "(" + ", ".join(describe(x) for x in tree) + ("," if len(tree) == 1 else "") + ")"
    if isinstance(tree, list):
        return "[" + ", ".join(describe(x) for x in tree) + "]"
    if isinstance(tree, dict):
        return "{" + ", ".join(f"{k}: {describe(tree[k])}" for k in sorted(tree)) + "}"
    if tree is None:
        return "None"
    if isinstance(tree, (bool, int, float)) and not isinstance(tree, np.generic):
        return type(tree).__name__      # a Python scalar (np.float64 is a float too)
    return f"{np.dtype(tree.dtype).name}{list(np.shape(tree))}"


def main():
    import jax
    jax.config.update("jax_enable_x64", True)
    import optax
    from optax.experimental import aggregating as ag

    inputs, params0 = make_inputs()
    out = {"inputs": inputs, "params": params0,
           "meta": np.array(f"optax {optax.__version__}, jax {jax.__version__}")}
    leaves = jax.tree_util.tree_leaves
    for name, case in CASES.items():
        for dtype in DTYPES:
            params = params_tree(params0, dtype)
            opt = eval(case["expr"], {"ag": ag, "ox": optax})
            state = opt.init(params)
            init_struct = describe(state)
            jstate = state
            ups, unb, valid, worst = [], [], [], 0.0
            for t in range(STEPS):
                g = grads(inputs[t], case["layout"], dtype)
                updates, state = opt.update(g, state, params)
                jupdates, jstate = jax.jit(opt.update)(g, jstate, params)
                for a, b in zip(leaves(updates), leaves(jupdates)):
                    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
                    scale = max(float(np.max(np.abs(a))), 1e-300)
                    worst = max(worst, float(np.max(np.abs(a - b))) / scale)
                ups.append([np.asarray(x) for x in leaves(updates)])
                if case.get("unbiased"):
                    m, v = ag.get_unbiased_mean_and_variance_ema(state)
                    ema = optax.tree.get(state, "PerElementMeanAndVarianceEMAState")
                    valid.append(int(ema.count) > 0)
                    unb.append([np.asarray(x) for x in leaves((m, v))])
            key = f"{name}/{dtype}"
            out[f"{key}/updates_struct"] = np.array(describe(updates))
            out[f"{key}/init_struct"] = np.array(init_struct)
            out[f"{key}/state_struct"] = np.array(describe(state))
            for i in range(len(ups[0])):
                out[f"{key}/updates_{i}"] = np.stack([u[i] for u in ups])
            for i, x in enumerate(leaves(state)):
                out[f"{key}/state_{i}"] = np.asarray(x)
            if case.get("unbiased"):
                out[f"{key}/unbiased_valid"] = np.array(valid)
                for i in range(len(unb[0])):
                    out[f"{key}/unbiased_{i}"] = np.stack(
                        [u[i] if ok else np.full_like(u[i], np.nan) for u, ok in zip(unb, valid)])
            print(f"{key:32s} jit/eager {worst:.1e}  {describe(updates)}")
    np.savez_compressed(OUT, **out)
    print(f"{OUT}: {os.path.getsize(OUT) / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
