"""Bit-exact fingerprints of npopt's numbers, to compare across machines.

``python tests/fingerprint.py`` prints one JSON object: ``{item: sha256}``
over the raw bytes of every result (iterates, counts, states) of a set of
solver runs and update steps. ``tests/test_determinism.py`` runs it in
subprocesses under other OpenBLAS kernels (``OPENBLAS_CORETYPE``), other
NumPy SIMD targets (``NPY_DISABLE_CPU_FEATURES``) and another numba target
CPU (``NUMBA_CPU_NAME``), i.e. as on another machine, and requires the same
bits everywhere (SPEC §7: npopt's numbers do not depend on the machine).

The objectives here use only elementwise NumPy arithmetic, ``np.sum`` (a
fixed pairwise order in plain C) and ``npopt._math`` (NumPy's own ``np.exp``
differs between AVX2 and AVX-512 machines), so that any difference is npopt's.
"""
import hashlib
import json
import sys
import warnings

import numpy as np


def _bytes(x):
    if isinstance(x, dict):
        return b"".join(k.encode() + _bytes(x[k]) for k in sorted(x))
    if isinstance(x, (list, tuple)):
        return b"".join(_bytes(v) for v in x)
    if x is None:
        return b"None"
    a = np.asarray(x)
    if a.dtype == object:
        return repr(x).encode()
    return str(a.dtype).encode() + str(a.shape).encode() + np.ascontiguousarray(a).tobytes()


def _digest(x):
    return hashlib.sha256(_bytes(x)).hexdigest()[:16]


# ---- problems (no BLAS) -----------------------------------------------------

def _data(seed=0, n=40, d=8):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    w = rng.standard_normal(d)
    y = np.sum(X * w, axis=1) + 0.1 * rng.standard_normal(n)
    return X, y


def rosen_vg(x):
    a, b = x[:-1], x[1:]
    r = b - a * a
    g = np.zeros_like(x)
    g[:-1] = -400.0 * a * r - 2.0 * (1.0 - a)
    g[1:] += 200.0 * r
    return np.sum(100.0 * r * r + (1.0 - a) ** 2), g


def logreg_vg(w, lam, X, y):
    from npopt import _math
    z = np.sum(X * w, axis=1)
    lse = np.maximum(z, 0) + _math.log1p(_math.exp(-np.abs(z)))
    sig = _math.exp(z - lse)
    n = X.shape[0]
    value = np.sum(lse - y * z) / n + 0.5 * lam * np.sum(w * w)
    return value, np.sum(X * (sig - y)[:, None], axis=0) / n + lam * w


def exp_res(x, t, y):
    from npopt import _math
    return x[0] * _math.exp(-x[1] * t) + x[2] - y


def exp_jac(x, t, y):
    from npopt import _math
    e = _math.exp(-x[1] * t)
    return np.stack([e, -x[0] * t * e, np.ones_like(t)], axis=1)


def items():
    import npopt
    from npopt import _math
    from npopt import linear_solve as ls

    out = {}
    x0 = np.ones(10)
    x0[0::2] = -1.2
    for name, kw in [("lbfgs_zoom", {}), ("lbfgs_hz", dict(linesearch="hager-zhang")),
                     ("lbfgs_bt", dict(linesearch="backtracking"))]:
        p, s = npopt.LBFGS(fun=rosen_vg, value_and_grad=True, tol=1e-8, maxiter=300,
                           **kw).run(x0.copy())
        out[name] = (p, s.iter_num, s.value, s.num_fun_eval)
    p, s = npopt.BFGS(fun=rosen_vg, value_and_grad=True, tol=1e-8, maxiter=300,
                      linesearch="hager-zhang").run(x0.copy())
    out["bfgs_hz"] = (p, s.iter_num, s.value)
    p, s = npopt.NonlinearCG(fun=rosen_vg, value_and_grad=True, tol=1e-6,
                             maxiter=200).run(x0.copy())
    out["ncg"] = (p, s.iter_num, s.value)

    X, y = _data()
    lab = (y > 0).astype(np.float64)
    p, s = npopt.LBFGSB(fun=logreg_vg, value_and_grad=True, tol=1e-9).run(
        np.zeros(8), (-0.3 * np.ones(8), 0.3 * np.ones(8)), 0.1, X, lab)
    out["lbfgsb"] = (p, s.iter_num)
    p, s = npopt.GradientDescent(fun=logreg_vg, value_and_grad=True, tol=1e-7,
                                 maxiter=500).run(np.zeros(8), 0.1, X, lab)
    out["gd"] = (p, s.iter_num)

    t = np.linspace(0, 3, 30)
    yy = 2.0 * _math.exp(-1.3 * t) + 0.5 + 0.01 * _math.cos(7 * t)
    for solver in ("cholesky", "lu", "qr", "inv"):
        p, s = npopt.LevenbergMarquardt(exp_res, jac_fun=exp_jac, solver=solver,
                                        geodesic=solver == "qr", materialize_jac=True, tol=1e-12).run(
            np.array([1.0, 1.0, 0.0]), t, yy)
        out[f"lm_{solver}"] = (p, s.iter_num)
    p, s = npopt.GaussNewton(exp_res, jac_fun=exp_jac, tol=1e-12).run(
        np.array([1.0, 1.0, 0.0]), t, yy)
    out["gauss_newton"] = (p, s.iter_num)

    rng = np.random.default_rng(3)
    M = rng.standard_normal((12, 12))
    A = M @ M.T + 12 * np.eye(12)        # data only: its own rounding is not compared
    A = np.round(A, 6)
    b = np.round(rng.standard_normal(12), 6)
    N = np.round(rng.standard_normal((12, 12)), 6) + 6 * np.eye(12)
    for f in ("solve_lu", "solve_cholesky", "solve_qr", "solve_inv"):
        out[f] = getattr(ls, f)(A, b)
    out["solve_cg"] = ls.solve_cg(lambda v: np.sum(A * v, axis=1), b, tol=1e-12)
    out["solve_gmres"] = ls.solve_gmres(lambda v: np.sum(N * v, axis=1), b, tol=1e-12)
    out["solve_bicgstab"] = ls.solve_bicgstab(lambda v: np.sum(N * v, axis=1), b, tol=1e-12)

    Q = A[:6, :6]
    c = b[:6]
    Aeq = np.ones((1, 6))
    G = np.eye(6)
    h = 0.2 * np.ones(6)
    sol, s = npopt.OSQP(tol=1e-6).run(params_obj=(Q, c), params_eq=(Aeq, np.ones(1)),
                                      params_ineq=(G, h))
    out["osqp"] = (sol, s.iter_num)
    sol, s = npopt.BoxCDQP(tol=1e-10).run(np.zeros(6), params_obj=(Q, c),
                                          params_ineq=(-np.ones(6), np.ones(6)))
    out["boxcdqp"] = (sol, s.iter_num)
    sol = npopt.EqualityConstrainedQP().run(params_obj=(Q, c), params_eq=(Aeq, np.ones(1)))
    out["eqqp"] = sol.params

    def T(x, a):
        return _math.cos(a * x)
    p, s = npopt.AndersonAcceleration(T, history_size=4, tol=1e-10).run(np.zeros(5), 0.7)
    out["anderson"] = (p, s.iter_num)
    p, s = npopt.Broyden(lambda x: _math.cos(0.7 * x) - x, tol=1e-10).run(np.zeros(5))
    out["broyden"] = (p, s.iter_num)

    # implicit differentiation of a ridge solution
    def ridge_vg(w, lam, X, y):
        r = np.sum(X * w, axis=1) - y
        return 0.5 * np.sum(r * r) + 0.5 * lam * np.sum(w * w), \
            np.sum(X * r[:, None], axis=0) + lam * w
    solver = npopt.LBFGS(fun=ridge_vg, value_and_grad=True, tol=1e-10, implicit_diff=True)
    out["jacobian"] = solver.jacobian(np.zeros(8), 0.5, X, y, argnums=1)

    # update rules (kernels with per-leaf reductions)
    rng = np.random.default_rng(5)
    params = {"w": rng.standard_normal((16, 24)).astype(np.float32),
              "b": rng.standard_normal(24)}
    for name, opt in [("adam", npopt.adam(1e-2)), ("lamb", npopt.lamb(1e-2)),
                      ("adafactor", npopt.adafactor(1e-2)),
                      ("clip_adamw", npopt.chain(npopt.clip_by_global_norm(0.5),
                                                 npopt.adamw(1e-2))),
                      ("novograd", npopt.novograd(1e-2)), ("lars", npopt.lars(1e-2))]:
        p = {k: v.copy() for k, v in params.items()}
        st = opt.init(p)
        for k in range(5):
            g = {kk: (_math.cos(v * (k + 1)) - 0.5).astype(v.dtype) for kk, v in p.items()}
            u, st = opt.update(g, st, p)
            p = npopt.apply_updates(p, u)
        out[f"rule_{name}"] = p

    # optax's contrib rules and the rest of optax (issue 14): chunked
    # reductions, libm's cbrt, fixed-order matrix products, losses' exp/log
    import npopt.contrib as C
    for name, opt, kw in [
            ("adopt", C.adopt(1e-2), {}), ("ademamix", C.ademamix(1e-2), {}),
            ("madgrad", C.madgrad(1e-2), {}), ("cocob", C.cocob(), {}),
            ("schedule_free_adamw", C.schedule_free_adamw(1e-2), {}),
            ("prodigy", C.prodigy(), {}), ("dadapt_adamw", C.dadapt_adamw(), {}),
            ("dog", C.dog(), {}), ("mechanize", C.mechanize(npopt.adam(1e-2)), {}),
            ("momo_adam", C.momo_adam(), {"value": np.float64(0.5)}),
            ("muon", C.muon(1e-2), {}), ("galore", C.galore(1e-2, rank=4), {}),
            ("agc", npopt.chain(npopt.adaptive_grad_clip(0.1), npopt.sgd(1e-2)), {})]:
        p = {k: v.copy() for k, v in params.items()}
        st = opt.init(p)
        for k in range(4):
            g = {kk: (_math.cos(v * (k + 1)) - 0.5).astype(v.dtype) for kk, v in p.items()}
            u, st = opt.update(g, st, p, **kw)
            p = npopt.apply_updates(p, u)
        out[f"rule_{name}"] = p
    logits = rng.standard_normal((6, 5))
    labels = np.eye(5)[rng.integers(0, 5, 6)]
    out["losses"] = (npopt.losses.softmax_cross_entropy.value_and_grad(logits, labels),
                     npopt.losses.sigmoid_focal_loss(logits, labels),
                     npopt.losses.ctc_loss(rng.standard_normal((2, 7, 4)), np.zeros((2, 7)),
                                           np.array([[1, 2, 0], [3, 3, 1]]), np.zeros((2, 3))))
    out["projection_l1_ball"] = npopt.projections.projection_l1_ball(params, 3.0)
    spd = np.sum(X[:, :, None] * X[:, None, :], axis=0) / X.shape[0] + np.eye(X.shape[1])
    out["matrix_inverse_pth_root"] = npopt.matrix_inverse_pth_root(spd, 4)[0]
    return out


def main():
    warnings.simplefilter("ignore")
    print(json.dumps({k: _digest(v) for k, v in items().items()}, sort_keys=True))


if __name__ == "__main__":
    sys.exit(main())
