r"""Gauss-Newton for nonlinear least squares (jaxopt 0.8.5's ``GaussNewton``).

Given residuals :math:`r(x) \in \mathbb{R}^m` (``residual_fun(x, *args,
**kwargs)``), it looks for a local minimum of

.. math::  F(x) = \tfrac12 \|r(x)\|^2, \qquad \nabla F(x) = J^\top r,

with :math:`J = \partial r / \partial x` (:math:`m \times n`, on the
ravelled params). Each iteration linearises :math:`r` and solves the normal
equations of the linear least-squares problem

.. math::  J^\top J\, \delta = J^\top r, \qquad x \leftarrow x - \delta,

by conjugate gradient (``npopt.linear_solve.solve_cg`` with jax's defaults,
``tol=1e-5`` relative, at most ``10 n`` steps, as jaxopt; an inner solve
that stops short is not warned about, as in jaxopt), and stops when
:math:`\|\delta\| \le` ``tol``. Non-finite residuals or a non-finite
step make ``error`` NaN: ``run`` stops there and warns. Near a zero-residual solution the
convergence is quadratic; far from one, or with a rank-deficient
:math:`J`, Gauss-Newton may diverge: use ``LevenbergMarquardt``.

Where the Jacobian comes from (there is no autodiff), in this order:

1. ``jac_fun(params, *args, **kwargs)``: the dense Jacobian, shape
   ``(m, n)`` on the ravelled residual and params (for array params, jax's
   ``residual.shape + params.shape`` layout is accepted too);
2. ``jvp_fun(params, tangent, *args, **kwargs) -> J @ tangent`` (residual
   shaped) and ``vjp_fun(params, cotangent, *args, **kwargs) -> J^T @
   cotangent`` (params shaped): matrix free. With only one of the two, ``J``
   is formed from it (``n`` JVPs or ``m`` VJPs per linearisation);
3. otherwise central finite differences of ``residual_fun``, column by
   column: :math:`J e_j \approx (r(x + h_j e_j) - r(x - h_j e_j)) / (2 h_j)`,
   :math:`h_j = \epsilon^{1/3} \max(1, |x_j|)`: ``2 n`` residual evaluations
   per linearisation and about :math:`\epsilon^{2/3}` relative error
   (4e-11 in float64). Float32 params are differenced in float64 (the
   Jacobian cast back to float32) when ``residual_fun`` computes in float64
   on float64 input (2e-5 relative error otherwise). A
   ``FiniteDifferenceWarning`` says once per solver instance that this is
   the slow path.

The state is jaxopt's ``GaussNewtonState``; its quirks are kept: the initial
``delta`` is the initial params, and ``value``/``residual``/``gradient`` of
a state are those at the params *before* its step.

Reference: Nocedal & Wright, "Numerical Optimization", 2nd ed., §10.3.
"""
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Optional, Union

import numpy as np

from .. import linear_solve
from .. import _dense
from .. import tree as T
from .. import _finite_diff as FD
from .._finite_diff import FiniteDifferences
from .._checks import check_callable
from . import base


class GaussNewtonState(NamedTuple):
    """jaxopt's GaussNewtonState."""
    iter_num: int
    residual: Any
    value: Any
    delta: Any
    error: float
    gradient: Any
    aux: Optional[Any] = None


# --------------------------------------------------------------------------
# Residuals and their Jacobian, shared with LevenbergMarquardt.

class _Linearization:
    """:math:`J` at one point, on the ravelled params and residual:
    ``jvp(v) = J v`` (n -> m), ``vjp(w) = J^T w`` (m -> n), ``matrix()``."""

    def __init__(self, jac=None, jvp=None, vjp=None):
        self.jac, self._jvp, self._vjp = jac, jvp, vjp

    def jvp(self, v):
        return _dense.dot(self.jac, v) if self.jac is not None else self._jvp(v)

    def vjp(self, w):
        return _dense.dot(self.jac.T, w) if self.jac is not None else self._vjp(w)

    def jtj(self, v):
        """:math:`J^\\top J v`."""
        return self.vjp(self.jvp(v))

    def jtj_diag(self, n, dtype):
        """The diagonal of :math:`J^\\top J`: column norms :math:`\\|J e_j\\|^2`."""
        if self.jac is not None:
            return np.sum(self.jac * self.jac, axis=0)
        e = np.zeros(n, dtype)
        out = np.empty(n, dtype)
        for j in range(n):
            e[j] = 1
            c = self._jvp(e)
            out[j] = _dense.dot(c, c)
            e[j] = 0
        return out


class _Residuals:
    """``residual_fun`` and its Jacobian source (see the module docstring), on
    the ravelled params. Keeps the last linearisation, keyed by the params'
    bytes and the arguments' identities (LM re-uses it after a rejected step,
    when the params have not moved); ``init_state`` clears it, so arrays
    changed in place between runs are seen. One solver object should not be
    run from several threads at once."""

    def __init__(self, residual_fun, has_aux, jac_fun, jvp_fun, vjp_fun, owner=None):
        check_callable("residual_fun", residual_fun)
        check_callable("jac_fun", jac_fun, allow_none=True)
        check_callable("jvp_fun", jvp_fun, allow_none=True)
        check_callable("vjp_fun", vjp_fun, allow_none=True)
        self.fun, self.has_aux = residual_fun, has_aux
        self.jac_fun, self.jvp_fun, self.vjp_fun = jac_fun, jvp_fun, vjp_fun
        self._cache = None
        self._fd = FiniteDifferences(owner, message=(
            "no jac_fun, jvp_fun or vjp_fun was given, so the Jacobian of residual_fun is "
            "computed by central finite differences, the slow path: {two_n} evaluations of "
            "residual_fun per linearisation for its {n} parameters"))

    # -- residuals ---------------------------------------------------------
    def __call__(self, params, args, kwargs, shape=None):
        """``(r, aux)`` with ``r`` an array; ``shape``: the shape it must have."""
        out = self.fun(params, *args, **kwargs)
        if self.has_aux:
            if not (isinstance(out, tuple) and len(out) == 2):
                raise TypeError("residual_fun: expected (residual, aux) with has_aux=True, "
                                f"got {type(out).__name__}")
            out, aux = out
        else:
            aux = None
        if isinstance(out, tuple) and not self.has_aux:
            raise TypeError(f"residual_fun: returned a tuple of {len(out)}, not an array of "
                            f"residuals; did you mean has_aux=True (residual_fun returns "
                            f"(residuals, aux))?")
        r = np.asarray(out)
        if r.dtype.kind not in "fiub":
            raise TypeError(f"residual_fun: expected an array of residuals, got "
                            f"{type(out).__name__} of dtype {r.dtype}")
        if r.dtype.kind != "f":
            r = r.astype(np.float64)
        if shape is not None and r.shape != tuple(shape):
            raise ValueError(f"residual_fun: returned residuals of shape {r.shape}, expected "
                             f"{tuple(shape)} (their shape at init_state)")
        return r, aux

    def reset(self):
        self._cache = None

    def _flat(self, shape, args, kwargs):
        """The ravelled residuals as a function of the params tree."""
        return lambda params: self(params, args, kwargs, shape)[0].ravel()

    # -- the Jacobian --------------------------------------------------------
    def _key(self, x, args, kwargs):
        return (x.dtype.str, x.tobytes(), tuple(map(id, args)),
                tuple(sorted((k, id(v)) for k, v in kwargs.items())))

    def linearize(self, x, unravel, r, args, kwargs):
        """The ``_Linearization`` at the ravelled params ``x`` (residuals ``r``)."""
        key = self._key(x, args, kwargs)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        lin = self._linearize(x, unravel, r, args, kwargs)
        self._cache = (key, lin, args, kwargs)      # args kept alive: their ids stay valid
        return lin

    def dense_jacobian(self, x, unravel, r, args, kwargs):
        lin = self.linearize(x, unravel, r, args, kwargs)
        if lin.jac is None:
            lin.jac = self._from_products(lin, x.size, r.size, x.dtype)
        return lin.jac

    def _linearize(self, x, unravel, r, args, kwargs):
        m, n = r.size, x.size
        params = unravel(x)
        if self.jac_fun is not None:
            return _Linearization(jac=self._user_jac(params, x, r, args, kwargs))
        if self.jvp_fun is not None or self.vjp_fun is not None:
            flat_r = lambda w: w.reshape(r.shape)
            jvp = vjp = None
            if self.jvp_fun is not None:
                def jvp(v):
                    out = np.asarray(self.jvp_fun(params, unravel(v), *args, **kwargs))
                    if out.size != m:
                        raise ValueError(f"jvp_fun: returned shape {out.shape}, expected the "
                                         f"residuals' shape {r.shape}")
                    return out.ravel()
            if self.vjp_fun is not None:
                def vjp(w):
                    out = self.vjp_fun(params, flat_r(w), *args, **kwargs)
                    base.check_grad_structure(out, params, "vjp_fun")
                    return T.ravel(out)[0]
            lin = _Linearization(jvp=jvp, vjp=vjp)
            if jvp is None or vjp is None:
                lin.jac = self._from_products(lin, n, m, x.dtype)
            return lin
        return _Linearization(jac=self._fd_jacobian(x, unravel, r, args, kwargs))

    def _user_jac(self, params, x, r, args, kwargs):
        J = np.asarray(self.jac_fun(params, *args, **kwargs))
        m, n = r.size, x.size
        if J.shape not in ((m, n), tuple(r.shape) + np.shape(params)):
            raise ValueError(f"jac_fun: expected a Jacobian of shape {(m, n)} (residuals x "
                             f"ravelled params), got {J.shape}")
        return J.reshape(m, n)

    @staticmethod
    def _from_products(lin, n, m, dtype):
        if lin._jvp is not None:            # n JVPs with the unit vectors
            cols, size = lin._jvp, n
        else:                               # m VJPs: the rows
            cols, size = lin._vjp, m
        e = np.zeros(size, dtype)
        out = []
        for j in range(size):
            e[j] = 1
            out.append(cols(e))
            e[j] = 0
        J = np.stack(out, axis=1) if out else np.zeros((m if lin._jvp else n, 0), dtype)
        return J if lin._jvp is not None else J.T

    def _fd_jacobian(self, x, unravel, r, args, kwargs):
        """Central differences, one column per coordinate (``npopt._finite_diff``:
        float32 params in float64 when residual_fun computes in float64)."""
        return self._fd.jacobian(lambda p: self(p, args, kwargs, r.shape)[0], unravel(x),
                                 dtype=np.result_type(r.dtype, x.dtype))

    # -- second derivatives (LM's geodesic acceleration) -----------------------
    def second_directional(self, x, unravel, r, v, args, kwargs):
        r""":math:`r''(x)[v, v]` by central differences (``npopt._finite_diff``):
        of ``J v`` when the Jacobian is known (``directional``), else the
        second difference of ``r`` (``second_directional``)."""
        if not _dense.norm(v) > 0:
            return np.zeros(r.size, r.dtype)
        if self.jac_fun is not None or self.jvp_fun is not None:
            return FD.directional(
                lambda y: self._linearize(y, unravel, r, args, kwargs).jvp(v), x, v)
        out = self._fd.second_directional(self._flat(r.shape, args, kwargs), x, unravel, v,
                                          r.ravel())
        return out.astype(np.result_type(r.dtype, x.dtype), copy=False)

    def hessians(self, x, unravel, r, args, kwargs):
        r"""jaxopt's ``hess_res``, :math:`H_{ijk} = \partial^2 r_i / \partial x_j
        \partial x_k`, shape ``(m, n, n)``: central differences of ``jac_fun``,
        or without it the four-point stencil of ``r`` (``npopt._finite_diff``)."""
        dtype = np.result_type(r.dtype, x.dtype)
        if self.jac_fun is not None:
            cols = FD.central(lambda y: self._user_jac(unravel(y), x, r, args, kwargs), x)
            if not cols:
                return np.zeros((r.size, x.size, 0), dtype)
            return np.stack(cols, axis=2).astype(dtype, copy=False)
        H = self._fd.hessian(self._flat(r.shape, args, kwargs), x, unravel)
        return H.astype(dtype, copy=False)


# --------------------------------------------------------------------------

@dataclass(eq=False)
class GaussNewton(base.IterativeSolver):
    """Gauss-Newton nonlinear least-squares solver (see the module docstring).

    Finds a local minimum of ``0.5 * sum(residual_fun(x, *args, **kwargs) ** 2)``.

    Attributes:
      residual_fun: ``residual_fun(x, *args, **kwargs)`` -> array of residuals
        (``(residuals, aux)`` with ``has_aux``); ``x`` may be a pytree.
      maxiter: maximum number of iterations (30).
      tol: stop when the norm of the Gauss-Newton step is <= tol (1e-5).
      implicit_diff, implicit_diff_solve: see ``npopt.implicit_diff``.
      has_aux: ``residual_fun`` returns ``(residuals, aux)``.
      verbose: print one line per iteration.
      jit, unroll: accepted for compatibility; nothing is compiled.
      jac_fun, jvp_fun, vjp_fun: where the Jacobian comes from (npopt; module
        docstring); all None: central finite differences.
      optimality_jvp, optimality_vjp: exact derivatives of ``optimality_fun``
        for implicit differentiation (see ``npopt.implicit_diff``).
    """
    residual_fun: Callable
    maxiter: int = 30
    tol: float = 1e-5
    implicit_diff: bool = True
    implicit_diff_solve: Optional[Callable] = None
    has_aux: bool = False
    verbose: Union[bool, int] = False
    jit: bool = True
    unroll: Any = "auto"
    jac_fun: Optional[Callable] = None
    jvp_fun: Optional[Callable] = None
    vjp_fun: Optional[Callable] = None
    optimality_jvp: Optional[Callable] = None   # see npopt.implicit_diff
    optimality_vjp: Optional[Callable] = None

    implicit_diff_symmetric = True      # optimality_fun is the gradient J^T r

    def __post_init__(self):
        super().__post_init__()
        self._res = _Residuals(self.residual_fun, self.has_aux, self.jac_fun, self.jvp_fun,
                               self.vjp_fun, owner=type(self).__name__)

    def _linearize(self, params, args, kwargs, shape=None):
        base.dtype_of(params, "params")
        r, aux = self._res(params, args, kwargs, shape)
        x, unravel = T.ravel(params)
        lin = self._res.linearize(x, unravel, r, args, kwargs)
        gradient = unravel(lin.vjp(r.ravel()))
        return r, aux, x, unravel, lin, gradient

    def init_state(self, init_params, *args, **kwargs):
        """The GaussNewtonState at ``init_params`` (error = inf, delta = init_params)."""
        base.dtype_of(init_params)
        self._res.reset()
        r, aux, x, _, _, gradient = self._linearize(init_params, args, kwargs)
        return GaussNewtonState(iter_num=np.asarray(0), residual=r,
                                value=0.5 * np.sum(np.square(r)), delta=init_params,
                                error=np.asarray(np.inf, x.dtype), gradient=gradient, aux=aux)

    def update(self, params, state, *args, **kwargs):
        """One Gauss-Newton step ``x - (J^T J)^{-1} J^T r``. Returns OptStep."""
        r, aux, x, unravel, lin, gradient = self._linearize(params, args, kwargs,
                                                            np.shape(state.residual))
        g = lin.vjp(r.ravel())
        with np.errstate(all="ignore"):
            if np.all(np.isfinite(g)):
                # an inner system: no warning when CG stops short (jaxopt's numbers)
                d = linear_solve.solve_cg(lin.jtj, g, check="ignore")
            else:
                d = np.full_like(g, np.nan)
            error = _dense.norm(d) if np.all(np.isfinite(d)) else np.nan
        delta = unravel(d)
        value = 0.5 * np.sum(np.square(r))
        state = GaussNewtonState(iter_num=state.iter_num + 1, residual=r, value=value,
                                 delta=delta, error=np.asarray(error, x.dtype),
                                 gradient=gradient, aux=aux)
        self.log_info(state, "Norm GN Update", {"Objective Value": value})
        return base.OptStep(unravel(x - d), state)

    def optimality_fun(self, params, *args, **kwargs):
        """The gradient ``J^T r`` of ``0.5 ||r||^2``: zero at a stationary point."""
        return self._linearize(params, args, kwargs)[5]
