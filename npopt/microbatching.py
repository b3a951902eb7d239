"""Microbatching: evaluate a function on slices of a batch, one after the
other, and combine the results (optax 0.2.8, ``optax.microbatching``).

``microbatch(fun, argnums, microbatch_size, accumulator)`` returns a function
with ``fun``'s arguments that splits the batch arguments into
``batch_size // microbatch_size`` microbatches, calls ``fun`` on each in turn
(a Python loop where optax has a ``lax.fori_loop``) and combines the results
as ``accumulator`` says (SUM, MEAN, RUNNING_MEAN, CONCAT, or an
``Accumulator``; a tree of them, a prefix of ``fun``'s output, for
different parts of the output).

As in optax, microbatch ``i`` holds the rows ``i, i + n, i + 2n, ...`` of the
batch (``n`` the number of microbatches): ``reshape_batch_axis`` reshapes the
batch axis in column-major order, and CONCAT puts the rows back in their
original order.

``micro_vmap`` maps ``fun`` over the examples of each microbatch with
``vmap_fn``: npopt's default, ``loop_vmap``, calls ``fun`` once per example
and stacks the results (NumPy has no ``jax.vmap``; give a vectorized
``vmap_fn`` where ``fun`` can take a whole microbatch). ``micro_grad`` needs
JAX's automatic differentiation and raises ``NotImplementedError``.
"""
import collections
import dataclasses
import enum
import numbers
from typing import Callable

import numpy as np

from . import _checks
from .tree import tree_leaves, tree_map

IndividualOutputs = collections.namedtuple("Aux", ["values", "metrics", "aux"])


@dataclasses.dataclass(frozen=True)
class Accumulator:
    """How the results of the microbatches are combined::

        carry = init(x_0)               # x_0: the first microbatch's result
        for i in range(n):
            carry = update(carry, x_i, i)
        return finalize(carry)

    Attributes:
      init: ``f(value) -> carry`` from the first result (only its shape and
        dtype are used: optax gives it a shape/dtype struct).
      update: ``f(carry, value, index) -> carry``.
      finalize: ``f(carry) -> result``.
      aggregate: ``f(per_example_values) -> value``, the reduction over the
        examples of one microbatch (used by ``micro_vmap``).
    """
    init: Callable
    update: Callable
    finalize: Callable
    aggregate: Callable


class AccumulationType(enum.Enum):
    """The built-in ways to combine the microbatches' results."""
    MEAN = enum.auto()
    """Average the microbatch outputs."""
    SUM = enum.auto()
    """Sum the microbatch outputs."""
    RUNNING_MEAN = enum.auto()
    """Average the microbatch outputs over ``num_real_microbatches``."""
    CONCAT = enum.auto()
    """Concatenate the microbatch outputs along axis 0."""


def _dtype_of(x):
    return x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype


def _with_floating_check(fn):
    def wrapper(value):
        if not np.issubdtype(_dtype_of(value), np.floating):
            raise ValueError("MEAN and RUNNING_MEAN Accumulators require floating-point "
                             f"values, got a value of dtype {_dtype_of(value)}")
        return fn(value)
    return wrapper


def _zeros_like(x):
    return np.zeros(np.shape(x), _dtype_of(x))


def reshape_batch_axis(tree, microbatch_size, axis=0):
    """Reshapes each leaf's batch axis ``axis`` to ``(num_microbatches,
    microbatch_size)``, in column-major order: entry ``[i, j]`` is row
    ``i + j * num_microbatches`` (so microbatch ``i`` takes every
    ``num_microbatches``-th row from row ``i``).

    Args:
      tree: a tree of arrays, each with a batch axis at ``axis``.
      microbatch_size: the rows per microbatch; must divide the batch size.
      axis: the batch axis.

    Returns:
      The tree of reshaped arrays (views where NumPy can).
    """
    microbatch_size = _check_size("microbatch_size", microbatch_size)

    def reshape_leaf(x):
        x = np.asarray(x)
        if not -x.ndim <= axis < x.ndim:
            raise ValueError(f"axis: {axis} out of range for a leaf of shape {x.shape}")
        ax = axis % x.ndim
        if x.shape[ax] % microbatch_size:
            raise ValueError(f"microbatch_size: {microbatch_size} does not divide the batch "
                             f"axis {ax} of size {x.shape[ax]}")
        new_shape = x.shape[:ax] + (-1, microbatch_size) + x.shape[ax + 1:]
        return x.reshape(new_shape, order="F")

    return tree_map(reshape_leaf, tree)


def _check_size(name, n):
    if isinstance(n, bool) or not isinstance(n, (numbers.Integral, np.integer)) or n < 1:
        raise ValueError(f"{name}: expected an integer >= 1, got {_checks._describe(n)}")
    return int(n)


def _lift(acc):
    """An array Accumulator made to work leaf by leaf on trees."""
    return Accumulator(
        lambda value: tree_map(acc.init, value),
        lambda carry, value, i: tree_map(lambda c, v: acc.update(c, v, i), carry, value),
        lambda carry: tree_map(acc.finalize, carry),
        lambda values: tree_map(acc.aggregate, values))


def _compose(accumulators):
    """A tree of Accumulators (a prefix of the values) as one Accumulator."""
    def init(values):
        return tree_map(lambda a, v: a.init(v), accumulators, values)

    def update(carry, value, index):
        return tree_map(lambda a, c, v: a.update(c, v, index), accumulators, carry, value)

    def finalize(carry):
        return tree_map(lambda a, c: a.finalize(c), accumulators, carry)

    def aggregate(values):
        return tree_map(lambda a, v: a.aggregate(v), accumulators, values)

    return Accumulator(init, update, finalize, aggregate)


def _sum():
    return _lift(Accumulator(
        init=_zeros_like,
        update=lambda carry, value, _: carry + value,
        finalize=lambda x: x,
        aggregate=lambda x: np.sum(x, axis=0)))


def _mean(num_microbatches):
    if num_microbatches <= 0:
        raise ValueError(f"num_microbatches={num_microbatches} must be positive.")
    return _lift(Accumulator(
        init=_with_floating_check(_zeros_like),
        update=lambda carry, value, _: carry + value,
        finalize=lambda carry: np.asarray(carry / num_microbatches).astype(
            _dtype_of(carry), copy=False),
        aggregate=lambda x: np.mean(x, axis=0)))


def _running_mean():
    def update(carry, value, index):
        # optax: p = index / (index + 1) (weakly typed), each factor rounded to
        # the carry's dtype before the products
        p = index / (index + 1)
        t = np.result_type(_dtype_of(carry), _dtype_of(value)).type
        return carry * t(p) + value * t(1 - p)

    return _lift(Accumulator(
        init=_with_floating_check(_zeros_like),
        update=update,
        finalize=lambda x: x,
        aggregate=lambda x: np.mean(x, axis=0)))


def _concat(num_microbatches):
    if num_microbatches <= 0:
        raise ValueError(f"num_microbatches={num_microbatches} must be positive.")

    def init(value):
        return np.zeros((num_microbatches,) + np.shape(value), _dtype_of(value))

    def update(carry, value, index):
        carry[index] = value      # the carry is this loop's own buffer
        return carry

    def finalize(carry):
        return carry.reshape(-1, *carry.shape[2:], order="F")

    return _lift(Accumulator(init, update, finalize, lambda x: x))


def _canonicalize(tree, num_microbatches):
    """A tree of Accumulators / AccumulationTypes as one Accumulator."""
    def fun(acc):
        if isinstance(acc, Accumulator):
            return acc
        if acc is AccumulationType.MEAN:
            return _mean(num_microbatches)
        if acc is AccumulationType.SUM:
            return _sum()
        if acc is AccumulationType.RUNNING_MEAN:
            return _running_mean()
        if acc is AccumulationType.CONCAT:
            return _concat(num_microbatches)
        raise ValueError(f"accumulator: Unknown accumulator: {acc!r} (expected an "
                         "AccumulationType, an Accumulator or a tree of them)")

    return _compose(tree_map(fun, tree))


def _batch_size(x, ax, name):
    shape = np.shape(x)
    if not -len(shape) <= ax < len(shape):
        raise ValueError(f"{name}: batch axis {ax} out of range for a leaf of shape "
                         f"{tuple(shape)}")
    return shape[ax]


def microbatch(fun, argnums, microbatch_size, accumulator=AccumulationType.SUM, *,
               argnames=(), in_axes=0, num_real_microbatches=None):
    """Evaluates ``fun`` microbatch by microbatch and combines the results.

    Conceptually (SUM)::

        def microbatched_fun(full_batch):
            acc = 0
            for microbatch in full_batch:
                acc += fun(microbatch)
            return acc

    Args:
      fun: any function.
      argnums: the index (or indices) of the positional arguments with a
        batch axis.
      microbatch_size: the rows of each microbatch; must divide the batch
        size. None: return ``fun`` itself.
      accumulator: how to combine the results: an ``AccumulationType``, an
        ``Accumulator``, or a tree of them that is a prefix of ``fun``'s
        output.
      argnames: the name (or names) of the keyword arguments with a batch axis.
      in_axes: the batch axis of each argument of ``argnums + argnames`` (one
        integer for all).
      num_real_microbatches: stop after this many microbatches (None: all;
        more than there are: all).

    Returns:
      A function with ``fun``'s arguments.

    npopt differs from optax on purpose in that the loop is Python's (each
    microbatch is evaluated once, ``fun`` may be any NumPy code), and an
    ``Accumulator``'s ``init`` gets the first microbatch's result (optax
    gives it the result's shape and dtype, from ``jax.eval_shape``).
    """
    _checks.check_callable("fun", fun)
    if microbatch_size is None:
        return fun
    microbatch_size = _check_size("microbatch_size", microbatch_size)
    if isinstance(argnums, (numbers.Integral, np.integer)):
        argnums = (argnums,)
    argnums = tuple(int(i) for i in argnums)
    if isinstance(argnames, str):
        argnames = (argnames,)
    argnames = tuple(argnames)
    if isinstance(in_axes, (numbers.Integral, np.integer)):
        in_axes = (int(in_axes),) * (len(argnums) + len(argnames))
    in_axes = tuple(in_axes)
    if len(in_axes) != len(argnums) + len(argnames):
        raise ValueError(f"in_axes: expected one axis per batch argument ({len(argnums)} "
                         f"argnums + {len(argnames)} argnames), got {len(in_axes)}")
    if num_real_microbatches is not None:
        num_real_microbatches = int(num_real_microbatches)
        if num_real_microbatches < 0:
            raise ValueError(f"num_real_microbatches: expected an integer >= 0, got "
                             f"{num_real_microbatches}")

    def microbatched_fun(*args, **kwargs):
        for i in argnums:
            if not -len(args) <= i < len(args):
                raise ValueError(f"argnums: {i} is not a positional argument's index "
                                 f"({len(args)} given)")
        for n in argnames:
            if n not in kwargs:
                raise ValueError(f"argnames: {n!r} is not among the keyword arguments given")
        batch = [(args[i], ax, f"argument {i}") for i, ax in zip(argnums, in_axes)]
        batch += [(kwargs[n], ax, f"argument {n!r}")
                  for n, ax in zip(argnames, in_axes[len(argnums):])]
        sizes = [_batch_size(x, ax, what) for b, ax, what in batch for x in tree_leaves(b)]
        if len(set(sizes)) > 1:
            raise ValueError(f"Batch Arguments must have equal-size batch axes, found {sizes}.")
        if not sizes:
            raise ValueError("argnums/argnames: no batch argument has an array leaf")
        batch_size = sizes[0]
        if batch_size % microbatch_size != 0:
            raise ValueError(f"batch_size={batch_size} must be divisible by "
                             f"microbatch_size={microbatch_size}.")
        num_microbatches = batch_size // microbatch_size
        acc = _canonicalize(accumulator, num_microbatches)
        new_args, new_kwargs = list(args), dict(kwargs)
        for i, ax in zip(argnums, in_axes):
            new_args[i] = reshape_batch_axis(args[i], microbatch_size, ax)
        for n, ax in zip(argnames, in_axes[len(argnums):]):
            new_kwargs[n] = reshape_batch_axis(kwargs[n], microbatch_size, ax)

        def f(index):
            a, k = list(new_args), dict(new_kwargs)
            for i, ax in zip(argnums, in_axes):
                a[i] = tree_map(lambda x, ax=ax: np.take(x, index, axis=ax), a[i])
            for n, ax in zip(argnames, in_axes[len(argnums):]):
                k[n] = tree_map(lambda x, ax=ax: np.take(x, index, axis=ax), k[n])
            return fun(*a, **k)

        bound = num_microbatches if num_real_microbatches is None else \
            min(num_real_microbatches, num_microbatches)
        first = f(0)
        carry = acc.init(first)
        for index in range(bound):
            carry = acc.update(carry, first if index == 0 else f(index), index)
        return acc.finalize(carry)

    return microbatched_fun


def loop_vmap(fun, in_axes=0, out_axes=0):
    """``jax.vmap``'s meaning with a Python loop: ``fun`` on each example
    (the slices along ``in_axes``; None: not mapped; keyword arguments are
    mapped along their axis 0), the results stacked along axis 0."""
    if out_axes != 0:
        raise NotImplementedError("out_axes != 0 is not supported")

    def mapped(*args, **kwargs):
        axes = (in_axes,) * len(args) if isinstance(in_axes, (int, type(None))) \
            else tuple(in_axes)
        if len(axes) != len(args):
            raise ValueError(f"in_axes: {len(axes)} entries for {len(args)} positional "
                             "arguments")
        sizes = {np.shape(x)[ax] for a, ax in zip(args, axes) if ax is not None
                 for x in tree_leaves(a)}
        sizes |= {np.shape(x)[0] for v in kwargs.values() for x in tree_leaves(v)}
        if len(sizes) != 1:
            raise ValueError(f"loop_vmap: the mapped arguments must have one batch size, "
                             f"found {sorted(sizes)}")
        n = sizes.pop()
        outs = []
        for j in range(n):
            a = [a if ax is None else tree_map(lambda x, ax=ax: np.take(x, j, axis=ax), a)
                 for a, ax in zip(args, axes)]
            k = {name: tree_map(lambda x: np.asarray(x)[j], v) for name, v in kwargs.items()}
            outs.append(fun(*a, **k))
        return tree_map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *outs)

    return mapped


def micro_vmap(fun, in_axes=0, out_axes=0, *, microbatch_size=None, vmap_fn=loop_vmap,
               accumulator=AccumulationType.CONCAT, num_real_microbatches=None):
    """``vmap`` with microbatching: ``fun`` mapped over the batch axis,
    ``microbatch_size`` examples at a time, the results combined by
    ``accumulator`` (CONCAT: stacked, as ``vmap``; SUM / MEAN: reduced over
    the batch).

    Args:
      fun: the function of one example.
      in_axes: the batch axis of each positional argument (None: not
        mapped); keyword arguments are mapped along axis 0.
      out_axes: must be 0.
      microbatch_size: examples per microbatch (None: all at once).
      vmap_fn: ``vmap_fn(fun, in_axes, out_axes)`` maps ``fun`` over a
        microbatch. npopt's default, ``loop_vmap``, loops over the examples
        (optax's is ``jax.vmap``); give a vectorized one where ``fun`` can
        take the whole microbatch.
      accumulator: see ``microbatch``.
      num_real_microbatches: see ``microbatch``.

    Returns:
      The mapped function, with ``fun``'s arguments.
    """
    _checks.check_callable("fun", fun)
    _checks.check_callable("vmap_fn", vmap_fn)
    if out_axes != 0:
        raise NotImplementedError("out_axis != 0 is not currently supported")
    if isinstance(in_axes, (numbers.Integral, np.integer)):
        in_axes = (int(in_axes),)
    in_axes = tuple(in_axes)

    def vmap_reduce_fn(*args, kwargs):
        output = vmap_fn(fun, in_axes, out_axes)(*args, **kwargs)
        size = np.shape(tree_leaves(output)[0])[0]
        return _canonicalize(accumulator, size).aggregate(output)

    micro_vmap_fn = microbatch(
        vmap_reduce_fn,
        argnums=tuple(i for i, ax in enumerate(in_axes) if ax is not None),
        argnames="kwargs",
        microbatch_size=microbatch_size,
        accumulator=accumulator,
        in_axes=tuple(ax for ax in in_axes if ax is not None) + (0,),
        num_real_microbatches=num_real_microbatches)

    def wrapped_fn(*args, **kwargs):
        if microbatch_size is None:
            return vmap_reduce_fn(*args, kwargs=kwargs)
        return micro_vmap_fn(*args, kwargs=kwargs)

    return wrapped_fn


def micro_grad(fun, has_aux=False, argnums=0, *, batch_argnums=1, keep_batch_dim=True,
               microbatch_size=None, accumulator=AccumulationType.SUM,
               transform_fn=lambda x: x, metrics_fn=lambda x: None,
               num_real_microbatches=None):
    """Not available in npopt: optax's ``micro_grad`` differentiates ``fun``
    with ``jax.value_and_grad``, and NumPy has no automatic differentiation.

    The NumPy counterpart: write the per-example ``value_and_grad`` yourself
    and map it with ``micro_vmap(grad_fn, accumulator=(MEAN, CONCAT), ...)``.

    Raises:
      NotImplementedError, always.
    """
    raise NotImplementedError(
        "micro_grad: npopt has no automatic differentiation (optax's micro_grad applies "
        "jax.value_and_grad to `fun`). Compute per-example (value, grad) with your own "
        "function and combine them with npopt.microbatching.micro_vmap(value_and_grad_fn, "
        "in_axes=..., accumulator=..., microbatch_size=...).")


__all__ = ["Accumulator", "AccumulationType", "micro_grad", "micro_vmap", "microbatch",
           "reshape_batch_axis", "loop_vmap"]
