r"""Implicit differentiation of roots and fixed points, with NumPy only.

A solver maps arguments :math:`\theta` (hyperparameters, data) to a solution
:math:`x^\star(\theta)` characterised by an *optimality condition*
:math:`F(x^\star(\theta), \theta) = 0`: a gradient that vanishes, a fixed
point :math:`T(x) - x`, the KKT conditions of a QP, ... Differentiating that
identity gives the implicit function theorem

.. math::

    -\partial_1 F(x^\star, \theta)\, J = \partial_2 F(x^\star, \theta),
    \qquad J = \partial x^\star / \partial \theta,

so a derivative of the solution costs one linear solve with
:math:`A = \partial_1 F(x^\star, \theta)`, whatever algorithm found
:math:`x^\star` (Krantz & Parks 2002; Blondel et al. 2022):

* forward mode (``root_jvp``): :math:`A\, \dot x = -\partial_2 F\, \dot\theta`;
* reverse mode (``root_vjp``): :math:`A^\top u = -\bar x`, then
  :math:`\bar\theta = \partial_2 F^\top u`.

Nothing is formed: the linear solver (``npopt.linear_solve``) only sees
products with :math:`A` (and :math:`A^\top` in reverse mode). They come
from, in this order:

1. ``optimality_jvp(params, args, dparams, dargs) -> dF``, the exact
   directional derivative of ``F(params, *args)`` (``dargs`` is a tuple
   aligned with ``args``, None meaning zero). For a stationarity condition
   :math:`F = \nabla_1 f` its params part is a Hessian-vector product.
2. ``optimality_vjp(params, args, w) -> (w_params, w_args)``, its transpose
   (``w_args`` a tuple aligned with ``args``, None meaning zero).
   When the linear solver assumes a symmetric :math:`A` (``solve_cg``,
   ``solve_cholesky``) either callable supplies both products with
   :math:`A`.
3. Dense Jacobians, turned into the two callables by
   ``jvp_vjp_from_jacobian``.
4. Otherwise central finite differences of ``F`` along the needed direction
   :math:`v` (``npopt._finite_diff.directional``):

   .. math::

       \partial_1 F\, v \approx \frac{F(x + h v, \theta) - F(x - h v, \theta)}{2h},
       \qquad h = \epsilon^{1/3} \max(1, \|x\|) / \|v\|,

   with :math:`\epsilon` the machine epsilon of :math:`x`'s dtype (and the
   same along an argument, per coordinate with
   :math:`h_j = \epsilon^{1/3}\max(1, |\theta_j|)`). The truncation error
   :math:`O(h^2)` and the rounding error :math:`O(\epsilon / h)` are both
   about :math:`\epsilon^{2/3}` relative to the scale of ``F``'s terms:
   4e-11 in float64, 2e-5 in float32; a ``F`` that is quadratic along
   :math:`v` (least squares, ridge) is differentiated exactly up to
   rounding. Each product costs two evaluations of ``F``; products with
   :math:`\partial_2 F^\top` cost two per coordinate of :math:`\theta`, and
   reverse mode without a VJP (and a non-symmetric solver) runs forward mode
   over :math:`\theta`'s coordinates instead. A non-smooth ``F`` (a prox, a
   projection) must not have a kink within :math:`h` of the solution. When
   ``F`` is itself a finite-difference gradient (a solver without ``grad=``),
   the nested differences leave about :math:`\epsilon^{1/3}` (6e-6 in
   float64): pass ``grad=`` or ``optimality_jvp`` for accurate derivatives.

The linear system is solved with conjugate gradient by default (symmetric
stationarity conditions) for ``custom_root``/``root_jvp``/``root_vjp`` and
with GMRES (at most about 2n + 80 products) for ``custom_fixed_point``
(:math:`\partial T - I` is not symmetric); a solver's ``jacobian`` uses its
``implicit_diff_solve``, by default CG when its optimality function is a
gradient and GMRES otherwise (``for_solver``). The default tolerance is a
relative residual of ``max(1e-10, 100 eps)`` with exact products and
``max(1e-9, 10 eps^(2/3))`` with finite differences (their noise floor).
``solve=`` takes any ``npopt.linear_solve`` function, or any
``solve(matvec, b) -> x`` on 1-D arrays; ``solve_normal_cg`` is handed the
transposed product as its ``rmatvec`` when one is known. jaxopt's default,
normal CG at ``tol=1e-5``, gives only about 1e-5-accurate derivatives.

Nothing fails silently. Every solution is checked: a relative residual
:math:`\|A x - b\| / \|b\|` above 1e-3 (or not finite) raises
``np.linalg.LinAlgError`` with the residual, since a singular or
ill-conditioned :math:`\partial_1 F` has no (stable) implicit derivative
(between the solver's tolerance and 1e-3 the solver itself warns).

The theorem holds at a root only, and the derivatives are off by about as
much as ``sol`` is. When is ``sol`` a root? (A RuntimeWarning otherwise,
given **once** per solver object or decorated function, not on every call:
a hyperparameter loop makes hundreds of calls.)

* A solver's ``jacobian``/``jvp``/``vjp``: the tolerance is the one the user
  gave the solver. ``sol`` counts as a root when the run that produced it
  met its own stopping criterion: ``state.error <= tol`` (``error`` is the
  optimality residual or the step the solver stops on), ``status ==
  SOLVED`` for OSQP/BoxOSQP, ``success`` for the scipy wrappers. A run
  stopped by ``maxiter`` (or on NaN) warns.
* A function decorated with ``custom_root``/``custom_fixed_point``, and
  ``root_jvp``/``root_vjp`` (no tolerance known): the relative residual
  :math:`\rho = \|F(sol)\| / (\|\partial_1 F(sol)\, u\| \max(1, \|sol\|))`,
  :math:`u = sol / \|sol\|` (the scale of ``F``'s terms at ``sol``; one
  more product with :math:`\partial_1 F`), is compared with
  ``max(ROOT_RTOL, sqrt(eps))`` (``ROOT_RTOL = 1e-4``, eps of ``sol``'s dtype):
  :math:`\rho` is about the relative error of ``sol`` (up to the condition
  number of :math:`\partial_1 F`), so above 1e-4 the derivatives have fewer
  than about four correct digits. A solve to jaxopt's usual tolerances
  (1e-5 relative for its linear solves, 1e-3 on gradient norms of
  unit-scale problems) passes; a ``sol`` that is off (wrong problem, a
  solver stopped far too early) warns. ``root_jvp``/``root_vjp`` check on
  every call.

A non-finite :math:`F(sol)` raises ValueError.

Unlike jaxopt, npopt has no autodiff to hook into: a function decorated with
``custom_root`` runs as before and gains the methods ``jacobian``, ``jvp``
and ``vjp`` (the same as every solver's, see ``npopt.solvers.base``).

References:
  Krantz & Parks, "The Implicit Function Theorem", Birkhauser, 2002.
  Blondel, Berthet, Cuturi, Frostig, Hoyer, Llinares-Lopez, Pedregosa &
  Vert, "Efficient and modular implicit differentiation", NeurIPS 2022.
"""
import functools
import inspect
import warnings

import numpy as np

from . import _dense
from . import _finite_diff as FD
from . import tree as T

__all__ = ["custom_root", "custom_fixed_point", "root_jvp", "root_vjp",
           "jvp_vjp_from_jacobian", "ImplicitFunction"]

# a linear solve whose relative residual exceeds this did not converge
RESIDUAL_RTOL = 1e-3
# sol is taken for a root when ||F(sol)|| <= max(ROOT_RTOL, sqrt(eps)) times the
# scale of F at sol (decorated functions; a solver's own criterion decides for it)
ROOT_RTOL = 1e-4


# --------------------------------------------------------------------------
# Pytrees as flat vectors.

def _ravel_float(tree):
    """``(flat, unravel)`` of a tree of floating leaves, or None otherwise
    (None, integers, booleans, callables: arguments with no derivative)."""
    try:
        flat, unravel = T.ravel(tree)
    except Exception:      # leaves numpy cannot hold in one array
        return None
    if flat.dtype.kind != "f" or flat.size == 0:
        return None
    return flat, unravel


def _norm(v):
    return float(np.sqrt(_dense.dot(v, v))) if v.size else 0.0


# --------------------------------------------------------------------------
# The linearisation of F at (sol, args).

class _Linearization:
    """Products with the partial derivatives of ``F`` at ``(sol, args)``.

    ``matvec(v) = d1F v``, ``rmatvec(u) = d1F^T u`` (None when neither a VJP
    nor symmetry provides it), ``arg_jvp(i, d) = d_iF d`` and
    ``args_vjp(u, idx) = [d_iF^T u for i in idx]``, all on flat vectors
    (``npopt.tree.ravel`` order).
    """

    def __init__(self, optimality_fun, sol, args, kwargs, optimality_jvp=None,
                 optimality_vjp=None, symmetric=False):
        if not callable(optimality_fun):
            raise TypeError(f"optimality_fun: expected a callable, got "
                            f"{type(optimality_fun).__name__}")
        for name, f in (("optimality_jvp", optimality_jvp), ("optimality_vjp", optimality_vjp)):
            if f is not None and not callable(f):
                raise TypeError(f"{name}: expected None or a callable, got {type(f).__name__}")
        if not isinstance(args, (tuple, list)):
            raise TypeError(f"args: expected a tuple of the optimality function's arguments "
                            f"after the params, got {type(args).__name__}")
        self.fun, self.args, self.kwargs = optimality_fun, tuple(args), dict(kwargs)
        self.jvp_fun, self.vjp_fun = optimality_jvp, optimality_vjp
        self.symmetric = bool(symmetric)
        raveled = _ravel_float(sol)
        if raveled is None:
            raise TypeError("sol: expected a pytree of floating-point arrays (the root), "
                            f"got {type(sol).__name__}")
        self.sol = sol
        self.x, self.unravel_x = raveled
        self.dtype = self.x.dtype
        self.n = self.x.size
        f0 = self.fun(sol, *self.args, **self.kwargs)
        f, self.unravel_f = T.ravel(f0)
        if f.size != self.n:
            raise ValueError(
                f"optimality_fun: expected an output of the size of sol ({self.n} numbers: "
                f"the implicit function theorem needs a square system), got {f.size}")
        self.f0 = f
        self._args = {}

    # -- arguments ---------------------------------------------------------
    def differentiable(self, i):
        if i not in self._args:
            self._args[i] = _ravel_float(self.args[i])
        return self._args[i] is not None

    def arg(self, i):
        """``(flat, unravel)`` of ``args[i]``; TypeError if it has no derivative."""
        if not self.differentiable(i):
            a = self.args[i]
            got = (f"an array of dtype {np.asarray(a).dtype}" if isinstance(a, np.ndarray)
                   else type(a).__name__)
            raise TypeError(
                f"argnums: argument {i + 1} of the call (args[{i}] of the optimality function) "
                f"has no derivative: expected a pytree of floating-point arrays or Python "
                f"floats, got {got} (pass 1.0, not 1, for a real hyperparameter)")
        return self._args[i]

    # -- output helpers ----------------------------------------------------
    def _call(self, params, args):
        return self.fun(params, *args, **self.kwargs)

    def _flat_out(self, tree, size, name):
        if tree is None:
            return np.zeros(size, self.dtype)
        flat = T.ravel(tree)[0]
        if flat.size != size:
            raise ValueError(f"{name}: expected an output of {size} numbers, got {flat.size}")
        return flat

    def _user_jvp(self, dparams, dargs):
        out = self.jvp_fun(self.sol, self.args, dparams, dargs, **self.kwargs)
        return self._flat_out(out, self.n, "optimality_jvp")

    def _user_vjp(self, u):
        out = self.vjp_fun(self.sol, self.args, self.unravel_f(u), **self.kwargs)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError("optimality_vjp: expected a pair (w_params, w_args), got "
                            f"{type(out).__name__}")
        w_params, w_args = out
        if w_args is None:
            w_args = (None,) * len(self.args)
        if not (isinstance(w_args, (tuple, list)) and len(w_args) == len(self.args)):
            raise ValueError(f"optimality_vjp: expected w_args, a tuple of {len(self.args)} "
                             f"entries aligned with args, got {w_args!r:.80}")
        return w_params, tuple(w_args)

    # -- d1F ---------------------------------------------------------------
    def _fd_params(self, v):
        if _norm(v) == 0.0:
            return np.zeros(self.n, self.dtype)
        return FD.directional(
            lambda x: T.ravel(self._call(self.unravel_x(x), self.args))[0], self.x, v)

    def matvec(self, v):
        """``d1F(sol, args) v``."""
        if self.jvp_fun is not None:
            return self._user_jvp(self.unravel_x(v), (None,) * len(self.args))
        if self.vjp_fun is not None and self.symmetric:
            return self._flat_out(self._user_vjp(v)[0], self.n, "optimality_vjp")
        return self._fd_params(v)

    @property
    def has_rmatvec(self):
        return self.vjp_fun is not None or self.symmetric

    def rmatvec(self, u):
        """``d1F(sol, args)^T u`` (only when ``has_rmatvec``)."""
        if self.vjp_fun is not None:
            return self._flat_out(self._user_vjp(u)[0], self.n, "optimality_vjp")
        return self.matvec(u)

    # -- d_iF ----------------------------------------------------------------
    def _fd_arg(self, i, d, scale):
        theta, unravel = self.arg(i)

        def F(t):
            args = list(self.args)
            args[i] = unravel(t)
            return T.ravel(self._call(self.sol, args))[0]
        return FD.directional(F, theta, d, scale)

    def arg_jvp(self, i, d):
        """``d_iF(sol, args) d`` for a flat tangent ``d`` of ``args[i]``."""
        theta, unravel = self.arg(i)
        if _norm(d) == 0.0:
            return np.zeros(self.n, self.dtype)
        if self.jvp_fun is not None:
            dargs = [None] * len(self.args)
            dargs[i] = unravel(d)
            return self._user_jvp(self.unravel_x(np.zeros_like(self.x)), tuple(dargs))
        return self._fd_arg(i, d, max(1.0, _norm(theta)))

    def arg_column(self, i, j):
        """Column ``j`` of ``d_iF``: the derivative along coordinate ``j`` of ``args[i]``."""
        theta, _ = self.arg(i)
        e = np.zeros_like(theta)
        e[j] = 1
        if self.jvp_fun is not None:
            return self.arg_jvp(i, e)
        return self._fd_arg(i, e, max(1.0, abs(float(theta[j]))))

    def args_vjp(self, u, idx):
        """``[d_iF(sol, args)^T u for i in idx]`` as flat vectors."""
        if self.vjp_fun is not None:
            w_args = self._user_vjp(u)[1]
            return [self._flat_out(w_args[i], self.arg(i)[0].size, f"optimality_vjp: w_args[{i}]")
                    for i in idx]
        out = []
        for i in idx:
            theta = self.arg(i)[0]
            out.append(np.array([_dense.dot(u, self.arg_column(i, j)) for j in range(theta.size)],
                                dtype=theta.dtype))
        return out

    # -- is sol a root? -------------------------------------------------------
    def residual_norm(self):
        """``||F(sol, *args)||``; ValueError when it is not finite."""
        res = _norm(self.f0)
        if not np.isfinite(res):
            raise ValueError(f"sol: the optimality function is not finite at sol "
                             f"(||F(sol, *args)|| = {res}); no derivative can be taken there")
        return res

    def relative_residual(self):
        """``(||F(sol)||, rho, scale)`` with ``rho = ||F(sol)|| / scale`` and
        ``scale = ||d1F(sol) u|| max(1, ||sol||)``, ``u = sol / ||sol||`` (a
        normalised vector of ones when sol is 0): the scale of F's terms."""
        res = self.residual_norm()
        if res == 0.0:
            return res, 0.0, 0.0
        nx = _norm(self.x)
        u = self.x / nx if nx > 0 else np.full(self.n, 1.0 / np.sqrt(self.n), self.dtype)
        with np.errstate(all="ignore"):
            scale = _norm(np.asarray(self.matvec(u.astype(self.dtype)), self.dtype)) \
                * max(1.0, nx)
        rho = res / scale if scale > 0 and np.isfinite(scale) else float("inf")
        return res, rho, scale

    def check_root(self, stacklevel=3):
        """Warn when ``sol`` is not a root to ``max(ROOT_RTOL, sqrt(eps))`` in
        relative terms (see the module docstring); returns True when it warned."""
        res, rho, scale = self.relative_residual()
        rtol = max(ROOT_RTOL, float(np.finfo(self.dtype).eps) ** 0.5)
        if rho > rtol:
            warnings.warn(
                f"npopt.implicit_diff: sol is not a root of the optimality function: "
                f"||F(sol, *args)|| = {res:.3e}, {rho:.1e} relative to the scale of F at sol "
                f"(||d1F(sol) u|| max(1, ||sol||) = {scale:.3e}) > {rtol:.1e}; the "
                f"implicit function theorem holds at a root only, so the derivatives are off "
                f"by about that relative amount (solve more accurately)", RuntimeWarning,
                stacklevel=stacklevel)
            return True
        return False


# --------------------------------------------------------------------------
# The linear solves.

def _linear_solve_module():
    from . import linear_solve
    return linear_solve


def _is_symmetric_solve(solve):
    """True for solvers that assume a symmetric operator (CG, Cholesky)."""
    f = solve
    while isinstance(f, functools.partial):
        f = f.func
    ls = _linear_solve_module()
    return any(f is getattr(ls, name, None) for name in ("solve_cg", "solve_cholesky"))


def _default_tol(dtype, exact):
    eps = float(np.finfo(dtype).eps)
    return max(1e-10, 100 * eps) if exact else max(1e-9, 10 * eps ** (2.0 / 3.0))


def _resolve_solve(solve, kind, dtype, exact, n):
    """``solve`` itself, or the default for ``n`` unknowns: CG (``kind='cg'``) or GMRES."""
    if solve is not None:
        if not callable(solve):
            raise TypeError(f"solve: expected None or a linear solver solve(matvec, b) "
                            f"(see npopt.linear_solve), got {type(solve).__name__}")
        return solve
    ls = _linear_solve_module()
    tol = _default_tol(dtype, exact)
    if kind == "cg":
        return functools.partial(ls.solve_cg, tol=tol)
    # at most about 2n + 80 products (jax's default allows 10 n restarts of 20)
    return functools.partial(ls.solve_gmres, tol=tol, restart=20, maxiter=4 + 2 * -(-n // 20))


def _takes_rmatvec(solve):
    """True for (partials of) solve_normal_cg not already given an ``rmatvec``."""
    f, kw = solve, {}
    while isinstance(f, functools.partial):
        kw = {**f.keywords, **kw}
        f = f.func
    return f is getattr(_linear_solve_module(), "solve_normal_cg", None) and "rmatvec" not in kw


def _solve_checked(solve, matvec, b, what, adjoint=None):
    """``x`` with ``matvec(x) = b``; raises LinAlgError when it is not a solution.

    ``adjoint``, the transposed product when known, goes to solve_normal_cg as
    its ``rmatvec`` (it would otherwise materialise the operator)."""
    nb = _norm(b)
    if nb == 0.0:
        return np.zeros_like(b)
    if adjoint is not None and _takes_rmatvec(solve):
        x = solve(matvec, b, rmatvec=adjoint)
    else:
        x = solve(matvec, b)
    x = np.asarray(x)
    if x.shape != b.shape:
        raise ValueError(f"solve: expected a solution of shape {b.shape}, got {x.shape}")
    x = x.astype(b.dtype, copy=False)
    rel = _norm(matvec(x) - b) / nb if np.all(np.isfinite(x)) else float("nan")
    if not rel <= RESIDUAL_RTOL:
        raise np.linalg.LinAlgError(
            f"npopt.implicit_diff: the linear system {what} of the implicit function theorem "
            f"was not solved: relative residual ||A x - b|| / ||b|| = {rel:.3e} "
            f"(> {RESIDUAL_RTOL:g}). d1F(sol, args) is singular or too ill-conditioned for "
            f"the solver: check that sol is an isolated root, or pass solve= (e.g. "
            f"npopt.linear_solve.solve_gmres, or a ridge= regularised solver)")
    return x


def _exact(lin):
    return lin.jvp_fun is not None or lin.vjp_fun is not None


def _adjoint(lin):
    return lin.rmatvec if lin.has_rmatvec else None


def _forward_columns(lin, solve, i):
    """``J_i = -A^{-1} d_iF`` column by column (forward mode)."""
    theta = lin.arg(i)[0]
    J = np.empty((lin.n, theta.size), lin.dtype)
    for j in range(theta.size):
        J[:, j] = _solve_checked(solve, lin.matvec, -lin.arg_column(i, j),
                                 "d1F(sol) J = -d2F(sol)", _adjoint(lin))
    return J


def _jvp(lin, solve, tangents):
    """``-A^{-1} sum_i d_iF t_i`` for flat tangents (None: zero)."""
    b = np.zeros(lin.n, lin.dtype)
    for i, t in enumerate(tangents):
        if t is not None:
            b = b - lin.arg_jvp(i, t)
    return _solve_checked(solve, lin.matvec, b, "d1F(sol) x' = -d2F(sol) tangents",
                          _adjoint(lin))


def _vjp(lin, solve, v, idx):
    """``[-d_iF^T A^{-T} v for i in idx]`` as flat vectors."""
    if lin.has_rmatvec:
        u = _solve_checked(solve, lin.rmatvec, -v, "d1F(sol)^T u = -cotangent", lin.matvec)
        return lin.args_vjp(u, idx)
    # no products with A^T: forward mode over the arguments' coordinates
    return [_dense.dot(v, _forward_columns(lin, solve, i)) for i in idx]


def _jacobians(lin, solve, idx):
    """Dense ``J_i = dsol/dargs[i]`` (n_sol, n_i) for i in idx: forward mode,
    or reverse mode (one solve per coordinate of sol) when an exact VJP is
    given and sol is the smaller side."""
    sizes = [lin.arg(i)[0].size for i in idx]
    if lin.vjp_fun is not None and lin.n < sum(sizes):
        rows = [np.empty((lin.n, s), lin.dtype) for s in sizes]
        for k in range(lin.n):
            e = np.zeros(lin.n, lin.dtype)
            e[k] = 1
            for r, w in zip(rows, _vjp(lin, solve, e, idx)):
                r[k] = w
        return rows
    return [_forward_columns(lin, solve, i) for i in idx]


def _check_tangent(flat_and_unravel, t, name):
    theta, _ = flat_and_unravel
    d = T.ravel(t)[0]
    if d.size != theta.size:
        raise ValueError(f"{name}: expected a tangent of {theta.size} numbers (the shape of "
                         f"its argument), got {d.size}")
    return d.astype(np.result_type(theta.dtype, np.float32), copy=False)


# --------------------------------------------------------------------------
# jaxopt's functions.

def root_jvp(optimality_fun, sol, args, tangents, solve=None, *, optimality_jvp=None,
             optimality_vjp=None, kwargs=None):
    """Jacobian-vector product of a root: the tangent of ``sol`` along ``tangents``.

    Solves ``d1F(sol, args) x' = -sum_i d_iF(sol, args) tangents[i]``.

    Args:
      optimality_fun: ``F(params, *args)``, zero at ``sol``.
      sol: the root (pytree).
      args: tuple of the arguments of ``F`` after ``params``.
      tangents: tuple aligned with ``args``; ``tangents[i]`` has the
        structure of ``args[i]`` (None: zero).
      solve: ``solve(matvec, b) -> x`` (default: conjugate gradient, see the
        module docstring).
      optimality_jvp, optimality_vjp: exact derivatives of ``F`` (SPEC §5);
        finite differences without them.
      kwargs: keyword arguments of ``F`` (not differentiated).
    Returns:
      a pytree with the structure of ``sol``.
    """
    args, tangents = tuple(args), tuple(tangents)
    if len(args) != len(tangents):
        raise ValueError(f"tangents: expected a tuple of the same length as args "
                         f"({len(args)}), got {len(tangents)}")
    lin = _Linearization(optimality_fun, sol, args, kwargs or {}, optimality_jvp,
                         optimality_vjp)
    solve = _resolve_solve(solve, "cg", lin.dtype, _exact(lin), lin.n)
    lin.symmetric = _is_symmetric_solve(solve)
    lin.check_root()
    flat = [None if t is None else _check_tangent(lin.arg(i), t, f"tangents[{i}]")
            for i, t in enumerate(tangents)]
    return lin.unravel_x(_jvp(lin, solve, flat))


def root_vjp(optimality_fun, sol, args, cotangent, solve=None, *, optimality_jvp=None,
             optimality_vjp=None, kwargs=None, argnums=None):
    """Vector-Jacobian product of a root: the cotangents of ``args``.

    Solves ``d1F(sol, args)^T u = -cotangent`` and returns
    ``d_iF(sol, args)^T u`` for every argument.

    Args:
      optimality_fun, sol, args, solve, optimality_jvp, optimality_vjp,
        kwargs: as in ``root_jvp``.
      cotangent: a pytree with the structure of ``sol``.
      argnums: indices into ``args`` to differentiate (default: every
        argument with floating-point leaves); npopt's addition, since each
        argument costs finite differences when no ``optimality_vjp`` is given.
    Returns:
      a tuple aligned with ``args``: ``vjps[i]`` has the structure of
      ``args[i]``, None for arguments not differentiated (not in
      ``argnums``, or with no floating-point leaves).
    """
    args = tuple(args)
    lin = _Linearization(optimality_fun, sol, args, kwargs or {}, optimality_jvp,
                         optimality_vjp)
    solve = _resolve_solve(solve, "cg", lin.dtype, _exact(lin), lin.n)
    lin.symmetric = _is_symmetric_solve(solve)
    lin.check_root()
    if argnums is None:
        idx = [i for i in range(len(args)) if lin.differentiable(i)]
    else:
        idx = _check_argnums(argnums, len(args), offset=0)
        for i in idx:
            lin.arg(i)
    v = _check_tangent((lin.x, None), cotangent, "cotangent")
    out = [None] * len(args)
    for i, w in zip(idx, _vjp(lin, solve, v, idx)):
        out[i] = lin.arg(i)[1](w)
    return tuple(out)


def _check_argnums(argnums, n, offset=1):
    """argnums as a list of ints in [0, n + offset) minus offset."""
    items = argnums if isinstance(argnums, tuple) else (argnums,)
    what = ("0 is init_params, 1.. the positional arguments after it" if offset
            else "indices into args")
    for a in items:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise TypeError(f"argnums: expected an int or a tuple of ints ({what}), "
                            f"got {argnums!r}")
        if not 0 <= a < n + offset:
            raise ValueError(f"argnums: expected integers in [0, {n + offset}) ({what}; this call "
                             f"has {n + offset} positional arguments), got {argnums!r}")
    if len(set(items)) != len(items):
        raise ValueError(f"argnums: expected distinct integers, got {argnums!r}")
    return [int(a) - offset for a in items]


# --------------------------------------------------------------------------
# Decorated solvers and the solvers' jacobian / jvp / vjp.

def _reference_signature(optimality_fun, reference_signature):
    if reference_signature is None:
        fun = optimality_fun
    elif isinstance(reference_signature, inspect.Signature):
        return reference_signature
    else:
        fun = getattr(reference_signature, "subfun", reference_signature)
    try:
        return inspect.signature(fun)
    except (TypeError, ValueError):
        return None


def _jacobian_tree(J, sol_unravel, arg_unravel):
    """jax.jacobian's layout: sol's tree whose leaves are trees of the
    argument's structure with leaves of shape ``sol_leaf.shape + arg_leaf.shape``."""
    st, at = sol_unravel.segment_table, arg_unravel.segment_table
    out = []
    for so, ss, sshape in zip(st.offsets, st.sizes, st.shapes):
        blocks = [J[so:so + ss, ao:ao + asz].reshape(sshape + ashape)
                  for ao, asz, ashape in zip(at.offsets, at.sizes, at.shapes)]
        out.append(T.tree_unflatten(arg_unravel.treedef, blocks))
    return out


class ImplicitFunction:
    """A solver function with implicit derivatives: calling it calls the
    solver; ``jacobian``, ``jvp`` and ``vjp`` differentiate its solution
    with respect to its positional arguments (``argnums``: 0 is
    ``init_params``, whose derivative is zero) through the optimality
    function, never through the solver's iterations.

    Made by ``custom_root``/``custom_fixed_point`` and by every solver's
    ``jacobian``/``jvp``/``vjp``.
    """

    def __init__(self, solver_fun, optimality_fun, has_aux=False, solve=None,
                 reference_signature=None, optimality_jvp=None, optimality_vjp=None,
                 default_solve="cg", converged=None, owner=None):
        if not callable(solver_fun):
            raise TypeError(f"solver_fun: expected a callable, got {type(solver_fun).__name__}")
        self.solver_fun = solver_fun
        self.optimality_fun = optimality_fun
        self.has_aux = has_aux
        self.solve = solve
        self.reference_signature = _reference_signature(optimality_fun, reference_signature)
        self.optimality_jvp = optimality_jvp
        self.optimality_vjp = optimality_vjp
        self.default_solve = default_solve
        # converged(res) -> None (unknown: the relative-residual rule) or
        # (bool, detail): the solver's own verdict on the run that made sol
        self.converged = converged
        # the object whose "not a root" warning is given once (a solver: its
        # ImplicitFunction is made again on every call)
        self._owner = self if owner is None else owner
        self._stacklevel = 4        # warnings point at the caller of jacobian/jvp/vjp
        functools.update_wrapper(self, solver_fun)

    def __call__(self, *args, **kwargs):
        return self.solver_fun(*args, **kwargs)

    # -- shared preamble ---------------------------------------------------
    def _bind(self, args, kwargs):
        """(positional args of F including init_params, keyword args of F)."""
        if self.reference_signature is None:
            return tuple(args), dict(kwargs)
        try:
            ba = self.reference_signature.bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"the call's arguments do not match the optimality function's "
                            f"signature {self.reference_signature}: {e}") from None
        return tuple(ba.args), dict(ba.kwargs)

    def _linearize(self, args, kwargs, argnums):
        f_args, f_kwargs = self._bind(args, kwargs)
        if not f_args:
            raise TypeError("init_params: expected the solver's first positional argument")
        idx = _check_argnums(argnums, len(f_args) - 1, offset=1)   # -1: init_params
        res = self.solver_fun(*args, **kwargs)
        sol = res[0] if self.has_aux else res
        lin = _Linearization(self.optimality_fun, sol, f_args[1:], f_kwargs,
                             self.optimality_jvp, self.optimality_vjp)
        solve = _resolve_solve(self.solve, self.default_solve, lin.dtype, _exact(lin),
                               lin.n)
        lin.symmetric = _is_symmetric_solve(solve)
        self._check_root(lin, res)
        for i in idx:
            if i >= 0:
                lin.arg(i)
        return lin, solve, idx, f_args[0]

    def _check_root(self, lin, res):
        """The module docstring's rule, warning once per owner."""
        lin.residual_norm()                     # raises on a non-finite F(sol)
        if self._owner.__dict__.get("_npopt_root_warned", False):
            return
        verdict = self.converged(res) if self.converged is not None else None
        if verdict is None:
            warned = lin.check_root(stacklevel=self._stacklevel + 1)
        else:
            ok, detail = verdict
            warned = not ok
            if warned:
                warnings.warn(
                    f"npopt.implicit_diff: sol is not a root of the optimality function to the "
                    f"solver's tolerance: {detail} (||F(sol, *args)|| = {lin.residual_norm():.3e})"
                    f"; the implicit function theorem holds at a root only, so the derivatives "
                    f"are off accordingly (raise maxiter). Given once per solver",
                    RuntimeWarning, stacklevel=self._stacklevel)
        if warned:
            self._owner.__dict__["_npopt_root_warned"] = True

    # -- the three derivatives -----------------------------------------------
    def jacobian(self, *args, argnums=1, **kwargs):
        """The Jacobian of the solution with respect to the arguments in
        ``argnums``, laid out as ``jax.jacobian``'s: a tree of the solution's
        structure whose leaves are trees of the argument's structure with
        leaves of shape ``sol_leaf.shape + arg_leaf.shape`` (a tuple of those
        for a tuple ``argnums``)."""
        lin, solve, idx, init = self._linearize(args, kwargs, argnums)
        diff = [i for i in idx if i >= 0]
        mats = dict(zip(diff, _jacobians(lin, solve, diff)))
        per_arg = []
        for i in idx:
            if i < 0:   # init_params: the solution does not depend on it
                flat, unravel = T.ravel(init)
                J = np.zeros((lin.n, flat.size), lin.dtype)
            else:
                unravel = lin.arg(i)[1]
                J = mats[i]
            per_arg.append(_jacobian_tree(J, lin.unravel_x, unravel))
        leaves = per_arg[0] if not isinstance(argnums, tuple) else list(zip(*per_arg))
        return T.tree_unflatten(lin.unravel_x.treedef, leaves)

    def jvp(self, *args, tangents, argnums=1, **kwargs):
        """The tangent of the solution along ``tangents``: one tangent (the
        structure of that argument) for an int ``argnums``, a tuple of them
        for a tuple ``argnums``."""
        lin, solve, idx, _ = self._linearize(args, kwargs, argnums)
        tangents = tangents if isinstance(argnums, tuple) else (tangents,)
        if not isinstance(tangents, tuple) or len(tangents) != len(idx):
            raise ValueError(f"tangents: expected a tuple of {len(idx)} tangents, one per "
                             f"argnum in {argnums!r}, got {tangents!r:.80}")
        flat = [None] * len(lin.args)
        for i, t in zip(idx, tangents):
            if i >= 0 and t is not None:
                flat[i] = _check_tangent(lin.arg(i), t, f"tangents (argnum {i + 1})")
        return lin.unravel_x(_jvp(lin, solve, flat))

    def vjp(self, *args, cotangent, argnums=1, **kwargs):
        """The cotangents of the arguments in ``argnums`` for a cotangent of
        the solution (the structure of ``sol``): one tree for an int
        ``argnums``, a tuple for a tuple."""
        lin, solve, idx, init = self._linearize(args, kwargs, argnums)
        v = _check_tangent((lin.x, None), cotangent, "cotangent")
        diff = [i for i in idx if i >= 0]
        vjps = dict(zip(diff, _vjp(lin, solve, v, diff)))
        out = [T.tree_map(np.zeros_like, init) if i < 0 else lin.arg(i)[1](vjps[i])
               for i in idx]
        return tuple(out) if isinstance(argnums, tuple) else out[0]


def custom_root(optimality_fun, has_aux=False, solve=None, reference_signature=None,
                optimality_jvp=None, optimality_vjp=None):
    """Decorator adding implicit differentiation to a root solver.

    ``custom_root(F)(solver_fun)`` returns an ``ImplicitFunction``: it calls
    ``solver_fun(init_params, *args, **kwargs)`` unchanged and adds
    ``jacobian``, ``jvp`` and ``vjp`` of its solution with respect to
    ``args``, computed from ``F(sol, *args, **kwargs) = 0`` by the implicit
    function theorem (see the module docstring).

    Args:
      optimality_fun: ``F(params, *args, **kwargs)``, zero at the solution.
      has_aux: the solver returns ``(sol, aux)`` (an ``OptStep`` counts).
      solve: ``solve(matvec, b) -> x`` from ``npopt.linear_solve`` (default:
        conjugate gradient, for symmetric ``d1F``; pass ``solve_gmres`` or
        ``solve_normal_cg`` otherwise).
      reference_signature: a function (or ``inspect.Signature``) with the
        signature the solver's arguments are bound to (default: ``F``'s), so
        that arguments passed by keyword find their position.
      optimality_jvp: ``optimality_jvp(params, args, dparams, dargs) -> dF``.
      optimality_vjp: ``optimality_vjp(params, args, w) -> (w_params, w_args)``.
    Returns:
      a decorator.

    Example::

        def F(w, lam, X, y):                 # ridge stationarity
            return X.T @ (X @ w - y) + lam * w

        @custom_root(F)
        def ridge(init_w, lam, X, y):
            return np.linalg.solve(X.T @ X + lam * np.eye(X.shape[1]), X.T @ y)

        ridge.jacobian(None, 1.0, X, y)      # dw*/dlam = -(X^T X + lam I)^{-1} w*
    """
    def wrapper(solver_fun):
        return ImplicitFunction(solver_fun, optimality_fun, has_aux, solve,
                                reference_signature, optimality_jvp, optimality_vjp, "cg")
    return wrapper


def custom_fixed_point(fixed_point_fun, has_aux=False, solve=None, reference_signature=None,
                       optimality_jvp=None, optimality_vjp=None):
    """Decorator adding implicit differentiation to a fixed-point solver.

    ``custom_root`` with the optimality function ``F(x, *args) = T(x, *args) - x``
    where ``T = fixed_point_fun``. The default linear solver is GMRES
    (``d1F = dT - I`` is not symmetric in general). ``optimality_jvp`` and
    ``optimality_vjp`` are the derivatives of ``F`` (not of ``T``): subtract
    ``dparams`` (resp. ``w``) from those of ``T``.
    """
    if not callable(fixed_point_fun):
        raise TypeError(f"fixed_point_fun: expected a callable, got "
                        f"{type(fixed_point_fun).__name__}")

    def optimality_fun(params, *args, **kwargs):
        return T.tree_sub(fixed_point_fun(params, *args, **kwargs), params)

    if reference_signature is None:
        reference_signature = fixed_point_fun

    def wrapper(solver_fun):
        return ImplicitFunction(solver_fun, optimality_fun, has_aux, solve,
                                reference_signature, optimality_jvp, optimality_vjp, "gmres")
    return wrapper


def jvp_vjp_from_jacobian(optimality_jac):
    """``(optimality_jvp, optimality_vjp)`` from dense Jacobians of ``F``.

    Args:
      optimality_jac: ``optimality_jac(params, args, **kwargs) -> (J_params,
        J_args)`` with ``J_params`` of shape ``(n_F, n_params)`` and ``J_args``
        a tuple aligned with ``args`` of ``(n_F, n_i)`` arrays (None: ``F``
        does not depend on that argument), columns and rows in
        ``npopt.tree.ravel`` order. It is evaluated once per ``(params,
        args)`` and cached.
    Returns:
      the pair to pass as ``optimality_jvp=, optimality_vjp=``.
    """
    cache = {}

    def jac(params, args, kwargs):
        key = cache.get("key")
        if key is None or key[0] is not params or len(key[1]) != len(args) or \
                any(a is not b for a, b in zip(key[1], args)) or key[2] != kwargs:
            cache["key"] = (params, tuple(args), dict(kwargs))
            cache["jac"] = optimality_jac(params, args, **kwargs)
        return cache["jac"]

    def optimality_jvp(params, args, dparams, dargs, **kwargs):
        Jp, Ja = jac(params, args, kwargs)
        out = _dense.dot(Jp, T.ravel(dparams)[0])
        for J, d in zip(Ja, dargs):
            if J is not None and d is not None:
                out = out + _dense.dot(J, T.ravel(d)[0])
        return out

    def optimality_vjp(params, args, w, **kwargs):
        Jp, Ja = jac(params, args, kwargs)
        wf = T.ravel(w)[0]
        return _dense.dot(wf, Jp), tuple(None if J is None else _dense.dot(wf, J) for J in Ja)

    return optimality_jvp, optimality_vjp


# Solvers whose optimality function is a gradient (or J^T r): its derivative
# is a Hessian (or J^T J + sum r_i H_i), symmetric, so conjugate gradient
# solves the implicit system. Every other solver's (a prox, projection or
# mirror-descent fixed point, T(x) - x, a root finder's F, KKT conditions) is
# not symmetric in general: GMRES. A solver class may decide for itself with
# a class attribute ``implicit_diff_symmetric = True/False``.
_GRADIENT_OPTIMALITY = frozenset({
    "GradientDescent", "LBFGS", "BFGS", "NonlinearCG", "ArmijoSGD", "PolyakSGD",
    "OptaxSolver", "GaussNewton", "LevenbergMarquardt", "ScipyMinimize", "ScipyLeastSquares"})


def _solver_is_symmetric(solver):
    flag = getattr(type(solver), "implicit_diff_symmetric", None)
    if flag is not None:
        return bool(flag)
    inner = getattr(solver, "solver", None)         # AndersonWrapper
    if type(solver).__name__ == "AndersonWrapper" and inner is not None:
        return _solver_is_symmetric(inner)
    return type(solver).__name__ in _GRADIENT_OPTIMALITY


def _solver_verdict(solver):
    """``converged(res)`` for ``ImplicitFunction``: did the run that returned
    ``res = OptStep(sol, state)`` meet the solver's own stopping criterion?
    ``(ok, detail)``, or None when the state cannot tell (no state, no error:
    then the relative-residual rule decides)."""
    name = type(solver).__name__

    def converged(res):
        try:
            sol, state = res
        except (TypeError, ValueError):
            return None
        if state is None:
            return None
        if hasattr(state, "success"):               # the scipy wrappers
            ok = bool(state.success)
            return ok, f"{name} reports success = False (status {getattr(state, 'status', '?')})"
        if name in ("OSQP", "BoxOSQP") and hasattr(state, "status"):
            status = int(state.status)
            return status == 1, f"{name} ended with state.status = {status} (SOLVED is 1)"
        error, tol = getattr(state, "error", None), getattr(solver, "tol", None)
        if error is None or not isinstance(tol, (int, float, np.number)):
            return None
        try:
            error = float(error)
        except (TypeError, ValueError):
            return None
        it = getattr(state, "iter_num", None)
        after = f" after {int(it)} iterations" if it is not None else ""
        if name == "LevenbergMarquardt" and getattr(solver, "stop_criterion", "") \
                == "madsen-nielsen":
            ok = np.isfinite(error) and not solver._cond_fun(sol, state)
            return ok, f"{name} stopped before its madsen-nielsen criterion was met{after}"
        ok = bool(np.isfinite(error) and error <= tol)
        return ok, (f"{name} stopped without meeting its stopping criterion (state.error = "
                    f"{error:.3e} > tol = {float(tol):g}{after})")
    return converged


def for_solver(solver):
    """The ``ImplicitFunction`` of a solver's ``run``: its ``optimality_fun``,
    its ``implicit_diff_solve`` (None: CG for gradient conditions, GMRES
    otherwise), its ``optimality_jvp``/``optimality_vjp`` if it has them, and
    the solver's own stopping criterion as the test of ``sol`` being a root
    (warned once per solver object; see the module docstring)."""
    if not getattr(solver, "implicit_diff", True):
        raise ValueError(
            f"implicit_diff: {type(solver).__name__} was built with implicit_diff=False and "
            f"npopt cannot differentiate through the iterations: build it with "
            f"implicit_diff=True to differentiate its solution")
    fun = solver.optimality_fun
    names = {f.name for f in getattr(solver, "__dataclass_fields__", {}).values()}
    if "optimality_fun" in names and getattr(solver, "has_aux", False):
        user_fun = fun                              # Bisection's user function with aux

        def fun(params, *args, **kwargs):
            return user_fun(params, *args, **kwargs)[0]
        fun.__signature__ = inspect.signature(user_fun)
    out = ImplicitFunction(
        solver.run, fun, has_aux=True, solve=getattr(solver, "implicit_diff_solve", None),
        reference_signature=getattr(solver, "reference_signature", None) or fun,
        optimality_jvp=getattr(solver, "optimality_jvp", None),
        optimality_vjp=getattr(solver, "optimality_vjp", None),
        default_solve="cg" if _solver_is_symmetric(solver) else "gmres",
        converged=_solver_verdict(solver), owner=solver)
    out._stacklevel = 5         # through IterativeSolver.jacobian/jvp/vjp
    return out
