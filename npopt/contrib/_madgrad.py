"""MADGRAD, optax.contrib's ``scale_by_madgrad`` and ``madgrad``.

See ``npopt.kernels.madgrad`` for the per-element rule. Host side, as
optax: ``lamb = (lr + eps) * sqrt(count + 1)`` where ``sqrt`` of the int32
count is float32 (JAX's promotion of an integer), so ``lamb`` is a float32
number unless the schedule returns float64; it is then cast to the leaf
dtype. The state keeps the initial params ``x0`` (a copy).

The rule reads the params, so ``scale_by_madgrad`` has no fused role in a
chain; the ``madgrad`` alias has its own fused ``step`` (weight decay, rule
and ``apply_updates`` in one pass, in place), except with a weight-decay
schedule.
"""
from typing import Any, NamedTuple

import numpy as np

from .. import _checks, _flat
from ..base import NO_PARAMS_MSG, ZERO, EmptyState, GradientTransformation, safe_increment
from ..kernels import madgrad as kmad
from ..transforms import _fusion
from ..transforms.combine import chain
from ..transforms.scale import add_decayed_weights, scheduled_value


class MadgradState(NamedTuple):
    count: Any        # int32 step counter
    grad_sum_sq: Any  # G: weighted sum of squared gradients
    s: Any            # weighted sum of gradients
    x0: Any           # the initial params


def _lamb(learning_rate, eps, count):
    """optax's ``(lr + eps) * jnp.sqrt(count + 1)``, NumPy promotion for JAX's."""
    if callable(learning_rate):
        lr = scheduled_value("learning_rate", learning_rate, count, nonnegative=True)
        lr = lr if type(lr) is float else np.asarray(lr)[()]
    else:
        lr = learning_rate
    return (lr + eps) * np.sqrt(np.float32(int(count) + 1))


def scale_by_madgrad(learning_rate, momentum=0.9, eps=1e-6):
    r"""MADGRAD's update: dual averaging with a cube-root denominator and
    momentum by averaging of the iterates.

    With :math:`\lambda_k = (\eta_k + \epsilon)\sqrt{k+1}`:

    .. math::
        G_{k+1} = G_k + \lambda_k g_k^2,\quad s_{k+1} = s_k + \lambda_k g_k,\quad
        z_{k+1} = x_0 - \frac{s_{k+1}}{G_{k+1}^{1/3} + \epsilon},\\
        x_{k+1} = (1-\mu) z_{k+1} + \mu x_k,\qquad u_k = x_{k+1} - x_k

    The learning rate is inside (the update is the whole step): the alias
    does not scale it again.

    .. note:: As optax (and the authors' PyTorch code): ``eps`` is added to
       the learning rate as well as to the denominator; ``momentum`` is the
       paper's :math:`1 - c_{k+1}`, held constant. Needs ``params``;
       updates must have the params' dtypes.

    Args:
      learning_rate: :math:`\eta`, a float or a schedule of the step count.
      momentum: :math:`\mu`, the weight of the previous iterate.
      eps: added to the learning rate and to the denominator.

    References:
      Defazio & Jelassi, "Adaptivity without Compromise: A Momentumized,
      Adaptive, Dual Averaged Gradient Method for Stochastic Optimization",
      2021 (arXiv:2101.11075), Algorithm 1.
    """
    learning_rate = _checks.check_scalar_or_schedule("learning_rate", learning_rate)
    momentum = _checks.check_number("momentum", momentum, low=0.0, high=1.0)
    eps = _checks.check_number("eps", eps, low=0.0)

    def init_fn(params):
        lay, _ = _flat.layout_of(params)
        x0 = lay.copy(lay.gather(params, "params"))
        return MadgradState(ZERO, lay.views(lay.full(0)), lay.views(lay.full(0)), lay.views(x0))

    def update_fn(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError(NO_PARAMS_MSG)
        _checks.check_state("state", state, MadgradState, "scale_by_madgrad")
        lay, _ = _flat.layout_of(params, "params")
        g = lay.gather(updates, "updates")
        p = lay.gather(params, "params")
        gsq = lay.copy(lay.gather(state.grad_sum_sq, "state.grad_sum_sq"))
        s = lay.copy(lay.gather(state.s, "state.s"))
        x0 = lay.gather(state.x0, "state.x0")
        lamb = _lamb(learning_rate, eps, state.count)
        out = lay.empty()
        for gi, grp in enumerate(lay.groups):
            r = grp.dtype.type
            hp = (r(lamb), r(eps), r(1 - momentum), r(momentum), r(1 / 3), r(0))
            lay.target.launch(kmad.madgrad_cpu, kmad.madgrad_cuda,
                              g[gi], gsq[gi], s[gi], x0[gi], p[gi], out[gi], hp, False)
        return lay.views(out), MadgradState(safe_increment(state.count), lay.views(gsq),
                                            lay.views(s), state.x0)

    return GradientTransformation(init_fn, update_fn)


def madgrad(learning_rate, momentum=0.9, weight_decay=0.0, eps=1e-6):
    r"""MADGRAD: ``chain(add_decayed_weights(weight_decay),
    scale_by_madgrad(learning_rate, momentum, eps))``.

    .. math::
        g_k \leftarrow g_k + \lambda x_k,\quad x_{k+1} = (1-\mu) z_{k+1} + \mu x_k

    (see ``scale_by_madgrad``). A general-purpose optimizer that matches
    SGD+momentum on vision tasks and Adam on NLP tasks.

    .. warning:: The weight decay is L2 (added to the gradient, then summed
       into the dual averages), not decoupled; the authors' code calls it
       ``weight_decay`` too.

    Args:
      learning_rate: :math:`\eta`, a float or a schedule.
      momentum: :math:`\mu`.
      weight_decay: :math:`\lambda`, L2 regularisation.
      eps: see ``scale_by_madgrad``.

    References:
      Defazio & Jelassi, "Adaptivity without Compromise: A Momentumized,
      Adaptive, Dual Averaged Gradient Method for Stochastic Optimization",
      2021 (arXiv:2101.11075).
    """
    tx = chain(add_decayed_weights(weight_decay),
               scale_by_madgrad(learning_rate=learning_rate, momentum=momentum, eps=eps))
    if callable(weight_decay):                  # a schedule: update + apply_updates
        return tx
    return GradientTransformation(tx.init, tx.update,
                                  fused_step=_fused_step(learning_rate, momentum, weight_decay,
                                                         eps))


def _fused_step(learning_rate, momentum, weight_decay, eps):
    """``madgrad``'s ``step``: the weight decay, the rule and apply_updates
    in one pass, in place on the params and the state's sums (the frame of
    ``transforms._fusion``: every check, then ``commit``, then the kernel)."""
    def step(params, grads, state, **extra_args):
        _fusion.check_tuple(state, 2, "madgrad's init")
        _checks.check_state("state", state[0], EmptyState, "add_decayed_weights")
        ms = _checks.check_state("state", state[1], MadgradState, "scale_by_madgrad")
        io = _fusion.begin(params, grads)
        lay = io.lay
        lamb = _lamb(learning_rate, eps, ms.count)
        gsq, gsq_tree, t1 = lay.bind(ms.grad_sum_sq, "state.grad_sum_sq")
        s, s_tree, t2 = lay.bind(ms.s, "state.s")
        x0 = lay.gather(ms.x0, "state.x0")      # read; the params must not share it
        writes = ([("state.grad_sum_sq", b) for b in gsq] + [("state.s", b) for b in s]
                  + [("state.x0", b) for b in x0])
        _fusion.commit(io, [_fusion.Bound(writes, (t1, t2), None)])
        for gi, grp in enumerate(lay.groups):
            r = grp.dtype.type
            hp = (r(lamb), r(eps), r(1 - momentum), r(momentum), r(1 / 3), r(weight_decay))
            lay.target.launch(kmad.madgrad_cpu, kmad.madgrad_cuda, io.g[gi], gsq[gi], s[gi],
                              x0[gi], io.p[gi], io.p[gi], hp, True)
        return io.params_out(params), (state[0], MadgradState(
            safe_increment(ms.count), gsq_tree, s_tree, ms.x0))
    return step


__all__ = ["MadgradState", "madgrad", "scale_by_madgrad"]
