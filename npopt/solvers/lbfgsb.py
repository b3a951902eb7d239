r"""L-BFGS-B: L-BFGS with box constraints (jaxopt 0.8.5's ``LBFGSB``).

Minimises ``fun(x)`` subject to ``lower <= x <= upper``. Each iteration
(Byrd, Lu, Nocedal & Zhu 1995) uses the compact limited-memory model
``B = theta I - W M W^T`` with ``W = [Y, theta S]`` (n x 2m) and

.. math::
    M = \begin{pmatrix} -D & L^\top \\ L & \theta S^\top S \end{pmatrix}^{-1},
    \qquad D = \mathrm{diag}(s_i^\top y_i),\quad L = \mathrm{tril}(S^\top Y, -1)

(eq. (3.3)-(3.4); empty slots padded to keep the matrix invertible) to

1. find the generalised Cauchy point: the first minimiser of the quadratic
   model along the projected steepest-descent path ``P(x - t g)``, walking
   its breakpoints in increasing order (Algorithm CP);
2. minimise the model over the variables still free, from the Cauchy point
   (the direct primal method, Section 5.1), backtracking into the box;
3. search along ``d = x_sub - x`` (zoom by default; steps at most 1 keep the
   iterate in the box) or take a fixed step and clip;
4. keep the pair ``(s, y)`` only if ``<y, s> > 0``, in slot
   ``num_updates % history_size``, and set ``theta = self.theta <y, y> / <y, s>``
   (``self.theta`` without ``use_gamma``).

The stopping criterion is ``||clip(x - g, lower, upper) - x||_inf <= tol``.

.. warning:: jaxopt's choices, kept: ``L`` is the lower triangle of the ring
   buffer in slot order, not in time order, once the buffer wraps around;
   ``init_state``'s error is the projected gradient norm (not inf), yet
   ``run`` always makes at least one update; with
   ``linesearch='hager-zhang'`` (which ignores ``max_stepsize``) a step may
   exceed 1 and leave the box.

Reference:
  R. H. Byrd, P. Lu, J. Nocedal and C. Zhu, A limited memory algorithm for
  bound constrained optimization, SIAM J. Sci. Comput. 16(5), 1995.
"""
import dataclasses
from typing import Any, Callable, NamedTuple, Optional, Union

import numpy as np

from .. import _dense
from .. import tree as T
from .._flat import flat_of, stacked_buffer, stacked_views
from ..kernels import lbfgs as K
from . import base
from . import linesearch as ls_mod
from .lbfgs import check_solver_knobs, evaluate, init_history, make_funs_and_linesearch

_EVAL = np.int32


class LbfgsbState(NamedTuple):
    """jaxopt's LbfgsbState."""
    iter_num: int
    value: float
    grad: Any
    stepsize: float
    error: float
    s_history: Any
    y_history: Any
    theta: np.ndarray
    num_updates: np.ndarray
    aux: Optional[Any] = None
    failed_linesearch: bool = False
    num_fun_eval: int = 0
    num_grad_eval: int = 0
    num_linesearch_iter: int = 0


def _bounds(bounds, params):
    """(lower, upper) as flat arrays of the params' dtype (+-inf for None)."""
    flat = flat_of(params)
    if bounds is None:
        return np.full(flat.shape, -np.inf, flat.dtype), np.full(flat.shape, np.inf, flat.dtype)
    if not (isinstance(bounds, (tuple, list)) and len(bounds) == 2):
        raise ValueError(f"bounds: expected None or a pair (lower, upper), got "
                         f"{type(bounds).__name__}")
    out = []
    leaves, treedef = T.tree_flatten(params)
    leaf_def = T.tree_structure(0.0)
    for name, b in zip(("lower", "upper"), bounds):
        if T.tree_structure(b) == leaf_def:
            bl = [b] * len(leaves)       # one bound (array or scalar) for every leaf
        else:
            try:
                bl = treedef.flatten_up_to(b, f"bounds ({name})")
                if any(T.tree_structure(x) != leaf_def for x in bl):
                    raise ValueError
            except (ValueError, TypeError):
                raise ValueError(f"bounds: expected {name} to be a scalar or a tree with the "
                                 f"structure of the params {treedef}, got "
                                 f"{T.tree_structure(b)}") from None
        try:
            parts = [np.broadcast_to(np.asarray(x, flat.dtype), np.shape(p)).reshape(-1)
                     for x, p in zip(bl, leaves)]
        except ValueError:
            raise ValueError(f"bounds: {name} leaves must broadcast to the params' shapes "
                             f"{[np.shape(p) for p in leaves]}") from None
        out.append(np.concatenate(parts) if parts else np.zeros(0, flat.dtype))
    if np.any(out[0] > out[1]):
        raise ValueError("bounds: expected lower <= upper everywhere")
    return out[0], out[1]


def projected_gradient_error(x, g, lower, upper):
    """``||clip(x - g, lower, upper) - x||_inf`` (flat arrays)."""
    if x.size == 0:
        return np.asarray(0.0, x.dtype)[()]
    return np.max(np.abs(np.clip(x - g, lower, upper) - x))


def compact_matrices(S, Y, theta, num_updates):
    """``W = [Y^T, theta S^T]^T``-style (n, 2m) matrix and ``M`` of eq. (3.4),
    from the (m, n) ring buffers (jaxopt's construction, slot order)."""
    m = S.shape[0]
    W = np.concatenate([Y, theta * S], axis=0).T
    s_dot_yt = _dense.dot(S, Y.T)
    diagonal_ones = (np.arange(m) >= num_updates).astype(S.dtype)
    prev = num_updates % m - 1
    fill_syt = s_dot_yt[prev, prev] if num_updates > 0 else 1.0
    lower_tril = np.tril(s_dot_yt, -1)
    diag = -np.diag(np.diag(s_dot_yt)) + np.diag(diagonal_ones * fill_syt)
    s_dot_st = _dense.dot(S, S.T)
    fill_sst = s_dot_st[prev, prev] if num_updates > 0 else 1.0
    sst_adj = np.diag(diagonal_ones * fill_sst) * theta
    m_inv = np.block([[diag, lower_tril.T], [lower_tril, sst_adj + theta * s_dot_st]])
    try:
        return W, _dense.inv(m_inv)
    except np.linalg.LinAlgError:       # an inner system: NaN as jax's inv (no raise)
        return W, np.full_like(m_inv, np.nan)


def cauchy_point(x, g, lower, upper, theta, W, M):
    """The generalised Cauchy point (Algorithm CP of Byrd et al.). Returns
    (x_cauchy, c, free) with ``c = W^T (x_cauchy - x)``-like vector that
    starts the subspace minimisation and ``free`` the variables not at a
    bound."""
    eps = np.finfo(x.dtype).eps
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(np.abs(g) < eps, np.inf,
                     np.where(g < 0.0, (x - upper) / g, (x - lower) / g))
    d = np.where(t < eps, 0.0, -g).astype(x.dtype)
    x_bound = np.where(d > 0.0, upper, np.where(d < 0.0, lower, x))
    t_ind = np.argsort(t, kind="stable")
    t_sorted = t[t_ind]
    with np.errstate(invalid="ignore"):
        dt = np.diff(np.concatenate([np.zeros(1, t.dtype), t_sorted]))
    mask_sorted = t_sorted > eps
    start = int(np.argmax(np.concatenate([mask_sorted, [True]])))
    c = np.zeros(M.shape[-1], M.dtype)
    p = _dense.dot(W.T, d)
    df = -_dense.dot(d, d)
    ddf = -theta * df - _dense.dot(_dense.dot(M, p), p)
    i, df, ddf = K.cauchy_walk(start, df, ddf, t_ind, dt, g, x_bound, x, W, M,
                               np.asarray(theta, M.dtype)[()], np.asarray(eps, M.dtype)[()],
                               c, p, mask_sorted)
    df, ddf = M.dtype.type(df), M.dtype.type(ddf)         # numba returns Python floats
    with np.errstate(divide="ignore", invalid="ignore"):
        dt_min = np.maximum(-df / ddf, 0.0)
    if np.isnan(dt_min):
        dt_min = 0.0
    t_old = (t_sorted[i - 1] if i > 0 else 0.0) + dt_min
    free = mask_sorted[np.argsort(t_ind, kind="stable")]
    x_cauchy = np.where(free, x + t_old * d, x_bound)
    return x_cauchy, c + dt_min * p, free


def minimize_subspace(x, g, lower, upper, x_cauchy, c, theta, W, M, free):
    """The direct primal subspace minimisation (Section 5.1 of Byrd et al.),
    backtracked into the box."""
    Wf = W * free[:, None].astype(W.dtype)
    r_c = g + theta * (x_cauchy - x) - _dense.dot(Wf, _dense.dot(M, c))            # eq. (5.4)
    v = _dense.dot(M, _dense.dot(Wf.T, r_c))
    N = np.eye(M.shape[-1], dtype=W.dtype) - _dense.dot(M, _dense.dot(Wf.T, Wf) / theta)
    try:
        v = _dense.solve(N, v)
    except np.linalg.LinAlgError:       # an inner system: NaN as jax's solve (no raise)
        v = np.full_like(v, np.nan)
    du = -r_c / theta - _dense.dot(Wf, v) / theta ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.maximum((upper - x_cauchy) / du, (lower - x_cauchy) / du)
    alpha = np.where(free & (np.abs(du) > 0.0), alpha, 1.0)
    alpha_star = min(np.min(alpha, initial=np.inf), 1.0)
    return np.where(free, x_cauchy + alpha_star * du, x_cauchy)


@dataclasses.dataclass(eq=False)
class LBFGSB(base.IterativeSolver):
    """L-BFGS-B (see the module docstring). ``run(init_params, bounds, *args,
    **kwargs)`` with ``bounds = (lower, upper)`` (pytrees like the params,
    or scalars; None: unbounded).

    Attributes:
      fun, value_and_grad, has_aux, grad: the objective (``npopt.solvers.base``).
      maxiter (50: jaxopt's default, lower than LBFGS's), tol (1e-3).
      stepsize: <= 0 (default): the line search; a number or a callable: a
        fixed step, then clipped to the box.
      linesearch ('zoom'), linesearch_init ('increase'),
      stop_if_linesearch_fails, maxls (30), increase_factor (1.5),
      max_stepsize (1.0), min_stepsize (1e-6): as LBFGS.
      condition, decrease_factor: deprecated (warning, ignored).
      theta: the initial scaling of the Hessian approximation (1.0).
      history_size (10), use_gamma (True).
      implicit_diff, implicit_diff_solve, jit, unroll: accepted for compatibility.
      verbose: 1 prints each iteration, 2 the line search's too.
    """
    fun: Callable
    value_and_grad: Union[bool, Callable] = False
    has_aux: bool = False
    maxiter: int = 50
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
    theta: float = 1.0
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
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"history_size: expected a positive integer, got {v!r}")
        if not (isinstance(self.theta, (int, float, np.number)) and np.isfinite(self.theta)
                and self.theta > 0):
            raise ValueError(f"theta: expected a finite number > 0, got {self.theta!r}")
        self._fun_with_aux, self._value_and_grad_with_aux, self.linesearch_solver = \
            make_funs_and_linesearch(self)

    def _cond(self, state):
        return bool(state.error > self.tol) and (not self.stop_if_linesearch_fails
                                                 or not bool(state.failed_linesearch))

    def init_state(self, init_params, bounds=None, *args, **kwargs):
        """The initial LbfgsbState (or an OptStep's, for a warm start)."""
        if isinstance(init_params, base.OptStep):
            st = init_params.state
            kw = dict(s_history=st.s_history, y_history=st.y_history, iter_num=st.iter_num,
                      stepsize=st.stepsize, num_updates=st.num_updates, theta=st.theta)
            init_params = init_params.params
            base.dtype_of(init_params)
        else:
            dtype = base.dtype_of(init_params)
            kw = dict(s_history=init_history(init_params, self.history_size),
                      y_history=init_history(init_params, self.history_size),
                      iter_num=np.asarray(0), stepsize=np.asarray(self.max_stepsize, dtype),
                      num_updates=np.asarray(0), theta=np.asarray(self.theta, dtype))
        lower, upper = _bounds(bounds, init_params)
        value, aux, grad = evaluate(self._value_and_grad_with_aux, init_params, args, kwargs)
        error = projected_gradient_error(flat_of(init_params), flat_of(grad), lower, upper)
        return LbfgsbState(value=value, grad=grad, error=error, aux=aux,
                           failed_linesearch=np.asarray(False),
                           num_fun_eval=np.asarray(1, _EVAL), num_grad_eval=np.asarray(1, _EVAL),
                           num_linesearch_iter=np.asarray(0, _EVAL), **kw)

    def update(self, params, state, bounds=None, *args, **kwargs):
        """One L-BFGS-B iteration. Returns OptStep."""
        if isinstance(params, base.OptStep):
            params = params.params
        lower, upper = _bounds(bounds, params)
        x = flat_of(params)
        g = flat_of(state.grad)
        n, m = x.size, self.history_size
        S = stacked_buffer(state.s_history, m, n, x.dtype)
        Y = stacked_buffer(state.y_history, m, n, x.dtype)
        theta = np.asarray(state.theta)[()]
        num_updates = int(state.num_updates)

        W, M = compact_matrices(S, Y, theta, num_updates)
        x_cauchy, c, free = cauchy_point(x, g, lower, upper, theta, W, M)
        x_sub = minimize_subspace(x, g, lower, upper, x_cauchy, c, theta, W, M, free)
        _, unravel = T.ravel(params)
        descent_direction = unravel(x_sub - x)

        if not callable(self.stepsize) and self.stepsize <= 0:
            init = ls_mod.init_stepsize(self.linesearch_init, self.max_stepsize,
                                        self.min_stepsize, self.increase_factor, state.stepsize)
            new_stepsize, ls_state = self.linesearch_solver.run(
                init, params, state.value, state.grad, descent_direction, args, kwargs)
            new_params, new_value = ls_state.params, ls_state.value
            new_grad, new_aux = ls_state.grad, ls_state.aux
            failed_linesearch = np.asarray(bool(ls_state.failed))
            num_ls = state.num_linesearch_iter + ls_state.iter_num
            num_grad = state.num_grad_eval + ls_state.num_grad_eval
            num_fun = state.num_fun_eval + ls_state.num_fun_eval
        else:
            new_stepsize = self.stepsize(state.iter_num) if callable(self.stepsize) \
                else self.stepsize
            new_flat = np.clip(x + new_stepsize * (x_sub - x), lower, upper)
            new_params = unravel(new_flat)
            new_value, new_aux, new_grad = evaluate(self._value_and_grad_with_aux, new_params,
                                                    args, kwargs)
            num_grad = state.num_grad_eval + 1
            num_fun = state.num_fun_eval + 1
            num_ls = state.num_linesearch_iter
            failed_linesearch = np.asarray(False)

        new_x, new_g = flat_of(new_params), flat_of(new_grad)
        s = new_x - x
        y = new_g - g
        curvature = _dense.vdot(y, s)
        with np.errstate(divide="ignore", invalid="ignore"):
            gamma_inv = _dense.vdot(y, y) / curvature if self.use_gamma \
                else np.ones((), curvature.dtype)[()]
        s_history, y_history = state.s_history, state.y_history
        new_theta, new_num_updates = state.theta, state.num_updates
        if curvature > 0.0:
            slot = num_updates % m
            S, Y = S.copy(), Y.copy()
            S[slot], Y[slot] = s, y
            s_history, y_history = stacked_views(S, params), stacked_views(Y, params)
            new_theta = gamma_inv * self.theta
            new_num_updates = state.num_updates + 1
        error = projected_gradient_error(new_x, new_g, lower, upper)
        new_state = LbfgsbState(
            iter_num=state.iter_num + 1, value=new_value, grad=new_grad, stepsize=new_stepsize,
            error=error, s_history=s_history, y_history=y_history,
            num_updates=new_num_updates, theta=new_theta, aux=new_aux,
            failed_linesearch=failed_linesearch, num_grad_eval=np.asarray(num_grad, _EVAL),
            num_fun_eval=np.asarray(num_fun, _EVAL), num_linesearch_iter=np.asarray(num_ls, _EVAL))
        if self.verbose:
            self.log_info(new_state, "Projected Gradient Norm",
                          {"Objective Value": new_value, "Stepsize": new_stepsize,
                           "Number Linesearch Iterations":
                               int(new_state.num_linesearch_iter - state.num_linesearch_iter)})
        return base.OptStep(new_params, new_state)

    def optimality_fun(self, sol, bounds, *args, **kwargs):
        """``clip(sol - grad, lower, upper) - sol`` (the gradient without bounds)."""
        if isinstance(sol, base.OptStep):
            sol = sol.params
        grad = self._value_and_grad_with_aux(sol, *args, **kwargs)[1]
        if bounds is None:
            return grad
        lower, upper = _bounds(bounds, sol)
        x = flat_of(sol)
        return T.ravel(sol)[1](np.clip(x - flat_of(grad), lower, upper) - x)
