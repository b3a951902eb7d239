"""Reference estimates of optax 0.2.8's ``optax.perturbations``
(tests/reference/data/optax/perturbations.npz). Needs jax + optax; x64.

    python tests/reference/make_perturbations_reference.py

npopt draws its noise from NumPy, not from JAX's PRNG, so its estimates
cannot equal optax's draw by draw; they must have the same expectation.
``CASES`` (importable without JAX; tests/test_perturbations.py uses it) maps
a case name to a dict:

* ``fun(xp)``: the function, written for ``xp`` = ``jax.numpy`` here and
  ``numpy`` in the tests; ``x``: the point (float64 unless ``dtype``);
* ``noise`` (``"Gumbel"`` or ``"Normal"``), ``sigma``, ``num_samples``,
  ``use_baseline``: ``make_perturbed_fun``'s arguments;
* ``what``: ``"value"``, ``"grad"`` (``jax.grad``) or ``"jacobian"``
  (``jax.jacobian``), and ``exact(x)``: its expectation in closed form;
* ``atol``: five times a bound on the Monte Carlo standard error of the
  estimate at ``num_samples`` (derived in the case's comment).

The npz holds ``{case}/optax`` (optax's estimate with ``jax.random.key(0)``),
``{case}/exact`` and ``meta/signatures`` (JSON: the parameters of
``make_perturbed_fun`` and of the noises' ``sample`` and ``log_prob``).
The tests check that optax's estimate and npopt's are both within ``atol``
of ``exact``.
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data", "optax", "perturbations.npz")

X4 = np.array([0.3, -0.2, 0.1, 0.0])
N = 20000


def _softmax(v):
    e = np.exp(v - v.max())
    return e / e.sum()


def onehot_argmax(xp):
    return lambda x: (xp.arange(x.shape[0]) == xp.argmax(x)).astype(x.dtype)


def _case(fun, x, noise, sigma, what, exact, atol, num_samples=N, use_baseline=True,
          dtype="float64"):
    return dict(fun=fun, x=x, noise=noise, sigma=sigma, what=what, exact=exact, atol=atol,
                num_samples=num_samples, use_baseline=use_baseline, dtype=dtype)


# Standard errors (n = num_samples): a one-hot value entry has variance <= 1/4;
# a derivative term (f_s - b) g_s with |f_s - b| <= 1 and g_s = (1 - E)/sigma
# (E ~ Exp(1), since exp(-z) is Exp(1) for Gumbel z) has variance
# <= E[(1 - E)^2] / sigma^2 = 1 / sigma^2.
CASES = {
    # the Gumbel-max trick: E onehot(argmax(x + s z)) = softmax(x / s), whose
    # Jacobian is (diag(p) - p p^T) / s
    "argmax_gumbel_value": _case(
        onehot_argmax, X4, "Gumbel", 0.5, "value", lambda x: _softmax(x / 0.5),
        atol=5 * 0.5 / np.sqrt(N)),
    "argmax_gumbel_jacobian": _case(
        onehot_argmax, X4, "Gumbel", 0.5, "jacobian",
        lambda x: (np.diag(_softmax(x / 0.5)) - np.outer(_softmax(x / 0.5),
                                                          _softmax(x / 0.5))) / 0.5,
        atol=5 / (0.5 * np.sqrt(N))),
    "argmax_gumbel_jacobian_no_baseline": _case(
        onehot_argmax, X4, "Gumbel", 0.5, "jacobian",
        lambda x: (np.diag(_softmax(x / 0.5)) - np.outer(_softmax(x / 0.5),
                                                          _softmax(x / 0.5))) / 0.5,
        atol=5 / (0.5 * np.sqrt(N)), use_baseline=False),
    # optax's docstring example: d/dx_i E sum relu(x + s z) at 0 = P(z > 0) = 1 - 1/e;
    # |f_s - b| = sum relu(s z) <= s sum |z|, so the term's sd is about
    # sqrt(E[(sum relu(z))^2 (1 - E)^2]), 2.75 by simulation (2e6 draws): 3 is used
    "relu_sum_gumbel_grad": _case(
        lambda xp: (lambda x: xp.sum(xp.maximum(x, 0.0))), np.zeros(3), "Gumbel", 0.1,
        "grad", lambda x: np.full(3, 1 - np.exp(-1.0)), atol=5 * 3 / np.sqrt(N)),
    # Normal: E ||x + s z||^2 = ||x||^2 + n s^2 and its gradient 2x; the term
    # (f_s - b) z / s = (2 <x, z> + s ||z||^2) z has sd <= 2 ||x|| sqrt(3) + s sqrt(24)
    # (E <x,z>^2 z_i^2 <= 3 ||x||^2, E ||z||^4 z_i^2 = 24 for n = 2; 3.3 by simulation)
    "quadratic_normal_value": _case(
        lambda xp: (lambda x: xp.sum(x ** 2)), np.array([1.0, -0.5]), "Normal", 0.3, "value",
        lambda x: np.sum(x ** 2) + 2 * 0.3 ** 2,
        atol=5 * (2 * 0.3 * np.sqrt(1.25) + 0.3 ** 2 * 2) / np.sqrt(N)),
    "quadratic_normal_grad": _case(
        lambda xp: (lambda x: xp.sum(x ** 2)), np.array([1.0, -0.5]), "Normal", 0.3, "grad",
        lambda x: 2 * x, atol=5 * (2 * np.sqrt(1.25) * np.sqrt(3) + 0.3 * np.sqrt(24))
        / np.sqrt(N)),
    "linear_normal_grad_float32": _case(
        lambda xp: (lambda x: xp.sum(xp.asarray([1.5, -2.0, 0.5], x.dtype) * x)),
        np.array([0.2, 0.4, -1.0]), "Normal", 0.2, "grad",
        lambda x: np.array([1.5, -2.0, 0.5]),
        # (f_s - b) z / s = <c, z> z: sd <= ||c|| sqrt(3)
        atol=5 * np.sqrt(1.5 ** 2 + 4 + 0.25) * np.sqrt(3) / np.sqrt(N), dtype="float32"),
}


def main():
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import optax
    from importlib.metadata import version

    sys.path.insert(0, HERE)
    from make_projections_reference import signatures

    Pt = optax.perturbations
    arrays = {}
    for name, c in CASES.items():
        fn = Pt.make_perturbed_fun(c["fun"](jnp), c["num_samples"], c["sigma"],
                                   getattr(Pt, c["noise"])(), c["use_baseline"])
        x = jnp.asarray(c["x"], c["dtype"])
        key = jax.random.key(0)
        if c["what"] == "value":
            est = fn(key, x)
        elif c["what"] == "grad":
            est = jax.grad(fn, argnums=1)(key, x)
        else:
            est = jax.jacobian(fn, argnums=1)(key, x)
        est = np.asarray(est)
        exact = np.asarray(c["exact"](np.asarray(c["x"])), np.float64)
        err = float(np.max(np.abs(est - exact)))
        print(f"{name:36s} optax {est.dtype}: |est - exact| {err:.3g} (atol {c['atol']:.3g})")
        assert err <= c["atol"], name
        arrays[f"{name}/optax"], arrays[f"{name}/exact"] = est, exact
    sig = signatures(Pt, ["make_perturbed_fun"])
    for cls in ("Gumbel", "Normal"):
        for meth in ("sample", "log_prob"):
            sig[f"{cls}.{meth}"] = signatures(getattr(Pt, cls)(), [meth])[meth]
    arrays["meta/signatures"] = np.array(json.dumps(sig))
    arrays["meta/versions"] = np.array(
        [f"jax {version('jax')}", f"optax {version('optax')}", "jax_enable_x64"])
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
