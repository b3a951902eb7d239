"""Label smoothing (optax.losses._smoothing)."""
import numpy as np

from . import _common as C


def smooth_labels(labels, alpha, *, axis=-1, where=None):
    r"""Label smoothing (Szegedy et al., "Rethinking the Inception
    architecture for computer vision", CVPR 2016).

    .. math::  y' = (1 - \alpha)\, y + \alpha / K

    with ``K`` the number of categories along ``axis`` (the count of ``where``
    when given). Not a loss: it transforms targets, so there is no gradient.

    Args:
      labels: float one-hot labels of shape ``(..., K)``.
      alpha: the smoothing factor.
      axis: axis or axes of the categories (None: all).
      where: optional boolean mask of the categories to count.
    Returns:
      the smoothed labels, with the shape of ``labels``.
    """
    y = C.floats("labels", labels)
    ax = C.axes("axis", axis, y.ndim)
    a = C.scalar("alpha", alpha, y.dtype)
    one = y.dtype.type(1)
    if where is None:
        k = y.dtype.type(int(np.prod([y.shape[i] for i in ax])))
    else:
        w = C.mask("where", where, y.shape, "labels")
        k = np.sum(w, axis=ax, keepdims=True).astype(y.dtype)
    return C.out((one - a) * y + a / k, y.dtype)
