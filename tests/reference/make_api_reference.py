"""Generate tests/reference/data/api.json: optax 0.2.8's and jaxopt 0.8.5's
public names, module by module.

Regenerate (needs the ``reference`` extra: jax, optax==0.2.8, jaxopt==0.8.5)::

    python tests/reference/make_api_reference.py

For every module of ``MODULES`` and every public name in it (``dir()``
without a leading underscore, less what the module merely imports: other
packages' modules and ``typing``'s own objects): its ``kind`` ("module",
"class", "function", or "typing" for a type alias), and for classes and
functions the parameters of ``inspect.signature``: ``[name, kind, default]``
with ``kind`` the ``inspect.Parameter`` kind's name and ``default`` the
``repr`` of the default, less any memory address (None: no default). ``tests/test_api_coverage.py``
compares npopt's names at the corresponding path against it, without JAX
(and, where optax and jaxopt are installed, checks this file is current).
``extra_args`` records which transformations optax builds as a
``GradientTransformationExtraArgs``, ``jaxopt_class_attributes`` the public
attributes of jaxopt's solver classes.
"""
import importlib
import importlib.metadata
import inspect
import json
import os
import re
import typing

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "api.json")

MODULES = (
    # optax: the top level and every public submodule
    "optax", "optax.transforms", "optax.schedules", "optax.tree_utils", "optax.tree",
    "optax.losses", "optax.projections", "optax.contrib", "optax.assignment",
    "optax.perturbations", "optax.microbatching", "optax.second_order",
    "optax.experimental.aggregating",
    # jaxopt: the top level and every public submodule
    "jaxopt", "jaxopt.base", "jaxopt.cond", "jaxopt.implicit_diff", "jaxopt.isotonic",
    "jaxopt.linear_solve", "jaxopt.loop", "jaxopt.loss", "jaxopt.objective",
    "jaxopt.perturbations", "jaxopt.projection", "jaxopt.prox", "jaxopt.tree_util",
)


def import_path(path):
    """``optax.experimental.aggregating`` is an attribute, not an importable name."""
    head, *rest = path.split(".")
    obj = importlib.import_module(head)
    for part in rest:
        try:
            obj = getattr(obj, part)
        except AttributeError:
            obj = importlib.import_module(obj.__name__ + "." + part)
    return obj


def describe(obj):
    kind = ("module" if inspect.ismodule(obj) else "class" if inspect.isclass(obj)
            else "function" if callable(obj) else "typing")
    rec = {"kind": kind}
    if kind in ("function", "class"):
        try:
            sig = inspect.signature(obj)
        except (TypeError, ValueError):
            rec["params"] = None
        else:
            rec["params"] = [[p.name, p.kind.name,
                              None if p.default is inspect.Parameter.empty
                              else re.sub(r" at 0x[0-9a-f]+", "", repr(p.default))]
                             for p in sig.parameters.values()]
    return rec


def public(module):
    """The names a user of ``module`` reaches: not private, no module but its
    own submodules, not ``typing``'s own objects (``Any``, ``NamedTuple``)."""
    out = {}
    for name in sorted(dir(module)):
        if name.startswith("_"):
            continue
        obj = getattr(module, name)
        if inspect.ismodule(obj) and not obj.__name__.startswith(module.__name__ + "."):
            continue
        if getattr(typing, name, None) is obj:
            continue
        out[name] = describe(obj)
    return out


# Combinators and wrappers, built on small arguments: whether optax returns a
# GradientTransformationExtraArgs (``extra_args`` below).
COMBINATORS = (
    "ox.chain(ox.scale(1.0))", "ox.named_chain(('s', ox.scale(1.0)))",
    "ox.masked(ox.scale(1.0), {'a': True})",
    "ox.multi_transform({'a': ox.scale(1.0)}, {'a': 'a'})",
    "ox.partition({'a': ox.scale(1.0)}, {'a': 'a'})",
    "ox.inject_hyperparams(ox.sgd)(0.1)", "ox.inject_stateful_hyperparams(ox.sgd)(0.1)",
    "ox.apply_if_finite(ox.sgd(0.1), 3)", "ox.MultiSteps(ox.sgd(0.1), 3).gradient_transformation()",
    "ox.with_extra_args_support(ox.scale(1.0))", "ox.add_noise(0.1, 0.5, 0)",
    "ox.flatten(ox.sgd(0.1))", "ox.lookahead(ox.sgd(0.1), 2, 0.5)",
    "ox.conditionally_mask(ox.sgd(0.1), lambda step: True)",
    "ox.conditionally_transform(ox.sgd(0.1), lambda step: True)",
    "ox.selective_transform(ox.sgd(0.1), freeze_mask={'a': True})",
    "ox.monitor({})", "ox.freeze({'a': True})",
)


# functions whose first argument is not a learning rate: built with these
ARGUMENTS = {"scale_by_backtracking_linesearch": "(15)", "scale_by_zoom_linesearch": "(15)",
             "scale_by_schedule": "(lambda count: 0.1)", "freeze": "({'a': True})"}


def extra_args():
    """``{expression: isinstance(optax's result, GradientTransformationExtraArgs)}``
    for every top-level function of optax that builds a transformation from
    no argument or from one learning rate (``ox.adam(0.1)``), and for
    ``COMBINATORS``."""
    import optax
    out = {}
    for name in sorted(dir(optax)):
        f = getattr(optax, name)
        if name.startswith("_") or not inspect.isfunction(f):
            continue
        tries = ([f"ox.{name}{ARGUMENTS[name]}"] if name in ARGUMENTS
                 else [f"ox.{name}()", f"ox.{name}(0.1)"])
        for expr in tries:
            try:
                tx = eval(expr, {"ox": optax})
            except Exception:   # noqa: BLE001 (needs other arguments: not listed)
                continue
            if isinstance(tx, optax.GradientTransformation):
                out[expr] = isinstance(tx, optax.GradientTransformationExtraArgs)
            break
    for expr in COMBINATORS:
        tx = eval(expr, {"ox": optax})
        out[expr] = isinstance(tx, optax.GradientTransformationExtraArgs)
    return out


def class_attributes():
    """``{class: {attribute: description}}`` of jaxopt's solver classes: their
    public methods and class-level fields (what ported code calls on a
    solver), each described as ``describe`` does."""
    import jaxopt
    return {name: {a: describe(getattr(cls, a)) for a in dir(cls) if not a.startswith("_")}
            for name, cls in sorted(vars(jaxopt).items())
            if inspect.isclass(cls) and not name.startswith("_")}


def main():
    data = {"optax_version": importlib.metadata.version("optax"),
            "jaxopt_version": importlib.metadata.version("jaxopt"),
            "modules": {path: public(import_path(path)) for path in MODULES},
            "extra_args": extra_args(),
            "jaxopt_class_attributes": class_attributes()}
    with open(OUT, "w") as f:
        json.dump(data, f, indent=0, sort_keys=True)
        f.write("\n")
    for path, names in data["modules"].items():
        print(f"{path:34s} {len(names):4d} names")


if __name__ == "__main__":
    main()
