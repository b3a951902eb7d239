"""Optimizer aliases: optax's names, signatures and defaults, as chains.

Each alias is the chain optax 0.2.8 builds, so its state has optax's
structure and its ``update`` optax's numbers; ``step`` fuses the chain into
one kernel pass where it can (see ``npopt.transforms._fusion``).
"""
import functools

from .. import _checks
from ..base import identity
from ..transforms.adam import scale_by_adam
from ..transforms.rms import scale_by_rms, scale_by_rss, scale_by_stddev
from ..transforms.sgd import trace
from ..transforms.trust_ratio import scale_by_trust_ratio
from ..transforms.combine import chain
from ..transforms.scale import add_decayed_weights, scale_by_learning_rate


def adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None, *,
         nesterov=False):
    r"""Adam: ``chain(scale_by_adam(...), scale_by_learning_rate(learning_rate))``.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \\
        p_{t} = p_{t-1} - \eta_t\, \hat m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon)

    with bias corrections :math:`\hat m_t = m_t/(1-\beta_1^t)`,
    :math:`\hat v_t = v_t/(1-\beta_2^t)` (see ``scale_by_adam``).

    Args:
      learning_rate: a float, or a schedule (callable of the step count).
      b1, b2, eps, eps_root, mu_dtype, nesterov: see ``scale_by_adam``.

    Examples:
      >>> import numpy as np, npopt
      >>> opt = npopt.adam(1e-1)
      >>> params = {'w': np.ones(3)}
      >>> state = opt.init(params)
      >>> params, state = opt.step(params, {'w': np.full(3, 2.0)}, state)
      >>> params['w']
      array([0.9, 0.9, 0.9])

    References:
      Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.
    """
    return chain(scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
                 scale_by_learning_rate(learning_rate))


def adamw(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None,
          weight_decay=1e-4, mask=None, *, nesterov=False):
    r"""AdamW: Adam with decoupled weight decay.

    ``chain(scale_by_adam(...), add_decayed_weights(weight_decay, mask),
    scale_by_learning_rate(learning_rate))``, i.e.

    .. math:: p_t = p_{t-1} - \eta_t (\hat m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon) + \lambda p_{t-1})

    .. warning:: As in optax (and PyTorch) the decay is multiplied by the full
       learning rate, not only by a schedule multiplier as in Loshchilov &
       Hutter's paper.

    References:
      Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
    """
    weight_decay = _checks.check_scalar_or_schedule("weight_decay", weight_decay)
    return chain(scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
                 add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(learning_rate))


nadam = functools.partial(adam, nesterov=True)
nadam.__doc__ = "NAdam: ``adam(..., nesterov=True)`` (Dozat, 2016)."
nadamw = functools.partial(adamw, nesterov=True)
nadamw.__doc__ = "NAdamW: ``adamw(..., nesterov=True)``."


def sgd(learning_rate, momentum=None, nesterov=False, accumulator_dtype=None):
    r"""Stochastic gradient descent, with optional (Nesterov) momentum.

    ``chain(trace(momentum, nesterov, accumulator_dtype) if momentum is not
    None else identity(), scale_by_learning_rate(learning_rate))``:

    .. math:: t_k = g_k + \mu t_{k-1}, \quad p_k = p_{k-1} - \eta_k t_k

    (:math:`p_k = p_{k-1} - \eta_k (g_k + \mu t_k)` with Nesterov).

    References:
      Sutskever et al., ICML 2013.
    """
    # validated under the names the caller used (trace calls them decay, ...)
    momentum = _checks.check_number("momentum", momentum, low=0.0, high=1.0, allow_none=True)
    _checks.check_bool("nesterov", nesterov)
    _checks.check_float_dtype("accumulator_dtype", accumulator_dtype, narrow_ok=True)
    if momentum is not None:
        pre = trace(decay=momentum, nesterov=nesterov, accumulator_dtype=accumulator_dtype)
    else:
        pre = identity()
    return chain(pre, scale_by_learning_rate(learning_rate))


def rmsprop(learning_rate, decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt=True,
            centered=False, momentum=None, nesterov=False, bias_correction=False):
    r"""RMSProp (optionally centred, with momentum after the learning rate).

    ``chain(scale_by_stddev(...) if centered else scale_by_rms(...),
    scale_by_learning_rate(learning_rate), trace(momentum, nesterov) if
    momentum is not None else identity())``.

    .. math:: \nu_t = \rho \nu_{t-1} + (1-\rho) g_t^2,\quad
              p_t = p_{t-1} - \eta_t\, g_t / \sqrt{\nu_t + \epsilon}

    .. warning:: optax's conventions (eps inside the square root, decay 0.9,
       momentum applied after the learning rate) differ from PyTorch's.

    References:
      Hinton, 2012; Graves, 2013 (centred).
    """
    _checks.check_bool("centered", centered)
    momentum = _checks.check_number("momentum", momentum, low=0.0, high=1.0, allow_none=True)
    _checks.check_bool("nesterov", nesterov)
    block = scale_by_stddev if centered else scale_by_rms
    pre = block(decay=decay, eps=eps, initial_scale=initial_scale, eps_in_sqrt=eps_in_sqrt,
                bias_correction=bias_correction)
    post = trace(decay=momentum, nesterov=nesterov) if momentum is not None else identity()
    return chain(pre, scale_by_learning_rate(learning_rate), post)


def adagrad(learning_rate, initial_accumulator_value=0.1, eps=1e-7):
    r"""AdaGrad: ``chain(scale_by_rss(...), scale_by_learning_rate(learning_rate))``.

    .. math:: S_t = S_{t-1} + g_t^2, \quad p_t = p_{t-1} - \eta_t\, g_t/\sqrt{S_t+\epsilon}

    .. warning:: TF-style defaults: the accumulator starts at 0.1 and eps sits
       inside the square root (PyTorch: 0 and outside, 1e-10).

    References:
      Duchi, Hazan & Singer, JMLR 2011.
    """
    return chain(scale_by_rss(initial_accumulator_value, eps),
                 scale_by_learning_rate(learning_rate))


def lamb(learning_rate, b1=0.9, b2=0.999, eps=1e-6, eps_root=0.0, weight_decay=0.0,
         mask=None):
    r"""LAMB: Adam's direction plus weight decay, rescaled per leaf by a trust ratio.

    ``chain(scale_by_adam(b1, b2, eps, eps_root), add_decayed_weights(weight_decay,
    mask), scale_by_trust_ratio(), scale_by_learning_rate(learning_rate))``:

    .. math:: r_t = \hat m_t/(\sqrt{\hat v_t + \epsilon_{root}}+\epsilon) + \lambda p,\quad
              p \leftarrow p - \eta_t \frac{\|p\|}{\|r_t\|} r_t \text{ (per leaf)}

    Note the default ``eps=1e-6`` (Adam's is 1e-8).

    References:
      You et al., "Large Batch Optimization for Deep Learning: Training BERT in
      76 minutes", ICLR 2020.
    """
    weight_decay = _checks.check_scalar_or_schedule("weight_decay", weight_decay)
    return chain(scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root),
                 add_decayed_weights(weight_decay=weight_decay, mask=mask),
                 scale_by_trust_ratio(),
                 scale_by_learning_rate(learning_rate))
