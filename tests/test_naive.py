"""Every npopt alias against the naive oracle of ``tests/naive.py``.

Each case runs an alias for ``STEPS`` steps on a fixed float64 problem (a
separable quadratic with a step-dependent perturbation, so the gradients
depend on the trajectory) along both paths, ``update`` + ``apply_updates``
and the fused ``step``, and compares every iterate with the oracle's.

Tolerance: ``RTOL = 1e-12`` on the displacement ``x_t - x_0`` (relative to
its largest entry, per step), for every case. The oracle computes optax's
variant where optax departs from the paper (listed in naive.py's
docstring), so no case needs a looser tolerance. Two cases are shaped
instead: rmsprop centered with bias correction runs with eps = 1e-2 (its
first-step variance is exactly 0, see the case), and adafactor with
momentum passes dtype_momentum=float64 (optax's default keeps it in
float32). The only rule not compared iterate by iterate is lbfgs with its
default zoom line search: its direction (against the oracle's two-loop
recursion) and its step (strong Wolfe conditions) are checked instead.

``test_oracle_detects_a_wrong_hyperparameter`` shows that each comparison
can fail: the oracle run with one hyperparameter changed is far from
npopt's trajectory. ``test_every_alias_is_covered`` fails when an alias is
added to npopt without a case here.
"""
import functools
import warnings

import numpy as np
import pytest

import naive
import npopt
from npopt import alias as npopt_alias

STEPS = 10
RTOL = 1e-12
# a changed hyperparameter must move the trajectory by more than this
DETECT = 1e-6

# ------------------------------------------------------------------ problem
SHAPES = {"b": (5,), "w": (4, 3)}
_rng = np.random.default_rng(20260613)
X0 = {k: _rng.standard_normal(SHAPES[k]) for k in sorted(SHAPES)}
TARGET = {k: _rng.standard_normal(SHAPES[k]) for k in sorted(SHAPES)}
CURV = {k: _rng.uniform(0.5, 2.0, SHAPES[k]) for k in sorted(SHAPES)}
NOISE = {k: _rng.standard_normal(SHAPES[k]) for k in sorted(SHAPES)}


def _s(t):
    return 0.1 * np.cos(0.3 * t)


def tree_grad(p, t):
    """Gradient of tree_value: CURV * (p - TARGET) + s_t * NOISE, leaf by leaf."""
    return {k: CURV[k] * (p[k] - TARGET[k]) + _s(t) * NOISE[k] for k in sorted(p)}


def tree_value(p, t):
    return 5.0 + sum(0.5 * np.sum(CURV[k] * (p[k] - TARGET[k]) ** 2)
                     + _s(t) * np.sum(NOISE[k] * p[k]) for k in sorted(p))


def ravel(tree):
    return np.concatenate([np.ravel(tree[k]) for k in sorted(tree)])


def unravel(x):
    out, i = {}, 0
    for k in sorted(SHAPES):
        n = int(np.prod(SHAPES[k]))
        out[k] = x[i:i + n].reshape(SHAPES[k])
        i += n
    return out


def flat_grad(x, t):
    return ravel(tree_grad(unravel(x), t))


def flat_value(x, t):
    return tree_value(unravel(x), t)


def copy_tree(tree):
    return {k: np.array(v, dtype=np.float64, copy=True) for k, v in tree.items()}


# -------------------------------------------------------------------- cases
# id -> (alias, kwargs for both, perturbation of the oracle's kwargs, npopt-only kwargs)
PER_LEAF = {"lamb", "lars", "fromage", "novograd", "sm3", "adafactor"}
NEEDS_VALUE = {"polyak_sgd"}

CASES = {
    "sgd": ("sgd", dict(learning_rate=0.1), dict(learning_rate=0.11), {}),
    "sgd_momentum": ("sgd", dict(learning_rate=0.05, momentum=0.9), dict(momentum=0.8), {}),
    "sgd_nesterov": ("sgd", dict(learning_rate=0.05, momentum=0.9, nesterov=True),
                     dict(nesterov=False), {}),
    "sign_sgd": ("sign_sgd", dict(learning_rate=0.05), dict(learning_rate=0.06), {}),
    "signum": ("signum", dict(learning_rate=0.05, beta=0.9), dict(beta=0.99), {}),
    "noisy_sgd": ("noisy_sgd", dict(learning_rate=0.05, eta=0.01, gamma=0.55, key=42),
                  dict(key=43), {}),
    "noisy_sgd_eta": ("noisy_sgd", dict(learning_rate=0.05, eta=0.3, gamma=1.0, key=7),
                      dict(gamma=0.9), {}),
    "optimistic_gd": ("optimistic_gradient_descent", dict(learning_rate=0.05),
                      dict(beta=0.5), {}),
    "optimistic_gd_ab": ("optimistic_gradient_descent",
                         dict(learning_rate=0.05, alpha=0.5, beta=0.3), dict(alpha=0.6), {}),
    "polyak_sgd": ("polyak_sgd", dict(), dict(max_learning_rate=0.9), {}),
    "polyak_sgd_opts": ("polyak_sgd", dict(max_learning_rate=0.3, scaling=0.5, f_min=1.0,
                                           eps=1e-3), dict(max_learning_rate=0.35), {}),
    "polyak_sgd_plus": ("polyak_sgd", dict(variant="sps+", f_min=10.0, max_learning_rate=0.5),
                        dict(variant="sps"), {}),
    "rprop": ("rprop", dict(learning_rate=0.1), dict(eta_plus=1.3), {}),
    "rprop_clipped": ("rprop", dict(learning_rate=0.1, min_step_size=0.06, max_step_size=0.15),
                      dict(max_step_size=0.2), {}),
    "adam": ("adam", dict(learning_rate=0.05), dict(b1=0.8), {}),
    "adam_opts": ("adam", dict(learning_rate=0.05, b1=0.8, b2=0.99, eps=1e-6, eps_root=1e-4),
                  dict(eps_root=0.0), {}),
    "nadam": ("nadam", dict(learning_rate=0.05), dict(b1=0.85), {}),
    "adamw": ("adamw", dict(learning_rate=0.05, weight_decay=0.1), dict(weight_decay=0.2), {}),
    "nadamw": ("nadamw", dict(learning_rate=0.05, weight_decay=0.1), dict(b2=0.99), {}),
    "adamax": ("adamax", dict(learning_rate=0.05), dict(b1=0.8), {}),
    "adamaxw": ("adamaxw", dict(learning_rate=0.05, weight_decay=0.1), dict(weight_decay=0.2), {}),
    "amsgrad": ("amsgrad", dict(learning_rate=0.05), dict(b1=0.8), {}),
    "amsgrad_paper": ("amsgrad", dict(learning_rate=0.05, bias_correction_mu=False,
                                      bias_correction_nu=False), dict(bias_correction_nu=True), {}),
    "adabelief": ("adabelief", dict(learning_rate=0.05), dict(b2=0.99), {}),
    "adabelief_nesterov": ("adabelief", dict(learning_rate=0.05, nesterov=True, eps=1e-8,
                                             eps_root=1e-6), dict(nesterov=False), {}),
    "radam": ("radam", dict(learning_rate=0.05), dict(threshold=6.0), {}),
    "radam_nesterov": ("radam", dict(learning_rate=0.05, threshold=4.0, nesterov=True,
                                     eps_root=1e-6), dict(b1=0.8), {}),
    "yogi": ("yogi", dict(learning_rate=0.05), dict(b2=0.99), {}),
    "adan": ("adan", dict(learning_rate=0.05), dict(b2=0.9), {}),
    "adan_wd": ("adan", dict(learning_rate=0.05, weight_decay=0.05, eps_root=0.0),
                dict(weight_decay=0.1), {}),
    "lion": ("lion", dict(learning_rate=0.02), dict(weight_decay=2e-3), {}),
    "lion_b": ("lion", dict(learning_rate=0.1, b1=0.5, b2=0.9, weight_decay=0.1),
               dict(b1=0.99), {}),
    "optimistic_adam": ("optimistic_adam", dict(learning_rate=0.05), dict(optimism=0.1), {}),
    "optimistic_adam_paper": ("optimistic_adam", dict(learning_rate=0.05, nesterov=False),
                              dict(nesterov=True), {}),
    "optimistic_adam_v2": ("optimistic_adam_v2", dict(learning_rate=0.05, alpha=0.7, beta=0.4),
                           dict(beta=0.5), {}),
    "adagrad": ("adagrad", dict(learning_rate=0.5), dict(initial_accumulator_value=0.2), {}),
    "adadelta": ("adadelta", dict(learning_rate=1.0), dict(rho=0.8), {}),
    "adadelta_wd": ("adadelta", dict(learning_rate=0.5, weight_decay=0.1, rho=0.5, eps=1e-4),
                    dict(weight_decay=0.0), {}),
    "adadelta_no_lr": ("adadelta", dict(), dict(eps=1e-5), {}),
    "rmsprop": ("rmsprop", dict(learning_rate=0.01), dict(decay=0.8), {}),
    "rmsprop_opts": ("rmsprop", dict(learning_rate=0.01, eps=1e-4, eps_in_sqrt=False,
                                     initial_scale=0.1, bias_correction=True),
                     dict(initial_scale=0.2), {}),
    "rmsprop_centered": ("rmsprop", dict(learning_rate=0.01, centered=True, momentum=0.9,
                                         nesterov=True), dict(momentum=0.8), {}),
    # centered + bias correction: at step 1 the variance nu_hat - mu_hat^2 is
    # g^2 - g^2 = 0, so the step is g / sqrt(rounding + eps); with the default
    # eps = 1e-8 the last-bit rounding of g^2 (1e-16 g^2) is amplified 1e8-fold
    # in any implementation (an ill-conditioned formula, not a mismatch): a
    # larger eps keeps the comparison at 1e-12.
    "rmsprop_centered_bc": ("rmsprop", dict(learning_rate=0.01, centered=True,
                                            bias_correction=True, momentum=0.5, eps=1e-2),
                            dict(centered=False), {}),
    "lbfgs_fixed": ("lbfgs", dict(learning_rate=0.5, linesearch=None, memory_size=3),
                    dict(memory_size=4), {}),
    "lbfgs_fixed_unscaled": ("lbfgs", dict(learning_rate=0.3, linesearch=None,
                                           scale_init_precond=False),
                             dict(scale_init_precond=True), {}),
    "lamb": ("lamb", dict(learning_rate=0.05, weight_decay=0.01), dict(b1=0.8), {}),
    "lars": ("lars", dict(learning_rate=0.5, weight_decay=0.01), dict(trust_coefficient=0.002), {}),
    "lars_nesterov": ("lars", dict(learning_rate=0.1, trust_coefficient=0.1, eps=1e-3,
                                   nesterov=True, momentum=0.8), dict(eps=0.0), {}),
    "fromage": ("fromage", dict(learning_rate=0.1), dict(learning_rate=0.12), {}),
    "fromage_min_norm": ("fromage", dict(learning_rate=0.1, min_norm=3.0), dict(min_norm=4.0), {}),
    "novograd": ("novograd", dict(learning_rate=0.05, weight_decay=0.01), dict(b2=0.5), {}),
    "novograd_eps": ("novograd", dict(learning_rate=0.05, eps=1e-2, eps_root=1e-3, b1=0.5),
                     dict(eps_root=0.0), {}),
    "sm3": ("sm3", dict(learning_rate=0.1), dict(momentum=0.8), {}),
    "adafactor": ("adafactor", dict(), dict(decay_rate=0.7), {}),
    "adafactor_factored": ("adafactor", dict(learning_rate=0.1, min_dim_size_to_factor=3,
                                             clipping_threshold=0.5),
                           dict(decay_rate=0.7), {}),
    "adafactor_all": ("adafactor", dict(learning_rate=0.1, min_dim_size_to_factor=3, momentum=0.9,
                                        weight_decay_rate=0.01, clipping_threshold=None,
                                        multiply_by_parameter_scale=False),
                      dict(momentum=0.8), dict(dtype_momentum=np.float64)),
    "adafactor_unfactored": ("adafactor", dict(learning_rate=0.1, factored=False,
                                               min_dim_size_to_factor=3, decay_rate=0.5),
                             dict(factored=True), {}),
}


def _build(name, kw, extra):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)     # optimistic_adam
        return getattr(npopt, name)(**kw, **extra)


@functools.lru_cache(maxsize=None)
def run_npopt(case, path):
    name, kw, _, extra = CASES[case]
    opt = _build(name, kw, extra)
    params = copy_tree(X0)
    state = opt.init(params)
    traj = []
    for t in range(STEPS):
        g = tree_grad(params, t)
        more = {"value": tree_value(params, t)} if name in NEEDS_VALUE else {}
        if path == "update":
            updates, state = opt.update(g, state, params, **more)
            params = npopt.apply_updates(params, updates)
        else:
            params, state = opt.step(params, g, state, **more)
        traj.append(ravel(params).copy())
    return np.array(traj)


def run_naive(case, **change):
    name, kw, _, _ = CASES[case]
    kw = {**kw, **change}
    if name == "lbfgs":
        kw.pop("linesearch")
    oracle = getattr(naive, name)
    if name in PER_LEAF:
        traj = [ravel(p) for p in oracle(copy_tree(X0), tree_grad, STEPS, **kw)]
    elif name in NEEDS_VALUE:
        traj = oracle(ravel(X0), flat_grad, STEPS, flat_value, **kw)
    else:
        traj = oracle(ravel(X0), flat_grad, STEPS, **kw)
    return np.array(traj)


def displacement_error(got, want):
    """Largest over the steps of max|got_t - want_t| / max|want_t - x_0|."""
    x0 = ravel(X0)
    errs = []
    for g, w in zip(got, want):
        scale = max(np.max(np.abs(w - x0)), 1e-300)
        errs.append(np.max(np.abs(g - w)) / scale)
    return max(errs)


@pytest.mark.parametrize("path", ["update", "step"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_alias_matches_naive_oracle(case, path):
    got = run_npopt(case, path)
    want = run_naive(case)
    assert np.all(np.isfinite(want))
    err = displacement_error(got, want)
    assert err <= RTOL, f"{case} ({path}): relative error {err:.3g} > {RTOL}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_oracle_detects_a_wrong_hyperparameter(case):
    """The comparison above can fail: one changed hyperparameter in the oracle
    (CASES' third entry) moves its trajectory far from npopt's."""
    changed = run_naive(case, **CASES[case][2])
    err = displacement_error(run_npopt(case, "update"), changed)
    assert err > DETECT, f"{case}: changing {CASES[case][2]} went unnoticed ({err:.3g})"


def test_every_alias_is_covered():
    exported = {n for n in dir(npopt_alias) if not n.startswith("_")
                and callable(getattr(npopt_alias, n))}
    covered = {c[0] for c in CASES.values()}
    assert exported - covered == set()
    assert covered <= exported
    for name in exported:
        assert hasattr(naive, name), name


def test_threefry_split_matches_jax():
    """naive's threefry split against jax.random.split (jax 0.7, x64, recorded):
    the noise oracle's key stream is JAX's, not borrowed from npopt."""
    known = {0: [[1797259609, 2579123966], [928981903, 3453687069]],
             42: [[1832780943, 270669613], [64467757, 2916123636]],
             2 ** 40 + 7: [[2775665504, 110793307], [1038896816, 4099356745]]}
    for seed, want in known.items():
        got = naive.threefry_split(naive.key_from_seed(seed))
        assert [list(map(int, k)) for k in got] == want


def test_noisy_sgd_noise_has_the_annealed_variance():
    """Independent of the stream: over many parameters the noise npopt adds at
    step t has standard deviation sqrt(eta / t^gamma)."""
    n, eta, gamma = 200_000, 0.5, 0.55
    opt = npopt.noisy_sgd(1.0, eta=eta, gamma=gamma, key=3)
    p = np.zeros(n)
    state = opt.init(p)
    for t in range(1, 4):
        u, state = opt.update(np.zeros(n), state, p)
        assert abs(np.std(u) / np.sqrt(eta / t ** gamma) - 1) < 0.01
        assert abs(np.mean(u)) < 0.01


# -------------------------------------------- lbfgs with its zoom line search
_A = np.random.default_rng(5).standard_normal((12, 6))
_C = np.random.default_rng(6).standard_normal(6)


def logistic_value(x):
    return np.sum(np.logaddexp(0.0, 3 * _A @ x)) - _C @ x + 10.0 * x @ x


def logistic_grad(x):
    return 3 * _A.T @ (1 / (1 + np.exp(-3 * (_A @ x)))) - _C + 20.0 * x


@pytest.mark.parametrize("path", ["update", "step"])
def test_lbfgs_zoom_direction_and_wolfe_step(path):
    """Default lbfgs: each update is -eta_t * d_t, with d_t the oracle's
    two-loop direction from the same (s, y) history and eta_t > 0
    satisfying the strong Wolfe conditions (c1 = 1e-4, c2 = 0.9)."""
    opt = npopt.lbfgs()
    x = np.zeros(6)
    state = opt.init(x)
    s_hist, y_hist = [], []
    x_prev = g_prev = None
    etas = []
    for t in range(STEPS):
        f, g = logistic_value(x), logistic_grad(x)
        if np.linalg.norm(g) < 1e-8:
            break
        s = y = None
        if x_prev is not None:
            s, y = x - x_prev, g - g_prev
            s_hist, y_hist = (s_hist + [s])[-10:], (y_hist + [y])[-10:]
        d = naive.lbfgs_direction(g, s_hist, y_hist, naive.lbfgs_gamma(g, s, y))
        kw = dict(value=f, grad=g, value_fn=logistic_value, grad_fn=logistic_grad)
        before = x.copy()
        if path == "update":
            u, state = opt.update(g, state, x, **kw)
            x = npopt.apply_updates(x, u)
        else:
            x, state = opt.step(x, g, state, **kw)
            u = x - before
        eta = -(u @ d) / (d @ d)
        etas.append(eta)
        assert eta > 0
        # (on the step path u = x_new - x carries the rounding of x: eps ||x||)
        assert np.linalg.norm(u + eta * d) <= 1e-10 * np.linalg.norm(u) + 1e-15 * np.linalg.norm(x)
        slope = g @ u
        assert slope < 0
        if -slope > 1e-9 * abs(f):       # above rounding noise: the strong Wolfe conditions
            assert logistic_value(before + u) <= f + 1e-4 * slope
            assert abs(logistic_grad(before + u) @ u) <= 0.9 * abs(slope)
        x_prev, g_prev = before, g
    # the first step is the normalised gradient, too long for this stiff
    # problem: the zoom shortened it (later steps accept their first guess, 1)
    assert len(etas) == STEPS and etas[0] < 0.9, etas
    assert logistic_value(x) < logistic_value(np.zeros(6))
