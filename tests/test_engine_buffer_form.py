"""Numba objectives that write into a buffer (``fun(x, g, *args) -> value``,
a map ``fun(x, out, *args)``: the form CUDA lanes need) on the CPU's
compiled drivers: the same numbers as the returning form, single and
batched; a clear error where only the Python driver could run them."""
import numpy as np
import pytest
from numba import njit

import npopt
from npopt.examples import problems as P


def data(seed=0, B=None):
    rng = np.random.default_rng(seed)
    lead = () if B is None else (B,)
    return rng.normal(size=lead + (40, 6)), rng.normal(size=lead + (40,))


@pytest.mark.parametrize("make", [
    lambda f: npopt.LBFGS(fun=f, value_and_grad=True, tol=1e-8),
    lambda f: npopt.BFGS(fun=f, value_and_grad=True, tol=1e-8),
    lambda f: npopt.NonlinearCG(fun=f, value_and_grad=True, tol=1e-7),
    lambda f: npopt.GradientDescent(fun=f, value_and_grad=True, tol=1e-6, maxiter=300)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_buffer_form_equals_the_returning_form(make, dtype):
    X, y = (a.astype(dtype) for a in data())
    x0 = np.zeros(6, dtype)
    into = make(P.ridge_into).run(x0, X, y, 0.1)
    ret = make(P.ridge).run(x0, X, y, 0.1)
    if dtype == np.float64:          # (float32: ridge's gradient is float64, then cast)
        np.testing.assert_array_equal(into.params, ret.params)
        assert into.state.iter_num == ret.state.iter_num
    else:                            # the same problem, rounded otherwise
        np.testing.assert_allclose(into.params, ret.params, rtol=0, atol=1e-3)
    XB, yB = (a.astype(dtype) for a in data(1, B=7))
    batch = npopt.vmap(make(P.ridge_into).run, in_axes=(None, 0, 0, None))(x0, XB, yB, 0.1)
    for i in range(7):
        single = make(P.ridge_into).run(x0, XB[i], yB[i], 0.1)
        np.testing.assert_array_equal(batch.params[i], single.params)


def test_buffer_form_map_and_grad():
    M = np.random.default_rng(3).uniform(0, 6, size=5)

    def kepler(E, M, e):
        out = np.empty_like(E)
        P.kepler_into(E, out, M, e)
        return out
    for solver in (npopt.FixedPointIteration, npopt.AndersonAcceleration):
        a = solver(fixed_point_fun=P.kepler_into, tol=1e-10).run(np.zeros(5), M, 0.7)
        b = solver(fixed_point_fun=kepler, tol=1e-10).run(np.zeros(5), M, 0.7)
        np.testing.assert_array_equal(a.params, b.params)
        assert a.state.iter_num == b.state.iter_num

    @njit
    def value(w, X, y, lam):
        g = np.empty_like(w)
        return P.ridge_into(w, g, X, y, lam)
    X, y = data(4)
    a = npopt.LBFGS(fun=value, grad=P.ridge_into, tol=1e-8).run(np.zeros(6), X, y, 0.1)
    b = npopt.LBFGS(fun=P.ridge, value_and_grad=True, tol=1e-8).run(np.zeros(6), X, y, 0.1)
    np.testing.assert_array_equal(a.params, b.params)
    assert a.state.num_grad_eval == b.state.num_grad_eval


def test_buffer_form_where_the_python_driver_would_run_is_refused():
    X, y = data()
    s = npopt.LBFGS(fun=P.ridge_into, value_and_grad=True)
    with pytest.raises(TypeError, match="writes into a buffer"):
        s.run({"w": np.zeros(6)}, X, y, 0.1)                 # a pytree
    with pytest.raises(TypeError, match="writes into a buffer"):
        s.run(np.zeros(6), X, y, lam=0.1)                    # a keyword argument
    with pytest.raises(TypeError, match="writes into a buffer"):
        npopt.LBFGS(fun=P.ridge_into, value_and_grad=True, verbose=True).run(
            np.zeros(6), X, y, 0.1)
    with pytest.raises(TypeError, match="pass value_and_grad=True"):
        npopt.LBFGS(fun=P.ridge_into, grad=P.ridge_into).run(np.zeros(6), X, y, 0.1)
