"""Schedules: optax 0.2.8's ``optax.schedules`` in NumPy, number for number.

Every schedule returns a plain Python callable ``schedule(count)``.  ``count``
is the step counter: a Python int, a NumPy integer scalar or a 0-d integer
array; it is treated as optax's ``int32`` counter whatever its type (so a
Python int gives the same number as ``jnp.int32``).  An integer array of
counts gives the array of the values at each count (to plot a schedule, as
optax's ``schedule(jnp.arange(n))``), each the scalar call's.  The result is a NumPy
scalar (``np.float32`` / ``np.float64``; an integer or array for integer or
array hyper-parameters) whose value *and dtype* are what optax's schedule
returns when it is called the way optax's transforms call it: with an
``int32`` count inside ``jax.jit``, ``jax_enable_x64`` on (except where
jitted optax ends a polynomial transition on NaN or a negative value, where
npopt returns the exact end value: see "Policy" below).

Dtypes (float hyper-parameters given as Python floats)
------------------------------------------------------
Under x64 optax's schedules do **not** all compute in float64.  ``int32 /
python int`` is float32 in JAX, so anything that divides the count goes
float32, while ``jnp.minimum(int32, python float)`` is (weakly typed) float64:

=====================================  ==========  =============================
schedule                               dtype       transcendental
=====================================  ==========  =============================
constant_schedule                      float64     --
polynomial / linear / warmup_constant  float32     pow only if ``power`` is a float
piecewise_constant_schedule            float64     --
exponential_decay                      float32     powf (exp2f for rate 2**k)
cosine_decay_schedule                  float64     cos (float64)
warmup_cosine_decay_schedule, sgdr     float32     cos in float64, rounded once
warmup_exponential_decay_schedule      float32     powf
piecewise_interpolate ('linear')       float64     -- (pct in float32)
piecewise_interpolate ('cosine')       float64     cosf in **float32**
linear_onecycle_schedule               float64     --
cosine_onecycle_schedule               float64     cosf in float32
join_schedules                         JAX's promotion of the parts
=====================================  ==========  =============================

How the numbers are reproduced
------------------------------
Two layers.  (1) The dtype: every schedule is also written op for op as
optax's jnp code over ``_J`` values (a NumPy scalar plus JAX's "weak type"
flag) whose operators apply JAX's promotion lattice (weak Python scalars
take the other operand's dtype; ``int32 / int`` is float32; ``int32`` with
a Python float is weak float64; ``x ** python-int`` is JAX's unrolled
``integer_pow``).  That fixes the result dtype (static, as under jit) and is
the fallback evaluation.  (2) The value: XLA does not run the jnp program
as written.  It turns ``x / C`` into ``x * (1/C)`` (``1/C`` rounded in the
operation's dtype), folds and reassociates constant multiplies
(``(pi * c) / T -> c * (pi * (1/T))``), rewrites ``pow(x, 0|1|2|3|-1)`` into
multiplications, LLVM turns ``pow(x, 0.5)`` into ``sqrt`` and ``pow(2**k,
p)`` into ``exp2(k * p)``, and on FMA hardware every ``x * y + z`` whose
product has no other use becomes one fused multiply-add.  XLA-CPU also
flushes subnormal results to zero.  For Python-number hyper-parameters
(the normal case) each schedule has an ``xla`` kernel that performs exactly
that program: float32/float64 NumPy scalar ops, an exact FMA (integer
arithmetic), and the libm functions XLA calls (``cos``/``pow`` through
``math``; ``cosf``/``powf``/``exp2f`` through ctypes).

Measured against optax 0.2.8 (jax 0.10.2, XLA-CPU on x86-64 with FMA,
glibc): bit-identical for the stored configurations
(tests/reference/data/schedules.npz: counts 0..300 and every count within
5 of each boundary and end, up to the int32 maximum) and for ~4000 random
configurations of all schedules, except where jitted optax ends a
polynomial transition on NaN or a negative value (below). What remains
platform-dependent is libm: another libm's ``cos``/``cosf``/``powf`` may
differ by 1 ulp of that function's result (if ``cosf`` cannot be loaded,
``float32(cos(float64(x)))`` is used: within 1 float32 ulp).
Hyper-parameters given as NumPy scalars (strongly typed in JAX:
``np.float64`` makes a float64 schedule, ``np.float32`` a float32 one) use
the generic op-for-op path: optax's dtype, and the numbers of optax's jnp
program run op by op (un-jitted optax, bit for bit where measured), which
differ from jitted optax's by its reciprocal/FMA rewrites (e.g. ``c / T``
vs ``c * (1/T)``: about 1e-7 relative).

Policy: the end of a transition, and what the optimizers accept
---------------------------------------------------------------
* ``polynomial_schedule``, ``linear_schedule`` and
  ``warmup_constant_schedule`` (alone or inside ``join_schedules``) end
  where ``count >= transition_begin + transition_steps``: optax's formula is
  then ``1 - T/T = 0``, the value exactly ``end_value``, and optax run op by
  op returns ``float32(end_value)``.  Jitted optax computes ``1 - T *
  (1/T)`` with an FMA and keeps a residue of about ``(init - end) * 2**-24``
  whose sign depends on how ``1/T`` rounds: ``optax.linear_schedule(1, 0,
  99)`` ends at ``9.3e-10`` (``1/99`` rounds down), but
  ``optax.linear_schedule(1, 0, 3)`` at ``-2.98e-8``, a negative learning
  rate, and a fractional ``power`` turns a negative residue into NaN
  (``optax.polynomial_schedule(1., 0., 0.5, 3)(3)``); with ``power=0.5`` a
  positive residue gives ``end + (init - end) * 2.4e-4``.  npopt keeps
  jitted optax's numbers (optimizer trajectories that run past the end of a
  schedule then match optax's to float64 precision), residue included,
  except where they are NaN, or negative while ``init_value`` and
  ``end_value`` are not: there it returns the formula's value,
  ``float32(end_value)`` (for ``transition_steps > 2**24``, where the
  rounding of ``1/T`` can make the residue negative before the end, too).
  So with non-negative ``init_value`` and ``end_value`` no npopt schedule
  returns a negative or NaN value, and no value differs from optax's by
  more than this residue.
* The optimizers check every value a ``learning_rate`` schedule returns,
  at every step, before any buffer is touched: NaN, an infinity or a
  negative value raises ``ValueError`` naming ``learning_rate`` and the
  step count (see ``npopt.transforms.scale.scale_by_learning_rate``).

For the consumer: cast the result, do not recompute it.  E.g.
``linear_schedule(1e-2, 1e-3, 50)(0)`` is ``np.float32(0.01)``; optax's
``jnp.array(schedule(count), dtype=float64)`` widens that float32 value, so
``np.asarray(schedule(count), dtype=leaf_dtype)`` is the same number.

Layout: ``polynomial`` (constant, polynomial, linear, warmup_constant),
``piecewise`` (piecewise constant and interpolated, one-cycle),
``exponential``, ``cosine``, ``join`` (join_schedules, warmup_cosine_decay,
warmup_exponential_decay, sgdr); ``_jax`` holds the JAX/XLA arithmetic they
share (``_J``, the exact FMA, libm).
"""
from .polynomial import (constant_schedule, linear_schedule, polynomial_schedule,
                         warmup_constant_schedule)
from .piecewise import (cosine_onecycle_schedule, linear_onecycle_schedule,
                        piecewise_constant_schedule, piecewise_interpolate_schedule)
from .exponential import exponential_decay
from .cosine import cosine_decay_schedule
from .join import (join_schedules, sgdr_schedule, warmup_cosine_decay_schedule,
                   warmup_exponential_decay_schedule)
from ._jax import _LIBM
from ..base import Schedule, StatefulSchedule

# optax.schedules also holds the hyperparameter injection, which lives with
# the other wrappers (npopt.transforms.wrappers, imported on first use: the
# transforms import nothing of this package, this package imports them late).
_WRAPPERS = ("InjectHyperparamsState", "InjectStatefulHyperparamsState", "WrappedSchedule",
             "inject_hyperparams", "inject_stateful_hyperparams")


def __getattr__(name):
    if name in _WRAPPERS:
        from ..transforms import wrappers
        value = getattr(wrappers, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'npopt.schedules' has no attribute {name!r}")

__all__ = [
    "constant_schedule", "polynomial_schedule", "linear_schedule",
    "piecewise_constant_schedule", "exponential_decay", "cosine_decay_schedule",
    "warmup_constant_schedule", "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule", "piecewise_interpolate_schedule",
    "linear_onecycle_schedule", "cosine_onecycle_schedule", "join_schedules",
    "sgdr_schedule", "Schedule", "StatefulSchedule", *_WRAPPERS,
]
