"""Scaling blocks: scale, scale_by_schedule, scale_by_learning_rate,
add_decayed_weights.

Hyperparameters enter the arithmetic as optax's do: a Python float is
rounded once to the leaf dtype (``-lr`` is negated in float64 first); a
schedule value is computed by the schedule, negated, then cast to the leaf
dtype (``jnp.array(-lr(count), dtype=g.dtype) * g``).
"""
import math
from typing import Any, NamedTuple

import numpy as np

from .. import _checks, _flat
from .._checks import compute_dtype, is_narrow, real_dtype
from ..base import NO_PARAMS_MSG, ZERO, EmptyState, GradientTransformation, \
    init_empty_state, safe_increment
from ..kernels import apply as kapply
from . import _fusion


class ScaleByScheduleState(NamedTuple):
    count: Any  # int32 step counter


class WeightDecaySchedule(NamedTuple):
    count: Any  # int32 step counter


ScaleState = EmptyState
AddDecayedWeightsState = EmptyState


def _scaled(updates, s):
    """s * updates leaf by leaf, s cast to each leaf's dtype, via the kernel."""
    lay, _ = _flat.layout_of(updates, "updates", complex_ok=True, narrow_ok=True)
    u = lay.gather(updates, "updates")
    out = []
    for grp, ub in zip(lay.groups, u):       # linear: any field; 16-bit floats in float32
        cdt = compute_dtype(grp.dtype)
        ob = lay.target.empty(grp.size, cdt)
        lay.target.launch(kapply.scale_cpu, kapply.scale_cuda, _flat.as_dtype(lay.target, ub, cdt),
                          ob, narrow_scalar(real_dtype(cdt), grp.dtype, s))
        out.append(_flat.as_dtype(lay.target, ob, grp.dtype))
    return lay.views(out)


def narrow_scalar(cdt, dtype, x):
    """``x`` of dtype ``cdt``, first rounded to a 16-bit ``dtype`` (a weakly
    typed constant meeting a bfloat16 array is a bfloat16 constant in JAX)."""
    return cdt.type(dtype.type(x)) if is_narrow(dtype) else cdt.type(x)


def scheduled_value(name, fn, count, *, nonnegative):
    """``fn(count)``, a schedule's value for this step, checked before any
    buffer is touched: a real scalar, finite, and ``>= 0`` when
    ``nonnegative`` (a learning rate). Otherwise ``ValueError`` naming the
    argument and the step count. Both ``update`` and the fused ``step``
    evaluate schedules through here."""
    v = fn(count)
    a = np.asarray(v)
    ok = a.shape == () and a.dtype.kind in "fiu"
    if ok:
        x = float(a)
        ok = math.isfinite(x) and (x >= 0 or not nonnegative)
    if not ok:
        want = "a finite number >= 0" if nonnegative else "a finite number"
        raise ValueError(
            f"{name}: the schedule returned {_checks._describe(v)} at step count "
            f"{int(count)}; expected {want} (nothing was updated)")
    return v


def scale(step_size):
    """Scales updates by a fixed ``step_size``: ``u -> step_size * u``."""
    step_size = _checks.check_number("step_size", step_size)

    def update_fn(updates, state, params=None, **extra_args):
        return _scaled(updates, step_size), state

    rate = _fusion.Rate(value=lambda state: step_size, advance=lambda state: state,
                        state_cls=EmptyState, constant=step_size)
    return GradientTransformation(init_empty_state, update_fn, fusion=rate)


def scale_by_schedule(step_size_fn):
    """Scales updates by ``step_size_fn(count)``, count starting at 0.

    The schedule sees the count before it is incremented, so the first
    update uses ``step_size_fn(0)``. A value that is not a finite real
    scalar raises ``ValueError`` (naming ``step_size_fn`` and the count)
    before any buffer is touched.
    """
    if not callable(step_size_fn):
        raise TypeError(f"step_size_fn: expected a callable of the step count, got {step_size_fn!r}")
    user_fn = step_size_fn
    if not getattr(user_fn, "_npopt_checked", False):
        def step_size_fn(count):
            return scheduled_value("step_size_fn", user_fn, count, nonnegative=False)

    def init_fn(params):
        return ScaleByScheduleState(count=ZERO)

    def update_fn(updates, state, params=None, **extra_args):
        _checks.check_state("state", state, ScaleByScheduleState, "scale_by_schedule")
        s = step_size_fn(state.count)
        return _scaled(updates, s), ScaleByScheduleState(safe_increment(state.count))

    rate = _fusion.Rate(value=lambda state: step_size_fn(
        _checks.check_state("state", state, ScaleByScheduleState, "scale_by_schedule").count),
        advance=lambda state: ScaleByScheduleState(safe_increment(state.count)))
    return GradientTransformation(init_fn, update_fn, fusion=rate)


def scale_by_learning_rate(learning_rate=None, *, flip_sign=True):
    """``-learning_rate * u`` (descent); a schedule is evaluated per step.

    ``learning_rate=None`` gives the identity (optax's behaviour; note that
    it then does not flip the sign either). A schedule's value is checked
    at every step, in ``update`` and in the fused ``step``, before any
    buffer is touched: NaN, an infinity, a negative value or a non-scalar
    raises ``ValueError`` naming ``learning_rate`` and the step count.
    """
    from ..base import identity
    if learning_rate is None:
        return identity()
    learning_rate = _checks.check_scalar_or_schedule("learning_rate", learning_rate)
    m = -1 if _checks.check_bool("flip_sign", flip_sign) else 1
    if callable(learning_rate):
        def step_size_fn(count):
            return m * scheduled_value("learning_rate", learning_rate, count, nonnegative=True)
        step_size_fn._npopt_checked = True
        return scale_by_schedule(step_size_fn)
    return scale(m * learning_rate)


def add_decayed_weights(weight_decay=0.0, mask=None):
    """``u + weight_decay * p`` (L2 / decoupled weight decay in AdamW).

    ``weight_decay`` may be a schedule, evaluated at the count before its
    increment. ``mask`` (a prefix tree of bools, or a callable of params)
    restricts the decay to some leaves, as ``masked`` does.
    """
    sched = callable(weight_decay)
    if not sched:
        weight_decay = _checks.check_number("weight_decay", weight_decay)

    def init_fn(params):
        return WeightDecaySchedule(ZERO) if sched else EmptyState()

    def update_fn(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError(NO_PARAMS_MSG)
        new_state = WeightDecaySchedule(safe_increment(state.count)) if sched else state
        if not sched and weight_decay == 0.0:
            return updates, new_state
        s = (scheduled_value("weight_decay", weight_decay, state.count, nonnegative=False)
             if sched else weight_decay)
        _flat.check_like(params, updates, "updates")
        lay, _ = _flat.layout_of(updates, "updates", complex_ok=True, narrow_ok=True)
        u = lay.gather(updates, "updates")
        # optax's dtypes: wd * p in the params' dtype, added to the updates in
        # the promoted one (float64 updates of float32 params stay float64)
        p, pdts = lay.gather_promoted(params, "params", ref="updates", own=True)
        out = []
        for grp, ub, pb, pdt in zip(lay.groups, u, p, pdts):
            dt = np.promote_types(grp.dtype, pdt)
            cdt = compute_dtype(dt)            # 16-bit floats: in float32, rounded once
            ob = lay.target.empty(grp.size, cdt)
            lay.target.launch(kapply.add_decayed_weights_cpu, kapply.add_decayed_weights_cuda,
                              _flat.as_dtype(lay.target, ub, cdt),
                              _flat.as_dtype(lay.target, pb, cdt), ob,
                              narrow_scalar(real_dtype(cdt), pdt, s))
            out.append(_flat.as_dtype(lay.target, ob, dt))
        return lay.views(out), new_state

    from .combine import MaskedState, masked

    def count_state(state):
        """The WeightDecaySchedule in this transformation's state, checked."""
        if mask is not None:
            state = _checks.check_state("state", state, MaskedState, "masked").inner_state
        return _checks.check_state("state", state, WeightDecaySchedule, "add_decayed_weights")

    def scheduled(state):
        return scheduled_value("weight_decay", weight_decay, count_state(state).count,
                               nonnegative=False)

    def advance(state):
        new = WeightDecaySchedule(safe_increment(count_state(state).count))
        return MaskedState(new) if mask is not None else new

    role = (_fusion.DecaySchedule(scheduled, advance, mask) if sched
            else _fusion.Decay(weight_decay, mask))
    if mask is not None:
        tx = masked(GradientTransformation(init_fn, update_fn), mask)
        return GradientTransformation(tx.init, tx.update, fusion=role)
    return GradientTransformation(init_fn, update_fn, fusion=role)
