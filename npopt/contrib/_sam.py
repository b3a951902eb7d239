r"""SAM (sharpness-aware minimization) and ``normalize`` (optax.contrib 0.2.8).

SAM alternates adversarial steps with outer steps. With the drop-in setting
of the paper, ``adv_optimizer = chain(normalize(), sgd(rho))`` and
``sync_period=2``:

.. math::
    \tilde w = w + \rho\, \frac{\nabla L(w)}{\|\nabla L(w)\|},\qquad
    w \leftarrow w - \eta\, \nabla L(\tilde w)

In the default (transparent) mode every call of ``update`` is one of these
steps: ``sync_period - 1`` adversarial updates (the negated updates of
``adv_optimizer``), then one outer update that takes the params back to the
cached outer params and applies ``optimizer``'s update computed with the
gradient at the adversarial point: ``u = (cache - params) + u_outer``.

npopt computes only the branch a step uses (optax evaluates both inner
updates every call and keeps one through ``c * a + (1 - c) * b``); the
numbers are the same, except that optax's arithmetic selection would turn
a non-finite value in the discarded branch into NaN, and npopt's does not.
The cache is a copy of the params (npopt's fused steps update params in
place).

.. warning:: As in optax 0.2.8, the cache is refreshed *after* the outer
   step of a cycle uses it; with ``sync_period=1`` it therefore holds the
   params of the previous call, and the steps are
   :math:`p_{k+1} = p_{k-1} - \eta\, u(g_k)`, not plain steps of
   ``optimizer``. npopt keeps optax's numbers; use ``sync_period >= 2``.

References:
  Foret et al., "Sharpness-Aware Minimization for Efficiently Improving
  Generalization", ICLR 2021 (arXiv:2010.01412).
"""
from typing import Any, NamedTuple

import numpy as np

from .. import _checks, _flat
from .._target import is_device_array
from ..base import EmptyState, GradientTransformation, apply_updates
from ..transforms.clipping import _div_mul, _global_norm, global_norm
from ..transforms.combine import as_transformation
from ..tree import tree_leaves, tree_map

NormalizeState = EmptyState


def _host_only(tree, name, what):
    for leaf in tree_leaves(tree):
        if is_device_array(leaf):
            raise NotImplementedError(f"{name}: {what} runs on the host; CUDA device arrays "
                                      f"are not supported")


def normalize():
    r"""Divides the updates by their global L2 norm: :math:`u / \|u\|_2`.

    The norm is npopt's deterministic ``global_norm`` (per-leaf sums of
    squares in each leaf's dtype, added in leaf order, as optax's
    ``tree.norm``). Leaves of one dtype are divided by it in
    ``kernels/clip.py``'s segment kernel, on the CPU or on the CUDA device
    where the updates live; a tree of mixed dtypes (host arrays only) is
    divided with NumPy's promotion (its float64 norm promotes float32
    leaves, as in optax). Zero updates give NaN (0/0), as in optax.

    Returns:
      A GradientTransformation with state ``NormalizeState()`` (``EmptyState``).
    """
    def init_fn(params):
        return NormalizeState()

    def update_fn(updates, state, params=None, **extra_args):
        lay, _ = _flat.layout_of(updates, "updates")
        if len(lay.groups) == 1:
            u = lay.gather(updates, "updates")
            g_norm = _global_norm(lay, u)
            grp = lay.groups[0]
            with np.errstate(divide="ignore", invalid="ignore"):
                return _div_mul(lay, u, [np.full(len(grp.leaf_ids), g_norm, grp.dtype)],
                                [np.ones(len(grp.leaf_ids), grp.dtype)]), state
        _host_only(updates, "updates", "normalize of a tree of mixed dtypes")
        updates = tree_map(np.asarray, updates)
        g_norm = global_norm(updates)
        with np.errstate(divide="ignore", invalid="ignore"):
            return tree_map(lambda g: g / g_norm, updates), state

    return GradientTransformation(init_fn, update_fn)


class SAMState(NamedTuple):
    """State of ``sam``."""
    steps_since_sync: Any   # int32 ()
    opt_state: Any          # the outer optimizer's state
    adv_state: Any          # the adversarial optimizer's state
    cache: Any              # the outer params (None in opaque mode)


def sam(optimizer, adv_optimizer, sync_period=2, reset_state=True, opaque_mode=False,
        batch_axis_name=None):
    r"""Sharpness-Aware Minimization: an adversarial optimizer's steps, then one
    outer step every ``sync_period`` calls (module docstring).

    Args:
      optimizer: the outer optimizer.
      adv_optimizer: the adversarial optimizer (e.g. ``chain(normalize(),
        sgd(rho))``).
      sync_period: the outer step comes every ``sync_period`` calls (>= 1).
      reset_state: re-initialize the adversarial optimizer's state after each
        outer step.
      opaque_mode: run the ``sync_period - 1`` adversarial steps inside one
        ``update`` call; ``update`` then needs ``grad_fn(params, i)``
        returning the gradient at the adversarial params of step ``i``.
      batch_axis_name: accepted for optax's signature; it names a ``pmap``
        axis to average over, which has no meaning without JAX: anything
        but None raises.

    Returns:
      A GradientTransformation with state ``SAMState(steps_since_sync,
      opt_state, adv_state, cache)``.

    References:
      Foret et al., ICLR 2021 (arXiv:2010.01412).
    """
    optimizer = as_transformation("optimizer", optimizer)
    adv_optimizer = as_transformation("adv_optimizer", adv_optimizer)
    if (not isinstance(sync_period, (int, np.integer)) or isinstance(sync_period, bool)):
        raise TypeError(f"sync_period: expected an int >= 1, got {sync_period!r}")
    if sync_period < 1:
        raise ValueError("Synchronization period must be >= 1.")
    reset_state = _checks.check_bool("reset_state", reset_state)
    opaque_mode = _checks.check_bool("opaque_mode", opaque_mode)
    if batch_axis_name is not None:
        raise ValueError(f"batch_axis_name: expected None (there is no pmap axis in npopt), "
                         f"got {batch_axis_name!r}")

    def init_fn(params):
        _host_only(params, "params", "sam")
        return SAMState(steps_since_sync=np.int32(0), opt_state=optimizer.init(params),
                        adv_state=adv_optimizer.init(params),
                        cache=None if opaque_mode else tree_map(np.array, params))

    def transparent_update_fn(updates, state, params=None, *, grad_fn=None, **extra_args):
        _checks.check_state("state", state, SAMState, "sam")
        if params is None:
            raise ValueError("params: sam's update needs the params (the outer step goes "
                             "back to the cached outer params)")
        _host_only(params, "params", "sam")
        step = int(state.steps_since_sync)
        first_step, last_step = step == 0, step == sync_period - 1
        if last_step:
            opt_updates, opt_state = optimizer.update(updates, state.opt_state, state.cache)
            new_updates = tree_map(lambda c, p, u: (c - p) + u, state.cache, params,
                                   opt_updates)
            adv_state = adv_optimizer.init(params) if reset_state else state.adv_state
        else:
            adv_updates, adv_state = adv_optimizer.update(updates, state.adv_state, params)
            new_updates = tree_map(lambda x: -np.asarray(x), adv_updates)
            opt_state = state.opt_state
        cache = tree_map(np.array, params) if first_step else state.cache
        return new_updates, SAMState(steps_since_sync=np.int32((step + 1) % sync_period),
                                     opt_state=opt_state, adv_state=adv_state, cache=cache)

    def opaque_update_fn(updates, state, params=None, *, grad_fn=None, **extra_args):
        _checks.check_state("state", state, SAMState, "sam")
        if grad_fn is None:
            raise ValueError("grad_fn must be provided when opaque_mode=True.")
        _checks.check_callable("grad_fn", grad_fn)
        outer_params = params
        adv_params = params
        adv_updates = updates
        adv_state = state.adv_state
        for i in range(sync_period - 1):
            adv_updates, adv_state = adv_optimizer.update(adv_updates, adv_state, adv_params)
            adv_updates = tree_map(lambda x: -np.asarray(x), adv_updates)
            adv_params = apply_updates(adv_params, adv_updates)
            adv_updates = grad_fn(adv_params, i)
        if reset_state:
            adv_state = adv_optimizer.init(outer_params)
        new_updates, opt_state = optimizer.update(adv_updates, state.opt_state, outer_params)
        return new_updates, SAMState(steps_since_sync=np.int32(0), opt_state=opt_state,
                                     adv_state=adv_state, cache=None)

    return GradientTransformation(init_fn,
                                  opaque_update_fn if opaque_mode else transparent_update_fn)


__all__ = ["NormalizeState", "SAMState", "normalize", "sam"]
