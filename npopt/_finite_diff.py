r"""Finite differences: where no derivative is given, npopt differentiates here.

npopt has no autodiff. A solver without a gradient (``grad=``,
``value_and_grad=``), a Jacobian (``jac_fun=``, ``jac=``) or the products
of implicit differentiation (``optimality_jvp``/``optimality_vjp``) takes
them from this module, with one step rule.

**Central differences** along each coordinate,

.. math::

    \partial_i f(x) \approx \frac{f(x + h_i e_i) - f(x - h_i e_i)}{2 h_i},
    \qquad h_i = \epsilon^{1/3} \max(1, |x_i|),

with :math:`\epsilon` the machine epsilon of the dtype the points are formed
in: the step balances the truncation error :math:`O(h^2)` and the rounding
error :math:`O(\epsilon / h)`, about :math:`\epsilon^{2/3}` relative (4e-11
in float64, 2e-5 in float32); ``2 n`` evaluations for ``n`` parameters.
``central`` (gradients, Jacobian columns) and ``jacobian`` (a flat vector
function).

``FiniteDifferences`` adds, per solver instance, the precision and the
warning: float32 (or integer, or mixed) params are differenced in float64
(the points are float64 arrays, the result is cast back) when the function
computes in float64 on float64 input, which its first evaluation tells; one
that returns float32 anyway, or fails on float64 input, is differenced in
the params' own precision from then on. Given an ``owner`` (a solver's
name) it warns once, with a ``FiniteDifferenceWarning``, that this is the
slow path.

Two other stencils, each for its reason:

* ``directional``: along a vector :math:`v` (a Jacobian-vector product, for
  matrix-free solves), the same rule measured along :math:`v`:
  :math:`h = \epsilon^{1/3} \max(1, \|x\|) / \|v\|`, two evaluations
  whatever ``n`` (implicit differentiation, LM's geodesic acceleration).
* ``second_directional`` and ``hessian``: second differences, whose rounding
  error is :math:`O(\epsilon / h^2)`, so the step that balances it with the
  :math:`O(h^2)` truncation is :math:`\epsilon^{1/4}` (same scales).
"""
import numpy as np

from . import _dense
from . import tree as T

_F64 = np.dtype(np.float64)


class FiniteDifferenceWarning(UserWarning):
    """A solver differentiates ``fun`` by finite differences (the slow path):
    given once per solver instance. Silence it with
    ``warnings.filterwarnings("ignore", category=FiniteDifferenceWarning)``."""


def step(x):
    """The central-difference steps ``eps**(1/3) * max(1, |x_i|)`` of a float array."""
    return np.finfo(x.dtype).eps ** (1.0 / 3.0) * np.maximum(1.0, np.abs(x))


def central(f, x, first=None):
    """``[(f(x + h_i e_i) - f(x - h_i e_i)) / (2 h_i) for each i]`` with
    ``h = step(x)`` (a flat float ``x``; ``f`` gets a fresh copy of each
    point). ``first``, when given, evaluates the first point instead of
    ``f``; its None aborts (returns None)."""
    x = x.copy()
    h = step(x)
    cols = []
    for i in range(x.size):
        xi = x[i]
        x[i] = xi + h[i]
        fp = (first if first is not None and i == 0 else f)(x.copy())
        if fp is None:
            return None
        x[i] = xi - h[i]
        fm = f(x.copy())
        x[i] = xi
        cols.append((fp - fm) / (2 * h[i]))
    return cols


def jacobian(f, x):
    """The ``(m, n)`` Jacobian of a vector function of the flat float ``x``
    by ``central`` differences, in the precision of ``x``."""
    return np.stack(central(f, x), axis=1)


def directional(f, x, v, scale=None):
    r"""``(f(x + h v) - f(x - h v)) / (2 h)``, the derivative of ``f`` along
    ``v != 0`` at the flat ``x``, with :math:`h = \epsilon^{1/3} s / \|v\|`
    and :math:`s` = ``scale``, by default :math:`\max(1, \|x\|)` (the points
    are cast to ``x``'s dtype)."""
    if scale is None:
        scale = max(1.0, float(_dense.norm(x)))
    h = np.finfo(x.dtype).eps ** (1.0 / 3.0) * (scale / _dense.norm(v))
    hv = (h * v).astype(x.dtype, copy=False)
    return (f(x + hv) - f(x - hv)) / (2 * h)


def second_directional(f, x, v, f0=None, first=None, scale=None):
    r"""``f''(x)[v, v]`` by the second difference ``(f(x + h v) - 2 f(x) +
    f(x - h v)) / h^2``, :math:`h = \epsilon^{1/4} s / \|v\|` with :math:`s` =
    ``scale`` (default :math:`\max(1, \|x\|)`); ``f0``: ``f(x)`` when known;
    ``first`` as in ``central``."""
    if scale is None:
        scale = max(1.0, float(_dense.norm(x)))
    h = np.finfo(x.dtype).eps ** 0.25 * (scale / _dense.norm(v))
    v = v.astype(x.dtype, copy=False)
    fp = (first or f)(x + h * v)
    if fp is None:
        return None
    f0 = f(x) if f0 is None else f0
    return (fp - 2 * f0 + f(x - h * v)) / (h * h)


def hessian(f, x, first=None):
    r"""``H[..., j, k] = d^2 f / dx_j dx_k`` (shape ``(m, n, n)`` for an
    ``m``-vector ``f``) by the four-point stencil, :math:`h_j =
    \epsilon^{1/4} \max(1, |x_j|)`; ``first`` as in ``central``."""
    n = x.size
    if not n:
        return np.zeros((np.size(f(x)), 0, 0))
    h = np.finfo(x.dtype).eps ** 0.25 * np.maximum(1.0, np.abs(x))
    H = None
    for j in range(n):
        for k in range(j, n):
            ej = np.zeros(n, x.dtype)
            ek = np.zeros(n, x.dtype)
            ej[j], ek[k] = h[j], h[k]
            fpp = (first if first is not None and j == k == 0 else f)(x + ej + ek)
            if fpp is None:
                return None
            d = (fpp - f(x + ej - ek) - f(x - ej + ek) + f(x - ej - ek)) / (4 * h[j] * h[k])
            if H is None:
                H = np.empty((d.size, n, n), d.dtype)
            H[:, j, k] = H[:, k, j] = d
    return H


class FiniteDifferences:
    """Finite differences of one solver's function (see the module docstring):
    the precision it is differenced in, decided once, and the warning, given
    once. ``message`` replaces the warning's text after ``npopt.<owner>: ``
    (``{n}`` and ``{two_n}`` are filled in). ``float64=False``: always in the
    params' own precision (for a function that casts its values to it)."""

    def __init__(self, owner=None, what="fun", message=None, float64=None):
        self.owner, self.what, self.message = owner, what, message
        self.warned = owner is None
        self.float64 = float64          # False once fun was seen not to compute in float64

    def warn(self, n):
        """The slow-path warning, once (not for 0 parameters)."""
        if self.warned or n == 0:
            return
        self.warned = True
        from .solvers.base import warn     # the user's frame (base imports this module)
        if self.message is not None:
            warn(f"npopt.{self.owner}: " + self.message.format(n=n, two_n=2 * n),
                 FiniteDifferenceWarning)
            return
        warn(f"npopt.{self.owner}: no gradient of {self.what} was given (value_and_grad=False, "
             f"grad=None), so every gradient is computed by central finite differences, the "
             f"slow path: {2 * n} evaluations of {self.what} per gradient for its {n} "
             f"parameters, about 1e-10 relative error. Pass value_and_grad=True ({self.what} "
             f"returns (value, grad)) or grad= (the functions of npopt.objective carry their "
             f"gradients and are used as such)", FiniteDifferenceWarning)

    def points(self, evaluate, x, unravel):
        """``(f, x, first)`` to difference ``evaluate`` (a function of the params
        tree) at the ravelled params ``x``: in float64 (``f`` of float64 points,
        ``x`` cast) when a leaf is not float64 and ``evaluate`` computes in
        float64 on float64 input, else natively. ``first(z)`` evaluates the
        first point and decides: a result not in float64, or an exception,
        turns the float64 path off for good and returns None (start again)."""
        dtypes = set(unravel.segment_table.dtypes)
        if dtypes <= {_F64} or self.float64 is False or not x.size:
            dtype = np.result_type(np.float32, *dtypes) if dtypes else x.dtype
            return (lambda z: evaluate(unravel(z))), x.astype(dtype, copy=False), None
        _, unravel64 = T.ravel(T.tree_map(lambda leaf: np.asarray(leaf, np.float64),
                                          unravel(x)))

        def f64(z):
            return evaluate(unravel64(z))

        def first(z):
            try:
                out = f64(z)
            except Exception:       # noqa: BLE001 (fun takes float32 only)
                self.float64 = False
                return None
            if np.asarray(out).dtype != np.float64:
                self.float64 = False
                return None
            return out
        return f64, x.astype(np.float64), first

    def columns(self, evaluate, x, unravel):
        """``central`` differences of ``evaluate`` (scalar- or array-valued, of a
        params tree) at the ravelled ``x``, in the precision ``points`` picks."""
        f, xw, first = self.points(evaluate, x, unravel)
        cols = central(f, xw, first)
        return self.columns(evaluate, x, unravel) if cols is None else cols

    def __call__(self, fun, params, *args, **kwargs):
        """The gradient of a scalar ``fun(params, *args, **kwargs)``, a tree
        like ``params``."""
        from .solvers.base import check_value
        flat, unravel = T.ravel(params)
        if flat.dtype.kind == "c":
            raise TypeError(f"params: finite differences need real floating-point leaves, got "
                            f"{flat.dtype}; pass value_and_grad=True or grad= for complex params")
        dtype = flat.dtype if flat.dtype.kind == "f" else _F64
        self.warn(flat.size)
        cols = self.columns(lambda tree: check_value(fun(tree, *args, **kwargs), self.what),
                            flat, unravel)
        return unravel(np.asarray(cols, dtype))

    def jacobian(self, fun, params, args=(), kwargs=None, dtype=None):
        """The dense Jacobian ``(size(fun(x)), size(x))`` of a pytree-valued
        ``fun(params, *args, **kwargs)`` w.r.t. the ravelled params, cast to
        ``dtype`` (default: the params' floating dtype)."""
        kwargs = kwargs or {}
        flat, unravel = T.ravel(params)
        if dtype is None:
            dtype = flat.dtype if flat.dtype.kind == "f" else _F64
        self.warn(flat.size)

        def evaluate(tree):
            return T.ravel(fun(tree, *args, **kwargs))[0]
        if not flat.size:
            return np.zeros((evaluate(params).size, 0), dtype)
        return np.stack(self.columns(evaluate, flat, unravel), axis=1).astype(dtype, copy=False)

    def second_directional(self, evaluate, x, unravel, v, f0):
        """``second_directional`` of ``evaluate`` (a flat array of a params
        tree) along the flat ``v`` (the step scaled by ``x`` and ``v`` as
        given), in the precision ``points`` picks; ``f0``, ``evaluate`` at
        ``x``, is reused when that is ``x``'s own."""
        f, xw, first = self.points(evaluate, x, unravel)
        out = second_directional(f, xw, v, f0 if xw.dtype == x.dtype else None, first,
                                 scale=max(1.0, float(_dense.norm(x))))
        return self.second_directional(evaluate, x, unravel, v, f0) if out is None else out

    def hessian(self, evaluate, x, unravel):
        """``hessian`` of ``evaluate`` (as above) at ``x``."""
        f, xw, first = self.points(evaluate, x, unravel)
        H = hessian(f, xw, first)
        return self.hessian(evaluate, x, unravel) if H is None else H
