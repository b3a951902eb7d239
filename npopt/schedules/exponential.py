"""Exponential decay: ``exponential_decay``.
"""
import math

import numpy as np

from ._jax import (_exp2_32, _floor, _ftz, _is_plain, _log, _make, _maximum, _minimum, _pow32,
                   _power, _where)


def exponential_decay(init_value, transition_steps, decay_rate, transition_begin=0,
                      staircase=False, end_value=None):
    """Continuous or staircase exponential decay.

    ``p = (count - transition_begin) / transition_steps`` (``floor(p)`` if
    ``staircase``); value ``init_value`` while ``count - transition_begin <=
    0``, else ``init_value * decay_rate ** p``, then clipped at ``end_value``
    (from below if ``decay_rate < 1``, from above otherwise).
    ``transition_steps <= 0`` or ``decay_rate == 0`` give the constant
    ``init_value``; ``transition_begin < 0`` falls back to 0 (all logged).

    Dtype/rounding: ``p`` is ``int32 / int`` = **float32**, computed as
    ``float32(d) * float32(1/T)``; ``decay_rate``, ``init_value`` and
    ``end_value`` are rounded to float32 and ``decay_rate ** p`` is libm
    ``powf`` (``exp2f(k * p)`` when ``decay_rate == 2**k``, as LLVM rewrites
    it), times ``init_value`` in float32.  Result ``np.float32``; subnormal
    results flush to 0 as on XLA-CPU.  Bitwise equal to optax with glibc.
    """
    if transition_steps <= 0:
        _log.info(
            "An exponential schedule was set with a non-positive `transition_steps`"
            " value; this will result in a constant schedule with value `init_value`.")
        return _make(lambda count: init_value, "schedule")
    if decay_rate == 0:
        _log.info(
            "An exponential schedule was set with a zero `decay_rate` value; "
            "this will result in a constant schedule with value `init_value`.")
        return _make(lambda count: init_value, "schedule")
    if transition_begin < 0:
        _log.info(
            "An exponential schedule was set with a negative `transition_begin` "
            "value; this will result in `transition_begin` falling back to `0`.")
        transition_begin = 0
    if end_value is not None:
        clip_fn = _maximum if decay_rate < 1.0 else _minimum

    def schedule(count):
        decreased_count = count - transition_begin
        p = decreased_count / transition_steps
        if staircase:
            p = _floor(p)
        decayed_value = _where(decreased_count <= 0, init_value,
                               init_value * _power(decay_rate, p))
        if end_value is not None:
            decayed_value = clip_fn(decayed_value, end_value)
        return decayed_value

    xla = None
    if (_is_plain(init_value, decay_rate) and (end_value is None or _is_plain(end_value))
            and isinstance(transition_steps, int) and isinstance(transition_begin, int)):
        f32 = np.float32
        recip = f32(1) / f32(transition_steps)
        init32, rate32 = f32(init_value), f32(decay_rate)
        end32 = None if end_value is None else f32(end_value)
        # LLVM rewrites pow(2**k, p) as exp2(k * p).
        m, k = math.frexp(float(rate32))
        log2_rate = (k - 1) if m == 0.5 else None
        clip = None if end_value is None else (np.maximum if decay_rate < 1.0 else np.minimum)

        def xla(count):
            d = count - transition_begin
            if d <= 0:
                v = init32
            else:
                p = f32(d) * recip
                if staircase:
                    p = np.floor(p)
                if log2_rate is None:
                    pw = _pow32(rate32, p)
                elif log2_rate == 1:
                    pw = _exp2_32(p)
                elif log2_rate == -1:
                    pw = _exp2_32(-p)
                else:
                    pw = _exp2_32(p * f32(log2_rate))
                v = _ftz(_ftz(pw) * init32)
            if clip is not None:
                v = clip(v, end32)
            return v

    return _make(schedule, "schedule", xla)
