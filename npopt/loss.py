r"""Loss functions of ``jaxopt.loss``, each with its gradient.

Arguments come in jaxopt's order, **label first, prediction second**
(``binary_logistic_loss(label, logit)``; optax uses ``(logits, labels)``).

The gradient convention (npopt has no autodiff)
-----------------------------------------------

For every loss ``f(label, prediction)`` there are

* ``f_grad(label, prediction)``: the gradient of ``f`` with respect to the
  prediction, what ``jax.grad(f, argnums=1)`` gives (``jax.vmap`` of it for
  batches), with the prediction's shape and dtype;
* ``f_value_and_grad(label, prediction) -> (value, grad)``;

also reachable as attributes, ``f.grad`` and ``f.value_and_grad``. At kinks
the (sub)gradient is the one JAX's autodiff returns: ``max(a, b)`` splits
the derivative half-half when ``a == b``, ``jnp.max`` splits it evenly among
tied maxima, ``|0|`` has derivative 0. ``sparse_plus`` and ``sparse_sigmoid``
take one argument: ``sparse_plus_grad(x)`` is ``sparse_sigmoid(x)``.

Shapes (npopt extends jaxopt to batches, as ``jax.vmap`` would):

* binary losses and ``huber_loss``: elementwise; ``label`` (or ``target``)
  must be a scalar or broadcastable to the prediction's shape, which is the
  shape of the value;
* multiclass losses: ``scores`` of shape ``(..., n_classes)`` and integer
  ``label`` of shape ``(...)`` with values in ``[0, n_classes)``; the value
  has shape ``(...)`` (a scalar for one sample).

Values are computed in the prediction's dtype (float32 stays float32); a
0-d result is returned as a NumPy scalar. Binary labels must be 0 or 1
(booleans, integers or floats), class labels integers.

References: Blondel, Martins & Niculae, "Learning with Fenchel-Young losses",
JMLR 2020 (logistic, sparsemax, perceptron and hinge losses as Fenchel-Young
losses; sparse_plus §4.4); Martins & Astudillo, "From softmax to sparsemax",
ICML 2016; Huber, "Robust estimation of a location parameter", Ann. Math.
Statist. 1964; Collins, "Discriminative training methods for hidden Markov
models", EMNLP 2002 (perceptron); Crammer & Singer, "On the algorithmic
implementation of multiclass kernel-based vector machines", JMLR 2001
(multiclass hinge).
"""
import numpy as np

from . import _dense, _math
from ._checks import _describe, check_number

__all__ = [
    "binary_logistic_loss", "binary_sparsemax_loss", "binary_hinge_loss",
    "binary_perceptron_loss", "multiclass_logistic_loss", "multiclass_sparsemax_loss",
    "multiclass_hinge_loss", "multiclass_perceptron_loss", "huber_loss",
    "make_fenchel_young_loss", "sparse_plus", "sparse_sigmoid",
    "binary_logistic_loss_grad", "binary_logistic_loss_value_and_grad",
    "binary_sparsemax_loss_grad", "binary_sparsemax_loss_value_and_grad",
    "binary_hinge_loss_grad", "binary_hinge_loss_value_and_grad",
    "binary_perceptron_loss_grad", "binary_perceptron_loss_value_and_grad",
    "multiclass_logistic_loss_grad", "multiclass_logistic_loss_value_and_grad",
    "multiclass_sparsemax_loss_grad", "multiclass_sparsemax_loss_value_and_grad",
    "multiclass_hinge_loss_grad", "multiclass_hinge_loss_value_and_grad",
    "multiclass_perceptron_loss_grad", "multiclass_perceptron_loss_value_and_grad",
    "huber_loss_grad", "huber_loss_value_and_grad",
    "sparse_plus_grad", "sparse_plus_value_and_grad",
    "sparse_sigmoid_grad", "sparse_sigmoid_value_and_grad",
]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# ---------------------------------------------------------------------------
# argument handling
# ---------------------------------------------------------------------------

def _pred(name, x):
    """A float32/float64 array (integers and Python numbers become float64)."""
    if isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{name}: expected real numbers, got {x!r}")
    try:
        arr = np.asarray(x)
    except Exception:  # noqa: BLE001 - anything numpy cannot read
        raise TypeError(f"{name}: expected an array of real numbers, got {_describe(x)}") \
            from None
    if arr.dtype in _FLOATS:
        return arr
    if arr.dtype.kind in "iu":
        return arr.astype(np.float64)
    raise TypeError(f"{name}: expected float32 or float64 numbers, got {_describe(x)}")


def _broadcastable(name, arr, shape, other):
    try:
        ok = np.broadcast_shapes(arr.shape, shape) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{name}: expected a scalar or an array broadcastable to the shape "
                         f"{tuple(shape)} of {other}, got shape {arr.shape}")


def _binary_label(label, pred, other):
    """±1 sign array (in pred's dtype) and the boolean label, checked."""
    try:
        lab = np.asarray(label)
    except Exception:  # noqa: BLE001
        raise TypeError(f"label: expected 0 or 1, got {_describe(label)}") from None
    if lab.dtype.kind not in "biuf":
        raise TypeError(f"label: expected 0 or 1, got {_describe(label)}")
    _broadcastable("label", lab, pred.shape, other)
    is_one = lab == 1
    if not np.all(is_one | (lab == 0)):
        bad = lab[~(is_one | (lab == 0))].flat[0]
        raise ValueError(f"label: expected binary labels 0 or 1, got {bad.item()!r}")
    return is_one


def _class_label(label, scores):
    """Integer labels of shape scores.shape[:-1], values in [0, n_classes)."""
    if scores.ndim < 1 or scores.shape[-1] == 0:
        raise ValueError(f"scores: expected an array of shape (..., n_classes), "
                         f"n_classes >= 1, got {_describe(scores)}")
    if isinstance(label, (bool, np.bool_)):
        raise TypeError(f"label: expected an integer class label, got {label!r}")
    lab = np.asarray(label)
    if lab.dtype.kind not in "iu":
        raise TypeError(f"label: expected integer class labels, got {_describe(label)}")
    if lab.shape != scores.shape[:-1]:
        raise ValueError(f"label: expected shape {scores.shape[:-1]} (one label per row of "
                         f"scores of shape {scores.shape}), got shape {lab.shape}")
    k = scores.shape[-1]
    if lab.size and (lab.min() < 0 or lab.max() >= k):
        bad = lab[(lab < 0) | (lab >= k)].flat[0]
        raise ValueError(f"label: expected class labels in [0, {k}), got {bad.item()!r}")
    return lab.astype(np.intp)


def _out(x):
    """0-d arrays become NumPy scalars (as NumPy's ufuncs return)."""
    x = np.asarray(x)
    return x[()] if x.ndim == 0 else x


def _with_grad(value_fn, grad_fn, vg_fn):
    value_fn.grad = grad_fn
    value_fn.value_and_grad = vg_fn
    return value_fn


def _take(a, idx):
    """a[..., idx[...]] for a of shape (..., k) and idx of shape (...)."""
    return np.take_along_axis(a, idx[..., None], axis=-1)[..., 0]


def _one_hot(label, scores):
    onehot = np.zeros(scores.shape, scores.dtype)
    np.put_along_axis(onehot, label[..., None], 1, axis=-1)
    return onehot


# ---------------------------------------------------------------------------
# elementwise building blocks
# ---------------------------------------------------------------------------

def _softplus(z):
    """log(1 + e^z) = max(z, 0) + log1p(exp(-|z|)) (jnp.logaddexp(z, 0))."""
    with np.errstate(invalid="ignore"):
        return np.maximum(z, 0) + _math.log1p(_math.exp(-np.abs(z)))


def _softplus_vg(z):
    """softplus and its derivative exp(z - softplus(z)) (jax's logaddexp JVP)."""
    v = _softplus(z)
    inf = np.isposinf
    with np.errstate(invalid="ignore", over="ignore"):
        d = _math.exp(np.where(inf(z), 0, z) - np.where(inf(v), 0, v)).astype(z.dtype)
    return v, d


def _max0_vg(a):
    """max(0, a) and its derivative in a: 1, 1/2 at a == 0 (JAX's tie rule), 0."""
    t = a.dtype.type
    d = np.where(a > 0, t(1), np.where(a == 0, t(0.5), t(0))).astype(a.dtype)
    return np.maximum(t(0), a), d


def _sparse_plus_vg(x):
    zero, one = x.dtype.type(0), x.dtype.type(1)
    v = np.where(x <= -1, zero, np.where(x >= 1, x, (x + one) ** 2 / x.dtype.type(4)))
    d = np.where(x <= -1, zero, np.where(x >= 1, one, (x + one) / x.dtype.type(2)))
    return v.astype(x.dtype), d.astype(x.dtype)


def _sparse_sigmoid_vg(x):
    """0.5 * clip(x + 1, 0, 2); clip = min(max(.)) splits ties half-half."""
    half = x.dtype.type(0.5)
    y = x + x.dtype.type(1)
    v = half * np.minimum(np.maximum(y, 0), x.dtype.type(2))
    d = np.where((y > 0) & (y < 2), half,
                 np.where((y == 0) | (y == 2), half * half, x.dtype.type(0)))
    return v.astype(x.dtype), d.astype(x.dtype)


# ---------------------------------------------------------------------------
# regression
# ---------------------------------------------------------------------------

def huber_loss_value_and_grad(target, pred, delta=1.0):
    """``(huber_loss(target, pred, delta), d huber_loss / d pred)``."""
    pred = _pred("pred", pred)
    delta = check_number("delta", delta, low=0)
    tgt = _pred("target", target)
    _broadcastable("target", tgt, pred.shape, "pred")
    t = pred.dtype.type
    dl = t(delta)
    diff = tgt.astype(pred.dtype) - pred
    abs_diff = np.abs(diff)
    big = abs_diff > dl
    value = np.where(big, dl * (abs_diff - t(0.5) * dl), t(0.5) * abs_diff ** 2)
    # d|d|/dpred = -sign(target - pred) (0 at 0); quadratic part: abs_diff
    grad = -np.sign(diff) * np.where(big, dl, abs_diff)
    return _out(value.astype(pred.dtype)), _out(grad.astype(pred.dtype))


def huber_loss(target, pred, delta=1.0):
    r"""Huber loss (Huber 1964).

    .. math::

        \ell(t, p) = \begin{cases} \tfrac12 (t - p)^2 & |t - p| \le \delta \\
        \delta\,(|t - p| - \tfrac12 \delta) & \text{otherwise} \end{cases}

    Gradient in ``pred``: ``p - t`` inside, ``-delta * sign(t - p)`` outside
    (``huber_loss_grad``).

    Args:
      target: ground truth (broadcastable to ``pred``).
      pred: predictions.
      delta: radius of quadratic behavior, a number >= 0.
    Returns:
      loss value, elementwise.
    """
    return huber_loss_value_and_grad(target, pred, delta)[0]


def huber_loss_grad(target, pred, delta=1.0):
    """Gradient of ``huber_loss`` with respect to ``pred``."""
    return huber_loss_value_and_grad(target, pred, delta)[1]


_with_grad(huber_loss, huber_loss_grad, huber_loss_value_and_grad)


# ---------------------------------------------------------------------------
# binary classification
# ---------------------------------------------------------------------------

def _signed(label, logit, name):
    """z = -logit where label == 1 else logit (jnp.where(label, -logit, logit)),
    and dz/dlogit."""
    logit = _pred(name, logit)
    is_one = _binary_label(label, logit, name)
    one = logit.dtype.type(1)
    sign = np.where(is_one, -one, one).astype(logit.dtype)
    return sign * logit, np.broadcast_to(sign, logit.shape)


def binary_logistic_loss_value_and_grad(label, logit):
    """``(binary_logistic_loss(label, logit), d loss / d logit)``."""
    z, dz = _signed(label, logit, "logit")
    v, d = _softplus_vg(z)
    return _out(v), _out(d * dz)


def binary_logistic_loss(label, logit):
    r"""Binary logistic loss.

    .. math::  \ell(y, s) = \mathrm{softplus}(-s) \text{ if } y = 1,
               \quad \mathrm{softplus}(s) \text{ if } y = 0,

    with ``softplus(z) = log(1 + e^z)``, the Fenchel conjugate of the
    binary entropy: ``-log sigmoid(s)`` for ``y = 1``. Gradient in the logit:
    ``sigmoid(s) - y``.

    Args:
      label: ground-truth label, 0 or 1 (broadcastable to ``logit``).
      logit: score produced by the model (float or array).
    Returns:
      loss value, elementwise.
    """
    return binary_logistic_loss_value_and_grad(label, logit)[0]


def binary_logistic_loss_grad(label, logit):
    """Gradient of ``binary_logistic_loss`` with respect to ``logit``."""
    return binary_logistic_loss_value_and_grad(label, logit)[1]


_with_grad(binary_logistic_loss, binary_logistic_loss_grad, binary_logistic_loss_value_and_grad)


def sparse_plus_value_and_grad(x):
    """``(sparse_plus(x), sparse_sigmoid(x))`` (the derivative of sparse_plus)."""
    x = _pred("x", x)
    v, d = _sparse_plus_vg(x)
    return _out(v), _out(d)


def sparse_plus(x):
    r"""Sparse plus function.

    .. math::

        \mathrm{sparse\_plus}(x) = \begin{cases} 0 & x \le -1 \\
        \tfrac14 (x + 1)^2 & -1 < x < 1 \\ x & 1 \le x \end{cases}

    The twin of softplus with a zero output below -1 and a linear one above 1:
    smooth, convex and monotonic; the conjugate of the Gini entropy on [0, 1]
    (Blondel et al. 2020). Its derivative is ``sparse_sigmoid``.

    Args:
      x: input (float or array).
    Returns:
      sparse_plus(x), elementwise.
    """
    return sparse_plus_value_and_grad(x)[0]


def sparse_plus_grad(x):
    """Derivative of ``sparse_plus``: ``sparse_sigmoid(x)``."""
    return sparse_plus_value_and_grad(x)[1]


_with_grad(sparse_plus, sparse_plus_grad, sparse_plus_value_and_grad)


def sparse_sigmoid_value_and_grad(x):
    """``(sparse_sigmoid(x), d sparse_sigmoid / dx)``; the derivative is 1/2 on
    (-1, 1), 0 outside and 1/4 at x = ±1 (JAX's clip differentiates ties
    half-half)."""
    x = _pred("x", x)
    v, d = _sparse_sigmoid_vg(x)
    return _out(v), _out(d)


def sparse_sigmoid(x):
    r"""Sparse sigmoid function.

    .. math::

        \mathrm{sparse\_sigmoid}(x) = \begin{cases} 0 & x \le -1 \\
        \tfrac12 (x + 1) & -1 < x < 1 \\ 1 & 1 \le x \end{cases}
        = \tfrac12\,\mathrm{clip}(x + 1, 0, 2)

    The twin of the sigmoid, the derivative of ``sparse_plus``.

    Args:
      x: input (float or array).
    Returns:
      sparse_sigmoid(x), elementwise.
    """
    return sparse_sigmoid_value_and_grad(x)[0]


def sparse_sigmoid_grad(x):
    """Derivative of ``sparse_sigmoid``."""
    return sparse_sigmoid_value_and_grad(x)[1]


_with_grad(sparse_sigmoid, sparse_sigmoid_grad, sparse_sigmoid_value_and_grad)


def binary_sparsemax_loss_value_and_grad(label, logit):
    """``(binary_sparsemax_loss(label, logit), d loss / d logit)``."""
    z, dz = _signed(label, logit, "logit")
    v, d = _sparse_plus_vg(z)
    return _out(v), _out(d * dz)


def binary_sparsemax_loss(label, logit):
    r"""Binary sparsemax loss (Blondel et al., JMLR 2020, §4.4).

    .. math::  \ell(y, s) = \mathrm{sparse\_plus}(-s) \text{ if } y = 1,
               \quad \mathrm{sparse\_plus}(s) \text{ if } y = 0.

    Gradient in the logit: ``sparse_sigmoid(s) - y``.

    Args:
      label: ground-truth label, 0 or 1 (broadcastable to ``logit``).
      logit: score produced by the model (float or array).
    Returns:
      loss value, elementwise.
    """
    return binary_sparsemax_loss_value_and_grad(label, logit)[0]


def binary_sparsemax_loss_grad(label, logit):
    """Gradient of ``binary_sparsemax_loss`` with respect to ``logit``."""
    return binary_sparsemax_loss_value_and_grad(label, logit)[1]


_with_grad(binary_sparsemax_loss, binary_sparsemax_loss_grad,
           binary_sparsemax_loss_value_and_grad)


def _signed_score(label, score):
    score = _pred("score", score)
    is_one = _binary_label(label, score, "score")
    one = score.dtype.type(1)
    signed_label = np.broadcast_to(np.where(is_one, one, -one).astype(score.dtype), score.shape)
    return score, signed_label


def binary_hinge_loss_value_and_grad(label, score):
    """``(binary_hinge_loss(label, score), d loss / d score)``; at the kink
    (``score * (2 label - 1) == 1``) the derivative is halved (JAX)."""
    score, sl = _signed_score(label, score)
    v, d = _max0_vg(score.dtype.type(1) - score * sl)
    return _out(v), _out(-sl * d)


def binary_hinge_loss(label, score):
    r"""Binary hinge loss.

    .. math::  \ell(y, s) = \max(0, 1 - s\,(2y - 1))

    Args:
      label: ground-truth label, 0 or 1 (broadcastable to ``score``).
      score: score produced by the model (float or array).
    Returns:
      loss value, elementwise.
    """
    return binary_hinge_loss_value_and_grad(label, score)[0]


def binary_hinge_loss_grad(label, score):
    """(Sub)gradient of ``binary_hinge_loss`` with respect to ``score``."""
    return binary_hinge_loss_value_and_grad(label, score)[1]


_with_grad(binary_hinge_loss, binary_hinge_loss_grad, binary_hinge_loss_value_and_grad)


def binary_perceptron_loss_value_and_grad(label, score):
    """``(binary_perceptron_loss(label, score), d loss / d score)``; halved at
    ``score == 0`` (JAX)."""
    score, sl = _signed_score(label, score)
    v, d = _max0_vg(-score * sl)
    return _out(v), _out(-sl * d)


def binary_perceptron_loss(label, score):
    r"""Binary perceptron loss.

    .. math::  \ell(y, s) = \max(0, -s\,(2y - 1))

    Args:
      label: ground-truth label, 0 or 1 (broadcastable to ``score``).
      score: score produced by the model (float or array).
    Returns:
      loss value, elementwise.
    """
    return binary_perceptron_loss_value_and_grad(label, score)[0]


def binary_perceptron_loss_grad(label, score):
    """(Sub)gradient of ``binary_perceptron_loss`` with respect to ``score``."""
    return binary_perceptron_loss_value_and_grad(label, score)[1]


_with_grad(binary_perceptron_loss, binary_perceptron_loss_grad,
           binary_perceptron_loss_value_and_grad)


# ---------------------------------------------------------------------------
# multiclass classification
# ---------------------------------------------------------------------------

def _relative_to_label(label, scores):
    """(scores - scores[label]) with the label's entry set to 0 (exactly)."""
    z = scores - _take(scores, label)[..., None]
    np.put_along_axis(z, label[..., None], 0, axis=-1)
    return z


def _label_column_grad(g, label):
    """Cotangent of ``(s - s[y]).at[y].set(0)``: g with g[y] replaced by
    ``-sum_{j != y} g_j`` (no cancellation when p_y is close to 1)."""
    np.put_along_axis(g, label[..., None], 0, axis=-1)
    total = g.sum(axis=-1)
    np.put_along_axis(g, label[..., None], -total[..., None], axis=-1)
    return g


def multiclass_logistic_loss_value_and_grad(label, logits):
    """``(multiclass_logistic_loss(label, logits), softmax(logits) - onehot(label))``."""
    logits = _pred("logits", logits)
    label = _class_label(label, logits)
    z = _relative_to_label(label, logits)
    amax = z.max(axis=-1, keepdims=True)
    amax = np.where(np.isfinite(amax), amax, 0)
    e = _math.exp(z - amax)
    sumexp = e.sum(axis=-1, keepdims=True)
    value = (_math.log(sumexp) + amax)[..., 0]
    g = e * (1 / sumexp)
    return _out(value), _out(_label_column_grad(g, label))


def multiclass_logistic_loss(label, logits):
    r"""Multiclass logistic loss (softmax cross-entropy).

    .. math::  \ell(y, s) = \log \sum_j e^{s_j} - s_y
               = \mathrm{logsumexp}(s - s_y)

    computed as the log-sum-exp of ``s - s_y`` (its ``y`` entry exactly 0) to
    avoid round-off. Gradient in the logits: ``softmax(s) - e_y``.

    Args:
      label: ground-truth integer label in [0, n_classes) (shape ``(...)``).
      logits: scores produced by the model, shape ``(..., n_classes)``.
    Returns:
      loss value, shape ``(...)``.
    """
    return multiclass_logistic_loss_value_and_grad(label, logits)[0]


def multiclass_logistic_loss_grad(label, logits):
    """Gradient of ``multiclass_logistic_loss`` with respect to ``logits``."""
    return multiclass_logistic_loss_value_and_grad(label, logits)[1]


_with_grad(multiclass_logistic_loss, multiclass_logistic_loss_grad,
           multiclass_logistic_loss_value_and_grad)


def multiclass_sparsemax_loss_value_and_grad(label, scores):
    """``(multiclass_sparsemax_loss(label, scores), sparsemax(scores) - onehot(label))``."""
    from .projection import projection_simplex
    scores = _pred("scores", scores)
    label = _class_label(label, scores)
    proba = projection_simplex(scores)
    z = _relative_to_label(label, scores)
    t = scores.dtype.type
    value = (np.sum(proba * np.where(proba != 0, z, t(0)), axis=-1)
             + t(0.5) * (t(1) - np.sum(proba * proba, axis=-1)))
    return _out(value), _out(_label_column_grad(proba.copy(), label))


def multiclass_sparsemax_loss(label, scores):
    r"""Multiclass sparsemax loss (Martins & Astudillo, ICML 2016).

    With ``p = sparsemax(s)``, the Euclidean projection of ``s`` onto the
    simplex,

    .. math::  \ell(y, s) = \langle p, s - s_y \rangle + \tfrac12 (1 - \|p\|^2),

    the Fenchel-Young loss of the Gini negentropy. Gradient in the scores:
    ``p - e_y``.

    Args:
      label: ground-truth integer label in [0, n_classes) (shape ``(...)``).
      scores: scores produced by the model, shape ``(..., n_classes)``.
    Returns:
      loss value, shape ``(...)``.
    """
    return multiclass_sparsemax_loss_value_and_grad(label, scores)[0]


def multiclass_sparsemax_loss_grad(label, scores):
    """Gradient of ``multiclass_sparsemax_loss`` with respect to ``scores``."""
    return multiclass_sparsemax_loss_value_and_grad(label, scores)[1]


_with_grad(multiclass_sparsemax_loss, multiclass_sparsemax_loss_grad,
           multiclass_sparsemax_loss_value_and_grad)


def _max_vg(z):
    """max over the last axis and its derivative: the maximisers share it evenly
    (JAX's reduce_max rule)."""
    m = z.max(axis=-1, keepdims=True)
    hit = (z == m).astype(z.dtype)
    return m[..., 0], hit / hit.sum(axis=-1, keepdims=True)


def multiclass_hinge_loss_value_and_grad(label, scores):
    """``(multiclass_hinge_loss(label, scores), d loss / d scores)``."""
    scores = _pred("scores", scores)
    label = _class_label(label, scores)
    onehot = _one_hot(label, scores)
    m, d = _max_vg(scores + scores.dtype.type(1) - onehot)
    return _out(m - _take(scores, label)), _out(d - onehot)


def multiclass_hinge_loss(label, scores):
    r"""Multiclass hinge loss (Crammer & Singer 2001).

    .. math::  \ell(y, s) = \max_j (s_j + 1 - [j = y]) - s_y

    Subgradient in the scores: ``e_{j*} - e_y`` for the maximiser ``j*``
    (shared evenly among ties, as JAX).

    Args:
      label: ground-truth integer label in [0, n_classes) (shape ``(...)``).
      scores: scores produced by the model, shape ``(..., n_classes)``.
    Returns:
      loss value, shape ``(...)``.
    """
    return multiclass_hinge_loss_value_and_grad(label, scores)[0]


def multiclass_hinge_loss_grad(label, scores):
    """(Sub)gradient of ``multiclass_hinge_loss`` with respect to ``scores``."""
    return multiclass_hinge_loss_value_and_grad(label, scores)[1]


_with_grad(multiclass_hinge_loss, multiclass_hinge_loss_grad,
           multiclass_hinge_loss_value_and_grad)


def multiclass_perceptron_loss_value_and_grad(label, scores):
    """``(multiclass_perceptron_loss(label, scores), d loss / d scores)``."""
    scores = _pred("scores", scores)
    label = _class_label(label, scores)
    m, d = _max_vg(scores)
    return _out(m - _take(scores, label)), _out(d - _one_hot(label, scores))


def multiclass_perceptron_loss(label, scores):
    r"""Multiclass perceptron loss (Collins 2002).

    .. math::  \ell(y, s) = \max_j s_j - s_y

    Subgradient in the scores: ``e_{j*} - e_y`` (ties shared evenly, as JAX).

    Args:
      label: ground-truth integer label in [0, n_classes) (shape ``(...)``).
      scores: scores produced by the model, shape ``(..., n_classes)``.
    Returns:
      loss value, shape ``(...)``.
    """
    return multiclass_perceptron_loss_value_and_grad(label, scores)[0]


def multiclass_perceptron_loss_grad(label, scores):
    """(Sub)gradient of ``multiclass_perceptron_loss`` with respect to ``scores``."""
    return multiclass_perceptron_loss_value_and_grad(label, scores)[1]


_with_grad(multiclass_perceptron_loss, multiclass_perceptron_loss_grad,
           multiclass_perceptron_loss_value_and_grad)


# ---------------------------------------------------------------------------
# Fenchel-Young losses
# ---------------------------------------------------------------------------

def make_fenchel_young_loss(max_fun, *, max_fun_grad=None):
    r"""Creates a Fenchel-Young loss from a max function (Blondel et al. 2020).

    For a convex "max function" ``F`` (e.g. logsumexp),

    .. math::  \mathrm{FY}(y, s) = F(s) - \langle s, y \rangle,
               \qquad \nabla_s \mathrm{FY}(y, s) = \nabla F(s) - y,

    where ``∇F(s)`` is the regularised argmax (softmax for logsumexp).

    Args:
      max_fun: ``F(scores, *args, **kwargs) -> float``.
      max_fun_grad: (npopt, keyword only) ``∇F(scores, *args, **kwargs)``,
        needed by ``fy_loss.grad`` and ``fy_loss.value_and_grad`` since npopt
        has no autodiff.
    Returns:
      ``fy_loss(y_true, scores, *args, **kwargs)``, with ``.grad`` and
      ``.value_and_grad`` (gradients with respect to ``scores``).
    """
    if not callable(max_fun):
        raise TypeError(f"max_fun: expected a callable, got {_describe(max_fun)}")
    if max_fun_grad is not None and not callable(max_fun_grad):
        raise TypeError(f"max_fun_grad: expected a callable or None, got "
                        f"{_describe(max_fun_grad)}")

    def fy_loss(y_true, scores, *args, **kwargs):
        return max_fun(scores, *args, **kwargs) - _dense.vdot(y_true, scores)

    def fy_loss_grad(y_true, scores, *args, **kwargs):
        if max_fun_grad is None:
            raise TypeError("max_fun_grad: the gradient of this Fenchel-Young loss needs the "
                            "gradient of max_fun; pass make_fenchel_young_loss(max_fun, "
                            "max_fun_grad=...) (npopt has no autodiff)")
        g = np.asarray(max_fun_grad(scores, *args, **kwargs))
        y = np.asarray(y_true)
        if y.shape != g.shape:
            raise ValueError(f"y_true: expected the shape {g.shape} of scores, got {y.shape}")
        return g - y

    def fy_loss_value_and_grad(y_true, scores, *args, **kwargs):
        return fy_loss(y_true, scores, *args, **kwargs), \
            fy_loss_grad(y_true, scores, *args, **kwargs)

    return _with_grad(fy_loss, fy_loss_grad, fy_loss_value_and_grad)
