"""Regression losses: squared_error, l2_loss, huber_loss, log_cosh,
cosine_similarity, cosine_distance (optax.losses._regression)."""
import math

import numpy as np

from . import _common as C

_M = "npopt.losses"


def _errors(predictions, targets):
    p = C.floats("predictions", predictions)
    if targets is None:
        return p, p
    t = C.numbers_("targets", targets, p.dtype)
    C.broadcastable("targets", t, p.shape, "predictions")
    return p, p - t


def unbroadcast(g, shape):
    """Sum a gradient of a broadcast shape back to ``shape``."""
    g = np.asarray(g)
    if g.shape == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead))) if lead else g
    ax = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=ax, keepdims=True) if ax else g


@C.errstate
def _squared_error(want_grad, predictions, targets=None):
    if targets is not None:
        p = C.floats("predictions", predictions)
        C.same_shape("targets", np.asarray(targets), p.shape, "predictions")
    p, e = _errors(predictions, targets)
    return C.out(e * e), (C.out(2 * e) if want_grad else None)


squared_error, squared_error_grad, squared_error_value_and_grad = C.loss(_squared_error, r"""
Elementwise squared error.

.. math::  \ell(p, t) = (p - t)^2, \qquad \partial_p \ell = 2 (p - t)

Mean squared error is ``squared_error(a, b).mean()``.

Args:
  predictions: a float array of any shape.
  targets: an array of the same shape (optax checks it); None means zeros.
Returns:
  the squared differences, with the shape of ``predictions``.
""", _M)


@C.errstate
def _l2_loss(want_grad, predictions, targets=None):
    v, g = _squared_error(want_grad, predictions, targets)
    half = np.asarray(v).dtype.type(0.5)
    return C.out(half * v), (C.out(half * g) if want_grad else None)


l2_loss, l2_loss_grad, l2_loss_value_and_grad = C.loss(_l2_loss, r"""
Elementwise L2 loss, half the squared error (Bishop's convention).

.. math::  \ell(p, t) = \tfrac12 (p - t)^2, \qquad \partial_p \ell = p - t

Args:
  predictions: a float array of any shape.
  targets: an array of the same shape; None means zeros.
Returns:
  the losses, with the shape of ``predictions``.
""", _M)


@C.errstate
def _huber_loss(want_grad, predictions, targets=None, *, delta=1.0):
    p, e = _errors(predictions, targets)
    dl = C.scalar("delta", delta, e.dtype, low=0)
    a = np.abs(e)
    q = np.minimum(a, dl)
    value = np.asarray(e.dtype.type(0.5) * q ** 2 + dl * (a - q), e.dtype)
    g = None
    if want_grad:
        dq = C.dmax(dl, a)              # d min(a, delta) / da: 1, 1/2 at a == delta, 0
        # JAX's transposition: ct_a = delta + (q - delta) * dq, times sign(e)
        g = C.out(np.sign(e) * (dl + (q - dl) * dq), e.dtype)
    return C.out(value), g


huber_loss, huber_loss_grad, huber_loss_value_and_grad = C.loss(_huber_loss, r"""
Huber loss: quadratic near zero, linear away from it (Huber 1964).

.. math::

    \ell(p, t) = \tfrac12 q^2 + \delta\,(|e| - q), \quad e = p - t,
    \quad q = \min(|e|, \delta)

Its gradient ``clip(e, -delta, delta)`` is the L2 loss's gradient clipped
to ``[-delta, delta]``. optax's argument order ``(predictions, targets)``;
``npopt.loss.huber_loss`` is jaxopt's ``(target, pred)``.

Args:
  predictions: a float array of any shape.
  targets: broadcastable to ``predictions``; None means zeros.
  delta: the radius of the quadratic part, a number >= 0.
Returns:
  the losses, with the shape of ``predictions``.
""", _M)


@C.errstate
def _log_cosh(want_grad, predictions, targets=None):
    p, e = _errors(predictions, targets)
    lae = C.logaddexp(e, -e)
    value = (lae - e.dtype.type(math.log(2.0))).astype(e.dtype, copy=False)
    g = None
    if want_grad:
        d1, d2 = C.logaddexp_partials(e, -e, lae)
        g = C.out(d1 - d2, e.dtype)
    return C.out(value), g


log_cosh, log_cosh_grad, log_cosh_value_and_grad = C.loss(_log_cosh, r"""
Log-cosh loss (Chen et al., "Log hyperbolic cosine loss improves variational
auto-encoder", 2019), a twice differentiable Huber.

.. math::  \ell(p, t) = \log\cosh(p - t) = \mathrm{logaddexp}(e, -e) - \log 2,
           \qquad \partial_p \ell = \tanh(p - t)

(the gradient is computed as JAX's ``exp(e - L) - exp(-e - L)``).

Args:
  predictions: a float array of any shape.
  targets: broadcastable to ``predictions``; None means zeros.
Returns:
  the losses, with the shape of ``predictions``.
""", _M)


def cos_vg(a, b, eps, axis, where, ct):
    """Cosine similarity of ``a`` and ``b`` (broadcastable) along ``axis`` with
    the optional mask, and the gradients in ``a`` and ``b`` (their shapes)
    for the cotangent ``ct`` (None: value only). As optax, each norm is taken
    over ``a``'s (``b``'s) own axes before broadcasting. JAX's operations in
    JAX's order."""
    shape = np.broadcast_shapes(a.shape, b.shape)
    ax = C.axes("axis", axis, len(shape))
    w = C.mask("where", where, shape, "predictions and targets")

    def norm(x, name):
        axx = C.axes("axis", axis, x.ndim)
        wx = None
        if where is not None:
            wx = C.mask("where", where, x.shape, name)
        s = C.msum(np.square(x), axx, wx, keepdims=True)
        return axx, wx, s, np.sqrt(np.maximum(eps, s))
    axa, wa, sa, na = norm(a, "predictions")
    axb, wb, sb, nb = norm(b, "targets")
    au, bu = a / na, b / nb
    value = C.msum(au * bu, ax, w)
    if ct is None:
        return value, None, None
    c = np.broadcast_to(np.expand_dims(np.asarray(ct, value.dtype), ax), shape)
    if w is not None:
        c = np.where(w, c, 0)

    def back(x, axx, wx, s, n, other_unit):
        from ._regression import unbroadcast
        ct_u = unbroadcast(c * other_unit, x.shape)
        ct_n = C.msum(-ct_u * x / n ** 2, axx, None, keepdims=True)
        ct_s = ct_n * (x.dtype.type(0.5) / n) * C.dmax(s, eps)
        g2 = ct_s * (2 * x)
        if wx is not None:
            g2 = np.where(wx, g2, 0)
        return ct_u / n + g2

    return value, back(a, axa, wa, sa, na, bu), back(b, axb, wb, sb, nb, au)


def _cos_args(predictions, targets, epsilon, axis):
    p = C.floats("predictions", predictions)
    t = C.floats("targets", targets)
    try:
        np.broadcast_shapes(p.shape, t.shape)
    except ValueError:
        raise ValueError(f"targets: expected an array broadcastable with predictions of shape "
                         f"{p.shape}, got shape {t.shape}") from None
    dt = np.result_type(p, t)
    eps = C.scalar("epsilon", epsilon, dt, low=0)
    return p, p.astype(dt, copy=False), t.astype(dt, copy=False), eps


@C.errstate
def _cosine_similarity(want_grad, predictions, targets, *, epsilon=0.0, axis=-1, where=None):
    p, a, b, eps = _cos_args(predictions, targets, epsilon, axis)
    v = cos_vg(a, b, eps, axis, where, None)[0]
    g = None
    if want_grad:
        g = C.out(cos_vg(a, b, eps, axis, where, np.ones(np.shape(v), a.dtype))[1], p.dtype)
    return C.out(v, a.dtype), g


cosine_similarity, cosine_similarity_grad, cosine_similarity_value_and_grad = C.loss(
    _cosine_similarity, r"""
Cosine similarity of predictions and targets along ``axis``.

.. math::  \cos(p, t) = \sum_i \frac{p_i}{\|p\|_\epsilon} \frac{t_i}{\|t\|_\epsilon},
           \qquad \|x\|_\epsilon = \sqrt{\max(\|x\|^2, \epsilon)}

(``epsilon`` bounds the squared norm from below, as optax does.) Gradient:
:math:`\partial_p = \hat t / \|p\| - \cos(p, t)\, p / \|p\|^2` where
:math:`\|p\|^2 > \epsilon`.

Args:
  predictions: vectors of shape ``[..., dim]``.
  targets: vectors broadcastable with ``predictions``.
  epsilon: lower bound of the squared norms in the denominators.
  axis: axis or axes to reduce (None: all).
  where: optional boolean mask of the elements to include.
Returns:
  the similarities, of shape ``[...]``.
""", _M)


@C.errstate
def _cosine_distance(want_grad, predictions, targets, *, epsilon=0.0, axis=-1, where=None):
    v, g = _cosine_similarity(want_grad, predictions, targets, epsilon=epsilon, axis=axis,
                              where=where)
    v = np.asarray(v)
    return C.out(v.dtype.type(1) - v), (C.out(-g) if want_grad else None)


cosine_distance, cosine_distance_grad, cosine_distance_value_and_grad = C.loss(
    _cosine_distance, r"""
Cosine distance, one minus the cosine similarity.

.. math::  d(p, t) = 1 - \cos(p, t)

Args:
  predictions: vectors of shape ``[..., dim]``.
  targets: vectors broadcastable with ``predictions``.
  epsilon: lower bound of the squared norms in the denominators.
  axis: axis or axes to reduce (None: all).
  where: optional boolean mask of the elements to include.
Returns:
  the distances, of shape ``[...]``.
""", _M)
