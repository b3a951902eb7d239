"""NumPy's elementary ufuncs, with the same bits on every CPU.

``exp(x)`` is ``np.exp(x)`` for float32/float64 arrays and scalars (other
inputs are computed in float64, as NumPy does for integers), evaluated by
``npopt.kernels.elementary``: the C library's scalar functions, not NumPy's
SIMD versions, whose roundings differ between AVX2 and AVX-512 machines. A
0-d input gives a NumPy scalar, as a ufunc does.
"""
import numpy as np

from .kernels import elementary as _k

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _float(x):
    x = np.asarray(x)
    if x.dtype not in _FLOATS:
        if x.dtype.kind == "c":
            raise TypeError(f"npopt._math: complex input ({x.dtype}) is not supported")
        x = x.astype(np.float64)
    return x


def _unary(kernel, x):
    x = _float(x)
    flat = np.ascontiguousarray(x).reshape(-1)
    out = np.empty_like(flat)
    if flat.size:
        kernel(flat, out)
    out = out.reshape(x.shape)
    return out[()] if out.ndim == 0 else out


def exp(x):
    return _unary(_k.exp, x)


def log(x):
    return _unary(_k.log, x)


def log1p(x):
    return _unary(_k.log1p, x)


def expm1(x):
    return _unary(_k.expm1, x)


def exp2(x):
    return _unary(_k.exp2, x)


def cos(x):
    return _unary(_k.cos, x)


def tanh(x):
    return _unary(_k.tanh, x)


def arctan(x):
    return _unary(_k.arctan, x)


def power(x, y):
    """``np.power(x, y)`` for floats (broadcasting as NumPy)."""
    x, y = np.asarray(x), np.asarray(y)
    dt = np.result_type(x, y)
    if dt not in _FLOATS:
        dt = np.dtype(np.float64)
    x, y = np.broadcast_arrays(x.astype(dt, copy=False), y.astype(dt, copy=False))
    shape = x.shape
    xf = np.ascontiguousarray(x).reshape(-1)
    yf = np.ascontiguousarray(y).reshape(-1)
    out = np.empty_like(xf)
    if xf.size:
        _k.power(xf, yf, out)
    out = out.reshape(shape)
    return out[()] if out.ndim == 0 else out
