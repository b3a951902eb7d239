"""Generate tests/reference/data/optax/step_safety.npz: optax 0.2.8 with
gradients of another float dtype than the params (under ``jax_enable_x64``).

Regenerate (needs jax and optax==0.2.8)::

    python tests/reference/make_step_safety_reference.py

For every case in ``CASES`` and dtype pair ``(params, grads)`` in
``PAIRS`` (float32 params with float64 grads, NumPy's default, and the
reverse): ``params0`` below in the params' dtype, then ``STEPS`` times
``g = grads(params, t)`` (computed in NumPy, float64, then cast to the grads'
dtype), ``updates, state = opt.update(g, state, params)``,
``params = optax.apply_updates(params, updates)``, jitted. optax promotes:
float32 params with float64 grads get float64 moments and float64 updates,
and ``apply_updates`` rounds the sum back to float32.

The npz holds, per ``{case}/{pair}``: ``params`` (the STEPS+1 raveled
params, float64, in leaf order 'a', 'b'), ``params_dtype``, ``state_{i}``
(the final state's leaves in tree order, in their own dtypes) and
``state_dtypes`` (a string, the dtypes joined by ','); ``meta`` holds the
versions.
"""
import os

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "optax",
                   "step_safety.npz")
STEPS = 15

# expressions evaluated with ox = optax (here) or npopt (in the tests)
CASES = {
    "sgd": "ox.sgd(0.05)",
    "sgd_momentum": "ox.sgd(0.05, momentum=0.9)",
    "sgd_nesterov": "ox.sgd(0.05, momentum=0.9, nesterov=True)",
    "adam": "ox.adam(0.05)",
    "adamw": "ox.adamw(0.05, weight_decay=0.1)",
    "lamb": "ox.lamb(0.05, weight_decay=0.1)",
    "rmsprop": "ox.rmsprop(0.05)",
    "rmsprop_momentum": "ox.rmsprop(0.05, momentum=0.9)",
}
PAIRS = {"p32_g64": ("float32", "float64"), "p64_g32": ("float64", "float32")}


def params0(dtype):
    return {"a": np.array([1.0, -2.0, 0.5], dtype),
            "b": np.array([[0.3, -0.7], [1.5, 2.0]], dtype)}


def grads(params, t, dtype):
    """A noisy quadratic's gradient, in NumPy float64, cast to ``dtype``."""
    out = {}
    for k, c in (("a", 1.0), ("b", 2.0)):
        p = np.asarray(params[k], np.float64)
        noise = np.cos(np.arange(p.size, dtype=np.float64).reshape(p.shape) + 0.7 * t)
        out[k] = (c * (p - 0.25) + 0.1 * noise).astype(dtype)
    return out


def ravel(params):
    return np.concatenate([np.asarray(params[k], np.float64).reshape(-1) for k in ("a", "b")])


def main():
    import jax
    jax.config.update("jax_enable_x64", True)
    import optax
    arrays = {}
    for name, expr in CASES.items():
        for pair, (pdt, gdt) in PAIRS.items():
            opt = eval(expr, {"ox": optax})
            params = jax.tree.map(jax.numpy.asarray, params0(pdt))
            state = opt.init(params)
            update = jax.jit(opt.update)
            apply = jax.jit(optax.apply_updates)
            traj = [ravel(params)]
            for t in range(STEPS):
                g = grads(jax.tree.map(np.asarray, params), t, gdt)
                updates, state = update(g, state, params)
                params = apply(params, updates)
                traj.append(ravel(params))
            key = f"{name}/{pair}"
            arrays[f"{key}/params"] = np.stack(traj)
            arrays[f"{key}/params_dtype"] = np.array(str(np.asarray(params["a"]).dtype))
            leaves = [np.asarray(x) for x in jax.tree.leaves(state)]
            for i, x in enumerate(leaves):
                arrays[f"{key}/state_{i}"] = x
            arrays[f"{key}/state_dtypes"] = np.array(",".join(str(x.dtype) for x in leaves))
            print(f"{key:28s} final params {traj[-1][:3]} state dtypes "
                  f"{sorted(set(str(x.dtype) for x in leaves))}")
    arrays["meta"] = np.array(f"optax {optax.__version__}, jax {jax.__version__}, x64")
    np.savez_compressed(OUT, **arrays)
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
