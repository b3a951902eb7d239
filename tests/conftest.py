import os
import sys

# CUDA kernels run on numba's simulator unless told otherwise (set
# NUMBA_ENABLE_CUDASIM=0 on a machine with a GPU to run them on hardware).
os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import numpy as np
from hypothesis import settings

# tests/ on the path so that `reference.problem` and `naive` import as modules
sys.path.insert(0, os.path.dirname(__file__))

settings.register_profile("npopt", max_examples=40, deadline=None, print_blob=True)
settings.load_profile("npopt")

DTYPES = (np.float32, np.float64)
# The SPEC's tolerances (§7): relative to the magnitude of each leaf.
TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-10}


def rel_err(got, ref):
    """max |got - ref| / max |ref| (elementwise relative error is meaningless
    for entries crossing zero; this is a leaf-wise relative error)."""
    got = np.asarray(got, np.float64)
    ref = np.asarray(ref, np.float64)
    if ref.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(ref))), 1e-300)
    return float(np.max(np.abs(got - ref))) / scale
