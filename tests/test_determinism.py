"""npopt's numbers do not depend on the machine (SPEC §7).

Where the CPU entered before: OpenBLAS picks its dot/gemv/gemm and LAPACK
kernels for the CPU at run time (``OPENBLAS_CORETYPE``), each adding in its
own order; NumPy dispatches ``exp``, ``log``, ``power``, ``log1p``, ``sin``
... to SIMD versions (AVX2, AVX-512) whose last bits differ. npopt's own
arithmetic now goes through ``npopt._dense`` and ``npopt._math`` instead.

Two checks:

* ``test_same_bits_on_other_machines``: ``tests/fingerprint.py`` (hashes of
  solver iterates, counts and update-rule results) run as on an SSE-only
  machine (OpenBLAS Prescott kernels, NumPy without any dispatched SIMD
  target) and as on an AVX2 machine (OpenBLAS Haswell kernels, NumPy without
  its AVX-512 targets, numba compiling for Haswell) must give the bits of
  this machine. On an AVX2 machine the second run is the machine itself.
  The promise covers x86-64 CPUs with FMA (every AVX2 and AVX-512 CPU): the
  C library's exp/log/pow and numba's FMA contraction round otherwise on a
  CPU without FMA, which the "sse_only" run does not emulate (it forces
  OpenBLAS's and NumPy's SSE code, not the C library's or numba's).
* ``test_no_cpu_dispatched_calls_in_npopt``: no code line of npopt calls
  BLAS/LAPACK or a SIMD-dispatched NumPy transcendental on floating data, so
  the class of bug cannot come back unnoticed.
"""
import io
import json
import os
import pathlib
import subprocess
import sys
import tokenize

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
FINGERPRINT = ROOT / "tests" / "fingerprint.py"


def _numpy_dispatch_features():
    """NumPy's run-time dispatched SIMD targets enabled on this CPU."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:                                   # numpy < 2
        from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    return [f for f in __cpu_dispatch__ if __cpu_features__.get(f)]


def _host_has(*features):
    import llvmlite.binding as llvm
    host = llvm.get_host_cpu_features()
    return all(host.get(f, False) for f in features)


def _machines():
    found = _numpy_dispatch_features()
    avx512 = [f for f in found if "512" in f or f in ("X86_V4",)]
    machines = {"sse_only": {"OPENBLAS_CORETYPE": "Prescott",
                             "NPY_DISABLE_CPU_FEATURES": " ".join(found)}}
    avx2 = {"OPENBLAS_CORETYPE": "Haswell", "NPY_DISABLE_CPU_FEATURES": " ".join(avx512)}
    if _host_has("avx2", "fma", "bmi2"):
        avx2["NUMBA_CPU_NAME"] = "haswell"
    machines["avx2"] = avx2
    return machines


def _fingerprint(extra_env):
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "NPY_DISABLE_CPU_FEATURES", "NUMBA_CPU_NAME")}
    env.update({k: v for k, v in extra_env.items() if v})
    out = subprocess.run([sys.executable, str(FINGERPRINT)], env=env, capture_output=True,
                         text=True, timeout=900, cwd=str(ROOT))
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def here():
    return _fingerprint({})


@pytest.mark.parametrize("machine", ["sse_only", "avx2"])
def test_same_bits_on_other_machines(here, machine):
    env = _machines()[machine]
    there = _fingerprint(env)
    assert set(there) == set(here)
    differ = sorted(k for k in here if here[k] != there[k])
    assert not differ, f"results differ as on another machine ({env}): {differ}"


def test_fingerprint_covers_the_solvers(here):
    # a fingerprint that silently lost its items would prove nothing
    for name in ("lbfgs_hz", "bfgs_hz", "lbfgsb", "lm_qr", "lm_cholesky", "osqp",
                 "solve_gmres", "solve_qr", "jacobian", "rule_lamb", "rule_adafactor"):
        assert name in here


# ---- a static guard ------------------------------------------------------------

# Calls whose rounding depends on the CPU (OpenBLAS kernels, LAPACK, NumPy's
# SIMD dispatch). npopt uses npopt._dense / npopt._math instead.
FORBIDDEN = ["np.dot(", "np.vdot(", "np.inner(", "np.matmul(", "np.tensordot(", "np.einsum(",
             "np.linalg.", "scipy.linalg", "np.exp(", "np.log(", "np.log1p(", "np.expm1(",
             "np.exp2(", "np.log2(", "np.log10(", "np.power(", "np.tanh(", "np.sinh(",
             "np.cosh(", "np.arctan(", "np.cbrt(", ".dot("]
NOT_A_CALL = ["np.linalg.LinAlgError", "_dense.dot(", "_k.dot("]
# a line may say why it is fine with a comment containing "cpu-ok"
# files where the arithmetic is another library's by design: the scipy and
# cvxpy wrappers hand the problem to those libraries; the demo and examples
# print what they find; schedules call libm on scalars and fall back to NumPy
# only for arrays of counts (documented there; the arithmetic is in _jax.py).
ALLOWED_FILES = {"solvers/scipy_wrappers.py", "solvers/cvxpy_qp.py", "__main__.py",
                 "examples/hyperopt.py", "schedules/_jax.py"}


def _code_without_strings(path):
    toks = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
    lines, ok = {}, set()
    for tok in toks:
        if tok.type == tokenize.COMMENT and "cpu-ok" in tok.string:
            ok.add(tok.start[0])
        if tok.type in (tokenize.COMMENT, tokenize.STRING):
            continue
        lines.setdefault(tok.start[0], []).append(tok.string)
    return {n: "".join(parts) for n, parts in lines.items() if n not in ok}


def test_no_cpu_dispatched_calls_in_npopt():
    bad = []
    for base in (ROOT / "npopt", ROOT / "kernels"):
        for path in base.rglob("*.py"):
            rel = path.relative_to(base).as_posix()
            if rel in ALLOWED_FILES or path.is_symlink():
                continue
            for n, line in _code_without_strings(path).items():
                for ok in NOT_A_CALL:
                    line = line.replace(ok, "")
                hits = [f for f in FORBIDDEN if f in line]
                if "@" in line.replace("@njit", "").replace("@cuda", "") and \
                        not line.lstrip().startswith("@"):
                    hits.append("@")
                if hits:
                    bad.append(f"{base.name}/{rel}:{n}: {hits}")
    assert not bad, "CPU-dependent calls (use npopt._dense / npopt._math):\n" + "\n".join(bad)


def test_dense_is_independent_of_layout_and_matches_numpy():
    from npopt import _dense
    rng = np.random.default_rng(0)
    A = rng.standard_normal((13, 9))
    x = rng.standard_normal(9)
    r = rng.standard_normal(13)
    Ax = _dense.dot(A, x)
    assert np.array_equal(Ax, _dense.dot(np.asfortranarray(A), x))
    assert all(Ax[i] == _dense.dot(A[i], x) for i in range(13))
    rA = _dense.dot(r, A)
    assert np.array_equal(rA, _dense.dot(A.T, r))            # A.T: the vecmat path
    assert np.array_equal(rA, _dense.dot(np.ascontiguousarray(A.T), r))
    np.testing.assert_allclose(Ax, A @ x, rtol=1e-13)
