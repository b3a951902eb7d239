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
import numpy as np

from .. import _checks, _flat
from .._checks import compute_dtype, is_narrow, real_dtype
from ..kernels import _jit
from ..base import INT32_MAX, ZERO, GradientTransformation, safe_increment
from . import _fusion

_int32 = np.int32
_tuple_new = tuple.__new__     # a NamedTuple's own __new__ without its Python frame


def _float32_narrow(hp):
    """``hp`` with its 16-bit scalars (rounded to a 16-bit moment dtype by
    ``hyperparams``) as float32 scalars of the same value."""
    return tuple(np.float32(x) if is_narrow(getattr(x, "dtype", _F64)) else x for x in hp)


_F64 = np.dtype(np.float64)


def narrow_hyperparams(hp, dtype):
    """``hp`` (float32 scalars) for a float16/bfloat16 group: each rounded to
    ``dtype`` first, as JAX makes a weakly typed constant (``1 - b1``, ``eps``)
    that meets a 16-bit array a constant of that dtype."""
    return tuple(type(x)(dtype.type(x)) if isinstance(x, np.floating) else x for x in hp)


def elementwise_transform(*, name, state_cls, moments, kernels, hyperparams, flags=(),
                          counted=True, moment_dtypes=None, keep_state_dtype=(), rule=None,
                          complex_ok=False):
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
      keep_state_dtype: fields stored back in the dtype the state had when
        ``update`` promoted them (optax's ``cast_like(nu, state.nu)`` in
        scale_by_adam): float64 grads of float32 params compute them in
        float64, then round them to float32.
      rule: the fusion role's ``rule`` (see ``_fusion.Precond``), or None.
      complex_ok: the kernels have optax's complex semantics (see
        ``npopt.kernels.complex``): complex params are accepted, run with
        ``hyperparams`` of their real dtype. Otherwise they raise TypeError.

    Dtypes in ``update`` follow optax (jnp promotion): the moments and the
    updates have the dtype promoting the updates' with the moments' (float64
    grads make the moments of float32 params float64), except fields of a
    fixed ``moment_dtypes`` and those in ``keep_state_dtype``. The fused
    ``step`` needs one dtype per group; it raises ``_flat.Promote`` before
    any kernel otherwise, and ``step`` then runs ``update``.
    """
    fields = tuple(moments)
    labels = tuple(f"state.{f}" for f in fields)
    mdt = moment_dtypes or {}
    narrow_state = any(_checks.is_narrow(dt) for dt in mdt.values())

    def real_moments_for_complex(lay):
        if lay.complex and mdt:
            f, dt = next(iter(mdt.items()))
            raise TypeError(
                f"{name}: state.{f} of the real dtype {dt} (mu_dtype / accumulator_dtype) "
                f"cannot hold the moments of complex params: the imaginary part would be "
                f"dropped (optax drops it); leave it None")

    def init_fn(params):
        lay, _ = _flat.layout_of(params, complex_ok=complex_ok, narrow_ok=True)
        real_moments_for_complex(lay)
        bufs = {f: lay.views(lay.full(v, mdt.get(f))) for f, v in moments.items()}
        return state_cls(count=ZERO, **bufs) if counted else state_cls(**bufs)

    def launch(lay, g, moments, dst, t, runs, fused, dtypes=None):
        """The kernel over each run of each group. g[gi]: the group's
        gradient buffer, or a list of one array per run (a step plan's
        large trees: the grads leaves used in place, a run per leaf)."""
        cpu, cuda = kernels
        go = lay.target.launch
        for gi, grp in enumerate(lay.groups):
            hp = hyperparams(real_dtype(compute_dtype(grp.dtype if dtypes is None
                                                      else dtypes[gi])), t)
            if narrow_state:        # a 16-bit moment's constants (b1 in mu_dtype): float32
                hp = _float32_narrow(hp)
            if lay.narrow and is_narrow(grp.dtype):
                hp = narrow_hyperparams(hp, grp.dtype)
                if is_narrow(dst[gi].dtype):          # a fused step on the 16-bit buffers
                    _flat.narrow_runs(lay.target, (cpu, cuda), g[gi], [m[gi] for m in moments],
                                      dst[gi], (hp, *flags), runs[gi], fused)
                    continue
            if type(g[gi]) is list:
                for (a, b, post), gk in zip(runs[gi], g[gi]):
                    go(cpu, cuda, gk, *[m[gi][a:b] for m in moments], dst[gi][a:b], hp, *flags,
                       post, fused)
                continue
            for a, b, post in runs[gi]:
                if a == 0 and b == grp.size:         # the whole buffer: no views to make
                    go(cpu, cuda, g[gi], *[m[gi] for m in moments], dst[gi], hp, *flags,
                       post, fused)
                else:
                    go(cpu, cuda, g[gi][a:b], *[m[gi][a:b] for m in moments], dst[gi][a:b],
                       hp, *flags, post, fused)

    positional = state_cls._fields == ("count",) * counted + fields
    positional_counted = positional and counted
    cpu = kernels[0]

    def new_state(count, trees):
        if positional:
            return state_cls(count, *trees) if counted else state_cls(*trees)
        kw = dict(zip(fields, trees))
        return state_cls(count=count, **kw) if counted else state_cls(**kw)

    def update_fn(updates, state, params=None, **extra_args):
        _checks.check_state("state", state, state_cls, name)
        if params is not None:       # blame the updates when they do not match the params
            _flat.check_like(params, updates, "updates")
        lay, _ = _flat.layout_of(updates, "updates", complex_ok, narrow_ok=True)
        real_moments_for_complex(lay)
        g = lay.gather(updates, "updates")
        # optax's dtypes: moments and updates promote the updates' dtype with
        # the moments' (float64 grads make float32 moments float64), except
        # moments of a fixed dtype (mu_dtype, accumulator_dtype)
        dts = [grp.dtype for grp in lay.groups]
        ins, kept = {}, {}
        for f in fields:
            if f in mdt:
                ins[f] = lay.gather_report(getattr(state, f), f"state.{f}",
                                           [mdt[f]] * len(lay.groups), ref="updates")[0]
            else:
                ins[f], fdt = lay.gather_promoted(getattr(state, f), f"state.{f}", ref="updates",
                                                  own=f in keep_state_dtype)
                if f in keep_state_dtype:
                    kept[f] = fdt
                dts = [np.promote_types(a, b) for a, b in zip(dts, fdt)]
        # float16/bfloat16 buffers are computed in float32 (``compute_dtype``)
        # and every result is rounded back once, as XLA does
        cdts = [compute_dtype(dt) for dt in dts]
        outs, stored = [], []
        for f in fields:
            bufs = ins[f]
            if f in mdt:
                back = [mdt[f]] * len(lay.groups)
                cdt = [compute_dtype(mdt[f])] * len(lay.groups)
            else:
                back, cdt = kept.get(f, dts), cdts
            conv = [_flat.as_dtype(lay.target, b, dt) for b, dt in zip(bufs, cdt)]
            outs.append([c if c is not b else lay.copy([b])[0] for c, b in zip(conv, bufs)])
            stored.append(back)
        if lay.narrow:
            g = [_flat.as_dtype(lay.target, b, dt) for b, dt in zip(g, cdts)]
        count = safe_increment(state.count) if counted else None
        out = [lay.target.empty(grp.size, dt) for grp, dt in zip(lay.groups, cdts)]
        runs = [[(0, grp.size, (real_dtype(dt).type(0),) * 2)]
                for grp, dt in zip(lay.groups, cdts)]
        launch(lay, g, outs, out, int(count) if counted else 0, runs, False, cdts)
        out = [_flat.as_dtype(lay.target, b, dt) for b, dt in zip(out, dts)]
        outs = [[_flat.as_dtype(lay.target, b, dt) for b, dt in zip(bufs, back)]
                for bufs, back in zip(outs, stored)]
        return lay.views(out), new_state(count, [lay.views(b) for b in outs])

    def bind(lay, state):
        """The state checked and bound for a fused step (see ``_fusion.Bound``)."""
        if type(state) is not state_cls:
            _checks.check_state("state", state, state_cls, name)
        if narrow_state:
            raise _flat.Promote(f"{name}: a float16/bfloat16 state: the step runs update()")
        bufs, trees, writes, tokens = [], [], [], []
        for f, label in zip(fields, labels):
            b, tree, token = lay.bind(getattr(state, f), label,
                                      [mdt[f]] * len(lay.groups) if f in mdt else None)
            bufs.append(b)
            trees.append(tree)
            tokens.append(token)
            for x in b:
                writes.append((label, x))
        count = safe_increment(state.count) if counted else None
        t = int(count) if counted else 0

        def run(g, p, posts):
            launch(lay, g, bufs, p, t, posts, True)
            return new_state(count, trees)

        def run_into(g, u):
            runs = [[(0, grp.size, (grp.dtype.type(0), grp.dtype.type(0)))]
                    for grp in lay.groups]
            launch(lay, g, bufs, u, t, runs, False)
            return new_state(count, trees)

        def steady_one(g, p, moments, post, state, new_trees, fused=True):
            """``steady`` for one group finished by one run (the whole buffer);
            not ``fused``: the direction written into ``p`` (``run_into``)."""
            if counted:
                t = int(state.count) + 1
                if t > INT32_MAX:                           # safe_increment
                    t = INT32_MAX
            else:
                t = 0
            kernel(g, *moments, p, hyperparams(dtype, t), *flags, post, fused)
            return _tuple_new(state_cls, (_int32(t), *new_trees)) if positional_counted \
                else new_state(_int32(t) if counted else None, new_trees)

        def steady_into(g, u, moments, state, new_trees):
            return steady_one(g, u, moments, no_post, state, new_trees, False)

        def steady(g, p, moment_bufs, posts, state, new_trees):
            """Several runs, or a run per grads leaf (one run: ``steady_one``)."""
            t = min(int(state.count) + 1, INT32_MAX) if counted else 0   # safe_increment
            launch(lay, g, moment_bufs, p, t, posts, True)
            return new_state(np.int32(t) if counted else None, new_trees)
        kernel = _jit.PlannedCall(cpu)        # one per plan: its argument types
        one_pass = len(lay.groups) == 1 and not lay.target.device
        dtype, size = (lay.groups[0].dtype, lay.groups[0].size) if one_pass else (None, -1)
        no_post = (dtype.type(0), dtype.type(0)) if one_pass else None
        return _fusion.Bound(writes, tokens, run, run_into, fields, steady,
                             steady_one if one_pass else None,
                             steady_into if one_pass else None)

    def run(lay, g, p, state, posts):
        return bind(lay, state).run(g, p, posts)

    def run_into(lay, g, u, state):
        return bind(lay, state).run_into(g, u)

    return GradientTransformation(init_fn, update_fn,
                                  fusion=_fusion.Precond(run, run_into, bind, rule,
                                                         complex_ok, narrow_ok=True))
