"""Arithmetic helpers (jaxopt.tree_util, optax.tree_utils), leaf by leaf:
each returns a tree of ``tree_x``'s structure."""

import functools
import operator

import numpy as np

from .. import _dense
from ._structure import _LEAF_DEF, _is_none, tree_map, tree_structure


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


def tree_dot(tree_x, tree_y):
    """``np.dot`` leaf by leaf (a pytree, not a scalar; jaxopt)."""
    return tree_map(_dense.dot, tree_x, tree_y)


def tree_zeros_like(tree, dtype=None):
    """A tree of zeros shaped like ``tree``."""
    return tree_map(lambda x: np.zeros_like(x, dtype=dtype), tree)


def tree_ones_like(tree, dtype=None):
    """A tree of ones shaped like ``tree``."""
    return tree_map(lambda x: np.ones_like(x, dtype=dtype), tree)


def tree_full_like(tree, fill_value, dtype=None):
    """A tree filled with ``fill_value``, shaped like ``tree``."""
    return tree_map(lambda x: np.full_like(x, fill_value, dtype=dtype), tree)


def tree_batch_shape(tree, shape=()):
    """Each leaf broadcast to leading batch dimensions ``shape``:
    ``(*shape, *leaf.shape)`` (a new array, not a read-only view)."""
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"shape: expected a tuple of ints, got {shape!r}") from None
    if any(s < 0 for s in shape):
        raise ValueError(f"shape: expected non-negative sizes, got {shape}")
    return tree_map(lambda x: np.array(np.broadcast_to(x, (*shape, *np.shape(x)))), tree)


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


def _weighted_sum(weights, x):
    x = np.asarray(x)
    w = np.asarray(weights)
    if x.ndim == 0 or w.ndim != 1 or w.shape[0] != x.shape[0]:
        return np.tensordot(w, x, axes=1)     # cpu-ok: raises numpy's error for these shapes
    return _dense.dot(w, x.reshape(x.shape[0], -1)).reshape(x.shape[1:])


def tree_average(trees, weights):
    """``tensordot(weights, x, axes=1)`` per leaf: a weighted sum over axis 0."""
    return tree_map(lambda x: _weighted_sum(weights, x), trees)
