#!/usr/bin/env python
"""CI check (SPEC section 6): no CUDA kernel of npopt compiles to approximate
arithmetic on real hardware.

Every CUDA kernel of the package (every ``CudaKernel`` reachable from the
``npopt`` modules, i.e. every ``@cuda_kernel`` in ``kernels/``) is compiled
with ``numba.cuda.compile_ptx``, exactly as ``CudaKernel`` compiles it for a
launch (``CudaKernel.device_function()``: the kernel with its scalar rules
retargeted to CUDA device functions without fast-math), for compute
capabilities 8.0 and 9.0, in float32 and float64 (and the mixed-dtype
launches that occur, e.g. float64 params with a float32 ``mu``). No GPU and
no simulator are needed: libNVVM comes from NVIDIA's pip wheels
(``pip install "numba-cuda[cu12]"``). Run it as::

    python tools/ptx_check.py          # exit 0: clean; 1: problems listed
    python tools/ptx_check.py -v -k adam   # some kernels, every compilation shown

The PTX rule. Fast-math reaches PTX in two ways, both errors here:

* as LLVM fast-math flags on the instructions of a function compiled with a
  fast-math set (what an ``njit(fastmath={'contract'})`` rule becomes when
  numba-cuda compiles it into a kernel): NVVM then selects approximate
  instructions, ``div.approx.f32``, ``ex2.approx.f32`` + ``lg2.approx.f32``
  (``powf``), ``tanh.approx.f32``, ``sin/cos.approx.f32``... -- 21 npopt
  kernels had them in float32 before kernels/_jit.py compiled rules as
  device functions without fast-math;
* as NVVM options (``fastmath=True`` on a kernel: ``ftz=1, prec_div=0,
  prec_sqrt=0``): ``div.approx``/``div.full``, ``sqrt.approx``, and
  flush-to-zero on ordinary float32 instructions (``add.ftz.f32``,
  ``mul.ftz.f32``, ``fma.rn.ftz.f32``, ``setp.lt.ftz.f32``,
  ``cvt.ftz.f64.f32``...: subnormals flushed to zero, which the CPU never
  does).

So every instruction with ``.approx`` or ``.ftz``, and ``div.full``, is
flagged, except four seeds that libdevice's *precise* routines use
internally and that appear without any fast-math (``ALLOWED``):
``rcp.approx.ftz.f64`` (the start of the Newton-Raphson iterations of a
correctly rounded float64 division, and of float64 ``log``/``pow``),
``rsqrt.approx.ftz.f64`` (float64 ``hypot``), ``ex2.approx.ftz.f32`` and
``rcp.approx.ftz.f32`` (inside the non-fast ``expf``/``tanhf``/``powf``,
which stay within CUDA's documented ulp bounds). Plain ``a / b`` and
``math.sqrt`` compile to ``div.rn``/``sqrt.rn`` with no approximate
instruction at all. The fast forms of the same operations differ from the
seeds (no ``.ftz`` in the first case; ``.ftz`` arithmetic around them in the
second), so the exemption lets no fast-math build through. A self-test runs
first: precise reference code passes, the fast-math builds of it and a
kernel calling an ``njit(fastmath={'contract'})`` function fail.

New kernels cannot be skipped: the example argument types of every kernel
are listed in ``SIGNATURES`` below (they are the types the launches have,
recorded from the CUDA tests under the simulator), and the check fails if a
kernel exists that the table does not list, if the table lists a kernel that
no longer exists, or if ``cuda.jit`` is used anywhere in ``npopt``/``kernels``
other than ``kernels/_jit.py``. A compile error is a failure too.
"""
import argparse
import ast
import gc
import importlib
import os
import pkgutil
import re
import sys
import time

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "0")
if os.environ["NUMBA_ENABLE_CUDASIM"] not in ("", "0"):
    sys.exit("ptx_check: unset NUMBA_ENABLE_CUDASIM (the check compiles real PTX)")

from numba import types  # noqa: E402
from numba.types import Tuple, UniTuple  # noqa: E402
from numba.types import boolean as b1, float32 as f4, float64 as f8, int64 as i8  # noqa: E402

CCS = ((8, 0), (9, 0))
DTYPES = (f4, f8)

# Approximate instructions libdevice's precise (non-fast) routines use as
# seeds; see the module docstring.
ALLOWED = frozenset({"rcp.approx.ftz.f64", "rsqrt.approx.ftz.f64",
                     "ex2.approx.ftz.f32", "rcp.approx.ftz.f32"})


def V(t):
    """A 1-D contiguous array of t."""
    return types.Array(t, 1, "C")


def M(t):
    """A 2-D C-contiguous array of t."""
    return types.Array(t, 2, "C")


def U(t, n):
    return UniTuple(t, n)


POST = lambda F: U(F, 2)   # noqa: E731  apply.finish's (neg_lr, weight_decay)

# kernel (module.name, module relative to npopt.kernels) -> the argument
# types of a launch, as a function of the float dtype F (compiled for F =
# float32 and float64). Integer index arrays are int64, flags bool.
SIGNATURES = {
    "adadelta.adadelta_cuda": lambda F: (V(F), V(F), V(F), V(F), U(F, 4), b1, POST(F), b1),
    "adam.adam_cuda": lambda F: (V(F), V(F), V(F), V(F), U(F, 10), b1, POST(F), b1),
    "adam_variants.adamax_cuda": lambda F: (V(F), V(F), V(F), V(F), U(F, 5), POST(F), b1),
    "adam_variants.adan_cuda": lambda F: (V(F),) * 6 + (U(F, 14), POST(F), b1),
    "adam_variants.amsgrad_cuda": lambda F: (V(F),) * 5 + (U(F, 8), POST(F), b1),
    "adam_variants.belief_cuda": lambda F: (V(F),) * 4 + (U(F, 9), b1, POST(F), b1),
    "adam_variants.radam_cuda": lambda F: (V(F),) * 4 + (U(F, 12), b1, POST(F), b1),
    "adam_variants.yogi_cuda": lambda F: (V(F),) * 4 + (U(F, 9), POST(F), b1),
    "apply.add_decayed_weights_cuda": lambda F: (V(F), V(F), V(F), F),
    "apply.apply_updates_cuda": lambda F: (V(F), V(F), V(F)),
    "apply.scale_cuda": lambda F: (V(F), V(F), F),
    "apply.step_cuda": lambda F: (V(F), V(F), POST(F)),
    "clip.clip_cuda": lambda F: (V(F), V(F), F, F),
    "clip.segment_div_mul_cuda": lambda F: (V(F), V(F), M(i8), V(i8), V(F), V(F)),
    "dadapt_adamw.dadapt_accumulate_cuda": lambda F: (V(F),) * 4 + (M(i8), U(F, 7), F, M(F)),
    "dadapt_adamw.dadapt_apply_cuda": lambda F: (V(F), V(F), V(F), V(F), U(F, 2), b1),
    "dog.diff_sumsq_cuda": lambda F: (V(F), V(F), M(i8), F, M(F)),
    "ema.ema_cuda": lambda F: (V(F), V(F), V(F), U(F, 3), b1, POST(F), b1),
    "factored.adafactor_tail_cuda": lambda F: (V(F), V(F), V(F), M(i8), V(i8), M(F), U(F, 2),
                                               U(F, 3), b1),
    "factored.apply_cuda": lambda F: (V(F), M(i8), V(F), V(F), V(F), POST(F), b1),
    "factored.block_moments_cuda": lambda F: (V(F), M(i8), V(F), V(F), V(F), U(F, 6)),
    "factored.col_factors_cuda": lambda F: (V(F), V(F), U(F, 6)),
    "factored.line_moments_cuda": lambda F: (V(F), M(i8), V(F), V(F), U(F, 6)),
    "factored.row_factors_cuda": lambda F: (V(F), M(i8), V(F), V(F), U(F, 6)),
    "factored.unfactored_cuda": lambda F: (V(F), V(F), V(F), U(F, 6), POST(F), b1),
    "isotonic.pav_cuda": lambda F: (M(F), M(F), M(f8), M(f8), M(f8), M(i8), F, F, F),
    "lbfgs.axpy_cuda": lambda F: (V(F), F, V(F), V(F)),
    "lbfgs.cast_cuda": lambda F: (V(f8), V(F)),
    "lbfgs.dot_chunks_cuda": lambda F: (V(F), V(F), F, V(F)),
    "lbfgs.dot_cuda": lambda F: (V(F), M(i8), V(F), f8, V(f8)),
    "lbfgs.pair_cuda": lambda F: (V(F), M(i8)) + (V(F),) * 5 + (i8, b1, F, f8)
                                 + (V(F),) * 3 + (M(f8),),
    "lbfgs.scale_cuda": lambda F: (V(F), F, V(F)),
    "lbfgs.trial_cuda": lambda F: (V(F), V(F), f8, V(f8)),
    "lbfgs.two_loop_segments_cuda": lambda F: (V(F), M(i8), f8, V(F), i8, F, V(F), i8, f8,
                                               V(f8)),
    "lion.lion_cuda": lambda F: (V(F), V(F), V(F), U(F, 6), i8, POST(F), b1),
    "mechanic.mechanic_apply_cuda": lambda F: (V(F), V(F), V(F), V(F), F, F),
    "mechanic.mechanic_h_cuda": lambda F: (V(F), V(F), V(F), M(i8), F, F, F, M(F)),
    "momo.momo_accumulate_cuda": lambda F: (V(F), V(F), V(F), M(i8), U(F, 2), F, M(F)),
    "momo.momo_adam_accumulate_cuda": lambda F: (V(F),) * 4 + (M(i8), U(F, 6), F, M(F)),
    "momo.momo_adam_apply_cuda": lambda F: (V(F), V(F), V(F), V(F), U(F, 4), b1),
    "momo.momo_apply_cuda": lambda F: (V(F), V(F), V(F), F, F, b1),
    "noise.noise_cuda": lambda F: (V(F), V(F), V(F), U(F, 1), POST(F), b1),
    "novograd.novograd_cuda": lambda F: (V(F), V(F), V(F), V(F), M(i8), V(i8), V(F), V(F),
                                         U(F, 3), b1, b1),
    "novograd.novograd_leaves_cuda": lambda F: (V(F), V(F), V(F), U(F, 5), b1),
    "optimistic.optimistic_adam_cuda": lambda F: (V(F),) * 5 + (U(F, 10), b1, U(F, 2), b1,
                                                                POST(F), b1),
    "optimistic.optimistic_cuda": lambda F: (V(F), V(F), V(F), U(F, 2), b1, POST(F), b1),
    "polyak.polyak_apply_cuda": lambda F: (V(F), V(F), F, F),
    "polyak.scaled_chunk_sumsq_cuda": lambda F: (V(F), M(i8), F, F, M(F)),
    "prodigy.prodigy_accumulate_cuda": lambda F: (V(F),) * 6 + (M(i8), U(F, 8), F, M(F)),
    "prodigy.prodigy_apply_cuda": lambda F: (V(F), V(F), V(F), V(F), U(F, 3), b1),
    "projection.box_array_cuda": lambda F: (V(F), V(F), V(F), V(F)),
    "projection.box_cuda": lambda F: (V(F), V(F), F, F),
    "projection.non_negative_cuda": lambda F: (V(F), V(F), F),
    "prox.elastic_net_array_cuda": lambda F: (V(F), V(F), V(F), V(F), F, F, F),
    "prox.elastic_net_cuda": lambda F: (V(F), V(F), F, F, F),
    "prox.lasso_array_cuda": lambda F: (V(F), V(F), V(F), F, F),
    "prox.lasso_cuda": lambda F: (V(F), V(F), F, F),
    "prox.non_negative_lasso_array_cuda": lambda F: (V(F), V(F), V(F), F, F),
    "prox.non_negative_lasso_cuda": lambda F: (V(F), V(F), F, F),
    "prox.relu_scale_cuda": lambda F: (V(F), V(F), F, F),
    "prox.scale_cuda": lambda F: (V(F), V(F), F),
    "prox.sumsq_chunks_cuda": lambda F: (V(F), F, V(F)),
    "reduce.chunk_sumsq_cuda": lambda F: (V(F), V(F), M(i8), F, M(F)),
    "rms.rms_cuda": lambda F: (V(F), V(F), V(F), U(F, 5), b1, POST(F), b1),
    "rms.rss_cuda": lambda F: (V(F), V(F), V(F), U(F, 3), POST(F), b1),
    "rms.stddev_cuda": lambda F: (V(F), V(F), V(F), V(F), U(F, 5), b1, POST(F), b1),
    "rprop.rprop_cuda": lambda F: (V(F), V(F), V(F), V(F), U(F, 6), POST(F), b1),
    "sgd.trace_cuda": lambda F: (V(F), V(F), V(F), U(F, 1), b1, POST(F), b1),
    "sign.sign_cuda": lambda F: (V(F), V(F), U(F, 1), POST(F), b1),
    "sm3.combine_max_cuda": lambda F: (V(F), V(F)),
    "sm3.fill_cuda": lambda F: (V(F), F),
    "sm3.sm3_cuda": lambda F: (V(F),) * 5 + (V(i8), M(i8), V(i8), M(i8), V(i8), V(i8),
                                             U(F, 7), b1, F, V(F), b1),
    "trust_ratio.scale_segments_apply_cuda": lambda F: (V(F), M(i8), V(F), V(F), F),
    "trust_ratio.scale_segments_cuda": lambda F: (V(F), M(i8), V(F), V(F)),
    # optax.contrib's elementwise rules (npopt.contrib)
    "acprop.acprop_cuda": lambda F: (V(F),) * 4 + (U(F, 9), POST(F), b1),
    "ademamix.ademamix_cuda": lambda F: (V(F),) * 5 + (U(F, 11), POST(F), b1),
    "ademamix.simplified_ademamix_cuda": lambda F: (V(F),) * 4 + (U(F, 6), POST(F), b1),
    "adopt.adopt_cuda": lambda F: (V(F),) * 4 + (U(F, 7), b1, b1, POST(F), b1),
    "cocob.cocob_cuda": lambda F: (V(F),) * 8 + (U(F, 2), U(F, 2), b1),
    "madgrad.madgrad_cuda": lambda F: (V(F),) * 6 + (U(F, 6), b1),
    "schedule_free.schedule_free_cuda": lambda F: (V(F),) * 4 + (U(F, 4), b1),
}

# Launches that mix dtypes (float64 params with a float32 first moment:
# mu_dtype / accumulator_dtype), compiled once each, besides the above.
MIXED = {
    "adam.adam_cuda": (V(f8), V(f4), V(f8), V(f8), Tuple((f8,) * 9 + (f4,)), b1, POST(f8), b1),
    "adam_variants.amsgrad_cuda": (V(f8), V(f4), V(f8), V(f8), V(f8),
                                   Tuple((f8, f4) + (f8,) * 6), POST(f8), b1),
    "ema.ema_cuda": (V(f8), V(f4), V(f8), Tuple((f8, f4, f8)), b1, POST(f8), b1),
    "factored.adafactor_tail_cuda": (V(f8), V(f8), V(f4), M(i8), V(i8), M(f8), U(f8, 2),
                                     Tuple((f8, f4, f8)), b1),
    "adopt.adopt_cuda": (V(f8), V(f4), V(f8), V(f8), Tuple((f8,) * 5 + (f4, f8)), b1, b1,
                         POST(f8), b1),
    # z in float64 (state_dtype) for float32 params
    "schedule_free.schedule_free_cuda": (V(f4), V(f8), V(f4), V(f8), U(f8, 4), b1),
}

# Launches on complex params (complex64 arrays, float32 hyperparameters and
# norms: kernels/complex.py), compiled once each, besides the above; only the
# kernels that take complex buffers.
C, R = types.complex64, f4
COMPLEX = {
    "adam.adam_cuda": (V(C), V(C), V(C), V(C), U(R, 10), b1, POST(R), b1),
    "adam_variants.adamax_cuda": (V(C), V(C), V(C), V(C), U(R, 5), POST(R), b1),
    "adam_variants.amsgrad_cuda": (V(C),) * 5 + (U(R, 8), POST(R), b1),
    "adam_variants.belief_cuda": (V(C),) * 4 + (U(R, 9), b1, POST(R), b1),
    "adam_variants.radam_cuda": (V(C),) * 4 + (U(R, 12), b1, POST(R), b1),
    "adam_variants.yogi_cuda": (V(C),) * 4 + (U(R, 9), POST(R), b1),
    "apply.add_decayed_weights_cuda": (V(C), V(C), V(C), R),
    "apply.apply_updates_cuda": (V(C), V(C), V(C)),
    "apply.scale_cuda": (V(C), V(C), R),
    "apply.step_cuda": (V(C), V(C), POST(R)),
    "clip.segment_div_mul_cuda": (V(C), V(C), M(i8), V(i8), V(R), V(R)),
    "ema.ema_cuda": (V(C), V(C), V(C), U(R, 3), b1, POST(R), b1),
    "factored.apply_cuda": (V(C), M(i8), V(R), V(R), V(C), POST(R), b1),
    "factored.block_moments_cuda": (V(C), M(i8), V(R), V(C), V(R), U(R, 6)),
    "factored.col_factors_cuda": (V(C), V(R), U(R, 6)),
    "factored.line_moments_cuda": (V(C), M(i8), V(R), V(C), U(R, 6)),
    "factored.row_factors_cuda": (V(C), M(i8), V(R), V(R), U(R, 6)),
    "factored.unfactored_cuda": (V(C), V(C), V(C), U(R, 6), POST(R), b1),
    "novograd.novograd_cuda": (V(C), V(C), V(C), V(C), M(i8), V(i8), V(R), V(R), U(R, 3), b1,
                               b1),
    "novograd.novograd_leaves_cuda": (V(R), V(C), V(R), U(R, 5), b1),
    "optimistic.optimistic_cuda": (V(C), V(C), V(C), U(R, 2), b1, POST(R), b1),
    "reduce.chunk_sumsq_cuda": (V(C), V(C), M(i8), R, M(R)),
    "rms.rms_cuda": (V(C), V(C), V(C), U(R, 5), b1, POST(R), b1),
    "rms.rss_cuda": (V(C), V(C), V(C), U(R, 3), POST(R), b1),
    "rms.stddev_cuda": (V(C), V(C), V(C), V(C), U(R, 5), b1, POST(R), b1),
    "sgd.trace_cuda": (V(C), V(C), V(C), U(R, 1), b1, POST(R), b1),
    "trust_ratio.scale_segments_cuda": (V(C), M(i8), V(R), V(C)),
}

_OPCODE = re.compile(r"^\s*(?:@!?%\w+\s+)?([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*)", re.M)


def violations(ptx):
    """The forbidden instructions of a PTX text (sorted, unique)."""
    bad = set()
    for op in _OPCODE.findall(ptx):
        if op in ALLOWED:
            continue
        if ".approx" in op or ".ftz" in op or op.startswith("div.full"):
            bad.add(op)
    return sorted(bad)


def _root():
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def find_kernels():
    """{name: CudaKernel} for every CUDA kernel in the npopt modules."""
    import npopt
    from npopt.kernels._jit import CudaKernel
    errors = []
    for mod in pkgutil.walk_packages(npopt.__path__, "npopt."):
        if mod.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(mod.name)
        except Exception as e:  # a module we cannot import may hide kernels
            errors.append(f"cannot import {mod.name}: {type(e).__name__}: {e}")
    found = {}
    for obj in gc.get_objects():
        if isinstance(obj, CudaKernel):
            fn = obj.py_func
            name = fn.__module__.removeprefix("npopt.kernels.") + "." + fn.__qualname__
            found[name] = obj
    return found, errors


def direct_cuda_jit_uses():
    """'file:line' of every cuda.jit use outside kernels/_jit.py."""
    root = _root()
    files = set()
    for sub in ("npopt", "kernels"):
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, sub)):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            files.update(os.path.realpath(os.path.join(dirpath, f))
                         for f in filenames if f.endswith(".py"))
    jit_file = os.path.realpath(os.path.join(root, "kernels", "_jit.py"))
    uses = []
    for path in sorted(files - {jit_file}):
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            hit = (isinstance(node, ast.Attribute) and node.attr == "jit"
                   and ast.unparse(node.value) in ("cuda", "numba.cuda")) or (
                isinstance(node, ast.ImportFrom) and (node.module or "").startswith("numba.cuda")
                and any(a.name == "jit" for a in node.names))
            if hit:
                uses.append(f"{os.path.relpath(path, root)}:{node.lineno}")
    return uses


class _Device:
    """Stands for the GPU this machine lacks: numba-cuda compiles the device
    functions a kernel calls for ``get_current_device().compute_capability``
    even inside ``compile_ptx(..., cc=cc)``, which would need a driver."""

    def __init__(self, cc):
        self.compute_capability = cc


def compile_ptx(kernel, argtypes, cc):
    """The PTX of ``kernel`` for ``argtypes`` on compute capability ``cc``,
    compiled as ``CudaKernel`` compiles it (device functions made afresh, so
    that each is compiled for ``cc`` too)."""
    from numba import cuda
    from numba.cuda import dispatcher

    fn = kernel.device_function()
    saved = dispatcher.get_current_device
    dispatcher.get_current_device = lambda: _Device(cc)
    try:
        return cuda.compile_ptx(fn, argtypes, cc=cc)[0]
    finally:
        dispatcher.get_current_device = saved


def launches(name):
    """[(label, argtypes)] to compile for kernel ``name``."""
    out = [(str(F), SIGNATURES[name](F)) for F in DTYPES]
    if name in MIXED:
        out.append(("mixed:" + ",".join(str(t) for t in MIXED[name]), MIXED[name]))
    if name in COMPLEX:
        out.append(("complex64", COMPLEX[name]))
    return out


def self_test():
    """The rule on reference code: precise arithmetic passes; fast-math, and
    the leak this check exists for (a kernel calling an njit function with
    fastmath={'contract'}), fail. Prints what went wrong; returns success."""
    import math

    from numba import cuda, njit
    from numba.cuda import dispatcher

    def plain(a, b):
        return a / b + math.sqrt(a) * b

    def transcendental(a, b):
        return math.exp(a) + math.tanh(b) + a ** b + math.log(b)

    leaky_rule = njit(fastmath={"contract"})(plain)

    def leaky(x):
        x[0] = leaky_rule(x[0], x[1])

    ok = True
    for F in DTYPES:
        for cc in CCS:
            for fn in (plain, transcendental):
                bad = violations(cuda.compile_ptx(fn, (F, F), device=True, cc=cc)[0])
                if bad:
                    ok = False
                    print(f"self-test: {fn.__name__} {F} sm_{cc[0]}{cc[1]} flagged: {bad}")
    for cc in CCS:
        for fn in (plain, transcendental):
            ptx = cuda.compile_ptx(fn, (f4, f4), device=True, cc=cc, fastmath=True)[0]
            if not violations(ptx):
                ok = False
                print(f"self-test: fastmath {fn.__name__} sm_{cc[0]}{cc[1]} not caught")
        saved = dispatcher.get_current_device
        dispatcher.get_current_device = lambda: _Device(cc)
        try:
            ptx = cuda.compile_ptx(leaky, (V(f4),), cc=cc)[0]
        finally:
            dispatcher.get_current_device = saved
        if not violations(ptx):
            ok = False
            print(f"self-test: a fastmath={{'contract'}} njit rule sm_{cc[0]}{cc[1]} not caught")
    ptx = cuda.compile_ptx(plain, (f4, f4), device=True, cc=CCS[0])[0]
    if "div.rn.f32" not in ptx or "sqrt.rn.f32" not in ptx:
        ok = False
        print("self-test: float32 a / b, sqrt(a) no longer compile to div.rn / sqrt.rn")
    return ok


def check(label, kernel, argtypes, cc, verbose):
    """Compile one launch to PTX: [problems] (compile error, approximate ops)."""
    where = f"{label} sm_{cc[0]}{cc[1]}"
    t = time.perf_counter()
    try:
        ptx = compile_ptx(kernel, argtypes, cc)
    except Exception as e:
        msg = str(e).strip().splitlines()
        return [f"{where}: compile error: {type(e).__name__}: {msg[0] if msg else ''}"]
    bad = violations(ptx)
    if verbose:
        print(f"{where}: {' '.join(bad) or 'ok'} ({time.perf_counter() - t:.2f} s)")
    return [f"{where}: {op}" for op in bad]


def lane_launches():
    """[(label, kernel, argtypes)]: the solver lane kernels (generated per
    kind and objective, ``kernels/solver_lanes.py``), with npopt's example
    device objectives: every machine family, float32 and float64."""
    from npopt.examples import problems as P
    from npopt.kernels import solver_machine as K
    from npopt.kernels.solver_lanes import lane_kernel

    def A(t, nd):
        return types.Array(t, nd, "C")

    def machine(F):
        return (A(F, 3), A(F, 4), A(F, 2), A(i8, 2), V(F), V(i8), V(i8), A(F, 3), i8)
    ridge = (A(f8, 3), A(f8, 2), f8)        # X, y per lane; lam shared
    kepler = (A(f8, 2), f8)                 # M per lane; e shared
    curve = (V(f8), A(f8, 2))               # t shared, y per lane
    # (a lane kernel holds a whole solver: 4-80 s per compilation, so each is
    # compiled for one compute capability, the largest for both)
    cases = [("qn", K.KIND_LBFGS, "value_and_grad", P.ridge_into, ridge, f8, CCS),
             ("qn", K.KIND_LBFGS, "value_and_grad", P.logistic_into, ridge, f4, CCS[:1]),
             ("pg", K.KIND_PG, "value_and_grad", P.ridge_into, ridge, f4, CCS[:1]),
             ("fp", K.KIND_FP, "map", P.kepler_into, kepler, f4, CCS[:1]),
             ("anderson", K.KIND_ANDERSON, "map", P.kepler_into, kepler, f8, CCS[:1]),
             ("lm", K.KIND_LM, "residuals", P.double_exponential_into, curve, f8, CCS[:1]),
             ("gn", K.KIND_GN, "residuals", P.double_exponential_into, curve, f8, CCS[:1])]
    out = []
    jac = {P.double_exponential_into: P.double_exponential_jac_into}
    for family, kind, protocol, fun, argtypes, F, ccs in cases:
        shared = [True, False] if protocol == "residuals" else \
            [False] * (len(argtypes) - 1) + [True]
        kernel = lane_kernel(kind, protocol, shared, fun, jac.get(fun))
        out.append((f"solver_lanes.{family}:{fun.__name__} [{F}]", kernel,
                    machine(F) + argtypes, ccs))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-k", action="append", default=[],
                    help="only kernels whose name contains this (repeatable)")
    ap.add_argument("-v", action="store_true", help="print every compilation")
    ap.add_argument("--no-compile", action="store_true",
                    help="only check that the table covers every kernel (no libNVVM needed)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()

    # 1. Every kernel is in the table, and the table holds nothing else.
    found, failures = find_kernels()
    for use in direct_cuda_jit_uses():
        failures.append(f"{use}: cuda.jit used directly; compile kernels through "
                        "kernels/_jit.py (cuda_kernel) so that this check sees them")
    for name in sorted(set(found) - set(SIGNATURES)):
        failures.append(f"{name}: a CUDA kernel with no example signature; add it to "
                        "SIGNATURES in tools/ptx_check.py")
    for name in sorted(set(SIGNATURES) - set(found)):
        failures.append(f"{name}: listed in SIGNATURES but no such kernel exists")
    for name in sorted((set(MIXED) | set(COMPLEX)) - set(SIGNATURES)):
        failures.append(f"{name}: listed in MIXED or COMPLEX but not in SIGNATURES")
    print(f"ptx_check: {len(found)} CUDA kernels found, {len(SIGNATURES)} in the table")

    # 2. The rule itself, then every kernel x launch x compute capability.
    names = [] if args.no_compile else sorted(
        n for n in set(found) & set(SIGNATURES) if not args.k or any(k in n for k in args.k))
    if names and not self_test():
        failures.append("self-test of the PTX rule failed (see above)")
    count = 0
    for name in names:
        for label, argtypes in launches(name):
            for cc in CCS:
                count += 1
                failures += check(f"{name} [{label}]", found[name], argtypes, cc, args.v)
    # 3. The solver lane kernels (generated, so not in the table above).
    lanes = [] if args.no_compile else [
        c for c in lane_launches() if not args.k or any(k in c[0] for k in args.k)]
    for label, kernel, argtypes, ccs in lanes:
        for cc in ccs:
            failures += check(label, kernel, argtypes, cc, args.v)
    if lanes:
        print(f"ptx_check: {sum(len(c[3]) for c in lanes)} compilations of "
              f"{len(lanes)} solver lane kernels")
    if names:
        print(f"ptx_check: {len(names)} kernels, {sum(len(launches(n)) for n in names)} "
              f"kernel x dtype launches, x {len(CCS)} compute capabilities = {count} PTX "
              "compilations")
    print(f"ptx_check: {time.perf_counter() - t0:.1f} s")
    if failures:
        print(f"ptx_check: FAILED, {len(failures)} problem(s):")
        for f in failures:
            print("  " + f)
        return 1
    print("ptx_check: OK" + ("" if not names else
                             ", no approximate or flush-to-zero instruction"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
