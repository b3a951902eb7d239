"""Flat-array numba kernels (installed as npopt.kernels)."""
