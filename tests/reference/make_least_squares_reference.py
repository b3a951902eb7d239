"""The nonlinear least-squares problems and cases, and the generator of their
jaxopt 0.8.5 reference runs (tests/reference/data/jaxopt/least_squares.npz).

    python tests/reference/make_least_squares_reference.py      (~1 min)

The module imports without JAX: the tests read ``PROBLEMS`` and ``CASES``
from it; only ``main`` needs jax + jaxopt.

Each problem is written twice, residuals in NumPy (with the analytic
Jacobian, for npopt's ``jac_fun``) and in jax.numpy (jaxopt differentiates
it), on the same data. ``check_problems`` checks the NumPy Jacobians against
``jax.jacfwd``. Stored per case (x64, jitted ``run``): ``<case>/params_<i>``
(the final params' leaves, jax leaf order = npopt's) and, in ``meta``,
iter_num, value, error and (LM) damping_factor.
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data", "jaxopt", "least_squares.npz")
if HERE not in sys.path:
    sys.path.insert(0, HERE)
# the NumPy side uses no BLAS and no SIMD-dispatched ufunc (np.exp, np.tanh):
# the same residuals, bit for bit, on every CPU
import fixed_order as fo  # noqa: E402


# ---- data -------------------------------------------------------------------

def _exp_data():
    rng = np.random.default_rng(0)
    t = np.linspace(0.0, 4.0, 30)
    y = 2.5 * fo.exp(-1.3 * t) + 0.5 + 0.05 * rng.standard_normal(t.size)
    return t, y


def _tree_data():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((20, 3))
    y = fo.tanh(fo.mv(X, np.array([0.7, -0.4, 0.2])) + 0.1) + 0.01 * rng.standard_normal(20)
    return X, y


# ---- NumPy residuals and Jacobians --------------------------------------------

def exp_res_np(x, t, y):
    """x0 exp(-x1 t) + x2 - y: an exponential decay fitted to noisy data."""
    return x[0] * fo.exp(-x[1] * t) + x[2] - y


def exp_jac_np(x, t, y):
    e = fo.exp(-x[1] * t)
    return np.stack([e, -x[0] * t * e, np.ones_like(t)], axis=1)


def rosen_res_np(x):
    """Rosenbrock as residuals: (10 (x1 - x0^2), 1 - x0); minimum at (1, 1)."""
    return np.array([10.0 * (x[1] - x[0] * x[0]), 1.0 - x[0]])


def rosen_jac_np(x):
    return np.array([[-20.0 * x[0], 10.0], [-1.0, 0.0]])


def tree_res_np(params, X, y):
    """tanh(X w + b) - y with params = {'b': (), 'w': (3,)} (ravel order b, w)."""
    return fo.tanh(fo.mv(X, params["w"]) + params["b"]) - y


def tree_jac_np(params, X, y):
    s = 1.0 - fo.tanh(fo.mv(X, params["w"]) + params["b"]) ** 2
    return np.concatenate([s[:, None], s[:, None] * X], axis=1)


def jnp_funs():
    import jax.numpy as jnp

    def exp_res(x, t, y):
        return x[0] * jnp.exp(-x[1] * t) + x[2] - y

    def rosen_res(x):
        return jnp.array([10.0 * (x[1] - x[0] ** 2), 1.0 - x[0]])

    def tree_res(params, X, y):
        return jnp.tanh(X @ params["w"] + params["b"]) - y
    return dict(exp=exp_res, rosen=rosen_res, tree=tree_res)


# name -> dict(res, jac, args, init)
PROBLEMS = {
    "exp": dict(res=exp_res_np, jac=exp_jac_np, args=_exp_data,
                init=lambda: np.array([1.0, 1.0, 0.0]), solution=None),
    "rosen": dict(res=rosen_res_np, jac=rosen_jac_np, args=lambda: (),
                  init=lambda: np.array([-1.2, 1.0]), solution=np.array([1.0, 1.0])),
    "tree": dict(res=tree_res_np, jac=tree_jac_np, args=_tree_data,
                 init=lambda: {"b": np.asarray(0.0), "w": np.zeros(3)}, solution=None),
}

# case -> (solver, kwargs, problem). The exp fit's tolerances stop at 1e-8:
# below about 1e-9 the loss decrease of an LM step (~1e-18 on a loss of 0.024)
# is at the rounding level, so accepting or rejecting it is decided by the
# last bit (jaxopt rejects four steps that npopt accepts, and iteration counts
# differ while the params agree to 1e-14).
CASES = {
    "gn_exp": ("GaussNewton", dict(), "exp"),
    "gn_rosen": ("GaussNewton", dict(), "rosen"),
    "gn_tree": ("GaussNewton", dict(), "tree"),
    "gn_exp_tol": ("GaussNewton", dict(tol=1e-10, maxiter=50), "exp"),
    "lm_exp": ("LevenbergMarquardt", dict(), "exp"),
    "lm_exp_tight": ("LevenbergMarquardt", dict(tol=1e-8, maxiter=100), "exp"),
    "lm_exp_chol": ("LevenbergMarquardt", dict(materialize_jac=True, solver="cholesky",
                                               tol=1e-8), "exp"),
    "lm_exp_lu": ("LevenbergMarquardt", dict(materialize_jac=True, solver="lu", tol=1e-8), "exp"),
    "lm_exp_inv": ("LevenbergMarquardt", dict(materialize_jac=True, solver="inv", tol=1e-8),
                   "exp"),
    "lm_exp_qr": ("LevenbergMarquardt", dict(materialize_jac=True, solver="qr", tol=1e-8), "exp"),
    "lm_exp_mat_cg": ("LevenbergMarquardt", dict(materialize_jac=True, tol=1e-8), "exp"),
    "lm_exp_damp": ("LevenbergMarquardt", dict(damping_parameter=1e-2, tol=1e-8, maxiter=100),
                    "exp"),
    "lm_exp_mn": ("LevenbergMarquardt", dict(stop_criterion="madsen-nielsen", xtol=1e-8,
                                             gtol=1e-8, maxiter=100), "exp"),
    "lm_rosen": ("LevenbergMarquardt", dict(tol=1e-8, maxiter=100), "rosen"),
    "lm_rosen_chol": ("LevenbergMarquardt", dict(materialize_jac=True, solver="cholesky",
                                                 damping_parameter=1e-3, tol=1e-8,
                                                 maxiter=100), "rosen"),
    "lm_rosen_geo": ("LevenbergMarquardt", dict(materialize_jac=True, solver="cholesky",
                                                geodesic=True, tol=1e-8, maxiter=100), "rosen"),
    "lm_exp_geo_cg": ("LevenbergMarquardt", dict(geodesic=True, tol=1e-8, maxiter=100), "exp"),
}


def check_problems():
    import jax
    import jax.numpy as jnp
    funs = jnp_funs()
    for name, p in PROBLEMS.items():
        args = p["args"]()
        x0 = p["init"]()
        jargs = tuple(jnp.asarray(a) for a in args)
        r_np = p["res"](x0, *args)
        r_j = funs[name](jax.tree_util.tree_map(jnp.asarray, x0), *jargs)
        assert np.allclose(r_np, r_j, rtol=1e-13, atol=1e-13), name
        J = jax.jacfwd(funs[name])(jax.tree_util.tree_map(jnp.asarray, x0), *jargs)
        if isinstance(J, dict):
            J = np.concatenate([np.reshape(J[k], (len(r_np), -1)) for k in sorted(J)], axis=1)
        assert np.allclose(p["jac"](x0, *args), J, rtol=1e-13, atol=1e-13), name


def main():
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import jaxopt

    check_problems()
    funs = jnp_funs()
    arrays, meta = {}, {}
    for case, (cls, kw, prob) in CASES.items():
        p = PROBLEMS[prob]
        args = tuple(jnp.asarray(a) for a in p["args"]())
        x0 = jax.tree_util.tree_map(jnp.asarray, p["init"]())
        solver = getattr(jaxopt, cls)(residual_fun=funs[prob], **kw)
        params, state = jax.jit(solver.run)(x0, *args)
        for i, leaf in enumerate(jax.tree_util.tree_leaves(params)):
            arrays[f"{case}/params_{i}"] = np.asarray(leaf)
        m = dict(iter_num=int(state.iter_num), value=float(state.value),
                 error=float(state.error))
        if cls == "LevenbergMarquardt":
            m["damping_factor"] = float(state.damping_factor)
        meta[case] = m
        print(case, m)
    arrays["meta"] = np.asarray(json.dumps(meta))
    np.savez_compressed(OUT, **arrays)
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
