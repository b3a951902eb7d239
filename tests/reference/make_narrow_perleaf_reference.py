"""Reference data for the non-elementwise rules on float16/bfloat16 params
(data/optax/narrow_perleaf.json), replayed by tests/test_dtypes.py.

    /work/refenv/bin/python tests/reference/make_narrow_perleaf_reference.py

optax 0.2.8, jitted, x64: each case's optimizer on the params of
``problem()`` below in the 16-bit dtype, STEPS updates with the gradient
``g = p - 1`` computed in float32 and cast, then apply_updates. Stored: the
final params (as float32 values) and the state leaves' dtypes.
"""
import json
import os

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import ml_dtypes  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data", "optax", "narrow_perleaf.json")
STEPS = 4
CASES = {
    "lamb": "ox.lamb(1e-2)",
    "lars": "ox.lars(1e-2)",
    "novograd": "ox.novograd(1e-2)",
    "adafactor": "ox.adafactor(1e-2, min_dim_size_to_factor=2)",
    "fromage": "ox.fromage(1e-2)",
    "clip_adam": "ox.chain(ox.clip_by_global_norm(1.0), ox.adam(1e-2))",
    "optimistic_adam_v2": "ox.optimistic_adam_v2(1e-2)",
    "block_rms": "ox.chain(ox.clip_by_block_rms(0.5), ox.scale_by_param_block_rms(), "
                 "ox.scale(-1e-2))",
}


def problem(dtype):
    rng = np.random.default_rng(0)
    return {"w": rng.standard_normal((4, 5)).astype(dtype),
            "b": rng.standard_normal(5).astype(dtype)}


def grads(params, dtype):
    return {k: (np.asarray(v).astype(np.float32) - 1).astype(dtype) for k, v in params.items()}


def main():
    out = {"steps": STEPS, "cases": CASES, "results": {}}
    for name in ("float16", "bfloat16"):
        dt = np.dtype(np.float16) if name == "float16" else np.dtype(ml_dtypes.bfloat16)
        for case, expr in CASES.items():
            opt = eval(expr, {"ox": optax})
            p = {k: jnp.asarray(v) for k, v in problem(dt).items()}
            s = opt.init(p)
            update, apply = jax.jit(opt.update), jax.jit(optax.apply_updates)
            for _ in range(STEPS):
                u, s = update(grads(p, dt), s, p)
                p = apply(p, u)
            out["results"][f"{case}/{name}"] = {
                "params": {k: np.asarray(v).astype(np.float32).tolist() for k, v in p.items()},
                "state_dtypes": [str(np.asarray(x).dtype) for x in jax.tree.leaves(s)]}
    with open(OUT, "w") as f:
        json.dump(out, f, indent=0, sort_keys=True)
    print(OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
