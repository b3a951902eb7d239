"""optax's tree_utils additions and jaxopt's tree_util, loop, cond and base.

Paths, ``tree_get_all_with_path``, ``tree_get`` and ``tree_set`` against
optax 0.2.8 (tests/reference/data/optax/tree_paths.json, made by
make_tree_paths_reference.py): the same paths, in the same order, on the
states of the same optimizers.
"""
import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import npopt
from npopt import tree as T
from npopt import tree_util as TU

DATA = os.path.join(os.path.dirname(__file__), "reference", "data", "optax", "tree_paths.json")
with open(DATA) as _f:
    REF = json.load(_f)


def _state(name):
    params = eval(REF["params"], {"np": np})
    return eval(REF["states"][name]["expr"], {"ox": npopt, "np": np}).init(params)


@pytest.mark.parametrize("name", sorted(REF["states"]))
def test_leaf_paths_are_jaxs(name):
    state = _state(name)
    got = [T.keystr(p) for p, _ in T.tree_leaves_with_path(state)]
    assert got == REF["states"][name]["leaves"]
    assert [id(v) for _, v in T.tree_leaves_with_path(state)] == [id(v) for v in T.tree_leaves(state)]


@pytest.mark.parametrize("name", sorted(REF["states"]))
def test_get_all_with_path_is_optaxs(name):
    state, ref = _state(name), REF["states"][name]
    for key, paths in ref["get_all"].items():
        found = T.tree_get_all_with_path(state, key)
        assert [T.keystr(p) for p, _ in found] == paths, key
        if key in ref["get_raises"]:
            with pytest.raises(KeyError, match="multiple"):
                T.tree_get(state, key)
        elif paths:
            assert T.tree_get(state, key) is found[0][1]
        else:
            assert T.tree_get(state, key, default="absent") == "absent"


def test_get_and_set_by_key():
    state = npopt.chain(npopt.add_noise(1.0, 0.9, key=0), npopt.scale_by_adam()).init(
        {"w": np.zeros(3)})
    assert type(T.tree_get(state, "AddNoiseState")).__name__ == "AddNoiseState"
    only_adam = lambda path, _: path[-1].tuple_name == "ScaleByAdamState"
    assert int(T.tree_get(state, "count", filtering=only_adam)) == 0
    new = T.tree_set(state, only_adam, count=np.int32(7))
    assert int(new[1].count) == 7 and new[0].count is state[0].count     # only adam's
    assert int(state[1].count) == 0                                        # not modified
    assert new[1].mu is state[1].mu
    new = T.tree_set(state, ScaleByAdamState=None)          # a whole named tuple
    assert new[1] is None and new[0].rng_key is state[0].rng_key
    with pytest.raises(KeyError, match="no values matching 'nope'"):
        T.tree_set(state, nope=1)
    with pytest.raises(KeyError, match="given the filtering"):
        T.tree_set(state, lambda p, v: False, count=1)
    # a found step of the updated state is usable
    params = {"w": np.ones(3)}
    opt = npopt.inject_hyperparams(npopt.sgd)(learning_rate=0.1)
    s = T.tree_set(opt.init(params), lambda p, v: isinstance(v, np.ndarray),
                   learning_rate=np.asarray(0.5))
    u, _ = opt.update({"w": np.ones(3)}, s, params)
    np.testing.assert_allclose(u["w"], -0.5)


def test_optax_spellings_are_the_same_functions():
    assert npopt.tree_utils.tree_set is T.set is T.tree_set
    assert npopt.tree_utils.NamedTupleKey is T.NamedTupleKey
    assert str(T.NamedTupleKey("ScaleByAdamState", "mu")) == "ScaleByAdamState.mu"


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=0, max_size=3).map(tuple),
       st.sampled_from([np.float32, np.float64, np.int32]))
def test_batch_shape(shape, dtype):
    tree = {"a": np.arange(3).astype(dtype), "b": [np.ones((2, 1), dtype)]}
    out = T.tree_batch_shape(tree, shape)
    assert out["a"].shape == (*shape, 3) and out["b"][0].shape == (*shape, 2, 1)
    assert out["a"].dtype == dtype and out["a"].flags.writeable
    if all(shape):
        np.testing.assert_array_equal(out["a"].reshape(-1, 3)[-1], tree["a"])


def test_random_like():
    target = {"a": np.zeros((4, 5), np.float32), "b": [np.zeros(7), np.zeros(3, np.complex64)]}
    x = T.tree_random_like(0, target)
    y = T.tree_random_like(np.random.default_rng(0), target)
    assert T.tree_structure(x) == T.tree_structure(target)
    for a, b, t in zip(T.tree_leaves(x), T.tree_leaves(y), T.tree_leaves(target)):
        assert a.shape == t.shape and a.dtype == t.dtype
        np.testing.assert_array_equal(a, b)             # same seed, same numbers
    assert not np.array_equal(x["a"].ravel()[:3], x["b"][0][:3])   # leaves independent
    z = T.tree_random_like(1, target, dtype=np.float64)
    assert all(v.dtype == np.float64 for v in T.tree_leaves(z))
    # each leaf's numbers depend on its position, not on the other leaves
    big = T.tree_random_like(0, {"a": np.zeros((40, 50), np.float32), "b": target["b"]})
    np.testing.assert_array_equal(big["b"][0], x["b"][0])
    uniform = lambda g, shape, dtype: g.uniform(size=shape).astype(dtype)
    u = T.tree_random_like(3, target["b"][:1], sampler=uniform)
    assert 0 <= u[0].min() and u[0].max() < 1
    with pytest.raises(TypeError, match="rng_key"):
        T.tree_random_like("seed", target)
    keys = T.tree_unwrap_random_key_data(T.tree_split_key_like(5, [1, 2]))
    assert keys[0].dtype == np.uint64 and keys[0].shape == (4,)
    assert not np.array_equal(keys[0], keys[1])


def test_tree_sum_associative_reduction():
    tree = {"a": np.arange(4.0), "b": [np.float32(0.5)]}
    assert T.tree_sum(tree) == T.tree_sum(tree, associative_reduction=True) == 6.5
    with pytest.raises(TypeError, match="associative_reduction"):
        T.tree_sum(tree, "yes")


# --- jaxopt.tree_util ------------------------------------------------------

def test_jaxopt_tree_util():
    x = {"a": np.array([1.0, -3.0]), "b": [np.array(2.0)]}
    y = {"a": np.array([0.5, 2.0]), "b": [np.array(4.0)]}
    assert TU.tree_add(x, y)["a"].tolist() == [1.5, -1.0]
    assert TU.tree_sub(x, y)["b"][0] == -2.0
    assert TU.tree_mul(x, y)["a"].tolist() == [0.5, -6.0]
    assert TU.tree_div(x, y)["b"][0] == 0.5
    assert TU.tree_sum(x) == 0.0 and TU.tree_inf_norm(x) == 3.0
    assert TU.tree_l2_norm(x, squared=True) == 14.0
    assert TU.tree_vdot(x, y) == T.tree_vdot(x, y)
    assert TU.tree_zeros_like(x)["a"].tolist() == [0.0, 0.0]
    assert TU.tree_ones_like(x)["b"][0] == 1.0
    w = TU.tree_where(x, 1.0, 0.0)       # a tree condition, leaves broadcast
    assert w["a"].tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="structure"):
        TU.tree_add(x, [1.0])


def test_broadcast_pytrees():
    tree = {"a": np.zeros(2), "b": np.zeros(3)}
    a, b, c = TU.broadcast_pytrees(tree, 1.5, tree)
    assert b == {"a": 1.5, "b": 1.5} and a is tree and c is tree
    assert TU.broadcast_pytrees(1.0, 2.0) == (1.0, 2.0)
    with pytest.raises(ValueError, match="not broadcastable"):
        TU.broadcast_pytrees(tree, [1.0, 2.0])


# --- jaxopt.loop, jaxopt.cond, jaxopt.base ---------------------------------

@pytest.mark.parametrize("unroll,jit", [(False, False), (True, False), (True, True), (False, True)])
def test_while_loop(unroll, jit):
    assert npopt.loop.while_loop(lambda v: v < 10, lambda v: v + 3, 0, 100, unroll, jit) == 12
    assert npopt.loop.while_loop(lambda v: True, lambda v: v + 1, 0, 5) == 5     # bounded
    assert npopt.loop.while_loop(lambda v: True, lambda v: v + 1, 0, 0) == 0
    with pytest.raises(ValueError, match="maxiter"):
        npopt.loop.while_loop(lambda v: True, lambda v: v, 0, -1)
    with pytest.raises(TypeError, match="maxiter"):
        npopt.loop.while_loop(lambda v: True, lambda v: v, 0, 2.5)


def test_cond():
    assert npopt.cond.cond(True, lambda a, b: a + b, lambda a, b: a - b, 5, 2) == 7
    assert npopt.cond.cond(np.array([False]), lambda a: a, lambda a: -a, 3, jit=False) == -3
    with pytest.raises(ValueError, match="cond: expected a scalar"):
        npopt.cond.cond(np.array([True, False]), abs, abs, 1)


def test_jaxopt_base_names():
    from npopt.solvers.base import IterativeSolver, OptStep
    assert npopt.base.OptStep is OptStep and npopt.base.IterativeSolver is IterativeSolver
    assert issubclass(npopt.base.StochasticSolver, IterativeSolver)
    op = npopt.base.LinearOperator(np.array([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_array_equal(op.matvec(np.array([1.0, 1.0])), [3.0, 7.0])
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        npopt.base.nope
