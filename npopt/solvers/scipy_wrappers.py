"""jaxopt's wrappers around ``scipy.optimize``, for pytrees of NumPy arrays.

* ``ScipyMinimize`` / ``ScipyBoundedMinimize``: ``scipy.optimize.minimize``;
* ``ScipyRootFinding``: ``scipy.optimize.root``;
* ``ScipyLeastSquares`` / ``ScipyBoundedLeastSquares``:
  ``scipy.optimize.least_squares``.

Each ``run`` ravels the params pytree into one flat vector (leaves in
``npopt.tree`` order, which is jax's: sorted dict keys; cast to ``dtype``,
float64 by default), hands it to scipy, unravels ``res.x`` back into the
params' structure and leaf dtypes, and returns ``OptStep(params, info)``
where ``info`` holds scipy's result fields under jaxopt 0.8.5's names
(``ScipyMinimizeInfo``, ``ScipyRootInfo``, ``ScipyLeastSquaresInfo``). Bounds
are a pair ``(lower, upper)`` of pytrees with the params' structure (each leaf
a scalar or an array broadcastable to the params leaf; use ``-np.inf`` /
``np.inf`` for a free side).

Derivatives (there is no autodiff):

* ``ScipyMinimize``: ``value_and_grad=True`` (``fun`` returns
  ``(value, grad)``), ``value_and_grad=<callable>``, or ``grad=<callable>``;
  otherwise npopt's central differences
  (``npopt.solvers.base.finite_difference_grad``, 2n evaluations per
  gradient, about 1e-11 relative error in float64). Methods using the
  gradient get ``jac=True`` (one call returns value and gradient), as in
  jaxopt, so ``num_fun_eval``/``num_jac_eval`` count what they count there.
* ``ScipyRootFinding`` and ``ScipyLeastSquares``: ``jac=<callable>``
  (``jac(params, *args, **kwargs)``: a 2-D array ``(m, n)`` in the raveled
  order, or jax's nested layout, one block of shape
  ``out_leaf.shape + in_leaf.shape`` per output leaf and input leaf; for
  least squares also a sparse matrix or a ``LinearOperator``); otherwise
  central differences of the raveled residual with npopt's step
  ``h_i = eps**(1/3) * max(1, |x_i|)`` (``npopt._finite_diff``). scipy's own finite differences are
  not used: with a callable Jacobian scipy takes jaxopt's code path (MINPACK
  ``hybrj``/``lmder``, ``least_squares(jac=callable)``) and counts
  evaluations the same way. The differences may step ``h`` outside the
  bounds.

Methods that do not use derivatives (Nelder-Mead, Powell, COBYLA, COBYQA;
broyden1, anderson, krylov, df-sane, ...) get a value-only function: no
derivative is computed (jaxopt computes it and scipy warns that it is
unused), with the same iterates.

Deviations from jaxopt 0.8.5 (mostly where jaxopt fails or is silently
wrong):

* ``method=None`` means scipy's default ('hybr' for root finding, 'trf' for
  least squares); jaxopt passes ``None`` on and scipy rejects it.
* ``ScipyRootFinding(method='df-sane')`` works (jaxopt's crashes).
* ``ScipyLeastSquares(has_aux=True)`` works (jaxopt's recurses forever).
* ``ScipyBoundedMinimize`` rejects methods that ignore bounds (scipy only
  warns); methods needing a Hessian (dogleg, trust-ncg, trust-exact,
  trust-krylov) are rejected up front (scipy fails at run time).
* ``options`` is never modified (jaxopt writes ``maxiter`` and the least
  squares defaults into the caller's dict).
* integer params leaves are rejected (jaxopt rounds scipy's answer back to
  integers); an integer ``x_scale`` works.
* ``hess_inv`` is scipy's own ``LbfgsInvHessProduct`` (``.sk``, ``.yk``,
  ``.todense()``) or array; jaxopt re-wraps it as a pytree.

``jit``, ``implicit_diff_solve`` and ``use_jacrev`` are accepted for
compatibility and have no effect (no JAX, no implicit differentiation here).

References:
  Virtanen et al., "SciPy 1.0: fundamental algorithms for scientific
  computing in Python", Nature Methods, 2020.
"""
import inspect
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Dict, NamedTuple, Optional, Union

import numpy as np
import scipy.optimize
import scipy.sparse
from scipy.sparse.linalg import LinearOperator

from .. import _dense, _math
from .. import _finite_diff as FD
from .. import tree as T
from .._checks import check_float_dtype
from . import base

NUM_EVAL_DTYPE = np.int32


# --------------------------------------------------------------------------
# Results, under jaxopt's names.

class ScipyMinimizeInfo(NamedTuple):
    """``scipy.optimize.minimize``'s result: ``fun``, ``success``, ``status``,
    ``nit``, ``hess_inv`` (None when the method has none), ``nfev``, ``njev``,
    ``nhev`` (0 when the method does not report them)."""
    fun_val: Any
    success: bool
    status: int
    iter_num: int
    hess_inv: Optional[Any]
    num_fun_eval: Any = 0
    num_jac_eval: Any = 0
    num_hess_eval: Any = 0


class ScipyRootInfo(NamedTuple):
    """``scipy.optimize.root``'s result: ``fun`` (the raveled residual),
    ``success``, ``status`` (None for 'df-sane', which does not report it),
    ``nit`` (None for 'hybr' and 'lm', which do not report it) and ``nfev``."""
    fun_val: Any
    success: bool
    status: int
    iter_num: Any
    num_fun_eval: Any = 0


class ScipyLeastSquaresInfo(NamedTuple):
    """``scipy.optimize.least_squares``'s result: ``cost``, ``fun`` (the
    raveled residuals), ``success``, ``status``, ``nfev``, ``njev`` and
    ``optimality`` (the first-order optimality measure) as ``error``."""
    cost_val: Any
    fun_val: Any
    success: bool
    status: int
    num_fun_eval: Any
    num_jac_eval: Optional[Any]
    error: Any


# --------------------------------------------------------------------------
# Method tables.

# scipy.optimize.minimize: name -> (uses the gradient, accepts bounds)
_MINIMIZE_METHODS = {
    "nelder-mead": (False, True), "powell": (False, True), "cg": (True, False),
    "bfgs": (True, False), "newton-cg": (True, False), "l-bfgs-b": (True, True),
    "tnc": (True, True), "cobyla": (False, True), "cobyqa": (False, True),
    "slsqp": (True, True), "trust-constr": (True, True),
}
_NEEDS_HESSIAN = ("dogleg", "trust-ncg", "trust-exact", "trust-krylov")

# scipy.optimize.root: name -> uses the Jacobian
_ROOT_METHODS = {
    "hybr": True, "lm": True, "broyden1": False, "broyden2": False,
    "anderson": False, "linearmixing": False, "diagbroyden": False,
    "excitingmixing": False, "krylov": False, "df-sane": False,
}

_LS_METHODS = ("trf", "dogbox", "lm")

# rho(z) and rho'(z) of jaxopt's least squares losses, which absorb the
# square of the residual: cost = 0.5 * f_scale**2 * mean(rho(r / f_scale)).
# (jaxopt's 'huber' tests z <= 1, not |z| <= 1, so z < -1 counts as z**2.)
LS_RHO_FUNS = {
    "linear": (lambda z: z ** 2, lambda z: 2.0 * z),
    "soft_l1": (lambda z: 2.0 * ((1 + z ** 2) ** 0.5 - 1), lambda z: 2.0 * z / (1 + z ** 2) ** 0.5),
    "huber": (lambda z: np.where(z <= 1, z ** 2, 2.0 * z - 1),
              lambda z: np.where(z <= 1, 2.0 * z, 2.0)),
    "cauchy": (lambda z: _math.log1p(z * z), lambda z: 2.0 * z / (1 + z * z)),
    "arctan": (lambda z: _math.arctan(z * z), lambda z: 2.0 * z / (1 + (z * z) * (z * z))),
}

LS_DEFAULT_OPTIONS = {
    "ftol": 1e-8, "xtol": 1e-8, "gtol": 1e-8, "x_scale": 1.0, "f_scale": 1.0,
    "tr_solver": None, "tr_options": {}, "max_nfev": None,
}
# least_squares keywords the wrapper sets itself (not allowed in options)
_LS_OWN = ("fun", "x0", "jac", "bounds", "method", "loss", "args", "kwargs")


def _check_method(method, table, default=None, allow_callable=False, hint=""):
    if method is None:
        return default
    if allow_callable and callable(method):
        return method
    if isinstance(method, str) and method.lower() in table:
        return method.lower()
    names = ", ".join(repr(m) for m in table)
    extra = " or a callable (a custom minimizer)" if allow_callable else ""
    raise ValueError(f"method: expected None, one of {names}{extra}{hint}, got {method!r}")


def _check_callable(name, f, what):
    if not callable(f):
        raise TypeError(f"{name}: expected a callable {what}, got {f!r}")


def _check_options(options):
    if options is not None and not isinstance(options, dict):
        raise TypeError(f"options: expected None or a dict, got {type(options).__name__}")


# --------------------------------------------------------------------------
# Pytrees <-> scipy's flat vectors.

def _ravel_params(params, dtype):
    """(x0 as ``dtype``, unravel) for a tree of floating-point leaves."""
    leaves = T.tree_leaves(params)
    if not leaves:
        raise ValueError("init_params: expected at least one array leaf, got an empty tree")
    for i, leaf in enumerate(leaves):
        kind = np.asarray(leaf).dtype.kind
        if kind != "f":
            raise TypeError(f"init_params: expected floating-point leaves, got leaf {i} of dtype "
                            f"{np.asarray(leaf).dtype} (write 1.0, not 1)")
    flat, unravel = T.ravel(params)
    if flat.size == 0:
        raise ValueError("init_params: expected at least one number, got only empty arrays "
                         "(nothing for scipy to optimise)")
    if not np.all(np.isfinite(flat)):
        what = "NaN" if np.isnan(flat).any() else "an infinite value"
        raise ValueError(f"init_params: expected finite numbers, got {what} (scipy.optimize "
                         f"needs a finite starting point)")
    return (flat if dtype is None else flat.astype(dtype)), unravel


def _check_like(tree, like, name, what):
    """``tree`` must have the structure and leaf shapes of the params ``like``."""
    leaves, tdef = T.tree_flatten(tree)
    p_leaves, pdef = T.tree_flatten(like)
    if tdef != pdef:
        raise ValueError(f"{name}: expected {what} with the structure of the params {pdef}, "
                         f"got {tdef}")
    for i, (a, b) in enumerate(zip(leaves, p_leaves)):
        if np.shape(a) != np.shape(b):
            raise ValueError(f"{name}: leaf {i} has shape {np.shape(a)}, expected "
                             f"{np.shape(b)} (the shape of the params leaf)")


def _to_flat(tree, dtype, name, like=None, what="a gradient"):
    """The leaves of ``tree`` raveled and concatenated (jaxopt's jnp_to_onp);
    ``like``: the params it must match (structure and shapes)."""
    if like is not None:
        _check_like(tree, like, name, what)
    leaves = T.tree_leaves(tree)
    if not leaves:
        raise ValueError(f"{name}: expected at least one array leaf, got an empty tree")
    return np.concatenate([np.asarray(x, dtype).reshape(-1) for x in leaves])


def _flat_bounds(bounds, params, dtype, strict=False):
    """``(lower, upper)`` pytrees like ``params`` -> two flat arrays."""
    if not (isinstance(bounds, (tuple, list)) and len(bounds) == 2):
        raise ValueError("bounds: expected a pair (lower, upper) of pytrees with the structure "
                         f"of init_params, got {type(bounds).__name__}")
    p_leaves, p_def = T.tree_flatten(params)
    dtype = np.float64 if dtype is None else dtype
    flats = []
    for side, b in zip(("lower", "upper"), bounds):
        leaves, b_def = T.tree_flatten(b)
        if len(leaves) == 1 and len(p_leaves) == 1 and b_def != p_def:
            b_def = p_def          # a bare scalar/array for single-leaf params
        if b_def != p_def:
            raise ValueError(f"bounds: expected {side} with the structure of init_params "
                             f"{p_def}, got {b_def}")
        parts = []
        for i, (bl, pl) in enumerate(zip(leaves, p_leaves)):
            a = np.asarray(bl)
            if a.dtype.kind not in "fiu":
                raise TypeError(f"bounds: {side} leaf {i} has dtype {a.dtype}, expected real "
                                "numbers")
            try:
                a = np.broadcast_to(a, np.shape(pl))
            except ValueError:
                raise ValueError(f"bounds: {side} leaf {i} has shape {a.shape}, which does not "
                                 f"broadcast to the params leaf's shape {np.shape(pl)}") from None
            parts.append(a.astype(dtype).reshape(-1))
        flats.append(np.concatenate(parts))
    lb, ub = flats
    if np.isnan(lb).any() or np.isnan(ub).any():
        raise ValueError("bounds: expected no NaN, got NaN in "
                         + ("lower" if np.isnan(lb).any() else "upper"))
    bad = lb >= ub if strict else lb > ub
    if bad.any():
        k = int(np.argmax(bad))
        leaf = int(np.searchsorted(np.cumsum([np.size(x) for x in p_leaves]), k, side="right"))
        need = "lower < upper (least_squares needs a box with interior)" if strict \
            else "lower <= upper"
        raise ValueError(f"bounds: expected {need} everywhere, got {int(bad.sum())} violation(s), "
                         f"the first in leaf {leaf}: lower={lb[k]!r}, upper={ub[k]!r}")
    return lb, ub


def _box_optimality(x, g, lb, ub):
    """jaxopt's box fixed-point residual ``clip(x - g, lb, ub) - x`` (flat)."""
    step = x - g
    if lb is not None:
        step = np.clip(step, lb, ub)
    return step - x


def _fd_jacobian(fun_flat, x):
    """``npopt._finite_diff.jacobian`` of a vector function of the flat ``x``
    (in ``x``'s precision, at least float32)."""
    return FD.jacobian(fun_flat, x.astype(np.result_type(x.dtype, np.float32)))


def _jac_to_flat(jac, out_sizes, in_sizes, dtype, sparse_ok=False):
    """A user Jacobian as scipy's (m, n) array (jaxopt's make_jac_jnp_to_onp)."""
    if sparse_ok and (scipy.sparse.issparse(jac) or isinstance(jac, LinearOperator)):
        return jac
    m, n = sum(out_sizes), sum(in_sizes)
    leaves = T.tree_leaves(jac)
    if len(leaves) == 1:
        a = np.asarray(leaves[0], dtype)
        if a.size != m * n:
            raise ValueError(f"jac: expected a Jacobian with {m} x {n} entries (outputs x "
                             f"params), got an array of shape {a.shape}")
        return a.reshape(m, n)
    if len(leaves) != len(out_sizes) * len(in_sizes):
        raise ValueError(f"jac: expected an (m, n) array or one block per (output leaf, params "
                         f"leaf) pair ({len(out_sizes)} x {len(in_sizes)}), got {len(leaves)} "
                         "leaves")
    blocks = []
    for i, mo in enumerate(out_sizes):
        row = []
        for j, nj in enumerate(in_sizes):
            a = np.asarray(leaves[i * len(in_sizes) + j], dtype)
            if a.size != mo * nj:
                raise ValueError(f"jac: block ({i}, {j}) has shape {a.shape}, expected "
                                 f"{mo} x {nj} entries")
            row.append(a.reshape(mo, nj))
        blocks.append(row)
    return np.block(blocks)


def _count(res, attr):
    return np.asarray(getattr(res, attr, 0), NUM_EVAL_DTYPE)


# --------------------------------------------------------------------------
# The wrappers.

@dataclass(eq=False)
class _ScipyWrapper:
    """Fields shared by every wrapper (jaxopt's ScipyWrapper).

    Attributes:
      method: the scipy ``method`` (None: scipy's default).
      dtype: the dtype of the flat vectors scipy sees (float64 by default;
        MINPACK and L-BFGS-B need float64). None keeps the params' dtype.
      jit: accepted for compatibility; no effect.
      implicit_diff_solve: the linear solver of ``jacobian``/``jvp``/``vjp``
        (the derivatives of the solution, ``npopt.implicit_diff``).
      has_aux: ``fun`` returns ``(value, aux)``; aux is dropped.
    """
    # derivatives of the solution by the implicit function theorem, as on
    # every iterative solver
    jacobian = base.IterativeSolver.jacobian
    jvp = base.IterativeSolver.jvp
    vjp = base.IterativeSolver.vjp
    _implicit_function = base.IterativeSolver._implicit_function

    method: Optional[Any] = None
    dtype: Optional[Any] = np.float64
    jit: bool = True
    implicit_diff_solve: Optional[Callable] = None
    has_aux: bool = False

    def __post_init__(self):
        check_float_dtype("dtype", self.dtype)
        base._check_knobs(self)

    def l2_optimality_error(self, params, *args, **kwargs):
        """The L2 norm of ``optimality_fun(params, *args, **kwargs)``."""
        return T.tree_l2_norm(self.optimality_fun(params, *args, **kwargs))

    def attribute_names(self):
        return base.IterativeSolver.attribute_names(self)

    def attribute_values(self):
        return base.IterativeSolver.attribute_values(self)


@dataclass(eq=False)
class ScipyMinimize(_ScipyWrapper):
    """``scipy.optimize.minimize`` of ``fun(params, *args, **kwargs)`` over a
    params pytree (unconstrained).

    ``fun`` is not the first field (``method`` is): pass it by keyword.

    Attributes:
      method, dtype, jit, implicit_diff_solve, has_aux: shared by every
        wrapper (see ``_ScipyWrapper``); ``method`` None is BFGS (L-BFGS-B
        with bounds), scipy's choice.
      fun: the objective (see the module docstring for its gradient).
      callback: ``callback(params)`` after each iteration (params unraveled).
      tol: scipy's ``tol``.
      options: scipy's ``options`` for the method, without ``maxiter``.
      maxiter: passed as ``options['maxiter']`` (TNC counts ``maxfun``
        instead: scipy warns that ``maxiter`` is unknown, as under jaxopt).
      value_and_grad: True if ``fun`` returns ``(value, grad)``, or a callable
        returning them.
      grad: ``grad(params, *args, **kwargs)`` (npopt's addition).
    Returns from ``run``: ``OptStep(params, ScipyMinimizeInfo)``.
    """
    fun: Callable = None
    callback: Callable = None
    tol: Optional[float] = None
    options: Optional[Dict[str, Any]] = None
    maxiter: int = 500
    value_and_grad: Union[bool, Callable] = False
    grad: Optional[Callable] = None

    _bounded = False

    def __post_init__(self):
        super().__post_init__()
        _check_callable("fun", self.fun, "fun(params, *args, **kwargs)")
        if self.callback is not None:
            _check_callable("callback", self.callback, "callback(params)")
        if isinstance(self.method, str) and self.method.lower() in _NEEDS_HESSIAN:
            raise ValueError(f"method: {self.method!r} needs the Hessian, which the scipy "
                             "wrappers do not pass (as in jaxopt); use e.g. 'BFGS' or "
                             "'trust-constr'")
        methods = {k: v for k, v in _MINIMIZE_METHODS.items() if v[1] or not self._bounded}
        hint = " (the methods that handle bounds)" if self._bounded else ""
        self._method = _check_method(self.method, methods, allow_callable=True, hint=hint)
        _check_options(self.options)
        if self.options is not None and "maxiter" in self.options:
            raise ValueError("options: cannot pass maxiter through the options dictionary, use "
                             "the maxiter keyword argument instead")
        self._fun, self._vg = base.make_value_and_grad(self.fun, self.value_and_grad,
                                                       self.has_aux, self.grad,
                                                       owner=type(self).__name__)

    def _value_and_grad(self, params, args, kwargs):
        (value, _), grad = self._vg(params, *args, **kwargs)
        return base.check_value(value), grad

    def optimality_fun(self, sol, *args, **kwargs):
        """The gradient of ``fun`` at ``sol``: zero at a stationary point."""
        return self._vg(sol, *args, **kwargs)[1]

    def _run(self, init_params, bounds, args, kwargs):
        dtype = self.dtype
        x0, unravel = _ravel_params(init_params, dtype)
        scipy_bounds = None
        if bounds is not None:
            scipy_bounds = scipy.optimize.Bounds(*_flat_bounds(bounds, init_params, dtype))
        meth = self._method
        uses_grad = callable(meth) or meth is None or _MINIMIZE_METHODS[meth][0]

        if uses_grad:
            def scipy_fun(x):
                params = unravel(x)
                value, grad = self._value_and_grad(params, args, kwargs)
                return np.asarray(value, dtype), _to_flat(grad, dtype, "grad", like=params)
        else:
            def scipy_fun(x):
                return np.asarray(base.check_value(self._fun(unravel(x), *args, **kwargs)[0]),
                                  dtype)

        scipy_callback = None
        if self.callback is not None:
            def scipy_callback(x_onp):
                return self.callback(unravel(x_onp))

        options = dict(self.options or {}, maxiter=self.maxiter)
        res = scipy.optimize.minimize(scipy_fun, x0, jac=True if uses_grad else None,
                                      tol=self.tol, bounds=scipy_bounds, method=meth,
                                      callback=scipy_callback, options=options)
        params = unravel(np.asarray(res.x))
        hess_inv = getattr(res, "hess_inv", None)
        if not isinstance(hess_inv, (np.ndarray, scipy.optimize.LbfgsInvHessProduct)):
            hess_inv = None
        info = ScipyMinimizeInfo(fun_val=np.asarray(res.fun), success=res.success,
                                 status=res.status, iter_num=getattr(res, "nit", None),
                                 hess_inv=hess_inv, num_fun_eval=_count(res, "nfev"),
                                 num_jac_eval=_count(res, "njev"),
                                 num_hess_eval=_count(res, "nhev"))
        return base.OptStep(params, info)

    def run(self, init_params, *args, **kwargs):
        """Minimises ``fun`` from ``init_params``; ``args``/``kwargs`` go to
        ``fun``. Returns ``OptStep(params, ScipyMinimizeInfo)``."""
        return self._run(init_params, None, args, kwargs)


@dataclass(eq=False)
class ScipyBoundedMinimize(ScipyMinimize):
    """``scipy.optimize.minimize`` subject to ``lower <= params <= upper``.

    ``run(init_params, bounds, *args, **kwargs)`` with ``bounds = (lower,
    upper)``, pytrees with the params' structure (or None: unconstrained).
    ``method`` must handle bounds: None (L-BFGS-B), 'L-BFGS-B', 'TNC',
    'SLSQP', 'trust-constr', 'Nelder-Mead', 'Powell', 'COBYLA', 'COBYQA'.
    Same attributes as ScipyMinimize.
    """

    _bounded = True

    def optimality_fun(self, sol, bounds, *args, **kwargs):
        """``clip(sol - grad fun(sol), lower, upper) - sol``: zero at a
        solution (the projected-gradient fixed point)."""
        x, unravel = T.ravel(sol)
        g = _to_flat(self._vg(sol, *args, **kwargs)[1], x.dtype, "grad", like=sol)
        lb, ub = (None, None) if bounds is None else _flat_bounds(bounds, sol, x.dtype)
        return unravel(_box_optimality(x, g, lb, ub))

    def run(self, init_params, bounds, *args, **kwargs):
        """Minimises ``fun`` from ``init_params`` within ``bounds``. Returns
        ``OptStep(params, ScipyMinimizeInfo)``."""
        return self._run(init_params, bounds, args, kwargs)


@dataclass(eq=False)
class ScipyRootFinding(_ScipyWrapper):
    """``scipy.optimize.root``: a root of ``optimality_fun(params, *args,
    **kwargs)``, which returns a pytree with the params' structure.

    Attributes:
      method, dtype, jit, implicit_diff_solve, has_aux: shared by every
        wrapper (see ``_ScipyWrapper``); ``method`` None is 'hybr'.
      optimality_fun: the function whose root is sought (with ``has_aux``,
        it returns ``(value, aux)``; the solver's ``optimality_fun`` then
        drops aux, as jaxopt's).
      tol: scipy's ``tol``.
      options: scipy's ``options`` for the method.
      use_jacrev: accepted for compatibility; no effect.
      jac: ``jac(params, *args, **kwargs)``, the Jacobian (npopt's addition;
        default: central differences). Used by 'hybr' and 'lm' only.
    Returns from ``run``: ``OptStep(params, ScipyRootInfo)``.
    """
    optimality_fun: Callable = None
    tol: Optional[float] = None
    options: Optional[Dict[str, Any]] = None
    use_jacrev: bool = True
    jac: Optional[Callable] = None

    def __post_init__(self):
        super().__post_init__()
        _check_callable("optimality_fun", self.optimality_fun,
                        "optimality_fun(params, *args, **kwargs)")
        if self.jac is not None:
            _check_callable("jac", self.jac, "jac(params, *args, **kwargs)")
        self._method = _check_method(self.method, _ROOT_METHODS, default="hybr")
        _check_options(self.options)
        if self.has_aux:      # as jaxopt: the solver's optimality_fun drops aux
            user_fun = getattr(self.optimality_fun, "_drops_aux_of", self.optimality_fun)

            def optimality_fun(x, *args, **kwargs):
                return user_fun(x, *args, **kwargs)[0]
            optimality_fun._drops_aux_of = user_fun     # so dataclasses.replace works
            self.optimality_fun = optimality_fun

    def run(self, init_params, *args, **kwargs):
        """Finds a root from ``init_params``; ``args``/``kwargs`` go to
        ``optimality_fun``. Returns ``OptStep(params, ScipyRootInfo)``."""
        dtype = self.dtype
        x0, unravel = _ravel_params(init_params, dtype)
        sizes = [np.size(x) for x in T.tree_leaves(init_params)]

        def residual(x):
            params = unravel(x)
            return _to_flat(self.optimality_fun(params, *args, **kwargs), dtype,
                            "optimality_fun", like=params, what="an output")

        uses_jac = _ROOT_METHODS[self._method]
        if uses_jac:
            def scipy_fun(x, _unused):
                f = residual(x)
                if self.jac is None:
                    return f, _fd_jacobian(residual, x)
                return f, _jac_to_flat(self.jac(unravel(x), *args, **kwargs), sizes, sizes, dtype)
        else:
            def scipy_fun(x, _unused):
                return residual(x)

        # args=(None,) as jaxopt (scipy's checks want non-empty args)
        res = scipy.optimize.root(scipy_fun, x0, args=(None,), jac=True if uses_jac else None,
                                  tol=self.tol, method=self._method, options=self.options)
        params = unravel(np.asarray(res.x))
        nit = getattr(res, "nit", None)
        nfev = getattr(res, "nfev", None)
        info = ScipyRootInfo(fun_val=np.asarray(res.fun), success=res.success,
                             status=getattr(res, "status", None),
                             iter_num=None if nit is None else np.asarray(nit),
                             num_fun_eval=None if nfev is None
                             else np.asarray(nfev, NUM_EVAL_DTYPE))
        return base.OptStep(params, info)


@dataclass(eq=False)
class ScipyLeastSquares(_ScipyWrapper):
    r"""``scipy.optimize.least_squares``: minimises
    ``0.5 * sum(loss(fun(params, *args, **kwargs) ** 2))``, unconstrained.

    Attributes:
      method, dtype, jit, implicit_diff_solve, has_aux: shared by every
        wrapper (see ``_ScipyWrapper``); ``method`` None is 'trf'.
      fun: the residuals ``fun(params, *args, **kwargs)``, a pytree.
      loss: scipy's ``loss``: 'linear', 'soft_l1', 'huber', 'cauchy' or
        'arctan' (no callables, as jaxopt).
      options: further ``least_squares`` keywords (``ftol``, ``xtol``,
        ``gtol``, ``x_scale`` (a float, 'jac' or a pytree like the params),
        ``f_scale``, ``tr_solver``, ``tr_options``, ``max_nfev``, ...);
        jaxopt's defaults fill the rest (tolerances 1e-8, ``x_scale=1.0``).
      use_jacrev: accepted for compatibility; no effect.
      jac: ``jac(params, *args, **kwargs)``, the Jacobian of the residuals
        (npopt's addition; default: central differences).
    Returns from ``run``: ``OptStep(params, ScipyLeastSquaresInfo)``.

    ``optimality_fun`` is jaxopt's: the gradient of
    ``0.5 * f_scale**2 * mean(rho(r / f_scale))`` (a *mean*, with
    ``rho(z) = loss(z**2)``), i.e. ``J^T (0.5 f_scale / m) rho'(r / f_scale)``.
    """
    fun: Callable = None
    loss: str = "linear"
    options: Optional[Dict[str, Any]] = None
    use_jacrev: bool = True
    jac: Optional[Callable] = None

    def __post_init__(self):
        super().__post_init__()
        _check_callable("fun", self.fun, "fun(params, *args, **kwargs) returning residuals")
        if self.jac is not None:
            _check_callable("jac", self.jac, "jac(params, *args, **kwargs)")
        self._method = _check_method(self.method, _LS_METHODS, default="trf")
        if self.loss not in LS_RHO_FUNS:
            raise ValueError(f"loss: expected one of {', '.join(map(repr, LS_RHO_FUNS))}, "
                             f"got {self.loss!r}")
        _check_options(self.options)
        allowed = set(inspect.signature(scipy.optimize.least_squares).parameters) - set(_LS_OWN)
        unknown = sorted(set(self.options or {}) - allowed)
        if unknown:
            raise ValueError(f"options: unknown least_squares option(s) {unknown}; expected some "
                             f"of {sorted(allowed)}")
        f_scale = dict(LS_DEFAULT_OPTIONS, **(self.options or {}))["f_scale"]
        if not (isinstance(f_scale, (int, float, np.number)) and np.isfinite(f_scale)
                and f_scale > 0):
            raise ValueError(f"options: expected f_scale a finite number > 0, got {f_scale!r}")

    def _residuals(self, params, args, kwargs):
        out = self.fun(params, *args, **kwargs)
        return out[0] if self.has_aux else out

    def _options(self, params):
        """jaxopt's defaults under the user's options; a pytree x_scale raveled."""
        options = dict(LS_DEFAULT_OPTIONS, **(self.options or {}))
        x_scale = options["x_scale"]
        if isinstance(x_scale, str) or x_scale is None:
            pass
        elif isinstance(x_scale, (numbers.Real, np.number)) or (
                isinstance(x_scale, np.ndarray) and x_scale.ndim == 0):
            options["x_scale"] = float(x_scale)
        else:
            options["x_scale"] = _to_flat(x_scale, self.dtype, "options['x_scale']", like=params,
                                          what="a scale")
        return options

    def _jacobian(self, unravel, out_sizes, in_sizes, args, kwargs):
        dtype = self.dtype

        def scipy_jac(x):
            if self.jac is None:
                return _fd_jacobian(lambda z: _to_flat(self._residuals(unravel(z), args, kwargs),
                                                       dtype, "fun"), x)
            return _jac_to_flat(self.jac(unravel(x), *args, **kwargs), out_sizes, in_sizes,
                                dtype, sparse_ok=True)
        return scipy_jac

    def _grad_cost(self, sol, args, kwargs):
        """(flat sol, flat gradient of jaxopt's cost, unravel)."""
        x, unravel = T.ravel(sol)
        r0 = self._residuals(sol, args, kwargs)
        out_sizes = [np.size(v) for v in T.tree_leaves(r0)]
        in_sizes = [np.size(v) for v in T.tree_leaves(sol)]
        r = _to_flat(r0, self.dtype, "fun")
        J = self._jacobian(unravel, out_sizes, in_sizes, args, kwargs)(x.astype(r.dtype))
        J = J.toarray() if scipy.sparse.issparse(J) else J
        f_scale = dict(LS_DEFAULT_OPTIONS, **(self.options or {}))["f_scale"]
        drho = LS_RHO_FUNS[self.loss][1]
        w = (0.5 * f_scale ** 2 / r.size) * drho(r / f_scale) / f_scale
        if isinstance(J, LinearOperator):
            g = J.rmatvec(w)
        else:
            g = _dense.dot(np.asarray(J).T, w)
        return x, np.asarray(g).astype(x.dtype), unravel

    def optimality_fun(self, sol, *args, **kwargs):
        """The gradient of jaxopt's cost at ``sol`` (see the class docstring)."""
        _, g, unravel = self._grad_cost(sol, args, kwargs)
        return unravel(g)

    def _run(self, init_params, bounds, args, kwargs):
        dtype = self.dtype
        x0, unravel = _ravel_params(init_params, dtype)
        init_output = self._residuals(init_params, args, kwargs)   # as jaxopt: output layout
        out_sizes = [np.size(v) for v in T.tree_leaves(init_output)]
        in_sizes = [np.size(v) for v in T.tree_leaves(init_params)]
        if bounds is not None:
            scipy_bounds = _flat_bounds(bounds, init_params, dtype, strict=True)
            if self._method == "lm" and np.isfinite(np.concatenate(scipy_bounds)).any():
                raise ValueError("method: 'lm' does not handle bounds; use 'trf' or 'dogbox'")
        else:
            scipy_bounds = (-np.inf, np.inf)

        def scipy_fun(x):
            return _to_flat(self._residuals(unravel(x), args, kwargs), dtype, "fun")

        res = scipy.optimize.least_squares(
            scipy_fun, x0, jac=self._jacobian(unravel, out_sizes, in_sizes, args, kwargs),
            bounds=scipy_bounds, method=self._method, loss=self.loss,
            **self._options(init_params))
        params = unravel(np.asarray(res.x))
        info = ScipyLeastSquaresInfo(
            cost_val=np.asarray(res.cost), fun_val=np.asarray(res.fun), success=res.success,
            status=res.status, num_fun_eval=np.asarray(res.nfev, NUM_EVAL_DTYPE),
            num_jac_eval=None if res.njev is None else np.asarray(res.njev, NUM_EVAL_DTYPE),
            error=np.asarray(res.optimality))
        return base.OptStep(params, info)

    def run(self, init_params, *args, **kwargs):
        """Fits ``init_params``; ``args``/``kwargs`` go to ``fun``. Returns
        ``OptStep(params, ScipyLeastSquaresInfo)``."""
        return self._run(init_params, None, args, kwargs)


@dataclass(eq=False)
class ScipyBoundedLeastSquares(ScipyLeastSquares):
    """``scipy.optimize.least_squares`` subject to ``lower <= params <= upper``.

    ``run(init_params, bounds, *args, **kwargs)`` with ``bounds = (lower,
    upper)``, pytrees with the params' structure (or None); scipy needs
    ``lower < upper`` strictly and ``init_params`` within the bounds.
    Same attributes as ScipyLeastSquares; ``method`` 'trf' or 'dogbox'.
    """

    def optimality_fun(self, sol, bounds, *args, **kwargs):
        """``clip(sol - grad cost(sol), lower, upper) - sol``: zero at a
        solution."""
        x, g, unravel = self._grad_cost(sol, args, kwargs)
        lb, ub = (None, None) if bounds is None else _flat_bounds(bounds, sol, x.dtype)
        return unravel(_box_optimality(x, g, lb, ub))

    def run(self, init_params, bounds, *args, **kwargs):
        """Fits ``init_params`` within ``bounds``. Returns
        ``OptStep(params, ScipyLeastSquaresInfo)``."""
        return self._run(init_params, bounds, args, kwargs)


__all__ = [
    "ScipyMinimize", "ScipyBoundedMinimize", "ScipyRootFinding", "ScipyLeastSquares",
    "ScipyBoundedLeastSquares", "ScipyMinimizeInfo", "ScipyRootInfo", "ScipyLeastSquaresInfo",
]
