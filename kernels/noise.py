"""Gradient noise: optax's ``add_noise`` (Neelakantan et al., 2015)::

    u = g + s * z,    s = sqrt(eta / t**gamma)

with ``z ~ N(0, 1)`` drawn on the host (see npopt.transforms.noise) and the
per-step scale ``s`` computed in float64 and rounded once to g's dtype. XLA
contracts ``g + s * z`` into ``fma(s, z, g)``; so does LLVM here.
"""
from numba import prange

from ._jit import cpu_kernel, cuda, cuda_kernel, rule
from .apply import finish


@rule
def noise_rule(g, z, hp):
    """One element of add_noise. hp = (s,) of g's dtype. Returns u."""
    return g + hp[0] * z


@cpu_kernel
def noise_cpu(g, z, dst, hp, post, fused):
    """dst <- g + s * z, or, when ``fused``, params in dst -> new params
    (apply.finish). g, z, dst: 1-D, contiguous, same length and dtype; z is
    read only (the step's standard-normal sample); dst is distinct from both.
    """
    for i in prange(g.shape[0]):
        dst[i] = finish(noise_rule(g[i], z[i], hp), dst[i], post, fused)


@cuda_kernel
def noise_cuda(g, z, dst, hp, post, fused):
    for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
        dst[i] = finish(noise_rule(g[i], z[i], hp), dst[i], post, fused)
