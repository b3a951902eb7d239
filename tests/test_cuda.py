"""CUDA kernels against the CPU kernels.

Runs on numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1, set by conftest.py
unless the environment says otherwise) and, unchanged, on a real GPU with
NUMBA_ENABLE_CUDASIM=0. The simulator runs kernels as Python and does not
model FMA contraction, so agreement is to a few ulps, not bitwise.
"""
import numpy as np
import pytest

import npopt
from conftest import rel_err
from npopt._target import is_device_array
from npopt._target import is_device_array
from npopt.tree import tree_leaves, tree_map

cuda = pytest.importorskip("numba.cuda", reason="numba-cuda (the 'cuda' extra) not installed")

MASK = {"a": False, "b": True}
RULES = {
    "sgd": lambda: npopt.sgd(0.1),
    "sgd_nesterov": lambda: npopt.sgd(0.1, momentum=0.9, nesterov=True),
    "adam": lambda: npopt.adam(0.05),
    "nadam_sched": lambda: npopt.adam(lambda c: 0.05 / (1.0 + c), nesterov=True),
    "adamw_mask": lambda: npopt.adamw(0.05, weight_decay=0.1, mask=MASK),
    "rmsprop": lambda: npopt.rmsprop(0.05, eps_in_sqrt=False, bias_correction=True),
    "rmsprop_centered": lambda: npopt.rmsprop(0.05, centered=True, momentum=0.5),
    "adagrad": lambda: npopt.adagrad(0.1),
    "lamb": lambda: npopt.lamb(0.05, weight_decay=0.01),
}
# a few ulps after a few steps (contraction differs between the targets)
ULPS = {np.dtype(np.float32): 2e-6, np.dtype(np.float64): 1e-14}


def _problem(dtype):
    rng = np.random.default_rng(1)
    params = {"a": rng.standard_normal(7).astype(dtype),
              "b": rng.standard_normal((3, 4)).astype(dtype)}
    grads = [tree_map(lambda p: rng.standard_normal(p.shape).astype(dtype), params)
             for _ in range(4)]
    return params, grads


def _to_device(tree):
    return tree_map(cuda.to_device, tree)


def _to_host(tree):
    return tree_map(lambda x: x.copy_to_host() if hasattr(x, "copy_to_host") else x, tree)


@pytest.mark.parametrize("path", ["update", "step"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rule", sorted(RULES))
def test_cuda_matches_cpu(rule, dtype, path):
    params, grads = _problem(dtype)
    opt = RULES[rule]()
    cpu_p, cpu_s = params, opt.init(params)
    dev_p = _to_device(params)
    dev_s = opt.init(dev_p)
    for g in grads:
        if path == "update":
            u, cpu_s = opt.update(g, cpu_s, cpu_p)
            cpu_p = npopt.apply_updates(cpu_p, u)
            du, dev_s = opt.update(_to_device(g), dev_s, dev_p)
            dev_p = npopt.apply_updates(dev_p, du)
        else:
            cpu_p, cpu_s = opt.step(cpu_p, g, cpu_s)
            dev_p, dev_s = opt.step(dev_p, _to_device(g), dev_s)
    # the state stayed on the device
    for leaf in tree_leaves(dev_s):
        if np.ndim(leaf) > 0:
            assert is_device_array(leaf), type(leaf)
    for a, b in zip(tree_leaves(_to_host(dev_p)), tree_leaves(cpu_p)):
        assert a.dtype == b.dtype
        assert rel_err(a, b) <= ULPS[np.dtype(dtype)], rel_err(a, b)
    for a, b in zip(tree_leaves(_to_host(dev_s)), tree_leaves(cpu_s)):
        assert rel_err(np.asarray(a), np.asarray(b)) <= 10 * ULPS[np.dtype(dtype)]


def test_mixed_host_and_device_leaves_are_refused():
    params = {"a": np.zeros(3, np.float32), "b": cuda.to_device(np.zeros(3, np.float32))}
    with pytest.raises(TypeError, match="params: expected all leaves on the host"):
        npopt.adam(0.1).init(params)


def test_device_step_is_zero_copy_in_steady_state():
    """After the first step, a multi-leaf device tree is updated in place: the
    params and moments handed back are views of the same device buffers."""
    from npopt._target import device_ptr
    params, grads = _problem(np.float32)
    opt = npopt.adam(0.05)
    dev_p = _to_device(params)
    dev_s = opt.init(dev_p)
    dev_p, dev_s = opt.step(dev_p, _to_device(grads[0]), dev_s)   # params now views
    ptrs = [device_ptr(x) for x in tree_leaves((dev_p, dev_s[0].mu, dev_s[0].nu))]
    for g in grads[1:]:
        dev_p, dev_s = opt.step(dev_p, _to_device(g), dev_s)
        assert [device_ptr(x) for x in tree_leaves((dev_p, dev_s[0].mu, dev_s[0].nu))] == ptrs


def test_fused_lamb_step_is_used_and_matches_update():
    """lamb's chain has a fused three-pass step; it agrees with update +
    apply_updates to a few ulps, on the host and on the (simulated) device."""
    params, grads = _problem(np.float64)
    opt = npopt.lamb(0.05, weight_decay=0.01, mask=MASK)
    assert opt.fused_step is not None
    p1, s1 = params, opt.init(params)
    p2, s2 = tree_map(np.copy, params), opt.init(params)
    dev_p = _to_device(params)
    dev_s = opt.init(dev_p)
    for g in grads:
        u, s1 = opt.update(g, s1, p1)
        p1 = npopt.apply_updates(p1, u)
        p2, s2 = opt.step(p2, g, s2)
        dev_p, dev_s = opt.step(dev_p, _to_device(g), dev_s)
    for a, b, c in zip(tree_leaves(p1), tree_leaves(p2), tree_leaves(_to_host(dev_p))):
        assert rel_err(b, a) <= 1e-14 and rel_err(c, a) <= 1e-14


@pytest.mark.parametrize("make", [
    lambda: npopt.rmsprop(0.05, momentum=0.9, nesterov=True),
    lambda: npopt.chain(npopt.scale_by_adam(), npopt.scale(-0.01), npopt.trace(0.9)),
])
def test_fused_momentum_after_rate_matches_update(make):
    """chain(preconditioner, rate, trace) has a three-pass fused step with
    optax's roundings: equal to update + apply_updates to a few ulps, on the
    host and on the (simulated) device."""
    params, grads = _problem(np.float64)
    opt = make()
    assert opt.fused_step is not None
    p1, s1 = params, opt.init(params)
    p2, s2 = tree_map(np.copy, params), opt.init(params)
    dev_p = _to_device(params)
    dev_s = opt.init(dev_p)
    for g in grads:
        u, s1 = opt.update(g, s1, p1)
        p1 = npopt.apply_updates(p1, u)
        p2, s2 = opt.step(p2, g, s2)
        dev_p, dev_s = opt.step(dev_p, _to_device(g), dev_s)
    for a, b, c in zip(tree_leaves(p1), tree_leaves(p2), tree_leaves(_to_host(dev_p))):
        assert rel_err(b, a) <= 1e-14 and rel_err(c, a) <= 1e-14
    for a, b in zip(tree_leaves(s1), tree_leaves(s2)):
        assert rel_err(np.asarray(b), np.asarray(a)) <= 1e-14
