"""Rolling out policies on finite MDPs into a ``Batch`` (issue 3, item 1).

``sample_from_table(mdp, pi, n_episodes, rng, horizon=H)`` draws ``N``
independent episodes of at most ``H`` steps:

    s_0 ~ rho0 (or given start states),  a_t ~ pi(. | s_t),  s_{t+1} ~ P(. | s_t, a_t)

stopping an episode when ``s_{t+1}`` is terminal (``terminated``) or when
``t = H - 1`` (``truncated``, exactly gymnasium's TimeLimit semantics).
derivations/sampling.md#sampling-episodes
"""
from __future__ import annotations

import numpy as np

from .batch import Batch
from .evaluation import check_policy_table
from .policies.base import SoftmaxPolicy
from .validation import as_index_array, check_positive_int, check_rng

__all__ = ["sample_from_table", "sample_batch"]


def _inverse_cdf(cdf_rows, u):
    """Index of the first cdf entry > u, per row (``cdf_rows: (n, K)``, ``u: (n,)``)."""
    k = np.sum(u[:, None] >= cdf_rows[:, :-1], axis=1)
    return k


def sample_from_table(mdp, pi, n_episodes, rng, *, horizon=None, start_states=None,
                      first_actions=None):
    """``N`` episodes under the policy table ``pi: (S, A)``; returns a ``Batch`` ``(N, H)``.

    ``start_states: (N,)`` replaces ``s_0 ~ rho0`` (vine rollouts reset to a
    state); ``first_actions: (N,)`` forces ``a_0`` (its ``log_prob`` is still
    ``log pi(a_0 | s_0)``). ``horizon`` defaults to ``mdp.horizon``.
    derivations/sampling.md#sampling-episodes
    """
    check_rng(rng)
    pi = check_policy_table(mdp, pi)
    if np.iscomplexobj(pi):
        raise TypeError("pi must be real to sample from it")
    N = check_positive_int("n_episodes", n_episodes)
    H = mdp.horizon if horizon is None else horizon
    if H is None:
        raise ValueError("horizon must be given (mdp.horizon is None)")
    H = check_positive_int("horizon", H)
    S, A = mdp.n_states, mdp.n_actions
    if start_states is None:
        s = _inverse_cdf(np.broadcast_to(np.cumsum(mdp.rho0), (N, S)), rng.random(N))
    else:
        s = as_index_array("start_states", start_states, upper=S, shape=(N,)).copy()
    if first_actions is not None:
        first_actions = as_index_array("first_actions", first_actions, upper=A, shape=(N,))
    pi_cdf = np.cumsum(pi, axis=1)
    P_cdf = np.cumsum(mdp.P, axis=2)
    log_pi = np.log(np.where(pi > 0, pi, 1.0))
    log_pi[pi <= 0] = -np.inf
    states = np.zeros((N, H), np.int64)
    actions = np.zeros((N, H), np.int64)
    next_states = np.zeros((N, H), np.int64)
    rewards = np.zeros((N, H))
    log_probs = np.zeros((N, H))
    terminated = np.zeros((N, H), bool)
    truncated = np.zeros((N, H), bool)
    mask = np.zeros((N, H), bool)
    alive = ~mdp.terminal[s]
    for t in range(H):
        idx = np.flatnonzero(alive)
        if idx.size == 0:
            break
        st = s[idx]
        if t == 0 and first_actions is not None:
            at = first_actions[idx]
        else:
            at = _inverse_cdf(pi_cdf[st], rng.random(idx.size))
        s2 = _inverse_cdf(P_cdf[st, at], rng.random(idx.size))
        states[idx, t], actions[idx, t], next_states[idx, t] = st, at, s2
        rewards[idx, t] = mdp.r[st, at]
        log_probs[idx, t] = log_pi[st, at]
        mask[idx, t] = True
        term = mdp.terminal[s2]
        terminated[idx, t] = term
        if t == H - 1:
            truncated[idx, t] = ~term
        s[idx] = s2
        alive[idx] = ~term
    return Batch(states=states, actions=actions, rewards=rewards, log_probs=log_probs,
                 next_states=next_states, terminated=terminated, truncated=truncated,
                 mask=mask, n_states=S, n_actions=A)


def sample_batch(mdp, policy, theta, n_episodes, rng, *, horizon=None, start_states=None,
                 first_actions=None):
    """``sample_from_table`` with ``pi = policy.probs_table(theta)`` (tabular-capable policies).

    derivations/sampling.md#sampling-episodes
    """
    if not isinstance(policy, SoftmaxPolicy) or policy.n_states is None:
        raise TypeError(f"policy must be a tabular-capable SoftmaxPolicy; got {policy!r}")
    return sample_from_table(mdp, policy.probs_table(theta), n_episodes, rng, horizon=horizon,
                             start_states=start_states, first_actions=first_actions)
