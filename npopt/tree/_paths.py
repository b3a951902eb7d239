"""Paths into a pytree, and optax's get / set by key.

A path is a tuple of key entries, one per level, as in ``jax.tree_util``:
``DictKey(key)`` for a dict entry, ``SequenceKey(idx)`` for a list or tuple
element, ``GetAttrKey(name)`` for a namedtuple field. optax's
``tree_get_all_with_path``, ``tree_get`` and ``tree_set`` search an optimizer
state for a key (a dict key, a namedtuple field or a namedtuple's class
name); their paths name the namedtuple of each field (``NamedTupleKey``), so
that two states with a field of the same name can be told apart::

    >>> import numpy as np, npopt
    >>> state = npopt.adam(1e-3).init({"w": np.zeros(3)})
    >>> npopt.tree.tree_get(state, "count")
    array(0, dtype=int32)
    >>> new = npopt.tree.tree_set(state, count=np.asarray(5, np.int32))
    >>> int(npopt.tree.tree_get(new, "count"))
    5
"""
import dataclasses
from collections import OrderedDict, defaultdict

from ._structure import _node


@dataclasses.dataclass(frozen=True)
class DictKey:
    """A dict entry in a path (``jax.tree_util.DictKey``)."""
    key: object

    def __str__(self):
        return f"[{self.key!r}]"


@dataclasses.dataclass(frozen=True)
class SequenceKey:
    """A list or tuple element in a path (``jax.tree_util.SequenceKey``)."""
    idx: int

    def __str__(self):
        return f"[{self.idx!r}]"


@dataclasses.dataclass(frozen=True)
class GetAttrKey:
    """A namedtuple field in a path (``jax.tree_util.GetAttrKey``)."""
    name: str

    def __str__(self):
        return f".{self.name}"


@dataclasses.dataclass(frozen=True)
class NamedTupleKey:
    """A namedtuple field in optax's state paths: the tuple's class name too.

    Attributes:
      tuple_name: the namedtuple's class name (``"ScaleByAdamState"``).
      name: the field (``"mu"``).
    """
    tuple_name: str
    name: str

    def __str__(self):
        return f"{self.tuple_name}.{self.name}"


def keystr(path):
    """A path as text: ``"['w'][0].mu"`` (``jax.tree_util.keystr``)."""
    return "".join(str(k) for k in path)


def _is_named_tuple(x):
    return isinstance(x, tuple) and hasattr(x, "_fields")


def _children_with_keys(x):
    """(key entries, children) of a node, in flattening order; None for a leaf."""
    if x is None:
        return (), ()
    if _node(type(x)) is None:
        return None
    if _is_named_tuple(x):
        return tuple(GetAttrKey(f) for f in x._fields), tuple(x)
    if isinstance(x, (dict, OrderedDict, defaultdict)):
        keys = list(x) if type(x) is OrderedDict else sorted(x)
        return tuple(DictKey(k) for k in keys), tuple(x[k] for k in keys)
    return tuple(SequenceKey(i) for i in range(len(x))), tuple(x)


def tree_leaves_with_path(tree, is_leaf=None):
    """``[(path, leaf), ...]`` in ``tree_leaves`` order
    (``jax.tree_util.tree_leaves_with_path``)."""
    out = []

    def walk(path, x):
        if is_leaf is not None and is_leaf(x):
            out.append((path, x))
            return
        node = _children_with_keys(x)
        if node is None:
            out.append((path, x))
            return
        for k, child in zip(*node):
            walk((*path, k), child)

    walk((), tree)
    return out


def _leaves_with_named_tuple_path(tree, is_leaf=None):
    """As tree_leaves_with_path, a namedtuple's fields as NamedTupleKey
    (optax's ``_tree_leaves_with_named_tuple_path``)."""
    is_leaf_ = is_leaf if is_leaf is not None else (lambda _: False)
    out = []
    for path, node in tree_leaves_with_path(tree, lambda x: is_leaf_(x) or _is_named_tuple(x)):
        if is_leaf_(node) or not _is_named_tuple(node):
            out.append((path, node))
            continue
        for field in node._fields:
            for child_path, child in _leaves_with_named_tuple_path(getattr(node, field), is_leaf):
                out.append(((*path, NamedTupleKey(type(node).__name__, field), *child_path),
                            child))
    return out


def _has_keys(node, keys):
    if _is_named_tuple(node):
        return any(k in node._fields for k in keys) or type(node).__name__ in keys
    return isinstance(node, dict) and any(k in node for k in keys)


def _children_with_path(path, node):
    if _is_named_tuple(node):
        return [((*path, NamedTupleKey(type(node).__name__, f)), getattr(node, f))
                for f in node._fields]
    if isinstance(node, dict):
        return [((*path, DictKey(k)), v) for k, v in node.items()]
    raise ValueError(f"Subtree must be a dict or a NamedTuple. Got {type(node)}")


def _key_of(entry):
    if isinstance(entry, DictKey):
        return entry.key
    if isinstance(entry, SequenceKey):
        return entry.idx
    return entry.name


def _get_all_with_path(tree, key):
    found_in = [(p, s) for p, s in _leaves_with_named_tuple_path(
        tree, lambda x: _has_keys(x, (key,))) if _has_keys(s, (key,))]
    found = []
    for path, sub in found_in:
        if _is_named_tuple(sub):
            found.append((path, sub) if key == type(sub).__name__
                         else ((*path, NamedTupleKey(type(sub).__name__, key)), getattr(sub, key)))
        else:
            found.append(((*path, DictKey(key)), sub[key]))
    for path, sub in found_in:               # deeper matches, below each match
        for child_path, child in _children_with_path(path, sub):
            found += [((*child_path, *p), v) for p, v in _get_all_with_path(child, key)]
    return found


def tree_get_all_with_path(tree, key, filtering=None):
    """Every ``(path, value)`` of ``tree`` under ``key``: a dict key, a
    namedtuple field, or a namedtuple's class name (optax's).

    Args:
      tree: the tree to search (an optimizer state, say).
      key: the key, field or class name to look for.
      filtering: optional ``filtering(path, value) -> bool`` keeping some.
    """
    found = _get_all_with_path(tree, key)
    if filtering:
        found = [(p, v) for p, v in found if filtering(p, v)]
    return found


def tree_get(tree, key, default=None, filtering=None):
    """The one value of ``tree`` under ``key`` (see
    ``tree_get_all_with_path``); ``default`` if there is none.

    Raises:
      KeyError: if several values match.
    """
    found = tree_get_all_with_path(tree, key, filtering=filtering)
    if len(found) > 1:
        raise KeyError(f"Found multiple values for '{key}' in {tree}.")
    return found[0][1] if found else default


def tree_set(tree, filtering=None, /, **kwargs):
    """A copy of ``tree`` with the values under the keys of ``kwargs``
    replaced (optax's): ``tree_set(state, count=np.asarray(2))``.

    Args:
      tree: the tree (not modified).
      filtering: optional ``filtering(path, value) -> bool``: replace only
        the matches it accepts.
      **kwargs: key -> new value (a dict key, a namedtuple field, or a
        namedtuple's class name to replace the whole tuple).

    Raises:
      KeyError: if a key has no match (given the filtering).
    """
    for key in kwargs:
        if not tree_get_all_with_path(tree, key, filtering):
            raise KeyError(f"Found no values matching '{key}'"
                           + (" given the filtering operation" if filtering else "")
                           + f" in {tree}")
    keys = tuple(kwargs)

    def replace(path, node):
        if not _has_keys(node, keys):
            return node
        if (_is_named_tuple(node) and type(node).__name__ in kwargs
                and (filtering is None or filtering(path, node))):
            return kwargs[type(node).__name__]
        new = {}
        for child_path, child in _children_with_path(path, node):
            k = _key_of(child_path[-1])
            if k in kwargs and (filtering is None or filtering(child_path, child)):
                new[k] = kwargs[k]
            elif isinstance(child, (dict, list, tuple)):
                new[k] = replace(child_path, child)
            else:
                new[k] = child
        return node._replace(**new) if _is_named_tuple(node) else new

    def rebuild(path, x):
        if _has_keys(x, keys):
            return replace(path, x)
        node = _children_with_keys(x)
        if node is None or x is None:
            return x
        entries, children = node
        if _is_named_tuple(x):
            return type(x)(*[rebuild((*path, NamedTupleKey(type(x).__name__, e.name)), c)
                             for e, c in zip(entries, children)])
        if isinstance(x, dict):
            out = type(x)(x.default_factory) if isinstance(x, defaultdict) else type(x)()
            for e, c in zip(entries, children):
                out[e.key] = rebuild((*path, e), c)
            return out
        return type(x)(rebuild((*path, e), c) for e, c in zip(entries, children))

    return rebuild((), tree)
