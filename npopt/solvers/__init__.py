"""jaxopt's solvers for NumPy: the solver API (``base``) and the solvers."""
from .base import KKTSolution, OptStep
from .proximal_gradient import GradientDescent, ProjectedGradient, ProximalGradient, ProxGradState
from .stochastic import (ArmijoSGD, ArmijoState, OptaxSolver, OptaxState, PolyakSGD,
                         PolyakSGDState)
from .mirror_descent import MirrorDescent, MirrorDescentState
from .block_cd import BlockCDState, BlockCoordinateDescent
