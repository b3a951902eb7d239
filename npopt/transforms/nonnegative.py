r"""``keep_params_nonnegative``: updates that keep the params >= 0.

.. math:: u \leftarrow -p \text{ where } p + u < 0, \text{ else } u

so that ``apply_updates`` lands on 0 instead of below it. Put it last in a
chain (after the learning rate). Params already negative are moved to 0,
as in optax. The state is ``NonNegativeParamsState`` (optax's alias of
``EmptyState``); no fused form: ``opt.step`` is ``update`` +
``apply_updates``.
"""
import numpy as np

from .. import numerics as _num
from ..base import EmptyState, GradientTransformation
from ..tree import tree_map, tree_structure
from .unitwise import NO_PARAMS_MSG

NonNegativeParamsState = EmptyState


def keep_params_nonnegative():
    r"""Modifies the updates to keep the parameters non-negative, i.e. >= 0.

    ``where(p + u < 0, -p, u)`` leaf by leaf, in the dtype optax gives
    (``p + u``'s promotion). Expects non-negative params; negative ones are
    moved to 0.
    """
    def init_fn(params):
        del params
        return NonNegativeParamsState()

    def update_fn(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError(NO_PARAMS_MSG)
        _num.check_inexact_tree("updates", updates)
        _num.check_inexact_tree("params", params)
        tree_structure(updates).flatten_up_to(params, "params")

        def one(u, p):
            if np.shape(u) != np.shape(p):
                raise ValueError(f"params: a leaf of shape {np.shape(p)} where the updates "
                                 f"have {np.shape(u)}")
            out = np.where((p + u) < 0.0, -np.asarray(p), u)
            return out[()] if out.ndim == 0 else out

        return tree_map(one, updates, params), state

    return GradientTransformation(init_fn, update_fn)
