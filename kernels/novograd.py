"""NovoGrad (Ginsburg et al., 2019, arXiv:1905.11286), optax's ``scale_by_novograd``.

Per leaf ``l`` a *scalar* second moment, then an elementwise first moment.
With ``s_l = sum(g_l**2)`` (a deterministic chunked sum, ``reduce.py``)::

    n    = sqrt(s_l) ** 2                     (optax squares jnp.linalg.norm)
    nu_l = n                                  (first step)
    nu_l = c2 * n + b2 * nu_l                 (later steps; c2 = 1 - b2)
    r_l  = 1 / (sqrt(nu_l + eps_root) + eps)
    mu   = g * r_l + wd * p                   (first step)
    mu   = b1 * mu + (g * r_l + wd * p)      (later steps: no 1 - b1, no bias correction)
    u    = mu

XLA rewrites the division by the per-leaf denominator into a product with its
reciprocal and contracts the left-most product of each sum into an FMA:
``fma(b1, mu, fma(g, r, wd * p))``; written in this source order, numba's
``contract`` flag produces the same (bitwise at float32).
"""
import math

from numba import prange

from ._jit import cpu_kernel, cuda, cuda_kernel, rule
from .apply import finish


@rule
def novograd_leaf_rule(ss, nu, hp, first):
    """One leaf's scalars from its sum of squares ``ss``: returns (nu, r).

    hp = (c2, b2, eps, eps_root, one), of the leaf's dtype.
    """
    c2, b2, eps, eps_root, one = hp
    n = math.sqrt(ss)
    n = n * n
    if first:
        nu = n
    else:
        nu = c2 * n + b2 * nu.real       # a complex leaf's nu: real (kernels/complex.py)
    return nu, one / (math.sqrt(nu + eps_root) + eps)


@cpu_kernel
def novograd_leaves_cpu(ss, nu, r, hp, first):
    """Per leaf: nu[l] <- new second moment, r[l] <- 1/(sqrt(nu + eps_root) + eps).

    ss, nu, r: 1-D arrays of the group's dtype, one entry per leaf."""
    for j in prange(ss.shape[0]):
        v, q = novograd_leaf_rule(ss[j], nu[j], hp, first)
        nu[j] = v
        r[j] = q


@cuda_kernel
def novograd_leaves_cuda(ss, nu, r, hp, first):
    for j in range(cuda.grid(1), ss.shape[0], cuda.gridsize(1)):
        v, q = novograd_leaf_rule(ss[j], nu[j], hp, first)
        nu[j] = v
        r[j] = q


@rule
def novograd_rule(g, mu, p, r, b1, wd, first):
    """One element: the new first moment (which is also the update)."""
    if first:
        return g * r + wd * p
    return b1 * mu + (g * r + wd * p)


@cpu_kernel
def novograd_cpu(g, mu, p, dst, chunks, offsets, r, post_wd, hp, first, fused):
    """NovoGrad's elementwise pass over one group's flat buffers.

    In place: mu <- new first moment; dst <- mu (the update) or, when
    ``fused``, holds the params and receives ``finish(mu, p, (neg_lr,
    post_wd[s]))`` (see apply.finish). ``p`` is read only when not fused (pass
    any array of g's length then). g, p, dst: 1-D, contiguous, length n;
    mu: same length (its own dtype, mu_dtype); chunks: int64 (k, 3) of
    (start, stop, segment); offsets: int64 segment offsets (unused on the
    CPU); r, post_wd: one entry per segment; hp = (b1, weight_decay, neg_lr)
    of the params' dtype (b1 of mu's dtype).
    """
    b1, wd, neg_lr = hp
    for k in prange(chunks.shape[0]):
        s = chunks[k, 2]
        rs = r[s]
        post = (neg_lr, post_wd[s])
        for i in range(chunks[k, 0], chunks[k, 1]):
            pv = dst[i] if fused else p[i]
            m = novograd_rule(g[i], mu[i], pv, rs, b1, wd, first)
            mu[i] = m
            dst[i] = finish(mu[i], pv, post, fused)


@cuda_kernel
def novograd_cuda(g, mu, p, dst, chunks, offsets, r, post_wd, hp, first, fused):
    """Grid-stride over elements; the segment is found by binary search in
    ``offsets`` (``chunks`` is unused here)."""
    b1, wd, neg_lr = hp
    for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
        # the segment of i: the last non-empty one starting at or before i
        # (inline: a rule called from a CUDA kernel takes scalars only, the
        # simulator cannot pass it a device array)
        lo = 0
        hi = offsets.shape[0] - 2
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if offsets[mid] <= i:
                lo = mid
            else:
                hi = mid - 1
        while offsets[lo + 1] <= i:
            lo += 1
        pv = dst[i] if fused else p[i]
        m = novograd_rule(g[i], mu[i], pv, r[lo], b1, wd, first)
        mu[i] = m
        dst[i] = finish(mu[i], pv, (neg_lr, post_wd[lo]), fused)
