"""refpg.identities: performance difference and local approximation (SCOPE N3, N4).

Independent routes: ``eta`` differences from two separate linear solves, the
trajectory form (I3) by enumerating every trajectory of ``pi~`` (itertools,
in this file), derivatives by complex step of ``L(theta)`` and ``eta(theta)``.
"""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from refpg import TabularSoftmaxPolicy, eta, exact_policy_gradient, random_mdp
from refpg.evaluation import evaluate, evaluate_finite_horizon
from refpg.identities import (expected_advantage, finite_horizon_performance_difference,
                              grad_local_approximation_params, local_approximation,
                              local_approximation_params, performance_difference)
from refpg.testing import complex_step


def _problem(seed, S, A, gamma, scale=1.0, **kw):
    rng = np.random.default_rng(seed)
    mdp = random_mdp(rng, S, A, gamma=gamma, **kw)
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    return mdp, policy, policy.init_params(rng, scale=scale), rng


problems = st.tuples(st.integers(0, 2**31 - 1), st.integers(1, 6), st.integers(1, 4),
                     st.sampled_from([0.0, 0.3, 0.9, 0.99]), st.sampled_from([0.1, 1.0, 3.0]))


@given(problems, st.sampled_from([0.01, 0.5, 3.0]))
def test_performance_difference_identity_by_linear_algebra(case, size):
    seed, S, A, gamma, scale = case
    mdp, policy, theta, rng = _problem(seed, S, A, gamma, scale)
    pi = policy.probs_table(theta)
    pi_t = policy.probs_table(theta + size * rng.standard_normal(theta.size))
    lhs = evaluate(mdp, pi_t).eta - evaluate(mdp, pi).eta           # two separate solves
    rhs = performance_difference(mdp, pi, pi_t)                      # A_pi and rho_pi~ only
    # exact linear algebra; the eta's are O(max|r| / (1-gamma)), rounding ~1e-16 of that
    tol = 1e-12 * np.abs(mdp.r).max() / (1.0 - gamma)
    np.testing.assert_allclose(rhs, lhs, rtol=1e-10, atol=tol)
    np.testing.assert_allclose(expected_advantage(mdp, pi, pi), 0.0, rtol=0, atol=tol)


def test_performance_difference_on_an_episodic_mdp_with_gamma_one():
    mdp, policy, theta, rng = _problem(4, 5, 2, 1.0, n_terminal=1)
    pi = policy.probs_table(theta)
    pi_t = policy.probs_table(theta + rng.standard_normal(theta.size))
    np.testing.assert_allclose(performance_difference(mdp, pi, pi_t),
                               evaluate(mdp, pi_t).eta - evaluate(mdp, pi).eta,
                               rtol=1e-10, atol=1e-12)


def _enumerate_advantage_sum(mdp, pi_t, A_t, H):
    """E_{tau ~ pi~}[sum_{t<H} gamma^t A_t(s_t, a_t)] over every (s_0, a_0, ..., s_{H-1}, a_{H-1}).

    ``pi_t``: (S, A) or time-indexed (H, S, A). Plain loops, no refpg code.
    """
    S, A = mdp.n_states, mdp.n_actions
    pis = pi_t if np.ndim(pi_t) == 3 else [pi_t] * H
    total = 0.0
    for states in itertools.product(range(S), repeat=H):
        for actions in itertools.product(range(A), repeat=H):
            p, acc = mdp.rho0[states[0]], 0.0
            for t in range(H):
                s, a = states[t], actions[t]
                if t > 0:
                    p *= mdp.P[states[t - 1], actions[t - 1], s]
                p *= pis[t][s, a]
                acc += mdp.gamma ** t * A_t[t, s, a]
            total += p * acc
    return total


@settings(max_examples=8)
@given(st.integers(0, 2**31 - 1), st.integers(1, 3), st.integers(1, 2), st.integers(1, 3),
       st.sampled_from([0.5, 0.9, 1.0]))
def test_finite_horizon_identity_by_enumerating_trajectories(seed, S, A, H, gamma):
    mdp, policy, theta, rng = _problem(seed, S, A, min(gamma, 0.99), horizon=H)
    mdp = mdp.replace(gamma=gamma)
    pi = policy.probs_table(theta)
    pi_t = policy.probs_table(theta + rng.standard_normal(theta.size))
    A_t = evaluate_finite_horizon(mdp, pi, H).A                     # time-indexed A_{pi,t}
    by_enum = _enumerate_advantage_sum(mdp, pi_t, A_t, H)
    diff = evaluate_finite_horizon(mdp, pi_t, H).J - evaluate_finite_horizon(mdp, pi, H).J
    # enumeration sums (S A)^H products exactly; rounding ~1e-15 of H max|r|
    np.testing.assert_allclose(by_enum, diff, rtol=1e-10, atol=1e-12 * H)
    np.testing.assert_allclose(finite_horizon_performance_difference(mdp, pi, pi_t, H), diff,
                               rtol=1e-10, atol=1e-12 * H)


def test_finite_horizon_identity_time_indexed_policies():
    mdp, policy, theta, rng = _problem(2, 3, 2, 0.9, horizon=3)
    pis = np.stack([policy.probs_table(theta + rng.standard_normal(theta.size))
                    for _ in range(3)])
    pis_t = np.stack([policy.probs_table(theta + rng.standard_normal(theta.size))
                      for _ in range(3)])
    diff = evaluate_finite_horizon(mdp, pis_t).J - evaluate_finite_horizon(mdp, pis).J
    np.testing.assert_allclose(finite_horizon_performance_difference(mdp, pis, pis_t), diff,
                               rtol=1e-10, atol=1e-13)
    by_enum = _enumerate_advantage_sum(mdp, pis_t, evaluate_finite_horizon(mdp, pis).A, 3)
    np.testing.assert_allclose(by_enum, diff, rtol=1e-10, atol=1e-13)


@given(problems)
def test_local_approximation_matches_eta_in_value_and_gradient_at_theta_old(case):
    seed, S, A, gamma, scale = case
    mdp, policy, theta, _ = _problem(seed, S, A, gamma, scale)
    pi = policy.probs_table(theta)
    e = evaluate(mdp, pi).eta
    L = local_approximation(mdp, pi, pi)
    tol = 1e-12 * np.abs(mdp.r).max() / (1.0 - gamma)
    np.testing.assert_allclose(L, e, rtol=1e-12, atol=tol)
    # first derivatives: complex step of L(theta) and of eta(theta), and the PG theorem
    gL = complex_step(lambda t: local_approximation_params(mdp, policy, theta, t), theta)
    ge = complex_step(lambda t: eta(mdp, policy, t), theta)
    g = exact_policy_gradient(mdp, policy, theta)
    # 1e-10 relative to the gradient, plus rounding of the cancellation sum_a pi A = 0,
    # whose terms are of size rho |Q| (this matters when the gradient is ~0, e.g. A = 1)
    ev = evaluate(mdp, pi)
    atol = 1e-10 * np.abs(ge).max() + 1e-13 * np.max(ev.rho[:, None] * np.abs(ev.Q))
    np.testing.assert_allclose(gL, ge, rtol=1e-10, atol=atol)
    np.testing.assert_allclose(gL, g, rtol=1e-10, atol=atol)
    np.testing.assert_allclose(grad_local_approximation_params(mdp, policy, theta, theta), g,
                               rtol=1e-10, atol=atol)


@given(problems, st.integers(0, 2**31 - 1))
def test_grad_local_approximation_matches_complex_step_away_from_theta_old(case, s2):
    seed, S, A, gamma, scale = case
    mdp, policy, theta, _ = _problem(seed, S, A, gamma, scale)
    other = theta + np.random.default_rng(s2).standard_normal(theta.size)
    g = grad_local_approximation_params(mdp, policy, theta, other)
    g_cs = complex_step(lambda t: local_approximation_params(mdp, policy, theta, t), other)
    ev = evaluate(mdp, policy.probs_table(theta))
    atol = 1e-10 * np.abs(g_cs).max() + 1e-13 * np.max(ev.rho[:, None] * np.abs(ev.A))
    np.testing.assert_allclose(g, g_cs, rtol=1e-10, atol=atol)


def test_local_approximation_second_derivative_differs_from_eta():
    mdp, policy, theta, rng = _problem(7, 4, 3, 0.9)
    # Hessians by complex step of the two analytic gradients (each checked above)
    H_L = complex_step(lambda t: grad_local_approximation_params(mdp, policy, theta, t), theta)
    H_eta = complex_step(lambda t: exact_policy_gradient(mdp, policy, t), theta)
    gap = np.abs(H_L - H_eta).max() / np.abs(H_eta).max()
    assert gap > 0.05, gap            # not a rounding effect: an O(1) relative difference
    # and it is what governs eta - L along a line: (eta - L)(theta + h v) ~ h^2/2 v^T (H_eta - H_L) v
    v = rng.standard_normal(theta.size)
    c2 = 0.5 * v @ (H_eta - H_L) @ v
    for h in (1e-2, 5e-3):
        gap_h = eta(mdp, policy, theta + h * v) - local_approximation_params(
            mdp, policy, theta, theta + h * v)
        # O(h^3) remainder: relative error ~ h
        np.testing.assert_allclose(gap_h / h ** 2, c2, rtol=20 * h, atol=0)


def test_local_approximation_is_linear_in_pi_tilde_and_mixtures():
    mdp, policy, theta, rng = _problem(9, 4, 3, 0.9)
    pi = policy.probs_table(theta)
    p1 = policy.probs_table(rng.standard_normal(theta.size))
    p2 = policy.probs_table(rng.standard_normal(theta.size))
    for a in (0.0, 0.3, 1.0):
        np.testing.assert_allclose(
            local_approximation(mdp, pi, (1 - a) * p1 + a * p2),
            (1 - a) * local_approximation(mdp, pi, p1) + a * local_approximation(mdp, pi, p2),
            rtol=1e-12, atol=1e-13)


def test_validation():
    mdp, policy, theta, _ = _problem(0, 3, 2, 0.9)
    pi = policy.probs_table(theta)
    with pytest.raises(ValueError, match="pi_tilde"):
        performance_difference(mdp, pi, np.ones((3, 2)))
    with pytest.raises(ValueError, match="pi"):
        local_approximation(mdp, pi[:2], pi)
    with pytest.raises(ValueError, match="finite"):
        local_approximation(mdp, pi, np.full((3, 2), np.nan))


@settings(max_examples=8)
@given(st.integers(0, 2**31 - 1), st.integers(1, 3), st.integers(1, 3), st.integers(1, 4),
       st.sampled_from([0.5, 0.95]))
def test_finite_horizon_identity_over_refpg_moments_enumeration(seed, S, A, H, gamma):
    # a third route: refpg.moments.enumerate_trajectories lists the trajectories of pi~
    # (helper module, written independently of refpg.identities)
    moments = pytest.importorskip("refpg.moments")
    mdp, policy, theta, rng = _problem(seed, S, A, gamma, horizon=H)
    pi = policy.probs_table(theta)
    pi_t = policy.probs_table(theta + rng.standard_normal(theta.size))
    A_t = evaluate_finite_horizon(mdp, pi, H).A
    batch, p = moments.enumerate_trajectories(mdp, pi_t, H)
    t = np.broadcast_to(np.arange(batch.states.shape[1]), batch.states.shape)
    terms = np.where(batch.mask, gamma ** t * A_t[t, batch.states, batch.actions], 0.0)
    diff = evaluate_finite_horizon(mdp, pi_t, H).J - evaluate_finite_horizon(mdp, pi, H).J
    np.testing.assert_allclose(p @ terms.sum(axis=1), diff, rtol=1e-10, atol=1e-12 * H)


def _exact_eta(mdp, pi):
    """eta(pi) in rational arithmetic on the float64 inputs: (I - gamma P_pi) V = r_pi by
    Gauss-Jordan elimination with Fractions (no rounding at all; tiny S only)."""
    from fractions import Fraction as Fr

    S, A = pi.shape
    g = Fr(mdp.gamma)
    M = [[(1 if s == t else 0) - g * sum(Fr(pi[s, a]) * Fr(mdp.P[s, a, t]) for a in range(A))
          for t in range(S)] + [sum(Fr(pi[s, a]) * Fr(mdp.r[s, a]) for a in range(A))]
         for s in range(S)]
    for c in range(S):
        piv = next(i for i in range(c, S) if M[i][c] != 0)
        M[c], M[piv] = M[piv], M[c]
        M[c] = [v / M[c][c] for v in M[c]]
        for i in range(S):
            if i != c and M[i][c] != 0:
                M[i] = [a - M[i][c] * b for a, b in zip(M[i], M[c])]
    return sum(Fr(mdp.rho0[s]) * M[s][S] for s in range(S))


def test_performance_difference_keeps_relative_accuracy_for_nearby_policies():
    # found by the session-4 audit: sum_a pi~ A_pi cancels as pi~ -> pi (relative error 6e-4
    # here); sum_a (pi~ - pi) A_pi does not (the difference of nearby tables is exact).
    # Reference: eta(pi~) - eta(pi) in exact rational arithmetic; 1e-10 relative leaves
    # room for the float64 rounding of A and rho (~1e-15 relative each).
    mdp = random_mdp(np.random.default_rng(0), 3, 2, gamma=0.9)
    pi = np.array([[0.75, 0.25]] * 3)
    pt = np.array([[0.75 - 2.0 ** -45, 0.25 + 2.0 ** -45]] * 3)   # rows exactly normalised
    want = float(_exact_eta(mdp, pt) - _exact_eta(mdp, pi))
    np.testing.assert_allclose(performance_difference(mdp, pi, pt), want, rtol=1e-10)
