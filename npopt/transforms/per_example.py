r"""Per-example gradient clipping (differential privacy): functions, not
transformations. Every leaf of ``grads`` carries the examples along axis 0.

.. math::

    \text{global:}\quad \sum_i g_i \min\Big(1, \frac{C}{\|g_i\|}\Big),\qquad
    \|g_i\| = \sqrt{\textstyle\sum_{\text{leaves}} \|g_{i,\ell}\|^2}

``per_example_layer_norm_clip`` clips each leaf on its own, to
:math:`C/\sqrt{K}` (``uniform``, K leaves) or :math:`C\sqrt{D_\ell/D}`
(:math:`D_\ell` parameters of one example in leaf :math:`\ell`, D in all).

Per-example norms are sums of squares by ``npopt.kernels.reduce`` and the
weighted sums over the examples a fixed-order product (``npopt._dense``):
the same bits on every CPU (XLA adds in its own order: optax agrees to
rounding). ``num_clipped`` is an int64 count, as optax's under x64.
"""
import numpy as np

from .. import _checks, _dense
from .. import numerics as _num
from ..tree import tree_structure, tree_unflatten


def _batch(name, grads):
    leaves = _num.check_inexact_tree("grads", grads)
    if not leaves:
        raise ValueError(f"grads: expected at least one array with a batch axis 0 ({name})")
    leaves = [np.asarray(g) for g in leaves]
    b = leaves[0].shape[0] if leaves[0].ndim else None
    if b is None or any(g.ndim < 1 or g.shape[0] != b for g in leaves):
        raise ValueError(
            f"grads: unlike other transforms, `{name}` expects every array of grads to have "
            f"the same batch dimension in axis 0; got shapes {[g.shape for g in leaves]}")
    return leaves


def _clip_leaves(leaves, l2_norm_clip):
    """(clipped sums per leaf, number clipped) of leaves with batch axis 0."""
    b = leaves[0].shape[0]
    total = 0
    for g in leaves:
        total = total + _num.row_sumsq(g.reshape(b, -1))
    norms = np.sqrt(np.asarray(total))
    with np.errstate(divide="ignore", invalid="ignore"):
        m = np.minimum(l2_norm_clip / norms, 1.0)
    m = np.nan_to_num(m, nan=1.0, posinf=np.finfo(m.dtype).max, neginf=np.finfo(m.dtype).min)
    num_clipped = np.sum(m < 1.0, dtype=np.int64)
    sums = []
    for g in leaves:
        dt = np.result_type(m, g)
        s = _dense.dot(m.astype(dt), g.reshape(b, -1).astype(dt, copy=False))
        sums.append(np.asarray(s, dt).reshape(g.shape[1:]))
    return sums, num_clipped


def per_example_global_norm_clip(grads, l2_norm_clip):
    r"""Clips every example's gradient to global norm ``l2_norm_clip`` and
    sums them over the examples (Abadi et al., 2016).

    Args:
      grads: a tree whose arrays all have the examples along axis 0.
      l2_norm_clip: the largest L2 norm of one example's gradient.

    Returns:
      ``(clipped_sum, num_clipped)``: the tree of sums over the examples of
      the clipped gradients, and how many examples were clipped (an int64).
      A zero gradient with a zero bound counts as not clipped (optax's
      ``nan_to_num(..., nan=1)``).

    References:
      Abadi et al., `Deep Learning with Differential Privacy
      <https://arxiv.org/abs/1607.00133>`_, 2016.
    """
    l2_norm_clip = _checks.check_number("l2_norm_clip", l2_norm_clip, low=0.0)
    leaves = _batch("per_example_global_norm_clip", grads)
    sums, num_clipped = _clip_leaves(leaves, l2_norm_clip)
    return tree_unflatten(tree_structure(grads), sums), num_clipped


def per_example_layer_norm_clip(grads, global_l2_norm_clip, uniform=True):
    r"""Per-example clipping leaf by leaf (McMahan et al., 2017).

    Each of the K leaves is clipped with ``per_example_global_norm_clip`` to
    ``global_l2_norm_clip * (1 / K) ** 0.5`` (``uniform``) or
    ``global_l2_norm_clip * (D_l / D) ** 0.5`` (D_l: size of one example of
    leaf l, D: their total), the bounds computed as optax computes them.

    Returns:
      ``(sums, num_clipped)``: two trees of grads' structure, the clipped
      sums and the int64 counts of clipped examples per leaf.

    References:
      McMahan et al., `Learning Differentially Private Recurrent Language
      Models <https://arxiv.org/abs/1710.06963>`_, 2017.
    """
    global_l2_norm_clip = _checks.check_number("global_l2_norm_clip", global_l2_norm_clip, low=0.0)
    _checks.check_bool("uniform", uniform)
    leaves = _batch("per_example_layer_norm_clip", grads)
    if uniform:
        clips = [global_l2_norm_clip * (1.0 / len(leaves)) ** 0.5] * len(leaves)
    else:
        total = 0
        for g in leaves:
            total = total + g[0].size
        clips = [global_l2_norm_clip * (g[0].size / total) ** 0.5 for g in leaves]
    sums, counts = [], []
    for g, c in zip(leaves, clips):
        (s,), n = _clip_leaves([g], c)
        sums.append(s)
        counts.append(n)
    treedef = tree_structure(grads)
    return tree_unflatten(treedef, sums), tree_unflatten(treedef, counts)
