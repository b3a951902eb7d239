r"""Hyperparameter optimisation and sensitivity analysis by implicit differentiation.

The model: L2-regularised multiclass logistic regression on the handwritten
digits (8x8 images, 10 classes), with per-sample weights :math:`s_i`
(all 1 unless said otherwise),

.. math::

    W^\star(\lambda, s) = \operatorname{argmin}_W\;
    \frac1n \sum_i s_i\, \ell(x_i^\top W, y_i) + \frac{\lambda}{2} \|W\|^2,
    \qquad \ell(z, y) = \operatorname{logsumexp}(z) - z_y.

Its optimality condition is the gradient
:math:`F(W, \lambda, s) = \frac1n X^\top \operatorname{diag}(s) (P - Y) + \lambda W = 0`
(:math:`P` the softmax probabilities, :math:`Y` the one-hot labels), and the
implicit function theorem gives the derivative of the solution without
differentiating the solver's iterations:

* ``run_hyperopt``: gradient descent on :math:`\log\lambda` of the
  validation loss :math:`L(W^\star(\lambda))`, whose hypergradient is one
  VJP, :math:`\nabla_\lambda L = -(\partial_\lambda F)^\top
  (\partial_W F)^{-\top} \nabla_W L` (one conjugate-gradient solve with
  Hessian-vector products);
* ``run_sensitivity``: how the solution and the validation loss move when the
  data moves: :math:`\partial L / \partial s_i` for every training sample (an
  influence function, Koh & Liang 2017), checked against re-solving with
  one sample down-weighted, and :math:`\|\partial W^\star / \partial\lambda\|`.

The data are scikit-learn's bundled digits (``pip install scikit-learn``, an
optional extra: the data ship inside the package, nothing is downloaded).
Without scikit-learn a synthetic 10-class problem of the same shape stands
in, and the output says so.

References:
  Bengio, "Gradient-based optimization of hyperparameters", Neural
  Computation, 2000.
  Koh & Liang, "Understanding black-box predictions via influence
  functions", ICML 2017.
  Blondel et al., "Efficient and modular implicit differentiation",
  NeurIPS 2022.
"""
import time

import numpy as np

from .. import implicit_diff
from ..solvers.proximal_gradient import GradientDescent

__all__ = ["load_digits_split", "fit", "validation_loss", "run_hyperopt", "run_sensitivity"]


# --------------------------------------------------------------------------
# Data.

def load_digits_split(n_train=400, n_val=600, seed=0):
    """``(X_train, Y_train, X_val, Y_val, name)``: features scaled to [0, 1]
    with a constant column (the intercept), one-hot labels. scikit-learn's
    digits when installed, else a synthetic stand-in (``name`` says which)."""
    rng = np.random.default_rng(seed)
    try:
        from sklearn.datasets import load_digits
        X, y = load_digits(return_X_y=True)
        X = X / 16.0
        name = "scikit-learn digits (1797 8x8 images)"
    except ImportError:      # same shape: 10 noisy class templates in 64 pixels
        templates = rng.random((10, 64)) < 0.3
        y = rng.integers(0, 10, 1797)
        X = np.clip(templates[y] + 1.2 * rng.standard_normal((1797, 64)), 0, 1)
        name = "synthetic digits stand-in (pip install scikit-learn for the real data)"
    perm = rng.permutation(len(y))
    X = np.c_[X, np.ones(len(y))]
    Y = np.eye(10)[y]
    tr, va = perm[:n_train], perm[n_train:n_train + n_val]
    return X[tr], Y[tr], X[va], Y[va], name


# --------------------------------------------------------------------------
# The model, its optimality condition and that condition's exact derivatives.

def _softmax(Z):
    Z = Z - Z.max(axis=1, keepdims=True)
    E = np.exp(Z)
    return E / E.sum(axis=1, keepdims=True)


def _cross_entropy(W, X, Y):
    Z = X @ W
    m = Z.max(axis=1)
    return m + np.log(np.exp(Z - m[:, None]).sum(axis=1)) - np.sum(Y * Z, axis=1)


def objective(W, l2reg, X, Y, weights):
    """``mean_i s_i l(x_i W, y_i) + l2reg/2 ||W||^2``."""
    return weights @ _cross_entropy(W, X, Y) / len(Y) + 0.5 * l2reg * np.sum(W * W)


def optimality_fun(W, l2reg, X, Y, weights):
    """The gradient of ``objective`` in ``W``: zero at the solution."""
    P = _softmax(X @ W)
    return X.T @ (weights[:, None] * (P - Y)) / len(Y) + l2reg * W


def _hvp(W, l2reg, X, weights, V):
    """The Hessian of ``objective`` times ``V`` (symmetric)."""
    P = _softmax(X @ W)
    XV = X @ V
    G = P * (XV - np.sum(P * XV, axis=1, keepdims=True))
    return X.T @ (weights[:, None] * G) / len(X) + l2reg * V


def optimality_jvp(W, args, dW, dargs):
    """``dF`` along ``(dW, dl2reg, dweights)`` (X and Y are data, not differentiated)."""
    l2reg, X, Y, weights = args
    dl2reg, dX, dY, dweights = dargs
    if dX is not None or dY is not None:
        raise NotImplementedError("this example differentiates l2reg and weights only")
    out = _hvp(W, l2reg, X, weights, dW)
    if dl2reg is not None:
        out = out + dl2reg * W
    if dweights is not None:
        out = out + X.T @ (dweights[:, None] * (_softmax(X @ W) - Y)) / len(Y)
    return out


def optimality_vjp(W, args, U):
    """``(dF/dW^T U, (dF/dl2reg^T U, None, None, dF/dweights^T U))``."""
    l2reg, X, Y, weights = args
    P = _softmax(X @ W)
    w_weights = np.sum((P - Y) * (X @ U), axis=1) / len(Y)
    return _hvp(W, l2reg, X, weights, U), (np.sum(W * U), None, None, w_weights)


_inner = GradientDescent(fun=objective, grad=optimality_fun, tol=1e-7, maxiter=5000)


@implicit_diff.custom_root(optimality_fun, optimality_jvp=optimality_jvp,
                           optimality_vjp=optimality_vjp)
def fit(init_W, l2reg, X, Y, weights):
    """The regularised logistic regression ``W*(l2reg, weights)`` (FISTA to
    ``||grad|| <= 1e-7``), with ``fit.jacobian``/``jvp``/``vjp``."""
    return _inner.run(init_W, l2reg, X, Y, weights).params


def validation_loss(W, X_val, Y_val):
    """Mean cross-entropy on the validation set and its gradient in ``W``."""
    P = _softmax(X_val @ W)
    loss = float(np.mean(_cross_entropy(W, X_val, Y_val)))
    return loss, X_val.T @ (P - Y_val) / len(Y_val)


def _accuracy(W, X, Y):
    return float(np.mean(np.argmax(X @ W, axis=1) == np.argmax(Y, axis=1)))


# --------------------------------------------------------------------------
# The two applications.

def run_hyperopt(steps=15, init_l2reg=1.0, learning_rate=0.5, verbose=True, data=None):
    """Tunes ``l2reg`` by Adam (``npopt.adam``) on ``log l2reg`` of the
    validation loss, with hypergradients from ``fit.vjp``. Returns the list of
    ``(l2reg, validation loss, validation accuracy)`` per step."""
    from ..alias import adam
    from ..base import apply_updates
    X, Y, Xv, Yv, name = data or load_digits_split()
    ones = np.ones(len(Y))
    W = np.zeros((X.shape[1], Y.shape[1]))
    log_l2reg = np.array(np.log(init_l2reg))
    opt = adam(learning_rate, b1=0.5)   # little momentum: no overshoot
    opt_state = opt.init(log_l2reg)
    history = []
    if verbose:
        print(f"hyperparameter optimisation: L2-regularised logistic regression on {name}, "
              f"{len(Y)} training / {len(Yv)} validation samples")
        print("step   l2reg       val loss   val acc   hypergradient   time")
    for step in range(steps + 1):
        t0 = time.perf_counter()
        l2reg = float(np.exp(log_l2reg))
        W = fit(W, l2reg, X, Y, ones)                 # warm start from the last W
        loss, g_W = validation_loss(W, Xv, Yv)
        acc = _accuracy(W, Xv, Yv)
        history.append((l2reg, loss, acc))
        if step == steps:
            if verbose:
                print(f"{step:4d}   {l2reg:.4e}  {loss:.5f}    {acc:.3f}")
            break
        # dL/dl2reg = g_W^T dW*/dl2reg: one VJP (one CG solve), chain rule to log
        g_l2reg = fit.vjp(W, l2reg, X, Y, ones, cotangent=g_W, argnums=1)
        g_log = np.asarray(g_l2reg * l2reg)
        updates, opt_state = opt.update(g_log, opt_state, log_l2reg)
        log_l2reg = apply_updates(log_l2reg, updates)
        if verbose:
            print(f"{step:4d}   {l2reg:.4e}  {loss:.5f}    {acc:.3f}     {float(g_log):+.3e}    "
                  f"{time.perf_counter() - t0:.2f} s")
    return history


def run_sensitivity(l2reg=1e-2, verbose=True, data=None, check=True):
    """Sensitivity of the model to its data and hyperparameter.

    Returns a dict with ``influence`` (dL_val/ds_i for every training sample
    i, from one VJP), ``dW_dl2reg`` (the tangent of the solution along
    l2reg, from one JVP) and, with ``check``, ``check`` = (predicted,
    actual) change of the validation loss when the most harmful sample is
    down-weighted by 0.02 (re-solving the model).
    """
    X, Y, Xv, Yv, name = data or load_digits_split()
    ones = np.ones(len(Y))
    W0 = np.zeros((X.shape[1], Y.shape[1]))
    W = fit(W0, l2reg, X, Y, ones)
    loss, g_W = validation_loss(W, Xv, Yv)
    influence = fit.vjp(W0, l2reg, X, Y, ones, cotangent=g_W, argnums=4)
    dW = fit.jvp(W0, l2reg, X, Y, ones, tangents=1.0, argnums=1)
    out = dict(influence=influence, dW_dl2reg=dW)
    if verbose:
        print(f"sensitivity analysis on {name}, l2reg = {l2reg:g}: validation loss {loss:.5f}")
        print(f"  ||dW*/dl2reg|| = {np.linalg.norm(dW):.4e} (||W*|| = {np.linalg.norm(W):.4e})")
        order = np.argsort(influence)
        print("  most helpful training samples (smallest dL_val/ds_i):",
              ", ".join(f"#{i} ({influence[i]:+.2e})" for i in order[:5]))
        print("  most harmful training samples (largest dL_val/ds_i):",
              ", ".join(f"#{i} ({influence[i]:+.2e})" for i in order[::-1][:5]))
    if check:
        i = int(np.argmax(influence))
        eps = 0.02
        s = ones.copy()
        s[i] -= eps
        W_eps = fit(W, l2reg, X, Y, s)
        actual = validation_loss(W_eps, Xv, Yv)[0] - loss
        predicted = -eps * influence[i]
        out["check"] = (predicted, actual)
        if verbose:
            print(f"  down-weighting sample #{i} by {eps}: predicted change of the validation "
                  f"loss {predicted:+.4e}, actual (re-solved) {actual:+.4e}")
    return out


if __name__ == "__main__":
    run_hyperopt()
    run_sensitivity()
