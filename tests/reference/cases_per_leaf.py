"""Reference cases of the 'per_leaf' family: fromage, lars, novograd,
polyak_sgd, sm3 (rules with per-leaf or global reductions).

See cases.py for the format. Params: {'b': (160,), 'extra': [(3, 5), ()],
'w': (128, 160)}.
"""

_MASK_WD = "{'b': False, 'extra': [True, False], 'w': True}"
# sm3 keeps one accumulator per axis and optax's scale_by_sm3 fails on the
# scalar leaf extra[1] (IndexError): the sm3 cases leave it to plain sgd.
_SM3_LABELS = "{'b': 'sm3', 'extra': ['sm3', 'sgd'], 'w': 'sm3'}"


def _sm3(expr):
    return f"ox.multi_transform({{'sm3': {expr}, 'sgd': ox.sgd(0.05)}}, {_SM3_LABELS})"


CASES = {
    # --- fromage -------------------------------------------------------
    "fromage_default": dict(expr="ox.fromage(0.01)"),
    # min_norm 0.5 binds on the scalar leaf (|p|, |g| ~ 1 and below)
    "fromage_min_norm": dict(expr="ox.fromage(0.03, min_norm=0.5)"),
    # a float64 schedule (cosine): optax computes m = 1/sqrt(1 + lr^2) in the
    # schedule's dtype, and for float32 schedules XLA's rsqrt (not correctly
    # rounded) would make float64 trajectories differ by ~1e-8
    "fromage_sched": dict(
        expr="ox.fromage(ox.schedules.cosine_decay_schedule(0.02, 100, alpha=0.1))"),
    # --- lars ----------------------------------------------------------
    "lars_default": dict(expr="ox.lars(5.0)"),
    "lars_wd_nesterov_sched": dict(
        expr="ox.lars(ox.schedules.exponential_decay(4.0, 20, 0.7), weight_decay=1e-3, "
             "momentum=0.8, nesterov=True, eps=1e-6)"),
    # a tree mask for the decay, a callable one for the trust ratio: 'b'
    # without trust ratio gets momentum SGD at lr 0.5 (a larger lr diverges)
    "lars_masks": dict(
        expr="ox.lars(0.5, weight_decay=ox.schedules.linear_schedule(1e-2, 1e-3, 50), "
             "weight_decay_mask=" + _MASK_WD + ", trust_coefficient=0.02, "
             "trust_ratio_mask=lambda p: {'b': False, 'extra': [True, True], 'w': True})"),
    # --- novograd ------------------------------------------------------
    # With the default eps (1e-6) a leaf's update is g/||g||: on the scalar
    # leaf extra[1] that is sign(g), which near its optimum flips with the
    # rounding of g (f32 vs f64 final params differ by 4e-3..2e-2 at lr
    # 0.02..0.3, 6e-6 at 0.01). lr 0.005 keeps it away from there (5e-7).
    "novograd_default": dict(expr="ox.novograd(0.005)"),
    # eps 0.1 (not the default) smooths the scalar leaf near its optimum
    # (with 1e-6: f32~f64 2e-4 at lr 0.1)
    "novograd_wd": dict(
        expr="ox.novograd(0.1, b1=0.8, b2=0.5, weight_decay=0.01, eps=0.1)"),
    "novograd_sched": dict(
        expr="ox.novograd(ox.schedules.exponential_decay(0.5, 20, 0.8), eps=0.1, eps_root=1e-4)"),
    # --- polyak_sgd (update(..., value=loss)) ----------------------------
    "polyak_sgd_default": dict(expr="ox.polyak_sgd()", value=True),
    # the step is capped by max_learning_rate (0.3) at the first steps
    "polyak_sgd_sched": dict(
        expr="ox.polyak_sgd(max_learning_rate=0.3, "
             "scaling=ox.schedules.linear_schedule(1.0, 0.5, 50), f_min=1.0, eps=1e-3)",
        value=True),
    # the loss falls below f_min = 20: sps+ then stops (gap clipped at 0)
    "polyak_sgd_spsplus": dict(
        expr="ox.polyak_sgd(max_learning_rate=0.8, scaling=0.9, f_min=20.0, variant='sps+')",
        value=True),
    # --- sm3 -----------------------------------------------------------
    "sm3_default": dict(expr=_sm3("ox.sm3(0.1)")),
    "sm3_momentum0": dict(expr=_sm3("ox.sm3(0.05, momentum=0.0)")),
    "sm3_momentum05": dict(expr=_sm3("ox.sm3(0.2, momentum=0.5)")),
}
