"""Adafactor's building blocks: scale_by_factored_rms, and the per-leaf
scalings by the parameters' norm or RMS (scale_by_param_block_norm/rms).

``scale_by_factored_rms`` keeps, for each leaf with two large dimensions,
only a row and a column statistic of the squared gradients (Shazeer & Stern,
2018): O(n + m) memory for an n x m matrix instead of Adam's O(nm). The
kernels are in ``npopt.kernels.factored``; this module decides which leaves
are factored (exactly as optax), lays the statistics out in flat buffers
with the state tree optax has (placeholder leaves included), and builds the
tables the kernels walk.

Host-side numerics as optax: the decay rate ``1 - (count+1)^(-decay_rate)``
is float32 (``jnp.array(i + 1, jnp.float32)``), computed with the C
library's ``powf`` like XLA; ``1 - beta`` is computed in float32 too, then
both are cast to the leaf dtype.
"""
from typing import Any, NamedTuple

import numpy as np

from .. import _checks, _flat
from .._checks import is_narrow, real_dtype
from ..base import NO_PARAMS_MSG, ZERO, GradientTransformation, init_empty_state, \
    safe_increment
from ..kernels import clip as kclip
from ..kernels import factored as kf
from ..tree import tree_flatten
from . import _fusion, _segments


class FactoredState(NamedTuple):
    """State of ``scale_by_factored_rms`` (optax's fields)."""
    count: Any   # int32 number of update steps
    v_row: Any   # per leaf: row statistics (factored leaves), else zeros((1,))
    v_col: Any   # per leaf: column statistics (factored leaves), else zeros((1,))
    v: Any       # per leaf: full second moment (other leaves), else zeros((1,))


def _decay_rate_pow(i, exponent=0.8):
    """Adafactor's second-moment decay ``1 - (i+1)^(-exponent)``, in float32.

    As optax: ``t = float32(i + 1)``, ``-exponent`` rounded once to float32,
    and the power computed by the C library's ``powf`` (as XLA does; NumPy's
    vectorised ``np.power`` differs in the last bit for some ``t``).
    """
    t = np.float32(np.int32(i) + np.int32(1))
    return np.float32(1) - kf.power(t, np.float32(-exponent))


def _factored_dims(shape, factored, min_dim_size_to_factor):
    """The (d1, d0) axes to factor: the second-largest and the largest
    dimension, or None when the leaf is not factored (optax's rule: ndim >= 2
    and the second-largest dimension >= min_dim_size_to_factor; ties are
    broken by ``np.argsort``, as optax does)."""
    if not factored or len(shape) < 2:
        return None
    sorted_dims = np.argsort(shape)
    if shape[sorted_dims[-2]] < min_dim_size_to_factor:
        return None
    return int(sorted_dims[-2]), int(sorted_dims[-1])


def _strides(shape):
    """C-order strides of ``shape``, in elements."""
    st = [1] * len(shape)
    for k in range(len(shape) - 2, -1, -1):
        st[k] = st[k + 1] * shape[k + 1]
    return st


def _leaf_tables(shape, d1, d0, g0, r0, c0, m0, width):
    """The kernel tables of one factored leaf (see ``npopt.kernels.factored``).

    The leaf starts at ``g0`` in the gradient buffer, its row statistics
    (the leaf without axis d0) at ``r0`` in v_row's buffer, its column
    statistics (without axis d1) at ``c0`` in v_col's; its matrices are
    numbered from ``m0``; ``width`` columns are summed per block. Returns a
    dict of int64 tables: lines_r / lines_c and blocks_r / blocks_c (the
    moments of the statistics in v_row / v_col), apply, mats.
    """
    nd = len(shape)
    st = _strides(shape)
    rst = _strides(shape[:d0] + shape[d0 + 1:])          # v_row: axis d0 removed
    cst = _strides(shape[:d1] + shape[d1 + 1:])          # v_col: axis d1 removed
    in_row = lambda k: k if k < d0 else k - 1           # axis k's position in v_row
    in_col = lambda k: k if k < d1 else k - 1
    batch = [k for k in range(nd) if k not in (d0, d1)]
    bshape = [shape[k] for k in batch]
    nb = int(np.prod(bshape, dtype=np.int64))             # matrices in the stack
    idx = np.indices(bshape, dtype=np.int64).reshape(len(batch), nb)
    gb, rb, cb = (np.full((nb, 1), x0, np.int64) for x0 in (g0, r0, c0))  # matrix bases
    for a, k in enumerate(batch):
        gb[:, 0] += idx[a] * st[k]
        rb[:, 0] += idx[a] * rst[in_row(k)]
        cb[:, 0] += idx[a] * cst[in_col(k)]
    rstep, cstep = rst[in_row(d1)], cst[in_col(d0)]    # d1 in v_row, d0 in v_col
    outer, inner = min(d0, d1), max(d0, d1)            # larger / smaller stride in g
    n_out, n_in = shape[outer], shape[inner]
    i = np.arange(n_out, dtype=np.int64)
    # the statistic kept by each axis: (base per matrix, step along the axis)
    out_stat = (rb, rstep) if outer == d1 else (cb, cstep)
    in_stat = (rb, rstep) if inner == d1 else (cb, cstep)
    col = lambda x: np.broadcast_to(x, (nb, n_out))
    lines = np.stack([col(out_stat[0] + i * out_stat[1]), col(gb + i * st[outer]),
                      col(st[inner]), col(n_in)], axis=-1).reshape(-1, 4)
    j0 = np.arange(0, n_in, width, dtype=np.int64)
    blk = lambda x: np.broadcast_to(x, (nb, len(j0)))
    blocks = np.stack([blk(gb + j0 * st[inner]), blk(st[outer]), blk(n_out), blk(st[inner]),
                       blk(np.minimum(width, n_in - j0)), blk(in_stat[0] + j0 * in_stat[1]),
                       blk(in_stat[1])], axis=-1).reshape(-1, 7)
    if outer == d1:      # along a line: the row is fixed, the column moves
        rc = [col(rb + i * rstep), col(0), col(cb), col(cstep)]
    else:
        rc = [col(rb), col(rstep), col(cb + i * cstep), col(0)]
    apply = np.stack([col(gb + i * st[outer]), col(st[inner]), col(n_in)] + rc,
                     axis=-1).reshape(-1, 7)
    mats = np.concatenate([np.arange(m0, m0 + nb, dtype=np.int64)[:, None], rb,
                           np.full((nb, 1), rstep), np.full((nb, 1), shape[d1])], axis=1)
    empty4, empty7 = np.zeros((0, 4), np.int64), np.zeros((0, 7), np.int64)
    return dict(lines_r=lines if outer == d1 else empty4,
                lines_c=empty4 if outer == d1 else lines,
                blocks_r=blocks if inner == d1 else empty7,
                blocks_c=empty7 if inner == d1 else blocks,
                apply=apply, mats=mats)


_TABLES = ("lines_r", "lines_c", "blocks_r", "blocks_c", "apply", "mats")
# the column of each table that holds the length its 1/n is taken of
_LENGTH = {"lines_r": 3, "lines_c": 3, "blocks_r": 2, "blocks_c": 2, "mats": 3}


class _GroupPlan(NamedTuple):
    """What the kernels need for one dtype group (on the target)."""
    tables: dict       # name -> int64 table (see _leaf_tables)
    inv_n: dict        # name -> 1/length per table row, in the group's dtype
    factored: tuple    # per factored leaf: (g start, g stop, first apply line, last + 1)
    unfactored: tuple  # runs of unfactored leaves: (g start, g stop, v start)
    col_runs: tuple    # runs of column statistics in v_col's buffer: (start, stop)


class _Plan(NamedTuple):
    row_lay: Any       # Layout of the v_row tree
    col_lay: Any       # Layout of the v_col tree
    v_lay: Any         # Layout of the v tree
    groups: tuple      # one _GroupPlan per dtype group


_PLANS = {}


def plan_of(lay, factored, min_dim_size_to_factor):
    """The state layouts and kernel tables of a params layout (cached)."""
    key = (lay, factored, min_dim_size_to_factor)
    plan = _PLANS.get(key)
    if plan is not None:
        return plan
    dims = [_factored_dims(s, factored, min_dim_size_to_factor) for s in lay.shapes]
    drop = lambda s, k: s[:k] + s[k + 1:]
    row_shapes = tuple(drop(s, d[1]) if d else (1,) for s, d in zip(lay.shapes, dims))
    col_shapes = tuple(drop(s, d[0]) if d else (1,) for s, d in zip(lay.shapes, dims))
    v_shapes = tuple((1,) if d else s for s, d in zip(lay.shapes, dims))
    row_lay, col_lay, v_lay = (_flat.Layout(lay.treedef, shapes, lay.dtypes, lay.target)
                               for shapes in (row_shapes, col_shapes, v_shapes))
    width = 1 if lay.target.device else kf.BLOCK_WIDTH   # CUDA: a thread per column
    groups = []
    for gi, grp in enumerate(lay.groups):
        parts = {name: [] for name in _TABLES}
        fact, unf, cols = [], [], []
        n_apply = n_mats = 0
        for k, i in enumerate(grp.leaf_ids):
            g0, g1 = grp.offsets[k], grp.offsets[k + 1]
            d = dims[i]
            if d is None:
                v0 = v_lay.groups[gi].offsets[k]
                if unf and unf[-1][1] == g0 and unf[-1][2] + (g0 - unf[-1][0]) == v0:
                    unf[-1][1] = g1          # extends the previous run
                elif g1 > g0:
                    unf.append([g0, g1, v0])
                continue
            t = _leaf_tables(lay.shapes[i], d[0], d[1], g0, row_lay.groups[gi].offsets[k],
                             col_lay.groups[gi].offsets[k], n_mats, width)
            c0, c1 = col_lay.groups[gi].offsets[k], col_lay.groups[gi].offsets[k + 1]
            if cols and cols[-1][1] == c0:
                cols[-1][1] = c1
            elif c1 > c0:
                cols.append([c0, c1])
            fact.append((g0, g1, n_apply, n_apply + len(t["apply"])))
            n_apply += len(t["apply"])
            n_mats += len(t["mats"])
            for name in _TABLES:
                parts[name].append(t[name])
        ncol = {"apply": 7, "mats": 4, "lines_r": 4, "lines_c": 4, "blocks_r": 7, "blocks_c": 7}
        tables = {name: (np.concatenate(parts[name]) if parts[name]
                         else np.zeros((0, ncol[name]), np.int64)) for name in _TABLES}
        rdt = real_dtype(grp.dtype)      # complex leaves: real statistics' arithmetic
        one = rdt.type(1)
        inv_n = {name: (one / tables[name][:, col].astype(rdt)).astype(rdt)
                 for name, col in _LENGTH.items()}
        tables = {k: lay.target.put(v) for k, v in tables.items()}
        inv_n = {k: lay.target.put(v) for k, v in inv_n.items()}
        groups.append(_GroupPlan(tables, inv_n, tuple(fact), tuple(tuple(u) for u in unf),
                                 tuple(tuple(c) for c in cols)))
    plan = _Plan(row_lay, col_lay, v_lay, tuple(groups))
    if len(_PLANS) > 256:
        _PLANS.clear()
    _PLANS[key] = plan
    return plan


def _hyperparams(dtype, beta, epsilon):
    """(beta, 1 - beta, eps, -0.5, 1, 0) in the leaf dtype.

    ``1 - beta`` is computed in beta's own dtype (float32 for the default
    decay rate, as optax's ``1.0 - decay_rate_t``), or in float64 for a
    Python float, then cast.
    """
    dt = dtype.type
    if isinstance(beta, (np.ndarray, np.generic)):
        c = beta.dtype.type(1) - beta
    else:
        c = 1.0 - float(beta)
    return (dt(beta), dt(c), dt(epsilon), dt(-0.5), dt(1), dt(0))


def step_hyperparams(count, step_offset, decay_rate_fn, decay_rate, epsilon):
    """dtype -> the kernels' ``hp`` for the step after ``count`` updates."""
    step = np.int32(count) - np.int32(step_offset)
    beta = decay_rate_fn(step, decay_rate)
    return lambda dtype: _hyperparams(np.dtype(dtype), beta, epsilon)


def state_buffers(plan, state, lay=None, ref="params"):
    """([v_row, v_col, v] flat buffers, copied) of a FactoredState (made for
    params of ``lay``'s shapes, when given)."""
    _checks.check_state("state", state, FactoredState, "scale_by_factored_rms")
    if lay is not None:
        check_made_for(lay, state, ref)
    out, copied = [], False
    for sub, name in ((plan.row_lay, "v_row"), (plan.col_lay, "v_col"), (plan.v_lay, "v")):
        b, c = sub.gather_report(getattr(state, name), f"state.{name}", ref=ref)
        out.append(b)
        copied = copied or c
    return out, copied


def bind_state(lay, plan, state):
    """A FactoredState checked and bound for a fused step: (buffers, new
    trees, tokens, writes), see ``_flat.Layout.bind``."""
    _checks.check_state("state", state, FactoredState, "scale_by_factored_rms")
    check_made_for(lay, state)
    stats, trees, tokens, writes = [], [], [], []
    for sub, name in ((plan.row_lay, "v_row"), (plan.col_lay, "v_col"), (plan.v_lay, "v")):
        b, tree, token = sub.bind(getattr(state, name), f"state.{name}")
        stats.append(b)
        trees.append(tree)
        tokens.append(token)
        writes.extend((f"state.{name}", x) for x in b)
    return stats, trees, tokens, writes


# A factored state's shapes do not always tell which params it was made for
# (the statistics of a (4, 3) leaf have the shapes of a (3, 4) leaf's), so
# the params' shapes are recorded beside every state made here.

def _first_leaf(tree):
    leaves = tree_flatten(tree)[0]
    return leaves[0] if leaves else None


def remember(lay, state):
    """Records that ``state`` (a FactoredState) is for params of ``lay``'s shapes."""
    first = _first_leaf(state.v_row)
    if first is not None:
        _flat.set_origin(first, lay.shapes)
    return state


def check_made_for(lay, state, ref="params"):
    first = _first_leaf(state.v_row)
    made = None if first is None else _flat.origin_of(first)
    if made is not None and made != lay.shapes:
        raise ValueError(
            f"state: this FactoredState was made for params of shapes {list(made)}, got "
            f"{ref} of shapes {list(lay.shapes)}; its row and column statistics would be "
            f"applied along the wrong axes")


def factored_rms_pass(lay, plan, g, stats, dst, hp_of, posts, fused):
    """Runs the kernels group by group: the moments (``stats`` = [v_row,
    v_col, v] buffers, updated in place), the row and column factors, then
    the update ``u``, written to ``dst`` (finished with ``posts`` when fused,
    see ``npopt.kernels.apply.finish``)."""
    t = lay.target
    v_row, v_col, v = stats
    for gi, (grp, gp) in enumerate(zip(lay.groups, plan.groups)):
        rdt = real_dtype(grp.dtype)
        hp = hp_of(rdt)
        gb, db, vb = g[gi], dst[gi], v[gi]
        tab, inv = gp.tables, gp.inv_n
        if gp.factored:
            for stat, sfx in ((v_row[gi], "_r"), (v_col[gi], "_c")):
                if tab["lines" + sfx].shape[0]:
                    t.launch(kf.line_moments_cpu, kf.line_moments_cuda, gb, tab["lines" + sfx],
                             inv["lines" + sfx], stat, hp)
                if tab["blocks" + sfx].shape[0]:
                    acc = t.empty(stat.shape[0], rdt)
                    t.launch(kf.block_moments_cpu, kf.block_moments_cuda, gb,
                             tab["blocks" + sfx], inv["blocks" + sfx], stat, acc, hp)
            rf = t.empty(v_row[gi].shape[0], rdt)
            cf = t.empty(v_col[gi].shape[0], rdt)
            t.launch(kf.row_factors_cpu, kf.row_factors_cuda, v_row[gi], tab["mats"],
                     inv["mats"], rf, hp)
            for a, b in gp.col_runs:
                t.launch(kf.col_factors_cpu, kf.col_factors_cuda, v_col[gi][a:b], cf[a:b], hp)
        for a, b, post in posts[gi]:
            for g0, g1, l0, l1 in gp.factored:
                if a <= g0 and g1 <= b and l1 > l0:
                    t.launch(kf.apply_cpu, kf.apply_cuda, gb, tab["apply"][l0:l1], rf, cf, db,
                             post, fused)
            for g0, g1, v0 in gp.unfactored:
                lo, hi = max(a, g0), min(b, g1)
                if hi > lo:
                    w = v0 + lo - g0
                    t.launch(kf.unfactored_cpu, kf.unfactored_cuda, gb[lo:hi],
                             vb[w:w + hi - lo], db[lo:hi], hp, post, fused)


def no_posts(lay):
    """``posts`` of the unfused path: one run per group, nothing to finish."""
    return [[(0, grp.size, (real_dtype(grp.dtype).type(0),) * 2)] for grp in lay.groups]


def scale_by_factored_rms(factored=True, decay_rate=0.8, step_offset=0,
                          min_dim_size_to_factor=128, epsilon=1e-30,
                          decay_rate_fn=_decay_rate_pow):
    r"""Scales updates by a factored estimate of the gradients' RMS (Adafactor).

    With :math:`\beta_t` = ``decay_rate_fn(count - step_offset, decay_rate)``
    (by default :math:`1 - (t+1)^{-0.8}`, :math:`t` = ``count - step_offset``,
    in float32) and :math:`\epsilon` added to every squared gradient: for a
    leaf whose second-largest dimension is at least
    ``min_dim_size_to_factor`` (ndim >= 2), seen as matrices :math:`G` with
    rows along that dimension and columns along the largest one,

    .. math::
        R &\leftarrow \beta_t R + (1-\beta_t)\,\mathrm{mean}_{cols}(G^2 + \epsilon), \qquad
        C \leftarrow \beta_t C + (1-\beta_t)\,\mathrm{mean}_{rows}(G^2 + \epsilon), \\
        u &= G \odot \big(R / \mathrm{mean}(R)\big)^{-1/2} \big(C\big)^{-1/2}
        \quad\text{(outer product: row factor times column factor)}

    and for every other leaf :math:`v \leftarrow \beta_t v + (1-\beta_t)(g^2 +
    \epsilon)`, :math:`u = g\, v^{-1/2}`. The statistics start at 0; the
    other dimensions of an N-D leaf index a stack of such matrices.

    .. note:: ``update`` needs ``params`` (as optax, although only their
       shapes and dtypes are used).

    .. warning:: As in optax, a positive ``step_offset`` on a fresh state
       gives :math:`t + 1 \le 0` for the first steps, so
       :math:`(t+1)^{-0.8}` is NaN (or inf) and so are the updates: the
       offset is meant for a state restored at step ``step_offset`` or later.

    Args:
      factored: whether to factor the second moments of matrices.
      decay_rate: exponent of the default decay schedule.
      step_offset: subtracted from the count before the schedule (fine-tuning).
      min_dim_size_to_factor: factor a leaf only if its two largest
        dimensions are at least this large.
      epsilon: added to the squared gradients.
      decay_rate_fn: ``(step, decay_rate) -> beta``; a Python float result is
        rounded once to the leaf dtype, a NumPy scalar keeps its dtype for
        ``1 - beta``.

    Returns:
      A GradientTransformation with state
      ``FactoredState(count, v_row, v_col, v)``. Each of ``v_row``, ``v_col``
      and ``v`` is a tree like the params; a leaf's unused entries are
      ``zeros((1,))`` placeholders, as in optax.

    References:
      Shazeer & Stern, "Adafactor: Adaptive Learning Rates with Sublinear
      Memory Cost", ICML 2018, https://arxiv.org/abs/1804.04235 (Alg. 4);
      Zhai et al., "Scaling Vision Transformers", 2021 (capped decay schedules).
    """
    factored = _checks.check_bool("factored", factored)
    decay_rate = _checks.check_number("decay_rate", decay_rate, low=0.0)
    _check_int("step_offset", step_offset)
    _check_int("min_dim_size_to_factor", min_dim_size_to_factor, low=0)
    epsilon = _checks.check_number("epsilon", epsilon, low=0.0)
    if not callable(decay_rate_fn):
        raise TypeError(f"decay_rate_fn: expected a callable (step, decay_rate) -> float, "
                        f"got {decay_rate_fn!r}")
    min_dim = int(min_dim_size_to_factor)

    def init_fn(params):
        lay, _ = _flat.layout_of(params, complex_ok=True)    # statistics of |g|^2
        plan = plan_of(lay, factored, min_dim)
        return remember(lay, FactoredState(
            count=ZERO, v_row=plan.row_lay.views(plan.row_lay.full(0)),
            v_col=plan.col_lay.views(plan.col_lay.full(0)),
            v=plan.v_lay.views(plan.v_lay.full(0))))

    def hp_of(state):
        return step_hyperparams(state.count, step_offset, decay_rate_fn, decay_rate, epsilon)

    def update_fn(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError(NO_PARAMS_MSG)
        _flat.check_like(params, updates, "updates")
        lay, _ = _flat.layout_of(updates, "updates", complex_ok=True)
        plan = plan_of(lay, factored, min_dim)
        ins, _ = state_buffers(plan, state, lay, ref="updates")
        g = lay.gather(updates, "updates")
        stats = [sub.copy(b) for sub, b in zip(plan[:3], ins)]
        out = lay.empty()
        factored_rms_pass(lay, plan, g, stats, out, hp_of(state), no_posts(lay), False)
        new = FactoredState(safe_increment(state.count),
                            *(sub.views(b) for sub, b in zip(plan[:3], stats)))
        return lay.views(out), remember(lay, new)

    def bind(lay, state):
        """The state checked and bound for a fused step (see ``_fusion.Bound``)."""
        plan = plan_of(lay, factored, min_dim)
        stats, trees, tokens, writes = bind_state(lay, plan, state)
        hp = hp_of(state)

        def run(g, p, posts):
            factored_rms_pass(lay, plan, g, stats, p, hp, posts, True)
            return remember(lay, FactoredState(safe_increment(state.count), *trees))

        def run_into(g, u):         # the per-leaf plan's first pass
            factored_rms_pass(lay, plan, g, stats, u, hp, no_posts(lay), False)
            return remember(lay, FactoredState(safe_increment(state.count), *trees))
        return _fusion.Bound(writes, tokens, run, run_into)

    def run(lay, g, p, state, posts):
        return bind(lay, state).run(g, p, posts)

    # run_into only on the Bound: the per-leaf plan's, no other two-pass step's
    return GradientTransformation(init_fn, update_fn, fusion=_fusion.Precond(
        run, None, bind, rule=_fusion.FACTORED))


def _check_int(name, x, low=None):
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)) or (
            low is not None and x < low):
        rng = f" >= {low}" if low is not None else ""
        raise ValueError(f"{name}: expected an integer{rng}, got {x!r}")
    return int(x)


# ---------------------------------------------------------------------------
# scale_by_param_block_norm / scale_by_param_block_rms
# ---------------------------------------------------------------------------

def _scale_by_param_block(min_scale, rms):
    min_scale = _checks.check_number("min_scale", min_scale, low=0.0)

    def update_fn(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError(NO_PARAMS_MSG)
        lay, _ = _flat.layout_of(updates, "updates", complex_ok=True)   # norms of |p|
        u = lay.gather(updates, "updates")
        p = lay.gather(params, "params")
        out = lay.empty()
        for gi, (grp, ub, pb, ob) in enumerate(zip(lay.groups, u, p, out)):
            if grp.size == 0:
                continue
            f = param_block_factors(grp, _segments.group_sumsq(lay, gi, pb)[:, 0], min_scale, rms)
            ones = np.ones_like(f)
            _, chunks, offsets = _segments.tables(lay)[gi]
            ones, f = lay.target.put(ones), lay.target.put(f)
            # (u / 1) * f == u * f exactly
            lay.target.launch(kclip.segment_div_mul_cpu, kclip.segment_div_mul_cuda,
                              ub, ob, chunks, offsets, ones, f)
        return lay.views(out), state

    return GradientTransformation(init_empty_state, update_fn,
                                  fusion=_fusion.ParamScale(min_scale, rms))


def param_block_factors(grp, sumsq, min_scale, rms):
    """Per leaf of a group, from its sums of squares of the params:
    ``norm = sqrt(sum)`` (or the RMS ``sqrt(sum * (1/size))``: XLA turns the
    mean's division into that product), and ``min_scale`` where
    ``norm <= min_scale`` (optax's ``safe_norm`` /
    ``safe_root_mean_squares``). In the group's (real) dtype."""
    rdt = real_dtype(grp.dtype)
    dt = rdt.type
    s = sumsq
    with np.errstate(divide="ignore", invalid="ignore"):
        if rms:
            sizes = np.diff(np.asarray(grp.offsets, np.int64)).astype(rdt)
            s = s * (dt(1) / sizes)
        n = np.sqrt(s)
    return np.where(n <= dt(min_scale), dt(min_scale), n).astype(rdt)


def scale_by_param_block_norm(min_scale=1e-3):
    r"""Scales each leaf's update by the L2 norm of that leaf's parameters.

    .. math:: u_i \leftarrow u_i \cdot \max(\|p_i\|_2, \text{min\_scale})

    (the norm of all the leaf's entries, Frobenius for matrices). A "block"
    is one leaf of the params tree: a weight vector or matrix.

    Args:
      min_scale: the smallest scaling factor.
    """
    return _scale_by_param_block(min_scale, False)


def scale_by_param_block_rms(min_scale=1e-3):
    r"""Scales each leaf's update by the root mean square of that leaf's parameters.

    .. math:: u_i \leftarrow u_i \cdot \max\big(\sqrt{\mathrm{mean}(p_i^2)}, \text{min\_scale}\big)

    Adafactor's ``multiply_by_parameter_scale``: the step is relative to the
    parameters' scale (Shazeer & Stern, 2018, Sec. 8).

    Args:
      min_scale: the smallest scaling factor.
    """
    return _scale_by_param_block(min_scale, True)


# ---------------------------------------------------------------------------
# the per-leaf plan: adafactor's chain, fused
# ---------------------------------------------------------------------------

def per_leaf_step(txs, blocks):
    """The fused step of the per-leaf plan (``_fusion.named_plan``), adafactor's
    chain: its numbers in five passes over memory instead of seven.

    1. ``scale_by_factored_rms`` (its Bound's ``run_into``): its moments (two
       reads of the gradients, one per statistic), then its update ``u``,
       written to a scratch buffer (kept per layout between steps, one per
       thread);
    2. one pass over ``u`` and the params: the per-leaf sums of squares
       (clip_by_block_rms's RMS of ``u``, scale_by_param_block_rms's of p);
    3. ``adafactor_tail``: the rest of the chain per element, in place on
       the params (and the momentum).

    ``blocks`` (a ``_fusion.PerLeaf``) gives each block's position and role.
    The per-leaf and per-step scalars are computed as the chain's blocks
    compute them, so ``step`` and ``update`` + ``apply_updates`` agree (bit
    for bit on the CPU without momentum, to an ulp with it). Every state is
    checked and bound, in the chain's order, before the first kernel.
    """
    from .moving_average import EmaState
    scratch = _fusion.Scratch()        # u, one per thread
    n = len(txs)
    ip, precond = blocks.precond
    clip = blocks.clip[1] if blocks.clip else None              # BlockClip
    scale = blocks.scale[1] if blocks.scale else None           # ParamScale
    momentum = blocks.ema[1].rule if blocks.ema else None       # Ema
    acc = momentum.accumulator_dtype if momentum else None
    neg_one = blocks.sign[1].constant

    def step(params, grads, state, **extra_args):
        _fusion.check_tuple(state, n)
        _fusion.check_identities(state, blocks.idents)
        if acc is not None and is_narrow(acc):      # a 16-bit momentum: update computes it
            raise _flat.Promote("adafactor: a float16/bfloat16 momentum: the step runs update")
        io = _fusion.begin(params, grads)
        lay = io.lay
        # every check, and the chain's per-step scalars, before any kernel runs
        bounds = [_fusion.bind(precond, lay, state[ip])]
        new = list(state)
        lr = 1.0
        if blocks.lr:
            i, rate = blocks.lr
            lr = _fusion.rate_value(rate, state[i])
            new[i] = rate.advance(state[i])
        if momentum is not None:
            es = _checks.check_state("state", state[blocks.ema[0]], EmaState, "ema")
            e_bufs, e_tree, e_token = lay.bind(
                es.ema, "state.ema", [grp.dtype if acc is None else acc for grp in lay.groups])
            bounds.append(_fusion.Bound([("state.ema", b) for b in e_bufs], [e_token], None))
            e_count = safe_increment(es.count)
        wd, on = 0.0, [False] * lay.num_leaves
        if blocks.decay:
            i, decay = blocks.decay
            if type(decay) is _fusion.DecaySchedule:
                wd = decay.value(state[i])
                new[i] = decay.advance(state[i])
            else:
                wd = decay.weight_decay
            on = (_fusion.mask_per_leaf(decay.mask, params) if decay.mask is not None
                  else [True] * lay.num_leaves)
        _fusion.commit(io, bounds)
        g, p = io.g, io.p

        u = scratch.get(lay)
        new[ip] = bounds[0].run_into(g, u)
        for gi, grp in enumerate(lay.groups):
            if grp.size == 0:
                continue
            dt = grp.dtype.type
            sums = _segments.group_sumsq(lay, gi, u[gi], p[gi])
            d = f = np.ones(len(grp.leaf_ids), grp.dtype)
            if clip is not None:                 # as clip_by_block_rms
                sizes = np.diff(np.asarray(grp.offsets, np.int64)).astype(grp.dtype)
                with np.errstate(divide="ignore", invalid="ignore"):
                    rms = np.sqrt(sums[:, 0] / sizes)
                    d = np.maximum(dt(1.0), rms / dt(clip.threshold)).astype(grp.dtype)
            if scale is not None:                # as scale_by_param_block_rms
                f = param_block_factors(grp, sums[:, 1], scale.min_scale, scale.rms)
            w = np.array([dt(wd) if on[i] else dt(0) for i in grp.leaf_ids], grp.dtype)
            leaf_hp = np.stack([d, f, w], axis=1)
            if momentum is not None:             # as ema(debias=False)
                ad = grp.dtype if acc is None else acc
                res = np.promote_types(grp.dtype, ad)
                ema_hp = (res.type(1 - momentum.decay), ad.type(momentum.decay), res.type(1))
                e = e_bufs[gi]
            else:
                ema_hp, e = (dt(1), dt(1), dt(1)), u[gi]
            _, chunks, offsets = _segments.tables(lay)[gi]
            leaf_hp = lay.target.put(leaf_hp)
            lay.target.launch(kf.adafactor_tail_cpu, kf.adafactor_tail_cuda, u[gi], p[gi], e,
                              chunks, offsets, leaf_hp, (dt(lr), dt(neg_one)), ema_hp,
                              momentum is not None)

        if momentum is not None:
            new[blocks.ema[0]] = EmaState(e_count, e_tree)
        return io.params_out(params), tuple(new)

    return step


__all__ = ["FactoredState", "scale_by_factored_rms", "scale_by_param_block_norm",
           "scale_by_param_block_rms"]
