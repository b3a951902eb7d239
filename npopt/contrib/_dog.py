"""DoG and DoWG: learning-rate-free step sizes from the distance travelled.

``scale_by_dog`` / ``scale_by_dowg`` compute one global scalar step from two
deterministic reductions (``npopt.contrib._common``): the squared distance
of the params from their initial value, ``sum (x0 - x)^2``
(``npopt.kernels.dog.diff_sumsq``), and the squared norm of the updates;
then scale the updates by it (``npopt.kernels.apply.scale``). Same order of
operations and dtypes as optax 0.2.8's ``optax.contrib._dog``.

References:
  Ivgi et al., "DoG is SGD's Best Friend: A Parameter-Free Dynamic Step
  Size Schedule", ICML 2023 (arXiv:2302.12022).
  Khaled et al., "DoWG Unleashed: An Efficient Universal Parameter-Free
  Gradient Descent Method", NeurIPS 2023 (arXiv:2305.16284).
"""
from typing import Any, NamedTuple

import numpy as np

from .. import _checks
from ..base import GradientTransformation, identity
from ..kernels import apply as kapply
from ..kernels import dog as kdog
from ..transforms.combine import chain
from ..transforms.scale import add_decayed_weights, scale_by_learning_rate
from . import _common

_INIT_STEPS = ("distance", "learning_rate", "heuristic")


class DoGState(NamedTuple):
    """State for DoG optimizer."""
    is_init_step: Any        # bool, 0-d
    init_params: Any         # a copy of the params given to init
    max_dist: Any            # running max of ||x - x0|| (lowest params dtype)
    sum_sq_norm_grads: Any   # sum of ||g||^2 (lowest params dtype)


class DoWGState(NamedTuple):
    """State for DoWG optimizer."""
    init_params: Any
    weighted_sq_norm_grads: Any
    estim_sq_dist: Any


def sq_dist(lay, p, p0):
    """``||x0 - x||^2`` over the tree (x0 may have its own dtype per group)."""
    sums = []
    for gi, grp in enumerate(lay.groups):
        dt = np.promote_types(grp.dtype, p0[gi].dtype)
        sums.append(_common.chunk_sums(lay, gi, (kdog.diff_sumsq_cpu, kdog.diff_sumsq_cuda),
                                       (p[gi], p0[gi]), (), 1, dt))
    return _common.tree_total(lay, sums)


def scale_tree(lay, g, s):
    """``s * u`` leaf by leaf (optax.tree.scale): a new tree, in the promoted dtype."""
    out = []
    for grp, ub in zip(lay.groups, g):
        dt = np.result_type(np.asarray(s).dtype, grp.dtype)
        ob = lay.target.empty(grp.size, dt)
        lay.target.launch(kapply.scale_cpu, kapply.scale_cuda, ub, ob, dt.type(s))
        out.append(ob)
    return lay.views(out)


def _check_init_step(init_step):
    ok = isinstance(init_step, (tuple, list)) and len(init_step) == 2
    if ok:
        tag, value = init_step
        ok = isinstance(tag, str) and tag in _INIT_STEPS
    if not ok:
        raise ValueError(f"init_step: expected a pair (tag, value) with tag one of "
                         f"{_INIT_STEPS}, got {init_step!r}")
    _checks.check_number("init_step[1]", value, low=0.0)
    return tag, value


def scale_by_dog(init_step, eps=1e-8):
    r"""Scale by Distance over Gradients (DoG); see :func:`dog`.

    .. math::
        \bar r_t = \max(\bar r_{t-1}, \|x_t - x_0\|), \quad
        G_t = G_{t-1} + \|g_t\|^2, \quad
        u_t = \frac{\bar r_t}{\sqrt{G_t + \epsilon}}\, g_t

    Args:
      init_step: ``(tag, value)``: ``('distance', r)`` sets
        :math:`\bar r_0 = r`; ``('learning_rate', eta)`` makes the first
        step size ``eta``; ``('heuristic', a)`` sets
        :math:`\bar r_0 = a (1 + \|x_0\|)`.
      eps: added to :math:`G_t` under the square root.

    ``init`` must receive the actual initial params; ``update`` needs params.
    """
    tag, value = _check_init_step(init_step)
    eps = _checks.check_number("eps", eps, low=0.0)

    def init_fn(params):
        lay = _common.layout(params)
        p = lay.gather(params, "params")
        dt = _common.lowest_dtype(lay)
        if tag == "distance":
            r = value
        elif tag == "heuristic":
            r = value * (1 + np.sqrt(_common.tree_norm_sq(lay, p)))
        else:
            r = 0.0
        return DoGState(is_init_step=np.bool_(True),
                        init_params=lay.views(_common.copy_params(lay, p)),
                        max_dist=dt.type(r), sum_sq_norm_grads=dt.type(0))

    def update_fn(updates, state, params=None, **extra_args):
        lay = _common.layout(params)
        _checks.check_state("state", state, DoGState, "scale_by_dog")
        g = lay.gather(updates, "updates")
        p = lay.gather(params, "params")
        p0 = lay.gather(state.init_params, "state.init_params")
        dist = np.sqrt(sq_dist(lay, p, p0))
        max_dist = np.maximum(state.max_dist, dist)
        sum_sq = state.sum_sq_norm_grads + _common.tree_norm_sq(lay, g)
        with np.errstate(divide="ignore", invalid="ignore"):
            lr = max_dist / np.sqrt(sum_sq + eps)
        if tag == "learning_rate" and bool(state.is_init_step):
            lr = np.asarray(lr).dtype.type(value)
        return scale_tree(lay, g, lr), DoGState(np.bool_(False), state.init_params,
                                                max_dist, sum_sq)

    return GradientTransformation(init_fn, update_fn)


def dog(learning_rate=1.0, init_step=("heuristic", 1e-6), eps=1e-8, weight_decay=None,
        mask=None):
    r"""Distance over Gradients (DoG) optimizer.

    ``chain(add_decayed_weights(weight_decay, mask) if weight_decay is not
    None else identity(), scale_by_dog(init_step, eps),
    scale_by_learning_rate(learning_rate))``:

    .. math::
        r_t = \|x_t - x_0\|, \quad \bar r_t = \max_{k \le t} r_k, \quad
        G_t = \sum_{k \le t} \|g_k\|^2, \quad
        x_{t+1} = x_t - \alpha_t \frac{\bar r_t}{\sqrt{G_t + \epsilon}} g_t

    with :math:`\bar r_0` from ``init_step`` (see :func:`scale_by_dog`;
    ``('heuristic', 1e-6)``: :math:`10^{-6}(1 + \|x_0\|)`, 1e-4 suggested
    with batch norm).

    .. warning:: The authors recommend model averaging (not included). The
       global norms are deterministic chunked sums; they agree with XLA's
       to rounding.

    Args:
      learning_rate: :math:`\alpha_t`, a float or a schedule (1.0 keeps
        DoG's own step).
      init_step: ``(tag, value)``, tag in ``'distance'``,
        ``'learning_rate'``, ``'heuristic'``.
      eps: added to :math:`G_t`.
      weight_decay: added to the gradient (``add_decayed_weights``) when
        not None.
      mask: where the decay applies.

    References:
      Ivgi et al., "DoG is SGD's Best Friend: A Parameter-Free Dynamic Step
      Size Schedule", ICML 2023 (arXiv:2302.12022).
    """
    learning_rate = _checks.check_scalar_or_schedule("learning_rate", learning_rate)
    return chain(
        add_decayed_weights(weight_decay, mask) if weight_decay is not None else identity(),
        scale_by_dog(init_step, eps),
        scale_by_learning_rate(learning_rate))


def scale_by_dowg(init_estim_sq_dist=None, eps=1e-4):
    r"""Scale by Distance over Weighted Gradients (DoWG); see :func:`dowg`.

    .. math::
        \bar r_t^2 = \max(\bar r_{t-1}^2, \|x_t - x_0\|^2), \quad
        v_t = v_{t-1} + \bar r_t^2 \|g_t\|^2, \quad
        u_t = \frac{\bar r_t^2}{\sqrt{v_t} + \epsilon}\, g_t

    Args:
      init_estim_sq_dist: :math:`\bar r_0^2` (None: ``eps``).
      eps: added to :math:`\sqrt{v_t}`.
    """
    init_estim_sq_dist = _checks.check_number("init_estim_sq_dist", init_estim_sq_dist, low=0.0,
                                              allow_none=True)
    eps = _checks.check_number("eps", eps, low=0.0)
    r0 = eps if init_estim_sq_dist is None else init_estim_sq_dist

    def init_fn(params):
        lay = _common.layout(params)
        p = lay.gather(params, "params")
        dt = _common.lowest_dtype(lay)
        return DoWGState(init_params=lay.views(_common.copy_params(lay, p)),
                         weighted_sq_norm_grads=dt.type(0), estim_sq_dist=dt.type(r0))

    def update_fn(updates, state, params=None, **extra_args):
        lay = _common.layout(params)
        _checks.check_state("state", state, DoWGState, "scale_by_dowg")
        g = lay.gather(updates, "updates")
        p = lay.gather(params, "params")
        p0 = lay.gather(state.init_params, "state.init_params")
        estim = np.maximum(state.estim_sq_dist, sq_dist(lay, p, p0))
        weighted = estim * _common.tree_norm_sq(lay, g) + state.weighted_sq_norm_grads
        with np.errstate(divide="ignore", invalid="ignore"):
            lr = estim / (np.sqrt(weighted) + eps)
        return scale_tree(lay, g, lr), state._replace(estim_sq_dist=estim,
                                                      weighted_sq_norm_grads=weighted)

    return GradientTransformation(init_fn, update_fn)


def dowg(learning_rate=1.0, init_estim_sq_dist=None, eps=1e-4, weight_decay=None, mask=None):
    r"""Distance over Weighted Gradients (DoWG) optimizer.

    ``chain(add_decayed_weights(...) if weight_decay is not None else
    identity(), scale_by_dowg(init_estim_sq_dist, eps),
    scale_by_learning_rate(learning_rate))``:

    .. math::
        \bar r_t^2 = \max(\bar r_{t-1}^2, \|x_t - x_0\|^2), \quad
        v_t = v_{t-1} + \bar r_t^2 \|g_t\|^2, \quad
        x_{t+1} = x_t - \alpha_t \frac{\bar r_t^2}{\sqrt{v_t} + \epsilon} g_t

    Args:
      learning_rate: :math:`\alpha_t`, a float or a schedule.
      init_estim_sq_dist: :math:`\bar r_0^2` (None: ``eps``).
      eps: added to :math:`\sqrt{v_t}` (and the default :math:`\bar r_0^2`).
      weight_decay: added to the gradient when not None.
      mask: where the decay applies.

    References:
      Khaled et al., "DoWG Unleashed: An Efficient Universal Parameter-Free
      Gradient Descent Method", NeurIPS 2023 (arXiv:2305.16284).
    """
    learning_rate = _checks.check_scalar_or_schedule("learning_rate", learning_rate)
    return chain(
        add_decayed_weights(weight_decay, mask) if weight_decay is not None else identity(),
        scale_by_dowg(init_estim_sq_dist, eps),
        scale_by_learning_rate(learning_rate))
