"""optax.contrib's optimizers and transformations (optax 0.2.8), at
``npopt.contrib.<name>``."""
# --- contrib3: muon, normalize, sam, differential privacy, sophia, complex values, galore
from .complex_valued import SplitRealAndImaginaryState, split_real_and_imaginary
from .galore import GaLoreDimensionNumbers, GaLoreState, galore, scale_by_galore
from .muon import MuonDimensionNumbers, MuonState, muon, scale_by_muon
from .privacy import DifferentiallyPrivateAggregateState, differentially_private_aggregate, dpsgd
from .sam import NormalizeState, SAMState, normalize, sam
from .sophia import HutchinsonState, SophiaState, hutchinson_estimator_diag_hessian, sophia
# --- end contrib3
