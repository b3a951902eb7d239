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
from typing import Any, Callable, NamedTuple

import numpy as np

from .. import _flat
from ..kernels import apply as kapply

IDENTITY = "identity"


class Precond(NamedTuple):
    """run(layout, g_bufs, p_bufs, state, posts) -> new state (in place).

    posts[group] is a list of (start, stop, (neg_lr, wd)) runs covering the
    group's buffer; each run is finished with those scalars.
    """
    run: Callable


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
        if not isinstance(state, tuple) or len(state) != len(txs):
            raise TypeError(
                f"state: expected the {len(txs)}-tuple made by this chain's init, "
                f"got {type(state).__name__}")
        lay, p_leaves = _flat.layout_of(params, "params")
        g_bufs = lay.gather(grads, "grads")
        scale = rate_role.value(state[ir])
        wd_leaf = None
        if decay is not None and decay.weight_decay != 0:
            on = (mask_per_leaf(decay.mask, params) if decay.mask is not None
                  else [True] * lay.num_leaves)
            wd_leaf = [decay.weight_decay if m else 0.0 for m in on]
        p_bufs, copied = lay.gather_report(params, "params", leaves=p_leaves)
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
        out = lay.views(p_bufs) if copied else params
        return out, tuple(new)
    return step
