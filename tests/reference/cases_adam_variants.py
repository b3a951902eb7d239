"""Reference cases of the 'adam_variants' family: amsgrad, adamax, adamaxw,
adabelief, yogi, radam and adan (see cases.py for the format).

Per alias: the defaults, and non-default settings that reach every branch of
its rule (schedules, masks, weight decay, nesterov, the switches of
amsgrad's bias corrections, radam's threshold, adan's eps_root, and one
chain of the bare ``scale_by_*`` block where the transform's defaults differ
from the alias's).
"""

_MASK_WD = "{'b': False, 'extra': [True, False], 'w': True}"

CASES = {
    # --- amsgrad -------------------------------------------------------
    "amsgrad_default": dict(expr="ox.amsgrad(1e-2)"),
    # the paper's form: no bias corrections, plus eps_root and a schedule
    "amsgrad_paper_sched": dict(
        expr="ox.amsgrad(ox.schedules.exponential_decay(2e-2, 20, 0.5), b1=0.8, b2=0.99, "
             "eps_root=1e-8, bias_correction_mu=False, bias_correction_nu=False)"),
    # first moment stored in float32 (float64 params: mixed-precision moments)
    "amsgrad_mu_dtype": dict(expr="ox.amsgrad(1e-2, b2=0.95, mu_dtype=np.float32)"),
    # --- adamax / adamaxw ----------------------------------------------
    "adamax_default": dict(expr="ox.adamax(1e-2)"),
    "adamax_sched": dict(
        expr="ox.adamax(ox.schedules.cosine_decay_schedule(2e-2, 100, alpha=0.1), b1=0.8, "
             "b2=0.99, eps=1e-4)"),
    "adamax_b2_one": dict(expr="ox.adamax(1e-2, b2=1.0)"),   # a plain running max
    "adamaxw_default": dict(expr="ox.adamaxw(1e-2)"),
    "adamaxw_mask": dict(expr="ox.adamaxw(1e-2, weight_decay=0.1, mask=" + _MASK_WD + ")"),
    # a schedule as weight_decay (add_decayed_weights keeps a count; not fused)
    "adamaxw_wd_sched": dict(
        expr="ox.adamaxw(ox.schedules.linear_schedule(1e-2, 1e-3, 50), "
             "weight_decay=ox.schedules.linear_schedule(0.1, 0.0, 64))"),  # 1/64 exact: no float32 residue at the end
    # --- adabelief -----------------------------------------------------
    "adabelief_default": dict(expr="ox.adabelief(1e-2)"),
    # b1=0.8, eps=1e-8, eps_root=1e-10 first: with b1=0.8 the belief
    # s = EMA((g - m)**2) collapses near the optimum and float32 rounding grew
    # to 2e-3 (f32 vs f64 final params). b1=0.9 and eps_root=1e-6 (which
    # accumulates in s, to ~1e-4) keep it well conditioned (1e-6).
    "adabelief_nesterov": dict(
        expr="ox.adabelief(1e-2, b1=0.9, b2=0.99, eps=1e-8, eps_root=1e-6, nesterov=True)"),
    "adabelief_sched": dict(
        expr="ox.adabelief(ox.schedules.warmup_cosine_decay_schedule(0.0, 2e-2, 10, 100, "
             "end_value=1e-3), eps_root=1e-6)"),
    # --- yogi ----------------------------------------------------------
    "yogi_default": dict(expr="ox.yogi(1e-2)"),
    # eps 1e-4 -> 1e-2 for the same reason (f32 vs f64 differed by 1.6e-4)
    "yogi_custom": dict(expr="ox.yogi(5e-2, b1=0.8, b2=0.99, eps=1e-2)"),
    "yogi_sched": dict(
        expr="ox.yogi(ox.schedules.piecewise_constant_schedule(5e-2, {30: 0.5, 60: 0.2}))"),
    # the block's own knobs (not reachable from the alias)
    "yogi_block": dict(
        expr="ox.chain(ox.scale_by_yogi(eps_root=1e-8, initial_accumulator_value=0.1), "
             "ox.add_decayed_weights(1e-3), ox.scale_by_learning_rate(1e-2))"),
    # --- radam ---------------------------------------------------------
    # b2=0.999: rho_t < 5 for the first 5 steps (momentum only), then rectified
    "radam_default": dict(expr="ox.radam(1e-2)"),
    "radam_nesterov": dict(
        expr="ox.radam(1e-2, b1=0.8, b2=0.99, eps_root=1e-8, nesterov=True)"),
    "radam_threshold_sched": dict(
        expr="ox.radam(ox.schedules.exponential_decay(1e-2, 10, 0.8), threshold=20.0)"),
    # hyperparameters as arrays of the params' dtype: rho_t and r_t in float32
    "radam_inject": dict(expr="ox.inject_hyperparams(ox.radam)(learning_rate=1e-2, b2=0.99)"),
    # --- adan ----------------------------------------------------------
    "adan_default": dict(expr="ox.adan(1e-2)"),
    "adan_wd_mask": dict(expr="ox.adan(1e-2, weight_decay=0.05, mask=" + _MASK_WD + ")"),
    "adan_sched": dict(
        expr="ox.adan(ox.schedules.linear_schedule(2e-2, 2e-3, 80), b1=0.9, b2=0.9, b3=0.999, "
             "eps_root=0.0, weight_decay=0.01)"),
    "adan_inject": dict(
        expr="ox.inject_hyperparams(ox.adan)(learning_rate=1e-2, weight_decay=0.01)"),
    # the block's defaults (eps_root=0.0, not the alias's 1e-8)
    "adan_block": dict(expr="ox.chain(ox.scale_by_adan(), ox.scale(-1e-2))"),
}
