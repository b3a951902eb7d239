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


@rule
def adam_rule(g, mu, nu, hp, nesterov):
    """One element of scale_by_adam. Returns (u, mu, nu).

    hp = (c1, b1, c2, b2, inv_bc1, inv_bc1_next, inv_bc2, eps, eps_root),
    all of g's dtype.
    """
    c1, b1, c2, b2, inv_bc1, inv_bc1_next, inv_bc2, eps, eps_root = hp
    mu = c1 * g + b1 * mu
    nu = c2 * (g * g) + b2 * nu
    if nesterov:
        mu_hat = b1 * (mu * inv_bc1_next) + c1 * (g * inv_bc1)
    else:
        mu_hat = mu * inv_bc1
    nu_hat = nu * inv_bc2
    return mu_hat / (math.sqrt(nu_hat + eps_root) + eps), mu, nu


@cpu_kernel
def adam_cpu(g, mu, nu, p, out, mu_out, nu_out, hp, nesterov, post, fused):
    """Adam over flat arrays.

    g, mu, nu, p: inputs (1-D, contiguous, length n); out, mu_out, nu_out:
    outputs (may be the inputs themselves: the fused step runs in place).
    out receives u, or the new params when ``fused`` (see apply.finish).
    """
    for i in prange(g.shape[0]):
        u, m, v = adam_rule(g[i], mu[i], nu[i], hp, nesterov)
        mu_out[i] = m
        nu_out[i] = v
        out[i] = finish(u, p[i], post, fused)


@cuda_kernel
def adam_cuda(g, mu, nu, p, out, mu_out, nu_out, hp, nesterov, post, fused):
    for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
        u, m, v = adam_rule(g[i], mu[i], nu[i], hp, nesterov)
        mu_out[i] = m
        nu_out[i] = v
        out[i] = finish(u, p[i], post, fused)
