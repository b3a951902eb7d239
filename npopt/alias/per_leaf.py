"""Rules with per-leaf or global reductions: fromage, lars, novograd,
polyak_sgd and sm3, as the chains optax 0.2.8 builds. The rules here need per-leaf or global reductions over the flat buffers:
fromage and lars (per-leaf trust ratios), novograd (a per-leaf second
moment), polyak_sgd (the global gradient norm) and sm3 (per-axis maxima of
each leaf).
"""
from .. import _checks
from .core import sgd
from ..base import GradientTransformationExtraArgs
from ..transforms.combine import chain, masked
from ..transforms.novograd import ScaleByNovogradState, scale_by_novograd
from ..transforms.polyak import check_polyak_args, polyak_sgd_step, scale_by_polyak
from ..transforms.scale import (add_decayed_weights, scale, scale_by_learning_rate,
                                scheduled_value)
from ..transforms.sgd import trace
from ..transforms.sm3 import ScaleBySM3State, scale_by_sm3
from ..transforms.trust_ratio import scale_by_trust_ratio


def fromage(learning_rate, min_norm=1e-6):
    r"""Fromage: Frobenius-matched gradient descent.

    With :math:`m = 1/\sqrt{1 + \eta^2}`, ``chain(scale_by_trust_ratio(min_norm),
    scale_by_learning_rate(learning_rate * m), add_decayed_weights(m - 1))``,
    i.e. per leaf :math:`l`

    .. math::
        p_l \leftarrow m \left(p_l - \eta \frac{\|p_l\|}{\|g_l\|} g_l\right)

    (norms floored at ``min_norm``; ratio 1 where a norm is 0): a step of
    relative size :math:`\eta` per layer, then a shrink that keeps
    :math:`\|p_l\|` from growing. A schedule gives :math:`\eta_t` and
    :math:`m_t` per step.

    Args:
      learning_rate: a float, or a schedule (callable of the step count).
      min_norm: floor of the parameter and update norms.

    References:
      Bernstein et al., "On the distance between two neural networks and the
      stability of learning", NeurIPS 2020 (arXiv:2002.03432).
    """
    learning_rate = _checks.check_scalar_or_schedule("learning_rate", learning_rate)
    if not callable(learning_rate):
        mult = 1 / (1 + learning_rate**2)**0.5
        return chain(scale_by_trust_ratio(min_norm),
                     scale_by_learning_rate(learning_rate * mult),
                     add_decayed_weights(mult - 1))

    def lr_at(count):     # the user's value checked first (ValueError naming it)
        return scheduled_value("learning_rate", learning_rate, count, nonnegative=True)

    def mult_lr(count):   # in the schedule's own dtype, as optax
        return 1 / (1 + lr_at(count)**2)**0.5

    return chain(scale_by_trust_ratio(min_norm),
                 scale_by_learning_rate(lambda c: mult_lr(c) * lr_at(c)),
                 add_decayed_weights(lambda c: mult_lr(c) - 1))


def lars(learning_rate, weight_decay=0.0, weight_decay_mask=True, trust_coefficient=0.001,
         eps=0.0, trust_ratio_mask=True, momentum=0.9, nesterov=False):
    r"""LARS: layer-wise adaptive rate scaling, with momentum after the rate.

    ``chain(add_decayed_weights(weight_decay, mask=weight_decay_mask),
    masked(scale_by_trust_ratio(trust_coefficient=trust_coefficient, eps=eps),
    mask=trust_ratio_mask), scale_by_learning_rate(learning_rate),
    trace(decay=momentum, nesterov=nesterov))``, i.e. per leaf :math:`l`

    .. math::
        d_l = g_l + \lambda p_l,\quad
        t_l \leftarrow \mu t_l - \eta_t\, \tau \frac{\|p_l\|}{\|d_l\| + \epsilon} d_l,
        \quad p_l \leftarrow p_l + t_l

    (ratio 1 where a norm is 0; Nesterov: :math:`p_l + (u_l + \mu t_l)`).

    .. warning:: As in optax the weight decay comes before the trust ratio
       (coupled, L2-style) and the momentum after the learning rate.

    Args:
      learning_rate: a float, or a schedule (callable of the step count).
      weight_decay: :math:`\lambda` (a float or a schedule).
      weight_decay_mask: True, a tree of bools (a prefix of the params), or a
        callable of the params returning one: which leaves get weight decay.
      trust_coefficient: :math:`\tau`.
      eps: added to the update norm.
      trust_ratio_mask: like ``weight_decay_mask``, for the trust ratio.
      momentum: :math:`\mu`.
      nesterov: Nesterov momentum.

    References:
      You, Gitman & Ginsburg, "Large Batch Training of Convolutional
      Networks", 2017 (arXiv:1708.03888).
    """
    # validated under the names the caller used (trace calls momentum decay)
    weight_decay = _checks.check_scalar_or_schedule("weight_decay", weight_decay)
    momentum = _checks.check_number("momentum", momentum, low=0.0, high=1.0)
    return chain(
        add_decayed_weights(weight_decay, mask=weight_decay_mask),
        masked(scale_by_trust_ratio(trust_coefficient=trust_coefficient, eps=eps),
               mask=trust_ratio_mask),
        scale_by_learning_rate(learning_rate),
        trace(decay=momentum, nesterov=nesterov))


def polyak_sgd(max_learning_rate=1.0, scaling=1.0, f_min=0.0, eps=0.0, variant="sps"):
    r"""SGD with the Polyak step size: ``chain(sgd(learning_rate=scaling),
    scale_by_polyak(max_learning_rate, f_min, eps, variant))``.

    .. math::
        p \leftarrow p - s \min\left(\frac{f(p) - f^\star}{s^2\|g\|^2 + \epsilon},
        \gamma_{\max}\right) g

    (the norm is that of the scaled gradient :math:`s g`; ``'sps+'`` uses
    :math:`(f(p) - f^\star)_+`). ``update`` and ``step`` need
    ``value=f(params)``.

    Args:
      max_learning_rate: :math:`\gamma_{\max}`.
      scaling: :math:`s`, a float or a schedule.
      f_min: a lower bound on the objective (:math:`f^\star`).
      eps: added to the squared norm.
      variant: ``'sps'`` or ``'sps+'``.

    Examples:
      >>> import numpy as np, npopt
      >>> opt = npopt.polyak_sgd()
      >>> params = np.array([1.0, 2.0, 3.0])
      >>> state = opt.init(params)
      >>> f = lambda x: float(np.sum(x ** 2))
      >>> params, state = opt.step(params, 2 * params, state, value=f(params))
      >>> params          # step f / ||g||^2 = 14 / 56
      array([0.5, 1. , 1.5])

    References:
      Loizou et al., "Stochastic Polyak Step-size for SGD", AISTATS 2021
      (arXiv:2002.10542); Berrada et al., ICML 2020; Garrigos et al., 2023
      (arXiv:2307.14528).
    """
    scaling = _checks.check_scalar_or_schedule("scaling", scaling)
    check_polyak_args(f_min, max_learning_rate, eps, variant)
    if callable(scaling):       # its values checked under the caller's name
        user_scaling = scaling

        def scaling(count):
            return scheduled_value("scaling", user_scaling, count, nonnegative=True)
    tx = chain(sgd(learning_rate=scaling),
               scale_by_polyak(max_learning_rate=max_learning_rate, f_min=f_min, eps=eps,
                               variant=variant))
    rate = scale_by_learning_rate(scaling).fusion
    return GradientTransformationExtraArgs(
        tx.init, tx.update,
        fused_step=polyak_sgd_step(rate, f_min, max_learning_rate, eps, variant))


def novograd(learning_rate, b1=0.9, b2=0.25, eps=1e-6, eps_root=0.0, weight_decay=0.0):
    r"""NovoGrad: ``chain(scale_by_novograd(b1, b2, eps, eps_root, weight_decay),
    scale_by_learning_rate(learning_rate))``.

    Per leaf :math:`l` a scalar second moment of the gradient norm, and an
    elementwise first moment of the normalised gradient plus weight decay:

    .. math::
        \nu_l \leftarrow \beta_2 \nu_l + (1-\beta_2)\|g_l\|^2,\quad
        m \leftarrow \beta_1 m + \frac{g_l}{\sqrt{\nu_l + \epsilon_{root}} + \epsilon}
        + \lambda p_l,\quad p \leftarrow p - \eta_t m

    (at the first step :math:`\nu_l = \|g_l\|^2` and :math:`m` has no
    :math:`\beta_1 m` term).

    .. warning:: The alias's ``eps`` default is 1e-6, ``scale_by_novograd``'s
       1e-8 (as in optax).

    Args:
      learning_rate: a float, or a schedule (callable of the step count).
      b1, b2, eps, eps_root, weight_decay: see ``scale_by_novograd``.

    Examples:
      >>> import numpy as np, npopt
      >>> opt = npopt.novograd(0.1)
      >>> params = {'w': np.array([3.0, 4.0])}
      >>> state = opt.init(params)
      >>> params, state = opt.step(params, {'w': np.array([3.0, 4.0])}, state)
      >>> np.round(params['w'], 6)       # g / ||g|| = (0.6, 0.8)
      array([2.94, 3.92])

    References:
      Ginsburg et al., "Stochastic Gradient Methods with Layer-wise Adaptive
      Moments for Training of Deep Networks", 2019 (arXiv:1905.11286);
      Li et al., "Jasper: An End-to-End Convolutional Neural Acoustic Model", 2019.
    """
    return chain(scale_by_novograd(b1=b1, b2=b2, eps=eps, eps_root=eps_root,
                                   weight_decay=weight_decay),
                 scale_by_learning_rate(learning_rate))


def sm3(learning_rate, momentum=0.9):
    r"""SM3: ``chain(scale_by_sm3(momentum), scale(-learning_rate))``.

    AdaGrad's adaptivity with memory linear in the sum of each leaf's dims
    instead of its size: per axis, the running maxima of the accumulated
    squared gradients (see ``scale_by_sm3``, with ``b2=1``, ``eps=1e-8``),

    .. math::
        \nu \leftarrow (1-\beta)\, g / \sqrt{g^2 + \min_a \mu_a[i_a] + \epsilon}
        + \beta \nu,\quad p \leftarrow p - \eta\, \nu.

    Args:
      learning_rate: a number (as in optax, schedules are not supported:
        ``scale(-learning_rate)`` needs a number).
      momentum: :math:`\beta`, the decay of the momentum of the scaled gradient.

    Leaves need at least one axis (optax fails on scalar leaves too): mask
    scalars out with ``multi_transform`` or reshape them to (1,).

    References:
      Anil et al., "Memory-Efficient Adaptive Optimization", NeurIPS 2019
      (arXiv:1901.11150).
    """
    if callable(learning_rate):
        raise TypeError("learning_rate: expected a number (sm3 does not support "
                        "schedules, as in optax), got a callable")
    learning_rate = _checks.check_number("learning_rate", learning_rate, low=0.0)
    momentum = _checks.check_number("momentum", momentum, low=0.0, high=1.0)   # scale_by_sm3's b1
    return chain(scale_by_sm3(momentum), scale(-learning_rate))


__all__ = ["fromage", "lars", "novograd", "polyak_sgd", "sm3"]
