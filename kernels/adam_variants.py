"""Adam's relatives: AMSGrad, AdaMax, AdaBelief, Yogi, RAdam and Adan.

Per element, with ``t = count + 1``, ``c = 1 - b`` rounded once from float64
(optax's Python-float hyperparameters) and ``inv_bc = 1 / (1 - b**t)``
computed on the host (jitted XLA turns ``m / bc`` into ``m * (1 / bc)``)::

    all but adan: mu = c1 * g + b1 * mu           (mu^ = mu * inv_bc1,
                                                   or the nesterov form)
    amsgrad:  nu = c2 * g*g + b2 * nu
              nu_max = max(nu_max, nu * inv_bc2)   u = mu^ / (sqrt(nu_max + eps_root) + eps)
    adamax:   nu = max(|g| + eps, b2 * nu)         u = mu^ / nu
    belief:   nu = c2 * (g - mu)**2 + b2 * nu + eps_root
                                                   u = mu^ / (sqrt(nu * inv_bc2) + eps)
    yogi:     nu = nu - c2 * sign(nu - g*g) * g*g  u = mu^ / (sqrt(nu * inv_bc2 + eps_root) + eps)
    radam:    nu as adam;  u = r * mu^ / (sqrt(nu * inv_bc2 + eps_root) + eps) if rectify else mu^
    adan:     d = g - g_prev (0 at the first step);  m = c1 g + b1 m;  v = c2 d + b2 v;
              n = c3 (g + c2 d)**2 + b3 n
              u = (m^ + c2 v^) / (sqrt(n^ + eps_root) + eps);  g_prev = g

Products are written in optax's source order so that FMA contraction
(``fastmath={'contract'}``, see _jit.py) fuses the same product XLA fuses:
the left-most one, ``fma(c1, g, b1 * mu)``. ``max`` propagates NaN as
``jnp.maximum`` does, ``sign`` as ``jnp.sign``. Per-step decisions (RAdam's
rectification, Adan's first step) arrive as 0/1 scalars in ``hp``: a
loop-invariant branch.

Every kernel: ``kernel(g, *moments, dst, hp, [nesterov,] post, fused)``, all
arrays 1-D, contiguous, length n and distinct; the moments are overwritten
with their new values and ``dst`` receives u (or, when ``fused``, holds the
params and receives the new params, see apply.finish). ``hp`` holds scalars
of g's dtype (AMSGrad: ``b1`` in mu's dtype and ``inv_bc1`` in the dtype
mu * g promotes to, as in optax with ``mu_dtype``).
"""
import math

from numba import prange

from ._jit import cpu_kernel, cuda, cuda_kernel, rule
from .apply import finish
from .complex import abs2, div_real


@rule
def nan_max(a, b):
    """max(a, b), NaN if either is NaN (jnp.maximum)."""
    if a > b or a != a:
        return a
    return b


@rule
def nan_sign(x, one, zero):
    """-1, 0 or 1 of x's dtype, NaN for NaN (jnp.sign)."""
    if x > zero:
        return one
    if x < zero:
        return -one
    if x == zero:
        return zero
    return x


@rule
def _mu_hat(g, mu, b1, c1, inv_bc1, inv_bc1_next, nesterov):
    # optax: b1 * bc(mu, t+1) + (1 - b1) * bc(g, t), or bc(mu, t)
    if nesterov:
        return b1 * (mu * inv_bc1_next) + c1 * (g * inv_bc1)
    return mu * inv_bc1


# --- AMSGrad ------------------------------------------------------------

@rule
def amsgrad_rule(g, mu, nu, nu_max, hp):
    """hp = (c1, b1, c2, b2, inv_bc1, inv_bc2, eps, eps_root). Returns (u, mu, nu, nu_max).

    inv_bc1 / inv_bc2 are 1 when the bias correction is off (exact).
    """
    c1, b1, c2, b2, inv_bc1, inv_bc2, eps, eps_root = hp
    mu = c1 * g + b1 * mu
    nu = c2 * abs2(g) + b2 * nu.real
    nu_max = nan_max(nu_max.real, nu * inv_bc2)
    return div_real(mu * inv_bc1, math.sqrt(nu_max + eps_root) + eps), mu, nu, nu_max


@cpu_kernel
def amsgrad_cpu(g, mu, nu, nu_max, dst, hp, post, fused):
    for i in prange(g.shape[0]):
        u, m, v, vm = amsgrad_rule(g[i], mu[i], nu[i], nu_max[i], hp)
        mu[i] = m
        nu[i] = v
        nu_max[i] = vm
        dst[i] = finish(u, dst[i], post, fused)


@cuda_kernel
def amsgrad_cuda(g, mu, nu, nu_max, dst, hp, post, fused):
    for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
        u, m, v, vm = amsgrad_rule(g[i], mu[i], nu[i], nu_max[i], hp)
        mu[i] = m
        nu[i] = v
        nu_max[i] = vm
        dst[i] = finish(u, dst[i], post, fused)


# --- AdaMax -------------------------------------------------------------

@rule
def adamax_rule(g, mu, nu, hp):
    """hp = (c1, b1, b2, inv_bc1, eps). Returns (u, mu, nu); eps sits inside the max."""
    c1, b1, b2, inv_bc1, eps = hp
    mu = c1 * g + b1 * mu
    nu = nan_max(abs(g) + eps, b2 * nu.real)
    return div_real(mu * inv_bc1, nu), mu, nu


@cpu_kernel
def adamax_cpu(g, mu, nu, dst, hp, post, fused):
    for i in prange(g.shape[0]):
        u, m, v = adamax_rule(g[i], mu[i], nu[i], hp)
        mu[i] = m
        nu[i] = v
        dst[i] = finish(u, dst[i], post, fused)


@cuda_kernel
def adamax_cuda(g, mu, nu, dst, hp, post, fused):
    for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
        u, m, v = adamax_rule(g[i], mu[i], nu[i], hp)
        mu[i] = m
        nu[i] = v
        dst[i] = finish(u, dst[i], post, fused)


# --- AdaBelief ----------------------------------------------------------

@rule
def belief_rule(g, mu, nu, hp, nesterov):
    """hp = (c1, b1, c2, b2, inv_bc1, inv_bc1_next, inv_bc2, eps, eps_root).

    Returns (u, mu, nu); eps_root is added to the stored nu.
    """
    c1, b1, c2, b2, inv_bc1, inv_bc1_next, inv_bc2, eps, eps_root = hp
    mu = c1 * g + b1 * mu
    e = g - mu
    nu = c2 * abs2(e) + b2 * nu.real
    nu = nu + eps_root
    mu_hat = _mu_hat(g, mu, b1, c1, inv_bc1, inv_bc1_next, nesterov)
    return div_real(mu_hat, math.sqrt(nu * inv_bc2) + eps), mu, nu


@cpu_kernel
def belief_cpu(g, mu, nu, dst, hp, nesterov, post, fused):
    for i in prange(g.shape[0]):
        u, m, v = belief_rule(g[i], mu[i], nu[i], hp, nesterov)
        mu[i] = m
        nu[i] = v
        dst[i] = finish(u, dst[i], post, fused)


@cuda_kernel
def belief_cuda(g, mu, nu, dst, hp, nesterov, post, fused):
    for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
        u, m, v = belief_rule(g[i], mu[i], nu[i], hp, nesterov)
        mu[i] = m
        nu[i] = v
        dst[i] = finish(u, dst[i], post, fused)


# --- Yogi ---------------------------------------------------------------

@rule
def yogi_rule(g, mu, nu, hp):
    """hp = (c1, b1, c2, inv_bc1, inv_bc2, eps, eps_root, one, zero). Returns (u, mu, nu)."""
    c1, b1, c2, inv_bc1, inv_bc2, eps, eps_root, one, zero = hp
    mu = c1 * g + b1 * mu
    g2 = abs2(g)
    nu = nu.real
    nu = nu - c2 * nan_sign(nu - g2, one, zero) * g2
    return div_real(mu * inv_bc1, math.sqrt(nu * inv_bc2 + eps_root) + eps), mu, nu


@cpu_kernel
def yogi_cpu(g, mu, nu, dst, hp, post, fused):
    for i in prange(g.shape[0]):
        u, m, v = yogi_rule(g[i], mu[i], nu[i], hp)
        mu[i] = m
        nu[i] = v
        dst[i] = finish(u, dst[i], post, fused)


@cuda_kernel
def yogi_cuda(g, mu, nu, dst, hp, post, fused):
    for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
        u, m, v = yogi_rule(g[i], mu[i], nu[i], hp)
        mu[i] = m
        nu[i] = v
        dst[i] = finish(u, dst[i], post, fused)


# --- RAdam --------------------------------------------------------------

@rule
def radam_rule(g, mu, nu, hp, nesterov):
    """hp = (c1, b1, c2, b2, inv_bc1, inv_bc1_next, inv_bc2, eps, eps_root, r, rectify, zero).

    ``rectify`` (1 or 0, decided on the host from rho_t >= threshold) picks
    the rectified Adam step ``r * mu^ / (...)`` or plain momentum ``mu^``.
    Returns (u, mu, nu).
    """
    c1, b1, c2, b2, inv_bc1, inv_bc1_next, inv_bc2, eps, eps_root, r, rectify, zero = hp
    mu = c1 * g + b1 * mu
    nu = c2 * abs2(g) + b2 * nu.real
    mu_hat = _mu_hat(g, mu, b1, c1, inv_bc1, inv_bc1_next, nesterov)
    if rectify != zero:
        return div_real(r * mu_hat, math.sqrt(nu * inv_bc2 + eps_root) + eps), mu, nu
    return mu_hat, mu, nu


@cpu_kernel
def radam_cpu(g, mu, nu, dst, hp, nesterov, post, fused):
    for i in prange(g.shape[0]):
        u, m, v = radam_rule(g[i], mu[i], nu[i], hp, nesterov)
        mu[i] = m
        nu[i] = v
        dst[i] = finish(u, dst[i], post, fused)


@cuda_kernel
def radam_cuda(g, mu, nu, dst, hp, nesterov, post, fused):
    for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
        u, m, v = radam_rule(g[i], mu[i], nu[i], hp, nesterov)
        mu[i] = m
        nu[i] = v
        dst[i] = finish(u, dst[i], post, fused)


# --- Adan ---------------------------------------------------------------

@rule
def adan_rule(g, m, v, n, g_prev, hp):
    """hp = (c1, b1, c2, b2, c3, b3, c2_sq, inv_bc1, inv_bc2, inv_bc3, eps, eps_root, first, zero).

    ``first`` is 1 at the first step (optax: ``diff = 0 if t == 0``), else 0.
    ``c2_sq`` equals ``c2``: a separate copy keeps LLVM from sharing the
    product ``c2 * diff`` between ``v`` and ``sq``, so that ``sq`` contracts
    to ``fma(c2, diff, g)`` as in XLA (a shared product is not contracted).
    Returns (u, m, v, n); the caller stores g as the new g_prev.
    """
    c1, b1, c2, b2, c3, b3, c2_sq, inv_bc1, inv_bc2, inv_bc3, eps, eps_root, first, zero = hp
    diff = zero if first != zero else g - g_prev
    m = c1 * g + b1 * m
    v = c2 * diff + b2 * v
    sq = g + c2_sq * diff
    n = c3 * (sq * sq) + b3 * n
    u = m * inv_bc1 + c2 * (v * inv_bc2)
    return u / (math.sqrt(n * inv_bc3 + eps_root) + eps), m, v, n


@cpu_kernel
def adan_cpu(g, m, v, n, g_prev, dst, hp, post, fused):
    for i in prange(g.shape[0]):
        gi = g[i]
        u, mi, vi, ni = adan_rule(gi, m[i], v[i], n[i], g_prev[i], hp)
        m[i] = mi
        v[i] = vi
        n[i] = ni
        g_prev[i] = gi
        dst[i] = finish(u, dst[i], post, fused)


@cuda_kernel
def adan_cuda(g, m, v, n, g_prev, dst, hp, post, fused):
    for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
        gi = g[i]
        u, mi, vi, ni = adan_rule(gi, m[i], v[i], n[i], g_prev[i], hp)
        m[i] = mi
        v[i] = vi
        n[i] = ni
        g_prev[i] = gi
        dst[i] = finish(u, dst[i], post, fused)
