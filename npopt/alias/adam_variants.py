"""Adam's relatives: amsgrad, adamax, adamaxw, adabelief, yogi, radam and
adan, as the chains optax 0.2.8 builds.

Every alias is ``chain(scale_by_X(...), [add_decayed_weights(...)],
scale_by_learning_rate(learning_rate))``, so ``step`` is one fused kernel
pass (a schedule as ``weight_decay`` falls back to update + apply_updates).
"""
from .. import _checks
from ..transforms.adam_variants import (ScaleByAdanState, ScaleByAmsgradState,
                                       ScaleByBeliefState, scale_by_adamax, scale_by_adan,
                                       scale_by_amsgrad, scale_by_belief, scale_by_radam,
                                       scale_by_yogi)
from ..transforms.combine import chain
from ..transforms.scale import add_decayed_weights, scale_by_learning_rate


def amsgrad(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None,
            bias_correction_mu=True, bias_correction_nu=True):
    r"""AMSGrad: ``chain(scale_by_amsgrad(...), scale_by_learning_rate(learning_rate))``.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,\quad
        \hat v^{max}_t = \max(\hat v^{max}_{t-1}, \hat v_t),\\
        p_t = p_{t-1} - \eta_t\, \hat m_t / (\sqrt{\hat v^{max}_t + \epsilon_{root}} + \epsilon)

    The maximum keeps the effective step size from growing back, which
    repairs Adam's non-convergence counterexample.

    .. warning:: optax bias-corrects both moments (the paper does not) and
       takes the max of the *corrected* second moment; pass
       ``bias_correction_mu=False, bias_correction_nu=False`` for the paper.

    Args:
      learning_rate: a float, or a schedule (callable of the step count).
      b1, b2, eps, eps_root, mu_dtype, bias_correction_mu, bias_correction_nu:
        see ``scale_by_amsgrad``.

    Examples:
      >>> import numpy as np, npopt
      >>> opt = npopt.amsgrad(1e-1)
      >>> params = {'w': np.ones(3)}
      >>> params, state = opt.step(params, {'w': np.full(3, 2.0)}, opt.init(params))
      >>> params['w']
      array([0.9, 0.9, 0.9])

    References:
      Reddi, Kale & Kumar, "On the Convergence of Adam and Beyond", ICLR 2018.
    """
    return chain(scale_by_amsgrad(b1, b2, eps, eps_root, mu_dtype, bias_correction_mu,
                                  bias_correction_nu),
                 scale_by_learning_rate(learning_rate))


def adamax(learning_rate, b1=0.9, b2=0.999, eps=1e-8):
    r"""AdaMax: ``chain(scale_by_adamax(b1, b2, eps), scale_by_learning_rate(learning_rate))``.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
        v_t = \max(|g_t| + \epsilon,\ \beta_2 v_{t-1}),\quad
        p_t = p_{t-1} - \eta_t\, \frac{m_t}{(1-\beta_1^t)\, v_t}

    .. warning:: ``eps`` is added to :math:`|g_t|` inside the max (optax's
       choice; the paper has none), and :math:`v_t` is not bias-corrected.

    References:
      Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, §7.1.
    """
    return chain(scale_by_adamax(b1, b2, eps), scale_by_learning_rate(learning_rate))


def adamaxw(learning_rate, b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-4, mask=None):
    r"""AdaMax with decoupled weight decay.

    ``chain(scale_by_adamax(b1, b2, eps), add_decayed_weights(weight_decay,
    mask), scale_by_learning_rate(learning_rate))``, i.e.

    .. math:: p_t = p_{t-1} - \eta_t \left(\frac{m_t}{(1-\beta_1^t) v_t} + \lambda p_{t-1}\right)

    .. warning:: As in optax (and PyTorch) the decay is multiplied by the full
       learning rate, not only a schedule multiplier as in Loshchilov & Hutter.
       ``mask`` (a prefix tree of bools or a callable of params) limits the
       decay, not the AdaMax scaling.

    References:
      Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
    """
    weight_decay = _checks.check_scalar_or_schedule("weight_decay", weight_decay)
    return chain(scale_by_adamax(b1, b2, eps), add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(learning_rate))


def adabelief(learning_rate, b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16, *,
              nesterov=False):
    r"""AdaBelief: ``chain(scale_by_belief(...), scale_by_learning_rate(learning_rate))``.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
        s_t = \beta_2 s_{t-1} + (1-\beta_2)(g_t - m_t)^2 + \epsilon_{root},\\
        p_t = p_{t-1} - \eta_t\, \hat m_t / (\sqrt{s_t/(1-\beta_2^t)} + \epsilon)

    .. warning:: ``eps_root`` accumulates in the stored ``s`` (added every
       step), and the defaults are ``eps = eps_root = 1e-16``; the paper uses
       ``eps=1e-8`` and no ``eps_root``.

    References:
      Zhuang et al., "AdaBelief Optimizer: Adapting Stepsizes by the Belief in
      Observed Gradients", NeurIPS 2020.
    """
    return chain(scale_by_belief(b1, b2, eps, eps_root, nesterov=nesterov),
                 scale_by_learning_rate(learning_rate))


def yogi(learning_rate, b1=0.9, b2=0.999, eps=1e-3):
    r"""Yogi: ``chain(scale_by_yogi(b1, b2, eps), scale_by_learning_rate(learning_rate))``.

    .. math::
        v_t = v_{t-1} - (1-\beta_2)\,\mathrm{sign}(v_{t-1} - g_t^2)\, g_t^2,\quad
        p_t = p_{t-1} - \eta_t\, \hat m_t / (\sqrt{\hat v_t} + \epsilon)

    (:math:`m_t` and the bias corrections as in Adam).

    .. warning:: The moments start at 1e-6, not 0, and ``eps`` is 1e-3.

    References:
      Zaheer et al., "Adaptive Methods for Nonconvex Optimization", NeurIPS 2018.
    """
    return chain(scale_by_yogi(b1=b1, b2=b2, eps=eps), scale_by_learning_rate(learning_rate))


def radam(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, threshold=5.0, *,
          nesterov=False):
    r"""Rectified Adam: ``chain(scale_by_radam(...), scale_by_learning_rate(learning_rate))``.

    .. math::
        p_t = p_{t-1} - \eta_t \begin{cases}
          r_t\, \hat m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon) & \rho_t \ge \text{threshold}\\
          \hat m_t & \text{otherwise}
        \end{cases}

    with :math:`\rho_t = \rho_\infty - 2t\beta_2^t/(1-\beta_2^t)`,
    :math:`\rho_\infty = 2/(1-\beta_2) - 1` and the rectification
    :math:`r_t` of ``radam_rectification``.

    References:
      Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond",
      ICLR 2020.
    """
    return chain(scale_by_radam(b1, b2, eps, eps_root, threshold, nesterov=nesterov),
                 scale_by_learning_rate(learning_rate))


def adan(learning_rate, b1=0.98, b2=0.92, b3=0.99, eps=1e-8, eps_root=1e-8,
         weight_decay=0.0, mask=None):
    r"""Adan: ``chain(scale_by_adan(...), add_decayed_weights(weight_decay, mask),
    scale_by_learning_rate(learning_rate))``.

    .. math::
        d_t = g_t - g_{t-1}\ (d_1 = 0),\quad
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) d_t,\\
        n_t = \beta_3 n_{t-1} + (1-\beta_3)(g_t + (1-\beta_2) d_t)^2,\\
        p_t = p_{t-1} - \eta_t \left(\frac{\hat m_t + (1-\beta_2)\hat v_t}
              {\sqrt{\hat n_t + \epsilon_{root}} + \epsilon} + \lambda p_{t-1}\right)

    .. warning:: The alias's ``eps_root`` is 1e-8 while ``scale_by_adan``'s
       is 0. optax's betas are the paper's :math:`1-\beta`, and the weight
       decay is decoupled (added before the learning rate), not the paper's
       proximal division by :math:`1 + \eta\lambda`.

    References:
      Xie et al., "Adan: Adaptive Nesterov Momentum Algorithm for Faster
      Optimizing Deep Models", 2022 (arXiv:2208.06677).
    """
    weight_decay = _checks.check_scalar_or_schedule("weight_decay", weight_decay)
    return chain(scale_by_adan(b1=b1, b2=b2, b3=b3, eps=eps, eps_root=eps_root),
                 add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(learning_rate))


__all__ = ["adabelief", "adamax", "adamaxw", "adan", "amsgrad", "radam", "yogi"]
