"""A naive oracle per update rule: every optax alias written from its paper's
formula in plain NumPy, one line per equation, float64, no npopt code.

This is a teaching oracle: slow, loop-based, and meant to be read next to
the papers. ``tests/test_naive.py`` checks every npopt alias against it.

Conventions
-----------
* Every function runs ``steps`` steps from ``params`` and returns the
  trajectory ``[x_1, ..., x_steps]`` (copies).
* ``grad(x, t)`` returns the gradient at ``x`` for step ``t`` (``t = 0`` for
  the first step); ``value(x, t)`` the objective (only polyak_sgd uses it).
* Elementwise rules (and the rules whose only reduction is over *all*
  parameters: polyak_sgd, lbfgs) take one flat vector ``x``; a pytree is
  the concatenation of its leaves, so flat is the general case.
* Per-leaf rules (lamb, lars, fromage, novograd, sm3, adafactor) take a dict
  ``{name: array}`` and loop over its leaves: their norms, RMS, row and
  column statistics are taken leaf by leaf.
* Hyperparameter names and defaults are optax 0.2.8's. ``t`` in a formula
  is the 1-based step number.

Where optax departs from the paper, the oracle computes optax's variant
(npopt promises optax's numbers) and a ``# optax:`` comment at that line
says what the paper writes instead. The deviations in one list:

* sgd(nesterov=True): the "look-ahead free" form ``x -= lr (g + mu v)``
  with ``v = mu v + g`` (Sutskever et al. 2013 rewritten in the current
  iterate, as in PyTorch), not Nesterov's extrapolated gradient.
* adam/nadam: ``eps_root`` inside the square root (0 by default: the paper);
  nesterov=True is Dozat's NAdam with a constant momentum b1 (the paper's
  mu_t schedule is not used).
* adamw/nadamw/adamaxw: the weight decay is multiplied by the learning
  rate (``x -= lr (u + wd x)``); Loshchilov & Hutter's Algorithm 2
  multiplies it by the schedule multiplier eta_t only, not by alpha.
* adamax: ``u = max(b2 u, |g| + eps)``, eps inside the max (the paper has
  no eps).
* amsgrad: the running max is taken of the *bias-corrected* second moment,
  and both moments are bias-corrected (the paper has no bias correction:
  ``bias_correction_mu=False, bias_correction_nu=False`` is the paper).
* adadelta: an optional learning rate scales the step after the E[dx^2]
  accumulation (the paper has none: learning_rate=1.0 is the paper). With
  ``learning_rate=None`` optax applies no sign flip at all, so the
  parameters move *up* the gradient; npopt keeps optax's behaviour.
* adagrad: the accumulator starts at ``initial_accumulator_value`` (0.1)
  and eps is inside the square root (the paper: G_0 = 0, delta outside).
* adan: optax bias-corrects m, v and n (Algorithm 1 does not); the weight
  decay is ``x -= lr (u + wd x)`` instead of ``x = (x - lr u)/(1 + lr wd)``;
  and where the paper (in its convention beta_p = 1 - b) writes
  ``(1 - beta2_p) = b2`` for the weight of the gradient difference, optax
  uses ``1 - b2`` (0.08 instead of 0.92 with the defaults), both in the
  second-moment term and in the update.
* radam: the rectified step is taken when ``rho_t >= threshold`` with
  threshold 5 (the paper: rho_t > 4), and ``eps`` is added to the root
  (the paper's l_t has none).
* yogi: m and v start at 1e-6 (optax's initial_accumulator_value) and both
  are bias-corrected; the paper's Algorithm 2 starts from 0 without bias
  correction.
* rmsprop: eps inside the square root by default (``eps_in_sqrt``), an
  optional ``initial_scale`` and bias correction; momentum is applied after
  the learning rate (Graves 2013's form).
* rprop: optax implements iRprop- (Igel & Huesken 2000: after a sign change
  the step is skipped and the remembered gradient is zeroed; Riedmiller &
  Braun's original Rprop backtracks the previous step instead), but one
  iteration late: the update returned at iteration t is the step
  ``step_{t-1} * sign(g_{t-1})`` decided at t - 1 (zeroed if g_t changed
  sign), and the first update is 0. iRprop- applies ``step_t * sign(g_t)``
  at once. (optax 0.2.8's scale_by_rprop returns ``state.prev_updates``
  instead of the new ones; npopt keeps optax's numbers.)
* polyak_sgd: ``x -= step * (scaling g)``, step = min(gap / (||scaling
  g||^2 + eps), max_learning_rate), 0 when ||scaling g||^2 + eps <= float64
  eps; Loizou et al.'s SPS_max with c = scaling and gamma_b = scaling *
  max_learning_rate, plus the eps and the zero-gradient guard.
* lars: the trust ratio is ``tc ||x|| / (||g + wd x|| + eps)`` (You et al.
  write ``||g|| + wd ||x||`` in the denominator); norms of 0 give ratio 1.
* novograd: as the paper (first step m_1 = g_1/sqrt(v_1) + wd x_1), eps
  outside the root and eps_root inside it.
* sm3: eps (1e-8) inside the inverse root, entries with zero accumulator
  get zero update, and momentum is an EMA (1 - momentum weight) of the
  preconditioned gradient applied before the learning rate (SM3-II itself
  has no momentum).
* adafactor: the decay ``beta2_t = 1 - t^(-decay_rate)`` is computed in
  float32 (as optax); the row/column statistics are means, not sums (the
  same V_hat); no relative step size: with ``learning_rate=None`` the step
  is ``max(RMS(x), 1e-3) * U_clipped`` (the paper multiplies by
  rho_t = min(1e-2, 1/sqrt(t))); momentum is an un-debiased EMA of the final
  scaled update; weight decay is added after it, not multiplied by the
  learning rate; optax stores the momentum in ``dtype_momentum`` (float32
  by default: the float64 tests pass float64). Only leaves of rank <= 2
  are written here.
* optimistic_adam / optimistic_adam_v2: the optimistic correction
  ``(alpha + beta) u_t - beta u_{t-1}`` is applied to Adam's bias-corrected
  direction u_t (in its NAdam form unless nesterov=False); the first step
  uses u_{-1} = u_0.
* fromage, lion, lamb, signum, sign_sgd, optimistic_gradient_descent: as
  the papers (fromage with norms floored at min_norm; lion's and lamb's
  weight decay is scaled by the learning rate in the papers too; lamb's
  scaling function phi is the identity, with ratio 1 for a zero norm).
* noisy_sgd: sigma_t^2 = eta / t^gamma with t from 1 (the paper's
  (1 + t)^gamma with t from 0). The noise itself cannot be optax's (optax
  draws it with jax.random.normal); the oracle reproduces npopt's
  documented stream (npopt/transforms/noise.py): the state's threefry key
  is split as JAX splits it and the sample key seeds NumPy's PCG64, whose
  ``standard_normal`` draws the leaves in leaf order. The threefry cipher
  below is written from Salmon et al. (2011) and checked against JAX's
  split in the tests.
* lbfgs: Nocedal & Wright's two-loop recursion with optax's initial scaling
  (gamma = s'y / y'y, and min(1, 1/||g_0||) on the first step). Only a
  fixed learning rate is written here: optax's default zoom line search
  (strong Wolfe plus Hager-Zhang's approximate Wolfe, with its own
  interpolation choices) is not re-derived; the tests check the default
  lbfgs's direction against ``lbfgs_direction`` and its step against the
  strong Wolfe conditions instead.
"""
import numpy as np


def _rms(a):
    return np.sqrt(np.mean(a ** 2))


# ---------------------------------------------------------------- SGD family

def sgd(x, grad, steps, learning_rate, momentum=None, nesterov=False):
    # Robbins & Monro 1951; heavy ball: Polyak 1964; Nesterov: Sutskever et al. 2013
    v = np.zeros_like(x)
    out = []
    for t in range(steps):
        g = grad(x, t)
        if momentum is None:
            d = g
        else:
            v = momentum * v + g
            # optax: Nesterov as g + mu v_new (no extrapolated gradient)
            d = g + momentum * v if nesterov else v
        x = x - learning_rate * d
        out.append(x.copy())
    return out


def sign_sgd(x, grad, steps, learning_rate):
    # Bernstein et al. 2018, "signSGD: Compressed Optimisation for Non-Convex Problems", Alg. 1
    out = []
    for t in range(steps):
        x = x - learning_rate * np.sign(grad(x, t))
        out.append(x.copy())
    return out


def signum(x, grad, steps, learning_rate, beta=0.9):
    # Bernstein et al. 2018, "signSGD ...", Alg. 3 (Signum)
    m = np.zeros_like(x)
    out = []
    for t in range(steps):
        m = beta * m + (1 - beta) * grad(x, t)
        x = x - learning_rate * np.sign(m)
        out.append(x.copy())
    return out


def noisy_sgd(x, grad, steps, learning_rate, eta=0.01, gamma=0.55, key=0):
    # Neelakantan et al. 2015, "Adding Gradient Noise Improves Learning for Very Deep Networks"
    rng_key = key_from_seed(key)
    out = []
    for t in range(1, steps + 1):
        g = grad(x, t - 1)
        rng_key, sample_key = threefry_split(rng_key)
        z = np.random.default_rng([int(w) for w in sample_key]).standard_normal(x.shape)
        sigma = np.sqrt(eta / t ** gamma)
        x = x - learning_rate * (g + sigma * z)
        out.append(x.copy())
    return out


def threefry2x32(key, counter):
    # Salmon et al. 2011, "Parallel Random Numbers: As Easy as 1, 2, 3": Threefry-2x32, 20 rounds
    mask = 0xFFFFFFFF
    rotations = ((13, 15, 26, 6), (17, 29, 16, 24))
    ks = (int(key[0]), int(key[1]), int(key[0]) ^ int(key[1]) ^ 0x1BD11BDA)
    x0 = (int(counter[0]) + ks[0]) & mask
    x1 = (int(counter[1]) + ks[1]) & mask
    for i in range(5):                       # 5 groups of 4 rounds, a key injection after each
        for r in rotations[i % 2]:
            x0 = (x0 + x1) & mask
            x1 = ((x1 << r) | (x1 >> (32 - r))) & mask
            x1 ^= x0
        x0 = (x0 + ks[(i + 1) % 3]) & mask
        x1 = (x1 + ks[(i + 2) % 3] + i + 1) & mask
    return x0, x1


def threefry_split(key):
    # jax.random.split (partitionable threefry): encipher the counters (0, 0) and (0, 1)
    a, b = threefry2x32(key, (0, 0)), threefry2x32(key, (0, 1))
    return np.array(a, np.uint32), np.array(b, np.uint32)


def key_from_seed(seed):
    # jax.random.key(seed) under x64: the 64-bit seed as (high word, low word)
    s = int(seed) & 0xFFFFFFFFFFFFFFFF
    return np.array([s >> 32, s & 0xFFFFFFFF], np.uint32)


def optimistic_gradient_descent(x, grad, steps, learning_rate, alpha=1.0, beta=1.0):
    # Daskalakis et al. 2018 (OGD, alpha = beta = 1); Mokhtari et al. 2020 (general alpha, beta)
    g_prev = None
    out = []
    for t in range(steps):
        g = grad(x, t)
        if g_prev is None:
            g_prev = g                       # x_{-1} = x_0
        x = x - learning_rate * ((alpha + beta) * g - beta * g_prev)
        g_prev = g
        out.append(x.copy())
    return out


def polyak_sgd(x, grad, steps, value, max_learning_rate=1.0, scaling=1.0, f_min=0.0,
               eps=0.0, variant="sps"):
    # Loizou et al. 2021, "Stochastic Polyak Step-size for SGD", SPS_max (eq. 5)
    out = []
    for t in range(steps):
        d = scaling * grad(x, t)
        gap = value(x, t) - f_min
        if variant == "sps+":
            gap = max(gap, 0.0)
        sq_norm = d @ d
        # optax: eps in the denominator, and no step at all for a ~zero gradient
        if sq_norm + eps <= np.finfo(np.float64).eps:
            step = 0.0
        else:
            step = min(gap / (sq_norm + eps), max_learning_rate)
        x = x - step * d
        out.append(x.copy())
    return out


def rprop(x, grad, steps, learning_rate, eta_minus=0.5, eta_plus=1.2, min_step_size=1e-6,
          max_step_size=50.0):
    # Igel & Huesken 2000, "Improving the Rprop Learning Algorithm": iRprop-
    step = np.full_like(x, learning_rate)
    prev = np.zeros_like(x)      # the last step decided, step * sign(g) (0 after a sign change)
    out = []
    for t in range(steps):
        g = grad(x, t)
        s = g * prev
        grown = np.clip(step * eta_plus, min_step_size, max_step_size)
        shrunk = np.clip(step * eta_minus, min_step_size, max_step_size)
        step = np.where(s > 0, grown, np.where(s < 0, shrunk, step))
        # optax: the step applied now is the one decided at the previous
        # iteration (0 on the first), so every move lags one iteration
        # behind iRprop-'s  x -= step * sign(g)
        applied = np.where(s < 0, 0.0, prev)
        prev = np.where(s < 0, 0.0, step * np.sign(g))   # sign change: skip, forget g
        x = x - applied
        out.append(x.copy())
    return out


# --------------------------------------------------------------- Adam family

def _adam_direction(m, v, g, t, b1, b2, eps, eps_root, nesterov):
    """Adam's bias-corrected step m_hat / (sqrt(v_hat) + eps), t 1-based."""
    if nesterov:
        # Dozat 2016 (NAdam) with a constant momentum b1
        m_hat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1 ** t)
    else:
        m_hat = m / (1 - b1 ** t)
    v_hat = v / (1 - b2 ** t)
    return m_hat / (np.sqrt(v_hat + eps_root) + eps)


def adam(x, grad, steps, learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0,
         nesterov=False):
    # Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization", Algorithm 1
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    out = []
    for t in range(1, steps + 1):
        g = grad(x, t - 1)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g ** 2
        x = x - learning_rate * _adam_direction(m, v, g, t, b1, b2, eps, eps_root, nesterov)
        out.append(x.copy())
    return out


def nadam(x, grad, steps, learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0):
    # Dozat 2016, "Incorporating Nesterov Momentum into Adam", Algorithm 2 (constant mu)
    return adam(x, grad, steps, learning_rate, b1, b2, eps, eps_root, nesterov=True)


def adamw(x, grad, steps, learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0,
          weight_decay=1e-4, nesterov=False):
    # Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization", Algorithm 2
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    out = []
    for t in range(1, steps + 1):
        g = grad(x, t - 1)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g ** 2
        u = _adam_direction(m, v, g, t, b1, b2, eps, eps_root, nesterov)
        # optax: the decay is scaled by the learning rate (paper: by eta_t only)
        x = x - learning_rate * (u + weight_decay * x)
        out.append(x.copy())
    return out


def nadamw(x, grad, steps, learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0,
           weight_decay=1e-4):
    # Dozat 2016 + Loshchilov & Hutter 2019
    return adamw(x, grad, steps, learning_rate, b1, b2, eps, eps_root, weight_decay,
                 nesterov=True)


def adamaxw(x, grad, steps, learning_rate, b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-4):
    # Kingma & Ba 2015, "Adam", Algorithm 2 (AdaMax), with Loshchilov & Hutter 2019's weight decay
    m = np.zeros_like(x)
    u = np.zeros_like(x)
    out = []
    for t in range(1, steps + 1):
        g = grad(x, t - 1)
        m = b1 * m + (1 - b1) * g
        u = np.maximum(b2 * u, np.abs(g) + eps)     # optax: + eps inside the max
        step = m / (1 - b1 ** t) / u
        x = x - learning_rate * (step + weight_decay * x)
        out.append(x.copy())
    return out


def adamax(x, grad, steps, learning_rate, b1=0.9, b2=0.999, eps=1e-8):
    # Kingma & Ba 2015, "Adam", Algorithm 2 (AdaMax)
    return adamaxw(x, grad, steps, learning_rate, b1, b2, eps, weight_decay=0.0)


def amsgrad(x, grad, steps, learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0,
            bias_correction_mu=True, bias_correction_nu=True):
    # Reddi et al. 2018, "On the Convergence of Adam and Beyond", Algorithm 2
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    v_max = np.zeros_like(x)
    out = []
    for t in range(1, steps + 1):
        g = grad(x, t - 1)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g ** 2
        # optax: bias correction (paper: none, i.e. both flags False)
        m_hat = m / (1 - b1 ** t) if bias_correction_mu else m
        v_hat = v / (1 - b2 ** t) if bias_correction_nu else v
        v_max = np.maximum(v_max, v_hat)
        x = x - learning_rate * m_hat / (np.sqrt(v_max + eps_root) + eps)
        out.append(x.copy())
    return out


def adabelief(x, grad, steps, learning_rate, b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16,
              nesterov=False):
    # Zhuang et al. 2020, "AdaBelief Optimizer", Algorithm 2 (its eps inside s_t: eps_root)
    m = np.zeros_like(x)
    s = np.zeros_like(x)
    out = []
    for t in range(1, steps + 1):
        g = grad(x, t - 1)
        m = b1 * m + (1 - b1) * g
        s = b2 * s + (1 - b2) * (g - m) ** 2 + eps_root
        if nesterov:
            m_hat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1 ** t)
        else:
            m_hat = m / (1 - b1 ** t)
        s_hat = s / (1 - b2 ** t)
        x = x - learning_rate * m_hat / (np.sqrt(s_hat) + eps)
        out.append(x.copy())
    return out


def radam(x, grad, steps, learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0,
          threshold=5.0, nesterov=False):
    # Liu et al. 2020, "On the Variance of the Adaptive Learning Rate and Beyond", Algorithm 2
    rho_inf = 2 / (1 - b2) - 1
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    out = []
    for t in range(1, steps + 1):
        g = grad(x, t - 1)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g ** 2
        if nesterov:
            m_hat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1 ** t)
        else:
            m_hat = m / (1 - b1 ** t)
        rho_t = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
        if rho_t >= threshold:               # optax: >= 5 (paper: > 4)
            r_t = np.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                          / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            v_hat = v / (1 - b2 ** t)
            step = r_t * m_hat / (np.sqrt(v_hat + eps_root) + eps)   # optax: + eps
        else:
            step = m_hat
        x = x - learning_rate * step
        out.append(x.copy())
    return out


def yogi(x, grad, steps, learning_rate, b1=0.9, b2=0.999, eps=1e-3):
    # Zaheer et al. 2018, "Adaptive Methods for Nonconvex Optimization", Algorithm 2
    m = np.full_like(x, 1e-6)                # optax: both start at 1e-6 (paper: 0)
    v = np.full_like(x, 1e-6)
    out = []
    for t in range(1, steps + 1):
        g = grad(x, t - 1)
        m = b1 * m + (1 - b1) * g
        v = v - (1 - b2) * np.sign(v - g ** 2) * g ** 2
        # optax: bias correction (paper: none)
        m_hat = m / (1 - b1 ** t)
        v_hat = v / (1 - b2 ** t)
        x = x - learning_rate * m_hat / (np.sqrt(v_hat) + eps)
        out.append(x.copy())
    return out


def adan(x, grad, steps, learning_rate, b1=0.98, b2=0.92, b3=0.99, eps=1e-8, eps_root=1e-8,
         weight_decay=0.0):
    # Xie et al. 2022, "Adan: Adaptive Nesterov Momentum Algorithm", Alg. 1 (b = 1 - beta_paper)
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    n = np.zeros_like(x)
    g_prev = None
    out = []
    for t in range(1, steps + 1):
        g = grad(x, t - 1)
        diff = np.zeros_like(g) if g_prev is None else g - g_prev
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * diff
        # optax: (1 - b2) where the paper has (1 - beta2_paper) = b2, here and in u
        n = b3 * n + (1 - b3) * (g + (1 - b2) * diff) ** 2
        # optax: bias correction of all three (Algorithm 1: none)
        m_hat = m / (1 - b1 ** t)
        v_hat = v / (1 - b2 ** t)
        n_hat = n / (1 - b3 ** t)
        u = (m_hat + (1 - b2) * v_hat) / (np.sqrt(n_hat + eps_root) + eps)
        # optax: x -= lr (u + wd x)   (paper: x = (x - lr u) / (1 + lr wd))
        x = x - learning_rate * (u + weight_decay * x)
        g_prev = g
        out.append(x.copy())
    return out


def lion(x, grad, steps, learning_rate, b1=0.9, b2=0.99, weight_decay=1e-3):
    # Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms", Algorithm 2
    m = np.zeros_like(x)
    out = []
    for t in range(steps):
        g = grad(x, t)
        c = b1 * m + (1 - b1) * g
        x = x - learning_rate * (np.sign(c) + weight_decay * x)
        m = b2 * m + (1 - b2) * g
        out.append(x.copy())
    return out


def optimistic_adam(x, grad, steps, learning_rate, optimism=None, b1=0.9, b2=0.999, eps=1e-8,
                    eps_root=0.0, nesterov=True):
    # Daskalakis et al. 2018, "Training GANs with Optimism", Algorithm 1 (Optimistic Adam)
    if optimism is None:
        optimism = learning_rate
    return _optimistic_adam(x, grad, steps, 1.0, learning_rate, optimism, b1, b2, eps, eps_root,
                            nesterov)


def optimistic_adam_v2(x, grad, steps, learning_rate, alpha=1.0, beta=1.0, b1=0.9, b2=0.999,
                       eps=1e-8, eps_root=0.0, nesterov=True):
    # Daskalakis et al. 2018 with Mokhtari et al. 2020's (alpha, beta) and a learning rate
    return _optimistic_adam(x, grad, steps, learning_rate, alpha, beta, b1, b2, eps, eps_root,
                            nesterov)


def _optimistic_adam(x, grad, steps, learning_rate, alpha, beta, b1, b2, eps, eps_root,
                     nesterov):
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    u_prev = None
    out = []
    for t in range(1, steps + 1):
        g = grad(x, t - 1)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g ** 2
        u = _adam_direction(m, v, g, t, b1, b2, eps, eps_root, nesterov)
        if u_prev is None:
            u_prev = u
        x = x - learning_rate * ((alpha + beta) * u - beta * u_prev)
        u_prev = u
        out.append(x.copy())
    return out


# --------------------------------------------------- other adaptive methods

def adagrad(x, grad, steps, learning_rate, initial_accumulator_value=0.1, eps=1e-7):
    # Duchi et al. 2011, "Adaptive Subgradient Methods", diagonal AdaGrad
    G = np.full_like(x, initial_accumulator_value)   # optax: starts at 0.1 (paper: 0)
    out = []
    for t in range(steps):
        g = grad(x, t)
        G = G + g ** 2
        # optax: eps inside the root (paper: delta + sqrt(G)); 0 where G = 0
        scale = np.where(G > 0, 1 / np.sqrt(G + eps), 0.0)
        x = x - learning_rate * scale * g
        out.append(x.copy())
    return out


def adadelta(x, grad, steps, learning_rate=None, rho=0.9, eps=1e-6, weight_decay=0.0):
    # Zeiler 2012, "ADADELTA: An Adaptive Learning Rate Method", Algorithm 1
    Eg2 = np.zeros_like(x)
    Edx2 = np.zeros_like(x)
    out = []
    for t in range(steps):
        g = grad(x, t) + weight_decay * x
        Eg2 = rho * Eg2 + (1 - rho) * g ** 2
        dx = np.sqrt(Edx2 + eps) / np.sqrt(Eg2 + eps) * g
        Edx2 = rho * Edx2 + (1 - rho) * dx ** 2
        # optax: learning_rate scales dx (1.0 is the paper); None means no sign flip (ascent)
        x = x + dx if learning_rate is None else x - learning_rate * dx
        out.append(x.copy())
    return out


def rmsprop(x, grad, steps, learning_rate, decay=0.9, eps=1e-8, initial_scale=0.0,
            eps_in_sqrt=True, centered=False, momentum=None, nesterov=False,
            bias_correction=False):
    # Tieleman & Hinton 2012, lecture 6.5; centered + momentum: Graves 2013, eqs. 38-40
    nu = np.full_like(x, initial_scale)
    mu = np.zeros_like(x)
    mom = np.zeros_like(x)
    out = []
    for t in range(1, steps + 1):
        g = grad(x, t - 1)
        nu = decay * nu + (1 - decay) * g ** 2
        mu = decay * mu + (1 - decay) * g
        nu_hat = nu / (1 - decay ** t) if bias_correction else nu
        mu_hat = mu / (1 - decay ** t) if bias_correction else mu
        var = nu_hat - mu_hat ** 2 if centered else nu_hat
        # optax: eps inside the root unless eps_in_sqrt=False
        u = g / np.sqrt(var + eps) if eps_in_sqrt else g / (np.sqrt(var) + eps)
        u = learning_rate * u
        if momentum is not None:
            mom = momentum * mom + u
            u = u + momentum * mom if nesterov else mom
        x = x - u
        out.append(x.copy())
    return out


# ---------------------------------------------------------- L-BFGS (global)

def lbfgs_direction(g, s_hist, y_hist, gamma):
    # Nocedal & Wright, Numerical Optimization (2006), Algorithm 7.4: r = H g
    q = g.copy()
    alphas = []
    for s, y in reversed(list(zip(s_hist, y_hist))):     # newest pair first
        rho = 0.0 if y @ s == 0 else 1.0 / (y @ s)
        a = rho * (s @ q)
        q = q - a * y
        alphas.append((rho, a))
    r = gamma * q                                         # H_0 = gamma I
    for (s, y), (rho, a) in zip(zip(s_hist, y_hist), reversed(alphas)):   # oldest first
        b = rho * (y @ r)
        r = r + (a - b) * s
    return r


def lbfgs_gamma(g, s, y, scale_init_precond=True):
    # Nocedal & Wright eq. 7.20: gamma = s'y / y'y (optax: min(1, 1/||g||) on the first step)
    if not scale_init_precond:
        return 1.0
    if s is None:
        return min(1.0, 1.0 / np.linalg.norm(g))
    return (s @ y) / (y @ y) if y @ y > 0 else 1.0


def lbfgs(x, grad, steps, learning_rate, memory_size=10, scale_init_precond=True):
    # Liu & Nocedal 1989, "On the limited memory BFGS method", with a fixed step (linesearch=None)
    s_hist, y_hist = [], []
    x_prev = g_prev = None
    out = []
    for t in range(steps):
        g = grad(x, t)
        s = y = None
        if x_prev is not None:
            s, y = x - x_prev, g - g_prev
            s_hist, y_hist = (s_hist + [s])[-memory_size:], (y_hist + [y])[-memory_size:]
        d = lbfgs_direction(g, s_hist, y_hist, lbfgs_gamma(g, s, y, scale_init_precond))
        x_prev, g_prev = x, g
        x = x - learning_rate * d
        out.append(x.copy())
    return out


# ------------------------------------------- per-leaf rules (dict of arrays)

def _norm(a):
    return np.sqrt(np.sum(a ** 2))


def _trust_ratio(x, u, min_norm=0.0, trust_coefficient=1.0, eps=0.0):
    """trust_coefficient ||x|| / (||u|| + eps), norms floored at min_norm; 1 if either is 0."""
    xn = max(_norm(x), min_norm)
    un = max(_norm(u), min_norm)
    if xn == 0 or un == 0:
        return 1.0
    return trust_coefficient * xn / (un + eps)


def lamb(params, grad, steps, learning_rate, b1=0.9, b2=0.999, eps=1e-6, eps_root=0.0,
         weight_decay=0.0):
    # You et al. 2020, "Large Batch Optimization for Deep Learning" (LAMB), Alg. 2
    m = {k: np.zeros_like(p) for k, p in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    out = []
    for t in range(1, steps + 1):
        grads = grad(params, t - 1)
        new = {}
        for k, x in params.items():
            g = grads[k]
            m[k] = b1 * m[k] + (1 - b1) * g
            v[k] = b2 * v[k] + (1 - b2) * g ** 2
            r = _adam_direction(m[k], v[k], g, t, b1, b2, eps, eps_root, False) + weight_decay * x
            new[k] = x - learning_rate * _trust_ratio(x, r) * r    # phi = identity
        params = new
        out.append({k: a.copy() for k, a in params.items()})
    return out


def lars(params, grad, steps, learning_rate, weight_decay=0.0, trust_coefficient=0.001, eps=0.0,
         momentum=0.9, nesterov=False):
    # You et al. 2017, "Large Batch Training of Convolutional Networks", Algorithm 1
    v = {k: np.zeros_like(p) for k, p in params.items()}
    out = []
    for t in range(steps):
        grads = grad(params, t)
        new = {}
        for k, x in params.items():
            u = grads[k] + weight_decay * x
            # optax: ||g + wd x|| in the denominator (paper: ||g|| + wd ||x||)
            local_lr = learning_rate * _trust_ratio(x, u, 0.0, trust_coefficient, eps)
            v[k] = momentum * v[k] + local_lr * u
            step = local_lr * u + momentum * v[k] if nesterov else v[k]
            new[k] = x - step
        params = new
        out.append({k: a.copy() for k, a in params.items()})
    return out


def fromage(params, grad, steps, learning_rate, min_norm=1e-6):
    # Bernstein et al. 2020, "On the distance between two neural networks...", Algorithm 1
    out = []
    for t in range(steps):
        grads = grad(params, t)
        params = {k: (x - learning_rate * _trust_ratio(x, grads[k], min_norm) * grads[k])
                  / np.sqrt(1 + learning_rate ** 2) for k, x in params.items()}
        out.append({k: a.copy() for k, a in params.items()})
    return out


def novograd(params, grad, steps, learning_rate, b1=0.9, b2=0.25, eps=1e-6, eps_root=0.0,
             weight_decay=0.0):
    # Ginsburg et al. 2019, "Stochastic Gradient Methods with Layer-wise Adaptive Moments", Alg. 1
    m, v = {}, {}
    out = []
    for t in range(1, steps + 1):
        grads = grad(params, t - 1)
        new = {}
        for k, x in params.items():
            g = grads[k]
            sq_norm = np.sum(g ** 2)                       # one second moment per leaf
            v[k] = sq_norm if t == 1 else b2 * v[k] + (1 - b2) * sq_norm
            step = g / (np.sqrt(v[k] + eps_root) + eps) + weight_decay * x
            m[k] = step if t == 1 else b1 * m[k] + step
            new[k] = x - learning_rate * m[k]
        params = new
        out.append({k: a.copy() for k, a in params.items()})
    return out


def sm3(params, grad, steps, learning_rate, momentum=0.9):
    # Anil et al. 2019, "Memory-Efficient Adaptive Optimization", SM3-II (covers: rows and columns)
    eps = 1e-8
    cover = {}      # 1-D leaf: one accumulator per entry; 2-D: one per row and one per column
    for k, p in params.items():
        cover[k] = [np.zeros(p.shape)] if p.ndim == 1 else [np.zeros(p.shape[0]),
                                                             np.zeros(p.shape[1])]
    mom = {k: np.zeros_like(p) for k, p in params.items()}
    out = []
    for t in range(steps):
        grads = grad(params, t)
        new = {}
        for k, x in params.items():
            g = grads[k]
            if g.ndim == 1:
                nu = cover[k][0] + g ** 2
                cover[k] = [nu]
            else:
                row, col = cover[k]
                nu = np.minimum(row[:, None], col[None, :]) + g ** 2
                cover[k] = [nu.max(axis=1), nu.max(axis=0)]
            # optax: eps inside the root, 0 where nu = 0, then an EMA momentum
            pre = np.where(nu > 0, g / np.sqrt(nu + eps), 0.0)
            mom[k] = momentum * mom[k] + (1 - momentum) * pre
            new[k] = x - learning_rate * mom[k]
        params = new
        out.append({k: a.copy() for k, a in params.items()})
    return out


def adafactor(params, grad, steps, learning_rate=None, min_dim_size_to_factor=128,
              decay_rate=0.8, decay_offset=0, multiply_by_parameter_scale=True,
              clipping_threshold=1.0, momentum=None, weight_decay_rate=None, eps=1e-30,
              factored=True):
    # Shazeer & Stern 2018, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost", Alg. 4
    def is_factored(shape):
        return factored and len(shape) == 2 and min(shape) >= min_dim_size_to_factor

    R = {k: np.zeros(p.shape[0]) for k, p in params.items() if is_factored(p.shape)}
    C = {k: np.zeros(p.shape[1]) for k, p in params.items() if is_factored(p.shape)}
    V = {k: np.zeros_like(p) for k, p in params.items() if not is_factored(p.shape)}
    m = {k: np.zeros_like(p) for k, p in params.items()}
    out = []
    for t in range(1, steps + 1):
        grads = grad(params, t - 1)
        # beta2_t = 1 - t^(-0.8); optax: in float32 (the exponent rounded to float32 too)
        power = np.float32(float(t - decay_offset) ** float(np.float32(-decay_rate)))
        beta = np.float32(1) - power
        one_minus_beta = float(np.float32(1) - beta)
        beta = float(beta)
        new = {}
        for k, x in params.items():
            g2 = grads[k] ** 2 + eps
            if is_factored(x.shape):
                # optax: row/column means (paper: sums; V_hat is the same)
                R[k] = beta * R[k] + one_minus_beta * g2.mean(axis=1)
                C[k] = beta * C[k] + one_minus_beta * g2.mean(axis=0)
                v_hat = np.outer(R[k], C[k]) / R[k].mean()
            else:
                V[k] = beta * V[k] + one_minus_beta * g2
                v_hat = V[k]
            u = grads[k] / np.sqrt(v_hat)
            if clipping_threshold is not None:
                u = u / max(1.0, _rms(u) / clipping_threshold)
            # optax: no relative step size rho_t; the learning rate (if any) instead
            if learning_rate is not None:
                u = learning_rate * u
            if multiply_by_parameter_scale:
                u = u * max(_rms(x), 1e-3)
            if momentum is not None:               # optax: EMA without debiasing
                m[k] = momentum * m[k] + (1 - momentum) * u
                u = m[k]
            if weight_decay_rate is not None:      # optax: not scaled by the learning rate
                u = u + weight_decay_rate * x
            new[k] = x - u
        params = new
        out.append({k: a.copy() for k, a in params.items()})
    return out
