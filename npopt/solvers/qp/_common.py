"""What the QP solvers share: the linear operators (jaxopt's
``linear_operator.py``: ``DenseLinearOperator``, ``FunctionalLinearOperator``,
a transpose formed once per problem), ``Q x`` and ``c`` from a quadratic
given as a function (``extract_Qc_from_obj``), and the input checks.
"""
import numpy as np

from ... import _dense
from ... import tree as T
from .. import base


KKTSolution = base.KKTSolution


# --------------------------------------------------------------------------
# Linear operators (jaxopt/_src/linear_operator.py).

class DenseLinearOperator:
    """``x -> Q x`` for a pytree of matrices, leaf by leaf (jaxopt's)."""

    def __init__(self, pytree):
        self.pytree = pytree

    def __call__(self, x):
        return self.matvec(x)

    def matvec(self, x):
        return T.tree_map(_dense.dot, self.pytree, x)

    def rmatvec(self, _, y):
        return T.tree_map(lambda w, yi: _dense.dot(np.transpose(w), yi), self.pytree, y)

    def matvec_and_rmatvec(self, x, y):
        return self.matvec(x), self.rmatvec(x, y)

    def normal_matvec(self, x):
        """``A^T A x``."""
        return self.rmatvec(x, self.matvec(x))

    def diag(self):
        return T.tree_map(np.diag, self.pytree)

    def columns_l2_norms(self, squared=False):
        def col_norm(w):
            n = np.sum(np.square(w), axis=0)
            return n if squared else np.sqrt(n)
        return T.tree_map(col_norm, self.pytree)

    def dense(self, x):
        return self.pytree


class FunctionalLinearOperator:
    """``x -> fun(params, x)`` for a linear ``fun``; its transpose comes from
    the dense matrix built column by column (``n`` products, once)."""

    def __init__(self, fun, params):
        self.fun, self.params = fun, params
        self._mat = None

    def __call__(self, x):
        return self.matvec(x)

    def matvec(self, x):
        return self.fun(self.params, x)

    def _matrix(self, x):
        if self._mat is None:
            flat, unravel = T.ravel(x)
            n = flat.size
            e = np.zeros(n, flat.dtype)
            cols = []
            for j in range(n):
                e[j] = 1
                cols.append(T.ravel(self.fun(self.params, unravel(e)))[0])
                e[j] = 0
            self._mat = (np.stack(cols, axis=1) if cols else np.zeros((0, 0)), unravel)
        return self._mat

    def rmatvec(self, x, y):
        mat, unravel = self._matrix(x)
        return unravel(_dense.dot(mat.T, T.ravel(y)[0]))

    def matvec_and_rmatvec(self, x, y):
        return self.matvec(x), self.rmatvec(x, y)

    def normal_matvec(self, x):
        return self.rmatvec(x, self.matvec(x))


class _OperatorFactory:
    """``make(params) -> operator``, caching the last operator so that a
    matvec's transpose is built once per ``params`` object."""

    def __init__(self, matvec):
        self.matvec = matvec
        self._last = None

    def __call__(self, params):
        if self.matvec is None:
            return DenseLinearOperator(params)
        if self._last is not None and self._last[0] is params:
            return self._last[1]
        op = FunctionalLinearOperator(self.matvec, params)
        self._last = (params, op)
        return op

    def reset(self):
        self._last = None


def _check_matvec(name, f):
    if f is not None and not callable(f):
        raise TypeError(f"{name}: expected None or a callable {name}(params, x), "
                        f"got {type(f).__name__}")


_FD_MESSAGE = ("fun (a quadratic given as a function) is differentiated by central finite "
               "differences: every product Q x costs {two_n} evaluations of fun for the {n} "
               "primal variables, the slow path; pass matvec_Q (or Q itself in params_obj)")


def _fun_matvec_Q(fun, fd=None):
    """``matvec_Q((params, c, cste), x) = grad f(x) - c`` for a quadratic ``fun``
    (``fd``: the solver's ``base.FiniteDifferences``, which warns once)."""
    fd = base.FiniteDifferences() if fd is None else fd

    def matvec_Q(params_obj, x):
        params, c, _ = params_obj
        return T.tree_sub(fd(fun, x, params), c)
    return matvec_Q


def extract_Qc_from_obj(x, params_obj, fun):
    """``(params_Q, c)``: ``params_obj`` itself, or with ``fun`` ``((params_obj,
    c, cste), c)`` where ``c = grad f(0)`` and ``cste = f(0)``."""
    if fun is None:
        params_Q, c = params_obj
        return params_Q, c
    if x is None:
        raise ValueError("init_params: must be provided when fun is not None")
    zeros = T.tree_zeros_like(x)
    cste = fun(zeros, params_obj)
    c = base.finite_difference_grad(fun, zeros, params_obj)
    return (params_obj, c, cste), c


def _check_finite(name, tree, allow_inf=False):
    """Every floating leaf of ``tree`` finite (``allow_inf``: not NaN; bounds
    may be infinite): a NaN in the data would otherwise surface as a
    meaningless error deep inside the solver."""
    for leaf in T.tree_leaves(tree):
        a = np.asarray(leaf) if not hasattr(leaf, "toarray") else None
        if a is None or a.dtype.kind not in "fc":
            continue
        bad = np.isnan(a) if allow_inf else ~np.isfinite(a)
        if np.any(bad):
            what = "NaN" if np.any(np.isnan(a)) else "an infinite value"
            raise ValueError(f"{name}: expected {'no NaN' if allow_inf else 'finite numbers'}, "
                             f"got {what} (in a leaf of shape {a.shape})")


def _quadratic(Q, c, x):
    """``c^T x + 0.5 x^T Q x``."""
    return T.tree_vdot(c, x) + 0.5 * T.tree_vdot(x, Q(x))


def _stationarity_Q(Q, x):
    """The gradient of ``0.5 x^T Q x``: ``(Q + Q^T) x / 2``, as autodiff gives
    (``Qx`` for a symmetric ``Q``)."""
    Qx, QTx = Q.matvec_and_rmatvec(x, x)
    return T.tree_scalar_mul(0.5, T.tree_add(Qx, QTx))
