"""Tests for refpg.classic: exact evaluation and planning against closed forms and
published tables (derivations/classic.md).

Published numbers are quoted here with their source and the rounding they carry;
closed forms are derived in the note (by hand, not by refpg's linear algebra).
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

from refpg.classic import (GRIDWORLD_OPTIMAL_VALUES, GRIDWORLD_RANDOM_POLICY_VALUES,
                           SHORT_CORRIDOR_BEST_PROB_RIGHT, SHORT_CORRIDOR_BEST_VALUE, gridworld,
                           random_walk, random_walk_closed_form, short_corridor,
                           short_corridor_policy, short_corridor_value, two_state_chain,
                           two_state_chain_closed_form)
from refpg.evaluation import evaluate, evaluate_finite_horizon, return_moments
from refpg.planning import policy_iteration, value_iteration
from refpg.sampling import sample_from_table

# ----------------------------------------------------------------- two-state chain

_p = st.floats(0.0, 1.0)


@given(p=_p, q=_p, r0=st.floats(-10, 10), r1=st.floats(-10, 10), gamma=st.floats(0.0, 0.99),
       b0=_p)
def test_two_state_chain_closed_form_matches_linear_solve(p, q, r0, r1, gamma, b0):
    rho0 = (b0, 1.0 - b0)
    mdp = two_state_chain(p, q, r0, r1, gamma=gamma, rho0=rho0)
    cf = two_state_chain_closed_form(p, q, r0, r1, gamma=gamma, rho0=rho0)
    ev = evaluate(mdp, np.ones((2, 1)))
    # Cramer's rule vs LU: both backward stable, cond(I - gamma P) <= (1+gamma)/(1-gamma) <= 200
    scale = max(abs(r0), abs(r1), 1e-300) / (1 - gamma)
    np.testing.assert_allclose(ev.V, cf.V, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(ev.rho, cf.rho, rtol=0, atol=1e-12 / (1 - gamma))
    np.testing.assert_allclose(ev.eta, cf.eta, rtol=0, atol=1e-12 * scale)


def test_two_state_chain_special_cases_by_hand():
    # p = q = 1/2, r = (1, 0), gamma = 0.9: V = (5.5, 4.5) (derivations/evaluation.md)
    cf = two_state_chain_closed_form(0.5, 0.5, 1.0, 0.0, gamma=0.9)
    np.testing.assert_allclose(cf.V, [5.5, 4.5], rtol=1e-15, atol=0)
    # p = q = 0: each state keeps its reward forever, V = r / (1 - gamma)
    cf = two_state_chain_closed_form(0.0, 0.0, 2.0, -1.0, gamma=0.5)
    np.testing.assert_allclose(cf.V, [4.0, -2.0], rtol=1e-15, atol=0)
    with pytest.raises(ValueError, match="gamma"):
        two_state_chain(0.5, 0.5, 1.0, 0.0, gamma=1.0)
    with pytest.raises(ValueError, match="p must lie in"):
        two_state_chain(1.5, 0.5, 1.0, 0.0)
    with pytest.raises(ValueError, match="r1 must be finite"):
        two_state_chain_closed_form(0.5, 0.5, 1.0, np.nan)


# ----------------------------------------------------------------- random walk

def test_random_walk_values_are_the_published_ones():
    # Sutton & Barto (2018), Example 6.2 (p. 125): "the true values of all the states, A
    # through E, are 1/6, 2/6, 3/6, 4/6, and 5/6" (exact fractions, no rounding).
    mdp = random_walk()
    ev = evaluate(mdp, np.full((7, 2), 0.5))
    np.testing.assert_allclose(ev.V[1:6], np.arange(1, 6) / 6, rtol=1e-14, atol=0)
    V, rho = random_walk_closed_form()
    np.testing.assert_allclose(ev.V, V, rtol=1e-14, atol=1e-16)
    # expected visits (Green's function of the walk), and an expected length of 3 * 3 = 9
    np.testing.assert_allclose(ev.rho, rho, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(ev.rho.sum(), 9.0, rtol=1e-14, atol=0)
    assert mdp.info["state_names"] == ["A", "B", "C", "D", "E"]


@pytest.mark.parametrize("n", [1, 3, 7, 19])
def test_random_walk_closed_form_for_other_sizes(n):
    mdp = random_walk(n)
    ev = evaluate(mdp, np.full((n + 2, 2), 0.5))
    V, rho = random_walk_closed_form(n)
    np.testing.assert_allclose(ev.V, V, rtol=1e-12, atol=1e-15)  # cond grows like n^2
    np.testing.assert_allclose(ev.rho, rho, rtol=1e-12, atol=1e-12)
    c = (n + 1) // 2
    np.testing.assert_allclose(ev.rho.sum(), c * (n + 1 - c), rtol=1e-12, atol=0)
    # always going right is optimal: V* = 1 on every non-terminal state
    np.testing.assert_allclose(policy_iteration(mdp).V[1:-1], 1.0, rtol=0, atol=1e-15)


def test_random_walk_monte_carlo_visits_match_closed_form():
    # visits to state k per episode = the undiscounted return for the reward 1[s = k]; its
    # exact variance comes from return_moments on that reward (variance Bellman equation).
    # z = 4.89: two-sided false-alarm rate 1e-6 per state, fixed seed.
    mdp = random_walk()
    pi = np.full((7, 2), 0.5)
    batch = sample_from_table(mdp, pi, 20000, np.random.default_rng(1), horizon=400)
    assert batch.terminated.sum() == 20000  # P(L > 400) < 1e-40: every episode ends
    _, rho = random_walk_closed_form()
    for k in range(1, 6):
        counts = ((batch.states == k) & batch.mask).sum(axis=1)
        indicator = np.zeros((7, 2))
        indicator[k] = 1.0
        var = return_moments(mdp.replace(r=indicator), pi).variance
        assert abs(counts.mean() - rho[k]) <= 4.89 * np.sqrt(var / counts.size)


def test_random_walk_rejects_even_sizes():
    with pytest.raises(ValueError, match="n must be odd"):
        random_walk(4)
    with pytest.raises(ValueError, match="n must be odd"):
        random_walk_closed_form(6)


# ----------------------------------------------------------------- gridworld

# Sutton & Barto (2018), Figure 3.2 (right), Example 3.5 (p. 60): state values of the
# equiprobable random policy, gamma = 0.9, printed to one decimal (|error| <= 0.05).
FIG_3_2 = np.array([
    [3.3, 8.8, 4.4, 5.3, 1.5],
    [1.5, 3.0, 2.3, 1.9, 0.5],
    [0.1, 0.7, 0.7, 0.4, -0.4],
    [-1.0, -0.4, -0.4, -0.6, -1.2],
    [-1.9, -1.3, -1.2, -1.4, -2.0],
])
# Sutton & Barto (2018), Figure 3.5 (middle), Example 3.8 (p. 65): v*, gamma = 0.9, one decimal.
FIG_3_5 = np.array([
    [22.0, 24.4, 22.0, 19.4, 17.5],
    [19.8, 22.0, 19.8, 17.8, 16.0],
    [17.8, 19.8, 17.8, 16.0, 14.4],
    [16.0, 17.8, 16.0, 14.4, 13.0],
    [14.4, 16.0, 14.4, 13.0, 11.7],
])


def test_gridworld_random_policy_reproduces_figure_3_2():
    V = evaluate(gridworld(), np.full((25, 4), 0.25)).V.reshape(5, 5)
    np.testing.assert_allclose(V, FIG_3_2, rtol=0, atol=0.05 + 1e-12)  # one printed decimal
    np.testing.assert_array_equal(np.round(V, 1), FIG_3_2)  # rounding reproduces the print
    np.testing.assert_array_equal(GRIDWORLD_RANDOM_POLICY_VALUES, FIG_3_2)  # the shipped copy


def test_gridworld_optimal_values_reproduce_figure_3_5_and_the_closed_form():
    mdp = gridworld()
    vi = value_iteration(mdp)
    pi = policy_iteration(mdp)
    np.testing.assert_allclose(vi.V, pi.V, rtol=0, atol=vi.error_bound + 1e-12)
    V = pi.V.reshape(5, 5)
    np.testing.assert_array_equal(np.round(V, 1), FIG_3_5)
    np.testing.assert_array_equal(GRIDWORLD_OPTIMAL_VALUES, FIG_3_5)
    # closed form (derivations/classic.md#gridworld): the optimal loop A -> A' -> 4 steps up
    # -> A pays 10 every 5 steps, V*(A) = 10 / (1 - gamma^5); A' is 4 steps from A and B'
    # is 4 steps from A; B pays 5 then lands on B'
    g = 0.9
    vA = 10 / (1 - g ** 5)
    np.testing.assert_allclose(V[0, 1], vA, rtol=1e-13, atol=0)
    np.testing.assert_allclose(V[4, 1], g ** 4 * vA, rtol=1e-13, atol=0)
    np.testing.assert_allclose(V[0, 3], 5 + g * g ** 4 * vA, rtol=1e-13, atol=0)
    np.testing.assert_allclose(V[0, 0], g * vA, rtol=1e-13, atol=0)


def test_gridworld_dynamics_match_the_book():
    mdp = gridworld()
    # from A (0, 1) every action jumps to A' (4, 1) with +10; from B (0, 3) to B' (2, 3) with +5
    np.testing.assert_array_equal(mdp.P[1, :, 21], 1.0)
    np.testing.assert_array_equal(mdp.r[1], 10.0)
    np.testing.assert_array_equal(mdp.P[3, :, 13], 1.0)
    np.testing.assert_array_equal(mdp.r[3], 5.0)
    # off-grid moves: stay, -1 (corner (0, 0): north and west)
    np.testing.assert_array_equal(mdp.r[0], [-1.0, 0.0, 0.0, -1.0])
    assert mdp.P[0, 0, 0] == 1.0 and mdp.P[0, 1, 5] == 1.0 and mdp.P[0, 2, 1] == 1.0


# ----------------------------------------------------------------- short corridor

@pytest.mark.parametrize("p", [0.05, 0.3, 0.5, SHORT_CORRIDOR_BEST_PROB_RIGHT, 0.9, 0.99])
def test_short_corridor_value_matches_closed_form(p):
    ev = evaluate(short_corridor(), short_corridor_policy(p))
    # 3x3 solve vs the closed form: relative rounding ~ cond * eps, cond <= 1e3 at p = 0.99
    np.testing.assert_allclose(ev.eta, short_corridor_value(p), rtol=1e-12, atol=0)


def test_short_corridor_best_stochastic_policy_is_the_published_one():
    mdp = short_corridor()
    res = minimize_scalar(lambda p: -evaluate(mdp, short_corridor_policy(p)).eta,
                          bounds=(0.01, 0.99), method="bounded",
                          options={"xatol": 1e-10})
    # maximiser of the exact value (a numerical optimiser, not the closed form): 2 - sqrt(2)
    np.testing.assert_allclose(res.x, SHORT_CORRIDOR_BEST_PROB_RIGHT, rtol=0, atol=1e-6)
    np.testing.assert_allclose(-res.fun, SHORT_CORRIDOR_BEST_VALUE, rtol=1e-12, atol=0)
    # Sutton & Barto (2018), Example 13.1 (p. 323): the best probability of right is "about
    # 0.59" and its value "about -11.6" (2 - sqrt 2 = 0.5858, -(6 + 4 sqrt 2) = -11.657:
    # the book rounds the first to two decimals and truncates the second).
    assert round(SHORT_CORRIDOR_BEST_PROB_RIGHT, 2) == 0.59
    assert -11.7 < SHORT_CORRIDOR_BEST_VALUE < -11.6
    # complex step through evaluate: dJ/dp = 0 at the optimum, and matches d/dp of (C6) away
    # from it (d/dp [-2 (2 - p) / (p (1 - p))] = 2 (p^2 - 4p + 2) / (p^2 (1 - p)^2))
    h = 1e-20
    for p in (SHORT_CORRIDOR_BEST_PROB_RIGHT, 0.3, 0.8):
        d = np.imag(evaluate(mdp, short_corridor_policy(p + 1j * h)).eta) / h
        np.testing.assert_allclose(d, 2 * (p * p - 4 * p + 2) / (p * p * (1 - p) ** 2),
                                   rtol=1e-12, atol=1e-12)


def test_short_corridor_state_aware_optimum_and_improper_policies():
    mdp = short_corridor()
    # seeing the state, right-left-right reaches the goal in 3 steps: V*(0) = -3
    pi = policy_iteration(mdp)
    np.testing.assert_allclose(pi.V, [-3.0, -2.0, -1.0, 0.0], rtol=0, atol=0)
    np.testing.assert_array_equal(pi.actions[:3], [1, 0, 1])
    np.testing.assert_allclose(value_iteration(mdp).V, pi.V, rtol=0, atol=0)
    # deterministic aliased policies never reach the goal: improper, rejected
    for p in (0.0, 1.0):
        with pytest.raises(ValueError, match="improper"):
            evaluate(mdp, short_corridor_policy(p))
        with pytest.raises(ValueError, match="prob_right"):
            short_corridor_value(p)
        # their truncated returns are -H (every step costs 1, the goal is never reached)
        np.testing.assert_allclose(
            evaluate_finite_horizon(mdp, short_corridor_policy(p), 10).J, -10.0, rtol=0, atol=0)
    with pytest.raises(ValueError, match="prob_right"):
        short_corridor_policy(1.5)
    with pytest.raises(TypeError, match="prob_right"):
        short_corridor_policy([0.5, 0.5])
    assert np.all(mdp.info["observation"] == 0)  # every state looks the same
