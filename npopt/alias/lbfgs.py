r"""L-BFGS with optax's zoom line search, as the chain optax 0.2.8 builds."""
from .._checks import check_scalar_or_schedule
from ..base import identity
from ..transforms.combine import as_transformation, chain
from ..transforms.lbfgs import scale_by_lbfgs
from ..transforms.linesearch import scale_by_zoom_linesearch
from ..transforms.scale import scale, scale_by_learning_rate


def lbfgs(learning_rate=None, memory_size=10, scale_init_precond=True,
          linesearch=scale_by_zoom_linesearch(max_linesearch_steps=20,
                                              initial_guess_strategy="one")):
    r"""L-BFGS: quasi-Newton directions scaled by a line search (optax.lbfgs).

    ``chain(scale_by_lbfgs(memory_size, scale_init_precond), scale(-1) or
    scale_by_learning_rate(learning_rate), linesearch)``: the direction
    :math:`-P_k u_k` (see ``scale_by_lbfgs``) is scaled by the step size
    :math:`\eta_k` the line search finds, so that

    .. math::
        w_{k+1} = w_k - \eta_k P_k u_k,\qquad
        P_k \approx \nabla^2 f(w_k)^{-1}\ \text{from the last } m
        \text{ pairs } (w_{j+1} - w_j,\ u_{j+1} - u_j).

    The default line search is a zoom line search (strong Wolfe) starting
    from a step of 1 (``initial_guess_strategy='one'``, at most 20 trial
    points, no upper bound on the step).

    Args:
      learning_rate: optional fixed scale or schedule (``None``: -1, the
        line search chooses the step).
      memory_size: number of (params, updates) difference pairs kept.
      scale_init_precond: scale the initial inverse Hessian by
        :math:`\langle s, y\rangle/\|y\|^2` (and the first step by
        :math:`\min(1, 1/\|u_0\|)`, an optax heuristic).
      linesearch: a line search transformation
        (``scale_by_zoom_linesearch``, ``scale_by_backtracking_linesearch``)
        or None.

    Returns:
      A GradientTransformation. ``update(grads, state, params, *, value,
      grad, value_fn, grad_fn=None, value_and_grad_fn=None, **fn_kwargs)``
      as optax's, plus the gradient as a function (npopt has no autodiff):
      ``grad_fn`` (gradient of ``value_fn``) or ``value_and_grad_fn``
      (returning both; ``value_fn`` may then be omitted). Without either,
      finite differences (slow, inexact). ``step(params, grads, state,
      **same)`` is the fused path (the lbfgs plan, see
      ``npopt.transforms.lbfgs.lbfgs_step``): the memories are updated in
      place.

    Example::

        def f_and_grad(w):
            return np.sum(w ** 2), 2 * w

        opt = npopt.lbfgs()
        state = opt.init(params)
        vg = npopt.value_and_grad_from_state(f_and_grad)
        for _ in range(10):
            value, grad = vg(params, state=state)
            updates, state = opt.update(grad, state, params, value=value, grad=grad,
                                        value_and_grad_fn=f_and_grad)
            params = npopt.apply_updates(params, updates)

    References:
      Nocedal & Wright, *Numerical Optimization*, Algorithms 7.4-7.5, 1999.
      Liu & Nocedal, "On the limited memory BFGS method for large scale
      optimization", Mathematical Programming 45, 1989.

    .. warning::
        Under ``jax_enable_x64`` (npopt's reference), optax evaluates the
        zoom phase's trial points of float32 params in float64 (the first,
        interval-phase trials stay float32); npopt does the same, so
        ``value_fn``/``grad_fn`` may receive float64 params (see
        ``npopt.transforms.linesearch``). The state's dtypes are optax's
        under x64: the difference memories have the params' dtype, the
        weights ``weights_memory`` are float64 (``jnp.zeros(memory_size)``).
    """
    learning_rate = check_scalar_or_schedule("learning_rate", learning_rate, allow_none=True)
    precond = scale_by_lbfgs(memory_size=memory_size, scale_init_precond=scale_init_precond)
    base_scaling = scale(-1.0) if learning_rate is None else scale_by_learning_rate(learning_rate)
    linesearch = identity() if linesearch is None else as_transformation("linesearch",
                                                                           linesearch)
    return chain(precond, base_scaling, linesearch)


__all__ = ["lbfgs"]
