"""Noisy SGD, as the chain optax 0.2.8 builds (block: add_noise).
"""
from ..transforms.combine import chain
from ..transforms.noise import add_noise
from ..transforms.scale import scale_by_learning_rate


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


__all__ = ["noisy_sgd"]
