"""L-BFGS on flat buffers, for optax's transform and for jaxopt's solvers:
the curvature memory, the two-loop recursion, trial points, deterministic
dot products, and L-BFGS-B's Cauchy-point walk.

The two sides keep their memory in different layouts, so each has its own
kernels (the scalar rules ``axpy_rule``, ``acc_rule`` and ``vdot_real_rule``
are shared):

A. optax's ``scale_by_lbfgs``, leaf by leaf (``npopt.transforms.lbfgs``, and
   the trial points of ``npopt.transforms.linesearch``; their scalar rules
   are in ``linesearch.py``).

   Every loop that reduces (a dot product, a squared norm) runs over the chunk
   table made by the host (``npopt.transforms.lbfgs.chunk_table``): an int64
   array of shape (k, 5) with one row per chunk of at most ``CHUNK`` elements
   of one leaf::

       (start, stop, segment, base, n)

   ``[start, stop)`` indexes the flat vector (params, updates, the direction
   ``v``); ``segment`` is the leaf; ``base, n`` locate the leaf in a *memory*
   buffer, the ring buffer of ``m`` stacked leaves (``(m,) + leaf.shape`` each,
   laid end to end as ``Layout`` lays out any tree): element ``i`` of slot
   ``j`` is ``mem[i + base + j * n]``. Each chunk is summed serially into
   ``partial[k]`` (accumulated in the dtype of ``zero``); the host adds the
   chunk sums of a leaf in order, then the leaves in leaf order, so the result
   depends neither on the number of threads nor on the CUDA grid (see
   kernels/reduce.py).

   The first argument of every CPU kernel is a full-length vector, so that
   ``cpu_kernel`` picks the parallel build (a ``prange`` over chunks) for large
   problems.

   Dtypes: vectors and memory share the leaf dtype, except where a scalar is
   float64 for float32 leaves (``a`` below, the trial step ``s``): the
   arithmetic is then done in float64 and rounded once when stored, which is
   what optax computes under ``jax_enable_x64`` (float64 scalars promote).

B. jaxopt's quasi-Newton solvers (``npopt.solvers.lbfgs``,
   ``npopt.solvers.lbfgsb``, the line searches of ``npopt.solvers.linesearch``,
   and the compiled drivers of ``solver_machine.py``): axpy, chunked dot
   products, the L-BFGS history update, the two-loop recursion and
   L-BFGS-B's Cauchy-point walk.

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
def axpy_rule(v, a, x):
    """``v + a x``; jitted XLA contracts it into ``fma(a, x, v)``, as LLVM does
    here under the ``contract`` flag."""
    return v + a * x


@rule
def acc_rule(x, y, zero):
    """``x * y`` in the dtype of ``zero`` (the accumulator's: float64 for
    float32 data, where the product of two float32 numbers is exact)."""
    return (zero + x) * y


@rule
def vdot_real_rule(acc, x, y):
    """``acc + Re(conj(x) y)`` (for real x, y: ``fma(x, y, acc)``)."""
    return acc + (x.conjugate() * y).real


# ===========================================================================
# A. optax's scale_by_lbfgs: memories per leaf, reductions over a chunk table
# ===========================================================================

# ---------------------------------------------------------------------------
# A1. The new curvature pair (s_k, y_k) = (p - p_old, u - u_old)
# ---------------------------------------------------------------------------

@cpu_kernel
def pair_cpu(p, chunks, p_old, u, u_old, dw, du, slot, keep, zero, acc,
             p_keep, u_keep, v, partial):
    """Writes slot ``slot`` of the memories and copies the step's inputs.

    p, p_old, u, u_old, p_keep, u_keep, v: 1-D (n,) of the leaf dtype;
    dw, du: memories (m * n,); chunks: int64 (k, 5); slot: int; keep: bool
    (False at the first step, when the pair is zero as in optax); zero: 0
    of the leaf dtype; partial: (k, 4) of the leaf dtype receives per chunk
    ``[<dq, dp>, <dq, dq>, <u, u>, <dp, u>]`` with ``dp = p - p_old``,
    ``dq = u - u_old`` (zeros when not keep).

    ``p_keep``/``u_keep`` (the state's new params/updates) may be ``p_old``/
    ``u_old`` themselves (in-place step): each element is read before it is
    written. ``v`` receives a copy of ``u``: the two-loop recursion's start.
    """
    for k in prange(chunks.shape[0]):
        lo, hi = chunks[k, 0], chunks[k, 1]
        j = chunks[k, 3] + slot * chunks[k, 4]
        s_qp = acc
        s_qq = acc
        s_uu = acc
        s_pu = acc
        for i in range(lo, hi):
            pi = p[i]
            ui = u[i]
            dp = zero
            dq = zero
            if keep:
                dp = pi - p_old[i]
                dq = ui - u_old[i]
            dw[i + j] = dp
            du[i + j] = dq
            s_qp += acc_rule(dq, dp, acc)
            s_qq += acc_rule(dq, dq, acc)
            s_uu += acc_rule(ui, ui, acc)
            s_pu += acc_rule(dp, ui, acc)
            p_keep[i] = pi
            u_keep[i] = ui
            v[i] = ui
        partial[k, 0] = s_qp
        partial[k, 1] = s_qq
        partial[k, 2] = s_uu
        partial[k, 3] = s_pu


@cuda_kernel
def pair_cuda(p, chunks, p_old, u, u_old, dw, du, slot, keep, zero, acc,
               p_keep, u_keep, v, partial):
    for k in range(cuda.grid(1), chunks.shape[0], cuda.gridsize(1)):
        lo, hi = chunks[k, 0], chunks[k, 1]
        j = chunks[k, 3] + slot * chunks[k, 4]
        s_qp = acc
        s_qq = acc
        s_uu = acc
        s_pu = acc
        for i in range(lo, hi):
            pi = p[i]
            ui = u[i]
            dp = zero
            dq = zero
            if keep:
                dp = pi - p_old[i]
                dq = ui - u_old[i]
            dw[i + j] = dp
            du[i + j] = dq
            s_qp += acc_rule(dq, dp, acc)
            s_qq += acc_rule(dq, dq, acc)
            s_uu += acc_rule(ui, ui, acc)
            s_pu += acc_rule(dp, ui, acc)
            p_keep[i] = pi
            u_keep[i] = ui
            v[i] = ui
        partial[k, 0] = s_qp
        partial[k, 1] = s_qq
        partial[k, 2] = s_uu
        partial[k, 3] = s_pu


# ---------------------------------------------------------------------------
# A2. One pass of the two-loop recursion
# ---------------------------------------------------------------------------

@cpu_kernel
def two_loop_segments_cpu(v, chunks, a, x, xslot, g, y, yslot, zero, partial):
    """``v <- g * (v + a * x[xslot])``, then ``partial[k] = <y[yslot], v>``.

    One pass of Nocedal & Wright's Algorithm 7.4 fused with the dot product
    the next pass needs. v: 1-D (n,) leaf dtype, overwritten; x, y: memories
    (m * n,); a: the axpy coefficient (float64 for float32 leaves: the sum is
    rounded once when stored); g: scale of the leaf dtype (1 except at the
    end of the first loop, where it is the initial Hessian scale gamma);
    ``xslot < 0`` skips the axpy and ``yslot < 0`` the dot product;
    partial: (k,) of the leaf dtype.
    """
    for k in prange(chunks.shape[0]):
        lo, hi = chunks[k, 0], chunks[k, 1]
        jx = chunks[k, 3] + xslot * chunks[k, 4]
        jy = chunks[k, 3] + yslot * chunks[k, 4]
        s = zero
        for i in range(lo, hi):
            if xslot >= 0:
                v[i] = axpy_rule(v[i], a, x[i + jx])
            v[i] = g * v[i]
            if yslot >= 0:
                s += acc_rule(y[i + jy], v[i], zero)
        partial[k] = s


@cuda_kernel
def two_loop_segments_cuda(v, chunks, a, x, xslot, g, y, yslot, zero, partial):
    for k in range(cuda.grid(1), chunks.shape[0], cuda.gridsize(1)):
        lo, hi = chunks[k, 0], chunks[k, 1]
        jx = chunks[k, 3] + xslot * chunks[k, 4]
        jy = chunks[k, 3] + yslot * chunks[k, 4]
        s = zero
        for i in range(lo, hi):
            if xslot >= 0:
                v[i] = axpy_rule(v[i], a, x[i + jx])
            v[i] = g * v[i]
            if yslot >= 0:
                s += acc_rule(y[i + jy], v[i], zero)
        partial[k] = s


# ---------------------------------------------------------------------------
# A3. Line searches: trial points, slopes, casts
# ---------------------------------------------------------------------------

@cpu_kernel
def trial_cpu(p, u, s, out):
    """``out = p + s * u`` (a point on the search line); out's dtype may be
    wider than p's (float64 trial points of float32 params)."""
    for i in prange(p.shape[0]):
        out[i] = axpy_rule(p[i], s, u[i])


@cuda_kernel
def trial_cuda(p, u, s, out):
    for i in range(cuda.grid(1), p.shape[0], cuda.gridsize(1)):
        out[i] = axpy_rule(p[i], s, u[i])


@cpu_kernel
def dot_cpu(x, chunks, y, zero, partial):
    """``partial[k] = sum x[i] * y[i]`` over chunk k, accumulated in zero's
    dtype (the promoted dtype of x and y)."""
    for k in prange(chunks.shape[0]):
        s = zero
        for i in range(chunks[k, 0], chunks[k, 1]):
            s += acc_rule(x[i], y[i], zero)
        partial[k] = s


@cuda_kernel
def dot_cuda(x, chunks, y, zero, partial):
    for k in range(cuda.grid(1), chunks.shape[0], cuda.gridsize(1)):
        s = zero
        for i in range(chunks[k, 0], chunks[k, 1]):
            s += acc_rule(x[i], y[i], zero)
        partial[k] = s


@cpu_kernel
def cast_cpu(src, dst):
    """``dst[i] = src[i]`` rounded to dst's dtype."""
    for i in prange(src.shape[0]):
        dst[i] = src[i]


@cuda_kernel
def cast_cuda(src, dst):
    for i in range(cuda.grid(1), src.shape[0], cuda.gridsize(1)):
        dst[i] = src[i]


# ===========================================================================
# B. jaxopt's solvers: an (m, n) history, reductions over fixed chunks
# ===========================================================================

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
