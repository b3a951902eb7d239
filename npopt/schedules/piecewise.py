"""Piecewise schedules: ``piecewise_constant_schedule``,
``piecewise_interpolate_schedule`` and the one-cycle schedules built on it
(``linear_onecycle_schedule``, ``cosine_onecycle_schedule``).
"""
import math

import numpy as np

from ._jax import _I64, _J, _cos, _cos32, _fma64, _ftz, _is_plain, _make, _maximum, _sign, _stack


def piecewise_constant_schedule(init_value, boundaries_and_scales=None):
    """``init_value`` times the product of every scale whose boundary ``<= count``.

    The scale of boundary ``b`` applies AT ``count == b``.  Scales must be
    non-negative (``ValueError`` otherwise).  Implemented as optax does:
    for each boundary in sorted order ``ind = max(0.0, sign(b - count))``,
    ``v = v * ind + (1 - ind) * scale * v``.

    Dtype/rounding: ``max(0.0, int32)`` is weak float64, so the schedule is
    evaluated in **float64** (for a Python-float ``init_value``).  The
    indicators are exactly 0 or 1, so the value is ``init_value`` times the
    applicable scales, one float64 rounding per scale, in boundary order:
    bitwise equal to optax.
    """
    if boundaries_and_scales is not None:
        if not all(scale >= 0.0 for scale in boundaries_and_scales.values()):
            raise ValueError(
                "`piecewise_constant_schedule` expects non-negative scale factors in "
                f"`boundaries_and_scales`, got {dict(boundaries_and_scales)!r}")

    def schedule(count):
        v = init_value
        if boundaries_and_scales is not None:
            for threshold, scale in sorted(boundaries_and_scales.items()):
                indicator = _maximum(0.0, _sign(threshold - count))
                v = v * indicator + (1 - indicator) * scale * v
        return v

    xla = None
    items = sorted(boundaries_and_scales.items()) if boundaries_and_scales else []
    if (items and _is_plain(init_value, *[sc for _, sc in items])
            and all(isinstance(b, int) for b, _ in items)
            and all(math.isfinite(x) for x in (init_value, *[sc for _, sc in items]))):
        # The indicators are exactly 0 or 1, so each step is ``v`` or ``v * scale``
        # (one float64 rounding), whatever XLA fuses.
        init64 = np.float64(init_value)
        steps = [(b, np.float64(sc)) for b, sc in items]

        def xla(count):
            v = init64
            for b, sc in steps:
                if count >= b:
                    v = _ftz(v * sc)
            return v

    return _make(schedule, "schedule", xla)


def _linear_interpolate(start, end, pct):
    return (end - start) * pct + start


def _cosine_interpolate(start, end, pct):
    return end + (start - end) / 2.0 * (_cos(math.pi * pct) + 1)


def piecewise_interpolate_schedule(interpolate_type, init_value, boundaries_and_scales=None):
    """Linear or cosine interpolation between cumulative products of scales.

    ``values = cumprod([init_value, *scales])`` (sorted by boundary), bounds
    ``[0, *boundaries]``; in ``[b_i, b_{i+1})`` the value goes from
    ``values[i]`` to ``values[i+1]`` with ``pct = (count - b_i) /
    max(b_{i+1} - b_i, 1)``; from the last boundary on it is ``values[-1]``.
    ``interpolate_type`` must be ``'linear'`` or ``'cosine'`` and scales must
    be non-negative (``ValueError`` otherwise).

    Dtype/rounding (as optax under x64): ``values`` is a float64 array (a
    strong dtype, products taken in order), but ``pct`` is ``int32 / int``
    = **float32**: ``float32(c - b_i) * float32(1/size_i)``.  'linear' is
    ``fma(end - start, float64(pct), start)`` in float64 (bitwise equal to
    optax); 'cosine' computes ``cos(pi * pct) + 1`` in **float32** (libm
    ``cosf``; ``pct * pi`` is folded to ``x * (r * pi)`` when all intervals
    have the same length, as XLA does) and ``fma((start - end) / 2, that,
    end)`` in float64: bit-identical to XLA-CPU on glibc, else within 1
    float32 ulp of ``cos``.  Result ``np.float64``.
    """
    if interpolate_type == "linear":
        interpolate_fn = _linear_interpolate
    elif interpolate_type == "cosine":
        interpolate_fn = _cosine_interpolate
    else:
        raise ValueError(
            "`interpolate_type` must be either 'cosine' or 'linear', got "
            f"{interpolate_type!r}")

    if boundaries_and_scales:
        boundaries, scales = zip(*sorted(boundaries_and_scales.items()))
        if not all(scale >= 0.0 for scale in scales):
            raise ValueError(
                "`piecewise_interpolate_schedule` expects non-negative scale factors "
                f"in `boundaries_and_scales`, got {dict(boundaries_and_scales)!r}")
    else:
        boundaries, scales = (), ()

    def schedule(count):
        bounds = _stack((0,) + tuple(boundaries))
        stacked = _stack((init_value,) + tuple(scales))
        # jnp.cumprod: a strong dtype (integers promoted to 64 bit), sequential.
        dt = stacked[0].dtype
        if dt.kind in "biu":
            dt = np.promote_types(dt, _I64 if dt.kind != "u" else np.uint64)
        values, acc = [], None
        for s in stacked:
            s = _J(s.astype(dt), False)
            acc = s if acc is None else acc * s
            values.append(acc)
        n = len(bounds) - 1
        terms = []
        for i in range(n):
            size = _maximum(bounds[i + 1] - bounds[i], 1)
            ind = bool(bounds[i] <= count) and bool(count < bounds[i + 1])
            pct = (count - bounds[i]) / size
            terms.append((ind, interpolate_fn(values[i], values[i + 1], pct)))
        if not terms:   # empty dot: only its dtype matters
            pct = (count - bounds[0]) / _maximum(bounds[0], 1)
            terms.append((False, interpolate_fn(values[0], values[0], pct)))
        dot = None
        for ind, val in terms:   # indicator.dot(interp_vals)
            t = _J(np.bool_(ind), False) * val
            dot = t if dot is None else dot + t
        dot = _J(dot.v, False)
        last = _J(np.bool_(bool(bounds[-1] <= count)), False) * values[-1]
        return dot + last

    xla = None
    if (_is_plain(init_value, *scales) and all(isinstance(b, int) for b in boundaries)
            and not all(isinstance(v, int) for v in (init_value, *scales))):
        f32, f64 = np.float32, np.float64
        bnd = (0,) + tuple(boundaries)
        vals = [f64(init_value)]
        for sc in scales:                                  # cumprod, in order
            vals.append(_ftz(vals[-1] * f64(sc)))
        # interval reciprocals are float32 constants: pct = (c - b_i) * (1/size)
        recips = [f32(1) / f32(max(bnd[i + 1] - bnd[i], 1)) for i in range(len(bnd) - 1)]
        if interpolate_type == "linear":
            coef = [_ftz(vals[i + 1] - vals[i]) for i in range(len(bnd) - 1)]
            base = vals[:-1]
        else:
            coef = [_ftz((vals[i] - vals[i + 1]) / 2.0) for i in range(len(bnd) - 1)]
            base = vals[1:]
        pi32 = f32(math.pi)
        # XLA folds the two constant multiplies when the reciprocals are one
        # scalar (a single interval, or all intervals of the same size).
        fold_pi = len(set(recips)) == 1

        def xla(count):
            if count >= bnd[-1]:
                return vals[-1]
            for i in range(len(bnd) - 1):
                if bnd[i] <= count < bnd[i + 1]:
                    if interpolate_type == "cosine":
                        if fold_pi:   # scalar constants: (x * r) * pi -> x * (r * pi)
                            arg = f32(count - bnd[i]) * (recips[i] * pi32)
                        else:
                            arg = (f32(count - bnd[i]) * recips[i]) * pi32
                        pct = _cos32(arg) + f32(1)
                    else:
                        pct = f32(count - bnd[i]) * recips[i]
                    return _fma64(coef[i], f64(pct), base[i]) + 0.0
            return f64(0.0)

    return _make(schedule, "schedule", xla)


def linear_onecycle_schedule(transition_steps, peak_value, pct_start=0.3, pct_final=0.85,
                             div_factor=25.0, final_div_factor=1e4):
    """Three linear phases (Smith et al., one-cycle).

    ``piecewise_interpolate_schedule('linear', peak_value / div_factor,
    {int(pct_start * T): div_factor, int(pct_final * T): 1 / div_factor,
    T: 1 / final_div_factor})`` with ``T = transition_steps``;
    ``transition_steps <= 0`` raises ``ValueError``.  Evaluated like
    :func:`piecewise_interpolate_schedule` (float64 result, float32 ``pct``),
    bitwise equal to optax.
    """
    if transition_steps <= 0:
        raise ValueError(
            "A linear onecycle schedule was set with a non-positive "
            f"`transition_steps`, got {transition_steps!r}")
    return piecewise_interpolate_schedule(
        "linear", peak_value / div_factor,
        {int(pct_start * transition_steps): div_factor,
         int(pct_final * transition_steps): 1.0 / div_factor,
         transition_steps: 1.0 / final_div_factor})


def cosine_onecycle_schedule(transition_steps, peak_value, pct_start=0.3, div_factor=25.0,
                             final_div_factor=1e4):
    """One-cycle with cosine phases.

    ``piecewise_interpolate_schedule('cosine', peak_value / div_factor,
    {int(pct_start * T): div_factor, int(T): 1 / (div_factor *
    final_div_factor)})``; ``transition_steps <= 0`` raises ``ValueError``.
    Evaluated like :func:`piecewise_interpolate_schedule`: float64 result,
    but the cosine is taken in float32 (libm ``cosf``; within 1 float32 ulp
    of XLA where ``cosf`` is not glibc's).
    """
    if transition_steps <= 0:
        raise ValueError(
            "A cosine onecycle schedule was set with a non-positive "
            f"`transition_steps`, got {transition_steps!r}")
    return piecewise_interpolate_schedule(
        "cosine", peak_value / div_factor,
        {int(pct_start * transition_steps): div_factor,
         int(transition_steps): 1.0 / (div_factor * final_div_factor)})
