r"""Euclidean projections over pytrees: ``optax.projections`` for NumPy.

Every function solves

.. math::  \mathrm{proj}_C(x) = \operatorname{argmin}_{p \in C} \|x - p\|_2^2

where ``x`` is the whole pytree seen as one vector (the spheres are not
convex, ``projection_vector`` projects onto the line spanned by ``a``).
Names, argument names, argument order and defaults are optax 0.2.8's: a
tree comes first, then ``scale`` (or ``lower, upper`` / ``a, b``), and the
result is a pytree of the structure of ``tree``.

=====================================  ===========================================
function                               set
=====================================  ===========================================
projection_non_negative(tree)          p >= 0
projection_box(tree, lower, upper)     lower <= p <= upper
projection_hypercube(tree, scale=1)    0 <= p <= scale
projection_linf_ball(tree, scale=1)    ||p||_inf <= scale
projection_simplex(tree, scale=1)      p >= 0, sum of all entries of p = scale
projection_l1_sphere(tree, scale=1)    ||p||_1 = scale
projection_l1_ball(tree, scale=1)      ||p||_1 <= scale
projection_l2_sphere(tree, scale=1)    ||p||_2 = scale
projection_l2_ball(tree, scale=1)      ||p||_2 <= scale
projection_vector(x, a)                span{a}
projection_hyperplane(x, a, b)         <a, p> = b
projection_halfspace(x, a, b)          <a, p> <= b
=====================================  ===========================================

``npopt.projection`` (singular) is jaxopt's module, with jaxopt's
signatures (``projection_simplex(x, value)``, ``projection_box(x, (lower,
upper))``); the two share their kernels: the elementwise four run the numba
kernels of ``npopt.projection`` (on the CPU, or on the GPU for CUDA
leaves), the simplex and l1 projections its sorting kernel, applied to the
whole tree ravelled into one vector (``jax.flatten_util.ravel_pytree``, as
optax does; jaxopt projects arrays only).

Where npopt differs from optax on purpose:

* dtypes are kept leaf by leaf: float32 in, float32 out. optax under x64
  returns float64 leaves for float32 trees from ``simplex`` and
  ``l1_sphere`` (its unit-simplex step divides integers, which gives
  float64), and its ``l1_ball`` raises on float32 trees (the two branches of
  its ``lax.cond`` then differ in dtype); in trees mixing float32 and
  float64 leaves (or with float64 array bounds) its ``l2_ball``,
  ``l2_sphere``, ``box``, ``vector``, ``hyperplane`` and ``halfspace``
  return float64 for the float32 leaves. npopt computes the simplex of a
  float32 tree in float32 (agreeing with optax to 1e-7 relative). Integer
  leaves are rejected (optax promotes them to float).
* ``projection_box``/``hypercube`` accept a scalar bound for a tree of
  several leaves (optax's ``jax.tree.map`` needs a tree of bounds there) and
  raise on ``lower > upper`` (``jnp.clip`` returns ``upper``).
* ``projection_l1_sphere`` takes the sign +1 at entries equal to 0, so the
  result lies on the sphere also when ``||x||_1 < scale`` (optax's
  ``jnp.sign`` gives 0 there and drops the mass of those entries); wherever
  ``x`` has no zero entry, or ``||x||_1 >= scale``, the two agree.
* Degenerate inputs where optax divides 0 by 0: ``projection_l2_ball`` with
  ``scale = 0`` gives the zero tree, ``projection_vector`` with ``a = 0``
  gives the zero tree (the projection onto ``{0}``); ``hyperplane`` and
  ``halfspace`` with ``a = 0`` (no hyperplane) raise. ``projection_l2_sphere``
  of the zero tree is NaN, as in optax (every point of the sphere is
  nearest).
* Radii are checked: ``scale`` must be a finite number, > 0 for the simplex
  and the l1 sets, >= 0 for the others.

References: Duchi, Shalev-Shwartz, Singer & Chandra, "Efficient projections
onto the l1-ball for learning in high dimensions", ICML 2008; Condat, "Fast
projection onto the simplex and the l1 ball", Math. Prog. 2016.
"""
from ._projections import (projection_box, projection_halfspace, projection_hypercube,
                           projection_hyperplane, projection_l1_ball, projection_l1_sphere,
                           projection_l2_ball, projection_l2_sphere, projection_linf_ball,
                           projection_non_negative, projection_simplex, projection_vector)

__all__ = [
    "projection_box", "projection_halfspace", "projection_hypercube",
    "projection_hyperplane", "projection_l1_ball", "projection_l1_sphere",
    "projection_l2_ball", "projection_l2_sphere", "projection_linf_ball",
    "projection_non_negative", "projection_simplex", "projection_vector",
]
