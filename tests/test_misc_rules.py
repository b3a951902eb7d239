"""The 'misc' family: ema, scale_by_sign / sign_sgd / signum, scale_by_lion /
lion, add_noise / noisy_sgd.

* each rule against a plain-NumPy transcription of its formula (the
  "naive" oracle below, one operation per line);
* the CUDA kernels against the CPU kernels (numba's simulator under
  NUMBA_ENABLE_CUDASIM=1, a GPU otherwise), both paths;
* properties that hold whatever the reference says (sign-valued steps,
  debiased EMA of a constant, lion's step size);
* add_noise: JAX's key splitting bit for bit, and the noise statistically
  (mean, variance schedule, independence, reproducibility from the state);
* bad input: errors naming the argument, raised before any buffer changes.

The optax trajectories themselves are in test_alias_reference.py (cases in
reference/cases_misc.py).
"""
import warnings

import numpy as np
import pytest

import npopt
from conftest import DTYPES, rel_err
from npopt.transforms import noise as tnoise
from npopt.tree import tree_leaves, tree_map


def _problem(dtype, seed=0, steps=5):
    rng = np.random.default_rng(seed)
    params = {"a": rng.standard_normal(7).astype(dtype),
              "b": rng.standard_normal((3, 4)).astype(dtype),
              "c": np.asarray(rng.standard_normal(), dtype)}
    grads = [tree_map(lambda p: rng.standard_normal(np.shape(p)).astype(dtype), params)
             for _ in range(steps)]
    grads[min(1, steps - 1)]["a"][:3] = [0.0, -0.0, 1e-30]   # sign(+-0), tiny values
    return params, grads


def _run(opt, params, grads, path):
    state = opt.init(params)
    ups = []
    for g in grads:
        if path == "update":
            u, state = opt.update(g, state, params)
            ups.append(u)
            params = npopt.apply_updates(params, u)
        else:
            params, state = opt.step(params, g, state)
    return params, state, ups


def _close(a, b, dtype, ulps=4):
    eps = np.finfo(dtype).eps
    return rel_err(a, b) <= ulps * eps


# ---------------------------------------------------------------------------
# naive oracles (straight from the formulas; f = the leaf dtype)
# ---------------------------------------------------------------------------

def naive_ema(gs, decay, debias, dtype):
    f = np.dtype(dtype).type
    e, out = np.zeros_like(gs[0]), []
    for t, g in enumerate(gs, start=1):
        e = f(1 - decay) * g + f(decay) * e
        out.append(e / f(1 - decay ** t) if debias else e)
    return out


def naive_lion(gs, b1, b2, mode, beta, dtype):
    f = np.dtype(dtype).type
    m, out = np.zeros_like(gs[0]), []
    for g in gs:
        x = f(1 - b1) * g + f(b1) * m
        if mode == "hard":
            u = np.sign(x)
        elif mode == "smooth":
            u = np.tanh(f(beta) * x)
        else:
            u = np.where(np.abs(x) < 1, x, np.sign(x))
        m = f(1 - b2) * g + f(b2) * m
        out.append(u.astype(dtype))
    return out


def _leaf_series(grads, key):
    return [np.asarray(g[key]) for g in grads]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("debias", [True, False])
def test_ema_matches_formula(dtype, debias):
    params, grads = _problem(dtype)
    _, _, ups = _run(npopt.ema(0.8, debias=debias), params, grads, "update")
    for k in params:
        want = naive_ema(_leaf_series(grads, k), 0.8, debias, dtype)
        for u, w in zip(ups, want):
            assert u[k].dtype == np.dtype(dtype)
            assert _close(u[k], w, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_ema_debiased_constant_is_the_constant(dtype):
    """Debiasing divides out 1 - decay**t exactly: a constant gradient comes back."""
    params = {"w": np.zeros(5, dtype)}
    g = {"w": np.linspace(-2, 3, 5).astype(dtype)}
    opt = npopt.ema(0.9)
    state = opt.init(params)
    for _ in range(30):
        u, state = opt.update(g, state)
        assert _close(u["w"], g["w"], dtype, ulps=8)
    assert state.count == 30 and state.count.dtype == np.int32


def test_ema_accumulator_dtype_keeps_state_dtype():
    params, grads = _problem(np.float64)
    opt = npopt.ema(0.9, accumulator_dtype=np.float32)
    p, state, ups = _run(opt, params, grads, "update")
    assert all(x.dtype == np.float32 for x in tree_leaves(state.ema))
    assert all(x.dtype == np.float64 for x in tree_leaves(ups[-1]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_sign_sgd_moves_every_coordinate_by_lr(dtype):
    params, grads = _problem(dtype, steps=1)
    g = grads[0]
    for path in ("update", "step"):
        p, state, _ = _run(npopt.sign_sgd(0.125), params, [g], path)
        for k in params:   # u = -0.125 * sign(g) is exact; p + u rounds once
            want = np.asarray(params[k] + np.asarray(-0.125, dtype) * np.sign(g[k]), dtype)
            np.testing.assert_array_equal(p[k], want)
        assert state == (npopt.EmptyState(), npopt.EmptyState())


def test_scale_by_sign_keeps_signed_zeros_and_nan():
    g = {"w": np.array([-0.0, 0.0, np.nan, -np.inf, 3.0, -1e-300])}
    u, _ = npopt.scale_by_sign().update(g, npopt.EmptyState())
    want = np.array([-0.0, 0.0, np.nan, -1.0, 1.0, -1.0])
    np.testing.assert_array_equal(u["w"], want)
    assert np.signbit(u["w"][0]) and not np.signbit(u["w"][1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_signum_is_sign_of_undebiased_ema(dtype):
    params, grads = _problem(dtype)
    _, state, ups = _run(npopt.signum(0.5, beta=0.7), params, grads, "update")
    for k in params:
        e = naive_ema(_leaf_series(grads, k), 0.7, False, dtype)
        for u, w in zip(ups, e):
            np.testing.assert_array_equal(u[k], -0.5 * np.sign(w))
    assert type(state[0]).__name__ == "EmaState" and state[0].count == len(grads)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["hard", "smooth", "refined"])
def test_lion_matches_formula(dtype, mode):
    params, grads = _problem(dtype)
    grads = [tree_map(lambda x: 3 * x, g) for g in grads]   # refined: both branches
    opt = npopt.scale_by_lion(0.8, 0.95, mode=mode, smooth_beta=2.0)
    _, state, ups = _run(opt, params, grads, "update")
    for k in params:
        want = naive_lion(_leaf_series(grads, k), 0.8, 0.95, mode, 2.0, dtype)
        for u, w in zip(ups, want):
            assert _close(u[k], w, dtype)
    assert state.count == len(grads)


@pytest.mark.parametrize("dtype", DTYPES)
def test_lion_step_size_is_lr_plus_decay(dtype):
    """hard Lion: |p' - p + lr*wd*p| = lr wherever the direction is nonzero."""
    params, grads = _problem(dtype, steps=1)
    lr, wd = 0.25, 0.5
    p, _, _ = _run(npopt.lion(lr, weight_decay=wd), params, grads, "step")
    for k in params:
        p0 = np.asarray(params[k], np.float64)
        move = np.asarray(p[k], np.float64) - p0 + lr * wd * p0
        nz = np.asarray(grads[0][k]) != 0
        assert np.allclose(np.abs(move[nz]), lr, rtol=4 * np.finfo(dtype).eps, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("make", [
    lambda: npopt.sign_sgd(0.1),
    lambda: npopt.signum(0.1, beta=0.5),
    lambda: npopt.lion(0.1, weight_decay=0.1, mask={"a": True, "b": False, "c": True}),
    lambda: npopt.chain(npopt.scale_by_lion(mode="smooth"), npopt.scale_by_learning_rate(0.1)),
    lambda: npopt.noisy_sgd(0.1, eta=0.3, key=7),
    lambda: npopt.chain(npopt.ema(0.9), npopt.scale_by_learning_rate(0.1)),
])
def test_step_equals_update_then_apply(make, dtype):
    params, grads = _problem(dtype)
    a, sa, _ = _run(make(), params, grads, "update")
    b, sb, _ = _run(make(), params, grads, "step")
    for x, y in zip(tree_leaves(a), tree_leaves(b)):   # the fused step contracts -lr*u + p
        assert _close(x, y, dtype, ulps=8)
    for x, y in zip(tree_leaves(sa), tree_leaves(sb)):
        x, y = np.asarray(x), np.asarray(y)
        if x.dtype.kind in "iu":
            np.testing.assert_array_equal(x, y)
        else:
            assert _close(x, y, dtype, ulps=8)


def test_fusion_of_the_aliases():
    """sign_sgd, lion and noisy_sgd fuse into one pass; signum (two
    preconditioners in a row) falls back to update + apply_updates."""
    assert npopt.sign_sgd(0.1).fused_step is not None
    assert npopt.lion(0.1).fused_step is not None
    assert npopt.noisy_sgd(0.1, key=0).fused_step is not None
    assert npopt.signum(0.1).fused_step is None


# ---------------------------------------------------------------------------
# add_noise: the key stream (JAX's) and the noise (NumPy's)
# ---------------------------------------------------------------------------

# jax.random.key_data(jax.random.key(seed)) and of jax.random.split(key), with
# jax_enable_x64 (jax 0.10.2, threefry_partitionable=True).
JAX_KEYS = {
    0: ([0, 0], [[1797259609, 2579123966], [928981903, 3453687069]]),
    42: ([0, 42], [[1832780943, 270669613], [64467757, 2916123636]]),
    -3: ([4294967295, 4294967293], [[832717119, 3882264482], [4047446256, 2364014922]]),
    2**40 + 7: ([256, 7], [[2775665504, 110793307], [1038896816, 4099356745]]),
    2**63 - 1: ([2147483647, 4294967295], [[2896536473, 4035726150], [289002645, 1167227915]]),
}


@pytest.mark.parametrize("seed", sorted(JAX_KEYS))
def test_key_seeding_and_split_match_jax(seed):
    key, split = JAX_KEYS[seed]
    k = tnoise.canonical_key(seed)
    assert k.dtype == np.uint32 and k.tolist() == key
    assert tnoise.threefry_split(k).tolist() == split
    assert tnoise.threefry_split(k, 3)[:2].tolist() == split


def test_state_key_follows_jax_split_sequence():
    params = {"w": np.zeros(4)}
    opt = npopt.add_noise(0.1, 0.55, key=0)
    state = opt.init(params)
    assert state.rng_key.tolist() == [0, 0] and state.count.dtype == np.int32
    _, state = opt.update(params, state)
    assert state.rng_key.tolist() == JAX_KEYS[0][1][0]
    assert state.count == 1


def _noise_samples(eta, gamma, key, steps, n=200_000, dtype=np.float64):
    opt = npopt.add_noise(eta, gamma, key=key)
    zeros = {"w": np.zeros(n, dtype)}
    state = opt.init(zeros)
    out = []
    for _ in range(steps):
        u, state = opt.update(zeros, state)
        out.append(u["w"])
    return out, state


@pytest.mark.parametrize("dtype", DTYPES)
def test_noise_mean_and_variance_schedule(dtype):
    eta, gamma, n = 0.5, 0.55, 200_000
    samples, _ = _noise_samples(eta, gamma, 3, steps=6, n=n, dtype=dtype)
    for t, z in enumerate(samples, start=1):
        assert z.dtype == np.dtype(dtype)
        var = eta / t ** gamma
        z = z.astype(np.float64)
        # 6-sigma bounds: mean ~ N(0, var/n), sample variance ~ N(var, 2 var^2/n)
        assert abs(z.mean()) < 6 * np.sqrt(var / n)
        assert abs(z.var() - var) < 6 * var * np.sqrt(2 / n)
    # successive draws are independent
    c = np.corrcoef(samples[0], samples[1])[0, 1]
    assert abs(c) < 6 / np.sqrt(n)


def test_noise_is_reproducible_from_key_and_from_state():
    a, sa = _noise_samples(0.1, 0.55, 11, steps=4, n=1000)
    b, _ = _noise_samples(0.1, 0.55, 11, steps=4, n=1000)
    c, _ = _noise_samples(0.1, 0.55, 12, steps=4, n=1000)
    for x, y, z in zip(a, b, c):
        np.testing.assert_array_equal(x, y)
        assert not np.any(x == z)
    # resuming from a saved state gives the uninterrupted run's noise
    opt = npopt.add_noise(0.1, 0.55, key=11)
    zeros = {"w": np.zeros(1000)}
    s = opt.init(zeros)
    for _ in range(2):
        _, s = opt.update(zeros, s)
    saved = npopt.AddNoiseState(np.int32(s.count), np.array(s.rng_key))
    u3, _ = opt.update(zeros, saved)
    np.testing.assert_array_equal(u3["w"], a[2])
    # a raw key equals the seed it came from
    d, _ = _noise_samples(0.1, 0.55, np.array([0, 11], np.uint32), steps=1, n=1000)
    np.testing.assert_array_equal(d[0], a[0])


def test_noise_zero_eta_is_identity_and_leaves_differ():
    params, grads = _problem(np.float32)
    u, _ = npopt.add_noise(0.0, 0.55, key=1).update(grads[0], npopt.add_noise(
        0.0, 0.55, key=1).init(params))
    for a, b in zip(tree_leaves(u), tree_leaves(grads[0])):
        np.testing.assert_array_equal(a, b)
    # leaves get distinct draws, and a float32/float64 mix keeps each dtype
    mixed = {"a": np.zeros(500, np.float32), "b": np.zeros(500, np.float64)}
    u, _ = npopt.add_noise(1.0, 0.0, key=1).update(mixed, npopt.add_noise(
        1.0, 0.0, key=1).init(mixed))
    assert u["a"].dtype == np.float32 and u["b"].dtype == np.float64
    assert not np.allclose(u["a"], u["b"])


def test_noise_key_and_seed_arguments_warn_as_optax():
    with pytest.warns(UserWarning, match="Specifying a key will be required"):
        npopt.noisy_sgd(0.1)
    with pytest.warns(DeprecationWarning, match='"seed" is deprecated'):
        opt = npopt.noisy_sgd(0.1, seed=42)
    assert opt.init({"w": np.zeros(2)})[0].rng_key.tolist() == [0, 42]
    with pytest.raises(ValueError, match="Only one of seed or key"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            npopt.noisy_sgd(0.1, key=1, seed=2)


# ---------------------------------------------------------------------------
# CUDA kernels against the CPU kernels
# ---------------------------------------------------------------------------

CUDA_RULES = {
    "ema": lambda: npopt.chain(npopt.ema(0.9), npopt.scale_by_learning_rate(0.1)),
    "ema_nodebias_acc32": lambda: npopt.chain(npopt.ema(0.8, debias=False,
                                                        accumulator_dtype=np.float32),
                                              npopt.scale_by_learning_rate(0.1)),
    "sign_sgd": lambda: npopt.sign_sgd(0.1),
    "signum": lambda: npopt.signum(0.1, beta=0.5),
    "lion": lambda: npopt.lion(0.05, weight_decay=0.1),
    "lion_smooth": lambda: npopt.chain(npopt.scale_by_lion(mode="smooth", smooth_beta=2.0),
                                       npopt.scale_by_learning_rate(0.05)),
    "lion_refined": lambda: npopt.chain(npopt.scale_by_lion(mode="refined"),
                                        npopt.scale_by_learning_rate(0.05)),
    "noisy_sgd": lambda: npopt.noisy_sgd(0.1, eta=0.2, key=3),
}
ULPS = {np.dtype(np.float32): 2e-6, np.dtype(np.float64): 1e-14}


@pytest.mark.parametrize("path", ["update", "step"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rule", sorted(CUDA_RULES))
def test_cuda_matches_cpu(rule, dtype, path):
    cuda = pytest.importorskip("numba.cuda", reason="numba-cuda not installed")
    from npopt._target import is_device_array
    params, grads = _problem(dtype, steps=4)
    params = {k: v for k, v in params.items() if k != "c"}   # device arrays: ndim >= 1
    grads = [{k: g[k] for k in params} for g in grads]
    opt = CUDA_RULES[rule]()
    to_dev = lambda t: tree_map(cuda.to_device, t)   # noqa: E731
    to_host = lambda t: tree_map(                     # noqa: E731
        lambda x: x.copy_to_host() if hasattr(x, "copy_to_host") else x, t)
    cpu_p, cpu_s = params, opt.init(params)
    dev_p = to_dev(params)
    dev_s = opt.init(dev_p)
    for g in grads:
        if path == "update":
            u, cpu_s = opt.update(g, cpu_s, cpu_p)
            cpu_p = npopt.apply_updates(cpu_p, u)
            du, dev_s = opt.update(to_dev(g), dev_s, dev_p)
            dev_p = npopt.apply_updates(dev_p, du)
        else:
            cpu_p, cpu_s = opt.step(cpu_p, g, cpu_s)
            dev_p, dev_s = opt.step(dev_p, to_dev(g), dev_s)
    for leaf in tree_leaves(dev_s):          # moments stay on the device
        if np.ndim(leaf) > 0 and not isinstance(leaf, np.ndarray):
            assert is_device_array(leaf)
    for leaf in tree_leaves(dev_s):          # only host scalars/keys on the host
        if isinstance(leaf, np.ndarray):
            assert leaf.dtype.kind in "iu"
    for a, b in zip(tree_leaves(to_host(dev_p)), tree_leaves(cpu_p)):
        assert a.dtype == b.dtype
        assert rel_err(a, b) <= ULPS[np.dtype(dtype)], rel_err(a, b)
    for a, b in zip(tree_leaves(to_host(dev_s)), tree_leaves(cpu_s)):
        assert rel_err(np.asarray(a), np.asarray(b)) <= 10 * ULPS[np.dtype(dtype)]


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("make,exc,msg", [
    (lambda: npopt.ema(1.5), ValueError, "decay: expected"),
    (lambda: npopt.ema(1.0), ValueError, "decay: expected a finite number >= 0.0 and < 1.0"),
    (lambda: npopt.ema(0.9, debias=1), TypeError, "debias: expected True or False"),
    (lambda: npopt.ema(0.9, accumulator_dtype=np.int32), TypeError, "accumulator_dtype: expected"),
    (lambda: npopt.signum(0.1, beta=float("nan")), ValueError, "beta: expected"),
    (lambda: npopt.signum(-0.1), ValueError, "learning_rate: expected"),
    (lambda: npopt.sign_sgd("0.1"), ValueError, "learning_rate: expected"),
    (lambda: npopt.lion(0.1, b1=2.0), ValueError, "b1: expected"),
    (lambda: npopt.lion(0.1, b2=-0.5), ValueError, "b2: expected"),
    (lambda: npopt.lion(0.1, mu_dtype="int8"), TypeError, "mu_dtype: expected"),
    (lambda: npopt.lion(0.1, weight_decay=float("inf")), ValueError, "weight_decay: expected"),
    (lambda: npopt.scale_by_lion(mode="soft"), ValueError, "mode: expected 'hard'"),
    (lambda: npopt.scale_by_lion(mode="smooth", smooth_beta=float("nan")), ValueError,
     "smooth_beta: expected"),
    (lambda: npopt.add_noise(-1.0, 0.55, key=0), ValueError, "eta: expected"),
    (lambda: npopt.add_noise(0.1, float("inf"), key=0), ValueError, "gamma: expected"),
    (lambda: npopt.add_noise(0.1, 0.55, key=1.5), TypeError, "key: expected an int seed"),
    (lambda: npopt.add_noise(0.1, 0.55, key=np.zeros(2, np.int64)), TypeError, "key: expected"),
    (lambda: npopt.add_noise(0.1, 0.55, key=2**64), ValueError, "key: expected a 64-bit"),
])
def test_bad_hyperparameters_name_the_argument(make, exc, msg):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(exc, match=msg):
            make()


def _snapshot(*trees):
    return [np.array(x, copy=True) for t in trees for x in tree_leaves(t)]


def _unchanged(before, *trees):
    after = [np.asarray(x) for t in trees for x in tree_leaves(t)]
    return len(before) == len(after) and all(
        np.array_equal(a, b, equal_nan=a.dtype.kind == "f") for a, b in zip(before, after))


@pytest.mark.parametrize("path", ["update", "step"])
@pytest.mark.parametrize("make", [lambda: npopt.sign_sgd(0.1), lambda: npopt.signum(0.1),
                                  lambda: npopt.lion(0.1), lambda: npopt.noisy_sgd(0.1, key=0)])
def test_bad_grads_and_states_leave_everything_untouched(make, path):
    opt = make()
    params, grads = _problem(np.float32, steps=1)
    state = opt.init(params)
    other = npopt.adam(0.1).init(params)
    bad_key = None
    if isinstance(state[0], npopt.AddNoiseState):
        bad_key = (state[0]._replace(rng_key=np.zeros(2, np.int64)),) + state[1:]
    cases = [(grads[0], other, TypeError, "state")]
    # update() of a rule without params-shaped state takes any tree, as optax's
    if path == "step" or not isinstance(state[0], (npopt.EmptyState, npopt.AddNoiseState)):
        cases += [({"a": grads[0]["a"]}, state, ValueError, "structure of the params"),
                  # float64 grads are promoted as optax does (test_step_safety.py)
                  (tree_map(lambda x: x.astype(np.complex128), grads[0]), state, TypeError,
                   "complex128")]
    if bad_key is not None:
        cases.append((grads[0], bad_key, TypeError, "state.rng_key: expected"))
    for g, s, exc, msg in cases:
        before = _snapshot(params, s)
        with pytest.raises(exc, match=msg):
            if path == "update":
                opt.update(g, s, params)
            else:
                opt.step(params, g, s)
        assert _unchanged(before, params, s)
