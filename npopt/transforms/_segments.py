"""Per-leaf sums of squares of flat buffers (the norms of clipping and
trust-ratio rules), deterministic and shared by every per-leaf rule.

Each leaf (segment of a group's buffer) is cut into fixed chunks, each chunk
summed left to right in the leaf's dtype, and the chunk sums added in order
(``npopt.kernels.reduce``): the result does not depend on the thread count
or the CUDA grid. The chunk tables are cached per layout.
"""
import numpy as np

from ..kernels import reduce as kreduce

_TABLES = {}


def tables(lay):
    """Per group: (chunks on the host, chunks on the target, offsets on the target)."""
    t = _TABLES.get(lay)
    if t is None:
        t = []
        for grp in lay.groups:
            chunks = kreduce.chunk_table(grp.segments)
            offsets = np.asarray(grp.offsets, np.int64)
            if lay.target.device:
                from ..kernels._jit import cuda
                t.append((chunks, cuda.to_device(chunks), cuda.to_device(offsets)))
            else:
                t.append((chunks, chunks, offsets))
        if len(_TABLES) > 256:
            _TABLES.clear()
        _TABLES[lay] = t
    return t


def group_sumsq(lay, gi, x, y=None):
    """Per-leaf (sum x^2, sum y^2) of group ``gi``'s buffers x, y (y = x when
    omitted, else of x's dtype): a host array of shape (leaves in the group,
    2), in x's dtype."""
    grp = lay.groups[gi]
    dt = np.dtype(x.dtype)          # the group's dtype, or the one update promoted to
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
