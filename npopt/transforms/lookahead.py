"""lookahead: k fast steps forward, one slow step back (optax 0.2.8,
``optax/_src/lookahead.py``).

The params are a ``LookaheadParams(fast, slow)`` pair and so are the
updates; ``apply_updates`` adds them as any tree. Same state NamedTuple and
fields as optax, an int32 ``steps_since_sync``, and the same order of
operations: optax merges both kinds of step into one formula with the
0/1 flag ``sync`` (so a NaN or inf in ``fast + u - slow`` reaches both
updates even between synchronizations, as in optax); npopt computes the
same formula, each product in the leaf's dtype.

``step``: between synchronizations, the fast optimizer's own ``step``
(fused, in place, where it has one) on ``params.fast``, ``params.slow``
returned as it is (copied first where it shares memory with the fast params,
as after ``LookaheadParams.init_synced``); at a synchronization, ``update``
+ ``apply_updates``.
"""
import numbers
import warnings
from typing import Any, NamedTuple

import numpy as np

from .. import _checks
from ..base import ZERO, GradientTransformation, apply_updates
from ..tree import tree_leaves, tree_map, tree_structure
from .combine import as_transformation


class LookaheadState(NamedTuple):
    """The state of ``lookahead``."""
    fast_state: Any        # the fast optimizer's state
    steps_since_sync: Any  # int32, in [0, sync_period)


class LookaheadParams(NamedTuple):
    """The pair of fast params (compute the gradients there) and slow params
    (use them for evaluation and inference)."""
    fast: Any
    slow: Any

    @classmethod
    def init_synced(cls, params):
        """``LookaheadParams(fast=params, slow=params)``."""
        return cls(slow=params, fast=params)


def lookahead(fast_optimizer, sync_period, slow_step_size, reset_state=False):
    r"""The lookahead optimizer (Zhang et al., 2019).

    Runs ``fast_optimizer`` on the fast params; every ``sync_period``-th
    step, after the fast step, the slow params move toward the fast ones and
    the fast params restart from there:

    .. math::
        \phi \leftarrow \phi + \alpha (\theta + u - \phi), \qquad
        \theta \leftarrow \phi

    with :math:`\theta` the fast params, :math:`\phi` the slow ones,
    :math:`u` the fast optimizer's update and :math:`\alpha` =
    ``slow_step_size``. As an update of ``LookaheadParams`` (with
    :math:`d = \theta + u - \phi`, :math:`s \in \{0, 1\}` the sync flag):

    .. math::
        u_{\text{slow}} = \alpha\, s\, d, \qquad
        u_{\text{fast}} = u - s (1 - \alpha) d

    The updates must be applied unchanged (``apply_updates``), otherwise the
    two sets of params fall out of sync.

    Args:
      fast_optimizer: the optimizer of the inner loop.
      sync_period: number of fast steps between synchronizations (>= 1).
      slow_step_size: :math:`\alpha`, the slow params' step size.
      reset_state: re-initialize the fast optimizer's state (``init`` at the
        fast params) after each synchronization.

    Returns:
      A GradientTransformation with state ``LookaheadState(fast_state,
      steps_since_sync)``; its ``update`` needs ``params`` (a
      ``LookaheadParams``) and the gradients at ``params.fast``.

    References:
      Zhang, Lucas, Hinton & Ba, "Lookahead Optimizer: k steps forward, 1 step
      back", NeurIPS 2019, https://arxiv.org/abs/1907.08610

    npopt's ``update`` passes its extra keyword arguments on to the fast
    optimizer's (optax's lookahead takes none). npopt differs from optax on
    purpose only in that ``reset_state`` selects
    the re-initialized state leaf by leaf (optax computes ``(1 - s) * current
    + s * init``, which turns boolean state leaves into integers and carries
    a NaN of the current state over).
    """
    fast_optimizer = as_transformation("fast_optimizer", fast_optimizer)
    if isinstance(sync_period, bool) or not (
            isinstance(sync_period, numbers.Integral)
            or (isinstance(sync_period, np.ndarray) and sync_period.shape == ()
                and sync_period.dtype.kind in "iu")):
        raise TypeError(f"sync_period: expected an integer >= 1, got "
                        f"{_checks._describe(sync_period)}")
    if int(sync_period) < 1:
        raise ValueError("sync_period: Synchronization period must be >= 1, got "
                         f"{int(sync_period)}")
    sync_period = int(sync_period)
    slow_step_size = _checks.check_number("slow_step_size", slow_step_size)
    alpha = float(slow_step_size)
    one_minus_alpha = 1 - alpha          # in float64, as the weak-typed optax value
    reset_state = _checks.check_bool("reset_state", reset_state)

    def init_fn(params):
        fast_params = getattr(params, "fast", None)
        if fast_params is None:
            warnings.warn("lookahead: `params` has no attribute `fast`. Continuing by "
                          "assuming that only fast parameters were passed to lookahead init.",
                          stacklevel=2)
            fast_params = params
        return LookaheadState(fast_state=fast_optimizer.init(fast_params),
                              steps_since_sync=ZERO)

    def check(state, params):
        if not isinstance(state, LookaheadState):
            raise TypeError("state: expected the LookaheadState made by lookahead(...).init, "
                            f"got {type(state).__name__}")
        if params is None or not (hasattr(params, "fast") and hasattr(params, "slow")):
            raise TypeError("params: lookahead's update needs the current LookaheadParams"
                            "(fast, slow); call update(grads, state, params), got "
                            f"{_checks._describe(params)}")
        if tree_structure(params.fast) != tree_structure(params.slow) or [
                np.shape(x) for x in tree_leaves(params.fast)] != [
                np.shape(x) for x in tree_leaves(params.slow)]:
            raise ValueError("params: params.slow must have the structure and shapes of "
                             f"params.fast, got {tree_structure(params.slow)} for "
                             f"{tree_structure(params.fast)}")

    def update_fn(updates, state, params=None, **extra_args):
        check(state, params)
        updates, fast_state = fast_optimizer.update(updates, state.fast_state, params.fast,
                                                    **extra_args)
        sync = int(state.steps_since_sync) == sync_period - 1

        def diff(f, u, s):
            return np.asarray(f + u - s)

        last_difference = tree_map(diff, params.fast, updates, params.slow)

        def slow_update(d):
            t = d.dtype.type
            return (t(alpha * sync) * d).astype(d.dtype, copy=False)

        def fast_update(u, d):
            u = np.asarray(u)
            t = np.result_type(u, d).type
            return u - t(sync * one_minus_alpha) * d

        new_updates = LookaheadParams(fast=tree_map(fast_update, updates, last_difference),
                                      slow=tree_map(slow_update, last_difference))
        if reset_state and sync:
            fast_state = fast_optimizer.init(params.fast)
        return new_updates, LookaheadState(
            fast_state, np.int32((int(state.steps_since_sync) + 1) % sync_period))

    def fused_step(params, grads, state, **extra_args):
        check(state, params)
        if int(state.steps_since_sync) == sync_period - 1:      # a synchronization
            updates, state = update_fn(grads, state, params, **extra_args)
            return apply_updates(params, updates), state
        # between synchronizations the slow params stay (slow + 0 * d) and the
        # fast ones take the fast optimizer's step (fast + u - 0 * d): its own
        # step, fused where it has one
        slow = params.slow
        if _overlaps(params.fast, slow):         # init_synced: one array for both
            slow = tree_map(np.copy, slow)
        fast, fast_state = fast_optimizer.step(params.fast, grads, state.fast_state,
                                               **extra_args)
        if not all(bool(np.all(np.isfinite(np.subtract(f, s_))))
                   for f, s_ in zip(tree_leaves(fast), tree_leaves(slow))):
            # optax's 0 * d, d = fast + u - slow: NaN where d is not finite
            zero = tree_map(lambda f, s_: np.asarray(f - s_) * 0, fast, slow)
            fast = tree_map(lambda f, z: np.asarray(f + z).astype(np.asarray(f).dtype,
                                                                 copy=False), fast, zero)
            slow = tree_map(lambda s_, z: np.asarray(s_ + z).astype(np.asarray(s_).dtype,
                                                                   copy=False), slow, zero)
        return LookaheadParams(fast=fast, slow=slow), LookaheadState(
            fast_state, np.int32((int(state.steps_since_sync) + 1) % sync_period))

    return GradientTransformation(init_fn, update_fn, fused_step=fused_step)


def _overlaps(a, b):
    """Whether a leaf of ``a`` may share memory with a leaf of ``b``."""
    a_leaves = [x for x in tree_leaves(a) if isinstance(x, np.ndarray)]
    bases = {}
    for x in a_leaves:
        root = x
        while isinstance(root.base, np.ndarray):
            root = root.base
        bases[id(root)] = root
    return any(np.may_share_memory(y, r) for y in tree_leaves(b) if isinstance(y, np.ndarray)
               for r in bases.values())
