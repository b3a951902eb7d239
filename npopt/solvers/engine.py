"""The solver engine: compiled state machines and their three drivers.

A solver whose iteration is written as a state machine
(``npopt.kernels.solver_machine``: see ``_kinds_table``) keeps all it knows in flat arrays
with a leading lane axis, and returns to its caller whenever it needs the
objective at a new point. This module owns those arrays (``Machine``) and
drives them:

1. **Python driver** (``run_python``): ``solver.run`` with a Python ``fun``;
   the loop calls ``fun`` and the compiled machine, nothing else.
2. **Compiled driver** (``run_compiled``): ``fun`` is a numba function
   (``@njit``); the loop runs in numba (``kernels.solver_machine.drive``),
   compiled once per signature and cached on disk: the objective is passed
   as a first-class function, so a new process reuses the cache.
3. **Batched driver** (``run_batch``, behind ``npopt.vmap`` and
   ``solver.run_batch``): many independent problems, each lane stopping on
   its own criterion. The objective is a numba function (lanes in chunks on
   all cores), a NumPy function vectorised over the batch
   (``vectorized=True``: it receives the lanes that asked, stacked), or a
   plain per-problem Python function (one call per lane and evaluation:
   correct, and as slow as a Python loop over ``run``).

4. **CUDA lanes** (``lanes_cuda``): when the batch's data are CUDA device
   arrays, one GPU thread per lane runs the machine compiled for CUDA.

A numba objective either returns its output (``fun(x, *args) -> (value,
grad)``) or writes it into a buffer (``fun(x, g, *args) -> value``; the form
CUDA lanes need, which the compiled CPU drivers take too: ``writes_into``).

Every driver calls the same ``advance`` on the same per-lane arrays, so a
lane's numbers are those of a single ``run`` on that lane, whatever the
driver and whatever the other lanes do.
"""
import concurrent.futures
import math
import os
import sys
import threading
import time
from typing import Any, NamedTuple

import numpy as np

from .. import tree as T
from ..kernels import _jit
from ..kernels import solver_machine as K
from . import base

# False: solver.run takes the Python solvers' own loop (update after update),
# as before the engine; the tests compare the two bit for bit.
ENABLED = True

STATUS_MESSAGES = {
    K.CONVERGED: "converged (error <= tol)",
    K.MAXITER: "maxiter reached",
    K.LINESEARCH_FAILED: "stopped: the line search failed (stop_if_linesearch_fails)",
    K.NONFINITE: "stopped on a non-finite value or error",
    K.NO_SIGN_CHANGE: "no sign change on the bracket (Bisection)",
}


class BatchResult(NamedTuple):
    """What ``solver.run_batch`` returns: the params and the solver's state,
    each leaf and field with a leading lane axis, and ``status``, one code
    per lane (``STATUS_MESSAGES``: 0 converged, 1 maxiter, 2 line search
    failed, 3 non-finite)."""
    params: Any
    state: Any
    status: np.ndarray


# --------------------------------------------------------------------------
# Which runs the machine takes.

_KINDS = {}


def _kinds():
    """{solver class: machine kind} (filled on first use: the solver modules
    import this one)."""
    if not _KINDS:
        _KINDS.update(_kinds_table())
    return _KINDS


def _kinds_table():
    from .bfgs import BFGS
    from .lbfgs import LBFGS
    from .nonlinear_cg import NonlinearCG
    from .anderson import AndersonAcceleration
    from .bisection import Bisection
    from .fixed_point import FixedPointIteration
    from .gauss_newton import GaussNewton
    from .levenberg_marquardt import LevenbergMarquardt
    from .proximal_gradient import GradientDescent, ProjectedGradient, ProximalGradient
    from .qp import BoxCDQP
    return {GaussNewton: K.KIND_GN, BoxCDQP: K.KIND_BOXCDQP, Bisection: K.KIND_BISECT,
            LevenbergMarquardt: K.KIND_LM,
            AndersonAcceleration: K.KIND_ANDERSON, LBFGS: K.KIND_LBFGS, BFGS: K.KIND_BFGS, NonlinearCG: K.KIND_CG,
            ProximalGradient: K.KIND_PG, GradientDescent: K.KIND_PG,
            ProjectedGradient: K.KIND_PG, FixedPointIteration: K.KIND_FP}


def machine_unsupported(solver, batched=False):
    """Why ``solver`` cannot run on the machine, or None. (A single run with
    ``verbose`` prints jaxopt's lines from the Python solver; a batched one
    prints its progress.) Subclasses keep their own loop."""
    if type(solver) not in _kinds():
        return f"{type(solver).__name__} has no state machine yet"
    if getattr(solver, "has_aux", False):
        return "has_aux"
    if solver.verbose and not batched:
        return "verbose"
    stepsize = getattr(solver, "stepsize", 0.0)
    if callable(stepsize):
        return "a callable stepsize"
    if _kinds()[type(solver)] in (K.KIND_PG, K.KIND_FP, K.KIND_BISECT, K.KIND_ANDERSON,
                                  K.KIND_BOXCDQP):
        return None
    if _kinds()[type(solver)] == K.KIND_GN:
        if solver.jvp_fun is not None or solver.vjp_fun is not None:
            return "jvp_fun/vjp_fun (the matrix-free products)"
        return None
    if _kinds()[type(solver)] == K.KIND_LM:
        if solver.geodesic:
            return "geodesic=True"
        from .. import linear_solve
        if not solver.materialize_jac and solver.solver is not linear_solve.solve_cg:
            return "materialize_jac=False with a solver other than solve_cg"
        if solver.jvp_fun is not None or solver.vjp_fun is not None:
            return "jvp_fun/vjp_fun (the matrix-free products)"
        if isinstance(solver.solver, str) and solver.solver != "cholesky":
            return f"solver={solver.solver!r}"
        if solver.stop_criterion != "grad-l2-norm":
            return f"stop_criterion={solver.stop_criterion!r}"
        if solver.damping_parameter == 0:
            return "damping_parameter=0"
        return None
    if stepsize <= 0 and solver.linesearch not in ("zoom", "backtracking", "hager-zhang"):
        return f"linesearch={solver.linesearch!r}"
    return None


lbfgs_unsupported = machine_unsupported


def supports_batch(solver):
    """Whether ``solver`` runs batched on the engine."""
    return batch_unsupported(solver) is None


def batch_unsupported(solver):
    return machine_unsupported(solver, batched=True)


def status_of(solver, state):
    """The status code (STATUS_MESSAGES) of a finished single run."""
    err = np.asarray(state.error)
    if bool(err <= solver.tol):
        return K.CONVERGED
    value = np.asarray(getattr(state, "value", 0.0))
    if not (np.all(np.isfinite(err)) and np.all(np.isfinite(value))):
        return K.NONFINITE
    if getattr(solver, "stop_if_linesearch_fails", False) and \
            bool(getattr(state, "failed_linesearch", False)):
        return K.LINESEARCH_FAILED
    return K.MAXITER


def try_run(solver, init_params, args, kwargs):
    """``solver.run`` on the machine, or None where it does not apply (the
    caller then runs its Python loop)."""
    if not ENABLED or solver.maxiter == 0 or machine_unsupported(solver) is not None or \
            isinstance(init_params, base.OptStep) and _kinds()[type(solver)] != K.KIND_LBFGS:
        if type(solver) in _kinds():        # the Python loop calls fun(x, *args)
            fun_args, fun_kwargs = _split_args(solver, args, kwargs)[2:]
            _refuse_buffer_form(solver, compiled_objective(solver),
                                len(fun_args) + len(fun_kwargs))
        return None
    out = run_single(solver, init_params, args, kwargs)
    if out is None:
        return None
    out, nonfinite = out
    if nonfinite:
        solver._warn_if_not_finite(out.state)
    return out


def _hyperparameters(solver, realdtype):
    """(hp, ip): the machine's real and integer hyperparameters, each Python
    float rounded once to the params' dtype (as NumPy rounds a Python scalar
    that meets a float32 array)."""
    kind = _kinds()[type(solver)]
    hp = [0.0] * K.NH                   # lists: ~40 element writes cost 1 us, not 4
    ip = [0] * K.NP
    ip[K.P_KIND] = kind
    hp[K.H_ZERO], hp[K.H_ONE], hp[K.H_TWO], hp[K.H_THREE], hp[K.H_HALF] = 0, 1, 2, 3, 0.5
    hp[K.H_TOL] = solver.tol
    ip[K.P_MAXITER] = solver.maxiter
    hp[K.H_CG_TOL2] = 1e-5 ** 2            # solve_cg's default tol, squared as in _cg
    if kind == K.KIND_PG:
        hp[K.H_DEC] = solver.decrease_factor
        hp[K.H_PG_EPS] = np.finfo(realdtype).eps
        hp[K.H_SMALL] = 1e-6
        ip[K.P_MAXLS] = solver.maxls
        ip[K.P_ACCEL] = bool(solver.acceleration)
        ip[K.P_HAS_PROX] = _has_prox(solver)
        if solver.stepsize > 0:
            ip[K.P_LS] = K.LS_FIXED
            hp[K.H_FIXED] = solver.stepsize
        else:
            ip[K.P_LS] = K.LS_BACKTRACKING
    elif kind == K.KIND_ANDERSON:
        hp[K.H_BETA] = solver.beta
        hp[K.H_RIDGE] = solver.ridge
        ip[K.P_M] = solver.history_size
        ip[K.P_FREQ] = solver.mixing_frequency
    elif kind == K.KIND_LM:
        hp[K.H_DAMP] = solver.damping_parameter
        hp[K.H_THIRD] = 1 / 3
        hp[K.H_MAXF] = solver.damping_factor_max
        ip[K.P_LM_CG] = not solver.materialize_jac
    elif kind == K.KIND_BISECT:
        ip[K.P_CHECK_BRACKET] = bool(solver.check_bracket)
    elif kind in (K.KIND_LBFGS, K.KIND_BFGS, K.KIND_CG):
        _quasi_newton_hyperparameters(solver, kind, hp, ip)
    return np.array(hp, np.float64).astype(realdtype), np.array(ip, np.int64)


def _quasi_newton_hyperparameters(solver, kind, hp, ip):
    """LBFGS, BFGS and NonlinearCG: the line search's and the solver's knobs."""
    ls = solver.linesearch_solver
    if kind == K.KIND_CG:
        ip[K.P_CG_METHOD] = {"polak-ribiere": K.CG_POLAK_RIBIERE,
                             "fletcher-reeves": K.CG_FLETCHER_REEVES,
                             "hestenes-stiefel": K.CG_HESTENES_STIEFEL}[solver.method]
    hp[K.H_EPS] = 1e-6
    hp[K.H_MAXSTEP] = solver.max_stepsize
    hp[K.H_MINSTEP] = solver.min_stepsize
    hp[K.H_INC] = solver.increase_factor
    ip[K.P_M] = getattr(solver, "history_size", 0) if kind == K.KIND_LBFGS else 0
    ip[K.P_MAXLS] = solver.maxls
    ip[K.P_INIT] = {"increase": K.INIT_INCREASE, "max": K.INIT_MAX,
                    "current": K.INIT_CURRENT}[solver.linesearch_init]
    ip[K.P_STOP_LS_FAIL] = bool(getattr(solver, "stop_if_linesearch_fails", False))
    ip[K.P_USE_GAMMA] = bool(getattr(solver, "use_gamma", True))
    stepsize = getattr(solver, "stepsize", 0.0)
    if stepsize > 0:
        ip[K.P_LS] = K.LS_FIXED
        hp[K.H_FIXED] = stepsize
    else:
        hp[K.H_C1] = ls.c1
        hp[K.H_C2] = ls.c2
        hp[K.H_APPROX] = 2 * ls.c1 - 1.0
        hp[K.H_1MC1] = 1 - ls.c1
        hp[K.H_LSTOL] = ls.tol
        ip[K.P_MAXLS] = ls.maxiter
        if solver.linesearch == "zoom":
            ip[K.P_LS] = K.LS_ZOOM
            hp[K.H_C3] = ls.c3
            hp[K.H_RTC] = ls.rel_tol_cubic
            hp[K.H_RTQ] = ls.rel_tol_quad
            hp[K.H_ITHR] = ls.interval_threshold
            hp[K.H_LSINC] = ls.increase_factor
            hp[K.H_LSMAX] = ls._max_step
        elif solver.linesearch == "hager-zhang":
            ip[K.P_LS] = K.LS_HAGER_ZHANG
            hp[K.H_HZ_EPS] = ls.approximate_wolfe_threshold
            hp[K.H_HZ_EXPAND] = ls.expansion_factor
            hp[K.H_HZ_SHRINK] = ls.shrinkage_factor
        else:
            ip[K.P_LS] = K.LS_BACKTRACKING
            ip[K.P_COND] = {"armijo": K.COND_ARMIJO, "goldstein": K.COND_GOLDSTEIN,
                            "strong-wolfe": K.COND_STRONG_WOLFE,
                            "wolfe": K.COND_WOLFE}[ls.condition]
            hp[K.H_DEC] = ls.decrease_factor
            hp[K.H_BTMAX] = ls.max_stepsize


# --------------------------------------------------------------------------
# The arrays.

class Machine:
    """The per-lane arrays of ``B`` L-BFGS runs over ``n`` params (see
    ``npopt.kernels.solver_machine``), and the shared hyperparameters."""

    def __init__(self, solver, x0, seg, realdtype, warm=None, residual_shape=None):
        B, n = x0.shape
        self.hp, self.ip = _hyperparameters(solver, realdtype)
        self.residual_shape = residual_shape
        self.kind = kind = int(self.ip[K.P_KIND])
        m = int(self.ip[K.P_M])
        self.B, self.n, self.m, self.dtype = B, n, m, realdtype
        self.seg = seg
        rows = K.NV if kind in (K.KIND_LBFGS, K.KIND_FP, K.KIND_BISECT) else K.NV_SCRATCH
        self.vec = np.zeros((B, rows, n), realdtype)
        self.vec[:, K.X] = x0
        if kind in (K.KIND_LBFGS, K.KIND_ANDERSON):
            self.hist = np.zeros((B, 2, m, n), realdtype)
        elif kind == K.KIND_BFGS:
            self.hist = np.zeros((B, 1, n, n), realdtype)
            self.hist[:, 0] = np.eye(n, dtype=realdtype)
        elif kind == K.KIND_CG:
            self.hist = np.zeros((B, 1, 1, n), realdtype)
        elif kind == K.KIND_BOXCDQP:
            self.hist = np.zeros((B, 1, n + 3, n), realdtype)     # Q, c, l, u
        elif kind in (K.KIND_LM, K.KIND_GN):
            mres = int(np.prod(residual_shape, dtype=np.int64))
            self.ip[K.P_M_RES] = mres
            self.hist = np.zeros((B, 1, 1, K.lm_slots(mres, n)[-1]), realdtype)
        elif kind in (K.KIND_FP, K.KIND_BISECT):
            self.hist = np.zeros((B, 1, 0, n), realdtype)
        else:
            self.hist = np.zeros((B, 1, 0, n), realdtype)
        extra_f, extra_i = 2 * m, 0
        if kind == K.KIND_ANDERSON:      # G, the KKT system and its pivots
            extra_f, extra_i = m * m + (m + 1) * (m + 1) + (m + 1), m + 1
        self.fs = np.zeros((B, K.NF + extra_f), realdtype)
        self.st = np.zeros((B, K.NI + extra_i), np.int64)
        self.part = np.zeros((B, max(1, -(-n // _jit.CHUNK)), 2), realdtype)
        self.fs[:, K.F_STEP] = getattr(solver, "max_stepsize", 1.0) \
            if kind not in (K.KIND_PG, K.KIND_FP, K.KIND_BISECT) else 1.0
        if kind == K.KIND_BISECT:
            self.fs[:, K.F_LOW] = float(solver.lower)
            self.fs[:, K.F_HIGH] = float(solver.upper)
        self.fs[:, K.F_GAMMA] = 1.0
        self.st[:, K.I_STATUS] = K.RUNNING
        if warm is not None:        # an OptStep's state: continue its run
            S, Y, rho, gamma, iter_num, stepsize = warm
            self.hist[:, 0], self.hist[:, 1] = S, Y
            self.fs[:, K.NF:K.NF + m] = rho
            self.fs[:, K.F_GAMMA] = gamma
            self.fs[:, K.F_STEP] = stepsize
            self.st[:, K.I_ITER] = iter_num

    def lane(self, i):
        return (self.vec[i], self.hist[i], self.fs[i], self.st[i], self.hp, self.ip, self.seg,
                self.part[i])

    def states(self, unravel_batch, realdtype, lanes=slice(None)):
        """(params, state) with a leading lane axis on every leaf/field."""
        vec, fs, st = self.vec[lanes], self.fs[lanes], self.st[lanes]
        hist = np.ascontiguousarray(self.hist[lanes])
        L = vec.shape[0]
        params = unravel_batch(np.ascontiguousarray(vec[:, K.X]))
        if self.kind == K.KIND_GN:
            return params, self._gn_state(vec, hist[:, 0, 0], fs, st, unravel_batch, L)
        if self.kind == K.KIND_BOXCDQP:
            from .qp import BoxCDQPState
            return params, BoxCDQPState(iter_num=st[:, K.I_ITER].copy(),
                                        error=fs[:, K.F_ERROR].copy())
        if self.kind == K.KIND_ANDERSON:
            from .anderson import AndersonState
            m = self.m
            return params, AndersonState(
                iter_num=st[:, K.I_ITER].copy(), error=fs[:, K.F_ERROR].copy(),
                params_history=unravel_batch(hist[:, 0].reshape(-1, self.n), lead=(L, m)),
                residuals_history=unravel_batch(hist[:, 1].reshape(-1, self.n), lead=(L, m)),
                residual_gram=fs[:, K.NF:K.NF + m * m].reshape(L, m, m).copy(), aux=None,
                num_fun_eval=st[:, K.I_NFUN].astype(np.int32))
        if self.kind == K.KIND_LM:
            return params, self._lm_state(vec, hist[:, 0, 0], fs, st, unravel_batch, L)
        if self.kind == K.KIND_BISECT:
            from .bisection import BisectionState
            return params, BisectionState(
                iter_num=st[:, K.I_ITER].copy(), value=fs[:, K.F_VALUE].copy(),
                error=fs[:, K.F_ERROR].copy(), low=fs[:, K.F_LOW].copy(),
                high=fs[:, K.F_HIGH].copy(), sign=st[:, K.I_SIGN].copy(), aux=None,
                num_fun_eval=st[:, K.I_NFUN].astype(np.int32))
        if self.kind == K.KIND_FP:
            from .fixed_point import FixedPointState
            return params, FixedPointState(
                iter_num=st[:, K.I_ITER].copy(), error=fs[:, K.F_ERROR].copy(), aux=None,
                num_fun_eval=st[:, K.I_NFUN].astype(np.int32))
        if self.kind == K.KIND_PG:
            from .proximal_gradient import ProxGradState
            accel = bool(self.ip[K.P_ACCEL])
            return params, ProxGradState(
                iter_num=st[:, K.I_ITER].copy(), stepsize=fs[:, K.F_STEP].copy(),
                error=fs[:, K.F_ERROR].copy(), aux=None,
                velocity=unravel_batch(np.ascontiguousarray(vec[:, K.D])) if accel else None,
                t=st[:, K.I_PG_T].view(np.float64).copy() if accel else
                np.ones(L))
        grad = unravel_batch(np.ascontiguousarray(vec[:, K.G]))
        if self.kind == K.KIND_LBFGS:
            m = self.m
            extra = dict(
                s_history=unravel_batch(hist[:, 0].reshape(-1, self.n), lead=(L, m)),
                y_history=unravel_batch(hist[:, 1].reshape(-1, self.n), lead=(L, m)),
                rho_history=fs[:, K.NF:K.NF + m].copy(), gamma=fs[:, K.F_GAMMA].copy(),
                failed_linesearch=st[:, K.I_FAILED] != 0)
        elif self.kind == K.KIND_BFGS:
            extra = dict(H=hist[:, 0])
        else:
            extra = dict(descent_direction=unravel_batch(np.ascontiguousarray(hist[:, 0, 0])))
        return params, _solver_state(self.kind)(
            iter_num=st[:, K.I_ITER].copy(), value=fs[:, K.F_VALUE].copy(), grad=grad,
            stepsize=fs[:, K.F_STEP].copy(), error=fs[:, K.F_ERROR].copy(), aux=None,
            num_fun_eval=st[:, K.I_NFUN].astype(np.int32),
            num_grad_eval=st[:, K.I_NGRAD].astype(np.int32),
            num_linesearch_iter=st[:, K.I_NLS].astype(np.int32), **extra)

    def _gn_state(self, vec, buf, fs, st, unravel, L):
        """GaussNewtonState from lane arrays (vec (L, NV, n), buf (L, size))."""
        from .gauss_newton import GaussNewtonState
        m = int(self.ip[K.P_M_RES])
        return GaussNewtonState(
            iter_num=st[:, K.I_ITER].copy(),
            residual=buf[:, :m].reshape((L,) + tuple(self.residual_shape)).copy(),
            value=fs[:, K.F_VALUE].copy(), delta=unravel(np.ascontiguousarray(vec[:, K.D])),
            error=fs[:, K.F_ERROR].copy(), gradient=unravel(np.ascontiguousarray(vec[:, K.G])),
            aux=None)

    def _lm_state(self, vec, buf, fs, st, unravel, L):
        """LevenbergMarquardtState from lane arrays (vec (L, NV, n), buf (L, size))."""
        from .levenberg_marquardt import LevenbergMarquardtState
        m, n = int(self.ip[K.P_M_RES]), self.n
        r0, rn, j0, jt0, jtj0, f0, ft0, end = K.lm_slots(m, n)
        jac = buf[:, j0:j0 + m * n].reshape(L, m, n).copy()
        dense = not self.ip[K.P_LM_CG]
        return LevenbergMarquardtState(
            iter_num=st[:, K.I_ITER].copy(), damping_factor=fs[:, K.F_LM_MU].copy(),
            increase_factor=fs[:, K.F_LM_NU].copy(),
            residual=buf[:, r0:r0 + m].reshape((L,) + tuple(self.residual_shape)).copy(),
            value=fs[:, K.F_VALUE].copy(), delta=unravel(np.ascontiguousarray(vec[:, K.D])),
            error=fs[:, K.F_ERROR].copy(), gradient=unravel(np.ascontiguousarray(vec[:, K.G])),
            jac=jac if dense else None, jt=jac.transpose(0, 2, 1) if dense else None,
            jtj=buf[:, jtj0:jtj0 + n * n].reshape(L, n, n).copy() if dense else None,
            hess_res=None, aux=None)

    def status(self):
        return self.st[:, K.I_STATUS].copy()


_STATES = {}


def _solver_state(kind):
    """The state NamedTuple of the quasi-Newton kinds (looked up once)."""
    if not _STATES:
        from .bfgs import BfgsState
        from .lbfgs import LbfgsState
        from .nonlinear_cg import NonlinearCGState
        _STATES.update({K.KIND_LBFGS: LbfgsState, K.KIND_BFGS: BfgsState,
                        K.KIND_CG: NonlinearCGState})
    return _STATES[kind]


def leaf_offsets(tree):
    """The flat offsets of a pytree's leaves: (nleaves + 1,) int64."""
    sizes = [int(np.size(x)) for x in T.tree_leaves(tree)]
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64) if sizes \
        else np.zeros(1, np.int64)


# --------------------------------------------------------------------------
# Evaluation of a Python objective.

def _split_args(solver, args, kwargs):
    """(prox, hyperparams, the objective's args, kwargs) of a run's arguments:
    proximal and projected gradient take ``hyperparams`` first."""
    if _kinds().get(type(solver)) != K.KIND_PG:
        return None, None, args, kwargs
    from .proximal_gradient import GradientDescent, ProjectedGradient, ProximalGradient
    t = type(solver)
    if t is ProximalGradient or t is ProjectedGradient:
        name = "hyperparams_prox" if t is ProximalGradient else "hyperparams_proj"
        if name in kwargs:
            kwargs = dict(kwargs)
            hyper = kwargs.pop(name)
        else:
            hyper, args = (args[0], args[1:]) if args else (None, args)
        prox = solver.prox if t is ProximalGradient else solver._pg.prox
        return prox, hyper, args, kwargs
    if t is GradientDescent:
        return solver.prox, None, args, kwargs
    return None, None, args, kwargs


def _hyper_args(solver):
    """1 where run takes hyperparams before the objective's args, else 0."""
    if _kinds().get(type(solver)) != K.KIND_PG:
        return 0
    from .proximal_gradient import ProjectedGradient, ProximalGradient
    return 1 if type(solver) in (ProximalGradient, ProjectedGradient) else 0


def _has_prox(solver):
    if _kinds().get(type(solver)) != K.KIND_PG:
        return False
    from ..prox import prox_none
    prox = _split_args(solver, (), {})[0]
    return prox is not None and prox is not prox_none


def compiled_prox(solver):
    """The machine's operator (``K.PROX_*``) for the solver's prox or
    projection when the compiled drivers apply it themselves (npopt's lasso,
    non-negative lasso, non-negative and box operators), else None."""
    from .. import projection as J
    from .. import prox as P
    from .proximal_gradient import ProjectedGradient, ProximalGradient
    t = type(solver)
    f = solver.prox if t is ProximalGradient else \
        solver.projection if t is ProjectedGradient else None
    return {P.prox_lasso: K.PROX_LASSO, P.prox_non_negative_lasso: K.PROX_NN_LASSO,
            J.projection_non_negative: K.PROX_NON_NEGATIVE,
            J.projection_box: K.PROX_BOX}.get(f)


def prox_slots(solver, op, hyper, B, batched):
    """st[I_PROX_A], st[I_PROX_B] of every lane: (a, b), float64 arrays (B,),
    from ``hyper`` (the run's hyperparams_prox / hyperparams_proj: shared, or
    with a lane axis when ``batched``); None where they are not scalars per
    lane (the Python driver then calls the operator). Values the operator
    would refuse raise its own error, before anything runs."""
    fn = solver.prox if op in (K.PROX_LASSO, K.PROX_NN_LASSO) else solver.projection
    if op == K.PROX_NON_NEGATIVE:
        return np.zeros(B), np.zeros(B)
    if op in (K.PROX_LASSO, K.PROX_NN_LASSO):
        parts = (1.0 if hyper is None else hyper,)
    else:
        if not isinstance(hyper, (tuple, list)) or len(hyper) != 2:
            return None
        parts = tuple(hyper)
    cols = []
    for p in parts:
        a = np.asarray(p)
        if a.dtype.kind not in "fiu" or a.ndim != (1 if batched else 0) or \
                (batched and a.shape[0] != B):
            return None
        cols.append(np.broadcast_to(a.astype(np.float64), (B,)))
    ok = np.ones(B, bool)
    for c in cols:
        ok &= ~np.isnan(c)
    if op in (K.PROX_LASSO, K.PROX_NN_LASSO):
        ok &= np.isfinite(cols[0]) & (cols[0] >= 0)
    else:
        ok &= cols[0] <= cols[1]
    if not ok.all():                       # the operator's own error, on the first bad lane
        i = int(np.flatnonzero(~ok)[0])
        lane = tuple(c[i] for c in cols)
        fn(np.zeros(1), lane[0] if len(lane) == 1 else lane)
        raise ValueError(f"hyperparams of lane {i}: {lane} refused")    # pragma: no cover
    return cols[0], cols[-1]


def _prox_on_machine(solver, mach, hyper, batched):
    """Whether the compiled drivers can run this solver's prox requests: no
    prox, or one ``compiled_prox`` knows with scalar hyperparameters (then set
    in every lane of ``mach``)."""
    if not _has_prox(solver):
        return True
    op = compiled_prox(solver)
    slots = None if op is None else prox_slots(solver, op, hyper, mach.B, batched)
    if slots is None:
        return False
    mach.ip[K.P_PROX_OP] = op
    h = mach.st.view(np.float64)
    h[:, K.I_PROX_A], h[:, K.I_PROX_B] = slots
    return True


def _python_evaluator(solver, template, args, kwargs, rshape=None):
    """evaluate(xt, gt, task, fs): the user's objective at the flat point xt (a
    fresh copy, as the user's own array) into fs[F_TRIAL], its gradient
    ravelled into gt; or, for TASK_PROX, xt <- prox(xt, hyperparams, fs[F_T])."""
    prox, hyper, args, kwargs = _split_args(solver, args, kwargs)
    from .fixed_point import check_same_structure
    core = getattr(solver, "_pg", solver)     # GD, ProjectedGradient: their ProximalGradient
    fp = getattr(solver, "_fun", None) or getattr(solver, "_value_with_aux", None)  # a map
    vg = getattr(core, "_value_and_grad_with_aux", None)
    f = getattr(core, "_fun_with_aux", None)
    flat_params = type(template) is np.ndarray and template.ndim == 1
    unravel = None if flat_params else T.ravel(template)[1]
    name = "optimality_fun" if _kinds().get(type(solver)) == K.KIND_BISECT else "fun"
    unravel_flat = (lambda v: v) if flat_params else (lambda v: unravel(v, copy=False))

    def check_value(value):
        return base.check_value(value, name)

    lm = _kinds().get(type(solver)) in (K.KIND_LM, K.KIND_GN)   # residuals and Jacobians

    def evaluate(xt, gt, task, fs, buf=None):
        p = xt.copy() if flat_params else unravel(xt.copy(), copy=False)
        if lm:
            _lm_evaluate(solver, xt, p, task, buf, args, kwargs, unravel_flat, rshape)
            return
        if task == K.TASK_MAP:
            out, _ = fp(p, *args, **kwargs)
            check_same_structure(out, p, "fixed_point_fun")
            if flat_params and type(out) is np.ndarray:
                np.copyto(xt, out, casting="same_kind")
            else:
                np.copyto(xt, T.ravel(out)[0], casting="same_kind")
            return
        if task == K.TASK_PROX:
            out = prox(p, hyper, fs[K.F_T])
            if flat_params and type(out) is np.ndarray and out.shape == xt.shape:
                np.copyto(xt, out, casting="same_kind")
            else:
                base.check_grad_structure(out, p, "prox")
                np.copyto(xt, T.ravel(out)[0], casting="same_kind")
            return
        fs[K.F_TRIAL] = _value_and_grad_into(vg, f, p, args, kwargs, gt, task, flat_params,
                                             xt, check_value)
    return evaluate


def _lm_evaluate(solver, xt, p, task, buf, args, kwargs, unravel, shape):
    """LM's requests from Python: residuals or the dense Jacobian (from jac_fun,
    jvp/vjp products or finite differences, as the Python solver gets it)."""
    n = xt.shape[0]
    m = int(np.prod(shape, dtype=np.int64))
    r0, rn, j0 = K.lm_slots(m, n)[:3]
    if task == K.TASK_RESID:
        r, _ = solver._res(p, args, kwargs, shape)
        buf[rn:rn + m] = r.ravel()
    else:
        r = buf[r0:r0 + m].reshape(shape).copy()
        J = solver._res.dense_jacobian(xt.copy(), unravel, r, args, kwargs)
        buf[j0:j0 + m * n] = np.asarray(J, buf.dtype).ravel()


def _value_and_grad_into(vg, f, p, args, kwargs, gt, task, flat_params, xt, check_value):
    """The value at p (checked); for TASK_EVAL its gradient ravelled into gt."""
    if task == K.TASK_VALUE:
        return check_value(f(p, *args, **kwargs)[0])
    (value, _), grad = vg(p, *args, **kwargs)
    value = check_value(value)
    if type(grad) is np.ndarray and grad.shape == xt.shape and flat_params:
        np.copyto(gt, grad, casting="same_kind")
    else:
        base.check_grad_structure(grad, p)
        np.copyto(gt, T.ravel(grad)[0], casting="same_kind")
    return value


def drive_python(mach, lane, evaluate):
    """The Python driver: advance, evaluate, until the lane is done."""
    advance = K.advance
    vec, hist, fs, st, hp, ip, seg, part = mach.lane(lane)
    xt, gt = vec[K.XT], vec[K.GT]
    buf = hist[0, 0] if mach.kind in (K.KIND_LM, K.KIND_GN) else None
    with np.errstate(all="ignore"):
        task = advance(vec, hist, fs, st, hp, ip, seg, part)
        while task:
            evaluate(xt, gt, task, fs, buf)
            task = advance(vec, hist, fs, st, hp, ip, seg, part)


# --------------------------------------------------------------------------
# Numba objectives.

def is_numba_function(f):
    return isinstance(f, _jit.CPUDispatcher)


def compiled_objective(solver):
    """(fun, gfun) for the compiled drivers, or None when the objective is not
    a numba function with a numba gradient (value_and_grad=True, or grad=),
    or a fixed-point map that is not a numba function."""
    if not getattr(solver, "jit", True) or _kinds().get(type(solver)) == K.KIND_BOXCDQP:
        return None
    if hasattr(solver, "fixed_point_fun"):
        f = solver.fixed_point_fun
        return (f, None) if is_numba_function(f) and not solver.has_aux else None
    if hasattr(solver, "lower") and hasattr(solver, "optimality_fun"):    # Bisection
        return None       # a scalar objective: the Python drivers
    if hasattr(solver, "residual_fun"):     # LevenbergMarquardt: residuals and Jacobian
        ok = is_numba_function(solver.residual_fun) and is_numba_function(solver.jac_fun)
        return (solver.residual_fun, solver.jac_fun) if ok else None
    if not is_numba_function(solver.fun):
        return None
    if solver.value_and_grad is True:
        return solver.fun, None
    if solver.value_and_grad is False and is_numba_function(solver.grad):
        return solver.fun, solver.grad
    return None


def writes_into(f, nargs):
    """Whether the numba function ``f``, called with ``nargs`` arguments after
    the params, takes an output buffer after x: ``f(x, g, *args) -> value``
    (or a map's ``f(x, out, *args)``), the form CUDA lanes need, which the
    compiled CPU drivers take too. Decided by its arity (a function with
    default arguments is taken as returning its output)."""
    code = f.py_func.__code__
    return (f.py_func.__defaults__ is None and not code.co_flags & 0x04      # no *args
            and code.co_argcount == nargs + 2)


def _refuse_buffer_form(solver, compiled, nargs):
    """A numba objective that writes into a buffer (``writes_into``) runs on
    the compiled drivers only: say why this call cannot take them."""
    if compiled is None or _kinds()[type(solver)] in (K.KIND_LM, K.KIND_GN):
        return
    if any(f is not None and writes_into(f, nargs) for f in compiled):
        raise TypeError("fun: a numba function that writes into a buffer (fun(x, g, *args)) "
                        "runs on the compiled drivers only: flat float32/float64 params, "
                        "positional array or scalar arguments, no keyword arguments and no "
                        "prox; otherwise return the output (fun(x, *args) -> (value, grad))")


def _refuse_residual_buffer(solver, nargs):
    """On the CPU, LevenbergMarquardt's and GaussNewton's residual_fun returns
    its residuals: the buffer form is for CUDA lanes (with residual_size)."""
    f = solver.residual_fun
    if is_numba_function(f) and writes_into(f, nargs):
        raise TypeError("residual_fun: writes into a buffer (residual_fun(x, r, *args)), the "
                        "form for CUDA lanes (npopt.vmap(..., residual_size=m) on device "
                        "arrays); on the CPU it returns the residuals: residual_fun(x, *args)")


class FirstClass:
    """A numba function as a first-class function value of one signature.

    The compiled drivers take the objective as an argument of numba's
    ``FunctionType``, so they are compiled once per signature and cached on
    disk (a dispatcher argument would be typed by its identity: a fresh
    compilation in every process). Passing the dispatcher itself would make
    numba look its compilation up twice on every call (~40 us); this object
    carries the address of its C wrapper (numba's wrapper-address protocol),
    looked up once."""

    def __init__(self, dispatcher, argtypes):
        from numba.core import types as nbtypes
        dispatcher.compile(argtypes)
        cres = dispatcher.overloads[argtypes]
        self.sig = cres.signature.return_type(*argtypes)
        self.type = nbtypes.FunctionType(self.sig)
        self.addr = cres.library.get_pointer_to_function(cres.fndesc.llvm_cfunc_wrapper_name)
        self.dispatcher = dispatcher        # keeps the compiled code alive

    def __wrapper_address__(self):
        return self.addr

    def signature(self):
        return self.sig


PROGRESS_SECONDS = 2.0    # a verbose batched run prints its progress this often

_ENTRY = {}
_NO_BUDGET = int(np.iinfo(np.int64).max)


def _entry(dispatcher, argtypes):
    """The compiled entry point of ``dispatcher`` for ``argtypes`` (compiled,
    or loaded from the cache, on first use)."""
    key = (dispatcher, argtypes)
    ep = _ENTRY.get(key)
    if ep is None:
        dispatcher.compile(argtypes)
        ep = _ENTRY[key] = dispatcher.overloads[argtypes].entry_point
    return ep


def _numba_types(values):
    from numba import typeof
    return tuple(typeof(v) for v in values)


def _shape_key(v):
    """What numba's type of v depends on (cheaper than numba.typeof)."""
    if type(v) is np.ndarray:
        f = v.flags
        return (v.dtype.str, v.ndim, f.c_contiguous, f.f_contiguous, f.writeable, f.aligned)
    if type(v) is tuple:
        return tuple([_shape_key(x) for x in v])
    if isinstance(v, np.ndarray):
        return (type(v), _shape_key(np.asarray(v)))
    return type(v)


_PLANS = {}


def _compiled_entry(mach, fun, gfun, lane_args, lane_args_types):
    """(entry point of ``drive_lanes``, fun, gfun as FirstClass) for this
    objective and these argument types, compiled (or loaded from numba's
    cache) once per process and signature."""
    key = (fun, gfun, _shape_key(lane_args), mach.vec.dtype.str)
    plan = _PLANS.get(key)
    if plan is None:
        from numba.core import types as nbtypes
        lane_args_types = lane_args_types()
        xtype = _numba_types([mach.vec[0, K.XT]])[0]
        lm = mach.kind in (K.KIND_LM, K.KIND_GN)
        if gfun is not None and not lm and writes_into(fun, len(lane_args)):
            raise TypeError("fun: writes its gradient into g (fun(x, g, *args) -> value), so "
                            "no grad is needed: pass value_and_grad=True")
        f = FirstClass(fun, (xtype,) * (1 + (not lm and writes_into(fun, len(lane_args))))
                       + lane_args_types)
        g = None if gfun is None else FirstClass(
            gfun, (xtype,) * (1 + (not lm and writes_into(gfun, len(lane_args))))
            + lane_args_types)
        rest = _numba_types([np.zeros(1, np.int64), mach.vec, mach.hist, mach.fs, mach.st,
                             mach.hp, mach.ip, mach.seg, mach.part, 0])
        argtypes = (f.type, nbtypes.none if g is None else g.type,
                    _numba_types([lane_args])[0]) + rest
        plan = _PLANS[key] = (_entry(K.drive_lanes, argtypes), f, g)
    return plan


def drive_compiled(mach, fun, gfun, lane_args, lane_args_types, lanes, budget, threads=1):
    """Runs ``lanes`` through the compiled driver, ``budget`` evaluations per
    lane at most, on ``threads`` threads (see ``_spread``). lane_args: the
    args tuple as ``drive_lanes`` takes it (batched arrays, shared values
    wrapped in 1-tuples); lane_args_types: a function giving the numba types
    of one lane's args (called on first use)."""
    ep, f, g = _compiled_entry(mach, fun, gfun, lane_args, lane_args_types)

    def run(piece):
        ep(f, g, lane_args, piece, mach.vec, mach.hist, mach.fs, mach.st, mach.hp,
           mach.ip, mach.seg, mach.part, budget)
    with np.errstate(all="ignore"):
        _spread(run, lanes, threads)


def _spread(run, lanes, threads):
    """run(piece) over pieces of ``lanes`` on ``threads`` threads (the caller's
    among them). The compiled driver releases the GIL; the pieces are small
    (at most 8 per thread and 64 lanes) and taken from a shared queue, so a
    thread that the OS does not schedule (a busy machine) holds back only
    the piece it has, not a static half of the batch."""
    n = lanes.shape[0]
    threads = max(1, min(threads, n))
    if threads == 1:
        run(lanes)
        return
    size = max(1, min(64, n // (8 * threads)))
    pieces = iter([lanes[i:i + size] for i in range(0, n, size)])
    lock = threading.Lock()
    errors = []

    def worker():
        while True:
            with lock:
                piece = next(pieces, None)
            if piece is None or errors:
                return
            try:
                run(piece)
            except BaseException as e:       # re-raised in the caller
                errors.append(e)
                return
    helpers = [threading.Thread(target=worker, daemon=True) for _ in range(threads - 1)]
    for t in helpers:
        t.start()
    worker()
    for t in helpers:
        t.join()
    if errors:
        raise errors[0]


def default_threads():
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:             # pragma: no cover - not Linux
        return os.cpu_count() or 1


# --------------------------------------------------------------------------
# Single runs.

def _is_flat(x):
    """A 1-D float32/float64 array: the fast path (no ravel, no views)."""
    return type(x) is np.ndarray and x.ndim == 1 and x.dtype.char in "fd"


_SEG = {}


def run_single(solver, init_params, args, kwargs):
    """``solver.run`` on the machine (the caller checked lbfgs_unsupported).
    Returns None where the machine does not apply (complex params)."""
    from .._flat import stacked_buffer, stacked_views
    from .linesearch import _real_dtype
    warm_state = None
    if _kinds()[type(solver)] == K.KIND_BISECT:
        init_params = np.asarray(0.0)          # ignored: the iterates are midpoints
    if isinstance(init_params, base.OptStep):
        warm_state = init_params.state
        init_params = init_params.params
    flat_params = _is_flat(init_params)
    if flat_params:
        realdtype, flat, n = init_params.dtype, init_params, init_params.shape[0]
        seg = _SEG.get(n)
        if seg is None:
            seg = _SEG[n] = np.array([0, n], np.int64)
    else:
        realdtype = _real_dtype(init_params, "init_params")
        flat, unravel = T.ravel(init_params)
        if flat.dtype != realdtype:          # complex params: the Python solver
            return None
        n = flat.size
        seg = leaf_offsets(init_params)
    m = getattr(solver, "history_size", 0)
    warm = None
    if warm_state is not None:           # continue the given run (copies of its histories)
        st = warm_state
        warm = (stacked_buffer(st.s_history, m, n, realdtype) if m else 0,
                stacked_buffer(st.y_history, m, n, realdtype) if m else 0,
                np.asarray(st.rho_history, realdtype), st.gamma, int(st.iter_num), st.stepsize)
    rshape = None
    if _kinds()[type(solver)] == K.KIND_ANDERSON and realdtype != np.float64:
        return None                          # float32 Anderson: the Python solver (float64 G)
    if _kinds()[type(solver)] in (K.KIND_LM, K.KIND_GN):
        if realdtype != np.float64:
            return None                      # float32: the Python solver
        _, _, fun_args, fun_kwargs = _split_args(solver, args, kwargs)
        _refuse_residual_buffer(solver, len(fun_args) + len(fun_kwargs))
        solver._res.reset()
        r0, _ = solver._res(init_params, fun_args, fun_kwargs)
        rshape = r0.shape
    qp_data = None
    if _kinds()[type(solver)] == K.KIND_BOXCDQP:
        qp_data = _boxcd_data(init_params, args, kwargs)
        if qp_data is None:
            return None
    mach = Machine(solver, flat.reshape(1, n), seg, realdtype, warm, rshape)
    if qp_data is not None:
        mach.hist[0, 0] = qp_data
    if rshape is not None:                   # r(x0) is known: start from it
        m0 = r0.size
        rn = K.lm_slots(m0, n)[1]
        mach.hist[0, 0, 0, rn:rn + m0] = r0.ravel()
        mach.st[0, K.I_PHASE] = K.PH_LM_INIT_R
    compiled = compiled_objective(solver)
    _, hyper, fun_args, fun_kwargs = _split_args(solver, args, kwargs)
    if compiled is not None and flat_params and not fun_kwargs and _numba_typable(fun_args) \
            and _prox_on_machine(solver, mach, hyper, False):
        fun, gfun = compiled
        drive_compiled(mach, fun, gfun, tuple((a,) for a in fun_args),
                       lambda: _numba_types(fun_args), _LANE0, _NO_BUDGET)
    else:
        _refuse_buffer_form(solver, compiled, len(fun_args) + len(fun_kwargs))
        drive_python(mach, 0, _python_evaluator(solver, init_params, args, kwargs, rshape))
    vec, fs, st_ = mach.vec[0], mach.fs[0], mach.st[0]
    if flat_params:
        params, grad = vec[K.X].copy(), vec[K.G].copy()
    else:
        params, grad = unravel(vec[K.X].copy()), unravel(vec[K.G].copy())
    if mach.kind == K.KIND_GN:
        unr = (lambda v: v.reshape(-1).copy()) if flat_params else (lambda v: unravel(v[0].copy()))
        st1 = mach._gn_state(mach.vec[:1], mach.hist[:1, 0, 0], mach.fs[:1], mach.st[:1],
                             unr, 1)
        state = st1._replace(iter_num=np.asarray(st1.iter_num[0]), residual=st1.residual[0],
                             value=st1.value[0], error=st1.error[0])
        return base.OptStep(params, state), not (math.isfinite(fs[K.F_ERROR])
                                                 and math.isfinite(fs[K.F_VALUE]))
    if mach.kind == K.KIND_BOXCDQP:
        from .qp import BoxCDQPState
        if st_[K.I_STATUS] == K.UNBOUNDED:
            return None                      # the Python solver raises its error
        state = BoxCDQPState(iter_num=np.asarray(st_[K.I_ITER]),
                             error=np.asarray(fs[K.F_ERROR]))
        return base.OptStep(params, state), not math.isfinite(fs[K.F_ERROR])
    if mach.kind == K.KIND_ANDERSON:
        from .anderson import AndersonState
        m = mach.m
        P_, R_ = mach.hist[0, 0].copy(), mach.hist[0, 1].copy()
        if not flat_params:
            P_, R_ = stacked_views(P_, params), stacked_views(R_, params)
        state = AndersonState(
            iter_num=np.asarray(st_[K.I_ITER]), error=np.asarray(fs[K.F_ERROR]),
            params_history=P_, residuals_history=R_,
            residual_gram=fs[K.NF:K.NF + m * m].reshape(m, m).copy(), aux=None,
            num_fun_eval=np.asarray(st_[K.I_NFUN], np.int32))
        return base.OptStep(params, state), not math.isfinite(fs[K.F_ERROR])
    if mach.kind == K.KIND_LM:
        unr = (lambda v: v.reshape(-1).copy()) if flat_params else (lambda v: unravel(v[0].copy()))
        st1 = mach._lm_state(mach.vec[:1], mach.hist[:1, 0, 0], mach.fs[:1], mach.st[:1],
                             lambda v: unr(v), 1)
        state = st1._replace(
            iter_num=np.asarray(st1.iter_num[0]), damping_factor=st1.damping_factor[0],
            increase_factor=st1.increase_factor[0], residual=st1.residual[0],
            value=st1.value[0], error=st1.error[0],
            jac=None if st1.jac is None else st1.jac[0],
            jt=None if st1.jac is None else st1.jac[0].T,
            jtj=None if st1.jtj is None else st1.jtj[0])
        return base.OptStep(params, state), not (math.isfinite(fs[K.F_ERROR])
                                                 and math.isfinite(fs[K.F_VALUE]))
    if mach.kind == K.KIND_BISECT:
        from .bisection import BisectionState
        if st_[K.I_STATUS] == K.NO_SIGN_CHANGE:
            solver.init_state(None, *args, **kwargs)       # raises its ValueError
        state = BisectionState(
            iter_num=np.asarray(st_[K.I_ITER]), value=np.asarray(fs[K.F_VALUE]),
            error=np.asarray(fs[K.F_ERROR]), low=np.asarray(fs[K.F_LOW]),
            high=np.asarray(fs[K.F_HIGH]), sign=np.asarray(st_[K.I_SIGN]), aux=None,
            num_fun_eval=np.asarray(st_[K.I_NFUN], np.int32))
        return base.OptStep(params, state), not math.isfinite(fs[K.F_ERROR])
    if mach.kind == K.KIND_FP:
        from .fixed_point import FixedPointState
        state = FixedPointState(iter_num=np.asarray(st_[K.I_ITER]),
                                error=np.asarray(fs[K.F_ERROR]), aux=None,
                                num_fun_eval=np.asarray(st_[K.I_NFUN], np.int32))
        return base.OptStep(params, state), not math.isfinite(fs[K.F_ERROR])
    if mach.kind == K.KIND_PG:
        from .proximal_gradient import ProxGradState
        accel = bool(mach.ip[K.P_ACCEL])
        y = vec[K.D].copy()
        state = ProxGradState(
            iter_num=np.asarray(st_[K.I_ITER]), stepsize=np.asarray(fs[K.F_STEP]),
            error=np.asarray(fs[K.F_ERROR]), aux=None,
            velocity=(y if flat_params else unravel(y)) if accel else None,
            t=float(st_[K.I_PG_T:K.I_PG_T + 1].view(np.float64)[0]) if accel else 1.0)
        finite = math.isfinite(fs[K.F_ERROR])
        return base.OptStep(params, state), not finite
    if mach.kind == K.KIND_LBFGS:
        S, Y = mach.hist[0, 0].copy(), mach.hist[0, 1].copy()   # each its own buffer
        if not flat_params:
            S, Y = stacked_views(S, grad), stacked_views(Y, grad)
        extra = dict(s_history=S, y_history=Y, rho_history=fs[K.NF:K.NF + m].copy(),
                     gamma=np.asarray(fs[K.F_GAMMA]),
                     failed_linesearch=np.asarray(bool(st_[K.I_FAILED])))
    elif mach.kind == K.KIND_BFGS:
        extra = dict(H=mach.hist[0, 0].copy())
    else:
        cg = mach.hist[0, 0, 0].copy()
        extra = dict(descent_direction=cg if flat_params else unravel(cg))
    state = _solver_state(mach.kind)(
        iter_num=np.asarray(st_[K.I_ITER]), value=fs[K.F_VALUE], grad=grad,
        stepsize=np.asarray(fs[K.F_STEP]), error=np.asarray(fs[K.F_ERROR]), aux=None,
        num_fun_eval=np.asarray(st_[K.I_NFUN], np.int32),
        num_grad_eval=np.asarray(st_[K.I_NGRAD], np.int32),
        num_linesearch_iter=np.asarray(st_[K.I_NLS], np.int32), **extra)
    finite = math.isfinite(fs[K.F_ERROR]) and math.isfinite(fs[K.F_VALUE])
    return base.OptStep(params, state), not finite


_LANE0 = np.zeros(1, np.int64)


def _boxcd_args(args, kwargs):
    """(params_obj, params_ineq) of a BoxCDQP run's arguments."""
    a = list(args)
    po = kwargs["params_obj"] if "params_obj" in kwargs else (a.pop(0) if a else None)
    pi = kwargs["params_ineq"] if "params_ineq" in kwargs else (a.pop(0) if a else None)
    return po, pi


def _boxcd_data(x, args, kwargs):
    """BoxCDQP's (n + 3, n) rows Q, c, l, u (float64 only), or None."""
    po, pi = _boxcd_args(args, kwargs)
    try:
        (Q, c), (l, u) = po, pi
    except (TypeError, ValueError):
        return None
    parts = [np.asarray(v) for v in (Q, c, l, u)]
    n = np.shape(x)[0] if np.ndim(x) == 1 else -1
    if any(p.dtype != np.float64 for p in parts + [np.asarray(x)]) or parts[0].shape != (n, n) \
            or any(p.shape != (n,) for p in parts[1:]):
        return None
    return np.concatenate([parts[0], np.stack(parts[1:])])


def _numba_typable(args):
    return all(isinstance(a, (np.ndarray, float, int, np.number)) and not isinstance(a, bool)
               for a in args)


# --------------------------------------------------------------------------
# Batched runs.

def _normalize_axes(in_axes, nargs):
    if in_axes is None or isinstance(in_axes, (int, np.integer)):
        return (in_axes,) * nargs
    in_axes = tuple(in_axes)
    if len(in_axes) != nargs:
        raise ValueError(f"in_axes: expected an int, None or a tuple of {nargs} entries (one "
                         f"for init_params and one per argument), got {len(in_axes)} entries")
    for a in in_axes:
        if a is not None and not isinstance(a, (int, np.integer)):
            raise ValueError(f"in_axes: expected ints or None, got {a!r}")
    return in_axes


def _to_lane_axis(x, axis, name):
    """Every leaf of x with its batched axis moved to the front."""
    def move(leaf):
        leaf = np.asarray(leaf)
        if leaf.ndim == 0:
            raise ValueError(f"{name}: a batched (in_axes={axis}) leaf must have an axis "
                             f"{axis}, got a scalar")
        return np.moveaxis(leaf, axis, 0)
    return T.tree_map(move, x)


def _batch_size(tree, name):
    sizes = {int(np.shape(leaf)[0]) for leaf in T.tree_leaves(tree)}
    if len(sizes) > 1:
        raise ValueError(f"{name}: batched leaves have different lane counts {sorted(sizes)}")
    return sizes.pop() if sizes else None


def _lane(tree, i):
    return T.tree_map(lambda leaf: leaf[i], tree)


def _take(tree, idx):
    return T.tree_map(lambda leaf: leaf[idx], tree)


class _Batch:
    """The arguments of a batched call, lane axis first."""

    def __init__(self, init_params, args, kwargs, in_axes, need_float=True):
        axes = _normalize_axes(in_axes, 1 + len(args))
        self.axes = axes
        self.x_batched = axes[0] is not None
        x = _to_lane_axis(init_params, axes[0], "init_params") if self.x_batched \
            else init_params
        self.args = tuple(_to_lane_axis(a, ax, f"args[{k}]") if ax is not None else a
                          for k, (a, ax) in enumerate(zip(args, axes[1:])))
        self.kwargs = {k: _to_lane_axis(v, 0, k) for k, v in kwargs.items()}
        sizes = {}
        if self.x_batched:
            sizes["init_params"] = _batch_size(x, "init_params")
        for k, (a, ax) in enumerate(zip(self.args, axes[1:])):
            if ax is not None:
                sizes[f"args[{k}]"] = _batch_size(a, f"args[{k}]")
        for k, v in self.kwargs.items():
            sizes[k] = _batch_size(v, k)
        sizes = {k: v for k, v in sizes.items() if v is not None}
        if not sizes:
            raise ValueError("in_axes: nothing is batched (every in_axes entry is None)")
        if len(set(sizes.values())) > 1:
            raise ValueError(f"in_axes: the batched arguments have different lane counts: "
                             f"{sizes}")
        self.B = next(iter(sizes.values()))
        self.x = x
        self.template = _lane(x, 0) if self.x_batched else x
        if not need_float:
            return
        from .linesearch import _real_dtype
        self.realdtype = _real_dtype(self.template, "init_params")
        leaves = [np.asarray(leaf, self.realdtype) for leaf in T.tree_leaves(x)]
        if self.x_batched:
            flat = np.concatenate([leaf.reshape(self.B, -1) for leaf in leaves], axis=1) \
                if leaves else np.zeros((self.B, 0), self.realdtype)
        else:
            f1 = np.concatenate([leaf.reshape(-1) for leaf in leaves]) if leaves \
                else np.zeros(0, self.realdtype)
            flat = np.broadcast_to(f1, (self.B, f1.size))
        self.x0 = np.ascontiguousarray(flat, self.realdtype)
        self.seg = leaf_offsets(self.template)

    def lane_args(self, i):
        return tuple(_lane(a, i) if ax is not None else a
                     for a, ax in zip(self.args, self.axes[1:])), \
            {k: _lane(v, i) for k, v in self.kwargs.items()}

    def take_args(self, idx):
        return tuple(_take(a, idx) if ax is not None else a
                     for a, ax in zip(self.args, self.axes[1:])), \
            {k: _take(v, idx) for k, v in self.kwargs.items()}

    def unravel_batch(self, flat, lead=None):
        """(L, n) -> the params pytree with leading axes ``lead`` (default (L,))."""
        lead = (flat.shape[0],) if lead is None else lead
        leaves, treedef = T.tree_flatten(self.template)
        out = []
        for k, leaf in enumerate(leaves):
            a, b = self.seg[k], self.seg[k + 1]
            out.append(np.ascontiguousarray(flat[:, a:b]).reshape(
                lead + np.shape(leaf)).astype(np.asarray(leaf).dtype, copy=False))
        return T.tree_unflatten(treedef, out)


def _progress(verbose, t0, last, mach, total_lanes, name):
    now = time.perf_counter()
    if not verbose or now - last[0] < PROGRESS_SECONDS:
        return
    last[0] = now
    done = int(np.count_nonzero(mach.st[:, K.I_PHASE] == K.PH_DONE))
    iters = int(mach.st[:, K.I_RUN_ITERS].sum())
    print(f"INFO: npopt.{name} batch: {done}/{total_lanes} lanes finished, "
          f"{iters / (now - t0):.0f} iterations/s", file=sys.stderr, flush=True)


def run_batch(solver, init_params, args=(), kwargs=None, in_axes=0, vectorized=False,
              executor=None, chunks=None, verbose=None, threads=None, residual_size=None):
    """Runs ``solver.run(init_params, *args, **kwargs)`` on every lane of a batch
    (see ``npopt.vmap``). Returns a BatchResult."""
    kwargs = {} if kwargs is None else dict(kwargs)
    reason = machine_unsupported(solver, batched=True)
    if reason is not None:
        raise NotImplementedError(f"npopt.{type(solver).__name__}: batched runs do not "
                                  f"support {reason} yet")
    from . import lanes_cuda
    if lanes_cuda.has_device_data(init_params, args, kwargs):
        if executor is not None or vectorized:
            raise ValueError("executor, vectorized: CUDA lanes run on the device that holds "
                             "the data; pass NumPy arrays to use them")
        return lanes_cuda.run_batch_cuda(solver, init_params, args, kwargs, in_axes,
                                         solver.verbose if verbose is None else verbose,
                                         residual_size)
    if _kinds()[type(solver)] == K.KIND_BISECT:   # init_params is ignored
        axes = _normalize_axes(in_axes, 1 + len(args))
        init_params, in_axes = np.asarray(0.0), (None,) + tuple(axes[1:])
    batch = _Batch(init_params, args, kwargs, in_axes)
    if batch.x0.dtype.kind != "f":
        raise TypeError("init_params: batched runs take real float32/float64 params")
    verbose = solver.verbose if verbose is None else verbose
    if executor is not None:
        return _run_on_executor(solver, batch, init_params, args, kwargs, in_axes, vectorized,
                                executor, chunks)
    rshape = None
    if _kinds()[type(solver)] == K.KIND_ANDERSON and batch.realdtype != np.float64:
        return None
    if _kinds()[type(solver)] in (K.KIND_LM, K.KIND_GN):
        if batch.realdtype != np.float64:
            return None                      # float32 LM: lane by lane (the Python solver)
        a0, kw0 = batch.lane_args(0)
        _refuse_residual_buffer(solver, len(a0) + len(kw0))
        solver._res.reset()
        rshape = solver._res(_lane(batch.unravel_batch(batch.x0[:1]), 0), a0, kw0)[0].shape
        if residual_size is not None and int(np.prod(rshape)) != residual_size:
            raise ValueError(f"residual_size: residual_fun returns {int(np.prod(rshape))} "
                             f"residuals, not {residual_size}")
    mach = Machine(solver, batch.x0, batch.seg, batch.realdtype, residual_shape=rshape)
    if _kinds()[type(solver)] == K.KIND_BOXCDQP:
        for i in range(batch.B):
            a_i, kw_i = batch.lane_args(i)
            x_i = batch.x0[i]
            solver._check(x_i, *a_i, **kw_i)
            solver._check_psd(_boxcd_args(a_i, kw_i)[0][0])
            data = _boxcd_data(x_i, a_i, kw_i)
            if data is None:
                return None                  # not float64: lane by lane
            mach.hist[i, 0] = data
    name = type(solver).__name__
    t0 = time.perf_counter()
    last = [t0]
    compiled = compiled_objective(solver)
    flat_params = type(batch.template) is np.ndarray and batch.template.ndim == 1
    skip = _hyper_args(solver)                 # hyperparams_prox/proj come first
    if compiled is not None and flat_params and not kwargs and not vectorized \
            and len(args) >= skip \
            and all(_numba_typable(T.tree_leaves(a)) and type(a) is not tuple
                    for a in args[skip:]) \
            and _prox_on_machine(solver, mach, batch.args[0] if skip else None,
                                 skip and batch.axes[1] is not None):
        fun, gfun = compiled
        wrapped = tuple(np.ascontiguousarray(a) if ax is not None else (a,)
                        for a, ax in zip(batch.args[skip:], batch.axes[1 + skip:]))
        lane_types = lambda: _numba_types(batch.lane_args(0)[0][skip:])   # noqa: E731
        remaining = np.arange(batch.B, dtype=np.int64)
        budget = 64 if verbose else _NO_BUDGET
        threads = default_threads() if threads is None else int(threads)
        while remaining.size:
            drive_compiled(mach, fun, gfun, wrapped, lane_types, remaining, budget, threads)
            remaining = remaining[mach.st[remaining, K.I_PHASE] != K.PH_DONE]
            _progress(verbose, t0, last, mach, batch.B, name)
    else:
        _refuse_buffer_form(solver, compiled, len(args) - skip + len(kwargs))
        _drive_python_batch(solver, mach, batch, vectorized, verbose, t0, last)
    status = mach.status()
    if np.any(status == K.NO_SIGN_CHANGE):
        bad = np.flatnonzero(status == K.NO_SIGN_CHANGE)
        raise ValueError(f"lower, upper: optimality_fun has no sign change on [lower, upper] = "
                         f"[{solver.lower!r}, {solver.upper!r}] in lanes {bad.tolist()} "
                         f"(f(lower) = {mach.fs[bad, K.F_VLOW].tolist()}, f(upper) = "
                         f"{mach.fs[bad, K.F_VHIGH].tolist()}); widen the bracket (or pass "
                         f"check_bracket=False)")
    params, state = mach.states(batch.unravel_batch, batch.realdtype)
    return BatchResult(params, state, status)


def _drive_python_batch(solver, mach, batch, vectorized, verbose, t0, last):
    """The active-lane loop: advance every lane that has its evaluation, then
    evaluate the lanes that asked (in one vectorised call, or lane by lane)."""
    lanes = np.arange(batch.B, dtype=np.int64)
    tasks = np.zeros(batch.B, np.int64)
    vg = getattr(getattr(solver, "_pg", solver), "_value_and_grad_with_aux", None)
    evaluators = {}
    with np.errstate(all="ignore"):
        while lanes.size:
            K.advance_lanes(lanes, tasks[:lanes.size], mach.vec, mach.hist, mach.fs, mach.st,
                            mach.hp, mach.ip, mach.seg, mach.part)
            keep = tasks[:lanes.size] != K.TASK_DONE
            lanes = lanes[keep]
            tasks[:lanes.size] = tasks[:keep.size][keep]
            if not lanes.size:
                break
            if vectorized:
                ask = tasks[:lanes.size]
                for k in np.flatnonzero(ask == K.TASK_PROX):     # prox: lane by lane
                    i = lanes[k]
                    evaluate = evaluators.get(i)
                    if evaluate is None:
                        a, kw = batch.lane_args(i)
                        evaluate = evaluators[i] = _python_evaluator(solver, batch.template,
                                                                     a, kw)
                    evaluate(mach.vec[i, K.XT], mach.vec[i, K.GT], K.TASK_PROX, mach.fs[i])
                fl = lanes[ask != K.TASK_PROX]
                if fl.size:
                    _evaluate_vectorized(solver, vg, mach, batch, fl)
            else:
                for k, i in enumerate(lanes):
                    evaluate = evaluators.get(i)
                    if evaluate is None:
                        a, kw = batch.lane_args(i)
                        evaluate = evaluators[i] = _python_evaluator(
                            solver, batch.template, a, kw, mach.residual_shape)
                    evaluate(mach.vec[i, K.XT], mach.vec[i, K.GT], tasks[k], mach.fs[i],
                             mach.hist[i, 0, 0] if mach.kind in (K.KIND_LM, K.KIND_GN)
                             else None)
            _progress(verbose, t0, last, mach, batch.B, type(solver).__name__)


def _evaluate_vectorized(solver, vg, mach, batch, lanes):
    """One call of the batched objective on the lanes that asked:
    ``fun(params[lanes], *args[lanes]) -> (values (k,), grads (k, ...))``."""
    xt = mach.vec[lanes, K.XT]
    params = batch.unravel_batch(xt)
    a, kw = batch.take_args(lanes)
    a = a[_hyper_args(solver):]
    if vg is None:                       # a value-only solver (Bisection)
        values, _ = solver._fun_with_aux(params, *a, **kw)
        values = np.asarray(values)
        if values.shape != (lanes.size,):
            raise ValueError(f"fun: a vectorized objective must return one value per lane, "
                             f"shape ({lanes.size},); got shape {values.shape}")
        mach.fs[lanes, K.F_TRIAL] = values
        return
    (values, _), grads = vg(params, *a, **kw)
    values = np.asarray(values)
    if values.shape != (lanes.size,):
        raise ValueError(f"fun: a vectorized objective must return one value per lane, "
                         f"shape ({lanes.size},); got shape {values.shape}")
    leaves = T.tree_leaves(grads)
    tl = T.tree_leaves(params)
    if len(leaves) != len(tl) or any(np.shape(g) != np.shape(p) for g, p in zip(leaves, tl)):
        raise ValueError("grad: a vectorized objective must return gradients shaped as the "
                         "batched params")
    g = np.concatenate([np.reshape(leaf, (lanes.size, -1)) for leaf in leaves], axis=1) \
        if leaves else np.zeros((lanes.size, 0))
    mach.fs[lanes, K.F_TRIAL] = values
    mach.vec[lanes, K.GT] = g


def _run_chunk(solver, init_params, args, kwargs, in_axes, vectorized):
    return run_batch(solver, init_params, args, kwargs, in_axes, vectorized, verbose=False)


def _run_on_executor(solver, batch, init_params, args, kwargs, in_axes, vectorized, executor,
                     chunks):
    """Splits the lanes into chunks, runs each as one batched call on the
    executor, and concatenates the results in lane order."""
    if not isinstance(executor, concurrent.futures.Executor) and not hasattr(executor, "submit"):
        raise TypeError(f"executor: expected a concurrent.futures.Executor (or an object "
                        f"with submit), got {type(executor).__name__}")
    B = batch.B
    nchunks = chunks or min(B, max(1, getattr(executor, "_max_workers", 4) * 4))
    bounds = np.linspace(0, B, nchunks + 1).astype(int)
    axes = batch.axes
    futures = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        if a == b:
            continue
        idx = np.arange(a, b)
        x = _take(batch.x, idx) if axes[0] is not None else init_params
        ca, ckw = batch.take_args(idx)
        futures.append(executor.submit(_run_chunk, solver, x, ca, ckw,
                                       (0 if axes[0] is not None else None,)
                                       + tuple(0 if ax is not None else None for ax in axes[1:]),
                                       vectorized))
    results = [f.result() for f in futures]
    cat = lambda *xs: np.concatenate(xs, axis=0)   # noqa: E731
    params = T.tree_map(cat, *[r.params for r in results])
    state = type(results[0].state)(*[
        None if getattr(results[0].state, f) is None
        else T.tree_map(cat, *[getattr(r.state, f) for r in results])
        for f in results[0].state._fields])
    return BatchResult(params, state, np.concatenate([r.status for r in results]))

