"""npopt.experimental.aggregating against optax 0.2.8's
``optax.experimental.aggregating``.

* replay: every case of ``tests/reference/make_aggregating_reference.py``
  (process pipelines with accumulation over 1, 2 and 3 microbatches,
  per_elt_axis 0, -1, 1 and (0, 1), add_mean_variance_to_opt, the bare
  aggregators) step by step: the updates, the final state and the unbiased
  EMAs to 1e-12 (float64) / 1e-6 (float32) of each leaf's magnitude, the
  types, field names, dtypes and shapes of the updates and states exactly;
* properties (hypothesis): k microbatches give the mean (and the sum of
  squared deviations) of their concatenation, variances are non-negative,
  the per-element reduction does not depend on the memory layout, the
  output comes every ``accumulation_steps`` calls;
* bad input: clear errors, the state left as it was.
"""
import inspect
import json
import os
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import npopt
from conftest import rel_err
from npopt.tree import tree_leaves, tree_map

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "reference"))
import make_aggregating_reference as REF  # noqa: E402

ag = npopt.experimental.aggregating
TOL = {"float32": 1e-6, "float64": 1e-12}
_Z = np.load(REF.OUT)
DATA = {k: _Z[k] for k in _Z.files}


def _run(name, dtype):
    case = REF.CASES[name]
    params = REF.params_tree(DATA["params"], dtype)
    opt = eval(case["expr"], {"ag": ag, "ox": npopt})
    state = opt.init(params)
    init_state = state
    ups, unbiased = [], []
    for t in range(REF.STEPS):
        updates, state = opt.update(REF.grads(DATA["inputs"][t], case["layout"], dtype),
                                    state, params)
        ups.append(updates)
        if case.get("unbiased"):
            try:
                unbiased.append(ag.get_unbiased_mean_and_variance_ema(state))
            except ValueError as e:
                assert "count 0" in str(e)
                unbiased.append(None)
    return opt, init_state, ups, state, unbiased


def _close(got, ref, tol, what):
    got = np.asarray(got)
    assert got.shape == ref.shape, (what, got.shape, ref.shape)
    if ref.dtype.kind in "biu":
        assert np.array_equal(got, ref), what
    else:
        assert rel_err(got, ref) <= tol, (what, rel_err(got, ref))


@pytest.mark.parametrize("dtype", REF.DTYPES)
@pytest.mark.parametrize("name", sorted(REF.CASES))
def test_replay_optax(name, dtype):
    key = f"{name}/{dtype}"
    tol = TOL[dtype]
    opt, init_state, ups, state, unbiased = _run(name, dtype)
    assert REF.describe(init_state) == str(DATA[f"{key}/init_struct"])
    assert REF.describe(ups[-1]) == str(DATA[f"{key}/updates_struct"])
    assert REF.describe(state) == str(DATA[f"{key}/state_struct"])
    for t, updates in enumerate(ups):
        for i, leaf in enumerate(tree_leaves(updates)):
            _close(leaf, DATA[f"{key}/updates_{i}"][t], tol, f"step {t} updates leaf {i}")
    for i, leaf in enumerate(tree_leaves(state)):
        _close(leaf, DATA[f"{key}/state_{i}"], tol, f"state leaf {i}")
    if REF.CASES[name].get("unbiased"):
        valid = DATA[f"{key}/unbiased_valid"]
        assert [u is not None for u in unbiased] == list(valid)
        for t, u in enumerate(unbiased):
            if u is None:
                continue
            leaves = tree_leaves(u)
            for i, leaf in enumerate(leaves):
                ref = DATA[f"{key}/unbiased_{i}"][t]
                assert np.asarray(leaf).dtype == ref.dtype
                _close(leaf, ref, tol, f"step {t} unbiased leaf {i}")


def test_optaxs_types_and_signatures():
    """The classes optax builds, and the parameters of api.json."""
    assert issubclass(ag.Aggregator, npopt.GradientTransformationExtraArgs)
    assert npopt.experimental.aggregating is ag
    adam = npopt.adam(1e-2)
    assert isinstance(ag.process(npopt.identity(), ag.average_per_element_updates(), adam),
                      ag.Aggregator)
    acc = ag.average_incrementally_updates(None, 3)
    assert type(acc) is npopt.GradientTransformation
    assert type(ag.process(npopt.identity(), acc, adam)) is npopt.GradientTransformationExtraArgs
    assert isinstance(ag.average_incrementally_updates(0, 3), ag.Aggregator)
    assert isinstance(ag.add_mean_variance_to_opt(adam), ag.Aggregator)
    assert ag.accumulate_avg_updates(1).fusion == npopt.identity().fusion
    assert type(ag.track_per_element_mean_and_variance_with_ema()) is \
        npopt.GradientTransformationExtraArgs
    init, update = ag.average_per_element_updates()        # a 2-tuple as in optax
    with open(os.path.join(os.path.dirname(__file__), "reference", "data", "api.json")) as f:
        peer = json.load(f)["modules"]["optax.experimental.aggregating"]
    assert set(peer) == set(ag.__all__)
    for name, ref in peer.items():
        obj = getattr(ag, name)
        if ref["params"] is None or name in ("Aggregator",):
            continue
        got = [[p.name, p.kind.name, None if p.default is inspect.Parameter.empty
                else repr(p.default)] for p in inspect.signature(obj).parameters.values()]
        assert got == ref["params"], name
    assert [p for p in inspect.signature(ag.Aggregator).parameters][:2] == ["init", "update"]


def test_step_and_extra_args():
    """``step`` of an aggregator is update + apply_updates; extra args reach
    the postprocessor alongside the aggregator's aux."""
    params = {"w": np.ones(3)}
    grads = {"w": np.arange(6.0).reshape(2, 3)}
    opt = ag.process(npopt.identity(), ag.average_per_element_updates(0), npopt.sgd(0.5))
    new_params, _ = opt.step(params, grads, opt.init(params))
    np.testing.assert_array_equal(new_params["w"], 1.0 - 0.5 * np.array([1.5, 2.5, 3.5]))
    seen = {}

    def post_update(updates, state, params=None, **extra):
        seen.update(extra)
        return updates, state
    opt = ag.process(npopt.identity(), ag.get_per_element_mean_and_sum_sq_diff_grads(0),
                     npopt.GradientTransformation(npopt.init_empty_state, post_update),
                     aggregator_has_aux=True)
    opt.update(grads, opt.init(params), params, value=3.0)
    assert seen["value"] == 3.0 and seen["sample_size"] == 2
    np.testing.assert_array_equal(seen["sum_sq_diff_grads"]["w"], np.full(3, 4.5))


# ---- properties ----------------------------------------------------------------

def _microbatches(draw, k, n, dtype):
    size = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    scale = draw(st.sampled_from([1e-3, 1.0, 1e3]))
    data = (draw(st.floats(-2, 2)) + scale * rng.standard_normal((k, n, size, 2)))
    return data.astype(dtype)


@st.composite
def _batches(draw):
    k = draw(st.integers(1, 5))
    n = draw(st.integers(2, 6))
    dtype = draw(st.sampled_from(["float32", "float64"]))
    return k, n, dtype, _microbatches(draw, k, n, dtype)


@given(_batches())
def test_accumulated_mean_is_the_mean_of_the_concatenation(batch):
    k, n, dtype, data = batch
    tol = 8 * k * n * np.finfo(dtype).eps      # of the largest |element|
    allrows = data.reshape((k * n,) + data.shape[2:]).astype(np.float64)
    mean = allrows.mean(axis=0)
    ssd = ((allrows - mean) ** 2).sum(axis=0)
    scale = np.max(np.abs(allrows))

    avg = ag.average_incrementally_updates(0, k)
    stats = ag.get_per_element_mean_and_sum_sq_diff_grads(0, k)
    s_avg, s_stats = avg.init(data[0, 0]), stats.init(data[0, 0])
    for j in range(k):
        u_avg, s_avg = avg.update(data[j], s_avg)
        (u_mean, aux), s_stats = stats.update(data[j], s_stats)
        if j < k - 1:       # nothing until the last microbatch
            assert not np.any(u_avg) and not np.any(u_mean) and aux["sample_size"] == 0
    for got in (u_avg, u_mean):
        assert got.dtype == np.dtype(dtype)
        assert np.max(np.abs(got - mean)) <= tol * scale
    assert aux["sample_size"] == k * n
    assert np.all(aux["sum_sq_diff_grads"] >= 0)
    # rounding: the deviations carry the mean's error (~ eps * scale), squared and
    # summed; and optax's factor (k-1) n / k is an int32 / int32 division, a float32
    # number even for float64 leaves (mirrored): its rounding weighs on a part of ssd
    eps, m = np.finfo(dtype).eps, k * n
    bound = 16 * m * eps * (ssd + scale * np.sqrt(m * ssd) + m * eps * scale ** 2)
    bound += 2 * np.finfo(np.float32).eps * ssd
    assert np.all(np.abs(aux["sum_sq_diff_grads"] - ssd) <= bound)


@given(_batches(), st.floats(0.0, 0.99))
def test_variance_estimates_are_non_negative(batch, decay):
    k, n, dtype, data = batch
    opt = ag.add_mean_variance_to_opt(npopt.sgd(0.1), ema_decay=decay, accumulation_steps=1)
    params = np.zeros(data.shape[2:], dtype)
    state = opt.init(params)
    for j in range(k):
        _, state = opt.update(data[j], state, params)
        ema = state[2][0]
        assert np.all(ema.variance_grads_ema >= 0)
        _, var = ag.get_unbiased_mean_and_variance_ema(state)
        assert np.all(var >= 0) and var.dtype == np.dtype(dtype)


@given(_batches(), st.sampled_from([0, 1, 2, (0, 1), (1, 2), (0, 2), (2, 0), -1]))
def test_reduction_does_not_depend_on_the_layout(batch, axis):
    """The per-element mean is the same bits whatever the memory layout
    (C, Fortran, a transposed view): the elements are added in one order."""
    _, _, _, data = batch
    x = data[0]
    ref = ag.average_per_element_updates(axis).update(x, ())[0]
    for y in (np.asfortranarray(x), np.ascontiguousarray(x.transpose(2, 1, 0)).transpose(2, 1, 0),
              x[::-1][::-1]):
        got = ag.average_per_element_updates(axis).update(y, ())[0]
        assert got.dtype == ref.dtype and np.array_equal(got, ref)
    # a mean over (0, 1) is the mean over the merged axis
    if axis == (0, 1):
        merged = x.reshape((-1,) + x.shape[2:])
        assert np.array_equal(ag.average_per_element_updates(0).update(merged, ())[0], ref)


def test_large_sums_add_in_the_same_order(monkeypatch):
    """Large leaves are summed row by row instead of by one cumsum: same bits."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((7, 5, 3)) * 10.0 ** rng.integers(-8, 8, (7, 5, 3))).astype(np.float32)
    x[:, 0, :] = -0.0
    stats = ag.get_per_element_mean_and_sum_sq_diff_grads((0, 2))
    ref = stats.update(x, ())[0]
    monkeypatch.setattr(ag, "_ONE_CALL_MAX", 0)
    got = stats.update(x, ())[0]
    for a, b in zip(tree_leaves(got), tree_leaves(ref)):
        assert np.array_equal(a, b) and np.asarray(a).dtype == np.asarray(b).dtype
    assert not np.signbit(got[0][0])           # -0.0 summed is +0.0, as from zero


@given(st.integers(1, 4), st.integers(1, 12))
def test_ready_every_accumulation_steps(steps, calls):
    params = {"a": np.zeros(2)}
    opt = ag.process(npopt.identity(), ag.average_incrementally_updates(0, steps), npopt.sgd(1.0))
    state = opt.init(params)
    outputs = 0
    for c in range(1, calls + 1):
        updates, state = opt.update({"a": np.ones((3, 2))}, state, params)
        if c % steps == 0:
            outputs += 1
            np.testing.assert_array_equal(updates["a"], -np.ones(2))
        else:
            np.testing.assert_array_equal(updates["a"], np.zeros(2))
    assert outputs == calls // steps


# ---- bad input -----------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda s: ag.accumulate_avg_updates(s),
    lambda s: ag.average_incrementally_updates(0, s),
    lambda s: ag.average_incrementally_updates(None, s),
    lambda s: ag.get_per_element_mean_and_sum_sq_diff_grads(0, s),
    lambda s: ag.add_mean_variance_to_opt(npopt.adam(0.1), accumulation_steps=s),
])
def test_accumulation_steps_must_be_a_positive_int(make):
    for bad in (0, -2):
        with pytest.raises(ValueError, match="accumulation_steps must be larger than or equal"):
            make(bad)
    for bad in (2.5, True, "3", None):
        with pytest.raises(TypeError, match="accumulation_steps: expected an integer"):
            make(bad)


def test_mismatched_batch_sizes():
    grads = {"a": np.zeros((4, 2)), "b": np.zeros((3, 2))}
    with pytest.raises(ValueError, match=r"same batch size. Got: \[4, 3\]"):
        ag.get_batch_size_from_per_elt_updates(grads, 0)
    assert ag.get_batch_size_from_per_elt_updates(grads, 1) == 2
    assert ag.get_batch_size_from_per_elt_updates({"a": np.zeros((2, 3, 5))}, [0, 1]) == 6
    for acc in (1, 3):
        opt = ag.add_mean_variance_to_opt(npopt.adam(0.1), accumulation_steps=acc)
        params = {"a": np.zeros(2), "b": np.zeros(2)}
        state = opt.init(params)
        with pytest.raises(ValueError, match="same batch size"):
            opt.update(grads, state, params)


def test_bad_axes_and_shapes():
    for bad in ("0", 1.0, None, [0, 0], (0, "1")):
        with pytest.raises((TypeError, ValueError), match="per_elt_axis"):
            ag.average_per_element_updates(bad)
    avg = ag.average_per_element_updates(2)
    with pytest.raises(ValueError, match=r"per_elt_axis: axis 2 is out of range .* \(4, 2\)"):
        avg.update({"a": np.zeros((4, 2))}, avg.init(None))
    with pytest.raises(ValueError, match="no elements along per_elt_axis"):
        ag.average_per_element_updates(0).update(np.zeros((0, 3)), ())
    # params-shaped accumulator fed per-element updates
    acc = ag.accumulate_avg_updates(2)
    state = acc.init({"a": np.zeros(2)})
    with pytest.raises(ValueError, match=r"updates: shape \(4, 2\) where the state's avg_grad"):
        acc.update({"a": np.zeros((4, 2))}, state)
    with pytest.raises(ValueError, match="updates has structure"):
        acc.update({"b": np.zeros(2)}, state)
    with pytest.raises(TypeError, match="state: expected a AccumulateAvgUpdatesState"):
        acc.update({"a": np.zeros(2)}, ())
    assert state.micro_step == 0 and not np.any(state.avg_grad["a"])   # left as it was


def test_variance_needs_two_elements_and_an_update():
    opt = ag.add_mean_variance_to_opt(npopt.adam(0.1))
    params = np.zeros(3)
    state = opt.init(params)
    with pytest.raises(ValueError, match="sample_size: expected an integer >= 2"):
        opt.update(np.ones((1, 3)), state, params)
    with pytest.raises(ValueError, match="count 0"):
        ag.get_unbiased_mean_and_variance_ema(state)
    with pytest.raises(ValueError, match="must have PerElementMeanAndVarianceEMAState"):
        ag.get_unbiased_mean_and_variance_ema(npopt.adam(0.1).init(params))
    track = ag.track_per_element_mean_and_variance_with_ema()
    with pytest.raises(TypeError, match="needs the keyword arguments sum_sq_diff_grads"):
        track.update(params, track.init(params))
    for bad in (1.5, -0.1, float("nan"), "0.9"):
        with pytest.raises(ValueError, match="ema_decay"):
            ag.track_per_element_mean_and_variance_with_ema(bad)
    # with 3 microbatches of 1 element the sample has 3 elements
    opt = ag.add_mean_variance_to_opt(npopt.sgd(0.1), accumulation_steps=3)
    state = opt.init(params)
    for j in range(3):
        _, state = opt.update(np.full((1, 3), float(j)), state, params)
    mean, var = ag.get_unbiased_mean_and_variance_ema(state)
    np.testing.assert_allclose(mean, np.ones(3), rtol=1e-15)
    # (k-1) n / k = 2/3 is a float32 number in optax (int32 / int32), mirrored
    np.testing.assert_allclose(var, np.ones(3), rtol=4e-8)
    assert var[0] != 1.0


def test_process_checks_its_arguments():
    with pytest.raises(TypeError, match="aggregator: expected a GradientTransformation"):
        ag.process(npopt.identity(), "mean", npopt.adam(0.1))
    with pytest.raises(TypeError, match="aggregator_has_aux"):
        ag.process(npopt.identity(), ag.average_per_element_updates(), npopt.adam(0.1), 1)
    opt = ag.process(npopt.identity(), ag.average_per_element_updates(), npopt.adam(0.1),
                     aggregator_has_aux=True)
    with pytest.raises(TypeError, match="aggregator_has_aux=True"):
        opt.update(np.ones((2, 3)), opt.init(np.zeros(3)))
    with pytest.raises(TypeError, match="3-tuple"):
        opt.update(np.ones((2, 3)), ())


def test_no_input_is_modified():
    grads = {"a": np.arange(8.0).reshape(4, 2)}
    params = {"a": np.ones(2)}
    before = tree_map(np.copy, (grads, params))
    opt = ag.add_mean_variance_to_opt(npopt.adam(0.1), accumulation_steps=2)
    state = opt.init(params)
    for _ in range(3):
        state_before = tree_map(np.copy, state)
        _, new = opt.update(grads, state, params)
        for x, y in zip(tree_leaves(state), tree_leaves(state_before)):
            assert np.array_equal(x, y)
        state = new
    for x, y in zip(tree_leaves((grads, params)), tree_leaves(before)):
        assert np.array_equal(x, y)
