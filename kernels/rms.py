"""RMS-normalised rules: scale_by_rms (RMSProp), scale_by_stddev (centred
RMSProp) and scale_by_rss (AdaGrad).

    rms:    nu = c*g*g + decay*nu;  nu^ = nu * inv_bc;  u = g * s(nu^)
    stddev: mu = c*g + decay*mu;    nu as above;       u = g * s(nu^ - mu^*mu^)
    rss:    S  = g*g + S;           u = g / sqrt(S + eps)  (0 where S == 0)

with s(x) = 1/sqrt(x + eps) when eps_in_sqrt (optax's default, TF-style),
else 1/(sqrt(x) + eps); ``inv_bc = 1/(1 - decay**t)`` with bias correction,
else 1. (optax uses XLA's rsqrt, which is within 2 ulp of 1/sqrt: these
rules match it to a few ulp, not bitwise.)
"""
import math

from numba import prange

from ._jit import cpu_kernel, cuda, cuda_kernel, rule
from .apply import finish
from .complex import abs2


@rule
def _inv_scale(x, eps, one, eps_in_sqrt):
    # `one` is 1 in the leaf dtype: a literal 1 would promote float32 to float64
    if eps_in_sqrt:
        return one / math.sqrt(x + eps)
    return one / (math.sqrt(x) + eps)


@rule
def rms_rule(g, nu, hp, eps_in_sqrt):
    """hp = (c, decay, inv_bc, eps, one). Returns (u, nu)."""
    c, decay, inv_bc, eps, one = hp
    nu = c * abs2(g) + decay * nu.real
    return _inv_scale(nu * inv_bc, eps, one, eps_in_sqrt) * g, nu


@rule
def stddev_rule(g, mu, nu, hp, eps_in_sqrt):
    """hp = (c, decay, inv_bc, eps, one). Returns (u, mu, nu)."""
    c, decay, inv_bc, eps, one = hp
    mu = c * g + decay * mu
    nu = c * abs2(g) + decay * nu.real
    mu_hat = mu * inv_bc
    return _inv_scale(nu * inv_bc - abs2(mu_hat), eps, one, eps_in_sqrt) * g, mu, nu


@rule
def rss_rule(g, s, hp):
    """hp = (eps, one, zero). Returns (u, s); u = 0 * g where s == 0."""
    eps, one, zero = hp
    s = abs2(g) + s.real
    if s > 0:
        return one / math.sqrt(s + eps) * g, s
    return zero * g, s


@cpu_kernel
def rms_cpu(g, nu, dst, hp, eps_in_sqrt, post, fused):
    for i in prange(g.shape[0]):
        u, v = rms_rule(g[i], nu[i], hp, eps_in_sqrt)
        nu[i] = v
        dst[i] = finish(u, dst[i], post, fused)


@cuda_kernel
def rms_cuda(g, nu, dst, hp, eps_in_sqrt, post, fused):
    for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
        u, v = rms_rule(g[i], nu[i], hp, eps_in_sqrt)
        nu[i] = v
        dst[i] = finish(u, dst[i], post, fused)


@cpu_kernel
def stddev_cpu(g, mu, nu, dst, hp, eps_in_sqrt, post, fused):
    for i in prange(g.shape[0]):
        u, m, v = stddev_rule(g[i], mu[i], nu[i], hp, eps_in_sqrt)
        mu[i] = m
        nu[i] = v
        dst[i] = finish(u, dst[i], post, fused)


@cuda_kernel
def stddev_cuda(g, mu, nu, dst, hp, eps_in_sqrt, post, fused):
    for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
        u, m, v = stddev_rule(g[i], mu[i], nu[i], hp, eps_in_sqrt)
        mu[i] = m
        nu[i] = v
        dst[i] = finish(u, dst[i], post, fused)


@cpu_kernel
def rss_cpu(g, s, dst, hp, post, fused):
    for i in prange(g.shape[0]):
        u, ss = rss_rule(g[i], s[i], hp)
        s[i] = ss
        dst[i] = finish(u, dst[i], post, fused)


@cuda_kernel
def rss_cuda(g, s, dst, hp, post, fused):
    for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
        u, ss = rss_rule(g[i], s[i], hp)
        s[i] = ss
        dst[i] = finish(u, dst[i], post, fused)
