"""float16 and bfloat16 buffers to float32 and back, on the bits.

Numba has no 16-bit float type, so npopt computes 16-bit leaves in float32
(``npopt._checks.compute_dtype``) and converts around the kernels. NumPy's
``astype`` to and from float16 took 9 ns an element on the CPU this was
written on (no F16C path), longer than the Adam kernel itself; these loops
work on ``uint16`` / ``uint32`` views of the same memory instead:

* float16 -> float32: a look-up table of the 65536 float32 values (made by
  NumPy once: exact);
* float32 -> float16: NumPy's ``npy_floatbits_to_halfbits``, round to
  nearest even, subnormals, overflow to infinity and NaNs as NumPy makes
  them (the tests compare the bits with ``astype`` on millions of values);
* bfloat16 <-> float32: the top half of the float32 bits; rounding to
  nearest even, NaN kept quiet with its sign (as ``ml_dtypes``).
"""
from numba import prange

from ._jit import cpu_kernel, rule


@cpu_kernel
def f16_to_f32_cpu(h, table, out):
    """out[i] = table[h[i]]: h the uint16 view of float16s, out float32."""
    for i in prange(h.shape[0]):
        out[i] = table[h[i]]


@rule
def f32_bits_to_f16_bits(f):
    """The float16 bits nearest (ties to even) the float32 whose bits are ``f``
    (a uint32), as NumPy's ``npy_floatbits_to_halfbits``."""
    h_sgn = (f & 0x80000000) >> 16
    f_exp = f & 0x7f800000
    if f_exp >= 0x47800000:                       # overflow, inf, nan
        if f_exp == 0x7f800000:
            f_sig = f & 0x007fffff
            if f_sig != 0:                        # nan: keep the top payload bits, stay nan
                ret = 0x7c00 + (f_sig >> 13)
                if ret == 0x7c00:
                    ret += 1
                return h_sgn + ret
        return h_sgn + 0x7c00
    if f_exp <= 0x38000000:                       # a float16 subnormal, or zero
        if f_exp < 0x33000000:
            return h_sgn
        e = f_exp >> 23
        f_sig = 0x00800000 + (f & 0x007fffff)
        lost = f & 0x000007ff                     # bits below those the tie test sees
        f_sig >>= 113 - e
        if (f_sig & 0x00003fff) != 0x00001000 or lost != 0:
            f_sig += 0x00001000
        return h_sgn + (f_sig >> 13)
    h_exp = (f_exp - 0x38000000) >> 13
    f_sig = f & 0x007fffff
    if (f_sig & 0x00003fff) != 0x00001000:
        f_sig += 0x00001000
    return h_sgn + (f_sig >> 13) + h_exp          # a carry rounds up into the exponent


@cpu_kernel
def f32_to_f16_cpu(f, out):
    """out[i] = the float16 bits of the float32 bits f[i] (uint32 -> uint16)."""
    for i in prange(f.shape[0]):
        out[i] = f32_bits_to_f16_bits(f[i])


@cpu_kernel
def bf16_to_f32_cpu(h, out):
    """out[i] = h[i] << 16: the float32 bits of the bfloat16 bits h[i]."""
    for i in prange(h.shape[0]):
        out[i] = h[i] << 16


@rule
def f32_bits_to_bf16_bits(f):
    """The bfloat16 bits nearest (ties to even) the float32 bits ``f``; a NaN
    stays a quiet NaN with its sign."""
    if (f & 0x7fffffff) > 0x7f800000:
        return (f >> 16) | 0x0040
    return (f + 0x7fff + ((f >> 16) & 1)) >> 16


@cpu_kernel
def f32_to_bf16_cpu(f, out):
    for i in prange(f.shape[0]):
        out[i] = f32_bits_to_bf16_bits(f[i])
