"""Replays stored optax 0.2.8 trajectories (x64, jitted) with npopt.

For every case of tests/reference/cases.py, both dtypes and both paths
(``update`` + ``apply_updates``, and the fused ``step``): the params after
1, 2, 10 and 100 steps, the first updates and every leaf of the final state
(same count, order, dtype) agree with optax to 1e-10 (float64) / 1e-5
(float32), relative to each leaf's magnitude.
"""
import json
import os

import numpy as np
import pytest

import npopt
from conftest import TOL, rel_err
from npopt.tree import tree_leaves
from reference import cases, problem

DATA = os.path.join(os.path.dirname(__file__), "reference", "data", "optax")
# Every case: each alias with defaults, non-default settings and schedules,
# chains of their blocks, and the combinators (clipping, masks,
# inject_hyperparams, MultiSteps, apply_if_finite, zero_nans, named_chain,
# multi_transform).
ALL_CASES = list(cases.CASES)


def _load(case):
    z = np.load(os.path.join(DATA, case + ".npz"))
    return z, json.loads(str(z["meta"]))


def replay(case, dtype, path):
    opt = cases.build(case, npopt)
    params, consts = problem.make_problem(dtype)
    state = opt.init(params)
    nan_steps = cases.nan_steps(case)
    snaps, first = {}, None
    with_value = cases.needs_value(case)
    for t in range(problem.STEPS):
        g = problem.grads(params, consts, t, nan_steps)
        kw = {"value": problem.loss(params, consts)} if with_value else {}
        if path == "update":
            updates, state = opt.update(g, state, params, **kw)
            if t == 0:
                first = problem.ravel(updates)
            params = npopt.apply_updates(params, updates)
        else:
            before = problem.ravel(params)
            params, state = opt.step(params, g, state, **kw)
            if t == 0:
                first = problem.ravel(params) - before
        if t + 1 in problem.CHECKPOINTS:
            snaps[t + 1] = problem.ravel(params).copy()
    return params, state, snaps, first


@pytest.mark.parametrize("path", ["update", "step"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", ALL_CASES)
def test_matches_optax(case, dtype, path):
    z, meta = _load(case)
    tol = TOL[np.dtype(dtype)]
    params, state, snaps, first = replay(case, np.dtype(dtype), path)
    final = problem.ravel(params)
    assert final.dtype == np.dtype(dtype)
    idx = z["sample_idx"]
    # leaf by leaf, relative to each leaf's magnitude (at the stored samples:
    # every element of the small leaves, 512 of 'w'; see reference/storage.py)
    ref = z[f"{dtype}/params_sampled"][-1]
    assert problem.CHECKPOINTS[-1] == problem.STEPS
    for leaf, (a, b) in _segments(meta):
        k = (idx >= a) & (idx < b)
        err = rel_err(final[idx[k]], ref[k])
        assert err <= tol, (leaf, err)
    for k, row in zip(problem.CHECKPOINTS, z[f"{dtype}/params_sampled"]):
        assert rel_err(snaps[k][idx], row) <= tol, (k, rel_err(snaps[k][idx], row))
    if path == "update":
        assert rel_err(first[idx], z[f"{dtype}/updates_1_sampled"]) <= tol
    else:   # the fused step's first increment, p1 - p0, to the params' rounding
        assert rel_err(first[idx], z[f"{dtype}/updates_1_sampled"]) <= 1e3 * tol
    # the final state: same leaves, order, dtypes and (to tolerance) values
    leaves = tree_leaves(state)
    spec = meta[dtype]["state"]
    assert len(leaves) == len(spec), [s["path"] for s in spec]
    for i, (leaf, s) in enumerate(zip(leaves, spec)):
        leaf = np.asarray(leaf)
        assert leaf.dtype == np.dtype(s["dtype"]), (s["path"], leaf.dtype, s["dtype"])
        assert leaf.shape == tuple(s["shape"]), s["path"]
        want = z[f"{dtype}/state_{i}"]
        if f"{dtype}/state_{i}_idx" in z:     # a sampled large leaf
            leaf = leaf.reshape(-1)[z[f"{dtype}/state_{i}_idx"]]
        if leaf.dtype.kind in "biu":
            np.testing.assert_array_equal(leaf, want, err_msg=s["path"])
        else:
            assert rel_err(leaf, want) <= 10 * tol, (s["path"], rel_err(leaf, want))


def _segments(meta):
    out, off = [], 0
    for leaf in meta["params_leaves"]:
        n = int(np.prod(leaf["shape"], dtype=np.int64))
        out.append((leaf["path"], (off, off + n)))
        off += n
    return out


# optax 0.2.8's aliases (catalog §2.3); lbfgs needs value/grad/value_fn and
# has its own trajectories (test_lbfgs.py, reference/data/lbfgs)
OPTAX_ALIASES = (
    "adabelief", "adadelta", "adafactor", "adagrad", "adam", "adamax", "adamaxw", "adamw", "adan",
    "amsgrad", "fromage", "lamb", "lars", "lion", "nadam", "nadamw", "noisy_sgd", "novograd",
    "optimistic_adam", "optimistic_adam_v2", "optimistic_gradient_descent", "polyak_sgd", "radam",
    "rmsprop", "rprop", "sgd", "sign_sgd", "signum", "sm3", "yogi")


@pytest.mark.parametrize("alias", OPTAX_ALIASES)
def test_every_alias_is_exported_and_has_three_reference_cases(alias):
    import re
    assert callable(getattr(npopt, alias))
    n = sum(1 for c in ALL_CASES
            if re.search(r"\box\." + alias + r"\(", cases.CASES[c]["expr"]))
    if alias in ("nadam", "nadamw"):   # partial(adam(w), nesterov=True): covered by adam(w)'s
        assert n >= 0
        return
    # sign_sgd has a single argument: a float and a schedule (its third case,
    # sign_sgd_wd_mask, spells the chain out with a masked weight decay)
    assert n >= (2 if alias == "sign_sgd" else 3), (alias, n)


def test_lbfgs_is_exported_and_has_its_own_trajectories():
    assert callable(npopt.lbfgs)
    lb = os.path.join(os.path.dirname(__file__), "reference", "data", "lbfgs")
    assert len([f for f in os.listdir(lb) if f.endswith(".npz")]) >= 3
