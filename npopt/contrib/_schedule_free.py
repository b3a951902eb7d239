"""Schedule-Free, optax.contrib's ``schedule_free`` wrapper, its SGD and
AdamW shortcuts and ``schedule_free_eval_params``.

A wrapper: the base optimizer's ``update`` gives ``u``, then one kernel
pass (``npopt.kernels.schedule_free``) updates ``z`` in place and makes the
update (in ``step``: the new params, in place). Host side, as optax: the scalars (``max_lr``, the weight ``ck``)
in the params' lowest dtype; ``b1`` and ``1 - b1`` as Python floats
rounded to the leaf dtype, ``1 - ck`` in ck's dtype.
"""
from typing import Any, NamedTuple

import numpy as np

from .. import _checks, _flat, _math
from ..alias.core import sgd
from ..base import GradientTransformation, safe_increment, with_extra_args_support
from ..kernels import schedule_free as ksf
from ..schedules import warmup_constant_schedule
from ..transforms import _fusion
from ..transforms.combine import chain
from ..transforms.rms import scale_by_rms
from ..transforms.scale import add_decayed_weights, scale_by_learning_rate, scheduled_value
from ..tree import tree_dtype, tree_map


class ScheduleFreeState(NamedTuple):
    b1: Any                    # b1, a 0-d array of the params' lowest dtype
    weight_sum: Any            # sum of the averaging weights max_lr ** weight_lr_power
    step_count: Any            # int32, starts at 1
    max_lr: Any                # the largest learning rate seen
    base_optimizer_state: Any  # the wrapped optimizer's state
    z: Any                     # the base optimizer's iterates (state_dtype)


def schedule_free_eval_params(state, params):
    r"""The averaged params :math:`x = (y - (1-\beta_1) z)/\beta_1` to
    evaluate the model at (``state``: a ScheduleFreeState)."""
    b1 = getattr(state, "b1", None)
    z = getattr(state, "z", None)
    if b1 is None or z is None:
        raise ValueError("schedule_free_eval_params requires a ScheduleFreeState as input.")
    b1 = np.asarray(b1)
    return tree_map(lambda y, zi: (np.asarray(y) - (1.0 - b1) * np.asarray(zi)) / b1, params, z)


def schedule_free(base_optimizer, learning_rate, b1=0.9, weight_lr_power=2.0, state_dtype=None):
    r"""Makes ``base_optimizer`` schedule-free: its momentum is replaced by
    interpolation (:math:`y`) and averaging (:math:`x`) of its iterates
    :math:`z`. For gradient descent:

    .. math::
        y_t = (1-\beta_1) z_t + \beta_1 x_t,\quad
        z_{t+1} = z_t - \gamma_t \nabla f(y_t),\quad
        x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1},

    with :math:`c_{t+1} = w_t / \sum_{i \le t} w_i`,
    :math:`w_t = \max_{i \le t}\gamma_i^{\,p}` (:math:`p` = ``weight_lr_power``).
    The params the optimizer holds are :math:`y`; evaluate the model at
    ``schedule_free_eval_params(state, params)`` (:math:`x`). :math:`x` is
    not stored: it is recomputed from :math:`y` and :math:`z`.

    Switch off the base optimizer's momentum (``b1=0`` for Adam) and use a
    schedule with warm-up but without decay.

    .. note:: As optax: ``learning_rate`` is evaluated at ``step_count``,
       which starts at 1; a NaN weight gives NaN params (not skipped).

    Args:
      base_optimizer: the GradientTransformation computing :math:`z`'s steps.
      learning_rate: :math:`\gamma`, a float or a schedule (for the weights;
        the base optimizer has its own).
      b1: :math:`\beta_1` in (0, 1].
      weight_lr_power: :math:`p`.
      state_dtype: dtype of ``z`` (None: the params').

    References:
      Defazio et al., "The Road Less Scheduled", NeurIPS 2024
      (arXiv:2405.15682), Algorithm 1.
    """
    if not isinstance(base_optimizer, tuple) or len(base_optimizer) != 2:
        raise TypeError(f"base_optimizer: expected a GradientTransformation, got "
                        f"{type(base_optimizer).__name__}")
    learning_rate = _checks.check_scalar_or_schedule("learning_rate", learning_rate)
    b1 = _checks.check_number("b1", b1, low=0.0, high=1.0, low_open=True)
    weight_lr_power = _checks.check_number("weight_lr_power", weight_lr_power)
    state_dtype = _checks.check_float_dtype("state_dtype", state_dtype)
    base_optimizer = with_extra_args_support(base_optimizer)

    def init_fn(params):
        dt = tree_dtype(params, "lowest")
        lay, _ = _flat.layout_of(params)
        p = lay.gather(params, "params")
        z = [lay.target.empty(grp.size, state_dtype or grp.dtype) for grp in lay.groups]
        for zb, pb in zip(z, p):
            lay.target.copy_into(zb, _flat.as_dtype(lay.target, pb, zb.dtype))
        return ScheduleFreeState(b1=np.asarray(b1, dt), weight_sum=np.zeros((), dt),
                                 step_count=np.ones((), np.int32), max_lr=np.zeros((), dt),
                                 base_optimizer_state=base_optimizer.init(params),
                                 z=lay.views(z))

    def scalars(state):
        """(max_lr, weight_sum, ck) of this step, in the state's dtype."""
        max_lr = np.asarray(state.max_lr)
        if callable(learning_rate):
            lr = np.asarray(scheduled_value("learning_rate", learning_rate, state.step_count,
                                            nonnegative=True), max_lr.dtype)
        else:
            lr = learning_rate
        max_lr = np.maximum(max_lr, lr)[()]
        weight = _math.power(max_lr, max_lr.dtype.type(weight_lr_power))
        total = np.asarray(state.weight_sum) + weight
        with np.errstate(divide="ignore", invalid="ignore"):
            ck = weight / total
        if np.isnan(weight) or np.isnan(total):
            ck = max_lr.dtype.type(np.nan)
        else:
            ck = np.nan_to_num(ck, nan=0.0, posinf=np.inf)
        return max_lr, total, ck

    def hyperparams(res, ck):
        r = res.type
        cc = np.asarray(1.0 - np.asarray(ck))[()]      # in ck's dtype, as optax
        return (r(b1), r(1.0 - b1), r(ck), r(cc))

    def new_state(state, max_lr, total, base_state, z_tree):
        return ScheduleFreeState(b1=state.b1, weight_sum=total,
                                 step_count=safe_increment(np.int32(state.step_count)),
                                 max_lr=max_lr, base_optimizer_state=base_state, z=z_tree)

    def update_fn(grads, state, params=None, **extra_args):
        _checks.check_state("state", state, ScheduleFreeState, "schedule_free")
        if params is None:
            raise ValueError("schedule_free: update needs the params (y)")
        lay, _ = _flat.layout_of(params, "params")
        y = lay.gather(params, "params")
        zdt = [state_dtype or grp.dtype for grp in lay.groups]
        z = lay.copy(lay.gather(state.z, "state.z", zdt))
        max_lr, total, ck = scalars(state)
        base_updates, base_state = base_optimizer.update(grads, state.base_optimizer_state,
                                                         params, **extra_args)
        u = lay.gather(base_updates, "updates")
        out = []
        for gi, grp in enumerate(lay.groups):
            res = np.promote_types(grp.dtype, zdt[gi])
            o = lay.target.empty(grp.size, res)
            lay.target.launch(ksf.schedule_free_cpu, ksf.schedule_free_cuda,
                              u[gi], z[gi], y[gi], o, hyperparams(res, ck), False)
            out.append(o)
        return lay.views(out), new_state(state, max_lr, total, base_state, lay.views(z))

    def step(params, grads, state, **extra_args):
        """The base's update, then one pass: z in place, the params in place
        (``transforms._fusion``'s frame: every check, ``commit``, the kernel)."""
        _checks.check_state("state", state, ScheduleFreeState, "schedule_free")
        io = _fusion.begin(params, grads)
        lay = io.lay
        zdt = [state_dtype or grp.dtype for grp in lay.groups]
        max_lr, total, ck = scalars(state)
        base_updates, base_state = base_optimizer.update(grads, state.base_optimizer_state,
                                                         params, **extra_args)
        u = lay.gather(base_updates, "updates")
        z, z_tree, token = lay.bind(state.z, "state.z", zdt)
        _fusion.commit(io, [_fusion.Bound([("state.z", b) for b in z], (token,), None)])
        for gi, grp in enumerate(lay.groups):
            res = np.promote_types(grp.dtype, zdt[gi])
            lay.target.launch(ksf.schedule_free_cpu, ksf.schedule_free_cuda,
                              u[gi], z[gi], io.p[gi], io.p[gi], hyperparams(res, ck), True)
        return io.params_out(params), new_state(state, max_lr, total, base_state, z_tree)

    return GradientTransformation(init_fn, update_fn, fused_step=step)


def schedule_free_sgd(learning_rate=1.0, warmup_steps=None, b1=0.9, weight_decay=None,
                      weight_lr_power=2.0, state_dtype=None):
    r"""Schedule-Free SGD: ``schedule_free(sgd(lr), lr, b1, ...)``, with a
    linear warm-up of ``warmup_steps`` steps (from 0) when given and
    ``add_decayed_weights(weight_decay)`` before SGD when given.

    .. math::
        y_t = (1-\beta_1) z_t + \beta_1 x_t,\quad
        z_{t+1} = z_t - \gamma_t (\nabla f(y_t) + \lambda y_t)

    (see ``schedule_free``).

    Args:
      learning_rate: :math:`\gamma`, the peak learning rate.
      warmup_steps: length of the linear warm-up (None: none).
      b1, weight_lr_power, state_dtype: see ``schedule_free``.
      weight_decay: :math:`\lambda` (None: none), multiplied by the learning rate.

    References:
      Defazio et al., "The Road Less Scheduled", NeurIPS 2024 (arXiv:2405.15682).
    """
    if warmup_steps is not None:
        learning_rate = warmup_constant_schedule(init_value=0, peak_value=learning_rate,
                                                 warmup_steps=warmup_steps)
    optimizer = sgd(learning_rate)
    if weight_decay is not None:
        optimizer = chain(add_decayed_weights(weight_decay), optimizer)
    return schedule_free(optimizer, learning_rate=learning_rate, b1=b1,
                         weight_lr_power=weight_lr_power, state_dtype=state_dtype)


def schedule_free_adamw(learning_rate=0.0025, warmup_steps=None, b1=0.9, b2=0.999, eps=1e-8,
                        weight_decay=0.0, weight_lr_power=2.0, state_dtype=None):
    r"""Schedule-Free AdamW: ``schedule_free(chain(scale_by_rms(b2, eps,
    eps_in_sqrt=False, bias_correction=True), add_decayed_weights(weight_decay),
    scale_by_learning_rate(lr)), lr, b1, ...)``.

    The base is AdamW without momentum (``scale_by_rms`` with a bias
    correction: Adam with :math:`\beta_1 = 0`, without the unused first
    moment); :math:`\beta_1` is Schedule-Free's interpolation weight.

    Args:
      learning_rate: :math:`\gamma`, the peak learning rate.
      warmup_steps: length of the linear warm-up (None: none).
      b1: see ``schedule_free``.
      b2: decay of the second moment.
      eps: added to the denominator outside the square root.
      weight_decay: decoupled weight decay, multiplied by the learning rate.
      weight_lr_power, state_dtype: see ``schedule_free``.

    References:
      Defazio et al., "The Road Less Scheduled", NeurIPS 2024 (arXiv:2405.15682).
    """
    if warmup_steps is not None:
        learning_rate = warmup_constant_schedule(init_value=0, peak_value=learning_rate,
                                                 warmup_steps=warmup_steps)
    optimizer = chain(scale_by_rms(decay=b2, eps=eps, eps_in_sqrt=False, bias_correction=True),
                      add_decayed_weights(weight_decay),
                      scale_by_learning_rate(learning_rate))
    return schedule_free(optimizer, learning_rate=learning_rate, b1=b1,
                         weight_lr_power=weight_lr_power, state_dtype=state_dtype)


__all__ = ["ScheduleFreeState", "schedule_free", "schedule_free_adamw",
           "schedule_free_eval_params", "schedule_free_sgd"]
