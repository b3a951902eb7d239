"""npopt.projection: jaxopt's reference values, the geometry of projections,
pytrees, bad input, and the CUDA kernels (simulator) against the CPU ones.

* Reference: every case of tests/reference/make_projection_reference.py,
  replayed from tests/reference/data/jaxopt/projection.npz (jaxopt 0.8.5,
  x64), at 1e-10 (float64) / 1e-5 (float32) relative, or, where jaxopt's
  default solver stops early (OSQP, GMRES, LBFGS), at the case's tolerance;
  ``*_tight`` cases are jaxopt run to a tight tolerance.
* Properties (hypothesis): the result lies in the set; ``P(P(x)) = P(x)``;
  for convex sets ``||P(x) - P(y)|| <= ||x - y||`` and the variational
  inequality ``<x - P(x), z - P(x)> <= 0`` for points z of the set.
* Cross-checks between independent methods: polyhedron vs simplex / box
  section / transport, KL Birkhoff vs Sinkhorn, sparse simplex vs brute force.
"""
import itertools
import types
from collections import namedtuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import npopt.isotonic
import npopt.projection
from conftest import rel_err
from npopt import projection as P
from npopt.tree import tree_leaves, tree_map, tree_structure
from reference.fixed_order import mv, vdot
from reference.make_projection_reference import CASES, DTYPES, OUT

NS = types.SimpleNamespace(projection=npopt.projection, isotonic=npopt.isotonic)
PROJ_CASES = sorted(c for c in CASES if not c.startswith("isotonic"))


# ---------------------------------------------------------------------------
# jaxopt reference values
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ref():
    with np.load(OUT) as z:
        return {k: z[k] for k in z.files}


def load_case(ref, name, dt):
    inputs = {k.rsplit("/", 1)[1]: v for k, v in ref.items() if k.startswith(f"{dt}/{name}/in/")}
    n_out = sum(1 for k in ref if k.startswith(f"{dt}/{name}/out/"))
    return inputs, [ref[f"{dt}/{name}/out/{i}"] for i in range(n_out)]


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("name", PROJ_CASES)
def test_matches_jaxopt(ref, name, dt):
    inputs, expected = load_case(ref, name, dt)
    assert expected, f"no reference for {name}; rerun make_projection_reference.py"
    got = tree_leaves(CASES[name]["call"](NS, inputs))
    assert len(got) == len(expected)
    tol = CASES[name]["rtol"][dt]
    for g, e in zip(got, expected):
        assert g.shape == e.shape
        assert g.dtype == np.dtype(dt), "the dtype is kept"
        assert rel_err(g, e) <= tol, (name, dt, rel_err(g, e))


# ---------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------

def floats(scale):
    # no values so tiny that their squares underflow (the l2 norm is sqrt(sum x^2),
    # in jaxopt as here): those are flushed to 0
    return st.floats(-scale, scale, allow_nan=False).map(lambda v: 0.0 if abs(v) < 1e-100 else v)


def vec(n_min=1, n_max=12, scale=10.0):
    return hnp.arrays(np.float64, st.integers(n_min, n_max), elements=floats(scale))


def pairs(n_min=1, n_max=12, scale=10.0):
    """Three vectors of the same length."""
    return st.integers(n_min, n_max).flatmap(lambda n: st.tuples(
        *[hnp.arrays(np.float64, n, elements=floats(scale))] * 3))


def norm(v):
    return float(np.linalg.norm(np.ravel(v)))


# name -> (projection x -> p, violation p -> float (0 inside), convex)
def _box(n):
    lo = -np.linspace(0.1, 2.0, n)
    hi = np.linspace(0.0, 3.0, n)
    return (lambda x: P.projection_box(x, (lo, hi)),
            lambda p: max(0.0, np.max(lo - p), np.max(p - hi)))


def _sets(n):
    rng = np.random.default_rng(n)
    a = rng.standard_normal(n) + 0.1
    A = rng.standard_normal((max(1, n // 3), n))
    y0 = rng.standard_normal(n)
    G = rng.standard_normal((n, n))
    # the data without BLAS (fixed_order): the same sets on every CPU
    h = mv(G, y0) + rng.uniform(size=n)
    A2, b2 = A[:1], mv(A[:1], y0)
    w = 0.5 + rng.uniform(size=n)
    al, be = -np.ones(n), 2 * np.ones(n)
    c = 0.5 * float(vdot(w, al + be))
    Ay0 = mv(A, y0)
    return {
        "non_negative": (P.projection_non_negative, lambda p: max(0.0, -np.min(p)), True),
        "box": _box(n) + (True,),
        "hypercube": (lambda x: P.projection_hypercube(x, 2.0),
                      lambda p: max(0.0, -np.min(p), np.max(p) - 2.0), True),
        "linf_ball": (lambda x: P.projection_linf_ball(x, 0.7),
                      lambda p: max(0.0, np.max(np.abs(p)) - 0.7), True),
        "simplex": (lambda x: P.projection_simplex(x, 2.5),
                    lambda p: max(0.0, -np.min(p), abs(np.sum(p) - 2.5)), True),
        "l1_ball": (lambda x: P.projection_l1_ball(x, 1.5),
                    lambda p: max(0.0, np.sum(np.abs(p)) - 1.5), True),
        "l2_ball": (lambda x: P.projection_l2_ball(x, 1.5),
                    lambda p: max(0.0, np.linalg.norm(p) - 1.5), True),
        "hyperplane": (lambda x: P.projection_hyperplane(x, (a, 0.3)),
                       lambda p: abs(a @ p - 0.3) / np.linalg.norm(a), True),
        "halfspace": (lambda x: P.projection_halfspace(x, (a, 0.3)),
                      lambda p: max(0.0, a @ p - 0.3) / np.linalg.norm(a), True),
        "affine_set": (lambda x: P.projection_affine_set(x, (A, Ay0)),
                       lambda p: np.max(np.abs(A @ p - Ay0)), True),
        "polyhedron": (lambda x: P.projection_polyhedron(x, (A2, b2, G, h)),
                       lambda p: max(np.max(np.abs(A2 @ p - b2)), np.max(G @ p - h), 0.0), True),
        "box_section": (lambda x: P.projection_box_section(x, (al, be, w, c)),
                        lambda p: max(0.0, np.max(al - p), np.max(p - be),
                                      abs(w @ p - c) - 2e-5), True),
        "l1_sphere": (lambda x: P.projection_l1_sphere(x, 1.5),
                      lambda p: abs(np.sum(np.abs(p)) - 1.5), False),
        "l2_sphere": (lambda x: P.projection_l2_sphere(x, 1.5),
                      lambda p: abs(np.linalg.norm(p) - 1.5), False),
        "sparse_simplex": (lambda x: P.projection_sparse_simplex(x, 2),
                           lambda p: max(0.0, -np.min(p), abs(np.sum(p) - 1.0),
                                         float(np.count_nonzero(p) > 2)), False),
    }


SET_NAMES = sorted(_sets(3))
CONVEX = [s for s in SET_NAMES if _sets(3)[s][2]]
# box_section is a bisection stopped at |<w, p> - c| <= 1e-5 (as jaxopt): its
# answers are exact only to that level
APPROX = {"box_section": 1e-4}


def _tol(name, x):
    return APPROX.get(name, 1e-9) * (1.0 + np.max(np.abs(x)))


@pytest.mark.parametrize("name", SET_NAMES)
@given(xs=pairs(n_min=2))
def test_in_set_and_idempotent(name, xs):
    x = xs[0]
    if name in ("l2_sphere", "l1_sphere") and not np.any(x):
        return                      # every point of the sphere is nearest; jaxopt: NaN / 0
    proj, violation, _ = _sets(x.size)[name]
    p = proj(x)
    assert p.shape == x.shape and p.dtype == x.dtype
    assert violation(p) <= _tol(name, x)
    assert np.max(np.abs(proj(p) - p)) <= _tol(name, x)


@pytest.mark.parametrize("name", CONVEX)
@given(xs=pairs(n_min=2))
def test_non_expansive_and_variational_inequality(name, xs):
    x, y, r = xs
    proj = _sets(x.size)[name][0]
    px, py = proj(x), proj(y)
    tol = _tol(name, np.concatenate([x, y]))
    assert norm(px - py) <= norm(x - y) + (1e3 * tol if name in APPROX else tol)
    if name in APPROX:
        return
    z = proj(r)                                   # a point of the set
    assert np.dot(x - px, z - px) <= tol * (1 + norm(x - px) * (1 + norm(z - px)))


@given(xs=pairs(n_min=1, n_max=7))
def test_nonconvex_projections_are_nearest(xs):
    """Sparse simplex: best over every support of size <= max_nz; spheres: as
    close as any other point of the sphere we can think of."""
    x, r = xs[0], xs[1]
    k = min(2, x.size)
    p = P.projection_sparse_simplex(x, k)
    best = np.inf
    for size in range(1, k + 1):
        for supp in itertools.combinations(range(x.size), size):
            q = np.zeros_like(x)
            q[list(supp)] = P.projection_simplex(x[list(supp)])
            best = min(best, norm(x - q))
    assert norm(x - p) <= best + 1e-9
    for proj, rescale in ((lambda v: P.projection_l2_sphere(v, 1.5),
                           lambda v: 1.5 * v / np.linalg.norm(v)),
                          (lambda v: P.projection_l1_sphere(v, 1.5),
                           lambda v: 1.5 * v / np.sum(np.abs(v)))):
        if np.any(x) and np.any(r):
            assert norm(x - proj(x)) <= norm(x - rescale(r)) + 1e-9


@given(x=hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 6)),
                    elements=floats(10.0)))
def test_rows_are_independent(x):
    """2-D input: each row projected on its own (jax.vmap of the 1-D projection)."""
    for f in (lambda v: P.projection_simplex(v, 2.0), lambda v: P.projection_l1_ball(v, 1.0),
              lambda v: P.projection_l1_sphere(v, 1.0),
              lambda v: P.projection_sparse_simplex(v, 1)):
        out = f(x)
        for i in range(x.shape[0]):
            assert np.array_equal(out[i], f(x[i]))


@given(x=vec(scale=100.0))
def test_float32_simplex_close_to_float64(x):
    p32 = P.projection_simplex(x.astype(np.float32))
    assert p32.dtype == np.float32
    assert np.max(np.abs(p32 - P.projection_simplex(x))) <= 1e-5 * (1 + np.max(np.abs(x)))


def test_simplex_known_values():
    assert np.allclose(P.projection_simplex(np.zeros(4)), 0.25)
    assert np.allclose(P.projection_simplex(np.array([3.0, 0.0, 0.0])), [1, 0, 0])
    x = np.array([0.2, 0.3, 0.5])
    assert np.allclose(P.projection_simplex(x), x)
    assert np.allclose(P.projection_simplex(x * 2, value=2.0), x * 2)
    # l1 ball: inside untouched, outside on the sphere
    assert np.array_equal(P.projection_l1_ball(x * 0.5), x * 0.5)
    assert np.isclose(np.sum(np.abs(P.projection_l1_ball(-4 * x))), 1.0)


# ---------------------------------------------------------------------------
# cross-checks between methods
# ---------------------------------------------------------------------------

@settings(max_examples=20)
@given(x=vec(n_min=2, n_max=10))
def test_polyhedron_agrees_with_simplex(x):
    n = x.size
    p = P.projection_polyhedron(x, (np.ones((1, n)), np.ones(1), -np.eye(n), np.zeros(n)))
    assert np.max(np.abs(p - P.projection_simplex(x))) <= 1e-10 * (1 + np.max(np.abs(x)))


@settings(max_examples=20)
@given(x=vec(n_min=2, n_max=10))
def test_box_section_agrees_with_polyhedron(x):
    n = x.size
    rng = np.random.default_rng(n)
    w = 0.5 + rng.uniform(size=n)
    al, be = -np.ones(n), 2 * np.ones(n)
    c = float(w @ (0.3 * al + 0.7 * be))
    p = P.projection_box_section(x, (al, be, w, c))
    exact = P.projection_polyhedron(x, (w[None, :], np.array([c]), np.vstack([np.eye(n), -np.eye(n)]),
                                        np.concatenate([be, -al])))
    # jaxopt's bisection stops at |<w, p> - c| <= 1e-5
    assert np.max(np.abs(p - exact)) <= 1e-4


def _transport_qp(S, a, b):
    """The l2 transport projection as a polyhedron projection (independent method)."""
    m, n = S.shape
    A = np.vstack([np.kron(np.eye(m), np.ones((1, n))), np.kron(np.ones((1, m)), np.eye(n))])
    return P.projection_polyhedron(S.ravel(), (A, np.concatenate([a, b]), -np.eye(m * n),
                                               np.zeros(m * n))).reshape(m, n)


def _sinkhorn(K, a, b, iters=20000):
    u = np.ones_like(a)
    for _ in range(iters):
        v = b / (K.T @ u)
        u = a / (K @ v)
    return u[:, None] * K * v[None, :]


@settings(max_examples=15)
@given(seed=st.integers(0, 10 ** 6), m=st.integers(1, 5), n=st.integers(1, 5),
       scale=st.sampled_from([0.1, 1.0, 3.0]))
def test_transport_against_independent_methods(seed, m, n, scale):
    rng = np.random.default_rng(seed)
    S = scale * rng.standard_normal((m, n))
    a = rng.uniform(0.5, 1.5, m)
    b = rng.uniform(0.5, 1.5, n)
    b *= a.sum() / b.sum()
    Pl = P.projection_transport(S, (a, b))
    assert np.min(Pl) >= 0
    assert np.allclose(Pl.sum(1), a, rtol=0, atol=1e-11) and np.allclose(Pl.sum(0), b, atol=1e-11)
    assert np.max(np.abs(Pl - _transport_qp(S, a, b))) <= 1e-9
    Pk = P.kl_projection_transport(S, (a, b))
    assert np.max(np.abs(Pk - _sinkhorn(np.exp(S), a, b))) <= 1e-9
    # the dual formulation gives the same plan
    assert np.max(np.abs(P.projection_transport(S, (a, b), use_semi_dual=False) - Pl)) <= 1e-12


def test_birkhoff():
    rng = np.random.default_rng(0)
    S = rng.standard_normal((6, 6))
    for f in (P.projection_birkhoff, P.kl_projection_birkhoff):
        D = f(S)
        assert np.allclose(D.sum(0), 1, atol=1e-12) and np.allclose(D.sum(1), 1, atol=1e-12)
        assert np.min(D) >= 0
    # a doubly stochastic matrix is its own (Euclidean) projection
    D = P.kl_projection_birkhoff(S)
    assert np.max(np.abs(P.projection_birkhoff(D) - D)) <= 1e-12
    # KL: exp(S) rescaled; a permutation-like S gives a near-permutation
    perm = np.eye(4)[[2, 0, 3, 1]]
    assert np.allclose(P.kl_projection_birkhoff(30 * perm), perm, atol=1e-10)
    assert np.allclose(P.projection_birkhoff(30 * perm), perm, atol=1e-10)


class _ScipySolver:
    """A stand-in for jaxopt.LBFGS (npopt's comes with the solvers): minimises
    fun.value_and_grad with scipy's L-BFGS-B."""

    def __init__(self, fun):
        self.fun = fun

    def run(self, init_params, **kwargs):
        from scipy.optimize import minimize
        from npopt.tree import ravel
        flat, unravel = ravel(init_params)

        def vg(v):
            f, g = self.fun.value_and_grad(unravel(v), **kwargs)
            return f, ravel(g)[0]

        res = minimize(vg, flat, jac=True, method="L-BFGS-B",
                       options=dict(gtol=1e-13, ftol=1e-15, maxiter=10000))
        return types.SimpleNamespace(params=unravel(res.x))


@pytest.mark.parametrize("kl", [False, True])
@pytest.mark.parametrize("semi", [True, False])
def test_make_solver(kl, semi):
    rng = np.random.default_rng(3)
    S = rng.standard_normal((4, 3))
    a = np.full(4, 0.25)
    b = np.array([0.5, 0.25, 0.25])
    f = P.kl_projection_transport if kl else P.projection_transport
    seen = []

    def make_solver(fun):
        seen.append(fun)
        return _ScipySolver(fun)

    got = f(S, (a, b), make_solver=make_solver, use_semi_dual=semi)
    assert len(seen) == 1
    assert np.max(np.abs(got - f(S, (a, b)))) <= 1e-6
    # fun(params, ...) returns the value, and fun.grad matches finite differences
    fun = seen[0]
    kw = dict(cost_matrix=-S, marginals_a=a, marginals_b=b)
    params = rng.standard_normal(4) if semi else (rng.standard_normal(4), rng.standard_normal(3))
    v = fun(params, **kw)
    assert np.isscalar(v) or np.ndim(v) == 0
    from npopt.tree import ravel
    flat, unravel = ravel(params)
    g = ravel(fun.grad(params, **kw))[0]
    e = 1e-6
    fd = np.array([(fun(unravel(flat + e * d), **kw) - fun(unravel(flat - e * d), **kw)) / (2 * e)
                   for d in np.eye(flat.size)])
    assert np.max(np.abs(fd - g)) <= 1e-6


# ---------------------------------------------------------------------------
# pytrees
# ---------------------------------------------------------------------------

Pt = namedtuple("Pt", ["u", "v"])


def _tree():
    rng = np.random.default_rng(5)
    return {"a": rng.standard_normal(4), "b": [rng.standard_normal((2, 3)).astype(np.float32),
                                               None, (np.float64(-0.7),)],
            "c": Pt(u=rng.standard_normal(3), v=np.array(1.5))}


@pytest.mark.parametrize("proj", [
    P.projection_non_negative,
    lambda t: P.projection_box(t, (-0.5, 0.5)),
    lambda t: P.projection_box(t, (tree_map(lambda v: np.full(np.shape(v), -0.2), t), 0.4)),
    lambda t: P.projection_hypercube(t),
    lambda t: P.projection_linf_ball(t, 0.3),
    lambda t: P.projection_l2_ball(t, 0.5),
    lambda t: P.projection_l2_sphere(t, 2.0),
    lambda t: P.projection_hyperplane(t, (tree_map(np.ones_like, t), 1.0)),
    lambda t: P.projection_halfspace(t, (tree_map(np.ones_like, t), -1.0)),
])
def test_pytree_round_trip(proj):
    t = _tree()
    out = proj(t)
    assert tree_structure(out) == tree_structure(t)
    for o, x in zip(tree_leaves(out), tree_leaves(t)):
        assert isinstance(o, np.ndarray) and o.shape == np.shape(x)
        assert o.dtype == np.asarray(x).dtype
    # same numbers as projecting the raveled vector (the sets are products / use the full norm)
    flat = np.concatenate([np.ravel(x).astype(np.float64) for x in tree_leaves(t)])
    got = np.concatenate([np.ravel(x).astype(np.float64) for x in tree_leaves(out)])
    ref = proj(flat)
    assert np.max(np.abs(got - ref)) <= 1e-6
    # idempotent and the input untouched
    again = np.concatenate([np.ravel(x).astype(np.float64) for x in tree_leaves(proj(out))])
    assert np.max(np.abs(again - got)) <= 1e-6
    assert all(np.array_equal(a, b) for a, b in zip(tree_leaves(t), tree_leaves(_tree())))


def test_l2_ball_and_sphere_use_the_tree_norm():
    t = {"a": np.array([3.0]), "b": np.array([4.0])}
    out = P.projection_l2_ball(t, 1.0)
    assert np.allclose(out["a"], 0.6) and np.allclose(out["b"], 0.8)
    assert P.projection_l2_ball(t, 5.0)["a"] is not t["a"]      # a copy
    with np.errstate(all="ignore"):
        assert np.all(np.isnan(P.projection_l2_sphere(np.zeros(3))))   # as jaxopt: 0/0


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------

X = np.array([0.5, -1.0, 2.0])


@pytest.mark.parametrize("call,exc,match", [
    (lambda: P.projection_box(X, (1.0, 0.0)), ValueError, r"lower <= upper"),
    (lambda: P.projection_box(X, (np.zeros(3), np.array([1.0, -1.0, 1.0]))), ValueError,
     r"got lower > upper at 1 entries"),
    (lambda: P.projection_box(X, (np.zeros(4), 1.0)), ValueError,
     r"^hyperparams\[0\] \(lower\): expected a scalar or an array broadcastable to the shape \(3,\)"),
    (lambda: P.projection_box(X, (0.0,)), TypeError, r"^hyperparams: expected a tuple"),
    (lambda: P.projection_box({"a": X}, ({"b": X}, 1.0)), ValueError,
     r"^hyperparams\[0\] \(lower\): expected a scalar or a pytree with the structure of x"),
    (lambda: P.projection_box(X, (np.nan, 1.0)), ValueError, r"not NaN"),
    (lambda: P.projection_box(np.arange(3), (0.0, 1.0)), TypeError, r"^x: expected floating"),
    (lambda: P.projection_non_negative({"a": np.arange(3)}), TypeError, r"^x: expected floating"),
    (lambda: P.projection_hypercube(X, -1.0), ValueError, r"^unit: expected a finite number >= 0"),
    (lambda: P.projection_linf_ball(X, -0.1), ValueError, r"^max_value: expected"),
    (lambda: P.projection_simplex(X, 0.0), ValueError, r"^value: expected a finite number > 0"),
    (lambda: P.projection_simplex(X, -1.0), ValueError, r"^value: expected"),
    (lambda: P.projection_simplex(np.float64(1.0)), ValueError, r"^x: expected an array with at"),
    (lambda: P.projection_sparse_simplex(X, 0), ValueError, r"^max_nz: expected an integer in \[1, 3\]"),
    (lambda: P.projection_sparse_simplex(X, 4), ValueError, r"^max_nz: expected"),
    (lambda: P.projection_sparse_simplex(X, 2.0), ValueError, r"^max_nz: expected"),
    (lambda: P.projection_l1_sphere(X, 0.0), ValueError, r"^value: expected a finite number > 0"),
    (lambda: P.projection_l1_ball(X, 0.0), ValueError, r"^max_value: expected a finite number > 0"),
    (lambda: P.projection_l2_ball(X, -1.0), ValueError, r"^max_value: expected a finite number >= 0"),
    (lambda: P.projection_l2_sphere(X, float("inf")), ValueError, r"^value: expected a finite"),
    (lambda: P.projection_hyperplane(X, (np.ones(4), 0.0)), ValueError,
     r"^hyperparams\[0\] \(a\): expected the shapes of x's leaves"),
    (lambda: P.projection_hyperplane(X, (np.zeros(3), 0.0)), ValueError, r"non-zero normal"),
    (lambda: P.projection_halfspace(X, (np.ones(3), np.ones(2))), TypeError,
     r"^hyperparams\[1\] \(b\): expected a scalar"),
    (lambda: P.projection_affine_set(X, (np.ones((2, 4)), np.ones(2))), ValueError,
     r"^hyperparams\[0\] \(A\): expected a matrix with 3 columns"),
    (lambda: P.projection_affine_set(X, (np.ones((2, 3)), np.ones(3))), ValueError,
     r"^hyperparams\[1\] \(b\): expected a vector of length 2"),
    (lambda: P.projection_affine_set(X, (np.ones((2, 3)), np.array([0.0, 1.0]))), ValueError,
     r"is empty"),
    (lambda: P.projection_polyhedron(X, (np.ones((1, 3)), np.ones(1), np.eye(3), -np.ones(3))),
     ValueError, r"^The polyhedron is empty\.$"),
    (lambda: P.projection_polyhedron(X, (np.ones((1, 3)), np.ones(1), np.eye(3))), TypeError,
     r"^hyperparams: expected a tuple \(A, b, G, h\)"),
    (lambda: P.projection_polyhedron(X, (None, None, np.eye(2), np.ones(2))), ValueError,
     r"^hyperparams\[2\] \(G\): expected a matrix with 3 columns"),
    (lambda: P.projection_polyhedron(X, (None, None, np.eye(3), np.ones(3)), tol=0.0), ValueError,
     r"^tol: expected"),
    (lambda: P.projection_box_section(X, (np.ones(3), np.zeros(3), np.ones(3), 1.0)), ValueError,
     r"expected alpha <= beta"),
    (lambda: P.projection_box_section(X, (np.zeros(3), np.ones(3), np.array([1.0, 0.0, 1.0]), 1.0)),
     ValueError, r"^hyperparams\[2\] \(w\): expected w > 0"),
    (lambda: P.projection_box_section(X, (np.zeros(2), np.ones(3), np.ones(3), 1.0)), ValueError,
     r"^hyperparams\[0\] \(alpha\): expected an array of the shape \(3,\)"),
    (lambda: P.projection_box_section(X, (np.zeros(3), np.ones(3), np.ones(3), 5.0),
                                      check_feasible=True), ValueError,
     r"^beta should satisfy dot\(w, beta\) >= c$"),
    (lambda: P.projection_box_section(X, (np.zeros(3), np.ones(3), np.ones(3), -1.0),
                                      check_feasible=True), ValueError,
     r"^alpha should satisfy dot\(w, alpha\) <= c$"),
    (lambda: P.projection_transport(np.ones((2, 3)), (np.ones(2), np.ones(3))), ValueError,
     r"^marginals: expected sum\(marginals_a\) == sum\(marginals_b\)"),
    (lambda: P.projection_transport(np.ones((2, 3)), (np.ones(3), np.ones(3))), ValueError,
     r"^marginals\[0\] \(marginals_a\): expected a vector of length 2"),
    (lambda: P.projection_transport(np.ones((2, 2)), (np.array([1.0, 0.0]), np.array([0.5, 0.5]))),
     ValueError, r"expected finite positive entries"),
    (lambda: P.projection_transport(np.ones(3), (np.ones(3), np.ones(3))), ValueError,
     r"^sim_matrix: expected an array with at least 2"),
    (lambda: P.projection_birkhoff(np.ones((2, 3))), ValueError,
     r"^sim_matrix: expected a square matrix"),
    (lambda: P.kl_projection_birkhoff(np.ones((2, 2)), use_semi_dual=1), TypeError,
     r"^use_semi_dual: expected True or False"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_bad_input_touches_nothing():
    x = {"a": X.copy(), "b": np.ones(2)}
    with pytest.raises(ValueError):
        P.projection_box(x, ({"a": 0.0, "b": 2.0}, {"a": 1.0, "b": 1.0}))
    assert np.array_equal(x["a"], X) and np.array_equal(x["b"], np.ones(2))


# ---------------------------------------------------------------------------
# CUDA kernels (simulator under tests/conftest.py) against the CPU kernels
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("which", ["non_negative", "box", "box_arrays", "hypercube", "linf_ball"])
def test_cuda_matches_cpu(which, dt):
    cuda = pytest.importorskip("numba.cuda")
    from npopt._target import is_device_array
    rng = np.random.default_rng(0)
    x = {"a": rng.standard_normal((5, 7)).astype(dt), "b": rng.standard_normal(300).astype(dt)}
    lo = {k: -rng.uniform(size=v.shape).astype(dt) for k, v in x.items()}
    hi = {k: rng.uniform(size=v.shape).astype(dt) for k, v in x.items()}
    f = {"non_negative": P.projection_non_negative,
         "box": lambda t, *b: P.projection_box(t, (-0.25, 0.5)),
         "box_arrays": lambda t, lo, hi: P.projection_box(t, (lo, hi)),
         "hypercube": lambda t, *b: P.projection_hypercube(t, 0.5),
         "linf_ball": lambda t, *b: P.projection_linf_ball(t, 0.3)}[which]
    dev = lambda t: tree_map(cuda.to_device, t)  # noqa: E731
    args = (lo, hi) if which == "box_arrays" else ()
    want = f(x, *args)
    got = f(dev(x), *[dev(a) for a in args])
    for g, w in zip(tree_leaves(got), tree_leaves(want)):
        assert is_device_array(g)
        assert np.array_equal(g.copy_to_host(), w)


def test_cuda_arrays_refused_where_there_is_no_kernel():
    cuda = pytest.importorskip("numba.cuda")
    d = cuda.to_device(X)
    with pytest.raises(TypeError, match=r"^x: CUDA arrays are supported by the elementwise"):
        P.projection_simplex(d)
    with pytest.raises(TypeError, match=r"array bound must be a CUDA array too"):
        P.projection_box(d, (np.zeros(3), 1.0))
