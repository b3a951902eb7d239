"""optax.contrib's optimizers: same names, signatures, defaults and states.

The modules are named after optax's (``_dog.py`` for ``optax/contrib/_dog.py``):
with a leading underscore, so that ``npopt.contrib.dog`` is the function,
not a module of the same name.
"""
# contrib2: learning-rate-free and global-scalar rules
from ._dadapt_adamw import DAdaptAdamWState, dadapt_adamw
from ._dog import DoGState, DoWGState, dog, dowg
from ._mechanic import MechanicState, mechanize
from ._momo import MomoAdamState, MomoState, momo, momo_adam
from ._prodigy import ProdigyState, prodigy
from ._reduce_on_plateau import ReduceLROnPlateauState, reduce_on_plateau
