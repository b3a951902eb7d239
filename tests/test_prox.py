"""npopt.prox: jaxopt 0.8.5's proximity operators.

* Reference: every case of tests/reference/make_prox_loss_reference.py
  (jaxopt, x64) to 1e-10 (float64) / 1e-5 (float32), leaf by leaf, with
  the output's structure and dtype.
* Properties (hypothesis): the optimality condition
  ``x - prox(x) ∈ scaling · ∂g(prox(x))``, firm non-expansiveness,
  ``make_prox_from_projection`` gives the projection, pytree round trips,
  separable operators act leaf by leaf.
* The parallel CPU loops and the CUDA kernels (simulator) agree with the
  serial CPU loops.
* Bad input: errors naming the argument.
"""
import collections
import types

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import npopt
import npopt.loss
import npopt.objective
import npopt.projection
import npopt.prox as P
from conftest import TOL, rel_err
from npopt import tree as T
from reference import make_prox_loss_reference as R
from reference.fixed_order import mv

NS = types.SimpleNamespace(prox=P, loss=npopt.loss, objective=npopt.objective)
REF = np.load(R.OUT)
F64 = np.float64


# ---------------------------------------------------------------------------
# reference values (jaxopt, x64)
# ---------------------------------------------------------------------------

def _inputs(name, dtype):
    pre = f"{dtype}/{name}/in/"
    return {k[len(pre):]: REF[k] for k in REF.files if k.startswith(pre)}


@pytest.mark.parametrize("dtype", R.DTYPES)
@pytest.mark.parametrize("case", sorted(R.PROX_CASES))
def test_matches_jaxopt(case, dtype):
    I = _inputs(case, dtype)
    # the stored inputs have the case's keys, shapes and dtypes (values may
    # differ if NumPy's generators change; the stored ones are used)
    made = R.case_inputs(case, dtype)
    assert sorted(made) == sorted(I)
    assert all(I[k].shape == v.shape and I[k].dtype == v.dtype for k, v in made.items())
    out = R.CASES[case]["call"](NS, I)
    x = R.tree(I, "x")
    x = x["v"] if list(x) == ["v"] else x
    assert T.tree_structure(out) == T.tree_structure(x)
    for i, (o, xi) in enumerate(zip(T.tree_leaves(out), T.tree_leaves(x))):
        assert isinstance(o, np.ndarray) and o.dtype == np.dtype(dtype) and o.shape == xi.shape
        ref = REF[f"{dtype}/{case}/out/{i}"]
        assert rel_err(o, ref) <= TOL[np.dtype(dtype)], (i, rel_err(o, ref))


def test_reference_file_covers_every_case():
    names = {k.split("/")[1] for k in REF.files if "/" in k}
    assert set(R.CASES) <= names


# ---------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------

finite = st.floats(-10, 10, allow_nan=False, allow_subnormal=False)
vectors = hnp.arrays(F64, st.integers(1, 12), elements=finite)
strength = st.floats(0, 3, allow_nan=False, allow_subnormal=False)
scalings = st.floats(0.01, 3, allow_nan=False, allow_subnormal=False)
ATOL = 1e-12


def _sign_check(x, y, thr, rtol=1e-12):
    """x - y ∈ thr · ∂|y| elementwise (thr may be an array)."""
    thr = np.broadcast_to(thr, x.shape)
    nz = y != 0
    err = np.abs((x - y) - thr * np.sign(y))[nz]
    assert np.all(err <= rtol * (1 + np.abs(x[nz]))), (x, y, thr)
    assert np.all(np.abs(x[~nz]) <= thr[~nz] * (1 + 1e-15) + rtol)


@given(vectors, strength, scalings)
def test_lasso_optimality(x, lam, s):
    _sign_check(x, P.prox_lasso(x, lam, s), lam * s)


@given(vectors, scalings, st.data())
def test_weighted_lasso_optimality(x, s, data):
    lam = data.draw(hnp.arrays(F64, x.shape, elements=strength))
    _sign_check(x, P.prox_lasso(x, lam, s), lam * s)


@given(vectors, strength, scalings)
def test_non_negative_lasso_optimality(x, lam, s):
    """g = lam ||y||_1 + indicator(y >= 0): y > 0 ⇒ x - y = s lam; y = 0 ⇒ x <= s lam."""
    y = P.prox_non_negative_lasso(x, lam, s)
    assert np.all(y >= 0)
    pos = y > 0
    np.testing.assert_allclose((x - y)[pos], lam * s, atol=ATOL * (1 + lam * s))
    assert np.all(x[~pos] <= lam * s + ATOL)


@given(vectors, strength, strength, scalings)
def test_elastic_net_optimality(x, lam, gam, s):
    """x - y - s lam gam y ∈ s lam ∂|y|."""
    y = P.prox_elastic_net(x, (lam, gam), s)
    _sign_check(x - s * lam * gam * y, y, lam * s)


@given(vectors, strength, scalings)
def test_group_lasso_optimality(x, lam, s):
    """y = 0 ⇒ ||x|| <= s lam; else x - y = s lam y / ||y||."""
    y = P.prox_group_lasso(x, lam, s)
    ny = np.linalg.norm(y)
    if ny == 0:
        assert np.linalg.norm(x) <= s * lam * (1 + 1e-14)
    else:
        np.testing.assert_allclose(x - y, s * lam * y / ny, atol=1e-10 * (1 + np.abs(x).max()))


@given(vectors, strength, scalings)
def test_ridge_optimality(x, lam, s):
    """g = lam/2 ||y||^2 (jaxopt's code, not its docstring): x - y = s lam y."""
    y = P.prox_ridge(x, lam, s)
    np.testing.assert_allclose(x - y, s * lam * y, atol=1e-12 * (1 + np.abs(x).max()))
    z = P.prox_non_negative_ridge(x, lam, s)
    np.testing.assert_array_equal(z, np.maximum(y, 0))


def _all_proxes(lam, gam):
    return {
        "lasso": lambda v, s: P.prox_lasso(v, lam, s),
        "non_negative_lasso": lambda v, s: P.prox_non_negative_lasso(v, lam, s),
        "elastic_net": lambda v, s: P.prox_elastic_net(v, (lam, gam), s),
        "group_lasso": lambda v, s: P.prox_group_lasso(v, lam, s),
        "ridge": lambda v, s: P.prox_ridge(v, lam, s),
        "non_negative_ridge": lambda v, s: P.prox_non_negative_ridge(v, lam, s),
        "none": lambda v, s: P.prox_none(v, None, s),
    }


@given(st.integers(1, 10).flatmap(lambda n: st.tuples(
    hnp.arrays(F64, n, elements=finite), hnp.arrays(F64, n, elements=finite))),
    strength, strength, scalings)
def test_firm_non_expansiveness(xz, lam, gam, s):
    """||P(x) - P(z)||^2 <= <P(x) - P(z), x - z> for every prox of a convex g."""
    x, z = xz
    for name, prox in _all_proxes(lam, gam).items():
        d = prox(x, s) - prox(z, s)
        assert d @ d <= d @ (x - z) + 1e-9 * (1 + (x - z) @ (x - z)), name


@given(vectors, st.floats(0.1, 3), st.floats(0, 5))
def test_make_prox_from_projection(x, radius, s):
    """The prox of an indicator is the projection, whatever the scaling."""
    for proj, hp in ((npopt.projection.projection_box, (-radius, radius)),
                     (npopt.projection.projection_l2_ball, radius),
                     (npopt.projection.projection_non_negative, None),
                     (npopt.projection.projection_simplex, radius)):
        prox = P.make_prox_from_projection(proj)
        np.testing.assert_array_equal(prox(x, hp, s), proj(x, hp))
        np.testing.assert_array_equal(prox(x, hp), proj(x, hp))


Pair = collections.namedtuple("Pair", "first second")


def _trees():
    leaf = st.one_of(
        hnp.arrays(st.sampled_from([np.float32, F64]), hnp.array_shapes(min_dims=0, max_dims=2,
                                                                         max_side=4),
                   elements=st.floats(-5, 5, width=32)),
        st.floats(-5, 5, width=32))
    return st.recursive(leaf, lambda kids: st.one_of(
        st.dictionaries(st.sampled_from("abcd"), kids, max_size=3),
        st.lists(kids, max_size=3),
        st.tuples(kids, kids),
        st.builds(Pair, kids, kids),
        st.builds(lambda a: [a, None], kids)), max_leaves=6)


@given(_trees(), strength, strength, scalings)
def test_pytree_round_trip(x, lam, gam, s):
    """Same structure, shapes and dtypes out; separable operators act leaf by leaf,
    group lasso on the whole tree as one vector."""
    leaves = T.tree_leaves(x)
    for name, prox in _all_proxes(lam, gam).items():
        out = prox(x, s)
        assert T.tree_structure(out) == T.tree_structure(x), name
        for o, v in zip(T.tree_leaves(out), leaves):
            v = np.asarray(v)
            assert np.shape(o) == v.shape and np.asarray(o).dtype == v.dtype, name
            if name not in ("group_lasso", "none"):
                np.testing.assert_array_equal(o, prox(v, s))
    if leaves and all(np.asarray(v).dtype == F64 for v in leaves):
        flat, unravel = T.ravel(x)
        got, _ = T.ravel(P.prox_group_lasso(x, lam, s))
        np.testing.assert_allclose(got, P.prox_group_lasso(flat, lam, s), rtol=1e-14,
                                   atol=1e-300)


def test_tree_hyperparams_match_scalar_ones():
    x = {"a": np.linspace(-2, 2, 9), "b": [np.float64(0.7), np.arange(4.0) - 1.5]}
    same = T.tree_map(lambda v: np.full(np.shape(v), 0.4), x)
    for f, hp, tree_hp in ((P.prox_lasso, 0.4, same), (P.prox_non_negative_lasso, 0.4, same),
                           (P.prox_elastic_net, (0.4, 1.5),
                            (same, T.tree_map(lambda v: np.full(np.shape(v), 1.5), x)))):
        for a, b in zip(T.tree_leaves(f(x, hp, 0.8)), T.tree_leaves(f(x, tree_hp, 0.8))):
            np.testing.assert_allclose(a, b, rtol=1e-15, atol=1e-300)
    # a per-leaf scalar, and an array broadcast along a leaf
    lam = {"a": 0.4, "b": [0.4, np.array([0.4])]}
    for a, b in zip(T.tree_leaves(P.prox_lasso(x, lam)), T.tree_leaves(P.prox_lasso(x, 0.4))):
        np.testing.assert_array_equal(a, b)


def test_special_values():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-300])
    out = P.prox_lasso(x, 0.5)
    assert np.isnan(out[0]) and out[1] == np.inf and out[2] == -np.inf
    np.testing.assert_array_equal(out[3:], 0.0)
    assert np.isnan(P.prox_non_negative_lasso(x, 0.5)[0])
    assert np.isnan(P.prox_non_negative_ridge(x, 0.5)[0])
    # group lasso of zero: zero (jaxopt: 1 - s*l2reg/0 = -inf -> 0), also with l2reg = 0
    for lam in (1.0, 0.0):
        np.testing.assert_array_equal(P.prox_group_lasso(np.zeros(3), lam), np.zeros(3))
    # Python floats are float64 0-d leaves; empty leaves and trees pass through
    assert P.prox_lasso(2.0).dtype == F64 and float(P.prox_lasso(2.0)) == 1.0
    assert P.prox_lasso(np.zeros(0, np.float32)).shape == (0,)
    assert P.prox_group_lasso({}) == {} and P.prox_lasso([]) == []
    assert P.prox_none(x) is x


def test_float32_thresholds_round_like_jaxopt():
    """lasso: float32(l1reg) * float32(scaling); non-negative lasso: the float64
    product rounded once (jaxopt's weakly typed Python floats)."""
    x = np.linspace(-1, 1, 101, dtype=np.float32)
    lam, s = 0.1, 3.0
    t32 = np.float32(lam) * np.float32(s)
    np.testing.assert_array_equal(P.prox_lasso(x, lam, s),
                                  np.sign(x) * np.maximum(np.abs(x) - t32, 0))
    np.testing.assert_array_equal(P.prox_non_negative_lasso(x, lam, s),
                                  np.maximum(x - np.float32(lam * s), 0))


# ---------------------------------------------------------------------------
# kernels: parallel CPU loops, chunked norms, CUDA (simulator)
# ---------------------------------------------------------------------------

def _big_cases():
    return {
        "lasso": lambda v, h: P.prox_lasso(v, 0.3, 0.7),
        "lasso_array": lambda v, h: P.prox_lasso(v, h, 0.7),
        "elastic_net_array": lambda v, h: P.prox_elastic_net(v, (h, h), 0.7),
        "group_lasso": lambda v, h: P.prox_group_lasso(v, 0.3, 0.7),
    }


@pytest.mark.parametrize("dtype", [np.float32, F64])
def test_parallel_loops_match_serial(dtype, monkeypatch):
    from npopt.kernels import _jit
    rng = np.random.default_rng(0)
    x = rng.standard_normal(3 * 4096 + 17).astype(dtype)      # several norm chunks
    lam = rng.uniform(0, 1, x.shape).astype(dtype)
    serial = {k: f(x, lam) for k, f in _big_cases().items()}
    monkeypatch.setattr(_jit, "PARALLEL_THRESHOLD", 1)
    for k, f in _big_cases().items():
        np.testing.assert_array_equal(f(x, lam), serial[k], err_msg=k)


def test_group_lasso_norm_is_chunked_in_order():
    x = np.random.default_rng(1).standard_normal(2 * 4096 + 5)
    parts = [np.sum(c * c) for c in (x[:4096], x[4096:8192], x[8192:])]
    norm = np.sqrt(parts[0] + parts[1] + parts[2])
    np.testing.assert_allclose(P.prox_group_lasso(x, 2.0), (1 - 2.0 / norm) * x, rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, F64])
def test_cuda_kernels_match_cpu(dtype):
    cuda = pytest.importorskip("numba.cuda", reason="numba-cuda not installed")
    rng = np.random.default_rng(2)
    x = {"a": rng.standard_normal((5, 7)).astype(dtype),
         "b": rng.standard_normal(9).astype(dtype)}
    lam = T.tree_map(lambda v: rng.uniform(0, 1, v.shape).astype(dtype), x)
    gam = T.tree_map(lambda v: rng.uniform(0, 2, v.shape).astype(dtype), x)
    dev = T.tree_map(cuda.to_device, x)
    dlam = T.tree_map(cuda.to_device, lam)
    dgam = T.tree_map(cuda.to_device, gam)
    calls = [
        lambda v, l, g: P.prox_lasso(v, 0.3, 0.7),
        lambda v, l, g: P.prox_lasso(v, l, 0.7),
        lambda v, l, g: P.prox_non_negative_lasso(v, 0.3, 0.7),
        lambda v, l, g: P.prox_non_negative_lasso(v, l, 1.2),
        lambda v, l, g: P.prox_elastic_net(v, (0.5, 2.0), 0.7),
        lambda v, l, g: P.prox_elastic_net(v, (l, g), 0.7),
        lambda v, l, g: P.prox_group_lasso(v, 0.5, 2.0),
        lambda v, l, g: P.prox_ridge(v, 2.0, 0.25),
        lambda v, l, g: P.prox_non_negative_ridge(v, 2.0, 0.25),
    ]
    ulps = {np.dtype(np.float32): 1e-6, np.dtype(F64): 1e-15}[np.dtype(dtype)]
    for i, f in enumerate(calls):
        want = f(x, lam, gam)
        got = f(dev, dlam, dgam)
        for g, w in zip(T.tree_leaves(got), T.tree_leaves(want)):
            assert not isinstance(g, np.ndarray), i       # stays on the device
            h = g.copy_to_host()
            assert h.dtype == w.dtype
            assert rel_err(h, w) <= ulps, (i, rel_err(h, w))


def test_cuda_refuses_host_hyperparams_arrays():
    cuda = pytest.importorskip("numba.cuda", reason="numba-cuda not installed")
    x = cuda.to_device(np.ones(4))
    with pytest.raises(TypeError, match="l1reg: x is a CUDA array"):
        P.prox_lasso(x, np.ones(4))
    with pytest.raises(TypeError, match="l1reg: a CUDA array must be"):
        P.prox_lasso(np.ones(4), cuda.to_device(np.ones(4)))


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("call, err, match", [
    (lambda: P.prox_lasso(np.ones(3), -1.0), ValueError,
     r"l1reg: expected a finite number >= 0, got -1.0"),
    (lambda: P.prox_lasso(np.ones(3), np.nan), ValueError, "l1reg: expected a finite number"),
    (lambda: P.prox_lasso(np.ones(3), 1.0, -0.5), ValueError,
     "scaling: expected a finite number >= 0"),
    (lambda: P.prox_lasso(np.ones(3), np.array([1.0, -2.0, 1.0])), ValueError,
     r"l1reg: expected finite values >= 0, got -2.0"),
    (lambda: P.prox_lasso(np.ones(3), np.ones(4)), ValueError,
     r"l1reg: expected a scalar or an array broadcastable to the shape \(3,\)"),
    (lambda: P.prox_lasso({"a": np.ones(3)}, {"b": np.ones(3)}), ValueError,
     "l1reg: expected a number >= 0 or a pytree with the structure of x"),
    (lambda: P.prox_lasso({"a": np.ones(3), "b": np.ones(2)}, {"a": 1.0, "b": np.ones(3)}),
     ValueError, r"l1reg \(leaf 1\): expected a scalar or an array broadcastable"),
    (lambda: P.prox_lasso(np.ones(3), "a"), TypeError, "l1reg: expected real numbers, got 'a'"),
    (lambda: P.prox_non_negative_lasso(np.ones(3), -0.1), ValueError, "l1reg: expected"),
    (lambda: P.prox_elastic_net(np.ones(3), 1.0), TypeError,
     r"hyperparams: expected a tuple \(lam, gam\)"),
    (lambda: P.prox_elastic_net(np.ones(3), (1.0, -1.0)), ValueError,
     r"hyperparams\[1\]: expected a finite number >= 0"),
    (lambda: P.prox_elastic_net(np.ones(3), (np.ones(2), 1.0)), ValueError,
     r"hyperparams\[0\]: expected a scalar or an array broadcastable"),
    (lambda: P.prox_group_lasso(np.ones(3), -2.0), ValueError,
     "l2reg: expected a finite number >= 0"),
    (lambda: P.prox_group_lasso(np.ones(3), np.ones(3)), ValueError,
     "l2reg: expected a finite number"),
    (lambda: P.prox_ridge(np.ones(3), -2.0), ValueError, "l2reg: expected a finite number >= 0"),
    (lambda: P.prox_ridge(np.ones(3), 1.0, np.inf), ValueError,
     "scaling: expected a finite number"),
    (lambda: P.prox_non_negative_ridge(np.ones(3), -1), ValueError, "l2reg: expected"),
    (lambda: P.prox_lasso(np.ones(3, np.int64)), TypeError, "x: expected floating-point leaves"),
    (lambda: P.prox_ridge({"a": 3}), TypeError, "x: expected floating-point leaves"),
    (lambda: P.prox_lasso(np.ones(3, np.complex128)), TypeError, "x: expected floating-point"),
    (lambda: P.make_prox_from_projection(3), TypeError, "projection: expected a callable"),
])
def test_bad_input(call, err, match):
    with pytest.raises(err, match=match):
        call()


def test_bad_input_touches_nothing():
    x = {"a": np.ones(3), "b": np.ones(2)}
    before = T.tree_map(np.copy, x)
    with pytest.raises(ValueError):
        P.prox_lasso(x, {"a": 1.0, "b": -np.ones(2)})
    for a, b in zip(T.tree_leaves(x), T.tree_leaves(before)):
        np.testing.assert_array_equal(a, b)


def test_proximal_gradient_solves_the_lasso():
    """ProximalGradient with prox_lasso reaches the lasso's fixed point."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((30, 8))
    y = mv(X, np.r_[1.5, -2.0, np.zeros(6)]) + 0.1 * rng.standard_normal(30)   # no BLAS
    lam = 0.1
    solver = npopt.ProximalGradient(fun=npopt.objective.least_squares.value_and_grad,
                                    value_and_grad=True, prox=P.prox_lasso, tol=1e-10,
                                    maxiter=5000)
    w = solver.run(np.zeros(8), lam, data=(X, y)).params
    g = npopt.objective.least_squares.grad(w, (X, y))
    _sign_check(w - g, w, lam, rtol=1e-7)       # 0 ∈ ∇f(w) + lam ∂|w|
    assert np.count_nonzero(w) < 8


def test_float32_stays_float32_in_kernels():
    """Scalars reach the float32 kernels as float32 (a Python float would promote)."""
    from npopt.kernels import prox as k
    x = np.linspace(-1, 1, 11, dtype=np.float32)
    P.prox_lasso(x, 0.3, 0.5)
    P.prox_elastic_net(x, (0.3, 2.0), 0.5)
    P.prox_elastic_net(x, (np.full(11, 0.3), 2.0), 0.5)
    P.prox_group_lasso(x, 0.3, 0.5)
    for kern in (k.lasso_cpu, k.elastic_net_cpu, k.elastic_net_array_cpu, k.scale_cpu,
                 k.sumsq_chunks_cpu):
        sigs = [s for s in kern.serial.signatures if str(s[0].dtype) == "float32"]
        assert sigs, kern.__name__
        for sig in sigs:
            assert all(str(getattr(t, "dtype", t)) == "float32" for t in sig), sig
