"""optax.contrib's learning-rate-free / global-scalar rules (contrib2):
dog, dowg, scale_by_distance_over_gradients, prodigy, dadapt_adamw,
mechanize, momo, momo_adam, reduce_on_plateau."""

_MASK_WD = "{'b': False, 'extra': [True, False], 'w': True}"

CASES = {
    # --- dog / dowg ------------------------------------------------------
    # the default init_step ('heuristic', 1e-6) moves the params by ~1e-6 per
    # element at first, below float32's resolution of 1.0 (f32 and f64 runs
    # differ by 1e-4 in the end): a larger heuristic factor, other defaults
    "dog_heuristic": dict(expr="ox.contrib.dog(init_step=('heuristic', 1e-3))"),
    "dog_lr_init_wd": dict(
        expr="ox.contrib.dog(0.5, init_step=('learning_rate', 1e-3), eps=1e-6, weight_decay=1e-3, "
             "mask=" + _MASK_WD + ")"),
    "dog_distance_sched": dict(
        expr="ox.contrib.dog(ox.schedules.cosine_decay_schedule(1.0, 100, alpha=0.1), "
             "init_step=('distance', 1e-2))"),
    "dowg_default": dict(expr="ox.contrib.dowg()"),
    "dowg_custom_wd": dict(
        expr="ox.contrib.dowg(0.5, init_estim_sq_dist=1e-3, eps=1e-6, weight_decay=1e-3)"),
    "dowg_sched": dict(expr="ox.contrib.dowg(ox.schedules.linear_schedule(1.0, 0.2, 80))"),
    "dog_layerwise": dict(
        expr="ox.chain(ox.scale_by_distance_over_gradients(reps_rel=1e-3), "
             "ox.scale_by_learning_rate(1.0))"),
    "dog_layerwise_custom": dict(
        expr="ox.chain(ox.scale_by_distance_over_gradients(reps_rel=1e-4, eps=1e-6, "
             "param_dtype=np.float64, global_scale=-0.5))"),
}
# Prodigy and D-Adaptation with a constant learning rate grow the distance
# estimate until the steps oscillate around the optimum of the noisy problem,
# where float32 and float64 runs part (1e-2 relative after 100 steps, also
# with the defaults, whose first steps of ~1e-6 are below float32's
# resolution): the cases use the recommended linear decay to 0, or a smaller
# constant rate with a larger estim_lr0 (f32 vs f64 within 1e-5 then).
_LIN = "ox.schedules.linear_schedule(1.0, 0.0, 100)"
CASES.update({
    # --- prodigy ---------------------------------------------------------
    "prodigy_sched": dict(expr="ox.contrib.prodigy(" + _LIN + ", estim_lr0=1e-2)"),
    "prodigy_custom": dict(
        expr="ox.contrib.prodigy(" + _LIN + ", betas=(0.8, 0.99), beta3=0.95, eps=1e-6, "
             "estim_lr0=1e-4, estim_lr_coef=0.5, weight_decay=1e-3, safeguard_warmup=True)"),
    "prodigy_const": dict(expr="ox.contrib.prodigy(0.3, estim_lr0=1e-2, estim_lr_coef=0.3)"),
    # --- dadapt_adamw ----------------------------------------------------
    "dadapt_adamw_sched": dict(expr="ox.contrib.dadapt_adamw(" + _LIN + ", estim_lr0=1e-3)"),
    "dadapt_adamw_custom": dict(
        expr="ox.contrib.dadapt_adamw(" + _LIN + ", betas=(0.8, 0.99), eps=1e-6, estim_lr0=1e-4, "
             "weight_decay=1e-3)"),
    "dadapt_adamw_const": dict(expr="ox.contrib.dadapt_adamw(0.3, estim_lr0=1e-3, eps=1e-4)"),
})
# Mechanic's scale grows until the steps oscillate: with Adam as the base,
# or the default s_init (1e-6: first steps below float32's resolution),
# float32 and float64 runs part by 1e-2..1e-1 after 100 steps (npopt agrees
# with optax bit for bit over the first 10 steps there; those defaults are
# replayed over 10 steps in test_contrib2.py). Here: momentum SGD with a
# linear decay, s_init=1e-2 (f32 vs f64 within 2e-6).
_SGD_LIN = "ox.sgd(ox.schedules.linear_schedule(0.1, 0.0, 100), momentum=0.9)"
CASES.update({
    # --- mechanize -------------------------------------------------------
    "mechanize_sgd_sched": dict(
        expr="ox.contrib.mechanize(" + _SGD_LIN + ", s_init=1e-2, num_betas=3)"),
    "mechanize_sgd_custom": dict(
        expr="ox.contrib.mechanize(" + _SGD_LIN + ", weight_decay=0.0, eps=1e-6, s_init=1e-2, "
             "num_betas=3)"),
})
CASES.update({
    # --- momo / momo_adam (value=True: the loss is passed as update(..., value=)) --
    "momo_default": dict(expr="ox.contrib.momo()", value=True),
    "momo_adapt_wd": dict(
        expr="ox.contrib.momo(0.5, beta=0.8, lower_bound=1.0, weight_decay=1e-2, "
             "adapt_lower_bound=True)", value=True),
    "momo_sched": dict(
        expr="ox.contrib.momo(ox.schedules.linear_schedule(0.05, 0.01, 100))", value=True),
    "momo_adam_default": dict(expr="ox.contrib.momo_adam()", value=True),
    "momo_adam_adapt_wd": dict(
        expr="ox.contrib.momo_adam(0.05, b1=0.8, b2=0.99, eps=1e-6, lower_bound=1.0, "
             "weight_decay=1e-2, adapt_lower_bound=True)", value=True),
    "momo_adam_sched": dict(
        expr="ox.contrib.momo_adam(ox.schedules.cosine_decay_schedule(1e-2, 100))", value=True),
})
CASES.update({
    # --- reduce_on_plateau (chained after an optimizer; value=True) ------
    "reduce_on_plateau_default": dict(
        expr="ox.chain(ox.sgd(0.05, momentum=0.9), ox.contrib.reduce_on_plateau())", value=True),
    "reduce_on_plateau_custom": dict(
        expr="ox.chain(ox.adam(0.05), ox.contrib.reduce_on_plateau(factor=0.5, patience=3, "
             "rtol=0.3, atol=0.1, cooldown=2, accumulation_size=2, min_scale=0.2))",
        value=True),
    "reduce_on_plateau_sched": dict(
        expr="ox.chain(ox.sgd(ox.schedules.exponential_decay(0.05, 20, 0.5)), "
             "ox.contrib.reduce_on_plateau(factor=0.3, patience=2, rtol=0.0, atol=30.0, min_scale=1e-3))",
        value=True),
})
