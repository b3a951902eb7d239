"""optax.contrib's rules (``npopt.contrib.<name>`` where optax has
``optax.contrib.<name>``): same signatures, defaults and state NamedTuples.
"""
# elementwise rules: adopt, ademamix, madgrad, acprop, cocob, schedule_free
from ._adopt import adopt, scale_by_adopt
from ._ademamix import (ScaleByAdemamixState, ScaleBySimplifiedAdEMAMixState, ademamix,
                       scale_by_ademamix, scale_by_simplified_ademamix, simplified_ademamix)
from ._madgrad import MadgradState, madgrad, scale_by_madgrad
from ._acprop import acprop, scale_by_acprop
from ._cocob import COCOBState, cocob, scale_by_cocob
from ._schedule_free import (ScheduleFreeState, schedule_free, schedule_free_adamw,
                            schedule_free_eval_params, schedule_free_sgd)
