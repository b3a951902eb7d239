"""ACProp, optax.contrib's ``scale_by_acprop`` and ``acprop``.

See ``npopt.kernels.acprop`` for the per-element rule. Host side, as optax:
``1 - b`` in float64 rounded once to the leaf dtype; the bias correction of
the *previous* second moment ``1 - b2**k`` (k the count before this step,
1 at the first step, where the corrected moment is replaced by 1) in
float64, cast to the leaf dtype and inverted there (``kernels.adam``).
"""
from .. import _checks
from ..kernels import acprop as kacp
from ..transforms._elementwise import elementwise_transform
from ..transforms.adam import bias_correction_inverse
from ..transforms.adam_variants import ScaleByBeliefState
from ..transforms.combine import chain
from ..transforms.scale import add_decayed_weights, scale_by_learning_rate


def scale_by_acprop(b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16):
    r"""ACProp's direction: the gradient over the root of the *previous*
    centred second moment (AdaBelief's, asynchronous).

    .. math::
        u_t = \frac{g_t}{\sqrt{s_{t-1}/(1-\beta_2^{t-1})} + \epsilon}
        \ (u_1 = g_1/(1+\epsilon)),\\
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
        s_t = \beta_2 s_{t-1} + (1-\beta_2)(g_t - m_{t-1})^2 + \bar\epsilon

    .. note:: As optax (and the authors' PyTorch code): the update is the
       gradient, not the momentum (the momentum only centres the second
       moment), and the prediction error uses :math:`m_{t-1}`.

    Args:
      b1: decay of the first moment.
      b2: decay of the centred second moment.
      eps: added to the denominator.
      eps_root: :math:`\bar\epsilon`, added to the second moment every step.

    References:
      Zhuang et al., "Momentum Centering and Asynchronous Update for
      Adaptive Gradient Methods", NeurIPS 2021 (arXiv:2110.05454).
    """
    b1 = _checks.check_number("b1", b1, low=0.0, high=1.0)
    b2 = _checks.check_number("b2", b2, low=0.0, high=1.0, high_open=True)
    eps = _checks.check_number("eps", eps, low=0.0)
    eps_root = _checks.check_number("eps_root", eps_root, low=0.0)

    def hyperparams(dtype, t):
        r = dtype.type
        k = t - 1                               # optax's state.count
        initial = k == 0
        return (r(1 - b1), r(b1), r(1 - b2), r(b2),
                bias_correction_inverse(b2, t if initial else k, dtype),
                r(eps), r(eps_root), r(1), r(initial))

    return elementwise_transform(
        name="scale_by_acprop", state_cls=ScaleByBeliefState, moments={"mu": 0, "nu": 0},
        kernels=(kacp.acprop_cpu, kacp.acprop_cuda), hyperparams=hyperparams)


def acprop(learning_rate, b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16, weight_decay=0.0,
           mask=None):
    r"""ACProp: ``chain(scale_by_acprop(b1, b2, eps, eps_root),
    add_decayed_weights(weight_decay, mask), scale_by_learning_rate(learning_rate))``.

    .. math::
        p_t = p_{t-1} - \alpha_t \left(\frac{g_t}{\sqrt{\hat s_{t-1}} + \epsilon}
              + \lambda p_{t-1}\right)

    (see ``scale_by_acprop``).

    Args:
      learning_rate: a float, or a schedule (callable of the step count).
      b1, b2, eps, eps_root: see ``scale_by_acprop``.
      weight_decay: :math:`\lambda`.
      mask: where to apply the decay.

    References:
      Zhuang et al., "Momentum Centering and Asynchronous Update for
      Adaptive Gradient Methods", NeurIPS 2021 (arXiv:2110.05454).
    """
    return chain(scale_by_acprop(b1=b1, b2=b2, eps=eps, eps_root=eps_root),
                 add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(learning_rate))


__all__ = ["acprop", "scale_by_acprop"]
