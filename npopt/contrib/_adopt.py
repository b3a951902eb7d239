"""ADOPT, optax.contrib's ``scale_by_adopt`` and ``adopt``.

See ``npopt.kernels.adopt`` for the per-element rule. Host side, as optax:
``1 - b`` computed in float64 and rounded once to the leaf dtype; at the
first step (count 0) ``b1 = 1`` and ``b2 = 0`` (so the first update is 0:
``nu`` is still 0 and the clip value ``0 ** 0.25`` is 0); the clip value
``clip_value_fn(count)`` is rounded to the leaf dtype.
"""
import numpy as np

from .. import _checks, _math
from ..kernels import adopt as kadopt
from ..transforms._elementwise import elementwise_transform
from ..transforms.adam import ScaleByAdamState
from ..transforms.combine import chain
from ..transforms.scale import scale_by_learning_rate


# optax's default, a lambda (its repr is optax's: ``<function <lambda>>``)
_quarter_root = lambda x: x**0.25  # noqa: E731


def _clip_value(fn, count):
    """``fn(count)`` as a float; optax's default ``x ** 0.25`` through
    ``npopt._math.power`` (the C library's pow: the same bits on every CPU)."""
    if fn is _quarter_root:
        return float(_math.power(np.float64(count), 0.25))
    v = np.asarray(fn(np.int32(count)))
    if v.shape != () or v.dtype.kind not in "fiu" or not np.isfinite(v):
        raise ValueError(f"clip_value_fn: returned {_checks._describe(v)} at step count "
                         f"{count}; expected a finite number (nothing was updated)")
    return v[()]


def scale_by_adopt(b1=0.9, b2=0.9999, eps=1e-6, mu_dtype=None, *, nesterov=False,
                   use_clipping=True, clip_value_fn=_quarter_root):
    r"""ADOPT's update direction: Adam's, normalised by the *previous* second moment.

    .. math::
        x_t = \mathrm{clip}\Big(\frac{g_t}{\max(\sqrt{v_{t-1}}, \epsilon)},
              \pm c(t-1)\Big),\quad
        m_t = \beta_1 m_{t-1} + (1-\beta_1) x_t,\quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,\quad u_t = m_t

    with :math:`c(k)` = ``clip_value_fn(k)`` (default :math:`k^{1/4}`) and, at
    the first step, :math:`\beta_1 = 1, \beta_2 = 0` (:math:`v_0 = g_0^2`,
    :math:`m_0 = 0`: the first update is zero). ``nesterov`` returns
    :math:`\beta_1 m_t + (1-\beta_1) x_t`.

    .. note:: As optax: no bias correction, and ``eps`` bounds
       :math:`\sqrt{v}` from below (the paper adds it to :math:`\sqrt{v}`).
       optax's default clip :math:`k^{1/4}` is the paper's (Algorithm 2,
       "ADOPT with clipping").

    Args:
      b1: decay of the first moment.
      b2: decay of the second moment.
      eps: lower bound of :math:`\sqrt{v}`.
      mu_dtype: dtype of the first moment (None: the params').
      nesterov: Nesterov momentum.
      use_clipping: clip :math:`x_t` to :math:`\pm c(t-1)`.
      clip_value_fn: :math:`c`, a callable of the int32 step count.

    References:
      Taniguchi et al., "ADOPT: Modified Adam Can Converge with Any
      :math:`\beta_2` with the Optimal Rate", NeurIPS 2024 (arXiv:2411.02853).
    """
    b1 = _checks.check_number("b1", b1, low=0.0, high=1.0)
    b2 = _checks.check_number("b2", b2, low=0.0, high=1.0)
    eps = _checks.check_number("eps", eps, low=0.0)
    mu_dtype = _checks.check_float_dtype("mu_dtype", mu_dtype)
    nesterov = _checks.check_bool("nesterov", nesterov)
    use_clipping = _checks.check_bool("use_clipping", use_clipping)
    _checks.check_callable("clip_value_fn", clip_value_fn)

    def hyperparams(dtype, t):
        res = np.promote_types(dtype, mu_dtype) if mu_dtype is not None else dtype
        r, m = res.type, (mu_dtype or dtype).type
        first = t <= 1
        b1_, b2_ = (1.0, 0.0) if first else (b1, b2)
        clip = r(_clip_value(clip_value_fn, t - 1)) if use_clipping else r(0)
        return (r(1 - b2_), r(b2_), r(eps), clip, r(1 - b1_), m(b1_), r(b1_))

    return elementwise_transform(
        name="scale_by_adopt", state_cls=ScaleByAdamState, moments={"mu": 0, "nu": 0},
        kernels=(kadopt.adopt_cpu, kadopt.adopt_cuda), hyperparams=hyperparams,
        flags=(use_clipping, nesterov),
        moment_dtypes={"mu": mu_dtype} if mu_dtype is not None else None)


def adopt(learning_rate, b1=0.9, b2=0.9999, eps=1e-6, mu_dtype=None, *, nesterov=False,
          use_clipping=True, clip_value_fn=_quarter_root):
    r"""ADOPT: ``chain(scale_by_adopt(...), scale_by_learning_rate(learning_rate))``.

    .. math::
        p_t = p_{t-1} - \alpha_t u_t

    with :math:`u_t` from ``scale_by_adopt`` (see there for the recursion and
    optax's conventions: the first update is zero, ``eps`` bounds
    :math:`\sqrt{v}`).

    Args:
      learning_rate: a float, or a schedule (callable of the step count).
      b1, b2, eps, mu_dtype, nesterov, use_clipping, clip_value_fn: see
        ``scale_by_adopt``.

    References:
      Taniguchi et al., "ADOPT: Modified Adam Can Converge with Any
      :math:`\beta_2` with the Optimal Rate", NeurIPS 2024 (arXiv:2411.02853).
    """
    return chain(scale_by_adopt(b1=b1, b2=b2, eps=eps, mu_dtype=mu_dtype, nesterov=nesterov,
                                use_clipping=use_clipping, clip_value_fn=clip_value_fn),
                 scale_by_learning_rate(learning_rate))


__all__ = ["adopt", "scale_by_adopt"]
