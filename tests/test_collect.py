"""The gymnasium collector (refpg.collect, derivations/collect.md).

Independent routes: the environment itself (a plain gymnasium loop replaying
the recorded actions from the same seeds must reproduce every observation,
reward and flag), the environment's transition table ``env.unwrapped.P``
(chi-square of the first transition, exactly multinomial across episodes), and
the policy's own ``log_prob``.
"""
from dataclasses import fields

import gymnasium
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import chi2

from refpg.batch import Batch
from refpg.collect import collect
from refpg.policies import LinearSoftmaxPolicy, MLPSoftmaxPolicy, TabularSoftmaxPolicy

ALPHA = 1e-6   # false-alarm rate of the chi-square test (fixed seed: deterministic)


def replay(env_id, batch, seeds, discrete_action=True, **kwargs):
    """Replay the recorded actions in a fresh environment; compare everything."""
    env = gymnasium.make(env_id, **kwargs)
    for i in range(batch.n_episodes):
        obs, _ = env.reset(seed=int(seeds[i]))
        for t in range(int(batch.lengths[i])):
            assert_array_equal(batch.states[i, t], obs)
            a = int(batch.actions[i, t]) if discrete_action else batch.actions[i, t]
            obs, r, term, trunc, _ = env.step(a)
            assert_array_equal(batch.next_states[i, t], obs)
            assert batch.rewards[i, t] == float(r)
            assert batch.terminated[i, t] == term
            if t < batch.lengths[i] - 1:
                assert not (term or trunc)
    env.close()


def revalidate(batch):
    return Batch(**{f.name: getattr(batch, f.name) for f in fields(batch)})


def test_cartpole_with_a_linear_softmax_policy_replays_exactly():
    policy = LinearSoftmaxPolicy.for_observations(4, 2)
    theta = np.array([0.0, 0.0, 5.0, 1.0, 0.0, 0.0, 0.0, -5.0, -1.0, 0.0])
    rng = np.random.default_rng(3)
    b = collect("CartPole-v1", policy, theta, 6, rng)
    revalidate(b)
    seeds = np.random.default_rng(3).integers(2**31, size=6)   # documented seed rule
    replay("CartPole-v1", b, seeds)
    assert b.states.shape[2] == 4 and b.states.dtype == np.float64
    assert b.max_steps <= 500
    ends = b.terminated | b.truncated
    assert_array_equal(ends.sum(axis=1), 1)
    assert_array_equal(b.truncated.any(axis=1), b.lengths == 500)   # TimeLimit(500)
    m = b.mask
    assert_allclose(b.log_probs[m], policy.log_prob(theta, b.states[m], b.actions[m]),
                    rtol=1e-15, atol=0)


def test_pendulum_with_a_linear_gaussian_policy_is_always_truncated():
    from refpg.policies import LinearGaussianPolicy

    policy = LinearGaussianPolicy(3, 1)
    theta = np.array([-1.0, 0.0, -0.5, np.log(0.5)])
    b = collect("Pendulum-v1", policy, theta, 3, np.random.default_rng(0))
    revalidate(b)
    assert b.actions.shape == (3, 200, 1) and b.actions.dtype == np.float64
    assert_array_equal(b.lengths, 200)
    assert b.truncated[:, -1].all() and not b.terminated.any()
    assert_allclose(b.log_probs, policy.log_prob(theta, b.states, b.actions), rtol=1e-15,
                    atol=0)
    seeds = np.random.default_rng(0).integers(2**31, size=3)
    replay("Pendulum-v1", b, seeds, discrete_action=False)


def test_frozenlake_first_transition_matches_the_environment_table():
    """Episode i's first (a_0, s_1) is an independent draw of pi(a|0) P(s'|0, a):
    the counts over episodes are exactly multinomial (chi-square, ALPHA)."""
    env = gymnasium.make("FrozenLake-v1")
    S, A = 16, 4
    P = np.zeros((S, A, S))
    for s in range(S):
        for a in range(A):
            for p, s2, _, _ in env.unwrapped.P[s][a]:
                P[s, a, s2] += p
    policy = TabularSoftmaxPolicy(S, A)
    theta = policy.init_params(np.random.default_rng(1), scale=0.3)
    pi = policy.probs_table(theta)
    n = 2000
    b = collect("FrozenLake-v1", policy, theta, n, np.random.default_rng(2), max_steps=1)
    revalidate(b)
    assert_array_equal(b.states[:, 0], 0)
    counts = np.bincount(b.actions[:, 0] * S + b.next_states[:, 0], minlength=A * S)
    exact = (pi[0][:, None] * P[0]).ravel()
    assert np.all(counts[exact == 0] == 0)
    pos = exact > 0
    assert (n * exact[pos]).min() >= 20
    stat = np.sum((counts[pos] - n * exact[pos]) ** 2 / (n * exact[pos]))
    assert chi2.sf(stat, pos.sum() - 1) > ALPHA
    # max_steps = 1: every episode that did not fall into a hole is truncated
    holes_or_goal = np.array([c in b"HG" for c in env.unwrapped.desc.ravel()])
    assert_array_equal(b.terminated[:, 0], holes_or_goal[b.next_states[:, 0]])
    assert_array_equal(b.truncated[:, 0], ~b.terminated[:, 0])


def test_frozenlake_full_episodes_flags_and_rewards():
    policy = TabularSoftmaxPolicy(16, 4)
    theta = np.zeros(64)
    b = collect("FrozenLake-v1", policy, theta, 40, np.random.default_rng(5))
    revalidate(b)
    desc = gymnasium.make("FrozenLake-v1").unwrapped.desc.ravel()
    m = b.mask
    terminal = np.array([c in b"HG" for c in desc])
    assert_array_equal(b.terminated[m], terminal[b.next_states[m]])
    assert_array_equal(b.rewards[m], (desc[b.next_states[m]] == b"G").astype(float))
    assert_allclose(b.log_probs[m], np.log(0.25), rtol=1e-15, atol=0)
    assert np.all(b.lengths <= 100)
    seeds = np.random.default_rng(5).integers(2**31, size=40)
    replay("FrozenLake-v1", b, seeds)


def test_taxi_with_our_own_time_limit():
    policy = TabularSoftmaxPolicy(500, 6)
    b = collect("Taxi-v4", policy, np.zeros(3000), 4, np.random.default_rng(0), max_steps=25)
    revalidate(b)
    assert_array_equal(b.lengths, 25)           # a random taxi does not finish in 25 steps
    assert b.truncated[:, 24].all() and not b.terminated.any()


def test_cliffwalking_needs_max_steps():
    policy = TabularSoftmaxPolicy(48, 4)
    with pytest.raises(ValueError, match="max_steps"):
        collect("CliffWalking-v1", policy, np.zeros(192), 2, np.random.default_rng(0))
    b = collect("CliffWalking-v1", policy, np.zeros(192), 2, np.random.default_rng(0),
                max_steps=30)
    revalidate(b)
    seeds = np.random.default_rng(0).integers(2**31, size=2)
    replay("CliffWalking-v1", b, seeds)


def test_same_seed_gives_a_bit_identical_batch_across_env_groups():
    policy = MLPSoftmaxPolicy(4, 2, hidden=(5,))
    theta = policy.init_params(np.random.default_rng(0), scale=0.5)
    a = collect("CartPole-v1", policy, theta, 5, np.random.default_rng(9), n_envs=2)
    b = collect("CartPole-v1", policy, theta, 5, np.random.default_rng(9), n_envs=2)
    for f in fields(a):
        assert_array_equal(getattr(a, f.name), getattr(b, f.name))
    seeds = np.random.default_rng(9).integers(2**31, size=5)
    replay("CartPole-v1", a, seeds)


def test_a_factory_is_accepted():
    policy = TabularSoftmaxPolicy(16, 4)
    b = collect(lambda: gymnasium.make("FrozenLake-v1", is_slippery=False), policy,
                np.zeros(64), 3, np.random.default_rng(0))
    revalidate(b)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(n_episodes=0), ValueError, "n_episodes"),
    (dict(rng=0), TypeError, "rng"),
    (dict(theta=np.zeros(3)), ValueError, "theta"),
    (dict(policy="uniform"), TypeError, "policy"),
    (dict(env="NoSuchEnv-v0"), ValueError, "env"),
    (dict(env=3), TypeError, "env"),
    (dict(max_steps=0), ValueError, "max_steps"),
])
def test_bad_input_names_the_argument(kwargs, exc, match):
    args = dict(env="FrozenLake-v1", policy=TabularSoftmaxPolicy(16, 4), theta=np.zeros(64),
                n_episodes=2, rng=np.random.default_rng(0))
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        collect(**args)
