"""Reference runs of jaxopt 0.8.5's root-finding and fixed-point solvers
(Bisection, Broyden, FixedPointIteration, AndersonAcceleration,
AndersonWrapper) -> tests/reference/data/jaxopt/root_fixed_point.npz.
Needs jax + jaxopt; x64, jitted run.

    python tests/reference/make_root_fixed_point_reference.py

The problems are written here twice, in NumPy (for npopt; importing this
module needs no JAX) and in jax.numpy (inside ``jnp_problems``), on the
same seeded data. CASES is the table both sides run.
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data", "jaxopt", "root_fixed_point.npz")

try:
    from . import fixed_order as fo        # imported as reference.<this module>
except ImportError:                        # run as a script
    sys.path.insert(0, HERE)
    import fixed_order as fo


def data(seed=3):
    rng = np.random.default_rng(seed)
    Q = rng.standard_normal((7, 7))
    A_contr = 0.9 * Q / fo.spectral_norm(Q)           # ||A||_2 = 0.9: a contraction
    b_contr = rng.standard_normal(7)
    A_sys = np.eye(6) + 0.3 * rng.standard_normal((6, 6)) / np.sqrt(6)
    b_sys = rng.standard_normal(6)
    return dict(A_contr=A_contr, b_contr=b_contr, A_sys=A_sys, b_sys=b_sys)


D = data()


# ---- NumPy problems ---------------------------------------------------------
# No BLAS (fo.mv) and no SIMD-dispatched power (x ** 3 is np.power, whose
# AVX-512 version rounds otherwise; x * x * x is also jax's integer_pow):
# the same bits on every CPU. np.cos (float64) is the C library's cos.

def cos_np(x):
    """T(x) = cos(x), elementwise: the Dottie number 0.739085... everywhere."""
    return np.cos(x)


def cos_aux_np(x):
    y = np.cos(x)
    return y, {"sum": np.sum(y)}


def affine_tree_np(p, A, b):
    """T(p) = A z + b on z = [u, vec(v)], p = {'u': (3,), 'v': (2, 2)}."""
    z = np.concatenate([p["u"], p["v"].ravel()])
    z = fo.mv(A, z) + b
    return {"u": z[:3], "v": z[3:].reshape(2, 2)}


def cubic_np(x):
    """x^3 - 2x - 5 (Newton's own example): root 2.0945514815423265."""
    return x * x * x - 2 * x - 5


def cos_minus_np(x, a):
    """cos(x) - a x: decreasing on [0, 2]."""
    return np.cos(x) - a * x


def square_np(x, a):
    return x ** 2 - a


def cubic_system_np(x, A, b):
    """F(x) = A x + 0.1 x^3 - b (A near the identity, nonsymmetric)."""
    return fo.mv(A, x) + 0.1 * (x * x * x) - b


def cubic_system_jac_np(x, A, b):
    return A + np.diag(0.3 * x ** 2)


def scipy_system_np(x):
    """scipy.optimize.broyden1's example: root (0.8411639, 0.1588361)."""
    d = x[0] - x[1]
    e = x[1] - x[0]
    return np.array([x[0] + 0.5 * (d * d * d) - 1.0,
                     0.5 * (e * e * e) + x[1]])


def scipy_system_jac_np(x):
    t = 1.5 * (x[0] - x[1]) ** 2
    return np.array([[1.0 + t, -t], [-t, 1.0 + t]])


def tree_system_np(p, A, b):
    """cubic_system on the pytree {'a': x[:2], 'b': x[2:].reshape(2, 2)}."""
    z = np.concatenate([p["a"], p["b"].ravel()])
    F = fo.mv(A, z) + 0.1 * (z * z * z) - b
    return {"a": F[:2], "b": F[2:].reshape(2, 2)}


def tree_system_jac_np(p, A, b):
    z = np.concatenate([p["a"], p["b"].ravel()])
    return A + np.diag(0.3 * z ** 2)


def _sp():
    """tests/reference/solver_problems.py (the ridge problem of AndersonWrapper)."""
    try:
        from . import solver_problems           # imported as reference.<this module>
    except ImportError:                          # run as a script
        sys.path.insert(0, HERE)
        import solver_problems
    return solver_problems


NP = dict(cos=cos_np, cos_aux=cos_aux_np, affine_tree=affine_tree_np, cubic=cubic_np,
          cos_minus=cos_minus_np, square=square_np, cubic_system=cubic_system_np,
          scipy_system=scipy_system_np, tree_system=tree_system_np)
JAC = dict(cubic_system=cubic_system_jac_np, scipy_system=scipy_system_jac_np,
           tree_system=tree_system_jac_np)


def fun_name(problem):
    """The function of a problem ("<fun>_far" starts <fun> far from the root)."""
    return problem[:-4] if problem.endswith("_far") else problem


def args_of(problem):
    problem = fun_name(problem)
    return {"cos": (), "cos_aux": (), "affine_tree": (D["A_contr"], D["b_contr"]),
            "cubic": (), "cos_minus": (0.5,), "square": (2.0,),
            "cubic_system": (D["A_sys"], D["b_sys"]), "scipy_system": (),
            "tree_system": (D["A_sys"], D["b_sys"])}[problem]


def init_params(problem):
    if problem in ("cos", "cos_aux"):
        return np.linspace(-1.0, 2.0, 6)
    if problem == "affine_tree":
        return {"u": np.zeros(3), "v": np.ones((2, 2))}
    if problem == "cubic_system":
        return np.zeros(6)
    if problem == "cubic_system_far":
        return 5.0 * np.linspace(-1.0, 1.0, 6)
    if problem == "scipy_system":
        return np.zeros(2)
    if problem == "scipy_system_far":      # many backtracking steps
        return np.array([5.0, 1.0])
    if problem == "tree_system":
        return {"a": np.zeros(2), "b": np.full((2, 2), 0.5)}
    return None        # Bisection


# name -> (solver class, problem, solver kwargs)
CASES = {
    # -- FixedPointIteration
    "fpi_cos": ("FixedPointIteration", "cos", dict()),
    "fpi_cos_tight": ("FixedPointIteration", "cos", dict(tol=1e-12, maxiter=500)),
    "fpi_cos_aux": ("FixedPointIteration", "cos_aux", dict(tol=1e-10, maxiter=500, has_aux=True)),
    "fpi_affine_tree": ("FixedPointIteration", "affine_tree", dict(tol=1e-10, maxiter=1000)),
    "fpi_maxiter": ("FixedPointIteration", "affine_tree", dict(tol=1e-10, maxiter=17)),
    # -- AndersonAcceleration
    "aa_cos": ("AndersonAcceleration", "cos", dict()),
    "aa_cos_tight": ("AndersonAcceleration", "cos", dict(tol=1e-12, history_size=3,
                                                         mixing_frequency=2)),
    "aa_cos_aux": ("AndersonAcceleration", "cos_aux", dict(tol=1e-10, has_aux=True)),
    "aa_affine_tree": ("AndersonAcceleration", "affine_tree", dict(tol=1e-10)),
    "aa_affine_tree_beta": ("AndersonAcceleration", "affine_tree",
                            dict(tol=1e-10, history_size=4, beta=0.8, ridge=1e-7,
                                 maxiter=300)),
    # -- Bisection
    "bis_cubic": ("Bisection", "cubic", dict(lower=2.0, upper=3.0)),
    "bis_cubic_tight": ("Bisection", "cubic", dict(lower=2.0, upper=3.0, tol=1e-12,
                                                   maxiter=60)),
    "bis_cos_minus": ("Bisection", "cos_minus", dict(lower=0.0, upper=2.0, tol=1e-10,
                                                     maxiter=100)),
    "bis_square": ("Bisection", "square", dict(lower=0.0, upper=2.0)),
    # -- Broyden (npopt gets the line search's gradient from the analytic jac)
    "broyden_default": ("Broyden", "cubic_system", dict()),
    "broyden_tight": ("Broyden", "cubic_system", dict(tol=1e-10, maxiter=100)),
    "broyden_history": ("Broyden", "cubic_system", dict(tol=1e-10, maxiter=100,
                                                        history_size=3)),
    "broyden_fixed": ("Broyden", "cubic_system", dict(tol=1e-10, maxiter=200, stepsize=0.7)),
    "broyden_armijo": ("Broyden", "cubic_system", dict(tol=1e-10, maxiter=100,
                                                       condition="armijo")),
    "broyden_strong_wolfe": ("Broyden", "cubic_system", dict(tol=1e-10, maxiter=100,
                                                             condition="strong-wolfe")),
    "broyden_scipy": ("Broyden", "scipy_system", dict(tol=1e-10, maxiter=100)),
    "broyden_tree": ("Broyden", "tree_system", dict(tol=1e-10, maxiter=100)),
    "broyden_far": ("Broyden", "cubic_system_far", dict(tol=1e-10, maxiter=100)),
    "broyden_far_armijo": ("Broyden", "cubic_system_far", dict(tol=1e-10, maxiter=100,
                                                               condition="armijo")),
    "broyden_scipy_far": ("Broyden", "scipy_system_far", dict(tol=1e-10, maxiter=100)),
    "broyden_scipy_far_goldstein": ("Broyden", "scipy_system_far",
                                    dict(tol=1e-10, maxiter=100, condition="goldstein",
                                         decrease_factor=0.5, increase_factor=2.0)),
    # maxls=2: line searches fail; the run goes on with the last trial ...
    "broyden_ls_fails": ("Broyden", "scipy_system_far", dict(tol=1e-10, maxiter=60, maxls=2)),
    # ... or stops at the first failure
    "broyden_ls_fails_stop": ("Broyden", "scipy_system_far",
                              dict(tol=1e-10, maxiter=60, maxls=2,
                                   stop_if_linesearch_fails=True)),
    # -- AndersonWrapper around GradientDescent on solver_problems' ridge
    "aw_gd_ridge": ("AndersonWrapper", "ridge",
                    dict(inner=dict(tol=1e-8, maxiter=500))),
    "aw_gd_ridge_fixed": ("AndersonWrapper", "ridge",
                          dict(history_size=3, mixing_frequency=1, beta=0.9,
                               inner=dict(tol=1e-8, maxiter=2000, acceleration=False,
                                          stepsize=0.3))),
}


def ridge_data():
    sp = _sp()
    Dr = sp.data()
    return sp, (0.1, Dr["X"], Dr["y"]), np.zeros(Dr["d"])


# ---- jax.numpy problems (inside a function: this module imports without JAX) --

def jnp_problems():
    import jax.numpy as jnp

    def cos(x):
        return jnp.cos(x)

    def cos_aux(x):
        y = jnp.cos(x)
        return y, {"sum": jnp.sum(y)}

    def affine_tree(p, A, b):
        z = jnp.concatenate([p["u"], p["v"].ravel()])
        z = A @ z + b
        return {"u": z[:3], "v": z[3:].reshape(2, 2)}

    def cubic(x):
        return x ** 3 - 2 * x - 5

    def cos_minus(x, a):
        return jnp.cos(x) - a * x

    def square(x, a):
        return x ** 2 - a

    def cubic_system(x, A, b):
        return A @ x + 0.1 * x ** 3 - b

    def scipy_system(x):
        return jnp.array([x[0] + 0.5 * (x[0] - x[1]) ** 3 - 1.0,
                          0.5 * (x[1] - x[0]) ** 3 + x[1]])

    def tree_system(p, A, b):
        z = jnp.concatenate([p["a"], p["b"].ravel()])
        F = A @ z + 0.1 * z ** 3 - b
        return {"a": F[:2], "b": F[2:].reshape(2, 2)}

    return dict(cos=cos, cos_aux=cos_aux, affine_tree=affine_tree, cubic=cubic,
                cos_minus=cos_minus, square=square, cubic_system=cubic_system,
                scipy_system=scipy_system, tree_system=tree_system)


def main():
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import jaxopt
    from importlib.metadata import version

    J = jnp_problems()
    to_jnp = lambda t: jax.tree_util.tree_map(jnp.asarray, t)  # noqa: E731
    arrays, meta = {}, {}
    for name, (cls, problem, kw) in CASES.items():
        kw = dict(kw)
        if cls == "AndersonWrapper":
            sp, args, x0 = ridge_data()
            inner = jaxopt.GradientDescent(fun=sp.jnp_funs()["ridge"], **kw.pop("inner"))
            solver = jaxopt.AndersonWrapper(solver=inner, **kw)
            sol, state = solver.run(jnp.asarray(x0), *to_jnp(args))
        else:
            fun = J[fun_name(problem)]
            args = to_jnp(args_of(problem))
            x0 = init_params(problem)
            if cls == "Bisection":
                solver = jaxopt.Bisection(optimality_fun=fun, **kw)
            elif cls == "Broyden":
                solver = jaxopt.Broyden(fun=fun, **kw)
            else:
                solver = getattr(jaxopt, cls)(fixed_point_fun=fun, **kw)
            sol, state = solver.run(None if x0 is None else to_jnp(x0), *args)
        for i, leaf in enumerate(jax.tree_util.tree_leaves(sol)):
            arrays[f"{name}/params_{i}"] = np.asarray(leaf)
        m = dict(iter_num=int(state.iter_num), error=float(state.error))
        for field in ("num_fun_eval", "num_linesearch_iter", "stepsize"):
            if hasattr(state, field):
                m[field] = float(getattr(state, field))
        if hasattr(state, "failed_linesearch"):
            m["failed_linesearch"] = bool(state.failed_linesearch)
        if cls == "AndersonWrapper":
            m["inner_iter_num"] = int(state.solver_state.iter_num)
            m["inner_stepsize"] = float(state.solver_state.stepsize)
        meta[name] = m
        print(f"{name:22s} " + "  ".join(f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}"
                                         for k, v in m.items()))
    arrays["meta"] = np.array(json.dumps(dict(
        cases=meta, versions=dict(jax=jax.__version__, jaxopt=version("jaxopt")), x64=True)))
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
