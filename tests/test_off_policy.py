"""Off-policy estimators by importance sampling (refpg.off_policy,
derivations/estimators.md#importance-sampling).

Independent routes used here:
* exact means by enumerating every trajectory under the behaviour policy against
  ``grad J_H`` of the target (PG3, refpg.policy_gradient), and for the first-order
  approximation against the closed form (M10) built from the behaviour's exact
  ``p_t`` and ``Q_t`` (refpg.moments.time_indexed_gradient; linear algebra);
* closed forms of the weights on a one-state, 100-action, 1000-step batch (``math``);
* complex-step derivatives of the importance-sampled surrogate against its
  hand-written gradient;
* Monte Carlo with fixed seeds against the exact mean, with bounds from the exact
  covariance (tests/estimator_problems.py).
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from numpy.testing import assert_allclose

from estimator_problems import assert_exact_mean, assert_mc_mean, mc_problem, problems
from refpg import FiniteMDP, TabularSoftmaxPolicy, complex_step, random_mdp
from refpg import estimators as E
from refpg import off_policy as OP
from refpg.batch import Batch
from refpg.moments import enumerate_trajectories, exact_bias_and_covariance, exact_moments, \
    time_indexed_gradient
from refpg.policy_gradient import exact_finite_horizon_gradient
from refpg.sampling import sample_batch, sample_from_table


# --------------------------------------------------------------------------- exact means
OFF_POLICY_UNBIASED = {
    "IS trajectory, reinforce": dict(correction="trajectory", estimator="reinforce"),
    "IS trajectory, reward-to-go": dict(correction="trajectory", estimator="reward_to_go"),
    "IS per-decision, reward-to-go": dict(correction="per_decision"),
}


@given(problems(), st.integers(0, 2 ** 32 - 1))
@settings(max_examples=20)
def test_off_policy_importance_sampling_is_unbiased_and_first_order_is_not(problem, seed):
    mdp, policy, theta, H = problem
    rng = np.random.default_rng(seed)
    theta_b = theta + rng.standard_normal(policy.n_params)
    pib = policy.probs_table(theta_b)
    batch, p = enumerate_trajectories(mdp, pib, H)       # drawn by the behaviour policy
    grad = exact_finite_horizon_gradient(mdp, policy, theta, H)
    for name, kw in OFF_POLICY_UNBIASED.items():
        c = OP.off_policy_contributions(batch, policy, theta, mdp.gamma, **kw)
        assert_exact_mean(c, batch, p, grad, name)
    # first order: its exact mean is the closed form (M10) with behaviour p_t and Q_t
    for weighting in ("discounted", "uniform"):
        c = OP.off_policy_contributions(batch, policy, theta, mdp.gamma, correction="first_order",
                                       weighting=weighting)
        closed = time_indexed_gradient(mdp, policy, theta, H, weighting=weighting, behaviour=pib)
        assert_exact_mean(c, batch, p, closed, f"first order, {weighting}")


def _two_step_mdp():
    """Hand-built: from s0 two actions lead to s1 / s2 (rewards +1 / -1); one more step."""
    P = np.zeros((4, 2, 4))
    P[0, 0, 1] = P[0, 1, 2] = 1.0
    P[1, :, 3] = P[2, :, 3] = 1.0
    P[3, :, 3] = 1.0
    r = np.array([[1.0, -1.0], [0.0, 2.0], [1.0, 0.0], [0.0, 0.0]])
    return FiniteMDP(P=P, r=r, rho0=[1, 0, 0, 0], gamma=0.9,
                     terminal=np.array([False, False, False, True]), horizon=2)


def test_first_order_approximation_has_an_exact_nonzero_bias_on_an_example():
    mdp = _two_step_mdp()
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    theta = np.zeros(8)
    theta_b = np.array([1.5, -1.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])   # differs at s0 only
    pib = policy.probs_table(theta_b)

    def first_order(b):
        return OP.off_policy_contributions(b, policy, theta, mdp.gamma, correction="first_order")

    m = exact_bias_and_covariance(first_order, mdp, policy, theta, behaviour=pib,
                                  per_episode=True)
    closed = time_indexed_gradient(mdp, policy, theta, behaviour=pib)
    # enumeration vs closed form (M10), exact; the bias is the difference to PG3
    assert_allclose(m.mean, closed, rtol=0, atol=1e-14)
    assert np.max(np.abs(m.bias)) > 0.05, m.bias
    # behaviour and target differ only at s0, so Q^b = Q^theta: what is missing is the
    # state-marginal ratio p_1^theta / p_1^b. At s0 (p_0 is the same under both) the bias
    # vanishes; at s1, s2 it does not
    assert_allclose(m.bias[:2], 0.0, rtol=0, atol=1e-14)
    assert np.max(np.abs(m.bias[2:6])) > 0.05
    # and with behaviour = target it is the on-policy estimator, unbiased
    same = exact_bias_and_covariance(first_order, mdp, policy, theta,
                                     behaviour=policy.probs_table(theta), per_episode=True)
    assert_allclose(same.bias, 0.0, rtol=0, atol=1e-14)


# --------------------------------------------------------------------------- Monte Carlo
@pytest.mark.parametrize("kw", [dict(correction="trajectory", estimator="reinforce"),
                                dict(correction="trajectory"), dict(correction="per_decision"),
                                dict(correction="first_order"),
                                dict(correction="per_decision", weighting="uniform")])
def test_monte_carlo_off_policy_means_fall_within_exact_z_bounds(kw):
    mdp, policy, theta = mc_problem()
    theta_b = theta + np.random.default_rng(41).standard_normal(policy.n_params) * 0.5
    pib = policy.probs_table(theta_b)
    batch = sample_from_table(mdp, pib, 20_000, np.random.default_rng(42))
    contrib = OP.off_policy_contributions(batch, policy, theta, mdp.gamma, **kw)
    exact = exact_moments(lambda b: OP.off_policy_contributions(b, policy, theta, mdp.gamma, **kw),
                          mdp, pib, per_episode=True)
    # mean from the closed forms: PG3 (unbiased corrections) or M10 (uniform, first order)
    weighting = kw.get("weighting", "discounted")
    behaviour = pib if kw["correction"] == "first_order" else None
    desired = time_indexed_gradient(mdp, policy, theta, weighting=weighting, behaviour=behaviour)
    assert_mc_mean(contrib, desired, exact.covariance, str(kw))


# --------------------------------------------------------------------------- weights
def _long_batch(T=1000, A=100, n=3, seed=0):
    """One state, ``A`` actions, ``T`` steps: each log pi_b = -log A ~ -4.6, so the product
    of behaviour probabilities is e^-4605, which underflows to 0 in float64."""
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, A, size=(n, T))
    mask = np.ones((n, T), bool)
    trunc = np.zeros((n, T), bool)
    trunc[:, -1] = True
    return Batch(states=np.zeros((n, T), np.int64), actions=actions,
                 rewards=rng.standard_normal((n, T)), log_probs=np.full((n, T), -np.log(A)),
                 next_states=np.zeros((n, T), np.int64), terminated=np.zeros((n, T), bool),
                 truncated=trunc, mask=mask, n_states=1, n_actions=A)


def test_importance_weights_are_finite_for_1000_step_trajectories():
    A, T = 100, 1000
    batch = _long_batch(T, A)
    policy = TabularSoftmaxPolicy(1, A)
    theta = np.zeros(A)
    theta[0] = 0.05                         # target: action 0 slightly more likely
    W = OP.importance_weights(batch, policy, theta)
    # closed form: k_i visits of action 0 give W = (p0/q0)^k (p1/q1)^(T-k), q = 1/A
    z = (A - 1) + math.exp(0.05)
    k = (batch.actions == 0).sum(axis=1)
    closed = np.array([math.exp(ki * math.log(A * math.exp(0.05) / z)
                                + (T - ki) * math.log(A / z)) for ki in k])
    assert np.all(np.isfinite(W))
    # float64 log-sum of 1000 terms, then exp: relative error ~1e-13 * |log W|
    assert_allclose(W, closed, rtol=1e-11, atol=0)
    # the naive product of probabilities underflows: 0/0
    with np.errstate(invalid="ignore", under="ignore"):
        naive = np.prod(np.exp(policy.log_prob(theta, batch.states, batch.actions)), axis=1) \
            / np.prod(np.exp(batch.log_probs), axis=1)
    assert np.all(np.isnan(naive))
    Wt = OP.importance_weights(batch, policy, theta, per_decision=True)
    assert np.all(np.isfinite(Wt))
    assert_allclose(Wt[:, -1], W, rtol=1e-13, atol=0)
    for kw in (dict(correction="trajectory"), dict(correction="per_decision"),
               dict(correction="first_order")):
        assert np.all(np.isfinite(OP.off_policy_estimate(batch, policy, theta, 0.99, **kw)))


def test_importance_weights_beyond_float64_raise_instead_of_inf():
    batch = _long_batch(1000, 100)
    acts = np.array(batch.actions)
    acts[0] = 0                             # row 0 always takes action 0 ...
    batch = batch.replace(actions=acts)
    policy = TabularSoftmaxPolicy(1, 100)
    theta = np.zeros(100)
    theta[0] = 8.0                          # ... which the target makes ~97x more likely
    lw = OP.log_importance_weights(batch, policy, theta)
    assert lw[0] > 800 and np.all(np.isfinite(lw))
    with pytest.raises(ValueError, match="overflow"):
        OP.importance_weights(batch, policy, theta)


# --------------------------------------------------------------------------- surrogate
@given(problems(), st.integers(0, 2 ** 32 - 1))
@settings(max_examples=15)
def test_importance_sampled_surrogate_gradient(problem, seed):
    mdp, policy, theta_old, H = problem
    rng = np.random.default_rng(seed)
    batch = sample_batch(mdp, policy, theta_old, 6, rng, horizon=H)
    c = E.estimator_coefficients(batch, mdp.gamma)
    # at theta_old: gradient of the surrogate (complex step) = on-policy estimator
    cs = complex_step(lambda t: OP.importance_sampled_surrogate(batch, policy, t, c), theta_old)
    est = E.reinforce_reward_to_go(batch, policy, theta_old, mdp.gamma)
    tol = 1e-12 * (1 + np.max(np.abs(cs)))
    assert_allclose(cs, est, rtol=0, atol=tol)
    # elsewhere: hand-written gradient vs complex step, and = first-order off-policy estimator
    theta = theta_old + 0.5 * rng.standard_normal(policy.n_params)
    cs = complex_step(lambda t: OP.importance_sampled_surrogate(batch, policy, t, c), theta)
    hand = OP.importance_sampled_surrogate_gradient(batch, policy, theta, c)
    tol = 1e-12 * (1 + np.max(np.abs(cs)))
    assert_allclose(hand, cs, rtol=0, atol=tol)
    fo = OP.off_policy_estimate(batch, policy, theta, mdp.gamma, correction="first_order")
    assert_allclose(hand, fo, rtol=0, atol=tol)


# --------------------------------------------------------------------------- bad input
def test_bad_arguments_raise_value_errors_naming_them():
    mdp = random_mdp(np.random.default_rng(11), 2, 2, gamma=0.8, n_terminal=1, horizon=3)
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    theta = policy.init_params(np.random.default_rng(12), scale=1.0)
    good = sample_batch(mdp, policy, theta, 4, np.random.default_rng(0))
    with pytest.raises(ValueError, match="per_decision"):
        OP.off_policy_estimate(good, policy, theta, 0.9, estimator="reinforce")
    with pytest.raises(ValueError, match="correction"):
        OP.off_policy_estimate(good, policy, theta, 0.9, correction="weighted")
    with pytest.raises(TypeError, match="Batch"):
        OP.importance_weights({"log_probs": good.log_probs}, policy, theta)
    with pytest.raises(ValueError, match="coefficients"):
        OP.importance_sampled_surrogate(good, policy, theta, np.zeros((4, 1)))
    out = OP.off_policy_estimate(good, policy, theta, 0.9)
    assert out.dtype == np.float64 and out.shape == (policy.n_params,)
