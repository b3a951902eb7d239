"""The GPU's own sources of CPU helpers (``_jit.cuda_variant``: the ones that
allocate scratch on the CPU) compute the CPU's numbers in the CPU's order.

The simulator runs the CPU functions, so these variants are checked here on
the CPU: each is compiled with the CPU policy (or run as Python with
``cuda.local.array`` standing for ``np.empty``) and compared bit for bit."""
import types

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from numba import njit

from npopt.kernels import _jit, dense
from npopt.kernels import solver_machine as K


def variant(cpu_function):
    return _jit.CUDA_VARIANTS[cpu_function.py_func]


def on_cpu(fn):
    """fn compiled for the CPU (the CPU policy; its globals as they are)."""
    return njit(**_jit.CPU_OPTIONS)(fn)


class _Local:
    @staticmethod
    def array(n, dtype):
        return np.empty(n, dtype)


def as_python(fn):
    """fn run as Python with cuda.local.array -> np.empty."""
    shim = types.SimpleNamespace(local=_Local)
    return _jit._renamed(fn, "", {**fn.__globals__, "cuda": shim})


def test_every_variant_names_a_cpu_function_of_kernels():
    assert len(_jit.CUDA_VARIANTS) >= 7
    for cpu, gpu in _jit.CUDA_VARIANTS.items():
        assert cpu.__module__.startswith("npopt.kernels"), cpu
        assert gpu.__code__.co_argcount == cpu.__code__.co_argcount, (cpu, gpu)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.sampled_from([np.float32, np.float64]),
       st.integers(0, 2**31 - 1))
def test_vecmat_and_matmat_variants_equal_the_cpu_loops(m, n, dtype, seed):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(m, n)).astype(dtype)
    x = rng.normal(size=m).astype(dtype)
    B = rng.normal(size=(n, m)).astype(dtype)
    out_cpu, out_gpu = np.empty(n, dtype), np.empty(n, dtype)
    dense.vecmat(x, A, out_cpu)
    on_cpu(variant(dense.vecmat))(x, A, out_gpu)
    np.testing.assert_array_equal(out_cpu, out_gpu)
    C_cpu, C_gpu = np.empty((m, m), dtype), np.empty((m, m), dtype)
    dense.matmat(A, B, C_cpu)
    on_cpu(variant(dense.matmat))(A, B, C_gpu)
    np.testing.assert_array_equal(C_cpu, C_gpu)


@pytest.mark.parametrize("n", [1, 3, 9, 30])
def test_cholesky_variant_equals_the_cpu_factor(n):
    rng = np.random.default_rng(n)
    M = rng.normal(size=(n, n + 2))
    A = M @ M.T + 0.1 * np.eye(n)      # cpu-ok: test data
    a_cpu, a_gpu = A.copy(), A.copy()
    assert dense.cholesky(a_cpu) == on_cpu(variant(dense.cholesky))(a_gpu) == -1
    np.testing.assert_array_equal(a_cpu, a_gpu)
    bad = -np.eye(n)
    assert dense.cholesky(bad.copy()) == on_cpu(variant(dense.cholesky))(bad.copy()) == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [5, 128, 129, 1000, 5003])
def test_pairwise_and_scalar_variants_equal_the_cpu(size, dtype):
    a = np.random.default_rng(size).normal(size=size + 3).astype(dtype)
    zero = dtype(0)
    want = K._pairwise_sq(a, 2, size, zero)
    got = as_python(variant(K._pairwise_sq))(a, 2, size, zero)
    assert np.asarray(got, dtype) == want and type(want) in (float, dtype)
    assert want == np.sum(np.square(a[2:2 + size]))          # NumPy's own pairwise sum
    fs = np.zeros(3, dtype)
    assert as_python(variant(K._cast))(fs, 0.1) == K._cast(fs, 0.1) == dtype(0.1)
    assert as_python(variant(dense.zero_of))(a) == 0
    assert as_python(variant(K._pow))(1.5, 3.0) == K._pow(1.5, 3.0)
