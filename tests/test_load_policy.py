"""The parallel loops' load check (kernels/_jit.py: ``_Cores``).

A parallel launch while another process holds a core waits for that core at
the loop's end (a scheduler time slice, milliseconds): npopt runs the serial
loop when /proc/loadavg shows fewer than two cores free of other processes'
threads. Which loop runs never changes a number; these tests check the
decision itself with a fake /proc/loadavg.
"""
import os

import numpy as np
import pytest

import npopt
from npopt.kernels import _jit

N = 1 << 18


def _fake_loadavg(tmp_path, running):
    path = tmp_path / "loadavg"
    path.write_text(f"0.50 0.40 0.30 {running}/200 12345\n")
    return os.open(path, os.O_RDONLY)


@pytest.fixture
def cores(monkeypatch):
    c = _jit._Cores()
    monkeypatch.setattr(_jit, "_cores", c)
    monkeypatch.setattr(_jit, "LOAD_CHECK_S", 10.0)
    yield c
    c.reset()


@pytest.mark.skipif(not os.path.exists("/proc/loadavg"), reason="Linux /proc")
@pytest.mark.parametrize("running", [1, 2, 3, 50])
def test_threads_count_the_cores_other_processes_leave(tmp_path, cores, monkeypatch, running):
    monkeypatch.setattr(_jit.numba.config, "NUMBA_NUM_THREADS", 8)
    monkeypatch.setattr(_jit, "_CPUS", 8)
    cores.loadavg = _fake_loadavg(tmp_path, running)
    cores.before = set()
    want = max(0, 8 - (running - 1))         # the caller is one of the running
    assert cores.threads() == want
    # kept for LOAD_CHECK_S: a new reading is not looked at
    os.close(cores.loadavg)
    cores.loadavg = _fake_loadavg(tmp_path, 1)
    assert cores.threads() == want
    cores.expires = -1.0
    assert cores.threads() == 8


def test_no_check_means_every_thread(cores, monkeypatch):
    monkeypatch.setattr(_jit, "LOAD_CHECK_S", 0.0)
    assert cores.threads() == _jit.numba.config.NUMBA_NUM_THREADS


@pytest.mark.parametrize("threads", [0, 1, 2])
def test_busy_cores_pick_the_serial_loop_with_the_same_bits(cores, monkeypatch, threads):
    monkeypatch.setattr(cores, "threads", lambda: threads)
    calls = {"parallel": 0}
    real_launch = cores.launch

    def launch(fn, args, n):
        calls["parallel"] += 1
        return real_launch(fn, args, n)
    monkeypatch.setattr(cores, "launch", launch)
    rng = np.random.default_rng(0)
    p, g = rng.standard_normal(N).astype(np.float32), rng.standard_normal(N).astype(np.float32)
    opt = npopt.adam(1e-3)
    out = opt.step(p.copy(), g, opt.init(p))
    monkeypatch.setattr(_jit, "PARALLEL_THRESHOLD", 1 << 62)
    ref = opt.step(p.copy(), g, opt.init(p))
    assert (calls["parallel"] > 0) == (threads >= 2 and _jit.numba.config.NUMBA_NUM_THREADS >= 2)
    for a, b in zip(npopt.tree.tree_leaves(out), npopt.tree.tree_leaves(ref)):
        assert np.array_equal(np.asarray(a), np.asarray(b))
