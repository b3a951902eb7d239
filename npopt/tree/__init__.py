"""Pytrees: the only part of npopt that knows about nested containers.

A *pytree* is any nesting of ``dict``, ``list``, ``tuple``, namedtuple and
``None``; everything else (numpy arrays, numpy scalars, Python numbers, other
objects) is a *leaf*.  The rules follow ``jax.tree_util``:

* dict keys are visited in sorted order (``OrderedDict`` keeps insertion
  order, ``defaultdict`` sorts like ``dict``);
* ``None`` is an empty subtree with no leaves;
* a namedtuple is any ``tuple`` subclass with ``_fields``; it is rebuilt with
  ``type(x)(*children)``.  A tuple subclass without ``_fields``, and
  subclasses of dict/list, are leaves (as in JAX).

On top of ``tree_flatten``/``tree_unflatten``/``tree_map`` this package gives:

* ``ravel(tree) -> (flat, unravel)``, like ``jax.flatten_util.ravel_pytree``,
  and ``segment_table(tree)``, the offset and shape of every leaf inside
  ``flat``, which is what the kernels see (SPEC §2);
* the ``jaxopt.tree_util`` and ``optax.tree_utils`` helpers, with NumPy
  semantics leaf by leaf, plus the unprefixed ``optax.tree`` spellings
  (``add``, ``scale``, ``norm``, ...) at the bottom.

Flattening runs on every optimizer step, so the hot path is a type-dispatch
table (``_NODES``) and a short recursive walk, with a fast exit for a bare
``np.ndarray``.

Its modules, each building on the ones before it:

* ``_structure``: the node table, ``TreeDef`` (with ``TreeDef.fast``, the
  straight-line cut and build made for one structure), ``tree_flatten``,
  ``tree_unflatten``, ``tree_leaves``, ``tree_structure``, ``tree_map``,
  ``tree_reduce``. It imports nothing else of npopt;
* ``ravel``, ``segment_table`` and ``SegmentTable`` are ``npopt._flat``'s
  (``_flat/_ravel.py``), the one place that knows how a tree maps to flat
  buffers, which builds on ``_structure``; they are re-exported here;
* ``_arith``: leaf-by-leaf arithmetic (``tree_add``, ``tree_scalar_mul``,
  ``tree_where``, ``tree_clip``, ``tree_average``, ...);
* ``_reduce``: whole-tree reductions (``tree_vdot``, ``tree_sum``, the norms,
  ``tree_max``/``tree_min``, ``tree_size``, ``tree_allclose``);
* ``_dtype``: casts and ``tree_dtype``/``tree_single_dtype``;
* ``_moments``: optax's moment updates and bias correction.
"""

# npopt._flat imports ._structure (not this __init__), so either package may be
# imported first.
from ._structure import (TreeDef, tree_flatten, tree_leaves, tree_map, tree_reduce,
                         tree_structure, tree_unflatten)
from .._flat._ravel import SegmentTable, ravel, segment_table
from ._arith import (tree_add, tree_add_scalar_mul, tree_add_scale, tree_average,
                    tree_batch_shape, tree_clip, tree_conj, tree_div, tree_dot, tree_full_like,
                    tree_imag, tree_mul, tree_negative, tree_ones_like, tree_real,
                    tree_reciprocal, tree_scalar_mul, tree_scale, tree_sub, tree_where,
                    tree_zeros_like)
from ._dtype import tree_cast, tree_cast_like, tree_dtype, tree_single_dtype
from ._paths import (DictKey, GetAttrKey, NamedTupleKey, SequenceKey, keystr, tree_get,
                     tree_get_all_with_path, tree_leaves_with_path, tree_set)
from ._random import tree_random_like, tree_split_key_like, tree_unwrap_random_key_data
from ._moments import (tree_bias_correction, tree_update_infinity_moment, tree_update_moment,
                       tree_update_moment_per_elem_norm)
from ._reduce import (tree_allclose, tree_inf_norm, tree_l2_norm, tree_max, tree_min, tree_norm,
                      tree_size, tree_sum, tree_vdot, tree_vdot_real)

__all__ = [
    # structure
    "TreeDef", "tree_flatten", "tree_unflatten", "tree_leaves",
    "tree_structure", "tree_map", "tree_reduce",
    # flat buffers
    "SegmentTable", "segment_table", "ravel",
    # arithmetic (jaxopt.tree_util / optax.tree_utils)
    "tree_add", "tree_sub", "tree_mul", "tree_div", "tree_scalar_mul",
    "tree_add_scalar_mul", "tree_add_scale", "tree_scale", "tree_negative",
    "tree_reciprocal", "tree_vdot", "tree_vdot_real", "tree_dot", "tree_sum",
    "tree_l2_norm", "tree_inf_norm", "tree_norm", "tree_max", "tree_min",
    "tree_size", "tree_zeros_like", "tree_ones_like", "tree_full_like",
    "tree_where", "tree_clip", "tree_conj", "tree_real", "tree_imag",
    "tree_cast", "tree_cast_like", "tree_dtype", "tree_single_dtype",
    "tree_average", "tree_allclose", "tree_batch_shape",
    # paths, get and set by key (optax.tree_utils)
    "DictKey", "SequenceKey", "GetAttrKey", "NamedTupleKey", "keystr",
    "tree_leaves_with_path", "tree_get_all_with_path", "tree_get", "tree_set",
    # random trees (optax.tree_utils, with NumPy generators)
    "tree_random_like", "tree_split_key_like", "tree_unwrap_random_key_data",
    # moments (optax.tree_utils)
    "tree_update_moment", "tree_update_moment_per_elem_norm",
    "tree_update_infinity_moment", "tree_bias_correction",
    # optax.tree spellings
    "add", "sub", "mul", "div", "scale", "add_scale", "vdot", "sum", "norm",
    "max", "min", "size", "zeros_like", "ones_like", "full_like", "where",
    "clip", "conj", "real", "cast", "cast_like", "dtype", "allclose",
    "update_moment", "update_infinity_moment", "update_moment_per_elem_norm",
    "bias_correction", "batch_shape", "get", "get_all_with_path", "set",
    "random_like", "split_key_like", "unwrap_random_key_data",
]

# ---------------------------------------------------------------------------
# The optax.tree spellings.
# ---------------------------------------------------------------------------

add = tree_add
sub = tree_sub
mul = tree_mul
div = tree_div
scale = tree_scale
add_scale = tree_add_scale
vdot = tree_vdot
sum = tree_sum  # noqa: A001 (optax.tree.sum)
norm = tree_norm
max = tree_max  # noqa: A001 (optax.tree.max)
min = tree_min  # noqa: A001 (optax.tree.min)
size = tree_size
zeros_like = tree_zeros_like
ones_like = tree_ones_like
full_like = tree_full_like
where = tree_where
clip = tree_clip
conj = tree_conj
real = tree_real
cast = tree_cast
cast_like = tree_cast_like
dtype = tree_dtype
allclose = tree_allclose
update_moment = tree_update_moment
update_infinity_moment = tree_update_infinity_moment
update_moment_per_elem_norm = tree_update_moment_per_elem_norm
bias_correction = tree_bias_correction
batch_shape = tree_batch_shape
get = tree_get
get_all_with_path = tree_get_all_with_path
set = tree_set  # noqa: A001 (optax.tree.set)
random_like = tree_random_like
split_key_like = tree_split_key_like
unwrap_random_key_data = tree_unwrap_random_key_data

# optax.tree_utils.tree_map_params (optax.tree.map_params)
from ._state_utils import tree_map_params  # noqa: E402
map_params = tree_map_params
__all__ += ["tree_map_params", "map_params"]
