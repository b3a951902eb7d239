"""add_noise: annealed Gaussian gradient noise (Neelakantan et al., 2015).

The random stream
-----------------
optax keeps a JAX PRNG key in ``AddNoiseState.rng_key``, splits it every step
(``rng_key, sample_key = jax.random.split(rng_key)``) and draws the noise
with ``jax.random.normal(sample_key, ...)``. npopt keeps the *same key*:

* ``rng_key`` is the raw threefry-2x32 key, a ``uint32`` array of shape
  ``(2,)``, what ``jax.random.key_data(key)`` returns (``key=0`` gives
  ``[0, 0]``, as ``jax.random.key(0)``);
* it is split exactly as JAX splits it (``threefry_split`` below, with JAX's
  default ``jax_threefry_partitionable=True``), so the state matches optax's
  bit for bit, step after step;
* the noise itself comes from NumPy: ``numpy.random.default_rng(sample_key)``
  (PCG64 seeded with the two words of the sample key) draws
  ``standard_normal`` for every leaf in leaf order, in the leaf's dtype.
  JAX's normal sampler (threefry bits -> uniform -> erfinv) is not
  reproduced, so the noise differs from optax's draw by draw; its
  distribution, schedule and the noise-free part are optax's.

A run is thus reproducible from its state alone: the same state and
gradients give the same noise. (NumPy keeps the PCG64 bit stream stable
across versions, but NEP 19 allows ``Generator.standard_normal`` to change
between releases: bitwise reproducibility holds for a given NumPy version.)

On a CUDA target the sample is drawn on the host and copied to the device
once per step (the one host-to-device transfer of this rule; params and
moments stay on the device). ``rng_key`` and ``count`` are host scalars.
"""
import numbers
import warnings
from typing import Any, NamedTuple

import numpy as np

from .. import _checks, _flat
from ..base import ZERO, GradientTransformation, safe_increment
from ..kernels import noise as knoise
from . import _fusion

_MASK32 = 0xFFFFFFFF
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


class AddNoiseState(NamedTuple):
    count: Any     # int32 step counter
    rng_key: Any   # uint32 (2,): the raw threefry key (jax.random.key_data layout)


def threefry2x32(key, x):
    """The Threefry-2x32 block cipher (20 rounds), as JAX's ``threefry_2x32``.

    Args:
      key: two 32-bit words (ints).
      x: two 32-bit words, the counter.

    Returns:
      The two enciphered 32-bit words (ints).

    References:
      Salmon et al., "Parallel Random Numbers: As Easy as 1, 2, 3", SC 2011.
    """
    k0, k1 = int(key[0]), int(key[1])
    ks = (k0, k1, k0 ^ k1 ^ 0x1BD11BDA)
    x0 = (int(x[0]) + ks[0]) & _MASK32
    x1 = (int(x[1]) + ks[1]) & _MASK32
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x0 = (x0 + x1) & _MASK32
            x1 = ((x1 << r) | (x1 >> (32 - r))) & _MASK32
            x1 ^= x0
        x0 = (x0 + ks[(i + 1) % 3]) & _MASK32
        x1 = (x1 + ks[(i + 2) % 3] + i + 1) & _MASK32
    return x0, x1


def threefry_split(key, num=2):
    """``jax.random.split`` of a raw threefry key into ``num`` keys.

    JAX's default ("partitionable") split enciphers the counters
    ``(0, j)``, ``j = 0 .. num-1``, under ``key``. Returns a uint32 array of
    shape ``(num, 2)``.
    """
    return np.array([threefry2x32(key, (0, j)) for j in range(num)], np.uint32)


def key_from_seed(seed):
    """The raw key ``jax.random.key(seed)`` holds (with jax_enable_x64):
    the 64-bit two's-complement seed split into its high and low words."""
    s = int(seed) & 0xFFFFFFFFFFFFFFFF
    return np.array([s >> 32, s & _MASK32], np.uint32)


def canonical_key(key, name="key"):
    """A fresh uint32 (2,) raw key from an int seed, a raw key (uint32 array
    of shape (2,), e.g. ``jax.random.key_data(k)`` or the legacy
    ``jax.random.PRNGKey(s)``) or a typed JAX key."""
    if isinstance(key, (numbers.Integral, np.integer)) and not isinstance(key, bool):
        if not -2**63 <= int(key) < 2**64:
            raise ValueError(f"{name}: expected a 64-bit integer seed, got {key!r}")
        return key_from_seed(key)
    dt = getattr(key, "dtype", None)
    if dt is not None and "key<" in str(dt):          # a typed jax.random.key
        import jax
        key = jax.random.key_data(key)
    a = np.asarray(key) if dt is not None or isinstance(key, (list, tuple)) else None
    if a is None or a.shape != (2,) or a.dtype != np.uint32:
        raise TypeError(
            f"{name}: expected an int seed or a raw threefry key (a uint32 array of "
            f"shape (2,)), got {_checks._describe(key)}")
    return a.copy()


def standard_normal(lay, sample_key):
    """N(0, 1) buffers (one per dtype group of ``lay``, on the host), drawn
    from ``numpy.random.default_rng(sample_key)`` leaf by leaf in leaf order,
    each leaf in its own dtype."""
    rng = np.random.default_rng([int(w) for w in sample_key])
    bufs = [np.empty(g.size, g.dtype) for g in lay.groups]
    where = {}
    for gi, g in enumerate(lay.groups):
        for k, i in enumerate(g.leaf_ids):
            where[i] = (gi, g.offsets[k], g.offsets[k + 1])
    for i in range(lay.num_leaves):
        gi, a, b = where[i]
        if b > a:
            rng.standard_normal(out=bufs[gi][a:b], dtype=lay.groups[gi].dtype)
    return bufs


def add_noise(eta, gamma, key=None, *, seed=None):
    r"""Adds annealed Gaussian noise to the updates.

    .. math::
        u_t = g_t + \sigma_t z_t, \qquad z_t \sim \mathcal N(0, I), \qquad
        \sigma_t^2 = \eta / t^{\gamma}

    with :math:`t = 1, 2, \dots` the step number (optax's ``count + 1``; the
    paper writes :math:`(1+t)^\gamma` with :math:`t` from 0).
    :math:`\sigma_t` is computed in float64 and rounded to the leaf dtype.

    Args:
      eta: the initial variance :math:`\eta` (>= 0).
      gamma: the annealing exponent :math:`\gamma` (the paper uses 0.55).
      key: an int seed, or a raw threefry key (uint32 array of shape (2,)),
        or a JAX key. None warns (as optax) and uses 0.
      seed: deprecated alias of ``key`` (DeprecationWarning, as optax).

    Returns:
      A GradientTransformation with state ``AddNoiseState(count, rng_key)``.
      The random stream (JAX's key splitting, NumPy's normal sampler) is
      described in this module's docstring.

    References:
      Neelakantan et al., "Adding Gradient Noise Improves Learning for Very
      Deep Networks", 2015 (arXiv:1511.06807).
    """
    eta = _checks.check_number("eta", eta, low=0.0)
    gamma = _checks.check_number("gamma", gamma, low=0.0)    # the variance anneals, never grows
    if seed is not None:
        warnings.warn('"seed" is deprecated and will be removed in optax 0.2.7, use "key".',
                      DeprecationWarning, stacklevel=2)
        if key is not None:
            raise ValueError("Only one of seed or key can be specified.")
        key = seed
    if key is None:
        warnings.warn("Specifying a key will be required in optax 0.2.7.", stacklevel=2)
        key = 0
    key0 = canonical_key(key, "seed" if seed is not None else "key")

    def init_fn(params):
        return AddNoiseState(count=ZERO, rng_key=key0.copy())

    def advance(state):
        """(new state, sigma as float64, sample key): the host part of a step."""
        _checks.check_state("state", state, AddNoiseState, "add_noise")
        rng_key = canonical_key(state.rng_key, "state.rng_key")
        count = safe_increment(state.count)
        new_key, sample_key = threefry_split(rng_key)
        sigma = np.sqrt(eta / np.float64(count) ** gamma)
        return AddNoiseState(count=count, rng_key=new_key), sigma, sample_key

    def noise(lay, sample_key):
        return [lay.target.put(b) for b in standard_normal(lay, sample_key)]

    def update_fn(updates, state, params=None, **extra_args):
        lay, _ = _flat.layout_of(updates, "updates")
        g = lay.gather(updates, "updates")
        new_state, sigma, sample_key = advance(state)
        z = noise(lay, sample_key)
        out = lay.empty()
        for grp, gb, zb, ob in zip(lay.groups, g, z, out):
            dt = grp.dtype.type
            lay.target.launch(knoise.noise_cpu, knoise.noise_cuda, gb, zb, ob, (dt(sigma),),
                              (dt(0), dt(0)), False)
        return lay.views(out), new_state

    def bind(lay, state):
        # the state is not modified in place (a new key, a new count)
        new_state, sigma, sample_key = advance(state)
        z = noise(lay, sample_key)

        def run(g, p, posts):
            for grp, gb, zb, pb, runs in zip(lay.groups, g, z, p, posts):
                hp = (grp.dtype.type(sigma),)
                for a, b, post in runs:
                    lay.target.launch(knoise.noise_cpu, knoise.noise_cuda, gb[a:b], zb[a:b],
                                      pb[a:b], hp, post, True)
            return new_state
        return _fusion.Bound((), (), run)

    def run(lay, g, p, state, posts):
        return bind(lay, state).run(g, p, posts)

    return GradientTransformation(init_fn, update_fn, fusion=_fusion.Precond(run, None, bind))
