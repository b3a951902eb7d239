"""Reference cases of the 'numeric' family: optax's stateless numeric
transforms chained with an optimizer (centralize, normalize_by_update_norm,
adaptive_grad_clip, keep_params_nonnegative). None has a fused form, so
both paths of tests/test_alias_reference.py are ``update`` +
``apply_updates`` inside.
"""

CASES = {
    "centralize_sgd": dict(expr="ox.chain(ox.centralize(), ox.sgd(0.05))"),
    "centralize_adam": dict(expr="ox.chain(ox.centralize(), ox.adam(1e-2))"),
    "normalize_update_norm_sgd": dict(
        expr="ox.chain(ox.normalize_by_update_norm(scale_factor=5.0), "
             "ox.sgd(ox.schedules.exponential_decay(1.0, 10, 0.7)))"),
    "agc_sgd_momentum": dict(
        expr="ox.chain(ox.adaptive_grad_clip(0.05), ox.sgd(0.05, momentum=0.9))"),
    "nonneg_adam": dict(expr="ox.chain(ox.adam(1e-2), ox.keep_params_nonnegative())"),
}
