r"""Proximity operators: ``jaxopt.prox`` for NumPy (and CUDA arrays).

The proximity operator of a convex function ``g``, scaled by ``s > 0``, is

.. math::

    \mathrm{prox}_{s g}(x) = \operatorname{argmin}_y \tfrac12 \|x - y\|_2^2 + s\, g(y),

characterised by the optimality condition ``x - prox(x) ∈ s ∂g(prox(x))``.
It is firmly non-expansive, and for ``g`` the indicator of a convex set it is
the Euclidean projection onto that set. Proximal gradient methods
(``npopt.ProximalGradient``) call ``prox(x - s ∇f(x), hyperparams, s)``.

Every operator has jaxopt 0.8.5's signature ``prox(x, hyperparams=None,
scaling=1.0)`` (the second parameter keeps jaxopt's name: ``l1reg``,
``l2reg`` or ``hyperparams``) and takes pytrees:

=================================  ===================================  ===========================
function                           g(y)                                 prox
=================================  ===================================  ===========================
prox_none(x)                       0                                    x
prox_lasso(x, l1reg)               l1reg ||y||_1                        soft(x, s l1reg)
prox_non_negative_lasso(x, l1reg)  l1reg ||y||_1 + indicator(y >= 0)    max(x - s l1reg, 0)
prox_elastic_net(x, (lam, gam))    lam (||y||_1 + gam/2 ||y||^2)        soft(x, s lam) / d,
                                                                        d = 1 + s lam gam
prox_group_lasso(x, l2reg)         l2reg ||y||_2  (the whole tree)      max(1 - s l2reg/||x||, 0) x
prox_ridge(x, l2reg)               l2reg/2 ||y||^2                      x / (1 + s l2reg)
prox_non_negative_ridge(x, l2reg)  l2reg/2 ||y||^2 + indicator(y >= 0)  max(x / (1 + s l2reg), 0)
make_prox_from_projection(proj)    indicator of a convex set            proj(x, hyperparams)
=================================  ===================================  ===========================

(``soft(u, t) = sign(u) max(|u| - t, 0)`` is soft thresholding.) jaxopt's
docstrings of ``prox_ridge`` and ``prox_non_negative_ridge`` state the penalty
``l2reg ||y||^2``, but their code (ported here) is the prox of
``l2reg/2 ||y||^2``.

Conventions:

* ``x`` is a pytree of float32 or float64 arrays (Python floats become 0-d
  float64 arrays); the output has its structure, shapes and dtypes. Leaves
  that are CUDA arrays are processed on the device by the CUDA kernels (their
  array hyperparameters must live there too).
* Regularisation strengths are finite numbers ``>= 0``. ``prox_lasso``,
  ``prox_non_negative_lasso`` and ``prox_elastic_net`` also take a pytree of
  the structure of ``x`` whose leaves are scalars or arrays broadcastable to
  the matching leaf (weights applied coordinate-wise); jaxopt accepts that
  for the first and the last only. The others take a scalar, as in jaxopt.
* Rounding follows jaxopt with x64 enabled: Python-float hyperparameters are
  weakly typed, so in a float32 leaf the lasso threshold is
  ``float32(l1reg) * float32(scaling)`` while the ridge factor
  ``1 / (1 + scaling * l2reg)`` is computed in float64 and rounded once, as
  jaxopt's expressions do. npopt never promotes a float32 leaf to float64
  (jaxopt does when a hyperparameter is a float64 array).
* ``scaling`` must be a finite number ``>= 0``.

The elementwise operators are numba kernels (``npopt.kernels.prox``), one
rule compiled for the CPU and for CUDA.

References: Moreau, "Proximité et dualité dans un espace hilbertien", Bull.
SMF 1965; Combettes & Wajs, "Signal recovery by proximal forward-backward
splitting", Multiscale Model. Simul. 2005; Parikh & Boyd, "Proximal
algorithms", Found. Trends Optim. 2014 (§6.5); Donoho & Johnstone, "Ideal
spatial adaptation by wavelet shrinkage", Biometrika 1994 (soft
thresholding); Zou & Hastie, "Regularization and variable selection via the
elastic net", JRSS B 2005; Yuan & Lin, "Model selection and estimation in
regression with grouped variables", JRSS B 2006 (group lasso).
"""
import numbers

import numpy as np

from . import tree as _tree
from ._checks import _describe, check_number
from ._target import is_device_array
from .kernels import prox as _k
from .kernels._jit import CHUNK

__all__ = [
    "prox_none", "prox_lasso", "prox_non_negative_lasso", "prox_elastic_net",
    "prox_group_lasso", "prox_ridge", "prox_non_negative_ridge",
    "make_prox_from_projection",
]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# ---------------------------------------------------------------------------
# argument handling
# ---------------------------------------------------------------------------

def _leaf(x):
    """A leaf of ``x``: a float32/float64 array (NumPy or CUDA)."""
    if is_device_array(x):
        if np.dtype(x.dtype) not in _FLOATS:
            raise TypeError(f"x: expected float32 or float64 leaves, got dtype {x.dtype}")
        return x
    if isinstance(x, (bool, np.bool_)):
        raise TypeError(f"x: expected floating-point leaves, got {x!r}")
    if isinstance(x, numbers.Real) and not isinstance(x, np.generic):
        if isinstance(x, numbers.Integral):
            raise TypeError(f"x: expected floating-point leaves (float32 or float64), "
                            f"got the integer {x!r}")
        return np.asarray(x, np.float64)
    try:
        arr = np.asarray(x)
    except Exception:  # noqa: BLE001 - anything numpy cannot read
        raise TypeError(f"x: expected a pytree of arrays, got a leaf {_describe(x)}") from None
    if arr.dtype not in _FLOATS:
        raise TypeError(f"x: expected floating-point leaves (float32 or float64), got a "
                        f"leaf of dtype {arr.dtype}")
    return arr


def _flatten_x(x):
    leaves, treedef = _tree.tree_flatten(x)
    return [_leaf(v) for v in leaves], treedef


def _scaling(scaling):
    return float(check_number("scaling", scaling, low=0))


def _is_scalar(v):
    return (isinstance(v, (numbers.Real, np.generic)) and not isinstance(v, (bool, np.bool_))) \
        or (isinstance(v, np.ndarray) and v.ndim == 0)


def _strength(name, value):
    """A scalar regularisation strength: a finite number >= 0, as a float."""
    return float(check_number(name, value, low=0))


def _strengths(name, value, treedef, leaves):
    """One strength per leaf of x: a float, or an array of the leaf's shape
    and dtype (on the leaf's device).

    ``value`` is a scalar (broadcast to every leaf) or a pytree with the
    structure of x whose leaves are scalars or arrays broadcastable to the
    matching leaf of x. Every value must be finite and >= 0.
    """
    if _is_scalar(value):
        return [_strength(name, value)] * len(leaves)
    try:
        parts = treedef.flatten_up_to(value, name)
    except ValueError as e:
        raise ValueError(f"{name}: expected a number >= 0 or a pytree with the structure "
                         f"of x; {e}") from None
    out = []
    for i, (v, leaf) in enumerate(zip(parts, leaves)):
        where = f"{name} (leaf {i})" if len(leaves) > 1 else name
        if _is_scalar(v):
            out.append(_strength(where, v))
            continue
        if is_device_array(v):
            if not is_device_array(leaf) or v.shape != leaf.shape or v.dtype != leaf.dtype:
                raise TypeError(
                    f"{where}: a CUDA array must be on the device with its leaf of x and "
                    f"have its shape {leaf.shape} and dtype {leaf.dtype}, got shape "
                    f"{v.shape} and dtype {v.dtype}")
            out.append(v)   # values are not checked on the device (no host copy)
            continue
        try:
            arr = np.asarray(v)
        except Exception:  # noqa: BLE001
            raise TypeError(f"{where}: expected a number or an array, got {_describe(v)}") \
                from None
        if arr.dtype.kind not in "fiu" or arr.dtype == np.bool_:
            raise TypeError(f"{where}: expected real numbers, got {_describe(v)}")
        if arr.ndim == 0:
            out.append(_strength(where, arr))
            continue
        try:
            ok = np.broadcast_shapes(arr.shape, leaf.shape) == tuple(leaf.shape)
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"{where}: expected a scalar or an array broadcastable to the "
                             f"shape {tuple(leaf.shape)} of its leaf of x, got shape {arr.shape}")
        if arr.size and not (np.all(np.isfinite(arr)) and np.min(arr) >= 0):
            bad = arr[~(np.isfinite(arr) & (arr >= 0))].flat[0]
            raise ValueError(f"{where}: expected finite values >= 0, got {bad.item()!r}")
        if is_device_array(leaf):
            raise TypeError(
                f"{where}: x is a CUDA array, so an array strength must be a CUDA array too "
                "(npopt never copies between host and device)")
        out.append(np.broadcast_to(arr, leaf.shape).astype(leaf.dtype, order="C"))
    return out


def _pair(hyperparams):
    if not isinstance(hyperparams, (tuple, list)) or len(hyperparams) != 2:
        raise TypeError(f"hyperparams: expected a tuple (lam, gam) of two strengths (numbers "
                        f"or pytrees), got {_describe(hyperparams)}")
    return hyperparams


# ---------------------------------------------------------------------------
# running the kernels on one leaf
# ---------------------------------------------------------------------------

def _cuda():
    from npopt.kernels._jit import cuda_module
    return cuda_module()


def _run(x, cpu, gpu, arrays=(), scalars=()):
    """``kernel(x_flat, *arrays_flat, out_flat, *scalars)`` on one leaf; a new leaf."""
    n = x.size
    if is_device_array(x):
        cuda = _cuda()
        if not x.is_c_contiguous():
            raise ValueError("x: expected C-contiguous CUDA arrays")
        out = cuda.device_array(x.shape, x.dtype)
        if n:
            gpu(n, x.reshape(n), *[a.reshape(n) for a in arrays], out.reshape(n), *scalars)
        return out
    xc = x if x.flags.c_contiguous else x.copy()   # (ascontiguousarray makes 0-d 1-d)
    out = np.empty_like(xc)
    if n:
        cpu(xc.reshape(-1), *[a.reshape(-1) for a in arrays], out.reshape(-1), *scalars)
    return out


def _sumsq(x):
    """sum(x**2) of one leaf in its dtype (chunked: CPU and CUDA sum alike)."""
    n = x.size
    dt = np.dtype(x.dtype)
    zero = dt.type(0)
    if n == 0:
        return zero
    k = (n + CHUNK - 1) // CHUNK
    if is_device_array(x):
        cuda = _cuda()
        parts = cuda.device_array(k, dt)
        _k.sumsq_chunks_cuda(k, x.reshape(n), zero, parts)
        parts = parts.copy_to_host()   # k scalars: the only read-back
    else:
        parts = np.empty(k, dt)
        _k.sumsq_chunks_cpu(np.ascontiguousarray(x.reshape(-1)), zero, parts)
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    return total


# ---------------------------------------------------------------------------
# the operators
# ---------------------------------------------------------------------------

def prox_none(x, hyperparams=None, scaling=1.0):
    r"""Proximal operator of :math:`g(x) = 0`: the identity.

    .. math::  \operatorname{argmin}_y \tfrac12 \|x - y\|_2^2 = x

    Args:
      x: input pytree.
      hyperparams: ignored.
      scaling: ignored.
    Returns:
      ``x`` itself.
    """
    del hyperparams, scaling
    return x


def prox_lasso(x, l1reg=None, scaling=1.0):
    r"""Proximal operator of the l1 norm: soft thresholding.

    .. math::

        \operatorname{argmin}_y \tfrac12 \|x - y\|_2^2
        + \text{scaling} \cdot \text{l1reg} \cdot \|y\|_1
        = \operatorname{sign}(x) \max(|x| - \text{scaling}\cdot\text{l1reg}, 0)

    elementwise (Donoho & Johnstone 1994). When ``l1reg`` is a pytree, the
    weights apply coordinate-wise (a weighted l1 norm).

    Args:
      x: input pytree.
      l1reg: regularization strength >= 0, a number or a pytree with the
        structure of ``x`` (default 1.0).
      scaling: a scaling factor >= 0.
    Returns:
      output pytree, with the same structure as ``x``.
    """
    if l1reg is None:
        l1reg = 1.0
    s = _scaling(scaling)
    leaves, treedef = _flatten_x(x)
    regs = _strengths("l1reg", l1reg, treedef, leaves)
    out = []
    for v, r in zip(leaves, regs):
        t = v.dtype.type
        if isinstance(r, float):   # jaxopt: (l1reg * ones_like(v)) * scaling, in v's dtype
            out.append(_run(v, _k.lasso_cpu, _k.lasso_cuda, (), (t(r) * t(s), t(0))))
        else:
            out.append(_run(v, _k.lasso_array_cpu, _k.lasso_array_cuda, (r,), (t(s), t(0))))
    return treedef.unflatten(out)


def prox_non_negative_lasso(x, l1reg=None, scaling=1.0):
    r"""Proximal operator of the l1 norm on the non-negative orthant.

    .. math::

        \operatorname{argmin}_{y \ge 0} \tfrac12 \|x - y\|_2^2
        + \text{scaling} \cdot \text{l1reg} \cdot \|y\|_1
        = \max(x - \text{scaling}\cdot\text{l1reg}, 0)

    Args:
      x: input pytree.
      l1reg: regularization strength >= 0, a number or (npopt) a pytree with
        the structure of ``x`` (default 1.0).
      scaling: a scaling factor >= 0.
    Returns:
      output pytree, with the same structure as ``x``.
    """
    if l1reg is None:
        l1reg = 1.0
    s = _scaling(scaling)
    leaves, treedef = _flatten_x(x)
    regs = _strengths("l1reg", l1reg, treedef, leaves)
    out = []
    for v, r in zip(leaves, regs):
        t = v.dtype.type
        if isinstance(r, float):   # jaxopt: y - l1reg * scaling (a Python float product)
            out.append(_run(v, _k.non_negative_lasso_cpu, _k.non_negative_lasso_cuda, (),
                            (t(r * s), t(0))))
        else:
            out.append(_run(v, _k.non_negative_lasso_array_cpu,
                            _k.non_negative_lasso_array_cuda, (r,), (t(s), t(0))))
    return treedef.unflatten(out)


def prox_elastic_net(x, hyperparams=None, scaling=1.0):
    r"""Proximal operator of the elastic net penalty.

    .. math::

        \operatorname{argmin}_y \tfrac12 \|x - y\|_2^2
        + \text{scaling} \cdot \lambda \left(\|y\|_1 + \tfrac{\gamma}{2} \|y\|_2^2\right)
        = \frac{\operatorname{sign}(x) \max(|x| - \text{scaling}\,\lambda, 0)}
               {1 + \text{scaling}\,\lambda\,\gamma}

    with ``(lambda, gamma) = hyperparams`` (Zou & Hastie 2005).

    Args:
      x: input pytree.
      hyperparams: a tuple ``(lam, gam)`` (default ``(1.0, 1.0)``); each a
        number >= 0 or a pytree with the structure of ``x``.
      scaling: a scaling factor >= 0.
    Returns:
      output pytree, with the same structure as ``x``.
    """
    if hyperparams is None:
        hyperparams = (1.0, 1.0)
    lam, gam = _pair(hyperparams)
    s = _scaling(scaling)
    leaves, treedef = _flatten_x(x)
    lams = _strengths("hyperparams[0]", lam, treedef, leaves)
    gams = _strengths("hyperparams[1]", gam, treedef, leaves)
    out = []
    for v, a, b in zip(leaves, lams, gams):
        t = v.dtype.type
        if isinstance(a, float) and isinstance(b, float):
            # jaxopt: thr = scaling * lam and 1.0 + thr * gam, in v's dtype
            thr = t(s) * t(a)
            out.append(_run(v, _k.elastic_net_cpu, _k.elastic_net_cuda, (),
                            (thr, t(1) + thr * t(b), t(0))))
            continue
        if is_device_array(v):
            if isinstance(a, float) or isinstance(b, float):
                raise TypeError("hyperparams: x is a CUDA array; give both strengths as "
                                "numbers or both as CUDA arrays")
        else:
            a = np.full(v.shape, a, v.dtype) if isinstance(a, float) else a
            b = np.full(v.shape, b, v.dtype) if isinstance(b, float) else b
        out.append(_run(v, _k.elastic_net_array_cpu, _k.elastic_net_array_cuda, (a, b),
                        (t(s), t(1), t(0))))
    return treedef.unflatten(out)


def prox_group_lasso(x, l2reg=1.0, scaling=1.0):
    r"""Proximal operator of the l2 norm: block soft thresholding.

    .. math::

        \operatorname{argmin}_y \tfrac12 \|x - y\|_2^2
        + \text{scaling} \cdot \text{l2reg} \cdot \|y\|_2
        = \max\left(1 - \frac{\text{scaling}\cdot\text{l2reg}}{\|x\|_2}, 0\right) x

    where the whole pytree is one group (Yuan & Lin 2006). For several groups
    (jaxopt: ``jax.vmap``) call it once per group. ``x = 0`` gives 0.

    Args:
      x: input pytree.
      l2reg: regularization strength, a number >= 0 (None means 1.0).
      scaling: a scaling factor >= 0.
    Returns:
      output pytree, with the same structure as ``x``.
    """
    if l2reg is None:
        l2reg = 1.0
    r = _strength("l2reg", l2reg)
    s = _scaling(scaling)
    leaves, treedef = _flatten_x(x)
    if not leaves:
        return x
    dts = {np.dtype(v.dtype) for v in leaves}
    dt = dts.pop() if len(dts) == 1 else np.dtype(np.float64)
    t = dt.type
    sq = t(0)
    for v in leaves:     # jaxopt's tree_l2_norm: per-leaf sums, added in leaf order
        sq = sq + t(_sumsq(v))
    norm = np.sqrt(sq)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = t(1) - t(r * s) / norm
    factor = factor if factor >= 0 else t(0)      # NaN (0/0) -> 0, as jnp.where
    return treedef.unflatten([_run(v, _k.scale_cpu, _k.scale_cuda, (),
                                   (v.dtype.type(factor),)) for v in leaves])


def prox_ridge(x, l2reg=1.0, scaling=1.0):
    r"""Proximal operator of the squared l2 norm.

    .. math::

        \operatorname{argmin}_y \tfrac12 \|x - y\|_2^2
        + \text{scaling} \cdot \tfrac{\text{l2reg}}{2} \|y\|_2^2
        = \frac{x}{1 + \text{scaling}\cdot\text{l2reg}}

    (jaxopt's docstring omits the 1/2; its code, ported here, has it.)

    Args:
      x: input pytree.
      l2reg: regularization strength, a number >= 0 (None means 1.0).
      scaling: a scaling factor >= 0.
    Returns:
      output pytree, with the same structure as ``x``.
    """
    if l2reg is None:
        l2reg = 1.0
    factor = 1.0 / (1.0 + _scaling(scaling) * _strength("l2reg", l2reg))
    leaves, treedef = _flatten_x(x)
    return treedef.unflatten([_run(v, _k.scale_cpu, _k.scale_cuda, (),
                                   (v.dtype.type(factor),)) for v in leaves])


def prox_non_negative_ridge(x, l2reg=1.0, scaling=1.0):
    r"""Proximal operator of the squared l2 norm on the non-negative orthant.

    .. math::

        \operatorname{argmin}_{y \ge 0} \tfrac12 \|x - y\|_2^2
        + \text{scaling} \cdot \tfrac{\text{l2reg}}{2} \|y\|_2^2
        = \max\left(\frac{x}{1 + \text{scaling}\cdot\text{l2reg}}, 0\right)

    (jaxopt's docstring omits the 1/2; its code, ported here, has it.)

    Args:
      x: input pytree.
      l2reg: regularization strength, a number >= 0 (None means 1.0).
      scaling: a scaling factor >= 0.
    Returns:
      output pytree, with the same structure as ``x``.
    """
    if l2reg is None:
        l2reg = 1.0
    factor = 1.0 / (1.0 + _strength("l2reg", l2reg) * _scaling(scaling))
    leaves, treedef = _flatten_x(x)
    return treedef.unflatten([_run(v, _k.relu_scale_cpu, _k.relu_scale_cuda, (),
                                   (v.dtype.type(factor), v.dtype.type(0))) for v in leaves])


def make_prox_from_projection(projection):
    """Turns a projection ``projection(x, hyperparams)`` into a proximal operator.

    The prox of the indicator function of a convex set ``C`` is the projection
    onto ``C`` for every ``scaling`` (``s * indicator = indicator``), so
    ``prox(x, hyperparams=None, scaling=1.0) = projection(x, hyperparams)``.

    Args:
      projection: a projection, e.g. one of ``npopt.projection``.
    Returns:
      ``prox(x, hyperparams=None, scaling=1.0)``.
    """
    if not callable(projection):
        raise TypeError(f"projection: expected a callable projection(x, hyperparams), "
                        f"got {_describe(projection)}")

    def prox(x, hyperparams=None, scaling=1.0):
        del scaling  # The scaling parameter is meaningless for projections.
        return projection(x, hyperparams)
    prox.__doc__ = f"Proximal operator made from {getattr(projection, '__name__', projection)}."
    return prox
