"""jaxopt's ``loop.while_loop``: a while loop with at most ``maxiter`` iterations.

jaxopt picks one of three JAX loops from ``unroll`` and ``jit`` (a
``lax.scan``, a Python loop, a ``lax.while_loop``); they differ in what JAX
can compile and differentiate, not in the result. npopt has nothing to
compile or differentiate, so every combination runs the same Python loop,
and ``unroll=False, jit=False`` (an error in jaxopt: no JAX loop does both)
is accepted.
"""
import operator


def while_loop(cond_fun, body_fun, init_val, maxiter, unroll=False, jit=False):
    """``val = body_fun(val)`` while ``cond_fun(val)``, at most ``maxiter`` times.

    Args:
      cond_fun: ``cond_fun(val) -> bool``, checked before each iteration.
      body_fun: ``body_fun(val) -> val``.
      init_val: the first value.
      maxiter: the most iterations (an int >= 0).
      unroll, jit: jaxopt's choice of JAX loop; no effect here.

    Returns:
      The last value.
    """
    if not callable(cond_fun) or not callable(body_fun):
        raise TypeError("cond_fun and body_fun: expected callables")
    try:
        maxiter = operator.index(maxiter)
    except TypeError:
        raise TypeError(f"maxiter: expected an int, got {type(maxiter).__name__}") from None
    if maxiter < 0:
        raise ValueError(f"maxiter: expected an int >= 0, got {maxiter}")
    val = init_val
    for _ in range(maxiter):
        if not cond_fun(val):
            break
        val = body_fun(val)
    return val
