"""scale_by_novograd: NovoGrad's layer-wise second moment (Ginsburg et al., 2019).

The second moment ``nu`` is one *scalar per leaf*, the first moment ``mu``
is elementwise; see ``npopt.kernels.novograd`` for the recursion. A step is
two passes over the gradient: the per-leaf sums of squares (deterministic
chunked sums, ``npopt.transforms._segments``), then one elementwise pass
(fused with the learning rate and ``apply_updates`` in ``step``).

The per-leaf scalar states (``nu`` here) are 0-d views into one small buffer
per dtype group, so that the fused step updates them in place (the helpers,
shared with the other per-leaf rules, are in ``_segments``).
"""
from typing import Any, NamedTuple

import numpy as np

from .. import _checks, _flat
from .._checks import real_dtype
from ..base import NO_PARAMS_MSG, ZERO, GradientTransformation, safe_increment
from ..kernels import novograd as knov
from . import _fusion, _segments


class ScaleByNovogradState(NamedTuple):
    count: Any   # int32 step counter
    mu: Any      # first moment, a tree like params (mu_dtype)
    nu: Any      # second moment: one 0-d array per leaf (the leaf's dtype)


# ---------------------------------------------------------------------------
# scale_by_novograd
# ---------------------------------------------------------------------------

def scale_by_novograd(b1=0.9, b2=0.25, eps=1e-8, eps_root=0.0, weight_decay=0.0,
                      mu_dtype=None):
    r"""NovoGrad: Adam-like scaling with one second moment per leaf.

    Per leaf :math:`l`, with :math:`n_l = \|g_l\|^2`:

    .. math::
        \nu_l \leftarrow \beta_2 \nu_l + (1-\beta_2) n_l
        \ (\nu_l = n_l \text{ at the first step}),\\
        m \leftarrow \beta_1 m + \frac{g}{\sqrt{\nu_l + \epsilon_{root}} + \epsilon} + \lambda p
        \ (\text{no } \beta_1 m \text{ at the first step}),\quad u = m.

    .. warning:: As in optax: no :math:`1-\beta_1` factor and no bias
       correction on the first moment; the first step initialises
       :math:`\nu` with :math:`n` instead of averaging it with 0. The
       transform's ``eps`` default is 1e-8; ``novograd``'s is 1e-6.

    Args:
      b1: decay of the first moment (momentum).
      b2: decay of the per-leaf second moment.
      eps: added to the denominator outside the square root.
      eps_root: added inside the square root.
      weight_decay: :math:`\lambda`, L2 decay added inside the moment.
      mu_dtype: dtype of the first moment (None: the params' dtype); the
        updates have this dtype.

    Needs ``params`` in ``update``.

    References:
      Ginsburg et al., "Stochastic Gradient Methods with Layer-wise Adaptive
      Moments for Training of Deep Networks", 2019 (arXiv:1905.11286).
    """
    b1 = _checks.check_number("b1", b1, low=0.0, high=1.0)
    b2 = _checks.check_number("b2", b2, low=0.0, high=1.0)
    eps = _checks.check_number("eps", eps, low=0.0)
    eps_root = _checks.check_number("eps_root", eps_root, low=0.0)
    weight_decay = _checks.check_number("weight_decay", weight_decay, low=0.0)
    mu_dtype = _checks.check_float_dtype("mu_dtype", mu_dtype)

    def mdt(grp):
        return mu_dtype or grp.dtype

    def init_fn(params):
        lay, _ = _flat.layout_of(params, complex_ok=True)    # |g| norms, complex moments
        mu = lay.views(lay.full(0, mu_dtype))
        nu = _segments.leaf_scalar_views(lay, [lay.target.full(len(g.leaf_ids), 0, g.dtype)
                                     for g in lay.groups])
        return ScaleByNovogradState(count=ZERO, mu=mu, nu=nu)

    def buffers(lay, state):
        _checks.check_state("state", state, ScaleByNovogradState, "scale_by_novograd")
        mu, c1 = lay.gather_report(state.mu, "state.mu", [mdt(g) for g in lay.groups])
        nu, c2 = _segments.gather_leaf_scalars(lay, state.nu, "state.nu")
        return mu, nu, c1 or c2

    def launch(lay, g, mu, nu, p, dst, first, posts):
        """Both passes for every group; posts[gi] = (neg_lr, wd per leaf) when fused."""
        fused = posts is not None
        for gi, grp in enumerate(lay.groups):
            rdt = real_dtype(grp.dtype)    # complex leaves: real norms and hyperparameters
            dt = rdt.type
            k = len(grp.leaf_ids)
            r = lay.target.empty(k, rdt)
            hp = (dt(1 - b2), dt(b2), dt(eps), dt(eps_root), dt(1))
            lay.target.launch(knov.novograd_leaves_cpu, knov.novograd_leaves_cuda,
                              _segments.leaf_sumsq(lay, gi, g[gi]), nu[gi], r, hp, first)
            if fused:
                neg_lr, post_wd = posts[gi]
            else:
                neg_lr, post_wd = dt(0), lay.target.put(np.zeros(k, rdt))
            _, chunks, offsets = _segments.tables(lay)[gi]
            hp = (real_dtype(mdt(grp)).type(b1), dt(weight_decay), neg_lr)
            lay.target.launch(knov.novograd_cpu, knov.novograd_cuda,
                              g[gi], mu[gi], g[gi] if fused else p[gi], dst[gi], chunks,
                              offsets, r, post_wd, hp, first, fused)

    def update_fn(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError(NO_PARAMS_MSG)
        lay, _ = _flat.layout_of(params, "params", complex_ok=True)
        g = lay.gather(updates, "updates")
        p = lay.gather(params, "params")
        mu, nu, _ = buffers(lay, state)
        mu, nu = lay.copy(mu), lay.copy(nu)
        count = safe_increment(state.count)
        out = lay.empty(mu_dtype)
        launch(lay, g, mu, nu, p, out, bool(count == 1), None)
        return lay.views(out), ScaleByNovogradState(count, lay.views(mu),
                                                    _segments.leaf_scalar_views(lay, nu))

    def bind(lay, state):
        """The state checked and bound for a fused step (see ``_fusion.Bound``)."""
        _checks.check_state("state", state, ScaleByNovogradState, "scale_by_novograd")
        mu, mu_tree, t1 = lay.bind(state.mu, "state.mu", [mdt(g) for g in lay.groups])
        nu, _ = _segments.gather_leaf_scalars(lay, state.nu, "state.nu")
        nu_tree, t2 = _flat.bind_custom(state.nu, "state.nu", nu,
                                        lambda b: _segments.leaf_scalar_views(lay, b), lay.target)
        count = safe_increment(state.count)

        def run(g, p, posts):
            launch(lay, g, mu, nu, None, p, bool(count == 1),
                   [_segments.segment_posts(lay, gi, runs) for gi, runs in enumerate(posts)])
            return ScaleByNovogradState(count, mu_tree, nu_tree)
        writes = [("state.mu", b) for b in mu] + [("state.nu", b) for b in nu]
        return _fusion.Bound(writes, (t1, t2), run)

    def run(lay, g, p, state, posts):
        return bind(lay, state).run(g, p, posts)

    # with a separate mu_dtype the update is rounded to it before the learning
    # rate, which the fused epilogue (in the params' dtype) would skip
    fusion = _fusion.Precond(run, None, bind) if mu_dtype is None else None
    return GradientTransformation(init_fn, update_fn, fusion=fusion)
