"""Mirror descent (jaxopt 0.8.5's MirrorDescent).

With a mirror map ``phi`` (strongly convex), the step is::

    x+ = argmin_{x in C} <s g, x> + D_phi(x, x_k)
       = projection(grad phi(x_k) - s * grad f(x_k), hyperparams_proj)

where ``projection`` is the Bregman projection onto ``C`` after the mirror
map (``make_projection_grad(projection, mapping_fun)`` builds
``projection_grad`` from both). With ``phi`` the negative entropy on the
simplex this is the exponentiated-gradient method (``mapping_fun = log``,
``projection = kl_projection_simplex``-style normalisation). The stopping
criterion is ``||x+ - x|| / s``.

References:
  Nemirovski & Yudin, "Problem Complexity and Method Efficiency in
  Optimization", 1983. Beck & Teboulle, "Mirror descent and nonlinear
  projected subgradient methods for convex optimization", OR Letters, 2003.
"""
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Optional, Union

import numpy as np

from .. import tree as T
from .._checks import check_callable
from . import base

_EVAL = np.int32


class MirrorDescentState(NamedTuple):
    iter_num: int
    error: float
    aux: Optional[Any] = None
    num_fun_eval: int = 0
    num_grad_eval: int = 0
    num_proj_eval: int = 0


@dataclass(eq=False)
class MirrorDescent(base.IterativeSolver):
    """Mirror descent with a user-given ``projection_grad(x, grad, stepsize,
    hyperparams_proj)`` (see ``make_projection_grad``).

    Attributes:
      fun: the objective (see value_and_grad / grad for its gradient; npopt
        additions, since jaxopt differentiates ``fun`` itself).
      projection_grad: the mirror step, e.g.
        ``MirrorDescent.make_projection_grad(projection, mapping_fun)``.
      stepsize: a positive number, or a callable ``stepsize(iter_num)``.
      maxiter, tol (default 1e-2), verbose, implicit_diff, ...: as jaxopt.
    """
    fun: Callable
    projection_grad: Optional[Callable]
    stepsize: Union[float, Callable]
    maxiter: int = 500
    tol: float = 1e-2
    verbose: Union[bool, int] = False
    implicit_diff: bool = True
    implicit_diff_solve: Optional[Callable] = None
    has_aux: bool = False
    jit: bool = True
    unroll: Any = "auto"
    value_and_grad: Union[bool, Callable] = False
    grad: Optional[Callable] = None
    optimality_jvp: Optional[Callable] = None   # see npopt.implicit_diff
    optimality_vjp: Optional[Callable] = None

    def __post_init__(self):
        super().__post_init__()
        check_callable("fun", self.fun)
        if not callable(self.projection_grad):
            raise TypeError("projection_grad: expected a callable projection_grad(x, grad, "
                            f"stepsize, hyperparams_proj), got {self.projection_grad!r}")
        if not callable(self.stepsize) and not (
                isinstance(self.stepsize, (int, float, np.number)) and np.isfinite(self.stepsize)
                and self.stepsize > 0):
            raise ValueError(f"stepsize: expected a positive number or a callable, "
                             f"got {self.stepsize!r}")
        self._fun_with_aux, self._value_and_grad_with_aux = base.make_value_and_grad(
            self.fun, self.value_and_grad, self.has_aux, self.grad, owner=type(self).__name__)

    @staticmethod
    def make_projection_grad(projection, mapping_fun):
        """``projection(mapping_fun(x) - stepsize * grad, hyperparams_proj)``."""
        def projection_grad(x, x_fun_grad, stepsize, hyperparams_proj):
            update = T.tree_add_scalar_mul(mapping_fun(x), -stepsize, x_fun_grad)
            return projection(update, hyperparams_proj)
        return projection_grad

    def init_state(self, init_params, hyperparams_proj=None, *args, **kwargs):
        base.dtype_of(init_params)
        aux = self._fun_with_aux(init_params, *args, **kwargs)[1] if self.has_aux else None
        return MirrorDescentState(iter_num=np.asarray(0), error=np.asarray(np.inf), aux=aux,
                                  num_fun_eval=np.asarray(int(self.has_aux), _EVAL),
                                  num_grad_eval=np.asarray(0, _EVAL),
                                  num_proj_eval=np.asarray(0, _EVAL))

    def _stepsize(self, iter_num):
        return self.stepsize(iter_num) if callable(self.stepsize) else self.stepsize

    def _grad_with_aux(self, x, args, kwargs):
        (_, aux), grad = self._value_and_grad_with_aux(x, *args, **kwargs)
        base.check_grad_structure(grad, x)
        return grad, aux

    def update(self, params, state, hyperparams_proj=None, *args, **kwargs):
        stepsize = self._stepsize(state.iter_num)
        grad, aux = self._grad_with_aux(params, args, kwargs)
        next_x = self.projection_grad(params, grad, stepsize, hyperparams_proj)
        error = T.tree_l2_norm(T.tree_sub(next_x, params)) / stepsize
        next_state = MirrorDescentState(
            iter_num=state.iter_num + 1, error=np.asarray(error), aux=aux,
            num_fun_eval=state.num_fun_eval + 1, num_grad_eval=state.num_grad_eval + 1,
            num_proj_eval=state.num_proj_eval + 1)
        self.log_info(next_state, "Distance btw Iterates")
        return base.OptStep(next_x, next_state)

    def run(self, init_params, hyperparams_proj=None, *args, **kwargs):
        return super().run(init_params, hyperparams_proj, *args, **kwargs)

    def optimality_fun(self, sol, hyperparams_proj, *args, **kwargs):
        """``projection_grad(sol, grad f(sol), 1) - sol``: zero at a solution."""
        grad, _ = self._grad_with_aux(sol, args, kwargs)
        return T.tree_sub(self.projection_grad(sol, grad, 1.0, hyperparams_proj), sol)
