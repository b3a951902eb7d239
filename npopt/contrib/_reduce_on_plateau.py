"""reduce_on_plateau: scale the updates down when the loss stops improving,
as optax 0.2.8's ``optax.contrib.reduce_on_plateau`` (a transformation,
usually the last of a chain; ``update`` needs the keyword ``value``).

The logic is on host scalars; the updates are scaled by one factor
(``npopt.kernels.apply.scale``).
"""
from typing import Any, NamedTuple

import numpy as np

from .. import _checks, _flat
from ..base import GradientTransformation, safe_increment
from . import _common
from ._dog import scale_tree


class ReduceLROnPlateauState(NamedTuple):
    """State for the ReduceLROnPlateau callback."""
    scale: Any            # the current factor (lowest params dtype)
    best_value: Any       # the best (accumulated) value so far (highest dtype)
    plateau_count: Any    # int32
    cooldown_count: Any   # int32
    count: Any            # int32: values accumulated since the last check
    avg_value: Any        # their running mean (highest dtype)


def _check_int(name, x, low):
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {_checks._describe(x)}")
    return int(x)


def reduce_on_plateau(factor=0.1, patience=10, rtol=1e-4, atol=0.0, cooldown=0,
                      accumulation_size=1, min_scale=0.0):
    r"""Reduce the learning rate when a metric has stopped improving.

    Every ``accumulation_size`` calls, the mean :math:`\bar f` of the
    ``value`` arguments is compared with the best so far :math:`f^*`: it
    improves when :math:`\bar f < (1 - \text{rtol}) f^* - \text{atol}`.
    After ``patience`` checks without improvement the scale is multiplied
    by ``factor`` (not below ``min_scale``) and the next ``cooldown`` checks
    leave it alone. The updates are multiplied by the scale:
    :math:`u \leftarrow s\, u`. Chain it after an optimizer
    (``chain(adam(lr), reduce_on_plateau())``).

    Args:
      factor: in (0, 1), the reduction factor.
      patience: checks without improvement before a reduction.
      rtol: relative tolerance (in [0, 1]) of an improvement.
      atol: absolute tolerance (>= 0); rtol and atol not both 0.
      cooldown: checks to wait after a reduction.
      accumulation_size: values averaged per check (1 for a validation
        loss, more for minibatch losses).
      min_scale: the scale stops decreasing there.

    ``update`` needs the keyword ``value``; ``params`` are not used.
    """
    factor = _checks.check_number("factor", factor, low=0.0, high=1.0, low_open=True,
                                  high_open=True)
    rtol = _checks.check_number("rtol", rtol, low=0.0, high=1.0)
    atol = _checks.check_number("atol", atol, low=0.0)
    if rtol == 0.0 and atol == 0.0:
        raise ValueError("rtol, atol: at least one of them must be positive, got "
                         f"rtol = {rtol} and atol = {atol}")
    patience = _check_int("patience", patience, 0)
    cooldown = _check_int("cooldown", cooldown, 0)
    accumulation_size = _check_int("accumulation_size", accumulation_size, 1)
    min_scale = _checks.check_number("min_scale", min_scale, low=0.0)

    def init_fn(params):
        lay, _ = _flat.layout_of(params, "params")
        lo, hi = _common.lowest_dtype(lay), _common.highest_dtype(lay)
        return ReduceLROnPlateauState(scale=lo.type(1.0), best_value=hi.type(np.inf),
                                      plateau_count=np.int32(0), cooldown_count=np.int32(0),
                                      count=np.int32(0), avg_value=hi.type(0.0))

    def _update_scale(state):
        avg = state.avg_value
        improved = avg < (1 - rtol) * state.best_value - atol
        best = state.best_value.dtype.type(avg) if improved else state.best_value
        curr = np.int32(0) if improved else safe_increment(state.plateau_count)
        if state.cooldown_count > 0:
            plateau, scale = np.int32(0), state.scale
            cool = np.int32(state.cooldown_count - 1)
        else:
            hit = curr == patience
            plateau = np.int32(0) if hit else curr
            scale = np.maximum(state.scale * factor if hit else state.scale, min_scale)
            scale = np.asarray(state.scale).dtype.type(scale)
            cool = np.int32(cooldown if hit else 0)
        return ReduceLROnPlateauState(scale, best, plateau, cool, np.int32(0),
                                      avg.dtype.type(0.0))

    def update_fn(updates, state, params=None, *, value=None, **extra_args):
        from ..transforms.polyak import check_value
        if value is None:
            raise TypeError("value: reduce_on_plateau needs the loss (or metric) value; call "
                            "update(updates, state, params, value=loss)")
        check_value(value)
        _checks.check_state("state", state, ReduceLROnPlateauState, "reduce_on_plateau")
        for f in ("scale", "best_value", "avg_value"):
            _common.check_scalar_field(state, f, "reduce_on_plateau")
        lay, _ = _flat.layout_of(updates, "updates")
        g = lay.gather(updates, "updates")
        count = state.count
        new_count = safe_increment(count)
        dt = np.asarray(state.avg_value).dtype
        avg = (dt.type(count) * state.avg_value + dt.type(value)) / dt.type(new_count)
        new_state = state._replace(avg_value=dt.type(avg), count=new_count)
        if new_count == accumulation_size:
            new_state = _update_scale(new_state)
        return scale_tree(lay, g, new_state.scale), new_state

    return GradientTransformation(init_fn, update_fn)
