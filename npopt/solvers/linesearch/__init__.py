r"""Line searches (jaxopt 0.8.5): backtracking, zoom (strong Wolfe) and
Hager-Zhang (approximate Wolfe), usable on their own and inside LBFGS, BFGS
and NonlinearCG.

Each searches a step ``t`` along a direction ``d`` from ``x``, with
``phi(t) = f(x + t d)`` and ``phi'(t) = <grad f(x + t d), d>`` (the real part
of the complex inner product, ``tree_vdot_real(conj(g), d)``):

* sufficient decrease (Armijo), Nocedal & Wright (3.6a):
  ``phi(t) <= phi(0) + c1 t phi'(0)``;
* curvature (Wolfe, (3.6b)): ``phi'(t) >= c2 phi'(0)``; strong Wolfe (3.7b):
  ``|phi'(t)| <= c2 |phi'(0)|``;
* Goldstein (3.11): ``phi(t) >= phi(0) + (1 - c1) t phi'(0)``;
* approximate Wolfe (Hager & Zhang 2005, eq. (23)):
  ``(2 c1 - 1) phi'(0) >= phi'(t) >= c2 phi'(0)``, used only where
  ``phi(t) <= phi(0) + eps_k`` (``eps_k = 1e-6 |phi(0)|`` in Hager-Zhang,
  ``c3 |phi(0)|`` in zoom): close to a minimum the Armijo test compares
  values equal to rounding and can no longer be met.

The API is jaxopt's: ``run(init_stepsize, params, value=None, grad=None,
descent_direction=None, fun_args=[], fun_kwargs={}) -> LineSearchStep(stepsize,
state)``, ``init_state`` and ``update`` with the same arguments (``update``
takes the current ``stepsize`` and ``state`` first). ``state.params``,
``state.value``, ``state.grad`` and ``state.aux`` hold the accepted point;
``state.done`` / ``state.failed`` say how the search ended, and
``num_fun_eval`` / ``num_grad_eval`` count the evaluations npopt made: calls of
``fun`` for a value (a ``(value, grad)`` call counts one of each; with finite
differences a gradient costs ``2n`` more calls of ``fun``, counted in
``num_grad_eval`` as one gradient). That is jaxopt's count wherever npopt
evaluates what jaxopt evaluates (every backtracking and zoom search on its
own); it is lower where jaxopt evaluates and discards: Hager-Zhang's second
secant and its bracket's last expansion, and the zoom search's evaluation of
``fun`` again for the aux, which jaxopt makes inside LBFGS, BFGS, NonlinearCG
and LBFGSB although their ``fun`` has no aux (npopt skips that call). npopt
follows the true count, so that ``num_fun_eval`` is what a counting wrapper
around ``fun`` sees.

.. warning:: npopt addition: called directly (not from a solver), the line
   searches raise ``ValueError`` when ``descent_direction`` goes uphill
   (``<grad, descent_direction> > 0``), before any evaluation along it.
   jaxopt runs the search anyway and reports ``failed`` (zoom prints a
   diagnostic when verbose). Inside LBFGS/BFGS/NonlinearCG, npopt does what
   jaxopt does: the search runs and may fail. A zero slope (a stationary
   point, or a direction orthogonal to the gradient) and a NaN slope are let
   through, as in jaxopt.

References:
  J. Nocedal and S. Wright, Numerical Optimization, 2nd edition, 2006,
  Algorithms 3.5 and 3.6 (zoom).
  W. Hager and H. Zhang, A new conjugate gradient method with guaranteed
  descent and an efficient line search, SIAM J. Optim. 16(1), 2005; Algorithm
  851: CG_DESCENT, ACM TOMS 32(1), 2006.

Layout: ``backtracking``, ``zoom``, ``hager_zhang`` (one line search each);
``_common`` holds what they share (``LineSearchStep``, the pytree vector
helpers, the setup and run loop), ``_util`` what the solvers use to pick and
start one.
"""
from ._common import LineSearchStep, axpy, neg_conj, slope
from .backtracking import BacktrackingLineSearch, BacktrackingLineSearchState
from .zoom import (FLAG_CURVATURE_COND_NOT_SATSIFIED, FLAG_INTERVAL_NOT_FOUND,
                   FLAG_INTERVAL_TOO_SMALL, FLAG_NAN_INF_VALUES, FLAG_NOT_A_DESCENT_DIRECTION,
                   FLAG_NO_STEPSIZE_FOUND, ZoomLineSearch, ZoomLineSearchState)
from .hager_zhang import HagerZhangLineSearch, HagerZhangLineSearchState
from ._util import check_linesearch, check_linesearch_init, init_stepsize, setup_linesearch

# used by other solvers (engine, lbfgs, nonlinear_cg)
from ._common import _real_dtype  # noqa: F401

__all__ = [
    "LineSearchStep", "BacktrackingLineSearch", "BacktrackingLineSearchState",
    "ZoomLineSearch", "ZoomLineSearchState", "HagerZhangLineSearch", "HagerZhangLineSearchState",
    "FLAG_NAN_INF_VALUES", "FLAG_INTERVAL_NOT_FOUND", "FLAG_INTERVAL_TOO_SMALL",
    "FLAG_CURVATURE_COND_NOT_SATSIFIED", "FLAG_NO_STEPSIZE_FOUND", "FLAG_NOT_A_DESCENT_DIRECTION",
    "axpy", "slope", "neg_conj", "check_linesearch", "setup_linesearch",
    "check_linesearch_init", "init_stepsize",
]
