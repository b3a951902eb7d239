"""snapshot, monitor, measure_with_ema: measurements of the updates kept in
the state (optax 0.2.8, ``optax/transforms/_monitoring.py``).

They leave the updates unchanged. Same state NamedTuples and fields as
optax; ``measure_with_ema``'s state is ``(EmptyState(), EmaState(count,
ema))``, the state of optax's ``chain(stateless(measure), ema)``. Its moving
average is computed on the host with optax's formulas
(``npopt.tree.tree_update_moment`` and ``tree_bias_correction``), since a
measurement is small and may be a bool or an integer, which npopt's ``ema``
kernel does not take.
"""
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from .. import _checks
from ..base import ZERO, GradientTransformation, GradientTransformationExtraArgs, safe_increment, stateless
from ..tree import tree_bias_correction, tree_cast, tree_map, tree_update_moment
from .combine import as_transformation, chain
from .moving_average import EmaState


class SnapshotState(NamedTuple):
    """The state of ``snapshot``: ``{measure_name: measurement}``."""
    measurement: Any


def snapshot(measure_name, measure):
    """Stores ``measure(updates)`` in the state under ``measure_name``.

    Useful to look at intermediate updates inside a chain: the measurement
    is taken of the updates as transformed so far. At ``init`` it is
    ``measure(params)``.

    Args:
      measure_name: the name of the measurement (a string), the key in
        ``state.measurement``.
      measure: ``f(updates) -> measurement`` (any tree).

    Returns:
      A GradientTransformation with state ``SnapshotState({measure_name:
      measurement})`` that leaves the updates unchanged.
    """
    if not isinstance(measure_name, str):
        raise TypeError(f"measure_name: expected a string, got "
                        f"{_checks._describe(measure_name)}")
    _checks.check_callable("measure", measure)

    def init_fn(params):
        return SnapshotState({measure_name: measure(params)})

    def update_fn(updates, state, params=None, **extra_args):
        del params, state, extra_args
        return updates, SnapshotState({measure_name: measure(updates)})

    return GradientTransformation(init_fn, update_fn)


class MonitorState(NamedTuple):
    """The state of ``monitor``."""
    measurements: Any     # dict name -> the last measurement (empty after init)
    measure_states: Any   # tuple of the measures' states, in the dict's order


def monitor(measures):
    """Stores stateful measurements of the updates (e.g. moving averages).

    ``snapshot`` with several measures, each either a function ``f(updates)
    -> measurement`` or a transformation whose ``update`` returns the
    measurement as its "updates" (``measure_with_ema``). The updates are
    left unchanged.

    Args:
      measures: a dict name -> function or GradientTransformation. Every
        transformation gets ``update(updates, state, params, **extra_args)``.

    Returns:
      A GradientTransformation with state ``MonitorState(measurements,
      measure_states)``: ``measurements`` maps each name to its last
      measurement (an empty dict after ``init``), ``measure_states`` is the
      tuple of the measures' states.
    """
    if not isinstance(measures, Mapping):
        raise TypeError(f"measures: expected a dict name -> function or transformation, "
                        f"got {_checks._describe(measures)}")
    measures_ = {}
    for name, m in measures.items():
        if callable(m) and not isinstance(m, tuple):
            measures_[name] = stateless(lambda u, _, m=m: m(u))
        else:
            measures_[name] = as_transformation(f"measures[{name!r}]", m)
    names = tuple(measures_)

    def init_fn(params):
        return MonitorState({}, tuple(measures_[n].init(params) for n in names))

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, MonitorState):
            raise TypeError("state: expected the MonitorState made by monitor(...).init, "
                            f"got {type(state).__name__}")
        if len(state.measure_states) != len(names):
            raise TypeError(f"state: expected {len(names)} measure states, got "
                            f"{len(state.measure_states)}")
        measurements, new_states = {}, []
        for i, n in enumerate(names):
            measurements[n], s = measures_[n].update(updates, state.measure_states[i], params,
                                                     **extra_args)
            new_states.append(s)
        return updates, MonitorState(measurements, tuple(new_states))

    return GradientTransformationExtraArgs(init_fn, update_fn)


def _measurement_ema(decay, debias, accumulator_dtype, measure):
    """optax.ema on the host, its state made for ``measure(params)``."""

    def init_fn(params):
        m = measure(params)
        if accumulator_dtype is None:
            ema = tree_map(np.zeros_like, m)
        else:
            ema = tree_map(lambda x: np.zeros_like(x, dtype=accumulator_dtype), m)
        return EmaState(count=ZERO, ema=ema)

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, EmaState):
            raise TypeError("state: expected the EmaState made by measure_with_ema(...).init, "
                            f"got {type(state).__name__}")
        new_ema = tree_map(np.asarray, tree_update_moment(updates, state.ema, decay, 1))
        count = safe_increment(state.count)
        out = tree_bias_correction(new_ema, decay, count) if debias else new_ema
        state_ema = new_ema if accumulator_dtype is None else tree_cast(new_ema,
                                                                        accumulator_dtype)
        return out, EmaState(count=count, ema=state_ema)

    return GradientTransformationExtraArgs(init_fn, update_fn)


def measure_with_ema(measure, decay, debias=True, accumulator_dtype=None):
    r"""A measurement of the updates, averaged exponentially over the steps.

    .. math::
        e_t = \beta e_{t-1} + (1-\beta) m(g_t), \qquad
        r_t = e_t / (1 - \beta^t) \ \text{(debias)}

    For ``monitor``: its "updates" are :math:`r_t`.

    Args:
      measure: ``f(updates) -> measurement`` (a tree; ``f(params)`` at
        ``init`` gives the average's shapes and dtypes).
      decay: :math:`\beta`, in [0, 1].
      debias: divide by :math:`1 - \beta^t`.
      accumulator_dtype: dtype of the stored average (None: the measurement's).

    Returns:
      A GradientTransformation with state ``(EmptyState(), EmaState(count,
      ema))``, as optax's ``chain(stateless(measure), ema)``.
    """
    _checks.check_callable("measure", measure)
    debias = _checks.check_bool("debias", debias)
    decay = _checks.check_number("decay", decay, low=0.0, high=1.0, high_open=debias)
    if accumulator_dtype is not None:
        accumulator_dtype = _checks.check_float_dtype("accumulator_dtype", accumulator_dtype)

    def measure_fn(updates, params):
        del params
        return measure(updates)

    return chain(stateless(measure_fn), _measurement_ema(decay, debias, accumulator_dtype,
                                                          measure))


__all__ = ["MonitorState", "SnapshotState", "measure_with_ema", "monitor",
           "snapshot"]
