"""Argument checks run at the API edge, before any buffer is touched.

Every message names the argument, what was expected and what was got:
``"learning_rate: expected a finite number >= 0 or a schedule, got -1.0"``.
Validation happens here in Python, never inside numba kernels (where a
message cannot carry values).
"""
import math
import numbers

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
COMPLEX_DTYPES = (np.dtype(np.complex64), np.dtype(np.complex128))
INEXACT_DTYPES = FLOAT_DTYPES + COMPLEX_DTYPES
_REAL = {np.dtype(np.float32): np.dtype(np.float32), np.dtype(np.float64): np.dtype(np.float64),
         np.dtype(np.complex64): np.dtype(np.float32),
         np.dtype(np.complex128): np.dtype(np.float64)}


def real_dtype(dtype):
    """The real dtype of a float or complex dtype (complex64 -> float32): the
    dtype of a complex rule's hyperparameters and norms."""
    return _REAL[dtype]


def is_narrow(dtype):
    """float16, or bfloat16 (``ml_dtypes.bfloat16``, the dtype JAX and torch
    share): stored in 16 bits, computed in float32 (see ``compute_dtype``)."""
    return dtype.itemsize == 2 and (dtype.kind == "f" or dtype.name == "bfloat16")


def compute_dtype(dtype):
    """The dtype a kernel computes a leaf of ``dtype`` in: float32 for the
    16-bit floats (numba has no arithmetic for them; XLA computes them in
    float32 too and rounds once per stored result), else ``dtype``."""
    return _F32 if dtype.itemsize == 2 and is_narrow(dtype) else dtype


_F32 = np.dtype(np.float32)


def _describe(x):
    if isinstance(x, (np.ndarray, np.generic)) and x.ndim == 0 and is_narrow(x.dtype):
        return f"{float(x)!r} ({x.dtype})"          # e.g. 0.999 rounded to bfloat16: 1.0
    if isinstance(x, np.ndarray):
        return f"array(shape={x.shape}, dtype={x.dtype})"
    return repr(x) if isinstance(x, (numbers.Number, str, type(None))) else type(x).__name__


def check_number(name, x, *, low=None, high=None, low_open=False, high_open=False,
                 allow_none=False):
    """A finite real scalar within [low, high] (bounds open when asked).

    Returns it, a 0-d array as its NumPy scalar: JAX treats both alike
    (strongly typed), and npopt's hyperparameter arithmetic takes scalars.
    """
    if x is None and allow_none:
        return x
    ok = isinstance(x, (numbers.Real, np.floating, np.integer)) or (
        isinstance(x, (np.ndarray, np.generic)) and x.ndim == 0
        and (x.dtype.kind in "fiu" or is_narrow(x.dtype)))   # bfloat16: kind 'V'
    if ok:
        v = float(x)
        ok = math.isfinite(v)
        if ok and low is not None:
            ok = v > low if low_open else v >= low
        if ok and high is not None:
            ok = v < high if high_open else v <= high
    if not ok:
        lo = "" if low is None else (f" > {low}" if low_open else f" >= {low}")
        hi = "" if high is None else (f" < {high}" if high_open else f" <= {high}")
        rng = (lo + (" and" if lo and hi else "") + hi) if (lo or hi) else ""
        raise ValueError(f"{name}: expected a finite number{rng}, got {_describe(x)}")
    if isinstance(x, np.ndarray):
        return x[()]          # a 0-d array is its NumPy scalar (strongly typed, as in JAX)
    return x


def check_scalar_or_schedule(name, x, *, allow_none=False):
    """A learning rate: a finite number >= 0, or a callable of the step count."""
    if x is None and allow_none:
        return x
    if callable(x):
        return x
    try:
        return check_number(name, x, low=0.0)
    except ValueError:
        raise ValueError(
            f"{name}: expected a finite number >= 0 or a schedule (a callable of "
            f"the step count), got {_describe(x)}") from None


def check_callable(name, f, *, allow_none=False):
    """A callable (or None when allowed)."""
    if f is None and allow_none:
        return f
    if not callable(f):
        raise TypeError(f"{name}: expected a callable, got {type(f).__name__}")
    return f


def check_bool(name, x):
    if not isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {_describe(x)}")
    return bool(x)


def check_float_dtype(name, dtype, allow_none=True, narrow_ok=False):
    """None (keep the params' dtype), float32 or float64; with ``narrow_ok``
    also float16 and bfloat16 (a state stored in 16 bits, see ``is_narrow``)."""
    if dtype is None and allow_none:
        return None
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or not (dt in FLOAT_DTYPES or (narrow_ok and is_narrow(dt))):
        # (np.dtype('float64') == None is True: hence the explicit tests)
        want = ("None, float32, float64, float16 or bfloat16" if narrow_ok
                else "None, float32 or float64")
        raise TypeError(f"{name}: expected {want}, got {dtype!r}")
    return dt


def check_state(name, state, cls, owner):
    """The state passed to ``update`` must be the one ``owner.init`` made."""
    if not isinstance(state, cls):
        raise TypeError(
            f"{name}: expected a {cls.__name__} (the state made by {owner}.init), "
            f"got {type(state).__name__}; was this state made by another optimizer?")
    return state


def fail_leaf_dtype(name, dtype, what="params"):
    """``what``: the argument the leaf belongs to, as the user calls it."""
    what = what.split(".")[0].split(" ")[0]
    if np.dtype(dtype) in COMPLEX_DTYPES:
        raise TypeError(
            f"{name}: got a leaf of dtype {dtype}; complex {what} are not supported by "
            f"this rule (optax's complex semantics, moments of |g|^2, are defined for the "
            f"rules listed in npopt's README, 'Complex parameters'; this one would give "
            f"a meaningless update)")
    raise TypeError(
        f"{name}: expected floating-point leaves (float32 or float64), got a leaf "
        f"of dtype {dtype}; integer and complex {what} are not supported by this rule")


def check_finite_scalar(name, x, when=""):
    """A per-step hyperparameter (a schedule's value) must be finite."""
    try:
        ok = bool(np.all(np.isfinite(x)))
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"{name}: expected a finite number{when}, got {_describe(x)}")
    return x
