"""npopt.transforms: the gradient transformations, and optax's
``optax.transforms`` namespace.

The package holds every ``scale_by_*`` block, combinator and wrapper, one
module per family (``adam``, ``rms``, ``clipping``, ``combine``, ``wrappers``,
...), over the flat-array kernels of ``npopt.kernels`` and the fusion
planner (``_fusion``, ``_plan``, ``_elementwise``). The aliases
(``npopt.adam``, ...) are chains of these blocks (``npopt.alias``).

Its own names are those of ``optax.transforms`` (``npopt.transforms.clip``
is the transformation, as ``optax.transforms.clip`` is); every one of them
is at npopt's top level too, with the ``scale_by_*`` blocks.
"""
from .clipping import clip, clip_by_block_rms, clip_by_global_norm
from .combine import (MaskedNode, MaskedState, PartitionState, chain, masked, named_chain,
                      partition)
from .conditional import (ConditionallyMaskState, ConditionallyTransformState, ConditionFn,
                          conditionally_mask, conditionally_transform)
from .freezing import flatten, freeze, selective_transform
from .monitoring import MonitorState, SnapshotState, measure_with_ema, monitor, snapshot
from .moving_average import EmaState, ema
from .noise import AddNoiseState, add_noise
from .nonnegative import NonNegativeParamsState, keep_params_nonnegative
from .per_example import per_example_global_norm_clip, per_example_layer_norm_clip
from .scale import add_decayed_weights
from .sgd import TraceState, trace
from .unitwise import adaptive_grad_clip, unitwise_clip, unitwise_norm
from .wrappers import (ApplyIfFiniteState, MultiSteps, MultiStepsState, ShouldSkipUpdateFunction,
                       ZeroNansState, apply_if_finite, skip_large_updates, skip_not_finite,
                       zero_nans)
