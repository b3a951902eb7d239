"""optax.contrib's rules (``npopt.contrib.<name>`` where optax has
``optax.contrib.<name>``): same signatures, defaults and state NamedTuples.
"""
# elementwise rules: adopt, ademamix, madgrad, acprop, cocob, schedule_free
from .adopt import adopt, scale_by_adopt
from .ademamix import (ScaleByAdemamixState, ScaleBySimplifiedAdEMAMixState, ademamix,
                       scale_by_ademamix, scale_by_simplified_ademamix, simplified_ademamix)
from .madgrad import MadgradState, madgrad, scale_by_madgrad
from .acprop import acprop, scale_by_acprop
from .cocob import COCOBState, cocob, scale_by_cocob
from .schedule_free import (ScheduleFreeState, schedule_free, schedule_free_adamw,
                            schedule_free_eval_params, schedule_free_sgd)
