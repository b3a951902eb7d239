r"""Differentiable approximations of functions by stochastic perturbations:
``optax.perturbations`` for NumPy (``make_perturbed_fun``, ``Gumbel``,
``Normal``), and jaxopt's ``make_perturbed_argmax`` and ``make_perturbed_max``
(called as jaxopt's, ``fn(inputs, rng)``; jaxopt's own ``make_perturbed_fun``,
with ``control_variate`` for optax's ``use_baseline``, is optax's here).

For a function :math:`f`, a scale :math:`\sigma` and a noise distribution
:math:`\mu` with density :math:`\propto e^{\log p(z)}`,

.. math::

    f_\sigma(x) = \mathbb{E}_{z \sim \mu} \, f(x + \sigma z), \qquad
    \nabla f_\sigma(x) = \mathbb{E}_{z \sim \mu} \,
        \big(f(x + \sigma z) - b\big) \, \frac{-\nabla \log p(z)}{\sigma}

(the score-function / REINFORCE identity, with ``b = f(x)`` as a baseline
when ``use_baseline``, which leaves the expectation unchanged). Only values
of :math:`f` are used: :math:`f` may be piecewise constant (an argmax), and
:math:`f_\sigma` is smooth (Berthet et al., 2020).

How npopt differs from optax, which has autodiff:

* optax's ``make_perturbed_fun`` returns ``fn(key, x)`` whose JAX derivatives
  (through the DiCE "magic box", Foerster et al., 2018) are the Monte Carlo
  estimates above. npopt's returns a :class:`PerturbedFun`, called the same
  way, ``fn(key, x)`` (the value), with the estimates as methods:
  ``fn.grad(key, x)`` / ``fn.value_and_grad(key, x)`` for a scalar-valued
  ``fun``, ``fn.vjp(key, x, cotangent)``, ``fn.jvp(key, x, tangent)`` and
  ``fn.jacobian(key, x)`` for any pytree-valued ``fun``. They are optax's
  first-order estimators exactly (the same formula on the same samples);
  higher-order ones are not offered.
* The random stream is NumPy's, not JAX's: ``key`` is a
  ``numpy.random.Generator`` (used, and advanced, as it is) or anything
  ``numpy.random.default_rng`` turns into one (an int seed, a
  ``SeedSequence``, a sequence of ints such as a raw JAX key
  ``jax.random.key_data(k)``). The samples differ from optax's draw by draw;
  their distribution, and so the expectations, are optax's. With the same
  seed, the value and every estimate use the same samples (as ``fn`` and
  ``jax.grad(fn, argnums=1)`` do in optax with the same key);
  ``value_and_grad`` draws once for both.
* A noise object needs ``sample(key, sample_shape, dtype)`` and
  ``log_prob(inputs)`` as in optax, and, for the gradient estimates,
  ``grad_log_prob(inputs)`` (the derivative optax gets from autodiff);
  ``Gumbel`` and ``Normal`` have all three.
* ``fun`` is called once per sample, on NumPy pytrees (no ``vmap``).

References:
  Berthet et al., `Learning with Differentiable Perturbed Optimizers
  <https://arxiv.org/abs/2002.08676>`_, NeurIPS 2020.
  Foerster et al., `DiCE: The Infinitely Differentiable Monte Carlo Estimator
  <https://arxiv.org/abs/1802.05098>`_, ICML 2018.
  Salimans et al., `Evolution Strategies as a Scalable Alternative to
  Reinforcement Learning <https://arxiv.org/abs/1703.03864>`_, 2017.
"""
import numbers

import numpy as np

from . import _dense, _math
from . import tree as _tree
from ._checks import _describe, check_bool, check_callable, check_number

__all__ = ["Gumbel", "Normal", "make_perturbed_fun", "PerturbedFun",
           # jaxopt.perturbations' other two
           "make_perturbed_argmax", "make_perturbed_max", "PerturbedArgmax", "PerturbedMax"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _rng(key, name="key"):
    """A numpy Generator from ``key`` (a Generator is used as it is)."""
    if isinstance(key, np.random.Generator):
        return key
    if key is None or isinstance(key, (bool, np.bool_, float, np.floating)):
        raise TypeError(f"{name}: expected a numpy.random.Generator, a SeedSequence, or a "
                        f"non-negative int seed (or a sequence of them), got {_describe(key)}")
    try:
        return np.random.default_rng(key)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name}: expected a numpy.random.Generator, a SeedSequence, or a "
                        f"non-negative int seed (or a sequence of them), got "
                        f"{_describe(key)} ({e})") from None


def _dtype(dtype):
    dt = np.dtype(dtype)
    if dt not in _FLOATS:
        raise TypeError(f"dtype: expected float32 or float64, got {dt}")
    return dt


def _shape(sample_shape):
    if isinstance(sample_shape, (numbers.Integral, np.integer)):
        sample_shape = (sample_shape,)
    return tuple(int(s) for s in sample_shape)


class Normal:
    r"""Standard normal distribution: :math:`\log p(z) = -z^2 / 2` (up to a
    constant, as optax), :math:`\nabla \log p(z) = -z`."""

    def sample(self, key, sample_shape=(), dtype=float):
        """Draws from ``key`` (a Generator, or a seed for one; see the module
        docstring), an array of ``sample_shape`` in ``dtype``."""
        return _rng(key).standard_normal(_shape(sample_shape), dtype=_dtype(dtype))

    def log_prob(self, inputs):
        return -0.5 * inputs ** 2

    def grad_log_prob(self, inputs):
        """The derivative of ``log_prob`` (npopt: no autodiff)."""
        return -inputs


class Gumbel:
    r"""Standard Gumbel distribution: :math:`\log p(z) = -z - e^{-z}`,
    :math:`\nabla \log p(z) = e^{-z} - 1`. With it, the perturbed argmax is the
    softmax: :math:`\mathbb{E}\,\mathrm{onehot}(\arg\max(x + \sigma z)) =
    \mathrm{softmax}(x / \sigma)` (the Gumbel-max trick)."""

    def sample(self, key, sample_shape=(), dtype=float):
        """Draws from ``key`` (a Generator, or a seed for one; see the module
        docstring), an array of ``sample_shape`` in ``dtype`` (drawn in float64
        by ``Generator.gumbel``, then rounded)."""
        dt = _dtype(dtype)
        return np.asarray(_rng(key).gumbel(size=_shape(sample_shape)), dt)

    def log_prob(self, inputs):
        return -inputs - _math.exp(-inputs)

    def grad_log_prob(self, inputs):
        """The derivative of ``log_prob`` (npopt: no autodiff)."""
        return _math.exp(-inputs) - 1


def _float_leaves(name, x):
    leaves, treedef = _tree.tree_flatten(x)
    out = []
    for v in leaves:
        if isinstance(v, (bool, np.bool_)):
            raise TypeError(f"{name}: expected floating-point leaves, got {v!r}")
        a = np.asarray(v, np.float64) if isinstance(v, float) else np.asarray(v)
        if a.dtype not in _FLOATS:
            raise TypeError(f"{name}: expected floating-point leaves (float32 or float64), "
                            f"got {_describe(v) if isinstance(v, np.ndarray) else repr(v)}")
        out.append(a)
    return out, treedef


class PerturbedFun:
    """The perturbed function made by :func:`make_perturbed_fun`.

    ``fn(key, x)`` is the Monte Carlo estimate of :math:`f_\\sigma(x)`; the
    methods give the Monte Carlo estimates of its derivatives on the same
    samples (for the same seed). See the module docstring for ``key``.
    """

    def __init__(self, fun, num_samples, sigma, noise, use_baseline):
        self.fun = fun
        self.num_samples = num_samples
        self.sigma = sigma
        self.noise = noise
        self.use_baseline = use_baseline

    # -- the samples ---------------------------------------------------------

    def _draw(self, key, x):
        """Evaluates ``fun`` at ``num_samples`` perturbations of ``x``.

        Returns ``(leaves, treedef, z, out_leaves, out_def)``: ``z[l]`` of shape
        ``(n,) + x_l.shape`` is the noise recovered as optax does,
        ``((x + sigma z) - x) / sigma``; ``out_leaves[k]`` stacks the
        ``n`` values of output leaf k.
        """
        rng = _rng(key)
        leaves, treedef = _float_leaves("x", x)
        n = self.num_samples
        shifted, z = [], []
        for v in leaves:
            s = v.dtype.type(self.sigma)
            zv = np.asarray(self.noise.sample(rng, (n,) + v.shape, v.dtype))
            if zv.shape != (n,) + v.shape:
                raise ValueError(f"noise: sample returned shape {zv.shape}, expected "
                                 f"{(n,) + v.shape}")
            sh = (v + s * zv.astype(v.dtype, copy=False)).astype(v.dtype, copy=False)
            shifted.append(sh)
            z.append((sh - v) / s)
        outs = [self.fun(treedef.unflatten([sh[k] for sh in shifted])) for k in range(n)]
        first, out_def = _tree.tree_flatten(outs[0])
        rows = [[np.asarray(v) for v in first]]
        for o in outs[1:]:
            rows.append([np.asarray(v) for v in out_def.flatten_up_to(o, "fun's output")])
        out_leaves = []
        for k in range(out_def.num_leaves):
            try:
                out_leaves.append(np.stack([r[k] for r in rows]))
            except ValueError:
                raise ValueError("fun: expected outputs of the same shapes for every "
                                 "perturbed input") from None
        return leaves, treedef, z, out_leaves, out_def

    def _box_dtype(self, leaves):
        return np.result_type(*[v.dtype for v in leaves]) if leaves else np.dtype(np.float64)

    def _value(self, leaves, out_leaves, out_def):
        bdt = self._box_dtype(leaves)
        vals = []
        for f in out_leaves:
            dt = np.result_type(f.dtype, bdt)
            vals.append(np.mean(f.astype(dt, copy=False), axis=0).astype(dt, copy=False))
        return out_def.unflatten(vals)

    def _centred(self, x, leaves, out_leaves, out_def):
        """``f(x + sigma z_s) - b`` per output leaf (float), b the baseline or 0."""
        bdt = self._box_dtype(leaves)
        dts = [np.result_type(f.dtype, bdt) for f in out_leaves]
        cen = [f.astype(dt) for f, dt in zip(out_leaves, dts)]
        if self.use_baseline:
            base = out_def.flatten_up_to(self.fun(x), "fun's output")
            cen = [c - np.asarray(b).astype(c.dtype) for c, b in zip(cen, base)]
        return cen

    def _score(self, z, leaves):
        """``-grad log p(z) / sigma`` per input leaf: the derivative of the
        samples' log-density with respect to x (optax's magic box)."""
        glp = getattr(self.noise, "grad_log_prob", None)
        if not callable(glp):
            raise TypeError(
                f"noise: the gradient estimates need noise.grad_log_prob(inputs), the "
                f"derivative of log_prob, which {type(self.noise).__name__} lacks")
        out = []
        for zl, v in zip(z, leaves):
            s = v.dtype.type(self.sigma)
            out.append((-np.asarray(glp(zl)).astype(v.dtype, copy=False)) / s)
        return out

    def _mean_outer(self, c, g, dt):
        """``mean_s c_s * g_s`` for c of shape (n,), g of shape (n,) + shape."""
        n = c.shape[0]
        prod = c.reshape((n,) + (1,) * (g.ndim - 1)) * g
        return (np.sum(prod, axis=0) / n).astype(dt, copy=False)

    # -- the public estimates ------------------------------------------------

    def __call__(self, key, x):
        """The Monte Carlo estimate of ``E f(x + sigma z)`` (a pytree like
        ``fun``'s output)."""
        leaves, _, _, out_leaves, out_def = self._draw(key, x)
        return self._value(leaves, out_leaves, out_def)

    def vjp(self, key, x, cotangent):
        r"""Estimate of :math:`w^\top \partial f_\sigma(x)` for ``cotangent`` ``w``
        (a pytree like ``fun``'s output): ``mean_s <w, f(x + sigma z_s) - b>
        (-grad log p(z_s) / sigma)``, a pytree like ``x`` (its dtypes)."""
        leaves, treedef, z, out_leaves, out_def = self._draw(key, x)
        return self._vjp(x, leaves, treedef, z, out_leaves, out_def, cotangent)

    def _vjp(self, x, leaves, treedef, z, out_leaves, out_def, cotangent):
        w = out_def.flatten_up_to(cotangent, "cotangent")
        cen = self._centred(x, leaves, out_leaves, out_def)
        n = self.num_samples
        c = np.zeros(n, np.result_type(*[q.dtype for q in cen]) if cen else np.float64)
        for q, wk in zip(cen, w):
            wk = np.asarray(wk)
            if wk.shape != q.shape[1:]:
                raise ValueError(f"cotangent: expected the shapes of fun's output, got "
                                 f"{wk.shape} for an output of shape {q.shape[1:]}")
            c = c + np.sum((q * wk.astype(q.dtype)).reshape(n, -1), axis=1)
        g = self._score(z, leaves)
        return treedef.unflatten([self._mean_outer(c, gl, v.dtype) for gl, v in zip(g, leaves)])

    def grad(self, key, x):
        """Estimate of the gradient of :math:`f_\\sigma` at ``x`` for a
        scalar-valued ``fun`` (a pytree like ``x``)."""
        return self.value_and_grad(key, x)[1]

    def value_and_grad(self, key, x):
        """``(value, grad)`` for a scalar-valued ``fun``, on one set of samples."""
        leaves, treedef, z, out_leaves, out_def = self._draw(key, x)
        if out_def.num_leaves != 1 or out_leaves[0].shape[1:] != ():
            raise ValueError("fun: grad and value_and_grad need a scalar-valued fun; use "
                             "vjp, jvp or jacobian for other outputs")
        value = self._value(leaves, out_leaves, out_def)
        one = out_def.unflatten([np.ones((), out_leaves[0].dtype)])
        return value, self._vjp(x, leaves, treedef, z, out_leaves, out_def, one)

    def jvp(self, key, x, tangent):
        r"""Estimate of :math:`\partial f_\sigma(x) \, t` for ``tangent`` ``t`` (a
        pytree like ``x``): ``mean_s (f(x + sigma z_s) - b) <-grad log p(z_s) /
        sigma, t>``, a pytree like ``fun``'s output."""
        leaves, treedef, z, out_leaves, out_def = self._draw(key, x)
        t = treedef.flatten_up_to(tangent, "tangent")
        g = self._score(z, leaves)
        n = self.num_samples
        c = np.zeros(n, self._box_dtype(leaves))
        for gl, tl, v in zip(g, t, leaves):
            tl = np.asarray(tl)
            if tl.shape != v.shape:
                raise ValueError(f"tangent: expected the shapes of x's leaves, got {tl.shape} "
                                 f"for a leaf of shape {v.shape}")
            c = c + np.sum((gl * tl.astype(gl.dtype)).reshape(n, -1), axis=1)
        cen = self._centred(x, leaves, out_leaves, out_def)
        return out_def.unflatten([self._mean_outer(c, q, q.dtype) for q in cen])

    def jacobian(self, key, x):
        """Estimate of the Jacobian of :math:`f_\\sigma` at ``x``, laid out as
        ``jax.jacobian``'s: a pytree like ``fun``'s output whose leaves are
        pytrees like ``x``, with leaves of shape ``out.shape + x.shape``."""
        leaves, treedef, z, out_leaves, out_def = self._draw(key, x)
        cen = self._centred(x, leaves, out_leaves, out_def)
        g = self._score(z, leaves)
        n = self.num_samples
        rows = []
        for q in cen:
            qf = q.reshape(n, -1)
            blocks = []
            for gl, v in zip(g, leaves):
                gf = gl.reshape(n, -1)
                dt = np.result_type(q.dtype, v.dtype)
                prod = qf[:, :, None].astype(dt) * gf[:, None, :].astype(dt)
                blocks.append((np.sum(prod, axis=0) / n).reshape(q.shape[1:] + v.shape))
            rows.append(treedef.unflatten(blocks))
        return out_def.unflatten(rows)

    def __repr__(self):
        return (f"PerturbedFun(fun={getattr(self.fun, '__name__', self.fun)!r}, "
                f"num_samples={self.num_samples}, sigma={self.sigma}, "
                f"noise={type(self.noise).__name__}(), use_baseline={self.use_baseline})")


def make_perturbed_fun(fun, num_samples=1000, sigma=0.1, noise=Gumbel(), use_baseline=True):
    r"""A differentiable approximation of ``fun`` by stochastic perturbations.

    .. math::

        f_\sigma(x) = \mathbb{E}_{z \sim \mu} f(x + \sigma z) \approx
        \frac{1}{n} \sum_{s=1}^{n} f(x + \sigma z_s)

    and its derivatives estimated on the same samples by

    .. math::

        \partial f_\sigma(x) \approx \frac{1}{n} \sum_{s=1}^{n}
        \big(f(x + \sigma z_s) - b\big) \otimes
        \frac{-\nabla \log p(z_s)}{\sigma},

    ``b = f(x)`` if ``use_baseline`` else 0 (optax's estimator: the first
    derivative of its DiCE magic box). See the module docstring for how npopt
    offers the derivatives without autodiff.

    Args:
      fun: the function to smooth, from a pytree of float arrays to a pytree
        of arrays (need not be differentiable, e.g. a one-hot argmax).
      num_samples: the number of perturbed evaluations averaged, an int >= 1.
      sigma: the scale of the perturbation, a number > 0.
      noise: a distribution with ``sample(key, sample_shape, dtype)`` and
        ``log_prob(inputs)`` (and ``grad_log_prob(inputs)`` for the
        derivatives), like :class:`Gumbel` (the default) or :class:`Normal`.
      use_baseline: use ``fun(x)`` as a control variate in the derivative
        estimates (variance reduction; one more call of ``fun``).

    Returns:
      A :class:`PerturbedFun` ``fn``: ``fn(key, x)`` is the value estimate,
      ``fn.grad``, ``fn.value_and_grad``, ``fn.vjp``, ``fn.jvp`` and
      ``fn.jacobian`` the derivative estimates. ``key``: a
      ``numpy.random.Generator`` (advanced by the call) or a seed for one (an
      int, a ``SeedSequence``, a sequence of ints such as a raw JAX key).

    Example:
      >>> import numpy as np
      >>> from npopt.perturbations import make_perturbed_fun
      >>> f = lambda x: np.sum(np.maximum(x, 0.0))
      >>> fn = make_perturbed_fun(f, 1_000, 0.1)
      >>> g = fn.grad(0, np.zeros(3))   # each entry near 1 - exp(-1) = 0.63
    """
    check_callable("fun", fun)
    if (not isinstance(num_samples, (numbers.Integral, np.integer))
            or isinstance(num_samples, (bool, np.bool_)) or int(num_samples) < 1):
        raise ValueError(f"num_samples: expected an int >= 1, got {_describe(num_samples)}")
    sigma = float(check_number("sigma", sigma, low=0.0, low_open=True))
    for method in ("sample", "log_prob"):
        if not callable(getattr(noise, method, None)):
            raise TypeError(f"noise: expected a distribution with sample and log_prob "
                            f"methods (like Gumbel() or Normal()), got {_describe(noise)}")
    use_baseline = check_bool("use_baseline", use_baseline)
    return PerturbedFun(fun, int(num_samples), sigma, noise, use_baseline)


# ---------------------------------------------------------------------------
# jaxopt's perturbed argmax and max (jaxopt.perturbations), called as jaxopt's
# are: fn(inputs, rng), inputs an array (no pytree), rng a seed or Generator.
# ---------------------------------------------------------------------------

def _check_common(num_samples, sigma, noise):
    if isinstance(num_samples, (bool, np.bool_)) or not isinstance(
            num_samples, (numbers.Integral, np.integer)) or num_samples < 1:
        raise ValueError(f"num_samples: expected an int >= 1, got {_describe(num_samples)}")
    sigma = check_number("sigma", sigma, low=0.0, low_open=True)
    for method in ("sample", "grad_log_prob"):
        if not callable(getattr(noise, method, None)):
            raise TypeError(f"noise: expected a distribution with sample(key, sample_shape, "
                            f"dtype) and grad_log_prob(inputs), got {_describe(noise)}")
    return int(num_samples), sigma


class PerturbedArgmax:
    r"""jaxopt's perturbed argmax: ``fn(inputs, rng)`` is
    :math:`\mathbb{E}_z\,\mathrm{argmax\_fun}(x + \sigma z)` over
    ``num_samples`` draws; ``fn.jvp(inputs, rng, tangent)`` and
    ``fn.jacobian(inputs, rng)`` are jaxopt's estimate of its derivative,

    .. math::  J v \approx \frac{1}{n \sigma} \sum_i
        \big(y_i - [y_0]\big) \, \langle -\nabla \log p(z_i), v \rangle,
        \quad y_i = \mathrm{argmax\_fun}(x + \sigma z_i)

    (:math:`y_0 = \mathrm{argmax\_fun}(x)` with ``control_variate``), on the
    same samples as the value for the same seed. See :func:`make_perturbed_argmax`.
    """

    def __init__(self, argmax_fun, num_samples, sigma, noise, control_variate):
        self.argmax_fun = argmax_fun
        self.num_samples, self.sigma = num_samples, sigma
        self.noise, self.control_variate = noise, control_variate

    def _inputs(self, inputs):
        x = np.asarray(inputs)
        if x.dtype not in _FLOATS or x.ndim < 1:
            raise TypeError(f"inputs: expected a float32 or float64 array of at least one "
                            f"dimension, got {_describe(inputs)}")
        return x

    def _draw(self, x, rng):
        z = self.noise.sample(_rng(rng, "rng"), (self.num_samples,) + x.shape, x.dtype)
        y = np.stack([np.asarray(self.argmax_fun(x + self.sigma * zi), x.dtype) for zi in z])
        return z, y

    def __call__(self, inputs, rng):
        x = self._inputs(inputs)
        return np.mean(self._draw(x, rng)[1], axis=0)

    def _weights(self, x, z, y):
        n = self.num_samples
        if self.control_variate:
            y = y - np.asarray(self.argmax_fun(x), x.dtype)
        nabla = -np.asarray(self.noise.grad_log_prob(z), x.dtype).reshape(n, -1)
        return y.reshape(n, -1), nabla

    def jvp(self, inputs, rng, tangent):
        """The derivative along ``tangent`` (shaped like ``inputs``)."""
        x = self._inputs(inputs)
        t = np.asarray(tangent, x.dtype)
        if t.shape != x.shape:
            raise ValueError(f"tangent: expected the shape of inputs {x.shape}, got {t.shape}")
        z, y = self._draw(x, rng)
        ys, nabla = self._weights(x, z, y)
        coef = _dense.dot(nabla, t.reshape(-1))
        out = _dense.dot(np.ascontiguousarray(ys.T), coef) / (self.num_samples * self.sigma)
        return np.asarray(out, x.dtype).reshape(y.shape[1:])

    def jacobian(self, inputs, rng):
        """The estimated Jacobian, of shape ``output.shape + inputs.shape``."""
        x = self._inputs(inputs)
        z, y = self._draw(x, rng)
        ys, nabla = self._weights(x, z, y)
        jac = _dense.dot(np.ascontiguousarray(ys.T), nabla) / (self.num_samples * self.sigma)
        return np.asarray(jac, x.dtype).reshape(y.shape[1:] + x.shape)


class PerturbedMax:
    r"""jaxopt's perturbed max: ``fn(inputs, rng)`` is
    :math:`\mathbb{E}_z \langle x + \sigma z, \mathrm{argmax\_fun}(x + \sigma z)\rangle`;
    its gradient, ``fn.grad(inputs, rng)``, is the perturbed argmax on the
    same samples (jaxopt's custom JVP). See :func:`make_perturbed_max`."""

    def __init__(self, argmax_fun, num_samples, sigma, noise):
        self._argmax = PerturbedArgmax(argmax_fun, num_samples, sigma, noise, False)

    def __call__(self, inputs, rng):
        return self.value_and_grad(inputs, rng)[0]

    def grad(self, inputs, rng):
        return self.value_and_grad(inputs, rng)[1]

    def value_and_grad(self, inputs, rng):
        a = self._argmax
        x = a._inputs(inputs)
        z, y = a._draw(x, rng)
        n = a.num_samples
        perturbed = (x + a.sigma * z).reshape(n, -1)
        values = np.array([_dense.dot(p, yi) for p, yi in zip(perturbed, y.reshape(n, -1))],
                          x.dtype)
        return x.dtype.type(np.mean(values)), np.mean(y, axis=0)

    def jvp(self, inputs, rng, tangent):
        """``<grad, tangent>`` (jaxopt's JVP)."""
        g = self.grad(inputs, rng)
        return _dense.dot(g.reshape(-1), np.asarray(tangent, g.dtype).reshape(-1))


def make_perturbed_argmax(argmax_fun, num_samples=1000, sigma=0.1, noise=Gumbel(),
                          control_variate=False):
    """jaxopt's ``make_perturbed_argmax``: a differentiable, perturbed
    version of ``argmax_fun`` (Berthet et al., 2020).

    Args:
      argmax_fun: from an array of shape ``(D1, ..., Dk)`` to an array (a
        one-hot argmax, a ranking, ...).
      num_samples: perturbed evaluations averaged, an int >= 1.
      sigma: the scale of the perturbation, a number > 0.
      noise: ``Gumbel()`` (default) or ``Normal()``, or an object with
        ``sample(key, sample_shape, dtype)`` and ``grad_log_prob(inputs)``.
      control_variate: subtract ``argmax_fun(inputs)`` in the derivative
        estimate (variance reduction).

    Returns:
      A :class:`PerturbedArgmax`, ``fn(inputs, rng)`` as in jaxopt (``rng``:
      a seed or a ``numpy.random.Generator``: NumPy's stream, not JAX's),
      with ``fn.jvp`` and ``fn.jacobian`` for its derivative (npopt has no
      autodiff). With Gumbel noise and a one-hot argmax, the value's
      expectation is ``softmax(inputs / sigma)``.
    """
    check_callable("argmax_fun", argmax_fun)
    num_samples, sigma = _check_common(num_samples, sigma, noise)
    return PerturbedArgmax(argmax_fun, num_samples, sigma, noise,
                           check_bool("control_variate", control_variate))


def make_perturbed_max(argmax_fun, num_samples=1000, sigma=0.1, noise=Gumbel()):
    """jaxopt's ``make_perturbed_max``: the perturbed max associated with
    ``argmax_fun``, ``E <x + sigma z, argmax_fun(x + sigma z)>``, whose
    gradient is the perturbed argmax (Berthet et al., 2020).

    Returns:
      A :class:`PerturbedMax`, ``fn(inputs, rng)`` as in jaxopt, with
      ``fn.grad``, ``fn.value_and_grad`` and ``fn.jvp``. With Gumbel noise
      and a one-hot argmax, the value's expectation is
      ``sigma * (logsumexp(inputs / sigma) + euler_gamma)``.
    """
    check_callable("argmax_fun", argmax_fun)
    num_samples, sigma = _check_common(num_samples, sigma, noise)
    return PerturbedMax(argmax_fun, num_samples, sigma, noise)
