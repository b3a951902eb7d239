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
3. the gradient ``fun`` carries when it is one of npopt's objectives
   (``npopt.objective.least_squares``, ... : ``fun=least_squares`` is
   differentiated exactly, as ``least_squares.value_and_grad``);
4. otherwise central finite differences of ``fun``: the slow path, 2n
   evaluations per gradient for n parameters, with the step
   ``h_i = eps**(1/3) * max(1, |x_i|)`` (error O(h^2), about 1e-10
   relative); float32 params are differenced in float64 when ``fun``
   computes in float64 on float64 input (see ``npopt._finite_diff``). A
   ``FiniteDifferenceWarning`` says so once per solver instance.

Mix-ups are named: ``fun`` returning a tuple without ``value_and_grad=True``
("did you mean value_and_grad=True?"), or a single value with it.

With ``has_aux=True`` ``fun`` returns ``(value, aux)`` (or, with
``value_and_grad=True``, ``((value, aux), grad)``) and ``state.aux`` keeps
the last aux.

A non-finite value or error stops ``run`` (jaxopt's ``error > tol`` is False
for NaN as well): the state then holds the NaN and ``run`` warns.
"""
import dataclasses
import inspect
import math
import os
import sys
import warnings
from typing import Any, NamedTuple, Optional

import numpy as np

from .. import tree as T
from .._finite_diff import FiniteDifferenceWarning, FiniteDifferences  # noqa: F401 (re-exported)


class OptStep(NamedTuple):
    params: Any
    state: Any


class KKTSolution(NamedTuple):
    primal: Any
    dual_eq: Optional[Any] = None
    dual_ineq: Optional[Any] = None


# --------------------------------------------------------------------------
# Warnings that point at the user's code.

_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def warn(message, category=RuntimeWarning):
    """``warnings.warn`` with the stack level of the first frame outside npopt
    (the user's call of ``run``/``update``/...), however deep inside the
    solver the warning is raised."""
    level, frame = 1, sys._getframe(0)
    while frame is not None and frame.f_code.co_filename.startswith(_PKG_DIR):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


# --------------------------------------------------------------------------
# Where the value and the gradient come from.

def _describe_out(out):
    if isinstance(out, tuple):
        return f"a tuple of {len(out)}"
    return type(out).__name__


def _value_of(out, has_aux, name="fun"):
    """``(value, aux)`` from what ``fun`` returned without ``value_and_grad``,
    naming the usual mix-ups (a ``(value, grad)`` pair)."""
    if has_aux:
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError(f"{name}: expected (value, aux) with has_aux=True, got "
                            f"{_describe_out(out)}")
        value, aux = out
        if isinstance(value, tuple):
            raise TypeError(
                f"{name} returned ((value, aux), grad)-like nesting: its value is a tuple; did "
                f"you mean value_and_grad=True (with has_aux=True, fun returns ((value, aux), "
                f"grad))?")
        return value, aux
    if isinstance(out, tuple):
        raise TypeError(
            f"{name} returned {_describe_out(out)}, not a scalar value; did you mean "
            f"value_and_grad=True (fun returns (value, grad)) or has_aux=True (fun returns "
            f"(value, aux))?")
    return out, None


def _value_and_grad_of(out, has_aux, name="fun"):
    """``((value, aux), grad)`` from what ``fun`` returned with ``value_and_grad``."""
    if not (isinstance(out, tuple) and len(out) == 2):
        want = "((value, aux), grad)" if has_aux else "(value, grad)"
        hint = ("; it returned a single value: pass value_and_grad=False (and grad=, or "
                "nothing for finite differences), or return the gradient too"
                if not isinstance(out, tuple) else "")
        raise TypeError(f"{name}: expected {want} with value_and_grad=True, got "
                        f"{_describe_out(out)}{hint}")
    if has_aux:
        if not (isinstance(out[0], tuple) and len(out[0]) == 2):
            raise TypeError(f"{name}: expected ((value, aux), grad) with value_and_grad=True "
                            f"and has_aux=True, got ({_describe_out(out[0])}, ...)")
        return out
    if isinstance(out[0], tuple):
        raise TypeError(f"{name} returned ((value, aux), grad)-like nesting; did you mean "
                        f"has_aux=True?")
    return (out[0], None), out[1]


def finite_difference_grad(fun, params, *args, **kwargs):
    """Central finite differences of a scalar ``fun`` at ``params`` (a pytree);
    see ``npopt._finite_diff`` (no warning)."""
    return FiniteDifferences()(fun, params, *args, **kwargs)


def objective_value_and_grad(fun):
    """The ``value_and_grad`` that npopt's own objectives carry
    (``npopt.objective``; a ``CompositeLinearFunction`` with a gradient), or
    None for any other callable."""
    vg = getattr(fun, "_npopt_value_and_grad", None)
    return vg if callable(vg) else None


def make_value_and_grad(fun, value_and_grad=False, has_aux=False, grad=None, owner=None):
    """(fun_with_aux, value_and_grad_with_aux) from a user's callables.

    ``fun_with_aux(p, ...) -> (value, aux)``;
    ``value_and_grad_with_aux(p, ...) -> ((value, aux), grad)``. aux is None
    without ``has_aux``. The gradient comes from ``value_and_grad``, ``grad``,
    the gradient an ``npopt.objective`` function carries (when neither is
    given and ``has_aux`` is False), or finite differences, which warn once
    (``FiniteDifferenceWarning``) when ``owner`` (the solver's name) is given.
    """
    if value_and_grad is True:
        def vg(p, *a, **kw):
            return _value_and_grad_of(fun(p, *a, **kw), has_aux)

        def f(p, *a, **kw):
            return vg(p, *a, **kw)[0]
        return f, vg

    def f(p, *a, **kw):
        return _value_of(fun(p, *a, **kw), has_aux)

    if value_and_grad is False and grad is None and not has_aux:
        value_and_grad = objective_value_and_grad(fun) or False
    if callable(value_and_grad):
        def vg(p, *a, **kw):
            return _value_and_grad_of(value_and_grad(p, *a, **kw), has_aux, "value_and_grad")
        return f, vg
    if grad is not None:
        def vg(p, *a, **kw):
            value, aux = f(p, *a, **kw)
            g = grad(p, *a, **kw)
            if has_aux:   # grad may return (grad, aux) like fun does
                g = g[0] if isinstance(g, tuple) and len(g) == 2 else g
            return (value, aux), g
        return f, vg

    fd = FiniteDifferences(owner)

    def vg(p, *a, **kw):
        value, aux = f(p, *a, **kw)
        g = fd(lambda q, *a_, **kw_: f(q, *a_, **kw_)[0], p, *a, **kw)
        return (value, aux), g
    vg.finite_differences = fd
    return f, vg


def evaluate(vg, params, args, kwargs):
    """``(value, aux, grad)`` at ``params`` from a ``value_and_grad_with_aux``
    of ``make_value_and_grad``, checked: the gradient's structure, the scalar
    value."""
    (value, aux), grad = vg(params, *args, **kwargs)
    check_grad_structure(grad, params)
    return check_value(value), aux, grad


def check_value(value, name="fun"):
    """The scalar value of an objective, as a NumPy scalar."""
    if isinstance(value, tuple):
        _value_of(value, False, name)           # names the (value, grad) mix-up
    v = np.asarray(value)
    if v.shape != ():
        raise ValueError(f"{name}: expected a scalar value, got an array of shape {v.shape}")
    if v.dtype.kind not in "fiub":
        raise TypeError(f"{name}: expected a real scalar value, got {type(value).__name__}"
                        + (f" of dtype {v.dtype}" if isinstance(value, np.ndarray) else ""))
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


def _rebuild_solver(cls, fields):
    return cls(**fields)


class IterativeSolver:
    """Base of the iterative solvers: ``run``, ``l2_optimality_error``, logging.

    Subclasses are dataclasses defining ``init_state``, ``update`` and
    ``optimality_fun``; their state has ``iter_num`` and ``error``.
    """

    def __post_init__(self):
        _check_knobs(self)

    def __reduce__(self):
        # pickled as its fields (what __post_init__ derives is rebuilt), so
        # that a solver travels to an executor's workers
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        return _rebuild_solver, (type(self), fields)

    def run_batch(self, init_params, *args, in_axes=0, vectorized=False, executor=None,
                  chunks=None, residual_size=None, **kwargs):
        """Many independent runs at once, each lane stopping on its own
        criterion: ``BatchResult(params, state, status)``, lanes first (see
        ``npopt.vmap``)."""
        from ..batch import run_batch
        return run_batch(self, init_params, *args, in_axes=in_axes, vectorized=vectorized,
                         executor=executor, chunks=chunks, residual_size=residual_size,
                         **kwargs)

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
        unless ``maxiter == 0``). Returns ``OptStep(params, state)``.

        Solvers with a compiled state machine (``npopt.solvers.engine``) run
        there instead, where their configuration allows: the same numbers."""
        from . import engine
        out = engine.try_run(self, init_params, args, kwargs)
        if out is not None:
            return out
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
    def log_info(self, state, error_name="Error", additional_info={}):  # noqa: B006 (read only)
        """One line per iteration, as jaxopt prints it (``additional_info``:
        more ``name: value`` pairs; jaxopt's ``{}`` default, never modified)."""
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


def dtype_of(params, name="init_params", allow_complex=False):
    """The single floating (or, ``allow_complex``, complex) dtype of a params tree.

    Integer and boolean leaves are refused with a TypeError naming ``name``
    (as jaxopt's gradients refuse them): ``np.array([1, 2])`` is almost always
    meant as ``np.array([1.0, 2.0])``, and an integer buffer cannot hold the
    iterates. An empty tree is refused too.
    """
    leaves = T.tree_leaves(params)
    if not leaves:
        raise ValueError(f"{name}: expected at least one array leaf, got an empty tree")
    dts = []
    for i, x in enumerate(leaves):
        d = np.asarray(x).dtype
        if d.kind in "iub":
            raise TypeError(
                f"{name}: expected floating-point leaves, got leaf {i} of dtype {d} (write "
                f"1.0, not 1, or pass np.asarray(params, dtype=float))")
        dts.append(d)
    dts = set(dts)
    if len(dts) != 1:
        raise ValueError(f"{name}: expected leaves of a single dtype, got {sorted(map(str, dts))}")
    dt = dts.pop()
    if dt.kind not in ("fc" if allow_complex else "f"):
        raise TypeError(f"{name}: expected floating-point leaves, got {dt}")
    return dt


def fun_signature_with(fun, name, position=1):
    """``fun``'s signature with a parameter ``name`` inserted (jaxopt's
    reference signatures for implicit differentiation)."""
    params = list(inspect.signature(fun).parameters.values())
    params.insert(position, inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD))
    return inspect.Signature(params)
