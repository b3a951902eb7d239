"""The core types: GradientTransformation, EmptyState, chain, apply_updates.

As in optax, an optimizer is a pair of pure functions in a NamedTuple::

    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    params = npopt.apply_updates(params, updates)

``opt.step(params, grads, state)`` is npopt's fused fast path: it computes the
numbers of ``update`` followed by ``apply_updates`` (to the last bit: its
epilogue rounds ``p + (-lr) u`` once), but in one pass over
memory and in place on the flat buffers (the params and state it returns
share memory with the ones it was given, which it consumes, like a jitted
optax step with donated buffers). A chain of the form
``preconditioner [, add_decayed_weights], learning rate`` is fused
automatically, as are a few other shapes (lamb's, adafactor's, lbfgs's: see
``npopt.transforms._fusion``); any other transformation falls back to
``update`` + ``apply_updates``.
"""
import functools
from typing import (Any, Callable, ForwardRef, Iterable, Mapping, NamedTuple, Optional, Protocol,
                    Tuple, Union)

import numpy as np

from . import _flat
from .tree import tree_flatten, tree_map, tree_unflatten

NO_PARAMS_MSG = (
    "params: this transformation needs the current params; call "
    "update(updates, state, params)")


# optax's type names (``optax.Params``, ...), for annotations in ported
# code: the same shapes of Python types, with NumPy arrays for jax's.
Numeric = Union[np.ndarray, np.generic, bool, int, float, complex]
_TREE = ForwardRef("ArrayTree", module=__name__)    # resolvable from any module
ArrayTree = Union[Numeric, Iterable[_TREE], Mapping[Any, _TREE]]
Params = ArrayTree        # the parameters of a model
Updates = ArrayTree       # gradient updates, of the params' structure
OptState = ArrayTree      # a transformation's state
Schedule = Callable[[Numeric], Numeric]
ScalarOrSchedule = Union[float, np.ndarray, Schedule]
MaskOrFn = Union[Any, Callable[[Params], Any]]


class StatefulSchedule(Protocol):
    """A schedule with a state (optax's): ``init() -> state``,
    ``update(state, **extra_args) -> state``, ``__call__(state, **extra_args)
    -> value`` (see ``npopt.inject_stateful_hyperparams``)."""

    def init(self) -> Any:
        ...

    def update(self, state: Any, **extra_args: Any) -> Any:
        ...

    def __call__(self, state: Any, **extra_args: Any) -> Any:
        ...


class TransformInitFn(Protocol):
    """``init(params) -> state``."""

    def __call__(self, params: Params) -> OptState:
        ...


class TransformUpdateFn(Protocol):
    """``update(updates, state, params=None) -> (updates, state)``."""

    def __call__(self, updates: Updates, state: OptState,
                 params: Optional[Params] = None) -> Tuple[Updates, OptState]:
        ...


class TransformUpdateExtraArgsFn(Protocol):
    """``update(updates, state, params=None, **extra_args) -> (updates, state)``."""

    def __call__(self, updates: Updates, state: OptState, params: Optional[Params] = None,
                 **extra_args: Any) -> Tuple[Updates, OptState]:
        ...


class EmptyState(NamedTuple):
    """The state of stateless transformations."""


class _Pair(NamedTuple):
    init: Callable
    update: Callable


def _narrow_init(init):
    """``init`` that makes the state of 16-bit params through float32 where
    the transformation refuses them (``npopt._narrow``)."""
    if getattr(init, "_npopt_narrow", False) or not callable(init):
        return init

    def narrow_init(params):
        try:
            return init(params)
        except _flat.NarrowLeaves:      # raised before anything was made
            pass
        from . import _narrow
        return _narrow.init(init, params)
    functools.update_wrapper(narrow_init, init)     # init's name (reprs of defaults)
    narrow_init._npopt_narrow = True
    return narrow_init


def _narrow_update(update):
    """``update`` that runs 16-bit leaves through float32 where the
    transformation refuses them (``npopt._narrow``)."""
    if getattr(update, "_npopt_narrow", False) or not callable(update):
        return update

    def narrow_update(updates, state, params=None, **extra_args):
        try:
            return update(updates, state, params, **extra_args)
        except _flat.NarrowLeaves:      # raised before any buffer was written
            pass
        from . import _narrow
        return _narrow.update(update, updates, state, params, extra_args)
    functools.update_wrapper(narrow_update, update)
    narrow_update._npopt_narrow = True
    return narrow_update


class GradientTransformation(_Pair):
    """``(init, update)``, plus the fused ``step`` and a fusion description.

    A 2-tuple like optax's (``init, update = opt`` works); ``fusion`` is an
    optional description of this transformation's role in a fused step
    (preconditioner, weight decay or learning rate), used by ``chain``.
    """

    def __new__(cls, init, update, fusion=None, fused_step=None):
        self = super().__new__(cls, _narrow_init(init), _narrow_update(update))
        self.fusion = fusion
        self.fused_step = fused_step
        return self

    def step(self, params, grads, state, **extra_args):
        """One optimizer step: ``(params, state)`` after applying the update.

        The numbers of ``update`` + ``apply_updates`` to the last bit (the
        fused epilogue rounds ``p + (-lr) u`` once, an FMA; 16-bit params
        are computed in float32 and the new params rounded once). Fused and
        in place where a kernel exists for this transformation: the given
        params and state buffers are reused for the result, so

        * use the params returned. A bare array, or a tree whose leaves
          all view one buffer (one leaf, or what ``step`` returns), is
          updated in place and returned as it is; other params are not
          modified and new arrays are returned: a tree of separate arrays
          (the first step lays them end to end in one buffer and returns
          views of it, which the next steps update in place), a scalar (a
          Python float comes back as a 0-d float64 ``np.ndarray``, a NumPy
          scalar as a 0-d array of its dtype), a non-contiguous leaf,
          params sharing memory with the state. Read-only params raise;
        * the state is *consumed*, like a donated buffer in JAX: use the
          state returned; passing a consumed state again (to ``step`` or
          ``update``) raises ``ConsumedStateError``;
        * grads that overlap the params or the state in memory give the
          numbers a copy would; grads of the other float dtype than the
          params (float64 grads for float32 params) take the unfused path,
          ``update`` + ``apply_updates``, which promotes as optax does.

        Every check runs before the first buffer is written: after an
        error, params and state are as they were.
        """
        if self.fused_step is not None:
            try:
                return self.fused_step(params, grads, state, **extra_args)
            except _flat.Promote as e:
                why = e       # nothing was written: promote through update
            try:
                updates, new_state = self.update(grads, state, params, **extra_args)
            except _flat.DtypeMismatch as e:
                raise TypeError(f"{why}; optax would promote the dtypes, which this "
                                f"transformation's update does not support ({e}): give "
                                f"the grads the params' dtype") from e
            return apply_updates(params, updates), new_state
        updates, state = self.update(grads, state, params, **extra_args)
        return apply_updates(params, updates), state


class GradientTransformationExtraArgs(GradientTransformation):
    """A transformation whose ``update`` takes ``**extra_args`` (optax's).

    Every npopt ``update`` accepts ``**extra_args``; the class marks the
    transformations optax marks (chains, the aliases, the wrappers and the
    line searches, and ``with_extra_args_support``), so that ported code
    branching on ``isinstance(tx, GradientTransformationExtraArgs)`` takes
    the same branch. It is a ``GradientTransformation``.
    """


def init_empty_state(params):
    del params
    return EmptyState()


IDENTITY = "identity"     # the fusion role of identity() (see npopt/transforms/_fusion.py)


def identity():
    """Leaves updates unchanged."""
    def update_fn(updates, state, params=None, **extra_args):
        return updates, state
    return GradientTransformation(init_empty_state, update_fn, fusion=IDENTITY)


def set_to_zero():
    """Replaces updates by zeros (to freeze parameters)."""
    def update_fn(updates, state, params=None, **extra_args):
        return tree_map(np.zeros_like, updates), state
    return GradientTransformation(init_empty_state, update_fn)


def stateless(f):
    """A transformation from ``f(updates, params) -> updates``."""
    def update_fn(updates, state, params=None, **extra_args):
        return f(updates, params), state
    return GradientTransformation(init_empty_state, update_fn)


def stateless_with_tree_map(f):
    """A transformation applying ``f(u, p)`` leaf by leaf (``f(u, None)`` without params)."""
    def update_fn(updates, state, params=None, **extra_args):
        if params is None:
            return tree_map(lambda u: f(u, None), updates), state
        return tree_map(f, updates, params), state
    return GradientTransformation(init_empty_state, update_fn)


def with_extra_args_support(tx):
    """``tx`` as a ``GradientTransformationExtraArgs``: npopt's own
    transformations already accept ``**extra_args`` (they keep their update
    and fused step); a foreign ``(init, update)`` pair's update is wrapped to
    drop them."""
    if isinstance(tx, GradientTransformationExtraArgs):
        return tx
    if isinstance(tx, GradientTransformation):
        return GradientTransformationExtraArgs(tx.init, tx.update, fusion=tx.fusion,
                                               fused_step=tx.fused_step)
    init, update = tx

    def update_fn(updates, state, params=None, **extra_args):
        return update(updates, state, params)
    return GradientTransformationExtraArgs(init, update_fn)


def apply_updates(params, updates):
    """``p + u`` leaf by leaf, rounded back to ``p``'s dtype (optax.apply_updates).

    As optax: the result has the params' dtype (``(p + u).astype(p.dtype)``:
    float64 updates of float32 params are added in float64 and rounded once),
    and None leaves of ``params`` are kept (whatever ``updates`` holds there).
    Inputs are not modified.

    ``updates`` must have the params' tree structure and, leaf by leaf, the
    params' shape: optax documents this contract but broadcasts silently
    (``(3,)`` params plus ``(2, 3)`` updates give ``(2, 3)`` params); npopt
    raises ``ValueError`` naming ``updates``. Complex updates for real params
    raise ``TypeError`` (optax would drop the imaginary part with a
    warning), as does a None update for a param. Every leaf is checked
    before any is added.
    """
    fast = _flat.same_layout_leaves(params, updates)
    if fast is not None:            # host arrays of one layout, same shapes and dtypes
        build, ps, us = fast
        return build([p + u if p.shape else np.asarray(p + u) for p, u in zip(ps, us)])
    p_leaves, treedef = tree_flatten(params, is_leaf=lambda x: x is None)
    try:
        u_leaves = treedef.flatten_up_to(updates, "updates")
    except ValueError as e:
        msg = str(e)
        raise ValueError(msg if msg.startswith("updates") else f"updates: {msg}") from None
    n = len(p_leaves)
    where = (lambda i: "") if n == 1 else (lambda i: f" (leaf {i} of {n}, in the params' "
                                                       "leaf order)")
    ps = []
    for i, (p, u) in enumerate(zip(p_leaves, u_leaves)):
        if p is None:
            ps.append(None)
            continue
        if u is None:
            raise TypeError(f"updates: None where params has a leaf{where(i)}; expected an "
                            "update of the param's shape")
        p = p if hasattr(p, "dtype") and hasattr(p, "shape") else np.asarray(p)
        u_shape = u.shape if hasattr(u, "shape") else np.shape(u)
        if tuple(u_shape) != tuple(p.shape):
            raise ValueError(
                f"updates: shape {tuple(u_shape)} where params has shape {tuple(p.shape)}"
                f"{where(i)}; apply_updates does not broadcast: the updates must have the "
                "params' shapes")
        u_dtype = u.dtype if hasattr(u, "dtype") else np.asarray(u).dtype
        if np.dtype(u_dtype).kind == "c" and np.dtype(p.dtype).kind != "c":
            raise TypeError(
                f"updates: complex updates (dtype {u_dtype}) for real params (dtype "
                f"{p.dtype}){where(i)}; the imaginary part would be dropped")
        ps.append(p)

    def add(p, u):
        if p is None:
            return None
        if _is_device(p):
            from .kernels import apply as k
            lay, _ = _flat.layout_of(p, complex_ok=True)     # p + u: any field
            out = lay.target.empty(p.size, p.dtype)
            lay.target.launch(k.apply_updates_cpu, k.apply_updates_cuda,
                              p.reshape(-1), u.reshape(-1), out)
            return out.reshape(p.shape)
        return np.asarray(p + u).astype(p.dtype, copy=False)
    return tree_unflatten(treedef, [add(p, u) for p, u in zip(ps, u_leaves)])


def _is_device(x):
    from ._target import is_device_array
    return is_device_array(x)


def incremental_update(new_tensors, old_tensors, step_size):
    """Polyak averaging: ``step_size * new + (1 - step_size) * old``."""
    return tree_map(lambda n, o: step_size * n + (1.0 - step_size) * o,
                    new_tensors, old_tensors)


def periodic_update(new_tensors, old_tensors, steps, update_period):
    """``new`` every ``update_period`` steps, else ``old``."""
    return new_tensors if int(steps) % int(update_period) == 0 else old_tensors


INT32_MAX = np.iinfo(np.int32).max


def safe_increment(count):
    """count + 1 as int32, saturating at the int32 maximum (optax.safe_increment)."""
    return np.int32(count + 1) if count < INT32_MAX else np.int32(INT32_MAX)


safe_int32_increment = safe_increment
ZERO = np.int32(0)

__all__ = ["EmptyState", "GradientTransformation", "GradientTransformationExtraArgs",
           "apply_updates", "identity", "init_empty_state", "incremental_update",
           "periodic_update", "safe_increment", "safe_int32_increment", "set_to_zero",
           "stateless", "stateless_with_tree_map", "with_extra_args_support",
           "NO_PARAMS_MSG"]


# jaxopt.base's names (jaxopt and optax both have a ``base`` module; npopt's
# is one module with both). The solver classes pull in scipy: imported on
# first use (PEP 562).
AutoOrBoolean = Union[str, bool]     # jaxopt's type of ``implicit_diff``-like switches

_JAXOPT_BASE = {"IterativeSolver": "npopt.solvers.base", "StochasticSolver": "npopt.solvers.base",
                "KKTSolution": "npopt.solvers.base", "OptStep": "npopt.solvers.base",
                "LinearOperator": "npopt.objective"}


def __getattr__(name):
    if name in _JAXOPT_BASE:
        import importlib
        value = getattr(importlib.import_module(_JAXOPT_BASE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'npopt.base' has no attribute {name!r}")
