"""Regenerate the jaxopt 0.8.5 reference runs of the scipy wrappers
(tests/reference/data/jaxopt/scipy_wrappers.npz). Needs jax + jaxopt; x64.

    python tests/reference/make_scipy_wrappers_reference.py

The problems are written twice on the same data: in NumPy with analytic
derivatives (what tests/test_scipy_wrappers.py gives npopt: value_and_grad=True
or jac=) and in jax.numpy, value only (jaxopt differentiates it). Importing
this module needs NumPy only; jax is imported by ``main``.

Problems:
  rosen*       Rosenbrock in 6 (or 2) variables from (-1.2, 1, -1.2, 1, ...),
               minimum at all ones; as an array or a dict {'a', 'b'}.
  box_ls       0.5/n ||X w + b - y||^2 over {'w': (12,), 'b': ()} with a box
               (-0.2 <= w <= 0.3, 0.1 <= b <= 1): scipy.optimize.lsq_linear
               gives the known solution.
  broyden*     Broyden's tridiagonal system (n = 8),
               F_i = (3 - 2 x_i) x_i - x_{i-1} - 2 x_{i+1} + 1, from x = -1.
  expfit*      residuals a exp(-b t) + c - y on 30 points; 'exact' data are
               noise free (solution (2.5, 1.3, 0.5)), 'outliers' add three
               gross errors (fitted with the soft_l1 loss); the bounded cases
               cap the rate at b <= 1 (active: the unconstrained fit has 1.3).
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data", "jaxopt", "scipy_wrappers.npz")
sys.path.insert(0, HERE)
import fixed_order as fo  # noqa: E402
import solver_problems as sp  # noqa: E402


# ---- data ------------------------------------------------------------------

def rosen_x0(n=6):
    return np.tile([-1.2, 1.0], n // 2)


def box_ls_data():
    D = sp.data()
    return D["X"], D["y"]


BOX_LS_BOUNDS = ({"w": np.full(12, -0.2), "b": np.asarray(0.1)},
                 {"w": np.full(12, 0.3), "b": np.asarray(1.0)})


def broyden_x0():
    return -np.ones(8)


def expfit_data(kind="noisy"):
    t = np.linspace(0.0, 4.0, 30)
    y = 2.5 * fo.exp(-1.3 * t) + 0.5
    if kind != "exact":
        y = y + 0.02 * np.random.default_rng(3).standard_normal(30)
    if kind == "outliers":
        y[[4, 11, 23]] += np.array([1.0, -0.8, 0.6])
    return t, y


EXPFIT_TRUE = np.array([2.5, 1.3, 0.5])
EXPFIT_X0 = np.array([1.0, 1.0, 0.0])
EXPFIT_BOUNDS = (np.array([0.0, 0.0, -np.inf]), np.array([10.0, 1.0, np.inf]))
EXPFIT_X0_BOUNDED = np.array([1.0, 0.5, 0.0])
EXPFIT_KEYS = ("amp", "rate", "offset")


def to_tree(x, keys):
    """A flat vector as a dict of 0-d arrays (sorted keys: ravel order)."""
    order = sorted(keys)
    return {k: np.asarray(x[keys.index(k)]) for k in order}


# ---- NumPy problems (for npopt) -------------------------------------------
# fo.exp, not np.exp (whose AVX-512 version rounds otherwise): the same bits
# on every CPU.

def rosen_np(x):
    """sum 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2 and its gradient."""
    d = x[1:] - x[:-1] ** 2
    value = np.sum(100.0 * d ** 2 + (1.0 - x[:-1]) ** 2)
    g = np.zeros_like(x)
    g[:-1] = -400.0 * x[:-1] * d - 2.0 * (1.0 - x[:-1])
    g[1:] += 200.0 * d
    return value, g


def rosen_tree_np(p):
    value, g = rosen_np(np.concatenate([p["a"], p["b"]]))
    return value, {"a": g[:3], "b": g[3:]}


def broyden_np(x):
    xp = np.concatenate([[0.0], x, [0.0]])
    return (3.0 - 2.0 * x) * x - xp[:-2] - 2.0 * xp[2:] + 1.0


def broyden_jac_np(x):
    n = x.size
    return np.diag(3.0 - 4.0 * x) - np.eye(n, k=-1) - 2.0 * np.eye(n, k=1)


def broyden_tree_np(p):
    F = broyden_np(np.concatenate([p["u"], p["v"]]))
    return {"u": F[:4], "v": F[4:]}


def broyden_tree_jac_np(p):
    """The 2-D (8, 8) Jacobian in ravel order (npopt accepts it as is)."""
    return broyden_jac_np(np.concatenate([p["u"], p["v"]]))


def expfit_np(x, t, y):
    a, b, c = x
    return a * fo.exp(-b * t) + c - y


def expfit_jac_np(x, t, y):
    a, b, _ = x
    e = fo.exp(-b * t)
    return np.stack([e, -a * t * e, np.ones_like(t)], axis=1)


def expfit_tree_np(p, t, y):
    return expfit_np(np.array([p[k] for k in EXPFIT_KEYS]), t, y)


def expfit_tree_jac_np(p, t, y):
    """jax's layout: {key: d residual / d key} (one block per params leaf)."""
    J = expfit_jac_np(np.array([p[k] for k in EXPFIT_KEYS]), t, y)
    return {k: J[:, i] for i, k in enumerate(EXPFIT_KEYS)}


# ---- cases ----------------------------------------------------------------
# name -> dict(cls, kw (solver keywords), problem, bounds: whether run takes them)
CASES = {
    "rosen_bfgs": dict(cls="ScipyMinimize", kw=dict(method="BFGS"), problem="rosen"),
    "rosen_lbfgsb_tree": dict(cls="ScipyMinimize", kw=dict(method="L-BFGS-B"),
                              problem="rosen_tree"),
    "rosen_bfgs_tol": dict(cls="ScipyMinimize", kw=dict(method="BFGS", tol=1e-10, maxiter=200),
                           problem="rosen"),
    "rosen_cg_maxiter": dict(cls="ScipyMinimize", kw=dict(method="CG", maxiter=25),
                             problem="rosen"),
    "rosen2_nelder_mead": dict(cls="ScipyMinimize", kw=dict(method="Nelder-Mead",
                                                            options={"xatol": 1e-10,
                                                                     "fatol": 1e-12}),
                               problem="rosen2"),
    # ftol 1e-14, not 1e-15: with 1e-15 the relative decrease test at
    # iteration 11 compares quantities at the rounding level of f (~5e-3), so
    # whether L-BFGS-B stops (jaxopt, 11 iterations) or takes one more step
    # with a 9-evaluation line search (npopt, 12) depends on the summation
    # order of the loss; the first 11 iterates agree to 4e-16 either way.
    "box_ls_lbfgsb": dict(cls="ScipyBoundedMinimize",
                          kw=dict(method="L-BFGS-B", options={"ftol": 1e-14, "gtol": 1e-12}),
                          problem="box_ls", bounds=True),
    "box_ls_slsqp": dict(cls="ScipyBoundedMinimize",
                         kw=dict(method="SLSQP", options={"ftol": 1e-14}),
                         problem="box_ls", bounds=True),
    "broyden_hybr": dict(cls="ScipyRootFinding", kw=dict(method="hybr"), problem="broyden"),
    "broyden_lm_tree": dict(cls="ScipyRootFinding", kw=dict(method="lm", tol=1e-12),
                            problem="broyden_tree"),
    "broyden_broyden1": dict(cls="ScipyRootFinding", kw=dict(method="broyden1", tol=1e-10),
                             problem="broyden"),
    "expfit_trf": dict(cls="ScipyLeastSquares", kw=dict(method="trf"), problem="expfit"),
    "expfit_lm_exact": dict(cls="ScipyLeastSquares", kw=dict(method="lm"),
                            problem="expfit_exact"),
    "expfit_dogbox_tree": dict(cls="ScipyLeastSquares",
                               kw=dict(method="dogbox",
                                       options={"x_scale": {"amp": 1.0, "offset": 1.0,
                                                            "rate": 0.5}}),
                               problem="expfit_tree"),
    "expfit_soft_l1": dict(cls="ScipyLeastSquares",
                           kw=dict(method="trf", loss="soft_l1", options={"f_scale": 0.1}),
                           problem="expfit_outliers"),
    "expfit_bounded_trf": dict(cls="ScipyBoundedLeastSquares", kw=dict(method="trf"),
                               problem="expfit", bounds=True),
    "expfit_bounded_dogbox_tree": dict(cls="ScipyBoundedLeastSquares", kw=dict(method="dogbox"),
                                       problem="expfit_tree", bounds=True),
}


def np_problem(name):
    """dict(fun, jac (or None), x0, args, bounds) with NumPy callables."""
    if name in ("rosen", "rosen2"):
        x0 = rosen_x0(6 if name == "rosen" else 2)
        return dict(fun=rosen_np, jac=None, x0=x0, args=(), bounds=None)
    if name == "rosen_tree":
        x0 = rosen_x0()
        return dict(fun=rosen_tree_np, jac=None, x0={"a": x0[:3], "b": x0[3:]}, args=(),
                    bounds=None)
    if name == "box_ls":
        return dict(fun=sp.tree_ls_np, jac=None, x0={"w": np.zeros(12), "b": np.asarray(0.5)},
                    args=box_ls_data(), bounds=BOX_LS_BOUNDS)
    if name == "broyden":
        return dict(fun=broyden_np, jac=broyden_jac_np, x0=broyden_x0(), args=(), bounds=None)
    if name == "broyden_tree":
        x0 = broyden_x0()
        return dict(fun=broyden_tree_np, jac=broyden_tree_jac_np,
                    x0={"u": x0[:4], "v": x0[4:]}, args=(), bounds=None)
    if name.startswith("expfit"):
        args = expfit_data({"expfit_exact": "exact", "expfit_outliers": "outliers"}
                           .get(name, "noisy"))
        if name == "expfit_tree":
            keys = list(EXPFIT_KEYS)
            return dict(fun=expfit_tree_np, jac=expfit_tree_jac_np,
                        x0=to_tree(EXPFIT_X0, keys), x0_bounded=to_tree(EXPFIT_X0_BOUNDED, keys),
                        args=args,
                        bounds=(to_tree(EXPFIT_BOUNDS[0], keys), to_tree(EXPFIT_BOUNDS[1], keys)))
        return dict(fun=expfit_np, jac=expfit_jac_np, x0=EXPFIT_X0.copy(),
                    x0_bounded=EXPFIT_X0_BOUNDED.copy(), args=args, bounds=EXPFIT_BOUNDS)
    raise KeyError(name)


def case_inputs(name, prob):
    """(x0, bounds or None) of a case."""
    case = CASES[name]
    if case.get("bounds"):
        return prob.get("x0_bounded", prob["x0"]), prob["bounds"]
    return prob["x0"], None


# ---- jax.numpy problems (for jaxopt) --------------------------------------

def jnp_funs():
    import jax.numpy as jnp

    def rosen(x):
        return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

    def rosen_tree(p):
        return rosen(jnp.concatenate([p["a"], p["b"]]))

    def tree_ls(params, X, y):
        r = X @ params["w"] + params["b"] - y
        return 0.5 * (r @ r) / y.shape[0]

    def broyden(x):
        xp = jnp.concatenate([jnp.zeros(1), x, jnp.zeros(1)])
        return (3.0 - 2.0 * x) * x - xp[:-2] - 2.0 * xp[2:] + 1.0

    def broyden_tree(p):
        F = broyden(jnp.concatenate([p["u"], p["v"]]))
        return {"u": F[:4], "v": F[4:]}

    def expfit(x, t, y):
        return x[0] * jnp.exp(-x[1] * t) + x[2] - y

    def expfit_tree(p, t, y):
        return p["amp"] * jnp.exp(-p["rate"] * t) + p["offset"] - y

    return dict(rosen=rosen, rosen2=rosen, rosen_tree=rosen_tree, box_ls=tree_ls,
                broyden=broyden, broyden_tree=broyden_tree, expfit=expfit,
                expfit_exact=expfit, expfit_outliers=expfit, expfit_tree=expfit_tree)


def main():
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import jaxopt
    from importlib.metadata import version

    funs = jnp_funs()
    tree_map = jax.tree_util.tree_map
    arrays, meta = {}, {}
    for name, case in CASES.items():
        prob = np_problem(case["problem"])
        x0, bounds = case_inputs(name, prob)
        x0 = tree_map(jnp.asarray, x0)
        args = tuple(jnp.asarray(a) for a in prob["args"])
        fun = funs[case["problem"]]
        kw = json.loads(json.dumps(case["kw"]))        # fresh dicts: jaxopt mutates options
        cls = getattr(jaxopt, case["cls"])
        traj = []
        if case["cls"] == "ScipyRootFinding":
            solver = cls(optimality_fun=fun, **kw)
        elif case["cls"].startswith("ScipyLeast") or case["cls"].startswith("ScipyBoundedLeast"):
            solver = cls(fun=fun, **kw)
        else:
            solver = cls(fun=fun, callback=lambda p: traj.append(
                np.concatenate([np.ravel(v) for v in jax.tree_util.tree_leaves(p)])), **kw)
        if bounds is not None:
            b = tree_map(jnp.asarray, bounds)
            sol, info = solver.run(x0, b, *args)
            opt0 = solver.optimality_fun(x0, b, *args)
        else:
            sol, info = solver.run(x0, *args)
            opt0 = solver.optimality_fun(x0, *args)
        for i, leaf in enumerate(jax.tree_util.tree_leaves(sol)):
            arrays[f"{name}/params_{i}"] = np.asarray(leaf)
        for i, leaf in enumerate(jax.tree_util.tree_leaves(opt0)):
            arrays[f"{name}/opt0_{i}"] = np.asarray(leaf)
        arrays[f"{name}/fun_val"] = np.asarray(info.fun_val)
        m = dict(success=bool(info.success), status=int(info.status))
        if traj:
            arrays[f"{name}/traj"] = np.stack(traj)
        if hasattr(info, "hess_inv"):
            h = info.hess_inv
            if h is not None:
                arrays[f"{name}/hess_inv"] = np.asarray(h.todense() if hasattr(h, "todense")
                                                        else h)
            m.update(iter_num=int(info.iter_num), nfev=int(info.num_fun_eval),
                     njev=int(info.num_jac_eval), nhev=int(info.num_hess_eval))
        elif hasattr(info, "cost_val"):
            m.update(cost=float(info.cost_val), nfev=int(info.num_fun_eval),
                     njev=int(info.num_jac_eval), error=float(info.error))
        else:
            m.update(iter_num=None if info.iter_num is None else int(info.iter_num),
                     nfev=int(info.num_fun_eval))
        meta[name] = m
        print(f"{name:28s} {m}")
    arrays["meta"] = np.asarray(json.dumps(dict(
        jaxopt=version("jaxopt"), jax=version("jax"), scipy=version("scipy"), cases=meta)))
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({os.path.getsize(OUT) / 1024:.1f} KiB)")


if __name__ == "__main__":
    main()
