"""Proximal gradient (ISTA/FISTA), gradient descent and projected gradient.

They minimise ``fun(x, *args) + g(x, hyperparams)`` with the step::

    x+ = prox_g(y - s * grad fun(y), hyperparams, s)

where ``y = x`` (plain) or, with ``acceleration`` (FISTA), the extrapolated
point ``y+ = x+ + (t - 1)/t+ * (x+ - x)`` with ``t+ = (1 + sqrt(1 + 4 t^2))/2``.
With ``stepsize <= 0`` the step comes from a backtracking line search on the
sufficient-decrease condition (Beck & Teboulle 2009)::

    s * (f(x+) - f(y)) <= s * <grad f(y), x+ - y> + ||x+ - y||^2 / 2 + eps

shrinking ``s`` by ``decrease_factor`` at most ``maxls`` times; the next
iteration starts from ``s / decrease_factor`` (or 1 when ``s <= 1e-6``). The
stopping criterion is ``||x+ - x|| / s <= tol``. All of it is jaxopt 0.8.5's
``ProximalGradient``, operation for operation.

References:
  Beck & Teboulle, "A fast iterative shrinkage-thresholding algorithm for
  linear inverse problems", SIAM J. Imaging Sciences, 2009.
  Nesterov, "Gradient methods for minimizing composite functions",
  Mathematical Programming, 2013.
"""
import math
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Optional, Union

import numpy as np

from .. import tree as T
from ..prox import prox_none
from .._checks import check_callable
from . import base


class ProxGradState(NamedTuple):
    """jaxopt's ProxGradState."""
    iter_num: int
    stepsize: float
    error: float
    aux: Optional[Any] = None
    velocity: Optional[Any] = None
    t: float = 1.0


@dataclass(eq=False)
class _Attributes(base.IterativeSolver):
    """jaxopt's attributes of ProximalGradient, in its order, which
    GradientDescent shares (its ``prox`` included)."""
    fun: Callable
    prox: Callable = prox_none
    value_and_grad: Union[bool, Callable] = False
    has_aux: bool = False
    stepsize: Union[float, Callable] = 0.0
    maxiter: int = 500
    maxls: int = 15
    tol: float = 1e-3
    acceleration: bool = True
    decrease_factor: float = 0.5
    verbose: Union[bool, int] = False
    implicit_diff: bool = True
    implicit_diff_solve: Optional[Callable] = None
    jit: bool = True
    unroll: Any = "auto"
    grad: Optional[Callable] = None
    optimality_jvp: Optional[Callable] = None   # see npopt.implicit_diff
    optimality_vjp: Optional[Callable] = None


def _inner(solver, prox, names):
    """The ProximalGradient that ``solver`` (GradientDescent, ProjectedGradient)
    runs: its attributes ``names`` and ``prox``; it prints and warns under
    ``solver``'s name."""
    pg = ProximalGradient(prox=prox, **{n: getattr(solver, n) for n in names})
    pg.log_info = solver.log_info
    fd = getattr(pg._value_and_grad_with_aux, "finite_differences", None)
    if fd is not None:
        fd.owner = type(solver).__name__
    return pg


@dataclass(eq=False)
class ProximalGradient(_Attributes):
    """Proximal gradient descent, with FISTA acceleration by default.

    Minimises ``fun(params, *args, **kwargs) + non_smooth(params, hyperparams_prox)``
    where ``prox(x, hyperparams_prox, scaling)`` is the proximity operator of
    ``scaling * non_smooth`` (see ``npopt.prox``).

    Attributes:
      fun: the smooth part ``fun(params, *args, **kwargs)``.
      prox: the proximity operator (default: the identity).
      value_and_grad: True if ``fun`` returns ``(value, grad)``, or a callable
        returning them; False: see ``grad``.
      has_aux: ``fun`` returns ``(value, aux)``; the last aux is ``state.aux``.
      grad: ``grad(params, *args, **kwargs)`` when fun returns only the value
        (npopt's addition; without it, central finite differences).
      stepsize: a fixed step, a callable ``stepsize(iter_num)``, or <= 0 for
        the backtracking line search.
      maxiter, maxls, tol, acceleration, decrease_factor, verbose: as jaxopt.
      implicit_diff, implicit_diff_solve, jit, unroll: accepted for
        compatibility (see ``npopt.implicit_diff``).
    """

    def __post_init__(self):
        super().__post_init__()
        check_callable("fun", self.fun)
        if not callable(self.stepsize):
            v = self.stepsize
            if not (isinstance(v, (int, float, np.number)) and np.isfinite(v)):
                raise ValueError(f"stepsize: expected a finite number or a callable, got {v!r}")
        if not 0 < self.decrease_factor < 1:
            raise ValueError(f"decrease_factor: expected a number in (0, 1), "
                             f"got {self.decrease_factor!r}")
        self._fun_with_aux, self._value_and_grad_with_aux = base.make_value_and_grad(
            self.fun, self.value_and_grad, self.has_aux, self.grad, owner=type(self).__name__)

    # -- state -----------------------------------------------------------
    def init_state(self, init_params, hyperparams_prox, *args, **kwargs):
        """The initial ProxGradState (``velocity`` only with acceleration)."""
        dtype = base.dtype_of(init_params)
        aux = self._fun_with_aux(init_params, *args, **kwargs)[1] if self.has_aux else None
        common = dict(iter_num=np.asarray(0), t=1.0,
                      stepsize=np.asarray(1.0, dtype), error=np.asarray(np.inf, dtype), aux=aux)
        if self.acceleration:
            return ProxGradState(velocity=init_params, **common)
        return ProxGradState(**common)

    # -- one iteration ---------------------------------------------------
    def _value_and_grad(self, x, args, kwargs):
        return base.evaluate(self._value_and_grad_with_aux, x, args, kwargs)

    def _prox_grad(self, x, grad, stepsize, hyperparams_prox):
        return self.prox(T.tree_add_scalar_mul(x, -stepsize, grad), hyperparams_prox, stepsize)

    def _line_search(self, x, value, grad, stepsize, hyperparams_prox, args, kwargs):
        """FISTA's backtracking: at most maxls shrinks of the step."""
        eps = np.finfo(np.result_type(value, np.float32)).eps
        next_x = self._prox_grad(x, grad, stepsize, hyperparams_prox)
        for _ in range(self.maxls):
            diff = T.tree_sub(next_x, x)
            sqdist = T.tree_l2_norm(diff, squared=True)
            f_next = base.check_value(self._fun_with_aux(next_x, *args, **kwargs)[0])
            decrease = stepsize * (f_next - value)
            condition = stepsize * T.tree_vdot(diff, grad) + 0.5 * sqdist
            if not decrease > condition + eps:
                break
            stepsize = stepsize * self.decrease_factor
            next_x = self._prox_grad(x, grad, stepsize, hyperparams_prox)
        return next_x, stepsize

    def _iter(self, iter_num, x, value, grad, stepsize, hyperparams_prox, args, kwargs):
        if not callable(self.stepsize) and self.stepsize <= 0:
            next_x, next_stepsize = self._line_search(x, value, grad, stepsize,
                                                      hyperparams_prox, args, kwargs)
            # restart at 1 when the step collapsed, else try a larger one
            if next_stepsize <= 1e-6:
                next_stepsize = 1.0
            else:
                next_stepsize = next_stepsize / self.decrease_factor
            return next_x, next_stepsize
        next_stepsize = self.stepsize(iter_num) if callable(self.stepsize) else self.stepsize
        return self._prox_grad(x, grad, next_stepsize, hyperparams_prox), next_stepsize

    def update(self, params, state, hyperparams_prox, *args, **kwargs):
        """One proximal gradient (or FISTA) iteration. Returns OptStep."""
        dtype = base.dtype_of(params, "params")
        if self.acceleration:
            return self._update_accel(params, state, hyperparams_prox, args, kwargs, dtype)
        value, aux, grad = self._value_and_grad(params, args, kwargs)
        next_x, next_stepsize = self._iter(state.iter_num, params, value, grad, state.stepsize,
                                           hyperparams_prox, args, kwargs)
        error = T.tree_l2_norm(T.tree_sub(next_x, params)) / next_stepsize
        next_state = ProxGradState(iter_num=state.iter_num + 1,
                                   stepsize=np.asarray(next_stepsize, dtype),
                                   error=np.asarray(error, dtype), aux=aux)
        self.log_info(next_state, "Distance btw Iterates", {"Stepsize": next_stepsize})
        return base.OptStep(next_x, next_state)

    def _update_accel(self, x, state, hyperparams_prox, args, kwargs, dtype):
        # t is a Python float: weakly typed as jaxopt's jnp.asarray(1.0), so
        # float32 params stay float32
        y, t = state.velocity, float(state.t)
        value, aux, grad = self._value_and_grad(y, args, kwargs)
        next_x, next_stepsize = self._iter(state.iter_num, y, value, grad, state.stepsize,
                                           hyperparams_prox, args, kwargs)
        next_t = 0.5 * (1 + math.sqrt(1 + 4 * t ** 2))
        diff_x = T.tree_sub(next_x, x)
        next_y = T.tree_add_scalar_mul(next_x, (t - 1) / next_t, diff_x)
        error = T.tree_l2_norm(diff_x) / next_stepsize
        next_state = ProxGradState(iter_num=state.iter_num + 1, velocity=next_y, t=next_t,
                                   stepsize=np.asarray(next_stepsize, dtype),
                                   error=np.asarray(error, dtype), aux=aux)
        self.log_info(next_state, "Distance btw Iterates", {"Stepsize": next_stepsize})
        return base.OptStep(next_x, next_state)

    # -- optimality ------------------------------------------------------
    def _grad(self, params, *args, **kwargs):
        return self._value_and_grad_with_aux(params, *args, **kwargs)[1]

    def optimality_fun(self, sol, hyperparams_prox, *args, **kwargs):
        """``prox(sol - grad fun(sol), hyperparams_prox, 1) - sol``: zero at a solution."""
        fp = self.prox(T.tree_sub(sol, self._grad(sol, *args, **kwargs)), hyperparams_prox, 1.0)
        return T.tree_sub(fp, sol)


@dataclass(eq=False)
class GradientDescent(_Attributes):
    """Gradient descent: ProximalGradient without a non-smooth term (its
    ``prox``, the identity by default, is kept as jaxopt keeps it), with FISTA
    (Nesterov) acceleration and the backtracking line search by default; same
    attributes and defaults as ProximalGradient.

    ``run(init_params, *args, **kwargs)``; ``optimality_fun`` is the gradient.
    """

    def __post_init__(self):
        super().__post_init__()
        self._pg = _inner(self, self.prox, [n for n in self.attribute_names() if n != "prox"])

    def init_state(self, init_params, *args, **kwargs):
        return self._pg.init_state(init_params, None, *args, **kwargs)

    def update(self, params, state, *args, **kwargs):
        return self._pg.update(params, state, None, *args, **kwargs)

    def optimality_fun(self, params, *args, **kwargs):
        """The gradient of ``fun``: zero at a stationary point."""
        return self._pg._grad(params, *args, **kwargs)


@dataclass(eq=False)
class ProjectedGradient(base.IterativeSolver):
    """Projected gradient: ProximalGradient whose prox is the projection
    ``projection(x, hyperparams_proj)`` onto the feasible set (see
    ``npopt.projection``); same attributes and defaults as ProximalGradient.

    ``run(init_params, hyperparams_proj, *args, **kwargs)``.
    """
    fun: Callable
    projection: Callable
    value_and_grad: Union[bool, Callable] = False
    has_aux: bool = False
    stepsize: Union[float, Callable] = 0.0
    maxiter: int = 500
    maxls: int = 15
    tol: float = 1e-3
    acceleration: bool = True
    decrease_factor: float = 0.5
    verbose: Union[bool, int] = False
    implicit_diff: bool = True
    implicit_diff_solve: Optional[Callable] = None
    jit: bool = True
    unroll: Any = "auto"
    grad: Optional[Callable] = None
    optimality_jvp: Optional[Callable] = None   # see npopt.implicit_diff
    optimality_vjp: Optional[Callable] = None

    def __post_init__(self):
        super().__post_init__()
        if not callable(self.projection):
            raise TypeError(f"projection: expected a callable projection(x, hyperparams), "
                            f"got {self.projection!r}")
        proj = self.projection

        def prox(x, hyperparams=None, scaling=1.0):
            return proj(x, hyperparams)

        self._pg = _inner(self, prox, [n for n in self.attribute_names() if n != "projection"])

    def init_state(self, init_params, hyperparams_proj=None, *args, **kwargs):
        return self._pg.init_state(init_params, hyperparams_proj, *args, **kwargs)

    def update(self, params, state, hyperparams_proj=None, *args, **kwargs):
        return self._pg.update(params, state, hyperparams_proj, *args, **kwargs)

    def optimality_fun(self, sol, hyperparams_proj, *args, **kwargs):
        """``projection(sol - grad fun(sol)) - sol``: zero at a solution."""
        return self._pg.optimality_fun(sol, hyperparams_proj, *args, **kwargs)
