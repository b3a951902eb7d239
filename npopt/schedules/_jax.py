"""JAX's arithmetic, as the schedules need it (see the package docstring).

* libm's ``cosf``/``powf``/``exp2f`` (what XLA-CPU calls), loaded through
  ctypes, and an exact fused multiply-add in integer arithmetic;
* ``_J``: a NumPy value with JAX's dtype and weak-type flag, whose operators
  follow JAX's promotion lattice under x64 (``int32 / int`` is float32, ...);
* ``_xla_pow``: ``x ** e`` for a constant ``e`` as XLA-CPU rewrites it;
* ``_make``: a schedule from its op-for-op ``body`` (the dtype, and the
  fallback numbers) and its ``xla`` kernel (the bit-identical numbers).
"""
import ctypes
import logging
import math
import operator

import numpy as np


_log = logging.getLogger("npopt.schedules")   # one logger for the package

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


def _over_counts(ev, counts, dtype):
    """The schedule at each count of an integer array (as optax's jnp code
    maps over one): count by count, so each value is the scalar call's."""
    if counts.dtype.kind not in "iu":
        raise TypeError("schedule: an array of counts must be of integers, "
                        f"got dtype {counts.dtype}")
    values = [ev(_as_count(c)).v for c in counts.ravel().tolist()]
    if not values:
        return np.empty(counts.shape, dtype)
    return np.stack(values).reshape(counts.shape + np.shape(values[0]))


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
        if type(count) is np.ndarray and count.ndim:
            return _over_counts(ev, count, dtype)
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
