"""scale_by_polyak: the Polyak step size (Loizou et al., 2021; Berrada et al., 2020).

``update(..., value=f(params))`` scales the whole update by one scalar,

    step = min((f - f_min) / (||u||^2 + eps), max_learning_rate)   ('sps')

with ``(f - f_min)_+`` for ``'sps+'`` (Garrigos et al., 2023), and ``step = 0``
when ``||u||^2 + eps <= finfo(float).eps``. ``||u||^2`` is a deterministic
chunked sum per leaf (``npopt.transforms._segments``), added over the leaves
in tree order in their dtypes, as optax's ``tree_norm`` does.

``polyak_sgd_step`` is the fused step of ``chain(sgd(scaling),
scale_by_polyak(...))`` (``npopt.kernels.polyak``).
"""
import numbers

import numpy as np

from .. import _checks, _flat
from ..base import EmptyState, GradientTransformationExtraArgs, init_empty_state
from ..kernels import apply as kapply
from ..kernels import polyak as kpolyak
from ..kernels import reduce as kreduce
from . import _segments

ScaleByPolyakState = EmptyState
VARIANTS = ("sps", "sps+")
# optax compares with jnp.finfo(float).eps: float64's, whatever the params' dtype
MACHINE_EPS = float(np.finfo(float).eps)

MISSING_VALUE_MSG = (
    "value: scale_by_polyak needs the objective value at the current params; call "
    "update(updates, state, params, value=f(params)) (or step(..., value=f(params)))")


def check_value(value):
    """The ``value`` extra argument: a real scalar (a Python or NumPy number, or a 0-d array)."""
    if value is None:
        raise TypeError(MISSING_VALUE_MSG)
    ok = isinstance(value, (numbers.Real, np.floating, np.integer)) or (
        hasattr(value, "dtype") and np.shape(value) == () and np.dtype(value.dtype).kind in "fiu")
    if not ok:
        raise TypeError(f"value: expected the objective value as a real scalar, got "
                        f"{_checks._describe(value)}")
    return value


def check_polyak_args(f_min, max_learning_rate, eps, variant):
    f_min = _checks.check_number("f_min", f_min)
    max_learning_rate = _checks.check_number("max_learning_rate", max_learning_rate, low=0.0)
    eps = _checks.check_number("eps", eps, low=0.0)
    if variant not in VARIANTS:
        raise ValueError(f"variant: expected 'sps' or 'sps+', got {variant!r}")


def total_sumsq(lay, per_group):
    """Add the per-leaf sums (per_group[gi]: host array, one per leaf of group gi)
    over the leaves in tree order, starting from 0: optax's
    ``tree.reduce(add, sums, initializer=0)`` (NumPy's promotion = JAX's)."""
    where = {}
    for gi, grp in enumerate(lay.groups):
        for j, i in enumerate(grp.leaf_ids):
            where[i] = (gi, j)
    total = 0
    for i in range(lay.num_leaves):
        gi, j = where[i]
        total = total + per_group[gi][j]
    return total


def polyak_step(value, sumsq, f_min, max_learning_rate, eps, variant):
    """The scalar step (dtype of ``sumsq``) from the objective value and ``||u||^2``."""
    dtype = np.asarray(sumsq).dtype
    gap = np.asarray(value - f_min).astype(dtype)
    if variant == "sps+":
        gap = np.maximum(gap, dtype.type(0))
    denom = sumsq + dtype.type(eps)
    if denom <= MACHINE_EPS:
        return dtype.type(0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.minimum(gap / denom, dtype.type(max_learning_rate))


def scale_by_polyak(f_min=0.0, max_learning_rate=1.0, eps=0.0, variant="sps"):
    r"""Scales the updates by Polyak's step size.

    .. math::
        u \leftarrow \min\left(\frac{f(x) - f^\star}{\|u\|^2 + \epsilon},
        \gamma_{\max}\right) u

    (:math:`(f(x) - f^\star)_+` with ``variant='sps+'``; a step of 0 when
    :math:`\|u\|^2 + \epsilon` is at most float64's machine epsilon).

    .. warning:: As in optax the threshold is ``finfo(float).eps`` (2.2e-16)
       for every dtype, also float32.

    Args:
      f_min: a lower bound on the objective (:math:`f^\star`).
      max_learning_rate: :math:`\gamma_{\max}`, the largest step.
      eps: added to the squared norm.
      variant: ``'sps'`` or ``'sps+'``.

    ``update`` needs the keyword ``value``, the objective at the current
    params (a TypeError says so when it is missing).

    References:
      Loizou et al., "Stochastic Polyak Step-size for SGD", AISTATS 2021
      (arXiv:2002.10542); Berrada et al., "Training Neural Networks for and
      by Interpolation", ICML 2020; Garrigos et al., "Function Value
      Learning", 2023 (arXiv:2307.14528).
    """
    check_polyak_args(f_min, max_learning_rate, eps, variant)

    def update_fn(updates, state, params=None, *, value=None, **extra_args):
        check_value(value)
        lay, _ = _flat.layout_of(updates, "updates")
        u = lay.gather(updates, "updates")
        if lay.num_leaves == 0:
            return updates, state
        sums = [_segments.group_sumsq(lay, gi, u[gi])[:, 0] for gi in range(len(lay.groups))]
        total = total_sumsq(lay, sums)
        step = polyak_step(value, total, f_min, max_learning_rate, eps, variant)
        out = []
        for grp, ub in zip(lay.groups, u):
            # a float64 step meeting float32 leaves promotes them, as in JAX
            dt = np.result_type(step.dtype, grp.dtype)
            ob = lay.target.empty(grp.size, dt)
            lay.target.launch(kapply.scale_cpu, kapply.scale_cuda, ub, ob, dt.type(step))
            out.append(ob)
        return lay.views(out), state

    return GradientTransformationExtraArgs(init_empty_state, update_fn)


def scaled_leaf_sumsq(lay, gi, g, s):
    """Per-leaf sum of (s*g)^2 for group gi (host array), with the same chunks and
    order as ``_segments.group_sumsq`` applied to ``s*g``."""
    grp = lay.groups[gi]
    chunks, chunks_t, _ = _segments.tables(lay)[gi]
    totals = np.zeros((len(grp.leaf_ids), 1), grp.dtype)
    k = len(chunks)
    if k:
        partial = lay.target.empty(k, grp.dtype).reshape(k, 1)
        lay.target.launch(kpolyak.scaled_chunk_sumsq_cpu, kpolyak.scaled_chunk_sumsq_cuda,
                          g, chunks_t, s, grp.dtype.type(0), partial)
        if lay.target.device:
            partial = partial.copy_to_host()
        kreduce.combine_chunks(chunks, partial, totals)
    return totals[:, 0]


def polyak_sgd_step(rate, f_min, max_learning_rate, eps, variant, n_txs=2):
    """The fused ``step`` of ``chain(sgd(scaling), scale_by_polyak(...))``.

    ``rate`` is the ``_fusion.Rate`` of ``scale_by_learning_rate(scaling)``;
    the chain's state is ``((EmptyState(), rate state), EmptyState())``.
    Same numbers as update + apply_updates, up to the FMA of the last add.
    """
    def step(params, grads, state, *, value=None, **extra_args):
        from . import _fusion
        check_value(value)
        if not (isinstance(state, tuple) and len(state) == n_txs
                and isinstance(state[0], tuple) and len(state[0]) == 2):
            raise TypeError("state: expected the ((sgd state), EmptyState()) tuple made by "
                            f"polyak_sgd's init, got {type(state).__name__}")
        io = _fusion.begin(params, grads)
        s = _fusion.rate_value(rate, state[0][1])
        _fusion.commit(io)          # no state buffers: grads overlapping params are copied
        lay, g, p, copied = io.lay, io.g, io.p, io.copied
        if lay.num_leaves:
            scales = [grp.dtype.type(s) for grp in lay.groups]
            sums = [scaled_leaf_sumsq(lay, gi, g[gi], scales[gi])
                    for gi in range(len(lay.groups))]
            st = polyak_step(value, total_sumsq(lay, sums), f_min, max_learning_rate, eps,
                             variant)
            for grp, gb, pb, sc in zip(lay.groups, g, p, scales):
                stt = np.result_type(st.dtype, grp.dtype).type(st)   # as in update_fn
                lay.target.launch(kpolyak.polyak_apply_cpu, kpolyak.polyak_apply_cuda,
                                  gb, pb, sc, stt)
        new_state = ((state[0][0], rate.advance(state[0][1])), state[1])
        return (lay.views(p) if copied else params), new_state
    return step
