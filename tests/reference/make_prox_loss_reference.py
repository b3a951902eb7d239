"""Reference values of jaxopt 0.8.5's prox, loss and objective modules
(tests/reference/data/jaxopt/prox_loss.npz). Needs jax + jaxopt; x64.

    python tests/reference/make_prox_loss_reference.py

``CASES`` (importable without JAX; tests/test_prox.py and
tests/test_loss_objective.py use it) maps a case name to:

* ``kind``: "prox", "loss" or "objective";
* ``inputs(rng)``: a dict of arrays; float64 arrays are cast to each dtype,
  integer arrays (labels) are kept. A key ``"x.a.b"`` is the leaf ``['a']['b']``
  of the pytree input ``x`` (see ``tree``);
* ``call(ns, I)``: the npopt call, with ``ns.prox`` / ``ns.loss`` /
  ``ns.objective`` the npopt modules. Prox cases return the output pytree;
  loss and objective cases return ``(value, grad)`` through npopt's
  ``*_value_and_grad`` functions;
* ``jax_call(jx, I)``: the jaxopt side, with ``jx.prox`` / ``jx.loss`` /
  ``jx.objective`` jaxopt's modules and ``jx.jax`` jax. Prox cases call the
  same function (eagerly; jitted gives the same numbers to an ulp). Loss
  cases: ``jax.vmap`` of the per-sample loss and of ``jax.grad(loss,
  argnums=1)`` (binary losses, huber and sparse_plus are elementwise).
  Objective cases: ``jax.jit(jax.value_and_grad(fun))``.

The npz holds ``{dtype}/{case}/in/{name}`` and ``{dtype}/{case}/out/{i}``
(output leaves in JAX order: value first, then the gradient's leaves).
Inputs include the kinks that pin down JAX's subgradient conventions
(``max(a, b)`` halves the derivative at ``a == b``, ``jnp.max`` shares it
among ties).
"""
import os
import sys
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data", "jaxopt", "prox_loss.npz")
DTYPES = ("float32", "float64")


def tree(I, prefix):
    """The pytree input ``prefix``: nested dicts from keys ``prefix.a.b``."""
    out = {}
    for k, v in I.items():
        if not k.startswith(prefix + "."):
            continue
        path = k.split(".")[1:]
        d = out
        for p in path[:-1]:
            d = d.setdefault(p, {})
        d[path[-1]] = v
    return out


def _x_tree(rng, name="x", scale=2.0, positive=False):
    """A pytree {'a': (4, 3), 'b': {'c': (6,), 'd': ()}}."""
    shapes = {"a": (4, 3), "b.c": (6,), "b.d": ()}
    if positive:
        return {f"{name}.{k}": rng.uniform(0.1, 1.5, s) for k, s in shapes.items()}
    return {f"{name}.{k}": scale * rng.standard_normal(s) for k, s in shapes.items()}


def _case(kind, inputs, call, jax_call=None):
    return dict(kind=kind, inputs=inputs, call=call, jax_call=jax_call or call)


# ---------------------------------------------------------------------------
# prox
# ---------------------------------------------------------------------------

def _prox(fn, hp=None, scaling=None, hp_tree=None, x_single=False):
    """prox case: ``fn(x, hp, scaling)``; hp may be built from pytree inputs."""
    def inputs(rng):
        I = {"x.v": 2.0 * rng.standard_normal(7)} if x_single else _x_tree(rng)
        if hp_tree == "single":
            I["h.v"] = rng.uniform(0.1, 1.5, 7)
        elif hp_tree:
            for name in hp_tree:
                I.update(_x_tree(rng, name, positive=True))
        return I

    def call(ns, I):
        x = tree(I, "x")["v"] if x_single else tree(I, "x")
        if isinstance(hp, str):    # "default": jaxopt's default hyperparams
            args = (x,)
        else:
            args = (x, hp(I) if callable(hp) else hp)
        if scaling is not None:
            args = args + (scaling,)
        return getattr(ns.prox, fn)(*args)
    return _case("prox", inputs, call)


PROX_CASES = {
    "prox_none": _prox("prox_none", "default"),
    "prox_lasso_default": _prox("prox_lasso", "default"),
    "prox_lasso_scalar": _prox("prox_lasso", 0.7, 0.5),
    "prox_lasso_tree": _prox("prox_lasso", lambda I: tree(I, "l1"), 1.3, hp_tree=("l1",)),
    "prox_non_negative_lasso_default": _prox("prox_non_negative_lasso", "default"),
    "prox_non_negative_lasso_scalar": _prox("prox_non_negative_lasso", 0.3, 2.0),
    # jaxopt takes an array l1reg here only when x is a single array
    "prox_non_negative_lasso_array": _prox("prox_non_negative_lasso",
                                           lambda I: tree(I, "h")["v"], 0.8,
                                           hp_tree="single", x_single=True),
    "prox_elastic_net_default": _prox("prox_elastic_net", "default"),
    "prox_elastic_net_scalar": _prox("prox_elastic_net", (0.5, 2.0), 0.7),
    "prox_elastic_net_tree": _prox("prox_elastic_net",
                                   lambda I: (tree(I, "lam"), tree(I, "gam")), 0.7,
                                   hp_tree=("lam", "gam")),
    "prox_elastic_net_mixed": _prox("prox_elastic_net", lambda I: (0.4, tree(I, "gam")), 1.5,
                                    hp_tree=("gam",)),
    "prox_group_lasso_default": _prox("prox_group_lasso", "default"),
    "prox_group_lasso_shrink": _prox("prox_group_lasso", 0.5, 3.0),
    "prox_group_lasso_to_zero": _prox("prox_group_lasso", 20.0, 1.0),
    "prox_ridge_default": _prox("prox_ridge", "default"),
    "prox_ridge_scalar": _prox("prox_ridge", 2.0, 0.25),
    "prox_non_negative_ridge_default": _prox("prox_non_negative_ridge", "default"),
    "prox_non_negative_ridge_scalar": _prox("prox_non_negative_ridge", 0.5, 3.0),
}


# ---------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------

def _binary_inputs(rng):
    kinks = np.array([-1.0, 1.0, 0.0, -1.0, 1.0, 0.0, 2.0, -2.0, 40.0, -40.0, 40.0, -40.0])
    logit = np.concatenate([3.0 * rng.standard_normal(20), kinks])
    label = np.concatenate([rng.integers(0, 2, 20), [0, 0, 0, 1, 1, 1, 0, 1, 0, 0, 1, 1]])
    return {"label": label.astype(np.int64), "pred": logit}


def _multiclass_inputs(rng):
    k = 5
    scores = 2.0 * rng.standard_normal((12, k))
    special = np.array([
        [1.0, 1.0, 1.0, 0.0, 0.0],     # ties among the maxima
        [1.0, 1.0, 1.0, 0.0, 0.0],
        [2.0, 1.0, 1.0, 0.0, 0.0],     # hinge: scores + 1 - onehot ties three ways
        [30.0, 0.0, 0.0, 0.0, -1.0],   # near-certain prediction (softmax_y ~ 1)
        [0.0, 0.0, 0.0, 0.0, 0.0],
    ])
    label = np.concatenate([rng.integers(0, k, 12), [0, 2, 0, 0, 3]])
    return {"label": label.astype(np.int64), "pred": np.concatenate([scores, special])}


def _huber_inputs(rng):
    target = np.concatenate([rng.standard_normal(20), [0.0, 0.0, 0.0, 1.0, 0.5]])
    pred = np.concatenate([target[:20] + 2.0 * rng.standard_normal(20),
                           [1.0, -0.5, 0.0, 1.0, -1.5]])
    return {"label": target, "pred": pred}


def _sparse_inputs(rng):
    return {"pred": np.concatenate([2.0 * rng.standard_normal(20),
                                    [-1.0, 1.0, 0.0, -3.0, 3.0]])}


def _loss(fn, inputs, **kwargs):
    def call(ns, I):
        vg = getattr(ns.loss, fn + "_value_and_grad")
        if "label" in I:
            return vg(I["label"], I["pred"], **kwargs)
        return vg(I["pred"], **kwargs)

    def jax_call(jx, I):
        jax = jx.jax
        f = getattr(jx.loss, fn)
        if "label" in I:
            def f1(label, pred):
                return f(label, pred, **kwargs)
            return (jax.vmap(f1)(I["label"], I["pred"]),
                    jax.vmap(jax.grad(f1, argnums=1))(I["label"], I["pred"]))
        return jax.vmap(f)(I["pred"]), jax.vmap(jax.grad(f))(I["pred"])
    return _case("loss", inputs, call, jax_call)


LOSS_CASES = {
    "binary_logistic_loss": _loss("binary_logistic_loss", _binary_inputs),
    "binary_sparsemax_loss": _loss("binary_sparsemax_loss", _binary_inputs),
    "binary_hinge_loss": _loss("binary_hinge_loss", _binary_inputs),
    "binary_perceptron_loss": _loss("binary_perceptron_loss", _binary_inputs),
    "multiclass_logistic_loss": _loss("multiclass_logistic_loss", _multiclass_inputs),
    "multiclass_sparsemax_loss": _loss("multiclass_sparsemax_loss", _multiclass_inputs),
    "multiclass_hinge_loss": _loss("multiclass_hinge_loss", _multiclass_inputs),
    "multiclass_perceptron_loss": _loss("multiclass_perceptron_loss", _multiclass_inputs),
    "huber_loss": _loss("huber_loss", _huber_inputs),
    "huber_loss_delta": _loss("huber_loss", _huber_inputs, delta=0.5),
    "sparse_plus": _loss("sparse_plus", _sparse_inputs),
    "sparse_sigmoid": _loss("sparse_sigmoid", _sparse_inputs),
}


# ---------------------------------------------------------------------------
# objectives
# ---------------------------------------------------------------------------

N, D, K = 15, 4, 3


def _regression(rng, multi=False):
    X = rng.standard_normal((N, D))
    if multi:
        return {"W": rng.standard_normal((D, K)), "X": X, "y": rng.standard_normal((N, K))}
    return {"W": rng.standard_normal(D), "X": X, "y": rng.standard_normal(N)}


def _binary_data(rng):
    return {"W": rng.standard_normal(D), "X": rng.standard_normal((N, D)),
            "y": rng.integers(0, 2, N).astype(np.int64)}


def _multiclass_data(rng):
    return {"W": rng.standard_normal((D, K)), "b": rng.standard_normal(K),
            "X": rng.standard_normal((N, D)), "y": rng.integers(0, K, N).astype(np.int64)}


def _svm_data(rng):
    y = rng.integers(0, K, N)
    return {"W": rng.dirichlet(np.ones(K), N), "X": rng.standard_normal((N, D)),
            "y": np.eye(K)[y]}


def _objective(fn, inputs, l2reg=None, intercept=False):
    def args(I):
        params = (I["W"], I["b"]) if intercept else I["W"]
        rest = (I["X"], I["y"])
        return (params, rest) if l2reg is None else (params, l2reg, rest)

    def call(ns, I):
        return getattr(ns.objective, fn + "_value_and_grad")(*args(I))

    def jax_call(jx, I):
        f = getattr(jx.objective, fn)
        return jx.jax.jit(jx.jax.value_and_grad(f))(*args(I))
    return _case("objective", inputs, call, jax_call)


OBJECTIVE_CASES = {
    "least_squares": _objective("least_squares", _regression),
    "least_squares_multi": _objective("least_squares", lambda r: _regression(r, True)),
    "ridge_regression": _objective("ridge_regression", _regression, l2reg=0.3),
    "binary_logreg": _objective("binary_logreg", _binary_data),
    "multiclass_logreg": _objective("multiclass_logreg", _multiclass_data),
    "multiclass_logreg_with_intercept": _objective("multiclass_logreg_with_intercept",
                                                   _multiclass_data, intercept=True),
    "l2_multiclass_logreg": _objective("l2_multiclass_logreg", _multiclass_data, l2reg=0.2),
    "l2_multiclass_logreg_with_intercept": _objective(
        "l2_multiclass_logreg_with_intercept", _multiclass_data, l2reg=0.2, intercept=True),
    "multiclass_linear_svm_dual": _objective("multiclass_linear_svm_dual", _svm_data,
                                             l2reg=0.5),
}

CASES = {**PROX_CASES, **LOSS_CASES, **OBJECTIVE_CASES}


def case_inputs(name, dtype):
    """The inputs of a case, float arrays in ``dtype`` (integer labels kept)."""
    seed = sum(map(ord, name))          # stable across runs and Python versions
    I = CASES[name]["inputs"](np.random.default_rng(seed))
    return {k: (np.asarray(v, dtype) if np.asarray(v).dtype.kind == "f" else np.asarray(v))
            for k, v in I.items()}


def main():
    import jax
    jax.config.update("jax_enable_x64", True)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import jaxopt
        import jaxopt.version
        from jaxopt import loss, objective, prox
    jx = types.SimpleNamespace(jax=jax, prox=prox, loss=loss, objective=objective)
    out = {"meta": np.array(f"jax {jax.__version__}, jaxopt {jaxopt.version.__version__}, x64")}
    for name, case in CASES.items():
        for dtype in DTYPES:
            I = case_inputs(name, dtype)
            res = case["jax_call"](jx, I)
            leaves = jax.tree_util.tree_leaves(res)
            for k, v in I.items():
                out[f"{dtype}/{name}/in/{k}"] = v
            for i, v in enumerate(leaves):
                v = np.asarray(v)
                if not np.all(np.isfinite(v)):
                    sys.exit(f"{name} {dtype}: non-finite output")
                out[f"{dtype}/{name}/out/{i}"] = v
        print(f"{name:40s} {len(leaves)} output leaves")
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    np.savez_compressed(OUT, **out)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
