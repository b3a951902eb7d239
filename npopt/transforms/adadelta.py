"""scale_by_adadelta: Adadelta's preconditioner (Zeiler, 2012).

See ``npopt.kernels.adadelta`` for the per-element recursion. ``1 - rho``
is computed in float64 (optax's Python-float hyperparameters) and rounded
once to the leaf dtype.
"""
from typing import Any, NamedTuple

from .. import _checks
from ..kernels import adadelta as kadadelta
from ._elementwise import elementwise_transform


class ScaleByAdaDeltaState(NamedTuple):
    """State of scale_by_adadelta."""
    e_g: Any   # running average of squared gradients, a tree like params
    e_x: Any   # running average of squared updates, a tree like params


def scale_by_adadelta(rho=0.9, eps=1e-6):
    r"""Rescales updates with Adadelta's ratio of running RMS values.

    .. math::
        E[g^2]_t = \rho E[g^2]_{t-1} + (1-\rho) g_t^2, \quad
        u_t = \frac{\sqrt{E[u^2]_{t-1} + \epsilon}}{\sqrt{E[g^2]_t + \epsilon}}\, g_t, \quad
        E[u^2]_t = \rho E[u^2]_{t-1} + (1-\rho) u_t^2

    Both averages start at zero, so the first steps have size about
    :math:`\sqrt{\epsilon / (1-\rho)}` whatever the gradient's scale.

    .. note:: :math:`u_t` is a descent direction *before* the sign flip:
       chain it with ``scale_by_learning_rate`` (see ``adadelta``).

    Args:
      rho: decay rate of both running averages, in [0, 1].
      eps: added under both square roots (> 0 keeps the first step nonzero).

    References:
      Zeiler, "ADADELTA: An Adaptive Learning Rate Method", arXiv:1212.5701, 2012.
    """
    return _adadelta(rho, eps, decay_first=False)


def _adadelta(rho, eps, decay_first):
    """scale_by_adadelta; ``decay_first``: when fused, apply the fused weight
    decay to g before the rule (the ``adadelta`` alias's L2-coupled decay)."""
    rho = _checks.check_number("rho", rho, low=0.0, high=1.0)
    eps = _checks.check_number("eps", eps, low=0.0)

    def hyperparams(dtype, t):
        dt = dtype.type
        return (dt(1 - rho), dt(rho), dt(eps), dt(1))

    return elementwise_transform(
        name="scale_by_adadelta", state_cls=ScaleByAdaDeltaState, moments={"e_g": 0, "e_x": 0},
        kernels=(kadadelta.adadelta_cpu, kadadelta.adadelta_cuda), hyperparams=hyperparams,
        flags=(bool(decay_first),), counted=False)
