"""V1 gradient checker on user functions: right gradients pass, wrong ones fail, broken
user code gives a report (never an exception)."""
import numpy as np

from refpg.verify.gradient import verify_gradient

X = np.array([0.3, -0.8, 1.7])


def f(x):
    return np.sum(np.log1p(np.exp(x))) + x[0] * x[2]


def grad(x):  # by hand
    g = 1 / (1 + np.exp(-x))
    g[0] += x[2]
    g[2] += x[0]
    return g


def test_right_gradient_passes_with_both_methods():
    rep = verify_gradient(f, grad, X)
    assert rep.passed, str(rep)
    assert set(rep.checks) == {"complex", "central"}


def test_wrong_gradient_fails_and_names_the_component():
    def wrong(x):
        g = grad(x)
        g[2] -= x[0]  # forgot the cross term's second half
        return g

    rep = verify_gradient(f, wrong, X)
    assert not rep.passed
    assert rep.checks["complex"].worst_index == (2,)
    assert "FAILED" in str(rep)


def test_real_only_function_falls_back_to_central_differences():
    def f_real(x):
        return float(np.sum(np.asarray(x, dtype=float) ** 2))  # drops imaginary parts

    rep = verify_gradient(f_real, lambda x: 2 * x, X)
    assert rep.passed, str(rep)
    assert "central" in rep.checks and "complex" not in rep.checks
    assert any("complex step not available" in p for p in rep.problems)


def test_broken_user_code_gives_a_failed_report():
    assert not verify_gradient(lambda x: 1 / 0, grad, X).passed
    assert not verify_gradient(f, lambda x: np.zeros(2), X).passed
    assert not verify_gradient(f, lambda x: np.full(3, np.nan), X).passed
    rep = verify_gradient(lambda x: np.nan, grad, X)
    assert not rep.passed and "non-finite" in rep.problems[0]


def test_jacobian_of_vector_function():
    fv = lambda x: np.array([x[0] * x[1], np.sin(x[2])])
    jac = lambda x: np.array([[x[1], x[0], 0.0], [0.0, 0.0, np.cos(x[2])]])
    assert verify_gradient(fv, jac, X).passed
