"""Reference values of optax 0.2.8's numeric transforms and helpers
(tests/reference/data/optax/numeric.npz). Needs jax + optax; x64.

    python tests/reference/make_numeric_reference.py            # all cases
    python tests/reference/make_numeric_reference.py nnls_vec   # some (the rest kept)

``CASES`` (importable without JAX; tests/test_numeric_transforms.py uses it)
maps a case name to:

* ``inputs(rng)``: a dict of float64 arrays (cast to each dtype);
* ``call(ns, I)``: the call, evaluated with ``ns`` = optax here and npopt in
  the tests (written with operations both array types have);
* ``jax_call(ns, I)`` (optional): the optax side where it differs (the
  second-order helpers: npopt needs the gradient that JAX derives);
* ``rtol``: ``{dtype: tolerance}``, the SPEC's 1e-5 / 1e-10 unless a
  finite difference stands in for JAX's autodiff (then about its error);
* ``dtypes``: the dtypes compared (all by default; optax's ``hessian_diag``
  fails on float32 params under x64: its ``jnp.eye`` tangents are float64).

The npz holds ``{dtype}/{case}/in/{name}`` and ``{dtype}/{case}/out/{i}``
(output leaves in JAX order).
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data", "optax", "numeric.npz")

try:
    from . import fixed_order as fo        # imported as reference.<this module>
except ImportError:                        # run as a script
    sys.path.insert(0, HERE)
    import fixed_order as fo

DTYPES = ("float32", "float64")
LOOSE = {"float32": 1e-5, "float64": 1e-10}


def _case(inputs, call, jax_call=None, rtol=None, dtypes=DTYPES):
    return dict(inputs=inputs, call=call, jax_call=jax_call, rtol=rtol or dict(LOOSE),
                dtypes=dtypes)


def _tree(I, prefix):
    """{'a': I[prefix + '.a'], ...} (a pytree input)."""
    return {k.split(".", 1)[1]: v for k, v in I.items() if k.startswith(prefix + ".")}


def _update(tx, u, p=None):
    """The updates of one ``tx.update`` from a fresh state."""
    state = tx.init(u if p is None else p)
    return tx.update(u, state, p)[0]


def _spd(rng, n, spread=3.0):
    """A symmetric positive definite matrix with eigenvalues in [1, 1 + spread*...],
    well separated (power iteration converges fast)."""
    q, _ = fo.qr(rng.standard_normal((n, n)))
    ev = 1.0 + spread * np.arange(n) ** 1.5
    return fo.mm(q * ev, q.T)


def _grads_tree(rng):
    # some units above the clip, some below
    return {"g.a": rng.standard_normal((4, 3)) * np.array([0.01, 1.0, 0.1]),
            "g.b": rng.standard_normal(5) * 0.2, "g.c": np.array(0.3),
            "p.a": rng.standard_normal((4, 3)), "p.b": rng.standard_normal(5),
            "p.c": np.array(-2.0)}


def _per_example(rng, b=8):
    scale = np.geomspace(0.05, 5.0, b)          # examples from well below to well above 1
    return {"g.a": rng.standard_normal((b, 3, 4)) * scale[:, None, None] / 3,
            "g.b": rng.standard_normal((b, 5)) * scale[:, None] / 3,
            "g.c": rng.standard_normal(b) * scale / 3}


# the second-order helpers: a loss both array types can evaluate, and its
# gradient in NumPy (what an npopt user hands in)
def _loss(p, X, y):
    r = (X * p["w"]).sum(axis=1) + p["b"] - y
    return (r * r).mean() + 0.1 * (p["w"] ** 4).sum()


def _grad(p, X, y):
    r = (X * p["w"]).sum(axis=1) + p["b"] - y
    n = r.shape[0]
    return {"b": 2.0 * r.sum() / n, "w": 2.0 * (X * r[:, None]).sum(axis=0) / n
            + 0.4 * p["w"] ** 3}


def _hvp_exact(p, v, X, y):
    n = X.shape[0]
    Xv = (X * v["w"]).sum(axis=1) + v["b"]
    return {"b": 2.0 * Xv.sum() / n,
            "w": 2.0 * (X * Xv[:, None]).sum(axis=0) / n + 1.2 * p["w"] ** 2 * v["w"]}


def _second_inputs(rng):
    return {"p.w": rng.standard_normal(3), "p.b": np.array(0.5),
            "X": rng.standard_normal((6, 3)), "y": rng.standard_normal(6),
            "v": rng.standard_normal(4)}


_SO = lambda I: (_tree(I, "p"), I["X"], I["y"])  # noqa: E731
# finite differences stand in for JAX's autodiff: central differences of the
# gradient are ~eps/h = eps^(2/3) relative (4e-11 / 2e-5), second
# differences of the loss ~eps^(1/2) (1e-8 / 3e-4)
_FD1 = {"float32": 2e-3, "float64": 1e-8}
_FD2 = {"float32": 3e-2, "float64": 1e-6}

CASES = {
    # --- centralize / normalize_by_update_norm --------------------------
    "centralize_tree": _case(
        lambda r: {"g.a": r.standard_normal((3, 4, 5)), "g.b": r.standard_normal(7),
                   "g.c": np.array(1.5), "g.d": r.standard_normal((6, 2))},
        lambda ns, I: _update(ns.centralize(), _tree(I, "g"))),
    "normalize_default": _case(
        lambda r: {"g.a": r.standard_normal((3, 4)), "g.b": r.standard_normal(5)},
        lambda ns, I: _update(ns.normalize_by_update_norm(), _tree(I, "g"))),
    "normalize_scaled": _case(
        lambda r: {"g.a": 1e-3 * r.standard_normal((3, 4)), "g.b": 1e-3 * r.standard_normal(5)},
        lambda ns, I: _update(ns.normalize_by_update_norm(scale_factor=2.5, eps=1e-3),
                              _tree(I, "g"))),
    # --- unit-wise norms and AGC ----------------------------------------
    "unitwise_norm_ranks": _case(
        lambda r: {"x0": np.array(-1.5), "x1": r.standard_normal(7),
                   "x1b": r.standard_normal((1, 6, 1)), "x2": r.standard_normal((4, 3)),
                   "x3": r.standard_normal((2, 3, 4)), "x4": r.standard_normal((2, 2, 3, 4)),
                   "x5": r.standard_normal((2, 2, 2, 3, 2))},
        lambda ns, I: [ns.transforms.unitwise_norm(I[k]) for k in
                       ("x0", "x1", "x1b", "x2", "x3", "x4", "x5")]),
    "unitwise_norm_axis": _case(
        lambda r: {"x": r.standard_normal((3, 4, 5))},
        lambda ns, I: [ns.transforms.unitwise_norm(I["x"], axis=a)
                       for a in (1, (0, 2), -1, (0, 1, 2))]),
    "unitwise_clip": _case(
        lambda r: {"g": r.standard_normal((4, 3)), "n": r.uniform(0.5, 1.5, (4, 3)),
                   "m": r.uniform(0.5, 1.5, (4, 3))},
        lambda ns, I: ns.transforms.unitwise_clip(I["n"], I["m"], I["g"])),
    "agc_tree": _case(
        _grads_tree,
        lambda ns, I: _update(ns.adaptive_grad_clip(0.05), _tree(I, "g"), _tree(I, "p"))),
    "agc_eps_axis": _case(
        lambda r: {"g.a": r.standard_normal((3, 4, 2)), "g.b": r.standard_normal((2, 5)),
                   "p.a": np.where(r.uniform(size=(3, 4, 2)) < 0.3, 0.0,
                                   r.standard_normal((3, 4, 2))),
                   "p.b": np.zeros((2, 5))},
        lambda ns, I: _update(ns.adaptive_grad_clip(0.5, eps=0.1, axis=(0, 1)),
                              _tree(I, "g"), _tree(I, "p"))),
    "agc_conv": _case(
        lambda r: {"g.k4": r.standard_normal((3, 3, 2, 4)),
                   "g.k5": r.standard_normal((2, 2, 2, 2, 3)),
                   "p.k4": r.standard_normal((3, 3, 2, 4)),
                   "p.k5": r.standard_normal((2, 2, 2, 2, 3))},
        lambda ns, I: _update(ns.adaptive_grad_clip(0.3), _tree(I, "g"), _tree(I, "p"))),
    # --- keep_params_nonnegative ----------------------------------------
    "nonneg_tree": _case(
        lambda r: {"u.a": r.standard_normal((4, 5)), "u.b": r.standard_normal(6),
                   "p.a": np.abs(r.standard_normal((4, 5))),
                   "p.b": np.concatenate([[-0.5], np.abs(r.standard_normal(5))])},
        lambda ns, I: _update(ns.keep_params_nonnegative(), _tree(I, "u"), _tree(I, "p"))),
    # --- per-example clipping -------------------------------------------
    "per_example_global": _case(
        _per_example, lambda ns, I: ns.per_example_global_norm_clip(_tree(I, "g"), 1.0)),
    "per_example_global_small": _case(
        _per_example, lambda ns, I: ns.per_example_global_norm_clip(_tree(I, "g"), 0.05)),
    "per_example_layer_uniform": _case(
        _per_example, lambda ns, I: ns.per_example_layer_norm_clip(_tree(I, "g"), 1.0)),
    "per_example_layer_sizes": _case(
        _per_example,
        lambda ns, I: ns.per_example_layer_norm_clip(_tree(I, "g"), 2.0, uniform=False)),
    # --- safe norms -----------------------------------------------------
    "safe_norm_default": _case(
        lambda r: {"x": r.standard_normal((3, 4)), "z": np.zeros(5)},
        lambda ns, I: [ns.safe_norm(I["x"], 0.1), ns.safe_norm(I["x"], 100.0),
                       ns.safe_norm(I["z"], 1e-3), ns.safe_norm(I["x"], 0.1, keepdims=True)]),
    "safe_norm_ords": _case(
        lambda r: {"x": r.standard_normal((3, 4)), "v": r.standard_normal(6)},
        lambda ns, I: [ns.safe_norm(I["x"], 0.5, ord=o, axis=a)
                       for o, a in ((1, 0), (np.inf, 1), (-np.inf, 0), (3, 1), (0.5, 0),
                                    ("fro", (0, 1)), ("nuc", None), (2, None), (-2, None),
                                    (1, None), (np.inf, None), (-1, None))]
        + [ns.safe_norm(I["v"], 0.1, ord=o) for o in (1, 2, np.inf, -np.inf, 3, 0)]),
    "safe_norm_axes": _case(
        lambda r: {"x": r.standard_normal((2, 3, 4))},
        lambda ns, I: [ns.safe_norm(I["x"], 1.0, axis=1), ns.safe_norm(I["x"], 0.0, axis=(0, 2)),
                       ns.safe_norm(I["x"], 2.0, axis=(2, 1), keepdims=True),
                       ns.safe_norm(I["x"], 0.0, ord=1, axis=(0, 2)),
                       ns.safe_norm(I["x"], 0.0, ord="nuc", axis=(1, 2))]),
    "safe_rms": _case(
        lambda r: {"x": r.standard_normal((3, 4)), "z": np.zeros(3)},
        lambda ns, I: [ns.safe_root_mean_squares(I["x"], 0.1),
                       ns.safe_root_mean_squares(I["x"], 10.0),
                       ns.safe_root_mean_squares(I["z"], 1e-3)]),
    # --- power iteration, inverse p-th root, nnls -------------------------
    "power_iteration_v0": _case(
        lambda r: {"A": _spd(r, 6), "v0": r.uniform(-1, 1, 6)},
        lambda ns, I: ns.power_iteration(I["A"], v0=I["v0"])),
    "power_iteration_few": _case(
        lambda r: {"A": _spd(r, 5, 0.3), "v0": r.uniform(-1, 1, 5)},
        lambda ns, I: ns.power_iteration(I["A"], v0=I["v0"], num_iters=3)),
    "power_iteration_callable": _case(
        lambda r: {"d.a": r.uniform(0.1, 1.0, 4), "d.b": np.array([3.0, 0.2]),
                   "v.a": r.uniform(-1, 1, 4), "v.b": r.uniform(-1, 1, 2)},
        lambda ns, I: ns.power_iteration(
            lambda v: {"a": I["d.a"] * v["a"], "b": I["d.b"] * v["b"]}, v0=_tree(I, "v"),
            error_tolerance=1e-5)),
    "inv_pth_root_p2": _case(
        lambda r: {"A": _spd(r, 5, 0.5)},
        lambda ns, I: ns.matrix_inverse_pth_root(I["A"], 2)[0]),
    "inv_pth_root_p4": _case(
        lambda r: {"A": _spd(r, 4, 1.0)},
        lambda ns, I: ns.matrix_inverse_pth_root(I["A"], 4, ridge_epsilon=1e-4)[0]),
    "inv_pth_root_p1": _case(
        lambda r: {"A": _spd(r, 3, 0.5)},
        lambda ns, I: ns.matrix_inverse_pth_root(I["A"], 1)[0]),
    "inv_pth_root_p8_few": _case(
        lambda r: {"A": _spd(r, 4, 0.5)},
        lambda ns, I: ns.matrix_inverse_pth_root(I["A"], 8, num_iters=3)[0]),
    "inv_pth_root_1x1": _case(
        lambda r: {"A": np.array([[2.5]])},
        lambda ns, I: ns.matrix_inverse_pth_root(I["A"], 4)),
    "nnls_vec": _case(
        lambda r: {"A": r.standard_normal((8, 5)), "b": r.standard_normal(8)},
        lambda ns, I: ns.nnls(I["A"], I["b"], 60)),
    "nnls_mat_L": _case(
        lambda r: {"A": r.standard_normal((7, 4)), "b": r.standard_normal((7, 3))},
        lambda ns, I: [ns.nnls(I["A"], I["b"], 40), ns.nnls(I["A"], I["b"], 25, L=30.0)]),
    # --- multi_normal -----------------------------------------------------
    "multi_normal_log_prob": _case(
        lambda r: {"loc": r.standard_normal((3, 4)), "ls": 0.3 * r.standard_normal(4),
                   "x": r.standard_normal((5, 3, 4))},
        lambda ns, I: [ns.multi_normal(I["loc"], I["ls"]).log_prob(I["x"]),
                       ns.multi_normal(I["loc"], I["ls"]).log_prob(I["x"][0])]),
    # --- second order (optax: autodiff; npopt: grad_fn / hvp_fn / differences)
    "hvp_grad_fn": _case(
        _second_inputs,
        lambda ns, I: ns.second_order.hvp(_loss, I["v"], *_SO(I), grad_fn=_grad),
        jax_call=lambda ns, I: ns.second_order.hvp(_loss, I["v"], *_SO(I)), rtol=_FD1),
    "hvp_exact": _case(
        _second_inputs,
        lambda ns, I: ns.second_order.hvp(_loss, I["v"], *_SO(I), hvp_fn=_hvp_exact),
        jax_call=lambda ns, I: ns.second_order.hvp(_loss, I["v"], *_SO(I))),
    "hessian_diag_grad_fn": _case(
        _second_inputs,
        lambda ns, I: ns.second_order.hessian_diag(_loss, *_SO(I), grad_fn=_grad),
        jax_call=lambda ns, I: ns.second_order.hessian_diag(_loss, *_SO(I)), rtol=_FD1,
        dtypes=("float64",)),
    "hessian_diag_loss": _case(
        _second_inputs,
        lambda ns, I: ns.second_order.hessian_diag(_loss, *_SO(I)),
        jax_call=lambda ns, I: ns.second_order.hessian_diag(_loss, *_SO(I)), rtol=_FD2,
        dtypes=("float64",)),
    "fisher_diag_grad_fn": _case(
        _second_inputs,
        lambda ns, I: ns.second_order.fisher_diag(_loss, *_SO(I), grad_fn=_grad),
        jax_call=lambda ns, I: ns.second_order.fisher_diag(_loss, *_SO(I))),
    "fisher_diag_loss": _case(
        _second_inputs,
        lambda ns, I: ns.second_order.fisher_diag(_loss, *_SO(I)),
        jax_call=lambda ns, I: ns.second_order.fisher_diag(_loss, *_SO(I)), rtol=_FD1),
}


def case_inputs(name, dtype):
    """The case's inputs (float64 from a per-case seed), cast to ``dtype``."""
    seed = sum(ord(ch) * (i + 1) for i, ch in enumerate(name)) % (2 ** 31)
    raw = CASES[name]["inputs"](np.random.default_rng(seed))
    return {k: np.asarray(v, dtype) for k, v in raw.items()}


def main(names=None):
    import warnings

    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import optax
    from importlib.metadata import version

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    unknown = [n for n in names or () if n not in CASES]
    if unknown:
        raise SystemExit(f"unknown case(s): {unknown}")
    arrays = {}
    if names and os.path.exists(OUT):          # regenerate some cases, keep the rest
        with np.load(OUT) as old:
            arrays = {k: old[k] for k in old.files
                      if k.split("/")[1] not in names and k != "meta/versions"}
    ns = optax
    for name in names or CASES:
        case = CASES[name]
        call = case["jax_call"] or case["call"]
        for dt in case["dtypes"]:
            I = case_inputs(name, dt)
            out = call(ns, {k: jnp.asarray(v) for k, v in I.items()})
            leaves = [np.asarray(v) for v in jax.tree_util.tree_leaves(out)]
            for k, v in I.items():
                arrays[f"{dt}/{name}/in/{k}"] = v
            for i, v in enumerate(leaves):
                arrays[f"{dt}/{name}/out/{i}"] = v
            print(f"{name:28s} {dt}: {len(leaves)} leaves, dtypes "
                  f"{sorted({str(v.dtype) for v in leaves})}, "
                  f"max |out| {max(float(np.max(np.abs(v), initial=0)) for v in leaves):.4g}")
    arrays["meta/versions"] = np.array(
        [f"jax {version('jax')}", f"optax {version('optax')}", "jax_enable_x64"])
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main(sys.argv[1:] or None)
