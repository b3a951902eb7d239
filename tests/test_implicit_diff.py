"""Implicit differentiation (npopt.implicit_diff and the solvers' jacobian /
jvp / vjp) against closed forms, finite differences of the whole solve, and
jaxopt 0.8.5's implicit Jacobians (tests/reference/data/jaxopt/implicit_diff.npz,
made by tests/reference/make_implicit_diff_reference.py).

Tolerances (issue 6): exact user-supplied derivatives 1e-9 relative;
finite-difference derivatives of the optimality function 1e-6.
"""
import os
import warnings
from functools import partial

import numpy as np
import pytest

import npopt
from npopt import implicit_diff as idf
from npopt import linear_solve
from npopt.solvers.anderson import AndersonAcceleration
from npopt.solvers.bisection import Bisection
from npopt.solvers.fixed_point import FixedPointIteration
from npopt.solvers.proximal_gradient import GradientDescent, ProjectedGradient, ProximalGradient

from conftest import rel_err
# the problems' functions without BLAS or SIMD-dispatched tanh: the same bits
# on every CPU (the closed forms they are compared with may use np.linalg)
from reference.fixed_order import mm, mv, rmv, solve as fo_solve, tanh, vdot

REF = os.path.join(os.path.dirname(__file__), "reference", "data", "jaxopt", "implicit_diff.npz")
EXACT, FD = 1e-9, 1e-6


@pytest.fixture(scope="module")
def ref():
    with np.load(REF) as z:
        return {k: z[k] for k in z.files}


def inputs(ref, name):
    p = f"{name}/in_"
    return {k[len(p):]: (ref[k][()] if ref[k].ndim == 0 else ref[k])
            for k in ref if k.startswith(p)}


def solver_kw(tol=1e-13):
    return dict(tol=tol, maxiter=20000, acceleration=False)


# --------------------------------------------------------------------------
# Ridge regression: F(w, lam, X, y) = X^T (X w - y) + lam w.

def ridge_fun(w, lam, X, y):
    r = mv(X, w) - y
    return 0.5 * vdot(r, r) + 0.5 * lam * vdot(w, w)


def ridge_F(w, lam, X, y):
    return rmv(X, mv(X, w) - y) + lam * w


def ridge_jvp(w, args, dw, dargs):
    lam, X, y = args
    dlam, dX, dy = dargs
    out = rmv(X, mv(X, dw)) + lam * dw
    if dlam is not None:
        out = out + dlam * w
    if dX is not None:
        out = out + rmv(dX, mv(X, w) - y) + rmv(X, mv(dX, w))
    if dy is not None:
        out = out - rmv(X, dy)
    return out


def ridge_vjp(w, args, u):
    lam, X, y = args
    r = mv(X, w) - y
    Xu = mv(X, u)
    return rmv(X, Xu) + lam * u, (vdot(u, w), np.outer(r, u) + np.outer(Xu, w), -Xu)


def ridge_closed(lam, X, y):
    return fo_solve(mm(X.T, X) + lam * np.eye(X.shape[1]), rmv(X, y))


def ridge_jac_closed(lam, X, y):
    """dw*/dlam = -(X^T X + lam I)^{-1} w*, dw*/dy = (X^T X + lam I)^{-1} X^T."""
    H = X.T @ X + lam * np.eye(X.shape[1])
    w = np.linalg.solve(H, X.T @ y)
    return -np.linalg.solve(H, w), np.linalg.solve(H, X.T)


def ridge_solver(init_params, lam, X, y):
    return ridge_closed(lam, X, y)


def ridge_gd(ref, exact, **kw):
    d = inputs(ref, "ridge_gd")
    solver = GradientDescent(fun=ridge_fun, grad=ridge_F, stepsize=float(d["stepsize"]),
                             **solver_kw(), **kw)
    if exact:   # the solver field is being added (SPEC 5); an attribute meanwhile
        solver.optimality_jvp, solver.optimality_vjp = ridge_jvp, ridge_vjp
    return solver, d


@pytest.mark.parametrize("exact", [True, False])
def test_ridge_decorated_closed_form(ref, exact):
    d = inputs(ref, "ridge_gd")
    kw = dict(optimality_jvp=ridge_jvp, optimality_vjp=ridge_vjp) if exact else {}
    solver = idf.custom_root(ridge_F, **kw)(ridge_solver)
    lam, X, y = d["lam"], d["X"], d["y"]
    np.testing.assert_array_equal(solver(None, lam, X, y), ridge_closed(lam, X, y))
    J_lam, J_y = solver.jacobian(None, lam, X, y, argnums=(1, 3))
    C_lam, C_y = ridge_jac_closed(lam, X, y)
    tol = EXACT if exact else FD
    assert rel_err(J_lam, C_lam) <= tol
    assert rel_err(J_y, C_y) <= tol
    assert J_lam.shape == (6,) and J_y.shape == (6, 30)


@pytest.mark.parametrize("exact", [True, False])
@pytest.mark.parametrize("solve", [None, "cg", "gmres", "normal_cg", "lu", "bicgstab"])
def test_ridge_gradient_descent_closed_form(ref, exact, solve):
    # finite-difference products carry ~1e-11 of noise: ask for no less than 1e-9
    tol = {} if solve == "lu" else {"tol": 1e-11 if exact else 1e-9}
    solve = None if solve is None else partial(getattr(linear_solve, f"solve_{solve}"), **tol)
    solver, d = ridge_gd(ref, exact, implicit_diff_solve=solve)
    lam, X, y = d["lam"], d["X"], d["y"]
    w0 = np.zeros(6)
    C_lam, C_y = ridge_jac_closed(lam, X, y)
    tol = EXACT if exact else FD
    assert rel_err(solver.jacobian(w0, lam, X, y), C_lam) <= tol
    assert rel_err(solver.jacobian(w0, lam, X, y, argnums=3), C_y) <= tol


@pytest.mark.parametrize("exact", [True, False])
def test_ridge_vs_jaxopt(ref, exact):
    solver, d = ridge_gd(ref, exact)
    w0 = np.zeros(6)
    sol = solver.run(w0, d["lam"], d["X"], d["y"]).params
    assert rel_err(sol, ref["ridge_gd/sol"]) <= 1e-12
    jacs = solver.jacobian(w0, d["lam"], d["X"], d["y"], argnums=(1, 2, 3))
    for a, J in zip((1, 2, 3), jacs):
        assert J.shape == ref[f"ridge_gd/jac_{a}"].shape
        assert rel_err(J, ref[f"ridge_gd/jac_{a}"]) <= (EXACT if exact else FD), a


def test_ridge_closed_form_vs_jaxopt(ref):
    d = inputs(ref, "ridge_gd")
    C_lam, C_y = ridge_jac_closed(d["lam"], d["X"], d["y"])
    assert rel_err(ref["ridge_gd/jac_1"], C_lam) <= 1e-12
    assert rel_err(ref["ridge_gd/jac_3"], C_y) <= 1e-12


# --------------------------------------------------------------------------
# Lasso through ProximalGradient: F(w) = prox_lasso(w - grad f(w), l1) - w.

def ls_fun(w, X, y):
    r = mv(X, w) - y
    return 0.5 * vdot(r, r)


def ls_grad(w, X, y):
    return rmv(X, mv(X, w) - y)


def lasso_jvp(w, args, dw, dargs):
    l1, X, y = args
    dl1, dX, dy = dargs
    r = mv(X, w) - y
    z = w - rmv(X, r)
    D = np.abs(z) > l1
    dz = dw - rmv(X, mv(X, dw))
    if dX is not None:
        dz = dz - rmv(dX, r) - rmv(X, mv(dX, w))
    if dy is not None:
        dz = dz + rmv(X, dy)
    out = np.where(D, dz, 0.0) - dw
    if dl1 is not None:
        out = out - np.where(D, np.sign(z), 0.0) * dl1
    return out


def lasso_vjp(w, args, u):
    l1, X, y = args
    r = mv(X, w) - y
    z = w - rmv(X, r)
    Du = np.where(np.abs(z) > l1, u, 0.0)
    XDu = mv(X, Du)
    w_params = Du - rmv(X, XDu) - u
    return w_params, (-np.sum(Du * np.sign(z)), -(np.outer(r, Du) + np.outer(XDu, w)), XDu)


def lasso(ref, exact, **kw):
    d = inputs(ref, "lasso_pg")
    solver = ProximalGradient(fun=ls_fun, grad=ls_grad, prox=npopt.prox.prox_lasso,
                              stepsize=float(d["stepsize"]), **solver_kw(), **kw)
    if exact:
        solver.optimality_jvp, solver.optimality_vjp = lasso_jvp, lasso_vjp
    return solver, d


@pytest.mark.parametrize("exact", [True, False])
def test_lasso_closed_form_on_active_set(ref, exact):
    solver, d = lasso(ref, exact)
    l1, X, y = d["l1"], d["X"], d["y"]
    w = solver.run(np.zeros(6), l1, X, y).params
    S = np.abs(w) > 0
    assert 0 < S.sum() < 6
    # on the active set: X_S^T (X_S w_S - y) + l1 sign(w_S) = 0
    G = X[:, S].T @ X[:, S]
    C_l1 = np.zeros(6)
    C_l1[S] = -np.linalg.solve(G, np.sign(w[S]))
    C_y = np.zeros((6, 30))
    C_y[S] = np.linalg.solve(G, X[:, S].T)
    J_l1, J_y = solver.jacobian(np.zeros(6), l1, X, y, argnums=(1, 3))
    tol = EXACT if exact else FD
    assert rel_err(J_l1, C_l1) <= tol
    assert rel_err(J_y, C_y) <= tol
    if exact:    # inactive coordinates do not move at all
        assert np.all(J_l1[~S] == 0)


@pytest.mark.parametrize("exact", [True, False])
def test_lasso_vs_jaxopt(ref, exact):
    solver, d = lasso(ref, exact)
    jacs = solver.jacobian(np.zeros(6), d["l1"], d["X"], d["y"], argnums=(1, 2, 3))
    for a, J in zip((1, 2, 3), jacs):
        assert rel_err(J, ref[f"lasso_pg/jac_{a}"]) <= (EXACT if exact else FD), a


# --------------------------------------------------------------------------
# Simplex-constrained least squares through ProjectedGradient:
# F(w) = projection_simplex(w - grad f(w), s) - w.

def _simplex_jacobian(z, s):
    """Jacobian of projection_simplex(z, s) with respect to z and to s."""
    p = npopt.projection.projection_simplex(z, s)
    m = (p > 0).astype(float)
    k = m.sum()
    return np.diag(m) - np.outer(m, m) / k, m / k


def simplex_jvp(w, args, dw, dargs):
    s, X, y = args
    ds, dX, dy = dargs
    r = mv(X, w) - y
    z = w - rmv(X, r)
    Jz, Js = _simplex_jacobian(z, s)
    dz = dw - rmv(X, mv(X, dw))
    if dX is not None:
        dz = dz - rmv(dX, r) - rmv(X, mv(dX, w))
    if dy is not None:
        dz = dz + rmv(X, dy)
    out = mv(Jz, dz) - dw
    return out if ds is None else out + Js * ds


def simplex_vjp(w, args, u):
    s, X, y = args
    r = mv(X, w) - y
    z = w - rmv(X, r)
    Jz, Js = _simplex_jacobian(z, s)
    v = rmv(Jz, u)
    Xv = mv(X, v)
    return v - rmv(X, Xv) - u, (vdot(Js, u), -(np.outer(r, v) + np.outer(Xv, w)), Xv)


def simplex(ref, exact):
    d = inputs(ref, "simplex_pg")
    solver = ProjectedGradient(fun=ls_fun, grad=ls_grad,
                               projection=npopt.projection.projection_simplex,
                               stepsize=float(d["stepsize"]), **solver_kw())
    if exact:
        solver.optimality_jvp, solver.optimality_vjp = simplex_jvp, simplex_vjp
    return solver, d


@pytest.mark.parametrize("exact", [True, False])
def test_simplex_projected_gradient(ref, exact):
    solver, d = simplex(ref, exact)
    s, X, y = d["scale"], d["X"], d["y"]
    x0 = np.ones(5) / 5
    w = solver.run(x0, s, X, y).params
    S = w > 0
    assert 0 < S.sum() < 5
    # KKT on the support: [[X_S^T X_S, 1], [1^T, 0]] [dw_S; dnu] = [X_S^T dy; ds]
    k = int(S.sum())
    K = np.block([[X[:, S].T @ X[:, S], np.ones((k, 1))], [np.ones((1, k)), np.zeros((1, 1))]])
    C_y = np.zeros((5, 25))
    C_y[S] = np.linalg.solve(K, np.vstack([X[:, S].T, np.zeros((1, 25))]))[:k]
    C_s = np.zeros(5)
    C_s[S] = np.linalg.solve(K, np.r_[np.zeros(k), 1.0])[:k]
    jacs = solver.jacobian(x0, s, X, y, argnums=(1, 2, 3))
    tol = EXACT if exact else FD
    assert rel_err(jacs[0], C_s) <= tol
    assert rel_err(jacs[2], C_y) <= tol
    for a, J in zip((1, 2, 3), jacs):
        assert rel_err(J, ref[f"simplex_pg/jac_{a}"]) <= tol, a


# --------------------------------------------------------------------------
# Fixed point x = tanh(W x + b): J_b = (I - D W)^{-1} D, D = diag(1 - x^2).

def fp_map(x, W, b):
    return tanh(mv(W, x) + b)


def fp_closed(x, W):
    D = np.diag(1 - x ** 2)
    Jb = np.linalg.solve(np.eye(len(x)) - D @ W, D)
    return np.einsum("ij,k->ijk", Jb, x), Jb


def fp_optimality_jvp(x, args, dx, dargs):   # F = T(x) - x
    W, b = args
    dW, db = dargs
    t = mv(W, dx)
    if dW is not None:
        t = t + mv(dW, x)
    if db is not None:
        t = t + db
    return (1 - fp_map(x, W, b) ** 2) * t - dx


def fp_optimality_vjp(x, args, u):
    W, b = args
    v = (1 - fp_map(x, W, b) ** 2) * u
    return rmv(W, v) - u, (np.outer(v, x), v)


@pytest.mark.parametrize("exact", [True, False])
def test_custom_fixed_point(ref, exact):
    d = inputs(ref, "fixed_point")
    kw = dict(optimality_jvp=fp_optimality_jvp, optimality_vjp=fp_optimality_vjp) if exact else {}

    @idf.custom_fixed_point(fp_map, **kw)
    def solve_fp(x0, W, b):
        return FixedPointIteration(fixed_point_fun=fp_map, tol=1e-14, maxiter=1000).run(
            x0, W, b).params

    x = solve_fp(np.zeros(5), d["W"], d["b"])
    C_W, C_b = fp_closed(x, d["W"])
    J_W, J_b = solve_fp.jacobian(np.zeros(5), d["W"], d["b"], argnums=(1, 2))
    tol = EXACT if exact else FD
    assert rel_err(J_b, C_b) <= tol and rel_err(J_W, C_W) <= tol
    assert rel_err(J_W, ref["fixed_point/jac_1"]) <= tol
    assert rel_err(J_b, ref["fixed_point/jac_2"]) <= tol


@pytest.mark.parametrize("cls", [FixedPointIteration, AndersonAcceleration])
def test_fixed_point_solvers_vs_jaxopt(ref, cls):
    d = inputs(ref, "fixed_point")
    solver = cls(fixed_point_fun=fp_map, tol=1e-14, maxiter=1000)
    J_W, J_b = solver.jacobian(np.zeros(5), d["W"], d["b"], argnums=(1, 2))
    assert rel_err(J_W, ref["fixed_point/jac_1"]) <= FD
    assert rel_err(J_b, ref["fixed_point/jac_2"]) <= FD


# --------------------------------------------------------------------------
# An equality-constrained QP through its KKT conditions (a pytree solution).

def kkt_F(sol, Q, c, A, b):
    x, nu = sol.primal, sol.dual_eq
    return npopt.KKTSolution(mv(Q, x) + c + rmv(A, nu), mv(A, x) - b)


def kkt_jvp(sol, args, dsol, dargs):
    Q, c, A, b = args
    dQ, dc, dA, db = dargs
    assert dQ is None and dA is None
    s = mv(Q, dsol.primal) + rmv(A, dsol.dual_eq) + (0 if dc is None else dc)
    return npopt.KKTSolution(s, mv(A, dsol.primal) - (0 if db is None else db))


def kkt_vjp(sol, args, w):
    Q, c, A, b = args
    return (npopt.KKTSolution(rmv(Q, w.primal) + rmv(A, w.dual_eq), mv(A, w.primal)),
            (None, w.primal, None, -w.dual_eq))


@pytest.mark.parametrize("exact", [True, False])
def test_qp_kkt(ref, exact):
    d = inputs(ref, "qp_kkt")
    kw = dict(optimality_jvp=kkt_jvp, optimality_vjp=kkt_vjp) if exact else {}
    Q, c, A, b = d["Q"], d["c"], d["A"], d["b"]
    K = np.block([[Q, A.T], [A, np.zeros((2, 2))]])

    # symmetric but indefinite: GMRES, not CG
    gmres = partial(linear_solve.solve_gmres, tol=1e-12 if exact else 1e-9)

    @idf.custom_root(kkt_F, solve=gmres, **kw)
    def qp(init, Q, c, A, b):
        z = fo_solve(K, np.r_[-c, b])
        return npopt.KKTSolution(z[:5], z[5:])

    sol = qp(None, Q, c, A, b)
    assert rel_err(sol.primal, ref["qp_kkt/sol"]) <= 1e-12
    J = qp.jacobian(None, Q, c, A, b, argnums=(2, 4))   # jax's layout: sol's tree of tuples
    assert isinstance(J, npopt.KKTSolution) and J.dual_ineq is None
    (J_c, J_b), (D_c, D_b) = J.primal, J.dual_eq
    Kinv = np.linalg.inv(K)
    tol = EXACT if exact else FD
    assert rel_err(J_c, -Kinv[:5, :5]) <= tol and rel_err(D_c, -Kinv[5:, :5]) <= tol
    assert rel_err(J_b, Kinv[:5, 5:]) <= tol and rel_err(D_b, Kinv[5:, 5:]) <= tol
    assert rel_err(J_c, ref["qp_kkt/jac_c"]) <= tol
    assert rel_err(J_b, ref["qp_kkt/jac_b"]) <= tol


# --------------------------------------------------------------------------
# VJP/JVP consistency and finite differences of the whole solve.

@pytest.mark.parametrize("problem", ["ridge", "lasso", "simplex"])
@pytest.mark.parametrize("exact", [True, False])
def test_vjp_jvp_consistency(ref, problem, exact):
    solver, d = {"ridge": ridge_gd, "lasso": lasso, "simplex": simplex}[problem](ref, exact)
    hyper = {"ridge": "lam", "lasso": "l1", "simplex": "scale"}[problem]
    args = (d[hyper], d["X"], d["y"])
    x0 = np.ones(d["X"].shape[1]) / d["X"].shape[1]
    rng = np.random.default_rng(0)
    tX, ty = rng.standard_normal(d["X"].shape), rng.standard_normal(d["y"].shape)
    v = rng.standard_normal(x0.shape)
    Ju = solver.jvp(x0, *args, tangents=(0.3, tX, ty), argnums=(1, 2, 3))
    vJ = solver.vjp(x0, *args, cotangent=v, argnums=(1, 2, 3))
    lhs = v @ Ju
    rhs = 0.3 * vJ[0] + np.sum(vJ[1] * tX) + vJ[2] @ ty
    assert abs(lhs - rhs) <= (EXACT if exact else FD) * max(abs(lhs), 1e-3)
    # and both agree with the dense Jacobian
    J = solver.jacobian(x0, *args, argnums=(1, 2, 3))
    assert rel_err(Ju, 0.3 * J[0] + np.einsum("ijk,jk->i", J[1], tX) + J[2] @ ty) <= \
        (EXACT if exact else FD)
    assert rel_err(vJ[1], np.einsum("i,ijk->jk", v, J[1])) <= (EXACT if exact else FD)


def test_whole_solve_finite_differences(ref):
    """J against central differences of the solution (h = 1e-5: error ~1e-10)."""
    solver, d = ridge_gd(ref, exact=False)
    lam, X, y = d["lam"], d["X"], d["y"]
    w0 = np.zeros(6)
    h = 1e-5
    fd = (solver.run(w0, lam + h, X, y).params - solver.run(w0, lam - h, X, y).params) / (2 * h)
    assert rel_err(solver.jacobian(w0, lam, X, y), fd) <= FD
    # lasso: the active set does not change within h
    solver, d = lasso(ref, exact=False)
    fd = (solver.run(w0, d["l1"] + h, d["X"], d["y"]).params
          - solver.run(w0, d["l1"] - h, d["X"], d["y"]).params) / (2 * h)
    assert rel_err(solver.jacobian(w0, d["l1"], d["X"], d["y"]), fd) <= FD
    # fixed point, along a random direction of W
    d = inputs(ref, "fixed_point")
    solver = FixedPointIteration(fixed_point_fun=fp_map, tol=1e-14, maxiter=1000)
    dW = np.random.default_rng(1).standard_normal((5, 5))
    fd = (solver.run(np.zeros(5), d["W"] + h * dW, d["b"]).params
          - solver.run(np.zeros(5), d["W"] - h * dW, d["b"]).params) / (2 * h)
    assert rel_err(solver.jvp(np.zeros(5), d["W"], d["b"], tangents=dW), fd) <= FD


# --------------------------------------------------------------------------
# The functional API: root_jvp, root_vjp, jvp_vjp_from_jacobian.

@pytest.mark.parametrize("exact", [True, False])
def test_root_jvp_root_vjp(ref, exact):
    d = inputs(ref, "ridge_gd")
    lam, X, y = d["lam"], d["X"], d["y"]
    w = ridge_closed(lam, X, y)
    kw = dict(optimality_jvp=ridge_jvp, optimality_vjp=ridge_vjp) if exact else {}
    C_lam, C_y = ridge_jac_closed(lam, X, y)
    tol = EXACT if exact else FD
    t = idf.root_jvp(ridge_F, w, (lam, X, y), (1.0, None, None), **kw)
    assert rel_err(t, C_lam) <= tol
    ty = np.random.default_rng(2).standard_normal(30)
    t = idf.root_jvp(ridge_F, w, (lam, X, y), (None, np.zeros_like(X), ty), **kw)
    assert rel_err(t, C_y @ ty) <= tol
    v = np.random.default_rng(3).standard_normal(6)
    vjps = idf.root_vjp(ridge_F, w, (lam, X, y), v, **kw)
    assert len(vjps) == 3
    assert rel_err(vjps[0], v @ C_lam) <= tol
    assert rel_err(vjps[2], v @ C_y) <= tol
    assert rel_err(vjps[1], ref["ridge_gd/jac_2"].transpose(1, 2, 0) @ v) <= tol
    only = idf.root_vjp(ridge_F, w, (lam, X, y), v, argnums=(0,), **kw)
    assert only[1] is None and only[2] is None and rel_err(only[0], vjps[0]) <= tol


def test_root_vjp_non_symmetric_forward_fallback(ref):
    """GMRES and no VJP: reverse mode runs forward mode over the coordinates."""
    d = inputs(ref, "fixed_point")
    x = FixedPointIteration(fixed_point_fun=fp_map, tol=1e-14, maxiter=1000).run(
        np.zeros(5), d["W"], d["b"]).params
    F = lambda x, W, b: fp_map(x, W, b) - x  # noqa: E731
    v = np.arange(5.0)
    vjps = idf.root_vjp(F, x, (d["W"], d["b"]), v,
                         solve=partial(linear_solve.solve_gmres, tol=1e-10))
    C_W, C_b = fp_closed(x, d["W"])
    assert rel_err(vjps[1], v @ C_b) <= FD
    assert rel_err(vjps[0], np.einsum("i,ijk->jk", v, C_W)) <= FD


def test_dense_jacobians(ref):
    d = inputs(ref, "ridge_gd")
    lam, X, y = d["lam"], d["X"], d["y"]

    def jac(w, args):
        lam, X, y = args
        H = mm(X.T, X) + lam * np.eye(6)
        return H, (w[:, None], None, -X.T)

    jvp, vjp = idf.jvp_vjp_from_jacobian(jac)
    solver = idf.custom_root(ridge_F, optimality_jvp=jvp, optimality_vjp=vjp)(ridge_solver)
    J_lam, J_y = solver.jacobian(None, lam, X, y, argnums=(1, 3))
    C_lam, C_y = ridge_jac_closed(lam, X, y)
    assert rel_err(J_lam, C_lam) <= EXACT and rel_err(J_y, C_y) <= EXACT
    v = np.arange(6.0)
    assert rel_err(solver.vjp(None, lam, X, y, cotangent=v, argnums=3), v @ C_y) <= EXACT


# --------------------------------------------------------------------------
# Pytrees, keywords, aux, argnum 0, Bisection, float32.

def test_pytree_params_and_keywords():
    rng = np.random.default_rng(4)
    X, y = rng.standard_normal((20, 3)), rng.standard_normal(20)

    def F(p, lam, X, y):      # ridge with an unpenalised intercept
        r = mv(X, p["w"]) + p["b"] - y
        return {"w": rmv(X, r) + lam * p["w"], "b": np.sum(r)}

    @idf.custom_root(F, has_aux=True)
    def solve(init, lam, X, y):
        A = np.c_[X, np.ones(20)]
        z = fo_solve(mm(A.T, A) + lam * np.diag([1, 1, 1, 0.0]), rmv(A, y))
        return {"w": z[:3], "b": z[3]}, "aux"

    lam = 0.5
    J = solve.jacobian(None, lam=lam, X=X, y=y)          # argnums=1: lam, by keyword
    A = np.c_[X, np.ones(20)]
    H = A.T @ A + lam * np.diag([1, 1, 1, 0.0])
    z = np.linalg.solve(H, A.T @ y)
    C = -np.linalg.solve(H, np.diag([1, 1, 1, 0.0]) @ z)
    assert set(J) == {"w", "b"} and J["w"].shape == (3,) and np.shape(J["b"]) == ()
    assert rel_err(np.r_[J["w"], J["b"]], C) <= FD
    J0 = solve.jacobian({"w": np.zeros(3), "b": 0.0}, lam, X, y, argnums=(0, 3))
    assert J0["w"][0]["w"].shape == (3, 3) and np.all(J0["w"][0]["w"] == 0)
    assert J0["w"][1].shape == (3, 20)
    v = solve.vjp(None, lam, X, y, cotangent={"w": np.ones(3), "b": 1.0}, argnums=(1, 3))
    assert rel_err(v[0], C.sum()) <= FD and v[1].shape == (20,)
    t = solve.jvp(None, lam, X, y, tangents=1.0)
    assert rel_err(np.r_[t["w"], t["b"]], C) <= FD


def test_reference_signature(ref):
    """An optimality function with catch-all arguments: the reference
    signature says where each argument of the call goes."""
    d = inputs(ref, "ridge_gd")

    def F(w, *args, **kwargs):
        return ridge_F(w, *args, **kwargs)

    def signature(w, lam, X, y):
        pass

    solver = idf.custom_root(F, reference_signature=signature)(ridge_solver)
    J = solver.jacobian(None, X=d["X"], y=d["y"], lam=d["lam"])      # all by keyword
    assert rel_err(J, ridge_jac_closed(d["lam"], d["X"], d["y"])[0]) <= FD


def test_bisection_jacobian():
    solver = Bisection(optimality_fun=lambda x, a: x ** 3 - a, lower=0.0, upper=3.0,
                       tol=1e-13, maxiter=200)
    a = 5.0
    x = solver.run(None, a).params
    assert rel_err(solver.jacobian(None, a), 1 / (3 * x ** 2)) <= FD


def test_float32():
    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((30, 4)), rng.standard_normal(30)
    X32, y32 = X.astype(np.float32), y.astype(np.float32)
    solver = idf.custom_root(ridge_F)(
        lambda init, lam, X, y: ridge_closed(lam, X, y).astype(np.float32))
    J = solver.jacobian(None, np.float32(1.5), X32, y32)
    assert J.dtype == np.float32
    assert rel_err(J, ridge_jac_closed(1.5, X, y)[0]) <= 1e-3


# --------------------------------------------------------------------------
# Bad input.

def test_bad_argnums(ref):
    solver, d = ridge_gd(ref, exact=True)
    args = (np.zeros(6), d["lam"], d["X"], d["y"])
    with pytest.raises(ValueError, match=r"argnums: expected integers in \[0, 4\)"):
        solver.jacobian(*args, argnums=4)
    with pytest.raises(ValueError, match="argnums"):
        solver.jacobian(*args, argnums=-1)
    with pytest.raises(TypeError, match="argnums: expected an int or a tuple"):
        solver.jacobian(*args, argnums=1.0)
    with pytest.raises(ValueError, match="distinct"):
        solver.jvp(*args, tangents=(1.0, 1.0), argnums=(1, 1))
    with pytest.raises(ValueError, match=r"argnums: expected integers in \[0, 4\)"):
        idf.custom_root(ridge_F)(ridge_solver).vjp(None, 1.0, d["X"], d["y"],
                                                   cotangent=np.ones(6), argnums=(1, 4))
    with pytest.raises(TypeError, match="has no derivative"):
        idf.custom_root(lambda x, n: x - n)(lambda x0, n: float(n)).jacobian(0.0, 3)


def test_bad_tangents_and_cotangents(ref):
    solver, d = ridge_gd(ref, exact=True)
    args = (np.zeros(6), d["lam"], d["X"], d["y"])
    with pytest.raises(ValueError, match="tangents: expected a tuple of 2 tangents"):
        solver.jvp(*args, tangents=(1.0,), argnums=(1, 3))
    with pytest.raises(ValueError, match="expected a tangent of 30 numbers"):
        solver.jvp(*args, tangents=np.ones(29), argnums=3)
    with pytest.raises(ValueError, match="cotangent: expected a tangent of 6 numbers"):
        solver.vjp(*args, cotangent=np.ones(5))
    w = ridge_closed(d["lam"], d["X"], d["y"])
    with pytest.raises(ValueError, match="tangents: expected a tuple of the same length"):
        idf.root_jvp(ridge_F, w, (d["lam"], d["X"], d["y"]), (1.0,))


def test_not_a_root_warns(ref):
    d = inputs(ref, "ridge_gd")
    solver = idf.custom_root(ridge_F)(lambda init, lam, X, y: ridge_closed(lam, X, y) + 1e-3)
    with pytest.warns(RuntimeWarning, match=r"not a root .*\|\|F\(sol, \*args\)\|\| = \d"):
        solver.jacobian(None, d["lam"], d["X"], d["y"])
    # a solver stopped by maxiter warns; one that converged to its tol does not
    gd = GradientDescent(fun=ridge_fun, grad=ridge_F, maxiter=3)
    with pytest.warns(RuntimeWarning, match="not a root"):
        gd.jacobian(np.zeros(6), d["lam"], d["X"], d["y"])
    gd = GradientDescent(fun=ridge_fun, grad=ridge_F, tol=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gd.jacobian(np.zeros(6), d["lam"], d["X"], d["y"])


@pytest.mark.filterwarnings("ignore::npopt.linear_solve.LinearSolveWarning")
@pytest.mark.parametrize("exact", [True, False])
def test_singular_system_raises(exact):
    A = np.diag([2.0, 1.0, 0.0])                 # singular d1F

    def F(x, theta):
        return mv(A, x) - theta

    kw = dict(optimality_jvp=lambda x, a, dx, da: mv(A, dx) - (0 if da[0] is None else da[0]),
              optimality_vjp=lambda x, a, u: (rmv(A, u), (-u,))) if exact else {}
    solver = idf.custom_root(F, **kw)(lambda init, theta: np.array([theta[0] / 2, theta[1], 0.0]))
    theta = np.array([1.0, 1.0, 0.0])
    with pytest.raises(np.linalg.LinAlgError, match=r"relative residual \|\|A x - b\|\| / "):
        solver.jvp(None, theta, tangents=np.array([0.0, 0.0, 1.0]))
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        solver.vjp(None, theta, cotangent=np.array([0.0, 0.0, 1.0]))
    with pytest.raises(np.linalg.LinAlgError, match="not solved"):
        solver.jacobian(None, theta)


def test_garbage_solver_raises(ref):
    d = inputs(ref, "ridge_gd")
    solver = idf.custom_root(ridge_F, solve=lambda matvec, b: np.ones_like(b))(ridge_solver)
    with pytest.raises(np.linalg.LinAlgError, match="relative residual"):
        solver.jacobian(None, d["lam"], d["X"], d["y"])
    solver = idf.custom_root(ridge_F, solve=lambda matvec, b: b * np.nan)(ridge_solver)
    with pytest.raises(np.linalg.LinAlgError, match="nan"):
        solver.jacobian(None, d["lam"], d["X"], d["y"])


def test_other_bad_input(ref):
    d = inputs(ref, "ridge_gd")
    with pytest.raises(ValueError, match="implicit_diff=True"):
        GradientDescent(fun=ridge_fun, grad=ridge_F, implicit_diff=False).jacobian(
            np.zeros(6), d["lam"], d["X"], d["y"])
    with pytest.raises(ValueError, match="optimality_fun: expected an output of the size of sol"):
        idf.root_jvp(lambda x, a: x[:2], np.zeros(3), (1.0,), (1.0,))
    with pytest.raises(TypeError, match="sol: expected a pytree of floating-point"):
        idf.root_jvp(lambda x, a: x, np.zeros(3, int), (1.0,), (1.0,))
    with pytest.raises(TypeError, match="solve: expected None or a linear solver"):
        idf.root_jvp(ridge_F, np.zeros(6), (1.0, d["X"], d["y"]), (1.0, None, None), solve=3)
    with pytest.raises(TypeError, match="optimality_jvp: expected None or a callable"):
        idf.root_jvp(ridge_F, np.zeros(6), (1.0, d["X"], d["y"]), (1.0, None, None),
                     optimality_jvp=1)
    with pytest.raises(ValueError, match="not finite"):
        idf.root_jvp(lambda x, a: x * np.nan, np.zeros(3), (1.0,), (1.0,))
    with pytest.raises(TypeError, match="do not match the optimality function's signature"):
        idf.custom_root(ridge_F)(ridge_solver).jacobian(None, 1.0, d["X"], d["y"], 5)


# --------------------------------------------------------------------------
# The applications (npopt.examples.hyperopt): scikit-learn's digits when
# installed, else the synthetic stand-in.

def test_hyperopt_example_validation_loss_falls():
    from npopt.examples import hyperopt
    hist = hyperopt.run_hyperopt(steps=4, verbose=False)
    losses = [h[1] for h in hist]
    assert all(b < a for a, b in zip(losses, losses[1:])), losses


def test_sensitivity_example_predicts_the_resolve():
    from npopt.examples import hyperopt
    out = hyperopt.run_sensitivity(verbose=False)
    predicted, actual = out["check"]
    assert abs(predicted - actual) <= 0.05 * abs(actual)
    assert out["influence"].shape == (400,) and out["dW_dl2reg"].shape == (65, 10)
