"""Regenerate jaxopt 0.8.5's implicit Jacobians of solutions
(tests/reference/data/jaxopt/implicit_diff.npz). Needs jax + jaxopt; x64.

    python tests/reference/make_implicit_diff_reference.py

Each problem stores its data (``<name>/in_<key>``) and ``jax.jacrev`` of a
jitted jaxopt run with ``implicit_diff=True`` with respect to the arguments
listed (``<name>/jac_<argnum>``, laid out as jax.jacobian's: sol.shape +
arg.shape). The implicit linear systems use ``solve_lu`` (exact up to
rounding), so the references are accurate to about 1e-13 and the tests can
hold npopt to its own accuracy (1e-9 exact derivatives, 1e-6 finite
differences). The solvers run to tol 1e-12 so that the solution is a root
to that accuracy.
"""
import os
import sys
from functools import partial

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import jaxopt  # noqa: E402
import numpy as np  # noqa: E402
from jaxopt import linear_solve  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data", "jaxopt", "implicit_diff.npz")
sys.path.insert(0, HERE)
# the NumPy data without BLAS/LAPACK: the same bits on every CPU
import fixed_order as fo  # noqa: E402

LU = linear_solve.solve_lu
# Fixed steps 1/L without acceleration: FISTA's backtracking stalls near
# ||grad|| ~ 1e-7 on these problems (jaxopt and npopt alike), and the
# theorem needs a root; plain (proximal) gradient steps converge linearly.
KW = dict(tol=1e-13, maxiter=20000, implicit_diff_solve=LU)


def data():
    """The problems' data (NumPy, float64), shared with the tests via the npz."""
    rng = np.random.default_rng(20240606)
    D = {}
    # ridge / lasso / simplex least squares: 30 samples, 6 features
    X = rng.standard_normal((30, 6))
    w_true = np.array([1.5, -2.0, 0.0, 0.0, 0.7, 0.0])
    y = fo.mv(X, w_true) + 0.3 * rng.standard_normal(30)
    D["ls"] = dict(X=X, y=y, lam=np.float64(2.5), l1=np.float64(4.0), scale=np.float64(1.0))
    # simplex-constrained least squares: targets built from a mixture on the simplex
    Xs = rng.standard_normal((25, 5))
    ys = fo.mv(Xs, np.array([0.5, 0.3, 0.2, 0.0, 0.0])) + 0.05 * rng.standard_normal(25)
    D["simplex"] = dict(X=Xs, y=ys, scale=np.float64(1.0))
    # fixed point x = tanh(W x + b), ||W|| < 1 (a contraction)
    W = rng.standard_normal((5, 5))
    W *= 0.5 / fo.spectral_norm(W)
    D["fp"] = dict(W=W, b=rng.standard_normal(5))
    # equality-constrained QP: min 1/2 x^T Q x + c^T x  s.t.  A x = b
    M = rng.standard_normal((5, 5))
    D["qp"] = dict(Q=fo.mm(M, M.T) + np.eye(5), c=rng.standard_normal(5),
                   A=rng.standard_normal((2, 5)), b=rng.standard_normal(2))
    return D


def ridge(w, lam, X, y):
    r = X @ w - y
    return 0.5 * jnp.vdot(r, r) + 0.5 * lam * jnp.vdot(w, w)


def least_squares(w, X, y):
    r = X @ w - y
    return 0.5 * jnp.vdot(r, r)


def fixed_point(x, W, b):
    return jnp.tanh(W @ x + b)


def jac(fun, argnums, *args):
    out = jax.jacrev(fun, argnums=argnums)(*args)
    return [np.asarray(o) for o in out]


def main():
    D = data()
    arrays = {}

    def put(name, inputs, jacs, argnums, run):
        sol, state = run
        for k, v in inputs.items():
            arrays[f"{name}/in_{k}"] = np.asarray(v)
        for a, J in zip(argnums, jacs):
            arrays[f"{name}/jac_{a}"] = J
        arrays[f"{name}/sol"] = np.asarray(sol)
        iters = int(getattr(state, "iter_num", -1))
        error = float(getattr(state, "error", np.nan))
        print(f"{name:12s} iters {iters:4d} error {error:.1e} sol {np.asarray(sol).round(6)} "
              + " ".join(f"jac_{a} {J.shape}" for a, J in zip(argnums, jacs)))

    # 1. ridge through GradientDescent: run(w0, lam, X, y)
    d = D["ls"]
    step = 1.0 / (fo.spectral_norm(d["X"]) ** 2 + d["lam"])
    gd = jaxopt.GradientDescent(fun=ridge, stepsize=step, acceleration=False, **KW)
    w0 = jnp.zeros(6)
    f = lambda lam, X, y: gd.run(w0, lam, X, y).params  # noqa: E731
    sol = gd.run(w0, d["lam"], d["X"], d["y"])
    put("ridge_gd", dict(X=d["X"], y=d["y"], lam=d["lam"], stepsize=step),
        jac(f, (0, 1, 2), d["lam"], d["X"], d["y"]), (1, 2, 3), sol)

    # 2. lasso through ProximalGradient: run(w0, l1reg, X, y)
    step = 1.0 / fo.spectral_norm(d["X"]) ** 2
    pg = jaxopt.ProximalGradient(fun=least_squares, prox=jaxopt.prox.prox_lasso,
                                 stepsize=step, acceleration=False, **KW)
    f = lambda l1, X, y: pg.run(w0, l1, X, y).params  # noqa: E731
    sol = pg.run(w0, d["l1"], d["X"], d["y"])
    put("lasso_pg", dict(X=d["X"], y=d["y"], l1=d["l1"], stepsize=step),
        jac(f, (0, 1, 2), d["l1"], d["X"], d["y"]), (1, 2, 3), sol)

    # 3. simplex-constrained least squares through ProjectedGradient:
    #    run(w0, scale, X, y). ProjectedGradient drops implicit_diff_solve
    #    (catalog 4.2: always normal CG at tol 1e-5), so set it on the inner
    #    ProximalGradient, whose run reads it.
    d = D["simplex"]
    step = 1.0 / fo.spectral_norm(d["X"]) ** 2
    pj = jaxopt.ProjectedGradient(fun=least_squares,
                                  projection=jaxopt.projection.projection_simplex,
                                  stepsize=step, acceleration=False, tol=1e-13, maxiter=20000)
    pj._pg.implicit_diff_solve = LU
    x0 = jnp.ones(5) / 5
    f = lambda s, X, y: pj.run(x0, s, X, y).params  # noqa: E731
    sol = pj.run(x0, d["scale"], d["X"], d["y"])
    put("simplex_pg", dict(X=d["X"], y=d["y"], scale=d["scale"], stepsize=step),
        jac(f, (0, 1, 2), d["scale"], d["X"], d["y"]), (1, 2, 3), sol)

    # 4. fixed point x = tanh(W x + b) through FixedPointIteration: run(x0, W, b)
    d = D["fp"]
    fpi = jaxopt.FixedPointIteration(fixed_point_fun=fixed_point, tol=1e-13, maxiter=2000,
                                     implicit_diff_solve=LU)
    f = lambda W, b: fpi.run(jnp.zeros(5), W, b).params  # noqa: E731
    sol = fpi.run(jnp.zeros(5), d["W"], d["b"])
    put("fixed_point", dict(W=d["W"], b=d["b"]), jac(f, (0, 1), d["W"], d["b"]), (1, 2), sol)

    # 5. equality-constrained QP through its KKT conditions:
    #    EqualityConstrainedQP.run(params_obj=(Q, c), params_eq=(A, b)); the
    #    Jacobian of the primal solution with respect to c and b
    d = D["qp"]
    qp = jaxopt.EqualityConstrainedQP(
        tol=1e-13, implicit_diff_solve=partial(linear_solve.solve_gmres, tol=1e-14))
    f = lambda c, b: qp.run(params_obj=(d["Q"], c), params_eq=(d["A"], b)).params.primal  # noqa
    sol = (f(d["c"], d["b"]), None)
    put("qp_kkt", dict(Q=d["Q"], c=d["c"], A=d["A"], b=d["b"]),
        jac(f, (0, 1), d["c"], d["b"]), ("c", "b"), sol)

    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({os.path.getsize(OUT) / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
