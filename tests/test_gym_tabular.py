"""Tests for refpg.gym_tabular: the imported MDP is the environment.

Independent routes (derivations/gym_tabular.md):
* the REAL environment is stepped (its own sampler, its own RNG) and its transition
  frequencies are compared with the imported P by Pearson chi-square tests, with a fixed
  seed and a stated false-alarm rate (1e-6 for the summed statistic);
* whole episodes through gymnasium.make (TimeLimit and all) against episodes sampled from
  the imported MDP by refpg.sampling (two-sample chi-square per (s, a)) and against the
  exact finite-horizon value (z-test with the exact variance of the return);
* the optimal value of the import (policy iteration, exact) against a value iteration
  written here directly on the dict table env.unwrapped.P, which knows nothing about
  terminal copies or absorbing states.
"""
import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from scipy.stats import chi2, norm

from refpg.evaluation import evaluate_finite_horizon, return_moments
from refpg.gym_tabular import env_to_mdp_state, from_gymnasium
from refpg.planning import policy_iteration, value_iteration
from refpg.sampling import sample_from_table

ALPHA = 1e-6  # false-alarm rate of every chi-square and z test below
Z = norm.isf(ALPHA / 2)  # two-sided: 4.89


class ThreeStateEnv(gym.Env):
    """A toy-text style env whose table forces terminal *copies*.

    State 2 is entered terminating (from 1) and not terminating (from 0); state 0 is
    entered terminating (from 1) but also starts episodes. Neither may be marked
    terminal in place.
    """

    def __init__(self):
        self.observation_space = spaces.Discrete(3)
        self.action_space = spaces.Discrete(2)
        self.initial_state_distrib = np.array([1.0, 0.0, 0.0])
        self.P = {
            0: {0: [(0.5, 0, -1.0, False), (0.5, 1, 0.0, False)],
                1: [(0.5, 2, 2.0, False), (0.5, 1, 0.0, False)]},
            1: {0: [(0.3, 0, 5.0, True), (0.7, 1, -1.0, False)],
                1: [(0.6, 2, 1.0, True), (0.4, 0, 0.0, False)]},
            2: {0: [(1.0, 2, -1.0, False)], 1: [(0.9, 0, 0.0, False), (0.1, 2, 3.0, True)]},
        }

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.s = int(self.np_random.choice(3, p=self.initial_state_distrib))
        return self.s, {}

    def step(self, a):
        entries = self.P[self.s][a]
        i = self.np_random.choice(len(entries), p=[e[0] for e in entries])
        p, s, r, t = entries[i]
        self.s = s
        return s, r, t, False, {}


def _make(env_id, kw):
    return ThreeStateEnv() if env_id == "three-state" else gym.make(env_id, **kw)


def _import(env_id, kw, gamma):
    if env_id == "three-state":
        return from_gymnasium(ThreeStateEnv(), gamma=gamma, horizon=None)
    return from_gymnasium(env_id, gamma=gamma, **kw)


def _flat_table(P, S, A):
    """(s, a, p, s', r, terminated) arrays straight from the dict table."""
    rows = [(s, a, p, s2, r, t) for s in range(S) for a in range(A) for (p, s2, r, t) in P[s][a]]
    s, a, p, s2, r, t = (np.array(c) for c in zip(*rows))
    return s.astype(int), a.astype(int), p.astype(float), s2.astype(int), r.astype(float), \
        t.astype(bool)


def _value_iteration_on_env_table(P, S, A, gamma, tol=1e-13, max_iter=200_000):
    """V(s) = max_a sum_entries p (r + gamma (1 - terminated) V(s')): gymnasium semantics."""
    s, a, p, s2, r, t = _flat_table(P, S, A)
    V = np.zeros(S)
    for _ in range(max_iter):
        Q = np.zeros((S, A))
        np.add.at(Q, (s, a), p * (r + gamma * np.where(t, 0.0, V[s2])))
        V_new = Q.max(axis=1)
        if np.max(np.abs(V_new - V)) <= tol:
            return V_new
        V = V_new
    raise AssertionError("value iteration on the env table did not converge")


# ----------------------------------------------------------------- optimal values

OPTIMAL_CASES = [
    ("FrozenLake-v1", {}, 0.95),
    ("FrozenLake-v1", {}, 1.0),
    ("FrozenLake-v1", {"is_slippery": False}, 0.9),
    ("FrozenLake-v1", {"desc": ["SFH", "FFF", "HFG"], "success_rate": 0.6,
                       "reward_schedule": (2, -1, 0)}, 0.9),
    ("FrozenLake8x8-v1", {}, 0.99),
    ("CliffWalking-v1", {}, 1.0),
    ("CliffWalking-v1", {"is_slippery": True}, 0.95),
    ("Taxi-v4", {}, 0.95),
    ("Taxi-v4", {"is_rainy": True}, 1.0),
    ("three-state", {}, 0.9),
]


@pytest.mark.parametrize("env_id, kw, gamma", OPTIMAL_CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in OPTIMAL_CASES])
def test_optimal_value_equals_value_iteration_on_the_env_table(env_id, kw, gamma):
    mdp = _import(env_id, kw, gamma)
    env = _make(env_id, kw)
    u = env.unwrapped
    S, A = u.observation_space.n, u.action_space.n
    V_env = _value_iteration_on_env_table(u.P, S, A, gamma)
    pi = policy_iteration(mdp)  # exact: linear solves
    live = np.setdiff1d(np.arange(S), mdp.info["terminal_in_place"])
    # gymnasium never continues from a state made terminal in place, so the env table's
    # value there is meaningless; on every other state the two must agree. Tolerance: the
    # env-side VI stops at increments of 1e-13, i.e. an error <= 1e-13 / (1 - rate) ~ 1e-10.
    np.testing.assert_allclose(pi.V[live], V_env[live], rtol=1e-8, atol=1e-8)
    np.testing.assert_array_equal(pi.V[mdp.terminal], 0.0)
    if gamma < 1.0:
        vi = value_iteration(mdp)
        np.testing.assert_allclose(vi.V, pi.V, rtol=0, atol=vi.error_bound + 1e-10)
    env.close()


def test_cliff_walking_optimal_return_is_minus_thirteen():
    # Sutton & Barto (2018), Example 6.6 (p. 132): the optimal path runs along the cliff edge:
    # 1 step up, 11 right, 1 down = 13 steps at -1 each (counted by hand from the 4x12 map).
    mdp = from_gymnasium("CliffWalking-v1", gamma=1.0)
    assert policy_iteration(mdp).V[36] == -13.0
    assert mdp.info["terminal_in_place"].tolist() == [47] and mdp.horizon is None


# ----------------------------------------------------------------- the real env, stepped

def _pairs(S, A, n_pairs, rng):
    pairs = [(s, a) for s in range(S) for a in range(A)]
    if n_pairs < len(pairs):
        idx = rng.choice(len(pairs), size=n_pairs, replace=False)
        pairs = [pairs[i] for i in sorted(idx)]
    return pairs


def _generative_chi2(mdp, u, pairs, n):
    """Step the unwrapped env n times from each (s, a); Pearson statistic against mdp.P.

    Returns (statistic, degrees of freedom, worst |mean reward - r(s, a)| / Hoeffding bound).
    Raises if an outcome has probability 0 under the import.
    """
    S, A = u.observation_space.n, u.action_space.n
    table_r = _flat_table(u.P, S, A)[4]
    bound = (table_r.max() - table_r.min()) * np.sqrt(np.log(2 / ALPHA) / (2 * n))
    in_place = set(mdp.info["terminal_in_place"].tolist())  # gymnasium never steps from them
    stat, dof, worst = 0.0, 0, 0.0
    for s, a in pairs:
        if s in in_place:
            continue
        obs, term, rew = np.zeros(n, int), np.zeros(n, bool), np.zeros(n)
        for i in range(n):
            u.s = s
            obs[i], rew[i], term[i], _, _ = u.step(a)
        m = env_to_mdp_state(mdp, obs, term)  # raises on an outcome the import cannot produce
        counts = np.bincount(m, minlength=mdp.n_states)
        p = mdp.P[s, a]
        assert np.all(p[counts > 0] > 0), (s, a)
        support = p > 0
        stat += np.sum((counts[support] - n * p[support]) ** 2 / (n * p[support]))
        dof += int(support.sum()) - 1
        if bound > 0:
            worst = max(worst, abs(rew.mean() - mdp.r[s, a]) / bound)
        else:
            assert np.all(rew == mdp.r[s, a])
    return stat, dof, worst


GENERATIVE_CASES = [
    ("FrozenLake-v1", {}, None, 1000),
    ("FrozenLake8x8-v1", {}, None, 100),
    ("CliffWalking-v1", {"is_slippery": True}, None, 100),
    ("CliffWalking-v1", {}, None, 3),
    ("Taxi-v4", {"is_rainy": True}, 250, 100),
    ("Taxi-v4", {}, 200, 3),
    ("three-state", {}, None, 2000),
]


@pytest.mark.parametrize("env_id, kw, n_pairs, n", GENERATIVE_CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in GENERATIVE_CASES])
def test_real_env_transition_frequencies_match_the_imported_P(env_id, kw, n_pairs, n):
    """Put the env in state s (``env.unwrapped.s = s``), step a n times, count outcomes.

    Given the number of trials, the counts of each (s, a) are multinomial(n, P[s, a]) under
    the null hypothesis that the import is exact; Pearson's statistic summed over pairs is
    asymptotically chi-square with sum(k_sa - 1) degrees of freedom (expected counts >= 10
    here). Reject at ALPHA = 1e-6. An outcome the import gives probability 0 fails at once;
    mean rewards must lie within Hoeffding's bound (level ALPHA) of r(s, a).
    """
    mdp = _import(env_id, kw, 0.9)
    env = _make(env_id, kw)
    u = env.unwrapped
    u.reset(seed=12345)
    S, A = u.observation_space.n, u.action_space.n
    pairs = _pairs(S, A, n_pairs or S * A, np.random.default_rng(0))
    stat, dof, worst = _generative_chi2(mdp, u, pairs, n)
    if dof == 0:
        assert stat == 0.0  # deterministic env: every outcome was the single supported one
    else:
        assert stat <= chi2.isf(ALPHA, dof), (stat, dof)
    assert worst <= 1.0
    env.close()


def test_the_chi_square_test_detects_a_slightly_wrong_import():
    # power check: an import with success_rate 0.38 instead of FrozenLake's 1/3 (each
    # transition probability off by <= 0.047) must be rejected by the same test and n
    mdp = from_gymnasium("FrozenLake-v1", gamma=0.9, success_rate=0.38)
    env = gym.make("FrozenLake-v1")
    u = env.unwrapped
    u.reset(seed=12345)
    stat, dof, _ = _generative_chi2(mdp, u, _pairs(16, 4, 64, None), 1000)
    assert stat > chi2.isf(ALPHA, dof), (stat, dof)  # measured: 421 vs threshold 161
    env.close()


def _env_episodes(env, n_episodes, rng, seed):
    """Uniform-random-action episodes through the wrapped env (TimeLimit included)."""
    A = env.action_space.n
    starts, steps, returns, lengths, truncs = [], [], [], [], []
    obs, _ = env.reset(seed=seed)
    for _ in range(n_episodes):
        starts.append(obs)
        G, t = 0.0, 0
        while True:
            a = int(rng.integers(A))
            obs2, r, term, trunc, _ = env.step(a)
            steps.append((obs, a, obs2, term))
            G += r
            t += 1
            obs = obs2
            if term or trunc:
                break
        returns.append(G)
        lengths.append(t)
        truncs.append(trunc and not term)
        obs, _ = env.reset()
    return (np.array(starts), np.array(steps, dtype=int), np.array(returns), np.array(lengths),
            np.array(truncs))


EPISODE_CASES = [
    ("FrozenLake-v1", {}, 4000),
    ("Taxi-v4", {"is_rainy": True, "max_episode_steps": 25}, 600),
    ("CliffWalking-v1", {"max_episode_steps": 40}, 400),
]


@pytest.mark.parametrize("env_id, kw, n_episodes", EPISODE_CASES,
                         ids=[c[0] for c in EPISODE_CASES])
def test_episodes_of_the_real_env_match_the_imported_mdp(env_id, kw, n_episodes):
    mdp = from_gymnasium(env_id, gamma=1.0, **kw)
    H = mdp.horizon
    env = gym.make(env_id, **kw)
    A = mdp.n_actions
    pi = np.full((mdp.n_states, A), 1.0 / A)
    starts, steps, G_env, lengths, truncs = _env_episodes(env, n_episodes,
                                                          np.random.default_rng(7), seed=7)
    env.close()
    # time limit: truncated exactly at the imported horizon, never earlier
    assert np.all(lengths[truncs] == H) and np.all(lengths <= H)
    # every env transition maps onto the import, terminated exactly when entering a terminal
    s_mdp = env_to_mdp_state(mdp, steps[:, 0], np.zeros(len(steps), bool))
    s2_mdp = env_to_mdp_state(mdp, steps[:, 2], steps[:, 3].astype(bool))
    np.testing.assert_array_equal(mdp.terminal[s2_mdp], steps[:, 3].astype(bool))
    # two-sample chi-square per (s, a): env next states vs refpg.sampling's on the import
    batch = sample_from_table(mdp, pi, n_episodes, np.random.default_rng(8))
    v = batch.mask
    stat, dof = 0.0, 0
    for s in range(mdp.n_states):
        for a in range(A):
            x = s2_mdp[(s_mdp == s) & (steps[:, 1] == a)]
            y = batch.next_states[v & (batch.states == s) & (batch.actions == a)]
            if min(x.size, y.size) < 30:
                continue
            cx = np.bincount(x, minlength=mdp.n_states)
            cy = np.bincount(y, minlength=mdp.n_states)
            keep = (cx + cy) > 0
            pooled = (cx + cy)[keep] / (x.size + y.size)
            ex, ey = x.size * pooled, y.size * pooled
            stat += np.sum((cx[keep] - ex) ** 2 / ex) + np.sum((cy[keep] - ey) ** 2 / ey)
            dof += int(keep.sum()) - 1
    assert dof == 0 or stat <= chi2.isf(ALPHA, dof), (stat, dof)
    # mean return of the real env vs the exact J_H of the import, exact variance
    J = evaluate_finite_horizon(mdp, pi).J
    if env_id.startswith("FrozenLake"):
        var = J * (1 - J)  # gamma = 1, reward 1 only on reaching the goal: G is Bernoulli(J)
    else:
        # the reward of these envs is a function of (s, a) (checked below), so the return's
        # exact variance is the variance Bellman recursion on the import
        table_env = gym.make(env_id, **kw)
        s_, a_, _, _, r_, _ = _flat_table(table_env.unwrapped.P, mdp.info["n_env_states"], A)
        table_env.close()
        live = ~np.isin(s_, mdp.info["terminal_in_place"])
        assert np.all(r_[live] == mdp.r[s_[live], a_[live]])
        var = return_moments(mdp, pi, horizon=H).variance
    assert abs(G_env.mean() - J) <= Z * np.sqrt(var / n_episodes), (G_env.mean(), J)
    # start states: chi-square against rho0 (Taxi: 300 starts, expected >= 20 each)
    if np.count_nonzero(mdp.rho0) > 1:
        env = gym.make(env_id, **kw)
        env.reset(seed=3)
        first = np.array([env.reset()[0] for _ in range(6000)])
        counts = np.bincount(first, minlength=mdp.n_states)
        p0 = mdp.rho0 > 0
        assert np.all(counts[~p0] == 0)
        e = 6000 * mdp.rho0[p0]
        assert np.sum((counts[p0] - e) ** 2 / e) <= chi2.isf(ALPHA, p0.sum() - 1)
        env.close()
    else:
        assert np.all(starts == np.flatnonzero(mdp.rho0)[0])


# ----------------------------------------------------------------- the mapping and errors

def test_frozen_lake_terminals_in_place_and_reduced_rewards():
    mdp = from_gymnasium("FrozenLake-v1", gamma=0.9)
    # holes 5, 7, 11, 12 and goal 15 of the 4x4 map: reached only by terminated transitions
    assert mdp.info["terminal_in_place"].tolist() == [5, 7, 11, 12, 15]
    assert mdp.n_states == 16 and mdp.info["terminal_copies"] == {}
    assert mdp.horizon == 100 and mdp.info["horizon_source"] == "spec.max_episode_steps"
    np.testing.assert_array_equal(mdp.rho0, np.eye(16)[0])
    # state 14 (row 3, col 2), action right: right -> goal (+1), up -> 10, down -> 14, each
    # 1/3 by hand from the map, so r(14, right) = 1/3
    np.testing.assert_allclose(mdp.r[14, 2], 1 / 3, rtol=1e-15, atol=0)
    np.testing.assert_allclose(mdp.P[14, 2, [10, 14, 15]], 1 / 3, rtol=1e-15, atol=0)
    assert from_gymnasium("FrozenLake8x8-v1", gamma=0.9).horizon == 200
    assert from_gymnasium("FrozenLake-v1", gamma=0.9, horizon=7).horizon == 7
    assert from_gymnasium("FrozenLake-v1", gamma=0.9, horizon=None).horizon is None


def test_taxi_delivered_states_get_terminal_copies():
    mdp = from_gymnasium("Taxi-v4", gamma=0.99)
    env = gym.make("Taxi-v4")
    u = env.unwrapped
    # the four "delivered" states (taxi and passenger at the destination) are entered by
    # a successful dropoff (terminated) and by moving around with the passenger already there
    delivered = sorted(u.encode(*u.locs[d], d, d) for d in range(4))
    assert sorted(mdp.info["terminal_copies"].values()) == delivered
    assert mdp.n_states == 504 and mdp.info["terminal_in_place"].size == 0
    assert mdp.terminal[500:].all() and not mdp.terminal[:500].any()
    np.testing.assert_array_equal(mdp.rho0[500:], 0.0)
    np.testing.assert_allclose(mdp.rho0[:500], u.initial_state_distrib, rtol=0, atol=0)
    # dropoff at the destination with the passenger in the taxi: +20 into the copy
    s = u.encode(*u.locs[1], 4, 1)
    copy = mdp.info["terminal_index"][u.encode(*u.locs[1], 1, 1)]
    assert copy >= 500 and mdp.P[s, 5, copy] == 1.0 and mdp.r[s, 5] == 20.0
    np.testing.assert_array_equal(mdp.info["env_state"][500:], delivered)
    # mapping observed transitions
    assert env_to_mdp_state(mdp, [delivered[0]], [True]).tolist() == [500]
    assert env_to_mdp_state(mdp, [delivered[0]], [False]).tolist() == [delivered[0]]
    with pytest.raises(ValueError, match="no terminated transition"):
        env_to_mdp_state(mdp, [7], [True])
    env.close()


def test_three_state_env_copies_states_that_start_episodes():
    mdp = from_gymnasium(ThreeStateEnv(), gamma=0.9, horizon=None)
    assert mdp.info["terminal_copies"] == {3: 0, 4: 2}
    assert mdp.info["env_id"] == "ThreeStateEnv" and mdp.horizon is None
    np.testing.assert_allclose(mdp.P[1, 0], [0.0, 0.7, 0.0, 0.3, 0.0], rtol=0, atol=0)
    np.testing.assert_allclose(mdp.r[1, 0], 0.3 * 5.0 - 0.7, rtol=1e-15, atol=0)


def test_in_place_terminal_arrival_without_termination_is_rejected():
    mdp = from_gymnasium("FrozenLake-v1", gamma=0.9)
    with pytest.raises(ValueError, match="terminal in the imported MDP"):
        env_to_mdp_state(mdp, [5], [False])
    with pytest.raises(ValueError, match="terminated must be a bool"):
        env_to_mdp_state(mdp, [5], [1])
    with pytest.raises(TypeError, match="from_gymnasium"):
        env_to_mdp_state(from_gymnasium("FrozenLake-v1", gamma=0.9).replace(info={}), [0],
                         [False])


def test_bad_environments_and_arguments_are_rejected():
    with pytest.raises(ValueError, match="fickle_passenger"):
        from_gymnasium("Taxi-v4", gamma=0.9, fickle_passenger=True)
    with pytest.raises(ValueError, match="Discrete"):
        from_gymnasium("Blackjack-v1", gamma=1.0)  # Tuple observations, no table
    tableless = ThreeStateEnv()
    del tableless.P
    with pytest.raises(ValueError, match="no transition table"):
        from_gymnasium(tableless, gamma=0.9, horizon=None)
    with pytest.raises(ValueError, match="Discrete"):
        from_gymnasium("CartPole-v1", gamma=0.9)
    env = gym.make("FrozenLake-v1")
    with pytest.raises(ValueError, match="make_kwargs"):
        from_gymnasium(env, gamma=0.9, is_slippery=False)
    with pytest.raises(TypeError, match="env must be"):
        from_gymnasium(3, gamma=0.9)
    with pytest.raises(ValueError, match="gamma"):
        from_gymnasium("FrozenLake-v1", gamma=1.5)
    # an instance is read as it is (its spec gives the horizon)
    assert from_gymnasium(env, gamma=0.9).horizon == 100
    env.close()
    bad = ThreeStateEnv()
    bad.P[0][0] = [(0.5, 0, 0.0, False), (0.6, 1, 0.0, False)]
    with pytest.raises(ValueError, match="P"):
        from_gymnasium(bad, gamma=0.9, horizon=None)
    bad = ThreeStateEnv()
    bad.P[0][0] = [(1.0, 7, 0.0, False)]
    with pytest.raises(ValueError, match="next state"):
        from_gymnasium(bad, gamma=0.9, horizon=None)
