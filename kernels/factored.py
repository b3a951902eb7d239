"""Adafactor's factored second moments (Shazeer & Stern, 2018).

A factored leaf is seen as a stack of matrices: its *rows* run along the
second-largest dimension d1, its *columns* along the largest d0 (the other
dimensions index the stack). For one matrix ``G`` and ``beta``,
``c = 1 - beta``::

    R[r] = beta * R[r] + mean_j(G[r, j]^2 + eps) * c       (v_row)
    C[j] = beta * C[j] + mean_r(G[r, j]^2 + eps) * c       (v_col)
    u[r, j] = G[r, j] * (R[r] / mean(R))^-1/2 * C[j]^-1/2

The loops follow memory, not rows and columns. Of a matrix's two axes, the
*inner* one has the smaller stride (it is contiguous in a 2-D leaf), the
*outer* one the larger. The statistic that keeps the outer axis (v_row or
v_col, depending on the leaf's shape) sums along *lines* of the inner
axis; the statistic that keeps the inner axis sums *down* the outer axis,
a block of ``w`` neighbouring columns at a time, so that each pass reads
memory in order (``w = 1`` on CUDA: one thread per column, coalesced).
Either way every statistic is summed serially, in index order, so the
result does not depend on the thread count, the block width or the CUDA
grid (XLA sums in its own order: agreement with optax is to rounding).

The host describes the matrices by int64 tables (``start + j * step``
addresses element ``j`` of a line in the flat gradient buffer)::

    lines:  [stat, start, step, n]                 a statistic of the outer axis
    blocks: [start, outer step, n, inner step, w, stat, stat step]
    apply:  [start, step, n, row, row step, col, col step]   one per outer line
    mats:   [matrix, row start, row step, rows]    one per matrix, over v_row

and ``inv_n`` (per line or block, in the buffer's dtype) holds ``1/n``.

The arithmetic follows what XLA makes of optax's ``scale_by_factored_rms``
(checked in its optimised HLO): the mean's division becomes a product with
``1/n`` folded into ``c`` (``s * (c * inv_n)``), ``R / mean(R)`` becomes
``R * (1 / mean(R))``, and ``x ** -0.5`` is the C library's ``pow`` (as
XLA on the CPU; NumPy's SIMD ``np.power`` differs in the last bit).

Leaves that are not factored use the elementwise rule ``unfactored_rule``
with the kernel convention of every elementwise rule
(``kernel(g, v, dst, hp, post, fused)``, see ``apply.py``).

``hp = (beta, c, eps, neg_half, one, zero)``: scalars of the buffer's dtype
(``neg_half = -0.5``, ``one = 1``, ``zero = 0``: a literal would promote
float32 arithmetic to float64).
"""
import numpy as np
from numba import prange

from ._jit import cpu_kernel, cuda, cuda_kernel, rule
from .apply import finish
from .complex import abs2
from .ema import ema_rule

BLOCK_WIDTH = 64    # columns summed together on the CPU (16 float32 per cache line)


@rule
def power(x, y):
    """``x ** y`` with the C library's ``pow``, which XLA's CPU ``power``
    matches bit for bit (e.g. adafactor's decay rate ``1 - t**-0.8`` in
    float32)."""
    return x ** y


@rule
def unfactored_rule(g, v, hp):
    """One element of a leaf that is not factored. Returns (u, v).

    ``v = beta * v + c * (g*g + eps)``, ``u = g * v**-0.5``.
    """
    beta, c, eps, neg_half, one, zero = hp
    v = beta * v.real + c * (abs2(g) + eps)      # complex g: |g|^2, a real v
    return g * v ** neg_half, v


@rule
def add_square(s, x, eps):
    """One term of a statistic's sum: ``s + (|x|^2 + eps)``."""
    return s + (abs2(x) + eps)


@rule
def moment_rule(v, s, beta, c_inv_n):
    """A statistic's new value from its sum ``s``: ``beta*v + s*(c/n)``."""
    return beta * v.real + s * c_inv_n


@cpu_kernel
def unfactored_cpu(g, v, dst, hp, post, fused):
    """g, v, dst: 1-D contiguous, same dtype; v and dst overwritten in place."""
    for i in prange(g.shape[0]):
        u, vi = unfactored_rule(g[i], v[i], hp)
        v[i] = vi
        dst[i] = finish(u, dst[i], post, fused)


@cuda_kernel
def unfactored_cuda(g, v, dst, hp, post, fused):
    for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
        u, vi = unfactored_rule(g[i], v[i], hp)
        v[i] = vi
        dst[i] = finish(u, dst[i], post, fused)


@cpu_kernel
def line_moments_cpu(g, lines, inv_n, v, hp):
    """v[stat] <- moment of the line's sum, for every row of ``lines``.

    g: the flat gradients (its length picks the serial or parallel loop);
    v: the flat v_row or v_col buffer the lines' statistics live in.
    """
    beta, c, eps, neg_half, one, zero = hp
    for k in prange(lines.shape[0]):
        a, step, n = lines[k, 1], lines[k, 2], lines[k, 3]
        s = zero
        for j in range(n):
            s = add_square(s, g[a + j * step], eps)
        v[lines[k, 0]] = moment_rule(v[lines[k, 0]], s, beta, c * inv_n[k])


@cuda_kernel
def line_moments_cuda(g, lines, inv_n, v, hp):
    beta, c, eps, neg_half, one, zero = hp
    for k in range(cuda.grid(1), lines.shape[0], cuda.gridsize(1)):
        a, step, n = lines[k, 1], lines[k, 2], lines[k, 3]
        s = zero
        for j in range(n):
            s = add_square(s, g[a + j * step], eps)
        v[lines[k, 0]] = moment_rule(v[lines[k, 0]], s, beta, c * inv_n[k])


@cpu_kernel
def block_moments_cpu(g, blocks, inv_n, v, acc, hp):
    """v[stat] <- moment of the column's sum, ``w`` columns per row of ``blocks``.

    Each block walks down its ``n`` outer positions, adding a row of ``w``
    (<= BLOCK_WIDTH) neighbouring elements to ``w`` running sums: memory is
    read in order, and each column is still summed serially, top to bottom.
    The CPU keeps the sums in a local array (LLVM vectorises the row);
    ``acc`` (a scratch buffer shaped like ``v``) holds them on CUDA.
    """
    beta, c, eps, neg_half, one, zero = hp
    for k in prange(blocks.shape[0]):
        a, outer, n, inner, w, o, ostep = (blocks[k, 0], blocks[k, 1], blocks[k, 2],
                                           blocks[k, 3], blocks[k, 4], blocks[k, 5],
                                           blocks[k, 6])
        s = np.full(BLOCK_WIDTH, zero)          # of the real dtype (complex g)
        for r in range(n):
            row = a + r * outer
            for j in range(w):
                s[j] = add_square(s[j], g[row + j * inner], eps)
        for j in range(w):
            v[o + j * ostep] = moment_rule(v[o + j * ostep], s[j], beta, c * inv_n[k])


@cuda_kernel
def block_moments_cuda(g, blocks, inv_n, v, acc, hp):
    beta, c, eps, neg_half, one, zero = hp
    for k in range(cuda.grid(1), blocks.shape[0], cuda.gridsize(1)):
        a, outer, n, inner, w, o, ostep = (blocks[k, 0], blocks[k, 1], blocks[k, 2],
                                           blocks[k, 3], blocks[k, 4], blocks[k, 5],
                                           blocks[k, 6])
        for j in range(w):
            acc[o + j * ostep] = zero
        for r in range(n):
            for j in range(w):
                acc[o + j * ostep] = add_square(acc[o + j * ostep], g[a + r * outer + j * inner],
                                                eps)
        for j in range(w):
            v[o + j * ostep] = moment_rule(v[o + j * ostep], acc[o + j * ostep], beta,
                                           c * inv_n[k])


@cpu_kernel
def row_factors_cpu(v_row, mats, inv_n, rf, hp):
    """rf[r] = (v_row[r] * (1 / mean(v_row)))**-0.5, the mean over each
    matrix's rows (``mats`` lines over v_row; rf shaped like v_row)."""
    beta, c, eps, neg_half, one, zero = hp
    for k in prange(mats.shape[0]):
        a, step, n = mats[k, 1], mats[k, 2], mats[k, 3]
        s = zero
        for j in range(n):
            s += v_row[a + j * step].real
        inv_mean = one / (s * inv_n[k])
        for j in range(n):
            rf[a + j * step] = (v_row[a + j * step].real * inv_mean) ** neg_half


@cuda_kernel
def row_factors_cuda(v_row, mats, inv_n, rf, hp):
    beta, c, eps, neg_half, one, zero = hp
    for k in range(cuda.grid(1), mats.shape[0], cuda.gridsize(1)):
        a, step, n = mats[k, 1], mats[k, 2], mats[k, 3]
        s = zero
        for j in range(n):
            s += v_row[a + j * step].real
        inv_mean = one / (s * inv_n[k])
        for j in range(n):
            rf[a + j * step] = (v_row[a + j * step].real * inv_mean) ** neg_half


@cpu_kernel
def col_factors_cpu(v_col, cf, hp):
    """cf = v_col**-0.5, elementwise (over the column statistics of factored leaves)."""
    neg_half = hp[3]
    for i in prange(v_col.shape[0]):
        cf[i] = v_col[i].real ** neg_half


@cuda_kernel
def col_factors_cuda(v_col, cf, hp):
    neg_half = hp[3]
    for i in range(cuda.grid(1), v_col.shape[0], cuda.gridsize(1)):
        cf[i] = v_col[i].real ** neg_half


@cpu_kernel
def apply_cpu(g, lines, rf, cf, dst, post, fused):
    """dst[i] = finish(g[i] * rf[row] * cf[col], dst[i], post, fused) along
    every line of the ``apply`` table (g, dst: flat buffers of one layout)."""
    for k in prange(lines.shape[0]):
        a, step, n, r0, rs, c0, cs = (lines[k, 0], lines[k, 1], lines[k, 2], lines[k, 3],
                                      lines[k, 4], lines[k, 5], lines[k, 6])
        if step == 1 and rs == 0 and cs == 1:    # a 2-D leaf's row: vectorisable
            r = rf[r0]
            for j in range(n):
                dst[a + j] = finish(g[a + j] * r * cf[c0 + j], dst[a + j], post, fused)
        else:
            for j in range(n):
                i = a + j * step
                dst[i] = finish(g[i] * rf[r0 + j * rs] * cf[c0 + j * cs], dst[i], post, fused)


@cuda_kernel
def apply_cuda(g, lines, rf, cf, dst, post, fused):
    for k in range(cuda.grid(1), lines.shape[0], cuda.gridsize(1)):
        a, step, n, r0, rs, c0, cs = (lines[k, 0], lines[k, 1], lines[k, 2], lines[k, 3],
                                      lines[k, 4], lines[k, 5], lines[k, 6])
        for j in range(n):
            i = a + j * step
            dst[i] = finish(g[i] * rf[r0 + j * rs] * cf[c0 + j * cs], dst[i], post, fused)


# ---------------------------------------------------------------------------
# adafactor's fused step: the rest of the chain after scale_by_factored_rms
# ---------------------------------------------------------------------------

@rule
def adafactor_tail_rule(u, p, e, d, lr, f, wd, neg_one, ema_hp, momentum):
    """From the factored-RMS update ``u`` to the new parameter, in the order
    and with the roundings of optax's adafactor chain. Returns (p, e).

    ``d``: clip_by_block_rms's denominator ``max(1, rms(u)/threshold)``;
    ``lr``: the learning rate; ``f``: the params' block RMS; ``e``, ``ema_hp``:
    the momentum (see ``ema.ema_rule``; unused unless ``momentum``); ``wd``:
    the weight decay. A block that is off gets 1 (0 for ``wd``): exact no-ops.
    """
    x = u / d                      # clip_by_block_rms
    x = lr * x                     # scale_by_learning_rate(flip_sign=False)
    x = x * f                      # scale_by_param_block_rms
    if momentum:                   # ema(debias=False): y may be wider than x
        y, e = ema_rule(x, e, ema_hp, False)
    else:
        y = x
    y = wd * p + y                 # add_decayed_weights: fma(wd, p, y)
    return p + neg_one * y, e      # scale(-1), apply_updates


@cpu_kernel
def adafactor_tail_cpu(u, p, e, chunks, offsets, leaf_hp, hp, ema_hp, momentum):
    """p[i] <- adafactor_tail_rule(u[i], p[i], ...) in place (e too, with momentum).

    u, p: 1-D, same length and dtype; e: the momentum buffer (same length,
    its own dtype; any array when ``momentum`` is False); chunks: (start,
    stop, segment) rows covering u (see reduce.chunk_table); offsets: the
    segment offsets (used by the CUDA kernel); leaf_hp: (segments, 3) of
    u's dtype, (d, f, wd) per segment; hp = (lr, neg_one).
    """
    lr, neg_one = hp
    for k in prange(chunks.shape[0]):
        s = chunks[k, 2]
        d, f, wd = leaf_hp[s, 0], leaf_hp[s, 1], leaf_hp[s, 2]
        for i in range(chunks[k, 0], chunks[k, 1]):
            pi, ei = adafactor_tail_rule(u[i], p[i], e[i], d, lr, f, wd, neg_one, ema_hp,
                                         momentum)
            p[i] = pi
            if momentum:
                e[i] = ei


@cuda_kernel
def adafactor_tail_cuda(u, p, e, chunks, offsets, leaf_hp, hp, ema_hp, momentum):
    lr, neg_one = hp
    nseg = offsets.shape[0] - 1
    for i in range(cuda.grid(1), u.shape[0], cuda.gridsize(1)):
        s = 0                        # the segment of i: bisection over offsets
        hi = nseg - 1
        while s < hi:
            mid = (s + hi + 1) // 2
            if offsets[mid] <= i:
                s = mid
            else:
                hi = mid - 1
        while offsets[s + 1] <= i:   # skip empty segments
            s += 1
        pi, ei = adafactor_tail_rule(u[i], p[i], e[i], leaf_hp[s, 0], lr, leaf_hp[s, 1],
                                     leaf_hp[s, 2], neg_one, ema_hp, momentum)
        p[i] = pi
        if momentum:
            e[i] = ei
