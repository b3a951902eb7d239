"""Hager-Zhang on the solver engine (``linesearch='hager-zhang'`` in LBFGS,
BFGS and NonlinearCG): the machine's search (``kernels.solver_machine``,
the ``_hz_*`` phases) gives the Python search's numbers bit for bit on every
driver: the same iterates, states, iteration and evaluation counts, line
search failures and NaN stops (``engine.ENABLED = False`` runs the Python
solvers, as in test_engine).
"""
import numpy as np
import pytest

import npopt
from npopt import tree as T
from npopt.examples import problems as P
from npopt.kernels import solver_machine as K
from npopt.solvers import engine
from npopt.solvers.linesearch import HagerZhangLineSearch

from test_engine import (_quiet, assert_same_run, batch_problem, py_ridge, ridge_data,
                         rosen_vg, run_python_solver, same_tree, tree_vg, vridge)

SOLVERS = {"LBFGS": npopt.LBFGS, "BFGS": npopt.BFGS, "NonlinearCG": npopt.NonlinearCG}


def hz(cls, fun, **kw):
    return SOLVERS[cls](fun, value_and_grad=True, linesearch="hager-zhang", **kw)


def both(solver, x0, *args):
    """(the machine's run, the Python solver's run), warnings silenced."""
    with _quiet(), np.errstate(all="ignore"):
        assert engine.machine_unsupported(solver) is None
        return solver.run(x0, *args), run_python_solver(solver, x0, *args)


def ls_vg(w, A, b):
    """Least squares with elementwise NumPy only (the same bits on every CPU)."""
    r = np.sum(A * w, axis=1) - b
    return 0.5 * np.sum(r * r), np.sum(A * r[:, None], axis=0)


def tree32_vg(p):
    """test_engine's tree_vg in the params' dtype (tree_vg's weights are
    int64: its float32 runs compute in float64, which the machine, in the
    params' dtype, does not reproduce)."""
    v1, g1 = rosen_vg(p["a"].ravel())
    w = np.arange(1, p["b"].size + 1).reshape(p["b"].shape).astype(p["b"].dtype)
    return v1 + p["b"].dtype.type(0.5) * np.sum(p["b"] * p["b"] * w), \
        {"a": g1.reshape(p["a"].shape), "b": p["b"] * w}


def boxed_rosen_vg(x):
    """Rosenbrock, NaN outside |x_i| <= 1.3: HZ's bracket steps leave the
    domain (NaN values and slopes: failed searches, and runs that stop on
    NaN)."""
    value, g = rosen_vg(x)
    if np.any(np.abs(x) > 1.3):
        return value * np.nan, g * np.nan
    return value, g


def steep_vg(x):
    """0.5 ||x - 3||^2, NaN where any x_i > 1.5: from 0 the first trial (step
    1) leaves the domain, every search fails and the run stops on NaN."""
    r = x - 3.0
    value = 0.5 * np.sum(r * r)
    if np.any(x > 1.5):
        return value * np.nan, r * np.nan
    return value, r


def wavy_vg(x):
    """A non-convex sum of waves: trials above phi(0) + eps_k with phi' < 0
    (the bracket's B2 and the update subroutine's bisection U3)."""
    value = np.sum(x.dtype.type(0.05) * x * x + np.sin(x.dtype.type(3.0) * x))
    return value, x.dtype.type(0.1) * x + x.dtype.type(3.0) * np.cos(x.dtype.type(3.0) * x)


def flat_domain_vg(x):
    """sum log(1 + exp(-x)), NaN where any |x_i| > 10: the bracket expands
    into NaN after some finite trials (a failed search, then a NaN stop)."""
    value = np.sum(np.log1p(np.exp(-x)))
    g = -1 / (1 + np.exp(x))
    if np.any(np.abs(x) > 10):
        return value * np.nan, g * np.nan
    return value, g


def neginf_vg(x):
    """Rosenbrock, -inf beyond x_0 > 1.05 (HZ's bracket stops on a first
    value of -inf)."""
    value, g = rosen_vg(x)
    if x[0] > 1.05:
        return x.dtype.type(-np.inf), g
    return value, g


CONFIGS = [{}, {"maxls": 1}, {"maxls": 2}, {"maxls": 0}, {"linesearch_init": "max"},
           {"linesearch_init": "current"}, {"maxiter": 1}]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("kw", CONFIGS, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items())
                         or "default")
@pytest.mark.parametrize("cls", sorted(SOLVERS))
def test_rosenbrock(cls, kw, dtype):
    solver = hz(cls, rosen_vg, **{"tol": 1e-8, "maxiter": 120, **kw})
    x0 = np.linspace(-1.2, 1.0, 10).astype(dtype)
    a, b = both(solver, x0)
    assert a.params.dtype == dtype
    assert_same_run(a, b)
    if kw.get("maxls") != 0:
        assert int(a.state.num_fun_eval) > 3 * int(a.state.iter_num)    # the searches ran


@pytest.mark.parametrize("cls,kw", [("LBFGS", {"history_size": 3}), ("LBFGS", {"use_gamma": False}),
                                    ("LBFGS", {"history_size": 0}),
                                    ("LBFGS", {"stop_if_linesearch_fails": True, "maxls": 1}),
                                    ("NonlinearCG", {"method": "fletcher-reeves"}),
                                    ("NonlinearCG", {"method": "hestenes-stiefel"})])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_solver_options(cls, kw, dtype):
    solver = hz(cls, rosen_vg, **{"tol": 1e-8, "maxiter": 100, **kw})
    a, b = both(solver, np.linspace(-1.2, 1.0, 10).astype(dtype))
    assert_same_run(a, b)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("cls", sorted(SOLVERS))
def test_least_squares_and_a_pytree(cls, dtype):
    rng = np.random.default_rng(1)
    A = rng.standard_normal((40, 12)).astype(dtype)
    b = rng.standard_normal(40).astype(dtype)
    solver = hz(cls, ls_vg, tol=1e-7, maxiter=80)
    a, r = both(solver, np.zeros(12, dtype), A, b)
    assert_same_run(a, r)
    p0 = {"a": np.linspace(-1.0, 1.2, 6).reshape(2, 3).astype(dtype),
          "b": np.ones(4, dtype)}
    assert_same_run(*both(hz(cls, tree32_vg, tol=1e-9, maxiter=40), p0))


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("cls", sorted(SOLVERS))
def test_failures_and_nan(cls, dtype):
    # searches that fail on NaN trials, runs that stop on NaN, a value of
    # -inf at the bracket's first trial
    x0 = np.linspace(-1.2, 1.0, 10).astype(dtype)
    a, b = both(hz(cls, boxed_rosen_vg, tol=1e-8, maxiter=60), x0)
    assert_same_run(a, b)
    a, b = both(hz(cls, steep_vg, tol=1e-8, maxiter=20), np.zeros(5, dtype))
    assert_same_run(a, b)
    assert not np.isfinite(float(a.state.value)) or not np.isfinite(float(a.state.error))
    a, b = both(hz(cls, neginf_vg, tol=1e-8, maxiter=30), x0)
    assert_same_run(a, b)
    a, b = both(hz(cls, flat_domain_vg, tol=1e-8, maxiter=50), np.zeros(4, dtype))
    assert_same_run(a, b)
    if cls == "LBFGS":
        assert int(a.state.iter_num) > 5 and not np.isfinite(float(a.state.value))


@pytest.mark.parametrize("kw", [{}, {"maxls": 1}, {"maxls": 3}], ids=["default", "maxls=1",
                                                                      "maxls=3"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("cls", sorted(SOLVERS))
def test_non_convex(cls, dtype, kw):
    # B2 and U3 (trials above the threshold going down); with maxls=1 the
    # searches fail at maxls with finite values and the runs go on
    a, b = both(hz(cls, wavy_vg, tol=1e-8, maxiter=50, **kw),
                np.linspace(-2, 2, 7).astype(dtype))
    assert_same_run(a, b)
    if cls == "LBFGS" and kw.get("maxls") == 1:
        assert bool(a.state.failed_linesearch) and int(a.state.iter_num) == 50
        assert np.isfinite(float(a.state.value))


def test_a_failing_search_stops_lbfgs_when_asked():
    x0 = np.linspace(-1.2, 1.0, 10)
    solver = hz("LBFGS", boxed_rosen_vg, tol=1e-8, maxiter=60, stop_if_linesearch_fails=True)
    a, b = both(solver, x0)
    assert_same_run(a, b)
    assert bool(a.state.failed_linesearch)
    solver = hz("LBFGS", steep_vg, tol=1e-8, maxiter=20)
    a, b = both(solver, np.zeros(5))
    assert_same_run(a, b)
    assert bool(a.state.failed_linesearch) and int(a.state.iter_num) == 1    # NaN: stops


def test_warm_start():
    p0 = {"a": np.linspace(-1.0, 1.2, 6).reshape(2, 3), "b": np.ones(4)}
    s1 = hz("LBFGS", tree_vg, tol=1e-9, maxiter=5)
    a, b = both(s1, p0)
    assert_same_run(a, b)
    s2 = hz("LBFGS", tree_vg, tol=1e-9, maxiter=100)
    with _quiet():
        assert_same_run(s2.run(a), run_python_solver(s2, b))


def test_an_instance_stays_on_the_python_solver():
    solver = npopt.LBFGS(rosen_vg, value_and_grad=True,
                         linesearch=HagerZhangLineSearch(rosen_vg, value_and_grad=True))
    assert engine.machine_unsupported(solver) is not None
    assert engine.machine_unsupported(hz("BFGS", rosen_vg)) is None


# --------------------------------------------------------------------------
# The compiled driver and batches.

@pytest.mark.parametrize("cls", sorted(SOLVERS))
def test_compiled_driver(cls):
    X, y = ridge_data(1)
    x0 = np.linspace(-0.5, 0.5, 6)
    compiled = hz(cls, P.ridge, tol=1e-10, maxiter=100)
    python = hz(cls, py_ridge, tol=1e-10, maxiter=100)
    assert engine.compiled_objective(compiled) is not None
    assert engine.compiled_objective(python) is None
    a = compiled.run(x0, X[0], y[0], 0.1)
    assert_same_run(a, python.run(x0, X[0], y[0], 0.1))
    assert_same_run(a, run_python_solver(python, x0, X[0], y[0], 0.1))
    assert int(a.state.iter_num) > 3


@pytest.mark.parametrize("cls", sorted(SOLVERS))
def test_every_lane_is_a_single_run(cls):
    B = 6
    x0, X, y, lam = batch_problem(B, 7, bad_lanes=[3])
    kw = dict(tol=1e-9, maxiter=40)
    singles = []
    for i in range(B):
        a, b = both(hz(cls, py_ridge, **kw), x0[i], X[i], y[i], lam[i])
        assert_same_run(a, b)
        singles.append(a)
    runs = {
        "compiled": hz(cls, P.ridge, **kw).run_batch(x0, X, y, lam),
        "vectorized": hz(cls, vridge, **kw).run_batch(x0, X, y, lam, vectorized=True),
        "python": hz(cls, py_ridge, **kw).run_batch(x0, X, y, lam),
    }
    for name, r in runs.items():
        for i, s in enumerate(singles):
            lane = lambda tree: T.tree_map(lambda a: a[i], tree)   # noqa: E731
            assert same_tree(lane(r.params), s.params), (name, i)
            for f in s.state._fields:
                if f != "aux":
                    assert same_tree(lane(getattr(r.state, f)), getattr(s.state, f)), \
                        (name, i, f)
        assert r.status[3] == K.NONFINITE, name
