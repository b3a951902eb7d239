"""Schedules joined in sequence: ``join_schedules``, and the warmup and
restart schedules optax builds with it (``warmup_cosine_decay_schedule``,
``warmup_exponential_decay_schedule``, ``sgdr_schedule``).
"""
from typing import Iterable

from ._jax import _J, _evaluate, _join, _jtype, _make, _where
from .cosine import cosine_decay_schedule
from .exponential import exponential_decay
from .polynomial import linear_schedule


def warmup_cosine_decay_schedule(init_value, peak_value, warmup_steps, decay_steps,
                                 end_value=0.0, exponent=1.0):
    """Linear warmup then cosine decay to ``end_value``.

    ``join_schedules([linear_schedule(init_value, peak_value, warmup_steps),
    cosine_decay_schedule(peak_value, decay_steps - warmup_steps,
    alpha=end_value / peak_value, exponent)], [warmup_steps])`` (``alpha =
    0`` if ``peak_value == 0``).  ``decay_steps`` INCLUDES the warmup;
    ``decay_steps - warmup_steps <= 0`` raises ``ValueError``.

    Dtype/rounding: the join of a float32 part and a weak float64 part is
    **float32**: the cosine phase is computed in float64 (as
    :func:`cosine_decay_schedule`) and rounded to float32 once.
    """
    if not decay_steps - warmup_steps > 0:
        raise ValueError(
            "warmup_cosine_decay_schedule requires `decay_steps` > `warmup_steps` "
            "(decay_steps includes the warmup; the cosine_decay_schedule requires "
            f"positive decay_steps), got decay_steps={decay_steps!r}, "
            f"warmup_steps={warmup_steps!r}.")
    alpha = 0.0 if peak_value == 0.0 else end_value / peak_value
    schedules = [
        linear_schedule(init_value=init_value, end_value=peak_value,
                        transition_steps=warmup_steps),
        cosine_decay_schedule(init_value=peak_value, decay_steps=decay_steps - warmup_steps,
                              alpha=alpha, exponent=exponent),
    ]
    return join_schedules(schedules, [warmup_steps])


def warmup_exponential_decay_schedule(init_value, peak_value, warmup_steps, transition_steps,
                                      decay_rate, transition_begin=0, staircase=False,
                                      end_value=None):
    """Linear warmup then :func:`exponential_decay` from ``peak_value``.

    ``join_schedules([linear_schedule(init_value, peak_value, warmup_steps),
    exponential_decay(peak_value, transition_steps, decay_rate,
    transition_begin, staircase, end_value)], [warmup_steps])``.  Both parts
    are float32, so is the result (bitwise equal to optax).
    """
    schedules = [
        linear_schedule(init_value=init_value, end_value=peak_value,
                        transition_steps=warmup_steps),
        exponential_decay(init_value=peak_value, transition_steps=transition_steps,
                          decay_rate=decay_rate, transition_begin=transition_begin,
                          staircase=staircase, end_value=end_value),
    ]
    return join_schedules(schedules, [warmup_steps])


def join_schedules(schedules, boundaries):
    """Apply ``schedules`` in sequence, switching at ``boundaries``.

    ``out = schedules[0](count)``; for each ``b_i``: ``out = where(count <
    b_i, out, schedules[i + 1](count - b_i))`` -- the next schedule starts
    AT ``count == b_i`` and sees the steps since its boundary.  As in optax,
    extra boundaries or schedules beyond ``zip`` are ignored.

    Dtype/rounding: each ``where`` promotes like JAX (a weak float64 part
    joined with a float32 part is float32, a strong float64 part wins), and
    the selected value is cast through that chain, so e.g. a cosine phase
    (float64) joined with a linear warmup (float32) is rounded to float32.
    Schedules that are not npopt schedules are called with a NumPy int32
    count; a Python float they return is treated as weakly typed.
    """
    schedules = list(schedules)
    boundaries = list(boundaries)
    if not schedules:
        raise ValueError("join_schedules: `schedules` must contain at least one schedule")

    def schedule(count):
        output = _evaluate(schedules[0], count)
        for boundary, sched in zip(boundaries, schedules[1:]):
            if count < boundary:
                dt, weak = _jtype(sched, count - boundary)
                dt, weak = _join(output.dtype, output.weak, dt, weak)
                output = _J(output.astype(dt), weak)
            else:
                output = _where(False, output, _evaluate(sched, count - boundary))
        return output

    return _make(schedule, "schedule")


def sgdr_schedule(cosine_kwargs: Iterable[dict]):
    """SGD with warm restarts: joined :func:`warmup_cosine_decay_schedule` cycles.

    Each dict of ``cosine_kwargs`` is passed to
    :func:`warmup_cosine_decay_schedule`; its ``decay_steps`` is the cycle's
    length, and the cycles are joined at the cumulative ``decay_steps``.
    Float32 like its parts.
    """
    boundaries = []
    schedules = []
    step = 0
    for kwargs in cosine_kwargs:
        schedules += [warmup_cosine_decay_schedule(**kwargs)]
        boundaries += [step + kwargs["decay_steps"]]
        step += kwargs["decay_steps"]
    if not schedules:
        raise ValueError("sgdr_schedule: `cosine_kwargs` must contain at least one cycle")
    return join_schedules(schedules, boundaries[:-1])
