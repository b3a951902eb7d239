r"""Unit-wise clipping: ``unitwise_norm``, ``unitwise_clip`` and
``adaptive_grad_clip`` (AGC, Brock et al., 2021).

A *unit* is a slice of a leaf along the reduced axes (by default: the
whole of a vector; axis 0 of a matrix or a 3-D multi-head kernel, the input
units; axes (0, 1, 2) of an HWIO conv kernel; (0, 1, 2, 3) of a DHWIO one).
AGC clips each unit of the update to ``clipping`` times the norm of the
same unit of the params:

.. math::

    G = \|u\|_{\text{unit}},\quad M = \text{clipping}\cdot\max(\|p\|_{\text{unit}}, \epsilon),
    \qquad u \leftarrow u \text{ if } G < M \text{ else } u \cdot \frac{M}{\max(G, 10^{-6})}

Unit norms are sums of squares by ``npopt.kernels.reduce`` (fixed order, the
same bits on every CPU). The state is ``AdaptiveGradClipState`` (optax's
alias of ``EmptyState``); no fused form: ``opt.step`` is ``update`` +
``apply_updates``.
"""
import numpy as np

from .. import _checks
from .. import numerics as _num
from ..base import EmptyState, GradientTransformation, init_empty_state
from ..tree import tree_map, tree_structure

AdaptiveGradClipState = EmptyState

NO_PARAMS_MSG = ("You are using a transformation that requires the current value of "
                 "parameters, but you are not passing `params` when calling `update`.")


def unitwise_norm(x, axis=None):
    """The L2 norm of each unit of ``x``, broadcast to ``x.shape``.

    Units by rank when ``axis`` is None: a scalar or a vector (after
    squeezing) is one unit; rank 2 or 3: axis 0; rank 4: axes (0, 1, 2);
    rank 5: axes (0, 1, 2, 3); other ranks raise (give ``axis``).

    Args:
      x: an array.
      axis: the axis or axes to reduce over, or None (by rank).

    Returns:
      An array of ``x``'s shape (and real dtype) holding each unit's norm.
    """
    x = _num._inexact(x)
    if axis is None:
        if np.squeeze(x).ndim <= 1:
            axis = tuple(range(x.ndim))
        elif x.ndim in (2, 3):
            axis = 0
        elif x.ndim == 4:
            axis = (0, 1, 2)
        elif x.ndim == 5:
            axis = (0, 1, 2, 3)
        else:
            raise ValueError(f"x: expected a parameter with rank in {{1, 2, 3, 4, 5}}, got "
                             f"shape {x.shape}; use the axis parameter to specify the "
                             "reduction axes for other shapes")
    return np.broadcast_to(np.sqrt(_num.sumsq(x, axis)), x.shape).copy()


def _shape(a):
    return np.shape(a)


def unitwise_clip(g_norm, max_norm, grad, div_eps=1e-6):
    """``grad`` where ``g_norm < max_norm``, else ``grad * max_norm /
    max(g_norm, div_eps)`` (elementwise; the three arrays of one shape).

    ``div_eps`` only keeps the division finite; it cannot engage when
    ``max_norm > 0``.
    """
    for name, a in (("max_norm", max_norm), ("grad", grad)):
        if _shape(a) != _shape(g_norm):
            raise ValueError(f"{name}: expected the shape of g_norm {_shape(g_norm)}, "
                             f"got {_shape(a)}")
    g_norm, max_norm, grad = np.asarray(g_norm), np.asarray(max_norm), np.asarray(grad)
    with np.errstate(divide="ignore", invalid="ignore"):
        clipped = grad * (max_norm / np.maximum(g_norm, div_eps))
    out = np.where(g_norm < max_norm, grad, clipped)
    return out[()] if out.ndim == 0 else out


def adaptive_grad_clip(clipping, eps=1e-3, axis=None):
    r"""Clips updates to at most ``clipping`` times the params' norm, unit-wise
    (see the module docstring for the math and the units).

    Args:
      clipping: the largest ratio of an update unit's norm to its params
        unit's norm.
      eps: floor of the params' unit norm (zero-initialised params still
        move).
      axis: axis or axes of the unit-wise norm; None: by rank (see
        ``unitwise_norm``).

    References:
      Brock et al., `High-Performance Large-Scale Image Recognition Without
      Normalization <https://arxiv.org/abs/2102.06171>`_, 2021.
    """
    clipping = _checks.check_number("clipping", clipping, low=0.0)
    eps = _checks.check_number("eps", eps, low=0.0)

    def update_fn(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError(NO_PARAMS_MSG)
        _num.check_inexact_tree("updates", updates)
        _num.check_inexact_tree("params", params)
        p_leaves = tree_structure(updates).flatten_up_to(params, "params")
        for u, p in zip(tree_structure(updates).flatten_up_to(updates, "updates"), p_leaves):
            if np.shape(u) != np.shape(p):
                raise ValueError(f"params: a leaf of shape {np.shape(p)} where the updates "
                                 f"have {np.shape(u)}")

        def one(u, p):
            g_norm = unitwise_norm(u, axis=axis)
            max_norm = clipping * np.maximum(unitwise_norm(p, axis=axis), eps)
            return unitwise_clip(g_norm, max_norm, u)

        return tree_map(one, updates, params), state

    return GradientTransformation(init_empty_state, update_fn)
