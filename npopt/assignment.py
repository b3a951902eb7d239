r"""The linear assignment problem: ``optax.assignment`` for NumPy.

Given an :math:`n \times m` cost matrix :math:`C`, find ``min(n, m)`` pairs
``(i_k, j_k)`` of distinct rows and distinct columns minimising
:math:`\sum_k C_{i_k j_k}`:

.. math::

    \min_{X \in \{0, 1\}^{n \times m}} \sum_{ij} C_{ij} X_{ij}
    \quad \text{s.t.} \quad \sum_i X_{ij} \le 1, \;
    \sum_j X_{ij} \le 1, \; \sum_{ij} X_{ij} = \min(n, m).

Both functions return ``(i, j)``, two integer arrays of length ``min(n, m)``
with ``cost_matrix[i, j].sum()`` the optimal cost, in optax's order (which
differs between the two, see each docstring), and both are O(n^2 m) ports of
optax's own algorithms, so that where several assignments are optimal (ties)
they return the one optax returns.

Where npopt differs from optax on purpose: the cost matrix must be a finite
real 2-D array (optax gives NaN potentials, or loops forever, on infinite
entries; use a large finite cost for a forbidden pair); the arithmetic is in
float64 whatever the input dtype (as optax under x64, where its potentials
are float64); the index arrays are ``np.int64``.

``scipy.optimize.linear_sum_assignment`` solves the same problem (Crouse's
algorithm too, in C) and returns the rows in increasing order; npopt's tests
check both functions against it (the optimal cost) and against optax (the
indices).
"""
import numpy as np

from ._checks import _describe

__all__ = ["base_hungarian_algorithm", "hungarian_algorithm"]


def _cost(cost_matrix):
    """The cost matrix as a float64 2-D array (checked: real, finite)."""
    try:
        c = np.asarray(cost_matrix)
    except Exception:  # noqa: BLE001 - anything numpy cannot read
        raise TypeError(f"cost_matrix: expected a 2-D array, got "
                        f"{_describe(cost_matrix)}") from None
    if c.ndim != 2:
        raise ValueError(f"cost_matrix: expected a 2-D array (rows x columns), got an "
                         f"array of shape {c.shape}")
    if c.dtype.kind not in "fiub":
        raise TypeError(f"cost_matrix: expected real numbers, got dtype {c.dtype}")
    c = c.astype(np.float64)
    if not np.all(np.isfinite(c)):
        raise ValueError("cost_matrix: expected finite costs (use a large finite cost for a "
                         "forbidden pair), got NaN or infinite entries")
    return c


def _empty():
    return np.zeros(0, np.int64), np.zeros(0, np.int64)


# ---------------------------------------------------------------------------
# Crouse's shortest augmenting path (optax's base_hungarian_algorithm)
# ---------------------------------------------------------------------------

def _scan_remaining(costs, i, u, v, min_value, remaining, spc, path, row4col):
    """One sweep over the columns not yet in the tree from row ``i``: relax the
    shortest-path costs ``spc`` (and ``path``) and pick the next column.

    optax loops over ``remaining`` in order, keeping the running minimum
    ``lowest`` and moving ``index`` to every entry that is strictly lower, or
    equal and unassigned. That picks the last unassigned column achieving the
    minimum if there is one, else the first column achieving it; the same
    choice is made here on the whole vector at once.
    """
    j = remaining
    r = min_value + costs[i, j] - u[i] - v[j]        # optax's order of operations
    better = r < spc[j]
    path[j[better]] = i
    spc[j] = np.minimum(spc[j], r)
    s = spc[j]
    lowest = s.min()
    at_min = s == lowest
    free = at_min & (row4col[j] == -1)
    if free.any():
        index = int(np.flatnonzero(free)[-1])
    else:
        index = int(np.flatnonzero(at_min)[0])
    return index, lowest


def _augmenting_path(costs, u, v, path, row4col, current_row):
    """Dijkstra-like search for the shortest augmenting path from ``current_row``
    (Crouse 2016, Algorithm 1's inner loop; scipy's ``augmenting_path``)."""
    nr, nc = costs.shape
    min_value = 0.0
    remaining = np.arange(nc)[::-1].copy()       # columns not yet reached, optax's order
    sr = np.zeros(nr, bool)                      # rows in the tree
    sc = np.zeros(nc, bool)                      # columns in the tree
    spc = np.full(nc, np.inf)                    # shortest path costs
    sink = -1
    i = current_row
    while sink == -1:
        sr[i] = True
        index, min_value = _scan_remaining(costs, i, u, v, min_value, remaining, spc, path,
                                           row4col)
        j = remaining[index]
        if row4col[j] == -1:
            sink = j                             # an unassigned column: augment
        else:
            i = row4col[j]                       # continue from the row holding j
        sc[j] = True
        remaining[index] = remaining[-1]         # optax: the last one takes its place
        remaining = remaining[:-1]
    return sink, min_value, sr, sc, spc


def base_hungarian_algorithm(cost_matrix):
    r"""The Hungarian algorithm for the linear assignment problem, as
    shortest augmenting paths (Crouse 2016, pp. 1685-1686; the algorithm of
    scipy's ``linear_sum_assignment``), a port of optax's.

    With ``n <= m`` (else the transpose is solved), rows are added one at a
    time. For row ``r`` a Dijkstra-like search over reduced costs
    ``C_ij - u_i - v_j`` finds the shortest path to an unassigned column
    (``_augmenting_path``); the potentials are updated

    .. math::  u_r \mathrel{+}= \delta, \quad
               u_i \mathrel{+}= \delta - d_{\mathrm{col}(i)} \ (i \text{ in the tree}), \quad
               v_j \mathrel{+}= d_j - \delta \ (j \text{ in the tree}),

    with :math:`\delta` the path's length and :math:`d` the shortest-path
    costs, keeping every reduced cost >= 0 and those of the assignment 0, and
    the assignment is flipped along the path. O(n^2 m).

    Args:
      cost_matrix: a 2-D array of finite real costs, shape (n, m).
    Returns:
      ``(i, j)``, integer arrays of length ``min(n, m)``: row and column
      indices of the assignment; ``cost_matrix[i, j].sum()`` is its cost.
      With ``n <= m``, ``i = arange(n)``; with ``n > m``, ``i`` is increasing
      (optax's order).

    References:
      Crouse, `On implementing 2D rectangular assignment algorithms
      <https://ieeexplore.ieee.org/document/7738348>`_, IEEE Trans. Aerospace
      and Electronic Systems, 2016.
    """
    costs = _cost(cost_matrix)
    if costs.shape[0] == 0 or costs.shape[1] == 0:
        return _empty()
    transpose = costs.shape[1] < costs.shape[0]
    if transpose:
        costs = costs.T
    nr, nc = costs.shape
    u = np.zeros(nr)
    v = np.zeros(nc)
    path = np.full(nc, -1)
    col4row = np.full(nr, -1)
    row4col = np.full(nc, -1)
    for current_row in range(nr):
        sink, min_value, sr, sc, spc = _augmenting_path(costs, u, v, path, row4col, current_row)
        # update the potentials (optax's order: the current row first)
        u[current_row] += min_value
        mask = sr & (np.arange(nr) != current_row)
        u = np.where(mask, u + min_value - spc[col4row], u)
        v = np.where(sc, v + spc - min_value, v)
        # flip the assignment along the path back to current_row
        while True:
            i = path[sink]
            row4col[sink] = i
            col4row[i], sink = sink, col4row[i]
            if i == current_row:
                break
    if transpose:
        order = np.argsort(col4row, kind="stable")
        return col4row[order].astype(np.int64), order.astype(np.int64)
    return np.arange(nr, dtype=np.int64), col4row.astype(np.int64)


# ---------------------------------------------------------------------------
# the e-maxx / Scenic formulation (optax's hungarian_algorithm)
# ---------------------------------------------------------------------------

def hungarian_algorithm(cost_matrix):
    r"""The Hungarian algorithm for the linear assignment problem, in the
    formulation of the Scenic library (the e-maxx version of Kuhn-Munkres
    with potentials and Dijkstra-like column growth), a port of optax's.

    With ``n <= m`` (else the transpose is solved) and 1-based rows, row
    ``r`` is added by growing a tree of columns from the virtual column 0:
    each step takes the unused column with the least reduced cost
    ``minv_j = min C_ij - u_i - v_j`` over the tree's rows, shifts the
    potentials by that ``delta`` (``u`` of the tree's rows up, ``v`` of its
    columns down, ``minv`` of the others down) and stops at a free column;
    the matching is then flipped back along ``path``. ``-v[0]`` is the
    optimal cost. O(n^2 m).

    Args:
      cost_matrix: a 2-D array of finite real costs, shape (n, m).
    Returns:
      ``(i, j)``, integer arrays of length ``min(n, m)``: row and column
      indices of the assignment; ``cost_matrix[i, j].sum()`` is its cost.
      optax's order: for a square matrix ``j = arange(n)`` (``i[k]`` is the
      row of column k); for ``n < m``, ``i`` is decreasing; for ``n > m``,
      ``j`` is decreasing (``jax.lax.top_k`` order).

    References:
      Dehghani et al., `Scenic: A JAX Library for Computer Vision Research
      and Beyond <https://arxiv.org/abs/2110.11403>`_, 2022.
    """
    costs = _cost(cost_matrix)
    if costs.shape[0] == 0 or costs.shape[1] == 0:
        return _empty()
    transpose = costs.shape[0] > costs.shape[1]
    if transpose:
        costs = costs.T
    rows, cols = costs.shape
    u = np.zeros(rows + 2)               # row potentials, 1-based; rows + 1 is a sink
    v = np.zeros(cols + 1)               # column potentials, 1-based; -v[0] the cost
    parent = np.zeros(cols + 1, np.int64)  # the (1-based) row matched to each column
    for row in range(rows):
        parent[0] = row + 1
        path = np.zeros(cols, np.int64)
        used = np.zeros(cols + 1, bool)
        minv = np.full(cols, np.inf)
        col = 0
        while parent[col] != 0:          # grow the tree until a free column
            used[col] = True
            unused = ~used[1:]
            r = parent[col]
            cur = costs[r - 1, :] - u[r] - v[1:]
            cur = np.where(unused, cur, np.inf)
            path = np.where(cur < minv, col, path)
            minv = np.where(cur < minv, cur, minv)
            col = int(np.argmin(np.where(unused, minv, np.inf))) + 1
            delta = np.min(minv, where=unused, initial=np.inf)
            # shift the potentials (rows of unused columns go to the sink rows + 1)
            np.add.at(u, np.where(used, parent, rows + 1), delta)
            v = np.where(used, v - delta, v)
            minv = np.where(unused, minv - delta, minv)
        while col != 0:                  # flip the matching back along the path
            new_col = path[col - 1]
            parent[col] = parent[new_col]
            col = new_col
    if rows == cols:
        i, j = parent[1:], np.arange(rows, dtype=np.int64)
    else:
        # lax.top_k(parent[1:], rows): the matched columns by decreasing row
        # (distinct rows, so the order is well defined)
        j = np.argsort(-parent[1:], kind="stable")[:rows].astype(np.int64)
        i = parent[1:][j]
    i = i - 1                            # back to 0-based rows
    if transpose:
        return j, i
    return i, j
