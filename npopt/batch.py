"""``npopt.vmap``: many independent solves at once, each stopping on its own.

``npopt.vmap(solver.run, in_axes=...)(init_params, *args)`` has the call
shape of ``jax.vmap(solver.run, in_axes=...)``: ``in_axes`` gives, for
``init_params`` and each positional argument, the axis that indexes the
problems (an int) or None (shared by all problems); keyword arguments are
batched along axis 0, as jax.vmap does. It returns ``OptStep(params,
state)`` with a leading problem ("lane") axis on every leaf and field.

Unlike a vmapped jaxopt solver, whose while-loop runs every lane until the
slowest stops, each lane here retires on its own stopping criterion: a batch
costs the sum of its lanes' work, and every lane's result equals a single
``solver.run`` on that lane, bit for bit, whatever the other lanes do
(converge, fail, hit NaN or maxiter).

Where the solver runs on the compiled engine (``npopt.solvers.engine``;
today: LBFGS, BFGS and NonlinearCG with the zoom, backtracking or
Hager-Zhang line search or a fixed step; GradientDescent, ProximalGradient and ProjectedGradient;
FixedPointIteration and AndersonAcceleration; Bisection; BoxCDQP;
GaussNewton and LevenbergMarquardt; real params, no aux), how fast depends on the objective:

* a numba function (``@njit``, with ``value_and_grad=True`` or a numba
  ``grad=``), flat params and no prox: the whole batch runs compiled, lanes
  spread over the cores in small chunks;
* ``vectorized=True``: ``fun`` takes the stacked params of the lanes that
  asked (leading lane axis) and their arguments, and returns one value per
  lane and the stacked gradients: one NumPy call per round;
* otherwise, a plain per-problem Python function: one call per lane and
  evaluation. Correct, and about as slow as a Python loop over ``run``.

Other solvers and configurations run lane by lane through ``solver.run`` and
stack the results (correct; no faster than the loop).

``executor=`` (any ``concurrent.futures.Executor``: a process pool, or a
``dask.distributed`` client's ``get_executor()``) splits the lanes into
``chunks`` batched calls run on the workers; the results are those of the
local run. The solver and its objective must pickle (module-level
functions).

``solver.run_batch(init_params, *args, in_axes=0, ...)`` is the same call
returning ``BatchResult(params, state, status)``, with a per-lane status
code (``npopt.solvers.engine.STATUS_MESSAGES``).
"""
import numpy as np

from . import tree as T


def vmap(fun, in_axes=0, *, vectorized=False, executor=None, chunks=None, residual_size=None):
    """Batched ``solver.run`` (see the module docstring).

    Args:
      fun: a solver's bound ``run`` method (``npopt.LBFGS(...).run``).
      in_axes: an int, None, or a tuple with one entry for init_params and
        one per positional argument.
      vectorized: ``fun`` of the solver evaluates all asking lanes at once.
      executor: a ``concurrent.futures.Executor`` to spread chunks over.
      chunks: the number of chunks for the executor (default 4 per worker).
      residual_size: LevenbergMarquardt/GaussNewton on CUDA lanes: the number
        of residuals, which a residual_fun writing into a buffer cannot report.

    Returns:
      a function of ``(init_params, *args, **kwargs)`` returning
      ``OptStep(params, state)``, lanes first.
    """
    solver = getattr(fun, "__self__", None)
    if solver is None or getattr(fun, "__name__", None) != "run" or \
            not hasattr(solver, "init_state"):
        raise TypeError(f"fun: expected a solver's bound run method (solver.run), got {fun!r}")

    def batched(init_params, *args, **kwargs):
        from .solvers.base import OptStep
        r = run_batch(solver, init_params, *args, in_axes=in_axes, vectorized=vectorized,
                      executor=executor, chunks=chunks, residual_size=residual_size, **kwargs)
        return OptStep(r.params, r.state)
    batched.__doc__ = f"npopt.vmap of {type(solver).__name__}.run"
    return batched


def run_batch(solver, init_params, *args, in_axes=0, vectorized=False, executor=None,
              chunks=None, residual_size=None, **kwargs):
    """``BatchResult(params, state, status)`` of a batched ``solver.run``."""
    from .solvers import engine
    if not isinstance(vectorized, (bool, np.bool_)):
        raise TypeError(f"vectorized: expected True or False, got {vectorized!r}")
    if chunks is not None and (isinstance(chunks, bool) or not isinstance(chunks, (int, np.integer))
                               or chunks < 1):
        raise ValueError(f"chunks: expected None or an integer >= 1, got {chunks!r}")
    if residual_size is not None:
        if isinstance(residual_size, (bool, np.bool_)) or \
                not isinstance(residual_size, (int, np.integer)) or residual_size < 1:
            raise ValueError(f"residual_size: expected None or an integer >= 1, got "
                             f"{residual_size!r}")
        if not hasattr(solver, "residual_fun"):
            raise TypeError(f"residual_size: the number of residuals of LevenbergMarquardt or "
                            f"GaussNewton; {type(solver).__name__} has none")
    if executor is not None and not hasattr(executor, "submit"):
        raise TypeError(f"executor: expected a concurrent.futures.Executor (or an object "
                        f"with submit), got {type(executor).__name__}")
    if not engine.supports_batch(solver):
        from .solvers.lanes_cuda import has_device_data
        if has_device_data(init_params, args, kwargs):
            raise NotImplementedError(
                f"npopt.{type(solver).__name__}: batched runs on CUDA arrays need the batched "
                f"engine ({engine.batch_unsupported(solver)}); pass NumPy arrays")
    if engine.supports_batch(solver):
        out = engine.run_batch(solver, init_params, args, kwargs, in_axes, vectorized,
                               executor, chunks, residual_size=residual_size)
        if out is not None:
            return out
        vectorized = False   # a configuration the machine does not take: lane by lane
    if vectorized:
        raise NotImplementedError(f"vectorized=True: {type(solver).__name__} does not run on "
                                  f"the batched engine yet ({engine.batch_unsupported(solver)})"
                                  f"; pass a per-problem fun instead")
    batch = engine._Batch(init_params, args, kwargs, in_axes, need_float=False)
    outs = []
    for i in range(batch.B):
        x = engine._lane(batch.x, i) if batch.x_batched else init_params
        a, kw = batch.lane_args(i)
        outs.append(solver.run(x, *a, **kw))
    stack = lambda *xs: np.stack([np.asarray(x) for x in xs])   # noqa: E731
    params = T.tree_map(stack, *[o.params for o in outs])
    st0 = outs[0].state
    state = type(st0)(*[None if getattr(st0, f) is None else
                        T.tree_map(stack, *[getattr(o.state, f) for o in outs])
                        for f in st0._fields])
    status = np.array([engine.status_of(solver, o.state) for o in outs], np.int64)
    return engine.BatchResult(params, state, status)
