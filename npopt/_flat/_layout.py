"""Layouts: a tree as one flat buffer per dtype, for the kernels.

A ``Layout`` records a tree's structure and, per dtype, one *group*: the
leaves of that dtype laid end to end in a 1-D buffer, with the segment table
(offset and shape of every leaf) that per-leaf rules (lamb's trust ratio,
block RMS clipping, ...) need. Most trees have a single dtype and so a single
group; a float32/float64 mix gets two, and each keeps its dtype.

Buffers made here are handed back to the user as trees of *views* into
them. When such a tree comes back (the state or params of the next step),
``gather`` recognises it and uses the buffer as it is: the steady state of
``step`` copies nothing.

What a fused ``step`` needs on top of that (``params_in_place``,
``grads_for``, ``Layout.bind``) lives here too, so that every fused rule
makes the same checks, before its first kernel:

* params: scalars (Python or NumPy) and non-contiguous leaves are copied
  (the step then returns new arrays), read-only leaves are refused;
* grads: structure, shapes, host/device, and dtypes; integer, boolean and
  Python-scalar gradients take the params' dtype (as JAX's promotion does
  in every rule but plain sgd, whose update alone is computed in float64),
  a float dtype other than the params' raises ``Promote`` (the step then
  runs ``update`` + ``apply_updates``, which promote as optax does);
* state: structure, shapes, dtypes (``Promote`` again for another float
  dtype), read-only leaves, and *consumption*. ``step`` works in place and
  consumes the state it is given, like a donated buffer in JAX: a consumed
  state raises ``ConsumedStateError`` when it comes back (to ``step`` or
  ``update``). The mark is one token per state field: the field's first
  leaf is recorded (by identity, weakly) once the step has passed its
  checks, and the new state holds a fresh view in its place. It costs two
  dict operations and one ``ndarray.view`` per field.
"""
import weakref
from typing import NamedTuple, Tuple

import numpy as np

from .. import _target
from .._checks import FLOAT_DTYPES, INEXACT_DTYPES, fail_leaf_dtype, is_narrow
from ..tree._structure import _LEAF, _key_str, tree_flatten, tree_unflatten


class Promote(TypeError):
    """A grads or state leaf of another float dtype than the fused kernels
    expect. Raised before any buffer is touched; ``GradientTransformation.step``
    catches it and runs ``update`` + ``apply_updates`` instead, which promote
    dtypes as optax does (float32 params with float64 grads get float64
    moments and updates, rounded back to float32 by ``apply_updates``)."""


class DtypeMismatch(TypeError):
    """A leaf of the other float dtype than ``update`` expects, in a
    transformation whose ``update`` does not promote dtypes as optax does."""


class NarrowLeaves(TypeError):
    """float16/bfloat16 leaves where a rule's kernels take float32/float64
    ones. Raised before any buffer is touched; ``GradientTransformation``
    then runs the transformation through float32 (``npopt._narrow``)."""


class ConsumedStateError(ValueError):
    """A state that ``step`` consumed (updated in place) was used again."""


def leaf_path(treedef, i):
    """The path of leaf ``i`` of ``treedef`` (``"['w'][0]"``), "" for a bare leaf."""
    spec, parts = treedef._spec, []
    if i < 0 or i >= treedef.num_leaves:
        return ""

    def count(s):
        if s is _LEAF:
            return 1
        return sum(count(k) for k in s[2])
    while spec is not _LEAF:
        t, aux, kids = spec
        for k, kid in enumerate(kids):
            n = count(kid)
            if i < n:
                parts.append(_key_str(t, aux, k))
                spec = kid
                break
            i -= n
        else:  # pragma: no cover - i is in range
            return ""
    return "".join(parts)


def _at(treedef, i):
    p = leaf_path(treedef, i)
    return f" at {p}" if p else ""


# -- consumed states ------------------------------------------------------
_CONSUMED = {}      # id(token leaf) -> weak reference to it


def _prune(table, alive):
    """Drops the entries of dead objects (an id is only trusted while its
    weak reference is alive, so dead entries are harmless until pruned)."""
    for k in [k for k, e in list(table.items()) if not alive(e)]:
        table.pop(k, None)


def mark_consumed(leaf, ref=None):
    """Records that the state field whose first leaf is ``leaf`` was consumed
    (``ref``: a weak reference to ``leaf`` the caller already holds)."""
    r = ref
    if r is None:
        try:
            r = weakref.ref(leaf)
        except TypeError:          # an object without weak references: not tracked
            return
    if len(_CONSUMED) >= _PRUNE_AT[0]:
        _prune(_CONSUMED, lambda r: r() is not None)
        _PRUNE_AT[0] = max(1024, 2 * len(_CONSUMED))
    _CONSUMED[id(leaf)] = r


_PRUNE_AT = [1024]


def is_consumed(leaf):
    r = _CONSUMED.get(id(leaf))
    return r is not None and r() is leaf


def bind_custom(tree, name, bufs, rebuild, target):
    """``Layout.bind`` for a state field gathered by its own code (per-leaf
    scalars, per-axis accumulators): checks that ``tree`` was not consumed
    and that the buffers the kernels will overwrite are writable; returns
    ``(new_tree, token)``, new_tree = ``rebuild(bufs)`` (fresh views)."""
    leaves = tree_flatten(tree)[0]
    first = leaves[0] if leaves else None
    if first is not None and is_consumed(first):
        _fail_consumed(name)
    if not target.device:
        for i, x in enumerate(leaves):
            if isinstance(x, np.ndarray) and not x.flags.writeable:
                raise ValueError(
                    f"{name}: leaf {i} is read-only; step updates the state in place: pass "
                    f"a writable copy (npopt.tree.tree_map(np.array, state)) or use update()")
    if first is None:
        return tree, None
    return rebuild(bufs), first


# -- what a state was made for ---------------------------------------------
_ORIGIN = {}        # id(first leaf of a state field) -> (weak reference, key)


def set_origin(leaf, key):
    """Records what the state holding ``leaf`` was made for (e.g. the params'
    shapes, where the state's own shapes cannot tell)."""
    try:
        r = weakref.ref(leaf)
    except TypeError:
        return
    if len(_ORIGIN) >= 1024:
        _prune(_ORIGIN, lambda e: e[0]() is not None)
    _ORIGIN[id(leaf)] = (r, key)


def origin_of(leaf):
    """What ``set_origin`` recorded for ``leaf``, or None."""
    e = _ORIGIN.get(id(leaf))
    if e is not None and e[0]() is leaf:
        return e[1]
    return None


def _fail_consumed(name):
    raise ConsumedStateError(
        f"{name}: this state was consumed by an earlier step(), which updates the "
        f"state in place (like a donated buffer in JAX) and returns the new one; "
        f"use the state that step returned (or a copy made before the step), or "
        f"update() + apply_updates(), which never modify their inputs")


class Group(NamedTuple):
    """The leaves of one dtype, laid end to end."""
    dtype: np.dtype
    leaf_ids: Tuple[int, ...]      # positions in the tree's leaf order
    offsets: Tuple[int, ...]       # len(leaf_ids) + 1 offsets into the buffer
    shapes: Tuple[tuple, ...]
    size: int

    @property
    def segments(self):
        """Per-leaf (start, stop) offsets as an int64 array of shape (k, 2)."""
        o = np.asarray(self.offsets, np.int64)
        return np.stack([o[:-1], o[1:]], axis=1)


class Layout:
    """Structure, shapes, dtypes and groups of a pytree of arrays."""

    __slots__ = ("treedef", "shapes", "dtypes", "groups", "target", "num_leaves", "complex",
                 "narrow")

    def __init__(self, treedef, shapes, dtypes, target):
        self.treedef = treedef
        self.shapes = shapes
        self.dtypes = dtypes
        self.target = target
        self.num_leaves = len(shapes)
        groups = []
        for dt in dict.fromkeys(dtypes):           # first-appearance order
            ids = tuple(i for i, d in enumerate(dtypes) if d == dt)
            offsets = [0]
            for i in ids:
                offsets.append(offsets[-1] + int(np.prod(shapes[i], dtype=np.int64)))
            groups.append(Group(dt, ids, tuple(offsets), tuple(shapes[i] for i in ids),
                                offsets[-1]))
        self.groups = tuple(groups)
        self.complex = any(g.dtype.kind == "c" for g in groups)
        self.narrow = any(is_narrow(g.dtype) for g in groups)

    # -- buffers ---------------------------------------------------------
    def full(self, value, dtype=None):
        """One new buffer per group filled with value (dtype overrides the group's)."""
        return [self.target.full(g.size, value, dtype or g.dtype) for g in self.groups]

    def empty(self, dtype=None):
        return [self.target.empty(g.size, dtype or g.dtype) for g in self.groups]

    def copy(self, bufs):
        """New buffers holding copies of ``bufs`` (one per group)."""
        out = []
        for b in bufs:
            c = self.target.empty(b.shape[0], b.dtype)
            self.target.copy_into(c, b)
            out.append(c)
        return out

    def views(self, bufs):
        """The tree whose leaves are views into ``bufs`` (one buffer per group)."""
        leaves = [None] * self.num_leaves
        for g, buf in zip(self.groups, bufs):
            off = g.offsets
            for k, i in enumerate(g.leaf_ids):
                leaves[i] = buf[off[k]:off[k + 1]].reshape(g.shapes[k])
                if self.target.device:
                    leaves[i]._npopt_base = buf   # device views do not know their base
            if not self.target.device and len(g.leaf_ids) > 1:
                _remember_views(buf, off, [leaves[i] for i in g.leaf_ids])
        fast = self.treedef.fast()
        return fast[1](leaves) if fast is not None else tree_unflatten(self.treedef, leaves)

    def gather(self, tree, name, dtype_of=None, ref="params"):
        """Flat buffers (one per group) holding ``tree``'s leaves.

        ``tree`` must have this layout's structure and shapes (a ValueError
        names ``name`` otherwise). Leaves must have the group's dtype, or
        ``dtype_of[group index]`` when given (states with their own dtype).
        Zero-copy when the leaves are views laid out as ``views`` makes them.
        """
        return self.gather_report(tree, name, dtype_of, ref=ref)[0]

    def gather_report(self, tree, name, dtype_of=None, leaves=None, ref="params"):
        """(buffers, copied): copied is True when a buffer had to be assembled.

        ``leaves``: the tree's leaves when already known (from ``layout_of``).
        ``ref``: what the layout was made from, for messages ("updates" in
        ``update``)."""
        if leaves is None:
            leaves = self.leaves_of(tree, name, ref)
        bufs, copied = [], False
        for gi, g in enumerate(self.groups):
            dt = g.dtype if dtype_of is None else dtype_of[gi]
            buf, c = _gather_group(g, leaves, dt, name, self.target, self.treedef, ref=ref)
            bufs.append(buf)
            copied = copied or c
        return bufs, copied

    def gather_promoted(self, tree, name, min_dtypes=None, ref="params", own=False):
        """(buffers, dtypes) of a state field in ``update``, promoted as optax
        (jnp) would: group ``gi``'s buffer has the dtype promoting
        ``min_dtypes[gi]`` (default: the group's dtype; with ``own``, none:
        the leaves' own dtype) with its leaves' dtypes. Leaves of another
        dtype are converted (copied)."""
        leaves = self.leaves_of(tree, name, ref)
        bufs, dts = [], []
        for gi, g in enumerate(self.groups):
            if own and g.leaf_ids:
                dt = np.dtype(leaves[g.leaf_ids[0]].dtype)
            else:
                dt = np.dtype(g.dtype if min_dtypes is None else min_dtypes[gi])
            for i in g.leaf_ids:
                ldt = leaves[i].dtype
                if ldt != dt:
                    if not _inexact(ldt):
                        fail_leaf_dtype(f"{name} (leaf {i}{_at(self.treedef, i)})", ldt, name)
                    if (np.dtype(ldt).kind == "c") != (g.dtype.kind == "c"):
                        _fail_mixed(name, i, self.treedef, ldt, ref, g.dtype)
                    dt = np.promote_types(dt, ldt)
            bufs.append(self.gather_group_as(gi, leaves, dt, name, ref))
            dts.append(dt)
        return bufs, dts

    def gather_group_as(self, gi, leaves, dtype, name, ref="params"):
        """Group ``gi``'s buffer of ``leaves``, converted to ``dtype`` where needed."""
        g = self.groups[gi]
        if any(leaves[i].dtype != dtype for i in g.leaf_ids):
            if self.target.device:
                raise TypeError(
                    f"{name}: leaves of dtype {leaves[g.leaf_ids[0]].dtype} where "
                    f"{dtype} is needed; npopt does not convert dtypes on a CUDA device: "
                    f"give grads and state the params' dtype")
            leaves = list(leaves)
            for i in g.leaf_ids:
                leaves[i] = np.asarray(leaves[i]).astype(dtype)
        return _gather_group(g, leaves, dtype, name, self.target, self.treedef, ref=ref)[0]

    def leaves_of(self, tree, name, ref="params"):
        """Leaves of tree, checked against this layout's structure and shapes.

        ``ref`` names what the layout was made from (in messages). The first
        leaf of a state (``name`` starting with "state") must not have been
        consumed by a step."""
        return self._leaves(tree, name, ref)[0]

    def _leaves(self, tree, name, ref="params"):
        """(leaves, converted): converted is True when a leaf was not an array
        (a Python or NumPy scalar) and was made one."""
        if type(tree) is np.ndarray and self.treedef._spec is _LEAF:     # fast path
            if tree.shape != self.shapes[0]:
                raise ValueError(
                    f"{name}: leaf 0 has shape {tree.shape}, expected {self.shapes[0]} "
                    f"(the shape of the matching {ref} leaf)")
            if name[:5] == "state" and is_consumed(tree):
                _fail_consumed(name)
            return [tree], False
        leaves = _cut(self.treedef, tree)
        if leaves is None:
            try:
                leaves = self.treedef.flatten_up_to(tree)
            except (ValueError, TypeError) as e:
                also = (" (the state and the updates do not match: the state was made "
                        "by init for other params, or the updates do not have the "
                        "params' structure)" if ref == "updates" and name[:5] == "state"
                        else "")
                raise ValueError(
                    f"{name}: expected a tree with the structure of the {ref} "
                    f"{self.treedef}, got {tree_flatten(tree)[1]}{also}") from e
        converted = False
        for i, (x, shape) in enumerate(zip(leaves, self.shapes)):
            if _needs_array(x):
                if not isinstance(x, (bool, int, float, complex, np.generic)):
                    raise TypeError(
                        f"{name}: leaf {i}{_at(self.treedef, i)} is a "
                        f"{type(x).__name__}, expected an array or a number")
                leaves[i] = x = np.asarray(x)
                converted = True
            if x.shape != shape:
                raise ValueError(
                    f"{name}: leaf {i} has shape {x.shape}, expected {shape} "
                    f"(the shape of the matching {ref} leaf{_at(self.treedef, i)})")
        if leaves and name[:5] == "state" and is_consumed(leaves[0]):
            _fail_consumed(name)
        return leaves, converted

    # -- fused steps ------------------------------------------------------
    def bind(self, tree, name, dtype_of=None):
        """A state field for a fused step, which overwrites it in place.

        Returns ``(bufs, new_tree, token)``: the flat buffers (one per group)
        the kernels may overwrite, the tree to put in the new state (views of
        those buffers, with a fresh first leaf), and the leaf to mark
        consumed once every check of the step has passed (None for a tree
        without leaves). Raises, before anything is written: ValueError
        (structure, shapes, a read-only leaf, a consumed state), TypeError
        (a non-float leaf) or ``Promote`` (a leaf of the other float dtype).
        """
        if (type(tree) is np.ndarray and self.treedef._spec is _LEAF     # fast path
                and tree.shape == self.shapes[0] and not self.target.device
                and tree.dtype == (self.dtypes[0] if dtype_of is None else dtype_of[0])):
            f = tree.flags
            if f.c_contiguous and f.writeable and not is_consumed(tree):
                return [tree if tree.ndim == 1 else tree.reshape(-1)], tree.view(), tree
        leaves, converted = self._leaves(tree, name)
        bufs, copied = [], converted
        for gi, g in enumerate(self.groups):
            dt = g.dtype if dtype_of is None else dtype_of[gi]
            buf, c = _gather_group(g, leaves, dt, name, self.target, self.treedef, True)
            i = None if self.target.device else _readonly_leaf(g, leaves, buf, c)
            if i is not None:
                raise ValueError(
                    f"{name}: leaf {i}{_at(self.treedef, i)} is read-only; step updates "
                    f"the state in place: pass a writable copy (npopt.tree.tree_map("
                    f"np.array, state)) or use update() + apply_updates()")
            bufs.append(buf)
            copied = copied or c
        if not leaves:
            return bufs, tree, None
        if copied or self.target.device:
            return bufs, self.views(bufs), leaves[0]
        if self.treedef._spec is _LEAF:
            return bufs, leaves[0].view(), leaves[0]
        fresh = list(leaves)
        fresh[0] = leaves[0].view()
        return bufs, tree_unflatten(self.treedef, fresh), leaves[0]


def _fail_mixed(name, i, treedef, dtype, ref, ref_dtype):
    """Complex and real leaves met in one update: optax would promote the
    state to complex and let ``apply_updates`` drop the imaginary part (a
    silent wrong answer); npopt refuses."""
    raise TypeError(
        f"{name}: leaf {i}{_at(treedef, i)} has dtype {dtype} where the {ref} leaf has dtype "
        f"{ref_dtype}; complex and real leaves do not mix (the imaginary part would be "
        f"dropped): give the grads, the params and the state the same kind of dtype")


def _gather_group(g, leaves, dtype, name, target, treedef=None, promote=False,
                  ref="params/state"):
    ids = g.leaf_ids
    for i in ids:
        if leaves[i].dtype != dtype:
            at = _at(treedef, i) if treedef is not None else ""
            if ref == "params":
                ref = "params/state"
            if promote and _inexact(leaves[i].dtype):
                raise Promote(f"{name}: leaf {i}{at} has dtype {leaves[i].dtype}, "
                              f"expected {dtype}")
            mismatch = (DtypeMismatch if _inexact(leaves[i].dtype) and _inexact(dtype)
                        else TypeError)
            if ref == "updates":        # update(): the updates disagree with params/state
                raise mismatch(
                    f"{name}: leaf {i}{at} has dtype {leaves[i].dtype}, expected {dtype} (the "
                    f"dtype the updates call for); this transformation does not promote "
                    f"dtypes as optax would: give the updates (grads) the params' dtype")
            raise mismatch(
                f"{name}: leaf {i} has dtype {leaves[i].dtype}, expected {dtype} "
                f"(the dtype of the matching {ref} leaf{at})")
    if len(ids) == 1:
        x = leaves[ids[0]]
        if target.device or x.flags.c_contiguous:
            return (x if x.ndim == 1 else x.reshape(-1)), False
        return np.ascontiguousarray(x).reshape(-1), True
    base = _base_buffer(g, leaves, dtype, target)
    if base is not None:
        return base, False
    buf = target.empty(g.size, dtype)
    for k, i in enumerate(ids):
        if g.offsets[k + 1] > g.offsets[k]:
            target.copy_into(buf[g.offsets[k]:g.offsets[k + 1]], leaves[i].reshape(-1))
    return buf, True


def _readonly_leaf(g, leaves, buf, copied):
    """The first read-only leaf of group g, or None. A step refuses them even
    when it would work on a copy (a non-contiguous leaf), so that read-only
    params or state fail the same way whatever their layout."""
    if not copied and not buf.flags.writeable:
        return g.leaf_ids[0]
    if copied or len(g.leaf_ids) > 1:
        for i in g.leaf_ids:
            x = leaves[i]
            if isinstance(x, np.ndarray) and not x.flags.writeable:
                return i
    return None


def _base_buffer(g, leaves, dtype, target):
    """The buffer ``leaves`` (group g's) are views of, laid out as ``views``
    makes them, or None."""
    return views_base([leaves[i] for i in g.leaf_ids], g.offsets, g.size, dtype,
                      target.device)


def views_base(arrays, offsets, size, dtype, device):
    """The ``(size,)`` buffer of ``dtype`` whose contiguous views ``arrays``
    are, at ``offsets`` (in elements), or None: how a tree of views that
    npopt handed out (params, state) is recognised when it comes back, so
    that a step reuses its buffer instead of copying. Device views carry
    their base as ``_npopt_base`` (numba's device arrays do not know it)."""
    if not arrays:
        return None
    first = arrays[0]
    if device:
        ptr = _target.device_ptr
        base = getattr(first, "_npopt_base", None)
        if base is None or base.shape != (size,) or base.dtype != dtype:
            return None
        if not all(a.is_c_contiguous() for a in arrays):
            return None
    else:
        base = first.base
        if not (type(base) is np.ndarray and base.ndim == 1 and base.shape[0] == size
                and base.dtype == dtype):
            return None
        if not all(type(a) is np.ndarray and a.base is base and a.flags.c_contiguous
                   for a in arrays):
            return None
        return base if _host_views_at(base, arrays, offsets) else None
    b0, isz = ptr(base), base.dtype.itemsize
    # an empty view has no meaningful address (its pointer need not be
    # base + offset): only the others are checked
    if all(a.size == 0 or ptr(a) == b0 + o * isz for a, o in zip(arrays, offsets)):
        return base
    return None


def _host_ptr(x):
    return x.__array_interface__["data"][0]


_AT = {}     # id(base) -> (weak ref to base, offsets, weak refs to the views found there)


def _host_views_at(base, arrays, offsets):
    """Whether each of ``arrays`` (views of ``base``) starts at its offset.

    An address costs ~0.5 us to read (``__array_interface__``), and a tree
    comes back step after step with the same views but one (a state's fresh
    first leaf, see ``mark_consumed``): the views found at their offsets
    last time are remembered (weakly; an array's address cannot change) and
    only the others are read."""
    memo = _AT.get(id(base))
    known = memo[2] if memo is not None and memo[0]() is base and memo[1] == offsets else ()
    refs, b0, isz = [], None, base.dtype.itemsize
    for k, (a, o) in enumerate(zip(arrays, offsets)):
        r = known[k] if k < len(known) else None
        if r is None or r() is not a:
            if a.size:    # an empty view has no meaningful address: not checked
                if b0 is None:
                    b0 = _host_ptr(base)
                if _host_ptr(a) != b0 + o * isz:
                    return False
            r = weakref.ref(a)
        refs.append(r)
    if b0 is not None:            # something new was checked: remember it
        _remember(base, offsets, refs)
    return True


def _remember(base, offsets, refs):
    if len(_AT) >= _PRUNE_AT_VIEWS[0]:
        _prune(_AT, lambda e: e[0]() is not None)
        _PRUNE_AT_VIEWS[0] = max(1024, 2 * len(_AT))
    _AT[id(base)] = (weakref.ref(base), offsets, refs)


def _remember_views(base, offsets, views):
    """Records views that ``Layout.views`` made of ``base`` (at ``offsets``)
    as found there: a state's moments come back at the next call."""
    _remember(base, offsets, [weakref.ref(v) for v in views])


_PRUNE_AT_VIEWS = [1024]


_LAYOUTS = {}


def _needs_array(x):
    """True for a leaf that is not an array: a Python or NumPy scalar."""
    return type(x) is not np.ndarray and (
        isinstance(x, np.generic) or not (hasattr(x, "dtype") and hasattr(x, "shape")))


def _inexact(dtype):
    dt = np.dtype(dtype)
    return dt in INEXACT_DTYPES or is_narrow(dt)


def layout_of(tree, name="params", complex_ok=False, narrow_ok=False):
    """(Layout, leaves) of a tree of float arrays; cached per structure/shapes/dtypes.

    Complex leaves (complex64, complex128) are laid out like float ones, in
    groups of their dtype; a caller whose rule has optax's complex semantics
    says so with ``complex_ok`` (every other caller raises TypeError naming
    the first complex leaf, so that no rule runs on complex numbers it was
    not written for). So do float16 and bfloat16 leaves, with ``narrow_ok``:
    the caller converts their buffers to float32 for its kernels (numba has
    no 16-bit float arithmetic) and rounds the results back."""
    lay, leaves, _ = _layout(tree, name)
    if lay.complex and not complex_ok:
        fail_complex(lay, name)
    if lay.narrow and lay.target.device:
        raise TypeError(f"{name}: float16/bfloat16 CUDA device arrays are not supported (npopt "
                        f"computes 16-bit floats on the host); use float32 device arrays")
    if lay.narrow and not narrow_ok:
        i = next(i for i, d in enumerate(lay.dtypes) if is_narrow(d))
        raise NarrowLeaves(
            f"{name} (leaf {i}{_at(lay.treedef, i)}): got a leaf of dtype {lay.dtypes[i]}; "
            f"float16/bfloat16 {name} are supported by the elementwise rules (adam, sgd, "
            f"rmsprop, ...; README, 'float16 and bfloat16'), not by this one: convert them "
            f"to float32")
    return lay, leaves


def fail_complex(lay, name):
    """TypeError naming ``lay``'s first complex leaf."""
    i = next(i for i, d in enumerate(lay.dtypes) if d.kind == "c")
    fail_leaf_dtype(f"{name} (leaf {i}{_at(lay.treedef, i)})", lay.dtypes[i], name)


_BARE = {}       # (shape, dtype) -> Layout of a bare host array (the fast path)


def _layout(tree, name):
    if type(tree) is np.ndarray:
        lay = _BARE.get((tree.shape, tree.dtype))
        if lay is not None:
            return lay, [tree], False
        lay, leaves, converted = _layout_slow(tree, name)
        if len(_BARE) > 256:
            _BARE.clear()
        _BARE[(tree.shape, tree.dtype)] = lay
        return lay, leaves, converted
    return _layout_slow(tree, name)


def _cut(treedef, tree):
    """``treedef.flatten_up_to(tree)`` by the structure's straight-line cut
    (``TreeDef.fast``), or None where it has none or ``tree`` differs (the
    caller then takes ``flatten_up_to``, which says where)."""
    fast = treedef.fast()
    if fast is None:
        return None
    try:
        return fast[0](tree)
    except Exception:             # noqa: BLE001 - not this structure
        return None


_RECENT = [None]    # the layout of the last tree (not a bare array) made by _layout_slow


def _layout_recent(tree):
    """``(layout, leaves)`` when ``tree`` is, exactly, a tree of host arrays
    of the last layout's structure, shapes and dtypes (what ``tree_flatten``
    and the cache would find, without them), else None."""
    lay = _RECENT[0]
    if lay is None or lay.target.device:
        return None
    leaves = _cut(lay.treedef, tree)
    if leaves is None:
        return None
    for x, shape, dt in zip(leaves, lay.shapes, lay.dtypes):
        if type(x) is not np.ndarray or x.shape != shape or x.dtype != dt:
            return None
    return lay, leaves


def same_layout_leaves(tree, other):
    """``(build, leaves, other_leaves)`` when ``tree`` and ``other`` are both,
    exactly, trees of host arrays of the last layout's structure, shapes
    and dtypes (``build`` makes a tree of that structure from leaves), else
    None: ``apply_updates``'s common case, without its general walk."""
    found = _layout_recent(tree)
    if found is None:
        return None
    lay, leaves = found
    others = _cut(lay.treedef, other)
    if others is None:
        return None
    for x, shape, dt in zip(others, lay.shapes, lay.dtypes):
        if type(x) is not np.ndarray or x.shape != shape or x.dtype != dt:
            return None
    return lay.treedef.fast()[1], leaves, others


def _layout_slow(tree, name):
    found = _layout_recent(tree)
    if found is not None:
        return found[0], found[1], False
    leaves, treedef = tree_flatten(tree)
    converted = False
    for i, x in enumerate(leaves):
        if _needs_array(x):
            leaves[i] = np.asarray(x)
            converted = True
    target = _target.target_of(leaves, name)
    dtypes = tuple(x.dtype for x in leaves)
    shapes = tuple(x.shape for x in leaves)
    key = (treedef, shapes, dtypes, target)
    lay = _LAYOUTS.get(key)
    if lay is None:
        for i, dt in enumerate(dtypes):
            if not _inexact(dt):
                fail_leaf_dtype(f"{name} (leaf {i}{_at(treedef, i)})", dt, name)
        lay = Layout(treedef, shapes, tuple(np.dtype(d) for d in dtypes), target)
        if len(_LAYOUTS) > 256:
            _LAYOUTS.clear()
        _LAYOUTS[key] = lay
    if not converted:
        _RECENT[0] = lay
    return lay, leaves, converted


# ---------------------------------------------------------------------------
# the start of a fused step
# ---------------------------------------------------------------------------

def params_in_place(tree, name="params", complex_ok=False, narrow_ok=False):
    """(layout, buffers, copied) of the params of a fused step.

    The buffers are overwritten with the new params. ``copied`` is True when
    they are not the params' own memory (a scalar leaf, a non-contiguous one,
    leaves not laid out as one buffer): the step must then return new views.
    Read-only leaves raise (ValueError naming the leaf), as do non-float ones.
    """
    lay, leaves, copied = _layout(tree, name)
    if (lay.complex and not complex_ok) or (lay.narrow and not (narrow_ok and not
                                                              lay.target.device)):
        # 16-bit params, and complex ones where the step's kernels are not
        # written for them, take update() + apply_updates() (numba has no
        # 16-bit arithmetic; update refuses complex params or not)
        raise Promote(f"{name}: complex or 16-bit params: the step runs update() + "
                      f"apply_updates()")
    bufs = []
    for g in lay.groups:
        buf, c = _gather_group(g, leaves, g.dtype, name, lay.target, lay.treedef)
        i = None if lay.target.device else _readonly_leaf(g, leaves, buf, c)
        if i is not None:
            raise ValueError(
                f"{name}: leaf {i}{_at(lay.treedef, i)} is read-only; step updates the "
                f"params in place: pass a writable copy (np.array(x)), or use update() + "
                f"apply_updates(), which return new arrays")
        bufs.append(buf)
        copied = copied or c
    return lay, bufs, copied


def grads_for(lay, tree, name="grads"):
    """The gradient buffers of a fused step whose params have layout ``lay``.

    Checks structure, shapes, host/device and dtypes against the params.
    Integer and boolean leaves, and Python numbers (weakly typed in JAX),
    are converted to the params' dtype. A leaf of the other float dtype
    raises ``Promote``: optax promotes (float64 moments and updates for
    float32 params), which the in-place kernels cannot do.
    """
    if (type(tree) is np.ndarray and lay.treedef._spec is _LEAF and not lay.target.device
            and tree.shape == lay.shapes[0] and tree.dtype == lay.dtypes[0]):   # fast path
        return [tree if tree.ndim == 1 and tree.flags.c_contiguous
                else np.ascontiguousarray(tree).reshape(-1)]
    try:
        flat = lay.treedef.flatten_up_to(tree)
    except (ValueError, TypeError) as e:
        raise ValueError(
            f"{name}: expected a tree with the structure of the params "
            f"{lay.treedef}, got {tree_flatten(tree)[1]}") from e
    leaves = list(flat)
    for i, x in enumerate(flat):
        weak = isinstance(x, (bool, int, float))
        if _needs_array(x):
            if not weak and not isinstance(x, np.generic):
                raise TypeError(f"{name}: leaf {i}{_at(lay.treedef, i)} is a "
                                f"{type(x).__name__}, expected an array or a number")
            x = np.asarray(x)
        elif _target.is_device_array(x) != lay.target.device:
            where = "a CUDA device" if lay.target.device else "the host (NumPy)"
            raise TypeError(
                f"{name}: leaf {i}{_at(lay.treedef, i)} is a {type(x).__name__}; the "
                f"params live on {where} and so must the grads (npopt does not copy "
                f"between host and device)")
        if x.shape != lay.shapes[i]:
            raise ValueError(
                f"{name}: leaf {i} has shape {x.shape}, expected {lay.shapes[i]} "
                f"(the shape of the matching params leaf{_at(lay.treedef, i)})")
        dt = lay.dtypes[i]
        if x.dtype != dt:
            kind = np.dtype(x.dtype).kind
            if weak or kind in "biu":
                if lay.target.device:
                    raise TypeError(f"{name}: leaf {i}{_at(lay.treedef, i)} has dtype "
                                    f"{x.dtype}; on a CUDA device grads need the params' "
                                    f"dtype {dt}")
                x = np.asarray(x).astype(dt)
            elif np.dtype(x.dtype) in FLOAT_DTYPES:
                raise Promote(f"{name}: leaf {i}{_at(lay.treedef, i)} has dtype {x.dtype}, "
                              f"the params leaf {dt}")
            else:
                raise TypeError(
                    f"{name}: leaf {i}{_at(lay.treedef, i)} has dtype {x.dtype}; expected the "
                    f"params' dtype {dt}, the other of float32/float64 (promoted as optax "
                    f"does), or an integer or boolean dtype (converted to {dt})")
        leaves[i] = x
    return [_gather_group(g, leaves, g.dtype, name, lay.target, lay.treedef)[0]
            for g in lay.groups]


def check_like(ref, tree, name, ref_name="params"):
    """``tree`` must have ``ref``'s structure and leaf shapes (ValueError naming
    ``name`` otherwise): how ``update`` blames the updates, not the state,
    when the updates do not match the params."""
    a = _layout_recent(ref)
    if a is not None:
        b = _cut(a[0].treedef, tree)
        if b is not None and all(type(x) is np.ndarray and x.shape == s
                                 for x, s in zip(b, a[0].shapes)):
            return
    ref_leaves, treedef = tree_flatten(ref)
    try:
        leaves = treedef.flatten_up_to(tree)
    except (ValueError, TypeError) as e:
        raise ValueError(
            f"{name}: expected a tree with the structure of the {ref_name} {treedef}, "
            f"got {tree_flatten(tree)[1]}") from e
    for i, (a, b) in enumerate(zip(ref_leaves, leaves)):
        sa, sb = np.shape(a), np.shape(b)
        if sa != sb:
            raise ValueError(
                f"{name}: leaf {i} has shape {sb}, expected {sa} (the shape of the "
                f"matching {ref_name} leaf{_at(treedef, i)})")


def overlaps(target, a, b):
    """Whether two flat buffers may share memory."""
    if not target.device:
        return np.may_share_memory(a, b)
    na, nb = a.shape[0] * a.dtype.itemsize, b.shape[0] * b.dtype.itemsize
    if not na or not nb:
        return False
    pa, pb = _target.device_ptr(a), _target.device_ptr(b)
    return pa < pb + nb and pb < pa + na


def as_dtype(target, buf, dtype):
    """``buf`` converted to ``dtype`` (a new buffer), or ``buf`` itself."""
    if buf.dtype == dtype:
        return buf
    if target.device:
        raise TypeError(f"npopt does not convert dtypes on a CUDA device ({buf.dtype} "
                        f"to {dtype}): give grads and state the params' dtype")
    if buf.ndim == 1 and buf.flags.c_contiguous and _F32 in (buf.dtype, dtype) and (
            is_narrow(buf.dtype) or is_narrow(np.dtype(dtype))):
        return _narrow_convert(buf, np.dtype(dtype))
    return buf.astype(dtype)


_F32 = np.dtype(np.float32)
_F16 = np.dtype(np.float16)
_F16_TABLE = []     # the 65536 float16 values as float32, made at first use


NARROW_CHUNK = 1 << 16      # elements converted at a time by narrow_runs (256 KiB of float32)


def narrow_runs(target, kernels, g, moments, dst, args, runs, fused):
    """An elementwise kernel (``kernel(g, *moments, dst, *args, post,
    fused)``, see ``transforms/_elementwise``) over 16-bit host buffers, in
    place: chunk by chunk, ``g``, the moments and ``dst`` are converted to
    float32 scratch arrays, the kernel runs on them, and the moments and
    ``dst`` are rounded back once into their own memory. The chunks stay in
    the cache, so the memory traffic is the 16-bit buffers'."""
    n = min(NARROW_CHUNK, max([b - a for a, b, _ in runs], default=0))
    scratch = [np.empty(n, _F32) for _ in range(len(moments) + 2)]
    for a, b, post in runs:
        for c in range(a, b, n):
            e = min(c + n, b)
            m = e - c
            gs, ds, ms = scratch[0][:m], scratch[1][:m], [s[:m] for s in scratch[2:]]
            _to_f32(g[c:e], gs)
            _to_f32(dst[c:e], ds)
            for x, xs in zip(moments, ms):
                _to_f32(x[c:e], xs)
            target.launch(*kernels, gs, *ms, ds, *args, post, fused)
            _from_f32(ds, dst[c:e])
            for x, xs in zip(moments, ms):
                _from_f32(xs, x[c:e])


def _to_f32(x, out):
    from ..kernels import narrow as k
    if x.dtype == _F16:
        k.f16_to_f32_cpu(x.view(np.uint16), _f16_table(), out)
    else:
        k.bf16_to_f32_cpu(x.view(np.uint16), out.view(np.uint32))


def _from_f32(x, out):
    from ..kernels import narrow as k
    if out.dtype == _F16:
        k.f32_to_f16_cpu(x.view(np.uint32), out.view(np.uint16))
    else:
        k.f32_to_bf16_cpu(x.view(np.uint32), out.view(np.uint16))


def _f16_table():
    if not _F16_TABLE:
        _F16_TABLE.append(np.arange(1 << 16, dtype=np.uint16).view(_F16).astype(_F32))
    return _F16_TABLE[0]


def _narrow_convert(x, dtype):
    """A 1-D float16/bfloat16 buffer to float32 or back, with the bit loops
    of ``kernels/narrow.py`` (the same values as ``astype``, faster)."""
    out = np.empty(x.shape, dtype)
    if x.dtype != _F32:
        _to_f32(x, out)
    else:
        _from_f32(x, out)
    return out


def fresh_copy(target, buf):
    c = target.empty(buf.shape[0], buf.dtype)
    if buf.shape[0]:
        target.copy_into(c, buf)
    return c
