"""Batched solves on CUDA arrays: one lane per GPU thread (npopt/solvers/lanes_cuda.py,
kernels/solver_lanes.py), run here under numba's CUDA simulator. Contract:
every lane equals a single CPU run of the same problem, bit for bit, with the
same iteration and evaluation counts, whatever the other lanes do.
(tools/ptx_check.py compiles the same kernels for real GPUs in CI.)"""
import os
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from numba import njit

import npopt
from npopt.examples import problems as P
from npopt.kernels import solver_machine as K

pytestmark = pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") != "1",
                                reason="runs under numba's CUDA simulator (the README command)")


def cuda():
    from numba import cuda
    return cuda


def returning(into):
    """The CPU (value, grad) objective of an in-place one, for single runs."""
    def fun(x, *args):
        g = np.empty_like(x)
        return into(x, g, *args), g
    return fun


def mapping(into):
    def fun(x, *args):
        out = np.empty_like(x)
        into(x, out, *args)
        return out
    return fun


def ridge_data(B, m=12, n=4, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(B, m, n)) * rng.uniform(0.2, 3.0, size=(B, 1, n))
    y = rng.normal(size=(B, m))
    return X.astype(dtype), y.astype(dtype)


def assert_lanes_equal_single(out, single, B, fields=("iter_num",)):
    for i in range(B):
        r = single(i)
        np.testing.assert_array_equal(out.params[i], r.params, err_msg=f"lane {i}")
        for f in fields:
            assert getattr(out.state, f)[i] == getattr(r.state, f), (i, f)
        np.testing.assert_array_equal(out.state.error[i], r.state.error)


SOLVERS = [
    lambda fun, **kw: npopt.LBFGS(fun=fun, value_and_grad=True, tol=1e-7, **kw),
    lambda fun, **kw: npopt.BFGS(fun=fun, value_and_grad=True, tol=1e-7, **kw),
    lambda fun, **kw: npopt.NonlinearCG(fun=fun, value_and_grad=True, tol=1e-7, **kw),
    lambda fun, **kw: npopt.LBFGS(fun=fun, value_and_grad=True, linesearch="backtracking",
                                  tol=1e-7, **kw),
    lambda fun, **kw: npopt.BFGS(fun=fun, value_and_grad=True, linesearch="hager-zhang",
                                 tol=1e-7, **kw),
    lambda fun, **kw: npopt.GradientDescent(fun=fun, value_and_grad=True, tol=1e-6,
                                            maxiter=200, **kw),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("make", SOLVERS)
def test_each_lane_equals_a_single_cpu_run(make, dtype):
    B, n = 5, 4
    X, y = ridge_data(B, n=n, dtype=dtype)
    lam = 0.1
    x0 = np.zeros(n, dtype)
    solver = make(P.ridge_into)
    out = npopt.vmap(solver.run, in_axes=(None, 0, 0, None))(
        x0, cuda().to_device(X), cuda().to_device(y), lam)
    assert out.params.shape == (B, n) and out.params.dtype == dtype
    cpu = make(returning(P.ridge_into))
    fields = ("iter_num",) + (("num_fun_eval", "num_grad_eval")
                              if hasattr(out.state, "num_grad_eval") else ())
    assert_lanes_equal_single(out, lambda i: cpu.run(x0, X[i], y[i], lam), B, fields)


def test_batched_init_params_and_a_cuda_device_objective():
    """init_params per lane on the device; the objective a
    numba.cuda.jit(device=True) function."""
    from numba import cuda as nc
    dev_ridge = nc.jit(device=True)(P.ridge_into.py_func)
    B, n = 4, 4
    X, y = ridge_data(B, n=n, seed=3)
    x0 = np.random.default_rng(1).normal(size=(B, n))
    solver = npopt.LBFGS(fun=dev_ridge, value_and_grad=True, tol=1e-9)
    r = solver.run_batch(nc.to_device(x0), X, y, 0.05, in_axes=(0, 0, 0, None))
    cpu = npopt.LBFGS(fun=returning(P.ridge_into), value_and_grad=True, tol=1e-9)
    assert_lanes_equal_single(r, lambda i: cpu.run(x0[i], X[i], y[i], 0.05), B,
                              ("iter_num", "num_fun_eval"))
    assert np.all(r.status == K.CONVERGED)


def test_separate_grad_function():
    @njit
    def value(w, X, y, lam):      # ridge_into's value, without the gradient
        m, n = X.shape
        total = 0.0
        for i in range(m):
            r = -y[i]
            for j in range(n):
                r += X[i, j] * w[j]
            total += r * r
        reg = 0.0
        for j in range(n):
            reg += w[j] * w[j]
        return 0.5 * total / m + 0.5 * lam * reg

    B, n = 3, 4
    X, y = ridge_data(B, n=n, seed=5)
    solver = npopt.LBFGS(fun=value, grad=P.ridge_into, value_and_grad=False, tol=1e-8)
    out = npopt.vmap(solver.run, in_axes=(None, 0, 0, None))(
        np.zeros(n), cuda().to_device(X), cuda().to_device(y), 0.1)
    cpu = npopt.LBFGS(fun=value, grad=lambda w, *a: returning(P.ridge_into)(w, *a)[1],
                      value_and_grad=False, tol=1e-8)
    assert_lanes_equal_single(out, lambda i: cpu.run(np.zeros(n), X[i], y[i], 0.1), B,
                              ("iter_num", "num_fun_eval", "num_grad_eval"))


@pytest.mark.parametrize("make, dtype", [
    (lambda f: npopt.FixedPointIteration(fixed_point_fun=f, tol=1e-6, maxiter=200), np.float64),
    (lambda f: npopt.FixedPointIteration(fixed_point_fun=f, tol=1e-5, maxiter=200), np.float32),
    (lambda f: npopt.AndersonAcceleration(fixed_point_fun=f, tol=1e-9, history_size=4,
                                          maxiter=100), np.float64)])
def test_fixed_point_lanes(make, dtype):
    """Kepler's equation E = M + e sin E for a batch of mean anomalies."""
    B, n = 6, 3
    M = np.random.default_rng(2).uniform(0, 6, size=(B, n)).astype(dtype)
    e = 0.7
    out = npopt.vmap(make(P.kepler_into).run, in_axes=(None, 0, None))(
        np.zeros(n, dtype), cuda().to_device(M), e)
    cpu = make(mapping(P.kepler_into))
    assert_lanes_equal_single(out, lambda i: cpu.run(np.zeros(n, dtype), M[i], e), B)
    resid = out.params - (M + e * np.sin(out.params))
    assert np.max(np.abs(resid)) <= 10 * cpu.tol


def test_failing_lanes_do_not_touch_the_others():
    """A lane with NaN data stops NONFINITE, a lane given maxiter too small
    for it stops MAXITER; every lane still equals its single run."""
    B, n = 5, 4
    X, y = ridge_data(B, n=n, seed=7)
    X[1, :, 0] *= 300.0          # badly conditioned: needs more iterations
    y[3, 2] = np.nan
    solver = npopt.LBFGS(fun=P.ridge_into, value_and_grad=True, tol=1e-10, maxiter=12)
    out = solver.run_batch(np.ones(n), cuda().to_device(X), cuda().to_device(y), 0.01,
                           in_axes=(None, 0, 0, None))
    cpu = npopt.LBFGS(fun=returning(P.ridge_into), value_and_grad=True, tol=1e-10, maxiter=12)
    for i in range(B):
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)     # lane 3's NaN stop
            r = cpu.run(np.ones(n), X[i], y[i], 0.01)
        np.testing.assert_array_equal(out.params[i], r.params)
        assert out.state.iter_num[i] == r.state.iter_num
    assert out.status[3] == K.NONFINITE
    assert out.status[1] == K.MAXITER
    assert out.state.iter_num[1] == 12


@settings(max_examples=8, deadline=None)
@given(st.integers(1, 7), st.integers(1, 5), st.integers(0, 2**31 - 1),
       st.sampled_from([np.float32, np.float64]))
def test_lanes_equal_single_runs_on_random_batches(B, n, seed, dtype):
    X, y = ridge_data(B, m=8, n=n, dtype=dtype, seed=seed)
    x0 = np.random.default_rng(seed).normal(size=(B, n)).astype(dtype)
    solver = npopt.LBFGS(fun=P.ridge_into, value_and_grad=True, tol=1e-6, maxiter=30)
    out = npopt.vmap(solver.run)(cuda().to_device(x0), cuda().to_device(X), cuda().to_device(y),
                                 cuda().to_device(np.full(B, 0.1, dtype)))
    cpu = npopt.LBFGS(fun=returning(P.ridge_into), value_and_grad=True, tol=1e-6, maxiter=30)
    assert_lanes_equal_single(out, lambda i: cpu.run(x0[i], X[i], y[i], dtype(0.1)), B,
                              ("iter_num", "num_fun_eval"))


def test_verbose_shows_progress(monkeypatch, capsys):
    from npopt.solvers import engine
    monkeypatch.setattr(engine, "PROGRESS_SECONDS", 0.0)
    B, n = 3, 4
    X, y = ridge_data(B, n=n)
    solver = npopt.LBFGS(fun=P.ridge_into, value_and_grad=True, tol=1e-8, verbose=True)
    out = solver.run_batch(np.zeros(n), cuda().to_device(X), cuda().to_device(y), 0.1,
                           in_axes=(None, 0, 0, None))
    err = capsys.readouterr().err
    assert "CUDA batch: 3/3 lanes finished" in err
    cpu = npopt.LBFGS(fun=returning(P.ridge_into), value_and_grad=True, tol=1e-8)
    assert_lanes_equal_single(out, lambda i: cpu.run(np.zeros(n), X[i], y[i], 0.1), B)


def test_bad_input_is_refused_before_any_launch():
    B, n = 2, 4
    X, y = ridge_data(B, n=n)
    dX, dy = cuda().to_device(X), cuda().to_device(y)
    py = npopt.LBFGS(fun=returning(P.ridge_into), value_and_grad=True)
    with pytest.raises(TypeError, match="fun: CUDA lanes need a numba function"):
        npopt.vmap(py.run, in_axes=(None, 0, 0, None))(np.zeros(n), dX, dy, 0.1)
    fd = npopt.LBFGS(fun=P.ridge_into)
    with pytest.raises(TypeError, match="finite differences"):
        npopt.vmap(fd.run, in_axes=(None, 0, 0, None))(np.zeros(n), dX, dy, 0.1)
    ok = npopt.LBFGS(fun=P.ridge_into, value_and_grad=True)
    with pytest.raises(ValueError, match="in_axes: CUDA lanes take the lane axis first"):
        npopt.vmap(ok.run, in_axes=(None, 1, 0, None))(np.zeros(n), dX, dy, 0.1)
    with pytest.raises(ValueError, match="different lane counts"):
        npopt.vmap(ok.run, in_axes=(None, 0, 0, None))(np.zeros(n), dX,
                                                       cuda().to_device(y[:1]), 0.1)
    with pytest.raises(TypeError, match="init_params: CUDA lanes take flat"):
        npopt.vmap(ok.run, in_axes=(None, 0, 0, None))(np.zeros(n, np.int64), dX, dy, 0.1)
    with pytest.raises(ValueError, match="executor, vectorized"):
        npopt.vmap(ok.run, in_axes=(None, 0, 0, None), vectorized=True)(np.zeros(n), dX, dy,
                                                                        0.1)
    bis = npopt.Bisection(optimality_fun=lambda x, a: x - a, lower=0.0, upper=1.0)
    with pytest.raises(NotImplementedError, match="batched runs on CUDA arrays support"):
        npopt.vmap(bis.run, in_axes=(None, 0))(None, cuda().to_device(np.ones(3) / 2))
    lm = npopt.LevenbergMarquardt(residual_fun=P.double_exponential_into,
                                  jac_fun=P.double_exponential_jac_into)
    with pytest.raises(TypeError, match="residual_size"):
        npopt.vmap(lm.run, in_axes=(None, None, 0))(np.ones(4), np.ones(12), dy)
    with pytest.raises(TypeError, match="residual_size: the number of residuals"):
        npopt.vmap(ok.run, in_axes=(None, 0, 0, None), residual_size=3)(np.zeros(n), dX, dy, 0.1)
    prox = npopt.ProximalGradient(fun=P.ridge_into, value_and_grad=True,
                                  prox=npopt.prox.prox_elastic_net)
    with pytest.raises(NotImplementedError, match="CUDA lanes run npopt's prox_lasso"):
        npopt.vmap(prox.run, in_axes=(None, None, 0, 0, None))(np.zeros(n), (0.1, 0.1), dX, dy,
                                                               0.1)
    lasso = npopt.ProximalGradient(fun=P.ridge_into, value_and_grad=True,
                                   prox=npopt.prox.prox_lasso)
    with pytest.raises(ValueError, match="l1reg"):          # prox_lasso's own check
        npopt.vmap(lasso.run, in_axes=(None, 0, 0, 0, None))(np.zeros(n), np.array([0.1, -1.0]),
                                                             dX, dy, 0.1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("make, hyper", [
    (lambda f: npopt.ProximalGradient(fun=f, value_and_grad=True, prox=npopt.prox.prox_lasso,
                                      tol=1e-7, maxiter=300), np.array([0.0, 0.01, 0.05, 1.0])),
    (lambda f: npopt.ProximalGradient(fun=f, value_and_grad=True,
                                      prox=npopt.prox.prox_non_negative_lasso, tol=1e-7,
                                      maxiter=300), np.array([0.0, 0.01, 0.02, 0.3])),
    (lambda f: npopt.ProjectedGradient(fun=f, value_and_grad=True,
                                       projection=npopt.projection.projection_box, tol=1e-7,
                                       maxiter=300),
     (np.array([-1.0, -0.1, 0.0, -0.05]), np.array([1.0, 0.1, 0.2, 0.0]))),
    (lambda f: npopt.ProjectedGradient(fun=f, value_and_grad=True,
                                       projection=npopt.projection.projection_non_negative,
                                       tol=1e-7, maxiter=300), None)])
def test_prox_and_projection_lanes(make, hyper, dtype):
    """A lasso path (one l1reg per lane), boxes per lane, the non-negative
    orthant: each lane equals its single CPU run (the Python prox)."""
    B, n = 4, 5
    X, y = ridge_data(B, n=n, dtype=dtype, seed=11)
    x0 = np.zeros(n, dtype)
    axes = (None, None if hyper is None else 0, 0, 0, None)
    out = npopt.vmap(make(P.ridge_into).run, in_axes=axes)(
        x0, hyper, cuda().to_device(X), cuda().to_device(y), 0.01)
    cpu = make(returning(P.ridge_into))
    lane_hyper = (lambda i: None) if hyper is None else (lambda i: hyper[i]) \
        if isinstance(hyper, np.ndarray) else (lambda i: (hyper[0][i], hyper[1][i]))
    assert_lanes_equal_single(out, lambda i: cpu.run(x0, lane_hyper(i), X[i], y[i], 0.01), B)


@pytest.mark.parametrize("make", [
    lambda r, j: npopt.LevenbergMarquardt(residual_fun=r, jac_fun=j, tol=1e-8, maxiter=100),
    lambda r, j: npopt.LevenbergMarquardt(residual_fun=r, jac_fun=j, materialize_jac=True,
                                          tol=1e-8, maxiter=100),
    lambda r, j: npopt.GaussNewton(residual_fun=r, jac_fun=j, tol=1e-8, maxiter=100)])
def test_curve_fit_lanes(make):
    """Double-exponential fits, one curve per lane (residuals and Jacobian
    written into the lane's buffers): each lane equals its single CPU run."""
    B, m = 5, 24
    rng = np.random.default_rng(4)
    t = np.linspace(0.0, 4.0, m)
    p = np.column_stack([rng.uniform(1, 3, B), rng.uniform(0.2, 1, B), rng.uniform(0.5, 2, B),
                         rng.uniform(2, 5, B)])
    Y = p[:, :1] * np.exp(-p[:, 1:2] * t) + p[:, 2:3] * np.exp(-p[:, 3:4] * t)
    Y += 0.01 * rng.normal(size=Y.shape)
    x0 = np.array([1.0, 0.5, 1.0, 3.0])
    solver = make(P.double_exponential_into, P.double_exponential_jac_into)
    out = npopt.vmap(solver.run, in_axes=(None, None, 0), residual_size=m)(
        x0, t, cuda().to_device(Y))
    cpu = make(P.double_exponential, P.double_exponential_jac)
    assert_lanes_equal_single(out, lambda i: cpu.run(x0, t, Y[i]), B)
    assert np.sum(out.state.iter_num < 100) >= 3       # (GaussNewton may not converge)
