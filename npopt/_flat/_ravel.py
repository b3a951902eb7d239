"""Ravelling: a tree as one 1-D array of its leaves' promoted dtype.

``ravel(tree) -> (flat, unravel)`` is ``jax.flatten_util.ravel_pytree``;
``segment_table(tree)`` gives the offset, size, shape and dtype of every leaf
inside ``flat``. All leaves are laid end to end in leaf order, whatever
their dtypes (a ``Layout`` instead keeps one buffer per dtype; for a tree of
one dtype its group's offsets are ``segment_table``'s, followed by the total
size). Both are re-exported by ``npopt.tree``.

The solvers work in that ravelled space: ``flat_of`` and ``unraveler``
(quasi-Newton solvers), ``FlatSpace`` (linear_solve), and
``stacked_views``/``stacked_buffer``, an ``(m, n)`` buffer whose rows are
ravelled trees and the tree of ``(m,) + leaf.shape`` views into it (the
L-BFGS and L-BFGS-B histories).
"""

import functools
from typing import NamedTuple

import numpy as np

from ..tree._structure import _LEAF, _build, tree_flatten, tree_leaves, tree_unflatten

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


# -- the ravelled space of solvers --------------------------------------------

def flat_of(tree):
    """The ravelled tree: the array itself for a contiguous 1-D array leaf."""
    if type(tree) is np.ndarray and tree.ndim == 1 and tree.flags.c_contiguous:
        return tree
    return ravel(tree)[0]


def unraveler(params):
    """flat -> pytree shaped like params (views where possible)."""
    if type(params) is np.ndarray and params.ndim == 1:
        return lambda flat: flat
    _, unravel = ravel(params)
    return lambda flat: unravel(flat, copy=False)


class FlatSpace:
    """The ravelled coordinates of pytrees shaped like ``like``.

    ``flat(tree)`` is the 1-D vector (``ravel`` order, promoted
    dtype) and ``tree(vec)`` rebuilds the pytree with ``like``'s leaf dtypes.
    A bare ndarray is only reshaped (no copy).
    """

    def __init__(self, like):
        if type(like) is np.ndarray:
            shape, dtype = like.shape, like.dtype
            self.size, self.dtype = like.size, dtype
            self.flat = lambda t: np.reshape(t, -1)
            self.tree = lambda v: np.reshape(v, shape).astype(dtype, copy=False)
        else:
            vec, unravel = ravel(like)
            self.size, self.dtype = vec.size, vec.dtype
            self.flat = lambda t: ravel(t)[0]
            self.tree = unravel


# -- histories: (m, n) buffers whose rows are ravelled trees -----------------

def stacked_views(buf, like):
    """The pytree of views into the ``(m, n)`` buffer ``buf`` laid out as the
    ravelled ``like``: leaves of shape ``(m,) + leaf.shape``."""
    leaves, treedef = tree_flatten(like)
    m, off, out = buf.shape[0], 0, []
    for x in leaves:
        shape = np.shape(x)
        size = int(np.prod(shape, dtype=np.int64))
        out.append(buf[:, off:off + size].reshape((m,) + shape))
        off += size
    return tree_unflatten(treedef, out)


def stacked_buffer(tree, m, n, dtype):
    """The ``(m, n)`` buffer behind a stacked pytree (an L-BFGS history):
    zero-copy when its leaves are ``stacked_views`` of one buffer, else
    assembled (a copy)."""
    leaves = [np.asarray(x) for x in tree_leaves(tree)]
    if len(leaves) == 1:
        x = leaves[0]
        if x.dtype == dtype and x.flags.c_contiguous and x.size == m * n:
            return x.reshape(m, n)
    elif leaves:
        b = leaves[0].base
        if isinstance(b, np.ndarray) and b.shape == (m, n) and b.dtype == dtype \
                and b.flags.c_contiguous and all(x.base is b for x in leaves):
            p0, isz, off = b.__array_interface__["data"][0], b.itemsize, 0
            ok = True
            for x in leaves:
                ok = ok and x.__array_interface__["data"][0] == p0 + off * isz
                off += x.size // m if m else 0
            if ok and off == n:
                return b
    out = np.concatenate([x.reshape(m, -1) for x in leaves], axis=1) if leaves \
        else np.zeros((m, 0), dtype)
    return np.ascontiguousarray(out, dtype=dtype)
