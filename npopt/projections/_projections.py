"""optax 0.2.8's projections (``optax/projections/_projections.py``), over
npopt.projection's kernels. Each function checks all its arguments before it
computes anything; the order of operations is optax's.
"""
import numpy as np

from .. import tree as _tree
from .._checks import _describe, check_number
from ..projection import box as _box_mod
from ..projection._args import _cast, _is_scalar, _leaf, _radius, _tree_leaves_float
from ..projection.simplex import _simplex


# ---------------------------------------------------------------------------
# argument handling
# ---------------------------------------------------------------------------

def _scale(scale, positive):
    """``scale``: a finite number, > 0 (positive) or >= 0; as a Python float."""
    return _radius("scale", scale, positive=positive)


def _like_x(name, a, leaves, treedef):
    """The leaves of ``a``, a float pytree with the structure and shapes of ``x``."""
    try:
        a_leaves = treedef.flatten_up_to(a, name)
    except ValueError as e:
        raise ValueError(f"{name}: expected a pytree with the structure of x; {e}") from None
    a_leaves = [_leaf(name, v) for v in a_leaves]
    for v, av in zip(leaves, a_leaves):
        if av.shape != v.shape:
            raise ValueError(f"{name}: expected the shapes of x's leaves, got shape "
                             f"{av.shape} for a leaf of shape {v.shape}")
    return a_leaves


def _check_tree(tree):
    """Checks the leaves of a tree for the elementwise projections (which name
    their argument ``x`` in npopt.projection's messages) as ``tree``."""
    for v in _tree.tree_leaves(tree):
        _leaf("tree", v, device_ok=True)
    return tree


def _scalar_b(b):
    if not _is_scalar(b):
        raise TypeError(f"b: expected a scalar, got {_describe(b)}")
    b = check_number("b", b)
    return b


def _rebuild(treedef, values, leaves):
    """The tree of ``values`` cast to the dtypes of ``leaves`` (leaf by leaf)."""
    return treedef.unflatten([np.asarray(v, x.dtype) for v, x in zip(values, leaves)])


def _flat_nonempty(name, leaves, treedef):
    flat, unravel = _tree.ravel(treedef.unflatten(leaves))
    if flat.size == 0:
        raise ValueError(f"{name}: expected a tree with at least one entry (the set is "
                         "empty for a tree without entries)")
    return flat, unravel


def _simplex_flat(flat, scale):
    """``scale * proj_unit_simplex(flat / scale)`` (the kernel); NaN if any entry
    is not finite (a sort-based projection is meaningless there)."""
    if not np.all(np.isfinite(flat)):
        return np.full_like(flat, np.nan)
    return _simplex(flat, scale)


# ---------------------------------------------------------------------------
# boxes: npopt.projection's elementwise kernels
# ---------------------------------------------------------------------------

def projection_non_negative(tree):
    r"""Projection onto the non-negative orthant.

    .. math::  \operatorname{argmin}_{p \ge 0} \|x - p\|_2^2 = \max(x, 0)

    elementwise (``jax.nn.relu``; NaN stays NaN).

    Args:
      tree: tree to project (NumPy or CUDA leaves).
    Returns:
      projected tree, with the same structure as ``tree``.
    """
    return _box_mod.projection_non_negative(_check_tree(tree))


def projection_box(tree, lower, upper):
    r"""Projection onto box constraints.

    .. math::  \operatorname{argmin}_{\text{lower} \le p \le \text{upper}}
       \|x - p\|_2^2 = \operatorname{clip}(x, \text{lower}, \text{upper})

    elementwise (``jnp.clip``; NaN stays NaN).

    Args:
      tree: tree to project (NumPy or CUDA leaves).
      lower: lower bound, a scalar or a tree with the same structure as
        ``tree`` (leaves: scalars or arrays broadcastable to their leaf of
        ``tree``). A scalar applies to every leaf (optax needs a tree here).
      upper: upper bound, the same; ``lower <= upper`` is required (optax's
        ``jnp.clip`` returns ``upper`` where ``lower > upper``). Bounds are cast
        to each leaf's dtype.
    Returns:
      projected tree, with the same structure as ``tree``.
    """
    return _box_mod._box(_check_tree(tree), lower, upper, "lower", "upper")


def projection_hypercube(tree, scale=1):
    r"""Projection onto the hypercube ``0 <= p <= scale`` (by default the
    unit hypercube): ``projection_box(tree, lower=0, upper=scale)``.

    Args:
      tree: tree to project.
      scale: scale of the hypercube, a number >= 0 or a tree (default: 1).
    Returns:
      projected tree, with the same structure as ``tree``.
    """
    if _is_scalar(scale):
        _scale(scale, positive=False)
    return _box_mod._box(_check_tree(tree), 0.0, scale, "scale", "scale")


def projection_linf_ball(tree, scale=1):
    r"""Projection onto the l-infinity ball ``||p||_inf <= scale``:
    ``clip(x, -scale, scale)`` elementwise.

    Args:
      tree: tree to project.
      scale: radius of the ball, a number >= 0 (default: 1).
    Returns:
      projected tree, with the same structure as ``tree``.
    """
    s = _scale(scale, positive=False)
    return _box_mod._box(_check_tree(tree), -s, s, "scale", "scale")


# ---------------------------------------------------------------------------
# simplex and l1: the whole tree as one vector, npopt.projection's sort kernel
# ---------------------------------------------------------------------------

def projection_simplex(tree, scale=1):
    r"""Projection onto a simplex, the whole tree seen as one vector:

    .. math::  \operatorname{argmin}_p \|x - p\|_2^2 \quad \text{s.t.} \quad
       p \ge 0, \; p^\top 1 = \text{scale}

    With ``z = x / scale`` sorted decreasingly into ``u`` and
    ``rho = #{k : 1/k + (u_k - (u_1 + ... + u_k)/k) > 0}``,
    ``p = scale * max(1/rho + (z - (u_1 + ... + u_rho)/rho), 0)``
    (Held, Wolfe & Crowder 1974; Duchi et al., ICML 2008, Fig. 1), computed on
    ``ravel_pytree(tree)`` (promoted dtype) and cast back to each leaf's dtype,
    as optax does. A tree with a NaN or infinite entry gives NaN everywhere.

    Args:
      tree: tree to project (at least one entry).
      scale: value the projected tree should sum to, > 0 (default: 1).
    Returns:
      projected tree, a tree with the same structure as ``tree``.
    """
    s = _scale(scale, positive=True)
    leaves, treedef = _tree_leaves_float("tree", tree)
    flat, unravel = _flat_nonempty("tree", leaves, treedef)
    return unravel(_simplex_flat(flat, s))


def _l1_sphere(leaves, treedef, s):
    # sign +1 at 0 (optax: jnp.sign, 0 there), see the package docstring
    signs = [np.where(v < 0, v.dtype.type(-1), v.dtype.type(1)) for v in leaves]
    flat, unravel = _flat_nonempty("tree", [np.abs(v) for v in leaves], treedef)
    proj = _tree.tree_leaves(unravel(_simplex_flat(flat, s)))
    return _rebuild(treedef, [g * p for g, p in zip(signs, proj)], leaves)


def projection_l1_sphere(tree, scale=1):
    r"""Projection onto the l1 sphere ``{||p||_1 = scale}``:
    ``p = sign(x) * projection_simplex(|x|, scale)``, the whole tree as one
    vector.

    One deviation from optax: where ``x_i = 0`` npopt takes ``sign = +1``
    (either sign gives a nearest point). optax's ``jnp.sign`` gives 0 there,
    which drops the mass the simplex projection puts on such entries when
    ``||x||_1 < scale``, so its result is then not on the sphere. Wherever
    ``x`` has no zero entry, or ``||x||_1 >= scale``, the two agree.

    Args:
      tree: tree to project (at least one entry).
      scale: radius of the sphere, > 0 (default: 1).
    Returns:
      projected tree, with the same structure as ``tree``.
    """
    s = _scale(scale, positive=True)
    leaves, treedef = _tree_leaves_float("tree", tree)
    return _l1_sphere(leaves, treedef, s)


def projection_l1_ball(tree, scale=1):
    r"""Projection onto the l1 ball ``{||p||_1 <= scale}``: ``tree`` itself
    when ``||x||_1 <= scale``, else its projection onto the l1 sphere
    (Duchi et al., ICML 2008), the whole tree as one vector.

    Args:
      tree: tree to project.
      scale: radius of the ball, > 0 (default: 1).
    Returns:
      projected tree, with the same structure as ``tree`` (fresh arrays).
    """
    s = _scale(scale, positive=True)
    leaves, treedef = _tree_leaves_float("tree", tree)
    l1 = _tree.tree_sum([np.abs(v) for v in leaves])
    if l1 <= _cast(s, np.asarray(l1).dtype):
        return treedef.unflatten([np.array(v) for v in leaves])
    return _l1_sphere(leaves, treedef, s)


# ---------------------------------------------------------------------------
# l2: rescaling the whole tree
# ---------------------------------------------------------------------------

def projection_l2_sphere(tree, scale=1):
    r"""Projection onto the l2 sphere ``{||p||_2 = scale}``:
    ``p = (scale / ||x||_2) x``, the norm over the whole tree. The zero tree
    (every point of the sphere is nearest) gives NaN, as in optax.

    Args:
      tree: tree to project.
      scale: radius of the sphere, >= 0 (default: 1).
    Returns:
      projected tree, with the same structure as ``tree``.
    """
    s = _scale(scale, positive=False)
    leaves, treedef = _tree_leaves_float("tree", tree)
    norm = _tree.tree_l2_norm(leaves)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = _cast(s, np.asarray(norm).dtype) / norm
        return _rebuild(treedef, [factor * v for v in leaves], leaves)


def projection_l2_ball(tree, scale=1):
    r"""Projection onto the l2 ball ``{||p||_2 <= scale}``, without a branch:

    .. math::  p = \frac{\text{scale}}{\sqrt{\max(\|x\|_2^2, \text{scale}^2)}} \, x

    (optax's formula; the factor is exactly 1 inside the ball in float64).
    ``scale = 0`` gives the zero tree (optax: NaN for the zero tree).

    Args:
      tree: tree to project.
      scale: radius of the ball, >= 0 (default: 1).
    Returns:
      projected tree, with the same structure as ``tree``.
    """
    s = _scale(scale, positive=False)
    leaves, treedef = _tree_leaves_float("tree", tree)
    sq = _tree.tree_l2_norm(leaves, squared=True)
    dt = np.asarray(sq).dtype
    if s == 0:
        factor = dt.type(0)
    else:
        # optax: scale / jnp.sqrt(jnp.maximum(sq, scale**2)), scale**2 a Python float
        factor = _cast(s, dt) / np.sqrt(np.maximum(sq, _cast(s ** 2, dt)))
    return _rebuild(treedef, [factor * v for v in leaves], leaves)


# ---------------------------------------------------------------------------
# lines, hyperplanes and halfspaces: closed forms with tree inner products
# ---------------------------------------------------------------------------

def projection_vector(x, a):
    r"""Projection onto the line spanned by ``a``:

    .. math::  \operatorname{proj}_a x = \frac{\langle x, a \rangle}{\langle a, a \rangle} a

    ``a = 0`` gives the zero tree (the projection onto ``{0}``; optax: NaN).

    Args:
      x: tree to project.
      a: tree onto which to project, with the structure and shapes of ``x``.
    Returns:
      tree with the same structure as ``x`` (and the dtypes of ``x``).
    """
    leaves, treedef = _tree_leaves_float("x", x)
    a_leaves = _like_x("a", a, leaves, treedef)
    aa = _tree.tree_vdot(a_leaves, a_leaves)
    if aa == 0:
        return _rebuild(treedef, [np.zeros_like(v) for v in leaves], leaves)
    scalar = _tree.tree_vdot(leaves, a_leaves) / aa
    return _rebuild(treedef, [scalar * av for av in a_leaves], leaves)


def _plane(x, a, b, half):
    leaves, treedef = _tree_leaves_float("x", x)
    a_leaves = _like_x("a", a, leaves, treedef)
    b = _scalar_b(b)
    aa = _tree.tree_vdot(a_leaves, a_leaves)
    if not aa > 0:
        raise ValueError("a: expected a non-zero tree (a = 0 defines no hyperplane)")
    scalar = (b - _tree.tree_vdot(leaves, a_leaves)) / aa
    if half:
        scalar = np.minimum(scalar, 0)      # jnp.clip(scalar, max=0)
    return _rebuild(treedef, [v + scalar * av for v, av in zip(leaves, a_leaves)], leaves)


def projection_hyperplane(x, a, b):
    r"""Projection onto the hyperplane ``{y : <a, y> = b}``:

    .. math::  y = x + \frac{b - \langle x, a \rangle}{\langle a, a \rangle} a

    Args:
      x: tree to project.
      a: tree defining the hyperplane, non-zero, with the structure and shapes
        of ``x``.
      b: scalar defining the hyperplane.
    Returns:
      tree with the same structure as ``x``.
    """
    return _plane(x, a, b, half=False)


def projection_halfspace(x, a, b):
    r"""Projection onto the halfspace ``{y : <a, y> <= b}``:

    .. math::  y = x + \min\Big(\frac{b - \langle x, a \rangle}{\langle a, a \rangle}, 0\Big) a

    Args:
      x: tree to project.
      a: tree defining the halfspace, non-zero, with the structure and shapes
        of ``x``.
      b: scalar defining the halfspace.
    Returns:
      tree with the same structure as ``x``.
    """
    return _plane(x, a, b, half=True)
