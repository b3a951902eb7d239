"""Polyhedra: ``projection_hyperplane`` and ``projection_halfspace`` (closed
forms over pytrees), ``projection_affine_set`` (least squares),
``projection_polyhedron`` (least-distance programming) and
``projection_box_section`` (jaxopt's bisection).
"""
import numpy as np

from .. import _dense
from .. import tree as _tree
from .._checks import _describe, check_bool, check_number
from .._target import is_device_array
from ._args import _is_scalar, _leaf, _pair, _real_array, _tree_leaves_float, _vector


def _plane(x, hyperparams, relu):
    a, b = _pair("hyperparams", hyperparams, "(a, b)")
    leaves, treedef = _tree_leaves_float("x", x)
    try:
        a_leaves = treedef.flatten_up_to(a, "hyperparams[0] (a)")
    except ValueError as e:
        raise ValueError(f"hyperparams[0] (a): expected a pytree with the structure of x; {e}") \
            from None
    a_leaves = [_leaf("hyperparams[0] (a)", v) for v in a_leaves]
    for v, av in zip(leaves, a_leaves):
        if av.shape != v.shape:
            raise ValueError(f"hyperparams[0] (a): expected the shapes of x's leaves, got shape "
                             f"{av.shape} for a leaf of shape {v.shape}")
    if not _is_scalar(b):
        raise TypeError(f"hyperparams[1] (b): expected a scalar, got {_describe(b)}")
    aa = _tree.tree_vdot(a_leaves, a_leaves)
    if not aa > 0:
        raise ValueError("hyperparams[0] (a): expected a non-zero normal vector, got a = 0")
    ax = _tree.tree_vdot(a_leaves, leaves)
    num = ax - b
    if relu:
        num = np.maximum(num, 0)
    scale = num / aa
    return treedef.unflatten([np.asarray(v + (-scale) * av, v.dtype)
                              for v, av in zip(leaves, a_leaves)])


def projection_hyperplane(x, hyperparams):
    r"""Projection onto the hyperplane ``{p : <a, p> = b}``:
    ``p = x - ((<a, x> - b) / <a, a>) a``.

    Args:
      x: pytree to project.
      hyperparams: tuple ``(a, b)``: ``a`` a non-zero pytree with the structure
        and shapes of ``x``, ``b`` a scalar.
    Returns:
      output pytree, with the same structure as ``x``.
    """
    return _plane(x, hyperparams, relu=False)


def projection_halfspace(x, hyperparams):
    r"""Projection onto the halfspace ``{p : <a, p> <= b}``:
    ``p = x - (max(<a, x> - b, 0) / <a, a>) a``.

    Args:
      x: pytree to project.
      hyperparams: tuple ``(a, b)``: ``a`` a non-zero pytree with the structure
        and shapes of ``x``, ``b`` a scalar.
    Returns:
      output pytree, with the same structure as ``x``.
    """
    return _plane(x, hyperparams, relu=True)


# ---------------------------------------------------------------------------
# affine sets and polyhedra
# ---------------------------------------------------------------------------

def _matrix_rhs(x, M, v, mname, vname):
    """Constraint data (M, v) for a 1-D x as float64; None/None means none."""
    n = x.shape[0]
    if M is None and v is None:
        return np.zeros((0, n)), np.zeros(0)
    M = _real_array(mname, M)
    v = _real_array(vname, v)
    if is_device_array(M) or is_device_array(v):
        raise TypeError(f"{mname}: expected a host (NumPy) array, got a CUDA array")
    if M.ndim != 2 or M.shape[1] != n:
        raise ValueError(f"{mname}: expected a matrix with {n} columns (the length of x), "
                         f"got shape {M.shape}")
    if v.ndim != 1 or v.shape[0] != M.shape[0]:
        raise ValueError(f"{vname}: expected a vector of length {M.shape[0]} (the rows of "
                         f"{mname.split(' ')[-1].strip('()')}), got shape {v.shape}")
    M = M.astype(np.float64)
    v = v.astype(np.float64)
    if not (np.all(np.isfinite(M)) and np.all(np.isfinite(v))):
        raise ValueError(f"{mname}, {vname}: expected finite values")
    return M, v


def _affine_part(x, A, b, rtol):
    """The projection onto {A y = b}: y = x - A^+ (A x - b), and A's null space.

    Returns (y_p, N) with y_p in the set and N an orthonormal basis of
    null(A), or raises if the set is empty.
    """
    n = x.shape[0]
    if A.shape[0] == 0:
        return np.zeros(n), np.eye(n)
    U, s, V = _dense.svd(A)                 # fixed-order Jacobi SVD, not LAPACK
    tol_rank = s[0] * max(A.shape) * np.finfo(np.float64).eps if s.size else 0.0
    r = int(np.sum(s > tol_rank))
    y_p = _dense.dot(V[:, :r], _dense.dot(U[:, :r].T, b) / s[:r])
    resid = _dense.norm(_dense.dot(A, y_p) - b)
    if resid > rtol * ((s[0] if s.size else 0.0) * _dense.norm(y_p) + _dense.norm(b) + 1e-300) \
            and resid > 0:
        raise ValueError("The polyhedron is empty.")
    return y_p, np.ascontiguousarray(V[:, r:])


def projection_affine_set(x, hyperparams):
    r"""Projection onto the affine set ``{y : A y = b}``.

    The solution is ``y = x - A^+ (A x - b)`` (``A^+`` the pseudo-inverse;
    ``x - A^T (A A^T)^{-1} (A x - b)`` when A has full row rank), computed in
    float64 by least squares. jaxopt solves the KKT system of the same QP with
    GMRES (tolerance 1e-5); npopt's answer is exact to rounding, and a
    rank-deficient but consistent ``A`` is fine.

    Args:
      x: array to project, shape (n,).
      hyperparams: tuple ``(A, b)``, ``A`` a matrix (p, n) and ``b`` a vector (p,).
    Returns:
      output array, with the same shape and dtype as ``x``.
    Raises:
      ValueError: if ``b`` is not in the range of ``A`` (the set is empty).
    """
    A, b = _pair("hyperparams", hyperparams, "(A, b)")
    x = _vector("x", x)
    if x.ndim != 1:
        raise ValueError(f"x: expected a vector (1-D array), got {_describe(x)}")
    A, b = _matrix_rhs(x, A, b, "hyperparams[0] (A)", "hyperparams[1] (b)")
    x64 = x.astype(np.float64)
    if A.shape[0] == 0:
        return x.copy()
    U, s, V = _dense.svd(A)                 # fixed-order Jacobi SVD, not LAPACK
    r = int(np.sum(s > s[0] * max(A.shape) * np.finfo(np.float64).eps)) if s.size else 0
    d = _dense.dot(V[:, :r], _dense.dot(U[:, :r].T, _dense.dot(A, x64) - b) / s[:r])
    y = x64 - d
    resid = _dense.norm(_dense.dot(A, y) - b)
    scale = (s[0] if s.size else 0.0) * _dense.norm(y) + _dense.norm(b)
    if resid > 1e-8 * scale and resid > 0:
        raise ValueError("hyperparams: the affine set {y : A y = b} is empty (b is not in the "
                         f"range of A; residual {resid:.3g})")
    return y.astype(x.dtype)


def _ldp(G, e, tol):
    """Least-distance programming: argmin ||w|| s.t. G w <= e (Lawson & Hanson, ch. 23).

    With the constraints written ``(-G) w >= -e`` and each row normalised,
    solve the NNLS problem ``min_{u >= 0} ||E u - f||``, ``E = [-G^T; -e^T]``,
    ``f = (0, ..., 0, 1)``. If the residual ``r = E u - f`` is zero the
    constraints are inconsistent; otherwise ``w = -r[:n] / r[n]``, and
    ``lambda = u / (-r[n])`` are the multipliers (active where u > 0).
    Returns (w, active) or (None, None) when infeasible.
    """
    k = G.shape[1]
    scale = np.sqrt(np.sum(G * G, axis=1) + e * e)
    keep = scale > 0
    G, e, scale = G[keep], e[keep], scale[keep]
    if G.shape[0] == 0:
        return np.zeros(k), np.zeros(0, bool)
    Gn = G / scale[:, None]
    en = e / scale
    E = np.vstack([-Gn.T, -en[None, :]])
    f = np.zeros(k + 1)
    f[k] = 1.0
    u, rnorm = _dense.nnls(E, f, maxiter=max(50 * E.shape[1], 1000))
    r = _dense.dot(E, u) - f
    if rnorm <= tol or -r[k] <= tol:
        return None, None
    w = -r[:k] / r[k]
    active = np.zeros(keep.shape[0], bool)
    active[np.flatnonzero(keep)[u > 0]] = True
    return w, active


def projection_polyhedron(x, hyperparams, check_feasible=True, *, tol=1e-10):
    r"""Projection onto the polyhedron ``{y : A y = b, G y <= h}``.

    jaxopt solves this QP with OSQP (ADMM, tolerance 1e-3). npopt has a
    small exact method instead, in float64:

    1. Equalities: with ``A = U S V^T``, ``y = y_p + N z`` where
       ``y_p = A^+ b`` and ``N`` spans null(A); the problem becomes projecting
       ``z0 = N^T (x - y_p)`` onto ``{z : (G N) z <= h - G y_p}``.
    2. That is a least-distance problem ``min ||w||  s.t.  G' w <= e``
       (``w = z - z0``), solved through one non-negative least-squares
       problem (Lawson & Hanson 1974, ch. 23; scipy's Lawson-Hanson NNLS),
       which also detects an empty polyhedron.
    3. Polish: with the active set found by NNLS, the equality-constrained
       projection is re-solved by least squares and kept if it is feasible
       (to ``tol``) with non-negative multipliers.

    Args:
      x: array to project, shape (n,).
      hyperparams: tuple ``(A, b, G, h)``: ``A`` (p, n), ``b`` (p,), ``G`` (q, n),
        ``h`` (q,). ``A, b`` or ``G, h`` may be ``None, None`` (no such
        constraints; an npopt extension).
      check_feasible: accepted for compatibility. npopt always detects an
        empty polyhedron (LDP finds it at no cost) and raises.
      tol: npopt extension: tolerance of the emptiness test (relative to the
        normalised constraints) and of the feasibility check of the polish.
    Returns:
      output array, with the same shape and dtype as ``x``.
    Raises:
      ValueError("The polyhedron is empty.") as jaxopt does.
    """
    check_bool("check_feasible", check_feasible)
    tol = float(check_number("tol", tol, low=0.0, low_open=True))
    A, b, G, h = _pair("hyperparams", hyperparams, "(A, b, G, h)", k=4)
    x = _vector("x", x)
    if x.ndim != 1:
        raise ValueError(f"x: expected a vector (1-D array), got {_describe(x)}")
    A, b = _matrix_rhs(x, A, b, "hyperparams[0] (A)", "hyperparams[1] (b)")
    G, h = _matrix_rhs(x, G, h, "hyperparams[2] (G)", "hyperparams[3] (h)")
    x64 = x.astype(np.float64)
    y_p, N = _affine_part(x64, A, b, max(tol, 1e-12))
    z0 = _dense.dot(N.T, x64 - y_p)
    if G.shape[0] == 0:
        return (y_p + _dense.dot(N, z0)).astype(x.dtype)
    Gz = _dense.dot(G, N)
    e = h - _dense.dot(G, y_p) - _dense.dot(Gz, z0)             # constraints on w = z - z0: Gz w <= e
    if N.shape[1] == 0:                    # a single point: is it in {G y <= h}?
        if np.all(e >= -tol * (1 + np.abs(h))):
            return y_p.astype(x.dtype)
        raise ValueError("The polyhedron is empty.")
    if np.all(e >= 0):
        w = np.zeros(N.shape[1])
    else:
        w, active = _ldp(Gz, e, tol)
        if w is None:
            raise ValueError("The polyhedron is empty.")
        # polish on the active set: min ||w|| s.t. Gz_I w = e_I
        if np.any(active):
            GI = Gz[active]
            lam = _dense.lstsq(_dense.dot(GI, GI.T), -e[active])[0]
            w_pol = -_dense.dot(GI.T, lam)
            viol = _dense.dot(Gz, w_pol) - e
            gscale = np.sqrt(np.sum(Gz * Gz, axis=1)) * (_dense.norm(w_pol) + 1) + np.abs(e)
            if (np.all(viol <= tol * gscale) and np.all(lam >= -tol * (1 + np.abs(lam).max()))
                    and np.allclose(_dense.dot(GI, w_pol), e[active], rtol=0,
                                    atol=tol * (1 + np.abs(e[active]).max()))):
                w = w_pol
    return (y_p + _dense.dot(N, z0 + w)).astype(x.dtype)


# ---------------------------------------------------------------------------
# box section (jaxopt's bisection, ported)
# ---------------------------------------------------------------------------

def projection_box_section(x, hyperparams, check_feasible=False):
    r"""Projection onto a box section
    ``{p : alpha <= p <= beta, <w, p> = c}`` (``w > 0``).

    An optimal solution has the form ``p(tau) = clip(x + tau w, alpha, beta)``
    where ``tau`` is the root of the non-decreasing, piecewise-linear
    ``phi(tau) = <w, p(tau)> - c``. As jaxopt, ``tau`` is found by bisection
    on ``[min((alpha - x)/w), max((beta - x)/w)]`` (jaxopt's ``Bisection``
    with its defaults: at most 30 midpoints, stopping once ``|phi| <= 1e-5``,
    in float64), so the result is jaxopt's and ``<w, p> = c`` holds to about
    1e-5. The problem is infeasible if ``<w, alpha> > c`` or ``<w, beta> < c``.

    Args:
      x: vector to project, an array of shape (n,).
      hyperparams: tuple ``(alpha, beta, w, c)``: ``alpha``, ``beta`` and ``w``
        arrays of the shape of ``x`` (or scalars), ``alpha <= beta``, ``w > 0``;
        ``c`` a scalar.
      check_feasible: whether to check ``<w, alpha> <= c <= <w, beta>`` (the
        messages are jaxopt's).
    Returns:
      projected vector, with the same shape and dtype as ``x``.
    """
    check_bool("check_feasible", check_feasible)
    alpha, beta, w, c = _pair("hyperparams", hyperparams, "(alpha, beta, w, c)", k=4)
    x = _vector("x", x)
    if x.ndim != 1:
        raise ValueError(f"x: expected a vector (1-D array), got {_describe(x)}")
    arrs = []
    for nm, v in (("hyperparams[0] (alpha)", alpha), ("hyperparams[1] (beta)", beta),
                  ("hyperparams[2] (w)", w)):
        v = _real_array(nm, v)
        if is_device_array(v):
            raise TypeError(f"{nm}: expected a host (NumPy) array, got a CUDA array")
        if v.ndim and v.shape != x.shape:
            raise ValueError(f"{nm}: expected an array of the shape {x.shape} of x (or a "
                             f"scalar), got shape {v.shape}")
        if v.dtype.kind != "f":
            v = v.astype(np.float64)
        arrs.append(np.broadcast_to(v, x.shape))
    alpha, beta, w = arrs
    if not _is_scalar(c):
        raise TypeError(f"hyperparams[3] (c): expected a scalar, got {_describe(c)}")
    if np.any(alpha > beta):
        raise ValueError("hyperparams[0] (alpha), hyperparams[1] (beta): expected alpha <= beta, "
                         f"got alpha > beta at {int(np.sum(alpha > beta))} entries")
    if not np.all(w > 0):
        raise ValueError("hyperparams[2] (w): expected w > 0 everywhere")
    if check_feasible:
        if _dense.dot(w, alpha) > c:
            raise ValueError("alpha should satisfy dot(w, alpha) <= c")
        if _dense.dot(w, beta) < c:
            raise ValueError("beta should satisfy dot(w, beta) >= c")
    # bracket, in the inputs' dtype, then float64 (jnp.asarray(lower, float))
    lower = np.float64(np.min((alpha - x) / w))
    upper = np.float64(np.max((beta - x) / w))

    def phi(tau):
        p = np.clip(w * tau + x, alpha, beta)
        return _dense.dot(w, p) - c

    tau = _bisection(phi, lower, upper, maxiter=30, tol=1e-5)
    return np.clip(w * tau + x, alpha, beta).astype(x.dtype)


def _bisection(fun, lower, upper, maxiter, tol):
    """jaxopt.Bisection.run with check_bracket=False: the last midpoint.

    sign = +1 if fun(lower) < 0 <= fun(upper), -1 if fun(lower) > 0 >= fun(upper),
    else 0 (then every midpoint becomes the new ``low``). One step is always
    taken, then steps while ``|fun(mid)| > tol``, at most ``maxiter`` in all.
    """
    lo_v, hi_v = fun(lower), fun(upper)
    if lo_v < 0 and hi_v >= 0:
        sign = 1
    elif lo_v > 0 and hi_v <= 0:
        sign = -1
    else:
        sign = 0
    low, high = lower, upper
    tau = None
    for _ in range(maxiter):
        tau = np.float64(0.5) * (high + low)
        value = fun(tau)
        error = np.sqrt(value ** 2)
        if sign * value > 0:
            high = tau
        else:
            low = tau
        if not error > tol:
            break
    return tau
