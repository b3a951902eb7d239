"""scale_by_distance_over_gradients: layer-wise DoG (optax's top-level
``scale_by_distance_over_gradients``, Ivgi et al., 2023).

Per leaf ``l``, two deterministic chunked sums (``npopt.kernels.dog``,
``npopt.transforms._segments``): ``||x_l - x0_l||^2`` and ``||g_l||^2``;
then ``u_l = eta_l * g_l`` with one factor per leaf
(``npopt.kernels.trust_ratio.scale_segments``).
"""
from typing import Any, NamedTuple

import numpy as np

from .. import _checks, _flat
from ..base import NO_PARAMS_MSG, GradientTransformation
from ..kernels import dog as kdog
from ..kernels import trust_ratio as ktr
from ..tree import tree_unflatten
from . import _segments


class ScaleByDistanceOverGradientsState(NamedTuple):
    """State for scale_by_distance_over_gradients."""
    max_dist: Any              # per leaf, 0-d: running max of ||x_l - x0_l||
    grad_sum_of_squares: Any   # per leaf, shape (1,) float64: sum of ||g_l||^2
    init_params: Any           # the initial params, cast to param_dtype


def _leaf_diff_sumsq(lay, gi, p, p0):
    from ..kernels import reduce as kreduce
    grp = lay.groups[gi]
    dt = np.promote_types(grp.dtype, p0.dtype)
    chunks, chunks_t, _ = _segments.tables(lay)[gi]
    totals = np.zeros((len(grp.leaf_ids), 1), dt)
    if len(chunks):
        partial = lay.target.empty(len(chunks), dt).reshape(-1, 1)
        lay.target.launch(kdog.diff_sumsq_cpu, kdog.diff_sumsq_cuda, p, p0, chunks_t,
                          dt.type(0), partial)
        if lay.target.device:
            partial = partial.copy_to_host()
        kreduce.combine_chunks(chunks, partial, totals)
    return totals[:, 0]


def scale_by_distance_over_gradients(reps_rel=1e-6, eps=1e-8, param_dtype=np.float32,
                                     global_scale=1.0):
    r"""Distance-over-gradients, one step size per leaf ("layer-wise DoG").

    Per leaf :math:`l`:

    .. math::
        \bar r_l \leftarrow \max(\bar r_l, \|x_l - x_{0,l}\|), \quad
        G_l \leftarrow G_l + \|g_l\|^2, \quad
        u_l = s \frac{\bar r_l}{\sqrt{G_l + \epsilon}}\, g_l

    with :math:`\bar r_l = r_{rel}(1 + \|x_{0,l}\|)` at ``init`` and
    :math:`s` = ``global_scale``. The result is a *descent direction
    scaled up*, not yet negated: chain it with ``scale_by_learning_rate``
    (or use ``global_scale=-1``).

    As optax: the initial params are stored in ``param_dtype`` (float32 by
    default, also for float64 params: the distance is measured from the
    rounded copy), :math:`G_l` is a float64 array of shape (1,), so the
    updates are float64 (``apply_updates`` rounds ``p + u`` back to the
    params' dtype).

    .. note:: Deliberate difference: optax's updates of a 0-d leaf have
       shape (1,) (broadcast against :math:`G_l`), which turns a scalar
       param into a (1,) array after ``apply_updates``; npopt keeps the
       leaf's shape.

    Args:
      reps_rel: :math:`r_{rel}` (1e-4 recommended with batch norm, 1e-6 otherwise).
      eps: added to :math:`G_l`.
      param_dtype: dtype of the stored initial params (float32 or float64).
      global_scale: :math:`s`, typically 1.0 or -1.0.

    References:
      Ivgi et al., "DoG is SGD's Best Friend: A Parameter-Free Dynamic Step
      Size Schedule", ICML 2023 (arXiv:2302.12022).
    """
    reps_rel = _checks.check_number("reps_rel", reps_rel, low=0.0)
    eps = _checks.check_number("eps", eps, low=0.0)
    pdt = _checks.check_float_dtype("param_dtype", param_dtype, allow_none=False)
    global_scale = _checks.check_number("global_scale", global_scale)

    def init_fn(params):
        lay, _ = _flat.layout_of(params, "params")
        p = lay.gather(params, "params")
        max_dist = [None] * lay.num_leaves
        gsos = [None] * lay.num_leaves
        init = []
        for gi, (grp, b) in enumerate(zip(lay.groups, p)):
            ss = _segments.group_sumsq(lay, gi, b)[:, 0]
            for j, i in enumerate(grp.leaf_ids):
                max_dist[i] = np.asarray(reps_rel * (1 + np.sqrt(ss[j])))
                gsos[i] = np.zeros(1, np.float64)
            if pdt == grp.dtype:
                c = lay.target.empty(grp.size, pdt)
                lay.target.copy_into(c, b)
            elif lay.target.device:
                raise TypeError(f"param_dtype: npopt does not convert dtypes on a CUDA "
                                f"device; pass param_dtype={grp.dtype} for these params")
            else:
                c = np.asarray(b).astype(pdt)
            init.append(c)
        init_views = _cast_views(lay, init, pdt)
        return ScaleByDistanceOverGradientsState(tree_unflatten(lay.treedef, max_dist),
                                                 tree_unflatten(lay.treedef, gsos), init_views)

    def update_fn(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError(NO_PARAMS_MSG)
        _checks.check_state("state", state, ScaleByDistanceOverGradientsState,
                            "scale_by_distance_over_gradients")
        lay, _ = _flat.layout_of(params, "params")
        g = lay.gather(updates, "updates")
        p = lay.gather(params, "params")
        p0 = lay.gather(state.init_params, "state.init_params", [pdt] * len(lay.groups))
        d_old = _scalars(lay, state.max_dist, "state.max_dist", ())
        s_old = _scalars(lay, state.grad_sum_of_squares, "state.grad_sum_of_squares", (1,))
        max_dist = [None] * lay.num_leaves
        gsos = [None] * lay.num_leaves
        out = []
        for gi, grp in enumerate(lay.groups):
            dsq = _leaf_diff_sumsq(lay, gi, p[gi], p0[gi])
            gsq = _segments.group_sumsq(lay, gi, g[gi])[:, 0]
            etas = []
            for j, i in enumerate(grp.leaf_ids):
                max_dist[i] = np.maximum(d_old[i], np.sqrt(dsq[j]))
                gsos[i] = s_old[i] + gsq[j]
                with np.errstate(divide="ignore", invalid="ignore"):
                    etas.append(global_scale * (max_dist[i] / np.sqrt(gsos[i] + eps)))
            dt = np.result_type(grp.dtype, *[e.dtype for e in etas]) if etas else grp.dtype
            factors = np.asarray([e.reshape(-1)[0] for e in etas], dt)
            ob = lay.target.empty(grp.size, dt)
            lay.target.launch(ktr.scale_segments_cpu, ktr.scale_segments_cuda, g[gi],
                              lay.target.put(grp.segments), lay.target.put(factors), ob)
            out.append(ob)
        new_state = ScaleByDistanceOverGradientsState(
            tree_unflatten(lay.treedef, max_dist), tree_unflatten(lay.treedef, gsos),
            state.init_params)
        return _cast_views(lay, out, None), new_state

    return GradientTransformation(init_fn, update_fn)


def _cast_views(lay, bufs, dtype):
    """Views into ``bufs`` (whose dtype may differ from the groups')."""
    leaves = [None] * lay.num_leaves
    for grp, buf in zip(lay.groups, bufs):
        for k, i in enumerate(grp.leaf_ids):
            leaves[i] = buf[grp.offsets[k]:grp.offsets[k + 1]].reshape(grp.shapes[k])
    return tree_unflatten(lay.treedef, leaves)


def _scalars(lay, tree, name, shape):
    try:
        leaves = lay.treedef.flatten_up_to(tree)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{name}: expected one value per params leaf, in a tree with the "
                         f"structure of the params {lay.treedef}") from e
    out = []
    for i, x in enumerate(leaves):
        x = np.asarray(x)
        if x.shape != shape or x.dtype.kind != "f":
            raise ValueError(f"{name}: leaf {i} must be a float array of shape {shape}, got "
                             f"{_checks._describe(x)}")
        out.append(x)
    return out
