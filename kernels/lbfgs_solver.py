"""Flat-buffer kernels of the quasi-Newton solvers (npopt.solvers.lbfgs,
npopt.solvers.lbfgsb and the line searches): axpy, chunked dot products, the
L-BFGS history update, the two-loop recursion and L-BFGS-B's Cauchy-point
walk.

Vectors are 1-D contiguous arrays of length n; the L-BFGS history is a pair
of C-contiguous (m, n) arrays ``s`` (``s_k = x_{k+1} - x_k``) and ``y``
(``y_k = g_{k+1} - g_k``), a ring buffer whose slot ``start - 1`` (mod m)
holds the newest pair.

Dot products are deterministic: sums over fixed chunks of ``CHUNK`` elements,
each chunk summed serially, the chunk sums added in index order (so the
result depends neither on the thread count nor on the CUDA grid). They
return the real part of ``sum conj(x_i) y_i`` (jaxopt's ``tree_vdot_real``)
for real and complex arrays alike. ``x + a * y`` is written so that FMA
contraction gives ``fma(a, y, x)``, as jitted XLA computes
``tree_add_scalar_mul``.
"""
from numba import njit, prange

from ._jit import CHUNK, CPU_OPTIONS, cpu_kernel, cuda, cuda_kernel, rule


@rule
def axpy_rule(x, a, y):
    """``x + a * y`` (contracted to ``fma(a, y, x)``)."""
    return x + a * y


@cpu_kernel
def axpy_cpu(x, a, y, out):
    """out[i] = x[i] + a * y[i]; x, y, out: 1-D (n,) of one dtype, a: a scalar
    of that dtype (or its real dtype for complex arrays). out may alias x."""
    for i in prange(x.shape[0]):
        out[i] = axpy_rule(x[i], a, y[i])


@cuda_kernel
def axpy_cuda(x, a, y, out):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        out[i] = axpy_rule(x[i], a, y[i])


@cpu_kernel
def scale_cpu(x, a, out):
    """out[i] = a * x[i] (out may alias x)."""
    for i in prange(x.shape[0]):
        out[i] = a * x[i]


@cuda_kernel
def scale_cuda(x, a, out):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        out[i] = a * x[i]


@rule
def vdot_real_rule(acc, x, y):
    """``acc + Re(conj(x) y)`` (for real x, y: ``fma(x, y, acc)``)."""
    return acc + (x.conjugate() * y).real


@cpu_kernel
def dot_chunks_cpu(x, y, zero, partial):
    """partial[k] = Re sum conj(x_i) y_i over chunk k (CHUNK elements), summed
    serially from ``zero`` (a real scalar of the arrays' real dtype).
    partial: (ceil(n / CHUNK),)."""
    n = x.shape[0]
    for k in prange(partial.shape[0]):
        acc = zero
        for i in range(k * CHUNK, min((k + 1) * CHUNK, n)):
            acc = vdot_real_rule(acc, x[i], y[i])
        partial[k] = acc


@cuda_kernel
def dot_chunks_cuda(x, y, zero, partial):
    n = x.shape[0]
    for k in range(cuda.grid(1), partial.shape[0], cuda.gridsize(1)):
        acc = zero
        for i in range(k * CHUNK, min((k + 1) * CHUNK, n)):
            acc = vdot_real_rule(acc, x[i], y[i])
        partial[k] = acc


@njit(**CPU_OPTIONS)
def combine(partial, zero):
    """The chunk sums added in index order."""
    acc = zero
    for k in range(partial.shape[0]):
        acc += partial[k]
    return acc


@cpu_kernel
def history_update_cpu(new_x, x, new_g, g, s_row, y_row, zero, partial):
    """One pass that stores the newest curvature pair and its dot products::

        s_row = new_x - x,   y_row = conj(new_g - g)
        partial[k, 0] = Re <s, y>,   partial[k, 1] = <y, y>   over chunk k

    All vectors (n,); s_row, y_row: rows of the (m, n) history (contiguous);
    partial: (ceil(n / CHUNK), 2), combined on the host in chunk order."""
    n = new_x.shape[0]
    for k in prange(partial.shape[0]):
        sy = zero
        yy = zero
        for i in range(k * CHUNK, min((k + 1) * CHUNK, n)):
            si = new_x[i] - x[i]
            yi = (new_g[i] - g[i]).conjugate()
            s_row[i] = si
            y_row[i] = yi
            sy = vdot_real_rule(sy, si, yi)
            yy = vdot_real_rule(yy, yi, yi)
        partial[k, 0] = sy
        partial[k, 1] = yy


@cpu_kernel
def two_loop_cpu(r, s, y, rho, gamma, start, zero, alpha, partial):
    """The L-BFGS two-loop recursion (Nocedal & Wright, Algorithm 7.4), in place
    on ``r``: r <- H r with H the inverse-Hessian approximation of the
    history (s, y, rho) and initial matrix ``gamma * I``::

        for i = newest ... oldest:  alpha_i = rho_i <s_i, r>;  r = r - alpha_i y_i
        r = gamma r
        for i = oldest ... newest:  beta_i = rho_i <y_i, r>;   r = r + (alpha_i - beta_i) s_i

    The slots are visited as jaxopt's ``inv_hessian_product`` does: the
    indices ``(start + j) % m`` for j = m-1, ..., 0, then j = 0, ..., m-1.
    Empty slots have rho = 0 and s = y = 0 (no contribution).

    r: (n,); s, y: (m, n) C-contiguous; rho, alpha: (m,) real (alpha is
    scratch); gamma, zero: real scalars; start: int; partial: (ceil(n/CHUNK),)
    real scratch for the dot products.
    """
    m = s.shape[0]
    n = r.shape[0]
    nchunks = partial.shape[0]
    for j in range(m - 1, -1, -1):
        i = (start + j) % m
        for k in prange(nchunks):
            acc = zero
            for e in range(k * CHUNK, min((k + 1) * CHUNK, n)):
                acc = vdot_real_rule(acc, s[i, e], r[e])
            partial[k] = acc
        d = zero
        for k in range(nchunks):
            d += partial[k]
        a = rho[i] * d
        alpha[i] = a
        na = -a
        for e in prange(n):
            r[e] = axpy_rule(r[e], na, y[i, e])
    for e in prange(n):
        r[e] = gamma * r[e]
    for j in range(m):
        i = (start + j) % m
        for k in prange(nchunks):
            acc = zero
            for e in range(k * CHUNK, min((k + 1) * CHUNK, n)):
                acc = vdot_real_rule(acc, y[i, e], r[e])
            partial[k] = acc
        d = zero
        for k in range(nchunks):
            d += partial[k]
        c = alpha[i] - rho[i] * d
        for e in prange(n):
            r[e] = axpy_rule(r[e], c, s[i, e])


@njit(**CPU_OPTIONS)
def cauchy_walk(i, df, ddf, t_ind, dt, g, x_bound, x, W, M, theta, eps, c, p, free):
    """The breakpoint walk of L-BFGS-B's generalised Cauchy point (Byrd, Lu,
    Nocedal & Zhu 1995, Algorithm CP), as jaxopt's ``_find_cauchy_point``
    loop: while the model's minimiser along the current segment,
    ``-f'/f''``, lies beyond the next breakpoint ``dt[i]``, cross it::

        c   += dt[i] p
        f'  += dt[i] f'' + g_j^2 + theta g_j (xb_j - x_j) - g_j w_j' M c
        f'' -= theta g_j^2 + 2 g_j w_j' M p + g_j^2 w_j' M w_j   (at least eps)
        p   += g_j w_j,   free[i] = False        (j = t_ind[i]: variable j hits its bound)

    i: the first breakpoint; df, ddf: f' and f'' at the start; t_ind (n,)
    int: the variables by increasing breakpoint; dt (n,): breakpoint
    increments; g, x_bound, x: (n,); W: (n, 2m); M: (2m, 2m); c, p: (2m,)
    and free (n,) bool (sorted order) updated in place. Returns (i, df, ddf).
    """
    n = x.shape[0]
    k = M.shape[0]
    while i < n and -df / ddf >= dt[i]:
        j = t_ind[i]
        gj = g[j]
        for a in range(k):
            c[a] = c[a] + dt[i] * p[a]
        wmc = 0.0 * theta
        wmp = 0.0 * theta
        wmw = 0.0 * theta
        for a in range(k):
            acc_c = 0.0 * theta
            acc_p = 0.0 * theta
            acc_w = 0.0 * theta
            for b in range(k):
                acc_c += M[a, b] * c[b]
                acc_p += M[a, b] * p[b]
                acc_w += M[a, b] * W[j, b]
            wmc += W[j, a] * acc_c
            wmp += W[j, a] * acc_p
            wmw += W[j, a] * acc_w
        df = df + dt[i] * ddf + gj * gj + theta * gj * (x_bound[j] - x[j]) - gj * wmc
        ddf = ddf - theta * gj * gj - (gj + gj) * wmp - gj * gj * wmw   # (gj + gj) = 2 gj
        if ddf <= eps:                  # jnp.maximum(eps, ddf): NaN stays NaN
            ddf = eps
        for a in range(k):
            p[a] = p[a] + gj * W[j, a]
        free[i] = False
        i += 1
    return i, df, ddf
