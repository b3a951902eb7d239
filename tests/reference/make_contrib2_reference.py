"""Short optax trajectories of contrib2's rules at their defaults (data/contrib2/).

Prodigy, D-Adaptation, DoG (heuristic 1e-6), layer-wise DoG and Mechanic
(s_init 1e-6) start with steps of ~1e-6 per element, and with a constant
rate their trajectories amplify rounding: float32 and float64 runs part by
1e-2 after 100 steps, so these configurations cannot be 100-step cases of
``cases_contrib2.py``. Their first 10 steps are stored here instead, in the
format of make_reference.py (``problem.STEPS = 10``, checkpoints 1, 2, 5,
10), and replayed by tests/test_contrib2.py.

    python tests/reference/make_contrib2_reference.py
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_reference as mr  # noqa: E402  (sets jax_enable_x64)
import numpy as np  # noqa: E402
import optax  # noqa: E402
import jax  # noqa: E402
import problem  # noqa: E402
import storage  # noqa: E402

OUT_DIR = os.path.join(HERE, "data", "contrib2")
STEPS = 10
CHECKPOINTS = (1, 2, 5, 10)
SHORT = {
    "dog_default": "ox.contrib.dog()",
    "dowg_default": "ox.contrib.dowg()",
    "prodigy_default": "ox.contrib.prodigy()",
    "dadapt_adamw_default": "ox.contrib.dadapt_adamw()",
    "mechanize_adam_default": "ox.contrib.mechanize(ox.adam(1e-2))",
    "distance_over_gradients_default":
        "ox.chain(ox.scale_by_distance_over_gradients(), ox.scale_by_learning_rate(1.0))",
}


def main(argv):
    names = argv or list(SHORT)
    os.makedirs(OUT_DIR, exist_ok=True)
    problem.STEPS, problem.CHECKPOINTS = STEPS, CHECKPOINTS
    idx = mr.sample_indices()
    for name in names:
        expr = SHORT[name]
        arrays = {"sample_idx": idx}
        meta = dict(case=name, expr=expr, steps=STEPS, checkpoints=list(CHECKPOINTS),
                    versions=dict(optax=optax.__version__, jax=jax.__version__), x64=True,
                    params_leaves=mr.params_leaf_info())
        for dt in mr.DTYPES:
            a, info, problems = mr.run_case(name, dict(expr=expr), dt, idx)
            arrays.update(a)
            meta[dt] = info
            assert not problems, problems
        arrays = storage.shrink(arrays)
        arrays["meta"] = np.array(json.dumps(meta))
        path = os.path.join(OUT_DIR, name + ".npz")
        np.savez_compressed(path, **arrays)
        print(f"{name:34s} {os.path.getsize(path) / 1024:.0f} KiB", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
