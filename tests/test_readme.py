"""The README's Python examples run as shown, one after the other in one
namespace (as a reader pastes them into one session). The example that
needs a CUDA device (``cuda.to_device``) runs only where numba sees one."""
import os
import re

import pytest

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def _blocks():
    with open(README) as f:
        text = f.read()
    return [m.group(1) for m in re.finditer(r"^ *```python\n(.*?)^ *```", text, re.M | re.S)]


def _has_device():
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return False               # the simulator would run 1000 lanes in Python
    try:
        from numba import cuda
        return cuda.is_available()
    except Exception:          # noqa: BLE001
        return False


def test_readme_examples_run():
    blocks = _blocks()
    assert len(blocks) >= 5
    ns = {}
    ran = 0
    for code in blocks:
        lines = code.splitlines()
        indent = min(len(x) - len(x.lstrip()) for x in lines if x.strip())
        code = "\n".join(x[indent:] for x in lines)
        if "cuda.to_device" in code and not _has_device():
            continue
        exec(compile(code, "README.md", "exec"), ns)   # noqa: S102
        ran += 1
    assert ran >= 4
    # what the examples claim
    assert ns["params"]["w"].shape == (20, 3)
    assert ns["state"] is not None


@pytest.mark.parametrize("name", ["grad_fn", "batches", "X", "y", "ridge"])
def test_readme_examples_define_what_they_use(name):
    """(The first review found `batches`, `grad_fn`, `X` and `y` undefined.)"""
    text = "\n".join(_blocks())
    assert re.search(rf"^(def {name}\b|{name}\b.*=|.*, {name}\b.* =)", text, re.M), name
