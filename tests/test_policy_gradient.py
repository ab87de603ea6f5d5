"""refpg.policy_gradient: the exact policy gradient (PG1)-(PG3) for every tabular-capable policy.

Independent routes: the complex-step derivative of ``eta(theta)`` and of
``J_H(theta)`` (relative error <= 1e-10; the policy table flows as complex128
through refpg.evaluation's linear solves), central differences within the error
their step predicts, and the score-table form (PG1) against the
vector-Jacobian-product form (PG2). MDPs and parameters come from
refpg.strategies, with gamma up to 0.99, gamma = 1 episodic, and finite horizons
with gamma = 1; plus every case of the hard-case registry.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from refpg import FiniteMDP
from refpg.evaluation import evaluate, evaluate_finite_horizon
from refpg.policies import LinearSoftmaxPolicy, MLPSoftmaxPolicy, TabularSoftmaxPolicy
from refpg.policy_gradient import (eta, exact_finite_horizon_gradient, exact_policy_gradient,
                                   finite_horizon_objective, policy_table)
from refpg.strategies import TABULAR_KINDS, hard_cases, mdps, policy_and_theta
from refpg.testing import check_gradient

GAMMAS = st.sampled_from([0.0, 0.5, 0.9, 0.99]) | st.floats(0.0, 0.99)


def _rounding_floor(mdp, policy, theta, horizon=None):
    """Absolute rounding of the exact gradient: ``1e-13 sum(rho) max|Q| max|J|``.

    (PG2) multiplies ``A = Q - V``, whose rounding is ``~eps |Q|`` absolute, by
    ``rho pi`` and ``J``; when the true gradient is ~0 (one action, zero rewards) that
    absolute error is all that is left, and a purely relative tolerance would demand
    more than float64 holds. It is 1e-13 of the natural scale, so a wrong formula
    still fails.
    """
    pi = policy.probs_table(theta)
    if horizon is None and mdp.horizon is None:
        ev = evaluate(mdp, pi)
        rho, Q = ev.rho, ev.Q
    else:
        fh = evaluate_finite_horizon(mdp, pi, horizon)
        rho, Q = fh.rho, fh.Q
    J = policy.logits_jacobian(theta, np.arange(mdp.n_states))
    return 1e-13 * np.sum(np.abs(rho)) * np.max(np.abs(Q)) * np.max(np.abs(J)) + 1e-30


def _check_both(f, theta, grad, floor):
    """Complex step (rel <= 1e-10) and central differences (predicted error) of ``f``."""
    # floor: the analytic route's own absolute rounding (see _rounding_floor); it also
    # covers the complex step's h^2 |third derivative|/6 ~ 1e-40 when the gradient is 0
    res = check_gradient(f, theta, grad, method="complex",
                         atol=1e-10 * np.max(np.abs(grad), initial=0.0) + floor)
    assert res.passed, str(res)
    res = check_gradient(f, theta, grad, method="central",
                         atol=1e-12 * np.max(np.abs(grad), initial=0.0) + floor)
    assert res.passed, str(res)


@pytest.mark.parametrize("kind", TABULAR_KINDS)
@given(data=st.data())
def test_exact_policy_gradient_matches_complex_step_and_central_differences(kind, data):
    mdp = data.draw(mdps(gamma=GAMMAS, terminal=st.integers(0, 1)))
    policy, theta = data.draw(policy_and_theta(mdp, kinds=kind))
    g = exact_policy_gradient(mdp, policy, theta)
    assert g.shape == (policy.n_params,) and g.dtype == np.float64
    _check_both(lambda t: eta(mdp, policy, t), theta, g, _rounding_floor(mdp, policy, theta))


@pytest.mark.parametrize("kind", TABULAR_KINDS)
@given(data=st.data())
def test_exact_policy_gradient_episodic_gamma_one(kind, data):
    # gamma = 1 with terminal states: mdps() makes every non-terminal row reach the first
    # terminal state, so every softmax policy is proper and eta is finite
    mdp = data.draw(mdps(n_states=st.integers(2, 5), gamma=1.0, terminal=st.integers(1, 2)))
    policy, theta = data.draw(policy_and_theta(mdp, kinds=kind))
    _check_both(lambda t: eta(mdp, policy, t), theta, exact_policy_gradient(mdp, policy, theta),
                _rounding_floor(mdp, policy, theta))


@pytest.mark.parametrize("kind", TABULAR_KINDS)
@given(data=st.data())
def test_exact_finite_horizon_gradient_matches_complex_step_including_gamma_one(kind, data):
    gamma = st.sampled_from([1.0, 0.0]) | GAMMAS
    mdp = data.draw(mdps(gamma=gamma, horizon=st.integers(1, 8), terminal=st.integers(0, 1)))
    policy, theta = data.draw(policy_and_theta(mdp, kinds=kind))
    g = exact_finite_horizon_gradient(mdp, policy, theta)
    _check_both(lambda t: finite_horizon_objective(mdp, policy, t), theta, g,
                _rounding_floor(mdp, policy, theta))
    # an explicit horizon overrides mdp.horizon
    H = mdp.horizon + 2
    _check_both(lambda t: finite_horizon_objective(mdp, policy, t, horizon=H), theta,
                exact_finite_horizon_gradient(mdp, policy, theta, horizon=H),
                _rounding_floor(mdp, policy, theta, horizon=H))


@pytest.mark.parametrize("kind", TABULAR_KINDS)
@given(data=st.data())
def test_score_table_form_equals_the_vjp_form(kind, data):
    # (PG1) sum_s rho(s) sum_a pi grad log pi Q, with every score from grad_log_prob_table,
    # against (PG2), one vector-Jacobian product with rho pi A
    mdp = data.draw(mdps(gamma=GAMMAS))
    policy, theta = data.draw(policy_and_theta(mdp, kinds=kind))
    pi = policy.probs_table(theta)
    ev = evaluate(mdp, pi)
    G = policy.grad_log_prob_table(theta)                  # (S, A, d)
    pg1 = np.einsum("s,sa,sad,sa->d", ev.rho, pi, G, ev.Q)
    g = exact_policy_gradient(mdp, policy, theta)
    # the same sum with Q vs A = Q - V and in another order: rounding ~ eps sum(rho)|Q||J|
    np.testing.assert_allclose(g, pg1, rtol=1e-10, atol=_rounding_floor(mdp, policy, theta))


@pytest.mark.parametrize("name", sorted(hard_cases()))
def test_hard_cases(name):
    case = hard_cases()[name]
    mdp, policy, theta = case.mdp, case.policy, case.theta
    if mdp.horizon is not None:
        f = lambda t: finite_horizon_objective(mdp, policy, t)  # noqa: E731
        g = exact_finite_horizon_gradient(mdp, policy, theta)
    else:
        f = lambda t: eta(mdp, policy, t)  # noqa: E731
        g = exact_policy_gradient(mdp, policy, theta)
    assert np.all(np.isfinite(g))
    floor = _rounding_floor(mdp, policy, theta)
    res = check_gradient(f, theta, g, method="complex",
                         atol=1e-10 * np.max(np.abs(g), initial=0.0) + floor)
    assert res.passed, str(res)
    if name == "single-action":
        # one action: the policy does not depend on theta; only A = Q - V rounding is left
        assert np.all(np.abs(g) <= floor)


def test_finite_horizon_gradient_tends_to_the_infinite_horizon_gradient():
    # |grad J_H - grad eta| -> 0 geometrically (the tail of (PG1) beyond H): with gamma = 0.5
    # and H = 60 the tail is below 0.5^60 * (scale) ~ 1e-18
    rng = np.random.default_rng(3)
    S, A = 4, 3
    mdp = FiniteMDP(P=rng.dirichlet(np.ones(S), size=(S, A)), r=rng.normal(size=(S, A)),
                    rho0=np.full(S, 0.25), gamma=0.5)
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    theta = rng.normal(size=S * A)
    np.testing.assert_allclose(exact_finite_horizon_gradient(mdp, policy, theta, horizon=60),
                               exact_policy_gradient(mdp, policy, theta), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(finite_horizon_objective(mdp, policy, theta, horizon=60),
                               eta(mdp, policy, theta), rtol=1e-13, atol=0)
    fh = evaluate_finite_horizon(mdp, policy_table(mdp, policy, theta), 60)
    assert fh.p.shape == (60, S)


def test_arguments_are_checked():
    rng = np.random.default_rng(4)
    mdp = FiniteMDP(P=rng.dirichlet(np.ones(3), size=(3, 2)), r=np.zeros((3, 2)),
                    rho0=np.full(3, 1 / 3), gamma=0.9)
    with pytest.raises(TypeError, match="tabular-capable"):
        eta(mdp, LinearSoftmaxPolicy.for_observations(2, 2), np.zeros(6))
    mlp = MLPSoftmaxPolicy(2, 2)
    with pytest.raises(TypeError, match="tabular-capable"):
        exact_policy_gradient(mdp, mlp, np.zeros(mlp.n_params))
    with pytest.raises(ValueError, match="policy is for"):
        eta(mdp, TabularSoftmaxPolicy(3, 3), np.zeros(9))
    with pytest.raises(ValueError, match="theta"):
        exact_policy_gradient(mdp, TabularSoftmaxPolicy(3, 2), np.zeros(5))
    with pytest.raises(TypeError, match="FiniteMDP"):
        eta("mdp", TabularSoftmaxPolicy(3, 2), np.zeros(6))
    with pytest.raises(ValueError, match="horizon"):
        finite_horizon_objective(mdp, TabularSoftmaxPolicy(3, 2), np.zeros(6))


@settings(max_examples=10)
@given(data=st.data())
def test_gradient_ascent_direction_increases_eta(data):
    # a sanity property of the sign convention: eta(theta + t g) > eta(theta) for a small t
    mdp = data.draw(mdps(gamma=GAMMAS, n_actions=st.integers(2, 4)))
    policy, theta = data.draw(policy_and_theta(mdp))
    g = exact_policy_gradient(mdp, policy, theta)
    gg = g @ g
    if gg < 1e-12:
        return  # a (near-)stationary point: no direction to test
    t = 1e-4 / np.sqrt(gg)
    # eta(theta + t g) - eta(theta) = t |g|^2 + O(t^2): first order dominates for small t
    assert eta(mdp, policy, theta + t * g) > eta(mdp, policy, theta)


@pytest.mark.parametrize("scale", [10.0, 20.0, 30.0])
def test_exact_gradients_keep_relative_accuracy_for_near_deterministic_policies(scale):
    # logit gaps of 2 * scale: the likely action's probability is 1 - e^-(2 scale), and its
    # advantage (1 - pi) (Q_a - Q_b) vanishes in Q - V (V rounds to Q_a). The reference is
    # a 60-digit decimal enumeration of every trajectory (tests/estimator_problems.py), so
    # 1e-12 of the gradient's norm is float64 rounding with a wide margin (measured ~2e-15).
    from estimator_problems import decimal_gradient
    from refpg import random_mdp

    mdp = random_mdp(np.random.default_rng(1), 2, 2, gamma=0.9, horizon=3)
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    theta = scale * np.array([1.0, -1.0, -0.8, 0.9])
    want = decimal_gradient(mdp, theta, 3)
    got = exact_finite_horizon_gradient(mdp, policy, theta)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * np.linalg.norm(want))


def test_exact_policy_gradient_of_a_near_deterministic_bandit_is_the_closed_form():
    # one state, gamma = 1/2, r = (1, 2), pi = (1 - delta, delta): eta = (1 + delta) / (1 - gamma),
    # so d eta / d z = pi_0 pi_1 (r_1 - r_0) / (1 - gamma) (-1, 1) = 2 delta (1 - delta) (-1, 1),
    # with delta = 1 / (1 + e^40) computed in closed form. Q - V would give 0 for action 0.
    mdp = FiniteMDP(P=np.ones((1, 2, 1)), r=[[1.0, 2.0]], rho0=[1.0], gamma=0.5)
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    theta = np.array([40.0, 0.0])
    delta = math.exp(-40.0) / (1.0 + math.exp(-40.0))
    want = 2.0 * delta * (1.0 - delta) * np.array([-1.0, 1.0])
    np.testing.assert_allclose(exact_policy_gradient(mdp, policy, theta), want, rtol=1e-14)
    A = evaluate(mdp, policy.probs_table(theta)).A
    # A(., 0) = pi_1 (Q_0 - Q_1) = -delta; A(., 1) = pi_0 (Q_1 - Q_0) = 1 - delta
    np.testing.assert_allclose(A, [[-delta, 1.0 - delta]], rtol=1e-14)
