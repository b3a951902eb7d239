"""adafactor and its blocks: scale_by_factored_rms, scale_by_param_block_norm/rms.

The optax trajectories themselves are replayed by test_alias_reference.py
(cases_adafactor.py). Here:

* the decay rate against XLA's float32 values, bit for bit;
* which leaves are factored, and the state's shapes, for 0-d to 3-D leaves
  (optax's rules, shapes checked against optax 0.2.8 once by hand);
* the factored update against a NumPy transcription of optax's code, on
  N-D leaves (d0 before and after d1, a tie, a stack of matrices);
* the fused ``step`` against ``update`` + ``apply_updates``;
* the CUDA kernels against the CPU kernels (numba's simulator by default);
* bad input: clear errors, nothing modified.
"""
import numpy as np
import pytest

import npopt
from conftest import rel_err
from npopt.transforms.factored import _decay_rate_pow, _factored_dims
from npopt.tree import tree_leaves, tree_map

SHAPES = {"a": (5,), "c": (3, 140, 130), "d": (), "e": (150, 130), "f": (129, 3),
          "t": (128, 128), "w": (130, 140), "z": (0, 140)}
MASK = {"a": False, "c": True, "d": False, "e": True, "f": True, "t": False, "w": True,
        "z": True}


def _problem(dtype, shapes=SHAPES, steps=4, seed=0):
    rng = np.random.default_rng(seed)
    params = {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}
    grads = [{k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}
             for _ in range(steps)]
    return params, grads


def _copy(tree):
    return tree_map(lambda x: np.array(x, copy=True), tree)


# ---------------------------------------------------------------------------
# decay rate and factoring rules
# ---------------------------------------------------------------------------

# optax's _decay_rate_pow(i, 0.8) under jax.jit (XLA CPU), as float32 bits.
# NumPy's np.power(np.float32(i + 1), np.float32(-0.8)) is one ulp off at
# every count listed after 1; XLA's power is the C library's powf.
XLA_DECAY_BITS = {0: 0x0, 1: 0x3ed9eee8, 3: 0x3f2b8d2f, 25: 0x3f6d1bd5, 26: 0x3f6dabaa,
                  106: 0x3f79e88c, 141: 0x3f7b247d, 379: 0x3f7dca37, 381: 0x3f7dcc96,
                  682: 0x3f7e9e0d, 1821: 0x3f7f5e8c}


def test_decay_rate_is_xla_float32():
    for i, bits in XLA_DECAY_BITS.items():
        b = _decay_rate_pow(np.int32(i))
        assert b.dtype == np.float32
        assert int(np.float32(b).view(np.uint32)) == bits, i
    # another exponent (0.5): counts 2, 7, 99
    got = [int(_decay_rate_pow(np.int32(i), 0.5).view(np.uint32)) for i in (2, 7, 99)]
    assert got == [0x3ed8658c, 0x3f257d86, 0x3f666666]


def test_factored_dims_follow_optax():
    assert _factored_dims((128, 160), True, 128) == (0, 1)
    assert _factored_dims((160, 128), True, 128) == (1, 0)
    assert _factored_dims((3, 140, 130), True, 128) == (2, 1)
    assert _factored_dims((127, 160), True, 128) is None    # second dim too small
    assert _factored_dims((128, 160), False, 128) is None   # factored=False
    assert _factored_dims((1000,), True, 128) is None       # 1-D
    assert _factored_dims((), True, 0) is None              # 0-d
    assert _factored_dims((128, 128), True, 128) == (0, 1)  # tie: argsort order


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_state_shapes(dtype):
    params, _ = _problem(dtype)
    s = npopt.scale_by_factored_rms().init(params)
    assert isinstance(s, npopt.FactoredState) and s.count == 0 and s.count.dtype == np.int32
    # (v_row, v_col, v) shapes as optax 0.2.8 makes them (checked by hand)
    want = {"a": ((1,), (1,), (5,)),
            "c": ((3, 130), (3, 140), (1,)),       # d1 = 2 (130), d0 = 1 (140)
            "d": ((1,), (1,), ()),
            "e": ((130,), (150,), (1,)),           # d0 = 0 comes first
            "f": ((1,), (1,), (129, 3)),
            "t": ((128,), (128,), (1,)),
            "w": ((130,), (140,), (1,)),
            "z": ((1,), (1,), (0, 140))}
    for k, (r, c, v) in want.items():
        assert (s.v_row[k].shape, s.v_col[k].shape, s.v[k].shape) == (r, c, v), k
        for x in (s.v_row[k], s.v_col[k], s.v[k]):
            assert x.dtype == dtype and not np.any(x)
    s = npopt.scale_by_factored_rms(factored=False).init(params)
    assert all(s.v[k].shape == params[k].shape and s.v_row[k].shape == (1,) for k in params)
    # the full adafactor state: (FactoredState, clip, lr, param scale, ema, wd, scale)
    st = npopt.adafactor(1e-2, momentum=0.9, weight_decay_rate=1e-3).init(params)
    assert [type(x).__name__ for x in st] == [
        "FactoredState", "EmptyState", "EmptyState", "EmptyState", "EmaState", "EmptyState",
        "EmptyState"]
    assert all(x.dtype == np.float32 for x in tree_leaves(st[4].ema))   # dtype_momentum


# ---------------------------------------------------------------------------
# numbers: a NumPy transcription of optax's scale_by_factored_rms
# ---------------------------------------------------------------------------

def naive_factored_rms(g, v_row, v_col, v, count, eps=1e-30, decay_rate=0.8,
                       min_dim=128, factored=True):
    """One leaf, optax's factorized.py line by line with np for jnp."""
    beta = _decay_rate_pow(np.int32(count), decay_rate)
    c = np.float32(1) - beta
    dt = g.dtype.type
    dims = _factored_dims(g.shape, factored, min_dim)
    if dims is not None:
        d1, d0 = dims
        gs = g * g + dt(eps)
        v_row = (beta * v_row + c * np.mean(gs, axis=d0)).astype(g.dtype)
        v_col = (beta * v_col + c * np.mean(gs, axis=d1)).astype(g.dtype)
        reduced_d1 = d1 - 1 if d1 > d0 else d1
        rcm = np.mean(v_row, axis=reduced_d1, keepdims=True)
        row_factor = (v_row / rcm) ** dt(-0.5)
        col_factor = v_col ** dt(-0.5)
        u = g * np.expand_dims(row_factor, d0) * np.expand_dims(col_factor, d1)
        return u, v_row, v_col, v
    v = (beta * v + c * (g * g + dt(eps))).astype(g.dtype)
    return g * v ** dt(-0.5), v_row, v_col, v


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_factored_rms_matches_naive(dtype):
    params, grads = _problem(dtype)
    tx = npopt.scale_by_factored_rms(epsilon=1e-8)
    state = tx.init(params)
    ref = {k: (None, np.zeros(state.v_row[k].shape, dtype), np.zeros(state.v_col[k].shape, dtype),
               np.zeros(state.v[k].shape, dtype)) for k in params}
    tol = 1e-13 if dtype == np.float64 else 2e-6
    for t, g in enumerate(grads):
        u, state = tx.update(g, state, params)
        for k in params:
            ref[k] = naive_factored_rms(g[k], *ref[k][1:], t, eps=1e-8)
            assert u[k].dtype == dtype
            assert rel_err(u[k], ref[k][0]) <= tol, (k, t, rel_err(u[k], ref[k][0]))
            for got, want in zip((state.v_row[k], state.v_col[k], state.v[k]), ref[k][1:]):
                assert rel_err(got, want) <= tol, (k, t)
    assert state.count == len(grads)


@pytest.mark.parametrize("rms", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_param_block_scaling(dtype, rms):
    params, grads = _problem(dtype)
    params["a"] = np.zeros(5, dtype)                # norm 0 <= min_scale: min_scale
    params["d"] = np.asarray(-2.5, dtype)           # 0-d leaf
    tx = npopt.scale_by_param_block_rms(0.01) if rms else npopt.scale_by_param_block_norm(0.01)
    u, s = tx.update(grads[0], tx.init(params), params)
    assert s == npopt.EmptyState()
    for k, p in params.items():
        if not p.size:
            continue
        n = np.sqrt(np.mean(p.astype(np.float64) ** 2)) if rms else np.linalg.norm(p.ravel())
        n = 0.01 if n <= 0.01 else n
        assert u[k].dtype == dtype and u[k].shape == p.shape
        assert rel_err(u[k], grads[0][k] * n) <= (1e-14 if dtype == np.float64 else 1e-6), k


def test_lr_none_is_descent():
    # optax's default learning_rate=None still ends with scale(-1)
    opt = npopt.adafactor()
    p = {"w": np.ones((2, 3))}
    u, _ = opt.update({"w": np.full((2, 3), 0.5)}, opt.init(p), p)
    np.testing.assert_array_equal(u["w"], -np.ones((2, 3)))    # rms(p) = 1, |u| = 1


def test_positive_offset_on_a_fresh_state_is_nan():
    # as optax: t = count - offset + 1 <= 0 -> (t)**-0.8 is NaN
    opt = npopt.adafactor(1e-2, decay_offset=5)
    p = {"w": np.ones(3)}
    u, _ = opt.update({"w": np.ones(3)}, opt.init(p), p)
    assert np.all(np.isnan(u["w"]))


# ---------------------------------------------------------------------------
# the fused step
# ---------------------------------------------------------------------------

CONFIGS = {
    "default": lambda: npopt.adafactor(1e-2),
    "nolr": lambda: npopt.adafactor(),
    "unfactored": lambda: npopt.adafactor(3e-2, factored=False, eps=1e-3),
    "momentum_wd_mask": lambda: npopt.adafactor(1e-2, momentum=0.9, weight_decay_rate=1e-3,
                                                weight_decay_mask=MASK),
    "momentum64": lambda: npopt.adafactor(1e-2, momentum=0.5, dtype_momentum=np.float64),
    "sched": lambda: npopt.adafactor(lambda c: 0.03 / (1 + c), clipping_threshold=None,
                                     multiply_by_parameter_scale=False,
                                     weight_decay_rate=lambda c: 1e-3 / (1 + c),
                                     weight_decay_mask=lambda p: {k: k != "a" for k in p}),
    "offset": lambda: npopt.adafactor(1e-2, decay_rate=0.5, decay_offset=-10,
                                      min_dim_size_to_factor=3),
    "factored_chain": lambda: npopt.chain(
        npopt.scale_by_factored_rms(), npopt.add_decayed_weights(1e-2, MASK),
        npopt.scale_by_learning_rate(1e-2)),
}


def _run(opt, params, grads, path):
    state = opt.init(params)
    for g in grads:
        if path == "update":
            u, state = opt.update(g, state, params)
            params = npopt.apply_updates(params, u)
        else:
            params, state = opt.step(params, g, state)
    return params, state


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_step_matches_update(config, dtype):
    params, grads = _problem(dtype)
    opt = CONFIGS[config]()
    if config != "factored_chain":
        assert opt.fused_step is not None
    pu, su = _run(opt, _copy(params), grads, "update")
    ps, ss = _run(opt, _copy(params), grads, "step")
    # adafactor: bit for bit, except with momentum in float32: the fused
    # kernel computes the momentum from a product still in a register, and
    # LLVM contracts the EMA's other product into the FMA than ema's own
    # kernel does (1 ulp). The generic fused finish of a chain contracts
    # p + (-lr) * u into one FMA (one rounding fewer than update + apply).
    tol = 0.0
    if "momentum" in config or config == "factored_chain":
        tol = 1e-6 if dtype == np.float32 else 1e-15
    for a, b in zip(tree_leaves(pu), tree_leaves(ps)):
        assert a.dtype == b.dtype == dtype
        assert rel_err(b, a) <= tol
    la, lb = tree_leaves(su), tree_leaves(ss)
    assert len(la) == len(lb)
    for a, b in zip(la, lb):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape
        assert rel_err(b, a) <= 10 * tol


# chains built by hand that have adafactor's shape take its fused step too
# (the per-leaf plan, ``_fusion.named_plan``): same numbers as update + apply
USER_CHAINS = {
    "bare": lambda: [npopt.scale_by_factored_rms(), npopt.scale(-1)],
    "blocks": lambda: [
        npopt.scale_by_factored_rms(decay_rate=0.5, min_dim_size_to_factor=3), npopt.identity(),
        npopt.clip_by_block_rms(0.5), npopt.scale_by_schedule(lambda c: 0.02 / (1 + c)),
        npopt.scale_by_param_block_norm(min_scale=0.1), npopt.add_decayed_weights(1e-2, MASK),
        npopt.scale(-1)],
    "momentum": lambda: [npopt.scale_by_factored_rms(), npopt.scale(0.01),
                         npopt.ema(0.9, debias=False), npopt.scale(-1)],
}
NOT_PER_LEAF = {     # another shape: no named plan (the generic path's fused step, or none)
    "other_sign": (lambda: [npopt.scale_by_factored_rms(), npopt.scale(-0.5)], True),
    "debiased_ema": (lambda: [npopt.scale_by_factored_rms(), npopt.ema(0.9),
                              npopt.scale(-1)], False),
    "out_of_order": (lambda: [npopt.scale_by_factored_rms(), npopt.scale_by_param_block_rms(),
                              npopt.clip_by_block_rms(1.0), npopt.scale(-1)], False),
    "no_factored": (lambda: [npopt.clip_by_block_rms(1.0), npopt.scale(-1)], False),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(USER_CHAINS))
def test_user_chain_of_adafactor_shape_takes_the_per_leaf_step(name, dtype):
    from npopt.transforms import _fusion
    txs = USER_CHAINS[name]()
    assert _fusion.named_plan(txs)[0] == "per-leaf"
    opt = npopt.chain(*txs)
    assert opt.fused_step.__qualname__.startswith("per_leaf_step")
    params, grads = _problem(dtype)
    pu, su = _run(opt, _copy(params), grads, "update")
    ps, ss = _run(opt, _copy(params), grads, "step")
    tol = 0.0                      # with momentum: an ulp (see test_step_matches_update)
    if name == "momentum":
        tol = 1e-6 if dtype == np.float32 else 1e-15
    for a, b in zip(tree_leaves(pu), tree_leaves(ps)):
        assert a.dtype == b.dtype == dtype
        assert rel_err(b, a) <= tol
    la, lb = tree_leaves(su), tree_leaves(ss)
    assert len(la) == len(lb)
    for a, b in zip(la, lb):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape
        assert rel_err(b, a) <= 10 * tol


@pytest.mark.parametrize("name", sorted(NOT_PER_LEAF))
def test_other_chains_do_not_take_the_per_leaf_step(name):
    from npopt.transforms import _fusion
    make, fused = NOT_PER_LEAF[name]
    assert _fusion.named_plan(make()) is None
    assert (npopt.chain(*make()).fused_step is not None) == fused


def test_step_is_in_place_and_update_is_functional():
    # (no zero-size leaf: _flat.gather does not yet recognise its view)
    params, grads = _problem(np.float64, {k: v for k, v in SHAPES.items() if k != "z"})
    opt = npopt.adafactor(1e-2, momentum=0.9)
    state = opt.init(params)
    before = (_copy(params), _copy(grads[0]), _copy(state))
    opt.update(grads[0], state, params)
    for x, y in zip(tree_leaves(before), tree_leaves((params, grads[0], state))):
        np.testing.assert_array_equal(x, y)
    p1, s1 = opt.step(params, grads[0], state)
    # the state's buffers are reused (zero-copy steady state)
    assert np.shares_memory(s1[0].v_row["w"], state[0].v_row["w"])
    p2, s2 = opt.step(p1, grads[1], s1)
    assert np.shares_memory(p2["w"], p1["w"]) and int(s2[0].count) == 2


# ---------------------------------------------------------------------------
# CUDA (simulator unless NUMBA_ENABLE_CUDASIM=0) against the CPU
# ---------------------------------------------------------------------------

# a few ulps after a few steps (contraction differs between the targets)
ULPS = {np.dtype(np.float32): 2e-6, np.dtype(np.float64): 1e-14}
# small (the simulator runs every thread in Python): min_dim_size_to_factor=4
CUDA_SHAPES = {"a": (5,), "c": (2, 5, 4), "d": (), "e": (6, 4), "w": (4, 7), "z": (0, 5)}


@pytest.mark.parametrize("path", ["update", "step"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("config", ["default", "momentum_wd_mask", "factored_chain",
                                    "block_norm"])
def test_cuda_matches_cpu(config, dtype, path):
    cuda = pytest.importorskip("numba.cuda", reason="numba-cuda not installed")
    from npopt._target import is_device_array
    shapes = dict(CUDA_SHAPES)
    mask = {k: k != "a" for k in shapes}
    if config == "block_norm":
        opt = npopt.chain(npopt.scale_by_param_block_norm(), npopt.scale(-0.01))
    elif config == "default":
        opt = npopt.adafactor(1e-2, min_dim_size_to_factor=4)
    elif config == "momentum_wd_mask":
        opt = npopt.adafactor(1e-2, min_dim_size_to_factor=4, momentum=0.9,
                              weight_decay_rate=1e-3, weight_decay_mask=mask)
    else:
        opt = npopt.chain(npopt.scale_by_factored_rms(min_dim_size_to_factor=4),
                          npopt.add_decayed_weights(1e-2, mask),
                          npopt.scale_by_learning_rate(1e-2))
    params, grads = _problem(dtype, shapes, steps=3)
    to_dev = lambda t: tree_map(cuda.to_device, t)
    to_host = lambda t: tree_map(lambda x: x.copy_to_host() if hasattr(x, "copy_to_host")
                                 else x, t)
    cpu_p, cpu_s = _run(opt, _copy(params), grads, path)
    dev_p = to_dev(params)
    dev_s = opt.init(dev_p)
    for g in grads:
        if path == "update":
            u, dev_s = opt.update(to_dev(g), dev_s, dev_p)
            dev_p = npopt.apply_updates(dev_p, u)
        else:
            dev_p, dev_s = opt.step(dev_p, to_dev(g), dev_s)
    for leaf in tree_leaves(dev_s):
        if np.ndim(leaf) > 0:
            assert is_device_array(leaf), type(leaf)
    tol = ULPS[np.dtype(dtype)]
    for a, b in zip(tree_leaves(to_host(dev_p)), tree_leaves(cpu_p)):
        assert a.dtype == b.dtype and rel_err(a, b) <= tol, rel_err(a, b)
    for a, b in zip(tree_leaves(to_host(dev_s)), tree_leaves(cpu_s)):
        assert rel_err(np.asarray(a), np.asarray(b)) <= 10 * tol


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------

def test_bad_hyperparameters():
    with pytest.raises(TypeError, match="factored"):
        npopt.scale_by_factored_rms(factored="yes")
    with pytest.raises(TypeError, match="decay_rate_fn"):
        npopt.scale_by_factored_rms(decay_rate_fn=0.8)
    with pytest.raises(ValueError, match="epsilon"):
        npopt.scale_by_factored_rms(epsilon=-1.0)
    with pytest.raises(ValueError, match="min_dim_size_to_factor"):
        npopt.adafactor(min_dim_size_to_factor=-1)
    with pytest.raises(ValueError, match="step_offset"):
        npopt.scale_by_factored_rms(step_offset=1.5)
    with pytest.raises(ValueError, match="decay_rate"):
        npopt.adafactor(decay_rate=float("nan"))
    with pytest.raises(ValueError, match="threshold"):
        npopt.adafactor(clipping_threshold=-1.0)
    with pytest.raises(ValueError, match="learning_rate"):
        npopt.adafactor(learning_rate=-1.0)
    with pytest.raises(TypeError, match="dtype_momentum"):
        npopt.adafactor(momentum=0.9, dtype_momentum=np.int32)
    with pytest.raises(ValueError, match="min_scale"):
        npopt.scale_by_param_block_rms(min_scale=-1.0)


@pytest.mark.parametrize("path", ["update", "step"])
def test_bad_state_and_inputs_touch_nothing(path):
    params, grads = _problem(np.float64)
    opt = npopt.adafactor(1e-2, momentum=0.9)
    state = opt.init(params)
    params, state = opt.step(params, grads[0], state)
    snapshot = _copy((params, state))

    def call(g, s, p):
        if path == "update":
            return opt.update(g, s, p)
        return opt.step(p, g, s)

    bad_row = dict(state[0].v_row, w=np.zeros(3))
    cases = [
        (ValueError, "state.v_row", (grads[1], (state[0]._replace(v_row=bad_row),)
                                     + state[1:], params)),
        (TypeError, "FactoredState", (grads[1], (npopt.EmptyState(),) + state[1:], params)),
        (TypeError, "state", (grads[1], npopt.adam(1e-2).init(params), params)),
        (ValueError, "shape", (dict(grads[1], w=np.ones((3, 3))), state, params)),
        (TypeError, "dtype", (tree_map(lambda x: x.astype(np.float32), grads[1]), state,
                              params)),
    ]
    for exc, match, args in cases:
        with pytest.raises(exc, match=match):
            call(*args)
        for a, b in zip(tree_leaves(snapshot), tree_leaves((params, state))):
            np.testing.assert_array_equal(a, b)


def test_update_needs_params():
    params, grads = _problem(np.float64)
    for tx in (npopt.scale_by_factored_rms(), npopt.scale_by_param_block_rms(),
               npopt.scale_by_param_block_norm()):
        with pytest.raises(ValueError, match="params"):
            tx.update(grads[0], tx.init(params))
