"""Batched solves whose data live on a CUDA GPU: one lane per thread.

``npopt.vmap(solver.run)(x0, *args)`` (and ``solver.run_batch``) takes this
path when ``init_params`` or an argument is a CUDA device array (numba,
CuPy, torch: anything with ``__cuda_array_interface__``). Each lane runs
the solver's state machine on the device (``kernels.solver_lanes``), so a
lane's result is that of a single ``run`` on the CPU, step for step.

What it takes:

* LBFGS, BFGS, NonlinearCG, GradientDescent, ProximalGradient and
  ProjectedGradient with npopt's lasso, non-negative lasso, non-negative
  and box operators (``engine.compiled_prox``; scalar hyperparameters,
  shared or one per lane), FixedPointIteration, and in float64
  AndersonAcceleration, LevenbergMarquardt and GaussNewton (``residual_size``
  given: the lanes' buffers are sized before anything runs); flat
  params: ``init_params`` of shape (B, n) (or (n,) shared by all lanes);
* the objective as a numba function that writes its output into a buffer
  (a device function cannot allocate): ``fun(x, g, *args) -> value`` with
  ``value_and_grad=True``, or ``fun(x, *args) -> value`` with
  ``grad(x, g, *args)``; a fixed-point map ``fun(x, out, *args)``;
  residuals ``residual_fun(x, r, *args)`` and ``jac_fun(x, J, *args)``;
* per-lane arguments as arrays with the lane axis first (``in_axes`` 0),
  shared ones (``in_axes`` None) as scalars or arrays.

Data movement: the lane arrays are built on the host, copied to the device
once, and the results copied back once at the end (per-lane params and
state, as NumPy arrays); batched arguments that are host arrays are copied
once too. Nothing moves between host and device while the lanes run
(except ``st``, read back between launches when ``verbose`` shows progress).
"""
import sys
import time

import numpy as np

from .. import tree as T
from .._target import is_device_array
from ..kernels import solver_machine as K
from . import engine

CUDA_KINDS = {K.KIND_LBFGS, K.KIND_BFGS, K.KIND_CG, K.KIND_PG, K.KIND_FP, K.KIND_ANDERSON,
              K.KIND_LM, K.KIND_GN}


def has_device_data(init_params, args, kwargs):
    return any(is_device_array(leaf) for leaf in T.tree_leaves((init_params, args, kwargs)))


def _is_device_function(f):
    """A ``numba.cuda.jit(device=True)`` function (or the simulator's)."""
    if type(f).__name__ == "FakeCUDAKernel":
        return bool(getattr(f, "_device", False))
    return type(f).__name__ == "CUDADispatcher" and f.targetoptions.get("device", False)


def _objective(solver, kind):
    """(protocol, fun, gfun) of the device objective, or a clear error."""
    def numba_or_device(f):
        return engine.is_numba_function(f) or _is_device_function(f)
    if kind in (K.KIND_LM, K.KIND_GN):
        r, j = solver.residual_fun, solver.jac_fun
        if not (numba_or_device(r) and numba_or_device(j)):
            raise TypeError("residual_fun, jac_fun: CUDA lanes need numba functions (@njit or "
                            "numba.cuda.jit(device=True)) residual_fun(x, r, *args) and "
                            "jac_fun(x, J, *args) writing into r (m,) and J (m, n); finite "
                            "differences do not run on the device")
        return "residuals", r, j
    if kind in (K.KIND_FP, K.KIND_ANDERSON):
        f = solver.fixed_point_fun
        if not numba_or_device(f):
            raise TypeError("fixed_point_fun: CUDA lanes need a numba function (@njit or "
                            "numba.cuda.jit(device=True)) fun(x, out, *args) writing T(x) into "
                            f"out, got {f!r}")
        return "map", f, None
    f = solver.fun
    if not numba_or_device(f):
        raise TypeError("fun: CUDA lanes need a numba function (@njit or numba.cuda.jit("
                        "device=True)): fun(x, g, *args) -> value writing the gradient into "
                        f"g (value_and_grad=True), got {f!r}")
    if solver.value_and_grad is True:
        return "value_and_grad", f, None
    if solver.value_and_grad is False and numba_or_device(solver.grad):
        return "grad", f, solver.grad
    raise TypeError("fun: CUDA lanes need value_and_grad=True (fun(x, g, *args) -> value) or a "
                    "numba grad(x, g, *args) writing the gradient into g; finite differences "
                    "do not run on the device")


def _to_device(cuda, a, name):
    if is_device_array(a):
        return a
    a = np.asarray(a)
    if a.dtype == object:
        raise TypeError(f"{name}: CUDA lanes take arrays and scalars as arguments, got {a!r}")
    return cuda.to_device(np.ascontiguousarray(a))


def run_batch_cuda(solver, init_params, args, kwargs, in_axes, verbose, residual_size=None):
    """``run_batch`` on the device (see the module docstring). Every check
    runs before anything is copied or launched."""
    from ..kernels._jit import cuda_module
    from ..kernels.solver_lanes import lane_kernel
    name = type(solver).__name__
    kind = engine._kinds().get(type(solver))
    if kind not in CUDA_KINDS:
        raise NotImplementedError(
            f"npopt.{name}: batched runs on CUDA arrays support LBFGS, BFGS, NonlinearCG, "
            "GradientDescent, ProximalGradient, ProjectedGradient, FixedPointIteration, "
            "AndersonAcceleration, LevenbergMarquardt and GaussNewton; pass NumPy arrays to "
            "run it on the CPU")
    if kwargs:
        raise TypeError(f"npopt.{name}: CUDA lanes take positional arguments only, got "
                        f"keywords {sorted(kwargs)}")
    protocol, fun, gfun = _objective(solver, kind)
    skip = engine._hyper_args(solver)
    axes = engine._normalize_axes(in_axes, 1 + len(args))
    hyper = T.tree_map(lambda a: a.copy_to_host() if is_device_array(a) else a,
                       args[0]) if skip and args else None
    hyper_batched = bool(skip) and axes[1] is not None
    args = tuple(args)[skip:]
    axes = (axes[0],) + tuple(axes[1 + skip:])
    for k, ax in enumerate(axes):
        if ax not in (0, None):
            what = "init_params" if k == 0 else f"args[{k - 1 + skip}]"
            raise ValueError(f"in_axes: CUDA lanes take the lane axis first (0) or None, got "
                             f"{ax!r} for {what}")
    cuda = cuda_module()
    x = init_params.copy_to_host() if is_device_array(init_params) else np.asarray(init_params)
    if x.dtype not in (np.float32, np.float64) or x.ndim != (2 if axes[0] == 0 else 1):
        raise TypeError(f"init_params: CUDA lanes take flat float32/float64 params, shape "
                        f"(B, n) (in_axes 0) or (n,) (None), got {x.dtype} {x.shape}")
    if kind in (K.KIND_ANDERSON, K.KIND_LM, K.KIND_GN) and x.dtype != np.float64:
        raise TypeError(f"init_params: {name}'s lanes run in float64")
    rshape = None
    if kind in (K.KIND_LM, K.KIND_GN):
        if residual_size is None:
            raise TypeError(f"residual_size: {name} on CUDA lanes needs the number of "
                            "residuals (npopt.vmap(..., residual_size=m)): a residual_fun that "
                            "writes into a buffer cannot report it")
        rshape = (int(residual_size),)
    sizes = {} if axes[0] is None else {"init_params": x.shape[0]}
    for k, (a, ax) in enumerate(zip(args, axes[1:])):
        if ax == 0:
            shape = np.shape(a) if not is_device_array(a) else a.shape
            if len(shape) == 0:
                raise ValueError(f"args[{k + skip}]: a batched (in_axes=0) argument needs a "
                                 "lane axis, got a scalar")
            sizes[f"args[{k + skip}]"] = shape[0]
    if hyper_batched:
        for leaf in T.tree_leaves(hyper):
            if np.ndim(leaf) == 0:
                raise ValueError("args[0]: batched (in_axes=0) hyperparameters need a lane "
                                 "axis, got a scalar")
            sizes["args[0]"] = np.shape(leaf)[0]
    if not sizes:
        raise ValueError("in_axes: nothing is batched (every in_axes entry is None)")
    if len(set(sizes.values())) > 1:
        raise ValueError(f"in_axes: the batched arguments have different lane counts: {sizes}")
    B = next(iter(sizes.values()))
    x0 = np.ascontiguousarray(np.broadcast_to(x, (B, x.shape[-1])))
    seg = np.array([0, x0.shape[1]], np.int64)
    mach = engine.Machine(solver, x0, seg, x0.dtype, residual_shape=rshape)
    if not engine._prox_on_machine(solver, mach, hyper, hyper_batched):
        raise NotImplementedError(
            f"npopt.{name}: CUDA lanes run npopt's prox_lasso, prox_non_negative_lasso, "
            "projection_non_negative and projection_box with scalar hyperparameters (one "
            "per lane or shared); pass NumPy arrays to run other operators on the CPU")

    dev_args = tuple(_to_device(cuda, a, f"args[{k + skip}]") if (ax == 0 or np.ndim(a) > 0)
                     else a for k, (a, ax) in enumerate(zip(args, axes[1:])))
    shared = [ax is None for ax in axes[1:]]
    kernel = lane_kernel(kind, protocol, shared, fun, gfun)
    names = ("vec", "hist", "fs", "st", "hp", "ip", "seg", "part")
    dev = {k: cuda.to_device(getattr(mach, k)) for k in names}
    budget = 64 if verbose else engine._NO_BUDGET
    t0 = last = time.perf_counter()
    while True:
        kernel(B, *[dev[k] for k in names], budget, *dev_args)
        if not verbose:
            break
        st = dev["st"].copy_to_host()
        done = int(np.count_nonzero(st[:, K.I_PHASE] == K.PH_DONE))
        now = time.perf_counter()
        if now - last >= engine.PROGRESS_SECONDS or done == B:
            last = now
            print(f"INFO: npopt.{name} CUDA batch: {done}/{B} lanes finished, "
                  f"{st[:, K.I_RUN_ITERS].sum() / (now - t0):.0f} iterations/s",
                  file=sys.stderr, flush=True)
        if done == B:
            break
    for k in ("vec", "hist", "fs", "st"):
        setattr(mach, k, dev[k].copy_to_host())
    n = x0.shape[1]

    def unravel(flat, lead=None):
        return np.ascontiguousarray(flat).reshape(((flat.shape[0],) if lead is None else lead)
                                                  + (n,))
    params, state = mach.states(unravel, x0.dtype)
    return engine.BatchResult(params, state, mach.status())
