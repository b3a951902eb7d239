"""scale_by_lion: Lion's sign-of-interpolated-momentum direction (Chen et al., 2023).

See ``npopt.kernels.lion`` for the per-element rule. Host side, as optax:
``1 - b1`` and ``1 - b2`` are computed in float64 and rounded once to the
leaf dtype; ``b * mu`` is computed in mu's dtype (``mu_dtype``), the rest in
the wider of the leaf's and mu's dtypes.
"""
from typing import Any, NamedTuple

import numpy as np

from .. import _checks
from ..kernels import lion as klion
from ._elementwise import elementwise_transform

_MODES = {"hard": klion.HARD, "smooth": klion.SMOOTH, "refined": klion.REFINED}


class ScaleByLionState(NamedTuple):
    count: Any   # int32 step counter (incremented, unused by the rule)
    mu: Any      # momentum, a tree like params (mu_dtype)


def scale_by_lion(b1=0.9, b2=0.99, mu_dtype=None, *, mode="hard", smooth_beta=1.0):
    r"""Lion's update direction.

    .. math::
        c_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
        u_t = \mathrm{sign}(c_t), \qquad
        m_t = \beta_2 m_{t-1} + (1-\beta_2) g_t

    The direction interpolates with :math:`\beta_1` but the momentum is
    tracked with :math:`\beta_2` (and updated *after* use). optax's variants
    replace the sign by :math:`\tanh(\beta_s c_t)` (``mode='smooth'``) or by
    :math:`c_t` where :math:`|c_t| < 1` (``mode='refined'``).

    .. note:: ``count`` is incremented every step but not used (as in optax).

    Args:
      b1: interpolation rate between the momentum and the current gradient.
      b2: decay rate of the momentum.
      mu_dtype: dtype of the momentum (None: the params' dtype).
      mode: 'hard' (sign), 'smooth' (tanh) or 'refined'.
      smooth_beta: :math:`\beta_s` of the 'smooth' mode.

    Returns:
      A GradientTransformation with state ``ScaleByLionState(count, mu)``.

    References:
      Chen et al., "Symbolic Discovery of Optimization Algorithms",
      NeurIPS 2023 (arXiv:2302.06675), Algorithm 2.
    """
    b1 = _checks.check_number("b1", b1, low=0.0, high=1.0)
    b2 = _checks.check_number("b2", b2, low=0.0, high=1.0)
    mu_dtype = _checks.check_float_dtype("mu_dtype", mu_dtype, narrow_ok=True)
    if not isinstance(mode, str) or mode not in _MODES:
        raise ValueError(f"mode: expected 'hard', 'smooth' or 'refined', got {mode!r}")
    smooth_beta = _checks.check_number("smooth_beta", smooth_beta)

    def hyperparams(dtype, t):
        res = np.promote_types(dtype, mu_dtype) if mu_dtype is not None else dtype
        md = mu_dtype if mu_dtype is not None else dtype
        r = res.type
        return (r(1 - b1), md.type(b1), r(1 - b2), md.type(b2), r(smooth_beta), r(1))

    return elementwise_transform(
        name="scale_by_lion", state_cls=ScaleByLionState, moments={"mu": 0},
        kernels=(klion.lion_cpu, klion.lion_cuda), hyperparams=hyperparams,
        flags=(_MODES[mode],), moment_dtypes={"mu": mu_dtype} if mu_dtype is not None else None)
