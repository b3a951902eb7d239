"""GaussNewton and LevenbergMarquardt against jaxopt 0.8.5 (x64, jitted run;
tests/reference/make_least_squares_reference.py), known solutions, the
Jacobian sources (jac_fun, jvp_fun/vjp_fun, finite differences) and bad input."""
import json
import os
import sys

import numpy as np
import pytest
import scipy.optimize

from npopt import tree as T
from npopt.linear_solve import LinearSolveError
from npopt.solvers.gauss_newton import GaussNewton, GaussNewtonState
from npopt.solvers.levenberg_marquardt import LevenbergMarquardt, LevenbergMarquardtState

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference")
if HERE not in sys.path:
    sys.path.insert(0, HERE)
import make_least_squares_reference as R  # noqa: E402
from fixed_order import mv, rmv  # noqa: E402  (no BLAS: the same bits on every CPU)

SOLVERS = {"GaussNewton": GaussNewton, "LevenbergMarquardt": LevenbergMarquardt}


@pytest.fixture(scope="module")
def ref():
    with np.load(R.OUT) as z:
        return {k: z[k] for k in z.files}


def _flat(params):
    return np.concatenate([np.ravel(x) for x in T.tree_leaves(params)])


def _ref_params(ref, case, n_leaves):
    return np.concatenate([np.ravel(ref[f"{case}/params_{i}"]) for i in range(n_leaves)])


def _run(case, **source):
    cls, kw, prob = R.CASES[case]
    p = R.PROBLEMS[prob]
    solver = SOLVERS[cls](residual_fun=p["res"], **kw, **source)
    return solver.run(p["init"](), *p["args"]())


def _rel(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


def _jvp_vjp(prob):
    """Matrix-free products from the problem's dense Jacobian."""
    p = R.PROBLEMS[prob]

    def jvp(params, v, *args):
        return mv(p["jac"](params, *args), _flat(v))

    def vjp(params, w, *args):
        _, unravel = T.ravel(params)
        return unravel(rmv(p["jac"](params, *args), np.ravel(w)))
    return jvp, vjp


# ---- against jaxopt ------------------------------------------------------------

@pytest.mark.parametrize("case", sorted(R.CASES))
def test_matches_jaxopt_with_jac_fun(ref, case):
    meta = json.loads(str(ref["meta"]))[case]
    prob = R.CASES[case][2]
    params, state = _run(case, jac_fun=R.PROBLEMS[prob]["jac"])
    got = _flat(params)
    assert _rel(got, _ref_params(ref, case, len(T.tree_leaves(params)))) <= 1e-8
    assert int(state.iter_num) == meta["iter_num"]
    np.testing.assert_allclose(state.value, meta["value"], rtol=1e-8, atol=1e-18)


@pytest.mark.parametrize("case", ["gn_exp", "gn_tree", "lm_exp", "lm_exp_tight", "lm_rosen",
                                  "lm_exp_mn", "lm_exp_geo_cg"])
def test_matches_jaxopt_matrix_free(ref, case):
    """jvp_fun + vjp_fun: the same products as jaxopt's jvp/vjp."""
    meta = json.loads(str(ref["meta"]))[case]
    jvp, vjp = _jvp_vjp(R.CASES[case][2])
    params, state = _run(case, jvp_fun=jvp, vjp_fun=vjp)
    assert _rel(_flat(params), _ref_params(ref, case, len(T.tree_leaves(params)))) <= 1e-8
    assert int(state.iter_num) == meta["iter_num"]


@pytest.mark.parametrize("only", ["jvp_fun", "vjp_fun"])
def test_one_product_builds_the_jacobian(ref, only):
    jvp, vjp = _jvp_vjp("exp")
    params, state = _run("lm_exp_tight", **{only: jvp if only == "jvp_fun" else vjp})
    assert _rel(params, ref["lm_exp_tight/params_0"]) <= 1e-8
    assert int(state.iter_num) == json.loads(str(ref["meta"]))["lm_exp_tight"]["iter_num"]


@pytest.mark.parametrize("case", ["gn_exp", "gn_rosen", "gn_tree", "lm_exp", "lm_exp_tight",
                                  "lm_exp_chol", "lm_exp_qr", "lm_rosen", "lm_exp_mn"])
def test_finite_differences(ref, case):
    """No Jacobian given: central differences (error ~1e-10), same iterations."""
    meta = json.loads(str(ref["meta"]))[case]
    params, state = _run(case)
    assert _rel(_flat(params), _ref_params(ref, case, len(T.tree_leaves(params)))) <= 1e-6
    assert int(state.iter_num) == meta["iter_num"]


def test_geodesic_finite_differences(ref):
    """Geodesic acceleration with second derivatives from residual differences only."""
    params, state = _run("lm_rosen_geo")
    np.testing.assert_allclose(params, [1.0, 1.0], rtol=1e-6)
    params, state = _run("lm_exp_geo_cg")
    assert _rel(params, ref["lm_exp_geo_cg/params_0"]) <= 1e-7


# ---- known solutions ---------------------------------------------------------------

def _scipy_exp_solution():
    p = R.PROBLEMS["exp"]
    args = p["args"]()
    sol = scipy.optimize.least_squares(p["res"], p["init"](), jac=p["jac"], args=args,
                                       xtol=1e-15, ftol=1e-15, gtol=1e-15)
    return sol.x


@pytest.mark.parametrize("cls", [GaussNewton, LevenbergMarquardt])
def test_known_solutions(cls):
    p = R.PROBLEMS["exp"]
    solver = cls(p["res"], jac_fun=p["jac"], tol=1e-8, maxiter=100)
    params, state = solver.run(p["init"](), *p["args"]())
    np.testing.assert_allclose(params, _scipy_exp_solution(), rtol=1e-8)
    np.testing.assert_allclose(solver.optimality_fun(params, *p["args"]()), 0, atol=1e-7)
    p = R.PROBLEMS["rosen"]
    params, _ = cls(p["res"], jac_fun=p["jac"], tol=1e-10, maxiter=100).run(p["init"]())
    np.testing.assert_allclose(params, [1.0, 1.0], rtol=1e-8)


def test_gauss_newton_linear_least_squares_one_step():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((30, 4)), rng.standard_normal(30)
    gn = GaussNewton(lambda w: mv(X, w) - y, jac_fun=lambda w: X, maxiter=1)
    params, state = gn.run(np.zeros(4))
    np.testing.assert_allclose(params, np.linalg.lstsq(X, y, rcond=None)[0], rtol=1e-5)
    assert isinstance(state, GaussNewtonState) and int(state.iter_num) == 1


def test_states_and_aux():
    p = R.PROBLEMS["exp"]
    args = p["args"]()

    def res_aux(x, t, y):
        return p["res"](x, t, y), {"n": t.size}
    lm = LevenbergMarquardt(res_aux, has_aux=True, jac_fun=p["jac"], materialize_jac=True)
    state = lm.init_state(p["init"](), *args)
    assert isinstance(state, LevenbergMarquardtState)
    assert state.jac.shape == (30, 3) and state.jtj.shape == (3, 3) and state.hess_res is None
    assert state.damping_factor == pytest.approx(1e-6 * np.max(np.diag(state.jtj)), rel=1e-15)
    assert state.increase_factor == 2 and state.aux == {"n": 30}
    params, state = lm.run(p["init"](), *args)
    assert state.aux == {"n": 30}
    gn = GaussNewton(res_aux, has_aux=True)
    state = gn.init_state(p["init"](), *args)
    assert state.error == np.inf and np.array_equal(state.delta, p["init"]())


def test_float32():
    p = R.PROBLEMS["exp"]
    args = tuple(np.asarray(a, np.float32) for a in p["args"]())
    x0 = p["init"]().astype(np.float32)
    for cls in (GaussNewton, LevenbergMarquardt):
        params, state = cls(p["res"], jac_fun=p["jac"]).run(x0, *args)
        assert params.dtype == np.float32
        np.testing.assert_allclose(params, _scipy_exp_solution(), rtol=1e-4)


def test_verbose(capsys):
    p = R.PROBLEMS["rosen"]
    LevenbergMarquardt(p["res"], jac_fun=p["jac"], verbose=True, maxiter=2).run(p["init"]())
    GaussNewton(p["res"], jac_fun=p["jac"], verbose=True, maxiter=2).run(p["init"]())
    out = capsys.readouterr().out
    assert "LevenbergMarquardt: Iter: 1 Gradient Norm" in out
    assert "GaussNewton: Iter: 2 Norm GN Update" in out


def test_implicit_diff_linear_least_squares():
    """d w*/d y = pinv(X) for w* = argmin ||X w - y||^2."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((12, 3)), rng.standard_normal(12)
    lm = LevenbergMarquardt(lambda w, X, y: mv(X, w) - y, jac_fun=lambda w, X, y: X,
                            tol=1e-10, maxiter=100)
    jac = lm.jacobian(np.zeros(3), X, y, argnums=2)
    np.testing.assert_allclose(jac, np.linalg.pinv(X), rtol=1e-5, atol=1e-7)


# ---- bad input -------------------------------------------------------------------

def test_bad_input():
    p = R.PROBLEMS["exp"]
    res, jac, args = p["res"], p["jac"], p["args"]()
    with pytest.raises(ValueError, match="tol"):
        GaussNewton(res, tol=-1.0)
    with pytest.raises(ValueError, match="tol"):
        LevenbergMarquardt(res, tol=-1.0)
    with pytest.raises(ValueError, match="maxiter"):
        LevenbergMarquardt(res, maxiter=-1)
    with pytest.raises(ValueError, match="solver"):
        LevenbergMarquardt(res, solver="foo")
    with pytest.raises(ValueError, match="solver.*materialize_jac"):
        LevenbergMarquardt(res, solver="qr")
    with pytest.warns(UserWarning, match="materialize"):
        LevenbergMarquardt(res, solver="cholesky")
    with pytest.raises(ValueError, match="stop_criterion"):
        LevenbergMarquardt(res, stop_criterion="grad")
    with pytest.raises(ValueError, match="damping_parameter"):
        LevenbergMarquardt(res, damping_parameter=-1.0)
    with pytest.raises(TypeError, match="residual_fun"):
        GaussNewton(None)
    with pytest.raises(TypeError, match="jac_fun"):
        GaussNewton(res, jac_fun=3)
    with pytest.raises(ValueError, match="jac_fun"):
        GaussNewton(res, jac_fun=lambda x, t, y: jac(x, t, y).T).run(p["init"](), *args)

    calls = []

    def shrinking(x, t, y):           # the residuals change shape after the first call
        calls.append(1)
        return res(x, t, y)[:30 - (len(calls) > 1)]
    for cls in (GaussNewton, LevenbergMarquardt):
        calls.clear()
        with pytest.raises(ValueError, match="residual_fun.*shape"):
            cls(shrinking, jac_fun=jac).run(p["init"](), *args)


def test_singular_system_raises():
    """A rank-deficient J with no damping: a clear error, not NaN params."""
    lm = LevenbergMarquardt(lambda x: np.array([x[0] + x[1] - 1.0, 2 * (x[0] + x[1])]),
                            damping_parameter=0.0, materialize_jac=True, solver="cholesky")
    with pytest.raises(LinearSolveError):
        lm.run(np.zeros(2))


def test_overflowing_trial_step_is_rejected():
    """Residuals that overflow at a trial point give a negative gain ratio: the
    step is rejected and the damping grows (jaxopt's 0 * inf blend would turn
    the params into NaN)."""
    p = R.PROBLEMS["rosen"]

    def res(x):
        return p["res"](x) if np.max(np.abs(x)) < 1.5 else np.full(2, np.inf)
    lm = LevenbergMarquardt(res, jac_fun=p["jac"], tol=1e-8, maxiter=200)
    state = lm.init_state(p["init"]())
    params, state1 = lm.update(p["init"](), state)
    assert np.array_equal(params, p["init"]()) and state1.damping_factor == 2 * state.damping_factor
    with np.errstate(over="ignore"):
        params, state = lm.run(p["init"]())
    np.testing.assert_allclose(params, [1.0, 1.0], rtol=1e-7)


def test_levenberg_marquardt_pytree(ref):
    """npopt's LM also takes pytree params (jaxopt's needs a 1-D array)."""
    p = R.PROBLEMS["tree"]
    params, state = LevenbergMarquardt(p["res"], jac_fun=p["jac"], tol=1e-10, maxiter=100).run(
        p["init"](), *p["args"]())
    assert set(params) == {"b", "w"} and params["w"].shape == (3,)
    assert _rel(_flat(params), _ref_params(ref, "gn_tree", 2)) <= 1e-5


@pytest.mark.parametrize("solver", ["cholesky", "lu", "inv"])
def test_dense_solver_on_products(ref, solver):
    """A dense solver with materialize_jac=False forms J^T J + mu I from
    products (jaxopt: jax.jacfwd of the matvec); jaxopt warns, so does npopt."""
    p = R.PROBLEMS["exp"]
    with pytest.warns(UserWarning, match="materialize_jac=False"):
        lm = LevenbergMarquardt(p["res"], jac_fun=p["jac"], solver=solver, tol=1e-8)
    params, state = lm.run(p["init"](), *p["args"]())
    case = {"cholesky": "lm_exp_chol"}.get(solver, f"lm_exp_{solver}")
    assert _rel(params, ref[f"{case}/params_0"]) <= 1e-8
    assert int(state.iter_num) == json.loads(str(ref["meta"]))[case]["iter_num"]


def test_fields_as_jaxopt():
    import dataclasses
    gn = [f.name for f in dataclasses.fields(GaussNewton)]
    assert gn == ["residual_fun", "maxiter", "tol", "implicit_diff", "implicit_diff_solve",
                  "has_aux", "verbose", "jit", "unroll", "jac_fun", "jvp_fun", "vjp_fun",
                  "optimality_jvp", "optimality_vjp"]
    lm = [f.name for f in dataclasses.fields(LevenbergMarquardt)]
    assert lm == ["residual_fun", "maxiter", "damping_parameter", "stop_criterion", "tol",
                  "xtol", "gtol", "solver", "geodesic", "verbose", "jac_fun", "materialize_jac",
                  "implicit_diff", "implicit_diff_solve", "has_aux", "jit", "unroll",
                  "jvp_fun", "vjp_fun", "optimality_jvp", "optimality_vjp"]
    lm = LevenbergMarquardt(R.PROBLEMS["rosen"]["res"])
    assert (lm.maxiter, lm.damping_parameter, lm.stop_criterion, lm.tol, lm.xtol, lm.gtol,
            lm.geodesic, lm.materialize_jac, lm.contribution_ratio_threshold) == (
        30, 1e-6, "grad-l2-norm", 1e-3, 1e-3, 1e-3, False, False, 0.75)
    gn = GaussNewton(R.PROBLEMS["rosen"]["res"])
    assert (gn.maxiter, gn.tol) == (30, 1e-5)
    assert GaussNewtonState._fields == ("iter_num", "residual", "value", "delta", "error",
                                        "gradient", "aux")
    assert LevenbergMarquardtState._fields == (
        "iter_num", "damping_factor", "increase_factor", "residual", "value", "delta", "error",
        "gradient", "jac", "jt", "jtj", "hess_res", "aux")


def test_finite_difference_jacobian_accuracy():
    from npopt.solvers.gauss_newton import _Residuals
    p = R.PROBLEMS["exp"]
    args = p["args"]()
    x = np.array([2.0, 1.1, 0.4])
    res = _Residuals(p["res"], False, None, None, None)
    r, _ = res(x, args, {})
    J = res.dense_jacobian(x, lambda v: v, r, args, {})
    np.testing.assert_allclose(J, p["jac"](x, *args), rtol=1e-9, atol=1e-10)
