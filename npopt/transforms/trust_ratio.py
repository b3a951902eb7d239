"""scale_by_trust_ratio: layer-wise trust ratios (LARS/LAMB).

Per leaf: ``r = trust_coefficient * ||p|| / (||u|| + eps)``, with both norms
floored at ``min_norm``, and ``r = 1`` where either norm is 0; ``u <- r u``.
Norms are deterministic chunked sums (``npopt.transforms._segments``).
"""
import numpy as np

from .. import _checks, _flat
from .._checks import real_dtype
from ..base import NO_PARAMS_MSG, EmptyState, GradientTransformation, init_empty_state
from ..kernels import trust_ratio as ktr
from . import _fusion, _segments

ScaleByTrustRatioState = EmptyState


def segment_sumsq(lay, grp, x, y):
    """Per-leaf (sum x^2, sum y^2) of one group's buffers, shape (k, 2)."""
    return _segments.group_sumsq(lay, lay.groups.index(grp), x, y)


def trust_ratios(ss, dtype, min_norm, trust_coefficient, eps):
    """Per leaf ``tau * max(||p||, m) / (max(||u||, m) + eps)``, 1 where a norm
    is 0, from the sums of squares ``ss[:, 0] = sum p^2``, ``ss[:, 1] = sum u^2``
    (in the leaf dtype, as optax)."""
    dt = np.dtype(dtype).type
    pn = np.maximum(np.sqrt(ss[:, 0]), dt(min_norm))
    un = np.maximum(np.sqrt(ss[:, 1]), dt(min_norm))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = dt(trust_coefficient) * pn / (un + dt(eps))
    return np.where((pn == 0) | (un == 0), dt(1), ratio).astype(dtype)


def scale_by_trust_ratio(min_norm=0.0, trust_coefficient=1.0, eps=0.0):
    r"""Scales each leaf's update by its trust ratio
    :math:`\tau \max(\|p\|, m) / (\max(\|u\|, m) + \epsilon)` (1 where a norm is 0).

    References:
      You et al., "Large Batch Training of Convolutional Networks" (LARS), 2017;
      You et al., "Large Batch Optimization for Deep Learning" (LAMB), 2020.
    """
    min_norm = _checks.check_number("min_norm", min_norm, low=0.0)
    trust_coefficient = _checks.check_number("trust_coefficient", trust_coefficient, low=0.0)
    eps = _checks.check_number("eps", eps, low=0.0)

    def update_fn(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError(NO_PARAMS_MSG)
        _flat.check_like(params, updates, "updates")
        lay, _ = _flat.layout_of(updates, "updates", complex_ok=True)   # norms of |u|, |p|
        u = lay.gather(updates, "updates")
        # optax's dtypes: the updates promote with the params (float64 updates
        # of float32 params, and the reverse, give float64 updates)
        p, pdts = lay.gather_promoted(params, "params", ref="updates", own=True)
        dts = [np.promote_types(grp.dtype, pdt) for grp, pdt in zip(lay.groups, pdts)]
        u = [_flat.as_dtype(lay.target, b, dt) for b, dt in zip(u, dts)]
        p = [_flat.as_dtype(lay.target, b, dt) for b, dt in zip(p, dts)]
        out = [lay.target.empty(grp.size, dt) for grp, dt in zip(lay.groups, dts)]
        for grp, ub, pb, ob, dt in zip(lay.groups, u, p, out, dts):
            ss = segment_sumsq(lay, grp, pb, ub)
            ratio = trust_ratios(ss, real_dtype(dt), min_norm, trust_coefficient, eps)
            segs, ratio = lay.target.put(grp.segments), lay.target.put(ratio)
            lay.target.launch(ktr.scale_segments_cpu, ktr.scale_segments_cuda,
                              ub, segs, ratio, ob)
        return lay.views(out), state

    return GradientTransformation(init_empty_state, update_fn,
                                  fusion=_fusion.TrustRatio(min_norm, trust_coefficient, eps))
