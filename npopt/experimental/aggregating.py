"""Transformations that aggregate per-element gradients (optax 0.2.8's
``optax.experimental.aggregating``).

This is optax's *experimental* API: optax may change or drop it in a later
release, and npopt follows optax 0.2.8's version of it.

An ``Aggregator`` is a ``GradientTransformationExtraArgs`` whose ``update``
takes per-element (per-example) updates, leaves of shape
``[*batch_shape, *param_shape]``, and returns one update of the params'
shape. ``process(preprocessor, aggregator, postprocessor)`` maps the
per-element gradients (``preprocessor``, e.g. per-example clipping),
aggregates them, and hands the aggregate to an ordinary optimizer
(``postprocessor``) once the aggregator's state says it is ``ready``
(after ``accumulation_steps`` microbatches; zeros are returned before).

Per microbatch ``k`` of ``n`` elements with mean :math:`\\bar g_k` and sum of
squared deviations :math:`S_k = \\sum_i (g_i - \\bar g_k)^2`, the running
mean and sum over ``k`` microbatches are updated as in Chan et al. (1979),
"Updating formulae and a pairwise algorithm for computing sample
variances":

.. math::

    \\delta = \\bar g_k - \\mu_{k-1}, \\qquad
    \\mu_k = \\mu_{k-1} + \\delta / k, \\qquad
    M_k = M_{k-1} + S_k + \\delta^2 \\, \\frac{(k-1)\\, n}{k},

so that after ``k`` microbatches :math:`\\mu_k` is the mean and
:math:`M_k / (kn - 1)` the unbiased variance of the ``kn`` elements.

Numbers: the same operations in the same order as optax, with JAX's dtype
rules spelled out where NumPy's differ (under ``jax_enable_x64``): integer
counters divide as JAX divides them (``int32 / int32`` is float32 there, so
``1 / (sample_size - 1)`` and the ``(k-1) n / k`` factor are float32
numbers when the counters are int32, whatever the leaves' dtype), and a
leaf divided by a counter keeps its dtype. ``jax.lax.cond``/``tree.where``
on the ``ready`` flag are Python branches on the host value. Means and sums
over the per-element axes add the elements one after the other, in the
row-major order of those axes, starting from zero (XLA's order for small
batches; for large ones XLA reorders, so agreement with optax is to
rounding there): the result depends neither on the CPU nor on the memory
layout.

Where npopt departs from optax on purpose (clear errors instead of silent
or late failures):

* ``accumulation_steps`` must be an integer >= 1 in every factory (optax
  checks it only in ``accumulate_avg_updates``; with 0 or 2.5
  ``get_per_element_mean_and_sum_sq_diff_grads`` never outputs);
* ``per_elt_axis`` must be an int or a sequence of distinct ints within
  each leaf's dimensions; an empty per-element axis (no elements) raises
  instead of giving NaN means;
* the variance needs ``sample_size >= 2`` (optax divides by zero);
* ``get_unbiased_mean_and_variance_ema`` raises before the first update
  (``count == 0``, where optax returns 0/0);
* updates whose structure or shapes differ from the state's raise, where
  JAX would broadcast them into the state;
* the EMA's bias correction is cast to each leaf's dtype (optax's, for the
  weakly typed decay of a Python float; an ``ema_decay`` given as a float64
  array would make optax return float64 for float32 leaves).
"""
import math
import numbers
from typing import Any, NamedTuple, Protocol, Sequence, Union

import numpy as np

from .. import _checks
from ..base import (ArrayTree, GradientTransformation, GradientTransformationExtraArgs, OptState,
                    Params, TransformInitFn, Updates, identity, init_empty_state, safe_increment)
from ..transforms.combine import as_transformation, chain
from ..tree import (tree_bias_correction, tree_get, tree_leaves, tree_map, tree_structure,
                    tree_zeros_like)

PerElementUpdates = ArrayTree
AggregatedUpdates = ArrayTree
MaybeAxis = Union[int, Sequence[int], None]

# optax's ``jnp.asarray(0)`` under jax_enable_x64 (int32 without it)
_ACCUMULATE_COUNTER = np.int64
# per-element sums of up to this many numbers run as one cumsum (a temporary
# of the input's size); larger ones add row by row in place
_ONE_CALL_MAX = 1 << 20


class AggregatorUpdateFn(Protocol):
    """Update function for aggregators:
    ``update(per_elt_updates, state, params=None, **extra_args) ->
    (aggregated_updates, state)``."""

    def __call__(self, per_elt_updates: PerElementUpdates, state: OptState,
                 params: Union[Params, None] = None,
                 **extra_args: Any) -> "tuple[AggregatedUpdates, OptState]":
        """Transforms per-element updates into an aggregated update direction."""


class Aggregator(GradientTransformationExtraArgs):
    """``(init, update)`` of a stateful aggregation of per-element gradients.

    Where a ``GradientTransformation`` maps the aggregated (e.g. mini-batch
    averaged) gradient to an update of the params' shape, an aggregator
    takes per-element gradients, leaves of shape
    ``[*batch_shape, *params_shape]``, and returns an update direction of
    shape ``params_shape``::

        grads = per_example_grads(params, batch)     # leading batch axes
        updates, state = aggregator.update(grads, state)

    The signatures are those of a ``GradientTransformationExtraArgs`` (it is
    one); the class tells the user which gradients to feed it.

    Attributes:
      init: ``init(params) -> state``.
      update: ``update(per_elt_updates, state, params=None, **extra_args) ->
        (updates, state)``.
    """

    init: TransformInitFn
    update: AggregatorUpdateFn


# ---------------------------------------------------------------------------
# argument checks and fixed-order reductions
# ---------------------------------------------------------------------------

def _check_steps(accumulation_steps):
    if isinstance(accumulation_steps, (bool, np.bool_)) or not isinstance(
            accumulation_steps, (numbers.Integral, np.integer)):
        raise TypeError("accumulation_steps: expected an integer >= 1, got "
                        f"{_checks._describe(accumulation_steps)}")
    if accumulation_steps < 1:
        raise ValueError("accumulation_steps must be larger than or equal to 1; got "
                         f"{accumulation_steps}")
    return int(accumulation_steps)


def _is_int(x):
    return isinstance(x, (numbers.Integral, np.integer)) and not isinstance(x, (bool, np.bool_))


def _check_axis(per_elt_axis):
    """An int, or a sequence of distinct ints (returned as a tuple)."""
    if _is_int(per_elt_axis):
        return int(per_elt_axis)
    if isinstance(per_elt_axis, (list, tuple)) and all(_is_int(a) for a in per_elt_axis):
        axes = tuple(int(a) for a in per_elt_axis)
        if len(set(axes)) != len(axes):
            raise ValueError(f"per_elt_axis: expected distinct axes, got {per_elt_axis!r}")
        return axes
    raise TypeError("per_elt_axis: expected an int or a sequence of ints, got "
                    f"{_checks._describe(per_elt_axis)}")


def _leaf_axes(per_elt_axis, shape):
    """The per-element axes of a leaf of ``shape``, non-negative and sorted."""
    axes = (per_elt_axis,) if isinstance(per_elt_axis, int) else per_elt_axis
    nd = len(shape)
    out = []
    for a in axes:
        if not -nd <= a < nd:
            raise ValueError(f"per_elt_axis: axis {a} is out of range for a per-element "
                             f"update of shape {tuple(shape)}")
        out.append(a % nd)
    if len(set(out)) != len(out):
        raise ValueError(f"per_elt_axis: axes {per_elt_axis!r} repeat an axis of a "
                         f"per-element update of shape {tuple(shape)}")
    return tuple(sorted(out))


def _inexact(dtype):
    """The dtype JAX computes a mean (or a true division) of ``dtype`` in:
    floats and complex as they are, 64-bit integers in float64, smaller
    integers and bools in float32."""
    dtype = np.dtype(dtype)
    if dtype.kind in "fc":
        return dtype
    return np.dtype(np.float64 if dtype.itemsize >= 8 else np.float32)


def _real(dtype):
    return np.finfo(dtype).dtype


def _as_inexact(x):
    x = np.asarray(x)
    return x.astype(_inexact(x.dtype), copy=False)


def _sum_per_element(x, axes):
    """``x`` summed over ``axes``: the elements added one after the other
    (row-major over ``axes``), starting from +0; the other axes in order."""
    rest = [i for i in range(x.ndim) if i not in axes]
    n = math.prod(x.shape[i] for i in axes)
    if n == 0:
        raise ValueError("per_elt_updates: no elements along per_elt_axis (a per-element "
                         f"update of shape {x.shape}); expected a non-empty batch")
    y = np.transpose(x, list(axes) + rest).reshape((n,) + tuple(x.shape[i] for i in rest))
    if y.size <= _ONE_CALL_MAX:
        # an accumulate is sequential by definition: y[0] + y[1] + ... + y[n-1]
        s = np.cumsum(y, axis=0)[-1]
    else:           # the same additions, in place on one row (no temporary of y's size)
        s = y[0].copy()
        for i in range(1, n):
            s += y[i]
    return s + x.dtype.type(0)          # as from +0: a sum of -0.0s is +0.0


def _keep(s, shape, axes):
    return s.reshape(tuple(1 if i in axes else d for i, d in enumerate(shape)))


def _mean_per_element(x, per_elt_axis, keepdims=False):
    """``jnp.mean(x, axis=per_elt_axis, keepdims=keepdims)``: the fixed-order
    sum, divided by the count in x's (real) dtype."""
    x = _as_inexact(x)
    axes = _leaf_axes(per_elt_axis, x.shape)
    n = math.prod(x.shape[i] for i in axes)
    m = _sum_per_element(x, axes) / _real(x.dtype).type(n)
    return _keep(m, x.shape, axes) if keepdims else m


def _mean_and_sum_sq_diff(x, per_elt_axis):
    """(mean, sum of squared deviations from it) over the per-element axes."""
    x = _as_inexact(x)
    axes = _leaf_axes(per_elt_axis, x.shape)
    n = math.prod(x.shape[i] for i in axes)
    mean = _keep(_sum_per_element(x, axes) / _real(x.dtype).type(n), x.shape, axes)
    d = x - mean
    squeezed = tuple(size for i, size in enumerate(x.shape) if i not in axes)
    return mean.reshape(squeezed), _sum_per_element(d * d, axes)


def _true_divide(a, b):
    """``a / b`` for integer counters, with JAX's dtype: Python ints divide
    in Python (float64), NumPy integers in float32 if both are 32-bit or
    smaller (JAX's ``int32 / int32``), else in float64."""
    if isinstance(a, (int, np.integer, np.ndarray)) and isinstance(
            b, (int, np.integer, np.ndarray)) and not (isinstance(a, int) and isinstance(b, int)):
        dt = np.result_type(*[x for x in (a, b) if not isinstance(x, int)])
        ft = _inexact(dt).type
        return ft(a) / ft(b)
    return a / b


def _divide_by_count(x, count):
    """A leaf divided by an integer counter: the counter converted to the
    leaf's dtype first (JAX's weak and int32 counters do not promote)."""
    x = _as_inexact(x)
    return x / _real(x.dtype).type(count)


def _leaves_like(name, tree, like, like_name):
    """``tree``'s leaves, checked to have the structure and shapes of ``like``."""
    treedef = tree_structure(like)
    leaves = treedef.flatten_up_to(tree, name)
    for i, (u, a) in enumerate(zip(leaves, tree_leaves(like))):
        if np.shape(u) != np.shape(a):
            where = "" if len(leaves) == 1 else f" (leaf {i} of {len(leaves)})"
            raise ValueError(
                f"{name}: shape {np.shape(u)} where the state's {like_name} has shape "
                f"{np.shape(a)}{where}; expected updates of the params' shapes (per-element "
                "updates go through an aggregator with a per_elt_axis first)")
    return treedef, leaves


# ---------------------------------------------------------------------------
# process
# ---------------------------------------------------------------------------

def process(preprocessor, aggregator, postprocessor, aggregator_has_aux=False):
    """Process gradients through a sequence of transformations.

    ``preprocessor`` maps per-element gradients to per-element updates,
    ``aggregator`` aggregates them into one update, ``postprocessor`` (an
    ordinary optimizer) maps that to the final update. The postprocessor
    runs only when the aggregator's state has no ``ready`` flag or its flag
    is set (an accumulating aggregator sets it once every
    ``accumulation_steps`` calls); otherwise the update is zeros and the
    postprocessor's state is kept.

    Args:
      preprocessor: a transformation of per-element gradients.
      aggregator: a transformation (or ``Aggregator``) of per-element
        updates into a single update.
      postprocessor: a transformation of the aggregated update.
      aggregator_has_aux: whether the aggregator returns ``(updates, aux)``
        with ``aux`` a dict of extra arguments for the postprocessor's
        update (``get_per_element_mean_and_sum_sq_diff_grads`` does).

    Returns:
      An ``Aggregator`` if ``aggregator`` is one, else a
      ``GradientTransformationExtraArgs``; its state is the tuple
      ``(preprocess_state, aggregate_state, postprocess_state)``.

    Example::

        opt = process(npopt.identity(), average_per_element_updates(0), npopt.adam(0.1))
        state = opt.init(params)
        updates, state = opt.update(per_example_grads, state)
    """
    pre = as_transformation("preprocessor", preprocessor)
    agg = as_transformation("aggregator", aggregator)
    post = as_transformation("postprocessor", postprocessor)
    has_aux = _checks.check_bool("aggregator_has_aux", aggregator_has_aux)

    def init_fn(params):
        return pre.init(params), agg.init(params), post.init(params)

    def update_fn(indiv_grads, states, params=None, **extra_args):
        if not isinstance(states, tuple) or len(states) != 3:
            raise TypeError("state: expected the 3-tuple (preprocess_state, aggregate_state, "
                            "postprocess_state) made by process's init, got "
                            f"{type(states).__name__}")
        preprocess_state, aggregate_state, postprocess_state = states
        indiv_updates, new_preprocess_state = pre.update(
            indiv_grads, preprocess_state, params, **extra_args)
        aggregated, new_aggregate_state = agg.update(
            indiv_updates, aggregate_state, params, **extra_args)
        if has_aux:
            if not (isinstance(aggregated, tuple) and len(aggregated) == 2
                    and isinstance(aggregated[1], dict)):
                raise TypeError("aggregator_has_aux=True: expected the aggregator to return "
                                "((updates, aux_dict), state), got updates of type "
                                f"{type(aggregated).__name__}")
            avg_updates, agg_aux = aggregated
            extra_args = extra_args | agg_aux
        else:
            avg_updates = aggregated
        ready = tree_get(new_aggregate_state, "ready", True)
        if bool(np.asarray(ready)):
            updates, new_postprocess_state = post.update(
                avg_updates, postprocess_state, params, **extra_args)
        else:
            updates, new_postprocess_state = tree_zeros_like(avg_updates), postprocess_state
        return updates, (new_preprocess_state, new_aggregate_state, new_postprocess_state)

    if isinstance(aggregator, Aggregator):
        return Aggregator(init_fn, update_fn)
    return GradientTransformationExtraArgs(init_fn, update_fn)


# ---------------------------------------------------------------------------
# averaging and accumulation
# ---------------------------------------------------------------------------

def average_per_element_updates(per_elt_axis=0):
    """Average per-element updates over ``per_elt_axis`` (stateless).

    Args:
      per_elt_axis: the axis (or axes) of the elements.

    Returns:
      An ``Aggregator`` returning ``mean(updates, axis=per_elt_axis)`` leaf by
      leaf (summed in a fixed order, see the module docstring).
    """
    per_elt_axis = _check_axis(per_elt_axis)

    def update_fn(per_elt_updates, state, params=None, **extra_args):
        del params, extra_args
        return tree_map(lambda x: _mean_per_element(x, per_elt_axis), per_elt_updates), state

    return Aggregator(init_empty_state, update_fn)


class AccumulateAvgUpdatesState(NamedTuple):
    """State for the average gradient accumulator."""

    micro_step: Any  # int (int64: optax's jnp.asarray(0) under x64)
    ready: Any  # bool
    avg_grad: Updates


def accumulate_avg_updates(accumulation_steps):
    """Average the updates of ``accumulation_steps`` microbatches.

    The running average after microbatch ``k`` is
    :math:`a_k = a_{k-1} + (u_k - a_{k-1}) / k`. It is returned (and the
    state reset, ``ready`` set) at the ``accumulation_steps``-th call;
    zeros are returned before. Best used through ``process`` (see
    ``average_incrementally_updates``), which runs the optimizer only on
    the ready steps: the effective batch is ``accumulation_steps`` times the
    microbatch.

    Args:
      accumulation_steps: the number of microbatches (an integer >= 1; 1
        gives ``identity()``, which needs no state).

    Returns:
      A ``GradientTransformation``.
    """
    accumulation_steps = _check_steps(accumulation_steps)
    if accumulation_steps == 1:
        # one microbatch: nothing to accumulate (optax returns identity too)
        return identity()

    def init_fn(params):
        return AccumulateAvgUpdatesState(micro_step=_ACCUMULATE_COUNTER(0),
                                         ready=np.bool_(False),
                                         avg_grad=tree_zeros_like(params))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_state("state", state, AccumulateAvgUpdatesState,
                            "accumulate_avg_updates")
        treedef, u_leaves = _leaves_like("updates", updates, state.avg_grad, "avg_grad")
        new_micro_step = state.micro_step + 1
        new_avg_grad = treedef.unflatten([
            a + _divide_by_count(u - a, new_micro_step)
            for u, a in zip(u_leaves, tree_leaves(state.avg_grad))])
        if new_micro_step == accumulation_steps:
            return new_avg_grad, AccumulateAvgUpdatesState(
                micro_step=_ACCUMULATE_COUNTER(0), ready=np.bool_(True),
                avg_grad=tree_zeros_like(new_avg_grad))
        return tree_zeros_like(new_avg_grad), AccumulateAvgUpdatesState(
            micro_step=new_micro_step, ready=np.bool_(False), avg_grad=new_avg_grad)

    return GradientTransformation(init_fn, update_fn)


def average_incrementally_updates(per_elt_axis, accumulation_steps):
    """Average per-element updates and accumulate them over microbatches.

    Args:
      per_elt_axis: the axis (or axes) to average over, or None when the
        updates are already averaged (params-shaped).
      accumulation_steps: the number of microbatches to accumulate over.

    Returns:
      ``accumulate_avg_updates(accumulation_steps)`` when ``per_elt_axis`` is
      None, else an ``Aggregator``: ``average_per_element_updates`` chained
      with it.
    """
    if per_elt_axis is None:
        return accumulate_avg_updates(accumulation_steps)
    agg = chain(average_per_element_updates(per_elt_axis),
                accumulate_avg_updates(accumulation_steps))
    return Aggregator(agg.init, agg.update)


# ---------------------------------------------------------------------------
# mean and variance of the per-element gradients
# ---------------------------------------------------------------------------

def get_batch_size_from_per_elt_updates(per_elt_updates, per_elt_axis):
    """The number of elements of the per-element updates.

    Args:
      per_elt_updates: the per-element updates.
      per_elt_axis: the axis (or axes) of the elements.

    Returns:
      The batch size (a Python int): the size of ``per_elt_axis`` (the
      product of the sizes of its axes), which must be the same in every
      leaf.
    """
    per_elt_axis = _check_axis(per_elt_axis)

    def get_batch_size(u):
        shape = np.shape(u)
        axes = _leaf_axes(per_elt_axis, shape)
        return math.prod(shape[i] for i in axes)

    batch_sizes = [get_batch_size(u) for u in tree_leaves(per_elt_updates)]
    if not batch_sizes:
        raise ValueError("per_elt_updates: expected a tree with at least one leaf")
    if not all(b == batch_sizes[0] for b in batch_sizes):
        raise ValueError(
            f'Per-element updates must have the same batch size. Got: {batch_sizes}')
    return batch_sizes[0]


class PerElementMeanAndSumSqDiffGradsState(NamedTuple):
    """State for the per-element mean and variance accumulator."""

    micro_step: Any  # int32
    ready: Any  # bool
    mean_grads: Updates
    sum_sq_diff_grads: Updates


def get_per_element_mean_and_sum_sq_diff_grads(per_elt_axis=0, accumulation_steps=1):
    """Collect the mean and the sum of squared deviations of per-element gradients.

    Each update returns ``(mean, {'sum_sq_diff_grads': M, 'sample_size': N})``:
    the mean of the ``N`` per-element gradients seen since the last output
    and :math:`M = \\sum_i (g_i - \\text{mean})^2` (so ``M / (N - 1)`` is
    their unbiased variance), accumulated over ``accumulation_steps``
    microbatches with Chan et al.'s update (module docstring); zeros (and
    ``sample_size`` 0) before the last microbatch. See
    ``add_mean_variance_to_opt`` for its use.

    Args:
      per_elt_axis: the axis (or axes) of the elements.
      accumulation_steps: the number of microbatches to accumulate over.

    Returns:
      An ``Aggregator`` (stateless when ``accumulation_steps`` is 1, with
      ``sample_size`` a Python int; else with a
      ``PerElementMeanAndSumSqDiffGradsState`` and an int32 ``sample_size``).
    """
    per_elt_axis = _check_axis(per_elt_axis)
    accumulation_steps = _check_steps(accumulation_steps)

    def batch_stats(per_elt_updates):
        batch_size = get_batch_size_from_per_elt_updates(per_elt_updates, per_elt_axis)
        leaves = tree_leaves(per_elt_updates)
        stats = [_mean_and_sum_sq_diff(x, per_elt_axis) for x in leaves]
        treedef = tree_structure(per_elt_updates)
        return (batch_size, treedef.unflatten([m for m, _ in stats]),
                treedef.unflatten([s for _, s in stats]))

    def compute_avg_and_sum_sq_diff(per_elt_udpates, state, params=None, **extra_args):
        del params, extra_args
        batch_size, mean_grads, sum_sq_diff_grads = batch_stats(per_elt_udpates)
        aux_data = {'sum_sq_diff_grads': sum_sq_diff_grads, 'sample_size': batch_size}
        return (mean_grads, aux_data), state

    if accumulation_steps == 1:
        return Aggregator(init_empty_state, compute_avg_and_sum_sq_diff)

    def init_fn(params):
        return PerElementMeanAndSumSqDiffGradsState(
            micro_step=np.int32(0), ready=np.bool_(False),
            mean_grads=tree_zeros_like(params), sum_sq_diff_grads=tree_zeros_like(params))

    def update_fn(per_elt_udpates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_state("state", state, PerElementMeanAndSumSqDiffGradsState,
                            "get_per_element_mean_and_sum_sq_diff_grads")
        batch_size, batch_mean_grads, batch_sum_sq_diff_grads = batch_stats(per_elt_udpates)
        treedef, means = _leaves_like("per_elt_updates (averaged over per_elt_axis)",
                                      batch_mean_grads, state.mean_grads, "mean_grads")
        sums = treedef.flatten_up_to(batch_sum_sq_diff_grads)
        micro_step = state.micro_step
        new_micro_step = micro_step + 1

        # update the accumulated mean and sum of squared deviations
        deltas = [u - a for u, a in zip(means, tree_leaves(state.mean_grads))]
        new_mean_grads = treedef.unflatten([
            a + _divide_by_count(d, new_micro_step)
            for a, d in zip(tree_leaves(state.mean_grads), deltas)])
        size_factor = _true_divide(micro_step * batch_size, new_micro_step)
        new_sum_sq_diff_grads = treedef.unflatten([
            a + s + d * d * size_factor
            for a, s, d in zip(tree_leaves(state.sum_sq_diff_grads), sums, deltas)])
        sample_size = batch_size * new_micro_step

        if new_micro_step == accumulation_steps:
            outputs = (new_mean_grads, {'sum_sq_diff_grads': new_sum_sq_diff_grads,
                                        'sample_size': sample_size})
            return outputs, PerElementMeanAndSumSqDiffGradsState(
                micro_step=np.zeros_like(micro_step)[()], ready=np.bool_(True),
                mean_grads=tree_zeros_like(new_mean_grads),
                sum_sq_diff_grads=tree_zeros_like(new_sum_sq_diff_grads))
        outputs = (tree_zeros_like(new_mean_grads),
                   {'sum_sq_diff_grads': tree_zeros_like(new_sum_sq_diff_grads),
                    'sample_size': np.zeros_like(sample_size)[()]})
        return outputs, PerElementMeanAndSumSqDiffGradsState(
            micro_step=new_micro_step, ready=np.bool_(False), mean_grads=new_mean_grads,
            sum_sq_diff_grads=new_sum_sq_diff_grads)

    return Aggregator(init_fn, update_fn)


class PerElementMeanAndVarianceEMAState(NamedTuple):
    """State for the per-element mean and variance accumulator."""

    count: Any  # int32
    ema_decay: Any  # float
    mean_grads_ema: Updates
    variance_grads_ema: Updates


def _check_sample_size(sample_size):
    ok = _is_int(sample_size) or (isinstance(sample_size, np.ndarray) and sample_size.ndim == 0
                                  and sample_size.dtype.kind in "iu")
    if not ok or sample_size < 2:
        raise ValueError("sample_size: expected an integer >= 2 (the number of per-element "
                         "gradients behind sum_sq_diff_grads; the unbiased variance divides "
                         f"by sample_size - 1), got {_checks._describe(sample_size)}")
    return sample_size if isinstance(sample_size, int) else np.asarray(sample_size)[()]


def track_per_element_mean_and_variance_with_ema(ema_decay=0.9):
    """Track the mean and the variance of the per-element gradients with EMAs.

    With :math:`\\beta` = ``ema_decay``, the aggregated update :math:`g` and
    the unbiased variance :math:`v = M / (N - 1)` of the ``N`` per-element
    gradients (the ``sum_sq_diff_grads`` :math:`M` and ``sample_size``
    :math:`N` extra arguments of ``get_per_element_mean_and_sum_sq_diff_grads``,
    linked to this by ``process(..., aggregator_has_aux=True)``):

    .. math::

        m_t = (1 - \\beta) g + \\beta m_{t-1}, \\qquad
        s_t = (1 - \\beta) v + \\beta s_{t-1}.

    The updates pass through unchanged. ``get_unbiased_mean_and_variance_ema``
    reads the bias-corrected estimates from the state.

    Args:
      ema_decay: the EMA decay factor, in [0, 1].

    Returns:
      A ``GradientTransformationExtraArgs``; its update needs the keyword
      arguments ``sum_sq_diff_grads`` and ``sample_size``.
    """
    ema_decay = _checks.check_number("ema_decay", ema_decay, low=0.0, high=1.0)

    def ema(x, y):
        return (1.0 - ema_decay) * x + ema_decay * y

    def init_fn(params):
        return PerElementMeanAndVarianceEMAState(
            count=np.int32(0), ema_decay=np.asarray(ema_decay)[()],
            mean_grads_ema=tree_zeros_like(params), variance_grads_ema=tree_zeros_like(params))

    def update_fn(updates, state, params=None, *, sum_sq_diff_grads=None, sample_size=None,
                  **extra_args):
        del params, extra_args
        if sum_sq_diff_grads is None or sample_size is None:
            raise TypeError(
                "track_per_element_mean_and_variance_with_ema: update needs the keyword "
                "arguments sum_sq_diff_grads and sample_size (use it as a postprocessor of "
                "get_per_element_mean_and_sum_sq_diff_grads through process(..., "
                "aggregator_has_aux=True), as add_mean_variance_to_opt does)")
        _checks.check_state("state", state, PerElementMeanAndVarianceEMAState,
                            "track_per_element_mean_and_variance_with_ema")
        sample_size = _check_sample_size(sample_size)
        treedef, u_leaves = _leaves_like("updates", updates, state.mean_grads_ema,
                                         "mean_grads_ema")
        _, s_leaves = _leaves_like("sum_sq_diff_grads", sum_sq_diff_grads,
                                   state.variance_grads_ema, "variance_grads_ema")
        mean_grads_ema = treedef.unflatten([
            ema(x, y) for x, y in zip(u_leaves, tree_leaves(state.mean_grads_ema))])
        scale = _true_divide(1, sample_size - 1)
        variance_grads_ema = treedef.unflatten([
            ema(scale * x, y) for x, y in zip(s_leaves, tree_leaves(state.variance_grads_ema))])
        new_state = state._replace(count=safe_increment(state.count),
                                   mean_grads_ema=mean_grads_ema,
                                   variance_grads_ema=variance_grads_ema)
        return updates, new_state

    return GradientTransformationExtraArgs(init_fn, update_fn)


def get_unbiased_mean_and_variance_ema(state):
    """The bias-corrected mean and variance EMAs of an optimizer state.

    .. math::

        \\hat m = m_t / (1 - \\beta^t), \\qquad \\hat s = s_t / (1 - \\beta^t),

    with ``t`` the state's ``count`` (the correction computed in the decay's
    precision, then cast to each leaf's dtype).

    Args:
      state: a state holding one ``PerElementMeanAndVarianceEMAState``
        (that of ``add_mean_variance_to_opt``, say).

    Returns:
      ``(unbiased_mean_grads_ema, unbiased_variance_grads_ema)``.
    """
    ema_state = tree_get(state, 'PerElementMeanAndVarianceEMAState', None)
    if ema_state is None:
        raise ValueError(
            'State must have PerElementMeanAndVarianceEMAState to compute unbiased'
            ' mean and variance EMA.')
    count = ema_state.count
    if count == 0:
        raise ValueError("state: the PerElementMeanAndVarianceEMAState has count 0 (no "
                         "update has reached it yet), so there is no estimate; optax "
                         "would return 0 / 0")
    ema_decay = ema_state.ema_decay
    return (tree_bias_correction(ema_state.mean_grads_ema, ema_decay, count),
            tree_bias_correction(ema_state.variance_grads_ema, ema_decay, count))


def add_mean_variance_to_opt(opt, ema_decay=0.9, per_elt_axis=0, accumulation_steps=1):
    """``opt`` fed with per-element gradients, tracking their mean and variance.

    ``process(identity(), get_per_element_mean_and_sum_sq_diff_grads(per_elt_axis,
    accumulation_steps), chain(track_per_element_mean_and_variance_with_ema(ema_decay),
    opt), aggregator_has_aux=True)``: ``opt`` gets the mean gradient over
    ``accumulation_steps`` microbatches; ``get_unbiased_mean_and_variance_ema(state)``
    gives the EMAs of the gradient's mean and variance.

    Args:
      opt: the optimizer to add the mean and variance to.
      ema_decay: the EMA decay factor.
      per_elt_axis: the axis (or axes) of the elements.
      accumulation_steps: the number of microbatches to accumulate over.

    Returns:
      An ``Aggregator``.

    Example::

        opt = add_mean_variance_to_opt(npopt.adam(0.01), ema_decay=0.9)
        state = opt.init(params)
        updates, state = opt.update(per_example_grads, state)
        mean_ema, var_ema = get_unbiased_mean_and_variance_ema(state)
    """
    return process(
        preprocessor=identity(),
        aggregator=get_per_element_mean_and_sum_sq_diff_grads(per_elt_axis,
                                                              accumulation_steps),
        postprocessor=chain(track_per_element_mean_and_variance_with_ema(ema_decay), opt),
        aggregator_has_aux=True,
    )


__all__ = [
    "AccumulateAvgUpdatesState", "AggregatedUpdates", "Aggregator", "AggregatorUpdateFn",
    "MaybeAxis", "PerElementMeanAndSumSqDiffGradsState", "PerElementMeanAndVarianceEMAState",
    "PerElementUpdates", "accumulate_avg_updates", "add_mean_variance_to_opt",
    "average_incrementally_updates", "average_per_element_updates",
    "get_batch_size_from_per_elt_updates", "get_per_element_mean_and_sum_sq_diff_grads",
    "get_unbiased_mean_and_variance_ema", "process",
    "track_per_element_mean_and_variance_with_ema",
]
