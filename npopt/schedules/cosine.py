"""Cosine decay: ``cosine_decay_schedule``.
"""
import math

import numpy as np

from ._jax import _cos, _fma64, _ftz, _is_plain, _make, _minimum, _xla_pow


def cosine_decay_schedule(init_value, decay_steps, alpha=0.0, exponent=1.0):
    r"""Cosine decay from ``init_value`` to ``alpha * init_value``.

    ``c = min(count, decay_steps)``;
    value ``init_value * ((1 - alpha) * cd ** exponent + alpha)`` with
    ``cd = 0.5 * (1 + cos(pi * c / decay_steps))``.
    ``decay_steps <= 0`` raises ``ValueError``.

    Dtype/rounding: optax turns a Python-int ``decay_steps`` into a float,
    and ``min(int32, float)`` is weak float64, so this schedule is evaluated
    in **float64** (returns ``np.float64``).  XLA's program: ``arg = c *
    (pi * (1/T))`` (constant folded), ``z = 0.5 * (cos(arg) + 1)`` with libm
    ``cos``, ``z ** exponent`` (1, 2, 3 as products, else libm ``pow``),
    ``fma(z**exponent, 1 - alpha, alpha) * init_value``.  Bitwise equal to
    optax with glibc.  Inside :func:`warmup_cosine_decay_schedule` and
    :func:`sgdr_schedule` this float64 value is then rounded to float32.
    """
    if not decay_steps > 0:
        raise ValueError(
            "The cosine_decay_schedule requires positive decay_steps, got"
            f" {decay_steps=}.")
    # optax: ``float(x) if isinstance(x, int)`` (avoids int32 overflow).
    steps = float(decay_steps) if isinstance(decay_steps, int) else decay_steps

    def schedule(count):
        count = _minimum(count, steps)
        cosine_decay = 0.5 * (1 + _cos(math.pi * count / steps))
        decayed = (1 - alpha) * cosine_decay ** exponent + alpha
        return init_value * decayed

    xla = None
    if _is_plain(init_value, steps, alpha, exponent):
        f64 = np.float64
        k = f64(math.pi * (1 / steps))      # XLA: (pi * c) / T -> c * (pi * (1/T))
        one_minus_alpha, alpha64, init64 = f64(1 - alpha), f64(alpha), f64(init_value)

        def xla(count):
            c = min(float(count), float(steps))
            z = (f64(math.cos(c * k)) + 1.0) * 0.5     # exact halving
            return _ftz(_fma64(_xla_pow(z, exponent), one_minus_alpha, alpha64) * init64)

    return _make(schedule, "schedule", xla)
