r"""Differentially private SGD (optax.contrib 0.2.8): per-example clipping,
summing, Gaussian noise.

The updates given to ``differentially_private_aggregate`` are **per-example
gradients**: every leaf has the batch on axis 0 (size :math:`B`). With
:math:`C` = ``l2_norm_clip`` and :math:`\sigma` = ``noise_multiplier``:

.. math::
    n_b = \Big\|\big(g^{(i)}_b\big)_i\Big\|_2,\qquad
    c_b = \min(C / n_b, 1)\ (1 \text{ where NaN}),\qquad
    u^{(i)} = \frac{\sum_b c_b\, g^{(i)}_b + C\sigma\, z^{(i)}}{B},\quad
    z^{(i)} \sim \mathcal N(0, I)

(the norm is over all leaves of one example; ``per_example_global_norm_clip``
of ``npopt.transforms.per_example``: fixed-order sums and products).

The random stream: the state keeps optax's raw threefry key
(``rng_key``, uint32 (2,), ``jax.random.key_data`` layout) and splits it as
JAX does, ``new_key, *leaf_keys = split(rng_key, num_leaves + 1)``, so the
key sequence is optax's bit for bit. The noise of leaf :math:`i` is drawn
by NumPy, ``numpy.random.default_rng(leaf_key_i).standard_normal`` in the
leaf's dtype, not by JAX's sampler: the noise-free part (``noise_multiplier
= 0``) equals optax's, the noise has the same distribution (tested
statistically) but other draws.

References:
  Abadi et al., "Deep Learning with Differential Privacy", CCS 2016
  (arXiv:1607.00133).
"""
import warnings
from typing import Any, NamedTuple

import numpy as np

from .. import _checks
from .._target import is_device_array
from ..base import GradientTransformation, identity
from ..transforms.combine import chain
from ..transforms.noise import canonical_key, threefry_split
from ..transforms.per_example import per_example_global_norm_clip
from ..transforms.scale import scale_by_learning_rate
from ..transforms.sgd import trace
from ..tree import tree_flatten, tree_unflatten


class DifferentiallyPrivateAggregateState(NamedTuple):
    """State of ``differentially_private_aggregate``: the raw threefry key."""
    rng_key: Any    # uint32 (2,)


def differentially_private_aggregate(l2_norm_clip, noise_multiplier, key=None, *, seed=None):
    r"""Aggregates per-example gradients as DP-SGD does: clip each example's
    gradient to global norm ``l2_norm_clip``, sum, add Gaussian noise of
    standard deviation ``l2_norm_clip * noise_multiplier``, divide by the
    batch size (module docstring).

    .. warning:: The updates must be per-example gradients, with the batch
       on axis 0 of every leaf; the returned updates have the params' shapes
       (the batch axis summed). Use it first in a chain; ``MultiSteps`` and
       other gradient accumulators do not make sense after it.

    Args:
      l2_norm_clip: :math:`C`, the largest L2 norm of one example's gradient.
      noise_multiplier: :math:`\sigma`, the noise's standard deviation over
        :math:`C`.
      key: an int seed or a raw threefry key (uint32 (2,)); None warns (as
        optax) and uses 0.
      seed: deprecated alias of ``key`` (DeprecationWarning, as optax).

    Returns:
      A GradientTransformation with state
      ``DifferentiallyPrivateAggregateState(rng_key)``.

    References:
      Abadi et al., CCS 2016 (arXiv:1607.00133).
    """
    l2_norm_clip = _checks.check_number("l2_norm_clip", l2_norm_clip, low=0.0)
    noise_multiplier = _checks.check_number("noise_multiplier", noise_multiplier, low=0.0)
    if seed is not None:
        warnings.warn('"seed" is deprecated and will be removed in optax 0.2.7, use "key".',
                      DeprecationWarning, stacklevel=2)
        if key is not None:
            raise ValueError("Only one of seed or key can be specified.")
        key = seed
    return _dp_aggregate(l2_norm_clip, noise_multiplier, key, "seed" if seed is not None else "key")


def _dp_aggregate(l2_norm_clip, noise_multiplier, key, key_name):
    if key is None:
        warnings.warn("Specifying a key will be required in optax 0.2.7.", stacklevel=3)
        key = 0
    key0 = canonical_key(key, key_name)
    noise_std = l2_norm_clip * noise_multiplier

    def init_fn(params):
        return DifferentiallyPrivateAggregateState(rng_key=key0.copy())

    def update_fn(updates, state, params=None, **extra_args):
        _checks.check_state("state", state, DifferentiallyPrivateAggregateState,
                            "differentially_private_aggregate")
        rng_key = canonical_key(state.rng_key, "state.rng_key")
        leaves, treedef = tree_flatten(updates)
        if not leaves:
            return updates, state
        if any(is_device_array(g) for g in leaves):
            raise NotImplementedError("updates: differentially_private_aggregate runs on "
                                      "the host; CUDA device arrays are not supported")
        clipped, _ = per_example_global_norm_clip(updates, l2_norm_clip)
        clipped = [np.asarray(c) for c in tree_flatten(clipped)[0]]
        bsize = np.shape(leaves[0])[0]
        keys = threefry_split(rng_key, len(leaves) + 1)
        noised = []
        for g, k in zip(clipped, keys[1:]):
            z = np.random.default_rng([int(w) for w in k]).standard_normal(g.shape, g.dtype)
            noised.append((g + g.dtype.type(noise_std) * z) / g.dtype.type(bsize))
        return (tree_unflatten(treedef, noised),
                DifferentiallyPrivateAggregateState(rng_key=keys[0]))

    return GradientTransformation(init_fn, update_fn)


def dpsgd(learning_rate, l2_norm_clip, noise_multiplier, seed, momentum=None, nesterov=False):
    r"""DP-SGD: ``chain(differentially_private_aggregate(l2_norm_clip,
    noise_multiplier, seed), trace(momentum, nesterov) if momentum is not
    None else identity(), scale_by_learning_rate(learning_rate))``.

    .. math::
        p \leftarrow p - \eta\, \mathrm{trace}\Big(\frac{\sum_b
        \mathrm{clip}_C(g_b) + C\sigma z}{B}\Big)

    The updates given to ``update``/``step`` are per-example gradients
    (batch on axis 0 of every leaf); see
    ``differentially_private_aggregate`` for the clipping and the random
    stream (optax's key sequence, NumPy's normal draws). Unlike optax, the
    seed does not emit optax's deprecation warning of ``seed=`` (it is
    ``dpsgd``'s own argument).

    Args:
      learning_rate: a float or a schedule.
      l2_norm_clip: the per-example clipping norm :math:`C`.
      noise_multiplier: :math:`\sigma`.
      seed: an int seed (or a raw threefry key) of the noise.
      momentum: the momentum of ``trace`` (None: no momentum).
      nesterov: Nesterov momentum.

    References:
      Abadi et al., CCS 2016 (arXiv:1607.00133).
    """
    l2_norm_clip = _checks.check_number("l2_norm_clip", l2_norm_clip, low=0.0)
    noise_multiplier = _checks.check_number("noise_multiplier", noise_multiplier, low=0.0)
    if seed is None:
        raise TypeError("seed: expected an int seed (or a raw threefry key), got None")
    return chain(_dp_aggregate(l2_norm_clip, noise_multiplier, seed, "seed"),
                 trace(decay=momentum, nesterov=nesterov) if momentum is not None
                 else identity(),
                 scale_by_learning_rate(learning_rate))


__all__ = ["DifferentiallyPrivateAggregateState", "differentially_private_aggregate", "dpsgd"]
