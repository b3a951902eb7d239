"""MoMo and MoMo-Adam: momentum with a Polyak-type adaptive step from a known
lower bound of the loss (Schaipp et al., 2023), as optax 0.2.8's
``optax.contrib.momo`` / ``momo_adam``.

``update`` needs the keyword ``value`` (the loss at the current params).
Two passes over the flat buffers (``npopt.kernels.momo``): the moments with
the deterministic chunked sums ``<g, x>``, ``<m, m>`` (``<m, m / q>``) and
``<m, x>`` (``npopt.contrib._common``), then the update (fused with
``apply_updates`` in ``step``).
"""
from typing import Any, NamedTuple

import numpy as np

from .. import _checks
from ..base import ZERO, safe_increment
from ..kernels import momo as kmomo
from ..transforms.polyak import MACHINE_EPS
from . import _common


class MomoState(NamedTuple):
    """State of the ``GradientTransformation`` returned by ``momo``."""
    exp_avg: Any   # momentum, a tree like params
    barf: Any      # EMA of the loss values (lowest params dtype)
    gamma: Any     # EMA of <g, x>
    lb: Any        # the (estimated) lower bound
    count: Any     # int32


class MomoAdamState(NamedTuple):
    """State of the ``GradientTransformation`` returned by ``momo_adam``."""
    exp_avg: Any
    exp_avg_sq: Any
    barf: Any
    gamma: Any
    lb: Any
    count: Any


MISSING_VALUE = ("value: {} needs the loss at the current params; call update(grads, state, "
                 "params, value=loss) (or step(..., value=loss))")


def _value(extra_args, owner):
    from ..transforms.polyak import check_value
    value = extra_args.get("value")
    if value is None:
        raise TypeError(MISSING_VALUE.format(owner))
    check_value(value)
    return value


def _scalar_fields(state, owner):
    for f in ("barf", "gamma", "lb"):
        _common.check_scalar_field(state, f, owner)
    return np.asarray(state.barf).dtype


def _check_common(learning_rate, lower_bound, weight_decay, adapt_lower_bound):
    """The arguments checked (0-d arrays as NumPy scalars), in their order."""
    return (_checks.check_scalar_or_schedule("learning_rate", learning_rate),
            _checks.check_number("lower_bound", lower_bound),
            _checks.check_number("weight_decay", weight_decay, low=0.0),
            _checks.check_bool("adapt_lower_bound", adapt_lower_bound))


def _init(lay, lower_bound, n_moments):
    dt = _common.lowest_dtype(lay)
    moments = [_common.zeros_like_params(lay) for _ in range(n_moments)]
    return moments + [dt.type(0), dt.type(0), dt.type(lower_bound), ZERO]


def momo(learning_rate=1.0, beta=0.9, lower_bound=0.0, weight_decay=0.0,
         adapt_lower_bound=False):
    r"""SGD with momentum and MoMo's adaptive learning rate.

    With :math:`\beta_t = 0` at the first step and :math:`\beta` after,
    :math:`\alpha` the learning rate, :math:`\lambda` the weight decay and
    :math:`f_*` the lower bound:

    .. math::
        \bar f &\leftarrow \beta_t \bar f + (1-\beta_t) f(x), \quad
        d \leftarrow \beta_t d + (1-\beta_t) g, \quad
        \gamma \leftarrow \beta_t \gamma + (1-\beta_t) \langle g, x\rangle, \\
        \tau &= \min\left(\alpha, \frac{\left((1+\alpha\lambda)(\bar f - f_* - \gamma)
          + \langle d, x\rangle\right)_+}{\|d\|^2}\right), \quad
        u = -\frac{\alpha\lambda}{1+\alpha\lambda} x - \tau d

    (:math:`\tau` uses 0 for the fraction when :math:`\|d\|^2` is at most
    float64's machine epsilon, for every dtype, as optax does). With
    ``adapt_lower_bound`` :math:`f_*` is estimated on the fly (paper, §4).
    The update is the full step (already negated).

    Args:
      learning_rate: :math:`\alpha`, a float or a schedule (recommended
        rather large: 1.0).
      beta: momentum coefficient.
      lower_bound: :math:`f_*` (0 suits most losses).
      weight_decay: :math:`\lambda`.
      adapt_lower_bound: estimate :math:`f_*` on the fly.

    ``update`` needs ``params`` and the keyword ``value``.

    References:
      Schaipp et al., "MoMo: Momentum Models for Adaptive Learning Rates",
      ICML 2024 (arXiv:2305.07583).
    """
    learning_rate, lower_bound, weight_decay, adapt = _check_common(
        learning_rate, lower_bound, weight_decay, adapt_lower_bound)
    beta = _checks.check_number("beta", beta, low=0.0, high=1.0)

    def init_fn(params):
        return MomoState(*_init(_common.layout(params), lower_bound, 1))

    def prepare(state, extra_args):
        value = _value(extra_args, "momo")
        dt = _scalar_fields(state, "momo")
        count = state.count
        alpha = _common.schedule_value(learning_rate, count)
        bt = 0.0 if int(count) == 0 else beta
        return value, dt, bt, alpha

    def run(lay, g, p, m, ro, state, pre, dst, fused):
        value, dt, bt, alpha = pre
        sums = []
        for gi, grp in enumerate(lay.groups):
            f = grp.dtype.type
            sums.append(_common.chunk_sums(
                lay, gi, (kmomo.momo_accumulate_cpu, kmomo.momo_accumulate_cuda),
                (g[gi], p[gi], m["exp_avg"][gi]), ((f(bt), f(1 - bt)),), 3, grp.dtype))
        gp, exp_avg_norm, iprod = (_common.tree_total(lay, sums, j) for j in range(3))
        barf = bt * state.barf + (1 - bt) * dt.type(value)
        gamma = bt * state.gamma + (1 - bt) * gp
        awd = 1 + alpha * weight_decay
        if adapt:
            cap = awd * (barf - gamma) + iprod
            this_lb = (np.maximum(cap / (2 * awd), lower_bound) if cap < awd * state.lb
                       else state.lb)
        else:
            this_lb = state.lb
        with np.errstate(divide="ignore", invalid="ignore"):
            t1 = np.maximum(awd * (barf - this_lb - gamma) + iprod, 0.0) / exp_avg_norm
        if exp_avg_norm <= MACHINE_EPS:
            t1 = np.asarray(t1).dtype.type(0)
        tau = np.minimum(alpha, t1)
        c = -(alpha * weight_decay) / (1 + alpha * weight_decay)
        for gi, grp in enumerate(lay.groups):
            f = np.result_type(grp.dtype, np.asarray(tau).dtype, np.asarray(c).dtype).type
            lay.target.launch(kmomo.momo_apply_cpu, kmomo.momo_apply_cuda, m["exp_avg"][gi],
                              p[gi], dst[gi], f(c), f(tau), fused)
        if adapt:
            new_lb = np.maximum((barf + iprod - gamma) - (1 / 2) * tau * exp_avg_norm,
                                lower_bound)
        else:
            new_lb = state.lb
        return dict(barf=barf, gamma=gamma, lb=new_lb, count=safe_increment(state.count))

    return _common.transformation(MomoState, "momo", ("exp_avg",), (), prepare, run, init_fn)


def momo_adam(learning_rate=1e-2, b1=0.9, b2=0.999, eps=1e-8, lower_bound=0.0,
              weight_decay=0.0, adapt_lower_bound=False):
    r"""Adam(W) with MoMo's adaptive learning rate.

    With :math:`t` the step (from 1), :math:`b_{1,t} = 1-\beta_1^t`,
    :math:`b_{2,t} = 1-\beta_2^t`:

    .. math::
        \bar f &\leftarrow \beta_1 \bar f + (1-\beta_1) f(x), \quad
        d \leftarrow \beta_1 d + (1-\beta_1) g, \quad
        v \leftarrow \beta_2 v + (1-\beta_2) g^2, \quad
        q = \epsilon + \sqrt{v / b_{2,t}}, \\
        \gamma &\leftarrow \beta_1 \gamma + (1-\beta_1) \langle g, x\rangle, \quad
        \tau = \min\left(\frac{\alpha}{b_{1,t}},
          \frac{\left((1+\alpha\lambda)(\bar f - b_{1,t} f_* - \gamma)
          + \langle d, x\rangle\right)_+}{\langle d, d/q\rangle}\right), \\
        u &= -\frac{\alpha\lambda}{1+\alpha\lambda} x - \tau \frac{d}{q}

    (the fraction is 0 when :math:`\langle d, d/q\rangle` is at most
    float64's machine epsilon, as in optax). The update is the full step.

    Args:
      learning_rate: :math:`\alpha`, a float or a schedule.
      b1, b2: the moments' decay rates.
      eps: :math:`\epsilon`, added outside the square root.
      lower_bound: :math:`f_*`.
      weight_decay: :math:`\lambda`, AdamW-style.
      adapt_lower_bound: estimate :math:`f_*` on the fly.

    ``update`` needs ``params`` and the keyword ``value``.

    References:
      Schaipp et al., "MoMo: Momentum Models for Adaptive Learning Rates",
      ICML 2024 (arXiv:2305.07583).
    """
    learning_rate, lower_bound, weight_decay, adapt = _check_common(
        learning_rate, lower_bound, weight_decay, adapt_lower_bound)
    b1 = _checks.check_number("b1", b1, low=0.0, high=1.0, high_open=True)
    b2 = _checks.check_number("b2", b2, low=0.0, high=1.0, high_open=True)
    eps = _checks.check_number("eps", eps, low=0.0)

    def init_fn(params):
        return MomoAdamState(*_init(_common.layout(params), lower_bound, 2))

    def prepare(state, extra_args):
        value = _value(extra_args, "momo_adam")
        dt = _scalar_fields(state, "momo_adam")
        count = state.count
        count_inc = safe_increment(count)
        alpha = _common.schedule_value(learning_rate, count)
        t = int(count_inc)
        return value, dt, alpha, count_inc, dt.type(1 - b2 ** t), dt.type(1 - b1 ** t)

    def run(lay, g, p, m, ro, state, pre, dst, fused):
        value, dt, alpha, count_inc, bc2, bc1 = pre
        barf = b1 * state.barf + (1 - b1) * dt.type(value)
        sums = []
        for gi, grp in enumerate(lay.groups):
            f = grp.dtype.type
            hp = (f(b1), f(1 - b1), f(b2), f(1 - b2), f(eps), f(bc2))
            sums.append(_common.chunk_sums(
                lay, gi, (kmomo.momo_adam_accumulate_cpu, kmomo.momo_adam_accumulate_cuda),
                (g[gi], p[gi], m["exp_avg"][gi], m["exp_avg_sq"][gi]), (hp,), 3, grp.dtype))
        gp, exp_avg_norm, iprod = (_common.tree_total(lay, sums, j) for j in range(3))
        gamma = b1 * state.gamma + (1 - b1) * gp
        awd = 1 + alpha * weight_decay
        if adapt:
            cap = awd * (barf - gamma) + iprod
            this_lb = (np.maximum(cap / (2 * bc1 * awd), lower_bound)
                       if cap < awd * bc1 * state.lb else state.lb)
        else:
            this_lb = state.lb
        with np.errstate(divide="ignore", invalid="ignore"):
            t1 = np.maximum(awd * (barf - bc1 * this_lb - gamma) + iprod, 0.0) / exp_avg_norm
        if exp_avg_norm <= MACHINE_EPS:
            t1 = np.asarray(t1).dtype.type(0)
        tau = np.minimum(alpha / bc1, t1)
        c = -(alpha * weight_decay) / (1 + alpha * weight_decay)
        for gi, grp in enumerate(lay.groups):
            f = np.result_type(grp.dtype, np.asarray(tau).dtype, np.asarray(c).dtype).type
            lay.target.launch(kmomo.momo_adam_apply_cpu, kmomo.momo_adam_apply_cuda,
                              m["exp_avg"][gi], m["exp_avg_sq"][gi], p[gi], dst[gi],
                              (f(c), f(tau), f(eps), f(bc2)), fused)
        if adapt:
            new_lb = ((barf + iprod - gamma) - (1 / 2) * tau * exp_avg_norm) / bc1
            new_lb = np.maximum(new_lb, lower_bound)
        else:
            new_lb = state.lb
        return dict(barf=barf, gamma=gamma, lb=new_lb, count=count_inc)

    return _common.transformation(MomoAdamState, "momo_adam", ("exp_avg", "exp_avg_sq"), (),
                                  prepare, run, init_fn)
