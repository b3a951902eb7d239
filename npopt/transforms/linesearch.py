r"""Line searches as gradient transformations (optax 0.2.8): zoom (strong
Wolfe + Hager-Zhang approximate decrease) and backtracking (Armijo), and
``value_and_grad_from_state``.

Where the objective comes from
------------------------------
optax's ``update`` takes ``value`` (f at the params), ``grad`` (its
gradient) and ``value_fn``, and differentiates ``value_fn`` with JAX at the
trial points. npopt has no autodiff, so ``update`` also takes the gradient
as a function, in one of two spellings:

* ``value_fn=f, grad_fn=df``: ``f(params, **kw)`` returns the value,
  ``df(params, **kw)`` the gradient (a tree like params);
* ``value_and_grad_fn=fg``: ``fg(params, **kw)`` returns ``(value, grad)``
  (``value_fn`` may then be omitted).

Without either, gradients at trial points come from central finite
differences of ``value_fn`` (step ``cbrt(eps) * max(1, |x_i|)``, two
evaluations per parameter): slow and inexact, a fallback (a warning says
so). Other keyword arguments of ``update`` are passed to each function that
has a parameter of that name; one that none of them accepts is a TypeError
(as optax).

Numerics
--------
The searches run on the host on NumPy scalars typed as optax types them
under ``jax_enable_x64`` (the reference): the interval bounds, the safe step
size and the errors are float64, values and slopes have the params' dtype,
and every search state is cast back to those dtypes after each iteration
(optax's ``tree_cast_like``). Trial points ``w + eta u`` are made by a
kernel in the promoted dtype of ``eta`` and the params.

Float32 params follow optax's loop carry exactly: the interval bounds of
the zoom start as weakly typed float64 scalars (``jnp.asarray(0.0)``), so
the interval phase's trial steps are float32 (``'one'``'s initial 1.0 is
weak too), the quadratic interpolation is evaluated in float32 and the cubic
one partly (see ``zoom_point``).

.. warning::
    As optax under x64, the zoom phase's float64 step size makes the trial
    point of float32 params float64: ``value_fn``/``grad_fn`` then receive
    float64 params; their results are rounded to float32 when stored.
"""
import functools
import inspect
import warnings
from typing import Any, NamedTuple

import numpy as np

from .. import _checks, _flat
from .._finite_diff import FiniteDifferences
from ..base import NO_PARAMS_MSG, GradientTransformationExtraArgs
from ..kernels import apply as kapply
from ..kernels import lbfgs as klbfgs
from ..kernels import linesearch as kls
from ..kernels._jit import rule
from ..tree import tree_flatten, tree_unflatten
from . import _fusion
from .lbfgs import Plan, tree_dot

F64 = np.float64
I64 = np.int64

# optax's diagnostics (printed with verbose=True)
FLAG_INTERVAL_NOT_FOUND = (
    "No interval satisfying curvature condition. "
    "Consider increasing maximal possible stepsize of the linesearch.")
FLAG_INTERVAL_TOO_SMALL = "Length of searched interval has been reduced below threshold."
FLAG_CURVATURE_COND_NOT_SATISFIED = (
    "Returning stepsize with sufficient decrease but curvature condition not satisfied.")
FLAG_NO_STEPSIZE_FOUND = "Linesearch failed, no stepsize satisfying sufficient decrease found."
FLAG_NOT_A_DESCENT_DIRECTION = (
    "The linesearch failed because the provided direction is not a descent direction. ")


# ---------------------------------------------------------------------------
# States (optax's names and fields)
# ---------------------------------------------------------------------------

class BacktrackingLinesearchInfo(NamedTuple):
    """num_linesearch_steps (int64) and the final decrease_error (> 0: failed)."""
    num_linesearch_steps: Any
    decrease_error: Any


class ScaleByBacktrackingLinesearchState(NamedTuple):
    """learning_rate, value (at the accepted point), grad (there, if
    ``store_grad``, else None), info."""
    learning_rate: Any
    value: Any
    grad: Any
    info: BacktrackingLinesearchInfo


class ZoomLinesearchInfo(NamedTuple):
    """num_linesearch_steps (int64), decrease_error and curvature_error (float64;
    0 when the criterion holds)."""
    num_linesearch_steps: Any
    decrease_error: Any
    curvature_error: Any


class ScaleByZoomLinesearchState(NamedTuple):
    """learning_rate, value and grad at the accepted point, info."""
    learning_rate: Any
    value: Any
    grad: Any
    info: ZoomLinesearchInfo


class ZoomLinesearchState(NamedTuple):
    """The inner state of one zoom line search (optax's fields). Vectors
    (params, updates, grad, safe_grad) are lists of per-group flat buffers."""
    count: Any
    params: Any
    updates: Any
    stepsize_guess: Any
    stepsize: Any
    value: Any
    grad: Any
    slope: Any
    value_init: Any
    slope_init: Any
    decrease_error: Any
    curvature_error: Any
    error: Any
    interval_found: Any
    done: Any
    failed: Any
    low: Any
    value_low: Any
    slope_low: Any
    high: Any
    value_high: Any
    slope_high: Any
    cubic_ref: Any
    value_cubic_ref: Any
    safe_stepsize: Any
    safe_value: Any
    safe_grad: Any


_VECTOR_FIELDS = ("params", "updates", "grad", "safe_grad")


# ---------------------------------------------------------------------------
# The objective: value_fn / grad_fn / value_and_grad_fn / finite differences
# ---------------------------------------------------------------------------

def _arg_names(fn):
    try:
        return list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return []


class Objective:
    """The user's functions, resolved once per ``update`` call.

    ``value(tree)`` and ``value_and_grad(tree)`` call them with the keyword
    arguments each accepts (optax's ``_extract_fns_kwargs``).
    """

    def __init__(self, owner, value_fn, grad_fn, value_and_grad_fn, extra_args, warn_fd=True):
        for name, f in (("value_fn", value_fn), ("grad_fn", grad_fn),
                        ("value_and_grad_fn", value_and_grad_fn)):
            if f is not None and not callable(f):
                raise TypeError(f"{owner}.update: {name}: expected a callable, got {f!r}")
        if value_fn is None and value_and_grad_fn is None:
            raise TypeError(
                f"{owner}.update: value_fn: expected the objective as value_fn=f (with "
                "grad_fn=df for its gradient) or value_and_grad_fn=fg returning (value, "
                "grad), got neither; pass them as keyword arguments of update/step")
        names = {}
        for f in (value_fn, grad_fn, value_and_grad_fn):
            if f is not None:
                names[id(f)] = _arg_names(f)
        accepted = set().union(*names.values())
        remaining = sorted(k for k in extra_args if k not in accepted)
        if remaining:
            raise TypeError(
                f"Unexpected keyword arguments passed to `{owner}.update`. These arguments "
                f"were not consumed by `value_fn`: {remaining}. Ensure that all extra "
                "keyword arguments are accepted by `value_fn`.")
        self.owner = owner
        self.kw = {i: {k: v for k, v in extra_args.items() if k in n} for i, n in names.items()}
        self.value_fn, self.grad_fn, self.value_and_grad_fn = value_fn, grad_fn, value_and_grad_fn
        self.finite_differences = grad_fn is None and value_and_grad_fn is None
        if self.finite_differences and warn_fd:
            warnings.warn(
                f"{owner}: no grad_fn or value_and_grad_fn given; gradients at trial points "
                "come from central finite differences (2 evaluations of value_fn per "
                "parameter, inexact)", stacklevel=4)

    def _call(self, f, tree):
        return f(tree, **self.kw[id(f)])

    def value(self, tree, dtype):
        if self.value_fn is not None:
            v = self._call(self.value_fn, tree)
        else:
            v = self._call(self.value_and_grad_fn, tree)[0]
        return _scalar(v, dtype, "value_fn")

    def value_and_grad(self, tree, dtype):
        if self.value_and_grad_fn is not None:
            v, g = self._call(self.value_and_grad_fn, tree)
            return _scalar(v, dtype, "value_and_grad_fn"), g
        v = self.value(tree, dtype)
        if self.grad_fn is not None:
            return v, self._call(self.grad_fn, tree)
        return v, _fd_grad(lambda t: self.value(t, dtype), tree)

    def grad(self, tree, dtype):
        if self.grad_fn is not None:
            return self._call(self.grad_fn, tree)
        if self.value_and_grad_fn is not None:
            return self._call(self.value_and_grad_fn, tree)[1]
        return _fd_grad(lambda t: self.value(t, dtype), tree)


def _scalar(v, dtype, name):
    a = np.asarray(v)
    if a.size != 1 or a.dtype.kind not in "fiub":
        raise TypeError(f"{name}: expected a real scalar value, got {_checks._describe(v)}")
    return np.dtype(dtype).type(a.reshape(()))


def _fd_grad(value, tree):
    """Central finite differences of value at tree (host arrays only; see
    ``npopt._finite_diff``), in the precision of value's own casts."""
    if any(not isinstance(x, np.ndarray) for x in tree_flatten(tree)[0]):
        raise TypeError("grad_fn: finite differences need host (NumPy) params; pass grad_fn "
                        "or value_and_grad_fn for device arrays")
    return FiniteDifferences(what="value_fn", float64=False)(value, tree)


# ---------------------------------------------------------------------------
# Flat-buffer helpers
# ---------------------------------------------------------------------------

def _real_dtype(lay):
    return lay.groups[0].dtype if lay.groups else np.dtype(np.float64)


class _Line:
    """The search line ``w + eta u`` on flat buffers, and f along it."""

    def __init__(self, lay, params, updates, objective):
        self.lay, self.plan = lay, Plan.of(lay)
        self.p, self.u = params, updates
        self.objective = objective

    def point(self, stepsize):
        """Trial params ``w + stepsize * u`` as a tree (promoted dtype)."""
        lay = self.lay
        out = []
        for gi, grp in enumerate(lay.groups):
            dt = np.promote_types(np.asarray(stepsize).dtype, grp.dtype)
            o = lay.target.empty(grp.size, dt)
            lay.target.launch(klbfgs.trial_cpu, klbfgs.trial_cuda, self.p[gi], self.u[gi],
                              dt.type(stepsize), o)
            out.append(o)
        return lay.views(out), [o.dtype for o in out]

    def value(self, stepsize):
        tree, dts = self.point(stepsize)
        return self.objective.value(tree, _promote(dts))

    def grad(self, stepsize):
        """Gradient buffers at ``w + stepsize * u``."""
        tree, dts = self.point(stepsize)
        return self.gather_grad(self.objective.grad(tree, _promote(dts)), dts, "grad_fn")

    def value_grad_slope(self, stepsize):
        """(value, grad buffers, slope <grad, u>) at ``w + stepsize * u``."""
        tree, dts = self.point(stepsize)
        v, g = self.objective.value_and_grad(tree, _promote(dts))
        g = self.gather_grad(g, dts, "grad_fn")
        return v, g, tree_dot(self.plan, g, self.u)

    def gather_grad(self, g, dts, name):
        """Flat buffers of the gradient tree g, leaf dtypes cast to dts (host)."""
        lay = self.lay
        leaves = lay.leaves_of(g, name)
        want = [None] * lay.num_leaves
        for grp, dt in zip(lay.groups, dts):
            for i in grp.leaf_ids:
                want[i] = dt
        if any(x.dtype != w for x, w in zip(leaves, want)):
            if lay.target.device:
                raise TypeError(f"{name}: expected gradient leaves of dtype {want}, got "
                                f"{[x.dtype for x in leaves]}")
            leaves = [np.asarray(x, w) for x, w in zip(leaves, want)]
        return lay.gather(tree_unflatten(lay.treedef, leaves), name, dts)

    def cast(self, bufs, dtypes):
        """Buffers with the given per-group dtypes (copies only where they differ)."""
        out = []
        for b, dt in zip(bufs, dtypes):
            if b.dtype == dt:
                out.append(b)
            elif self.lay.target.device:
                o = self.lay.target.empty(b.shape[0], dt)
                self.lay.target.launch(klbfgs.cast_cpu, klbfgs.cast_cuda, b, o)
                out.append(o)
            else:
                out.append(b.astype(dt))
        return out

    def scaled(self, s):
        """``s * u`` as new buffers (optax.tree.scale)."""
        out = []
        for gi, grp in enumerate(self.lay.groups):
            o = self.lay.target.empty(grp.size, grp.dtype)
            self.lay.target.launch(kapply.scale_cpu, kapply.scale_cuda, self.u[gi], o,
                                   grp.dtype.type(s))
            out.append(o)
        return out


def _promote(dtypes):
    return functools.reduce(np.promote_types, dtypes) if dtypes else np.dtype(np.float64)


def _value_dtype(value):
    dt = np.asarray(value).dtype
    return dt if dt.kind == "f" else np.dtype(np.float64)


def _where(cond, a, b):
    """jnp.where on scalars: the promoted dtype of a and b."""
    dt = np.result_type(a, b)
    return dt.type(a if cond else b)


# ---------------------------------------------------------------------------
# The zoom's interpolations for float32 params
# ---------------------------------------------------------------------------
# In optax's zoom the interval bounds (``low``, ``high``, ``cubic_ref``,
# ``safe_stepsize``) start as ``jnp.asarray(0.0)``: *weakly typed* float64.
# ``jax.lax.while_loop`` keeps that weak type in its carry (``cast_like``
# only fixes the dtype), so inside the loop the bounds hold float64 values
# but, met with the float32 values and slopes of float32 params, they are
# rounded to float32 first (JAX's weak-type promotion). Under x64, for
# float32 params, ``_quadmin`` is therefore evaluated entirely in float32,
# the right-hand side of ``_cubicmin``'s 2x2 solve in float32 (the rest in
# float64, ``jnp.array`` of weak scalars being a strong float64 array), and
# the quadratic's acceptance test compares in float32. The rules below do
# that; ``kls.zoom_point_rule`` is the all-float64 case (float64 params).

@rule
def _quadmin_f32_rule(a, fa, fpa, b, fb):
    """optax ``_quadmin`` with weak float64 ``a, b`` and float32 ``fa, fpa, fb``."""
    db = b - a                                  # weak - weak: float64
    num = fb - fa - fpa * np.float32(db)        # float32 (contracted as XLA does)
    B = num / np.float32(db * db)
    return np.float32(a) - fpa / (np.float32(2.0) * B)


@rule
def _cubicmin_f32_rule(a, fa, fpa, b, fb, c, fc):
    """optax ``_cubicmin`` with weak float64 ``a, b, c`` and float32 values:
    the vector ``[fb - fa - C db, fc - fa - C dc]`` is float32, the matrix,
    the solve and the result float64 (as ``kls.cubicmin_rule``)."""
    C = fpa
    db = b - a
    dc = c - a
    t = db * dc
    denom = t * t * (db - dc)
    d00 = dc * dc
    d01 = -(db * db)
    d10 = -(dc * dc * dc)
    d11 = db * db * db
    v0 = np.float64(fb - fa - C * np.float32(db))
    v1 = np.float64(fc - fa - C * np.float32(dc))
    r = 1.0 / denom
    A = (0.0 + d00 * v0 + d01 * v1) * r
    B = (0.0 + d10 * v0 + d11 * v1) * r
    radical = B * B - 3.0 * A * np.float64(C)
    return a + (-B + np.sqrt(radical)) / (3.0 * A)


@rule
def _zoom_point_f32_rule(low, value_low, slope_low, high, value_high, cubic_ref,
                         value_cubic_ref):
    """``kls.zoom_point_rule`` for float32 values (see above): the cubic's
    candidate is float64, the quadratic's float32 (tested against float32
    bounds), the midpoint float64. Returns (middle as float64, 0/1/2)."""
    delta = abs(high - low)
    left = min(high, low)
    right = max(high, low)
    cubic_chk = 0.2 * delta
    quad_chk = 0.1 * delta
    mc = _cubicmin_f32_rule(low, value_low, slope_low, high, value_high, cubic_ref,
                            value_cubic_ref)
    if (mc > left + cubic_chk) and (mc < right - cubic_chk):
        return mc, 0
    mq = _quadmin_f32_rule(low, value_low, slope_low, high, value_high)
    if (mq > np.float32(left + quad_chk)) and (mq < np.float32(right - quad_chk)):
        return np.float64(mq), 1
    return (low + high) / 2.0, 2


def zoom_point(low, value_low, slope_low, high, value_high, cubic_ref, value_cubic_ref):
    """The zoom's next trial step (float64) and the rule used (0 cubic, 1
    quadratic, 2 midpoint), with optax's dtypes under x64 (see above)."""
    f32 = np.dtype(np.float32)
    if all(np.asarray(x).dtype == f32 for x in (value_low, slope_low, value_high,
                                                 value_cubic_ref)):
        return _zoom_point_f32_rule(F64(low), value_low, slope_low, F64(high), value_high,
                                    F64(cubic_ref), value_cubic_ref)
    return kls.zoom_point_rule(low, value_low, slope_low, high, value_high, cubic_ref,
                                  value_cubic_ref)


# ---------------------------------------------------------------------------
# Zoom line search (Nocedal & Wright Algorithms 3.5-3.6; Hager & Zhang 2006)
# ---------------------------------------------------------------------------

def _zoom_core(max_linesearch_steps, max_stepsize, tol, increase_factor, slope_rtol, curv_rtol,
               approx_dec_rtol, interval_threshold, verbose):
    """(init, step, cond) of one zoom line search, on flat buffers (optax's
    ``zoom_linesearch``)."""

    use_approx = approx_dec_rtol is not None

    def decrease_error(stepsize, value_step, slope_step, value_init, slope_init):
        """Armijo (N&W eq. 3.7a) or Hager-Zhang approximate decrease (eq. 23)."""
        return F64(kls.decrease_error_rule(
            stepsize, value_step, slope_step, value_init, slope_init,
            type(stepsize)(slope_rtol), type(slope_init)(2 * slope_rtol - 1.0),
            type(value_init)(approx_dec_rtol if use_approx else 0.0), use_approx))

    def curvature_error(slope_step, slope_init):
        """Strong Wolfe curvature condition (N&W eq. 3.7b)."""
        return F64(kls.curvature_error_rule(slope_step, slope_init,
                                               type(slope_init)(curv_rtol)))

    def init(line, value, grad, prev_stepsize, strategy, P):
        if strategy == "one":
            # optax: jnp.asarray(1.0), a *weakly typed* float64: the first
            # trial step takes the dtype of the search's step sizes (float32
            # for float32 params), unlike the zoom phase's strong float64 bounds
            guess = 1.0
        elif strategy == "keep":
            guess = prev_stepsize
        else:
            raise ValueError(f"Unknown initial guess strategy: {strategy}")
        V = _value_dtype(value)
        value = V.type(value)
        slope = tree_dot(line.plan, line.u, grad)
        return ZoomLinesearchState(
            count=0, params=line.p, updates=line.u, stepsize_guess=guess,
            stepsize=P.type(0.0), value=P.type(value), grad=grad, slope=slope,
            value_init=value, slope_init=slope,
            decrease_error=F64(np.inf), curvature_error=F64(np.inf), error=F64(np.inf),
            interval_found=False, done=False, failed=False,
            low=F64(0.0), value_low=value, slope_low=slope,
            high=F64(0.0), value_high=value, slope_high=slope,
            cubic_ref=F64(0.0), value_cubic_ref=value,
            safe_stepsize=F64(0.0), safe_value=value, safe_grad=grad)

    def cast_like(new, ref, line):
        """Rounds every field of ``new`` to the dtype it has in ``ref``."""
        fields = {}
        for f in ZoomLinesearchState._fields:
            x, r = getattr(new, f), getattr(ref, f)
            if f in _VECTOR_FIELDS:
                fields[f] = line.cast(x, [b.dtype for b in r])
            elif isinstance(r, (bool, np.bool_, int)):
                fields[f] = x
            else:
                fields[f] = type(r)(x)
        return ZoomLinesearchState(**fields)

    def search_interval(st, line):
        """Algorithm 3.5: grow the step until an interval is bracketed."""
        it = st.count
        prev_stepsize, prev_value, prev_slope = st.stepsize, st.value, st.slope
        larger = increase_factor * prev_stepsize
        new_stepsize = _where(it == 0, st.stepsize_guess, larger)
        if max_stepsize is not None:
            max_reached = bool(new_stepsize >= max_stepsize)
            new_stepsize = np.minimum(new_stepsize, max_stepsize)
        else:
            max_reached = False
        value, grad, slope = line.value_grad_slope(new_stepsize)
        de = decrease_error(new_stepsize, value, slope, st.value_init, st.slope_init)
        ce = curvature_error(slope, st.slope_init)
        error = np.maximum(de, ce)
        safe = de <= tol
        safe_stepsize = _where(safe, new_stepsize, st.safe_stepsize)
        safe_value = _where(safe, value, st.safe_value)
        safe_grad = grad if safe else st.safe_grad
        set_high = bool((de > 0.0) | ((value >= prev_value) & (it > 0)))
        set_low = bool((slope >= 0.0) & (not set_high))
        if set_low:
            lo = (new_stepsize, value, slope)
            hi = (prev_stepsize, prev_value, prev_slope)
        else:
            lo = (prev_stepsize, prev_value, prev_slope)
            hi = (new_stepsize, value, slope)
        interval_found = set_high or set_low or bool(error <= tol)
        done = bool(error <= tol) or (max_reached and not interval_found)
        if verbose and max_reached and not interval_found:
            print("INFO: optax.scale_by_zoom_linesearch:\n"
                  f"Value at current params: {st.value_init}\n"
                  f"Slope along update direction: {st.slope_init}\n"
                  f"Stepsize reached: {new_stepsize}\n"
                  f"Decrease Error: {de}\nCurvature Error: {ce}"
                  + FLAG_INTERVAL_NOT_FOUND + "\n" + FLAG_CURVATURE_COND_NOT_SATISFIED)
        failed = (it + 1 >= max_linesearch_steps) and not done
        return st._replace(
            count=it + 1, stepsize=new_stepsize, value=value, grad=grad, slope=slope,
            decrease_error=de, curvature_error=ce, error=error,
            interval_found=interval_found, done=done, failed=failed,
            low=lo[0], value_low=lo[1], slope_low=lo[2],
            high=hi[0], value_high=hi[1], slope_high=hi[2],
            cubic_ref=lo[0], value_cubic_ref=lo[1],
            safe_stepsize=safe_stepsize, safe_value=safe_value, safe_grad=safe_grad)

    def zoom_into_interval(st, line):
        """Algorithm 3.6: shrink the interval by cubic, quadratic or bisection steps."""
        it = st.count
        low, value_low, slope_low = st.low, st.value_low, st.slope_low
        high, value_high, slope_high = st.high, st.value_high, st.slope_high
        too_small = bool(np.abs(high - low) <= interval_threshold)
        middle, _ = zoom_point(low, value_low, slope_low, high, value_high,
                               st.cubic_ref, st.value_cubic_ref)
        middle = F64(middle)

        value, grad, slope = line.value_grad_slope(middle)
        de = decrease_error(middle, value, slope, st.value_init, st.slope_init)
        ce = curvature_error(slope, st.slope_init)
        error = np.maximum(de, ce)
        update_safe = bool((de <= tol) & (value < st.safe_value))
        safe_stepsize = _where(update_safe, middle, st.safe_stepsize)
        safe_value = _where(update_safe, value, st.safe_value)
        safe_grad = grad if update_safe else st.safe_grad
        done = bool(error <= tol)
        set_high_to_middle = bool((de > 0.0) | (value >= value_low))
        secant_interval = slope * (high - low)
        set_high_to_low = bool(secant_interval >= 0.0) and not set_high_to_middle
        set_low_to_middle = not set_high_to_middle
        new_hi = (middle, value, slope) if set_high_to_middle else (high, value_high, slope_high)
        if set_high_to_low:
            new_hi = (low, value_low, slope_low)
        new_lo = (middle, value, slope) if set_low_to_middle else (low, value_low, slope_low)
        if set_high_to_middle or set_high_to_low:
            cubic_ref, value_cubic_ref = high, value_high
        else:
            cubic_ref, value_cubic_ref = low, value_low
        presumably_failed = (it + 1 >= max_linesearch_steps) or (too_small
                                                                 and safe_stepsize > 0.0)
        failed = presumably_failed and not done
        return st._replace(
            count=it + 1, stepsize=middle, value=value, grad=grad, slope=slope,
            decrease_error=de, curvature_error=ce, error=error, done=done, failed=failed,
            low=new_lo[0], value_low=new_lo[1], slope_low=new_lo[2],
            high=new_hi[0], value_high=new_hi[1], slope_high=new_hi[2],
            cubic_ref=cubic_ref, value_cubic_ref=value_cubic_ref,
            safe_stepsize=safe_stepsize, safe_value=safe_value, safe_grad=safe_grad)

    def try_safe_step(st):
        """On failure: fall back to the best step with sufficient decrease."""
        outside_domain = bool(np.isinf(st.decrease_error))
        use_safe = bool(st.safe_stepsize > 0.0) or outside_domain
        if verbose:
            _failure_diagnostic(st, interval_threshold)
        if use_safe:
            return st._replace(stepsize=st.safe_stepsize, value=st.safe_value,
                               grad=st.safe_grad)
        return st

    def step(st, line):
        with np.errstate(all="ignore"):
            new = zoom_into_interval(st, line) if st.interval_found else search_interval(st, line)
            new = cast_like(new, st, line)
            if new.failed:
                new = cast_like(try_safe_step(new), st, line)
        return new

    def cond(st):
        return not (st.done or st.failed)

    return init, step, cond


def _failure_diagnostic(st, interval_threshold):
    print("INFO: optax.scale_by_zoom_linesearch:\n"
          f"Value at current params: {st.value_init}\n"
          f"Slope along update direction: {st.slope_init}\n"
          f"Stepsize reached: {st.stepsize}\n"
          f"Decrease Error: {st.decrease_error}\n"
          f"Curvature Error: {st.curvature_error}")
    interval_length = abs(st.low - st.high)
    if interval_length <= interval_threshold:
        print(FLAG_INTERVAL_TOO_SMALL + f" Interval length: {interval_length}.")
    if st.safe_stepsize > 0.0:
        print(FLAG_CURVATURE_COND_NOT_SATISFIED
              + f" Stepsize ensuring sufficient decrease: {st.safe_stepsize}.")
        return
    print(FLAG_NO_STEPSIZE_FOUND)
    if not st.slope_init < 0.0:
        print(FLAG_NOT_A_DESCENT_DIRECTION
              + f"The slope (={st.slope_init}) at stepsize=0 should be negative")
    else:
        print("Consider augmenting the maximal number of linesearch iterations.")
    if np.isinf(st.decrease_error):
        print("Cannot even make a step without getting Inf or Nan. The linesearch won't "
              "make a step and the optimizer is stuck.")
    else:
        print("Making an unsafe step, not decreasing enough the objective. Convergence of "
              "the solver is compromised as it does not reduce values.")


# ---------------------------------------------------------------------------
# Public transformations
# ---------------------------------------------------------------------------

def _check_positive_int(name, x, low=0):
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {x!r}")
    return int(x)


def _check_value_grad(owner, value, grad):
    if value is None:
        raise TypeError(f"{owner}.update: value: expected the objective's value at params "
                        "(update(..., value=f(params), grad=..., value_fn=...)), got None")
    _scalar(value, np.float64, "value")
    if grad is None:
        raise TypeError(f"{owner}.update: grad: expected the objective's gradient at params "
                        "(a tree like params), got None")


def _arg_checker(owner):
    """check_args(params, extra_args): the errors ``update`` would raise about
    its keyword arguments, without evaluating anything (for fused steps)."""
    def check_args(params, extra_args):
        ex = dict(extra_args)
        _check_value_grad(owner, ex.pop("value", None), ex.pop("grad", None))
        fns = [ex.pop(k, None) for k in ("value_fn", "grad_fn", "value_and_grad_fn")]
        Objective(owner, *fns, ex, warn_fd=False)
    return check_args


def _inputs(owner, updates, state, state_cls, params, value, grad):
    _checks.check_state("state", state, state_cls, owner)
    if params is None:
        raise ValueError(NO_PARAMS_MSG)
    _check_value_grad(owner, value, grad)
    lay, _ = _flat.layout_of(updates, "updates")
    u = lay.gather(updates, "updates")
    p = lay.gather(params, "params")
    g = lay.gather(grad, "grad")
    return lay, u, p, g


def scale_by_zoom_linesearch(max_linesearch_steps, max_learning_rate=None, tol=0.0,
                             increase_factor=2.0, slope_rtol=1e-4, curv_rtol=0.9,
                             approx_dec_rtol=1e-6, stepsize_precision=1e-5,
                             initial_guess_strategy="keep", verbose=False):
    r"""Scales the updates by a step size satisfying the strong Wolfe conditions.

    Finds :math:`\eta` with sufficient decrease (Armijo) and small curvature:

    .. math::
        f(w + \eta u) \le f(w) + c_1 \eta \langle u, \nabla f(w)\rangle + \epsilon,
        \qquad
        |\langle \nabla f(w + \eta u), u\rangle| \le c_2 |\langle \nabla f(w), u\rangle|
        + \epsilon,

    (:math:`c_1` = ``slope_rtol``, :math:`c_2` = ``curv_rtol``,
    :math:`\epsilon` = ``tol``), by growing the step by ``increase_factor``
    until an interval is bracketed (Nocedal & Wright, Algorithm 3.5), then
    zooming into it with cubic, quadratic or bisection steps (Algorithm 3.6).
    Close to a minimum (:math:`f(w+\eta u) \le f(w) + c_3|f(w)|`, :math:`c_3`
    = ``approx_dec_rtol``), Armijo's test may instead be met by Hager and
    Zhang's approximate decrease
    :math:`\langle \nabla f(w+\eta u), u\rangle \le (2c_1 - 1)\langle \nabla
    f(w), u\rangle`, which resolves differences down to machine precision
    (``approx_dec_rtol=None`` disables it). When no step satisfies both
    conditions within ``max_linesearch_steps``, or the interval gets shorter
    than ``stepsize_precision``, the best step with sufficient decrease is
    taken (0 if there is none and the values were not finite).

    ``update(updates, state, params, *, value, grad, value_fn, grad_fn=None,
    value_and_grad_fn=None, **fn_kwargs)`` returns ``eta * updates``; see
    the module docstring for the objective's spellings.

    Args:
      max_linesearch_steps: maximum number of trial points per update.
      max_learning_rate: largest step size tried (None: no bound).
      tol: tolerance on both criteria.
      increase_factor: growth factor of the interval search.
      slope_rtol: :math:`c_1`.
      curv_rtol: :math:`c_2` (``inf`` drops the curvature condition).
      approx_dec_rtol: :math:`c_3`, or None.
      stepsize_precision: shortest interval worth zooming into.
      initial_guess_strategy: ``'keep'`` (start from the previous step size)
        or ``'one'`` (start from 1, for quasi-Newton directions).
      verbose: print optax's diagnostics when the search fails.

    Returns:
      A GradientTransformation with state ``ScaleByZoomLinesearchState``.

    References:
      Nocedal & Wright, *Numerical Optimization*, Algorithms 3.5-3.6, 1999.
      Hager & Zhang, "Algorithm 851: CG_DESCENT", ACM TOMS 32(1), 2006.
    """
    max_linesearch_steps = _check_positive_int("max_linesearch_steps", max_linesearch_steps)
    if max_learning_rate is not None:
        max_learning_rate = float(_checks.check_number("max_learning_rate", max_learning_rate,
                                                       low=0.0, low_open=True))
    tol = float(_checks.check_number("tol", tol, low=0.0))
    increase_factor = float(_checks.check_number("increase_factor", increase_factor, low=1.0))
    slope_rtol = float(_checks.check_number("slope_rtol", slope_rtol, low=0.0))
    if not (isinstance(curv_rtol, (int, float, np.floating)) and curv_rtol >= 0):
        raise ValueError(f"curv_rtol: expected a number >= 0 (inf allowed), got {curv_rtol!r}")
    curv_rtol = float(curv_rtol)
    if approx_dec_rtol is not None:
        approx_dec_rtol = float(_checks.check_number("approx_dec_rtol", approx_dec_rtol,
                                                     low=0.0))
    stepsize_precision = float(_checks.check_number("stepsize_precision", stepsize_precision,
                                                    low=0.0))
    if initial_guess_strategy not in ("one", "keep"):
        raise ValueError("initial_guess_strategy: expected 'one' or 'keep', got "
                         f"{initial_guess_strategy!r}")
    verbose = _checks.check_bool("verbose", verbose)
    init_ls, step_ls, cond_ls = _zoom_core(
        max_linesearch_steps, max_learning_rate, tol, increase_factor, slope_rtol, curv_rtol,
        approx_dec_rtol, stepsize_precision, verbose)
    owner = "scale_by_zoom_linesearch"

    def init_fn(params):
        lay, _ = _flat.layout_of(params)
        P = _real_dtype(lay)
        return ScaleByZoomLinesearchState(
            learning_rate=P.type(1.0), value=P.type(np.inf), grad=lay.views(lay.full(0)),
            info=ZoomLinesearchInfo(num_linesearch_steps=I64(0), decrease_error=F64(np.inf),
                                    curvature_error=F64(np.inf)))

    def update_fn(updates, state, params=None, *, value=None, grad=None, value_fn=None,
                  grad_fn=None, value_and_grad_fn=None, **extra_args):
        lay, u, p, g = _inputs(owner, updates, state, ScaleByZoomLinesearchState, params,
                               value, grad)
        objective = Objective(owner, value_fn, grad_fn, value_and_grad_fn, extra_args)
        P = _real_dtype(lay)
        line = _Line(lay, p, u, objective)
        st = init_ls(line, value, g, P.type(state.learning_rate), initial_guess_strategy, P)
        while cond_ls(st):
            st = step_ls(st, line)
        lr = P.type(st.stepsize)
        grad_out = st.grad if all(a is not b for a, b in zip(st.grad, g)) else lay.copy(st.grad)
        new_state = ScaleByZoomLinesearchState(
            learning_rate=lr, value=P.type(st.value), grad=lay.views(grad_out),
            info=ZoomLinesearchInfo(num_linesearch_steps=I64(st.count),
                                    decrease_error=F64(st.decrease_error),
                                    curvature_error=F64(st.curvature_error)))
        return lay.views(line.scaled(lr)), new_state

    return GradientTransformationExtraArgs(init_fn, update_fn,
                                  fusion=_fusion.LineSearch(_arg_checker(owner)))


def scale_by_backtracking_linesearch(max_backtracking_steps, slope_rtol=1e-4,
                                     decrease_factor=0.8, increase_factor=1.5,
                                     max_learning_rate=1.0, atol=0.0, rtol=0.0,
                                     store_grad=False, verbose=False):
    r"""Scales the updates by a step size with sufficient decrease (Armijo).

    Starting from :math:`\min(\text{increase\_factor}\cdot\eta_{prev},
    \text{max\_learning\_rate})`, multiplies :math:`\eta` by
    ``decrease_factor`` until

    .. math::
        f(w + \eta u) \le (1 + \delta) f(w) + \eta c \langle u, \nabla f(w)\rangle
        + \epsilon

    (:math:`c` = ``slope_rtol``, :math:`\delta` = ``rtol``, :math:`\epsilon`
    = ``atol``), for at most ``max_backtracking_steps`` reductions. A NaN
    value counts as an infinite violation; if the violation is still
    infinite at the end, the step size is 0. ``update`` takes the same
    keyword arguments as ``scale_by_zoom_linesearch``'s; only values are
    needed, except with ``store_grad=True``, which also stores the gradient
    at the accepted point (for ``value_and_grad_from_state``).

    Args:
      max_backtracking_steps: maximum number of reductions.
      slope_rtol: :math:`c`.
      decrease_factor: factor applied to the step size at each reduction.
      increase_factor: growth of the first guess over the previous step size.
      max_learning_rate: largest step size.
      atol, rtol: absolute and relative tolerances of the criterion.
      store_grad: store the gradient at the accepted point in the state.
      verbose: print optax's diagnostics when the search fails.

    Returns:
      A GradientTransformation with state ``ScaleByBacktrackingLinesearchState``.

    References:
      Vaswani et al., "Painless Stochastic Gradient", NeurIPS 2019.
      Nocedal & Wright, *Numerical Optimization*, 1999.
    """
    max_backtracking_steps = _check_positive_int("max_backtracking_steps",
                                                 max_backtracking_steps)
    slope_rtol = float(_checks.check_number("slope_rtol", slope_rtol, low=0.0))
    decrease_factor = float(_checks.check_number("decrease_factor", decrease_factor, low=0.0,
                                                 low_open=True))
    if not (isinstance(increase_factor, (int, float, np.floating)) and increase_factor > 0):
        raise ValueError(f"increase_factor: expected a number > 0 (inf allowed), "
                         f"got {increase_factor!r}")
    increase_factor = float(increase_factor)
    max_learning_rate = float(_checks.check_number("max_learning_rate", max_learning_rate,
                                                   low=0.0, low_open=True))
    atol = float(_checks.check_number("atol", atol, low=0.0))
    rtol = float(_checks.check_number("rtol", rtol, low=0.0))
    store_grad = _checks.check_bool("store_grad", store_grad)
    verbose = _checks.check_bool("verbose", verbose)
    owner = "scale_by_backtracking_linesearch"

    def init_fn(params):
        lay, _ = _flat.layout_of(params)
        P = _real_dtype(lay)
        return ScaleByBacktrackingLinesearchState(
            learning_rate=P.type(1.0), value=P.type(np.inf),
            grad=lay.views(lay.full(0)) if store_grad else None,
            info=BacktrackingLinesearchInfo(num_linesearch_steps=I64(0),
                                            decrease_error=P.type(np.inf)))

    def decrease_error(stepsize, slope, value, new_value):
        return kls.armijo_error_rule(stepsize, slope, value, new_value,
                                        type(value)(1.0 + rtol), type(stepsize)(slope_rtol))

    def update_fn(updates, state, params=None, *, value=None, grad=None, value_fn=None,
                  grad_fn=None, value_and_grad_fn=None, **extra_args):
        lay, u, p, g = _inputs(owner, updates, state, ScaleByBacktrackingLinesearchState,
                               params, value, grad)
        objective = Objective(owner, value_fn, grad_fn, value_and_grad_fn, extra_args,
                              warn_fd=store_grad)
        P = _real_dtype(lay)
        V = _value_dtype(value)
        value = V.type(value)
        line = _Line(lay, p, u, objective)
        slope = tree_dot(line.plan, u, g)
        lr = np.minimum(increase_factor * P.type(state.learning_rate), max_learning_rate)
        new_value, new_grad, err, it = value, None, F64(np.inf), 0
        with np.errstate(all="ignore"):
            while not (err <= atol) and it <= max_backtracking_steps:
                lr = decrease_factor * lr if it > 0 else lr
                nv = line.value(lr)
                err = F64(decrease_error(lr, slope, value, nv))
                if store_grad and ((err <= atol) or it == max_backtracking_steps):
                    # the gradient at the accepted (or last) trial, as optax's
                    # linear_transpose of jax.linearize
                    new_grad = line.grad(lr)
                new_value = V.type(nv)
                it += 1
        failed_inf = bool(np.isinf(err))
        if verbose and err > atol:
            print("INFO: optax.scale_by_backtracking_linesearch:\n"
                  "Backtracking linesearch failed to find a stepsize ensuring sufficent "
                  f"decrease.\nValue at current params: {value},\n"
                  f"Slope along update direction: {slope}\nStepsize: {lr}\n"
                  f"Decrease Error: {err}")
            if failed_inf:
                print("Using a stepsize of 0 to avoid infinite or nan values.")
        new_lr = P.type(0.0) if failed_inf else P.type(lr)
        if store_grad:
            grad_out = lay.views(line.cast(new_grad, [grp.dtype for grp in lay.groups])
                                 if new_grad is not None else lay.copy(g))
        else:
            grad_out = None
        new_state = ScaleByBacktrackingLinesearchState(
            learning_rate=new_lr, value=P.type(new_value), grad=grad_out,
            info=BacktrackingLinesearchInfo(num_linesearch_steps=I64(it),
                                            decrease_error=P.type(err)))
        return lay.views(line.scaled(new_lr)), new_state

    return GradientTransformationExtraArgs(init_fn, update_fn,
                                  fusion=_fusion.LineSearch(_arg_checker(owner)))


# ---------------------------------------------------------------------------
# value_and_grad_from_state
# ---------------------------------------------------------------------------

def _tree_get_all(tree, key, out):
    """Values of every namedtuple field / dict key named ``key`` in ``tree``."""
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        for f in tree._fields:
            v = getattr(tree, f)
            if f == key:
                out.append(v)
            else:
                _tree_get_all(v, key, out)
    elif isinstance(tree, dict):
        for k in tree:
            if k == key:
                out.append(tree[k])
            else:
                _tree_get_all(tree[k], key, out)
    elif isinstance(tree, (list, tuple)):
        for v in tree:
            _tree_get_all(v, key, out)
    return out


def tree_get(tree, key, default=None):
    """The unique value under field/key ``key`` in ``tree`` (optax.tree.get):
    ``default`` if there is none, KeyError if there are several."""
    found = _tree_get_all(tree, key, [])
    if not found:
        return default
    if len(found) > 1:
        raise KeyError(f"Found multiple values for '{key}' in {tree}.")
    return found[0]


def value_and_grad_from_state(value_and_grad_fn):
    r"""Value and gradient of the objective, reused from a line search's state.

    optax's ``value_and_grad_from_state(value_fn)`` differentiates
    ``value_fn`` with JAX; npopt has no autodiff, so it takes the function
    returning both: ``value_and_grad_fn(params, *args, **kwargs) -> (value,
    grad)``. The returned callable ``f(params, *args, state, **kwargs)``
    returns the ``value`` and ``grad`` that the line search in ``state``
    (``scale_by_zoom_linesearch``, or ``scale_by_backtracking_linesearch``
    with ``store_grad=True``) computed at the accepted point, which are the
    value and gradient at ``params`` when ``params`` are the ones that step
    produced; when the stored value is not finite (the first step) it calls
    ``value_and_grad_fn``.

    Porting: ``optax.value_and_grad_from_state(f)`` becomes
    ``npopt.value_and_grad_from_state(f_and_grad)``, and the update call
    gains ``value_and_grad_fn=f_and_grad`` (or ``value_fn=f,
    grad_fn=df``)::

        vg = npopt.value_and_grad_from_state(f_and_grad)
        value, grad = vg(params, state=opt_state)
        updates, opt_state = opt.update(grad, opt_state, params, value=value,
                                        grad=grad, value_and_grad_fn=f_and_grad)

    Raises:
      ValueError: when the state holds no ``value`` or ``grad`` (e.g.
        ``store_grad=False``); KeyError when it holds several.
    """
    if not callable(value_and_grad_fn):
        raise TypeError("value_and_grad_fn: expected a callable returning (value, grad), "
                        f"got {value_and_grad_fn!r}")

    def _value_and_grad(params, *fn_args, state, **fn_kwargs):
        value = tree_get(state, "value")
        grad = tree_get(state, "grad")
        if value is None or grad is None:
            raise ValueError(
                "Value or gradient not found in the state. Make sure that these values are "
                "stored in the state by the optimizer.")
        if np.isfinite(value):
            return value, grad
        return value_and_grad_fn(params, *fn_args, **fn_kwargs)

    return _value_and_grad


__all__ = ["BacktrackingLinesearchInfo", "ScaleByBacktrackingLinesearchState",
           "ScaleByZoomLinesearchState", "ZoomLinesearchInfo", "ZoomLinesearchState",
           "scale_by_backtracking_linesearch", "scale_by_zoom_linesearch",
           "value_and_grad_from_state"]
