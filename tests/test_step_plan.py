"""The steady state of ``step`` (``npopt.transforms._plan``): after the first
steps, a plan checks the inputs by identity and runs the same kernels.

* the numbers are those of the whole way, bit for bit, step after step;
* every bad input still gets its error, with nothing written, when a plan
  is in place (the plan steps aside and the whole way raises);
* a plan holds no array alive;
* threads keep their own plans.
"""
import collections
import gc
import threading
import weakref

import numpy as np
import pytest

import npopt
from npopt._flat import ConsumedStateError
from npopt.transforms import _plan
from npopt.tree import tree_leaves, tree_map

PLANNED = {        # the aliases whose steady state has a plan
    "adam": lambda: npopt.adam(0.05),
    "adamw": lambda: npopt.adamw(0.05, weight_decay=0.1),
    "adamw_mask": lambda: npopt.adamw(0.05, weight_decay=0.1,
                                      mask={"w": True, "b": False, "v": [True, False]}),
    "nadam": lambda: npopt.nadam(0.05),
    "adamax": lambda: npopt.adamax(0.05),
    "sgd": lambda: npopt.sgd(0.1),
    "sgd_momentum": lambda: npopt.sgd(0.1, momentum=0.9, nesterov=True),
    "rmsprop": lambda: npopt.rmsprop(0.1),
    "adagrad": lambda: npopt.adagrad(0.1),
    "adam_schedule": lambda: npopt.adam(npopt.schedules.exponential_decay(0.1, 3, 0.5)),
    "nadamw": lambda: npopt.nadamw(0.05),
    "adamaxw": lambda: npopt.adamaxw(0.05),
    "adabelief": lambda: npopt.adabelief(0.05),
    "amsgrad": lambda: npopt.amsgrad(0.05),
    "radam": lambda: npopt.radam(0.05),
    "yogi": lambda: npopt.yogi(0.05),
    "adan": lambda: npopt.adan(0.05),
    "lion": lambda: npopt.lion(0.05),
    "rprop": lambda: npopt.rprop(0.05),
    "sign_sgd": lambda: npopt.sign_sgd(0.05),
    # two passes: the direction into the plan's buffer, then per-leaf trust
    # ratios (lamb) or a second preconditioner after the rate (rmsprop)
    "lamb": lambda: npopt.lamb(0.05, weight_decay=0.01),
    "lamb_mask": lambda: npopt.lamb(0.05, weight_decay=0.1,
                                    mask={"w": True, "b": False, "v": [True, False]}),
    "rmsprop_momentum": lambda: npopt.rmsprop(0.1, momentum=0.9),
    "rmsprop_nesterov": lambda: npopt.rmsprop(0.1, momentum=0.9, nesterov=True, centered=True),
}

Pair = collections.namedtuple("Pair", "x y")


def _tree(kind, dtype=np.float64):
    r = np.random.default_rng(0)
    if kind == "flat":
        return r.standard_normal(50).astype(dtype)
    if kind == "matrix":                       # a bare array of two axes
        return r.standard_normal((6, 5)).astype(dtype)
    if kind == "zero_d":
        return np.array(0.75, dtype)
    if kind == "dict":
        return {"w": r.standard_normal((4, 3)).astype(dtype), "b": np.zeros(3, dtype),
                "v": [r.standard_normal(2).astype(dtype), np.array(0.5, dtype)]}
    if kind == "nested":
        return [Pair(r.standard_normal((2, 2)).astype(dtype), {"a": np.ones(3, dtype)}),
                (r.standard_normal(4).astype(dtype),), None]
    raise ValueError(kind)


def _grads(params, t):
    return tree_map(lambda p: np.asarray(np.cos(np.arange(p.size) + t).reshape(p.shape)
                                         + 0.3 * p, p.dtype), params)


class Hits:
    """Counts the steps a plan took (and those it stepped aside from)."""

    def __init__(self, monkeypatch):
        self.hit = self.miss = 0
        for cls in (_plan.StepPlan, _plan.BarePlan):
            monkeypatch.setattr(cls, "step", self.counted(cls.step))

    def counted(self, step):
        def counted(plan, *a):
            out = step(plan, *a)
            if out is None:
                self.miss += 1
            else:
                self.hit += 1
            return out
        return counted


def _run(opt, params, steps):
    state = opt.init(params)
    for t in range(steps):
        params, state = opt.step(params, _grads(params, t), state)
    return params, state


def _same(a, b):
    la, lb = tree_leaves(a), tree_leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        assert np.asarray(x).dtype == np.asarray(y).dtype
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("kind", ["flat", "matrix", "zero_d", "dict", "nested"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(PLANNED))
def test_planned_steps_are_the_whole_way_bit_for_bit(name, kind, dtype, monkeypatch):
    if name in ("adamw_mask", "lamb_mask") and kind != "dict":
        return
    opt = PLANNED[name]()
    hits = Hits(monkeypatch)
    planned = _run(opt, _tree(kind, dtype), 12)
    assert hits.hit >= 10 and hits.miss == 0
    monkeypatch.setattr(_plan, "make", lambda *a, **k: None)
    whole = _run(PLANNED[name](), _tree(kind, dtype), 12)
    _same(planned, whole)
    # and update + apply_updates, the functional path, agrees
    opt = PLANNED[name]()
    params, state = _tree(kind, dtype), None
    state = opt.init(params)
    for t in range(12):
        u, state = opt.update(_grads(params, t), state, params)
        params = npopt.apply_updates(params, u)
    for x, y in zip(tree_leaves(planned[0]), tree_leaves(params)):
        np.testing.assert_allclose(x, y, rtol=2e-5 if dtype == np.float32 else 1e-12,
                                   atol=1e-6 if dtype == np.float32 else 1e-14)


def _warm(name="adam", kind="dict", dtype=np.float64, monkeypatch=None):
    """An optimizer whose plan is in place for (params, state)."""
    opt = PLANNED[name]()
    params, state = _run(opt, _tree(kind, dtype), 3)
    if monkeypatch is not None:
        hits = Hits(monkeypatch)
        p2, s2 = opt.step(params, _grads(params, 3), state)
        assert hits.hit == 1
        return opt, p2, s2
    return opt, params, state


def _snapshot(*trees):
    return [np.asarray(x).tobytes() for t in trees for x in tree_leaves(t)]


@pytest.mark.parametrize("name", ["adam", "lamb", "rmsprop_momentum"])
def test_bad_inputs_with_a_plan_in_place(name, monkeypatch):
    opt, params, state = _warm(name, monkeypatch=monkeypatch)
    g = _grads(params, 4)
    bad = [
        ({**g, "b": np.ones(4)}, ValueError, r"^grads: leaf 0 has shape \(4,\)"),
        ({k: v for k, v in g.items() if k != "w"}, ValueError, "^grads: expected a tree"),
        ({**g, "w": g["w"].astype(np.complex128)}, TypeError, "^grads: leaf"),
        ({**g, "w": "x"}, TypeError, "^grads: leaf"),
        ({**g, "v": [g["v"][0]]}, ValueError, "^grads: expected a tree"),
    ]
    for grads, exc, match in bad:
        before = _snapshot(params, state)
        with pytest.raises(exc, match=match):
            opt.step(params, grads, state)
        assert _snapshot(params, state) == before
    with pytest.raises((TypeError, ValueError), match="^state"):
        opt.step(params, g, npopt.sgd(0.1, momentum=0.9).init(params))
    with pytest.raises((TypeError, ValueError), match="^state"):
        opt.step(params, g, ())
    with pytest.raises((TypeError, ValueError), match="^state"):
        opt.step(params, g, state[:1])
    assert _snapshot(params, state) == before
    # and the plan is still there for the good inputs
    hits = Hits(monkeypatch)
    opt.step(params, g, state)
    assert hits.hit == 1


@pytest.mark.parametrize("name", ["adam", "lamb", "rmsprop_momentum"])
def test_consumed_state_with_a_plan_in_place(name, monkeypatch):
    opt, params, s1 = _warm(name, monkeypatch=monkeypatch)
    p2, s2 = opt.step(params, _grads(params, 4), s1)
    with pytest.raises(ConsumedStateError):
        opt.step(p2, _grads(params, 5), s1)
    # consumed by another optimizer of the same kind, then given back
    other = PLANNED[name]()
    other.step(p2, _grads(params, 5), s2)
    with pytest.raises(ConsumedStateError):
        opt.step(p2, _grads(params, 5), s2)


def test_read_only_leaves_with_a_plan_in_place(monkeypatch):
    opt, params, state = _warm(monkeypatch=monkeypatch)
    params["b"].flags.writeable = False
    before = _snapshot(params, state)
    with pytest.raises(ValueError, match=r"params: leaf 0 at \['b'\] is read-only"):
        opt.step(params, _grads(params, 4), state)
    assert _snapshot(params, state) == before
    params["b"].flags.writeable = True
    state[0].nu["w"].flags.writeable = False
    with pytest.raises(ValueError, match=r"state\.nu: leaf .* is read-only"):
        opt.step(params, _grads(params, 4), state)
    assert _snapshot(params, state) == before


def test_non_finite_rate_with_a_plan_in_place(monkeypatch):
    opt = npopt.adam(lambda count: np.nan if count == 5 else 0.1)
    params, state = _run(opt, _tree("dict"), 5)
    before = _snapshot(params, state)
    with pytest.raises(ValueError, match="^learning_rate: .*finite number"):
        opt.step(params, _grads(params, 5), state)
    assert _snapshot(params, state) == before


@pytest.mark.parametrize("kind", ["flat", "dict"])
@pytest.mark.parametrize("lr", [0.1, lambda count: 0.1 / (1 + count)], ids=["constant", "schedule"])
def test_rate_state_of_another_kind_with_a_plan_in_place(kind, lr, monkeypatch):
    """The plan makes a constant rate once: its state's type is still
    checked every step (another optimizer's rate state raises, as the whole
    way does, before anything is written)."""
    opt = npopt.adam(lr)
    params, state = _run(opt, _tree(kind), 3)
    other = npopt.adam(0.1 if callable(lr) else (lambda count: 0.1)).init(params)
    bad = state[:-1] + other[-1:]
    assert type(bad[-1]) is not type(state[-1])
    before = _snapshot(params, state)
    with pytest.raises(TypeError, match="^state"):
        opt.step(params, _grads(params, 3), bad)
    assert _snapshot(params, state) == before
    hits = Hits(monkeypatch)
    opt.step(params, _grads(params, 3), state)
    assert hits.hit == 1


@pytest.mark.parametrize("change", ["new leaf", "new container", "float32 grads",
                                    "int grads", "grads are params", "grads are the state",
                                    "other params"])
def test_changed_inputs_give_the_whole_ways_numbers(change, monkeypatch):
    opt, params, state = _warm(kind="flat" if change in ("grads are params",
                                                         "grads are the state") else "dict",
                               monkeypatch=monkeypatch)
    g = _grads(params, 4)
    copy = lambda t: tree_map(lambda x: np.array(x) if isinstance(x, np.ndarray) else x,  # noqa
                              t)
    if change == "new leaf":
        params["w"] = params["w"].copy()
    elif change == "new container":
        params = dict(params)
    elif change == "float32 grads":
        g = tree_map(lambda x: x.astype(np.float32), g)
    elif change == "int grads":
        g = tree_map(lambda x: np.ones(x.shape, np.int64), g)
    elif change == "grads are params":
        g = params
    elif change == "grads are the state":
        g = state[0].mu
    elif change == "other params":
        params = _tree("dict")
        params["w"] += 1
    # the whole way (a new optimizer has no plan) on copies
    expected = PLANNED["adam"]().step(copy(params), copy(g), copy(state))
    hits = Hits(monkeypatch)
    out = opt.step(params, g, state)
    assert hits.hit == (change == "new container")     # the same leaves: planned
    _same(out, expected)


def test_a_plan_holds_no_array_alive():
    opt, params, state = _warm(kind="dict")
    refs = [weakref.ref(x) for x in tree_leaves(params) + tree_leaves(state)
            if isinstance(x, np.ndarray) and x.ndim]
    del params, state
    gc.collect()
    assert all(r() is None for r in refs)
    # a big flat tree's grads buffer is not kept either
    opt, params, state = _warm(kind="flat")
    del params, state
    gc.collect()
    opt.step(np.zeros(3), np.ones(3), opt.init(np.zeros(3)))     # still works


def test_threads_keep_their_own_plans(monkeypatch):
    opt = npopt.adam(0.05)
    out, errors = {}, []

    def train(k):
        try:
            params = tree_map(lambda x: x + k, _tree("dict"))
            state = opt.init(params)
            for t in range(40):
                params, state = opt.step(params, _grads(params, t), state)
            out[k] = params
        except BaseException as e:      # noqa: BLE001
            errors.append(e)
    threads = [threading.Thread(target=train, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for k in range(4):
        params = tree_map(lambda x: x + k, _tree("dict"))
        expected, _ = _run(npopt.adam(0.05), params, 40)
        _same(out[k], expected)


from hypothesis import given, settings, strategies as st  # noqa: E402

_shapes = st.sampled_from([(), (3,), (2, 3), (0,), (1, 1)])


@st.composite
def _random_tree(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    leaves = draw(st.lists(_shapes, min_size=1, max_size=5))
    arrays = [np.linspace(-1, 1, int(np.prod(s))).reshape(s).astype(dtype) + k
              for k, s in enumerate(leaves)]
    form = draw(st.sampled_from(["dict", "list", "nested", "pair"]))
    if form == "dict":
        return {f"k{i}": a for i, a in enumerate(arrays)}
    if form == "list":
        return arrays
    if form == "pair":
        return Pair(arrays[0], arrays[1:])
    return {"a": arrays[:1], "b": (None, {"c": arrays[1:]})}


@settings(max_examples=40, deadline=None)
@given(tree=_random_tree(), name=st.sampled_from([n for n in PLANNED if "mask" not in n]),
       steps=st.integers(1, 6))
def test_hypothesis_planned_equals_whole_way(tree, name, steps):
    copy = lambda t: tree_map(np.array, t)       # noqa: E731
    planned = _run(PLANNED[name](), copy(tree), steps)
    make = _plan.make
    _plan.make = lambda *a, **k: None
    try:
        whole = _run(PLANNED[name](), copy(tree), steps)
    finally:
        _plan.make = make
    _same(planned, whole)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_hyperparameters_in_blocks_are_the_scalar_ones(dtype):
    """adam's bias corrections made BLOCK steps at a time are, bit for bit,
    ``bias_correction_inverse``'s (float64 powers, one rounding, a division
    in the dtype), across block boundaries and for any order of steps."""
    from npopt.transforms.adam import BLOCK, adam_hyperparams, bias_correction_inverse
    d = np.dtype(dtype)
    for b1, b2 in [(0.9, 0.999), (0.5, 0.95), (0.0, 0.0), (0.99, 0.99999)]:
        h = adam_hyperparams(b1, b2, 1e-8, 0.0)
        for t in list(range(1, 3 * BLOCK + 2)) + [10 ** 6, 7, BLOCK, BLOCK + 1, 1]:
            hp = h(d, t)
            assert len(hp) == 10 and all(type(x) is d.type for x in hp)
            assert hp[4:7] == (bias_correction_inverse(b1, t, d),
                               bias_correction_inverse(b1, t + 1, d),
                               bias_correction_inverse(b2, t, d))


def test_grads_that_own_the_params_memory(monkeypatch):
    """Params that are a view of the grads' own array: the plan sees the
    overlap (the grads are the base of the params) and steps aside."""
    owner = np.array(np.linspace(-1, 1, 50))          # owns its memory
    params = owner[:]                  # a view: params.base is owner
    opt = npopt.adam(0.05)
    state = opt.init(params)
    for t in range(3):
        params, state = opt.step(params, _grads(params, t), state)
    assert params.base is owner
    copy = lambda t: tree_map(lambda x: np.array(x) if isinstance(x, np.ndarray) else x,  # noqa
                              t)
    expected = npopt.adam(0.05).step(owner.copy(), owner.copy(), copy(state))
    hits = Hits(monkeypatch)
    out = opt.step(params, owner, state)
    assert hits.hit == 0
    _same(out, expected)


@pytest.mark.parametrize("change", [None, "grads are params", "grads are the state",
                                    "strided grads", "wd"])
def test_large_trees_use_their_grads_in_place(change, monkeypatch):
    """Above GATHER_MAX elements the plan launches the kernel once per leaf
    on the grads leaves themselves: the same bits as the whole way, and the
    same overlap rules."""
    n = _plan.GATHER_MAX
    r = np.random.default_rng(1)
    tree = {"a": r.standard_normal((n // 64, 64)), "b": np.zeros(0), "c": r.standard_normal(7),
            "d": np.array(0.5), "e": r.standard_normal(n // 2)}
    make = (lambda: npopt.adamw(0.05, weight_decay=0.1, mask={"a": True, "b": True, "c": False,
                                                             "d": True, "e": False})) \
        if change == "wd" else (lambda: npopt.adam(0.05))
    copy = lambda t: tree_map(lambda x: np.array(x) if isinstance(x, np.ndarray) else x,  # noqa
                              t)
    opt = make()
    hits = Hits(monkeypatch)
    params, state = _run(opt, copy(tree), 4)
    assert hits.hit == 2
    g = _grads(params, 4)
    if change == "grads are params":
        g = params
    elif change == "grads are the state":
        g = state[0].mu
    elif change == "strided grads":
        g = {**g, "e": np.repeat(g["e"], 2)[::2]}
    expected = make().step(copy(params), copy(g), copy(state))
    hits.hit = 0
    out = opt.step(params, g, state)
    assert hits.hit == (change in (None, "wd"))
    _same(out, expected)
    planned = _run(make(), copy(tree), 5)
    monkeypatch.setattr(_plan, "make", lambda *a, **k: None)
    whole = _run(make(), copy(tree), 5)
    _same(planned, whole)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(PLANNED))
def test_planned_kernel_arguments_keep_their_types(name, dtype, monkeypatch):
    """A plan calls its serial loop's machine code for the types of its
    first call's arguments, without numba's type dispatch
    (``_jit.PlannedCall``): every later call must pass arguments of exactly
    those types (the per-step scalars too, across adam's blocks of 64
    steps), else numba would unbox them as the wrong types."""
    from numba import typeof
    from npopt.kernels import _jit
    seen = collections.defaultdict(set)
    call = _jit.PlannedCall.__call__

    def recorded(self, *args):
        seen[self].add(tuple(typeof(a) for a in args))     # (kept alive: ids unique)
        return call(self, *args)
    monkeypatch.setattr(_jit.PlannedCall, "__call__", recorded)
    for kind in ("flat", "dict") if "mask" not in name else ("dict",):
        opt = PLANNED[name]()
        params = _tree(kind, dtype)
        state = opt.init(params)
        for t in range(70):                  # past adam_hyperparams' first block
            params, state = opt.step(params, _grads(params, t), state)
    assert seen or name == "adamw_mask", "no planned call"   # (a mask: runs, dispatched)
    for types in seen.values():
        assert len(types) == 1, types
