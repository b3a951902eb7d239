"""optax.contrib's optimizers and transformations (optax 0.2.8): same names,
signatures, defaults and states, at ``npopt.contrib.<name>``.

The modules are named after optax's (``_dog.py`` for ``optax/contrib/_dog.py``),
with a leading underscore, so that ``npopt.contrib.dog`` is the function,
not a module of the same name.
"""
# learning-rate-free and global-scalar rules
from ._dadapt_adamw import DAdaptAdamWState, dadapt_adamw
from ._dog import DoGState, DoWGState, dog, dowg
from ._mechanic import MechanicState, mechanize
from ._momo import MomoAdamState, MomoState, momo, momo_adam
from ._prodigy import ProdigyState, prodigy
from ._reduce_on_plateau import ReduceLROnPlateauState, reduce_on_plateau
# muon, normalize, sam, differential privacy, sophia, complex values, galore
from ._complex_valued import SplitRealAndImaginaryState, split_real_and_imaginary
from ._galore import GaLoreDimensionNumbers, GaLoreState, galore, scale_by_galore
from ._muon import MuonDimensionNumbers, MuonState, muon, scale_by_muon
from ._privacy import DifferentiallyPrivateAggregateState, differentially_private_aggregate, dpsgd
from ._sam import NormalizeState, SAMState, normalize, sam
from ._sophia import HutchinsonState, SophiaState, hutchinson_estimator_diag_hessian, sophia
# elementwise rules: adopt, ademamix, madgrad, acprop, cocob, schedule_free
from ._adopt import adopt, scale_by_adopt
from ._ademamix import (ScaleByAdemamixState, ScaleBySimplifiedAdEMAMixState, ademamix,
                        scale_by_ademamix, scale_by_simplified_ademamix, simplified_ademamix)
from ._madgrad import MadgradState, madgrad, scale_by_madgrad
from ._acprop import acprop, scale_by_acprop
from ._cocob import COCOBState, cocob, scale_by_cocob
from ._schedule_free import (ScheduleFreeState, schedule_free, schedule_free_adamw,
                             schedule_free_eval_params, schedule_free_sgd)
