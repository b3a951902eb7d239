"""Per-leaf sums of squares of flat buffers (the norms of clipping and
trust-ratio rules), deterministic and shared by every per-leaf rule.

Each leaf (segment of a group's buffer) is cut into fixed chunks, each chunk
summed left to right in the leaf's dtype, and the chunk sums added in order
(``npopt.kernels.reduce``): the result does not depend on the thread count
or the CUDA grid. The chunk tables are cached per layout.
"""
import numpy as np

from .. import _checks, _flat
from .._checks import real_dtype
from ..kernels import reduce as kreduce
from ..tree import tree_flatten, tree_unflatten

_TABLES = {}


def tables(lay):
    """Per group: (chunks on the host, chunks on the target, offsets on the target)."""
    t = _TABLES.get(lay)
    if t is None:
        t = []
        for grp in lay.groups:
            chunks = kreduce.chunk_table(grp.segments)
            offsets = np.asarray(grp.offsets, np.int64)
            t.append((chunks, lay.target.put(chunks), lay.target.put(offsets)))
        if len(_TABLES) > 256:
            _TABLES.clear()
        _TABLES[lay] = t
    return t


def group_sumsq(lay, gi, x, y=None):
    """Per-leaf (sum |x|^2, sum |y|^2) of group ``gi``'s buffers x, y (y = x
    when omitted, else of x's dtype): a host array of shape (leaves in the
    group, 2), in x's real dtype."""
    grp = lay.groups[gi]
    dt = real_dtype(np.dtype(x.dtype))   # the group's (real) dtype, or the one update promoted to
    chunks, chunks_t, _ = tables(lay)[gi]
    totals = np.zeros((len(grp.leaf_ids), 2), dt)
    k = len(chunks)
    if k:
        partial = lay.target.empty(2 * k, dt).reshape(k, 2)
        lay.target.launch(kreduce.chunk_sumsq_cpu, kreduce.chunk_sumsq_cuda,
                          x, x if y is None else y, chunks_t, dt.type(0), partial)
        if lay.target.device:
            partial = partial.copy_to_host()
        kreduce.combine_chunks(chunks, partial, totals)
    return totals


# ---------------------------------------------------------------------------
# per-leaf scalar states and fused per-leaf passes (novograd, sm3, ...)
# ---------------------------------------------------------------------------

def leaf_scalar_views(lay, bufs):
    """The tree with one 0-d view per leaf into ``bufs`` (one (k,) buffer per group)."""
    leaves = [None] * lay.num_leaves
    for grp, buf in zip(lay.groups, bufs):
        for j, i in enumerate(grp.leaf_ids):
            leaves[i] = mark_base(lay, buf[j:j + 1].reshape(()), buf)
    return tree_unflatten(lay.treedef, leaves)


def gather_leaf_scalars(lay, tree, name):
    """(buffers, copied): one (k,) buffer per group holding the 0-d leaves of tree.

    Zero-copy when the leaves are the views ``leaf_scalar_views`` made.
    """
    try:
        leaves = lay.treedef.flatten_up_to(tree)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{name}: expected one scalar per params leaf, in a tree with "
                         f"the structure of the params {lay.treedef}, got "
                         f"{tree_flatten(tree)[1]}") from e
    bufs, copied = [], False
    for grp in lay.groups:
        ls = [leaves[i] for i in grp.leaf_ids]
        for i, x in zip(grp.leaf_ids, ls):
            if getattr(x, "shape", None) != () or x.dtype != grp.dtype:
                raise ValueError(f"{name}: leaf {i} must be a 0-d array of dtype {grp.dtype} "
                                 f"(one scalar per params leaf), got "
                                 f"{_checks._describe(x)}")
        buf = _flat.views_base(ls, range(len(ls)), len(ls), grp.dtype, lay.target.device)
        if buf is None:
            buf = lay.target.empty(len(ls), grp.dtype)
            for j, x in enumerate(ls):
                lay.target.copy_into(buf[j:j + 1], x.reshape(1))
            copied = True
        bufs.append(buf)
    return bufs, copied


def mark_base(lay, view, buf):
    """A view into ``buf``, with its base recorded on device arrays (see views_base)."""
    if lay.target.device:
        view._npopt_base = buf
    return view


def segment_posts(lay, gi, runs):
    """A fused step's epilogue per segment of group ``gi``: (neg_lr, weight decay array).

    ``runs`` are ``_fusion``'s (start, stop, (neg_lr, wd)) runs, made of whole
    leaves; the array (on the target) gives each leaf the wd of its run.
    """
    grp = lay.groups[gi]
    dt = grp.dtype.type
    starts = np.asarray(grp.offsets[:-1], np.int64)
    wd = np.zeros(len(grp.leaf_ids), grp.dtype)
    neg_lr = dt(0)
    for a, b, (nl, w) in runs:
        neg_lr = nl
        wd[(starts >= a) & (starts < b)] = w
    return neg_lr, lay.target.put(wd)


def leaf_sumsq(lay, gi, x):
    """Per-leaf sum of squares of group gi's buffer x, on the target."""
    return lay.target.put(np.ascontiguousarray(group_sumsq(lay, gi, x)[:, 0]))
