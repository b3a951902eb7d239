r"""Euclidean (and Kullback-Leibler) projections: ``jaxopt.projection`` for NumPy.

Every function solves

.. math::  \mathrm{proj}_C(x) = \operatorname{argmin}_{p \in C} \|x - p\|_2^2

for a convex set ``C`` (the sparse simplex and the spheres are not convex; the
transport ``kl_`` variants use the KL divergence instead of the l2 distance).
Names, argument names, argument order and defaults are jaxopt 0.8.5's, so a
projection can be handed to a solver as ``projection(x, hyperparams)``
(``ProjectedGradient(fun, projection=projection_box)`` with
``hyperparams_proj=(lower, upper)`` passed to ``run``).

=====================================  =========================================  ==========
function                               set                                        method
=====================================  =========================================  ==========
projection_non_negative(x)             p >= 0                                     kernel
projection_box(x, (lower, upper))      lower <= p <= upper                        kernel
projection_hypercube(x, unit)          0 <= p <= unit                             kernel
projection_linf_ball(x, max_value)     ||p||_inf <= max_value                     kernel
projection_simplex(x, value)           p >= 0, sum p = value                      sort (kernel, per row)
projection_sparse_simplex(x, max_nz)   ... and at most max_nz non-zeros          top-k + sort
projection_l1_sphere / _l1_ball        ||p||_1 = / <= value                       sort
projection_l2_sphere / _l2_ball        ||p||_2 = / <= value                       rescaling
projection_hyperplane / _halfspace     <a, p> = / <= b                            closed form
projection_affine_set(x, (A, b))       A p = b                                    least squares
projection_polyhedron(x, (A,b,G,h))    A p = b, G p <= h                          LDP / NNLS
projection_box_section(x, (al,be,w,c)) al <= p <= be, <w, p> = c                  bisection
projection_transport(S, (a, b))        P >= 0, P 1 = a, P^T 1 = b                 semismooth Newton
projection_birkhoff(S)                 doubly stochastic                          semismooth Newton
kl_projection_transport / _birkhoff    same, KL divergence to exp(S)              Newton
=====================================  =========================================  ==========

Conventions (as jaxopt, with the differences said here):

* ``non_negative``, ``box``, ``hypercube``, ``linf_ball``, ``l2_sphere``,
  ``l2_ball``, ``hyperplane`` and ``halfspace`` take pytrees (the l2 norm and
  the inner products are over the whole tree); the others take arrays. The
  elementwise four run as numba kernels, on the CPU for NumPy leaves and on
  the GPU for CUDA arrays (the others refuse CUDA arrays rather than copy).
* ``simplex``, ``sparse_simplex``, ``l1_sphere`` and ``l1_ball`` project a
  vector; given an array with more dimensions they project each vector along
  the last axis, which is what ``jax.vmap`` of the jaxopt function gives
  (jaxopt itself does not define them on matrices).
* The dtype is kept: float32 in, float32 out, also where jaxopt (with x64 on)
  promotes to float64 (``box_section``, the transport projections, float64
  bounds in ``box``); the iterative ones compute in float64 and round once.
* Where jaxopt calls an iterative solver with a loose default tolerance,
  npopt solves the problem exactly (to rounding) instead:
  ``affine_set`` (jaxopt: GMRES, tol 1e-5) by least squares,
  ``polyhedron`` (jaxopt: OSQP, tol 1e-3) by least-distance programming, the
  transport projections (jaxopt: LBFGS, tol 1e-3) by Newton's method on the
  same dual. These agree with jaxopt to its tolerance and with jaxopt run at
  a tight tolerance to ~1e-10. ``box_section`` ports jaxopt's bisection
  (30 steps, tol 1e-5) exactly, so it gives jaxopt's numbers.
* Bad input (bounds with lower > upper, radii out of range, mismatched
  shapes or structures) raises an error naming the argument before anything
  is computed.

References: Duchi, Shalev-Shwartz, Singer & Chandra, "Efficient projections
onto the l1-ball for learning in high dimensions", ICML 2008; Condat, "Fast
projection onto the simplex and the l1 ball", Math. Prog. 2016; Kyrillidis,
Becker, Cevher & Koch, "Sparse projections onto the simplex", ICML 2013;
Lawson & Hanson, "Solving Least Squares Problems", 1974, ch. 23 (LDP);
Blondel, Seguy & Rolet, "Smooth and sparse optimal transport", AISTATS 2018;
Cuturi, "Sinkhorn distances", NeurIPS 2013.

Layout: ``box`` (the elementwise four, as kernels), ``simplex`` (simplex and
l1), ``l2``, ``polyhedra`` (hyperplane, halfspace, affine set, polyhedron,
box section), ``transport`` (transport and Birkhoff polytopes); ``_args``
holds the argument checks they share.
"""
from .box import (projection_box, projection_hypercube, projection_linf_ball,
                  projection_non_negative)
from .simplex import (projection_l1_ball, projection_l1_sphere, projection_simplex,
                      projection_sparse_simplex)
from .l2 import projection_l2_ball, projection_l2_sphere
from .polyhedra import (projection_affine_set, projection_box_section, projection_halfspace,
                        projection_hyperplane, projection_polyhedron)
from .transport import (kl_projection_birkhoff, kl_projection_transport, projection_birkhoff,
                        projection_transport)

__all__ = [
    "projection_non_negative", "projection_box", "projection_hypercube",
    "projection_simplex", "projection_sparse_simplex", "projection_l1_sphere",
    "projection_l1_ball", "projection_l2_sphere", "projection_l2_ball",
    "projection_linf_ball", "projection_hyperplane", "projection_halfspace",
    "projection_affine_set", "projection_polyhedron", "projection_box_section",
    "projection_transport", "projection_birkhoff", "kl_projection_transport",
    "kl_projection_birkhoff",
]
