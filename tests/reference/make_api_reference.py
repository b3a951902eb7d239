"""Generate tests/reference/data/optax_api.json: optax 0.2.8's public names.

Regenerate (needs the ``reference`` extra: jax and optax==0.2.8)::

    python tests/reference/make_api_reference.py

For every public name of the ``optax`` module (``dir(optax)`` without a
leading underscore): its ``kind`` ("module", "class", "function", or
"typing" for a type alias), and for classes and functions the parameters
of ``inspect.signature``: ``[name, kind, default]`` with ``kind`` the
``inspect.Parameter`` kind's name and ``default`` the ``repr`` of the
default (None: no default). ``tests/test_api_coverage.py`` compares npopt's
names at the same dotted path against it, without JAX.
"""
import inspect
import json
import os

import optax

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "optax_api.json")


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
                              None if p.default is inspect.Parameter.empty else repr(p.default)]
                             for p in sig.parameters.values()]
    return rec


def main():
    names = sorted(n for n in dir(optax) if not n.startswith("_"))
    data = {"optax_version": optax.__version__,
            "names": {n: describe(getattr(optax, n)) for n in names}}
    with open(OUT, "w") as f:
        json.dump(data, f, indent=0, sort_keys=True)
        f.write("\n")
    print(f"wrote {OUT}: {len(names)} names of optax {optax.__version__}")


if __name__ == "__main__":
    main()
