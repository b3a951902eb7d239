"""scale_by_sign: the sign of every update component (signSGD, signum).

See ``npopt.kernels.sign``. Stateless, but written as an elementwise
preconditioner (with no moments) so that ``chain(scale_by_sign(),
scale_by_learning_rate(lr))`` (``sign_sgd``) fuses into one kernel pass.
"""
from ..base import EmptyState
from ..kernels import sign as ksign
from ._elementwise import elementwise_transform


def scale_by_sign():
    r"""Replaces every update component by its sign: :math:`u = \mathrm{sign}(g)`.

    As ``jnp.sign``: :math:`\pm 1`, zeros kept (with their sign), NaN kept.

    Returns:
      A stateless GradientTransformation (state ``EmptyState()``).

    References:
      Bernstein et al., "signSGD: Compressed Optimisation for Non-Convex
      Problems", ICML 2018.
    """
    def hyperparams(dtype, t):
        return (dtype.type(1),)

    return elementwise_transform(
        name="scale_by_sign", state_cls=EmptyState, moments={},
        kernels=(ksign.sign_cpu, ksign.sign_cuda), hyperparams=hyperparams, counted=False)
