"""COCOB, optax.contrib's ``scale_by_cocob`` and ``cocob``.

See ``npopt.kernels.cocob`` for the per-element rule. The state keeps the
initial params (a copy) and four sums per element; ``alpha`` and ``eps``
are rounded to the leaf dtype, as optax's weakly typed Python floats.

The rule reads the params, so ``scale_by_cocob`` has no fused role in a
chain; the ``cocob`` alias has its own fused ``step`` (weight decay, learning
rate, bet and ``apply_updates`` in one pass, in place), except with a
weight-decay schedule.
"""
from typing import Any, NamedTuple

from .. import _checks, _flat
from ..base import NO_PARAMS_MSG, EmptyState, GradientTransformation
from ..kernels import cocob as kcocob
from ..transforms import _fusion
from ..transforms.combine import MaskedState, chain
from ..transforms.scale import add_decayed_weights, scale_by_learning_rate


class COCOBState(NamedTuple):
    init_particles: Any        # p0: the initial params
    cumulative_gradients: Any  # C: minus the sum of the gradients
    scale: Any                 # L: the largest |gradient| seen (eps at init)
    subgradients: Any          # G: the sum of |gradients|
    reward: Any                # R: the bettor's wealth


def scale_by_cocob(alpha=100.0, eps=1e-8):
    r"""COCOB-Backprop's update: each coordinate bets a fraction of its wealth.

    .. math::
        L \leftarrow \max(L, |g|),\quad G \leftarrow G + |g|,\quad
        R \leftarrow \max(R - g (p - p_0), 0),\quad C \leftarrow C - g,\\
        u = p_0 + \frac{C}{L \max(G + L, \alpha L)}(L + R) - p

    with :math:`L = \epsilon` at init. No learning rate: the alias's
    ``learning_rate`` (default 1) scales the gradients before this block.

    .. note:: As optax: the paper's :math:`\max(G + L, \alpha L)` and the
       update relative to the current params; :math:`L` starts at ``eps``,
       not 0 (the paper's first step divides by it). Needs ``params``;
       updates must have the params' dtypes.

    Args:
      alpha: :math:`\alpha`, bounds the fraction bet in the first steps.
      eps: the initial :math:`L` (keeps the first division finite).

    References:
      Orabona & Tommasi, "Training Deep Networks without Learning Rates
      Through Coin Betting", NeurIPS 2017 (arXiv:1705.07795), Algorithm 2.
    """
    alpha = _checks.check_number("alpha", alpha, low=0.0)
    eps = _checks.check_number("eps", eps, low=0.0)

    def init_fn(params):
        lay, _ = _flat.layout_of(params)
        p0 = lay.copy(lay.gather(params, "params"))
        zeros = [lay.views(lay.full(0)) for _ in range(3)]
        scale = lay.views([lay.target.full(g.size, g.dtype.type(eps), g.dtype)
                           for g in lay.groups])
        return COCOBState(lay.views(p0), zeros[0], scale, zeros[1], zeros[2])

    def update_fn(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError(NO_PARAMS_MSG)
        _checks.check_state("state", state, COCOBState, "scale_by_cocob")
        lay, _ = _flat.layout_of(params, "params")
        c = lay.gather(updates, "updates")
        p = lay.gather(params, "params")
        p0 = lay.gather(state.init_particles, "state.init_particles")
        sums = [lay.copy(lay.gather(getattr(state, f), f"state.{f}"))
                for f in ("cumulative_gradients", "scale", "subgradients", "reward")]
        out = lay.empty()
        for gi, grp in enumerate(lay.groups):
            r = grp.dtype.type
            lay.target.launch(kcocob.cocob_cpu, kcocob.cocob_cuda, c[gi], p[gi], p0[gi],
                              *[b[gi] for b in sums], out[gi], (r(alpha), r(0)), (r(1), r(0)),
                              False)
        return lay.views(out), COCOBState(state.init_particles, *[lay.views(b) for b in sums])

    return GradientTransformation(init_fn, update_fn)


def cocob(learning_rate=1.0, alpha=100.0, eps=1e-8, weight_decay=0.0, mask=None):
    r"""COCOB: ``chain(add_decayed_weights(weight_decay, mask),
    scale_by_learning_rate(learning_rate, flip_sign=False), scale_by_cocob(alpha, eps))``.

    A learning-rate-free method (stochastic subgradient descent by coin
    betting): :math:`g \leftarrow \eta (g + \lambda p)`, then
    ``scale_by_cocob``'s bet.

    .. warning:: ``learning_rate`` multiplies the *gradients* (it is not a
       step size; the default 1 is the paper's method), with no sign flip.

    Args:
      learning_rate: :math:`\eta`, a float or a schedule.
      alpha, eps: see ``scale_by_cocob``.
      weight_decay: :math:`\lambda`, L2 added to the gradients.
      mask: where to apply the decay.

    References:
      Orabona & Tommasi, "Training Deep Networks without Learning Rates
      Through Coin Betting", NeurIPS 2017 (arXiv:1705.07795).
    """
    rate = scale_by_learning_rate(learning_rate, flip_sign=False)
    tx = chain(add_decayed_weights(weight_decay, mask), rate, scale_by_cocob(alpha, eps))
    if callable(weight_decay):                  # a schedule: update + apply_updates
        return tx
    return GradientTransformation(
        tx.init, tx.update,
        fused_step=_fused_step(rate.fusion, weight_decay, mask, alpha, eps))


_FIELDS = ("cumulative_gradients", "scale", "subgradients", "reward")


def _fused_step(rate, weight_decay, mask, alpha, eps):
    """``cocob``'s ``step``: the weight decay, the learning rate, the bet and
    apply_updates in one pass, in place on the params and the state's sums
    (``transforms._fusion``'s frame: every check, ``commit``, the kernels),
    one launch per run of leaves with the same (masked) weight decay."""
    def step(params, grads, state, **extra_args):
        _fusion.check_tuple(state, 3, "cocob's init")
        if mask is None:
            _checks.check_state("state", state[0], EmptyState, "add_decayed_weights")
        else:
            _checks.check_state("state", state[0], MaskedState, "masked(add_decayed_weights)")
        cs = _checks.check_state("state", state[2], COCOBState, "scale_by_cocob")
        io = _fusion.begin(params, grads)
        lay = io.lay
        lr = _fusion.rate_value(rate, state[1])
        wd_leaf = _fusion._weight_decays(lay, _fusion.Decay(weight_decay, mask), params)
        bound = [lay.bind(getattr(cs, f), f"state.{f}") for f in _FIELDS]
        p0 = lay.gather(cs.init_particles, "state.init_particles")   # read, not shared
        writes = [(f"state.{f}", b) for f, (bufs, _, _) in zip(_FIELDS, bound) for b in bufs]
        writes += [("state.init_particles", b) for b in p0]
        _fusion.commit(io, [_fusion.Bound(writes, [t for _, _, t in bound], None)])
        for gi, grp in enumerate(lay.groups):
            r = grp.dtype.type
            for a, b, (lr_, wd) in _fusion._posts(lay, lr, wd_leaf)[gi]:
                lay.target.launch(kcocob.cocob_cpu, kcocob.cocob_cuda, io.g[gi][a:b],
                                  io.p[gi][a:b], p0[gi][a:b],
                                  *[bufs[gi][a:b] for bufs, _, _ in bound], io.p[gi][a:b],
                                  (r(alpha), r(0)), (lr_, r(wd)), True)
        new = COCOBState(cs.init_particles, *[tree for _, tree, _ in bound])
        return io.params_out(params), (state[0], rate.advance(state[1]), new)
    return step


__all__ = ["COCOBState", "cocob", "scale_by_cocob"]
