"""How a chain becomes one fused kernel pass (``opt.step``).

A transformation may describe its role in a fused step:

* ``Precond``: an elementwise preconditioner (scale_by_adam, trace,
  scale_by_rms, ...) whose kernel can finish each element with
  ``p + (-lr) * (u + wd * p)`` (see ``npopt.kernels.apply.finish``);
* ``Decay``: ``add_decayed_weights`` with a constant rate (and maybe a mask);
* ``Rate``: the learning rate (``scale`` or ``scale_by_schedule``);
* the blocks of the named plans below: ``BlockClip``, ``ParamScale``,
  ``DecaySchedule``, ``LBFGS``, ``LineSearch`` (and ``Precond.rule``, which
  tells scale_by_factored_rms and ema apart from other preconditioners).

``chain`` fuses ``[Precond] [Decay] Rate`` (identities anywhere are
skipped): the composition optax would run, with the same roundings in the
same order, but one pass over memory instead of four. Anything else falls
back to ``update`` + ``apply_updates``, except the chains with a named plan
(``named_plan``), whose steps are written out in the transforms layer:

* "per-leaf" (adafactor's chain: ``scale_by_factored_rms``, per-leaf
  clipping and scalings, momentum, weight decay, ``scale(-1)``):
  ``transforms.factored.per_leaf_step``, five passes instead of seven;
* "lbfgs" (``scale_by_lbfgs``, a rate, a line search):
  ``transforms.lbfgs.lbfgs_step``, the direction in place on the state's
  memories.

Every fused step (these, the named plans', polyak_sgd's) has the same
frame, so that nothing is written before every check has passed:

1. ``begin``: params (scalars and non-contiguous leaves copied, read-only
   leaves refused) and grads (structure, shapes, device, dtype: another
   float dtype raises ``_flat.Promote`` and ``step`` runs ``update``);
2. the per-step scalars (a schedule's non-finite value raises) and
   ``bind`` of every role's state (type, structure, shapes, dtypes,
   writability, consumption);
3. ``commit``: overlaps between the buffers the kernels write and the
   grads resolved (copies), the states marked consumed;
4. the kernels.

Scratch buffers are per thread (``Scratch``): the optimizer object holds no
state that two threads could share.
"""
import math
import threading
from typing import Any, Callable, NamedTuple, Optional, Sequence

import numpy as np

from .. import _flat, base
from .._checks import is_narrow, real_dtype
from ..kernels import _jit
from ..kernels import apply as kapply
from . import _plan

IDENTITY = base.IDENTITY   # identity()'s role: skipped, its state EmptyState()


class Bound(NamedTuple):
    """A preconditioner's state, checked and bound to its buffers for one
    fused step (what ``Precond.bind`` returns), before any kernel runs.

    writes: ``(name, buffer)`` of every buffer the kernels overwrite;
    tokens: leaves to mark consumed (``_flat.mark_consumed``) when the step
    commits; run(g, p, posts) -> new state: the fused pass, finishing the
    params in ``p`` (see ``Precond``); run_into(g, u) -> new state: the
    moments in place and the direction written into ``u`` (or None).
    fields, steady: what a step plan (``_plan``) needs for the next steps
    on the same buffers: the state's fields holding moment trees, and
    steady(g, p, bufs, posts, state, trees) -> the new state: the fused
    pass on ``bufs`` (per field, per group: the buffers bound here, found
    again from the state's leaves), for ``state`` (the one the previous
    step returned), ``trees`` its new moment trees; None: no plan.
    steady_one(g, p, moments, post, state, trees): the same for one group
    on the host finished by one run over the whole buffer (flat arrays, one
    per field, and ``post = (neg_lr, wd)``), the common case, without the
    loops. steady_into(g, u, moments, state, trees): ``run_into``'s steady
    form (the moments in place, the direction written into the flat ``u``).
    A wrapper that replaces ``run`` (another state class) replaces
    ``steady``, ``steady_one`` and ``steady_into`` too.
    """
    writes: Sequence
    tokens: Sequence
    run: Callable
    run_into: Optional[Callable] = None
    fields: Sequence = ()
    steady: Optional[Callable] = None
    steady_one: Optional[Callable] = None
    steady_into: Optional[Callable] = None


class Precond(NamedTuple):
    """run(layout, g_bufs, p_bufs, state, posts) -> new state (in place).

    posts[group] is a list of (start, stop, (neg_lr, wd)) runs covering the
    group's buffer; each run is finished with those scalars.

    run_into(layout, g_bufs, u_bufs, state) -> new state (optional): the
    moments in place and the direction ``u`` written into ``u_bufs`` (for
    two-pass fused steps such as lamb's, whose learning rate depends on
    norms of ``u``).

    bind(layout, state) -> Bound: every check of the state (type, structure,
    shapes, dtypes, writability, consumption) and its buffers, before any
    kernel of the step runs; the fused steps use it (``run`` and
    ``run_into`` are the same passes without that split).

    rule: which preconditioner this is, for the named plans that recognise
    their blocks (``named_plan``): ``FACTORED`` (scale_by_factored_rms,
    whose Bound has ``run_into`` for the per-leaf plan; ``run_into`` here
    stays None, so that no other two-pass step takes it), an ``Ema``
    (ema), or None.

    complex_ok: the fused step may run it on complex params (otherwise a
    complex step takes ``update``, which refuses them or not); narrow_ok:
    on float16/bfloat16 params (converted to float32 chunk by chunk).
    """
    run: Callable
    run_into: Optional[Callable] = None
    bind: Optional[Callable] = None
    rule: Any = None
    complex_ok: bool = False     # its kernels take complex buffers (kernels/complex.py)
    narrow_ok: bool = False      # its bind's run takes 16-bit buffers (_flat.narrow_runs)


FACTORED = "scale_by_factored_rms"


class Ema(NamedTuple):
    """ema's parameters (its ``Precond.rule``): the per-leaf plan computes
    ema(debias=False) in its own kernel."""
    decay: float
    debias: bool
    accumulator_dtype: Any      # a NumPy dtype, or None: the params'


class TrustRatio(NamedTuple):
    """scale_by_trust_ratio's parameters (per-leaf ``||p|| / ||u||`` scaling)."""
    min_norm: float
    trust_coefficient: float
    eps: float


class Decay(NamedTuple):
    weight_decay: float
    mask: Any = None


class DecaySchedule(NamedTuple):
    """``add_decayed_weights`` with a schedule (only the per-leaf plan fuses
    it): value(state) -> this step's weight decay, checked as ``update``
    checks it; advance(state) -> the next state; mask as ``Decay``'s."""
    value: Callable
    advance: Callable
    mask: Any = None


class Rate(NamedTuple):
    """value(state) -> the factor multiplying updates (-lr); advance(state) -> state;
    state_cls: the type its state must have, when ``value`` does not check it;
    constant: ``scale``'s factor (None: a schedule's; a step plan makes a
    constant number once)."""
    value: Callable
    advance: Callable
    state_cls: Any = None
    constant: Any = None


class BlockClip(NamedTuple):
    """``clip_by_block_rms``: each leaf of ``u`` divided by ``max(1, rms(u) / threshold)``."""
    threshold: float


class ParamScale(NamedTuple):
    """``scale_by_param_block_rms`` (rms) or ``_norm``: each leaf of ``u``
    times ``max(rms(p) or ||p||, min_scale)``."""
    min_scale: float
    rms: bool


class LBFGS(NamedTuple):
    """``scale_by_lbfgs``: bind(layout, state) -> a Bound whose run(g, p)
    -> (direction buffers, new state) updates the memories in place."""
    bind: Callable


class LineSearch(NamedTuple):
    """A line search (zoom, backtracking): check_args(params, extra_args)
    raises what its ``update`` would about its keyword arguments, without
    evaluating anything."""
    check_args: Callable


def bind(precond, lay, state):
    """``precond.bind(lay, state)``, or a Bound around run/run_into for a
    Precond without ``bind`` (no buffer checks: its run checks as it goes)."""
    if precond.bind is not None:
        return precond.bind(lay, state)
    into = precond.run_into
    return Bound((), (), lambda g, p, posts: precond.run(lay, g, p, state, posts),
                 None if into is None else (lambda g, u: into(lay, g, u, state)))


def _run_identity(lay, g_bufs, p_bufs, state, posts):
    # plain SGD: p + (-lr) * (g + wd * p)
    for grp, g, p, runs in zip(lay.groups, g_bufs, p_bufs, posts):
        for a, b, post in runs:
            lay.target.launch(kapply.step_cpu, kapply.step_cuda, g[a:b], p[a:b], post)
    return state


def _bind_identity(lay, state):
    if state is not None and type(state).__name__ != "EmptyState":
        raise TypeError(f"state: expected EmptyState() (the state made by the init of a "
                        f"stateless transformation), got {type(state).__name__}; was this "
                        f"state made by another optimizer?")
    kernel = _jit.PlannedCall(kapply.step_cpu)

    def steady_one(g, p, moments, post, state, trees):       # (plans are host-only)
        kernel(g, p, post)
        return state
    return Bound((), (), lambda g, p, posts: _run_identity(lay, g, p, state, posts),
                 steady=lambda g, p, bufs, posts, state, trees: _run_identity(lay, g, p, state,
                                                                              posts),
                 steady_one=steady_one)


IDENTITY_PRECOND = Precond(_run_identity, None, _bind_identity, complex_ok=True)


# ---------------------------------------------------------------------------
# the frame of every fused step: begin, bind the states, commit, launch
# ---------------------------------------------------------------------------

class StepIO:
    """The params and grads of one fused step (see ``begin``)."""
    __slots__ = ("lay", "g", "p", "copied")

    def __init__(self, lay, g, p, copied):
        self.lay, self.g, self.p, self.copied = lay, g, p, copied

    def params_out(self, params):
        """What the step returns as params: the given tree when its own
        buffers were updated in place, else views of the new buffers."""
        return self.lay.views(self.p) if self.copied else params


def check_tuple(state, n, what="this chain's init"):
    if not isinstance(state, tuple) or len(state) != n:
        raise TypeError(
            f"state: expected the {n}-tuple made by {what}, got {type(state).__name__}"
            + (f" of length {len(state)}" if isinstance(state, tuple) else ""))


def begin(params, grads, complex_ok=False, narrow_ok=False):
    """Layout and buffers of a fused step's params and grads, all checked
    (``_flat.params_in_place``, ``_flat.grads_for``). Raises ``_flat.Promote``
    for grads of another float dtype, and for complex (16-bit) params unless
    ``complex_ok`` (``narrow_ok``): the caller falls back to update."""
    lay, p, copied = _flat.params_in_place(params, complex_ok=complex_ok, narrow_ok=narrow_ok)
    return StepIO(lay, _flat.grads_for(lay, grads), p, copied)


def commit(io, bounds=()):
    """The last checks of a fused step, then the point of no return.

    Buffers that the kernels overwrite (params, the bound states' buffers)
    must not share memory: params sharing memory with a state buffer (or
    with another params group) are copied first (the step then returns new
    params arrays, as if the params had been a copy), two state buffers
    sharing memory raise. Grads sharing memory with any of them are copied
    first, so that overlapping views give the numbers copies would. Then
    the bound states are marked consumed. Nothing has been written yet.
    """
    t = io.lay.target
    ov = _flat.overlaps if t.device else None
    may = np.may_share_memory
    writes = [w for b in bounds for w in b.writes] if bounds else []
    p, g = io.p, io.g
    n = len(writes)
    for gi in range(len(p)):
        pb = p[gi]
        hit = False
        for _, w in writes:
            if (ov(t, pb, w) if ov else may(pb, w)):
                hit = True
                break
        if not hit and len(p) > 1:
            for k in range(len(p)):
                if k != gi and (ov(t, pb, p[k]) if ov else may(pb, p[k])):
                    hit = True
                    break
        if hit:
            p[gi] = _flat.fresh_copy(t, pb)
            io.copied = True
    for a in range(n):
        wa = writes[a][1]
        for b in range(a + 1, n):
            if ov(t, wa, writes[b][1]) if ov else may(wa, writes[b][1]):
                raise ValueError(
                    f"state: {writes[a][0]} and {writes[b][0]} share memory; each "
                    f"state buffer must be its own array (step updates them in place)")
    for gi in range(len(g)):
        gb = g[gi]
        hit = False
        for _, w in writes:
            if ov(t, gb, w) if ov else may(gb, w):
                hit = True
                break
        if not hit:
            for q in p:
                if ov(t, gb, q) if ov else may(gb, q):
                    hit = True
                    break
        if hit:
            g[gi] = _flat.fresh_copy(t, gb)
    for b in bounds:
        for leaf in b.tokens:
            if leaf is not None:
                _flat.mark_consumed(leaf)


def rate_value(rate_role, state):
    """The rate's factor for this step, which must be finite."""
    cls = rate_role.state_cls
    if cls is not None and type(state) is not cls:
        raise TypeError(f"state: expected {cls.__name__}() (the state made by the init of "
                        f"the learning rate's scale), got {type(state).__name__}; was this "
                        f"state made by another optimizer?")
    s = rate_role.value(state)
    try:
        ok = math.isfinite(s)
    except TypeError:
        ok = False
    if not ok:
        count = getattr(state, "count", None)
        when = "" if count is None else f" at count {int(count)}"
        raise ValueError(f"learning_rate: expected a finite number, got {s!r} (the "
                         f"schedule's value{when}); nothing was updated")
    return s


class Scratch(threading.local):
    """A params-sized buffer per group, per thread, kept between steps of the
    same layout: a fresh large buffer per step costs more in page faults
    (62 ms at 1e7 float32) than the step itself, and a buffer shared by two
    threads stepping with one optimizer would mix their numbers."""

    def __init__(self):
        self.lay = None
        self.bufs = None

    def get(self, lay, dtypes=None):
        if self.lay is not lay:
            self.bufs = None
            self.bufs = [lay.target.empty(g.size, g.dtype if dtypes is None else dtypes[gi])
                         for gi, g in enumerate(lay.groups)]
            self.lay = lay
        return self.bufs


def mask_per_leaf(mask, tree):
    """The boolean of a mask (a prefix tree of bools, or a callable) per leaf of tree."""
    from ..tree import tree_flatten
    if callable(mask):
        mask = mask(tree)
    out = []

    def walk(m, t):
        if isinstance(m, (bool, np.bool_)):
            out.extend([bool(m)] * len(tree_flatten(t)[0]))
            return
        if m is None:
            out.extend([False] * len(tree_flatten(t)[0]))
            return
        if isinstance(t, dict):
            if not isinstance(m, dict) or set(m) != set(t):
                raise ValueError(f"mask: expected a prefix of the params tree, got {m!r}")
            keys = sorted(t) if type(t) is dict else list(t)
            for k in keys:
                walk(m[k], t[k])
            return
        if isinstance(t, (list, tuple)):
            if not isinstance(m, (list, tuple)) or len(m) != len(t):
                raise ValueError(f"mask: expected a prefix of the params tree, got {m!r}")
            for mi, ti in zip(m, t):
                walk(mi, ti)
            return
        if t is None:
            return
        raise ValueError(f"mask: expected bools at the leaves of a params prefix, got {m!r}")
    walk(mask, tree)
    return out


def check_identities(state, idents):
    """The states of a chain's identities (positions ``idents``): EmptyState()."""
    for i in idents:
        _bind_identity(None, state[i])


class PerLeaf(NamedTuple):
    """The per-leaf plan's chain, block by block: (position in the chain,
    role), None where the chain leaves the block out; ``idents``: the
    positions of identities."""
    precond: tuple            # scale_by_factored_rms
    clip: Optional[tuple]     # clip_by_block_rms
    lr: Optional[tuple]       # a rate (adafactor's learning rate, not negated)
    scale: Optional[tuple]    # scale_by_param_block_rms (or _norm)
    ema: Optional[tuple]      # ema(debias=False)
    decay: Optional[tuple]    # add_decayed_weights: a constant or a schedule
    sign: tuple               # scale(-1)
    idents: tuple


_PER_LEAF_MIDDLE = (            # PerLeaf's optional blocks, in their order
    ("clip", lambda r: type(r) is BlockClip),
    ("lr", lambda r: type(r) is Rate),
    ("scale", lambda r: type(r) is ParamScale),
    ("ema", lambda r: type(r) is Precond and type(r.rule) is Ema and not r.rule.debias),
    ("decay", lambda r: type(r) in (Decay, DecaySchedule)),
)


def named_plan(txs):
    """``(name, blocks)`` for a chain whose fused step is written out in the
    transforms layer, else None:

    * ``("lbfgs", None)``: ``scale_by_lbfgs``, a rate, then any
      transformation (lbfgs's line search, or identity);
    * ``("per-leaf", PerLeaf)``: ``scale_by_factored_rms``, then in this
      order any of ``clip_by_block_rms``, a rate,
      ``scale_by_param_block_rms`` (or ``_norm``), ``ema(debias=False)``,
      ``add_decayed_weights`` (a constant or a schedule, maybe masked), and
      last ``scale(-1)``, identities anywhere: adafactor's chain. The sign
      must be exactly -1: the step's last product is then exact, as
      ``update`` + ``apply_updates``'s.
    """
    roles = [getattr(tx, "fusion", None) for tx in txs]
    if len(roles) == 3 and type(roles[0]) is LBFGS and type(roles[1]) is Rate:
        return "lbfgs", None
    if any(r is None for r in roles):
        return None
    idents = tuple(i for i, r in enumerate(roles) if r is IDENTITY)
    roles = [(i, r) for i, r in enumerate(roles) if r is not IDENTITY]
    if len(roles) < 2 or type(roles[0][1]) is not Precond or roles[0][1].rule != FACTORED:
        return None
    sign = roles[-1]
    if type(sign[1]) is not Rate or sign[1].constant != -1:
        return None
    found, k = dict.fromkeys(name for name, _ in _PER_LEAF_MIDDLE), 0
    for i, r in roles[1:-1]:
        while k < len(_PER_LEAF_MIDDLE) and not _PER_LEAF_MIDDLE[k][1](r):
            k += 1
        if k == len(_PER_LEAF_MIDDLE):
            return None               # not one of the blocks, or out of order
        found[_PER_LEAF_MIDDLE[k][0]] = (i, r)
        k += 1
    return "per-leaf", PerLeaf(precond=roles[0], sign=sign, idents=idents, **found)


def fuse(txs):
    """A fused step for chain(*txs), or None when the chain has no fused form."""
    named = named_plan(txs)
    if named is not None:           # a step written out in the transforms layer
        name, blocks = named
        if name == "per-leaf":
            from .factored import per_leaf_step
            return per_leaf_step(txs, blocks)
        if name == "lbfgs":
            from .lbfgs import lbfgs_step
            return lbfgs_step(txs)
    roles = [(i, getattr(tx, "fusion", None)) for i, tx in enumerate(txs)]
    if any(r is None for _, r in roles):
        return None
    roles = [(i, r) for i, r in roles if r is not IDENTITY]
    kinds = [type(r) for _, r in roles]
    if kinds in ([Precond, TrustRatio, Rate], [Precond, Decay, TrustRatio, Rate]):
        return _fuse_trust_ratio(txs, roles)
    if TrustRatio in kinds:
        return None
    if kinds == [Precond, Rate, Precond]:
        return _fuse_momentum_after_rate(txs, roles)
    if kinds == [Rate]:
        pre, dec, rate = (None, IDENTITY_PRECOND), None, roles[0]
    elif kinds == [Precond, Rate]:
        pre, dec, rate = roles[0], None, roles[1]
    elif kinds == [Precond, Decay, Rate]:
        pre, dec, rate = roles
    elif kinds == [Decay, Rate]:
        pre, dec, rate = (None, IDENTITY_PRECOND), roles[0], roles[1]
    else:
        return None
    (ip, precond), (ir, rate_role) = pre, rate
    decay = dec[1] if dec is not None else None
    n = len(txs)
    # the identities skipped in the roles still have a state: EmptyState()
    empty = None
    idents = [i for i, tx in enumerate(txs) if getattr(tx, "fusion", None) is IDENTITY]
    plans = _plan.Plans()
    plannable = decay is None or not callable(decay.mask)   # a mask function: every step
    # complex params in place where the preconditioner's kernels take them
    # (the rate and the weight decay are linear), without a step plan
    complex_ok, narrow_ok = precond.complex_ok, precond.narrow_ok

    def step(params, grads, state, **extra_args):
        plan = plans.current
        if plan is not None:
            out = plan.step(params, grads, state)
            if out is not None:
                return out
        check_tuple(state, n)
        for i in idents:
            _bind_identity(None, state[i])
        io = begin(params, grads, complex_ok, narrow_ok)
        lay = io.lay
        scale = rate_value(rate_role, state[ir])
        wd_leaf = _weight_decays(lay, decay, params)
        posts = _posts(lay, scale, wd_leaf)
        bound = bind(precond, lay, state[ip] if ip is not None else empty)
        commit(io, (bound,))
        new = list(state)
        s = bound.run(io.g, io.p, posts)
        if ip is not None:
            new[ip] = s
        new[ir] = rate_role.advance(state[ir])
        new = tuple(new)
        out = io.params_out(params)
        plans.current = plannable and not (lay.complex or lay.narrow) and _plan.make(
            out, lay, io, [bound], new, [ip], ir, idents, lambda st: rate_value(rate_role, st),
            rate_role, wd_leaf) or None
        return out, new
    return step


def _posts(lay, scale, wd_leaf):
    """Per group, the (start, stop, (neg_lr, wd)) runs of the fused epilogue
    (scalars of the group's real dtype; float32 for a 16-bit group, rounded
    to it first, as JAX's weakly typed constants)."""
    posts = []
    for grp in lay.groups:
        narrow = is_narrow(grp.dtype)
        dt = (_narrow_scalar(grp.dtype) if narrow else real_dtype(grp.dtype).type)
        s = dt(scale)
        if wd_leaf is None:
            posts.append([(0, grp.size, (s, dt(0)))])
            continue
        runs = []
        for k, i in enumerate(grp.leaf_ids):
            a, b = grp.offsets[k], grp.offsets[k + 1]
            w = wd_leaf[i]
            if runs and runs[-1][2] == w and runs[-1][1] == a:
                runs[-1][1] = b
            else:
                runs.append([a, b, w])
        posts.append([(a, b, (s, dt(w))) for a, b, w in runs if b > a])
    return posts


def _narrow_scalar(dtype):
    """x -> float32(x rounded to the 16-bit ``dtype``)."""
    return lambda x: np.float32(dtype.type(x))


def _weight_decays(lay, decay, params):
    """Per leaf: the weight decay of a Decay role (0 where masked out)."""
    if decay is None or decay.weight_decay == 0:
        return None
    on = (mask_per_leaf(decay.mask, params) if decay.mask is not None
          else [True] * lay.num_leaves)
    return [decay.weight_decay if m else 0.0 for m in on]


def _fuse_trust_ratio(txs, roles):
    """lamb's chain ``scale_by_adam, [add_decayed_weights], scale_by_trust_ratio,
    learning rate`` in three passes over memory instead of seven:

    1. the preconditioner writes ``u`` into a scratch buffer (moments in place);
    2. ``u += wd * p`` per leaf, then the per-leaf sums of squares of p and u;
    3. ``p += (-lr) * (r_leaf * u)`` with the trust ratios ``r`` computed on
       the host exactly as ``scale_by_trust_ratio`` does.

    The scratch buffer for ``u`` is kept between steps, one per thread
    (``Scratch``), so threads may share the optimizer.
    """
    from ..kernels import apply as kapply
    from ..kernels import trust_ratio as ktr
    from . import _segments
    from .trust_ratio import trust_ratios
    (ip, precond), (ir, rate_role) = roles[0], roles[-1]
    trust = roles[-2][1]
    decay = roles[1][1] if len(roles) == 4 else None
    if precond.run_into is None:
        return None
    scratch = Scratch()
    n = len(txs)
    plans = _plan.Plans()
    plannable = decay is None or not callable(decay.mask)   # a mask function: every step

    def step(params, grads, state, **extra_args):
        plan = plans.current
        if plan is not None:
            out = plan.step(params, grads, state)
            if out is not None:
                return out
        check_tuple(state, n)
        io = begin(params, grads)
        lay = io.lay
        scale = rate_value(rate_role, state[ir])
        wd_leaf = _weight_decays(lay, decay, params)
        bound = bind(precond, lay, state[ip])
        commit(io, (bound,))
        u_bufs = scratch.get(lay)
        p_bufs = io.p
        new = list(state)
        new[ip] = bound.run_into(io.g, u_bufs)
        for gi, grp in enumerate(lay.groups):
            dt = grp.dtype.type
            u, p = u_bufs[gi], p_bufs[gi]
            if wd_leaf is not None:
                for k, i in enumerate(grp.leaf_ids):
                    a, b = grp.offsets[k], grp.offsets[k + 1]
                    if wd_leaf[i] != 0 and b > a:
                        lay.target.launch(kapply.add_decayed_weights_cpu,
                                          kapply.add_decayed_weights_cuda,
                                          u[a:b], p[a:b], u[a:b], dt(wd_leaf[i]))
            ss = _segments.group_sumsq(lay, gi, p, u)
            ratio = trust_ratios(ss, grp.dtype, trust.min_norm, trust.trust_coefficient,
                                 trust.eps)
            segs, ratio = lay.target.put(grp.segments), lay.target.put(ratio)
            if grp.size:
                lay.target.launch(ktr.scale_segments_apply_cpu, ktr.scale_segments_apply_cuda,
                                  u, segs, ratio, p, dt(scale))
        new[ir] = rate_role.advance(state[ir])
        new = tuple(new)
        out = io.params_out(params)
        plans.current = plannable and _plan.make(
            out, lay, io, [bound], new, [ip], ir, (), lambda st: rate_value(rate_role, st),
            rate_role, wd_leaf,
            body_for=lambda plan: _trust_ratio_body(plan, lay, bound, trust, wd_leaf)) or None
        return out, new
    return step


def _trust_ratio_body(plan, lay, bound, trust, wd_leaf):
    """The steady pass of ``_fuse_trust_ratio``'s step (see ``_plan.make``):
    the same kernels and host arithmetic on the plan's ``u``."""
    from ..kernels import trust_ratio as ktr
    from . import _segments
    from .trust_ratio import trust_ratios
    if bound.steady_into is None:
        return None
    grp = lay.groups[0]
    dt = grp.dtype.type
    u = np.empty(grp.size, grp.dtype)
    decays = [(grp.offsets[k], grp.offsets[k + 1], dt(wd_leaf[i]))
              for k, i in enumerate(grp.leaf_ids)
              if wd_leaf is not None and wd_leaf[i] != 0 and grp.offsets[k + 1] > grp.offsets[k]]
    segs = grp.segments

    def body(g, p, bufs, s, pres, trees):
        new = bound.steady_into(g, u, bufs, pres[0], trees)
        for a, b, w in decays:
            kapply.add_decayed_weights_cpu(u[a:b], p[a:b], u[a:b], w)
        ratio = trust_ratios(_segments.group_sumsq(lay, 0, p, u), grp.dtype, trust.min_norm,
                             trust.trust_coefficient, trust.eps)
        ktr.scale_segments_apply_cpu(u, segs, ratio, p, s)
        return (new,)
    return body


def _fuse_momentum_after_rate(txs, roles):
    """``chain(A, learning rate, B)`` with elementwise preconditioners A and B
    (rmsprop with momentum: ``scale_by_rms``, the rate, ``trace``) in three
    passes, with optax's roundings:

    1. A writes ``u`` into a scratch buffer kept between steps, one per
       thread (``Scratch``) (its moments in place);
    2. ``u <- (-lr) * u``;
    3. B runs fused on ``u`` and finishes ``p <- p + 1 * B(u)``.

    Both states are checked and bound before the first kernel.
    """
    (ia, first), (ir, rate_role), (ib, second) = roles
    if first.run_into is None:
        return None
    scratch = Scratch()
    n = len(txs)
    plans = _plan.Plans()

    def step(params, grads, state, **extra_args):
        plan = plans.current
        if plan is not None:
            out = plan.step(params, grads, state)
            if out is not None:
                return out
        check_tuple(state, n)
        io = begin(params, grads)
        lay = io.lay
        scale = rate_value(rate_role, state[ir])
        b1 = bind(first, lay, state[ia])
        b2 = bind(second, lay, state[ib])
        commit(io, (b1, b2))
        u_bufs = scratch.get(lay)
        new = list(state)
        new[ia] = b1.run_into(io.g, u_bufs)
        posts = []
        for grp, u in zip(lay.groups, u_bufs):
            dt = grp.dtype.type
            if grp.size:
                lay.target.launch(kapply.scale_cpu, kapply.scale_cuda, u, u, dt(scale))
            posts.append([(0, grp.size, (dt(1), dt(0)))])
        new[ib] = b2.run(u_bufs, io.p, posts)
        new[ir] = rate_role.advance(state[ir])
        new = tuple(new)
        out = io.params_out(params)
        plans.current = _plan.make(
            out, lay, io, [b1, b2], new, [ia, ib], ir, (), lambda st: rate_value(rate_role, st),
            rate_role, None, body_for=lambda plan: _momentum_after_rate_body(plan, b1, b2)) \
            or None
        return out, new
    return step


def _momentum_after_rate_body(plan, b1, b2):
    """The steady pass of ``_fuse_momentum_after_rate``'s step (see
    ``_plan.make``): A into the plan's ``u``, ``u *= -lr``, B finishing p."""
    if b1.steady_into is None or b2.steady_one is None:
        return None
    u = np.empty(plan.size, plan.dtype)
    k = len(b1.fields)
    scale = _jit.PlannedCall(kapply.scale_cpu)
    post = (plan.dtype.type(1), plan.dtype.type(0))

    def body(g, p, bufs, s, pres, trees):
        a = b1.steady_into(g, u, bufs[:k], pres[0], trees[:k])
        scale(u, u, s)
        return a, b2.steady_one(u, p, bufs[k:], post, pres[1], trees[k:])
    return body
