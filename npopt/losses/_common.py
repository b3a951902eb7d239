"""Argument handling and the value / gradient plumbing shared by npopt.losses."""
import functools
import inspect
import numbers

import numpy as np

from .. import _math
from .._checks import _describe

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# ---------------------------------------------------------------------------
# the convention: f, f.grad, f.value_and_grad
# ---------------------------------------------------------------------------

def loss(impl, doc, module):
    """``(f, f_grad, f_value_and_grad)`` from ``impl(want_grad, *args, **kwargs)
    -> (value, grad or None)``; ``f`` takes ``impl``'s parameters after the
    first (optax's signature)."""
    sig = inspect.signature(impl)
    sig = sig.replace(parameters=list(sig.parameters.values())[1:])
    name = impl.__name__.lstrip("_")

    def value(*args, **kwargs):
        return impl(False, *args, **kwargs)[0]

    def grad(*args, **kwargs):
        return impl(True, *args, **kwargs)[1]

    def value_and_grad(*args, **kwargs):
        return impl(True, *args, **kwargs)

    first = next(iter(sig.parameters))
    for fn, suffix, text in (
            (value, "", doc),
            (grad, "_grad", f"Gradient of ``{name}`` (the sum of its values) with respect to "
                            f"``{first}``; same arguments, ``{first}``'s shape and dtype."),
            (value_and_grad, "_value_and_grad",
             f"``({name}(...), {name}_grad(...))`` in one pass; same arguments.")):
        fn.__name__ = fn.__qualname__ = name + suffix
        fn.__module__ = module
        fn.__doc__ = text
        fn.__signature__ = sig
    value.grad = grad
    value.value_and_grad = value_and_grad
    return value, grad, value_and_grad


def out(x, dtype=None):
    """An array of ``dtype``; 0-d results become NumPy scalars."""
    x = np.asarray(x)
    if dtype is not None and x.dtype != dtype:
        x = x.astype(dtype)
    return x[()] if x.ndim == 0 else x


# ---------------------------------------------------------------------------
# arguments
# ---------------------------------------------------------------------------

def floats(name, x):
    """A float32/float64 array (Python floats become float64); integers and
    booleans are refused, as optax's ``check_subdtype(x, jnp.floating)``."""
    if isinstance(x, (bool, np.bool_)) or isinstance(x, numbers.Integral):
        raise TypeError(f"{name}: expected floating-point numbers, got {x!r}")
    try:
        arr = np.asarray(x)
    except Exception:  # noqa: BLE001 - anything numpy cannot read
        raise TypeError(f"{name}: expected an array of floating-point numbers, got "
                        f"{_describe(x)}") from None
    if arr.dtype not in _FLOATS:
        raise TypeError(f"{name}: expected float32 or float64 numbers, got {_describe(x)}"
                        + (" (cast it to a float dtype)" if arr.dtype.kind in "biu" else ""))
    return arr


def numbers_(name, x, dtype):
    """A real array (floats, integers or booleans), cast to ``dtype``."""
    try:
        arr = np.asarray(x)
    except Exception:  # noqa: BLE001
        raise TypeError(f"{name}: expected an array of numbers, got {_describe(x)}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected real numbers, got {_describe(x)}")
    if arr.dtype.kind == "f" and arr.dtype not in _FLOATS:
        arr = arr.astype(np.float64)
    return arr.astype(np.result_type(arr.dtype, dtype) if arr.dtype.kind == "f" else dtype,
                      copy=False)


def integers(name, x):
    try:
        arr = np.asarray(x)
    except Exception:  # noqa: BLE001
        raise TypeError(f"{name}: expected integer labels, got {_describe(x)}") from None
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer labels, got {_describe(x)}")
    return arr


def scalar(name, x, dtype, low=None):
    """A real number (or 0-d array) in ``dtype`` (jax's weak typing)."""
    ok = isinstance(x, (numbers.Real, np.floating, np.integer)) and not isinstance(x, bool)
    if not ok and isinstance(x, np.ndarray) and x.ndim == 0 and x.dtype.kind in "fiu":
        ok = True
    if not ok:
        raise TypeError(f"{name}: expected a real number, got {_describe(x)}")
    if low is not None and not float(x) >= low:
        raise ValueError(f"{name}: expected a number >= {low}, got {x!r}")
    return np.dtype(dtype).type(x)


def same_shape(name, arr, shape, other):
    if arr.shape != tuple(shape):
        raise ValueError(f"{name}: expected the shape {tuple(shape)} of {other}, got shape "
                         f"{arr.shape}")


def broadcastable(name, arr, shape, other):
    try:
        ok = np.broadcast_shapes(arr.shape, shape) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{name}: expected an array broadcastable to the shape {tuple(shape)} "
                         f"of {other}, got shape {arr.shape}")


def axes(name, axis, ndim, allow_none=True):
    """``axis`` (an int, a tuple of ints, or None for all) as a sorted tuple of
    non-negative axes; out-of-range or repeated axes raise."""
    if axis is None:
        if not allow_none:
            raise TypeError(f"{name}: expected an int or a tuple of ints, got None")
        return tuple(range(ndim))
    items = axis if isinstance(axis, tuple) else (axis,)
    res = []
    for a in items:
        if isinstance(a, (bool, np.bool_)) or not isinstance(a, (numbers.Integral,)):
            raise TypeError(f"{name}: expected an int, a tuple of ints or None, got {axis!r}")
        a = int(a)
        if not -ndim <= a < ndim:
            raise ValueError(f"{name}: axis {a} is out of bounds for an array of dimension "
                             f"{ndim}")
        res.append(a % ndim)
    if len(set(res)) != len(res):
        raise ValueError(f"{name}: repeated axis in {axis!r}")
    return tuple(sorted(res))


def mask(name, where, shape, other):
    """``where`` as a boolean array broadcast to ``shape`` (None stays None)."""
    if where is None:
        return None
    w = np.asarray(where)
    if w.dtype.kind not in "biu":
        raise TypeError(f"{name}: expected booleans, got {_describe(where)}")
    broadcastable(name, w, shape, other)
    return np.broadcast_to(w.astype(bool, copy=False), shape)


def expand_mask(where, ndim, axis):
    """optax's ``jnp.expand_dims(where, axis)`` when ``where`` has fewer dimensions."""
    if where is None:
        return None
    w = np.asarray(where)
    if w.ndim != ndim:
        w = np.expand_dims(w, axis)
    return w


def msum(x, axis, where, keepdims=False):
    """``x.sum(axis, where=where)``."""
    if where is None:
        return np.sum(x, axis=axis, keepdims=keepdims)
    return np.sum(x, axis=axis, where=where, keepdims=keepdims)


def mmax(x, axis, where, keepdims=True):
    """``jnp.max(x, axis, where=where, initial=-inf, keepdims=True)``."""
    if where is None:
        return np.max(x, axis=axis, keepdims=keepdims, initial=-np.inf)
    return np.max(x, axis=axis, keepdims=keepdims, where=where, initial=-np.inf)


# ---------------------------------------------------------------------------
# elementwise building blocks (JAX's definitions and derivatives)
# ---------------------------------------------------------------------------

def errstate(fn):
    """Run ``fn`` with NumPy's float warnings off (JAX computes silently; the
    infinities and NaNs are selected away as in optax)."""
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with np.errstate(all="ignore"):
            return fn(*args, **kwargs)
    return wrapped


def _replace_inf(x):
    return np.where(np.isinf(x), np.zeros((), x.dtype), x)


def logaddexp(x1, x2):
    """``jnp.logaddexp``: ``max + log1p(exp(-|x1 - x2|))`` (``x1 + x2`` where
    the difference is NaN)."""
    x1, x2 = np.broadcast_arrays(x1, x2)
    amax = np.maximum(x1, x2)
    delta = x1 - x2
    res = np.where(np.isnan(delta), x1 + x2, amax + _math.log1p(_math.exp(-np.abs(delta))))
    return res.astype(amax.dtype, copy=False)


def logaddexp_partials(x1, x2, out_):
    """JAX's logaddexp derivative: ``exp(x_i - out)`` (infinities read as 0)."""
    ro = _replace_inf(np.asarray(out_))
    return (_math.exp(_replace_inf(np.asarray(x1)) - ro),
            _math.exp(_replace_inf(np.asarray(x2)) - ro))


def softplus_vg(x):
    """``jax.nn.softplus`` = ``logaddexp(x, 0)`` and its derivative."""
    zero = np.zeros((), x.dtype)
    v = logaddexp(x, zero)
    d = logaddexp_partials(x, zero, v)[0]
    return v.astype(x.dtype, copy=False), np.asarray(d).astype(x.dtype, copy=False)


def log_sigmoid_vg(x):
    """``jax.nn.log_sigmoid(x) = -softplus(-x)`` and its derivative."""
    v, d = softplus_vg(-x)
    return -v, d


def dmax(a, b):
    """Derivative of ``maximum(a, b)`` in ``a`` (JAX: 1/2 at ties)."""
    t = np.result_type(a, b)
    return np.where(a > b, t.type(1), np.where(a == b, t.type(0.5), t.type(0))).astype(t)


def log_softmax_vg(x, axis, where, ct):
    """``jax.nn.log_softmax(x, axis, where)`` and the vector-Jacobian product
    with the cotangent ``ct`` (zero where masked)."""
    x_max = mmax(x, axis, where)
    x_safe = x if where is None else np.where(where, x, -np.inf)
    shifted = x_safe - x_max
    e = _math.exp(shifted)
    s = msum(e, axis, where, keepdims=True)
    result = shifted - _math.log(s)
    if where is not None:
        result = np.where(where, result, -np.inf)
    g = None
    if ct is not None:
        ct = ct if where is None else np.where(where, ct, 0)
        ct_lse = -msum(ct, axis, where, keepdims=True)
        g = ct + (ct_lse / s) * e
        if where is not None:       # JAX's where passes no cotangent to masked entries
            g = np.where(where, g, 0)
    return result, g


def softmax(x, axis, where):
    """``jax.nn.softmax(x, axis, where)``."""
    x_max = mmax(x, axis, where)
    x_safe = x if where is None else np.where(where, x, -np.inf)
    u = _math.exp(x_safe - x_max)
    y = u / msum(u, axis, where, keepdims=True)
    if where is not None:
        y = np.where(where, y, 0)
    return y


def softmax_vjp(y, ct, axis, where):
    """``jax.nn.softmax``'s custom JVP transposed: ``y * (ct - sum(y * ct))``."""
    return y * ct - y * msum(y * ct, axis, where, keepdims=True)
