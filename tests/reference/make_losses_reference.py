"""Reference values and gradients of optax 0.2.8's ``optax.losses``
(tests/reference/data/optax/losses.npz). Needs jax + optax; x64.

    python tests/reference/make_losses_reference.py

``CASES`` (importable without JAX; tests/test_losses.py uses it) maps a case
name to:

* ``fn``: the name in ``optax.losses`` / ``npopt.losses``;
* ``inputs(rng)``: a dict of arrays; float64 arrays are cast to each dtype,
  integer and boolean arrays (labels, masks) are kept;
* ``args(I, xp)``: ``(positional args, keyword args)`` of the call, ``xp``
  being ``jax.numpy`` here and ``numpy`` in the tests (``reduce_fn``);
* ``grad`` (default True): whether the loss is differentiated in its first
  positional argument: ``jax.grad(lambda x: fn(x, ...).sum())``, npopt's
  ``fn.grad`` convention.

The npz holds the float64 inputs ``in/{case}/{name}`` (only those the call
reads; cast to float32 for the float32 runs), ``{dtype}/{case}/value`` and
``{dtype}/{case}/grad`` (and ``.../out{i}`` for tuple outputs). The inputs
include the edge cases that pin down optax's conventions: zeros in the
targets of log terms, large logits, masked entries and fully masked rows,
kinks where JAX splits the derivative.
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data", "optax", "losses.npz")
DTYPES = ("float32", "float64")


def _case(fn, inputs, args, grad=True, jax_grad=None):
    return dict(fn=fn, inputs=inputs, args=args, grad=grad, jax_grad=jax_grad)


def _pt(shape=(3, 4), scale=1.5):
    def inputs(rng):
        return {"p": scale * rng.standard_normal(shape), "t": rng.standard_normal(shape)}
    return inputs


def _probs(rng, shape, zeros=False):
    t = rng.uniform(0.05, 1.0, shape)
    if zeros:
        t[..., 0] = 0.0
        t.flat[-1] = 0.0
    return t / t.sum(-1, keepdims=True)


def _mask(rng, shape, full_row=True):
    m = rng.uniform(size=shape) > 0.3
    if full_row and len(shape) > 1:
        m[-1] = False               # a fully masked row
        m[0] = True
    return m


CASES = {}

# ---------------------------------------------------------------------------
# regression
# ---------------------------------------------------------------------------

for _fn in ("squared_error", "l2_loss"):
    CASES[_fn] = _case(_fn, _pt(), lambda I, xp: ((I["p"], I["t"]), {}))
    CASES[_fn + "_no_targets"] = _case(_fn, _pt((5,)), lambda I, xp: ((I["p"],), {}))


def _huber_inputs(rng):
    p = 2.0 * rng.standard_normal((4, 5))
    t = rng.standard_normal((4, 5))
    p[0, :3] = t[0, :3] + np.array([1.0, -1.0, 1e-9])    # at delta = 1, and tiny
    p[1, 0] = t[1, 0]
    return {"p": p, "t": t, "t_row": rng.standard_normal(5)}


CASES["huber_loss"] = _case("huber_loss", _huber_inputs,
                            lambda I, xp: ((I["p"], I["t"]), {}))
CASES["huber_loss_delta"] = _case("huber_loss", _huber_inputs,
                                  lambda I, xp: ((I["p"], I["t"]), {"delta": 0.5}))
CASES["huber_loss_broadcast"] = _case("huber_loss", _huber_inputs,
                                      lambda I, xp: ((I["p"], I["t_row"]), {"delta": 2.0}))
CASES["huber_loss_no_targets"] = _case("huber_loss", _huber_inputs,
                                       lambda I, xp: ((I["p"],), {}))


def _log_cosh_inputs(rng):
    p = rng.standard_normal(8)
    p[:5] = [0.0, 30.0, -30.0, 400.0, -800.0]
    return {"p": p, "t": rng.standard_normal(8)}


CASES["log_cosh"] = _case("log_cosh", _log_cosh_inputs, lambda I, xp: ((I["p"], I["t"]), {}))
CASES["log_cosh_no_targets"] = _case("log_cosh", _log_cosh_inputs,
                                     lambda I, xp: ((I["p"],), {}))


def _cos_inputs(rng):
    p = rng.standard_normal((4, 5))
    t = rng.standard_normal((4, 5))
    p[1] *= 1e-3                    # below epsilon=0.1 in squared norm
    t[2] = 2.5 * p[2]               # parallel
    return {"p": p, "t": t, "t_row": rng.standard_normal(5), "m": _mask(rng, (4, 5), False)}


for _fn in ("cosine_similarity", "cosine_distance"):
    CASES[_fn] = _case(_fn, _cos_inputs, lambda I, xp: ((I["p"], I["t"]), {}))
    CASES[_fn + "_eps_axis0"] = _case(_fn, _cos_inputs, lambda I, xp: (
        (I["p"], I["t"]), {"epsilon": 0.1, "axis": 0}))
    CASES[_fn + "_where"] = _case(_fn, _cos_inputs, lambda I, xp: (
        (I["p"], I["t"]), {"where": I["m"], "epsilon": 1e-3}))
    CASES[_fn + "_axis_none_bcast"] = _case(_fn, _cos_inputs, lambda I, xp: (
        (I["p"], I["t_row"]), {"axis": None}))

# ---------------------------------------------------------------------------
# binary classification
# ---------------------------------------------------------------------------


def _binary_inputs(rng):
    x = 2.0 * rng.standard_normal((3, 6))
    x[0, :6] = [0.0, 40.0, -40.0, 800.0, -800.0, 1.0]
    x[1, :2] = [-1.0, 1.0]
    y = (rng.uniform(size=(3, 6)) > 0.5).astype(np.float64)
    y[0] = [1, 1, 0, 1, 0, 1]
    return {"x": x, "y": y, "soft": rng.uniform(size=(3, 6)),
            "pm": np.where(y > 0, 1.0, -1.0), "yi": y.astype(np.int64)}


CASES["sigmoid_binary_cross_entropy"] = _case(
    "sigmoid_binary_cross_entropy", _binary_inputs, lambda I, xp: ((I["x"], I["y"]), {}))
CASES["sigmoid_binary_cross_entropy_soft"] = _case(
    "sigmoid_binary_cross_entropy", _binary_inputs, lambda I, xp: ((I["x"], I["soft"]), {}))
CASES["sigmoid_binary_cross_entropy_int_labels"] = _case(
    "sigmoid_binary_cross_entropy", _binary_inputs, lambda I, xp: ((I["x"], I["yi"]), {}))
CASES["hinge_loss"] = _case("hinge_loss", _binary_inputs,
                            lambda I, xp: ((I["x"], I["pm"]), {}))
CASES["perceptron_loss"] = _case("perceptron_loss", _binary_inputs,
                                 lambda I, xp: ((I["x"], I["pm"]), {}))
CASES["sparsemax_loss"] = _case("sparsemax_loss", _binary_inputs,
                                lambda I, xp: ((I["x"], I["yi"]), {}))
CASES["sigmoid_focal_loss"] = _case("sigmoid_focal_loss", _binary_inputs,
                                    lambda I, xp: ((I["x"], I["y"]), {}))
CASES["sigmoid_focal_loss_alpha"] = _case("sigmoid_focal_loss", _binary_inputs, lambda I, xp: (
    (I["x"], I["y"]), {"alpha": 0.25, "gamma": 1.5}))
CASES["sigmoid_focal_loss_soft"] = _case("sigmoid_focal_loss", _binary_inputs, lambda I, xp: (
    (I["x"], I["soft"]), {"alpha": 0.6, "gamma": 0.0}))

# ---------------------------------------------------------------------------
# softmax cross-entropies
# ---------------------------------------------------------------------------


def _softmax_inputs(rng):
    x = 2.0 * rng.standard_normal((4, 5))
    x[0] = [1000.0, -1000.0, 999.0, 0.0, 1.0]          # large logits
    y = _probs(rng, (4, 5), zeros=True)
    onehot = np.eye(5)[[0, 2, 4, 1]]
    x3 = rng.standard_normal((2, 3, 4))
    return {"x": x, "y": y, "onehot": onehot, "m": _mask(rng, (4, 5)),
            "m_col": np.array([True, False, True, True, True]),
            "m_row": np.array([True, True, False, True]),
            "x3": x3, "y3": _probs(rng, (2, 3, 4)),
            "lab": np.array([0, 2, 4, 1]), "lab0": np.array([3, 0, 1, 2, 3]),
            "lab3": np.array([5, 11]), "m3": rng.uniform(size=(2, 3, 4)) > 0.4}


def _safe_inputs(rng):
    I = _softmax_inputs(rng)
    I["x"][1, 3] = -np.inf          # label 0 there: finite loss and gradient
    I["y"][1, 3] = 0.0
    I["y"][1] /= I["y"][1].sum()
    return I


CASES["safe_softmax_cross_entropy"] = _case(
    "safe_softmax_cross_entropy", _softmax_inputs, lambda I, xp: ((I["x"], I["y"]), {}))
CASES["safe_softmax_cross_entropy_neg_inf"] = _case(
    "safe_softmax_cross_entropy", _safe_inputs, lambda I, xp: ((I["x"], I["y"]), {}))
CASES["softmax_cross_entropy"] = _case(
    "softmax_cross_entropy", _softmax_inputs, lambda I, xp: ((I["x"], I["y"]), {}))
CASES["softmax_cross_entropy_onehot_axis0"] = _case(
    "softmax_cross_entropy", _softmax_inputs,
    lambda I, xp: ((I["x"], I["onehot"]), {"axis": 0}))
CASES["softmax_cross_entropy_where"] = _case(
    "softmax_cross_entropy", _softmax_inputs,
    lambda I, xp: ((I["x"], I["y"]), {"where": I["m"]}))
CASES["softmax_cross_entropy_where_low_ndim"] = _case(
    "softmax_cross_entropy", _softmax_inputs,
    lambda I, xp: ((I["x"], I["y"]), {"axis": 0, "where": I["m_col"]}))
CASES["softmax_cross_entropy_axis_tuple"] = _case(
    "softmax_cross_entropy", _softmax_inputs,
    lambda I, xp: ((I["x3"], I["y3"]), {"axis": (1, 2)}))
CASES["softmax_cross_entropy_with_integer_labels"] = _case(
    "softmax_cross_entropy_with_integer_labels", _softmax_inputs,
    lambda I, xp: ((I["x"], I["lab"]), {}))
CASES["softmax_cross_entropy_with_integer_labels_axis0"] = _case(
    "softmax_cross_entropy_with_integer_labels", _softmax_inputs,
    lambda I, xp: ((I["x"], I["lab0"]), {"axis": 0}))
CASES["softmax_cross_entropy_with_integer_labels_where"] = _case(
    "softmax_cross_entropy_with_integer_labels", _softmax_inputs,
    lambda I, xp: ((I["x"], I["lab"]), {"where": I["m"]}))
CASES["softmax_cross_entropy_with_integer_labels_axis_tuple"] = _case(
    "softmax_cross_entropy_with_integer_labels", _softmax_inputs,
    lambda I, xp: ((I["x3"], I["lab3"]), {"axis": (1, 2), "where": I["m3"]}))
CASES["poly_loss_cross_entropy"] = _case(
    "poly_loss_cross_entropy", _softmax_inputs, lambda I, xp: ((I["x"], I["y"]), {}))
CASES["poly_loss_cross_entropy_where"] = _case(
    "poly_loss_cross_entropy", _softmax_inputs,
    lambda I, xp: ((I["x"], I["onehot"]), {"epsilon": -0.5, "where": I["m"]}))
CASES["poly_loss_cross_entropy_axis0"] = _case(
    "poly_loss_cross_entropy", _softmax_inputs,
    lambda I, xp: ((I["x"], I["y"]), {"epsilon": 1.0, "axis": 0}))


def _multiclass_inputs(rng):
    s = rng.standard_normal((5, 4))
    s[0] = [1.0, 3.0, 3.0, 0.0]     # tied maxima
    s[1] = [2.0, 1.0, 0.0, 0.0]     # hinge tie: s_0 = s_1 + 1
    return {"s": s, "lab": np.array([0, 0, 2, 3, 1])}


for _fn in ("multiclass_hinge_loss", "multiclass_perceptron_loss"):
    CASES[_fn] = _case(_fn, _multiclass_inputs, lambda I, xp: ((I["s"], I["lab"]), {}))


def _sparsemax_grad(jax, optax, s, labels):
    """optax 0.2.8 cannot differentiate multiclass_sparsemax_loss under x64
    (projection_simplex's custom JVP returns float32 tangents for float64
    primals); its gradient is sparsemax(s) - onehot(y), from optax's own
    projection."""
    proba = jax.vmap(optax.projections.projection_simplex)(s)
    return proba - jax.nn.one_hot(labels, s.shape[-1], dtype=s.dtype)


CASES["multiclass_sparsemax_loss"] = _case(
    "multiclass_sparsemax_loss", _multiclass_inputs, lambda I, xp: ((I["s"], I["lab"]), {}),
    jax_grad=_sparsemax_grad)

# ---------------------------------------------------------------------------
# KL divergences, smoothing
# ---------------------------------------------------------------------------


def _kl_inputs(rng):
    t = _probs(rng, (3, 5), zeros=True)
    lp = np.log(_probs(rng, (3, 5)))
    return {"lp": lp, "t": t, "lt": np.log(_probs(rng, (3, 5))), "m": _mask(rng, (3, 5)),
            "pos": rng.uniform(0.1, 2.0, (3, 5)), "labels": np.eye(5)[[1, 0, 4]]}


for _fn in ("kl_divergence", "generalized_kl_divergence", "convex_kl_divergence"):
    CASES[_fn] = _case(_fn, _kl_inputs, lambda I, xp: ((I["lp"], I["t"]), {}))
    CASES[_fn + "_where"] = _case(_fn, _kl_inputs,
                                  lambda I, xp: ((I["lp"], I["t"]), {"where": I["m"]}))
    CASES[_fn + "_axis_none"] = _case(_fn, _kl_inputs,
                                      lambda I, xp: ((I["lp"], I["pos"]), {"axis": None}))
CASES["kl_divergence_with_log_targets"] = _case(
    "kl_divergence_with_log_targets", _kl_inputs, lambda I, xp: ((I["lp"], I["lt"]), {}))
CASES["kl_divergence_with_log_targets_where_axis0"] = _case(
    "kl_divergence_with_log_targets", _kl_inputs,
    lambda I, xp: ((I["lp"], I["lt"]), {"axis": 0, "where": I["m"]}))
CASES["smooth_labels"] = _case("smooth_labels", _kl_inputs,
                               lambda I, xp: ((I["labels"], 0.1), {}), grad=False)
CASES["smooth_labels_axis0"] = _case("smooth_labels", _kl_inputs,
                                     lambda I, xp: ((I["labels"], 0.2), {"axis": 0}),
                                     grad=False)


# ---------------------------------------------------------------------------
# ranking, self-supervised, segmentation
# ---------------------------------------------------------------------------


def _ranking_inputs(rng):
    x = rng.standard_normal((3, 2, 5))
    y = (rng.uniform(size=(3, 2, 5)) > 0.6).astype(np.float64)
    y[0, 0] = [0, 0, 2, 1, 0]
    m = rng.uniform(size=(3, 2, 5)) > 0.3
    m[0, 1] = False                 # a list with no valid item
    return {"x": x, "y": y, "m": m, "w": rng.uniform(0.5, 2.0, (3, 2, 5)),
            "m_none": np.zeros((3, 2, 5), bool)}


CASES["ranking_softmax_loss"] = _case(
    "ranking_softmax_loss", _ranking_inputs, lambda I, xp: ((I["x"], I["y"]), {}))
CASES["ranking_softmax_loss_where_weights"] = _case(
    "ranking_softmax_loss", _ranking_inputs,
    lambda I, xp: ((I["x"], I["y"]), {"where": I["m"], "weights": I["w"]}))
CASES["ranking_softmax_loss_sum"] = _case(
    "ranking_softmax_loss", _ranking_inputs,
    lambda I, xp: ((I["x"], I["y"]), {"where": I["m"], "reduce_fn": xp.sum}))
CASES["ranking_softmax_loss_unreduced"] = _case(
    "ranking_softmax_loss", _ranking_inputs,
    lambda I, xp: ((I["x"], I["y"]), {"where": I["m"], "reduce_fn": None}))
CASES["ranking_softmax_loss_all_masked"] = _case(
    "ranking_softmax_loss", _ranking_inputs,
    lambda I, xp: ((I["x"], I["y"]), {"where": I["m_none"]}))


def _ntxent_inputs(rng):
    e = rng.standard_normal((6, 3))
    e[5] = 1e-5 * e[5]              # tiny: its cosine uses epsilon
    return {"e": e, "lab": np.array([0, 1, 0, 2, 1, 0]),
            "lab_single": np.array([0, 1, 0, 2, 1, 3])}


CASES["ntxent"] = _case("ntxent", _ntxent_inputs, lambda I, xp: ((I["e"], I["lab"]), {}))
CASES["ntxent_temperature"] = _case(
    "ntxent", _ntxent_inputs, lambda I, xp: ((I["e"], I["lab_single"]), {"temperature": 0.5}))


def _triplet_inputs(rng):
    return {"a": rng.standard_normal((4, 3)), "p": rng.standard_normal((4, 3)),
            "n": rng.standard_normal((4, 3)), "n_row": rng.standard_normal(3),
            "pa": rng.uniform(0.5, 1.5, (4, 3)), "pp": rng.uniform(-0.5, 0.4, (4, 3)),
            "pn": rng.uniform(-0.5, 0.4, (4, 3))}


CASES["triplet_margin_loss"] = _case(
    "triplet_margin_loss", _triplet_inputs, lambda I, xp: ((I["a"], I["p"], I["n"]), {}))
CASES["triplet_margin_loss_axis0_bcast"] = _case(
    "triplet_margin_loss", _triplet_inputs,
    lambda I, xp: ((I["a"].T, I["p"].T, I["n_row"][:, None]), {"axis": 0, "margin": 2.0}))
CASES["triplet_margin_loss_degree3"] = _case(
    "triplet_margin_loss", _triplet_inputs,
    lambda I, xp: ((I["pa"], I["pp"], I["pn"]), {"norm_degree": 3, "eps": 1e-3}))
CASES["triplet_margin_loss_degree1_5"] = _case(
    "triplet_margin_loss", _triplet_inputs,
    lambda I, xp: ((I["pa"], I["pp"], I["pn"]), {"norm_degree": 1.5, "margin": 0.5}))


def _dice_inputs(rng):
    x = rng.standard_normal((2, 4, 3, 3))
    lab = rng.integers(0, 3, (2, 4, 3))
    t = np.eye(3)[lab]
    t[..., 2] = 0.0                 # an absent class
    e = np.exp(x)
    xb = rng.standard_normal((2, 4, 3))
    return {"x": x, "t": t, "probs": e / e.sum(-1, keepdims=True), "cw": np.array([0.5, 1.0, 2.0]),
            "xb": xb, "tb": (rng.uniform(size=(2, 4, 3)) > 0.5).astype(np.float64),
            "x2": rng.standard_normal((5, 3)), "t2": np.eye(3)[rng.integers(0, 3, 5)]}


CASES["dice_loss"] = _case("dice_loss", _dice_inputs, lambda I, xp: ((I["x"], I["t"]), {}))
CASES["dice_loss_weights_tversky_sum"] = _case(
    "dice_loss", _dice_inputs, lambda I, xp: ((I["x"], I["t"]), {
        "class_weights": I["cw"], "alpha": 0.3, "beta": 0.7, "smooth": 0.5,
        "reduction": "sum", "ignore_background": True}))
CASES["dice_loss_none_axis"] = _case(
    "dice_loss", _dice_inputs,
    lambda I, xp: ((I["x"], I["t"]), {"reduction": "none", "axis": (0, 1, 2)}))
CASES["dice_loss_probs"] = _case(
    "dice_loss", _dice_inputs,
    lambda I, xp: ((I["probs"], I["t"]), {"apply_softmax": False}))
CASES["dice_loss_2d"] = _case("dice_loss", _dice_inputs,
                              lambda I, xp: ((I["x2"], I["t2"]), {}))
CASES["dice_loss_one_channel"] = _case("dice_loss", _dice_inputs,
                                       lambda I, xp: ((I["xb"], I["tb"]), {}))
CASES["binary_dice_loss"] = _case("binary_dice_loss", _dice_inputs,
                                  lambda I, xp: ((I["xb"], I["tb"]), {}))
CASES["binary_dice_loss_smooth"] = _case(
    "binary_dice_loss", _dice_inputs,
    lambda I, xp: ((I["xb"][..., None], I["tb"][..., None]), {"smooth": 0.1}))
CASES["multiclass_generalized_dice_loss"] = _case(
    "multiclass_generalized_dice_loss", _dice_inputs, lambda I, xp: ((I["x"], I["t"]), {}))
CASES["multiclass_generalized_dice_loss_bg"] = _case(
    "multiclass_generalized_dice_loss", _dice_inputs,
    lambda I, xp: ((I["x"], I["t"]), {"smooth": 0.2, "ignore_background": True}))


# ---------------------------------------------------------------------------
# CTC
# ---------------------------------------------------------------------------


def _ctc_inputs(rng):
    x = rng.standard_normal((3, 6, 4))
    x[2, 1] = [30.0, -30.0, 0.0, 1.0]       # large logits
    xpad = np.zeros((3, 6))
    xpad[1, 4:] = 1.0                       # a shorter input
    lab = np.array([[1, 2, 2], [3, 1, 0], [2, 3, 1]])
    lpad = np.zeros((3, 3))
    lpad[1, 2] = 1.0                        # a shorter label
    lpad[2, 1:] = 1.0
    return {"x": x, "xpad": xpad, "lab": lab, "lpad": lpad,
            "lab_b2": np.array([[1, 3, 3], [0, 1, 0], [3, 3, 1]])}


CASES["ctc_loss"] = _case("ctc_loss", _ctc_inputs, lambda I, xp: (
    (I["x"], I["xpad"], I["lab"], I["lpad"]), {}))
CASES["ctc_loss_blank2"] = _case("ctc_loss", _ctc_inputs, lambda I, xp: (
    (I["x"], I["xpad"], I["lab_b2"], I["lpad"]), {"blank_id": 2, "log_epsilon": -1e4}))
CASES["ctc_loss_with_forward_probs"] = _case(
    "ctc_loss_with_forward_probs", _ctc_inputs,
    lambda I, xp: ((I["x"], I["xpad"], I["lab"], I["lpad"]), {}))


# ---------------------------------------------------------------------------

class _Used(dict):
    """Records the keys that a case's ``args`` reads (only those are stored)."""
    def __init__(self, *a):
        super().__init__(*a)
        self.used = set()

    def __getitem__(self, k):
        self.used.add(k)
        return super().__getitem__(k)


def case_inputs(name):
    """The case's inputs (float64), only those its call uses."""
    rng = np.random.default_rng(sum(map(ord, name)) * 7919)
    I = _Used(CASES[name]["inputs"](rng))
    CASES[name]["args"](I, np)
    return {k: np.asarray(I[k]) for k in sorted(I.used)}


def cast(I, dtype):
    """float64 inputs in ``dtype``; integer and boolean ones as they are."""
    return {k: (v.astype(dtype) if v.dtype == np.float64 else v) for k, v in I.items()}


def main(names=None):
    import warnings

    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import optax

    out = {}
    if names and os.path.exists(OUT):       # regenerate some cases, keep the others
        with np.load(OUT) as old:
            out = {k: old[k] for k in old.files
                   if "/" in k and k.split("/")[1] not in names}
    out["meta"] = np.array(f"jax {jax.__version__}, optax {optax.__version__}, x64")
    for name, case in CASES.items():
        if names and name not in names:
            continue
        fn = getattr(optax.losses, case["fn"])
        I64 = case_inputs(name)
        for k, v in I64.items():
            out[f"in/{name}/{k}"] = v
        for dtype in DTYPES:
            I = cast(I64, dtype)
            J = {k: jnp.asarray(v) for k, v in I.items()}
            args, kw = case["args"](J, jnp)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                value = fn(*args, **kw)
                if isinstance(value, tuple):
                    for i, v in enumerate(value):
                        out[f"{dtype}/{name}/out{i}"] = np.asarray(v)
                else:
                    out[f"{dtype}/{name}/value"] = np.asarray(value)
                if case["jax_grad"] is not None:
                    out[f"{dtype}/{name}/grad"] = np.asarray(case["jax_grad"](jax, optax, *args))
                elif case["grad"]:
                    def total(x):
                        v = fn(x, *args[1:], **kw)
                        return jnp.sum(v[0] if isinstance(v, tuple) else v)
                    out[f"{dtype}/{name}/grad"] = np.asarray(jax.grad(total)(args[0]))
        v = out[f"float64/{name}/value"] if f"float64/{name}/value" in out else None
        print(f"{name:55s} {'' if v is None else np.shape(v)} "
              f"{out[f'float32/{name}/value'].dtype if v is not None else ''}")
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    np.savez_compressed(OUT, **out)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main(sys.argv[1:])
