"""pyproject.toml lists its packages by hand (kernels/ ships as npopt.kernels
through a package-dir mapping), so a new subpackage that is not listed would
be missing from ``pip install .`` while every test here, run from the source
tree, still passes. This checks the list against the tree."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

tomllib = pytest.importorskip("tomllib") if sys.version_info >= (3, 11) else \
    pytest.importorskip("tomli")


def _packages_in_tree():
    found = set()
    base = os.path.join(ROOT, "npopt")
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"
                       and not os.path.islink(os.path.join(dirpath, d))]
        if "__init__.py" in filenames:
            rel = os.path.relpath(dirpath, ROOT)
            found.add(rel.replace(os.sep, "."))
    return found


def test_every_subpackage_is_listed_in_pyproject():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        listed = set(tomllib.load(f)["tool"]["setuptools"]["packages"])
    in_tree = _packages_in_tree() | {"npopt.kernels"}   # kernels/: the package-dir mapping
    assert in_tree - listed == set(), "packages missing from pyproject.toml"
    assert listed - in_tree == set(), "pyproject.toml lists packages that do not exist"
