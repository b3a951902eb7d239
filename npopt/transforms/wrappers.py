"""Wrappers: inject_hyperparams, MultiSteps, apply_if_finite, zero_nans.

Each mirrors optax 0.2.8 (``optax/schedules/_inject.py``,
``optax/transforms/_accumulation.py``, ``_conditionality.py``,
``_constraining.py``): the same state NamedTuples and fields, int32
counters, bool flags, and the same order of operations. Where optax selects
with ``lax.cond``/``jnp.where`` on traced values, npopt branches in Python
on the (host) values, with the same results.
"""
import functools
import inspect
import math
import numbers
import re
import warnings
from typing import Any, NamedTuple, Protocol, Tuple

import numpy as np

from .. import _checks
from ..base import (ZERO, GradientTransformation, GradientTransformationExtraArgs, safe_increment,
                    with_extra_args_support)
from ..tree import tree_dtype, tree_leaves, tree_map
from .combine import as_transformation


def _check_dtype(name, dtype, allow_none=True):
    """None (when allowed) or a floating dtype (float16, bfloat16, float32,
    float64); TypeError naming ``name`` otherwise."""
    if dtype is None and allow_none:
        return None
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or not (dt.kind == "f" or dt.name == "bfloat16"):
        raise TypeError(f"{name}: expected None or a floating dtype, got {dtype!r}")
    return dt

# ---------------------------------------------------------------------------
# inject_hyperparams
# ---------------------------------------------------------------------------


class WrappedScheduleState(NamedTuple):
    """The state of a wrapped (stateless) schedule: its step count."""
    count: Any  # int32


class WrappedSchedule:
    """A stateful schedule around a stateless ``schedule_fn(count)``."""

    def __init__(self, schedule_fn):
        self.schedule_fn = schedule_fn

    def init(self):
        return WrappedScheduleState(count=ZERO)

    def update(self, state, **extra_args):
        del extra_args
        return WrappedScheduleState(count=safe_increment(state.count))

    def __call__(self, state, **extra_args):
        return self.schedule_fn(state.count)


def _is_stateful_schedule(x):
    return (callable(x) and callable(getattr(x, "init", None))
            and callable(getattr(x, "update", None)))


def _is_float(x):
    dt = x.dtype if hasattr(x, "dtype") else type(x)
    try:
        return np.issubdtype(dt, np.floating)
    except TypeError:
        return False


def _convert_floats(x, dtype, keep_numpy=True):
    """Float-like ``x`` as an array of ``dtype``; the rest as is.

    optax casts only *weakly typed* values (Python numbers) and keeps
    ``jax.Array`` values with their own dtype. The NumPy analogue: a
    Python ``float`` is weak and is cast; a NumPy value (array or scalar,
    e.g. a schedule's ``np.float32`` result, or a value stored in the state)
    is kept as it is when ``keep_numpy`` (update, schedule results), and
    cast otherwise (the numbers given to the factory, cast at ``init`` as
    optax casts NumPy arrays there).
    """
    if isinstance(x, (np.ndarray, np.generic)):
        if keep_numpy or not _is_float(x):
            return np.asarray(x) if isinstance(x, np.generic) and _is_float(x) else x
        return np.asarray(x, dtype=dtype)
    if _is_float(x):
        return np.asarray(x, dtype=dtype)
    return x


def _as_arg(v):
    """The value handed to the inner factory: a NumPy scalar for a 0-d array
    (npopt's transforms take scalars; the dtype, hence the arithmetic, is kept)."""
    if isinstance(v, np.ndarray) and v.ndim == 0:
        return v[()]
    return v


class InjectHyperparamsState(NamedTuple):
    """Deprecated in optax (0.1.9); kept for compatibility. ``inject_hyperparams``
    returns ``InjectStatefulHyperparamsState``."""
    count: Any        # int32
    hyperparams: Any  # dict name -> value
    inner_state: Any


class InjectStatefulHyperparamsState(NamedTuple):
    """The state of ``inject_hyperparams``."""
    count: Any               # int32 step count
    hyperparams: Any         # dict name -> current value (0-d arrays for numbers)
    hyperparams_states: Any  # dict name -> schedule state
    inner_state: Any


def inject_hyperparams(inner_factory, static_args=(), hyperparam_dtype=None):
    """Turns the numeric hyperparameters of ``inner_factory`` into state.

    ``inject_hyperparams(npopt.adam)(learning_rate=schedule, b1=0.9)`` is an
    optimizer whose ``state.hyperparams`` holds the current values, which a
    user may overwrite between steps (``state.hyperparams['learning_rate'] =
    1e-3``). Each ``update`` rebuilds ``inner_factory(**hyperparams)`` from
    them and calls its ``update``.

    * Numbers (``int``, ``float``, NumPy arrays) are stored as arrays; floats
      are cast to ``hyperparam_dtype``, or to the params' highest dtype when
      it is None. The inner transformation then computes with values of that
      dtype (float32 params: ``1 - b1`` in float32, as in optax).
    * As in optax, only "weakly typed" values are cast after ``init``: a
      Python float written into ``state.hyperparams`` or returned by a
      schedule is cast; a NumPy value (a schedule's ``np.float32`` result,
      an array put in the state) keeps its dtype.
    * Callables are schedules (``WrappedSchedule``), evaluated at the count
      *before* its increment; objects with ``init``/``update``/``__call__``
      are stateful schedules. Their values are recomputed every step, so
      overwriting them in the state has no effect.
    * Booleans, ``None``, other objects and the names in ``static_args``
      are passed as they are.

    Args:
      inner_factory: a function returning a GradientTransformation.
      static_args: a name, or names, of arguments that are not schedules
        even though callable.
      hyperparam_dtype: dtype for float hyperparameters (None: the params').

    Returns:
      A function with ``inner_factory``'s signature returning a
      GradientTransformation with state ``InjectStatefulHyperparamsState``.
    """
    if not callable(inner_factory):
        raise TypeError("inner_factory: expected a function returning a GradientTransformation, "
                        f"got {_checks._describe(inner_factory)}")
    if isinstance(static_args, str):
        static_args = {static_args}
    else:
        try:
            static_args = set(static_args)
        except TypeError:
            raise TypeError("static_args: expected a name or an iterable of names, got "
                            f"{_checks._describe(static_args)}") from None
        if not all(isinstance(a, str) for a in static_args):
            raise TypeError(f"static_args: expected names (strings), got {static_args!r}")
    inner_signature = inspect.signature(inner_factory)
    if not static_args.issubset(inner_signature.parameters):
        raise ValueError(
            "`static_args` must specify a subset of `inner_factory`'s parameters. "
            f"Given `static_args`: {static_args}. `inner_factory` parameters: "
            f"{set(inner_signature.parameters.keys())}")
    hyperparam_dtype = _check_dtype("hyperparam_dtype", hyperparam_dtype)

    @functools.wraps(inner_factory)
    def wrapped_transform(*args, **kwargs):
        bound = inner_signature.bind(*args, **kwargs)
        bound.apply_defaults()
        sched_hps, numeric_hps, other_hps, bound_scheds = {}, {}, {}, {}
        for name, value in bound.arguments.items():
            if name in static_args or isinstance(value, bool):
                other_hps[name] = value
            elif _is_stateful_schedule(value):
                sched_hps[name] = bound_scheds[name] = value
            elif callable(value):
                sched_hps[name] = WrappedSchedule(value)
                bound_scheds[name] = value
            elif isinstance(value, (int, float, np.ndarray)):
                numeric_hps[name] = value
            else:
                other_hps[name] = value

        def dtype_of(params):
            return hyperparam_dtype if hyperparam_dtype is not None else \
                tree_dtype(params, "highest")

        def build(hparams):
            return with_extra_args_support(
                inner_factory(**other_hps, **{k: _as_arg(v) for k, v in hparams.items()}))

        def build_at(hparams, count):
            """build(hparams); the factory's errors (which name the
            hyperparameter) say at which step count the values were taken."""
            try:
                return build(hparams)
            except (ValueError, TypeError) as e:
                if type(e) not in (ValueError, TypeError):
                    raise
                raise type(e)(f"{e} (inject_hyperparams: the hyperparameters' values at "
                              f"step count {int(count)})") from e

        # the numbers are checked now, under the caller's names, by the
        # factory itself (schedules are not evaluated here: they are given
        # as they are, and an error about one of them is left to init, which
        # checks their values)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")       # e.g. a deprecated factory's
                inner_factory(**other_hps, **{k: _as_arg(v) for k, v in numeric_hps.items()},
                              **bound_scheds)
        except (ValueError, TypeError) as e:
            if not any(re.match(rf"`?{re.escape(k)}\b", str(e)) for k in sched_hps):
                raise

        def init_fn(params):
            dtype = dtype_of(params)
            hparams = {k: np.asarray(_convert_floats(v, dtype, keep_numpy=False))
                       for k, v in numeric_hps.items()}
            hparams_states = {k: f.init() for k, f in sched_hps.items()}
            hparams.update({k: _convert_floats(f(hparams_states[k]), dtype)
                            for k, f in sched_hps.items()})
            return InjectStatefulHyperparamsState(
                count=ZERO, hyperparams=hparams, hyperparams_states=hparams_states,
                inner_state=build(hparams).init(params))

        def advance(state, params, extra_args):
            if not isinstance(state, InjectStatefulHyperparamsState):
                raise TypeError(
                    "state: expected the InjectStatefulHyperparamsState made by "
                    f"inject_hyperparams(...).init, got {type(state).__name__}")
            dtype = dtype_of(params)
            hparams = {k: _convert_floats(v, dtype)
                       for k, v in state.hyperparams.items()}
            hparams.update({k: _convert_floats(f(state.hyperparams_states[k], **extra_args),
                                               dtype)
                            for k, f in sched_hps.items()})
            hparams_states = {k: f.update(state.hyperparams_states[k], **extra_args)
                              for k, f in sched_hps.items()}
            return hparams, hparams_states

        def update_fn(updates, state, params=None, **extra_args):
            hparams, hparams_states = advance(state, params, extra_args)
            updates, inner_state = build_at(hparams, state.count).update(
                updates, state.inner_state, params, **extra_args)
            return updates, InjectStatefulHyperparamsState(
                count=safe_increment(state.count), hyperparams=hparams,
                hyperparams_states=hparams_states, inner_state=inner_state)

        def fused_step(params, grads, state, **extra_args):
            # the inner optimizer's own step: fused (in place) when it has one
            hparams, hparams_states = advance(state, params, extra_args)
            params, inner_state = build_at(hparams, state.count).step(
                params, grads, state.inner_state, **extra_args)
            return params, InjectStatefulHyperparamsState(
                count=safe_increment(state.count), hyperparams=hparams,
                hyperparams_states=hparams_states, inner_state=inner_state)

        return GradientTransformationExtraArgs(init_fn, update_fn, fused_step=fused_step)

    return wrapped_transform


def inject_stateful_hyperparams(inner_factory, static_args=(), hyperparam_dtype=None):
    """Deprecated alias of ``inject_hyperparams`` (as in optax)."""
    warnings.warn("inject_stateful_hyperparams is deprecated, use inject_hyperparams instead",
                  DeprecationWarning, stacklevel=2)
    return inject_hyperparams(inner_factory, static_args, hyperparam_dtype)


# ---------------------------------------------------------------------------
# MultiSteps
# ---------------------------------------------------------------------------


def skip_not_finite(updates, gradient_step, params):
    """``(should_skip, info)``: skip when any update is inf or NaN.

    info = ``{'should_skip': bool, 'num_not_finite': int64 count}``.
    """
    del gradient_step, params
    counts = [np.sum(np.logical_not(np.isfinite(p)), dtype=np.int64)
              for p in tree_leaves(updates)]
    num_not_finite = np.int64(np.sum(np.asarray(counts, np.int64)))
    should_skip = np.bool_(num_not_finite > 0)
    return should_skip, {"should_skip": should_skip, "num_not_finite": num_not_finite}


def skip_large_updates(updates, gradient_step, params, max_squared_norm):
    """``(should_skip, info)``: skip when ``||updates||^2 >= max_squared_norm`` (or NaN).

    info = ``{'should_skip': bool, 'norm_squared': the squared norm}``.
    Use as ``functools.partial(skip_large_updates, max_squared_norm=...)``.
    """
    del gradient_step, params
    try:
        ok = float(max_squared_norm) >= 0       # inf allowed (never skip); NaN refused
    except (TypeError, ValueError):
        ok = False
    if not ok or isinstance(max_squared_norm, (bool, str)):
        raise ValueError(f"max_squared_norm: expected a number >= 0, got "
                         f"{_checks._describe(max_squared_norm)}")
    sums = [np.sum(np.square(p)) for p in tree_leaves(updates)]
    norm_sq = np.sum(np.asarray(sums)) if sums else np.float64(0.0)
    should_skip = np.bool_(np.logical_not(norm_sq < max_squared_norm))
    return should_skip, {"should_skip": should_skip, "norm_squared": norm_sq}


class ShouldSkipUpdateFunction(Protocol):
    """``should_skip_update_fn(updates, gradient_step, params) -> (should_skip,
    skip_state)`` of ``MultiSteps`` (optax's protocol)."""

    def __call__(self, updates: Any, gradient_step: Any, params: Any) -> Tuple[Any, Any]:
        ...


def _never_skip(*unused_args, **unused_kwargs):
    return np.bool_(False), ()


class MultiStepsState(NamedTuple):
    """The state of ``MultiSteps``."""
    mini_step: Any        # int32, in [0, k)
    gradient_step: Any    # int32, number of inner updates emitted
    inner_opt_state: Any
    acc_grads: Any        # accumulated gradients (accumulator_dtype)
    skip_state: Any = ()  # what should_skip_update_fn returned


class MultiSteps:
    r"""Accumulates gradients over ``k`` mini-steps, then updates once.

    At each call the gradient joins the accumulator (the running mean
    ``acc + (g - acc)/(n + 1)``, or the sum with ``use_grad_mean=False``,
    computed in the promoted dtype of ``g`` and ``acc``), and the inner
    optimizer's update of the accumulator is computed. It is *kept* (inner
    state advanced, updates returned) only at the k-th mini-step; otherwise
    the updates are ``0 * update`` (zeros, NaN where the inner update is
    NaN, as in optax) and the inner state is unchanged. The accumulator is
    stored in ``accumulator_dtype`` and reset after each emitted step.

    Args:
      opt: the inner optimizer.
      every_k_schedule: k, or a callable ``k(gradient_step)``.
      use_grad_mean: average (True) or sum (False) the gradients.
      should_skip_update_fn: ``f(updates, gradient_step, params) ->
        (bool, skip_state)``; a skipped mini-step leaves the state as it was
        (but for ``skip_state``) and returns zeros. See ``skip_not_finite``,
        ``skip_large_updates``.
      accumulator_dtype: dtype of the stored accumulator (default float32,
        as optax, even for float64 params).
    """

    def __init__(self, opt, every_k_schedule, use_grad_mean=True,
                 should_skip_update_fn=None, accumulator_dtype=np.float32):
        self._opt = as_transformation("opt", opt)
        if isinstance(every_k_schedule, numbers.Integral) and not isinstance(
                every_k_schedule, bool):
            if every_k_schedule < 1:
                raise ValueError(f"every_k_schedule: expected an integer >= 1 or a schedule, "
                                 f"got {every_k_schedule!r}")
            k = int(every_k_schedule)
            self._every_k_schedule = lambda step: k
        elif callable(every_k_schedule):
            self._every_k_schedule = every_k_schedule
        else:
            raise TypeError(f"every_k_schedule: expected an integer >= 1 or a callable of "
                            f"the gradient step, got {every_k_schedule!r}")
        self._use_grad_mean = _checks.check_bool("use_grad_mean", use_grad_mean)
        self._accumulator_dtype = _check_dtype("accumulator_dtype", accumulator_dtype)
        _checks.check_callable("should_skip_update_fn", should_skip_update_fn,
                               allow_none=True)
        self._should_skip_update_fn = should_skip_update_fn or _never_skip

    def _k_steps(self, gradient_step):
        """every_k_schedule's value, which must be an integer >= 1."""
        k = self._every_k_schedule(gradient_step)
        a = np.asarray(k)
        ok = a.shape == () and a.dtype.kind in "iuf" and not isinstance(k, bool)
        if ok:
            x = float(a)
            ok = math.isfinite(x) and x.is_integer() and x >= 1
        if not ok:
            raise ValueError(
                f"every_k_schedule: the schedule returned {_checks._describe(k)} at gradient "
                f"step {int(gradient_step)}; expected an integer >= 1 (nothing was updated)")
        return int(x)

    @property
    def inner_opt(self):
        return self._opt

    def _acc_update(self, grad, acc, n_acc):
        if self._use_grad_mean:
            diff = grad - acc
            return acc + diff / diff.dtype.type(int(n_acc) + 1)
        return grad + acc

    def _acc_cast(self, x):
        return x if self._accumulator_dtype is None else x.astype(self._accumulator_dtype)

    def init(self, params):
        """The initial MultiStepsState (zero accumulator, counters at 0)."""
        updates = tree_map(np.zeros_like, params)
        acc_grads = tree_map(lambda p: np.zeros_like(p, dtype=self._accumulator_dtype), params)
        _, skip_state = self._should_skip_update_fn(updates, ZERO, params)
        return MultiStepsState(mini_step=ZERO, gradient_step=ZERO,
                               inner_opt_state=self._opt.init(params), acc_grads=acc_grads,
                               skip_state=skip_state)

    def update(self, updates, state, params=None, **extra_args):
        """Accumulates ``updates``; returns the inner update every k-th call, else zeros."""
        if not isinstance(state, MultiStepsState):
            raise TypeError(f"state: expected the MultiStepsState made by MultiSteps.init, "
                            f"got {type(state).__name__}")
        k_steps = self._k_steps(state.gradient_step)
        should_skip, skip_state = self._should_skip_update_fn(updates, state.gradient_step,
                                                              params)
        sk = np.asarray(should_skip)
        if (sk.dtype, sk.shape) != (np.dtype(bool), ()):
            raise ValueError(
                "The `should_skip_update_fn` function should return a boolean scalar "
                f"array, but it returned an array of dtype {sk.dtype} and shape {sk.shape}")
        if bool(sk):
            zeros = tree_map(np.zeros_like, updates)
            return zeros, state._replace(skip_state=skip_state)

        acc_grads = tree_map(lambda u, a: self._acc_update(np.asarray(u), a, state.mini_step),
                             updates, state.acc_grads)
        acc_in = tree_map(lambda a, u: a.astype(np.asarray(u).dtype, copy=False),
                          acc_grads, updates)
        final_updates, new_inner = self._opt.update(acc_in, state.inner_opt_state,
                                                    params=params, **extra_args)
        emit = bool(int(state.mini_step) == k_steps - 1)
        inner_state = tree_map(_select_like, state.inner_opt_state, new_inner) if emit \
            else state.inner_opt_state
        keep = 0 if emit else 1
        new_state = MultiStepsState(
            mini_step=np.int32(int(safe_increment(state.mini_step)) % k_steps),
            gradient_step=safe_increment(state.gradient_step) if emit else state.gradient_step,
            inner_opt_state=inner_state,
            acc_grads=tree_map(lambda a: self._acc_cast(a * a.dtype.type(keep)), acc_grads),
            skip_state=skip_state)
        final_updates = tree_map(lambda u: u * u.dtype.type(emit), final_updates)
        return final_updates, new_state

    def step(self, params, grads, state, **extra_args):
        """``update`` followed by ``apply_updates`` (``(params, state)``)."""
        from ..base import apply_updates
        updates, state = self.update(grads, state, params, **extra_args)
        return apply_updates(params, updates), state

    def has_updated(self, state):
        """True right after a step that emitted the inner update."""
        return np.logical_and(state.mini_step == 0, state.gradient_step > 0)

    def gradient_transformation(self):
        """``GradientTransformation(self.init, self.update)``."""
        return GradientTransformation(self.init, self.update)


def _select_like(old, new):
    """``new`` in ``old``'s dtype (optax: ``where(emit, new, old).astype(old.dtype)``)."""
    if hasattr(old, "dtype") and hasattr(new, "dtype") and new.dtype != old.dtype:
        return np.asarray(new).astype(old.dtype)
    return new


# ---------------------------------------------------------------------------
# apply_if_finite
# ---------------------------------------------------------------------------


class ApplyIfFiniteState(NamedTuple):
    """The state of ``apply_if_finite``."""
    notfinite_count: Any  # int32: consecutive non-finite updates (0 after a finite one)
    last_finite: Any      # bool: whether the last update was finite
    total_notfinite: Any  # int32: non-finite updates since init
    inner_state: Any


def _all_finite(tree):
    return all(bool(np.all(np.isfinite(x))) for x in tree_leaves(tree))


def apply_if_finite(inner, max_consecutive_errors):
    """Skips updates that contain an inf or a NaN, up to a limit.

    A non-finite update is replaced by zeros and the inner state is kept,
    unless more than ``max_consecutive_errors`` non-finite updates came in
    a row (``notfinite_count > max_consecutive_errors``): then it is passed
    to ``inner`` anyway.

    Args:
      inner: the transformation to protect.
      max_consecutive_errors: how many non-finite updates in a row to skip.

    Returns:
      A GradientTransformation with state ``ApplyIfFiniteState``.
    """
    inner = as_transformation("inner", inner)
    if not isinstance(max_consecutive_errors, numbers.Integral) or isinstance(
            max_consecutive_errors, bool):
        raise TypeError(f"max_consecutive_errors: expected an integer >= 0, got "
                        f"{max_consecutive_errors!r}")
    if max_consecutive_errors < 0:
        raise ValueError(f"max_consecutive_errors: expected an integer >= 0, got "
                         f"{max_consecutive_errors!r}")
    max_consecutive_errors = int(max_consecutive_errors)

    def init_fn(params):
        return ApplyIfFiniteState(notfinite_count=ZERO, last_finite=np.bool_(True),
                                  total_notfinite=ZERO, inner_state=inner.init(params))

    def decide(updates, state):
        if not isinstance(state, ApplyIfFiniteState):
            raise TypeError(f"state: expected the ApplyIfFiniteState made by "
                            f"apply_if_finite(...).init, got {type(state).__name__}")
        isfinite = _all_finite(updates)
        notfinite_count = ZERO if isfinite else safe_increment(state.notfinite_count)
        total = state.total_notfinite if isfinite else safe_increment(state.total_notfinite)
        apply = isfinite or int(notfinite_count) > max_consecutive_errors
        return isfinite, notfinite_count, total, apply

    def update_fn(updates, state, params=None, **extra_args):
        isfinite, notfinite_count, total, apply = decide(updates, state)
        if apply:
            updates, new_inner = inner.update(updates, state.inner_state, params, **extra_args)
        else:
            updates, new_inner = tree_map(np.zeros_like, updates), state.inner_state
        return updates, ApplyIfFiniteState(notfinite_count=notfinite_count,
                                           last_finite=np.bool_(isfinite),
                                           total_notfinite=total, inner_state=new_inner)

    def fused_step(params, grads, state, **extra_args):
        isfinite, notfinite_count, total, apply = decide(grads, state)
        if apply:
            params, new_inner = inner.step(params, grads, state.inner_state, **extra_args)
        else:
            new_inner = state.inner_state   # p + 0 == p: params unchanged
        return params, ApplyIfFiniteState(notfinite_count=notfinite_count,
                                          last_finite=np.bool_(isfinite),
                                          total_notfinite=total, inner_state=new_inner)

    return GradientTransformationExtraArgs(init_fn, update_fn, fused_step=fused_step)


# ---------------------------------------------------------------------------
# zero_nans
# ---------------------------------------------------------------------------


class ZeroNansState(NamedTuple):
    """``found_nan``: a tree like the params of bools, True where the last
    update's leaf had a NaN."""
    found_nan: Any


def zero_nans():
    """Replaces NaNs in the updates by zeros, and records per leaf where it did.

    Infinities are kept. The state (``ZeroNansState(found_nan)``) is only
    informative.
    """
    def init_fn(params):
        return ZeroNansState(found_nan=tree_map(lambda p: np.bool_(False), params))

    def update_fn(updates, state, params=None, **extra_args):
        def zero(u):
            u = np.asarray(u)
            return np.where(np.isnan(u), u.dtype.type(0), u)
        found = tree_map(lambda u: np.bool_(np.any(np.isnan(u))), updates)
        return tree_map(zero, updates), ZeroNansState(found_nan=found)

    return GradientTransformation(init_fn, update_fn)
