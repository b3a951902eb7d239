r"""Muon: momentum orthogonalized by Newton-Schulz (optax.contrib 0.2.8).

For every matrix-shaped leaf, Muon keeps a momentum :math:`m` and replaces
the update by an approximate orthogonalization of the (Nesterov) momentum:

.. math::
    m_t = \beta m_{t-1} + (1-\beta) g_t,\qquad
    \hat m_t = \beta\,\frac{m_t}{1-\beta^{t+1}} + (1-\beta)\frac{g_t}{1-\beta^{t}}
    \ (\text{nesterov; else } m_t/(1-\beta^t)),

    X_0 = \hat m_t / (\|\hat m_t\|_F + \epsilon),\qquad
    X_{k+1} = a X_k + (b A_k + (c A_k) A_k) X_k,\quad A_k = X_k X_k^\top

(five steps, :math:`(a, b, c) = (3.4445, -4.775, 2.0315)`; the matrix is
transposed first when it has more rows than columns, so that
:math:`A_k` is the smaller Gram matrix). ``muon`` then scales by
:math:`\sqrt{\max(1, \text{fan\_out}/\text{fan\_in})}` (or
:math:`\sqrt{\max(\text{fan\_in}, \text{fan\_out})}\cdot` ``consistent_rms``),
adds weight decay and multiplies by :math:`-\eta`; every leaf that is not a
matrix goes to ``adamw`` (as in optax, through ``partition``).

Matrix products. ``@`` / BLAS add in an order chosen for the CPU at run time,
so npopt computes every product with ``npopt._dense.dot`` (``kernels/dense.py``
``matmat``: fixed order, the same bits on every x86-64 CPU). For an
:math:`m\times n` leaf (:math:`m\le n` after the transpose) one Newton-Schulz
step costs :math:`2m^2n + m^3` multiply-adds (:math:`X X^\top`,
:math:`A A`, :math:`B X`), so ``ns_steps`` of them cost
``ns_steps * (2 m^2 n + m^3)``: 5 steps on a 128 x 160 leaf are about 37
million multiply-adds: 11 ms in the serial fixed-order loops, against 6 ms
for NumPy's ``@`` with single-threaded OpenBLAS (measured on a 2-core x86-64
machine), whose last bits depend on the CPU. The iteration runs on
the host: on a CUDA target a GPU would do these products with cuBLAS (or a
tiled matmat kernel of fixed order); npopt has no device path for Muon yet
and raises for device arrays rather than copying them to the host.

.. warning:: optax's ``scale_by_muon`` with ``weight_dimension_numbers=None``
   only works on a single-array params tree (``jax.tree.map`` over ``None``
   fails on a dict); npopt reads None as "every leaf is a 2-D matrix", as
   optax's docstring says.

References:
  Jordan, "modded-nanogpt: Speedrunning the NanoGPT baseline", 2024
  (https://github.com/KellerJordan/modded-nanogpt).
  Bernstein & Newhouse, "Old Optimizer, New Norm: An Anthology", 2024
  (arXiv:2409.20325).
  Liu et al., "Muon is Scalable for LLM Training", 2025 (arXiv:2502.16982).
  Boissin et al., "Turbo-Muon", 2025 (arXiv:2512.04632) -- 'aol'.
  Grishina et al., "Accelerating Newton-Schulz Iteration for
  Orthogonalization via Chebyshev-type Polynomials", 2025 (arXiv:2506.10935)
  -- 'schatten'.
  Ahn et al., "Dion: Distributed Orthonormalized Updates", 2025
  (arXiv:2504.05295) -- the 'dion' coefficients.
"""
import math
from typing import Any, NamedTuple, Sequence, Union

import numpy as np

from .. import _checks, _dense
from .._target import is_device_array
from ..alias import adamw
from ..base import GradientTransformation, init_empty_state, safe_increment
from ..transforms.combine import MaskedNode, chain, partition
from ..transforms.scale import add_decayed_weights, scale_by_learning_rate
from ..tree import (tree_bias_correction, tree_cast, tree_leaves, tree_map,
                    tree_update_moment)

_PRECONDITIONINGS = ("frobenius", "spectral", "aol", "schatten")
_DEFAULT_NS_COEFFS = (3.4445, -4.7750, 2.0315)
_DION_NS_COEFFS = [
    (4.0848, -6.8946, 2.9270),
    (3.9505, -6.3029, 2.6377),
    (3.7418, -5.5913, 2.3037),
    (2.8769, -3.1427, 1.2046),
    (2.8366, -3.0525, 1.2012),
]
_NS_COEFFS_PRESET_DICT = {"standard": _DEFAULT_NS_COEFFS, "dion": _DION_NS_COEFFS}


class MuonDimensionNumbers(NamedTuple):
    """Which axes of a weight form the matrix that Muon orthogonalizes.

    ``x W = y``: the reduction axis (or axes) is the first matrix dimension,
    the output axis (or axes) the second; every other axis is a batch axis,
    orthogonalized independently.
    """
    reduction_axis: Union[Sequence[int], int] = 0
    output_axis: Union[Sequence[int], int] = 1


class MuonState(NamedTuple):
    """State of ``scale_by_muon``."""
    count: Any       # int32 ()
    mu: Any          # momentum, a tree like the params
    ns_coeffs: Any   # (3,) or (n, 3): the Newton-Schulz coefficients


def _is_dn(x):
    return isinstance(x, MuonDimensionNumbers)


def _is_dn_or_none(x):
    return x is None or isinstance(x, (MuonDimensionNumbers, MaskedNode))


def _normalize_axes(ndim, dn):
    red = (dn.reduction_axis,) if isinstance(dn.reduction_axis, int) else dn.reduction_axis
    out = (dn.output_axis,) if isinstance(dn.output_axis, int) else dn.output_axis
    return tuple(ax % ndim for ax in red), tuple(ax % ndim for ax in out)


def _reshape_fns(x, dn):
    """(reshape to (batch, m, n), inverse), as optax's _compute_muon_reshape."""
    if x.ndim < 2:
        raise ValueError(f"Muon optimized parameters must have rank >= 2, got x.ndim={x.ndim}")
    red, out = _normalize_axes(x.ndim, dn)
    if set(red) & set(out):
        raise ValueError(f"Normalized reduction axes and output axes must be disjoint, got "
                         f"{red} and {out}. Originally dim_nums={dn} and x.shape={x.shape}")
    batch = tuple(sorted(set(range(x.ndim)) - set(red) - set(out)))
    transpose = batch + red + out
    inv = tuple(sorted(range(x.ndim), key=lambda i: transpose[i]))
    shp = lambda axes: tuple(x.shape[ax] for ax in axes)   # noqa: E731
    flat = (math.prod(shp(batch)), math.prod(shp(red)), math.prod(shp(out)))
    unflat = shp(batch) + shp(red) + shp(out)
    return (lambda y: y.transpose(transpose).reshape(flat),
            lambda y: y.reshape(unflat).transpose(inv))


def _fan(x, dn):
    red, out = _normalize_axes(np.ndim(x), dn)
    return (math.prod(np.shape(x)[ax] for ax in red),
            math.prod(np.shape(x)[ax] for ax in out))


def _ns_base(x, c):
    """One Newton-Schulz step: ``c0 x + (c1 A + (c2 A) A) x``, ``A = x x^T``."""
    a = _dense.dot(x, x.T)
    b = c[1] * a + _dense.dot(c[2] * a, a)
    return c[0] * x + _dense.dot(b, x)


def _ns_aol(x, c, eps):
    """The first step with AOL rescaling (Boissin et al.)."""
    a = _dense.dot(x, x.T)
    rescaling = np.maximum(np.sum(np.abs(a), axis=-1), x.dtype.type(eps))
    s = (x.dtype.type(1) / np.sqrt(rescaling))[:, None]
    x, a = x * s, a * s * s.T
    b = c[1] * a + _dense.dot(c[2] * a, a)
    return c[0] * x + _dense.dot(b, x)


def _ns_schatten(x, c, eps):
    """The first step with Schatten-4 rescaling (Grishina et al.)."""
    a = _dense.dot(x, x.T)
    rescaling = np.maximum(_dense.norm(a), x.dtype.type(eps))
    s = x.dtype.type(1) / np.sqrt(rescaling)
    x, a = x * s, a * s ** 2
    b = c[1] * a + _dense.dot(c[2] * a, a)
    return c[0] * x + _dense.dot(b, x)


def _orthogonalize_matrix(x, coeffs, ns_steps, preconditioning, eps):
    transposed = x.shape[0] > x.shape[1]
    if transposed:
        x = x.T
    x = np.ascontiguousarray(x)
    dt = x.dtype.type
    if preconditioning == "frobenius":
        x = x / (_dense.norm(x) + dt(eps))
    elif preconditioning == "spectral":
        s = _dense.svd(x)[1]
        x = x / ((s[0] if s.size else dt(0)) + dt(eps))
    coeffs = coeffs.astype(x.dtype)
    rows = [coeffs] * int(ns_steps) if coeffs.ndim == 1 else list(coeffs)
    for i, c in enumerate(rows):
        if i == 0 and preconditioning == "aol":
            x = _ns_aol(x, c, eps)
        elif i == 0 and preconditioning == "schatten":
            x = _ns_schatten(x, c, eps)
        else:
            x = _ns_base(x, c)
    return x.T if transposed else x


def orthogonalize_via_newton_schulz(x, ns_coeffs, ns_steps=5, preconditioning="frobenius",
                                    eps=1e-8, dimension_numbers=None):
    """Orthogonalizes ``x`` (a matrix, or per ``dimension_numbers``) by
    Newton-Schulz iteration, as optax's function of the same name (module
    docstring: the recursion and its cost)."""
    x = np.asarray(x)
    if x.dtype.kind not in "f":
        raise TypeError(f"orthogonalize_via_newton_schulz: expected a real float array, got "
                        f"{x.dtype}")
    if x.ndim != 2 and not _is_dn(dimension_numbers):
        raise ValueError(f"Input must have shape (m, n) or weight dimension numbers must be "
                         f"provided. Got shape={x.shape} and {dimension_numbers=}.")
    if x.ndim == 2:
        dimension_numbers = MuonDimensionNumbers(0, 1)
    ns_coeffs = np.asarray(ns_coeffs)
    if ns_coeffs.ndim > 2 or ns_coeffs.shape[-1] != 3:
        raise ValueError(f"Newton-Schulz coefficients must have shape (3,) or (n, 3), got "
                         f"{ns_coeffs.shape}")
    if preconditioning not in _PRECONDITIONINGS:
        raise ValueError(f"Unknown preconditioning {preconditioning}")
    reshape, inverse = _reshape_fns(x, dimension_numbers)
    flat = reshape(x)
    out = np.stack([_orthogonalize_matrix(m, ns_coeffs, ns_steps, preconditioning, eps)
                    for m in flat]) if flat.shape[0] else flat.copy()
    return inverse(out)


def _check_host(tree, name):
    for leaf in tree_leaves(tree):
        if is_device_array(leaf):
            raise NotImplementedError(
                f"{name}: Muon's Newton-Schulz iteration runs on the host; CUDA device arrays "
                f"are not supported (npopt does not copy them to the host silently)")


def _resolve(weight_dimension_numbers, updates):
    dn = (weight_dimension_numbers(updates) if callable(weight_dimension_numbers)
          else weight_dimension_numbers)
    if dn is None:     # every leaf a 2-D matrix (optax's docstring)
        return tree_map(lambda _: MuonDimensionNumbers(), updates)
    if _is_dn(dn):     # one spec for every leaf
        return tree_map(lambda _: dn, updates)
    return dn


def _coeff_array(ns_coeffs, ns_steps):
    c = np.asarray(ns_coeffs)
    if c.dtype.kind not in "fiu" or c.ndim > 2 or c.ndim == 0 or c.shape[-1] != 3:
        raise ValueError(f"ns_coeffs must have shape (3,) or (n, 3), got {c.shape}")
    if c.ndim == 2:
        if not c.shape[0] <= ns_steps:
            raise ValueError(f"Not enough coeffs to perform {ns_steps} steps")
        c = c[-ns_steps:]
    return c


def scale_by_muon(ns_coeffs=_DEFAULT_NS_COEFFS, ns_steps=5, beta=0.95, eps=1e-8, mu_dtype=None,
                  *, nesterov=True, adaptive=False, preconditioning="frobenius",
                  weight_dimension_numbers=None):
    r"""Rescales updates by Muon: (Nesterov) momentum, then Newton-Schulz
    orthogonalization of every matrix (module docstring).

    Args:
      ns_coeffs: ``(a, b, c)`` of the quintic iteration, or a sequence of
        ``ns_steps`` such rows (one per step; the last ``ns_steps`` are used).
      ns_steps: the number of Newton-Schulz steps (ignored for 2-D
        ``ns_coeffs``).
      beta: the momentum decay :math:`\beta`.
      eps: added to the norm before the first division.
      mu_dtype: the momentum's dtype (None: the params').
      nesterov: Nesterov momentum.
      adaptive: scale each update by :math:`\langle \hat m, O\rangle` (the dual
        norm, Bernstein & Newhouse 2024).
      preconditioning: 'frobenius' (divide by the Frobenius norm), 'spectral'
        (by the largest singular value: a full one-sided Jacobi SVD per leaf
        and step, ``npopt._dense.svd``, about 0.1 s for 128 x 160),
        'aol' or 'schatten' (rescaled first step).
      weight_dimension_numbers: a tree of ``MuonDimensionNumbers`` like the
        params, one for all leaves, or a callable of the updates returning
        one; None: every leaf is a matrix.

    Returns:
      A GradientTransformation with state ``MuonState(count, mu, ns_coeffs)``.
    """
    beta = _checks.check_number("beta", beta, low=0.0, high=1.0)
    eps = _checks.check_number("eps", eps, low=0.0)
    if not isinstance(ns_steps, (int, np.integer)) or isinstance(ns_steps, bool) or ns_steps < 0:
        raise ValueError(f"ns_steps: expected an int >= 0, got {ns_steps!r}")
    mu_dtype = _checks.check_float_dtype("mu_dtype", mu_dtype)
    nesterov = _checks.check_bool("nesterov", nesterov)
    adaptive = _checks.check_bool("adaptive", adaptive)
    if preconditioning not in _PRECONDITIONINGS:
        raise ValueError(f"preconditioning: expected one of {_PRECONDITIONINGS}, got "
                         f"{preconditioning!r}")
    _coeff_array(ns_coeffs, ns_steps)     # fail early, as init would

    def init_fn(params):
        _check_host(params, "params")
        mu = tree_map(lambda p: np.zeros(np.shape(p), mu_dtype or np.asarray(p).dtype), params)
        return MuonState(count=np.int32(0), mu=mu, ns_coeffs=_coeff_array(ns_coeffs, ns_steps))

    def update_fn(updates, state, params=None, **extra_args):
        _checks.check_state("state", state, MuonState, "scale_by_muon")
        _check_host(updates, "updates")
        dn = _resolve(weight_dimension_numbers, updates)
        updates = tree_map(np.asarray, updates)
        mu = tree_update_moment(updates, state.mu, beta, 1)
        count_inc = safe_increment(state.count)
        if nesterov:
            mu_hat = tree_map(lambda m, g: beta * m + (1 - beta) * g,
                              tree_bias_correction(mu, beta, safe_increment(count_inc)),
                              tree_bias_correction(updates, beta, count_inc))
        else:
            mu_hat = tree_bias_correction(mu, beta, count_inc)
        new = tree_map(lambda x, d: orthogonalize_via_newton_schulz(
            x, state.ns_coeffs, ns_steps, preconditioning, eps, d),
            mu_hat, dn)
        if adaptive:
            new = tree_map(lambda x, y: _dense.vdot(x, y) * y, mu_hat, new)
        return new, MuonState(count=count_inc, mu=tree_cast(mu, mu_dtype),
                              ns_coeffs=state.ns_coeffs)

    return GradientTransformation(init_fn, update_fn)


def scale_by_shape(weight_dimension_numbers=None, consistent_rms=None):
    r"""Scales each matrix update by a factor of its shape (optax's
    ``scale_by_shape``): :math:`\sqrt{\max(1, \text{fan\_out}/\text{fan\_in})}`
    (Jordan), or :math:`\sqrt{\max(\text{fan\_in}, \text{fan\_out})}\cdot`
    ``consistent_rms`` (Liu et al. 2025). The factor is computed in float64
    and rounded to the leaf's dtype."""
    consistent_rms = _checks.check_number("consistent_rms", consistent_rms, allow_none=True)

    def scale_one(u, d):
        u = np.asarray(u)
        if u.size == 0:      # nothing to scale (optax divides by a zero fan_in here)
            return u
        fan_in, fan_out = _fan(u, d)
        if consistent_rms is None:
            s = math.sqrt(max(1, fan_out / fan_in))
        else:
            s = math.sqrt(max(fan_in, fan_out)) * consistent_rms
        return u.dtype.type(s) * u

    def update_fn(updates, state, params=None, **extra_args):
        dn = _resolve(weight_dimension_numbers, updates)
        return tree_map(scale_one, updates, dn), state

    return GradientTransformation(init_empty_state, update_fn)


def muon(learning_rate, ns_coeffs=_DEFAULT_NS_COEFFS, ns_steps=5, beta=0.95, eps=1e-8,
         weight_decay=0.0, weight_decay_mask=None, mu_dtype=None, *, nesterov=True,
         adaptive=False, preconditioning="frobenius", adam_b1=0.9, adam_b2=0.999,
         adam_eps_root=0.0, adam_weight_decay=0.0, adam_learning_rate=None,
         muon_weight_dimension_numbers=None, consistent_rms=None):
    r"""Muon: Momentum Orthogonalized by Newton-Schulz, with AdamW for the
    non-matrix leaves (optax's ``partition``):

    ``muon`` leaves: ``chain(scale_by_muon(...), scale_by_shape(...),
    add_decayed_weights(weight_decay, weight_decay_mask),
    scale_by_learning_rate(learning_rate))``; ``adam`` leaves:
    ``adamw(adam_learning_rate or learning_rate, adam_b1, adam_b2, eps,
    adam_eps_root, mu_dtype, adam_weight_decay, nesterov=nesterov)``.

    The recursion, the cost of the products and the (host-only) device story
    are in the module docstring.

    Args:
      learning_rate: a float or a schedule.
      ns_coeffs: ``(a, b, c)``, rows of them, or a preset name
        ('standard', 'dion').
      ns_steps, beta, eps, mu_dtype, nesterov, adaptive, preconditioning: see
        ``scale_by_muon`` (``eps`` is AdamW's eps too).
      weight_decay, weight_decay_mask: decoupled weight decay of the Muon
        leaves (multiplied by the learning rate).
      adam_b1, adam_b2, adam_eps_root, adam_weight_decay, adam_learning_rate:
        the AdamW of the other leaves.
      muon_weight_dimension_numbers: a tree of ``MuonDimensionNumbers`` (None
        marks a leaf for AdamW), or a callable of the params returning one;
        None: Muon for every 2-D leaf.
      consistent_rms: see ``scale_by_shape``.

    References:
      Jordan, modded-nanogpt, 2024; Liu et al., arXiv:2502.16982 (module
      docstring).
    """
    learning_rate = _checks.check_scalar_or_schedule("learning_rate", learning_rate)
    adam_learning_rate = _checks.check_scalar_or_schedule("adam_learning_rate", adam_learning_rate,
                                                          allow_none=True)
    if adam_learning_rate is None:
        adam_learning_rate = learning_rate
    if isinstance(ns_coeffs, str):
        if ns_coeffs not in _NS_COEFFS_PRESET_DICT:
            raise ValueError(f"Unknown ns_coeff preset string: {ns_coeffs}")
        ns_coeffs = _NS_COEFFS_PRESET_DICT[ns_coeffs]
    wdn = muon_weight_dimension_numbers
    if wdn is None:
        def param_labels(params):
            return tree_map(lambda x: "muon" if np.ndim(x) == 2 else "adam", params)
        wdn = MuonDimensionNumbers()
    else:
        def param_labels(params):
            dims = wdn(params) if callable(wdn) else wdn
            return tree_map(lambda d, x: tree_map(lambda _: "muon" if d is not None
                                                  else "adam", x),
                            dims, params, is_leaf=_is_dn_or_none)

    def dim_nums_fn(params):
        dims = wdn(params) if callable(wdn) else wdn
        mask = tree_map(lambda label: label == "muon", param_labels(params))
        return tree_map(lambda d, sub: tree_map(lambda m: d if m else MaskedNode(), sub),
                        dims, mask, is_leaf=_is_dn_or_none)

    return partition(
        transforms={
            "muon": chain(
                scale_by_muon(ns_coeffs=ns_coeffs, ns_steps=ns_steps, beta=beta, eps=eps,
                              mu_dtype=mu_dtype, nesterov=nesterov, adaptive=adaptive,
                              preconditioning=preconditioning,
                              weight_dimension_numbers=dim_nums_fn),
                scale_by_shape(weight_dimension_numbers=dim_nums_fn,
                               consistent_rms=consistent_rms),
                add_decayed_weights(weight_decay, weight_decay_mask),
                scale_by_learning_rate(learning_rate)),
            "adam": adamw(learning_rate=adam_learning_rate, b1=adam_b1, b2=adam_b2, eps=eps,
                          eps_root=adam_eps_root, weight_decay=adam_weight_decay,
                          mu_dtype=mu_dtype, nesterov=nesterov),
        },
        param_labels=param_labels)


__all__ = ["MuonDimensionNumbers", "MuonState", "muon", "orthogonalize_via_newton_schulz",
           "scale_by_muon", "scale_by_shape"]
