r"""Losses of ``optax.losses`` (optax 0.2.8), name for name, each with its gradient.

Arguments come in optax's order, **prediction first** (``softmax_cross_entropy(
logits, labels)``), with optax's defaults (``axis=-1``, ``where=None``, ...).
``npopt.loss`` (singular) is jaxopt's module, label first.

The gradient convention (npopt has no autodiff)
-----------------------------------------------

For every differentiable loss ``f(x, ...)``, with ``x`` its first argument
(predictions, logits, scores, log-predictions, embeddings, anchors), there are

* ``f_grad(x, ...)``: the gradient of ``sum(f(x, ...))`` with respect to
  ``x``, what ``jax.grad(lambda x: f(x, ...).sum())(x)`` gives, with ``x``'s
  shape and dtype. For per-example losses (elementwise, or one value per
  row) it is the stack of the per-example gradients; for losses that reduce
  (``ntxent``, ``ranking_softmax_loss`` with its ``reduce_fn``, the dice
  losses) it is the gradient of the returned value(s) summed;
* ``f_value_and_grad(x, ...) -> (value, grad)``, computed in one pass;

both take ``f``'s arguments and are reachable as attributes, ``f.grad`` and
``f.value_and_grad`` (as in ``npopt.loss``). At kinks the (sub)gradient is
JAX's: ``maximum`` and ``minimum`` split the derivative half-half at ties,
``max`` over an axis shares it among tied maxima, ``|0|`` has derivative 0;
masked entries (``where``) get 0.

``make_fenchel_young_loss(max_fun, *, max_fun_grad=None)`` needs the gradient
of ``max_fun`` for its ``.grad``: npopt takes it from the caller (see there).
``smooth_labels`` transforms targets and has no gradient.

Dtypes: values and gradients are computed in the first argument's dtype
(float32 stays float32; float64 targets promote as in JAX); 0-d results are
NumPy scalars. Integer or boolean predictions are refused, as optax's
``check_subdtype`` does; bad shapes, axes and labels out of range raise
(JAX would broadcast, clip or read NaN). Elementary functions go through
``npopt._math`` (the same bits on every CPU).

Where npopt differs from optax on purpose
-----------------------------------------

* float32 stays float32 where optax 0.2.8 under x64 computes in float64
  (``multiclass_hinge_loss`` / ``multiclass_perceptron_loss``: its one-hot is
  float64; ``ctc_loss*``: its recursion is float64, npopt runs it in float64
  too and rounds the results; ``smooth_labels`` with ``where``);
* ``multiclass_sparsemax_loss`` takes scores of any shape ``(..., K)``
  (optax: ``(batch, K)``); optax 0.2.8 cannot differentiate it under x64
  (its projection's JVP is float32), npopt's gradient is ``sparsemax - onehot``;
* ``make_fenchel_young_loss`` takes ``max_fun_grad`` (keyword only);
  ``ranking_softmax_loss.grad`` knows ``reduce_fn`` None, ``numpy.mean``
  (the default, optax's ``jnp.mean``) and ``numpy.sum``;
* out-of-range labels and mismatched shapes raise.

Reference: tests/reference/make_losses_reference.py (optax 0.2.8 and
``jax.grad``, x64), replayed by tests/test_losses.py.
"""
from ._classification import (
    hinge_loss, hinge_loss_grad, hinge_loss_value_and_grad,
    multiclass_hinge_loss, multiclass_hinge_loss_grad, multiclass_hinge_loss_value_and_grad,
    multiclass_perceptron_loss, multiclass_perceptron_loss_grad,
    multiclass_perceptron_loss_value_and_grad,
    multiclass_sparsemax_loss, multiclass_sparsemax_loss_grad,
    multiclass_sparsemax_loss_value_and_grad,
    perceptron_loss, perceptron_loss_grad, perceptron_loss_value_and_grad,
    poly_loss_cross_entropy, poly_loss_cross_entropy_grad,
    poly_loss_cross_entropy_value_and_grad,
    safe_softmax_cross_entropy, safe_softmax_cross_entropy_grad,
    safe_softmax_cross_entropy_value_and_grad,
    sigmoid_binary_cross_entropy, sigmoid_binary_cross_entropy_grad,
    sigmoid_binary_cross_entropy_value_and_grad,
    sigmoid_focal_loss, sigmoid_focal_loss_grad, sigmoid_focal_loss_value_and_grad,
    softmax_cross_entropy, softmax_cross_entropy_grad, softmax_cross_entropy_value_and_grad,
    softmax_cross_entropy_with_integer_labels, softmax_cross_entropy_with_integer_labels_grad,
    softmax_cross_entropy_with_integer_labels_value_and_grad,
    sparsemax_loss, sparsemax_loss_grad, sparsemax_loss_value_and_grad)
from ._ctc import (ctc_loss, ctc_loss_grad, ctc_loss_value_and_grad,
                   ctc_loss_with_forward_probs, ctc_loss_with_forward_probs_grad,
                   ctc_loss_with_forward_probs_value_and_grad)
from ._fenchel_young import make_fenchel_young_loss
from ._kl import (
    convex_kl_divergence, convex_kl_divergence_grad, convex_kl_divergence_value_and_grad,
    generalized_kl_divergence, generalized_kl_divergence_grad,
    generalized_kl_divergence_value_and_grad,
    kl_divergence, kl_divergence_grad, kl_divergence_value_and_grad,
    kl_divergence_with_log_targets, kl_divergence_with_log_targets_grad,
    kl_divergence_with_log_targets_value_and_grad)
from ._regression import (
    cosine_distance, cosine_distance_grad, cosine_distance_value_and_grad,
    cosine_similarity, cosine_similarity_grad, cosine_similarity_value_and_grad,
    huber_loss, huber_loss_grad, huber_loss_value_and_grad,
    l2_loss, l2_loss_grad, l2_loss_value_and_grad,
    log_cosh, log_cosh_grad, log_cosh_value_and_grad,
    squared_error, squared_error_grad, squared_error_value_and_grad)
from ._ranking import (ranking_softmax_loss, ranking_softmax_loss_grad,
                       ranking_softmax_loss_value_and_grad)
from ._segmentation import (
    binary_dice_loss, binary_dice_loss_grad, binary_dice_loss_value_and_grad,
    dice_loss, dice_loss_grad, dice_loss_value_and_grad,
    multiclass_generalized_dice_loss, multiclass_generalized_dice_loss_grad,
    multiclass_generalized_dice_loss_value_and_grad)
from ._self_supervised import (
    ntxent, ntxent_grad, ntxent_value_and_grad,
    triplet_margin_loss, triplet_margin_loss_grad, triplet_margin_loss_value_and_grad)
from ._smoothing import smooth_labels

__all__ = [
    "binary_dice_loss", "binary_dice_loss_grad", "binary_dice_loss_value_and_grad",
    "convex_kl_divergence", "convex_kl_divergence_grad", "convex_kl_divergence_value_and_grad",
    "cosine_distance", "cosine_distance_grad", "cosine_distance_value_and_grad",
    "cosine_similarity", "cosine_similarity_grad", "cosine_similarity_value_and_grad", "ctc_loss",
    "ctc_loss_grad", "ctc_loss_value_and_grad", "ctc_loss_with_forward_probs",
    "ctc_loss_with_forward_probs_grad", "ctc_loss_with_forward_probs_value_and_grad", "dice_loss",
    "dice_loss_grad", "dice_loss_value_and_grad", "generalized_kl_divergence",
    "generalized_kl_divergence_grad", "generalized_kl_divergence_value_and_grad", "hinge_loss",
    "hinge_loss_grad", "hinge_loss_value_and_grad", "huber_loss", "huber_loss_grad",
    "huber_loss_value_and_grad", "kl_divergence", "kl_divergence_grad",
    "kl_divergence_value_and_grad", "kl_divergence_with_log_targets",
    "kl_divergence_with_log_targets_grad", "kl_divergence_with_log_targets_value_and_grad",
    "l2_loss", "l2_loss_grad", "l2_loss_value_and_grad", "log_cosh", "log_cosh_grad",
    "log_cosh_value_and_grad", "make_fenchel_young_loss", "multiclass_generalized_dice_loss",
    "multiclass_generalized_dice_loss_grad", "multiclass_generalized_dice_loss_value_and_grad",
    "multiclass_hinge_loss", "multiclass_hinge_loss_grad", "multiclass_hinge_loss_value_and_grad",
    "multiclass_perceptron_loss", "multiclass_perceptron_loss_grad",
    "multiclass_perceptron_loss_value_and_grad", "multiclass_sparsemax_loss",
    "multiclass_sparsemax_loss_grad", "multiclass_sparsemax_loss_value_and_grad", "ntxent",
    "ntxent_grad", "ntxent_value_and_grad", "perceptron_loss", "perceptron_loss_grad",
    "perceptron_loss_value_and_grad", "poly_loss_cross_entropy", "poly_loss_cross_entropy_grad",
    "poly_loss_cross_entropy_value_and_grad", "ranking_softmax_loss", "ranking_softmax_loss_grad",
    "ranking_softmax_loss_value_and_grad", "safe_softmax_cross_entropy",
    "safe_softmax_cross_entropy_grad", "safe_softmax_cross_entropy_value_and_grad",
    "sigmoid_binary_cross_entropy", "sigmoid_binary_cross_entropy_grad",
    "sigmoid_binary_cross_entropy_value_and_grad", "sigmoid_focal_loss",
    "sigmoid_focal_loss_grad", "sigmoid_focal_loss_value_and_grad", "smooth_labels",
    "softmax_cross_entropy", "softmax_cross_entropy_grad", "softmax_cross_entropy_value_and_grad",
    "softmax_cross_entropy_with_integer_labels", "softmax_cross_entropy_with_integer_labels_grad",
    "softmax_cross_entropy_with_integer_labels_value_and_grad", "sparsemax_loss",
    "sparsemax_loss_grad", "sparsemax_loss_value_and_grad", "squared_error", "squared_error_grad",
    "squared_error_value_and_grad", "triplet_margin_loss", "triplet_margin_loss_grad",
    "triplet_margin_loss_value_and_grad",
]
