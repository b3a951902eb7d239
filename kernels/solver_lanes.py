"""Batched solves on a CUDA GPU: one lane per thread, each running the CPU's
state machine (``solver_machine``) to its own end.

A kernel is generated per solver kind, objective and argument layout::

    for i in range(cuda.grid(1), B, cuda.gridsize(1)):     # lane i
        if lane i is done: continue
        task = advance_<kind>(lane i's arrays, hp, ip, seg)
        while task != TASK_DONE:
            <the request, evaluated by the user's device objective>
            task = advance_<kind>(...)

so a lane's numbers are those of a single run on the CPU, step for step
(the device functions are compiled from the same Python source, without
fast-math; see ``_jit``), up to the GPU's own rounding of library functions
(``sqrt`` is correctly rounded on both; ``pow``, used only by
LevenbergMarquardt's damping update, is not).

The objective runs on the device, so it writes its output into a buffer
instead of returning an array (a device function cannot allocate):

* value and gradient: ``fun(x, g, *args) -> value`` (writes grad f(x) into g);
  or ``fun(x, *args) -> value`` with ``grad(x, g, *args)``;
* fixed-point map: ``fun(x, out, *args)`` (writes T(x) into out);
* residuals (LevenbergMarquardt, GaussNewton): ``residual_fun(x, r, *args)``
  and ``jac_fun(x, J, *args)`` (J: (m, n)), writing into the lane's buffer.

``fun`` is an ``@njit`` function (compiled for the GPU from its Python
source, as npopt's own rules are) or a ``numba.cuda.jit(device=True)``
function. A lane's arguments are ``a[i]`` for a batched array argument
(lane axis first) and the value itself for a shared one.
"""
from ._jit import CPUDispatcher, CudaKernel, _simulated
from .solver_machine import (ADVANCE, F_TRIAL, GT, I_PHASE, P_M_RES, PH_DONE, TASK_DONE,
                             TASK_EVAL, TASK_PROX, TASK_RESID, XT, _copy, _lm_slots, apply_prox)

# What the kernel does with a request, by objective protocol.
_EVALUATE = {
    "value_and_grad": ["fs[i, F_TRIAL] = fun(vec[i, XT], vec[i, GT]{args})"],
    "grad": ["fs[i, F_TRIAL] = fun(vec[i, XT]{args})",
             "if task == TASK_EVAL:",
             "    gfun(vec[i, XT], vec[i, GT]{args})"],
    "map": ["fun(vec[i, XT], vec[i, GT]{args})",
            "_copy(vec[i, XT], vec[i, GT])"],
    "residuals": ["m = ip[P_M_RES]",            # LM and GN: r(x) or J(x) into the lane's buffer
                  "n = vec.shape[2]",
                  "r0, rn, j0, jt0, jtj0, f0, ft0, end = lm_slots(m, n)",
                  "if task == TASK_RESID:",
                  "    fun(vec[i, XT], hist[i, 0, 0, rn:rn + m]{args})",
                  "else:",
                  "    gfun(vec[i, XT], hist[i, 0, 0, j0:j0 + m * n].reshape((m, n)){args})"],
}

_TEMPLATE = """
def lanes(vec, hist, fs, st, hp, ip, seg, part, budget{params}):
    for i in range(cuda.grid(1), vec.shape[0], cuda.gridsize(1)):
        if st[i, I_PHASE] == PH_DONE:
            continue
        task = advance(vec[i], hist[i], fs[i], st[i], hp, ip, seg, part[i])
        evals = 0
        while task != TASK_DONE:
            if task == TASK_PROX:
                apply_prox(vec[i], fs[i], st[i], ip)
            else:
                {evaluate}
            evals += 1
            if evals >= budget:
                break
            task = advance(vec[i], hist[i], fs[i], st[i], hp, ip, seg, part[i])
"""

LANE_BLOCK = 32     # threads per block: a lane is a long, register-heavy loop

_KERNELS = {}


def _host(a):
    # the simulator's device arrays wrap a NumPy array
    return getattr(a, "_ary", a)


def _on_host(fn):
    """Under the simulator: ``fn`` (a CPU numba function) called on the
    arrays that the simulated device arrays wrap."""
    def call(*args):
        return fn(*[_host(a) for a in args])
    return call


def lane_kernel(kind, protocol, shared, fun, gfun=None):
    """The CUDA kernel running lanes of solver kind ``kind`` with objective
    ``fun`` (and ``gfun``) under ``protocol`` (a key of ``_EVALUATE``);
    ``shared[k]`` says whether argument k is the same for every lane.
    Launch: ``kernel(B, vec, hist, fs, st, hp, ip, seg, part, budget, *args)``
    with ``budget`` evaluations per lane at most (call again to go on)."""
    key = (kind, protocol, tuple(shared), fun, gfun, _simulated())
    kernel = _KERNELS.get(key)
    if kernel is not None:
        return kernel
    params = "".join(f", a{k}" for k in range(len(shared)))
    args = "".join(f", a{k}" if s else f", a{k}[i]" for k, s in enumerate(shared))
    evaluate = "\n                ".join(_EVALUATE[protocol]).format(args=args)
    src = _TEMPLATE.format(params=params, evaluate=evaluate)
    calls = {"advance": ADVANCE[kind], "fun": fun, "gfun": gfun, "_copy": _copy,
             "apply_prox": apply_prox, "lm_slots": _lm_slots}
    if _simulated():
        calls = {k: _on_host(f) if isinstance(f, CPUDispatcher) else f
                 for k, f in calls.items()}
    from ._jit import cuda
    namespace = dict(cuda=cuda, F_TRIAL=F_TRIAL, GT=GT, I_PHASE=I_PHASE, PH_DONE=PH_DONE,
                     TASK_DONE=TASK_DONE, TASK_EVAL=TASK_EVAL, TASK_PROX=TASK_PROX, XT=XT,
                     TASK_RESID=TASK_RESID, P_M_RES=P_M_RES, **calls)
    exec(compile(src, f"<npopt lane kernel {kind} {protocol}>", "exec"), namespace)
    kernel = _KERNELS[key] = CudaKernel(namespace["lanes"], block_size=LANE_BLOCK, cache=False)
    return kernel
