"""Adam's relatives as preconditioners: scale_by_amsgrad, scale_by_adamax,
scale_by_belief, scale_by_yogi, scale_by_radam, scale_by_adan.

See ``npopt.kernels.adam_variants`` for the per-element recursions. The host
part mirrors optax's casts, as ``scale_by_adam`` does: ``1 - b`` computed in
float64 then rounded to the leaf dtype; ``1 / (1 - b**t)`` from
``bias_correction_inverse``; RAdam's rectification factor computed in float64
(optax computes it from the int32 count under x64) and rounded once.

Each is an ``elementwise_transform``, so the aliases' chains
``[precond] [add_decayed_weights] learning rate`` fuse into one kernel pass
in ``step``. ``scale_by_adan`` keeps its counter in a field called ``t``, as
optax does; it wraps the builder's ``count``-based transform (see
``_rename_count``).
"""
import math
from typing import Any, NamedTuple

import numpy as np

from .. import _checks
from ..base import GradientTransformation
from ..kernels import adam_variants as k
from ._elementwise import elementwise_transform
from ._fusion import Precond
from .adam import ScaleByAdamState, bias_correction_inverse


class ScaleByAmsgradState(NamedTuple):
    count: Any    # int32 step counter
    mu: Any       # first moment (mu_dtype)
    nu: Any       # second moment
    nu_max: Any   # running max of the (bias-corrected) second moment


class ScaleByBeliefState(NamedTuple):
    count: Any    # int32 step counter
    mu: Any       # first moment
    nu: Any       # EMA of the squared prediction error (g - mu)**2, plus eps_root


class ScaleByAdanState(NamedTuple):
    m: Any        # EMA of gradients
    v: Any        # EMA of gradient differences
    n: Any        # EMA of the squared Nesterov-corrected gradient
    g: Any        # the previous gradient
    t: Any        # int32 step counter (optax calls it t, not count)


def _per_dtype(make):
    """``make(dtype)`` memoised per dtype: the hyperparameters that do not
    change with the step, cast once (as scale_by_adam caches them)."""
    cache = {}

    def get(dtype):
        c = cache.get(dtype)
        if c is None:
            c = cache[dtype] = make(dtype)
        return c
    return get


def _check_decay(name, b, allow_one=False):
    return _checks.check_number(name, b, low=0.0, high=1.0, high_open=not allow_one)


def _check_eps(**kw):
    """The values checked, in the order given (0-d arrays as NumPy scalars)."""
    return tuple(_checks.check_number(name, v, low=0.0) for name, v in kw.items())


def _adam_like_constants(b1, b2, eps, eps_root):
    """Per dtype: ((1-b1, b1, 1-b2, b2), (eps, eps_root)), the layout of
    scale_by_adam's hp around its three bias corrections."""
    return _per_dtype(lambda dtype: (
        tuple(dtype.type(x) for x in (1 - b1, b1, 1 - b2, b2)),
        (dtype.type(eps), dtype.type(eps_root))))


def _adam_bias_corrections(b1, b2, t, dtype):
    """(1/(1-b1**t), 1/(1-b1**(t+1)), 1/(1-b2**t)): plain and Nesterov m^, and v^."""
    return (bias_correction_inverse(b1, t, dtype), bias_correction_inverse(b1, t + 1, dtype),
            bias_correction_inverse(b2, t, dtype))


def scale_by_amsgrad(b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None,
                     bias_correction_mu=True, bias_correction_nu=True):
    r"""AMSGrad: Adam whose denominator never decreases.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,\\
        \hat v^{max}_t = \max(\hat v^{max}_{t-1}, \hat v_t),\quad
        u_t = \hat m_t / (\sqrt{\hat v^{max}_t + \epsilon_{root}} + \epsilon)

    with :math:`\hat m_t = m_t/(1-\beta_1^t)` and
    :math:`\hat v_t = v_t/(1-\beta_2^t)` (each correction can be switched off;
    Reddi et al.'s original has neither).

    .. warning:: As in optax, the maximum is taken over the *bias-corrected*
       second moment by default (``bias_correction_nu=True``); the stored
       ``nu_max`` is that corrected value.

    Args:
      b1, b2: decay rates of the first and second moments.
      eps, eps_root: added outside / inside the square root.
      mu_dtype: dtype of the stored first moment (None: the params').
      bias_correction_mu, bias_correction_nu: whether to bias-correct the
        moments (``False`` for both matches the paper).

    References:
      Reddi, Kale & Kumar, "On the Convergence of Adam and Beyond", ICLR 2018.
    """
    bias_correction_mu = _checks.check_bool("bias_correction_mu", bias_correction_mu)
    bias_correction_nu = _checks.check_bool("bias_correction_nu", bias_correction_nu)
    b1 = _check_decay("b1", b1, allow_one=not bias_correction_mu)
    b2 = _check_decay("b2", b2, allow_one=not bias_correction_nu)
    eps, eps_root = _check_eps(eps=eps, eps_root=eps_root)
    mu_dtype = _checks.check_float_dtype("mu_dtype", mu_dtype, narrow_ok=True)

    # optax: (1-b1)*g in g's dtype, b1*mu in mu's, the bias correction of mu
    # in the dtype the two promote to (all the same without mu_dtype).
    def mu_dtypes(dtype):
        return mu_dtype or dtype, np.result_type(dtype, mu_dtype or dtype)

    consts = _per_dtype(lambda dtype: (
        (dtype.type(1 - b1), mu_dtypes(dtype)[0].type(b1), dtype.type(1 - b2), dtype.type(b2)),
        (dtype.type(eps), dtype.type(eps_root))))

    def hyperparams(dtype, t):
        front, back = consts(dtype)
        pdt = mu_dtypes(dtype)[1]
        inv1 = bias_correction_inverse(b1, t, pdt) if bias_correction_mu else pdt.type(1)
        inv2 = bias_correction_inverse(b2, t, dtype) if bias_correction_nu else dtype.type(1)
        return front + (inv1, inv2) + back

    return elementwise_transform(
        name="scale_by_amsgrad", complex_ok=True, state_cls=ScaleByAmsgradState,
        moments={"mu": 0, "nu": 0, "nu_max": 0},
        kernels=(k.amsgrad_cpu, k.amsgrad_cuda), hyperparams=hyperparams,
        moment_dtypes={"mu": mu_dtype} if mu_dtype else None)


def scale_by_adamax(b1=0.9, b2=0.999, eps=1e-8):
    r"""AdaMax: Adam with the infinity norm in place of the second moment.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
        v_t = \max(|g_t| + \epsilon,\ \beta_2 v_{t-1}),\quad
        u_t = \frac{m_t}{(1-\beta_1^t)\, v_t}

    .. warning:: optax adds ``eps`` to :math:`|g_t|` *inside* the max (the
       paper has no eps), so the stored ``nu`` carries it, and ``nu`` is not
       bias-corrected. The state is a ``ScaleByAdamState``.

    Args:
      b1: decay rate of the first moment, in [0, 1).
      b2: decay of the running maximum, in [0, 1] (1: a plain running max).
      eps: added to ``|g|`` before the max.

    References:
      Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, §7.1.
    """
    b1 = _check_decay("b1", b1)
    b2 = _check_decay("b2", b2, allow_one=True)
    (eps,) = _check_eps(eps=eps)

    consts = _per_dtype(lambda dtype: (
        (dtype.type(1 - b1), dtype.type(b1), dtype.type(b2)), (dtype.type(eps),)))

    def hyperparams(dtype, t):
        front, back = consts(dtype)
        return front + (bias_correction_inverse(b1, t, dtype),) + back

    return elementwise_transform(
        name="scale_by_adamax", state_cls=ScaleByAdamState, moments={"mu": 0, "nu": 0},
        complex_ok=True,
        kernels=(k.adamax_cpu, k.adamax_cuda), hyperparams=hyperparams)


def scale_by_belief(b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16, *, nesterov=False):
    r"""AdaBelief: Adam whose second moment tracks the prediction error
    :math:`g_t - m_t` ("belief" in the gradient) instead of :math:`g_t`.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
        s_t = \beta_2 s_{t-1} + (1-\beta_2)(g_t - m_t)^2 + \epsilon_{root},\\
        u_t = \hat m_t / (\sqrt{s_t/(1-\beta_2^t)} + \epsilon)

    with :math:`\hat m_t = m_t/(1-\beta_1^t)`, or with ``nesterov``
    :math:`\beta_1 m_t/(1-\beta_1^{t+1}) + (1-\beta_1) g_t/(1-\beta_1^t)`.

    .. warning:: optax adds ``eps_root`` to the *stored* ``nu`` at every step
       (so it accumulates, about ``eps_root / (1 - b2)`` in the long run), and
       its defaults are ``eps = eps_root = 1e-16`` (the paper's: 1e-8 and 0).

    Args:
      b1, b2: decay rates, in [0, 1).
      eps: added outside the square root.
      eps_root: added to the second moment each step.
      nesterov: Nesterov momentum, as in ``scale_by_adam``.

    References:
      Zhuang et al., "AdaBelief Optimizer: Adapting Stepsizes by the Belief in
      Observed Gradients", NeurIPS 2020.
    """
    b1 = _check_decay("b1", b1)
    b2 = _check_decay("b2", b2)
    eps, eps_root = _check_eps(eps=eps, eps_root=eps_root)
    nesterov = _checks.check_bool("nesterov", nesterov)
    consts = _adam_like_constants(b1, b2, eps, eps_root)

    def hyperparams(dtype, t):
        front, back = consts(dtype)
        return front + _adam_bias_corrections(b1, b2, t, dtype) + back

    return elementwise_transform(
        name="scale_by_belief", state_cls=ScaleByBeliefState, moments={"mu": 0, "nu": 0},
        complex_ok=True,
        kernels=(k.belief_cpu, k.belief_cuda), hyperparams=hyperparams, flags=(nesterov,))


def scale_by_yogi(b1=0.9, b2=0.999, eps=1e-3, eps_root=0.0, initial_accumulator_value=1e-6):
    r"""Yogi: Adam with an additive, sign-controlled second-moment update.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
        v_t = v_{t-1} - (1-\beta_2)\,\mathrm{sign}(v_{t-1} - g_t^2)\, g_t^2,\\
        u_t = \hat m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon)

    with Adam's bias corrections :math:`\hat m_t, \hat v_t` (as optax, though
    the paper has none).

    .. warning:: Both moments start at ``initial_accumulator_value`` (1e-6),
       not 0, and ``eps`` defaults to 1e-3 (the paper's choice), not Adam's 1e-8.

    Args:
      b1, b2: decay rates, in [0, 1).
      eps, eps_root: added outside / inside the square root.
      initial_accumulator_value: initial value of ``mu`` and ``nu`` (>= 0).

    References:
      Zaheer et al., "Adaptive Methods for Nonconvex Optimization", NeurIPS 2018.
    """
    b1 = _check_decay("b1", b1)
    b2 = _check_decay("b2", b2)
    eps, eps_root, initial_accumulator_value = _check_eps(
        eps=eps, eps_root=eps_root, initial_accumulator_value=initial_accumulator_value)

    consts = _per_dtype(lambda dtype: (
        (dtype.type(1 - b1), dtype.type(b1), dtype.type(1 - b2)),
        (dtype.type(eps), dtype.type(eps_root), dtype.type(1), dtype.type(0))))

    def hyperparams(dtype, t):
        front, back = consts(dtype)
        return (front + (bias_correction_inverse(b1, t, dtype),
                         bias_correction_inverse(b2, t, dtype)) + back)

    return elementwise_transform(
        name="scale_by_yogi", complex_ok=True, state_cls=ScaleByAdamState,
        moments={"mu": initial_accumulator_value, "nu": initial_accumulator_value},
        kernels=(k.yogi_cpu, k.yogi_cuda), hyperparams=hyperparams)


def radam_rectification(b2, threshold, t):
    r"""RAdam's per-step decision and factor, computed on the host as optax does.

    :math:`\rho_\infty = 2/(1-\beta_2) - 1`,
    :math:`\rho_t = \rho_\infty - 2t\beta_2^t/(1-\beta_2^t)`; rectify when
    :math:`\rho_t \ge` threshold, with
    :math:`r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\rho_t}}`.

    Returns (rectify, r); r is NaN where the square root's argument is
    negative (as in optax, which then produces NaN updates; only possible with
    threshold < 4). ``2 t`` wraps as optax's int32 product does.
    """
    ro_inf = 2.0 / (1.0 - b2) - 1.0
    # a NumPy b2 (inject_hyperparams) keeps its dtype, as in bias_correction_inverse
    b2t = b2 ** type(b2)(t) if hasattr(b2, "dtype") else b2 ** t
    two_t = (2 * t + 2 ** 31) % 2 ** 32 - 2 ** 31
    ro = ro_inf - two_t * b2t / (1 - b2t)
    if not ro >= threshold:
        return False, 0.0
    x = (ro - 4.0) * (ro - 2.0) * ro_inf / ((ro_inf - 4.0) * (ro_inf - 2.0) * ro)
    return True, math.sqrt(x) if x >= 0 else math.nan


def scale_by_radam(b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, threshold=5.0, *,
                   nesterov=False):
    r"""Rectified Adam: Adam's step scaled by a variance rectification term,
    or plain (bias-corrected) momentum while the variance is intractable.

    .. math::
        u_t = \begin{cases}
          r_t\, \hat m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon)
            & \rho_t \ge \text{threshold} \\
          \hat m_t & \text{otherwise}
        \end{cases}

    with Adam's moments and corrections, :math:`\rho_t` and :math:`r_t` as in
    ``radam_rectification``. The test on :math:`\rho_t` depends only on the
    step count, so it is taken on the host once per step (optax computes both
    branches and selects with ``jnp.where``; same numbers).

    .. note:: With the default ``b2=0.999``, :math:`\rho_t < 5` for the first
       5 steps: they are momentum steps of size about lr per element,
       whatever the gradient's scale.

    Args:
      b1, b2: decay rates, in [0, 1).
      eps, eps_root: added outside / inside the square root.
      threshold: the :math:`\rho_t` from which the adaptive step is used.
      nesterov: Nesterov momentum, as in ``scale_by_adam``.

    References:
      Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond",
      ICLR 2020.
    """
    b1 = _check_decay("b1", b1)
    b2 = _check_decay("b2", b2)
    eps, eps_root = _check_eps(eps=eps, eps_root=eps_root)
    threshold = _checks.check_number("threshold", threshold)
    nesterov = _checks.check_bool("nesterov", nesterov)

    consts = _adam_like_constants(b1, b2, eps, eps_root)

    def hyperparams(dtype, t):
        front, back = consts(dtype)
        rectify, r = radam_rectification(b2, threshold, t)
        dt = dtype.type
        return (front + _adam_bias_corrections(b1, b2, t, dtype) + back
                + (dt(r), dt(rectify), dt(0)))

    return elementwise_transform(
        name="scale_by_radam", state_cls=ScaleByAdamState, moments={"mu": 0, "nu": 0},
        complex_ok=True,
        kernels=(k.radam_cpu, k.radam_cuda), hyperparams=hyperparams, flags=(nesterov,))


class _AdanCounted(NamedTuple):
    # the builder's view of ScaleByAdanState (counter first, named count)
    count: Any
    m: Any
    v: Any
    n: Any
    g: Any


def _rename_count(inner, name, outer_cls, to_outer, to_inner):
    """``inner`` (a builder transform) with its state presented as ``outer_cls``.

    The builder names its counter ``count``; optax's Adan state calls it ``t``
    and puts it last. The fused path is kept: the Precond role is wrapped too.
    """
    def checked(state):
        return to_inner(_checks.check_state("state", state, outer_cls, name))

    def init_fn(params):
        return to_outer(inner.init(params))

    def update_fn(updates, state, params=None, **extra_args):
        u, s = inner.update(updates, checked(state), params, **extra_args)
        return u, to_outer(s)

    def run(lay, g, p, state, posts):
        return to_outer(inner.fusion.run(lay, g, p, checked(state), posts))

    def bind(lay, state):
        b = inner.fusion.bind(lay, checked(state))
        return b._replace(run=lambda g, p, posts: to_outer(b.run(g, p, posts)),
                          run_into=None,
                          steady=lambda g, p, bufs, posts, st, trees: to_outer(
                              b.steady(g, p, bufs, posts, to_inner(st), trees)),
                          steady_one=b.steady_one and (lambda g, p, ms, post, st, trees: to_outer(
                              b.steady_one(g, p, ms, post, to_inner(st), trees))),
                          steady_into=None)

    return GradientTransformation(init_fn, update_fn, fusion=Precond(run, None, bind))


def scale_by_adan(b1=0.98, b2=0.92, b3=0.99, eps=1e-8, eps_root=0.0):
    r"""Adan: adaptive Nesterov momentum estimated from gradient differences.

    With :math:`d_t = g_t - g_{t-1}` (:math:`d_1 = 0`):

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) d_t,\\
        n_t = \beta_3 n_{t-1} + (1-\beta_3)\,(g_t + (1-\beta_2) d_t)^2,\\
        u_t = (\hat m_t + (1-\beta_2)\hat v_t) / (\sqrt{\hat n_t + \epsilon_{root}} + \epsilon)

    with every moment bias-corrected (:math:`\hat x_t = x_t/(1-\beta^t)`).

    .. warning:: optax's betas are the paper's :math:`1-\beta` (paper
       :math:`\beta_1 = 0.02` is optax ``b1=0.98``). The state's counter is
       the field ``t`` (last), not ``count``. ``eps_root`` defaults to 0 here
       but to 1e-8 in the ``adan`` alias. Weight decay (``adan`` alias) is
       optax's decoupled ``add_decayed_weights`` before the learning rate, not
       the paper's proximal ``/(1 + lr*wd)``.

    Args:
      b1, b2, b3: decay rates of m, v and n, in [0, 1).
      eps, eps_root: added outside / inside the square root.

    References:
      Xie et al., "Adan: Adaptive Nesterov Momentum Algorithm for Faster
      Optimizing Deep Models", 2022 (arXiv:2208.06677, Algorithm 1).
    """
    b1, b2, b3 = (_check_decay(name, b) for name, b in (("b1", b1), ("b2", b2), ("b3", b3)))
    eps, eps_root = _check_eps(eps=eps, eps_root=eps_root)

    consts = _per_dtype(lambda dtype: tuple(dtype.type(x) for x in (
        1 - b1, b1, 1 - b2, b2, 1 - b3, b3, 1 - b2)))

    def hyperparams(dtype, t):
        dt = dtype.type
        return (consts(dtype) + tuple(bias_correction_inverse(b, t, dtype) for b in (b1, b2, b3))
                + (dt(eps), dt(eps_root), dt(t == 1), dt(0)))

    inner = elementwise_transform(
        name="scale_by_adan", state_cls=_AdanCounted,
        moments={"m": 0, "v": 0, "n": 0, "g": 0},
        kernels=(k.adan_cpu, k.adan_cuda), hyperparams=hyperparams)
    return _rename_count(
        inner, "scale_by_adan", ScaleByAdanState,
        to_outer=lambda s: ScaleByAdanState(m=s.m, v=s.v, n=s.n, g=s.g, t=s.count),
        to_inner=lambda s: _AdanCounted(count=s.t, m=s.m, v=s.v, n=s.n, g=s.g))
