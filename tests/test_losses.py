"""npopt.losses: optax 0.2.8's optax.losses, name for name, with gradients.

* Reference: values and gradients (``jax.grad`` of the summed loss, x64) of
  every case of tests/reference/make_losses_reference.py, float64 to 1e-12
  and float32 to 1e-6 relative to each output's magnitude (infinities and
  NaNs at the same places); dtypes preserved.
* The names: all 32 of optax.losses, optax's parameters (names, kinds,
  defaults); the top-level spellings are the same objects.
* The gradient convention: ``f.grad``, ``f.value_and_grad``, ``f_grad``,
  ``f_value_and_grad`` agree.
* Properties (hypothesis): gradients against central finite differences in
  float64; float32 in, float32 out.
* Bad input: errors naming the argument (shapes, axes, dtypes, labels).
"""
import inspect
import re
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import npopt
import npopt.losses as L
from reference import make_losses_reference as R

REF = np.load(R.OUT)
TOL = {"float64": 1e-12, "float32": 1e-6}

OPTAX_LOSSES = [
    "binary_dice_loss", "convex_kl_divergence", "cosine_distance", "cosine_similarity",
    "ctc_loss", "ctc_loss_with_forward_probs", "dice_loss", "generalized_kl_divergence",
    "hinge_loss", "huber_loss", "kl_divergence", "kl_divergence_with_log_targets", "l2_loss",
    "log_cosh", "make_fenchel_young_loss", "multiclass_generalized_dice_loss",
    "multiclass_hinge_loss", "multiclass_perceptron_loss", "multiclass_sparsemax_loss",
    "ntxent", "perceptron_loss", "poly_loss_cross_entropy", "ranking_softmax_loss",
    "safe_softmax_cross_entropy", "sigmoid_binary_cross_entropy", "sigmoid_focal_loss",
    "smooth_labels", "softmax_cross_entropy", "softmax_cross_entropy_with_integer_labels",
    "sparsemax_loss", "squared_error", "triplet_margin_loss"]
TOP_LEVEL = [
    "convex_kl_divergence", "cosine_distance", "cosine_similarity", "ctc_loss",
    "ctc_loss_with_forward_probs", "generalized_kl_divergence", "hinge_loss", "huber_loss",
    "kl_divergence", "l2_loss", "log_cosh", "ntxent", "safe_softmax_cross_entropy",
    "sigmoid_binary_cross_entropy", "sigmoid_focal_loss", "smooth_labels",
    "softmax_cross_entropy", "softmax_cross_entropy_with_integer_labels", "squared_error"]
DIFFERENTIABLE = [n for n in OPTAX_LOSSES if n not in ("smooth_labels", "make_fenchel_young_loss")]


def _inputs(case, dtype):
    pre = f"in/{case}/"
    return R.cast({k[len(pre):]: REF[k] for k in REF.files if k.startswith(pre)}, dtype)


def _close(got, ref, tol, what):
    got = np.asarray(got, np.float64)
    ref = np.asarray(ref, np.float64)
    assert got.shape == ref.shape, (what, got.shape, ref.shape)
    assert np.array_equal(np.isnan(got), np.isnan(ref)), (what, got, ref)
    inf = np.isinf(ref)
    assert np.array_equal(got[inf], ref[inf]), (what, got, ref)
    fin = np.isfinite(ref)
    if not fin.any():
        return
    scale = max(float(np.max(np.abs(ref[fin]))), 1e-300)
    err = float(np.max(np.abs(got[fin] - ref[fin]))) / scale
    assert err <= tol, f"{what}: relative error {err:.3g} > {tol:g}\n{got}\n{ref}"


@pytest.mark.parametrize("dtype", R.DTYPES)
@pytest.mark.parametrize("case", sorted(R.CASES))
def test_matches_optax(case, dtype):
    spec = R.CASES[case]
    I = _inputs(case, dtype)
    args, kw = spec["args"](I, np)
    fn = getattr(L, spec["fn"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if spec["grad"]:
            value, grad = fn.value_and_grad(*args, **kw)
        else:
            value, grad = fn(*args, **kw), None
    tol = TOL[dtype]
    if isinstance(value, tuple):
        for i, v in enumerate(value):
            _close(v, REF[f"{dtype}/{case}/out{i}"], tol, f"{case} out{i}")
            assert np.asarray(v).dtype == np.dtype(dtype), (case, i, np.asarray(v).dtype)
    else:
        _close(value, REF[f"{dtype}/{case}/value"], tol, f"{case} value")
        assert np.asarray(value).dtype == np.dtype(dtype), (case, np.asarray(value).dtype)
    if grad is not None:
        _close(grad, REF[f"{dtype}/{case}/grad"], tol, f"{case} grad")
        assert grad.dtype == np.dtype(dtype) and grad.shape == np.shape(args[0])


def test_reference_covers_the_losses():
    have = {c["fn"] for c in R.CASES.values()}
    assert set(OPTAX_LOSSES) - {"make_fenchel_young_loss"} == have, set(OPTAX_LOSSES) ^ have


# ---------------------------------------------------------------------------
# names and signatures
# ---------------------------------------------------------------------------

OPTAX_SIGNATURES = {   # optax 0.2.8, inspect.signature (defaults as repr)
    "convex_kl_divergence": "(log_predictions, targets, axis=-1, where=None)",
    "cosine_distance": "(predictions, targets, *, epsilon=0.0, axis=-1, where=None)",
    "cosine_similarity": "(predictions, targets, *, epsilon=0.0, axis=-1, where=None)",
    "generalized_kl_divergence": "(log_predictions, targets, axis=-1, where=None)",
    "hinge_loss": "(predictor_outputs, targets)",
    "huber_loss": "(predictions, targets=None, *, delta=1.0)",
    "kl_divergence": "(log_predictions, targets, axis=-1, where=None)",
    "kl_divergence_with_log_targets": "(log_predictions, log_targets, axis=-1, where=None)",
    "l2_loss": "(predictions, targets=None)",
    "log_cosh": "(predictions, targets=None)",
    "multiclass_hinge_loss": "(scores, labels)",
    "multiclass_perceptron_loss": "(scores, labels)",
    "multiclass_sparsemax_loss": "(scores, labels)",
    "perceptron_loss": "(predictor_outputs, targets)",
    "poly_loss_cross_entropy": "(logits, labels, *, epsilon=2.0, axis=-1, where=None)",
    "safe_softmax_cross_entropy": "(logits, labels)",
    "sigmoid_binary_cross_entropy": "(logits, labels)",
    "sigmoid_focal_loss": "(logits, labels, *, alpha=None, gamma=2.0)",
    "smooth_labels": "(labels, alpha, *, axis=-1, where=None)",
    "softmax_cross_entropy": "(logits, labels, axis=-1, where=None)",
    "softmax_cross_entropy_with_integer_labels": "(logits, labels, axis=-1, where=None)",
    "sparsemax_loss": "(logits, labels)",
    "squared_error": "(predictions, targets=None)",
    "make_fenchel_young_loss": "(max_fun, *, max_fun_grad=None)",
    "ranking_softmax_loss": "(logits, labels, *, where=None, weights=None, "
                            "reduce_fn=<function mean>)",
    "ntxent": "(embeddings, labels, temperature=0.07)",
    "triplet_margin_loss": "(anchors, positives, negatives, axis=-1, norm_degree=2, "
                           "margin=1.0, eps=1e-06)",
    "binary_dice_loss": "(predictions, targets, *, smooth=1.0, apply_sigmoid=True)",
    "dice_loss": "(predictions, targets, *, class_weights=None, smooth=1.0, alpha=0.5, "
                 "beta=0.5, apply_softmax=True, reduction='mean', ignore_background=False, "
                 "axis=None)",
    "multiclass_generalized_dice_loss": "(predictions, targets, *, smooth=1.0, "
                                        "apply_softmax=True, ignore_background=False)",
    "ctc_loss": "(logits, logit_paddings, labels, label_paddings, *, blank_id=0, "
                "log_epsilon=-100000.0)",
    "ctc_loss_with_forward_probs": "(logits, logit_paddings, labels, label_paddings, *, "
                                   "blank_id=0, log_epsilon=-100000.0)",
}


@pytest.mark.parametrize("name", sorted(OPTAX_SIGNATURES))
def test_signatures(name):
    sig = re.sub(r" at 0x[0-9a-f]+", "", str(inspect.signature(getattr(L, name))))
    assert sig == OPTAX_SIGNATURES[name]


def test_all_of_optax_losses():
    assert {n for n in L.__all__ if not n.endswith("_grad")} == set(OPTAX_LOSSES)
    assert all(hasattr(L, n) for n in L.__all__)


def test_top_level_spellings():
    assert npopt.losses is L
    for name in TOP_LEVEL:
        assert getattr(npopt, name) is getattr(L, name), name


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_gradient_convention(name):
    f = getattr(L, name)
    assert f.grad is getattr(L, name + "_grad")
    assert f.value_and_grad is getattr(L, name + "_value_and_grad")
    assert f.__name__ == name and f.grad.__name__ == name + "_grad"
    assert inspect.signature(f.grad) == inspect.signature(f)
    assert f.__doc__ and ".. math::" in f.__doc__ or name == "convex_kl_divergence"


def test_convex_kl_divergence_warns():
    lp = np.log(np.full(3, 1 / 3))
    with pytest.warns(DeprecationWarning, match="generalized_kl_divergence"):
        v = L.convex_kl_divergence(lp, np.full(3, 1 / 3))
    assert v == L.generalized_kl_divergence(lp, np.full(3, 1 / 3))


# ---------------------------------------------------------------------------
# gradients against finite differences (float64)
# ---------------------------------------------------------------------------

def _fd(f, x, h=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (np.sum(f(x + e)) - np.sum(f(x - e))) / (2 * h)
    return g


def _smooth_cases(rng, shape):
    """(name, rest, kwargs) for the losses ``L.<name>(x, *rest, **kwargs)``, and x."""
    x = rng.standard_normal(shape)
    t = rng.standard_normal(shape)
    p = np.abs(rng.standard_normal(shape)) + 0.1
    p /= p.sum(-1, keepdims=True)
    pm = np.where(rng.uniform(size=shape) > 0.5, 1.0, -1.0)
    y01 = (pm > 0).astype(float)
    m = rng.uniform(size=shape) > 0.3
    m[..., 0] = True
    lab = rng.integers(0, shape[-1], shape[:-1])
    onehot = np.eye(shape[-1])[lab]
    cw = rng.uniform(0.5, 2.0, shape[-1])
    return [
        ("squared_error", (t,), {}),
        ("l2_loss", (t,), {}),
        ("huber_loss", (t,), {"delta": 0.7}),
        ("log_cosh", (t,), {}),
        ("cosine_similarity", (t,), {"epsilon": 1e-3, "where": m}),
        ("cosine_distance", (t,), {"axis": None}),
        ("sigmoid_binary_cross_entropy", (p,), {}),
        ("hinge_loss", (pm,), {}),
        ("perceptron_loss", (pm,), {}),
        ("sparsemax_loss", (y01,), {}),
        ("sigmoid_focal_loss", (p,), {"alpha": 0.3, "gamma": 1.7}),
        ("safe_softmax_cross_entropy", (p,), {}),
        ("softmax_cross_entropy", (p,), {"where": m}),
        ("softmax_cross_entropy_with_integer_labels", (lab,), {"where": m}),
        ("poly_loss_cross_entropy", (p,), {"epsilon": 1.5}),
        ("multiclass_hinge_loss", (lab,), {}),
        ("multiclass_perceptron_loss", (lab,), {}),
        ("multiclass_sparsemax_loss", (lab,), {}),
        ("kl_divergence", (p,), {"where": m}),
        ("kl_divergence_with_log_targets", (np.log(p),), {}),
        ("generalized_kl_divergence", (p,), {"axis": None}),
        ("ranking_softmax_loss", (p,), {"where": m}),
        ("ranking_softmax_loss", (p,), {"weights": p, "reduce_fn": np.sum}),
        ("triplet_margin_loss", (t, p), {}),
        ("triplet_margin_loss", (t, p), {"norm_degree": 4, "axis": 0}),
    ] + ([] if len(shape) < 2 else [
        ("dice_loss", (onehot,), {}),
        ("dice_loss", (onehot,), {"class_weights": cw, "alpha": 0.2, "beta": 0.8,
                                  "reduction": "none", "ignore_background": True}),
        ("binary_dice_loss", (y01,), {}),
        ("multiclass_generalized_dice_loss", (onehot,), {}),
    ]) + ([] if len(shape) != 2 else [
        ("ntxent", (rng.integers(0, 2, shape[0]),), {"temperature": 0.3}),
    ]), x


def _kinked(f, x, h=1e-4):
    """True near a kink of a piecewise loss (finite differences would straddle it)."""
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        left = np.sum(f(x)) - np.sum(f(x - e))
        right = np.sum(f(x + e)) - np.sum(f(x))
        if abs(left - right) > 1e-6:
            return True
    return False


@given(st.integers(0, 2**31 - 1), st.sampled_from([(6,), (3, 4), (2, 2, 3)]))
def test_gradients_match_finite_differences(seed, shape):
    rng = np.random.default_rng(seed)
    cases, x = _smooth_cases(rng, shape)
    for name, rest, kw in cases:
        fn = getattr(L, name)

        def f(z):
            return fn(z, *rest, **kw)
        if _kinked(f, x):
            continue
        np.testing.assert_allclose(fn.grad(x, *rest, **kw), _fd(f, x), rtol=1e-5, atol=1e-6,
                                   err_msg=name)


@given(st.integers(0, 2**31 - 1))
def test_float32_in_float32_out(seed):
    rng = np.random.default_rng(seed)
    cases, x = _smooth_cases(rng, (3, 4))
    x32 = x.astype(np.float32)
    for name, rest, kw in cases:
        fn = getattr(L, name)
        rest = tuple(r.astype(np.float32) if r.dtype == np.float64 else r for r in rest)
        kw = {k: (v.astype(np.float32) if getattr(v, "dtype", None) == np.float64 else v)
              for k, v in kw.items()}
        v, g = fn.value_and_grad(x32, *rest, **kw)
        assert np.asarray(v).dtype == np.float32 and g.dtype == np.float32, name
        np.testing.assert_array_equal(np.asarray(fn(x32, *rest, **kw)), np.asarray(v))
        np.testing.assert_array_equal(fn.grad(x32, *rest, **kw), g)


@given(st.integers(0, 2**31 - 1))
def test_ctc_gradient_matches_finite_differences(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 5, 3))
    xpad = np.zeros((2, 5))
    xpad[1, 3:] = 1.0
    lab = rng.integers(1, 3, (2, 2))
    lpad = np.zeros((2, 2))
    lpad[1, 1] = 1.0

    def f(z):
        return L.ctc_loss(z, xpad, lab, lpad)
    np.testing.assert_allclose(L.ctc_loss.grad(x, xpad, lab, lpad), _fd(f, x), rtol=1e-5,
                               atol=1e-6)
    v, phi, emit = L.ctc_loss_with_forward_probs(x, xpad, lab, lpad)
    assert phi.shape == (5, 2, 3) and emit.shape == (5, 2, 2)
    np.testing.assert_array_equal(v, f(x))


def test_ctc_is_the_alignment_sum():
    """One frame, one label: -log p(label); two frames, label "a": the three
    alignments (a a, blank a, a blank)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 2, 3))
    p = npopt._math.exp(x) / np.sum(npopt._math.exp(x), axis=-1, keepdims=True)
    a = 1
    want = -npopt._math.log(p[0, 0, a] * p[0, 1, a] + p[0, 0, 0] * p[0, 1, a]
                            + p[0, 0, a] * p[0, 1, 0])
    got = L.ctc_loss(x, np.zeros((1, 2)), np.array([[a]]), np.zeros((1, 1)))
    np.testing.assert_allclose(got[0], want, rtol=1e-12)


def test_empty_batch():
    """A batch of no example gives no value and an empty gradient."""
    x = np.zeros((0, 4))
    lab = np.zeros(0, int)
    for name, args in [("softmax_cross_entropy", (x, x)), ("squared_error", (x, x)),
                       ("cosine_similarity", (x, x)), ("kl_divergence", (x, x)),
                       ("softmax_cross_entropy_with_integer_labels", (x, lab)),
                       ("multiclass_hinge_loss", (x, lab)), ("sigmoid_focal_loss", (x, x)),
                       ("poly_loss_cross_entropy", (x, x)), ("log_cosh", (x,))]:
        v, g = getattr(L, name).value_and_grad(*args)
        assert np.shape(v) == x.shape[:np.ndim(v)] and g.shape == x.shape, name


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------

X = np.zeros((3, 4))


@pytest.mark.parametrize("call, err, match", [
    (lambda: L.squared_error(X, np.zeros((4,))), ValueError, "targets: expected the shape"),
    (lambda: L.squared_error(np.zeros(3, int)), TypeError, "predictions: expected float"),
    (lambda: L.huber_loss(X, np.zeros((2,))), ValueError, "targets: .*broadcastable"),
    (lambda: L.huber_loss(X, X, delta=-1.0), ValueError, "delta"),
    (lambda: L.cosine_similarity(X, X, axis=2), ValueError, "axis: axis 2 is out of bounds"),
    (lambda: L.cosine_similarity(X, np.zeros((2, 4))), ValueError, "targets"),
    (lambda: L.cosine_similarity(X, X, where=np.ones(3, bool)), ValueError, "where"),
    (lambda: L.softmax_cross_entropy(X, X, axis=(0, 0)), ValueError, "axis: repeated"),
    (lambda: L.softmax_cross_entropy(X, X, axis=1.5), TypeError, "axis"),
    (lambda: L.softmax_cross_entropy(X, np.zeros((5,))), ValueError, "labels"),
    (lambda: L.softmax_cross_entropy_with_integer_labels(X, np.zeros(3)), TypeError,
     "labels: expected integer"),
    (lambda: L.softmax_cross_entropy_with_integer_labels(X, np.array([0, 1, 4])), ValueError,
     r"labels: expected class indices in \[0, 4\), got 4"),
    (lambda: L.softmax_cross_entropy_with_integer_labels(X, np.zeros(4, int)), ValueError,
     "labels: expected shape"),
    (lambda: L.softmax_cross_entropy_with_integer_labels(X, np.zeros(3, int), axis=None),
     TypeError, "axis"),
    (lambda: L.multiclass_hinge_loss(X, np.array([0, 1, -1])), ValueError, "labels"),
    (lambda: L.perceptron_loss(X, np.zeros((4,))), ValueError, "targets: expected the shape"),
    (lambda: L.kl_divergence(X, np.zeros((2, 4))), ValueError, "targets"),
    (lambda: L.kl_divergence(X, X, axis=-3), ValueError, "axis"),
    (lambda: L.kl_divergence(X, X.astype(int)), TypeError, "targets"),
    (lambda: L.poly_loss_cross_entropy(X, X, where=np.ones(4, bool)), ValueError, "where"),
    (lambda: L.sigmoid_focal_loss(X, X, gamma="2"), TypeError, "gamma"),
    (lambda: L.smooth_labels(X, 0.1, axis=5), ValueError, "axis"),
    (lambda: L.make_fenchel_young_loss(3), TypeError, "max_fun"),
    (lambda: L.ranking_softmax_loss.grad(X, X, reduce_fn=np.max), TypeError, "reduce_fn"),
    (lambda: L.ranking_softmax_loss(X, X, where=np.ones(5, bool)), ValueError, "where"),
    (lambda: L.ntxent(X, np.zeros(4, int)), ValueError, "labels: expected shape"),
    (lambda: L.ntxent(np.zeros(3), np.zeros(3, int)), ValueError, "embeddings"),
    (lambda: L.triplet_margin_loss(X, X, np.zeros((2, 4))), ValueError, "negatives"),
    (lambda: L.triplet_margin_loss(X, X, X, axis=(0, 1)), TypeError, "axis"),
    (lambda: L.dice_loss(X, np.zeros((3, 5))), ValueError, "targets"),
    (lambda: L.dice_loss(X, X, reduction="max"), ValueError, "reduction"),
    (lambda: L.dice_loss(X, X, apply_softmax=False), ValueError, "sum to 1"),
    (lambda: L.dice_loss(X, X, class_weights=np.ones((2, 2))), ValueError, "class_weights"),
    (lambda: L.multiclass_generalized_dice_loss(X, np.zeros((3, 5))), ValueError, "targets"),
    (lambda: L.ctc_loss(X, X, np.zeros((3, 2), int), np.zeros((3, 2))), ValueError,
     "logits: expected shape"),
    (lambda: L.ctc_loss(np.zeros((2, 3, 4)), np.zeros((2, 3)), np.zeros((3, 2), int),
                        np.zeros((3, 2))), ValueError, "labels: expected batch size 2"),
    (lambda: L.ctc_loss(np.zeros((2, 3, 4)), np.zeros((2, 4)), np.zeros((2, 2), int),
                        np.zeros((2, 2))), ValueError, "logit_paddings"),
    (lambda: L.ctc_loss(np.zeros((2, 3, 4)), np.zeros((2, 3)), np.full((2, 2), 4),
                        np.zeros((2, 2))), ValueError, r"labels: expected class indices"),
    (lambda: L.ctc_loss(np.zeros((2, 3, 4)), np.zeros((2, 3)), np.zeros((2, 2), int),
                        np.zeros((2, 2)), blank_id=4), ValueError, "blank_id"),
])
def test_bad_input(call, err, match):
    with pytest.raises(err, match=match):
        call()


# ---------------------------------------------------------------------------
# Fenchel-Young
# ---------------------------------------------------------------------------

def _lse(s):
    m = np.max(s)
    return m + npopt._math.log(np.sum(npopt._math.exp(s - m)))


def _softmax(s):
    e = npopt._math.exp(s - np.max(s))
    return e / np.sum(e)


def test_fenchel_young_logsumexp_is_softmax_cross_entropy():
    rng = np.random.default_rng(0)
    s = rng.standard_normal((5, 4))
    y = np.eye(4)[[0, 3, 1, 1, 2]]
    fy = L.make_fenchel_young_loss(_lse, max_fun_grad=_softmax)
    v, g = fy.value_and_grad(s, y)
    v2, g2 = L.softmax_cross_entropy.value_and_grad(s, y)
    np.testing.assert_allclose(v, v2, rtol=1e-12)
    np.testing.assert_allclose(g, g2, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(fy(s, y), v)
    np.testing.assert_array_equal(fy.grad(s, y), g)


def test_fenchel_young_without_gradient_says_so():
    fy = L.make_fenchel_young_loss(_lse)
    s = np.zeros(3)
    assert fy(s, np.eye(3)[0]) == pytest.approx(np.log(3))
    with pytest.raises(TypeError, match="max_fun_grad"):
        fy.grad(s, np.eye(3)[0])
