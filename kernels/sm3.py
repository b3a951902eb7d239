"""SM3 (Anil et al., 2019, arXiv:1901.11150), optax's ``scale_by_sm3``.

Each leaf of shape (d_0, ..., d_{n-1}) keeps one accumulator vector per axis,
``mu_a`` of length d_a (a 1-D leaf: one vector as long as the leaf). For
every element x with index (i_0, ..., i_{n-1})::

    m     = min_a mu_a[i_a]                     (the cover's tightest bound)
    acc   = g*g + m                  if b2 == 1 (optax's default: a running sum)
    acc   = c0 * g*g + b2 * m        otherwise  (c0 = 1 - b2)
    u     = g / sqrt(acc + eps)  if acc > 0, else 0
    nu    = c1 * u + b1 * nu                    (c1 = 1 - b1; nu is the update)
    mu_a[j] <- max of acc over the elements with i_a = j   (after the pass)

With b2 == 1 XLA drops the ``1.0 *`` factors and contracts ``g*g + m`` into
``fma(g, g, m)``; otherwise ``fma(c0, g*g, b2*m)``: the two source forms
below reproduce that (bitwise at float32). XLA's ``rsqrt`` is not correctly
rounded on the CPU (up to 2 ulp), so ``u`` agrees to a few ulps only.

The maxima are order-independent (max is exact), so they may be gathered in
any order: on the CPU each of a few *parts* (runs of chunks) keeps its own
row of maxima, combined afterwards; on CUDA threads use atomic max. The
element pass reads the old accumulators, the combine then overwrites them.

Tables (int64, made on the host per layout): ``meta[s] = (start, ndim,
dptr)`` for leaf s, with its dims in ``dims[dptr:dptr+ndim]`` and the offset
of each axis's accumulator in the group's mu buffer in ``muoff[dptr+a]``.
"""
import math

import numpy as np
from numba import prange

from ._jit import cpu_kernel, cuda, cuda_kernel, rule
from .apply import finish


@rule
def sm3_rule(g, m, nu, hp, running_sum):
    """One element: returns (acc, new nu). hp = (c0, b2, eps, c1, b1, zero, one)."""
    c0, b2, eps, c1, b1, zero, one = hp
    if running_sum:
        acc = g * g + m
    else:
        acc = c0 * (g * g) + b2 * m
    inv = one / math.sqrt(acc + eps) if acc > zero else zero
    u = g * inv
    return acc, c1 * u + b1 * nu


@rule
def nan_min(a, b):
    """min with NaN propagated (jnp.minimum)."""
    return b if (b < a or b != b) else a


@rule
def nan_max(a, b):
    """max with NaN propagated (jnp.max)."""
    return b if (b > a or b != b) else a


@cpu_kernel
def sm3_cpu(g, nu, dst, mu, part, parts, chunks, offsets, meta, dims, muoff, hp,
            running_sum, neg_lr, post_wd, fused):
    """The element pass over one group (CPU).

    g, nu, dst: 1-D, length n (nu <- new nu; dst <- nu, or when ``fused``
    params -> finish(nu, p, (neg_lr, post_wd[s]))); mu: the group's
    accumulators (read only here); part: zeroed, parts.shape[0]-1 rows of
    len(mu) partial maxima, flattened; parts: int64 chunk-index bounds of each
    part; chunks: int64 (k, 3) (start, stop, segment); offsets: unused (CUDA).
    """
    M = mu.shape[0]
    for q in prange(parts.shape[0] - 1):
        row = q * M
        for k in range(parts[q], parts[q + 1]):
            s = chunks[k, 2]
            start, ndim, dp = meta[s, 0], meta[s, 1], meta[s, 2]
            post = (neg_lr, post_wd[s])
            # multi-index of the chunk's first element, then counted up
            idx = np.empty(ndim, np.int64)
            r = chunks[k, 0] - start
            for a in range(ndim - 1, -1, -1):
                idx[a] = r % dims[dp + a]
                r //= dims[dp + a]
            for i in range(chunks[k, 0], chunks[k, 1]):
                m = mu[muoff[dp] + idx[0]]
                for a in range(1, ndim):
                    m = nan_min(m, mu[muoff[dp + a] + idx[a]])
                acc, v = sm3_rule(g[i], m, nu[i], hp, running_sum)
                nu[i] = v
                dst[i] = finish(v, dst[i], post, fused)
                for a in range(ndim):
                    j = row + muoff[dp + a] + idx[a]
                    part[j] = nan_max(part[j], acc)
                a = ndim - 1
                idx[a] += 1
                while a > 0 and idx[a] == dims[dp + a]:
                    idx[a] = 0
                    a -= 1
                    idx[a] += 1


@cuda_kernel
def sm3_cuda(g, nu, dst, mu, part, parts, chunks, offsets, meta, dims, muoff, hp,
             running_sum, neg_lr, post_wd, fused):
    """Grid-stride over elements; maxima by atomic max into part[0:len(mu)]."""
    for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
        s = 0                        # the segment of i (see novograd_cuda)
        hi = offsets.shape[0] - 2
        while s < hi:
            mid = (s + hi + 1) // 2
            if offsets[mid] <= i:
                s = mid
            else:
                hi = mid - 1
        while offsets[s + 1] <= i:
            s += 1
        start, ndim, dp = meta[s, 0], meta[s, 1], meta[s, 2]
        r = i - start
        m = mu[muoff[dp + ndim - 1] + r % dims[dp + ndim - 1]]
        for a in range(ndim - 2, -1, -1):
            r //= dims[dp + a + 1]
            m = nan_min(m, mu[muoff[dp + a] + r % dims[dp + a]])
        acc, v = sm3_rule(g[i], m, nu[i], hp, running_sum)
        nu[i] = v
        dst[i] = finish(v, dst[i], (neg_lr, post_wd[s]), fused)
        r = i - start
        for a in range(ndim - 1, -1, -1):
            cuda.atomic.max(part, muoff[dp + a] + r % dims[dp + a], acc)
            r //= dims[dp + a]


@cpu_kernel
def fill_cpu(x, value):
    """x[:] = value (x 1-D, value of x's dtype)."""
    for i in prange(x.shape[0]):
        x[i] = value


@cuda_kernel
def fill_cuda(x, value):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        x[i] = value


@cpu_kernel
def combine_max_cpu(mu, part):
    """mu[j] = max over the rows of part (flattened, rows of len(mu))."""
    M = mu.shape[0]
    for j in prange(M):
        v = part[j]
        for q in range(1, part.shape[0] // M):
            v = nan_max(v, part[q * M + j])
        mu[j] = v


@cuda_kernel
def combine_max_cuda(mu, part):
    M = mu.shape[0]
    for j in range(cuda.grid(1), M, cuda.gridsize(1)):
        v = part[j]
        for q in range(1, part.shape[0] // M):
            v = nan_max(v, part[q * M + j])
        mu[j] = v
