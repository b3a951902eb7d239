"""optax's numeric transforms and helpers in npopt: centralize,
normalize_by_update_norm, unitwise_norm/unitwise_clip/adaptive_grad_clip,
keep_params_nonnegative, per-example clipping, safe_norm,
safe_root_mean_squares, power_iteration, matrix_inverse_pth_root, nnls,
multi_normal, scale_gradient and npopt.second_order.

* reference values: tests/reference/data/optax/numeric.npz (optax 0.2.8,
  x64; tests/reference/make_numeric_reference.py), float64 at 1e-10 and
  float32 at 1e-5 (leaf-wise relative), looser only where a finite
  difference stands in for JAX's autodiff;
* hypothesis properties: per-example clipping keeps every example's norm
  within the bound, unitwise_norm's shapes, matrix_inverse_pth_root against
  the exact inverse root of an SPD matrix, nnls's optimality conditions;
* bad input raises, naming the argument.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import npopt
from conftest import rel_err
from npopt.tree import tree_leaves
from reference.make_numeric_reference import CASES, OUT

_DATA = np.load(OUT)


def _ref(name, dt):
    pre = f"{dt}/{name}/"
    inputs = {k[len(pre) + 3:]: _DATA[k] for k in _DATA.files if k.startswith(pre + "in/")}
    n = sum(1 for k in _DATA.files if k.startswith(pre + "out/"))
    return inputs, [_DATA[f"{pre}out/{i}"] for i in range(n)]


_PAIRS = [(n, dt) for n, c in CASES.items() for dt in c["dtypes"]]


@pytest.mark.parametrize("name,dt", _PAIRS, ids=[f"{n}-{d}" for n, d in _PAIRS])
def test_reference_values(name, dt):
    case = CASES[name]
    inputs, want = _ref(name, dt)
    got = [np.asarray(v) for v in tree_leaves(case["call"](npopt, inputs))]
    assert len(got) == len(want)
    tol = case["rtol"][dt]
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape, (i, g.shape, w.shape)
        assert g.dtype == w.dtype, (i, g.dtype, w.dtype)
        if w.dtype.kind in "iub":
            np.testing.assert_array_equal(g, w)
        else:
            assert rel_err(g, w) <= tol, (i, rel_err(g, w))


# ---- step: the transforms work with opt.step (update + apply_updates) -----------

@pytest.mark.parametrize("make", [
    lambda: npopt.chain(npopt.centralize(), npopt.sgd(0.1)),
    lambda: npopt.chain(npopt.normalize_by_update_norm(), npopt.sgd(0.1)),
    lambda: npopt.chain(npopt.adaptive_grad_clip(0.1), npopt.sgd(0.1)),
    lambda: npopt.chain(npopt.sgd(0.5), npopt.keep_params_nonnegative()),
])
def test_step_equals_update_apply(make):
    rng = np.random.default_rng(0)
    params = {"a": np.abs(rng.standard_normal((3, 4))), "b": np.abs(rng.standard_normal(5))}
    grads = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(5)}
    opt = make()
    u, _ = opt.update(grads, opt.init(params), params)
    want = npopt.apply_updates(params, u)
    copy = {k: v.copy() for k, v in params.items()}
    got, _ = opt.step(copy, grads, opt.init(params))
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])


def test_keep_params_nonnegative_lands_in_the_orthant():
    rng = np.random.default_rng(1)
    p = np.abs(rng.standard_normal(50))
    opt = npopt.chain(npopt.sgd(1.0), npopt.keep_params_nonnegative())
    state = opt.init(p)
    for _ in range(5):
        p, state = opt.step(p, rng.standard_normal(50), state)
        assert np.all(p >= 0)


def test_states_are_optax_aliases():
    assert npopt.AdaptiveGradClipState is npopt.EmptyState
    assert npopt.NonNegativeParamsState is npopt.EmptyState
    assert npopt.transforms.keep_params_nonnegative is npopt.keep_params_nonnegative
    assert npopt.keep_params_nonnegative().init({"a": np.ones(2)}) == npopt.EmptyState()


# ---- properties ------------------------------------------------------------------

_floats = st.floats(-10, 10, allow_nan=False, width=32)


@settings(max_examples=40, deadline=None)
@given(b=st.integers(1, 6), shapes=st.lists(hnp.array_shapes(min_dims=0, max_dims=2, max_side=4),
                                              min_size=1, max_size=3),
       clip=st.floats(0.01, 5.0), seed=st.integers(0, 2 ** 16))
def test_per_example_clip_keeps_norms_within_bound(b, shapes, clip, seed):
    rng = np.random.default_rng(seed)
    grads = [rng.standard_normal((b,) + s) * rng.uniform(0, 3) for s in shapes]
    total, n = npopt.per_example_global_norm_clip(grads, clip)
    norms = np.sqrt(sum(np.sum(g.reshape(b, -1) ** 2, axis=1) for g in grads))
    m = np.minimum(1.0, clip / np.where(norms > 0, norms, 1.0))
    for t, g in zip(total, grads):
        np.testing.assert_allclose(t, np.tensordot(m, g, axes=1), rtol=1e-12, atol=1e-12)
    assert n == int(np.sum(norms > clip)) or abs(np.sort(norms) - clip).min() < 1e-12
    # each clipped example has norm <= clip (one example alone: the sum is
    # that example), so their sum has norm <= b * clip
    assert np.sqrt(sum(np.sum(t ** 2) for t in total)) <= b * clip * (1 + 1e-12)
    for i in range(b):
        one, _ = npopt.per_example_global_norm_clip([g[i:i + 1] for g in grads], clip)
        assert np.sqrt(sum(np.sum(t ** 2) for t in one)) <= clip * (1 + 1e-12)
    sums, counts = npopt.per_example_layer_norm_clip(grads, clip)
    k = len(grads)
    for s, c, g in zip(sums, counts, grads):
        leaf_norms = np.sqrt(np.sum(g.reshape(b, -1) ** 2, axis=1))
        assert np.sqrt(np.sum(s ** 2)) <= b * clip / np.sqrt(k) * (1 + 1e-12)
        assert c == int(np.sum(leaf_norms > clip / np.sqrt(k) * (1 + 1e-12))) or \
            np.min(np.abs(leaf_norms - clip / np.sqrt(k))) < 1e-12


@settings(max_examples=40, deadline=None)
@given(x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=5, max_side=3),
                    elements=_floats))
def test_unitwise_norm_shapes(x):
    out = npopt.transforms.unitwise_norm(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    sq = np.squeeze(x)
    if sq.ndim <= 1:
        axes = tuple(range(x.ndim))
    else:
        axes = {2: (0,), 3: (0,), 4: (0, 1, 2), 5: (0, 1, 2, 3)}[x.ndim]
    want = np.broadcast_to(np.sqrt(np.sum(x * x, axis=axes, keepdims=True)), x.shape)
    np.testing.assert_allclose(out, want, rtol=1e-13, atol=1e-300)
    # constant along the reduced axes
    assert np.all(out == np.max(out, axis=axes, keepdims=True))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 6), p=st.sampled_from([1, 2, 4, 8]), seed=st.integers(0, 2 ** 16),
       spread=st.floats(0.0, 2.0))
def test_matrix_inverse_pth_root_matches_the_exact_root(n, p, seed, spread):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    ev = np.exp(rng.uniform(-spread, spread, n))
    A = (q * ev) @ q.T
    A = (A + A.T) / 2
    w, V = np.linalg.eigh(A)
    root, err = npopt.matrix_inverse_pth_root(A, p, ridge_epsilon=0.0, error_tolerance=1e-12)
    # optax's iteration gives up (returns the last H before the error grew by
    # more than 1.2x, possibly H_0) on some ill-conditioned matrices; npopt
    # too (checked against optax); a well-conditioned one always converges
    if spread <= 0.25:
        assert err < 1e-9
    if err < 1e-9:
        exact = (V * w ** (-1.0 / p)) @ V.T
        assert rel_err(root, exact) < 1e-9
        # with the ridge: the root of A + ridge * lambda_max I, lambda_max as
        # power_iteration estimates it (100 steps from seed 0, to 1e-6)
        root, err = npopt.matrix_inverse_pth_root(A, p, error_tolerance=1e-12)
        lam = npopt.power_iteration(A)[0]
        exact = (V * (w + 1e-6 * lam) ** (-1.0 / p)) @ V.T
        assert err >= 1e-9 or rel_err(root, exact) < 1e-9


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 6), seed=st.integers(0, 2 ** 16))
def test_power_iteration_finds_the_dominant_eigenpair(n, seed):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    ev = np.sort(rng.uniform(0.1, 1.0, n))
    ev[-1] = 2.0                                   # a clear gap
    A = (q * ev) @ q.T
    lam, v = npopt.power_iteration(A, key=seed, error_tolerance=1e-10, num_iters=1000)
    assert abs(lam - 2.0) < 1e-9
    assert abs(abs(v @ q[:, -1]) - 1) < 1e-8
    lam2, _ = npopt.power_iteration(A, key=np.random.default_rng(seed),
                                    error_tolerance=1e-10, num_iters=1000)
    assert lam2 == lam                              # a seed and its Generator: one start


@settings(max_examples=30, deadline=None)
@given(m=st.integers(1, 8), n=st.integers(1, 5), seed=st.integers(0, 2 ** 16))
def test_nnls_satisfies_kkt(m, n, seed):
    m = max(m, n)              # full column rank: strongly convex, FPG converges linearly
    rng = np.random.default_rng(seed)
    # singular values within 3 -+ 1 (a random part of spectral norm about 1): the
    # fixed 3000 iterations then converge whatever the draw (with an unscaled
    # random part, seed 919 gave a condition number large enough to stop short)
    A = rng.standard_normal((m, n)) / (2 * np.sqrt(m) + 1) + 3 * np.eye(m, n)
    b = rng.standard_normal(m)
    x = npopt.nnls(A, b, 3000)
    assert np.all(x >= 0)
    g = A.T @ (A @ x - b)                          # gradient of 1/2 ||Ax - b||^2
    scale = 1 + np.abs(A.T @ b).max()
    assert np.all(g >= -1e-6 * scale)               # dual feasibility
    assert np.all(np.abs(g * x) <= 1e-6 * scale * (1 + x.max()))   # complementarity


@settings(max_examples=30, deadline=None)
@given(x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
                    elements=_floats),
       floor=st.floats(0, 5))
def test_safe_norm_is_the_floored_norm(x, floor):
    np.testing.assert_allclose(npopt.safe_norm(x, floor),
                               max(np.linalg.norm(x.ravel()), floor), rtol=1e-13)
    np.testing.assert_allclose(npopt.safe_root_mean_squares(x, floor),
                               max(np.sqrt(np.mean(x ** 2)), floor), rtol=1e-13)
    ax = x.ndim - 1
    np.testing.assert_allclose(npopt.safe_norm(x, floor, ord=1, axis=ax, keepdims=True),
                               np.maximum(np.sum(np.abs(x), axis=ax, keepdims=True), floor),
                               rtol=1e-13)


def test_centralize_rows_have_zero_mean_and_vectors_pass():
    rng = np.random.default_rng(3)
    g = {"m": rng.standard_normal((4, 3, 5)) + 7.0, "v": rng.standard_normal(6)}
    tx = npopt.centralize()
    u, s = tx.update(g, tx.init(g))
    assert np.abs(u["m"].mean(axis=(1, 2))).max() < 1e-14
    np.testing.assert_array_equal(u["v"], g["v"])
    assert s == npopt.EmptyState()


def test_complex_leaves():
    rng = np.random.default_rng(4)
    z = rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4))
    np.testing.assert_allclose(npopt.transforms.unitwise_norm(z),
                               np.broadcast_to(np.linalg.norm(z, axis=0, keepdims=True), z.shape),
                               rtol=1e-14)
    u, _ = npopt.normalize_by_update_norm().update(z, npopt.EmptyState())
    np.testing.assert_allclose(np.linalg.norm(u), 1.0, rtol=1e-5)
    np.testing.assert_allclose(npopt.safe_norm(z, 0.0), np.linalg.norm(z), rtol=1e-14)


def test_multi_normal():
    d = npopt.multi_normal(np.zeros(3), np.log(np.full(3, 2.0)))
    s = d.sample((4000,), 0)
    assert s.shape == (4000, 3)
    assert np.all(np.abs(s.std(axis=0) - 2.0) < 0.15)
    np.testing.assert_array_equal(s, d.sample((4000,), np.random.default_rng(0)))
    assert [a.shape for a in d.params] == [(3,), (3,)]
    np.testing.assert_array_equal(d.log_scale, np.log(np.full(3, 2.0)))


def test_scale_gradient_is_the_identity():
    tree = {"a": np.ones(3), "b": [np.zeros(2)]}
    assert npopt.scale_gradient(tree, 0.5) is tree
    assert npopt.scale_gradient(tree, 0.0) is tree


def test_second_order_without_derivatives():
    loss = lambda p, x, y: float(np.sum((p * x - y) ** 2))  # noqa: E731
    with pytest.raises(TypeError, match="grad_fn"):
        npopt.second_order.hvp(loss, np.ones(3), np.ones(3), np.ones(3), np.zeros(3))
    # a quadratic's diagonal by second differences
    h = npopt.second_order.hessian_diag(loss, np.ones(3), np.array([1.0, 2.0, 3.0]), 0.0)
    np.testing.assert_allclose(h, 2 * np.array([1.0, 4.0, 9.0]), rtol=1e-6)


# ---- bad input -------------------------------------------------------------------

@pytest.mark.parametrize("call,err,match", [
    (lambda: npopt.adaptive_grad_clip(-1.0), ValueError, "clipping"),
    (lambda: npopt.adaptive_grad_clip(0.1, eps=float("nan")), ValueError, "eps"),
    (lambda: npopt.adaptive_grad_clip(0.1).update({"a": np.ones(2)}, npopt.EmptyState()),
     ValueError, "params"),
    (lambda: npopt.adaptive_grad_clip(0.1).update({"a": np.ones(2)}, npopt.EmptyState(),
                                                  {"a": np.ones(3)}), ValueError, "params"),
    (lambda: npopt.adaptive_grad_clip(0.1).update({"a": np.ones(2)}, npopt.EmptyState(),
                                                  {"b": np.ones(2)}), ValueError, "params"),
    (lambda: npopt.keep_params_nonnegative().update(np.ones(2), npopt.EmptyState()),
     ValueError, "params"),
    (lambda: npopt.centralize().update(np.ones((2, 2), int), npopt.EmptyState()),
     TypeError, "updates"),
    (lambda: npopt.normalize_by_update_norm(scale_factor=0.0), ValueError, "scale_factor"),
    (lambda: npopt.normalize_by_update_norm(eps=-1.0), ValueError, "eps"),
    (lambda: npopt.transforms.unitwise_norm(np.ones((2,) * 6)), ValueError, "axis"),
    (lambda: npopt.transforms.unitwise_norm(np.ones((2, 3)), axis=2), ValueError, "axis"),
    (lambda: npopt.transforms.unitwise_clip(np.ones(2), np.ones(3), np.ones(2)), ValueError,
     "max_norm"),
    (lambda: npopt.per_example_global_norm_clip([np.ones((3, 2)), np.ones((4, 2))], 1.0),
     ValueError, "batch"),
    (lambda: npopt.per_example_global_norm_clip([np.ones(())], 1.0), ValueError, "batch"),
    (lambda: npopt.per_example_global_norm_clip([np.ones((3, 2))], -1.0), ValueError,
     "l2_norm_clip"),
    (lambda: npopt.per_example_layer_norm_clip([np.ones((3, 2))], 1.0, uniform="yes"),
     TypeError, "uniform"),
    (lambda: npopt.safe_norm(np.ones((2, 2, 2)), 0.0, ord=1), ValueError, "ord"),
    (lambda: npopt.safe_norm(np.ones(3), 0.0, ord="nuc"), ValueError, "ord"),
    (lambda: npopt.safe_norm(np.ones(3), 0.0, axis=1), ValueError, "axis"),
    (lambda: npopt.power_iteration(lambda v: v), ValueError, "v0"),
    (lambda: npopt.power_iteration(np.ones((2, 3))), ValueError, "matrix"),
    (lambda: npopt.power_iteration(np.eye(2), key="k"), TypeError, "key"),
    (lambda: npopt.power_iteration(np.eye(2), v0=np.ones(3)), ValueError, "v0"),
    (lambda: npopt.matrix_inverse_pth_root(np.ones((2, 3)), 2), ValueError, "matrix"),
    (lambda: npopt.matrix_inverse_pth_root(np.eye(2), 0), ValueError, "p"),
    (lambda: npopt.nnls(np.ones(3), np.ones(3), 5), ValueError, "A"),
    (lambda: npopt.nnls(np.ones((3, 2)), np.ones(4), 5), ValueError, "b"),
    (lambda: npopt.nnls(np.ones((3, 2)), np.ones(3), -1), ValueError, "iters"),
    (lambda: npopt.nnls(np.ones((3, 2)), np.ones(3), 5, L=-1.0), ValueError, "L"),
    (lambda: npopt.multi_normal(np.zeros(3), np.zeros(4)), ValueError, "log_scale"),
    (lambda: npopt.multi_normal(np.zeros(3), np.zeros(3)).sample((2,), "k"), TypeError, "key"),
    (lambda: npopt.scale_gradient(np.ones(2), "x"), ValueError, "scale"),
    (lambda: npopt.second_order.hvp(None, np.ones(2), np.ones(2), 0, 0), TypeError, "loss"),
    (lambda: npopt.second_order.hvp(lambda *a: 0.0, np.ones(3), np.ones(2), 0, 0,
                                    grad_fn=lambda *a: a[0]), ValueError, "v"),
])
def test_bad_input(call, err, match):
    with pytest.raises(err, match=match):
        call()


def test_device_arrays_are_refused():
    from numba import cuda
    d = cuda.to_device(np.ones((2, 3)))
    with pytest.raises(TypeError, match="CUDA device arrays"):
        npopt.centralize().update(d, npopt.EmptyState())
    with pytest.raises(TypeError, match="CUDA device arrays"):
        npopt.keep_params_nonnegative().update(np.ones(2), npopt.EmptyState(),
                                               cuda.to_device(np.ones(2)))


def test_same_bits_whatever_the_memory_layout():
    # the reductions run in a fixed order on a contiguous copy: a transposed
    # or Fortran-ordered input gives the same bits
    rng = np.random.default_rng(5)
    x = rng.standard_normal((5, 4, 3))
    f = np.asfortranarray(x)
    assert not f.flags.c_contiguous
    for fn in (lambda a: npopt.transforms.unitwise_norm(a),
               lambda a: npopt.safe_norm(a, 0.0, axis=(0, 2)),
               lambda a: npopt.safe_root_mean_squares(a, 0.0),
               lambda a: npopt.centralize().update(a, npopt.EmptyState())[0],
               lambda a: npopt.per_example_global_norm_clip([a], 0.5)[0][0],
               lambda a: npopt.normalize_by_update_norm().update(a, npopt.EmptyState())[0]):
        np.testing.assert_array_equal(fn(x), fn(f))
    A = rng.standard_normal((6, 4))
    np.testing.assert_array_equal(npopt.nnls(A, x[:, 0, 0].repeat(2)[:6], 30),
                                  npopt.nnls(np.asfortranarray(A), x[:, 0, 0].repeat(2)[:6], 30))


def test_empty_leaves():
    tx = npopt.centralize()
    u, _ = tx.update({"a": np.zeros((3, 0)), "b": np.zeros(0)}, npopt.EmptyState())
    assert u["a"].shape == (3, 0) and u["b"].shape == (0,)
    assert npopt.transforms.unitwise_norm(np.zeros((0, 3))).shape == (0, 3)
    assert npopt.safe_norm(np.zeros(0), 0.5) == 0.5
