"""jaxopt's ``tree_util``, name for name, with jaxopt's parameter names.

npopt.tree holds the functions (and optax's ``tree_utils`` spellings, whose
parameters are named differently: ``tree_add(tree_x, tree_y, *other_trees)``
there, ``tree_add(tree, *rest, is_leaf=None)`` here). Reductions are
npopt.tree's: summed in leaf order, without BLAS, the same on every CPU.
"""
import operator

from . import tree as _t
from .tree import (tree_add_scalar_mul, tree_conj, tree_dot, tree_imag, tree_map,
                   tree_negative, tree_real, tree_reduce, tree_scalar_mul, tree_vdot,
                   tree_vdot_real)
from .tree._structure import tree_structure, tree_unflatten

__all__ = ["broadcast_pytrees", "tree_add", "tree_add_scalar_mul", "tree_conj", "tree_div",
           "tree_dot", "tree_imag", "tree_inf_norm", "tree_l2_norm", "tree_map", "tree_mul",
           "tree_negative", "tree_ones_like", "tree_real", "tree_reduce", "tree_scalar_mul",
           "tree_sub", "tree_sum", "tree_vdot", "tree_vdot_real", "tree_where",
           "tree_zeros_like"]


_BARE_LEAF = tree_structure(0)


def broadcast_pytrees(*trees):
    """The trees, with each bare leaf (a single array) repeated into the
    structure the others share.

    Raises:
      ValueError: if two trees that are not bare leaves differ in structure.
    """
    defs = [tree_structure(t) for t in trees]
    shared = None
    for d in defs:
        if d == _BARE_LEAF:
            continue
        if shared is None:
            shared = d
        elif d != shared:
            raise ValueError(f"Pytrees are not broadcastable.: {shared} != {d}")
    if shared is None:
        return trees
    return tuple(t if d == shared else tree_unflatten(shared, [t] * shared.num_leaves)
                 for t, d in zip(trees, defs))


def tree_add(tree, *rest, is_leaf=None):
    """``x + y`` leaf by leaf."""
    return tree_map(operator.add, tree, *rest, is_leaf=is_leaf)


def tree_sub(tree, *rest, is_leaf=None):
    """``x - y`` leaf by leaf."""
    return tree_map(operator.sub, tree, *rest, is_leaf=is_leaf)


def tree_mul(tree, *rest, is_leaf=None):
    """``x * y`` leaf by leaf."""
    return tree_map(operator.mul, tree, *rest, is_leaf=is_leaf)


def tree_div(tree, *rest, is_leaf=None):
    """``x / y`` leaf by leaf."""
    return tree_map(operator.truediv, tree, *rest, is_leaf=is_leaf)


def tree_sum(tree_x):
    """The sum of all elements."""
    return _t.tree_sum(tree_x)


def tree_l2_norm(tree_x, squared=False):
    """``||tree_x||_2`` (its square if ``squared``)."""
    return _t.tree_l2_norm(tree_x, squared)


def tree_inf_norm(tree_x):
    """``max |x|`` over all elements."""
    return _t.tree_inf_norm(tree_x)


def tree_zeros_like(tree_x):
    """Zeros shaped like ``tree_x``."""
    return _t.tree_zeros_like(tree_x)


def tree_ones_like(tree_x):
    """Ones shaped like ``tree_x``."""
    return _t.tree_ones_like(tree_x)


def tree_where(cond, a, b):
    """``np.where(cond, a, b)`` leaf by leaf; any of the three may be a single
    array broadcast to the others' structure."""
    return _t.tree_where(cond, a, b)
