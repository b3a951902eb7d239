"""Sign-based and noisy rules: sign_sgd, signum, lion and noisy_sgd, as the
chains optax 0.2.8 builds (blocks: ema, scale_by_sign, scale_by_lion,
add_noise).
"""
from .. import _checks
from ..transforms.combine import chain
from ..transforms.ema import EmaState, ema
from ..transforms.lion import ScaleByLionState, scale_by_lion
from ..transforms.noise import AddNoiseState, add_noise
from ..transforms.scale import add_decayed_weights, scale_by_learning_rate
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
    _checks.check_number("beta", beta, low=0.0, high=1.0)   # ema calls it decay
    return chain(ema(beta, debias=False, accumulator_dtype=accumulator_dtype),
                 scale_by_sign(), scale_by_learning_rate(learning_rate))


def lion(learning_rate, b1=0.9, b2=0.99, mu_dtype=None, weight_decay=1e-3, mask=None):
    r"""Lion (EvoLved Sign Momentum).

    ``chain(scale_by_lion(b1, b2, mu_dtype), add_decayed_weights(weight_decay,
    mask), scale_by_learning_rate(learning_rate))``:

    .. math::
        c_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        p_t = p_{t-1} - \alpha_t (\mathrm{sign}(c_t) + \lambda p_{t-1}), \quad
        m_t = \beta_2 m_{t-1} + (1-\beta_2) g_t

    .. warning:: optax's default ``weight_decay`` is **1e-3** (not 0), and, as
       in AdamW, the decay is multiplied by the full learning rate. Since
       :math:`|\mathrm{sign}| = 1`, Lion usually wants a learning rate 3-10x
       smaller and a weight decay 3-10x larger than AdamW's.

    Args:
      learning_rate: a float, or a schedule (callable of the step count).
      b1, b2, mu_dtype: see ``scale_by_lion``.
      weight_decay: :math:`\lambda`, a float or a schedule.
      mask: where to apply the decay (a prefix tree of bools, or a callable
        of the params).

    References:
      Chen et al., "Symbolic Discovery of Optimization Algorithms",
      NeurIPS 2023 (arXiv:2302.06675).
    """
    _checks.check_scalar_or_schedule("weight_decay", weight_decay)
    return chain(scale_by_lion(b1=b1, b2=b2, mu_dtype=mu_dtype),
                 add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(learning_rate))


def noisy_sgd(learning_rate, eta=0.01, gamma=0.55, key=None, *, seed=None):
    r"""SGD with annealed Gaussian gradient noise.

    ``chain(add_noise(eta, gamma, key, seed=seed),
    scale_by_learning_rate(learning_rate))``:

    .. math:: p_t = p_{t-1} - \alpha_t (g_t + \sigma_t z_t), \quad
              z_t \sim \mathcal N(0, I), \quad \sigma_t^2 = \eta / t^\gamma

    with :math:`t = 1, 2, \dots` (the paper's :math:`(1+t)^\gamma`, counting
    from 0).

    .. warning:: The state's ``rng_key`` is split exactly as optax splits it,
       but the noise is drawn by NumPy (see ``npopt.transforms.noise``): runs
       match optax in distribution, not draw by draw. ``key=None`` warns and
       uses 0; ``seed`` is deprecated (as in optax).

    Args:
      learning_rate: a float, or a schedule (callable of the step count).
      eta: the initial variance of the noise.
      gamma: its annealing exponent.
      key: an int seed or a raw threefry key (uint32, shape (2,)).
      seed: deprecated alias of ``key``.

    References:
      Neelakantan et al., "Adding Gradient Noise Improves Learning for Very
      Deep Networks", 2015 (arXiv:1511.06807).
    """
    return chain(add_noise(eta, gamma, key, seed=seed), scale_by_learning_rate(learning_rate))


__all__ = ["lion", "noisy_sgd", "sign_sgd", "signum"]
