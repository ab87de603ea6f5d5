"""refpg.testing: the numerical derivatives are checked against closed forms.

Test functions have derivatives known in closed form (written in each test), so
every comparison is against an independent route.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from refpg.testing import (central_difference, central_difference_with_error, check_gradient,
                           complex_step)

EPS = np.finfo(float).eps


def f_scalar(x):
    return np.exp(x[0]) * np.sin(x[1]) + x[2] ** 3 / (1.0 + x[0] ** 2)


def grad_scalar(x):  # by hand
    return np.array([np.exp(x[0]) * np.sin(x[1]) - 2 * x[0] * x[2] ** 3 / (1 + x[0] ** 2) ** 2,
                     np.exp(x[0]) * np.cos(x[1]),
                     3 * x[2] ** 2 / (1.0 + x[0] ** 2)])


def f_vector(x):
    return np.array([x[0] * x[1], np.log1p(x[0] ** 2), np.tanh(x[1])])


def jac_vector(x):  # by hand: (out, d)
    return np.array([[x[1], x[0]],
                     [2 * x[0] / (1 + x[0] ** 2), 0.0],
                     [0.0, 1 - np.tanh(x[1]) ** 2]])


points = st.lists(st.floats(-2, 2), min_size=3, max_size=3).map(np.array)


@given(points)
def test_complex_step_is_exact_to_rounding(x):
    # complex step has no subtraction: error is a few ulps of the derivative's scale
    g = grad_scalar(x)
    assert_allclose(complex_step(f_scalar, x), g, rtol=1e-13, atol=1e-13 * np.max(np.abs(g)) + 1e-300)


@given(points)
def test_central_difference_error_is_bounded_by_its_prediction(x):
    d, err = central_difference_with_error(f_scalar, x)
    true_err = np.abs(d - grad_scalar(x))
    # the estimate is of the right order: 10x margin (the check_gradient factor)
    assert np.all(true_err <= 10 * err + 1e-15)


def test_central_difference_truncation_shrinks_like_h_squared():
    x = np.array([0.4, 0.9, -0.7])
    g = grad_scalar(x)
    e1 = np.abs(central_difference(f_scalar, x, step=1e-2) - g)
    e2 = np.abs(central_difference(f_scalar, x, step=5e-3) - g)
    # halving h divides the h^2 f'''/6 term by 4 (up to O(h^4)); 3.5..4.5 allows that
    ratio = e1 / e2
    assert np.all((ratio > 3.5) & (ratio < 4.5)), ratio


def test_jacobian_shapes_and_values():
    x = np.array([0.3, -1.2])
    assert_allclose(complex_step(f_vector, x), jac_vector(x), rtol=1e-13, atol=1e-15)
    d, err = central_difference_with_error(f_vector, x)
    assert d.shape == (3, 2) and err.shape == (3, 2)
    assert np.all(np.abs(d - jac_vector(x)) <= 10 * err + 1e-15)


@pytest.mark.parametrize("method", ["complex", "central"])
def test_check_gradient_passes_the_right_gradient(method):
    x = np.array([0.2, 0.5, -1.0])
    r = check_gradient(f_scalar, x, grad_scalar, method=method)
    assert r.passed, str(r)
    r = check_gradient(f_vector, x[:2], jac_vector, method=method)
    assert r.passed, str(r)


@pytest.mark.parametrize("method", ["complex", "central"])
@pytest.mark.parametrize("bug", ["sign", "factor2", "one_component"])
def test_check_gradient_rejects_wrong_gradients_and_names_the_component(method, bug):
    x = np.array([0.2, 0.5, -1.0])

    def wrong(x):
        g = grad_scalar(x)
        if bug == "sign":
            return -g
        if bug == "factor2":
            return 2 * g
        g = g.copy()
        g[1] += 1e-6 * abs(g[1])  # a 1e-6 relative error in one component
        return g

    r = check_gradient(f_scalar, x, wrong, method=method)
    if bug == "one_component" and method == "central":
        # 1e-6 relative is below what central differences can resolve at the default
        # step (~1e-10 relative): the checker must then still pass it, honestly
        assert r.max_rel_error < 1e-5
        return
    assert not r.passed
    if bug == "one_component":
        assert r.worst_index == (1,)
    assert "FAILED" in str(r) and "FAILED" in r.report()


def test_nan_gradient_fails():
    x = np.array([0.2, 0.5, -1.0])
    r = check_gradient(f_scalar, x, lambda x: np.full(3, np.nan))
    assert not r.passed


def test_complex_step_refuses_functions_that_drop_the_imaginary_part():
    with pytest.raises(TypeError, match="imaginary"):
        complex_step(lambda x: np.real(x[0] ** 2), np.array([1.0]))


def test_bad_arguments():
    with pytest.raises(ValueError, match="x must be a flat vector"):
        complex_step(f_scalar, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="step"):
        central_difference(f_scalar, np.zeros(3), step=-1.0)
    with pytest.raises(ValueError, match="method"):
        check_gradient(f_scalar, np.zeros(3), grad_scalar, method="forward")
    with pytest.raises(ValueError, match="shape"):
        check_gradient(f_scalar, np.zeros(3), np.zeros(2))
