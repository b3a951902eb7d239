"""Proximity operators that act element by element (jaxopt's ``prox`` module).

The prox of ``s * g`` (``s`` the ``scaling``) at ``x`` is
``argmin_y 1/2 ||x - y||^2 + s g(y)``. For separable ``g`` it is a scalar map
applied to every element; each is one ``@rule``, in jaxopt's order of
operations:

* ``soft_threshold_rule``: ``sign(u) * max(|u| - t, 0)``, ``t = s * l1reg``
  (lasso; Donoho & Johnstone 1994).
* ``elastic_net_rule``: ``soft(u, t) / d``, ``t = s * lam``,
  ``d = 1 + t * gam`` (Zou & Hastie 2005).
* ``relu_shift_rule``: ``max(u - t, 0)`` (non-negative lasso).
* ``scale_rule`` / ``relu_scale_rule``: ``f * u`` / ``max(f * u, 0)``
  (ridge, non-negative ridge, and the final rescaling of group lasso).

Scalar hyperparameters (``t``, ``d``, ``f``) are computed and cast to the
array's dtype on the host; the ``*_array`` kernels take one hyperparameter
per element and compute ``t`` (and ``d``) per element, as jaxopt does for
pytree hyperparameters. ``max(., 0)`` keeps NaN (``jax.nn.relu``).

``sumsq_chunks``: the squared l2 norm of a leaf (group lasso), as partial
sums over fixed chunks of ``CHUNK`` elements, so CPU and CUDA sum alike; the
host adds the partials in order.
"""
from numba import prange

from ._jit import CHUNK, cpu_kernel, cuda, cuda_kernel, rule


# --- scalar rules -----------------------------------------------------------

@rule
def soft_threshold_rule(u, t, zero):
    """sign(u) * max(|u| - t, 0) (t >= 0); NaN propagates."""
    a = abs(u) - t
    if a > zero:
        if u < zero:
            return -a
        return a
    if a <= zero:
        return zero
    return a  # NaN


@rule
def elastic_net_rule(u, t, d, zero):
    """soft_threshold(u, t) / d."""
    return soft_threshold_rule(u, t, zero) / d


@rule
def relu_shift_rule(u, t, zero):
    """max(u - t, 0); NaN propagates."""
    a = u - t
    if a < zero:
        return zero
    return a


@rule
def scale_rule(u, f):
    return f * u


@rule
def relu_scale_rule(u, f, zero):
    """max(f * u, 0); NaN propagates."""
    a = f * u
    if a < zero:
        return zero
    return a


# --- lasso: soft thresholding ----------------------------------------------

@cpu_kernel
def lasso_cpu(x, out, t, zero):
    """out = sign(x) * max(|x| - t, 0); t = scaling * l1reg (a scalar of x's dtype)."""
    for i in prange(x.shape[0]):
        out[i] = soft_threshold_rule(x[i], t, zero)


@cuda_kernel
def lasso_cuda(x, out, t, zero):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        out[i] = soft_threshold_rule(x[i], t, zero)


@cpu_kernel
def lasso_array_cpu(x, l1reg, out, s, zero):
    """out[i] = soft_threshold(x[i], l1reg[i] * s); one strength per element."""
    for i in prange(x.shape[0]):
        out[i] = soft_threshold_rule(x[i], l1reg[i] * s, zero)


@cuda_kernel
def lasso_array_cuda(x, l1reg, out, s, zero):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        out[i] = soft_threshold_rule(x[i], l1reg[i] * s, zero)


# --- non-negative lasso -----------------------------------------------------

@cpu_kernel
def non_negative_lasso_cpu(x, out, t, zero):
    """out = max(x - t, 0); t = l1reg * scaling (a scalar of x's dtype)."""
    for i in prange(x.shape[0]):
        out[i] = relu_shift_rule(x[i], t, zero)


@cuda_kernel
def non_negative_lasso_cuda(x, out, t, zero):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        out[i] = relu_shift_rule(x[i], t, zero)


@cpu_kernel
def non_negative_lasso_array_cpu(x, l1reg, out, s, zero):
    """out[i] = max(x[i] - l1reg[i] * s, 0)."""
    for i in prange(x.shape[0]):
        out[i] = relu_shift_rule(x[i], l1reg[i] * s, zero)


@cuda_kernel
def non_negative_lasso_array_cuda(x, l1reg, out, s, zero):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        out[i] = relu_shift_rule(x[i], l1reg[i] * s, zero)


# --- elastic net ------------------------------------------------------------

@cpu_kernel
def elastic_net_cpu(x, out, t, d, zero):
    """out = soft_threshold(x, t) / d; t = s * lam, d = 1 + t * gam (scalars)."""
    for i in prange(x.shape[0]):
        out[i] = elastic_net_rule(x[i], t, d, zero)


@cuda_kernel
def elastic_net_cuda(x, out, t, d, zero):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        out[i] = elastic_net_rule(x[i], t, d, zero)


@cpu_kernel
def elastic_net_array_cpu(x, lam, gam, out, s, one, zero):
    """out[i] = soft(x[i], s * lam[i]) / (1 + s * lam[i] * gam[i])."""
    for i in prange(x.shape[0]):
        t = s * lam[i]
        out[i] = elastic_net_rule(x[i], t, one + t * gam[i], zero)


@cuda_kernel
def elastic_net_array_cuda(x, lam, gam, out, s, one, zero):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        t = s * lam[i]
        out[i] = elastic_net_rule(x[i], t, one + t * gam[i], zero)


# --- ridge, non-negative ridge, group-lasso rescaling ----------------------

@cpu_kernel
def scale_cpu(x, out, f):
    """out = f * x (f a scalar of x's dtype)."""
    for i in prange(x.shape[0]):
        out[i] = scale_rule(x[i], f)


@cuda_kernel
def scale_cuda(x, out, f):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        out[i] = scale_rule(x[i], f)


@cpu_kernel
def relu_scale_cpu(x, out, f, zero):
    """out = max(f * x, 0)."""
    for i in prange(x.shape[0]):
        out[i] = relu_scale_rule(x[i], f, zero)


@cuda_kernel
def relu_scale_cuda(x, out, f, zero):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        out[i] = relu_scale_rule(x[i], f, zero)


# --- squared l2 norm (group lasso) -----------------------------------------

@cpu_kernel
def sumsq_chunks_cpu(x, zero, out):
    """out[k] = sum of x[i]**2 over chunk k = [k*CHUNK, (k+1)*CHUNK), serially,
    in x's dtype. ``out`` has ceil(len(x) / CHUNK) entries."""
    n = x.shape[0]
    for k in prange(out.shape[0]):
        a = k * CHUNK
        b = min(a + CHUNK, n)
        acc = zero
        for i in range(a, b):
            acc += x[i] * x[i]
        out[k] = acc


@cuda_kernel
def sumsq_chunks_cuda(x, zero, out):
    n = x.shape[0]
    for k in range(cuda.grid(1), out.shape[0], cuda.gridsize(1)):
        a = k * CHUNK
        b = min(a + CHUNK, n)
        acc = zero
        for i in range(a, b):
            acc += x[i] * x[i]
        out[k] = acc
