"""Kullback-Leibler divergences (optax.losses._classification):
kl_divergence, kl_divergence_with_log_targets, generalized_kl_divergence and
its deprecated name convex_kl_divergence."""
import warnings

import numpy as np

from .. import _math
from . import _common as C

_M = "npopt.losses"


def _args(log_predictions, targets, tname, axis, where):
    lp = C.floats("log_predictions", log_predictions)
    t = C.floats(tname, targets)
    C.broadcastable(tname, t, lp.shape, "log_predictions")
    ax = C.axes("axis", axis, lp.ndim)
    w = C.mask("where", where, lp.shape, "log_predictions")
    dt = np.result_type(lp, t)
    return lp, np.broadcast_to(t, lp.shape).astype(dt, copy=False), ax, w, dt


def _masked(g, w):
    return g if w is None else np.where(w, g, 0)


@C.errstate
def _kl_divergence(want_grad, log_predictions, targets, axis=-1, where=None):
    lp, t, ax, w, dt = _args(log_predictions, targets, "targets", axis, where)
    zero = np.zeros((), dt)
    loss = t * (np.where(t == 0, zero, _math.log(t)) - lp)
    g = C.out(_masked(-t, w), dt) if want_grad else None
    return C.out(C.msum(loss, ax, w), dt), g


kl_divergence, kl_divergence_grad, kl_divergence_value_and_grad = C.loss(_kl_divergence, r"""
Kullback-Leibler divergence of predictions from targets (Kullback &
Leibler 1951).

.. math::  \mathrm{KL}(t \,\|\, p) = \sum_i t_i (\log t_i - \log p_i),
           \qquad \partial_{\log p} = -t

with ``0 log 0 = 0``. Both are expected to be probability distributions.

Args:
  log_predictions: log-probabilities, float array of shape ``(..., n)``.
  targets: probabilities, broadcastable to ``log_predictions``.
  axis: axis or axes to sum over (None: all).
  where: optional boolean mask of the elements to include.
Returns:
  the divergences, of shape ``(...)``.
""", _M)


@C.errstate
def _kl_divergence_with_log_targets(want_grad, log_predictions, log_targets, axis=-1,
                                    where=None):
    lp, lt, ax, w, dt = _args(log_predictions, log_targets, "log_targets", axis, where)
    et = _math.exp(lt)
    loss = et * (lt - lp)
    g = C.out(_masked(-et, w), dt) if want_grad else None
    return C.out(C.msum(loss, ax, w), dt), g


(kl_divergence_with_log_targets, kl_divergence_with_log_targets_grad,
 kl_divergence_with_log_targets_value_and_grad) = C.loss(_kl_divergence_with_log_targets, r"""
Kullback-Leibler divergence with the targets given as logarithms.

.. math::  \mathrm{KL} = \sum_i e^{\log t_i} (\log t_i - \log p_i),
           \qquad \partial_{\log p} = -t

Args:
  log_predictions: log-probabilities, float array of shape ``(..., n)``.
  log_targets: log-probabilities, broadcastable to ``log_predictions``.
  axis: axis or axes to sum over (None: all).
  where: optional boolean mask of the elements to include.
Returns:
  the divergences, of shape ``(...)``.
""", _M)


@C.errstate
def _generalized_kl_divergence(want_grad, log_predictions, targets, axis=-1, where=None):
    lp, t, ax, w, dt = _args(log_predictions, targets, "targets", axis, where)
    x, g = _kl_divergence(want_grad, lp, t, axis=ax, where=w)
    ep = _math.exp(lp)
    y = C.msum(ep - t, ax, w)
    if want_grad:
        g = C.out(g + _masked(ep, w), dt)
    return C.out(x + y, dt), g


(generalized_kl_divergence, generalized_kl_divergence_grad,
 generalized_kl_divergence_value_and_grad) = C.loss(_generalized_kl_divergence, r"""
Generalized Kullback-Leibler divergence (I-divergence), for non-negative
vectors that need not sum to one (Lee & Seung, NIPS 2000).

.. math::  D(t \,\|\, p) = \sum_i t_i (\log t_i - \log p_i) + \sum_i (p_i - t_i),
           \qquad \partial_{\log p} = p - t

Args:
  log_predictions: log of the predictions, float array of shape ``(..., n)``.
  targets: non-negative targets, broadcastable to ``log_predictions``.
  axis: axis or axes to sum over (None: all).
  where: optional boolean mask of the elements to include.
Returns:
  the divergences, of shape ``(...)``.
""", _M)


def _warn():
    warnings.warn("The function convex_kl_divergence is deprecated. Please use "
                  "generalized_kl_divergence instead.", DeprecationWarning, stacklevel=3)


def _convex_kl_divergence(want_grad, log_predictions, targets, axis=-1, where=None):
    _warn()
    return _generalized_kl_divergence(want_grad, log_predictions, targets, axis=axis,
                                      where=where)


(convex_kl_divergence, convex_kl_divergence_grad,
 convex_kl_divergence_value_and_grad) = C.loss(_convex_kl_divergence, r"""
Deprecated name of ``generalized_kl_divergence`` (a DeprecationWarning, as
optax).
""", _M)
