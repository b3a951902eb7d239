"""npopt.transforms"""
from .conditional import ConditionFn  # noqa: F401  (optax.transforms.ConditionFn)
