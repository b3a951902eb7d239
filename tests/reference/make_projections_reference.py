"""Reference values of optax 0.2.8's ``optax.projections``
(tests/reference/data/optax/projections.npz). Needs jax + optax; x64.

    python tests/reference/make_projections_reference.py [case ...]

``CASES`` (importable without JAX; tests/test_projections.py uses it) maps a
case name to ``dict(inputs=..., call=..., differs=...)``:

* ``inputs(rng)``: a dict of float64 arrays, cast to each dtype (float32,
  float64) before the call; a name ending in ``@f64`` stays float64 in both
  (trees of mixed dtypes);
* ``call(P, I)``: the call, evaluated with ``P`` = ``optax.projections`` here
  and ``npopt.projections`` in the tests; pytrees are rebuilt from the inputs
  by ``nested`` (a dict holding a list holding a dict, and a 0-d leaf);
* ``jax_call(P, I)`` (optional): the optax side where optax's own call fails:
  ``projection_l1_ball`` raises under x64 on float32 trees (the two branches
  of its ``lax.cond`` return float32 and float64 leaves); there the generator
  runs optax's definition with a Python ``if`` (checked to give optax's
  numbers in float64, to 1e-14: eager ops vs the compiled cond);
* ``differs``: a short reason where npopt's answer differs from optax's on
  purpose (see ``npopt/projections/__init__.py``); the test checks the
  documented answer there instead of optax's.

The npz holds ``{dtype}/{case}/in/{name}``, ``{dtype}/{case}/out/{i}``
(output leaves in JAX order, with the dtypes optax gives them) and
``meta/signatures``: a JSON string of the parameters (name, kind, default
repr) of every function of ``optax.projections``.
"""
import json
import os
import sys
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data", "optax", "projections.npz")
DTYPES = ("float32", "float64")
NAMES = ("projection_box", "projection_halfspace", "projection_hypercube",
         "projection_hyperplane", "projection_l1_ball", "projection_l1_sphere",
         "projection_l2_ball", "projection_l2_sphere", "projection_linf_ball",
         "projection_non_negative", "projection_simplex", "projection_vector")


def nested(I, p):
    """The pytree ``{'b': [I[p.b0], {'c': I[p.c]}], 'w': I[p.w], 's': I[p.s]}``
    (``@f64`` names too) from the inputs with prefix ``p``."""
    def get(k):
        return I[f"{p}.{k}"] if f"{p}.{k}" in I else I[f"{p}.{k}@f64"]
    return {"b": [get("b0"), {"c": get("c")}], "w": get("w"), "s": get("s")}


def _tree(rng, p, scale=1.0, f64=()):
    shapes = {"b0": (3,), "c": (2, 2), "w": (4,), "s": ()}
    return {f"{p}.{k}" + ("@f64" if k in f64 else ""): scale * rng.standard_normal(s)
            for k, s in shapes.items()}


def _no_zero_tree(rng, p, scale=1.0):
    t = _tree(rng, p, scale)
    return {k: np.where(np.abs(v) < 0.05, 0.5, v) for k, v in t.items()}


def _case(inputs, call, differs=None, jax_call=None):
    return dict(inputs=inputs, call=call, differs=differs, jax_call=jax_call)


def _l1_ball_by_branch(P, tree, scale=1):
    """optax's projection_l1_ball with a Python ``if`` for its ``lax.cond``: under
    x64 optax's own raises on float32 trees (its l1-sphere branch returns
    float64 leaves, the identity branch float32 ones)."""
    import jax
    import jax.numpy as jnp
    l1 = sum(jnp.sum(jnp.abs(v)) for v in jax.tree_util.tree_leaves(tree))
    return tree if l1 <= scale else P.projection_l1_sphere(tree, scale)


def _zeros_tree(p):
    return {f"{p}.b0": np.zeros(3), f"{p}.c": np.zeros((2, 2)), f"{p}.w": np.zeros(4),
            f"{p}.s": np.zeros(())}


CASES = {
    # --- elementwise -----------------------------------------------------------
    "non_negative_nested": _case(
        lambda r: _tree(r, "x"), lambda P, I: P.projection_non_negative(nested(I, "x"))),
    "box_array_scalars": _case(
        lambda r: {"x": r.standard_normal(9)},
        lambda P, I: P.projection_box(I["x"], -0.5, 0.7)),
    "box_nested": _case(
        lambda r: {**_tree(r, "x", 2.0), **{k.replace("x.", "lo."): -np.abs(v) for k, v in
                                            _tree(r, "x").items()},
                   **{k.replace("x.", "hi."): np.abs(v) for k, v in _tree(r, "x").items()}},
        lambda P, I: P.projection_box(nested(I, "x"), nested(I, "lo"), nested(I, "hi"))),
    "box_inside": _case(
        lambda r: {"x": r.uniform(-0.5, 0.5, size=(2, 3))},
        lambda P, I: P.projection_box(I["x"], -1.0, 1.0)),
    "hypercube_default": _case(
        lambda r: {"x": 2 * r.standard_normal(9)},
        lambda P, I: P.projection_hypercube(I["x"])),
    "hypercube_scale": _case(
        lambda r: {"x": 3 * r.standard_normal((3, 3))},
        lambda P, I: P.projection_hypercube(I["x"], 2.5)),
    "linf_ball_nested": _case(
        lambda r: _tree(r, "x"), lambda P, I: P.projection_linf_ball(nested(I, "x"), 0.5)),
    "linf_ball_default": _case(
        lambda r: {"x": 2 * r.standard_normal(7)},
        lambda P, I: P.projection_linf_ball(I["x"])),
    # --- simplex ---------------------------------------------------------------
    "simplex_default": _case(
        lambda r: {"x": r.standard_normal(10)}, lambda P, I: P.projection_simplex(I["x"])),
    "simplex_nested_scale": _case(
        lambda r: _tree(r, "x", 2.0), lambda P, I: P.projection_simplex(nested(I, "x"), 2.5)),
    "simplex_ties": _case(
        lambda r: {"x": np.array([0.5, 0.2, 0.5, -0.1, 0.2, 0.5, 0.0])},
        lambda P, I: P.projection_simplex(I["x"])),
    "simplex_all_equal": _case(
        lambda r: {"x": np.full(6, 0.75)}, lambda P, I: P.projection_simplex(I["x"])),
    "simplex_inside": _case(
        lambda r: {"x": np.array([0.25, 0.5, 0.125, 0.125])},
        lambda P, I: P.projection_simplex(I["x"])),
    "simplex_zero": _case(
        lambda r: _zeros_tree("x"), lambda P, I: P.projection_simplex(nested(I, "x"))),
    "simplex_large": _case(
        lambda r: {"x": r.standard_normal(200)}, lambda P, I: P.projection_simplex(I["x"], 3.0)),
    "simplex_0d": _case(
        lambda r: {"x": np.array(-3.25)}, lambda P, I: P.projection_simplex(I["x"], 2.0)),
    "simplex_mixed_dtypes": _case(
        lambda r: _tree(r, "x", f64=("c", "s")),
        lambda P, I: P.projection_simplex(nested(I, "x"))),
    # --- l1 --------------------------------------------------------------------
    "l1_sphere_nested": _case(
        lambda r: _no_zero_tree(r, "x"), lambda P, I: P.projection_l1_sphere(nested(I, "x"), 2.0)),
    "l1_sphere_grow": _case(        # ||x||_1 < scale, no zero entry: agrees with optax
        lambda r: _no_zero_tree(r, "x", 0.1),
        lambda P, I: P.projection_l1_sphere(nested(I, "x"), 5.0)),
    "l1_sphere_zeros_outside": _case(   # zero entries, ||x||_1 > scale: agrees
        lambda r: {"x": np.array([0.0, 2.0, -1.5, 0.0, 0.25])},
        lambda P, I: P.projection_l1_sphere(I["x"])),
    "l1_sphere_zeros_inside": _case(
        lambda r: {"x": np.array([0.0, 0.25, -0.125, 0.0])},
        lambda P, I: P.projection_l1_sphere(I["x"]),
        differs="sign +1 at zero entries: optax's result is not on the sphere"),
    "l1_ball_outside": _case(
        lambda r: _tree(r, "x"), lambda P, I: P.projection_l1_ball(nested(I, "x"), 1.5),
        jax_call=lambda P, I: _l1_ball_by_branch(P, nested(I, "x"), 1.5)),
    "l1_ball_inside": _case(
        lambda r: _tree(r, "x", 0.05), lambda P, I: P.projection_l1_ball(nested(I, "x")),
        jax_call=lambda P, I: _l1_ball_by_branch(P, nested(I, "x"))),
    "l1_ball_zero": _case(
        lambda r: _zeros_tree("x"), lambda P, I: P.projection_l1_ball(nested(I, "x")),
        jax_call=lambda P, I: _l1_ball_by_branch(P, nested(I, "x"))),
    "l1_ball_mixed_dtypes": _case(
        lambda r: _tree(r, "x", f64=("b0", "w")),
        lambda P, I: P.projection_l1_ball(nested(I, "x"), 0.75),
        jax_call=lambda P, I: _l1_ball_by_branch(P, nested(I, "x"), 0.75)),
    # --- l2 --------------------------------------------------------------------
    "l2_sphere_nested": _case(
        lambda r: _tree(r, "x"), lambda P, I: P.projection_l2_sphere(nested(I, "x"), 3.0)),
    "l2_sphere_default": _case(
        lambda r: {"x": 0.1 * r.standard_normal(5)}, lambda P, I: P.projection_l2_sphere(I["x"])),
    "l2_ball_outside": _case(
        lambda r: _tree(r, "x"), lambda P, I: P.projection_l2_ball(nested(I, "x"), 0.5)),
    "l2_ball_inside": _case(
        lambda r: _tree(r, "x", 0.1), lambda P, I: P.projection_l2_ball(nested(I, "x"))),
    "l2_ball_zero": _case(
        lambda r: _zeros_tree("x"), lambda P, I: P.projection_l2_ball(nested(I, "x"), 0.3)),
    "l2_ball_mixed_dtypes": _case(
        lambda r: _tree(r, "x", f64=("c",)),
        lambda P, I: P.projection_l2_ball(nested(I, "x"), 0.5)),
    # --- vector, hyperplane, halfspace -------------------------------------------
    "vector_nested": _case(
        lambda r: {**_tree(r, "x"), **_tree(r, "a")},
        lambda P, I: P.projection_vector(nested(I, "x"), nested(I, "a"))),
    "vector_array": _case(
        lambda r: {"x": r.standard_normal(6), "a": r.standard_normal(6)},
        lambda P, I: P.projection_vector(I["x"], I["a"])),
    "hyperplane_nested": _case(
        lambda r: {**_tree(r, "x"), **_tree(r, "a")},
        lambda P, I: P.projection_hyperplane(nested(I, "x"), nested(I, "a"), 0.75)),
    "hyperplane_array": _case(
        lambda r: {"x": r.standard_normal(6), "a": r.standard_normal(6)},
        lambda P, I: P.projection_hyperplane(I["x"], I["a"], -1.5)),
    "halfspace_outside": _case(
        lambda r: {**_tree(r, "x"), **_tree(r, "a")},
        lambda P, I: P.projection_halfspace(nested(I, "x"), nested(I, "a"), -3.0)),
    "halfspace_inside": _case(
        lambda r: {**_tree(r, "x"), **_tree(r, "a")},
        lambda P, I: P.projection_halfspace(nested(I, "x"), nested(I, "a"), 30.0)),
    "halfspace_array": _case(
        lambda r: {"x": r.standard_normal(6), "a": r.standard_normal(6)},
        lambda P, I: P.projection_halfspace(I["x"], I["a"], 0.0)),
}


def case_inputs(name, dtype):
    """The case's inputs (float64 from a per-case seed), cast to ``dtype`` except
    those named ``...@f64``."""
    raw = CASES[name]["inputs"](np.random.default_rng(zlib.crc32(name.encode())))
    return {k: np.asarray(v, np.float64 if k.endswith("@f64") else dtype)
            for k, v in raw.items()}


def signatures(module, names):
    """{name: [[param, kind, repr(default) or None], ...]} of module's functions."""
    import inspect
    out = {}
    for n in names:
        ps = inspect.signature(getattr(module, n)).parameters.values()
        out[n] = [[p.name, p.kind.name,
                   None if p.default is inspect.Parameter.empty else repr(p.default)]
                  for p in ps]
    return out


def main(names=None):
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import optax
    from importlib.metadata import version

    P = optax.projections
    assert sorted(NAMES) == sorted(n for n in dir(P) if not n.startswith("_")), dir(P)
    arrays = {}
    if names and os.path.exists(OUT):          # regenerate some cases, keep the rest
        with np.load(OUT) as old:
            arrays = {k: old[k] for k in old.files
                      if k.split("/")[1] not in names and not k.startswith("meta/")}
    for name in names or CASES:
        for dt in DTYPES:
            I = case_inputs(name, dt)
            J = {k: jnp.asarray(v) for k, v in I.items()}
            call = CASES[name]["call"]
            if CASES[name]["jax_call"] is not None:
                if dt == "float64":     # optax's own call agrees where it runs
                    a = jax.tree_util.tree_leaves(call(P, J))
                    b = jax.tree_util.tree_leaves(CASES[name]["jax_call"](P, J))
                    err = max(float(np.max(np.abs(u - v), initial=0)) for u, v in zip(a, b))
                    print(f"{name:26s} optax's own call vs jax_call (float64): {err:.2g}")
                    assert err <= 1e-14, name
                call = CASES[name]["jax_call"]
            out = call(P, J)
            leaves = [np.asarray(v) for v in jax.tree_util.tree_leaves(out)]
            for k, v in I.items():
                arrays[f"{dt}/{name}/in/{k}"] = v
            for i, v in enumerate(leaves):
                arrays[f"{dt}/{name}/out/{i}"] = v
            print(f"{name:26s} {dt}: {len(leaves)} leaves, dtypes "
                  f"{sorted({str(v.dtype) for v in leaves})}, "
                  f"max |out| {max(float(np.max(np.abs(v), initial=0)) for v in leaves):.4g}")
    arrays["meta/signatures"] = np.array(json.dumps(signatures(P, NAMES)))
    arrays["meta/versions"] = np.array(
        [f"jax {version('jax')}", f"optax {version('optax')}", "jax_enable_x64"])
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main(sys.argv[1:] or None)
