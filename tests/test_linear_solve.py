"""npopt.linear_solve against jaxopt 0.8.5 and against NumPy.

* Stored jaxopt solves (tests/reference/make_linear_solve_reference.py, x64,
  jitted): the same solution to 1e-10 relative (float64/complex128; 1e-5 at
  float32) and, for CG / normal CG / GMRES / BiCGSTAB / refinement, the same
  number of iterations (jax's loops are deterministic).
* numpy.linalg.solve on random well-conditioned systems, with hypothesis
  properties (A x = b within the tolerance, linearity in b).
* Pytrees, ridge, init, dtypes, the non-convergence API (return_info, check)
  and bad input.
"""
import collections
import functools
import json
import os
import warnings

import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.linalg
from hypothesis import given, strategies as st

from npopt import linear_solve as ls
from npopt.linear_solve import LinearSolveError, LinearSolveInfo, LinearSolveWarning
from npopt.tree import ravel, tree_leaves, tree_map, tree_structure
from reference import make_linear_solve_reference as R
# the operators and data below use no BLAS (fixed_order): the same bits on every CPU,
# so the stored iteration counts meet the same operator everywhere
from reference.fixed_order import mm, mv, qr, rmv

DATA = os.path.join(os.path.dirname(__file__), "reference", "data", "jaxopt",
                    "linear_solve.npz")
Z = np.load(DATA)
D = {k[len("data/"):]: Z[k] for k in Z.files if k.startswith("data/")}
META = json.loads(str(Z["meta"]))

DENSE = ("solve_lu", "solve_cholesky", "solve_qr", "solve_inv")
ITERATIVE = ("solve_cg", "solve_normal_cg", "solve_gmres", "solve_bicgstab",
             "solve_iterative_refinement")
SQUARE_SOLVERS = ("solve_lu", "solve_qr", "solve_inv", "solve_gmres", "solve_bicgstab",
                  "solve_normal_cg", "solve_iterative_refinement")
SPD_SOLVERS = ("solve_cg", "solve_cholesky")


def rel_err(got, ref):
    got, ref = np.asarray(got), np.asarray(ref)
    return float(np.max(np.abs(got - ref)) / max(np.max(np.abs(ref)), 1e-300))


def flat(tree):
    return ravel(tree)[0]


def tree_of(vec, n):
    out, o = {}, 0
    for k in sorted(R.TREE_SHAPES[n]):
        shape = R.TREE_SHAPES[n][k]
        size = int(np.prod(shape))
        out[k] = vec[o:o + size].reshape(shape)
        o += size
    return out


def matvec_of(A):
    """``v -> A v`` on pytrees (through their ravelled vectors) and arrays."""
    def matvec(v):
        if isinstance(v, dict):
            vec, unravel = ravel(v)
            return unravel(mv(A, vec))
        out = mv(A, v.reshape(-1))
        return out.reshape(v.shape) if A.shape[0] == A.shape[1] else out
    return matvec


def case(name):
    """(solve function, A, b, kwargs) of a stored case, ready to call."""
    fn, A, b, kw = R.problem(name, D, np, tree_of)
    if "M" in kw:
        M = kw.pop("M")
        kw["M"] = lambda v: mv(M, v)
    if fn == "solve_iterative_refinement" and ("solve" in kw or "solve_kw" in kw):
        inner = getattr(ls, "solve_" + kw.pop("solve", "gmres"))
        kw["solve"] = functools.partial(inner, **kw.pop("solve_kw", {}))
    return getattr(ls, fn), A, b, kw


def rng_system(seed, n, kind):
    rng = np.random.default_rng(seed)
    if kind == "spd":
        Q = rng.standard_normal((n, n))
        A = mm(Q, Q.T) / n + np.eye(n)
    else:
        A = 2.0 * np.eye(n) + rng.standard_normal((n, n)) / np.sqrt(n)
    return A, rng.standard_normal(n)


# ---------------------------------------------------------------------------
# jaxopt reference
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(R.CASES))
def test_matches_jaxopt(name):
    f, A, b, kw = case(name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x, info = f(matvec_of(A), b, return_info=True, **kw)
    ref = Z[f"{name}/x"]
    got = flat(x)
    assert got.dtype == ref.dtype
    tol = 1e-5 if ref.dtype == np.float32 else 1e-10
    assert rel_err(got, ref) <= tol, rel_err(got, ref)
    assert tree_structure(x) == tree_structure(b)
    iters = META[name]["iters"]
    if f.__name__ in ITERATIVE:
        assert info.iter_num == iters
        # default check='warn': a warning exactly when not converged
        ours = [w for w in caught if issubclass(w.category, LinearSolveWarning)]
        assert len(ours) == (0 if info.converged else 1)
    else:
        assert info == LinearSolveInfo(True, 0, info.residual_norm, info.tol,
                                       A.shape[0], "converged")
    assert not [w for w in caught if not issubclass(w.category, LinearSolveWarning)]


@pytest.mark.parametrize("name", [n for n in sorted(R.CASES)
                                  if R.CASES[n][2] in ("vec", "tree", "cvec")
                                  and "M" not in R.CASES[n][3]])
def test_dense_matrix_operator_matches_callable(name):
    f, A, b, kw = case(name)
    x1 = f(matvec_of(A), b, check="ignore", **kw) if f.__name__ in ITERATIVE else \
        f(matvec_of(A), b, **kw)
    x2 = f(A, b, check="ignore", **kw) if f.__name__ in ITERATIVE else f(A, b, **kw)
    assert tree_structure(x1) == tree_structure(x2)
    assert rel_err(flat(x2), flat(x1)) <= 1e-12


def test_cg_matvec_count_is_iterations_plus_one():
    for name in ("cg_default", "cg_tight", "cg_tree", "cg_maxiter", "ncg_square"):
        f, A, b, kw = case(name)
        _, info = f(matvec_of(A), b, return_info=True, check="ignore", **kw)
        assert info.num_matvec_eval == info.iter_num + 1


def test_gmres_matvec_count():
    """batched: `restart` products per restart (fewer on breakdown) + 1 residual."""
    f, A, b, kw = case("gmres_restart5")
    _, info = f(matvec_of(A), b, return_info=True, **kw)
    assert info.num_matvec_eval == 1 + info.iter_num * (5 + 1)
    # An exact Arnoldi breakdown at step 0: A e_1 = 2 e_1 (the "3 eigenvalues"
    # cases do not break down in floating point, in jax either).
    for method in ("batched", "incremental"):
        x, info = ls.solve_gmres(lambda v: 2.0 * v, np.eye(6)[0], solve_method=method,
                                 return_info=True)
        np.testing.assert_array_equal(x, 0.5 * np.eye(6)[0])
        assert info.converged and info.iter_num == 1
        assert info.num_matvec_eval == 1 + 1 + 1


# ---------------------------------------------------------------------------
# Against numpy.linalg.solve
# ---------------------------------------------------------------------------

def _tight(name):
    return {} if name in DENSE else (
        dict(tol=1e-12) if name != "solve_iterative_refinement" else
        dict(tol=1e-12, solve=functools.partial(ls.solve_gmres, tol=1e-12)))


@pytest.mark.parametrize("name", SQUARE_SOLVERS + SPD_SOLVERS)
@pytest.mark.parametrize("n", [1, 2, 7, 30])
def test_numpy_solve(name, n):
    A, b = rng_system(n, n, "spd" if name in SPD_SOLVERS else "general")
    x, info = getattr(ls, name)(lambda v: mv(A, v), b, return_info=True, **_tight(name))
    ref = np.linalg.solve(A, b)
    assert x.shape == b.shape and x.dtype == b.dtype
    assert rel_err(x, ref) <= 1e-9
    assert info.converged and info.status == "converged"
    res = A @ x - b
    if name == "solve_normal_cg":                 # the normal equations' residual
        res = A.T @ res
    assert info.residual_norm == pytest.approx(np.linalg.norm(res), rel=1e-6, abs=1e-14)


@given(seed=st.integers(0, 2 ** 32 - 1), n=st.integers(1, 12),
       name=st.sampled_from(SQUARE_SOLVERS + SPD_SOLVERS),
       tol=st.sampled_from([1e-4, 1e-7, 1e-10]))
def test_property_residual_within_tol(seed, n, name, tol):
    """A converged solve has ||b - A x|| <= max(tol ||b||, atol) (up to the
    drift between CG/BiCGSTAB's updated residual and the true one)."""
    A, b = rng_system(seed, n, "spd" if name in SPD_SOLVERS else "general")
    kw = {} if name in DENSE else dict(tol=tol, check="raise")
    if name == "solve_iterative_refinement":
        kw = dict(tol=tol * np.linalg.norm(b), check="raise",
                  solve=functools.partial(ls.solve_gmres, tol=1e-3))
    x, info = getattr(ls, name)(lambda v: mv(A, v), b, return_info=True, **kw)
    res = np.linalg.norm(A @ x - b)
    if name == "solve_normal_cg":
        res = np.linalg.norm(A.T @ (A @ x) - A.T @ b)
    if name in DENSE:
        assert res <= 1e-12 * np.linalg.norm(A) * np.linalg.norm(x) + 1e-300
    else:
        assert info.converged
        assert res <= 1.01 * info.tol + 1e-12 * np.linalg.norm(b)
        assert info.residual_norm == pytest.approx(res, rel=1e-6, abs=1e-13)


@given(seed=st.integers(0, 2 ** 32 - 1), n=st.integers(1, 10),
       name=st.sampled_from(SQUARE_SOLVERS + SPD_SOLVERS),
       a=st.floats(-3, 3), c=st.floats(-3, 3))
def test_property_linearity(seed, n, name, a, c):
    A, b1 = rng_system(seed, n, "spd" if name in SPD_SOLVERS else "general")
    b2 = np.random.default_rng(seed + 1).standard_normal(n)
    f = functools.partial(getattr(ls, name), lambda v: mv(A, v), **_tight(name))
    lhs = f(a * b1 + c * b2)
    rhs = a * f(b1) + c * f(b2)
    scale = (abs(a) + abs(c)) * np.linalg.norm(np.linalg.solve(A, np.stack([b1, b2]).T)) + 1e-300
    assert np.linalg.norm(lhs - rhs) <= 1e-8 * scale


@pytest.mark.parametrize("name", [n for n in SQUARE_SOLVERS + SPD_SOLVERS
                                  if n != "solve_iterative_refinement"])   # no ridge=
def test_ridge(name):
    A, b = rng_system(3, 9, "spd" if name in SPD_SOLVERS else "general")
    x = getattr(ls, name)(lambda v: mv(A, v), b, ridge=0.8, **_tight(name))
    if name == "solve_normal_cg":                  # ridge on the normal operator
        ref = np.linalg.solve(A.T @ A + 0.8 * np.eye(9), A.T @ b)
    else:
        ref = np.linalg.solve(A + 0.8 * np.eye(9), b)
    assert rel_err(x, ref) <= 1e-9


@pytest.mark.parametrize("name", ["solve_cg", "solve_normal_cg", "solve_gmres",
                                  "solve_bicgstab"])
def test_init_at_solution_takes_no_iteration(name):
    A, b = rng_system(5, 8, "spd" if name == "solve_cg" else "general")
    x_star = np.linalg.solve(A, b)
    b = A @ x_star                                # make x_star exact up to rounding
    x, info = getattr(ls, name)(lambda v: mv(A, v), b, init=x_star, tol=1e-8, return_info=True)
    assert info.iter_num == 0 and info.converged
    np.testing.assert_array_equal(x, x_star)
    assert not np.shares_memory(x, x_star)


def test_init_warm_start_cg_fewer_iterations():
    A, b = rng_system(6, 30, "spd")
    near = np.linalg.solve(A, b) + 1e-6
    _, cold = ls.solve_cg(lambda v: mv(A, v), b, tol=1e-10, return_info=True)
    x, warm = ls.solve_cg(lambda v: mv(A, v), b, init=near, tol=1e-10, return_info=True)
    assert warm.iter_num < cold.iter_num
    assert rel_err(x, np.linalg.solve(A, b)) <= 1e-9


# ---------------------------------------------------------------------------
# Pytrees and dtypes
# ---------------------------------------------------------------------------

Pair = collections.namedtuple("Pair", "u v")


def _tree_system(name, seed=0):
    b = {"w": np.arange(6.0).reshape(2, 3) - 2.0, "s": [np.array(0.5), (np.ones(2),)],
         "p": Pair(np.array([1.0, -1.0]), np.array([3.0]))}
    n = flat(b).size
    A, _ = rng_system(seed, n, "spd" if name in SPD_SOLVERS else "general")
    return A, b


@pytest.mark.parametrize("name", SQUARE_SOLVERS + SPD_SOLVERS)
def test_pytree_rhs(name):
    A, b = _tree_system(name)
    x = getattr(ls, name)(matvec_of_tree(A), b, **_tight(name))
    assert tree_structure(x) == tree_structure(b)
    assert all(np.shape(u) == np.shape(v) for u, v in zip(tree_leaves(x), tree_leaves(b)))
    assert isinstance(x["p"], Pair)
    assert rel_err(flat(x), np.linalg.solve(A, flat(b))) <= 1e-9


def matvec_of_tree(A):
    def matvec(v):
        vec, unravel = ravel(v)
        return unravel(mv(A, vec))
    return matvec


@pytest.mark.parametrize("name", SQUARE_SOLVERS + SPD_SOLVERS)
def test_float32_in_float32_out(name):
    A, b = rng_system(2, 10, "spd" if name in SPD_SOLVERS else "general")
    A32, b32 = A.astype(np.float32), b.astype(np.float32)
    kw = {} if name in DENSE else dict(tol=1e-5)
    if name == "solve_iterative_refinement":     # its tol is absolute
        kw = dict(tol=1e-4)
    x = getattr(ls, name)(lambda v: mv(A32, v), b32, **kw)
    assert x.dtype == np.float32
    assert rel_err(x, np.linalg.solve(A, b)) <= 1e-4


def test_mixed_dtype_leaves_keep_their_dtypes():
    A, _ = rng_system(4, 5, "spd")
    b = {"a": np.ones(2, np.float32), "b": np.arange(3.0)}
    for f in (ls.solve_cg, ls.solve_lu, ls.solve_gmres, ls.solve_bicgstab):
        x = f(matvec_of_tree(A), b)
        assert x["a"].dtype == np.float32 and x["b"].dtype == np.float64


def test_matvec_output_dtype_is_cast_to_b():
    A, b = rng_system(4, 6, "spd")
    b32 = b.astype(np.float32)
    x = ls.solve_cg(lambda v: mv(A, v.astype(np.float64)), b32)    # returns float64
    assert x.dtype == np.float32


def test_complex_dense_solvers_against_numpy():
    A, b = D["C"], D["bc10"]
    for f in (ls.solve_lu, ls.solve_qr, ls.solve_inv):
        assert rel_err(f(lambda v: mv(A, v), b), np.linalg.solve(A, b)) <= 1e-12
    H = D["H"]
    assert rel_err(ls.solve_cholesky(H, b), np.linalg.solve(H, b)) <= 1e-12
    x = ls.solve_normal_cg(A, b, tol=1e-12)       # A^H A, not A^T A
    assert rel_err(x, np.linalg.solve(A, b)) <= 1e-9


def test_scalar_rhs():
    for f in (ls.solve_lu, ls.solve_cholesky, ls.solve_qr, ls.solve_inv):
        x = f(lambda v: 4.0 * v, 2.0)
        assert np.ndim(x) == 0 and x == 0.5
    assert ls.solve_cg(lambda v: 4.0 * v, np.array(2.0)) == pytest.approx(0.5)


def test_inputs_not_mutated():
    A, b = rng_system(8, 7, "general")
    b0, init = b.copy(), np.ones(7)
    for name in SQUARE_SOLVERS:
        kw = {} if name in DENSE else dict(init=init)
        getattr(ls, name)(lambda v: mv(A, v), b, **kw)
        np.testing.assert_array_equal(b, b0)
        np.testing.assert_array_equal(init, np.ones(7))


# ---------------------------------------------------------------------------
# Other operator forms
# ---------------------------------------------------------------------------

def test_scipy_sparse_and_linear_operator():
    A, b = rng_system(9, 12, "spd")
    ref = np.linalg.solve(A, b)
    sp = scipy.sparse.csr_matrix(A)
    op = scipy.sparse.linalg.aslinearoperator(A)
    for mat in (sp, op):
        for f in (ls.solve_cg, ls.solve_gmres, ls.solve_bicgstab, ls.solve_normal_cg):
            assert rel_err(f(mat, b, tol=1e-12), ref) <= 1e-9
        for f in (ls.solve_lu, ls.solve_cholesky):
            assert rel_err(f(mat, b), ref) <= 1e-12


def test_preconditioner_as_matrix():
    A, b = rng_system(10, 15, "spd")
    M = np.diag(1 / np.diag(A))
    x1 = ls.solve_cg(A, b, M=M, tol=1e-10)
    x2 = ls.solve_cg(A, b, M=lambda v: mv(M, v), tol=1e-10)
    np.testing.assert_array_equal(x1, x2)


def test_normal_cg_rmatvec_and_nonsquare():
    N, b = D["N"], D["b18"]
    ref = np.linalg.lstsq(N, b, rcond=None)[0]
    x_fallback = ls.solve_normal_cg(lambda v: mv(N, v), b, init=np.zeros(10), tol=1e-12)
    x_rmatvec = ls.solve_normal_cg(lambda v: mv(N, v), b, init=np.zeros(10), tol=1e-12,
                                   rmatvec=lambda y: rmv(N, y))
    x_matrix = ls.solve_normal_cg(N, b, init=np.zeros(10), tol=1e-12)
    for x in (x_fallback, x_rmatvec, x_matrix):
        assert x.shape == (10,) and rel_err(x, ref) <= 1e-9


# ---------------------------------------------------------------------------
# Non-convergence: return_info and check
# ---------------------------------------------------------------------------

def _stuck():
    """CG limited to 3 steps on a 20x20 system: not converged."""
    A, b = rng_system(11, 20, "spd")
    return (lambda v: mv(A, v)), b, dict(tol=1e-12, maxiter=3), A


def test_check_warn_is_default_and_carries_residual():
    mv, b, kw, A = _stuck()
    with pytest.warns(LinearSolveWarning, match=r"solve_cg: not converged \(status "
                                                r"'maxiter'\) after 3 iterations: "
                                                r"\|\|b - A x\|\| = "):
        x = ls.solve_cg(mv, b, **kw)
    assert x.shape == b.shape


def test_check_raise_carries_info():
    mv, b, kw, A = _stuck()
    with pytest.raises(LinearSolveError, match="not converged") as err:
        ls.solve_cg(mv, b, check="raise", **kw)
    info = err.value.info
    assert isinstance(err.value, np.linalg.LinAlgError) and isinstance(err.value, ValueError)
    assert not info.converged and info.iter_num == 3 and info.status == "maxiter"
    x = ls.solve_cg(mv, b, check="ignore", **kw)
    assert info.residual_norm == pytest.approx(np.linalg.norm(b - A @ x), rel=1e-12)
    assert f"{info.residual_norm:.3e}" in str(err.value)


def test_check_ignore_is_silent_and_return_info():
    mv, b, kw, A = _stuck()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x, info = ls.solve_cg(mv, b, check="ignore", return_info=True, **kw)
    assert isinstance(info, LinearSolveInfo)
    assert info._fields == ("converged", "iter_num", "residual_norm", "tol",
                            "num_matvec_eval", "status")
    assert info.tol == pytest.approx(1e-12 * np.linalg.norm(b))
    assert info.num_matvec_eval == 4


@pytest.mark.parametrize("name", ["solve_cg", "solve_gmres", "solve_bicgstab",
                                  "solve_iterative_refinement"])
def test_singular_system_raises_with_residual(name):
    """b outside the range of a singular A: no solver can meet the tolerance
    (issue 6: a singular d1F must raise with the residual). (solve_normal_cg
    converges here: the normal equations are consistent, it returns the
    least-squares solution.)"""
    A = np.diag([1.0, 2.0, 0.0, 3.0])
    b = np.ones(4)
    with pytest.raises(LinearSolveError, match=r"\|\|b - A x\|\| = ") as err:
        getattr(ls, name)(lambda v: mv(A, v), b, check="raise", **(
            dict(maxiter=50) if name != "solve_iterative_refinement" else {}))
    assert err.value.info.residual_norm >= 0.5 or not np.isfinite(err.value.info.residual_norm)


def test_bicgstab_breakdown_reported():
    """rho/omega exactly 0 stops BiCGSTAB, as jax does (same x: [1, 1])."""
    A = np.array([[-2.0, -1.0], [-1.0, 0.0]])
    b = np.array([-2.0, -2.0])
    x, info = ls.solve_bicgstab(A, b, tol=1e-12, return_info=True, check="ignore")
    np.testing.assert_array_equal(x, [1.0, 1.0])
    assert info.status == "breakdown" and not info.converged and info.iter_num == 1
    with pytest.raises(LinearSolveError, match="breakdown"):
        ls.solve_bicgstab(A, b, tol=1e-12, check="raise")


def test_nan_is_not_finite():
    A, b = rng_system(12, 5, "spd")
    x, info = ls.solve_cg(lambda v: mv(A, v) * np.nan, b, return_info=True, check="ignore")
    assert info.status == "not finite" and not info.converged
    x, info = ls.solve_gmres(lambda v: mv(A, v) * np.nan, b, return_info=True, check="ignore")
    assert info.status == "not finite" and not info.converged


def test_iterative_refinement_inner_solves_are_quiet():
    """Inexact inner solves do not warn; only the outer result is checked."""
    f, A, b, kw = case("ir_cg_inexact")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x, info = f(matvec_of(A), b, return_info=True, **kw)
    assert not info.converged
    assert len(caught) == 1 and issubclass(caught[0].category, LinearSolveWarning)
    assert "solve_iterative_refinement" in str(caught[0].message)


# ---------------------------------------------------------------------------
# Iterative refinement
# ---------------------------------------------------------------------------

def test_iterative_refinement_quirks_and_options(capsys):
    A, b = rng_system(13, 9, "general")
    ref = np.linalg.solve(A, b)
    init = np.ones(9)
    # maxiter=0 returns init
    x = ls.solve_iterative_refinement(A, b, init=init, maxiter=0, check="ignore")
    np.testing.assert_array_equal(x, init)
    # jaxopt's first step from a nonzero init gives init + A^{-1} b
    x1 = ls.solve_iterative_refinement(A, b, init=init, maxiter=1, check="ignore",
                                       solve=lambda mv, r, init=None: ls.solve_lu(mv, r))
    assert rel_err(x1, init + ref) <= 1e-12
    # matvec_A_bar: a perturbed approximation, corrected by refinement
    A_bar = A + 0.05 * np.eye(9)
    x, info = ls.solve_iterative_refinement(A, b, matvec_A_bar=lambda _, v: mv(A_bar, v),
                                            maxiter=50, tol=1e-12, return_info=True,
                                            verbose=True)
    assert info.converged and info.iter_num > 2 and rel_err(x, ref) <= 1e-10
    out = capsys.readouterr().out
    assert "INFO: npopt.IterativeRefinement: Iter: 1 Residual Norm (stopping criterion):" in out


def test_iterative_refinement_accepts_jaxopt_kwargs():
    A, b = rng_system(14, 5, "general")
    x = ls.solve_iterative_refinement(A, b, jit=False, unroll=True, implicit_diff_solve=None)
    assert rel_err(x, np.linalg.solve(A, b)) <= 1e-7


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------

def test_bad_matvec_output_shape():
    b = np.ones(4)
    for f in (ls.solve_cg, ls.solve_gmres, ls.solve_bicgstab, ls.solve_lu,
              ls.solve_cholesky, ls.solve_iterative_refinement):
        with pytest.raises(ValueError, match=r"matvec: expected an output with the "
                                             r"structure and leaf shapes of b"):
            f(lambda v: np.ones(5), b)
    with pytest.raises(ValueError, match="matvec: expected an output"):
        ls.solve_cg(lambda v: {"a": v}, b)


def test_bad_matrix_shape():
    with pytest.raises(ValueError, match=r"matvec: expected a callable or a 2-D matrix "
                                         r"of shape \(4, 4\)"):
        ls.solve_cg(np.ones((3, 3)), np.ones(4))
    with pytest.raises(ValueError, match="matvec: expected a callable or a 2-D matrix"):
        ls.solve_lu(np.ones(4), np.ones(4))
    with pytest.raises(TypeError, match="matvec: expected a callable"):
        ls.solve_gmres("A", np.ones(4))


def test_cholesky_not_positive_definite():
    A = np.diag([1.0, -2.0, 3.0])
    with pytest.raises(LinearSolveError, match="not positive definite"):
        ls.solve_cholesky(lambda v: mv(A, v), np.ones(3))
    with pytest.raises(LinearSolveError, match="not positive definite"):
        ls.solve_cholesky(lambda v: -2.0 * v, 1.0)
    # a ridge can make it positive definite
    x = ls.solve_cholesky(lambda v: mv(A, v), np.ones(3), ridge=3.0)
    assert rel_err(x, np.ones(3) / (np.diag(A) + 3.0)) <= 1e-14


def test_cholesky_warns_on_asymmetry():
    A = np.array([[2.0, 1.0], [0.0, 2.0]])
    with pytest.warns(LinearSolveWarning, match="not symmetric"):
        x = ls.solve_cholesky(A, np.ones(2))
    upper = np.triu(A) + np.triu(A, 1).T                    # what is used
    assert rel_err(x, np.linalg.solve(upper, np.ones(2))) <= 1e-14


@pytest.mark.parametrize("name", ["solve_lu", "solve_qr", "solve_inv"])
def test_singular_dense_raises(name):
    A = np.array([[1.0, 2.0], [2.0, 4.0]])
    with pytest.raises(LinearSolveError, match="singular"):
        getattr(ls, name)(A, np.ones(2))
    with pytest.raises(LinearSolveError, match="singular"):
        getattr(ls, name)(lambda v: 0.0 * v, np.array(1.0))
    # singular to working precision (cond ~ 1e17): no silent garbage either
    Q, _ = qr(np.random.default_rng(0).standard_normal((6, 6)))
    B = mm(Q * np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1e-17]), Q.T)
    with pytest.raises(LinearSolveError, match="to working precision"):
        getattr(ls, name)(B, np.ones(6))
    # ... unless a ridge makes it regular
    x = getattr(ls, name)(B, np.ones(6), ridge=1e-3)
    assert rel_err(x, np.linalg.solve(B + 1e-3 * np.eye(6), np.ones(6))) <= 1e-10


@pytest.mark.parametrize("kw, match", [
    (dict(tol=-1e-3), "tol: expected a finite number >= 0"),
    (dict(tol=float("nan")), "tol: expected a finite number >= 0"),
    (dict(atol=-1.0), "atol: expected a finite number >= 0"),
    (dict(maxiter=-1), "maxiter: expected None or an integer >= 0"),
    (dict(maxiter=2.5), "maxiter: expected None or an integer >= 0"),
    (dict(check="loud"), "check: expected 'warn', 'raise' or 'ignore'"),
    (dict(ridge=float("inf")), "ridge: expected a finite number"),
])
@pytest.mark.parametrize("name", ["solve_cg", "solve_normal_cg", "solve_gmres",
                                  "solve_bicgstab"])
def test_bad_options(name, kw, match):
    with pytest.raises(ValueError, match=match):
        getattr(ls, name)(lambda v: v, np.ones(3), **kw)


def test_bad_options_other():
    mv, b = (lambda v: v), np.ones(3)
    with pytest.raises(ValueError, match="restart: expected an integer >= 1"):
        ls.solve_gmres(mv, b, restart=0)
    with pytest.raises(ValueError, match="solve_method: expected 'incremental' or 'batched'"):
        ls.solve_gmres(mv, b, solve_method="qr")
    with pytest.raises(ValueError, match="maxiter: expected an integer >= 0"):
        ls.solve_iterative_refinement(mv, b, maxiter=-2)
    with pytest.raises(ValueError, match="tol: expected a finite number >= 0"):
        ls.solve_iterative_refinement(mv, b, tol=-1.0)
    with pytest.raises(TypeError, match="solve: expected a linear solver"):
        ls.solve_iterative_refinement(mv, b, solve="gmres")
    with pytest.raises(TypeError, match="return_info: expected True or False"):
        ls.solve_lu(mv, b, return_info="yes")
    with pytest.raises(ValueError, match="ridge: expected a finite number"):
        ls.solve_lu(mv, b, ridge=float("nan"))


def test_bad_rhs_and_init():
    mv = lambda v: v                                             # noqa: E731
    with pytest.raises(TypeError, match="b: expected floating-point"):
        ls.solve_cg(mv, np.arange(3))
    with pytest.raises(ValueError, match="b: expected a pytree with at least one array"):
        ls.solve_lu(mv, {})
    with pytest.raises(ValueError, match="init: expected the structure and leaf shapes of b"):
        ls.solve_cg(mv, np.ones(3), init=np.ones(4))
    with pytest.raises(ValueError, match="init: expected the structure and leaf shapes of b"):
        ls.solve_gmres(mv, {"a": np.ones(2)}, init={"b": np.ones(2)})


def test_normal_cg_nonsquare_needs_init():
    N = D["N"]
    with pytest.raises(ValueError, match="init` of solve_normal_cg is compulsory"):
        ls.solve_normal_cg(lambda v: mv(N, v), D["b18"])
    with pytest.raises(ValueError, match="init` of solve_normal_cg is compulsory"):
        ls.solve_normal_cg(N, D["b18"])
