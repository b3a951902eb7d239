"""Self-supervised losses (optax.losses._self_supervised): ntxent and
triplet_margin_loss."""
import numbers

import numpy as np

from .. import _math
from . import _common as C
from ._regression import cos_vg, unbroadcast

_M = "npopt.losses"


@C.errstate
def _ntxent(want_grad, embeddings, labels, temperature=0.07):
    e = C.floats("embeddings", embeddings)
    if e.ndim != 2:
        raise ValueError(f"embeddings: expected shape (batch, dim), got shape {e.shape}")
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.shape[0] != e.shape[0]:
        raise ValueError(f"labels: expected shape ({e.shape[0]},) (one label per embedding), "
                         f"got shape {lab.shape}")
    temp = C.scalar("temperature", temperature, e.dtype)
    eps = np.finfo(e.dtype).eps
    a, b = e[None, :, :], e[:, None, :]
    cs = cos_vg(a, b, eps, -1, None, None)[0]
    xcs = cs / temp
    n = e.shape[0]
    same = lab[:, None] == lab[None, :]
    diffs = ~same
    matches = same & ~np.eye(n, dtype=bool)                 # no self similarity
    ninf = e.dtype.type(-np.inf)
    xd = np.where(diffs, xcs, ninf)
    xm = np.where(matches, xcs, ninf)
    xmax = np.max(np.concatenate((xd, xm), axis=-1), axis=1, keepdims=True)
    sd, sm = xd - xmax, xm - xmax
    em = _math.exp(sm)
    ed = _math.exp(sd)
    denom = np.sum(ed, axis=1, keepdims=True) + em
    log_softm = sm - _math.log(denom)
    count = e.dtype.type(np.sum(matches))
    value = -np.sum(np.where(matches, log_softm, 0)) / count
    g = None
    if want_grad:
        ct_ls = np.where(matches, -np.ones((), e.dtype) / count, 0).astype(e.dtype)
        ct_den = -ct_ls / denom
        ct_sm = ct_ls + ct_den * em
        ct_sd = np.sum(ct_den, axis=1, keepdims=True) * ed
        ct_x = np.where(matches, ct_sm, 0) + np.where(diffs, ct_sd, 0)
        _, ga, gb = cos_vg(a, b, eps, -1, None, ct_x / temp)
        g = C.out(ga[0] + gb[:, 0], e.dtype)
    return C.out(value, e.dtype), g


ntxent, ntxent_grad, ntxent_value_and_grad = C.loss(_ntxent, r"""
Normalized temperature-scaled cross-entropy loss (NT-Xent; Chen et al.,
"A simple framework for contrastive learning of visual representations",
ICML 2020).

With :math:`s_{ij} = \cos(z_i, z_j) / \tau` and :math:`P` the positive pairs
(same label, ``i != j``),

.. math::  \ell = -\frac{1}{|P|} \sum_{(i, j) \in P}
           \log \frac{e^{s_{ij}}}{e^{s_{ij}} + \sum_{k: y_k \ne y_i} e^{s_{ik}}}

(optax's form: each positive against the negatives of its row; the row
maximum is subtracted without gradient). The cosine similarities use
``epsilon = finfo(dtype).eps``. The gradient flows through both roles of
each embedding.

Args:
  embeddings: float array of shape ``(batch, dim)``.
  labels: labels of shape ``(batch,)``; equal labels are positive pairs.
  temperature: the temperature ``tau``.
Returns:
  the scalar loss (NaN when there is no positive pair).
""", _M)


def _int_pow(x, y):
    """``lax.integer_pow``: binary powering, JAX's order of products."""
    acc = None
    while y > 0:
        if y & 1:
            acc = x if acc is None else acc * x
        y >>= 1
        if y > 0:
            x = x * x
    return acc


def _pow_vg(x, deg):
    """``jnp.power(x, deg)`` (integer_pow for a Python int) and its derivative."""
    if isinstance(deg, numbers.Integral) and not isinstance(deg, bool) and deg >= 1:
        d = deg
        v = _int_pow(x, d)
        jac = x.dtype.type(d) * (_int_pow(x, d - 1) if d > 1 else np.ones_like(x))
        return v, jac
    y = x.dtype.type(deg)
    return _math.power(x, y), y * _math.power(x, y - x.dtype.type(1))


@C.errstate
def _triplet_margin_loss(want_grad, anchors, positives, negatives, axis=-1, norm_degree=2,
                         margin=1.0, eps=1e-6):
    a = C.floats("anchors", anchors)
    p = C.floats("positives", positives)
    n = C.floats("negatives", negatives)
    try:
        shape = np.broadcast_shapes(a.shape, p.shape, n.shape)
    except ValueError:
        raise ValueError(f"positives, negatives: expected arrays broadcastable with anchors of "
                         f"shape {a.shape}, got shapes {p.shape} and {n.shape}") from None
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"axis: expected an int, got {axis!r}")
    ax = C.axes("axis", axis, len(shape))
    dt = np.result_type(a, p, n)
    C.scalar("norm_degree", norm_degree, dt)
    if float(norm_degree) == 0:
        raise ValueError("norm_degree: expected a nonzero number, got 0")
    mg = C.scalar("margin", margin, dt)
    ep = C.scalar("eps", eps, dt)
    inv = dt.type(1 / norm_degree)

    def dist(other):
        d = (a - other).astype(dt, copy=False)
        pw, jac = _pow_vg(d, norm_degree)
        u = np.sum(pw, axis=ax) + ep
        v = _math.power(u, inv)
        return d, jac, u, v

    dp, jp, up, vp = dist(p)
    dn, jn, un, vn = dist(n)
    z = vp - vn + mg
    zero = np.zeros((), dt)
    value = np.maximum(z, zero)
    g = None
    if want_grad:
        ct = C.dmax(z, zero)

        def back(d, jac, u, sign):
            ct_u = sign * ct * (inv * _math.power(u, inv - dt.type(1)))
            return np.expand_dims(ct_u, ax) * jac
        g = C.out(unbroadcast(back(dp, jp, up, 1) + back(dn, jn, un, -1), a.shape), a.dtype)
    return C.out(value, dt), g


triplet_margin_loss, triplet_margin_loss_grad, triplet_margin_loss_value_and_grad = C.loss(
    _triplet_margin_loss, r"""
Triplet margin loss (Balntas et al., "Learning local feature descriptors
with triplets and shallow convolutional neural networks", BMVC 2016).

.. math::  \ell(a, p, n) = \max(0, d(a, p) - d(a, n) + m), \quad
           d(x, y) = \Big(\sum_i (x_i - y_i)^q + \epsilon\Big)^{1/q}

with ``q = norm_degree`` (a Python int is an exact integer power, as
JAX's ``integer_pow``; odd degrees are not absolute values, as optax).
The gradient is taken in ``anchors``.

Args:
  anchors: float array of shape ``(..., dim)``.
  positives: broadcastable with ``anchors``.
  negatives: broadcastable with ``anchors``.
  axis: the axis of the distances.
  norm_degree: the degree ``q``.
  margin: the margin ``m``.
  eps: added inside the root.
Returns:
  the losses, of shape ``(...)``.
""", _M)
