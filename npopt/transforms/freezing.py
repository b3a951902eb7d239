"""freeze, selective_transform (optax 0.2.8, ``optax/transforms/_freezing.py``)
and flatten (``optax/transforms/_layouts.py``)."""
import numpy as np

from .. import _checks
from ..base import GradientTransformationExtraArgs, set_to_zero
from ..tree import tree_flatten, tree_leaves, tree_map, tree_unflatten
from .combine import as_transformation, masked, partition


def _check_bool_mask(name, mask):
    """``mask``: a bool, or a tree of bools (0-d bool arrays allowed)."""
    leaves = tree_leaves(mask)
    for x in leaves:
        ok = isinstance(x, (bool, np.bool_)) or (
            isinstance(x, np.ndarray) and x.shape == () and x.dtype == np.bool_)
        if not ok:
            raise TypeError(f"{name}: expected a bool or a tree of bools with the params' "
                            f"structure (or a prefix of it), got a leaf "
                            f"{_checks._describe(x)}")
    return mask


def freeze(mask):
    """Zeros the updates where ``mask`` is True (freezes those params).

    ``masked(set_to_zero(), mask)``: the leaves marked True get zero updates,
    the others pass through unchanged.

    Args:
      mask: a bool (freeze all, or nothing), or a tree of bools with the
        params' structure or a prefix of it (True: freeze), or (as
        ``masked``'s) a function of the params returning one.

    Returns:
      A GradientTransformation with state ``MaskedState(inner_state=EmptyState())``.
    """
    if not callable(mask):            # a function of the params goes to masked as is
        _check_bool_mask("mask", mask)
    return masked(set_to_zero(), mask)


def selective_transform(optimizer, *, freeze_mask):
    """Runs ``optimizer`` on the leaves not frozen, zero updates on the frozen ones.

    ``partition({'train': optimizer, 'freeze': set_to_zero()}, labels)``
    with ``labels = 'freeze'`` where ``freeze_mask`` is True: unlike
    ``chain(freeze(mask), optimizer)``, the optimizer keeps no state for the
    frozen leaves and never sees them.

    Args:
      optimizer: the optimizer of the trained (mask False) leaves.
      freeze_mask: a bool, or a tree of bools with the params' structure or
        a prefix of it (True: freeze). Keyword only. A function is refused
        (``TypeError``): optax would take it as a leaf, a true value, and
        freeze every param.

    Returns:
      A GradientTransformation with state ``PartitionState({'freeze': ...,
      'train': ...})``.
    """
    optimizer = as_transformation("optimizer", optimizer)
    _check_bool_mask("freeze_mask", freeze_mask)
    labels = tree_map(lambda m: "freeze" if m else "train", freeze_mask)

    def label_fn(params):
        del params
        return labels

    return partition({"train": optimizer, "freeze": set_to_zero()}, param_labels=label_fn)


def flatten(inner):
    """Runs ``inner`` on one vector: all leaves raveled and concatenated.

    ``inner`` sees (and keeps state for) one 1-d array, the leaves in tree
    order (dict keys sorted), promoted to their common dtype as
    ``np.concatenate`` (and ``jnp.concatenate``) do; the updates it returns
    are split and reshaped to the leaves' shapes (in that common dtype, as
    optax).

    Its ``step`` is ``inner``'s (fused where ``inner`` has one) on the
    concatenated params, the result cast back to each leaf's dtype (the
    rounding of ``apply_updates``).

    Args:
      inner: the transformation to run on the flattened vector.

    Returns:
      A GradientTransformation whose state is ``inner``'s.
    """
    inner = as_transformation("inner", inner)

    def _flatten(tree):
        leaves = tree_leaves(tree)
        if not leaves:
            raise ValueError("flatten: the tree has no leaves (nothing to concatenate)")
        return np.concatenate([np.reshape(np.asarray(x), -1) for x in leaves])

    def _unflatten(like, flat, cast=False):
        leaves, treedef = tree_flatten(like)
        out, off = [], 0
        for x in leaves:
            x = x if hasattr(x, "shape") else np.asarray(x)
            n = int(np.prod(x.shape, dtype=np.int64))
            piece = flat[off:off + n].reshape(x.shape)
            if cast:
                piece = piece.astype(x.dtype, copy=False)
            out.append(piece)
            off += n
        if off != flat.size:
            raise ValueError(f"flatten: the inner transformation returned {flat.size} "
                             f"elements for a tree of {off}")
        return tree_unflatten(treedef, out)

    def init_fn(params):
        return inner.init(_flatten(params))

    def update_fn(updates, state, params=None, **extra_args):
        flat_params = None if params is None else _flatten(params)
        flat_updates, state = inner.update(_flatten(updates), state, flat_params, **extra_args)
        return _unflatten(updates, np.asarray(flat_updates)), state

    def fused_step(params, grads, state, **extra_args):
        n_p, n_g = len(tree_leaves(params)), len(tree_leaves(grads))
        if n_p != n_g:
            raise ValueError(f"grads: {n_g} leaves for params of {n_p} leaves")
        flat_params, state = inner.step(_flatten(params), _flatten(grads), state, **extra_args)
        return _unflatten(params, np.asarray(flat_params), cast=True), state

    return GradientTransformationExtraArgs(init_fn, update_fn, fused_step=fused_step)
