"""Argument handling shared by the projections: float leaves and arrays, bound
and radius checks, casts (every check runs before anything is computed).
"""
import numbers

import numpy as np

from .. import tree as _tree
from .._checks import _describe, check_number
from .._target import is_device_array


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# ---------------------------------------------------------------------------
# argument handling
# ---------------------------------------------------------------------------

def _leaf(name, x, device_ok=False):
    """A float32/float64 array (Python scalars become float64 0-d arrays)."""
    if is_device_array(x):
        if not device_ok:
            raise TypeError(
                f"{name}: CUDA arrays are supported by the elementwise projections "
                "(non_negative, box, hypercube, linf_ball) only; copy the array to "
                "the host (npopt never copies between host and device)")
        if np.dtype(x.dtype) not in _FLOATS:
            raise TypeError(f"{name}: expected float32 or float64 leaves, got dtype {x.dtype}")
        return x
    if isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{name}: expected floating-point arrays, got {x!r}")
    if isinstance(x, numbers.Real) and not isinstance(x, np.generic):
        if isinstance(x, numbers.Integral):
            raise TypeError(
                f"{name}: expected floating-point leaves (float32 or float64), got "
                f"the integer {x!r}")
        return np.asarray(x, np.float64)
    try:
        arr = np.asarray(x)
    except Exception:  # noqa: BLE001 - anything numpy cannot read
        raise TypeError(f"{name}: expected an array, got {_describe(x)}") from None
    if arr.dtype not in _FLOATS:
        raise TypeError(
            f"{name}: expected floating-point leaves (float32 or float64), got "
            f"{_describe(x) if isinstance(x, np.ndarray) else 'dtype ' + str(arr.dtype)}")
    return arr


def _vector(name, x, min_ndim=1):
    arr = _leaf(name, x)
    if arr.ndim < min_ndim:
        raise ValueError(f"{name}: expected an array with at least {min_ndim} "
                         f"dimension(s), got {_describe(arr)}")
    return arr


def _real_array(name, x):
    """Any real numeric array (for bounds, constraint data), not on a device."""
    if is_device_array(x):
        return x
    try:
        arr = np.asarray(x)
    except Exception:  # noqa: BLE001
        raise TypeError(f"{name}: expected a number or an array, got {_describe(x)}") from None
    if arr.dtype.kind not in "fiu" or arr.dtype == np.bool_:
        raise TypeError(f"{name}: expected a real number or array, got {_describe(x)}")
    return arr


def _pair(name, hyperparams, what, k=2):
    if not isinstance(hyperparams, (tuple, list)) or len(hyperparams) != k:
        raise TypeError(f"{name}: expected a tuple {what}, got {_describe(hyperparams)}")
    return tuple(hyperparams)


def _radius(name, value, positive):
    """A radius: a finite number > 0 (positive) or >= 0."""
    return float(check_number(name, value, low=0.0, low_open=positive))


def _is_scalar(b):
    return (isinstance(b, (numbers.Real, np.generic)) and not isinstance(b, (bool, np.bool_))) or (
        isinstance(b, np.ndarray) and b.ndim == 0)


def _cast(v, dtype):
    return np.asarray(v).astype(dtype)[()]


def _tree_leaves_float(name, x):
    leaves, treedef = _tree.tree_flatten(x)
    return [_leaf(name, v) for v in leaves], treedef
