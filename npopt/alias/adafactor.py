"""Adafactor (Shazeer & Stern, 2018), as the chain optax 0.2.8 builds; its
fused ``step`` is the per-leaf plan (five passes over memory instead of the
chain's seven, see ``npopt.transforms.factored.per_leaf_step``)."""
import numpy as np

from .. import _checks
from ..transforms.clipping import clip_by_block_rms
from ..transforms.combine import chain
from ..transforms.moving_average import ema
from ..transforms.factored import scale_by_factored_rms, scale_by_param_block_rms
from ..transforms.scale import add_decayed_weights, scale, scale_by_learning_rate


def adafactor(learning_rate=None, min_dim_size_to_factor=128, decay_rate=0.8, decay_offset=0,
              multiply_by_parameter_scale=True, clipping_threshold=1.0, momentum=None,
              dtype_momentum=np.float32, weight_decay_rate=None, eps=1e-30, factored=True,
              weight_decay_mask=None):
    r"""Adafactor: Adam-like steps with factored second moments (sublinear memory).

    The chain optax builds (each block only when its argument enables it)::

        chain(scale_by_factored_rms(factored, decay_rate, decay_offset,
                                    min_dim_size_to_factor, eps),
              clip_by_block_rms(clipping_threshold),
              scale_by_learning_rate(learning_rate, flip_sign=False),
              scale_by_param_block_rms(),          # multiply_by_parameter_scale
              ema(momentum, debias=False, accumulator_dtype=dtype_momentum),
              add_decayed_weights(weight_decay_rate, weight_decay_mask),
              scale(-1))

    so, per leaf :math:`p` with gradient :math:`g` and factored second-moment
    estimate :math:`\hat v` (see ``scale_by_factored_rms``),

    .. math::
        u = g / \sqrt{\hat v}, \quad
        u \leftarrow \frac{u}{\max(1, \mathrm{rms}(u)/d)}, \quad
        u \leftarrow \eta_t\, \max(\mathrm{rms}(p), 10^{-3})\, u, \quad
        m \leftarrow \mu m + (1-\mu) u, \quad
        p \leftarrow p - (m + \lambda p).

    ``step`` computes the same numbers in five passes over memory, in place
    (the per-leaf plan, see ``npopt.transforms.factored.per_leaf_step``).

    .. warning:: optax's default ``learning_rate=None`` leaves out the
       learning rate: each leaf then moves by :math:`\max(\mathrm{rms}(p),
       10^{-3})` times a unit-RMS direction per step (the paper's relative
       step with :math:`\rho_t = 1`), which is large; the update is still
       negated (``scale(-1)``): descent, unlike ``adadelta(learning_rate=None)``.
       The paper's relative step size :math:`\min(10^{-2}, 1/\sqrt t)` is not
       applied; pass it as a schedule. The weight decay is not multiplied by
       the learning rate. Momentum buffers are float32 by default, whatever
       the params' dtype.

    Args:
      learning_rate: a float, a schedule, or None (no learning rate).
      min_dim_size_to_factor: factor a leaf's statistics only if its two
        largest dimensions are at least this large.
      decay_rate: exponent of the second-moment decay :math:`1 - t^{-0.8}`.
      decay_offset: subtracted from the step count in that schedule
        (fine-tuning a restored state; see ``scale_by_factored_rms``).
      multiply_by_parameter_scale: scale each leaf's step by its parameters'
        RMS (at least 1e-3).
      clipping_threshold: clip each leaf's update RMS to this (None: off).
      momentum: EMA decay of the updates (None: no momentum).
      dtype_momentum: dtype of the momentum buffer.
      weight_decay_rate: decoupled weight decay (a float or a schedule).
      eps: added to the squared gradients.
      factored: factor the second moments of large matrices.
      weight_decay_mask: a prefix tree of bools, or a callable of the params,
        selecting the leaves to decay.

    Returns:
      A GradientTransformation; its state is the tuple of the chain's states,
      first ``FactoredState(count, v_row, v_col, v)``.

    Examples:
      >>> import numpy as np, npopt
      >>> opt = npopt.adafactor(learning_rate=0.1)
      >>> params = {'w': np.ones((2, 3))}
      >>> state = opt.init(params)
      >>> params, state = opt.step(params, {'w': np.full((2, 3), 0.5)}, state)
      >>> params['w']
      array([[0.9, 0.9, 0.9],
             [0.9, 0.9, 0.9]])

    References:
      Shazeer & Stern, "Adafactor: Adaptive Learning Rates with Sublinear
      Memory Cost", ICML 2018, https://arxiv.org/abs/1804.04235
    """
    _checks.check_float_dtype("dtype_momentum", dtype_momentum, narrow_ok=True)
    # the building blocks check these too, under their own names: name them
    # as the user spelled them here
    momentum = _checks.check_number("momentum", momentum, low=0.0, high=1.0, allow_none=True)
    clipping_threshold = _checks.check_number("clipping_threshold", clipping_threshold, low=0.0,
                                              low_open=True, allow_none=True)
    eps = _checks.check_number("eps", eps, low=0.0)
    if not callable(weight_decay_rate):
        weight_decay_rate = _checks.check_number("weight_decay_rate", weight_decay_rate,
                                                 low=0.0, allow_none=True)
    if isinstance(decay_offset, bool) or not isinstance(decay_offset, (int, np.integer)):
        raise TypeError(f"decay_offset: expected an integer, got {_checks._describe(decay_offset)}")
    _checks.check_bool("multiply_by_parameter_scale", multiply_by_parameter_scale)
    txs = [scale_by_factored_rms(factored, decay_rate, decay_offset, min_dim_size_to_factor, eps)]
    if clipping_threshold is not None:
        txs.append(clip_by_block_rms(clipping_threshold))
    if learning_rate is not None:
        txs.append(scale_by_learning_rate(learning_rate, flip_sign=False))
    if multiply_by_parameter_scale:
        txs.append(scale_by_param_block_rms())
    if momentum is not None:
        txs.append(ema(momentum, debias=False, accumulator_dtype=dtype_momentum))
    if weight_decay_rate is not None:
        txs.append(add_decayed_weights(weight_decay_rate, mask=weight_decay_mask))
    txs.append(scale(-1))
    return chain(*txs)


__all__ = ["adafactor"]
