"""npopt.assignment (optax's module): optax's indices, the optimal cost against
scipy.optimize.linear_sum_assignment and brute force, optax's output order,
bad input.

* Reference: every case of tests/reference/make_assignment_reference.py
  (optax 0.2.8, x64), replayed from tests/reference/data/optax/assignment.npz:
  the row and column indices must be optax's exactly, also where several
  assignments are optimal (integer costs with ties, all-equal costs).
* Hypothesis: random rectangular costs (0 to 9 rows and columns, small
  integers with many ties, or floats): a valid assignment of min(n, m)
  pairs, in optax's order, whose cost is scipy's optimum (and brute force's
  for small matrices).
"""
import inspect
import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.optimize import linear_sum_assignment

import npopt
from npopt import assignment as A
from reference.make_assignment_reference import ALGOS, CASES, OUT


@pytest.fixture(scope="module")
def ref():
    with np.load(OUT) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_optax(ref, name, algo):
    cost = ref[f"{name}/cost"]
    before = cost.copy()
    i, j = getattr(A, algo)(cost)
    assert np.array_equal(cost, before)
    assert i.dtype == np.int64 and j.dtype == np.int64
    assert np.array_equal(i, ref[f"{name}/{algo}/i"]), (i, ref[f"{name}/{algo}/i"])
    assert np.array_equal(j, ref[f"{name}/{algo}/j"]), (j, ref[f"{name}/{algo}/j"])


def test_signatures_are_optax(ref):
    theirs = json.loads(str(ref["meta/signatures"]))
    assert sorted(theirs) == sorted(ALGOS) == sorted(A.__all__)
    for name, params in theirs.items():
        mine = [[p.name, p.kind.name,
                 None if p.default is inspect.Parameter.empty else repr(p.default)]
                for p in inspect.signature(getattr(A, name)).parameters.values()]
        assert mine == params, name
    assert npopt.assignment is A


def test_docstring_examples():
    cost = [[8, 4, 7], [5, 2, 3], [9, 6, 7], [9, 4, 8]]
    i, j = A.base_hungarian_algorithm(np.array(cost))
    assert i.tolist() == [0, 1, 3] and j.tolist() == [0, 2, 1]
    i, j = A.hungarian_algorithm(cost)                  # a list of lists is an array
    assert np.array(cost)[i, j].sum() == 15


# ---------------------------------------------------------------------------
# optimality and optax's order, on random rectangular costs
# ---------------------------------------------------------------------------

shapes = st.tuples(st.integers(0, 9), st.integers(0, 9))
int_costs = shapes.flatmap(lambda s: hnp.arrays(np.int64, s, elements=st.integers(0, 3)))
float_costs = shapes.flatmap(lambda s: hnp.arrays(
    np.float64, s, elements=st.floats(-100, 100, allow_nan=False, allow_infinity=False)))


def check_assignment(cost, algo, i, j):
    n, m = cost.shape
    k = min(n, m)
    assert i.shape == j.shape == (k,)
    assert len(set(i.tolist())) == k and len(set(j.tolist())) == k
    assert np.all((0 <= i) & (i < n)) and np.all((0 <= j) & (j < m))
    # optax's order
    if algo == "base_hungarian_algorithm":
        if n <= m:
            assert np.array_equal(i, np.arange(n))
        else:
            assert np.all(np.diff(i) > 0)
    else:
        if n == m:
            assert np.array_equal(j, np.arange(n))
        elif n < m:
            assert np.all(np.diff(i) < 0)
        else:
            assert np.all(np.diff(j) < 0)


def optimum(cost):
    r, c = linear_sum_assignment(cost)
    return float(np.sum(cost[r, c], dtype=np.float64))


@settings(max_examples=60)
@given(cost=st.one_of(int_costs, float_costs))
@pytest.mark.parametrize("algo", ALGOS)
def test_optimal_against_scipy(algo, cost):
    i, j = getattr(A, algo)(cost)
    check_assignment(cost, algo, i, j)
    got = float(np.sum(cost[i, j], dtype=np.float64))
    want = optimum(cost)
    scale = float(np.abs(cost).sum()) if cost.size else 0.0
    assert abs(got - want) <= 1e-12 * scale, (got, want)
    if cost.dtype == np.int64:
        assert got == want


@settings(max_examples=40)
@given(cost=st.tuples(st.integers(1, 4), st.integers(1, 4)).flatmap(
    lambda s: hnp.arrays(np.int64, s, elements=st.integers(-5, 5))))
@pytest.mark.parametrize("algo", ALGOS)
def test_optimal_by_brute_force(algo, cost):
    n, m = cost.shape
    best = min(sum(cost[r, c] for r, c in zip(rows, cols))
               for rows in itertools.permutations(range(n), min(n, m))
               for cols in itertools.permutations(range(m), min(n, m)))
    i, j = getattr(A, algo)(cost)
    assert cost[i, j].sum() == best


@pytest.mark.parametrize("algo", ALGOS)
def test_dtypes_and_a_larger_problem(algo):
    rng = np.random.default_rng(3)
    cost = rng.uniform(size=(60, 45))
    i, j = getattr(A, algo)(cost)
    check_assignment(cost, algo, i, j)
    assert abs(cost[i, j].sum() - optimum(cost)) <= 1e-12 * cost.sum()
    # float32, bool and integer costs are solved in float64
    c32 = cost[:8, :8].astype(np.float32)
    i, j = getattr(A, algo)(c32)
    assert abs(float(c32.astype(np.float64)[i, j].sum()) - optimum(c32.astype(np.float64))) \
        <= 1e-12
    b = rng.uniform(size=(5, 5)) < 0.5
    i, j = getattr(A, algo)(b)
    assert b[i, j].sum() == optimum(b.astype(float))


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("algo", ALGOS)
def test_bad_input(algo):
    f = getattr(A, algo)
    with pytest.raises(ValueError, match=r"cost_matrix: expected a 2-D array"):
        f(np.ones(3))
    with pytest.raises(ValueError, match=r"cost_matrix: expected a 2-D array"):
        f(np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="cost_matrix: expected finite costs"):
        f(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="cost_matrix: expected finite costs"):
        f(np.array([[1.0, np.inf], [0.0, 1.0]]))
    with pytest.raises(TypeError, match="cost_matrix: expected real numbers"):
        f(np.ones((2, 2), complex))
    with pytest.raises(TypeError, match="cost_matrix: expected real numbers"):
        f([["a", "b"], ["c", "d"]])
    with pytest.raises(ValueError, match=r"cost_matrix: expected a 2-D array"):
        f(3.0)
