#!/usr/bin/env python
"""Batched and compiled solves (the solver engine) side by side with peers.

Run from the repository root::

    python benchmarks/bench_batch.py                      # ~1 minute
    python benchmarks/bench_batch.py --B 200 --quick      # smoke test
    python benchmarks/bench_batch.py --jax-python /path/to/python-with-jaxopt

Workloads (float64, L-BFGS with the zoom line search, tol 1e-6):

1. one ridge solve (50 x 10): npopt's Python driver (a NumPy objective),
   with the per-iteration overhead (the objective's own time taken out);
   npopt's compiled driver (a numba objective); scipy's L-BFGS-B;
2. B ridge problems (50 x 10) and B logistic regressions (100 x 10):
   npopt batched with a numba objective (all cores, and one thread), with a
   vectorised NumPy objective, a Python loop over scipy's L-BFGS-B, the
   closed-form floor for ridge (stacked ``np.linalg.solve``), and
   ``jax.vmap(jaxopt.LBFGS)`` under jit (in a subprocess, when
   ``--jax-python`` names an interpreter that has jax and jaxopt; its
   compile time is reported apart);
3. B Levenberg-Marquardt curve fits (a double exponential, 4 parameters,
   50 points): npopt batched (numba residuals and Jacobian), a Python loop
   over scipy's ``least_squares(method='lm')`` and ``jax.vmap(jaxopt.
   LevenbergMarquardt)``;
4. a batch with mixed conditioning (1 lane in 10 takes ~10-100x more
   iterations): the batch's time against the sum of its lanes' single runs;
5. the first compiled solve in a new process (numba's cache warm).

Times are medians over repeats, after a warm-up (compilation excluded and
reported apart). It prints a table and saves JSON (--out).
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import npopt  # noqa: E402
from npopt.examples import problems as P  # noqa: E402


def timeit(fn, repeat=5, min_time=0.2):
    fn()
    times = []
    for _ in range(repeat):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            el = time.perf_counter() - t0
            if el >= min_time / repeat:
                break
        times.append(el / n)
    return statistics.median(times)


def ridge_np(w, X, y, lam):
    r = X.dot(w) - y
    m = y.shape[0]
    return 0.5 * r.dot(r) / m + 0.5 * lam * w.dot(w), X.T.dot(r) / m + lam * w


def ridge_vec(W, X, y, lam):
    R = np.einsum("bij,bj->bi", X, W) - y
    m = y.shape[1]
    return (0.5 * np.einsum("bi,bi->b", R, R) / m + 0.5 * lam * np.einsum("bj,bj->b", W, W),
            np.einsum("bij,bi->bj", X, R) / m + lam[:, None] * W)


def logistic_vec(W, X, y, lam):
    z = np.einsum("bij,bj->bi", X, W)
    m = y.shape[1]
    value = np.mean(np.logaddexp(0.0, z) - y * z, axis=1) + 0.5 * lam * np.einsum("bj,bj->b", W, W)
    s = 0.5 * (1.0 + np.tanh(0.5 * z))
    return value, np.einsum("bij,bi->bj", X, s - y) / m + lam[:, None] * W


def data(B, m, n, seed, kind):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((B, m, n))
    w = rng.standard_normal((B, n))
    z = np.einsum("bij,bj->bi", X, w)
    if kind == "ridge":
        y = z + 0.1 * rng.standard_normal((B, m))
    else:
        y = (rng.uniform(size=(B, m)) < 1 / (1 + np.exp(-z))).astype(float)
    return X, y, np.full(B, 0.1)


def scipy_loop(fun, X, y, lam, n):
    from scipy.optimize import minimize

    def go():
        for i in range(X.shape[0]):
            minimize(fun, np.zeros(n), args=(X[i], y[i], lam[i]), jac=True, method="L-BFGS-B",
                     options=dict(gtol=1e-6, maxiter=500))
    return go


JAX_SNIPPET = r"""
import json, sys, time
import jax, jax.numpy as jnp, numpy as np
jax.config.update("jax_enable_x64", True)
import jaxopt
d = np.load(sys.argv[1])
X, y, lam = jnp.asarray(d["X"]), jnp.asarray(d["y"]), jnp.asarray(d["lam"])
kind = sys.argv[2]
def ridge(w, X, y, lam):
    r = X @ w - y
    return 0.5 * r @ r / y.shape[0] + 0.5 * lam * w @ w
def logistic(w, X, y, lam):
    z = X @ w
    return jnp.mean(jnp.logaddexp(0.0, z) - y * z) + 0.5 * lam * w @ w
if kind == "curves":
    def residual(p, t, y):
        return p[0] * jnp.exp(-p[1] * t) + p[2] * jnp.exp(-p[3] * t) - y
    lm = jaxopt.LevenbergMarquardt(residual, tol=1e-8, maxiter=100, materialize_jac=True)
    p0 = jnp.array([1.0, 1.0, 1.0, 0.1])
    run = jax.jit(jax.vmap(lambda t, y, lam: lm.run(p0, t, y).params))
else:
    solver = jaxopt.LBFGS(ridge if kind == "ridge" else logistic, tol=1e-6, maxiter=500)
    run = jax.jit(jax.vmap(lambda X, y, lam: solver.run(jnp.zeros(X.shape[1]), X, y,
                                                        lam).params))
t0 = time.perf_counter(); run(X, y, lam).block_until_ready(); first = time.perf_counter() - t0
ts = []
for _ in range(5):
    t0 = time.perf_counter(); run(X, y, lam).block_until_ready(); ts.append(time.perf_counter() - t0)
print(json.dumps({"first": first, "time": sorted(ts)[2]}))
"""


def jax_peer(python, X, y, lam, kind, tmp):
    if not python:
        return None
    path = os.path.join(tmp, f"batch_{kind}.npz")
    np.savez(path, X=X, y=y, lam=lam)
    src = os.path.join(tmp, "jax_peer.py")
    with open(src, "w") as f:
        f.write(JAX_SNIPPET)
    out = subprocess.run([python, src, path, kind], capture_output=True, text=True,
                         env={**os.environ, "JAX_PLATFORMS": "cpu"})
    if out.returncode:
        print(out.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def first_call_in_new_process():
    code = ("import time; t0 = time.perf_counter(); import numpy as np, npopt; "
            "from npopt.examples import problems as P; "
            "rng = np.random.default_rng(0); X = rng.standard_normal((50, 10)); "
            "y = rng.standard_normal(50); "
            "npopt.LBFGS(P.ridge, value_and_grad=True, tol=1e-6).run(np.zeros(10), X, y, 0.1); "
            "print(time.perf_counter() - t0)")
    subprocess.run([sys.executable, "-c", code], capture_output=True)      # warms the cache
    times = [float(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                  text=True).stdout) for _ in range(3)]
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--B", type=int, default=1000)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--jax-python", default=os.environ.get("NPOPT_JAX_PYTHON"))
    ap.add_argument("--out", default="benchmarks/results_batch.json")
    a = ap.parse_args()
    B = a.B
    res = {"machine": platform.processor() or platform.machine(), "cores": os.cpu_count(),
           "B": B, "rows": []}
    rows = res["rows"]

    def row(name, seconds, per=1, note=""):
        rows.append({"name": name, "seconds": seconds, "per": per, "note": note})
        print(f"{name:58s} {seconds / per * 1e6:11.1f} us{'/' + str(per) if per > 1 else ''}"
              f"  {note}", flush=True)

    # 1. single solves
    X, y, lam = data(1, 50, 10, 0, "ridge")
    X0, y0 = X[0], y[0]
    py = npopt.LBFGS(ridge_np, value_and_grad=True, tol=1e-6)
    comp = npopt.LBFGS(P.ridge, value_and_grad=True, tol=1e-6)
    r = py.run(np.zeros(10), X0, y0, 0.1)
    iters, evals = int(r.state.iter_num), int(r.state.num_fun_eval)
    t_py = timeit(lambda: py.run(np.zeros(10), X0, y0, 0.1))
    t_fun = timeit(lambda: ridge_np(np.zeros(10), X0, y0, 0.1))
    row("ridge 50x10, one solve: npopt Python driver", t_py, note=f"{iters} iterations")
    row("  per iteration, the objective's time taken out", (t_py - evals * t_fun) / iters,
        note=f"objective {t_fun * 1e6:.1f} us x {evals} calls")
    t_c = timeit(lambda: comp.run(np.zeros(10), X0, y0, 0.1))
    row("ridge 50x10, one solve: npopt compiled driver (numba fun)", t_c)
    row("  per iteration", t_c / iters)
    t_sp = timeit(scipy_loop(ridge_np, X[:1], y[:1], lam[:1], 10))
    row("ridge 50x10, one solve: scipy L-BFGS-B", t_sp)

    # 2. batches
    tmp = tempfile.mkdtemp(prefix="npopt_bench_batch_")
    for kind, m in (("ridge", 50), ("logistic", 100)):
        X, y, lam = data(B, m, 10, 1, kind)
        x0 = np.zeros((B, 10))
        numba_fun = P.ridge if kind == "ridge" else P.logistic
        vec_fun = ridge_vec if kind == "ridge" else logistic_vec
        s = npopt.LBFGS(numba_fun, value_and_grad=True, tol=1e-6)
        rb = s.run_batch(x0, X, y, lam)
        note = f"iterations per lane {int(rb.state.iter_num.min())}-{int(rb.state.iter_num.max())}"
        row(f"{B} {kind} {m}x10: npopt batched, numba fun, all cores",
            timeit(lambda: s.run_batch(x0, X, y, lam), repeat=3), B, note)
        into = npopt.LBFGS(P.ridge_into if kind == "ridge" else P.logistic_into,
                           value_and_grad=True, tol=1e-6)
        row(f"{B} {kind} {m}x10: npopt batched, numba fun writing into g, all cores",
            timeit(lambda: into.run_batch(x0, X, y, lam), repeat=3), B)
        row(f"{B} {kind} {m}x10: npopt batched, numba fun, 1 thread",
            timeit(lambda: npopt.solvers.engine.run_batch(s, x0, (X, y, lam), threads=1),
                   repeat=3), B)
        v = npopt.LBFGS(vec_fun, value_and_grad=True, tol=1e-6)
        row(f"{B} {kind} {m}x10: npopt batched, vectorised NumPy fun",
            timeit(lambda: v.run_batch(x0, X, y, lam, vectorized=True), repeat=3), B)
        nloop = B if not a.quick else min(B, 50)
        row(f"{B} {kind} {m}x10: Python loop over npopt LBFGS.run (numba fun)",
            timeit(lambda: [s.run(x0[i], X[i], y[i], lam[i]) for i in range(nloop)],
                   repeat=3) * B / nloop, B)
        npfun = ridge_np if kind == "ridge" else (
            lambda w, X, y, lam: tuple(np.asarray(t)[0] if k == 0 else np.asarray(t)[0]
                                       for k, t in enumerate(logistic_vec(
                                           w[None], X[None], y[None], np.array([lam]))))
        )
        row(f"{B} {kind} {m}x10: Python loop over scipy L-BFGS-B",
            timeit(scipy_loop(npfun, X[:nloop], y[:nloop], lam[:nloop], 10), repeat=1)
            * B / nloop, B)
        if kind == "ridge":
            def closed():
                A = np.einsum("bij,bik->bjk", X, X) / m + lam[:, None, None] * np.eye(10)
                rhs = np.einsum("bij,bi->bj", X, y) / m
                return np.linalg.solve(A, rhs[..., None])
            row(f"{B} ridge 50x10: closed-form floor (stacked np.linalg.solve)",
                timeit(closed), B)
            err = np.abs(rb.params - closed()[..., 0]).max()
            print(f"{'':58s} max |npopt - closed form| = {err:.1e}")
        jp = jax_peer(a.jax_python, X, y, lam, kind, tmp)
        if jp:
            row(f"{B} {kind} {m}x10: jax.vmap(jaxopt.LBFGS), jit", jp["time"], B,
                f"+ {jp['first']:.1f} s compile and first run")

    # 2b. curve fits: Levenberg-Marquardt on a double exponential, 50 points
    rng = np.random.default_rng(4)
    t = np.linspace(0, 4, 50)
    ps = rng.uniform([1, 0.8, 0.5, 0.05], [4, 2, 2, 0.4], (B, 4))
    Y = np.stack([p[0] * np.exp(-p[1] * t) + p[2] * np.exp(-p[3] * t) for p in ps])
    Y += 0.01 * rng.standard_normal(Y.shape)
    P0 = np.tile([1.0, 1.0, 1.0, 0.1], (B, 1))
    lm = npopt.LevenbergMarquardt(P.double_exponential, jac_fun=P.double_exponential_jac,
                                  materialize_jac=True, tol=1e-8, maxiter=100)
    rb = lm.run_batch(P0, t, Y, in_axes=(0, None, 0))
    it = rb.state.iter_num
    row(f"{B} curve fits (4 params, 50 points): npopt LM batched, numba fun",
        timeit(lambda: lm.run_batch(P0, t, Y, in_axes=(0, None, 0)), repeat=3), B,
        f"iterations {int(it.min())}-{int(it.max())}, converged {int(np.sum(rb.status == 0))}")
    row(f"{B} curve fits: npopt LM batched, numba fun, 1 thread",
        timeit(lambda: npopt.solvers.engine.run_batch(lm, P0, (t, Y), in_axes=(0, None, 0),
                                                      threads=1), repeat=3), B)

    def scipy_lm():
        from scipy.optimize import least_squares
        for i in range(nfit):
            least_squares(P.double_exponential, P0[i], jac=P.double_exponential_jac,
                          args=(t, Y[i]), method="lm", xtol=1e-12, ftol=1e-12, gtol=1e-8)
    nfit = B if not a.quick else min(B, 50)
    row(f"{B} curve fits: Python loop over scipy least_squares(method='lm')",
        timeit(scipy_lm, repeat=1) * B / nfit, B)
    jp = jax_peer(a.jax_python, np.broadcast_to(t, Y.shape).copy(), Y, np.zeros(B), "curves",
                  tmp)
    if jp:
        row(f"{B} curve fits: jax.vmap(jaxopt.LevenbergMarquardt), jit", jp["time"], B,
            f"+ {jp['first']:.1f} s compile and first run")

    # 3. mixed conditioning
    X, y, lam = data(B, 50, 10, 2, "ridge")
    X[::10] *= np.logspace(0, 2.5, 10)          # 1 lane in 10 badly conditioned
    s = npopt.LBFGS(P.ridge, value_and_grad=True, tol=1e-6, maxiter=2000)
    x0 = np.zeros((B, 10))
    rb = s.run_batch(x0, X, y, lam)
    it = rb.state.iter_num
    t_batch = timeit(lambda: npopt.solvers.engine.run_batch(s, x0, (X, y, lam), threads=1),
                     repeat=3)
    t_lanes = timeit(lambda: [s.run(x0[i], X[i], y[i], lam[i]) for i in range(B)], repeat=1)
    row(f"{B} ridge, mixed conditioning: batched (1 thread)", t_batch, B,
        f"iterations {int(it.min())}-{int(it.max())}, mean {it.mean():.0f}")
    row(f"{B} ridge, mixed conditioning: sum of single runs", t_lanes, B,
        f"batch / lanes' sum = {t_batch / t_lanes:.2f}; a vmap that waits for the slowest "
        f"lane would do {int(it.max()) / it.mean():.1f}x the iterations")

    # 4. start-up
    row("first compiled ridge solve in a new process (import included)",
        first_call_in_new_process())

    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    print(f"saved {a.out}")


if __name__ == "__main__":
    main()
