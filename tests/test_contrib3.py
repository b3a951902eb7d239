"""npopt.contrib (helper contrib3): muon, normalize, sam, dpsgd, sophia,
split_real_and_imaginary.

* trajectories of optax 0.2.8 that need more than the gradient (DP-SGD's
  per-example gradients, Sophia's Hessian-vector products, SAM's opaque
  grad_fn; reference/make_contrib3_reference.py) on both paths, both dtypes;
  the others are cases of reference/cases_contrib3.py
  (test_alias_reference.py);
* oracles from the papers' formulas (Newton-Schulz with NumPy's ``@``,
  per-example clipping, Hutchinson's estimator), the DP noise's statistics,
  and bad input.
"""
import inspect
import json
import os

import numpy as np
import pytest

import npopt
from conftest import TOL, rel_err
from npopt import contrib as C
from npopt._target import is_device_array
from npopt.contrib._muon import orthogonalize_via_newton_schulz
from npopt.tree import tree_leaves, tree_map
from reference import contrib3_problem as prob

DATA = os.path.join(os.path.dirname(__file__), "reference", "data", "optax", "contrib3.npz")


def _adv(lr):
    return npopt.chain(C.normalize(), npopt.sgd(lr))


BUILD = {
    "dpsgd_plain": (lambda: C.dpsgd(0.05, 2.0, 0.0, seed=3), "per_example", None),
    "dpsgd_momentum_nesterov": (
        lambda: C.dpsgd(0.05, 2.0, 0.0, seed=7, momentum=0.9, nesterov=True), "per_example", None),
    "dp_aggregate_adam": (
        lambda: npopt.chain(C.differentially_private_aggregate(1.0, 0.0, key=11), npopt.adam(1e-2)),
        "per_example", None),
    "sophia_default": (lambda: C.sophia(1e-2), "grads", "hvp_fn"),
    "sophia_interval3_mask": (
        lambda: C.sophia(5e-3, b1=0.9, b2=0.95, weight_decay=0.1,
                         weight_decay_mask={"a": True, "b": False}, gamma=0.05,
                         clip_threshold=0.5, update_interval=3, mu_dtype=np.float32,
                         hessian_diagonal_fn=C.hutchinson_estimator_diag_hessian(
                             np.array([0, 5], np.uint32))),      # jax.random.PRNGKey(5)
        "grads", "hvp_fn"),
    "sophia_noclip": (
        lambda: C.sophia(2e-2, gamma=1.0, clip_threshold=None, update_interval=1,
                         weight_decay=0.0), "grads", "hvp_fn"),
    "sam_opaque": (
        lambda: C.sam(npopt.sgd(1e-2), _adv(5e-2), sync_period=3, opaque_mode=True),
        "grads", "grad_fn"),
    "sam_opaque_adam_noreset": (
        lambda: C.sam(npopt.adam(1e-2), npopt.chain(C.normalize(), npopt.adam(5e-2)),
                      sync_period=2, reset_state=False, opaque_mode=True), "grads", "grad_fn"),
    "split_adam": (lambda: C.split_real_and_imaginary(npopt.adam(1e-2)), "complex", None),
    "split_sgd_momentum": (
        lambda: C.split_real_and_imaginary(npopt.sgd(2e-2, momentum=0.9, nesterov=True)),
        "complex", None),
}


@pytest.fixture(scope="module")
def ref():
    z = np.load(DATA)
    return z, json.loads(str(z["meta"]))


def _replay(name, dtype, path):
    make, source, extra = BUILD[name]
    opt = make()
    params, c = prob.make_complex(dtype) if source == "complex" else prob.make(dtype)
    ravel = prob.ravel_complex if source == "complex" else prob.ravel
    state = opt.init(params)
    traj, first = [], None
    for t in range(prob.STEPS):
        g = (prob.per_example_grads(params, c, t) if source == "per_example"
             else prob.grads(params, c, t))
        kw = {}
        if extra == "hvp_fn":
            kw["hvp_fn"] = lambda p, v: prob.hvp(p, v, c)
        elif extra == "grad_fn":
            kw["grad_fn"] = lambda p, i, t=t: prob.grads(p, c, t)
        if path == "update":
            updates, state = opt.update(g, state, params, **kw)
            if t == 0:
                first = ravel(updates)
            params = npopt.apply_updates(params, updates)
        else:
            before = ravel(params)
            params, state = opt.step(params, g, state, **kw)
            if t == 0:
                first = ravel(params) - before
        traj.append(ravel(params).copy())
    return np.stack(traj), first, state


@pytest.mark.parametrize("path", ["update", "step"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(BUILD))
def test_matches_optax(ref, name, dtype, path):
    z, meta = ref
    tol = TOL[np.dtype(dtype)]
    traj, first, state = _replay(name, np.dtype(dtype), path)
    assert traj.dtype == np.dtype(dtype)
    want = z[f"{name}/{dtype}/traj"]
    for k in (0, 1, 9, prob.STEPS - 1):
        assert rel_err(traj[k], want[k]) <= tol, (k, rel_err(traj[k], want[k]))
    assert rel_err(first, z[f"{name}/{dtype}/updates_1"]) <= (tol if path == "update"
                                                               else 1e3 * tol)
    leaves = tree_leaves(state)
    assert len(leaves) == meta["cases"][name][dtype]
    for i, leaf in enumerate(leaves):
        leaf, w = np.asarray(leaf), z[f"{name}/{dtype}/state_{i}"]
        assert leaf.dtype == w.dtype and leaf.shape == w.shape, (i, leaf.dtype, w.dtype)
        if leaf.dtype.kind in "biu":
            np.testing.assert_array_equal(leaf, w)      # counts, threefry keys
        else:
            assert rel_err(leaf, w) <= 10 * tol, (i, rel_err(leaf, w))


GALORE = {
    "galore_left_rank2": lambda: C.galore(1e-2, rank=2),
    "galore_right_wd_scale": lambda: C.galore(
        1e-2, rank=2, scale=0.5, weight_decay=0.1, mask={"a": True, "b": False},
        weight_dimension_numbers={"a": C.GaLoreDimensionNumbers(1, 0), "b": None}),
    "galore_rank1_sgd_base": lambda: C.galore(5e-2, rank=1,
                                              base_optimizer=npopt.sgd(1.0, momentum=0.9)),
}
# optax takes GaLore's SVD in float32 (LAPACK): its float64 trajectories carry
# float32 rounding, which npopt's SVD (one-sided Jacobi) does not reproduce
GALORE_TOL = 2e-6


@pytest.mark.parametrize("path", ["update", "step"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(GALORE))
def test_galore_matches_optax(ref, name, dtype, path):
    z, meta = ref
    BUILD[name] = (GALORE[name], "grads", None)
    try:
        traj, first, state = _replay(name, np.dtype(dtype), path)
    finally:
        del BUILD[name]
    want = z[f"{name}/{dtype}/traj"]
    errs = [rel_err(traj[k], want[k]) for k in (0, 1, 9, prob.STEPS - 1)]
    assert max(errs) <= max(GALORE_TOL, TOL[np.dtype(dtype)]), errs
    # the state: count exact; projector columns and the low-rank moments up to
    # the singular vectors' signs (LAPACK's are arbitrary, npopt's canonical)
    leaves = tree_leaves(state)
    assert len(leaves) == meta["cases"][name][dtype]
    for i, leaf in enumerate(leaves):
        leaf, w = np.asarray(leaf), z[f"{name}/{dtype}/state_{i}"]
        assert leaf.dtype == w.dtype and leaf.shape == w.shape, i
        if leaf.dtype.kind in "iu":
            np.testing.assert_array_equal(leaf, w)
        else:
            assert rel_err(np.abs(leaf), np.abs(w)) <= 10 * max(GALORE_TOL, TOL[leaf.dtype]), i
    g_state = state[0]
    p = g_state.projector["a"]
    assert np.all(np.argmax(np.abs(p), 0) == np.argmax(p, 0))      # canonical signs


# ---- signatures --------------------------------------------------------------

OPTAX_SIGNATURES = {   # optax 0.2.8 (inspect.signature), defaults as text
    "muon": "(learning_rate, ns_coeffs=(3.4445, -4.775, 2.0315), ns_steps=5, beta=0.95, "
            "eps=1e-08, weight_decay=0.0, weight_decay_mask=None, mu_dtype=None, *, "
            "nesterov=True, adaptive=False, preconditioning='frobenius', adam_b1=0.9, "
            "adam_b2=0.999, adam_eps_root=0.0, adam_weight_decay=0.0, adam_learning_rate=None, "
            "muon_weight_dimension_numbers=None, consistent_rms=None)",
    "scale_by_muon": "(ns_coeffs=(3.4445, -4.775, 2.0315), ns_steps=5, beta=0.95, eps=1e-08, "
                     "mu_dtype=None, *, nesterov=True, adaptive=False, "
                     "preconditioning='frobenius', weight_dimension_numbers=None)",
    "sam": "(optimizer, adv_optimizer, sync_period=2, reset_state=True, opaque_mode=False, "
           "batch_axis_name=None)",
    "normalize": "()",
    "dpsgd": "(learning_rate, l2_norm_clip, noise_multiplier, seed, momentum=None, "
             "nesterov=False)",
    "differentially_private_aggregate": "(l2_norm_clip, noise_multiplier, key=None, *, "
                                        "seed=None)",
    "hutchinson_estimator_diag_hessian": "(random_seed=None)",
    "split_real_and_imaginary": "(inner)",
    "galore": "(learning_rate, rank=128, update_proj_gap=200, scale=1.0, base_optimizer=None, "
              "weight_decay=0.0, mask=None, weight_dimension_numbers=None)",
    "scale_by_galore": "(rank=128, update_proj_gap=200, scale=1.0, base_optimizer=None, "
                       "weight_dimension_numbers=None)",
}


@pytest.mark.parametrize("name", list(OPTAX_SIGNATURES))
def test_signature_is_optax(name):
    assert str(inspect.signature(getattr(C, name))) == OPTAX_SIGNATURES[name]


def test_sophia_signature():
    sig = inspect.signature(C.sophia)
    assert list(sig.parameters) == [
        "learning_rate", "b1", "b2", "eps", "weight_decay", "weight_decay_mask", "gamma",
        "clip_threshold", "update_interval", "hessian_diagonal_fn", "mu_dtype", "verbose",
        "print_win_rate_every_n_steps"]
    d = {k: p.default for k, p in sig.parameters.items()}
    assert (d["b1"], d["b2"], d["eps"], d["weight_decay"], d["gamma"], d["clip_threshold"],
            d["update_interval"]) == (0.965, 0.99, 1e-8, 1e-4, 0.01, 1.0, 10)


def test_state_fields_are_optax():
    assert C.MuonState._fields == ("count", "mu", "ns_coeffs")
    assert C.MuonDimensionNumbers() == (0, 1)
    assert C.SAMState._fields == ("steps_since_sync", "opt_state", "adv_state", "cache")
    assert C.NormalizeState is npopt.EmptyState
    assert C.DifferentiallyPrivateAggregateState._fields == ("rng_key",)
    assert C.SophiaState._fields == ("count", "mu", "nu", "hessian_fn_state")
    assert C.HutchinsonState._fields == ("key",)
    assert C.SplitRealAndImaginaryState._fields == ("inner_state",)
    assert C.GaLoreState._fields == ("count", "base_optimizer_state", "projector")
    assert C.GaLoreDimensionNumbers() == (0, 1)


# ---- oracles -----------------------------------------------------------------

def _ns_oracle(x, coeffs, steps, eps=1e-8):
    """Newton-Schulz as the paper/modded-nanogpt writes it, with NumPy's @."""
    t = x.shape[0] > x.shape[1]
    x = x.T if t else x
    x = x / (np.linalg.norm(x) + eps)
    a_, b_, c_ = coeffs
    for _ in range(steps):
        a = x @ x.T
        x = a_ * x + (b_ * a + c_ * a @ a) @ x
    return x.T if t else x


@pytest.mark.parametrize("shape", [(3, 5), (7, 4), (6, 6), (1, 9)])
def test_newton_schulz_matches_the_formula_and_orthogonalizes(shape):
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape)
    got = orthogonalize_via_newton_schulz(x, np.array((3.4445, -4.775, 2.0315)))
    np.testing.assert_allclose(got, _ns_oracle(x, (3.4445, -4.775, 2.0315), 5), rtol=1e-11,
                               atol=1e-12)
    # many steps of the classical cubic iteration (1.5, -0.5, 0) converge to U V^T
    polar = orthogonalize_via_newton_schulz(x, np.array((1.5, -0.5, 0.0)), 60)
    u, _, vt = np.linalg.svd(x, full_matrices=False)
    np.testing.assert_allclose(polar, u @ vt, atol=1e-8)


def test_newton_schulz_batch_axes_are_independent():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3, 5))      # batch axis 0, matrices (3, 5)
    dn = C.MuonDimensionNumbers(reduction_axis=1, output_axis=2)
    c = np.array((3.4445, -4.775, 2.0315))
    got = orthogonalize_via_newton_schulz(x, c, dimension_numbers=dn)
    for i in range(4):
        np.testing.assert_array_equal(
            got[i], orthogonalize_via_newton_schulz(x[i], c))


def test_muon_sends_non_matrices_to_adamw():
    p = {"m": np.ones((3, 4)), "v": np.ones(4), "s": np.float64(2.0)}
    g = {"m": np.full((3, 4), 0.1), "v": np.full(4, 0.5), "s": np.float64(-1.0)}
    u, _ = C.muon(1e-2).update(g, C.muon(1e-2).init(p), p)
    ua, _ = npopt.adamw(1e-2, weight_decay=0.0, nesterov=True).update(
        {"v": g["v"], "s": g["s"]}, npopt.adamw(1e-2, weight_decay=0.0, nesterov=True).init(
            {"v": p["v"], "s": p["s"]}), {"v": p["v"], "s": p["s"]})
    np.testing.assert_array_equal(u["v"], ua["v"])
    np.testing.assert_array_equal(u["s"], ua["s"])


def test_empty_and_batched_leaves():
    # an empty matrix (optax raises ZeroDivisionError in scale_by_shape), a 3-D
    # leaf (AdamW by default), both paths
    p = {"e": np.zeros((0, 5)), "t": np.ones((2, 3, 4)), "m": np.eye(3)}
    for tx in (C.muon(1e-2), C.galore(1e-2, rank=2)):
        u, _ = tx.update(p, tx.init(p), p)
        p2, _ = tx.step(p, p, tx.init(p))
        for k in p:
            assert u[k].shape == p[k].shape and p2[k].shape == p[k].shape
            assert np.all(np.isfinite(u[k]))


def test_normalize_gives_unit_global_norm():
    rng = np.random.default_rng(2)
    g = {"a": rng.standard_normal((5, 3)), "b": rng.standard_normal(7)}
    u, _ = C.normalize().update(g, C.normalize().init(g))
    assert abs(float(npopt.global_norm(u)) - 1.0) < 1e-15
    u2, _ = C.normalize().update(u, C.normalize().init(u))       # idempotent
    np.testing.assert_allclose(u2["a"], u["a"], rtol=1e-15)


def test_sam_two_steps_are_the_paper_formula():
    # sgd outer, normalized sgd adversary, sync_period=2: one SAM step in two calls
    rho, lr = 0.05, 0.1
    opt = C.sam(npopt.sgd(lr), _adv(rho))
    grad = lambda w: np.array([2.0, 8.0]) * w + np.array([1.0, -1.0])   # noqa: E731
    w = np.array([1.0, 2.0])
    state = opt.init(w)
    u, state = opt.update(grad(w), state, w)
    w_adv = npopt.apply_updates(w, u)
    np.testing.assert_allclose(w_adv, w + rho * grad(w) / np.linalg.norm(grad(w)), rtol=1e-15)
    u, state = opt.update(grad(w_adv), state, w_adv)
    np.testing.assert_allclose(npopt.apply_updates(w_adv, u), w - lr * grad(w_adv),
                               rtol=1e-14)
    assert int(state.steps_since_sync) == 0


def test_dp_aggregate_is_the_clipping_formula():
    rng = np.random.default_rng(3)
    g = {"a": rng.standard_normal((5, 2, 3)), "b": rng.standard_normal((5, 4))}
    clip = 3.5
    tx = C.differentially_private_aggregate(clip, 0.0, key=0)
    u, _ = tx.update(g, tx.init(None))
    norms = np.sqrt(np.sum(g["a"].reshape(5, -1) ** 2, 1) + np.sum(g["b"] ** 2, 1))
    m = np.minimum(clip / norms, 1.0)
    assert np.any(m < 1) and np.any(m == 1)
    np.testing.assert_allclose(u["a"], np.tensordot(m, g["a"], 1) / 5, rtol=1e-13)
    np.testing.assert_allclose(u["b"], np.tensordot(m, g["b"], 1) / 5, rtol=1e-13)


def test_dp_noise_statistics_and_keys():
    # zero gradients: the update is pure noise, std l2_norm_clip * noise_multiplier / B
    clip, sigma, bsize = 1.5, 0.8, 4
    tx = C.differentially_private_aggregate(clip, sigma, key=42)
    g = {"a": np.zeros((bsize, 300, 40)), "b": np.zeros((bsize, 2000), np.float32)}
    state = tx.init(None)
    u, state2 = tx.update(g, state)
    std = clip * sigma / bsize
    # a mixed tree: the per-example norms, hence the multipliers and every
    # clipped sum, are float64 (as optax's tensordot promotes)
    for leaf, dt in ((u["a"], np.float64), (u["b"], np.float64)):
        assert leaf.dtype == dt
        z = leaf.reshape(-1) / std
        n = z.size
        assert abs(z.mean()) < 5 / np.sqrt(n)
        assert abs(z.var() - 1) < 5 * np.sqrt(2 / n)
        assert abs(np.mean(z ** 4) - 3) < 5 * np.sqrt(96 / n)       # Gaussian kurtosis
    assert np.corrcoef(u["a"].reshape(-1)[:2000], u["b"].astype(np.float64))[0, 1] < 0.1
    # reproducible from the state; the key advances; the next draw differs
    u_again, _ = tx.update(g, state)
    np.testing.assert_array_equal(u_again["a"], u["a"])
    u3, _ = tx.update(g, state2)
    assert not np.array_equal(u3["a"], u["a"])
    assert not np.array_equal(state2.rng_key, state.rng_key)


def test_hutchinson_is_unbiased_for_a_full_hessian():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((6, 6))
    h = a @ a.T
    est = C.hutchinson_estimator_diag_hessian(random_seed=9)
    state = est.init(np.zeros(6))
    draws = []
    for _ in range(4000):
        d, state = est.update(None, state, np.zeros(6), hvp_fn=lambda p, v: h @ v)
        draws.append(d)
    draws = np.array(draws)
    # each draw is v * (H v) with v = +-1: diag H plus off-diagonal terms of zero mean
    se = draws.std(0) / np.sqrt(len(draws))
    assert np.all(np.abs(draws.mean(0) - np.diag(h)) < 5 * se + 1e-12)


def test_split_real_and_imaginary_runs_the_inner_rule_on_the_parts():
    rng = np.random.default_rng(5)
    p = {"z": (rng.standard_normal(7) + 1j * rng.standard_normal(7)), "r": rng.standard_normal(3)}
    g = {"z": (rng.standard_normal(7) + 1j * rng.standard_normal(7)), "r": rng.standard_normal(3)}
    tx = C.split_real_and_imaginary(npopt.adam(0.1))
    state = tx.init(p)
    assert isinstance(state.inner_state[0].mu["z"], tuple)     # (real, imaginary)
    u, _ = tx.update(g, state, p)
    ref = npopt.adam(0.1)
    parts = {"re": g["z"].real, "im": g["z"].imag, "r": g["r"]}
    want, _ = ref.update(parts, ref.init(parts))
    assert u["z"].dtype == np.complex128 and u["r"].dtype == np.float64
    np.testing.assert_array_equal(u["z"].real, want["re"])
    np.testing.assert_array_equal(u["z"].imag, want["im"])
    np.testing.assert_array_equal(u["r"], want["r"])


def test_galore_projector_is_the_svd_and_refreshes():
    rng = np.random.default_rng(6)
    g = {"w": rng.standard_normal((8, 5)), "v": rng.standard_normal(3)}
    tx = C.scale_by_galore(rank=2, update_proj_gap=3, base_optimizer=npopt.sgd(1.0))
    state = tx.init(g)
    for k in range(7):
        gk = tree_map(lambda x: x * (1 + k) + k, g)
        u, new = tx.update(gk, state)
        p = new.projector["w"]
        if k % 3 == 0:       # refreshed: the top-2 left singular vectors of gk (float32)
            uu = np.linalg.svd(gk["w"].astype(np.float32).astype(np.float64))[0][:, :2]
            np.testing.assert_allclose(np.abs(uu.T @ p), np.eye(2), atol=1e-5)
        else:
            np.testing.assert_array_equal(p, state.projector["w"])
        # sgd(1.0) base: the update is -P P^T G (the projection of the gradient)
        np.testing.assert_allclose(u["w"], -p @ (p.T @ gk["w"]), rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(u["v"], -gk["v"])
        state = new
    assert int(state.count) == 7


def test_sophia_is_the_paper_recursion():
    # Liu et al., Algorithm 3 with optax's bias correction and refresh rule,
    # written out: a non-diagonal Hessian, k = 2 (refresh at steps 0, 2, 4, ...)
    rng = np.random.default_rng(9)
    a = rng.standard_normal((5, 5))
    h = a @ a.T + np.eye(5)
    b1, b2, eps, gamma, rho, lr, wd = 0.9, 0.95, 1e-8, 0.05, 0.7, 0.1, 0.01
    est = C.hutchinson_estimator_diag_hessian(random_seed=3)
    opt = C.sophia(lr, b1=b1, b2=b2, eps=eps, weight_decay=wd, gamma=gamma,
                   clip_threshold=rho, update_interval=2, hessian_diagonal_fn=est)
    w = rng.standard_normal(5)
    state = opt.init(w)
    m, hh, est_state = np.zeros(5), np.zeros(5), est.init(w)
    x = w.copy()
    for t in range(7):
        g = h @ w - 1.0
        w, state = opt.step(w, g, state, hvp_fn=lambda p, v: h @ v)
        # the oracle
        m = b1 * m + (1 - b1) * g
        u = np.clip((m / (1 - b1 ** (t + 1))) / np.maximum(gamma * hh, eps), -rho, rho)
        if t % 2 == 0:
            v_h, est_state = est.update(None, est_state, x, hvp_fn=lambda p, v: h @ v)
            hh = b2 * hh + (1 - b2) * v_h
        x = x - lr * (u + wd * x)
        np.testing.assert_allclose(w, x, rtol=1e-13, atol=1e-14)


# ---- bad input ---------------------------------------------------------------

def test_bad_input():
    with pytest.raises(ValueError, match="Synchronization period"):
        C.sam(npopt.sgd(1.0), _adv(0.1), sync_period=0)
    with pytest.raises(TypeError, match="adv_optimizer"):
        C.sam(npopt.sgd(1.0), 3)
    with pytest.raises(ValueError, match="grad_fn"):
        o = C.sam(npopt.sgd(1.0), _adv(0.1), opaque_mode=True)
        o.update(np.ones(2), o.init(np.ones(2)), np.ones(2))
    with pytest.raises(ValueError, match="preconditioning"):
        C.scale_by_muon(preconditioning="cholesky")
    with pytest.raises(ValueError, match="Unknown ns_coeff preset"):
        C.muon(1e-2, ns_coeffs="quintic")
    with pytest.raises(ValueError, match="ns_coeffs must have shape"):
        C.scale_by_muon(ns_coeffs=(1.0, 2.0))
    with pytest.raises(ValueError, match="Not enough coeffs"):
        C.scale_by_muon(ns_coeffs=[(1.0, 2.0, 3.0)] * 6, ns_steps=5)
    with pytest.raises(ValueError, match="rank >= 2"):
        t = C.scale_by_muon()
        t.update({"v": np.ones(3)}, t.init({"v": np.ones(3)}))
    with pytest.raises(ValueError, match="beta"):
        C.muon(1e-2, beta=1.5)
    with pytest.raises(ValueError, match="l2_norm_clip"):
        C.dpsgd(0.1, -1.0, 0.0, seed=0)
    with pytest.raises(ValueError, match="noise_multiplier"):
        C.differentially_private_aggregate(1.0, float("nan"), key=0)
    with pytest.raises(ValueError, match="batch dimension"):
        t = C.differentially_private_aggregate(1.0, 0.0, key=0)
        t.update({"a": np.ones((3, 2)), "b": np.ones((4, 2))}, t.init(None))
    with pytest.raises(ValueError, match="Only one of seed or key"), \
            pytest.warns(DeprecationWarning, match="seed"):
        C.differentially_private_aggregate(1.0, 0.0, key=1, seed=2)
    with pytest.raises(ValueError, match="hvp_fn"):
        t = C.sophia(1e-2)
        p = {"a": np.ones(3)}
        t.update(p, t.init(p), p)
    with pytest.raises(ValueError, match="obj_fn alone"):
        t = C.sophia(1e-2)
        t.update(p, t.init(p), p, obj_fn=lambda q: 0.0)
    with pytest.raises(ValueError, match="params must be provided"):
        t = C.sophia(1e-2)
        t.update(p, t.init(p), None, hvp_fn=lambda q, v: v)
    with pytest.raises(ValueError, match="update_interval"):
        C.sophia(1e-2, update_interval=0)
    with pytest.raises(TypeError, match="rank"):
        C.galore(1e-2, rank=2.0)
    with pytest.raises(ValueError, match="rank"):
        C.galore(1e-2, rank=0)
    with pytest.raises(ValueError, match="All axes must be specified"):
        t = C.galore(1e-2, weight_dimension_numbers=C.GaLoreDimensionNumbers(0, 1))
        t.init({"x": np.ones((2, 3, 4))})


# ---- properties (hypothesis) -----------------------------------------------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@given(m=st.integers(1, 9), n=st.integers(1, 9), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**31 - 1))
def test_newton_schulz_shape_dtype_transpose_and_formula(m, n, dtype, seed):
    x = np.random.default_rng(seed).standard_normal((m, n)).astype(dtype)
    c = np.array((3.4445, -4.775, 2.0315))
    y = orthogonalize_via_newton_schulz(x, c)
    assert y.shape == x.shape and y.dtype == x.dtype
    # the wide orientation is computed either way: transposing commutes, bit for bit
    if m != n:
        np.testing.assert_array_equal(orthogonalize_via_newton_schulz(x.T, c), y.T)
    ref = _ns_oracle(x.astype(np.float64), (3.4445, -4.775, 2.0315), 5)
    tol = 1e-10 if dtype == np.float64 else 2e-4
    assert rel_err(y, ref) <= tol


@given(shapes=st.lists(st.one_of(st.just(()), st.tuples(st.integers(0, 4), st.integers(1, 3))),
                      min_size=1, max_size=4),
       complex_mask=st.lists(st.booleans(), min_size=4, max_size=4),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**31 - 1))
def test_split_real_and_imaginary_round_trip(shapes, complex_mask, dtype, seed):
    # identity inside: every leaf comes back unchanged, complex or real, same dtype
    rng = np.random.default_rng(seed)
    ct = np.result_type(dtype, np.complex64)
    tree = {}
    for i, (s, cm) in enumerate(zip(shapes, complex_mask)):
        x = rng.standard_normal(s).astype(dtype)
        tree[f"l{i}"] = (x + 1j * rng.standard_normal(s)).astype(ct) if cm else x
    tx = C.split_real_and_imaginary(npopt.identity())
    u, state = tx.update(tree, tx.init(tree), tree)
    assert isinstance(state, C.SplitRealAndImaginaryState)
    for k in tree:       # (0-d leaves came back 1-d before)
        assert u[k].dtype == tree[k].dtype and u[k].shape == np.shape(tree[k])
        np.testing.assert_array_equal(u[k], tree[k])


@given(sync=st.integers(2, 4), steps=st.integers(1, 9), seed=st.integers(0, 2**31 - 1))
def test_sam_outer_steps_land_on_the_outer_trajectory(sync, steps, seed):
    # after every outer step the params are the cache + the outer sgd step taken
    # with the gradient at the adversarial point; the counter cycles
    rng = np.random.default_rng(seed)
    d = rng.uniform(0.5, 2.0, 4)
    grad = lambda w: d * w - 1.0    # noqa: E731
    w = rng.standard_normal(4)
    opt = C.sam(npopt.sgd(0.1), _adv(0.05), sync_period=sync)
    state = opt.init(w)
    outer = w.copy()
    for k in range(steps * sync):
        g = grad(w)
        u, state = opt.update(g, state, w)
        w = npopt.apply_updates(w, u)
        assert int(state.steps_since_sync) == (k + 1) % sync
        if (k + 1) % sync == 0:
            outer = outer - 0.1 * g
            np.testing.assert_allclose(w, outer, rtol=1e-13, atol=1e-13)


def test_sam_sync_period_one_keeps_optax_cache_lag():
    # optax 0.2.8 (checked against it): with sync_period=1 the cache is the
    # params of the previous call, so p_{k+1} = p_{k-1} - lr g_k
    opt = C.sam(npopt.sgd(0.1), _adv(0.05), sync_period=1)
    w = np.array([1.0, 2.0])
    state = opt.init(w)
    got = []
    for _ in range(3):
        u, state = opt.update(2 * w - 1, state, w)
        w = npopt.apply_updates(w, u)
        got.append(w)
    np.testing.assert_allclose(got, [[0.9, 1.7], [0.92, 1.76], [0.816, 1.448]], rtol=1e-14)


# ---- CUDA (simulator in CI, a GPU where there is one) --------------------------

def test_normalize_on_cuda_matches_cpu():
    cuda = pytest.importorskip("numba.cuda")
    rng = np.random.default_rng(8)
    for dtype in (np.float32, np.float64):
        g = {"a": rng.standard_normal(50).astype(dtype),
             "b": rng.standard_normal((3, 4)).astype(dtype)}
        tx = C.normalize()
        cpu, _ = tx.update(g, tx.init(g))
        dev, _ = tx.update(tree_map(cuda.to_device, g), tx.init(g))
        for k in g:
            assert is_device_array(dev[k])                          # stayed on the device
            host = dev[k].copy_to_host()
            assert host.dtype == dtype
            assert rel_err(host, cpu[k]) <= (2e-7 if dtype == np.float32 else 1e-15)


def test_host_only_rules_refuse_device_arrays():
    cuda = pytest.importorskip("numba.cuda")
    d = {"w": cuda.to_device(np.ones((3, 4)))}
    for tx in (C.scale_by_muon(), C.scale_by_galore(rank=2), C.sophia(1e-2),
               C.sam(npopt.sgd(0.1), _adv(0.1))):
        with pytest.raises(NotImplementedError, match="host"):
            tx.init(d)
    with pytest.raises(NotImplementedError, match="host"):
        t = C.differentially_private_aggregate(1.0, 0.0, key=0)
        t.update(d, t.init(d))
