"""The sampled surrogate, single path and vine (refpg.surrogate, derivations/surrogate.md).

Independent routes:
* the EXACT expectation of a sampled surrogate is computed by enumerating every episode
  (refpg.moments.enumerate_trajectories) and compared with the backward/forward recursion
  (S2) and, on an episodic MDP where every episode ends within H, with the infinite-horizon
  ``L_pi(pi_theta) - eta(pi)`` of refpg.identities (linear solves);
* gradients against complex-step derivatives; the KL Hessian against complex steps of the
  KL gradient;
* exact vine variances (pair recursion over the coupling + enumeration) against large
  Monte-Carlo samples with calibrated bounds.
"""
import numpy as np
import pytest
from numpy.testing import assert_allclose

from refpg import FiniteMDP, TabularSoftmaxPolicy, complex_step, evaluate_finite_horizon, \
    random_mdp
from refpg.identities import local_approximation
from refpg.moments import enumerate_trajectories
from refpg.policy_gradient import exact_finite_horizon_gradient
from refpg.sampling import sample_batch
from refpg.surrogate import (coupled_rollouts, finite_horizon_surrogate, single_path_surrogate,
                             truncation_bound, vine_surrogate)
from refpg.surrogate_moments import coupled_return_moments, single_path_moments, vine_moments

#: z for a two-sided normal false-alarm rate of ~6e-7 per comparison: a right estimator
#: (fixed seeds) does not flake, a biased one (bias >> 5 standard errors) fails.
Z = 5.0


def _setup(seed, S=3, A=2, gamma=0.9, n_terminal=1, scale=1.0):
    rng = np.random.default_rng(seed)
    mdp = random_mdp(rng, S, A, gamma=gamma, n_terminal=n_terminal)
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    theta_old = policy.init_params(rng, scale)
    theta = theta_old + 0.7 * rng.standard_normal(policy.n_params)
    return rng, mdp, policy, theta_old, theta


def _enumerated(mdp, policy, theta_old, H, **kw):
    pi_old = np.asarray(policy.probs_table(theta_old), dtype=float)
    batch, prob = enumerate_trajectories(mdp, pi_old, H)
    return batch, np.asarray(prob), single_path_surrogate(policy, theta_old, batch, mdp.gamma,
                                                          **kw)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("weighting", ["discounted", "uniform"])
def test_exact_expectation_by_enumeration_equals_the_finite_horizon_surrogate(seed, weighting):
    _, mdp, policy, theta_old, theta = _setup(seed)
    H = 4
    batch, prob, sur = _enumerated(mdp, policy, theta_old, H, state_weighting=weighting)
    for th in (theta_old, theta):
        expected = prob @ sur.per_unit(th)
        exact = finite_horizon_surrogate(mdp, policy, theta_old, th, H, form="q",
                                         state_weighting=weighting)
        # two exact finite sums (enumeration vs recursion): rounding only
        assert_allclose(expected, exact, rtol=1e-12, atol=1e-13)
    # advantage form: subtract the exact time-indexed baseline V_t(s_t)
    fh = evaluate_finite_horizon(mdp, policy.probs_table(theta_old), H)
    t = np.broadcast_to(np.arange(H), batch.mask.shape)
    base = np.where(batch.mask, fh.V[t, batch.states], 0.0)
    sur_a = single_path_surrogate(policy, theta_old, batch, mdp.gamma, baseline=base,
                                  state_weighting=weighting)
    assert_allclose(prob @ sur_a.per_unit(theta),
                    finite_horizon_surrogate(mdp, policy, theta_old, theta, H,
                                             state_weighting=weighting),
                    rtol=1e-12, atol=1e-13)


def test_q_and_advantage_forms_differ_by_a_constant():
    _, mdp, policy, theta_old, _ = _setup(4)
    H = 5
    fh = evaluate_finite_horizon(mdp, policy.probs_table(theta_old), H)
    const = np.sum(mdp.gamma ** np.arange(H) * np.einsum("ts,ts->t", fh.p, fh.V[:H]))
    rng = np.random.default_rng(0)
    for _ in range(4):
        th = theta_old + rng.standard_normal(policy.n_params)
        diff = (finite_horizon_surrogate(mdp, policy, theta_old, th, H, form="q")
                - finite_horizon_surrogate(mdp, policy, theta_old, th, H))
        # sum_a pi_theta(a|s) V_t(s) = V_t(s) whatever theta: a constant
        assert_allclose(diff, const, rtol=1e-12, atol=1e-14)


def _episodic_chain(seed, n=4, A=2, gamma=0.9):
    """States 0..n-1 move forward by 1 or 2 (random mix); state n is terminal, so every
    episode ends within n steps and finite- and infinite-horizon quantities coincide."""
    rng = np.random.default_rng(seed)
    S = n + 1
    P = np.zeros((S, A, S))
    for s in range(n):
        for a in range(A):
            nxt = [min(s + 1, n), min(s + 2, n)]
            w = rng.dirichlet([1.0, 1.0])
            for k, s2 in enumerate(nxt):
                P[s, a, s2] += w[k]
    P[n, :, n] = 1.0
    r = rng.standard_normal((S, A))
    r[n] = 0.0
    rho0 = np.zeros(S)
    rho0[0] = 1.0
    terminal = np.zeros(S, bool)
    terminal[n] = True
    return FiniteMDP(P=P, r=r, rho0=rho0, gamma=gamma, terminal=terminal), n


@pytest.mark.parametrize("seed", [0, 1])
def test_expectation_equals_L_minus_eta_when_every_episode_ends_within_H(seed):
    mdp, H = _episodic_chain(seed)
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    rng = np.random.default_rng(seed + 10)
    theta_old = policy.init_params(rng, 1.0)
    pi_old = policy.probs_table(theta_old)
    batch, prob, sur = _enumerated(mdp, policy, theta_old, H)
    fh = evaluate_finite_horizon(mdp, pi_old, H)
    t = np.broadcast_to(np.arange(H), batch.mask.shape)
    base = np.where(batch.mask, fh.V[t, batch.states], 0.0)
    sur_a = single_path_surrogate(policy, theta_old, batch, mdp.gamma, baseline=base)
    from refpg import evaluate
    ev = evaluate(mdp, pi_old)
    for _ in range(3):
        th = theta_old + rng.standard_normal(policy.n_params)
        L_minus_eta = local_approximation(mdp, pi_old, policy.probs_table(th)) - ev.eta
        # A form: exactly L - eta (linear solves of refpg.identities vs enumeration)
        assert_allclose(prob @ sur_a.per_unit(th), L_minus_eta, rtol=1e-11, atol=1e-13)
        # Q form: L - eta + sum_s rho_old(s) V_old(s), a constant
        assert_allclose(prob @ sur.per_unit(th), L_minus_eta + ev.rho @ ev.V, rtol=1e-11,
                        atol=1e-13)


@pytest.mark.parametrize("H", [2, 5, 10, 20])
def test_truncated_surrogate_is_within_the_truncation_bound_of_L_minus_eta(H):
    rng, mdp, policy, theta_old, theta = _setup(5, S=4, A=3, gamma=0.8, n_terminal=0)
    pi_old = policy.probs_table(theta_old)
    from refpg import evaluate
    eta = evaluate(mdp, pi_old).eta
    gap = abs(finite_horizon_surrogate(mdp, policy, theta_old, theta, H)
              - (local_approximation(mdp, pi_old, policy.probs_table(theta)) - eta))
    assert gap <= truncation_bound(mdp, H)


def test_gradient_at_theta_old_is_the_finite_horizon_policy_gradient_in_expectation():
    _, mdp, policy, theta_old, _ = _setup(6)
    H = 4
    batch, prob, sur = _enumerated(mdp, policy, theta_old, H)
    # E[grad L^(theta_old)] by enumeration: gradient of the enumerated (weighted) surrogate
    from dataclasses import replace
    weighted = replace(sur, coef=sur.coef * prob[sur.unit] * sur.n_units)
    assert_allclose(weighted.gradient(theta_old),
                    exact_finite_horizon_gradient(mdp, policy, theta_old, H),
                    rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("kind", ["single_path", "all", "sampled", "self_normalised"])
def test_surrogate_gradient_against_complex_step(kind):
    rng, mdp, policy, theta_old, theta = _setup(7)
    batch = sample_batch(mdp, policy, theta_old, 30, rng, horizon=4)
    if kind == "single_path":
        sur = single_path_surrogate(policy, theta_old, batch, mdp.gamma)
    else:
        sur = vine_surrogate(mdp, policy, theta_old, batch, rng, action_mode=kind, n_actions=3)
    g_cs = complex_step(sur.value, theta)
    # complex step is exact to rounding
    assert_allclose(sur.gradient(theta), g_cs, rtol=1e-10, atol=1e-12 * np.max(np.abs(g_cs)))


def test_average_kl_and_its_hessian_vector_product():
    rng, mdp, policy, theta_old, theta = _setup(8, S=4, A=3, n_terminal=1)
    batch = sample_batch(mdp, policy, theta_old, 25, rng, horizon=6)
    sur = single_path_surrogate(policy, theta_old, batch, mdp.gamma)
    # direct: sum_t gamma^t KL(s_t) / sum_t gamma^t over valid steps, from log tables
    lo, ln = np.log(policy.probs_table(theta_old)), np.log(policy.probs_table(theta))
    kl_s = np.sum(np.exp(lo) * (lo - ln), axis=1)
    w = np.where(batch.mask, mdp.gamma ** np.arange(batch.max_steps), 0.0)
    direct = np.sum(w * kl_s[batch.states]) / w.sum()
    assert_allclose(sur.kl(theta), direct, rtol=1e-12, atol=1e-15)
    # Hessian of (S5) at theta_old, by complex steps of its gradient, times v
    states = np.arange(mdp.n_states)
    W = sur.kl_weights
    H = complex_step(lambda t: W @ policy.grad_kl(theta_old, t, states), theta_old)
    v = rng.standard_normal(policy.n_params)
    assert_allclose(sur.fisher_vector_product(v), H @ v, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode,crn,p", [("all", True, 1.0), ("all", False, 0.6),
                                        ("sampled", True, 1.0), ("sampled", False, 1.0)])
def test_vine_is_unbiased_and_its_exact_variance_matches_monte_carlo(mode, crn, p):
    rng, mdp, policy, theta_old, theta = _setup(0)
    H = 3
    exact = vine_moments(mdp, policy, theta_old, theta, H, action_mode=mode, n_actions=2,
                         rollout_probability=p, common_random_numbers=crn)
    # unbiased for the same (S2) as the single path: enumeration + pair recursion vs
    # the backward recursion
    assert_allclose(exact.mean, finite_horizon_surrogate(mdp, policy, theta_old, theta, H,
                                                         form="q"), rtol=1e-12, atol=1e-13)
    N = 40000
    batch = sample_batch(mdp, policy, theta_old, N, rng, horizon=H)
    sur = vine_surrogate(mdp, policy, theta_old, batch, rng, action_mode=mode, n_actions=2,
                         rollout_probability=p, common_random_numbers=crn)
    for X, mean, var in ((sur.per_unit(theta), exact.mean, exact.variance),
                         (sur.per_unit(theta) - sur.per_unit(theta_old),
                          exact.improvement_mean, exact.improvement_variance)):
        assert abs(X.mean() - mean) <= Z * np.sqrt(var / N)
        # sample variance: its standard error from the sample fourth central moment
        m4 = np.mean((X - X.mean()) ** 4)
        se_var = np.sqrt(max(m4 - X.var() ** 2, 0.0) / N)
        assert abs(X.var() - var) <= Z * se_var


def test_single_path_moments_match_monte_carlo_and_cost_is_the_expected_length():
    rng, mdp, policy, theta_old, theta = _setup(1)
    H = 4
    exact = single_path_moments(mdp, policy, theta_old, theta, H)
    fh = evaluate_finite_horizon(mdp, policy.probs_table(theta_old), H)
    alive = ~mdp.terminal
    # expected episode length: steps taken from non-terminal states, sum_t P(s_t alive)
    assert_allclose(exact.cost, fh.p[:, alive].sum(), rtol=1e-12, atol=0)
    N = 40000
    batch = sample_batch(mdp, policy, theta_old, N, rng, horizon=H)
    X = single_path_surrogate(policy, theta_old, batch, mdp.gamma).per_unit(theta)
    assert abs(X.mean() - exact.mean) <= Z * np.sqrt(exact.variance / N)
    m4 = np.mean((X - X.mean()) ** 4)
    assert abs(X.var() - exact.variance) <= Z * np.sqrt((m4 - X.var() ** 2) / N)


def test_coupled_rollouts_are_unbiased_and_the_pair_moments_are_right():
    rng, mdp, policy, theta_old, _ = _setup(2)
    pi = np.asarray(policy.probs_table(theta_old), float)
    H = 3
    X = coupled_return_moments(mdp, pi, H)
    fh = evaluate_finite_horizon(mdp, pi, H)
    s = 0
    M = 50000
    U = np.broadcast_to(rng.random((M, 1, H, 2)), (M, 2, H, 2))
    G, _ = coupled_rollouts(mdp, pi, np.full(M, s), np.tile([0, 1], (M, 1)), np.full(M, H), U)
    for a in (0, 1):
        var = X[H, s, a, s, a] - fh.Q[0, s, a] ** 2
        assert abs(G[:, a].mean() - fh.Q[0, s, a]) <= Z * np.sqrt(var / M)
    prod = G[:, 0] * G[:, 1]
    assert abs(prod.mean() - X[H, s, 0, s, 1]) <= Z * prod.std() / np.sqrt(M)


def test_common_random_numbers_reduce_the_improvement_variance_on_this_example():
    # not a theorem: CRN help when returns from different first actions are positively
    # correlated, as here; the exact numbers are printed in derivations/surrogate.md
    _, mdp, policy, theta_old, theta = _setup(0)
    crn = vine_moments(mdp, policy, theta_old, theta, 3, common_random_numbers=True)
    ind = vine_moments(mdp, policy, theta_old, theta, 3, common_random_numbers=False)
    assert crn.improvement_variance < ind.improvement_variance
    assert_allclose(crn.cost, ind.cost, rtol=1e-15, atol=0)


def test_invalid_inputs_raise():
    rng, mdp, policy, theta_old, theta = _setup(3)
    batch = sample_batch(mdp, policy, theta, 5, rng, horizon=3)        # NOT from theta_old
    with pytest.raises(ValueError, match="sampled from pi_old"):
        single_path_surrogate(policy, theta_old, batch, mdp.gamma)
    batch = sample_batch(mdp, policy, theta_old, 5, rng, horizon=3)
    with pytest.raises(ValueError, match="state_weighting"):
        single_path_surrogate(policy, theta_old, batch, mdp.gamma, state_weighting="steps")
    with pytest.raises(ValueError, match="rollout_probability"):
        vine_surrogate(mdp, policy, theta_old, batch, rng, rollout_probability=0.0)
    with pytest.raises(TypeError, match="Generator"):
        vine_surrogate(mdp, policy, theta_old, batch, 0)


def test_exact_surrogate_gradient_at_theta_old_is_the_finite_horizon_gradient():
    # complex step through (S2) (backward/forward recursions) vs the time-indexed policy
    # gradient theorem (PG3): the surrogate agrees with J_H to first order
    _, mdp, policy, theta_old, _ = _setup(9, S=4, A=3)
    H = 6
    g_cs = complex_step(lambda t: finite_horizon_surrogate(mdp, policy, theta_old, t, H),
                        theta_old)
    assert_allclose(g_cs, exact_finite_horizon_gradient(mdp, policy, theta_old, H),
                    rtol=1e-10, atol=1e-13)


def _decimal_improvement(mdp, th0, th, H, digits=60):
    """``sum_t gamma^t sum_s p_t(s) sum_a (pi_th - pi_th0)(a|s) Q_t(s, a)`` (Q_t, p_t under pi_th0):
    the mean improvement of the single-path Q-form surrogate with discounted state
    weights, in ``digits``-digit decimal arithmetic on the float64 inputs (no refpg code)."""
    from decimal import Decimal as D, localcontext

    S, A = mdp.n_states, mdp.n_actions
    with localcontext() as ctx:
        ctx.prec = digits

        def softmax(z):
            e = [D(float(v)).exp() for v in z]
            return [x / sum(e) for x in e]

        po = [softmax(th0[s * A:(s + 1) * A]) for s in range(S)]
        pn = [softmax(th[s * A:(s + 1) * A]) for s in range(S)]
        g = D(float(mdp.gamma))
        V = [D(0)] * S
        Q = [None] * H
        for t in range(H - 1, -1, -1):
            Q[t] = [[D(float(mdp.r[s, a])) + g * sum(D(float(mdp.P[s, a, u])) * V[u]
                                                     for u in range(S)) for a in range(A)]
                    for s in range(S)]
            V = [sum(po[s][a] * Q[t][s][a] for a in range(A)) for s in range(S)]
        p = [D(float(x)) for x in mdp.rho0]
        total = D(0)
        for t in range(H):
            total += g ** t * sum(p[s] * sum((pn[s][a] - po[s][a]) * Q[t][s][a] for a in range(A))
                                  for s in range(S))
            p = [sum(p[s] * po[s][a] * D(float(mdp.P[s, a, u])) for s in range(S)
                     for a in range(A)) for u in range(S)]
        return float(total)


@pytest.mark.parametrize("delta", [1.0, 1e-9])
def test_exact_improvement_means_near_determinism_and_near_theta_old(delta):
    # found by the session-4 audit: with pi_old nearly deterministic (logit gap 40) both
    # ratios of the likely action round to 1 and X(theta) - X(theta_old) lost the change
    # (a factor 2 here, wrong signs elsewhere); near theta_old (1e-9) a difference of log-
    # probabilities kept only ~1e-7 of it. Reference: 60-digit decimal arithmetic.
    mdp = random_mdp(np.random.default_rng(5), 2, 2, gamma=0.5, horizon=2)
    policy = TabularSoftmaxPolicy(2, 2)
    th0 = np.array([40.0, 0.0, 40.0, 0.0]) if delta == 1.0 else np.array([0.3, -0.2, 1.0, 0.4])
    th = th0 + delta * np.array([0.0, 1.0, 0.0, 1.0])
    want = _decimal_improvement(mdp, th0, th, 2)
    # float64 rounding of Q, p and the ratios: ~1e-15 relative; 1e-10 leaves a wide margin
    for got in (single_path_moments(mdp, policy, th0, th).improvement_mean,
                vine_moments(mdp, policy, th0, th).improvement_mean):
        np.testing.assert_allclose(got, want, rtol=1e-10)


def test_vine_moments_refuse_a_sampling_law_without_support():
    # found by the session-4 audit: q = 0 where pi_theta > 0 gave NaN moments with only
    # RuntimeWarnings; the ratios pi / q are undefined there (importance sampling support)
    mdp = random_mdp(np.random.default_rng(5), 2, 2, gamma=0.5, horizon=2)
    policy = TabularSoftmaxPolicy(2, 2)
    th0 = np.zeros(4)
    q = np.array([[1.0, 0.0], [0.5, 0.5]])
    with pytest.raises(ValueError, match=r"q\[0, 1\] = 0"):
        vine_moments(mdp, policy, th0, th0 + 0.1, action_mode="sampled", q=q)
