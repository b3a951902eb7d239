"""optax.contrib trajectories that need inputs beyond the gradient
(helper contrib3): DP-SGD (per-example gradients), Sophia (Hutchinson's
estimator with optax's ``obj_fn``; npopt's tests pass ``hvp_fn``) and SAM's
opaque mode (``grad_fn``), and split_real_and_imaginary (complex params), on
contrib3_problem.py.

    python tests/reference/make_contrib3_reference.py            # all cases (~10 min)
    python tests/reference/make_contrib3_reference.py split_adam # some, kept the others

writes data/optax/contrib3.npz: per case and dtype the raveled params after
every step (STEPS, n), the first updates (n,) and the final state's leaves
(``jax.tree_util.tree_leaves`` order; typed keys as ``key_data``). DP noise
is off (``noise_multiplier=0``); Hutchinson's signs do not matter on this
problem (its Hessian is diagonal).
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
import contrib3_problem as prob  # noqa: E402

OUT = os.path.join(HERE, "data", "optax", "contrib3.npz")
ox = optax
C = optax.contrib
SAM_ADV = lambda lr: ox.chain(C.normalize(), ox.sgd(lr))  # noqa: E731

# name -> (optax transformation, gradient source, extra-args kind)
CASES = {
    "dpsgd_plain": (lambda: C.dpsgd(0.05, 2.0, 0.0, seed=3), "per_example", None),
    "dpsgd_momentum_nesterov": (
        lambda: C.dpsgd(0.05, 2.0, 0.0, seed=7, momentum=0.9, nesterov=True), "per_example", None),
    "dp_aggregate_adam": (
        lambda: ox.chain(C.differentially_private_aggregate(1.0, 0.0, key=11), ox.adam(1e-2)),
        "per_example", None),
    "sophia_default": (lambda: C.sophia(1e-2), "grads", "obj_fn"),
    "sophia_interval3_mask": (
        lambda: C.sophia(5e-3, b1=0.9, b2=0.95, weight_decay=0.1,
                         weight_decay_mask={"a": True, "b": False}, gamma=0.05,
                         clip_threshold=0.5, update_interval=3, mu_dtype=jnp.float32,
                         hessian_diagonal_fn=C.hutchinson_estimator_diag_hessian(
                             jax.random.PRNGKey(5))),
        "grads", "obj_fn"),
    "sophia_noclip": (
        lambda: C.sophia(2e-2, gamma=1.0, clip_threshold=None, update_interval=1,
                         weight_decay=0.0), "grads", "obj_fn"),
    "sam_opaque": (
        lambda: C.sam(ox.sgd(1e-2), SAM_ADV(5e-2), sync_period=3, opaque_mode=True),
        "grads", "grad_fn"),
    "sam_opaque_adam_noreset": (
        lambda: C.sam(ox.adam(1e-2), ox.chain(C.normalize(), ox.adam(5e-2)), sync_period=2,
                      reset_state=False, opaque_mode=True), "grads", "grad_fn"),
    "split_adam": (lambda: C.split_real_and_imaginary(ox.adam(1e-2)), "complex", None),
    "split_sgd_momentum": (
        lambda: C.split_real_and_imaginary(ox.sgd(2e-2, momentum=0.9, nesterov=True)),
        "complex", None),
    # one projector (update_proj_gap > STEPS): see test_contrib3.py for why
    "galore_left_rank2": (lambda: C.galore(1e-2, rank=2), "grads", None),
    "galore_right_wd_scale": (
        lambda: C.galore(1e-2, rank=2, scale=0.5, weight_decay=0.1, mask={"a": True, "b": False},
                         weight_dimension_numbers={"a": C.GaLoreDimensionNumbers(1, 0),
                                                   "b": None}), "grads", None),
    "galore_rank1_sgd_base": (
        lambda: C.galore(5e-2, rank=1, base_optimizer=ox.sgd(1.0, momentum=0.9)), "grads", None),
}


def np_tree(t):
    return jax.tree_util.tree_map(np.asarray, t)


def run(name, dtype):
    make, source, extra = CASES[name]
    opt = make()
    params0, c = prob.make_complex(dtype) if source == "complex" else prob.make(dtype)
    ravel = prob.ravel_complex if source == "complex" else prob.ravel
    params = jax.tree_util.tree_map(jnp.asarray, params0)
    state = opt.init(params)
    traj, first = [], None
    for t in range(prob.STEPS):
        p_np = np_tree(params)
        g = prob.per_example_grads(p_np, c, t) if source == "per_example" else prob.grads(p_np, c, t)
        kw = {}
        if extra == "obj_fn":
            kw["obj_fn"] = lambda p: sum(0.5 * jnp.sum(c["d"][k] * (p[k] - c["target"][k]) ** 2)
                                         for k in sorted(prob.SHAPES))
        elif extra == "grad_fn":
            kw["grad_fn"] = lambda p, i, t=t: jax.tree_util.tree_map(
                jnp.asarray, prob.grads(np_tree(p), c, t))
        updates, state = opt.update(jax.tree_util.tree_map(jnp.asarray, g), state, params, **kw)
        params = optax.apply_updates(params, updates)
        if t == 0:
            first = ravel(np_tree(updates))
        traj.append(ravel(np_tree(params)))
    leaves = []
    for leaf in jax.tree_util.tree_leaves(state):
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        leaves.append(np.asarray(leaf))
    return np.stack(traj), first, leaves


def main(names):
    arrays, meta = {}, {"steps": prob.STEPS, "versions": {"jax": jax.__version__,
                                                          "optax": optax.__version__},
                        "cases": {}}
    if names and os.path.exists(OUT):        # regenerate some cases, keep the others
        old = np.load(OUT)
        meta = json.loads(str(old["meta"]))
        arrays = {k: old[k] for k in old.files if k != "meta"
                  and k.split("/")[0] not in names}
    for name in names or CASES:
        meta["cases"][name] = {}
        for dtype in ("float32", "float64"):
            traj, first, leaves = run(name, dtype)
            assert traj.dtype == np.dtype(dtype), (name, traj.dtype)
            arrays[f"{name}/{dtype}/traj"] = traj
            arrays[f"{name}/{dtype}/updates_1"] = first
            for i, leaf in enumerate(leaves):
                arrays[f"{name}/{dtype}/state_{i}"] = leaf
            meta["cases"][name][dtype] = len(leaves)
        d = np.max(np.abs(arrays[f"{name}/float32/traj"][-1] - arrays[f"{name}/float64/traj"][-1]))
        print(f"{name:28s} f32~f64 {d / np.max(np.abs(arrays[f'{name}/float64/traj'][-1])):.1e}")
    np.savez_compressed(OUT, meta=np.array(json.dumps(meta)), **arrays)
    print(OUT, os.path.getsize(OUT) // 1024, "KiB")


if __name__ == "__main__":
    main(sys.argv[1:])
