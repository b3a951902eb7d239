"""Anderson acceleration of fixed-point iterations (jaxopt 0.8.5's
AndersonAcceleration and AndersonWrapper).

For ``x = T(x)`` keep the last ``m = history_size`` iterates ``x_i`` and
residuals ``r_i = T(x_i) - x_i``, with their Gram matrix ``G = R^T R``. An
Anderson step mixes them with the weights of the smallest combined
residual (Walker & Ni 2011, Pollock & Rebholz 2019)::

    alpha = argmin ||sum_i alpha_i r_i||^2 + ridge ||alpha||^2  s.t. sum_i alpha_i = 1
    x_ext = sum_i alpha_i x_i + beta * sum_i alpha_i r_i

solving the KKT system ``[[0, 1^T], [1, G + ridge I]] [nu; alpha] = [1; 0]``.
Every iteration ``k`` then evaluates ``x_{k+1} = T(x_ext)`` and stores
``(x_ext, T(x_ext) - x_ext)`` in slot ``k mod m`` of the ring buffer; the
error is that residual's norm ``sqrt(G[k mod m, k mod m])``. The
extrapolation is used only once the buffer is full (``k >= m``) and only one
iteration in ``mixing_frequency``; the others take ``x_ext = x_k`` (a plain
fixed-point step).

``AndersonWrapper`` applies the same scheme to any iterative solver, whose
``update`` plays ``T``: after an extrapolation the inner solver's state is
re-initialised at ``x_ext`` (``solver.init_state(x_ext, ...)``) and the
stopping rule is the inner solver's (its ``error``, ``tol``, ``maxiter``).

.. note:: jaxopt keeps the Gram matrix in the default float dtype (float64
   under x64) and so, under x64, promotes float32 params to float64 after
   the first extrapolation; npopt keeps ``G`` and the mixing weights in
   float64 but casts ``x_ext`` back to the params' leaf dtypes. A singular
   KKT system (possible only with ``ridge = 0``) gives NaN weights, where
   JAX's solve gives inf/NaN too: the run then stops on the non-finite error.

References:
  Anderson, "Iterative procedures for nonlinear integral equations", J. ACM, 1965.
  Walker & Ni, "Anderson acceleration for fixed-point iterations", SIAM J.
  Numer. Anal., 2011.
  Pollock & Rebholz, "Anderson acceleration for contractive and
  noncontractive operators", arXiv:1909.04638, 2019.
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


# --------------------------------------------------------------------------
# The Anderson step on ring buffers (shared by both solvers).

def minimize_residuals(residual_gram, ridge):
    """The KKT solution ``[nu, alpha]`` of the constrained least squares
    ``min ||R alpha||^2 + ridge ||alpha||^2 s.t. sum(alpha) = 1``."""
    m = residual_gram.shape[0]
    residual_gram = residual_gram + ridge * np.eye(m)   # avoid ill-posed systems
    H = np.block([[np.zeros((1, 1)), np.ones((1, m))],
                  [np.ones((m, 1)), residual_gram]])
    c = np.zeros(m + 1)
    c[0] = 1.0
    try:
        return _dense.solve(H, c)
    except np.linalg.LinAlgError:       # singular (ridge = 0): JAX gives inf/NaN
        return np.full(m + 1, np.nan)


def anderson_step(params_history, residuals_history, residual_gram, ridge, beta):
    """``x_ext = sum_i alpha_i x_i + beta sum_i alpha_i r_i``, in the
    histories' leaf dtypes."""
    alphas = minimize_residuals(residual_gram, ridge)[1:]   # drop the multiplier
    pa = T.tree_average(params_history, alphas)
    ra = T.tree_average(residuals_history, alphas)
    extrapolated = T.tree_add_scalar_mul(pa, beta, ra)
    return T.tree_map(lambda e, h: e.astype(h.dtype, copy=False), extrapolated,
                      params_history)


def _history_like(params, m):
    """``m`` copies of each leaf stacked on a new axis 0 (float leaves)."""
    def tile(x):
        x = np.asarray(x)
        if x.dtype.kind in "iub":
            x = x.astype(np.float64)
        elif x.dtype.kind != "f":
            raise TypeError(f"init_params: expected real floating-point leaves, got a leaf "
                            f"of dtype {x.dtype}")
        return np.tile(x, [m] + [1] * x.ndim)
    return T.tree_map(tile, params)


def _replace(history, pos, new):
    """A copy of ``history`` with slot ``pos`` of every leaf set to ``new``."""
    def put(h, x):
        h = h.copy()
        h[pos] = x
        return h
    return T.tree_map(put, history, new)


def update_history(pos, params_history, residuals_history, residual_gram, extrapolated,
                   residual):
    """Stores ``(x_ext, r)`` in slot ``pos`` and updates row and column
    ``pos`` of the Gram matrix. Returns the three buffers and ``||r||``."""
    params_history = _replace(params_history, pos, extrapolated)
    residuals_history = _replace(residuals_history, pos, residual)
    m = residual_gram.shape[0]
    # <r_j, r> for every slot j: per-leaf matrix-vector products, leaves
    # summed in order (jax.vmap(tree_vdot))
    rows = [_dense.dot(np.conj(h.reshape(m, -1)), np.ravel(r)) for h, r in
            zip(T.tree_leaves(residuals_history), T.tree_leaves(residual))]
    new_row = rows[0]
    for row in rows[1:]:
        new_row = new_row + row
    residual_gram = residual_gram.copy()
    residual_gram[pos, :] = new_row
    residual_gram[:, pos] = new_row
    error = np.sqrt(residual_gram[pos, pos])
    return params_history, residuals_history, residual_gram, error


def _init_history(init_params, m):
    params_history = _history_like(init_params, m)
    residuals_history = T.tree_map(np.zeros_like, params_history)
    return params_history, residuals_history, np.zeros((m, m))


def _check_anderson_knobs(solver, min_history):
    m = solver.history_size
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < min_history:
        raise ValueError(f"history_size: expected an integer >= {min_history}, got {m!r}")
    f = solver.mixing_frequency
    if isinstance(f, bool) or not isinstance(f, (int, np.integer)) or f < 1:
        raise ValueError(f"mixing_frequency: expected an integer >= 1, got {f!r}")
    check_number("beta", solver.beta)
    check_number("ridge", solver.ridge, low=0.0)


def _use_anderson(iter_num, mixing_frequency, history_size):
    return int(iter_num) % mixing_frequency == 0 and int(iter_num) >= history_size


# --------------------------------------------------------------------------

class AndersonState(NamedTuple):
    """jaxopt's AndersonState.

    Attributes:
      iter_num: iterations done.
      error: the norm of the last residual ``T(x_ext) - x_ext``.
      params_history: the last ``history_size`` points ``x_ext`` (leaves of
        shape ``(history_size, ...)``, a ring buffer).
      residuals_history: their residuals ``T(x_ext) - x_ext``.
      residual_gram: ``G[i, j] = <r_i, r_j>`` (float64).
      aux: the auxiliary output of ``fixed_point_fun`` with ``has_aux``.
      num_fun_eval: evaluations of ``fixed_point_fun`` (int32; 1 at init).
    """
    iter_num: int
    error: float
    params_history: Any
    residuals_history: Any
    residual_gram: np.ndarray
    aux: Optional[Any] = None
    num_fun_eval: int = 0


@dataclass(eq=False)
class AndersonAcceleration(base.IterativeSolver):
    """Anderson acceleration for ``x = fixed_point_fun(x, *args, **kwargs)``.

    Attributes:
      fixed_point_fun: ``T(x, *args, **kwargs)`` returning a pytree with the
        structure of ``x`` (with ``has_aux``: ``(T(x), aux)``).
      history_size: ``m``, the number of iterates mixed (>= 2; default 5).
      mixing_frequency: extrapolate one iteration in this many (default 1).
      beta: the weight of the mixed residual (default 1: "undamped").
      maxiter: maximum number of iterations (default 100).
      tol: stop when ``||T(x_ext) - x_ext|| <= tol`` (default 1e-5).
      ridge: Tikhonov term on the weights (default 1e-5); increase it if the
        run returns NaN.
      has_aux: ``fixed_point_fun`` returns ``(T(x), aux)``.
      verbose: print one line per iteration.
      implicit_diff, implicit_diff_solve, jit, unroll: accepted for
        compatibility.

    ``run(init_params, *args, **kwargs)``; ``optimality_fun(x) = T(x) - x``.
    ``init_state`` evaluates ``T(init_params)`` once (for ``aux``), as jaxopt.
    """
    fixed_point_fun: Callable
    history_size: int = 5
    mixing_frequency: int = 1
    beta: float = 1.
    maxiter: int = 100
    tol: float = 1e-5
    ridge: float = 1e-5
    has_aux: bool = False
    verbose: Union[bool, int] = False
    implicit_diff: bool = True
    implicit_diff_solve: Optional[Callable] = None
    jit: bool = True
    unroll: Any = "auto"
    optimality_jvp: Optional[Callable] = None   # see npopt.implicit_diff
    optimality_vjp: Optional[Callable] = None

    def __post_init__(self):
        super().__post_init__()
        check_callable("fixed_point_fun", self.fixed_point_fun)
        _check_anderson_knobs(self, min_history=2)     # jaxopt: history_size >= 2
        self._value_with_aux = fun_with_aux(self.fixed_point_fun, self.has_aux)

    def init_state(self, init_params, *args, **kwargs):
        """Histories filled with ``init_params`` (residuals and Gram zero)."""
        base.dtype_of(init_params)
        params_history, residuals_history, gram = _init_history(init_params, self.history_size)
        _, aux = self._value_with_aux(init_params, *args, **kwargs)
        return AndersonState(iter_num=np.asarray(0), error=np.asarray(np.inf),
                             params_history=params_history,
                             residuals_history=residuals_history, residual_gram=gram,
                             aux=aux, num_fun_eval=np.asarray(1, _EVAL))

    def update(self, params, state, *args, **kwargs):
        """One Anderson iteration: extrapolate (when due), apply ``T``, store."""
        if _use_anderson(state.iter_num, self.mixing_frequency, self.history_size):
            extrapolated = anderson_step(state.params_history, state.residuals_history,
                                         state.residual_gram, self.ridge, self.beta)
        else:
            extrapolated = params
        pos = int(state.iter_num) % self.history_size
        next_params, aux = self._value_with_aux(extrapolated, *args, **kwargs)
        check_same_structure(next_params, extrapolated, "fixed_point_fun")
        residual = T.tree_sub(next_params, extrapolated)
        params_history, residuals_history, residual_gram, error = update_history(
            pos, state.params_history, state.residuals_history, state.residual_gram,
            extrapolated, residual)
        next_state = AndersonState(iter_num=state.iter_num + 1, error=error,
                                   params_history=params_history,
                                   residuals_history=residuals_history,
                                   residual_gram=residual_gram, aux=aux,
                                   num_fun_eval=state.num_fun_eval + 1)
        self.log_info(next_state, "Residual Norm")
        return base.OptStep(next_params, next_state)

    def optimality_fun(self, params, *args, **kwargs):
        """``T(x) - x``: zero at a fixed point."""
        next_params, _ = self._value_with_aux(params, *args, **kwargs)
        return T.tree_sub(next_params, params)


# --------------------------------------------------------------------------

class AndersonWrapperState(NamedTuple):
    """jaxopt's AndersonWrapperState.

    Attributes:
      iter_num: iterations done.
      solver_state: the wrapped solver's state.
      error: the wrapped solver's error.
      params_history, residuals_history, residual_gram: as AndersonState,
        with ``update`` of the wrapped solver as the map ``T``.
    """
    iter_num: int
    solver_state: Any
    error: float
    params_history: Any
    residuals_history: Any
    residual_gram: np.ndarray


@dataclass(eq=False)
class AndersonWrapper(base.IterativeSolver):
    """Anderson acceleration of any npopt iterative solver.

    Attributes:
      solver: the solver to accelerate (``init_state``, ``update``,
        ``maxiter``, ``tol``; e.g. ``npopt.solvers.GradientDescent``). Its
        ``maxiter`` and ``tol`` become the wrapper's.
      history_size: ``m`` (>= 1; default 5).
      mixing_frequency: extrapolate one iteration in this many (default None:
        ``history_size``).
      beta: the weight of the mixed residual (default 1).
      ridge: Tikhonov term on the weights (default 1e-5).
      verbose: print one line per iteration (the inner solver prints its own).
      implicit_diff, implicit_diff_solve, jit, unroll: accepted for
        compatibility.

    ``run(init_params, *args, **kwargs)`` passes ``*args, **kwargs`` to the
    inner solver's ``init_state``/``update``; ``optimality_fun`` is the
    inner solver's.
    """
    solver: Any
    history_size: int = 5
    mixing_frequency: Optional[int] = None
    beta: float = 1.
    ridge: float = 1e-5
    verbose: Union[bool, int] = False
    implicit_diff: bool = True
    implicit_diff_solve: Optional[Callable] = None
    jit: bool = True
    unroll: Any = "auto"
    optimality_jvp: Optional[Callable] = None   # see npopt.implicit_diff
    optimality_vjp: Optional[Callable] = None

    def __post_init__(self):
        s = self.solver
        if not all(hasattr(s, a) for a in ("init_state", "update", "maxiter", "tol")):
            raise TypeError("solver: expected an npopt iterative solver (with init_state, "
                            f"update, maxiter and tol), got {type(s).__name__}")
        # jaxopt copies the inner solver's stopping rule onto the wrapper
        self.maxiter = s.maxiter
        self.tol = s.tol
        if self.mixing_frequency is None:
            self.mixing_frequency = self.history_size
        super().__post_init__()
        _check_anderson_knobs(self, min_history=1)

    def init_state(self, init_params, *args, **kwargs):
        """The inner solver's state and histories filled with ``init_params``."""
        base.dtype_of(init_params)
        solver_state = self.solver.init_state(init_params, *args, **kwargs)
        params_history, residuals_history, gram = _init_history(init_params, self.history_size)
        return AndersonWrapperState(iter_num=np.asarray(0), solver_state=solver_state,
                                    error=solver_state.error, params_history=params_history,
                                    residuals_history=residuals_history, residual_gram=gram)

    def update(self, params, state, *args, **kwargs):
        """One inner ``update`` from the extrapolated point (when due; the
        inner state is then re-initialised there)."""
        if _use_anderson(state.iter_num, self.mixing_frequency, self.history_size):
            extrapolated = anderson_step(state.params_history, state.residuals_history,
                                         state.residual_gram, self.ridge, self.beta)
            solver_state = self.solver.init_state(extrapolated, *args, **kwargs)
        else:
            extrapolated, solver_state = params, state.solver_state
        pos = int(state.iter_num) % self.history_size
        next_params, solver_state = self.solver.update(extrapolated, solver_state,
                                                       *args, **kwargs)
        residual = T.tree_sub(next_params, extrapolated)
        params_history, residuals_history, residual_gram, _ = update_history(
            pos, state.params_history, state.residuals_history, state.residual_gram,
            extrapolated, residual)
        next_state = AndersonWrapperState(iter_num=state.iter_num + 1,
                                          solver_state=solver_state, error=solver_state.error,
                                          params_history=params_history,
                                          residuals_history=residuals_history,
                                          residual_gram=residual_gram)
        self.log_info(next_state, "Inner Solver Error")
        return base.OptStep(next_params, next_state)

    def optimality_fun(self, params, *args, **kwargs):
        """The inner solver's optimality function."""
        return self.solver.optimality_fun(params, *args, **kwargs)
