"""Tests for refpg.evaluation: every quantity against an independent route.

Routes used (derivations/evaluation.md):
* closed forms worked by hand (the two-state example of the note);
* explicit loops over states and actions (Bellman backups iterated to a fixed point,
  the Neumann series of the visitation) instead of the linear solve;
* exact enumeration of every trajectory of a tiny finite-horizon MDP;
* the exact identity eta = J_H + gamma^H p_H . V (any H, any gamma <= 1);
* complex-step derivatives against the derivative written from Q and rho, and
  against central differences;
* Monte-Carlo returns from refpg.sampling within a z-score bound whose variance is
  the exact one (return_moments, itself checked by enumeration).
"""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import norm

from refpg.evaluation import (action_values, advantages, check_policy_table,
                              discounted_visitation, evaluate, evaluate_finite_horizon,
                              expected_return, policy_reward, policy_transition,
                              return_moments, state_values)
from refpg.mdp import FiniteMDP, random_mdp
from refpg.sampling import sample_from_table

_unit = st.floats(0.0, 1.0, allow_subnormal=False)


@st.composite
def mdps(draw, *, max_states=4, max_actions=3, max_gamma=0.99, episodic=False):
    """Small random MDPs; shrink towards S = A = 1 (2 states when episodic).

    Episodic: the last state is terminal and every other (s, a) moves to it with
    probability at least 0.1, so every policy is proper (gamma may be 1).
    """
    S = draw(st.integers(2 if episodic else 1, max_states))
    A = draw(st.integers(1, max_actions))
    w = draw(arrays(np.float64, (S, A, S), elements=_unit))
    w[..., 0] += w.sum(axis=2) == 0  # no all-zero row
    P = w / w.sum(axis=2, keepdims=True)
    r = draw(arrays(np.float64, (S, A), elements=st.floats(-1.0, 1.0, allow_subnormal=False)))
    b = draw(arrays(np.float64, (S,), elements=_unit))
    terminal = np.zeros(S, dtype=bool)
    if episodic:
        terminal[-1] = True
        P = 0.9 * P
        P[:, :, -1] += 0.1
        P[-1] = 0.0
        P[-1, :, -1] = 1.0
        r[-1] = 0.0
        b[-1] = 0.0
        gamma = draw(st.sampled_from([1.0, 0.9, 0.0]))
    else:
        gamma = draw(st.floats(0.0, max_gamma))
    b[0] += b.sum() == 0
    return FiniteMDP(P=P, r=r, rho0=b / b.sum(), gamma=gamma, terminal=terminal)


@st.composite
def tables(draw, S, A, *, lead=()):
    """Policy tables (lead + (S, A)) with rows on the simplex, zeros allowed."""
    w = draw(arrays(np.float64, tuple(lead) + (S, A), elements=_unit))
    w[..., 0] += w.sum(axis=-1) == 0
    return w / w.sum(axis=-1, keepdims=True)


@st.composite
def mdp_and_policy(draw, **kw):
    mdp = draw(mdps(**kw))
    return mdp, draw(tables(mdp.n_states, mdp.n_actions))


def _loops_P_pi_r_pi(mdp, pi):
    """P_pi and r_pi by explicit loops (independent of the einsums in refpg)."""
    S, A = mdp.n_states, mdp.n_actions
    P_pi = np.zeros((S, S), dtype=np.result_type(pi, float))
    r_pi = np.zeros(S, dtype=P_pi.dtype)
    for s in range(S):
        for a in range(A):
            r_pi[s] += pi[s, a] * mdp.r[s, a]
            for t in range(S):
                P_pi[s, t] += pi[s, a] * mdp.P[s, a, t]
    return P_pi, r_pi


# ----------------------------------------------------------------- closed forms and identities

def test_two_state_example_of_the_note():
    # derivations/evaluation.md#policy-evaluation, worked by hand: V = (5.5, 4.5)
    mdp = FiniteMDP(P=np.full((2, 1, 2), 0.5), r=[[1.0], [0.0]], rho0=[1.0, 0.0], gamma=0.9)
    ev = evaluate(mdp, np.ones((2, 1)))
    np.testing.assert_allclose(ev.V, [5.5, 4.5], rtol=1e-14, atol=0)  # 2x2 solve, rounding only
    np.testing.assert_allclose(ev.eta, 5.5, rtol=1e-14, atol=0)
    assert ev.V.dtype == np.float64


@given(mdp_and_policy(max_gamma=0.95))
def test_values_are_the_fixed_point_of_iterated_bellman_backups(case):
    mdp, pi = case
    P_pi, r_pi = _loops_P_pi_r_pi(mdp, pi)
    V = np.zeros(mdp.n_states)
    n = 900  # 0.95^900 < 1e-20: the iterate is within 1e-20 max|r|/(1-gamma) of V
    for _ in range(n):
        V = r_pi + mdp.gamma * (P_pi @ V)
    ev = evaluate(mdp, pi)
    # the linear solve has relative error ~ cond(I - gamma P_pi) eps <= 20 * 2e-16 * S
    np.testing.assert_allclose(ev.V, V, rtol=1e-12, atol=1e-12)


@given(mdp_and_policy())
def test_policy_transition_and_reward_match_loops(case):
    mdp, pi = case
    P_pi, r_pi = _loops_P_pi_r_pi(mdp, pi)
    np.testing.assert_allclose(policy_transition(mdp, pi), P_pi, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(policy_reward(mdp, pi), r_pi, rtol=1e-14, atol=1e-15)


@given(mdp_and_policy())
def test_visitation_sums_to_one_over_one_minus_gamma_and_eta_is_rho_dot_r_pi(case):
    mdp, pi = case
    ev = evaluate(mdp, pi)
    # (E4): 1^T rho = 1/(1-gamma); the solve's rounding is ~ S eps / (1-gamma) relative
    np.testing.assert_allclose(ev.rho.sum(), 1.0 / (1.0 - mdp.gamma), rtol=1e-12, atol=0)
    np.testing.assert_allclose(ev.d.sum(), 1.0, rtol=1e-12, atol=0)
    assert np.all(ev.rho >= -1e-12)
    _, r_pi = _loops_P_pi_r_pi(mdp, pi)
    # eta = rho0 . V (E3) and eta = rho . r_pi (E4) are two solves with two right-hand sides;
    # both are within cond * eps of the truth, scaled by max|r| / (1 - gamma)
    scale = max(1e-300, np.max(np.abs(mdp.r))) / (1.0 - mdp.gamma)
    np.testing.assert_allclose(ev.eta, ev.rho @ r_pi, rtol=0, atol=1e-12 * scale)


@given(mdp_and_policy(max_gamma=0.9))
def test_visitation_is_the_discounted_sum_of_state_distributions(case):
    mdp, pi = case
    P_pi, _ = _loops_P_pi_r_pi(mdp, pi)
    p = mdp.rho0.copy()
    rho = np.zeros(mdp.n_states)
    for t in range(400):  # 0.9^400 / (1 - 0.9) < 1e-17: the tail is below rounding
        rho += mdp.gamma ** t * p
        p = p @ P_pi
    np.testing.assert_allclose(discounted_visitation(mdp, pi), rho, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(discounted_visitation(mdp, pi, normalized=True),
                               (1 - mdp.gamma) * rho, rtol=1e-11, atol=1e-13)


@given(mdp_and_policy())
def test_q_and_advantage_satisfy_their_definitions(case):
    mdp, pi = case
    ev = evaluate(mdp, pi)
    S, A = mdp.n_states, mdp.n_actions
    Q = np.array([[mdp.r[s, a] + mdp.gamma * sum(mdp.P[s, a, t] * ev.V[t] for t in range(S))
                   for a in range(A)] for s in range(S)])
    scale = max(1.0, np.max(np.abs(ev.V)))
    np.testing.assert_allclose(ev.Q, Q, rtol=0, atol=1e-13 * scale)  # same V, re-summed
    np.testing.assert_allclose(ev.A, Q - ev.V[:, None], rtol=0, atol=1e-13 * scale)
    # sum_a pi(a|s) A(s, a) = 0: V is the pi-average of Q (E1-E2)
    np.testing.assert_allclose((pi * ev.A).sum(axis=1), 0.0, rtol=0, atol=1e-12 * scale)
    # the thin accessors return the same arrays as evaluate
    np.testing.assert_array_equal(state_values(mdp, pi), ev.V)
    np.testing.assert_array_equal(action_values(mdp, pi), ev.Q)
    np.testing.assert_array_equal(advantages(mdp, pi), ev.A)
    assert expected_return(mdp, pi) == ev.eta


def test_gamma_zero_values_are_immediate_rewards():
    mdp = random_mdp(np.random.default_rng(4), 5, 3, gamma=0.0)
    pi = np.random.default_rng(5).dirichlet(np.ones(3), size=5)
    ev = evaluate(mdp, pi)
    np.testing.assert_allclose(ev.V, (pi * mdp.r).sum(axis=1), rtol=1e-15, atol=1e-16)
    np.testing.assert_allclose(ev.rho, mdp.rho0, rtol=1e-15, atol=0)


# ----------------------------------------------------------------- finite horizon

@settings(max_examples=20)
@given(mdp_and_policy(max_gamma=1.0 - 1e-9), st.integers(1, 60))
def test_eta_is_finite_horizon_value_plus_discounted_tail(case, H):
    mdp, pi = case
    fh = evaluate_finite_horizon(mdp, pi, H)
    ev = evaluate(mdp, pi)
    P_pi, r_pi = _loops_P_pi_r_pi(mdp, pi)
    p_H = fh.p[H - 1] @ P_pi
    # exact identity: eta = J_H + gamma^H E[V(s_H)]  (Markov property at time H)
    scale = max(1e-300, np.max(np.abs(mdp.r))) / (1.0 - mdp.gamma)
    np.testing.assert_allclose(ev.eta, fh.J + mdp.gamma ** H * (p_H @ ev.V),
                               rtol=0, atol=1e-11 * scale)
    # hence the geometric tail bound of the note: |eta - J_H| <= gamma^H max|r| / (1 - gamma)
    assert abs(ev.eta - fh.J) <= mdp.gamma ** H * scale * (1 + 1e-9) + 1e-12 * scale
    # J_H two ways: backward values (E6) and forward distributions (E7-E8)
    forward = sum(mdp.gamma ** t * (fh.p[t] @ r_pi) for t in range(H))
    np.testing.assert_allclose(fh.J, forward, rtol=0, atol=1e-12 * max(1.0, H * np.max(
        np.abs(mdp.r))))


def test_finite_horizon_converges_to_eta_within_the_tail_bound():
    mdp = random_mdp(np.random.default_rng(11), 6, 3, gamma=0.95)
    pi = np.random.default_rng(12).dirichlet(np.ones(3), size=6)
    eta = evaluate(mdp, pi).eta
    bound_scale = np.max(np.abs(mdp.r)) / (1 - mdp.gamma)
    errors = []
    for H in (1, 10, 100, 1000):
        err = abs(evaluate_finite_horizon(mdp, pi, H).J - eta)
        assert err <= mdp.gamma ** H * bound_scale + 1e-12 * bound_scale
        errors.append(err)
    assert errors[-1] < 1e-12 * bound_scale  # 0.95^1000 ~ 5e-23: only rounding is left


def _enumerate(mdp, pis, H):
    """Mean and variance of G = sum_{t<H} gamma^t r(s_t, a_t) over every trajectory."""
    S, A = mdp.n_states, mdp.n_actions
    m1 = m2 = 0.0
    for path in itertools.product(range(S), *([range(A), range(S)] * H)):
        s = path[0]
        prob = mdp.rho0[s]
        G = 0.0
        for t in range(H):
            a, s2 = path[1 + 2 * t], path[2 + 2 * t]
            prob *= pis[t][s, a] * mdp.P[s, a, s2]
            G += mdp.gamma ** t * mdp.r[s, a]
            s = s2
        m1 += prob * G
        m2 += prob * G * G
    return m1, m2 - m1 * m1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_finite_horizon_return_and_variance_match_enumeration(seed):
    rng = np.random.default_rng(seed)
    mdp = random_mdp(rng, 2, 2, gamma=0.8, sparsity=0.0)
    H = 4
    pis = rng.dirichlet(np.ones(2), size=(H, 2))  # a time-indexed policy
    mean, var = _enumerate(mdp, pis, H)
    fh = evaluate_finite_horizon(mdp, pis)
    np.testing.assert_allclose(fh.J, mean, rtol=1e-12, atol=1e-14)  # 4096 paths, float64 sums
    mom = return_moments(mdp, pis)
    np.testing.assert_allclose(mom.mean, mean, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(mom.variance, var, rtol=1e-10, atol=1e-13)  # var = m2 - m1^2 here
    stationary = pis[0]
    mean_s, var_s = _enumerate(mdp, [stationary] * H, H)
    mom_s = return_moments(mdp, stationary, horizon=H)
    np.testing.assert_allclose([mom_s.mean, mom_s.variance], [mean_s, var_s], rtol=1e-10,
                               atol=1e-13)


@settings(max_examples=15)
@given(mdp_and_policy(max_gamma=0.9))
def test_infinite_horizon_variance_is_the_limit_of_finite_horizon_variances(case):
    mdp, pi = case
    inf = return_moments(mdp, pi)
    fin = return_moments(mdp, pi, horizon=400)  # 0.9^400 ~ 5e-19: tails below rounding
    scale = max(1e-300, np.max(np.abs(mdp.r))) / (1 - mdp.gamma)
    np.testing.assert_allclose(inf.mean, fin.mean, rtol=0, atol=1e-11 * scale)
    np.testing.assert_allclose(inf.variance, fin.variance, rtol=0, atol=1e-11 * scale ** 2)
    assert inf.variance >= -1e-12 * scale ** 2


# ----------------------------------------------------------------- Monte Carlo

# Two-sided false-alarm rate 1e-6 per comparison: z = 4.89. With the exact variance a
# correct estimator fails with probability 1e-6 (and never, with the fixed seeds below);
# a bias larger than ~5 standard errors fails.
Z = norm.isf(0.5e-6)


@pytest.mark.parametrize("gamma, horizon, n_terminal", [(0.9, 30, 0), (1.0, 25, 1)])
def test_monte_carlo_returns_agree_with_exact_value_within_z_bound(gamma, horizon, n_terminal):
    rng = np.random.default_rng(2024)
    mdp = random_mdp(rng, 5, 3, gamma=gamma, n_terminal=n_terminal, horizon=horizon)
    pi = rng.dirichlet(np.ones(3), size=5)
    batch = sample_from_table(mdp, pi, 20000, np.random.default_rng(99))
    disc = gamma ** np.arange(horizon)
    G = (batch.rewards * batch.mask * disc).sum(axis=1)
    mom = return_moments(mdp, pi, horizon=horizon)  # exact variance of the truncated return
    assert mom.mean == pytest.approx(evaluate_finite_horizon(mdp, pi).J, rel=1e-12, abs=1e-14)
    se = np.sqrt(mom.variance / G.size)
    assert abs(G.mean() - mom.mean) <= Z * se, (G.mean(), mom.mean, se)
    # the sample variance is consistent with the exact one (loose: 4th moment unknown)
    np.testing.assert_allclose(G.var(), mom.variance, rtol=0.05, atol=0)


# ----------------------------------------------------------------- complex step

@settings(max_examples=15)
@given(mdps(max_gamma=0.95), st.data())
def test_complex_policy_gives_complex_eta_with_the_exact_derivative(mdp, data):
    S, A = mdp.n_states, mdp.n_actions
    pi1 = data.draw(tables(S, A))
    pi2 = data.draw(tables(S, A))
    x0 = data.draw(st.floats(0.01, 0.99))  # interior, so x0 +- 1e-5 stays a policy

    def table(x):  # the mixture (1 - x) pi1 + x pi2 is a policy for x in [0, 1]
        return (1 - x) * pi1 + x * pi2

    h = 1e-20
    ev_c = evaluate(mdp, table(x0 + 1j * h))
    assert np.iscomplexobj(ev_c.eta) and ev_c.V.dtype == np.complex128
    cs = np.imag(ev_c.eta) / h
    ev = evaluate(mdp, table(x0))
    # d eta / dx = sum_s rho(s) sum_a (pi2 - pi1)(a|s) Q(s, a)   (differentiate (E1), use (E4))
    analytic = ev.rho @ ((pi2 - pi1) * ev.Q).sum(axis=1)
    scale = max(1e-300, np.max(np.abs(mdp.r))) / (1 - mdp.gamma) ** 2
    np.testing.assert_allclose(cs, analytic, rtol=0, atol=1e-12 * scale)  # rounding only
    np.testing.assert_allclose(np.real(ev_c.eta), ev.eta, rtol=0, atol=1e-13 * scale)
    # central differences agree within their truncation + rounding error (~1e-6 relative)
    e = 1e-5
    cd = (evaluate(mdp, table(x0 + e)).eta - evaluate(mdp, table(x0 - e)).eta) / (2 * e)
    np.testing.assert_allclose(cd, cs, rtol=0, atol=1e-6 * scale)


def test_complex_step_through_finite_horizon_and_return_moments():
    rng = np.random.default_rng(8)
    mdp = random_mdp(rng, 4, 2, gamma=0.97)
    pi1, pi2 = rng.dirichlet(np.ones(2), size=(2, 4))
    H, h, x0 = 12, 1e-20, 0.3
    fh_c = evaluate_finite_horizon(mdp, (1 - x0 - 1j * h) * pi1 + (x0 + 1j * h) * pi2, H)
    fh = evaluate_finite_horizon(mdp, (1 - x0) * pi1 + x0 * pi2, H)
    # d J_H / dx = sum_t gamma^t sum_s p_t(s) sum_a (pi2 - pi1)(a|s) Q_t(s, a)
    analytic = sum(mdp.gamma ** t * fh.p[t] @ ((pi2 - pi1) * fh.Q[t]).sum(axis=1)
                   for t in range(H))
    np.testing.assert_allclose(np.imag(fh_c.J) / h, analytic, rtol=1e-12, atol=1e-14)
    mom = return_moments(mdp, (1 - x0 - 1j * h) * pi1 + (x0 + 1j * h) * pi2)
    assert np.iscomplexobj(mom.variance)
    # complex step of the variance against central differences (error ~ e^2 f''' + eps/e)
    e = 1e-5
    f = [return_moments(mdp, (1 - x) * pi1 + x * pi2).variance for x in (x0 - e, x0 + e)]
    np.testing.assert_allclose(np.imag(mom.variance) / h, (f[1] - f[0]) / (2 * e),
                               rtol=1e-6, atol=1e-9)


# ----------------------------------------------------------------- episodic (gamma = 1)

@settings(max_examples=20)
@given(mdp_and_policy(episodic=True))
def test_episodic_values_solve_bellman_on_non_terminal_states(case):
    mdp, pi = case
    ev = evaluate(mdp, pi)
    P_pi, r_pi = _loops_P_pi_r_pi(mdp, pi)
    nt = ~mdp.terminal
    np.testing.assert_array_equal(ev.V[mdp.terminal], 0.0)
    np.testing.assert_allclose(ev.V[nt], (r_pi + mdp.gamma * P_pi @ ev.V)[nt], rtol=0,
                               atol=1e-12)  # |V| <= 10 (episodes last 10 steps on average)
    if mdp.gamma == 1.0:
        # gamma = 1 counts visits of non-terminal states only (gamma < 1 keeps (E4) as is,
        # including the discounted time spent in the absorbing terminal state)
        np.testing.assert_array_equal(ev.rho[mdp.terminal], 0.0)
        # rho = expected visits: expected length sum_t P(alive at t) by a forward loop
        p, visits = mdp.rho0 * nt, np.zeros(mdp.n_states)
        for _ in range(400):  # P(alive) <= 0.9^t: 0.9^400 < 1e-18
            visits += p
            p = (p @ P_pi) * nt
        np.testing.assert_allclose(ev.rho, visits, rtol=1e-11, atol=1e-13)
        if ev.rho.sum() > 0:
            np.testing.assert_allclose(ev.d.sum(), 1.0, rtol=1e-13, atol=0)
        else:
            np.testing.assert_array_equal(ev.d, 0.0)  # no visits at all: nothing to normalise


def test_d_is_zero_when_episodes_have_no_steps():
    P = np.zeros((2, 1, 2))
    P[0, 0, 1] = P[1, 0, 1] = 1.0
    mdp = FiniteMDP(P=P, r=[[1.0], [0.0]], rho0=[0.0, 1.0], gamma=1.0,
                    terminal=np.array([False, True]))
    ev = evaluate(mdp, np.ones((2, 1)))
    assert ev.eta == 0.0 and ev.rho.sum() == 0.0
    np.testing.assert_array_equal(ev.d, 0.0)
    np.testing.assert_array_equal(ev.V, [1.0, 0.0])


def test_improper_policy_is_rejected_with_gamma_one():
    # state 0: action 0 stays forever, action 1 goes to the terminal state 1
    P = np.zeros((2, 2, 2))
    P[0, 0, 0] = P[0, 1, 1] = 1.0
    P[1, :, 1] = 1.0
    mdp = FiniteMDP(P=P, r=[[-1.0, -1.0], [0.0, 0.0]], rho0=[1.0, 0.0], gamma=1.0,
                    terminal=np.array([False, True]))
    with pytest.raises(ValueError, match="improper.*state\\(s\\) \\[0\\]"):
        evaluate(mdp, np.array([[1.0, 0.0], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="improper"):
        return_moments(mdp, np.array([[1.0, 0.0], [1.0, 0.0]]))
    ev = evaluate(mdp, np.array([[0.5, 0.5], [1.0, 0.0]]))  # geometric: 2 steps on average
    np.testing.assert_allclose(ev.V[0], -2.0, rtol=1e-15, atol=0)
    # the finite horizon is defined for the improper policy too: J_H = -H
    np.testing.assert_allclose(evaluate_finite_horizon(mdp, np.array([[1.0, 0.0]] * 2), 7).J,
                               -7.0, rtol=1e-15, atol=0)


def test_gamma_one_without_terminal_states_points_to_finite_horizon():
    mdp = FiniteMDP(P=np.full((2, 1, 2), 0.5), r=[[1.0], [0.0]], rho0=[1.0, 0.0], gamma=1.0,
                    horizon=3)
    with pytest.raises(ValueError, match="evaluate_finite_horizon"):
        evaluate(mdp, np.ones((2, 1)))
    # J_3 = 3 * 1/2 + 1/2 (s_0 = 0 gives 1, then each step is state 0 with probability 1/2)
    np.testing.assert_allclose(evaluate_finite_horizon(mdp, np.ones((2, 1))).J, 2.0,
                               rtol=1e-15, atol=0)


# ----------------------------------------------------------------- validation and size

BAD_PI = [
    ("wrong shape", np.full((3, 3), 1 / 3), "pi must have shape"),
    ("rows do not sum to 1", np.full((3, 2), 0.4), "pi rows must sum to 1"),
    ("negative entry", np.array([[1.5, -0.5]] * 3), "pi rows must be non-negative"),
    ("NaN", np.array([[np.nan, 1.0]] * 3), "pi must be finite"),
    ("strings", np.full((3, 2), "x"), "pi must be numeric"),
]


@pytest.mark.parametrize("pi, text", [b[1:] for b in BAD_PI], ids=[b[0] for b in BAD_PI])
def test_bad_policy_tables_are_rejected_naming_pi(pi, text):
    mdp = random_mdp(np.random.default_rng(0), 3, 2)
    for f in (evaluate, policy_transition, return_moments,
              lambda m, p: evaluate_finite_horizon(m, p, 3)):
        with pytest.raises((ValueError, TypeError), match=text):
            f(mdp, pi)


def test_finite_horizon_argument_errors():
    mdp = random_mdp(np.random.default_rng(0), 3, 2)
    pi = np.full((3, 2), 0.5)
    with pytest.raises(ValueError, match="horizon must be given"):
        evaluate_finite_horizon(mdp, pi)
    with pytest.raises(ValueError, match="horizon"):
        evaluate_finite_horizon(mdp, pi, 0)
    with pytest.raises(ValueError, match="horizon = 4"):
        evaluate_finite_horizon(mdp, np.full((3, 3, 2), 0.5), 4)
    with pytest.raises(ValueError, match=r"pi must have shape \(H, S, A\)"):
        evaluate_finite_horizon(mdp, np.full((3, 2, 2), 0.5), 3)
    with pytest.raises(TypeError, match="mdp must be a FiniteMDP"):
        evaluate("mdp", pi)
    with pytest.raises(ValueError, match="pi must have shape"):
        check_policy_table(mdp, np.full((2, 3, 2), 0.5))  # time-indexed needs the flag


def test_two_thousand_states_evaluate():
    # runs in about a second on one core (one LU factorisation of a 2000 x 2000 matrix)
    mdp = random_mdp(np.random.default_rng(0), 2000, 2, gamma=0.99, sparsity=0.995)
    pi = np.full((2000, 2), 0.5)
    ev = evaluate(mdp, pi)
    np.testing.assert_allclose(ev.rho.sum(), 100.0, rtol=1e-10, atol=0)  # 1 / (1 - 0.99)
    assert np.all(np.isfinite(ev.V))
