"""lookahead, apply_every, flatten, freeze, selective_transform, monitor,
snapshot, measure_with_ema, conditionally_mask/transform, tree_map_params
and npopt.microbatching against optax 0.2.8.

The trajectories of the wrappers other than lookahead are replayed by
tests/test_alias_reference.py (reference/cases_wrappers2.py). Here:
lookahead's trajectories (LookaheadParams params) and the microbatching
results from reference/data/optax/wrappers2.npz (make_wrappers2_reference.py),
the state classes and signatures against optax's, tree_map_params against
optax's marking of the params-like state leaves, properties, and the errors
on bad input.
"""
import inspect
import json
import os
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import npopt
import npopt.microbatching as mb
from conftest import TOL, rel_err
from npopt.tree import tree_leaves, tree_map
from reference import problem
from reference import wrappers2_problem as wp

DATA = os.path.join(os.path.dirname(__file__), "reference", "data", "optax", "wrappers2.npz")


@pytest.fixture(scope="module")
def ref():
    z = np.load(DATA)
    return z, json.loads(str(z["meta"]))


# ---------------------------------------------------------------------------
# lookahead trajectories
# ---------------------------------------------------------------------------

def _replay_lookahead(expr, dtype, path):
    opt = wp.build(expr, npopt)
    params0, consts = problem.make_problem(dtype)
    params = npopt.LookaheadParams.init_synced(params0)
    state = opt.init(params)
    fast, slow, first = [], [], None
    for t in range(problem.STEPS):
        g = problem.grads(params.fast, consts, t)
        if path == "update":
            updates, state = opt.update(g, state, params)
            if t == 0:
                first = (problem.ravel(updates.fast), problem.ravel(updates.slow))
            params = npopt.apply_updates(params, updates)
        else:
            params, state = opt.step(params, g, state)
        assert isinstance(params, npopt.LookaheadParams)
        if t + 1 in problem.CHECKPOINTS:
            fast.append(problem.ravel(params.fast))
            slow.append(problem.ravel(params.slow))
    return fast, slow, first, state


@pytest.mark.parametrize("path", ["update", "step"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", list(wp.LOOKAHEAD_CASES))
def test_lookahead_matches_optax(ref, case, dtype, path):
    z, meta = ref
    tol = TOL[np.dtype(dtype)]
    idx = z["sample_idx"]
    fast, slow, first, state = _replay_lookahead(wp.LOOKAHEAD_CASES[case], np.dtype(dtype), path)
    assert fast[-1].dtype == np.dtype(dtype) and slow[-1].dtype == np.dtype(dtype)
    for k, (f, s) in enumerate(zip(fast, slow)):
        assert rel_err(f[idx], z[f"{case}/{dtype}/fast"][k]) <= tol, (k, "fast")
        assert rel_err(s[idx], z[f"{case}/{dtype}/slow"][k]) <= tol, (k, "slow")
    if first is not None:
        assert rel_err(first[0][idx], z[f"{case}/{dtype}/updates_1_fast"]) <= tol
        assert rel_err(first[1][idx], z[f"{case}/{dtype}/updates_1_slow"]) <= tol
    leaves = tree_leaves(state)
    spec = meta["lookahead"][case][dtype]["state"]
    assert len(leaves) == len(spec), [s["path"] for s in spec]
    for i, (leaf, s) in enumerate(zip(leaves, spec)):
        leaf = np.asarray(leaf)
        assert (str(leaf.dtype), list(leaf.shape)) == (s["dtype"], s["shape"]), s["path"]
        want = z[f"{case}/{dtype}/state_{i}"]
        if f"{case}/{dtype}/state_{i}_idx" in z:
            leaf = leaf.reshape(-1)[z[f"{case}/{dtype}/state_{i}_idx"]]
        if leaf.dtype.kind in "biu":
            np.testing.assert_array_equal(leaf, want, err_msg=s["path"])
        else:
            assert rel_err(leaf, want) <= 10 * tol, s["path"]


def test_lookahead_init_with_plain_params_warns_and_uses_them():
    opt = npopt.lookahead(npopt.sgd(0.1, momentum=0.9), 2, 0.5)
    with pytest.warns(UserWarning, match="no attribute `fast`"):
        state = opt.init(np.ones(3))
    assert state.fast_state[0].trace.shape == (3,)
    assert state.steps_since_sync == 0 and state.steps_since_sync.dtype == np.int32


def test_lookahead_sync_math():
    """After sync_period steps: slow = slow0 + a (fast_k - slow0), fast = slow."""
    opt = npopt.lookahead(npopt.sgd(1.0), 3, 0.25)
    p = npopt.LookaheadParams.init_synced(np.array([1.0, -2.0]))
    s = opt.init(p)
    for g in ([1.0, 0.0], [0.5, 1.0]):
        p, s = opt.step(p, np.array(g), s)
        np.testing.assert_array_equal(p.slow, [1.0, -2.0])
    u, s = opt.update(np.array([0.25, 1.0]), s, p)
    p = npopt.apply_updates(p, u)
    fast_k = np.array([1.0 - 1.75, -2.0 - 2.0])
    want = np.array([1.0, -2.0]) + 0.25 * (fast_k - np.array([1.0, -2.0]))
    np.testing.assert_allclose(p.slow, want, rtol=1e-15)
    np.testing.assert_allclose(p.fast, want, rtol=1e-15)
    assert int(s.steps_since_sync) == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lookahead_step_equals_update_with_nonfinite_values(dtype):
    """A NaN or inf gradient between synchronizations: optax's 0 * d carries
    NaN into both fast and slow params; the fused step does the same."""
    opt = npopt.lookahead(npopt.adam(0.1), 3, 0.5)
    base = npopt.LookaheadParams.init_synced({"a": np.linspace(-1, 1, 5).astype(dtype),
                                              "b": np.ones((2, 2), dtype)})
    res = {}
    for path in ("update", "step"):
        p = tree_map(np.copy, base)
        p = npopt.LookaheadParams(p.fast, p.fast)          # one array for both, as init_synced
        s = opt.init(p)
        for t in range(7):
            g = {"a": np.full(5, 0.3, dtype), "b": np.full((2, 2), -0.2, dtype)}
            if t == 4:
                g["a"][1] = np.nan
                g["b"][0, 0] = np.inf
            if path == "update":
                u, s = opt.update(g, s, p)
                p = npopt.apply_updates(p, u)
            else:
                p, s = opt.step(p, g, s)
        res[path] = p
    for a, b in zip(tree_leaves(res["update"]), tree_leaves(res["step"])):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        assert a.dtype == b.dtype == dtype
        ok = ~np.isnan(a)
        assert rel_err(b[ok], a[ok]) <= TOL[np.dtype(dtype)]
    assert np.isnan(res["step"].slow["a"][1]) and np.isnan(res["step"].fast["b"][0, 0])


def test_lookahead_step_does_not_write_into_the_slow_params():
    opt = npopt.lookahead(npopt.sgd(0.5), 4, 0.5)
    x = np.array([1.0, 2.0])
    p = npopt.LookaheadParams.init_synced(x)
    p, s = opt.step(p, np.array([1.0, 1.0]), opt.init(p))
    np.testing.assert_array_equal(p.slow, [1.0, 2.0])
    np.testing.assert_array_equal(p.fast, [0.5, 1.5])
    p2, s = opt.step(p, np.array([1.0, 1.0]), s)
    np.testing.assert_array_equal(p2.slow, [1.0, 2.0])
    with pytest.raises(ValueError, match="params.slow"):
        opt.step(npopt.LookaheadParams(np.ones(2), np.ones(3)), np.ones(2), s)


# ---------------------------------------------------------------------------
# microbatching results
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_microbatching_matches_optax(ref, dtype):
    z, meta = ref
    data = wp.batch_data(np.dtype(dtype))
    for name, fn in wp.microbatch_cases(npopt, np).items():
        out = fn(data)
        leaves = tree_leaves(out)
        spec = meta["microbatch"][name][dtype]
        assert len(leaves) == len(spec), name
        for i, (x, s) in enumerate(zip(leaves, spec)):
            x = np.asarray(x)
            assert (str(x.dtype), list(x.shape)) == (s["dtype"], s["shape"]), (name, s)
            assert rel_err(x, z[f"{name}/{dtype}/out_{i}"]) <= TOL[np.dtype(dtype)], (name, s)


def test_microbatch_reshape_and_concat_round_trip():
    x = np.arange(24).reshape(12, 2)
    r = mb.reshape_batch_axis(x, 3)
    assert r.shape == (4, 3, 2)
    np.testing.assert_array_equal(r[1, :, 0], x[1::4, 0])     # column-major: rows i, i+n, ...
    r1 = mb.reshape_batch_axis(x.T, 4, axis=1)
    assert r1.shape == (2, 3, 4)
    f = mb.microbatch(lambda a: a * 2, 0, 3, mb.AccumulationType.CONCAT)
    np.testing.assert_array_equal(f(x), 2 * x)
    assert mb.microbatch(np.sum, 0, None) is np.sum


@settings(max_examples=25, deadline=None)
@given(n_mb=st.integers(1, 5), size=st.integers(1, 4), cols=st.integers(1, 3),
       kind=st.sampled_from(["SUM", "MEAN", "CONCAT"]))
def test_microbatch_equals_the_full_batch(n_mb, size, cols, kind):
    """SUM / MEAN / CONCAT of microbatches == the full batch's sum / mean /
    value, for integer-valued data (exact in float64)."""
    x = np.arange(n_mb * size * cols, dtype=np.float64).reshape(n_mb * size, cols) % 7
    A = getattr(mb.AccumulationType, kind)
    if kind == "CONCAT":
        got = mb.microbatch(lambda a: a * a, 0, size, A)(x)
        np.testing.assert_array_equal(got, x * x)
    else:
        got = mb.microbatch(lambda a: np.sum(a, axis=0), 0, size, A)(x)
        want = np.sum(x, axis=0) / (n_mb if kind == "MEAN" else 1)
        np.testing.assert_allclose(got, want, rtol=1e-15)


def test_micro_vmap_with_a_vectorized_vmap_fn():
    x = np.arange(12.0).reshape(6, 2)
    vec = lambda fun, in_axes, out_axes: fun           # noqa: E731 - fun takes batches
    a = mb.micro_vmap(lambda r: r * 2, microbatch_size=3, vmap_fn=vec)(x)
    b = mb.micro_vmap(lambda r: r * 2, microbatch_size=3)(x)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, 2 * x)


def test_micro_grad_is_not_implemented_and_says_why():
    with pytest.raises(NotImplementedError, match="automatic differentiation"):
        mb.micro_grad(lambda p, b: 0.0)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: mb.microbatch(np.sum, 0, 5)(np.ones(12)), ValueError, "divisible"),
    (lambda: mb.microbatch(lambda a, b: a, (0, 1), 2)(np.ones(4), np.ones(6)), ValueError,
     "equal-size"),
    (lambda: mb.microbatch(np.sum, 0, 2, mb.AccumulationType.MEAN)(np.arange(4)), ValueError,
     "floating"),
    (lambda: mb.microbatch(np.sum, 0, 0), ValueError, "microbatch_size"),
    (lambda: mb.microbatch(np.sum, 0, 2, "SUM")(np.ones(4)), ValueError, "accumulator"),
    (lambda: mb.micro_vmap(np.sum, out_axes=1), NotImplementedError, "out_axis"),
    (lambda: mb.reshape_batch_axis(np.ones((5, 2)), 2), ValueError, "microbatch_size"),
])
def test_microbatching_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ---------------------------------------------------------------------------
# API: state classes, signatures, exports
# ---------------------------------------------------------------------------

def _signature(f):
    out = []
    for p in inspect.signature(f).parameters.values():
        d = None if p.default is inspect.Parameter.empty else repr(p.default)
        out.append([p.name, p.kind.name, d])
    return out


def test_state_classes_have_optax_fields(ref):
    _, meta = ref
    for name, fields in meta["api"]["states"].items():
        assert list(getattr(npopt, name)._fields) == fields, name


def test_signatures_match_optax(ref):
    _, meta = ref
    for name, want in meta["api"]["functions"].items():
        obj = npopt
        for part in name.split("."):
            obj = getattr(obj, part)
        got = _signature(obj)
        # optax's defaults are jax.vmap and lambdas: compare names and kinds,
        # and the defaults that are plain values
        assert [g[:2] for g in got] == [w[:2] for w in want], name
        for g, w in zip(got, want):
            if w[2] is not None and "<function" not in w[2] and "<lambda" not in w[2] \
                    and not w[2].startswith("<function"):
                assert g[2] == w[2], (name, g, w)
    assert [t.name for t in mb.AccumulationType] == meta["api"]["accumulation_types"]
    import dataclasses
    assert [f.name for f in dataclasses.fields(mb.Accumulator)] == \
        meta["api"]["accumulator_fields"]
    assert npopt.microbatch is mb.microbatch
    assert npopt.tree.tree_map_params is npopt.tree_map_params is npopt.tree.map_params
    assert npopt.transforms.ConditionFn is not None
    # optax.transforms.<name> of this family, at npopt.transforms.<name>
    for n in ("ConditionallyMaskState", "ConditionallyTransformState", "conditionally_mask",
              "conditionally_transform", "flatten", "freeze", "selective_transform",
              "MonitorState", "SnapshotState", "measure_with_ema", "monitor", "snapshot"):
        assert getattr(npopt.transforms, n) is getattr(npopt, n), n


def test_tree_map_params_marks_optax_leaves(ref):
    _, meta = ref
    params0, _ = problem.make_problem(np.float64)
    def masked_node(v):
        return isinstance(v, npopt.MaskedNode)

    def mark(p, lab):                  # 'M' for a masked-out leaf (is_leaf), 'P' otherwise
        return ("M" if masked_node(p) else "P") + lab

    for name, expr in wp.TREE_MAP_PARAMS_CASES.items():
        opt = wp.build(expr, npopt)
        labels = tree_map(lambda x: f"L{np.shape(x)}", params0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")          # lookahead's "no attribute fast"
            state = opt.init(params0)
            marked = npopt.tree_map_params(opt, mark, state, labels, is_leaf=masked_node,
                                           transform_non_params=lambda x: "N")
        want = [v for _, v in meta["tree_map_params"][name]]
        assert tree_leaves(marked) == want, name


def test_tree_map_params_keeps_non_params_without_transform():
    opt = npopt.adam(1e-2)
    p = {"a": np.ones(2)}
    s = opt.init(p)
    out = npopt.tree_map_params(opt.init, lambda x: x + 1, s)
    assert out[0].count is s[0].count
    np.testing.assert_array_equal(out[0].mu["a"], s[0].mu["a"] + 1)
    with pytest.raises(TypeError, match="initable"):
        npopt.tree_map_params(3, lambda x: x, s)


# ---------------------------------------------------------------------------
# properties and paths
# ---------------------------------------------------------------------------

@settings(max_examples=20, deadline=None)
@given(k=st.integers(1, 4), m=st.integers(1, 4), n=st.integers(1, 5))
def test_apply_every_emits_the_sum(k, m, n):
    """Over k*m steps: zeros but at every k-th step, where the update is the
    sum of the last k gradients (integers: exact)."""
    opt = npopt.apply_every(k)
    s = opt.init(np.zeros(n))
    rng = np.random.default_rng(k * 100 + m * 10 + n)
    gs = rng.integers(-5, 5, size=(k * m, n)).astype(np.float64)
    for t, g in enumerate(gs):
        u, s = opt.update(g, s)
        if t % k == k - 1:
            np.testing.assert_array_equal(u, gs[t - k + 1:t + 1].sum(axis=0))
        else:
            np.testing.assert_array_equal(u, np.zeros(n))
        assert s.count.dtype == np.int32 and int(s.count) == (t + 1) % k


def _tree(shapes, rng, dtype):
    return {f"l{i}": rng.standard_normal(s).astype(dtype) for i, s in enumerate(shapes)}


@settings(max_examples=20, deadline=None)
@given(shapes=st.lists(st.lists(st.integers(1, 3), max_size=2).map(tuple), min_size=1,
                       max_size=4),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_flatten_matches_the_unflattened_elementwise_rule(shapes, dtype):
    rng = np.random.default_rng(len(shapes))
    p, g = _tree(shapes, rng, dtype), _tree(shapes, rng, dtype)
    plain, flat = npopt.adam(1e-2), npopt.flatten(npopt.adam(1e-2))
    s1, s2 = plain.init(p), flat.init(p)
    assert tree_leaves(s2)[1].shape == (sum(int(np.prod(s)) for s in shapes),)
    u1, _ = plain.update(g, s1, p)
    u2, _ = flat.update(g, s2, p)
    for a, b in zip(tree_leaves(u1), tree_leaves(u2)):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert rel_err(b, a) <= TOL[np.dtype(dtype)]
    p2, _ = flat.step({k: v.copy() for k, v in p.items()}, g, flat.init(p))
    want = npopt.apply_updates(p, u2)
    for a, b in zip(tree_leaves(want), tree_leaves(p2)):
        assert a.dtype == b.dtype and rel_err(b, a) <= 10 * TOL[np.dtype(dtype)]


def test_flatten_mixed_dtypes_step_equals_update():
    p = {"a": np.ones(3, np.float32), "b": np.full(2, 2.0)}
    g = {"a": np.full(3, 0.3, np.float32), "b": np.full(2, 0.7)}
    opt = npopt.flatten(npopt.sgd(0.1, momentum=0.9))
    u, _ = opt.update(g, opt.init(p), p)
    assert u["a"].dtype == np.float64             # the concatenation's dtype, as optax
    want = npopt.apply_updates(p, u)
    got, _ = opt.step(p, g, opt.init(p))
    for k in p:
        assert got[k].dtype == p[k].dtype
        np.testing.assert_array_equal(got[k], want[k])


@pytest.mark.parametrize("wrap", ["mask", "transform"])
def test_conditional_wrappers_count_and_select(wrap):
    f = npopt.conditionally_mask if wrap == "mask" else npopt.conditionally_transform
    seen = []

    def cond(step, **kw):
        seen.append((int(step), kw))
        return step % 2 == 0

    opt = f(npopt.sgd(1.0, momentum=0.5), cond, forward_extra_args=True)
    p = np.zeros(2)
    s = opt.init(p)
    g = np.ones(2)
    for t in range(4):
        u, s = opt.update(g, s, p, extra=t)
        if t % 2 == 0:
            assert np.all(u < 0)
        else:
            np.testing.assert_array_equal(u, 0 * g if wrap == "mask" else g)
    assert [x[0] for x in seen] == [0, 1, 2, 3] and seen[1][1] == {"extra": 1}
    assert s.step.dtype == np.int32 and int(s.step) == 4
    p2, s2 = opt.step(np.zeros(2), g, opt.init(p), extra=0)
    np.testing.assert_array_equal(p2, [-1.0, -1.0])
    p3, s3 = opt.step(p2, g, s2, extra=1)
    np.testing.assert_array_equal(p3, p2 if wrap == "mask" else p2 + 1)


def test_monitor_snapshot_measure_with_ema():
    opt = npopt.chain(
        npopt.snapshot("first", lambda u: u[0]),
        npopt.monitor({"norm": npopt.tree.norm,
                       "big": npopt.measure_with_ema(lambda u: npopt.tree.norm(u) > 1.0, 0.9)}))
    p = np.array([1.0, 2.0, 3.0])
    s = opt.init(p)
    assert s[0].measurement == {"first": 1.0} and s[1].measurements == {}
    assert s[1].measure_states[1][1].ema.dtype == np.bool_
    u, s = opt.update(p, s)
    np.testing.assert_array_equal(u, p)                   # updates unchanged
    assert s[1].measurements["norm"] == np.sqrt(14.0)
    assert s[1].measurements["big"] == 1.0                # debiased: 0.1 / (1 - 0.9)
    u, s = opt.update(0.1 * p, s)
    np.testing.assert_allclose(s[1].measurements["big"], 0.09 / (1 - 0.81), rtol=1e-15)


def test_freeze_and_selective_transform():
    p = {"a": np.ones(2), "b": np.ones(3)}
    g = {"a": np.full(2, 0.5), "b": np.full(3, 0.5)}
    u, _ = npopt.freeze({"a": True, "b": False}).update(g, npopt.freeze(
        {"a": True, "b": False}).init(p))
    np.testing.assert_array_equal(u["a"], 0.0)
    np.testing.assert_array_equal(u["b"], 0.5)
    opt = npopt.selective_transform(npopt.adam(0.1), freeze_mask={"a": False, "b": True})
    s = opt.init(p)
    assert tree_leaves(s.inner_states["train"])[1].shape == (2,)    # no state for 'b'
    p2, _ = opt.step(p, g, s)
    np.testing.assert_array_equal(p2["b"], p["b"])
    assert np.all(p2["a"] < 1)
    u, _ = npopt.freeze(True).update(g, npopt.freeze(True).init(p))
    assert all(np.all(x == 0) for x in tree_leaves(u))
    fz = npopt.freeze(lambda tree: {"a": False, "b": True})    # masked's callable mask
    u, _ = fz.update(g, fz.init(p))
    np.testing.assert_array_equal(u["a"], 0.5)
    np.testing.assert_array_equal(u["b"], 0.0)


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------

_sgd = npopt.sgd(0.1)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: npopt.lookahead(_sgd, 0, 0.5), ValueError, "sync_period"),
    (lambda: npopt.lookahead(_sgd, 2.5, 0.5), TypeError, "sync_period"),
    (lambda: npopt.lookahead(_sgd, 2, float("nan")), ValueError, "slow_step_size"),
    (lambda: npopt.lookahead(_sgd, 2, 0.5, reset_state=1), TypeError, "reset_state"),
    (lambda: npopt.lookahead("sgd", 2, 0.5), TypeError, "fast_optimizer"),
    (lambda: npopt.apply_every(0), ValueError, "k"),
    (lambda: npopt.apply_every(1.5), TypeError, "k"),
    (lambda: npopt.conditionally_mask(3, lambda s: True), TypeError, "inner"),
    (lambda: npopt.conditionally_transform(_sgd, 3), TypeError, "should_transform_fn"),
    (lambda: npopt.conditionally_mask(_sgd, bool, forward_extra_args="yes"), TypeError,
     "forward_extra_args"),
    (lambda: npopt.freeze({"a": 1}), TypeError, "mask"),
    (lambda: npopt.selective_transform(_sgd, freeze_mask="a"), TypeError, "freeze_mask"),
    (lambda: npopt.selective_transform(_sgd, freeze_mask=lambda p: True), TypeError,
     "freeze_mask"),
    (lambda: npopt.flatten(None), TypeError, "inner"),
    (lambda: npopt.monitor([npopt.tree.norm]), TypeError, "measures"),
    (lambda: npopt.monitor({"x": 3}), TypeError, "measures"),
    (lambda: npopt.snapshot(1, np.sum), TypeError, "measure_name"),
    (lambda: npopt.snapshot("s", 3), TypeError, "measure"),
    (lambda: npopt.measure_with_ema(np.sum, 1.5), ValueError, "decay"),
    (lambda: npopt.measure_with_ema(np.sum, 0.9, accumulator_dtype=np.int32), TypeError,
     "accumulator_dtype"),
])
def test_bad_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_bad_update_input_leaves_state_alone():
    p = npopt.LookaheadParams.init_synced(np.ones(2))
    opt = npopt.lookahead(npopt.adam(0.1), 2, 0.5)
    s = opt.init(p)
    with pytest.raises(TypeError, match="params"):
        opt.update(np.ones(2), s)
    with pytest.raises(TypeError, match="params"):
        opt.update(np.ones(2), s, np.ones(2))
    with pytest.raises(TypeError, match="LookaheadState"):
        opt.update(np.ones(2), s.fast_state, p)
    cm = npopt.conditionally_mask(npopt.adam(0.1), lambda step: np.array([True, False]))
    with pytest.raises(ValueError, match="should_transform_fn.*boolean scalar"):
        cm.update(np.ones(2), cm.init(np.ones(2)))
    ae = npopt.apply_every(2)
    with pytest.raises(TypeError, match="ApplyEvery"):
        ae.update(np.ones(2), (0, np.zeros(2)))
    mon = npopt.monitor({"n": npopt.tree.norm})
    with pytest.raises(TypeError, match="MonitorState"):
        mon.update(np.ones(2), None)
    # state untouched after the errors: the same update works
    u, s2 = opt.update(np.ones(2), s, p)
    assert int(s2.steps_since_sync) == 1


@pytest.mark.parametrize("wrap", ["mask", "transform"])
def test_conditional_step_on_cuda_arrays(wrap):
    """The fused step of conditionally_mask / conditionally_transform keeps
    device params on the device: the inner step when the condition holds,
    the params unchanged or ``apply_updates`` (device kernel) otherwise.
    (numba's CUDA simulator here; a real GPU with NUMBA_ENABLE_CUDASIM=0.)"""
    cuda = pytest.importorskip("numba.cuda")
    from npopt._target import is_device_array
    f = npopt.conditionally_mask if wrap == "mask" else npopt.conditionally_transform
    opt = f(npopt.adam(0.1), lambda step: step % 2 == 0)
    rng = np.random.default_rng(3)
    p = {"a": rng.standard_normal(7), "b": rng.standard_normal((3, 4))}
    gs = [tree_map(lambda x: rng.standard_normal(x.shape), p) for _ in range(4)]
    cpu_p, cpu_s = p, opt.init(p)
    dev_p = tree_map(cuda.to_device, p)
    dev_s = opt.init(dev_p)
    for g in gs:
        cpu_p, cpu_s = opt.step(cpu_p, g, cpu_s)
        dev_p, dev_s = opt.step(dev_p, tree_map(cuda.to_device, g), dev_s)
        assert all(is_device_array(x) for x in tree_leaves(dev_p))
    for a, b in zip(tree_leaves(dev_p), tree_leaves(cpu_p)):
        assert rel_err(a.copy_to_host(), b) <= 1e-14
    assert int(dev_s.step) == 4


def test_apply_every_keeps_a_nan_as_optax():
    """optax's ``acc * grad_acc + g`` and ``emit * grad_acc``: 0 * NaN = NaN,
    so a NaN stays in the accumulator and the updates (optax 0.2.8's values)."""
    opt = npopt.apply_every(2)
    s = opt.init(np.zeros(2))
    want = [([0, 0], [1, 1]), ([np.nan, 2], [np.nan, 2]), ([np.nan, 0], [np.nan, 1]),
            ([np.nan, 2], [np.nan, 2]), ([np.nan, 0], [np.nan, 2])]
    for g, (u_want, acc_want) in zip(([1, 1], [np.nan, 1], [1, 1], [1, 1], [2, 2]), want):
        u, s = opt.update(np.array(g, np.float64), s)
        np.testing.assert_array_equal(u, u_want)
        np.testing.assert_array_equal(s.grad_acc, acc_want)


@settings(max_examples=15, deadline=None)
@given(flags=st.lists(st.booleans(), min_size=1, max_size=8),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_conditional_wrappers_against_inner_steps(flags, dtype):
    """conditionally_transform / conditionally_mask == the inner run on the
    selected steps, identity / zeros on the others (fused step and update)."""
    rng = np.random.default_rng(len(flags))
    p0 = {"a": rng.standard_normal(4).astype(dtype),
          "b": rng.standard_normal((2, 3)).astype(dtype)}
    gs = [tree_map(lambda x: rng.standard_normal(x.shape).astype(dtype), p0) for _ in flags]
    inner = npopt.adam(0.05)
    for wrap in ("transform", "mask"):
        f = npopt.conditionally_transform if wrap == "transform" else npopt.conditionally_mask
        opt = f(inner, lambda step: flags[int(step)])
        s, s_in, p, p_ref, p_step = opt.init(p0), inner.init(p0), p0, p0, p0
        s_step = opt.init(p0)
        for flag, g in zip(flags, gs):
            if flag:
                u_ref, s_in = inner.update(g, s_in, p_ref)
            else:
                u_ref = g if wrap == "transform" else tree_map(np.zeros_like, g)
            p_ref = npopt.apply_updates(p_ref, u_ref)
            u, s = opt.update(g, s, p)
            p = npopt.apply_updates(p, u)
            p_step, s_step = opt.step(p_step, g, s_step)
        for a, b, c in zip(tree_leaves(p), tree_leaves(p_ref), tree_leaves(p_step)):
            np.testing.assert_array_equal(a, b)
            assert c.dtype == a.dtype and rel_err(c, a) <= TOL[np.dtype(dtype)]
        assert int(s.step) == int(s_step.step) == len(flags)
