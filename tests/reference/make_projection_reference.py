"""Reference values of jaxopt 0.8.5's projections and isotonic regression
(tests/reference/data/jaxopt/projection.npz). Needs jax + jaxopt; x64.

    python tests/reference/make_projection_reference.py

``CASES`` (importable without JAX; tests/test_projection.py uses it) maps a
case name to:

* ``inputs(rng)``: a dict of float64 arrays (cast to each dtype);
* ``call(ns, I)``: the call, evaluated with ``ns.projection`` /
  ``ns.isotonic`` = jaxopt's modules here and npopt's in the tests;
* ``jax_call(ns, I)`` (optional): the jaxopt side where it differs: a
  ``jax.vmap`` for per-row inputs, or jaxopt's own solver run at a tight
  tolerance (``*_tight`` cases: the exact projection, which npopt computes);
* ``upcast``: jaxopt gets the float32 inputs as float64 (the same values):
  under x64 its OSQP fails on float32 data (a ``lax.cond`` dtype mismatch)
  and its transport solvers, mixing float64 potentials with a float32 cost,
  return plans far from the marginals;
* ``seed``: the inputs' seed where the default (derived from the name) does
  not suit: jaxopt's default LBFGS (zoom line search, tol 1e-3) stalls on
  the l2 semi-dual for some inputs (with the name's seed, ``transport_default``
  ended with row sums off by 0.15), and comparing to that says nothing;
  ``main`` prints each transport plan's marginal error;
* ``rtol``: ``{dtype: tolerance}`` where the SPEC's (1e-5 / 1e-10) cannot
  apply because jaxopt's default solver stops early (OSQP, GMRES and LBFGS
  at tol 1e-3 to 1e-5): there npopt's exact answer is compared at about
  jaxopt's own tolerance.

The npz holds ``{dtype}/{case}/in/{name}`` and ``{dtype}/{case}/out/{i}``
(output leaves in JAX order). Inputs are cast to the dtype before the call;
jaxopt's outputs keep the dtype jaxopt gives them (float64 in some float32
cases).

jaxopt 0.8.5's isotonic_l2_pav fails under jax 0.10 when numba is installed
(jax.pure_callback hands numba a read-only buffer that has no ``shape``);
``main`` wraps the callback with ``np.array`` first, which changes nothing
else.
"""
import os
import sys
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data", "jaxopt", "projection.npz")

try:
    from . import fixed_order as fo        # imported as reference.<this module>
except ImportError:                        # run as a script
    sys.path.insert(0, HERE)
    import fixed_order as fo
DTYPES = ("float32", "float64")
LOOSE = {"float32": 1e-5, "float64": 1e-10}


def _case(inputs, call, jax_call=None, rtol=None, upcast=False, seed=None):
    return dict(inputs=inputs, call=call, jax_call=jax_call, rtol=rtol or dict(LOOSE),
                upcast=upcast, seed=seed)


def _tree(I, prefix):
    """{'a': I[prefix + '.a'], 'b': I[prefix + '.b']} (a pytree input)."""
    return {k.split(".", 1)[1]: v for k, v in I.items() if k.startswith(prefix + ".")}


def _x_tree(rng, scale=1.0):
    return {"x.a": scale * rng.standard_normal(6), "x.b": scale * rng.standard_normal((2, 3))}


def _polyhedron(rng):
    n = 7
    y0 = rng.standard_normal(n)
    A = rng.standard_normal((2, n))
    G = rng.standard_normal((5, n))
    return {"x": y0 + 2.0 * rng.standard_normal(n), "A": A, "b": fo.mv(A, y0),
            "G": G, "h": fo.mv(G, y0) + 0.1 * rng.uniform(size=5)}


def _dyadic_marginal(rng, size, total=64):
    """Positive k_i / total with sum exactly 1 in float32 too (balanced marginals
    that stay balanced after rounding; otherwise no plan exists)."""
    return (1 + rng.multinomial(total - size, np.ones(size) / size)) / total


def _transport_inputs(rng):
    return {"S": rng.standard_normal((5, 4)), "a": _dyadic_marginal(rng, 5),
            "b": _dyadic_marginal(rng, 4)}


def _tight_lbfgs(ns):
    # jaxopt's default zoom line search stalls on the (only C^1) l2 semi-dual
    # at tight tolerances; Hager-Zhang converges on every case here
    return lambda fun: ns.jaxopt.LBFGS(fun=fun, tol=1e-11, maxiter=20000,
                                       linesearch="hager-zhang")


_T = lambda I: (I["a"], I["b"])  # noqa: E731
# jaxopt's default solvers stop early; compare npopt's exact answer at their level
# (observed: OSQP 2.8e-4, GMRES 8e-16 (it converged), LBFGS 1.4e-3, tight LBFGS 2e-11)
_OSQP = {"float32": 1e-3, "float64": 1e-3}
_GMRES = {"float32": 1e-4, "float64": 1e-4}
_LBFGS = {"float32": 1e-2, "float64": 1e-2}
_TIGHT = {"float32": 1e-5, "float64": 1e-9}

CASES = {
    # --- elementwise (kernels) -----------------------------------------------
    "non_negative_tree": _case(
        lambda r: _x_tree(r), lambda ns, I: ns.projection.projection_non_negative(_tree(I, "x"))),
    "box_scalar": _case(
        lambda r: {"x": r.standard_normal(9)},
        lambda ns, I: ns.projection.projection_box(I["x"], (-0.5, 0.7))),
    "box_tree": _case(
        lambda r: {**_x_tree(r), "lo.a": -0.5 * r.uniform(size=6), "lo.b": -r.uniform(size=(2, 3)),
                   "hi.a": 0.5 * r.uniform(size=6), "hi.b": r.uniform(size=(2, 3))},
        lambda ns, I: ns.projection.projection_box(_tree(I, "x"), (_tree(I, "lo"), _tree(I, "hi")))),
    "box_broadcast": _case(
        lambda r: {"x": r.standard_normal((3, 4)), "lo": -r.uniform(size=4)},
        lambda ns, I: ns.projection.projection_box(I["x"], (I["lo"], 0.25))),
    "hypercube_default": _case(
        lambda r: {"x": 2 * r.standard_normal(9)},
        lambda ns, I: ns.projection.projection_hypercube(I["x"])),
    "hypercube_unit": _case(
        lambda r: {"x": 3 * r.standard_normal(9)},
        lambda ns, I: ns.projection.projection_hypercube(I["x"], 2.5)),
    # jaxopt's box with scalar bounds only takes an array x (tree_map needs
    # pytree bounds); npopt broadcasts scalars over a pytree too (tested there)
    "linf_ball": _case(
        lambda r: {"x": r.standard_normal((3, 3))},
        lambda ns, I: ns.projection.projection_linf_ball(I["x"], 0.5)),
    # --- simplex and l1 --------------------------------------------------------
    "simplex_default": _case(
        lambda r: {"x": r.standard_normal(10)},
        lambda ns, I: ns.projection.projection_simplex(I["x"])),
    "simplex_value": _case(
        lambda r: {"x": 2 * r.standard_normal(10)},
        lambda ns, I: ns.projection.projection_simplex(I["x"], 3.5)),
    "simplex_ties": _case(
        lambda r: {"x": np.array([0.5, 0.2, 0.5, -0.1, 0.2, 0.5, 0.0])},
        lambda ns, I: ns.projection.projection_simplex(I["x"])),
    "simplex_inside": _case(
        lambda r: {"x": r.dirichlet(np.ones(8))},
        lambda ns, I: ns.projection.projection_simplex(I["x"])),
    "simplex_rows": _case(
        lambda r: {"x": r.standard_normal((4, 7))},
        lambda ns, I: ns.projection.projection_simplex(I["x"], 2.0),
        jax_call=lambda ns, I: ns.jax.vmap(
            lambda v: ns.projection.projection_simplex(v, 2.0))(I["x"])),
    "sparse_simplex_default": _case(
        lambda r: {"x": r.standard_normal(10)},
        lambda ns, I: ns.projection.projection_sparse_simplex(I["x"], 3)),
    "sparse_simplex_value": _case(
        lambda r: {"x": r.standard_normal(10)},
        lambda ns, I: ns.projection.projection_sparse_simplex(I["x"], 4, value=2.0)),
    "l1_sphere_default": _case(
        lambda r: {"x": r.standard_normal(10)},
        lambda ns, I: ns.projection.projection_l1_sphere(I["x"])),
    "l1_sphere_value": _case(
        lambda r: {"x": 0.1 * r.standard_normal(10)},
        lambda ns, I: ns.projection.projection_l1_sphere(I["x"], 2.5)),
    "l1_ball_outside": _case(
        lambda r: {"x": r.standard_normal(10)},
        lambda ns, I: ns.projection.projection_l1_ball(I["x"], 1.5)),
    "l1_ball_inside": _case(
        lambda r: {"x": 0.05 * r.standard_normal(10)},
        lambda ns, I: ns.projection.projection_l1_ball(I["x"])),
    "l1_ball_rows": _case(
        lambda r: {"x": r.standard_normal((3, 6)) * np.array([[0.05], [1.0], [3.0]])},
        lambda ns, I: ns.projection.projection_l1_ball(I["x"], 1.0),
        jax_call=lambda ns, I: ns.jax.vmap(
            lambda v: ns.projection.projection_l1_ball(v, 1.0))(I["x"])),
    # --- l2, planes ------------------------------------------------------------
    "l2_sphere_tree": _case(
        lambda r: _x_tree(r), lambda ns, I: ns.projection.projection_l2_sphere(_tree(I, "x"), 2.0)),
    "l2_ball_outside": _case(
        lambda r: _x_tree(r), lambda ns, I: ns.projection.projection_l2_ball(_tree(I, "x"))),
    "l2_ball_inside": _case(
        lambda r: _x_tree(r, 0.1), lambda ns, I: ns.projection.projection_l2_ball(_tree(I, "x"))),
    "hyperplane_tree": _case(
        lambda r: {**_x_tree(r), "a.a": r.standard_normal(6), "a.b": r.standard_normal((2, 3))},
        lambda ns, I: ns.projection.projection_hyperplane(_tree(I, "x"), (_tree(I, "a"), 0.3))),
    "halfspace_active": _case(
        lambda r: {"x": r.standard_normal(8) + 1.0, "a": np.abs(r.standard_normal(8))},
        lambda ns, I: ns.projection.projection_halfspace(I["x"], (I["a"], -0.5))),
    "halfspace_inactive": _case(
        lambda r: {"x": r.standard_normal(8), "a": r.standard_normal(8)},
        lambda ns, I: ns.projection.projection_halfspace(I["x"], (I["a"], 100.0))),
    # --- affine sets, polyhedra ------------------------------------------------
    "affine_set_default": _case(
        lambda r: {"x": r.standard_normal(8), "A": r.standard_normal((3, 8)),
                   "b": r.standard_normal(3)},
        lambda ns, I: ns.projection.projection_affine_set(I["x"], (I["A"], I["b"])),
        rtol=_GMRES),
    "affine_set_tight": _case(
        lambda r: {"x": r.standard_normal(8), "A": r.standard_normal((3, 8)),
                   "b": r.standard_normal(3)},
        lambda ns, I: ns.projection.projection_affine_set(I["x"], (I["A"], I["b"])),
        jax_call=lambda ns, I: ns.jaxopt.EqualityConstrainedQP(
            matvec_Q=lambda _, v: v, tol=1e-14).run(
                params_obj=(None, -I["x"]), params_eq=(I["A"], I["b"])).params.primal),
    "polyhedron_default": _case(
        _polyhedron,
        lambda ns, I: ns.projection.projection_polyhedron(I["x"], (I["A"], I["b"], I["G"], I["h"])),
        rtol=_OSQP, upcast=True),
    "polyhedron_tight": _case(
        _polyhedron,
        lambda ns, I: ns.projection.projection_polyhedron(I["x"], (I["A"], I["b"], I["G"], I["h"])),
        jax_call=lambda ns, I: ns.jaxopt.OSQP(
            matvec_Q=lambda _, v: v, tol=1e-12, maxiter=200000).run(
                params_obj=(None, -I["x"]), params_eq=(I["A"], I["b"]),
                params_ineq=(I["G"], I["h"])).params.primal,
        upcast=True),
    "box_section": _case(
        lambda r: {"x": r.standard_normal(10), "alpha": -0.2 * r.uniform(size=10),
                   "beta": 0.5 + r.uniform(size=10), "w": 0.5 + r.uniform(size=10)},
        lambda ns, I: ns.projection.projection_box_section(
            I["x"], (I["alpha"], I["beta"], I["w"], 2.0))),
    "box_section_feasible_check": _case(
        lambda r: {"x": 3 * r.standard_normal(12), "alpha": np.zeros(12),
                   "beta": np.ones(12), "w": np.ones(12)},
        lambda ns, I: ns.projection.projection_box_section(
            I["x"], (I["alpha"], I["beta"], I["w"], 4.0), check_feasible=True)),
    # --- transport -------------------------------------------------------------
    "transport_default": _case(
        _transport_inputs, lambda ns, I: ns.projection.projection_transport(I["S"], _T(I)),
        rtol=_LBFGS, upcast=True, seed=0),
    "transport_dual_default": _case(
        _transport_inputs,
        lambda ns, I: ns.projection.projection_transport(I["S"], _T(I), use_semi_dual=False),
        rtol=_LBFGS, upcast=True, seed=0),
    "transport_tight": _case(
        _transport_inputs, lambda ns, I: ns.projection.projection_transport(I["S"], _T(I)),
        jax_call=lambda ns, I: ns.projection.projection_transport(
            I["S"], _T(I), make_solver=_tight_lbfgs(ns)), rtol=_TIGHT, upcast=True),
    "transport_dual_tight": _case(
        _transport_inputs,
        lambda ns, I: ns.projection.projection_transport(I["S"], _T(I), use_semi_dual=False),
        jax_call=lambda ns, I: ns.projection.projection_transport(
            I["S"], _T(I), make_solver=_tight_lbfgs(ns), use_semi_dual=False), rtol=_TIGHT, upcast=True),
    "kl_transport_default": _case(
        _transport_inputs, lambda ns, I: ns.projection.kl_projection_transport(I["S"], _T(I)),
        rtol=_LBFGS, upcast=True),
    "kl_transport_tight": _case(
        _transport_inputs, lambda ns, I: ns.projection.kl_projection_transport(I["S"], _T(I)),
        jax_call=lambda ns, I: ns.projection.kl_projection_transport(
            I["S"], _T(I), make_solver=_tight_lbfgs(ns)), rtol=_TIGHT, upcast=True),
    "kl_transport_dual_tight": _case(
        _transport_inputs,
        lambda ns, I: ns.projection.kl_projection_transport(I["S"], _T(I), use_semi_dual=False),
        jax_call=lambda ns, I: ns.projection.kl_projection_transport(
            I["S"], _T(I), make_solver=_tight_lbfgs(ns), use_semi_dual=False), rtol=_TIGHT, upcast=True),
    "birkhoff_default": _case(
        lambda r: {"S": r.standard_normal((4, 4))},
        lambda ns, I: ns.projection.projection_birkhoff(I["S"]), rtol=_LBFGS, upcast=True),
    "birkhoff_tight": _case(
        lambda r: {"S": r.standard_normal((4, 4))},
        lambda ns, I: ns.projection.projection_birkhoff(I["S"]),
        jax_call=lambda ns, I: ns.projection.projection_birkhoff(
            I["S"], make_solver=_tight_lbfgs(ns)), rtol=_TIGHT, upcast=True),
    "kl_birkhoff_default": _case(
        lambda r: {"S": r.standard_normal((4, 4))},
        lambda ns, I: ns.projection.kl_projection_birkhoff(I["S"]), rtol=_LBFGS, upcast=True),
    "kl_birkhoff_tight": _case(
        lambda r: {"S": r.standard_normal((4, 4))},
        lambda ns, I: ns.projection.kl_projection_birkhoff(I["S"]),
        jax_call=lambda ns, I: ns.projection.kl_projection_birkhoff(
            I["S"], make_solver=_tight_lbfgs(ns)), rtol=_TIGHT, upcast=True),
    # --- isotonic --------------------------------------------------------------
    "isotonic_increasing": _case(
        lambda r: {"y": r.standard_normal(40) + np.linspace(-1, 1, 40)},
        lambda ns, I: ns.isotonic.isotonic_l2_pav(I["y"])),
    "isotonic_decreasing": _case(
        lambda r: {"y": r.standard_normal(40) - np.linspace(-1, 1, 40)},
        lambda ns, I: ns.isotonic.isotonic_l2_pav(I["y"], increasing=False)),
    "isotonic_bounds": _case(
        lambda r: {"y": r.standard_normal(40) + np.linspace(-2, 2, 40)},
        lambda ns, I: ns.isotonic.isotonic_l2_pav(I["y"], y_min=-0.75, y_max=1.3)),
    "isotonic_rows": _case(
        lambda r: {"y": r.standard_normal((3, 25))},
        lambda ns, I: ns.isotonic.isotonic_l2_pav(I["y"], increasing=False, y_min=-0.5),
        jax_call=lambda ns, I: ns.jax.vmap(
            lambda v: ns.isotonic.isotonic_l2_pav(v, increasing=False, y_min=-0.5))(I["y"])),
}


def case_inputs(name, dtype):
    """The case's inputs (float64 from a per-case seed), cast to ``dtype``."""
    seed = CASES[name]["seed"]
    if seed is None:
        seed = sum(ord(ch) * (i + 1) for i, ch in enumerate(name)) % (2 ** 31)
    raw = CASES[name]["inputs"](np.random.default_rng(seed))
    return {k: np.asarray(v, dtype) for k, v in raw.items()}


def main(names=None):
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import jaxopt
    import jaxopt._src.isotonic as iso
    from importlib.metadata import version

    orig = iso._isotonic_l2_pav_numba
    iso._isotonic_l2_pav_numba = lambda y: orig(np.array(y))  # see the module docstring

    ns = types.SimpleNamespace(projection=jaxopt.projection, isotonic=jaxopt.isotonic,
                               jaxopt=jaxopt, jax=jax)
    arrays = {}
    if names and os.path.exists(OUT):          # regenerate some cases, keep the rest
        with np.load(OUT) as old:
            arrays = {k: old[k] for k in old.files
                      if k.split("/")[1] not in names and k != "meta/versions"}
    for name in names or CASES:
        case = CASES[name]
        call = case["jax_call"] or case["call"]
        for dt in DTYPES:
            I = case_inputs(name, dt)
            jdt = np.float64 if case["upcast"] else dt
            out = call(ns, {k: jnp.asarray(v, jdt) for k, v in I.items()})
            leaves = [np.asarray(v) for v in jax.tree_util.tree_leaves(out)]
            for k, v in I.items():
                arrays[f"{dt}/{name}/in/{k}"] = v
            for i, v in enumerate(leaves):
                arrays[f"{dt}/{name}/out/{i}"] = v
            extra = ""
            if "transport" in name or "birkhoff" in name:
                P = leaves[0].astype(np.float64)
                a = I.get("a", np.ones(P.shape[0]))
                b = I.get("b", np.ones(P.shape[1]))
                extra = (f", marginal error rows {np.max(np.abs(P.sum(1) - a)):.2g} "
                         f"cols {np.max(np.abs(P.sum(0) - b)):.2g}")
            print(f"{name:28s} {dt}: {len(leaves)} leaves, out dtype {leaves[0].dtype}, "
                  f"max |out| {max(float(np.max(np.abs(v))) for v in leaves):.4g}{extra}")
    arrays["meta/versions"] = np.array(
        [f"jax {version('jax')}", f"jaxopt {version('jaxopt')}", "jax_enable_x64"])
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main(sys.argv[1:] or None)
