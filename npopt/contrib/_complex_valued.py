r"""``split_real_and_imaginary`` (optax.contrib 0.2.8): complex parameters for
rules written for real ones.

Every complex leaf :math:`z = x + iy` of the params and updates becomes a
``SplitRealAndImaginaryArrays(real=x, imaginary=y)`` node (two real leaves)
before the inner transformation sees them; the inner updates
:math:`(u_x, u_y)` are merged back as :math:`u_x + u_y \cdot i`. Real leaves
pass through unchanged. The inner rule thus treats :math:`x` and :math:`y`
as independent real parameters (for Adam: separate second moments of the
real and imaginary parts, not :math:`|g|^2`), and it needs no complex
support of its own: npopt's kernels work on real buffers.
"""
from typing import Any, NamedTuple

import numpy as np

from .. import _checks
from .._target import is_device_array
from ..base import GradientTransformation
from ..transforms.combine import as_transformation
from ..tree import tree_map


class SplitRealAndImaginaryArrays(NamedTuple):
    """A pair of real arrays split from a complex array."""
    real: Any
    imaginary: Any


class SplitRealAndImaginaryState(NamedTuple):
    """The inner transformation's state (made for the split params)."""
    inner_state: Any


def _complex_to_real_pair(x):
    if np.iscomplexobj(x):
        if is_device_array(x):
            raise NotImplementedError("split_real_and_imaginary: complex CUDA device arrays "
                                      "are not supported (they are split on the host)")
        x = np.asarray(x)
        # copies (C-contiguous, of x's shape: np.ascontiguousarray would make a
        # 0-d leaf 1-d)
        return SplitRealAndImaginaryArrays(x.real.copy(), x.imag.copy())
    return x


def _real_pair_to_complex(x):
    if isinstance(x, SplitRealAndImaginaryArrays):
        re, im = np.asarray(x.real), np.asarray(x.imaginary)
        z = np.empty(np.broadcast_shapes(re.shape, im.shape),
                     np.result_type(re.dtype, im.dtype, np.complex64))   # lax.complex's dtype
        z.real = re
        z.imag = im
        return z
    return x


def _is_pair(x):
    return isinstance(x, SplitRealAndImaginaryArrays)


def split_real_and_imaginary(inner):
    """Runs ``inner`` on the real and imaginary parts of complex leaves as
    separate real leaves (module docstring); real leaves pass through.

    Args:
      inner: the transformation for real params and updates.

    Returns:
      A GradientTransformation with state
      ``SplitRealAndImaginaryState(inner_state)``.
    """
    inner = as_transformation("inner", inner)

    def init_fn(params):
        return SplitRealAndImaginaryState(inner.init(tree_map(_complex_to_real_pair, params)))

    def update_fn(updates, state, params=None, **extra_args):
        _checks.check_state("state", state, SplitRealAndImaginaryState,
                            "split_real_and_imaginary")
        updates = tree_map(_complex_to_real_pair, updates)
        params = None if params is None else tree_map(_complex_to_real_pair, params)
        updates, inner_state = inner.update(updates, state.inner_state, params, **extra_args)
        updates = tree_map(_real_pair_to_complex, updates, is_leaf=_is_pair)
        return updates, SplitRealAndImaginaryState(inner_state)

    return GradientTransformation(init_fn, update_fn)


__all__ = ["SplitRealAndImaginaryArrays", "SplitRealAndImaginaryState",
           "split_real_and_imaginary"]
