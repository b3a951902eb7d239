"""Test problems for the jaxopt solver references, written once for NumPy
(value and gradient, for npopt) and once for jax.numpy (value only; jaxopt
differentiates it), on the same seeded data.

Each entry of PROBLEMS: name -> dict(make=data(), np_fun, jnp_fun) where the
funs take ``(params, *args)`` with ``args`` from ``data()['args']``.

The NumPy side (data and funs) uses no BLAS and no SIMD-dispatched ufunc
(``fixed_order``): the same bits on every CPU, so the stored iteration counts
are compared against the same problem everywhere.
"""
import numpy as np

try:
    from . import fixed_order as fo        # imported as reference.solver_problems
except ImportError:                        # as a top-level module (generators)
    import fixed_order as fo


def data(seed=0, n=60, d=12):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    w_true = rng.standard_normal(d) * (rng.random(d) < 0.5)
    y = fo.mv(X, w_true) + 0.1 * rng.standard_normal(n)
    labels = (fo.mv(X, w_true) + 0.3 * rng.standard_normal(n) > 0).astype(np.float64)
    return dict(X=X, y=y, labels=labels, d=d, n=n)


# ---- NumPy: (value, grad) ------------------------------------------------

def ridge_np(w, lam, X, y):
    """0.5/n ||Xw - y||^2 + 0.5 lam ||w||^2."""
    r = fo.mv(X, w) - y
    n = y.shape[0]
    return 0.5 * fo.vdot(r, r) / n + 0.5 * lam * fo.vdot(w, w), fo.rmv(X, r) / n + lam * w


def least_squares_np(w, X, y):
    """0.5/n ||Xw - y||^2 (the smooth part of the lasso and of the constrained problems)."""
    r = fo.mv(X, w) - y
    n = y.shape[0]
    return 0.5 * fo.vdot(r, r) / n, fo.rmv(X, r) / n


def logreg_np(w, lam, X, labels):
    """mean softplus(z) - labels * z + 0.5 lam ||w||^2 with z = Xw."""
    z = fo.mv(X, w)
    n = labels.shape[0]
    lse = np.logaddexp(0.0, z)         # libm log1p/exp in plain C: CPU-independent
    value = np.mean(lse - labels * z) + 0.5 * lam * fo.vdot(w, w)
    sig = fo.exp(z - lse)              # jax's derivative of logaddexp(0, z)
    return value, fo.rmv(X, sig - labels) / n + lam * w


def tree_ls_np(params, X, y):
    """A pytree version of least squares: params = {'w': (d,), 'b': ()}."""
    r = fo.mv(X, params["w"]) + params["b"] - y
    n = y.shape[0]
    return 0.5 * fo.vdot(r, r) / n, {"w": fo.rmv(X, r) / n, "b": np.sum(r) / n}


# ---- jax.numpy: value only ------------------------------------------------

def jnp_funs():
    import jax.numpy as jnp

    def ridge(w, lam, X, y):
        r = X @ w - y
        return 0.5 * (r @ r) / y.shape[0] + 0.5 * lam * (w @ w)

    def least_squares(w, X, y):
        r = X @ w - y
        return 0.5 * (r @ r) / y.shape[0]

    def logreg(w, lam, X, labels):
        z = X @ w
        return jnp.mean(jnp.logaddexp(0.0, z) - labels * z) + 0.5 * lam * (w @ w)

    def tree_ls(params, X, y):
        r = X @ params["w"] + params["b"] - y
        return 0.5 * (r @ r) / y.shape[0]

    return dict(ridge=ridge, least_squares=least_squares, logreg=logreg, tree_ls=tree_ls)


NP_FUNS = dict(ridge=ridge_np, least_squares=least_squares_np, logreg=logreg_np,
               tree_ls=tree_ls_np)


def args_of(fun_name, D):
    return {"ridge": (0.1, D["X"], D["y"]), "least_squares": (D["X"], D["y"]),
            "logreg": (0.05, D["X"], D["labels"]), "tree_ls": (D["X"], D["y"])}[fun_name]


# name -> (solver class name, solver kwargs, fun name, kind, hyperparams)
#   kind: "plain" (GradientDescent: run(x0, *args)), "prox" (run(x0, hyper, *args)),
#   "proj" (run(x0, hyper, *args)); hyperparams: python literal evaluated with np
CASES = {
    "gd_ridge": ("GradientDescent", dict(tol=1e-8, maxiter=500), "ridge", "plain", None),
    "gd_ridge_noaccel_fixed": ("GradientDescent",
                               dict(tol=1e-8, maxiter=2000, acceleration=False, stepsize=0.3),
                               "ridge", "plain", None),
    "gd_ridge_noaccel_ls": ("GradientDescent", dict(tol=1e-8, maxiter=2000, acceleration=False),
                            "ridge", "plain", None),
    # tol 1e-6, not 1e-9: closer to the optimum the line search's sufficient
    # decrease test compares quantities at the rounding level of the value, so
    # the accepted steps (and the iteration count: 66 vs 67) depend on the
    # summation order of the loss, not on the algorithm.
    "gd_logreg": ("GradientDescent", dict(tol=1e-6, maxiter=1000), "logreg", "plain", None),
    "gd_tree": ("GradientDescent", dict(tol=1e-8, maxiter=1000), "tree_ls", "plain", None),
    # FISTA + line search: tol 1e-7 for the same reason (at ~5e-9 the
    # line search's decision is decided by rounding: jaxopt halves the step at
    # iteration 57 of the lasso and npopt does not, or the other way round).
    "pg_lasso": ("ProximalGradient", dict(tol=1e-7, maxiter=2000), "least_squares", "prox_lasso",
                 "0.05"),
    "pg_lasso_noaccel": ("ProximalGradient", dict(tol=1e-9, maxiter=5000, acceleration=False),
                         "least_squares", "prox_lasso", "0.05"),
    "pg_elastic_net": ("ProximalGradient", dict(tol=1e-7, maxiter=2000), "least_squares",
                       "prox_elastic_net", "(0.05, 0.5)"),
    "proj_simplex": ("ProjectedGradient", dict(tol=1e-7, maxiter=2000), "least_squares",
                     "projection_simplex", "1.0"),
    "proj_box": ("ProjectedGradient", dict(tol=1e-7, maxiter=2000), "least_squares",
                 "projection_box", "(np.full(12, -0.2), np.full(12, 0.3))"),
    "proj_box_fixed": ("ProjectedGradient", dict(tol=1e-9, maxiter=5000, stepsize=0.2,
                                                 acceleration=False),
                       "least_squares", "projection_box", "(-0.2, 0.3)"),
}


def init_params(fun_name, D):
    if fun_name == "tree_ls":
        return {"w": np.zeros(D["d"]), "b": np.asarray(0.0)}
    return np.zeros(D["d"])


# ---- stochastic solvers: fixed minibatches through run_iterator ------------

def batches(seed=1, n_batches=12, batch=20, d=12):
    """A list of (X, labels) minibatches of a logistic regression problem."""
    rng = np.random.default_rng(seed)
    w_true = rng.standard_normal(d)
    out = []
    for _ in range(n_batches):
        X = rng.standard_normal((batch, d))
        out.append((X, (fo.mv(X, w_true) + 0.5 * rng.standard_normal(batch) > 0)
                    .astype(np.float64)))
    return out


def batch_logreg_np(w, l2reg, data):
    """logreg_np on one minibatch (jaxopt's stochastic convention: data=batch)."""
    X, labels = data
    return logreg_np(w, l2reg, X, labels)


def batch_logreg_jnp():
    logreg = jnp_funs()["logreg"]

    def fun(w, l2reg, data):
        X, labels = data
        return logreg(w, l2reg, X, labels)
    return fun


# name -> (solver class, solver kwargs (python literal strings allowed for opt), epochs)
STOCH_CASES = {
    "polyak_sgd": ("PolyakSGD", dict(maxiter=30, max_stepsize=0.5), 3),
    "polyak_sgd_momentum_plus": ("PolyakSGD", dict(maxiter=30, momentum=0.5, variant="SPS+",
                                                   fun_min=0.1), 3),
    "armijo_sgd": ("ArmijoSGD", dict(maxiter=30), 3),
    "armijo_sgd_goldstein_momentum": ("ArmijoSGD", dict(maxiter=30, reset_option="goldstein",
                                                        momentum=0.3), 3),
    "optax_adam": ("OptaxSolver", dict(maxiter=30, opt="ox.adam(0.05)"), 3),
    "optax_sgd_maxiter": ("OptaxSolver", dict(maxiter=17, opt="ox.sgd(0.3, momentum=0.9)"), 3),
}
STOCH_L2REG = 0.01


# ---- mirror descent: exponentiated gradient on the simplex -----------------

def softmax_np(x, hyperparams=None):
    """The KL (entropic) projection of exp(x) onto the simplex."""
    e = fo.exp(x - np.max(x))
    return e / np.sum(e)


# name -> (stepsize, maxiter, tol); problem: least_squares over the simplex
MIRROR_CASES = {
    "mirror_eg": (0.5, 500, 1e-6),
    "mirror_eg_short": (1.0, 20, 1e-9),
}


# ---- block coordinate descent (npopt.objective / jaxopt.objective) ---------

# name -> (objective name, block prox name, hyperparams literal, maxiter, tol, params shape)
BCD_CASES = {
    "bcd_lasso": ("least_squares", "prox_lasso", "0.05", 200, 1e-8, (12,)),
    "bcd_elastic_net": ("least_squares", "prox_elastic_net", "(0.05, 0.5)", 200, 1e-8, (12,)),
    "bcd_group_lasso_multiclass": ("multiclass_logreg", "prox_group_lasso", "0.02", 200, 1e-6,
                                   (12, 3)),
}


def bcd_data(name, D):
    if name == "multiclass_logreg":
        y = (np.digitize(D["X"][:, 0] + 0.5 * D["X"][:, 1], [-0.5, 0.5])).astype(np.int64)
        return (D["X"], y)
    return (D["X"], D["y"])
