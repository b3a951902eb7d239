"""Reference cases of the 'wrappers2' family: apply_every, conditionally_mask,
conditionally_transform, flatten, freeze, selective_transform, monitor,
snapshot, measure_with_ema (optax 0.2.8).

Replayed by tests/test_alias_reference.py on both paths. lookahead (whose
params are a LookaheadParams pair) and microbatching have their own
generator, make_wrappers2_reference.py, replayed by tests/test_wrappers2.py.

conditionally_transform passes the raw gradient through when its condition
is false: the cases put it before the learning rate, so that those steps are
plain gradient descent.
"""

_FREEZE = "{'b': True, 'extra': [False, True], 'w': False}"

CASES = {
    # --- apply_every ------------------------------------------------------
    "apply_every_adam": dict(expr="ox.chain(ox.adam(1e-2), ox.apply_every(4))"),
    "apply_every_default_sgd": dict(expr="ox.chain(ox.apply_every(), ox.sgd(0.05, momentum=0.9))"),
    # the NaN gradients are skipped by apply_if_finite before they reach the
    # accumulator, whose count then stays where it was
    "apply_every_nan": dict(
        expr="ox.apply_if_finite(ox.chain(ox.apply_every(2), ox.sgd(0.05)), 3)",
        nan_steps=(5, 40)),
    # --- conditionally_mask / conditionally_transform ---------------------
    "conditionally_mask_adam": dict(
        expr="ox.conditionally_mask(ox.adam(1e-2), lambda step: step % 3 != 2)"),
    "conditionally_mask_chain": dict(
        expr="ox.chain(ox.conditionally_mask(ox.trace(0.9), lambda step: step >= 10), "
             "ox.scale_by_learning_rate(0.05))"),
    "conditionally_transform_adam": dict(
        expr="ox.chain(ox.conditionally_transform(ox.scale_by_adam(), lambda step: step % 4 == 0), "
             "ox.scale_by_learning_rate(1e-2))"),
    "conditionally_transform_clip": dict(
        expr="ox.conditionally_transform(ox.chain(ox.clip_by_global_norm(1.0), ox.sgd(0.05)), "
             "lambda step: step < 1000)"),
    # --- flatten ----------------------------------------------------------
    "flatten_adam": dict(expr="ox.flatten(ox.adam(1e-2))"),
    "flatten_sgd_momentum": dict(expr="ox.flatten(ox.sgd(0.05, momentum=0.9, nesterov=True))"),
    # --- freeze / selective_transform --------------------------------------
    "freeze_adam": dict(expr="ox.chain(ox.freeze(" + _FREEZE + "), ox.adam(1e-2))"),
    "selective_transform_adamw": dict(
        expr="ox.selective_transform(ox.adamw(1e-2, weight_decay=0.1), "
             "freeze_mask={'b': False, 'extra': True, 'w': False})"),
    # --- monitor / snapshot / measure_with_ema ---------------------------
    "monitor_sgd_clip": dict(
        expr="ox.chain(ox.sgd(0.05, momentum=0.9), ox.monitor({"
             "'norm': ox.tree.norm, "
             "'is_big_ema': ox.measure_with_ema(lambda u: ox.tree.norm(u) > 1.0, 0.9), "
             "'norm_ema': ox.measure_with_ema(ox.tree.norm, 0.95, debias=False), "
             "'b_ema': ox.measure_with_ema(lambda u: u['b'], 0.8)}), "
             "ox.clip_by_global_norm(1.0))"),
    "snapshot_adam": dict(
        expr="ox.chain(ox.scale_by_adam(), "
             "ox.snapshot('sq', lambda u: ox.tree.norm(u, squared=True)), "
             "ox.snapshot('extra', lambda u: u['extra']), ox.scale_by_learning_rate(1e-2))"),
}
