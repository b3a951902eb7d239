r"""``IterativeRefinement`` (jaxopt/_src/iterative_refinement.py): ``A x = b`` by
:math:`x \leftarrow x + \mathrm{solve}(\bar A, b - Ax)` (Wilkinson 1963).
"""
import functools
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Optional, Union

import numpy as np

from ... import linear_solve
from ... import tree as T
from .. import base
from ._common import _OperatorFactory, _check_matvec


class IterativeRefinementState(NamedTuple):
    """jaxopt's IterativeRefinementState."""
    iter_num: int
    error: float
    target_residuals: Any
    init: Any
    num_matvec_eval: int = 0
    num_matvec_bar_eval: int = 0
    num_solve_eval: int = 0


@dataclass(eq=False)
class IterativeRefinement(base.IterativeSolver):
    r"""Iterative refinement for ``A x = b``.

    Starting from :math:`(r_0, x_0) = (b, x_\text{init})` it iterates

    .. math::

        \delta = \text{solve}(\bar A, r_{t-1}),\quad x_t = x_{t-1} + \delta,
        \quad r_t = b - A x_t

    while :math:`\|r_t\|_2 >` ``tol``, where :math:`\bar A` (default
    :math:`A`) approximates :math:`A` (lower precision, a ridge): the true
    residual corrects an inaccurate inner solve. As jaxopt: the first
    residual is ``b`` itself (not ``b - A x_init``) and the first inner solve
    is warm-started at ``init_params``, later ones at zero.

    ``run(init_params, A, b, A_bar=None)``; ``matvec_A(A, x)`` /
    ``matvec_A_bar(A_bar, x)`` default to dense products. The inner
    ``solve(matvec, b, init=...)`` defaults to GMRES with ``ridge=1e-6``;
    npopt's solvers are called with ``check='ignore'`` (an inexact inner solve
    is expected).
    """
    matvec_A: Optional[Callable] = None
    matvec_A_bar: Optional[Callable] = None
    solve: Callable = functools.partial(linear_solve.solve_gmres, ridge=1e-6)
    maxiter: int = 10
    tol: float = 1e-7
    verbose: Union[bool, int] = False
    implicit_diff_solve: Optional[Callable] = None
    jit: bool = True
    unroll: Any = "auto"
    optimality_jvp: Optional[Callable] = None   # see npopt.implicit_diff
    optimality_vjp: Optional[Callable] = None

    def __post_init__(self):
        super().__post_init__()
        _check_matvec("matvec_A", self.matvec_A)
        _check_matvec("matvec_A_bar", self.matvec_A_bar)
        if not callable(self.solve):
            raise TypeError(f"solve: expected a callable solve(matvec, b, init=...), got "
                            f"{type(self.solve).__name__}")
        self._copy_A = self.matvec_A_bar is None
        self._op_A = _OperatorFactory(self.matvec_A)
        self._op_A_bar = self._op_A if self._copy_A else _OperatorFactory(self.matvec_A_bar)
        self._solve = linear_solve._quiet(self.solve)

    def init_params(self, A, b, A_bar=None):
        return T.tree_zeros_like(b)

    def init_state(self, init_params, A, b, A_bar=None):
        return IterativeRefinementState(
            iter_num=np.asarray(0), error=np.asarray(np.inf), target_residuals=b,
            init=init_params, num_matvec_eval=np.asarray(0, np.int32),
            num_matvec_bar_eval=np.asarray(0, np.int32), num_solve_eval=np.asarray(0, np.int32))

    def update(self, params, state, A, b, A_bar=None):
        """One refinement step: solve with ``A_bar``, correct with ``A``."""
        if self._copy_A:
            A_bar = A
        matvec_A, matvec_A_bar = self._op_A(A), self._op_A_bar(A_bar)
        delta = self._solve(matvec_A_bar, state.target_residuals, init=state.init)
        params = T.tree_add(params, delta)
        target_residuals = T.tree_sub(b, matvec_A(params))
        error = T.tree_l2_norm(target_residuals)
        state = IterativeRefinementState(
            iter_num=state.iter_num + 1, error=np.asarray(error),
            target_residuals=target_residuals, init=self.init_params(A, b, A_bar),
            num_matvec_eval=state.num_matvec_eval + 1,
            num_matvec_bar_eval=state.num_matvec_bar_eval + 1,
            num_solve_eval=state.num_solve_eval + 1)
        self.log_info(state, "Residual Norm")
        return base.OptStep(params, state)

    def run(self, init_params, A, b, A_bar=None):
        """Solves ``A x = b``; ``init_params=None`` starts from zeros."""
        self._op_A.reset()
        self._op_A_bar.reset()
        if init_params is None:
            init_params = self.init_params(A, b, A_bar)
        return super().run(init_params, A, b, A_bar)

    def optimality_fun(self, params, A, b, A_bar=None):
        """``b - A x``: zero at the solution."""
        return T.tree_sub(b, self._op_A(A)(params))
