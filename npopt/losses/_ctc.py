"""Connectionist temporal classification (optax.losses._classification):
ctc_loss and ctc_loss_with_forward_probs."""
import numbers

import numpy as np

from . import _common as C

_M = "npopt.losses"


def _args(logits, logit_paddings, labels, label_paddings, blank_id, log_epsilon):
    x = C.floats("logits", logits)
    if x.ndim != 3:
        raise ValueError(f"logits: expected shape (batch, time, classes), got shape {x.shape}")
    lab = C.integers("labels", labels)
    if lab.ndim != 2:
        raise ValueError(f"labels: expected shape (batch, max_label_length), got shape "
                         f"{lab.shape}")
    if lab.shape[0] != x.shape[0]:
        raise ValueError(f"labels: expected batch size {x.shape[0]} (logits'), got "
                         f"{lab.shape[0]}")
    lpad = C.numbers_("label_paddings", label_paddings, x.dtype)
    C.same_shape("label_paddings", lpad, lab.shape, "labels")
    xpad = C.numbers_("logit_paddings", logit_paddings, x.dtype).astype(x.dtype, copy=False)
    C.same_shape("logit_paddings", xpad, x.shape[:2], "logits without the class axis")
    k = x.shape[2]
    if isinstance(blank_id, (bool, np.bool_)) or not isinstance(blank_id, numbers.Integral) \
            or not 0 <= blank_id < k:
        raise ValueError(f"blank_id: expected an integer class index in [0, {k}), got "
                         f"{blank_id!r}")
    if lab.size and (lab.min() < 0 or lab.max() >= k):
        bad = lab[(lab < 0) | (lab >= k)].flat[0]
        raise ValueError(f"labels: expected class indices in [0, {k}), got {bad.item()!r}")
    le = C.scalar("log_epsilon", log_epsilon, x.dtype)
    return x, xpad, lab.astype(np.intp), lpad, int(blank_id), le


def _update(phi, added):
    """``phi[:, 1:] = logaddexp(phi[:, 1:], added)`` and the partials."""
    lae = C.logaddexp(phi[:, 1:], added)
    d1, d2 = C.logaddexp_partials(phi[:, 1:], added, lae)
    out = np.concatenate([phi[:, :1], lae], axis=-1)
    return out, d1, d2


@C.errstate
def _ctc_loss_with_forward_probs(want_grad, logits, logit_paddings, labels, label_paddings, *,
                                 blank_id=0, log_epsilon=-1e5):
    x, xpad, lab, lpad, blank, le = _args(logits, logit_paddings, labels, label_paddings,
                                          blank_id, log_epsilon)
    # as optax under x64: log-softmax in the logits' dtype, the recursion in
    # float64 (its initial states are float64); results in the logits' dtype
    out_dt = x.dtype
    dt = np.dtype(np.float64)
    nb, nt, _ = x.shape
    nl = lab.shape[1]
    one = dt.type(1)
    le = dt.type(le)
    xpad = xpad.astype(dt)
    logprobs, _ = C.log_softmax_vg(x, -1, None, None)
    logprobs = logprobs.astype(dt)
    labellens = nl - np.sum(lpad, axis=1).astype(np.int32)
    repeat = np.zeros((nb, nl), dt)
    repeat[:, :-1] = (lab[:, :-1] == lab[:, 1:])
    lp_phi = np.transpose(logprobs[:, :, blank:blank + 1], (1, 0, 2))            # [T, B, 1]
    lp_emit = np.transpose(np.take_along_axis(logprobs, np.broadcast_to(
        lab[:, None, :], (nb, nt, nl)), axis=2), (1, 0, 2))                         # [T, B, N]
    phi = np.full((nb, nl + 1), le, dt)
    phi[:, 0] = 0
    emit = np.full((nb, nl), le, dt)
    phis, emits, tape = [], [], []
    for t in range(nt):
        pe, pp = lp_emit[t], lp_phi[t]
        prev_phi_orig, prev_emit = phi, emit
        p1, d1a, d1b = _update(phi, prev_emit + le * repeat)
        x1, x2 = p1[:, :-1] + pe, prev_emit + pe
        ne = C.logaddexp(x1, x2)
        d2a, d2b = C.logaddexp_partials(x1, x2, ne)
        np0 = p1 + pp
        nph, d3a, d3b = _update(np0, prev_emit + pp + le * (one - repeat))
        pad = xpad[:, t].reshape(nb, 1)
        emit = pad * prev_emit + (one - pad) * ne
        phi = pad * prev_phi_orig + (one - pad) * nph
        phis.append(phi)
        emits.append(emit)
        if want_grad:
            tape.append((d1a, d1b, d2a, d2b, d3a, d3b, pad))
    if nt == 0:
        raise ValueError("logits: expected at least one time step")
    last, dla, dlb = _update(phis[-1], emits[-1])
    phis[-1] = last
    rows = np.arange(nb)
    if np.any(labellens < 0) or np.any(labellens > nl):
        raise ValueError("label_paddings: expected 0/1 paddings (the label lengths fall "
                         f"outside [0, {nl}])")
    per_seq = -last[rows, labellens]
    g = None
    if want_grad:
        ct_last = np.zeros((nb, nl + 1), dt)
        ct_last[rows, labellens] = -one
        ct_phi = ct_last.copy()
        ct_phi[:, 1:] = ct_last[:, 1:] * dla
        ct_emit = ct_last[:, 1:] * dlb
        ct_pe = np.zeros((nt, nb, nl), dt)
        ct_pp = np.zeros((nt, nb), dt)
        for t in range(nt - 1, -1, -1):
            d1a, d1b, d2a, d2b, d3a, d3b, pad = tape[t]
            ct_ne = (one - pad) * ct_emit
            ct_e0 = pad * ct_emit
            ct_np = (one - pad) * ct_phi
            ct_p0 = pad * ct_phi
            ct_np0 = ct_np.copy()
            ct_np0[:, 1:] = ct_np[:, 1:] * d3a
            ct_bv = ct_np[:, 1:] * d3b
            ct_e0 = ct_e0 + ct_bv
            ct_pp[t] = np.sum(ct_bv, axis=1) + np.sum(ct_np0, axis=1)
            ct_x1, ct_x2 = ct_ne * d2a, ct_ne * d2b
            ct_p1 = ct_np0
            ct_p1[:, :-1] += ct_x1
            ct_pe[t] = ct_x1 + ct_x2
            ct_e0 = ct_e0 + ct_x2
            ct_p0 = ct_p0.copy()
            ct_p0[:, 0] += ct_p1[:, 0]
            ct_p0[:, 1:] += ct_p1[:, 1:] * d1a
            ct_e0 = ct_e0 + ct_p1[:, 1:] * d1b
            ct_phi, ct_emit = ct_p0, ct_e0
        ct_lp = np.zeros(x.shape, dt)
        ct_pe_btn = np.transpose(ct_pe, (1, 0, 2))
        for n in range(nl):
            np.add.at(ct_lp, (rows[:, None], np.arange(nt)[None, :], lab[:, n][:, None]),
                      ct_pe_btn[:, :, n])
        ct_lp[:, :, blank] += ct_pp.T
        _, g = C.log_softmax_vg(x, -1, None, ct_lp.astype(out_dt))
        g = C.out(g, out_dt)
    value = (C.out(per_seq, out_dt), np.stack(phis).astype(out_dt),
             np.stack(emits).astype(out_dt))
    return value, g


(ctc_loss_with_forward_probs, ctc_loss_with_forward_probs_grad,
 ctc_loss_with_forward_probs_value_and_grad) = C.loss(_ctc_loss_with_forward_probs, r"""
CTC loss and the forward probabilities (Graves et al., "Connectionist
temporal classification: labelling unsegmented sequence data with recurrent
neural networks", ICML 2006).

The negative log-likelihood of the label sequence summed over its
alignments, by the forward recursion in log space over the states "blank
after n labels" (``phi``, ``N + 1`` of them) and "emitting label n"
(``emit``); ``log_epsilon`` stands for log 0:

.. math::  \ell = -\log \sum_{\pi \in \mathcal{B}^{-1}(y)} \prod_t p_t(\pi_t)

Padded frames (``logit_paddings == 1``) keep the state. As optax.

Args:
  logits: float array ``(B, T, K)``.
  logit_paddings: ``(B, T)``, 1 for padded frames, 0 otherwise.
  labels: integer labels ``(B, N)``.
  label_paddings: ``(B, N)``, 1 for padded labels (at the end).
  blank_id: the class of the blank.
  log_epsilon: the log of the probability of impossible transitions.
Returns:
  ``(per_seq_loss (B,), logalpha_phi (T, B, N + 1), logalpha_emit (T, B, N))``;
  the gradient (``.grad``) is that of ``per_seq_loss.sum()`` in ``logits``.
  For float32 logits the recursion runs in float64, as optax's under x64
  (its initial states are float64); optax returns those float64 results,
  npopt rounds them to float32.
""", _M)


@C.errstate
def _ctc_loss(want_grad, logits, logit_paddings, labels, label_paddings, *, blank_id=0,
              log_epsilon=-1e5):
    (v, _, _), g = _ctc_loss_with_forward_probs(want_grad, logits, logit_paddings, labels,
                                                label_paddings, blank_id=blank_id,
                                                log_epsilon=log_epsilon)
    return v, g


ctc_loss, ctc_loss_grad, ctc_loss_value_and_grad = C.loss(_ctc_loss, r"""
CTC loss per sequence (see ``ctc_loss_with_forward_probs``).

.. math::  \ell = -\log \sum_{\pi \in \mathcal{B}^{-1}(y)} \prod_t p_t(\pi_t)

Args:
  logits: float array ``(B, T, K)``.
  logit_paddings: ``(B, T)``, 1 for padded frames, 0 otherwise.
  labels: integer labels ``(B, N)``.
  label_paddings: ``(B, N)``, 1 for padded labels (at the end).
  blank_id: the class of the blank.
  log_epsilon: the log of the probability of impossible transitions.
Returns:
  the losses, of shape ``(B,)``.
""", _M)
