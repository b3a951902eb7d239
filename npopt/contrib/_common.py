"""Helpers shared by the learning-rate-free rules of ``npopt.contrib``.

These rules alternate global reductions (a dot product or a norm over the
whole tree) with elementwise passes. Each reduction is deterministic: every
leaf (segment of a dtype group's flat buffer) is cut into the fixed chunks
of ``npopt.kernels.reduce.chunk_table``, each chunk summed left to right in
the leaf's dtype by the family's kernel (which may update state elements in
the same pass), the chunk sums combined in order per leaf
(``reduce.combine_chunks``), and the per-leaf sums added over the leaves in
tree order with NumPy's promotion, as optax's ``tree.reduce(add, ...,
initializer=0)`` does. Nothing depends on the thread count, the CUDA grid or
the CPU.

Scalar states are NumPy scalars of optax's dtype: the *lowest* float dtype
of the params (``optax.tree.dtype(params, 'lowest')``).
"""
import numpy as np

from .. import _checks, _flat
from ..kernels import reduce as kreduce
from ..transforms import _segments

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)


def lowest_dtype(lay):
    """optax.tree.dtype(params, 'lowest') among float32/float64 (float64 for no leaves)."""
    dts = {g.dtype for g in lay.groups}
    return F32 if F32 in dts else F64


def highest_dtype(lay):
    dts = {g.dtype for g in lay.groups}
    return F64 if (F64 in dts or not dts) else F32


def chunk_sums(lay, gi, kernels, arrays, hp, m, dtype):
    """Per-leaf sums of group ``gi``: a host array (leaves in the group, m).

    Launches ``kernel(*arrays, chunks, *hp, zero, partial)`` (CPU or CUDA)
    where ``partial`` is (chunks, m) of ``dtype`` and ``zero = dtype(0)``;
    the kernel writes each chunk's m sums (and may update state elements
    in place in the same pass).
    """
    grp = lay.groups[gi]
    dtype = np.dtype(dtype)
    chunks, chunks_t, _ = _segments.tables(lay)[gi]
    totals = np.zeros((len(grp.leaf_ids), m), dtype)
    k = len(chunks)
    if k:
        partial = lay.target.empty(k * m, dtype).reshape(k, m)
        lay.target.launch(kernels[0], kernels[1], *arrays, chunks_t, *hp, dtype.type(0),
                          partial)
        if lay.target.device:
            partial = partial.copy_to_host()
        kreduce.combine_chunks(chunks, partial, totals)
    return totals


def tree_total(lay, per_group, col=0):
    """Sum over the leaves, in tree order, of ``per_group[gi][j, col]`` (leaf j of
    group gi), starting from 0: optax's ``jax.tree.reduce(add, x, initializer=0)``."""
    leaf = [None] * lay.num_leaves
    for grp, s in zip(lay.groups, per_group):
        for j, i in enumerate(grp.leaf_ids):
            leaf[i] = s[j, col]
    total = 0
    for x in leaf:
        total = total + x
    return total if lay.num_leaves else np.float64(0)


def group_sumsq(lay, bufs):
    """Per group, per leaf sums of squares (leaves, 1)."""
    return [_segments.group_sumsq(lay, gi, b)[:, :1] for gi, b in enumerate(bufs)]


def tree_norm_sq(lay, bufs):
    return tree_total(lay, group_sumsq(lay, bufs))


def copy_params(lay, p, dtype_of=None):
    """New buffers holding the params (cast to ``dtype_of[gi]`` when given)."""
    out = []
    for gi, (grp, b) in enumerate(zip(lay.groups, p)):
        dt = grp.dtype if dtype_of is None else np.dtype(dtype_of[gi])
        if dt == grp.dtype:
            c = lay.target.empty(grp.size, dt)
            lay.target.copy_into(c, b)
        else:
            if lay.target.device:
                raise TypeError(f"param_dtype: npopt does not convert dtypes on a CUDA "
                                f"device; use the params' dtype ({grp.dtype})")
            c = np.asarray(b).astype(dt)
        out.append(c)
    return out


def schedule_value(learning_rate, count, name="learning_rate"):
    """``learning_rate(count)`` for a schedule (checked finite), else the number."""
    if callable(learning_rate):
        v = learning_rate(count)
        _checks.check_finite_scalar(name, v, f" (the schedule's value at step {int(count)})")
        return v
    return learning_rate


def check_scalar_field(state, field, owner):
    """A scalar state field must be a real number (0-d)."""
    x = getattr(state, field)
    if np.shape(x) != () or np.asarray(x).dtype.kind not in "fb":
        raise ValueError(f"state.{field}: expected a 0-d float (the value {owner}.init "
                         f"made), got {_checks._describe(x)}")
    return x


def layout(params):
    if params is None:
        from ..base import NO_PARAMS_MSG
        raise ValueError(NO_PARAMS_MSG)
    lay, _ = _flat.layout_of(params, "params")
    return lay


def transformation(state_cls, owner, moments, readonly, prepare, run, init_fn):
    """A GradientTransformation whose ``update`` and fused ``step`` share ``run``.

    moments: the params-like state fields the passes update in place (their
      buffers are copies in ``update``, the state's own buffers in ``step``);
    readonly: params-like fields only read (``params0``, ``x0``);
    prepare(state, extra_args) -> the host scalars of the first pass (every
      check of the scalars and extra args happens here, before anything is
      written);
    run(lay, g, p, m, ro, state, pre, dst, fused) -> dict of the new scalar
      fields: the passes over the group buffers (m, ro: dicts of field name
      -> buffers per group), writing the update into ``dst`` or, when
      ``fused``, the new params into ``p`` (then ``dst is p``).

    The fused ``step`` gives the numbers of update + apply_updates: the last
    pass adds ``x + u`` with the ``u`` the update path stores.
    """
    from ..base import GradientTransformation
    from ..transforms import _fusion

    def update_fn(updates, state, params=None, **extra_args):
        lay = layout(params)
        _checks.check_state("state", state, state_cls, owner)
        g = lay.gather(updates, "updates")
        p = lay.gather(params, "params")
        m = {f: lay.gather(getattr(state, f), "state." + f) for f in moments}
        ro = {f: lay.gather(getattr(state, f), "state." + f) for f in readonly}
        pre = prepare(state, extra_args)
        m = {f: lay.copy(b) for f, b in m.items()}
        dst = lay.empty()
        new = run(lay, g, p, m, ro, state, pre, dst, False)
        fields = {f: lay.views(m[f]) for f in moments}
        fields.update(new)
        return lay.views(dst), state._replace(**fields)

    def step(params, grads, state, **extra_args):
        _checks.check_state("state", state, state_cls, owner)
        io = _fusion.begin(params, grads)
        lay = io.lay
        m, trees, tokens, writes = {}, {}, [], []
        for f in moments:
            bufs, tree, token = lay.bind(getattr(state, f), "state." + f)
            m[f], trees[f] = bufs, tree
            tokens.append(token)
            writes += [("state." + f, b) for b in bufs]
        ro = {}
        for f in readonly:
            ro[f] = lay.gather(getattr(state, f), "state." + f)
            writes += [("state." + f, b) for b in ro[f]]
        pre = prepare(state, extra_args)
        _fusion.commit(io, [_fusion.Bound(writes, tokens, None)])
        new = run(lay, io.g, io.p, m, ro, state, pre, io.p, True)
        fields = dict(trees)
        fields.update(new)
        return (lay.views(io.p) if io.copied else params), state._replace(**fields)

    return GradientTransformation(init_fn, update_fn, fused_step=step)


def zeros_like_params(lay):
    return lay.views(lay.full(0))
