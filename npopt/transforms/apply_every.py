"""apply_every: accumulate the updates, emit their sum every k steps
(optax 0.2.8, ``optax/_src/transform.py``).

Same state (``ApplyEvery(count, grad_acc)``, int32 count in [0, k)) and
order of operations as optax: ``acc * grad_acc + g`` and ``emit * grad_acc``
with the 0/1 flags as factors (so a NaN or inf accumulated before a reset
still reaches the next sum, as in optax).
"""
import numbers
from typing import Any, NamedTuple

import numpy as np

from .. import _checks
from ..base import ZERO, GradientTransformation, safe_increment
from ..tree import tree_map


class ApplyEvery(NamedTuple):
    """The state of ``apply_every``: a counter and the accumulated updates."""
    count: Any      # int32, in [0, k)
    grad_acc: Any   # a tree like the params


def apply_every(k=1):
    r"""Accumulates the updates and emits their sum every ``k`` steps.

    .. math::
        a_t = [t \bmod k \ne 0]\, a_{t-1} + g_t, \qquad
        u_t = [t \bmod k = k - 1]\, a_t

    (:math:`t` counts from 0; the updates are zeros in between). Inside a
    chain the other transformations still update their state every step:
    ``apply_every(2)`` with half the batch is not the same as no
    accumulation with the full batch; ``MultiSteps`` is.

    Args:
      k: emit the accumulated sum every ``k`` steps (an integer >= 1).

    Returns:
      A GradientTransformation with state ``ApplyEvery(count, grad_acc)``.
    """
    if isinstance(k, bool) or not (
            isinstance(k, numbers.Integral)
            or (isinstance(k, np.ndarray) and k.shape == () and k.dtype.kind in "iu")):
        raise TypeError(f"k: expected an integer >= 1, got {_checks._describe(k)}")
    if int(k) < 1:
        raise ValueError(f"k: expected an integer >= 1, got {int(k)}")
    k = int(k)

    def init_fn(params):
        return ApplyEvery(count=ZERO, grad_acc=tree_map(np.zeros_like, params))

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, ApplyEvery):
            raise TypeError("state: expected the ApplyEvery state made by apply_every(...).init, "
                            f"got {type(state).__name__}")
        c = int(state.count) % k
        acc = np.bool_(c != 0)
        emit = np.bool_(c == k - 1)
        grad_acc = tree_map(lambda g, ga: np.asarray(acc * ga + g), updates, state.grad_acc)
        new_updates = tree_map(lambda ga: np.asarray(emit * ga), grad_acc)
        count = np.int32(int(safe_increment(state.count)) % k)
        return new_updates, ApplyEvery(count=count, grad_acc=grad_acc)

    return GradientTransformation(init_fn, update_fn)
