"""QP solvers (npopt.solvers.qp) against jaxopt 0.8.5 (x64) and against the
KKT conditions / duality gap of each problem.

Reference: tests/reference/data/jaxopt/qp.npz from
tests/reference/make_qp_reference.py. Final params to 1e-8 relative for the
direct and coordinate-descent solvers, 1e-6 for operator splitting (OSQP),
and the same iteration counts (every solver here is deterministic).
"""
import os
import sys

import numpy as np
import pytest

from npopt import tree as T
from npopt.solvers import qp
from npopt.solvers.base import KKTSolution

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "reference"))
import make_qp_reference as R   # noqa: E402
# operators without BLAS (fixed_order): the same bits on every CPU, so the
# stored iteration counts meet the same problem everywhere
import fixed_order as fo   # noqa: E402

REF = np.load(R.OUT) if os.path.exists(R.OUT) else None
D = R.D
OSQP_LIKE = ("BoxOSQP", "OSQP")


def _run(name):
    solver, _, _ = R.CASES[name]
    out = R.problem(name)
    if solver == "EqualityConstrainedQP":
        obj, eq, kw = out
        if kw.pop("matvec", False):
            kw.update(matvec_Q=fo.mv, matvec_A=fo.mv)
        return qp.EqualityConstrainedQP(**kw).run(None, obj, eq)
    if solver == "BoxCDQP":
        obj, ineq, kw = out
        return qp.BoxCDQP(**kw).run(np.zeros(6), obj, ineq)
    if solver == "IterativeRefinement":
        kw = out
        if kw.pop("bar", False):
            s = qp.IterativeRefinement(matvec_A_bar=fo.mv, **kw)
            return s.run(None, D["Msys"], D["bsys"],
                         D["Msys"].astype(np.float32).astype(np.float64))
        return qp.IterativeRefinement(**kw).run(None, D["Msys"], D["bsys"])
    if solver == "BoxOSQP":
        obj, A, ineq, kw = out
        return qp.BoxOSQP(**kw).run(None, obj, A, ineq)
    obj, eq, ineq, kw = out
    return qp.OSQP(**kw).run(None, obj, eq, ineq)


@pytest.mark.skipif(REF is None, reason="qp.npz missing: run tests/reference/make_qp_reference.py")
@pytest.mark.parametrize("name", list(R.CASES))
def test_against_jaxopt(name):
    solver = R.CASES[name][0]
    params, state = _run(name)
    leaves = T.tree_leaves(params)
    rtol = 1e-6 if solver in OSQP_LIKE else 1e-8
    for k, leaf in enumerate(leaves):
        ref = REF[f"{name}__{k}"]
        scale = max(np.max(np.abs(ref)), 1e-12) if ref.size else 1.0
        np.testing.assert_allclose(np.asarray(leaf), ref, rtol=0, atol=rtol * scale,
                                   err_msg=f"{name} leaf {k}")
    assert len(leaves) == sum(k.startswith(name + "__") and k[len(name) + 2:].isdigit()
                              for k in REF.files)
    if state is not None:
        assert int(state.iter_num) == int(REF[name + "__iters"])
    if name + "__status" in REF.files:
        assert int(state.status) == int(REF[name + "__status"])


# -- KKT conditions and duality gaps -----------------------------------------

def _dual_value(Q, c, A=None, b=None, y=None, G=None, h=None, lam=None):
    """Lagrange dual function for positive definite Q:
    -0.5 r^T Q^-1 r - b^T y - h^T lam with r = c + A^T y + G^T lam."""
    r, val = c.copy(), 0.0
    if y is not None:
        r, val = r + A.T @ y, val - b @ y
    if lam is not None:
        r, val = r + G.T @ lam, val - h @ lam
    return val - 0.5 * r @ np.linalg.solve(Q, r)


def _primal_value(Q, c, x):
    return 0.5 * x @ Q @ x + c @ x


def test_eq_qp_kkt_closed_form_and_gap():
    Q, c, A, b = D["Q"], D["c"], D["A"], D["b"]
    sol, state = qp.EqualityConstrainedQP(tol=1e-12).run(None, (Q, c), (A, b))
    assert state is None and sol.dual_ineq is None
    K = np.block([[Q, A.T], [A, np.zeros((2, 2))]])
    xy = np.linalg.solve(K, np.concatenate([-c, b]))
    np.testing.assert_allclose(np.concatenate([sol.primal, sol.dual_eq]), xy, rtol=1e-10)
    kkt = qp.EqualityConstrainedQP().optimality_fun(sol, (Q, c), (A, b))
    assert T.tree_l2_norm(kkt) < 1e-10
    gap = _primal_value(Q, c, sol.primal) - _dual_value(Q, c, A, b, sol.dual_eq)
    assert abs(gap) < 1e-10


def test_eq_qp_pytree_matvec_and_warm_start():
    Q, c, A, b = D["Q"], D["c"], D["A"], D["b"]
    # primal as a dict {'u': 2, 'v': 4}: Q and A act on the concatenation
    split = lambda v: {"u": v[:2], "v": v[2:]}                   # noqa: E731
    cat = lambda p: np.concatenate([p["u"], p["v"]])             # noqa: E731
    s = qp.EqualityConstrainedQP(matvec_Q=lambda P, x: split(fo.mv(P, cat(x))),
                                 matvec_A=lambda P, x: fo.mv(P, cat(x)), tol=1e-12)
    sol, _ = s.run(None, (Q, split(c)), (A, b))
    ref, _ = qp.EqualityConstrainedQP(tol=1e-12).run(None, (Q, c), (A, b))
    np.testing.assert_allclose(cat(sol.primal), ref.primal, rtol=1e-10)
    np.testing.assert_allclose(sol.dual_eq, ref.dual_eq, rtol=1e-10)
    warm, _ = qp.EqualityConstrainedQP(tol=1e-12).run(ref, (Q, c), (A, b))
    np.testing.assert_allclose(warm.primal, ref.primal, rtol=1e-10)


def test_eq_qp_fun():
    Q, c, A, b = D["Q"], D["c"], D["A"], D["b"]
    fun = lambda x, p: 0.5 * fo.vdot(x, fo.mv(p[0], x)) + fo.vdot(p[1], x) + 3.0  # noqa: E731
    s = qp.EqualityConstrainedQP(fun=fun, tol=1e-9)   # Qx by finite differences
    sol, _ = s.run(KKTSolution(np.zeros(6), np.zeros(2)), (Q, c), (A, b))
    ref, _ = qp.EqualityConstrainedQP(tol=1e-12).run(None, (Q, c), (A, b))
    np.testing.assert_allclose(sol.primal, ref.primal, rtol=1e-8)


def test_eq_qp_jacobian_closed_form():
    """d x*/d c = -[K^-1]_{xx}: implicit differentiation of the KKT conditions."""
    Q, c, A, b = D["Q"], D["c"], D["A"], D["b"]
    s = qp.EqualityConstrainedQP(tol=1e-12)
    K = np.block([[Q, A.T], [A, np.zeros((2, 2))]])
    Kinv = np.linalg.inv(K)
    jac = s.jacobian(None, (Q, c), (A, b), argnums=1)
    # jac is a KKTSolution of (primal, dual) leaves, each with the layout of
    # params_obj = (Q, c): take the part w.r.t. c
    np.testing.assert_allclose(jac.primal[1], -Kinv[:6, :6], atol=1e-6)


def test_box_cdqp_kkt():
    Q, c, l, u = D["Q"], D["c"], D["l"], D["u"]
    x, state = qp.BoxCDQP(tol=1e-12, maxiter=2000).run(np.zeros(6), (Q, c), (l, u))
    assert state.error <= 1e-12
    g = Q @ x + c
    at_l, at_u = np.isclose(x, l), np.isclose(x, u)
    free = ~(at_l | at_u)
    assert at_l.any() and at_u.any() and free.any()      # both bounds active somewhere
    assert np.all(g[at_l] >= -1e-10) and np.all(g[at_u] <= 1e-10)
    np.testing.assert_allclose(g[free], 0, atol=1e-10)
    assert np.all((l <= x) & (x <= u))
    # duality gap with multipliers lam_l = g_+ on the lower, lam_u = g_- on the upper
    lam_l, lam_u = np.where(at_l, g, 0), np.where(at_u, -g, 0)
    dual = _dual_value(Q, c, G=np.vstack([-np.eye(6), np.eye(6)]), h=np.concatenate([-l, u]),
                       lam=np.concatenate([lam_l, lam_u]))
    assert abs(_primal_value(Q, c, x) - dual) < 1e-10
    assert np.linalg.norm(qp.BoxCDQP().optimality_fun(x, (Q, c), (l, u))) < 1e-10


def test_box_cdqp_zero_diagonal_and_errors():
    Q = np.diag([2.0, 0.0])
    x, _ = qp.BoxCDQP().run(np.array([1.0, 0.5]), (Q, np.array([-1.0, 1.0])),
                            (np.zeros(2), np.ones(2)))
    # Q_11 = 0: coordinate 1 is linear with slope c_1 = 1 > 0, so it moves to
    # its lower bound (jaxopt leaves it at 0.5 with error 0: not a minimiser)
    np.testing.assert_allclose(x, [0.5, 0.0])
    with pytest.raises(ValueError, match="l <= u"):
        qp.BoxCDQP().run(np.zeros(2), (Q, np.zeros(2)), (np.ones(2), np.zeros(2)))
    with pytest.raises(ValueError, match="params_obj"):
        qp.BoxCDQP().run(np.zeros(3), (Q, np.zeros(2)), (np.zeros(3), np.ones(3)))


def test_iterative_refinement():
    A, b = D["Msys"], D["bsys"]
    s = qp.IterativeRefinement(tol=1e-12)
    x, state = s.run(None, A, b)
    np.testing.assert_allclose(x, np.linalg.solve(A, b), rtol=1e-12)
    assert state.error <= 1e-12
    assert int(state.num_solve_eval) == int(state.iter_num) == int(state.num_matvec_eval)
    assert np.linalg.norm(s.optimality_fun(x, A, b)) <= 1e-12
    # a crude inner solver (3 CG steps on the normal equations) still converges
    from npopt import linear_solve
    import functools
    s = qp.IterativeRefinement(solve=functools.partial(linear_solve.solve_normal_cg, maxiter=3),
                               maxiter=100, tol=1e-10)
    x, state = s.run(None, A, b)
    assert state.error <= 1e-10 and int(state.iter_num) > 1


@pytest.mark.parametrize("eq_qp_solve", ["cg", "cg+jacobi", "lu"])
def test_osqp_kkt_and_gap(eq_qp_solve):
    Q, c, A, b, G, h = D["Q"], D["c"], D["A"], D["b"], D["G"], D["h"]
    s = qp.OSQP(tol=1e-9, eq_qp_solve=eq_qp_solve)
    sol, state = s.run(None, (Q, c), (A, b), (G, h))
    assert state.status == qp.BoxOSQP.SOLVED
    x, y, lam = sol
    assert np.all(lam >= 0)
    assert np.max(G @ x - h) <= 1e-8
    np.testing.assert_allclose(A @ x, b, atol=1e-8)
    np.testing.assert_allclose(Q @ x + c + A.T @ y + G.T @ lam, 0, atol=1e-8)
    np.testing.assert_allclose(lam * (G @ x - h), 0, atol=1e-8)
    gap = _primal_value(Q, c, x) - _dual_value(Q, c, A, b, y, G, h, lam)
    assert abs(gap) < 1e-7
    assert s.l2_optimality_error(sol, (Q, c), (A, b), (G, h)) < 1e-7


def test_box_osqp_matches_box_cdqp_and_kkt():
    Q, c, l, u = D["Q"], D["c"], D["l"], D["u"]
    s = qp.BoxOSQP(tol=1e-10)
    sol, state = s.run(None, (Q, c), np.eye(6), (l, u))
    x_cd, _ = qp.BoxCDQP(tol=1e-12, maxiter=2000).run(np.zeros(6), (Q, c), (l, u))
    np.testing.assert_allclose(sol.primal[0], x_cd, atol=1e-8)
    assert T.tree_l2_norm(s.optimality_fun(sol, (Q, c), np.eye(6), (l, u))) < 1e-8
    assert state.status == qp.BoxOSQP.SOLVED


def test_box_osqp_matvec_and_pytree():
    Q, c, l, u = D["Q"], D["c"], D["l"], D["u"]
    s = qp.BoxOSQP(matvec_Q=fo.mv, matvec_A=lambda P, x: P * x, tol=1e-10)
    sol, _ = s.run(None, (Q, c), 1.0, (l, u))
    ref, _ = qp.BoxOSQP(tol=1e-10).run(None, (Q, c), np.eye(6), (l, u))
    np.testing.assert_allclose(sol.primal[0], ref.primal[0], atol=1e-8)


def test_osqp_matvec_constraints():
    Q, c, A, b, G, h = D["Q"], D["c"], D["A"], D["b"], D["G"], D["h"]
    mv = fo.mv
    s = qp.OSQP(matvec_Q=mv, matvec_A=mv, matvec_G=mv, tol=1e-9)
    sol, state = s.run(None, (Q, c), (A, b), (G, h))
    ref, _ = qp.OSQP(tol=1e-9).run(None, (Q, c), (A, b), (G, h))
    assert state.status == qp.BoxOSQP.SOLVED
    for a, r in zip(T.tree_leaves(sol), T.tree_leaves(ref)):
        np.testing.assert_allclose(a, r, atol=1e-7)


def test_osqp_infeasible_status_and_raise():
    Q, c = D["Q"], D["c"]
    G = np.zeros((2, 6))
    G[0, 0], G[1, 0] = -1.0, 1.0                        # x0 >= 1 and x0 <= 0
    h = np.array([-1.0, 0.0])
    _, state = qp.OSQP(check_primal_dual_infeasability=True).run(None, (Q, c), None, (G, h))
    assert state.status == qp.BoxOSQP.PRIMAL_INFEASIBLE and state.error == 0
    with pytest.raises(ValueError, match="Primal infeasible"):
        qp.OSQP(jit=False).run(None, (Q, c), None, (G, h))
    # unbounded below along x0 -> dual infeasible
    obj, A, box, kw = R.problem("boxosqp_dual_infeasible")
    _, state = qp.BoxOSQP(**kw).run(None, obj, A, box)
    assert state.status == qp.BoxOSQP.DUAL_INFEASIBLE and state.error == 0
    with pytest.raises(ValueError, match="Dual infeasible"):
        qp.BoxOSQP(jit=False).run(None, obj, A, box)


def test_bad_input():
    with pytest.raises(ValueError, match="eq_qp_solve"):
        qp.BoxOSQP(eq_qp_solve="qr")
    with pytest.raises(ValueError, match="momentum"):
        qp.BoxOSQP(momentum=2.0)
    with pytest.raises(ValueError, match="fun"):
        qp.EqualityConstrainedQP(fun=lambda x, p: 0.0, matvec_Q=lambda p, x: x)
    with pytest.raises(ValueError, match="params_eq, params_ineq"):
        qp.OSQP().run(None, (D["Q"], D["c"]), None, None)
    with pytest.raises(ValueError, match="l <= u"):
        qp.BoxOSQP().run(None, (D["Q"], D["c"]), np.eye(6), (D["u"], D["l"]))
    with pytest.raises(ValueError, match="Jacobi"):
        qp.BoxOSQP(eq_qp_solve="cg+jacobi", matvec_A=lambda P, x: x).run(
            None, (D["Q"], D["c"]), None, (D["l"], D["u"]))


def test_dataclass_fields():
    import dataclasses
    for cls in (qp.EqualityConstrainedQP, qp.BoxCDQP, qp.IterativeRefinement, qp.BoxOSQP):
        names = [f.name for f in dataclasses.fields(cls)]
        assert names[-2:] == ["optimality_jvp", "optimality_vjp"]
    assert [f.name for f in dataclasses.fields(qp.BoxOSQP)][:6] == [
        "matvec_Q", "matvec_A", "fun", "check_primal_dual_infeasability", "sigma", "momentum"]
    assert qp.BoxOSQPState._fields == ("iter_num", "error", "status", "primal_residuals",
                                       "dual_residuals", "rho_bar", "solver_state")


def test_box_cdqp_jacobian():
    """On the free set F: dx_F/dc = -Q_FF^-1 (columns of F), zero elsewhere."""
    Q, c, l, u = D["Q"], D["c"], D["l"], D["u"]
    s = qp.BoxCDQP(tol=1e-13, maxiter=5000)
    x, _ = s.run(np.zeros(6), (Q, c), (l, u))
    free = ~(np.isclose(x, l) | np.isclose(x, u))
    jac = s.jacobian(np.zeros(6), (Q, c), (l, u), argnums=1)[1]
    expected = np.zeros((6, 6))
    expected[np.ix_(free, free)] = -np.linalg.inv(Q[np.ix_(free, free)])
    np.testing.assert_allclose(jac, expected, atol=1e-6)


def test_osqp_jacobian_matches_active_set():
    """The derivative of x* in c equals the equality-constrained QP's on the
    active set (Ax = b plus the active rows of Gx <= h)."""
    Q, c, A, b, G, h = D["Q"], D["c"], D["A"], D["b"], D["G"], D["h"]
    s = qp.OSQP(tol=1e-10)
    sol, _ = s.run(None, (Q, c), (A, b), (G, h))
    active = G @ sol.primal - h > -1e-7
    jac = s.jacobian(None, (Q, c), (A, b), (G, h), argnums=1)
    Aact = np.vstack([A, G[active]])
    m = Aact.shape[0]
    Kinv = np.linalg.inv(np.block([[Q, Aact.T], [Aact, np.zeros((m, m))]]))
    np.testing.assert_allclose(jac.primal[1], -Kinv[:6, :6], atol=1e-5)
