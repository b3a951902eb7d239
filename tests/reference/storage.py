"""How reference trajectories are stored compactly (used by make_reference.py).

Large arrays are stored as samples: the final params only at ``sample_idx``
(already in ``{dtype}/params_sampled``, whose last row is step 100), and
every state leaf of more than ``BIG`` elements at 512 fixed positions of its
raveled form, with those positions beside it as ``{dtype}/state_{i}_idx``.
This keeps each case around 50 KiB instead of 700 KiB while every leaf is
still checked (all elements of the small leaves, 512 of each large one).

    python tests/reference/storage.py data/optax/*.npz   # shrink files in place
"""
import sys

import numpy as np

BIG = 4096
STATE_SAMPLES = 512


def state_sample_indices(size):
    """512 sorted positions in [0, size), the same for every leaf of that size."""
    rng = np.random.default_rng(size)
    return np.sort(rng.choice(size, size=STATE_SAMPLES, replace=False)).astype(np.int64)


def shrink(arrays):
    """The compact form of a dict of reference arrays (see the module docstring)."""
    out = {}
    for key, a in arrays.items():
        if key.endswith("/params_100"):
            continue
        parts = key.split("/")
        if (len(parts) == 2 and parts[1].startswith("state_") and parts[1][6:].isdigit()
                and np.size(a) > BIG):
            idx = state_sample_indices(np.size(a))
            out[key] = np.asarray(a).reshape(-1)[idx]
            out[key + "_idx"] = idx
            continue
        out[key] = a
    return out


def main(paths):
    import os
    for path in paths:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        before = os.path.getsize(path)
        np.savez_compressed(path, **shrink(arrays))
        print(f"{path}: {before / 1024:.0f} -> {os.path.getsize(path) / 1024:.0f} KiB")


if __name__ == "__main__":
    main(sys.argv[1:])
