"""npopt's names at optax's dotted path, against optax 0.2.8's own list.

``tests/reference/data/optax_api.json`` is made by
``tests/reference/make_api_reference.py`` (optax 0.2.8): every public name
of the ``optax`` module, its kind and its parameters. Here, without JAX:

* coverage does not go back: at least ``COVERED`` of optax's top-level
  names exist at ``npopt.<name>`` (the rest is issue 14's work);
* every name npopt has takes optax's parameters, in optax's order, of the
  same kinds and with the same defaults; npopt may add parameters after
  them, with defaults (``GradientTransformation``'s ``fusion``);
* the departures npopt makes on purpose are listed in ``DEPARTURES``, with
  the reason, and still are departures (so the list cannot go stale).
"""
import inspect
import json
import os
import re
import typing

import numpy as np
import pytest

import npopt

DATA = os.path.join(os.path.dirname(__file__), "reference", "data", "optax_api.json")
with open(DATA) as _f:
    OPTAX = json.load(_f)["names"]

COVERED = 161       # optax 0.2.8 has 224 public top-level names

DEPARTURES = {
    "value_and_grad_from_state": "npopt has no autodiff: it takes value_and_grad_fn, a "
                                 "function returning (value, grad), where optax takes "
                                 "value_fn and differentiates it",
}


def _default(text):
    """A default's repr made comparable: jax.numpy's dtypes are NumPy's, and
    functions and objects compare by name, not address."""
    if text is None:
        return None
    text = text.replace("jax.numpy.", "numpy.")
    text = re.sub(r" at 0x[0-9a-f]+", "", text)
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


def test_coverage_does_not_go_back():
    have = sorted(n for n in OPTAX if hasattr(npopt, n))
    assert len(have) >= COVERED, (len(have), sorted(set(OPTAX) - set(have)))


@pytest.mark.parametrize("name", sorted(n for n in OPTAX if hasattr(npopt, n)))
def test_same_signature_as_optax(name):
    ref = OPTAX[name]
    obj = getattr(npopt, name)
    if ref["kind"] == "module":
        assert inspect.ismodule(obj)
        return
    if ref["kind"] == "typing":          # a type alias: usable in annotations
        assert typing.get_origin(obj) is not None, obj
        return
    assert callable(obj), name
    if ref.get("params") is None:
        return
    mine = _params(obj)
    theirs = ref["params"]
    differs = (mine is None or [m[:2] for m in mine[:len(theirs)]] != [t[:2] for t in theirs]
               or [_default(m[2]) for m in mine[:len(theirs)]]
               != [_default(t[2]) for t in theirs]
               or any(m[2] is None and m[1] not in ("VAR_POSITIONAL", "VAR_KEYWORD")
                      for m in mine[len(theirs):]))
    if name in DEPARTURES:
        assert differs, f"{name} now matches optax: drop it from DEPARTURES"
        return
    assert not differs, f"{name}: optax {theirs}\n npopt {mine}"


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
    """optax's top-level schedules and moment helpers are npopt's own."""
    assert npopt.cosine_decay_schedule is npopt.schedules.cosine_decay_schedule
    assert npopt.update_moment is npopt.tree.tree_update_moment
    assert npopt.bias_correction is npopt.tree.tree_bias_correction
    assert isinstance(npopt.scale_by_learning_rate(None).init({}), npopt.EmptyState)
