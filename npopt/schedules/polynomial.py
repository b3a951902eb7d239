"""Polynomial and linear transitions: ``constant_schedule``,
``polynomial_schedule``, ``linear_schedule``, ``warmup_constant_schedule``.
"""
import numpy as np

from ._jax import _clip, _fma32, _ftz, _is_plain, _log, _make, _xla_pow


def constant_schedule(value):
    """Constant schedule: ``value`` at every count.

    Dtype: that of ``value`` as JAX sees it (a Python float is float64 under
    x64, weakly typed; casting to a float32 leaf rounds it once).
    """
    return _make(lambda count: value, "constant_schedule")


def polynomial_schedule(init_value, end_value, power, transition_steps, transition_begin=0):
    r"""Polynomial transition from ``init_value`` to ``end_value``.

    ``c = clip(count - transition_begin, 0, transition_steps)``;
    value ``(init_value - end_value) * (1 - c / transition_steps) ** power + end_value``.
    ``transition_steps <= 0`` gives the constant ``init_value`` (logged);
    ``transition_begin < 0`` is replaced by 0 (logged).  From
    ``count = transition_begin + transition_steps`` on, optax's formula is
    ``end_value``; jitted optax leaves an FMA residue there, which npopt
    keeps, except where it makes the value NaN, or negative from
    non-negative end points: then the value is exactly
    ``float32(end_value)`` (see ``npopt.schedules``).

    Dtype/rounding (as optax under x64): ``c / transition_steps`` is
    ``int32 / int`` = **float32**, so the whole schedule is evaluated in
    float32.  XLA's program, reproduced here: ``r = 1/T`` rounded to float32,
    ``frac = fma(-c, r, 1)``, ``frac ** power`` as repeated float32 products
    (integer power, or float 2.0/3.0; 0.5 is ``sqrt``, other floats
    ``powf``), then ``fma(frac**power, float32(init - end), float32(end))``
    (``init - end`` computed in Python float64, rounded once).  Result
    ``np.float32``, bitwise equal to optax (but where optax's value is NaN
    or wrongly negative: the exact end value, above).
    """
    if transition_steps <= 0:
        _log.info(
            "A polynomial schedule was set with a non-positive `transition_steps` "
            "value; this results in a constant schedule with value `init_value`.")
        return _make(lambda count: init_value, "schedule")
    if transition_begin < 0:
        _log.info(
            "A polynomial schedule was set with a negative `transition_begin` "
            "value; this will result in `transition_begin` falling back to `0`.")
        transition_begin = 0

    def schedule(count):
        count = _clip(count - transition_begin, 0, transition_steps)
        frac = 1 - count / transition_steps
        return (init_value - end_value) * (frac ** power) + end_value

    xla = None
    if (_is_plain(init_value, end_value, power) and isinstance(transition_steps, int)
            and isinstance(transition_begin, int)):
        f32 = np.float32
        recip = f32(1) / f32(transition_steps)          # XLA: c / T -> c * (1/T)
        scale, shift = f32(init_value - end_value), f32(end_value)

        nonneg = init_value >= 0 and end_value >= 0

        def xla(count):
            c = min(max(count - transition_begin, 0), transition_steps)
            frac = _fma32(-f32(c), recip, f32(1))          # 1 - c * (1/T), fused
            pw = _xla_pow(frac, power)
            # (XLA drops the "+ 0" of end_value = 0: the product keeps its sign)
            v = _fma32(pw, scale, shift) if shift != 0 else _ftz(pw * scale)
            if v != v or (v < 0 and nonneg):
                # XLA's 1 - T * (1/T) left a negative residue where optax's
                # formula is 1 - T/T = 0 (or, for T > 2**24, where 1 - c/T is
                # tiny): NaN under a fractional power, a negative value from
                # non-negative end points. The formula's value instead (the
                # package docstring's policy): frac = 0, the end value.
                v = _fma32(_xla_pow(f32(0), power), scale, shift)
            return v

    return _make(schedule, "schedule", xla)


def linear_schedule(init_value, end_value, transition_steps, transition_begin=0):
    r"""Linear transition: :func:`polynomial_schedule` with ``power=1``.

    Value ``(init_value - end_value) * (1 - c / transition_steps) + end_value``
    with ``c = clip(count - transition_begin, 0, transition_steps)``,
    evaluated in **float32** like optax under x64, as two fused
    multiply-adds with ``1/T`` rounded to float32 (bitwise equal to jitted
    optax: ``linear_schedule(1, 0, 99)(99)`` is optax's 9.3e-10), except
    that a negative value from non-negative end points is replaced by the
    exact end value (``linear_schedule(1, 0, 3)(3)`` is 0.0 where jitted
    optax returns -2.98e-8; see ``npopt.schedules``).
    """
    return polynomial_schedule(init_value=init_value, end_value=end_value, power=1,
                               transition_steps=transition_steps,
                               transition_begin=transition_begin)


def warmup_constant_schedule(init_value, peak_value, warmup_steps):
    """Linear warmup from ``init_value`` to ``peak_value``, then constant.

    ``linear_schedule(init_value, peak_value, warmup_steps)``: float32.
    """
    return linear_schedule(init_value=init_value, end_value=peak_value,
                           transition_steps=warmup_steps)
