"""Tests for refpg.planning: optimal values by independent routes.

* exhaustive enumeration of every deterministic stationary policy (tiny MDPs), each
  evaluated exactly by refpg.evaluation: the best of them is V* in every state;
* value iteration against policy iteration, within VI's guaranteed error bound;
* the Bellman optimality residual of the answer, recomputed with explicit loops;
* the greedy policy's exact evaluation against V*; no sampled policy beats V*;
* backward induction against enumeration of every time-indexed deterministic policy,
  and against V* as the horizon grows (geometric tail bound);
* stochastic shortest path (gamma = 1): proper starting policies, PI = VI, and the
  error raised when the MDP violates the SSP assumption.
Classic MDPs' published optimal values are in tests/test_classic.py and
tests/test_gym_tabular.py.
"""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from refpg.evaluation import evaluate, evaluate_finite_horizon
from refpg.mdp import FiniteMDP, random_mdp
from refpg.planning import (backward_induction, bellman_optimality_backup,
                            deterministic_policy, greedy_actions, policy_iteration,
                            proper_actions, value_iteration)

_unit = st.floats(0.0, 1.0, allow_subnormal=False)


@st.composite
def mdps(draw, *, max_states=4, max_actions=3, max_gamma=0.95, episodic=False):
    """Small random MDPs (shrink towards S = A = 1). Episodic: last state terminal,
    every (s, a) reaches it with probability >= 0.1, rewards <= 0, gamma = 1."""
    S = draw(st.integers(2 if episodic else 1, max_states))
    A = draw(st.integers(1, max_actions))
    w = draw(arrays(np.float64, (S, A, S), elements=_unit))
    w[..., 0] += w.sum(axis=2) == 0
    P = w / w.sum(axis=2, keepdims=True)
    r = draw(arrays(np.float64, (S, A), elements=st.floats(-1.0, 1.0, allow_subnormal=False)))
    terminal = np.zeros(S, dtype=bool)
    if episodic:
        terminal[-1] = True
        P = 0.9 * P
        P[:, :, -1] += 0.1
        P[-1] = 0.0
        P[-1, :, -1] = 1.0
        r = -np.abs(r)
        r[-1] = 0.0
        gamma = 1.0
    else:
        gamma = draw(st.floats(0.0, max_gamma))
    rho0 = np.zeros(S)
    rho0[0] = 1.0
    return FiniteMDP(P=P, r=r, rho0=rho0, gamma=gamma, terminal=terminal)


def _all_deterministic_values(mdp):
    """V of every deterministic stationary policy, by exact evaluation: (A^S, S)."""
    S, A = mdp.n_states, mdp.n_actions
    return np.array([evaluate(mdp, deterministic_policy(np.array(acts), A)).V
                     for acts in itertools.product(range(A), repeat=S)])


def _residual_by_loops(mdp, V):
    S, A = mdp.n_states, mdp.n_actions
    TV = np.array([max(mdp.r[s, a] + mdp.gamma * sum(mdp.P[s, a, t] * V[t] for t in range(S))
                       for a in range(A)) for s in range(S)])
    return np.max(np.abs(TV - V))


def _scale(mdp):
    return max(1.0, np.max(np.abs(mdp.r)) / (1.0 - mdp.gamma if mdp.gamma < 1 else 0.1))


@settings(max_examples=25)
@given(mdps(max_states=3, max_actions=3))
def test_optimal_value_is_the_best_deterministic_policy_in_every_state(mdp):
    best = _all_deterministic_values(mdp).max(axis=0)  # <= 27 exact evaluations
    pi = policy_iteration(mdp)
    vi = value_iteration(mdp)
    s = _scale(mdp)
    np.testing.assert_allclose(pi.V, best, rtol=0, atol=1e-12 * s)  # linear solves only
    # VI: the reported bound is a guarantee, and the stopping rule meets atol + rtol |V|
    assert vi.converged
    assert np.max(np.abs(vi.V - best)) <= vi.error_bound + 1e-12 * s
    assert vi.error_bound <= 1e-10 + 1e-12 * np.max(np.abs(vi.V)) + 1e-14 * s


@given(mdps())
def test_value_and_policy_iteration_agree_and_satisfy_bellman_optimality(mdp):
    vi = value_iteration(mdp)
    pi = policy_iteration(mdp)
    s = _scale(mdp)
    assert pi.converged and vi.converged
    np.testing.assert_allclose(vi.V, pi.V, rtol=0, atol=vi.error_bound + 1e-12 * s)
    # Bellman optimality residual of PI's V, by explicit loops: zero up to rounding
    assert _residual_by_loops(mdp, pi.V) <= 1e-12 * s
    assert pi.residual <= 1e-12 * s and pi.error_bound <= 1e-12 * s / (1 - mdp.gamma) + 1e-300
    # the optimal policy's exact evaluation is V*; VI's greedy policy is within its bound
    np.testing.assert_allclose(evaluate(mdp, pi.pi).V, pi.V, rtol=0, atol=1e-12 * s)
    v_greedy = evaluate(mdp, vi.pi).V
    assert np.max(pi.V - v_greedy) <= vi.policy_error_bound + 1e-12 * s
    # outputs are consistent: pi is the one-hot table of actions, Q = r + gamma P V
    np.testing.assert_array_equal(pi.pi.argmax(axis=1), pi.actions)
    np.testing.assert_array_equal(pi.pi.sum(axis=1), 1.0)
    np.testing.assert_allclose(vi.Q, mdp.r + mdp.gamma * np.einsum("sat,t->sa", mdp.P, vi.V),
                               rtol=0, atol=1e-13 * s)


@pytest.mark.parametrize("seed", range(3))
def test_no_sampled_policy_beats_the_optimal_value(seed):
    rng = np.random.default_rng(seed)
    mdp = random_mdp(rng, 8, 4, gamma=0.95, sparsity=0.5)
    V_star = policy_iteration(mdp).V
    tol = 1e-10 * np.max(np.abs(V_star))
    for _ in range(100):  # deterministic policies (there are 4^8 = 65536; sample 100)
        V = evaluate(mdp, deterministic_policy(rng.integers(0, 4, size=8), 4)).V
        assert np.all(V <= V_star + tol)
    for _ in range(50):  # and stochastic ones
        V = evaluate(mdp, rng.dirichlet(np.full(4, 0.3), size=8)).V
        assert np.all(V <= V_star + tol)


def test_value_iteration_stopping_rule_is_the_first_iterate_that_meets_it():
    mdp = random_mdp(np.random.default_rng(5), 6, 3, gamma=0.9)
    vi = value_iteration(mdp, atol=1e-6, rtol=0.0)
    assert vi.converged
    early = value_iteration(mdp, atol=1e-6, rtol=0.0, max_iter=vi.iterations - 1)
    assert not early.converged and early.iterations == vi.iterations - 1
    # the true error is within the guarantee, and the guarantee is not vacuous
    V_star = policy_iteration(mdp).V
    err = np.max(np.abs(vi.V - V_star))
    assert err <= vi.error_bound <= 1e-6
    # ||V_{k+1} - V*|| <= gamma/(1-gamma) ||V_{k+1} - V_k||: rebuild V_k with one fewer step
    delta = np.max(np.abs(vi.V - early.V))
    assert err <= 0.9 / 0.1 * delta + 1e-15


def test_value_iteration_from_a_start_value():
    mdp = random_mdp(np.random.default_rng(2), 5, 2, gamma=0.8)
    V_star = policy_iteration(mdp).V
    vi = value_iteration(mdp, V0=V_star)  # already the fixed point: one backup
    assert vi.iterations == 1 and vi.converged
    np.testing.assert_allclose(vi.V, V_star, rtol=0, atol=1e-13)


def test_bellman_backup_and_greedy_actions():
    mdp = random_mdp(np.random.default_rng(9), 4, 3, gamma=0.7)
    V = np.arange(4.0)
    TV, Q = bellman_optimality_backup(mdp, V)
    Q_loops = np.array([[mdp.r[s, a] + 0.7 * sum(mdp.P[s, a, t] * V[t] for t in range(4))
                         for a in range(3)] for s in range(4)])
    np.testing.assert_allclose(Q, Q_loops, rtol=1e-14, atol=1e-15)
    np.testing.assert_array_equal(TV, Q.max(axis=1))
    np.testing.assert_array_equal(greedy_actions([[1.0, 2.0, 2.0], [3.0, 0.0, 3.0]]), [1, 0])


# ----------------------------------------------------------------- finite horizon

@pytest.mark.parametrize("gamma", [0.0, 0.8, 1.0])
def test_backward_induction_beats_every_time_indexed_deterministic_policy(gamma):
    rng = np.random.default_rng(3)
    mdp = random_mdp(rng, 2, 2, gamma=gamma, horizon=3)
    bi = backward_induction(mdp)
    stationary = list(itertools.product(range(2), repeat=2))
    best = -np.inf
    for plan in itertools.product(stationary, repeat=3):  # (A^S)^H = 64 time-indexed policies
        J = evaluate_finite_horizon(mdp, deterministic_policy(np.array(plan), 2)).J
        best = max(best, J)
    np.testing.assert_allclose(bi.J, best, rtol=1e-14, atol=1e-15)  # same sums, other order
    # the returned plan achieves it (exact evaluation of the time-indexed table)
    np.testing.assert_allclose(evaluate_finite_horizon(mdp, bi.pi).J, bi.J, rtol=1e-14,
                               atol=1e-15)
    assert bi.V.shape == (4, 2) and bi.Q.shape == (3, 2, 2) and bi.actions.shape == (3, 2)
    np.testing.assert_array_equal(bi.V[3], 0.0)


def test_backward_induction_converges_to_the_optimal_value():
    mdp = random_mdp(np.random.default_rng(4), 6, 3, gamma=0.9)
    V_star = policy_iteration(mdp).V
    tail = np.max(np.abs(mdp.r)) / (1 - mdp.gamma)
    for H in (1, 10, 50, 400):
        bi = backward_induction(mdp, H)
        # |V_0^H - V*| <= gamma^H max|r| / (1 - gamma): the optimal tail after H steps
        assert np.max(np.abs(bi.V[0] - V_star)) <= mdp.gamma ** H * tail + 1e-12 * tail
    # optimal actions at t = 0 of a long horizon are optimal stationary actions
    np.testing.assert_allclose(evaluate(mdp, bi.pi[0]).V, V_star, rtol=0, atol=1e-10 * tail)


# ----------------------------------------------------------------- gamma = 1 (SSP)

@settings(max_examples=20)
@given(mdps(episodic=True))
def test_stochastic_shortest_path_pi_and_vi_agree(mdp):
    acts = proper_actions(mdp)
    evaluate(mdp, deterministic_policy(acts, mdp.n_actions))  # proper: no ValueError
    pi = policy_iteration(mdp)
    vi = value_iteration(mdp, atol=1e-13, rtol=0.0)
    assert pi.error_bound == np.inf and vi.error_bound == np.inf  # no contraction at gamma = 1
    # termination probability >= 0.1 per step: VI's error is <= ||V_{k+1}-V_k|| / 0.1
    np.testing.assert_allclose(vi.V, pi.V, rtol=0, atol=1e-11)
    assert _residual_by_loops(mdp, pi.V) <= 1e-12
    best = _all_deterministic_values(mdp).max(axis=0) if mdp.n_actions ** mdp.n_states <= 81 \
        else pi.V
    np.testing.assert_allclose(pi.V, best, rtol=0, atol=1e-12)


def _corridor(stay_reward):
    """State 0: action 0 stays (reward stay_reward), action 1 ends the episode (reward -1)."""
    P = np.zeros((2, 2, 2))
    P[0, 0, 0] = P[0, 1, 1] = 1.0
    P[1, :, 1] = 1.0
    return FiniteMDP(P=P, r=[[stay_reward, -1.0], [0.0, 0.0]], rho0=[1.0, 0.0], gamma=1.0,
                     terminal=np.array([False, True]))


def test_proper_actions_and_violations_of_the_ssp_assumption():
    mdp = _corridor(-1.0)  # SSP assumption holds: staying forever costs -inf
    np.testing.assert_array_equal(proper_actions(mdp)[:1], [1])
    pi = policy_iteration(mdp)
    np.testing.assert_allclose(pi.V, [-1.0, 0.0], rtol=0, atol=0)
    # zero-reward loop: V* = -1 is still attained by the proper policy; ties keep it
    np.testing.assert_allclose(policy_iteration(_corridor(0.0)).V, [-1.0, 0.0], rtol=0, atol=0)
    # positive loop: the return is unbounded, PI reaches an improper policy and says why
    with pytest.raises(ValueError, match="stochastic-shortest-path assumption"):
        policy_iteration(_corridor(+1.0))
    vi = value_iteration(_corridor(+1.0), max_iter=50)
    assert not vi.converged and vi.V[0] == 50.0  # V_k(0) = k: grows by 1 per backup
    # an improper *initial* policy is rejected naming the argument
    with pytest.raises(ValueError, match="initial_actions"):
        policy_iteration(mdp, initial_actions=[0, 0])


def test_no_proper_policy_is_reported():
    P = np.zeros((3, 1, 3))
    P[0, 0, 2] = P[1, 0, 1] = P[2, 0, 2] = 1.0  # state 1 loops forever
    mdp = FiniteMDP(P=P, r=np.zeros((3, 1)), rho0=[1.0, 0, 0], gamma=1.0,
                    terminal=np.array([False, False, True]))
    with pytest.raises(ValueError, match=r"no proper policy exists.*\[1\]"):
        proper_actions(mdp)


# ----------------------------------------------------------------- validation

def test_bad_arguments_are_rejected_naming_them():
    mdp = random_mdp(np.random.default_rng(0), 3, 2)
    with pytest.raises(ValueError, match="atol"):
        value_iteration(mdp, atol=-1.0)
    with pytest.raises(ValueError, match="rtol"):
        value_iteration(mdp, rtol=float("nan"))
    with pytest.raises(ValueError, match="max_iter"):
        value_iteration(mdp, max_iter=0)
    with pytest.raises(ValueError, match="V0"):
        value_iteration(mdp, V0=np.zeros(4))
    with pytest.raises(ValueError, match="initial_actions"):
        policy_iteration(mdp, initial_actions=[0, 1, 2])
    with pytest.raises(ValueError, match="tie_rtol"):
        policy_iteration(mdp, tie_rtol=-1.0)
    with pytest.raises(ValueError, match="horizon"):
        backward_induction(mdp)
    with pytest.raises(TypeError, match="mdp"):
        value_iteration("not an mdp")
    with pytest.raises(ValueError, match="Q must be finite"):
        greedy_actions([[np.nan, 1.0]])
    with pytest.raises(ValueError, match="actions"):
        deterministic_policy([0, 2], 2)
    no_terminal = FiniteMDP(P=np.full((2, 1, 2), 0.5), r=np.zeros((2, 1)), rho0=[1.0, 0.0],
                            gamma=1.0, horizon=4)
    for f in (value_iteration, policy_iteration):
        with pytest.raises(ValueError, match="backward_induction"):
            f(no_terminal)
    with pytest.raises(ValueError, match="no terminal state"):
        proper_actions(no_terminal)
    episodic = random_mdp(np.random.default_rng(0), 3, 2, gamma=1.0, n_terminal=1)
    with pytest.raises(ValueError, match="V0 must be 0 on terminal"):
        value_iteration(episodic, V0=np.ones(3))
