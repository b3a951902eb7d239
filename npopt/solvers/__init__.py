"""jaxopt's solvers for NumPy: the solver API (``base``) and the solvers."""
from .base import KKTSolution, OptStep
from .proximal_gradient import GradientDescent, ProjectedGradient, ProximalGradient, ProxGradState
from .stochastic import (ArmijoSGD, ArmijoState, OptaxSolver, OptaxState, PolyakSGD,
                         PolyakSGDState)
from .mirror_descent import MirrorDescent, MirrorDescentState
from .block_cd import BlockCDState, BlockCoordinateDescent
from .anderson import AndersonAcceleration, AndersonState, AndersonWrapper, AndersonWrapperState
from .bisection import Bisection, BisectionState
from .broyden import Broyden, BroydenState
from .fixed_point import FixedPointIteration, FixedPointState
from .scipy_wrappers import (ScipyBoundedLeastSquares, ScipyBoundedMinimize, ScipyLeastSquares,
                             ScipyLeastSquaresInfo, ScipyMinimize, ScipyMinimizeInfo,
                             ScipyRootFinding, ScipyRootInfo)
from .bfgs import BFGS, BfgsState
from .lbfgs import LBFGS, LbfgsState
from .lbfgsb import LBFGSB, LbfgsbState
from .linesearch import (BacktrackingLineSearch, BacktrackingLineSearchState, HagerZhangLineSearch,
                         HagerZhangLineSearchState, LineSearchStep, ZoomLineSearch,
                         ZoomLineSearchState)
from .nonlinear_cg import NonlinearCG, NonlinearCGState
from .gauss_newton import GaussNewton, GaussNewtonState
from .levenberg_marquardt import LevenbergMarquardt, LevenbergMarquardtState
from .cvxpy_qp import CvxpyQP
from .qp import (OSQP, BoxCDQP, BoxCDQPState, BoxOSQP, BoxOSQPState, EqualityConstrainedQP,
                 IterativeRefinement, IterativeRefinementState, OSQPState)
