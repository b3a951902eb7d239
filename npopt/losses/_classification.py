"""Classification losses (optax.losses._classification, less CTC and the KL
divergences): sigmoid and softmax cross-entropies, focal, poly, hinge,
perceptron and sparsemax losses."""
import numpy as np

from .. import _math
from .. import loss as _jaxopt_loss
from . import _common as C

_M = "npopt.losses"


def _binary_labels(name, labels, logits):
    y = C.numbers_(name, labels, logits.dtype)
    C.broadcastable(name, y, logits.shape, "logits")
    return y


# ---------------------------------------------------------------------------
# binary
# ---------------------------------------------------------------------------

@C.errstate
def _sigmoid_binary_cross_entropy(want_grad, logits, labels):
    x = C.floats("logits", logits)
    y = _binary_labels("labels", labels, x).astype(x.dtype, copy=False)
    one = x.dtype.type(1)
    log_p, d_log_p = C.log_sigmoid_vg(x)
    log_not_p, d = C.log_sigmoid_vg(-x)
    value = -y * log_p - (one - y) * log_not_p
    g = None
    if want_grad:
        g = C.out(np.broadcast_to(-y * d_log_p + (one - y) * d, x.shape), x.dtype)
    return C.out(value, x.dtype), g


(sigmoid_binary_cross_entropy, sigmoid_binary_cross_entropy_grad,
 sigmoid_binary_cross_entropy_value_and_grad) = C.loss(_sigmoid_binary_cross_entropy, r"""
Sigmoid (binary) cross-entropy, elementwise.

.. math::  \ell(x, y) = -y \log\sigma(x) - (1 - y) \log(1 - \sigma(x)),
           \qquad \partial_x \ell = \sigma(x) - y

with ``log(1 - sigma(x))`` computed as ``log_sigmoid(-x)``. Labels may be
soft (in [0, 1]); several may be true at once (multi-label).

Args:
  logits: float array of any shape.
  labels: broadcastable to ``logits`` (cast to its dtype).
Returns:
  the losses, with the shape of ``logits``.
""", _M)


@C.errstate
def _hinge_loss(want_grad, predictor_outputs, targets):
    p = C.floats("predictor_outputs", predictor_outputs)
    t = C.numbers_("targets", targets, p.dtype)
    C.broadcastable("targets", t, p.shape, "predictor_outputs")
    z = p.dtype.type(1) - p * t
    zero = np.zeros((), z.dtype)
    g = C.out(np.broadcast_to(-(C.dmax(z, zero) * t), p.shape)) if want_grad else None
    return C.out(np.maximum(zero, z)), g


hinge_loss, hinge_loss_grad, hinge_loss_value_and_grad = C.loss(_hinge_loss, r"""
Hinge loss for binary classification with targets in {-1, 1}.

.. math::  \ell(s, t) = \max(0, 1 - s t)

Subgradient ``-t`` where ``s t < 1``, 0 where ``s t > 1`` and ``-t/2`` at
the kink (JAX's ``maximum`` splits ties).

Args:
  predictor_outputs: the scores, a float array.
  targets: the targets, -1 or 1, broadcastable to ``predictor_outputs``.
Returns:
  the losses, elementwise.
""", _M)


@C.errstate
def _perceptron_loss(want_grad, predictor_outputs, targets):
    p = C.floats("predictor_outputs", predictor_outputs)
    t = C.numbers_("targets", targets, p.dtype)
    C.same_shape("targets", t, p.shape, "predictor_outputs")
    z = -p * t
    zero = np.zeros((), z.dtype)
    g = C.out(-(C.dmax(z, zero) * t)) if want_grad else None
    return C.out(np.maximum(zero, z)), g


perceptron_loss, perceptron_loss_grad, perceptron_loss_value_and_grad = C.loss(
    _perceptron_loss, r"""
Perceptron loss for binary classification with targets in {-1, 1}.

.. math::  \ell(s, t) = \max(0, -s t)

Args:
  predictor_outputs: the scores, a float array.
  targets: the targets, -1 or 1, of the same shape.
Returns:
  the losses, elementwise.
""", _M)


@C.errstate
def _sparsemax_loss(want_grad, logits, labels):
    x = C.floats("logits", logits)
    y = np.asarray(labels)
    if y.dtype.kind not in "biuf":
        raise TypeError(f"labels: expected 0 or 1, got {C._describe(labels)}")
    C.broadcastable("labels", y, x.shape, "logits")
    one = x.dtype.type(1)
    sign = np.broadcast_to(np.where(y != 0, -one, one).astype(x.dtype), x.shape)
    v, d = _jaxopt_loss._sparse_plus_vg(sign * x)
    return C.out(v), (C.out(d * sign) if want_grad else None)


sparsemax_loss, sparsemax_loss_grad, sparsemax_loss_value_and_grad = C.loss(
    _sparsemax_loss, r"""
Binary sparsemax loss (Martins & Astudillo, ICML 2016; Blondel, Martins &
Niculae, JMLR 2020).

.. math::  \ell(x, y) = \mathrm{sparse\_plus}(-x) \text{ if } y \ne 0,
           \quad \mathrm{sparse\_plus}(x) \text{ otherwise}

Gradient in the logits: ``sparse_sigmoid(x) - y`` (for y in {0, 1}).

Args:
  logits: float array of any shape.
  labels: 0 or 1 (any nonzero counts as 1), broadcastable to ``logits``.
Returns:
  the losses, elementwise.
""", _M)


# ---------------------------------------------------------------------------
# softmax
# ---------------------------------------------------------------------------

@C.errstate
def _safe_softmax_cross_entropy(want_grad, logits, labels):
    x = C.floats("logits", logits)
    if x.ndim == 0:
        raise ValueError("logits: expected an array of shape (..., num_classes), got a scalar")
    w = C.numbers_("labels", labels, x.dtype)
    C.broadcastable("labels", w, x.shape, "logits")
    lsm, _ = C.log_softmax_vg(x, -1, None, None)
    value = -np.sum(np.where(w != 0, w * lsm, 0), axis=-1)
    g = None
    if want_grad:
        sm = C.softmax(x, -1, None)
        wb = np.broadcast_to(w, x.shape)
        g = C.out(-wb + np.sum(wb, axis=-1, keepdims=True) * sm)
    return C.out(value), g


(safe_softmax_cross_entropy, safe_softmax_cross_entropy_grad,
 safe_softmax_cross_entropy_value_and_grad) = C.loss(_safe_softmax_cross_entropy, r"""
Softmax cross-entropy that ignores the classes of label 0 exactly.

.. math::  \ell(x, y) = -\sum_{i: y_i \ne 0} y_i \log\mathrm{softmax}(x)_i,
           \qquad \partial_x \ell = (\textstyle\sum_i y_i)\,\mathrm{softmax}(x) - y

A logit of ``-inf`` with label 0 contributes 0 (``softmax_cross_entropy``
gives NaN there), and the gradient stays finite (optax's custom JVP).

Args:
  logits: float array of shape ``(..., num_classes)``.
  labels: class probabilities, broadcastable to ``logits``.
Returns:
  the losses, of shape ``(...)``.
""", _M)


def _where_for(where, x, axis):
    w = C.expand_mask(where, x.ndim, axis)
    return C.mask("where", w, x.shape, "logits")


@C.errstate
def _softmax_cross_entropy(want_grad, logits, labels, axis=-1, where=None):
    x = C.floats("logits", logits)
    ax = C.axes("axis", axis, x.ndim)
    w = _where_for(where, x, axis)
    y = C.numbers_("labels", labels, x.dtype)
    C.broadcastable("labels", y, x.shape, "logits")
    lp, g = C.log_softmax_vg(x, ax, w, -np.broadcast_to(y, x.shape) if want_grad else None)
    value = -C.msum(y * lp, ax, w)
    return C.out(value), (C.out(g, np.result_type(x, y)) if want_grad else None)


softmax_cross_entropy, softmax_cross_entropy_grad, softmax_cross_entropy_value_and_grad = \
    C.loss(_softmax_cross_entropy, r"""
Softmax cross-entropy between logits and class probabilities.

.. math::  \ell(x, y) = -\sum_i y_i \log\mathrm{softmax}(x)_i,
           \qquad \partial_x \ell = (\textstyle\sum_i y_i)\,\mathrm{softmax}(x) - y

along ``axis``; with ``where``, masked classes are left out of the softmax
and the sum (their gradient is 0). A ``where`` with fewer dimensions than
``logits`` gets ``axis`` inserted, as optax does.

Args:
  logits: float array of shape ``(..., num_classes)``.
  labels: class probabilities, broadcastable to ``logits``.
  axis: axis or axes of the classes (None: all).
  where: optional boolean mask of the classes to include.
Returns:
  the losses, of shape ``(...)``.
""", _M)


@C.errstate
def _softmax_cross_entropy_with_integer_labels(want_grad, logits, labels, axis=-1, where=None):
    x = C.floats("logits", logits)
    y = C.integers("labels", labels)
    if isinstance(axis, tuple):
        ax = C.axes("axis", axis, x.ndim)
    elif axis is None or isinstance(axis, (bool, np.bool_)):
        raise TypeError(f"axis: expected an int or a tuple of ints, got {axis!r}")
    else:
        ax = C.axes("axis", axis, x.ndim)
    w = C.expand_mask(where, x.ndim, axis)
    if w is not None:
        w = C.mask("where", w, x.shape, "logits")
    batch = tuple(i for i in range(x.ndim) if i not in ax)
    perm = batch + ax
    xt = np.transpose(x, perm)
    bshape = xt.shape[:len(batch)]
    k = int(np.prod([x.shape[i] for i in ax]))
    xt = xt.reshape(bshape + (k,))
    wt = None if w is None else np.transpose(w, perm).reshape(bshape + (k,))
    if y.shape != bshape:
        raise ValueError(f"labels: expected shape {bshape} (logits' shape {x.shape} without "
                         f"axis {axis!r}), got shape {y.shape}")
    if k == 0:
        raise ValueError(f"logits: expected at least one class along axis {axis!r}")
    if y.size and (y.min() < 0 or y.max() >= k):
        bad = y[(y < 0) | (y >= k)].flat[0]
        raise ValueError(f"labels: expected class indices in [0, {k}), got {bad.item()!r}")
    idx = y.astype(np.intp)[..., None]
    label_logits = np.take_along_axis(xt, idx, axis=-1)[..., 0]
    # jax.nn.logsumexp: masked entries read as 0, max over the mask
    a = xt if wt is None else np.where(wt, xt, 0)
    amax = C.mmax(a, -1, wt)
    amax = np.where(np.isfinite(amax), amax, 0).astype(x.dtype)
    e = _math.exp(a - amax)
    s = C.msum(e, -1, wt, keepdims=True)
    out = (_math.log(s) + amax)[..., 0] - label_logits
    live = None
    if wt is not None:
        live = np.any(wt, axis=-1)
        out = np.where(live, out, 0)
    g = None
    if want_grad:
        ct = np.ones(bshape, x.dtype) if live is None else live.astype(x.dtype)
        gt = (ct[..., None] / s) * e
        if wt is not None:
            gt = np.where(wt, gt, 0)
        col = np.take_along_axis(gt, idx, axis=-1) - ct[..., None]
        np.put_along_axis(gt, idx, col, axis=-1)
        gt = gt.reshape(np.transpose(x, perm).shape)
        g = C.out(np.transpose(gt, np.argsort(perm)), x.dtype)
    return C.out(out, x.dtype), g


(softmax_cross_entropy_with_integer_labels, softmax_cross_entropy_with_integer_labels_grad,
 softmax_cross_entropy_with_integer_labels_value_and_grad) = C.loss(
    _softmax_cross_entropy_with_integer_labels, r"""
Softmax cross-entropy with integer class labels.

.. math::  \ell(x, y) = \mathrm{logsumexp}(x) - x_y,
           \qquad \partial_x \ell = \mathrm{softmax}(x) - e_y

Only the label's logit is subtracted from the log-normalizer (optax's
order). ``axis`` may be a tuple: those axes are flattened into one class
axis. With ``where``, masked classes are left out of the normalizer and
rows with no class left give 0. Labels out of range raise (JAX would read
NaN).

Args:
  logits: float array of shape ``(..., num_classes)``.
  labels: integer labels, logits' shape without ``axis``.
  axis: axis or axes of the classes.
  where: optional boolean mask of the classes to include.
Returns:
  the losses, of the labels' shape.
""", _M)


@C.errstate
def _poly_loss_cross_entropy(want_grad, logits, labels, *, epsilon=2.0, axis=-1, where=None):
    x = C.floats("logits", logits)
    y = C.floats("labels", labels)
    C.broadcastable("labels", y, x.shape, "logits")
    ax = C.axes("axis", axis, x.ndim)
    if where is not None and np.ndim(where) != x.ndim:
        raise ValueError(f"where: expected {x.ndim} dimensions like logits, got shape "
                         f"{np.shape(where)}")
    w = C.mask("where", where, x.shape, "logits")
    eps = C.scalar("epsilon", epsilon, x.dtype)
    p = C.softmax(x, ax, w)
    one = x.dtype.type(1)
    one_minus_pt = C.msum(y * (one - p), ax, w)
    ce, g = _softmax_cross_entropy(want_grad, x, y, axis=axis, where=w)
    value = ce + eps * one_minus_pt
    if want_grad:
        ct = -eps * np.broadcast_to(y, x.shape)
        if w is not None:
            ct = np.where(w, ct, 0)
        g = C.out(g + C.softmax_vjp(p, ct, ax, w))
    return C.out(value), g


poly_loss_cross_entropy, poly_loss_cross_entropy_grad, poly_loss_cross_entropy_value_and_grad = \
    C.loss(_poly_loss_cross_entropy, r"""
PolyLoss, cross-entropy plus a polynomial term (Leng et al., "PolyLoss: a
polynomial expansion perspective of classification loss functions", ICLR 2022).

.. math::  \ell(x, y) = \mathrm{CE}(x, y) + \epsilon \sum_i y_i (1 - p_i),
           \quad p = \mathrm{softmax}(x)

Args:
  logits: float array of shape ``(..., num_classes)``.
  labels: float class probabilities, broadcastable to ``logits``.
  epsilon: coefficient of the first polynomial term (optax's default 2).
  axis: axis or axes of the classes.
  where: optional boolean mask of ``logits``' shape (same dimensions).
Returns:
  the losses, of shape ``(...)``.
""", _M)


@C.errstate
def _sigmoid_focal_loss(want_grad, logits, labels, *, alpha=None, gamma=2.0):
    x = C.floats("logits", logits)
    y = _binary_labels("labels", labels, x).astype(x.dtype, copy=False)
    y = np.broadcast_to(y, x.shape)
    gam = C.scalar("gamma", gamma, x.dtype)
    al = None if alpha is None else C.scalar("alpha", alpha, x.dtype)
    one = x.dtype.type(1)
    ce, dce = _sigmoid_binary_cross_entropy(True, x, y)
    ce, dce = np.asarray(ce), np.asarray(dce)
    log_p, dlp = C.log_sigmoid_vg(x)
    log_q, dlq = C.log_sigmoid_vg(-x)
    # jax.scipy.special.logsumexp([log_p, log_q], b=[1 - y, y])
    b1, b2 = one - y, y
    a1 = np.where(b1 != 0, log_p, -np.inf)
    a2 = np.where(b2 != 0, log_q, -np.inf)
    amax = np.maximum(a1, a2)
    amax = np.where(np.isfinite(amax), amax, 0).astype(x.dtype)
    e1, e2 = _math.exp(a1 - amax), _math.exp(a2 - amax)
    s = e1 * b1 + e2 * b2
    sign = np.sign(s)
    lse = _math.log(np.abs(s)) + amax
    lse = np.where(sign < 0, np.nan, lse).astype(x.dtype)
    focal = _math.exp(gam * lse)
    loss = ce * focal
    wgt = None if al is None else al * y + (one - al) * (one - y)
    value = loss if wgt is None else wgt * loss
    g = None
    if want_grad:
        ct = np.ones(x.shape, x.dtype) if wgt is None else wgt
        ct_lse = gam * (ct * ce * focal)
        ct_s = ct_lse / np.abs(s) * sign
        ct_a1 = np.where(b1 != 0, ct_s * b1 * e1, 0)
        ct_a2 = np.where(b2 != 0, ct_s * b2 * e2, 0)
        g = C.out(ct * focal * dce + ct_a1 * dlp - ct_a2 * dlq, x.dtype)
    return C.out(value, x.dtype), g


sigmoid_focal_loss, sigmoid_focal_loss_grad, sigmoid_focal_loss_value_and_grad = C.loss(
    _sigmoid_focal_loss, r"""
Sigmoid focal loss (Lin et al., "Focal loss for dense object detection",
ICCV 2017).

.. math::  \ell(x, y) = \alpha_t\,(1 - p_t)^\gamma\, \mathrm{CE}(x, y),
           \quad p_t = y\,\sigma(x) + (1 - y)(1 - \sigma(x))

with ``log(1 - p_t)`` computed as a log-sum-exp of ``log_sigmoid(±x)``
(optax's stable form) and ``alpha_t = alpha y + (1 - alpha)(1 - y)``
(no weighting when ``alpha`` is None).

Args:
  logits: float array of any shape.
  labels: broadcastable to ``logits`` (cast to its dtype), in [0, 1].
  alpha: optional weight of the positive class, in [0, 1].
  gamma: focusing exponent >= 0.
Returns:
  the losses, with the shape of ``logits``.
""", _M)


# ---------------------------------------------------------------------------
# multiclass with integer labels (jaxopt's implementations, optax's order)
# ---------------------------------------------------------------------------

def _class_labels(scores, labels):
    s = C.floats("scores", scores)
    if s.ndim < 1 or s.shape[-1] == 0:
        raise ValueError(f"scores: expected an array of shape (..., num_classes), "
                         f"num_classes >= 1, got shape {s.shape}")
    y = C.integers("labels", labels)
    if y.shape != s.shape[:-1]:
        raise ValueError(f"labels: expected shape {s.shape[:-1]} (one label per row of scores "
                         f"of shape {s.shape}), got shape {y.shape}")
    k = s.shape[-1]
    if y.size and (y.min() < 0 or y.max() >= k):
        bad = y[(y < 0) | (y >= k)].flat[0]
        raise ValueError(f"labels: expected class indices in [0, {k}), got {bad.item()!r}")
    return s, y


@C.errstate
def _multiclass_hinge_loss(want_grad, scores, labels):
    s, y = _class_labels(scores, labels)
    return _jaxopt_loss.multiclass_hinge_loss_value_and_grad(y, s)


(multiclass_hinge_loss, multiclass_hinge_loss_grad,
 multiclass_hinge_loss_value_and_grad) = C.loss(_multiclass_hinge_loss, r"""
Multiclass hinge loss (Crammer & Singer, JMLR 2001).

.. math::  \ell(s, y) = \max_j (s_j + 1 - [j = y]) - s_y

Subgradient ``e_{j*} - e_y``, shared evenly among tied maximisers (JAX).
optax computes in float64 for float32 scores (its one-hot is float64 under
x64); npopt keeps float32.

Args:
  scores: float array of shape ``(..., num_classes)``.
  labels: integer labels of shape ``(...)``.
Returns:
  the losses, of shape ``(...)``.
""", _M)


@C.errstate
def _multiclass_perceptron_loss(want_grad, scores, labels):
    s, y = _class_labels(scores, labels)
    return _jaxopt_loss.multiclass_perceptron_loss_value_and_grad(y, s)


(multiclass_perceptron_loss, multiclass_perceptron_loss_grad,
 multiclass_perceptron_loss_value_and_grad) = C.loss(_multiclass_perceptron_loss, r"""
Multiclass perceptron loss (Collins, EMNLP 2002).

.. math::  \ell(s, y) = \max_j s_j - s_y

Subgradient ``e_{j*} - e_y`` (ties shared evenly). npopt keeps float32
where optax computes in float64 (see ``multiclass_hinge_loss``).

Args:
  scores: float array of shape ``(..., num_classes)``.
  labels: integer labels of shape ``(...)``.
Returns:
  the losses, of shape ``(...)``.
""", _M)


@C.errstate
def _multiclass_sparsemax_loss(want_grad, scores, labels):
    s, y = _class_labels(scores, labels)
    return _jaxopt_loss.multiclass_sparsemax_loss_value_and_grad(y, s)


(multiclass_sparsemax_loss, multiclass_sparsemax_loss_grad,
 multiclass_sparsemax_loss_value_and_grad) = C.loss(_multiclass_sparsemax_loss, r"""
Multiclass sparsemax loss (Martins & Astudillo, ICML 2016).

With ``p = sparsemax(s)``, the Euclidean projection of ``s`` onto the
simplex,

.. math::  \ell(s, y) = \langle p, s - s_y \rangle + \tfrac12 (1 - \|p\|^2),
           \qquad \partial_s \ell = p - e_y

optax takes scores of shape ``(batch, num_classes)`` (a ``vmap``); npopt
takes any ``(..., num_classes)``.

Args:
  scores: float array of shape ``(..., num_classes)``.
  labels: integer labels of shape ``(...)``.
Returns:
  the losses, of shape ``(...)``.
""", _M)
