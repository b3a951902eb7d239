"""scale_by_adam: Adam's preconditioner (Kingma & Ba, 2014).

See ``npopt.kernels.adam`` for the per-element recursion. The host part
here mirrors optax's casts: ``1 - b`` is computed in float64 (optax's
Python-float hyperparameters) then rounded to the leaf dtype; the bias
correction ``1 - b**t`` is computed in float64, cast to the leaf dtype, and
inverted in that dtype (XLA turns ``m / bc`` into ``m * (1 / bc)``).
"""
from typing import Any, NamedTuple

import numpy as np

from .. import _checks
from .._checks import compute_dtype
from ..kernels import adam as kadam
from ._elementwise import elementwise_transform


class ScaleByAdamState(NamedTuple):
    count: Any   # int32 step counter
    mu: Any      # first moment, a tree like params (mu_dtype)
    nu: Any      # second moment, a tree like params


def bias_correction_inverse(decay, t, dtype):
    """``1 / (1 - decay**t)`` with optax's roundings: power in float64 (or in
    the hyperparameter's own dtype when it is a NumPy scalar), cast, invert."""
    dt = dtype.type
    if type(decay) is float:
        # The usual case, in Python floats (NumPy scalar arithmetic costs
        # ~0.3 us an operation, a step's budget is a few us): the quotient
        # of two float32 numbers computed in float64 and rounded to float32
        # is their float32 quotient (53 >= 2 * 24 + 2 bits: the double
        # rounding is innocuous, Figueroa 1995).
        return dt(1.0 / float(dt(1.0 - decay ** t)))
    # A Python float meets the int32 count as float64 under x64 (Python's
    # float ** int is that float64 pow); a NumPy float32 hyperparameter
    # (inject_hyperparams) keeps the power in float32.
    power = decay ** type(decay)(t) if hasattr(decay, "dtype") else decay ** t
    return dt(1) / dt(1 - power)


BLOCK = 64        # steps whose hyperparameters are made at once


def adam_hyperparams(b1, b2, eps, eps_root, mu_dtype=None):
    """``hyperparams(dtype, t)``: the ``hp`` tuple of ``kernels.adam.adam_rule``
    for leaves of ``dtype`` at step ``t``.

    The constants are made once per dtype. The bias corrections are made
    for ``BLOCK`` steps at a time when b1 and b2 are Python floats (the
    usual case): the powers in Python floats as ``bias_correction_inverse``
    does, then one rounding to the dtype and one division in it for the
    whole block (NumPy's division is IEEE's: the same bits as the scalar
    one), instead of nine NumPy scalar operations per step (2 us)."""
    consts, blocks = {}, {}
    floats = type(b1) is float and type(b2) is float

    def constants(dtype):
        c = consts.get(dtype)
        if c is None:
            dt = dtype.type
            mdt = mu_dtype or dtype      # a 16-bit mu: b1 rounded to it, computed in float32
            b1_mu = compute_dtype(mdt).type(mdt.type(b1))
            c = consts[dtype] = ((dt(1 - b1), dt(b1), dt(1 - b2), dt(b2)),
                                 (dt(eps), dt(eps_root), b1_mu))
        return c

    def block(dtype, t0):
        c = constants(dtype)
        d = np.array([(1.0 - b1 ** t, 1.0 - b1 ** (t + 1), 1.0 - b2 ** t)
                      for t in range(t0, t0 + BLOCK)], dtype)
        x = list(np.divide(1, d).ravel())         # NumPy scalars of the dtype
        return [c[0] + tuple(x[k:k + 3]) + c[1] for k in range(0, 3 * BLOCK, 3)]

    def hyperparams(dtype, t):
        if floats and t >= 1:
            t0 = t - (t - 1) % BLOCK
            b = blocks.get(dtype)
            if b is None or b[0] != t0:
                b = blocks[dtype] = (t0, block(dtype, t0))
            return b[1][t - t0]
        c = constants(dtype)
        return (c[0] + (bias_correction_inverse(b1, t, dtype),
                        bias_correction_inverse(b1, t + 1, dtype),
                        bias_correction_inverse(b2, t, dtype)) + c[1])
    return hyperparams


def scale_by_adam(b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None, *, nesterov=False):
    r"""Rescales updates with Adam's bias-corrected moment estimates.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,\quad
        u_t = \hat m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon)

    with :math:`\hat m_t = m_t/(1-\beta_1^t)` (or, with ``nesterov``,
    :math:`\beta_1 m_t/(1-\beta_1^{t+1}) + (1-\beta_1) g_t/(1-\beta_1^t)`, as
    optax, without Dozat's extra :math:`\beta_2` factor) and
    :math:`\hat v_t = v_t/(1-\beta_2^t)`.

    Args:
      b1, b2: decay rates of the first and second moments, in [0, 1).
      eps: added to the denominator outside the square root.
      eps_root: added inside the square root (keeps derivatives finite).
      mu_dtype: dtype of the first moment (None: the params' dtype).
      nesterov: Nesterov momentum (NAdam).

    References:
      Kingma & Ba, "Adam: A Method for Stochastic Optimization", 2014.
      Dozat, "Incorporating Nesterov Momentum into Adam", 2016.
    """
    b1 = _checks.check_number("b1", b1, low=0.0, high=1.0, high_open=True)
    b2 = _checks.check_number("b2", b2, low=0.0, high=1.0, high_open=True)
    eps = _checks.check_number("eps", eps, low=0.0)
    eps_root = _checks.check_number("eps_root", eps_root, low=0.0)
    mu_dtype = _checks.check_float_dtype("mu_dtype", mu_dtype, narrow_ok=True)
    nesterov = _checks.check_bool("nesterov", nesterov)

    hyperparams = adam_hyperparams(b1, b2, eps, eps_root, mu_dtype)

    return elementwise_transform(
        name="scale_by_adam", state_cls=ScaleByAdamState, moments={"mu": 0, "nu": 0},
        complex_ok=True,
        kernels=(kadam.adam_cpu, kadam.adam_cuda), hyperparams=hyperparams,
        flags=(nesterov,), moment_dtypes={"mu": mu_dtype} if mu_dtype else None,
        keep_state_dtype=("nu",))
