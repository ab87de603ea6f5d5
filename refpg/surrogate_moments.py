"""Exact moments of the sampled surrogate: single path versus vine at equal cost (SCOPE N8).

For a finite-horizon MDP small enough to enumerate, the exact mean and variance of one
iid unit of the sampled surrogate (S4) of refpg.surrogate, for single-path units
(an episode of pi_old) and vine units (an episode plus its rollouts, with or without
common random numbers), and the expected simulation cost of a unit, so that
variance x cost compares the estimators at equal budget.
derivations/surrogate.md#exact-variances-at-equal-cost
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .distributions import _softmax_difference
from .evaluation import check_policy_table, evaluate_finite_horizon
from .surrogate import _WEIGHTINGS, _check_choice, _fh, _inverse_cdf, single_path_surrogate
from .validation import check_positive_int

__all__ = ["SurrogateMoments", "single_path_moments", "vine_moments", "coupled_return_moments"]


@dataclass(frozen=True)
class SurrogateMoments:
    """Exact moments of one iid unit ``X_i`` of (S4) (``Var L^ = variance / N``).

    ``mean, variance`` of ``X_i(theta)``; ``improvement_mean,
    improvement_variance`` of ``X_i(theta) - X_i(theta_old)``;
    ``cost``: expected simulated transitions per unit; ``variance * cost`` is
    the variance at one transition of budget (equal-cost comparisons).
    derivations/surrogate.md#exact-variances-at-equal-cost
    """

    mean: float
    variance: float
    improvement_mean: float
    improvement_variance: float
    cost: float


def _enumerate(mdp, pi_old, H):
    from .moments import enumerate_trajectories   # exact-moments layer (below this one)
    return enumerate_trajectories(mdp, pi_old, H)


def single_path_moments(mdp, policy, theta_old, theta, horizon=None, *,
                        state_weighting="discounted"):
    """Exact ``SurrogateMoments`` of ``single_path_surrogate`` (Q form), by enumerating every
    episode of ``pi_old`` (``refpg.moments.enumerate_trajectories``): ``E = sum_tau P(tau) X(tau)``.

    Tiny MDPs and horizons only (the number of episodes grows like ``(S A)^H``).
    derivations/surrogate.md#exact-variances-at-equal-cost
    """
    pi_old, H, _ = _fh(mdp, policy, theta_old, horizon)
    batch, prob = _enumerate(mdp, np.asarray(pi_old, float), H)
    prob = np.asarray(prob, dtype=float)
    sur = single_path_surrogate(policy, theta_old, batch, mdp.gamma,
                                state_weighting=state_weighting)
    X = sur.per_unit(theta)
    D = sur.per_unit_difference(theta)       # not X - X_old: both ratios round to 1 near determinism
    mean, dmean = float(prob @ X), float(prob @ D)
    return SurrogateMoments(mean=mean, variance=float(prob @ (X - mean) ** 2),
                            improvement_mean=dmean,
                            improvement_variance=float(prob @ (D - dmean) ** 2),
                            cost=float(prob @ batch.mask.sum(axis=1)))


def _coupled(cdf1, cdf2):
    """Joint law of ``(i1, i2)``, the inverse CDFs (V1) of ONE uniform: ``[(i1, i2, prob)]``.

    Both maps are constant between the merged breakpoints ``cdf1[:-1]``,
    ``cdf2[:-1]``; each interval is one joint outcome with probability its length.
    """
    cuts = np.unique(np.concatenate(([0.0, 1.0], cdf1[:-1], cdf2[:-1])))
    cuts = cuts[(cuts >= 0.0) & (cuts <= 1.0)]
    out = {}
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        if hi > lo:
            mid = np.array([0.5 * (lo + hi)])
            key = (int(_inverse_cdf(cdf1, mid)[0]), int(_inverse_cdf(cdf2, mid)[0]))
            out[key] = out.get(key, 0.0) + (hi - lo)
    return [(a, b, pr) for (a, b), pr in out.items()]


def coupled_return_moments(mdp, pi, horizon):
    """``X[h, s1, a1, s2, a2] = E[G1 G2]`` for two rollouts driven by the SAME uniforms (V3).

    Rollout ``k`` starts with ``(s_k, a_k)`` and follows ``pi: (S, A)`` for ``h``
    steps in total; ``G_k`` is its discounted return. The coupling is that of
    ``vine_surrogate`` with common random numbers (``coupled_rollouts``): at
    step ``j`` both rollouts draw their action (``j >= 1``) from the uniform
    ``U[j, 0]`` and their next state from ``U[j, 1]``, each by the inverse CDF
    (V1); a rollout that enters a terminal state stops (later returns 0).
    ``X[h, s, a, s, a] = E[G^2]``. Returns ``(H+1, S, A, S, A)``.
    derivations/surrogate.md#the-coupling-of-common-random-numbers
    """
    pi = np.asarray(check_policy_table(mdp, pi), dtype=float)
    H = check_positive_int("horizon", horizon)
    S, A = mdp.n_states, mdp.n_actions
    g, r, term = mdp.gamma, mdp.r, mdp.terminal
    Pc = np.cumsum(mdp.P, axis=2)
    pic = np.cumsum(pi, axis=1)
    fh = evaluate_finite_horizon(mdp, pi, H)
    apairs = {(s1, s2): _coupled(pic[s1], pic[s2]) for s1 in range(S) for s2 in range(S)}
    tpairs = {(s1, a1, s2, a2): _coupled(Pc[s1, a1], Pc[s2, a2])
              for s1 in range(S) for a1 in range(A) for s2 in range(S) for a2 in range(A)}
    X = np.zeros((H + 1, S, A, S, A))
    W = np.zeros((H + 1, S, S))          # E[G1 G2 | at s1, s2, h steps to go, actions to draw]
    for h in range(1, H + 1):
        EG = mdp.P @ np.asarray(fh.V[H - h + 1], dtype=float)    # E[G' | s, a], h-1 to go
        for (s1, a1, s2, a2), pairs in tpairs.items():
            cross = sum(pr * W[h - 1, n1, n2] for n1, n2, pr in pairs)
            X[h, s1, a1, s2, a2] = (r[s1, a1] * r[s2, a2] + g * r[s1, a1] * EG[s2, a2]
                                    + g * r[s2, a2] * EG[s1, a1] + g * g * cross)
        for (s1, s2), pairs in apairs.items():
            if not (term[s1] or term[s2]):
                W[h, s1, s2] = sum(pr * X[h, s1, b1, s2, b2] for b1, b2, pr in pairs)
    return X


def vine_moments(mdp, policy, theta_old, theta, horizon=None, *, action_mode="all",
                 n_actions=None, q=None, rollout_probability=1.0,
                 common_random_numbers=True, state_weighting="discounted"):
    """Exact ``SurrogateMoments`` of ``vine_surrogate`` (modes "all", "sampled").

    Unit ``Z = sum_t (kappa_t B_t / p) L_t`` with ``B_t ~ Bernoulli(p)`` and
    ``L_t`` the rollouts' contribution at step ``t``:
    ``Var Z = Var_tau(sum_t kappa_t m_t(s_t)) + E_tau[sum_t kappa_t^2 ((v_t + m_t^2)/p - m_t^2)]``
    with ``m_t, v_t`` the conditional mean and variance of ``L_t`` given
    ``s_t``, from ``coupled_return_moments`` (common random numbers) or
    independence; the outer expectation enumerates the episodes of
    ``pi_old``. derivations/surrogate.md#exact-variances-at-equal-cost
    """
    _check_choice("action_mode", action_mode, ("all", "sampled"))
    _check_choice("state_weighting", state_weighting, _WEIGHTINGS)
    p = float(rollout_probability)
    if not (0.0 < p <= 1.0):
        raise ValueError(f"rollout_probability must lie in (0, 1]; got {rollout_probability!r}")
    pi_old, H, fh = _fh(mdp, policy, theta_old, horizon)
    pi_old = np.asarray(pi_old, dtype=float)
    pi_new = np.asarray(policy.probs_table(theta), dtype=float)
    S, A = mdp.n_states, mdp.n_actions
    if action_mode == "all":
        K = A
    else:
        K = check_positive_int("n_actions", A if n_actions is None else n_actions)
        q = pi_old if q is None else np.asarray(check_policy_table(mdp, q, name="q"), float)
        missing = (q == 0) & ((pi_new > 0) | (pi_old > 0))
        if missing.any():                # the ratios pi / q are undefined there: (IS1) fails
            s, a = (int(i) for i in np.argwhere(missing)[0])
            raise ValueError(f"q must be positive wherever pi_theta or pi_old is (importance "
                             f"sampling support); q[{s}, {a}] = 0")
    X = coupled_return_moments(mdp, pi_old, H)
    # expected rollout lengths: ell[h, s, a] with h steps in total
    ell = np.zeros((H + 1, S, A))
    alive = (~mdp.terminal).astype(float)
    for h in range(1, H + 1):
        nxt = np.einsum("sb,sb->s", pi_old, ell[h - 1]) * alive
        ell[h] = 1.0 + mdp.P @ nxt
    kappa = mdp.gamma ** np.arange(H) if state_weighting == "discounted" else np.ones(H)

    def cond_moments(c):          # m_t(s), v_t(s) for coefficient table c: (S, A)
        m = np.zeros((H, S))
        v = np.zeros((H, S))
        for t in range(H):
            h = H - t
            Q = fh.Q[t]
            for s in range(S):
                Xs = X[h, s, :, s, :]
                C = Xs if common_random_numbers else np.outer(Q[s], Q[s])
                if not common_random_numbers:
                    np.fill_diagonal(C, np.diag(Xs))
                if action_mode == "all":
                    m[t, s] = c[s] @ Q[s]
                    m2 = c[s] @ C @ c[s]
                else:
                    qc = q[s] * c[s]
                    m[t, s] = qc @ Q[s]
                    Coff = Xs if common_random_numbers else np.outer(Q[s], Q[s])
                    m2 = (q[s] * c[s] ** 2) @ np.diag(Xs) / K + (K - 1) / K * (qc @ Coff @ qc)
                v[t, s] = m2 - m[t, s] ** 2
        return m, v

    # pi_new - pi_old by (D8) from the log-probabilities: the plain difference of two
    # probabilities near 1 loses the change of a nearly deterministic policy
    states = policy._all_states()
    d_pi = _softmax_difference(policy._logits(theta, states), policy._logits(theta_old, states))
    d_pi = np.asarray(d_pi, dtype=float)
    if action_mode == "all":
        c_new, c_diff = pi_new, d_pi
        cost_actions = ell.sum(axis=2)
    else:
        c_new, c_diff = pi_new / q, d_pi / q
        cost_actions = K * np.einsum("sa,hsa->hs", q, ell)
    batch, prob = _enumerate(mdp, pi_old, H)
    prob = np.asarray(prob, dtype=float)
    msk = batch.mask
    tt = np.broadcast_to(np.arange(batch.max_steps), msk.shape)
    st = batch.states

    def unit_moments(c):
        m, v = cond_moments(c)
        mt = np.where(msk, m[np.minimum(tt, H - 1), st], 0.0)
        vt = np.where(msk, v[np.minimum(tt, H - 1), st], 0.0)
        k = kappa[np.minimum(tt, H - 1)]
        cond_mean = np.sum(k * mt, axis=1)
        cond_var = np.sum(np.where(msk, k ** 2 * ((vt + mt ** 2) / p - mt ** 2), 0.0), axis=1)
        mean = float(prob @ cond_mean)
        return mean, float(prob @ (cond_mean - mean) ** 2 + prob @ cond_var)

    mean, var = unit_moments(c_new)
    dmean, dvar = unit_moments(c_diff)
    roll = np.where(msk, cost_actions[H - np.minimum(tt, H - 1), st], 0.0)
    cost = float(prob @ (msk.sum(axis=1) + p * roll.sum(axis=1)))
    return SurrogateMoments(mean=mean, variance=var, improvement_mean=dmean,
                            improvement_variance=dvar, cost=cost)
