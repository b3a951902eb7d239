"""Complex params (complex64 / complex128): npopt replays optax 0.2.8.

* The stored optax trajectories of reference/make_complex_reference.py
  (reference/complex_problem.py: 28 cases, the aliases optax supports on
  complex params and complex-aware building blocks), both dtypes, both paths
  (``update`` + ``apply_updates``, and the fused ``step``): params after 1, 2,
  10 and 50 steps, the first updates and every leaf of the final state agree
  to 1e-10 (complex128) / 1e-5 (complex64), relative to each leaf's
  magnitude (``max |got - ref| / max |ref|`` in complex128); the params keep
  their complex dtype, every state leaf has optax's dtype and shape, and the
  state leaves whose imaginary part is exactly 0 in optax (second moments:
  ``nu = b2 nu + (1 - b2) |g|^2`` is complex with zero imaginary part) are
  exactly real in npopt too.
* The rules whose complex results mean nothing (signs, rprop, lion, ...)
  raise TypeError naming "complex".
* Properties: a linear rule (sgd with momentum, ema, trace) on z = x + iy is
  the pair of real runs on x and y; adam on complex params with zero
  imaginary parts is adam on the real parts, imaginary parts staying 0.
"""
import json
import os
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import npopt
from conftest import TOL
from npopt.tree import tree_leaves
from reference import complex_problem as cp

DATA = os.path.join(os.path.dirname(__file__), "reference", "data", "optax", "complex.npz")
CTOL = {"complex64": TOL[np.dtype(np.float32)], "complex128": TOL[np.dtype(np.float64)]}


def crel_err(got, ref):
    """max |got - ref| / max |ref| over a leaf, in complex128 (real leaves too)."""
    got = np.asarray(got).astype(np.complex128)
    ref = np.asarray(ref).astype(np.complex128)
    if ref.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(ref))), 1e-300)
    return float(np.max(np.abs(got - ref))) / scale


_Z = None


def _data():
    global _Z
    if _Z is None:
        z = np.load(DATA)
        _Z = ({k: z[k] for k in z.files if k != "meta"}, json.loads(str(z["meta"])))
    return _Z


def replay(case, dtype, path):
    opt = cp.build(case, npopt)
    params, consts = cp.make_problem(dtype)
    state = opt.init(params)
    snaps, first = {}, None
    for t in range(cp.STEPS):
        g = cp.grads(params, consts, t)
        if path == "update":
            updates, state = opt.update(g, state, params)
            if t == 0:
                first = cp.ravel(updates)
            params = npopt.apply_updates(params, updates)
        else:
            before = cp.ravel(params)
            params, state = opt.step(params, g, state)
            if t == 0:
                first = cp.ravel(params) - before
        if t + 1 in cp.CHECKPOINTS:
            snaps[t + 1] = cp.ravel(params).copy()
    return params, state, snaps, first


SECOND_MOMENTS = ("nu", "nu_max", "sum_of_squares", "v", "v_row", "v_col")


def test_reference_data_matches_the_case_table():
    arrays, meta = _data()
    assert list(meta["cases"]) == list(cp.CASES)
    n_second = 0
    for name, expr in cp.CASES.items():
        assert meta["cases"][name]["expr"] == expr, name
        for dtype in cp.COMPLEX_DTYPES:
            info = meta["cases"][name][dtype]
            # every case descends (the generator checks it too)
            assert info["loss_final"] < info["loss0"], (name, dtype)
            assert arrays[f"{name}/{dtype}/params"].dtype == np.dtype(dtype)
            assert arrays[f"{name}/{dtype}/params"].shape == (len(cp.CHECKPOINTS), 36)
            # optax's second moments are complex with a zero imaginary part
            for s in info["state"]:
                field = re.findall(r"\.(\w+)\[", s["path"])
                if field and field[-1] in SECOND_MOMENTS:
                    assert s["dtype"] == dtype and s["imag_zero"], (name, dtype, s)
                    n_second += 1
    assert n_second >= 2 * 3 * 20, n_second
    assert meta["steps"] == cp.STEPS and meta["checkpoints"] == list(cp.CHECKPOINTS)
    assert os.path.getsize(DATA) < 300_000


@pytest.mark.parametrize("path", ["update", "step"])
@pytest.mark.parametrize("dtype", cp.COMPLEX_DTYPES)
@pytest.mark.parametrize("case", list(cp.CASES))
def test_matches_optax(case, dtype, path):
    arrays, meta = _data()
    info = meta["cases"][case][dtype]
    pre = f"{case}/{dtype}/"
    tol = CTOL[dtype]
    params, state, snaps, first = replay(case, np.dtype(dtype), path)
    for k in cp.KEYS:
        assert np.asarray(params[k]).dtype == np.dtype(dtype), k
        assert np.shape(params[k]) == cp.SHAPES[k], k
    # params at every checkpoint, leaf by leaf
    for row, k in enumerate(cp.CHECKPOINTS):
        ref = arrays[pre + "params"][row]
        for leaf, (a, b) in cp.segments():
            err = crel_err(snaps[k][a:b], ref[a:b])
            assert err <= tol, (k, leaf, err)
    ref = arrays[pre + "updates_1"]
    assert str(ref.dtype) == info["updates_dtype"]
    for leaf, (a, b) in cp.segments():
        err = crel_err(first[a:b], ref[a:b])
        # the fused step's first increment p1 - p0, to the params' rounding
        assert err <= (tol if path == "update" else 1e3 * tol), ("updates_1", leaf, err)
    # the final state: same leaves, order, dtypes, shapes and (to tolerance) values
    leaves = tree_leaves(state)
    spec = info["state"]
    assert len(leaves) == len(spec), [s["path"] for s in spec]
    for i, (leaf, s) in enumerate(zip(leaves, spec)):
        leaf = np.asarray(leaf)
        assert leaf.dtype == np.dtype(s["dtype"]), (s["path"], leaf.dtype, s["dtype"])
        assert leaf.shape == tuple(s["shape"]), (s["path"], leaf.shape, s["shape"])
        want = arrays[pre + f"state_{i}"]
        if leaf.dtype.kind in "biu":
            np.testing.assert_array_equal(leaf, want, err_msg=s["path"])
            continue
        err = crel_err(leaf, want)
        assert err <= 10 * tol, (s["path"], err)
        if s["imag_zero"]:      # nu, nu_max, sum_of_squares, v_row, ...: exactly real
            assert np.all(leaf.imag == 0), (s["path"], np.max(np.abs(leaf.imag)))


# ---- rules without a meaning on complex params ---------------------------

# optax 0.2.8 runs these on complex params, but the result is meaningless
# (signs, sign-based step sizes, real-valued norms of updates ...); its own
# alias_test skips them on complex dtypes. npopt refuses them.
REJECTED = {
    "scale_by_sign": lambda: npopt.scale_by_sign(),
    "sign_sgd": lambda: npopt.sign_sgd(0.1),
    "signum": lambda: npopt.signum(1e-2),
    "rprop": lambda: npopt.rprop(0.1),
    "lion": lambda: npopt.lion(1e-2, weight_decay=1e-4),
    "adadelta": lambda: npopt.adadelta(0.1),
    "adan": lambda: npopt.adan(0.1),
    "sm3": lambda: npopt.sm3(1.0),
    "polyak_sgd": lambda: npopt.polyak_sgd(1.0),
    "noisy_sgd": lambda: npopt.noisy_sgd(1e-3, eta=1e-4, key=0),
}


@pytest.mark.parametrize("dtype", cp.COMPLEX_DTYPES)
@pytest.mark.parametrize("name", list(REJECTED))
def test_meaningless_rules_reject_complex_params(name, dtype):
    params, consts = cp.make_problem(dtype)
    opt = REJECTED[name]()
    with pytest.raises(TypeError, match="complex"):
        state = opt.init(params)
        g = cp.grads(params, consts, 0)
        kw = {"value": cp.loss(params, consts)} if name == "polyak_sgd" else {}
        opt.update(g, state, params, **kw)


# ---- properties ------------------------------------------------------------

LINEAR = {
    "sgd_momentum": lambda h: npopt.sgd(h["lr"], momentum=h["decay"]),
    "sgd_nesterov": lambda h: npopt.sgd(h["lr"], momentum=h["decay"], nesterov=True),
    "ema": lambda h: npopt.chain(npopt.ema(h["decay"], debias=h["debias"]),
                                 npopt.scale_by_learning_rate(h["lr"])),
    "trace_schedule": lambda h: npopt.chain(
        npopt.trace(h["decay"]),
        npopt.scale_by_learning_rate(npopt.cosine_decay_schedule(h["lr"], 5, alpha=0.1))),
}
LINEAR_TOL = {"complex64": 1e-5, "complex128": 1e-12}   # step: fused real runs (FMA) vs update


def _run(opt, params, grads_seq, path):
    state = opt.init(params)
    for g in grads_seq:
        if path == "update":
            u, state = opt.update(g, state, params)
            params = npopt.apply_updates(params, u)
        else:
            params, state = opt.step(params, g, state)
    return params


def _random_tree(rng, shape, dtype):
    return {"a": np.asarray(rng.standard_normal(shape), dtype),
            "s": np.asarray(rng.standard_normal(), dtype)}


@given(rule=st.sampled_from(sorted(LINEAR)), dtype=st.sampled_from(cp.COMPLEX_DTYPES),
       path=st.sampled_from(["update", "step"]),
       shape=st.sampled_from([(1,), (7,), (3, 4), (2, 3, 2)]),
       steps=st.integers(1, 8), seed=st.integers(0, 2**32 - 1),
       lr=st.floats(1e-3, 1.0), decay=st.floats(0.0, 0.99), debias=st.booleans())
def test_linear_rule_on_complex_is_the_pair_of_real_runs(rule, dtype, path, shape, steps, seed,
                                                         lr, decay, debias):
    h = dict(lr=lr, decay=decay, debias=debias)
    rd = cp.real_dtype(dtype)
    rng = np.random.default_rng(seed)
    x, y = _random_tree(rng, shape, rd), _random_tree(rng, shape, rd)
    gx = [_random_tree(rng, shape, rd) for _ in range(steps)]
    gy = [_random_tree(rng, shape, rd) for _ in range(steps)]

    def cplx(re, im):
        return {k: cp._complex(re[k], im[k], dtype) for k in re}

    z = _run(LINEAR[rule](h), cplx(x, y), [cplx(a, b) for a, b in zip(gx, gy)], path)
    rx = _run(LINEAR[rule](h), x, gx, path)
    ry = _run(LINEAR[rule](h), y, gy, path)
    for k in ("a", "s"):
        zk = np.asarray(z[k])
        assert zk.dtype == np.dtype(dtype) and zk.shape == np.shape(x[k])
        for part, ref in ((zk.real, rx[k]), (zk.imag, ry[k])):
            assert crel_err(part, ref) <= LINEAR_TOL[dtype], (k, crel_err(part, ref))


@pytest.mark.parametrize("path", ["update", "step"])
@pytest.mark.parametrize("dtype", cp.COMPLEX_DTYPES)
def test_adam_on_complex_with_zero_imaginary_parts_is_real_adam(dtype, path):
    rd = cp.real_dtype(dtype)
    params, consts = cp.make_problem(dtype)
    zero_im = lambda t: {k: cp._complex(np.asarray(t[k]).real, np.zeros(cp.SHAPES[k]), dtype)  # noqa: E731
                         for k in cp.KEYS}
    params = zero_im(params)
    consts = dict(consts, target=zero_im(consts["target"]), noise=zero_im(consts["noise"]))
    real = {k: np.asarray(params[k].real, rd).copy() for k in cp.KEYS}
    rc = {n: {k: np.asarray(consts[n][k].real, rd).copy() for k in cp.KEYS} for n in ("target", "noise")}
    zopt, ropt = npopt.adam(1e-2), npopt.adam(1e-2)
    zs, rs = zopt.init(params), ropt.init(real)
    for t in range(20):
        g = cp.grads(params, consts, t)
        s = cp.scale(t, dtype)
        gr = {k: np.asarray(consts["d"][k] * (real[k] - rc["target"][k]) + s * rc["noise"][k], rd)
              for k in cp.KEYS}
        for k in cp.KEYS:
            assert np.all(g[k].imag == 0), (t, k)
            if t == 0:       # the same gradient (later the params may differ in the last bit)
                assert np.array_equal(g[k].real, gr[k]), k
        if path == "update":
            u, zs = zopt.update(g, zs, params)
            params = npopt.apply_updates(params, u)
            u, rs = ropt.update(gr, rs, real)
            real = npopt.apply_updates(real, u)
        else:
            params, zs = zopt.step(params, g, zs)
            real, rs = ropt.step(real, gr, rs)
    tol = LINEAR_TOL[dtype]
    for k in cp.KEYS:
        p = np.asarray(params[k])
        assert p.dtype == np.dtype(dtype)
        assert np.all(p.imag == 0), (k, np.max(np.abs(p.imag)))
        assert crel_err(p.real, real[k]) <= tol, (k, crel_err(p.real, real[k]))
    for zl, rl in zip(tree_leaves(zs), tree_leaves(rs)):
        zl, rl = np.asarray(zl), np.asarray(rl)
        if zl.dtype.kind == "c":
            assert zl.dtype == np.dtype(dtype) and np.all(zl.imag == 0)
            assert crel_err(zl.real, rl) <= tol
        else:
            np.testing.assert_array_equal(zl, rl)
