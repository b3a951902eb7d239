"""The quasi-Newton problems and cases, and the generator of their jaxopt 0.8.5
reference runs (tests/reference/data/jaxopt/quasi_newton.npz).

    python tests/reference/make_quasi_newton_reference.py      (~3.5 min on 2 cores)

The module imports without JAX: the tests read ``PROBLEMS``, ``CASES``,
``LBFGSB_CASES`` and ``LS_CASES`` from it. Only ``main`` needs jax + jaxopt.

How jaxopt sees the objective
-----------------------------
Every objective is written once in NumPy as ``(value, grad)``. jaxopt gets it
through ``jax.pure_callback`` with ``value_and_grad=True``, so both libraries
see the very same values and gradients (bit for bit, at bit-identical
params): any difference between them comes from the solver's own arithmetic
(XLA's dot products and fused multiply-adds vs NumPy/numba's), never from
autodiff vs a hand-written gradient. ``check_problems`` checks the NumPy
gradients against JAX's autodiff of the jax.numpy twins.

What is stored (x64, jitted ``run``)
------------------------------------
Per solver case: ``<case>/params_<i>`` (the final params' leaves, jax leaf
order, which is npopt's) and, in ``meta``, iter_num, value, error, stepsize,
num_fun_eval, num_grad_eval, num_linesearch_iter, failed_linesearch (LBFGS),
and ``values``/``stepsizes``: the first ``TRAJ`` iterations of a step-by-step
run (jitted ``update`` called from Python: the same arithmetic as ``run``'s
loop body).
LBFGSB cases (``LBFGSB_CASES``, bounds from ``lbfgsb_bounds``) store the
same plus num_updates and theta.
Per line-search case: ``<case>/params_<i>`` (the accepted point) and, in
``meta``, stepsize, value, iter_num, num_fun_eval, num_grad_eval, done,
failed, error.
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data", "jaxopt", "quasi_newton.npz")
TRAJ = 12

if HERE not in sys.path:
    sys.path.insert(0, HERE)
import fixed_order as fo  # noqa: E402
import solver_problems as sp  # noqa: E402


# ---- the problems in NumPy: (params, *args) -> (value, grad) ----------------

def rosenbrock_np(x):
    """sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2 (minimum 0 at x = 1)."""
    a, b = x[:-1], x[1:]
    r = b - a * a
    value = np.sum(100.0 * r * r + (1.0 - a) ** 2)
    g = np.zeros_like(x)
    g[:-1] = -400.0 * a * r - 2.0 * (1.0 - a)
    g[1:] += 200.0 * r
    return value, g


def tree_rosenbrock_np(params):
    """Rosenbrock of concat(params['u'], params['v'].ravel()): a pytree."""
    u, v = params["u"], params["v"]
    x = np.concatenate([u.ravel(), v.ravel()])
    value, g = rosenbrock_np(x)
    return value, {"u": g[:u.size].reshape(u.shape), "v": g[u.size:].reshape(v.shape)}


def _rosen_start(n):
    x = np.ones(n)
    x[0::2] = -1.2
    return x


def in_dtype(vg, dtype):
    """vg with its value and gradient cast to ``dtype`` (float32 problems on
    float64 data)."""
    def f(params, *args):
        v, g = vg(params, *args)
        cast = (lambda x: np.asarray(x, dtype))
        return cast(v), (cast(g) if isinstance(g, np.ndarray) else
                         {k: cast(x) for k, x in g.items()})
    return f


D = sp.data()

# name -> (np value_and_grad, init params (a function: fresh arrays), args)
PROBLEMS = {
    "rosen2": (rosenbrock_np, lambda: np.array([-1.2, 1.0]), ()),
    "rosen10": (rosenbrock_np, lambda: _rosen_start(10), ()),
    "logreg": (sp.logreg_np, lambda: np.zeros(D["d"]), sp.args_of("logreg", D)),
    "tree_rosen": (tree_rosenbrock_np,
                   lambda: {"u": np.array([-1.2, 1.0]),
                            "v": np.array([[-1.2, 1.0, -1.2], [1.0, -1.2, 1.0]])}, ()),
    "tree_ls": (sp.tree_ls_np, lambda: sp.init_params("tree_ls", D), sp.args_of("tree_ls", D)),
    "logreg_f32": (in_dtype(sp.logreg_np, np.float32), lambda: np.zeros(D["d"], np.float32),
                   sp.args_of("logreg", D)),
    "rosen2_f32": (in_dtype(rosenbrock_np, np.float32),
                   lambda: np.array([-1.2, 1.0], np.float32), ()),
}


# ---- the solver cases --------------------------------------------------------
# name -> (solver class, kwargs, problem). tol is below jaxopt's default 1e-3
# so that the runs go to convergence; not so far below that the line search
# decides on differences at the rounding level of the value (see the tests
# for the cases where it does).
CASES = {
    # LBFGS
    "lbfgs_rosen2": ("LBFGS", dict(tol=1e-6), "rosen2"),
    "lbfgs_rosen10": ("LBFGS", dict(tol=1e-6), "rosen10"),
    "lbfgs_logreg": ("LBFGS", dict(tol=1e-7), "logreg"),
    "lbfgs_tree_rosen": ("LBFGS", dict(tol=1e-6), "tree_rosen"),
    "lbfgs_tree_ls": ("LBFGS", dict(tol=1e-7), "tree_ls"),
    "lbfgs_rosen10_backtracking": ("LBFGS", dict(tol=1e-6, linesearch="backtracking"),
                                   "rosen10"),
    "lbfgs_rosen10_hz": ("LBFGS", dict(tol=1e-6, linesearch="hager-zhang"), "rosen10"),
    "lbfgs_logreg_hz": ("LBFGS", dict(tol=1e-7, linesearch="hager-zhang"), "logreg"),
    "lbfgs_rosen10_hist3_nogamma": ("LBFGS", dict(tol=1e-6, history_size=3, use_gamma=False),
                                    "rosen10"),
    "lbfgs_rosen2_init_max": ("LBFGS", dict(tol=1e-6, linesearch_init="max"), "rosen2"),
    "lbfgs_rosen2_init_current_maxstep2": ("LBFGS", dict(tol=1e-6, linesearch_init="current",
                                                         max_stepsize=2.0), "rosen2"),
    "lbfgs_logreg_fixed_stepsize": ("LBFGS", dict(tol=1e-7, stepsize=0.5, maxiter=200),
                                    "logreg"),
    "lbfgs_logreg_hist0": ("LBFGS", dict(tol=1e-6, history_size=0), "logreg"),
    "lbfgs_rosen10_maxiter": ("LBFGS", dict(tol=1e-6, maxiter=7), "rosen10"),
    "lbfgs_rosen10_maxls2_stop": ("LBFGS", dict(tol=1e-6, maxls=2, stop_if_linesearch_fails=True),
                                  "rosen10"),
    "lbfgs_logreg_f32": ("LBFGS", dict(tol=1e-4), "logreg_f32"),
    "lbfgs_rosen2_f32": ("LBFGS", dict(), "rosen2_f32"),
    # BFGS
    "bfgs_rosen2": ("BFGS", dict(tol=1e-6), "rosen2"),
    "bfgs_rosen10": ("BFGS", dict(tol=1e-6), "rosen10"),
    "bfgs_logreg": ("BFGS", dict(tol=1e-7), "logreg"),
    "bfgs_tree_rosen": ("BFGS", dict(tol=1e-6), "tree_rosen"),
    # (on rosen10, backtracking fails twice in a row at iteration 12-13: the
    # tiny steps make the BFGS update amplify rounding by ~1e5, and the runs
    # end one iteration apart; rosen2 and logreg do not)
    "bfgs_rosen2_backtracking": ("BFGS", dict(tol=1e-6, linesearch="backtracking"), "rosen2"),
    "bfgs_logreg_backtracking": ("BFGS", dict(tol=1e-7, linesearch="backtracking"), "logreg"),
    "bfgs_rosen10_hz": ("BFGS", dict(tol=1e-6, linesearch="hager-zhang"), "rosen10"),
    "bfgs_logreg_fixed_stepsize": ("BFGS", dict(tol=1e-7, stepsize=0.8, maxiter=200),
                                   "logreg"),
    # NonlinearCG. On Rosenbrock it crawls along the valley (neither library
    # converges in 500 iterations) and the valley amplifies rounding
    # differences about tenfold every 5-10 iterations: the cases stop at a
    # maxiter where the two runs still agree to ~1e-10 (measured with
    # jaxopt step by step).
    "ncg_pr_rosen2": ("NonlinearCG", dict(tol=1e-6, maxiter=25), "rosen2"),
    "ncg_pr_rosen10": ("NonlinearCG", dict(tol=1e-6, maxiter=40), "rosen10"),
    "ncg_pr_logreg": ("NonlinearCG", dict(tol=1e-7), "logreg"),
    "ncg_fr_logreg": ("NonlinearCG", dict(tol=1e-7, method="fletcher-reeves"), "logreg"),
    "ncg_hs_logreg": ("NonlinearCG", dict(tol=1e-7, method="hestenes-stiefel"), "logreg"),
    "ncg_fr_rosen10": ("NonlinearCG", dict(tol=1e-6, method="fletcher-reeves", maxiter=40),
                       "rosen10"),
    "ncg_hs_rosen10": ("NonlinearCG", dict(tol=1e-6, method="hestenes-stiefel", maxiter=40),
                       "rosen10"),
    "ncg_pr_tree_rosen": ("NonlinearCG", dict(tol=1e-6, maxiter=30), "tree_rosen"),
    "ncg_pr_logreg_backtracking": ("NonlinearCG", dict(tol=1e-7, linesearch="backtracking"),
                                   "logreg"),
    "ncg_hs_logreg_hz": ("NonlinearCG", dict(tol=1e-7, method="hestenes-stiefel",
                                             linesearch="hager-zhang"), "logreg"),
    "ncg_pr_tree_ls": ("NonlinearCG", dict(tol=1e-7), "tree_ls"),
    "ncg_pr_logreg_f32": ("NonlinearCG", dict(tol=1e-4), "logreg_f32"),
    "bfgs_logreg_f32": ("BFGS", dict(tol=1e-4), "logreg_f32"),
}

# LBFGSB: name -> (kwargs, problem, bounds). bounds: None, or a Python
# literal evaluated with np, the problem's init params as ``x0`` and its
# size as ``n`` (a pair of pytrees shaped like the params).
LBFGSB_CASES = {
    "lbfgsb_rosen2_box": (dict(tol=1e-6, maxiter=200), "rosen2",
                          "(np.array([-2.0, -0.5]), np.array([0.8, 2.0]))"),
    # rosen10: L-BFGS-B needs 100-150 iterations, over which the two runs'
    # rounding differences grow steadily (x10 every ~6 iterations: the
    # compact matrix M is inverted at every step), to 1e-8 by iteration ~45;
    # the cases stop at 25 iterations (~1e-11).
    "lbfgsb_rosen10_box": (dict(tol=1e-6, maxiter=25), "rosen10",
                           "(np.full(n, -1.5), np.full(n, 0.9))"),
    "lbfgsb_rosen10_unbounded": (dict(tol=1e-6, maxiter=25), "rosen10", None),
    "lbfgsb_rosen2_unbounded": (dict(tol=1e-6, maxiter=25), "rosen2", None),   # (same)
    "lbfgsb_logreg_unbounded": (dict(tol=1e-7, maxiter=200), "logreg", None),
    "lbfgsb_logreg_box": (dict(tol=1e-7, maxiter=200), "logreg",
                          "(np.full(n, -0.3), np.full(n, 0.3))"),
    "lbfgsb_logreg_nonneg_hist3": (dict(tol=1e-7, maxiter=200, history_size=3), "logreg",
                                   "(np.zeros(n), np.full(n, np.inf))"),
    "lbfgsb_logreg_nogamma_theta": (dict(tol=1e-7, maxiter=200, use_gamma=False, theta=2.0),
                                    "logreg", "(np.full(n, -0.3), np.full(n, 0.3))"),
    "lbfgsb_tree_ls_box": (dict(tol=1e-7, maxiter=200), "tree_ls",
                           "({'b': np.asarray(-0.1), 'w': np.full(12, -0.2)}, "
                           "{'b': np.asarray(0.1), 'w': np.full(12, 0.25)})"),
    "lbfgsb_rosen2_box_backtracking": (dict(tol=1e-6, maxiter=200, linesearch="backtracking"),
                                       "rosen2", "(np.array([-2.0, -0.5]), np.array([0.8, 2.0]))"),
    "lbfgsb_logreg_box_fixed": (dict(tol=1e-7, maxiter=200, stepsize=1.0), "logreg",
                                "(np.full(n, -0.3), np.full(n, 0.3))"),
    "lbfgsb_logreg_box_defaults": (dict(), "logreg", "(np.full(n, -0.3), np.full(n, 0.3))"),
    "lbfgsb_logreg_scalar_bounds": (dict(tol=1e-7, maxiter=200), "logreg", "(-0.3, 0.3)"),
}


def lbfgsb_bounds(name):
    """The bounds of an LBFGSB case (NumPy pytrees or None)."""
    kw, prob, expr = LBFGSB_CASES[name]
    if expr is None:
        return None
    x0 = PROBLEMS[prob][1]()
    n = sum(np.size(v) for v in (x0.values() if isinstance(x0, dict) else [x0]))
    return eval(expr, {"np": np, "x0": x0, "n": n})


# ---- the line-search cases ---------------------------------------------------
# name -> (line search class, kwargs, problem, point, direction, init_stepsize,
#          pass value/grad). point: "x0" (the problem's start) or "mid" (x0 + 0.3
# (x* - x0) with x* = 1 for Rosenbrock); direction: "none" (the line search's
# default -grad), "neg_grad", "scaled" (-grad / ||grad||), "newton" (a
# quasi-Newton-like direction -grad / diag scale).
LS_CASES = {
    "bt_strong_wolfe_rosen10": ("BacktrackingLineSearch", {}, "rosen10", "x0", "none", 1.0,
                                True),
    "bt_armijo_rosen10": ("BacktrackingLineSearch", dict(condition="armijo"), "rosen10", "x0",
                          "neg_grad", 1.0, True),
    "bt_wolfe_logreg": ("BacktrackingLineSearch", dict(condition="wolfe"), "logreg", "x0",
                        "neg_grad", 5.0, False),
    "bt_goldstein_rosen2": ("BacktrackingLineSearch", dict(condition="goldstein", c1=0.2),
                            "rosen2", "mid", "scaled", 1.0, True),
    "bt_armijo_decrease_rosen2": ("BacktrackingLineSearch",
                                  dict(condition="armijo", decrease_factor=0.5, max_stepsize=0.5),
                                  "rosen2", "x0", "neg_grad", 1.0, False),
    "bt_fail_maxiter_rosen10": ("BacktrackingLineSearch", dict(maxiter=3), "rosen10", "x0",
                                "neg_grad", 1.0, True),
    "zoom_rosen10": ("ZoomLineSearch", {}, "rosen10", "x0", "neg_grad", 1.0, True),
    "zoom_rosen10_novalue": ("ZoomLineSearch", {}, "rosen10", "x0", "none", 1.0, False),
    "zoom_logreg_expand": ("ZoomLineSearch", {}, "logreg", "x0", "scaled", 0.01, True),
    "zoom_logreg_maxstep": ("ZoomLineSearch", dict(max_stepsize=1.0), "logreg", "x0",
                            "scaled", 0.01, True),
    "zoom_rosen2_mid": ("ZoomLineSearch", dict(c2=0.1), "rosen2", "mid", "scaled", 1.0, True),
    "zoom_tree_rosen": ("ZoomLineSearch", {}, "tree_rosen", "x0", "neg_grad", 1.0, True),
    "zoom_fail_maxiter_rosen10": ("ZoomLineSearch", dict(maxiter=4, c2=0.01), "rosen10", "x0",
                                  "neg_grad", 1.0, True),
    "hz_rosen10": ("HagerZhangLineSearch", {}, "rosen10", "x0", "neg_grad", 1.0, True),
    "hz_logreg": ("HagerZhangLineSearch", {}, "logreg", "x0", "scaled", 1.0, True),
    "hz_rosen2_mid": ("HagerZhangLineSearch", {}, "rosen2", "mid", "scaled", 1.0, False),
    "hz_tree_rosen": ("HagerZhangLineSearch", {}, "tree_rosen", "x0", "neg_grad", 1.0, True),
}


def ls_inputs(problem):
    """{point name: params} and {direction name: fn(grad) -> direction} (NumPy)."""
    vg, x0, args = PROBLEMS[problem]
    p0 = x0()
    from npopt import tree as T
    flat, unravel = T.ravel(p0)
    mid = unravel(flat + 0.3 * (np.ones_like(flat) - flat))
    points = {"x0": p0, "mid": mid}

    def direction(name, grad):
        g, _ = T.ravel(grad)
        if name == "none":
            return None
        if name == "neg_grad":
            return unravel(-g)
        if name == "scaled":
            return unravel(-g / fo.norm(g))        # not np.linalg.norm: BLAS
        raise KeyError(name)
    return vg, points, direction, args


# ---- jaxopt side -----------------------------------------------------------

def jax_value_and_grad(np_vg):
    """The NumPy (value, grad) as a JAX function (pure_callback)."""
    import jax

    def f(p, *args):
        dt = jax.tree_util.tree_leaves(p)[0].dtype
        shapes = (jax.ShapeDtypeStruct((), dt),
                  jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, dt), p))

        def cb(q, *a):
            q = jax.tree_util.tree_map(np.asarray, q)
            v, g = np_vg(q, *[np.asarray(x) for x in a])
            return (np.asarray(v, dt), jax.tree_util.tree_map(lambda x: np.asarray(x, dt), g))
        return jax.pure_callback(cb, shapes, p, *args)
    return f


def check_problems():
    """The NumPy gradients against JAX's autodiff of jax.numpy twins."""
    import jax
    import jax.numpy as jnp

    def rosen(x):
        a, b = x[:-1], x[1:]
        return jnp.sum(100.0 * (b - a * a) ** 2 + (1.0 - a) ** 2)

    twins = dict(rosen2=rosen, rosen10=rosen,
                 tree_rosen=lambda p: rosen(jnp.concatenate([p["u"].ravel(), p["v"].ravel()])),
                 logreg=sp.jnp_funs()["logreg"], tree_ls=sp.jnp_funs()["tree_ls"])
    for name, (vg, x0, args) in PROBLEMS.items():
        if name.endswith("_f32"):
            continue
        p = x0()
        v, g = vg(p, *args)
        jv, jg = jax.value_and_grad(twins[name])(jax.tree_util.tree_map(jnp.asarray, p), *args)
        assert abs(v - float(jv)) <= 1e-12 * max(1.0, abs(float(jv))), name
        for a, b in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(jg)):
            assert np.max(np.abs(a - np.asarray(b))) <= 1e-12 * max(1.0, np.max(np.abs(b))), name


def main():
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import jaxopt
    from importlib.metadata import version as _version

    check_problems()
    arrays, meta, ls_meta = {}, {}, {}
    tm = jax.tree_util.tree_map
    for name, (cls, kw, prob) in CASES.items():
        np_vg, x0, args = PROBLEMS[prob]
        fun = jax_value_and_grad(np_vg)
        solver = getattr(jaxopt, cls)(fun=fun, value_and_grad=True, **kw)
        p0 = tm(jnp.asarray, x0())
        jargs = tuple(jnp.asarray(a) for a in args)
        sol, state = solver.run(p0, *jargs)
        for i, leaf in enumerate(jax.tree_util.tree_leaves(sol)):
            arrays[f"{name}/params_{i}"] = np.asarray(leaf)
        m = dict(iter_num=int(state.iter_num), value=float(state.value),
                 error=float(state.error), stepsize=float(state.stepsize),
                 num_fun_eval=int(state.num_fun_eval), num_grad_eval=int(state.num_grad_eval),
                 num_linesearch_iter=int(state.num_linesearch_iter))
        if hasattr(state, "failed_linesearch"):
            m["failed_linesearch"] = bool(state.failed_linesearch)
        # the first iterations, one jitted update at a time
        upd = jax.jit(solver.update)
        st = solver.init_state(p0, *jargs)
        p, values, steps = p0, [], []
        for _ in range(min(TRAJ, m["iter_num"])):
            p, st = upd(p, st, *jargs)
            values.append(float(st.value))
            steps.append(float(st.stepsize))
        m["values"], m["stepsizes"] = values, steps
        meta[name] = m
        print(f"{name:36s} iters {m['iter_num']:4d}  value {m['value']:.6e}  "
              f"error {m['error']:.3e}  fev {m['num_fun_eval']:4d}  gev {m['num_grad_eval']:4d}  "
              f"lsit {m['num_linesearch_iter']:4d}")
    for name, (kw, prob, _) in LBFGSB_CASES.items():
        np_vg, x0, args = PROBLEMS[prob]
        solver = jaxopt.LBFGSB(fun=jax_value_and_grad(np_vg), value_and_grad=True, **kw)
        bounds = lbfgsb_bounds(name)
        jb = None if bounds is None else tm(jnp.asarray, bounds)
        p0 = tm(jnp.asarray, x0())
        jargs = tuple(jnp.asarray(a) for a in args)
        sol, state = solver.run(p0, jb, *jargs)
        for i, leaf in enumerate(jax.tree_util.tree_leaves(sol)):
            arrays[f"{name}/params_{i}"] = np.asarray(leaf)
        m = dict(iter_num=int(state.iter_num), value=float(state.value),
                 error=float(state.error), stepsize=float(state.stepsize),
                 num_fun_eval=int(state.num_fun_eval), num_grad_eval=int(state.num_grad_eval),
                 num_linesearch_iter=int(state.num_linesearch_iter),
                 failed_linesearch=bool(state.failed_linesearch),
                 num_updates=int(state.num_updates), theta=float(state.theta))
        upd = jax.jit(solver.update)
        st = solver.init_state(p0, jb, *jargs)
        p, values, steps = p0, [], []
        for _ in range(min(TRAJ, m["iter_num"])):
            p, st = upd(p, st, jb, *jargs)
            values.append(float(st.value))
            steps.append(float(st.stepsize))
        m["values"], m["stepsizes"] = values, steps
        meta[name] = m
        print(f"{name:36s} iters {m['iter_num']:4d}  value {m['value']:.6e}  "
              f"error {m['error']:.3e}  fev {m['num_fun_eval']:4d}  updates {m['num_updates']}")
    for name, (cls, kw, prob, point, dname, s0, pass_vg) in LS_CASES.items():
        np_vg, points, direction, args = ls_inputs(prob)
        fun = jax_value_and_grad(np_vg)
        p = points[point]
        v, g = np_vg(p, *args)
        d = direction(dname, g)
        ls = getattr(jaxopt, cls)(fun=fun, value_and_grad=True, **kw)
        jp = tm(jnp.asarray, p)
        jd = None if d is None else tm(jnp.asarray, d)
        jargs = [jnp.asarray(a) for a in args]
        if pass_vg:
            step, state = jax.jit(lambda p_, v_, g_, d_: ls.run(
                s0, p_, v_, g_, d_, fun_args=jargs))(jp, jnp.asarray(v), tm(jnp.asarray, g), jd)
        else:
            step, state = jax.jit(lambda p_, d_: ls.run(s0, p_, None, None, d_,
                                                         fun_args=jargs))(jp, jd)
        for i, leaf in enumerate(jax.tree_util.tree_leaves(state.params)):
            arrays[f"{name}/params_{i}"] = np.asarray(leaf)
        m = dict(stepsize=float(step), value=float(state.value), iter_num=int(state.iter_num),
                 num_fun_eval=int(state.num_fun_eval), num_grad_eval=int(state.num_grad_eval),
                 done=bool(state.done), failed=bool(state.failed), error=float(state.error))
        ls_meta[name] = m
        print(f"{name:36s} step {m['stepsize']:.6g}  iters {m['iter_num']:3d}  "
              f"fev {m['num_fun_eval']:3d}  gev {m['num_grad_eval']:3d}  done {m['done']}  "
              f"failed {m['failed']}  error {m['error']:.3e}")
    arrays["meta"] = np.array(json.dumps(dict(
        cases=meta, linesearch=ls_meta, x64=True,
        versions=dict(jax=jax.__version__, jaxopt=_version("jaxopt")))))
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
    main()
