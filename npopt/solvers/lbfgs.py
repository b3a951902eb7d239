r"""Limited-memory BFGS (jaxopt 0.8.5's ``LBFGS``).

Each iteration computes the quasi-Newton direction ``d = -H_k conj(g_k)`` by
the two-loop recursion over the last ``history_size`` pairs

.. math::
    s_i = x_{i+1} - x_i,\qquad y_i = \overline{g_{i+1} - g_i},\qquad
    \rho_i = 1 / \mathrm{Re}\langle s_i, y_i\rangle\ (0 \text{ if } \langle s_i, y_i\rangle = 0)

with the initial matrix ``H_k^0 = gamma_k I``, ``gamma_k = <s, y> / <y, y>``
of the newest pair (Nocedal & Wright (7.20); 1 without ``use_gamma``), takes
a step along ``d`` (a line search, zoom by default, or a fixed step), and
stores the new pair in a ring buffer at slot ``iter_num % history_size``.
The stopping criterion is ``||grad||_2 <= tol``.

The histories live in two ``(history_size, n)`` arrays over the ravelled
params; ``state.s_history`` / ``state.y_history`` are pytrees of views into
them (leaves of shape ``(history_size,) + leaf.shape``, jaxopt's layout;
``npopt._flat.stacked_views``).
The recursion and the history update are numba kernels
(``npopt.kernels.lbfgs``, part B); ``run`` updates the buffers in place,
``update`` on copies (the state it was given is left untouched).

References:
  J. Nocedal and S. Wright, Numerical Optimization, 2nd edition, Algorithms
  7.4 (two-loop recursion, p. 178) and 7.5 (L-BFGS, p. 179).
  L. Sorber, M. van Barel and L. de Lathauwer, Unconstrained optimization of
  real functions in complex variables, SIAM J. Optim. 22(3), 2012.
"""
import dataclasses
import warnings
from typing import Any, Callable, NamedTuple, Optional, Union

import numpy as np

from .. import _target
from .. import tree as T
from .._checks import check_callable
from .._flat import flat_of, ravel, stacked_buffer, stacked_views, unraveler
from ..kernels import _jit
from ..kernels import lbfgs as K
from . import base
from . import engine
from . import linesearch as ls_mod

_EVAL = np.int32


# --------------------------------------------------------------------------
# Flat buffers <-> pytrees: npopt._flat (flat_of, stacked_views, stacked_buffer).

def _chunks(n):
    return max(1, -(-n // _jit.CHUNK))


# --------------------------------------------------------------------------
# jaxopt's module-level helpers, on pytrees.

def select_ith_tree(tree_history, i):
    """The i-th entry of a history pytree."""
    return T.tree_map(lambda a: a[i, ...], tree_history)


def init_history(pytree, history_size):
    """Zero histories shaped ``(history_size,) + leaf.shape`` (one buffer)."""
    flat = flat_of(pytree)
    return stacked_views(np.zeros((history_size, flat.size), flat.dtype), pytree)


def update_history(history_pytree, new_pytree, last):
    """A copy of the history with entry ``last`` replaced by ``new_pytree``."""
    def put(h, v):
        h = np.array(h, copy=True)
        h[last] = v
        return h
    return T.tree_map(put, history_pytree, new_pytree)


def _two_loop(r, S, Y, rho, gamma, start):
    """r <- H r in place (the kernel); r: (n,), S, Y: (m, n)."""
    if _target.is_device_array(r):
        return _two_loop_device(r, S, Y, rho, gamma, start)
    rdt = np.finfo(r.dtype).dtype
    m = S.shape[0]
    K.two_loop_cpu(r, S, Y, np.asarray(rho, rdt), rdt.type(gamma), int(start), rdt.type(0),
                   np.empty(m, rdt), np.empty(_chunks(r.size), rdt))
    return r


def _two_loop_device(r, S, Y, rho, gamma, start):
    """The two-loop recursion on CUDA arrays (r, S, Y on the device; rho on
    the host): per pair, a chunked dot product (its chunk sums come back to
    the host and are added in order, as on the CPU) and an axpy kernel."""
    rdt = np.finfo(r.dtype).dtype
    n, m = r.shape[0], S.shape[0]
    nch = _chunks(n)
    zero = rdt.type(0)
    partial = _jit.cuda.device_array(nch, rdt)
    rho = np.asarray(rho, rdt)
    alpha = np.empty(m, rdt)

    def dot(row):
        K.dot_chunks_cuda(nch, row, r, zero, partial)
        return K.combine(partial.copy_to_host(), zero)

    for j in range(m - 1, -1, -1):
        i = (start + j) % m
        alpha[i] = rho[i] * dot(S[i])
        K.axpy_cuda(n, r, -alpha[i], Y[i], r)
    K.scale_cuda(n, r, rdt.type(gamma), r)
    for j in range(m):
        i = (start + j) % m
        K.axpy_cuda(n, r, alpha[i] - rho[i] * dot(Y[i]), S[i], r)
    return r


def inv_hessian_product(pytree, s_history, y_history, rho_history, gamma=1.0, start=0):
    """The L-BFGS inverse-Hessian approximation times ``pytree`` (the two-loop
    recursion, Nocedal & Wright Algorithm 7.4), jaxopt's signature: histories
    are pytrees shaped like ``pytree`` with a leading ``history_size`` axis,
    ``rho_history[k] = 1 / <s_k, y_k>``, ``gamma * I`` the initial matrix,
    ``start`` the slot after the newest pair."""
    flat, unravel = ravel(pytree)
    m = np.shape(rho_history)[0]
    S = stacked_buffer(s_history, m, flat.size, flat.dtype)
    Y = stacked_buffer(y_history, m, flat.size, flat.dtype)
    return unravel(_two_loop(flat, S, Y, rho_history, gamma, start))


def compute_gamma(s_history, y_history, last):
    """``<y, s> / <y, y>`` of entry ``last`` (Nocedal & Wright (7.20)); 1 if
    ``<y, y> <= 0``."""
    s = select_ith_tree(s_history, last)
    y = select_ith_tree(y_history, last)
    num = T.tree_vdot_real(y, s)
    denom = T.tree_vdot_real(y, y)
    return num / denom if denom > 0 else np.asarray(1.0, np.result_type(denom))


# --------------------------------------------------------------------------

class LbfgsState(NamedTuple):
    """jaxopt's LbfgsState."""
    iter_num: int
    value: float
    grad: Any
    stepsize: float
    error: float
    s_history: Any
    y_history: Any
    rho_history: np.ndarray
    gamma: np.ndarray
    aux: Optional[Any] = None
    failed_linesearch: bool = False
    num_fun_eval: int = 0
    num_grad_eval: int = 0
    num_linesearch_iter: int = 0


def check_solver_knobs(solver):
    """The line-search knobs LBFGS, BFGS and NonlinearCG share."""
    check_callable("fun", solver.fun)
    ls_mod.check_linesearch(solver.linesearch)
    ls_mod.check_linesearch_init(solver.linesearch_init)
    v = solver.maxls
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
        raise ValueError(f"maxls: expected a non-negative integer, got {v!r}")
    for name in ("max_stepsize", "min_stepsize", "increase_factor"):
        v = getattr(solver, name)
        if not (isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
                and np.isfinite(v) and v > 0):
            raise ValueError(f"{name}: expected a finite number > 0, got {v!r}")
    st = getattr(solver, "stepsize", 0.0)
    if not callable(st) and not (isinstance(st, (int, float, np.number)) and np.isfinite(st)):
        raise ValueError(f"stepsize: expected a finite number (<= 0: line search) or a "
                         f"callable of the iteration number, got {st!r}")
    if solver.condition is not None:
        warnings.warn("condition: deprecated in jaxopt 0.8 and ignored", DeprecationWarning,
                      stacklevel=4)
    if solver.decrease_factor is not None:
        warnings.warn("decrease_factor: deprecated in jaxopt 0.8 and ignored",
                      DeprecationWarning, stacklevel=4)


def make_funs_and_linesearch(solver):
    """(fun_with_aux, value_and_grad_with_aux, line search) of a solver, the
    line search built as jaxopt's ``_setup_linesearch`` builds it."""
    f, vg = base.make_value_and_grad(solver.fun, solver.value_and_grad, solver.has_aux,
                                     solver.grad, owner=type(solver).__name__)
    ls = ls_mod.setup_linesearch(solver.linesearch, f, vg, True, solver.maxls,
                                 solver.max_stepsize, max(int(solver.verbose) - 1, 0),
                                 aux_is_none=not solver.has_aux)
    return f, vg, ls


evaluate = base.evaluate     # (value, aux, grad), checked; BFGS, NonlinearCG and LBFGSB import it


@dataclasses.dataclass(eq=False)
class LBFGS(base.IterativeSolver):
    """L-BFGS: limited-memory BFGS with a line search (see the module docstring).

    Attributes:
      fun: ``fun(params, *args, **kwargs)``, smooth (see value_and_grad,
        has_aux, grad; ``npopt.solvers.base``).
      maxiter (500), tol (1e-3: jaxopt's default, meant for float32; use
        ~1e-6 or lower in float64).
      stepsize: <= 0 (default): the line search; a number or a callable
        ``stepsize(iter_num)``: a fixed step along the L-BFGS direction.
      linesearch: 'zoom' (default), 'backtracking', 'hager-zhang', or a line
        search instance (``npopt.solvers.ZoomLineSearch(...)``).
      linesearch_init: the first trial step: 'increase' (default: the last
        step times increase_factor, or max_stepsize once it fell to
        min_stepsize), 'max' or 'current'.
      stop_if_linesearch_fails: stop ``run`` when a line search fails.
      condition, decrease_factor: deprecated in jaxopt 0.8 (warning, ignored).
      maxls: line-search iterations at most (30).
      increase_factor (1.5), max_stepsize (1.0: also the line search's
        largest step), min_stepsize (1e-6).
      history_size: pairs kept (10); 0 gives gradient descent with the line
        search.
      use_gamma: scale the initial inverse Hessian by gamma (True).
      implicit_diff, implicit_diff_solve, jit, unroll: accepted for
        compatibility.
      verbose: 1 prints each iteration, 2 the line search's too.
    """
    fun: Callable
    value_and_grad: Union[bool, Callable] = False
    has_aux: bool = False
    maxiter: int = 500
    tol: float = 1e-3
    stepsize: Union[float, Callable] = 0.0
    linesearch: Any = "zoom"
    linesearch_init: str = "increase"
    stop_if_linesearch_fails: bool = False
    condition: Any = None
    maxls: int = 30
    decrease_factor: Any = None
    increase_factor: float = 1.5
    max_stepsize: float = 1.0
    min_stepsize: float = 1e-6
    history_size: int = 10
    use_gamma: bool = True
    implicit_diff: bool = True
    implicit_diff_solve: Optional[Callable] = None
    jit: bool = True
    unroll: Any = "auto"
    verbose: Union[bool, int] = False
    grad: Optional[Callable] = None
    optimality_jvp: Optional[Callable] = None   # see npopt.implicit_diff
    optimality_vjp: Optional[Callable] = None

    def __post_init__(self):
        super().__post_init__()
        check_solver_knobs(self)
        v = self.history_size
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"history_size: expected a non-negative integer, got {v!r}")
        self._fun_with_aux, self._value_and_grad_with_aux, self.linesearch_solver = \
            make_funs_and_linesearch(self)

    def _cond(self, state):
        return bool(state.error > self.tol) and (not self.stop_if_linesearch_fails
                                                 or not bool(state.failed_linesearch))

    # -- state -----------------------------------------------------------
    def init_state(self, init_params, *args, **kwargs):
        """The initial LbfgsState (zero histories; or, for an OptStep, its
        state's histories, step and iteration count: a warm start)."""
        if isinstance(init_params, base.OptStep):
            st = init_params.state
            init_params = init_params.params
            realdtype = ls_mod._real_dtype(init_params, "init_params")
            kw = dict(s_history=st.s_history, y_history=st.y_history,
                      rho_history=st.rho_history, gamma=st.gamma, iter_num=st.iter_num,
                      stepsize=st.stepsize)
        else:
            realdtype = ls_mod._real_dtype(init_params, "init_params")
            kw = dict(s_history=init_history(init_params, self.history_size),
                      y_history=init_history(init_params, self.history_size),
                      rho_history=np.zeros(self.history_size, realdtype),
                      gamma=np.asarray(1.0, realdtype), iter_num=np.asarray(0),
                      stepsize=np.asarray(self.max_stepsize, realdtype))
        value, aux, grad = evaluate(self._value_and_grad_with_aux, init_params, args, kwargs)
        return LbfgsState(value=value, grad=grad, error=np.asarray(np.inf, realdtype), aux=aux,
                          failed_linesearch=np.asarray(False),
                          num_grad_eval=np.asarray(1, _EVAL), num_fun_eval=np.asarray(1, _EVAL),
                          num_linesearch_iter=np.asarray(0, _EVAL), **kw)

    # -- one iteration ---------------------------------------------------
    def update(self, params, state, *args, **kwargs):
        """One L-BFGS iteration; the given state is not modified. Returns OptStep."""
        return self._update(params, state, args, kwargs, inplace=False)

    def _update(self, params, state, args, kwargs, inplace):
        if isinstance(params, base.OptStep):
            params = params.params
        realdtype = np.asarray(state.rho_history).dtype
        m = self.history_size
        value, grad = state.value, state.grad
        g = flat_of(grad)
        n = g.size
        d = -np.conj(g) if np.iscomplexobj(g) else -g
        if m:
            start = int(state.iter_num) % m
            S = stacked_buffer(state.s_history, m, n, g.dtype)
            Y = stacked_buffer(state.y_history, m, n, g.dtype)
            rho = np.asarray(state.rho_history, realdtype)
            _two_loop(d, S, Y, rho, state.gamma, start)
        unravel = unraveler(params)
        descent_direction = unravel(d)

        if not callable(self.stepsize) and self.stepsize <= 0:
            init = ls_mod.init_stepsize(self.linesearch_init, self.max_stepsize,
                                        self.min_stepsize, self.increase_factor, state.stepsize)
            new_stepsize, ls_state = self.linesearch_solver.run(
                init, params, value, grad, descent_direction, args,
                kwargs)
            new_params, new_value = ls_state.params, ls_state.value
            new_grad, new_aux = ls_state.grad, ls_state.aux
            failed_linesearch = np.asarray(bool(ls_state.failed))
            num_ls = state.num_linesearch_iter + ls_state.iter_num
            num_grad = state.num_grad_eval + ls_state.num_grad_eval
            num_fun = state.num_fun_eval + ls_state.num_fun_eval
        else:
            new_stepsize = self.stepsize(state.iter_num) if callable(self.stepsize) \
                else self.stepsize
            new_params = ls_mod.axpy(params, new_stepsize, descent_direction)
            new_value, new_aux, new_grad = evaluate(self._value_and_grad_with_aux, new_params,
                                                    args, kwargs)
            num_grad = state.num_grad_eval + 1
            num_fun = state.num_fun_eval + 1
            num_ls = state.num_linesearch_iter
            failed_linesearch = np.asarray(False)

        s_history, y_history, rho_history = state.s_history, state.y_history, state.rho_history
        gamma = np.asarray(1.0, realdtype)
        if m:
            if not inplace:
                S, Y, rho = S.copy(), Y.copy(), rho.copy()
            partial = np.empty((_chunks(n), 2), realdtype)
            zero = realdtype.type(0)
            K.history_update_cpu(flat_of(new_params), flat_of(params), flat_of(new_grad), g,
                                 S[start], Y[start], zero, partial)
            vdot_sy = K.combine(partial[:, 0].copy(), zero)
            vdot_yy = K.combine(partial[:, 1].copy(), zero)
            with np.errstate(divide="ignore", over="ignore"):
                rho[start] = 0 if vdot_sy == 0 else 1.0 / vdot_sy
            if self.use_gamma:
                gamma = np.asarray(vdot_sy / vdot_yy if vdot_yy > 0 else 1.0, realdtype)
            s_history, y_history = stacked_views(S, grad), stacked_views(Y, grad)
            rho_history = rho

        error = T.tree_l2_norm(new_grad)
        new_state = LbfgsState(
            iter_num=state.iter_num + 1, value=new_value, grad=new_grad,
            stepsize=np.asarray(new_stepsize, realdtype), error=np.asarray(error, realdtype),
            s_history=s_history, y_history=y_history, rho_history=rho_history, gamma=gamma,
            aux=new_aux, failed_linesearch=failed_linesearch,
            num_grad_eval=np.asarray(num_grad, _EVAL), num_fun_eval=np.asarray(num_fun, _EVAL),
            num_linesearch_iter=np.asarray(num_ls, _EVAL))
        if self.verbose:
            self.log_info(new_state, "Gradient Norm",
                          {"Objective Value": new_value, "Stepsize": new_stepsize,
                           "Number Linesearch Iterations":
                               int(new_state.num_linesearch_iter - state.num_linesearch_iter)})
        return base.OptStep(new_params, new_state)

    def run(self, init_params, *args, **kwargs):
        """Runs L-BFGS from ``init_params`` (or an OptStep: a warm start):
        updates while ``||grad|| > tol`` (and, with stop_if_linesearch_fails,
        the line search has not failed), ``maxiter`` at most. The history
        buffers are updated in place."""
        out = engine.try_run(self, init_params, args, kwargs)
        if out is not None:               # the compiled state machine ran it
            return out
        state = self.init_state(init_params, *args, **kwargs)
        if self.maxiter == 0:
            return self._make_zero_step(init_params, state)
        if isinstance(init_params, base.OptStep) and self.history_size:
            # the warm-start histories belong to the caller: work on copies
            n = flat_of(state.grad).size
            dt = flat_of(state.grad).dtype
            state = state._replace(
                s_history=stacked_views(stacked_buffer(state.s_history, self.history_size, n,
                                                       dt).copy(), state.grad),
                y_history=stacked_views(stacked_buffer(state.y_history, self.history_size, n,
                                                       dt).copy(), state.grad),
                rho_history=np.array(state.rho_history, copy=True))
        params, state = self._update(init_params, state, args, kwargs, inplace=True)
        for _ in range(self.maxiter - 1):
            if not self._cond(state):
                break
            params, state = self._update(params, state, args, kwargs, inplace=True)
        self._warn_if_not_finite(state)
        return base.OptStep(params, state)

    def optimality_fun(self, params, *args, **kwargs):
        """The gradient of ``fun`` (zero at a stationary point)."""
        if isinstance(params, base.OptStep):
            params = params.params
        return self._value_and_grad_with_aux(params, *args, **kwargs)[1]
