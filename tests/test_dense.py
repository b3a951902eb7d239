"""npopt._dense and npopt._math: NumPy/SciPy's answers (to rounding), NumPy's
conventions (dtypes, shapes, errors), and the fixed order that makes the bits
independent of the CPU (one order for every product: ``(A @ B)[i, j]`` is
``dot(A[i], B[:, j])`` bit for bit, whatever the layout)."""
import numpy as np
import pytest
import scipy.linalg
import scipy.optimize
from hypothesis import given, settings, strategies as st

from npopt import _dense as D
from npopt import _math as M

DTYPES = [np.float32, np.float64, np.complex128]


def _rand(rng, shape, dt):
    x = rng.standard_normal(shape)
    if np.dtype(dt).kind == "c":
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dt)


def _tol(dt):
    return 2e-5 if np.dtype(dt) in (np.float32, np.complex64) else 1e-12


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2 ** 31 - 1), st.integers(1, 20), st.integers(0, 20), st.integers(1, 6),
       st.sampled_from(DTYPES))
def test_products_match_numpy_and_share_one_order(seed, m, k, n, dt):
    rng = np.random.default_rng(seed)
    A, B = _rand(rng, (m, k), dt), _rand(rng, (k, n), dt)
    x, y = _rand(rng, k, dt), _rand(rng, m, dt)
    AB, Ax, yA = D.dot(A, B), D.dot(A, x), D.dot(y, A)
    assert AB.dtype == Ax.dtype == yA.dtype == np.dtype(dt)
    scale = 1 + np.abs(A).max(initial=0) * max(np.abs(B).max(initial=0), 1) * k
    np.testing.assert_allclose(AB, A @ B, rtol=0, atol=_tol(dt) * scale)
    np.testing.assert_allclose(Ax, A @ x, rtol=0, atol=_tol(dt) * scale)
    np.testing.assert_allclose(yA, y @ A, rtol=0, atol=_tol(dt) * scale * m)
    for i in range(m):
        assert Ax[i] == D.dot(A[i], x)
        for j in range(n):
            assert AB[i, j] == D.dot(A[i], np.ascontiguousarray(B[:, j]))
    assert np.array_equal(D.dot(np.asfortranarray(A), x), Ax)
    assert np.array_equal(D.dot(A.T.copy().T, x), Ax)
    assert np.array_equal(D.dot(np.ascontiguousarray(A.T), y), yA)


def test_scalars_and_vdot_follow_numpy():
    a = np.array([1 + 2j, 3 - 1j])
    b = np.array([2 - 1j, 1j])
    assert D.vdot(a, b) == pytest.approx(np.vdot(a, b))
    assert isinstance(D.dot(np.ones(3), np.ones(3)), np.float64)
    assert isinstance(D.dot(np.ones(3, np.float32), np.ones(3, np.float32)), np.float32)
    assert D.dot(2.0, np.ones(2)).tolist() == [2.0, 2.0]
    assert D.dot(np.arange(3), np.arange(3)) == 5.0            # ints computed in float64
    assert D.sqnorm(a) == pytest.approx(np.vdot(a, a).real)
    assert D.norm(np.array([3.0, 4.0])) == 5.0
    with pytest.raises(ValueError, match="not aligned"):
        D.dot(np.ones((2, 3)), np.ones(4))
    with pytest.raises(ValueError, match="at most 2"):
        D.dot(np.ones((2, 2, 2)), np.ones((2, 2)))


@pytest.mark.parametrize("dt", DTYPES)
def test_factorizations_solve(dt):
    rng = np.random.default_rng(1)
    n = 9
    A = _rand(rng, (n, n), dt) + 4 * np.eye(n, dtype=dt)
    b = _rand(rng, n, dt)
    B = _rand(rng, (n, 3), dt)
    tol = 1e-4 if dt == np.float32 else 1e-10
    np.testing.assert_allclose(D.solve(A, b), np.linalg.solve(A, b), rtol=tol, atol=tol)
    np.testing.assert_allclose(D.solve(A, B), np.linalg.solve(A, B), rtol=tol, atol=tol)
    np.testing.assert_allclose(D.inv(A), np.linalg.inv(A), rtol=tol, atol=tol)
    P = A @ A.conj().T
    L = D.cholesky(P)
    np.testing.assert_allclose(L, np.linalg.cholesky(P), rtol=tol, atol=tol)
    U = D.cholesky(P, lower=False)
    np.testing.assert_allclose(U, scipy.linalg.cholesky(P), rtol=tol, atol=tol)
    np.testing.assert_allclose(D.cho_solve(L, b), np.linalg.solve(P, b), rtol=tol * 10,
                               atol=tol * 10)
    for mode in ("full", "economic"):
        C = _rand(rng, (11, 5), dt)
        q, r = D.qr(C, mode)
        q2, r2 = scipy.linalg.qr(C, mode=mode)
        np.testing.assert_allclose(q, q2, atol=tol)              # LAPACK's signs too
        np.testing.assert_allclose(r, r2, atol=tol * 10)
    T = np.triu(A)
    for trans in (False, True):
        want = scipy.linalg.solve_triangular(T, b, trans=("C" if trans else 0))
        np.testing.assert_allclose(D.solve_triangular(T, b, trans=trans), want, rtol=tol,
                                   atol=tol)
    # Hager-Higham estimates ||A^-1||_1 from below: rcond from above, within 3x
    # (exact up to EXACT_RCOND_MAX rows, so also for this 9 x 9 matrix)
    slack = 1e-4 if dt == np.float32 else 1e-9
    exact = 1 / np.linalg.cond(A, 1)
    assert exact * (1 - slack) <= D.rcond1(A) <= 3 * exact
    T = np.triu(A)
    assert 1 / np.linalg.cond(T, 1) * (1 - slack) <= D.tri_rcond1(T) <= 3 / np.linalg.cond(T, 1)


def test_rcond_estimate_of_a_large_matrix():
    rng = np.random.default_rng(7)
    n = D.EXACT_RCOND_MAX + 72
    A = rng.standard_normal((n, n)) + np.sqrt(n) * np.eye(n)
    exact = 1 / np.linalg.cond(A, 1)
    assert exact * (1 - 1e-9) <= D.rcond1(A) <= 3 * exact
    H = np.vander(np.linspace(0, 1, n), 8) @ rng.standard_normal((8, n)) + 1e-9 * np.eye(n)
    assert D.rcond1(H) <= 3 / np.linalg.cond(H, 1)          # ill-conditioned: tiny


def test_singular_and_indefinite_raise_as_numpy():
    with pytest.raises(np.linalg.LinAlgError, match="Singular"):
        D.solve(np.ones((3, 3)), np.ones(3))
    with pytest.raises(np.linalg.LinAlgError, match="positive definite"):
        D.cholesky(np.diag([1.0, -1.0]))
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        D.solve_triangular(np.diag([1.0, 0.0]), np.ones(2))
    assert D.rcond1(np.ones((2, 2))) == 0.0


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2 ** 31 - 1), st.integers(1, 8), st.integers(1, 8), st.integers(1, 8))
def test_svd_lstsq_and_null_space(seed, m, n, r):
    rng = np.random.default_rng(seed)
    r = min(r, m, n)
    A = rng.standard_normal((m, r)) @ rng.standard_normal((r, n))
    U, s, V = D.svd(A)
    k = min(m, n)
    np.testing.assert_allclose(s, np.linalg.svd(A, compute_uv=False), atol=1e-10)
    np.testing.assert_allclose((U * s) @ V[:, :k].T, A, atol=1e-10)
    np.testing.assert_allclose(V.T @ V, np.eye(n), atol=1e-10)
    rank = np.linalg.matrix_rank(A)
    np.testing.assert_allclose(A @ V[:, rank:], 0, atol=1e-10)
    b = rng.standard_normal(m)
    x, got_rank = D.lstsq(A, b)
    assert got_rank == rank
    np.testing.assert_allclose(x, np.linalg.lstsq(A, b, rcond=None)[0], atol=1e-8)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2 ** 31 - 1), st.integers(1, 10), st.integers(1, 6))
def test_nnls_matches_scipy(seed, m, n):
    rng = np.random.default_rng(seed)
    E, f = rng.standard_normal((m, n)), rng.standard_normal(m)
    u, rn = D.nnls(E, f)
    u2, rn2 = scipy.optimize.nnls(E, f)
    assert np.all(u >= 0)
    assert rn == pytest.approx(rn2, abs=1e-9)
    # KKT: the gradient E^T (f - E u) is <= 0, and 0 where u > 0
    w = E.T @ (f - E @ u)
    assert np.all(w <= 1e-9) and np.all(np.abs(w[u > 0]) <= 1e-9)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["exp", "log", "log1p", "expm1", "exp2", "cos", "tanh", "arctan"])
def test_math_matches_numpy(name, dt):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal(500) * 3).astype(dt)
    if name in ("log", "log1p"):
        x = np.abs(x) + dt(0.01)
    got, want = getattr(M, name)(x), getattr(np, name)(x)
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=4 * np.finfo(dt).eps, atol=0)
    assert isinstance(getattr(M, name)(dt(0.5)), dt)                 # scalars stay scalars
    np.testing.assert_allclose(M.power(np.abs(x) + 1, dt(0.37)),
                               np.power(np.abs(x) + 1, dt(0.37)), rtol=4 * np.finfo(dt).eps)


def test_math_edge_values():
    assert M.log(np.array([0.0, -1.0]))[0] == -np.inf and np.isnan(M.log(-1.0))
    assert M.log1p(-1.0) == -np.inf and np.isnan(M.log1p(-2.0))
    assert M.exp(np.array(1000.0)) == np.inf and M.exp(-np.inf) == 0.0
    assert M.exp(np.zeros(0)).shape == (0,)
    assert M.exp(np.arange(3)).dtype == np.float64
