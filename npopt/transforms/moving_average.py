"""ema: an exponential moving average of the updates (optax.ema).

See ``npopt.kernels.ema`` for the per-element recursion. Host side, as
optax: ``1 - decay`` is computed in float64 and rounded once to the leaf
dtype; the debiasing factor ``1 - decay**t`` is computed in float64, cast,
and inverted in the leaf dtype (XLA turns ``e / bc`` into ``e * (1 / bc)``).
"""
from typing import Any, NamedTuple

import numpy as np

from .. import _checks
from ..kernels import ema as kema
from . import _fusion
from ._elementwise import elementwise_transform
from .adam import bias_correction_inverse


class EmaState(NamedTuple):
    count: Any   # int32 step counter
    ema: Any     # the moving average, a tree like params (accumulator_dtype)


def ema(decay, debias=True, accumulator_dtype=None):
    r"""Exponential moving average of past updates.

    .. math::
        e_t = \beta e_{t-1} + (1-\beta) g_t, \qquad
        u_t = e_t / (1-\beta^t) \ \text{(debias)}, \quad u_t = e_t \ \text{(otherwise)}

    with :math:`e_0 = 0` and :math:`t` the step number starting at 1. The
    debiasing divides out the weight :math:`1-\beta^t` the average gives its
    zero initial value (Kingma & Ba's bias correction).

    .. note:: ``trace`` is the undamped :math:`t \leftarrow g + \mu t`;
       ``ema`` damps the gradient by :math:`1-\beta`.

    Args:
      decay: the decay rate :math:`\beta`, in [0, 1].
      debias: divide by :math:`1 - \beta^t`. signum and adafactor's momentum
        use ``debias=False``.
      accumulator_dtype: dtype of the stored average (None: the params'
        dtype). The update itself keeps the wider of the two dtypes' result,
        as in optax; the state is rounded to this dtype.

    Returns:
      A GradientTransformation with state ``EmaState(count, ema)``.

    References:
      Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015
      (bias correction, Sec. 3).
    """
    debias = _checks.check_bool("debias", debias)
    # decay = 1 would freeze the average at 0 (and debiasing would divide by 0)
    decay = _checks.check_number("decay", decay, low=0.0, high=1.0, high_open=debias)
    acc = _checks.check_float_dtype("accumulator_dtype", accumulator_dtype, narrow_ok=True)

    def hyperparams(dtype, t):
        res = np.promote_types(dtype, acc) if acc is not None else dtype
        ad = acc if acc is not None else dtype
        inv_bc = bias_correction_inverse(decay, t, res) if debias else res.type(1)
        return (res.type(1 - decay), ad.type(decay), inv_bc)

    return elementwise_transform(
        name="ema", complex_ok=True, state_cls=EmaState, moments={"ema": 0},
        kernels=(kema.ema_cpu, kema.ema_cuda), hyperparams=hyperparams,
        flags=(debias,), moment_dtypes={"ema": acc} if acc is not None else None,
        rule=_fusion.Ema(decay, debias, acc))
