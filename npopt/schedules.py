"""Schedules: optax 0.2.8's ``optax.schedules`` in NumPy, number for number.

Every schedule returns a plain Python callable ``schedule(count)``.  ``count``
is the step counter: a Python int, a NumPy integer scalar or a 0-d integer
array; it is treated as optax's ``int32`` counter whatever its type (so a
Python int gives the same number as ``jnp.int32``).  The result is a NumPy
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
"""
import ctypes
import logging
import math
import operator
from typing import Iterable

import numpy as np

__all__ = [
    "constant_schedule", "polynomial_schedule", "linear_schedule",
    "piecewise_constant_schedule", "exponential_decay", "cosine_decay_schedule",
    "warmup_constant_schedule", "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule", "piecewise_interpolate_schedule",
    "linear_onecycle_schedule", "cosine_onecycle_schedule", "join_schedules",
    "sgdr_schedule",
]

_log = logging.getLogger(__name__)

_I32 = np.dtype(np.int32)
_I64 = np.dtype(np.int64)
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_C64 = np.dtype(np.complex64)
_C128 = np.dtype(np.complex128)
_BOOL = np.dtype(np.bool_)
_KIND = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}
_WEAK_DEFAULT = {1: _I64, 2: _F64, 3: _C128}   # x64 defaults of Python int/float/complex
_TO_INEXACT = {np.dtype(k): np.dtype(v) for k, v in [
    ("bool", "float32"), ("int8", "float32"), ("uint8", "float32"),
    ("int16", "float32"), ("uint16", "float32"), ("int32", "float32"),
    ("uint32", "float32"), ("int64", "float64"), ("uint64", "float64")]}


# --------------------------------------------------------------------------
# libm (XLA-CPU calls libm's cosf / powf / exp2f / cos / pow)
# --------------------------------------------------------------------------
def _load_libm():
    for name in (None, "libm.so.6", "libm.dylib", "libSystem.dylib", "ucrtbase"):
        try:
            lib = ctypes.CDLL(name)
            fns = {}
            for fname, nargs in (("cosf", 1), ("powf", 2), ("exp2f", 1)):
                fn = getattr(lib, fname)
                fn.restype = ctypes.c_float
                fn.argtypes = [ctypes.c_float] * nargs
                fns[fname] = fn
            if fns["cosf"](0.0) == 1.0 and fns["powf"](2.0, 3.0) == 8.0 \
                    and fns["exp2f"](3.0) == 8.0:
                return fns
        except (OSError, AttributeError, TypeError):
            continue
    return None


_LIBM = _load_libm()


def _cos32(x):
    """float32 cos: libm ``cosf`` (what XLA-CPU calls), else float64 cos rounded."""
    if _LIBM is not None:
        return np.float32(_LIBM["cosf"](float(x)))
    return np.float32(math.cos(float(x)))


def _pow32(x, y):
    if _LIBM is not None:
        return np.float32(_LIBM["powf"](float(x), float(y)))
    return np.float32(x) ** np.float32(y)


def _exp2_32(x):
    if _LIBM is not None:
        return np.float32(_LIBM["exp2f"](float(x)))
    return np.exp2(np.float32(x))


def _fma(a, b, c, bits):
    """Correctly rounded ``a * b + c`` to ``bits`` significand bits (24: float32,
    53: float64).  XLA-CPU contracts ``x * y + z`` into an FMA instruction; this
    reproduces it exactly with integer arithmetic."""
    a, b, c = float(a), float(b), float(c)
    if not (math.isfinite(a) and math.isfinite(b) and math.isfinite(c)) or a == 0 or b == 0:
        return a * b + c
    ma, ea = math.frexp(a)
    mb, eb = math.frexp(b)
    ia, ib = int(ma * 9007199254740992.0), int(mb * 9007199254740992.0)   # 2**53
    ep = ea + eb - 106
    prod = ia * ib
    if c != 0:
        mc, ec = math.frexp(c)
        ic, ec = int(mc * 9007199254740992.0), ec - 53
        e = min(ep, ec)
        total = (prod << (ep - e)) + (ic << (ec - e))
    else:
        total, e = prod, ep
    if total == 0:
        return 0.0
    neg = total < 0
    t = -total if neg else total
    n = t.bit_length()
    if n > bits:
        shift = n - bits
        q, r = t >> shift, t & ((1 << shift) - 1)
        half = 1 << (shift - 1)
        if r > half or (r == half and q & 1):
            q += 1
        t, e = q, e + shift
    try:
        v = math.ldexp(float(t), e)
    except OverflowError:
        v = math.inf
    return -v if neg else v


def _fma32(a, b, c):
    return _ftz(np.float32(_fma(a, b, c, 24)))


def _fma64(a, b, c):
    return _ftz(np.float64(_fma(a, b, c, 53)))


def _is_plain(*xs):
    """Python numbers (weakly typed scalars): the case the XLA paths reproduce.

    NumPy scalars are not (``np.float64`` subclasses ``float``, but JAX gives
    it a *strong* float64 dtype), nor are bools."""
    return all(type(x) in (int, float) for x in xs)


# --------------------------------------------------------------------------
# _J: a NumPy value with JAX's dtype + weak-type semantics (x64 on)
# --------------------------------------------------------------------------
def _join(d1, w1, d2, w2):
    """JAX's type-promotion lattice (jax_enable_x64 on) for two operands."""
    k1, k2 = _KIND[d1.kind], _KIND[d2.kind]
    if w1 and w2:
        k = max(k1, k2)
        return (_WEAK_DEFAULT[k] if k else _BOOL), True
    if w1 or w2:
        ds, ks, kw = (d2, k2, k1) if w1 else (d1, k1, k2)
        if kw <= ks:
            return ds, False
        if kw == 3 and ks == 2:                          # complex* with a float
            return (_C64 if ds == _F32 else _C128), False
        return _WEAK_DEFAULT[kw], True                    # e.g. int32 with float*
    if k1 != k2 and min(k1, k2) < 2:                      # int32 with float32 -> float32
        return (d1 if k1 > k2 else d2), False
    return np.promote_types(d1, d2), False


class _J:
    """A scalar (or array) value in a fixed dtype, with JAX's weak-type flag."""
    __slots__ = ("v", "weak")
    # NumPy scalars and arrays must defer to _J's reflected operators (as they
    # defer to a jax.Array), not turn _J into an object array and their own
    # value into a Python float (which would make np.float64 weakly typed)
    __array_ufunc__ = None

    def __init__(self, v, weak):
        self.v = v
        self.weak = weak

    @property
    def dtype(self):
        return self.v.dtype

    def astype(self, dt):
        v = self.v
        if v.dtype == dt:
            return v
        return np.asarray(v).astype(dt)[()]

    # arithmetic -------------------------------------------------------
    def __add__(self, o):
        return _binop(operator.add, self, o)

    def __radd__(self, o):
        return _binop(operator.add, o, self)

    def __sub__(self, o):
        return _binop(operator.sub, self, o)

    def __rsub__(self, o):
        return _binop(operator.sub, o, self)

    def __mul__(self, o):
        return _binop(operator.mul, self, o)

    def __rmul__(self, o):
        return _binop(operator.mul, o, self)

    def __truediv__(self, o):
        return _div(self, o)

    def __rtruediv__(self, o):
        return _div(o, self)

    def __pow__(self, o):
        return _power(self, o)

    def __rpow__(self, o):
        return _power(o, self)

    def __neg__(self):
        return _J(_ftz(-self.v), self.weak)

    # comparisons give Python bools (only scalars are compared) ---------
    def __lt__(self, o):
        return bool(self.v < _lift(o).v)

    def __le__(self, o):
        return bool(self.v <= _lift(o).v)

    def __gt__(self, o):
        return bool(self.v > _lift(o).v)

    def __ge__(self, o):
        return bool(self.v >= _lift(o).v)

    def __repr__(self):
        return f"_J({self.v!r}, weak={self.weak})"


def _lift(x):
    """Python scalars are weakly typed (int64/float64/complex128 under x64)."""
    if isinstance(x, _J):
        return x
    if isinstance(x, (np.generic, np.ndarray)):
        # NumPy values are strongly typed in JAX, np.float64 (a ``float``
        # subclass) included
        a = np.asarray(x)
        return _J(a[()] if a.ndim == 0 else a, False)
    if isinstance(x, bool):
        return _J(np.bool_(x), False)
    if isinstance(x, int):
        return _J(np.int64(x), True)
    if isinstance(x, float):
        return _J(np.float64(x), True)
    if isinstance(x, complex):
        return _J(np.complex128(x), True)
    a = np.asarray(x)
    return _J(a[()] if a.ndim == 0 else a, False)


def _ftz(v):
    """XLA-CPU runs with flush-to-zero: subnormal float results become 0."""
    dt = v.dtype
    if dt.kind != "f":
        return v
    tiny = np.finfo(dt).tiny
    if np.ndim(v) == 0:
        return np.copysign(dt.type(0), v) if 0 < abs(v) < tiny else v
    return np.where((np.abs(v) < tiny) & (v != 0), np.copysign(dt.type(0), v), v)


def _promote(a, b):
    a, b = _lift(a), _lift(b)
    dt, weak = _join(a.dtype, a.weak, b.dtype, b.weak)
    return a.astype(dt), b.astype(dt), dt, weak


def _binop(op, a, b):
    x, y, dt, weak = _promote(a, b)
    return _J(_ftz(op(x, y)), weak)


def _div(a, b):
    a, b = _lift(a), _lift(b)
    dt, weak = _join(a.dtype, a.weak, b.dtype, b.weak)
    dt = _TO_INEXACT.get(dt, dt)          # jnp.true_divide: int32 / int32 -> float32
    return _J(_ftz(a.astype(dt) / b.astype(dt)), weak)


def _integer_pow(x, y):
    """lax.integer_pow: JAX's unrolled binary exponentiation."""
    x = _lift(x)
    if x.dtype.kind == "b":
        x = _J(x.astype(_I64 if x.weak else _I32), x.weak)
    if y == 0:
        return _J(x.dtype.type(1), x.weak)
    recip = y < 0
    y = -y if recip else y
    acc = None
    while y > 0:
        if y & 1:
            acc = x if acc is None else acc * x
        y >>= 1
        if y > 0:
            x = x * x
    if recip:
        acc = _J(_ftz(acc.dtype.type(1) / acc.v), acc.weak)
    return acc


def _power(x1, x2):
    """jnp.power: a concrete integer exponent is integer_pow, else lax.pow."""
    if not isinstance(x2, _J):
        try:
            n = operator.index(x2)
        except TypeError:
            pass
        else:
            return _integer_pow(x1, n)
    a, b, dt, weak = _promote(x1, x2)
    if dt.kind in "biu":
        return _J(np.power(a, b), weak)
    return _J(_ftz(a ** b), weak)   # NumPy scalar ** is libm pow/powf, as XLA-CPU


def _cos(x):
    x = _lift(x)
    dt = _TO_INEXACT.get(x.dtype, x.dtype)
    v = x.astype(dt)
    if dt == _F32 and np.ndim(v) == 0:
        r = _cos32(v)
    elif dt == _F64 and np.ndim(v) == 0:
        r = np.float64(math.cos(v))
    else:
        r = np.cos(v)
    return _J(_ftz(r), x.weak)


def _maximum(a, b):
    x, y, dt, weak = _promote(a, b)
    return _J(np.maximum(x, y), weak)


def _minimum(a, b):
    x, y, dt, weak = _promote(a, b)
    return _J(np.minimum(x, y), weak)


def _clip(x, lo, hi):
    return _minimum(hi, _maximum(lo, x))    # jnp.clip's order


def _sign(x):
    x = _lift(x)
    return _J(np.sign(x.v), x.weak)


def _floor(x):
    x = _lift(x)
    if x.dtype.kind in "biu":
        return x
    return _J(np.floor(x.v), x.weak)


def _where(pred, a, b):
    x, y, dt, weak = _promote(a, b)
    return _J(x if pred else y, weak)


def _stack(items):
    """jnp.stack of scalars: one common dtype, weak only if all are weak."""
    items = [_lift(i) for i in items]
    dt, weak = items[0].dtype, items[0].weak
    for it in items[1:]:
        dt, weak = _join(dt, weak, it.dtype, it.weak)
    return [_J(it.astype(dt), weak) for it in items]


def _xla_pow(x, e):
    """``x ** e`` as XLA-CPU computes it for a constant exponent ``e``.

    Integer ``e``: JAX's unrolled ``integer_pow``; float ``e``: XLA rewrites
    0, 1, 2, 3 and -1 into multiplications / a division, LLVM turns 0.5 into
    ``sqrt``; anything else is libm ``powf`` / ``pow``."""
    dt = x.dtype
    try:
        n = operator.index(e)
    except TypeError:
        e = float(e)
        if e in (0.0, 1.0, 2.0, 3.0, -1.0):
            n = int(e)
        elif e == 0.5:
            if x == -np.inf:
                return dt.type(np.inf)
            return _ftz(np.abs(np.sqrt(x)))
        elif dt == _F32:
            return _ftz(_pow32(x, np.float32(e)))
        else:
            try:
                return _ftz(dt.type(math.pow(float(x), e)))
            except (OverflowError, ValueError):
                return _ftz(dt.type(np.power(float(x), e)))
    if n == 0:
        return dt.type(1)
    recip = n < 0
    n = -n if recip else n
    acc = None
    while n > 0:
        if n & 1:
            acc = x if acc is None else _ftz(acc * x)
        n >>= 1
        if n > 0:
            x = _ftz(x * x)
    return _ftz(dt.type(1) / acc) if recip else acc


# --------------------------------------------------------------------------
# plumbing: count handling, result extraction, static result type
# --------------------------------------------------------------------------
_I32_MIN, _I32_MAX = -(2 ** 31), 2 ** 31 - 1


def _as_count(count):
    if isinstance(count, _J):
        return count
    try:
        c = operator.index(count)
    except TypeError:
        raise TypeError(
            "schedule: `count` must be an integer step count (a Python int, a NumPy "
            f"integer or a 0-d integer array), got {count!r}") from None
    if not _I32_MIN <= c <= _I32_MAX:
        raise ValueError(f"schedule: `count` must fit in int32 (optax's step counter), got {c}")
    return _J(np.int32(c), False)


def _evaluate(fn, count):
    """Run a schedule on a _J count; foreign callables are treated as JAX would."""
    ev = getattr(fn, "_npopt_eval", None)
    if ev is not None:
        return ev(count)
    out = fn(count.v)
    return _lift(out)


def _make(body, name, xla=None):
    """Wrap ``body(_J count) -> _J|python scalar`` as a public schedule.

    ``body`` mirrors optax's jnp code op by op (JAX dtype promotion, no
    compiler rewrites); it gives the result's dtype and is the fallback.
    ``xla(int count) -> numpy scalar``, where given, reproduces the program
    XLA-CPU actually runs for the same schedule (division by a constant
    turned into multiplication by its reciprocal, constants folded and
    reassociated, ``x * y + z`` contracted to an FMA, libm calls): that is
    what makes the numbers bit-identical to optax.
    """

    def generic(count):
        with np.errstate(all="ignore"):
            return _lift(body(count))

    r = generic(_J(np.int32(0), False))
    dtype, weak = r.dtype, r.weak     # static, as under jax.jit

    if xla is None:
        ev = generic
    else:
        def ev(count):
            with np.errstate(all="ignore"):
                return _J(np.asarray(xla(int(count.v)), dtype)[()], weak)

    def schedule(count):
        return ev(_as_count(count)).v

    schedule.__name__ = schedule.__qualname__ = name
    schedule._npopt_eval = ev
    schedule._npopt_jtype = (dtype, weak)   # join_schedules promotes with it
    return schedule


def _jtype(fn, count):
    t = getattr(fn, "_npopt_jtype", None)
    if t is not None:
        return t
    r = _evaluate(fn, count)
    return r.dtype, r.weak


# --------------------------------------------------------------------------
# schedules
# --------------------------------------------------------------------------
def constant_schedule(value):
    """Constant schedule: ``value`` at every count.

    Dtype: that of ``value`` as JAX sees it (a Python float is float64 under
    x64, weakly typed; casting to a float32 leaf rounds it once).
    """
    return _make(lambda count: value, "constant_schedule")


def polynomial_schedule(init_value, end_value, power, transition_steps, transition_begin=0):
    r"""Polynomial transition from ``init_value`` to ``end_value``.

    ``c = clip(count - transition_begin, 0, transition_steps)``;
    value ``(init_value - end_value) * (1 - c / transition_steps) ** power + end_value``.
    ``transition_steps <= 0`` gives the constant ``init_value`` (logged);
    ``transition_begin < 0`` is replaced by 0 (logged).  From
    ``count = transition_begin + transition_steps`` on, optax's formula is
    ``end_value``; jitted optax leaves an FMA residue there, which npopt
    keeps, except where it makes the value NaN, or negative from
    non-negative end points: then the value is exactly
    ``float32(end_value)`` (see the module docstring).

    Dtype/rounding (as optax under x64): ``c / transition_steps`` is
    ``int32 / int`` = **float32**, so the whole schedule is evaluated in
    float32.  XLA's program, reproduced here: ``r = 1/T`` rounded to float32,
    ``frac = fma(-c, r, 1)``, ``frac ** power`` as repeated float32 products
    (integer power, or float 2.0/3.0; 0.5 is ``sqrt``, other floats
    ``powf``), then ``fma(frac**power, float32(init - end), float32(end))``
    (``init - end`` computed in Python float64, rounded once).  Result
    ``np.float32``, bitwise equal to optax (but where optax's value is NaN
    or wrongly negative: the exact end value, above).
    """
    if transition_steps <= 0:
        _log.info(
            "A polynomial schedule was set with a non-positive `transition_steps` "
            "value; this results in a constant schedule with value `init_value`.")
        return _make(lambda count: init_value, "schedule")
    if transition_begin < 0:
        _log.info(
            "A polynomial schedule was set with a negative `transition_begin` "
            "value; this will result in `transition_begin` falling back to `0`.")
        transition_begin = 0

    def schedule(count):
        count = _clip(count - transition_begin, 0, transition_steps)
        frac = 1 - count / transition_steps
        return (init_value - end_value) * (frac ** power) + end_value

    xla = None
    if (_is_plain(init_value, end_value, power) and isinstance(transition_steps, int)
            and isinstance(transition_begin, int)):
        f32 = np.float32
        recip = f32(1) / f32(transition_steps)          # XLA: c / T -> c * (1/T)
        scale, shift = f32(init_value - end_value), f32(end_value)

        nonneg = init_value >= 0 and end_value >= 0

        def xla(count):
            c = min(max(count - transition_begin, 0), transition_steps)
            frac = _fma32(-f32(c), recip, f32(1))          # 1 - c * (1/T), fused
            pw = _xla_pow(frac, power)
            # (XLA drops the "+ 0" of end_value = 0: the product keeps its sign)
            v = _fma32(pw, scale, shift) if shift != 0 else _ftz(pw * scale)
            if v != v or (v < 0 and nonneg):
                # XLA's 1 - T * (1/T) left a negative residue where optax's
                # formula is 1 - T/T = 0 (or, for T > 2**24, where 1 - c/T is
                # tiny): NaN under a fractional power, a negative value from
                # non-negative end points. The formula's value instead (the
                # module docstring's policy): frac = 0, the end value.
                v = _fma32(_xla_pow(f32(0), power), scale, shift)
            return v

    return _make(schedule, "schedule", xla)


def linear_schedule(init_value, end_value, transition_steps, transition_begin=0):
    r"""Linear transition: :func:`polynomial_schedule` with ``power=1``.

    Value ``(init_value - end_value) * (1 - c / transition_steps) + end_value``
    with ``c = clip(count - transition_begin, 0, transition_steps)``,
    evaluated in **float32** like optax under x64, as two fused
    multiply-adds with ``1/T`` rounded to float32 (bitwise equal to jitted
    optax: ``linear_schedule(1, 0, 99)(99)`` is optax's 9.3e-10), except
    that a negative value from non-negative end points is replaced by the
    exact end value (``linear_schedule(1, 0, 3)(3)`` is 0.0 where jitted
    optax returns -2.98e-8; see the module docstring).
    """
    return polynomial_schedule(init_value=init_value, end_value=end_value, power=1,
                               transition_steps=transition_steps,
                               transition_begin=transition_begin)


def piecewise_constant_schedule(init_value, boundaries_and_scales=None):
    """``init_value`` times the product of every scale whose boundary ``<= count``.

    The scale of boundary ``b`` applies AT ``count == b``.  Scales must be
    non-negative (``ValueError`` otherwise).  Implemented as optax does:
    for each boundary in sorted order ``ind = max(0.0, sign(b - count))``,
    ``v = v * ind + (1 - ind) * scale * v``.

    Dtype/rounding: ``max(0.0, int32)`` is weak float64, so the schedule is
    evaluated in **float64** (for a Python-float ``init_value``).  The
    indicators are exactly 0 or 1, so the value is ``init_value`` times the
    applicable scales, one float64 rounding per scale, in boundary order:
    bitwise equal to optax.
    """
    if boundaries_and_scales is not None:
        if not all(scale >= 0.0 for scale in boundaries_and_scales.values()):
            raise ValueError(
                "`piecewise_constant_schedule` expects non-negative scale factors in "
                f"`boundaries_and_scales`, got {dict(boundaries_and_scales)!r}")

    def schedule(count):
        v = init_value
        if boundaries_and_scales is not None:
            for threshold, scale in sorted(boundaries_and_scales.items()):
                indicator = _maximum(0.0, _sign(threshold - count))
                v = v * indicator + (1 - indicator) * scale * v
        return v

    xla = None
    items = sorted(boundaries_and_scales.items()) if boundaries_and_scales else []
    if (items and _is_plain(init_value, *[sc for _, sc in items])
            and all(isinstance(b, int) for b, _ in items)
            and all(math.isfinite(x) for x in (init_value, *[sc for _, sc in items]))):
        # The indicators are exactly 0 or 1, so each step is ``v`` or ``v * scale``
        # (one float64 rounding), whatever XLA fuses.
        init64 = np.float64(init_value)
        steps = [(b, np.float64(sc)) for b, sc in items]

        def xla(count):
            v = init64
            for b, sc in steps:
                if count >= b:
                    v = _ftz(v * sc)
            return v

    return _make(schedule, "schedule", xla)


def exponential_decay(init_value, transition_steps, decay_rate, transition_begin=0,
                      staircase=False, end_value=None):
    """Continuous or staircase exponential decay.

    ``p = (count - transition_begin) / transition_steps`` (``floor(p)`` if
    ``staircase``); value ``init_value`` while ``count - transition_begin <=
    0``, else ``init_value * decay_rate ** p``, then clipped at ``end_value``
    (from below if ``decay_rate < 1``, from above otherwise).
    ``transition_steps <= 0`` or ``decay_rate == 0`` give the constant
    ``init_value``; ``transition_begin < 0`` falls back to 0 (all logged).

    Dtype/rounding: ``p`` is ``int32 / int`` = **float32**, computed as
    ``float32(d) * float32(1/T)``; ``decay_rate``, ``init_value`` and
    ``end_value`` are rounded to float32 and ``decay_rate ** p`` is libm
    ``powf`` (``exp2f(k * p)`` when ``decay_rate == 2**k``, as LLVM rewrites
    it), times ``init_value`` in float32.  Result ``np.float32``; subnormal
    results flush to 0 as on XLA-CPU.  Bitwise equal to optax with glibc.
    """
    if transition_steps <= 0:
        _log.info(
            "An exponential schedule was set with a non-positive `transition_steps`"
            " value; this will result in a constant schedule with value `init_value`.")
        return _make(lambda count: init_value, "schedule")
    if decay_rate == 0:
        _log.info(
            "An exponential schedule was set with a zero `decay_rate` value; "
            "this will result in a constant schedule with value `init_value`.")
        return _make(lambda count: init_value, "schedule")
    if transition_begin < 0:
        _log.info(
            "An exponential schedule was set with a negative `transition_begin` "
            "value; this will result in `transition_begin` falling back to `0`.")
        transition_begin = 0
    if end_value is not None:
        clip_fn = _maximum if decay_rate < 1.0 else _minimum

    def schedule(count):
        decreased_count = count - transition_begin
        p = decreased_count / transition_steps
        if staircase:
            p = _floor(p)
        decayed_value = _where(decreased_count <= 0, init_value,
                               init_value * _power(decay_rate, p))
        if end_value is not None:
            decayed_value = clip_fn(decayed_value, end_value)
        return decayed_value

    xla = None
    if (_is_plain(init_value, decay_rate) and (end_value is None or _is_plain(end_value))
            and isinstance(transition_steps, int) and isinstance(transition_begin, int)):
        f32 = np.float32
        recip = f32(1) / f32(transition_steps)
        init32, rate32 = f32(init_value), f32(decay_rate)
        end32 = None if end_value is None else f32(end_value)
        # LLVM rewrites pow(2**k, p) as exp2(k * p).
        m, k = math.frexp(float(rate32))
        log2_rate = (k - 1) if m == 0.5 else None
        clip = None if end_value is None else (np.maximum if decay_rate < 1.0 else np.minimum)

        def xla(count):
            d = count - transition_begin
            if d <= 0:
                v = init32
            else:
                p = f32(d) * recip
                if staircase:
                    p = np.floor(p)
                if log2_rate is None:
                    pw = _pow32(rate32, p)
                elif log2_rate == 1:
                    pw = _exp2_32(p)
                elif log2_rate == -1:
                    pw = _exp2_32(-p)
                else:
                    pw = _exp2_32(p * f32(log2_rate))
                v = _ftz(_ftz(pw) * init32)
            if clip is not None:
                v = clip(v, end32)
            return v

    return _make(schedule, "schedule", xla)


def cosine_decay_schedule(init_value, decay_steps, alpha=0.0, exponent=1.0):
    r"""Cosine decay from ``init_value`` to ``alpha * init_value``.

    ``c = min(count, decay_steps)``;
    value ``init_value * ((1 - alpha) * cd ** exponent + alpha)`` with
    ``cd = 0.5 * (1 + cos(pi * c / decay_steps))``.
    ``decay_steps <= 0`` raises ``ValueError``.

    Dtype/rounding: optax turns a Python-int ``decay_steps`` into a float,
    and ``min(int32, float)`` is weak float64, so this schedule is evaluated
    in **float64** (returns ``np.float64``).  XLA's program: ``arg = c *
    (pi * (1/T))`` (constant folded), ``z = 0.5 * (cos(arg) + 1)`` with libm
    ``cos``, ``z ** exponent`` (1, 2, 3 as products, else libm ``pow``),
    ``fma(z**exponent, 1 - alpha, alpha) * init_value``.  Bitwise equal to
    optax with glibc.  Inside :func:`warmup_cosine_decay_schedule` and
    :func:`sgdr_schedule` this float64 value is then rounded to float32.
    """
    if not decay_steps > 0:
        raise ValueError(
            "The cosine_decay_schedule requires positive decay_steps, got"
            f" {decay_steps=}.")
    # optax: ``float(x) if isinstance(x, int)`` (avoids int32 overflow).
    steps = float(decay_steps) if isinstance(decay_steps, int) else decay_steps

    def schedule(count):
        count = _minimum(count, steps)
        cosine_decay = 0.5 * (1 + _cos(math.pi * count / steps))
        decayed = (1 - alpha) * cosine_decay ** exponent + alpha
        return init_value * decayed

    xla = None
    if _is_plain(init_value, steps, alpha, exponent):
        f64 = np.float64
        k = f64(math.pi * (1 / steps))      # XLA: (pi * c) / T -> c * (pi * (1/T))
        one_minus_alpha, alpha64, init64 = f64(1 - alpha), f64(alpha), f64(init_value)

        def xla(count):
            c = min(float(count), float(steps))
            z = (f64(math.cos(c * k)) + 1.0) * 0.5     # exact halving
            return _ftz(_fma64(_xla_pow(z, exponent), one_minus_alpha, alpha64) * init64)

    return _make(schedule, "schedule", xla)


def _linear_interpolate(start, end, pct):
    return (end - start) * pct + start


def _cosine_interpolate(start, end, pct):
    return end + (start - end) / 2.0 * (_cos(math.pi * pct) + 1)


def piecewise_interpolate_schedule(interpolate_type, init_value, boundaries_and_scales=None):
    """Linear or cosine interpolation between cumulative products of scales.

    ``values = cumprod([init_value, *scales])`` (sorted by boundary), bounds
    ``[0, *boundaries]``; in ``[b_i, b_{i+1})`` the value goes from
    ``values[i]`` to ``values[i+1]`` with ``pct = (count - b_i) /
    max(b_{i+1} - b_i, 1)``; from the last boundary on it is ``values[-1]``.
    ``interpolate_type`` must be ``'linear'`` or ``'cosine'`` and scales must
    be non-negative (``ValueError`` otherwise).

    Dtype/rounding (as optax under x64): ``values`` is a float64 array (a
    strong dtype, products taken in order), but ``pct`` is ``int32 / int``
    = **float32**: ``float32(c - b_i) * float32(1/size_i)``.  'linear' is
    ``fma(end - start, float64(pct), start)`` in float64 (bitwise equal to
    optax); 'cosine' computes ``cos(pi * pct) + 1`` in **float32** (libm
    ``cosf``; ``pct * pi`` is folded to ``x * (r * pi)`` when all intervals
    have the same length, as XLA does) and ``fma((start - end) / 2, that,
    end)`` in float64: bit-identical to XLA-CPU on glibc, else within 1
    float32 ulp of ``cos``.  Result ``np.float64``.
    """
    if interpolate_type == "linear":
        interpolate_fn = _linear_interpolate
    elif interpolate_type == "cosine":
        interpolate_fn = _cosine_interpolate
    else:
        raise ValueError(
            "`interpolate_type` must be either 'cosine' or 'linear', got "
            f"{interpolate_type!r}")

    if boundaries_and_scales:
        boundaries, scales = zip(*sorted(boundaries_and_scales.items()))
        if not all(scale >= 0.0 for scale in scales):
            raise ValueError(
                "`piecewise_interpolate_schedule` expects non-negative scale factors "
                f"in `boundaries_and_scales`, got {dict(boundaries_and_scales)!r}")
    else:
        boundaries, scales = (), ()

    def schedule(count):
        bounds = _stack((0,) + tuple(boundaries))
        stacked = _stack((init_value,) + tuple(scales))
        # jnp.cumprod: a strong dtype (integers promoted to 64 bit), sequential.
        dt = stacked[0].dtype
        if dt.kind in "biu":
            dt = np.promote_types(dt, _I64 if dt.kind != "u" else np.uint64)
        values, acc = [], None
        for s in stacked:
            s = _J(s.astype(dt), False)
            acc = s if acc is None else acc * s
            values.append(acc)
        n = len(bounds) - 1
        terms = []
        for i in range(n):
            size = _maximum(bounds[i + 1] - bounds[i], 1)
            ind = bool(bounds[i] <= count) and bool(count < bounds[i + 1])
            pct = (count - bounds[i]) / size
            terms.append((ind, interpolate_fn(values[i], values[i + 1], pct)))
        if not terms:   # empty dot: only its dtype matters
            pct = (count - bounds[0]) / _maximum(bounds[0], 1)
            terms.append((False, interpolate_fn(values[0], values[0], pct)))
        dot = None
        for ind, val in terms:   # indicator.dot(interp_vals)
            t = _J(np.bool_(ind), False) * val
            dot = t if dot is None else dot + t
        dot = _J(dot.v, False)
        last = _J(np.bool_(bool(bounds[-1] <= count)), False) * values[-1]
        return dot + last

    xla = None
    if (_is_plain(init_value, *scales) and all(isinstance(b, int) for b in boundaries)
            and not all(isinstance(v, int) for v in (init_value, *scales))):
        f32, f64 = np.float32, np.float64
        bnd = (0,) + tuple(boundaries)
        vals = [f64(init_value)]
        for sc in scales:                                  # cumprod, in order
            vals.append(_ftz(vals[-1] * f64(sc)))
        # interval reciprocals are float32 constants: pct = (c - b_i) * (1/size)
        recips = [f32(1) / f32(max(bnd[i + 1] - bnd[i], 1)) for i in range(len(bnd) - 1)]
        if interpolate_type == "linear":
            coef = [_ftz(vals[i + 1] - vals[i]) for i in range(len(bnd) - 1)]
            base = vals[:-1]
        else:
            coef = [_ftz((vals[i] - vals[i + 1]) / 2.0) for i in range(len(bnd) - 1)]
            base = vals[1:]
        pi32 = f32(math.pi)
        # XLA folds the two constant multiplies when the reciprocals are one
        # scalar (a single interval, or all intervals of the same size).
        fold_pi = len(set(recips)) == 1

        def xla(count):
            if count >= bnd[-1]:
                return vals[-1]
            for i in range(len(bnd) - 1):
                if bnd[i] <= count < bnd[i + 1]:
                    if interpolate_type == "cosine":
                        if fold_pi:   # scalar constants: (x * r) * pi -> x * (r * pi)
                            arg = f32(count - bnd[i]) * (recips[i] * pi32)
                        else:
                            arg = (f32(count - bnd[i]) * recips[i]) * pi32
                        pct = _cos32(arg) + f32(1)
                    else:
                        pct = f32(count - bnd[i]) * recips[i]
                    return _fma64(coef[i], f64(pct), base[i]) + 0.0
            return f64(0.0)

    return _make(schedule, "schedule", xla)


def linear_onecycle_schedule(transition_steps, peak_value, pct_start=0.3, pct_final=0.85,
                             div_factor=25.0, final_div_factor=1e4):
    """Three linear phases (Smith et al., one-cycle).

    ``piecewise_interpolate_schedule('linear', peak_value / div_factor,
    {int(pct_start * T): div_factor, int(pct_final * T): 1 / div_factor,
    T: 1 / final_div_factor})`` with ``T = transition_steps``;
    ``transition_steps <= 0`` raises ``ValueError``.  Evaluated like
    :func:`piecewise_interpolate_schedule` (float64 result, float32 ``pct``),
    bitwise equal to optax.
    """
    if transition_steps <= 0:
        raise ValueError(
            "A linear onecycle schedule was set with a non-positive "
            f"`transition_steps`, got {transition_steps!r}")
    return piecewise_interpolate_schedule(
        "linear", peak_value / div_factor,
        {int(pct_start * transition_steps): div_factor,
         int(pct_final * transition_steps): 1.0 / div_factor,
         transition_steps: 1.0 / final_div_factor})


def cosine_onecycle_schedule(transition_steps, peak_value, pct_start=0.3, div_factor=25.0,
                             final_div_factor=1e4):
    """One-cycle with cosine phases.

    ``piecewise_interpolate_schedule('cosine', peak_value / div_factor,
    {int(pct_start * T): div_factor, int(T): 1 / (div_factor *
    final_div_factor)})``; ``transition_steps <= 0`` raises ``ValueError``.
    Evaluated like :func:`piecewise_interpolate_schedule`: float64 result,
    but the cosine is taken in float32 (libm ``cosf``; within 1 float32 ulp
    of XLA where ``cosf`` is not glibc's).
    """
    if transition_steps <= 0:
        raise ValueError(
            "A cosine onecycle schedule was set with a non-positive "
            f"`transition_steps`, got {transition_steps!r}")
    return piecewise_interpolate_schedule(
        "cosine", peak_value / div_factor,
        {int(pct_start * transition_steps): div_factor,
         int(transition_steps): 1.0 / (div_factor * final_div_factor)})


def warmup_constant_schedule(init_value, peak_value, warmup_steps):
    """Linear warmup from ``init_value`` to ``peak_value``, then constant.

    ``linear_schedule(init_value, peak_value, warmup_steps)``: float32.
    """
    return linear_schedule(init_value=init_value, end_value=peak_value,
                           transition_steps=warmup_steps)


def warmup_cosine_decay_schedule(init_value, peak_value, warmup_steps, decay_steps,
                                 end_value=0.0, exponent=1.0):
    """Linear warmup then cosine decay to ``end_value``.

    ``join_schedules([linear_schedule(init_value, peak_value, warmup_steps),
    cosine_decay_schedule(peak_value, decay_steps - warmup_steps,
    alpha=end_value / peak_value, exponent)], [warmup_steps])`` (``alpha =
    0`` if ``peak_value == 0``).  ``decay_steps`` INCLUDES the warmup;
    ``decay_steps - warmup_steps <= 0`` raises ``ValueError``.

    Dtype/rounding: the join of a float32 part and a weak float64 part is
    **float32**: the cosine phase is computed in float64 (as
    :func:`cosine_decay_schedule`) and rounded to float32 once.
    """
    if not decay_steps - warmup_steps > 0:
        raise ValueError(
            "warmup_cosine_decay_schedule requires `decay_steps` > `warmup_steps` "
            "(decay_steps includes the warmup; the cosine_decay_schedule requires "
            f"positive decay_steps), got decay_steps={decay_steps!r}, "
            f"warmup_steps={warmup_steps!r}.")
    alpha = 0.0 if peak_value == 0.0 else end_value / peak_value
    schedules = [
        linear_schedule(init_value=init_value, end_value=peak_value,
                        transition_steps=warmup_steps),
        cosine_decay_schedule(init_value=peak_value, decay_steps=decay_steps - warmup_steps,
                              alpha=alpha, exponent=exponent),
    ]
    return join_schedules(schedules, [warmup_steps])


def warmup_exponential_decay_schedule(init_value, peak_value, warmup_steps, transition_steps,
                                      decay_rate, transition_begin=0, staircase=False,
                                      end_value=None):
    """Linear warmup then :func:`exponential_decay` from ``peak_value``.

    ``join_schedules([linear_schedule(init_value, peak_value, warmup_steps),
    exponential_decay(peak_value, transition_steps, decay_rate,
    transition_begin, staircase, end_value)], [warmup_steps])``.  Both parts
    are float32, so is the result (bitwise equal to optax).
    """
    schedules = [
        linear_schedule(init_value=init_value, end_value=peak_value,
                        transition_steps=warmup_steps),
        exponential_decay(init_value=peak_value, transition_steps=transition_steps,
                          decay_rate=decay_rate, transition_begin=transition_begin,
                          staircase=staircase, end_value=end_value),
    ]
    return join_schedules(schedules, [warmup_steps])


def join_schedules(schedules, boundaries):
    """Apply ``schedules`` in sequence, switching at ``boundaries``.

    ``out = schedules[0](count)``; for each ``b_i``: ``out = where(count <
    b_i, out, schedules[i + 1](count - b_i))`` -- the next schedule starts
    AT ``count == b_i`` and sees the steps since its boundary.  As in optax,
    extra boundaries or schedules beyond ``zip`` are ignored.

    Dtype/rounding: each ``where`` promotes like JAX (a weak float64 part
    joined with a float32 part is float32, a strong float64 part wins), and
    the selected value is cast through that chain, so e.g. a cosine phase
    (float64) joined with a linear warmup (float32) is rounded to float32.
    Schedules that are not npopt schedules are called with a NumPy int32
    count; a Python float they return is treated as weakly typed.
    """
    schedules = list(schedules)
    boundaries = list(boundaries)
    if not schedules:
        raise ValueError("join_schedules: `schedules` must contain at least one schedule")

    def schedule(count):
        output = _evaluate(schedules[0], count)
        for boundary, sched in zip(boundaries, schedules[1:]):
            if count < boundary:
                dt, weak = _jtype(sched, count - boundary)
                dt, weak = _join(output.dtype, output.weak, dt, weak)
                output = _J(output.astype(dt), weak)
            else:
                output = _where(False, output, _evaluate(sched, count - boundary))
        return output

    return _make(schedule, "schedule")


def sgdr_schedule(cosine_kwargs: Iterable[dict]):
    """SGD with warm restarts: joined :func:`warmup_cosine_decay_schedule` cycles.

    Each dict of ``cosine_kwargs`` is passed to
    :func:`warmup_cosine_decay_schedule`; its ``decay_steps`` is the cycle's
    length, and the cycles are joined at the cumulative ``decay_steps``.
    Float32 like its parts.
    """
    boundaries = []
    schedules = []
    step = 0
    for kwargs in cosine_kwargs:
        schedules += [warmup_cosine_decay_schedule(**kwargs)]
        boundaries += [step + kwargs["decay_steps"]]
        step += kwargs["decay_steps"]
    if not schedules:
        raise ValueError("sgdr_schedule: `cosine_kwargs` must contain at least one cycle")
    return join_schedules(schedules, boundaries[:-1])
