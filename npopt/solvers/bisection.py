"""Bisection for a scalar root (jaxopt 0.8.5's Bisection).

Given ``f = optimality_fun`` continuous with a sign change on
``[lower, upper]``, each iteration halves the bracket::

    x_k   = (low + high) / 2,     error_k = sqrt(f(x_k)^2) = |f(x_k)|
    high <- x_k  if sign * f(x_k) > 0   else   low <- x_k

where ``sign = +1`` if ``f(lower) < 0 <= f(upper)`` (f increasing across the
root), ``-1`` if ``f(lower) > 0 >= f(upper)``, and 0 otherwise (no sign
change: an error with ``check_bracket=True``). The loop stops when
``|f(x_k)| <= tol`` (the error is on the *value*, not on the bracket width)
or after ``maxiter`` iterations; after k iterations the bracket has width
``|upper - lower| / 2^k``.

.. warning:: As in jaxopt, a root exactly at ``lower`` (``f(lower) == 0``)
   counts as "no sign change" (the test is ``f(lower) < 0`` / ``> 0``), and
   ``lower``/``upper`` are always float64.

References:
  Burden & Faires, "Numerical Analysis", Section 2.1 (the bisection method).
"""
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Optional, Union

import numpy as np

from .._checks import check_callable, check_number
from . import base
from .fixed_point import fun_with_aux

_EVAL = np.int32


class BisectionState(NamedTuple):
    """jaxopt's BisectionState.

    Attributes:
      iter_num: iterations done.
      value: ``f`` at the last midpoint (inf before the first iteration).
      error: ``sqrt(value**2)``.
      low, high: the current bracket (``low`` is where ``sign * f <= 0``).
      sign: +1 (f increasing), -1 (decreasing) or 0 (no sign change).
      aux: the auxiliary output of ``optimality_fun`` with ``has_aux``.
      num_fun_eval: evaluations of ``optimality_fun`` (int32; 2 at init).
    """
    iter_num: int
    value: float
    error: float
    low: float
    high: float
    sign: int
    aux: Optional[Any] = None
    num_fun_eval: int = 0


@dataclass(eq=False)
class Bisection(base.IterativeSolver):
    """One-dimensional root finding by bisection.

    Attributes:
      optimality_fun: ``f(x, *args, **kwargs)`` for a scalar ``x``, returning
        a scalar (with ``has_aux``: ``(f(x), aux)``); ``f(lower)`` and
        ``f(upper)`` must have opposite signs.
      lower, upper: the bracketing interval.
      maxiter: maximum number of iterations (default 30).
      tol: stop when ``|f(x)| <= tol`` (default 1e-5).
      check_bracket: raise ValueError when ``f`` has no sign change on the
        bracket (default True). With False such a bracket gives ``sign = 0``
        and the iterates drift to ``upper``, as in jaxopt.
      verbose: print one line per iteration.
      has_aux: ``optimality_fun`` returns ``(value, aux)``.
      implicit_diff_solve, jit, unroll: accepted for compatibility.

    ``run(init_params=None, *args, **kwargs)``: ``init_params`` is ignored
    (the iterates are the midpoints of the bracket).
    """
    optimality_fun: Callable
    lower: float
    upper: float
    maxiter: int = 30
    tol: float = 1e-5
    check_bracket: bool = True
    verbose: Union[bool, int] = False
    implicit_diff_solve: Optional[Callable] = None
    has_aux: bool = False
    jit: bool = True
    unroll: Any = "auto"
    optimality_jvp: Optional[Callable] = None   # see npopt.implicit_diff
    optimality_vjp: Optional[Callable] = None

    def __post_init__(self):
        super().__post_init__()
        check_callable("optimality_fun", self.optimality_fun)
        check_number("lower", self.lower)
        check_number("upper", self.upper)
        self._fun_with_aux = fun_with_aux(self.optimality_fun, self.has_aux)

    def _value(self, x, args, kwargs):
        value, aux = self._fun_with_aux(x, *args, **kwargs)
        return np.asarray(base.check_value(value, "optimality_fun")), aux

    def init_state(self, init_params=None, *args, **kwargs):
        """Evaluates ``f(lower)``, ``f(upper)`` and the sign; raises
        ValueError when there is no sign change and ``check_bracket``."""
        del init_params
        lower = np.asarray(self.lower, float)
        upper = np.asarray(self.upper, float)
        lower_value, _ = self._value(lower, args, kwargs)
        upper_value, _ = self._value(upper, args, kwargs)
        # +1: f increases across the root, -1: it decreases, 0: no sign change
        if lower_value < 0 and upper_value >= 0:
            sign = 1
        elif lower_value > 0 and upper_value <= 0:
            sign = -1
        else:
            sign = 0
        if self.check_bracket and sign == 0:
            finite = np.isfinite(lower_value) and np.isfinite(upper_value)
            if np.isnan(lower_value) or np.isnan(upper_value):
                raise ValueError(
                    f"optimality_fun: returned NaN (not finite) at the bracket's ends (f(lower) = "
                    f"{float(lower_value)!r} at lower = {float(lower)!r}, f(upper) = "
                    f"{float(upper_value)!r} at upper = {float(upper)!r}); bisection needs a "
                    f"value whose sign can be compared with 0")
            raise ValueError(
                f"lower, upper: expected a bracket [lower, upper] = [{float(lower)!r}, "
                f"{float(upper)!r}] on which optimality_fun changes sign (f(lower) < 0 <= "
                f"f(upper) or f(lower) > 0 >= f(upper)), got f(lower) = {float(lower_value)!r} and "
                f"f(upper) = {float(upper_value)!r}"
                + ("" if finite else " (not finite)")
                + "; the root is not contained in [lower, upper]: widen the bracket "
                  "(or pass check_bracket=False)")
        return BisectionState(iter_num=np.asarray(0), value=np.asarray(np.inf),
                              error=np.asarray(np.inf), low=lower, high=upper,
                              sign=np.asarray(sign), num_fun_eval=np.asarray(2, _EVAL))

    def update(self, params, state, *args, **kwargs):
        """One bisection step from the midpoint (``params`` is ignored)."""
        del params
        params = 0.5 * (state.high + state.low)
        value, aux = self._value(params, args, kwargs)
        error = np.sqrt(value ** 2)
        # f too large at the midpoint: it becomes the new high, else the new low
        too_large = state.sign * value > 0
        high = np.where(too_large, params, state.high)
        low = np.where(too_large, state.low, params)
        state = BisectionState(iter_num=state.iter_num + 1, value=value, error=error,
                               low=low, high=high, sign=state.sign, aux=aux,
                               num_fun_eval=state.num_fun_eval + 1)
        self.log_info(state, "Absolute Value Output", {"High Point": high, "Low Point": low})
        return base.OptStep(params, state)

    def run(self, init_params=None, *args, **kwargs):
        """Runs bisection; ``init_params`` is ignored (None by default)."""
        return super().run(init_params, *args, **kwargs)
