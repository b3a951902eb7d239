"""Random trees: optax's ``tree_random_like`` family with NumPy generators.

optax splits a JAX PRNG key; npopt has no keys, so ``rng_key`` is a
``numpy.random.Generator`` or anything ``numpy.random.default_rng`` accepts
(an int seed, a ``SeedSequence``). One child generator is spawned per leaf
(``Generator.spawn``), so each leaf's numbers depend on the seed and the
leaf's position only, not on the other leaves' sizes, as with JAX's split.
The numbers are NumPy's, not JAX's threefry stream: the same seed does not
give optax's values.
"""
import numpy as np

from ._structure import tree_map, tree_structure, tree_unflatten


def _generator(rng_key, name="rng_key"):
    if isinstance(rng_key, np.random.Generator):
        return rng_key
    if isinstance(rng_key, (bool, np.bool_)) or not isinstance(
            rng_key, (int, np.integer, np.random.SeedSequence, np.random.BitGenerator)):
        raise TypeError(f"{name}: expected a numpy.random.Generator or an int seed, "
                        f"got {type(rng_key).__name__}")
    return np.random.default_rng(rng_key)


def tree_split_key_like(rng_key, target_tree):
    """A tree like ``target_tree`` of independent generators, one per leaf.

    Args:
      rng_key: a ``numpy.random.Generator`` or a seed (see the module).
      target_tree: the tree whose structure to match.
    """
    treedef = tree_structure(target_tree)
    return tree_unflatten(treedef, _generator(rng_key).spawn(treedef.num_leaves))


def normal(key, shape, dtype):
    """Standard normal numbers of ``shape`` and ``dtype`` from generator ``key``
    (``jax.random.normal``'s role; complex dtypes get unit variance, half in
    each part, as JAX)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        re = key.standard_normal(shape)
        im = key.standard_normal(shape)
        return ((re + 1j * im) * np.sqrt(0.5)).astype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"dtype: normal() needs a floating or complex dtype, got {dtype}")
    if dtype in (np.float32, np.float64):
        return key.standard_normal(shape, dtype=dtype)
    return key.standard_normal(shape).astype(dtype)


def tree_random_like(rng_key, target_tree, sampler=normal, dtype=None):
    """A tree like ``target_tree`` with random leaves of the same shapes.

    Args:
      rng_key: a ``numpy.random.Generator`` or a seed (see the module).
      target_tree: the tree to match; its leaves must have ``shape`` and
        ``dtype``.
      sampler: ``sampler(generator, shape, dtype) -> array`` (default:
        standard normal).
      dtype: the dtype of the numbers (None: each leaf's).
    """
    keys = tree_split_key_like(rng_key, target_tree)
    return tree_map(lambda leaf, key: sampler(key, np.shape(leaf),
                                              dtype if dtype is not None else np.asarray(leaf).dtype),
                    target_tree, keys)


def tree_unwrap_random_key_data(input_tree):
    """Generators in ``input_tree`` replaced by their state as numbers, for
    comparison (optax's, for JAX keys): a PCG64 generator becomes the uint64
    array ``[state_hi, state_lo, inc_hi, inc_lo]``; other leaves are kept."""
    def unwrap(x):
        if not isinstance(x, np.random.Generator):
            return x
        st = x.bit_generator.state
        if "state" in st and isinstance(st["state"], dict) and set(st["state"]) >= {"state", "inc"}:
            words = []
            for v in (st["state"]["state"], st["state"]["inc"]):
                words += [(v >> 64) & (2**64 - 1), v & (2**64 - 1)]
            return np.array(words, dtype=np.uint64)
        raise TypeError(f"tree_unwrap_random_key_data: a {st.get('bit_generator')} "
                        "generator has no numeric state form; use PCG64 (NumPy's default)")
    return tree_map(unwrap, input_tree)
