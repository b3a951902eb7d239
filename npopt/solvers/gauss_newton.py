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
        self.owner = owner
        self._warned = owner is None
        self._float64 = None        # False once residual_fun was seen not to give float64

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

    def flat_fun(self, unravel, shape, args, kwargs):
        return lambda x: self(unravel(x), args, kwargs, shape)[0].ravel()

    def _fd_fun(self, x, unravel, shape, args, kwargs):
        """``(f, x, first)`` for finite differences of the residuals: in float64
        (``f`` maps float64 points to float64 residuals, ``x`` cast) when the
        params are float32 and ``residual_fun`` computes in float64 on float64
        input, else the native ``flat_fun`` at ``x``. ``first(z)`` evaluates
        the first point, deciding: a float32 result or an exception turns the
        float64 path off for this instance (and returns None: start again
        natively)."""
        native = self.flat_fun(unravel, shape, args, kwargs)
        table = getattr(unravel, "segment_table", None)
        leaf_dtypes = set(table.dtypes) if table is not None else {x.dtype}
        if leaf_dtypes <= {np.dtype(np.float64)} or self._float64 is False or not x.size:
            # differenced in the leaves' precision (the points are cast to it)
            dtype = np.result_type(np.float32, *leaf_dtypes) if leaf_dtypes else x.dtype
            x = x.astype(dtype, copy=False)
            return native, x, native
        _, unravel64 = T.ravel(T.tree_map(lambda leaf: np.asarray(leaf, np.float64),
                                          unravel(x)))

        def f64(z):
            return self(unravel64(z), args, kwargs, shape)[0].ravel()

        def first(z):
            try:
                out = f64(z)
            except Exception:       # noqa: BLE001 (residual_fun takes float32 only)
                self._float64 = False
                return None
            if out.dtype != np.float64:
                self._float64 = False
                return None
            return out
        return f64, x.astype(np.float64), first

    def _warn_fd(self, n):
        if self._warned or n == 0:
            return
        self._warned = True
        base.warn(f"npopt.{self.owner}: no jac_fun, jvp_fun or vjp_fun was given, so the "
                  f"Jacobian of residual_fun is computed by central finite differences, the "
                  f"slow path: {2 * n} evaluations of residual_fun per linearisation for its "
                  f"{n} parameters", base.FiniteDifferenceWarning)

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
        """Central differences, one column per coordinate (module docstring);
        float32 params are differenced in float64 when residual_fun computes
        in float64 (see ``_fd_fun``), the Jacobian cast back to float32."""
        self._warn_fd(x.size)
        out_dtype = np.result_type(r.dtype, x.dtype)
        f, xw, first = self._fd_fun(x, unravel, r.shape, args, kwargs)
        dtype = xw.dtype
        h = np.finfo(dtype).eps ** (1.0 / 3.0) * np.maximum(1.0, np.abs(xw))
        J = np.empty((r.size, x.size), np.result_type(r.dtype, dtype))
        xp = xw.copy()
        for j in range(x.size):
            xp[j] = xw[j] + h[j]
            fp = (first if j == 0 else f)(xp.copy())
            if fp is None:                      # no float64 after all
                return self._fd_jacobian(x, unravel, r, args, kwargs)
            xp[j] = xw[j] - h[j]
            fm = f(xp.copy())
            xp[j] = xw[j]
            J[:, j] = (fp - fm) / (2 * h[j])
        return J.astype(out_dtype, copy=False)

    # -- second derivatives (LM's geodesic acceleration) -----------------------
    def second_directional(self, x, unravel, r, v, args, kwargs):
        r""":math:`r''(x)[v, v]` by central differences: of ``J v`` when the
        Jacobian is known (:math:`h = \epsilon^{1/3}\max(1,\|x\|)/\|v\|`),
        else the second difference of ``r`` (:math:`h = \epsilon^{1/4}\ldots`)."""
        nv = _dense.norm(v)
        if not nv > 0:
            return np.zeros(r.size, r.dtype)
        eps = np.finfo(x.dtype).eps
        scale = max(1.0, float(_dense.norm(x))) / nv
        if self.jac_fun is not None or self.jvp_fun is not None:
            h = eps ** (1.0 / 3.0) * scale

            def jv(y):
                return self._linearize(y, unravel, r, args, kwargs).jvp(v)
            return (jv(x + h * v) - jv(x - h * v)) / (2 * h)
        f, xw, first = self._fd_fun(x, unravel, r.shape, args, kwargs)
        vw = v.astype(xw.dtype)
        h = np.finfo(xw.dtype).eps ** 0.25 * scale
        fp = first(xw + h * vw)
        if fp is None:                          # no float64 after all
            return self.second_directional(x, unravel, r, v, args, kwargs)
        r0 = r.ravel() if xw.dtype == x.dtype else f(xw)
        out = (fp - 2 * r0 + f(xw - h * vw)) / (h * h)
        return out.astype(np.result_type(r.dtype, x.dtype), copy=False)

    def hessians(self, x, unravel, r, args, kwargs):
        r"""jaxopt's ``hess_res``, :math:`H_{ijk} = \partial^2 r_i / \partial x_j
        \partial x_k`, shape ``(m, n, n)``: central differences of ``jac_fun``
        (:math:`h_k = \epsilon^{1/3}\max(1,|x_k|)`), or without it the
        four-point stencil of ``r`` (:math:`h = \epsilon^{1/4}\max(1,|x|)`)."""
        m, n = r.size, x.size
        H = np.empty((m, n, n), np.result_type(r.dtype, x.dtype))
        eps = np.finfo(x.dtype).eps
        if self.jac_fun is not None:
            h = eps ** (1.0 / 3.0) * np.maximum(1.0, np.abs(x))
            for k in range(n):
                e = np.zeros(n, x.dtype)
                e[k] = h[k]
                Jp = self._user_jac(unravel(x + e), x, r, args, kwargs)
                Jm = self._user_jac(unravel(x - e), x, r, args, kwargs)
                H[:, :, k] = (Jp - Jm) / (2 * h[k])
            return H
        f, xw, first = self._fd_fun(x, unravel, r.shape, args, kwargs)
        h = np.finfo(xw.dtype).eps ** 0.25 * np.maximum(1.0, np.abs(xw))
        for j in range(n):
            for k in range(j, n):
                ej = np.zeros(n, xw.dtype)
                ek = np.zeros(n, xw.dtype)
                ej[j], ek[k] = h[j], h[k]
                fpp = (first if j == k == 0 else f)(xw + ej + ek)
                if fpp is None:                 # no float64 after all
                    return self.hessians(x, unravel, r, args, kwargs)
                d = (fpp - f(xw + ej - ek) - f(xw - ej + ek) + f(xw - ej - ek))
                H[:, j, k] = H[:, k, j] = d / (4 * h[j] * h[k])
        return H


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
