"""LBFGS, BFGS and NonlinearCG against jaxopt 0.8.5, and their kernels.

The stored runs (tests/reference/make_quasi_newton_reference.py: x64, jitted
``run``; jaxopt sees the NumPy objectives through ``jax.pure_callback``, so
both libraries evaluate the same functions) give the final params, the
iteration and evaluation counts and the first iterations' values and steps.
npopt must reach the same params to 1e-8 relative (float32 cases: 1e-5) with
the same counts. Plus: the two-loop recursion against the dense BFGS
inverse, the Wolfe conditions on every accepted step, ``run`` vs ``update``,
warm starts, gradient sources, dtypes, bad input, and the kernels (CPU
parallel vs serial, CUDA under the simulator).
"""
import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from npopt import _flat
from npopt import tree as T
from npopt.kernels import _jit
from npopt.kernels import lbfgs as K
from npopt.solvers import lbfgs as lbfgs_mod
from npopt.solvers.bfgs import BFGS, BfgsState, bfgs_update
from npopt.solvers.lbfgs import LBFGS, LbfgsState
from npopt.solvers.linesearch import ZoomLineSearch
from npopt.solvers.nonlinear_cg import NonlinearCG, NonlinearCGState
from reference import fixed_order as fo
from reference import make_quasi_newton_reference as R
from reference import solver_problems as sp

Z = np.load(R.OUT)
META = json.loads(str(Z["meta"]))["cases"]
SOLVERS = {"LBFGS": LBFGS, "BFGS": BFGS, "NonlinearCG": NonlinearCG}

# ---- chaotic references -------------------------------------------------------
# jaxopt (XLA: its own summation orders, fused multiply-adds) and npopt round
# differently, so a stored run can only be matched to the extent that it does
# not depend on rounding. Measured with npopt by rerunning each case with one
# entry of x0 moved by one ulp (np.nextafter) and with 1-ulp noise on every
# objective value and gradient entry (another rounding of the same function,
# as another summation order or another CPU's BLAS kernel gives; 40 runs):
# on the cases below the final state, and on most of them the counts, are
# decided by rounding, so matching them exactly would be luck (and while npopt
# used BLAS, whose kernels OpenBLAS picks per CPU, they failed on an AVX2
# EPYC). For these, test_matches_jaxopt checks what holds whatever the
# rounding: the run converged (gradient norm <= tol at the returned params),
# the params are Rosenbrock's minimum x* = 1 (and the reference's params) to
# the accuracy the gradient norm guarantees, the value is near 0 accordingly,
# and the iteration count is within 15% (measured spread: at most 5%); the
# trajectory before it separates is test_first_iterations_match_jaxopt's
# (PREFIX). Every other case keeps its exact counts.
# name -> (whether the counts are decided by rounding, the evidence)
CHAOTIC = {
    "bfgs_rosen10_hz": (True, "x0[3] one ulp up, or 1-ulp noise: 87 -> 86 iterations and 10 "
                              "fewer evaluations; failed on an AVX2 EPYC while npopt used BLAS"),
    "lbfgs_rosen10_backtracking": (True, "1-ulp changes of x0 or noise: 75 to 81 iterations "
                                         "(reference 78), params 8e-8 apart"),
    "lbfgs_rosen10_hist3_nogamma": (True, "x0[3] one ulp up: 135 -> 134 iterations; the "
                                          "final gradient norm moves 1.4x its tolerance"),
    "lbfgs_rosen2_f32": (True, "1-ulp changes of x0 or noise (float32): 41 to 44 iterations "
                               "(reference 42), params up to 8e-4 apart"),
    "lbfgs_rosen10_hz": (True, "num_fun_eval 1506 vs 1508 on an AVX2 EPYC while npopt used "
                               "BLAS; under 1-ulp noise the final value and gradient norm move "
                               "5x and 16x beyond their tolerances"),
    "lbfgs_rosen2_init_current_maxstep2": (False, "counts stable, but under 1-ulp noise the "
                                                  "final value moves 90x beyond its tolerance "
                                                  "and the last step 9x"),
}

# test_first_iterations_match_jaxopt: how many of the stored first iterations
# stay within which tolerance under the same perturbations (default: all, at
# 1e-10; float32 1e-5). name -> (iterations, rtol, the evidence)
PREFIX = {
    # Hager-Zhang's secant steps amplify rounding ~1e5-fold from the first step
    "bfgs_rosen10_hz": (12, 2e-9, "3e-11 at iteration 1, at most 2e-10 by 12"),
    "lbfgs_rosen10_hz": (12, 1e-9, "3e-11 at every iteration"),
    "lbfgs_rosen2_f32": (12, 1e-4, "3e-6 at iteration 1, at most 6e-6 by 12"),
    # the trajectories separate
    "lbfgs_rosen2_init_max": (8, 1e-10, "6e-11 at iteration 9, 1e-10 at 10"),
    "bfgs_rosen2_backtracking": (3, 1e-10, "5e-13 at iteration 3, 3e-9 at 4"),
    "lbfgs_rosen10_backtracking": (3, 1e-10, "6e-16 at iteration 3, 2e-8 at 4"),
}


def _hessian_min_eig(vg, x, *args):
    """The smallest eigenvalue of the Hessian at x (central differences of
    the gradient, h = 1e-5: an error ~1e-9, far below what it bounds)."""
    n, h = x.size, 1e-5
    H = np.empty((n, n))
    for j in range(n):
        e = np.zeros(n)
        e[j] = h
        H[:, j] = (vg(x + e, *args)[1] - vg(x - e, *args)[1]) / (2 * h)
    return float(np.linalg.eigvalsh(0.5 * (H + H.T))[0])


def _assert_converged_to_the_minimum(name, params, state):
    """A chaotic case's final state, as far as it is decided whatever the
    rounding: near x* = 1, the gradient norm g bounds |x - x*| by g / lam_min
    (lam_min the Hessian's smallest eigenvalue there: 0.40 (n = 2), 0.50
    (n = 10)) and f by g^2 / (2 lam_min); twice that, for the Hessian's
    variation over the distance."""
    cls, kw, prob = R.CASES[name]
    vg, x0, args = R.PROBLEMS[prob]
    solver = SOLVERS[cls](fun=vg, value_and_grad=True, **kw)
    assert prob.startswith("rosen"), "the bounds below are Rosenbrock's"
    assert int(state.iter_num) < solver.maxiter                  # stopped by tol
    x = T.ravel(params)[0].astype(np.float64)
    g = float(fo.norm(T.ravel(vg(params, *args)[1])[0].astype(np.float64)))
    slack = 1.01 if prob.endswith("_f32") else 1.0 + 1e-6      # norm in float32 there
    assert float(state.error) <= solver.tol and g <= solver.tol * slack
    lam_min = _hessian_min_eig(R.rosenbrock_np, np.ones(x.size))
    assert lam_min >= 0.39
    bound = 2 * solver.tol / lam_min
    assert fo.norm(x - 1.0) <= bound
    want = np.concatenate([np.ravel(Z[f"{name}/params_{i}"])
                           for i in range(len(T.tree_leaves(params)))]).astype(np.float64)
    assert fo.norm(x - want) <= 2 * bound                        # both within bound of x*
    assert 0.0 <= float(state.value) <= solver.tol ** 2 / lam_min


def _run(name, **extra):
    cls, kw, prob = R.CASES[name]
    vg, x0, args = R.PROBLEMS[prob]
    return SOLVERS[cls](fun=vg, value_and_grad=True, **kw, **extra).run(x0(), *args)


def _counting(vg):
    """vg and a list whose first item counts its calls."""
    calls = [0]

    def f(*args, **kwargs):
        calls[0] += 1
        return vg(*args, **kwargs)
    return f, calls


def check_evaluation_counts(state, ref, calls, linesearch, fixed_stepsize, exact=True):
    """npopt's num_fun_eval / num_grad_eval are the calls it made (each call of a
    value_and_grad fun is one of each); jaxopt's count evaluations npopt does
    not make:

    * zoom (in LBFGS, BFGS, NonlinearCG, LBFGSB): jaxopt calls ``fun`` once
      more per iteration to get an ``aux`` these solvers do not have, and
      counts it (and a gradient it does not compute there): jaxopt's counts
      are npopt's + ``iter_num``;
    * Hager-Zhang: jaxopt computes and discards evaluations (its
      ``jax.lax.cond`` branches run both sides), ~5 per iteration with no
      closed form: npopt's counts are at most jaxopt's;
    * backtracking and a fixed stepsize: the same counts.
    """
    assert int(state.num_fun_eval) == calls[0]
    assert int(state.num_grad_eval) == calls[0]
    if not exact:
        return
    assert int(state.iter_num) == ref["iter_num"]
    assert int(state.num_linesearch_iter) == ref["num_linesearch_iter"]
    extra = 0 if fixed_stepsize or linesearch == "backtracking" else int(state.iter_num)
    for key in ("num_fun_eval", "num_grad_eval"):
        if linesearch == "hager-zhang" and not fixed_stepsize:
            assert int(getattr(state, key)) <= ref[key], key
        else:
            assert int(getattr(state, key)) + extra == ref[key], key


@pytest.mark.parametrize("name", sorted(R.CASES))
def test_matches_jaxopt(name):
    cls, kw, prob = R.CASES[name]
    vg, x0, args = R.PROBLEMS[prob]
    fun, calls = _counting(vg)
    params, state = SOLVERS[cls](fun=fun, value_and_grad=True, **kw).run(x0(), *args)
    ref = META[name]
    f32 = R.CASES[name][2].endswith("_f32")
    chaotic_counts, _ = CHAOTIC.get(name, (False, ""))
    fixed = bool(kw.get("stepsize", 0))
    check_evaluation_counts(state, ref, calls, kw.get("linesearch", "zoom"), fixed,
                            exact=not chaotic_counts)
    if chaotic_counts:         # decided by rounding (CHAOTIC): within 15%
        assert abs(int(state.iter_num) - ref["iter_num"]) <= 0.15 * ref["iter_num"]
    if "failed_linesearch" in ref:
        assert bool(state.failed_linesearch) == ref["failed_linesearch"]
    if name in CHAOTIC:
        _assert_converged_to_the_minimum(name, params, state)
        return
    tol = 1e-5 if f32 else 1e-8
    for i, leaf in enumerate(T.tree_leaves(params)):
        want = Z[f"{name}/params_{i}"]
        assert leaf.dtype == want.dtype
        assert np.max(np.abs(leaf - want)) / np.max(np.abs(want)) <= tol
    # values near a zero minimum (Rosenbrock) are compared to the initial value
    vg, x0, args = R.PROBLEMS[R.CASES[name][2]]
    f0 = abs(float(vg(x0(), *args)[0]))
    assert abs(float(state.value) - ref["value"]) <= tol * max(abs(ref["value"]), 1e-12 * f0)
    # the last step is decided near convergence, where the line search
    # interpolates slopes of the size of rounding errors: only its first
    # digits are meaningful (test_first_iterations_match_jaxopt pins the
    # steps of the first iterations to 1e-10)
    assert float(state.stepsize) == pytest.approx(ref["stepsize"], rel=1e-2)
    # the error is a gradient norm: at a minimum its relative error is that
    # of the params over the gradient's size (float32: ~1e-7 / 1e-4)
    # (Rosenbrock's Hessian ~1e3: 1e-11 in the params is 1e-8 in the gradient)
    assert float(state.error) == pytest.approx(ref["error"], rel=1e-3 if f32 else 1e-6,
                                               abs=0 if f32 else 1e-8)


@pytest.mark.parametrize("name", sorted(R.CASES))
def test_first_iterations_match_jaxopt(name):
    cls, kw, prob = R.CASES[name]
    vg, x0, args = R.PROBLEMS[prob]
    solver = SOLVERS[cls](fun=vg, value_and_grad=True, **kw)
    p = x0()
    state = solver.init_state(p, *args)
    ref = META[name]
    tol = 1e-5 if prob.endswith("_f32") else 1e-10
    n = len(ref["values"])
    if name in PREFIX:          # measured: the part not decided by rounding
        n, tol, _ = PREFIX[name]
    for k, (v, s) in enumerate(zip(ref["values"][:n], ref["stepsizes"][:n])):
        p, state = solver.update(p, state, *args)
        assert float(state.stepsize) == pytest.approx(s, rel=tol), k
        assert float(state.value) == pytest.approx(v, rel=tol, abs=1e-4 * tol), k


# ---- what the algorithms promise --------------------------------------------

def _dense_inverse_hessian(S, Y, gamma, order):
    """H from gamma I by the BFGS recursion H <- V'HV + rho s s' over the
    pairs in ``order`` (oldest first), V = I - rho y s' (N&W (7.19))."""
    n = S.shape[1]
    H = gamma * np.eye(n)
    for i in order:
        s, y = S[i], Y[i]
        rho = 1.0 / (s @ y)
        V = np.eye(n) - rho * np.outer(y, s)
        H = V.T @ H @ V + rho * np.outer(s, s)
    return H


@settings(max_examples=40)
@given(st.integers(0, 2 ** 31 - 1), st.integers(1, 30), st.integers(1, 6), st.integers(0, 5),
       st.floats(0.1, 3.0))
def test_two_loop_equals_the_dense_bfgs_inverse(seed, n, m, start, gamma):
    rng = np.random.default_rng(seed)
    start = start % m
    A = rng.standard_normal((n, n))
    A = A @ A.T + n * np.eye(n)                   # curvature pairs of an SPD Hessian
    S = rng.standard_normal((m, n))
    Y = S @ A
    rho = 1.0 / np.einsum("ij,ij->i", S, Y)
    v = rng.standard_normal(n)
    order = [(start + j) % m for j in range(m)]   # oldest ... newest
    want = _dense_inverse_hessian(S, Y, gamma, order) @ v
    got = lbfgs_mod.inv_hessian_product(v, S, Y, rho, gamma, start)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9 * np.max(np.abs(want)))


def test_two_loop_with_empty_slots_is_gamma_times_identity():
    v = np.arange(5.0)
    got = lbfgs_mod.inv_hessian_product(v, np.zeros((3, 5)), np.zeros((3, 5)), np.zeros(3),
                                        0.5, 1)
    np.testing.assert_array_equal(got, 0.5 * v)


def test_bfgs_update_is_the_textbook_formula():
    rng = np.random.default_rng(0)
    n = 7
    H = rng.standard_normal((n, n))
    H = H @ H.T + np.eye(n)
    s, y = rng.standard_normal(n), rng.standard_normal(n)
    y = y if y @ s > 0 else -y
    rho = 1 / (y @ s)
    W = np.eye(n) - rho * np.outer(s, y)
    want = W @ H @ W.T + rho * np.outer(s, s)
    np.testing.assert_allclose(bfgs_update(H, s, y), want, rtol=1e-12, atol=1e-12)
    # secant equation H+ y = s
    np.testing.assert_allclose(bfgs_update(H, s, y) @ y, s, rtol=1e-10)
    # rho not finite: H is kept
    np.testing.assert_array_equal(bfgs_update(H, s, np.zeros(n)), H)


def _convex(seed, n):
    """A smooth convex problem without BLAS or SIMD-dispatched exp
    (``fixed_order``): the same bits on every CPU."""
    rng = np.random.default_rng(seed)
    Q, _ = fo.qr(rng.standard_normal((n, n)))
    A = fo.mm(Q * np.geomspace(1.0, 100.0, n), Q.T)
    C = rng.standard_normal((4, n))
    b = rng.standard_normal(n)

    def vg(x):
        z = fo.mv(C, x)
        sp_ = np.logaddexp(0.0, z)
        Ax = fo.mv(A, x)
        return (0.5 * fo.vdot(x, Ax) - fo.vdot(b, x) + np.sum(sp_),
                Ax - b + fo.rmv(C, fo.exp(z - sp_)))
    return vg, rng.standard_normal(n)


@settings(max_examples=15)
@given(st.integers(0, 2 ** 31 - 1), st.integers(2, 15),
       st.sampled_from([("LBFGS", "zoom"), ("LBFGS", "backtracking"), ("LBFGS", "hager-zhang"),
                        ("BFGS", "zoom"), ("NonlinearCG", "zoom"),
                        ("NonlinearCG", "hager-zhang")]))
def test_every_accepted_step_meets_the_line_search_conditions(seed, n, which):
    """Between consecutive iterates x -> x+ = x + s (s = t d): Armijo
    f+ <= f + c1 <g, s> (or, near the minimum, the approximate Wolfe decrease)
    and the curvature condition of the line search."""
    cls, ls = which
    vg, x = _convex(seed, n)
    solver = SOLVERS[cls](vg, value_and_grad=True, linesearch=ls, tol=1e-10, maxiter=60)
    state = solver.init_state(x)
    f_init = state.value
    for _ in range(60):
        f, g = state.value, state.grad
        # NonlinearCG's direction may go uphill (beta is not restricted to
        # keep descent): its line search then fails, as in jaxopt, and there
        # is no condition to check
        uphill = cls == "NonlinearCG" and g @ state.descent_direction >= 0
        x_new, new_state = solver.update(x, state)
        s = x_new - x
        gs, g1s = g @ s, new_state.grad @ s
        f1 = new_state.value
        slack = 1e-9 * (abs(f) + abs(gs))
        if not (bool(getattr(new_state, "failed_linesearch", False)) or uphill) \
                and np.any(s != 0):
            assert gs < 0                                          # a descent step
            if ls == "backtracking":                               # strong Wolfe
                assert f1 <= f + 1e-4 * gs + slack
                assert abs(g1s) <= 0.9 * abs(gs) + slack
            elif ls == "zoom":
                # at the largest step (max_stepsize) zoom stops without an
                # interval: sufficient decrease only (jaxopt's behaviour)
                assert abs(g1s) <= 0.9 * abs(gs) + slack or \
                    float(new_state.stepsize) == solver.max_stepsize
                assert f1 <= f + 1e-4 * gs + slack or (
                    g1s <= (2e-4 - 1) * gs + slack and f1 <= f + 1e-6 * abs(f) + slack)
            else:                                                  # Hager-Zhang
                wolfe = f1 <= f + 0.1 * gs + slack and g1s >= 0.9 * gs - slack
                approx = (0.2 - 1) * gs + slack >= g1s >= 0.9 * gs - slack \
                    and f1 <= f + 1e-6 * abs(f) + slack
                assert wolfe or approx
        x, state = x_new, new_state
        if np.linalg.norm(state.grad) <= 1e-10:
            break
    if cls == "NonlinearCG":
        assert state.value < f_init
    else:
        assert np.linalg.norm(state.grad) < 1e-4


@pytest.mark.parametrize("cls", sorted(SOLVERS))
def test_ridge_closed_form(cls):
    D = sp.data()
    X, y, lam = D["X"], D["y"], 0.1
    n = y.shape[0]
    w_star = np.linalg.solve(X.T @ X / n + lam * np.eye(D["d"]), X.T @ y / n)
    solver = SOLVERS[cls](fun=sp.ridge_np, value_and_grad=True, tol=1e-10, maxiter=300)
    w, state = solver.run(np.zeros(D["d"]), lam, X, y)
    np.testing.assert_allclose(w, w_star, rtol=0, atol=1e-9)
    assert solver.l2_optimality_error(w, lam, X, y) < 1e-9


# ---- the loop, the state, the API -------------------------------------------

@pytest.mark.parametrize("cls", sorted(SOLVERS))
def test_run_equals_repeated_update_and_update_does_not_mutate(cls):
    vg, x0, args = R.PROBLEMS["tree_rosen"]
    solver = SOLVERS[cls](fun=vg, value_and_grad=True, tol=1e-6, maxiter=40)
    p = x0()
    state = solver.init_state(p)
    p, state = solver.update(p, state)
    while state.error > solver.tol and state.iter_num < solver.maxiter:
        before = [np.array(x, copy=True) for x in T.tree_leaves(state)]
        p_new, new_state = solver.update(p, state)
        for a, b in zip(before, T.tree_leaves(state)):
            np.testing.assert_array_equal(a, b)
        p, state = p_new, new_state
    p2, s2 = solver.run(x0())
    assert int(state.iter_num) == int(s2.iter_num)
    for a, b in zip(T.tree_leaves(p), T.tree_leaves(p2)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(T.tree_leaves(state), T.tree_leaves(s2)):
        np.testing.assert_array_equal(a, b)


def test_lbfgs_history_is_a_ring_buffer_of_views():
    vg, x0, args = R.PROBLEMS["tree_rosen"]
    solver = LBFGS(fun=vg, value_and_grad=True, history_size=3, maxiter=5, tol=0.0)
    p, state = solver.run(x0())
    assert T.tree_structure(state.s_history) == T.tree_structure(x0())
    assert state.s_history["v"].shape == (3, 2, 3) and state.rho_history.shape == (3,)
    # slot (5 - 1) % 3 = 1 holds the newest pair
    assert np.all(state.rho_history > 0)
    buf = _flat.stacked_buffer(state.s_history, 3, 8, np.float64)
    assert state.s_history["u"].base is buf          # zero-copy
    # the newest pair is x5 - x4
    p4, s4 = LBFGS(fun=vg, value_and_grad=True, history_size=3, maxiter=4, tol=0.0).run(x0())
    newest = lbfgs_mod.select_ith_tree(state.s_history, 1)
    assert newest["u"].shape == (2,)
    np.testing.assert_array_equal(T.ravel(newest)[0], T.ravel(p)[0] - T.ravel(p4)[0])


def test_lbfgs_warm_start_continues_the_run():
    """run(OptStep) picks up histories, step and iteration count: 30 + 30
    iterations are the 60 of one run, bit for bit; the given state is kept."""
    vg, x0, _ = R.PROBLEMS["rosen10"]
    solver = LBFGS(fun=vg, value_and_grad=True, tol=1e-6, maxiter=30)
    step = solver.run(x0())
    state_before = [np.array(x, copy=True) for x in T.tree_leaves(step.state)]
    p, state = solver.run(step)
    for a, b in zip(state_before, T.tree_leaves(step.state)):
        np.testing.assert_array_equal(a, b)
    p_all, s_all = LBFGS(fun=vg, value_and_grad=True, tol=1e-6, maxiter=60).run(x0())
    assert int(state.iter_num) == int(s_all.iter_num) == 60
    np.testing.assert_array_equal(p, p_all)
    np.testing.assert_array_equal(state.s_history, s_all.s_history)


def test_state_types_and_fields():
    assert LbfgsState._fields == ("iter_num", "value", "grad", "stepsize", "error", "s_history",
                                  "y_history", "rho_history", "gamma", "aux",
                                  "failed_linesearch", "num_fun_eval", "num_grad_eval",
                                  "num_linesearch_iter")
    assert BfgsState._fields == ("iter_num", "value", "grad", "stepsize", "error", "H", "aux",
                                 "num_fun_eval", "num_grad_eval", "num_linesearch_iter")
    assert NonlinearCGState._fields == ("iter_num", "stepsize", "error", "value", "grad",
                                        "descent_direction", "aux", "num_fun_eval",
                                        "num_grad_eval", "num_linesearch_iter")


def test_defaults_are_jaxopts():
    f = lambda x: np.sum(x ** 2)  # noqa: E731
    lb, bf, cg = LBFGS(f), BFGS(f), NonlinearCG(f)
    assert (lb.maxiter, lb.tol, lb.stepsize, lb.linesearch, lb.linesearch_init,
            lb.stop_if_linesearch_fails, lb.maxls, lb.increase_factor, lb.max_stepsize,
            lb.min_stepsize, lb.history_size, lb.use_gamma) == \
        (500, 1e-3, 0.0, "zoom", "increase", False, 30, 1.5, 1.0, 1e-6, 10, True)
    assert (bf.maxiter, bf.tol, bf.linesearch, bf.increase_factor, bf.maxls) == \
        (500, 1e-3, "zoom", 1.5, 30)
    assert (cg.maxiter, cg.tol, cg.method, cg.linesearch, cg.increase_factor) == \
        (100, 1e-3, "polak-ribiere", "zoom", 1.2)
    assert isinstance(lb.linesearch_solver, ZoomLineSearch)
    assert lb.linesearch_solver.max_stepsize == 1.0 and lb.linesearch_solver.maxiter == 30


def test_ncg_error_is_one_iteration_behind():
    vg, x0, args = R.PROBLEMS["logreg"]
    solver = NonlinearCG(fun=vg, value_and_grad=True)
    state = solver.init_state(x0(), *args)
    _, state1 = solver.update(x0(), state, *args)
    assert float(state1.error) == pytest.approx(np.linalg.norm(state.grad), rel=1e-15)


def test_linesearch_instance_is_used():
    vg, x0, args = R.PROBLEMS["logreg"]
    ls = ZoomLineSearch(vg, value_and_grad=True, c2=0.5)
    solver = LBFGS(fun=vg, value_and_grad=True, linesearch=ls, tol=1e-7)
    p, state = solver.run(x0(), *args)
    assert solver.linesearch_solver.c2 == 0.5 and float(state.error) <= 1e-7


@pytest.mark.parametrize("cls", sorted(SOLVERS))
@pytest.mark.parametrize("source", ["grad", "value_and_grad_callable", "finite_differences"])
def test_gradient_sources(cls, source):
    vg, x0, args = R.PROBLEMS["logreg"]

    def value(w, *a):
        return vg(w, *a)[0]

    def grad(w, *a):
        return vg(w, *a)[1]
    kw = dict(tol=1e-6, maxiter=200)
    solver = {"grad": lambda: SOLVERS[cls](value, grad=grad, **kw),
              "value_and_grad_callable": lambda: SOLVERS[cls](value, value_and_grad=vg, **kw),
              "finite_differences": lambda: SOLVERS[cls](value, **kw)}[source]()
    w, state = solver.run(x0(), *args)
    ref, _ = SOLVERS[cls](vg, value_and_grad=True, **kw).run(x0(), *args)
    np.testing.assert_allclose(w, ref, atol=1e-5 if source == "finite_differences" else 1e-12)


@pytest.mark.parametrize("cls", sorted(SOLVERS))
def test_has_aux_keeps_the_aux_of_the_final_params(cls):
    D = sp.data()

    def fun(w, lam, X, y):
        v, g = sp.ridge_np(w, lam, X, y)
        return (v, {"w0": w[0]}), g
    w, state = SOLVERS[cls](fun, value_and_grad=True, has_aux=True, tol=1e-8).run(
        np.zeros(D["d"]), 0.1, D["X"], D["y"])
    assert state.aux["w0"] == w[0]


@pytest.mark.parametrize("cls", sorted(SOLVERS))
def test_float32_stays_float32(cls):
    vg, x0, args = R.PROBLEMS["logreg_f32"]
    w, state = SOLVERS[cls](vg, value_and_grad=True, maxiter=10).run(x0(), *args)
    assert w.dtype == np.float32
    assert state.error.dtype == np.float32
    if cls == "LBFGS":
        assert state.s_history.dtype == np.float32 and state.rho_history.dtype == np.float32


def test_stop_if_linesearch_fails():
    name = "lbfgs_rosen10_maxls2_stop"
    _, state = _run(name)
    assert bool(state.failed_linesearch) and int(state.iter_num) == 1
    _, state = _run(name, maxiter=5)
    assert int(state.iter_num) == 1
    cls, kw, prob = R.CASES[name]
    vg, x0, _ = R.PROBLEMS[prob]
    kw = dict(kw, stop_if_linesearch_fails=False, maxiter=5)
    assert int(LBFGS(vg, value_and_grad=True, **kw).run(x0()).state.iter_num) == 5


def test_maxiter_zero_returns_the_init():
    vg, x0, _ = R.PROBLEMS["rosen2"]
    p0 = x0()
    for cls in SOLVERS.values():
        p, state = cls(vg, value_and_grad=True, maxiter=0).run(p0)
        assert p is p0 and int(state.iter_num) == 0


def test_verbose_prints(capsys):
    vg, x0, _ = R.PROBLEMS["rosen2"]
    LBFGS(vg, value_and_grad=True, maxiter=2, verbose=True).run(x0())
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("INFO: npopt.LBFGS: Iter: 1 Gradient Norm")
    LBFGS(vg, value_and_grad=True, maxiter=1, verbose=2).run(x0())
    assert "INFO: npopt.ZoomLineSearch: Iter: 1 " in capsys.readouterr().out


def test_nonfinite_value_stops_and_warns():
    def vg(x):
        v = np.sum(x ** 2)
        return (np.nan if np.any(x < 0.5) else v), 2 * x
    with pytest.warns(RuntimeWarning, match="non-finite"):
        LBFGS(vg, value_and_grad=True, stepsize=0.9, maxiter=50).run(np.ones(3))


@pytest.mark.parametrize("cls, kw, match", [
    ("LBFGS", dict(history_size=-1), "history_size: expected a non-negative integer"),
    ("LBFGS", dict(linesearch="wolfe"), "linesearch: expected one of"),
    ("LBFGS", dict(linesearch_init="double"), "linesearch_init: expected one of"),
    ("LBFGS", dict(maxls=-2), "maxls: expected a non-negative integer"),
    ("LBFGS", dict(max_stepsize=0.0), "max_stepsize: expected a finite number > 0"),
    ("BFGS", dict(stepsize=float("nan")), "stepsize: expected a finite number"),
    ("BFGS", dict(tol=-1.0), "tol: expected a finite number >= 0"),
    ("NonlinearCG", dict(method="dai-yuan"), "method: expected one of"),
    ("NonlinearCG", dict(maxiter=1.5), "maxiter: expected a non-negative integer"),
])
def test_bad_knobs(cls, kw, match):
    with pytest.raises(ValueError, match=match):
        SOLVERS[cls](lambda x: np.sum(x ** 2), **kw)


def test_deprecated_knobs_warn():
    for cls in SOLVERS.values():
        with pytest.warns(DeprecationWarning, match="condition: deprecated"):
            cls(lambda x: np.sum(x ** 2), condition="armijo")
        with pytest.warns(DeprecationWarning, match="decrease_factor: deprecated"):
            cls(lambda x: np.sum(x ** 2), decrease_factor=0.5)


def test_bad_fun_outputs():
    for cls in SOLVERS.values():
        with pytest.raises(ValueError, match="grad: leaf 0 has shape"):
            cls(lambda w: (np.sum(w), np.ones(4)), value_and_grad=True).run(np.ones(3))
        with pytest.raises(ValueError, match="fun: expected a scalar value"):
            cls(lambda w: (w, w), value_and_grad=True).run(np.ones(3))
    with pytest.raises(ValueError, match="params: expected leaves of a single dtype"):
        LBFGS(lambda p: (0.0, p), value_and_grad=True).run(
            {"a": np.ones(2), "b": np.ones(2, np.float32)})


# ---- kernels ----------------------------------------------------------------

def test_parallel_kernels_equal_the_serial_ones(monkeypatch):
    """Fixed-chunk reductions: the threaded loops give the serial bits."""
    rng = np.random.default_rng(0)
    n, m = 3 * _jit.CHUNK + 17, 4
    r0 = rng.standard_normal(n)
    S = rng.standard_normal((m, n))
    Y = S + 0.1 * rng.standard_normal((m, n))
    rho = 1 / np.einsum("ij,ij->i", S, Y)
    out = {}
    for thr in (1 << 40, 1):
        monkeypatch.setattr(_jit, "PARALLEL_THRESHOLD", thr)
        r = r0.copy()
        lbfgs_mod._two_loop(r, S, Y, rho, 0.7, 1)
        part = np.empty((4, 2))
        s_row, y_row = np.empty(n), np.empty(n)
        K.history_update_cpu(r0 + 1, r0, 2 * r0, r0, s_row, y_row, 0.0, part)
        out[thr] = (r, part.copy(), s_row, y_row)
    for a, b in zip(out[1 << 40], out[1]):
        np.testing.assert_array_equal(a, b)


def test_dot_and_axpy_kernels_against_numpy():
    rng = np.random.default_rng(1)
    for dtype in (np.float32, np.float64, np.complex128):
        x = rng.standard_normal(5000).astype(dtype)
        y = rng.standard_normal(5000).astype(dtype)
        if np.iscomplexobj(x):
            x = x + 1j * rng.standard_normal(5000)
        real = np.finfo(dtype).dtype
        part = np.empty(2, real)
        K.dot_chunks_cpu(x, y, real.type(0), part)
        want = np.vdot(x, y).real
        assert K.combine(part, real.type(0)) == pytest.approx(want, rel=1e-4 if dtype == np.float32
                                                              else 1e-12)
        out = np.empty_like(x)
        K.axpy_cpu(x, real.type(0.5), y, out)
        np.testing.assert_allclose(out, x + real.type(0.5) * y, rtol=1e-6)


cuda = pytest.importorskip("numba.cuda", reason="numba-cuda not installed")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cuda_kernels_match_the_cpu(dtype):
    rng = np.random.default_rng(2)
    n = 2 * _jit.CHUNK + 5
    x = rng.standard_normal(n).astype(dtype)
    y = rng.standard_normal(n).astype(dtype)
    a = dtype(0.37)
    want = np.empty_like(x)
    K.axpy_cpu(x, a, y, want)
    dx, dy, dout = cuda.to_device(x), cuda.to_device(y), cuda.device_array_like(x)
    K.axpy_cuda(n, dx, a, dy, dout)
    np.testing.assert_allclose(dout.copy_to_host(), want, rtol=4 * np.finfo(dtype).eps)
    K.scale_cuda(n, dx, a, dout)
    np.testing.assert_allclose(dout.copy_to_host(), a * x, rtol=np.finfo(dtype).eps)
    part = np.empty(3, dtype)
    K.dot_chunks_cpu(x, y, dtype(0), part)
    dpart = cuda.device_array(3, dtype)
    K.dot_chunks_cuda(n, dx, dy, dtype(0), dpart)
    np.testing.assert_allclose(dpart.copy_to_host(), part, rtol=1e-5 if dtype == np.float32
                               else 1e-13)


def test_cuda_two_loop_matches_the_cpu():
    rng = np.random.default_rng(3)
    n, m = _jit.CHUNK + 33, 3
    S = rng.standard_normal((m, n))
    Y = S + 0.2 * rng.standard_normal((m, n))
    rho = 1 / np.einsum("ij,ij->i", S, Y)
    v = rng.standard_normal(n)
    want = lbfgs_mod._two_loop(v.copy(), S, Y, rho, 0.8, 2)
    dv = cuda.to_device(v)
    lbfgs_mod._two_loop(dv, cuda.to_device(S), cuda.to_device(Y), rho, 0.8, 2)
    np.testing.assert_allclose(dv.copy_to_host(), want, rtol=1e-12, atol=1e-12)


# ---- LBFGSB ------------------------------------------------------------------

from npopt.solvers.lbfgsb import LBFGSB, LbfgsbState  # noqa: E402


@pytest.mark.parametrize("name", sorted(R.LBFGSB_CASES))
def test_lbfgsb_matches_jaxopt(name):
    kw, prob, _ = R.LBFGSB_CASES[name]
    vg, x0, args = R.PROBLEMS[prob]
    bounds = R.lbfgsb_bounds(name)
    fun, calls = _counting(vg)
    params, state = LBFGSB(fun=fun, value_and_grad=True, **kw).run(x0(), bounds, *args)
    ref = META[name]
    check_evaluation_counts(state, ref, calls, kw.get("linesearch", "zoom"),
                            bool(kw.get("stepsize", 0)))
    assert int(state.num_updates) == ref["num_updates"]
    assert bool(state.failed_linesearch) == ref["failed_linesearch"]
    for i, leaf in enumerate(T.tree_leaves(params)):
        want = Z[f"{name}/params_{i}"]
        assert np.max(np.abs(leaf - want)) / np.max(np.abs(want)) <= 1e-8
    f0 = abs(float(vg(x0(), *args)[0]))
    assert abs(float(state.value) - ref["value"]) <= 1e-8 * max(abs(ref["value"]), 1e-12 * f0)
    assert float(state.theta) == pytest.approx(ref["theta"], rel=1e-6)
    assert float(state.error) == pytest.approx(ref["error"], rel=1e-6, abs=1e-8)
    # first iterations, one update at a time
    solver = LBFGSB(fun=vg, value_and_grad=True, **kw)
    p = x0()
    st_ = solver.init_state(p, bounds, *args)
    for k, (v, s) in enumerate(zip(ref["values"], ref["stepsizes"])):
        p, st_ = solver.update(p, st_, bounds, *args)
        assert float(st_.stepsize) == pytest.approx(s, rel=1e-10), k
        assert float(st_.value) == pytest.approx(v, rel=1e-10, abs=1e-14), k


def _box_problem(seed, n):
    vg, x = _convex(seed, n)
    rng = np.random.default_rng(seed + 1)
    lower = -rng.random(n) * 0.5
    upper = rng.random(n) * 0.5
    lower[rng.random(n) < 0.2] = -np.inf
    upper[rng.random(n) < 0.2] = np.inf
    return vg, np.clip(x, lower, upper), lower, upper


@settings(max_examples=15)
@given(st.integers(0, 2 ** 31 - 1), st.integers(1, 12),
       st.sampled_from(["zoom", "backtracking", "hager-zhang"]))
def test_lbfgsb_iterates_stay_in_the_box_and_reach_the_kkt_point(seed, n, ls):
    vg, x, lower, upper = _box_problem(seed, n)
    solver = LBFGSB(vg, value_and_grad=True, linesearch=ls, tol=1e-9, maxiter=200)
    state = solver.init_state(x, (lower, upper))
    for _ in range(200):
        x, state = solver.update(x, state, (lower, upper))
        if ls != "hager-zhang":         # HZ ignores max_stepsize: steps > 1 leave the box
            assert np.all(x >= lower - 1e-12) and np.all(x <= upper + 1e-12)
        if state.error <= solver.tol:
            break
    # KKT: the projected gradient step is zero; compare with scipy's L-BFGS-B
    scipy_opt = pytest.importorskip("scipy.optimize")
    ref = scipy_opt.minimize(vg, np.clip(np.zeros(n), lower, upper), jac=True,
                             method="L-BFGS-B", bounds=list(zip(lower, upper)),
                             options=dict(ftol=0, gtol=1e-12, maxiter=1000))
    if state.error <= solver.tol:
        # a convex problem: no lower value than the minimum's. scipy's L-BFGS-B
        # can stop short of it (ftol=0: "relative reduction of f <= factr*epsmch"
        # when a step stalls; seed=478477, n=2: at a point whose projected
        # gradient is 1.1), so its point is compared only where it is a KKT point
        assert vg(x)[0] <= ref.fun + 1e-9 * (1 + abs(ref.fun))
        g_ref = vg(ref.x)[1]
        if np.max(np.abs(ref.x - np.clip(ref.x - g_ref, lower, upper))) <= 1e-6:
            np.testing.assert_allclose(x, ref.x, atol=1e-5)


def test_lbfgsb_without_bounds_is_unconstrained():
    vg, x0, args = R.PROBLEMS["logreg"]
    p, state = LBFGSB(vg, value_and_grad=True, tol=1e-8, maxiter=100).run(x0(), None, *args)
    q, _ = LBFGS(vg, value_and_grad=True, tol=1e-8).run(x0(), *args)
    np.testing.assert_allclose(p, q, atol=1e-7)
    assert np.linalg.norm(LBFGSB(vg, value_and_grad=True).optimality_fun(p, None, *args)) < 1e-7


def test_lbfgsb_state_and_defaults():
    assert LbfgsbState._fields == ("iter_num", "value", "grad", "stepsize", "error",
                                   "s_history", "y_history", "theta", "num_updates", "aux",
                                   "failed_linesearch", "num_fun_eval", "num_grad_eval",
                                   "num_linesearch_iter")
    s = LBFGSB(lambda x: np.sum(x ** 2))
    assert (s.maxiter, s.tol, s.theta, s.history_size, s.use_gamma, s.linesearch) == \
        (50, 1e-3, 1.0, 10, True, "zoom")


@pytest.mark.parametrize("bounds, match", [
    ((np.ones(3), np.zeros(3)), "bounds: expected lower <= upper"),
    ((np.zeros(2), np.ones(2)), "bounds: lower leaves must broadcast"),
    ([np.zeros(3)], "bounds: expected None or a pair"),
    (({"a": 0.0}, 1.0), "bounds: expected lower to be a scalar or a tree"),
])
def test_lbfgsb_bad_bounds(bounds, match):
    with pytest.raises(ValueError, match=match):
        LBFGSB(lambda x: (np.sum(x ** 2), 2 * x), value_and_grad=True).run(np.ones(3), bounds)


def test_lbfgsb_bad_knobs():
    with pytest.raises(ValueError, match="history_size: expected a positive integer"):
        LBFGSB(lambda x: np.sum(x ** 2), history_size=0)
    with pytest.raises(ValueError, match="theta: expected a finite number > 0"):
        LBFGSB(lambda x: np.sum(x ** 2), theta=-1.0)


# ---- complex params (jaxopt's convention, Sorber et al. 2012) ----------------

@pytest.mark.parametrize("cls", ["LBFGS", "NonlinearCG"])
def test_complex_params_follow_the_real_problem(cls):
    """For real f(z), JAX's (and jaxopt's) gradient is ``df/dx - i df/dy`` and
    the direction ``-conj(g)``: the complex run is the run on (x, y) in R^2n."""
    a = np.array([1 + 2j, -0.5 + 0.3j, 0.7 - 1j])

    def vg_c(z):
        v = np.sum(np.abs(z - a) ** 2) + 0.3 * np.sum((np.abs(z) ** 2) ** 2)   # no np.power
        return v, np.conj(2 * (z - a) + 1.2 * np.abs(z) ** 2 * z)

    def vg_r(p):
        z = p[:3] + 1j * p[3:]
        v, g = vg_c(z)
        return v, np.concatenate([g.real, -g.imag])
    z0 = np.array([0.1 + 0.1j, 2 - 1j, -1 + 0.5j])
    zc, sc = SOLVERS[cls](vg_c, value_and_grad=True, tol=1e-8).run(z0)
    xr, sr = SOLVERS[cls](vg_r, value_and_grad=True, tol=1e-8).run(
        np.concatenate([z0.real, z0.imag]))
    assert int(sc.iter_num) == int(sr.iter_num) and int(sc.num_fun_eval) == int(sr.num_fun_eval)
    np.testing.assert_allclose(zc, xr[:3] + 1j * xr[3:], rtol=0, atol=1e-12)
    assert zc.dtype == np.complex128 and sc.error.dtype == np.float64
