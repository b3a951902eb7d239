r"""Sophia, a clipped diagonal-Newton method, and Hutchinson's estimator of
the Hessian diagonal (optax.contrib 0.2.8).

.. math::
    m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\qquad
    u_t = \mathrm{clip}\Big(\frac{m_t / (1-\beta_1^t)}{\max(\gamma h_{t-1},
    \epsilon)}, -\rho, \rho\Big),

    h_t = \beta_2 h_{t-1} + (1-\beta_2)\, \hat h_t \ \text{ every
    ``update_interval`` steps (when } t-1 \equiv 0), \text{ else } h_{t-1},

then weight decay and :math:`-\eta` (``sophia``). :math:`\hat h_t` comes
from ``hessian_diagonal_fn``, by default Hutchinson's estimator
:math:`\hat h = v \odot (H v)` with :math:`v` a Rademacher vector
(:math:`E[v \odot Hv] = \mathrm{diag}\,H`).

Hessian-vector products. optax computes :math:`Hv` by JAX autodiff of the
``obj_fn`` passed to ``update``; npopt has no autodiff, so the estimator
takes ``hvp_fn(params, v) -> H v`` (a tree like the params) instead, passed
to ``update``/``step`` as a keyword (sophia forwards it to the estimator):
``opt.update(grads, state, params, hvp_fn=hvp)``. It is called only on the
steps that refresh :math:`h` (optax traces it every step under
``lax.cond``).

The random signs: the state keeps optax's raw threefry key (``key``,
uint32 (2,)) and splits it as JAX does (``key, subkey = split(key)``), so the
key sequence is optax's; the signs are drawn by NumPy,
``numpy.random.default_rng(subkey)`` (``integers(0, 2)`` per leaf in leaf
order, mapped to :math:`\pm 1`), not by ``jax.random.rademacher``. Where
:math:`H` is diagonal, :math:`v \odot Hv = \mathrm{diag}\,H` whatever the
signs, and the trajectories equal optax's.

References:
  Liu et al., "Sophia: A Scalable Stochastic Second-order Optimizer for
  Language Model Pre-training", 2023 (arXiv:2305.14342).
  Hutchinson, "A stochastic estimator of the trace of the influence matrix
  for Laplacian smoothing splines", 1989.
"""
from typing import Any, NamedTuple

import numpy as np

from .. import _checks
from .._target import is_device_array
from ..base import (GradientTransformation, safe_int32_increment, with_extra_args_support)
from ..transforms.combine import as_transformation, chain
from ..transforms.noise import canonical_key, threefry_split
from ..transforms.scale import add_decayed_weights, scale_by_learning_rate
from ..tree import (tree_bias_correction, tree_cast, tree_dtype, tree_flatten, tree_leaves,
                    tree_map, tree_structure, tree_unflatten, tree_update_moment)


class HutchinsonState(NamedTuple):
    """State of ``hutchinson_estimator_diag_hessian``: the raw threefry key."""
    key: Any    # uint32 (2,)


def _host_only(tree, name, what):
    for leaf in tree_leaves(tree):
        if is_device_array(leaf):
            raise NotImplementedError(f"{name}: {what} runs on the host; CUDA device arrays "
                                      f"are not supported")


def hutchinson_estimator_diag_hessian(random_seed=None):
    r"""Hutchinson's estimator of the Hessian diagonal, :math:`v \odot Hv`.

    ``update(updates, state, params, hvp_fn=...)`` ignores ``updates``, draws
    a Rademacher vector :math:`v` like the params (float32 signs cast to the
    params' lowest float dtype, as optax) and returns ``v * hvp_fn(params,
    v)`` leaf by leaf (module docstring: the random stream, and why
    ``hvp_fn`` replaces optax's ``obj_fn``).

    Args:
      random_seed: a raw threefry key (uint32 (2,), e.g.
        ``jax.random.PRNGKey(s)``), or an int seed (npopt also accepts one);
        None: ``PRNGKey(0)``, as optax.

    Returns:
      A GradientTransformation with state ``HutchinsonState(key)``.
    """
    key0 = canonical_key(0 if random_seed is None else random_seed, "random_seed")

    def init_fn(params):
        return HutchinsonState(key=key0.copy())

    def update_fn(updates, state, params=None, hvp_fn=None, obj_fn=None, **extra_args):
        _checks.check_state("state", state, HutchinsonState, "hutchinson_estimator_diag_hessian")
        if params is None:
            raise ValueError("params must be provided to hutchinson update function.")
        if hvp_fn is None:
            raise ValueError(
                "hvp_fn: hutchinson's update needs hvp_fn(params, v) returning the "
                "Hessian-vector product H v (a tree like the params)"
                + ("; npopt has no autodiff, so obj_fn alone cannot give it"
                   if obj_fn is not None else ""))
        _checks.check_callable("hvp_fn", hvp_fn)
        _host_only(params, "params", "hutchinson_estimator_diag_hessian")
        key, subkey = threefry_split(canonical_key(state.key, "state.key"))
        leaves, treedef = tree_flatten(params)
        rng = np.random.default_rng([int(w) for w in subkey])
        signs = [(2 * rng.integers(0, 2, np.shape(p)) - 1).astype(np.float32) for p in leaves]
        low = tree_dtype(params, "lowest") if leaves else np.float32
        signs = tree_unflatten(treedef, [s.astype(low) for s in signs])
        hvp = hvp_fn(params, signs)
        try:
            hvp_leaves = treedef.flatten_up_to(hvp, "hvp_fn(params, v)")
        except (ValueError, TypeError) as e:
            raise ValueError(f"hvp_fn: expected a tree like the params "
                             f"({tree_structure(params)}), got {tree_structure(hvp)}") from e
        product = [np.asarray(h) * r for h, r in zip(hvp_leaves, tree_leaves(signs))]
        return tree_unflatten(treedef, product), HutchinsonState(key=key)

    return GradientTransformation(init_fn, update_fn)


class SophiaState(NamedTuple):
    """State of ``scale_by_sophia``."""
    count: Any             # int32 ()
    mu: Any                # momentum
    nu: Any                # EMA of the Hessian diagonal
    hessian_fn_state: Any  # the state of hessian_diagonal_fn


def scale_by_sophia(b1=0.965, b2=0.99, eps=1e-8, gamma=0.01, clip_threshold=1.0,
                    update_interval=10, hessian_diagonal_fn=None, mu_dtype=None, verbose=False,
                    print_win_rate_every_n_steps=0):
    r"""Sophia's preconditioner (module docstring), before weight decay and
    the learning rate.

    Args:
      b1: the momentum's decay.
      b2: the Hessian EMA's decay (per refresh: effectively
        ``1 - (1 - b2) / update_interval`` per step).
      eps: the floor of :math:`\gamma h`.
      gamma: the Hessian's scale :math:`\gamma`.
      clip_threshold: :math:`\rho` (None: no clipping).
      update_interval: refresh :math:`h` every this many steps (>= 1).
      hessian_diagonal_fn: a GradientTransformation returning the Hessian
        diagonal estimate (None: ``hutchinson_estimator_diag_hessian()``);
        ``update``'s extra keywords are forwarded to it.
      mu_dtype: the momentum's dtype (None: the params').
      verbose: print the win rate (the fraction of unclipped elements) every
        ``print_win_rate_every_n_steps`` steps.
      print_win_rate_every_n_steps: see ``verbose`` (0: never).

    Returns:
      A GradientTransformation with state ``SophiaState(count, mu, nu,
      hessian_fn_state)``.
    """
    for name, v in (("b1", b1), ("b2", b2)):
        _checks.check_number(name, v, low=0.0, high=1.0)
    eps = _checks.check_number("eps", eps, low=0.0)
    gamma = _checks.check_number("gamma", gamma, low=0.0)
    clip_threshold = _checks.check_number("clip_threshold", clip_threshold, low=0.0,
                                          allow_none=True)
    if (not isinstance(update_interval, (int, np.integer)) or isinstance(update_interval, bool)
            or update_interval < 1):
        raise ValueError(f"update_interval: expected an int >= 1, got {update_interval!r}")
    mu_dtype = _checks.check_float_dtype("mu_dtype", mu_dtype)
    verbose = _checks.check_bool("verbose", verbose)
    if hessian_diagonal_fn is None:
        hessian_diagonal_fn = hutchinson_estimator_diag_hessian()
    hess = with_extra_args_support(as_transformation("hessian_diagonal_fn",
                                                     hessian_diagonal_fn))

    def init_fn(params):
        _host_only(params, "params", "sophia")
        return SophiaState(
            count=np.int32(0),
            mu=tree_map(lambda p: np.zeros(np.shape(p), mu_dtype or np.asarray(p).dtype), params),
            nu=tree_map(lambda p: np.zeros_like(np.asarray(p)), params),
            hessian_fn_state=hess.init(params))

    def update_fn(updates, state, params=None, **hess_fn_kwargs):
        _checks.check_state("state", state, SophiaState, "scale_by_sophia")
        if params is None:
            raise ValueError("params must be provided to sophia's update function.")
        _host_only(updates, "updates", "sophia")
        grads = updates = tree_map(np.asarray, updates)
        count_inc = safe_int32_increment(state.count)
        mu = tree_update_moment(updates, state.mu, b1, 1)
        mu_hat = tree_bias_correction(mu, b1, count_inc)
        with np.errstate(divide="ignore", invalid="ignore"):
            new = tree_map(lambda m, h: m / np.maximum(gamma * h, eps), mu_hat, state.nu)
        if clip_threshold is not None:
            if verbose and print_win_rate_every_n_steps and \
                    int(count_inc) % int(print_win_rate_every_n_steps) == 0:
                kept = sum(int(np.sum(np.abs(u) < clip_threshold)) for u in tree_leaves(new))
                size = sum(np.size(u) for u in tree_leaves(new))
                print(f"Sophia optimizer win rate: {kept / size}")
            new = tree_map(lambda u: np.clip(u, -clip_threshold, clip_threshold), new)
        hessian_fn_state, nu = state.hessian_fn_state, state.nu
        if int(state.count) % update_interval == 0:
            hessian_diag, hessian_fn_state = hess.update(grads, hessian_fn_state, params=params,
                                                         **hess_fn_kwargs)
            nu = tree_update_moment(hessian_diag, nu, b2, 1)
        return new, SophiaState(count=count_inc, mu=tree_cast(mu, mu_dtype), nu=nu,
                                hessian_fn_state=hessian_fn_state)

    return GradientTransformation(init_fn, update_fn)


def sophia(learning_rate, b1=0.965, b2=0.99, eps=1e-8, weight_decay=1e-4,
           weight_decay_mask=None, gamma=0.01, clip_threshold=1.0, update_interval=10,
           hessian_diagonal_fn=hutchinson_estimator_diag_hessian(), mu_dtype=None,
           verbose=False, print_win_rate_every_n_steps=0):
    r"""Sophia: ``chain(scale_by_sophia(...), add_decayed_weights(weight_decay,
    weight_decay_mask), scale_by_learning_rate(learning_rate))``.

    ``update``/``step`` take the estimator's inputs as keywords: with the
    default Hutchinson estimator, ``hvp_fn(params, v)`` returning :math:`Hv`
    (optax takes ``obj_fn`` and differentiates it twice; see the module
    docstring)::

        opt = npopt.contrib.sophia(1e-3)
        params, state = opt.step(params, grads, state, hvp_fn=hvp)

    Args:
      learning_rate: a float or a schedule.
      b1, b2, eps, gamma, clip_threshold, update_interval,
      hessian_diagonal_fn, mu_dtype, verbose, print_win_rate_every_n_steps:
        see ``scale_by_sophia``.
      weight_decay, weight_decay_mask: decoupled weight decay (multiplied by
        the learning rate) and where to apply it.

    .. note:: optax (and npopt) draw Rademacher vectors, where the paper's
       Sophia-H draws Gaussian ones.

    References:
      Liu et al., arXiv:2305.14342; Levanter
      (https://github.com/stanford-crfm/levanter).
    """
    learning_rate = _checks.check_scalar_or_schedule("learning_rate", learning_rate)
    return chain(
        scale_by_sophia(b1=b1, b2=b2, eps=eps, gamma=gamma, clip_threshold=clip_threshold,
                        update_interval=update_interval,
                        hessian_diagonal_fn=hessian_diagonal_fn, mu_dtype=mu_dtype,
                        verbose=verbose,
                        print_win_rate_every_n_steps=print_win_rate_every_n_steps),
        add_decayed_weights(weight_decay, mask=weight_decay_mask),
        scale_by_learning_rate(learning_rate))


__all__ = ["HutchinsonState", "SophiaState", "hutchinson_estimator_diag_hessian",
           "scale_by_sophia", "sophia"]
