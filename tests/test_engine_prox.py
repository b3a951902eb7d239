"""npopt's own prox and projection operators applied by the compiled drivers
(``solver_machine.apply_prox``): ProximalGradient with prox_lasso or
prox_non_negative_lasso, ProjectedGradient with projection_non_negative or
projection_box, with a numba objective, single and batched (a lasso path: one
l1reg per lane). Every run equals the Python driver's (which calls the
operator itself), bit for bit."""
import numpy as np
import pytest

import npopt
from npopt.examples import problems as P
from npopt.solvers import engine


def returning(w, X, y, lam):        # the same objective, not a numba function
    g = np.empty_like(w)
    return P.ridge_into(w, g, X, y, lam), g


def data(dtype=np.float64, B=None, seed=0):
    rng = np.random.default_rng(seed)
    lead = () if B is None else (B,)
    return (rng.normal(size=lead + (30, 6)).astype(dtype),
            rng.normal(size=lead + (30,)).astype(dtype))


OPERATORS = [
    (lambda f: npopt.ProximalGradient(fun=f, value_and_grad=True, prox=npopt.prox.prox_lasso,
                                      tol=1e-7, maxiter=400), 0.02, [0.0, 0.01, 0.05, 2.0]),
    (lambda f: npopt.ProximalGradient(fun=f, value_and_grad=True, acceleration=False,
                                      prox=npopt.prox.prox_non_negative_lasso, tol=1e-7,
                                      maxiter=400), 0.01, [0.0, 0.003, 0.03, 1.0]),
    (lambda f: npopt.ProjectedGradient(fun=f, value_and_grad=True,
                                       projection=npopt.projection.projection_non_negative,
                                       tol=1e-7, maxiter=400), None, None),
    (lambda f: npopt.ProjectedGradient(fun=f, value_and_grad=True, stepsize=0.05,
                                       projection=npopt.projection.projection_box, tol=1e-7,
                                       maxiter=400), (-0.1, 0.15),
     ([-1.0, -0.1, 0.0, -0.2], [1.0, 0.1, 0.3, 0.0])),
]


@pytest.fixture
def no_python_driver(monkeypatch):
    """Fails a run that would call the operator from Python."""
    def refuse(*a, **k):
        raise AssertionError("the Python driver ran")
    monkeypatch.setattr(engine, "drive_python", refuse)
    monkeypatch.setattr(engine, "_drive_python_batch", refuse)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("make, hyper, lanes", OPERATORS)
def test_compiled_operator_equals_the_python_driver(make, hyper, lanes, dtype, monkeypatch):
    X, y = data(dtype)
    x0 = np.full(6, 0.5, dtype)
    want = make(returning).run(x0, hyper, X, y, 0.01)
    with monkeypatch.context() as m:
        m.setattr(engine, "drive_python", lambda *a, **k: pytest.fail("Python driver ran"))
        got = make(P.ridge_into).run(x0, hyper, X, y, 0.01)
    np.testing.assert_array_equal(got.params, want.params)
    assert got.state.iter_num == want.state.iter_num
    np.testing.assert_array_equal(got.state.error, want.state.error)


@pytest.mark.parametrize("make, hyper, lanes", OPERATORS)
def test_batched_hyperparameters_lane_by_lane(make, hyper, lanes, no_python_driver):
    """One hyperparameter per lane (a lasso path, a box per lane), shared
    data; each lane equals its single run."""
    X, y = data()
    x0 = np.zeros(6)
    if lanes is None:
        B, batched, axes = 3, None, (0, None, None, None, None)
        x0 = np.stack([x0, x0 + 0.3, x0 - 0.3])
    else:
        batched = np.asarray(lanes) if not isinstance(lanes, tuple) else \
            tuple(np.asarray(v) for v in lanes)
        B, axes = 4, (None, 0, None, None, None)
    solver = make(P.ridge_into)
    out = npopt.vmap(solver.run, in_axes=axes)(x0, batched, X, y, 0.01)
    for i in range(B):
        h = None if lanes is None else (batched[i] if not isinstance(batched, tuple)
                                         else (batched[0][i], batched[1][i]))
        single = solver.run(x0[i] if lanes is None else x0, h, X, y, 0.01)
        np.testing.assert_array_equal(out.params[i], single.params)
        assert out.state.iter_num[i] == single.state.iter_num


def test_bad_hyperparameters_get_the_operators_own_errors():
    X, y = data()
    lasso = npopt.ProximalGradient(fun=P.ridge_into, value_and_grad=True,
                                   prox=npopt.prox.prox_lasso)
    with pytest.raises(ValueError, match="l1reg"):
        lasso.run(np.zeros(6), -0.5, X, y, 0.01)
    with pytest.raises(ValueError, match="l1reg"):
        npopt.vmap(lasso.run, in_axes=(None, 0, None, None, None))(
            np.zeros(6), np.array([0.1, np.nan]), X, y, 0.01)
    box = npopt.ProjectedGradient(fun=P.ridge_into, value_and_grad=True,
                                  projection=npopt.projection.projection_box)
    with pytest.raises(ValueError, match="lower <= upper"):
        npopt.vmap(box.run, in_axes=(None, 0, None, None, None))(
            np.zeros(6), (np.array([0.0, 1.0]), np.array([1.0, 0.5])), X, y, 0.01)


def test_other_operators_and_array_hyperparameters_stay_on_the_python_driver():
    """Per-coordinate l1reg (an array) or another operator: the Python
    driver calls the operator, with a numba objective in the returning form."""
    X, y = data()
    w = np.linspace(0.0, 0.05, 6)
    lasso = npopt.ProximalGradient(fun=P.ridge, value_and_grad=True,
                                   prox=npopt.prox.prox_lasso, tol=1e-7)
    a = lasso.run(np.zeros(6), w, X, y, 0.01)
    b = npopt.ProximalGradient(fun=returning, value_and_grad=True, prox=npopt.prox.prox_lasso,
                               tol=1e-7).run(np.zeros(6), w, X, y, 0.01)
    np.testing.assert_array_equal(a.params, b.params)
