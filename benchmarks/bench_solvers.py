#!/usr/bin/env python
"""First-order solvers: npopt against jaxopt (jit, x64) and scipy, in one run.

    python benchmarks/bench_solvers.py            # about a minute
    python benchmarks/bench_solvers.py --quick    # smaller problems

For each problem (float64, fixed seed) and each implementation it reports
the time to reach the solver's tolerance, the iterations, the final
objective and the distance to a high-accuracy solution; then the
per-iteration overhead of each solver on a tiny problem (d = 5), where the
user's function costs almost nothing and the solver's own bookkeeping is
what is measured.

Problems:
  ridge     0.5/n ||Xw - y||^2 + 0.5 lam ||w||^2      GradientDescent (FISTA + line search)
  logreg    mean log(1 + exp(-y x.w)) + 0.5 lam ||w||^2 GradientDescent
  lasso     0.5/n ||Xw - y||^2 + lam ||w||_1           ProximalGradient (prox_lasso)

scipy's L-BFGS-B is a different algorithm (quasi-Newton): it is shown for
scale on the smooth problems, not as a like-for-like comparison. jaxopt's
time excludes its compilation, which is reported separately.
"""
import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def make_data(n, d, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) / np.sqrt(d)
    w = rng.standard_normal(d) * (rng.random(d) < 0.3)
    y = X @ w + 0.1 * rng.standard_normal(n)
    labels = np.where(X @ w + 0.3 * rng.standard_normal(n) > 0, 1.0, -1.0)
    return X, y, labels


# ---- objectives: NumPy value_and_grad and jax value ----------------------

def np_funs(lam):
    def ridge(w, X, y):
        r = X @ w - y
        return 0.5 * (r @ r) / y.size + 0.5 * lam * (w @ w), X.T @ r / y.size + lam * w

    def logreg(w, X, lab):
        z = lab * (X @ w)
        v = np.mean(np.logaddexp(0.0, -z)) + 0.5 * lam * (w @ w)
        s = -lab * np.exp(-z - np.logaddexp(0.0, -z))
        return v, X.T @ s / lab.size + lam * w

    def ls(w, X, y):
        r = X @ w - y
        return 0.5 * (r @ r) / y.size, X.T @ r / y.size
    return dict(ridge=ridge, logreg=logreg, lasso=ls)


def jnp_funs(lam):
    import jax.numpy as jnp

    def ridge(w, X, y):
        r = X @ w - y
        return 0.5 * (r @ r) / y.size + 0.5 * lam * (w @ w)

    def logreg(w, X, lab):
        return jnp.mean(jnp.logaddexp(0.0, -lab * (X @ w))) + 0.5 * lam * (w @ w)

    def ls(w, X, y):
        r = X @ w - y
        return 0.5 * (r @ r) / y.size
    return dict(ridge=ridge, logreg=logreg, lasso=ls)


def best_of(f, repeats):
    ts, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = f()
        ts.append(time.perf_counter() - t)
    return min(ts), out


def run_npopt(name, X, t, lam, tol, maxiter, repeats):
    import npopt
    f = np_funs(lam)[name]
    if name == "lasso":
        from npopt.prox import prox_lasso
        solver = npopt.ProximalGradient(fun=f, prox=prox_lasso, value_and_grad=True, tol=tol,
                                        maxiter=maxiter)
        call = lambda: solver.run(np.zeros(X.shape[1]), lam, X, t)  # noqa: E731
    else:
        solver = npopt.GradientDescent(fun=f, value_and_grad=True, tol=tol, maxiter=maxiter)
        call = lambda: solver.run(np.zeros(X.shape[1]), X, t)  # noqa: E731
    sec, (w, state) = best_of(call, repeats)
    return sec, np.asarray(w), int(state.iter_num), None


def run_jaxopt(name, X, t, lam, tol, maxiter, repeats):
    try:
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        import jaxopt
    except Exception as e:  # pragma: no cover
        return None, None, None, f"skipped ({type(e).__name__})"
    f = jnp_funs(lam)[name]
    Xj, tj = jnp.asarray(X), jnp.asarray(t)
    if name == "lasso":
        solver = jaxopt.ProximalGradient(fun=f, prox=jaxopt.prox.prox_lasso, tol=tol,
                                         maxiter=maxiter)
        run = jax.jit(lambda w0: solver.run(w0, lam, Xj, tj))
    else:
        solver = jaxopt.GradientDescent(fun=f, tol=tol, maxiter=maxiter)
        run = jax.jit(lambda w0: solver.run(w0, Xj, tj))
    w0 = jnp.zeros(X.shape[1])
    t0 = time.perf_counter()
    jax.block_until_ready(run(w0))
    compile_s = time.perf_counter() - t0
    sec, (w, state) = best_of(lambda: jax.block_until_ready(run(w0)), repeats)
    return sec, np.asarray(w), int(state.iter_num), f"compile {compile_s:.2f} s"


def run_scipy(name, X, t, lam, tol, maxiter, repeats):
    if name == "lasso":
        return None, None, None, "n/a (non-smooth)"
    from scipy.optimize import minimize
    f = np_funs(lam)[name]
    call = lambda: minimize(f, np.zeros(X.shape[1]), args=(X, t), jac=True,  # noqa: E731
                            method="L-BFGS-B", options=dict(gtol=tol, maxiter=maxiter))
    sec, res = best_of(call, repeats)
    return sec, res.x, int(res.nit), "L-BFGS-B (quasi-Newton)"


def reference_solution(name, X, t, lam):
    from scipy.optimize import minimize
    f = np_funs(lam)[name]
    if name == "lasso":   # long plain ISTA with the exact Lipschitz step
        L = np.linalg.norm(X, 2) ** 2 / t.size
        w = np.zeros(X.shape[1])
        for _ in range(20000):
            z = w - f(w, X, t)[1] / L
            w = np.sign(z) * np.maximum(np.abs(z) - lam / L, 0)
        return w
    res = minimize(f, np.zeros(X.shape[1]), args=(X, t), jac=True, method="L-BFGS-B",
                   options=dict(gtol=1e-12, ftol=1e-15, maxiter=10000))
    return res.x


def objective(name, w, X, t, lam):
    v = np_funs(lam)[name](w, X, t)[0]
    return v + lam * np.sum(np.abs(w)) if name == "lasso" else v


def overhead(repeats):
    """Time per iteration on d = 5 with a trivial quadratic."""
    import npopt
    rows = []
    A = np.diag(np.arange(1.0, 6.0))

    def f(w):
        return 0.5 * w @ A @ w, A @ w
    for label, solver in [
            ("GradientDescent (line search)", npopt.GradientDescent(f, value_and_grad=True,
                                                                    tol=0.0, maxiter=200)),
            ("GradientDescent (fixed step)", npopt.GradientDescent(f, value_and_grad=True,
                                                                   stepsize=0.1, tol=0.0,
                                                                   maxiter=200)),
            ("PolyakSGD", npopt.PolyakSGD(f, value_and_grad=True, tol=0.0, maxiter=200))]:
        sec, (w, state) = best_of(lambda: solver.run(np.ones(5)), repeats)
        rows.append(("npopt " + label, sec / int(state.iter_num)))
    try:
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        import jaxopt
        Aj = jnp.asarray(A)
        fj = lambda w: 0.5 * w @ Aj @ w  # noqa: E731
        gd = jaxopt.GradientDescent(fj, tol=0.0, maxiter=200)
        run = jax.jit(lambda w0: gd.run(w0))
        jax.block_until_ready(run(jnp.ones(5)))
        sec, _ = best_of(lambda: jax.block_until_ready(run(jnp.ones(5))), repeats)
        rows.append(("jaxopt GradientDescent (line search), jitted run", sec / 200))
        upd = jax.jit(gd.update)
        w, s = jnp.ones(5), gd.init_state(jnp.ones(5))
        jax.block_until_ready(upd(w, s))

        def loop():
            ww, ss = w, s
            for _ in range(200):
                ww, ss = upd(ww, ss)
            return jax.block_until_ready(ww)
        sec, _ = best_of(loop, repeats)
        rows.append(("jaxopt GradientDescent, Python loop over jitted update", sec / 200))
    except Exception as e:  # pragma: no cover
        rows.append((f"jaxopt skipped ({type(e).__name__})", float("nan")))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=None)
    args = ap.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 5)
    sizes = [(2000, 50)] if args.quick else [(2000, 50), (20000, 200)]
    lam = {"ridge": 0.1, "logreg": 0.01, "lasso": 0.01}
    tol = 1e-6
    print(f"float64, tol {tol:g} (each solver's own criterion), best of {repeats}")
    print(f"{'problem':<22}{'impl':<9}{'time':>11}{'iters':>7}{'objective - best':>18}"
          f"{'|w - w*|/|w*|':>15}  note")
    for n, d in sizes:
        X, y, labels = make_data(n, d)
        for name in ("ridge", "logreg", "lasso"):
            t = labels if name == "logreg" else y
            w_star = reference_solution(name, X, t, lam[name])
            f_star = objective(name, w_star, X, t, lam[name])
            rows = {}
            for impl, fn in (("npopt", run_npopt), ("jaxopt", run_jaxopt), ("scipy", run_scipy)):
                sec, w, iters, note = fn(name, X, t, lam[name], tol, 5000, repeats)
                rows[impl] = sec
                label = f"{name} {n}x{d}"
                if sec is None:
                    print(f"{label:<22}{impl:<9}{'-':>11}{'-':>7}{'-':>18}{'-':>15}  {note}")
                    continue
                gap = objective(name, w, X, t, lam[name]) - f_star
                dist = np.linalg.norm(w - w_star) / max(np.linalg.norm(w_star), 1e-300)
                print(f"{label:<22}{impl:<9}{sec * 1e3:>9.2f}ms{iters:>7}{gap:>18.2e}{dist:>15.2e}"
                      f"  {note or ''}")
            if rows.get("jaxopt") and rows.get("npopt"):
                print(f"{'':<22}npopt/jaxopt time ratio: {rows['npopt'] / rows['jaxopt']:.2f}")
    print("\nper-iteration overhead, d = 5 (the function costs ~1 us):")
    for label, sec in overhead(repeats):
        print(f"  {label:<60}{sec * 1e6:>9.1f} us/iter")


if __name__ == "__main__":
    main()
