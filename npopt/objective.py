r"""Common objective functions of ``jaxopt.objective``, each with its gradient.

Every objective has jaxopt 0.8.5's signature, e.g. ``least_squares(W, data)``
or ``ridge_regression(params, l2reg, data)`` with ``data = (X, y)``, and
returns the value. Since npopt has no autodiff, each also comes with

* ``<name>.value_and_grad(params, *args) -> (value, grad)``, the gradient
  with respect to ``params`` (same structure and shapes), also available as
  the module function ``<name>_value_and_grad``;
* ``<name>.grad(params, *args)`` / ``<name>_grad``.

The value-and-grad form is what solvers take with ``value_and_grad=True``::

    solver = npopt.LBFGS(fun=npopt.objective.binary_logreg.value_and_grad,
                         value_and_grad=True)
    params, state = solver.run(w0, data=(X, y))

and jaxopt's spelling works as well, exactly (not by finite differences): a
solver given one of these objectives as ``fun``, without ``value_and_grad``
or ``grad``, uses the gradient it carries::

    solver = npopt.LBFGS(fun=npopt.objective.binary_logreg)

==========================================  ==============================================
objective                                   value (``X, y = data``, n samples)
==========================================  ==============================================
least_squares(W, data)                      1/(2 m) ||X W - y||^2  (m = size of y)
ridge_regression(params, l2reg, data)       least_squares + l2reg/2 ||params||^2
binary_logreg(w, data)                      1/n sum_i binary_logistic_loss(y_i, x_i^T w)
multiclass_logreg(W, data)                  1/n sum_i multiclass_logistic_loss(y_i, W^T x_i)
multiclass_logreg_with_intercept            ... with scores W^T x_i + b, params = (W, b)
l2_multiclass_logreg(W, l2reg, data)        multiclass_logreg + l2reg/2 ||W||^2
l2_multiclass_logreg_with_intercept         ... with intercept (b is not penalised)
multiclass_linear_svm_dual(beta, l2reg,     1/(2 l2reg) ||X^T (Y - beta)||^2 + <beta, Y - 1>
   data)                                      (data = (X, Y), Y one-hot (n, k))
==========================================  ==============================================

``least_squares``, ``binary_logreg``, ``multiclass_logreg`` and
``multiclass_linear_svm_dual`` are instances of ``CompositeLinearFunction``
subclasses, as in jaxopt: functions of the form
``subfun(A @ params) + <params, b>`` whose gradient is
``A^T ∇subfun(A @ params) + b``; they expose ``make_linop``, ``subfun``,
``b`` and ``columnwise_lipschitz_const`` for coordinate-descent solvers.

Labels follow ``npopt.loss``: binary labels 0 or 1, integer class labels in
``[0, n_classes)``. Computations keep the dtype of ``X`` and ``params``
(NumPy's promotion between them).

References: Hastie, Tibshirani & Friedman, "The elements of statistical
learning", 2009 (least squares, ridge, logistic regression, ch. 3-4);
Crammer & Singer, "On the algorithmic implementation of multiclass
kernel-based vector machines", JMLR 2001 (the multiclass SVM dual);
Blondel, Fujino & Ueda, "Large-scale multiclass support vector machine
training via Euclidean projection onto the simplex", ICPR 2014.
"""
import numpy as np

from . import _dense
from . import loss as _loss
from ._checks import _describe, check_number

__all__ = [
    "CompositeLinearFunction", "LinearOperator",
    "least_squares", "ridge_regression", "binary_logreg", "multiclass_logreg",
    "multiclass_logreg_with_intercept", "l2_multiclass_logreg",
    "l2_multiclass_logreg_with_intercept", "multiclass_linear_svm_dual",
    "least_squares_value_and_grad", "least_squares_grad",
    "ridge_regression_value_and_grad", "ridge_regression_grad",
    "binary_logreg_value_and_grad", "binary_logreg_grad",
    "multiclass_logreg_value_and_grad", "multiclass_logreg_grad",
    "multiclass_logreg_with_intercept_value_and_grad", "multiclass_logreg_with_intercept_grad",
    "l2_multiclass_logreg_value_and_grad", "l2_multiclass_logreg_grad",
    "l2_multiclass_logreg_with_intercept_value_and_grad",
    "l2_multiclass_logreg_with_intercept_grad",
    "multiclass_linear_svm_dual_value_and_grad", "multiclass_linear_svm_dual_grad",
]


# ---------------------------------------------------------------------------
# argument handling
# ---------------------------------------------------------------------------

def _float_array(name, x):
    try:
        arr = np.asarray(x)
    except Exception:  # noqa: BLE001
        raise TypeError(f"{name}: expected an array, got {_describe(x)}") from None
    if arr.dtype.kind in "iu":
        return arr.astype(np.float64)
    if arr.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"{name}: expected float32 or float64 numbers, got {_describe(x)}")
    return arr


def _data(data):
    """``(X, y)`` with X a float matrix (n_samples, n_features)."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"data: expected a tuple (X, y), got {_describe(data)}")
    X = _float_array("data[0] (X)", data[0])
    if X.ndim != 2:
        raise ValueError(f"data[0] (X): expected a matrix (n_samples, n_features), got "
                         f"shape {X.shape}")
    return X, data[1]


def _weights(name, W, X, ndims=(1, 2)):
    W = _float_array(name, W)
    if W.ndim not in ndims or W.shape[0] != X.shape[1]:
        want = " or ".join(f"({X.shape[1]},)" if d == 1 else f"({X.shape[1]}, k)"
                           for d in ndims)
        raise ValueError(f"{name}: expected shape {want} to match X of shape {X.shape}, "
                         f"got shape {W.shape}")
    return W


def _l2reg(l2reg, positive=False):
    """A Python float (weakly typed, as in jaxopt: it never promotes float32)."""
    return float(check_number("l2reg", l2reg, low=0, low_open=positive))


def _check_labels(y, n, n_classes=None):
    """y of shape (n,): integer labels in [0, n_classes), or 0/1 when n_classes is None."""
    name = "data[1] (y)"
    y = np.asarray(y)
    what = "an integer label" if n_classes else "a label 0 or 1"
    if y.shape != (n,):
        raise ValueError(f"{name}: expected shape ({n},) ({what} per row of X), got shape "
                         f"{y.shape}")
    if n_classes is None:
        if y.dtype.kind not in "biuf" or not np.all((y == 0) | (y == 1)):
            raise ValueError(f"{name}: expected binary labels 0 or 1, got {_describe(y)}")
    else:
        if y.dtype.kind not in "iu":
            raise TypeError(f"{name}: expected integer class labels, got {_describe(y)}")
        if y.size and (y.min() < 0 or y.max() >= n_classes):
            raise ValueError(f"{name}: expected class labels in [0, {n_classes}), got values "
                             f"in [{y.min()}, {y.max()}]")
    return y


def _pair(params):
    if not isinstance(params, (tuple, list)) or len(params) != 2:
        raise TypeError(f"params: expected a tuple (W, b), got {_describe(params)}")
    return params


def _scalar(v):
    return np.asarray(v)[()]


def _with_grad(value_fn, vg_fn):
    def grad(*args, **kwargs):
        return vg_fn(*args, **kwargs)[1]
    grad.__name__ = value_fn.__name__ + "_grad"
    grad.__doc__ = f"Gradient of ``{value_fn.__name__}`` with respect to its first argument."
    value_fn.value_and_grad = vg_fn
    value_fn.grad = grad
    value_fn._npopt_value_and_grad = vg_fn     # solvers given fun=value_fn use it
    return grad


# ---------------------------------------------------------------------------
# linear operators and composite linear functions
# ---------------------------------------------------------------------------

class LinearOperator:
    """A matrix ``A`` seen as a linear operator (jaxopt's ``base.LinearOperator``)."""

    def __init__(self, A):
        self.A = np.asarray(A)

    def shape(self):
        return self.A.shape

    def matvec(self, x):
        """Computes dot(A, x)."""
        return _dense.dot(self.A, x)

    def matvec_element(self, x, idx):
        """Computes dot(A, x)[idx]."""
        return _dense.dot(self.A[idx], x)

    def rmatvec(self, x):
        """Computes dot(A.T, x)."""
        return _dense.dot(self.A.T, x)

    def rmatvec_element(self, x, idx):
        """Computes dot(A.T, x)[idx]."""
        return _dense.dot(self.A[:, idx], x)

    def update_matvec(self, Ax, delta, idx):
        """Updates dot(A, x) when x[idx] += delta."""
        if len(Ax.shape) == 1:
            return Ax + delta * self.A[:, idx]
        elif len(Ax.shape) == 2:
            return Ax + np.outer(self.A[:, idx], delta)
        raise ValueError(f"Ax: expected a vector or a matrix, got shape {Ax.shape}")

    def update_rmatvec(self, ATx, delta, idx):
        """Updates dot(A.T, x) when x[idx] += delta."""
        if len(ATx.shape) == 1:
            return ATx + delta * self.A[idx]
        elif len(ATx.shape) == 2:
            raise NotImplementedError
        raise ValueError(f"ATx: expected a vector or a matrix, got shape {ATx.shape}")

    def column_l2_norms(self, squared=False):
        ret = np.sum(self.A ** 2, axis=0)
        return ret if squared else np.sqrt(ret)


class CompositeLinearFunction:
    """Functions of the form (jaxopt's ``CompositeLinearFunction``)::

        fun(params, *args, **kwargs) =
          subfun(linop.matvec(params), *args, **kwargs) + vdot(params, b(*args, **kwargs))

    with ``linop = make_linop(*args, **kwargs)``. By the chain rule

    .. math::  \\nabla fun(params) = A^T \\nabla subfun(A\\,params) + b.

    Subclasses implement ``make_linop``, ``subfun`` and, for gradients (npopt
    has no autodiff), ``subfun_grad`` or ``subfun_value_and_grad``;
    optionally ``b``.
    """

    def b(self, *args, **kwargs):
        """Linear term in the function."""
        return None

    def lipschitz_const(self, hyperparams):
        """Lipschitz-constant of subfun."""
        raise NotImplementedError

    def subfun(self, predictions, *args, **kwargs):
        """To be implemented by the child class."""
        raise NotImplementedError

    def subfun_grad(self, predictions, *args, **kwargs):
        """Gradient of ``subfun`` in ``predictions`` (npopt): implement this or
        ``subfun_value_and_grad``."""
        raise NotImplementedError(
            f"{type(self).__name__}: implement subfun_grad or subfun_value_and_grad to get "
            "gradients (npopt has no autodiff)")

    def subfun_value_and_grad(self, predictions, *args, **kwargs):
        """``(subfun(predictions, ...), subfun_grad(predictions, ...))``."""
        return (self.subfun(predictions, *args, **kwargs),
                self.subfun_grad(predictions, *args, **kwargs))

    def __call__(self, params, *args, **kwargs):
        linop = self.make_linop(*args, **kwargs)
        predictions = linop.matvec(params)
        ret = self.subfun(predictions, *args, **kwargs)
        b = self.b(*args, **kwargs)
        if b is not None:
            ret = ret + _dense.vdot(params, b)
        return _scalar(ret)

    def value_and_grad(self, params, *args, **kwargs):
        """``(fun(params, ...), A^T ∇subfun(A params) + b)``."""
        linop = self.make_linop(*args, **kwargs)
        predictions = linop.matvec(params)
        value, g = self.subfun_value_and_grad(predictions, *args, **kwargs)
        grad = linop.rmatvec(g)
        b = self.b(*args, **kwargs)
        if b is not None:
            value = value + _dense.vdot(params, b)
            grad = grad + b
        return _scalar(value), grad

    def grad(self, params, *args, **kwargs):
        """Gradient of ``fun`` with respect to ``params``."""
        return self.value_and_grad(params, *args, **kwargs)[1]

    @property
    def _npopt_value_and_grad(self):
        """``value_and_grad`` when this function has a gradient (its class
        implements ``subfun_grad``, ``subfun_value_and_grad`` or
        ``value_and_grad``), else None: a solver given ``fun=self`` without
        ``value_and_grad``/``grad`` then uses it instead of finite differences."""
        cls, base_cls = type(self), CompositeLinearFunction
        if (cls.subfun_grad is base_cls.subfun_grad
                and cls.subfun_value_and_grad is base_cls.subfun_value_and_grad
                and cls.value_and_grad is base_cls.value_and_grad):
            return None
        return self.value_and_grad


# ---------------------------------------------------------------------------
# least squares and ridge regression
# ---------------------------------------------------------------------------

def _ls_checked(W, data):
    X, y = _data(data)
    W = _weights("W", W, X)
    y = _float_array("data[1] (y)", y)
    want = (X.shape[0],) + W.shape[1:]
    if y.shape != want:
        raise ValueError(f"data[1] (y): expected shape {want} (the shape of X @ W), got "
                         f"shape {y.shape}")
    return W, (X, y)


class LeastSquares(CompositeLinearFunction):
    """Least squares, ``1/(2m) ||X W - y||^2``."""

    def subfun(self, predictions, data):
        residuals = predictions - data[1]
        return 0.5 * np.mean(residuals ** 2)

    def subfun_value_and_grad(self, predictions, data):
        residuals = predictions - data[1]
        return 0.5 * np.mean(residuals ** 2), residuals / residuals.dtype.type(residuals.size)

    def subfun_grad(self, predictions, data):
        return self.subfun_value_and_grad(predictions, data)[1]

    def make_linop(self, data):
        """Creates linear operator."""
        return LinearOperator(data[0])

    def columnwise_lipschitz_const(self, data):
        """Column-wise Lipschitz constants."""
        return self.make_linop(data).column_l2_norms(squared=True) * 1.0

    def __call__(self, W, data):
        r"""Least squares.

        .. math::  \frac{1}{2m} \|XW - y\|_2^2

        (``m`` the number of entries of ``y``: the mean over samples, and
        over outputs when ``W`` and ``y`` have a column per output.)
        Gradient: ``X^T (X W - y) / m``.

        Args:
          W: parameters, shape ``(n_features,)`` or ``(n_features, k)``.
          data: a tuple ``(X, y)`` where ``X`` is a matrix of shape
            ``(n_samples, n_features)`` and ``y`` has shape ``(n_samples,)``
            (or ``(n_samples, k)``).
        Returns:
          objective value.

        Example::

          value = least_squares(W, (X, y))
        """
        W, data = _ls_checked(W, data)
        return super().__call__(W, data)

    def value_and_grad(self, W, data):
        """``(least_squares(W, data), X^T (X W - y) / m)``."""
        W, data = _ls_checked(W, data)
        return super().value_and_grad(W, data)


least_squares = LeastSquares()
least_squares.__doc__ = LeastSquares.__call__.__doc__
least_squares_value_and_grad = least_squares.value_and_grad
least_squares_grad = least_squares.grad


def ridge_regression_value_and_grad(params, l2reg, data):
    """``(ridge_regression(params, l2reg, data), X^T (X W - y) / m + l2reg W)``."""
    l2reg = _l2reg(l2reg)
    value, grad = least_squares.value_and_grad(params, data)
    W = np.asarray(params).astype(grad.dtype, copy=False)
    t = grad.dtype.type
    return _scalar(value + t(0.5 * l2reg) * np.sum(W ** 2)), grad + t(l2reg) * W


def ridge_regression(params, l2reg, data):
    r"""Ridge regression, i.e. L2-regularized least squares.

    .. math::  \frac{1}{2m} \|XW - y\|_2^2 + \frac{\text{l2reg}}{2} \|W\|_2^2

    Args:
      params: parameters W, shape ``(n_features,)`` or ``(n_features, k)``.
      l2reg: strength of regularization, a number >= 0.
      data: a tuple ``(X, y)`` where ``X`` is a matrix of shape ``(n_samples,
        n_features)`` and ``y`` is a vector of shape ``(n_samples,)``.
    Returns:
      objective value.

    Example::

      value = ridge_regression(W, l2reg, (X, y))
    """
    return ridge_regression_value_and_grad(params, l2reg, data)[0]


ridge_regression_grad = _with_grad(ridge_regression, ridge_regression_value_and_grad)


# ---------------------------------------------------------------------------
# logistic regression
# ---------------------------------------------------------------------------

def _mean_loss_vg(loss_vg, y, predictions):
    """Mean over samples of a per-sample loss, and its gradient in predictions."""
    values, g = loss_vg(y, predictions)
    n = np.shape(values)[0] if np.ndim(values) else 1
    return np.mean(values), g / g.dtype.type(n)


def _multiclass_checked(W, data, name="W"):
    X, y = _data(data)
    W = _weights(name, W, X, ndims=(2,))
    return W, (X, _check_labels(y, X.shape[0], W.shape[1]))


class MulticlassLogreg(CompositeLinearFunction):
    """Multiclass logistic regression objective."""

    def subfun(self, predictions, data):
        return np.mean(_loss.multiclass_logistic_loss(data[1], predictions))

    def subfun_value_and_grad(self, predictions, data):
        return _mean_loss_vg(_loss.multiclass_logistic_loss_value_and_grad, data[1],
                             predictions)

    def subfun_grad(self, predictions, data):
        return self.subfun_value_and_grad(predictions, data)[1]

    def make_linop(self, data):
        """Creates linear operator."""
        return LinearOperator(data[0])

    def columnwise_lipschitz_const(self, data):
        """Column-wise Lipschitz constants."""
        return self.make_linop(data).column_l2_norms(squared=True) * 0.5

    def __call__(self, W, data):
        r"""Multiclass logistic regression.

        .. math::  \frac{1}{n} \sum_{i=1}^n \ell(y_i, W^\top x_i)

        where ``ℓ`` is ``npopt.loss.multiclass_logistic_loss`` and
        ``X, y = data``. Gradient: ``X^T (softmax(X W) - Y) / n`` with ``Y``
        the one-hot labels.

        Args:
          W: a matrix of shape ``(n_features, n_classes)``.
          data: a tuple ``(X, y)`` where ``X`` is a matrix of shape
            ``(n_samples, n_features)`` and ``y`` is a vector of shape
            ``(n_samples,)`` of integer labels.
        Returns:
          objective value.

        Example::

          value = multiclass_logreg(W, (X, y))
        """
        W, data = _multiclass_checked(W, data)
        return super().__call__(W, data)

    def value_and_grad(self, W, data):
        """``(multiclass_logreg(W, data), X^T (softmax(X W) - Y) / n)``."""
        W, data = _multiclass_checked(W, data)
        return super().value_and_grad(W, data)


multiclass_logreg = MulticlassLogreg()
multiclass_logreg.__doc__ = MulticlassLogreg.__call__.__doc__
multiclass_logreg_value_and_grad = multiclass_logreg.value_and_grad
multiclass_logreg_grad = multiclass_logreg.grad


def _intercept_vg(params, l2reg, data):
    W, b = _pair(params)
    W, (X, y) = _multiclass_checked(W, data, "params[0] (W)")
    b = _float_array("params[1] (b)", b)
    if b.shape != (W.shape[1],):
        raise ValueError(f"params[1] (b): expected shape ({W.shape[1]},) (one intercept per "
                         f"class), got shape {b.shape}")
    y_pred = _dense.dot(X, W) + b
    value, g = _mean_loss_vg(_loss.multiclass_logistic_loss_value_and_grad, y, y_pred)
    gW, gb = _dense.dot(X.T, g), g.sum(axis=0)
    if l2reg is not None:
        t = gW.dtype.type
        value = value + t(0.5 * l2reg) * np.sum(W ** 2)
        gW = gW + t(l2reg) * W
    grads = (gW, gb)
    return _scalar(value), (type(params)(grads) if isinstance(params, list) else grads)


def multiclass_logreg_with_intercept_value_and_grad(params, data):
    """``(multiclass_logreg_with_intercept(params, data), (grad_W, grad_b))``."""
    return _intercept_vg(params, None, data)


def multiclass_logreg_with_intercept(params, data):
    r"""Multiclass logistic regression with intercept.

    .. math::  \frac{1}{n} \sum_{i=1}^n \ell(y_i, W^\top x_i + b)

    where ``ℓ`` is ``npopt.loss.multiclass_logistic_loss``, ``W, b = params``
    and ``X, y = data``. Gradient: ``(X^T G / n, sum_i G_i / n)`` with
    ``G = softmax(X W + b) - Y``.

    Args:
      params: a tuple ``(W, b)``, where ``W`` is a matrix of shape
        ``(n_features, n_classes)`` and ``b`` a vector of shape ``(n_classes,)``.
      data: a tuple ``(X, y)`` where ``X`` is a matrix of shape ``(n_samples,
        n_features)`` and ``y`` is a vector of shape ``(n_samples,)``.
    Returns:
      objective value.
    """
    return multiclass_logreg_with_intercept_value_and_grad(params, data)[0]


multiclass_logreg_with_intercept_grad = _with_grad(
    multiclass_logreg_with_intercept, multiclass_logreg_with_intercept_value_and_grad)


def l2_multiclass_logreg_value_and_grad(W, l2reg, data):
    """``(l2_multiclass_logreg(W, l2reg, data), X^T (softmax(X W) - Y) / n + l2reg W)``."""
    l2reg = _l2reg(l2reg)
    value, grad = multiclass_logreg.value_and_grad(W, data)
    W = np.asarray(W).astype(grad.dtype, copy=False)
    t = grad.dtype.type
    return _scalar(value + t(0.5 * l2reg) * np.sum(W ** 2)), grad + t(l2reg) * W


def l2_multiclass_logreg(W, l2reg, data):
    r"""L2-regularized multiclass logistic regression.

    .. math::  \frac{1}{n} \sum_{i=1}^n \ell(y_i, W^\top x_i)
               + \frac{\text{l2reg}}{2} \|W\|_2^2

    where ``ℓ`` is ``npopt.loss.multiclass_logistic_loss`` and ``X, y = data``.

    Args:
      W: a matrix of shape ``(n_features, n_classes)``.
      l2reg: strength of regularization, a number >= 0.
      data: a tuple ``(X, y)`` where ``X`` is a matrix of shape ``(n_samples,
        n_features)`` and ``y`` is a vector of shape ``(n_samples,)``.
    Returns:
      objective value.
    """
    return l2_multiclass_logreg_value_and_grad(W, l2reg, data)[0]


l2_multiclass_logreg_grad = _with_grad(l2_multiclass_logreg, l2_multiclass_logreg_value_and_grad)


def l2_multiclass_logreg_with_intercept_value_and_grad(params, l2reg, data):
    """``(l2_multiclass_logreg_with_intercept(params, l2reg, data), (grad_W, grad_b))``."""
    return _intercept_vg(params, _l2reg(l2reg), data)


def l2_multiclass_logreg_with_intercept(params, l2reg, data):
    r"""L2-regularized multiclass logistic regression with intercept.

    .. math::  \frac{1}{n} \sum_{i=1}^n \ell(y_i, W^\top x_i + b)
               + \frac{\text{l2reg}}{2} \|W\|_2^2

    where ``ℓ`` is ``npopt.loss.multiclass_logistic_loss``, ``W, b = params``
    and ``X, y = data`` (the intercept is not penalised).

    Args:
      params: a tuple ``(W, b)``, where ``W`` is a matrix of shape
        ``(n_features, n_classes)`` and ``b`` a vector of shape ``(n_classes,)``.
      l2reg: strength of regularization, a number >= 0.
      data: a tuple ``(X, y)`` where ``X`` is a matrix of shape ``(n_samples,
        n_features)`` and ``y`` is a vector of shape ``(n_samples,)``.
    Returns:
      objective value.
    """
    return l2_multiclass_logreg_with_intercept_value_and_grad(params, l2reg, data)[0]


l2_multiclass_logreg_with_intercept_grad = _with_grad(
    l2_multiclass_logreg_with_intercept, l2_multiclass_logreg_with_intercept_value_and_grad)


def _binary_checked(w, data):
    X, y = _data(data)
    w = _weights("w", w, X, ndims=(1,))
    return w, (X, _check_labels(y, X.shape[0]))


class BinaryLogreg(CompositeLinearFunction):
    """Binary logistic regression objective."""

    def subfun(self, predictions, data):
        return np.mean(_loss.binary_logistic_loss(data[1], predictions))

    def subfun_value_and_grad(self, predictions, data):
        return _mean_loss_vg(_loss.binary_logistic_loss_value_and_grad, data[1], predictions)

    def subfun_grad(self, predictions, data):
        return self.subfun_value_and_grad(predictions, data)[1]

    def make_linop(self, data):
        """Creates linear operator."""
        return LinearOperator(data[0])

    def columnwise_lipschitz_const(self, data):
        """Column-wise Lipschitz constants."""
        return self.make_linop(data).column_l2_norms(squared=True) * 0.25

    def __call__(self, w, data):
        r"""Binary logistic regression.

        .. math::  \frac{1}{n} \sum_{i=1}^n \ell(y_i, w^\top x_i)

        where ``ℓ`` is ``npopt.loss.binary_logistic_loss`` and
        ``X, y = data``. Gradient: ``X^T (sigmoid(X w) - y) / n``.

        Args:
          w: a vector of shape ``(n_features,)``.
          data: a tuple ``(X, y)`` where ``X`` is a matrix of shape
            ``(n_samples, n_features)`` and ``y`` is a vector of shape
            ``(n_samples,)`` containing ``0`` or ``1`` values.
        Returns:
          objective value.

        Example::

          value = binary_logreg(w, (X, y))
        """
        w, data = _binary_checked(w, data)
        return super().__call__(w, data)

    def value_and_grad(self, w, data):
        """``(binary_logreg(w, data), X^T (sigmoid(X w) - y) / n)``."""
        w, data = _binary_checked(w, data)
        return super().value_and_grad(w, data)


binary_logreg = BinaryLogreg()
binary_logreg.__doc__ = BinaryLogreg.__call__.__doc__
binary_logreg_value_and_grad = binary_logreg.value_and_grad
binary_logreg_grad = binary_logreg.grad


# ---------------------------------------------------------------------------
# multiclass linear SVM, dual
# ---------------------------------------------------------------------------

def _svm_checked(beta, l2reg, data):
    l2reg = _l2reg(l2reg, positive=True)
    X, Y = _data(data)
    Y = _float_array("data[1] (Y)", Y)
    if Y.ndim != 2 or Y.shape[0] != X.shape[0]:
        raise ValueError(f"data[1] (Y): expected one-hot labels of shape ({X.shape[0]}, "
                         f"n_classes), got shape {Y.shape}")
    beta = _float_array("params", beta)
    if beta.shape != Y.shape:
        raise ValueError(f"params: expected the shape {Y.shape} of Y (one dual variable per "
                         f"sample and class), got shape {beta.shape}")
    return beta, l2reg, (X, Y)


class MulticlassLinearSvmDual(CompositeLinearFunction):
    r"""Dual objective function of multiclass linear SVMs (Crammer & Singer).

    With ``V(beta) = X^T (Y - beta)``, the (negated, to be minimised) dual is

    .. math::  f(\beta) = \frac{1}{2\,\text{l2reg}} \|V(\beta)\|^2
               + \langle \beta, Y - 1 \rangle,

    to minimise over ``beta`` with rows in the simplex; the primal solution is
    ``W = V(beta) / l2reg``. Gradient: ``-X V(beta) / l2reg + Y - 1``.
    Call as ``multiclass_linear_svm_dual(beta, l2reg, (X, Y))``.
    """

    def subfun(self, Xbeta, l2reg, data):
        X, Y = data
        # The dual objective is:
        # fun(beta) = vdot(beta, 1 - Y) - 0.5 / l2reg * ||V(beta)||^2
        # where V(beta) = dot(X.T, Y) - dot(X.T, beta); with opposite sign here.
        V = _dense.dot(X.T, Y) - Xbeta
        return 0.5 / l2reg * _dense.vdot(V, V)

    def subfun_value_and_grad(self, Xbeta, l2reg, data):
        X, Y = data
        V = _dense.dot(X.T, Y) - Xbeta
        t = V.dtype.type
        return t(0.5 / l2reg) * _dense.vdot(V, V), -V * t(1.0 / l2reg)

    def subfun_grad(self, Xbeta, l2reg, data):
        return self.subfun_value_and_grad(Xbeta, l2reg, data)[1]

    def make_linop(self, l2reg, data):
        """Creates linear operator."""
        return LinearOperator(data[0].T)

    def columnwise_lipschitz_const(self, l2reg, data):
        """Column-wise Lipschitz constants."""
        return self.make_linop(l2reg, data).column_l2_norms(squared=True)

    def b(self, l2reg, data):
        return data[1] - 1

    def __call__(self, params, l2reg, data):
        params, l2reg, data = _svm_checked(params, l2reg, data)
        return super().__call__(params, l2reg, data)

    def value_and_grad(self, params, l2reg, data):
        """``(f(beta), -X V(beta) / l2reg + Y - 1)``."""
        params, l2reg, data = _svm_checked(params, l2reg, data)
        return super().value_and_grad(params, l2reg, data)


multiclass_linear_svm_dual = MulticlassLinearSvmDual()
multiclass_linear_svm_dual.__doc__ = MulticlassLinearSvmDual.__doc__
multiclass_linear_svm_dual_value_and_grad = multiclass_linear_svm_dual.value_and_grad
multiclass_linear_svm_dual_grad = multiclass_linear_svm_dual.grad
