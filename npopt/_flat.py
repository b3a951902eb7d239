"""The bridge between pytrees and the flat buffers kernels work on.

A ``Layout`` records a tree's structure and, per dtype, one *group*: the
leaves of that dtype laid end to end in a 1-D buffer, with the segment table
(offset and shape of every leaf) that per-leaf rules (lamb's trust ratio,
block RMS clipping, ...) need. Most trees have a single dtype and so a single
group; a float32/float64 mix gets two, and each keeps its dtype.

Buffers made here are handed back to the user as trees of *views* into
them. When such a tree comes back (the state or params of the next step),
``gather`` recognises it and uses the buffer as it is: the steady state of
``step`` copies nothing.
"""
from typing import NamedTuple, Tuple

import numpy as np

from . import _target
from ._checks import FLOAT_DTYPES, fail_leaf_dtype
from .tree import tree_flatten, tree_unflatten


class Group(NamedTuple):
    """The leaves of one dtype, laid end to end."""
    dtype: np.dtype
    leaf_ids: Tuple[int, ...]      # positions in the tree's leaf order
    offsets: Tuple[int, ...]       # len(leaf_ids) + 1 offsets into the buffer
    shapes: Tuple[tuple, ...]
    size: int

    @property
    def segments(self):
        """Per-leaf (start, stop) offsets as an int64 array of shape (k, 2)."""
        o = np.asarray(self.offsets, np.int64)
        return np.stack([o[:-1], o[1:]], axis=1)


class Layout:
    """Structure, shapes, dtypes and groups of a pytree of arrays."""

    __slots__ = ("treedef", "shapes", "dtypes", "groups", "target", "num_leaves")

    def __init__(self, treedef, shapes, dtypes, target):
        self.treedef = treedef
        self.shapes = shapes
        self.dtypes = dtypes
        self.target = target
        self.num_leaves = len(shapes)
        groups = []
        for dt in dict.fromkeys(dtypes):           # first-appearance order
            ids = tuple(i for i, d in enumerate(dtypes) if d == dt)
            offsets = [0]
            for i in ids:
                offsets.append(offsets[-1] + int(np.prod(shapes[i], dtype=np.int64)))
            groups.append(Group(dt, ids, tuple(offsets), tuple(shapes[i] for i in ids),
                                offsets[-1]))
        self.groups = tuple(groups)

    # -- buffers ---------------------------------------------------------
    def full(self, value, dtype=None):
        """One new buffer per group filled with value (dtype overrides the group's)."""
        return [self.target.full(g.size, value, dtype or g.dtype) for g in self.groups]

    def empty(self, dtype=None):
        return [self.target.empty(g.size, dtype or g.dtype) for g in self.groups]

    def copy(self, bufs):
        """New buffers holding copies of ``bufs`` (one per group)."""
        out = []
        for b in bufs:
            c = self.target.empty(b.shape[0], b.dtype)
            self.target.copy_into(c, b)
            out.append(c)
        return out

    def views(self, bufs):
        """The tree whose leaves are views into ``bufs`` (one buffer per group)."""
        leaves = [None] * self.num_leaves
        for g, buf in zip(self.groups, bufs):
            off = g.offsets
            for k, i in enumerate(g.leaf_ids):
                leaves[i] = buf[off[k]:off[k + 1]].reshape(g.shapes[k])
                if self.target.device:
                    leaves[i]._npopt_base = buf   # device views do not know their base
        return tree_unflatten(self.treedef, leaves)

    def gather(self, tree, name, dtype_of=None):
        """Flat buffers (one per group) holding ``tree``'s leaves.

        ``tree`` must have this layout's structure and shapes (a ValueError
        names ``name`` otherwise). Leaves must have the group's dtype, or
        ``dtype_of[group index]`` when given (states with their own dtype).
        Zero-copy when the leaves are views laid out as ``views`` makes them.
        """
        return self.gather_report(tree, name, dtype_of)[0]

    def gather_report(self, tree, name, dtype_of=None, leaves=None):
        """(buffers, copied): copied is True when a buffer had to be assembled.

        ``leaves``: the tree's leaves when already known (from ``layout_of``)."""
        if leaves is None:
            leaves = self.leaves_of(tree, name)
        bufs, copied = [], False
        for gi, g in enumerate(self.groups):
            dt = g.dtype if dtype_of is None else dtype_of[gi]
            buf, c = _gather_group(g, leaves, dt, name, self.target)
            bufs.append(buf)
            copied = copied or c
        return bufs, copied

    def leaves_of(self, tree, name):
        """Leaves of tree, checked against this layout's structure and shapes."""
        try:
            leaves = self.treedef.flatten_up_to(tree)
        except (ValueError, TypeError) as e:
            raise ValueError(
                f"{name}: expected a tree with the structure of the params "
                f"{self.treedef}, got {tree_flatten(tree)[1]}") from e
        for i, (x, shape) in enumerate(zip(leaves, self.shapes)):
            if not hasattr(x, "dtype"):
                leaves[i] = x = np.asarray(x)
            if x.shape != shape:
                raise ValueError(
                    f"{name}: leaf {i} has shape {x.shape}, expected {shape} "
                    f"(the shape of the matching params leaf)")
        return leaves


def _gather_group(g, leaves, dtype, name, target):
    ids = g.leaf_ids
    for i in ids:
        if leaves[i].dtype != dtype:
            raise TypeError(
                f"{name}: leaf {i} has dtype {leaves[i].dtype}, expected {dtype} "
                f"(the dtype of the matching params/state leaf)")
    if len(ids) == 1:
        x = leaves[ids[0]]
        if target.device or x.flags.c_contiguous:
            return (x if x.ndim == 1 else x.reshape(-1)), False
        return np.ascontiguousarray(x).reshape(-1), True
    base = _base_buffer(g, leaves, dtype, target)
    if base is not None:
        return base, False
    buf = target.empty(g.size, dtype)
    for k, i in enumerate(ids):
        if g.offsets[k + 1] > g.offsets[k]:
            target.copy_into(buf[g.offsets[k]:g.offsets[k + 1]], leaves[i].reshape(-1))
    return buf, True


def _base_buffer(g, leaves, dtype, target):
    """The buffer ``leaves`` (group g's) are views of, laid out as ``views``
    makes them, or None."""
    ids = g.leaf_ids
    first = leaves[ids[0]]
    if target.device:
        ptr = _target.device_ptr
        base = getattr(first, "_npopt_base", None)
        if base is None or base.shape != (g.size,) or base.dtype != dtype:
            return None
        contiguous = [leaves[i].is_c_contiguous() for i in ids]
    else:
        ptr = lambda x: x.__array_interface__["data"][0]  # noqa: E731
        base = first.base
        if not (type(base) is np.ndarray and base.ndim == 1 and base.shape[0] == g.size
                and base.dtype == dtype):
            return None
        contiguous = [leaves[i].flags.c_contiguous for i in ids]
    b0, isz = ptr(base), base.dtype.itemsize
    # empty leaves have no meaningful address (an empty view's pointer need
    # not equal base + offset): only the others are checked
    if all(contiguous) and all(ptr(leaves[i]) == b0 + o * isz or leaves[i].size == 0
                               for i, o in zip(ids, g.offsets)):
        return base
    return None


_LAYOUTS = {}


def layout_of(tree, name="params"):
    """(Layout, leaves) of a tree of float arrays; cached per structure/shapes/dtypes."""
    leaves, treedef = tree_flatten(tree)
    for i, x in enumerate(leaves):
        if not hasattr(x, "dtype") or not hasattr(x, "shape"):
            leaves[i] = np.asarray(x)
    target = _target.target_of(leaves, name)
    dtypes = tuple(x.dtype for x in leaves)
    shapes = tuple(x.shape for x in leaves)
    key = (treedef, shapes, dtypes, target)
    lay = _LAYOUTS.get(key)
    if lay is None:
        for i, dt in enumerate(dtypes):
            if np.dtype(dt) not in FLOAT_DTYPES:
                fail_leaf_dtype(f"{name} (leaf {i})", dt)
        lay = Layout(treedef, shapes, tuple(np.dtype(d) for d in dtypes), target)
        if len(_LAYOUTS) > 256:
            _LAYOUTS.clear()
        _LAYOUTS[key] = lay
    return lay, leaves
