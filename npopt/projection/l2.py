"""The l2 sphere and ball, by rescaling the whole pytree:
``projection_l2_sphere``, ``projection_l2_ball``.
"""
import numpy as np

from .. import tree as _tree
from ._args import _radius, _tree_leaves_float


def _scale_leaves(leaves, treedef, factor):
    return treedef.unflatten([np.asarray(factor * v, v.dtype) for v in leaves])


def projection_l2_sphere(x, value=1.0):
    r"""Projection onto the l2 sphere ``{||p||_2 = value}``: ``p = value * x / ||x||``.

    The norm is over the whole pytree. As in jaxopt, ``x = 0`` (where every
    point of the sphere is a projection) gives NaN.

    Args:
      x: pytree to project.
      value: radius of the sphere, >= 0.
    Returns:
      output pytree, with the same structure as ``x``.
    """
    value = _radius("value", value, positive=False)
    leaves, treedef = _tree_leaves_float("x", x)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = value / _tree.tree_l2_norm(leaves)
        return _scale_leaves(leaves, treedef, factor)


def projection_l2_ball(x, max_value=1.0):
    r"""Projection onto the l2 ball ``{||p||_2 <= max_value}``:
    ``x`` if ``||x|| <= max_value``, else ``max_value * x / ||x||``.

    Args:
      x: pytree to project (the norm is over the whole tree).
      max_value: radius of the ball, >= 0.
    Returns:
      output pytree, with the same structure as ``x``.
    """
    max_value = _radius("max_value", max_value, positive=False)
    leaves, treedef = _tree_leaves_float("x", x)
    l2 = _tree.tree_l2_norm(leaves)
    if l2 <= max_value:
        return treedef.unflatten([np.array(v) for v in leaves])
    return _scale_leaves(leaves, treedef, max_value / l2)
