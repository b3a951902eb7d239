r"""optax's numerics helpers: ``safe_norm`` and ``safe_root_mean_squares``,
plus the deterministic axis reductions the unit-wise transforms share.

.. math::

    \operatorname{safe\_norm}(x, m) = \max(\|x\|, m), \qquad
    \operatorname{safe\_rms}(x, m) = \max\Big(\sqrt{\tfrac1n \textstyle\sum_i |x_i|^2},
    m\Big)

optax writes them with a masked second norm so that JAX's gradient is 0,
not NaN, below the floor; npopt has no autodiff, so only the values are
kept (the same values: the masked norm equals the norm above the floor).

Sums of squares are computed by ``npopt.kernels.reduce`` (fixed chunks
summed left to right, chunks combined in order, in the array's dtype), plain
sums by ``npopt._dense.dot`` with a vector of ones (a fixed order too): the
bits do not depend on the CPU. XLA adds in its own order, so agreement with
optax is to rounding.
"""
import math
import numbers

import numpy as np

from . import _dense, _math
from ._checks import is_narrow
from .kernels import reduce as _kreduce

__all__ = ["safe_norm", "safe_root_mean_squares"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _inexact(x, name="x"):
    """``x`` as a float32/float64/complex array (bool and integers: float64,
    as JAX promotes them under x64; float16: float32)."""
    x = np.asarray(x)
    k = x.dtype.kind
    if k in "biu":
        return x.astype(np.float64)
    if is_narrow(x.dtype):            # float16, bfloat16
        return x.astype(np.float32)
    if k == "f" and x.dtype not in _FLOATS:
        return x.astype(np.float32 if x.dtype.itemsize < 4 else np.float64)
    if k == "c" and x.dtype not in (np.dtype(np.complex64), np.dtype(np.complex128)):
        return x.astype(np.complex128)
    if k not in "fc":
        raise TypeError(f"{name}: expected a numeric array, got dtype {x.dtype}")
    return x


def _real_dtype(dt):
    return np.dtype(np.float32) if dt in (np.dtype(np.float32), np.dtype(np.complex64)) \
        else np.dtype(np.float64)


def _axes(name, axis, ndim):
    """``axis`` (None, an int or a tuple of ints) as a sorted tuple of
    distinct non-negative axes of an ``ndim``-dimensional array."""
    if axis is None:
        return tuple(range(ndim))
    items = (axis,) if isinstance(axis, (numbers.Integral, np.integer)) else axis
    try:
        items = tuple(items)
    except TypeError:
        raise TypeError(f"{name}: expected None, an int or a tuple of ints, got {axis!r}") \
            from None
    out = []
    for a in items:
        if not isinstance(a, (numbers.Integral, np.integer)) or isinstance(a, bool):
            raise TypeError(f"{name}: expected None, an int or a tuple of ints, got {axis!r}")
        if not -ndim <= int(a) < ndim:
            raise ValueError(f"{name}: axis {int(a)} is out of bounds for an array of "
                             f"{ndim} dimensions")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{name}: repeated axis in {axis!r}")
    return tuple(sorted(out))


def _rows(x, axes):
    """``x`` with ``axes`` moved last, as a C-contiguous (rows, n) array."""
    keep = [a for a in range(x.ndim) if a not in axes]
    n = math.prod(x.shape[a] for a in axes)
    rows = math.prod(x.shape[a] for a in keep)
    return np.ascontiguousarray(np.transpose(x, keep + list(axes))).reshape(rows, n)


def row_sumsq(x2):
    """``sum |x2[r]|^2`` of every row of a (rows, n) float or complex array,
    deterministically (``npopt.kernels.reduce``), in its real dtype."""
    x2 = np.ascontiguousarray(x2)
    rows, n = x2.shape
    dt = _real_dtype(x2.dtype)
    if x2.dtype.kind == "c":
        x2, n = x2.view(dt), 2 * n               # |z|^2 = re^2 + im^2
    flat = x2.reshape(-1)
    totals = np.zeros((rows, 2), dt)
    if rows and n:
        chunks = _kreduce.chunk_table([(r * n, (r + 1) * n) for r in range(rows)])
        partial = np.empty((chunks.shape[0], 2), dt)
        _kreduce.chunk_sumsq_cpu(flat, flat, chunks, dt.type(0), partial)
        _kreduce.combine_chunks(chunks, partial, totals)
    return totals[:, 0]


def sumsq(x, axis=None, name="axis"):
    """``sum(|x|^2, axis, keepdims=True)``, deterministic (see the module
    docstring); ``x`` already inexact."""
    axes = _axes(name, axis, x.ndim)
    out_shape = tuple(1 if a in axes else s for a, s in enumerate(x.shape))
    return row_sumsq(_rows(x, axes)).reshape(out_shape)


def row_sum(x2):
    """``sum x2[r]`` of every row of a (rows, n) array, in a fixed order
    (``npopt._dense.dot`` with ones), in x2's dtype."""
    x2 = np.asarray(x2)
    rows, n = x2.shape
    if not n:
        return np.zeros(rows, x2.dtype)
    return np.asarray(_dense.dot(x2, np.ones(n, _real_dtype(x2.dtype)))).astype(
        x2.dtype, copy=False)


def _sum(x, axes):
    out_shape = tuple(1 if a in axes else s for a, s in enumerate(x.shape))
    return row_sum(_rows(x, axes)).reshape(out_shape)


def _squeeze(v, axes, keepdims):
    return v if keepdims else v.reshape(tuple(s for a, s in enumerate(v.shape) if a not in axes))


def _vector_norm(x, ord, axes):  # noqa: A002
    """``jnp.linalg.norm`` over the (vector) ``axes``, keepdims=True."""
    if ord is None or ord == 2:
        return np.sqrt(sumsq(x, axes))
    a = np.abs(x)
    if ord == np.inf:
        return np.max(a, axis=axes, keepdims=True) if a.size else np.zeros(
            tuple(1 if i in axes else s for i, s in enumerate(x.shape)), a.dtype)
    if ord == -np.inf:
        return np.min(a, axis=axes, keepdims=True)
    if ord == 0:
        return _sum((a != 0).astype(a.dtype), axes)
    if ord == 1:
        return _sum(a, axes)
    if isinstance(ord, str):
        raise ValueError(f"ord: invalid norm order {ord!r} for vectors")
    o = a.dtype.type(ord)
    return _math.power(_sum(_math.power(a, o), axes), a.dtype.type(1) / o)


def _matrix_norm(x, ord, axes):  # noqa: A002
    """``jnp.linalg.norm`` over the two matrix ``axes`` (rows, cols), keepdims=True."""
    r, c = axes
    if ord is None or ord == "fro":
        return np.sqrt(sumsq(x, axes))
    if ord in (1, -1, np.inf, -np.inf):
        a = np.abs(x)
        summed = _sum(a, (r,) if ord in (1, -1) else (c,))
        other = c if ord in (1, -1) else r
        return (np.max if ord > 0 else np.min)(summed, axis=other, keepdims=True)
    if ord in (2, -2, "nuc"):
        if x.dtype.kind == "c":
            raise ValueError(f"ord: the {ord!r} norm of complex matrices is not available "
                             "in npopt (its SVD is real only)")
        keep = [a for a in range(x.ndim) if a not in axes]
        stack = np.transpose(x, keep + [r, c])
        flat = stack.reshape((-1,) + stack.shape[-2:])
        vals = []
        for m in flat:
            s = _dense.svd(m)[1]
            if ord == "nuc":
                vals.append(row_sum(s.reshape(1, -1))[0] if s.size else x.dtype.type(0))
            else:
                vals.append((np.max if ord == 2 else np.min)(s))
        out_shape = tuple(1 if a in axes else s for a, s in enumerate(x.shape))
        return np.asarray(vals, x.dtype).reshape(out_shape)
    raise ValueError(f"ord: invalid norm order {ord!r} for matrices")


def norm(x, ord=None, axis=None, keepdims=False):  # noqa: A002 (numpy's name)
    """``jnp.linalg.norm(x, ord, axis, keepdims)``, computed deterministically."""
    x = _inexact(x)
    if axis is None:
        if ord is None:
            axes = tuple(range(x.ndim))
            return _squeeze(np.sqrt(sumsq(x, axes)).astype(_real_dtype(x.dtype)), axes,
                            keepdims)
        if x.ndim not in (1, 2):
            raise ValueError(f"ord: an order needs a vector or a matrix (or an axis), "
                             f"got an array of shape {x.shape}")
        axis = tuple(range(x.ndim))
    axes = _axes("axis", axis, x.ndim)
    if isinstance(axis, (numbers.Integral, np.integer)) or len(axes) == 1:
        out = _vector_norm(x, ord, axes)
    elif len(axes) == 2:
        given = (axis,) if isinstance(axis, (numbers.Integral, np.integer)) else tuple(axis)
        out = _matrix_norm(x, ord, tuple(int(a) % x.ndim for a in given))
    else:
        raise ValueError(f"axis: expected an int or a pair of ints, got {axis!r}")
    return _squeeze(np.asarray(out).astype(_real_dtype(x.dtype), copy=False), axes, keepdims)


def safe_norm(x, min_norm, ord=None, axis=None, keepdims=False):  # noqa: A002 (optax's name)
    r"""``max(jnp.linalg.norm(x, ord, axis, keepdims), min_norm)``.

    optax computes a second, masked norm so that the gradient is 0 (not NaN)
    below ``min_norm``; the values are the same, and npopt has no
    gradients, so this is the plain maximum (``norm <= min_norm`` gives
    ``min_norm``). Every ``ord`` of ``np.linalg.norm`` is supported; the
    matrix orders 2, -2 and 'nuc' take npopt's own (real) SVD.

    Args:
      x: an array.
      min_norm: lower bound for the returned norm.
      ord, axis, keepdims: as for ``np.linalg.norm``.

    Returns:
      The norm, floored at ``min_norm``, in x's real dtype (promoted with
      ``min_norm``'s as NumPy does; a Python float does not promote).
    """
    nrm = np.asarray(norm(x, ord=ord, axis=axis, keepdims=keepdims))
    dt = np.result_type(nrm, min_norm)
    out = np.where(nrm <= min_norm, np.asarray(min_norm).astype(dt), nrm.astype(dt))
    return out[()] if out.ndim == 0 else out


def safe_root_mean_squares(x, min_rms):
    r"""``max(sqrt(mean(|x|^2)), min_rms)`` (optax's masked form for the
    gradient, reduced to its value; see ``safe_norm``).

    The mean is the deterministic sum of squares divided by ``x.size``.
    """
    x = _inexact(x)
    rdt = _real_dtype(x.dtype)
    axes = tuple(range(x.ndim))
    with np.errstate(invalid="ignore", divide="ignore"):
        rms = np.sqrt(sumsq(x, axes).reshape(()) / rdt.type(x.size))
    dt = np.result_type(rms, min_rms)
    out = np.where(rms <= min_rms, np.asarray(min_rms).astype(dt), np.asarray(rms).astype(dt))
    return out[()]


def check_inexact_tree(name, tree):
    """The leaves of ``tree`` (None is an empty subtree), each a float or
    complex host array or scalar; a TypeError naming ``name`` otherwise
    (integer leaves, CUDA device arrays)."""
    from ._target import is_device_array
    from .tree import tree_leaves
    leaves = tree_leaves(tree)
    for i, leaf in enumerate(leaves):
        if is_device_array(leaf):
            raise TypeError(f"{name} (leaf {i}): CUDA device arrays are not supported by this "
                            "function (it has no CUDA kernel, and npopt copies nothing between "
                            "host and device behind your back); pass NumPy arrays")
        dt = getattr(leaf, "dtype", None)
        if dt is None:
            if isinstance(leaf, (bool, np.bool_)) or not isinstance(leaf, (float, complex)):
                raise TypeError(f"{name} (leaf {i}): expected float or complex arrays, got "
                                f"{type(leaf).__name__}")
        elif np.dtype(dt).kind not in "fc" and not is_narrow(np.dtype(dt)):
            raise TypeError(f"{name} (leaf {i}): expected float or complex arrays, got a "
                            f"leaf of dtype {dt}")
    return leaves


def tree_sumsq(leaves):
    """``sum_i sum |leaf_i|^2``: each leaf's sum deterministic (in its real
    dtype), the leaves' sums added in leaf order with NumPy's promotion
    (optax's ``tree.norm``: ``jax.tree.reduce(add, ..., 0)``)."""
    total = 0
    for leaf in leaves:
        x = _inexact(leaf)
        total = total + row_sumsq(x.reshape(1, -1))[0]
    return np.float64(total) if isinstance(total, int) else total
