"""Combinators, wrappers and clipping: properties that hold whatever optax says.

(The numbers against optax are checked by the stored reference trajectories.)
"""
import collections
import functools

import numpy as np
import pytest
from hypothesis import given, strategies as st

import npopt
from npopt import tree as T
from npopt import _flat
from npopt.base import EmptyState, apply_updates, identity
from npopt.transforms.adam import scale_by_adam
from npopt.transforms.combine import (MaskedNode, MaskedState, PartitionState, chain, masked,
                                      multi_transform, named_chain, partition)
from npopt.transforms.clipping import clip, clip_by_block_rms, clip_by_global_norm, global_norm
from npopt.transforms.scale import scale, scale_by_learning_rate
from npopt.transforms.wrappers import (ApplyIfFiniteState, InjectStatefulHyperparamsState,
                                       MultiSteps, MultiStepsState, ZeroNansState,
                                       apply_if_finite, inject_hyperparams, skip_large_updates,
                                       skip_not_finite, zero_nans)


def _tree(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return {"b": rng.standard_normal(5).astype(dtype),
            "extra": [rng.standard_normal((3, 2)).astype(dtype), np.asarray(rng.standard_normal(), dtype)],
            "w": rng.standard_normal((4, 3)).astype(dtype)}


def _leaves(t):
    return T.tree_leaves(t)


_bools = st.booleans()
_masks = st.fixed_dictionaries({"b": _bools, "extra": st.lists(_bools, min_size=2, max_size=2),
                                "w": _bools})


# ---------------------------------------------------------------------------
# MaskedNode / masked
# ---------------------------------------------------------------------------

def test_masked_node_is_an_empty_node():
    tree = {"a": MaskedNode(), "b": np.ones(2)}
    leaves, treedef = T.tree_flatten(tree)
    assert len(leaves) == 1
    assert T.tree_unflatten(treedef, leaves)["a"] == MaskedNode()
    lay, _ = _flat.layout_of(tree)
    assert lay.num_leaves == 1
    assert isinstance(lay.views(lay.full(0.0))["a"], MaskedNode)


@given(_masks, st.sampled_from([np.float32, np.float64]))
def test_masked_passes_masked_out_leaves_through(mask, dtype):
    g = _tree(dtype, 1)
    tx = masked(scale(3.0), mask)
    state = tx.init(g)
    assert isinstance(state, MaskedState)
    out, _ = tx.update(g, state)
    flat_mask = [mask["b"], *mask["extra"], mask["w"]]
    for m, o, x in zip(flat_mask, _leaves(out), _leaves(g)):
        assert o.dtype == x.dtype and o.shape == x.shape
        np.testing.assert_array_equal(o, x * x.dtype.type(3.0) if m else x)


@given(_masks)
def test_masked_inner_state_only_for_masked_in_leaves(mask):
    p = _tree()
    state = masked(scale_by_adam(), mask).init(p)
    n_in = sum([mask["b"], *mask["extra"], mask["w"]])
    assert len(_leaves(state)) == 1 + 2 * n_in       # count + mu + nu leaves
    mu = state.inner_state.mu
    assert isinstance(mu["b"], np.ndarray) == mask["b"]
    assert isinstance(mu["w"], MaskedNode) == (not mask["w"])


def test_masked_callable_and_prefix_mask():
    p = _tree()
    by_fn = masked(scale(2.0), lambda t: T.tree_map(lambda x: x.ndim == 2, t))
    out, _ = by_fn.update(p, by_fn.init(p))
    np.testing.assert_array_equal(out["w"], 2 * p["w"])
    np.testing.assert_array_equal(out["b"], p["b"])
    np.testing.assert_array_equal(out["extra"][1], p["extra"][1])
    np.testing.assert_array_equal(out["extra"][0], 2 * p["extra"][0])
    prefix = masked(scale(2.0), {"b": False, "extra": True, "w": False})
    out, _ = prefix.update(p, prefix.init(p))
    np.testing.assert_array_equal(out["extra"][1], 2 * p["extra"][1])
    np.testing.assert_array_equal(out["w"], p["w"])


def test_masked_with_a_wrong_mask_raises_naming_mask():
    p = _tree()
    with pytest.raises(ValueError, match="mask"):
        masked(scale(2.0), {"b": True, "w": False}).init(p)
    with pytest.raises(ValueError, match="mask"):
        masked(scale(2.0), {"b": True, "extra": [True], "w": False}).init(p)


def test_masked_extra_args_masked_only_when_asked():
    seen = {}

    def spy(updates, state, params=None, **extra):
        seen.update(extra)
        return updates, state
    tx = npopt.GradientTransformation(lambda p: EmptyState(), spy)
    p = _tree()
    mask = {"b": True, "extra": [False, False], "w": False}
    for flag, expect_node in ((True, True), (False, False)):
        m = masked(tx, mask, mask_compatible_extra_args=flag)
        m.update(p, m.init(p), tags=p, other=1.0)
        assert isinstance(seen["tags"]["w"], MaskedNode) == expect_node
        assert seen["other"] == 1.0


# ---------------------------------------------------------------------------
# partition / named_chain
# ---------------------------------------------------------------------------

@given(st.fixed_dictionaries({"b": st.sampled_from("xyz"),
                              "extra": st.lists(st.sampled_from("xyz"), min_size=2, max_size=2),
                              "w": st.sampled_from("xyz")}))
def test_partition_routes_each_label(labels):
    factors = {"x": 2.0, "y": -3.0, "z": 0.5}
    tx = partition({k: scale(v) for k, v in factors.items()}, labels)
    p = _tree()
    state = tx.init(p)
    assert isinstance(state, PartitionState) and set(state.inner_states) == set(factors)
    out, state = tx.update(p, state, p)
    flat_labels = [labels["b"], *labels["extra"], labels["w"]]
    for lab, o, x in zip(flat_labels, _leaves(out), _leaves(p)):
        np.testing.assert_array_equal(o, factors[lab] * x)


def test_partition_state_holds_per_group_moments():
    labels = {"b": "sgd", "extra": ["adam", "sgd"], "w": "adam"}
    tx = multi_transform({"adam": npopt.adam(1e-2), "sgd": npopt.sgd(1e-3, momentum=0.9)}, labels)
    p = _tree()
    state = tx.init(p)
    mu = state.inner_states["adam"].inner_state[0].mu
    assert isinstance(mu["b"], MaskedNode) and mu["w"].shape == (4, 3)
    labels_fn = partition({"a": scale(1.0)}, lambda t: T.tree_map(lambda _: "a", t))
    out, _ = labels_fn.update(p, labels_fn.init(p))
    np.testing.assert_array_equal(out["w"], p["w"])


def test_partition_missing_label_raises():
    with pytest.raises(ValueError, match="param_labels"):
        partition({"a": scale(1.0)}, {"b": "a", "extra": "b", "w": "a"}).init(_tree())


def test_named_chain_keys_and_numbers():
    p, g = _tree(seed=0), _tree(seed=1)
    nc = named_chain(("clip", clip_by_global_norm(1.0)), ("opt", npopt.adam(1e-2)))
    ch = chain(clip_by_global_norm(1.0), npopt.adam(1e-2))
    s1, s2 = nc.init(p), ch.init(p)
    assert isinstance(s1, collections.OrderedDict) and list(s1) == ["clip", "opt"]
    for _ in range(3):
        u1, s1 = nc.update(g, s1, p)
        u2, s2 = ch.update(g, s2, p)
        for a, b in zip(_leaves(u1), _leaves(u2)):
            np.testing.assert_array_equal(a, b)
    assert list(s1) == ["clip", "opt"]
    with pytest.raises(ValueError, match="unique"):
        named_chain(("a", scale(1.0)), ("a", scale(2.0)))


# ---------------------------------------------------------------------------
# MultiSteps
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("mean", [True, False])
def test_multisteps_emits_every_kth_step_the_mean(k, mean):
    ms = MultiSteps(scale(1.0), every_k_schedule=k, use_grad_mean=mean,
                    accumulator_dtype=np.float64)
    p = _tree()
    state = ms.init(p)
    assert isinstance(state, MultiStepsState)
    grads = [_tree(seed=s) for s in range(2 * k)]
    for i, g in enumerate(grads):
        u, state = ms.update(g, state, p)
        if (i + 1) % k:
            assert all(np.all(x == 0) for x in _leaves(u))
            assert not ms.has_updated(state)
        else:
            window = grads[i + 1 - k:i + 1]
            for j, x in enumerate(_leaves(u)):
                acc = sum(_leaves(w)[j] for w in window)
                np.testing.assert_allclose(x, acc / k if mean else acc, rtol=1e-12, atol=1e-14)
            assert ms.has_updated(state)
            assert int(state.gradient_step) == (i + 1) // k
    assert state.mini_step.dtype == np.int32 and state.gradient_step.dtype == np.int32


def test_multisteps_inner_state_advances_only_on_emit():
    ms = MultiSteps(npopt.adam(1e-2), every_k_schedule=3)
    p = _tree(np.float32)
    state = ms.init(p)
    for i in range(6):
        _, state = ms.update(_tree(np.float32, i), state, p)
        assert int(state.inner_opt_state[0].count) == (i + 1) // 3
    assert all(x.dtype == np.float32 for x in _leaves(state.acc_grads))
    assert ms.inner_opt is not None
    init, update = ms.gradient_transformation()
    assert init is not None and update is not None


def test_multisteps_skip_not_finite():
    ms = MultiSteps(scale(1.0), every_k_schedule=2, should_skip_update_fn=skip_not_finite)
    p = _tree()
    state = ms.init(p)
    bad = _tree(seed=3)
    bad["b"][0] = np.nan
    u, new = ms.update(bad, state, p)
    assert all(np.all(x == 0) for x in _leaves(u))
    assert int(new.mini_step) == 0 and bool(new.skip_state["should_skip"])
    assert int(new.skip_state["num_not_finite"]) == 1
    for a, b in zip(_leaves(new.acc_grads), _leaves(state.acc_grads)):
        np.testing.assert_array_equal(a, b)
    skip, info = skip_large_updates(p, 0, None, max_squared_norm=1e-3)
    assert bool(skip) and info["norm_squared"] > 1e-3


def test_multisteps_bad_skip_fn_raises():
    ms = MultiSteps(scale(1.0), 2, should_skip_update_fn=lambda u, s, p: (np.int32(0), ()))
    p = _tree()
    with pytest.raises(ValueError, match="boolean scalar"):
        ms.update(p, ms.init(p), p)


# ---------------------------------------------------------------------------
# apply_if_finite / zero_nans
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("max_errors", [0, 1, 2])
def test_apply_if_finite_skips_and_counts(max_errors):
    tx = apply_if_finite(npopt.sgd(0.1, momentum=0.9), max_errors)
    p = _tree()
    state = tx.init(p)
    assert isinstance(state, ApplyIfFiniteState)
    bad = _tree(seed=5)
    bad["w"][1, 1] = np.inf
    good = _tree(seed=6)
    _, state = tx.update(good, state, p)
    for i in range(4):
        trace_before = [x.copy() for x in _leaves(state.inner_state)]
        u, state = tx.update(bad, state, p)
        assert int(state.notfinite_count) == i + 1 and not bool(state.last_finite)
        applied = i + 1 > max_errors
        if applied:
            assert not all(np.all(np.isfinite(x)) for x in _leaves(u))
        else:
            assert all(np.all(x == 0) for x in _leaves(u))
            for a, b in zip(_leaves(state.inner_state), trace_before):
                np.testing.assert_array_equal(a, b)
    assert int(state.total_notfinite) == 4
    _, state = tx.update(good, state, p)
    assert int(state.notfinite_count) == 0 and bool(state.last_finite)
    assert int(state.total_notfinite) == 4
    assert state.notfinite_count.dtype == np.int32


def test_apply_if_finite_step_matches_update():
    tx = apply_if_finite(npopt.adam(1e-2), 1)
    p1, p2 = _tree(), _tree()
    s1, s2 = tx.init(p1), tx.init(p2)
    for i in range(5):
        g = _tree(seed=10 + i)
        if i in (1, 3):
            g["b"][2] = np.nan
        u, s1 = tx.update(g, s1, p1)
        p1 = apply_updates(p1, u)
        p2, s2 = tx.step(p2, g, s2)
    for a, b in zip(_leaves(p1), _leaves(p2)):
        np.testing.assert_allclose(a, b, rtol=1e-14)


def test_zero_nans_flags_and_zeroes():
    tx = zero_nans()
    g = _tree(np.float32)
    state = tx.init(g)
    assert isinstance(state, ZeroNansState) and not any(map(bool, _leaves(state.found_nan)))
    g["w"][0, 0] = np.nan
    g["b"][1] = np.inf
    u, state = tx.update(g, state)
    flags = _leaves(state.found_nan)
    assert [bool(f) for f in flags] == [False, False, False, True]
    assert u["w"][0, 0] == 0 and u["w"].dtype == np.float32
    assert np.isinf(u["b"][1])                       # only NaNs are zeroed


# ---------------------------------------------------------------------------
# clipping
# ---------------------------------------------------------------------------

_scales = st.floats(1e-3, 1e3)


@given(_scales, st.floats(0.01, 100.0), st.integers(0, 1000), st.sampled_from([np.float32, np.float64]))
def test_clip_by_global_norm_bound(s, max_norm, seed, dtype):
    g = T.tree_map(lambda x: x * dtype(s), _tree(dtype, seed))
    n = global_norm(g)
    np.testing.assert_allclose(n, np.sqrt(sum(np.sum(np.float64(x) ** 2) for x in _leaves(g))),
                               rtol=1e-5 if dtype == np.float32 else 1e-12)
    tx = clip_by_global_norm(max_norm)
    u, state = tx.update(g, tx.init(g))
    assert state == EmptyState()
    if n < max_norm:
        for a, b in zip(_leaves(u), _leaves(g)):
            np.testing.assert_array_equal(a, b)
    else:
        assert global_norm(u) <= max_norm * (1 + 1e-5)
        for a, b in zip(_leaves(u), _leaves(g)):   # direction kept
            assert a.dtype == b.dtype
            np.testing.assert_allclose(a, b * (max_norm / n), rtol=2e-6 if dtype == np.float32 else 1e-14,
                                       atol=1e-30)


def test_global_norm_mixed_dtypes_and_many_chunks(monkeypatch):
    from npopt.kernels import _jit
    rng = np.random.default_rng(0)
    g = {"a": rng.standard_normal(50_000).astype(np.float32), "b": rng.standard_normal(9000)}
    n = global_norm(g)
    assert n.dtype == np.float64                     # float32 sum promoted in leaf order
    ref = np.sqrt(np.sum(np.float64(g["a"]) ** 2) + np.sum(g["b"] ** 2))
    np.testing.assert_allclose(n, ref, rtol=1e-6)
    monkeypatch.setattr(_jit, "PARALLEL_THRESHOLD", 1)   # the parallel loops: same bits
    assert global_norm(g) == n


@given(st.floats(0.01, 10.0), st.integers(0, 1000), st.sampled_from([np.float32, np.float64]))
def test_clip_by_block_rms_per_leaf(threshold, seed, dtype):
    g = T.tree_map(lambda x: x * dtype(4.0), _tree(dtype, seed))
    u, _ = clip_by_block_rms(threshold).update(g, EmptyState())
    for a, b in zip(_leaves(u), _leaves(g)):
        assert a.dtype == b.dtype
        rms_b = np.sqrt(np.mean(np.float64(b) ** 2))
        rms_a = np.sqrt(np.mean(np.float64(a) ** 2))
        if rms_b <= threshold * (1 - 1e-6):
            np.testing.assert_array_equal(a, b)
        else:
            assert rms_a <= threshold * (1 + 1e-5)
            np.testing.assert_allclose(rms_a, threshold, rtol=1e-5)


@given(st.floats(0.0, 3.0), st.integers(0, 1000))
def test_clip_elementwise(max_delta, seed):
    g = _tree(np.float32, seed)
    g["b"][0] = np.nan
    u, _ = clip(max_delta).update(g, EmptyState())
    for a, b in zip(_leaves(u), _leaves(g)):
        np.testing.assert_array_equal(a, np.clip(b, np.float32(-max_delta), np.float32(max_delta)))
        assert a.dtype == np.float32
    assert np.isnan(u["b"][0])


def test_clip_arguments_are_checked():
    with pytest.raises(ValueError, match="max_norm"):
        clip_by_global_norm(-1.0)
    with pytest.raises(ValueError, match="max_delta"):
        clip(float("nan"))


# ---------------------------------------------------------------------------
# inject_hyperparams
# ---------------------------------------------------------------------------

def test_inject_hyperparams_state_and_dtypes():
    p = _tree(np.float32)
    opt = inject_hyperparams(npopt.adam)(learning_rate=1e-2, b1=0.9)
    state = opt.init(p)
    assert isinstance(state, InjectStatefulHyperparamsState)
    assert set(state.hyperparams) == {"learning_rate", "b1", "b2", "eps", "eps_root"}
    assert all(v.dtype == np.float32 for v in state.hyperparams.values())
    assert state.hyperparams_states == {}
    assert "nesterov" not in state.hyperparams and "mu_dtype" not in state.hyperparams
    _, state = opt.update(p, state, p)
    assert int(state.count) == 1 and state.count.dtype == np.int32


def test_inject_hyperparams_overwrite_learning_rate():
    p = _tree()
    g = _tree(seed=2)
    opt = inject_hyperparams(npopt.sgd)(learning_rate=0.1)
    state = opt.init(p)
    u1, state = opt.update(g, state, p)
    state.hyperparams["learning_rate"] = 0.0
    u2, state = opt.update(g, state, p)
    np.testing.assert_array_equal(u1["w"], -0.1 * g["w"])
    assert all(np.all(x == 0) for x in _leaves(u2))
    assert state.hyperparams["learning_rate"].dtype == np.float64


def test_inject_hyperparams_schedule_before_increment():
    seen = []

    def sched(count):
        seen.append(int(count))
        return 0.5 / (1 + int(count))
    p = _tree()
    g = _tree(seed=3)
    opt = inject_hyperparams(npopt.sgd)(learning_rate=sched)
    state = opt.init(p)
    for t in range(3):
        u, state = opt.update(g, state, p)
        np.testing.assert_allclose(u["b"], -(0.5 / (1 + t)) * g["b"], rtol=1e-15)
        np.testing.assert_allclose(state.hyperparams["learning_rate"], 0.5 / (1 + t))
    assert seen == [0, 0, 1, 2]                      # init, then counts 0, 1, 2
    assert int(state.hyperparams_states["learning_rate"].count) == 3


def test_inject_hyperparams_static_args_and_step():
    with pytest.raises(ValueError, match="static_args"):
        inject_hyperparams(npopt.sgd, static_args=("nope",))
    p1, p2 = _tree(), _tree()
    opt = inject_hyperparams(npopt.adam)(learning_rate=1e-2, nesterov=True)
    s1, s2 = opt.init(p1), opt.init(p2)
    for i in range(3):
        g = _tree(seed=20 + i)
        u, s1 = opt.update(g, s1, p1)
        p1 = apply_updates(p1, u)
        p2, s2 = opt.step(p2, g, s2)
    for a, b in zip(_leaves(p1), _leaves(p2)):
        np.testing.assert_allclose(a, b, rtol=1e-13)


# ---------------------------------------------------------------------------
# clipping on CUDA arrays (numba's simulator unless NUMBA_ENABLE_CUDASIM=0)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", [lambda: clip(0.3), lambda: clip_by_global_norm(0.5),
                                  lambda: clip_by_block_rms(0.2)],
                         ids=["clip", "global_norm", "block_rms"])
def test_clip_cuda_matches_cpu(make, dtype):
    cuda = pytest.importorskip("numba.cuda")
    g = _tree(dtype, 7)
    g["z"] = np.zeros(0, dtype)                      # an empty leaf between others
    tx = make()
    want, _ = tx.update(g, EmptyState())
    got, _ = tx.update(T.tree_map(cuda.to_device, g), EmptyState())
    for a, b in zip(_leaves(got), _leaves(want)):
        a = a.copy_to_host()
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=2e-6 if dtype == np.float32 else 1e-14)
