"""The compilation policy of SPEC §6, enforced on the kernel sources.

Every function in kernels/ is compiled through kernels/_jit.py's decorators
(rule, cpu_kernel, cuda_kernel): no bare njit/jit/cuda.jit elsewhere, no
fastmath beyond FMA contraction, and no import of npopt from kernels/.
"""
import ast
import os

import pytest

import npopt.kernels._jit as jit

KDIR = os.path.dirname(jit.__file__)
MODULES = sorted(f for f in os.listdir(KDIR) if f.endswith(".py"))


def _tree(name):
    with open(os.path.join(KDIR, name)) as f:
        return ast.parse(f.read())


def test_policy_constants():
    assert jit.CPU_OPTIONS["cache"] is True
    assert jit.CPU_OPTIONS["error_model"] == "numpy"
    assert set(jit.CPU_OPTIONS["fastmath"]) == {"contract"}
    assert jit.FASTMATH == frozenset({"contract"})


@pytest.mark.parametrize("name", [m for m in MODULES if m != "_jit.py"])
def test_kernels_use_the_shared_decorators(name):
    allowed = {"rule", "cpu_kernel", "cuda_kernel"}
    for node in ast.walk(_tree(name)):
        if isinstance(node, ast.FunctionDef):
            for d in node.decorator_list:
                if isinstance(d, ast.Call) and ast.unparse(d.func) == "njit":
                    # only with the shared options
                    assert any(isinstance(k.value, ast.Starred) or k.arg is None
                               for k in d.keywords), f"{name}:{node.name} bare njit"
                    assert all(k.arg != "fastmath" for k in d.keywords)
                    continue
                src = ast.unparse(d)
                assert src in allowed, f"{name}:{node.name} uses decorator {src}"


@pytest.mark.parametrize("name", MODULES)
def test_no_npopt_import_and_no_fastmath_in_kernels(name):
    for node in ast.walk(_tree(name)):
        if isinstance(node, ast.ImportFrom):
            assert not (node.module or "").startswith("npopt"), name
        if isinstance(node, ast.Import):
            assert all(not a.name.startswith("npopt") for a in node.names), name
        if isinstance(node, ast.keyword) and node.arg == "fastmath" and name != "_jit.py":
            raise AssertionError(f"{name}: fastmath set outside _jit.py")


def test_importing_npopt_compiles_nothing():
    import subprocess
    import sys
    code = ("import npopt, npopt.kernels.adam as k; "
            "assert not k.adam_cpu.serial.signatures and not k.adam_cpu.parallel.signatures; "
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


def test_float32_stays_float32_in_kernels():
    """A float32 step computes in float32 (a bare Python float would promote)."""
    import numpy as np

    import npopt
    for opt in (npopt.adam(0.1), npopt.rmsprop(0.1), npopt.adagrad(0.1),
                npopt.sgd(0.1, momentum=0.9)):
        p = np.linspace(-1, 1, 11).astype(np.float32)
        s = opt.init(p)
        p, s = opt.step(p, np.linspace(1, 2, 11).astype(np.float32), s)
        assert p.dtype == np.float32
    from npopt.kernels import adam as k
    for sig in k.adam_cpu.serial.signatures:
        if str(sig[0].dtype) == "float32":
            assert all(str(t) == "float32" for t in sig[4]), sig   # hp tuple
