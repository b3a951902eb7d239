"""Regenerate the jaxopt 0.8.5 reference runs of the first-order solvers
(tests/reference/data/jaxopt/solvers.npz). Needs jax + jaxopt; x64, jitted.

    python tests/reference/make_solver_reference.py
"""
import json
import os
import sys

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import jaxopt  # noqa: E402
import numpy as np  # noqa: E402
from importlib.metadata import version as _version  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import solver_problems as sp  # noqa: E402

OUT = os.path.join(HERE, "data", "jaxopt", "solvers.npz")


def main():
    D = sp.data()
    funs = sp.jnp_funs()
    arrays, meta = {}, {}
    for name, (cls, kw, fun_name, kind, hyper) in sp.CASES.items():
        fun = funs[fun_name]
        args = tuple(jnp.asarray(a) if isinstance(a, np.ndarray) else a
                     for a in sp.args_of(fun_name, D))
        x0 = jax.tree_util.tree_map(jnp.asarray, sp.init_params(fun_name, D))
        if kind == "plain":
            solver = getattr(jaxopt, cls)(fun=fun, **kw)
            sol, state = solver.run(x0, *args)
        else:
            h = eval(hyper, {"np": np})
            h = jax.tree_util.tree_map(jnp.asarray, h)
            if cls == "ProximalGradient":
                solver = jaxopt.ProximalGradient(fun=fun, prox=getattr(jaxopt.prox, kind), **kw)
            else:
                solver = jaxopt.ProjectedGradient(fun=fun, projection=getattr(jaxopt.projection, kind),
                                                  **kw)
            sol, state = solver.run(x0, h, *args)
        leaves = jax.tree_util.tree_leaves(sol)
        for i, leaf in enumerate(leaves):
            arrays[f"{name}/params_{i}"] = np.asarray(leaf)
        meta[name] = dict(iter_num=int(state.iter_num), error=float(state.error),
                          stepsize=float(state.stepsize))
        print(f"{name:26s} iters {int(state.iter_num):5d}  error {float(state.error):.3e}  "
              f"stepsize {float(state.stepsize):.4g}")
    import optax
    B = sp.batches()
    fun = sp.batch_logreg_jnp()
    for name, (cls, kw, epochs) in sp.STOCH_CASES.items():
        kw = dict(kw)
        if "opt" in kw:
            kw["opt"] = eval(kw["opt"], {"ox": optax})
        solver = getattr(jaxopt, cls)(fun=fun, **kw)
        it = iter([tuple(jnp.asarray(a) for a in b) for b in B] * epochs)
        sol, state = solver.run_iterator(jnp.zeros(12), it, sp.STOCH_L2REG)
        arrays[f"{name}/params_0"] = np.asarray(sol)
        meta[name] = dict(iter_num=int(state.iter_num), error=float(state.error),
                          stepsize=float(getattr(state, "stepsize", np.nan)),
                          value=float(state.value))
        print(f"{name:26s} iters {int(state.iter_num):5d}  error {float(state.error):.3e}  "
              f"value {float(state.value):.6g}")
    ls = funs["least_squares"]
    args = (jnp.asarray(D["X"]), jnp.asarray(D["y"]))
    kl_proj = lambda x, hp: jax.nn.softmax(x)  # noqa: E731
    for name, (stepsize, maxiter, tol) in sp.MIRROR_CASES.items():
        pg = jaxopt.MirrorDescent.make_projection_grad(kl_proj, jnp.log)
        solver = jaxopt.MirrorDescent(fun=ls, projection_grad=pg, stepsize=stepsize,
                                      maxiter=maxiter, tol=tol)
        sol, state = solver.run(jnp.ones(12) / 12, None, *args)
        arrays[f"{name}/params_0"] = np.asarray(sol)
        meta[name] = dict(iter_num=int(state.iter_num), error=float(state.error))
        print(f"{name:26s} iters {int(state.iter_num):5d}  error {float(state.error):.3e}")
    for name, (obj, prox, hyper, maxiter, tol, shape) in sp.BCD_CASES.items():
        data = tuple(jnp.asarray(a) for a in sp.bcd_data(obj, D))
        solver = jaxopt.BlockCoordinateDescent(fun=getattr(jaxopt.objective, obj),
                                               block_prox=getattr(jaxopt.prox, prox),
                                               maxiter=maxiter, tol=tol)
        h = eval(hyper, {"np": np})
        sol, state = solver.run(jnp.zeros(shape), h, data)
        arrays[f"{name}/params_0"] = np.asarray(sol)
        meta[name] = dict(iter_num=int(state.iter_num), error=float(state.error))
        print(f"{name:26s} iters {int(state.iter_num):5d}  error {float(state.error):.3e}")
    arrays["meta"] = np.array(json.dumps(dict(
        cases=meta, versions=dict(jax=jax.__version__, jaxopt=_version("jaxopt")), x64=True)))
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
