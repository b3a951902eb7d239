r"""GaLore: gradient low-rank projection (optax.contrib 0.2.8).

For every matrix leaf :math:`G \in \mathbb R^{m\times n}` (rank
:math:`r = \min(\text{rank}, m, n)`), every ``update_proj_gap`` steps a
projector is taken from the SVD of the gradient, :math:`G = U S V^\top`:
:math:`P = U_{:, :r}` if :math:`m \ge n` (left), else :math:`P = V_{:, :r}`
(right). The base optimizer runs on the low-rank gradient and its update is
projected back:

.. math::
    R = P^\top G \ \ (\text{or } G P),\qquad
    \Delta = \text{scale}\cdot P\,\mathrm{base}(R) \ \ (\text{or }
    \mathrm{base}(R)\, P^\top)

Other leaves go through the base optimizer unprojected. ``galore`` adds
decoupled weight decay and :math:`-\eta`.

The SVD. As optax, the SVD is taken of the gradient rounded to float32, and
the projector is rounded back to the leaf's dtype. npopt's SVD is
``npopt._dense.svd`` (one-sided Jacobi, fixed order: the same bits on every
CPU), not LAPACK's ``gesdd``; the two agree to float32 rounding (so a
float64 run agrees with optax's to about 1e-6, not 1e-10: optax's own
float64 numbers carry its float32 LAPACK rounding), and the signs of the
singular vectors are another matter. A singular vector's sign is arbitrary
(LAPACK's choice differs between its builds and between CPU and GPU); npopt
makes it deterministic: each column of :math:`P` has its largest-magnitude
entry positive (the first such entry on ties). With a sign-equivariant base
optimizer (Adam, SGD, ...), the updates do not depend on the signs as long
as the projector is not refreshed; after a refresh the base optimizer's
moments, kept in the old basis, meet gradients in the new one, so npopt's
trajectory, like optax's, depends on the sign convention from then on.

Matrix products are ``npopt._dense.dot`` (fixed order). On a CUDA target
the SVD and the products would be device work (a batched Jacobi SVD and
fixed-order GEMMs); npopt has no device path for GaLore and raises for
device arrays.

References:
  Zhao et al., "GaLore: Memory-Efficient LLM Training by Gradient Low-Rank
  Projection", ICML 2024 (arXiv:2403.03507).
"""
import math
from typing import Any, NamedTuple, Sequence, Union

import numpy as np

from .. import _checks, _dense
from .._target import is_device_array
from ..base import GradientTransformation, safe_int32_increment
from ..transforms.adam import scale_by_adam
from ..transforms.combine import as_transformation, chain
from ..transforms.scale import add_decayed_weights, scale_by_learning_rate
from ..tree import tree_flatten, tree_map, tree_unflatten
from ._muon import _normalize_axes      # the same dimension numbers as muon's


class GaLoreDimensionNumbers(NamedTuple):
    """Which axes of a weight form GaLore's (reduction, output) matrix."""
    reduction_axis: Union[Sequence[int], int] = 0
    output_axis: Union[Sequence[int], int] = 1


class GaLoreState(NamedTuple):
    """State of ``scale_by_galore``."""
    count: Any                  # int32 ()
    base_optimizer_state: Any   # the base optimizer's state, in the low-rank shapes
    projector: Any              # P per leaf ((0, 0) for unprojected leaves)


def _is_dn(x):
    return isinstance(x, GaLoreDimensionNumbers)


def _is_dn_leaf(x):
    return x is None or isinstance(x, GaLoreDimensionNumbers)


def _reshape_fns(x, dn):
    if x.ndim < 2:
        raise ValueError(f"GaLore requires tensors with rank >= 2, got shape {x.shape}")
    red, out = _normalize_axes(x.ndim, dn)
    if set(red) & set(out):
        raise ValueError(f"Reduction axes {red} and output axes {out} must be disjoint. "
                         f"Got dim_nums={dn} for shape {x.shape}")
    if len(set(red) | set(out)) != x.ndim:
        raise ValueError(f"All axes must be specified. Got reduction={red}, output={out} for "
                         f"tensor with {x.ndim} dimensions")
    transpose = red + out
    inv = tuple(sorted(range(x.ndim), key=lambda i: transpose[i]))
    shp = tuple(x.shape[ax] for ax in transpose)
    m, n = math.prod(shp[:len(red)]), math.prod(shp[len(red):])
    return (lambda y: np.ascontiguousarray(y.transpose(transpose).reshape(m, n)),
            lambda y: y.reshape(shp).transpose(inv))


def _canonical_signs(p):
    """Flip each column so that its largest-magnitude entry is positive."""
    if p.size == 0:
        return p
    idx = np.argmax(np.abs(p), axis=0)
    s = np.sign(p[idx, np.arange(p.shape[1])])
    return p * np.where(s < 0, -1, 1).astype(p.dtype)


def _projector(g2d, r, left):
    """P from the SVD of g2d rounded to float32 (optax), in g2d's dtype."""
    u, _, v = _dense.svd(g2d.astype(np.float32))
    p = u[:, :r] if left else v[:, :r]
    return _canonical_signs(np.ascontiguousarray(p)).astype(g2d.dtype)


def scale_by_galore(rank=128, update_proj_gap=200, scale=1.0, base_optimizer=None,
                    weight_dimension_numbers=None):
    r"""GaLore's low-rank projection around ``base_optimizer`` (module
    docstring).

    .. warning:: ``base_optimizer`` must not need the params (it sees the
       low-rank shapes): ``scale_by_adam``, ``scale_by_lion``, ``sgd(1.0)``
       are fine; ``adamw``, ``lamb``, ``lars`` are not (use ``galore``'s
       ``weight_decay``).

    Args:
      rank: the projection's rank (a positive int; capped by the matrix).
      update_proj_gap: refresh the projectors every this many steps.
      scale: multiplies the projected-back updates.
      base_optimizer: the transformation in the low-rank space (None:
        ``scale_by_adam()``).
      weight_dimension_numbers: None (project the 2-D leaves), one
        ``GaLoreDimensionNumbers`` (for every leaf of rank >= 2), a tree of
        them (None: do not project), or a callable of the params returning
        one.

    Returns:
      A GradientTransformation with state ``GaLoreState(count,
      base_optimizer_state, projector)``.
    """
    base = as_transformation("base_optimizer",
                             scale_by_adam() if base_optimizer is None else base_optimizer)
    if not isinstance(rank, int) or isinstance(rank, bool):
        raise TypeError(f"`rank` must be an int, got {type(rank)}")
    if rank <= 0:
        raise ValueError(f"`rank` must be positive, got {rank}")
    if (not isinstance(update_proj_gap, (int, np.integer)) or isinstance(update_proj_gap, bool)
            or update_proj_gap < 1):
        raise ValueError(f"update_proj_gap: expected an int >= 1, got {update_proj_gap!r}")
    scale = _checks.check_number("scale", scale)

    def dim_nums_of(tree):
        wdn = weight_dimension_numbers
        if wdn is None:
            return tree_map(lambda p: GaLoreDimensionNumbers() if np.ndim(p) == 2 else None, tree)
        if callable(wdn):
            return wdn(tree)
        if _is_dn(wdn):
            return tree_map(lambda p: wdn if np.ndim(p) >= 2 else None, tree)
        return wdn

    def leaves_with_dims(tree, name):
        leaves, treedef = tree_flatten(tree)
        for x in leaves:
            if is_device_array(x):
                raise NotImplementedError(f"{name}: GaLore runs on the host; CUDA device "
                                          f"arrays are not supported")
        dims = treedef.flatten_up_to(dim_nums_of(tree), "weight_dimension_numbers") \
            if leaves else []
        for d in dims:
            if not _is_dn_leaf(d):
                raise TypeError(f"weight_dimension_numbers: expected GaLoreDimensionNumbers "
                                f"or None per leaf, got {_checks._describe(d)}")
        return [np.asarray(x) for x in leaves], treedef, dims

    def shapes(p, dn):
        if dn is None:
            return np.zeros((0, 0), p.dtype), np.zeros_like(p)
        m, n = _reshape_fns(p, dn)[0](p).shape
        r = min(rank, m, n)
        if m >= n:
            return np.zeros((m, r), p.dtype), np.zeros((r, n), p.dtype)
        return np.zeros((n, r), p.dtype), np.zeros((m, r), p.dtype)

    def init_fn(params):
        leaves, treedef, dims = leaves_with_dims(params, "params")
        if not leaves:
            return GaLoreState(count=np.int32(0), base_optimizer_state=base.init(params),
                               projector=params)
        pairs = [shapes(p, d) for p, d in zip(leaves, dims)]
        return GaLoreState(
            count=np.int32(0),
            base_optimizer_state=base.init(tree_unflatten(treedef, [b for _, b in pairs])),
            projector=tree_unflatten(treedef, [a for a, _ in pairs]))

    def update_fn(updates, state, params=None, **extra_args):
        _checks.check_state("state", state, GaLoreState, "scale_by_galore")
        leaves, treedef, dims = leaves_with_dims(updates, "updates")
        refresh = int(state.count) % update_proj_gap == 0
        projs = treedef.flatten_up_to(state.projector, "state.projector") if leaves else []
        low, new_projs = [], []
        for g, proj, d in zip(leaves, projs, dims):
            if d is None:
                low.append(g)
                new_projs.append(proj)
                continue
            g2 = _reshape_fns(g, d)[0](g)
            m, n = g2.shape
            left = m >= n
            proj = _projector(g2, min(rank, m, n), left) if refresh else np.asarray(proj)
            low.append(_dense.dot(proj.T, g2) if left else _dense.dot(g2, proj))
            new_projs.append(proj)
        low_updates, new_base = base.update(tree_unflatten(treedef, low),
                                            state.base_optimizer_state, None)
        out = []
        for lu, proj, g, d in zip(treedef.flatten_up_to(low_updates, "base updates")
                                  if leaves else [], new_projs, leaves, dims):
            if d is None:
                out.append(lu)
                continue
            lu = np.asarray(lu)
            g2shape = _reshape_fns(g, d)[0](g).shape
            full = _dense.dot(proj, lu) if g2shape[0] >= g2shape[1] else _dense.dot(lu, proj.T)
            out.append((g.dtype.type(scale) * _reshape_fns(g, d)[1](full)).astype(g.dtype))
        return (tree_unflatten(treedef, out) if leaves else updates,
                GaLoreState(count=safe_int32_increment(state.count),
                            base_optimizer_state=new_base,
                            projector=tree_unflatten(treedef, new_projs) if leaves
                            else state.projector))

    return GradientTransformation(init_fn, update_fn)


def galore(learning_rate, rank=128, update_proj_gap=200, scale=1.0, base_optimizer=None,
           weight_decay=0.0, mask=None, weight_dimension_numbers=None):
    r"""GaLore: ``chain(scale_by_galore(rank, update_proj_gap, scale,
    base_optimizer, weight_dimension_numbers), add_decayed_weights(weight_decay,
    mask), scale_by_learning_rate(learning_rate))`` (module docstring: the
    projection, the SVD, and where npopt's numbers differ from optax's).

    Args:
      learning_rate: a float or a schedule.
      rank, update_proj_gap, scale, base_optimizer, weight_dimension_numbers:
        see ``scale_by_galore``.
      weight_decay, mask: decoupled weight decay in the full space, and where.

    References:
      Zhao et al., ICML 2024 (arXiv:2403.03507).
    """
    learning_rate = _checks.check_scalar_or_schedule("learning_rate", learning_rate)
    return chain(scale_by_galore(rank=rank, update_proj_gap=update_proj_gap, scale=scale,
                                 base_optimizer=base_optimizer,
                                 weight_dimension_numbers=weight_dimension_numbers),
                 add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(learning_rate))


__all__ = ["GaLoreDimensionNumbers", "GaLoreState", "galore", "scale_by_galore"]
