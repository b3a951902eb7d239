"""The steady state of a fused step: a plan made once, checked by identity.

A training loop calls ``params, state = opt.step(params, grads, state)``
with the same params tree (updated in place), the state the last step
returned, and fresh grads of the same structure. The first step goes the
whole way (``_fusion.fuse``'s frame: layout, buffers, every check, overlaps,
consumption). What it found out that depends only on the tree's structure,
shapes, dtypes and buffer identities is kept here, and the next steps check
only what can have changed:

* params: a tree of the same structure whose leaves are the same arrays
  as before (cut by the structure's straight-line ``TreeDef.fast``), still
  writable, of the same shapes and dtype;
* state: the tuple the last step returned (its id, then its contents: the
  identity slots, the preconditioner's state type, its moment trees
  holding the same leaf arrays, writable, none consumed since, by another
  optimizer for instance);
* grads: the params' structure, NumPy arrays of the params' shapes and
  dtype. Up to ``GATHER_MAX`` elements they are gathered into a buffer the
  plan keeps, which overlaps nothing (one kernel launch); above, each leaf
  is used in place, a launch per leaf, after an overlap check against
  every buffer the kernel writes (as is a bare array's);
* the learning rate: its state's type every step, and a schedule's value
  finite (a constant rate is made once, in the params' dtype).

The common case, one buffer finished by one run (no per-leaf weight decay),
calls the preconditioner's ``steady_one``, whose kernel call skips numba's
per-call type dispatch (``kernels._jit.PlannedCall``): the checks above are
what make the argument types the same at every step.

Plans exist for the chains ``[preconditioner] [weight decay] rate`` whose
preconditioner's ``Bound`` has a ``steady`` pass (the elementwise rules:
adam and its variants, sgd, rmsprop, adagrad, lion, ...), and for two
two-pass steps whose preconditioners have a ``steady_into`` pass: lamb's
(trust ratios) and ``A, rate, B`` (rmsprop with momentum), on params of
one float dtype on the host. A plan has slots (the preconditioners'
states) and a body, the steady pass of its fused step.

Anything else (a new tree, an old state, grads of another dtype, scalars,
a device array) is not an error here: the step takes the whole way, which
raises the error it always raised or makes a new plan. The numbers are the
same either way: the plan runs the same kernels on the same buffers with
the same per-step scalars.

Plans are per thread (like ``_fusion.Scratch``): two threads stepping with
one optimizer each keep their own.
"""
import math
import threading
import weakref

import numpy as np

from .. import _flat

_is_consumed = _flat.is_consumed
_mark_consumed = _flat.mark_consumed
_may_share = np.may_share_memory
_ndarray = np.ndarray

GATHER_MAX = 1 << 16    # elements: smaller trees' grads are gathered into a buffer the
                        # plan keeps (one kernel launch); larger ones are used in place,
                        # a launch per leaf (no extra pass over the grads)


def _shares(owner, writes):
    """Whether the grads array ``owner`` may share memory with one of
    ``writes`` (what the kernel writes: buffers, or leaves viewing them). An
    array that owns its memory shares it only with its own views, so the
    address test runs only for the others."""
    if owner.base is None and not any(w is owner or w.base is owner for w in writes):
        return False
    return any(_may_share(owner, w) for w in writes)


class StepPlan:
    """One params tree's fused step after its first (see the module doc).

    Built by ``make`` from a step that passed every check; ``step`` returns
    ``(params, state)`` or None where the inputs are not the ones planned
    for (the caller then takes the whole way).

    A plan holds no array alive: weak references to the leaves it expects
    (so dropping a model frees it, plan or not), the id of the state tuple
    it returned (a quick first test, the contents are checked anyway), and
    its grads buffer only when small."""

    __slots__ = ("cut", "build", "p_refs", "shapes", "dtype", "state_id", "n", "idents",
                 "slots", "fields", "field_refs", "ir", "rate_value", "advance_rate",
                 "rate", "rate_cls", "body", "one", "runs", "single", "g", "size", "per_leaf")

    def _rate(self, state):
        """This step's factor (-lr) in the params' dtype, or None where the
        rate's state is not of its type; a schedule's non-finite value
        raises (before anything is written)."""
        if self.rate is not None:           # a constant, made once
            return self.rate if type(state) is self.rate_cls else None
        return self.dtype.type(self.rate_value(state))

    def _advance(self, state):
        return state if self.rate is not None else self.advance_rate(state)

    def step(self, params, grads, state):
        if id(state) != self.state_id or type(state) is not tuple or len(state) != self.n:
            return None
        cut, dt = self.cut, self.dtype
        try:
            p_leaves = cut(params)
            g_leaves = cut(grads)
        except Exception:         # noqa: BLE001 - not this structure: the whole way
            return None
        for a, r, shape in zip(p_leaves, self.p_refs, self.shapes):
            if a is not r() or a.shape != shape or a.dtype is not dt and a.dtype != dt \
                    or not a.flags.writeable:
                return None
        for x, shape in zip(g_leaves, self.shapes):
            if type(x) is not _ndarray or x.shape != shape or x.dtype is not dt and \
                    x.dtype != dt:
                return None
        for i in self.idents:
            if type(state[i]).__name__ != "EmptyState":
                return None
        pres = []
        for ip, cls in self.slots:
            pre = state[ip]
            if type(pre) is not cls:
                return None
            pres.append(pre)
        fields, bufs = [], []
        for (k, f), refs in zip(self.fields, self.field_refs):
            try:
                now = cut(getattr(pres[k], f))
            except Exception:     # noqa: BLE001
                return None
            for a, r in zip(now, refs):
                if a is not r() or not a.flags.writeable:
                    return None
            if _is_consumed(now[0]):
                return None
            fields.append(now)
            bufs.append(now[0].base if not self.single else now[0].reshape(-1))
        p = p_leaves[0].reshape(-1) if self.single else p_leaves[0].base
        if self.single:
            g = g_leaves[0]
            if not g.flags.c_contiguous:
                return None
            if _shares(g, [p_leaves[0]] + [now[0] for now in fields]):
                return None
            g = g.reshape(-1)
        elif self.per_leaf is not None:
            g, writes = [], [p] + bufs
            for k in self.per_leaf:
                owner = g_leaves[k]
                if not owner.flags.c_contiguous or _shares(owner, writes):
                    return None
                g.append(owner.reshape(-1))
        else:
            g = self.g
            np.concatenate(g_leaves, axis=None, out=g)
        ir = self.ir
        s = self._rate(state[ir])
        if s is None:
            return None
        # every check has passed: from here on the step happens
        new_trees, refs = [], []
        build = self.build
        for leaves, old in zip(fields, self.field_refs):
            fresh = list(leaves)
            fresh[0] = leaves[0].view()          # the new state's token (see _flat)
            _mark_consumed(leaves[0], old[0])
            new_trees.append(build(fresh))
            refs.append([weakref.ref(fresh[0])] + old[1:])
        new = list(state)
        for (ip, _), out in zip(self.slots, self.body(g, p, bufs, s, pres, new_trees)):
            new[ip] = out
        new[ir] = self._advance(state[ir])
        new = tuple(new)
        self.state_id, self.field_refs = id(new), refs
        return params, new


class BarePlan(StepPlan):
    """``StepPlan`` for params that are one bare array (a flat vector): the
    same checks and work, written out for one leaf. At 1e3 elements the
    kernel takes ~2 us, so the loops and cuts of the general plan would
    be most of the step."""

    __slots__ = ()

    def step(self, params, grads, state):
        if id(state) != self.state_id or type(state) is not tuple or len(state) != self.n:
            return None
        dt, shape = self.dtype, self.shapes[0]
        if params is not self.p_refs[0]() or params.shape != shape or \
                params.dtype is not dt and params.dtype != dt or not params.flags.writeable:
            return None
        g = grads
        if type(g) is not _ndarray or g.shape != shape or g.dtype is not dt and \
                g.dtype != dt or not g.flags.c_contiguous:
            return None
        for i in self.idents:
            if type(state[i]).__name__ != "EmptyState":
                return None
        pre = None
        if self.slots:
            ip, cls = self.slots[0]
            pre = state[ip]
            if type(pre) is not cls:
                return None
        moments = []
        for (_, f), refs in zip(self.fields, self.field_refs):
            x = getattr(pre, f)
            if x is not refs[0]() or not x.flags.writeable or _is_consumed(x):
                return None
            moments.append(x)
        if _shares(g, [params] + moments):
            return None
        ir = self.ir
        s = self._rate(state[ir])
        if s is None:
            return None
        # every check has passed: from here on the step happens
        fresh = []
        for x, refs in zip(moments, self.field_refs):
            y = x.view()                     # the new state's token (see _flat)
            _mark_consumed(x, refs[0])
            fresh.append(y)
        new = list(state)
        a, b, w = self.runs[0]
        if len(shape) == 1:
            out = self.one(g, params, moments, (s, w), pre, fresh)
        else:
            out = self.one(g.reshape(-1), params.reshape(-1), [x.reshape(-1) for x in moments],
                           (s, w), pre, fresh)
        if self.slots:
            new[self.slots[0][0]] = out
        new[ir] = self._advance(state[ir])
        new = tuple(new)
        self.state_id, self.field_refs = id(new), [[weakref.ref(y)] for y in fresh]
        return params, new


def make(params, lay, io, bounds, state, ips, ir, idents, rate_value, rate_role, wd_leaf,
         body_for=None):
    """The plan for the next steps after a fused step that returned
    ``(params, state)``, or None where this step cannot be planned: the
    params were copied (scalars, non-contiguous or shared leaves: the step
    returned new arrays), several dtypes or a device, a structure without a
    straight-line form, a preconditioner without a steady pass.

    ``bounds[k]`` is the ``Bound`` of the preconditioner whose state is
    ``state[ips[k]]``. Without ``body_for``: one preconditioner (or none,
    plain sgd) finishing the params in one pass, its ``steady_one`` or
    ``steady``. ``body_for(plan)`` -> ``body(g, p, bufs, s, pres, trees)``
    or None: another fused step's steady pass (``g``, ``p``: flat buffers;
    ``bufs``, ``trees``: the moment buffers and new trees of every slot's
    fields, slot after slot; ``pres`` the slots' states; ``s`` the rate)
    returning the slots' new states."""
    if (io.copied or lay.target.device or len(lay.groups) != 1 or not lay.num_leaves
            or body_for is None and len(bounds) == 1 and (bounds[0].steady is None
                                                          or bounds[0].steady_one is None)):
        return None
    fast = lay.treedef.fast()
    if fast is None:
        return None
    cut = fast[0]
    grp = lay.groups[0]
    single = lay.num_leaves == 1
    p_leaves = cut(params)
    if not single and any(x.base is not io.p[0] for x in p_leaves):
        return None
    slots, fields, field_leaves = [], [], []
    for k, (bound, ip) in enumerate(zip(bounds, ips)):
        if ip is None:              # plain sgd: no state
            continue
        pre = state[ip]
        leaves = [cut(getattr(pre, f)) for f in bound.fields]
        # the buffers of the next steps are found from the leaves: check
        # that they are the ones this step bound
        bound_bufs = [w for _, w in bound.writes]
        if len(bound_bufs) != len(leaves):
            return None
        for ls, buf in zip(leaves, bound_bufs):
            if single:
                if not (ls[0].flags.c_contiguous and np.shares_memory(ls[0], buf)):
                    return None
            elif any(x.base is not buf for x in ls):
                return None
        slots.append((ip, type(pre)))
        fields += [(len(slots) - 1, f) for f in bound.fields]
        field_leaves += leaves
    bare = lay.treedef._spec is None                                     # None: a bare leaf
    plan = BarePlan() if bare and body_for is None else StepPlan()
    plan.cut, plan.build = fast
    plan.p_refs = [weakref.ref(x) for x in p_leaves]
    plan.shapes, plan.dtype, plan.single, plan.size = lay.shapes, grp.dtype, single, grp.size
    plan.state_id, plan.n, plan.idents, plan.ir = id(state), len(state), idents, ir
    plan.slots, plan.fields = tuple(slots), tuple(fields)
    plan.field_refs = [[weakref.ref(x) for x in leaves] for leaves in field_leaves]
    dt = grp.dtype.type
    plan.rate_value, plan.advance_rate = rate_value, rate_role.advance
    plan.rate_cls = rate_role.state_cls
    c = rate_role.constant      # a number (not a 0-d array, which could change): made once
    plan.rate = dt(c) if isinstance(c, (int, float, np.number)) and math.isfinite(c) else None
    runs = []
    for k, i in enumerate(grp.leaf_ids):
        a, b = grp.offsets[k], grp.offsets[k + 1]
        w = 0.0 if wd_leaf is None else wd_leaf[i]
        if runs and runs[-1][2] == w and runs[-1][1] == a:
            runs[-1][1] = b
        else:
            runs.append([a, b, w])
    plan.runs = [(a, b, dt(w)) for a, b, w in runs if b > a or wd_leaf is None]
    plan.g, plan.per_leaf = None, None
    if not single and grp.size <= GATHER_MAX:
        plan.g = np.empty(grp.size, grp.dtype)
    elif not single:            # a run per non-empty leaf, its grads leaf in place
        if body_for is not None:
            return None         # (two-pass steps take one grads buffer)
        plan.per_leaf = [k for k in range(lay.num_leaves) if grp.offsets[k + 1] > grp.offsets[k]]
        plan.runs = [(grp.offsets[k], grp.offsets[k + 1],
                      dt(0.0 if wd_leaf is None else wd_leaf[k])) for k in plan.per_leaf]
    plan.one = None
    if body_for is not None:
        plan.body = body_for(plan)
        return plan if plan.body is not None else None
    bound = bounds[0]
    if plan.per_leaf is None and len(plan.runs) == 1 and plan.runs[0][:2] == (0, grp.size):
        plan.one = one = bound.steady_one       # one run over the whole buffer
        w = plan.runs[0][2]

        def body(g, p, bufs, s, pres, trees):
            return (one(g, p, bufs, (s, w), pres[0] if pres else None, trees),)
    elif single or plan.per_leaf is None and not plan.runs:
        return None                 # (an empty leaf: the whole way, it costs nothing)
    else:
        run, runs = bound.steady, plan.runs

        def body(g, p, bufs, s, pres, trees):
            return (run([g], [p], [[b] for b in bufs], [[(a, b, (s, w)) for a, b, w in runs]],
                        pres[0] if pres else None, trees),)
    plan.body = body
    return plan


class Plans(threading.local):
    """The current plan of one fused step, per thread."""

    def __init__(self):
        self.current = None
