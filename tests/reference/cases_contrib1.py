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
    "contrib_adopt_mu_dtype": dict(expr="ox.contrib.adopt(1e-2, mu_dtype=np.float32, nesterov=True)"),
}
