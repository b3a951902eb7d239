"""npopt.transforms

Also, at optax's ``optax.transforms.<name>``, the names of optax.transforms
that the modules below define.
"""
from .conditional import (ConditionallyMaskState, ConditionallyTransformState,  # noqa: F401
                          ConditionFn, conditionally_mask, conditionally_transform)
from .freezing import flatten, freeze, selective_transform  # noqa: F401
from .monitoring import (MonitorState, SnapshotState, measure_with_ema, monitor,  # noqa: F401
                         snapshot)
