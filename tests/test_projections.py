"""npopt.projections (optax's module): optax's reference values, the geometry
of the projections over random pytrees, and bad input.

* Reference: every case of tests/reference/make_projections_reference.py,
  replayed from tests/reference/data/optax/projections.npz (optax 0.2.8, x64)
  at 1e-10 (float64) / 1e-5 (float32) of the largest entry of each leaf;
  npopt keeps each leaf's dtype (optax returns float64 for float32 input in
  several projections, see the package docstring). Where npopt differs on
  purpose (``differs``), the documented answer is checked instead.
* Signatures: optax's parameter names, kinds and defaults (stored by the
  generator).
* Properties (hypothesis, random nested trees of float32 and float64
  leaves): the result lies in the set, ``P(P(x)) = P(x)``, the structure and
  the dtypes are kept, the input is not modified, ``||P(x) - P(y)|| <=
  ||x - y||`` for the convex sets, and a point of the set is a nearest point
  (the variational inequality ``<x - P(x), z - P(x)> <= 0``).
"""
import inspect
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import npopt
from conftest import rel_err
from npopt import projections as P
from npopt.tree import tree_leaves, tree_map, tree_structure
from reference.make_projections_reference import CASES, DTYPES, NAMES, OUT, nested

TOL = {"float32": 1e-5, "float64": 1e-10}


@pytest.fixture(scope="module")
def ref():
    with np.load(OUT) as z:
        return {k: z[k] for k in z.files}


def load_case(ref, name, dt):
    inputs = {k.rsplit("/", 1)[1]: v for k, v in ref.items() if k.startswith(f"{dt}/{name}/in/")}
    n_out = sum(1 for k in ref if k.startswith(f"{dt}/{name}/out/"))
    return inputs, [ref[f"{dt}/{name}/out/{i}"] for i in range(n_out)]


def _x_leaves(inputs):
    """The leaves of the case's projected tree (``x`` or ``x.*``), in JAX order."""
    if "x" in inputs:
        return [inputs["x"]]
    return tree_leaves(nested(inputs, "x"))


# ---------------------------------------------------------------------------
# optax's values
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_optax(ref, name, dt):
    inputs, expected = load_case(ref, name, dt)
    assert expected, f"no reference for {name}; rerun make_projections_reference.py"
    before = {k: v.copy() for k, v in inputs.items()}
    got = tree_leaves(CASES[name]["call"](P, inputs))
    assert all(np.array_equal(before[k], inputs[k]) for k in inputs)      # not modified
    assert len(got) == len(expected)
    # npopt keeps each leaf's dtype
    assert [g.dtype for g in got] == [x.dtype for x in _x_leaves(inputs)]
    if CASES[name]["differs"]:
        return                                  # checked in test_documented_differences
    for g, e in zip(got, expected):
        assert g.shape == e.shape
        assert rel_err(g, e) <= TOL[str(g.dtype)], (name, dt, g, e)


@pytest.mark.parametrize("dt", DTYPES)
def test_documented_differences(ref, dt):
    """l1 sphere with zero entries inside the ball: optax's jnp.sign drops their
    mass (its result is off the sphere); npopt takes sign +1 there."""
    name = "l1_sphere_zeros_inside"
    assert CASES[name]["differs"]
    inputs, (expected,) = load_case(ref, name, dt)
    x = inputs["x"]
    got = P.projection_l1_sphere(x)
    nz = x != 0
    assert rel_err(got[nz], expected[nz]) <= TOL[dt]
    assert np.all(expected[~nz] == 0) and abs(np.sum(np.abs(expected)) - 1) > 0.1
    assert abs(np.sum(np.abs(got), dtype=np.float64) - 1) <= 4 * np.finfo(dt).eps
    # the mass of the zero entries equals the shift of the others (a nearest point)
    np.testing.assert_allclose(got[~nz], got[nz][0] - abs(x[nz][0]), rtol=TOL[dt])


def test_reference_covers_every_function():
    called = {n for n in NAMES if any(n.replace("projection_", "") in c for c in CASES)}
    assert called == set(NAMES)


def test_signatures_are_optax(ref):
    theirs = json.loads(str(ref["meta/signatures"]))
    assert sorted(theirs) == sorted(NAMES) == sorted(P.__all__)
    for name, params in theirs.items():
        mine = [[p.name, p.kind.name,
                 None if p.default is inspect.Parameter.empty else repr(p.default)]
                for p in inspect.signature(getattr(P, name)).parameters.values()]
        assert mine == params, name


def test_module_paths():
    assert npopt.projections is P
    # jaxopt's module is unchanged and distinct
    assert npopt.projection is not P
    assert list(inspect.signature(npopt.projection.projection_simplex).parameters) == \
        ["x", "value"]


# ---------------------------------------------------------------------------
# properties over random pytrees
# ---------------------------------------------------------------------------

SHAPES = st.sampled_from([(), (1,), (3,), (2, 3), (4,)])
DT = st.sampled_from([np.float32, np.float64])


@st.composite
def trees(draw, mixed=True, min_leaves=1, scale=5.0, leaves_like=None):
    """{'p': leaf, 'q': [leaf, {'r': leaf}], ...}: 1-4 leaves of random shapes and
    dtypes (one dtype for the whole tree unless ``mixed``)."""
    if leaves_like is None:
        n = draw(st.integers(min_leaves, 4))
        shapes = [draw(SHAPES) for _ in range(n)]
        one = draw(DT)
        dts = [draw(DT) if mixed else one for _ in range(n)]
    else:
        shapes = [v.shape for v in leaves_like]
        dts = [v.dtype for v in leaves_like]
    # entries 0 or of magnitude >= 1e-3 (no float32 underflow of squares)
    elements = st.floats(-scale, scale, width=32).map(lambda v: 0.0 if abs(v) < 1e-3 else v)
    leaves = [draw(hnp.arrays(d, s, elements=elements)) for s, d in zip(shapes, dts)]
    return _build(leaves)


def _build(leaves):
    tree = {"p": leaves[0]}
    if len(leaves) > 1:
        tree["q"] = [leaves[1]] + ([{"r": leaves[2]}] if len(leaves) > 2 else [])
    if len(leaves) > 3:
        tree["s"] = (leaves[3],)
    return tree


def flat(tree):
    return np.concatenate([np.ravel(v).astype(np.float64) for v in tree_leaves(tree)]) \
        if tree_leaves(tree) else np.zeros(0)


def eps(tree):
    """The float32 epsilon if any leaf is float32, else float64's."""
    return max(np.finfo(v.dtype).eps for v in tree_leaves(tree))


def same_layout(a, b):
    assert tree_structure(a) == tree_structure(b)
    for u, v in zip(tree_leaves(a), tree_leaves(b)):
        assert isinstance(u, np.ndarray) and u.shape == np.shape(v) and u.dtype == v.dtype


def _pos(v):
    return max(float(v), 0.0)


# name -> (project(x, prm), in_set(p, prm, tol) -> violation, convex, params strategy)
# params are drawn once per example; prm["a"] is a tree like x where needed
def _violation_simplex(p, prm):
    f = flat(p)
    return max(_pos(-f.min()), abs(f.sum() - prm["scale"]) / prm["scale"])


SETS = {
    "non_negative": (lambda x, prm: P.projection_non_negative(x),
                     lambda p, prm: _pos(-flat(p).min()), True),
    "box": (lambda x, prm: P.projection_box(x, prm["lo"], prm["hi"]),
            lambda p, prm: max(_pos(prm["lo"] - flat(p).min()), _pos(flat(p).max() - prm["hi"])),
            True),
    "hypercube": (lambda x, prm: P.projection_hypercube(x, prm["scale"]),
                  lambda p, prm: max(_pos(-flat(p).min()), _pos(flat(p).max() - prm["scale"])),
                  True),
    "linf_ball": (lambda x, prm: P.projection_linf_ball(x, prm["scale"]),
                  lambda p, prm: _pos(np.abs(flat(p)).max() - prm["scale"]), True),
    "simplex": (lambda x, prm: P.projection_simplex(x, prm["scale"]), _violation_simplex, True),
    "l1_sphere": (lambda x, prm: P.projection_l1_sphere(x, prm["scale"]),
                  lambda p, prm: abs(np.abs(flat(p)).sum() - prm["scale"]) / prm["scale"], False),
    "l1_ball": (lambda x, prm: P.projection_l1_ball(x, prm["scale"]),
                lambda p, prm: _pos(np.abs(flat(p)).sum() / prm["scale"] - 1), True),
    "l2_sphere": (lambda x, prm: P.projection_l2_sphere(x, prm["scale"]),
                  lambda p, prm: abs(np.linalg.norm(flat(p)) - prm["scale"]) / prm["scale"],
                  False),
    "l2_ball": (lambda x, prm: P.projection_l2_ball(x, prm["scale"]),
                lambda p, prm: _pos(np.linalg.norm(flat(p)) / prm["scale"] - 1), True),
    "vector": (lambda x, prm: P.projection_vector(x, prm["a"]),
               # p parallel to a: |<p, a>| = ||p|| ||a||
               lambda p, prm: abs(abs(flat(p) @ flat(prm["a"])) - np.linalg.norm(flat(p))
                                  * np.linalg.norm(flat(prm["a"]))) / max(
                   np.linalg.norm(flat(p)) * np.linalg.norm(flat(prm["a"])), 1e-300), True),
    "hyperplane": (lambda x, prm: P.projection_hyperplane(x, prm["a"], prm["b"]),
                   lambda p, prm: abs(flat(p) @ flat(prm["a"]) - prm["b"]) / (
                       np.linalg.norm(flat(prm["a"])) * (1 + np.linalg.norm(flat(p)))), True),
    "halfspace": (lambda x, prm: P.projection_halfspace(x, prm["a"], prm["b"]),
                  lambda p, prm: _pos(flat(p) @ flat(prm["a"]) - prm["b"]) / (
                      np.linalg.norm(flat(prm["a"])) * (1 + np.linalg.norm(flat(p)))), True),
}
assert sorted("projection_" + k for k in SETS) == sorted(NAMES)


@st.composite
def problems(draw, name, n_points=1):
    x = draw(trees())
    ys = [draw(trees(leaves_like=tree_leaves(x))) for _ in range(n_points - 1)]
    prm = {"scale": draw(st.sampled_from([0.5, 1.0, 2.5, 7.0]))}
    lo = draw(st.floats(-3, 0, width=16))
    prm.update(lo=lo, hi=lo + draw(st.floats(0, 4, width=16)))
    if name in ("vector", "hyperplane", "halfspace"):
        a = draw(trees(leaves_like=tree_leaves(x)).filter(lambda t: np.any(flat(t) != 0)))
        prm.update(a=a, b=draw(st.floats(-5, 5, width=16)))
    return x, ys, prm


def _tol(x, p):
    """Relative rounding allowance: a few hundred eps of the tree's dtype."""
    return 300 * eps(x) * (1 + tree_size(x) ** 0.5)


def tree_size(t):
    return sum(np.size(v) for v in tree_leaves(t))


@settings(max_examples=25)
@given(data=st.data())
@pytest.mark.parametrize("name", sorted(SETS))
def test_in_set_idempotent_and_layout(name, data):
    project, violation, _ = SETS[name]
    x, _, prm = data.draw(problems(name))
    if name == "l2_sphere" and not np.any(flat(x) != 0):
        x = tree_map(lambda v: v + v.dtype.type(1), x)        # the zero tree has no projection
    before = [v.copy() for v in tree_leaves(x)]
    p = project(x, prm)
    assert all(np.array_equal(u, v) for u, v in zip(before, tree_leaves(x)))   # not modified
    same_layout(p, x)
    assert np.all(np.isfinite(flat(p)))
    tol = _tol(x, p)
    assert violation(p, prm) <= tol, (violation(p, prm), tol)
    pp = project(p, prm)
    same_layout(pp, x)
    size = max(float(np.abs(flat(p)).max(initial=0)), prm["scale"] if name != "vector" else 0)
    assert np.abs(flat(pp) - flat(p)).max(initial=0) <= tol * max(size, 1.0)


@settings(max_examples=25)
@given(data=st.data())
@pytest.mark.parametrize("name", sorted(k for k, v in SETS.items() if v[2]))
def test_non_expansive_and_nearest(name, data):
    project, _, _ = SETS[name]
    x, (y,), prm = data.draw(problems(name, n_points=2))
    px, py = project(x, prm), project(y, prm)
    fx, fy, fpx, fpy = flat(x), flat(y), flat(px), flat(py)
    mag = 1 + max(np.abs(fx).max(), np.abs(fy).max(), prm["scale"])
    tol = _tol(x, px) * mag
    assert np.linalg.norm(fpx - fpy) <= np.linalg.norm(fx - fy) + tol
    # py is a point of the set: x - P(x) makes an obtuse angle with py - P(x)
    assert (fx - fpx) @ (fpy - fpx) <= tol * mag * (1 + np.linalg.norm(fpy - fpx))


@settings(max_examples=25)
@given(x=trees(min_leaves=1), scale=st.sampled_from([0.5, 1.0, 3.0]))
def test_spheres_are_nearest_points(x, scale):
    """The non-convex spheres: P(x) is at least as near to x as random points of the
    sphere (and as the other sign choices at zero entries, for l1)."""
    fx = flat(x)
    rng = np.random.default_rng(len(fx))
    for name, dist in (("l1_sphere", lambda z: z / np.abs(z).sum()),
                       ("l2_sphere", lambda z: z / np.linalg.norm(z))):
        if name == "l2_sphere" and not np.any(fx):
            continue
        fp = flat(SETS[name][0](x, {"scale": scale}))
        d = np.linalg.norm(fx - fp)
        for _ in range(20):
            z = scale * dist(rng.standard_normal(fx.size))
            assert d <= np.linalg.norm(fx - z) + _tol(x, x) * (1 + scale + np.abs(fx).max())


@settings(max_examples=30)
@given(x=hnp.arrays(st.sampled_from([np.float32, np.float64]), st.integers(1, 9),
                    elements=st.floats(-5, 5, width=32)),
       scale=st.sampled_from([0.5, 1.0, 3.0]))
def test_same_as_jaxopt_module_on_arrays(x, scale):
    """On a 1-D array the two modules solve the same problems with the same kernels:
    the same bits where the formulas are the same, a few ulps for the l2 ball
    (optax's branch-free factor) and the hyperplanes (optax's order)."""
    J = npopt.projection
    same = [(P.projection_simplex(x, scale), J.projection_simplex(x, scale)),
            (P.projection_l1_ball(x, scale), J.projection_l1_ball(x, scale)),
            (P.projection_linf_ball(x, scale), J.projection_linf_ball(x, scale)),
            (P.projection_hypercube(x, scale), J.projection_hypercube(x, scale)),
            (P.projection_box(x, -scale, scale / 2), J.projection_box(x, (-scale, scale / 2))),
            (P.projection_non_negative(x), J.projection_non_negative(x))]
    if np.all(x != 0):
        same.append((P.projection_l1_sphere(x, scale), J.projection_l1_sphere(x, scale)))
    for got, want in same:
        assert got.dtype == want.dtype and np.array_equal(got, want)
    tol = 8 * np.finfo(x.dtype).eps
    a = np.linspace(1, 2, x.size).astype(x.dtype)
    close = [(P.projection_l2_ball(x, scale), J.projection_l2_ball(x, scale)),
             (P.projection_hyperplane(x, a, 0.5), J.projection_hyperplane(x, (a, 0.5))),
             (P.projection_halfspace(x, a, 0.5), J.projection_halfspace(x, (a, 0.5)))]
    for got, want in close:
        assert got.dtype == want.dtype
        assert np.max(np.abs(got - want)) <= tol * (1 + np.max(np.abs(want))) * x.size


# ---------------------------------------------------------------------------
# edge cases
# ---------------------------------------------------------------------------

def test_box_scalar_bounds_on_a_tree():
    """optax needs trees of bounds for a tree of several leaves; npopt broadcasts
    scalars (a superset), with the same numbers as leaf-by-leaf clipping."""
    x = {"a": np.array([-2.0, 0.5, 3.0]), "b": [np.float32(-0.25), np.arange(4.0) - 2]}
    got = P.projection_box(x, -1.0, 1.0)
    want = tree_map(lambda v: np.clip(v, -1.0, 1.0).astype(np.asarray(v).dtype), x)
    for g, w in zip(tree_leaves(got), tree_leaves(want)):
        assert g.dtype == w.dtype and np.array_equal(g, w)
    got = P.projection_hypercube(x, 0.5)
    assert np.array_equal(flat(got), np.clip(flat(x), 0, 0.5))
    got = P.projection_box(x, -np.inf, 0.0)
    assert np.array_equal(flat(got), np.minimum(flat(x), 0))


def test_degenerate_inputs():
    z = {"a": np.zeros(3), "b": np.zeros(())}
    # zero tree: the l2 sphere has no unique projection (NaN, as optax)
    with np.errstate(all="ignore"):
        assert np.all(np.isnan(flat(P.projection_l2_sphere(z))))
    # l2 ball of radius 0: the zero tree (optax: NaN for the zero tree)
    x = {"a": np.array([1.0, -2.0, 0.5]), "b": np.array(3.0)}
    assert np.array_equal(flat(P.projection_l2_ball(z, 0.0)), np.zeros(4))
    assert np.array_equal(flat(P.projection_l2_ball(x, 0)), np.zeros(4))
    # a = 0: the projection onto {0} (optax: NaN)
    assert np.array_equal(flat(P.projection_vector(x, z)), np.zeros(4))
    # simplex of the zero tree: the barycentre; of one entry: scale
    np.testing.assert_allclose(flat(P.projection_simplex(z, 2.0)), 0.5, rtol=1e-15)
    assert P.projection_simplex(np.array([-7.0]), 3.0)[0] == 3.0
    # non-finite entries: NaN everywhere, never a silent answer
    for bad in (np.nan, np.inf):
        y = {"a": np.array([1.0, bad, 0.5]), "b": np.array(3.0)}
        assert np.all(np.isnan(flat(P.projection_simplex(y))))
        assert np.all(np.isnan(flat(P.projection_l1_sphere(y))))
    # a scalar and a Python float are trees of one leaf
    assert P.projection_l2_ball(3.0, 1.0) == 1.0
    assert P.projection_simplex(np.float32(0.25)).dtype == np.float32
    # the empty tree: nothing to do for the balls and the box
    assert P.projection_l2_ball({}) == {} and P.projection_l1_ball([]) == []
    assert P.projection_box({}, 0.0, 1.0) == {}


def test_l1_sphere_ties_and_signs():
    x = np.array([0.5, -0.5, 0.5, -0.5])
    np.testing.assert_allclose(P.projection_l1_sphere(x, 1.0), x / 2, rtol=1e-15)
    np.testing.assert_allclose(P.projection_l1_sphere(-x, 4.0), -x * 2, rtol=1e-15)
    # zero entries outside the ball stay zero (the two sign conventions agree)
    y = np.array([0.0, 3.0, -2.0])
    np.testing.assert_allclose(P.projection_l1_sphere(y, 1.0), [0.0, 1.0, -0.0], atol=0)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("which", ["non_negative", "box", "box_trees", "hypercube", "linf_ball"])
def test_cuda_matches_cpu(which, dt):
    """The elementwise four run npopt.projection's CUDA kernels on CUDA leaves
    (the simulator under tests/conftest.py; a GPU where there is one)."""
    from numba import cuda
    from npopt._target import is_device_array
    rng = np.random.default_rng(0)
    x = {"a": rng.standard_normal((5, 7)).astype(dt), "b": rng.standard_normal(300).astype(dt)}
    lo = {k: -rng.uniform(size=v.shape).astype(dt) for k, v in x.items()}
    hi = {k: rng.uniform(size=v.shape).astype(dt) for k, v in x.items()}
    f = {"non_negative": lambda t, *b: P.projection_non_negative(t),
         "box": lambda t, *b: P.projection_box(t, -0.25, 0.5),
         "box_trees": lambda t, lo, hi: P.projection_box(t, lo, hi),
         "hypercube": lambda t, *b: P.projection_hypercube(t, 0.5),
         "linf_ball": lambda t, *b: P.projection_linf_ball(t, 0.3)}[which]
    dev = lambda t: tree_map(cuda.to_device, t)  # noqa: E731
    args = (lo, hi) if which == "box_trees" else ()
    want = f(x, *args)
    got = f(dev(x), *[dev(a) for a in args])
    for g, w in zip(tree_leaves(got), tree_leaves(want)):
        assert is_device_array(g)
        assert np.array_equal(g.copy_to_host(), w)


def test_cuda_arrays_are_refused_where_there_is_no_kernel():
    from numba import cuda
    d = cuda.to_device(np.ones(3))
    for f in (P.projection_simplex, P.projection_l1_ball, P.projection_l2_ball):
        with pytest.raises(TypeError, match=r"^tree: CUDA arrays are supported by the "
                                            "elementwise"):
            f(d)
    with pytest.raises(TypeError, match=r"^x: CUDA arrays"):
        P.projection_hyperplane(d, np.ones(3), 1.0)


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------

X = {"a": np.array([1.0, -2.0, 0.5]), "b": np.array(3.0)}
SCALED = ["projection_hypercube", "projection_linf_ball", "projection_simplex",
          "projection_l1_sphere", "projection_l1_ball", "projection_l2_sphere",
          "projection_l2_ball"]


@pytest.mark.parametrize("name", SCALED)
@pytest.mark.parametrize("scale", [-1.0, np.nan, np.inf, "1", None, [1.0, 2.0]])
def test_bad_scale(name, scale):
    with pytest.raises((ValueError, TypeError), match="scale"):
        getattr(P, name)(X, scale)


@pytest.mark.parametrize("name", ["projection_simplex", "projection_l1_sphere",
                                  "projection_l1_ball"])
def test_scale_must_be_positive(name):
    with pytest.raises(ValueError, match="scale: expected a finite number > 0"):
        getattr(P, name)(X, 0.0)


@pytest.mark.parametrize("name", SCALED + ["projection_non_negative"])
@pytest.mark.parametrize("tree", [{"a": np.arange(3)}, [1, 2.0], {"a": "x"},
                                  {"a": np.array([True])}])
def test_non_float_leaves(name, tree):
    with pytest.raises(TypeError, match="tree: expected floating-point leaves"):
        getattr(P, name)(tree)


@pytest.mark.parametrize("name", ["projection_simplex", "projection_l1_sphere"])
def test_empty_tree(name):
    with pytest.raises(ValueError, match="tree: expected a tree with at least one entry"):
        getattr(P, name)({"a": np.zeros(0)})


def test_bad_box():
    with pytest.raises(ValueError, match="lower, upper: expected lower <= upper"):
        P.projection_box(X, 1.0, -1.0)
    with pytest.raises(ValueError, match="lower: expected a scalar or a pytree"):
        P.projection_box(X, {"a": 0.0}, 1.0)
    with pytest.raises(ValueError, match="upper: expected a scalar or an array broadcastable"):
        P.projection_box(X, 0.0, {"a": np.ones(4), "b": 1.0})
    with pytest.raises(ValueError, match="lower: expected bounds that are not NaN"):
        P.projection_box(X, np.nan, 1.0)
    with pytest.raises(TypeError, match="upper: expected a real number"):
        P.projection_box(X, 0.0, {"a": "1", "b": 1.0})
    with pytest.raises(ValueError, match="upper: expected a scalar or a pytree"):
        P.projection_box(X, 0.0, "1")


@pytest.mark.parametrize("name", ["projection_vector", "projection_hyperplane",
                                  "projection_halfspace"])
def test_bad_a(name):
    f = getattr(P, name)
    extra = () if name == "projection_vector" else (1.0,)
    with pytest.raises(ValueError, match="a: expected a pytree with the structure of x"):
        f(X, {"a": np.ones(3)}, *extra)
    with pytest.raises(ValueError, match="a: expected the shapes of x's leaves"):
        f(X, {"a": np.ones(4), "b": np.array(1.0)}, *extra)
    with pytest.raises(TypeError, match="a: expected floating-point leaves"):
        f(X, {"a": np.ones(3, int), "b": np.array(1.0)}, *extra)
    if extra:
        with pytest.raises(ValueError, match="a: expected a non-zero tree"):
            f(X, tree_map(np.zeros_like, X), 1.0)
        with pytest.raises(TypeError, match="b: expected a scalar"):
            f(X, X, np.ones(2))
        with pytest.raises(ValueError, match="b: expected a finite number"):
            f(X, X, np.nan)
