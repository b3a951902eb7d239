"""jaxopt's ``cond.cond``: ``if_fun(*operands)`` if ``cond`` else ``else_fun(*operands)``.

In jaxopt it wraps ``jax.lax.cond``, with ``jit=False`` to keep the branch
from being compiled. npopt has nothing to compile: it is a plain ``if`` and
``jit`` has no effect.
"""


def cond(cond, if_fun, else_fun, *operands, jit=True):
    """``if_fun(*operands)`` if ``cond`` is true, else ``else_fun(*operands)``.

    ``cond`` is a bool or a one-element array (as ``jax.lax.cond`` takes).
    """
    if not callable(if_fun) or not callable(else_fun):
        raise TypeError("if_fun and else_fun: expected callables")
    if getattr(cond, "shape", ()) not in ((), (1,)):
        raise ValueError(f"cond: expected a scalar, got an array of shape {cond.shape}")
    return if_fun(*operands) if bool(cond) else else_fun(*operands)
