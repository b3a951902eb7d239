"""Reductions over a whole tree (jaxopt.tree_util, optax.tree_utils): inner
products, sums, norms, extrema, sizes and ``tree_allclose``; values are
combined in leaf order."""

import functools

import numpy as np

from .. import _dense
from ._structure import tree_leaves, tree_map, tree_structure


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


def tree_sum(tree, associative_reduction=False):
    """Sum of all elements: ``np.sum`` per leaf, then added in leaf order.

    ``associative_reduction`` is optax's switch to let XLA reorder the sum of
    the leaves' sums (to compile faster); npopt has nothing to compile, so it
    is accepted and the order stays the same (the result does not depend on
    it).
    """
    if not isinstance(associative_reduction, (bool, np.bool_)):
        raise TypeError("associative_reduction: expected a bool, got "
                        f"{type(associative_reduction).__name__}")
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


def tree_allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """True if every pair of leaves is ``np.allclose``; structures must match."""
    return all(np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan)
               for x, y in zip(tree_leaves(a), tree_structure(a).flatten_up_to(
                   b, "tree_allclose: b")))
