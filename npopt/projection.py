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
"""
import numbers
import warnings

import numpy as np

from . import _dense, _math
from . import tree as _tree
from ._checks import _describe, check_bool, check_number
from ._target import is_device_array
from .kernels import projection as _k

__all__ = [
    "projection_non_negative", "projection_box", "projection_hypercube",
    "projection_simplex", "projection_sparse_simplex", "projection_l1_sphere",
    "projection_l1_ball", "projection_l2_sphere", "projection_l2_ball",
    "projection_linf_ball", "projection_hyperplane", "projection_halfspace",
    "projection_affine_set", "projection_polyhedron", "projection_box_section",
    "projection_transport", "projection_birkhoff", "kl_projection_transport",
    "kl_projection_birkhoff",
]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# ---------------------------------------------------------------------------
# argument handling
# ---------------------------------------------------------------------------

def _leaf(name, x, device_ok=False):
    """A float32/float64 array (Python scalars become float64 0-d arrays)."""
    if is_device_array(x):
        if not device_ok:
            raise TypeError(
                f"{name}: CUDA arrays are supported by the elementwise projections "
                "(non_negative, box, hypercube, linf_ball) only; copy the array to "
                "the host (npopt never copies between host and device)")
        if np.dtype(x.dtype) not in _FLOATS:
            raise TypeError(f"{name}: expected float32 or float64 leaves, got dtype {x.dtype}")
        return x
    if isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{name}: expected floating-point arrays, got {x!r}")
    if isinstance(x, numbers.Real) and not isinstance(x, np.generic):
        if isinstance(x, numbers.Integral):
            raise TypeError(
                f"{name}: expected floating-point leaves (float32 or float64), got "
                f"the integer {x!r}")
        return np.asarray(x, np.float64)
    try:
        arr = np.asarray(x)
    except Exception:  # noqa: BLE001 - anything numpy cannot read
        raise TypeError(f"{name}: expected an array, got {_describe(x)}") from None
    if arr.dtype not in _FLOATS:
        raise TypeError(
            f"{name}: expected floating-point leaves (float32 or float64), got "
            f"{_describe(x) if isinstance(x, np.ndarray) else 'dtype ' + str(arr.dtype)}")
    return arr


def _vector(name, x, min_ndim=1):
    arr = _leaf(name, x)
    if arr.ndim < min_ndim:
        raise ValueError(f"{name}: expected an array with at least {min_ndim} "
                         f"dimension(s), got {_describe(arr)}")
    return arr


def _real_array(name, x):
    """Any real numeric array (for bounds, constraint data), not on a device."""
    if is_device_array(x):
        return x
    try:
        arr = np.asarray(x)
    except Exception:  # noqa: BLE001
        raise TypeError(f"{name}: expected a number or an array, got {_describe(x)}") from None
    if arr.dtype.kind not in "fiu" or arr.dtype == np.bool_:
        raise TypeError(f"{name}: expected a real number or array, got {_describe(x)}")
    return arr


def _pair(name, hyperparams, what, k=2):
    if not isinstance(hyperparams, (tuple, list)) or len(hyperparams) != k:
        raise TypeError(f"{name}: expected a tuple {what}, got {_describe(hyperparams)}")
    return tuple(hyperparams)


def _radius(name, value, positive):
    """A radius: a finite number > 0 (positive) or >= 0."""
    return float(check_number(name, value, low=0.0, low_open=positive))


def _is_scalar(b):
    return (isinstance(b, (numbers.Real, np.generic)) and not isinstance(b, (bool, np.bool_))) or (
        isinstance(b, np.ndarray) and b.ndim == 0)


def _cast(v, dtype):
    return np.asarray(v).astype(dtype)[()]


# ---------------------------------------------------------------------------
# elementwise projections (kernels)
# ---------------------------------------------------------------------------

def _run_elementwise(x, cpu, gpu, *args):
    """Apply a flat kernel to one leaf: ``kernel(x_flat, out_flat, *args)``."""
    if is_device_array(x):
        from .kernels._jit import cuda
        if not x.is_c_contiguous():
            raise ValueError("x: expected C-contiguous CUDA arrays")
        out = cuda.device_array(x.shape, x.dtype)
        n = x.size
        if n:
            gpu(n, x.reshape(n), out.reshape(n), *args)
        return out
    xc = x if x.flags.c_contiguous else x.copy(order="C")   # (keeps 0-d leaves 0-d)
    out = np.empty_like(xc)
    if xc.size:
        cpu(xc.reshape(-1), out.reshape(-1), *args)
    return out


def projection_non_negative(x, hyperparams=None):
    r"""Projection onto the non-negative orthant, ``argmin_{p >= 0} ||x - p||^2``.

    The solution is ``p = max(x, 0)`` elementwise (``jax.nn.relu``; NaN stays
    NaN).

    Args:
      x: pytree to project (NumPy or CUDA leaves).
      hyperparams: ignored.
    Returns:
      projected pytree, with the same structure as ``x``.
    """
    del hyperparams
    leaves, treedef = _tree.tree_flatten(x)
    leaves = [_leaf("x", v, device_ok=True) for v in leaves]
    out = [_run_elementwise(v, _k.non_negative_cpu, _k.non_negative_cuda,
                            _cast(0, v.dtype)) for v in leaves]
    return treedef.unflatten(out)


def _bound_leaves(name, bound, treedef, leaves):
    """One bound per leaf of x: a scalar broadcast to all, or a tree of x's structure."""
    if _is_scalar(bound):
        return [bound] * treedef.num_leaves
    try:
        return treedef.flatten_up_to(bound, name)
    except ValueError as e:
        raise ValueError(f"{name}: expected a scalar or a pytree with the structure of x; {e}") \
            from None


def _broadcast_shape(a, b):
    try:
        return np.broadcast_shapes(a, b)
    except ValueError:
        return None


def _box(x, lower, upper, lname, uname):
    leaves, treedef = _tree.tree_flatten(x)
    leaves = [_leaf("x", v, device_ok=True) for v in leaves]
    los = _bound_leaves(lname, lower, treedef, leaves)
    his = _bound_leaves(uname, upper, treedef, leaves)
    plans = []
    # validate everything first
    for v, lo, hi in zip(leaves, los, his):
        dev = is_device_array(v)
        bounds = []
        for nm, b in ((lname, lo), (uname, hi)):
            b = _real_array(nm, b)
            if is_device_array(b):
                if not dev or b.shape != v.shape or b.dtype != v.dtype:
                    raise TypeError(
                        f"{nm}: a CUDA array bound must be on the device with its leaf of x "
                        f"and have its shape {v.shape} and dtype {v.dtype}, got shape "
                        f"{b.shape} and dtype {b.dtype}")
            else:
                if b.ndim and _broadcast_shape(b.shape, v.shape) != v.shape:
                    raise ValueError(
                        f"{nm}: expected a scalar or an array broadcastable to the shape "
                        f"{v.shape} of its leaf of x, got shape {b.shape}")
                if np.isnan(b).any():
                    raise ValueError(f"{nm}: expected bounds that are not NaN, got NaN")
                if dev and b.ndim:
                    raise TypeError(
                        f"{nm}: x is a CUDA array, so an array bound must be a CUDA array "
                        "too (npopt never copies between host and device)")
            bounds.append(b)
        blo, bhi = bounds
        if is_device_array(blo) != is_device_array(bhi):
            raise TypeError(f"{lname}, {uname}: with CUDA arrays, give both bounds as scalars "
                            "or both as CUDA arrays")
        if not is_device_array(blo):
            bad = np.asarray(blo) > np.asarray(bhi)
            if np.any(bad):
                count = int(np.sum(np.broadcast_to(bad, tuple(v.shape))))
                raise ValueError(f"{lname}, {uname}: expected lower <= upper (a non-empty box), "
                                 f"got lower > upper at {count} entries")
        plans.append((v, blo, bhi))
    out = []
    for v, blo, bhi in plans:
        dt = v.dtype
        if is_device_array(blo):          # both bounds are CUDA arrays of v's shape
            n = v.size
            out.append(_run_elementwise(v, _k.box_array_cpu, _k.box_array_cuda,
                                        blo.reshape(n), bhi.reshape(n)))
        elif blo.ndim or bhi.ndim:
            lo_a = np.ascontiguousarray(np.broadcast_to(blo.astype(dt, copy=False), v.shape))
            hi_a = np.ascontiguousarray(np.broadcast_to(bhi.astype(dt, copy=False), v.shape))
            out.append(_run_elementwise(v, _k.box_array_cpu, _k.box_array_cuda,
                                        lo_a.reshape(-1), hi_a.reshape(-1)))
        else:
            out.append(_run_elementwise(v, _k.box_cpu, _k.box_cuda,
                                        _cast(blo, dt), _cast(bhi, dt)))
    return treedef.unflatten(out)


def projection_box(x, hyperparams):
    r"""Projection onto box constraints, ``argmin_{lower <= p <= upper} ||x - p||^2``.

    The solution is ``p = clip(x, lower, upper)`` elementwise (``jnp.clip``;
    NaN stays NaN).

    Args:
      x: pytree to project (NumPy or CUDA leaves).
      hyperparams: a tuple ``(lower, upper)``; each a scalar, or a pytree with
        the structure of ``x`` whose leaves are scalars or arrays broadcastable
        to the corresponding leaf of ``x`` (a scalar applies to every leaf,
        also for a pytree ``x``). ``lower <= upper`` is required. Bounds are
        cast to each leaf's dtype (jaxopt promotes float32 ``x`` with float64
        array bounds to float64; npopt keeps float32).
    Returns:
      projected pytree, with the same structure as ``x``.
    """
    lower, upper = _pair("hyperparams", hyperparams, "(lower, upper)")
    return _box(x, lower, upper, "hyperparams[0] (lower)", "hyperparams[1] (upper)")


def _nonneg_bound(name, v):
    if _is_scalar(v):
        return check_number(name, v, low=0.0)
    return v


def projection_hypercube(x, unit=1.0):
    r"""Projection onto the hypercube ``[0, unit]^n``: ``clip(x, 0, unit)``.

    A wrapper around :func:`projection_box` with ``(0.0, unit)``.

    Args:
      x: pytree to project.
      unit: a number >= 0 (default 1.0).
    Returns:
      projected pytree, with the same structure as ``x``.
    """
    unit = _nonneg_bound("unit", unit)
    return _box(x, 0.0, unit, "unit", "unit")


def projection_linf_ball(x, max_value=1.0):
    r"""Projection onto the l-infinity ball ``||p||_inf <= max_value``:
    ``clip(x, -max_value, max_value)``.

    Args:
      x: pytree to project.
      max_value: radius of the ball, >= 0 (default 1.0).
    Returns:
      projected pytree, with the same structure as ``x``.
    """
    max_value = _nonneg_bound("max_value", max_value)
    neg = -max_value if _is_scalar(max_value) else _tree.tree_map(np.negative, max_value)
    return _box(x, neg, max_value, "max_value", "max_value")


# ---------------------------------------------------------------------------
# simplex and l1
# ---------------------------------------------------------------------------

def _rows(x):
    """x as a C-contiguous (rows, n) array (a 1-D x is one row)."""
    return np.ascontiguousarray(x).reshape(-1, x.shape[-1])


def _simplex(x, value):
    """Row-wise simplex projection of a float array (kernel)."""
    dt = x.dtype
    if x.size == 0:
        return np.empty_like(x)
    r = _rows(x)
    out = np.empty_like(r)
    _k.simplex_rows_cpu(r, out, _cast(value, dt), _cast(1, dt), _cast(0, dt))
    return out.reshape(x.shape)


def projection_simplex(x, value=1.0):
    r"""Projection onto the simplex ``{p >= 0, sum(p) = value}``.

    With ``z = x / value`` sorted decreasingly into ``u`` and
    ``rho = #{k : 1/k + u_k - (u_1 + ... + u_k)/k > 0}``, the projection is
    ``p = value * max(z - theta, 0)`` with ``theta = (u_1 + ... + u_rho - 1) / rho``
    (Held, Wolfe & Crowder 1974; Duchi et al., ICML 2008, Fig. 1). O(n log n);
    a numba kernel, in jaxopt's order of operations.

    Args:
      x: vector to project, an array of shape (n,); for more dimensions each
        vector along the last axis is projected (``jax.vmap`` of jaxopt's).
      value: value p should sum to, > 0 (default 1.0; None means 1.0).
    Returns:
      projected array, with the same shape and dtype as ``x``.
    """
    if value is None:
        value = 1.0
    value = _radius("value", value, positive=True)
    x = _vector("x", x)
    return _simplex(x, value)


def _sparse_simplex_row(z, max_nz):
    """Unit sparse simplex of one row (jaxopt's _projection_unit_sparse_simplex)."""
    # jax.lax.top_k: the largest max_nz values in decreasing order, ties by lower index
    idx = np.argsort(-z, kind="stable")[:max_nz]
    top = z[idx]
    proj = _simplex(top, 1.0)
    out = np.zeros_like(z)
    out[idx] = proj
    return out


def projection_sparse_simplex(x, max_nz, use_approx_max_nz=False, value=1.0):
    r"""Projection onto the simplex with at most ``max_nz`` non-zero entries:

    ``argmin ||x - p||^2  s.t.  p >= 0, sum(p) = value, ||p||_0 <= max_nz``.

    The ``max_nz`` largest entries of ``x`` are kept and projected onto the
    simplex, the others set to zero (Kyrillidis, Becker, Cevher & Koch,
    "Sparse projections onto the simplex", ICML 2013, GSHP). Ties among the
    largest entries go to the lower index (``jax.lax.top_k``).

    Args:
      x: vector to project, an array of shape (n,) (more dimensions: each
        vector along the last axis).
      max_nz: the largest number of non-zero entries, an integer in [1, n].
      use_approx_max_nz: accepted for compatibility; npopt's top-k is exact
        (as ``jax.lax.approx_max_k`` is on the CPU).
      value: value p should sum to, > 0 (default 1.0; None means 1.0).
    Returns:
      projected array, with the same shape and dtype as ``x``.
    """
    check_bool("use_approx_max_nz", use_approx_max_nz)
    if value is None:
        value = 1.0
    value = _radius("value", value, positive=True)
    x = _vector("x", x)
    n = x.shape[-1]
    if (not isinstance(max_nz, (numbers.Integral, np.integer)) or isinstance(max_nz, bool)
            or not 1 <= int(max_nz) <= n):
        raise ValueError(f"max_nz: expected an integer in [1, {n}] (the length of x), "
                         f"got {_describe(max_nz)}")
    max_nz = int(max_nz)
    dt = x.dtype
    z = _rows(x) / _cast(value, dt)
    out = np.stack([_sparse_simplex_row(row, max_nz) for row in z]) if z.shape[0] else z
    return (_cast(value, dt) * out).reshape(x.shape)


def projection_l1_sphere(x, value=1.0):
    r"""Projection onto the l1 sphere ``{||p||_1 = value}``:
    ``p = s * proj_simplex(|x|, value)`` with ``s = sign(x)``.

    One deviation from jaxopt: where ``x_i = 0`` npopt takes ``s_i = +1``
    (either sign gives a nearest point). jaxopt's ``jnp.sign`` gives 0 there,
    which discards the mass the simplex projection puts on such entries when
    ``||x||_1 < value``, so its result is then not on the sphere. Wherever
    ``x`` has no zero entry, or ``||x||_1 >= value``, the two agree.

    Args:
      x: array to project (more than one dimension: each vector along the
        last axis).
      value: radius of the sphere, > 0.
    Returns:
      output array, with the same shape and dtype as ``x``.
    """
    value = _radius("value", value, positive=True)
    x = _vector("x", x)
    sign = np.where(x < 0, x.dtype.type(-1), x.dtype.type(1))
    return sign * _simplex(np.abs(x), value)


def projection_l1_ball(x, max_value=1.0):
    r"""Projection onto the l1 ball ``{||p||_1 <= max_value}``:
    ``x`` itself if ``||x||_1 <= max_value``, else its projection onto the l1
    sphere (Duchi et al., ICML 2008).

    Args:
      x: array to project (more than one dimension: each vector along the
        last axis, with its own l1 norm; jaxopt's matrix input would use the
        matrix 1-norm, npopt follows ``jax.vmap``).
      max_value: radius of the ball, > 0.
    Returns:
      output array, with the same shape and dtype as ``x``.
    """
    max_value = _radius("max_value", max_value, positive=True)
    x = _vector("x", x)
    l1 = np.sum(np.abs(x), axis=-1, keepdims=True)
    inside = l1 <= _cast(max_value, x.dtype)
    if np.all(inside):
        return x.copy()
    sphere = np.sign(x) * _simplex(np.abs(x), max_value)
    return np.where(inside, x, sphere)


# ---------------------------------------------------------------------------
# l2, hyperplanes
# ---------------------------------------------------------------------------

def _tree_leaves_float(name, x):
    leaves, treedef = _tree.tree_flatten(x)
    return [_leaf(name, v) for v in leaves], treedef


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


def _plane(x, hyperparams, relu):
    a, b = _pair("hyperparams", hyperparams, "(a, b)")
    leaves, treedef = _tree_leaves_float("x", x)
    try:
        a_leaves = treedef.flatten_up_to(a, "hyperparams[0] (a)")
    except ValueError as e:
        raise ValueError(f"hyperparams[0] (a): expected a pytree with the structure of x; {e}") \
            from None
    a_leaves = [_leaf("hyperparams[0] (a)", v) for v in a_leaves]
    for v, av in zip(leaves, a_leaves):
        if av.shape != v.shape:
            raise ValueError(f"hyperparams[0] (a): expected the shapes of x's leaves, got shape "
                             f"{av.shape} for a leaf of shape {v.shape}")
    if not _is_scalar(b):
        raise TypeError(f"hyperparams[1] (b): expected a scalar, got {_describe(b)}")
    aa = _tree.tree_vdot(a_leaves, a_leaves)
    if not aa > 0:
        raise ValueError("hyperparams[0] (a): expected a non-zero normal vector, got a = 0")
    ax = _tree.tree_vdot(a_leaves, leaves)
    num = ax - b
    if relu:
        num = np.maximum(num, 0)
    scale = num / aa
    return treedef.unflatten([np.asarray(v + (-scale) * av, v.dtype)
                              for v, av in zip(leaves, a_leaves)])


def projection_hyperplane(x, hyperparams):
    r"""Projection onto the hyperplane ``{p : <a, p> = b}``:
    ``p = x - ((<a, x> - b) / <a, a>) a``.

    Args:
      x: pytree to project.
      hyperparams: tuple ``(a, b)``: ``a`` a non-zero pytree with the structure
        and shapes of ``x``, ``b`` a scalar.
    Returns:
      output pytree, with the same structure as ``x``.
    """
    return _plane(x, hyperparams, relu=False)


def projection_halfspace(x, hyperparams):
    r"""Projection onto the halfspace ``{p : <a, p> <= b}``:
    ``p = x - (max(<a, x> - b, 0) / <a, a>) a``.

    Args:
      x: pytree to project.
      hyperparams: tuple ``(a, b)``: ``a`` a non-zero pytree with the structure
        and shapes of ``x``, ``b`` a scalar.
    Returns:
      output pytree, with the same structure as ``x``.
    """
    return _plane(x, hyperparams, relu=True)


# ---------------------------------------------------------------------------
# affine sets and polyhedra
# ---------------------------------------------------------------------------

def _matrix_rhs(x, M, v, mname, vname):
    """Constraint data (M, v) for a 1-D x as float64; None/None means none."""
    n = x.shape[0]
    if M is None and v is None:
        return np.zeros((0, n)), np.zeros(0)
    M = _real_array(mname, M)
    v = _real_array(vname, v)
    if is_device_array(M) or is_device_array(v):
        raise TypeError(f"{mname}: expected a host (NumPy) array, got a CUDA array")
    if M.ndim != 2 or M.shape[1] != n:
        raise ValueError(f"{mname}: expected a matrix with {n} columns (the length of x), "
                         f"got shape {M.shape}")
    if v.ndim != 1 or v.shape[0] != M.shape[0]:
        raise ValueError(f"{vname}: expected a vector of length {M.shape[0]} (the rows of "
                         f"{mname.split(' ')[-1].strip('()')}), got shape {v.shape}")
    M = M.astype(np.float64)
    v = v.astype(np.float64)
    if not (np.all(np.isfinite(M)) and np.all(np.isfinite(v))):
        raise ValueError(f"{mname}, {vname}: expected finite values")
    return M, v


def _affine_part(x, A, b, rtol):
    """The projection onto {A y = b}: y = x - A^+ (A x - b), and A's null space.

    Returns (y_p, N) with y_p in the set and N an orthonormal basis of
    null(A), or raises if the set is empty.
    """
    n = x.shape[0]
    if A.shape[0] == 0:
        return np.zeros(n), np.eye(n)
    U, s, V = _dense.svd(A)                 # fixed-order Jacobi SVD, not LAPACK
    tol_rank = s[0] * max(A.shape) * np.finfo(np.float64).eps if s.size else 0.0
    r = int(np.sum(s > tol_rank))
    y_p = _dense.dot(V[:, :r], _dense.dot(U[:, :r].T, b) / s[:r])
    resid = _dense.norm(_dense.dot(A, y_p) - b)
    if resid > rtol * ((s[0] if s.size else 0.0) * _dense.norm(y_p) + _dense.norm(b) + 1e-300) \
            and resid > 0:
        raise ValueError("The polyhedron is empty.")
    return y_p, np.ascontiguousarray(V[:, r:])


def projection_affine_set(x, hyperparams):
    r"""Projection onto the affine set ``{y : A y = b}``.

    The solution is ``y = x - A^+ (A x - b)`` (``A^+`` the pseudo-inverse;
    ``x - A^T (A A^T)^{-1} (A x - b)`` when A has full row rank), computed in
    float64 by least squares. jaxopt solves the KKT system of the same QP with
    GMRES (tolerance 1e-5); npopt's answer is exact to rounding, and a
    rank-deficient but consistent ``A`` is fine.

    Args:
      x: array to project, shape (n,).
      hyperparams: tuple ``(A, b)``, ``A`` a matrix (p, n) and ``b`` a vector (p,).
    Returns:
      output array, with the same shape and dtype as ``x``.
    Raises:
      ValueError: if ``b`` is not in the range of ``A`` (the set is empty).
    """
    A, b = _pair("hyperparams", hyperparams, "(A, b)")
    x = _vector("x", x)
    if x.ndim != 1:
        raise ValueError(f"x: expected a vector (1-D array), got {_describe(x)}")
    A, b = _matrix_rhs(x, A, b, "hyperparams[0] (A)", "hyperparams[1] (b)")
    x64 = x.astype(np.float64)
    if A.shape[0] == 0:
        return x.copy()
    U, s, V = _dense.svd(A)                 # fixed-order Jacobi SVD, not LAPACK
    r = int(np.sum(s > s[0] * max(A.shape) * np.finfo(np.float64).eps)) if s.size else 0
    d = _dense.dot(V[:, :r], _dense.dot(U[:, :r].T, _dense.dot(A, x64) - b) / s[:r])
    y = x64 - d
    resid = _dense.norm(_dense.dot(A, y) - b)
    scale = (s[0] if s.size else 0.0) * _dense.norm(y) + _dense.norm(b)
    if resid > 1e-8 * scale and resid > 0:
        raise ValueError("hyperparams: the affine set {y : A y = b} is empty (b is not in the "
                         f"range of A; residual {resid:.3g})")
    return y.astype(x.dtype)


def _ldp(G, e, tol):
    """Least-distance programming: argmin ||w|| s.t. G w <= e (Lawson & Hanson, ch. 23).

    With the constraints written ``(-G) w >= -e`` and each row normalised,
    solve the NNLS problem ``min_{u >= 0} ||E u - f||``, ``E = [-G^T; -e^T]``,
    ``f = (0, ..., 0, 1)``. If the residual ``r = E u - f`` is zero the
    constraints are inconsistent; otherwise ``w = -r[:n] / r[n]``, and
    ``lambda = u / (-r[n])`` are the multipliers (active where u > 0).
    Returns (w, active) or (None, None) when infeasible.
    """
    k = G.shape[1]
    scale = np.sqrt(np.sum(G * G, axis=1) + e * e)
    keep = scale > 0
    G, e, scale = G[keep], e[keep], scale[keep]
    if G.shape[0] == 0:
        return np.zeros(k), np.zeros(0, bool)
    Gn = G / scale[:, None]
    en = e / scale
    E = np.vstack([-Gn.T, -en[None, :]])
    f = np.zeros(k + 1)
    f[k] = 1.0
    u, rnorm = _dense.nnls(E, f, maxiter=max(50 * E.shape[1], 1000))
    r = _dense.dot(E, u) - f
    if rnorm <= tol or -r[k] <= tol:
        return None, None
    w = -r[:k] / r[k]
    active = np.zeros(keep.shape[0], bool)
    active[np.flatnonzero(keep)[u > 0]] = True
    return w, active


def projection_polyhedron(x, hyperparams, check_feasible=True, *, tol=1e-10):
    r"""Projection onto the polyhedron ``{y : A y = b, G y <= h}``.

    jaxopt solves this QP with OSQP (ADMM, tolerance 1e-3). npopt has a
    small exact method instead, in float64:

    1. Equalities: with ``A = U S V^T``, ``y = y_p + N z`` where
       ``y_p = A^+ b`` and ``N`` spans null(A); the problem becomes projecting
       ``z0 = N^T (x - y_p)`` onto ``{z : (G N) z <= h - G y_p}``.
    2. That is a least-distance problem ``min ||w||  s.t.  G' w <= e``
       (``w = z - z0``), solved through one non-negative least-squares
       problem (Lawson & Hanson 1974, ch. 23; scipy's Lawson-Hanson NNLS),
       which also detects an empty polyhedron.
    3. Polish: with the active set found by NNLS, the equality-constrained
       projection is re-solved by least squares and kept if it is feasible
       (to ``tol``) with non-negative multipliers.

    Args:
      x: array to project, shape (n,).
      hyperparams: tuple ``(A, b, G, h)``: ``A`` (p, n), ``b`` (p,), ``G`` (q, n),
        ``h`` (q,). ``A, b`` or ``G, h`` may be ``None, None`` (no such
        constraints; an npopt extension).
      check_feasible: accepted for compatibility. npopt always detects an
        empty polyhedron (LDP finds it at no cost) and raises.
      tol: npopt extension: tolerance of the emptiness test (relative to the
        normalised constraints) and of the feasibility check of the polish.
    Returns:
      output array, with the same shape and dtype as ``x``.
    Raises:
      ValueError("The polyhedron is empty.") as jaxopt does.
    """
    check_bool("check_feasible", check_feasible)
    tol = float(check_number("tol", tol, low=0.0, low_open=True))
    A, b, G, h = _pair("hyperparams", hyperparams, "(A, b, G, h)", k=4)
    x = _vector("x", x)
    if x.ndim != 1:
        raise ValueError(f"x: expected a vector (1-D array), got {_describe(x)}")
    A, b = _matrix_rhs(x, A, b, "hyperparams[0] (A)", "hyperparams[1] (b)")
    G, h = _matrix_rhs(x, G, h, "hyperparams[2] (G)", "hyperparams[3] (h)")
    x64 = x.astype(np.float64)
    y_p, N = _affine_part(x64, A, b, max(tol, 1e-12))
    z0 = _dense.dot(N.T, x64 - y_p)
    if G.shape[0] == 0:
        return (y_p + _dense.dot(N, z0)).astype(x.dtype)
    Gz = _dense.dot(G, N)
    e = h - _dense.dot(G, y_p) - _dense.dot(Gz, z0)             # constraints on w = z - z0: Gz w <= e
    if N.shape[1] == 0:                    # a single point: is it in {G y <= h}?
        if np.all(e >= -tol * (1 + np.abs(h))):
            return y_p.astype(x.dtype)
        raise ValueError("The polyhedron is empty.")
    if np.all(e >= 0):
        w = np.zeros(N.shape[1])
    else:
        w, active = _ldp(Gz, e, tol)
        if w is None:
            raise ValueError("The polyhedron is empty.")
        # polish on the active set: min ||w|| s.t. Gz_I w = e_I
        if np.any(active):
            GI = Gz[active]
            lam = _dense.lstsq(_dense.dot(GI, GI.T), -e[active])[0]
            w_pol = -_dense.dot(GI.T, lam)
            viol = _dense.dot(Gz, w_pol) - e
            gscale = np.sqrt(np.sum(Gz * Gz, axis=1)) * (_dense.norm(w_pol) + 1) + np.abs(e)
            if (np.all(viol <= tol * gscale) and np.all(lam >= -tol * (1 + np.abs(lam).max()))
                    and np.allclose(_dense.dot(GI, w_pol), e[active], rtol=0,
                                    atol=tol * (1 + np.abs(e[active]).max()))):
                w = w_pol
    return (y_p + _dense.dot(N, z0 + w)).astype(x.dtype)


# ---------------------------------------------------------------------------
# box section (jaxopt's bisection, ported)
# ---------------------------------------------------------------------------

def projection_box_section(x, hyperparams, check_feasible=False):
    r"""Projection onto a box section
    ``{p : alpha <= p <= beta, <w, p> = c}`` (``w > 0``).

    An optimal solution has the form ``p(tau) = clip(x + tau w, alpha, beta)``
    where ``tau`` is the root of the non-decreasing, piecewise-linear
    ``phi(tau) = <w, p(tau)> - c``. As jaxopt, ``tau`` is found by bisection
    on ``[min((alpha - x)/w), max((beta - x)/w)]`` (jaxopt's ``Bisection``
    with its defaults: at most 30 midpoints, stopping once ``|phi| <= 1e-5``,
    in float64), so the result is jaxopt's and ``<w, p> = c`` holds to about
    1e-5. The problem is infeasible if ``<w, alpha> > c`` or ``<w, beta> < c``.

    Args:
      x: vector to project, an array of shape (n,).
      hyperparams: tuple ``(alpha, beta, w, c)``: ``alpha``, ``beta`` and ``w``
        arrays of the shape of ``x`` (or scalars), ``alpha <= beta``, ``w > 0``;
        ``c`` a scalar.
      check_feasible: whether to check ``<w, alpha> <= c <= <w, beta>`` (the
        messages are jaxopt's).
    Returns:
      projected vector, with the same shape and dtype as ``x``.
    """
    check_bool("check_feasible", check_feasible)
    alpha, beta, w, c = _pair("hyperparams", hyperparams, "(alpha, beta, w, c)", k=4)
    x = _vector("x", x)
    if x.ndim != 1:
        raise ValueError(f"x: expected a vector (1-D array), got {_describe(x)}")
    arrs = []
    for nm, v in (("hyperparams[0] (alpha)", alpha), ("hyperparams[1] (beta)", beta),
                  ("hyperparams[2] (w)", w)):
        v = _real_array(nm, v)
        if is_device_array(v):
            raise TypeError(f"{nm}: expected a host (NumPy) array, got a CUDA array")
        if v.ndim and v.shape != x.shape:
            raise ValueError(f"{nm}: expected an array of the shape {x.shape} of x (or a "
                             f"scalar), got shape {v.shape}")
        if v.dtype.kind != "f":
            v = v.astype(np.float64)
        arrs.append(np.broadcast_to(v, x.shape))
    alpha, beta, w = arrs
    if not _is_scalar(c):
        raise TypeError(f"hyperparams[3] (c): expected a scalar, got {_describe(c)}")
    if np.any(alpha > beta):
        raise ValueError("hyperparams[0] (alpha), hyperparams[1] (beta): expected alpha <= beta, "
                         f"got alpha > beta at {int(np.sum(alpha > beta))} entries")
    if not np.all(w > 0):
        raise ValueError("hyperparams[2] (w): expected w > 0 everywhere")
    if check_feasible:
        if _dense.dot(w, alpha) > c:
            raise ValueError("alpha should satisfy dot(w, alpha) <= c")
        if _dense.dot(w, beta) < c:
            raise ValueError("beta should satisfy dot(w, beta) >= c")
    # bracket, in the inputs' dtype, then float64 (jnp.asarray(lower, float))
    lower = np.float64(np.min((alpha - x) / w))
    upper = np.float64(np.max((beta - x) / w))

    def phi(tau):
        p = np.clip(w * tau + x, alpha, beta)
        return _dense.dot(w, p) - c

    tau = _bisection(phi, lower, upper, maxiter=30, tol=1e-5)
    return np.clip(w * tau + x, alpha, beta).astype(x.dtype)


def _bisection(fun, lower, upper, maxiter, tol):
    """jaxopt.Bisection.run with check_bracket=False: the last midpoint.

    sign = +1 if fun(lower) < 0 <= fun(upper), -1 if fun(lower) > 0 >= fun(upper),
    else 0 (then every midpoint becomes the new ``low``). One step is always
    taken, then steps while ``|fun(mid)| > tol``, at most ``maxiter`` in all.
    """
    lo_v, hi_v = fun(lower), fun(upper)
    if lo_v < 0 and hi_v >= 0:
        sign = 1
    elif lo_v > 0 and hi_v <= 0:
        sign = -1
    else:
        sign = 0
    low, high = lower, upper
    tau = None
    for _ in range(maxiter):
        tau = np.float64(0.5) * (high + low)
        value = fun(tau)
        error = np.sqrt(value ** 2)
        if sign * value > 0:
            high = tau
        else:
            low = tau
        if not error > tol:
            break
    return tau


# ---------------------------------------------------------------------------
# transport polytopes (Blondel, Seguy & Rolet 2018)
# ---------------------------------------------------------------------------

def _logsumexp_cols(X):
    m = np.max(X, axis=0)
    m = np.where(np.isfinite(m), m, 0.0)
    return m + _math.log(np.sum(_math.exp(X - m), axis=0))


def _semi_dual(kind, alpha, C, a, b):
    """Semi-dual objective (Blondel et al. 2018, eq. 10), its gradient and the plan.

    F(alpha) = sum_j b_j max_Omega(alpha - C[:, j]) - <alpha, a>, with
    l2:  max(x) = <x, p> - b_j/2 ||p||^2,  p = proj_simplex(x / b_j)
    kl:  max(x) = logsumexp(x) - log b_j
    and plan P[:, j] = b_j * grad max(alpha - C[:, j]); grad F = P 1 - a.
    """
    X = alpha[:, None] - C
    if kind == "l2":
        Q = _simplex(np.ascontiguousarray((X / b).T), 1.0).T      # columns p_j
        vals = np.sum(X * Q, axis=0) - 0.5 * b * np.sum(Q * Q, axis=0)
    else:
        lse = _logsumexp_cols(X)
        Q = _math.exp(X - lse)
        vals = lse - _math.log(b)
    P = Q * b
    F = _dense.dot(b, vals) - _dense.dot(alpha, a)
    return F, P.sum(axis=1) - a, P, Q


def _semi_dual_hessian(kind, P, Q, b):
    """A generalised Hessian of F: sum_j d(P[:, j])/d alpha.

    l2: diag(s_j) - s_j s_j^T / |s_j| with s_j the support of column j (the
    Jacobian of the simplex projection); kl: b_j (diag(q_j) - q_j q_j^T).
    """
    if kind == "l2":
        S = (P > 0).astype(np.float64)
        cnt = np.maximum(S.sum(axis=0), 1.0)
        return np.diag(S.sum(axis=1)) - _dense.dot(S / cnt, S.T)
    return np.diag(P.sum(axis=1)) - _dense.dot(P, Q.T)


def _newton_transport(kind, C, a, b, tol, maxiter):
    """Minimise the semi-dual by a regularised (semismooth) Newton method.

    Step ``d = -(H + mu I)^{-1} g`` (``mu = min(1, ||g||_inf)``, Li & Fukushima
    style; ``d`` kept orthogonal to the all-ones direction along which ``F`` is
    constant), Armijo backtracking. For the l2 problem ``F`` is piecewise
    quadratic and Newton's method lands on the exact solution once the
    supports are found; for KL it converges quadratically. Stops when
    ``max_i |(P 1 - a)_i| <= tol * max(a)`` (the column sums are exact by
    construction).
    """
    m = C.shape[0]
    alpha = np.zeros(m)
    F, g, P, Q = _semi_dual(kind, alpha, C, a, b)
    target = tol * np.max(a)
    converged = False
    for _ in range(maxiter):
        gc = g - g.mean()
        gn = np.max(np.abs(gc))
        if gn <= target:
            converged = True
            break
        H = _semi_dual_hessian(kind, P, Q, b)
        mu = min(1.0, gn)
        d = _dense.solve(H + mu * np.eye(m), -gc)
        d -= d.mean()
        slope = _dense.dot(g, d)
        if not slope < 0:
            d, slope = -gc, -_dense.dot(gc, gc)
        t = 1.0
        slack = 64 * np.finfo(np.float64).eps * (1.0 + abs(F))
        while True:
            Fn, gn_, Pn, Qn = _semi_dual(kind, alpha + t * d, C, a, b)
            if Fn <= F + 1e-4 * t * slope + slack or t < 1e-12:
                break
            t *= 0.5
        if t < 1e-12:
            break
        alpha = alpha + t * d
        F, g, P, Q = Fn, gn_, Pn, Qn
    else:
        gc = g - g.mean()
        converged = np.max(np.abs(gc)) <= target
    if not converged:
        gc = g - g.mean()
        if np.max(np.abs(gc)) > max(target, 1e-8 * np.max(a)):
            warnings.warn(f"npopt.projection: the transport projection did not converge "
                          f"(marginal error {np.max(np.abs(gc)):.3g})", RuntimeWarning,
                          stacklevel=3)
    return P


class _Objective:
    """The dual objective handed to ``make_solver``: ``fun(params, cost_matrix,
    marginals_a, marginals_b)`` returns the value (as in jaxopt);
    ``fun.value_and_grad`` returns ``(value, grad)`` and ``fun.grad`` the
    gradient, for solvers built with ``value_and_grad=True`` or ``grad=``."""

    def __init__(self, kind, dual):
        self.kind, self.dual = kind, dual

    def value_and_grad(self, params, cost_matrix, marginals_a, marginals_b):
        C = np.asarray(cost_matrix, np.float64)
        a = np.asarray(marginals_a, np.float64)
        b = np.asarray(marginals_b, np.float64)
        if not self.dual:
            F, g, _, _ = _semi_dual(self.kind, np.asarray(params, np.float64), C, a, b)
            return F, g
        alpha, beta = (np.asarray(p, np.float64) for p in params)
        P = _dual_plan(self.kind, alpha, beta, C)
        if self.kind == "l2":
            F = 0.5 * np.sum(P * P) - _dense.dot(alpha, a) - _dense.dot(beta, b)
        else:
            F = np.sum(P) - _dense.dot(alpha, a) - _dense.dot(beta, b)
        return F, (P.sum(axis=1) - a, P.sum(axis=0) - b)

    def __call__(self, params, cost_matrix, marginals_a, marginals_b):
        return self.value_and_grad(params, cost_matrix, marginals_a, marginals_b)[0]

    def grad(self, params, cost_matrix, marginals_a, marginals_b):
        return self.value_and_grad(params, cost_matrix, marginals_a, marginals_b)[1]


def _dual_plan(kind, alpha, beta, C):
    """Plan of the dual (eq. 7): relu(alpha_i + beta_j - C_ij) (l2) or
    exp(alpha_i + beta_j - C_ij - 1) (kl)."""
    D = alpha[:, None] + beta[None, :] - C
    return np.maximum(D, 0.0) if kind == "l2" else _math.exp(D - 1.0)


def _transport(kind, sim_matrix, marginals, make_solver, use_semi_dual, tol, maxiter):
    check_bool("use_semi_dual", use_semi_dual)
    tol = float(check_number("tol", tol, low=0.0, low_open=True))
    if not isinstance(maxiter, (numbers.Integral, np.integer)) or maxiter < 1:
        raise ValueError(f"maxiter: expected an integer >= 1, got {_describe(maxiter)}")
    S = _vector("sim_matrix", sim_matrix, min_ndim=2)
    if S.ndim != 2:
        raise ValueError(f"sim_matrix: expected a matrix (2-D array), got {_describe(S)}")
    if not np.all(np.isfinite(S)):
        raise ValueError("sim_matrix: expected finite values")
    ma, mb = _pair("marginals", marginals, "(marginals_a, marginals_b)")
    ab, eps = [], 0.0
    for nm, v, size in (("marginals[0] (marginals_a)", ma, S.shape[0]),
                        ("marginals[1] (marginals_b)", mb, S.shape[1])):
        v = _real_array(nm, v)
        if is_device_array(v):
            raise TypeError(f"{nm}: expected a host (NumPy) array, got a CUDA array")
        if v.ndim != 1 or v.shape[0] != size:
            raise ValueError(f"{nm}: expected a vector of length {size} (sim_matrix has shape "
                             f"{S.shape}), got shape {v.shape}")
        eps = max(eps, np.finfo(v.dtype).eps if v.dtype.kind == "f" else 0.0)
        v = v.astype(np.float64)
        if not (np.all(np.isfinite(v)) and np.all(v > 0)):
            raise ValueError(f"{nm}: expected finite positive entries")
        ab.append(v)
    a, b = ab
    # equal sums, up to the rounding of the marginals' own dtype
    if abs(a.sum() - b.sum()) > max(1e-9, 10 * (a.size + b.size) * eps) * max(a.sum(), b.sum()):
        raise ValueError(f"marginals: expected sum(marginals_a) == sum(marginals_b) (otherwise "
                         f"no plan exists), got {a.sum()!r} and {b.sum()!r}")
    C = -S.astype(np.float64)
    if make_solver is None:
        P = _newton_transport(kind, C, a, b, tol, int(maxiter))
    else:
        solver = make_solver(_Objective(kind, dual=not use_semi_dual))
        if use_semi_dual:
            alpha = np.asarray(solver.run(np.zeros(S.shape[0]), cost_matrix=C, marginals_a=a,
                                          marginals_b=b).params, np.float64)
            _, _, P, _ = _semi_dual(kind, alpha, C, a, b)
        else:
            alpha, beta = solver.run((np.zeros(S.shape[0]), np.zeros(S.shape[1])),
                                     cost_matrix=C, marginals_a=a, marginals_b=b).params
            P = _dual_plan(kind, np.asarray(alpha, np.float64), np.asarray(beta, np.float64), C)
    return P.astype(S.dtype)


_TRANSPORT_DOC = r"""

    Args:
      sim_matrix: similarity matrix ``S = -C``, shape (size_a, size_b).
      marginals: a tuple ``(marginals_a, marginals_b)`` of positive vectors of
        shapes (size_a,) and (size_b,) with equal sums: the plan's row sums are
        ``marginals_a`` and its column sums ``marginals_b``.
      make_solver: ``make_solver(fun)`` returning a solver whose
        ``run(init_params, cost_matrix=, marginals_a=, marginals_b=)`` minimises
        ``fun`` (jaxopt's default is ``LBFGS(fun=fun, tol=1e-3, maxiter=500,
        linesearch="zoom")``). ``fun`` returns the value; ``fun.value_and_grad``
        and ``fun.grad`` give the exact gradient (for
        ``LBFGS(fun=fun.value_and_grad, value_and_grad=True, ...)``). None (the
        default): npopt's Newton method to ``tol``.
      use_semi_dual: minimise the semi-dual (eq. 10 of Blondel et al.; params
        ``alpha``) or the dual (eq. 7; params ``(alpha, beta)``). The plan is the
        same; with ``make_solver=None`` the semi-dual is always used.
      tol: npopt extension: the default solver stops when the row sums match
        ``marginals_a`` to ``tol * max(marginals_a)``.
      maxiter: npopt extension: Newton iterations at most.
    Returns:
      plan: transportation matrix, shape (size_a, size_b), dtype of ``sim_matrix``.
    """


def projection_transport(sim_matrix, marginals, make_solver=None, use_semi_dual=True, *,
                         tol=1e-12, maxiter=200):
    return _transport("l2", sim_matrix, marginals, make_solver, use_semi_dual, tol, maxiter)


projection_transport.__doc__ = r"""Projection onto the transportation polytope:

    ``argmin_{P >= 0} ||P - S||^2  s.t.  P 1 = a, P^T 1 = b``, equivalently
    ``argmin <P, C> + 1/2 ||P||^2`` with ``C = -S`` (Blondel, Seguy & Rolet,
    "Smooth and sparse optimal transport", AISTATS 2018).

    npopt minimises the same semi-dual as jaxopt,
    ``F(alpha) = sum_j b_j max_j(alpha - C[:, j]) - <alpha, a>`` with
    ``max_j(x) = max_{p in simplex} <x, p> - b_j/2 ||p||^2`` attained at
    ``p = proj_simplex(x / b_j)``, whose gradient is ``P 1 - a`` for the plan
    ``P[:, j] = b_j p_j``; by a semismooth Newton method (generalised Hessian
    from the simplex projection's Jacobian), to machine precision. jaxopt's
    default LBFGS stops at tol 1e-3, so its plans differ from this exact one
    at about that level (and its zoom line search can stall on this only
    once-differentiable objective: row sums off by 0.15 on one 5 x 4 test
    problem).
    """ + _TRANSPORT_DOC


def kl_projection_transport(sim_matrix, marginals, make_solver=None, use_semi_dual=True, *,
                            tol=1e-12, maxiter=200):
    return _transport("kl", sim_matrix, marginals, make_solver, use_semi_dual, tol, maxiter)


kl_projection_transport.__doc__ = r"""Kullback-Leibler projection onto the transportation polytope:

    ``argmin_{P > 0} KL(P, exp(S))  s.t.  P 1 = a, P^T 1 = b``, equivalently
    ``argmin <P, C> + <P, log P>`` with ``C = -S``: the entropy-regularised
    optimal transport plan ``P = diag(u) exp(S) diag(v)`` that Sinkhorn's
    algorithm computes (Cuturi, "Sinkhorn distances", NeurIPS 2013).

    npopt minimises jaxopt's semi-dual
    ``F(alpha) = sum_j b_j (logsumexp(alpha - C[:, j]) - log b_j) - <alpha, a>``
    (Blondel et al. 2018, eq. 10) by Newton's method (Hessian
    ``sum_j b_j (diag(q_j) - q_j q_j^T)``, ``q_j = softmax(alpha - C[:, j])``),
    quadratically convergent where Sinkhorn is linear; the plan is
    ``P[:, j] = b_j q_j``. jaxopt's default LBFGS stops at tol 1e-3.
    """ + _TRANSPORT_DOC


def _square(sim_matrix):
    S = _vector("sim_matrix", sim_matrix, min_ndim=2)
    if S.ndim != 2 or S.shape[0] != S.shape[1]:
        raise ValueError(f"sim_matrix: expected a square matrix, got shape {S.shape}")
    return S, (np.ones(S.shape[0]), np.ones(S.shape[1]))


def projection_birkhoff(sim_matrix, make_solver=None, use_semi_dual=True, *, tol=1e-12,
                        maxiter=200):
    r"""Projection onto the Birkhoff polytope (doubly stochastic matrices):
    :func:`projection_transport` with all-ones marginals.

    Args:
      sim_matrix: similarity matrix, shape (size, size).
      make_solver, use_semi_dual, tol, maxiter: as in :func:`projection_transport`.
    Returns:
      P: doubly-stochastic matrix, shape (size, size).
    """
    S, marg = _square(sim_matrix)
    return _transport("l2", S, marg, make_solver, use_semi_dual, tol, maxiter)


def kl_projection_birkhoff(sim_matrix, make_solver=None, use_semi_dual=True, *, tol=1e-12,
                           maxiter=200):
    r"""Kullback-Leibler projection onto the Birkhoff polytope (Sinkhorn's
    doubly stochastic scaling of ``exp(S)``): :func:`kl_projection_transport`
    with all-ones marginals.

    Args:
      sim_matrix: similarity matrix, shape (size, size).
      make_solver, use_semi_dual, tol, maxiter: as in :func:`kl_projection_transport`.
    Returns:
      P: doubly-stochastic matrix, shape (size, size).
    """
    S, marg = _square(sim_matrix)
    return _transport("kl", S, marg, make_solver, use_semi_dual, tol, maxiter)
