"""Bad input gets a clear error naming the argument, before any buffer is touched."""
import numpy as np
import pytest

import npopt
from npopt.tree import tree_leaves


def _params():
    return {"w": np.ones((3, 2), np.float32), "b": np.zeros(2, np.float32)}


def _snapshot(*trees):
    return [np.array(x, copy=True) for t in trees for x in tree_leaves(t)]


def _unchanged(before, *trees):
    after = [np.asarray(x) for t in trees for x in tree_leaves(t)]
    return len(before) == len(after) and all(np.array_equal(a, b) for a, b in zip(before, after))


@pytest.mark.parametrize("lr", [-1.0, float("nan"), float("inf"), "0.1"])
def test_bad_learning_rate(lr):
    with pytest.raises(ValueError, match="learning_rate: expected a finite number >= 0"):
        npopt.adam(lr)


@pytest.mark.parametrize("make,arg", [
    (lambda: npopt.adam(0.1, b1=1.5), "b1"),
    (lambda: npopt.adam(0.1, b2=-0.1), "b2"),
    (lambda: npopt.adam(0.1, eps=-1.0), "eps"),
    (lambda: npopt.rmsprop(0.1, decay=2.0), "decay"),
    (lambda: npopt.adagrad(0.1, initial_accumulator_value=-1.0), "initial_accumulator_value"),
    (lambda: npopt.adamw(0.1, weight_decay=float("nan")), "weight_decay"),
    (lambda: npopt.sgd(0.1, momentum=float("inf")), "momentum"),
])
def test_bad_hyperparameters_name_the_argument(make, arg):
    with pytest.raises(ValueError, match=f"^{arg}: expected"):
        make()


def test_bad_flags_and_dtypes():
    with pytest.raises(TypeError, match="nesterov: expected True or False"):
        npopt.adam(0.1, nesterov="yes")
    with pytest.raises(TypeError, match="mu_dtype: expected None, float32, float64, float16 or bfloat16"):
        npopt.adam(0.1, mu_dtype=np.int32)


@pytest.mark.parametrize("opt", [npopt.adam(0.1), npopt.sgd(0.1, momentum=0.9),
                                 npopt.rmsprop(0.1), npopt.adagrad(0.1), npopt.lamb(0.1)])
@pytest.mark.parametrize("path", ["update", "step"])
def test_mismatched_grads_leave_everything_untouched(opt, path):
    params = _params()
    state = opt.init(params)
    bad = [
        ({"w": np.ones((3, 2), np.float32)}, ValueError, "structure of the params"),
        ({"w": np.ones((2, 3), np.float32), "b": np.zeros(2, np.float32)}, ValueError,
         r"leaf 1 has shape \((2, 3|3, 2)\), expected"),
        # float64 grads for float32 params are promoted as optax does
        # (tests/test_step_safety.py); complex ones (for real params) are refused
        ({"w": np.ones((3, 2), np.complex128), "b": np.zeros(2, np.float32)}, TypeError,
         "complex128"),
    ]
    for grads, exc, msg in bad:
        before = _snapshot(params, state)
        with pytest.raises(exc, match=msg):
            if path == "update":
                opt.update(grads, state, params)
            else:
                opt.step(params, grads, state)
        assert _unchanged(before, params, state)


def test_integer_and_complex_params_are_rejected():
    with pytest.raises(TypeError, match="expected floating-point leaves"):
        npopt.adam(0.1).init({"w": np.ones(3, np.int64)})
    # complex params: accepted by the rules with optax's complex semantics
    # (tests/test_complex_reference.py), refused with a reason by the others
    with pytest.raises(TypeError, match=r"complex params are not supported by this rule"):
        npopt.lion(0.1).init([np.ones(3, np.complex128)])


@pytest.mark.parametrize("opt", [npopt.adam(0.1), npopt.sgd(0.1, momentum=0.9),
                                 npopt.rmsprop(0.1), npopt.adagrad(0.1)])
def test_complex_grads_for_real_params_are_refused(opt):
    # optax promotes the moments to complex and its apply_updates drops the
    # imaginary part; npopt refuses before anything is written
    params = {"w": np.ones(3)}
    state = opt.init(params)
    with pytest.raises(TypeError, match="complex and real leaves do not mix"):
        opt.update({"w": np.ones(3, np.complex128)}, state, params)
    with pytest.raises(TypeError, match="complex128"):
        opt.step(params, {"w": np.ones(3, np.complex128)}, state)
    assert np.all(params["w"] == 1)


def test_state_from_another_optimizer():
    params = _params()
    grads = {"w": np.ones((3, 2), np.float32), "b": np.ones(2, np.float32)}
    rms_state = npopt.sgd(0.1, momentum=0.9).init(params)
    adam = npopt.adam(0.1)
    before = _snapshot(params, rms_state)
    with pytest.raises(TypeError, match="state: expected a ScaleByAdamState"):
        adam.update(grads, rms_state, params)
    with pytest.raises(TypeError, match="state: expected a ScaleByAdamState"):
        adam.step(params, grads, rms_state)
    assert _unchanged(before, params, rms_state)
    with pytest.raises(TypeError, match="state: expected the 2-tuple"):
        adam.update(grads, npopt.rmsprop(0.1).init(params), params)


def test_state_with_wrong_shapes():
    params = _params()
    grads = {"w": np.ones((3, 2), np.float32), "b": np.ones(2, np.float32)}
    other = npopt.adam(0.1).init({"w": np.ones((3, 3), np.float32), "b": np.zeros(2, np.float32)})
    with pytest.raises(ValueError, match=r"state.mu: leaf 1 has shape \(3, 3\)"):
        npopt.adam(0.1).update(grads, other, params)


def test_needs_params():
    with pytest.raises(ValueError, match="params: this transformation needs the current params"):
        npopt.adamw(0.1).update({"w": np.ones(2)}, npopt.adamw(0.1).init({"w": np.ones(2)}))
