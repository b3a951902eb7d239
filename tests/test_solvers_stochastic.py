"""PolyakSGD, ArmijoSGD and OptaxSolver over fixed minibatches, against
jaxopt 0.8.5's run_iterator (tests/reference/make_solver_reference.py), plus
run_iterator == the manual init_state/update loop, and bad input."""
import json
import os

import numpy as np
import pytest

import npopt
from npopt.solvers import ArmijoSGD, OptaxSolver, PolyakSGD
from reference import solver_problems as sp

DATA = os.path.join(os.path.dirname(__file__), "reference", "data", "jaxopt", "solvers.npz")
Z = np.load(DATA)
META = json.loads(str(Z["meta"]))["cases"]
B = sp.batches()
CLASSES = dict(PolyakSGD=PolyakSGD, ArmijoSGD=ArmijoSGD, OptaxSolver=OptaxSolver)


def _solver(name, **extra):
    cls, kw, _ = sp.STOCH_CASES[name]
    kw = dict(kw)
    if "opt" in kw:
        kw["opt"] = eval(kw["opt"], {"ox": npopt})
    return CLASSES[cls](fun=sp.batch_logreg_np, value_and_grad=True, **kw, **extra)


@pytest.mark.parametrize("name", sorted(sp.STOCH_CASES))
def test_run_iterator_matches_jaxopt(name):
    epochs = sp.STOCH_CASES[name][2]
    sol, state = _solver(name).run_iterator(np.zeros(12), iter(B * epochs), sp.STOCH_L2REG)
    ref = META[name]
    want = Z[f"{name}/params_0"]
    assert int(state.iter_num) == ref["iter_num"]
    assert np.max(np.abs(sol - want)) / np.max(np.abs(want)) <= 1e-8
    assert float(state.value) == pytest.approx(ref["value"], rel=1e-8)
    assert float(state.error) == pytest.approx(ref["error"], rel=1e-8)


@pytest.mark.parametrize("name", ["polyak_sgd", "armijo_sgd", "optax_adam"])
def test_run_iterator_is_the_manual_loop(name):
    solver = _solver(name)
    sol, state = solver.run_iterator(np.zeros(12), iter(B), sp.STOCH_L2REG)
    params = np.zeros(12)
    s = solver.init_state(params, sp.STOCH_L2REG, data=B[0])
    for batch in B[1:]:
        params, s = solver.update(params, s, sp.STOCH_L2REG, data=batch)
    np.testing.assert_array_equal(sol, params)
    assert int(state.iter_num) == int(s.iter_num) == len(B) - 1


def test_deterministic_run_converges():
    X = np.concatenate([b[0] for b in B])
    y = np.concatenate([b[1] for b in B])
    solver = PolyakSGD(fun=sp.logreg_np, value_and_grad=True, maxiter=2000, tol=1e-6,
                       fun_min=0.0, max_stepsize=1.0)
    # fun_min = 0 underestimates f* for this non-separable problem, so SPS_max
    # is capped; compare with plain gradient descent's solution
    w, state = solver.run(np.zeros(12), 0.05, X, y)
    w_gd, _ = npopt.GradientDescent(sp.logreg_np, value_and_grad=True, tol=1e-10).run(
        np.zeros(12), 0.05, X, y)
    assert state.error <= 1e-6 or int(state.iter_num) == 2000
    np.testing.assert_allclose(w, w_gd, atol=1e-4)


def test_empty_iterator_is_refused():
    with pytest.raises(ValueError, match="iterator: expected at least one batch"):
        _solver("polyak_sgd").run_iterator(np.zeros(12), iter([]), sp.STOCH_L2REG)


@pytest.mark.parametrize("cls, kw, match", [
    (PolyakSGD, dict(variant="sps"), "variant: expected 'SPS_max' or 'SPS\\+'"),
    (PolyakSGD, dict(max_stepsize=0.0), "max_stepsize: expected a finite number"),
    (PolyakSGD, dict(momentum=-0.1), "momentum: expected a finite number"),
    (ArmijoSGD, dict(aggressiveness=1.0), "aggressiveness: expected a finite number in \\(0.0, 1.0\\)"),
    (ArmijoSGD, dict(reset_option="always"), "reset_option: expected one of"),
    (OptaxSolver, dict(opt=None), "opt: expected a GradientTransformation"),
])
def test_bad_hyperparameters(cls, kw, match):
    if cls is OptaxSolver:
        with pytest.raises(TypeError, match=match):
            cls(fun=sp.batch_logreg_np, **kw)
        return
    with pytest.raises(ValueError, match=match):
        cls(fun=sp.batch_logreg_np, **kw)

