"""Dtypes of a tree's leaves: casts, ``tree_dtype`` (optax) and
``tree_single_dtype`` (jaxopt)."""

import functools

import numpy as np

from ._structure import tree_leaves, tree_map


def _leaf_dtype(x):
    dt = getattr(x, "dtype", None)
    return dt if isinstance(dt, np.dtype) else np.asarray(x).dtype


def _astype(x, dtype):
    return x.astype(dtype) if hasattr(x, "astype") else np.asarray(x, dtype)


def tree_cast(tree, dtype):
    """Cast every leaf to ``dtype``; ``dtype=None`` returns ``tree`` as is."""
    if dtype is None:
        return tree
    return tree_map(lambda x: _astype(x, dtype), tree)


def tree_cast_like(tree, other_tree):
    """Cast each leaf to the dtype of the matching leaf of ``other_tree``."""
    return tree_map(lambda x, o: _astype(x, o.dtype) if hasattr(o, "dtype")
                    else x, tree, other_tree)


def _higher(d1, d2):
    p = np.promote_types(d1, d2)
    if p == d1 or p == d2:
        return p
    raise ValueError(f"tree_dtype: {d1} and {d2} cannot be promoted to one "
                     "another; use mixed_dtype_handler='promote'")


def _lower(d1, d2):
    p = np.promote_types(d1, d2)
    if p == d1:
        return d2
    if p == d2:
        return d1
    raise ValueError(f"tree_dtype: {d1} and {d2} cannot be promoted to one "
                     "another; use mixed_dtype_handler='promote'")


def tree_dtype(tree, mixed_dtype_handler=None):
    """The dtype of the tree's leaves (optax).

    ``mixed_dtype_handler``: None raises ValueError on mixed dtypes;
    'promote' gives ``np.promote_types`` over all leaves; 'highest'/'lowest'
    the largest/smallest dtype under promotion (ValueError if two leaves'
    dtypes are not ordered).  An empty tree gives float64.
    """
    dtypes = [_leaf_dtype(x) for x in tree_leaves(tree)]
    if not dtypes:
        return np.dtype(np.float64)
    if mixed_dtype_handler is None:
        if len(set(dtypes)) > 1:
            raise ValueError(
                f"tree_dtype: expected one dtype in the tree, got "
                f"{sorted(set(map(str, dtypes)))}; pass mixed_dtype_handler="
                "'promote', 'highest' or 'lowest'")
        return dtypes[0]
    if mixed_dtype_handler == "promote":
        return functools.reduce(np.promote_types, dtypes)
    if mixed_dtype_handler == "highest":
        return functools.reduce(_higher, dtypes)
    if mixed_dtype_handler == "lowest":
        return functools.reduce(_lower, dtypes)
    raise ValueError(f"tree_dtype: invalid mixed_dtype_handler="
                     f"{mixed_dtype_handler!r}; expected None, 'promote', "
                     "'highest' or 'lowest'")


def tree_single_dtype(tree):
    """The one dtype shared by all array/number leaves, or None (jaxopt)."""
    dtypes = {np.asarray(x).dtype for x in tree_leaves(tree)
              if isinstance(x, (bool, int, float, complex, np.ndarray,
                                np.generic))}
    if not dtypes:
        return None
    if len(dtypes) == 1:
        return dtypes.pop()
    raise ValueError("Found more than one dtype in the tree.")
