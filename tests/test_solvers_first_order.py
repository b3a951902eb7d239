"""GradientDescent, ProximalGradient and ProjectedGradient against jaxopt 0.8.5.

The stored runs (tests/reference/make_solver_reference.py, x64, jitted) give
the final params, the iteration count, the final error and stepsize; npopt
must reach the same params to 1e-8 relative in the same number of iterations.
Plus known solutions (ridge's closed form), the loop's semantics, the
gradient sources, verbose output and bad input.
"""
import json
import os

import numpy as np
import pytest

import npopt
from npopt.solvers import GradientDescent, ProjectedGradient, ProximalGradient
from npopt.tree import tree_leaves
from reference import fixed_order as fo
from reference import solver_problems as sp

DATA = os.path.join(os.path.dirname(__file__), "reference", "data", "jaxopt", "solvers.npz")
Z = np.load(DATA)
META = json.loads(str(Z["meta"]))["cases"]
D = sp.data()


def _operator(kind):
    from npopt import projection, prox
    return getattr(prox, kind, None) or getattr(projection, kind)


def _run(name):
    cls, kw, fun_name, kind, hyper = sp.CASES[name]
    fun = sp.NP_FUNS[fun_name]
    args = sp.args_of(fun_name, D)
    x0 = sp.init_params(fun_name, D)
    if kind == "plain":
        return GradientDescent(fun=fun, value_and_grad=True, **kw).run(x0, *args)
    h = eval(hyper, {"np": np})
    if cls == "ProximalGradient":
        solver = ProximalGradient(fun=fun, prox=_operator(kind), value_and_grad=True, **kw)
    else:
        solver = ProjectedGradient(fun=fun, projection=_operator(kind), value_and_grad=True, **kw)
    return solver.run(x0, h, *args)


# Chaotic references: jaxopt (XLA) and npopt round differently, and on these
# cases the stored iteration count or last step is decided by rounding, so
# matching it would be luck. Measured with npopt: each case rerun with 1-ulp
# noise on every objective value and gradient entry (another rounding of the
# same function, as another summation order or CPU gives; 24 runs) and with
# one entry of X moved by one ulp (20 runs). For them test_matches_jaxopt
# checks what holds whatever the rounding: the iteration count within 10%
# (measured: +-1), the params to 1e-7 (measured: at most 4e-9 apart), and
# convergence (error <= tol, optimality error <= 10 tol). Every other case
# keeps its exact count, step and error.
CHAOTIC = {
    "gd_ridge": "1-ulp noise: 72 or 74 iterations (reference 73)",
    "pg_lasso_noaccel": "1-ulp noise: 50 to 52 iterations (reference 51); 50 with OpenBLAS's "
                        "Prescott kernels while the problem's loss used BLAS",
    "gd_ridge_noaccel_ls": "1-ulp changes of X flip the last accepted step between 2.0 and 4.0 "
                           "(the sufficient-decrease test compares numbers at the rounding level "
                           "of the loss); 40 iterations in every run",
}


def _optimality_error(name, params):
    cls, kw, fun_name, kind, hyper = sp.CASES[name]
    fun, args = sp.NP_FUNS[fun_name], sp.args_of(fun_name, D)
    if kind == "plain":
        return GradientDescent(fun=fun, value_and_grad=True, **kw).l2_optimality_error(
            params, *args)
    solver = (ProximalGradient(fun=fun, prox=_operator(kind), value_and_grad=True, **kw)
              if cls == "ProximalGradient" else
              ProjectedGradient(fun=fun, projection=_operator(kind), value_and_grad=True, **kw))
    return solver.l2_optimality_error(params, eval(hyper, {"np": np}), *args)


@pytest.mark.parametrize("name", sorted(sp.CASES))
def test_matches_jaxopt(name):
    params, state = _run(name)
    ref = META[name]
    chaotic = name in CHAOTIC
    if chaotic:
        assert abs(int(state.iter_num) - ref["iter_num"]) <= max(2, 0.1 * ref["iter_num"])
    else:
        assert int(state.iter_num) == ref["iter_num"]
    for i, leaf in enumerate(tree_leaves(params)):
        want = Z[f"{name}/params_{i}"]
        scale = max(np.max(np.abs(want)), 1e-300)
        assert np.max(np.abs(np.asarray(leaf) - want)) / scale <= (1e-7 if chaotic else 1e-8)
    if chaotic:
        tol = sp.CASES[name][1]["tol"]
        assert float(state.error) <= tol
        assert _optimality_error(name, params) <= 10 * tol
        return
    assert float(state.stepsize) == pytest.approx(ref["stepsize"], rel=1e-12)
    assert float(state.error) == pytest.approx(ref["error"], rel=1e-4)


def test_ridge_closed_form_and_optimality():
    X, y, lam = D["X"], D["y"], 0.1
    gd = GradientDescent(fun=sp.ridge_np, value_and_grad=True, tol=1e-12, maxiter=2000)
    w, state = gd.run(np.zeros(D["d"]), lam, X, y)
    n = y.shape[0]
    w_star = np.linalg.solve(X.T @ X / n + lam * np.eye(D["d"]), X.T @ y / n)
    # FISTA's criterion ||x+ - x|| / s is not the distance to the optimum
    np.testing.assert_allclose(w, w_star, rtol=0, atol=1e-8)
    assert gd.l2_optimality_error(w, lam, X, y) < 1e-8


@pytest.mark.parametrize("source", ["value_and_grad", "grad", "finite_differences",
                                    "value_and_grad_callable"])
def test_gradient_sources_agree(source):
    X, y, lam = D["X"], D["y"], 0.1

    def value(w, lam, X, y):
        return sp.ridge_np(w, lam, X, y)[0]

    def grad(w, lam, X, y):
        return sp.ridge_np(w, lam, X, y)[1]

    kw = dict(tol=1e-8, maxiter=500)
    solver = {"value_and_grad": lambda: GradientDescent(sp.ridge_np, value_and_grad=True, **kw),
              "grad": lambda: GradientDescent(value, grad=grad, **kw),
              "finite_differences": lambda: GradientDescent(value, **kw),
              "value_and_grad_callable": lambda: GradientDescent(value, value_and_grad=sp.ridge_np,
                                                                 **kw)}[source]()
    w, state = solver.run(np.zeros(D["d"]), lam, X, y)
    np.testing.assert_allclose(w, Z["gd_ridge/params_0"], rtol=0, atol=1e-7)


def test_has_aux_keeps_the_last_aux():
    def fun(w, lam, X, y):
        v, g = sp.ridge_np(w, lam, X, y)
        return (v, {"norm": np.linalg.norm(w)}), g
    w, state = GradientDescent(fun, value_and_grad=True, has_aux=True, tol=1e-8).run(
        np.zeros(D["d"]), 0.1, D["X"], D["y"])
    assert isinstance(state.aux, dict) and state.aux["norm"] > 0


def test_maxiter_bounds_the_loop_and_zero_returns_the_init():
    gd = GradientDescent(sp.ridge_np, value_and_grad=True, tol=0.0, maxiter=7)
    _, state = gd.run(np.zeros(D["d"]), 0.1, D["X"], D["y"])
    assert int(state.iter_num) == 7
    x0 = np.ones(D["d"])
    p, state = GradientDescent(sp.ridge_np, value_and_grad=True, maxiter=0).run(
        x0, 0.1, D["X"], D["y"])
    assert p is x0 and int(state.iter_num) == 0 and np.isinf(state.error)


def test_run_equals_the_manual_loop():
    gd = GradientDescent(sp.ridge_np, value_and_grad=True, tol=1e-6, maxiter=100)
    args = (0.1, D["X"], D["y"])
    p, s = np.zeros(D["d"]), None
    s = gd.init_state(p, *args)
    p, s = gd.update(p, s, *args)
    while s.error > gd.tol and s.iter_num < gd.maxiter:
        p, s = gd.update(p, s, *args)
    p2, s2 = gd.run(np.zeros(D["d"]), *args)
    np.testing.assert_array_equal(p, p2)
    assert s.iter_num == s2.iter_num


def test_verbose_prints_one_line_per_iteration(capsys):
    GradientDescent(sp.ridge_np, value_and_grad=True, maxiter=3, tol=0.0, verbose=True).run(
        np.zeros(D["d"]), 0.1, D["X"], D["y"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("INFO: npopt.GradientDescent: Iter: 1 ")
    assert "Stepsize" in lines[0]


def test_nonfinite_value_stops_and_is_reported():
    def fun(w):
        return np.sum(w ** 2) * (np.nan if np.any(w < 0.5) else 1.0), 2 * w
    with pytest.warns(RuntimeWarning, match="non-finite"):
        _, state = GradientDescent(fun, value_and_grad=True, maxiter=50).run(np.ones(3))
    assert int(state.iter_num) < 50 and not np.isfinite(state.error)


@pytest.mark.parametrize("kw, match", [
    (dict(maxiter=-1), "maxiter: expected a non-negative integer"),
    (dict(tol=-1e-3), "tol: expected a finite number >= 0"),
    (dict(tol=float("nan")), "tol: expected a finite number >= 0"),
    (dict(decrease_factor=1.5), "decrease_factor: expected a number in"),
    (dict(stepsize=float("inf")), "stepsize: expected a finite number"),
])
def test_bad_knobs(kw, match):
    with pytest.raises(ValueError, match=match):
        GradientDescent(sp.ridge_np, value_and_grad=True, **kw)


def test_bad_fun_outputs():
    with pytest.raises(ValueError, match="fun: expected a scalar value"):
        GradientDescent(lambda w: (w, w), value_and_grad=True).run(np.ones(3))
    with pytest.raises(ValueError, match="grad: leaf 0 has shape"):
        GradientDescent(lambda w: (np.sum(w), np.ones(4)), value_and_grad=True).run(np.ones(3))
    with pytest.raises(ValueError, match="grad: expected a gradient with the structure"):
        GradientDescent(lambda p: (np.sum(p["a"]), [p["a"]]), value_and_grad=True).run(
            {"a": np.ones(3)})


# ---- MirrorDescent: exponentiated gradient on the simplex ------------------

@pytest.mark.parametrize("name", sorted(sp.MIRROR_CASES))
def test_mirror_descent_matches_jaxopt(name):
    from npopt.solvers import MirrorDescent
    stepsize, maxiter, tol = sp.MIRROR_CASES[name]
    # fo.log: the C library's log (NumPy's np.log differs between AVX2 and AVX-512)
    pg = MirrorDescent.make_projection_grad(sp.softmax_np, fo.log)
    solver = MirrorDescent(fun=sp.least_squares_np, projection_grad=pg, stepsize=stepsize,
                           maxiter=maxiter, tol=tol, value_and_grad=True)
    sol, state = solver.run(np.ones(12) / 12, None, D["X"], D["y"])
    want = Z[f"{name}/params_0"]
    assert int(state.iter_num) == META[name]["iter_num"]
    assert np.max(np.abs(sol - want)) / np.max(np.abs(want)) <= 1e-8
    assert sol.sum() == pytest.approx(1.0, abs=1e-12) and np.all(sol > 0)
    # the fixed point: zero where converged
    if int(state.iter_num) < maxiter:
        assert solver.l2_optimality_error(sol, None, D["X"], D["y"]) < 10 * tol


@pytest.mark.parametrize("accel", [True, False])
def test_float32_params_stay_float32(accel):
    X, y = D["X"].astype(np.float32), D["y"].astype(np.float32)
    for solver, run_args in (
            (GradientDescent(sp.ridge_np, value_and_grad=True, acceleration=accel, maxiter=20),
             (np.float32(0.1), X, y)),
            (ProximalGradient(sp.least_squares_np, prox=_operator("prox_lasso"),
                              value_and_grad=True, acceleration=accel, maxiter=20),
             (0.05, X, y)),
            (ProjectedGradient(sp.least_squares_np, projection=_operator("projection_simplex"),
                               value_and_grad=True, acceleration=accel, maxiter=20),
             (1.0, X, y))):
        w, state = solver.run(np.zeros(D["d"], np.float32), *run_args)
        assert w.dtype == np.float32, type(solver).__name__
        assert state.stepsize.dtype == np.float32 and state.error.dtype == np.float32


# ---- BlockCoordinateDescent over npopt.objective's composite functions -----

@pytest.mark.parametrize("name", sorted(sp.BCD_CASES))
def test_block_cd_matches_jaxopt(name):
    from npopt import objective, prox
    from npopt.solvers import BlockCoordinateDescent
    obj, prox_name, hyper, maxiter, tol, shape = sp.BCD_CASES[name]
    solver = BlockCoordinateDescent(fun=getattr(objective, obj),
                                    block_prox=getattr(prox, prox_name), maxiter=maxiter, tol=tol)
    h = eval(hyper, {"np": np})
    sol, state = solver.run(np.zeros(shape), h, sp.bcd_data(obj, D))
    want = Z[f"{name}/params_0"]
    assert int(state.iter_num) == META[name]["iter_num"]
    assert np.max(np.abs(sol - want)) / np.max(np.abs(want)) <= 1e-8
    assert float(state.error) == pytest.approx(META[name]["error"], rel=1e-6)


def test_block_cd_lasso_reaches_the_proximal_gradient_solution():
    from npopt import objective, prox
    from npopt.solvers import BlockCoordinateDescent
    data = (D["X"], D["y"])
    bcd = BlockCoordinateDescent(fun=objective.least_squares, block_prox=prox.prox_lasso,
                                 maxiter=20000, tol=1e-10)
    w, state = bcd.run(np.zeros(D["d"]), 0.05, data)
    w_pg, _ = ProximalGradient(objective.least_squares.value_and_grad, prox=prox.prox_lasso,
                               value_and_grad=True, tol=1e-12, maxiter=5000).run(
        np.zeros(D["d"]), 0.05, data)
    np.testing.assert_allclose(w, w_pg, atol=1e-6)
    assert bcd.l2_optimality_error(w, 0.05, data) < 1e-6


def test_block_cd_wants_a_composite_linear_function():
    from npopt import prox
    from npopt.solvers import BlockCoordinateDescent
    with pytest.raises(TypeError, match="fun: expected an npopt.objective.CompositeLinearFunction"):
        BlockCoordinateDescent(fun=sp.least_squares_np, block_prox=prox.prox_lasso)
