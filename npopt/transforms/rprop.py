"""scale_by_rprop: resilient backpropagation (Riedmiller & Braun, 1993).

See ``npopt.kernels.rprop`` for the per-element rule, including optax's
one-step lag of the emitted update.
"""
from typing import Any, NamedTuple

from .. import _checks
from ..kernels import rprop as krprop
from ._elementwise import elementwise_transform


class ScaleByRpropState(NamedTuple):
    """State of scale_by_rprop."""
    step_sizes: Any     # per-element step sizes, a tree like params (start: learning_rate)
    prev_updates: Any   # last step's signed step step_size * sign(g) (0 after a sign change)


def scale_by_rprop(learning_rate, eta_minus=0.5, eta_plus=1.2, min_step_size=1e-6,
                   max_step_size=50.0):
    r"""Rprop: per-element step sizes adapted to sign agreement of the gradient.

    With :math:`s = g_t \cdot d_{t-1}` (:math:`d` the stored signed step):

    .. math::
        \Delta_t = \begin{cases}
            \Delta_{t-1} & s = 0 \\
            \mathrm{clip}(\eta^+ \Delta_{t-1}, \Delta_{min}, \Delta_{max}) & s > 0 \\
            \mathrm{clip}(\eta^- \Delta_{t-1}, \Delta_{min}, \Delta_{max}) & s < 0
        \end{cases},\qquad
        d_t = \begin{cases} 0 & s < 0 \\ \Delta_t\, \mathrm{sign}(g_t) & \text{else}\end{cases}

    and the output is :math:`u_t = 0` if :math:`s < 0`, else :math:`d_{t-1}`.
    After a sign change the step is skipped and :math:`d_t = 0`, so the next
    step does not compare signs again (the structure of Igel & Hüsken's
    iRprop-).

    .. warning:: optax 0.2.8's quirk, reproduced: the update emitted at step
       :math:`t` is the *previous* step's :math:`d_{t-1}`, not :math:`d_t`,
       so updates lag one step and the first update is 0 (for a constant
       gradient 1 and ``learning_rate=0.1``: 0, 0.1, 0.12, ...), and after
       a sign change two updates in a row are 0. optax PR #1725 proposes
       the fix. The output points uphill: ``rprop`` chains ``scale(-1)``.

    Args:
      learning_rate: the initial step size of every element (a number).
      eta_minus: factor shrinking the step after a sign change, in [0, 1].
      eta_plus: factor growing the step while the sign is kept, >= 1.
      min_step_size, max_step_size: bounds of the step sizes
        (``0 <= min_step_size <= max_step_size``).

    References:
      Riedmiller & Braun, "A direct adaptive method for faster backpropagation
      learning: the RPROP algorithm", IEEE ICNN 1993.
      Igel & Hüsken, "Empirical evaluation of the improved Rprop learning
      algorithms", Neurocomputing 50, 2003.
    """
    learning_rate = _checks.check_number("learning_rate", learning_rate, low=0.0)
    # Riedmiller & Braun: 0 < eta_minus < 1 < eta_plus (the edges are accepted)
    eta_minus = _checks.check_number("eta_minus", eta_minus, low=0.0, high=1.0)
    eta_plus = _checks.check_number("eta_plus", eta_plus, low=1.0)
    min_step_size = _checks.check_number("min_step_size", min_step_size, low=0.0)
    max_step_size = _checks.check_number("max_step_size", max_step_size, low=float(min_step_size))

    def hyperparams(dtype, t):
        dt = dtype.type
        return (dt(eta_minus), dt(eta_plus), dt(min_step_size), dt(max_step_size), dt(1), dt(0))

    return elementwise_transform(
        name="scale_by_rprop", state_cls=ScaleByRpropState,
        moments={"step_sizes": learning_rate, "prev_updates": 0},
        kernels=(krprop.rprop_cpu, krprop.rprop_cuda), hyperparams=hyperparams, counted=False)
