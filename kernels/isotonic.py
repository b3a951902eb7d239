"""Isotonic regression by the pool-adjacent-violators algorithm (PAV).

jaxopt's ``_isotonic_l2_pav_numba``, row by row: for a row ``y`` it solves

    argmin_{v_1 >= v_2 >= ... >= v_n} ||v - y||^2

(non-increasing; the host flips signs for the increasing problem). Blocks of
adjacent violators are pooled into their mean; ``target`` records the blocks
(for an active block [i..j], ``target[i] = j`` and ``target[j] = i``), and the
scan backtracks one block after each merge, so a row costs O(n) (Ayer et al.
1955; Best & Chakravarti 1990; the implementation follows jaxopt, which
follows scikit-learn's ``_inplace_contiguous_isotonic_regression``).

As in jaxopt, the pooling runs in float64 (``sol``, ``sums``, ``c``) whatever
the input dtype; the result is rounded to the output's dtype at the end.
Here the host's sign flip and the final ``clip(y_min, y_max)`` are folded
into the same pass: ``sign`` multiplies the input and the output
(exact), ``lo``/``hi`` are the bounds cast to the output's dtype.

Scratch arrays are passed in (one row each per input row), so the same rule
runs in the CPU loop and, one thread per row, in the CUDA kernel.
"""
from numba import config, prange

from ._jit import cpu_kernel, cuda, cuda_kernel, rule


@rule
def pav_row(y, out, sol, sums, c, target, sign, lo, hi):
    """One row: out = clip(sign * PAV_nonincreasing(sign * y), lo, hi).

    y, out: the row and its result (same dtype); sol, sums, c: float64
    scratch; target: int64 scratch; sign, lo, hi: scalars of y's dtype.
    """
    n = y.shape[0]
    for i in range(n):
        v = y[i] * sign
        sol[i] = v
        sums[i] = v
        c[i] = 1.0
        target[i] = i

    i = 0
    while i < n:
        k = target[i] + 1
        if k == n:
            break
        if sol[i] > sol[k]:
            i = k
            continue
        sum_y = sums[i]
        sum_c = c[i]
        while True:
            # within a non-decreasing run: pool it
            prev_y = sol[k]
            sum_y += sums[k]
            sum_c += c[k]
            k = target[k] + 1
            if k == n or prev_y > sol[k]:
                sol[i] = sum_y / sum_c
                sums[i] = sum_y
                c[i] = sum_c
                target[i] = k - 1
                target[k - 1] = i
                if i > 0:
                    # backtrack one block: a single pass, O(n)
                    i = target[i - 1]
                break

    # expand the blocks, undo the sign, clip
    i = 0
    while i < n:
        k = target[i] + 1
        for j in range(i, k):
            out[j] = sol[i]          # rounded to out's dtype (jaxopt's astype)
            w = out[j] * sign
            if w < lo:
                w = lo
            if w > hi:
                w = hi
            out[j] = w
        i = k


# The CUDA kernel calls the rule as a device function. numba's CUDA simulator
# cannot pass its simulated arrays into a CPU-compiled function, so there the
# kernel runs the rule's Python source instead (the same code).
_pav_row_device = pav_row.py_func if config.ENABLE_CUDASIM else pav_row


@cpu_kernel
def pav_cpu(y, out, sol, sums, c, target, sign, lo, hi):
    """PAV on every row of y (m, n) into out (m, n); scratch arrays (m, n)."""
    for r in prange(y.shape[0]):
        pav_row(y[r], out[r], sol[r], sums[r], c[r], target[r], sign, lo, hi)


@cuda_kernel
def pav_cuda(y, out, sol, sums, c, target, sign, lo, hi):
    """One thread per row (grid-stride over rows)."""
    for r in range(cuda.grid(1), y.shape[0], cuda.gridsize(1)):
        _pav_row_device(y[r], out[r], sol[r], sums[r], c[r], target[r], sign, lo, hi)
