"""``python -m npopt``: trains two small models with several update rules.

* logistic regression on a synthetic, linearly separable-ish data set
  (2 000 x 20), full-batch;
* a 2-layer MLP (tanh, 64 hidden units) regressing a smooth function of 8
  inputs, mini-batches of 128.

Gradients are written by hand in NumPy (npopt has no autodiff). Prints one
row per (model, rule): final loss, steps, time per optimizer step.

Then jaxopt-style solvers on problems with known answers: ridge regression
by GradientDescent (against the closed form), a lasso by ProximalGradient
(checked by its optimality conditions), and a stochastic logistic
regression over a minibatch iterator by PolyakSGD and OptaxSolver(adam).
Last, implicit differentiation: the L2 strength of a multiclass logistic
regression tuned by gradient descent on the validation loss (digits from
scikit-learn when installed, else synthetic data), and a sensitivity
analysis of the solution.
"""
import time

import numpy as np

import npopt


def logistic_problem(rng):
    n, d = 2000, 20
    X = rng.standard_normal((n, d))
    w_true = rng.standard_normal(d)
    y = (X @ w_true + 0.5 * rng.standard_normal(n) > 0).astype(np.float64)
    params = {"w": np.zeros(d), "b": np.zeros(())}

    def loss_and_grad(p, batch=None):
        z = X @ p["w"] + p["b"]
        pr = 1 / (1 + np.exp(-z))
        loss = np.mean(np.logaddexp(0, z) - y * z) + 1e-3 * 0.5 * p["w"] @ p["w"]
        r = (pr - y) / n
        return loss, {"w": X.T @ r + 1e-3 * p["w"], "b": np.sum(r)}
    return params, loss_and_grad, 300


def mlp_problem(rng):
    n, d, h = 4096, 8, 64
    X = rng.standard_normal((n, d))
    y = np.sin(X[:, :1] * 2) + X[:, 1:2] * X[:, 2:3]
    params = {"l1": {"w": rng.standard_normal((d, h)) / np.sqrt(d), "b": np.zeros(h)},
              "l2": {"w": rng.standard_normal((h, 1)) / np.sqrt(h), "b": np.zeros(1)}}

    def loss_and_grad(p, batch):
        xb, yb = X[batch], y[batch]
        a = np.tanh(xb @ p["l1"]["w"] + p["l1"]["b"])
        out = a @ p["l2"]["w"] + p["l2"]["b"]
        err = out - yb
        loss = 0.5 * np.mean(err ** 2)
        g_out = err / len(batch)
        g_a = g_out @ p["l2"]["w"].T * (1 - a ** 2)
        return loss, {"l1": {"w": xb.T @ g_a, "b": g_a.sum(0)},
                      "l2": {"w": a.T @ g_out, "b": g_out.sum(0)}}
    return params, loss_and_grad, 600


RULES = {
    "sgd": lambda: npopt.sgd(0.5),
    "sgd+nesterov": lambda: npopt.sgd(0.1, momentum=0.9, nesterov=True),
    "adam": lambda: npopt.adam(0.05),
    "adamw+cosine": lambda: npopt.adamw(npopt.schedules.cosine_decay_schedule(0.05, 600), 1e-3)
    if hasattr(npopt, "schedules") else npopt.adamw(0.05),
    "rmsprop": lambda: npopt.rmsprop(0.01),
    "adagrad": lambda: npopt.adagrad(0.5),
    "lamb": lambda: npopt.lamb(0.02),
    "lion": lambda: npopt.lion(3e-3),
    "adafactor": lambda: npopt.adafactor(0.05),
    "adabelief": lambda: npopt.adabelief(0.05),
    "radam": lambda: npopt.radam(0.05),
    "yogi": lambda: npopt.yogi(0.05),
    "novograd": lambda: npopt.novograd(0.05),
    "amsgrad": lambda: npopt.amsgrad(0.05),
}


def train(make_problem, make_opt, seed=0):
    rng = np.random.default_rng(seed)
    params, loss_and_grad, steps = make_problem(rng)
    opt = make_opt()
    state = opt.init(params)
    n = 4096
    opt_time = 0.0
    loss = None
    for k in range(steps):
        batch = rng.integers(0, n, 128) if make_problem is mlp_problem else None
        loss, grads = loss_and_grad(params, batch)
        t0 = time.perf_counter()
        params, state = opt.step(params, grads, state)
        opt_time += time.perf_counter() - t0
    full = np.arange(n) if make_problem is mlp_problem else None
    loss, _ = loss_and_grad(params, full)
    return loss, steps, opt_time / steps


def solvers_demo():
    rng = np.random.default_rng(1)
    n, d = 500, 30
    X = rng.standard_normal((n, d))
    w_true = rng.standard_normal(d) * (rng.random(d) < 0.3)
    y = X @ w_true + 0.1 * rng.standard_normal(n)

    def ridge(w, lam):
        r = X @ w - y
        return 0.5 * (r @ r) / n + 0.5 * lam * (w @ w), X.T @ r / n + lam * w

    def least_squares(w):
        r = X @ w - y
        return 0.5 * (r @ r) / n, X.T @ r / n

    print("\njaxopt-style solvers (float64):")
    print(f"{'problem':<34}{'solver':<28}{'iters':>6}{'ms':>8}  check")
    lam = 0.1
    t0 = time.perf_counter()
    w, state = npopt.GradientDescent(fun=ridge, value_and_grad=True, tol=1e-8).run(
        np.zeros(d), lam)
    ms = (time.perf_counter() - t0) * 1e3
    w_star = np.linalg.solve(X.T @ X / n + lam * np.eye(d), X.T @ y / n)
    print(f"{'ridge 500x30, lam 0.1':<34}{'GradientDescent':<28}{int(state.iter_num):>6}"
          f"{ms:>8.1f}  |w - closed form| = {np.max(np.abs(w - w_star)):.1e}")

    from npopt.prox import prox_lasso
    l1 = 0.05
    t0 = time.perf_counter()
    w, state = npopt.ProximalGradient(fun=least_squares, prox=prox_lasso, value_and_grad=True,
                                      tol=1e-8).run(np.zeros(d), l1)
    ms = (time.perf_counter() - t0) * 1e3
    g = least_squares(w)[1]
    active = w != 0
    kkt = max(np.max(np.abs(g[active] + l1 * np.sign(w[active])), initial=0.0),
              np.max(np.abs(g[~active]), initial=0.0) - l1)
    print(f"{'lasso 500x30, l1 0.05':<34}{'ProximalGradient (FISTA)':<28}{int(state.iter_num):>6}"
          f"{ms:>8.1f}  {int(active.sum())}/{d} nonzero, KKT residual {max(kkt, 0.0):.1e}")

    # stochastic: logistic regression over minibatches, batch passed as data=
    labels = (X @ w_true + 0.3 * rng.standard_normal(n) > 0).astype(np.float64)

    def logreg(w, l2, data):
        xb, yb = data
        z = xb @ w
        lse = np.logaddexp(0.0, z)
        return (np.mean(lse - yb * z) + 0.5 * l2 * (w @ w),
                xb.T @ (np.exp(z - lse) - yb) / len(yb) + l2 * w)

    def batches(epochs, size=50):
        for _ in range(epochs):
            perm = rng.permutation(n)
            for k in range(0, n, size):
                idx = perm[k:k + size]
                yield X[idx], labels[idx]

    full = (X, labels)
    for name, solver in (
            ("PolyakSGD", npopt.PolyakSGD(fun=logreg, value_and_grad=True, maxiter=300,
                                          max_stepsize=1.0)),
            ("OptaxSolver(adam(0.05))", npopt.OptaxSolver(fun=logreg, opt=npopt.adam(0.05),
                                                          value_and_grad=True, maxiter=300))):
        t0 = time.perf_counter()
        w, state = solver.run_iterator(np.zeros(d), batches(30), 1e-3)
        ms = (time.perf_counter() - t0) * 1e3
        loss = logreg(w, 1e-3, full)[0]
        acc = np.mean((X @ w > 0) == (labels > 0))
        print(f"{'logreg 500x30, minibatches of 50':<34}{name:<28}{int(state.iter_num):>6}"
              f"{ms:>8.1f}  full loss {loss:.4f}, accuracy {acc:.1%}")


def batched_demo():
    """1000 independent curve fits and ridge problems at once (npopt.vmap),
    each stopping on its own, against a Python loop over single runs."""
    from npopt.examples import problems as P
    print("\nbatched solves (npopt.vmap: each problem stops on its own; numba objectives "
          "run compiled on all cores):")
    rng = np.random.default_rng(2)
    B = 1000
    t = np.linspace(0, 4, 50)
    truth = rng.uniform([1, 0.8, 0.5, 0.05], [4, 2, 2, 0.4], (B, 4))
    Y = truth[:, :1] * np.exp(-truth[:, 1:2] * t) + truth[:, 2:3] * np.exp(-truth[:, 3:] * t)
    Y += 0.01 * rng.standard_normal(Y.shape)
    p0 = np.tile([1.0, 1.0, 1.0, 0.1], (B, 1))
    lm = npopt.LevenbergMarquardt(P.double_exponential, jac_fun=P.double_exponential_jac,
                                  materialize_jac=True, tol=1e-8, maxiter=100)
    fit = npopt.vmap(lm.run, in_axes=(0, None, 0))
    fit(p0[:2], t, Y[:2])                                   # compile (cached on disk)
    t0 = time.perf_counter()
    params, state = fit(p0, t, Y)
    ms = (time.perf_counter() - t0) * 1e3
    t0 = time.perf_counter()
    singles = [lm.run(p0[i], t, Y[i]) for i in range(100)]
    loop_ms = (time.perf_counter() - t0) * 1e3 * B / 100
    same = all(np.array_equal(params[i], s.params) for i, s in enumerate(singles))
    print(f"  {B} double-exponential fits (Levenberg-Marquardt): {ms:.1f} ms "
          f"({ms * 1e3 / B:.1f} us/fit; a loop over run: {loop_ms:.0f} ms); iterations "
          f"{int(state.iter_num.min())}-{int(state.iter_num.max())}; every lane equals its "
          f"single run: {same}")
    X = rng.standard_normal((B, 50, 10))
    y = np.einsum("bij,bj->bi", X, rng.standard_normal((B, 10))) + 0.1 * rng.standard_normal(
        (B, 50))
    solver = npopt.LBFGS(P.ridge, value_and_grad=True, tol=1e-8)
    res = solver.run_batch(np.zeros((2, 10)), X[:2], y[:2], 0.1, in_axes=(0, 0, 0, None))
    t0 = time.perf_counter()
    res = solver.run_batch(np.zeros((B, 10)), X, y, 0.1, in_axes=(0, 0, 0, None))
    ms = (time.perf_counter() - t0) * 1e3
    A = np.einsum("bij,bik->bjk", X, X) / 50 + 0.1 * np.eye(10)
    closed = np.linalg.solve(A, np.einsum("bij,bi->bj", X, y)[..., None] / 50)[..., 0]
    print(f"  {B} ridge problems 50x10 (LBFGS): {ms:.1f} ms ({ms * 1e3 / B:.1f} us/problem); "
          f"status {np.bincount(res.status).tolist()} (0: converged); max |w - closed form| = "
          f"{np.max(np.abs(res.params - closed)):.1e}")


def implicit_diff_demo():
    from npopt.examples.hyperopt import run_hyperopt, run_sensitivity
    print("\nimplicit differentiation (no autodiff: exact derivatives of the optimality")
    print("condition, the implicit function theorem, a CG solve):")
    run_hyperopt()
    run_sensitivity()


def main():
    print("npopt demo: each optimizer trains two models from the same start\n")
    print(f"{'model':<22}{'rule':<15}{'final loss':>12}{'steps':>7}{'us/step':>10}")
    for name, prob in (("logistic regression", logistic_problem), ("MLP 8-64-1 (tanh)", mlp_problem)):
        rng = np.random.default_rng(0)
        p0, lg, _ = prob(rng)
        loss0, _ = lg(p0, np.arange(4096) if prob is mlp_problem else None)
        print(f"{name:<22}{'(initial)':<15}{loss0:>12.5f}")
        for rule, make in RULES.items():
            loss, steps, t = train(prob, make)
            print(f"{'':<22}{rule:<15}{loss:>12.5f}{steps:>7}{t * 1e6:>10.1f}")
    print("\nus/step: one fused opt.step (kernel pass over all leaves), first-call "
          "compilation included in the average.")
    solvers_demo()
    batched_demo()
    implicit_diff_demo()


if __name__ == "__main__":
    main()
