"""Fixed-point iteration (jaxopt 0.8.5's FixedPointIteration).

Finds ``x = T(x, *args)`` by iterating::

    x_{k+1} = T(x_k),        error_k = ||x_{k+1} - x_k||_2

until ``error <= tol`` or ``maxiter`` iterations. When ``T`` is a contraction
(Lipschitz constant ``L < 1``) the Banach fixed-point theorem gives
convergence from any start, linearly with rate ``L``; otherwise nothing is
guaranteed. ``AndersonAcceleration`` (``npopt.solvers.anderson``) solves the
same problem with fewer evaluations of ``T``.

References:
  Banach, "Sur les operations dans les ensembles abstraits et leur
  application aux equations integrales", Fundamenta Mathematicae, 1922.
  https://en.wikipedia.org/wiki/Fixed-point_iteration
"""
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Optional, Union

import numpy as np

from .. import tree as T
from .._checks import check_callable
from . import base

_EVAL = np.int32      # jaxopt's NUM_EVAL_DTYPE


class FixedPointState(NamedTuple):
    """jaxopt's FixedPointState.

    Attributes:
      iter_num: iterations done.
      error: ``||T(x) - x||`` at the last iteration (inf before the first).
      aux: the auxiliary output of ``fixed_point_fun`` with ``has_aux``.
      num_fun_eval: evaluations of ``fixed_point_fun`` (int32).
    """
    iter_num: int
    error: float
    aux: Optional[Any] = None
    num_fun_eval: int = 0


def check_same_structure(out, params, name):
    """``out`` (a map's output) must have the structure and shapes of ``params``."""
    ol, odef = T.tree_flatten(out)
    pl, pdef = T.tree_flatten(params)
    if odef != pdef:
        raise ValueError(f"{name}: expected an output with the structure of the params "
                         f"{pdef}, got {odef}")
    for i, (o, p) in enumerate(zip(ol, pl)):
        if np.shape(o) != np.shape(p):
            raise ValueError(f"{name}: output leaf {i} has shape {np.shape(o)}, expected "
                             f"{np.shape(p)} (the shape of the params leaf)")


def fun_with_aux(fun, has_aux):
    """``fun`` as a callable returning ``(value, aux)`` (aux None without has_aux)."""
    if has_aux:
        def f(p, *args, **kwargs):
            out = fun(p, *args, **kwargs)
            if not (isinstance(out, tuple) and len(out) == 2):
                raise TypeError("has_aux=True: expected the function to return (value, aux), "
                                f"got {type(out).__name__}")
            return out
        return f
    return lambda p, *args, **kwargs: (fun(p, *args, **kwargs), None)


@dataclass(eq=False)
class FixedPointIteration(base.IterativeSolver):
    """Fixed-point iteration ``x <- fixed_point_fun(x, *args, **kwargs)``.

    Attributes:
      fixed_point_fun: ``T(x, *args, **kwargs)`` returning a pytree with the
        structure of ``x`` (with ``has_aux``: ``(T(x), aux)``).
      maxiter: maximum number of iterations (default 100).
      tol: stop when ``||T(x) - x|| <= tol`` (default 1e-5).
      has_aux: ``fixed_point_fun`` returns ``(T(x), aux)``; the last aux is
        kept in ``state.aux``.
      verbose: print one line per iteration.
      implicit_diff, implicit_diff_solve, jit, unroll: accepted for
        compatibility with jaxopt (see ``npopt.implicit_diff``).

    ``run(init_params, *args, **kwargs)``; ``optimality_fun(x) = T(x) - x``.
    """
    fixed_point_fun: Callable
    maxiter: int = 100
    tol: float = 1e-5
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
        self._fun = fun_with_aux(self.fixed_point_fun, self.has_aux)

    def init_state(self, init_params, *args, **kwargs):
        """The initial FixedPointState (``fixed_point_fun`` is not called)."""
        base.dtype_of(init_params)
        del init_params, args, kwargs
        return FixedPointState(iter_num=np.asarray(0), error=np.asarray(np.inf), aux=None,
                               num_fun_eval=np.asarray(0, _EVAL))

    def update(self, params, state, *args, **kwargs):
        """One iteration ``x+ = T(x)``, ``error = ||x+ - x||``. Returns OptStep."""
        next_params, aux = self._fun(params, *args, **kwargs)
        check_same_structure(next_params, params, "fixed_point_fun")
        error = T.tree_l2_norm(T.tree_sub(next_params, params))
        next_state = FixedPointState(iter_num=state.iter_num + 1, error=np.asarray(error),
                                     aux=aux, num_fun_eval=state.num_fun_eval + 1)
        self.log_info(next_state, "Distance btw Iterates")
        return base.OptStep(next_params, next_state)

    def optimality_fun(self, params, *args, **kwargs):
        """``T(x) - x``: zero at a fixed point."""
        next_params, _ = self._fun(params, *args, **kwargs)
        return T.tree_sub(next_params, params)
