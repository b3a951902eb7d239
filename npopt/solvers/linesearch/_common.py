"""What the three line searches share: ``LineSearchStep``, the vector helpers
on pytrees (``axpy`` with the numba kernel for array leaves, ``slope``,
``neg_conj``; also used by LBFGS, BFGS and NonlinearCG), and ``_Common``:
setup, evaluation and the run loop (jaxopt's ``IterativeLineSearch``).
"""
from typing import Any, NamedTuple

import numpy as np

from ... import _dense
from ... import tree as T
from ...kernels import lbfgs as K
from .. import base


_EVAL = np.int32   # jaxopt's NUM_EVAL_DTYPE


class LineSearchStep(NamedTuple):
    """jaxopt's ``base.LineSearchStep``: what ``run`` and ``update`` return."""
    stepsize: Any
    state: Any


# --------------------------------------------------------------------------
# Vector helpers on pytrees (numba axpy for array leaves).

def _real_dtype(params, name="params"):
    """The real dtype of a params tree whose leaves share one float/complex dtype
    (jaxopt's ``get_real_dtype(tree_single_dtype(params))``). Integer and
    boolean leaves are refused (jaxopt's gradients refuse them too)."""
    return np.finfo(base.dtype_of(params, name, allow_complex=True)).dtype


def _axpy_leaf(x, t, d):
    x = np.asarray(x)
    d = np.asarray(d)
    if x.ndim and x.dtype == d.dtype and x.dtype.kind in "fc" \
            and x.flags.c_contiguous and d.flags.c_contiguous:
        out = np.empty_like(x)
        K.axpy_cpu(x.reshape(-1), np.finfo(x.dtype).dtype.type(t), d.reshape(-1),
                   out.reshape(-1))
        return out
    return x + t * d


def axpy(x, t, d):
    """``x + t * d`` leaf by leaf (jaxopt's ``tree_add_scalar_mul``), one fused
    multiply-add per element as jitted XLA computes it."""
    if type(x) is np.ndarray:
        return _axpy_leaf(x, t, d)
    return T.tree_map(lambda a, b: _axpy_leaf(a, t, b), x, d)


def slope(grad, d):
    """``Re <conj(grad), d> = Re sum_i grad_i d_i`` over all leaves, added in leaf
    order (jaxopt's ``tree_vdot_real(tree_conj(grad), d)``)."""
    if type(grad) is np.ndarray and type(d) is np.ndarray:
        return _dense.dot(grad.reshape(-1), d.reshape(-1)).real
    lg = T.tree_leaves(grad)
    ld = T.tree_structure(grad).flatten_up_to(d, "descent_direction")
    total = None
    for a, b in zip(lg, ld):
        v = _dense.dot(np.ravel(a), np.ravel(b)).real
        total = v if total is None else total + v
    return total


def neg_conj(grad):
    """``-conj(grad)``: the steepest descent direction."""
    return T.tree_map(lambda g: -np.conj(g) if np.iscomplexobj(g) else -np.asarray(g), grad)


def _nan_to_inf(x):
    return np.inf if np.isnan(x) else x


# --------------------------------------------------------------------------
# Shared machinery of the three line searches.

class _Common:
    """Setup, evaluation and the run loop (jaxopt's ``IterativeLineSearch``).

    ``_check_descent`` is True for user-facing instances; the solvers turn it
    off on theirs (see ``npopt.solvers.linesearch``)."""

    _check_descent = True
    _aux_is_none = False      # set by solvers whose fun has no aux (skips a call)

    def _setup(self):
        base.IterativeSolver.__post_init__(self)
        if not callable(self.fun):
            raise TypeError(f"fun: expected a callable, got {type(self.fun).__name__}")
        for name in ("c1", "c2"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float, np.number)) and 0 < v < 1):
                raise ValueError(f"{name}: expected a number in (0, 1), got {v!r}")
        self._fun_with_aux, self._value_and_grad_with_aux = base.make_value_and_grad(
            self.fun, self.value_and_grad, self.has_aux, self.grad, owner=type(self).__name__)

    def _evaluate(self, params, fun_args, fun_kwargs):
        """(value, aux, grad) at params, checked."""
        return base.evaluate(self._value_and_grad_with_aux, params, fun_args, fun_kwargs)

    def _value_only(self, params, fun_args, fun_kwargs):
        value, aux = self._fun_with_aux(params, *fun_args, **fun_kwargs)
        return base.check_value(value), aux

    def _check_direction(self, grad, descent_direction):
        if not self._check_descent or descent_direction is None:
            return
        base.check_grad_structure(descent_direction, grad, "descent_direction")
        s = slope(grad, descent_direction)
        if s > 0:
            raise ValueError(
                "descent_direction: expected a descent direction "
                f"(<grad, descent_direction> < 0), got <grad, descent_direction> = {s:.6g}; "
                "pass -grad (or None, its default) or a direction that decreases fun")

    def _cond(self, state):
        return bool(state.error > self.tol)

    def run(self, init_stepsize, params, value=None, grad=None, descent_direction=None,
            fun_args=[], fun_kwargs={}):
        """Runs the line search: ``init_state``, one ``update``, then updates
        while the search goes on, ``maxiter`` updates at most (jaxopt's loop).

        Returns:
          LineSearchStep(stepsize, state); ``state.params`` is the accepted point.
        """
        fun_args, fun_kwargs = tuple(fun_args), dict(fun_kwargs)
        state = self.init_state(init_stepsize, params, value, grad, descent_direction,
                                fun_args, fun_kwargs)
        if self.maxiter == 0:
            return LineSearchStep(init_stepsize, state)
        step = self.update(init_stepsize, state, params, value, grad, descent_direction,
                           fun_args, fun_kwargs)
        for _ in range(self.maxiter - 1):
            if not self._cond(step.state):
                break
            step = self.update(step.stepsize, step.state, params, value, grad,
                               descent_direction, fun_args, fun_kwargs)
        return step

    def optimality_fun(self, params, *args, **kwargs):
        """Not defined for a line search (jaxopt's neither)."""
        raise NotImplementedError("a line search has no optimality function")
