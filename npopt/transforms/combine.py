"""Combinators: chain, named_chain, masked, partition (= multi_transform)."""
import collections
from collections.abc import Mapping
from typing import Any, NamedTuple

from .. import _checks
from ..base import GradientTransformation, GradientTransformationExtraArgs, with_extra_args_support
from ..tree import tree_leaves, tree_map, tree_structure
from ..tree._state_utils import _ParamsPlaceholder
from . import _fusion


def as_transformation(name, tx):
    """``tx`` as a transformation whose update takes ``**extra_args``
    (``with_extra_args_support``); ``TypeError`` naming ``name`` when it is
    not a GradientTransformation or an ``(init, update)`` pair."""
    if not isinstance(tx, GradientTransformation) and not (
            isinstance(tx, tuple) and len(tx) == 2 and callable(tx[0]) and callable(tx[1])):
        raise TypeError(f"{name}: expected a GradientTransformation (an (init, update) "
                        f"pair), got {_checks._describe(tx)}")
    return with_extra_args_support(tx)


def chain(*args):
    """Applies transformations in sequence; the state is the tuple of their states.

    The same ``params`` and ``**extra_args`` reach every element. When the
    chain has the shape ``[preconditioner] [add_decayed_weights] learning
    rate``, its ``step`` is one fused kernel pass; a few other shapes
    (adafactor's, lbfgs's, ...) have fused steps too (see ``_fusion.fuse``).
    """
    txs = tuple(as_transformation(f"chain: argument {i}", t) for i, t in enumerate(args))

    def init_fn(params):
        return tuple(t.init(params) for t in txs)

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, tuple) or len(state) != len(txs):
            raise TypeError(
                f"state: expected the {len(txs)}-tuple made by this chain's init, "
                f"got {type(state).__name__}")
        new_state = []
        for t, s in zip(txs, state):
            updates, s = t.update(updates, s, params, **extra_args)
            new_state.append(s)
        return updates, tuple(new_state)

    return GradientTransformationExtraArgs(init_fn, update_fn, fused_step=_fusion.fuse(txs))


# ---------------------------------------------------------------------------
# named_chain
# ---------------------------------------------------------------------------

def named_chain(*args):
    """``chain`` with named elements: the state is an ``OrderedDict`` name -> state.

    Args:
      *args: ``(name, transformation)`` pairs; names must be unique.

    Returns:
      A GradientTransformation whose state ``s`` gives ``s[name]``, the state
      of the transformation called ``name``, in the order given (an
      OrderedDict, so its leaves are in that order, not sorted).
    """
    pairs = []
    for i, a in enumerate(args):
        if not (isinstance(a, tuple) and len(a) == 2):
            raise TypeError(f"named_chain: argument {i} is not a (name, transformation) "
                            f"pair: {a!r}")
        name, t = a
        t = as_transformation(f"named_chain: argument {i} ({name!r})", t)
        pairs.append((name, t))
    names = [n for n, _ in pairs]
    if len(names) != len(set(names)):
        raise ValueError(f"Named transformations must have unique names, but got {names}")

    def init_fn(params):
        states = collections.OrderedDict()
        for name, t in pairs:
            states[name] = t.init(params)
        return states

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, Mapping) or set(state) != set(names):
            raise TypeError(
                f"state: expected the OrderedDict with keys {names} made by this "
                f"named_chain's init, got {type(state).__name__}")
        new_state = collections.OrderedDict()
        for name, t in pairs:
            updates, new_state[name] = t.update(updates, state[name], params, **extra_args)
        return updates, new_state

    return GradientTransformationExtraArgs(init_fn, update_fn)


# ---------------------------------------------------------------------------
# masked
# ---------------------------------------------------------------------------

class MaskedState(NamedTuple):
    """The state of ``masked``: the inner state, made for the masked-in leaves."""
    inner_state: Any


class MaskedNode(NamedTuple):
    """Stands in for a masked-out subtree: a node without children.

    It has no leaves, so tree maps (and npopt's flat layouts) skip it; the
    inner transformation of ``masked`` keeps no state for it.
    """


def _mask_callable(mask):
    leaves = tree_leaves(tree_map(callable, mask))
    return len(leaves) > 0 and all(leaves)


def _mask_pytree(pytree, mask_tree, name):
    try:
        return tree_map(lambda m, p: p if m else MaskedNode(), mask_tree, pytree)
    except ValueError as e:
        raise ValueError(
            f"mask: expected a tree of bools with the structure of the {name} or a "
            f"prefix of it, got {tree_structure(mask_tree)} for {name} of structure "
            f"{tree_structure(pytree)} ({e})") from None


def masked(inner, mask, *, mask_compatible_extra_args=False):
    """Applies ``inner`` to the masked-in leaves; the others pass through unchanged.

    Masked-out subtrees are replaced by ``MaskedNode()`` (a node without
    leaves) before ``inner`` sees the params and updates, so ``inner`` keeps
    state only for the masked-in leaves: the state has optax's structure.

    Args:
      inner: the transformation to apply to the masked-in leaves.
      mask: a tree of bools with the params' structure or a prefix of it
        (True: transform), or a callable returning one given the params (in
        ``init``) or the updates (in ``update``).
      mask_compatible_extra_args: also mask the extra keyword arguments of
        ``update`` that have the updates' tree structure.

    Returns:
      A GradientTransformation with state ``MaskedState(inner_state)``.

    Raises:
      ValueError naming ``mask`` when the mask is not a prefix of the tree.
    """
    inner = as_transformation("inner", inner)
    mask_compatible_extra_args = _checks.check_bool("mask_compatible_extra_args",
                                                    mask_compatible_extra_args)

    def mask_of(tree):
        return mask(tree) if _mask_callable(mask) else mask

    def maybe_mask_values(extra_args, base, mask_tree):
        if not mask_compatible_extra_args:
            return extra_args
        base_structure = tree_structure(base)
        return {k: (_mask_pytree(v, mask_tree, f"extra argument {k!r}")
                    if tree_structure(v) == base_structure else v)
                for k, v in extra_args.items()}

    def init_fn(params):
        if isinstance(params, _ParamsPlaceholder):
            # tree_map_params's placeholder goes down unmasked (as in optax)
            return MaskedState(inner_state=inner.init(params))
        mask_tree = mask_of(params)
        return MaskedState(inner_state=inner.init(_mask_pytree(params, mask_tree, "params")))

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, MaskedState):
            raise TypeError(f"state: expected the MaskedState made by masked(...).init, "
                            f"got {type(state).__name__}")
        mask_tree = mask_of(updates)
        masked_updates = _mask_pytree(updates, mask_tree, "updates")
        masked_params = None if params is None else _mask_pytree(params, mask_tree, "params")
        masked_extra = maybe_mask_values(extra_args, updates, mask_tree)
        new_masked, new_inner = inner.update(masked_updates, state.inner_state, masked_params,
                                             **masked_extra)
        new_updates = tree_map(lambda m, new_u, old_u: new_u if m else old_u,
                               mask_tree, new_masked, updates)
        return new_updates, MaskedState(inner_state=new_inner)

    return GradientTransformationExtraArgs(init_fn, update_fn)


# ---------------------------------------------------------------------------
# partition (multi_transform)
# ---------------------------------------------------------------------------

class PartitionState(NamedTuple):
    """The state of ``partition``: a dict label -> MaskedState."""
    inner_states: Any


MultiTransformState = PartitionState


def partition(transforms, param_labels, *, mask_compatible_extra_args=False):
    """Applies a different transformation to each group of leaves.

    Each group ``label`` is run as ``masked(transforms[label], labels ==
    label)``, in the order of ``transforms``.

    Args:
      transforms: a mapping label -> transformation.
      param_labels: a tree with the params' structure (or a prefix) whose
        leaves are labels, or a callable returning one given the params (in
        ``init``) or the updates (in ``update``). Every label needs a
        transformation.
      mask_compatible_extra_args: see ``masked``.

    Returns:
      A GradientTransformation with state ``PartitionState({label:
      MaskedState})``.
    """
    if not isinstance(transforms, Mapping):
        raise TypeError(f"transforms: expected a mapping label -> transformation, "
                        f"got {type(transforms).__name__}")
    transforms = {k: as_transformation(f"transforms[{k!r}]", v) for k, v in transforms.items()}
    mask_compatible_extra_args = _checks.check_bool("mask_compatible_extra_args",
                                                    mask_compatible_extra_args)

    def make_mask(labels, group):
        return tree_map(lambda label: label == group, labels)

    def labels_of(tree):
        return param_labels(tree) if callable(param_labels) else param_labels

    def init_fn(params):
        labels = labels_of(params)
        label_set = set(tree_leaves(labels))
        if not label_set.issubset(transforms.keys()):
            raise ValueError(
                "param_labels: some parameters have no corresponding transformation.\n"
                f"Parameter labels: {sorted(map(str, label_set))}\n"
                f"Transforms keys: {sorted(map(str, transforms))}\n")
        inner_states = {
            group: masked(tx, make_mask(labels, group),
                          mask_compatible_extra_args=mask_compatible_extra_args).init(params)
            for group, tx in transforms.items()}
        return PartitionState(inner_states)

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, PartitionState):
            raise TypeError(f"state: expected the PartitionState made by partition(...).init, "
                            f"got {type(state).__name__}")
        labels = labels_of(updates)
        new_inner = {}
        for group, tx in transforms.items():
            masked_tx = masked(tx, make_mask(labels, group),
                               mask_compatible_extra_args=mask_compatible_extra_args)
            updates, new_inner[group] = masked_tx.update(
                updates, state.inner_states[group], params, **extra_args)
        return updates, PartitionState(new_inner)

    return GradientTransformationExtraArgs(init_fn, update_fn)


multi_transform = partition
