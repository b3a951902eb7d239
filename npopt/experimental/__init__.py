"""optax's experimental modules (``optax.experimental``): APIs optax itself
marks as experimental, which may change or go in a later optax release.

* ``aggregating``: transformations of per-element (per-example) gradients
  into one update (averaging, accumulation over microbatches, mean and
  variance tracking).
"""
from . import aggregating

__all__ = ["aggregating"]
