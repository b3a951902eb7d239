"""tree_map_params: map a function over the copies of the params inside an
optimizer state (optax 0.2.8, ``optax/tree_utils/_state_utils.py``)."""
from typing import NamedTuple

from ._structure import tree_map


class _ParamsPlaceholder(NamedTuple):
    """Stands in for the params at ``init``: a node without leaves, which
    every tree map keeps as it is, so the state made from it shows where the
    params' copies sit."""


def tree_map_params(initable, f, state, /, *rest, transform_non_params=None, is_leaf=None):
    """Applies ``f`` to every copy of the params' tree inside ``state``.

    ``initable.init`` (or ``initable`` itself, a function of the params) is
    called with a placeholder for the params; wherever the placeholder comes
    out in the state made, the matching subtree of ``state`` is a copy of
    the params' tree (a moment, a trace, ...) and is mapped leaf by leaf with
    ``f(leaf, *rest_leaves)``. Every other leaf of ``state`` (counts, ...)
    goes through ``transform_non_params`` (kept as it is when None).

    Args:
      initable: an optimizer (anything with ``init``) or a function
        ``params -> state``.
      f: applied to the leaves of each params-like subtree of ``state``,
        with the matching leaves of ``rest``.
      state: the optimizer's state.
      *rest: trees with the params' structure passed along to ``f``.
      transform_non_params: applied to the other leaves of ``state``.
      is_leaf: passed to the tree map over each params-like subtree.

    Returns:
      A tree of ``state``'s structure.
    """
    placeholder = _ParamsPlaceholder()
    init = getattr(initable, "init", None)
    if init is None:
        if not callable(initable):
            raise TypeError("initable: expected an optimizer (with an init method) or a "
                            f"function params -> state, got {type(initable).__name__}")
        init = initable
    if not callable(f):
        raise TypeError(f"f: expected a callable, got {type(f).__name__}")
    state_with_placeholders = init(placeholder)

    def map_params(maybe_placeholder, value):
        if isinstance(maybe_placeholder, _ParamsPlaceholder):
            return tree_map(f, value, *rest, is_leaf=is_leaf)
        if transform_non_params is not None:
            return transform_non_params(value)
        return value

    return tree_map(map_params, state_with_placeholders, state,
                    is_leaf=lambda v: isinstance(v, _ParamsPlaceholder))
