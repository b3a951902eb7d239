"""Reference cases of the 'classic' family: optimistic gradient descent,
optimistic Adam (v1, deprecated, and v2), rprop, adadelta.

Merged into cases.CASES (see cases.py); each alias has its defaults plus at
least two non-default settings.
"""

_MASK_WD = "{'b': False, 'extra': [True, False], 'w': True}"

CASES = {
    # --- optimistic_gradient_descent -----------------------------------
    "optimistic_gradient_descent_default": dict(expr="ox.optimistic_gradient_descent(0.05)"),
    "optimistic_gradient_descent_alpha_beta": dict(
        expr="ox.optimistic_gradient_descent(0.1, alpha=0.7, beta=0.45)"),
    "optimistic_gradient_descent_sched": dict(
        expr="ox.optimistic_gradient_descent(ox.schedules.exponential_decay(0.1, 20, 0.7), "
             "alpha=1.2, beta=0.3)"),
    # --- optimistic_adam (deprecated in optax: DeprecationWarning) -------
    # Conditioning: near the optimum Adam's normalised step has a local gain
    # of about (lr + 2 * optimism) * d / (sqrt(v) + eps); where an element's
    # noise keeps v tiny it limit-cycles and amplifies rounding.  First tries
    # (f32~f64 final params): optimistic_adam(1e-2) 8.1e-5; the optimism case
    # with eps=1e-6 6.6e-3 and the eps_root case with optimism 1e-2 and
    # eps_root 1e-8 1.7e-3.  Hence lr 3e-3 for the default (every other
    # argument at its default), eps=1e-2 and optimism 2e-3 / eps_root 1e-4
    # below (all now <= 6e-7).
    "optimistic_adam_default": dict(expr="ox.optimistic_adam(3e-3)"),
    "optimistic_adam_optimism": dict(
        expr="ox.optimistic_adam(1e-2, optimism=3e-2, b1=0.8, b2=0.99, eps=1e-2, nesterov=False)"),
    "optimistic_adam_eps_root": dict(
        expr="ox.optimistic_adam(5e-3, 2e-3, b2=0.95, eps_root=1e-4)"),
    # --- optimistic_adam_v2 --------------------------------------------
    # (lr 3e-3 for the default, as above: 1e-2 gave f32~f64 8.1e-5)
    "optimistic_adam_v2_default": dict(expr="ox.optimistic_adam_v2(3e-3)"),
    "optimistic_adam_v2_sched": dict(
        expr="ox.optimistic_adam_v2(ox.schedules.cosine_decay_schedule(1e-2, 100, alpha=0.1), "
             "alpha=0.5, beta=0.8)"),
    "optimistic_adam_v2_plain": dict(
        expr="ox.optimistic_adam_v2(1e-2, alpha=2.0, beta=0.5, b1=0.85, nesterov=False)"),
    # --- rprop (the update lags one step: the first update is 0) -------
    # Rprop is discontinuous in the sign of g * prev: wherever a gradient is
    # zero to within rounding the float32 and float64 runs take different
    # branches, so their final params differ (the generator warns: 2.2e-2,
    # 9.4e-3 and 4.0e-4 here; every setting tried was above 1e-5 on this
    # problem).  That is no obstacle for the tests: every operation of
    # rprop (products, comparisons, clip, sign, p - u) is reproduced
    # exactly, so npopt follows each dtype's trajectory bit for bit.
    "rprop_default": dict(expr="ox.rprop(0.01)"),
    "rprop_custom": dict(
        expr="ox.rprop(0.05, eta_minus=0.3, eta_plus=1.5, min_step_size=1e-4, max_step_size=0.2)"),
    "rprop_bounds": dict(expr="ox.rprop(1e-3, min_step_size=1e-3, max_step_size=1e-2)"),
    # --- adadelta --------------------------------------------------------
    # learning_rate=None (the default) does not flip the sign: adadelta()
    # ASCENDS (optax's quirk, reproduced) and is not bounded: max |p| grows
    # geometrically (4 -> 80 after 100 steps, 2e4 after 300, 5e7 after
    # 1000).  Over these 100 steps it stays finite and well-conditioned
    # (f32~f64 4.6e-6), so the default case keeps learning_rate=None.
    # With a learning rate > 1 the steps outgrow 2/d near the optimum and
    # the runs turn chaotic (first tries: adadelta(10.0, rho=0.95) 2.5e-2,
    # adadelta(5.0, eps=1e-5, weight decay + mask) 4.0e-2,
    # linear_schedule(10.0, 1.0, 80) 4.4e-4), hence learning rates <= 1 and
    # eps 1e-4 / 1e-3 below (all <= 2.4e-6).
    "adadelta_default": dict(expr="ox.adadelta()"),
    "adadelta_lr": dict(expr="ox.adadelta(1.0, rho=0.95, eps=1e-4)"),
    "adadelta_wd_mask": dict(
        expr="ox.adadelta(1.0, eps=1e-4, weight_decay=0.1, weight_decay_mask=" + _MASK_WD + ")"),
    "adadelta_sched": dict(
        expr="ox.adadelta(ox.schedules.linear_schedule(1.0, 0.1, 80), rho=0.8, eps=1e-3, "
             "weight_decay=1e-2)"),
    # a weight-decay schedule (optax allows one; npopt's step falls back to update)
    "adadelta_wd_sched": dict(
        expr="ox.adadelta(0.5, eps=1e-3, weight_decay=ox.schedules.linear_schedule(0.1, 0.0, 50))"),
}
