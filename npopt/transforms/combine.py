"""Combinators: chain (and, below, named_chain, masked, partition)."""
from ..base import GradientTransformation, with_extra_args_support
from . import _fusion


def chain(*args):
    """Applies transformations in sequence; the state is the tuple of their states.

    The same ``params`` and ``**extra_args`` reach every element. When the
    chain has the shape ``[preconditioner] [add_decayed_weights] learning
    rate``, its ``step`` is one fused kernel pass (see ``_fusion``).
    """
    txs = tuple(with_extra_args_support(t) for t in args)
    for i, t in enumerate(txs):
        if not (isinstance(t, tuple) and len(t) == 2 and callable(t[0]) and callable(t[1])):
            raise TypeError(f"chain: argument {i} is not a GradientTransformation: {t!r}")

    def init_fn(params):
        return tuple(t.init(params) for t in txs)

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, tuple) or len(state) != len(txs):
            raise TypeError(
                f"state: expected the {len(txs)}-tuple made by this chain's init, "
                f"got {type(state).__name__}")
        new_state = []
        for t, s in zip(txs, state):
            updates, s = t.update(updates, s, params, **extra_args)
            new_state.append(s)
        return updates, tuple(new_state)

    return GradientTransformation(init_fn, update_fn, fused_step=_fusion.fuse(txs))
