"""The bridge between pytrees and the flat buffers kernels work on.

Every place in npopt that turns a tree into flat memory, or flat memory back
into a tree, goes through this package:

* ``_layout``: a ``Layout`` lays a tree out as one flat buffer per dtype
  (a *group*) and hands back trees of views into them; it also makes the
  checks a fused ``step`` needs (params, grads, state, consumption), so that
  the steady state of ``step`` copies nothing;
* ``_ravel``: ``ravel`` lays a tree out as one 1-D array of its leaves'
  promoted dtype (``jax.flatten_util.ravel_pytree``), and ``segment_table``
  says where each leaf lies in it; ``npopt.tree`` re-exports both. On top
  of it, the ravelled space the solvers work in: ``flat_of``, ``unraveler``,
  ``FlatSpace`` (linear_solve), and ``stacked_views``/``stacked_buffer``,
  the ``(m, n)`` buffers whose rows are ravelled trees (L-BFGS histories).

Both build on ``npopt.tree._structure`` (never on ``npopt.tree`` itself,
which imports ``_ravel``).
"""
from ._layout import (ConsumedStateError, DtypeMismatch, Group, Layout, NarrowLeaves, Promote,
                      as_dtype, bind_custom, check_like, fail_complex, fresh_copy, grads_for,
                      is_consumed, layout_of, leaf_path, mark_consumed, narrow_runs, origin_of,
                      overlaps, params_in_place, same_layout_leaves, set_origin, views_base)
from ._ravel import (FlatSpace, SegmentTable, flat_of, ravel, segment_table, stacked_buffer,
                     stacked_views, unraveler)

__all__ = [
    # layouts (one buffer per dtype) and the fused step's checks
    "Promote", "DtypeMismatch", "ConsumedStateError", "Group", "Layout", "layout_of",
    "leaf_path", "params_in_place", "grads_for", "check_like", "bind_custom",
    "mark_consumed", "is_consumed", "set_origin", "origin_of", "views_base",
    "overlaps", "as_dtype", "fresh_copy", "same_layout_leaves", "fail_complex", "narrow_runs",
    "NarrowLeaves",
    # ravelling (one buffer of the promoted dtype)
    "SegmentTable", "segment_table", "ravel",
    # the solvers' ravelled space
    "flat_of", "unraveler", "FlatSpace", "stacked_views", "stacked_buffer",
]
