"""16-bit params in the transformations whose kernels are not elementwise.

The elementwise rules compute float16/bfloat16 leaves in float32 inside
their own update (``transforms/_elementwise``). The others (per-leaf norms:
lamb, lars, novograd, the clippings; adafactor's factored moments; sm3;
the line searches ...) refuse 16-bit leaves in ``_flat.layout_of`` with
``NarrowLeaves`` before touching anything, and ``GradientTransformation``
(``base.py``) then runs them here, through float32:

* ``update``: every 16-bit leaf of the updates, the state and the params as
  float32 (exact), the transformation's own update, then the new updates
  rounded to the grads' dtypes and each new state leaf to the dtype of the
  state leaf it replaces: one rounding per result, as XLA rounds every
  16-bit value a transformation returns;
* ``init``: the state made for the params as float32 and as float64; the
  leaves that follow the params' dtype between the two (moments made by
  ``zeros_like(params)``) get the params' 16-bit dtype, as optax's would,
  the others (counts, fixed dtypes) keep theirs.
"""
import numpy as np

from ._checks import is_narrow
from .tree import tree_flatten, tree_leaves, tree_map, tree_unflatten

_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)


def _narrow(x):
    dt = getattr(x, "dtype", None)
    return dt is not None and is_narrow(np.dtype(dt))


def _widen(tree, dtype):
    return tree_map(lambda x: np.asarray(x).astype(dtype) if _narrow(x) else x, tree)


def init(init_fn, params):
    """``init_fn``'s state for 16-bit params (see the module docstring)."""
    dts = {np.dtype(x.dtype) for x in tree_leaves(params) if _narrow(x)}
    if len(dts) != 1:
        raise TypeError(f"params: float16 and bfloat16 leaves together ({sorted(map(str, dts))}); "
                        f"this transformation computes 16-bit params in float32 and needs one "
                        f"16-bit dtype to store its state in")
    dt = dts.pop()
    s32 = init_fn(_widen(params, _F32))
    s64 = init_fn(_widen(params, _F64))
    l32, treedef = tree_flatten(s32)
    l64 = tree_leaves(s64)
    out = [x.astype(dt) if (getattr(x, "dtype", None) == _F32 and getattr(y, "dtype", None) == _F64)
           else x for x, y in zip(l32, l64)]
    return tree_unflatten(treedef, out)


def update(update_fn, updates, state, params, extra_args):
    """``update_fn`` on 16-bit leaves through float32 (see the module docstring)."""
    new_u, new_s = update_fn(_widen(updates, _F32), _widen(state, _F32),
                             None if params is None else _widen(params, _F32), **extra_args)
    new_u = tree_map(lambda n, o: np.asarray(n).astype(o.dtype) if _narrow(o) else n,
                     new_u, updates)
    new_s = tree_map(lambda n, o: np.asarray(n).astype(o.dtype) if _narrow(o) else n,
                     new_s, state)
    return new_u, new_s
