"""npopt: Optax and JAXopt for NumPy, as numba kernels for the CPU and CUDA."""
from . import (implicit_diff, isotonic, linear_solve, loss, objective, projection, prox,
               schedules, tree)
from .alias import (adabelief, adafactor, adadelta, adagrad, adam, adamax, adamaxw, adamw, adan, amsgrad,
                    fromage, lamb, lars, lbfgs, lion, nadam, nadamw, noisy_sgd, novograd,
                    optimistic_adam, optimistic_adam_v2, optimistic_gradient_descent, polyak_sgd,
                    radam, rmsprop, rprop, sgd, sign_sgd, signum, sm3, yogi)
from .base import (EmptyState, GradientTransformation, GradientTransformationExtraArgs,
                   apply_updates, identity, incremental_update, init_empty_state,
                   periodic_update, safe_increment, safe_int32_increment, set_to_zero,
                   stateless, stateless_with_tree_map, with_extra_args_support)
from .transforms.adam import ScaleByAdamState, scale_by_adam
from .transforms.combine import chain
from .transforms.scale import (AddDecayedWeightsState, ScaleByScheduleState, ScaleState,
                               WeightDecaySchedule, add_decayed_weights, scale,
                               scale_by_learning_rate, scale_by_schedule)

__version__ = "0.1.0"
from . import solvers
from .solvers import (BFGS, LBFGS, LBFGSB, OSQP, AndersonAcceleration, BoxCDQP, BoxOSQP,
                      CvxpyQP, EqualityConstrainedQP, IterativeRefinement, AndersonWrapper, ArmijoSGD,
                      BacktrackingLineSearch, Bisection, BlockCoordinateDescent, Broyden,
                      FixedPointIteration, GaussNewton, GradientDescent, HagerZhangLineSearch,
                      KKTSolution, LevenbergMarquardt,
                      MirrorDescent, NonlinearCG, OptaxSolver, OptStep, PolyakSGD,
                      ZoomLineSearch,
                      ProjectedGradient, ProximalGradient, ProxGradState,
                      ScipyBoundedLeastSquares, ScipyBoundedMinimize, ScipyLeastSquares,
                      ScipyMinimize, ScipyRootFinding)
from .transforms.rms import (ScaleByRmsState, ScaleByRmsWithCountState, ScaleByRssState,
                             ScaleByRStdDevState, ScaleByRStdDevWithCountState, scale_by_rms,
                             scale_by_rss, scale_by_stddev)
from .transforms.sgd import TraceState, trace
from .transforms.trust_ratio import ScaleByTrustRatioState, scale_by_trust_ratio
from .transforms.clip import (ClipByGlobalNormState, ClipState, clip, clip_by_block_rms,
                              clip_by_global_norm, global_norm)
from .transforms.combine import (MaskedNode, MaskedState, MultiTransformState, PartitionState,
                                 masked, multi_transform, named_chain, partition)
from .transforms.wrappers import (ApplyIfFiniteState, InjectHyperparamsState,
                                  InjectStatefulHyperparamsState, MultiSteps, MultiStepsState,
                                  WrappedSchedule, WrappedScheduleState, ZeroNansState,
                                  apply_if_finite, inject_hyperparams,
                                  inject_stateful_hyperparams, skip_large_updates,
                                  skip_not_finite, zero_nans)
from .transforms.adadelta import ScaleByAdaDeltaState, scale_by_adadelta
from .transforms.adam_variants import (ScaleByAdanState, ScaleByAmsgradState, ScaleByBeliefState,
                                       scale_by_adamax, scale_by_adan, scale_by_amsgrad,
                                       scale_by_belief, scale_by_radam, scale_by_yogi)
from .transforms.ema import EmaState, ema
from .transforms.factored import (FactoredState, scale_by_factored_rms, scale_by_param_block_norm,
                                  scale_by_param_block_rms)
from .transforms.lion import ScaleByLionState, scale_by_lion
from .transforms.noise import AddNoiseState, add_noise
from .transforms.novograd import ScaleByNovogradState, scale_by_novograd
from .transforms.optimistic import ScaleByOptimisticGradientState, scale_by_optimistic_gradient
from .transforms.polyak import scale_by_polyak
from .transforms.rprop import ScaleByRpropState, scale_by_rprop
from .transforms.sign import scale_by_sign
from .transforms.sm3 import ScaleBySM3State, scale_by_sm3
from .transforms.lbfgs import ScaleByLBFGSState, scale_by_lbfgs
from .transforms.linesearch import (BacktrackingLinesearchInfo, ScaleByBacktrackingLinesearchState,
                                    ScaleByZoomLinesearchState, ZoomLinesearchInfo,
                                    scale_by_backtracking_linesearch, scale_by_zoom_linesearch,
                                    value_and_grad_from_state)
