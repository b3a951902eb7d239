"""CvxpyQP: KKT conditions and agreement with npopt's own QP solvers when
cvxpy is installed (an optional dependency: the solve test is skipped,
saying so, when it is not); the missing-package message always."""
import builtins

import numpy as np
import pytest

import npopt


def _qp():
    rng = np.random.default_rng(0)
    M = rng.standard_normal((6, 6))
    Q = M @ M.T + np.eye(6)
    c = rng.standard_normal(6)
    A, b = rng.standard_normal((2, 6)), rng.standard_normal(2)
    G, h = rng.standard_normal((4, 6)), rng.random(4)
    return (Q, c), (A, b), (G, h)


def test_solution_satisfies_kkt_and_matches_osqp():
    pytest.importorskip("cvxpy", reason="cvxpy (optional) is not installed")
    params_obj, params_eq, params_ineq = _qp()
    solver = npopt.CvxpyQP(solver="CLARABEL")
    sol, state = solver.run(None, params_obj, params_eq, params_ineq)
    assert state is None
    assert solver.l2_optimality_error(sol, params_obj, params_eq, params_ineq) < 1e-6
    assert np.all(sol.dual_ineq >= -1e-8)
    G, h = params_ineq
    assert np.all(G @ sol.primal <= h + 1e-7)
    ref = npopt.OSQP(tol=1e-10, maxiter=20000).run(None, params_obj, params_eq, params_ineq)
    np.testing.assert_allclose(sol.primal, ref.params.primal, atol=1e-6)


def test_missing_cvxpy_is_a_clear_error(monkeypatch):
    real_import = builtins.__import__

    def no_cvxpy(name, *a, **kw):
        if name == "cvxpy":
            raise ImportError("No module named 'cvxpy'")
        return real_import(name, *a, **kw)
    monkeypatch.setattr(builtins, "__import__", no_cvxpy)
    with pytest.raises(ImportError, match="CvxpyQP needs the optional package cvxpy"):
        npopt.CvxpyQP().run(None, *_qp())


def test_bad_shapes():
    (Q, c), eq, ineq = _qp()
    with pytest.raises(ValueError, match="params_obj: expected c of shape"):
        npopt.CvxpyQP().run(None, (Q, c[:3]), eq, ineq)
    with pytest.raises(ValueError, match="params_eq: expected"):
        npopt.CvxpyQP().run(None, (Q, c), (eq[0][:, :3], eq[1]), ineq)
