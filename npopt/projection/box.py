"""Boxes, projected element by element with numba kernels
(``kernels/projection.py``) on the CPU or a CUDA GPU:
``projection_non_negative``, ``projection_box``, ``projection_hypercube``,
``projection_linf_ball``.
"""
import numpy as np

from .. import tree as _tree
from .._checks import check_number
from .._target import is_device_array
from ..kernels import projection as _k
from ._args import _cast, _is_scalar, _leaf, _pair, _real_array


def _run_elementwise(x, cpu, gpu, *args):
    """Apply a flat kernel to one leaf: ``kernel(x_flat, out_flat, *args)``."""
    if is_device_array(x):
        from ..kernels._jit import cuda
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
