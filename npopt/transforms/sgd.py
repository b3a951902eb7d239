"""trace: heavy-ball / Nesterov momentum, as optax (and PyTorch) define it."""
from typing import Any, NamedTuple

from .. import _checks
from ..kernels import sgd as ksgd
from ._elementwise import elementwise_transform


class TraceState(NamedTuple):
    trace: Any   # the momentum buffer, a tree like params (accumulator_dtype)


def trace(decay, nesterov=False, accumulator_dtype=None):
    r"""Momentum: :math:`t \leftarrow g + \mu t`, output :math:`t` (or
    :math:`g + \mu t` with ``nesterov``).

    .. warning:: No :math:`(1-\mu)` damping: this is PyTorch's convention,
       not the exponential moving average of ``ema``.

    Args:
      decay: the momentum coefficient :math:`\mu`, in [0, 1].
      nesterov: use Nesterov's accelerated gradient.
      accumulator_dtype: dtype of the trace (None: the params' dtype).

    References:
      Sutskever et al., "On the importance of initialization and momentum in
      deep learning", ICML 2013.
    """
    decay = _checks.check_number("decay", decay, low=0.0, high=1.0)
    nesterov = _checks.check_bool("nesterov", nesterov)
    acc = _checks.check_float_dtype("accumulator_dtype", accumulator_dtype, narrow_ok=True)

    # a 16-bit trace: decay rounded to it (a weakly typed constant meeting a
    # bfloat16 array in JAX), the sum computed in float32
    acc_decay = (lambda dt: dt.type(acc.type(decay))) if acc and _checks.is_narrow(acc) \
        else (lambda dt: dt.type(decay))

    def hyperparams(dtype, t):
        return (acc_decay(dtype),)

    return elementwise_transform(
        name="trace", complex_ok=True, state_cls=TraceState, moments={"trace": 0},
        kernels=(ksgd.trace_cpu, ksgd.trace_cuda), hyperparams=hyperparams,
        flags=(nesterov,), counted=False, moment_dtypes={"trace": acc} if acc else None)
