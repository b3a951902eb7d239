"""Block coordinate descent for composite linear objectives (jaxopt 0.8.5's
BlockCoordinateDescent).

It minimises ``fun(params, *args) + sum_j g(params[j], hyperparams_prox)``
where ``fun(x) = subfun(A x) + <b, x>`` is an ``npopt.objective``
CompositeLinearFunction and ``g`` is separable over the blocks (rows) of
``params``. One iteration is a pass over the blocks ``j = 0 .. n-1``::

    g_j  = A[:, j]^T grad subfun(A x) + b_j
    x_j <- block_prox(x_j - s_j g_j, hyperparams_prox, s_j),   s_j = 1 / L_j

with ``L_j = ||A[:, j]||^2 * L`` (``columnwise_lipschitz_const``), keeping
the predictions ``A x`` up to date after each block. The error is the norm
of the change of ``x`` over the pass.

References:
  Tseng & Yun, "A coordinate gradient descent method for nonsmooth separable
  minimization", Mathematical Programming, 2009.
  Friedman, Hastie & Tibshirani, "Regularization paths for generalized
  linear models via coordinate descent", J. Stat. Software, 2010.
"""
import math
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Optional, Union

import numpy as np

from . import base

_EVAL = np.int32


class BlockCDState(NamedTuple):
    iter_num: int
    error: float
    predictions: Any
    subfun_g: Any
    num_fun_eval: int = 0
    num_prox_eval: int = 0
    num_grad_eval: int = 0


@dataclass(eq=False)
class BlockCoordinateDescent(base.IterativeSolver):
    """Block coordinate descent (see the module docstring).

    Attributes:
      fun: an ``npopt.objective`` CompositeLinearFunction (e.g.
        ``npopt.objective.least_squares``, ``multiclass_logreg``), which gives
        ``make_linop``, ``subfun_grad`` and ``columnwise_lipschitz_const``.
      block_prox: ``block_prox(x_j, hyperparams_prox, scaling)``, e.g.
        ``npopt.prox.prox_lasso`` or ``prox_group_lasso``.
      maxiter, tol (default 1e-4), verbose, implicit_diff, ...: as jaxopt.
    """
    fun: Any
    block_prox: Callable
    maxiter: int = 500
    tol: float = 1e-4
    verbose: Union[bool, int] = False
    implicit_diff: bool = True
    implicit_diff_solve: Optional[Callable] = None
    jit: bool = True
    unroll: Any = "auto"
    optimality_jvp: Optional[Callable] = None   # see npopt.implicit_diff
    optimality_vjp: Optional[Callable] = None

    def __post_init__(self):
        super().__post_init__()
        for name in ("make_linop", "subfun_grad", "columnwise_lipschitz_const"):
            if not callable(getattr(self.fun, name, None)):
                raise TypeError(
                    "fun: expected an npopt.objective.CompositeLinearFunction (with make_linop, "
                    f"subfun_grad and columnwise_lipschitz_const), got {type(self.fun).__name__}")
        if not callable(self.block_prox):
            raise TypeError(f"block_prox: expected a callable, got {self.block_prox!r}")

    def init_state(self, init_params, hyperparams_prox, *args, **kwargs):
        linop = self.fun.make_linop(*args, **kwargs)
        predictions = linop.matvec(init_params)
        return BlockCDState(iter_num=np.asarray(0), predictions=predictions,
                            subfun_g=self.fun.subfun_grad(predictions, *args, **kwargs),
                            error=np.asarray(np.inf),
                            num_fun_eval=np.asarray(1, _EVAL), num_grad_eval=np.asarray(1, _EVAL),
                            num_prox_eval=np.asarray(0, _EVAL))

    def update(self, params, state, hyperparams_prox, *args, **kwargs):
        """One pass over the blocks (rows of params). Returns OptStep."""
        linop = self.fun.make_linop(*args, **kwargs)
        stepsizes = 1.0 / self.fun.columnwise_lipschitz_const(*args, **kwargs)
        b = self.fun.b(*args, **kwargs)
        x = np.array(params, copy=True)
        subfun_g, predictions = state.subfun_g, state.predictions
        sqerror_sum = 0.0
        n = x.shape[0]
        for i in range(n):
            x_i_old = x[i]
            g_i = linop.rmatvec_element(subfun_g, i)
            if b is not None:
                g_i = g_i + b[i]
            x_i_new = self.block_prox(x[i] - stepsizes[i] * g_i, hyperparams_prox, stepsizes[i])
            diff_i = x_i_new - x_i_old
            sqerror_sum += np.sum(diff_i ** 2)
            x[i] = x_i_new
            predictions = linop.update_matvec(predictions, diff_i, i)
            subfun_g = self.fun.subfun_grad(predictions, *args, **kwargs)
        new_state = BlockCDState(iter_num=state.iter_num + 1, predictions=predictions,
                                 subfun_g=subfun_g, error=np.asarray(math.sqrt(sqerror_sum)),
                                 num_fun_eval=state.num_fun_eval + n,
                                 num_grad_eval=state.num_grad_eval + n,
                                 num_prox_eval=state.num_prox_eval + n)
        self.log_info(new_state, "Distance btw Iterates")
        return base.OptStep(x, new_state)

    def optimality_fun(self, params, hyperparams_prox, *args, **kwargs):
        """``block_prox(params - grad fun(params)) - params`` (blockwise, scaling 1)."""
        step = params - self.fun.grad(params, *args, **kwargs)
        fp = np.stack([np.asarray(self.block_prox(step[i], hyperparams_prox))
                       for i in range(step.shape[0])]).reshape(step.shape)
        return fp - params
