"""Limited-memory Broyden root finding (jaxopt 0.8.5's Broyden).

Finds ``F(x) = 0`` for ``F = fun`` mapping params to a pytree of the same
structure, with an approximation ``H`` of the *inverse* Jacobian built from
rank-one secant updates (Broyden's "good" method, eq. (4.5) of Broyden 1965)::

    H_0 = gamma I,     H = gamma I + sum_j c_j d_j^T   (history_size pairs)
    p_k = -H F(x_k),   x_{k+1} = x_k + s_k p_k
    dx = x_{k+1} - x_k,  dF = F(x_{k+1}) - F(x_k),  v = H^T dx
    d = v / <v, dF>,     c = dx - H dF          (so that H_{k+1} dF = dx)

The pair ``(c, d)`` overwrites the oldest slot of a ring buffer. The error is
``||F(x_{k+1})||``. With ``stepsize <= 0`` the step ``s_k`` comes from a
backtracking line search on ``phi(x) = ||F(x)||^2`` (as scipy.optimize's
nonlin module does): trial steps ``s = min(s0, max_stepsize) * decrease_factor^i``
until ``condition`` holds within an absolute tolerance of 1e-2, at most
``maxls`` trials, starting from ``s0 = max_stepsize`` when the previous step
was ``<= min_stepsize`` and ``s0 = increase_factor * previous step``
otherwise. ``H`` is never derived from ``F``'s Jacobian: the initial estimate
is ``gamma I``.

The line search needs ``grad phi = 2 J(x)^T F(x)``, which jaxopt gets by
autodiff. npopt takes it from ``jac(x, *args, **kwargs)``, the Jacobian of
``F`` as a dense ``(size(F), size(x))`` matrix over the ravelled pytrees
(``npopt.tree.ravel``'s order), or, without ``jac``, from central finite
differences of ``F`` (2 n extra evaluations of ``F`` per gradient, the slow
path; step ``eps**(1/3) max(1, |x_i|)``). A fixed or callable ``stepsize``
needs no Jacobian at all.

.. warning:: As in jaxopt, ``H`` acts on each leaf of a pytree separately
   (``<d_j, x>`` is taken per leaf, not over the whole tree), so for
   multi-leaf params ``H`` is block diagonal over the leaves, while the
   denominator ``<v, dF>`` is taken over the whole tree. ``num_fun_eval``
   counts the evaluations of ``F`` npopt makes: one per line-search trial
   (or per step with a fixed ``stepsize``) and one in ``init_state``; the
   finite-difference evaluations of the Jacobian are not counted (a
   ``FiniteDifferenceWarning`` says once that they are made). jaxopt's count
   is higher: it also counts an evaluation of ``phi(x)`` at the start of each
   line search and a final gradient for the armijo/goldstein conditions,
   which jaxopt computes and Broyden never reads (npopt skips both).

References:
  Broyden, "A class of methods for solving nonlinear simultaneous
  equations", Mathematics of Computation, 1965, eq. (4.5).
  Nocedal & Wright, "Numerical Optimization", 2nd ed., eqs. (3.6), (3.7)
  (the Wolfe conditions).
"""
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Optional, Union

import numpy as np

from .. import _dense
from .. import tree as T
from .._checks import check_callable, check_number
from . import base
from .fixed_point import check_same_structure, fun_with_aux

_EVAL = np.int32
_CONDITIONS = ("armijo", "goldstein", "strong-wolfe", "wolfe")
_LS_TOL = 1e-2           # jaxopt's tolerance on the line-search conditions
_C1, _C2 = 1e-4, 0.9     # BacktrackingLineSearch's defaults


# --------------------------------------------------------------------------
# The inverse-Jacobian products on ring buffers (per leaf, as jaxopt).

def _matvec(d_history, c_history, x, indices):
    """``C D^T x`` over the history slots in ``indices``."""
    m = d_history.shape[0]
    dtx = _dense.dot(d_history[indices].reshape(m, -1), np.ravel(x))
    c = c_history[indices]
    return _dense.dot(dtx, c.reshape(m, -1)).reshape(c.shape[1:])


def inv_jacobian_product(pytree, d_history, c_history, gamma=1.0, start=0):
    """``H v = gamma v + C D^T v``, leaf by leaf (histories are pytrees of
    ``pytree``'s structure whose leaves carry a leading history axis)."""
    def leaf(v, d, c):
        indices = (start + np.arange(d.shape[0])) % d.shape[0]
        return gamma * v + _matvec(d, c, v, indices)
    return T.tree_map(leaf, pytree, d_history, c_history)


def inv_jacobian_rproduct(pytree, d_history, c_history, gamma=1.0, start=0):
    """``H^T v = conj(gamma) v + D C^T v``."""
    return inv_jacobian_product(pytree, c_history, d_history, np.conjugate(gamma), start)


def init_history(pytree, history_size):
    """Zero ring buffers: leaves of shape ``(history_size,) + leaf.shape``
    (float64 for integer leaves)."""
    def zeros(x):
        dt = np.asarray(x).dtype
        return np.zeros((history_size,) + np.shape(x), np.float64 if dt.kind in "iub" else dt)
    return T.tree_map(zeros, pytree)


def update_history(history_pytree, new_pytree, last):
    def put(h, x):
        h = h.copy()
        h[last] = x
        return h
    return T.tree_map(put, history_pytree, new_pytree)


# --------------------------------------------------------------------------
# The gradient of phi(x) = ||F(x)||^2 for the line search.

def finite_difference_jacobian(fun, params, *args, **kwargs):
    """Central differences of a pytree-valued ``fun``: the dense Jacobian
    ``(size(fun(x)), size(x))`` of the ravelled output w.r.t. the ravelled
    params; step ``h_i = eps**(1/3) * max(1, |x_i|)`` (as
    ``base.finite_difference_grad``); float32 params are differenced in
    float64 when ``fun`` computes in float64 on float64 input."""
    return base.FiniteDifferences().jacobian(fun, params, args, kwargs)


class _Phi:
    """``phi(x) = ||F(x)||^2`` and ``grad phi(x) = J(x)^T (2 F(x))``."""

    def __init__(self, value_with_aux, jac, owner=None):
        self.value_with_aux = value_with_aux
        self.jac = jac
        self.fd = base.FiniteDifferences(owner, message=(
            "no jac was given, so the Jacobian of fun that the line search needs (grad "
            "||F||^2) is computed by central finite differences, the slow path: {two_n} "
            "evaluations of fun per line search for its {n} parameters. Pass jac=, or a "
            "fixed stepsize (no line search, no Jacobian)"))

    def value(self, F):
        return T.tree_l2_norm(F, squared=True)

    def grad(self, x, F, args, kwargs):
        if self.jac is not None:
            J = np.asarray(self.jac(x, *args, **kwargs))
        else:
            J = self.fd.jacobian(lambda p, *a, **kw: self.value_with_aux(p, *a, **kw)[0],
                                 x, args, kwargs)
        flat_x, unravel = T.ravel(x)
        flat_F = T.ravel(F)[0]
        if J.shape != (flat_F.size, flat_x.size):
            raise ValueError(f"jac: expected a ({flat_F.size}, {flat_x.size}) Jacobian of the "
                             f"ravelled fun output w.r.t. the ravelled params, got shape "
                             f"{J.shape}")
        return unravel(_dense.dot(J.T, 2 * flat_F))


class _LineSearchResult(NamedTuple):
    stepsize: Any
    params: Any
    value: Any            # F at params
    aux: Any
    failed: bool
    iter_num: int
    num_fun_eval: int


def backtracking_line_search(phi, x, F, descent_direction, init_stepsize, condition, maxls,
                             decrease_factor, max_stepsize, args, kwargs, log=None):
    """jaxopt's BacktrackingLineSearch (``tol=1e-2``, c1=1e-4, c2=0.9) on
    ``phi = ||F||^2`` from ``x``, as Broyden runs it: the first trial, then
    further trials while the condition's error exceeds 1e-2, at most ``maxls``.

    Each trial ``x_s = x + s p`` measures (Nocedal & Wright (3.6)-(3.7))::

        armijo:       max(phi(x_s) - phi(x) - c1 s <g, p>, 0)
        wolfe:        max(armijo, c2 <g, p> - <g_s, p>)
        strong-wolfe: max(armijo, |<g_s, p>| - c2 |<g, p>|)
        goldstein:    max(armijo, phi(x) + (1 - c1) s <g, p> - phi(x_s))

    (NaN counts as inf) and the step shrinks by ``decrease_factor`` until it
    is <= 1e-2, or fails after ``maxls`` trials (the last trial is kept).
    """
    value = phi.value(F)
    grad = phi.grad(x, F, args, kwargs)
    num_fun_eval = 0                      # (jaxopt evaluates phi(x) again here: npopt not)
    slope = T.tree_vdot_real(T.tree_conj(grad), descent_direction)
    stepsize = init_stepsize
    done = failed = False
    it = 0
    while True:
        stepsize = np.minimum(max_stepsize, stepsize)
        new_params = T.tree_add_scalar_mul(x, stepsize, descent_direction)
        new_F, new_aux = phi.value_with_aux(new_params, *args, **kwargs)
        check_same_structure(new_F, x, "fun")
        new_value = phi.value(new_F)
        num_fun_eval += 1
        diff1 = new_value - (value + _C1 * stepsize * slope)
        error = _nan_to_inf_pos(diff1)
        if condition in ("wolfe", "strong-wolfe"):
            new_slope = T.tree_vdot_real(T.tree_conj(phi.grad(new_params, new_F, args, kwargs)),
                                         descent_direction)
            if condition == "wolfe":
                diff2 = _C2 * slope - new_slope
            else:
                diff2 = np.abs(new_slope) - _C2 * np.abs(slope)
            error = max(error, _nan_to_inf_pos(diff2))
        elif condition == "goldstein":
            diff2 = value + (1 - _C1) * stepsize * slope - new_value
            error = max(error, _nan_to_inf_pos(diff2))
        done = done or error <= _LS_TOL
        failed = failed or (it + 1 == maxls and not done)
        trial = stepsize
        if not (done or failed):
            stepsize = stepsize * decrease_factor
        # (jaxopt computes a final gradient here for armijo/goldstein, which
        # Broyden never reads: npopt does not, and does not count it)
        it += 1
        if log is not None:
            log(it, error, trial, new_value, diff1)
        if not error > _LS_TOL or it >= maxls:
            break
    return _LineSearchResult(stepsize, new_params, new_F, new_aux, failed, it, num_fun_eval)


def _nan_to_inf_pos(diff):
    diff = float(diff)
    return np.inf if np.isnan(diff) else max(diff, 0.0)


# --------------------------------------------------------------------------

class BroydenState(NamedTuple):
    """jaxopt's BroydenState.

    Attributes:
      iter_num: iterations done.
      value: ``F`` at the current params (a pytree).
      stepsize: the last step (``max_stepsize`` at init).
      error: ``||F(x)||`` (inf at init).
      d_history, c_history: the ring buffers of the pairs ``(d, c)``.
      gamma: the initial inverse-Jacobian scale.
      aux: the auxiliary output of ``fun`` with ``has_aux``.
      failed_linesearch: the last line search ended without meeting its condition.
      num_fun_eval, num_linesearch_iter: counters (int32).
    """
    iter_num: int
    value: Any
    stepsize: float
    error: float
    d_history: Any
    c_history: Any
    gamma: np.ndarray
    aux: Optional[Any] = None
    failed_linesearch: bool = False
    num_fun_eval: int = 0
    num_linesearch_iter: int = 0


@dataclass(eq=False)
class Broyden(base.IterativeSolver):
    """Limited-memory Broyden solver for ``fun(x, *args, **kwargs) = 0``.

    Attributes:
      fun: ``F(x, *args, **kwargs)`` returning a pytree with the structure of
        ``x`` (with ``has_aux``: ``(F(x), aux)``).
      has_aux: ``fun`` returns ``(F(x), aux)``; the last aux is ``state.aux``.
      maxiter: maximum number of iterations (default 500).
      tol: stop when ``||F(x)|| <= tol`` (default 1e-3).
      stepsize: a fixed step, a callable ``stepsize(iter_num)``, or <= 0 for
        the backtracking line search (default 0).
      linesearch: only "backtracking".
      stop_if_linesearch_fails: stop the run when a line search fails.
      condition: the line search's condition: "wolfe" (default), "strong-wolfe",
        "armijo" or "goldstein".
      maxls: maximum number of line-search trials (>= 1; default 15).
      decrease_factor, increase_factor, max_stepsize, min_stepsize: the line
        search's step rules (defaults 0.8, 1.5, 1.0, 1e-6). ``min_stepsize``
        is jaxopt's fixed 1e-6 also in float32.
      history_size: the number of secant pairs kept (default None: ``maxiter``).
      gamma: ``H_0 = gamma I`` (default 1).
      implicit_diff, implicit_diff_solve, jit, unroll: accepted for
        compatibility.
      verbose: 1 prints one line per iteration, 2 also the line search's.
      jac: npopt's addition: ``jac(x, *args, **kwargs)``, the dense Jacobian
        of ``F`` over the ravelled pytrees, for the line search's gradient;
        without it, central finite differences.

    ``run(init_params, *args, **kwargs)``; ``init_params`` may be an
    ``OptStep`` of a previous run to warm-start from its histories.
    ``optimality_fun`` is ``F``.
    """
    fun: Callable
    has_aux: bool = False
    maxiter: int = 500
    tol: float = 1e-3
    stepsize: Union[float, Callable] = 0.0
    linesearch: str = "backtracking"
    stop_if_linesearch_fails: bool = False
    condition: str = "wolfe"
    maxls: int = 15
    decrease_factor: float = 0.8
    increase_factor: float = 1.5
    max_stepsize: float = 1.0
    min_stepsize: float = 1e-6
    history_size: Optional[int] = None
    gamma: float = 1.0
    implicit_diff: bool = True
    implicit_diff_solve: Optional[Callable] = None
    jit: bool = True
    unroll: Any = "auto"
    verbose: Union[bool, int] = False
    jac: Optional[Callable] = None
    optimality_jvp: Optional[Callable] = None   # see npopt.implicit_diff
    optimality_vjp: Optional[Callable] = None

    def __post_init__(self):
        super().__post_init__()
        check_callable("fun", self.fun)
        if self.jac is not None:
            check_callable("jac", self.jac)
        if not callable(self.stepsize):
            check_number("stepsize", self.stepsize)
        if self.linesearch != "backtracking":
            raise ValueError(f"linesearch: expected 'backtracking', got {self.linesearch!r}")
        if self.condition not in _CONDITIONS:
            raise ValueError(f"condition: expected one of {', '.join(map(repr, _CONDITIONS))}, "
                             f"got {self.condition!r}")
        if isinstance(self.maxls, bool) or not isinstance(self.maxls, (int, np.integer)) \
                or self.maxls < 1:
            raise ValueError(f"maxls: expected an integer >= 1, got {self.maxls!r}")
        check_number("decrease_factor", self.decrease_factor, low=0.0, high=1.0,
                     low_open=True, high_open=True)
        check_number("increase_factor", self.increase_factor, low=0.0, low_open=True)
        check_number("max_stepsize", self.max_stepsize, low=0.0, low_open=True)
        check_number("min_stepsize", self.min_stepsize, low=0.0)
        check_number("gamma", self.gamma)
        if self.history_size is None:
            # jaxopt: maxiter; at least 1, so that maxiter=0 (no update) is accepted
            self.history_size = max(int(self.maxiter), 1)
        m = self.history_size
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
            raise ValueError(f"history_size: expected an integer >= 1 (or None: maxiter), "
                             f"got {m!r}")
        self._value_with_aux = fun_with_aux(self.fun, self.has_aux)
        self._phi = _Phi(self._value_with_aux, self.jac, owner=type(self).__name__)

    def _cond(self, state):
        # continue while not converged, unless a failed line search stops the run
        return bool(state.error > self.tol) and (not self.stop_if_linesearch_fails
                                                 or not bool(state.failed_linesearch))

    def _warn_if_not_finite(self, state):
        # ``value`` is a pytree here; ``error = ||F||`` already tells non-finite F
        super()._warn_if_not_finite(state._replace(value=None))

    def _uses_linesearch(self):
        return not callable(self.stepsize) and self.stepsize <= 0

    def init_state(self, init_params, *args, **kwargs):
        """Evaluates ``F(init_params)``; empty histories (or, from an
        ``OptStep``, its histories, gamma, iter_num and stepsize)."""
        if isinstance(init_params, base.OptStep):
            s = init_params.state
            state_kwargs = dict(d_history=s.d_history, c_history=s.c_history, gamma=s.gamma,
                                iter_num=s.iter_num, stepsize=s.stepsize)
            init_params = init_params.params
            base.dtype_of(init_params)
        else:
            dtype = base.dtype_of(init_params)
            state_kwargs = dict(d_history=init_history(init_params, self.history_size),
                                c_history=init_history(init_params, self.history_size),
                                gamma=np.asarray(self.gamma, dtype), iter_num=np.asarray(0),
                                stepsize=np.asarray(self.max_stepsize, dtype))
        value, aux = self._value_with_aux(init_params, *args, **kwargs)
        check_same_structure(value, init_params, "fun")
        return BroydenState(value=value, error=np.asarray(np.inf), **state_kwargs, aux=aux,
                            failed_linesearch=np.asarray(False),
                            num_fun_eval=np.asarray(1, _EVAL),
                            num_linesearch_iter=np.asarray(0, _EVAL))

    def update(self, params, state, *args, **kwargs):
        """One Broyden iteration: direction ``-H F``, step, secant update."""
        if isinstance(params, base.OptStep):
            params = params.params
        start = int(state.iter_num) % self.history_size
        value = state.value
        hist = dict(d_history=state.d_history, c_history=state.c_history, gamma=state.gamma,
                    start=start)
        descent_direction = T.tree_scalar_mul(-1.0, inv_jacobian_product(value, **hist))

        if self._uses_linesearch():
            init_stepsize = (self.max_stepsize if state.stepsize <= self.min_stepsize
                             else state.stepsize * self.increase_factor)
            init_stepsize = np.asarray(init_stepsize, np.asarray(state.stepsize).dtype)
            log = self._ls_logger() if int(self.verbose) >= 2 else None
            ls = backtracking_line_search(self._phi, params, value, descent_direction,
                                          init_stepsize, self.condition, self.maxls,
                                          self.decrease_factor, self.max_stepsize, args, kwargs,
                                          log)
            new_stepsize, new_params, new_value, new_aux = ls.stepsize, ls.params, ls.value, \
                ls.aux
            new_num_linesearch_iter = state.num_linesearch_iter + ls.iter_num
            new_num_fun_eval = state.num_fun_eval + ls.num_fun_eval
            failed_linesearch = ls.failed
        else:
            new_stepsize = (self.stepsize(state.iter_num) if callable(self.stepsize)
                            else self.stepsize)
            failed_linesearch = False
            new_params = T.tree_add_scalar_mul(params, new_stepsize, descent_direction)
            new_value, new_aux = self._value_with_aux(new_params, *args, **kwargs)
            check_same_structure(new_value, params, "fun")
            new_num_fun_eval = state.num_fun_eval + 1
            new_num_linesearch_iter = state.num_linesearch_iter

        # the secant pair: H+ dF = dx (Broyden's "good" update)
        delta_x = T.tree_sub(new_params, params)
        v = inv_jacobian_rproduct(delta_x, **hist)
        delta_g = T.tree_sub(new_value, value)
        with np.errstate(divide="ignore", invalid="ignore"):
            denom = 1 / T.tree_vdot(v, delta_g)
        d = T.tree_scalar_mul(denom, v)
        c = T.tree_sub(delta_x, inv_jacobian_product(delta_g, **hist))
        last = (start + self.history_size) % self.history_size
        new_state = BroydenState(iter_num=state.iter_num + 1, value=new_value,
                                 stepsize=np.asarray(new_stepsize),
                                 error=np.asarray(T.tree_l2_norm(new_value)),
                                 d_history=update_history(state.d_history, d, last),
                                 c_history=update_history(state.c_history, c, last),
                                 gamma=state.gamma, aux=new_aux,
                                 failed_linesearch=np.asarray(failed_linesearch),
                                 num_fun_eval=np.asarray(new_num_fun_eval, _EVAL),
                                 num_linesearch_iter=np.asarray(new_num_linesearch_iter, _EVAL))
        self.log_info(new_state, "Norm Output",
                      {"Stepsize": new_stepsize, "Number Linesearch Iterations":
                       new_state.num_linesearch_iter - state.num_linesearch_iter})
        return base.OptStep(new_params, new_state)

    def _ls_logger(self):
        def log(it, error, stepsize, value, decrease_error):
            extra = "" if self.condition == "armijo" else f" Decrease Error: {decrease_error}"
            name = ("Decrease Error" if self.condition == "armijo"
                    else "Minimum Decrease & Curvature Errors")
            print(f"INFO: npopt.BacktrackingLineSearch: Iter: {it} {name} (stopping criterion): "
                  f"{error} Stepsize: {stepsize} Objective Value: {value}{extra}", flush=True)
        return log

    def optimality_fun(self, params, *args, **kwargs):
        """``F(params)``: zero at a root."""
        if isinstance(params, base.OptStep):
            params = params.params
        return self._value_with_aux(params, *args, **kwargs)[0]
