"""Reference cases of the 'misc' family: sign_sgd, signum, lion, noisy_sgd
(and their blocks ema, scale_by_sign, scale_by_lion, add_noise).

noisy_sgd draws its noise from JAX's threefry stream in optax and from
NumPy in npopt, so its trajectories are compared with ``eta=0.0``: the
noise-free part (``g + 0 * z``), the schedule, the count and the rng_key
(split exactly as JAX splits it) all match optax. The noise itself is tested
statistically in tests/test_misc_rules.py.

Sign-based rules are discontinuous at 0: wherever a gradient (or momentum)
lands within rounding of 0 the float32 and float64 runs can step in opposite
directions, and the generator's conditioning check (float32 vs float64
final params within 1e-5) then fails by luck of the draw. Three settings
were changed from the first choice for that reason only (noted below).

Cases with ``np.float32`` as mu_dtype / accumulator_dtype keep a float32
moment in the float64 run as well (the mixed-dtype path of the kernels).
"""

_MASK_WD = "{'b': False, 'extra': [True, False], 'w': True}"

CASES = {
    # --- sign_sgd -------------------------------------------------------
    # lr 1e-2 -> 2e-2: with 1e-2 a few sign flips made f32 and f64 differ by 6e-3
    "sign_sgd_default": dict(expr="ox.sign_sgd(2e-2)"),
    "sign_sgd_sched": dict(
        expr="ox.sign_sgd(ox.schedules.exponential_decay(2e-2, 10, 0.8, end_value=1e-3))"),
    # the fused [Precond, Decay, Rate] form, with a mask
    "sign_sgd_wd_mask": dict(
        expr="ox.chain(ox.scale_by_sign(), ox.add_decayed_weights(0.05, mask=" + _MASK_WD + "), "
             "ox.scale_by_learning_rate(1e-2))"),
    # --- signum ---------------------------------------------------------
    "signum_default": dict(expr="ox.signum(1e-2)"),
    "signum_beta_sched": dict(
        # (2e-2 -> 2e-3) -> (1e-2 -> 1e-3): f32 vs f64 1.3e-4 -> 4.8e-7 (sign flips)
        expr="ox.signum(ox.schedules.linear_schedule(1e-2, 1e-3, 80), beta=0.5)"),
    "signum_acc32": dict(expr="ox.signum(1e-2, beta=0.95, accumulator_dtype=np.float32)"),
    # --- lion -----------------------------------------------------------
    "lion_default": dict(expr="ox.lion(3e-3)"),
    "lion_wd_mask_sched": dict(
        # peak 5e-3 -> 4e-3: f32 vs f64 1.7e-5 -> 5.2e-7 (sign flips)
        expr="ox.lion(ox.schedules.cosine_decay_schedule(4e-3, 100, alpha=0.1), b1=0.95, b2=0.98, "
             "weight_decay=0.1, mask=" + _MASK_WD + ")"),
    "lion_mu32_nowd": dict(expr="ox.lion(3e-3, mu_dtype=np.float32, weight_decay=0.0)"),
    # weight decay as a schedule (add_decayed_weights keeps a count: not fused)
    "lion_wd_sched": dict(
        expr="ox.lion(3e-3, weight_decay=ox.schedules.linear_schedule(0.1, 0.0, 100))"),
    "lion_smooth": dict(
        expr="ox.chain(ox.scale_by_lion(mode='smooth', smooth_beta=5.0), ox.add_decayed_weights(1e-3), "
             "ox.scale_by_learning_rate(3e-3))"),
    "lion_refined": dict(
        expr="ox.chain(ox.scale_by_lion(b1=0.8, mode='refined'), ox.scale_by_learning_rate(1e-2))"),
    # --- noisy_sgd (noise-free part: eta = 0) ---------------------------
    "noisy_sgd_nonoise_default": dict(expr="ox.noisy_sgd(0.05, eta=0.0, key=0)"),
    "noisy_sgd_nonoise_sched": dict(
        expr="ox.noisy_sgd(ox.schedules.exponential_decay(0.05, 10, 0.9), eta=0.0, gamma=0.3, key=42)"),
    "noisy_sgd_nonoise_seed": dict(
        expr="ox.noisy_sgd(0.03, eta=0.0, gamma=1.0, seed=2**40 + 7)"),
    "noisy_sgd_nonoise_chain": dict(
        expr="ox.chain(ox.add_noise(0.0, 0.55, key=-3), ox.trace(0.5), ox.scale_by_learning_rate(0.05))"),
}
