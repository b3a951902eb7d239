"""Reference solves of jaxopt 0.8.5's ``jaxopt.linear_solve`` (jax.scipy's
cg / gmres / bicgstab underneath) -> tests/reference/data/jaxopt/linear_solve.npz.
Needs jax + jaxopt; x64, jitted.

    python tests/reference/make_linear_solve_reference.py

The systems are seeded NumPy data (``data()``), stored in the .npz beside the
results, so the tests need neither JAX nor this seed. ``CASES`` is the table
both sides run: ``name -> (function, matrix, rhs, kwargs)``:

* matrix: ``S`` (20x20 SPD), ``G`` (25x25 non-symmetric), ``N`` (18x10,
  non-square), ``D`` (2.5 times the identity, for scalar right-hand sides),
  ``E``/``F`` (12x12 non-symmetric / SPD with three distinct eigenvalues),
  ``H``/``C`` (10x10 complex Hermitian positive definite / non-Hermitian);
* rhs: ``vec`` (1-D), ``tree`` (a dict pytree raveled in sorted-key order),
  ``mat`` (a 2-D array), ``scalar`` (0-d), with ``_f32`` for float32;
  ``cvec``: complex128;
* kwargs may hold ``init='rand'|'zeros'`` (built here), ``M='jacobi'``
  (the inverse diagonal as preconditioner) and, for iterative refinement,
  ``solve='gmres'|'cg'`` with ``solve_kw``.

For the iterative methods the generator also stores ``iters``: the smallest
``maxiter`` whose result is bitwise the full run's (CG/BiCGSTAB steps,
GMRES restarts; IterativeRefinement's ``state.iter_num``), since jax's
solvers do not report it.
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data", "jaxopt", "linear_solve.npz")

try:
    from . import fixed_order as fo        # imported as reference.<this module>
except ImportError:                        # run as a script
    sys.path.insert(0, HERE)
    import fixed_order as fo

# leaf shapes of the pytree right-hand sides (sizes 20 and 25)
TREE_SHAPES = {20: {"a": (4, 3), "b": (8,)}, 25: {"a": (5, 3), "b": (10,)}}
MAT_SHAPES = {20: (4, 5), 25: (5, 5)}


def data(seed=0):
    """The systems (no BLAS/LAPACK here, ``fixed_order``: the same bits on
    every CPU)."""
    rng = np.random.default_rng(seed)
    Q = rng.standard_normal((20, 20))
    S = fo.mm(Q, Q.T) / 20 + 0.5 * np.eye(20)                        # SPD, eigenvalues in [0.5, 5]
    G = 2.0 * np.eye(25) + rng.standard_normal((25, 25)) / np.sqrt(25)
    N = rng.standard_normal((18, 10))
    out = dict(S=S, G=G, N=N, D=2.5 * np.eye(1))
    for n in (18, 20, 25):
        out[f"b{n}"] = rng.standard_normal(n)
        out[f"init{n}"] = rng.standard_normal(n)
    out["init10"] = rng.standard_normal(10)
    out["b1"] = np.array([1.7])
    # E: 12x12 non-symmetric with the 3 eigenvalues {1, 2, 3} (Krylov spaces
    # stop growing after 3 steps: an Arnoldi breakdown); F: its SPD sibling.
    V = np.eye(12) + 0.2 * rng.standard_normal((12, 12))
    lam = np.repeat([1.0, 2.0, 3.0], 4)
    out["E"] = fo.mm(V * lam, fo.inv(V))                       # V diag(lam) V^-1
    Qf, _ = fo.qr(rng.standard_normal((12, 12)))
    out["F"] = fo.mm(Qf * lam, Qf.T)
    out["b12"] = rng.standard_normal(12)
    # H: 10x10 complex Hermitian positive definite; C: complex non-Hermitian.
    X = rng.standard_normal((10, 10)) + 1j * rng.standard_normal((10, 10))
    out["H"] = fo.mm(X, X.conj().T) / 10 + np.eye(10)
    out["C"] = 2.0 * np.eye(10) + (rng.standard_normal((10, 10))
                                   + 1j * rng.standard_normal((10, 10))) / np.sqrt(20)
    out["bc10"] = rng.standard_normal(10) + 1j * rng.standard_normal(10)
    return out


CASES = {
    # -- CG (S)
    "cg_default": ("solve_cg", "S", "vec", dict()),
    "cg_tight": ("solve_cg", "S", "vec", dict(tol=1e-12)),
    "cg_ridge_init": ("solve_cg", "S", "vec", dict(ridge=0.5, init="rand", tol=1e-10)),
    "cg_tree": ("solve_cg", "S", "tree", dict(tol=1e-10)),
    "cg_maxiter": ("solve_cg", "S", "vec", dict(tol=1e-12, maxiter=5)),
    "cg_atol": ("solve_cg", "S", "vec", dict(tol=0.0, atol=1e-6)),
    "cg_jacobi": ("solve_cg", "S", "vec", dict(tol=1e-10, M="jacobi")),
    "cg_f32": ("solve_cg", "S", "vec_f32", dict(tol=1e-5)),
    # -- CG on the normal equations
    "ncg_square": ("solve_normal_cg", "G", "vec", dict(tol=1e-10)),
    "ncg_nonsquare": ("solve_normal_cg", "N", "vec", dict(tol=1e-10, init="zeros")),
    "ncg_ridge": ("solve_normal_cg", "N", "vec", dict(ridge=0.1, init="zeros", tol=1e-10)),
    "ncg_default": ("solve_normal_cg", "G", "vec", dict()),
    # -- GMRES (G)
    "gmres_default": ("solve_gmres", "G", "vec", dict()),
    "gmres_tight": ("solve_gmres", "G", "vec", dict(tol=1e-12)),
    "gmres_restart5": ("solve_gmres", "G", "vec", dict(tol=1e-10, restart=5)),
    "gmres_incremental": ("solve_gmres", "G", "vec",
                          dict(tol=1e-10, restart=5, solve_method="incremental")),
    "gmres_incremental_default": ("solve_gmres", "G", "vec", dict(solve_method="incremental")),
    "gmres_ridge_init": ("solve_gmres", "G", "vec", dict(ridge=0.3, init="rand", tol=1e-10)),
    "gmres_tree": ("solve_gmres", "G", "tree", dict(tol=1e-10, restart=7)),
    "gmres_maxiter": ("solve_gmres", "G", "vec", dict(tol=1e-12, restart=3, maxiter=2)),
    "gmres_jacobi": ("solve_gmres", "G", "vec", dict(tol=1e-10, restart=6, M="jacobi")),
    "gmres_spd": ("solve_gmres", "S", "vec", dict(tol=1e-10, restart=4,
                                                  solve_method="incremental")),
    "gmres_f32": ("solve_gmres", "G", "vec_f32", dict(restart=5)),
    # -- BiCGSTAB (G)
    "bicgstab_default": ("solve_bicgstab", "G", "vec", dict()),
    "bicgstab_tight": ("solve_bicgstab", "G", "vec", dict(tol=1e-12)),
    "bicgstab_tree": ("solve_bicgstab", "G", "tree", dict(tol=1e-10)),
    "bicgstab_ridge_init": ("solve_bicgstab", "G", "vec", dict(ridge=0.3, init="rand",
                                                               tol=1e-10)),
    "bicgstab_maxiter": ("solve_bicgstab", "G", "vec", dict(tol=1e-12, maxiter=3)),
    "bicgstab_jacobi": ("solve_bicgstab", "G", "vec", dict(tol=1e-10, M="jacobi")),
    "bicgstab_f32": ("solve_bicgstab", "G", "vec_f32", dict()),
    # -- three distinct eigenvalues: breakdowns and early exits
    "gmres_breakdown": ("solve_gmres", "E", "vec", dict(tol=1e-12)),
    "gmres_breakdown_incremental": ("solve_gmres", "E", "vec",
                                    dict(tol=1e-12, solve_method="incremental")),
    "bicgstab_few_eigs": ("solve_bicgstab", "E", "vec", dict(tol=1e-12)),
    "cg_few_eigs": ("solve_cg", "F", "vec", dict(tol=1e-12)),
    # -- complex
    "cg_complex": ("solve_cg", "H", "cvec", dict(tol=1e-10)),
    "gmres_complex": ("solve_gmres", "C", "cvec", dict(tol=1e-10, restart=4)),
    "gmres_complex_incremental": ("solve_gmres", "C", "cvec",
                                  dict(tol=1e-10, restart=4, solve_method="incremental")),
    "bicgstab_complex": ("solve_bicgstab", "C", "cvec", dict(tol=1e-10)),
    # (jaxopt's dense solvers reject complex b: jax.jacfwd needs real inputs)
    # -- dense solvers
    "lu_vec": ("solve_lu", "G", "vec", dict()),
    "lu_ridge": ("solve_lu", "G", "vec", dict(ridge=0.7)),
    "lu_mat": ("solve_lu", "G", "mat", dict()),
    "lu_scalar": ("solve_lu", "D", "scalar", dict()),
    "lu_f32": ("solve_lu", "G", "vec_f32", dict()),
    "cholesky_vec": ("solve_cholesky", "S", "vec", dict()),
    "cholesky_ridge": ("solve_cholesky", "S", "vec", dict(ridge=0.7)),
    "cholesky_scalar": ("solve_cholesky", "D", "scalar", dict()),
    "qr_vec": ("solve_qr", "G", "vec", dict()),
    "qr_ridge": ("solve_qr", "G", "vec", dict(ridge=0.7)),
    "qr_scalar": ("solve_qr", "D", "scalar", dict()),
    "inv_vec": ("solve_inv", "G", "vec", dict()),
    "inv_ridge": ("solve_inv", "S", "vec", dict(ridge=0.7)),
    "inv_scalar": ("solve_inv", "D", "scalar", dict()),
    # -- iterative refinement
    "ir_default": ("solve_iterative_refinement", "G", "vec", dict()),
    "ir_init": ("solve_iterative_refinement", "G", "vec", dict(init="rand")),
    "ir_cg": ("solve_iterative_refinement", "S", "vec", dict(tol=1e-12, solve="cg")),
    "ir_cg_inexact": ("solve_iterative_refinement", "S", "vec",
                      dict(solve="cg", solve_kw=dict(maxiter=2))),
    "ir_tree": ("solve_iterative_refinement", "G", "tree", dict(tol=1e-10, maxiter=20)),
    "ir_maxiter": ("solve_iterative_refinement", "G", "vec",
                   dict(tol=1e-14, maxiter=2, solve_kw=dict(tol=1e-3))),
}

ITERATIVE = ("solve_cg", "solve_normal_cg", "solve_gmres", "solve_bicgstab")


def problem(name, D, xp=np, tree_of=None):
    """``(A, b, kwargs)`` of a case with arrays from ``xp`` (numpy or jax.numpy).

    ``tree_of(vec, n)`` turns a flat vector into the case's pytree (for
    ``rhs='tree'``); ``kwargs`` has ``init`` and ``M`` materialised (M as a
    matrix; the callers wrap it). Returns the rhs dtype too.
    """
    fn, mat, rhs, kw = CASES[name]
    kw = dict(kw)
    dtype = (xp.float32 if rhs.endswith("_f32") else
             xp.complex128 if rhs == "cvec" else xp.float64)
    A = xp.asarray(D[mat], dtype=dtype)
    m = D[mat].shape[0]
    n = D[mat].shape[1]
    b = xp.asarray(D[f"bc{m}" if rhs == "cvec" else f"b{m}"], dtype=dtype)
    kind = rhs.replace("_f32", "")
    if kind == "tree":
        b = tree_of(b, m)
    elif kind == "mat":
        b = b.reshape(MAT_SHAPES[m])
    elif kind == "scalar":
        b = b[0]
    if kw.get("init") == "rand":
        init = xp.asarray(D[f"init{n}"], dtype=dtype)
        kw["init"] = tree_of(init, n) if kind == "tree" else init.reshape(np.shape(b))
    elif kw.get("init") == "zeros":
        kw["init"] = xp.zeros(n, dtype=dtype)
    if kw.get("M") == "jacobi":
        kw["M"] = xp.diag(1.0 / xp.diag(A))
    return fn, A, b, kw


def _smallest_maxiter(run, full, hi):
    """The smallest m in [0, hi] with run(m) == full, bitwise (monotone in m)."""
    lo = 0
    while lo < hi:
        mid = (lo + hi) // 2
        if np.array_equal(run(mid), full):
            hi = mid
        else:
            lo = mid + 1
    return lo


def main():
    import functools

    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree
    from jaxopt import linear_solve as jls
    from jaxopt._src.iterative_refinement import IterativeRefinement

    D = data()

    def tree_of(vec, n):
        shapes = TREE_SHAPES[n]
        out, o = {}, 0
        for k in sorted(shapes):
            size = int(np.prod(shapes[k]))
            out[k] = vec[o:o + size].reshape(shapes[k])
            o += size
        return out

    def flat(x):
        return np.asarray(ravel_pytree(x)[0])

    arrays = {f"data/{k}": v for k, v in D.items()}
    meta = {}
    for name in CASES:
        fn, A, b, kw = problem(name, D, jnp, tree_of)
        M = kw.pop("M", None)
        init = kw.pop("init", None)
        solve_name = kw.pop("solve", "gmres")
        solve_kw = kw.pop("solve_kw", {})

        def matvec(v, A=A):
            if isinstance(v, dict):
                vec, unravel = ravel_pytree(v)
                return unravel(A @ vec)
            out = A @ v.reshape(-1)
            return out.reshape(v.shape) if A.shape[0] == A.shape[1] else out

        extra = {}
        if M is not None:
            extra["M"] = lambda v, M=M: M @ v

        if fn == "solve_iterative_refinement":
            inner = functools.partial(getattr(jls, "solve_" + solve_name), **solve_kw)
            solver = IterativeRefinement(matvec_A=lambda _, x: matvec(x), solve=inner,
                                         **kw)

            @jax.jit
            def run_ir(b, init):
                if init is None:
                    init = solver.init_params(None, b)
                return solver.run(init, A=None, b=b)
            sol, state = run_ir(b, init)
            x = flat(sol)
            iters = int(state.iter_num)
        else:
            f = getattr(jls, fn)

            # jaxopt's scalar branch (`if A == 0.0`) cannot be traced: the dense
            # solvers run eagerly (op by op, the same XLA kernels).
            jit = jax.jit if fn in ITERATIVE else (lambda g: g)

            @jit
            def run(b, init, maxiter):
                kwargs = dict(kw, **extra)
                if maxiter is not None:
                    kwargs["maxiter"] = maxiter
                return f(matvec, b, init=init, **kwargs) if fn in ITERATIVE else \
                    f(matvec, b, **kwargs)

            x = flat(run(b, init, None))
            iters = -1
            if fn in ITERATIVE:
                size = int(np.size(flat(b)))
                hi = kw.get("maxiter", 10 * size)
                iters = _smallest_maxiter(lambda m: flat(run(b, init, m)), x, hi)
        arrays[f"{name}/x"] = x
        meta[name] = dict(iters=iters, dtype=str(x.dtype))
        print(f"{name:28s} iters={iters:4d} |x|={np.linalg.norm(x):.6g} dtype={x.dtype}")
    arrays["meta"] = np.array(json.dumps(meta))
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({os.path.getsize(OUT) / 1024:.0f} KiB)")


if __name__ == "__main__":
    sys.exit(main())
