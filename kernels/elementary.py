"""Elementary functions (exp, log, pow, cos, ...) elementwise, with results
that do not depend on the CPU's SIMD width.

NumPy dispatches its transcendental ufuncs at run time to SIMD versions
(AVX-512 float64 ``exp``/``log``/``power``/``log1p``/``exp2``, AVX2
float32 ``exp``/``log``/``sin``/``cos``, ...) whose last bits differ from each
other: ``np.exp(x)`` is not the same number on an AVX-512 and an AVX2
machine. These loops call the C library's scalar functions instead (glibc's
``exp``/``log``/``pow``... are the same on every x86-64 CPU with FMA, which
every AVX2 and AVX-512 CPU has); LLVM cannot vectorise such calls, so the
loop's SIMD width never enters.
"""
import math

from numba import njit

from ._jit import CPU_OPTIONS


@njit(**CPU_OPTIONS)
def exp(x, out):
    for i in range(x.shape[0]):
        out[i] = math.exp(x[i])


@njit(**CPU_OPTIONS)
def log(x, out):
    for i in range(x.shape[0]):
        v = x[i]
        # math.log raises on v <= 0 in numba's 'python' model only; keep numpy's
        # -inf / nan without a Python exception
        out[i] = math.log(v) if v > 0 else (-math.inf if v == 0 else math.nan)


@njit(**CPU_OPTIONS)
def log1p(x, out):
    for i in range(x.shape[0]):
        v = x[i]
        out[i] = math.log1p(v) if v > -1 else (-math.inf if v == -1 else math.nan)


@njit(**CPU_OPTIONS)
def expm1(x, out):
    for i in range(x.shape[0]):
        out[i] = math.expm1(x[i])


@njit(**CPU_OPTIONS)
def exp2(x, out):
    for i in range(x.shape[0]):
        out[i] = math.pow(2.0, x[i])


@njit(**CPU_OPTIONS)
def power(x, y, out):
    for i in range(x.shape[0]):
        out[i] = math.pow(x[i], y[i])


@njit(**CPU_OPTIONS)
def cos(x, out):
    for i in range(x.shape[0]):
        out[i] = math.cos(x[i])


@njit(**CPU_OPTIONS)
def tanh(x, out):
    for i in range(x.shape[0]):
        out[i] = math.tanh(x[i])


@njit(**CPU_OPTIONS)
def arctan(x, out):
    for i in range(x.shape[0]):
        out[i] = math.atan(x[i])
