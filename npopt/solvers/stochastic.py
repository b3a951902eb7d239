"""Stochastic first-order solvers: OptaxSolver, PolyakSGD and ArmijoSGD.

Each takes minibatches through ``run_iterator(init_params, iterator, *args,
**kwargs)`` (the batch arrives as the ``data`` keyword of ``fun``) or runs
deterministically through ``run``. Their ``error`` is the norm of the
gradient at the params *before* the step (jaxopt's convention: one step
behind), and the states are jaxopt 0.8.5's.
"""
import dataclasses
from typing import Any, Callable, NamedTuple, Optional, Union

import numpy as np

from .. import tree as T
from .._checks import check_callable
from . import base

_EVAL = np.int32   # jaxopt's NUM_EVAL_DTYPE


class _Common:
    """What the three share: the gradient source and the value's checks."""

    def _setup(self):
        base.IterativeSolver.__post_init__(self)
        check_callable("fun", self.fun)
        self._fun_with_aux, self._value_and_grad_with_aux = base.make_value_and_grad(
            self.fun, self.value_and_grad, self.has_aux, self.grad, owner=type(self).__name__)

    def _value_and_grad(self, params, args, kwargs):
        return base.evaluate(self._value_and_grad_with_aux, params, args, kwargs)

    def optimality_fun(self, params, *args, **kwargs):
        """The gradient of ``fun`` (zero at a stationary point)."""
        return self._value_and_grad_with_aux(params, *args, **kwargs)[1]


def _copy_buffers(tree):
    """``tree`` with every ndarray leaf copied (the buffers ``opt.step`` writes)."""
    return T.tree_map(lambda x: x.copy() if isinstance(x, np.ndarray) else x, tree)


def _check_number(name, value, low=None, high=None, low_open=False, high_open=False):
    ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool) \
        and np.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        lo = "" if low is None else ("(" if low_open else "[") + f"{low}, "
        hi = "" if high is None else f"{high}" + (")" if high_open else "]")
        rng = f" in {lo}{hi}" if (lo or hi) else ""
        raise ValueError(f"{name}: expected a finite number{rng}, got {value!r}")


# --------------------------------------------------------------------------

class OptaxState(NamedTuple):
    iter_num: int
    value: float
    error: float
    internal_state: NamedTuple
    aux: Any


@dataclasses.dataclass(eq=False)
class OptaxSolver(_Common, base.StochasticSolver):
    """Runs any npopt GradientTransformation as a solver (jaxopt's OptaxSolver).

    Each update evaluates ``fun`` and its gradient at the params and applies
    ``opt``'s update. ``error`` is the gradient norm before the step.

    The step is npopt's fused ``opt.step`` (one pass over memory when the
    chain allows it), which updates its params and state in place.
    ``update(params, state, ...)`` never modifies its arguments (jaxopt's
    functional API: a state may be used twice): it steps on copies.
    ``run`` and ``run_iterator`` copy ``init_params`` once and then step in
    place on their own buffers: the caller's ``init_params`` are never
    overwritten. Scalar
    params (``theta = 1.0``, as in jaxopt's examples) come back as 0-d arrays.

    Attributes:
      fun: ``fun(params, *args, **kwargs)`` (see value_and_grad, has_aux, grad).
      opt: an npopt GradientTransformation (e.g. ``npopt.adam(1e-3)``).
      pre_update: ``params, state = pre_update(params, state, *args, **kwargs)``
        before each update.
      maxiter, tol, verbose, has_aux, implicit_diff, ...: as jaxopt.
    """
    fun: Callable
    opt: NamedTuple
    value_and_grad: Union[bool, Callable] = False
    pre_update: Optional[Callable] = None
    maxiter: int = 500
    tol: float = 1e-3
    verbose: Union[bool, int] = False
    implicit_diff: bool = False
    implicit_diff_solve: Optional[Callable] = None
    has_aux: bool = False
    jit: bool = True
    unroll: Any = "auto"
    grad: Optional[Callable] = None
    optimality_jvp: Optional[Callable] = None   # see npopt.implicit_diff
    optimality_vjp: Optional[Callable] = None

    def __post_init__(self):
        self._setup()
        if not (hasattr(self.opt, "init") and hasattr(self.opt, "update")):
            raise TypeError("opt: expected a GradientTransformation (with init and update), "
                            f"got {type(self.opt).__name__}")

    def init_state(self, init_params, *args, **kwargs):
        dtype = base.dtype_of(init_params)
        value, aux = self._fun_with_aux(init_params, *args, **kwargs)
        return OptaxState(iter_num=np.asarray(0),
                          value=np.asarray(np.inf, np.result_type(base.check_value(value))),
                          error=np.asarray(np.inf, dtype), aux=aux,
                          internal_state=self.opt.init(init_params))

    def update(self, params, state, *args, **kwargs):
        """One step of ``opt``; ``params`` and ``state`` are left as they were."""
        return self._update(params, state, args, kwargs, inplace=False)

    def _update(self, params, state, args, kwargs, inplace):
        """``inplace``: params and state are this run's own buffers, which
        ``opt.step`` may update in place (see the class docstring)."""
        if self.pre_update:
            params, state = self.pre_update(params, state, *args, **kwargs)
            inplace = False             # pre_update may hand back the caller's arrays
        value, aux, grad = self._value_and_grad(params, args, kwargs)
        step = getattr(self.opt, "step", None)
        if step is not None:
            opt_state = state.internal_state
            if not inplace:     # the caller's buffers: step on copies (the same numbers)
                params, opt_state = _copy_buffers(params), _copy_buffers(opt_state)
            params, opt_state = step(params, grad, opt_state)
        else:   # a foreign (init, update) pair
            from ..base import apply_updates
            delta, opt_state = self.opt.update(grad, state.internal_state, params)
            params = apply_updates(params, delta)
        error = T.tree_l2_norm(grad)
        new_state = OptaxState(iter_num=state.iter_num + 1,
                               error=np.asarray(error, base.dtype_of(params)),
                               value=np.asarray(value), aux=aux, internal_state=opt_state)
        self.log_info(new_state, "Gradient Norm", {"Objective Value": value})
        return base.OptStep(params, new_state)

    @staticmethod
    def _own(init_params):
        """A copy of ``init_params`` for ``run`` to update in place (a scalar
        leaf becomes a 0-d array, as ``opt.step`` returns it)."""
        return T.tree_map(lambda x: np.array(x, copy=True), init_params)

    def run(self, init_params, *args, **kwargs):
        """``init_state``, then ``update`` while ``error > tol``, at most
        ``maxiter`` times (see ``IterativeSolver.run``), on a copy of
        ``init_params``."""
        state = self.init_state(init_params, *args, **kwargs)
        if self.maxiter == 0:
            return base.OptStep(init_params, state)
        params = self._own(init_params)
        params, state = self._update(params, state, args, kwargs, inplace=True)
        for _ in range(self.maxiter - 1):
            if not self._cond(state):
                break
            params, state = self._update(params, state, args, kwargs, inplace=True)
        self._warn_if_not_finite(state)
        return base.OptStep(params, state)

    def run_iterator(self, init_params, iterator, *args, **kwargs):
        """As ``StochasticSolver.run_iterator``, on a copy of ``init_params``."""
        it = iter(iterator)
        try:
            data = next(it)
        except StopIteration:
            raise ValueError("iterator: expected at least one batch, got an empty iterator") \
                from None
        state = self.init_state(init_params, *args, **kwargs, data=data)
        params = init_params
        owned = False
        for k, data in enumerate(it):
            if k >= self.maxiter:
                break
            if not owned:
                params, owned = self._own(init_params), True
            params, state = self._update(params, state, args, dict(kwargs, data=data),
                                         inplace=True)
        self._warn_if_not_finite(state)
        return base.OptStep(params, state)


# --------------------------------------------------------------------------

class PolyakSGDState(NamedTuple):
    iter_num: int
    error: float
    value: float
    aux: Any
    stepsize: float
    velocity: Optional[Any]
    num_fun_eval: int = 0
    num_grad_eval: int = 0


@dataclasses.dataclass(eq=False)
class PolyakSGD(_Common, base.StochasticSolver):
    r"""SGD with Polyak step sizes (Loizou et al., 2021; Berrada et al., 2020).

    .. math::
        s_k = \min\left(\frac{f(x_k) - f^*}{\|\nabla f(x_k)\|^2 + \delta},
        s_{\max}\right)\quad(\text{SPS\_max}),\qquad
        s_k = \frac{\max(f(x_k) - f^*, 0)}{\|\nabla f(x_k)\|^2}\quad(\text{SPS+}, 0
        \text{ when } \|\nabla f\|^2 \le \varepsilon_{\text{dtype}})

    then ``x_{k+1} = x_k - s_k g_k``, or with momentum ``v = m v - s_k g_k``,
    ``x_{k+1} = x_k + v``.

    Attributes:
      fun, value_and_grad, has_aux, grad: see ``npopt.solvers.base``.
      fun_min: a lower bound of ``fun`` (f*; 0 for interpolating models).
      variant: 'SPS_max' or 'SPS+'.
      max_stepsize: the cap of SPS_max; delta: added to the squared norm.
      momentum: heavy-ball momentum (0: none, and ``state.velocity`` is None).
      pre_update, maxiter, tol, verbose, ...: as jaxopt.

    References:
      Loizou, Vaswani, Laradji & Lacoste-Julien, "Stochastic Polyak step-size
      for SGD: an adaptive learning rate for fast convergence", AISTATS 2021.
      Berrada, Zisserman & Kumar, "Training neural networks for and by
      interpolation", ICML 2020.
    """
    fun: Callable
    value_and_grad: Union[bool, Callable] = False
    has_aux: bool = False
    fun_min: float = 0.0
    variant: str = "SPS_max"
    max_stepsize: float = 1.0
    delta: float = 0.0
    momentum: float = 0.0
    pre_update: Optional[Callable] = None
    maxiter: int = 500
    tol: float = 1e-3
    verbose: Union[bool, int] = False
    implicit_diff: bool = False
    implicit_diff_solve: Optional[Callable] = None
    jit: bool = True
    unroll: Any = "auto"
    grad: Optional[Callable] = None
    optimality_jvp: Optional[Callable] = None   # see npopt.implicit_diff
    optimality_vjp: Optional[Callable] = None

    def __post_init__(self):
        self._setup()
        if self.variant not in ("SPS_max", "SPS+"):
            raise ValueError(f"variant: expected 'SPS_max' or 'SPS+', got {self.variant!r}")
        _check_number("fun_min", self.fun_min)
        _check_number("max_stepsize", self.max_stepsize, low=0.0, low_open=True)
        _check_number("delta", self.delta, low=0.0)
        _check_number("momentum", self.momentum, low=0.0)

    def init_state(self, init_params, *args, **kwargs):
        dtype = base.dtype_of(init_params)
        value, aux = self._fun_with_aux(init_params, *args, **kwargs)
        return PolyakSGDState(
            iter_num=np.asarray(0), error=np.asarray(np.inf, dtype),
            value=np.asarray(np.inf, np.result_type(base.check_value(value))),
            stepsize=np.asarray(1.0, dtype), aux=aux,
            velocity=None if self.momentum == 0 else T.tree_zeros_like(init_params),
            num_fun_eval=np.asarray(1, _EVAL), num_grad_eval=np.asarray(0, _EVAL))

    def update(self, params, state, *args, **kwargs):
        dtype = base.dtype_of(params, "params")
        if self.pre_update:
            params, state = self.pre_update(params, state, *args, **kwargs)
        value, aux, grad = self._value_and_grad(params, args, kwargs)
        sqnorm = T.tree_l2_norm(grad, squared=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.variant == "SPS_max":
                stepsize = np.minimum((value - self.fun_min) / (sqnorm + self.delta),
                                      self.max_stepsize)
            else:
                stepsize = (0.0 if sqnorm <= np.finfo(dtype).eps
                            else np.maximum((value - self.fun_min) / sqnorm, 0))
        stepsize = np.asarray(stepsize).astype(state.stepsize.dtype)
        if self.momentum == 0:
            new_params, velocity = T.tree_add_scalar_mul(params, -stepsize, grad), None
        else:
            velocity = T.tree_sub(T.tree_scalar_mul(self.momentum, state.velocity),
                                  T.tree_scalar_mul(stepsize, grad))
            new_params = T.tree_add(params, velocity)
        new_state = PolyakSGDState(
            iter_num=state.iter_num + 1, error=np.asarray(np.sqrt(sqnorm), dtype),
            velocity=velocity, value=np.asarray(value), stepsize=np.asarray(stepsize, dtype),
            aux=aux, num_fun_eval=state.num_fun_eval + 1, num_grad_eval=state.num_grad_eval + 1)
        self.log_info(new_state, "Gradient Norm",
                      {"Objective Value": value, "Stepsize": stepsize})
        return base.OptStep(new_params, new_state)


# --------------------------------------------------------------------------

class ArmijoState(NamedTuple):
    iter_num: int
    error: float
    value: float
    aux: Optional[Any]
    stepsize: float
    velocity: Optional[Any]


@dataclasses.dataclass(eq=False)
class ArmijoSGD(_Common, base.StochasticSolver):
    r"""SGD with an Armijo line search on each minibatch (Vaswani et al., 2019).

    From the previous step times ``increase_factor`` (reset_option
    'increase'; kept as is with 'conservative' and 'goldstein'), capped at
    ``max_stepsize``, the step is multiplied by ``decrease_factor`` while
    the Armijo condition
    :math:`f(x - s g) \le f(x) - c\, s \|g\|^2` (``c = 1 - aggressiveness``,
    up to the dtype's eps) fails, at most ``maxls`` times; with
    'goldstein' it is also multiplied by ``increase_factor`` while the
    curvature condition :math:`f(x - s g) < f(x) - (1 - c) s \|g\|^2` holds.
    Momentum adds ``momentum * (x_k - x_{k-1})``.

    References:
      Vaswani, Mishkin, Laradji, Schmidt, Gidel & Lacoste-Julien, "Painless
      Stochastic Gradient: Interpolation, Line-Search, and Convergence
      Rates", NeurIPS 2019.
    """
    fun: Callable
    value_and_grad: Union[bool, Callable] = False
    has_aux: bool = False
    aggressiveness: float = 0.9
    decrease_factor: float = 0.8
    increase_factor: float = 1.5
    reset_option: str = "increase"
    momentum: float = 0.0
    max_stepsize: float = 1.0
    pre_update: Optional[Callable] = None
    maxiter: int = 500
    maxls: int = 15
    tol: float = 1e-3
    verbose: Union[bool, int] = False
    implicit_diff: bool = False
    implicit_diff_solve: Optional[Callable] = None
    jit: bool = True
    unroll: Any = "auto"
    grad: Optional[Callable] = None
    optimality_jvp: Optional[Callable] = None   # see npopt.implicit_diff
    optimality_vjp: Optional[Callable] = None

    def __post_init__(self):
        self._setup()
        options = ("increase", "goldstein", "conservative")
        if self.reset_option not in options:
            raise ValueError(f"reset_option: expected one of {options}, got {self.reset_option!r}")
        _check_number("aggressiveness", self.aggressiveness, 0.0, 1.0, True, True)
        _check_number("decrease_factor", self.decrease_factor, 0.0, 1.0, True, True)
        _check_number("increase_factor", self.increase_factor, 1.0)
        _check_number("max_stepsize", self.max_stepsize, low=0.0, low_open=True)
        _check_number("momentum", self.momentum, low=0.0)
        self._coef = 1 - self.aggressiveness

    def init_state(self, init_params, *args, **kwargs):
        dtype = base.dtype_of(init_params)
        value, aux = self._fun_with_aux(init_params, *args, **kwargs)
        return ArmijoState(
            iter_num=np.asarray(0), error=np.asarray(np.inf, dtype),
            value=np.asarray(np.inf, np.result_type(base.check_value(value))), aux=aux,
            stepsize=np.asarray(self.max_stepsize, dtype),
            velocity=None if self.momentum == 0 else T.tree_zeros_like(init_params))

    def reset_stepsize(self, stepsize):
        """The first trial step of an iteration (see reset_option)."""
        if self.reset_option in ("goldstein", "conservative"):
            return stepsize
        return np.minimum(stepsize * self.increase_factor, self.max_stepsize)

    def _line_search(self, params, f_cur, stepsize, grad, args, kwargs):
        coef, goldstein = self._coef, self.reset_option == "goldstein"
        sqnorm = T.tree_l2_norm(grad, squared=True)

        def trial(s):
            p = T.tree_add_scalar_mul(params, -s, grad)
            return p, base.check_value(self._fun_with_aux(p, *args, **kwargs)[0])

        next_params, f_next = trial(stepsize)
        for _ in range(self.maxls):
            eps = np.finfo(np.result_type(f_next, np.float32)).eps
            violated = stepsize * coef * sqnorm > f_cur - f_next + eps
            if violated:
                stepsize = np.minimum(stepsize * self.decrease_factor, self.max_stepsize)
                next_params, f_next = trial(stepsize)
            if goldstein:
                curvature = f_next < f_cur - stepsize * (1.0 - coef) * sqnorm
                if curvature:
                    stepsize = np.minimum(stepsize * self.increase_factor, self.max_stepsize)
                    next_params, f_next = trial(stepsize)
                violated = violated or curvature
            if not violated:
                break
        return stepsize, next_params, f_next

    def update(self, params, state, *args, **kwargs):
        dtype = base.dtype_of(params, "params")
        if self.pre_update:
            params, state = self.pre_update(params, state, *args, **kwargs)
        stepsize = self.reset_stepsize(state.stepsize)
        f_cur, aux, grad = self._value_and_grad(params, args, kwargs)
        stepsize, next_params, f_next = self._line_search(params, f_cur, stepsize, grad,
                                                          args, kwargs)
        if self.momentum == 0:
            velocity = None
        else:
            next_params = T.tree_add(next_params, T.tree_scalar_mul(self.momentum,
                                                                    state.velocity))
            velocity = T.tree_sub(next_params, params)
        new_state = ArmijoState(iter_num=state.iter_num + 1,
                                error=np.asarray(T.tree_l2_norm(grad), dtype),
                                value=np.asarray(f_next), aux=aux,
                                stepsize=np.asarray(stepsize, dtype), velocity=velocity)
        self.log_info(new_state, "Gradient Norm",
                      {"Objective Value": f_next, "Stepsize": stepsize})
        return base.OptStep(next_params, new_state)
