"""D-Adaptation AdamW (Defazio & Mishchenko, 2023), as optax 0.2.8's
``optax.contrib.dadapt_adamw``.

Two passes over the flat buffers (``npopt.kernels.dadapt_adamw``): the
moments with the deterministic chunked sums ``<g, s / (sqrt(v) + eps)>``
(old s, v) and ``||s||_1`` (new s), then the update (fused with
``apply_updates`` in ``step``).
"""
from typing import Any, NamedTuple

import numpy as np

from .. import _checks
from ..base import ZERO, safe_increment
from ..kernels import dadapt_adamw as kda
from . import _common


class DAdaptAdamWState(NamedTuple):
    """State of the ``GradientTransformation`` returned by ``dadapt_adamw``."""
    exp_avg: Any              # first moment of dlr * g, a tree like params
    exp_avg_sq: Any           # second moment of g
    grad_sum: Any             # s, the EMA of dlr * g
    estim_lr: Any             # d, the distance estimate (lowest params dtype)
    numerator_weighted: Any   # (lowest params dtype)
    count: Any                # int32


def dadapt_adamw(learning_rate=1.0, betas=(0.9, 0.999), eps=1e-8, estim_lr0=1e-6,
                 weight_decay=0.0):
    r"""Learning-rate-free AdamW by D-Adaptation.

    With :math:`\eta_t` the learning rate (schedule), :math:`r = \sqrt{\beta_2}`
    and :math:`\hat d_t = d_t \eta_t \sqrt{1-\beta_2^t} / (1-\beta_1^t)`:

    .. math::
        n &= \left\langle g, \frac{s}{\sqrt{v} + \epsilon}\right\rangle
        \ (\text{old } s, v), \\
        m &\leftarrow \beta_1 m + (1-\beta_1) \hat d_t g, \quad
        v \leftarrow \beta_2 v + (1-\beta_2) g^2, \quad
        s \leftarrow r s + (1-r) \hat d_t g, \\
        a &\leftarrow r a + (1-r) \hat d_t n, \quad
        d_{t+1} = \max\left(d_t, \frac{a}{(1-r)\|s\|_1}\right), \quad
        u = -\lambda \hat d_t x - \frac{m}{\sqrt v + \epsilon}

    (:math:`a` is ``numerator_weighted``). The update is the full step
    (already negated). As in optax, ``estim_lr`` and ``numerator_weighted``
    have the params' lowest float dtype.

    Args:
      learning_rate: :math:`\eta_t`, a float or a schedule (a linear decay
        from 1.0 with a short warmup is recommended).
      betas: :math:`(\beta_1, \beta_2)`.
      eps: :math:`\epsilon`.
      estim_lr0: :math:`d_0`, the initial (under-)estimate.
      weight_decay: :math:`\lambda`, AdamW-style decay.

    Needs ``params`` in ``update``.

    References:
      Defazio & Mishchenko, "Learning-Rate-Free Learning by D-Adaptation",
      ICML 2023 (arXiv:2301.07733).
    """
    learning_rate = _checks.check_scalar_or_schedule("learning_rate", learning_rate)
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
        raise ValueError(f"betas: expected a pair (beta1, beta2), got {betas!r}")
    beta1, beta2 = betas
    _checks.check_number("betas[0]", beta1, low=0.0, high=1.0, high_open=True)
    _checks.check_number("betas[1]", beta2, low=0.0, high=1.0, high_open=True)
    eps = _checks.check_number("eps", eps, low=0.0)
    estim_lr0 = _checks.check_number("estim_lr0", estim_lr0, low=0.0, low_open=True)
    weight_decay = _checks.check_number("weight_decay", weight_decay)
    sb2 = beta2 ** 0.5

    def init_fn(params):
        lay = _common.layout(params)
        dt = _common.lowest_dtype(lay)
        return DAdaptAdamWState(_common.zeros_like_params(lay), _common.zeros_like_params(lay),
                                _common.zeros_like_params(lay), dt.type(estim_lr0), dt.type(0),
                                ZERO)

    def prepare(state, extra_args):
        count = state.count
        sched = _common.schedule_value(learning_rate, count)
        count_inc = safe_increment(count)
        t = int(count_inc)
        bc = ((1 - beta2 ** t) ** 0.5) / (1 - beta1 ** t)
        estim_lr = _common.check_scalar_field(state, "estim_lr", "dadapt_adamw")
        nw = _common.check_scalar_field(state, "numerator_weighted", "dadapt_adamw")
        dlr = np.asarray(nw).dtype.type(estim_lr * sched * bc)
        return estim_lr, dlr, count_inc

    def run(lay, g, p, m, ro, state, pre, dst, fused):
        estim_lr, dlr, count_inc = pre
        sums = []
        for gi, grp in enumerate(lay.groups):
            f = grp.dtype.type
            d = f(dlr)
            hp = (f(eps), f(beta1), f(1 - beta1) * d, f(beta2), f(1 - beta2), f(sb2),
                  f(1 - sb2) * d)
            sums.append(_common.chunk_sums(
                lay, gi, (kda.dadapt_accumulate_cpu, kda.dadapt_accumulate_cuda),
                (g[gi], m["exp_avg"][gi], m["exp_avg_sq"][gi], m["grad_sum"][gi]), (hp,), 2,
                grp.dtype))
        numerator_acum = _common.tree_total(lay, sums, 0)
        grad_sum_l1 = _common.tree_total(lay, sums, 1)
        nw = sb2 * state.numerator_weighted + (1 - sb2) * dlr * numerator_acum
        with np.errstate(divide="ignore", invalid="ignore"):
            d_estimate = nw / ((1 - sb2) * grad_sum_l1)
        new_estim = np.maximum(estim_lr, d_estimate)
        for gi, grp in enumerate(lay.groups):
            f = np.result_type(grp.dtype, np.asarray(dlr).dtype).type
            hp = (f(-weight_decay * dlr), f(eps))
            lay.target.launch(kda.dadapt_apply_cpu, kda.dadapt_apply_cuda,
                              m["exp_avg"][gi], m["exp_avg_sq"][gi], p[gi], dst[gi], hp, fused)
        return dict(estim_lr=new_estim, numerator_weighted=nw, count=count_inc)

    return _common.transformation(DAdaptAdamWState, "dadapt_adamw",
                                  ("exp_avg", "exp_avg_sq", "grad_sum"), (), prepare, run,
                                  init_fn)
