"""How a chain becomes one fused kernel pass (``opt.step``).

A transformation may describe its role in a fused step:

* ``Precond``: an elementwise preconditioner (scale_by_adam, trace,
  scale_by_rms, ...) whose kernel can finish each element with
  ``p + (-lr) * (u + wd * p)`` (see ``npopt.kernels.apply.finish``);
* ``Decay``: ``add_decayed_weights`` with a constant rate (and maybe a mask);
* ``Rate``: the learning rate (``scale`` or ``scale_by_schedule``).

``chain`` fuses ``[Precond] [Decay] Rate`` (identities anywhere are
skipped): the composition optax would run, with the same roundings in the
same order, but one pass over memory instead of four. Anything else falls
back to ``update`` + ``apply_updates``.
"""
from typing import Any, Callable, NamedTuple, Optional

import numpy as np

from .. import _flat
from ..kernels import apply as kapply

IDENTITY = "identity"


class Precond(NamedTuple):
    """run(layout, g_bufs, p_bufs, state, posts) -> new state (in place).

    posts[group] is a list of (start, stop, (neg_lr, wd)) runs covering the
    group's buffer; each run is finished with those scalars.

    run_into(layout, g_bufs, u_bufs, state) -> new state (optional): the
    moments in place and the direction ``u`` written into ``u_bufs`` (for
    two-pass fused steps such as lamb's, whose learning rate depends on
    norms of ``u``).
    """
    run: Callable
    run_into: Optional[Callable] = None


class TrustRatio(NamedTuple):
    """scale_by_trust_ratio's parameters (per-leaf ``||p|| / ||u||`` scaling)."""
    min_norm: float
    trust_coefficient: float
    eps: float


class Decay(NamedTuple):
    weight_decay: float
    mask: Any = None


class Rate(NamedTuple):
    """value(state) -> the factor multiplying updates (-lr); advance(state) -> state."""
    value: Callable
    advance: Callable


def _run_identity(lay, g_bufs, p_bufs, state, posts):
    # plain SGD: p + (-lr) * (g + wd * p)
    for grp, g, p, runs in zip(lay.groups, g_bufs, p_bufs, posts):
        for a, b, post in runs:
            lay.target.launch(kapply.step_cpu, kapply.step_cuda, g[a:b], p[a:b], post)
    return state


IDENTITY_PRECOND = Precond(_run_identity)


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


def fuse(txs):
    """A fused step for chain(*txs), or None when the chain has no fused form."""
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

    def step(params, grads, state, **extra_args):
        lay, g_bufs, p_bufs, copied = _gather(txs, params, grads, state)
        scale = rate_role.value(state[ir])
        wd_leaf = _weight_decays(lay, decay, params)
        posts = []
        for grp in lay.groups:
            dt = grp.dtype.type
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
        new = list(state)
        if precond is not IDENTITY_PRECOND:
            new[ip] = precond.run(lay, g_bufs, p_bufs, state[ip], posts)
        else:
            _run_identity(lay, g_bufs, p_bufs, None, posts)
        new[ir] = rate_role.advance(state[ir])
        return (lay.views(p_bufs) if copied else params), tuple(new)
    return step


def _gather(txs, params, grads, state):
    """The common start of a fused step: (layout, grads buffers, params
    buffers, whether the params were copied), after checking the state."""
    if not isinstance(state, tuple) or len(state) != len(txs):
        raise TypeError(
            f"state: expected the {len(txs)}-tuple made by this chain's init, "
            f"got {type(state).__name__}")
    lay, p_leaves = _flat.layout_of(params, "params")
    g_bufs = lay.gather(grads, "grads")
    p_bufs, copied = lay.gather_report(params, "params", leaves=p_leaves)
    return lay, g_bufs, p_bufs, copied


def _scratch(cache, lay):
    """A params-sized buffer per group, kept in ``cache`` between steps of the
    same layout: a fresh large buffer per step costs more in page faults
    (62 ms at 1e7 float32) than the step itself."""
    bufs = cache.get(lay)
    if bufs is None:
        cache.clear()
        bufs = cache[lay] = lay.empty()
    return bufs


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

    The optimizer keeps one params-sized scratch buffer for ``u`` between
    steps (so one optimizer object should not step from two threads at once).
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
    scratch = {}

    def step(params, grads, state, **extra_args):
        lay, g_bufs, p_bufs, copied = _gather(txs, params, grads, state)
        scale = rate_role.value(state[ir])
        wd_leaf = _weight_decays(lay, decay, params)
        u_bufs = _scratch(scratch, lay)
        new = list(state)
        new[ip] = precond.run_into(lay, g_bufs, u_bufs, state[ip])
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
            segs = grp.segments
            if lay.target.device:
                from ..kernels._jit import cuda
                segs, ratio = cuda.to_device(segs), cuda.to_device(ratio)
            if grp.size:
                lay.target.launch(ktr.scale_segments_apply_cpu, ktr.scale_segments_apply_cuda,
                                  u, segs, ratio, p, dt(scale))
        new[ir] = rate_role.advance(state[ir])
        return (lay.views(p_bufs) if copied else params), tuple(new)
    return step


def _fuse_momentum_after_rate(txs, roles):
    """``chain(A, learning rate, B)`` with elementwise preconditioners A and B
    (rmsprop with momentum: ``scale_by_rms``, the rate, ``trace``) in three
    passes, with optax's roundings:

    1. A writes ``u`` into a scratch buffer kept between steps (its moments
       in place);
    2. ``u <- (-lr) * u``;
    3. B runs fused on ``u`` and finishes ``p <- p + 1 * B(u)``.
    """
    (ia, first), (ir, rate_role), (ib, second) = roles
    if first.run_into is None:
        return None
    scratch = {}

    def step(params, grads, state, **extra_args):
        lay, g_bufs, p_bufs, copied = _gather(txs, params, grads, state)
        scale = rate_role.value(state[ir])
        u_bufs = _scratch(scratch, lay)
        new = list(state)
        new[ia] = first.run_into(lay, g_bufs, u_bufs, state[ia])
        posts = []
        for grp, u in zip(lay.groups, u_bufs):
            dt = grp.dtype.type
            if grp.size:
                lay.target.launch(kapply.scale_cpu, kapply.scale_cuda, u, u, dt(scale))
            posts.append([(0, grp.size, (dt(1), dt(0)))])
        new[ib] = second.run(lay, u_bufs, p_bufs, state[ib], posts)
        new[ir] = rate_role.advance(state[ir])
        return (lay.views(p_bufs) if copied else params), tuple(new)
    return step
