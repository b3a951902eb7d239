"""Fenchel-Young losses (optax.losses._fenchel_young)."""
import numpy as np

from .._checks import _describe
from . import _common as C


def _rows(fn, name, scores, args, kwargs):
    """``jnp.vectorize(fn, signature='(n)->()')``: fn on each last-axis row."""
    flat = scores.reshape(-1, scores.shape[-1])
    vals = [np.asarray(fn(row, *args, **kwargs)) for row in flat]
    for v in vals:
        if v.shape != ():
            raise ValueError(f"{name}: expected a scalar for each row of scores, got shape "
                             f"{v.shape}")
    return np.asarray(vals).reshape(scores.shape[:-1])


def _row_grads(fn, scores, args, kwargs):
    flat = scores.reshape(-1, scores.shape[-1])
    out = []
    for row in flat:
        g = np.asarray(fn(row, *args, **kwargs))
        if g.shape != row.shape:
            raise ValueError(f"max_fun_grad: expected the gradient of max_fun, of shape "
                             f"{row.shape} for a row of scores, got shape {g.shape}")
        out.append(g)
    return np.asarray(out).reshape(scores.shape)


def make_fenchel_young_loss(max_fun, *, max_fun_grad=None):
    r"""Creates a Fenchel-Young loss from a max function (Blondel, Martins &
    Niculae, "Learning with Fenchel-Young losses", JMLR 2020).

    For a convex "max function" ``F`` (``logsumexp`` for the logistic loss),

    .. math::  \mathrm{FY}(s, y) = F(s) - \langle y, s \rangle,
               \qquad \nabla_s \mathrm{FY}(s, y) = \nabla F(s) - y,

    along the last axis of ``scores`` (``max_fun`` is called on each
    row, as optax's ``jnp.vectorize`` does).

    npopt has no autodiff, so where optax differentiates ``max_fun`` with
    ``jax.grad``, npopt takes its gradient from the caller: ``max_fun_grad``
    (keyword only, an npopt addition), ``∇F(row, *args, **kwargs)`` of the
    row's shape (softmax for logsumexp, sparsemax for the sparsemax loss).
    Without it the loss's values work and ``loss.grad`` /
    ``loss.value_and_grad`` raise a TypeError that says so.

    Args:
      max_fun: ``F(scores, *args, **kwargs) -> scalar``, called on 1-D rows.
      max_fun_grad: (npopt) ``∇F``, same arguments, or None.
    Returns:
      ``fenchel_young_loss(scores, targets, *args, **kwargs)`` with optax's
      argument order (scores first), values of shape ``scores.shape[:-1]``;
      its ``.grad`` and ``.value_and_grad`` differentiate in ``scores``.
    """
    if not callable(max_fun):
        raise TypeError(f"max_fun: expected a callable, got {_describe(max_fun)}")
    if max_fun_grad is not None and not callable(max_fun_grad):
        raise TypeError(f"max_fun_grad: expected a callable or None, got "
                        f"{_describe(max_fun_grad)}")

    def _args(scores, targets):
        s = C.floats("scores", scores)
        if s.ndim == 0 or s.shape[-1] == 0:
            raise ValueError(f"scores: expected an array of shape (..., n), n >= 1, got shape "
                             f"{s.shape}")
        t = C.numbers_("targets", targets, s.dtype)
        C.broadcastable("targets", t, s.shape, "scores")
        return s, np.broadcast_to(t, s.shape)

    def value_and_grad(scores, targets, *args, **kwargs):
        s, t = _args(scores, targets)
        value = _rows(max_fun, "max_fun", s, args, kwargs) - np.sum(t * s, axis=-1)
        if max_fun_grad is None:
            raise TypeError("max_fun_grad: the gradient of a Fenchel-Young loss needs the "
                            "gradient of max_fun; npopt has no autodiff: pass "
                            "make_fenchel_young_loss(max_fun, max_fun_grad=...)")
        g = _row_grads(max_fun_grad, s, args, kwargs) - t
        return C.out(value), C.out(g)

    def fenchel_young_loss(scores, targets, *args, **kwargs):
        s, t = _args(scores, targets)
        return C.out(_rows(max_fun, "max_fun", s, args, kwargs) - np.sum(t * s, axis=-1))

    def grad(scores, targets, *args, **kwargs):
        return value_and_grad(scores, targets, *args, **kwargs)[1]

    fenchel_young_loss.grad = grad
    fenchel_young_loss.value_and_grad = value_and_grad
    return fenchel_young_loss
