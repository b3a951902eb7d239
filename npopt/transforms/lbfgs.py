r"""scale_by_lbfgs: the L-BFGS direction (Liu & Nocedal, 1989), as optax 0.2.8.

The update ``u_k`` (a gradient) is multiplied by an approximation
:math:`P_k` of the inverse Hessian built from the last ``m`` pairs
:math:`s_j = w_{j+1} - w_j`, :math:`y_j = u_{j+1} - u_j` with the two-loop
recursion (Nocedal & Wright, *Numerical Optimization*, Algorithm 7.4)::

    q = u
    for j = newest ... oldest:   alpha_j = rho_j <s_j, q>;  q = q - alpha_j y_j
    q = gamma q
    for j = oldest ... newest:   beta_j = rho_j <y_j, q>;   q = q + (alpha_j - beta_j) s_j

with :math:`\rho_j = 1/\langle y_j, s_j\rangle` (0 when the product is 0).

Flat-buffer implementation (see ``npopt.kernels.lbfgs``): the memories are
ring buffers of ``m`` stacked leaves, laid out leaf after leaf like any
tree; one kernel pass writes the new pair and returns the four dot products
the step needs, then each of the ``2m`` passes of the recursion does one
axpy and the dot product of the next pass, so a step reads the memories
once. Dot products are deterministic chunked sums per leaf, added in leaf
order (optax: ``jax.tree.reduce(add, per-leaf vdot, 0)``).

Dtypes follow optax under ``jax_enable_x64`` (the reference): the weights
:math:`\rho` are stored in a float64 ``weights_memory`` (``jnp.zeros(m)``),
so for float32 params :math:`\alpha, \beta` are float64 and each axpy of
the recursion is computed in float64 and rounded once to float32.
"""
from typing import Any, NamedTuple

import numpy as np

from .. import _checks, _flat
from ..base import NO_PARAMS_MSG, ZERO, GradientTransformation, safe_increment
from ..kernels import apply as kapply
from ..kernels import lbfgs as klbfgs
from ..kernels import reduce as kreduce
from ..kernels._jit import CHUNK
from . import _fusion


class ScaleByLBFGSState(NamedTuple):
    r"""State of ``scale_by_lbfgs`` (optax's fields).

    Attributes:
      count: int32 number of updates so far.
      params: the params of the previous update.
      updates: the (incoming) updates of the previous update.
      diff_params_memory: ring buffer of the last ``memory_size`` differences
        of params, a tree of leaves of shape ``(memory_size,) + leaf.shape``.
      diff_updates_memory: the same for the differences of updates.
      weights_memory: float64 array ``(memory_size,)`` of
        :math:`\rho_j = 1/\langle y_j, s_j\rangle`. It is a host (NumPy)
        array even when the params live on a CUDA device: it holds the
        scalars the host needs to launch the recursion.
    """
    count: Any
    params: Any
    updates: Any
    diff_params_memory: Any
    diff_updates_memory: Any
    weights_memory: Any


# ---------------------------------------------------------------------------
# Deterministic reductions over a layout (shared with the line searches)
# ---------------------------------------------------------------------------

def chunk_table(grp, m=1):
    """(k, 5) int64 rows ``(start, stop, segment, base, n)`` for one group:
    fixed chunks of ``CHUNK`` elements of each leaf; ``base, n`` place the
    leaf in a memory of ``m`` stacked copies (see kernels/lbfgs.py)."""
    rows = []
    off = grp.offsets
    for s in range(len(grp.leaf_ids)):
        a, b = int(off[s]), int(off[s + 1])
        for c in range(a, b, CHUNK):
            rows.append((c, min(c + CHUNK, b), s, (m - 1) * a, b - a))
    return np.asarray(rows, np.int64).reshape(-1, 5)


class Plan:
    """Per (layout, memory size): chunk tables (on the device for CUDA
    params) and the memory layout."""

    _cache = {}

    def __init__(self, lay, m):
        self.lay = lay
        self.m = m
        self.mlay = _flat.Layout(lay.treedef, tuple((m,) + s for s in lay.shapes),
                                 lay.dtypes, lay.target)
        self.chunks_host = [chunk_table(g, m) for g in lay.groups]
        self.chunks = [lay.target.put(c) for c in self.chunks_host]

    @classmethod
    def of(cls, lay, m=1):
        key = (lay, m)
        plan = cls._cache.get(key)
        if plan is None:
            if len(cls._cache) > 256:
                cls._cache.clear()
            plan = cls._cache[key] = cls(lay, m)
        return plan

    def partial(self, gi, ncols, dtype):
        """A (k, ncols) buffer for the chunk sums of group gi."""
        k = self.chunks_host[gi].shape[0]
        if self.lay.target.device:
            return self.lay.target.empty(k * ncols, dtype).reshape(k, ncols)
        return np.empty((k, ncols), dtype)

    def leaf_total(self, per_group, dtypes):
        """Sums over all leaves, one per column: each leaf's sum rounded to
        ``dtypes[group]`` (the dtype XLA returns it in), then added in leaf
        order (jax.tree.reduce(operator.add, ., 0))."""
        leaf_dt = [None] * self.lay.num_leaves
        for grp, dt in zip(self.lay.groups, dtypes):
            for leaf in grp.leaf_ids:
                leaf_dt[leaf] = np.dtype(dt).type
        rows = self.leaf_sums(per_group)
        return [sum_in_leaf_order(t(r[c]) for t, r in zip(leaf_dt, rows))
                for c in range(rows[0].shape[0])] if rows else []

    def leaf_sums(self, per_group):
        """Per-leaf sums, in leaf order, from each group's chunk sums.

        per_group[gi]: (k, ncols) chunk sums of group gi (host or device).
        Returns a list (one per leaf) of rows of ncols scalars.
        """
        rows = [None] * self.lay.num_leaves
        for gi, (grp, part) in enumerate(zip(self.lay.groups, per_group)):
            if self.lay.target.device:
                part = part.copy_to_host()
            totals = np.empty((len(grp.leaf_ids), part.shape[1]), part.dtype)
            kreduce.combine_chunks(self.chunks_host[gi], part, totals)
            for s, leaf in enumerate(grp.leaf_ids):
                rows[leaf] = totals[s]
        return rows


def acc_dtype(dtype):
    """The accumulator of a reduction over leaves of ``dtype``: float64.

    XLA's float32 dot products (vectorised partial sums, an order we cannot
    reproduce) are accurate to a few ulps; a serial float32 sum per chunk is
    not (error ~ sqrt(n) eps). Measured on (128, 160) float32 leaves: the
    serial float32 sums differed from XLA's by 8e-7 (relative to the
    products' norm), float64 sums rounded to float32 by 6e-8. Float64 data
    accumulate in float64 (as XLA).
    """
    return np.dtype(np.float64)


def sum_in_leaf_order(values):
    """``0 + v_0 + v_1 + ...`` with NumPy promotion (jax.tree.reduce(add, ., 0))."""
    total = 0
    for v in values:
        total = total + v
    return total


def tree_dot(plan, x, y, dtypes=None):
    """``sum_leaves <x_leaf, y_leaf>`` (optax.tree.vdot); x, y are per-group
    flat buffers.

    Each leaf's dot product is accumulated in ``acc_dtype`` and rounded to
    the promoted dtype of x and y (``dtypes[gi]`` overrides), the dtype
    ``jnp.tensordot`` returns; the leaves are then added in leaf order.
    """
    lay = plan.lay
    parts, dts = [], []
    for gi, grp in enumerate(lay.groups):
        dt = np.dtype(dtypes[gi]) if dtypes else np.promote_types(x[gi].dtype, y[gi].dtype)
        acc = acc_dtype(dt)
        part = plan.partial(gi, 1, acc)
        if plan.chunks_host[gi].shape[0]:
            lay.target.launch(klbfgs.dot_cpu, klbfgs.dot_cuda, x[gi], plan.chunks[gi], y[gi],
                              acc.type(0), part.reshape(-1))
        parts.append(part)
        dts.append(dt)
    return plan.leaf_total(parts, dts)[0]


# ---------------------------------------------------------------------------
# The step
# ---------------------------------------------------------------------------

def lbfgs_direction(plan, count, scale_init_precond, p, p_old, u, u_old, dw, du, rho,
                    p_keep, u_keep, v):
    """One scale_by_lbfgs update on flat buffers, in place.

    Writes the new pair into slot ``(count - 1) % m`` of ``dw``/``du`` and
    its weight into ``rho`` (a float64 NumPy array), copies ``p``/``u`` into
    ``p_keep``/``u_keep`` and leaves the preconditioned direction in ``v``.
    All arguments but ``count``, ``rho`` and the flag are per-group buffers.
    """
    lay, m = plan.lay, plan.m
    target = lay.target
    mi, prev, keep = count % m, (count - 1) % m, count > 0
    if not lay.num_leaves:          # no params: optax's empty sums are 0
        rho[prev] = 0.0
        return

    # 1. the new pair and the dot products of this step
    parts = []
    for gi, grp in enumerate(lay.groups):
        acc = acc_dtype(grp.dtype)
        part = plan.partial(gi, 4, acc)
        if plan.chunks_host[gi].shape[0]:
            target.launch(klbfgs.pair_cpu, klbfgs.pair_cuda, p[gi], plan.chunks[gi], p_old[gi],
                          u[gi], u_old[gi], dw[gi], du[gi], prev, keep, grp.dtype.type(0),
                          acc.type(0), p_keep[gi], u_keep[gi], v[gi], part)
        parts.append(part)
    qp, qq, uu, pu = plan.leaf_total(parts, [g.dtype for g in lay.groups])

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        weight = 1.0 / qp if qp != 0.0 else type(qp)(0.0)
        rho[prev] = weight if keep else 0.0
        # 2. gamma, the scale of the initial inverse Hessian
        if not scale_init_precond:
            gamma = 1.0
        elif keep:
            gamma = qp / qq if qq > 0.0 else type(qp)(1.0)
        else:   # optax: a capped inverse gradient norm at the first step
            gamma = np.minimum(1.0, 1.0 / np.sqrt(uu))

    # 3. the two-loop recursion: slot order oldest..newest is mi, mi+1, ...
    idx = [(mi + k) % m for k in range(m)]
    dot = pu                                   # <s_prev, u>: from the first pass
    alphas = [None] * m
    for k in range(m - 1, -1, -1):
        alphas[k] = rho[idx[k]] * dot
        last = k == 0
        dot = _pass(plan, v, -alphas[k], du, idx[k], gamma if last else 1.0,
                    du if last else dw, idx[0] if last else idx[k - 1])
    for k in range(m):
        beta = rho[idx[k]] * dot
        dot = _pass(plan, v, alphas[k] - beta, dw, idx[k], 1.0,
                    du, idx[k + 1] if k + 1 < m else -1)


def _pass(plan, v, a, x, xslot, g, y, yslot):
    """v <- g (v + a x[xslot]); returns <y[yslot], v> (None if yslot < 0)."""
    lay = plan.lay
    parts = []
    for gi, grp in enumerate(lay.groups):
        dt = grp.dtype.type
        acc = acc_dtype(grp.dtype)
        part = plan.partial(gi, 1, acc)
        if plan.chunks_host[gi].shape[0]:
            lay.target.launch(klbfgs.two_loop_segments_cpu, klbfgs.two_loop_segments_cuda, v[gi], plan.chunks[gi],
                              np.float64(a), x[gi], xslot, dt(g), y[gi], yslot, acc.type(0),
                              part.reshape(-1))
        parts.append(part)
    if yslot < 0:
        return None
    return plan.leaf_total(parts, [g.dtype for g in lay.groups])[0]


def _check_weights(w, m):
    w = np.asarray(w)
    if w.shape != (m,) or w.dtype != np.float64:
        raise ValueError(f"state.weights_memory: expected a float64 array of shape ({m},), "
                         f"got {_checks._describe(w)}")
    return w


def scale_by_lbfgs(memory_size=10, scale_init_precond=True):
    r"""Scales updates by the L-BFGS approximation of the inverse Hessian.

    .. math::
        P_{k,j+1} = V_j^\top P_{k,j} V_j + \rho_j s_j s_j^\top,\quad
        V_j = I - \rho_j y_j s_j^\top,\quad
        \rho_j = 1/\langle y_j, s_j\rangle,\quad P_{k,k-m} = \gamma_k I,

    for :math:`j = k-m, \ldots, k-1`, with :math:`s_j = w_{j+1} - w_j`,
    :math:`y_j = u_{j+1} - u_j` (params and updates), and
    :math:`\gamma_k = \langle s_{k-1}, y_{k-1}\rangle / \|y_{k-1}\|^2` if
    ``scale_init_precond`` (1 if the denominator is 0), else 1. The output is
    :math:`P_k u_k` (computed by the two-loop recursion, see the module
    docstring); chain a line search (or a learning rate) to make a step.

    Args:
      memory_size: number of pairs kept (``m``), >= 1.
      scale_init_precond: use :math:`\gamma_k` above instead of 1.

    Returns:
      A GradientTransformation with state ``ScaleByLBFGSState``. ``update``
      needs ``params``.

    .. note::
        As optax (an optax-specific heuristic), the first step uses
        :math:`\gamma_0 = \min(1, 1/\|u_0\|)` when ``scale_init_precond``,
        so the first direction has norm at most 1.

    References:
      Nocedal & Wright, *Numerical Optimization*, Algorithms 7.4 and 7.5, 1999.
      Liu & Nocedal, "On the limited memory BFGS method for large scale
      optimization", Mathematical Programming 45, 1989.
    """
    if isinstance(memory_size, bool) or not isinstance(memory_size, (int, np.integer)) \
            or memory_size < 1:
        raise ValueError(f"memory_size: expected an integer >= 1, got {memory_size!r}")
    scale_init_precond = _checks.check_bool("scale_init_precond", scale_init_precond)
    m = int(memory_size)

    def init_fn(params):
        lay, _ = _flat.layout_of(params)
        plan = Plan.of(lay, m)
        return ScaleByLBFGSState(
            count=ZERO, params=lay.views(lay.full(0)), updates=lay.views(lay.full(0)),
            diff_params_memory=plan.mlay.views(plan.mlay.full(0)),
            diff_updates_memory=plan.mlay.views(plan.mlay.full(0)),
            weights_memory=np.zeros(m, np.float64))

    def gather(lay, plan, updates, state, params):
        _checks.check_state("state", state, ScaleByLBFGSState, "scale_by_lbfgs")
        if params is None:
            raise ValueError(NO_PARAMS_MSG)
        _flat.check_like(params, updates, "updates")
        bufs = dict(
            u=lay.gather(updates, "updates"), p=lay.gather(params, "params", ref="updates"),
            p_old=lay.gather(state.params, "state.params", ref="updates"),
            u_old=lay.gather(state.updates, "state.updates", ref="updates"),
            dw=plan.mlay.gather(state.diff_params_memory, "state.diff_params_memory",
                                ref="updates"),
            du=plan.mlay.gather(state.diff_updates_memory, "state.diff_updates_memory",
                                ref="updates"))
        return bufs, _check_weights(state.weights_memory, m), int(state.count)

    def update_fn(updates, state, params=None, **extra_args):
        lay, _ = _flat.layout_of(updates, "updates")
        plan = Plan.of(lay, m)
        b, rho, count = gather(lay, plan, updates, state, params)
        dw, du = plan.mlay.copy(b["dw"]), plan.mlay.copy(b["du"])
        rho = rho.copy()
        p_keep, u_keep, v = lay.empty(), lay.empty(), lay.empty()
        lbfgs_direction(plan, count, scale_init_precond, b["p"], b["p_old"], b["u"], b["u_old"],
                        dw, du, rho, p_keep, u_keep, v)
        return lay.views(v), ScaleByLBFGSState(
            count=safe_increment(count), params=lay.views(p_keep), updates=lay.views(u_keep),
            diff_params_memory=plan.mlay.views(dw), diff_updates_memory=plan.mlay.views(du),
            weights_memory=rho)

    def step_fn(updates, state, params):
        """In place on the state's buffers: (direction bufs, layout, new state)."""
        lay, _ = _flat.layout_of(updates, "updates")
        plan = Plan.of(lay, m)
        b, rho, count = gather(lay, plan, updates, state, params)
        v = lay.empty()
        lbfgs_direction(plan, count, scale_init_precond, b["p"], b["p_old"], b["u"], b["u_old"],
                        b["dw"], b["du"], rho, b["p_old"], b["u_old"], v)
        # the buffers were updated in place; rebuild views only if they were copies
        return v, lay, ScaleByLBFGSState(
            count=safe_increment(count), params=lay.views(b["p_old"]),
            updates=lay.views(b["u_old"]), diff_params_memory=plan.mlay.views(b["dw"]),
            diff_updates_memory=plan.mlay.views(b["du"]), weights_memory=rho)

    def bind_fn(lay, state):
        """The state checked and bound for a fused step whose params have
        layout ``lay`` (see ``_fusion.Bound``); ``run(g, p) -> (direction
        buffers, new state)`` works in place on the state's buffers."""
        _checks.check_state("state", state, ScaleByLBFGSState, "scale_by_lbfgs")
        plan = Plan.of(lay, m)
        p_old, t_p, k1 = lay.bind(state.params, "state.params")
        u_old, t_u, k2 = lay.bind(state.updates, "state.updates")
        dw, t_dw, k3 = plan.mlay.bind(state.diff_params_memory, "state.diff_params_memory")
        du, t_du, k4 = plan.mlay.bind(state.diff_updates_memory, "state.diff_updates_memory")
        rho = _check_weights(state.weights_memory, m)
        if rho is state.weights_memory:
            if not rho.flags.writeable:
                raise ValueError("state.weights_memory: read-only; step updates the state "
                                 "in place: pass a writable copy or use update()")
            rho = rho.view()
        count = int(state.count)

        def run(g, p):
            v = lay.empty()
            lbfgs_direction(plan, count, scale_init_precond, p, p_old, g, u_old, dw, du, rho,
                            p_old, u_old, v)
            return v, ScaleByLBFGSState(
                count=safe_increment(count), params=t_p, updates=t_u, diff_params_memory=t_dw,
                diff_updates_memory=t_du, weights_memory=rho)
        writes = ([("state.params", b) for b in p_old] + [("state.updates", b) for b in u_old]
                  + [("state.diff_params_memory", b) for b in dw]
                  + [("state.diff_updates_memory", b) for b in du])
        return _fusion.Bound(writes, (k1, k2, k3, k4), run)

    tx = GradientTransformation(init_fn, update_fn, fusion=_fusion.LBFGS(bind_fn))
    tx.lbfgs_step = step_fn
    return tx


def lbfgs_step(txs):
    """The fused step of the lbfgs plan (``_fusion.named_plan``):
    ``chain(scale_by_lbfgs, a rate, a line search or any transformation)``.

    scale_by_lbfgs runs in place on the state's buffers, then the rate's
    and the line search's ``update``, then ``params += updates`` in place on
    the params' flat buffers. Checked first: the state's tuple, the line
    search's keyword arguments, the rate's value (a schedule's), then the
    params, grads and scale_by_lbfgs's state; an exception from
    ``value_fn`` in the line search leaves the first state consumed (its
    memory already holds this step's pair).
    """
    precond, scaling, linesearch = txs
    bind, rate = precond.fusion.bind, scaling.fusion
    role = getattr(linesearch, "fusion", None)
    check = role.check_args if type(role) is _fusion.LineSearch else None

    def step(params, grads, state, **extra_args):
        if not isinstance(state, tuple) or len(state) != 3:
            raise TypeError("state: expected the 3-tuple made by this lbfgs's init, "
                            f"got {type(state).__name__}")
        if check is not None:       # the line search's errors, before any buffer moves
            check(params, extra_args)
        rate.value(state[1])        # and a schedule's value (ValueError if bad)
        io = _fusion.begin(params, grads)
        lay = io.lay
        bound = bind(lay, state[0])
        _fusion.commit(io, (bound,))
        v, s0 = bound.run(io.g, io.p)
        # the line search and the scaling see the params as they were (a
        # copy where grads overlapped them was taken by commit)
        cur = lay.views(io.p) if io.copied else params
        updates, s1 = scaling.update(lay.views(v), state[1], cur, **extra_args)
        updates, s2 = linesearch.update(updates, state[2], cur, **extra_args)
        for pb, ub in zip(io.p, lay.gather(updates, "updates")):
            if pb.shape[0]:
                lay.target.launch(kapply.apply_updates_cpu, kapply.apply_updates_cuda, pb, ub, pb)
        return lay.views(io.p), (s0, s1, s2)

    return step
