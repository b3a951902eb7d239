"""Segmentation losses (optax.losses._segmentation): dice_loss,
binary_dice_loss, multiclass_generalized_dice_loss."""
import numpy as np

from .. import _math
from . import _common as C

_M = "npopt.losses"
_REDUCTIONS = ("mean", "sum", "none")


def _sigmoid(x):
    """``jax.nn.sigmoid`` (``lax.logistic``): 1 / (1 + exp(-x))."""
    one = x.dtype.type(1)
    return (one / (one + _math.exp(-x))).astype(x.dtype, copy=False)


def _dice(want_grad, predictions, targets, class_weights, smooth, alpha, beta, apply_softmax,
          reduction, ignore_background, axis):
    """dice_loss and the gradient of the sum of its output (for the cotangent
    of ones), or of the output weighted by ``want_grad`` when it is an array."""
    p = C.floats("predictions", predictions)
    t = C.numbers_("targets", targets, p.dtype)
    shape_in = p.shape
    if p.ndim == t.ndim - 1:
        p = p[..., None]
    if t.ndim == p.ndim - 1:
        t = t[..., None]
    C.same_shape("targets", t, p.shape, "predictions (after adding a channel axis)")
    if p.ndim == 0:
        raise ValueError("predictions: expected an array of shape (batch, ..., classes), got a "
                         "scalar")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction: expected one of {_REDUCTIONS}, got {reduction!r}")
    dt = np.result_type(p, t)
    sm = C.scalar("smooth", smooth, dt)
    al = C.scalar("alpha", alpha, dt)
    be = C.scalar("beta", beta, dt)
    if not apply_softmax:
        sums = np.sum(p, axis=-1)
        if not np.allclose(sums, 1.0, rtol=1e-5):
            raise ValueError("predictions: when apply_softmax=False, predictions must be "
                             "probability distributions that sum to 1 along the class axis; "
                             f"found sums in [{np.min(sums):.6f}, {np.max(sums):.6f}]")
        probs = p
    elif p.shape[-1] == 1:
        probs = _sigmoid(p)
    else:
        probs = C.softmax(p, -1, None)
    if axis is None:
        ax = tuple(range(1, probs.ndim - 1))
    else:
        ax = C.axes("axis", axis, probs.ndim)
        if probs.ndim - 1 in ax:
            raise ValueError(f"axis: expected axes other than the class axis (the last), got "
                             f"{axis!r}")
    inter = np.sum(probs * t, axis=ax)
    psum = np.sum(probs, axis=ax)
    tsum = np.sum(t, axis=ax)
    num = inter + sm
    den = inter + al * (psum - inter) + be * (tsum - inter) + sm
    coeff = num / den
    dl = dt.type(1) - coeff
    cw = None
    if class_weights is not None:
        cw = C.numbers_("class_weights", class_weights, dt)
        if cw.ndim != 1:
            raise ValueError(f"class_weights: expected a 1-D array, got shape {cw.shape}")
        C.broadcastable("class_weights", cw, dl.shape, "the per-class losses")
        dl = dl * cw
    drop = ignore_background and probs.shape[-1] > 1
    if drop:
        dl = dl[..., 1:]
    if reduction == "mean":
        value = np.mean(dl, axis=-1)
    elif reduction == "sum":
        value = np.sum(dl, axis=-1)
    else:
        value = dl
    value = np.asarray(value).astype(dt, copy=False)
    if want_grad is False:
        return value, None
    ct_out = np.ones(value.shape, dt) if want_grad is True else np.asarray(want_grad, dt)
    if reduction == "mean":
        ct = np.broadcast_to((ct_out / dt.type(dl.shape[-1]))[..., None], dl.shape)
    elif reduction == "sum":
        ct = np.broadcast_to(ct_out[..., None], dl.shape)
    else:
        ct = ct_out
    if drop:
        ct = np.concatenate([np.zeros(ct.shape[:-1] + (1,), dt), ct], axis=-1)
    if cw is not None:
        ct = ct * cw
    ct_num = -ct / den
    ct_den = ct * num / den ** 2
    ct_inter = ct_num + ct_den - al * ct_den - be * ct_den
    ct_psum = al * ct_den
    ct_probs = np.expand_dims(ct_inter, ax) * t + np.expand_dims(ct_psum, ax)
    ct_probs = np.broadcast_to(ct_probs, probs.shape)
    if not apply_softmax:
        g = ct_probs
    elif p.shape[-1] == 1:
        g = ct_probs * probs * (dt.type(1) - probs)
    else:
        g = C.softmax_vjp(probs, ct_probs, -1, None)
    return value, np.asarray(g, dt).reshape(shape_in)


@C.errstate
def _dice_loss(want_grad, predictions, targets, *, class_weights=None, smooth=1.0, alpha=0.5,
               beta=0.5, apply_softmax=True, reduction="mean", ignore_background=False,
               axis=None):
    v, g = _dice(want_grad, predictions, targets, class_weights, smooth, alpha, beta,
                 apply_softmax, reduction, ignore_background, axis)
    return C.out(v), (C.out(g) if want_grad else None)


dice_loss, dice_loss_grad, dice_loss_value_and_grad = C.loss(_dice_loss, r"""
Dice (Tversky) loss for segmentation (Milletari et al., "V-Net", 3DV 2016;
Salehi et al., "Tversky loss function for image segmentation", 2017).

Per sample and class, with ``p`` the probabilities (softmax over the classes,
a sigmoid for one channel) summed over the spatial axes,

.. math::  \ell = 1 - \frac{I + s}{I + \alpha (P - I) + \beta (T - I) + s},
           \quad I = \sum p\,t,\ P = \sum p,\ T = \sum t

(``alpha = beta = 1/2`` is the Dice loss), optionally weighted per class,
without the background class, then reduced over the classes.

Args:
  predictions: logits (or probabilities) of shape ``(batch, ..., classes)``.
  targets: one-hot targets of the same shape (a missing channel axis on
    either is added).
  class_weights: optional 1-D weights of the classes.
  smooth: smoothing constant ``s``.
  alpha: weight of the false positives.
  beta: weight of the false negatives.
  apply_softmax: apply softmax (sigmoid for one channel); else
    ``predictions`` must sum to 1 over the classes.
  reduction: "mean", "sum" or "none" over the classes.
  ignore_background: drop class 0 (when there are several classes).
  axis: the axes summed over (default: all but the first and last).
Returns:
  the losses, of shape ``(batch,)`` (``(batch, classes)`` for "none").
""", _M)


@C.errstate
def _binary_dice_loss(want_grad, predictions, targets, *, smooth=1.0, apply_sigmoid=True):
    p = C.floats("predictions", predictions)
    t = np.asarray(targets)
    shape_in = p.shape
    if p.ndim == t.ndim and p.ndim and p.shape[-1] != 1:
        p, t = p[..., None], t[..., None]
    v, g = _dice(want_grad, p, t, None, smooth, 0.5, 0.5, apply_sigmoid, "mean", False, None)
    return C.out(v), (C.out(g.reshape(shape_in)) if want_grad else None)


binary_dice_loss, binary_dice_loss_grad, binary_dice_loss_value_and_grad = C.loss(
    _binary_dice_loss, r"""
Binary Dice loss: ``dice_loss`` with one channel (a sigmoid of the logits).

.. math::  \ell = 1 - \frac{2 I + 2 s}{P + T + 2 s}

Args:
  predictions: logits of shape ``(batch, ...)`` or ``(batch, ..., 1)``.
  targets: binary targets of the same shape.
  smooth: smoothing constant.
  apply_sigmoid: apply a sigmoid to ``predictions``.
Returns:
  the losses, of shape ``(batch,)``.
""", _M)


@C.errstate
def _multiclass_generalized_dice_loss(want_grad, predictions, targets, *, smooth=1.0,
                                      apply_softmax=True, ignore_background=False):
    p = C.floats("predictions", predictions)
    t = C.numbers_("targets", targets, p.dtype)
    C.same_shape("targets", t, p.shape, "predictions")
    if p.ndim == 0:
        raise ValueError("predictions: expected an array of shape (batch, ..., classes)")
    dt = np.result_type(p, t)
    freq = np.sum(t, axis=tuple(range(t.ndim - 1)))
    cw = dt.type(1) / (freq ** 2 + dt.type(1e-7))
    cw = cw / np.sum(cw) * dt.type(len(cw))
    v, _ = _dice(False, p, t, cw, smooth, 0.5, 0.5, apply_softmax, "none",
                 ignore_background, None)
    value = np.mean(v)
    g = None
    if want_grad:
        ct = np.full(v.shape, dt.type(1) / dt.type(v.size), dt)
        _, g = _dice(ct, p, t, cw, smooth, 0.5, 0.5, apply_softmax, "none",
                     ignore_background, None)
        g = C.out(g)
    return C.out(value, dt), g


(multiclass_generalized_dice_loss, multiclass_generalized_dice_loss_grad,
 multiclass_generalized_dice_loss_value_and_grad) = C.loss(_multiclass_generalized_dice_loss, r"""
Generalized Dice loss (Sudre et al., "Generalised Dice overlap as a deep
learning loss function for highly unbalanced segmentations", DLMIA 2017).

``dice_loss`` per sample and class, weighted by the inverse squared class
frequency ``f_c`` of the targets, averaged over samples and classes:

.. math::  \ell = \operatorname{mean}_{b, c}\, w_c\, \ell^{\mathrm{dice}}_{b, c}, \quad
           w_c = K \frac{1 / (f_c^2 + 10^{-7})}{\sum_k 1 / (f_k^2 + 10^{-7})}

Args:
  predictions: logits of shape ``(batch, ..., classes)``.
  targets: one-hot targets of the same shape.
  smooth: smoothing constant.
  apply_softmax: apply softmax over the classes.
  ignore_background: drop class 0.
Returns:
  the scalar loss.
""", _M)
