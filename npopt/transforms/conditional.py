"""conditionally_transform, conditionally_mask: call the inner transformation
only at the steps a condition selects (optax 0.2.8,
``optax/transforms/_conditionality.py``).

Same state NamedTuples, fields and field order as optax (note the two
differ: ``ConditionallyTransformState(inner_state, step)`` and
``ConditionallyMaskState(step, inner_state)``), an int32 step counter that
saturates at the int32 maximum. Where optax selects with ``lax.cond`` on a
traced condition, npopt branches in Python on its (host) value, with the
same results.

Both have a fused ``step``: when the condition holds, the inner
transformation's own ``step`` (fused, in place, where it has one); when it
does not, ``params + grads`` (conditionally_transform, whose updates pass
through) or the params unchanged (conditionally_mask, whose updates are
zeros: ``p + 0 == p``).
"""
from typing import Any, NamedTuple, Protocol

import numpy as np

from .. import _checks
from ..base import ZERO, GradientTransformationExtraArgs, apply_updates, safe_increment
from ..tree import tree_map
from .combine import as_transformation


class ConditionFn(Protocol):
    """``should_transform_fn(step, **extra_args) -> bool``: whether the inner
    transformation runs at this step (``step``: int32 count of the previous
    ``update`` calls)."""

    def __call__(self, step: Any, **extra_args: Any) -> Any:
        ...


class ConditionallyTransformState(NamedTuple):
    """The state of ``conditionally_transform``."""
    inner_state: Any
    step: Any         # int32: number of update calls so far


class ConditionallyMaskState(NamedTuple):
    """The state of ``conditionally_mask``."""
    step: Any         # int32: number of update calls so far
    inner_state: Any


def _condition(should_transform_fn, step, kwargs):
    """The condition's value as a Python bool; ValueError unless it is a
    boolean (or integer) scalar."""
    c = should_transform_fn(step, **kwargs)
    a = np.asarray(c)
    if a.shape != () or a.dtype.kind not in "biu":
        raise ValueError(
            "should_transform_fn: expected a boolean scalar (shape ()), got "
            f"{_checks._describe(c) if not isinstance(c, np.ndarray) else _checks._describe(a)}"
            f" at step {int(step)}")
    return bool(a)


def _check_args(inner, should_transform_fn, forward_extra_args):
    inner = as_transformation("inner", inner)
    _checks.check_callable("should_transform_fn", should_transform_fn)
    forward_extra_args = _checks.check_bool("forward_extra_args", forward_extra_args)
    return inner, forward_extra_args


def conditionally_transform(inner, should_transform_fn, forward_extra_args=False):
    r"""Calls ``inner`` only at the steps ``should_transform_fn`` selects.

    .. math::
        (u_t, s_t) = \begin{cases} \mathrm{inner.update}(g_t, s_{t-1}) &
        \text{if } c(t) \\ (g_t, s_{t-1}) & \text{otherwise} \end{cases}

    with :math:`t` the number of previous ``update`` calls. When the
    condition is false the updates pass through unchanged (use
    ``conditionally_mask`` to zero them instead).

    Args:
      inner: the inner transformation.
      should_transform_fn: ``f(step, **extra_args) -> bool`` (a boolean
        scalar), ``step`` an int32 counter. It gets the extra arguments of
        ``update`` only with ``forward_extra_args=True``.
      forward_extra_args: forward ``update``'s extra keyword arguments to
        ``should_transform_fn``.

    Returns:
      A GradientTransformation with state
      ``ConditionallyTransformState(inner_state, step)``.
    """
    inner, forward_extra_args = _check_args(inner, should_transform_fn, forward_extra_args)

    def init_fn(params):
        return ConditionallyTransformState(inner_state=inner.init(params), step=ZERO)

    def decide(state, extra_args):
        if not isinstance(state, ConditionallyTransformState):
            raise TypeError("state: expected the ConditionallyTransformState made by "
                            f"conditionally_transform(...).init, got {type(state).__name__}")
        return _condition(should_transform_fn, state.step,
                          extra_args if forward_extra_args else {})

    def update_fn(updates, state, params=None, **extra_args):
        if decide(state, extra_args):
            updates, new_inner = inner.update(updates, state.inner_state, params, **extra_args)
        else:
            new_inner = state.inner_state
        return updates, ConditionallyTransformState(new_inner, safe_increment(state.step))

    def fused_step(params, grads, state, **extra_args):
        if decide(state, extra_args):
            params, new_inner = inner.step(params, grads, state.inner_state, **extra_args)
        else:
            params, new_inner = apply_updates(params, grads), state.inner_state
        return params, ConditionallyTransformState(new_inner, safe_increment(state.step))

    return GradientTransformationExtraArgs(init_fn, update_fn, fused_step=fused_step)


def conditionally_mask(inner, should_transform_fn, forward_extra_args=False):
    r"""Calls ``inner`` only at the steps ``should_transform_fn`` selects,
    with zero updates at the others.

    .. math::
        (u_t, s_t) = \begin{cases} \mathrm{inner.update}(g_t, s_{t-1}) &
        \text{if } c(t) \\ (0, s_{t-1}) & \text{otherwise} \end{cases}

    with :math:`t` the number of previous ``update`` calls (use
    ``conditionally_transform`` to pass the updates through instead).

    Args:
      inner: the inner transformation.
      should_transform_fn: ``f(step, **extra_args) -> bool`` (a boolean
        scalar), ``step`` an int32 counter.
      forward_extra_args: forward ``update``'s extra keyword arguments to
        ``should_transform_fn``.

    Returns:
      A GradientTransformation with state
      ``ConditionallyMaskState(step, inner_state)``.
    """
    inner, forward_extra_args = _check_args(inner, should_transform_fn, forward_extra_args)

    def init_fn(params):
        return ConditionallyMaskState(step=ZERO, inner_state=inner.init(params))

    def decide(state, extra_args):
        if not isinstance(state, ConditionallyMaskState):
            raise TypeError("state: expected the ConditionallyMaskState made by "
                            f"conditionally_mask(...).init, got {type(state).__name__}")
        return _condition(should_transform_fn, state.step,
                          extra_args if forward_extra_args else {})

    def update_fn(updates, state, params=None, **extra_args):
        if decide(state, extra_args):
            updates, new_inner = inner.update(updates, state.inner_state, params, **extra_args)
        else:
            updates, new_inner = tree_map(np.zeros_like, updates), state.inner_state
        return updates, ConditionallyMaskState(safe_increment(state.step), new_inner)

    def fused_step(params, grads, state, **extra_args):
        if decide(state, extra_args):
            params, new_inner = inner.step(params, grads, state.inner_state, **extra_args)
        else:
            new_inner = state.inner_state      # p + 0 == p: params unchanged
        return params, ConditionallyMaskState(safe_increment(state.step), new_inner)

    return GradientTransformationExtraArgs(init_fn, update_fn, fused_step=fused_step)
