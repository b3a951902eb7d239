"""Reference runs of jaxopt 0.8.5's QP solvers (EqualityConstrainedQP,
BoxCDQP, IterativeRefinement, BoxOSQP, OSQP) -> tests/reference/data/jaxopt/qp.npz.
Needs jax + jaxopt; x64, jitted run.

    python tests/reference/make_qp_reference.py

The problem data (``data()``) is NumPy and seeded; importing this module
needs no JAX. Each case stores the final params (flattened KKTSolution
leaves, in order) and the iteration count where the solver has a state.
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data", "jaxopt", "qp.npz")

try:
    from . import fixed_order as fo        # imported as reference.<this module>
except ImportError:                        # run as a script
    sys.path.insert(0, HERE)
    import fixed_order as fo


def data(seed=5):
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((6, 6))
    Q = fo.mm(M, M.T) + 0.5 * np.eye(6)           # SPD (fo.mm: no BLAS, same bits on every CPU)
    c = rng.standard_normal(6)
    A = rng.standard_normal((2, 6))
    b = rng.standard_normal(2)
    G = rng.standard_normal((3, 6))
    h = 0.1 * np.abs(rng.standard_normal(3))
    Msys = np.eye(6) + 0.3 * rng.standard_normal((6, 6))
    bsys = rng.standard_normal(6)
    l = -0.3 * np.ones(6)
    u = 0.4 * np.ones(6)
    Mpsd = rng.standard_normal((4, 6))
    Qpsd = fo.mm(Mpsd.T, Mpsd)                      # rank 4: PSD, singular
    return dict(Q=Q, c=c, A=A, b=b, G=G, h=h, Msys=Msys, bsys=bsys, l=l, u=u, Qpsd=Qpsd)


D = data()

# name -> (solver, kwargs for the constructor (plain Python), description)
CASES = {
    "eqqp_dense": ("EqualityConstrainedQP", {}, "dense Q, A"),
    "eqqp_matvec": ("EqualityConstrainedQP", {"matvec": True}, "matvec_Q, matvec_A"),
    "eqqp_refine": ("EqualityConstrainedQP", {"refine_regularization": 1e-3},
                    "iterative refinement"),
    "eqqp_psd": ("EqualityConstrainedQP", {"psd": True}, "singular PSD Q"),
    "boxcdqp": ("BoxCDQP", {"tol": 1e-10, "maxiter": 1000}, "box QP"),
    "boxcdqp_default": ("BoxCDQP", {}, "box QP, default tol"),
    "iterref": ("IterativeRefinement", {}, "default solve"),
    "iterref_bar": ("IterativeRefinement", {"bar": True}, "A_bar = float32-rounded A"),
    "boxosqp_box": ("BoxOSQP", {"tol": 1e-8}, "x in a box (A = I)"),
    "boxosqp_box_lu": ("BoxOSQP", {"tol": 1e-8, "eq_qp_solve": "lu"}, "box, LU"),
    "boxosqp_dual_infeasible": ("BoxOSQP", {"dualinf": True,
                                            "check_primal_dual_infeasability": True},
                                "min -x0 + x1^2/2 + x1/2, x0 + x1 free: unbounded below"),
    "osqp_eq_ineq": ("OSQP", {"tol": 1e-8}, "Ax = b, Gx <= h"),
    "osqp_default": ("OSQP", {}, "Ax = b, Gx <= h, default tol"),
    "osqp_ineq": ("OSQP", {"tol": 1e-8, "eq": False}, "Gx <= h only"),
    "osqp_infeasible": ("OSQP", {"infeasible": True, "check_primal_dual_infeasability": True},
                        "x0 >= 1 and x0 <= 0: primal infeasible"),
}


def problem(name):
    """(args, ctor kwargs) of a case, in NumPy; ``xp`` chooses the array module."""
    solver, kw, _ = CASES[name]
    kw = dict(kw)
    Q = D["Qpsd"] if kw.pop("psd", False) else D["Q"]
    if solver == "EqualityConstrainedQP":
        return (Q, D["c"]), (D["A"], D["b"]), kw
    if solver == "BoxCDQP":
        return (Q, D["c"]), (D["l"], D["u"]), kw
    if solver == "IterativeRefinement":
        return kw
    if solver == "BoxOSQP":
        if kw.pop("dualinf", False):
            return ((np.diag([0.0, 1.0]), np.array([-1.0, 0.5])),
                    np.array([[1.0, 1.0], [0.0, 1.0]]),
                    (np.array([-np.inf, 0.0]), np.array([np.inf, 1.0])), kw)
        return (Q, D["c"]), np.eye(6), (D["l"], D["u"]), kw
    eq = kw.pop("eq", True)
    if kw.pop("infeasible", False):
        G = np.zeros((2, 6))
        G[0, 0], G[1, 0] = -1.0, 1.0
        return (Q, D["c"]), None, (G, np.array([-1.0, 0.0])), kw
    return (Q, D["c"]), ((D["A"], D["b"]) if eq else None), (D["G"], D["h"]), kw


def main():
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import jaxopt
    from importlib.metadata import version

    j = lambda t: jax.tree_util.tree_map(jnp.asarray, t)   # noqa: E731
    arrays, meta = {}, {}
    for name, (solver, _, desc) in CASES.items():
        out = problem(name)
        if solver == "EqualityConstrainedQP":
            obj, eq, kw = out
            if kw.pop("matvec", False):
                kw.update(matvec_Q=lambda P, x: P @ x, matvec_A=lambda P, x: P @ x)
            s = jaxopt.EqualityConstrainedQP(**kw)
            params, state = s.run(None, params_obj=j(obj), params_eq=j(eq))
            iters = -1
        elif solver == "BoxCDQP":
            obj, ineq, kw = out
            s = jaxopt.BoxCDQP(**kw)
            params, state = s.run(jnp.zeros(6), params_obj=j(obj), params_ineq=j(ineq))
            iters = int(state.iter_num)
        elif solver == "IterativeRefinement":
            kw = out
            A = jnp.asarray(D["Msys"])
            if kw.pop("bar", False):
                s = jaxopt.IterativeRefinement(matvec_A_bar=lambda P, x: P @ x, **kw)
                Abar = jnp.asarray(D["Msys"].astype(np.float32).astype(np.float64))
                params, state = s.run(None, A, jnp.asarray(D["bsys"]), Abar)
            else:
                s = jaxopt.IterativeRefinement(**kw)
                params, state = s.run(None, A, jnp.asarray(D["bsys"]))
            iters = int(state.iter_num)
        elif solver == "BoxOSQP":
            obj, Aeq, ineq, kw = out
            s = jaxopt.BoxOSQP(**kw)
            params, state = s.run(None, params_obj=j(obj), params_eq=j(Aeq), params_ineq=j(ineq))
            iters = int(state.iter_num)
            arrays[name + "__status"] = np.asarray(state.status)
        else:
            obj, eq, ineq, kw = out
            s = jaxopt.OSQP(**kw)
            params, state = s.run(None, params_obj=j(obj), params_eq=j(eq), params_ineq=j(ineq))
            iters = int(state.iter_num)
            arrays[name + "__status"] = np.asarray(state.status)
        leaves = jax.tree_util.tree_leaves(params)
        for k, leaf in enumerate(leaves):
            arrays[f"{name}__{k}"] = np.asarray(leaf)
        arrays[name + "__iters"] = np.asarray(iters)
        meta[name] = dict(solver=solver, desc=desc, nleaves=len(leaves), iters=iters)
        print(name, iters, [np.asarray(x).round(6).tolist() for x in leaves][:1])
    arrays["meta"] = np.array(json.dumps(dict(
        cases=meta, versions=dict(jax=jax.__version__, jaxopt=version("jaxopt")), x64=True)))
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
