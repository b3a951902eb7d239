r"""Complex numbers in the update rules: optax's semantics, one source.

optax runs its rules on complex params (``jnp.complex64``/``complex128``)
with these conventions, which npopt's rules follow:

* linear recursions (momentum, moving averages, weight decay, the learning
  rate) act on the complex values as they are: ``mu = b1 mu + (1 - b1) g``;
* second moments are of the squared modulus,
  :math:`|g|^2 = \mathrm{Re}(\bar g g) = x^2 + y^2` for :math:`g = x + iy`
  (``optax.numerics.abs_sq``), and ``adamax``'s infinity moment of
  :math:`|g|`; such a moment is stored in the params' complex dtype, as
  optax's ``zeros_like(params)`` makes it, with a zero imaginary part;
* what meets a square root, a maximum or a sign is that real moment, and
  the update divides the complex first moment by a real number
  (``div_real``).

A rule is written once for real and complex elements with ``abs2`` and
``.real``: for a real ``x``, ``x.real`` is ``x`` and ``abs2(x)`` is
``x * x`` (plus a zero, exactly), so the real kernels' numbers are
unchanged. Numba compiles a complex specialisation of a kernel only when
complex arrays reach it (``transforms._elementwise``'s ``complex_ok``
lets them through; every other rule refuses complex params).
"""
from numba import types
from numba.extending import overload

from ._jit import rule


@rule
def abs2(x):
    """|x|^2: x*x for a real x, x.real**2 + x.imag**2 for a complex one."""
    return x.real * x.real + x.imag * x.imag


def div_real(z, d):
    """``z / d`` for a real ``d``: for a complex ``z``, its two parts divided
    by ``d`` (numba's complex division, Smith's algorithm with its branches,
    gives the same numbers here but does not vectorise: 5.8x slower on 1e6
    complex64). Compiled by the ``overload`` below, for the CPU and CUDA;
    under the CUDA simulator this Python body runs."""
    return z / d


@overload(div_real)
def _div_real(z, d):
    if isinstance(z, types.Complex):
        ct = z

        def impl(z, d):
            return ct(complex(z.real / d, z.imag / d))   # exact: the parts are of z's precision
        return impl
    return lambda z, d: z / d
