"""Mechanic: a learning-rate tuner wrapped around a base optimizer
(Cutkosky, Defazio & Mehta, 2023), as optax 0.2.8's ``optax.contrib.mechanize``.

The base optimizer runs first (its own ``update``); then three passes over
the flat buffers: the norms of the gradient and params
(``reduce.chunk_sumsq``), the inner product ``h`` (``kernels.mechanic``),
and the update. The ``num_betas`` scalars of the tuner live on the host, as
NumPy arrays of the params' lowest float dtype.
"""
from typing import Any, NamedTuple

import numpy as np

from .. import _checks
from ..base import ZERO, GradientTransformation, safe_increment, with_extra_args_support
from ..kernels import mechanic as kmech
from ..transforms import _segments
from . import _common


class MechanicState(NamedTuple):
    """State of the ``GradientTransformation`` returned by ``mechanize``."""
    base_optimizer_state: Any
    count: Any   # int32
    r: Any       # (num_betas,) rewards
    m: Any       # (num_betas,) running max of |h|
    v: Any       # (num_betas,) sums of h^2
    s: Any       # (num_betas,) scales
    x0: Any      # the initial params


def _sum(a):
    """Left-to-right sum of a small host array (jnp.sum of num_betas entries)."""
    total = a[0]
    for x in a[1:]:
        total = total + x
    return total


def mechanize(base_optimizer, weight_decay=1e-2, eps=1e-8, s_init=1e-6, num_betas=6):
    r"""Mechanic: learns the scale of a base optimizer's updates.

    With :math:`\Delta` the base optimizer's update, :math:`S = \sum_i s_i`,
    :math:`\tilde g = g + \lambda S \frac{\|g\|}{\|x\| + \epsilon} x`,
    :math:`\delta = (x_0 - x) / (S + \epsilon)` and
    :math:`\beta_i = 1 - 10^{-i}`, :math:`i = 1..n`:

    .. math::
        h &= \langle \tilde g, \delta \rangle, \quad
        m_i \leftarrow \max(\beta_i m_i, |h| + \epsilon), \quad
        v_i \leftarrow \beta_i^2 v_i + h^2, \\
        r_i &\leftarrow \beta_i r_i + \mathrm{clip}(h, -m_i^{old}, m_i^{old}) s_i, \quad
        s_i \leftarrow \frac{(s_{init}/n) m_i + \max(0, r_i)}{\sqrt{v_i} + \epsilon}, \\
        x^+ &= x_0 - \Big(\sum_i s_i\Big)(\delta - \Delta), \quad u = x^+ - x

    The update is the full step (already applied to the base optimizer's
    direction: no learning rate after it). As in optax, ``x0`` is the params
    at the first ``update`` (count 0).

    Args:
      base_optimizer: the GradientTransformation whose updates are scaled
        (its ``update`` receives the extra arguments).
      weight_decay: :math:`\lambda` (Mechanic's own decay, not the base's).
      eps: :math:`\epsilon`.
      s_init: the initial scale (split over the ``num_betas`` entries).
      num_betas: :math:`n`, the number of decay rates (0.9, 0.99, ...).

    Needs ``params`` in ``update``.

    References:
      Cutkosky, Defazio & Mehta, "Mechanic: A Learning Rate Tuner", NeurIPS
      2023 (arXiv:2306.00144).
    """
    if not (isinstance(base_optimizer, tuple) and len(base_optimizer) == 2
            and all(callable(f) for f in base_optimizer)):
        raise TypeError(f"base_optimizer: expected a GradientTransformation (init, update), "
                        f"got {type(base_optimizer).__name__}")
    base_optimizer = with_extra_args_support(base_optimizer)
    weight_decay = _checks.check_number("weight_decay", weight_decay)
    eps = _checks.check_number("eps", eps, low=0.0)
    s_init = _checks.check_number("s_init", s_init, low=0.0)
    if isinstance(num_betas, bool) or not isinstance(num_betas, (int, np.integer)) \
            or num_betas < 1:
        raise ValueError(f"num_betas: expected an integer >= 1, got {num_betas!r}")
    num_betas = int(num_betas)

    def init_fn(params):
        lay = _common.layout(params)
        p = lay.gather(params, "params")
        dt = _common.lowest_dtype(lay)
        return MechanicState(
            base_optimizer_state=base_optimizer.init(params), count=ZERO,
            r=np.zeros(num_betas, dt), m=np.zeros(num_betas, dt), v=np.zeros(num_betas, dt),
            s=np.ones(num_betas, dt) * s_init, x0=lay.views(_common.copy_params(lay, p)))

    def _scalars(state):
        out = []
        for f in ("r", "m", "v", "s"):
            a = getattr(state, f)
            if not (hasattr(a, "shape") and np.shape(a) == (num_betas,)
                    and np.asarray(a).dtype.kind == "f"):
                raise ValueError(f"state.{f}: expected a float array of shape ({num_betas},) "
                                 f"(made by mechanize's init), got {_checks._describe(a)}")
            out.append(np.asarray(a))
        return out

    def update_fn(updates, state, params=None, **extra_args):
        lay = _common.layout(params)
        _checks.check_state("state", state, MechanicState, "mechanize")
        r0, m0, v0, s0 = _scalars(state)
        g = lay.gather(updates, "updates")
        p = lay.gather(params, "params")
        first = int(state.count) == 0
        x0 = _common.copy_params(lay, p) if first else lay.gather(state.x0, "state.x0")
        count_inc = safe_increment(state.count)
        new_neg_updates, base_state = base_optimizer.update(
            updates, state.base_optimizer_state, params, **extra_args)
        nu = lay.gather(new_neg_updates, "base_optimizer's updates")
        s_sum = _sum(s0)
        ss = [_segments.group_sumsq(lay, gi, g[gi], p[gi]) for gi in range(len(lay.groups))]
        grad_norm = np.sqrt(_common.tree_total(lay, ss, 0))
        param_norm = np.sqrt(_common.tree_total(lay, ss, 1))
        with np.errstate(divide="ignore", invalid="ignore"):
            c = weight_decay * s_sum * grad_norm / (param_norm + eps)
        den = s_sum + eps
        hs = []
        for gi, grp in enumerate(lay.groups):
            f = np.result_type(grp.dtype, np.asarray(c).dtype, np.asarray(den).dtype).type
            hs.append(_common.chunk_sums(lay, gi, (kmech.mechanic_h_cpu, kmech.mechanic_h_cuda),
                                         (g[gi], p[gi], x0[gi]), (f(c), f(den)), 1,
                                         np.dtype(f)))
        h = _common.tree_total(lay, hs)
        clipped_h = np.minimum(np.maximum(np.ones_like(m0) * h, -m0), m0)
        betas = np.array([1.0 - 0.1 ** i for i in range(1, num_betas + 1)], dtype=s0.dtype)
        m = np.maximum(betas * m0, np.abs(h) + eps)
        v = (betas * betas) * v0 + h * h
        r = betas * r0 + clipped_h * s0
        rc = np.maximum(0.0, r)
        wealth = (s_init / betas.size) * m + rc
        s = wealth / (np.sqrt(v) + eps)
        total = _sum(s)
        out = []
        for gi, grp in enumerate(lay.groups):
            dt = np.result_type(grp.dtype, np.asarray(total).dtype, np.asarray(den).dtype)
            ob = lay.target.empty(grp.size, dt)
            lay.target.launch(kmech.mechanic_apply_cpu, kmech.mechanic_apply_cuda,
                              p[gi], x0[gi], nu[gi], ob, dt.type(den), dt.type(total))
            out.append(ob)
        x0_tree = lay.views(x0) if first else state.x0
        return lay.views(out), MechanicState(base_state, count_inc, r, m, v, s, x0_tree)

    return GradientTransformation(init_fn, update_fn)
