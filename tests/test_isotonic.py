"""npopt.isotonic.isotonic_l2_pav: jaxopt's reference values, the geometry of
the projection onto the monotone cone, scipy's isotonic regression as an
independent check, bad input, and the CUDA kernel (simulator) against the CPU.
"""
import types

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import npopt.isotonic
import npopt.projection
from conftest import rel_err
from npopt.isotonic import isotonic_l2_pav
from reference.make_projection_reference import CASES, DTYPES, OUT

NS = types.SimpleNamespace(projection=npopt.projection, isotonic=npopt.isotonic)
ISO_CASES = sorted(c for c in CASES if c.startswith("isotonic"))


@pytest.fixture(scope="module")
def ref():
    with np.load(OUT) as z:
        return {k: z[k] for k in z.files if "/isotonic" in k}


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("name", ISO_CASES)
def test_matches_jaxopt(ref, name, dt):
    inputs = {k.rsplit("/", 1)[1]: v for k, v in ref.items() if k.startswith(f"{dt}/{name}/in/")}
    expected = ref[f"{dt}/{name}/out/0"]
    got = CASES[name]["call"](NS, inputs)
    assert got.dtype == np.dtype(dt) and got.shape == expected.shape
    # the same float64 pooling as jaxopt's numba code: bit for bit
    assert rel_err(got, expected) <= CASES[name]["rtol"][dt]
    assert np.array_equal(got, expected)


def vec(n_max=30):
    return hnp.arrays(np.float64, st.integers(1, n_max),
                      elements=st.floats(-100, 100, allow_nan=False))


def triples(n_max=30):
    return st.integers(1, n_max).flatmap(lambda n: st.tuples(
        *[hnp.arrays(np.float64, n, elements=st.floats(-100, 100, allow_nan=False))] * 3))


@given(ys=triples())
def test_projection_onto_the_monotone_cone(ys):
    y, y2, r = ys
    tol = 1e-9 * (1 + np.max(np.abs(np.concatenate(ys))))
    for inc in (True, False):
        v = isotonic_l2_pav(y, increasing=inc)
        d = np.diff(v)
        assert np.all(d >= -tol) if inc else np.all(d <= tol)          # in the cone
        assert np.max(np.abs(isotonic_l2_pav(v, increasing=inc) - v)) <= tol   # idempotent
        v2 = isotonic_l2_pav(y2, increasing=inc)
        assert np.linalg.norm(v - v2) <= np.linalg.norm(y - y2) + tol  # non-expansive
        z = np.sort(r) if inc else np.sort(r)[::-1]                    # a point of the cone
        assert np.dot(y - v, z - v) <= tol * (1 + np.linalg.norm(y - v) * np.linalg.norm(z - v))
        # pools are means: the total is kept (the cone contains the constants, both signs)
        assert abs(np.sum(v) - np.sum(y)) <= tol * y.size


@given(y=vec())
def test_agrees_with_scipy(y):
    from scipy.optimize import isotonic_regression
    for inc in (True, False):
        want = isotonic_regression(y, increasing=inc).x
        assert np.max(np.abs(isotonic_l2_pav(y, increasing=inc) - want)) <= \
            1e-10 * (1 + np.max(np.abs(y)))


@given(y=vec(), lo=st.floats(-50, 50), width=st.floats(0, 50))
def test_bounds_clip_the_solution(y, lo, width):
    hi = lo + width
    out = isotonic_l2_pav(y, y_min=lo, y_max=hi)
    assert np.array_equal(out, np.clip(isotonic_l2_pav(y), lo, hi))
    assert np.all(out >= lo) and np.all(out <= hi)


@given(y=vec())
def test_float32_is_the_rounded_float64_pooling(y):
    """jaxopt pools in float64 and rounds once: so does npopt."""
    y32 = y.astype(np.float32)
    for inc in (True, False):
        got = isotonic_l2_pav(y32, increasing=inc)
        assert got.dtype == np.float32
        assert np.array_equal(got, isotonic_l2_pav(y32.astype(np.float64),
                                                   increasing=inc).astype(np.float32))


def test_known_values_and_rows():
    assert np.array_equal(isotonic_l2_pav(np.array([3.0, 1.0, 2.0])), [2.0, 2.0, 2.0])
    assert np.array_equal(isotonic_l2_pav(np.array([1.0, 3.0, 2.0, 4.0])), [1.0, 2.5, 2.5, 4.0])
    assert np.array_equal(isotonic_l2_pav(np.array([1.0, 3.0, 2.0]), increasing=False),
                          [2.0, 2.0, 2.0])
    y = np.random.default_rng(0).standard_normal((2, 3, 9))
    out = isotonic_l2_pav(y, increasing=False)
    for idx in np.ndindex(2, 3):
        assert np.array_equal(out[idx], isotonic_l2_pav(y[idx], increasing=False))
    assert isotonic_l2_pav(np.zeros(0)).shape == (0,)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: isotonic_l2_pav(np.ones(3), y_min=1.0, y_max=0.0), ValueError,
     r"^y_min, y_max: expected y_min <= y_max"),
    (lambda: isotonic_l2_pav(np.ones(3), y_min=float("nan")), ValueError, r"^y_min: expected"),
    (lambda: isotonic_l2_pav(np.ones(3), y_max="1"), ValueError, r"^y_max: expected"),
    (lambda: isotonic_l2_pav(np.arange(3)), TypeError, r"^y: expected a float32 or float64"),
    (lambda: isotonic_l2_pav(1.0), ValueError, r"^y: expected a 1-D array"),
    (lambda: isotonic_l2_pav(np.ones(3), increasing=1), TypeError,
     r"^increasing: expected True or False"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(17,), (5, 33)])
def test_cuda_matches_cpu(dt, shape):
    cuda = pytest.importorskip("numba.cuda")
    y = np.random.default_rng(1).standard_normal(shape).astype(dt)
    for kw in (dict(), dict(increasing=False, y_min=-0.4, y_max=0.9)):
        got = isotonic_l2_pav(cuda.to_device(y), **kw)
        assert np.array_equal(got.copy_to_host(), isotonic_l2_pav(y, **kw))
