"""Reference cases of optax.contrib's elementwise rules (family 'contrib1'):
adopt, ademamix, simplified_ademamix, madgrad, acprop, cocob and the
schedule-free wrappers (see cases.py for the format).

Per alias: the defaults, non-default settings that reach every branch of
its rule (nesterov, no clipping, a custom clip function, mu_dtype, weight
decay with a mask) and a schedule.
"""

_MASK_WD = "{'b': False, 'extra': [True, False], 'w': True}"

CASES = {
    # --- adopt ---------------------------------------------------------
    "contrib_adopt_default": dict(expr="ox.contrib.adopt(1e-2)"),
    "contrib_adopt_nesterov_noclip": dict(
        expr="ox.contrib.adopt(1e-2, b1=0.8, b2=0.99, eps=1e-3, nesterov=True, "
             "use_clipping=False)"),
    "contrib_adopt_sched_clipfn": dict(
        expr="ox.contrib.adopt(ox.schedules.cosine_decay_schedule(2e-2, 100, alpha=0.1), "
             "b2=0.999, clip_value_fn=lambda x: 0.5 + 0.25 * x)"),
    "contrib_adopt_mu_dtype": dict(
        expr="ox.contrib.adopt(1e-2, mu_dtype=np.float32, nesterov=True)"),
    # --- ademamix ------------------------------------------------------
    "contrib_ademamix_default": dict(expr="ox.contrib.ademamix(1e-2)"),
    # a shorter slow EMA (100 steps), eps_root, weight decay with a mask
    "contrib_ademamix_wd_mask": dict(
        expr="ox.contrib.ademamix(1e-2, b1=0.8, b2=0.99, b3=0.99, alpha=2.0, eps_root=1e-8, "
             "weight_decay=0.05, mask=" + _MASK_WD + ")"),
    # the paper's warm-ups as schedules of b3 and alpha, a learning-rate schedule
    "contrib_ademamix_sched": dict(
        expr="ox.contrib.ademamix(ox.schedules.cosine_decay_schedule(1e-2, 100, alpha=0.1), "
             "b3=ox.schedules.linear_schedule(0.9, 0.999, 50), "
             "alpha=ox.schedules.linear_schedule(0.0, 5.0, 50))"),
    "contrib_ademamix_mu_dtype": dict(expr="ox.contrib.ademamix(1e-2, mu_dtype=np.float32)"),
    # --- simplified_ademamix -------------------------------------------
    "contrib_simplified_ademamix_default": dict(expr="ox.contrib.simplified_ademamix(1e-3)"),
    # eps 1e-6 first: near the optimum the steps stay ~lr * (1/(1-b1) + alpha)
    # and float32 rounding was amplified (f32 vs f64 final params 1.2e-3)
    "contrib_simplified_ademamix_alpha_wd": dict(
        expr="ox.contrib.simplified_ademamix(1e-3, b1=0.9, b2=0.99, alpha=2.0, eps=1e-1, "
             "eps_root=1e-8, weight_decay=0.05, mask=" + _MASK_WD + ")"),
    "contrib_simplified_ademamix_sched": dict(
        expr="ox.contrib.simplified_ademamix(ox.schedules.exponential_decay(2e-3, 20, 0.7), "
             "eps=1e-2, alpha=ox.schedules.linear_schedule(0.0, 3.0, 40))"),
    # --- madgrad -------------------------------------------------------
    "contrib_madgrad_default": dict(expr="ox.contrib.madgrad(1e-2)"),
    "contrib_madgrad_wd": dict(expr="ox.contrib.madgrad(1e-2, momentum=0.8, weight_decay=1e-3, "
                                    "eps=1e-4)"),
    "contrib_madgrad_sched": dict(
        expr="ox.contrib.madgrad(ox.schedules.warmup_cosine_decay_schedule(0.0, 2e-2, 10, 100, "
             "end_value=1e-3))"),
    # --- acprop --------------------------------------------------------
    # the defaults are ill-conditioned on this problem: with eps = eps_root =
    # 1e-16 an element whose previous gradient was tiny takes a huge step (the
    # denominator is the previous |g|), so float32 and float64 trajectories
    # part (final params 1.5e-2 apart at lr 1e-2, 1.9e-4 at 3e-3); npopt still
    # follows optax in each dtype (same operations, same roundings)
    "contrib_acprop_default": dict(expr="ox.contrib.acprop(3e-3)"),
    "contrib_acprop_wd_mask": dict(
        expr="ox.contrib.acprop(1e-2, b1=0.8, b2=0.99, eps=1e-8, eps_root=1e-6, "
             "weight_decay=0.05, mask=" + _MASK_WD + ")"),
    "contrib_acprop_sched": dict(
        expr="ox.contrib.acprop(ox.schedules.piecewise_constant_schedule(1e-2, "
             "{30: 0.5, 60: 0.2}), "
             "eps_root=1e-6)"),
    # --- cocob ---------------------------------------------------------
    "contrib_cocob_default": dict(expr="ox.contrib.cocob()"),
    "contrib_cocob_wd_mask": dict(
        expr="ox.contrib.cocob(0.5, alpha=50.0, eps=1e-6, weight_decay=0.01, "
             "mask=" + _MASK_WD + ")"),
    "contrib_cocob_sched": dict(
        expr="ox.contrib.cocob(ox.schedules.linear_schedule(1.0, 0.2, 100))"),
    # --- schedule_free -------------------------------------------------
    "contrib_schedule_free_sgd_default": dict(expr="ox.contrib.schedule_free_sgd(0.1)"),
    "contrib_schedule_free_sgd_warmup_wd": dict(
        expr="ox.contrib.schedule_free_sgd(0.2, warmup_steps=10, b1=0.8, weight_decay=1e-3, "
             "weight_lr_power=1.0)"),
    "contrib_schedule_free_adamw_default": dict(expr="ox.contrib.schedule_free_adamw()"),
    "contrib_schedule_free_adamw_warmup": dict(
        expr="ox.contrib.schedule_free_adamw(1e-2, warmup_steps=20, b1=0.95, b2=0.99, "
             "weight_decay=0.01)"),
    # the wrapper around another base, a schedule, z stored in float64
    "contrib_schedule_free_wrap_adam": dict(
        expr="ox.contrib.schedule_free(ox.adam(ox.schedules.linear_schedule(0.0, 1e-2, 10), "
             "b1=0.0), ox.schedules.linear_schedule(0.0, 1e-2, 10), b1=0.9, "
             "state_dtype=np.float64)"),
    # --- the blocks' own defaults, and hyperparameters as arrays ---------
    # scale_by_ademamix's alpha is 6.0 (the alias's 5.0)
    "contrib_ademamix_block": dict(
        expr="ox.chain(ox.contrib.scale_by_ademamix(b3=0.99), ox.scale(-1e-2))"),
    # inject_hyperparams: b1, b2, eps... as arrays of the params' dtype
    # (not adopt: optax's inject_hyperparams takes its clip_value_fn for a
    # schedule and calls its value)
    "contrib_ademamix_inject": dict(
        expr="ox.inject_hyperparams(ox.contrib.ademamix)(learning_rate=1e-2, b3=0.99)"),
    "contrib_acprop_inject": dict(
        expr="ox.inject_hyperparams(ox.contrib.acprop)(learning_rate=3e-3, eps=1e-6, "
             "eps_root=1e-6)"),
    "contrib_cocob_inject": dict(
        expr="ox.inject_hyperparams(ox.contrib.cocob)(learning_rate=0.8, eps=1e-6)"),
}
