"""Bisection, Broyden, FixedPointIteration, AndersonAcceleration and
AndersonWrapper against jaxopt 0.8.5.

The stored runs (tests/reference/make_root_fixed_point_reference.py, x64,
jitted) give the final params, the iteration and evaluation counts and the
final error; npopt must reach the same params to 1e-8 relative with the same
counts. Plus known solutions, pytree params, the loop's semantics, verbose
output, non-finite values and bad input.
"""
import json
import os

import numpy as np
import pytest

from npopt.solvers.anderson import (AndersonAcceleration, AndersonState, AndersonWrapper,
                                    AndersonWrapperState)
from npopt.solvers.base import OptStep
from npopt.solvers.bisection import Bisection, BisectionState
from npopt.solvers.broyden import Broyden, BroydenState
from npopt.solvers.fixed_point import FixedPointIteration, FixedPointState
from npopt.solvers.proximal_gradient import GradientDescent
from npopt.tree import tree_leaves, tree_structure
from reference import make_root_fixed_point_reference as P
from reference import fixed_order as fo
from reference import solver_problems as sp

DATA = os.path.join(os.path.dirname(__file__), "reference", "data", "jaxopt",
                    "root_fixed_point.npz")
Z = np.load(DATA)
META = json.loads(str(Z["meta"]))["cases"]
DOTTIE = 0.7390851332151607          # the fixed point of cos
CUBIC_ROOT = 2.0945514815423265      # x^3 - 2x - 5


def _solver(name, **extra):
    cls, problem, kw = P.CASES[name]
    kw = dict(kw, **extra)
    if cls == "AndersonWrapper":
        inner = GradientDescent(fun=sp.ridge_np, value_and_grad=True, **kw.pop("inner"))
        return AndersonWrapper(solver=inner, **kw)
    fun = P.NP[P.fun_name(problem)]
    if cls == "Bisection":
        return Bisection(optimality_fun=fun, **kw)
    if cls == "Broyden":
        kw.setdefault("jac", P.JAC[P.fun_name(problem)])
        return Broyden(fun=fun, **kw)
    return {"FixedPointIteration": FixedPointIteration,
            "AndersonAcceleration": AndersonAcceleration}[cls](fixed_point_fun=fun, **kw)


def _run(name, **extra):
    cls, problem, _ = P.CASES[name]
    solver = _solver(name, **extra)
    if cls == "AndersonWrapper":
        _, args, x0 = P.ridge_data()
        return solver.run(x0, *args)
    return solver.run(P.init_params(problem), *P.args_of(problem))


def _rel(got, want):
    return np.max(np.abs(np.asarray(got) - want)) / max(np.max(np.abs(want)), 1e-300)


def jaxopt_broyden_fun_evals(state, kw):
    """Broyden's num_fun_eval as jaxopt counts it. npopt counts the calls of
    ``fun`` it makes; jaxopt's line search also counts, per iteration, one
    evaluation it never makes (two under the armijo and goldstein conditions,
    whose backtracking restarts from a counted evaluation of the start
    point); a fixed stepsize has no line search."""
    if kw.get("stepsize", 0.0):
        return int(state.num_fun_eval)
    per_iteration = 2 if kw.get("condition") in ("armijo", "goldstein") else 1
    return int(state.num_fun_eval) + per_iteration * int(state.iter_num)


def _counted_run(name):
    cls, problem, kw = P.CASES[name]
    if cls != "Broyden":
        return _run(name), None
    calls = [0]
    fun = P.NP[P.fun_name(problem)]

    def counted(*args, **kwargs):
        calls[0] += 1
        return fun(*args, **kwargs)
    kw = dict(kw)
    kw.setdefault("jac", P.JAC[P.fun_name(problem)])
    return Broyden(fun=counted, **kw).run(P.init_params(problem), *P.args_of(problem)), calls


@pytest.mark.parametrize("name", list(P.CASES))
def test_matches_jaxopt(name):
    (params, state), calls = _counted_run(name)
    ref = META[name]
    assert int(state.iter_num) == ref["iter_num"]
    for i, leaf in enumerate(tree_leaves(params)):
        assert _rel(leaf, Z[f"{name}/params_{i}"]) <= 1e-8
    if calls is not None:                     # Broyden: true counts (see above)
        assert int(state.num_fun_eval) == calls[0]
        assert jaxopt_broyden_fun_evals(state, P.CASES[name][2]) == ref["num_fun_eval"]
        assert int(state.num_linesearch_iter) == ref["num_linesearch_iter"]
    else:
        for field in ("num_fun_eval", "num_linesearch_iter"):
            if field in ref:
                assert int(getattr(state, field)) == ref[field], field
    if "stepsize" in ref:
        assert float(state.stepsize) == pytest.approx(ref["stepsize"], rel=1e-12)
    if "failed_linesearch" in ref:
        assert bool(state.failed_linesearch) == ref["failed_linesearch"]
    if "inner_iter_num" in ref:
        assert int(state.solver_state.iter_num) == ref["inner_iter_num"]
        assert float(state.solver_state.stepsize) == pytest.approx(ref["inner_stepsize"])
    # the final error is a difference of nearly equal numbers (or a residual)
    # near the tolerance: its last digits are rounding
    assert float(state.error) == pytest.approx(ref["error"], rel=1e-3, abs=1e-12)


# ---- known solutions ---------------------------------------------------------

@pytest.mark.parametrize("cls", [FixedPointIteration, AndersonAcceleration])
def test_cos_fixed_point_is_the_dottie_number(cls):
    x, state = cls(fixed_point_fun=np.cos, tol=1e-12, maxiter=500).run(np.linspace(-1, 2, 6))
    np.testing.assert_allclose(x, DOTTIE, rtol=0, atol=1e-11)
    assert state.error <= 1e-12


@pytest.mark.parametrize("cls", [FixedPointIteration, AndersonAcceleration])
def test_affine_contraction_on_a_pytree(cls):
    A, b = P.D["A_contr"], P.D["b_contr"]
    z_star = np.linalg.solve(np.eye(7) - A, b)
    x0 = P.init_params("affine_tree")
    p, state = cls(fixed_point_fun=P.affine_tree_np, tol=1e-12, maxiter=1000).run(x0, A, b)
    assert tree_structure(p) == tree_structure(x0)
    assert p["v"].shape == (2, 2)
    np.testing.assert_allclose(np.concatenate([p["u"], p["v"].ravel()]), z_star, atol=1e-10)
    assert isinstance(state, FixedPointState if cls is FixedPointIteration else AndersonState)


def test_bisection_known_roots():
    x, state = Bisection(P.cubic_np, 2.0, 3.0, tol=1e-13, maxiter=100).run()
    assert x == pytest.approx(CUBIC_ROOT, abs=1e-13)
    assert state.low <= CUBIC_ROOT <= state.high and int(state.sign) == 1
    x, state = Bisection(P.square_np, lower=0.0, upper=2.0, tol=1e-14, maxiter=100).run(None, 2.0)
    assert x == pytest.approx(np.sqrt(2.0), abs=1e-14)
    # a decreasing function: sign -1
    x, state = Bisection(P.cos_minus_np, 0.0, 2.0, tol=1e-12, maxiter=100).run(None, 0.5)
    assert int(state.sign) == -1 and abs(np.cos(x) - 0.5 * x) <= 1e-12


def test_bisection_bracket_halves_every_iteration():
    solver = Bisection(P.cubic_np, 2.0, 3.0)
    state = solver.init_state()
    assert int(state.num_fun_eval) == 2 and np.isinf(state.value)
    for k in range(1, 6):
        x, state = solver.update(None, state)
        assert state.high - state.low == pytest.approx(2.0 ** -k)
        assert x in (state.low, state.high)
        assert state.error == abs(P.cubic_np(x))


def test_broyden_solves_the_systems():
    A, b = P.D["A_sys"], P.D["b_sys"]
    x, state = Broyden(P.cubic_system_np, tol=1e-12, jac=P.cubic_system_jac_np).run(
        np.zeros(6), A, b)
    assert np.linalg.norm(P.cubic_system_np(x, A, b)) <= 1e-12
    x, _ = Broyden(P.scipy_system_np, tol=1e-12, jac=P.scipy_system_jac_np).run(np.zeros(2))
    np.testing.assert_allclose(x, [0.8411639, 0.1588361], atol=1e-7)


def test_anderson_wrapper_reaches_the_ridge_solution():
    solver = _solver("aw_gd_ridge")
    _, (lam, X, y), x0 = P.ridge_data()
    w, state = solver.run(x0, lam, X, y)
    n = y.shape[0]
    w_star = np.linalg.solve(X.T @ X / n + lam * np.eye(X.shape[1]), X.T @ y / n)
    np.testing.assert_allclose(w, w_star, atol=1e-8)
    assert isinstance(state, AndersonWrapperState)
    assert solver.maxiter == 500 and solver.tol == 1e-8 and solver.mixing_frequency == 5
    assert solver.l2_optimality_error(w, lam, X, y) < 1e-7


def test_anderson_accelerates_the_fixed_point_iteration():
    # an affine map with spectral radius 0.99: ~2300 plain iterations for 1e-10
    rng = np.random.default_rng(0)
    Q = fo.qr(rng.standard_normal((7, 7)))[0]         # no LAPACK/BLAS: the same A everywhere
    A, b = fo.mm(Q * np.linspace(-0.5, 0.99, 7), Q.T), P.D["b_contr"]
    z_star = np.linalg.solve(np.eye(7) - A, b)
    x0 = P.init_params("affine_tree")
    kw = dict(tol=1e-10, maxiter=5000)
    p_fp, s_fp = FixedPointIteration(P.affine_tree_np, **kw).run(x0, A, b)
    p_aa, s_aa = AndersonAcceleration(P.affine_tree_np, ridge=0.0, **kw).run(x0, A, b)
    assert int(s_aa.iter_num) < int(s_fp.iter_num) / 10
    for p in (p_fp, p_aa):
        np.testing.assert_allclose(np.concatenate([p["u"], p["v"].ravel()]), z_star, atol=1e-7)


# ---- Broyden: where the line search's gradient comes from -------------------

@pytest.mark.parametrize("name", ["broyden_tight", "broyden_scipy_far", "broyden_tree",
                                  "broyden_far_armijo"])
def test_broyden_finite_differences_agree_with_jac(name):
    cls, problem, kw = P.CASES[name]
    fd = Broyden(fun=P.NP[P.fun_name(problem)], **kw)
    p_fd, s_fd = fd.run(P.init_params(problem), *P.args_of(problem))
    ref = META[name]
    assert int(s_fd.iter_num) == ref["iter_num"]
    # finite differences' own calls are not counted (documented)
    assert jaxopt_broyden_fun_evals(s_fd, kw) == ref["num_fun_eval"]
    for i, leaf in enumerate(tree_leaves(p_fd)):
        assert _rel(leaf, Z[f"{name}/params_{i}"]) <= 1e-6


def test_broyden_fixed_stepsize_never_calls_jac():
    def jac(*a):
        raise AssertionError("jac called")
    x, state = _run("broyden_fixed", jac=jac)
    assert int(state.num_linesearch_iter) == 0
    x2, _ = Broyden(P.cubic_system_np, tol=1e-10, maxiter=200,
                    stepsize=lambda k: 0.7).run(np.zeros(6), P.D["A_sys"], P.D["b_sys"])
    np.testing.assert_array_equal(x, x2)


def test_broyden_warm_start_from_an_optstep():
    # history_size given: by default it is maxiter, which differs between the runs
    solver = _solver("broyden_tight", maxiter=5, tol=0.0, history_size=20)
    args = P.args_of("cubic_system")
    first = solver.run(np.zeros(6), *args)
    assert isinstance(first, OptStep) and int(first.state.iter_num) == 5
    second = solver.run(first, *args)
    assert int(second.state.iter_num) == 10
    full = _solver("broyden_tight", maxiter=10, tol=0.0, history_size=20).run(np.zeros(6),
                                                                               *args)
    np.testing.assert_allclose(second.params, full.params, rtol=1e-13)


def test_broyden_history_defaults_to_maxiter():
    solver = Broyden(P.scipy_system_np, maxiter=40, jac=P.scipy_system_jac_np)
    assert solver.history_size == 40
    state = solver.init_state(np.zeros(2))
    assert state.d_history.shape == (40, 2) and state.gamma.dtype == np.float64
    assert BroydenState._fields == ("iter_num", "value", "stepsize", "error", "d_history",
                                    "c_history", "gamma", "aux", "failed_linesearch",
                                    "num_fun_eval", "num_linesearch_iter")


# ---- states, aux, dtype, the loop ---------------------------------------------

def test_state_fields_are_jaxopt_s():
    assert FixedPointState._fields == ("iter_num", "error", "aux", "num_fun_eval")
    assert AndersonState._fields == ("iter_num", "error", "params_history",
                                     "residuals_history", "residual_gram", "aux",
                                     "num_fun_eval")
    assert AndersonWrapperState._fields == ("iter_num", "solver_state", "error",
                                            "params_history", "residuals_history",
                                            "residual_gram")
    assert BisectionState._fields == ("iter_num", "value", "error", "low", "high", "sign",
                                      "aux", "num_fun_eval")


@pytest.mark.parametrize("cls", [FixedPointIteration, AndersonAcceleration])
def test_has_aux_keeps_the_last_aux(cls):
    x, state = cls(fixed_point_fun=P.cos_aux_np, has_aux=True, tol=1e-10).run(np.zeros(3))
    assert state.aux["sum"] == pytest.approx(np.sum(np.cos(x)), rel=1e-9)


def test_bisection_and_broyden_has_aux():
    def f(x):
        return P.cubic_np(x), {"x": x}
    x, state = Bisection(f, 2.0, 3.0, has_aux=True).run()
    assert state.aux["x"] == x
    def F(x):
        return P.scipy_system_np(x), np.sum(x)
    x, state = Broyden(F, has_aux=True, jac=P.scipy_system_jac_np, tol=1e-10).run(np.zeros(2))
    assert state.aux == np.sum(x)


@pytest.mark.parametrize("cls", [FixedPointIteration, AndersonAcceleration])
def test_float32_stays_float32(cls):
    x, state = cls(fixed_point_fun=np.cos, tol=1e-5).run(np.linspace(-1, 2, 6, dtype=np.float32))
    assert x.dtype == np.float32
    np.testing.assert_allclose(x, DOTTIE, atol=1e-5)
    if cls is AndersonAcceleration:
        assert state.params_history.dtype == np.float32


def test_anderson_does_not_mutate_the_previous_state():
    solver = AndersonAcceleration(np.cos, history_size=2)
    x = np.linspace(-1, 2, 4)
    state = solver.init_state(x)
    for _ in range(4):
        snapshot = [np.copy(a) for a in (state.params_history, state.residuals_history,
                                         state.residual_gram)]
        x_new, new_state = solver.update(x, state)
        for a, b in zip(snapshot, (state.params_history, state.residuals_history,
                                   state.residual_gram)):
            np.testing.assert_array_equal(a, b)
        x, state = x_new, new_state
    assert int(state.num_fun_eval) == 5      # one in init_state, as jaxopt


@pytest.mark.parametrize("name", ["fpi_cos", "aa_cos_tight", "bis_cubic", "broyden_tight",
                                  "aw_gd_ridge_fixed"])
def test_run_equals_the_manual_loop(name):
    cls, problem, _ = P.CASES[name]
    solver = _solver(name)
    if cls == "AndersonWrapper":
        _, args, x0 = P.ridge_data()
    else:
        args, x0 = P.args_of(problem), P.init_params(problem)
    p, s = x0, solver.init_state(x0, *args)
    p, s = solver.update(p, s, *args)
    while s.error > solver.tol and s.iter_num < solver.maxiter:
        p, s = solver.update(p, s, *args)
    p2, s2 = solver.run(x0, *args)
    for a, b in zip(tree_leaves(p), tree_leaves(p2)):
        np.testing.assert_array_equal(a, b)
    assert s.iter_num == s2.iter_num


def test_maxiter_zero_returns_the_init():
    x0 = np.ones(3)
    p, state = FixedPointIteration(np.cos, maxiter=0).run(x0)
    assert p is x0 and int(state.iter_num) == 0 and np.isinf(state.error)
    p, state = AndersonAcceleration(np.cos, maxiter=0).run(x0)
    assert p is x0 and int(state.iter_num) == 0


def test_bisection_without_bracket_check_drifts_to_upper():
    # as jaxopt: sign 0, every midpoint becomes the new low
    x, state = Bisection(P.square_np, 2.0, 3.0, check_bracket=False, maxiter=40).run(None, 2.0)
    assert int(state.sign) == 0 and x == pytest.approx(3.0, abs=1e-9)


# ---- verbose -----------------------------------------------------------------

@pytest.mark.parametrize("name, label", [
    ("fpi_cos", "Distance btw Iterates"), ("aa_cos", "Residual Norm"),
    ("bis_cubic", "Absolute Value Output"), ("broyden_tight", "Norm Output"),
    ("aw_gd_ridge", "Inner Solver Error")])
def test_verbose_prints_one_line_per_iteration(capsys, name, label):
    cls = P.CASES[name][0]
    _run(name, verbose=True, **({} if cls == "AndersonWrapper" else dict(maxiter=3, tol=0.0)))
    lines = [ln for ln in capsys.readouterr().out.strip().splitlines()
             if ln.startswith(f"INFO: npopt.{cls}:")]
    assert len(lines) == (META[name]["iter_num"] if cls == "AndersonWrapper" else 3)
    assert lines[0].startswith(f"INFO: npopt.{cls}: Iter: 1 {label} (stopping criterion): ")


def test_broyden_verbose_2_prints_the_line_search(capsys):
    _run("broyden_scipy_far", verbose=2, maxiter=2)
    out = capsys.readouterr().out
    assert "INFO: npopt.BacktrackingLineSearch: Iter: 1 " in out
    assert out.count("INFO: npopt.Broyden: Iter:") == 2
    assert "Stepsize" in out and "Number Linesearch Iterations" in out


# ---- non-finite values -------------------------------------------------------

def test_bisection_nonfinite_value_stops_and_is_reported():
    f = lambda x: np.nan if 2.4 < x < 2.6 else P.cubic_np(x)  # noqa: E731
    with pytest.warns(RuntimeWarning, match="non-finite"):
        x, state = Bisection(f, 2.0, 3.0).run()
    assert x == 2.5 and int(state.iter_num) == 1 and np.isnan(state.value)


@pytest.mark.parametrize("cls", [FixedPointIteration, AndersonAcceleration])
def test_fixed_point_nonfinite_stops(cls):
    f = lambda x: np.log(x - 1.0)  # noqa: E731 (leaves the domain)
    with pytest.warns(RuntimeWarning, match="non-finite"), np.errstate(invalid="ignore"):
        _, state = cls(fixed_point_fun=f, maxiter=50).run(np.full(2, 3.0))
    assert int(state.iter_num) < 50 and not np.isfinite(state.error)


def test_broyden_nonfinite_stops():
    F = lambda x: np.where(x > 0.5, np.nan, 1.0 - x)  # noqa: E731
    with pytest.warns(RuntimeWarning, match="non-finite"), \
            np.errstate(invalid="ignore"):
        _, state = Broyden(F, stepsize=1.0, maxiter=20).run(np.zeros(2))
    assert int(state.iter_num) < 20 and np.isnan(state.error)


# ---- bad input -----------------------------------------------------------------

def test_bisection_without_sign_change_names_lower_and_upper():
    with pytest.raises(ValueError, match=r"lower, upper: expected a bracket \[lower, upper\] "
                                         r"= \[3.0, 4.0\].*f\(lower\) = 16.0 and "
                                         r"f\(upper\) = 51.0.*widen"):
        Bisection(P.cubic_np, 3.0, 4.0).run()
    with pytest.raises(ValueError, match="not finite"), np.errstate(invalid="ignore"):
        Bisection(lambda x: np.log(x) - 1.0, -1.0, 4.0).run()
    # jaxopt's quirk: a root exactly at lower is "no sign change"
    with pytest.raises(ValueError, match="f\\(lower\\) = 0.0"):
        Bisection(P.square_np, 0.0, 1.0).run(None, 0.0)
    with pytest.raises(ValueError, match="optimality_fun: expected a scalar value"):
        Bisection(lambda x: np.array([x, x]), 0.0, 1.0).run()


@pytest.mark.parametrize("make, match", [
    (lambda: FixedPointIteration(np.cos, maxiter=-1), "maxiter: expected a non-negative"),
    (lambda: FixedPointIteration(np.cos, tol=-1.0), "tol: expected a finite number >= 0"),
    (lambda: FixedPointIteration(None), "fixed_point_fun: expected a callable"),
    (lambda: AndersonAcceleration(np.cos, history_size=1),
     "history_size: expected an integer >= 2"),
    (lambda: AndersonAcceleration(np.cos, mixing_frequency=0), "mixing_frequency: expected"),
    (lambda: AndersonAcceleration(np.cos, ridge=-1.0), "ridge: expected a finite number >= 0"),
    (lambda: AndersonAcceleration(np.cos, tol=float("nan")), "tol: expected a finite number"),
    (lambda: AndersonWrapper(GradientDescent(sp.ridge_np), history_size=0),
     "history_size: expected an integer >= 1"),
    (lambda: AndersonWrapper(np.cos), "solver: expected an npopt iterative solver"),
    (lambda: AndersonWrapper(GradientDescent(sp.ridge_np, maxiter=-2)), "maxiter: expected"),
    (lambda: Bisection(P.cubic_np, 2.0, 3.0, maxiter=-1), "maxiter: expected a non-negative"),
    (lambda: Bisection(P.cubic_np, 2.0, 3.0, tol=-1e-3), "tol: expected a finite number >= 0"),
    (lambda: Bisection(P.cubic_np, float("nan"), 3.0), "lower: expected a finite number"),
    (lambda: Bisection(P.cubic_np, 2.0, "3"), "upper: expected a finite number"),
    (lambda: Broyden(P.cubic_np, history_size=0), "history_size: expected an integer >= 1"),
    (lambda: Broyden(P.cubic_np, linesearch="zoom"), "linesearch: expected 'backtracking'"),
    (lambda: Broyden(P.cubic_np, condition="wolf"), "condition: expected one of"),
    (lambda: Broyden(P.cubic_np, maxls=0), "maxls: expected an integer >= 1"),
    (lambda: Broyden(P.cubic_np, decrease_factor=1.0), "decrease_factor: expected"),
    (lambda: Broyden(P.cubic_np, tol=-1.0), "tol: expected"),
    (lambda: Broyden(P.cubic_np, stepsize=float("inf")), "stepsize: expected a finite"),
])
def test_bad_knobs(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_bad_function_outputs():
    with pytest.raises(ValueError, match="fixed_point_fun: output leaf 0 has shape"):
        FixedPointIteration(lambda x: x[:2]).run(np.ones(3))
    with pytest.raises(ValueError, match="fixed_point_fun: expected an output with the struct"):
        AndersonAcceleration(lambda p: [p["a"]]).run({"a": np.ones(3)})
    with pytest.raises(ValueError, match="fun: output leaf 0 has shape"):
        Broyden(lambda x: x[:1]).run(np.ones(3))
    with pytest.raises(ValueError, match=r"jac: expected a \(2, 2\) Jacobian"):
        Broyden(P.scipy_system_np, jac=lambda x: np.eye(3)).run(np.zeros(2))
    with pytest.raises(TypeError, match="has_aux=True: expected the function to return"):
        FixedPointIteration(np.cos, has_aux=True).run(np.ones(3))
