"""Ranking losses (optax.losses._ranking): ranking_softmax_loss."""
import warnings

import numpy as np

from .._checks import _describe
from . import _common as C

_M = "npopt.losses"
_GRAD_REDUCE = ("None", "numpy.mean", "numpy.sum")


def _reduce(loss, where, reduce_fn):
    """optax's ``_safe_reduce``."""
    if reduce_fn is None:
        out = loss
    else:
        with warnings.catch_warnings():     # a mean over no list: NaN, then 0 below
            warnings.simplefilter("ignore", RuntimeWarning)
            out = reduce_fn(loss) if where is None else reduce_fn(loss, where=where)
    if reduce_fn is np.mean:
        valid = not np.any(np.isnan(loss))
        out = np.where(np.isnan(out) & valid, 0, out)
    if reduce_fn is None and where is not None:
        out = np.where(where, out, 0)
    return out


@C.errstate
def _ranking_softmax_loss(want_grad, logits, labels, *, where=None, weights=None,
                          reduce_fn=np.mean):
    x = C.floats("logits", logits)
    if x.ndim == 0:
        raise ValueError("logits: expected an array of shape (..., list_size), got a scalar")
    y = C.numbers_("labels", labels, x.dtype).astype(x.dtype, copy=False)
    C.broadcastable("labels", y, x.shape, "logits")
    y = np.broadcast_to(y, x.shape)
    if reduce_fn is not None and not callable(reduce_fn):
        raise TypeError(f"reduce_fn: expected a callable or None, got {_describe(reduce_fn)}")
    w = C.mask("where", where, x.shape, "logits")
    if w is not None:
        y = np.where(w, y, 0).astype(x.dtype)
        x = np.where(w, x, -np.inf).astype(x.dtype)
    if weights is not None:
        wt = C.numbers_("weights", weights, x.dtype)
        C.broadcastable("weights", wt, x.shape, "logits")
        y = (y * wt).astype(np.result_type(y, wt))
    lsm, _ = C.log_softmax_vg(x, -1, None, None)
    loss = -C.msum(y * lsm, -1, w)
    live = None if w is None else np.any(w, axis=-1)
    value = _reduce(loss, live, reduce_fn)
    g = None
    if want_grad:
        ones = np.ones(loss.shape, loss.dtype)
        if reduce_fn is None:
            ct = ones
        elif reduce_fn is np.sum:
            ct = ones
        elif reduce_fn is np.mean:     # mean over the live lists; none: 0 (optax)
            count = loss.size if live is None else int(np.sum(live))
            ct = ones / loss.dtype.type(count) if count else ones * 0
        else:
            raise TypeError(f"reduce_fn: npopt knows the gradient for reduce_fn in "
                            f"{_GRAD_REDUCE}, got {_describe(reduce_fn)} (npopt has no "
                            f"autodiff; the value works with any reduce_fn)")
        if live is not None:
            ct = np.where(live, ct, 0)
        ct_lsm = -ct[..., None] * y
        if w is not None:
            ct_lsm = np.where(w, ct_lsm, 0)
        _, g = C.log_softmax_vg(x, -1, None, ct_lsm)
        if w is not None:
            g = np.where(w, g, 0)
        g = C.out(g, np.asarray(logits).dtype)
    return C.out(value, np.asarray(loss).dtype), g


ranking_softmax_loss, ranking_softmax_loss_grad, ranking_softmax_loss_value_and_grad = C.loss(
    _ranking_softmax_loss, r"""
Ranking softmax loss (listwise softmax cross-entropy; Cao et al.,
"Learning to rank: from pairwise approach to listwise approach", ICML 2007;
Bruch et al., "An analysis of the softmax cross entropy loss for
learning-to-rank with binary relevance", ICTIR 2019).

.. math::  \ell(s, y) = -\sum_i y_i \log\mathrm{softmax}(s)_i

per list (the last axis), with masked items (``where``) left out and
``weights`` multiplying the labels, then reduced by ``reduce_fn`` over the
lists that have an item (a mean over no list gives 0, as optax).

The gradient is known for ``reduce_fn`` None (the per-list losses),
``numpy.mean`` (optax's ``jnp.mean``) and ``numpy.sum``; another
``reduce_fn`` gives values, and its ``.grad`` raises a TypeError.

Args:
  logits: float array of shape ``(..., list_size)``.
  labels: relevance labels, broadcastable to ``logits``.
  where: optional boolean mask of the valid items.
  weights: optional weights of the items, broadcastable to ``logits``.
  reduce_fn: ``f(losses, where=...)`` or None.
Returns:
  the reduced loss, or the per-list losses when ``reduce_fn`` is None.
""", _M)
