"""RMS-normalised preconditioners: scale_by_rms, scale_by_stddev, scale_by_rss.

See ``npopt.kernels.rms`` for the recursions. optax's eps conventions are
kept: inside the square root by default (TF-style, ``eps_in_sqrt=True``),
AdaGrad's accumulator starts at 0.1 with eps 1e-7 inside the root.
"""
from typing import Any, NamedTuple

from .. import _checks
from ..kernels import rms as krms
from .adam import bias_correction_inverse
from ._elementwise import elementwise_transform


class ScaleByRmsState(NamedTuple):
    nu: Any


class ScaleByRmsWithCountState(NamedTuple):
    count: Any
    nu: Any


class ScaleByRStdDevState(NamedTuple):
    mu: Any
    nu: Any


class ScaleByRStdDevWithCountState(NamedTuple):
    count: Any
    mu: Any
    nu: Any


class ScaleByRssState(NamedTuple):
    sum_of_squares: Any


def _rms_hyperparams(decay, eps, bias_correction):
    def hyperparams(dtype, t):
        dt = dtype.type
        inv_bc = bias_correction_inverse(decay, t, dtype) if bias_correction else dt(1)
        return (dt(1 - decay), dt(decay), inv_bc, dt(eps), dt(1))
    return hyperparams


def _check(decay, eps, initial_scale, eps_in_sqrt, bias_correction):
    """The arguments checked (0-d arrays as NumPy scalars), in their order;
    ``initial_scale`` is nu's initial value."""
    return (_checks.check_number("decay", decay, low=0.0, high=1.0),
            _checks.check_number("eps", eps, low=0.0),
            _checks.check_number("initial_scale", initial_scale, low=0.0),
            _checks.check_bool("eps_in_sqrt", eps_in_sqrt),
            _checks.check_bool("bias_correction", bias_correction))


def scale_by_rms(decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt=True,
                 bias_correction=False):
    r"""RMSProp's scaling: :math:`\nu_t = \rho\nu_{t-1} + (1-\rho)g_t^2`,
    :math:`u_t = g_t / \sqrt{\hat\nu_t + \epsilon}` (or
    :math:`g_t/(\sqrt{\hat\nu_t}+\epsilon)` with ``eps_in_sqrt=False``).

    :math:`\hat\nu_t = \nu_t/(1-\rho^t)` with ``bias_correction`` (the state
    then gains a ``count``), else :math:`\nu_t`. ``nu`` starts at
    ``initial_scale``.

    .. warning:: optax's defaults (eps inside the root, decay 0.9) are
       TensorFlow's, not PyTorch's (alpha 0.99, eps outside).

    References:
      Hinton, Lecture 6.5 of "Neural Networks for Machine Learning", 2012.
    """
    decay, eps, initial_scale, eps_in_sqrt, bias_correction = _check(
        decay, eps, initial_scale, eps_in_sqrt, bias_correction)
    return elementwise_transform(
        name="scale_by_rms", complex_ok=True,
        state_cls=ScaleByRmsWithCountState if bias_correction else ScaleByRmsState,
        moments={"nu": initial_scale}, kernels=(krms.rms_cpu, krms.rms_cuda),
        hyperparams=_rms_hyperparams(decay, eps, bias_correction),
        flags=(eps_in_sqrt,), counted=bias_correction)


def scale_by_stddev(decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt=True,
                    bias_correction=False):
    r"""Centred RMSProp: divides by the running standard deviation,
    :math:`u_t = g_t / \sqrt{\hat\nu_t - \hat\mu_t^2 + \epsilon}`.

    References:
      Graves, "Generating Sequences With Recurrent Neural Networks", 2013.
    """
    decay, eps, initial_scale, eps_in_sqrt, bias_correction = _check(
        decay, eps, initial_scale, eps_in_sqrt, bias_correction)
    return elementwise_transform(
        name="scale_by_stddev", complex_ok=True,
        state_cls=ScaleByRStdDevWithCountState if bias_correction else ScaleByRStdDevState,
        moments={"mu": 0, "nu": initial_scale}, kernels=(krms.stddev_cpu, krms.stddev_cuda),
        hyperparams=_rms_hyperparams(decay, eps, bias_correction),
        flags=(eps_in_sqrt,), counted=bias_correction)


def scale_by_rss(initial_accumulator_value=0.1, eps=1e-7):
    r"""AdaGrad's scaling: :math:`S_t = S_{t-1} + g_t^2`,
    :math:`u_t = g_t/\sqrt{S_t + \epsilon}` (0 where :math:`S_t = 0`).

    References:
      Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online Learning
      and Stochastic Optimization", JMLR 2011.
    """
    initial_accumulator_value = _checks.check_number(
        "initial_accumulator_value", initial_accumulator_value, low=0.0)
    eps = _checks.check_number("eps", eps, low=0.0)

    def hyperparams(dtype, t):
        dt = dtype.type
        return (dt(eps), dt(1), dt(0))

    return elementwise_transform(
        name="scale_by_rss", complex_ok=True, state_cls=ScaleByRssState,
        moments={"sum_of_squares": initial_accumulator_value},
        kernels=(krms.rss_cpu, krms.rss_cuda), hyperparams=hyperparams, counted=False)
