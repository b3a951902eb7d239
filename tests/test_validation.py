"""Constructor validation, schedule values at each step, apply_updates.

1. Every optimizer alias of optax 0.2.8 (but adafactor, tested with its
   module) and every building block rejects, *when it is built*, a NaN,
   infinite, negative or out-of-range hyperparameter, a flag that is not a
   bool, a count that is not a valid integer, with ``ValueError`` or
   ``TypeError`` whose message starts with the argument's name *as the user
   spelled it* (``sgd(momentum=nan)`` names ``momentum``, not ``trace``'s
   ``decay``). The valid ranges are optax's documented ones (decay rates in
   [0, 1), or [0, 1] without bias correction; eps >= 0; ...), and the edges
   optax accepts (``b1=0``, ``eps=0``, ``momentum=0``, ...) are accepted.
2. A learning-rate schedule returning NaN, an infinity or a negative value
   at some step raises ``ValueError`` naming ``learning_rate`` and the step
   count, in ``update`` and in the fused ``step``, before any buffer is
   touched (params and state unchanged).
3. ``apply_updates`` refuses updates whose shapes differ from the params'
   (no broadcasting) and complex updates for real params, naming
   ``updates``; it keeps optax's dtype rule (result in the params' dtype)
   and None leaves.
"""
import copy
import math
import re
import warnings

import numpy as np
import pytest

import npopt
from npopt.tree import tree_leaves

NAN, INF = float("nan"), float("inf")


def sched(c):
    return 1e-3


# kind -> values that must be rejected / accepted
BAD = {
    "lr": [NAN, INF, -INF, -1e-3, "0.1", [0.1]],
    "lr_opt": [NAN, INF, -1e-3, "0.1"],                 # a learning rate, None allowed
    "lr_num": [NAN, INF, -1e-3, "0.1", sched],          # a number only (no schedule)
    "decay_open": [NAN, INF, -INF, -0.1, 1.0, 1.5, "0.9", None],
    "decay_closed": [NAN, INF, -0.1, 1.0 + 1e-9, 2.0, "0.9", None],
    "decay_closed_opt": [NAN, INF, -0.1, -0.5, 1.5, "0.9"],   # None allowed (no momentum)
    "nonneg": [NAN, INF, -INF, -1e-3, "0", None],
    "nonneg_opt": [NAN, INF, -1e-3, "0"],                # None allowed
    "nonneg_sched": [NAN, INF, -1e-3, "0", None],        # number >= 0 or a schedule
    "finite": [NAN, INF, -INF, "1", None],
    "finite_sched": [NAN, INF, -INF, "1", None],         # finite number or a schedule
    "pos": [NAN, INF, 0.0, -1e-3, "1", None],
    "unit": [NAN, INF, -0.1, 1.5, None],                 # [0, 1]
    "ge1": [NAN, INF, 0.5, -1.0, None],                  # >= 1
    "bool": [1, 0, 1.0, "True", None],
    # (unknown dtype names: see test_unknown_dtype_names_are_rejected)
    "dtype": [np.int32, "int64", np.complex64, np.bool_],
    "posint": [0, -1, 1.5, True, NAN, "3", None],
    "nonnegint": [-1, 1.5, True, NAN, "3", None],
    "int": [1.5, True, NAN, "3", None],
    "callable_opt": [1, "f"],
    "tx": [None, 1, "adam", (1, 2)],
    "variant": ["SPS", "sgd", None, 1],
    "strategy": ["two", None],
    "maxstep": [NAN, INF, -1.0, 1e-7, None],             # >= min_step_size (1e-6)
}
GOOD = {
    "lr": [0.0, 1e-3, 1, np.float32(1e-3), np.float64(0.1), np.array(0.1), sched],
    "lr_opt": [None, 0.0, 0.5, sched],
    "lr_num": [0.0, 1e-3, np.float32(0.1)],
    "decay_open": [0.0, 0, 0.5, 0.999, np.float32(0.9)],
    "decay_closed": [0.0, 0.9, 1.0, 1],
    "decay_closed_opt": [None, 0.0, 0.9, 1.0],
    "nonneg": [0.0, 0, 1e-8, np.float64(1e-3)],
    "nonneg_opt": [None, 0.0, 1e-3],
    "nonneg_sched": [0.0, 1e-4, sched],
    "finite": [-1.0, 0.0, 2.5],
    "finite_sched": [-0.5, 0.0, 1e-4, sched],
    "pos": [1e-6, 1.0, 10],
    "unit": [0.0, 0.5, 1.0],
    "ge1": [1.0, 1.2, 2],
    "bool": [True, False, np.bool_(True)],
    "dtype": [None, np.float32, "float64", np.dtype(np.float32)],
    "posint": [1, 3, np.int32(2)],
    "nonnegint": [0, 3, np.int64(2)],
    "int": [0, -2, 5],
    "callable_opt": [None, lambda *a: (np.array(False), ())],
    "tx": [npopt.sgd(0.1), npopt.identity()],
    "variant": ["sps", "sps+"],
    "strategy": ["one", "keep"],
    "maxstep": [1e-6, 50.0],
}

ADAM = dict(b1="decay_open", b2="decay_open", eps="nonneg", eps_root="nonneg",
            mu_dtype="dtype", nesterov="bool")

# constructor -> (required arguments, {argument: kind})
SPECS = {
    # ---- the 30 aliases of optax 0.2.8 but adafactor ----
    "adabelief": (dict(learning_rate=0.1), dict(learning_rate="lr", b1="decay_open",
                  b2="decay_open", eps="nonneg", eps_root="nonneg", nesterov="bool")),
    "adadelta": (dict(), dict(learning_rate="lr_opt", rho="decay_closed", eps="nonneg",
                 weight_decay="nonneg_sched")),
    "adagrad": (dict(learning_rate=0.1), dict(learning_rate="lr",
                initial_accumulator_value="nonneg", eps="nonneg")),
    "adam": (dict(learning_rate=0.1), dict(learning_rate="lr", **ADAM)),
    "adamw": (dict(learning_rate=0.1), dict(learning_rate="lr", weight_decay="nonneg_sched",
              **ADAM)),
    "adamax": (dict(learning_rate=0.1), dict(learning_rate="lr", b1="decay_open",
               b2="decay_closed", eps="nonneg")),
    "adamaxw": (dict(learning_rate=0.1), dict(learning_rate="lr", b1="decay_open",
                b2="decay_closed", eps="nonneg", weight_decay="nonneg_sched")),
    "adan": (dict(learning_rate=0.1), dict(learning_rate="lr", b1="decay_open",
             b2="decay_open", b3="decay_open", eps="nonneg", eps_root="nonneg",
             weight_decay="nonneg_sched")),
    "amsgrad": (dict(learning_rate=0.1), dict(learning_rate="lr", b1="decay_open",
                b2="decay_open", eps="nonneg", eps_root="nonneg", mu_dtype="dtype",
                bias_correction_mu="bool", bias_correction_nu="bool")),
    "fromage": (dict(learning_rate=0.1), dict(learning_rate="lr", min_norm="nonneg")),
    "lamb": (dict(learning_rate=0.1), dict(learning_rate="lr", b1="decay_open",
             b2="decay_open", eps="nonneg", eps_root="nonneg", weight_decay="nonneg_sched")),
    "lars": (dict(learning_rate=0.1), dict(learning_rate="lr", weight_decay="nonneg_sched",
             trust_coefficient="nonneg", eps="nonneg", momentum="decay_closed",
             nesterov="bool")),
    "lion": (dict(learning_rate=0.1), dict(learning_rate="lr", b1="decay_closed",
             b2="decay_closed", mu_dtype="dtype", weight_decay="nonneg_sched")),
    "nadam": (dict(learning_rate=0.1), dict(learning_rate="lr", **ADAM)),
    "nadamw": (dict(learning_rate=0.1), dict(learning_rate="lr", weight_decay="nonneg_sched",
               **ADAM)),
    "noisy_sgd": (dict(learning_rate=0.1, seed=0), dict(learning_rate="lr", eta="nonneg",
                  gamma="nonneg")),
    "novograd": (dict(learning_rate=0.1), dict(learning_rate="lr", b1="decay_closed",
                 b2="decay_closed", eps="nonneg", eps_root="nonneg", weight_decay="nonneg")),
    "optimistic_gradient_descent": (dict(learning_rate=0.1), dict(
        learning_rate="lr", alpha="nonneg", beta="nonneg")),
    "optimistic_adam": (dict(learning_rate=0.1), dict(
        learning_rate="lr_num", optimism="nonneg_opt", **ADAM)),
    "optimistic_adam_v2": (dict(learning_rate=0.1), dict(
        learning_rate="lr", alpha="nonneg", beta="nonneg", **ADAM)),
    "polyak_sgd": (dict(), dict(max_learning_rate="nonneg", scaling="lr", f_min="finite",
                   eps="nonneg", variant="variant")),
    "radam": (dict(learning_rate=0.1), dict(learning_rate="lr", b1="decay_open",
              b2="decay_open", eps="nonneg", eps_root="nonneg", threshold="finite",
              nesterov="bool")),
    "rmsprop": (dict(learning_rate=0.1), dict(learning_rate="lr", decay="decay_closed",
                eps="nonneg", initial_scale="nonneg", eps_in_sqrt="bool", centered="bool",
                momentum="decay_closed_opt", nesterov="bool", bias_correction="bool")),
    "rprop": (dict(learning_rate=0.1), dict(learning_rate="lr_num", eta_minus="unit",
              eta_plus="ge1", min_step_size="nonneg", max_step_size="maxstep")),
    "sgd": (dict(learning_rate=0.1), dict(learning_rate="lr", momentum="decay_closed_opt",
            nesterov="bool", accumulator_dtype="dtype")),
    "sign_sgd": (dict(learning_rate=0.1), dict(learning_rate="lr")),
    "signum": (dict(learning_rate=0.1), dict(learning_rate="lr", beta="decay_closed",
               accumulator_dtype="dtype")),
    "sm3": (dict(learning_rate=0.1), dict(learning_rate="lr_num", momentum="decay_closed")),
    "yogi": (dict(learning_rate=0.1), dict(learning_rate="lr", b1="decay_open",
             b2="decay_open", eps="nonneg")),
    "lbfgs": (dict(), dict(learning_rate="lr_opt", memory_size="posint",
              scale_init_precond="bool")),
    # ---- building blocks ----
    "scale_by_adam": (dict(), ADAM),
    "scale_by_adamax": (dict(), dict(b1="decay_open", b2="decay_closed", eps="nonneg")),
    "scale_by_amsgrad": (dict(), dict(b1="decay_open", b2="decay_open", eps="nonneg",
                         eps_root="nonneg", mu_dtype="dtype")),
    "scale_by_belief": (dict(), dict(b1="decay_open", b2="decay_open", eps="nonneg",
                        eps_root="nonneg", nesterov="bool")),
    "scale_by_yogi": (dict(), dict(b1="decay_open", b2="decay_open", eps="nonneg",
                      eps_root="nonneg", initial_accumulator_value="nonneg")),
    "scale_by_radam": (dict(), dict(b1="decay_open", b2="decay_open", eps="nonneg",
                       eps_root="nonneg", threshold="finite", nesterov="bool")),
    "scale_by_adan": (dict(), dict(b1="decay_open", b2="decay_open", b3="decay_open",
                      eps="nonneg", eps_root="nonneg")),
    "scale_by_lion": (dict(), dict(b1="decay_closed", b2="decay_closed", mu_dtype="dtype")),
    "scale_by_novograd": (dict(), dict(b1="decay_closed", b2="decay_closed", eps="nonneg",
                          eps_root="nonneg", weight_decay="nonneg", mu_dtype="dtype")),
    "scale_by_rms": (dict(), dict(decay="decay_closed", eps="nonneg", initial_scale="nonneg",
                     eps_in_sqrt="bool", bias_correction="bool")),
    "scale_by_stddev": (dict(), dict(decay="decay_closed", eps="nonneg",
                        initial_scale="nonneg", eps_in_sqrt="bool", bias_correction="bool")),
    "scale_by_rss": (dict(), dict(initial_accumulator_value="nonneg", eps="nonneg")),
    "scale_by_adadelta": (dict(), dict(rho="decay_closed", eps="nonneg")),
    "scale_by_sm3": (dict(), dict(b1="decay_closed", b2="decay_closed", eps="nonneg")),
    "scale_by_rprop": (dict(learning_rate=0.1), dict(learning_rate="lr_num", eta_minus="unit",
                       eta_plus="ge1", min_step_size="nonneg", max_step_size="maxstep")),
    "scale_by_trust_ratio": (dict(), dict(min_norm="nonneg", trust_coefficient="nonneg",
                             eps="nonneg")),
    "scale_by_optimistic_gradient": (dict(), dict(alpha="nonneg", beta="nonneg")),
    "scale_by_polyak": (dict(), dict(f_min="finite", max_learning_rate="nonneg", eps="nonneg",
                        variant="variant")),
    "scale_by_lbfgs": (dict(), dict(memory_size="posint", scale_init_precond="bool")),
    "scale_by_zoom_linesearch": (dict(max_linesearch_steps=10), dict(
        max_linesearch_steps="nonnegint", tol="nonneg", increase_factor="ge1",
        slope_rtol="nonneg", stepsize_precision="nonneg", initial_guess_strategy="strategy",
        verbose="bool")),
    "scale_by_backtracking_linesearch": (dict(max_backtracking_steps=10), dict(
        max_backtracking_steps="nonnegint", slope_rtol="nonneg", decrease_factor="pos",
        max_learning_rate="pos", atol="nonneg", rtol="nonneg", store_grad="bool",
        verbose="bool")),
    "scale_by_factored_rms": (dict(), dict(factored="bool", decay_rate="nonneg",
                              step_offset="int", min_dim_size_to_factor="nonnegint",
                              epsilon="nonneg")),
    "scale_by_param_block_norm": (dict(), dict(min_scale="nonneg")),
    "scale_by_param_block_rms": (dict(), dict(min_scale="nonneg")),
    "scale_by_learning_rate": (dict(learning_rate=0.1), dict(learning_rate="lr",
                               flip_sign="bool")),
    "scale": (dict(step_size=0.1), dict(step_size="finite")),
    "add_decayed_weights": (dict(), dict(weight_decay="finite_sched")),
    "trace": (dict(decay=0.9), dict(decay="decay_closed", nesterov="bool",
              accumulator_dtype="dtype")),
    "ema": (dict(decay=0.9), dict(decay="decay_open", debias="bool",
            accumulator_dtype="dtype")),
    "clip": (dict(max_delta=1.0), dict(max_delta="nonneg")),
    "clip_by_global_norm": (dict(max_norm=1.0), dict(max_norm="pos")),
    "clip_by_block_rms": (dict(threshold=1.0), dict(threshold="pos")),
    "add_noise": (dict(eta=0.01, gamma=0.55, seed=0), dict(eta="nonneg", gamma="nonneg")),
    "apply_if_finite": (dict(inner=npopt.sgd(0.1), max_consecutive_errors=3),
                        dict(inner="tx", max_consecutive_errors="nonnegint")),
    "MultiSteps": (dict(opt=npopt.sgd(0.1), every_k_schedule=2), dict(
        opt="tx", every_k_schedule="posint", use_grad_mean="bool",
        should_skip_update_fn="callable_opt", accumulator_dtype="dtype")),
    "masked": (dict(inner=npopt.sgd(0.1), mask=True), dict(inner="tx",
               mask_compatible_extra_args="bool")),
}


def _cases(table):
    for name, (base, args) in SPECS.items():
        for arg, kind in args.items():
            for i, v in enumerate(table[kind]):
                yield pytest.param(name, base, arg, v, id=f"{name}-{arg}-{kind}{i}")


def _build(name, base, arg, value):
    fn = getattr(npopt, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # optimistic_adam's deprecation
        return fn(**{**base, arg: value})


def test_every_alias_is_covered():
    aliases = ["adabelief", "adadelta", "adafactor", "adagrad", "adam", "adamw", "adamax",
               "adamaxw", "adan", "amsgrad", "fromage", "lamb", "lars", "lion", "nadam",
               "nadamw", "noisy_sgd", "novograd", "optimistic_gradient_descent",
               "optimistic_adam", "optimistic_adam_v2", "polyak_sgd", "radam", "rmsprop",
               "rprop", "sgd", "sign_sgd", "signum", "sm3", "yogi", "lbfgs"]
    assert len(aliases) == 31
    import inspect
    for a in aliases:
        if a == "adafactor":
            continue
        params = [p for p in inspect.signature(getattr(npopt, a)).parameters
                  if p not in ("key", "seed", "mask", "weight_decay_mask", "trust_ratio_mask",
                               "linesearch")]
        assert set(params) <= set(SPECS[a][1]), (a, set(params) - set(SPECS[a][1]))


@pytest.mark.parametrize("name,base,arg,value", list(_cases(BAD)))
def test_rejects_bad_hyperparameter(name, base, arg, value):
    with pytest.raises((ValueError, TypeError)) as e:
        _build(name, base, arg, value)
    msg = str(e.value)
    assert re.match(rf"`?{re.escape(arg)}\b", msg), (
        f"{name}({arg}={value!r}) raised {type(e.value).__name__}({msg!r}): the message "
        f"should start with {arg!r}")


# optax's optimistic_adam refuses schedules: not a valid value there
@pytest.mark.parametrize("name,base,arg,value", [
    c for c in _cases(GOOD)
    if not (c.values[0] == "optimistic_adam" and c.values[2] == "learning_rate"
            and callable(c.values[3]))])
def test_accepts_valid_hyperparameter(name, base, arg, value):
    tx = _build(name, base, arg, value)
    assert callable(tx.init) and callable(tx.update)


@pytest.mark.parametrize("value", ["no-such-dtype", 3])
def test_unknown_dtype_names_are_rejected(value):
    with pytest.raises(TypeError, match=r"^mu_dtype\b"):
        npopt.adam(0.1, mu_dtype=value)


def test_issue_examples():
    with pytest.raises(ValueError, match=r"^momentum\b"):
        npopt.sgd(0.1, momentum=NAN)
    with pytest.raises(ValueError, match=r"^momentum\b"):
        npopt.sgd(0.1, momentum=-0.5)
    with pytest.raises(ValueError, match=r"^max_consecutive_errors\b"):
        npopt.apply_if_finite(npopt.sgd(0.1), max_consecutive_errors=-1)
    with pytest.raises(ValueError, match=r"^beta\b"):
        npopt.signum(0.1, beta=NAN)
    with pytest.raises(ValueError, match=r"^momentum\b"):
        npopt.sm3(0.1, momentum=1.5)
    with pytest.raises(ValueError, match=r"^momentum\b"):
        npopt.lars(0.1, momentum=-1.0)
    with pytest.raises(ValueError, match=r"^momentum\b"):
        npopt.rmsprop(0.1, momentum=INF)
    with pytest.raises(ValueError, match=r"^optimism\b"), \
            pytest.warns(DeprecationWarning):
        npopt.optimistic_adam(0.1, optimism=NAN)
    with pytest.raises(TypeError, match=r"^nesterov\b"):
        npopt.sgd(0.1, momentum=0.9, nesterov="yes")


def test_nesterov_without_momentum_still_checked():
    # sgd ignores nesterov when momentum is None (as optax), but a non-bool
    # flag is still a mistake
    with pytest.raises(TypeError, match=r"^nesterov\b"):
        npopt.sgd(0.1, nesterov=1)


def test_inject_hyperparams_validates_when_built():
    with pytest.raises(ValueError, match=r"^learning_rate\b"):
        npopt.inject_hyperparams(npopt.adam)(learning_rate=NAN)
    with pytest.raises(ValueError, match=r"^b1\b"):
        npopt.inject_hyperparams(npopt.adam)(learning_rate=0.1, b1=1.5)
    with pytest.raises(ValueError, match=r"^momentum\b"):
        npopt.inject_hyperparams(npopt.sgd)(learning_rate=0.1, momentum=-0.1)
    with pytest.raises(TypeError, match=r"^inner_factory\b"):
        npopt.inject_hyperparams(3)
    with pytest.raises(TypeError, match=r"^hyperparam_dtype\b"):
        npopt.inject_hyperparams(npopt.adam, hyperparam_dtype=np.int32)
    # schedules are fine, and their values are checked per step (below)
    npopt.inject_hyperparams(npopt.adam)(learning_rate=sched, b1=lambda c: 0.9)


def test_inject_hyperparams_bad_value_in_state_names_count():
    opt = npopt.inject_hyperparams(npopt.sgd)(learning_rate=0.1, momentum=0.9)
    p = np.ones(3)
    s = opt.init(p)
    s.hyperparams["momentum"] = np.asarray(2.0)
    with pytest.raises(ValueError, match=r"^momentum\b.*step count 0"):
        opt.update(np.ones(3), s, p)


def test_multisteps_schedule_value_checked():
    opt = npopt.MultiSteps(npopt.sgd(0.1), every_k_schedule=lambda step: 0)
    p = np.ones(2)
    s = opt.init(p)
    with pytest.raises(ValueError, match=r"^every_k_schedule\b.*gradient step 0"):
        opt.update(np.ones(2), s, p)
    opt = npopt.MultiSteps(npopt.sgd(0.1), every_k_schedule=lambda step: 2.5)
    with pytest.raises(ValueError, match=r"^every_k_schedule\b"):
        opt.update(np.ones(2), opt.init(p), p)


# ---------------------------------------------------------------------------
# a learning-rate schedule's value at each step
# ---------------------------------------------------------------------------

def bad_at(count, value):
    def lr(c):
        return np.float32(value) if int(c) == count else np.float32(0.01)
    return lr


OPTIMIZERS = {
    "sgd": lambda lr: npopt.sgd(lr),
    "sgd_momentum": lambda lr: npopt.sgd(lr, momentum=0.9),
    "adam": lambda lr: npopt.adam(lr),
    "adamw": lambda lr: npopt.adamw(lr),
    "lamb": lambda lr: npopt.lamb(lr),
    "lars": lambda lr: npopt.lars(lr),
    "rmsprop_momentum": lambda lr: npopt.rmsprop(lr, momentum=0.9),
    "adafactor": lambda lr: npopt.adafactor(lr),
    "fromage": lambda lr: npopt.fromage(lr),
    "lion": lambda lr: npopt.lion(lr),
    "novograd": lambda lr: npopt.novograd(lr),
    "sign_sgd": lambda lr: npopt.sign_sgd(lr),
    "adadelta": lambda lr: npopt.adadelta(lr),
    "optimistic_adam_v2": lambda lr: npopt.optimistic_adam_v2(lr),
    "inject_sgd": lambda lr: npopt.inject_hyperparams(npopt.sgd)(learning_rate=lr),
    "lbfgs_no_linesearch": lambda lr: npopt.lbfgs(lr, linesearch=None),
}


def _snapshot(tree):
    return [np.array(x, copy=True) for x in tree_leaves(tree)]


@pytest.mark.parametrize("path", ["update", "step"])
@pytest.mark.parametrize("bad", [NAN, INF, -INF, -1e-3])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_bad_schedule_value_raises_before_touching_buffers(name, bad, path):
    opt = OPTIMIZERS[name](bad_at(2, bad))
    params = {"w": np.linspace(-1, 1, 12).reshape(3, 4).astype(np.float32),
              "b": np.ones(4, np.float32)}
    state = opt.init(params)
    g = {"w": np.full((3, 4), 0.5, np.float32), "b": np.full(4, -0.25, np.float32)}
    for _ in range(2):                       # counts 0 and 1 are fine
        if path == "update":
            u, state = opt.update(g, state, params)
            params = npopt.apply_updates(params, u)
        else:
            params, state = opt.step(params, g, state)
    p0, s0 = _snapshot(params), _snapshot(state)
    with pytest.raises(ValueError, match=r"^learning_rate\b.*step count 2"):
        if path == "update":
            opt.update(g, state, params)
        else:
            opt.step(params, g, state)
    for a, b in zip(_snapshot(params), p0):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(_snapshot(state), s0):
        np.testing.assert_array_equal(a, b)


def test_lbfgs_fused_step_checks_schedule_first():
    opt = npopt.lbfgs(bad_at(1, NAN), linesearch=None)
    p = np.linspace(-1, 1, 5)
    fg = lambda x: (float(np.sum(x * x)), 2 * x)  # noqa: E731
    s = opt.init(p)
    v, g = fg(p)
    p, s = opt.step(p, g, s, value=v, grad=g, value_and_grad_fn=fg)
    p0, s0 = _snapshot(p), _snapshot(s)
    v, g = fg(p)
    with pytest.raises(ValueError, match=r"^learning_rate\b.*step count 1"):
        opt.step(p, g, s, value=v, grad=g, value_and_grad_fn=fg)
    for a, b in zip(_snapshot(s), s0):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(_snapshot(p), p0):
        np.testing.assert_array_equal(a, b)


def test_schedule_returning_non_scalar_or_non_number():
    for value in (np.ones(2), "0.1", None, 1j):
        opt = npopt.sgd(lambda c, v=value: v)
        with pytest.raises(ValueError, match=r"^learning_rate\b.*step count 0"):
            opt.update(np.ones(2), opt.init(np.ones(2)), np.ones(2))


def test_zero_learning_rate_and_negative_weight_decay_schedule_are_fine():
    opt = npopt.sgd(lambda c: 0.0)
    u, _ = opt.update(np.ones(2), opt.init(np.ones(2)))
    np.testing.assert_array_equal(u, 0.0)
    # fromage decays with the (negative) rate m - 1 through add_decayed_weights
    opt = npopt.fromage(lambda c: 0.1)
    p = np.ones(3)
    opt.update(np.ones(3), opt.init(p), p)
    tx = npopt.add_decayed_weights(lambda c: NAN)
    with pytest.raises(ValueError, match=r"^weight_decay\b.*step count 0"):
        tx.update(np.ones(2), tx.init(np.ones(2)), np.ones(2))


def test_scale_by_schedule_rejects_non_finite():
    tx = npopt.scale_by_schedule(lambda c: -0.5)      # a negative factor is fine here
    tx.update(np.ones(2), tx.init(np.ones(2)))
    tx = npopt.scale_by_schedule(lambda c: NAN)
    with pytest.raises(ValueError, match=r"^step_size_fn\b.*step count 0"):
        tx.update(np.ones(2), tx.init(np.ones(2)))


# ---------------------------------------------------------------------------
# apply_updates
# ---------------------------------------------------------------------------

def test_apply_updates_shape_mismatch_raises():
    p = {"a": np.zeros(3), "b": np.zeros((2, 2))}
    with pytest.raises(ValueError, match=r"^updates\b.*shape"):
        npopt.apply_updates(p, {"a": np.zeros((2, 3)), "b": np.zeros((2, 2))})
    with pytest.raises(ValueError, match=r"^updates\b.*shape"):
        npopt.apply_updates(np.zeros(3), np.zeros(1))
    with pytest.raises(ValueError, match=r"^updates\b.*shape"):
        npopt.apply_updates(np.zeros((2, 3)), np.zeros(3))
    with pytest.raises(ValueError, match=r"^updates\b.*shape"):
        npopt.apply_updates(np.float64(1.0), np.zeros(2))


def test_apply_updates_structure_mismatch_raises():
    with pytest.raises((ValueError, TypeError), match=r"^updates\b"):
        npopt.apply_updates({"a": np.zeros(3)}, {"b": np.zeros(3)})
    with pytest.raises((ValueError, TypeError), match=r"^updates\b"):
        npopt.apply_updates([np.zeros(3), np.zeros(2)], [np.zeros(3)])


def test_apply_updates_complex_updates_on_real_params_raise():
    with pytest.raises(TypeError, match=r"^updates\b.*complex"):
        npopt.apply_updates(np.zeros(3), np.ones(3) + 1j)
    with pytest.raises(TypeError, match=r"^updates\b.*complex"):
        npopt.apply_updates(np.zeros(3, np.float32), np.zeros(3, np.complex64))
    # complex params take complex updates
    out = npopt.apply_updates(np.zeros(2, np.complex64), np.full(2, 1 + 2j))
    assert out.dtype == np.complex64 and np.all(out == 1 + 2j)


def test_apply_updates_nothing_is_half_applied():
    p = {"a": np.zeros(3), "b": np.zeros(2)}
    with pytest.raises(ValueError):
        npopt.apply_updates(p, {"a": np.ones(3), "b": np.ones(5)})
    assert np.all(p["a"] == 0) and np.all(p["b"] == 0)


def test_apply_updates_dtype_rules():
    # optax: jnp.asarray(p + u).astype(p.dtype)
    p = np.ones(3, np.float32)
    out = npopt.apply_updates(p, np.full(3, 1e-9, np.float64))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, (p.astype(np.float64) + 1e-9).astype(np.float32))
    out = npopt.apply_updates(np.ones(2), np.ones(2, np.float32))
    assert out.dtype == np.float64
    # scalars (Python, NumPy, 0-d) are params trees
    assert npopt.apply_updates(1.0, 0.5) == 1.5
    r = npopt.apply_updates(np.float32(1.0), np.float64(0.25))
    assert np.asarray(r).dtype == np.float32 and r == 1.25
    # None leaves are kept; the inputs are not modified
    p = {"a": np.zeros(2), "b": None}
    u = {"a": np.ones(2), "b": None}
    out = npopt.apply_updates(p, u)
    assert out["b"] is None and np.all(out["a"] == 1) and np.all(p["a"] == 0)
    # a None param takes any update (optax maps over the params, None a leaf)
    out = npopt.apply_updates({"a": np.zeros(2), "b": None}, {"a": np.ones(2), "b": np.ones(3)})
    assert out["b"] is None
    # a None update for a param is an error (optax: TypeError from p + None)
    with pytest.raises(TypeError, match=r"^updates\b.*None"):
        npopt.apply_updates({"a": np.zeros(2), "b": np.ones(2)}, {"a": np.ones(2), "b": None})


def test_apply_updates_integer_params_keep_dtype():
    # optax casts back to the params' dtype (integer params are not rejected
    # by apply_updates itself)
    out = npopt.apply_updates(np.arange(3), np.full(3, 0.6))
    assert out.dtype == np.arange(3).dtype


try:
    from hypothesis import given, settings, strategies as st
except ImportError:    # pragma: no cover
    st = None

if st is not None:
    @settings(max_examples=150, deadline=None)
    @given(b1=st.floats(allow_nan=True, allow_infinity=True),
           b2=st.floats(allow_nan=True, allow_infinity=True),
           eps=st.floats(allow_nan=True, allow_infinity=True))
    def test_adam_accepts_exactly_the_documented_ranges(b1, b2, eps):
        ok = {"b1": 0 <= b1 < 1, "b2": 0 <= b2 < 1, "eps": 0 <= eps < math.inf}
        try:
            npopt.adam(1e-3, b1=b1, b2=b2, eps=eps)
        except ValueError as e:
            bad = [k for k, v in ok.items() if not v]
            assert bad and re.match(rf"({'|'.join(bad)})\b", str(e)), (str(e), bad)
        else:
            assert all(ok.values())

    @settings(max_examples=150, deadline=None)
    @given(momentum=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
           lr=st.floats(allow_nan=True, allow_infinity=True))
    def test_sgd_accepts_exactly_the_documented_ranges(momentum, lr):
        ok_m = momentum is None or 0 <= momentum <= 1
        ok_lr = 0 <= lr < math.inf
        try:
            npopt.sgd(lr, momentum=momentum)
        except ValueError as e:
            names = ([] if ok_lr else ["learning_rate"]) + ([] if ok_m else ["momentum"])
            assert names and re.match(rf"({'|'.join(names)})\b", str(e)), (str(e), names)
        else:
            assert ok_m and ok_lr

    @settings(max_examples=100, deadline=None)
    @given(shape_p=st.lists(st.integers(1, 3), max_size=3),
           shape_u=st.lists(st.integers(1, 3), max_size=3))
    def test_apply_updates_shapes(shape_p, shape_u):
        p, u = np.zeros(shape_p), np.ones(shape_u)
        if tuple(shape_p) == tuple(shape_u):
            np.testing.assert_array_equal(npopt.apply_updates(p, u), u)
        else:
            with pytest.raises(ValueError, match=r"^updates\b"):
                npopt.apply_updates(p, u)


def test_skip_large_updates_threshold():
    import functools
    for bad in (NAN, -1.0, "1"):
        f = functools.partial(npopt.skip_large_updates, max_squared_norm=bad)
        with pytest.raises(ValueError, match=r"^max_squared_norm\b"):
            f(np.ones(2), 0, None)
    f = functools.partial(npopt.skip_large_updates, max_squared_norm=INF)
    assert not bool(f(np.ones(2), 0, None)[0])


@pytest.mark.parametrize("path", ["update", "step"])
def test_polyak_sgd_scaling_schedule_named_scaling(path):
    opt = npopt.polyak_sgd(scaling=bad_at(0, NAN))
    p = np.ones(3)
    s = opt.init(p)
    with pytest.raises(ValueError, match=r"^scaling\b.*step count 0"):
        if path == "update":
            opt.update(np.ones(3), s, p, value=1.0)
        else:
            opt.step(p, np.ones(3), s, value=1.0)
    assert np.all(p == 1)
