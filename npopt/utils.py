r"""optax's utilities: ``multi_normal`` (a diagonal Gaussian parametrised by
its log-scale) and ``scale_gradient``.

``scale_gradient(inputs, scale)`` is, in optax, the identity on the forward
pass and multiplies the gradient flowing back through it by ``scale``
(a ``jax.custom_vjp``). npopt has no autodiff, so there is no backward pass
to scale: it returns ``inputs`` unchanged. Code ported from optax keeps
running; where the scaled gradient mattered, scale the gradient you compute
by hand (``g * scale`` for the part of the graph behind ``inputs``).

``MultiNormalDiagFromLogScale.sample`` draws from a NumPy ``Generator``
(``key``: an int seed or a Generator), not from JAX's threefry stream, so
samples differ from optax's; ``log_prob`` agrees with optax's to rounding:

.. math::

    \log p(x) = \sum_{\text{param axes}} -\tfrac12\Big(\log(2\pi\sigma^2)
    + \frac{(x-\mu)^2}{\sigma^2}\Big),\qquad \sigma = e^{\text{log\_scale}}

(``exp``/``log`` by ``npopt._math``, the sum by ``npopt._dense``: the same
bits on every CPU).
"""
import numbers

import numpy as np

from . import _math
from . import numerics as _num

__all__ = ["MultiNormalDiagFromLogScale", "multi_normal", "scale_gradient"]


def _generator(key):
    if isinstance(key, np.random.Generator):
        return key
    if isinstance(key, (numbers.Integral, np.integer)) and not isinstance(key, bool):
        return np.random.default_rng(int(key))
    raise TypeError(f"key: expected an int seed or a numpy.random.Generator, got "
                    f"{type(key).__name__} (JAX PRNG keys are not used by npopt)")


class MultiNormalDiagFromLogScale:
    """A diagonal normal distribution that exposes its parameters
    (``loc``, ``log_scale``), as optax's."""

    def __init__(self, loc, log_scale):
        self._log_scale = _num._inexact(log_scale, "log_scale")
        self._scale = np.asarray(_math.exp(self._log_scale))
        self._mean = _num._inexact(loc, "loc")
        try:
            self._param_shape = np.broadcast_shapes(self._mean.shape, self._scale.shape)
        except ValueError:
            raise ValueError(f"log_scale: shape {self._scale.shape} does not broadcast with "
                             f"loc's {self._mean.shape}") from None

    def sample(self, shape, key):
        """``shape + param_shape`` draws ``N(0, 1) * scale + mean``, the normals
        from ``key`` (an int seed or a ``np.random.Generator``)."""
        sample_shape = tuple(shape) + self._param_shape
        dt = np.result_type(self._scale, self._mean)
        z = _generator(key).standard_normal(sample_shape).astype(dt)
        return z * self._scale + self._mean

    def log_prob(self, x):
        """The log density of ``x``, summed over the parameter axes."""
        x = _num._inexact(x, "x")
        dt = np.result_type(x, self._mean, self._scale)
        x, loc, scale = (np.asarray(a, dt) for a in (x, self._mean, self._scale))
        scale_sqrd = scale * scale
        log_normalizer = np.asarray(_math.log(dt.type(2 * np.pi) * scale_sqrd))
        d = x - loc
        quadratic = (d * d) / scale_sqrd
        log_prob = (log_normalizer + quadratic) / dt.type(-2)
        k = len(self._param_shape)
        if k == 0:
            return log_prob
        lead = log_prob.shape[:log_prob.ndim - k]
        out = _num.row_sum(np.ascontiguousarray(log_prob).reshape(int(np.prod(lead)), -1))
        return out.reshape(lead)[()] if lead else out[0]

    @property
    def log_scale(self):
        return self._log_scale

    @property
    def params(self):
        return [self._mean, self._log_scale]


def multi_normal(loc, log_scale):
    """A ``MultiNormalDiagFromLogScale`` with mean ``loc`` and standard
    deviation ``exp(log_scale)``."""
    return MultiNormalDiagFromLogScale(loc=loc, log_scale=log_scale)


def scale_gradient(inputs, scale):
    """Returns ``inputs`` unchanged.

    In optax this is the identity forward and scales the gradient by
    ``scale`` on the backward pass; npopt has no backward pass (no autodiff),
    so only the forward identity remains (see the module docstring). ``scale``
    is checked to be a finite number, so that ported code fails where
    optax's would.
    """
    from . import _checks
    scale = _checks.check_number("scale", scale)
    return inputs
