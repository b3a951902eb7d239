r"""Gradient normalizations: ``centralize`` and ``normalize_by_update_norm``.

.. math::

    \text{centralize:}\quad u \leftarrow u - \operatorname{mean}_{1..d-1}(u)
    \quad (\text{leaves of } d > 1 \text{ dimensions; others unchanged})

    \text{normalize\_by\_update\_norm:}\quad
    u \leftarrow u \,/\, \frac{\|u\|_2 + \epsilon}{s}

The mean (a sum in a fixed order divided by the count) and the global norm
(``npopt.numerics``: fixed chunks of ``npopt.kernels.reduce``) do not depend
on the CPU; XLA adds in its own order, so agreement with optax is to
rounding. Both are stateless (``EmptyState``) and have no fused form:
``opt.step`` is ``update`` + ``apply_updates``.
"""
import numpy as np

from .. import _checks
from .. import numerics as _num
from .._checks import is_narrow
from ..base import GradientTransformation, init_empty_state
from ..tree import tree_map


def _subtract_mean(g):
    g = np.asarray(g) if not isinstance(g, np.ndarray) else g
    if g.ndim <= 1:
        return g
    rows = np.ascontiguousarray(g).reshape(g.shape[0], -1)
    with np.errstate(invalid="ignore", divide="ignore"):      # an empty row: 0/0, as jnp
        mean = _num.row_sum(rows) / g.dtype.type(rows.shape[1])
    return g - mean.reshape((g.shape[0],) + (1,) * (g.ndim - 1))


def centralize():
    r"""Gradient centralization (Yong et al., 2020): every leaf of more than
    one dimension has the mean over all its axes but the first subtracted,

    .. math:: u_{i,\dots} \leftarrow u_{i,\dots} - \operatorname{mean}_{j}\, u_{i,j}.

    Leaves of 0 or 1 dimensions pass unchanged (optax's convention).

    References:
      Yong et al., `Gradient Centralization: A New Optimization Technique
      for Deep Neural Networks <https://arxiv.org/abs/2004.01461>`_, 2020.
    """
    def update_fn(updates, state, params=None, **extra_args):
        del params
        _num.check_inexact_tree("updates", updates)
        return tree_map(_subtract_mean, updates), state

    return GradientTransformation(init_empty_state, update_fn)


def normalize_by_update_norm(scale_factor=1.0, eps=1e-6):
    r"""Scale the updates by the inverse of their global norm:

    .. math:: u \leftarrow u \,/\, \frac{\|u\|_2 + \epsilon}{\text{scale\_factor}}

    ``(norm + eps) / scale_factor`` is formed in the norm's dtype (a Python
    number does not promote it) and each leaf is divided by it, as optax does.

    Args:
      scale_factor: factor by which the update will be multiplied.
      eps: jitter term to avoid dividing by 0.
    """
    scale_factor = _checks.check_number("scale_factor", scale_factor)
    if float(scale_factor) == 0.0:
        raise ValueError("scale_factor: expected a finite number != 0, got 0 "
                         "(every update would be divided by inf)")
    eps = _checks.check_number("eps", eps, low=0.0)

    def update_fn(updates, state, params=None, **extra_args):
        del params
        leaves = _num.check_inexact_tree("updates", updates)
        g_norm = (np.sqrt(_num.tree_sumsq(leaves)) + eps) / scale_factor
        # a 16-bit leaf keeps its dtype, as in optax (whose norm has that dtype)
        return tree_map(lambda g: g / (g_norm.astype(g.dtype) if is_narrow(np.asarray(g).dtype)
                                       else g_norm), updates), state

    return GradientTransformation(init_empty_state, update_fn)
