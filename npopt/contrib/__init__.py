"""optax.contrib's optimizers: same names, signatures, defaults and states."""
# contrib2: learning-rate-free and global-scalar rules
from ._dog import DoGState, DoWGState, dog, dowg
from ._prodigy import ProdigyState, prodigy
from ._dadapt_adamw import DAdaptAdamWState, dadapt_adamw
from ._mechanic import MechanicState, mechanize
from ._momo import MomoAdamState, MomoState, momo, momo_adam
from ._reduce_on_plateau import ReduceLROnPlateauState, reduce_on_plateau
