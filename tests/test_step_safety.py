"""The fused ``step`` on unusual inputs: every result is right (the numbers of
``update`` + ``apply_updates``, or optax's) or a clear error naming the
argument, raised before any buffer is touched (SPEC §2, §3, §8).

* scalars (Python, NumPy, 0-d) are params trees that move;
* every precondition of every dtype group is checked before the first
  kernel (read-only leaves, shapes, dtypes, structures, states);
* a state that ``step`` consumed raises when it is used again;
* threads may share one optimizer;
* grads overlapping params (or the state) give the numbers of copies;
* float64 grads for float32 params (and the reverse) promote as optax does,
  on both paths (tests/reference/data/optax/step_safety.npz);
* adafactor refuses a state made for transposed params;
* errors about grads name ``grads`` (``updates`` in ``update``).
"""
import collections
import os
import sys
import threading
import warnings

import numpy as np
import pytest

import npopt
from conftest import rel_err
from npopt._flat import ConsumedStateError
from npopt.tree import tree_leaves, tree_map

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "reference"))
import make_step_safety_reference as REF  # noqa: E402

VALUE = {"value": 1.0}

# every optax alias (the fused ones and the others), as (factory, extra args)
ALIASES = {
    "adabelief": (lambda: npopt.adabelief(0.1), {}),
    "adadelta": (lambda: npopt.adadelta(1.0, weight_decay=0.1), {}),
    "adafactor": (lambda: npopt.adafactor(0.1), {}),
    "adafactor_momentum": (lambda: npopt.adafactor(0.1, momentum=0.9, weight_decay_rate=0.01,
                                                   min_dim_size_to_factor=2), {}),
    "adagrad": (lambda: npopt.adagrad(0.1), {}),
    "adam": (lambda: npopt.adam(0.1), {}),
    "adamw": (lambda: npopt.adamw(0.1, weight_decay=0.1), {}),
    "adamax": (lambda: npopt.adamax(0.1), {}),
    "adamaxw": (lambda: npopt.adamaxw(0.1), {}),
    "adan": (lambda: npopt.adan(0.1), {}),
    "amsgrad": (lambda: npopt.amsgrad(0.1), {}),
    "fromage": (lambda: npopt.fromage(0.1), {}),
    "lamb": (lambda: npopt.lamb(0.1, weight_decay=0.1), {}),
    "lars": (lambda: npopt.lars(0.1), {}),
    "lbfgs": (lambda: npopt.lbfgs(0.1, linesearch=None), {}),
    "lion": (lambda: npopt.lion(0.1), {}),
    "nadam": (lambda: npopt.nadam(0.1), {}),
    "nadamw": (lambda: npopt.nadamw(0.1), {}),
    "noisy_sgd": (lambda: npopt.noisy_sgd(0.1, key=0), {}),
    "novograd": (lambda: npopt.novograd(0.1), {}),
    "optimistic_gradient_descent": (lambda: npopt.optimistic_gradient_descent(0.1), {}),
    "optimistic_adam_v2": (lambda: npopt.optimistic_adam_v2(0.1), {}),
    "polyak_sgd": (lambda: npopt.polyak_sgd(), VALUE),
    "radam": (lambda: npopt.radam(0.1), {}),
    "rmsprop": (lambda: npopt.rmsprop(0.1), {}),
    "rmsprop_momentum": (lambda: npopt.rmsprop(0.1, momentum=0.9), {}),
    "rprop": (lambda: npopt.rprop(0.1), {}),
    "sgd": (lambda: npopt.sgd(0.1), {}),
    "sgd_momentum": (lambda: npopt.sgd(0.1, momentum=0.9, nesterov=True), {}),
    "sign_sgd": (lambda: npopt.sign_sgd(0.1), {}),
    "signum": (lambda: npopt.signum(0.1), {}),
    "sm3": (lambda: npopt.sm3(0.1), {}),
    "yogi": (lambda: npopt.yogi(0.1), {}),
}
FUSED = [k for k, (make, _) in ALIASES.items() if make().fused_step is not None]
NO_SCALARS = {"sm3"}      # per-axis accumulators: leaves need an axis (as optax)


def _make(name):
    make, kw = ALIASES[name]
    return make(), kw


def _snapshot(*trees):
    return [(np.asarray(x).dtype, np.asarray(x).tobytes()) for t in trees
            for x in tree_leaves(t) if hasattr(x, "dtype") or isinstance(x, float)]


def _params():
    """A float32 and a float64 group, two leaves each."""
    return {"a": np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3),
            "b": np.array([0.5, -1.5, 2.0], np.float32),
            "c": np.linspace(1, 2, 4).reshape(2, 2),
            "d": np.array([0.25, -0.75])}


def _grads(params, t=0):
    return tree_map(lambda p: (np.cos(np.arange(p.size) + t).reshape(p.shape) + 0.5 * p)
                    .astype(p.dtype), params)


def _unfused(opt, params, grads, state, kw):
    updates, state = opt.update(grads, state, params, **kw)
    return npopt.apply_updates(params, updates), state


def _assert_close(a, b, tol=None, scale=None):
    """Leaf by leaf within ``tol`` relative to the reference, or to the
    leaves of ``scale`` where larger: params before a step, since ``p -
    lr * u`` may cancel (the fused step rounds once, FMA, where update +
    apply_updates round twice: an ulp of ``p``, not of the result)."""
    la, lb = tree_leaves(a), tree_leaves(b)
    ls = [None] * len(la) if scale is None else tree_leaves(scale)
    assert len(la) == len(lb) == len(ls)
    for x, y, z in zip(la, lb, ls):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape, (x.dtype, y.dtype, x.shape, y.shape)
        if x.dtype.kind != "f":
            np.testing.assert_array_equal(x, y)
            continue
        t = tol if tol is not None else (2e-6 if x.dtype == np.float32 else 1e-13)
        err = rel_err(x, y)
        if z is not None and x.size:
            big = max(float(np.max(np.abs(np.asarray(y, np.float64)))),
                      float(np.max(np.abs(np.asarray(z, np.float64)))), 1e-300)
            err = float(np.max(np.abs(np.asarray(x, np.float64) - y))) / big
        assert err <= t, (err, x, y)


# ---------------------------------------------------------------------------
# 1. scalars
# ---------------------------------------------------------------------------

SCALARS = {
    "python_float": lambda: 1.5,
    "numpy_float64": lambda: np.float64(1.5),
    "numpy_float32": lambda: np.float32(1.5),
    "zero_d": lambda: np.array(1.5),
    "list": lambda: [1.5],
    "dict_of_0d": lambda: {"w": np.array(1.5, np.float32), "v": 2.0},
}


@pytest.mark.parametrize("form", list(SCALARS))
@pytest.mark.parametrize("name", [n for n in ALIASES if n not in NO_SCALARS])
def test_scalar_params_move(name, form):
    opt, kw = _make(name)
    params = SCALARS[form]()
    grads = tree_map(lambda p: 0.5 * np.ones_like(np.asarray(p)) if isinstance(p, np.ndarray)
                     else type(p)(0.5), params)
    ref_p, ref_s = _unfused(opt, SCALARS[form](), grads, opt.init(SCALARS[form]()), kw)
    state = opt.init(params)
    new_p, new_s = opt.step(params, grads, state, **kw)
    _assert_close(new_p, ref_p)
    if name != "rprop":            # rprop's first update is 0 (optax's lag)
        start = [float(x) for x in tree_leaves(SCALARS[form]())]
        assert all(float(x) != s for x, s in zip(tree_leaves(new_p), start))
    for x in tree_leaves(new_p):
        # a Python float comes back as a 0-d float64 array, a NumPy scalar as
        # a 0-d array of its dtype
        assert isinstance(x, np.ndarray) and x.shape == ()
    if form == "numpy_float32":
        assert tree_leaves(new_p)[0].dtype == np.float32
    # the next step moves on from there
    new_p2, _ = opt.step(new_p, grads, new_s, **kw)
    ref_p2, _ = _unfused(opt, ref_p, grads, ref_s, kw)
    _assert_close(new_p2, ref_p2)


def test_sm3_refuses_scalars_clearly():
    with pytest.raises(ValueError, match="params: leaf 0 is a scalar"):
        npopt.sm3(0.1).init(1.5)


def test_optax_solver_moves_a_python_float():
    """jaxopt's examples use ``theta = 1.0``."""
    solver = npopt.OptaxSolver(opt=npopt.adam(0.1), fun=lambda x: (x - 3.0) ** 2, maxiter=300,
                               tol=1e-6, value_and_grad=False,
                               grad=lambda x: 2.0 * (x - 3.0))
    theta, state = solver.run(1.0)
    assert abs(float(theta) - 3.0) < 1e-2, theta


# ---------------------------------------------------------------------------
# 2. every check before any kernel
# ---------------------------------------------------------------------------

def _first_float64_state_leaf(state):
    for x in tree_leaves(state):
        if isinstance(x, np.ndarray) and x.dtype == np.float64 and x.size:
            return x
    return None


def _read_only_cases():
    """(name, what): a read-only float64 params leaf for every rule, a
    read-only float64 state buffer for the rules whose state has one."""
    for name in FUSED:
        yield name, "params"
        opt, _ = _make(name)
        if _first_float64_state_leaf(opt.init(_params())) is not None:
            yield name, "state"


@pytest.mark.parametrize("name,what", list(_read_only_cases()))
def test_read_only_leaf_leaves_everything_untouched(name, what, tmp_path):
    opt, kw = _make(name)
    params = _params()
    state = opt.init(params)
    grads = _grads(params)
    if what == "params":        # a float64 leaf memory-mapped read-only
        path = tmp_path / "d.npy"
        np.save(path, params["d"])
        params["d"] = np.load(path, mmap_mode="r")
        match = r"params: leaf 3 at \['d'\] is read-only"
    else:
        leaf = _first_float64_state_leaf(state)
        leaf.setflags(write=False)
        match = r"state\.\w+: leaf \d.* is read-only"
    before = _snapshot(params, state)
    with pytest.raises(ValueError, match=match):
        opt.step(params, grads, state, **kw)
    assert _snapshot(params, state) == before
    # the float32 group was not touched, and update still works (functional)
    new_p, _ = _unfused(opt, params, grads, state, kw)
    assert _snapshot(params, state) == before
    assert not np.array_equal(new_p["b"], params["b"]) or name == "rprop"


@pytest.mark.parametrize("name", FUSED)
def test_bad_inputs_leave_everything_untouched(name):
    opt, kw = _make(name)
    params = _params()
    state = opt.init(params)
    grads = _grads(params)
    bad_grads = [
        ({**grads, "d": np.ones(4)}, ValueError, r"^grads: leaf 3 has shape \(4,\), expected"),
        ({k: v for k, v in grads.items() if k != "a"}, ValueError,
         "^grads: expected a tree with the structure of the params"),
        ({**grads, "c": grads["c"].astype(np.complex128)}, TypeError, r"^grads: leaf 2"),
        ({**grads, "c": "x"}, TypeError, r"^grads: leaf 2"),
        ([grads[k] for k in sorted(grads)], ValueError, "^grads: expected a tree"),
    ]
    for g, exc, match in bad_grads:
        before = _snapshot(params, state)
        with pytest.raises(exc, match=match):
            opt.step(params, g, state, **kw)
        assert _snapshot(params, state) == before
    other = npopt.sgd(0.1, momentum=0.9).init(params) if name != "sgd_momentum" else \
        npopt.adam(0.1).init(params)
    before = _snapshot(params, state)
    with pytest.raises((TypeError, ValueError), match="^state"):
        opt.step(params, grads, other, **kw)
    with pytest.raises((TypeError, ValueError), match="^state"):
        opt.step(params, grads, (), **kw)
    assert _snapshot(params, state) == before
    # a state made for other shapes (where the state has shapes)
    small = opt.init({"a": np.ones((2, 2), np.float32), "b": params["b"], "c": params["c"],
                      "d": params["d"]})
    if any(np.ndim(x) and np.asarray(x).dtype.kind == "f" for x in tree_leaves(small)):
        with pytest.raises(ValueError, match="^state"):
            opt.step(params, grads, small, **kw)
        assert _snapshot(params, state) == before
    # after all that, the state is still usable
    opt.step(params, grads, state, **kw)


def test_non_finite_schedule_value_raises_before_anything():
    opt = npopt.adam(lambda count: np.nan if count == 1 else 0.1)
    params = _params()
    state = opt.init(params)
    params, state = opt.step(params, _grads(params), state)
    before = _snapshot(params, state)
    with pytest.raises(ValueError, match="^learning_rate: .*finite number"):
        opt.step(params, _grads(params), state)
    assert _snapshot(params, state) == before


# ---------------------------------------------------------------------------
# 3. consumed states
# ---------------------------------------------------------------------------

def _has_buffers(state):
    return any(np.ndim(x) and np.asarray(x).dtype.kind == "f" for x in tree_leaves(state))


@pytest.mark.parametrize("name", FUSED)
def test_consumed_state_raises(name):
    opt, kw = _make(name)
    params = _params()
    grads = _grads(params)
    s0 = opt.init(params)
    if not _has_buffers(s0):
        # nothing is updated in place (sgd, noisy_sgd's key is replaced): reusing
        # such a state gives the same numbers again
        p1, _ = opt.step(_params(), grads, s0, **kw)
        p2, _ = opt.step(_params(), grads, s0, **kw)
        _assert_close(p1, p2, tol=0)
        return
    ref_p, ref_s = _unfused(opt, params, grads, s0, kw)      # update does not consume
    p1, s1 = opt.step(params, grads, s0, **kw)
    _assert_close(p1, ref_p)
    _assert_close(s1, ref_s)
    for again in (lambda: opt.step(p1, grads, s0, **kw),
                  lambda: opt.update(grads, s0, p1, **kw)):
        with pytest.raises(ConsumedStateError, match="consumed by an earlier step"):
            again()
    # update leaves s1 usable; the state step returned steps on
    u, _ = opt.update(grads, s1, p1, **kw)
    ref_p2, ref_s2 = npopt.apply_updates(p1, u), None
    p2, s2 = opt.step(p1, grads, s1, **kw)
    _assert_close(p2, ref_p2)
    with pytest.raises(ConsumedStateError):
        opt.step(p2, grads, s1, **kw)
    # the result of a step that is dropped at once consumes its input too
    s = opt.init(params)
    opt.step(_params(), grads, s, **kw)
    with pytest.raises(ConsumedStateError):
        opt.step(_params(), grads, s, **kw)
    # a state from update steps, once
    _, su = opt.update(grads, opt.init(params), params, **kw)
    opt.step(_params(), grads, su, **kw)
    with pytest.raises(ConsumedStateError):
        opt.step(_params(), grads, su, **kw)


def test_failed_step_does_not_consume():
    opt = npopt.adam(0.1)
    params = _params()
    state = opt.init(params)
    with pytest.raises(ValueError):
        opt.step(params, {**_grads(params), "d": np.ones(5)}, state)
    opt.step(params, _grads(params), state)      # still usable


def test_consumed_state_inside_wrappers():
    for opt in (npopt.apply_if_finite(npopt.adam(0.1), 2),
                npopt.inject_hyperparams(npopt.adam)(learning_rate=0.1)):
        params = _params()
        s0 = opt.init(params)
        opt.step(params, _grads(params), s0)
        with pytest.raises(ConsumedStateError):
            opt.step(params, _grads(params), s0)


# ---------------------------------------------------------------------------
# 4. threads
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["lamb", "adafactor", "adafactor_momentum",
                                  "rmsprop_momentum", "adam"])
def test_threads_share_one_optimizer(name):
    opt, kw = _make(name)
    n, steps = 60000, 12              # serial kernels (below the parallel threshold)
    rng = np.random.default_rng(0)
    starts = [{"w": rng.standard_normal((200, n // 200)).astype(np.float32)}
              for _ in range(2)]
    gs = [[{"w": rng.standard_normal((200, n // 200)).astype(np.float32)}
           for _ in range(steps)] for _ in range(2)]

    def run(k, barrier=None):
        p = tree_map(np.copy, starts[k])
        s = opt.init(p)
        for t in range(steps):
            if barrier is not None:
                barrier.wait()
            p, s = opt.step(p, gs[k][t], s, **kw)
        return p

    expected = [run(0), run(1)]
    for _ in range(3):
        out = [None, None]
        barrier = threading.Barrier(2)

        def worker(k):
            out[k] = run(k, barrier)
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        for k in range(2):
            np.testing.assert_array_equal(out[k]["w"], expected[k]["w"])


# ---------------------------------------------------------------------------
# 5. overlapping memory
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", FUSED)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grads_overlapping_params_give_the_numbers_of_copies(name, dtype):
    opt, kw = _make(name)
    for shift in (1, -1):
        buf = np.linspace(-1, 1, 41).astype(dtype)
        params, grads = (buf[:-1], buf[1:]) if shift == 1 else (buf[1:], buf[:-1])
        expected_p, expected_s = opt.step(params.copy(), grads.copy(), opt.init(params), **kw)
        state = opt.init(params)
        new_p, new_s = opt.step(params, grads, state, **kw)
        _assert_close(new_p, expected_p, tol=0)
        _assert_close(new_s, expected_s, tol=0)


@pytest.mark.parametrize("name", FUSED)
def test_grads_that_are_the_params(name):
    opt, kw = _make(name)
    params = np.linspace(-1, 1, 8)
    expected, _ = opt.step(params.copy(), params.copy(), opt.init(params), **kw)
    new_p, _ = opt.step(params, params, opt.init(params), **kw)
    _assert_close(new_p, expected, tol=0)


def test_state_overlapping_params():
    opt = npopt.adam(0.1)
    params = np.linspace(-1, 1, 8)
    grads = np.cos(params)
    s = opt.init(params)
    expected_p, expected_s = opt.step(params.copy(), grads, s[0]._replace(mu=params.copy())
                                      and (s[0]._replace(mu=params.copy()), s[1]))
    state = (opt.init(params)[0]._replace(mu=params), s[1])
    new_p, new_s = opt.step(params, grads, state)
    _assert_close(new_p, expected_p, tol=0)
    _assert_close(new_s, expected_s, tol=0)
    # two state buffers in one memory cannot both be updated in place
    m = np.zeros(8)
    before = params.copy()
    with pytest.raises(ValueError, match="state.mu and state.nu share memory"):
        opt.step(params, grads, (s[0]._replace(mu=m, nu=m), s[1]))
    np.testing.assert_array_equal(params, before)


# ---------------------------------------------------------------------------
# 6. dtypes: optax's promotion, on both paths
# ---------------------------------------------------------------------------

_REF = np.load(REF.OUT)


@pytest.mark.parametrize("path", ["update", "step"])
@pytest.mark.parametrize("pair", list(REF.PAIRS))
@pytest.mark.parametrize("case", list(REF.CASES))
def test_mixed_dtypes_match_optax(case, pair, path):
    pdt, gdt = REF.PAIRS[pair]
    key = f"{case}/{pair}"
    opt = eval(REF.CASES[case], {"ox": npopt})
    params = REF.params0(pdt)
    state = opt.init(params)
    traj = [REF.ravel(params)]
    for t in range(REF.STEPS):
        g = REF.grads(params, t, gdt)
        if path == "update":
            u, state = opt.update(g, state, params)
            params = npopt.apply_updates(params, u)
        else:
            params, state = opt.step(params, g, state)
        traj.append(REF.ravel(params))
        assert params["a"].dtype == np.dtype(pdt)
    ref = _REF[f"{key}/params"]
    for t in range(REF.STEPS + 1):
        assert rel_err(traj[t], ref[t]) <= 1e-5, (t, rel_err(traj[t], ref[t]))
    leaves = [np.asarray(x) for x in tree_leaves(state)]
    assert ",".join(str(x.dtype) for x in leaves) == str(_REF[f"{key}/state_dtypes"])
    for i, x in enumerate(leaves):
        assert rel_err(x, _REF[f"{key}/state_{i}"]) <= 1e-5, i


@pytest.mark.parametrize("name", ["adam", "sgd", "sgd_momentum", "rmsprop", "lamb", "adamw"])
def test_integer_grads_take_the_params_dtype(name):
    opt, kw = _make(name)
    params = {"w": np.linspace(-1, 1, 6, dtype=np.float32)}
    grads = {"w": np.arange(6, dtype=np.int64) - 2}
    expected, _ = opt.step(tree_map(np.copy, params), {"w": grads["w"].astype(np.float32)},
                           opt.init(params), **kw)
    got, state = opt.step(params, grads, opt.init(params), **kw)
    _assert_close(got, expected, tol=0)
    with pytest.raises(TypeError, match="^updates.*integer and complex updates"):
        opt.update(grads, state, params)


@pytest.mark.parametrize("name", FUSED)
def test_mixed_dtypes_are_promoted_or_refused_clearly(name):
    """float64 grads of float32 params: optax promotes. Where npopt's update
    does not, step and update say so (naming the grads); nothing is touched."""
    opt, kw = _make(name)
    params = {"w": np.linspace(-1, 1, 6, dtype=np.float32)}
    grads = {"w": np.cos(np.arange(6.0))}
    state = opt.init(params)
    before = _snapshot(params, state)
    try:
        ref_p, _ = _unfused(opt, params, grads, state, kw)
    except TypeError as e:
        assert "updates" in str(e) or "grads" in str(e), e
        with pytest.raises(TypeError, match="^grads: leaf 0.*float64"):
            opt.step(params, grads, state, **kw)
        assert _snapshot(params, state) == before
        return
    assert _snapshot(params, state) == before
    new_p, new_s = opt.step(params, grads, state, **kw)
    assert new_p["w"].dtype == np.float32
    _assert_close(new_p, ref_p, tol=0)


# ---------------------------------------------------------------------------
# 7. adafactor: a state for transposed params
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["update", "step"])
def test_adafactor_refuses_a_state_for_transposed_params(path):
    opt = npopt.adafactor(0.1, min_dim_size_to_factor=2)
    state = opt.init({"w": np.ones((4, 3))})
    params = {"w": np.ones((3, 4))}
    grads = {"w": np.full((3, 4), 0.5)}
    before = _snapshot(params, state)
    with pytest.raises(ValueError, match=r"^state: this FactoredState was made for params of "
                                         r"shapes \[\(4, 3\)\]"):
        if path == "update":
            opt.update(grads, state, params)
        else:
            opt.step(params, grads, state)
    assert _snapshot(params, state) == before
    # its own state still works, through steps and updates
    state = opt.init(params)
    _, s1 = opt.update(grads, state, params)
    params, s2 = opt.step(params, grads, s1)
    opt.step(params, grads, s2)


# ---------------------------------------------------------------------------
# 8. errors about grads name grads
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["adam", "sgd_momentum", "lamb", "adafactor", "adamw"])
def test_errors_about_grads_name_grads(name):
    opt, kw = _make(name)
    params = {"w": np.ones((4, 3), np.float32), "b": np.ones(3, np.float32)}
    state = opt.init(params)
    wrong_shape = {"w": np.ones((3, 4), np.float32), "b": np.ones(3, np.float32)}
    wrong_tree = [np.ones((4, 3), np.float32)]
    for g in (wrong_shape, wrong_tree):
        with pytest.raises(ValueError, match="^grads: "):
            opt.step(params, g, state, **kw)
        with pytest.raises(ValueError, match="^updates: "):
            opt.update(g, state, params, **kw)
    # without params, update can only say that updates and state disagree
    if name in ("adam", "sgd_momentum"):
        with pytest.raises(ValueError, match="updates"):
            opt.update(wrong_tree, state)


# ---------------------------------------------------------------------------
# 9. unusual trees
# ---------------------------------------------------------------------------

Pair = collections.namedtuple("Pair", "x y")

TREES = {
    "empty_dict": lambda: {},
    "empty_leaf": lambda: {"a": np.zeros(0, np.float32), "b": np.ones(3, np.float32)},
    "only_empty_leaf": lambda: np.zeros((0, 3)),
    "none_leaf": lambda: {"a": None, "b": np.ones(3), "c": [None, np.ones(2)]},
    "fortran": lambda: np.asfortranarray(np.arange(12.0).reshape(3, 4) / 7),
    "strided": lambda: np.arange(20.0)[::2] / 3,
    "tuple_list_namedtuple": lambda: (np.ones(2), [np.full(3, 2.0)],
                                      Pair(np.float32(1.0), np.ones((2, 1), np.float32))),
    "mixed_groups_views": lambda: {"a": np.arange(6.0).reshape(2, 3)[:, 1],
                                   "b": np.ones(4, np.float32)},
}


def _grads_like(tree):
    return tree_map(lambda p: np.cos(np.asarray(p, np.float64) + 1).astype(np.asarray(p).dtype)
                    if np.asarray(p).size else np.zeros_like(np.asarray(p)), tree)


@pytest.mark.parametrize("tree", list(TREES))
@pytest.mark.parametrize("name", [n for n in FUSED if n not in NO_SCALARS])
def test_unusual_trees_step_like_update(name, tree):
    opt, kw = _make(name)
    params = TREES[tree]()
    grads = _grads_like(params)
    ref_p, ref_s = _unfused(opt, TREES[tree](), grads, opt.init(params), kw)
    state = opt.init(params)
    new_p, new_s = opt.step(params, grads, state, **kw)
    _assert_close(new_p, ref_p)
    _assert_close(new_s, ref_s)
    p2, _ = opt.step(new_p, _grads_like(new_p), new_s, **kw)
    r2, _ = _unfused(opt, ref_p, _grads_like(ref_p), ref_s, kw)
    _assert_close(p2, r2)


# hypothesis: random trees (containers, None, scalars, empty and 0-d leaves,
# C / Fortran / strided layouts, both dtypes), random fused aliases, random
# overlaps of grads with params: step gives update + apply_updates's numbers

from hypothesis import given, strategies as st  # noqa: E402


@st.composite
def _leaf(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    kind = draw(st.sampled_from(["array", "0d", "python", "numpy_scalar", "fortran",
                                 "strided", "empty"]))
    if kind == "python":
        return draw(st.floats(-2, 2, allow_nan=False).filter(lambda v: abs(v) > 1e-3))
    if kind == "numpy_scalar":
        return dtype(draw(st.floats(-2, 2, allow_nan=False)))
    if kind == "0d":
        return np.array(draw(st.floats(-2, 2, allow_nan=False)), dtype)
    if kind == "empty":
        return np.zeros((0,) + draw(st.sampled_from([(), (3,)])), dtype)
    shape = draw(st.sampled_from([(3,), (2, 3), (4, 1), (2, 2, 2)]))
    x = np.linspace(-1.5, 1.3, int(np.prod(shape))).reshape(shape).astype(dtype)
    if kind == "fortran":
        return np.asfortranarray(x)
    if kind == "strided":
        return np.repeat(x, 2, axis=-1)[..., ::2]
    return x


_trees = st.recursive(
    _leaf(),
    lambda kids: st.one_of(
        st.dictionaries(st.sampled_from("abcd"), kids, max_size=3),
        st.lists(kids, max_size=3),
        st.lists(kids, max_size=2).map(tuple),
        st.tuples(kids, kids).map(lambda t: Pair(*t)),
        st.just(None)),
    max_leaves=5)


@given(tree=_trees, name=st.sampled_from([n for n in FUSED if n not in NO_SCALARS]),
       overlap=st.booleans())
def test_hypothesis_step_equals_update(tree, name, overlap):
    opt, kw = _make(name)
    params = tree
    leaves = tree_leaves(params)
    if not leaves:
        new_p, _ = opt.step(params, params, opt.init(params), **kw)
        assert tree_leaves(new_p) == []
        return
    grads = _grads_like(params)
    if overlap:      # grads that are the params themselves
        grads = tree_map(lambda p: p if isinstance(p, np.ndarray) else 0.5 * p, params)
    copy = lambda t: tree_map(lambda x: np.array(x, copy=True) if isinstance(x, np.ndarray)
                              else x, t)
    before = copy(params)
    ref_p, ref_s = _unfused(opt, copy(params), copy(grads), opt.init(params), kw)
    new_p, new_s = opt.step(params, grads, opt.init(params), **kw)
    _assert_close(new_p, ref_p, scale=before)
    _assert_close(new_s, ref_s)


def test_views_found_at_their_offsets_are_remembered_not_trusted():
    """``_flat.views_base`` remembers the views it found at their offsets
    (reading an address is slow); a view of the same buffer elsewhere, in
    their place, is still refused."""
    from npopt import _flat
    lay, _ = _flat.layout_of({"a": np.zeros(3), "b": np.zeros((2, 1))})
    g = lay.groups[0]
    buf = np.arange(5.0)
    t = lay.views([buf])

    def found(a, b):
        return _flat.views_base([a, b], g.offsets, 5, np.dtype(np.float64), False)
    for _ in range(2):                    # found, then remembered
        assert found(t["a"], t["b"]) is buf
    assert found(buf[1:4], t["b"]) is None                 # the wrong place
    assert found(t["a"], buf[2:4].reshape(2, 1)) is None
    assert found(t["a"].view(), t["b"]) is buf              # a new view, same place
    assert found(buf[1:4], t["b"]) is None
    # through step: params whose leaf views the right buffer at the wrong place
    params = {"a": np.zeros(3), "b": np.zeros((2, 1))}
    opt = npopt.sgd(0.5)
    state = opt.init(params)
    for _ in range(2):
        params, state = opt.step(params, {"a": np.ones(3), "b": np.ones((2, 1))}, state)
    base = params["a"].base
    moved = {"a": base[1:4], "b": params["b"]}
    expected = {"a": base[1:4] - 0.5, "b": params["b"] - 0.5}
    out, _ = opt.step(moved, {"a": np.ones(3), "b": np.ones((2, 1))}, state)
    np.testing.assert_array_equal(out["a"], expected["a"])
    np.testing.assert_array_equal(out["b"], expected["b"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_apply_updates_on_the_last_layout_is_the_general_way(dtype):
    """``apply_updates`` of host trees of the last layout takes a short
    path (``_flat.same_layout_leaves``): same numbers, types and dtypes as
    the general one, new arrays, inputs untouched; anything else (a leaf of
    another dtype or shape, a None) goes the general way."""
    from npopt import _flat
    rng = np.random.default_rng(1)
    params = {"w": rng.standard_normal((3, 2)).astype(dtype), "s": np.array(0.5, dtype),
              "v": [rng.standard_normal(4).astype(dtype)]}
    opt = npopt.adam(0.1)
    updates, _ = opt.update(params, opt.init(params), params)   # the layout is now recent
    assert _flat.same_layout_leaves(params, updates) is not None
    before = [x.copy() for x in npopt.tree.tree_leaves(params)]
    out = npopt.apply_updates(params, updates)
    for p, u, o, b in zip(npopt.tree.tree_leaves(params), npopt.tree.tree_leaves(updates),
                          npopt.tree.tree_leaves(out), before):
        assert type(o) is np.ndarray and o.dtype == p.dtype and o.shape == p.shape
        assert not np.shares_memory(o, p) and not np.shares_memory(o, u)
        np.testing.assert_array_equal(o, np.asarray(b + u).astype(p.dtype))
        np.testing.assert_array_equal(p, b)
    # another dtype in the updates: promoted then rounded, as optax
    wide = npopt.tree.tree_map(lambda u: u.astype(np.float64) / 3, updates)
    assert dtype is np.float64 or _flat.same_layout_leaves(params, wide) is None
    got = npopt.apply_updates(params, wide)
    np.testing.assert_array_equal(got["w"], (params["w"] + wide["w"]).astype(dtype))
    with pytest.raises(ValueError, match="^updates: shape"):
        npopt.apply_updates(params, {**updates, "w": np.ones((2, 3), dtype)})
