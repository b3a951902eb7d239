"""Prodigy: learning-rate-free AdamW (Mishchenko & Defazio, 2023), as
optax 0.2.8's ``optax.contrib.prodigy``.

A step is two passes over the flat buffers (``npopt.kernels.prodigy``): the
moments with the deterministic chunked sums ``<g, x0 - x>`` and
``sum |s|`` (see ``npopt.contrib._common``), then, with the new distance
estimate from the host, the update (fused with ``apply_updates`` in ``step``).
"""
from typing import Any, NamedTuple

import numpy as np

from .. import _checks
from ..base import ZERO, safe_increment
from ..kernels import prodigy as kprod
from . import _common


class ProdigyState(NamedTuple):
    """State of the ``GradientTransformation`` returned by ``prodigy``."""
    exp_avg: Any              # first moment of d * g, a tree like params
    exp_avg_sq: Any           # second moment of d * g
    grad_sum: Any             # weighted sum of the gradients (s)
    params0: Any              # the initial params (a copy)
    estim_lr: Any             # d, the distance estimate (lowest params dtype)
    numerator_weighted: Any   # r, the weighted numerator (lowest params dtype)
    count: Any                # int32


def prodigy(learning_rate=1.0, betas=(0.9, 0.999), beta3=None, eps=1e-8, estim_lr0=1e-6,
            estim_lr_coef=1.0, weight_decay=0.0, safeguard_warmup=False):
    r"""Learning-rate-free AdamW with Prodigy's distance estimate.

    With :math:`\eta_t` the learning rate (schedule) and
    :math:`\hat d_t = d_t \eta_t \sqrt{1-\beta_2^t} / (1-\beta_1^t)`:

    .. math::
        m &\leftarrow \beta_1 m + (1-\beta_1) d_t g, \quad
        v \leftarrow \beta_2 v + (1-\beta_2) d_t^2 g^2, \\
        s &\leftarrow \beta_3 s + \frac{\hat d_t d_t}{d_0} g, \quad
        r \leftarrow \beta_3 r + \frac{d_t}{d_0} \hat d_t \langle g, x_0 - x\rangle, \\
        d_{t+1} &= \max\left(d_t, c \frac{r}{\|s\|_1}\right), \quad
        u = -\lambda \hat d_t x - \hat d_t \frac{m}{\sqrt v + d_{t+1}\epsilon}

    (:math:`\beta_3 = \sqrt{\beta_2}` by default; ``safeguard_warmup``
    uses :math:`d_t` instead of :math:`\hat d_t` in :math:`s`). The update
    is the full step (already negated; no ``scale_by_learning_rate``).

    As in optax: the denominator uses the *new* estimate :math:`d_{t+1}`,
    the bias correction is a Python float, and ``estim_lr`` and
    ``numerator_weighted`` have the params' lowest float dtype.

    Args:
      learning_rate: :math:`\eta_t`, a float or a schedule (a linear decay
        from 1.0 with a short warmup is recommended).
      betas: :math:`(\beta_1, \beta_2)` of the underlying AdamW.
      beta3: :math:`\beta_3` (None: :math:`\sqrt{\beta_2}`).
      eps: :math:`\epsilon` of AdamW.
      estim_lr0: :math:`d_0`, the initial (under-)estimate.
      estim_lr_coef: :math:`c`, multiplies the estimates.
      weight_decay: :math:`\lambda`, AdamW-style decay.
      safeguard_warmup: leave the learning rate out of :math:`s`.

    Needs ``params`` in ``update``.

    References:
      Mishchenko & Defazio, "Prodigy: An Expeditiously Adaptive
      Parameter-Free Learner", ICML 2024 (arXiv:2306.06101).
    """
    learning_rate = _checks.check_scalar_or_schedule("learning_rate", learning_rate)
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
        raise ValueError(f"betas: expected a pair (beta1, beta2), got {betas!r}")
    beta1, beta2 = betas
    _checks.check_number("betas[0]", beta1, low=0.0, high=1.0, high_open=True)
    _checks.check_number("betas[1]", beta2, low=0.0, high=1.0, high_open=True)
    beta3 = _checks.check_number("beta3", beta3, low=0.0, high=1.0, allow_none=True)
    eps = _checks.check_number("eps", eps, low=0.0)
    estim_lr0 = _checks.check_number("estim_lr0", estim_lr0, low=0.0, low_open=True)
    estim_lr_coef = _checks.check_number("estim_lr_coef", estim_lr_coef)
    weight_decay = _checks.check_number("weight_decay", weight_decay)
    safeguard_warmup = _checks.check_bool("safeguard_warmup", safeguard_warmup)
    if beta3 is None:
        beta3 = beta2 ** 0.5

    def init_fn(params):
        lay = _common.layout(params)
        p = lay.gather(params, "params")
        dt = _common.lowest_dtype(lay)
        return ProdigyState(_common.zeros_like_params(lay), _common.zeros_like_params(lay),
                            _common.zeros_like_params(lay),
                            lay.views(_common.copy_params(lay, p)),
                            dt.type(estim_lr0), dt.type(0), ZERO)

    def prepare(state, extra_args):
        count = state.count
        count_inc = safe_increment(count)
        sched = _common.schedule_value(learning_rate, count)
        t = int(count_inc)
        bc = ((1 - beta2 ** t) ** 0.5) / (1 - beta1 ** t)
        estim_lr = _common.check_scalar_field(state, "estim_lr", "prodigy")
        _common.check_scalar_field(state, "numerator_weighted", "prodigy")
        dt = np.asarray(estim_lr).dtype
        dlr = dt.type(estim_lr * sched * bc)
        return estim_lr, dlr, count_inc

    def run(lay, g, p, m, ro, state, pre, dst, fused):
        estim_lr, dlr, count_inc = pre
        sums = []
        for gi, grp in enumerate(lay.groups):
            f = grp.dtype.type
            c = estim_lr if safeguard_warmup else dlr
            hp = (f(estim_lr), f(beta1), f(1 - beta1), f(beta2), f(1 - beta2), f(beta3), f(c),
                  f(estim_lr0))
            sums.append(_common.chunk_sums(
                lay, gi, (kprod.prodigy_accumulate_cpu, kprod.prodigy_accumulate_cuda),
                (g[gi], p[gi], ro["params0"][gi], m["exp_avg"][gi], m["exp_avg_sq"][gi],
                 m["grad_sum"][gi]), (hp,), 2, grp.dtype))
        numerator_acum = _common.tree_total(lay, sums, 0)
        denominator = _common.tree_total(lay, sums, 1)
        nw = beta3 * state.numerator_weighted
        nw = nw + (estim_lr / estim_lr0) * dlr * numerator_acum
        with np.errstate(divide="ignore", invalid="ignore"):
            lr_estimate = estim_lr_coef * nw / denominator
        new_estim = np.maximum(estim_lr, lr_estimate)
        for gi, grp in enumerate(lay.groups):
            dt = np.result_type(grp.dtype, np.asarray(dlr).dtype, np.asarray(new_estim).dtype)
            f = dt.type
            hp = (f(-weight_decay * dlr), f(dlr), f(new_estim * eps))
            lay.target.launch(kprod.prodigy_apply_cpu, kprod.prodigy_apply_cuda,
                              m["exp_avg"][gi], m["exp_avg_sq"][gi], p[gi], dst[gi], hp, fused)
        return dict(estim_lr=new_estim, numerator_weighted=nw, count=count_inc)

    return _common.transformation(ProdigyState, "prodigy", ("exp_avg", "exp_avg_sq", "grad_sum"),
                                  ("params0",), prepare, run, init_fn)
