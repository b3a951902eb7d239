"""npopt.loss and npopt.objective: jaxopt 0.8.5's losses and objectives, with
their gradients.

* Reference: values and gradients (``jax.grad``, x64) of every case of
  tests/reference/make_prox_loss_reference.py to 1e-10 (float64) / 1e-5
  (float32), relative to each output's magnitude; dtypes preserved. The
  inputs include kinks, where npopt returns JAX's subgradient.
* The gradient convention: ``f``, ``f_grad``, ``f_value_and_grad``,
  ``f.grad``, ``f.value_and_grad`` agree for every loss and objective.
* Properties (hypothesis): gradients against central finite differences;
  batched multiclass losses equal the per-sample ones (``jax.vmap``); the
  Fenchel-Young construction reproduces the logistic loss.
* The value-and-grad forms drive npopt's solvers (``value_and_grad=True``).
* Bad input: errors naming the argument.
"""
import types

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import npopt
import npopt.loss as L
import npopt.objective as O
import npopt.prox
from conftest import TOL, rel_err
from npopt import tree as T
from reference import fixed_order as fo
from reference import make_prox_loss_reference as R

NS = types.SimpleNamespace(prox=npopt.prox, loss=L, objective=O)
REF = np.load(R.OUT)
F64 = np.float64

LOSSES = ["binary_logistic_loss", "binary_sparsemax_loss", "binary_hinge_loss",
          "binary_perceptron_loss", "multiclass_logistic_loss", "multiclass_sparsemax_loss",
          "multiclass_hinge_loss", "multiclass_perceptron_loss", "huber_loss",
          "sparse_plus", "sparse_sigmoid"]
OBJECTIVES = ["least_squares", "ridge_regression", "binary_logreg", "multiclass_logreg",
              "multiclass_logreg_with_intercept", "l2_multiclass_logreg",
              "l2_multiclass_logreg_with_intercept", "multiclass_linear_svm_dual"]


# ---------------------------------------------------------------------------
# reference values and gradients (jaxopt + jax.grad, x64)
# ---------------------------------------------------------------------------

def _inputs(name, dtype):
    pre = f"{dtype}/{name}/in/"
    return {k[len(pre):]: REF[k] for k in REF.files if k.startswith(pre)}


@pytest.mark.parametrize("dtype", R.DTYPES)
@pytest.mark.parametrize("case", sorted({**R.LOSS_CASES, **R.OBJECTIVE_CASES}))
def test_matches_jaxopt(case, dtype):
    I = _inputs(case, dtype)
    # the stored inputs have the case's keys, shapes and dtypes (values may
    # differ if NumPy's generators change; the stored ones are used)
    made = R.case_inputs(case, dtype)
    assert sorted(made) == sorted(I)
    assert all(I[k].shape == v.shape and I[k].dtype == v.dtype for k, v in made.items())
    value, grad = R.CASES[case]["call"](NS, I)
    outs = [value] + T.tree_leaves(grad)
    n_ref = len([k for k in REF.files if k.startswith(f"{dtype}/{case}/out/")])
    assert len(outs) == n_ref
    for i, o in enumerate(outs):
        ref = REF[f"{dtype}/{case}/out/{i}"]
        assert np.shape(o) == ref.shape, i
        assert np.asarray(o).dtype == np.dtype(dtype), i    # jaxopt sometimes promotes; npopt not
        assert rel_err(o, ref) <= TOL[np.dtype(dtype)], (i, rel_err(o, ref))


def test_kinks_follow_jax():
    """The subgradients JAX's autodiff picks, spelled out."""
    assert L.binary_hinge_loss_grad(1, 1.0) == -0.5          # max(0, 0): half
    assert L.binary_perceptron_loss_grad(0, 0.0) == 0.5
    assert L.sparse_sigmoid_grad(1.0) == 0.25 and L.sparse_sigmoid_grad(-1.0) == 0.25
    np.testing.assert_allclose(L.multiclass_perceptron_loss_grad(0, np.array([1.0, 1, 1])),
                               [-2 / 3, 1 / 3, 1 / 3])
    assert L.huber_loss_grad(1.0, 1.0) == 0.0
    # softmax_y ~ 1: the label's entry is -(sum of the others), not p_y - 1
    g = L.multiclass_logistic_loss_grad(0, np.array([40.0, 0.0, 0.0]))
    np.testing.assert_allclose(g[0], -2 * np.exp(-40.0), rtol=1e-14)


# ---------------------------------------------------------------------------
# the gradient convention
# ---------------------------------------------------------------------------

def _loss_args(name, rng, dtype=F64):
    if name.startswith("multiclass"):
        return rng.integers(0, 4, 6), rng.standard_normal((6, 4)).astype(dtype)
    if name.startswith("binary"):
        return rng.integers(0, 2, 7), rng.standard_normal(7).astype(dtype)
    if name == "huber_loss":
        return rng.standard_normal(7), (2 * rng.standard_normal(7)).astype(dtype)
    return ((2 * rng.standard_normal(7)).astype(dtype),)


@pytest.mark.parametrize("name", LOSSES)
def test_loss_convention(name):
    f = getattr(L, name)
    fg, fvg = getattr(L, name + "_grad"), getattr(L, name + "_value_and_grad")
    assert f.grad is fg and f.value_and_grad is fvg
    assert {name, name + "_grad", name + "_value_and_grad"} <= set(L.__all__)
    args = _loss_args(name, np.random.default_rng(0))
    v, g = fvg(*args)
    np.testing.assert_array_equal(f(*args), v)
    np.testing.assert_array_equal(fg(*args), g)
    assert np.shape(g) == np.shape(args[-1])
    # one sample: NumPy scalars out
    one = tuple(a[0] for a in args)
    assert np.ndim(f(*one)) == 0 and np.shape(fg(*one)) == np.shape(args[-1][0])


def _objective_args(name, rng, dtype=F64):
    X = rng.standard_normal((9, 3)).astype(dtype)
    if name in ("least_squares", "ridge_regression"):
        params, y = rng.standard_normal(3).astype(dtype), rng.standard_normal(9).astype(dtype)
    elif name == "binary_logreg":
        params, y = rng.standard_normal(3).astype(dtype), rng.integers(0, 2, 9)
    elif name == "multiclass_linear_svm_dual":
        params = rng.dirichlet(np.ones(4), 9).astype(dtype)
        y = np.eye(4, dtype=dtype)[rng.integers(0, 4, 9)]
    else:
        params, y = rng.standard_normal((3, 4)).astype(dtype), rng.integers(0, 4, 9)
        if "intercept" in name:
            params = (params, rng.standard_normal(4).astype(dtype))
    reg = ("ridge_regression", "l2_multiclass_logreg", "l2_multiclass_logreg_with_intercept",
           "multiclass_linear_svm_dual")
    return (params, 0.3, (X, y)) if name in reg else (params, (X, y))


@pytest.mark.parametrize("name", OBJECTIVES)
def test_objective_convention(name):
    f = getattr(O, name)
    fg, fvg = getattr(O, name + "_grad"), getattr(O, name + "_value_and_grad")
    assert {name, name + "_grad", name + "_value_and_grad"} <= set(O.__all__)
    args = _objective_args(name, np.random.default_rng(1))
    v, g = fvg(*args)
    v2, g2 = f.value_and_grad(*args)
    assert np.ndim(v) == 0 and f(*args) == v == v2
    assert T.tree_structure(g) == T.tree_structure(args[0])
    for a, b, c, p in zip(T.tree_leaves(g), T.tree_leaves(fg(*args)),
                          T.tree_leaves(f.grad(*args)), T.tree_leaves(args[0])):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
        assert a.shape == p.shape


@pytest.mark.parametrize("name", OBJECTIVES)
def test_objectives_keep_float32(name):
    args = _objective_args(name, np.random.default_rng(2), np.float32)
    v, g = getattr(O, name + "_value_and_grad")(*args)
    assert np.asarray(v).dtype == np.float32
    assert all(leaf.dtype == np.float32 for leaf in T.tree_leaves(g))


# ---------------------------------------------------------------------------
# gradients against central finite differences
# ---------------------------------------------------------------------------

def _fd(f, x, h=1e-6):
    """Central differences of a scalar f at the array x."""
    x = np.array(x, F64)
    g = np.empty_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def _far_from(values, kinks, margin=1e-3):
    v = np.asarray(values)[..., None]
    return bool(np.all(np.abs(v - np.asarray(kinks)) > margin))


finite = st.floats(-4, 4, allow_nan=False, allow_subnormal=False)


@given(hnp.arrays(F64, 5, elements=finite), hnp.arrays(np.int64, 5, elements=st.integers(0, 1)))
def test_binary_loss_gradients(pred, label):
    margin = pred * (2.0 * label - 1)          # the kinks, in terms of the margin
    for name, kinks in (("binary_logistic_loss", []), ("binary_sparsemax_loss", [-1, 1]),
                        ("binary_hinge_loss", [1]), ("binary_perceptron_loss", [0])):
        if not _far_from(margin, kinks):
            continue
        f = getattr(L, name)
        np.testing.assert_allclose(getattr(L, name + "_grad")(label, pred),
                                   _fd(lambda p: np.sum(f(label, p)), pred), atol=1e-7,
                                   err_msg=name)


@given(hnp.arrays(F64, 6, elements=finite), hnp.arrays(F64, 6, elements=finite),
       st.floats(0.1, 2))
def test_huber_and_sparse_gradients(pred, target, delta):
    if _far_from(np.abs(target - pred) - delta, [0]) and _far_from(pred - target, [0]):
        np.testing.assert_allclose(
            L.huber_loss_grad(target, pred, delta),
            _fd(lambda p: np.sum(L.huber_loss(target, p, delta)), pred), atol=1e-7)
    if _far_from(pred, [-1, 1]):
        for name in ("sparse_plus", "sparse_sigmoid"):
            f = getattr(L, name)
            np.testing.assert_allclose(getattr(L, name + "_grad")(pred),
                                       _fd(lambda p: np.sum(f(p)), pred), atol=1e-7)


@given(hnp.arrays(F64, (3, 4), elements=finite),
       hnp.arrays(np.int64, 3, elements=st.integers(0, 3)))
def test_multiclass_loss_gradients(scores, label):
    f = L.multiclass_logistic_loss
    np.testing.assert_allclose(L.multiclass_logistic_loss_grad(label, scores),
                               _fd(lambda s: np.sum(f(label, s)), scores), atol=1e-7)
    # sparsemax: smooth away from support changes (finite differences agree there)
    g = L.multiclass_sparsemax_loss_grad(label, scores)
    fd = _fd(lambda s: np.sum(L.multiclass_sparsemax_loss(label, s)), scores)
    np.testing.assert_allclose(g, fd, atol=1e-5)
    # hinge and perceptron: away from ties of the maximum
    for name, z in (("multiclass_hinge_loss", scores + 1 - np.eye(4)[label]),
                    ("multiclass_perceptron_loss", scores)):
        top2 = np.sort(z, axis=-1)[:, -2:]
        if np.all(top2[:, 1] - top2[:, 0] > 1e-3):
            f = getattr(L, name)
            np.testing.assert_allclose(getattr(L, name + "_grad")(label, scores),
                                       _fd(lambda s: np.sum(f(label, s)), scores), atol=1e-7)


@pytest.mark.parametrize("name", OBJECTIVES)
@pytest.mark.parametrize("seed", range(3))
def test_objective_gradients(name, seed):
    args = _objective_args(name, np.random.default_rng(10 + seed))
    f = getattr(O, name)
    flat, unravel = T.ravel(args[0])
    g, _ = T.ravel(f.grad(*args))
    fd = _fd(lambda p: f(unravel(p), *args[1:]), flat)
    np.testing.assert_allclose(g, fd, rtol=1e-7, atol=1e-8)


# ---------------------------------------------------------------------------
# batches, Fenchel-Young losses, solvers
# ---------------------------------------------------------------------------

@given(hnp.arrays(F64, (4, 3), elements=finite),
       hnp.arrays(np.int64, 4, elements=st.integers(0, 2)))
def test_batched_multiclass_is_vmap(scores, label):
    for name in LOSSES[4:8]:
        vg = getattr(L, name + "_value_and_grad")
        v, g = vg(label, scores)
        for i in range(4):
            vi, gi = vg(label[i], scores[i])
            assert v[i] == vi
            np.testing.assert_array_equal(g[i], gi)


@given(hnp.arrays(F64, 5, elements=finite), st.integers(0, 4))
def test_fenchel_young_logsumexp_is_logistic(scores, label):
    def lse(s):               # fo: the C library's exp/log, not NumPy's SIMD ones
        m = np.max(s)
        return m + fo.log(np.sum(fo.exp(s - m)))

    def softmax(s):
        e = fo.exp(s - np.max(s))
        return e / e.sum()
    fy = L.make_fenchel_young_loss(lse, max_fun_grad=softmax)
    y = np.eye(5)[label]
    np.testing.assert_allclose(fy(y, scores), L.multiclass_logistic_loss(label, scores),
                               rtol=1e-12, atol=1e-12)
    v, g = fy.value_and_grad(y, scores)
    np.testing.assert_allclose(g, L.multiclass_logistic_loss_grad(label, scores), atol=1e-14)
    assert v == fy(y, scores)
    with pytest.raises(TypeError, match="max_fun_grad"):
        L.make_fenchel_young_loss(lse).grad(y, scores)


def test_solvers_take_the_value_and_grad_forms():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((40, 5))
    y = fo.mv(X, rng.standard_normal(5)) + 0.1 * rng.standard_normal(40)   # no BLAS
    gd = npopt.GradientDescent(fun=O.least_squares.value_and_grad, value_and_grad=True,
                               tol=1e-10, maxiter=5000)
    w = gd.run(np.zeros(5), data=(X, y)).params
    np.testing.assert_allclose(w, np.linalg.lstsq(X, y, rcond=None)[0], rtol=1e-7)
    # ridge regression: the normal equations (X^T X / n + l2reg I) w = X^T y / n
    gd = npopt.GradientDescent(fun=O.ridge_regression_value_and_grad, value_and_grad=True,
                               tol=1e-10, maxiter=5000)
    w = gd.run(np.zeros(5), 0.5, data=(X, y)).params
    n = X.shape[0]
    np.testing.assert_allclose(w, np.linalg.solve(X.T @ X / n + 0.5 * np.eye(5), X.T @ y / n),
                               rtol=1e-7)
    # l2-regularised multiclass logistic regression: stationary point
    labels = rng.integers(0, 3, 40)
    gd = npopt.GradientDescent(fun=O.l2_multiclass_logreg_with_intercept_value_and_grad,
                               value_and_grad=True, tol=1e-9, maxiter=5000)
    params = gd.run((np.zeros((5, 3)), np.zeros(3)), l2reg=0.1, data=(X, labels)).params
    gW, gb = O.l2_multiclass_logreg_with_intercept_grad(params, 0.1, (X, labels))
    assert np.linalg.norm(gW) < 1e-8 and np.linalg.norm(gb) < 1e-8


def test_composite_linear_function_subclass():
    """A user's CompositeLinearFunction gets value_and_grad from subfun_grad."""
    class Quadratic(O.CompositeLinearFunction):
        def make_linop(self, A):
            return O.LinearOperator(A)

        def subfun(self, predictions, A):
            return 0.5 * fo.vdot(predictions, predictions)

        def subfun_grad(self, predictions, A):
            return predictions

        def b(self, A):
            return np.ones(A.shape[1])

    A = np.random.default_rng(5).standard_normal((4, 3))
    x = np.arange(3.0)
    f = Quadratic()
    v, g = f.value_and_grad(x, A)
    Ax = fo.mv(A, x)          # no BLAS: the same bits on every CPU
    assert v == f(x, A) == 0.5 * fo.vdot(Ax, Ax) + x.sum()
    np.testing.assert_allclose(g, A.T @ A @ x + 1)

    class NoGrad(Quadratic):
        subfun_grad = O.CompositeLinearFunction.subfun_grad
    with pytest.raises(NotImplementedError, match="subfun_grad"):
        NoGrad().grad(x, A)
    lin = O.LinearOperator(A)
    np.testing.assert_allclose(lin.update_matvec(lin.matvec(x), 2.0, 1), A @ (x + [0, 2, 0]))
    np.testing.assert_allclose(O.least_squares.columnwise_lipschitz_const((A, np.zeros(4))),
                               (A ** 2).sum(0))


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------

X = np.ones((4, 3))


@pytest.mark.parametrize("call, err, match", [
    (lambda: L.binary_logistic_loss(np.array([0, 1, 2]), np.zeros(3)), ValueError,
     "label: expected binary labels 0 or 1, got 2"),
    (lambda: L.binary_hinge_loss(np.array([0, 1]), np.zeros(3)), ValueError,
     r"label: expected a scalar or an array broadcastable to the shape \(3,\) of score"),
    (lambda: L.binary_sparsemax_loss(0.5, 1.0), ValueError, "label: expected binary labels"),
    (lambda: L.binary_logistic_loss("a", 1.0), TypeError, "label: expected 0 or 1"),
    (lambda: L.binary_logistic_loss(1, "a"), TypeError, "logit: expected"),
    (lambda: L.multiclass_logistic_loss(5, np.zeros(3)), ValueError,
     r"label: expected class labels in \[0, 3\), got 5"),
    (lambda: L.multiclass_hinge_loss(-1, np.zeros(3)), ValueError, r"label: expected class labels"),
    (lambda: L.multiclass_sparsemax_loss(np.array([0, 1]), np.zeros((3, 4))), ValueError,
     r"label: expected shape \(3,\)"),
    (lambda: L.multiclass_perceptron_loss(1.0, np.zeros(3)), TypeError,
     "label: expected integer class labels"),
    (lambda: L.multiclass_logistic_loss(0, 1.0), ValueError, r"scores: expected an array of shape"),
    (lambda: L.huber_loss(np.zeros(2), np.zeros(3)), ValueError,
     r"target: expected a scalar or an array broadcastable to the shape \(3,\) of pred"),
    (lambda: L.huber_loss(0.0, 1.0, delta=-1.0), ValueError,
     "delta: expected a finite number >= 0"),
    (lambda: L.make_fenchel_young_loss(3), TypeError, "max_fun: expected a callable"),
    (lambda: O.least_squares(np.ones(3), X), TypeError, r"data: expected a tuple \(X, y\)"),
    (lambda: O.least_squares(np.ones(2), (X, np.ones(4))), ValueError,
     r"W: expected shape \(3,\) or \(3, k\) to match X of shape \(4, 3\), got shape \(2,\)"),
    (lambda: O.least_squares(np.ones(3), (X, np.ones(5))), ValueError,
     r"data\[1\] \(y\): expected shape \(4,\)"),
    (lambda: O.least_squares(np.ones(3), (np.ones(4), np.ones(4))), ValueError,
     r"data\[0\] \(X\): expected a matrix"),
    (lambda: O.ridge_regression(np.ones(3), -1.0, (X, np.ones(4))), ValueError,
     "l2reg: expected a finite number >= 0"),
    (lambda: O.binary_logreg(np.ones(3), (X, np.array([0, 1, 2, 0]))), ValueError,
     r"data\[1\] \(y\): expected binary labels"),
    (lambda: O.multiclass_logreg(np.ones((3, 2)), (X, np.array([0, 1, 2, 0]))), ValueError,
     r"data\[1\] \(y\): expected class labels in \[0, 2\)"),
    (lambda: O.multiclass_logreg(np.ones((3, 2)), (X, np.zeros(4))), TypeError,
     r"data\[1\] \(y\): expected integer class labels"),
    (lambda: O.multiclass_logreg(np.ones(3), (X, np.zeros(4, int))), ValueError,
     r"W: expected shape \(3, k\)"),
    (lambda: O.multiclass_logreg_with_intercept(np.ones((3, 2)), (X, np.zeros(4, int))),
     TypeError, r"params: expected a tuple \(W, b\)"),
    (lambda: O.multiclass_logreg_with_intercept((np.ones((3, 2)), np.ones(3)),
                                                (X, np.zeros(4, int))), ValueError,
     r"params\[1\] \(b\): expected shape \(2,\)"),
    (lambda: O.l2_multiclass_logreg(np.ones((3, 2)), np.nan, (X, np.zeros(4, int))),
     ValueError, "l2reg: expected a finite number"),
    (lambda: O.multiclass_linear_svm_dual(np.ones((4, 2)), 0.0, (X, np.ones((4, 2)))),
     ValueError, "l2reg: expected a finite number > 0"),
    (lambda: O.multiclass_linear_svm_dual(np.ones((4, 3)), 1.0, (X, np.ones((4, 2)))),
     ValueError, r"params: expected the shape \(4, 2\) of Y"),
])
def test_bad_input(call, err, match):
    with pytest.raises(err, match=match):
        call()
