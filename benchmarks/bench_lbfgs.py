#!/usr/bin/env python
"""L-BFGS on L2-regularised logistic regression: npopt.LBFGS against scipy's
L-BFGS-B and jaxopt's LBFGS (jitted, x64), in one run.

    python benchmarks/bench_lbfgs.py            # 10,000 x 100 and 50,000 x 500
    python benchmarks/bench_lbfgs.py --quick    # 10,000 x 100 only

Each solver stops at gradient norm <= 1e-6 (its own criterion: npopt and
jaxopt on ||grad||, scipy on the projected gradient's max norm, gtol) from
w = 0, float64, fixed seed. Reported: wall time (best of the repeats;
jaxopt's compilation reported apart), iterations, function evaluations,
final objective and final gradient norm (recomputed in NumPy for all).
"""
import argparse
import time

import numpy as np


def make_problem(n, d, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) / np.sqrt(d)
    w = rng.standard_normal(d)
    y = np.where(X @ w + 0.5 * rng.standard_normal(n) > 0, 1.0, -1.0)
    return X, y


def value_and_grad(w, X, y, lam):
    z = y * (X @ w)
    lse = np.logaddexp(0.0, -z)
    v = np.mean(lse) + 0.5 * lam * (w @ w)
    s = -y * np.exp(-z - lse)
    return v, X.T @ s / y.size + lam * w


def best_of(f, repeats):
    ts, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = f()
        ts.append(time.perf_counter() - t)
    return min(ts), out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    sizes = [(10_000, 100)] + ([] if args.quick else [(50_000, 500)])
    lam, tol = 1e-3, 1e-6
    print(f"L2 logistic regression, lam {lam}, stop at gradient norm <= {tol}, float64, "
          f"best of {args.repeats}")
    print(f"{'problem':<14}{'impl':<22}{'time':>10}{'iters':>7}{'f evals':>9}"
          f"{'objective':>20}{'|grad|':>11}  note")
    for n, d in sizes:
        X, y = make_problem(n, d)
        rows = []

        import npopt
        solver = npopt.LBFGS(fun=value_and_grad, value_and_grad=True, tol=tol, maxiter=1000)
        sec, (w, st) = best_of(lambda: solver.run(np.zeros(d), X, y, lam), args.repeats)
        rows.append(("npopt LBFGS", sec, int(st.iter_num), int(st.num_fun_eval), w, ""))

        from scipy.optimize import minimize
        sec, res = best_of(lambda: minimize(value_and_grad, np.zeros(d), args=(X, y, lam),
                                            jac=True, method="L-BFGS-B",
                                            options=dict(gtol=tol, maxiter=1000)), args.repeats)
        rows.append(("scipy L-BFGS-B", sec, int(res.nit), int(res.nfev), res.x, ""))

        try:
            import jax
            jax.config.update("jax_enable_x64", True)
            import jax.numpy as jnp
            import jaxopt
            Xj, yj = jnp.asarray(X), jnp.asarray(y)

            def fj(w):
                return jnp.mean(jnp.logaddexp(0.0, -yj * (Xj @ w))) + 0.5 * lam * (w @ w)
            js = jaxopt.LBFGS(fun=fj, tol=tol, maxiter=1000)
            run = jax.jit(js.run)
            t0 = time.perf_counter()
            jax.block_until_ready(run(jnp.zeros(d)))
            compile_s = time.perf_counter() - t0
            sec, (wj, sj) = best_of(lambda: jax.block_until_ready(run(jnp.zeros(d))),
                                    args.repeats)
            rows.append(("jaxopt LBFGS (jit)", sec, int(sj.iter_num), int(sj.num_fun_eval),
                         np.asarray(wj), f"compile {compile_s:.2f} s"))
        except Exception as e:  # pragma: no cover - optional peer
            rows.append((f"jaxopt skipped ({type(e).__name__})", None, 0, 0, None, ""))

        for name, sec, it, nf, w, note in rows:
            if sec is None:
                print(f"{n}x{d:<8}{name}")
                continue
            v, g = value_and_grad(w, X, y, lam)
            print(f"{f'{n}x{d}':<14}{name:<22}{sec * 1e3:>8.1f}ms{it:>7}{nf:>9}{v:>20.12f}"
                  f"{np.linalg.norm(g):>11.1e}  {note}")


if __name__ == "__main__":
    main()
