"""The simplex and the l1 ball, by sorting: ``projection_simplex`` (a kernel,
row by row), ``projection_sparse_simplex``, ``projection_l1_sphere``,
``projection_l1_ball``.
"""
import numbers

import numpy as np

from .._checks import _describe, check_bool
from ..kernels import projection as _k
from ._args import _cast, _radius, _vector


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
