"""Schedule-Free (Defazio et al., 2024, arXiv:2405.15682), optax.contrib's
``schedule_free`` wrapper: the elementwise part of a step, with the base
optimizer's update ``u``, the state's ``z`` and the current params ``y``
(the gradient's evaluation point)::

    z'   = z + u                                  rounded to z's dtype
    x    = (y - cb * z) / b                       the previous average
    x'   = fma(cc, x, c * z')                     c = ck, cc = 1 - ck
    u    = fma(cb, z', b * x') - y                b = b1, cb = 1 - b1

``fma``: the contractions XLA makes in optax's expressions (see ``libm``;
the updates cancel). One rounding differs by construction: jitted optax
fuses the base optimizer's last product into ``z + u`` (``fma(-lr, g, z)``
for SGD), npopt adds the base's rounded ``u``; in float32 about 1 element
in 8 then differs in the last bit of ``z`` (the trajectories agree to
1e-5).
"""
from numba import prange

from ._jit import cpu_kernel, cuda, cuda_kernel, rule
from .libm import fused_multiply_add


@rule
def schedule_free_rule(u, z_old, z_new, y, hp):
    """The update of one element, ``z_new`` already rounded to z's dtype.

    hp = (b, cb, c, cc), of the result dtype (y's and z's promoted).
    """
    b, cb, c, cc = hp
    x = (y - cb * z_old) / b
    x = fused_multiply_add(cc, x, c * z_new)
    return fused_multiply_add(cb, z_new, b * x) - y


@cpu_kernel
def schedule_free_cpu(u, z, y, dst, hp, fused):
    """Schedule-Free's step over flat arrays.

    In place: z (state_dtype) is overwritten with ``z + u``; dst receives
    the update or, when ``fused``, ``y + update`` (apply_updates; dst may
    then be y itself). All arrays 1-D, contiguous, length n.
    """
    for i in prange(u.shape[0]):
        yi = y[i]
        z_old = z[i]
        z[i] = z_old + u[i]
        d = schedule_free_rule(u[i], z_old, z[i], yi, hp)
        dst[i] = yi + d if fused else d


@cuda_kernel
def schedule_free_cuda(u, z, y, dst, hp, fused):
    for i in range(cuda.grid(1), u.shape[0], cuda.gridsize(1)):
        yi = y[i]
        z_old = z[i]
        z[i] = z_old + u[i]
        d = schedule_free_rule(u[i], z_old, z[i], yi, hp)
        dst[i] = yi + d if fused else d
