"""Tests for npopt.tree: structure round trips, ravel, segment table, helpers."""

import collections
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from npopt import _dense, _flat
from npopt import tree as T

P = collections.namedtuple("P", "y x")
Q = collections.namedtuple("Q", "a b c")

SETTINGS = settings(max_examples=50, deadline=None)

# ---------------------------------------------------------------------------
# Strategies: random nestings of dict / list / tuple / namedtuple / None with
# float32 / float64 leaves of random shapes (0-d and empty included).
# ---------------------------------------------------------------------------

_shapes = st.sampled_from([(), (0,), (1,), (3,), (2, 3), (2, 0), (1, 2, 2)])
_dtypes = st.sampled_from([np.float32, np.float64])


@st.composite
def _leaf(draw):
    shape = draw(_shapes)
    dtype = draw(_dtypes)
    seed = draw(st.integers(0, 2**32 - 1))
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


_keys = st.text(alphabet="abcdefgh", min_size=1, max_size=3)


def _extend(children):
    return st.one_of(
        st.dictionaries(_keys, children, max_size=4),
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.tuples(children, children).map(lambda t: P(*t)),
        st.tuples(children, children, children).map(lambda t: Q(*t)),
    )


trees = st.recursive(st.one_of(_leaf(), st.none()), _extend, max_leaves=12)


def assert_same_tree(a, b):
    """Same structure, same leaf types/dtypes/shapes and the same values."""
    assert T.tree_structure(a) == T.tree_structure(b)
    for x, y in zip(T.tree_leaves(a), T.tree_leaves(b)):
        assert type(x) is type(y)
        assert np.asarray(x).dtype == np.asarray(y).dtype
        assert np.shape(x) == np.shape(y)
        np.testing.assert_array_equal(x, y)


def _assert_same_containers(a, b):
    """Same container types, dict keys and lengths, all the way down."""
    assert type(a) is type(b)
    if isinstance(b, dict):
        assert set(a) == set(b)
        for k in b:
            _assert_same_containers(a[k], b[k])
    elif isinstance(b, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same_containers(x, y)
    elif b is not None:
        assert a is b  # the very same leaf object


def _manual_leaves(tree):
    """Independent oracle for leaf order (JAX rules), written without tables."""
    if tree is None:
        return []
    if isinstance(tree, dict):
        return [l for k in sorted(tree) for l in _manual_leaves(tree[k])]
    if isinstance(tree, (list, tuple)):
        return [l for c in tree for l in _manual_leaves(c)]
    return [tree]


# ---------------------------------------------------------------------------
# Structure
# ---------------------------------------------------------------------------

@SETTINGS
@given(trees)
def test_flatten_unflatten_round_trip(tree):
    leaves, treedef = T.tree_flatten(tree)
    assert treedef.num_leaves == len(leaves)
    assert [id(x) for x in leaves] == [id(x) for x in _manual_leaves(tree)]
    rebuilt = T.tree_unflatten(treedef, leaves)
    assert type(rebuilt) is type(tree)
    _assert_same_containers(rebuilt, tree)
    assert_same_tree(rebuilt, tree)
    assert T.tree_structure(rebuilt) == treedef
    assert hash(T.tree_structure(rebuilt)) == hash(treedef)


@SETTINGS
@given(trees)
def test_tree_map_identity_and_values(tree):
    doubled = T.tree_map(lambda x: 2 * x, tree)
    assert T.tree_structure(doubled) == T.tree_structure(tree)
    for x, y in zip(T.tree_leaves(tree), T.tree_leaves(doubled)):
        assert y.dtype == x.dtype
        np.testing.assert_array_equal(y, 2 * x)
    summed = T.tree_map(lambda x, y: x + y, tree, doubled)
    for x, y in zip(T.tree_leaves(tree), T.tree_leaves(summed)):
        np.testing.assert_array_equal(y, 3 * x)


JAX_ORDER = [
    # (tree, leaves as jax.tree_util.tree_leaves gives them, num_leaves)
    ({"b": 1, "a": [2, (3, None, 4)], "c": {"z": 5, "y": None, "x": 6}},
     [2, 3, 4, 1, 6, 5]),
    ([P(y=1, x={"k": 2, "j": 3}), None, (4,), {}, [], 5], [1, 3, 2, 4, 5]),
    (collections.OrderedDict([("z", 1), ("a", 2),
                              ("m", {"b": 3, "a": 4})]), [1, 2, 4, 3]),
    (collections.defaultdict(list, {"q": 1, "p": 2}), [2, 1]),
    ((None,), []),
    (None, []),
    (7, [7]),
]


@pytest.mark.parametrize("tree,expected", JAX_ORDER)
def test_leaf_order_matches_jax(tree, expected):
    leaves, treedef = T.tree_flatten(tree)
    assert leaves == expected
    assert treedef.num_leaves == len(expected)
    rebuilt = T.tree_unflatten(treedef, leaves)
    assert type(rebuilt) is type(tree)
    assert rebuilt == tree
    if isinstance(tree, collections.OrderedDict):
        assert list(rebuilt) == list(tree)
    if isinstance(tree, collections.defaultdict):
        assert rebuilt.default_factory is list


def test_is_leaf_none():
    tree = {"a": None, "b": 2, "c": [None, 3]}
    assert T.tree_leaves(tree) == [2, 3]
    leaves = T.tree_leaves(tree, is_leaf=lambda x: x is None)
    assert leaves == [None, 2, None, 3]
    # A leaf under is_leaf is a subtree cut: the list is one leaf here.
    assert T.tree_leaves(tree, is_leaf=lambda x: isinstance(x, list)) == [
        2, [None, 3]]


def test_bare_ndarray_and_scalars_are_leaves():
    a = np.arange(3.0)
    leaves, treedef = T.tree_flatten(a)
    assert leaves[0] is a and treedef.num_leaves == 1
    assert T.tree_unflatten(treedef, [5]) == 5
    assert T.tree_leaves(np.float32(1.5)) == [np.float32(1.5)]
    # A dict subclass and a plain tuple subclass are leaves, as in JAX.
    class D(dict):
        pass

    class Tup(tuple):
        pass

    d, t = D(a=1), Tup((1, 2))
    assert T.tree_leaves([d, t])[0] is d
    assert T.tree_leaves([d, t])[1] is t


def test_treedef_eq_hash_repr():
    a = T.tree_structure({"w": np.zeros(2), "b": [1.0, None]})
    b = T.tree_structure({"b": [np.ones(3), None], "w": 7})
    c = T.tree_structure({"w": np.zeros(2), "b": (1.0, None)})
    assert a == b and hash(a) == hash(b)
    assert a != c
    assert len({a, b, c}) == 2
    assert repr(a) == "PyTreeDef({'b': [*, None], 'w': *})"
    assert repr(T.tree_structure(P(1, (2,)))) == "PyTreeDef(P(y=*, x=(*,)))"
    # list vs tuple, dict vs OrderedDict, namedtuple vs tuple all differ
    assert T.tree_structure([1]) != T.tree_structure((1,))
    assert (T.tree_structure({"a": 1})
            != T.tree_structure(collections.OrderedDict(a=1)))
    assert T.tree_structure(P(1, 2)) != T.tree_structure((1, 2))


def test_unflatten_wrong_number_of_leaves():
    treedef = T.tree_structure({"a": 1, "b": 2})
    with pytest.raises(ValueError, match="needs 2 leaves, got 3"):
        T.tree_unflatten(treedef, [1, 2, 3])


def test_tree_map_mismatch_names_argument_and_structures():
    x = {"a": np.zeros(2), "b": [np.zeros(1), np.zeros(1)]}
    good = {"a": np.ones(2), "b": [np.ones(1), np.ones(1)]}
    bad = {"a": np.ones(2), "b": (np.ones(1), np.ones(1))}
    with pytest.raises(ValueError) as info:
        T.tree_map(lambda *xs: xs[0], x, good, bad)
    msg = str(info.value)
    assert "tree_map: argument 2" in msg
    assert repr(T.tree_structure(bad)) in msg
    assert repr(T.tree_structure(x)) in msg
    assert "['b']" in msg and "tuple" in msg
    with pytest.raises(ValueError, match=r"argument 1 .*expected a dict with "
                       r"keys \['a', 'c'\], got a dict with keys \['a', 'd'\]"):
        T.tree_map(lambda a, b: a, {"a": 1, "c": 2}, {"a": 1, "d": 2})


def test_tree_map_prefix_semantics():
    # rest trees may go deeper than the first tree: they are cut at its leaves
    out = T.tree_map(lambda a, b: (a, b), {"a": 1, "b": 2},
                     {"a": [3, 4], "b": {"z": 5}})
    assert out == {"a": (1, [3, 4]), "b": (2, {"z": 5})}


def test_flatten_up_to():
    params = {"w": np.zeros((2, 2)), "b": np.zeros(2)}
    grads = {"b": np.ones(2), "w": np.full((2, 2), 2.0)}
    treedef = T.tree_structure(params)
    got = treedef.flatten_up_to(grads)
    assert got[0] is grads["b"] and got[1] is grads["w"]
    with pytest.raises(ValueError, match=r"expected a dict with keys "
                       r"\['b', 'w'\], got a dict with keys \['b'\]"):
        treedef.flatten_up_to({"b": np.ones(2)})
    with pytest.raises(ValueError, match=r"at <root>: expected a dict .*"
                       r"got a leaf of type ndarray"):
        treedef.flatten_up_to(np.ones(3))
    with pytest.raises(ValueError, match=r"at \[1\]: expected a list of 2"):
        T.tree_structure([0, [1, 2]]).flatten_up_to([0, [1, 2, 3]])
    with pytest.raises(ValueError, match=r"at \.x: expected None"):
        T.tree_structure(P(1, None)).flatten_up_to(P(1, 2))


# ---------------------------------------------------------------------------
# ravel / unravel and the segment table
# ---------------------------------------------------------------------------

@SETTINGS
@given(trees)
def test_ravel_round_trip_and_segment_table(tree):
    leaves = T.tree_leaves(tree)
    flat, unravel = T.ravel(tree)
    assert flat.ndim == 1 and flat.flags.c_contiguous
    expected_dtype = (np.result_type(*leaves) if leaves
                      else np.dtype(np.float64))
    assert flat.dtype == expected_dtype
    assert flat.size == sum(x.size for x in leaves)
    assert_same_tree(unravel(flat), tree)

    table = T.segment_table(tree)
    assert table == unravel.segment_table
    assert table.size == flat.size
    offset = 0
    for i, x in enumerate(leaves):
        assert table.offsets[i] == offset
        assert table.sizes[i] == x.size
        assert table.shapes[i] == x.shape
        assert table.dtypes[i] == x.dtype
        seg = flat[offset:offset + x.size].reshape(x.shape)
        np.testing.assert_array_equal(seg, x.astype(flat.dtype))
        offset += x.size

    # flat is a copy: writing to it leaves the tree alone
    if flat.size:
        before = [x.copy() for x in leaves]
        flat += 1.0
        for x, y in zip(leaves, before):
            np.testing.assert_array_equal(x, y)


def test_ravel_mixed_dtypes_promotes_and_casts_back():
    tree = {"a": np.array([1.5, 2.5], np.float32),
            "b": np.array([[1 / 3]], np.float64)}
    flat, unravel = T.ravel(tree)
    assert flat.dtype == np.float64
    np.testing.assert_array_equal(flat, [1.5, 2.5, 1 / 3])
    out = unravel(flat + 1e-12)  # a float64 perturbation a float32 loses
    assert out["a"].dtype == np.float32 and out["b"].dtype == np.float64
    np.testing.assert_array_equal(out["a"], np.float32([1.5, 2.5]))
    assert out["b"][0, 0] == 1 / 3 + 1e-12
    assert out["b"].shape == (1, 1)


def test_ravel_scalars_and_empty():
    flat, unravel = T.ravel({"x": 1.0, "n": np.float32(2.0), "z": None})
    assert flat.dtype == np.float64
    out = unravel(np.array([5.0, 6.0]))
    assert type(out["x"]) is np.ndarray and out["x"].shape == ()
    assert out["x"] == 6.0 and out["x"].dtype == np.float64
    assert out["n"] == 5.0 and out["n"].dtype == np.float32
    assert out["z"] is None

    flat, unravel = T.ravel({})
    assert flat.shape == (0,) and flat.dtype == np.float64
    assert unravel(flat) == {}

    a = np.arange(6.0).reshape(2, 3)
    flat, unravel = T.ravel(a)
    assert flat.base is not a and not np.shares_memory(flat, a)
    np.testing.assert_array_equal(unravel(flat), a)
    view = unravel(flat, copy=False)
    assert np.shares_memory(view, flat)
    assert not np.shares_memory(unravel(flat), flat)


def test_unravel_rejects_wrong_size_and_ndim():
    _, unravel = T.ravel({"a": np.zeros(3), "b": np.zeros(2)})
    with pytest.raises(ValueError, match=r"expected a 1-D array of size 5.*"
                       r"got an array of shape \(4,\)"):
        unravel(np.zeros(4))
    with pytest.raises(ValueError, match=r"shape \(5, 1\)"):
        unravel(np.zeros((5, 1)))


@SETTINGS
@given(trees)
def test_flat_bridge_layout_and_stacked_rows_follow_ravel(tree):
    """npopt._flat's ways of laying a tree out agree with ravel's segment
    table: a Layout's group of each dtype holds that dtype's leaves end to
    end in leaf order (for one dtype, the table's offsets and its size), and
    each row of ``stacked_views``' buffer is a ravelled tree."""
    leaves = T.tree_leaves(tree)
    table = T.segment_table(tree)
    if leaves:
        lay, _ = _flat.layout_of(tree)
        for g in lay.groups:
            assert g.offsets[0] == 0
            for k, i in enumerate(g.leaf_ids):
                assert g.offsets[k + 1] - g.offsets[k] == table.sizes[i]
                assert g.shapes[k] == table.shapes[i] and g.dtype == table.dtypes[i]
        if len(lay.groups) == 1:
            assert lay.groups[0].offsets == table.offsets + (table.size,)

    flat, _ = T.ravel(tree)
    m, n = 3, table.size
    buf = np.empty((m, n), flat.dtype)
    buf[...] = np.arange(m * n).reshape(m, n)
    views = _flat.stacked_views(buf, tree)
    assert T.tree_structure(views) == T.tree_structure(tree)
    for v, o, size, shape in zip(T.tree_leaves(views), table.offsets, table.sizes,
                                 table.shapes):
        assert v.shape == (m,) + shape and np.shares_memory(v, buf) == (size > 0)
        for k in range(m):
            np.testing.assert_array_equal(v[k], buf[k, o:o + size].reshape(shape))
    back = _flat.stacked_buffer(views, m, n, flat.dtype)
    np.testing.assert_array_equal(back, buf)
    assert back.shape == (m, n) and back.dtype == flat.dtype
    if leaves and all(x.size for x in leaves):
        assert back is buf or back.base is buf          # zero-copy


# ---------------------------------------------------------------------------
# Helpers against plain NumPy on a fixed tree
# ---------------------------------------------------------------------------

def _fixed(seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return {"w": rng.standard_normal((3, 2)).astype(dtype),
            "b": [rng.standard_normal(4).astype(dtype), None,
                  np.asarray(rng.standard_normal(), dtype)],
            "e": np.zeros(0, dtype)}


X, Y, Z = _fixed(0), _fixed(1), _fixed(2)
XL, YL, ZL = T.tree_leaves(X), T.tree_leaves(Y), T.tree_leaves(Z)


def _check_map(out, expected_leaves):
    assert T.tree_structure(out) == T.tree_structure(X)
    for got, exp in zip(T.tree_leaves(out), expected_leaves):
        assert np.asarray(got).dtype == np.asarray(exp).dtype
        np.testing.assert_array_equal(got, exp)


def test_elementwise_helpers():
    _check_map(T.tree_add(X, Y), [x + y for x, y in zip(XL, YL)])
    _check_map(T.tree_add(X, Y, Z), [x + y + z for x, y, z in zip(XL, YL, ZL)])
    _check_map(T.tree_sub(X, Y), [x - y for x, y in zip(XL, YL)])
    _check_map(T.tree_mul(X, Y), [x * y for x, y in zip(XL, YL)])
    _check_map(T.tree_div(X, Y), [x / y for x, y in zip(XL, YL)])
    _check_map(T.tree_scalar_mul(0.3, X), [0.3 * x for x in XL])
    _check_map(T.tree_scale(0.3, X), [0.3 * x for x in XL])
    _check_map(T.tree_add_scalar_mul(X, 0.3, Y),
               [x + 0.3 * y for x, y in zip(XL, YL)])
    _check_map(T.tree_add_scale(X, 0.3, Y),
               [x + 0.3 * y for x, y in zip(XL, YL)])
    _check_map(T.tree_negative(X), [-x for x in XL])
    _check_map(T.tree_reciprocal(X), [1 / x for x in XL])
    _check_map(T.tree_zeros_like(X), [np.zeros_like(x) for x in XL])
    _check_map(T.tree_ones_like(X), [np.ones_like(x) for x in XL])
    _check_map(T.tree_full_like(X, 2.5), [np.full_like(x, 2.5) for x in XL])
    _check_map(T.tree_zeros_like(X, dtype=np.float32),
               [np.zeros(x.shape, np.float32) for x in XL])
    _check_map(T.tree_clip(X, -0.5, 0.5), [np.clip(x, -0.5, 0.5) for x in XL])
    _check_map(T.tree_clip(X, max_value=0.1), [np.minimum(x, 0.1) for x in XL])
    _check_map(T.tree_where(True, X, Y), XL)
    _check_map(T.tree_where(False, X, Y), YL)
    cond = T.tree_map(lambda x: x > 0, X)
    _check_map(T.tree_where(cond, X, Y),
               [np.where(x > 0, x, y) for x, y in zip(XL, YL)])
    yt = T.tree_map(np.transpose, Y)
    # npopt's own fixed-order dot (np.dot's BLAS rounding depends on the CPU)
    _check_map(T.tree_dot(X, yt), [_dense.dot(x, y.T) for x, y in zip(XL, YL)])
    for got, x, y in zip(T.tree_leaves(T.tree_dot(X, yt)), XL, YL):
        np.testing.assert_allclose(got, np.dot(x, y.T), rtol=1e-5 if x.dtype == np.float32
                                   else 1e-13)
    _check_map(T.tree_cast(X, np.float32), [x.astype(np.float32) for x in XL])
    assert T.tree_cast(X, None) is X
    _check_map(T.tree_cast_like(X, _fixed(0, np.float32)),
               [x.astype(np.float32) for x in XL])


def test_float32_stays_float32():
    x32, y32 = _fixed(0, np.float32), _fixed(1, np.float32)
    for out in (T.tree_add_scalar_mul(x32, 0.3, y32), T.tree_scale(0.3, x32),
                T.tree_update_moment(x32, y32, 0.9, 2),
                T.tree_update_infinity_moment(x32, y32, 0.9, 1e-8),
                T.tree_bias_correction(x32, 0.9, np.int32(3))):
        assert {x.dtype for x in T.tree_leaves(out)} == {np.dtype(np.float32)}
    assert T.tree_l2_norm(x32).dtype == np.float32
    assert T.tree_vdot(x32, y32).dtype == np.float32


def test_reductions():
    cat_x = np.concatenate([x.ravel() for x in XL])
    cat_y = np.concatenate([y.ravel() for y in YL])
    vdot = T.tree_vdot(X, Y)
    assert isinstance(vdot, np.floating)
    assert math.isclose(vdot, np.dot(cat_x, cat_y), rel_tol=1e-13)
    assert math.isclose(T.tree_vdot_real(X, Y), np.dot(cat_x, cat_y),
                        rel_tol=1e-13)
    assert math.isclose(T.tree_sum(X), cat_x.sum(), rel_tol=1e-13)
    l2 = np.sqrt(np.sum(cat_x ** 2))
    assert math.isclose(T.tree_l2_norm(X), l2, rel_tol=1e-14)
    assert math.isclose(T.tree_l2_norm(X, squared=True), l2 ** 2,
                        rel_tol=1e-14)
    assert math.isclose(T.tree_norm(X), l2, rel_tol=1e-14)
    assert math.isclose(T.tree_norm(X, ord="fro"), l2, rel_tol=1e-14)
    assert math.isclose(T.tree_norm(X, ord=1), np.abs(cat_x).sum(),
                        rel_tol=1e-13)
    assert T.tree_norm(X, ord=np.inf) == np.abs(cat_x).max()
    assert T.tree_norm(X, ord=np.inf, squared=True) == np.abs(cat_x).max() ** 2
    assert T.tree_inf_norm(X) == np.abs(cat_x).max()
    assert T.tree_max(X) == cat_x.max() and T.tree_min(X) == cat_x.min()
    assert T.tree_max({}) == -np.inf and T.tree_min([]) == np.inf
    assert T.tree_size(X) == cat_x.size == 11
    with pytest.raises(ValueError, match="unsupported ord=3"):
        T.tree_norm(X, ord=3)
    # complex: vdot conjugates the first argument; l2 uses |z|^2
    a = {"z": np.array([1 + 2j, 3 - 1j])}
    b = {"z": np.array([2 - 1j, 1j])}
    assert T.tree_vdot(a, b) == np.vdot(a["z"], b["z"])
    assert T.tree_vdot_real(a, b) == np.vdot(a["z"], b["z"]).real
    assert math.isclose(T.tree_l2_norm(a), math.sqrt(1 + 4 + 9 + 1))
    _check = T.tree_conj(a)["z"]
    np.testing.assert_array_equal(_check, [1 - 2j, 3 + 1j])
    np.testing.assert_array_equal(T.tree_real(a)["z"], [1.0, 3.0])


def test_allclose_and_average():
    assert T.tree_allclose(X, T.tree_map(lambda x: x + 1e-12, X))
    assert not T.tree_allclose(X, Y)
    nan = {"a": np.array([np.nan, 1.0])}
    assert not T.tree_allclose(nan, nan)
    assert T.tree_allclose(nan, nan, equal_nan=True)
    stacked = {"a": np.arange(6.0).reshape(3, 2)}
    w = np.array([0.2, 0.3, 0.5])
    np.testing.assert_allclose(T.tree_average(stacked, w)["a"],
                               w @ stacked["a"])


def test_dtype_helpers():
    mixed = {"a": np.zeros(2, np.float32), "b": np.zeros(1, np.float64)}
    assert T.tree_dtype(X) == np.float64
    assert T.tree_dtype({}) == np.float64
    with pytest.raises(ValueError, match="expected one dtype"):
        T.tree_dtype(mixed)
    assert T.tree_dtype(mixed, "promote") == np.float64
    assert T.tree_dtype(mixed, "highest") == np.float64
    assert T.tree_dtype(mixed, "lowest") == np.float32
    ints = [np.zeros(1, np.int32), np.zeros(1, np.uint32)]
    assert T.tree_dtype(ints, "promote") == np.int64
    with pytest.raises(ValueError, match="cannot be promoted"):
        T.tree_dtype(ints, "highest")
    with pytest.raises(ValueError, match="invalid mixed_dtype_handler"):
        T.tree_dtype(mixed, "bogus")
    assert T.tree_single_dtype(X) == np.float64
    assert T.tree_single_dtype({"a": None}) is None
    with pytest.raises(ValueError, match="Found more than one dtype in the tree."):
        T.tree_single_dtype(mixed)


def test_moments_match_optax_formulas():
    g, m = X, Y
    _check_map(T.tree_update_moment(g, m, 0.9, 2),
               [(1 - 0.9) * x ** 2 + 0.9 * y for x, y in zip(XL, YL)])
    _check_map(T.tree_update_moment_per_elem_norm(g, m, 0.9, 1),
               [(1 - 0.9) * x + 0.9 * y for x, y in zip(XL, YL)])
    _check_map(T.tree_update_infinity_moment(g, m, 0.9, 1e-3),
               [np.maximum(np.abs(x) + 1e-3, 0.9 * y) for x, y in zip(XL, YL)])
    # bias correction: 1 - decay**count computed first, cast to the leaf dtype
    x32 = _fixed(0, np.float32)
    out = T.tree_bias_correction(x32, 0.999, np.int32(7))
    bc = np.float32(1 - 0.999 ** 7)
    for got, x in zip(T.tree_leaves(out), T.tree_leaves(x32)):
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, x / bc)
    # None leaves of the updates stay None
    out = T.tree_update_moment({"a": None, "b": np.ones(2)},
                               {"a": None, "b": np.zeros(2)}, 0.5, 2)
    assert out["a"] is None
    np.testing.assert_array_equal(out["b"], [0.5, 0.5])
    # complex per-element norm: |g|^order
    z = np.array([3 + 4j])
    out = T.tree_update_moment_per_elem_norm(z, np.zeros(1), 0.0, 2)
    np.testing.assert_allclose(out, [25.0])


def test_optax_tree_aliases():
    assert T.add is T.tree_add and T.scale is T.tree_scale
    assert T.norm is T.tree_norm and T.sum is T.tree_sum
    assert T.bias_correction is T.tree_bias_correction
    for name in T.__all__:
        assert hasattr(T, name), name


# ---------------------------------------------------------------------------
# The recent structure's straight line (tree_flatten / tree_map's short cut)
# ---------------------------------------------------------------------------

def _walk(tree):
    from npopt.tree import _structure
    leaves = []
    spec = _structure._flatten(tree, leaves)
    return leaves, spec


def _variants(tree):
    """Trees that differ from ``tree`` in one place the short cut must see."""
    out = [tree, {"x": tree}, [tree], (tree, None), None, 1.5]
    if isinstance(tree, dict) and tree:
        k = sorted(tree)[0]
        out += [{**tree, k: None}, {**tree, k: 2.0}, {**tree, k: {"deep": np.ones(1)}},
                {**tree, k + "_": np.ones(1)}, collections.OrderedDict(tree),
                {kk: v for kk, v in tree.items() if kk != k}]
    if isinstance(tree, (list, tuple)) and tree:
        out += [list(tree) + [np.ones(1)], tuple(tree), list(tree)[:-1],
                [None] + list(tree)[1:]]
    return out


@SETTINGS
@given(trees)
def test_recent_structure_short_cut_agrees_with_the_walk(tree):
    """After a structure is flattened twice in a row, tree_flatten and
    tree_map cut trees by its straight line: every tree still gets the
    walk's leaves and structure, and tree_map the walk's result."""
    T.tree_flatten(tree)
    T.tree_flatten(tree)                           # now the recent structure (if arrays)
    for other in _variants(tree):
        leaves, td = T.tree_flatten(other)
        want_leaves, want_spec = _walk(other)
        assert td._spec == want_spec and len(leaves) == len(want_leaves)
        assert all(a is b for a, b in zip(leaves, want_leaves))
        mapped = T.tree_map(lambda x: ("leaf", id(x)), other)
        rebuilt = T.tree_unflatten(td, [("leaf", id(x)) for x in want_leaves])
        assert T.tree_structure(mapped) == T.tree_structure(rebuilt)
        assert T.tree_leaves(mapped) == T.tree_leaves(rebuilt)
    # tree_map with a second tree that differs: the general error (a bare
    # leaf takes any second tree whole, as in JAX)
    if T.tree_leaves(tree) and not isinstance(tree, np.ndarray):
        with pytest.raises(ValueError):
            T.tree_map(lambda a, b: a, tree, {"not": "it"} if not isinstance(tree, dict)
                       else [1])
