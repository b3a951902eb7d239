"""Pytrees: the only module in npopt that knows about nested containers.

A *pytree* is any nesting of ``dict``, ``list``, ``tuple``, namedtuple and
``None``; everything else (numpy arrays, numpy scalars, Python numbers, other
objects) is a *leaf*.  The rules follow ``jax.tree_util``:

* dict keys are visited in sorted order (``OrderedDict`` keeps insertion
  order, ``defaultdict`` sorts like ``dict``);
* ``None`` is an empty subtree with no leaves;
* a namedtuple is any ``tuple`` subclass with ``_fields``; it is rebuilt with
  ``type(x)(*children)``.  A tuple subclass without ``_fields``, and
  subclasses of dict/list, are leaves (as in JAX).

On top of ``tree_flatten``/``tree_unflatten``/``tree_map`` this module gives:

* ``ravel(tree) -> (flat, unravel)``, like ``jax.flatten_util.ravel_pytree``,
  and ``segment_table(tree)``, the offset and shape of every leaf inside
  ``flat``, which is what the kernels see (SPEC §2);
* the ``jaxopt.tree_util`` and ``optax.tree_utils`` helpers, with NumPy
  semantics leaf by leaf, plus the unprefixed ``optax.tree`` spellings
  (``add``, ``scale``, ``norm``, ...) at the bottom.

Flattening runs on every optimizer step, so the hot path is a type-dispatch
table (``_NODES``) and a short recursive walk, with a fast exit for a bare
``np.ndarray``.
"""

from collections import OrderedDict, defaultdict
import functools
import operator
from typing import Any, Callable, NamedTuple

import numpy as np

from . import _dense

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
    "tree_average", "tree_allclose",
    # moments (optax.tree_utils)
    "tree_update_moment", "tree_update_moment_per_elem_norm",
    "tree_update_infinity_moment", "tree_bias_correction",
    # optax.tree spellings
    "add", "sub", "mul", "div", "scale", "add_scale", "vdot", "sum", "norm",
    "max", "min", "size", "zeros_like", "ones_like", "full_like", "where",
    "clip", "conj", "real", "cast", "cast_like", "dtype", "allclose",
    "update_moment", "update_infinity_moment", "update_moment_per_elem_norm",
    "bias_correction",
]

_ndarray = np.ndarray

# ---------------------------------------------------------------------------
# The node table.
#
# A structure ("spec") is a nested tuple: a leaf is ``None``; an inner node is
# ``(node_type, aux, child_specs)`` where ``aux`` holds what is needed to
# rebuild the node besides its children (dict keys, a defaultdict's factory).
# ``_NODES`` maps a type to ``(children_fn, build_fn)`` for nodes, or to
# ``None`` for leaf types already seen.
# ---------------------------------------------------------------------------

_LEAF = None
_UNKNOWN = object()


def _sorted_keys(d):
    try:
        return sorted(d)
    except TypeError:
        raise TypeError(
            "pytree dict keys must be mutually sortable (they are visited in "
            f"sorted order, as in JAX); got keys {list(d)!r}") from None


def _dict_children(d):
    keys = _sorted_keys(d)
    return [d[k] for k in keys], tuple(keys)


def _ordereddict_children(d):
    return list(d.values()), tuple(d)


def _defaultdict_children(d):
    keys = _sorted_keys(d)
    return [d[k] for k in keys], (d.default_factory, tuple(keys))


def _seq_children(x):
    return x, None


def _none_children(_):
    return (), None


def _namedtuple_node(cls):
    return (_seq_children, lambda aux, kids: cls(*kids))


_NODES = {
    _ndarray: None,
    float: None, int: None, complex: None, bool: None,
    dict: (_dict_children, lambda keys, kids: dict(zip(keys, kids))),
    list: (_seq_children, lambda aux, kids: list(kids)),
    tuple: (_seq_children, lambda aux, kids: tuple(kids)),
    type(None): (_none_children, lambda aux, kids: None),
    OrderedDict: (_ordereddict_children,
                  lambda keys, kids: OrderedDict(zip(keys, kids))),
    defaultdict: (_defaultdict_children,
                  lambda aux, kids: defaultdict(aux[0], zip(aux[1], kids))),
}


def _node(t):
    """Table entry for type ``t``, classifying (and caching) new types."""
    node = _NODES.get(t, _UNKNOWN)
    if node is _UNKNOWN:
        if issubclass(t, tuple) and hasattr(t, "_fields"):
            node = _namedtuple_node(t)
        else:
            node = None
        _NODES[t] = node
    return node


def _flatten(x, leaves):
    t = type(x)
    if t is _ndarray:
        leaves.append(x)
        return _LEAF
    node = _NODES.get(t, _UNKNOWN)
    if node is _UNKNOWN:
        node = _node(t)
    if node is None:
        leaves.append(x)
        return _LEAF
    children, aux = node[0](x)
    return (t, aux, tuple([_flatten(c, leaves) for c in children]))


def _flatten_is_leaf(x, leaves, is_leaf):
    if is_leaf(x):
        leaves.append(x)
        return _LEAF
    node = _node(type(x))
    if node is None:
        leaves.append(x)
        return _LEAF
    children, aux = node[0](x)
    return (type(x), aux,
            tuple([_flatten_is_leaf(c, leaves, is_leaf) for c in children]))


def _build(spec, it):
    if spec is _LEAF:
        return next(it)
    t, aux, kids = spec
    return _node(t)[1](aux, [_build(k, it) for k in kids])


class _Mismatch(Exception):
    """Raised by the hot path of ``flatten_up_to``; diagnosed afterwards."""


def _up_to(spec, x, out):
    if spec is _LEAF:
        out.append(x)
        return
    t, aux, kids = spec
    if type(x) is not t:
        raise _Mismatch
    children, aux_x = _NODES[t][0](x)
    if aux_x != aux or len(children) != len(kids):
        raise _Mismatch
    for k, c in zip(kids, children):
        _up_to(k, c, out)


def _spec_str(spec):
    if spec is _LEAF:
        return "*"
    t, aux, kids = spec
    parts = [_spec_str(k) for k in kids]
    if t is type(None):
        return "None"
    if t is list:
        return "[" + ", ".join(parts) + "]"
    if t is tuple:
        return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
    if t is dict or t is OrderedDict:
        body = "{" + ", ".join(f"{k!r}: {p}" for k, p in zip(aux, parts)) + "}"
        return body if t is dict else f"OrderedDict({body})"
    if t is defaultdict:
        factory = getattr(aux[0], "__name__", repr(aux[0]))
        body = ", ".join(f"{k!r}: {p}" for k, p in zip(aux[1], parts))
        return f"defaultdict({factory}, {{{body}}})"
    fields = ", ".join(f"{f}={p}" for f, p in zip(t._fields, parts))
    return f"{t.__name__}({fields})"


def _describe(spec):
    """A short phrase for one node, used in mismatch messages."""
    if spec is _LEAF:
        return "a leaf"
    t, aux, kids = spec
    if t is type(None):
        return "None"
    if t in (dict, OrderedDict):
        return f"a {t.__name__} with keys {list(aux)!r}"
    if t is defaultdict:
        return f"a defaultdict with keys {list(aux[1])!r}"
    return f"a {t.__name__} of {len(kids)} children"


def _key_str(t, aux, i):
    if t in (dict, OrderedDict):
        return f"[{aux[i]!r}]"
    if t is defaultdict:
        return f"[{aux[1][i]!r}]"
    if t not in (list, tuple):
        return f".{t._fields[i]}"
    return f"[{i}]"


def _first_difference(spec, x, path=""):
    """Where ``x`` stops matching ``spec``: ``(path, message)`` or None."""
    if spec is _LEAF:
        return None
    t, aux, kids = spec
    node_x = _flatten(x, [])
    if type(x) is not t:
        got = (f"a leaf of type {type(x).__name__}" if node_x is _LEAF
               else _describe(node_x))
        return path or "<root>", f"expected {_describe(spec)}, got {got}"
    children, aux_x = _NODES[t][0](x)
    if aux_x != aux or len(children) != len(kids):
        return path or "<root>", (f"expected {_describe(spec)}, got "
                                  f"{_describe(node_x)}")
    for i, (k, c) in enumerate(zip(kids, children)):
        found = _first_difference(k, c, path + _key_str(t, aux, i))
        if found is not None:
            return found
    return None


class TreeDef:
    """The structure of a pytree: hashable, comparable, and reusable.

    ``num_leaves`` is the number of leaves; ``unflatten(leaves)`` rebuilds a
    tree; ``flatten_up_to(tree)`` cuts another tree at this structure's leaves
    (used to flatten a gradient against the params' structure).
    """

    __slots__ = ("_spec", "num_leaves", "_hash", "_fast")

    def __init__(self, spec, num_leaves):
        self._spec = spec
        self.num_leaves = num_leaves
        self._hash = None
        self._fast = _UNKNOWN

    def fast(self):
        """``(cut, build)``: this structure's ``flatten_up_to`` and
        ``unflatten`` as straight-line Python made for it (see
        ``_straight_line``), or None for a structure with other nodes than
        dict, list, tuple, namedtuple and None. ``cut(tree)`` returns the
        leaves, or raises (KeyError, IndexError, ``_Mismatch``) where
        ``tree`` differs; it gives no message: the caller then takes
        ``flatten_up_to``, which says where."""
        if self._fast is _UNKNOWN:
            self._fast = _straight_line(self._spec)
        return self._fast

    def __eq__(self, other):
        if not isinstance(other, TreeDef):
            return NotImplemented
        return self is other or self._spec == other._spec

    def __hash__(self):
        if self._hash is None:
            self._hash = hash(self._spec)
        return self._hash

    def __repr__(self):
        return f"PyTreeDef({_spec_str(self._spec)})"

    def unflatten(self, leaves):
        """Rebuild a tree of this structure from ``leaves`` (in leaf order)."""
        return tree_unflatten(self, leaves)

    def flatten_up_to(self, tree, _what="flatten_up_to: tree"):
        """Leaves of ``tree`` cut at this structure's leaves.

        ``tree`` must have this structure as a prefix: where this structure
        has a leaf, the whole corresponding subtree of ``tree`` is returned as
        one "leaf".  Raises ValueError naming the first place they differ.
        """
        spec = self._spec
        if spec is _LEAF:
            return [tree]
        out = []
        try:
            _up_to(spec, tree, out)
        except _Mismatch:
            path, why = _first_difference(spec, tree)
            raise ValueError(
                f"{_what} has structure {tree_structure(tree)}, expected "
                f"{self} (at {path}: {why})") from None
        return out


_LEAF_DEF = TreeDef(_LEAF, 1)


def _straight_line(spec):
    """(cut, build) of ``TreeDef.fast``, written out for ``spec``.

    For ``{'b': *, 'w': [*, *]}`` they are::

        def cut(x):
            if type(x) is not dict or len(x) != 2: raise _Mismatch
            x0 = x[K0]; x1 = x[K1]
            if type(x1) is not list or len(x1) != 2: raise _Mismatch
            return [x0, x1[0], x1[1]]

        def build(l):
            return {K0: l[0], K1: [l[1], l[2]]}

    with the keys (and namedtuple classes) bound as names, not printed: a
    step's steady state cuts its trees in about a tenth of the time of the
    recursive walk."""
    names, body, leaves = {"_Mismatch": _Mismatch}, [], []

    def bind(obj):
        k = f"K{len(names)}"
        names[k] = obj
        return k

    def walk(sp, var):             # the cut's statements; returns build's expression
        if sp is _LEAF:
            leaves.append(var)
            return f"l[{len(leaves) - 1}]"
        t, aux, kids = sp
        if t is type(None):
            body.append(f"if {var} is not None: raise _Mismatch")
            return "None"
        named = t not in (dict, list, tuple) and issubclass(t, tuple) and hasattr(t, "_fields")
        if not (t in (dict, list, tuple) or named):
            raise LookupError
        body.append(f"if type({var}) is not {bind(t)} or len({var}) != {len(kids)}: "
                    f"raise _Mismatch")
        parts = []
        for i, kid in enumerate(kids):
            sub = f"{var}_{i}"
            body.append(f"{sub} = {var}[{bind(aux[i]) if t is dict else i}]")
            parts.append(walk(kid, sub))
        if t is dict:
            return "{" + ", ".join(f"{bind(k)}: {p}" for k, p in zip(aux, parts)) + "}"
        if t is list:
            return "[" + ", ".join(parts) + "]"
        if t is tuple:
            return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
        return f"{bind(t)}(" + ", ".join(parts) + ")"
    try:
        expr = walk(spec, "x")
    except LookupError:
        return None
    src = ("def cut(x):\n" + "".join(f"    {line}\n" for line in body)
           + f"    return [{', '.join(leaves)}]\n\n"
           + f"def build(l):\n    return {expr}\n")
    exec(compile(src, "<npopt.tree straight line>", "exec"), names)  # noqa: S102
    return names["cut"], names["build"]


def tree_flatten(tree, is_leaf=None):
    """Return ``(leaves, treedef)``; leaves in JAX order (dict keys sorted)."""
    if is_leaf is None:
        if type(tree) is _ndarray:
            return [tree], _LEAF_DEF
        leaves = []
        spec = _flatten(tree, leaves)
    else:
        leaves = []
        spec = _flatten_is_leaf(tree, leaves, is_leaf)
    if spec is _LEAF:
        return leaves, _LEAF_DEF
    return leaves, TreeDef(spec, len(leaves))


def tree_unflatten(treedef, leaves):
    """Rebuild a tree of structure ``treedef`` from an iterable of leaves."""
    spec = treedef._spec
    if spec is _LEAF:
        leaves = list(leaves)
        if len(leaves) != 1:
            raise ValueError(f"tree_unflatten: {treedef} needs 1 leaf, got "
                             f"{len(leaves)}")
        return leaves[0]
    leaves = leaves if isinstance(leaves, (list, tuple)) else list(leaves)
    if len(leaves) != treedef.num_leaves:
        raise ValueError(f"tree_unflatten: {treedef} needs "
                         f"{treedef.num_leaves} leaves, got {len(leaves)}")
    return _build(spec, iter(leaves))


def tree_leaves(tree, is_leaf=None):
    """The leaves of ``tree`` in flatten order."""
    if is_leaf is None:
        if type(tree) is _ndarray:
            return [tree]
        leaves = []
        _flatten(tree, leaves)
        return leaves
    leaves = []
    _flatten_is_leaf(tree, leaves, is_leaf)
    return leaves


def tree_structure(tree, is_leaf=None):
    """The ``TreeDef`` of ``tree``."""
    return tree_flatten(tree, is_leaf)[1]


def tree_map(f, tree, *rest, is_leaf=None):
    """Apply ``f`` leaf by leaf; ``rest`` must have ``tree``'s structure.

    As in JAX, each tree in ``rest`` may go deeper than ``tree``: it is cut at
    ``tree``'s leaves (``TreeDef.flatten_up_to``).
    """
    leaves, treedef = tree_flatten(tree, is_leaf)
    if not rest:
        if treedef is _LEAF_DEF:
            return f(leaves[0])
        return _build(treedef._spec, iter([f(x) for x in leaves]))
    others = []
    for i, r in enumerate(rest, start=1):
        leaves_r = [] if is_leaf is None else None
        # Fast path: same structure exactly.  Otherwise cut ``r`` at
        # ``tree``'s leaves (which also produces the error message).
        if leaves_r is not None and _flatten(r, leaves_r) == treedef._spec:
            others.append(leaves_r)
        else:
            others.append(treedef.flatten_up_to(r, f"tree_map: argument {i}"))
    if treedef is _LEAF_DEF:
        return f(leaves[0], *[o[0] for o in others])
    return _build(treedef._spec,
                  iter([f(*xs) for xs in zip(leaves, *others)]))


_NO_INITIALIZER = object()


def tree_reduce(function, tree, initializer=_NO_INITIALIZER, is_leaf=None):
    """``functools.reduce(function, tree_leaves(tree)[, initializer])``."""
    leaves = tree_leaves(tree, is_leaf)
    if initializer is _NO_INITIALIZER:
        return functools.reduce(function, leaves)
    return functools.reduce(function, leaves, initializer)


# ---------------------------------------------------------------------------
# Flat buffers: ravel / unravel and the segment table.
# ---------------------------------------------------------------------------

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


def _leaf_dtype(x):
    dt = getattr(x, "dtype", None)
    return dt if isinstance(dt, np.dtype) else np.asarray(x).dtype


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


# ---------------------------------------------------------------------------
# Arithmetic helpers (jaxopt.tree_util, optax.tree_utils), leaf by leaf.
# ---------------------------------------------------------------------------

def tree_add(tree_x, tree_y, *other_trees):
    """``x + y (+ others...)``, leaf by leaf."""
    return tree_map(lambda *xs: functools.reduce(operator.add, xs),
                    tree_x, tree_y, *other_trees)


def tree_sub(tree_x, tree_y):
    """``x - y``, leaf by leaf."""
    return tree_map(operator.sub, tree_x, tree_y)


def tree_mul(tree_x, tree_y):
    """``x * y``, leaf by leaf."""
    return tree_map(operator.mul, tree_x, tree_y)


def tree_div(tree_x, tree_y):
    """``x / y``, leaf by leaf."""
    return tree_map(operator.truediv, tree_x, tree_y)


def tree_scalar_mul(scalar, tree_x):
    """``scalar * x`` (jaxopt name)."""
    return tree_map(lambda x: scalar * x, tree_x)


def tree_scale(scalar, tree):
    """``scalar * x`` (optax name)."""
    return tree_map(lambda x: scalar * x, tree)


def tree_add_scalar_mul(tree_x, scalar, tree_y):
    """``x + scalar * y`` (jaxopt name); ``None`` leaves of x stay None."""
    return tree_map(lambda x, y: None if x is None else x + scalar * y,
                    tree_x, tree_y, is_leaf=_is_none)


tree_add_scale = tree_add_scalar_mul  # optax's name for the same thing


def tree_negative(tree):
    """``-x``, leaf by leaf."""
    return tree_map(np.negative, tree)


def tree_reciprocal(tree):
    """``1 / x`` via ``np.reciprocal``, leaf by leaf."""
    return tree_map(np.reciprocal, tree)


def tree_conj(tree):
    """Complex conjugate, leaf by leaf."""
    return tree_map(np.conj, tree)


def tree_real(tree):
    """Real part, leaf by leaf."""
    return tree_map(np.real, tree)


def tree_imag(tree):
    """Imaginary part, leaf by leaf."""
    return tree_map(np.imag, tree)


def _sum_in_order(values, start):
    """Left-to-right sum in leaf order (``jax.tree.reduce(add, ...)``)."""
    total = start
    for v in values:
        total = total + v
    return total


def tree_vdot(tree_x, tree_y):
    """``sum_i vdot(x_i, y_i)`` (conjugating x), summed in leaf order."""
    vdots = [_dense.vdot(a, b) for a, b in
             zip(tree_leaves(tree_x), tree_structure(tree_x).flatten_up_to(
                 tree_y, "tree_vdot: tree_y"))]
    if not vdots:
        return np.float64(0.0)
    return _sum_in_order(vdots[1:], vdots[0])


def tree_vdot_real(tree_x, tree_y):
    """Real part of ``tree_vdot(tree_x, tree_y)``, leaf by leaf then summed."""
    vdots = [np.real(_dense.vdot(a, b)) for a, b in
             zip(tree_leaves(tree_x), tree_structure(tree_x).flatten_up_to(
                 tree_y, "tree_vdot_real: tree_y"))]
    if not vdots:
        return np.float64(0.0)
    return _sum_in_order(vdots[1:], vdots[0])


def tree_dot(tree_x, tree_y):
    """``np.dot`` leaf by leaf (a pytree, not a scalar; jaxopt)."""
    return tree_map(_dense.dot, tree_x, tree_y)


def tree_sum(tree):
    """Sum of all elements: ``np.sum`` per leaf, then added in leaf order."""
    sums = [np.sum(x) for x in tree_leaves(tree)]
    if not sums:
        return np.float64(0.0)
    return _sum_in_order(sums[1:], sums[0])


def _abs_sq(x):
    if np.iscomplexobj(x):
        return np.square(np.real(x)) + np.square(np.imag(x))
    return np.square(x)


def tree_l2_norm(tree, squared=False):
    """``sqrt(sum |x|^2)`` over all elements (jaxopt)."""
    sqnorm = tree_sum([_abs_sq(x) for x in tree_leaves(tree)])
    return sqnorm if squared else np.sqrt(sqnorm)


def tree_max(tree):
    """Largest element over all leaves (empty leaves skipped; -inf if none)."""
    maxes = [np.max(x) for x in tree_leaves(tree) if np.size(x)]
    if not maxes:
        return np.float64(-np.inf)
    return functools.reduce(np.maximum, maxes)


def tree_min(tree):
    """Smallest element over all leaves (empty leaves skipped; inf if none)."""
    mins = [np.min(x) for x in tree_leaves(tree) if np.size(x)]
    if not mins:
        return np.float64(np.inf)
    return functools.reduce(np.minimum, mins)


def tree_inf_norm(tree):
    """``max |x|`` over all elements (jaxopt)."""
    return tree_max(tree_map(np.abs, tree))


def tree_norm(tree, ord=None, squared=False):  # noqa: A002 (optax's name)
    """Vector norm of the whole tree: ``ord`` in None/2/'fro', 1, inf (optax)."""
    if ord is None or ord == 2 or ord == "fro":
        return tree_l2_norm(tree, squared=squared)
    if ord == 1:
        ret = tree_sum(tree_map(np.abs, tree))
    elif ord == np.inf or ord in ("inf", "infinity"):
        ret = tree_max(tree_map(np.abs, tree))
    else:
        raise ValueError(f"tree_norm: unsupported ord={ord!r}; expected "
                         "None, 2, 'fro', 1 or inf")
    return _abs_sq(ret) if squared else ret


def tree_size(tree):
    """Total number of elements over all leaves."""
    return int(_sum_in_order((np.size(x) for x in tree_leaves(tree)), 0))


def tree_zeros_like(tree, dtype=None):
    """A tree of zeros shaped like ``tree``."""
    return tree_map(lambda x: np.zeros_like(x, dtype=dtype), tree)


def tree_ones_like(tree, dtype=None):
    """A tree of ones shaped like ``tree``."""
    return tree_map(lambda x: np.ones_like(x, dtype=dtype), tree)


def tree_full_like(tree, fill_value, dtype=None):
    """A tree filled with ``fill_value``, shaped like ``tree``."""
    return tree_map(lambda x: np.full_like(x, fill_value, dtype=dtype), tree)


def tree_where(condition, tree_x, tree_y):
    """``np.where(condition, x, y)`` leaf by leaf.

    Any of the three may be a single array (a bare leaf) broadcast to the
    others' structure, as in jaxopt.
    """
    trees = (condition, tree_x, tree_y)
    defs = [tree_structure(t) for t in trees]
    inner = [d for d in defs if d is not _LEAF_DEF]
    if not inner:
        return np.where(condition, tree_x, tree_y)
    treedef = inner[0]
    names = ("condition", "tree_x", "tree_y")
    columns = []
    for t, d, name in zip(trees, defs, names):
        if d is _LEAF_DEF:
            columns.append([t] * treedef.num_leaves)
        else:
            columns.append(treedef.flatten_up_to(t, f"tree_where: {name}"))
    return treedef.unflatten([np.where(*xs) for xs in zip(*columns)])


def tree_clip(tree, min_value=None, max_value=None):
    """``np.clip(x, min_value, max_value)`` leaf by leaf (None: no bound)."""
    if min_value is None and max_value is None:
        return tree_map(np.asarray, tree)
    return tree_map(lambda x: np.clip(x, min_value, max_value), tree)


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


def _weighted_sum(weights, x):
    x = np.asarray(x)
    w = np.asarray(weights)
    if x.ndim == 0 or w.ndim != 1 or w.shape[0] != x.shape[0]:
        return np.tensordot(w, x, axes=1)     # cpu-ok: raises numpy's error for these shapes
    return _dense.dot(w, x.reshape(x.shape[0], -1)).reshape(x.shape[1:])


def tree_average(trees, weights):
    """``tensordot(weights, x, axes=1)`` per leaf: a weighted sum over axis 0."""
    return tree_map(lambda x: _weighted_sum(weights, x), trees)


def tree_allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """True if every pair of leaves is ``np.allclose``; structures must match."""
    return all(np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan)
               for x, y in zip(tree_leaves(a), tree_structure(a).flatten_up_to(
                   b, "tree_allclose: b")))


# ---------------------------------------------------------------------------
# Moments (optax.tree_utils/_tree_math.py).  The order of operations mirrors
# optax exactly; ``None`` leaves of ``updates`` stay None.
# ---------------------------------------------------------------------------

def _is_none(x):
    return x is None


def tree_update_moment(updates, moments, decay, order):
    """EMA of the ``order``-th moment: ``(1-decay) * g**order + decay * m``."""
    return tree_map(
        lambda g, t: None if g is None else (1 - decay) * (g ** order)
        + decay * t,
        updates, moments, is_leaf=_is_none)


def tree_update_infinity_moment(updates, moments, decay, eps):
    """EMA of the infinity norm: ``max(|g| + eps, decay * m)``."""
    return tree_map(
        lambda g, t: None if g is None else np.maximum(np.abs(g) + eps,
                                                       decay * t),
        updates, moments, is_leaf=_is_none)


def tree_update_moment_per_elem_norm(updates, moments, decay, order):
    """EMA of ``|g|**order``: ``g**order`` if real, ``|g|^2**(order/2)`` if not."""
    def orderth_norm(g):
        if not np.iscomplexobj(g):
            return g ** order
        half_order = order / 2
        if float(half_order).is_integer():
            half_order = int(half_order)
        return np.real(np.conj(g) * g) ** half_order

    return tree_map(
        lambda g, t: None if g is None else (1 - decay) * orderth_norm(g)
        + decay * t,
        updates, moments, is_leaf=_is_none)


def tree_bias_correction(moment, decay, count):
    """``m / (1 - decay**count)``; the correction is cast to each leaf's dtype.

    As in optax, ``1 - decay**count`` is computed first (in the precision of
    ``decay``/``count``), then cast to the leaf dtype, then divided.
    """
    correction = np.asarray(1 - decay ** count)
    return tree_map(lambda t: t / correction.astype(_leaf_dtype(t)), moment)


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
