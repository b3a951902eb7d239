"""The solver engine (npopt.solvers.engine, npopt.kernels.solver_machine):

* ``LBFGS.run`` on the compiled state machine gives the Python solver's
  numbers bit for bit (the Python solver is still there: ``update`` and
  ``engine.ENABLED = False``), so the jaxopt reference tests of
  test_quasi_newton hold for the machine too;
* the compiled driver (a numba objective) gives the Python driver's numbers;
* a batched run (``npopt.vmap`` / ``run_batch``) gives, on every lane, the
  numbers of a single run on that lane, whatever the other lanes do and
  whichever driver runs them (compiled, vectorised, per-lane Python, an
  executor).
"""
import concurrent.futures
import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import npopt
from npopt import tree as T
from npopt.examples import problems as P
from npopt.kernels import solver_machine as K
from npopt.solvers import engine


def rosen_vg(x):
    """Rosenbrock in NumPy (elementwise only: the same bits on every CPU)."""
    a = x[1:] - x[:-1] ** 2
    b = 1 - x[:-1]
    value = np.sum(100.0 * a * a + b * b)
    g = np.zeros_like(x)
    g[1:] += 200 * a
    g[:-1] += -400 * x[:-1] * a - 2 * b
    return value, g


def tree_vg(p):
    """A dict-of-leaves problem (two leaves: slopes and norms sum per leaf)."""
    v1, g1 = rosen_vg(p["a"].ravel())
    v2 = 0.5 * np.sum(p["b"] * p["b"] * np.arange(1, p["b"].size + 1).reshape(p["b"].shape))
    g2 = p["b"] * np.arange(1, p["b"].size + 1).reshape(p["b"].shape)
    return v1 + v2, {"a": g1.reshape(p["a"].shape), "b": g2}


def same_tree(a, b):
    la, lb = T.tree_leaves(a), T.tree_leaves(b)
    return len(la) == len(lb) and all(
        np.asarray(x).dtype == np.asarray(y).dtype
        and np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True) for x, y in zip(la, lb))


def run_python_solver(solver, x0, *args):
    old = engine.ENABLED
    engine.ENABLED = False
    try:
        return solver.run(x0, *args)
    finally:
        engine.ENABLED = old


def assert_same_run(a, b):
    assert same_tree(a.params, b.params)
    for f in a.state._fields:
        if f in ("value",):     # the machine keeps the value in the params' dtype
            va, vb = np.asarray(getattr(a.state, f)), np.asarray(getattr(b.state, f))
            assert va == vb or (np.isnan(va) and np.isnan(vb)), f
        else:
            assert same_tree(getattr(a.state, f), getattr(b.state, f)), f


CONFIGS = [
    {}, {"linesearch_init": "max"}, {"linesearch_init": "current"}, {"history_size": 0},
    {"history_size": 3}, {"use_gamma": False}, {"stepsize": 1e-3}, {"maxls": 2},
    {"maxls": 0}, {"maxiter": 1}, {"max_stepsize": 0.5, "min_stepsize": 1e-2},
    {"stop_if_linesearch_fails": True, "maxls": 2},
    {"linesearch": "backtracking"}, {"linesearch": "backtracking", "maxls": 3},
]


@pytest.mark.parametrize("kw", CONFIGS, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items())
                         or "default")
def test_machine_equals_python_solver_float64(kw):
    solver = npopt.LBFGS(rosen_vg, value_and_grad=True, **{"tol": 1e-8, "maxiter": 200, **kw})
    x0 = np.linspace(-1.2, 1.0, 10)
    assert engine.lbfgs_unsupported(solver) is None
    assert_same_run(solver.run(x0), run_python_solver(solver, x0))


@pytest.mark.parametrize("condition", ["armijo", "goldstein", "wolfe", "strong-wolfe"])
def test_machine_equals_python_solver_backtracking_conditions(condition):
    solver = npopt.LBFGS(rosen_vg, value_and_grad=True, tol=1e-8, maxiter=200,
                         linesearch="backtracking")
    solver.linesearch_solver.condition = condition
    x0 = np.linspace(-1.2, 1.0, 10)
    assert_same_run(solver.run(x0), run_python_solver(solver, x0))


OTHER_CONFIGS = [
    (npopt.BFGS, {}), (npopt.BFGS, {"linesearch": "backtracking"}),
    (npopt.BFGS, {"stepsize": 1e-3}), (npopt.BFGS, {"linesearch_init": "max", "maxls": 2}),
    (npopt.NonlinearCG, {}), (npopt.NonlinearCG, {"method": "fletcher-reeves"}),
    (npopt.NonlinearCG, {"method": "hestenes-stiefel"}),
    (npopt.NonlinearCG, {"linesearch": "backtracking"}), (npopt.NonlinearCG, {"maxls": 2}),
]


@pytest.mark.parametrize("cls,kw", OTHER_CONFIGS,
                         ids=lambda v: v.__name__ if isinstance(v, type) else
                         ",".join(f"{k}={x}" for k, x in v.items()) or "default")
def test_bfgs_and_cg_machines_equal_their_python_solvers(cls, kw):
    solver = cls(rosen_vg, value_and_grad=True, **{"tol": 1e-8, "maxiter": 150, **kw})
    assert engine.machine_unsupported(solver) is None
    x0 = np.linspace(-1.2, 1.0, 8)
    with _quiet():
        assert_same_run(solver.run(x0), run_python_solver(solver, x0))
    if "linesearch" not in kw and "stepsize" not in kw:      # float32: zoom
        x32 = x0.astype(np.float32)
        with _quiet():
            assert_same_run(solver.run(x32), run_python_solver(solver, x32))
    p0 = {"a": np.linspace(-1.0, 1.2, 6).reshape(2, 3), "b": np.ones(4)}
    tree_solver = cls(tree_vg, value_and_grad=True, **{"tol": 1e-9, "maxiter": 40, **kw})
    with _quiet():
        assert_same_run(tree_solver.run(p0), run_python_solver(tree_solver, p0))


@pytest.mark.parametrize("cls", [npopt.BFGS, npopt.NonlinearCG])
def test_bfgs_and_cg_batches_are_single_runs(cls):
    x0, X, y, lam = batch_problem(5, 3, bad_lanes=[2])
    solver = cls(P.ridge, value_and_grad=True, tol=1e-9, maxiter=60)
    r = solver.run_batch(x0, X, y, lam)
    for i in range(5):
        with _quiet():
            s = solver.run(x0[i], X[i], y[i], lam[i])
        for f in s.state._fields:
            if f != "aux":
                assert same_tree(T.tree_map(lambda a: a[i], getattr(r.state, f)),
                                 getattr(s.state, f)), (i, f)
        assert np.array_equal(r.params[i], s.params, equal_nan=True)
    assert r.status[2] == K.NONFINITE


def ls_vg(w, A, b):
    """Least squares with elementwise NumPy only (the same bits on every CPU)."""
    r = np.sum(A * w, axis=1) - b
    return 0.5 * np.sum(r * r), np.sum(A * r[:, None], axis=0)


def pg_cases(dtype):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((30, 8)).astype(dtype)
    b = rng.standard_normal(30).astype(dtype)
    GD, PG, PJ = npopt.GradientDescent, npopt.ProximalGradient, npopt.ProjectedGradient
    common = dict(value_and_grad=True, tol=1e-6, maxiter=300)
    lasso = dict(prox=npopt.prox.prox_lasso)
    return [
        ("gd", GD(ls_vg, **common), (A, b)),
        ("gd-noaccel", GD(ls_vg, acceleration=False, **common), (A, b)),
        ("gd-fixed", GD(ls_vg, stepsize=0.01, **common), (A, b)),
        ("gd-maxls1", GD(ls_vg, maxls=1, **common), (A, b)),
        ("lasso", PG(ls_vg, **lasso, **common), (0.5, A, b)),
        ("lasso-noaccel", PG(ls_vg, acceleration=False, **lasso, **common), (0.5, A, b)),
        ("box", PJ(ls_vg, projection=npopt.projection.projection_box, **common),
         ((-0.1, 0.1), A, b)),
    ]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", range(7))
def test_proximal_gradient_machines_equal_their_python_solvers(case, dtype):
    name, solver, args = pg_cases(dtype)[case]
    assert engine.machine_unsupported(solver) is None
    x0 = np.zeros(8, dtype)
    a, b = solver.run(x0, *args), run_python_solver(solver, x0, *args)
    assert_same_run(a, b)
    assert int(a.state.iter_num) > 10
    # a pytree through gradient descent
    if name == "gd":
        p0 = {"a": np.linspace(-1.0, 1.2, 6).reshape(2, 3), "b": np.ones(4)}
        gd = npopt.GradientDescent(tree_vg, value_and_grad=True, tol=1e-6, maxiter=50)
        with _quiet():
            assert_same_run(gd.run(p0), run_python_solver(gd, p0))


def test_proximal_gradient_batches_are_single_runs():
    # lasso with a per-lane regularisation (batched hyperparams_prox), lane by
    # lane and vectorised (the prox is applied lane by lane), and gradient
    # descent with a numba objective (compiled lanes)
    x0, X, y, lam = batch_problem(5, 11)
    reg = np.linspace(0.0, 0.3, 5)

    def py_ls(w, X, y):
        return P.ridge(w, X, y, 0.0)

    def v_ls(W, X, y):
        return vridge(W, X, y, np.zeros(W.shape[0]))
    lasso = npopt.ProximalGradient(py_ls, value_and_grad=True, prox=npopt.prox.prox_lasso,
                                   tol=1e-8, maxiter=200)
    vlasso = npopt.ProximalGradient(v_ls, value_and_grad=True, prox=npopt.prox.prox_lasso,
                                    tol=1e-8, maxiter=200)
    r1 = lasso.run_batch(x0, reg, X, y)
    r2 = vlasso.run_batch(x0, reg, X, y, vectorized=True)
    gd = npopt.GradientDescent(P.ridge, value_and_grad=True, tol=1e-8, maxiter=200)
    r3 = gd.run_batch(x0, X, y, lam)
    for i in range(5):
        s = lasso.run(x0[i], reg[i], X[i], y[i])
        for r in (r1, r2):
            assert np.array_equal(r.params[i], s.params) and r.state.t[i] == s.state.t
            assert r.state.iter_num[i] == s.state.iter_num
            assert np.array_equal(r.state.velocity[i], s.state.velocity)
        s = gd.run(x0[i], X[i], y[i], lam[i])
        assert np.array_equal(r3.params[i], s.params) and r3.state.iter_num[i] == s.state.iter_num
    assert np.count_nonzero(r1.params[-1] == 0) > np.count_nonzero(r1.params[0] == 0)


@pytest.mark.parametrize("kw", [{}, {"history_size": 3}, {"linesearch_init": "current"}])
def test_machine_equals_python_solver_float32_zoom(kw):
    # float32 scalars round as NumPy's float32 scalars (constants in the
    # params' dtype, no promotion to float64)
    solver = npopt.LBFGS(rosen_vg, value_and_grad=True, tol=1e-4, maxiter=200, **kw)
    x0 = np.linspace(-1.2, 1.0, 10).astype(np.float32)
    a, b = solver.run(x0), run_python_solver(solver, x0)
    assert a.params.dtype == np.float32
    assert_same_run(a, b)


def test_machine_equals_python_solver_on_a_pytree_and_a_warm_start():
    p0 = {"a": np.linspace(-1.0, 1.2, 6).reshape(2, 3), "b": np.ones(4)}
    solver = npopt.LBFGS(tree_vg, value_and_grad=True, tol=1e-9, maxiter=7)
    a, b = solver.run(p0), run_python_solver(solver, p0)
    assert_same_run(a, b)
    # warm start from the OptStep: the machine continues the histories
    s2 = npopt.LBFGS(tree_vg, value_and_grad=True, tol=1e-9, maxiter=100)
    assert_same_run(s2.run(a), run_python_solver(s2, b))


def test_finite_differences_and_value_only_calls_match():
    def f(x):
        return rosen_vg(x)[0]
    solver = npopt.LBFGS(f, tol=1e-6, maxiter=50, linesearch="backtracking")
    solver.linesearch_solver.condition = "armijo"      # asks for values only
    x0 = np.linspace(-1.2, 1.0, 5)
    with pytest.warns(npopt.solvers.base.FiniteDifferenceWarning):
        a = solver.run(x0)
    assert_same_run(a, run_python_solver(solver, x0))


def test_pairwise_norm_is_numpys_sum():
    rng = np.random.default_rng(3)
    for n in [1, 7, 8, 9, 127, 128, 129, 1000, 4097, 33333]:
        for dt in (np.float32, np.float64):
            x = (rng.standard_normal(n) * 10.0 ** rng.integers(-3, 4, n)).astype(dt)
            seg = np.array([0, n // 3, n], np.int64)
            ref = np.sqrt(np.sum(np.square(x[:n // 3])) + np.sum(np.square(x[n // 3:])))
            assert K.l2_norm(x, seg, dt(0)) == ref


# --------------------------------------------------------------------------
# The compiled driver.

def py_ridge(w, X, y, lam):
    return P.ridge(w, X, y, lam)


def ridge_data(B, m=30, n=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((B, m, n))
    y = rng.standard_normal((B, m))
    return X, y


def test_compiled_driver_equals_python_driver():
    X, y = ridge_data(1)
    x0 = np.zeros(6)
    compiled = npopt.LBFGS(P.ridge, value_and_grad=True, tol=1e-10)
    python = npopt.LBFGS(py_ridge, value_and_grad=True, tol=1e-10)
    assert engine.compiled_objective(compiled) is not None
    assert engine.compiled_objective(python) is None
    a = compiled.run(x0, X[0], y[0], 0.1)
    b = python.run(x0, X[0], y[0], 0.1)
    assert_same_run(a, b)
    assert int(a.state.iter_num) > 3
    # jit=False takes the Python driver
    c = npopt.LBFGS(P.ridge, value_and_grad=True, tol=1e-10, jit=False)
    assert engine.compiled_objective(c) is None
    assert_same_run(c.run(x0, X[0], y[0], 0.1), a)


def test_compiled_driver_with_a_separate_gradient():
    from numba import njit

    value = njit(lambda w, X, y, lam: P.ridge(w, X, y, lam)[0])
    grad = njit(lambda w, X, y, lam: P.ridge(w, X, y, lam)[1])
    X, y = ridge_data(1)
    s = npopt.LBFGS(value, grad=grad, tol=1e-10)
    assert engine.compiled_objective(s) is not None
    ref = npopt.LBFGS(P.ridge, value_and_grad=True, tol=1e-10).run(np.zeros(6), X[0], y[0], 0.1)
    assert_same_run(s.run(np.zeros(6), X[0], y[0], 0.1), ref)


# --------------------------------------------------------------------------
# Batched runs: every lane is a single run.

def batch_problem(B, seed, bad_lanes=()):
    X, y = ridge_data(B, seed=seed)
    rng = np.random.default_rng(seed + 1)
    x0 = rng.standard_normal((B, 6)) * 10.0 ** rng.integers(-2, 3, (B, 1))
    lam = rng.uniform(1e-3, 1.0, B)
    for i in bad_lanes:
        x0[i, 0] = np.nan         # a lane that stops at once on a NaN
    return x0, X, y, lam


def vridge(W, X, y, lam):
    """ridge vectorised over lanes (the lanes that asked, stacked)."""
    out = [P.ridge(W[k], X[k], y[k], lam[k]) for k in range(W.shape[0])]
    return np.array([o[0] for o in out]), np.stack([o[1] for o in out])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(B=st.integers(1, 7), seed=st.integers(0, 10_000), maxiter=st.sampled_from([3, 50]),
       bad=st.lists(st.integers(0, 6), max_size=2),
       ls=st.sampled_from(["zoom", "backtracking"]))
def test_every_lane_is_a_single_run(B, seed, maxiter, bad, ls):
    bad = [i for i in bad if i < B]
    x0, X, y, lam = batch_problem(B, seed, bad)
    solver = npopt.LBFGS(P.ridge, value_and_grad=True, tol=1e-9, maxiter=maxiter, linesearch=ls)
    singles = []
    for i in range(B):
        with np.errstate(all="ignore"), _quiet():
            singles.append(solver.run(x0[i], X[i], y[i], lam[i]))
    runs = {
        "compiled": solver.run_batch(x0, X, y, lam),
        "compiled-1-thread": engine.run_batch(solver, x0, (X, y, lam), threads=1),
        "vectorized": npopt.LBFGS(vridge, value_and_grad=True, tol=1e-9, maxiter=maxiter,
                                  linesearch=ls).run_batch(x0, X, y, lam, vectorized=True),
        "python": npopt.LBFGS(py_ridge, value_and_grad=True, tol=1e-9, maxiter=maxiter,
                              linesearch=ls).run_batch(x0, X, y, lam),
    }
    for name, r in runs.items():
        for i, s in enumerate(singles):
            lane = lambda tree: T.tree_map(lambda a: a[i], tree)   # noqa: E731
            assert same_tree(lane(r.params), s.params), (name, i)
            for f in s.state._fields:
                if f == "aux":
                    continue
                assert same_tree(lane(getattr(r.state, f)), getattr(s.state, f)), (name, i, f)
            assert r.status[i] == engine.status_of(solver, s.state), (name, i)
        for i in bad:
            assert r.status[i] == K.NONFINITE and r.state.iter_num[i] == 1


class _quiet:
    def __enter__(self):
        import warnings
        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *a):
        self._w.__exit__(*a)


def test_lanes_retire_on_their_own():
    # a lane that needs many iterations does not hold the others back: their
    # evaluation counts are their own single runs' counts
    B = 6
    x0, X, y, lam = batch_problem(B, 5)
    X[0] *= np.logspace(0, 3, 6)            # ill-conditioned lane
    solver = npopt.LBFGS(P.ridge, value_and_grad=True, tol=1e-10, maxiter=500)
    r = solver.run_batch(x0, X, y, lam)
    counts = [int(solver.run(x0[i], X[i], y[i], lam[i]).state.num_fun_eval) for i in range(B)]
    assert list(r.state.num_fun_eval) == counts
    assert counts[0] > 2 * max(counts[1:])


def test_in_axes_none_shared_args_and_kwargs():
    x0, X, y, lam = batch_problem(4, 2)

    def f(w, X, y, lam=0.1):
        return P.ridge(w, X, y, lam)
    solver = npopt.LBFGS(f, value_and_grad=True, tol=1e-9)
    # shared X (in_axes None), shared init_params, batched keyword argument
    r = npopt.vmap(solver.run, in_axes=(None, None, 0))(x0[0], X[0], y, lam=lam)
    assert isinstance(r, npopt.OptStep) and r.params.shape == (4, 6)
    for i in range(4):
        s = solver.run(x0[0], X[0], y[i], lam=lam[i])
        assert np.array_equal(r.params[i], s.params)
    # a batch axis other than 0
    r2 = npopt.vmap(solver.run, in_axes=(1, None, 0))(x0.T.copy(), X[0], y, lam=lam)
    assert same_tree(r2.params, npopt.vmap(solver.run, in_axes=(0, None, 0))(
        x0, X[0], y, lam=lam).params)


def test_pytree_params_batched():
    B = 3
    rng = np.random.default_rng(0)
    p0 = {"a": rng.standard_normal((B, 2, 3)), "b": rng.standard_normal((B, 4))}
    solver = npopt.LBFGS(tree_vg, value_and_grad=True, tol=1e-8, maxiter=100)
    r = solver.run_batch(p0)
    for i in range(B):
        s = solver.run({"a": p0["a"][i], "b": p0["b"][i]})
        assert same_tree(T.tree_map(lambda a: a[i], r.params), s.params)
        assert same_tree(T.tree_map(lambda a: a[i], r.state.s_history), s.state.s_history)


def test_bad_batches_are_refused_before_any_work():
    x0, X, y, lam = batch_problem(3, 0)
    solver = npopt.LBFGS(P.ridge, value_and_grad=True)
    with pytest.raises(ValueError, match="lane counts"):
        solver.run_batch(x0, X[:2], y, lam)
    with pytest.raises(ValueError, match="in_axes"):
        solver.run_batch(x0, X, y, lam, in_axes=(0, 0))
    with pytest.raises(ValueError, match="nothing is batched"):
        solver.run_batch(x0[0], X[0], y[0], lam[0], in_axes=None)
    with pytest.raises(TypeError, match="bound run method"):
        npopt.vmap(P.ridge)
    with pytest.raises(ValueError, match="chunks"):
        solver.run_batch(x0, X, y, lam, chunks=0)
    with pytest.raises(TypeError, match="executor"):
        solver.run_batch(x0, X, y, lam, executor="pool")
    with pytest.raises(TypeError, match="vectorized"):
        solver.run_batch(x0, X, y, lam, vectorized="yes")
    with pytest.raises(ValueError, match="one value per lane"):
        npopt.LBFGS(lambda W, X, y, lam: (1.0, W), value_and_grad=True).run_batch(
            x0, X, y, lam, vectorized=True)


def test_solvers_without_a_machine_run_lane_by_lane():
    x0, X, y, lam = batch_problem(3, 1)
    mirror = npopt.MirrorDescent(py_ridge, value_and_grad=True,
                                 projection_grad=lambda x, g, s, hp: x - s * g, stepsize=1e-2,
                                 maxiter=20, tol=1e-12)
    with _quiet():
        r = mirror.run_batch(x0, None, X, y, lam, in_axes=(0, None, 0, 0, 0))
        for i in range(3):
            s = mirror.run(x0[i], None, X[i], y[i], lam[i])
            assert np.array_equal(r.params[i], s.params)
            assert r.state.iter_num[i] == s.state.iter_num
    with pytest.raises(NotImplementedError, match="vectorized"):
        mirror.run_batch(x0, None, X, y, lam, in_axes=(0, None, 0, 0, 0), vectorized=True)


def test_verbose_batch_shows_progress(monkeypatch, capsys):
    monkeypatch.setattr(engine, "PROGRESS_SECONDS", 0.0)
    x0, X, y, lam = batch_problem(5, 4)
    npopt.LBFGS(P.ridge, value_and_grad=True, verbose=True).run_batch(x0, X, y, lam)
    err = capsys.readouterr().err
    assert "/5 lanes finished" in err and "iterations/s" in err


def test_solvers_pickle_and_executors_give_the_local_result():
    x0, X, y, lam = batch_problem(9, 7)
    solver = npopt.LBFGS(P.ridge, value_and_grad=True, tol=1e-9)
    s2 = pickle.loads(pickle.dumps(solver))
    assert s2.tol == solver.tol and s2.fun is solver.fun
    local = solver.run_batch(x0, X, y, lam)
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        r = solver.run_batch(x0, X, y, lam, executor=ex, chunks=4)
    assert same_tree(r, local)
    with concurrent.futures.ProcessPoolExecutor(2) as ex:
        r = solver.run_batch(x0, X, y, lam, executor=ex, chunks=3)
    assert same_tree(r, local)


def test_dask_local_cluster():
    distributed = pytest.importorskip("distributed")   # in the test extra: runs in CI
    x0, X, y, lam = batch_problem(8, 9)
    solver = npopt.LBFGS(P.ridge, value_and_grad=True, tol=1e-9)
    local = solver.run_batch(x0, X, y, lam)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        r = solver.run_batch(x0, X, y, lam, executor=client.get_executor(), chunks=4)
    assert same_tree(r, local)


# --------------------------------------------------------------------------
# Fixed-point iteration.

def fp_map(x, a):
    return 0.5 * np.cos(x) + a


def test_fixed_point_machine_equals_python_solver():
    for dt in (np.float64, np.float32):
        x0 = np.zeros(5, dt)
        a = np.linspace(0, 1, 5).astype(dt)
        s = npopt.FixedPointIteration(fp_map, tol=1e-10, maxiter=100)
        assert engine.machine_unsupported(s) is None
        assert_same_run(s.run(x0, a), run_python_solver(s, x0, a))
    p0 = {"u": np.zeros(3), "v": np.ones((2, 2))}
    s = npopt.FixedPointIteration(lambda p: {"u": 0.5 * np.cos(p["u"]), "v": 0.3 * p["v"] + 1},
                                  tol=1e-9)
    assert_same_run(s.run(p0), run_python_solver(s, p0))


def test_fixed_point_compiled_and_batched():
    from numba import njit
    tn = njit(cache=False)(fp_map)
    B = 6
    X0 = np.zeros((B, 5))
    A = np.random.default_rng(0).uniform(0, 1, (B, 5))
    compiled = npopt.FixedPointIteration(tn, tol=1e-10, maxiter=100)
    python = npopt.FixedPointIteration(fp_map, tol=1e-10, maxiter=100)
    assert engine.compiled_objective(compiled) is not None
    rb = compiled.run_batch(X0, A)
    rp = python.run_batch(X0, A)
    for i in range(B):
        s = python.run(X0[i], A[i])
        for r in (rb, rp):
            assert np.array_equal(r.params[i], s.params)
            assert r.state.iter_num[i] == s.state.iter_num
            assert r.state.num_fun_eval[i] == s.state.num_fun_eval
        assert_same_run(compiled.run(X0[i], A[i]), s)
    assert np.all(rb.status == K.CONVERGED)


# --------------------------------------------------------------------------
# Bisection.

def cubic(x, a):
    return x * x * x - a


def test_bisection_machine_equals_python_solver_and_batches():
    s = npopt.Bisection(cubic, lower=-1.0, upper=3.0, tol=1e-12, maxiter=60)
    assert engine.machine_unsupported(s) is None
    for a in (0.5, 2.0, 8.0):
        assert_same_run(s.run(None, a), run_python_solver(s, None, a))
    A = np.array([0.5, 2.0, 8.0, 1e-3])
    r = npopt.vmap(s.run, in_axes=(None, 0))(None, A)
    rv = s.run_batch(None, A, in_axes=(None, 0), vectorized=True)
    for i, a in enumerate(A):
        single = s.run(None, a)
        for out in (r, rv):
            assert out.params[i] == single.params
            assert out.state.iter_num[i] == single.state.iter_num
            assert out.state.low[i] == single.state.low and out.state.high[i] == single.state.high
    assert np.allclose(r.params, np.cbrt(A), atol=1e-10)
    # no sign change: the single run's error, and the batch names the lane
    with pytest.raises(ValueError, match="lower, upper"):
        s.run(None, 100.0)
    with pytest.raises(ValueError, match=r"lanes \[1\]"):
        s.run_batch(None, np.array([1.0, 100.0]), in_axes=(None, 0))


# --------------------------------------------------------------------------
# Levenberg-Marquardt (materialize_jac=True, Cholesky).

def de_residual(p, t, y):
    """The double exponential through the numba function (the same bits from
    Python and from the compiled driver)."""
    return P.double_exponential(p, t, y)


def de_jac(p, t, y):
    return P.double_exponential_jac(p, t, y)


def curves(B, seed=0):
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 4, 40)
    ps = rng.uniform([1, 0.8, 0.5, 0.05], [4, 2, 2, 0.4], (B, 4))
    Y = np.stack([a * np.exp(-b * t) + c * np.exp(-d * t) for a, b, c, d in ps])
    return t, Y + 0.01 * rng.standard_normal(Y.shape)


LM_CASES = [({"jac_fun": de_jac}, True), ({}, True), ({"jac_fun": de_jac, "solver": "cholesky"},
                                                        True),
            ({"jac_fun": de_jac}, False), ({}, False)]   # False: the default matrix-free CG


@pytest.mark.parametrize("kw,materialize", LM_CASES,
                         ids=["dense-jac_fun", "dense-fd", "dense-cholesky", "cg-jac_fun",
                              "cg-fd"])
def test_levenberg_marquardt_machine_equals_python_solver(kw, materialize):
    t, Y = curves(3)
    p0 = np.array([1.0, 1.0, 1.0, 0.1])
    s = npopt.LevenbergMarquardt(de_residual, materialize_jac=materialize, tol=1e-10,
                                 maxiter=50, **kw)
    assert engine.machine_unsupported(s) is None
    for i in range(3):
        with _quiet():
            a, b = s.run(p0, t, Y[i]), run_python_solver(s, p0, t, Y[i])
        assert_same_run(a, b)
        assert int(a.state.iter_num) > 3
    # one parameter: numpy's column sum of J*J is pairwise there
    s1 = npopt.LevenbergMarquardt(lambda p, t, y: p[0] * t - y, tol=1e-12, maxiter=20,
                                  materialize_jac=materialize)
    y1 = 2 * t + 0.01 * np.sin(t)
    assert_same_run(s1.run(np.array([0.5]), t, y1), run_python_solver(s1, np.array([0.5]), t,
                                                                       y1))
    # geodesic and other matrix-free solvers keep the Python solver
    assert engine.machine_unsupported(npopt.LevenbergMarquardt(de_residual,
                                                               geodesic=True)) is not None


def test_levenberg_marquardt_compiled_and_batched():
    B = 12
    t, Y = curves(B, seed=3)
    p0 = np.tile([1.0, 1.0, 1.0, 0.1], (B, 1))
    compiled = npopt.LevenbergMarquardt(P.double_exponential, jac_fun=P.double_exponential_jac,
                                        materialize_jac=True, tol=1e-10, maxiter=60)
    python = npopt.LevenbergMarquardt(de_residual, jac_fun=de_jac, materialize_jac=True,
                                      tol=1e-10, maxiter=60)
    assert engine.compiled_objective(compiled) is not None
    rc = compiled.run_batch(p0, t, Y, in_axes=(0, None, 0))
    rp = python.run_batch(p0, t, Y, in_axes=(0, None, 0))
    for i in range(B):
        with _quiet():
            s = python.run(p0[i], t, Y[i])
            assert_same_run(compiled.run(p0[i], t, Y[i]), s)
        for r in (rc, rp):
            lane = T.tree_map(lambda a: a[i], r.state)
            assert np.array_equal(r.params[i], s.params)
            for f in ("iter_num", "damping_factor", "increase_factor", "value", "error",
                      "residual", "jac", "jtj", "delta", "gradient"):
                assert np.array_equal(getattr(lane, f), getattr(s.state, f)), (i, f)


# --------------------------------------------------------------------------
# Anderson acceleration (float64).

@pytest.mark.parametrize("kw", [{}, {"history_size": 3, "mixing_frequency": 2},
                                {"beta": 0.5}, {"ridge": 0.0}],
                         ids=["default", "m3-freq2", "beta", "ridge0"])
def test_anderson_machine_equals_python_solver(kw):
    x0 = np.zeros(5)
    a = np.linspace(0, 1, 5)
    s = npopt.AndersonAcceleration(fp_map, tol=1e-12, maxiter=40, **kw)
    assert engine.machine_unsupported(s) is None
    with _quiet():
        assert_same_run(s.run(x0, a), run_python_solver(s, x0, a))
    p0 = {"u": np.zeros(3), "v": np.ones((2, 2))}
    t = npopt.AndersonAcceleration(
        lambda p: {"u": 0.5 * np.cos(p["u"]), "v": 0.3 * p["v"] + 1}, tol=1e-10, **kw)
    with _quiet():
        assert_same_run(t.run(p0), run_python_solver(t, p0))


def test_anderson_compiled_and_batched():
    from numba import njit
    tn = njit(cache=False)(fp_map)
    B = 5
    X0 = np.zeros((B, 5))
    A = np.random.default_rng(1).uniform(0, 1, (B, 5))
    compiled = npopt.AndersonAcceleration(tn, tol=1e-12, maxiter=40)
    python = npopt.AndersonAcceleration(fp_map, tol=1e-12, maxiter=40)
    rb, rp = compiled.run_batch(X0, A), python.run_batch(X0, A)
    for i in range(B):
        s = python.run(X0[i], A[i])
        for r in (rb, rp):
            assert np.array_equal(r.params[i], s.params)
            assert np.array_equal(r.state.residual_gram[i], s.state.residual_gram)
            assert r.state.iter_num[i] == s.state.iter_num


# --------------------------------------------------------------------------
# BoxCDQP (float64).

def box_qps(B, n=6, seed=0):
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((B, n, n))
    Q = np.einsum("bij,bkj->bik", M, M) + 0.1 * np.eye(n)
    c = rng.standard_normal((B, n))
    return Q, c, np.full((B, n), -0.2), np.full((B, n), 0.3)


def test_boxcdqp_machine_equals_python_solver_and_batches():
    Q, c, l, u = box_qps(6)
    s = npopt.BoxCDQP(tol=1e-10, maxiter=300)
    assert engine.machine_unsupported(s) is None
    x0 = np.zeros(6)
    for i in range(2):
        assert_same_run(s.run(x0, (Q[i], c[i]), (l[i], u[i])),
                        run_python_solver(s, x0, (Q[i], c[i]), (l[i], u[i])))
    r = s.run_batch(np.zeros((6, 6)), (Q, c), (l, u))
    for i in range(6):
        single = s.run(x0, (Q[i], c[i]), (l[i], u[i]))
        assert np.array_equal(r.params[i], single.params)
        assert r.state.iter_num[i] == single.state.iter_num
        assert r.state.error[i] == single.state.error
    # a linear coordinate without a bound: the Python solver's error
    Q0 = np.diag([1.0, 0.0])
    with pytest.raises(ValueError, match="unbounded below along coordinate 1"):
        s.run(np.zeros(2), (Q0, np.array([0.0, 1.0])), (np.array([-1.0, -np.inf]),
                                                         np.array([1.0, 1.0])))
    # a non-PSD Q in one lane is refused before any work
    Qbad = Q.copy()
    Qbad[3] = -np.eye(6)
    with pytest.raises(ValueError, match="params_obj"):
        s.run_batch(np.zeros((6, 6)), (Qbad, c), (l, u))


# --------------------------------------------------------------------------
# Gauss-Newton (float64, dense Jacobian).

@pytest.mark.parametrize("kw", [{"jac_fun": de_jac}, {}], ids=["jac_fun", "finite-differences"])
def test_gauss_newton_machine_equals_python_solver(kw):
    t, Y = curves(3)
    p0 = np.array([2.0, 1.0, 1.0, 0.1])
    s = npopt.GaussNewton(de_residual, tol=1e-10, maxiter=30, **kw)
    assert engine.machine_unsupported(s) is None
    with _quiet():
        a, b = s.run(p0, t, Y[0]), run_python_solver(s, p0, t, Y[0])
    assert_same_run(a, b)
    assert int(a.state.iter_num) > 3


def test_gauss_newton_compiled_and_batched():
    B = 4
    t, Y = curves(B, seed=3)
    p0 = np.tile([2.0, 1.0, 1.0, 0.1], (B, 1))
    compiled = npopt.GaussNewton(P.double_exponential, jac_fun=P.double_exponential_jac,
                                 tol=1e-10, maxiter=30)
    python = npopt.GaussNewton(de_residual, jac_fun=de_jac, tol=1e-10, maxiter=30)
    with _quiet():
        rc = compiled.run_batch(p0, t, Y, in_axes=(0, None, 0))
        rp = python.run_batch(p0, t, Y, in_axes=(0, None, 0))
        for i in range(B):
            s = python.run(p0[i], t, Y[i])
            assert_same_run(compiled.run(p0[i], t, Y[i]), s)
            for r in (rc, rp):
                assert np.array_equal(r.params[i], s.params, equal_nan=True)
                assert r.state.iter_num[i] == s.state.iter_num
                assert np.array_equal(r.state.delta[i], s.state.delta, equal_nan=True)
