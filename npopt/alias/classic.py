"""Optimistic gradient descent, optimistic Adam, rprop and adadelta, as the
chains optax 0.2.8 builds.

Every alias is the chain optax 0.2.8 builds (same state structure, same
``update``). Two of them do not have ``chain``'s fusable shape
``[preconditioner] [add_decayed_weights] learning rate``, so their fused
``step`` is assembled here from the same kernels (see ``_reordered_step``):

* ``adadelta`` decays the weights *before* its preconditioner; its kernel
  takes that decay first (``kernels.adadelta``, ``decay_first``), and
  ``learning_rate=None`` fuses as a rate of +1 (no sign flip, as optax).
* ``optimistic_adam`` / ``optimistic_adam_v2`` chain two preconditioners,
  fused into one kernel (``kernels.optimistic.optimistic_adam_cpu``).
"""
import types
import warnings

from .. import _checks
from ..base import GradientTransformationExtraArgs
from ..transforms import _fusion
from ..transforms.adadelta import ScaleByAdaDeltaState, _adadelta, scale_by_adadelta
from ..transforms.adam import scale_by_adam
from ..transforms.combine import chain
from ..transforms.optimistic import (ScaleByOptimisticGradientState, adam_optimistic_precond,
                                    scale_by_optimistic_gradient)
from ..transforms.rprop import ScaleByRpropState, scale_by_rprop
from ..transforms.scale import add_decayed_weights, scale, scale_by_learning_rate

__all__ = ["adadelta", "optimistic_adam", "optimistic_adam_v2", "optimistic_gradient_descent", "rprop"]


def _reordered_step(n, txs, picks):
    """A fused step for an n-element chain, made by ``_fusion.fuse(txs)``.

    ``txs[k]`` stands for chain element ``picks[k]`` (an index), or for the
    elements in ``picks[k]`` (a tuple of indices: its state is the tuple of
    their states). Elements picked by no ``txs[k]`` keep their state.
    Returns None when ``txs`` has no fused form.
    """
    fused = _fusion.fuse(txs)
    if fused is None:
        return None

    def step(params, grads, state, **extra_args):
        if not isinstance(state, tuple) or len(state) != n:
            raise TypeError(
                f"state: expected the {n}-tuple made by this chain's init, "
                f"got {type(state).__name__}")
        inner = tuple(tuple(state[j] for j in k) if isinstance(k, tuple) else state[k]
                      for k in picks)
        params, new = fused(params, grads, inner, **extra_args)
        out = list(state)
        for k, s in zip(picks, new):
            for j, sj in (zip(k, s) if isinstance(k, tuple) else [(k, s)]):
                out[j] = sj
        return params, tuple(out)
    return step


def _role(precond):
    # something _fusion.fuse reads the role of (it only looks at `.fusion`)
    return types.SimpleNamespace(fusion=precond)


# ---------------------------------------------------------------------------
# optimistic gradient
# ---------------------------------------------------------------------------

def optimistic_gradient_descent(learning_rate, alpha=1.0, beta=1.0):
    r"""Optimistic gradient descent (OGD).

    ``chain(scale_by_optimistic_gradient(alpha, beta),
    scale_by_learning_rate(learning_rate))``:

    .. math:: u_t = (\alpha + \beta) g_t - \beta g_{t-1}, \quad
              w_{t+1} = w_t - \eta_t u_t

    with :math:`g_0 := g_1` (the first step is :math:`-\eta \alpha g_1`).
    A one-call approximation of the extra-gradient method, with last-iterate
    convergence in min-max games where gradient descent-ascent cycles.

    Args:
      learning_rate: a float, or a schedule (callable of the step count).
      alpha: coefficient of the current gradient (a number). optax types it
        as a scalar or schedule, but a schedule fails there at the first
        update; npopt refuses it when the optimizer is built.
      beta: coefficient of the negative momentum (a number; as alpha).

    Examples:
      >>> import numpy as np, npopt
      >>> opt = npopt.optimistic_gradient_descent(0.1)
      >>> params = {'w': np.ones(2)}
      >>> state = opt.init(params)
      >>> params, state = opt.step(params, {'w': np.ones(2)}, state)
      >>> params['w']
      array([0.9, 0.9])

    References:
      Popov, 1980; Mokhtari, Ozdaglar & Pattathil, "A Unified Analysis of
      Extra-gradient and Optimistic Gradient Methods for Saddle Point
      Problems: Proximal Point Approach", AISTATS 2020.
    """
    return chain(scale_by_optimistic_gradient(alpha=alpha, beta=beta),
                 scale_by_learning_rate(learning_rate))


def _optimistic_adam_chain(b1, b2, eps, eps_root, mu_dtype, nesterov, alpha, beta, rate):
    b1, b2 = (_checks.check_number(n, b, low=0.0, high=1.0) for n, b in (("b1", b1), ("b2", b2)))
    eps, eps_root = (_checks.check_number(n, e, low=0.0) for n, e in (("eps", eps),
                                                                      ("eps_root", eps_root)))
    txs = (scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                         nesterov=nesterov),
           scale_by_optimistic_gradient(alpha=alpha, beta=beta), rate)
    opt = chain(*txs)
    if mu_dtype is None:   # one kernel pass: adam's rule, then the optimistic step
        pair = _role(adam_optimistic_precond(b1, b2, eps, eps_root, nesterov, alpha, beta))
        return GradientTransformationExtraArgs(opt.init, opt.update,
                                      fused_step=_reordered_step(3, [pair, rate], [(0, 1), 2]))
    return opt


def optimistic_adam(learning_rate, optimism=None, b1=0.9, b2=0.999, eps=1e-08, eps_root=0.0,
                    mu_dtype=None, *, nesterov=True):
    r"""Optimistic Adam (deprecated in optax: use ``optimistic_adam_v2``).

    ``chain(scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
    scale_by_optimistic_gradient(alpha=learning_rate, beta=optimism),
    scale_by_learning_rate(1.0))``, with ``optimism = learning_rate`` when
    None. With :math:`r_t` Adam's direction (Nesterov by default):

    .. math:: w_{t+1} = w_t - \eta r_t - o (r_t - r_{t-1})

    (:math:`r_0 := r_1`).

    .. warning:: As in optax, this emits a ``DeprecationWarning`` and raises
       ``ValueError`` for a schedule ``learning_rate`` (the rate enters
       ``scale_by_optimistic_gradient`` as a number); ``optimistic_adam_v2``
       takes schedules.

    Args:
      learning_rate: the step size (a number).
      optimism: the optimism :math:`o` (None: ``learning_rate``, as in the paper).
      b1, b2, eps, eps_root, mu_dtype, nesterov: see ``scale_by_adam``.

    References:
      Daskalakis, Ilyas, Syrgkanis & Zeng, "Training GANs with Optimism",
      ICLR 2018.
    """
    warnings.warn('`optimistic_adam` is deprecated, please use `optimistic_adam_v2` instead.',
                  category=DeprecationWarning, stacklevel=2)
    if callable(learning_rate):
        raise ValueError('learning_rate: this version of `optimistic_adam` does not support '
                         'learning rate schedules but `optimistic_adam_v2` does.')
    # validated under the names the caller used (they become alpha and beta)
    learning_rate = _checks.check_number("learning_rate", learning_rate, low=0.0)
    optimism = _checks.check_number("optimism", optimism, low=0.0, allow_none=True)
    if optimism is None:
        optimism = learning_rate
    return _optimistic_adam_chain(b1, b2, eps, eps_root, mu_dtype, nesterov, learning_rate,
                                  optimism, scale_by_learning_rate(1.0))


def optimistic_adam_v2(learning_rate, *, alpha=1.0, beta=1.0, b1=0.9, b2=0.999, eps=1e-08,
                       eps_root=0.0, mu_dtype=None, nesterov=True):
    r"""Optimistic Adam: Adam's direction fed to the optimistic gradient.

    ``chain(scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
    scale_by_optimistic_gradient(alpha, beta),
    scale_by_learning_rate(learning_rate))``. With :math:`r_t` Adam's
    direction (Nesterov by default, see ``scale_by_adam``):

    .. math:: w_{t+1} = w_t - \eta_t \left((\alpha + \beta) r_t - \beta r_{t-1}\right)

    (:math:`r_0 := r_1`).

    Args:
      learning_rate: a float, or a schedule (callable of the step count).
      alpha, beta: see ``scale_by_optimistic_gradient``.
      b1, b2, eps, eps_root, mu_dtype, nesterov: see ``scale_by_adam``.

    References:
      Daskalakis, Ilyas, Syrgkanis & Zeng, "Training GANs with Optimism",
      ICLR 2018.
    """
    return _optimistic_adam_chain(b1, b2, eps, eps_root, mu_dtype, nesterov, alpha, beta,
                                  scale_by_learning_rate(learning_rate))


# ---------------------------------------------------------------------------
# rprop
# ---------------------------------------------------------------------------

def rprop(learning_rate, eta_minus=0.5, eta_plus=1.2, min_step_size=1e-6, max_step_size=50.0):
    r"""Rprop: ``chain(scale_by_rprop(...), scale(-1.0))``.

    Each element keeps its own step size :math:`\Delta`, grown by
    ``eta_plus`` while the gradient keeps its sign and shrunk by
    ``eta_minus`` (with the step skipped) when it flips; only the sign of
    the gradient is used: :math:`w \leftarrow w - \Delta\,\mathrm{sign}(g)`.

    .. warning:: optax 0.2.8's quirk, reproduced: the step applied at
       iteration :math:`t` is the one computed at :math:`t-1`, so the first
       update is 0, every update lags one step, and a sign change skips two
       steps (see ``scale_by_rprop``; optax PR #1725).

    Args:
      learning_rate: the initial step size of every element (a number, not
        a schedule).
      eta_minus, eta_plus, min_step_size, max_step_size: see ``scale_by_rprop``.

    Examples:
      >>> import numpy as np, npopt
      >>> opt = npopt.rprop(0.1)
      >>> params, g = np.zeros(1), np.ones(1)
      >>> state = opt.init(params)
      >>> for _ in range(3):
      ...     params, state = opt.step(params, g, state)
      ...     print(params)
      [0.]
      [-0.1]
      [-0.22]

    References:
      Riedmiller & Braun, IEEE ICNN 1993; Igel & Hüsken, Neurocomputing 2003.
    """
    return chain(scale_by_rprop(learning_rate=learning_rate, eta_minus=eta_minus,
                                eta_plus=eta_plus, min_step_size=min_step_size,
                                max_step_size=max_step_size),
                 scale(-1.0))


# ---------------------------------------------------------------------------
# adadelta
# ---------------------------------------------------------------------------

def adadelta(learning_rate=None, rho=0.9, eps=1e-6, weight_decay=0.0, weight_decay_mask=None):
    r"""Adadelta: ``chain(add_decayed_weights(weight_decay, weight_decay_mask),
    scale_by_adadelta(rho, eps), scale_by_learning_rate(learning_rate))``.

    .. math::
        \tilde g_t = g_t + \lambda w_t, \quad
        E[g^2]_t = \rho E[g^2]_{t-1} + (1-\rho) \tilde g_t^2, \\
        \Delta_t = \frac{\sqrt{E[\Delta^2]_{t-1} + \epsilon}}
                        {\sqrt{E[g^2]_t + \epsilon}} \tilde g_t,
        \quad E[\Delta^2]_t = \rho E[\Delta^2]_{t-1} + (1-\rho) \Delta_t^2, \quad
        w_{t+1} = w_t - \eta_t \Delta_t

    The weight decay is L2-coupled: added to the gradient *before* the
    preconditioner (unlike adamw's).

    .. warning:: optax 0.2.8's default ``learning_rate=None`` chains
       ``identity()``, which does **not** flip the sign: the update is
       :math:`+\Delta_t` and points **uphill** (``adadelta()`` gives about
       ``+0.00316`` for ``g = 1``; optax issue #1242). Reproduced here; pass
       a learning rate (``adadelta(1.0)`` is Zeiler's method) to descend.

    Args:
      learning_rate: a float, a schedule, or None (no scaling, no sign flip).
      rho: decay rate of both running averages.
      eps: added under both square roots.
      weight_decay: L2 coefficient (a number or a schedule).
      weight_decay_mask: a tree of bools (or a callable of the params) marking
        the leaves to decay.

    Examples:
      >>> import numpy as np, npopt
      >>> opt = npopt.adadelta(1.0)
      >>> params = np.array([1.0, -2.0])
      >>> state = opt.init(params)
      >>> params, state = opt.step(params, 2 * params, state)
      >>> np.round(params, 5)
      array([ 0.99684, -1.99684])

    References:
      Zeiler, "ADADELTA: An Adaptive Learning Rate Method", arXiv:1212.5701, 2012.
    """
    weight_decay = _checks.check_scalar_or_schedule("weight_decay", weight_decay)
    decay = add_decayed_weights(weight_decay, mask=weight_decay_mask)
    rate = scale_by_learning_rate(learning_rate)
    opt = chain(decay, scale_by_adadelta(rho=rho, eps=eps), rate)
    # fused: the preconditioner takes the decay first; None -> a rate of +1
    fused_rate = scale(1.0) if learning_rate is None else rate
    step = _reordered_step(3, [_adadelta(rho, eps, decay_first=True), decay, fused_rate],
                           [1, 0, 2])
    return GradientTransformationExtraArgs(opt.init, opt.update, fused_step=step or opt.fused_step)

