"""Lion, as the chain optax 0.2.8 builds (blocks: scale_by_lion,
add_decayed_weights).
"""
from .. import _checks
from ..transforms.combine import chain
from ..transforms.lion import scale_by_lion
from ..transforms.scale import add_decayed_weights, scale_by_learning_rate


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
    weight_decay = _checks.check_scalar_or_schedule("weight_decay", weight_decay)
    return chain(scale_by_lion(b1=b1, b2=b2, mu_dtype=mu_dtype),
                 add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(learning_rate))


__all__ = ["lion"]
