"""AdEMAMix and simplified AdEMAMix, optax.contrib's ``scale_by_ademamix``,
``ademamix``, ``scale_by_simplified_ademamix`` and ``simplified_ademamix``.

See ``npopt.kernels.ademamix`` for the per-element rules. Host side, as
optax: ``1 - b`` computed in float64 (a schedule's value in its own dtype)
and rounded once to the leaf dtype; the bias corrections ``1 - b**t`` in
float64, cast to the leaf dtype and inverted there (``kernels.adam``).

Both states keep their step counter under optax's names (``count`` and
``count_m2``; ``t``), so the elementwise machinery (whose state has one
``count``) runs on an inner state and ``_renamed`` translates.
"""
from typing import Any, NamedTuple

import numpy as np

from .. import _checks, _flat
from ..base import ZERO, GradientTransformation, safe_increment
from ..kernels import ademamix as kade
from ..transforms import _fusion
from ..transforms._elementwise import elementwise_transform
from ..transforms.adam import bias_correction_inverse
from ..transforms.combine import chain
from ..transforms.scale import add_decayed_weights, scale_by_learning_rate, scheduled_value


class ScaleByAdemamixState(NamedTuple):
    count: Any      # int32, counts the steps of the fast EMA and the second moment
    count_m2: Any   # int32, counts the steps of the slow EMA (b3 and alpha schedules)
    m1: Any         # fast EMA of the gradients
    m2: Any         # slow EMA of the gradients
    nu: Any         # EMA of the squared gradients


class ScaleBySimplifiedAdEMAMixState(NamedTuple):
    t: Any          # int32 step counter
    m: Any          # (undamped) momentum
    n: Any          # EMA of the squared gradients


class _AdemamixMoments(NamedTuple):      # the elementwise machinery's view
    count: Any
    m1: Any
    m2: Any
    nu: Any


class _SimplifiedMoments(NamedTuple):
    count: Any
    m: Any
    n: Any


def _renamed(inner_of, outer_cls, name, to_inner, to_outer, init_fn):
    """An elementwise transform with ``outer_cls`` as its state:
    ``inner_of(state)`` -> the transform to run on ``to_inner(state)``;
    ``to_outer(inner_state, state)`` -> the new outer state (``state``: the
    one passed in). The fused step is the inner one (without a step plan)."""
    def check(state):
        _checks.check_state("state", state, outer_cls, name)

    def update_fn(updates, state, params=None, **extra_args):
        check(state)
        u, s = inner_of(state).update(updates, to_inner(state), params, **extra_args)
        return u, to_outer(s, state)

    def bind(lay, state):
        check(state)
        b = inner_of(state).fusion.bind(lay, to_inner(state))
        into = None if b.run_into is None else (lambda g, u: to_outer(b.run_into(g, u), state))
        return _fusion.Bound(b.writes, b.tokens,
                             lambda g, p, posts: to_outer(b.run(g, p, posts), state), into)

    def run(lay, g, p, state, posts):
        return bind(lay, state).run(g, p, posts)

    def run_into(lay, g, u, state):
        return bind(lay, state).run_into(g, u)

    return GradientTransformation(init_fn, update_fn,
                                  fusion=_fusion.Precond(run, run_into, bind))


def _decay(name, b, count):
    """A decay rate (a float or a schedule of ``count``) as the value optax
    uses: a Python float, or a NumPy scalar whose ``1 - b`` stays in its dtype."""
    if callable(b):
        v = scheduled_value(name, b, count, nonnegative=True)
        return v if type(v) is float else np.asarray(v)[()]
    return b


def _zeros(params, dtype):
    lay, _ = _flat.layout_of(params)
    return lay.views(lay.full(0, dtype))


def scale_by_ademamix(b1=0.9, b2=0.999, b3=0.9999, alpha=6.0, eps=1e-8, eps_root=0.0,
                      mu_dtype=None):
    r"""AdEMAMix's direction: Adam's with a second, slow momentum mixed in.

    .. math::
        m_1 \leftarrow \beta_1 m_1 + (1-\beta_1) g,\quad
        m_2 \leftarrow \beta_3 m_2 + (1-\beta_3) g,\quad
        \nu \leftarrow \beta_2 \nu + (1-\beta_2) g^2,\\
        u = \frac{m_1/(1-\beta_1^t) + \alpha m_2}
                 {\sqrt{\nu/(1-\beta_2^t) + \bar\epsilon} + \epsilon}

    The slow EMA :math:`m_2` is not bias-corrected (it fills slowly, on
    purpose). ``b3`` and ``alpha`` may be schedules of ``count_m2`` (the
    paper's warm-ups of :math:`\beta_3` and :math:`\alpha`).

    .. note:: With ``mu_dtype``, all three moments start in that dtype and, as in
       optax, are promoted with the updates' dtype after the first step.

    Args:
      b1: decay of the fast EMA.
      b2: decay of the second moment.
      b3: decay of the slow EMA (a float or a schedule).
      alpha: weight of the slow EMA (a float or a schedule).
      eps: added to the denominator outside the square root.
      eps_root: added inside the square root.
      mu_dtype: dtype of the moments at init (None: the params').

    References:
      Pagliardini et al., "The AdEMAMix Optimizer: Better, Faster, Older",
      2024 (arXiv:2409.03137), Algorithm 1.
    """
    b1 = _checks.check_number("b1", b1, low=0.0, high=1.0, high_open=True)
    b2 = _checks.check_number("b2", b2, low=0.0, high=1.0, high_open=True)
    if not callable(b3):
        b3 = _checks.check_number("b3", b3, low=0.0, high=1.0)
    if not callable(alpha):
        alpha = _checks.check_number("alpha", alpha)
    eps = _checks.check_number("eps", eps, low=0.0)
    eps_root = _checks.check_number("eps_root", eps_root, low=0.0)
    mu_dtype = _checks.check_float_dtype("mu_dtype", mu_dtype)

    def hyperparams_at(offset):
        """hyperparams(dtype, t) with the schedules at count_m2 = count + offset."""
        def hyperparams(dtype, t):
            r = dtype.type
            count = np.int32(t - 1 + offset)
            b3_ = _decay("b3", b3, count)
            a = scheduled_value("alpha", alpha, count, nonnegative=False) if callable(alpha) \
                else alpha
            return (r(1 - b1), r(b1), r(1 - b3_), r(b3_), r(1 - b2), r(b2),
                    bias_correction_inverse(b1, t, dtype), bias_correction_inverse(b2, t, dtype),
                    r(a), r(eps), r(eps_root))
        return hyperparams

    inners = {}       # count_m2 - count -> the elementwise transform (0: always, in practice)

    def inner_of(state):
        offset = int(state.count_m2) - int(state.count)
        tx = inners.get(offset)
        if tx is None:
            tx = inners.setdefault(offset, elementwise_transform(
                name="scale_by_ademamix", state_cls=_AdemamixMoments,
                moments={"m1": 0, "m2": 0, "nu": 0},
                kernels=(kade.ademamix_cpu, kade.ademamix_cuda),
                hyperparams=hyperparams_at(offset)))
        return tx

    def init_fn(params):
        return ScaleByAdemamixState(ZERO, ZERO, *(_zeros(params, mu_dtype) for _ in range(3)))

    def to_inner(state):
        return _AdemamixMoments(state.count, state.m1, state.m2, state.nu)

    def to_outer(s, state):
        return ScaleByAdemamixState(s.count, safe_increment(state.count_m2), s.m1, s.m2, s.nu)

    return _renamed(inner_of, ScaleByAdemamixState, "scale_by_ademamix", to_inner, to_outer,
                    init_fn)


def ademamix(learning_rate, b1=0.9, b2=0.999, b3=0.9999, alpha=5.0, eps=1e-8, eps_root=0.0,
             mu_dtype=None, weight_decay=0.0, mask=None):
    r"""AdEMAMix: AdamW with a mixture of a fast and a slow momentum.

    ``chain(scale_by_ademamix(b1, b2, b3, alpha, eps, eps_root, mu_dtype),
    add_decayed_weights(weight_decay, mask), scale_by_learning_rate(learning_rate))``:

    .. math::
        p_t = p_{t-1} - \eta_t \left(\frac{\hat m_1 + \alpha m_2}
              {\sqrt{\hat\nu + \bar\epsilon} + \epsilon} + \lambda p_{t-1}\right)

    (see ``scale_by_ademamix``).

    .. warning:: The alias's default ``alpha`` is 5.0, the transform's 6.0
       (as in optax). The weight decay is multiplied by the learning rate
       (PyTorch's convention).

    Args:
      learning_rate: a float, or a schedule (callable of the step count).
      b1, b2, b3, alpha, eps, eps_root, mu_dtype: see ``scale_by_ademamix``.
      weight_decay: :math:`\lambda`.
      mask: where to apply the decay (a prefix tree of bools, or a callable
        of the params).

    References:
      Pagliardini et al., "The AdEMAMix Optimizer: Better, Faster, Older",
      2024 (arXiv:2409.03137).
    """
    return chain(scale_by_ademamix(b1=b1, b2=b2, b3=b3, alpha=alpha, eps=eps, eps_root=eps_root,
                                   mu_dtype=mu_dtype),
                 add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(learning_rate))


def scale_by_simplified_ademamix(b1=0.99, b2=0.95, alpha=0.0, eps=1e-8, eps_root=0.0):
    r"""Simplified AdEMAMix's direction: one undamped momentum plus
    :math:`\alpha` times the gradient, over Adam's bias-corrected RMS.

    .. math::
        m \leftarrow \beta_1 m + g,\quad
        n \leftarrow \beta_2 n + (1-\beta_2) g^2,\quad
        u = \frac{m + \alpha g}{\sqrt{n/(1-\beta_2^t) + \bar\epsilon} + \epsilon}

    (``n`` as optax computes it: :math:`g^2 + \beta_2 (n - g^2)`.)
    ``alpha`` may be a schedule of the step count ``t``.

    Args:
      b1: decay of the momentum (which is a sum: no :math:`1-\beta_1`).
      b2: decay of the second moment.
      alpha: weight of the current gradient (a float or a schedule).
      eps: added to the denominator outside the square root.
      eps_root: added inside the square root.

    References:
      Morwani et al., "Connections between Schedule-Free Optimizers,
      AdEMAMix, and Accelerated SGD Variants", 2025 (arXiv:2502.02431).
    """
    b1 = _checks.check_number("b1", b1, low=0.0, high=1.0)
    b2 = _checks.check_number("b2", b2, low=0.0, high=1.0, high_open=True)
    if not callable(alpha):
        alpha = _checks.check_number("alpha", alpha)
    eps = _checks.check_number("eps", eps, low=0.0)
    eps_root = _checks.check_number("eps_root", eps_root, low=0.0)

    def hyperparams(dtype, t):
        r = dtype.type
        a = scheduled_value("alpha", alpha, np.int32(t - 1), nonnegative=False) \
            if callable(alpha) else alpha
        return (r(b1), r(b2), bias_correction_inverse(b2, t, dtype), r(a), r(eps), r(eps_root))

    inner = elementwise_transform(
        name="scale_by_simplified_ademamix", state_cls=_SimplifiedMoments,
        moments={"m": 0, "n": 0},
        kernels=(kade.simplified_ademamix_cpu, kade.simplified_ademamix_cuda),
        hyperparams=hyperparams)

    def init_fn(params):
        return ScaleBySimplifiedAdEMAMixState(ZERO, _zeros(params, None), _zeros(params, None))

    return _renamed(lambda state: inner, ScaleBySimplifiedAdEMAMixState,
                    "scale_by_simplified_ademamix",
                    lambda s: _SimplifiedMoments(s.t, s.m, s.n),
                    lambda s, state: ScaleBySimplifiedAdEMAMixState(s.count, s.m, s.n), init_fn)


def simplified_ademamix(learning_rate, b1=0.99, b2=0.95, alpha=0.0, eps=1e-8, eps_root=0.0,
                        weight_decay=0.0, mask=None):
    r"""Simplified AdEMAMix: ``chain(scale_by_simplified_ademamix(b1, b2,
    alpha, eps, eps_root), add_decayed_weights(weight_decay, mask),
    scale_by_learning_rate(learning_rate))``.

    .. math::
        p_t = p_{t-1} - \eta_t \left(\frac{m_t + \alpha g_t}
              {\sqrt{\hat n_t + \bar\epsilon} + \epsilon} + \lambda p_{t-1}\right)

    With :math:`\alpha = 0` this is Adam up to a rescaling of :math:`\eta`
    and :math:`\beta_1` (the momentum is a sum, not an average, and not
    bias-corrected).

    Args:
      learning_rate: a float, or a schedule (callable of the step count).
      b1, b2, alpha, eps, eps_root: see ``scale_by_simplified_ademamix``.
      weight_decay: :math:`\lambda`.
      mask: where to apply the decay.

    References:
      Morwani et al., "Connections between Schedule-Free Optimizers,
      AdEMAMix, and Accelerated SGD Variants", 2025 (arXiv:2502.02431).
    """
    return chain(scale_by_simplified_ademamix(b1=b1, b2=b2, alpha=alpha, eps=eps,
                                              eps_root=eps_root),
                 add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(learning_rate))


__all__ = ["ScaleByAdemamixState", "ScaleBySimplifiedAdEMAMixState", "ademamix",
           "scale_by_ademamix", "scale_by_simplified_ademamix", "simplified_ademamix"]
