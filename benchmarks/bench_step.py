#!/usr/bin/env python
"""One optimizer step of npopt against its peers, next to the machine's bandwidth.

Run from the repository root::

    python benchmarks/bench_step.py                 # full run (a few minutes)
    python benchmarks/bench_step.py --quick         # smoke test, N <= 1e6, < 1 minute
    python benchmarks/bench_step.py --rules adam --out /tmp/adam.json

In one run it measures

1. memory bandwidth with numba kernels (Adam's access pattern: read p, g,
   mu, nu and write p, mu, nu; STREAM copy and triad; a copy with streaming
   stores), serial and parallel, and the same traffic moved by other code
   (glibc memcpy, torch's copy, triad and fused Adam), at N = 1e7 in
   float32 and float64;
2. the time of one optimizer step on a flat vector of N elements for every
   rule in RULES and every implementation in IMPLS (npopt's fused ``step``,
   npopt's ``update`` + ``apply_updates``, optax under ``jax.jit`` with and
   without buffer donation, ``torch.optim`` foreach and fused on the CPU,
   and NumPy in-place ufuncs), as the median over repeats of the mean time
   per step within a sample, after a warm-up that excludes compilation;
3. the same for Adam in float32 on parameter trees (TREES: 30 to 235k
   parameters in 4 to 6 leaves);
4. a load table: npopt.step, npopt.serial (parallel loops off) and
   torch.fused alone, beside a busy loop on one core, and beside a
   2-thread job (LOADS), each in its own process;
5. ``import npopt`` time and the first-call compile time of ``adam``'s step,
   each in a fresh interpreter, with a cold and a warm numba cache.

The optax rows run under ``--jax-python`` when jax lives in another
environment.

It prints a table and saves everything as JSON (see benchmarks/README.md).
To add a rule, add an entry to RULES (and a NumPy reference to NUMPY_STEPS
if you want that column); to add an implementation, add a maker to IMPLS.
"""
import argparse
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
LR = 1e-3
DTYPES = {"float32": np.float32, "float64": np.float64}


class Skip(Exception):
    """An implementation that cannot run this case (not installed, unsupported)."""


# --------------------------------------------------------------------------
# Optional peers, imported once.

_CACHE = {}


def _import_jax():
    if "jax" in _CACHE:
        return _CACHE["jax"]
    try:
        import jax
        jax.config.update("jax_enable_x64", True)  # float64 really is float64
        import jax.numpy as jnp
        import optax
        _CACHE["jax"] = (jax, jnp, optax)
    except Exception as e:  # pragma: no cover - depends on the installation
        _CACHE["jax"] = e
    return _CACHE["jax"]


def _import_torch():
    if "torch" not in _CACHE:
        try:
            import torch
            _CACHE["torch"] = torch
        except Exception as e:  # pragma: no cover
            _CACHE["torch"] = e
    return _CACHE["torch"]


# --------------------------------------------------------------------------
# Bandwidth kernels (numba), same flags as npopt's kernels.

def _bandwidth_kernels():
    from numba import njit, prange
    opts = dict(nogil=True, error_model="numpy", fastmath={"contract"})

    def adam_pattern(p, g, mu, nu):
        # read 4 arrays, write 3: the cheapest loop with Adam's memory traffic
        for i in prange(p.shape[0]):
            gi = g[i]
            m = 0.9 * mu[i] + 0.1 * gi
            v = 0.999 * nu[i] + 0.001 * gi
            mu[i] = m
            nu[i] = v
            p[i] = p[i] - 1e-3 * (m + v)

    def copy(a, b):
        for i in prange(a.shape[0]):
            b[i] = a[i]

    def triad(a, b, c, s):
        for i in prange(a.shape[0]):
            a[i] = b[i] + s * c[i]

    nt_store = _nontemporal_store()

    def copy_nt(a, b):
        # stores that bypass the cache: no read-for-ownership of b's lines
        for i in prange(a.shape[0]):
            nt_store(b, i, a[i])

    out = {}
    for name, fn, arrays, reads, writes in [("adam_pattern", adam_pattern, 4, 4, 3),
                                            ("copy", copy, 2, 1, 1),
                                            ("copy_nt", copy_nt, 2, 1, 1),
                                            ("triad", triad, 3, 2, 1)]:
        out[name] = dict(serial=njit(**opts)(fn), parallel=njit(parallel=True, **opts)(fn),
                         arrays=arrays, reads=reads, writes=writes)
    return out


def _nontemporal_store():
    """``nt_store(a, i, v)``: ``a[i] = v`` with LLVM's ``!nontemporal``
    metadata (a streaming store), for the bandwidth table only: numba has no
    such store, and LLVM does not vectorise it in numba's loops (a scalar
    ``movnti`` per element), so it is measured, not used in npopt."""
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic

    @intrinsic
    def nt_store(typingctx, arr, idx, val):
        def codegen(context, builder, signature, args):
            a, i, v = args
            aty = signature.args[0]
            ary = context.make_array(aty)(context, builder, a)
            ptr = cgutils.get_item_pointer(context, builder, aty, ary, [i])
            st = builder.store(context.cast(builder, v, signature.args[2], aty.dtype), ptr)
            st.set_metadata("nontemporal",
                            builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)]))
            return context.get_dummy_value()
        return types.void(arr, idx, val), codegen
    return nt_store


def _peer_bandwidth(arrs, dt, n, repeats):
    """The same traffic moved by other code than numba's loops: glibc's
    memcpy (``np.copyto``: streaming stores above a size), torch's copy and
    ``add(alpha=)`` triad and its fused Adam step, on all cores."""
    def best(fn):
        fn()
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return min(ts), ts
    cases = [("memcpy", "serial", lambda: np.copyto(arrs[1], arrs[0]), 1, 1)]
    torch = _import_torch()
    if not isinstance(torch, Exception):
        torch.set_num_threads(_cpus())
        a, b, c = (torch.from_numpy(x) for x in arrs[:3])
        cases += [("torch_copy", "parallel", lambda: b.copy_(a), 1, 1),
                  ("torch_triad", "parallel", lambda: torch.add(b, c, alpha=0.5, out=a), 2, 1)]
        p = torch.from_numpy(arrs[3].copy())
        p.grad = torch.from_numpy(arrs[1].copy())
        opt = torch.optim.Adam([p], lr=1e-3, fused=True)
        cases.append(("torch_adam", "parallel", opt.step, 4, 3))
    rows = []
    for kname, mode, fn, reads, writes in cases:
        t, ts = best(fn)
        nbytes = (reads + writes) * np.dtype(dt).itemsize * n
        rows.append(dict(kernel=kname, mode=mode, dtype=np.dtype(dt).name, n=n, time_s=t,
                         gb_s=nbytes / t / 1e9, median_gb_s=nbytes / statistics.median(ts) / 1e9,
                         bytes=nbytes, samples_s=ts))
    return rows


def _cpus():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def measure_bandwidth(n, repeats):
    kernels = _bandwidth_kernels()
    rows = []
    for dname, dt in DTYPES.items():
        rng = np.random.default_rng(0)
        arrs = [rng.random(n).astype(dt) for _ in range(4)]
        for kname, k in kernels.items():
            args = arrs[:k["arrays"]]
            if kname == "triad":
                args = args + [dt(0.5)]
            for mode in ("serial", "parallel"):
                fn = k[mode]
                fn(*args)  # compile
                fn(*args)
                ts = []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    fn(*args)
                    ts.append(time.perf_counter() - t0)
                # STREAM reports the best rate: a sample that lost a core to
                # another process says nothing about the memory system.
                t = min(ts)
                nbytes = (k["reads"] + k["writes"]) * np.dtype(dt).itemsize * n
                rows.append(dict(kernel=kname, mode=mode, dtype=dname, n=n, time_s=t,
                                 gb_s=nbytes / t / 1e9,
                                 median_gb_s=nbytes / statistics.median(ts) / 1e9,
                                 bytes=nbytes, samples_s=ts))
        rows += _peer_bandwidth(arrs, dt, n, repeats)
        del arrs
        gc.collect()
    return rows


# --------------------------------------------------------------------------
# NumPy references: in-place ufuncs with one scratch buffer.

def numpy_adam(p, g, dt, b1=0.9, b2=0.999, eps=1e-8):
    mu = np.zeros_like(p)
    nu = np.zeros_like(p)
    tmp = np.empty_like(p)
    count = [0]
    c1, c2 = dt(1 - b1), dt(1 - b2)
    b1_, b2_, eps_ = dt(b1), dt(b2), dt(eps)

    def step():
        count[0] += 1
        t = count[0]
        np.multiply(mu, b1_, out=mu)
        np.multiply(g, c1, out=tmp)
        np.add(mu, tmp, out=mu)
        np.multiply(nu, b2_, out=nu)
        np.multiply(g, g, out=tmp)
        np.multiply(tmp, c2, out=tmp)
        np.add(nu, tmp, out=nu)
        np.multiply(nu, dt(1 / (1 - b2 ** t)), out=tmp)
        np.sqrt(tmp, out=tmp)
        np.add(tmp, eps_, out=tmp)
        np.divide(mu, tmp, out=tmp)
        np.multiply(tmp, dt(-LR / (1 - b1 ** t)), out=tmp)
        np.add(p, tmp, out=p)
    return step


def numpy_sgd(p, g, dt, momentum=0.9):
    t = np.zeros_like(p)
    tmp = np.empty_like(p)
    m, nlr = dt(momentum), dt(-LR)

    def step():
        np.multiply(t, m, out=t)
        np.add(t, g, out=t)
        np.multiply(t, nlr, out=tmp)
        np.add(p, tmp, out=p)
    return step


def numpy_rmsprop(p, g, dt, decay=0.9, eps=1e-8):
    nu = np.zeros_like(p)
    tmp = np.empty_like(p)
    d, c, eps_, nlr = dt(decay), dt(1 - decay), dt(eps), dt(-LR)

    def step():
        np.multiply(nu, d, out=nu)
        np.multiply(g, g, out=tmp)
        np.multiply(tmp, c, out=tmp)
        np.add(nu, tmp, out=nu)
        np.add(nu, eps_, out=tmp)
        np.sqrt(tmp, out=tmp)
        np.divide(g, tmp, out=tmp)
        np.multiply(tmp, nlr, out=tmp)
        np.add(p, tmp, out=p)
    return step


def numpy_lion(p, g, dt, b1=0.9, b2=0.99, wd=1e-3):
    mu = np.zeros_like(p)
    tmp = np.empty_like(p)
    tmp2 = np.empty_like(p)
    c1, b1_, c2, b2_, wd_, nlr = dt(1 - b1), dt(b1), dt(1 - b2), dt(b2), dt(wd), dt(-LR)

    def step():
        np.multiply(g, c1, out=tmp)
        np.multiply(mu, b1_, out=tmp2)
        np.add(tmp, tmp2, out=tmp)
        np.sign(tmp, out=tmp)
        np.multiply(p, wd_, out=tmp2)
        np.add(tmp, tmp2, out=tmp)
        np.multiply(tmp, nlr, out=tmp)
        np.add(p, tmp, out=p)
        np.multiply(mu, b2_, out=mu)
        np.multiply(g, c2, out=tmp)
        np.add(mu, tmp, out=mu)
    return step


def numpy_adagrad(p, g, dt, init=0.1, eps=1e-7):
    s = np.full_like(p, init)
    tmp = np.empty_like(p)
    eps_, nlr = dt(eps), dt(-LR)

    def step():
        np.multiply(g, g, out=tmp)
        np.add(s, tmp, out=s)
        np.add(s, eps_, out=tmp)
        np.sqrt(tmp, out=tmp)
        np.divide(g, tmp, out=tmp)
        np.multiply(tmp, nlr, out=tmp)
        np.add(p, tmp, out=p)
    return step


# --------------------------------------------------------------------------
# The rules: how each library spells the same optimizer.

@dataclass
class Rule:
    name: str
    arrays: int                      # arrays moved per step (reads + writes) for GB/s
    npopt: Callable                  # () -> npopt GradientTransformation
    optax: Optional[Callable] = None  # (optax) -> optax GradientTransformation
    torch: Optional[Callable] = None  # (torch, params, **variant) -> torch.optim.Optimizer
    torch_variants: tuple = ("foreach", "fused")
    numpy: Optional[Callable] = None  # (p, g, dtype) -> step()
    note: str = ""
    matrix: bool = False             # params as an (N/1000, 1000) matrix (adafactor factors it)


def _npopt():
    import npopt
    return npopt


RULES = {
    "adam": Rule(
        "adam", 7,
        npopt=lambda: _npopt().adam(LR),
        optax=lambda optax: optax.adam(LR),
        torch=lambda torch, ps, **kw: torch.optim.Adam(ps, lr=LR, **kw),
        numpy=numpy_adam,
        note="read p, g, mu, nu; write p, mu, nu"),
    "sgd": Rule(
        "sgd", 5,
        npopt=lambda: _npopt().sgd(LR, momentum=0.9),
        optax=lambda optax: optax.sgd(LR, momentum=0.9),
        torch=lambda torch, ps, **kw: torch.optim.SGD(ps, lr=LR, momentum=0.9, **kw),
        numpy=numpy_sgd,
        note="momentum 0.9; read p, g, t; write p, t"),
    "rmsprop": Rule(
        "rmsprop", 5,
        npopt=lambda: _npopt().rmsprop(LR),
        optax=lambda optax: optax.rmsprop(LR),
        # torch puts eps outside the sqrt; same traffic and nearly the same flops
        torch=lambda torch, ps, **kw: torch.optim.RMSprop(ps, lr=LR, alpha=0.9, eps=1e-8, **kw),
        numpy=numpy_rmsprop,
        note="decay 0.9; read p, g, nu; write p, nu"),
    "adagrad": Rule(
        "adagrad", 5,
        npopt=lambda: _npopt().adagrad(LR),
        optax=lambda optax: optax.adagrad(LR),
        torch=lambda torch, ps, **kw: torch.optim.Adagrad(
            ps, lr=LR, initial_accumulator_value=0.1, eps=1e-7, **kw),
        numpy=numpy_adagrad,
        note="read p, g, s; write p, s"),
    "lamb": Rule(
        "lamb", 9,
        npopt=lambda: _npopt().lamb(LR),
        optax=lambda optax: optax.lamb(LR),
        note="adam's traffic + a norm pass over p and u (read p, g, mu, nu, p, u; write p, mu, nu)"),
    "lion": Rule(
        "lion", 5,
        npopt=lambda: _npopt().lion(LR),
        optax=lambda optax: optax.lion(LR),
        numpy=numpy_lion,
        note="weight decay 1e-3; read p, g, mu; write p, mu"),
    "adafactor": Rule(
        "adafactor", 4,
        npopt=lambda: _npopt().adafactor(LR),
        optax=lambda optax: optax.adafactor(LR),
        # torch's Adafactor (2.5+) follows the paper's schedule with other
        # defaults: same traffic and work, not the same numbers
        torch=lambda torch, ps, **kw: torch.optim.Adafactor(ps, lr=LR, **kw),
        torch_variants=("foreach",),
        matrix=True,
        note="(N/1000, 1000) matrix, factored second moments: minimum traffic read p, g; "
             "write p (+ the update pass); row/column moments are O(sqrt N)"),
}
DEFAULT_RULES = ("adam", "sgd", "rmsprop", "lamb", "lion", "adafactor")


# --------------------------------------------------------------------------
# Implementations: make(rule, case, dtype_name) -> step() that runs one
# optimizer step and returns once its results are ready. A case is a size N
# (one flat vector) or the name of a tree in TREES (a dict of leaves).

# Parameter trees (leaf shapes), stepped with Adam in float32: the fixed
# cost per leaf and per call, next to the flat vectors' bandwidth figures.
TREES = {
    "vec1e3": None,                                            # a bare (1000,) array
    "linear30": {"w1": (4, 4), "b1": (4,), "w2": (4, 2), "b2": (2,)},
    "mlp1k": {"w1": (20, 32), "b1": (32,), "w2": (32, 16), "b2": (16,),
              "w3": (16, 8), "b3": (8,)},
    "mnist235k": {"w1": (784, 256), "b1": (256,), "w2": (256, 128), "b2": (128,),
                  "w3": (128, 10), "b3": (10,)},
}
TREE_RULE, TREE_DTYPE = "adam", "float32"


def tree_size(name):
    shapes = TREES[name]
    if shapes is None:
        return 1000
    return sum(math.prod(s) for s in shapes.values())


def _data(case, dt, matrix=False):
    rng = np.random.default_rng(1)
    if isinstance(case, str):
        shapes = TREES[case]
        if shapes is None:
            return _data(1000, dt)
        p = {k: rng.standard_normal(s).astype(dt) for k, s in shapes.items()}
        g = {k: (rng.standard_normal(s) * 0.1).astype(dt) for k, s in shapes.items()}
        return p, g
    n = case
    p = rng.standard_normal(n).astype(dt)
    g = (rng.standard_normal(n) * 0.1).astype(dt)
    if matrix:
        p, g = p.reshape(-1, 1000), g.reshape(-1, 1000)
    return p, g


def _leaves(tree):
    return list(tree.values()) if isinstance(tree, dict) else [tree]


def make_npopt_step(rule, n, dname):
    dt = DTYPES[dname]
    opt = rule.npopt()
    p, g = _data(n, dt, rule.matrix)
    box = [p, opt.init(p)]

    def step():
        box[0], box[1] = opt.step(box[0], g, box[1])
    return step


def make_npopt_serial(rule, n, dname):
    """npopt.step with the parallel loops switched off (serial kernels only)."""
    from npopt.kernels import _jit
    _jit.PARALLEL_THRESHOLD = 1 << 62
    return make_npopt_step(rule, n, dname)


def make_npopt_update(rule, n, dname):
    npopt = _npopt()
    dt = DTYPES[dname]
    opt = rule.npopt()
    p, g = _data(n, dt, rule.matrix)
    box = [p, opt.init(p)]

    def step():
        u, box[1] = opt.update(g, box[1], box[0])
        box[0] = npopt.apply_updates(box[0], u)
    return step


def _make_optax(donate):
    def make(rule, n, dname):
        mods = _import_jax()
        if isinstance(mods, Exception):
            raise Skip(f"jax/optax not importable: {mods}")
        if rule.optax is None:
            raise Skip("no optax spelling")
        jax, jnp, optax = mods
        dt = DTYPES[dname]
        opt = rule.optax(optax)

        def train(params, state, grads):
            updates, state = opt.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        f = jax.jit(train, donate_argnums=(0, 1) if donate else ())
        p, g = _data(n, dt, rule.matrix)
        params, grads = jax.tree_util.tree_map(jnp.asarray, (p, g))
        box = [params, opt.init(params)]

        def step():
            box[0], box[1] = f(box[0], box[1], grads)
            jax.block_until_ready(box)
        step()
        leaf = jax.tree_util.tree_leaves(box[0])[0]
        if leaf.dtype != np.dtype(dt):
            raise Skip(f"optax returned {leaf.dtype} params for {dname}")
        return step
    return make


def _make_torch(variant):
    def make(rule, n, dname):
        torch = _import_torch()
        if isinstance(torch, Exception):
            raise Skip(f"torch not importable: {torch}")
        if rule.torch is None or variant not in rule.torch_variants:
            raise Skip(f"no torch {variant} variant")
        dt = DTYPES[dname]
        p, g = _data(n, dt, rule.matrix)
        params = []
        for pl, gl in zip(_leaves(p), _leaves(g)):
            param = torch.from_numpy(pl).requires_grad_(True)
            param.grad = torch.from_numpy(gl)
            params.append(param)
        kw = {"foreach": True} if variant == "foreach" else {"fused": True}
        try:
            opt = rule.torch(torch, params, **kw)
            opt.step()
        except Exception as e:
            raise Skip(f"torch {variant}: {type(e).__name__}: {str(e).splitlines()[0][:100]}")
        return opt.step
    return make


def make_numpy(rule, n, dname):
    if rule.numpy is None:
        raise Skip("no NumPy reference")
    dt = DTYPES[dname]
    p, g = _data(n, dt, rule.matrix)
    steps = [rule.numpy(pl, gl, dt) for pl, gl in zip(_leaves(p), _leaves(g))]
    if len(steps) == 1:
        return steps[0]

    def step():
        for s in steps:
            s()
    return step


# name -> maker; the first one is the baseline of the ratio column.
IMPLS = {
    "npopt.step": make_npopt_step,
    "npopt.update": make_npopt_update,
    "optax.jit": _make_optax(donate=False),
    "optax.jit+donate": _make_optax(donate=True),
    "torch.foreach": _make_torch("foreach"),
    "torch.fused": _make_torch("fused"),
    "numpy": make_numpy,
    "npopt.serial": make_npopt_serial,
}
DEFAULT_IMPLS = tuple(i for i in IMPLS if i != "npopt.serial")
JAX_IMPLS = ("optax.jit", "optax.jit+donate")   # run by --jax-python when given
BASELINE = "npopt.step"


def time_step(step, repeats, min_sample_s):
    """Median over `repeats` samples of the mean time per call in a sample.

    Warm-up (compilation, first-touch page faults) is excluded; the number of
    calls per sample is chosen so a sample lasts at least min_sample_s.
    """
    for _ in range(2):
        step()
    t0 = time.perf_counter()
    step()
    one = time.perf_counter() - t0
    # a second calibration on a batch, for tiny steps
    k = max(1, min(1000, int(0.002 / max(one, 1e-9))))
    t0 = time.perf_counter()
    for _ in range(k):
        step()
    one = (time.perf_counter() - t0) / k
    number = max(1, int(math.ceil(min_sample_s / max(one, 1e-9))))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            step()
        samples.append((time.perf_counter() - t0) / number)
    return statistics.median(samples), number, samples


# --------------------------------------------------------------------------
# Start-up, each in a fresh interpreter.

_IMPORT_SNIPPET = r"""
import json, time
t0 = time.perf_counter()
import npopt
t1 = time.perf_counter()
import sys
print(json.dumps({"import_npopt_s": t1 - t0, "numba_loaded": "numba" in sys.modules}))
"""

_COMPILE_SNIPPET = r"""
import json, time
t0 = time.perf_counter()
import numpy as np
import npopt
from npopt.kernels import _jit
t1 = time.perf_counter()
dt = np.dtype(%(dtype)r)
out = {"import_s": t1 - t0}
for label, n in (("serial", 1000), ("parallel", max(2 * _jit.PARALLEL_THRESHOLD, 1 << 18))):
    opt = npopt.adam(1e-3)
    p = np.ones(n, dt); g = np.full(n, 0.1, dt); s = opt.init(p)
    a = time.perf_counter(); p, s = opt.step(p, g, s); b = time.perf_counter()
    p, s = opt.step(p, g, s); c = time.perf_counter()
    out["first_step_%%s_s" %% label] = b - a
    out["second_step_%%s_s" %% label] = c - b
    out["n_%%s" %% label] = n
print(json.dumps(out))
"""


def _subprocess_json(code, env=None):
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       cwd=tempfile.gettempdir())
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:])
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out["process_wall_s"] = wall
    return out


def measure_startup(dtype="float32", import_repeats=3):
    res = {}
    imports = [_subprocess_json(_IMPORT_SNIPPET) for _ in range(import_repeats)]
    res["import"] = dict(
        runs=imports,
        median_import_npopt_s=statistics.median(r["import_npopt_s"] for r in imports))
    with tempfile.TemporaryDirectory(prefix="npopt-bench-cache-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        code = _COMPILE_SNIPPET % {"dtype": dtype}
        cold = _subprocess_json(code, env)
        warm = _subprocess_json(code, env)
    res["compile"] = dict(dtype=dtype, cold=cold, warm=warm)
    return res


# --------------------------------------------------------------------------
# Output.

def fmt_time(t):
    if t < 1e-3:
        return f"{t * 1e6:8.1f} us"
    if t < 1:
        return f"{t * 1e3:8.2f} ms"
    return f"{t:8.3f} s "


def fmt_n(n):
    e = int(round(math.log10(n)))
    return f"1e{e}" if 10 ** e == n else str(n)


def print_bandwidth(rows, file=None):
    pr = lambda *a: print(*a, file=file)  # noqa: E731
    pr("\n== Memory bandwidth, best of samples (numba loops, then glibc memcpy and torch's"
       " copy, triad and fused Adam; bytes = (reads + writes) * itemsize * N) ==")
    pr(f"{'kernel':<14}{'dtype':<9}{'N':>6}  {'serial GB/s':>12}{'parallel GB/s':>15}")
    seen = {}
    for r in rows:
        seen.setdefault((r["kernel"], r["dtype"], r["n"]), {})[r["mode"]] = r["gb_s"]
    for (k, d, n), m in seen.items():
        pr(f"{k:<14}{d:<9}{fmt_n(n):>6}  {m.get('serial', float('nan')):12.1f}"
           f"{m.get('parallel', float('nan')):15.1f}")


def case_label(r):
    return r.get("tree") or fmt_n(r["n"])


def print_table(rows):
    print("\n== One optimizer step on a flat vector or a tree (median time per step) ==")
    print("GB/s = arrays * itemsize * N / t (adam: 7 arrays, sgd-momentum/rmsprop/adagrad: 5);"
          "\nof-bw = GB/s / the best Adam-traffic rate of that dtype (numba's parallel"
          " Adam-pattern loop or torch's fused Adam, whichever is faster);"
          f"\nvs npopt = this time / {BASELINE} time (>1: npopt is faster); (min) = fastest sample;"
          "\ntrees (adam, float32): " + ", ".join(f"{k} = {tree_size(k)} params in "
                                                 f"{len(TREES[k] or [0])} leaves" for k in TREES))
    hdr = (f"{'rule':<8}{'impl':<18}{'dtype':<9}{'N':>10}{'time/step':>13}{'(min)':>12}{'GB/s':>8}"
           f"{'of-bw':>7}{'vs npopt':>10}")
    print(hdr)
    print("-" * len(hdr))
    last = None
    for r in rows:
        key = (r["rule"], r["dtype"], r["n"], r.get("tree"))
        if last is not None and key != last:
            print()
        last = key
        if r.get("skipped"):
            print(f"{r['rule']:<8}{r['impl']:<18}{r['dtype']:<9}{case_label(r):>10}"
                  f"  skipped: {r['skipped']}")
            continue
        frac = f"{r['frac_bw']:7.2f}" if r.get("frac_bw") is not None else f"{'':>7}"
        ratio = f"{r['ratio_vs_npopt']:10.2f}" if r.get("ratio_vs_npopt") is not None else f"{'':>10}"
        print(f"{r['rule']:<8}{r['impl']:<18}{r['dtype']:<9}{case_label(r):>10}"
              f"{fmt_time(r['time_s']):>13}{fmt_time(r['min_s']):>12}{r['gb_s']:8.2f}{frac}{ratio}")


def print_load_table(rows, loads, impls):
    """Time per step idle and beside each load, as ratios to idle; for npopt
    also to the serial kernels' time under the same load (the no-cliff bound)."""
    print("\n== Under load: adam, float32, median time per step; ratio = loaded / idle ==")
    print("loads: " + "; ".join(f"{k} = {LOADS[k][0]}" for k in loads if k != "idle"))
    t = {(r["impl"], r["load"], r.get("tree") or r["n"]): r.get("time_s") for r in rows}
    cases = []
    for r in rows:
        c = r.get("tree") or r["n"]
        if c not in cases:
            cases.append(c)
    others = [ld for ld in loads if ld != "idle"]
    hdr = f"{'impl':<14}{'N':>10}{'idle':>12}" + "".join(
        f"{ld:>12}{'ratio':>7}" for ld in others)
    if "npopt.serial" in impls:
        hdr += "".join(f"{'/serial ' + ld:>17}" for ld in others)
    print(hdr)
    print("-" * len(hdr))
    for impl in impls:
        for c in cases:
            idle = t.get((impl, "idle", c))
            label = c if isinstance(c, str) else fmt_n(c)
            line = f"{impl:<14}{label:>10}" + (f"{fmt_time(idle):>12}" if idle else f"{'-':>12}")
            for ld in others:
                x = t.get((impl, ld, c))
                line += (f"{fmt_time(x):>12}" if x else f"{'-':>12}")
                line += (f"{x / idle:7.2f}" if x and idle else f"{'':>7}")
            if "npopt.serial" in impls and impl == "npopt.step":
                for ld in others:
                    x, ser = t.get((impl, ld, c)), t.get(("npopt.serial", ld, c))
                    line += f"{x / ser:17.2f}" if x and ser else f"{'':>17}"
            print(line)
        print()


def print_startup(s):
    print("\n== Start-up (fresh interpreters) ==")
    imp = s["import"]
    print(f"import npopt: median {imp['median_import_npopt_s'] * 1e3:.0f} ms over "
          f"{len(imp['runs'])} runs (numba loaded by the import: "
          f"{imp['runs'][0]['numba_loaded']})")
    c = s["compile"]
    for label in ("cold", "warm"):
        r = c[label]
        print(f"adam step, {c['dtype']}, {label} NUMBA_CACHE_DIR: import {r['import_s'] * 1e3:.0f} ms; "
              f"first step serial (N={fmt_n(r['n_serial'])}) {r['first_step_serial_s']:.2f} s, "
              f"then first step parallel (N={r['n_parallel']}) {r['first_step_parallel_s']:.2f} s; "
              f"process wall {r['process_wall_s']:.2f} s")


# --------------------------------------------------------------------------

def environment():
    """Versions and machine facts, without importing the peers here."""
    from importlib import metadata
    env = dict(python=sys.version.split()[0], platform=platform.platform(),
               cpu=platform.processor(), cores=os.cpu_count())
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    env["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    for dist in ("numpy", "numba", "npopt", "jax", "jaxlib", "optax", "torch"):
        try:
            env[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            env[dist] = None
    try:
        env["loadavg_start"] = os.getloadavg()
    except OSError:
        pass
    return env


# --------------------------------------------------------------------------
# Workers: every implementation runs in its own interpreter, so thread pools
# of different libraries (numba's OpenMP, torch's OpenMP, XLA's Eigen pool)
# never spin against each other on the same cores, and nothing but the
# library under test is imported.

def worker(name, cfg):
    if name == "bandwidth":
        import numba
        rows = measure_bandwidth(cfg["bandwidth_n"], cfg["bw_repeats"])
        info = dict(numba_threads=numba.config.NUMBA_NUM_THREADS,
                    numba_threading_layer=numba.threading_layer())
        try:
            from npopt.kernels import _jit
            info["npopt_parallel_threshold"] = _jit.PARALLEL_THRESHOLD
        except Exception:
            pass
        return dict(bandwidth=rows, info=info)
    make = IMPLS[name]
    rows = []
    for rname, dname, case in cfg["cases"]:
        rule = RULES[rname]
        tree = case if isinstance(case, str) else None
        n = tree_size(tree) if tree else case
        row = dict(rule=rname, impl=name, dtype=dname, n=n, tree=tree)
        step = None
        try:
            step = make(rule, case, dname)
            t, number, samples = time_step(step, cfg["repeats"], cfg["min_sample_s"])
        except Skip as e:
            row["skipped"] = str(e)
            rows.append(row)
            continue
        finally:
            step = None
            gc.collect()
        gbs = rule.arrays * np.dtype(DTYPES[dname]).itemsize * n / t / 1e9
        row.update(time_s=t, min_s=min(samples), number=number, samples_s=samples, gb_s=gbs)
        rows.append(row)
        print(f"  {rname:<8}{name:<18}{dname:<9}{case_label(row):>10}{fmt_time(t):>13}",
              file=sys.stderr, flush=True)
    info = dict(python=sys.executable)
    if name.startswith("torch"):
        torch = _import_torch()
        if not isinstance(torch, Exception):
            info.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    if name.startswith("optax"):
        mods = _import_jax()
        if not isinstance(mods, Exception):
            info.update(jax=mods[0].__version__, optax=mods[2].__version__)
    return dict(steps=rows, info=info)


# Competing work for the load table: each runs in its own process beside the
# measured worker, started before it and killed after it.
LOADS = {
    "idle": ("nothing", None, {}),
    "busy1": ("one core busy: python -c 'while True: pass'",
              "while True: pass", {}),
    "busy-mt": ("a 2-thread job: NumPy 512x512 float64 matmuls in a loop, "
                "OPENBLAS/OMP_NUM_THREADS=2",
                "import numpy as np\na = np.random.rand(512, 512)\nwhile True: a @ a",
                {"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}),
}


def run_worker(name, cfg, python=None, load="idle"):
    """Run worker(name, cfg) in a fresh interpreter (``python``, default this
    one), beside the load process LOADS[load]; returns its JSON result."""
    with tempfile.NamedTemporaryFile("r", suffix=".json", delete=False) as f:
        out = f.name
    loader = None
    try:
        _, code, extra = LOADS[load]
        if code is not None:
            loader = subprocess.Popen([sys.executable, "-c", code],
                                      env=dict(os.environ, **extra),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.3)   # let it start (and reach its loop)
        r = subprocess.run([python or sys.executable, os.path.abspath(__file__), "--worker", name,
                            "--worker-config", json.dumps(cfg), "--out", out])
        if r.returncode != 0:
            raise RuntimeError(f"worker {name} failed with exit code {r.returncode}")
        with open(out) as f:
            return json.load(f)
    finally:
        if loader is not None:
            loader.kill()
            loader.wait()
        os.unlink(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: N <= 1e6, few repeats (< 1 minute)")
    ap.add_argument("--rules", default=",".join(DEFAULT_RULES),
                    help=f"comma-separated, from {','.join(RULES)} (default: %(default)s)")
    ap.add_argument("--impls", default=",".join(DEFAULT_IMPLS),
                    help=f"comma-separated, from {','.join(IMPLS)} (default: %(default)s)")
    ap.add_argument("--sizes", default=None, help="comma-separated N (default 1e3,1e5,1e6,1e7)")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--trees", default=",".join(TREES),
                    help="parameter trees stepped with adam in float32, or 'none' "
                         "(default: %(default)s)")
    ap.add_argument("--load", default="idle,busy1,busy-mt",
                    help=f"the load table's loads, from {','.join(LOADS)}, or 'none' "
                         "(default: %(default)s)")
    ap.add_argument("--load-impls", default="npopt.step,npopt.serial,torch.fused",
                    help="implementations of the load table (default: %(default)s)")
    ap.add_argument("--load-sizes", default="1e3,1e5,2e5,1e6,2e6,1e7",
                    help="flat float32 sizes of the load table, with --trees (default: %(default)s)")
    ap.add_argument("--jax-python", default=os.environ.get("NPOPT_JAX_PYTHON"),
                    help="interpreter with jax and optax that runs the optax rows "
                         "(default: $NPOPT_JAX_PYTHON, else this one)")
    ap.add_argument("--repeats", type=int, default=None, help="samples per case")
    ap.add_argument("--bandwidth-n", type=float, default=1e7)
    ap.add_argument("--no-startup", action="store_true", help="skip the subprocess start-up runs")
    ap.add_argument("--out", default=os.path.join(HERE, "results.json"))
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--worker-config", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        res = worker(args.worker, json.loads(args.worker_config))
        with open(args.out, "w") as f:
            json.dump(res, f)
        return

    def names(text, known, what):
        out = [x.strip() for x in text.split(",") if x.strip() and x.strip() != "none"]
        for x in out:
            if x not in known:
                ap.error(f"unknown {what} {x!r}; known: {', '.join(known)}")
        return out

    rules = names(args.rules, RULES, "rule")
    impls = names(args.impls, IMPLS, "impl")
    dtypes = names(args.dtypes, DTYPES, "dtype")
    trees = names(args.trees, TREES, "tree")
    loads = names(args.load, LOADS, "load")
    load_impls = names(args.load_impls, IMPLS, "impl")
    if loads and "idle" not in loads:
        loads = ["idle"] + loads
    if args.sizes:
        sizes = [int(float(x)) for x in args.sizes.split(",")]
    else:
        sizes = [10 ** 3, 10 ** 5, 10 ** 6] + ([] if args.quick else [10 ** 7])
    load_sizes = [int(float(x)) for x in args.load_sizes.split(",") if x.strip()]
    if args.quick:
        sizes = [n for n in sizes if n <= 10 ** 6]
        load_sizes = [n for n in load_sizes if n <= 10 ** 6]
    repeats = args.repeats or (3 if args.quick else 9)
    cases = [(r, d, n) for r in rules for d in dtypes for n in sizes]
    cases += [(TREE_RULE, TREE_DTYPE, t) for t in trees]
    load_cases = [(TREE_RULE, TREE_DTYPE, n) for n in load_sizes]
    load_cases += [(TREE_RULE, TREE_DTYPE, t) for t in trees]
    cfg = dict(rules=rules, dtypes=dtypes, sizes=sizes, trees=trees, cases=cases,
               repeats=repeats, min_sample_s=0.003 if args.quick else 0.02,
               bandwidth_n=int(args.bandwidth_n), bw_repeats=5 if args.quick else 15,
               loads=loads, load_impls=load_impls, load_cases=load_cases,
               jax_python=args.jax_python)

    def python_for(impl):
        return args.jax_python if impl in JAX_IMPLS and args.jax_python else None

    t_start = time.perf_counter()
    env = environment()
    print("npopt step benchmark:", ", ".join(f"{k}={v}" for k, v in env.items()
                                            if k != "platform"), flush=True)
    la = env.get("loadavg_start")
    if la and la[0] > 0.5:
        print(f"warning: load average {la[0]:.2f} at start: another process is using the CPU;"
              " peers' parallel kernels lose milliseconds per call when a core is taken, and npopt's"
              " run serially then", flush=True)
    for mod in ("jax", "optax", "torch"):
        if env.get(mod) is None and not (mod != "torch" and args.jax_python):
            print(f"{mod}: not installed; its rows are skipped (see --jax-python)"
                  if mod != "torch" else f"{mod}: not installed; its rows are skipped", flush=True)

    bwres = run_worker("bandwidth", cfg)
    env.update(bwres["info"])
    bw = bwres["bandwidth"]
    print_bandwidth(bw, file=sys.stderr)
    # the machine's rate for Adam's traffic: the best of numba's loop and torch's kernel
    ref_bw = {}
    for r in bw:
        if r["kernel"] == "torch_adam" or (r["kernel"] == "adam_pattern"
                                           and r["mode"] == "parallel"):
            ref_bw[r["dtype"]] = max(ref_bw.get(r["dtype"], 0.0), r["gb_s"])

    by_impl = {}
    for name in impls:
        print(f"[{name}]", file=sys.stderr, flush=True)
        res = run_worker(name, cfg, python_for(name))
        by_impl[name] = res["steps"]
        env.setdefault("impl_info", {})[name] = res["info"]

    def key(r):
        return (r["rule"], r["dtype"], r.get("tree") or r["n"])

    base = {key(r): r["time_s"] for r in by_impl.get(BASELINE, []) if "time_s" in r}
    order = [BASELINE] + [i for i in impls if i != BASELINE] if BASELINE in impls else impls
    index = {key(r) + (r["impl"],): r for rows in by_impl.values() for r in rows}
    rows = []
    for rname, dname, case in cases:
        for name in order:
            r = index.get((rname, dname, case, name))
            if r is None:
                continue
            if "time_s" in r:
                r["frac_bw"] = r["gb_s"] / ref_bw[dname] if dname in ref_bw else None
                b = base.get((rname, dname, case))
                r["ratio_vs_npopt"] = r["time_s"] / b if b else None
            rows.append(r)
    print_bandwidth(bw)
    print_table(rows)

    load_rows = []
    if loads:
        lcfg = dict(cfg, cases=load_cases)
        for name in load_impls:
            for ld in loads:
                print(f"[{name} | {ld}]", file=sys.stderr, flush=True)
                res = run_worker(name, lcfg, python_for(name), load=ld)
                for r in res["steps"]:
                    r["load"] = ld
                load_rows += res["steps"]
        print_load_table(load_rows, loads, load_impls)

    startup = None
    if not args.no_startup:
        startup = measure_startup()
        print_startup(startup)

    try:
        env["loadavg_end"] = os.getloadavg()
    except OSError:
        pass
    total = time.perf_counter() - t_start
    print(f"\ntotal benchmark time: {total:.0f} s")
    result = dict(environment=env, config=cfg, quick=args.quick, lr=LR,
                  rules={k: dict(arrays=RULES[k].arrays, note=RULES[k].note) for k in rules},
                  trees={k: dict(shapes=TREES[k], params=tree_size(k)) for k in trees},
                  loads={k: LOADS[k][0] for k in loads},
                  bandwidth=bw, steps=rows, load_steps=load_rows, startup=startup,
                  total_s=total)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"saved {os.path.abspath(args.out)}")


if __name__ == "__main__":
    main()
