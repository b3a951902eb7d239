"""npopt.perturbations (optax's module): the estimates against their closed-form
expectations (and optax's own estimates against the same), determinism with a
fixed seed, the derivative estimators' consistency, pytrees, bad input.

* Statistics: every case of tests/reference/make_perturbations_reference.py
  (the Gumbel-max trick: E onehot(argmax(x + s z)) = softmax(x / s) and its
  Jacobian; optax's docstring example; Normal noise on quadratics): npopt's
  estimate with seed 0 and optax's stored one (jax.random.key(0)) are both
  within five standard errors of the expectation. The seed is fixed, so
  these tests are deterministic.
* Determinism: the same seed gives the same bits; the value and the
  derivative estimates of one seed share their samples.
"""
import inspect
import json

import numpy as np
import pytest

import npopt
from npopt import perturbations as Pt
from reference.make_perturbations_reference import CASES, OUT, X4, onehot_argmax


@pytest.fixture(scope="module")
def ref():
    with np.load(OUT) as z:
        return {k: z[k] for k in z.files}


def make(case):
    c = CASES[case]
    fn = Pt.make_perturbed_fun(c["fun"](np), c["num_samples"], c["sigma"],
                               getattr(Pt, c["noise"])(), c["use_baseline"])
    return fn, np.asarray(c["x"], c["dtype"])


def estimate(fn, what, key, x):
    return {"value": fn, "grad": fn.grad, "jacobian": fn.jacobian}[what](key, x)


@pytest.mark.parametrize("name", sorted(CASES))
def test_expectation(ref, name):
    c = CASES[name]
    fn, x = make(name)
    est = np.asarray(estimate(fn, c["what"], 0, x))
    exact = ref[f"{name}/exact"]
    assert est.shape == exact.shape
    assert est.dtype == np.dtype(c["dtype"])
    assert np.max(np.abs(est - exact)) <= c["atol"], (est, exact)
    # optax's estimate (another random stream) has the same expectation
    assert np.max(np.abs(ref[f"{name}/optax"] - exact)) <= c["atol"]
    # a second seed: still within the bound (the bound is not tuned to seed 0)
    est1 = np.asarray(estimate(fn, c["what"], 1, x))
    assert np.max(np.abs(est1 - exact)) <= c["atol"]


def test_signatures_are_optax(ref):
    theirs = json.loads(str(ref["meta/signatures"]))
    objs = {"make_perturbed_fun": Pt.make_perturbed_fun,
            "Gumbel.sample": Pt.Gumbel().sample, "Gumbel.log_prob": Pt.Gumbel().log_prob,
            "Normal.sample": Pt.Normal().sample, "Normal.log_prob": Pt.Normal().log_prob}
    assert sorted(theirs) == sorted(objs)
    for name, params in theirs.items():
        mine = [[p.name, p.kind.name,
                 None if p.default is inspect.Parameter.empty else repr(p.default)]
                for p in inspect.signature(objs[name]).parameters.values()]
        norm = [[n, k, d if d is None or " object at " not in d
                 else d.split(" object at ")[0].rsplit(".", 1)[1]] for n, k, d in params]
        mine = [[n, k, d if d is None or " object at " not in d
                 else d.split(" object at ")[0].rsplit(".", 1)[1]] for n, k, d in mine]
        assert mine == norm, name
    assert npopt.perturbations is Pt


# ---------------------------------------------------------------------------
# determinism and consistency
# ---------------------------------------------------------------------------

def argmax_fn(**kw):
    return Pt.make_perturbed_fun(onehot_argmax(np), **{"num_samples": 300, "sigma": 0.5, **kw})


@pytest.mark.parametrize("noise", [Pt.Gumbel(), Pt.Normal()])
def test_same_seed_same_bits(noise):
    fn = argmax_fn(noise=noise)
    for m in ("__call__", "jacobian"):
        a, b = getattr(fn, m)(7, X4), getattr(fn, m)(7, X4)
        assert np.array_equal(a, b)
        c = getattr(fn, m)(np.random.default_rng(7), X4)
        assert np.array_equal(a, c)               # a seed is default_rng(seed)
        assert not np.array_equal(a, getattr(fn, m)(8, X4))
    rng = np.random.default_rng(7)
    first, second = fn(rng, X4), fn(rng, X4)     # a Generator is advanced
    assert not np.array_equal(first, second)
    # a raw JAX key (two uint32 words) seeds a Generator too
    key = np.array([0, 42], np.uint32)
    assert np.array_equal(fn(key, X4), fn(np.random.default_rng(key), X4))


def test_estimates_share_their_samples():
    f = lambda x: np.max(x) + 0.25 * np.sum(np.abs(x))   # noqa: E731
    fn = Pt.make_perturbed_fun(f, num_samples=200, sigma=0.3)
    x = np.array([0.1, 0.4, -0.2])
    v, g = fn.value_and_grad(3, x)
    assert v == fn(3, x) and np.array_equal(g, fn.grad(3, x))
    J = fn.jacobian(3, x)
    assert J.shape == (3,) and np.array_equal(J, g)
    assert np.array_equal(fn.vjp(3, x, np.float64(1.0)), g)
    for k in range(3):
        e = np.eye(3)[k]
        np.testing.assert_allclose(fn.jvp(3, x, e), g[k], rtol=1e-13)
    # a vector-valued fun: the Jacobian's rows are vjps, its columns jvps
    fn = argmax_fn(num_samples=200)
    J = fn.jacobian(5, X4)
    assert J.shape == (4, 4)
    for k in range(4):
        e = np.eye(4)[k]
        np.testing.assert_allclose(fn.vjp(5, X4, e), J[k], rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(fn.jvp(5, X4, e), J[:, k], rtol=1e-13, atol=1e-15)


def test_baseline():
    """With the baseline, a constant fun has a zero gradient estimate (the
    control variate cancels it exactly); without, only on average."""
    fn = Pt.make_perturbed_fun(lambda x: np.float64(2.0), num_samples=100)
    assert np.array_equal(fn.grad(0, np.ones(3)), np.zeros(3))
    fn = Pt.make_perturbed_fun(lambda x: np.float64(2.0), num_samples=100,
                               use_baseline=False)
    g = fn.grad(0, np.ones(3))
    assert np.all(g != 0) and np.all(np.abs(g) < 2 * 5 / (0.1 * np.sqrt(100)))
    # a fun with a large offset: the baseline removes it from the estimate
    # (not in general a reduction: on the one-hot argmax it is not one)
    spread = {}
    for ub in (True, False):
        fn = Pt.make_perturbed_fun(lambda x: 10.0 + np.sum(x), num_samples=200,
                                   use_baseline=ub)
        spread[ub] = np.std([fn.grad(s, np.ones(3)) for s in range(20)], axis=0).mean()
    assert spread[True] < 0.2 * spread[False]


def test_pytrees_and_dtypes():
    x = {"a": np.array([0.5, -1.0], np.float32), "b": (np.float64(0.25),)}

    def f(t):
        return {"s": np.sum(t["a"]) * t["b"][0], "v": np.concatenate([t["a"], t["a"]])}

    fn = Pt.make_perturbed_fun(f, num_samples=50, sigma=0.2, noise=Pt.Normal())
    v = fn(0, x)
    assert set(v) == {"s", "v"} and v["v"].shape == (4,)
    assert v["v"].dtype == np.float64      # the magic box's dtype (float64 leaf) promotes
    J = fn.jacobian(0, x)
    assert J["v"]["a"].shape == (4, 2) and J["v"]["b"][0].shape == (4,)
    assert J["s"]["a"].shape == (2,) and J["s"]["b"][0].shape == ()
    g = fn.vjp(0, x, {"s": 1.0, "v": np.zeros(4)})
    assert g["a"].dtype == np.float32 and g["b"][0].dtype == np.float64
    np.testing.assert_allclose(g["a"], J["s"]["a"], rtol=1e-6)
    t = fn.jvp(0, x, {"a": np.array([1.0, 0.0], np.float32), "b": (0.0,)})
    np.testing.assert_allclose(t["v"], J["v"]["a"][:, 0], rtol=1e-6)
    # float32 only: float32 out
    fn = Pt.make_perturbed_fun(lambda a: a * 2, num_samples=10)
    a = np.ones(3, np.float32)
    assert fn(0, a).dtype == np.float32 and fn.jacobian(0, a).dtype == np.float32


def test_noises():
    rng = np.random.default_rng(0)
    for noise, mean, var in ((Pt.Gumbel(), np.euler_gamma, np.pi ** 2 / 6),
                             (Pt.Normal(), 0.0, 1.0)):
        z = noise.sample(rng, (200000,))
        assert z.dtype == np.float64 and z.shape == (200000,)
        assert abs(z.mean() - mean) < 5 * np.sqrt(var / z.size)
        assert abs(z.var() - var) < 0.05 * var
        z32 = noise.sample(1, (2, 3), np.float32)
        assert z32.dtype == np.float32 and z32.shape == (2, 3)
        assert noise.sample(0).shape == ()
        u = np.linspace(-3, 3, 13)
        h = 1e-6
        fd = (noise.log_prob(u + h) - noise.log_prob(u - h)) / (2 * h)
        np.testing.assert_allclose(noise.grad_log_prob(u), fd, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(Pt.Gumbel().log_prob(np.array([0.0, 1.0])),
                               [-1.0, -1.0 - np.exp(-1.0)], rtol=1e-15)
    np.testing.assert_allclose(Pt.Normal().log_prob(np.array([2.0])), [-2.0])


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------

def test_bad_arguments():
    f = lambda x: np.sum(x)   # noqa: E731
    for n in (0, -3, 1.5, True, "10"):
        with pytest.raises(ValueError, match="num_samples: expected an int >= 1"):
            Pt.make_perturbed_fun(f, num_samples=n)
    for s in (0.0, -1.0, np.nan, np.inf, "0.1"):
        with pytest.raises(ValueError, match="sigma: expected a finite number > 0"):
            Pt.make_perturbed_fun(f, sigma=s)
    with pytest.raises(TypeError, match="fun: expected a callable"):
        Pt.make_perturbed_fun(3.0)
    with pytest.raises(TypeError, match="noise: expected a distribution with sample and "
                                        "log_prob"):
        Pt.make_perturbed_fun(f, noise="gumbel")
    with pytest.raises(TypeError, match="use_baseline: expected True or False"):
        Pt.make_perturbed_fun(f, use_baseline=1)


def test_bad_calls():
    fn = Pt.make_perturbed_fun(lambda x: np.sum(x), num_samples=5)
    for key in (None, 0.5, True, "seed", -1):
        with pytest.raises(TypeError, match="key: expected a numpy.random.Generator"):
            fn(key, np.ones(2))
    with pytest.raises(TypeError, match="x: expected floating-point leaves"):
        fn(0, np.arange(3))
    with pytest.raises(TypeError, match="x: expected floating-point leaves"):
        fn(0, [1, 2])
    vec = Pt.make_perturbed_fun(lambda x: x * 2, num_samples=5)
    with pytest.raises(ValueError, match="fun: grad and value_and_grad need a scalar-valued"):
        vec.grad(0, np.ones(2))
    with pytest.raises(ValueError, match="cotangent: expected the shapes of fun's output"):
        vec.vjp(0, np.ones(2), np.ones(3))
    with pytest.raises(ValueError, match="tangent: expected the shapes of x's leaves"):
        vec.jvp(0, np.ones(2), np.ones(3))
    with pytest.raises(ValueError, match="tangent"):
        vec.jvp(0, np.ones(2), {"a": np.ones(2)})
    with pytest.raises(TypeError, match="dtype: expected float32 or float64"):
        Pt.Normal().sample(0, (2,), np.int32)

    class NoGrad:                          # optax's interface only: values work
        sample = Pt.Normal().sample

        def log_prob(self, z):
            return -0.5 * z * z

    fn = Pt.make_perturbed_fun(lambda x: np.sum(x), num_samples=5, noise=NoGrad())
    assert np.isfinite(fn(0, np.ones(2)))
    with pytest.raises(TypeError, match="noise: the gradient estimates need "
                                        "noise.grad_log_prob"):
        fn.grad(0, np.ones(2))
    shapes = iter([(), (2,)] * 10)
    odd = Pt.make_perturbed_fun(lambda x: np.zeros(next(shapes)), num_samples=4)
    with pytest.raises(ValueError, match="fun: expected outputs of the same shapes|fun's output"):
        odd(0, np.ones(2))
