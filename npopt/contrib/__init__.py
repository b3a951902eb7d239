"""optax.contrib's optimizers and transformations (optax 0.2.8), at
``npopt.contrib.<name>``."""
# contrib3: muon, sam, normalize, differential privacy, sophia, complex values, galore
from .muon import MuonDimensionNumbers, MuonState, muon, scale_by_muon
from .sam import NormalizeState, SAMState, normalize, sam
from .privacy import DifferentiallyPrivateAggregateState, differentially_private_aggregate, dpsgd
from .sophia import HutchinsonState, SophiaState, hutchinson_estimator_diag_hessian, sophia
from .complex_valued import SplitRealAndImaginaryState, split_real_and_imaginary
from .galore import GaLoreDimensionNumbers, GaLoreState, galore, scale_by_galore
