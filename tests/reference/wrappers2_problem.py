"""The lookahead and microbatching cases shared by make_wrappers2_reference.py
(with ox = optax, xp = jax.numpy) and tests/test_wrappers2.py (ox = npopt,
xp = numpy).

Lookahead runs on problem.py's params and gradients: the gradient is taken
at ``params.fast``. The microbatching cases are functions of ``xp`` written
once for both libraries (products and sums only: no transcendental whose
last bits differ between libraries).
"""
import numpy as np

LOOKAHEAD_CASES = {
    "lookahead_adam": "ox.lookahead(ox.adam(1e-2), sync_period=5, slow_step_size=0.5)",
    "lookahead_sgd_reset": "ox.lookahead(ox.sgd(0.05, momentum=0.9), 3, 0.3, reset_state=True)",
    "lookahead_adam_sched_reset": (
        "ox.lookahead(ox.adam(ox.schedules.linear_schedule(1e-2, 1e-3, 50)), 4, 0.7, "
        "reset_state=True)"),
    "lookahead_sync1": "ox.lookahead(ox.sgd(0.05), 1, 0.8)",
    "lookahead_chain_clip": (
        "ox.lookahead(ox.chain(ox.clip_by_global_norm(5.0), ox.adam(3e-2)), 6, 0.25)"),
}


STATE_CLASSES = ("LookaheadState", "LookaheadParams", "ApplyEvery", "MonitorState",
                 "SnapshotState", "ConditionallyMaskState", "ConditionallyTransformState")
FUNCTIONS = ("lookahead", "apply_every", "flatten", "freeze", "selective_transform", "monitor",
             "snapshot", "measure_with_ema", "conditionally_mask", "conditionally_transform",
             "tree_map_params", "microbatch")
MB_FUNCTIONS = ("microbatch", "micro_vmap", "micro_grad", "reshape_batch_axis")

TREE_MAP_PARAMS_CASES = {
    "adam": "ox.adam(1e-2)",
    "sgd_momentum": "ox.sgd(0.1, momentum=0.9)",
    "adamw_mask": "ox.adamw(1e-2, mask={'b': False, 'extra': [True, False], 'w': True})",
    "chain_clip_lion": "ox.chain(ox.clip_by_global_norm(1.0), ox.lion(1e-3))",
    "multisteps": "ox.MultiSteps(ox.adam(1e-2), 3)",
    "lookahead": "ox.lookahead(ox.sgd(0.1, momentum=0.9), 3, 0.5)",
    "inject_adam": "ox.inject_hyperparams(ox.adam)(learning_rate=1e-2, b1=0.8)",
    "apply_if_finite": "ox.apply_if_finite(ox.sgd(0.1, momentum=0.9), 2)",
    "selective_transform": ("ox.selective_transform(ox.adam(1e-2), "
                            "freeze_mask={'b': True, 'extra': False, 'w': False})"),
    "partition": ("ox.partition({'x': ox.adam(1e-2), 'y': ox.sgd(0.1, momentum=0.5)}, "
                  "{'b': 'x', 'extra': ['y', 'x'], 'w': 'y'})"),
    "apply_every_monitor": ("ox.chain(ox.apply_every(2), ox.monitor({'n': ox.tree.norm}), "
                            "ox.conditionally_mask(ox.adam(1e-2), lambda s: s > 1))"),
}


def build(expr, ox):
    return eval(expr, {"ox": ox, "np": np})


def batch_data(dtype):
    """x: (16, 3), y: (16,), w: (3, 12) (batch axis 1), c: (3,)."""
    rng = np.random.default_rng(20261207)
    return dict(x=rng.standard_normal((16, 3)).astype(dtype),
                y=rng.standard_normal(16).astype(dtype),
                w=rng.standard_normal((3, 12)).astype(dtype),
                c=rng.standard_normal(3).astype(dtype))


def microbatch_cases(ox, xp):
    """name -> (function of the data dict, its result): the microbatched
    functions of the cases, built with ``ox.microbatching`` over ``xp``."""
    mb = ox.microbatching
    A = mb.AccumulationType

    def f1(x, y):                      # a tree of results, one accumulator each
        r = x * y[:, None]
        return {"concat": r, "sum": xp.sum(r), "mean": xp.sum(x * x, axis=0)}

    def f2(x, *, w):                   # batch axis 1 of w (a keyword argument)
        return (xp.sum(w, axis=1) * x[0], xp.sum(x * x))

    def per_example(x, c):             # one example: x (3,), c (3,) not mapped
        return xp.sum(x * c) * x

    def per_example_tree(x, y):
        return (x * y, y * y)

    cases = {
        "mb_tree_sum_mean_concat": lambda d: mb.microbatch(
            f1, argnums=(0, 1), microbatch_size=4,
            accumulator={"concat": A.CONCAT, "sum": A.SUM, "mean": A.MEAN})(d["x"], d["y"]),
        "mb_running_mean_kw_axis1": lambda d: mb.microbatch(
            f2, argnums=(), microbatch_size=3, accumulator=A.RUNNING_MEAN, argnames="w",
            in_axes=1)(d["x"], w=d["w"]),
        "mb_running_mean_early_stop": lambda d: mb.microbatch(
            f2, argnums=(), microbatch_size=3, accumulator=A.RUNNING_MEAN, argnames="w",
            in_axes=1, num_real_microbatches=3)(d["x"], w=d["w"]),
        "mb_sum_prefix": lambda d: mb.microbatch(
            lambda x, y: (x * y[:, None], xp.sum(y)), argnums=(0, 1), microbatch_size=8,
            accumulator=A.SUM)(d["x"], d["y"]),
        "mv_concat": lambda d: mb.micro_vmap(
            per_example, in_axes=(0, None), microbatch_size=4)(d["x"], d["c"]),
        "mv_mean": lambda d: mb.micro_vmap(
            per_example, in_axes=(0, None), microbatch_size=2,
            accumulator=A.MEAN)(d["x"], d["c"]),
        "mv_tree_sum_concat": lambda d: mb.micro_vmap(
            per_example_tree, in_axes=(0, 0), microbatch_size=8,
            accumulator=(A.SUM, A.CONCAT))(d["x"], d["y"][:, None]),
        "mv_no_microbatch": lambda d: mb.micro_vmap(
            per_example, in_axes=(0, None), accumulator=A.SUM)(d["x"], d["c"]),
    }
    return cases
