"""Issue 11, "never a silent wrong answer": the solvers on the inputs users
actually give them.

Every test here failed (or raised a misleading error) before the fix it
guards:

1. inner linear systems: Levenberg-Marquardt on jaxopt's own scaled-Meyer
   test in float32 (tests/levenberg_marquardt_test.py of jaxopt 0.8.5) with
   every solver, ``materialize_jac`` True and False, with and without a
   Jacobian (finite differences, differenced in float64); Gauss-Newton and
   LM at a NaN start;
2. line searches: evaluation counts equal to the calls a counting wrapper
   sees; Hager-Zhang on a function returning NaN reports ``failed``;
3. QPs: a non-convex BoxCDQP raises, a linear coordinate goes to its bound,
   OSQP/BoxOSQP detect infeasible and unbounded problems by default (status
   and a warning), no false infeasibility certificate, NaN data names its
   argument; integer params are refused naming ``init_params``;
4. the gradient source: npopt's objectives carry theirs, finite differences
   warn once per instance, ``(value, grad)`` mix-ups are named;
5. implicit differentiation warns once per solver / decorated function, on
   the solver's own tolerance;
6. OptaxSolver with a scalar parameter (jaxopt's examples), and without
   touching the caller's buffers;
7. the audit of unusual inputs: int params, empty trees, maxiter=0, bad
   tol, NaN at the start, wrong shapes.
"""
import warnings

import numpy as np
import pytest

import npopt
from npopt import implicit_diff as idf
from npopt import linear_solve
from npopt import objective, projection, prox
from npopt.solvers import (
    LBFGS, LBFGSB, BFGS, OSQP, AndersonAcceleration, AndersonWrapper, ArmijoSGD,
    BacktrackingLineSearch, Bisection, BoxCDQP, BoxOSQP, Broyden, EqualityConstrainedQP,
    FixedPointIteration, GaussNewton, GradientDescent, HagerZhangLineSearch,
    LevenbergMarquardt, MirrorDescent, NonlinearCG, OptaxSolver, PolyakSGD, ProjectedGradient,
    ProximalGradient, ScipyLeastSquares, ScipyMinimize, ScipyRootFinding, ZoomLineSearch)
from npopt.solvers.base import FiniteDifferenceWarning, finite_difference_grad


def _quiet(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` with the once-only FiniteDifferenceWarning muted."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FiniteDifferenceWarning)
        return fn(*args, **kwargs)


# ==========================================================================
# 1. Inner linear systems: jaxopt's scaled Meyer problem in float32.

MEYER_X = np.linspace(0.5, 1.25, 16).astype(np.float32)
MEYER_Y = np.array([34780, 28610, 23650, 19630, 16370, 13720, 11540, 9744, 8261, 7030,
                    6005, 5147, 4427, 3820, 3307, 2872]).astype(np.float32)
MEYER_SOL = np.array([2.48, 6.18, 3.45])


def _meyer(c, x, y):
    return 1e-3 * y - c[0] * np.exp(10 * c[1] / (x + c[2]) - 13)


def _meyer_jac(c, x, y):
    e = np.exp(10 * c[1] / (x + c[2]) - 13)
    return np.stack([-e, -c[0] * e * 10 / (x + c[2]),
                     c[0] * e * 10 * c[1] / (x + c[2]) ** 2], axis=1).astype(c.dtype)


@pytest.mark.parametrize("with_jac", [True, False])
@pytest.mark.parametrize("solver,materialize_jac", [    # QR needs the matrix (as jaxopt)
    (s, m) for s in ("cholesky", "lu", "qr", "inv") for m in (True, False)
    if not (s == "qr" and not m)])
def test_levenberg_marquardt_scaled_meyer_float32(materialize_jac, solver, with_jac):
    """jaxopt's test_scaled_meyer_x32 (its tolerances): the damped system is
    singular to float32 precision (rcond ~ 7e-8 < eps) early on. npopt used to
    raise LinearSolveError for every materialize_jac=False solver, and with
    finite differences (float32) end at (33.1, 4.21, 2.73)."""
    kw = dict(jac_fun=_meyer_jac) if with_jac else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)      # 'materialization' hint, FD warning
        lm = LevenbergMarquardt(_meyer, damping_parameter=10, tol=1e-3, maxiter=200,
                                solver=solver, materialize_jac=materialize_jac, geodesic=True,
                                **kw)
        params, state = lm.run(np.array([40, 50, 30], np.float32), MEYER_X, MEYER_Y)
    assert params.dtype == np.float32
    np.testing.assert_allclose(params, MEYER_SOL, atol=5e-2, rtol=2e-2)
    assert np.isfinite(state.error)


def test_levenberg_marquardt_cg_solver_does_not_warn_inside():
    """The default CG solver is an inner solve: no LinearSolveWarning per
    iteration (jaxopt's numbers; the gain ratio judges the step)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", linear_solve.LinearSolveWarning)
        params, _ = LevenbergMarquardt(_meyer, jac_fun=_meyer_jac, damping_parameter=10,
                                       tol=1e-3, maxiter=200, geodesic=True).run(
            np.array([40, 50, 30], np.float32), MEYER_X, MEYER_Y)
    np.testing.assert_allclose(params, MEYER_SOL, atol=5e-2, rtol=2e-2)


def test_finite_differences_of_float32_params_are_taken_in_float64():
    """A float32 gradient by finite differences: float32 differences of exp
    have ~1e-4 relative error; differenced in float64 (then cast) ~1e-7."""
    x = np.array([0.3, -1.2, 2.0], np.float32)

    def f(p):
        return np.sum(np.exp(3 * p))
    exact = 3 * np.exp(3 * x.astype(np.float64))

    def err(g):
        return np.max(np.abs(g - exact)) / np.max(np.abs(exact))
    g = finite_difference_grad(f, x)
    assert g.dtype == np.float32
    assert err(g) < 1e-6                 # float32 differences: 1.5e-4

    def f32(p):                          # computes in float32 whatever it is given
        return np.float32(np.sum(np.exp(3 * np.asarray(p, np.float32))))
    g = finite_difference_grad(f32, x)   # falls back to float32 differences
    assert g.dtype == np.float32 and err(g) < 1e-3

    def f_refuses(p):                    # takes float32 only
        if np.asarray(p).dtype != np.float32:
            raise TypeError("float32 only")
        return np.sum(np.exp(3 * p))
    g = finite_difference_grad(f_refuses, x)
    assert g.dtype == np.float32 and err(g) < 1e-3


def test_nonfinite_residuals_stop_gauss_newton_and_lm_with_a_nan_error():
    """GaussNewton reported error = 0.0 (converged!) at NaN residuals; LM
    raised 'ridge: expected a finite number' (its NaN damping factor)."""
    def res(x):
        return np.full(2, np.nan)
    for cls in (GaussNewton, LevenbergMarquardt):
        with pytest.warns(RuntimeWarning, match="non-finite"):
            params, state = _quiet(cls(res, jac_fun=lambda x: np.eye(2)).run,
                                   np.array([3.0, -2.0]))
        assert np.isnan(state.error), cls.__name__


def test_levenberg_marquardt_rejects_a_nan_step_without_evaluating_there():
    """A factorization that breaks down gives a NaN step: rejected by the
    gain ratio, the damping grows, residual_fun is not called at NaN params."""
    seen = []

    def res(x):
        seen.append(np.array(x))
        return np.array([x[0] + x[1] - 1.0, 2 * (x[0] + x[1]) + 0.5 * x[0] ** 2])

    lm = LevenbergMarquardt(res, jac_fun=lambda x: np.array([[1.0, 1.0], [2 + x[0], 2.0]]),
                            materialize_jac=True, solver="cholesky", damping_parameter=1e-30,
                            tol=1e-10, maxiter=100)
    params, state = lm.run(np.zeros(2))
    assert all(np.all(np.isfinite(p)) for p in seen)
    assert np.all(np.isfinite(params)) and state.error < 1e-8


# ==========================================================================
# 2. Line searches: true counts, NaN.

class _Counter:
    def __init__(self, fun):
        self.fun, self.calls = fun, 0

    def __call__(self, x, *args, **kwargs):
        self.calls += 1
        return self.fun(x, *args, **kwargs)


def _quartic(x):
    return np.sum(x ** 4) + 0.1 * np.sum(x ** 2), 4 * x ** 3 + 0.2 * x


X0 = np.array([3.0, -2.0, 1.0])


@pytest.mark.parametrize("cls,kw", [
    (BacktrackingLineSearch, dict(condition="armijo")),
    (BacktrackingLineSearch, dict(condition="goldstein")),
    (BacktrackingLineSearch, dict(condition="strong-wolfe")),
    (BacktrackingLineSearch, dict(condition="wolfe", maxiter=4)),
    (ZoomLineSearch, {}),
    (ZoomLineSearch, dict(has_aux=True)),
    (HagerZhangLineSearch, {}),
])
@pytest.mark.parametrize("given", [False, True])
def test_line_search_counts_are_the_calls_made(cls, kw, given):
    """num_fun_eval is what a counting wrapper around fun sees (jaxopt's
    Hager-Zhang counts evaluations it discards: npopt skips and does not count
    them; see npopt.solvers.linesearch)."""
    has_aux = kw.get("has_aux", False)
    f = _Counter((lambda x: ((_quartic(x)[0], 1.0), _quartic(x)[1])) if has_aux else _quartic)
    ls = cls(f, value_and_grad=True, **kw)
    extra = dict(value=_quartic(X0)[0], grad=_quartic(X0)[1]) if given else {}
    _, state = ls.run(1.0, X0, **extra)
    assert int(state.num_fun_eval) == f.calls
    assert int(state.num_grad_eval) <= f.calls


@pytest.mark.parametrize("cls", [LBFGS, BFGS, NonlinearCG])
@pytest.mark.parametrize("linesearch", ["backtracking", "zoom", "hager-zhang"])
def test_solver_counts_are_the_calls_made(cls, linesearch):
    """Inside LBFGS/BFGS/NonlinearCG the zoom search used to count an
    evaluation for the aux that npopt skips (one per iteration)."""
    f = _Counter(_quartic)
    _, state = cls(f, value_and_grad=True, linesearch=linesearch, maxiter=10).run(X0)
    assert int(state.num_fun_eval) == f.calls


def test_lbfgsb_and_broyden_counts_are_the_calls_made():
    f = _Counter(_quartic)
    _, state = LBFGSB(f, value_and_grad=True, maxiter=10).run(X0, bounds=(-5 * np.ones(3),
                                                                          5 * np.ones(3)))
    assert int(state.num_fun_eval) == f.calls
    for condition in ("armijo", "strong-wolfe"):
        F = _Counter(lambda x: x - 1 + 0.1 * x ** 3)
        _, state = Broyden(F, jac=lambda x: np.eye(3) + np.diag(0.3 * x ** 2),
                           condition=condition, maxiter=10).run(X0)
        assert int(state.num_fun_eval) == F.calls, condition


def _nan_on_a_segment(x0, d, lo, hi):
    """0.5 |x|^2, whose value is NaN for x0 + t d with lo < t < hi."""
    def f(x):
        t = float(np.dot(x - x0, d) / np.dot(d, d))
        value = np.nan if lo < t < hi else 0.5 * np.sum(x ** 2)
        return value, x.copy()
    return f


def test_hager_zhang_reports_failure_on_nan():
    """It used to stop with done=False and failed=False (a NaN error ends
    run's loop, but nothing said the search failed)."""
    x0 = np.array([1.0, -2.0])
    f = _nan_on_a_segment(x0, -x0, 0.55, 1.05)
    _, state = HagerZhangLineSearch(f, value_and_grad=True).run(1.0, x0, descent_direction=-x0)
    assert bool(state.done) != bool(state.failed)
    if state.done:
        assert np.isfinite(state.value)
    # NaN everywhere: failed, not done
    _, state = HagerZhangLineSearch(lambda x: (np.nan, x * np.nan), value_and_grad=True).run(
        1.0, x0, value=2.5, grad=x0, descent_direction=-x0)
    assert bool(state.failed) and not bool(state.done)


def test_zoom_and_backtracking_report_failure_on_nan():
    x0 = np.array([1.0, -2.0])
    for cls in (ZoomLineSearch, BacktrackingLineSearch):
        _, state = cls(lambda x: (np.nan, x * np.nan), value_and_grad=True).run(
            1.0, x0, value=2.5, grad=x0, descent_direction=-x0)
        assert bool(state.failed) and not bool(state.done), cls.__name__


# ==========================================================================
# 3. QPs.

def test_box_cdqp_refuses_a_non_convex_q():
    """It returned a maximiser with error = 0."""
    box = (-np.ones(2), np.ones(2))
    with pytest.raises(ValueError, match="params_obj: Q must be positive semidefinite"):
        BoxCDQP().run(np.zeros(2), (np.array([[-1.0, 0.0], [0.0, 2.0]]), np.array([0.1, -1])),
                      box)
    with pytest.raises(ValueError, match="params_obj: Q must be positive semidefinite"):
        BoxCDQP().run(np.zeros(2), (np.array([[1.0, 2.0], [2.0, 1.0]]), np.array([0.1, -1])),
                      box)
    with pytest.raises(ValueError, match="params_obj: Q must be positive semidefinite"):
        BoxCDQP().update(np.zeros(2), BoxCDQP().init_state(np.zeros(2)),
                         (np.array([[-1.0, 0.0], [0.0, 2.0]]), np.zeros(2)), box)
    # positive semidefinite (singular) is fine
    x, state = BoxCDQP().run(np.zeros(2), (np.ones((2, 2)), np.array([-1.0, -1])), box)
    assert abs(x.sum() - 1.0) < 1e-6


def test_box_cdqp_linear_coordinate_goes_to_its_bound():
    """Q_ii = 0: jaxopt leaves the coordinate alone and reports error = 0 at a
    point that is not a minimum; its minimum is at a bound."""
    Q = np.diag([2.0, 0.0])
    x, state = BoxCDQP().run(np.array([1.0, 0.5]), (Q, np.array([-1.0, 1.0])),
                             (np.zeros(2), np.ones(2)))
    np.testing.assert_allclose(x, [0.5, 0.0])
    kkt = BoxCDQP().optimality_fun(x, (Q, np.array([-1.0, 1.0])), (np.zeros(2), np.ones(2)))
    assert np.max(np.abs(kkt)) < 1e-12
    # gradient 1 > 0 on the linear coordinate and no lower bound: unbounded below
    with pytest.raises(ValueError, match="unbounded below along coordinate 1"):
        BoxCDQP().run(np.zeros(2), (Q, np.array([-1.0, 1.0])),
                      (np.array([0.0, -np.inf]), np.ones(2)))


def _infeasible():
    # x0 <= -1 and x0 >= 1
    return (np.eye(2), np.ones(2)), (np.array([[1.0, 0.0], [-1.0, 0.0]]), np.array([-1.0, -1.0]))


def test_osqp_detects_infeasibility_by_default():
    """npopt has no jit: detection is on by default (jaxopt's 'auto' follows
    its jit=True default and is off), with a status and a warning."""
    obj, ineq = _infeasible()
    with pytest.warns(RuntimeWarning, match="OSQP: the problem is primal infeasible"):
        _, state = OSQP().run(None, obj, None, ineq)
    assert state.status == BoxOSQP.PRIMAL_INFEASIBLE and int(state.iter_num) < 4000
    # unbounded below along x0
    Q, c = np.zeros((2, 2)), np.array([-1.0, 0.0])
    with pytest.warns(RuntimeWarning, match="OSQP: the problem is dual infeasible"):
        _, state = OSQP().run(None, (Q, c), None, (np.array([[0.0, 1.0]]), np.array([1.0])))
    assert state.status == BoxOSQP.DUAL_INFEASIBLE
    with pytest.warns(RuntimeWarning, match="BoxOSQP: the problem is dual infeasible"):
        _, state = BoxOSQP().run(None, (Q, c), np.array([[0.0, 1.0]]),
                                 (np.array([-np.inf]), np.array([1.0])))
    assert state.status == BoxOSQP.DUAL_INFEASIBLE
    with pytest.raises(ValueError, match="Primal infeasible"):      # jaxopt's jit=False
        OSQP(jit=False).run(None, obj, None, ineq)


@pytest.mark.parametrize("check", ["auto", True])
def test_osqp_no_false_infeasibility_certificate(check):
    """Inactive constraints: y stays 0 over the first check, and jaxopt's
    certificate test (0 <= 0) called the problem primal infeasible at once."""
    Q, c = np.eye(2), np.array([-0.1, 0.2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sol, state = OSQP(check_primal_dual_infeasability=check).run(
            None, (Q, c), None, (np.eye(2), np.array([10.0, 10.0])))
    assert state.status == BoxOSQP.SOLVED
    np.testing.assert_allclose(sol.primal, [0.1, -0.2], atol=1e-3)


def test_qp_nan_data_names_the_argument():
    """NaN in Q used to surface as 'atol: expected a finite number, got nan'."""
    Q = np.eye(2)
    Q[0, 0] = np.nan
    with pytest.raises(ValueError, match="^params_obj: expected finite numbers, got NaN"):
        OSQP().run(None, (Q, np.ones(2)), None, (np.eye(2), np.ones(2)))
    with pytest.raises(ValueError, match="^params_ineq: expected no NaN"):
        OSQP().run(None, (np.eye(2), np.ones(2)), None, (np.eye(2), np.array([1.0, np.nan])))
    with pytest.raises(ValueError, match="^params_eq"):
        EqualityConstrainedQP().run(None, (np.eye(2), np.ones(2)),
                                    (np.array([[1.0, np.nan]]), np.ones(1)))
    with pytest.raises(ValueError, match="^params_obj"):
        BoxCDQP().run(np.zeros(2), (Q, np.ones(2)), (-np.ones(2), np.ones(2)))
    # infinite bounds are fine
    sol, state = OSQP().run(None, (np.eye(2), -np.ones(2)), None,
                            (np.eye(2), np.array([0.5, np.inf])))
    np.testing.assert_allclose(sol.primal, [0.5, 1.0], atol=1e-3)


def test_eq_qp_refinement_that_stops_short_warns():
    """With refine_regularization the refinement's state was dropped: a
    solution off by the regularisation came back silently."""
    Q, c, A, b = np.diag([1.0, 2.0, 3.0]), np.ones(3), np.ones((1, 3)), np.ones(1)
    with pytest.warns(linear_solve.LinearSolveWarning, match="not solved to tol"):
        EqualityConstrainedQP(refine_regularization=1.0, refine_maxiter=1).run(
            None, (Q, c), (A, b))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sol, _ = EqualityConstrainedQP(refine_regularization=1e-3, refine_maxiter=20,
                                       tol=1e-10).run(None, (Q, c), (A, b))
    K = np.block([[Q, A.T], [A, np.zeros((1, 1))]])
    np.testing.assert_allclose(np.concatenate([sol.primal, sol.dual_eq]),
                               np.linalg.solve(K, np.concatenate([-c, b])), rtol=1e-8)


# ==========================================================================
# 4. Where the gradient comes from.

def _ls_data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((40, 8)), rng.standard_normal(40)


@pytest.mark.parametrize("make", [
    lambda f: ProximalGradient(fun=f, prox=prox.prox_lasso, tol=1e-8),
    lambda f: GradientDescent(fun=f, tol=1e-8),
    lambda f: LBFGS(fun=f, tol=1e-8),
    lambda f: PolyakSGD(fun=f, maxiter=20),
])
def test_npopt_objectives_carry_their_gradient(make):
    """fun=npopt.objective.least_squares used to take the finite-difference
    path (45x slower): the objective's own gradient is used, the same numbers
    as value_and_grad=True."""
    X, y = _ls_data()
    args = (0.05, (X, y)) if type(make(objective.least_squares)) is ProximalGradient \
        else ((X, y),)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FiniteDifferenceWarning)
        p1, s1 = make(objective.least_squares).run(np.zeros(8), *args)
    s = make(objective.least_squares.value_and_grad)
    s.value_and_grad = True
    s.__post_init__()
    p2, s2 = s.run(np.zeros(8), *args)
    np.testing.assert_array_equal(p1, p2)
    assert int(s1.iter_num) == int(s2.iter_num)
    # a function with a value_and_grad attribute is not enough: npopt's own only
    def user_fun(w, data):
        return objective.least_squares(w, data)
    user_fun.value_and_grad = None
    with pytest.warns(FiniteDifferenceWarning):
        make(user_fun).run(np.zeros(8), *args)


def test_ridge_regression_objective_carries_its_gradient():
    X, y = _ls_data()
    with warnings.catch_warnings():
        warnings.simplefilter("error", FiniteDifferenceWarning)
        p, _ = LBFGS(fun=objective.ridge_regression, tol=1e-10).run(np.zeros(8), 0.1, (X, y))
    np.testing.assert_allclose(p, np.linalg.solve(X.T @ X / 40 + 0.1 * np.eye(8), X.T @ y / 40),
                               rtol=1e-7)


def test_finite_differences_warn_once_per_instance():
    def f(x):
        return 0.5 * np.sum((x - 1.0) ** 2)
    solver = LBFGS(fun=f, tol=1e-8)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        solver.run(np.zeros(5))
        solver.run(np.ones(5) * 3)
    fd = [x for x in w if issubclass(x.category, FiniteDifferenceWarning)]
    assert len(fd) == 1
    assert "slow path" in str(fd[0].message) and "5 parameters" in str(fd[0].message)
    assert "10 evaluations" in str(fd[0].message)
    assert fd[0].filename == __file__            # points at the caller of run
    for make in (lambda: GaussNewton(lambda x: x - 1.0), lambda: Broyden(lambda x: x - 1.0)):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            s = make()
            s.run(np.zeros(3))
            s.run(np.zeros(3))
        assert sum(issubclass(x.category, FiniteDifferenceWarning) for x in w) == 1


def test_value_and_grad_mixups_are_named():
    def vg(x):
        return 0.5 * np.sum(x ** 2), x

    def value(x):
        return 0.5 * np.sum(x ** 2)
    x0 = np.ones(3)
    for make in (lambda f, **kw: GradientDescent(f, **kw), lambda f, **kw: LBFGS(f, **kw),
                 lambda f, **kw: OptaxSolver(f, opt=npopt.sgd(0.1), **kw),
                 lambda f, **kw: ScipyMinimize(fun=f, **kw)):
        with pytest.raises(TypeError, match="did you mean value_and_grad=True"):
            make(vg).run(x0)
        with pytest.raises(TypeError, match="value_and_grad=True.*single value.*"
                                            "value_and_grad=False"):
            make(value, value_and_grad=True).run(x0)
    with pytest.raises(TypeError, match="did you mean value_and_grad=True"):
        BacktrackingLineSearch(vg).run(1.0, x0)
    with pytest.raises(TypeError, match="did you mean has_aux=True"):
        GaussNewton(lambda x: (x, 1.0), jac_fun=lambda x: np.eye(3)).run(x0)


# ==========================================================================
# 5. Implicit differentiation: once, on the solver's tolerance.

def _ridge(n=30, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X, y = rng.standard_normal((n, d)), rng.standard_normal(n)

    def fun(w, lam, X, y):
        r = X @ w - y
        return 0.5 * r @ r / n + 0.5 * lam * w @ w

    def F(w, lam, X, y):
        return X.T @ (X @ w - y) / n + lam * w
    return X, y, fun, F


def test_not_a_root_warns_once_per_decorated_function():
    X, y, _, F = _ridge()

    def closed(lam):
        return np.linalg.solve(X.T @ X / 30 + lam * np.eye(5), X.T @ y / 30)

    @idf.custom_root(F)
    def off(init, lam, X, y):
        return closed(lam) + 1e-2

    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        for lam in np.linspace(0.1, 1.0, 10):
            off.jacobian(None, lam, X, y)
    assert sum("not a root" in str(x.message) for x in w) == 1

    # a solve to jaxopt's linear-solve tolerance (1e-5 relative) is a root
    @idf.custom_root(F)
    def cg(init, lam, X, y):
        return linear_solve.solve_cg(lambda v: X.T @ (X @ v) / 30 + lam * v, X.T @ y / 30,
                                     tol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for lam in (0.1, 0.5):
            cg.jacobian(None, lam, X, y)


def test_not_a_root_follows_the_solver_and_warns_once():
    X, y, fun, F = _ridge()
    short = GradientDescent(fun=fun, grad=F, maxiter=3)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        for lam in np.linspace(0.1, 1.0, 6):
            short.jvp(np.zeros(5), lam, X, y, tangents=1.0)
    msgs = [str(x.message) for x in w if "not a root" in str(x.message)]
    assert len(msgs) == 1 and "GradientDescent stopped without meeting its stopping" in msgs[0]
    # converged to jaxopt's default tol: no warning at all, on any call
    solver = GradientDescent(fun=fun, grad=F)          # tol=1e-3, as jaxopt
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for lam in np.linspace(0.1, 1.0, 6):
            solver.jacobian(np.zeros(5), lam, X, y)


# ==========================================================================
# 6. OptaxSolver with a scalar parameter.

@pytest.mark.parametrize("opt", [npopt.sgd(0.1), npopt.adam(0.1), npopt.rmsprop(0.05),
                                 npopt.lion(0.01), npopt.adagrad(0.5)])
def test_optax_solver_moves_a_scalar_param(opt):
    """theta = 1.0 (jaxopt's examples); depends on GradientTransformation.step
    handling scalars (npopt/base.py)."""
    def vg(theta, data=None):
        return (theta - 3.0) ** 2, 2 * (theta - 3.0)
    theta, state = OptaxSolver(fun=vg, opt=opt, value_and_grad=True, maxiter=2000,
                               tol=1e-6).run(1.0)
    assert np.shape(theta) == ()
    assert abs(float(theta) - 3.0) < 1e-2
    theta, state = OptaxSolver(fun=vg, opt=opt, value_and_grad=True, maxiter=50).run_iterator(
        1.0, iter([None] * 60))
    assert float(theta) > 1.0
    p, _ = OptaxSolver(fun=lambda p: ((p["t"] - 3.0) ** 2, {"t": 2 * (p["t"] - 3.0)}), opt=opt,
                       value_and_grad=True, maxiter=2000, tol=1e-6).run({"t": 1.0})
    assert abs(float(p["t"]) - 3.0) < 1e-2


def test_optax_solver_leaves_the_callers_buffers_alone():
    """opt.step updates in place: run used to overwrite init_params, and
    update consumed the state (a second update with it raised)."""
    def vg(x):
        return np.sum((x - 3.0) ** 2), 2 * (x - 3.0)
    x0 = np.array([1.0, 2.0])
    solver = OptaxSolver(fun=vg, opt=npopt.adam(0.1), value_and_grad=True, maxiter=5)
    params, _ = solver.run(x0)
    np.testing.assert_array_equal(x0, [1.0, 2.0])
    state = solver.init_state(x0)
    p1, _ = solver.update(x0, state)
    p2, _ = solver.update(x0, state)
    np.testing.assert_array_equal(p1, p2)
    np.testing.assert_array_equal(x0, [1.0, 2.0])
    assert p1 is not x0
    # run's in-place path and the functional update give the same numbers
    p, s = x0, solver.init_state(x0)
    for _ in range(5):
        p, s = solver.update(p, s)
    np.testing.assert_array_equal(p, params)


# ==========================================================================
# 7. The audit: unusual inputs, every solver.

def _vg(x):
    return 0.5 * np.sum((x - 1.0) ** 2), x - 1.0


SOLVERS = {
    "GradientDescent": (lambda **kw: GradientDescent(_vg, value_and_grad=True, **kw), ()),
    "ProximalGradient": (lambda **kw: ProximalGradient(_vg, value_and_grad=True,
                                                       prox=prox.prox_lasso, **kw), (0.1,)),
    "ProjectedGradient": (lambda **kw: ProjectedGradient(
        _vg, value_and_grad=True, projection=projection.projection_box, **kw), ((-5.0, 5.0),)),
    "MirrorDescent": (lambda **kw: MirrorDescent(
        _vg, value_and_grad=True, stepsize=0.1,
        projection_grad=lambda x, g, s, h: x - s * g, **kw), (None,)),
    "PolyakSGD": (lambda **kw: PolyakSGD(_vg, value_and_grad=True, **kw), ()),
    "ArmijoSGD": (lambda **kw: ArmijoSGD(_vg, value_and_grad=True, **kw), ()),
    "OptaxSolver": (lambda **kw: OptaxSolver(_vg, opt=npopt.adam(0.1), value_and_grad=True,
                                             **kw), ()),
    "LBFGS": (lambda **kw: LBFGS(_vg, value_and_grad=True, **kw), ()),
    "BFGS": (lambda **kw: BFGS(_vg, value_and_grad=True, **kw), ()),
    "NonlinearCG": (lambda **kw: NonlinearCG(_vg, value_and_grad=True, **kw), ()),
    "LBFGSB": (lambda **kw: LBFGSB(_vg, value_and_grad=True, **kw), (None,)),
    "GaussNewton": (lambda **kw: GaussNewton(lambda x: x - 1.0,
                                             jac_fun=lambda x: np.eye(np.size(x)), **kw), ()),
    "LevenbergMarquardt": (lambda **kw: LevenbergMarquardt(
        lambda x: x - 1.0, jac_fun=lambda x: np.eye(np.size(x)), **kw), ()),
    "FixedPointIteration": (lambda **kw: FixedPointIteration(lambda x: 0.5 * x + 0.5, **kw), ()),
    "AndersonAcceleration": (lambda **kw: AndersonAcceleration(lambda x: 0.5 * x + 0.5, **kw),
                             ()),
    "AndersonWrapper": (lambda **kw: AndersonWrapper(
        GradientDescent(_vg, value_and_grad=True, stepsize=0.5, **kw)), ()),
    "Broyden": (lambda **kw: Broyden(lambda x: x - 1.0, jac=lambda x: np.eye(np.size(x)), **kw),
                ()),
    "ScipyMinimize": (lambda **kw: ScipyMinimize(fun=_vg, value_and_grad=True, **kw), ()),
    "ScipyRootFinding": (lambda **kw: ScipyRootFinding(optimality_fun=lambda x: x - 1.0,
                                                       method="hybr", **kw), ()),
}


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_integer_params_are_refused_naming_init_params(name):
    """Some solvers converted silently, some said 'data type <int64> not
    inexact' (LBFGSB, GaussNewton, LevenbergMarquardt); jaxopt's gradients
    refuse integers."""
    make, args = SOLVERS[name]
    with pytest.raises(TypeError, match="^init_params: expected floating-point leaves.*int64"):
        make().run(np.array([3, -2]), *args)


def test_integer_params_refused_by_qp_and_line_searches():
    with pytest.raises(TypeError, match="params: expected floating-point leaves"):
        BoxCDQP().run(np.array([0, 0]), (np.eye(2), np.ones(2)), (-np.ones(2), np.ones(2)))
    for cls in (BacktrackingLineSearch, ZoomLineSearch, HagerZhangLineSearch):
        with pytest.raises(TypeError, match="params: expected floating-point leaves"):
            cls(_vg, value_and_grad=True).run(1.0, np.array([3, -2]))


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_empty_tree_is_refused_before_fun_is_called(name):
    make, args = SOLVERS[name]
    with pytest.raises(ValueError, match="^init_params: expected at least one array leaf"):
        make().run({}, *args)


@pytest.mark.parametrize("name", sorted(set(SOLVERS) - {"AndersonWrapper", "ScipyRootFinding"}))
def test_maxiter_zero_and_bad_tol(name):
    """maxiter=0 returns init_params (Broyden used to refuse it, naming
    history_size); a negative or NaN tol is refused naming tol."""
    make, args = SOLVERS[name]
    x0 = np.array([3.0, -2.0])
    if name != "ScipyMinimize":      # scipy's own maxiter=0 semantics
        params, state = make(maxiter=0).run(x0, *args)
        np.testing.assert_array_equal(params, x0)
        assert int(state.iter_num) == 0
    for tol in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="^tol: expected a finite number"):
            make(tol=tol)


@pytest.mark.parametrize("name", sorted(set(SOLVERS) - {"ScipyMinimize", "ScipyRootFinding"}))
def test_nan_at_the_start_is_reported(name):
    """fun NaN at init_params: the state holds NaN and run warns (never an
    error of 0, never a misleading exception)."""
    make, args = SOLVERS[name]
    x0 = np.array([np.nan, -2.0])
    with pytest.warns(RuntimeWarning, match="non-finite"):
        params, state = make().run(x0, *args)
    assert not np.isfinite(state.error)


def test_scipy_wrappers_name_init_params():
    """ScipyLeastSquares blamed the bounds for a NaN in init_params; empty
    params raised 'need at least one array to stack'."""
    for solver in (ScipyMinimize(fun=_vg, value_and_grad=True),
                   ScipyRootFinding(optimality_fun=lambda x: x - 1.0, method="hybr"),
                   ScipyLeastSquares(fun=lambda x: x - 1.0)):
        with pytest.raises(ValueError, match="^init_params: expected finite numbers, got NaN"):
            solver.run(np.array([np.nan, 1.0]))
        with pytest.raises(ValueError, match="^init_params: expected at least one number"):
            solver.run(np.zeros(0))


def test_empty_arrays_and_nan_bisection():
    """Zero-size params: LM used to fail in np.max of an empty diagonal."""
    params, state = LevenbergMarquardt(lambda x: x - 1.0).run(np.zeros(0))
    assert params.shape == (0,) and state.error == 0
    with pytest.raises(ValueError, match="^optimality_fun: returned NaN"):
        Bisection(lambda x: np.nan, lower=0.0, upper=1.0).run()


@pytest.mark.parametrize("name", ["GradientDescent", "LBFGS", "OptaxSolver", "PolyakSGD"])
def test_wrong_shapes_from_fun_are_named(name):
    make = {"GradientDescent": GradientDescent, "LBFGS": LBFGS, "PolyakSGD": PolyakSGD,
            "OptaxSolver": lambda f, **kw: OptaxSolver(f, opt=npopt.sgd(0.1), **kw)}[name]
    x0 = np.array([3.0, -2.0])
    with pytest.raises(ValueError, match="^fun: expected a scalar value, got an array of shape"):
        make(lambda x: ((x - 1) ** 2, x - 1), value_and_grad=True).run(x0)
    with pytest.raises(ValueError, match="^grad: leaf 0 has shape"):
        make(lambda x: (np.sum(x ** 2), np.ones(3)), value_and_grad=True).run(x0)
    with pytest.raises(TypeError, match="^fun: expected a real scalar value, got NoneType"):
        _quiet(make(lambda x: None).run, x0)
