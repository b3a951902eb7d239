"""Reference cases of the 'adafactor' family (see cases.py for the format).

On the shared problem the params leaf 'w' (128, 160) is factored with the
default ``min_dim_size_to_factor=128``; 'b' (160,), 'extra' (3, 5) and the
0-d leaf are not ('adafactor_offset' lowers the threshold to 3, which
factors 'extra' too).

eps: optax's default 1e-30 leaves Adafactor as ill-conditioned as RMSProp
with a tiny eps: near the optimum, gradients with cancellation errors are
normalised to O(1) steps, and float32 and float64 trajectories drift apart
(1e-2 relative for 'adafactor_unfactored' with the default eps). eps = 1e-3
(added to g**2) only acts in that regime (final losses change by < 0.1 %)
and makes f32 and f64 agree to < 1e-6. 'adafactor_default' keeps every
default but the learning rate (f32 vs f64: 3e-5).

learning_rate=None (optax's default) is not a case: the step is then the
params' RMS (about 1.4 here) per leaf and step; the params oscillate
(max |p| 4 -> 10, loss 2.6e4 -> 6.9e3 after 100 steps) and f32/f64 differ
by 1e-3: not a trajectory to compare to 1e-5.
"""

_MASK_WD = "{'b': False, 'extra': [True, False], 'w': True}"

CASES = {
    # every default except the learning rate (optax's default is None)
    "adafactor_default": dict(expr="ox.adafactor(1e-2)"),
    # no factoring: an elementwise second moment for every leaf
    "adafactor_unfactored": dict(expr="ox.adafactor(3e-2, factored=False, eps=1e-3)"),
    # momentum (float32 EMA buffer, also for float64 params) + masked weight decay
    "adafactor_momentum_wd_mask": dict(
        expr="ox.adafactor(1e-2, momentum=0.9, weight_decay_rate=1e-3, weight_decay_mask="
             + _MASK_WD + ", eps=1e-3)"),
    # a negative decay_offset (a fresh state "fine-tuning" from step 10: a
    # positive offset gives t = count - offset + 1 <= 0 and NaN, as in
    # optax), another decay exponent, and 'extra' (3, 5) factored too
    "adafactor_offset": dict(
        expr="ox.adafactor(1e-2, decay_rate=0.5, decay_offset=-10, min_dim_size_to_factor=3, "
             "eps=1e-3)"),
    # no clipping, no parameter scale, schedules for the learning rate and
    # the weight decay
    "adafactor_noclip_noscale_sched": dict(
        expr="ox.adafactor(ox.schedules.linear_schedule(3e-2, 1e-3, 80), clipping_threshold=None, "
             "multiply_by_parameter_scale=False, eps=1e-3, "
             "weight_decay_rate=ox.schedules.linear_schedule(1e-3, 0.0, 50))"),
    # the blocks on their own: a capped decay schedule (Zhai et al., 2021) as
    # decay_rate_fn (a float64 beta under x64), and the per-leaf params norm
    "adafactor_blocks_chain": dict(
        expr="ox.chain(ox.scale_by_factored_rms(epsilon=1e-3, decay_rate_fn=lambda i, e: "
             "0.9 * (1.0 - (i + 1.0) ** (-e))), ox.scale_by_param_block_norm(), ox.scale(-2e-4))"),
}
