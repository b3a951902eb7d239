"""scale_by_sm3: SM3's per-axis accumulators (Anil et al., 2019).

The state keeps, per leaf, a list with one accumulator vector per axis
(``mu``) and the momentum of the scaled gradient (``nu``); see
``npopt.kernels.sm3``. All of a dtype group's accumulators live end to end in
one small buffer, handed out as views, so the fused step updates them in
place: one pass over the elements (reading the old accumulators and
gathering the new maxima), then a tiny combine pass over the accumulators.
"""
from typing import Any, NamedTuple

import numpy as np

from .. import _checks, _flat
from ..base import GradientTransformation
from ..kernels import sm3 as ksm3
from ..tree import tree_flatten, tree_unflatten
from . import _fusion, _segments
from ._segments import mark_base, segment_posts


class ScaleBySM3State(NamedTuple):
    mu: Any   # per leaf, a list of per-axis accumulators (1-D arrays, one per axis)
    nu: Any   # momentum of the scaled gradient, a tree like params


MAX_PARTS = 64   # CPU: rows of partial maxima (any number gives the same result)

_TABLES = {}


class _Tables(NamedTuple):
    meta: Any       # int64 (k, 3): start, ndim, dptr per leaf (on the target)
    dims: Any       # int64: the leaves' dims, end to end (on the target)
    muoff: Any      # int64: offset of each axis's accumulator in the mu buffer
    parts: Any      # int64: chunk-index bounds of the CPU parts (on the target)
    nparts: int     # rows of partial maxima (1 on CUDA: atomic max)
    host_off: tuple  # per leaf, the accumulator offsets (host, for views)
    size: int       # length of the mu buffer


def _tables(lay):
    t = _TABLES.get(lay)
    if t is None:
        t = []
        for gi, grp in enumerate(lay.groups):
            meta, dims, muoff, host_off, m = [], [], [], [], 0
            for k, shape in enumerate(grp.shapes):
                meta.append((grp.offsets[k], len(shape), len(dims)))
                offs = []
                for d in shape:
                    dims.append(d)
                    muoff.append(m)
                    offs.append(m)
                    m += d
                host_off.append(tuple(offs))
            nchunks = len(_segments.tables(lay)[gi][0])
            nparts = 1 if lay.target.device else max(1, min(nchunks, MAX_PARTS))
            parts = np.linspace(0, nchunks, nparts + 1).round().astype(np.int64)
            t.append(_Tables(lay.target.put(np.asarray(meta, np.int64).reshape(-1, 3)),
                             lay.target.put(np.asarray(dims, np.int64)),
                             lay.target.put(np.asarray(muoff, np.int64)),
                             lay.target.put(parts), nparts, tuple(host_off), m))
        if len(_TABLES) > 256:
            _TABLES.clear()
        _TABLES[lay] = t
    return t


def _check_shapes(lay, name):
    for i, shape in enumerate(lay.shapes):
        if len(shape) == 0:
            raise ValueError(
                f"{name}: leaf {i} is a scalar; scale_by_sm3 keeps one accumulator per "
                "axis and needs leaves with at least one axis (optax fails on scalars "
                "too): reshape it to (1,) or leave it out with masked / multi_transform")


def _mu_views(lay, bufs):
    """The per-leaf lists of per-axis accumulator views into ``bufs``."""
    leaves = [None] * lay.num_leaves
    for grp, buf, tab in zip(lay.groups, bufs, _tables(lay)):
        for k, i in enumerate(grp.leaf_ids):
            leaves[i] = [mark_base(lay, buf[o:o + d], buf)
                         for o, d in zip(tab.host_off[k], grp.shapes[k])]
    return tree_unflatten(lay.treedef, leaves)


def _gather_mu(lay, tree, name):
    """(buffers, copied): one accumulator buffer per group from the state's mu tree."""
    try:
        lists = lay.treedef.flatten_up_to(tree)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{name}: expected per leaf a list of per-axis accumulators, in a "
                         f"tree with the structure of the params {lay.treedef}, got "
                         f"{tree_flatten(tree)[1]}") from e
    bufs, copied = [], False
    for grp, tab in zip(lay.groups, _tables(lay)):
        arrays, offs = [], []
        for k, i in enumerate(grp.leaf_ids):
            acc = lists[i]
            shape = grp.shapes[k]
            if (not isinstance(acc, (list, tuple)) or len(acc) != len(shape)
                    or any(getattr(a, "shape", None) != (d,) or a.dtype != grp.dtype
                           for a, d in zip(acc, shape))):
                raise ValueError(
                    f"{name}: leaf {i} must be a list of {len(shape)} accumulators of "
                    f"shapes {[(d,) for d in shape]} and dtype {grp.dtype}, got {acc!r:.200}")
            arrays.extend(acc)
            offs.extend(tab.host_off[k])
        buf = _flat.views_base(arrays, offs, tab.size, grp.dtype, lay.target.device)
        if buf is None:
            buf = lay.target.empty(tab.size, grp.dtype)
            for a, o in zip(arrays, offs):
                if a.shape[0]:
                    lay.target.copy_into(buf[o:o + a.shape[0]], a)
            copied = True
        bufs.append(buf)
    return bufs, copied


def scale_by_sm3(b1=0.9, b2=1.0, eps=1e-8):
    r"""SM3: AdaGrad-like scaling with one accumulator per axis of each leaf.

    For an element with index :math:`(i_0, \dots, i_{n-1})` of a leaf with
    per-axis accumulators :math:`\mu_a`:

    .. math::
        \text{acc} = (1-\beta_2)\, g^2 + \beta_2 \min_a \mu_a[i_a]
        \ (g^2 + \min_a \mu_a[i_a] \text{ if } \beta_2 = 1),\\
        \nu \leftarrow (1-\beta_1)\, g / \sqrt{\text{acc} + \epsilon} + \beta_1 \nu,
        \quad \mu_a[j] \leftarrow \max_{i_a = j} \text{acc},\quad u = \nu

    (:math:`g/\sqrt{\cdot}` taken as 0 where acc is 0). With the default
    :math:`\beta_2 = 1` the accumulators are running sums (SM3-II).

    Args:
      b1: decay of the momentum of the scaled gradient.
      b2: decay of the squared gradients (1: accumulate, as AdaGrad).
      eps: added inside the square root.

    Leaves need at least one axis (optax fails on scalar leaves too).

    References:
      Anil et al., "Memory-Efficient Adaptive Optimization", NeurIPS 2019
      (arXiv:1901.11150).
    """
    b1 = _checks.check_number("b1", b1, low=0.0, high=1.0)
    b2 = _checks.check_number("b2", b2, low=0.0, high=1.0)
    eps = _checks.check_number("eps", eps, low=0.0)
    running_sum = b2 == 1.0

    def init_fn(params):
        lay, _ = _flat.layout_of(params)
        _check_shapes(lay, "params")
        mu = _mu_views(lay, [lay.target.full(t.size, 0, g.dtype)
                             for g, t in zip(lay.groups, _tables(lay))])
        return ScaleBySM3State(mu=mu, nu=lay.views(lay.full(0)))

    def buffers(lay, state):
        _checks.check_state("state", state, ScaleBySM3State, "scale_by_sm3")
        mu, c1 = _gather_mu(lay, state.mu, "state.mu")
        nu, c2 = lay.gather_report(state.nu, "state.nu")
        return mu, nu, c1 or c2

    def launch(lay, g, mu, nu, dst, posts):
        fused = posts is not None
        for gi, (grp, tab) in enumerate(zip(lay.groups, _tables(lay))):
            if grp.size == 0:
                continue
            dt = grp.dtype.type
            _, chunks, offsets = _segments.tables(lay)[gi]
            hp = (dt(1.0 - b2) if not running_sum else dt(1), dt(b2), dt(eps), dt(1 - b1),
                  dt(b1), dt(0), dt(1))
            if fused:
                neg_lr, post_wd = posts[gi]
            else:
                neg_lr, post_wd = dt(0), lay.target.put(np.zeros(len(grp.leaf_ids), grp.dtype))
            part = lay.target.empty(tab.nparts * tab.size, grp.dtype)
            lay.target.launch(ksm3.fill_cpu, ksm3.fill_cuda, part, dt(0))
            lay.target.launch(ksm3.sm3_cpu, ksm3.sm3_cuda, g[gi], nu[gi], dst[gi], mu[gi],
                              part, tab.parts, chunks, offsets, tab.meta, tab.dims,
                              tab.muoff, hp, running_sum, neg_lr, post_wd, fused)
            lay.target.launch(ksm3.combine_max_cpu, ksm3.combine_max_cuda, mu[gi], part)

    def update_fn(updates, state, params=None, **extra_args):
        _checks.check_state("state", state, ScaleBySM3State, "scale_by_sm3")
        lay, _ = _flat.layout_of(state.nu, "state.nu")     # the params' layout
        _check_shapes(lay, "updates")
        g = lay.gather(updates, "updates")
        mu, nu, _ = buffers(lay, state)
        mu, nu = lay.copy(mu), lay.copy(nu)
        out = lay.empty()
        launch(lay, g, mu, nu, out, None)
        return lay.views(out), ScaleBySM3State(mu=_mu_views(lay, mu), nu=lay.views(nu))

    def bind(lay, state):
        """The state checked and bound for a fused step (see ``_fusion.Bound``)."""
        _check_shapes(lay, "params")
        _checks.check_state("state", state, ScaleBySM3State, "scale_by_sm3")
        mu, _ = _gather_mu(lay, state.mu, "state.mu")
        mu_tree, t1 = _flat.bind_custom(state.mu, "state.mu", mu,
                                        lambda b: _mu_views(lay, b), lay.target)
        nu, nu_tree, t2 = lay.bind(state.nu, "state.nu")

        def run(g, p, posts):
            launch(lay, g, mu, nu, p,
                   [segment_posts(lay, gi, runs) for gi, runs in enumerate(posts)])
            return ScaleBySM3State(mu=mu_tree, nu=nu_tree)
        writes = [("state.mu", b) for b in mu] + [("state.nu", b) for b in nu]
        return _fusion.Bound(writes, (t1, t2), run)

    def run(lay, g, p, state, posts):
        return bind(lay, state).run(g, p, posts)

    return GradientTransformation(init_fn, update_fn, fusion=_fusion.Precond(run, None, bind))
