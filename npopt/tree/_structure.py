"""Structure: the node table, ``TreeDef``, flatten / unflatten and ``tree_map``.

The rules (which types are nodes, the order of dict keys, ``None`` as an
empty subtree) are those of the package docstring (``npopt.tree``). This
module imports nothing of npopt: ``npopt._flat``, which lays trees out as
flat buffers, builds on it.
"""

from collections import OrderedDict, defaultdict
import functools

import numpy as np

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


_RECENT = [None, None]     # [the TreeDef of arrays flattened twice in a row, the last spec]


def _flatten_recent(tree):
    """``(leaves, treedef)`` when ``tree`` is exactly a tree of arrays of
    the structure last flattened twice in a row, by its straight-line cut
    (``TreeDef.fast``: a tenth of the recursive walk), else None."""
    td = _RECENT[0]
    if td is None:
        return None
    try:
        leaves = td._fast[0](tree)
    except Exception:     # noqa: BLE001 - another structure
        return None
    for x in leaves:
        if type(x) is not _ndarray:      # (a subtree, None or a scalar at a leaf: the walk)
            return None
    return leaves, td


def _remember_recent(spec, leaves):
    """After a walk: the structure becomes recent when it was also the
    previous one walked and its leaves are arrays (its straight line is
    written once)."""
    if spec != _RECENT[1]:
        _RECENT[1] = spec
        return None
    td = TreeDef(spec, len(leaves))
    if all(type(x) is _ndarray for x in leaves) and td.fast() is not None:
        _RECENT[0] = td
    return td


def tree_flatten(tree, is_leaf=None):
    """Return ``(leaves, treedef)``; leaves in JAX order (dict keys sorted)."""
    if is_leaf is None:
        if type(tree) is _ndarray:
            return [tree], _LEAF_DEF
        found = _flatten_recent(tree)
        if found is not None:
            return found
        leaves = []
        spec = _flatten(tree, leaves)
        if spec is not _LEAF:
            td = _remember_recent(spec, leaves)
            if td is not None:
                return leaves, td
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
    if treedef is _RECENT[0]:          # its straight line: cut the others, build the result
        cut, build = treedef._fast
        try:
            others = [cut(r) for r in rest]
        except Exception:     # noqa: BLE001 - the general way says what differs
            others = None
        if others is not None:
            return build([f(*xs) for xs in zip(leaves, *others)])
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


def _is_none(x):
    return x is None
