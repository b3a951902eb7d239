"""One builder for every elementwise preconditioner (adam, trace, rms, ...).

Such a transformation keeps k moment buffers shaped like the params (and
maybe an int32 ``count``), and its kernel has the signature::

    kernel(g, *moments, dst, hp, *flags, post, fused)

It works in place: the moments are overwritten, ``dst`` receives the update
(or, fused, holds the params and receives the new params). ``hp`` is the
tuple of per-step scalars (cast to the leaf dtype on the host, see each
transform's ``hyperparams``). ``update`` never modifies its inputs: it runs
the kernel on fresh copies of the moments; the fused ``step`` runs on the
state's own buffers and the params.
"""
from .. import _checks, _flat
from ..base import ZERO, GradientTransformation, safe_increment
from . import _fusion


def elementwise_transform(*, name, state_cls, moments, kernels, hyperparams, flags=(),
                          counted=True, moment_dtypes=None):
    """Builds (init, update, fusion) for an elementwise preconditioner.

    Args:
      name: the public name (for error messages).
      state_cls: the state NamedTuple; its fields are ``count`` (if counted)
        and the names in ``moments``.
      moments: dict field name -> initial value of that buffer.
      kernels: (cpu, cuda) kernels with the signature above.
      hyperparams: hyperparams(dtype, t) -> tuple of scalars of that dtype,
        with t the incremented count (1 at the first step).
      flags: extra static arguments passed after hp (booleans).
      counted: whether the state has a ``count`` field.
      moment_dtypes: dict field -> dtype for moments stored in another dtype.
    """
    fields = tuple(moments)
    mdt = moment_dtypes or {}

    def init_fn(params):
        lay, _ = _flat.layout_of(params)
        bufs = {f: lay.views(lay.full(v, mdt.get(f))) for f, v in moments.items()}
        return state_cls(count=ZERO, **bufs) if counted else state_cls(**bufs)

    def buffers(lay, state):
        _checks.check_state("state", state, state_cls, name)
        out, copied = [], False
        for f in fields:
            dts = [mdt.get(f) or g.dtype for g in lay.groups]
            b, c = lay.gather_report(getattr(state, f), f"state.{f}", dts)
            out.append(b)
            copied = copied or c
        return out, copied

    def launch(lay, g, moments, dst, t, runs, fused):
        cpu, cuda = kernels
        for gi, grp in enumerate(lay.groups):
            hp = hyperparams(grp.dtype, t)
            for a, b, post in runs[gi]:
                args = [g[gi][a:b]] + [m[gi][a:b] for m in moments] + [dst[gi][a:b]]
                lay.target.launch(cpu, cuda, *args, hp, *flags, post, fused)

    def new_state(count, trees):
        kw = dict(zip(fields, trees))
        return state_cls(count=count, **kw) if counted else state_cls(**kw)

    def update_fn(updates, state, params=None, **extra_args):
        lay, _ = _flat.layout_of(updates, "updates")
        g = lay.gather(updates, "updates")
        ins, _ = buffers(lay, state)
        count = safe_increment(state.count) if counted else None
        out = lay.empty()
        outs = [lay.copy(b) for b in ins]
        runs = [[(0, grp.size, (grp.dtype.type(0), grp.dtype.type(0)))] for grp in lay.groups]
        launch(lay, g, outs, out, int(count) if counted else 0, runs, False)
        return lay.views(out), new_state(count, [lay.views(b) for b in outs])

    def run(lay, g, p, state, posts):
        ins, copied = buffers(lay, state)
        count = safe_increment(state.count) if counted else None
        launch(lay, g, ins, p, int(count) if counted else 0, posts, True)
        trees = ([lay.views(b) for b in ins] if copied
                 else [getattr(state, f) for f in fields])
        return new_state(count, trees)

    def run_into(lay, g, u, state):
        ins, copied = buffers(lay, state)
        count = safe_increment(state.count) if counted else None
        runs = [[(0, grp.size, (grp.dtype.type(0), grp.dtype.type(0)))] for grp in lay.groups]
        launch(lay, g, ins, u, int(count) if counted else 0, runs, False)
        trees = ([lay.views(b) for b in ins] if copied
                 else [getattr(state, f) for f in fields])
        return new_state(count, trees)

    return GradientTransformation(init_fn, update_fn, fusion=_fusion.Precond(run, run_into))
