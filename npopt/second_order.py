r"""optax.second_order's helpers (deprecated in optax 0.2.7, to go in 0.2.9)
for NumPy: ``hvp``, ``hessian_diag`` and ``fisher_diag``.

optax differentiates ``loss(params, inputs, targets)`` with JAX. npopt has no
autodiff, so the derivatives come from what the caller supplies, or from
finite differences where those are accurate enough:

* ``hvp(loss, v, params, inputs, targets, *, grad_fn=None, hvp_fn=None)``:
  ``hvp_fn(params, v, inputs, targets)`` (an exact product, ``v`` shaped
  like params) is returned as is; otherwise ``grad_fn(params, inputs,
  targets)`` (the gradient of ``loss``, a tree like params) is differenced
  along ``v``,

  .. math:: H v \approx \frac{\nabla L(p + h v) - \nabla L(p - h v)}{2h},
     \qquad h = \epsilon^{1/3} \max(1, \|p\|) / \|v\|

  (``npopt._finite_diff.directional``; about :math:`\epsilon^{2/3}`
  relative: 5e-11 in float64). With neither, a TypeError: a product of the
  Hessian from differences of differences of ``loss`` is too inexact to
  stand in silently.
* ``hessian_diag(loss, params, inputs, targets, *, grad_fn=None)``: the
  diagonal :math:`\partial^2 L / \partial p_i^2` as a flat vector (in
  ``npopt.tree.ravel`` order); from ``grad_fn`` by central differences of
  its i-th component (2n gradient calls), or without it by second
  differences of ``loss`` (:math:`h_i = \epsilon^{1/4}\max(1, |p_i|)`,
  about :math:`\epsilon^{1/2}` relative: 1e-8 in float64; 2n + 1 loss
  calls).
* ``fisher_diag(negative_log_likelihood, params, inputs, targets, *,
  grad_fn=None)``: optax's observed Fisher diagonal, the elementwise square
  of the (raveled) gradient of the negative log-likelihood over the whole
  batch; from ``grad_fn``, or by central differences of
  ``negative_log_likelihood``.

Finite differences are computed in the params' dtype; pass float64 params
for accurate numbers.
"""
import numpy as np

from . import _checks
from . import _finite_diff as _fd
from .tree import ravel

__all__ = ["fisher_diag", "hessian_diag", "hvp"]


def _flat_params(params):
    flat, unravel = ravel(params)
    flat = np.asarray(flat)
    if flat.dtype.kind != "f":
        raise TypeError(f"params: expected float leaves, got dtype {flat.dtype}")
    return flat, unravel


def _flat_grad(grad_fn, unravel, inputs, targets, dtype):
    def g(x):
        out, _ = ravel(grad_fn(unravel(x), inputs, targets))
        return np.asarray(out, dtype)
    return g


def hvp(loss, v, params, inputs, targets, *, grad_fn=None, hvp_fn=None):
    """The product of the Hessian of ``loss`` at ``(params, inputs, targets)``
    with ``v`` (a flat vector of ``ravel(params)``'s size, as in optax).

    Args:
      loss: ``loss(params, inputs, targets) -> scalar`` (kept for optax's
        signature; npopt differentiates ``grad_fn`` or calls ``hvp_fn``).
      v: a vector of the size of the raveled params.
      params, inputs, targets: where the Hessian is taken.
      grad_fn: ``grad_fn(params, inputs, targets)``, the gradient of
        ``loss`` (a tree like params); differenced along ``v``.
      hvp_fn: ``hvp_fn(params, v, inputs, targets)``, an exact product
        (``v`` given as a tree like params); preferred when given.

    Returns:
      ``H v`` as a tree shaped like params (optax's ``jax.jvp`` output).
    """
    _checks.check_callable("loss", loss)
    _checks.check_callable("grad_fn", grad_fn, allow_none=True)
    _checks.check_callable("hvp_fn", hvp_fn, allow_none=True)
    flat, unravel = _flat_params(params)
    v = np.asarray(v)
    if v.shape != flat.shape:
        raise ValueError(f"v: expected a vector of shape {flat.shape} (the raveled params), "
                         f"got {v.shape}")
    if hvp_fn is not None:
        return hvp_fn(params, unravel(v.astype(flat.dtype)), inputs, targets)
    if grad_fn is None:
        raise TypeError("hvp: npopt has no autodiff; pass grad_fn (the gradient of loss, "
                        "differenced along v) or hvp_fn (an exact Hessian-vector product)")
    if not np.any(v):
        return unravel(np.zeros_like(flat))
    g = _flat_grad(grad_fn, unravel, inputs, targets, flat.dtype)
    out = _fd.directional(g, flat, v.astype(flat.dtype))
    return unravel(np.asarray(out, flat.dtype))


def hessian_diag(loss, params, inputs, targets, *, grad_fn=None):
    """The diagonal of the Hessian of ``loss`` at ``(params, inputs,
    targets)``, as a flat vector (see the module docstring for how it is
    computed with and without ``grad_fn``)."""
    _checks.check_callable("loss", loss)
    _checks.check_callable("grad_fn", grad_fn, allow_none=True)
    flat, unravel = _flat_params(params)
    n = flat.size
    if grad_fn is not None:
        g = _flat_grad(grad_fn, unravel, inputs, targets, flat.dtype)
        h = _fd.step(flat)
        out = np.empty(n, flat.dtype)
        x = flat.copy()
        for i in range(n):
            xi = x[i]
            x[i] = xi + h[i]
            gp = g(x.copy())[i]
            x[i] = xi - h[i]
            gm = g(x.copy())[i]
            x[i] = xi
            out[i] = (gp - gm) / (2 * h[i])
        return out

    def f(x):
        return np.asarray(loss(unravel(x), inputs, targets), np.float64)

    f0 = f(flat)
    h = np.finfo(flat.dtype).eps ** 0.25 * np.maximum(1.0, np.abs(flat))
    out = np.empty(n, flat.dtype)
    x = flat.copy()
    for i in range(n):
        xi = x[i]
        x[i] = xi + h[i]
        fp = f(x.copy())
        x[i] = xi - h[i]
        fm = f(x.copy())
        x[i] = xi
        out[i] = (fp - 2 * f0 + fm) / (h[i] * h[i])
    return out


def fisher_diag(negative_log_likelihood, params, inputs, targets, *, grad_fn=None):
    """The diagonal of the observed Fisher information: the elementwise
    square of the raveled gradient of ``negative_log_likelihood(params,
    inputs, targets)`` (from ``grad_fn`` when given, else by central
    differences)."""
    _checks.check_callable("negative_log_likelihood", negative_log_likelihood)
    _checks.check_callable("grad_fn", grad_fn, allow_none=True)
    flat, unravel = _flat_params(params)
    if grad_fn is not None:
        g = _flat_grad(grad_fn, unravel, inputs, targets, flat.dtype)(flat)
    else:
        def f(x):
            return np.asarray(negative_log_likelihood(unravel(x), inputs, targets))
        g = np.asarray(_fd.central(f, flat), flat.dtype).reshape(flat.shape)
    return g * g


