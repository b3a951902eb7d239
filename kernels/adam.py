"""Adam (Kingma & Ba, 2014, arXiv:1412.6980), optax's ``scale_by_adam``.

With ``t = count + 1`` and ``c = 1 - b`` rounded from float64 (optax's
Python-float hyperparameters)::

    mu    = c1 * g   + b1 * mu
    nu    = c2 * g*g + b2 * nu
    mu^   = mu * (1 / (1 - b1**t))                                 (plain)
    mu^   = b1 * mu * (1/(1 - b1**(t+1))) + c1 * g * (1/(1 - b1**t))  (nesterov)
    nu^   = nu * (1 / (1 - b2**t))
    u     = mu^ / (sqrt(nu^ + eps_root) + eps)

The host computes the reciprocal bias corrections (as jitted XLA does, which
rewrites ``m / bc`` into ``m * (1/bc)``) and passes them in ``hp``.
"""
import math

from numba import prange

from ._jit import cpu_kernel, cuda, cuda_kernel, rule
from .apply import finish
from .complex import abs2, div_real


@rule
def adam_rule(g, mu, nu, hp, nesterov):
    """One element of scale_by_adam. Returns (u, mu, nu).

    hp = (c1, b1, c2, b2, inv_bc1, inv_bc1_next, inv_bc2, eps, eps_root, b1_mu),
    all of g's dtype but ``b1_mu``: b1 in mu's dtype (``mu_dtype``), so that
    ``b1 * mu`` rounds in that dtype before meeting ``(1 - b1) * g``, as
    JAX's weakly typed ``b1`` does.
    """
    c1, b1, c2, b2, inv_bc1, inv_bc1_next, inv_bc2, eps, eps_root, b1_mu = hp
    mu = c1 * g + b1_mu * mu
    nu = c2 * abs2(g) + b2 * nu.real       # complex g: |g|^2, a real nu
    if nesterov:
        mu_hat = b1 * (mu * inv_bc1_next) + c1 * (g * inv_bc1)
    else:
        mu_hat = mu * inv_bc1
    nu_hat = nu * inv_bc2
    return div_real(mu_hat, math.sqrt(nu_hat + eps_root) + eps), mu, nu


@cpu_kernel
def adam_cpu(g, mu, nu, dst, hp, nesterov, post, fused):
    """Adam over flat arrays.

    In place: mu and nu are overwritten with the new moments; dst receives
    u, or, when ``fused``, holds the params and receives the new params (see
    apply.finish). All arrays 1-D, contiguous, length n, and distinct.
    """
    for i in prange(g.shape[0]):
        u, m, v = adam_rule(g[i], mu[i], nu[i], hp, nesterov)
        mu[i] = m
        nu[i] = v
        dst[i] = finish(u, dst[i], post, fused)


@cuda_kernel
def adam_cuda(g, mu, nu, dst, hp, nesterov, post, fused):
    for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
        u, m, v = adam_rule(g[i], mu[i], nu[i], hp, nesterov)
        mu[i] = m
        nu[i] = v
        dst[i] = finish(u, dst[i], post, fused)
