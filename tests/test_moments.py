"""Exact moments of estimators (refpg.moments, derivations/moments.md).

Independent routes used here:
* the enumerated trajectory distribution against exact state marginals ``p_t`` and
  ``J_H`` (E7, E8, linear algebra) and against the reference sampler (chi-square);
* the dynamic-programming moments against enumeration (two unrelated computations
  of the same sums) to 1e-12;
* the closed form of the average-return baselines (M9c) against enumeration of
  tuples of trajectories;
* at horizons enumeration cannot reach, DP means and variances against Monte Carlo
  with bounds from the DP covariance.

The hypothesis strategy of small problems is shared with the estimator tests
(tests/estimator_problems.py).
"""
import numpy as np
import pytest
from hypothesis import given, settings
from numpy.testing import assert_allclose
from scipy.stats import chi2, norm

from estimator_problems import problems
from refpg import TabularSoftmaxPolicy, random_mdp, complex_step
from refpg.batch import Batch
from refpg.evaluation import evaluate_finite_horizon
from refpg.policy_gradient import exact_finite_horizon_gradient, finite_horizon_objective
from refpg.sampling import sample_batch, sample_from_table
from refpg import estimators as E
from refpg.moments import (EstimatorMoments, dp_moments, enumerate_trajectories,
                           exact_bias_and_covariance, exact_moments, exact_optimal_baseline,
                           time_indexed_gradient)

FIELDS = ("states", "actions", "rewards", "log_probs", "next_states", "terminated",
          "truncated", "mask")


def _state_at(batch):
    """``s_t`` for every t < H: the visited state, or after the end the absorbing state."""
    L = batch.lengths
    rows = np.arange(batch.n_episodes)
    last = np.where(L > 0, batch.next_states[rows, np.maximum(L - 1, 0)], batch.states[:, 0])
    return np.where(batch.mask, batch.states, last[:, None])


# --------------------------------------------------------------------------- enumeration
@given(problems())
@settings(max_examples=20)
def test_enumerated_distribution_has_the_exact_state_marginals_and_return(problem):
    mdp, policy, theta, H = problem
    pi = policy.probs_table(theta)
    batch, p = enumerate_trajectories(mdp, pi, H)
    fh = evaluate_finite_horizon(mdp, pi, H)
    assert_allclose(p.sum(), 1.0, rtol=0, atol=1e-13)     # sum of <= 2e4 products
    s_t = _state_at(batch)
    marg = np.stack([np.bincount(s_t[:, t], weights=p, minlength=mdp.n_states)
                     for t in range(H)])
    # (E7) forward recursion vs summed trajectory probabilities: both exact to rounding
    assert_allclose(marg, fh.p, rtol=0, atol=1e-13)
    R = batch.rewards @ (mdp.gamma ** np.arange(H))
    assert_allclose(p @ R, fh.J, rtol=0, atol=1e-12 * (1 + p @ np.abs(R)))
    assert np.all(p > 0)


def test_enumeration_matches_the_sampler_row_for_row_and_in_frequency():
    mdp = random_mdp(np.random.default_rng(2), 3, 2, gamma=0.9, n_terminal=1, horizon=3)
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    pi = policy.probs_table(policy.init_params(np.random.default_rng(3), scale=0.5))
    batch, p = enumerate_trajectories(mdp, pi, 3)

    def key(b, i):
        return tuple(np.asarray(getattr(b, f)[i]).tobytes() for f in FIELDS)

    index = {key(batch, i): i for i in range(batch.n_episodes)}
    assert len(index) == batch.n_episodes                 # no duplicates
    n = 20_000
    sampled = sample_from_table(mdp, pi, n, np.random.default_rng(4), horizon=3)
    hits = np.array([index[key(sampled, i)] for i in range(n)])   # KeyError = unknown row
    counts = np.bincount(hits, minlength=p.size).astype(float)
    expected = n * p
    rare = expected < 5                      # pooled into one cell (expected >= 5 there)
    counts = np.append(counts[~rare], counts[rare].sum())
    expected = np.append(expected[~rare], expected[rare].sum())
    assert expected.min() >= 5, expected.min()
    stat = np.sum((counts - expected) ** 2 / expected)
    # Pearson chi-square, cells - 1 dof, false-alarm rate 1e-6
    assert stat <= chi2.isf(1e-6, expected.size - 1), (stat, expected.size)


def test_enumeration_refuses_too_many_trajectories():
    mdp = random_mdp(np.random.default_rng(0), 4, 3, gamma=0.9, horizon=6)
    with pytest.raises(ValueError, match="max_trajectories"):
        enumerate_trajectories(mdp, np.full((4, 3), 1 / 3), 6, max_trajectories=10_000)
    with pytest.raises(TypeError, match="real"):
        enumerate_trajectories(mdp, np.full((4, 3), 1 / 3, dtype=complex), 2)
    with pytest.raises(ValueError, match="horizon"):
        enumerate_trajectories(mdp.replace(horizon=None), np.full((4, 3), 1 / 3))


def test_terminal_start_states_give_zero_length_episodes():
    mdp = random_mdp(np.random.default_rng(1), 3, 2, gamma=0.9, n_terminal=1, horizon=3)
    mdp = mdp.replace(rho0=np.array([0.5, 0.25, 0.25]))      # state 2 is terminal
    batch, p = enumerate_trajectories(mdp, np.full((3, 2), 0.5), 3)
    empty = batch.lengths == 0
    assert_allclose(p[empty].sum(), 0.25, rtol=0, atol=1e-15)
    assert np.all(batch.states[empty, 0] == 2)


# --------------------------------------------------------------------------- generic estimator
def _tiny():
    mdp = random_mdp(np.random.default_rng(11), 2, 2, gamma=0.8, n_terminal=1, horizon=3)
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    theta = policy.init_params(np.random.default_rng(12), scale=1.0)
    return mdp, policy, theta


def test_per_episode_scaling_matches_tuple_enumeration():
    # Cov of the mean of N i.i.d. rows = Cov_1 / N (M2) vs ordered and unordered tuples (M3)
    mdp, policy, theta = _tiny()
    pi = policy.probs_table(theta)
    per = exact_moments(lambda b: E.reinforce_reward_to_go_contributions(b, policy, theta, 0.8),
                        mdp, pi, n_episodes=2, per_episode=True)
    f = lambda b: E.reinforce_reward_to_go(b, policy, theta, 0.8)   # noqa: E731
    ordered = exact_moments(f, mdp, pi, n_episodes=2)
    multiset = exact_moments(f, mdp, pi, n_episodes=2, symmetric=True)
    for m in (ordered, multiset):
        assert_allclose(m.mean, per.mean, rtol=0, atol=1e-14)
        assert_allclose(m.covariance, per.covariance, rtol=0, atol=1e-14)
    assert ordered.n_trajectories == per.n_trajectories


def test_user_estimator_gets_its_bias_and_covariance():
    # a user's estimator (half of REINFORCE): bias is exactly -grad/2, covariance 1/4
    mdp, policy, theta = _tiny()
    half = exact_bias_and_covariance(
        lambda b: 0.5 * E.reinforce_contributions(b, policy, theta, mdp.gamma), mdp, policy,
        theta, per_episode=True)
    full = dp_moments(mdp, policy, theta, estimator="reinforce")
    grad = exact_finite_horizon_gradient(mdp, policy, theta)
    assert isinstance(half, EstimatorMoments) and half.method == "enumeration"
    assert_allclose(half.gradient, grad, rtol=0, atol=0)
    assert_allclose(half.bias, -grad / 2, rtol=0, atol=1e-14)
    assert_allclose(half.covariance, full.covariance / 4, rtol=0, atol=1e-14)
    assert_allclose(half.variance, np.diag(full.covariance) / 4, rtol=0, atol=1e-14)


def test_bad_estimators_and_sizes_raise():
    mdp, policy, theta = _tiny()
    pi = policy.probs_table(theta)
    with pytest.raises(ValueError, match="non-finite"):
        exact_moments(lambda b: np.full(4, np.nan), mdp, pi)
    with pytest.raises(ValueError, match="shape"):
        exact_moments(lambda b: np.zeros((3, 4)), mdp, pi, per_episode=True)
    with pytest.raises(ValueError, match="max_evaluations"):
        exact_moments(lambda b: np.zeros(4), mdp, pi, n_episodes=8)
    with pytest.raises(TypeError, match="callable"):
        exact_moments(np.zeros(4), mdp, pi)
    with pytest.raises(ValueError, match="enumeration"):
        dp_moments(mdp, policy, theta, baseline="mean", n_episodes=2)
    with pytest.raises(ValueError, match="n_episodes"):
        dp_moments(mdp, policy, theta, estimator="reinforce", baseline="leave_one_out")
    with pytest.raises(ValueError, match="state_values"):
        dp_moments(mdp, policy, theta, state_values=np.zeros((1, 2)))
    with pytest.raises(ValueError, match="baseline"):
        dp_moments(mdp, policy, theta, baseline=np.zeros(3))
    with pytest.raises(ValueError, match="weighting"):
        dp_moments(mdp, policy, theta, weighting="per-step")


# --------------------------------------------------------------------------- DP
CONFIGS = [("reinforce", "discounted", 0.0), ("reinforce", "discounted", 1.7),
           ("reinforce", "discounted", "vector"), ("reinforce", "discounted", "optimal"),
           ("reward_to_go", "discounted", 0.0), ("reward_to_go", "discounted", -0.4),
           ("reward_to_go", "discounted", "vector"), ("reward_to_go", "discounted", "optimal"),
           ("reward_to_go", "discounted", "V"), ("reward_to_go", "uniform", 0.0),
           ("reward_to_go", "uniform", "vector"), ("reward_to_go", "uniform", "optimal"),
           ("reward_to_go", "uniform", "V")]


def _sampled_estimator(est, weighting, baseline, V, policy, theta, gamma, b_vec, b_opt):
    kw = {}
    if baseline == "V":
        kw["state_values"] = V
    elif baseline == "vector":
        kw["baseline"] = b_vec
    elif baseline == "optimal":
        kw["baseline"] = b_opt                     # the EXACT optimal constant, as dp uses
    else:
        kw["baseline"] = baseline
    if est == "reinforce":
        return lambda b: E.reinforce_contributions(b, policy, theta, gamma, **kw)
    return lambda b: E.reinforce_reward_to_go_contributions(b, policy, theta, gamma,
                                                            weighting=weighting, **kw)


@given(problems())
@settings(max_examples=20)
def test_dynamic_programming_agrees_with_enumeration(problem):
    mdp, policy, theta, H = problem
    pi = policy.probs_table(theta)
    batch, p = enumerate_trajectories(mdp, pi, H)
    V = evaluate_finite_horizon(mdp, pi, H).V
    b_vec = np.random.default_rng(0).standard_normal(policy.n_params)
    for est, weighting, baseline in CONFIGS:
        kw = {"V": dict(state_values=V), "vector": dict(baseline=b_vec)}.get(
            baseline, dict(baseline=baseline))
        dp = dp_moments(mdp, policy, theta, H, estimator=est, weighting=weighting, **kw)
        b_opt = exact_optimal_baseline(mdp, policy, theta, H, estimator=est, weighting=weighting)
        fn = _sampled_estimator(est, weighting, baseline, V, policy, theta, mdp.gamma, b_vec,
                                b_opt)
        g = fn(batch)
        mean = p @ g
        c = g - mean
        cov = (c * p[:, None]).T @ c
        s1 = float(np.max(p @ np.abs(g))) + 1e-300
        s2 = float(np.max(p @ g ** 2)) + 1e-300
        what = f"{est}, {weighting}, {baseline}"
        # two unrelated float64 computations of the same finite sums: 1e-12 of the scale
        # of the summed terms (first and second moments)
        assert_allclose(dp.mean, mean, rtol=0, atol=1e-12 * s1, err_msg=what)
        assert_allclose(dp.covariance, cov, rtol=0, atol=1e-12 * s2, err_msg=what)


@pytest.mark.parametrize("baseline", ["mean", "leave_one_out"])
@pytest.mark.parametrize("N", [2, 3])
def test_average_return_closed_form_agrees_with_tuple_enumeration(baseline, N):
    mdp, policy, theta = _tiny()
    mdp = mdp.replace(horizon=5 - N)         # M = 22 (H = 3) or 10 (H = 2) trajectories
    pi = policy.probs_table(theta)
    enum = exact_moments(lambda b: E.reinforce(b, policy, theta, mdp.gamma, baseline=baseline),
                         mdp, pi, n_episodes=N, symmetric=True)
    closed = dp_moments(mdp, policy, theta, estimator="reinforce", baseline=baseline,
                        n_episodes=N)
    scale = float(np.max(np.abs(enum.covariance)))
    assert_allclose(closed.mean, enum.mean, rtol=0, atol=1e-13)
    assert_allclose(closed.covariance, enum.covariance, rtol=0, atol=1e-12 * scale)
    if baseline == "mean":
        assert_allclose(closed.bias, -closed.gradient / N, rtol=0, atol=1e-14)


def test_dynamic_programming_matches_monte_carlo_at_a_long_horizon():
    # H = 60 on S = 4, A = 3 (3 * 12^60 trajectories): DP mean vs the independent PG3
    # gradient, then a sampled mean and a batch-means variance check against DP's
    # covariance.
    H = 60
    mdp = random_mdp(np.random.default_rng(5), 4, 3, gamma=0.97, n_terminal=1, horizon=H)
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    theta = policy.init_params(np.random.default_rng(6), scale=1.0)
    pi = policy.probs_table(theta)
    V = evaluate_finite_horizon(mdp, pi, H).V
    n, groups = 20_000, 100
    batch = sample_batch(mdp, policy, theta, n, np.random.default_rng(7))
    grad = exact_finite_horizon_gradient(mdp, policy, theta)
    for name, dp, g in (
            ("reinforce", dp_moments(mdp, policy, theta, estimator="reinforce"),
             E.reinforce_contributions(batch, policy, theta, mdp.gamma)),
            ("rtg, V", dp_moments(mdp, policy, theta, state_values=V),
             E.reinforce_reward_to_go_contributions(batch, policy, theta, mdp.gamma,
                                                    state_values=V)),
            ("uniform", dp_moments(mdp, policy, theta, weighting="uniform"),
             E.reinforce_reward_to_go_contributions(batch, policy, theta, mdp.gamma,
                                                    weighting="uniform"))):
        d = g.shape[1]
        target = grad if name != "uniform" else time_indexed_gradient(mdp, policy, theta,
                                                                      weighting="uniform")
        assert_allclose(dp.mean, target, rtol=0, atol=1e-12 * (1 + np.max(np.abs(target))))
        var = np.diag(dp.covariance)
        live = var > 1e-12 * var.max()
        # mean: per-component z, Bonferroni over d, family-wise false alarm 1e-6 (CLT)
        z = norm.isf(1e-6 / (2 * d))
        dev = g.mean(axis=0) - dp.mean
        assert np.all(np.abs(dev[live]) <= z * np.sqrt(var[live] / n)), name
        # variance: 100 group means of 200 episodes; (groups-1) s^2 / (var/200) ~ chi2(99)
        # (group means are close to Gaussian), two-sided, Bonferroni over d, 1e-6 overall
        gm = g.reshape(groups, n // groups, d).mean(axis=1)
        stat = (groups - 1) * gm.var(axis=0, ddof=1)[live] / (var[live] / (n // groups))
        lo, hi = chi2.ppf(1e-6 / (2 * d), groups - 1), chi2.isf(1e-6 / (2 * d), groups - 1)
        assert np.all((stat >= lo) & (stat <= hi)), (name, stat.min(), stat.max(), lo, hi)


def test_exact_optimal_baseline_matches_its_enumeration_formula():
    mdp, policy, theta = _tiny()
    batch, p = enumerate_trajectories(mdp, policy.probs_table(theta), 3)
    Z = E.score_contributions(batch, policy, theta, batch.mask.astype(float))
    R = batch.rewards @ (mdp.gamma ** np.arange(3))
    EZ2 = p @ Z ** 2
    direct = np.divide(p @ (Z ** 2 * R[:, None]), EZ2, out=np.zeros_like(EZ2), where=EZ2 > 0)
    assert_allclose(exact_optimal_baseline(mdp, policy, theta), direct, rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------- closed forms
def test_uniform_weighted_mean_is_not_the_gradient_of_any_function():
    # a gradient field has a symmetric Jacobian (the Hessian). Complex step of M10:
    # discounted (= grad J_H) is symmetric to rounding, uniform is not (Nota & Thomas 2020)
    mdp = random_mdp(np.random.default_rng(3), 3, 2, gamma=0.8, horizon=4)
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    theta = policy.init_params(np.random.default_rng(3), scale=1.0)
    J_disc = complex_step(lambda t: time_indexed_gradient(mdp, policy, t), theta)
    J_unif = complex_step(lambda t: time_indexed_gradient(mdp, policy, t, weighting="uniform"),
                          theta)
    scale = np.max(np.abs(J_unif))
    assert_allclose(J_disc, J_disc.T, rtol=0, atol=1e-13 * scale)
    assert np.max(np.abs(J_unif - J_unif.T)) > 1e-3 * scale
    # and the discounted one is the Hessian of J_H: complex step of grad J_H
    hess = complex_step(lambda t: exact_finite_horizon_gradient(mdp, policy, t), theta)
    assert_allclose(J_disc, hess, rtol=0, atol=1e-13 * scale)
    # with gamma = 1 the two weightings coincide and both are grad J_H
    m1 = mdp.replace(gamma=1.0)
    assert_allclose(time_indexed_gradient(m1, policy, theta, weighting="uniform"),
                    exact_finite_horizon_gradient(m1, policy, theta), rtol=0, atol=1e-13)
    cs = complex_step(lambda t: finite_horizon_objective(m1, policy, t), theta)
    assert_allclose(time_indexed_gradient(m1, policy, theta, weighting="uniform"), cs,
                    rtol=0, atol=1e-12)


def test_dp_results_are_float64_records():
    mdp, policy, theta = _tiny()
    m = dp_moments(mdp, policy, theta)
    assert m.method == "dynamic programming" and m.n_trajectories is None
    assert m.mean.dtype == np.float64 and m.covariance.shape == (4, 4)
    assert_allclose(m.covariance, m.covariance.T, rtol=0, atol=0)
    assert np.all(np.linalg.eigvalsh(m.covariance) >= -1e-14)
    assert isinstance(enumerate_trajectories(mdp, policy.probs_table(theta))[0], Batch)


@pytest.mark.parametrize("scale", [10.0, 30.0])
def test_dp_and_closed_form_means_keep_relative_accuracy_for_near_deterministic_policies(scale):
    # logit gaps of 2 * scale (probabilities 1 - e^-60 at scale 30); reference: 60-digit
    # decimal enumeration (tests/estimator_problems.py). The DP mean goes through the score
    # table (1 - pi_a by expm1) and the closed form through centred action values; both
    # to 1e-12 of the gradient's norm (float64 rounding, measured ~1e-15).
    from estimator_problems import decimal_gradient

    mdp = random_mdp(np.random.default_rng(1), 2, 2, gamma=0.9, horizon=3)
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    theta = scale * np.array([1.0, -1.0, -0.8, 0.9])
    want = decimal_gradient(mdp, theta, 3)
    tol = 1e-12 * np.linalg.norm(want)
    assert_allclose(time_indexed_gradient(mdp, policy, theta), want, rtol=0, atol=tol)
    for estimator in ("reinforce", "reward_to_go"):
        m = dp_moments(mdp, policy, theta, estimator=estimator)
        assert_allclose(m.mean, want, rtol=0, atol=tol, err_msg=estimator)
