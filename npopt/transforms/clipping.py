"""Clipping: clip, clip_by_global_norm, clip_by_block_rms, global_norm.

Norms are deterministic: each leaf's sum of squares is a sum of fixed-size
chunk sums, each chunk summed left to right and the chunks combined in index
order (``npopt.kernels.reduce.chunk_table`` / ``combine_chunks``), in the
leaf's dtype; the leaves' sums are then added in leaf order with NumPy's
promotion (optax's ``tree_sum``: ``jax.tree.reduce(add, sums, 0)``). The
result does not depend on the thread count or the CUDA grid; it agrees with
XLA's own summation order to rounding.

States are ``EmptyState`` (optax's ``ClipState`` and
``ClipByGlobalNormState`` are aliases of it).
"""
import numpy as np

from .. import _checks, _flat
from .._checks import real_dtype
from ..base import EmptyState, GradientTransformation, init_empty_state
from ..kernels import clip as kclip
from . import _fusion, _segments

ClipState = EmptyState
ClipByGlobalNormState = EmptyState

def _segment_sumsq(lay, bufs):
    """Per group: the sums of squares of its segments (leaves), in its dtype."""
    return [_segments.group_sumsq(lay, gi, buf)[:, 0] for gi, buf in enumerate(bufs)]


def _leaf_sums(lay, sums):
    """The per-segment sums rearranged in leaf order (numpy scalars)."""
    leaf = [None] * lay.num_leaves
    for grp, s in zip(lay.groups, sums):
        for k, i in enumerate(grp.leaf_ids):
            leaf[i] = s[k]
    return leaf


def _global_norm(lay, bufs):
    total = 0
    for s in _leaf_sums(lay, _segment_sumsq(lay, bufs)):
        total = total + s
    return np.sqrt(total)


def _div_mul(lay, bufs, d, m):
    """(u / d[leaf]) * m[leaf] into new buffers; d, m: per-group arrays per segment."""
    out = lay.empty()
    for grp, ub, ob, (_, chunks, offsets), dg, mg in zip(lay.groups, bufs, out, _segments.tables(lay),
                                                          d, m):
        if grp.size == 0:
            continue
        dg, mg = lay.target.put(dg), lay.target.put(mg)
        lay.target.launch(kclip.segment_div_mul_cpu, kclip.segment_div_mul_cuda,
                          ub, ob, chunks, offsets, dg, mg)
    return lay.views(out)


def global_norm(updates):
    r"""The L2 norm of all the leaves together: :math:`\sqrt{\sum_i \|u_i\|^2}`.

    Each leaf's sum of squares is computed in its dtype (deterministically,
    by fixed chunks); the leaves' sums are added in leaf order with NumPy's
    type promotion. Returns a NumPy scalar.
    """
    lay, _ = _flat.layout_of(updates, "updates", complex_ok=True)     # norms of |u|
    return _global_norm(lay, lay.gather(updates, "updates"))


def clip(max_delta):
    """Clips updates elementwise to ``[-max_delta, max_delta]`` (NaN stays NaN).

    Args:
      max_delta: the largest absolute value of an update element (cast to
        each leaf's dtype).
    """
    max_delta = _checks.check_number("max_delta", max_delta, low=0.0)

    def update_fn(updates, state, params=None, **extra_args):
        lay, _ = _flat.layout_of(updates, "updates")
        u = lay.gather(updates, "updates")
        out = lay.empty()
        for grp, ub, ob in zip(lay.groups, u, out):
            dt = grp.dtype.type
            lay.target.launch(kclip.clip_cpu, kclip.clip_cuda, ub, ob,
                              dt(-max_delta), dt(max_delta))
        return lay.views(out), state

    return GradientTransformation(init_empty_state, update_fn)


def clip_by_global_norm(max_norm):
    r"""Clips updates by their global norm (Pascanu et al., 2012).

    .. math::
        n = \sqrt{\textstyle\sum_i \|u_i\|^2},\qquad
        u \leftarrow u \text{ if } n < \text{max\_norm}
        \text{ else } (u / n)\cdot \text{max\_norm}

    ``n`` is cast to each leaf's dtype before the division, and
    ``max_norm`` too before the product (optax's roundings). A NaN norm
    makes every update NaN, as in optax.

    Args:
      max_norm: the largest global norm of the returned updates, > 0.

    References:
      Pascanu et al., "On the difficulty of training Recurrent Neural
      Networks", 2012, https://arxiv.org/abs/1211.5063
    """
    # 0 would turn zero updates into 0/0 = NaN (as in optax)
    max_norm = _checks.check_number("max_norm", max_norm, low=0.0, low_open=True)

    def update_fn(updates, state, params=None, **extra_args):
        lay, _ = _flat.layout_of(updates, "updates", complex_ok=True)   # a real norm
        u = lay.gather(updates, "updates")
        g_norm = _global_norm(lay, u)
        if g_norm < max_norm:
            return updates, state
        d = [np.full(len(g.leaf_ids), g_norm, real_dtype(g.dtype)) for g in lay.groups]
        m = [np.full(len(g.leaf_ids), max_norm, real_dtype(g.dtype)) for g in lay.groups]
        return _div_mul(lay, u, d, m), state

    return GradientTransformation(init_empty_state, update_fn)


def clip_by_block_rms(threshold):
    r"""Clips each leaf ("block") to a root mean square of at most ``threshold``.

    .. math::
        u_i \leftarrow u_i / \max\left(1, \mathrm{rms}(u_i)/\text{threshold}\right),
        \qquad \mathrm{rms}(u_i) = \sqrt{\operatorname{mean}(u_i^2)}

    computed in the leaf's dtype (the mean is the sum of squares divided by
    the size).

    Args:
      threshold: the largest RMS of a leaf of the returned updates, > 0.
    """
    # 0 would turn a zero leaf into 0/0 = NaN (as in optax)
    threshold = _checks.check_number("threshold", threshold, low=0.0, low_open=True)

    def update_fn(updates, state, params=None, **extra_args):
        lay, _ = _flat.layout_of(updates, "updates", complex_ok=True)   # rms of |u|
        u = lay.gather(updates, "updates")
        sums = _segment_sumsq(lay, u)
        d, m = [], []
        with np.errstate(divide="ignore", invalid="ignore"):
            for grp, s in zip(lay.groups, sums):
                rdt = real_dtype(grp.dtype)
                dt = rdt.type
                sizes = np.diff(np.asarray(grp.offsets, np.int64)).astype(rdt)
                rms = np.sqrt(s / sizes)
                d.append(np.maximum(dt(1.0), rms / dt(threshold)).astype(rdt))
                m.append(np.ones(len(grp.leaf_ids), rdt))
        return _div_mul(lay, u, d, m), state

    return GradientTransformation(init_empty_state, update_fn,
                                  fusion=_fusion.BlockClip(threshold))
