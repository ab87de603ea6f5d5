"""Rolling a policy in real gymnasium environments into a ``Batch`` (issue 3, item 2).

``collect(env, policy, theta, n_episodes, rng)`` plays ``N`` episodes of any
``refpg.policies.base.Policy`` (tabular, linear or MLP softmax, linear
Gaussian) in a gymnasium environment and returns the same ``Batch`` as the
finite-MDP sampler, one episode per row (derivations/collect.md#the-collector):

    s_0 = env.reset(seed=seeds[i])[0],   a_t ~ pi_theta(. | s_t),
    (s_{t+1}, r_t, terminated_t, truncated_t) = env.step(a_t)                    (C1)

with gymnasium's semantics: ``terminated`` = the environment reached a terminal
state (no bootstrap), ``truncated`` = a time limit cut the episode (the
environment's ``TimeLimit`` or ``max_steps`` here; bootstrap from ``V(s_{t+1})``).
``next_states[:, t]`` is the observation returned by ``step``, before any reset;
``rewards`` are the rewards the environment returned; ``log_probs`` is
``policy.log_prob`` of the action actually sent (for a Gaussian policy on
Pendulum, the unclipped sample: the environment clips the torque itself).

gymnasium is imported here (lazily) and in ``refpg.gym_tabular`` only.
"""
from __future__ import annotations

import numpy as np

from .batch import Batch
from .policies.base import Policy
from .validation import check_positive_int, check_rng

__all__ = ["collect"]


def _make(env, env_kwargs):
    import gymnasium

    if isinstance(env, str):
        try:
            return gymnasium.make(env, **env_kwargs)
        except gymnasium.error.Error as exc:
            raise ValueError(f"env {env!r} could not be made by gymnasium: {exc}") from exc
    if callable(env):
        if env_kwargs:
            raise ValueError("env_kwargs are only used with an environment id")
        made = env()
        if not hasattr(made, "step") or not hasattr(made, "reset"):
            raise TypeError(f"env() must return a gymnasium environment; got "
                            f"{type(made).__name__}")
        return made
    raise TypeError(f"env must be a gymnasium environment id (str) or a zero-argument "
                    f"factory returning an environment; got {type(env).__name__}")


def _time_limit(e):
    spec = getattr(e, "spec", None)
    return None if spec is None else spec.max_episode_steps


def collect(env, policy, theta, n_episodes, rng, *, max_steps=None, env_kwargs=None,
            n_envs=64):
    """Play ``N`` episodes of ``policy`` in ``env`` (C1); returns a ``Batch`` ``(N, T)``.

    ``env``: a gymnasium id (``"CartPole-v1"``, ``"Pendulum-v1"``,
    ``"FrozenLake-v1"``, ``"CliffWalking-v1"``, ``"Taxi-v4"``...) made with
    ``env_kwargs``, or a zero-argument factory. ``policy``: a ``Policy`` whose
    observations are what the environment returns (state indices for
    ``Discrete`` spaces, float vectors for ``Box``); ``theta: (d,)`` real.
    ``max_steps``: an extra time limit (``truncated`` at step ``max_steps - 1``
    unless terminated); required when the environment has no ``TimeLimit``
    (CliffWalking-v1), so that every episode ends. ``T`` is the longest episode.

    Randomness: ``seeds = rng.integers(2**31, size=N)`` first (episode ``i`` is
    reset with ``seed=int(seeds[i])``), then the actions, one
    ``policy.sample`` call per time step for the running episodes; episodes run
    in lockstep in groups of ``n_envs`` environments. The same ``rng`` state
    gives a bit-identical batch. Shapes: ``states, next_states: (N, T)`` int
    (``Discrete``) or ``(N, T, k)`` float64 (``Box``); ``actions: (N, T)`` int
    or ``(N, T, m)`` float64. derivations/collect.md#the-collector
    """
    if not isinstance(policy, Policy):
        raise TypeError(f"policy must be a refpg Policy; got {type(policy).__name__}")
    theta = policy.check_theta(theta)
    if np.iscomplexobj(theta):
        raise TypeError("theta must be real to sample actions")
    N = check_positive_int("n_episodes", n_episodes)
    check_rng(rng)
    n_envs = check_positive_int("n_envs", n_envs)
    if max_steps is not None:
        max_steps = check_positive_int("max_steps", max_steps)
    env_kwargs = {} if env_kwargs is None else dict(env_kwargs)
    import gymnasium

    envs = [_make(env, env_kwargs) for _ in range(min(n_envs, N))]
    try:
        e0 = envs[0]
        if max_steps is None and _time_limit(e0) is None:
            raise ValueError(f"max_steps is required: {getattr(e0.spec, 'id', e0)} has no "
                             f"time limit, so an episode might never end")
        discrete_obs = isinstance(e0.observation_space, gymnasium.spaces.Discrete)
        discrete_act = isinstance(e0.action_space, gymnasium.spaces.Discrete)
        seeds = rng.integers(2**31, size=N)
        episodes = []
        for g0 in range(0, N, len(envs)):
            group = range(g0, min(N, g0 + len(envs)))
            episodes.extend(_play(envs, group, seeds, policy, theta, rng, max_steps,
                                  discrete_act))
    finally:
        for e in envs:
            e.close()
    return _to_batch(episodes, discrete_obs, discrete_act, e0)


def _play(envs, group, seeds, policy, theta, rng, max_steps, discrete_act):
    """Run the episodes of ``group`` in lockstep; one record (dict of lists) each."""
    recs = [dict(s=[], a=[], r=[], lp=[], s2=[], term=[], trunc=[]) for _ in group]
    obs = [envs[j].reset(seed=int(seeds[i]))[0] for j, i in enumerate(group)]
    alive = list(range(len(recs)))
    t = 0
    while alive:
        o = np.stack([np.asarray(obs[j]) for j in alive])
        acts = policy.sample(theta, o, rng)
        logp = policy.log_prob(theta, o, acts)
        still = []
        for k, j in enumerate(alive):
            a = int(acts[k]) if discrete_act else np.asarray(acts[k], dtype=np.float64)
            o2, r, term, trunc, _ = envs[j].step(a)
            term, trunc = bool(term), bool(trunc)
            if max_steps is not None and t + 1 >= max_steps and not term:
                trunc = True
            rec = recs[j]
            rec["s"].append(obs[j])
            rec["a"].append(a)
            rec["r"].append(float(r))
            rec["lp"].append(float(logp[k]))
            rec["s2"].append(o2)
            rec["term"].append(term)
            rec["trunc"].append(trunc and not term)
            obs[j] = o2
            if not (term or trunc):
                still.append(j)
        alive = still
        t += 1
    return recs


def _to_batch(episodes, discrete_obs, discrete_act, env):
    N = len(episodes)
    T = max(len(e["r"]) for e in episodes)

    def field(key, discrete, space):
        if discrete:
            out = np.zeros((N, T), np.int64)
        else:
            out = np.zeros((N, T) + tuple(space.shape))
        for i, e in enumerate(episodes):
            if e[key]:
                out[i, :len(e[key])] = np.asarray(e[key])
        return out

    lengths = np.array([len(e["r"]) for e in episodes])
    mask = np.arange(T)[None, :] < lengths[:, None]
    scalars = {}
    for key, dtype in (("r", float), ("lp", float), ("term", bool), ("trunc", bool)):
        arr = np.zeros((N, T), dtype)
        for i, e in enumerate(episodes):
            arr[i, :lengths[i]] = e[key]
        scalars[key] = arr
    states = field("s", discrete_obs, env.observation_space)
    next_states = field("s2", discrete_obs, env.observation_space)
    actions = field("a", discrete_act, env.action_space)
    if not discrete_act and actions.ndim == 2:   # a scalar Box action: (N, T, 1)
        actions = actions[..., None]
    return Batch(states=states, actions=actions, rewards=scalars["r"],
                 log_probs=scalars["lp"], next_states=next_states,
                 terminated=scalars["term"], truncated=scalars["trunc"], mask=mask,
                 n_states=int(env.observation_space.n) if discrete_obs else None,
                 n_actions=int(env.action_space.n) if discrete_act else None)
