"""optax's ``tree_utils`` spelling of npopt.tree: the same functions.

``npopt.tree_utils.tree_add is npopt.tree.tree_add``. optax has the same
functions twice too: ``optax.tree_utils.tree_add`` and ``optax.tree.add``
(npopt.tree has both spellings).
"""
from .tree import *  # noqa: F401,F403
from .tree import __all__  # noqa: F401
