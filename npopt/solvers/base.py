"""The solver API shared by every npopt solver (jaxopt's ``base`` module).

An iterative solver is a dataclass holding its hyperparameters with

* ``init_state(init_params, *args, **kwargs) -> state``
* ``update(params, state, *args, **kwargs) -> OptStep(params, state)``
* ``run(init_params, *args, **kwargs) -> OptStep``: ``init_state``, one
  ``update``, then further updates while ``state.error > tol``, at most
  ``maxiter`` updates in all (jaxopt's loop, iteration for iteration);
* ``optimality_fun(params, *args, **kwargs)``: zero at a solution, and
  ``l2_optimality_error``, its norm.

Stochastic solvers add ``run_iterator(init_params, iterator, *args,
**kwargs)``, which feeds each batch as the ``data`` keyword.

There is no autodiff: the gradient of ``fun`` comes from, in this order,

1. ``value_and_grad=True``: ``fun`` returns ``(value, grad)`` (jaxopt's
   convention), or ``value_and_grad=<callable>`` returning them;
2. ``grad=<callable>``: ``grad(params, *args, **kwargs)`` (scipy's ``jac``);
3. otherwise central finite differences of ``fun``: the slow path, 2n+1
   evaluations per gradient for n parameters, with the step
   ``h_i = eps**(1/3) * max(1, |x_i|)`` (error O(h^2), about 1e-11 relative in
   float64, 1e-5 in float32).

With ``has_aux=True`` ``fun`` returns ``(value, aux)`` (or, with
``value_and_grad=True``, ``((value, aux), grad)``) and ``state.aux`` keeps
the last aux.

A non-finite value or error stops ``run`` (jaxopt's ``error > tol`` is False
for NaN as well): the state then holds the NaN and ``run`` warns.
"""
import dataclasses
import inspect
import math
import warnings
from typing import Any, NamedTuple, Optional

import numpy as np

from .. import tree as T


class OptStep(NamedTuple):
    params: Any
    state: Any


class KKTSolution(NamedTuple):
    primal: Any
    dual_eq: Optional[Any] = None
    dual_ineq: Optional[Any] = None


# --------------------------------------------------------------------------
# Where the value and the gradient come from.

def finite_difference_grad(fun, params, *args, **kwargs):
    """Central finite differences of a scalar ``fun`` at ``params`` (a pytree).

    ``h_i = eps**(1/3) * max(1, |x_i|)`` in the params' dtype: the step that
    balances truncation (O(h^2)) and rounding (O(eps/h)) errors.
    """
    flat, unravel = T.ravel(params)
    dtype = flat.dtype if flat.dtype.kind == "f" else np.dtype(np.float64)
    x = flat.astype(dtype, copy=True)
    h = np.finfo(dtype).eps ** (1.0 / 3.0) * np.maximum(1.0, np.abs(x))
    g = np.empty_like(x)
    for i in range(x.size):
        xi = x[i]
        x[i] = xi + h[i]
        fp = float(fun(unravel(x.copy()), *args, **kwargs))
        x[i] = xi - h[i]
        fm = float(fun(unravel(x.copy()), *args, **kwargs))
        x[i] = xi
        g[i] = (fp - fm) / (2 * h[i])
    return unravel(g)


def make_value_and_grad(fun, value_and_grad=False, has_aux=False, grad=None):
    """(fun_with_aux, value_and_grad_with_aux) from a user's callables.

    ``fun_with_aux(p, ...) -> (value, aux)``;
    ``value_and_grad_with_aux(p, ...) -> ((value, aux), grad)``. aux is None
    without ``has_aux``.
    """
    if value_and_grad is True:
        def vg(p, *a, **kw):
            out = fun(p, *a, **kw)
            if not (isinstance(out, tuple) and len(out) == 2):
                raise TypeError("fun: expected (value, grad) with value_and_grad=True, "
                                f"got {type(out).__name__}")
            if has_aux:
                return out
            return (out[0], None), out[1]

        def f(p, *a, **kw):
            return vg(p, *a, **kw)[0]
        return f, vg

    def f(p, *a, **kw):
        return fun(p, *a, **kw) if has_aux else (fun(p, *a, **kw), None)

    if callable(value_and_grad):
        def vg(p, *a, **kw):
            out = value_and_grad(p, *a, **kw)
            return out if has_aux else ((out[0], None), out[1])
        return f, vg
    if grad is not None:
        def vg(p, *a, **kw):
            value, aux = f(p, *a, **kw)
            g = grad(p, *a, **kw)
            if has_aux:   # grad may return (grad, aux) like fun does
                g = g[0] if isinstance(g, tuple) and len(g) == 2 else g
            return (value, aux), g
        return f, vg

    def vg(p, *a, **kw):
        value, aux = f(p, *a, **kw)
        g = finite_difference_grad(lambda q, *a_, **kw_: f(q, *a_, **kw_)[0], p, *a, **kw)
        return (value, aux), g
    return f, vg


def check_value(value, name="fun"):
    """The scalar value of an objective, as a NumPy scalar."""
    v = np.asarray(value)
    if v.shape != ():
        raise ValueError(f"{name}: expected a scalar value, got an array of shape {v.shape}")
    return v[()]


def check_grad_structure(grad, params, name="grad"):
    """The gradient must have the params' structure and shapes."""
    gl, gdef = T.tree_flatten(grad)
    pl, pdef = T.tree_flatten(params)
    if gdef != pdef:
        raise ValueError(f"{name}: expected a gradient with the structure of the params "
                         f"{pdef}, got {gdef}")
    for i, (g, p) in enumerate(zip(gl, pl)):
        if np.shape(g) != np.shape(p):
            raise ValueError(f"{name}: leaf {i} has shape {np.shape(g)}, expected "
                             f"{np.shape(p)} (the shape of the params leaf)")


# --------------------------------------------------------------------------
# The solvers' common machinery.

def _check_knobs(solver):
    for name in ("maxiter",):
        v = getattr(solver, name, None)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer))
                              or v < 0):
            raise ValueError(f"{name}: expected a non-negative integer, got {v!r}")
    tol = getattr(solver, "tol", None)
    if tol is not None and not (isinstance(tol, (int, float, np.floating, np.integer))
                                and math.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol: expected a finite number >= 0, got {tol!r}")


class IterativeSolver:
    """Base of the iterative solvers: ``run``, ``l2_optimality_error``, logging.

    Subclasses are dataclasses defining ``init_state``, ``update`` and
    ``optimality_fun``; their state has ``iter_num`` and ``error``.
    """

    def __post_init__(self):
        _check_knobs(self)

    # -- the loop --------------------------------------------------------
    def _cond(self, state):
        return bool(state.error > self.tol)

    def _make_zero_step(self, init_params, state):
        if isinstance(init_params, OptStep):
            return OptStep(init_params.params, state)
        return OptStep(init_params, state)

    def run(self, init_params, *args, **kwargs):
        """Runs the solver from ``init_params``: ``init_state``, then ``update``
        while ``state.error > tol``, at most ``maxiter`` times (at least once
        unless ``maxiter == 0``). Returns ``OptStep(params, state)``."""
        state = self.init_state(init_params, *args, **kwargs)
        if self.maxiter == 0:
            return self._make_zero_step(init_params, state)
        params, state = self.update(init_params, state, *args, **kwargs)
        for _ in range(self.maxiter - 1):
            if not self._cond(state):
                break
            params, state = self.update(params, state, *args, **kwargs)
        self._warn_if_not_finite(state)
        return OptStep(params, state)

    def _warn_if_not_finite(self, state):
        err = getattr(state, "error", 0.0)
        value = getattr(state, "value", None)
        values = [err] + (T.tree_leaves(value) if value is not None else [])
        if not all(np.all(np.isfinite(np.asarray(v, dtype=float))) for v in values):
            warnings.warn(f"npopt.{type(self).__name__}: stopped at iteration "
                          f"{int(state.iter_num)} on a non-finite value or error "
                          f"(error={err}); see the returned state", RuntimeWarning,
                          stacklevel=3)

    def l2_optimality_error(self, params, *args, **kwargs):
        """The L2 norm of ``optimality_fun(params, *args, **kwargs)``."""
        return T.tree_l2_norm(self.optimality_fun(params, *args, **kwargs))

    # -- verbose ---------------------------------------------------------
    def log_info(self, state, error_name="Error", additional_info=None):
        """One line per iteration, as jaxopt prints it."""
        if not self.verbose:
            return
        extra = "".join(f" {k}: {v}" for k, v in (additional_info or {}).items())
        print(f"INFO: npopt.{type(self).__name__}: Iter: {int(state.iter_num)} "
              f"{error_name} (stopping criterion): {state.error}{extra}", flush=True)

    # -- implicit differentiation (npopt.implicit_diff) ---------------------
    def jacobian(self, init_params, *args, argnums=1, **kwargs):
        """The Jacobian of the solution of ``run(init_params, *args, **kwargs)``
        with respect to the positional arguments in ``argnums`` (as in ``run``:
        0 is ``init_params``, whose derivative is zero; an int or a tuple), by
        the implicit function theorem on ``optimality_fun``. Laid out as
        ``jax.jacobian``'s: leaves of shape ``sol_leaf.shape + arg_leaf.shape``.

        The linear solver is ``implicit_diff_solve`` (None: conjugate gradient
        when ``optimality_fun`` is a gradient, GMRES otherwise); the
        derivatives of ``optimality_fun`` come from the solver's
        ``optimality_jvp``/``optimality_vjp`` when it has them, else from
        finite differences (see ``npopt.implicit_diff``).
        """
        return self._implicit_function().jacobian(init_params, *args, argnums=argnums,
                                                  **kwargs)

    def jvp(self, init_params, *args, tangents, argnums=1, **kwargs):
        """The tangent of the solution along ``tangents`` (one per argnum: a
        single tangent for an int ``argnums``, a tuple for a tuple); see
        ``jacobian``."""
        return self._implicit_function().jvp(init_params, *args, tangents=tangents,
                                             argnums=argnums, **kwargs)

    def vjp(self, init_params, *args, cotangent, argnums=1, **kwargs):
        """The cotangents of the arguments in ``argnums`` for a ``cotangent``
        of the solution (one tree for an int ``argnums``, a tuple for a
        tuple); see ``jacobian``."""
        return self._implicit_function().vjp(init_params, *args, cotangent=cotangent,
                                             argnums=argnums, **kwargs)

    def _implicit_function(self):
        from .. import implicit_diff
        return implicit_diff.for_solver(self)

    def attribute_names(self):
        return tuple(f.name for f in dataclasses.fields(self))

    def attribute_values(self):
        return tuple(getattr(self, n) for n in self.attribute_names())


class StochasticSolver(IterativeSolver):
    """An iterative solver fed minibatches through ``data=``."""

    def run_iterator(self, init_params, iterator, *args, **kwargs):
        """Runs ``init_state`` on the first batch, then one ``update`` per
        batch (``data=batch``), at most ``maxiter`` updates (jaxopt's loop: the
        first batch initialises the state and is used again by the first
        update only if the iterator yields it again).

        Raises ValueError if the iterator is empty.
        """
        it = iter(iterator)
        try:
            data = next(it)
        except StopIteration:
            raise ValueError("iterator: expected at least one batch, got an empty iterator") \
                from None
        state = self.init_state(init_params, *args, **kwargs, data=data)
        params = init_params
        for k, data in enumerate(it):
            if k >= self.maxiter:
                break
            params, state = self.update(params, state, *args, **kwargs, data=data)
        self._warn_if_not_finite(state)
        return OptStep(params, state)


def dtype_of(params):
    """The single floating dtype of a params tree (float64 for Python scalars)."""
    leaves = T.tree_leaves(params)
    if not leaves:
        raise ValueError("init_params: expected at least one array leaf, got an empty tree")
    dts = {np.asarray(x).dtype for x in leaves}
    dts = {np.dtype(np.float64) if d.kind in "iub" else d for d in dts}
    if len(dts) != 1:
        raise ValueError(f"init_params: expected leaves of a single dtype, got {sorted(map(str, dts))}")
    dt = dts.pop()
    if dt.kind != "f":
        raise TypeError(f"init_params: expected floating-point leaves, got {dt}")
    return dt


def fun_signature_with(fun, name, position=1):
    """``fun``'s signature with a parameter ``name`` inserted (jaxopt's
    reference signatures for implicit differentiation)."""
    params = list(inspect.signature(fun).parameters.values())
    params.insert(position, inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD))
    return inspect.Signature(params)
