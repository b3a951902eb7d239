"""Adafactor (Shazeer & Stern, 2018), as the chain optax 0.2.8 builds, with a
fused ``step`` (five passes over memory instead of the chain's seven)."""
import numpy as np

from .. import _checks
from ..base import GradientTransformation, safe_increment
from ..kernels import factored as kf
from ..transforms import _fusion, _segments
from ..transforms import factored as fct
from ..transforms.clip import clip_by_block_rms
from ..transforms.combine import MaskedState, chain
from ..transforms.factored import (FactoredState, scale_by_factored_rms,
                                  scale_by_param_block_norm, scale_by_param_block_rms)
from ..transforms.scale import (WeightDecaySchedule, add_decayed_weights, scale,
                               scale_by_learning_rate)


def adafactor(learning_rate=None, min_dim_size_to_factor=128, decay_rate=0.8, decay_offset=0,
              multiply_by_parameter_scale=True, clipping_threshold=1.0, momentum=None,
              dtype_momentum=np.float32, weight_decay_rate=None, eps=1e-30, factored=True,
              weight_decay_mask=None):
    r"""Adafactor: Adam-like steps with factored second moments (sublinear memory).

    The chain optax builds (each block only when its argument enables it)::

        chain(scale_by_factored_rms(factored, decay_rate, decay_offset,
                                    min_dim_size_to_factor, eps),
              clip_by_block_rms(clipping_threshold),
              scale_by_learning_rate(learning_rate, flip_sign=False),
              scale_by_param_block_rms(),          # multiply_by_parameter_scale
              ema(momentum, debias=False, accumulator_dtype=dtype_momentum),
              add_decayed_weights(weight_decay_rate, weight_decay_mask),
              scale(-1))

    so, per leaf :math:`p` with gradient :math:`g` and factored second-moment
    estimate :math:`\hat v` (see ``scale_by_factored_rms``),

    .. math::
        u = g / \sqrt{\hat v}, \quad
        u \leftarrow \frac{u}{\max(1, \mathrm{rms}(u)/d)}, \quad
        u \leftarrow \eta_t\, \max(\mathrm{rms}(p), 10^{-3})\, u, \quad
        m \leftarrow \mu m + (1-\mu) u, \quad
        p \leftarrow p - (m + \lambda p).

    ``step`` computes the same numbers in five passes over memory, in place
    (see ``_fused_step``).

    .. warning:: optax's default ``learning_rate=None`` leaves out the
       learning rate: each leaf then moves by :math:`\max(\mathrm{rms}(p),
       10^{-3})` times a unit-RMS direction per step (the paper's relative
       step with :math:`\rho_t = 1`), which is large; the update is still
       negated (``scale(-1)``): descent, unlike ``adadelta(learning_rate=None)``.
       The paper's relative step size :math:`\min(10^{-2}, 1/\sqrt t)` is not
       applied; pass it as a schedule. The weight decay is not multiplied by
       the learning rate. Momentum buffers are float32 by default, whatever
       the params' dtype.

    Args:
      learning_rate: a float, a schedule, or None (no learning rate).
      min_dim_size_to_factor: factor a leaf's statistics only if its two
        largest dimensions are at least this large.
      decay_rate: exponent of the second-moment decay :math:`1 - t^{-0.8}`.
      decay_offset: subtracted from the step count in that schedule
        (fine-tuning a restored state; see ``scale_by_factored_rms``).
      multiply_by_parameter_scale: scale each leaf's step by its parameters'
        RMS (at least 1e-3).
      clipping_threshold: clip each leaf's update RMS to this (None: off).
      momentum: EMA decay of the updates (None: no momentum).
      dtype_momentum: dtype of the momentum buffer.
      weight_decay_rate: decoupled weight decay (a float or a schedule).
      eps: added to the squared gradients.
      factored: factor the second moments of large matrices.
      weight_decay_mask: a prefix tree of bools, or a callable of the params,
        selecting the leaves to decay.

    Returns:
      A GradientTransformation; its state is the tuple of the chain's states,
      first ``FactoredState(count, v_row, v_col, v)``.

    Examples:
      >>> import numpy as np, npopt
      >>> opt = npopt.adafactor(learning_rate=0.1)
      >>> params = {'w': np.ones((2, 3))}
      >>> state = opt.init(params)
      >>> params, state = opt.step(params, {'w': np.full((2, 3), 0.5)}, state)
      >>> params['w']
      array([[0.9, 0.9, 0.9],
             [0.9, 0.9, 0.9]])

    References:
      Shazeer & Stern, "Adafactor: Adaptive Learning Rates with Sublinear
      Memory Cost", ICML 2018, https://arxiv.org/abs/1804.04235
    """
    acc = _checks.check_float_dtype("dtype_momentum", dtype_momentum)
    # the building blocks check these too, under their own names: name them
    # as the user spelled them here
    _checks.check_number("momentum", momentum, low=0.0, high=1.0, allow_none=True)
    _checks.check_number("clipping_threshold", clipping_threshold, low=0.0, low_open=True,
                         allow_none=True)
    _checks.check_number("eps", eps, low=0.0)
    if not callable(weight_decay_rate):
        _checks.check_number("weight_decay_rate", weight_decay_rate, low=0.0, allow_none=True)
    if isinstance(decay_offset, bool) or not isinstance(decay_offset, (int, np.integer)):
        raise TypeError(f"decay_offset: expected an integer, got {_checks._describe(decay_offset)}")
    _checks.check_bool("multiply_by_parameter_scale", multiply_by_parameter_scale)
    txs = [scale_by_factored_rms(factored, decay_rate, decay_offset, min_dim_size_to_factor, eps)]
    at = {}                                    # block -> its position in the chain
    if clipping_threshold is not None:
        at["clip"] = len(txs)
        txs.append(clip_by_block_rms(clipping_threshold))
    if learning_rate is not None:
        at["lr"] = len(txs)
        txs.append(scale_by_learning_rate(learning_rate, flip_sign=False))
    if multiply_by_parameter_scale:
        at["rms"] = len(txs)
        txs.append(scale_by_param_block_rms())
    if momentum is not None:
        from ..transforms.ema import ema
        at["ema"] = len(txs)
        txs.append(ema(momentum, debias=False, accumulator_dtype=dtype_momentum))
    if weight_decay_rate is not None:
        at["wd"] = len(txs)
        txs.append(add_decayed_weights(weight_decay_rate, mask=weight_decay_mask))
    txs.append(scale(-1))
    tx = chain(*txs)
    return GradientTransformation(tx.init, tx.update, fused_step=_fused_step(
        txs, at, dict(factored=factored, decay_rate=decay_rate, decay_offset=decay_offset,
                      min_dim=int(min_dim_size_to_factor), eps=eps,
                      threshold=clipping_threshold, momentum=momentum,
                      acc=acc,
                      wd=weight_decay_rate, mask=weight_decay_mask)))


def _fused_step(txs, at, hp):
    """adafactor's ``step``: the chain's numbers in five passes over memory.

    1. ``scale_by_factored_rms``: its moments (two reads of the gradients,
       one per statistic), then its update ``u``, written to a scratch
       buffer (kept per layout between steps, one per thread);
    2. one pass over ``u`` and the params: the per-leaf sums of squares
       (clip_by_block_rms's RMS of ``u``, scale_by_param_block_rms's of p);
    3. ``adafactor_tail``: the rest of the chain per element, in place on
       the params (and the momentum).

    The per-leaf and per-step scalars are computed as the chain's blocks
    compute them, so ``step`` and ``update`` + ``apply_updates`` agree (bit
    for bit on the CPU without momentum, to an ulp with it).
    """
    scratch = _fusion.Scratch()        # u, one per thread
    sched_wd = callable(hp["wd"])
    n = len(txs)

    def step(params, grads, state, **extra_args):
        _fusion.check_tuple(state, n)
        io = _fusion.begin(params, grads)
        lay = io.lay
        plan = fct.plan_of(lay, hp["factored"], hp["min_dim"])
        fs = state[0]
        # every check, and the chain's per-step scalars, before any kernel runs
        stats, trees, tokens, writes = fct.bind_state(lay, plan, fs)
        new = list(state)
        lr = 1.0
        if "lr" in at:
            lr = _fusion.rate_value(txs[at["lr"]].fusion, state[at["lr"]])
            new[at["lr"]] = txs[at["lr"]].fusion.advance(state[at["lr"]])
        acc = hp["acc"]
        if "ema" in at:
            from ..transforms.ema import EmaState
            es = _checks.check_state("state", state[at["ema"]], EmaState, "ema")
            e_bufs, e_tree, e_token = lay.bind(
                es.ema, "state.ema", [grp.dtype if acc is None else acc for grp in lay.groups])
            tokens.append(e_token)
            writes.extend(("state.ema", b) for b in e_bufs)
            e_count = safe_increment(es.count)
        wd, on = 0.0, [False] * lay.num_leaves
        if "wd" in at:
            ws = state[at["wd"]]
            if hp["mask"] is not None:
                _checks.check_state("state", ws, MaskedState, "masked")
                ws = ws.inner_state
            if sched_wd:
                _checks.check_state("state", ws, WeightDecaySchedule, "add_decayed_weights")
                wd = _checks.check_finite_scalar(
                    "weight_decay_rate", hp["wd"](ws.count),
                    f" (the schedule's value at count {int(ws.count)})")
                inner = WeightDecaySchedule(safe_increment(ws.count))
                new[at["wd"]] = MaskedState(inner) if hp["mask"] is not None else inner
            else:
                wd = hp["wd"]
            on = (_fusion.mask_per_leaf(hp["mask"], params) if hp["mask"] is not None
                  else [True] * lay.num_leaves)
        hp_of = fct.step_hyperparams(fs.count, hp["decay_offset"], fct._decay_rate_pow,
                                     hp["decay_rate"], hp["eps"])
        _fusion.commit(io, (_fusion.Bound(writes, tokens, None),))
        g, p = io.g, io.p

        u = scratch.get(lay)
        fct.factored_rms_pass(lay, plan, g, stats, u, hp_of, fct.no_posts(lay), False)
        for gi, grp in enumerate(lay.groups):
            if grp.size == 0:
                continue
            dt = grp.dtype.type
            sums = _segments.group_sumsq(lay, gi, u[gi], p[gi])
            d = f = np.ones(len(grp.leaf_ids), grp.dtype)
            if "clip" in at:                     # as clip_by_block_rms
                sizes = np.diff(np.asarray(grp.offsets, np.int64)).astype(grp.dtype)
                with np.errstate(divide="ignore", invalid="ignore"):
                    rms = np.sqrt(sums[:, 0] / sizes)
                    d = np.maximum(dt(1.0), rms / dt(hp["threshold"])).astype(grp.dtype)
            if "rms" in at:                      # as scale_by_param_block_rms
                f = fct.param_block_factors(grp, sums[:, 1], 1e-3, True)
            w = np.array([dt(wd) if on[i] else dt(0) for i in grp.leaf_ids], grp.dtype)
            leaf_hp = np.stack([d, f, w], axis=1)
            if "ema" in at:                      # as ema(debias=False)
                ad = grp.dtype if acc is None else acc
                res = np.promote_types(grp.dtype, ad)
                ema_hp = (res.type(1 - hp["momentum"]), ad.type(hp["momentum"]), res.type(1))
                e = e_bufs[gi]
            else:
                ema_hp, e = (dt(1), dt(1), dt(1)), u[gi]
            _, chunks, offsets = _segments.tables(lay)[gi]
            leaf_hp = lay.target.put(leaf_hp)
            lay.target.launch(kf.adafactor_tail_cpu, kf.adafactor_tail_cuda, u[gi], p[gi], e,
                              chunks, offsets, leaf_hp, (dt(lr), dt(-1)), ema_hp, "ema" in at)

        new[0] = fct.remember(lay, FactoredState(safe_increment(fs.count), *trees))
        if "ema" in at:
            new[at["ema"]] = EmaState(e_count, e_tree)
        return io.params_out(params), tuple(new)

    return step


__all__ = ["adafactor"]
