"""The compilation policy of SPEC §6, enforced on the kernel sources.

Every function in kernels/ is compiled through kernels/_jit.py's decorators
(rule, cpu_kernel, cuda_kernel, machine): no bare njit/jit/cuda.jit
elsewhere, no fastmath beyond FMA contraction (none in state machines), and
no import of npopt from kernels/.
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
    allowed = {"rule", "cpu_kernel", "cuda_kernel", "machine"}
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
                if src.startswith("overload("):      # a typing-time template, not compiled code
                    continue
                if src.startswith("cuda_variant("):  # the GPU's source of a CPU function
                    continue
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
        # (float32 grads meeting float64 moments compute in float64, as optax
        # promotes: update() of float64 params with float32 grads)
        if all(str(t.dtype) == "float32" for t in sig[:4]):
            assert all(str(t) == "float32" for t in sig[4]), sig   # hp tuple


# --- CUDA: device code without fast-math (kernels/_jit.py, tools/ptx_check.py) -------

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PTX_CHECK = os.path.join(ROOT, "tools", "ptx_check.py")


def _real_cuda(args, **kw):
    """Run ``python args`` with numba's real CUDA target (no simulator, no GPU needed)."""
    import subprocess
    import sys
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0")
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                          cwd=ROOT, timeout=600, **kw)


def test_cpu_functions_keep_exactly_the_cpu_options():
    """Every numba CPU function of kernels/ (rules included) has the CPU
    policy: fast-math is FMA contraction only, as before the CUDA retargeting."""
    import importlib

    from numba.core.registry import CPUDispatcher
    n = 0
    for name in MODULES:
        mod = importlib.import_module("npopt.kernels." + name[:-3])
        for obj in vars(mod).values():
            disps = [obj] if isinstance(obj, CPUDispatcher) else (
                [obj.serial, obj.parallel] if isinstance(obj, jit.CpuKernel) else [])
            for d in disps:
                if any(d is m for m in jit.MACHINES):
                    assert "fastmath" not in d.targetoptions, d     # none at all
                    assert d.targetoptions["error_model"] == "numpy", d
                    continue
                assert set(d.targetoptions["fastmath"]) == {"contract"}, d
                assert d.targetoptions["error_model"] == "numpy", d
                n += 1
    assert n > 100


def test_cuda_kernels_call_device_functions_without_fastmath():
    """CudaKernel.device_function(): no CPU dispatcher is left anywhere in a
    kernel's call tree; each rule is a CUDA device function with no fastmath."""
    code = r"""
import importlib, pkgutil
from numba.core.registry import CPUDispatcher
import npopt.kernels as K
from npopt.kernels._jit import CudaKernel, _global_names

def walk(fn, seen):
    for name in _global_names(fn.__code__):
        obj = fn.__globals__.get(name)
        assert not isinstance(obj, CPUDispatcher), (fn.__qualname__, name)
        opts = getattr(obj, "targetoptions", None)
        if opts is not None and opts.get("device"):
            assert not opts.get("fastmath"), (fn.__qualname__, name, opts)
            if obj.py_func not in seen:
                seen.add(obj.py_func)
                walk(obj.py_func, seen)

kernels = rules = 0
for m in pkgutil.iter_modules(K.__path__):
    mod = importlib.import_module("npopt.kernels." + m.name)
    for k in vars(mod).values():
        if isinstance(k, CudaKernel):
            fn = k.device_function()
            assert fn.__name__ == k.__name__ + "__exact"
            seen = set()
            walk(fn, seen)
            kernels += 1
            rules += len(seen)
print(kernels, rules)
"""
    out = _real_cuda(["-c", code])
    assert out.returncode == 0, out.stderr
    kernels, rules = map(int, out.stdout.split())
    assert kernels >= 60 and rules >= 60, out.stdout


def test_ptx_check_covers_every_cuda_kernel():
    """tools/ptx_check.py (run in CI) has example argument types for every
    CUDA kernel: a new kernel missing from its table fails here already."""
    out = _real_cuda([PTX_CHECK, "--no-compile"])
    assert out.returncode == 0, out.stdout + out.stderr


def test_ptx_of_kernels_with_division_pow_and_tanh_is_exact():
    """A sample of tools/ptx_check.py (the CI step compiles every kernel):
    no div.approx (adam), ex2/lg2.approx (adafactor's v ** -0.5) or
    tanh.approx (lion) in float32 on sm_80 and sm_90. Needs libNVVM
    (pip install 'numba-cuda[cu12]'), no GPU."""
    probe = _real_cuda(["-c", "from numba.cuda.cudadrv import nvvm; nvvm.NVVM()"])
    if probe.returncode != 0:
        pytest.skip("libNVVM not installed (pip install 'numba-cuda[cu12]')")
    out = _real_cuda([PTX_CHECK, "-k", "adam.adam_cuda", "-k", "factored.unfactored_cuda",
                      "-k", "sign.lion_cuda"])
    assert out.returncode == 0, out.stdout + out.stderr
    assert "OK, no approximate" in out.stdout


def test_numba_cuda_is_imported_only_when_a_device_array_appears():
    """``import npopt`` and CPU steps and solves never import numba.cuda
    (0.2-1 s); the first CUDA launch does, through ``_jit.cuda_module``."""
    code = """
import sys, numpy as np, npopt
opt = npopt.adam(1e-3)
p = {'w': np.ones(3)}
s = opt.init(p)
u, s = opt.update(p, s, p)
npopt.LBFGS(fun=lambda x: float(x @ x), maxiter=3).run(np.ones(2))
print('numba.cuda' in sys.modules)
from npopt.kernels._jit import cuda
print(repr(cuda), callable(cuda.jit), 'numba.cuda' in sys.modules)
"""
    out = _real_cuda(["-c", code])
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == [
        "False", "<numba.cuda, imported at first use> True True"], out.stdout
