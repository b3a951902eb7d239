r"""Linear system solvers: ``jaxopt.linear_solve`` with NumPy.

Every solver finds :math:`x` with :math:`(A + \text{ridge}\, I)\, x = b`
from a *matvec*, the product :math:`v \mapsto A v`, so :math:`A` need never be
formed; this is what implicit differentiation needs (``npopt.implicit_diff``
solves with :math:`A = \partial_1 F`). Same names, argument names, order and
defaults as jaxopt 0.8.5 (``jaxopt/_src/linear_solve.py``,
``_src/iterative_refinement.py``):

===========================  ==========================================  ============
function                     method                                      operator
===========================  ==========================================  ============
``solve_cg``                 conjugate gradient (Hestenes & Stiefel)     SPD
``solve_normal_cg``          CG on :math:`A^H A x = A^H b`               any, also non-square
``solve_gmres``              restarted GMRES (Saad & Schultz)            any square
``solve_bicgstab``           BiCGSTAB (van der Vorst)                    any square
``solve_lu``                 dense LU with partial pivoting              any square
``solve_cholesky``           dense Cholesky                              SPD
``solve_qr``                 dense Householder QR                        any square
``solve_inv``                dense inverse, then :math:`A^{-1} b`        any square
``solve_iterative_refinement``  :math:`x \leftarrow x + \text{solve}(b - A x)`  any square
===========================  ==========================================  ============

**Operators and right-hand sides.** ``b`` is a pytree of float32/float64
(or complex) arrays, and ``matvec`` maps a pytree shaped like the solution
to one shaped like ``b``. Instead of a callable, ``matvec`` may be a dense
2-D array (or any object with ``shape`` and ``@``: a ``scipy.sparse``
matrix, a ``scipy.sparse.linalg.LinearOperator``) acting on the *ravelled*
vector (``npopt.tree.ravel`` order). The solution has ``b``'s structure and
leaf dtypes (float32 in, float32 out). ``ridge`` adds :math:`\text{ridge}
\cdot v` to every product, as jaxopt's ``_make_ridge_matvec``.

* CG and BiCGSTAB run on pytrees with tree arithmetic, as ``jax.scipy``
  does. GMRES keeps its Krylov basis as a ``(restart + 1, n)`` matrix of
  ravelled vectors (jax pads every leaf with a trailing Krylov axis instead;
  the arithmetic is the same).
* The dense solvers materialise :math:`A` column by column on the ravelled
  space, :math:`A e_j` for the unit vectors :math:`e_j` (jaxopt does it with
  ``jax.jacfwd``; both cost :math:`n` products), then call LAPACK through
  NumPy/SciPy.

The stopping rules, iteration order and defaults are those of
``jax.scipy.sparse.linalg`` (jax 0.10.2 here), which jaxopt calls: stop when
:math:`\|r\| \le \max(\text{tol}\,\|b\|, \text{atol})`; ``tol=1e-5``,
``atol=0``, ``maxiter=None`` meaning :math:`10 n`; GMRES restarts every
``restart=20`` steps (``maxiter`` counts restarts) with
``solve_method='batched'``. Two departures, both where jax returns wrong
numbers silently: GMRES treats residual norms below :math:`\epsilon\|Mb\|`
as zero where jax uses an absolute :math:`\epsilon` (so jax returns ``x0``
for any :math:`\|b\| < 2.2\cdot 10^{-16}`), and the complex normal
equations and QR use :math:`A^H` where jaxopt transposes without
conjugating. Beyond jaxopt, the dense solvers accept any pytree ``b`` and
complex dtypes, and BiCGSTAB skips the product that jax computes and
discards on its early exit.

**What npopt adds: no silent failure.** jaxopt returns whatever the last
iterate was. npopt returns the same solution, but

* every solver takes ``return_info=False``; with ``True`` it returns
  ``(x, info)``, a ``LinearSolveInfo`` (``converged``, ``iter_num``,
  ``residual_norm`` :math:`= \|b - (A + \text{ridge}\,I)\, x\|`, ``tol``,
  ``num_matvec_eval``, ``status``);
* the iterative solvers take ``check='warn'``: when the stopping test is not
  met (``maxiter`` reached, a BiCGSTAB breakdown, NaN), ``'warn'`` emits a
  ``LinearSolveWarning`` with the residual, ``'raise'`` raises a
  ``LinearSolveError`` (a ``numpy.linalg.LinAlgError``) carrying the same
  ``info`` as ``err.info``, ``'ignore'`` is jaxopt's behaviour. Pass
  ``check='ignore'`` for deliberately truncated solves (a few CG steps in a
  Newton-CG method);
* the dense solvers raise ``LinearSolveError`` when the matrix is singular to
  working precision (an exactly zero pivot, or LAPACK's O(n^2) estimate of
  the reciprocal condition number below eps, where jax returns ``inf``/
  ``nan`` or digits that mean nothing) or, for ``solve_cholesky``, not
  positive definite (jax returns ``nan``). They have no ``check``: they
  either solve or raise.

Nothing here keeps state between calls (no module-level "last info"), so the
solvers are safe to call from several threads.

References:
  Hestenes & Stiefel, "Methods of conjugate gradients for solving linear
  systems", J. Res. NBS 49 (1952).
  Saad & Schultz, "GMRES: a generalized minimal residual algorithm for
  solving nonsymmetric linear systems", SIAM J. Sci. Stat. Comput. 7 (1986).
  van der Vorst, "Bi-CGSTAB: a fast and smoothly converging variant of Bi-CG
  for the solution of nonsymmetric linear systems", SIAM J. Sci. Stat.
  Comput. 13 (1992).
  Wilkinson, "Rounding Errors in Algebraic Processes", Prentice Hall (1963)
  (iterative refinement); Golub & Van Loan, "Matrix Computations", 4th ed.

Layout: ``dense`` (LU, Cholesky, QR, inverse), ``cg`` (CG and normal CG),
``bicgstab``, ``gmres``, ``refinement`` (iterative refinement); ``_common``
holds what they share (the report types, the input checks, the operator
adapter, the Krylov vector arithmetic).
"""
from .dense import solve_cholesky, solve_inv, solve_lu, solve_qr
from .cg import solve_cg, solve_normal_cg
from .bicgstab import solve_bicgstab
from .gmres import solve_gmres
from .refinement import solve_iterative_refinement
from ._common import LinearSolveError, LinearSolveInfo, LinearSolveWarning

# private helpers that other npopt modules reach through npopt.linear_solve
# (solvers.levenberg_marquardt, solvers.qp)
from .dense import _materialize  # noqa: F401
from .refinement import _quiet  # noqa: F401

__all__ = [
    "solve_lu", "solve_cholesky", "solve_qr", "solve_inv", "solve_cg",
    "solve_normal_cg", "solve_gmres", "solve_bicgstab",
    "solve_iterative_refinement",
    "LinearSolveInfo", "LinearSolveWarning", "LinearSolveError",
]
