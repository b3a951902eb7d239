"""Generate tests/reference/data/optax/tree_paths.json: paths into optax
states, for npopt.tree's ``tree_leaves_with_path``, ``tree_get_all_with_path``,
``tree_get`` and ``tree_set``.

Regenerate (needs jax and optax 0.2.8)::

    python tests/reference/make_tree_paths_reference.py

For each state of ``STATES`` (an expression over ``ox``, initialised on
``PARAMS``): ``jax.tree_util.keystr`` of every leaf path, and for each key of
``KEYS`` the paths ``optax.tree_utils.tree_get_all_with_path`` finds (with
optax's NamedTupleKey entries) and whether ``tree_get`` raises (several
matches). Structures only: no numbers.
"""
import json
import os

import jax
import numpy as np
import optax

jax.config.update("jax_enable_x64", True)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "optax", "tree_paths.json")

PARAMS = "{'b': np.zeros(3), 'extra': [np.zeros((2, 2)), np.zeros(())], 'w': np.zeros((2, 3))}"
STATES = {
    "adam": "ox.adam(1e-3)",
    "noise_adam": "ox.chain(ox.add_noise(1.0, 0.9, key=0), ox.scale_by_adam())",
    "inject_sgd": "ox.inject_hyperparams(ox.sgd)(learning_rate=0.1, momentum=0.9)",
    "masked_adamw": "ox.adamw(1e-3, mask={'b': False, 'extra': [True, False], 'w': True})",
    "multi_steps": "ox.MultiSteps(ox.adam(1e-3), every_k_schedule=3)",
    "named_chain": "ox.named_chain(('clip', ox.clip_by_global_norm(1.0)), ('adam', ox.scale_by_adam()))",
}
KEYS = ("count", "mu", "nu", "learning_rate", "ScaleByAdamState", "AddNoiseState",
        "hyperparams", "clip", "inner_opt_state", "missing")


def keystr(path):
    return "".join(str(k) for k in path)


def main():
    out = {"params": PARAMS, "states": {}}
    params = eval(PARAMS, {"np": np})
    for name, expr in STATES.items():
        state = eval(expr, {"ox": optax, "np": np}).init(params)
        rec = {"expr": expr,
               "leaves": [jax.tree_util.keystr(p)
                          for p, _ in jax.tree_util.tree_leaves_with_path(state)],
               "get_all": {}, "get_raises": []}
        for key in KEYS:
            found = optax.tree_utils.tree_get_all_with_path(state, key)
            rec["get_all"][key] = [keystr(p) for p, _ in found]
            try:
                optax.tree_utils.tree_get(state, key)
            except KeyError:
                rec["get_raises"].append(key)
        out["states"][name] = rec
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
