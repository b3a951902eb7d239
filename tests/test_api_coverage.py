"""npopt's names at optax's and jaxopt's dotted paths, against their own lists.

``tests/reference/data/api.json`` is made by
``tests/reference/make_api_reference.py`` (optax 0.2.8, jaxopt 0.8.5): every
public name of every public module of both, its kind and its parameters.
Here, without JAX:

* every name is at npopt's corresponding path (``PATHS``), except those
  listed in ``NOT_YET`` (issue 14's remaining work), and a listed name that
  now exists fails the test (the list cannot go stale);
* every name npopt has takes the peer's parameters, in the peer's order, of
  the same kinds and with the same defaults; npopt may add parameters after
  them, with defaults (``GradientTransformation``'s ``fusion``), and may
  name the keywords that a peer's ``**kwargs`` forwards;
* the departures npopt makes on purpose are listed in ``DEPARTURES`` with
  the reason, and still are departures.

With optax and jaxopt installed (the ``reference`` extra) the stored list is
also checked against the installed packages.
"""
import importlib
import inspect
import json
import os
import re
import typing

import numpy as np
import pytest

import npopt

DATA = os.path.join(os.path.dirname(__file__), "reference", "data", "api.json")
with open(DATA) as _f:
    _API = json.load(_f)
PEERS = _API["modules"]

# the peer's module -> npopt's; the rest map optax.X / jaxopt.X to npopt.X
PATHS = {
    "optax": "npopt", "jaxopt": "npopt",
    "optax.tree_utils": "npopt.tree_utils", "optax.tree": "npopt.tree",
    "jaxopt.tree_util": "npopt.tree_util", "jaxopt.base": "npopt.base",
}


def npopt_path(module):
    return PATHS[module] if module in PATHS else "npopt." + module.split(".", 1)[1]


# Names not (yet) at their path, module by module: none since issue 14 (every
# public name of optax 0.2.8 and jaxopt 0.8.5 is at its path). A name a newer
# optax adds goes here until it is built.
NOT_YET = {}

DEPARTURES = {
    ("optax", "value_and_grad_from_state"):
        "npopt has no autodiff: it takes value_and_grad_fn, a function returning "
        "(value, grad), where optax takes value_fn and differentiates it",
    ("optax.microbatching", "micro_vmap"):
        "vmap_fn defaults to npopt.microbatching.loop_vmap, a loop over the examples, "
        "where optax's is jax.vmap",
    ("jaxopt.perturbations", "make_perturbed_fun"):
        "npopt.perturbations is optax's module (optax and jaxopt both call theirs "
        "perturbations): optax's use_baseline=True where jaxopt has control_variate=False",
    ("jaxopt.implicit_diff", "custom_root"):
        "solve=None picks CG (symmetric optimality Jacobians) or GMRES with tolerances "
        "from the dtype; jaxopt's default, CG on the normal equations, squares the "
        "condition number (solve_normal_cg is still accepted)",
    ("jaxopt.implicit_diff", "custom_fixed_point"): "as custom_root",
    ("jaxopt.implicit_diff", "root_jvp"): "as custom_root",
    ("jaxopt.implicit_diff", "root_vjp"): "as custom_root",
    ("jaxopt.objective", "multiclass_linear_svm_dual"):
        "jaxopt's (params, *args, **kwargs) is its decorator's wrapper; npopt names "
        "the arguments it takes, (params, l2reg, data)",
}


def _default(text):
    """A default's repr made comparable: jax.numpy's dtypes are NumPy's,
    functions and objects compare by name, not address, and a sentinel
    ("no initializer") is a sentinel."""
    if text is None:
        return None
    text = text.replace("jax.numpy.", "numpy.")
    text = re.sub(r" at 0x[0-9a-f]+", "", text)
    text = re.sub(r"^<[\w.]* ?object>$", "<sentinel>", text)
    text = text.replace("GradientTransformationExtraArgs(", "GradientTransformation(")
    return text


def _params(obj):
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    return [[p.name, p.kind.name,
             None if p.default is inspect.Parameter.empty else repr(p.default)]
            for p in sig.parameters.values()]


def signature_differs(obj, theirs):
    """Whether npopt's ``obj`` departs from the peer's parameter list."""
    mine = _params(obj)
    if mine is None:
        return True
    forwards = bool(theirs) and theirs[-1][1] == "VAR_KEYWORD"
    if forwards:                        # **kwargs: npopt may name what it forwards
        theirs = theirs[:-1]
    head, tail = mine[:len(theirs)], mine[len(theirs):]
    if ([m[:2] for m in head] != [t[:2] for t in theirs]
            or [_default(m[2]) for m in head] != [_default(t[2]) for t in theirs]):
        return True
    return any(default is None and kind not in ("VAR_POSITIONAL", "VAR_KEYWORD")
               for _, kind, default in tail)


def _resolve(path):
    obj = npopt
    for part in path.split(".")[1:]:
        try:
            obj = getattr(obj, part)
        except AttributeError:
            try:
                obj = importlib.import_module(obj.__name__ + "." + part)
            except ImportError:
                return None
    return obj


def missing_names(module):
    mine = _resolve(npopt_path(module))
    return sorted(n for n in PEERS[module] if mine is None or not hasattr(mine, n))


def _present():
    for module, names in sorted(PEERS.items()):
        mine = _resolve(npopt_path(module))
        for name in sorted(names):
            if mine is not None and hasattr(mine, name):
                yield module, name


@pytest.mark.parametrize("module", sorted(PEERS))
def test_every_name_is_at_its_path(module):
    missing = set(missing_names(module))
    listed = set(NOT_YET.get(module, ()))
    assert not missing - listed, f"{module}: missing at {npopt_path(module)}: {sorted(missing - listed)}"
    assert not listed - missing, f"{module}: now present, drop from NOT_YET: {sorted(listed - missing)}"


@pytest.mark.parametrize("module,name", list(_present()))
def test_same_signature_as_the_peer(module, name):
    ref = PEERS[module][name]
    obj = getattr(_resolve(npopt_path(module)), name)
    if ref["kind"] == "module":
        assert inspect.ismodule(obj)
        return
    if ref["kind"] == "typing":          # a type alias: usable in annotations
        assert typing.get_origin(obj) is not None or isinstance(obj, type), obj
        return
    assert callable(obj), name
    if ref.get("params") is None:
        return
    differs = signature_differs(obj, ref["params"])
    if (module, name) in DEPARTURES:
        assert differs, f"{module}.{name} now matches: drop it from DEPARTURES"
        return
    assert not differs, f"{module}.{name}: peer {ref['params']}\n npopt {_params(obj)}"


def test_departures_name_existing_names():
    for module, name in DEPARTURES:
        assert name in PEERS[module], (module, name)


def test_stored_list_is_current():
    """With the ``reference`` extra installed: api.json is what optax and
    jaxopt say now (else regenerate it)."""
    pytest.importorskip("optax")
    pytest.importorskip("jaxopt")
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "reference"))
    import make_api_reference as m
    for path in m.MODULES:
        assert m.public(m.import_path(path)) == PEERS[path], path


def test_type_names_annotate():
    """optax's type names work in annotations of ported code."""
    def update(updates: npopt.Updates, state: npopt.OptState,
               params: npopt.Params = None) -> tuple:
        return updates, state
    hints = typing.get_type_hints(update)      # the recursive alias resolves
    for k in ("updates", "state", "params"):
        assert np.ndarray in typing.get_args(hints[k]) and float in typing.get_args(hints[k])
    lr: npopt.ScalarOrSchedule = npopt.linear_schedule(1.0, 0.0, 10)
    assert callable(lr) and isinstance(npopt.adam(lr), npopt.GradientTransformation)


def test_top_level_spellings_are_the_same_objects():
    """optax's several spellings of one function are one npopt object."""
    assert npopt.cosine_decay_schedule is npopt.schedules.cosine_decay_schedule
    assert npopt.update_moment is npopt.tree.tree_update_moment
    assert npopt.bias_correction is npopt.tree.tree_bias_correction
    assert npopt.tree_utils.tree_get is npopt.tree.tree_get is npopt.tree.get
    assert isinstance(npopt.scale_by_learning_rate(None).init({}), npopt.EmptyState)


def test_signature_rule_catches_differences():
    """The comparison itself: a renamed, reordered or re-defaulted
    parameter, or a new one without a default, is a difference."""
    theirs = [["a", "POSITIONAL_OR_KEYWORD", None], ["b", "POSITIONAL_OR_KEYWORD", "1"]]
    assert not signature_differs(lambda a, b=1, c=2: 0, theirs)
    assert signature_differs(lambda a, c=1: 0, theirs)
    assert signature_differs(lambda b=1, a=None: 0, theirs)
    assert signature_differs(lambda a, b=2: 0, theirs)
    assert signature_differs(lambda a, b=1, c=None, *, d: 0, theirs)
    fwd = theirs + [["kwargs", "VAR_KEYWORD", None]]
    assert not signature_differs(lambda a, b=1, *, tol=1e-5: 0, fwd)
    assert not signature_differs(lambda a, b=1, **kw: 0, fwd)
    assert signature_differs(lambda a, b=1, *, tol: 0, fwd)


def _extra_args_cases():
    for expr, marked in sorted(_API["extra_args"].items()):
        name = expr[3:].split("(")[0].split(".")[0]
        if hasattr(npopt, name):        # a missing name fails the coverage test
            yield expr, marked


@pytest.mark.parametrize("expr,marked", list(_extra_args_cases()))
def test_extra_args_class_is_optaxs(expr, marked):
    """What optax builds as a GradientTransformationExtraArgs, npopt does
    (and both are GradientTransformations)."""
    tx = eval(expr, {"ox": npopt})
    assert isinstance(tx, npopt.GradientTransformation)
    assert isinstance(tx, npopt.GradientTransformationExtraArgs) == marked


def test_with_extra_args_support_keeps_npopts_update():
    tx = npopt.scale(2.0)
    wrapped = npopt.with_extra_args_support(tx)
    assert isinstance(wrapped, npopt.GradientTransformationExtraArgs)
    assert wrapped.update is tx.update and wrapped.fusion is tx.fusion
    assert npopt.with_extra_args_support(wrapped) is wrapped
    foreign = (lambda p: (), lambda u, s, p=None: (u, s))         # a plain pair
    u, _ = npopt.with_extra_args_support(foreign).update(1.0, (), None, value=3.0)
    assert u == 1.0


# jaxopt's solver classes: public attributes npopt's do not have, on purpose
CLASS_DEPARTURES = {
    ("LevenbergMarquardt", "update_state_using_delta_params"):
        "a step of jaxopt's own update over its internal tuple of (params, damping, "
        "residual, jac, jt, jtj, ...); npopt's update is organised differently",
    ("LevenbergMarquardt", "update_state_using_gain_ratio"): "as update_state_using_delta_params",
    ("OSQP", "matvec_A_box"):
        "jaxopt's internal field (its BoxOSQP reformulation's operator), None on every "
        "OSQP a user builds",
}


def call_compatible(obj, theirs):
    """Whether every call the peer's method accepts means the same to
    npopt's: the same parameter names in the same order, the peer's defaults
    kept; npopt may give a default to a parameter the peer requires, and may
    name what the peer's ``*args``/``**kwargs`` take (or take ``*args``/
    ``**kwargs`` where the peer names them)."""
    mine = [m for m in (_params(obj) or []) if m[0] != "self"]
    theirs = [t for t in theirs if t[0] != "self"]
    var = ("VAR_POSITIONAL", "VAR_KEYWORD")
    for m, t in zip(mine, theirs):
        if m[1] in var or t[1] in var:
            return True
        if m[:2] != t[:2] or (t[2] is not None and _default(m[2]) != _default(t[2])):
            return False
    if len(mine) > len(theirs):
        return all(m[2] is not None or m[1] in var for m in mine[len(theirs):])
    return len(mine) == len(theirs)


@pytest.mark.parametrize("cls", sorted(_API["jaxopt_class_attributes"]))
def test_solver_classes_have_jaxopts_attributes(cls):
    """jaxopt's solver classes' public methods and fields, callable the same way."""
    ref = _API["jaxopt_class_attributes"][cls]
    mine = getattr(npopt, cls)
    missing = {a for a in ref if not hasattr(mine, a)}
    on_purpose = {a for c, a in CLASS_DEPARTURES if c == cls}
    assert missing == on_purpose, (cls, sorted(missing ^ on_purpose))
    for a, rec in ref.items():
        if a in missing or rec.get("params") is None:
            continue
        assert call_compatible(getattr(mine, a), rec["params"]), (
            f"{cls}.{a}: jaxopt {rec['params']}\n npopt {_params(getattr(mine, a))}")


def test_call_compatibility_rule():
    theirs = [["self", "POSITIONAL_OR_KEYWORD", None], ["x", "POSITIONAL_OR_KEYWORD", None],
              ["tol", "POSITIONAL_OR_KEYWORD", "0.1"]]
    assert call_compatible(lambda self, x=None, tol=0.1, extra=2: 0, theirs)
    assert not call_compatible(lambda self, x, tol=0.2: 0, theirs)
    assert not call_compatible(lambda self, y, tol=0.1: 0, theirs)
    assert not call_compatible(lambda self, x: 0, theirs)
    assert not call_compatible(lambda self, x, tol=0.1, extra=None, *, more: 0, theirs)
    assert call_compatible(lambda self, x, *args, **kwargs: 0, theirs)
