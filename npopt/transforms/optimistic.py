"""scale_by_optimistic_gradient: optimistic (past-extragradient) steps.

See ``npopt.kernels.optimistic`` for the per-element rule. The state holds a
boolean scalar beside the previous-gradient buffer, which the elementwise
builder (``_elementwise.elementwise_transform``) has no slot for, so this
module writes its own init/update and fused ``Precond`` (same kernel
convention: ``kernel(g, prev, dst, hp, initial, post, fused)``).

``adam_optimistic_precond`` is the fused role of optax's optimistic Adam
chains (``scale_by_adam`` then ``scale_by_optimistic_gradient``): one kernel
pass over both rules, used by ``optimistic_adam(_v2)``'s ``step``.
"""
from typing import Any, NamedTuple

import numpy as np

from .. import _checks, _flat
from .._checks import real_dtype
from ..base import GradientTransformation, safe_increment
from ..kernels import optimistic as kopt
from . import _fusion
from .adam import ScaleByAdamState, adam_hyperparams


class ScaleByOptimisticGradientState(NamedTuple):
    """State of scale_by_optimistic_gradient."""
    is_initial_step: Any     # bool scalar: True until the first update
    previous_gradient: Any   # the last input updates, a tree like params


def is_initial(state):
    """The state's ``is_initial_step`` as a Python bool (checked)."""
    flag = np.asarray(state.is_initial_step)
    if flag.shape != () or flag.dtype.kind not in "bi":
        raise TypeError(f"state.is_initial_step: expected a boolean scalar, got "
                        f"{_checks._describe(state.is_initial_step)}")
    return bool(flag)


def hyperparams(alpha, beta, dtype):
    """The kernel's hp: (alpha + beta, beta), the sum in float64, rounded once."""
    dt = dtype.type
    return (dt(alpha + beta), dt(beta))


def scale_by_optimistic_gradient(alpha=1.0, beta=1.0):
    r"""Generalised optimistic gradient:

    .. math:: u_t = (\alpha + \beta)\, g_t - \beta\, g_{t-1}

    with :math:`g_0 := g_1` on the first step (optax issue #1082), so the
    first update is :math:`\alpha g_1`. With :math:`\alpha = \beta = 1` this
    is optimistic gradient descent, :math:`2 g_t - g_{t-1}`: a look-ahead
    that reuses the last gradient instead of an extra-gradient call.

    Args:
      alpha: coefficient of the current gradient (a number).
      beta: coefficient of the negative momentum (a number).

    References:
      Popov, "A modification of the Arrow-Hurwicz method for search of
      saddle points", 1980.
      Daskalakis et al., "Training GANs with Optimism", ICLR 2018.
      Mokhtari, Ozdaglar & Pattathil, "A Unified Analysis of Extra-gradient
      and Optimistic Gradient Methods for Saddle Point Problems: Proximal
      Point Approach", AISTATS 2020.
    """
    alpha = _checks.check_number("alpha", alpha, low=0.0)
    beta = _checks.check_number("beta", beta, low=0.0)
    name = "scale_by_optimistic_gradient"

    def init_fn(params):
        lay, _ = _flat.layout_of(params, complex_ok=True)     # linear: complex values as they are
        return ScaleByOptimisticGradientState(is_initial_step=np.bool_(True),
                                              previous_gradient=lay.views(lay.full(0)))

    def buffers(lay, state):
        _checks.check_state("state", state, ScaleByOptimisticGradientState, name)
        initial = is_initial(state)
        prev, copied = lay.gather_report(state.previous_gradient, "state.previous_gradient",
                                         ref="updates")
        return prev, copied, initial

    def launch(lay, g, prev, dst, initial, runs, fused):
        for gi, grp in enumerate(lay.groups):
            hp = hyperparams(alpha, beta, real_dtype(grp.dtype))
            for a, b, post in runs[gi]:
                lay.target.launch(kopt.optimistic_cpu, kopt.optimistic_cuda, g[gi][a:b],
                                  prev[gi][a:b], dst[gi][a:b], hp, initial, post, fused)

    def update_fn(updates, state, params=None, **extra_args):
        lay, _ = _flat.layout_of(updates, "updates", complex_ok=True)
        g = lay.gather(updates, "updates")
        prev, _, initial = buffers(lay, state)
        prev = lay.copy(prev)            # update never modifies its inputs
        out = lay.empty()
        runs = [[(0, grp.size, (real_dtype(grp.dtype).type(0),) * 2)] for grp in lay.groups]
        launch(lay, g, prev, out, initial, runs, False)
        return lay.views(out), ScaleByOptimisticGradientState(np.bool_(False), lay.views(prev))

    def bind(lay, state):
        """The state checked and bound for a fused step (see ``_fusion.Bound``)."""
        _checks.check_state("state", state, ScaleByOptimisticGradientState, name)
        initial = is_initial(state)
        prev, tree, token = lay.bind(state.previous_gradient, "state.previous_gradient")

        def run(g, p, posts):
            launch(lay, g, prev, p, initial, posts, True)
            return ScaleByOptimisticGradientState(np.bool_(False), tree)
        return _fusion.Bound([("state.previous_gradient", b) for b in prev], (token,), run)

    def run(lay, g, p, state, posts):
        return bind(lay, state).run(g, p, posts)

    return GradientTransformation(init_fn, update_fn, fusion=_fusion.Precond(run, None, bind))


def adam_optimistic_precond(b1, b2, eps, eps_root, nesterov, alpha, beta):
    """The fused role of ``chain(scale_by_adam(b1, b2, eps, eps_root,
    nesterov=nesterov), scale_by_optimistic_gradient(alpha, beta))``: one
    kernel pass (``kernels.optimistic.optimistic_adam_cpu``) whose state is
    the pair of the two states. For ``mu_dtype=None`` only.
    """
    adam_hp = adam_hyperparams(b1, b2, eps, eps_root)

    def bind(lay, pair):
        """The pair of states checked and bound for a fused step."""
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise TypeError(f"state: expected the (ScaleByAdamState, "
                            f"ScaleByOptimisticGradientState) pair, got {type(pair).__name__}")
        s_adam, s_opt = pair
        _checks.check_state("state", s_adam, ScaleByAdamState, "scale_by_adam")
        _checks.check_state("state", s_opt, ScaleByOptimisticGradientState,
                            "scale_by_optimistic_gradient")
        mu, mu_tree, t1 = lay.bind(s_adam.mu, "state.mu")
        nu, nu_tree, t2 = lay.bind(s_adam.nu, "state.nu")
        initial = is_initial(s_opt)
        prev, prev_tree, t3 = lay.bind(s_opt.previous_gradient, "state.previous_gradient")
        count = safe_increment(s_adam.count)

        def run(g, p, posts):
            for gi, grp in enumerate(lay.groups):
                hp_adam = adam_hp(grp.dtype, int(count))
                hp = hyperparams(alpha, beta, grp.dtype)
                for a, b, post in posts[gi]:
                    lay.target.launch(kopt.optimistic_adam_cpu, kopt.optimistic_adam_cuda,
                                      g[gi][a:b], mu[gi][a:b], nu[gi][a:b], prev[gi][a:b],
                                      p[gi][a:b], hp_adam, nesterov, hp, initial, post, True)
            return (ScaleByAdamState(count, mu_tree, nu_tree),
                    ScaleByOptimisticGradientState(np.bool_(False), prev_tree))
        writes = ([("state.mu", b) for b in mu] + [("state.nu", b) for b in nu]
                  + [("state.previous_gradient", b) for b in prev])
        return _fusion.Bound(writes, (t1, t2, t3), run)

    def run(lay, g, p, pair, posts):
        return bind(lay, pair).run(g, p, posts)

    return _fusion.Precond(run, None, bind)
