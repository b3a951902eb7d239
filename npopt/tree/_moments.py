"""Moments (optax.tree_utils/_tree_math.py).  The order of operations mirrors
optax exactly; ``None`` leaves of ``updates`` stay None."""

import numpy as np

from ._dtype import _leaf_dtype
from ._structure import _is_none, tree_map


def tree_update_moment(updates, moments, decay, order):
    """EMA of the ``order``-th moment: ``(1-decay) * g**order + decay * m``."""
    return tree_map(
        lambda g, t: None if g is None else (1 - decay) * (g ** order)
        + decay * t,
        updates, moments, is_leaf=_is_none)


def tree_update_infinity_moment(updates, moments, decay, eps):
    """EMA of the infinity norm: ``max(|g| + eps, decay * m)``."""
    return tree_map(
        lambda g, t: None if g is None else np.maximum(np.abs(g) + eps,
                                                       decay * t),
        updates, moments, is_leaf=_is_none)


def tree_update_moment_per_elem_norm(updates, moments, decay, order):
    """EMA of ``|g|**order``: ``g**order`` if real, ``|g|^2**(order/2)`` if not."""
    def orderth_norm(g):
        if not np.iscomplexobj(g):
            return g ** order
        half_order = order / 2
        if float(half_order).is_integer():
            half_order = int(half_order)
        return np.real(np.conj(g) * g) ** half_order

    return tree_map(
        lambda g, t: None if g is None else (1 - decay) * orderth_norm(g)
        + decay * t,
        updates, moments, is_leaf=_is_none)


def tree_bias_correction(moment, decay, count):
    """``m / (1 - decay**count)``; the correction is cast to each leaf's dtype.

    As in optax, ``1 - decay**count`` is computed first (in the precision of
    ``decay``/``count``), then cast to the leaf dtype, then divided.
    """
    correction = np.asarray(1 - decay ** count)
    return tree_map(lambda t: t / correction.astype(_leaf_dtype(t)), moment)
