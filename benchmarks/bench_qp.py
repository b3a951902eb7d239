#!/usr/bin/env python
"""Box-constrained and general QPs: npopt's QP solvers against jaxopt's (jit,
x64), scipy and the osqp package (where installed), in one run.

    python benchmarks/bench_qp.py [--quick]

Problems (float64, fixed seed): ``min 0.5 x'Qx + c'x`` with Q = M M'/n + I/10,
(a) subject to l <= x <= u (BoxCDQP, BoxOSQP; scipy L-BFGS-B with bounds),
(b) subject to Ax = b, Gx <= h (OSQP; scipy SLSQP; osqp). Reported: time
(best of the repeats; jaxopt's compilation apart), iterations and the
distance to a high-accuracy reference (CVXPY/Clarabel when installed, else
the tightest solver here).
"""
import argparse
import time

import numpy as np


TIGHT = dict(tol_gap_abs=1e-13, tol_gap_rel=1e-13, tol_feas=1e-13, tol_ktratio=1e-10)


def best_of(f, repeats):
    ts, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = f()
        ts.append(time.perf_counter() - t)
    return min(ts), out


def problem(n, seed=0):
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((n, n))
    Q = M @ M.T / n + 0.1 * np.eye(n)
    c = rng.standard_normal(n)
    l, u = -0.5 * np.ones(n), 0.5 * np.ones(n)
    A, b = rng.standard_normal((n // 10, n)), rng.standard_normal(n // 10)
    G, h = rng.standard_normal((n // 2, n)), rng.random(n // 2)
    return Q, c, (l, u), (A, b), (G, h)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    import npopt
    from scipy.optimize import minimize
    sizes = [50] if args.quick else [50, 200]
    tol = 1e-8
    print(f"float64, tol {tol:g}, best of {args.repeats}")
    print(f"{'problem':<16}{'impl':<30}{'time':>11}{'iters':>7}{'|x - x*|_inf':>14}  note")
    for n in sizes:
        Q, c, (l, u), (A, b), (G, h) = problem(n)
        rows = []
        # (a) box QP
        s = npopt.BoxCDQP(tol=tol, maxiter=10000)
        sec, (x, st) = best_of(lambda: s.run(np.zeros(n), (Q, c), (l, u)), args.repeats)
        rows.append(("box", "npopt BoxCDQP", sec, int(st.iter_num), x, ""))
        s = npopt.BoxOSQP(tol=tol, maxiter=20000)
        sec, (sol, st) = best_of(lambda: s.run(None, (Q, c), np.eye(n), (l, u)), args.repeats)
        rows.append(("box", "npopt BoxOSQP", sec, int(st.iter_num), sol.primal[0], ""))
        fun = lambda x: (0.5 * x @ Q @ x + c @ x, Q @ x + c)  # noqa: E731
        sec, res = best_of(lambda: minimize(fun, np.zeros(n), jac=True, method="L-BFGS-B",
                                            bounds=list(zip(l, u)),
                                            options=dict(gtol=tol, ftol=1e-15, maxiter=10000)),
                           args.repeats)
        rows.append(("box", "scipy L-BFGS-B (bounds)", sec, int(res.nit), res.x, ""))
        try:
            import jax
            jax.config.update("jax_enable_x64", True)
            import jax.numpy as jnp
            import jaxopt
            Qj, cj, lj, uj = map(jnp.asarray, (Q, c, l, u))
            js = jaxopt.BoxCDQP(tol=tol, maxiter=10000)
            run = jax.jit(lambda x0: js.run(x0, params_obj=(Qj, cj), params_ineq=(lj, uj)))
            t0 = time.perf_counter()
            jax.block_until_ready(run(jnp.zeros(n)))
            comp = time.perf_counter() - t0
            sec, (xj, sj) = best_of(lambda: jax.block_until_ready(run(jnp.zeros(n))), args.repeats)
            rows.append(("box", "jaxopt BoxCDQP (jit)", sec, int(sj.iter_num), np.asarray(xj),
                         f"compile {comp:.2f} s"))
        except Exception as e:  # pragma: no cover - optional peer
            rows.append(("box", f"jaxopt skipped ({type(e).__name__})", None, 0, None, ""))
        ref_box = rows[0][4]
        # (b) general QP
        s = npopt.OSQP(tol=tol, maxiter=20000)
        sec, (sol, st) = best_of(lambda: s.run(None, (Q, c), (A, b), (G, h)), args.repeats)
        rows.append(("eq+ineq", "npopt OSQP", sec, int(st.iter_num), sol.primal, ""))
        cons = [dict(type="eq", fun=lambda x: A @ x - b, jac=lambda x: A),
                dict(type="ineq", fun=lambda x: h - G @ x, jac=lambda x: -G)]
        sec, res = best_of(lambda: minimize(fun, np.zeros(n), jac=True, method="SLSQP",
                                            constraints=cons,
                                            options=dict(ftol=1e-14, maxiter=1000)), args.repeats)
        rows.append(("eq+ineq", "scipy SLSQP", sec, int(res.nit), res.x, ""))
        try:
            import osqp  # noqa: F401
            import scipy.sparse as sps
            P = sps.csc_matrix(Q)
            Acon = sps.csc_matrix(np.vstack([A, G]))
            lo = np.concatenate([b, -np.inf * np.ones(len(h))])
            hi = np.concatenate([b, h])

            def run_osqp():
                m = osqp.OSQP()
                m.setup(P, c, Acon, lo, hi, eps_abs=tol, eps_rel=tol, verbose=False,
                        max_iter=20000)
                return m.solve()
            sec, res = best_of(run_osqp, args.repeats)
            rows.append(("eq+ineq", "osqp (C)", sec, int(res.info.iter), res.x, ""))
        except ImportError:
            rows.append(("eq+ineq", "osqp not installed", None, 0, None, ""))
        ref_gen = rows[[r[1] for r in rows].index("npopt OSQP")][4]
        try:
            import cvxpy as cp
            x = cp.Variable(n)
            cp.Problem(cp.Minimize(0.5 * cp.quad_form(x, cp.psd_wrap(Q)) + c @ x),
                       [A @ x == b, G @ x <= h]).solve(solver="CLARABEL", **TIGHT)
            ref_gen = x.value
            x = cp.Variable(n)
            cp.Problem(cp.Minimize(0.5 * cp.quad_form(x, cp.psd_wrap(Q)) + c @ x),
                       [x >= l, x <= u]).solve(solver="CLARABEL", **TIGHT)
            ref_box = x.value
        except Exception:
            pass
        for kind, name, sec, it, x, note in rows:
            label = f"{kind} n={n}"
            if sec is None:
                print(f"{label:<16}{name}")
                continue
            ref = ref_box if kind == "box" else ref_gen
            print(f"{label:<16}{name:<30}{sec * 1e3:>9.2f}ms{it:>7}"
                  f"{np.max(np.abs(np.asarray(x) - ref)):>14.1e}  {note}")


if __name__ == "__main__":
    main()
