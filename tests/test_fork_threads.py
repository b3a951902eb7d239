"""Parallel CPU loops under fork and threads (SPEC section 8).

Arrays of at least ``PARALLEL_THRESHOLD`` elements run numba's parallel
loops, whose thread pool is numba's threading layer, chosen once per
process. With GNU OpenMP (numba's default layer without tbb) a child forked
after a parallel step dies at its first parallel region; with 'workqueue'
two threads launching at once abort the process. npopt's kernels stay safe
under every layer (kernels/_jit.py: ``parallel_gate``), and since the serial
and parallel loops give the same bits, the numbers do not depend on which
ran.

The fork and thread scenarios each run in a fresh interpreter (the layer is
process-global), with numba's default layer and with 'workqueue'.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import npopt
from npopt.kernels import _jit
from npopt.tree import tree_leaves

N = 1 << 18          # >= PARALLEL_THRESHOLD (2**17): the parallel loops
LAYERS = ["default", "workqueue"]   # default: 'omp' (GNU OpenMP) here, 'tbb' where installed

COMMON = f"""
import numpy as np
import numba
import npopt
from npopt.kernels import _jit
from npopt.tree import tree_leaves

N = {N}
assert N >= _jit.PARALLEL_THRESHOLD, _jit.PARALLEL_THRESHOLD


def data(seed, k):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(N).astype(np.float32) for _ in range(k)]


def blob(params, state):
    return b"".join(np.asarray(x).tobytes() for x in tree_leaves((params, state)))
"""

FORK = COMMON + """
import multiprocessing as mp
import warnings

p0, g1, g2 = data(0, 3)
opt = npopt.adam(1e-3)
if WARMUP == "user":
    # the threading layer started by other code; npopt's first large step is
    # in the child
    @numba.njit(parallel=True)
    def twice(x):
        for i in numba.prange(x.shape[0]):
            x[i] = 2 * x[i]
    twice(np.ones(N))
    p1, s1 = p0, opt.init(p0)
else:
    p1, s1 = opt.step(p0, g1, opt.init(p0))      # a parallel step: the layer runs
print("layer", numba.threading_layer())


def child(conn):
    p2, s2 = opt.step(p1.copy(), g2, s1)          # a large step in the child
    got = blob(p2, s2)                            # (the next step consumes s2)
    p3, s3 = opt.step(p2, g1, s2)                 # and another
    conn.send_bytes(got + blob(p3, s3))
    conn.close()


ctx = mp.get_context("fork")
recv, send = ctx.Pipe(duplex=False)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)   # fork of a threaded process
    proc = ctx.Process(target=child, args=(send,))
    proc.start()
send.close()
try:
    got = recv.recv_bytes() if recv.poll(60) else b""
except EOFError:                                  # the child died
    got = b""
proc.join(60)
assert proc.exitcode == 0, f"child exit code {proc.exitcode}"

p2, s2 = opt.step(p1, g2, s1)                     # the same steps in the parent
want = blob(p2, s2)
p3, s3 = opt.step(p2, g1, s2)
want += blob(p3, s3)
assert got == want, "the child's step differs from the parent's"
print("ok")
"""

THREADS = COMMON + """
import threading

opt = npopt.adam(1e-3)                            # one optimizer, shared
STEPS = 8


def run(seed, out, sync=lambda: None):
    p, *gs = data(seed, 3)
    s = opt.init(p)
    for t in range(STEPS):
        sync()                                    # both threads launch together
        p, s = opt.step(p, gs[t % 2], s)
    out[seed] = blob(p, s)


sequential = {}
for seed in (1, 2):
    run(seed, sequential)

concurrent = {}
barrier = threading.Barrier(2)
threads = [threading.Thread(target=run, args=(seed, concurrent, barrier.wait))
           for seed in (1, 2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert concurrent == sequential, "concurrent steps differ from sequential ones"
print("layer", numba.threading_layer(), "ok")
"""


def _run(script, layer, load_check=False):
    env = dict(os.environ)
    env.pop("NUMBA_THREADING_LAYER", None)
    # without the load check (kernels/_jit.py: _Cores), large steps run the
    # parallel loops even on a busy machine, which is what these tests need
    env["NPOPT_LOAD_CHECK_MS"] = "10" if load_check else "0"
    if layer != "default":
        env["NUMBA_THREADING_LAYER"] = layer
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.rstrip().endswith("ok"), (
        f"exit {out.returncode}\nstdout:\n{out.stdout}\nstderr:\n{out.stderr}")
    return out.stdout


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("layer,warmup,load_check", [
    ("default", "npopt", False), ("workqueue", "npopt", False), ("default", "user", False),
    ("default", "npopt", True)])
def test_child_forked_after_a_parallel_step_steps_correctly(layer, warmup, load_check):
    """A child forked after a parallel step (npopt's, or other code's that
    started the threading layer) runs large steps and gets the parent's
    numbers, and exits normally; also with the load check on (the child
    then forgets the parent's pool threads)."""
    _run(f"WARMUP = {warmup!r}\n" + FORK, layer, load_check)


@pytest.mark.parametrize("layer", LAYERS)
def test_threads_sharing_an_optimizer_give_the_sequential_numbers(layer):
    """Two threads stepping through one optimizer at once (large params, so
    parallel loops) get the numbers of running one after the other."""
    _run(THREADS, layer)


def test_parallel_gate_per_layer(monkeypatch):
    """The decision table of kernels/_jit.py, without starting any layer."""
    monkeypatch.setattr(_jit, "_gnu_openmp", lambda: True)
    pid = os.getpid()
    for layer, layer_pid, want in [("tbb", pid, _jit._ALWAYS), ("tbb", -1, _jit._ALWAYS),
                                   ("omp", pid, _jit._ALWAYS), ("omp", -1, _jit._NEVER)]:
        monkeypatch.setattr(_jit, "_layer", layer)
        monkeypatch.setattr(_jit, "_layer_pid", layer_pid)
        assert _jit.parallel_gate() is want, (layer, layer_pid)
    monkeypatch.setattr(_jit, "_layer", "workqueue")
    gate = _jit.parallel_gate()
    assert gate is _jit._workqueue_lock
    assert gate.acquire(blocking=False)
    try:
        assert not _jit.parallel_gate().acquire(blocking=False)   # a second launch waits
    finally:
        gate.release()


OPTIMIZERS = {
    "adam": lambda: npopt.adam(1e-3),
    "lamb": lambda: npopt.lamb(1e-3, weight_decay=0.01),                  # chunked norms
    "clip_sgd": lambda: npopt.chain(npopt.clip_by_global_norm(1.0), npopt.sgd(0.1, momentum=0.9)),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_serial_and_parallel_loops_give_the_same_bits(name, monkeypatch):
    """Which loop runs (size, fork, a busy lock) never changes a number.
    Several CHUNKs per leaf, so the chunked reductions are exercised."""
    rng = np.random.default_rng(3)
    params = {"a": rng.standard_normal(3 * _jit.CHUNK + 17).astype(np.float32),
              "b": rng.standard_normal((40, 333))}
    grads = [{k: rng.standard_normal(v.shape).astype(v.dtype) for k, v in params.items()}
             for _ in range(3)]
    results = []
    for threshold in (1 << 62, 1):                 # every loop serial, then parallel
        monkeypatch.setattr(_jit, "PARALLEL_THRESHOLD", threshold)
        opt = OPTIMIZERS[name]()
        p, s = {k: v.copy() for k, v in params.items()}, opt.init(params)
        for g in grads:
            p, s = opt.step(p, g, s)
        results.append(b"".join(np.asarray(x).tobytes() for x in tree_leaves((p, s))))
    assert results[0] == results[1]
