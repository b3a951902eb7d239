"""Sign-based rules: sign_sgd and signum, as the chains optax 0.2.8 builds
(blocks: scale_by_sign, ema).
"""
from .. import _checks
from ..transforms.combine import chain
from ..transforms.moving_average import ema
from ..transforms.scale import scale_by_learning_rate
from ..transforms.sign import scale_by_sign


def sign_sgd(learning_rate):
    r"""signSGD: SGD on the signs of the gradient components.

    ``chain(scale_by_sign(), scale_by_learning_rate(learning_rate))``:

    .. math:: p_t = p_{t-1} - \alpha_t\, \mathrm{sign}(g_t)

    (:math:`\mathrm{sign}(0) = 0`). Fused into one kernel pass by ``step``.

    Args:
      learning_rate: a float, or a schedule (callable of the step count).

    Examples:
      >>> import numpy as np, npopt
      >>> opt = npopt.sign_sgd(0.1)
      >>> params = {'w': np.array([1.0, -2.0, 0.0])}
      >>> state = opt.init(params)
      >>> params, state = opt.step(params, {'w': np.array([3.0, -0.5, 0.0])}, state)
      >>> params['w']
      array([ 0.9, -1.9,  0. ])

    References:
      Bernstein et al., "signSGD: Compressed Optimisation for Non-Convex
      Problems", ICML 2018.
      Balles et al., "The Geometry of Sign Gradient Descent", 2020.
    """
    return chain(scale_by_sign(), scale_by_learning_rate(learning_rate))


def signum(learning_rate, beta=0.9, accumulator_dtype=None):
    r"""Signum: signSGD on an exponential moving average of the gradients.

    ``chain(ema(beta, debias=False, accumulator_dtype=accumulator_dtype),
    scale_by_sign(), scale_by_learning_rate(learning_rate))``:

    .. math:: m_t = \beta m_{t-1} + (1-\beta) g_t, \qquad
              p_t = p_{t-1} - \alpha_t\, \mathrm{sign}(m_t)

    The EMA is not debiased (a positive factor does not change the sign).

    .. note:: Two preconditioners in a row (ema, then sign): ``step`` runs
       ``update`` + ``apply_updates`` (two kernel passes and an apply) rather
       than one fused pass.

    Args:
      learning_rate: a float, or a schedule (callable of the step count).
      beta: the EMA decay rate.
      accumulator_dtype: dtype of the stored EMA (None: the params' dtype).

    References:
      Bernstein et al., "signSGD: Compressed Optimisation for Non-Convex
      Problems", ICML 2018 (Signum, Algorithm 3).
      Zhao et al., "Deconstructing What Makes a Good Optimizer for Language
      Models", 2024.
    """
    beta = _checks.check_number("beta", beta, low=0.0, high=1.0)   # ema calls it decay
    return chain(ema(beta, debias=False, accumulator_dtype=accumulator_dtype),
                 scale_by_sign(), scale_by_learning_rate(learning_rate))


__all__ = ["sign_sgd", "signum"]
