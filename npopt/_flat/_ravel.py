"""Ravelling: a tree as one 1-D array of its leaves' promoted dtype.

``ravel(tree) -> (flat, unravel)`` is ``jax.flatten_util.ravel_pytree``;
``segment_table(tree)`` gives the offset, size, shape and dtype of every leaf
inside ``flat``. All leaves are laid end to end in leaf order, whatever
their dtypes (a ``Layout`` instead keeps one buffer per dtype; for a tree of
one dtype its group's offsets are ``segment_table``'s, followed by the total
size). Both are re-exported by ``npopt.tree``.
"""

import functools
from typing import NamedTuple

import numpy as np

from ..tree._structure import _LEAF, _build, tree_flatten, tree_leaves

_ndarray = np.ndarray


class SegmentTable(NamedTuple):
    """Where each leaf lives inside the ravelled 1-D buffer (leaf order).

    Leaf ``i`` is ``flat[offsets[i]:offsets[i] + sizes[i]].reshape(shapes[i])``
    and has dtype ``dtypes[i]``; ``size`` is the total length of ``flat``.
    """
    offsets: tuple
    sizes: tuple
    shapes: tuple
    dtypes: tuple
    size: int


def _table(leaves):
    offsets, sizes, shapes, dtypes = [], [], [], []
    total = 0
    for x in leaves:
        if type(x) is not _ndarray:
            x = np.asarray(x)
        offsets.append(total)
        sizes.append(x.size)
        shapes.append(x.shape)
        dtypes.append(x.dtype)
        total += x.size
    return SegmentTable(tuple(offsets), tuple(sizes), tuple(shapes),
                        tuple(dtypes), total)


def segment_table(tree):
    """The ``SegmentTable`` (offset, size, shape, dtype of every leaf)."""
    return _table(tree_leaves(tree))


def _promote(dtypes):
    if not dtypes:
        return np.dtype(np.float64)
    return functools.reduce(np.promote_types, dict.fromkeys(dtypes))


def ravel(tree):
    """Ravel a pytree into one 1-D array, like ``jax.flatten_util.ravel_pytree``.

    Returns ``(flat, unravel)``.  ``flat`` is a fresh contiguous 1-D array of
    the leaves' promoted dtype (``np.promote_types`` over the leaf dtypes; a
    Python float counts as float64, a Python int as int64; an empty tree gives
    ``np.zeros(0)``).  ``unravel(flat)`` rebuilds the tree, each leaf reshaped
    and cast back to its own dtype (Python/numpy scalars come back as 0-d
    arrays).  ``unravel(flat, copy=False)`` returns views into ``flat`` where
    no cast is needed.

    Unlike JAX, ``unravel`` always casts to the original leaf dtypes, also
    when all leaves share one dtype.
    """
    leaves, treedef = tree_flatten(tree)
    table = _table(leaves)
    dtype = _promote(table.dtypes)
    if leaves:
        flat = np.concatenate([np.ravel(x) for x in leaves], dtype=dtype)
    else:
        flat = np.zeros(0, dtype=dtype)
    spec = treedef._spec
    items = tuple(zip(table.offsets, table.sizes, table.shapes, table.dtypes))

    def unravel(flat, copy=True):
        flat = flat if type(flat) is _ndarray else np.asarray(flat)
        if flat.ndim != 1 or flat.shape[0] != table.size:
            raise ValueError(
                f"unravel: expected a 1-D array of size {table.size} (the "
                f"ravelled {treedef}), got an array of shape {flat.shape}")
        out = [flat[o:o + n].reshape(shape).astype(dt, copy=copy)
               for o, n, shape, dt in items]
        if spec is _LEAF:
            return out[0]
        return _build(spec, iter(out))

    unravel.segment_table = table
    unravel.treedef = treedef
    return flat, unravel
