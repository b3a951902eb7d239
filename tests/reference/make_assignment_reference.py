"""Reference outputs of optax 0.2.8's ``optax.assignment``
(tests/reference/data/optax/assignment.npz). Needs jax + optax; x64.

    python tests/reference/make_assignment_reference.py

``CASES`` (importable without JAX; tests/test_assignment.py uses it) maps a
case name to ``make(rng) -> cost matrix`` (NumPy; its dtype is kept: float64,
float32 or int64). The npz holds ``{case}/cost``, ``{case}/{algo}/i`` and
``{case}/{algo}/j`` for ``algo`` in ``base_hungarian_algorithm`` and
``hungarian_algorithm`` (optax's outputs, as int64), and ``meta/signatures``
(JSON: the parameters of both functions).
"""
import json
import os
import sys
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data", "optax", "assignment.npz")
ALGOS = ("base_hungarian_algorithm", "hungarian_algorithm")

CASES = {
    # optax's docstring examples
    "doc_tall_int": lambda r: np.array([[8, 4, 7], [5, 2, 3], [9, 6, 7], [9, 4, 8]]),
    "doc_tall_int2": lambda r: np.array([[90, 80, 75, 70], [35, 85, 55, 65],
                                         [125, 95, 90, 95], [45, 110, 95, 115],
                                         [50, 100, 90, 100]]),
    "square_normal": lambda r: r.standard_normal((6, 6)),
    "square_large": lambda r: r.standard_normal((25, 25)),
    "wide_normal": lambda r: r.standard_normal((4, 7)),
    "tall_normal": lambda r: r.standard_normal((7, 4)),
    "wide_large": lambda r: r.uniform(size=(20, 31)),
    "tall_large": lambda r: r.uniform(size=(31, 20)),
    "square_float32": lambda r: r.standard_normal((6, 6)).astype(np.float32),
    "wide_float32": lambda r: r.standard_normal((3, 5)).astype(np.float32),
    # ties: many optimal assignments, optax's tie-breaking must be reproduced
    "ties_square_int": lambda r: r.integers(0, 3, (7, 7)),
    "ties_wide_int": lambda r: r.integers(0, 2, (5, 8)),
    "ties_tall_int": lambda r: r.integers(0, 2, (8, 5)),
    "ties_all_equal": lambda r: np.full((5, 5), 2.5),
    "ties_all_equal_wide": lambda r: np.zeros((3, 6)),
    "ties_repeated_rows": lambda r: np.tile(r.standard_normal(5), (4, 1)),
    "identity_cost": lambda r: 1.0 - np.eye(5),
    "negative_costs": lambda r: -np.abs(r.standard_normal((5, 6))) * 10,
    "one_by_one": lambda r: np.array([[3.5]]),
    "one_row": lambda r: r.standard_normal((1, 5)),
    "one_col": lambda r: r.standard_normal((5, 1)),
    "empty_rows": lambda r: np.zeros((0, 3)),
    "empty_cols": lambda r: np.zeros((3, 0)),
}


def case_cost(name):
    return CASES[name](np.random.default_rng(zlib.crc32(name.encode())))


def main():
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import optax
    from importlib.metadata import version

    sys.path.insert(0, HERE)
    from make_projections_reference import signatures

    arrays = {}
    for name in CASES:
        cost = case_cost(name)
        arrays[f"{name}/cost"] = cost
        line = []
        for algo in ALGOS:
            i, j = getattr(optax.assignment, algo)(jnp.asarray(cost))
            i, j = np.asarray(i, np.int64), np.asarray(j, np.int64)
            arrays[f"{name}/{algo}/i"], arrays[f"{name}/{algo}/j"] = i, j
            line.append(f"{algo[:4]} cost {float(np.sum(cost[i, j])):.6g}")
        print(f"{name:22s} {str(cost.shape):9s} {cost.dtype}: " + ", ".join(line))
    arrays["meta/signatures"] = np.array(json.dumps(signatures(optax.assignment, ALGOS)))
    arrays["meta/versions"] = np.array(
        [f"jax {version('jax')}", f"optax {version('optax')}", "jax_enable_x64"])
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
