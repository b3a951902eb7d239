"""npopt: Optax and JAXopt for NumPy, as numba kernels for the CPU and CUDA.

* optax's side, loaded at import: the aliases (``npopt.adam``, ...), their
  ``scale_by_*`` blocks and states, combinators, clipping, ``schedules``,
  ``tree``, ``loss``, ``losses``, ``objective`` and ``prox``;
* jaxopt's side, loaded on first use (they pull in scipy): the solvers
  (``npopt.GradientDescent``, ``npopt.LBFGS``, ... and ``npopt.solvers``),
  ``projection``, ``isotonic``, ``linear_solve``, ``implicit_diff`` and
  ``examples``; and optax's ``projections`` (over ``projection``'s kernels),
  ``assignment``, ``perturbations``, ``contrib`` (its 58 names: about 0.2 s
  of imports and kernels that most users do not need) and ``experimental``
  (optax's experimental ``aggregating``).
"""
import importlib as _importlib

from . import loss, losses, microbatching, objective, prox, schedules, second_order, tree
from .alias import (adabelief, adadelta, adafactor, adagrad, adam, adamax, adamaxw, adamw, adan,
                    amsgrad, fromage, lamb, lars, lbfgs, lion, nadam, nadamw, noisy_sgd, novograd,
                    optimistic_adam, optimistic_adam_v2, optimistic_gradient_descent, polyak_sgd,
                    radam, rmsprop, rprop, sgd, sign_sgd, signum, sm3, yogi)
from .base import (EmptyState, GradientTransformation, GradientTransformationExtraArgs,
                   MaskOrFn, OptState, Params, ScalarOrSchedule, Schedule, TransformInitFn,
                   TransformUpdateExtraArgsFn, TransformUpdateFn, Updates, apply_updates,
                   identity, incremental_update, init_empty_state, periodic_update,
                   safe_increment, safe_int32_increment, set_to_zero, stateless,
                   stateless_with_tree_map, with_extra_args_support)
from .microbatching import microbatch
# optax's top-level spellings of its losses
from .losses import (convex_kl_divergence, cosine_distance, cosine_similarity, ctc_loss,
                     ctc_loss_with_forward_probs,
                     generalized_kl_divergence, hinge_loss, huber_loss, kl_divergence, l2_loss,
                     log_cosh, ntxent, safe_softmax_cross_entropy, sigmoid_binary_cross_entropy,
                     sigmoid_focal_loss, smooth_labels, softmax_cross_entropy,
                     softmax_cross_entropy_with_integer_labels, squared_error)
# optax's top-level spellings of its schedules and moment helpers
from .schedules import (constant_schedule, cosine_decay_schedule, cosine_onecycle_schedule,
                        exponential_decay, join_schedules, linear_onecycle_schedule,
                        linear_schedule, piecewise_constant_schedule,
                        piecewise_interpolate_schedule, polynomial_schedule, sgdr_schedule,
                        warmup_constant_schedule, warmup_cosine_decay_schedule,
                        warmup_exponential_decay_schedule)
from .linear_algebra import matrix_inverse_pth_root, nnls, power_iteration
from .numerics import safe_norm, safe_root_mean_squares
from .tree import tree_bias_correction as bias_correction
from .tree import tree_map_params
from .tree import tree_update_infinity_moment as update_infinity_moment
from .tree import tree_update_moment as update_moment
from .tree import tree_update_moment_per_elem_norm as update_moment_per_elem_norm
from .transforms.adadelta import ScaleByAdaDeltaState, scale_by_adadelta
from .transforms.adam import ScaleByAdamState, scale_by_adam
from .transforms.adam_variants import (ScaleByAdanState, ScaleByAmsgradState, ScaleByBeliefState,
                                       scale_by_adamax, scale_by_adan, scale_by_amsgrad,
                                       scale_by_belief, scale_by_radam, scale_by_yogi)
from .transforms.apply_every import ApplyEvery, apply_every
from .transforms.clipping import (ClipByGlobalNormState, ClipState, clip, clip_by_block_rms,
                                  clip_by_global_norm, global_norm)
from .transforms.combine import (MaskedNode, MaskedState, MultiTransformState, PartitionState,
                                 chain, masked, multi_transform, named_chain, partition)
from .transforms.conditional import (ConditionallyMaskState, ConditionallyTransformState,
                                     conditionally_mask, conditionally_transform)
from .transforms.distance_over_gradients import scale_by_distance_over_gradients
from .transforms.moving_average import EmaState, ema
from .transforms.factored import (FactoredState, scale_by_factored_rms, scale_by_param_block_norm,
                                  scale_by_param_block_rms)
from .transforms.freezing import flatten, freeze, selective_transform
from .transforms.lbfgs import ScaleByLBFGSState, scale_by_lbfgs
from .transforms.linesearch import (BacktrackingLinesearchInfo, ScaleByBacktrackingLinesearchState,
                                    ScaleByZoomLinesearchState, ZoomLinesearchInfo,
                                    scale_by_backtracking_linesearch, scale_by_zoom_linesearch,
                                    value_and_grad_from_state)
from .transforms.lion import ScaleByLionState, scale_by_lion
from .transforms.lookahead import LookaheadParams, LookaheadState, lookahead
from .transforms.monitoring import (MonitorState, SnapshotState, measure_with_ema, monitor,
                                    snapshot)
from .transforms.noise import AddNoiseState, add_noise
from .transforms.nonnegative import NonNegativeParamsState, keep_params_nonnegative
from .transforms.normalize import centralize, normalize_by_update_norm
from .transforms.novograd import ScaleByNovogradState, scale_by_novograd
from .transforms.optimistic import ScaleByOptimisticGradientState, scale_by_optimistic_gradient
from .transforms.per_example import per_example_global_norm_clip, per_example_layer_norm_clip
from .transforms.polyak import scale_by_polyak
from .transforms.rms import (ScaleByRmsState, ScaleByRmsWithCountState, ScaleByRssState,
                             ScaleByRStdDevState, ScaleByRStdDevWithCountState, scale_by_rms,
                             scale_by_rss, scale_by_stddev)
from .transforms.rprop import ScaleByRpropState, scale_by_rprop
from .transforms.scale import (AddDecayedWeightsState, ScaleByScheduleState, ScaleState,
                               WeightDecaySchedule, add_decayed_weights, scale,
                               scale_by_learning_rate, scale_by_schedule)
from .transforms.sgd import TraceState, trace
from .transforms.sign import scale_by_sign
from .transforms.sm3 import ScaleBySM3State, scale_by_sm3
from .transforms.trust_ratio import ScaleByTrustRatioState, scale_by_trust_ratio
from .transforms.unitwise import AdaptiveGradClipState, adaptive_grad_clip
from .transforms.wrappers import (ApplyIfFiniteState, InjectHyperparamsState,
                                  InjectStatefulHyperparamsState, MultiSteps, MultiStepsState,
                                  ShouldSkipUpdateFunction,
                                  WrappedSchedule, WrappedScheduleState, ZeroNansState,
                                  apply_if_finite, inject_hyperparams,
                                  inject_stateful_hyperparams, skip_large_updates,
                                  skip_not_finite, zero_nans)
from .utils import multi_normal, scale_gradient

__version__ = "0.1.0"

# jaxopt's side and some of optax's submodules, imported on first use (PEP 562)
_LAZY_MODULES = ("batch", "solvers", "projection", "isotonic", "linear_solve", "implicit_diff",
                 "examples", "tree_utils", "tree_util", "loop", "cond",
                 # optax's submodules (projections runs projection's kernels)
                 "projections", "assignment", "perturbations", "contrib", "experimental")
_SOLVERS = (
    "AndersonAcceleration", "AndersonWrapper", "ArmijoSGD", "BFGS", "BacktrackingLineSearch",
    "Bisection", "BlockCoordinateDescent", "BoxCDQP", "BoxOSQP", "Broyden", "CvxpyQP",
    "EqualityConstrainedQP", "FixedPointIteration", "GaussNewton", "GradientDescent",
    "HagerZhangLineSearch", "IterativeRefinement", "KKTSolution", "LBFGS", "LBFGSB",
    "LevenbergMarquardt", "MirrorDescent", "NonlinearCG", "OSQP", "OptStep", "OptaxSolver",
    "PolyakSGD", "ProjectedGradient", "ProxGradState", "ProximalGradient",
    "ScipyBoundedLeastSquares", "ScipyBoundedMinimize", "ScipyLeastSquares", "ScipyMinimize",
    "ScipyRootFinding", "ZoomLineSearch")


def __getattr__(name):
    if name in _LAZY_MODULES:
        module = _importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    if name in ("vmap", "run_batch"):
        value = getattr(_importlib.import_module(".batch", __name__), name)
        globals()[name] = value
        return value
    if name in _SOLVERS:
        value = getattr(_importlib.import_module(".solvers", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'npopt' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_MODULES) | set(_SOLVERS) | {"vmap", "run_batch"})
